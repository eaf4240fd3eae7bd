"""CartPole with binary input only (Loihi 1): a population code in front, over several seeds, in Lava fixed point.

    .venv/bin/python benchmarks/binary_input.py                       # seeds 0-2
    .venv/bin/python benchmarks/binary_input.py --preset dqn-binary   # the spiking DQN instead

Each seed trains ``spikeloop train --preset reinforce-binary`` (or ``--preset``), then runs its greedy policy in
torch float and in the emulator in Loihi fixed point (``--episodes``, reset seeds 1000...) and
in Lava fixed point (fused mapping, ``--lava-episodes``): the input is plain spikes, no
graded payload. The energy of one decision on Loihi prices the encoder as host work. Writes
the section "Binary input" of BENCHMARKS.md (one per preset); results in
``benchmarks/binary_input.json`` (``benchmarks/binary_input-PRESET.json`` for another preset).
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

SECTION = "Binary input: CartPole on Loihi 1 with a spike encoder (benchmarks/binary_input.py)"
DEFAULT_PRESET = "reinforce-binary"
AGENTS = {"reinforce-binary": "REINFORCE, 64 hidden LIF neurons, T 16",
          "dqn-binary": "DQN, 64 and 64 hidden LIF neurons, T 8"}
"""what each preset trains, for the section's text"""


def section_title(preset: str) -> str:
    return SECTION if preset == DEFAULT_PRESET else f"{SECTION[:-1]} --preset {preset})"


def results_path(preset: str) -> Path:
    return ROOT / "benchmarks" / ("binary_input.json" if preset == DEFAULT_PRESET else f"binary_input-{preset}.json")


def run_seed(seed: int, episodes: int, lava_episodes: int, preset: str = DEFAULT_PRESET) -> dict:
    from spikeloop.core.nir_io import read_graph, write_graph
    from spikeloop.export.to_nir import export_policy
    from spikeloop.options import preset_path
    from spikeloop.pipeline import energy_stage, read_config
    from spikeloop.runtime.backends import make_backend
    from spikeloop.runtime.compiler import plan_from_nir
    from spikeloop.runtime.runner import run_closed_loop
    from spikeloop.train.agents import config_from_dict, get_agent
    from spikeloop.train.evaluate import evaluate_torch

    agent, body = read_config(preset_path(preset))
    spec = get_agent(agent)
    res = spec.train(config_from_dict(spec.config, {**body, "seed": seed}), progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "policy.nir"
        write_graph(path, export_policy(res.policy, 1e-3))
        plan = plan_from_nir(read_graph(path))
    assert not plan.input_graded
    torch_ret = evaluate_torch(res.policy, "CartPole-v1", episodes, seed=1000)
    emu = run_closed_loop(make_backend("emulator", plan, "fixed", batch=episodes), "CartPole-v1", episodes, 1000,
                          progress=False)
    lava = run_closed_loop(make_backend("lava-fused", plan, "fixed"), "CartPole-v1", lava_episodes, 1000,
                           progress=False)
    loihi = energy_stage(plan, emu.counts.per_decision(), ["loihi"], "cpu-45nm")["targets"]["loihi"]
    terms = {t["name"]: t for t in loihi["terms"]}
    return {"seed": seed, "steps": res.steps, "train_s": res.seconds, "best_eval": res.best_eval,
            "torch": torch_ret, "emulator": emu.returns, "lava": lava.returns,
            "inputs": plan.input_size, "encoder": plan.encoding.describe(),
            "encoder_ops": terms["input spike encoder (host)"]["count"],
            "encoder_J": terms["input spike encoder (host)"]["energy_J"],
            "chip_dynamic_J": loihi["chip_dynamic_J"], "static_J": loihi["static_J"],
            "synops": sum(emu.counts.per_decision()["synops"].values()), "unpriced": loihi["unpriced"]}


def section(rows: list[dict], command: str, episodes: int, lava_episodes: int, preset: str = DEFAULT_PRESET) -> str:
    from spikeloop.report import fmt_energy

    def ms(x):
        return f"{np.mean(x):.1f} ± {np.std(x):.1f}"

    body = [f"| {r['seed']} | {r['steps']:,} | {r['train_s']:.0f} | {ms(r['torch'])} | {ms(r['emulator'])} | "
            f"{ms(r['lava'])} | {r['synops']:,.0f} | {fmt_energy(r['chip_dynamic_J'])} | "
            f"{r['encoder_ops']:.0f} ops, {fmt_energy(r['encoder_J'])} |" for r in rows]
    lava = np.array([np.mean(r["lava"]) for r in rows])
    r0 = rows[0]
    return f"""Seeds {', '.join(str(r['seed']) for r in rows)}: `{command}` on {machine()}.

Each seed trains `spikeloop train --preset {preset}` ({AGENTS[preset]}; input: {r0['encoder']}, {r0['inputs']} channels), then runs greedy episodes (reset seeds 1000...): {episodes} in torch float and in the emulator in Loihi fixed point, {lava_episodes} in Lava fixed point (fused mapping), where the input is plain spikes (no graded payload). Energy on Loihi from the emulator's counts: the chip's dynamic energy, and the encoder priced as host work on cpu-45nm (each operation one fp32 MAC, an upper bound); static power as in the energy section. Target: ≥ 475 in Lava fixed point with binary input only.

| seed | env steps | train s | torch float | emulator fixed | Lava fixed | synaptic ops / decision | Loihi dynamic / decision | encoder (host) / decision |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|
{chr(10).join(body)}

Across seeds: Lava fixed mean {lava.mean():.1f} (min {lava.min():.1f}); {int((lava >= 475).sum())} of {len(rows)} seeds at ≥ 475. Terms left unpriced on Loihi: {', '.join(r0['unpriced']) or 'none'}.
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--lava-episodes", type=int, default=20)
    p.add_argument("--preset", choices=tuple(AGENTS), default=DEFAULT_PRESET)
    args = p.parse_args(argv)
    extra = argv if argv is not None else sys.argv[1:]
    command = "python benchmarks/binary_input.py" + (f" {shlex.join(extra)}" if extra else "")
    rows = []
    for seed in args.seeds:
        rows.append(run_seed(seed, args.episodes, args.lava_episodes, args.preset))
        print(json.dumps({k: v for k, v in rows[-1].items() if not isinstance(v, list)}), flush=True)
    results_path(args.preset).write_text(json.dumps({"command": command, "machine": machine(), "rows": rows}))
    update_section(section_title(args.preset), section(rows, command, args.episodes, args.lava_episodes, args.preset))
    return 0


if __name__ == "__main__":
    sys.exit(main())
