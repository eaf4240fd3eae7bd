"""Behaviour cloning from 20 expert CartPole episodes, over several seeds, deployed in Lava fixed point.

    .venv/bin/python benchmarks/offline.py               # seeds 0-4

The expert is the committed trained CartPole policy (``tests/data/policy.safetensors``, a
spiking DQN); ``spikeloop collect`` records 20 of its greedy episodes (reset seeds 0...19).
Each seed runs ``spikeloop train --agent bc``'s defaults on them, then the cloned policy runs
greedily in torch float and in the emulator in Loihi fixed point (100 episodes, reset seeds
1000...) and in Lava fixed point (fused mapping, ``--lava-episodes``). Writes the section
"Behaviour cloning" of BENCHMARKS.md; results in ``benchmarks/offline.json``.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, update_section  # noqa: E402

SECTION = "Behaviour cloning (benchmarks/offline.py)"
EXPERT = ROOT / "tests" / "data" / "policy.safetensors"


def run(seeds: list[int], episodes: int, lava_episodes: int) -> tuple[list[dict], list[float]]:
    from spikeloop.core.nir_io import read_graph, write_graph
    from spikeloop.export.to_nir import export_policy
    from spikeloop.runtime.backends import make_backend
    from spikeloop.runtime.compiler import plan_from_nir
    from spikeloop.runtime.runner import run_closed_loop
    from spikeloop.train.agents.bc import BCConfig, train_bc
    from spikeloop.train.evaluate import evaluate_torch
    from spikeloop.train.offline import collect, expert_actor, save_demos

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        demos_path = Path(tmp) / "demos.npz"
        demos = collect(expert_actor(EXPERT), "CartPole-v1", 20, 0, str(EXPERT), progress=False)
        save_demos(demos_path, demos)
        for seed in seeds:
            res = train_bc(BCConfig(demos=str(demos_path), seed=seed), progress=False)
            nir_path = Path(tmp) / f"bc{seed}.nir"
            write_graph(nir_path, export_policy(res.policy, 1e-3))
            plan = plan_from_nir(read_graph(nir_path))
            torch_ret = evaluate_torch(res.policy, "CartPole-v1", episodes, seed=1000)
            emu = run_closed_loop(make_backend("emulator", plan, "fixed", batch=episodes), "CartPole-v1", episodes,
                                  1000, progress=False)
            lava = run_closed_loop(make_backend("lava-fused", plan, "fixed"), "CartPole-v1", lava_episodes, 1000,
                                   progress=False)
            rows.append({"seed": seed, "epochs": len(res.log), "train_s": res.seconds, "best_eval": res.best_eval,
                         "accuracy": res.log[-1]["accuracy"], "torch": torch_ret, "emulator": emu.returns,
                         "lava": lava.returns})
            print(json.dumps({k: v for k, v in rows[-1].items() if not isinstance(v, list)}), flush=True)
    return rows, demos.returns


def section(rows: list[dict], expert: list[float], command: str, lava_episodes: int) -> str:
    def ms(x):
        return f"{np.mean(x):.1f} ± {np.std(x):.1f}"

    body = [f"| {r['seed']} | {r['epochs']} | {r['train_s']:.0f} | {100 * r['accuracy']:.1f} % | {ms(r['torch'])} | "
            f"{ms(r['emulator'])} | {ms(r['lava'])} |" for r in rows]
    lava = np.array([np.mean(r["lava"]) for r in rows])
    return f"""Seeds {', '.join(str(r['seed']) for r in rows)}: `{command}` on {machine()}.

The expert: `tests/data/policy.safetensors` (the committed spiking DQN), 20 greedy episodes recorded by `spikeloop collect` (reset seeds 0-19, mean return {np.mean(expert):.1f}). Each seed clones them with `spikeloop train --agent bc`'s defaults (64 hidden LIF neurons, T 8, cross-entropy on the readout voltages, at most 30 epochs, stopping once 10 greedy episodes average 500); the cloned policy then runs 100 greedy episodes (reset seeds 1000...) in torch float and the emulator in Loihi fixed point, {lava_episodes} in Lava fixed point (fused mapping). Target: ≥ 475 in Lava fixed point.

| seed | epochs | train s | action accuracy (last epoch) | torch float | emulator fixed | Lava fixed |
|---:|---:|---:|---:|---:|---:|---:|
{chr(10).join(body)}

Across seeds: Lava fixed mean {lava.mean():.1f} (min {lava.min():.1f}); {int((lava >= 475).sum())} of {len(rows)} seeds at ≥ 475.
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--lava-episodes", type=int, default=20)
    args = p.parse_args(argv)
    extra = argv if argv is not None else sys.argv[1:]
    command = "python benchmarks/offline.py" + (f" {shlex.join(extra)}" if extra else "")
    rows, expert = run(args.seeds, args.episodes, args.lava_episodes)
    (ROOT / "benchmarks" / "offline.json").write_text(json.dumps({"command": command, "machine": machine(),
                                                                 "expert_returns": expert, "rows": rows}))
    update_section(SECTION, section(rows, expert, command, args.lava_episodes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
