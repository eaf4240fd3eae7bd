"""A CartPole policy trained for Xylo, closed loop on SynSense's xylosim, over several seeds.

    .venv/bin/python benchmarks/xylo.py                 # seeds 0-4
    .venv/bin/python benchmarks/xylo.py --seeds 0 1
    .venv/bin/python benchmarks/xylo.py --preset reinforce-xylo-delta   # the delta code in front

Each seed trains ``spikeloop train --preset reinforce-xylo`` (or ``--preset``; REINFORCE, Xylo's integer
neuron in training), exports it, then runs ``spikeloop run --target xylo --backend xylosim``'s
stage: 20 greedy episodes (reset seeds 1000...) on the vendor's simulator, the emulator
beside it on every decision (bit-exact or the run stops), the torch policy on every
observation (the action agreement), the fit check against the xylo profile, the spikes
and synaptic events per decision and the vendor's cycle model. Writes the section "Xylo"
of BENCHMARKS.md (one per preset), beside the Loihi numbers of the CartPole DQN; results in
``benchmarks/xylo.json`` (``benchmarks/xylo-PRESET.json`` for another preset).
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, update_section  # noqa: E402

DEFAULT_PRESET = "reinforce-xylo"


NOTES = {"reinforce-xylo-delta": (
    "Why it falls short: the delta code sends only what changed since the last decision (the first decision "
    "of an episode sees the rate code), while every decision window starts from a reset core, so the policy "
    "has no memory to integrate the changes into a state; it acts on velocities and accelerations without the "
    "cart position or pole angle. The code itself is exact: torch, the emulator and xylosim agree at every "
    "decision. A delta-coded policy needs state carried across decisions (a streaming Xylo run with a "
    "recurrent or slowly decaying hidden layer), which spikeloop does not yet train for Xylo.")}
"""what a preset's results need said beside them"""


def results_path(preset: str) -> Path:
    return ROOT / "benchmarks" / ("xylo.json" if preset == DEFAULT_PRESET else f"xylo-{preset}.json")


def section_title(preset: str) -> str:
    base = "Xylo: a CartPole policy trained for Xylo, closed loop on xylosim (benchmarks/xylo.py)"
    return base if preset == DEFAULT_PRESET else f"{base[:-1]} --preset {preset})"


LOIHI_DQN = {"synops": 14_979.3, "steps": 11, "total": "1.14 mJ", "lowest": "819 nJ"}
"""the CartPole DQN on Loihi (tests/data/policy.nir, the energy section above: emulator, Loihi fixed point)"""


def run_seed(seed: int, episodes: int, preset: str = DEFAULT_PRESET) -> dict:
    from spikeloop.options import preset_path
    from spikeloop.pipeline import export_stage, read_config, train_stage
    from spikeloop.train.agents import config_from_dict, get_agent
    from spikeloop.xylo_run import xylo_stage

    agent, body = read_config(preset_path(preset))
    cfg = config_from_dict(get_agent(agent).config, {**body, "seed": seed})
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        t0 = time.time()
        res = train_stage(run_dir, agent, cfg, progress=False)
        train_s = time.time() - t0
        export_stage(run_dir, 1e-3)
        report = xylo_stage(run_dir / "policy.nir", None, "xylosim", episodes, 1000, run_dir / "policy.safetensors",
                            progress=False)
    ev = report["evaluation"]
    return {"seed": seed, "env_steps": res.steps, "train_s": train_s, "best_eval": res.best_eval,
            "torch": ev["torch"]["mean_return"], "torch_std": ev["torch"]["std_return"],
            "xylosim": ev["xylo_sim"]["mean_return"], "xylosim_std": ev["xylo_sim"]["std_return"],
            "agreement": ev["xylo_sim"]["agreement_with_torch"], "decisions": ev["xylo_sim"]["decisions"],
            "bit_exact": ev["xylo_sim"]["emulator_bit_exact"], "spikes": report["spikes_per_decision"],
            "synops": report["synops_per_decision"], "input_events": report["encoder"]["events_per_decision"],
            "encoder_ops": report["encoder"]["host_ops_per_decision"],
            "cycles_step": report["cycles"]["per_step"], "cycles_decision": report["cycles"]["per_decision"],
            "clock_hz": report["cycles"]["realtime_clock_hz"], "steps": report["mapping"]["steps_per_decision"],
            "hidden": report["mapping"]["hidden"], "synapses": report["mapping"]["synapses"],
            "energy": report["energy"], "config": {k: v for k, v in body.items()}, "preset": preset,
            "encoding": report["encoder"]["kind"]}


