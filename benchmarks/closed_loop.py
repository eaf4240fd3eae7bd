"""Closed-loop decisions per second: torch, the emulator and Lava, one copy and batched, at T = 8, 16, 32.

    .venv/bin/python benchmarks/closed_loop.py            # prints, and updates BENCHMARKS.md

Each decision encodes the observation, runs the decision window (T steps plus the pipeline
latency on Lava's timing), reads the readout, takes the argmax and steps CartPole-v1; the
runner is `spikeloop.runtime.runner.run_closed_loop`, the one `spikeloop run` uses. A
batched row runs B copies of the network on B environments (`--envs B`); its rate counts
every copy's decisions. Compile time is excluded from the rates. Bit-exactness of every
row with the emulator is proven by tests/test_batched.py and tests/test_parity.py, not here.

Targets (issue "Any policy, closed loop, fast"): Lava at batch 64 >= 10x the per-node
mapping; Lava one environment >= 2x the fused mapping of before; the batched emulator
>= 1000x per-node Lava; torch at batch 1, T = 8 <= 0.5 ms per decision.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, update_section  # noqa: E402

from spikeloop.runtime.backends import make_backend  # noqa: E402
from spikeloop.runtime.fixed_point import quantize_plan  # noqa: E402
from spikeloop.runtime.policy_import import PolicyChoices, import_policy  # noqa: E402
from spikeloop.runtime.runner import run_closed_loop  # noqa: E402


def rate(backend, decisions: int, batch: int) -> tuple[float, float]:
    """(decisions per second, compile seconds) of ``decisions`` closed-loop decisions.

    Episodes are cut at ``decisions / episodes`` steps so that a batch is full most of the time.
    """
    episodes = max(batch, 1) * 2
    steps = max(decisions // episodes, 1)
    t0 = time.perf_counter()
    with backend:
        compile_s = time.perf_counter() - t0
        r = run_closed_loop(backend, "CartPole-v1", episodes, 0, progress=False, max_steps=steps)
    return r.decisions / (r.seconds - compile_s), compile_s


def torch_ms(policy, T: int, repeats: int) -> float:
    """Median milliseconds of one batch-1 decision of the torch policy (encoding included)."""
    from spikeloop.train.policy import TorchPolicy

    obs = np.zeros(4)
    with TorchPolicy(dataclasses.replace(policy, T=T)) as tp:
        for _ in range(20):
            tp.decide(obs)
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(repeats):
                tp.decide(obs)
            times.append((time.perf_counter() - t0) / repeats)
    return 1e3 * float(np.median(times))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", default=str(ROOT / "tests/data/policy.nir"))
    ap.add_argument("--T", type=int, nargs="+", default=[8, 16, 32])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--decisions", type=int, default=2000, help="decisions per fast row")
    ap.add_argument("--slow-decisions", type=int, default=200, help="decisions per Lava per-node row")
    ap.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = ap.parse_args(argv)
    from spikeloop.train.checkpoint import load_policy

    policy, _ = load_policy(Path(args.policy).with_name("policy.safetensors"))
    B = args.batch
    rows = []  # (T, row, precision, batch, decisions/s, compile s)
    for T in args.T:
        plan = import_policy(args.policy, PolicyChoices(T=T)).plan
        fixed = quantize_plan(plan)
        ms = torch_ms(policy, T, 200)
        rows.append((T, "torch (checkpoint)", "float", 1, 1e3 / ms, 0.0))
        print(f"T={T:3d} torch batch 1: {ms:.3f} ms per decision", flush=True)
        for precision in ("fixed", "float"):
            q = fixed if precision == "fixed" else None
            for name, batch, n in (("lava-per-node", None, args.slow_decisions), ("lava-fused", None, args.decisions // 2),
                                   ("lava-fused", B, args.decisions), ("emulator", None, args.decisions // 2),
                                   ("emulator", B, args.decisions * 4)):
                be = make_backend(name, plan, precision, q, **({"batch": batch} if batch else {}))
                r, comp = rate(be, n, batch or 1)
                rows.append((T, name, precision, batch or 1, r, comp))
                print(f"T={T:3d} {name:14s} {precision:5s} batch {batch or 1:3d}: {r:10,.1f} decisions/s "
                      f"(compile {comp:.2f} s)", flush=True)

    def get(T, name, prec, batch):
        return next(r[4] for r in rows if r[:4] == (T, name, prec, batch))

    body = [f"Command: `.venv/bin/python benchmarks/closed_loop.py`. Machine: {machine()}.", "",
            f"Policy `{Path(args.policy).relative_to(ROOT) if Path(args.policy).is_relative_to(ROOT) else args.policy}` "
            "(4-64-64-2) with its window set to T, closed loop on CartPole-v1 through `run_closed_loop` (the "
            "runner of `spikeloop run`); a batch of B is B copies of the network on B environments "
            "(`spikeloop run --envs B`), all copies' decisions counted; compile time excluded.", "",
            "| T | backend | precision | batch | decisions/s | compile (s) |", "|---:|---|---|---:|---:|---:|"]
    for T, name, prec, batch, r, comp in rows:
        body.append(f"| {T} | {name} | {prec} | {batch} | {r:,.1f} | {comp:.2f} |")
    body += ["", "Against the targets, fixed point (float in brackets):", ""]
    for T in args.T:
        per_node = {p: get(T, "lava-per-node", p, 1) for p in ("fixed", "float")}
        body.append(f"- T = {T}: Lava fused at batch {B} is {get(T, 'lava-fused', 'fixed', B) / per_node['fixed']:.1f}x "
                    f"per-node ({get(T, 'lava-fused', 'float', B) / per_node['float']:.1f}x; target 10x); the "
                    f"emulator at batch {B} is {get(T, 'emulator', 'fixed', B) / per_node['fixed']:.0f}x per-node "
                    f"({get(T, 'emulator', 'float', B) / per_node['float']:.0f}x; target 1000x); torch batch 1 takes "
                    f"{1e3 / get(T, 'torch (checkpoint)', 'float', 1):.3f} ms per decision (target 0.5 ms at T = 8).")
    body += ["", "Where the time goes where a target is missed (cProfile, `python -m cProfile -s tottime` on the "
             "same calls):", "",
             "- torch at batch 1: a decision is T x 3 calls of the neuron update on tensors of 2 to 64 values; "
             "each torch op costs microseconds of dispatch, so Python and torch overhead, not arithmetic, set "
             "the time (about 60 % in `cuba_step` and the graph walk). 0.5 ms needs a fused kernel for the "
             "window (one compiled function), not a faster layer.",
             "- the batched emulator: at batch 64 about 60 % of the time is the network's own step (numpy on "
             "(64, n) arrays, one Python loop per population and connection per step) and about 25 % the 64 "
             "CartPole environments, stepped one by one in Python through gymnasium's wrappers. 1000x "
             "per-node Lava needs vectorized environments as well as a larger batch.",
             "- the per-node mapping synchronises eight Lava processes at every step; it is the reference, "
             "not the fast path."]
    if not args.no_write:
        update_section("Closed-loop decisions per second (benchmarks/closed_loop.py)", "\n".join(body))
        print("updated BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
