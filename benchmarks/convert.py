"""ANN-to-SNN conversion against the window T: a dense DQN trained here, then `spikeloop convert`.

    .venv/bin/python benchmarks/convert.py            # CartPole-v1, dense twin seeds 0 1 2, T 8 16 32 64

Each seed trains the dense ReLU twin (``spikeloop train --network dense``, the default budget),
converts it (thresholds balanced on 3,000 recorded observations), and evaluates the converted
network at each T in torch float and in the emulator's Loihi fixed point beside the ANN.
Writes the ``## ANN-to-SNN conversion`` section of BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, update_section  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="CartPole-v1")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--episodes", type=int, default=20)
    args = p.parse_args()
    command = "python benchmarks/convert.py " + " ".join(sys.argv[1:])
    from spikeloop.cli import main as cli

    reports = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            run, out = Path(tmp) / "dense", Path(tmp) / "snn"
            assert cli(["train", "--out", str(run), "--network", "dense", "--env-id", args.env, "--seed", str(seed),
                        "--quiet"]) == 0
            assert cli(["convert", str(run / "policy.safetensors"), "--out", str(out), "--episodes",
                        str(args.episodes), "--quiet"]) == 0
            reports.append(json.loads((out / "convert.json").read_text()))
    (ROOT / "benchmarks" / "convert.json").write_text(json.dumps({"command": command, "reports": reports}))
    Ts = [r["T"] for r in reports[0]["rows"]]
    lines = [f"`{command.strip()}` on {machine()}.", "",
             f"{args.env}: for each seed the dense ReLU twin trains (`spikeloop train --network dense`, defaults), "
             "then `spikeloop convert` balances thresholds on 3,000 observations of it (percentile 99.9) and "
             f"builds IF neurons with soft reset. Mean greedy return over {args.episodes} episodes (reset seeds "
             "1000...), torch float / emulator in Loihi fixed point, and the share of 1,000 recorded observations "
             "on which the converted network picks the ANN's action.", "",
             "| seed | ANN | " + " | ".join(f"T = {T}" for T in Ts) + " |",
             "|---:|---:|" + "---:|" * len(Ts)]
    for seed, rep in zip(args.seeds, reports):
        cells = [f"{r['snn_torch_mean']:.0f} / {r['snn_fixed_mean']:.0f} ({100 * r['action_agreement_with_ann']:.0f} %)"
                 for r in rep["rows"]]
        lines.append(f"| {seed} | {rep['ann_mean']:.0f} | " + " | ".join(cells) + " |")
    fixed = np.array([[r["snn_fixed_mean"] for r in rep["rows"]] for rep in reports])
    ann = np.array([rep["ann_mean"] for rep in reports])
    lines += ["", "Mean over seeds, fixed point: " + ", ".join(f"T = {T}: {m:.0f}" for T, m in zip(Ts, fixed.mean(0)))
              + f"; the ANN: {ann.mean():.0f}."]
    update_section("ANN-to-SNN conversion (benchmarks/convert.py)", "\n".join(lines))


if __name__ == "__main__":
    main()
