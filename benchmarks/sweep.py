"""A CartPole sweep on Ray Tune, locally on this machine's cores: the return-versus-energy frontier.

    .venv/bin/python benchmarks/sweep.py                    # 24 trials, 2 workers
    .venv/bin/python benchmarks/sweep.py --from-json        # rewrite the section from benchmarks/sweep/

The agent is behaviour cloning (``spikeloop train --agent bc``) from 20 greedy episodes of the committed
spiking DQN (``spikeloop collect tests/data/policy.safetensors --episodes 20``): the fastest agent to
train to CartPole's ceiling here, so the sweep measures the deployment trade-off, not training luck.
Grid: window ``T`` x hidden width x sparsity pressure (``sparsity_penalty``, synops) x 3 seeds = 24
trials. Each trial is ``spikeloop demo`` (train, export, 10 episodes in Lava fixed point on the fused
mapping with the emulator as its twin, priced on every profile), scheduled by Ray Tune with two
workers. Writes ``benchmarks/sweep/`` (the sweep file, results.csv, frontier.md, frontier.png,
timing.json) and the section "Sweep: the return-versus-energy frontier" of BENCHMARKS.md. The sweep
folder with its 24 run folders is kept in ``runs/sweep-cartpole`` (not in git); a rerun resumes it.
"""
from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, update_section  # noqa: E402

SECTION = "Sweep: the return-versus-energy frontier (benchmarks/sweep.py)"
OUT = ROOT / "benchmarks" / "sweep"
RUN = ROOT / "runs" / "sweep-cartpole"
EXPERT = ROOT / "tests" / "data" / "policy.safetensors"
DEMO_SYNOPS = 14_979.3
"""synaptic ops per decision of the demo policy (tests/data/policy.nir, the energy section above)"""

SWEEP = """# benchmarks/sweep.py: T x width x sparsity pressure x 3 seeds of behaviour cloning on CartPole-v1
[sweep]
agent = "bc"
seeds = [0, 1, 2]
workers = {workers}
threshold = 475.0

[config]
demos = "{demos}"

[grid]
T = [4, 8]
hidden = [[16], [64]]
sparsity_penalty = [0.0, 20.0]

[deploy]
episodes = 10
backend = "lava"
precision = "fixed"
"""


def run(workers: int) -> dict:
    from spikeloop.sweep import frontier, run_sweep
    from spikeloop.train.offline import collect, expert_actor, save_demos

    RUN.mkdir(parents=True, exist_ok=True)
    demos = RUN.parent / "sweep-cartpole-demos.npz"
    if not demos.exists():
        save_demos(demos, collect(expert_actor(EXPERT), "CartPole-v1", 20, 0, str(EXPERT), progress=False))
    sweep_file = RUN.parent / "sweep-cartpole.toml"
    sweep_file.write_text(SWEEP.format(workers=workers, demos=demos))
    summary = run_sweep(sweep_file, RUN, progress=False)
    frontier(RUN)
    OUT.mkdir(exist_ok=True)
    for name in ("sweep.toml", "results.csv", "frontier.md", "frontier.png"):
        shutil.copy(RUN / name, OUT / name)
    return summary


def section(timing: dict, command: str, where: str) -> str:
    rows = pd.read_csv(OUT / "results.csv")
    fr = (OUT / "frontier.md").read_text()
    loihi = "### loihi:" + fr.split("### loihi:")[1].split("###")[0]
    ok = rows[rows["return_deployed"] >= 475]
    cheap = ok.sort_values("synops_per_decision").iloc[0] if len(ok) else None
    ran = timing["ran"]
    overhead = (1 - timing["trial_s"] / (timing["wall_s"] * timing["workers"])) if ran else None
    split = breakdown(timing) if ran else None
    cheapest = ("none" if cheap is None else
                f"trial {cheap['trial']} (T = {cheap['T']}, hidden {cheap['hidden']}, sparsity_penalty "
                f"{cheap['sparsity_penalty']:g}): return {cheap['return_deployed']:.1f} in Lava fixed point at "
                f"{cheap['synops_per_decision']:,.0f} synaptic ops per decision, "
                f"{cheap['synops_per_decision'] / DEMO_SYNOPS:.1%} of the demo policy's {DEMO_SYNOPS:,.0f}")
    timing_text = (f"{ran} trials ran in {timing['wall_s']:.0f} s of wall time on {timing['workers']} workers; the "
                   f"trials themselves (train, export, deploy, price) took {timing['trial_s']:.0f} s. Of the "
                   f"workers' other time ({overhead:.1%} of it): starting Ray and the first trials "
                   f"{split['start']:.1f} s, Tune's scheduling between one trial's end and the next one's start "
                   f"on the same worker {split['between']:.1f} s in all ({split['between'] / timing['trial_s']:.2%} "
                   f"of trial time; a worker keeps its process from trial to trial), and a worker idle at the end "
                   f"while the other finished its last trial {split['tail']:.1f} s"
                   if ran else "every trial was already complete (resumed)")
    return f"""`{command}` on {where}.

The sweep file is [benchmarks/sweep/sweep.toml](benchmarks/sweep/sweep.toml): behaviour cloning (`--agent bc`) from 20 greedy episodes of the committed spiking DQN, window T ∈ {{4, 8}} × hidden width ∈ {{16, 64}} × sparsity pressure ∈ {{0, 20}} (synops) × 3 seeds = {len(rows)} trials, each a `spikeloop demo` run folder (10 episodes in Lava fixed point, fused mapping, the emulator beside it at every decision). Results: [benchmarks/sweep/results.csv](benchmarks/sweep/results.csv); frontier: `spikeloop frontier runs/sweep-cartpole` ([frontier.md](benchmarks/sweep/frontier.md), plot below). Timing: {timing_text}.

Cheapest trial at ≥ 475 in Lava fixed point: {cheapest}.

Loihi, energy per decision with the report's default static-power choice (whole chip at real time, which dominates: the static term grows with the window's steps, so T sets the cost and the synaptic operations barely move it):

{loihi}
![frontier](benchmarks/sweep/frontier.png)
"""


def breakdown(timing: dict) -> dict:
    """The workers' time outside trials: Ray's start, gaps between trials on one worker, the idle tail.

    Trials are assigned to workers as they ran: each starts on the worker that finished last before
    its start (the intervals come from the trials' own wall.json)."""
    lanes = [timing["started"]] * timing["workers"]  # when each worker became free
    start = between = 0.0
    first = [True] * timing["workers"]
    for s, e in sorted(timing["intervals"]):
        free = [i for i, t in enumerate(lanes) if t <= s] or [min(range(len(lanes)), key=lanes.__getitem__)]
        i = max(free, key=lanes.__getitem__)
        gap = max(s - lanes[i], 0.0)
        if first[i]:
            start, first[i] = start + gap, False
        else:
            between += gap
        lanes[i] = e
    end = timing["started"] + timing["wall_s"]
    return {"start": start, "between": between, "tail": sum(end - t for t in lanes)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--from-json", action="store_true", help="rewrite the section from benchmarks/sweep/")
    args = p.parse_args(argv)
    if args.from_json:
        t = json.loads((OUT / "timing.json").read_text())
        update_section(SECTION, section(t["summary"], t["command"], t["machine"]))
        return 0
    extra = argv if argv is not None else sys.argv[1:]
    command = "python benchmarks/sweep.py" + (f" {shlex.join(extra)}" if extra else "")
    summary = run(args.workers)
    (OUT / "timing.json").write_text(json.dumps({"summary": summary, "command": command, "machine": machine()},
                                                indent=2))
    update_section(SECTION, section(summary, command, machine()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
