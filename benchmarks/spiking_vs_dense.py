"""The spiking DQN beside a dense ReLU twin of the same sizes and step budget.

    .venv/bin/python benchmarks/spiking_vs_dense.py            # CartPole-v1, seeds 0-2

For each seed both train (``spikeloop train`` defaults; the twin with ``--network dense``) and
are compared on: greedy return (torch float, ``--episodes`` episodes), latency per decision
(torch, batch 1, one thread, median over the first episode's observations), activation
sparsity (the fraction of hidden units silent per step: spikes for the SNN, ReLU zeros for the
twin), and energy per decision: the twin on the conventional profile (cpu-45nm, fp32 and int8,
one forward pass), the SNN on Loihi from the spikes and synaptic operations it really performed
in the emulator (fixed point). Writes the ``## Spiking vs dense`` section of BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, update_section  # noqa: E402


def _latency_ms(policy, observations) -> float:
    from spikeloop.train.policy import TorchPolicy

    times = []
    with TorchPolicy(policy) as backend:
        for obs in observations:
            t = time.perf_counter()
            backend.decide(obs)
            times.append(time.perf_counter() - t)
    return 1e3 * float(np.median(times))


def one(env_id: str, seed: int, steps: int, episodes: int) -> dict:
    import torch

    from spikeloop.core.envs import random_observations
    from spikeloop.export.to_nir import export_policy
    from spikeloop.pipeline import energy_stage
    from spikeloop.runtime.backends import make_backend
    from spikeloop.runtime.compiler import plan_from_nir
    from spikeloop.runtime.runner import run_closed_loop
    from spikeloop.train.agents.dqn import DQNConfig, train_dqn
    from spikeloop.train.evaluate import evaluate_torch

    out = {"seed": seed}
    obs = random_observations(env_id, 500, seed + 5000)  # the states both are timed and probed on
    for kind in ("spiking", "dense"):
        res = train_dqn(DQNConfig(env_id=env_id, seed=seed, total_steps=steps, network=kind), progress=False)
        rets = evaluate_torch(res.policy, env_id, episodes, seed=1000)
        row = {"return": rets, "steps": res.steps, "train_s": res.seconds, "latency_ms": _latency_ms(res.policy, obs)}
        if kind == "dense":
            x = torch.as_tensor(res.policy.encoding.encode(obs), dtype=torch.float32)
            rec = {}
            with torch.no_grad():
                h = x
                for name, m in res.policy.network.nodes.items():
                    h = m(h)
                    if name.startswith("relu"):
                        rec[name] = h
            row["silent"] = float(np.mean([float((v == 0).float().mean()) for v in rec.values()]))
        else:
            plan = plan_from_nir(export_policy(res.policy, 1e-3))
            run = run_closed_loop(make_backend("emulator", plan, "fixed", batch=episodes), env_id, episodes, 1000,
                                  progress=False)
            per = run.counts.per_decision()
            hidden = [p for p in plan.populations if p.spiking]
            row["silent"] = 1.0 - sum(per["spikes"][p.name] for p in hidden) / (
                sum(p.size for p in hidden) * res.policy.T)
            row["synops"] = float(sum(per["synops"].values())) if isinstance(per.get("synops"), dict) else None
            energy = energy_stage(plan, per, ["loihi"], "cpu-45nm")
            row["loihi_dynamic_J"] = energy["targets"]["loihi"]["dynamic_J"]
            row["loihi_total_J"] = energy["targets"]["loihi"]["total_J"]
            row["dense_fp32_J"] = energy["baselines"]["fp32"]["total_J"]
            row["dense_int8_J"] = energy["baselines"]["int8"]["total_J"]
        out[kind] = row
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="CartPole-v1")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=50_000)
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    command = "python benchmarks/spiking_vs_dense.py " + " ".join(sys.argv[1:])
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
        rows = list(pool.map(one, *zip(*[(args.env, s, args.steps, args.episodes) for s in args.seeds])))
    (ROOT / "benchmarks" / "spiking_vs_dense.json").write_text(json.dumps({"command": command, "rows": rows}))

    def uj(x):
        return f"{1e6 * x:.3g} µJ"

    lines = [f"`{command.strip()}` on {machine()}; {args.workers} seeds at once.", "",
             f"{args.env}, budget {args.steps:,} steps each, greedy return over {args.episodes} episodes "
             "(reset seeds 1000...). Energy: the SNN's measured counts (emulator, fixed point) priced on Loihi; "
             "the dense twin's one forward pass priced on cpu-45nm (the profile's cited MAC and memory energies). "
             "Loihi's total includes its whole-chip static power over the decision's timesteps (see the energy "
             "section).", "",
             "| seed | network | env steps | return | latency / decision (torch) | hidden units silent per step | "
             "energy / decision |", "|---:|---|---:|---:|---:|---:|---|"]
    for r in rows:
        s, d = r["spiking"], r["dense"]
        lines.append(f"| {r['seed']} | spiking | {s['steps']:,} | {np.mean(s['return']):.1f} ± {np.std(s['return']):.1f}"
                     f" | {s['latency_ms']:.2f} ms | {100 * s['silent']:.1f} % | Loihi dynamic {uj(s['loihi_dynamic_J'])}, "
                     f"total {uj(s['loihi_total_J'])} |")
        lines.append(f"| {r['seed']} | dense twin | {d['steps']:,} | {np.mean(d['return']):.1f} ± "
                     f"{np.std(d['return']):.1f} | {d['latency_ms']:.2f} ms | {100 * d['silent']:.1f} % | "
                     f"cpu-45nm fp32 {uj(s['dense_fp32_J'])}, int8 {uj(s['dense_int8_J'])} |")
    update_section("Spiking vs dense (benchmarks/spiking_vs_dense.py)", "\n".join(lines))


if __name__ == "__main__":
    main()
