"""A convolutional policy trained for Speck, closed loop on spikeloop's Speck emulator, over seeds.

    .venv/bin/python benchmarks/speck.py --run runs/speck0 --run runs/speck1
        # each trained with: spikeloop train --preset dqn-speck --seed S --out runs/speckS
        #                    spikeloop export runs/speckS

For each run folder: the fit check against the speck profile (one layer per core), then the stage of
``spikeloop run --target speck``: 100 greedy episodes of MinAtar/Breakout-v1 (reset seeds 1000...)
in torch (the trained policy, on Speck's integers) and on the Speck emulator (bit-exact with sinabs's software model of the chip,
tests/test_speck.py), the torch policy answering every observation the emulator saw (the action
agreement), and the input events, spikes and synaptic events per decision. A uniformly random policy
over the same 100 episodes is the baseline. Writes the section "Speck" of BENCHMARKS.md and
``benchmarks/speck.json``. Training stops after 30 minutes, so its step count depends on the machine's
load: the section says what else ran beside it.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, update_section  # noqa: E402
from agents import random_return  # noqa: E402

SECTION = "Speck: a convolutional MinAtar policy trained for Speck, on the Speck emulator (benchmarks/speck.py)"
EPISODES = 100
ENV = "MinAtar/Breakout-v1"


def measure(run: Path, episodes: int) -> dict:
    """One run folder's training record and its Speck run."""
    from spikeloop.speck_run import speck_stage
    from spikeloop.train.checkpoint import load_policy

    policy = load_policy(run / "policy.safetensors")[0]
    training = json.loads((run / "training.json").read_text())
    report = speck_stage(run / "policy.nir", None, "emulator", episodes, 1000, run / "policy.safetensors",
                         progress=False)
    ev = report["evaluation"]
    return {"run": str(run), "seed": policy.provenance.seed, "env_steps": training["steps"],
            "train_s": training.get("seconds"), "best_eval": training["best_eval"],
            "torch": ev["torch"]["mean_return"], "torch_std": ev["torch"]["std_return"],
            "speck": ev["speck_emulator"]["mean_return"], "speck_std": ev["speck_emulator"]["std_return"],
            "agreement": ev["speck_emulator"]["agreement_with_torch"],
            "decisions": ev["speck_emulator"]["decisions"], "cores": report["mapping"]["cores"],
            "input_events": report["input_events_per_decision"], "spikes": report["spikes_per_decision"],
            "synops": report["synops_per_decision"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", action="append", required=True, type=Path,
                   help="a run folder trained with --preset dqn-speck and exported (repeat per seed)")
    p.add_argument("--episodes", type=int, default=EPISODES)
    p.add_argument("--note", default="", help="what else ran on the machine while the seeds trained")
    args = p.parse_args(argv)
    command = "python benchmarks/speck.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    rows = [measure(r, args.episodes) for r in args.run]
    rand = random_return(ENV, args.episodes)
    (ROOT / "benchmarks" / "speck.json").write_text(json.dumps({"rows": rows, "random": rand}, indent=1) + "\n")
    table = "\n".join(
        f"| {r['seed']} | {r['env_steps']:,} | {r['train_s']:.0f} | {r['best_eval']:.1f} | {r['torch']:.2f} ± {r['torch_std']:.2f} | "
        f"{r['speck']:.2f} ± {r['speck_std']:.2f} | {100 * r['agreement']:.2f} % | {r['input_events']:.1f} | "
        f"{r['spikes']:.1f} | {r['synops']:,.0f} |" for r in rows)
    cores = "; ".join(f"core {c['core']}: {c['layer']} ({c['neuron_memory']:,}/{c['neuron_memory_capacity']:,} "
                      f"neuron, {c['kernel_memory']:,}/{c['kernel_memory_capacity']:,} kernel entries)"
                      for c in rows[0]["cores"])
    speck = [r["speck"] for r in rows]
    update_section(SECTION, f"""`{command}` on {machine()}.{(' ' + args.note) if args.note else ''}

Each seed trained `spikeloop train --preset dqn-speck --seed S` (DQN, `speck`: integrate-and-fire layers without leak or bias, a spiking readout whose spike counts are the Q-values, 8-bit weights; 30 minutes of training), then `spikeloop export`. {args.episodes} greedy episodes of {ENV} (reset seeds 1000...) in torch (the trained policy, which runs Speck's integers: spikeloop.train.speck) and on the Speck emulator (sinabs's discretization and integer dynamics, bit-exact with sinabs's software model of the chip in tests/test_speck.py), torch answering every observation the emulator saw. A lit board pixel is one input event per step.

Placement (the fit check, one layer per core): {cores}.

| seed | env steps | train s | best greedy eval | torch policy (Speck's integers) | Speck emulator | actions equal to torch | input events / decision | spikes / decision | synaptic events / decision |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
{table}

A uniformly random policy: {np.mean(rand):.2f} ± {np.std(rand):.2f} over {len(rand)} episodes. On the Speck emulator the policies return {', '.join(f'{s:.2f}' for s in speck)} (mean {np.mean(speck):.2f}). Energy per decision is not priced: the speck profile cites no energy per synaptic event or spike (none is published), and the asynchronous chip has no timestep to turn its resting power into energy per decision.
""")
    print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