def section(rows: list[dict], command: str, where: str) -> str:
    head = ("| seed | env steps | train s | torch return | xylosim return (20 ep.) | actions equal to torch | "
            "emulator = xylosim | spikes / decision | synaptic events / decision | input events / decision | "
            "cycles / timestep | required clock (dt 1 ms) |\n|---:|---:|---:|---:|---:|---:|:---:|---:|---:|---:|---:|---:|")
    body = [f"| {r['seed']} | {r['env_steps']:,} | {r['train_s']:.0f} | {r['torch']:.1f} ± {r['torch_std']:.1f} | "
            f"{r['xylosim']:.1f} ± {r['xylosim_std']:.1f} | {100 * r['agreement']:.2f} % | "
            f"{'yes' if r['bit_exact'] else 'no'} ({r['decisions']:,} decisions) | {r['spikes']:.1f} | "
            f"{r['synops']:,.1f} | {r['input_events']:.1f} | {r['cycles_step']:,.0f} | {r['clock_hz'] / 1e6:.2f} MHz |"
            for r in rows]
    xs = np.array([r["xylosim"] for r in rows])
    solved = int((xs >= 475).sum())
    r0 = rows[0]
    en = r0["energy"]
    energy = (f"{en['per_decision_J']:.3g} J per decision ({en['source']})" if en["priced"] else
              f"not priced: {en['reason']}")
    cfg = ", ".join(f"`{k}={v}`" for k, v in r0["config"].items() if k not in ("env_id",))
    return f"""Seeds {', '.join(str(r['seed']) for r in rows)}: `{command}` on {where}.

Each seed trains `spikeloop train --preset {r0.get('preset', DEFAULT_PRESET)}` ({cfg}: 8 input channels of the {r0.get('encoding', 'rate code')}, {r0['hidden']} hidden Xylo neurons, 2 readout neurons read as voltages), then `spikeloop run --target xylo --backend xylosim`'s stage runs 20 greedy episodes (reset seeds 1000...) on SynSense's xylosim 0.1.3 with spikeloop's emulator beside it at every decision (bit-exact or the run stops) and the torch policy on every observation. Every policy passes `spikeloop fit --profile xylo` (checked by the run). A decision is {r0['steps']} Xylo steps (T = 8 plus one step of the readout's delay).

{head}
{chr(10).join(body)}

Across seeds: xylosim mean return {xs.mean():.1f} (spread {xs.std():.1f}, min {xs.min():.1f}); {solved} of {len(rows)} seeds at ≥ 475. Energy per decision: {energy}.
{(chr(10) + NOTES[r0['preset']] + chr(10)) if r0.get('preset') in NOTES else ''}
Beside the Loihi numbers of the CartPole DQN (the energy section above: tests/data/policy.nir, 4-64-64-2, T = 8, emulator in Loihi fixed point): {LOIHI_DQN['synops']:,} synaptic ops per decision over {LOIHI_DQN['steps']} Lava steps; {LOIHI_DQN['total']} per decision with whole-chip static power at real time, {LOIHI_DQN['lowest']} with the unthrottled timestep and its 3 cores' share (the static-power table). The Xylo policy counts one synaptic event per spike and target weight (a hidden neuron's several spikes in one step are several events). The input encoder's host cost is {r0['encoder_ops']} arithmetic operations per decision (normalize, clip and code 4 values into 8 channels), unpriced.
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--preset", default=DEFAULT_PRESET, help="the training preset (default %(default)s)")
    p.add_argument("--from-json", action="store_true", help="rewrite the section from the preset's saved results")
    args = p.parse_args(argv)
    results, title = results_path(args.preset), section_title(args.preset)
    if args.from_json:
        saved = json.loads(results.read_text())
        update_section(title, section(saved["rows"], saved["command"], saved["machine"]))
        return 0
    command = "python benchmarks/xylo.py" + (f" {shlex.join(argv or sys.argv[1:])}" if (argv or sys.argv[1:]) else "")
    rows = []
    for seed in args.seeds:
        rows.append(run_seed(seed, args.episodes, args.preset))
        print(json.dumps(rows[-1], default=str), flush=True)
    results.write_text(json.dumps({"command": command, "machine": machine(), "rows": rows}, indent=2, default=str))
    update_section(title, section(rows, command, machine()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
