"""Closed-loop decisions per second for the CartPole policy at T = 8: Lava and the emulator.

    .venv/bin/python benchmarks/closed_loop.py            # prints, and updates BENCHMARKS.md

Each decision: encode the observation, run the decision window (T = 8 steps plus 3 steps of
pipeline latency = 11 Lava steps), read the readout, take the argmax, step CartPole-v1.
Compile time is measured apart from the loop. The reference point measured on this
machine before spikeloop existed: naive per-node Lava with Injector/Extractor, about 164
decisions per second.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, update_section  # noqa: E402

import spikeloop.runtime  # noqa: E402,F401
from spikeloop.core.nir_io import read_graph  # noqa: E402
from spikeloop.runtime.backends import make_backend  # noqa: E402
from spikeloop.runtime.compiler import plan_from_nir  # noqa: E402
from spikeloop.runtime.fixed_point import quantize_plan  # noqa: E402
from spikeloop.core.coding import greedy_action  # noqa: E402
from spikeloop.core.envs import make_env  # noqa: E402


def closed_loop(backend, decisions: int, seed: int) -> tuple[float, float]:
    """Run ``decisions`` closed-loop decisions on a started backend; (seconds, mean episode return)."""
    env = make_env("CartPole-v1")
    obs, _ = env.reset(seed=seed)
    returns, ret = [], 0.0
    t0 = time.perf_counter()
    for _ in range(decisions):
        action = greedy_action(backend.decide(obs))
        obs, r, term, trunc, _ = env.step(action)
        ret += r
        if term or trunc:
            returns.append(ret)
            ret = 0.0
            obs, _ = env.reset()
    seconds = time.perf_counter() - t0
    env.close()
    return seconds, float(np.mean(returns)) if returns else ret


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", default=str(ROOT / "tests/data/policy.nir"))
    ap.add_argument("--decisions", type=int, default=1000, help="decisions per fast configuration")
    ap.add_argument("--per-node-decisions", type=int, default=300)
    ap.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = ap.parse_args(argv)
    plan = plan_from_nir(read_graph(args.policy))
    fixed = quantize_plan(plan)
    rows = []
    for precision in ("fixed", "float"):
        for name in ("lava-fused", "lava-per-node"):
            mapping = make_backend(name, plan, precision, fixed)
            n = args.decisions if mapping.mapping == "fused" else args.per_node_decisions
            t0 = time.perf_counter()
            with mapping as net:
                compile_s = time.perf_counter() - t0
                secs, _ = closed_loop(net, n, seed=0)
            rows.append((f"Lava {mapping.mapping}", precision, n, n / secs, n * plan.period / secs, compile_s))
            print(f"{rows[-1][0]:16s} {precision:5s} {rows[-1][3]:8.1f} decisions/s  "
                  f"({rows[-1][4]:7.0f} Lava steps/s, compile {compile_s:.2f} s)", flush=True)
        with make_backend("emulator", plan, precision, fixed) as em:
            secs, _ = closed_loop(em, args.decisions, seed=0)
        rows.append(("emulator", precision, args.decisions, args.decisions / secs,
                     args.decisions * plan.period / secs, 0.0))
        print(f"{'emulator':16s} {precision:5s} {rows[-1][3]:8.1f} decisions/s", flush=True)
    body = [f"Command: `.venv/bin/python benchmarks/closed_loop.py`. Machine: {machine()}.", "",
            f"Policy `{Path(args.policy).relative_to(ROOT) if Path(args.policy).is_relative_to(ROOT) else args.policy}`"
            f" (4-64-64-2, T = {plan.T}, {plan.period} Lava steps per decision). Each decision encodes the "
            "observation, runs the window, reads the readout and steps CartPole-v1; compile time is "
            "excluded from the rate. Reference measured before spikeloop existed: naive per-node Lava "
            "with Injector/Extractor, about 164 decisions/s on this machine.", "",
            "| backend | precision | decisions | decisions/s | Lava steps/s | compile (s) |",
            "|---|---|---:|---:|---:|---:|"]
    for name, prec, n, rate, steps, comp in rows:
        body.append(f"| {name} | {prec} | {n} | {rate:,.1f} | {steps:,.0f} | {comp:.2f} |")
    body += ["", "The fused mapping runs the whole network in one Lava process (bit-exact with the per-node "
             "mapping of Lava's own models, see tests/test_parity.py); Lava then synchronises one process "
             "per step instead of eight. The per-node mapping is the reference, not the fast path: it runs "
             "Lava's own Dense and LIFReset models with counters added, plus spikeloop's host input/output "
             "processes (eight processes for this policy), and comes out slower than the naive Injector/"
             "Extractor baseline measured before spikeloop existed."]
    if not args.no_write:
        update_section("Closed-loop decisions per second (benchmarks/closed_loop.py)", "\n".join(body))
        print("updated BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
