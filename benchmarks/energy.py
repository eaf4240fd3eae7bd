"""Energy per decision across targets for two policies, beside the seed documents' style of claims.

Prints a markdown table and writes it into the "Energy per decision" section of
BENCHMARKS.md (other sections are kept). Counts are measured in closed loop on
CartPole-v1 with the numpy emulator in Loihi fixed point, which is bit-exact with
Lava's ``fixed_pt`` models (tests/test_parity.py); ``--backend lava`` measures them
in Lava itself (slower, same numbers).

    .venv/bin/python benchmarks/energy.py                 # print and update BENCHMARKS.md
    .venv/bin/python benchmarks/energy.py --no-write      # print only

Policies: the trained CartPole policy (tests/data/policy.nir, 4-64-64-2) and a larger
random SpikingMLP (4-256-256-256-2, seeded), which shows how the terms scale.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, update_section  # noqa: E402

SECTION = "Energy per decision (benchmarks/energy.py)"
SEED_FACTOR = 0.97  # spiking_rainbow_dqn.md: "energy_savings = sparsity * 0.97  # 97% from SpikingBrain"


def larger_policy(seed: int = 0):
    """A 4-256-256-256-2 spiking MLP with seeded random weights N(0, 2/fan_in), exported to a plan."""
    import torch

    from spikeloop.core.coding import InputEncoding
    from spikeloop.export.to_nir import export_policy
    from spikeloop.runtime.compiler import plan_from_nir
    from spikeloop.train.graph import Neuron, QuantLinear
    from spikeloop.train.networks import spiking_mlp
    from spikeloop.train.policy import Policy

    torch.manual_seed(seed)
    sizes = [4, 256, 256, 256, 2]
    net = spiking_mlp(sizes, du=1.0, dv=0.125, fake_quant=True).double()
    with torch.no_grad():
        for m in net.nodes.values():  # fc0, lif0, fc1, ...: weights then biases, layer by layer
            if isinstance(m, QuantLinear):
                m.weight.normal_(0, float(np.sqrt(2.0 / m.in_features)) * 2)
            elif isinstance(m, Neuron):
                m.bias.normal_(0, 0.05)
    enc = InputEncoding(mean=(0.0, 0.0, 0.0, 0.0), std=(0.5, 0.5, 0.1, 0.5))
    return plan_from_nir(export_policy(Policy(net, 8, enc), 1e-3)), "random 4-256-256-256-2 (seed 0)"


def measure(plan, episodes: int, seed: int, backend: str):
    """Closed-loop CartPole-v1 episodes; per-decision counts and returns."""
    from spikeloop.runtime.backends import make_backend
    from spikeloop.runtime.fixed_point import quantize_plan
    from spikeloop.runtime.runner import run_closed_loop

    fixed = quantize_plan(plan)
    t0 = time.time()
    res = run_closed_loop(make_backend(backend, plan, "fixed", fixed), "CartPole-v1", episodes=episodes, seed=seed,
                          progress=False)
    return res, time.time() - t0


def rows_for(label: str, plan, res, energy: dict) -> list[str]:
    from spikeloop.report import fmt_count, fmt_energy, target_rows

    nb = energy["neurobench"]
    sparsity = nb["activation_sparsity"]
    claimed = sparsity * SEED_FACTOR
    dense = energy["baselines"]["fp32"]["total_J"]
    lines = [f"### {label}", "",
             f"{len(res.returns)} episodes, {res.decisions} decisions, mean return {res.mean_return:.1f}; "
             f"{plan.neuron_count} neurons, {energy['shape']['dense_macs']:,} weights; "
             f"{nb['steps']:g} Lava steps per decision (T = {plan.T} + {plan.latency} pipeline latency).", "",
             f"NeuroBench-convention counts per decision: dense {fmt_count(nb['dense'])}, effective MACs "
             f"{fmt_count(nb['effective_macs'])}, effective ACs {fmt_count(nb['effective_acs'])}, activation "
             f"sparsity {sparsity:.4f}. Dense-ANN baseline: {fmt_energy(dense)} (fp32), "
             f"{fmt_energy(energy['baselines']['int8']['total_J'])} (int8) per decision.", "",
             "| target | fits? | cores | chip energy / decision | of which static | chip dynamic / dense fp32 | "
             "unpriced terms |", "|---|---|---|---:|---:|---:|---|"]
    for row in target_rows(energy):
        lines.append(f"| {row['target']} | {row['fits']} | {row['cores']} | {row['chip']} | {row['static']} | "
                     f"{row['vs_fp32']} | {row['unpriced']} |")
    lines += ["", "Seed-style claim beside the measurement:", "",
              "| claim (seed documents) | claimed | measured here |", "|---|---:|---|"]
    lines.append(f"| sparsity = 1 − spikes / (neurons × steps) (spiking_rainbow_dqn.md) | – | {sparsity:.4f} |")
    measured = []
    for name, rep in energy["targets"].items():
        if rep.get("chip_dynamic_J") is None:
            continue
        bound = "" if rep.get("chip_complete") else "≥ "
        text = f"{name}: {bound}{rep['chip_dynamic_J'] / dense:,.3g}× the dense energy (dynamic)"
        if rep["static_J"]:
            text += f", {bound}{rep['chip_J'] / dense:,.3g}× with static power"
        measured.append(text)
    lines.append(f"| energy savings vs a dense network = sparsity × 0.97 (spiking_rainbow_dqn.md) | "
                 f"{100 * claimed:.1f} % saved | {'; '.join(measured) or 'no target prices its on-chip terms'}"
                 " — no saving on any target that can be priced |" if measured and all(
                     r.get("chip_dynamic_J", 0) is None or r["chip_dynamic_J"] > dense
                     for r in energy["targets"].values() if r.get("chip_dynamic_J") is not None) else
                 f"| energy savings vs a dense network = sparsity × 0.97 (spiking_rainbow_dqn.md) | "
                 f"{100 * claimed:.1f} % saved | {'; '.join(measured) or 'no target prices its on-chip terms'} |")
    ratios = [f"{n}: {bound_of(rep)}{rep['chip_dynamic_J'] / dense:.3g}×" for n, rep in energy["targets"].items()
              if rep.get("chip_dynamic_J")]
    lines.append("| \"4–5 orders of magnitude\" less energy than an ANN (spiking_decision_transformer.md) | "
                 f"10⁻⁴–10⁻⁵× | chip dynamic / dense fp32 = {', '.join(ratios)} |")
    loihi = energy["targets"].get("loihi")
    if loihi and loihi.get("chip_dynamic_J"):
        share = {t["name"]: t["energy_J"] / loihi["chip_dynamic_J"] for t in loihi["terms"]
                 if t["energy_J"] is not None and t.get("where", "chip") == "chip" and t["constant"] != "static_power"}
        syn = share.get("synaptic ops (binary spikes)", 0) + share.get("synaptic ops (graded input)", 0)
        upd = share.get("neuron updates (active)", 0) + share.get("neuron updates (inactive)", 0)
        counts = res.counts.per_decision()
        lines += ["", f"On Loihi, {100 * syn:.0f} % of the dynamic energy is synaptic ops and {100 * upd:.0f} % "
                  f"neuron updates ({sum(counts['updates'].values()):,.0f} per decision, every neuron at every "
                  "step whatever the sparsity); the dense baseline is one forward pass, the spiking network runs "
                  f"{nb['steps']:g} steps per decision, so its {fmt_count(nb['effective_acs'] + nb['effective_macs'])} "
                  f"synaptic ops outnumber the {energy['shape']['dense_macs']:,} dense MACs even at "
                  f"{100 * sparsity:.0f} % activation sparsity."]
    lines.append("")
    return lines


def bound_of(rep: dict) -> str:
    return "" if rep.get("chip_complete") else "≥ "


def static_table(plan, per_decision: dict, profiles: list[str]) -> list[str]:
    """Each target's chip energy per decision under each static-power choice (both halves are assumptions)."""
    from spikeloop.hwprofiles.energy import STATIC_SHARES, STATIC_TIMESTEPS
    from spikeloop.pipeline import energy_stage
    from spikeloop.report import fmt_energy

    choices = [(t, s) for t in STATIC_TIMESTEPS for s in STATIC_SHARES]
    cols = {c: energy_stage(plan, per_decision, profiles, "cpu-45nm", *c)["targets"] for c in choices}
    head = ["target"] + [f"{'real time' if t == 'realtime' else 'unthrottled'}, "
                         f"{'whole chip' if s == 'chip' else 'used cores'}" for t, s in choices]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * len(choices)]
    for name in profiles:
        cells = []
        for c in choices:
            rep = cols[c][name]
            if rep["chip_J"] is None:
                cells.append("unpriced")
                continue
            static = next(t for t in rep["terms"] if t["name"] == "static power x window")
            st = fmt_energy(rep["static_J"]) if static["status"] == "priced" else "unpriced"
            cells.append(f"{'' if rep['chip_complete'] else '≥ '}{fmt_energy(rep['chip_J'])} (static {st})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return ["Chip energy per decision of the trained CartPole policy under each static-power choice "
            "(`--static-timestep realtime|unthrottled`, `--static-share chip|cores`; the default is real time and "
            "the whole chip). Loihi's unthrottled timestep is the slow end of the published 5.8-13 µs (Frady et al. "
            "2020); the used-core share is the fit's cores used over the chip's cores. 'unpriced' static: the "
            "profile publishes no timestep of that kind, or no core count.", ""] + lines + [""]


def main(argv=None) -> int:
    import spikeloop.runtime  # noqa: F401  (Lava shim before anything imports lava)
    from spikeloop.core.nir_io import read_graph
    from spikeloop.hwprofiles import builtin_profiles
    from spikeloop.pipeline import energy_stage
    from spikeloop.runtime.compiler import plan_from_nir

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", type=int, default=3, help="CartPole episodes for the trained policy")
    ap.add_argument("--large-episodes", type=int, default=20, help="episodes for the larger random policy")
    ap.add_argument("--seed", type=int, default=1000, help="episode i is reset with seed + i")
    ap.add_argument("--backend", choices=("emulator", "lava-fused", "lava-per-node"), default="emulator")
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)

    profiles = builtin_profiles("neuromorphic")
    cartpole = plan_from_nir(read_graph(ROOT / "tests/data/policy.nir"), source="tests/data/policy.nir")
    large, large_label = larger_policy()
    cmd = "benchmarks/energy.py" + (" " + " ".join(sys.argv[1:]) if argv is None and sys.argv[1:] else "")
    out = [f"Command: `.venv/bin/python {cmd}`. Machine: {machine()}.", "",
           f"Counts measured in closed loop on CartPole-v1 ({args.backend}"
           + (", Loihi fixed point, bit-exact with Lava fixed_pt" if args.backend == "emulator" else " fixed_pt")
           + f"; episode i reset with seed {args.seed} + i), priced with the cited constants of each profile "
           "(hwprofiles/*.toml). '≥' and 'at most' mark targets with unpriced on-chip terms; 'unpriced' means "
           "no per-operation energy is published. Static power, unless a table says otherwise, is whole-chip "
           "power over the decision's Lava steps at the profile's real-time timestep.", ""]
    cheaper: set[str] = set()
    for plan, label, episodes in ((cartpole, "trained CartPole policy (tests/data/policy.nir, 4-64-64-2)",
                                   args.episodes), (large, large_label, args.large_episodes)):
        res, secs = measure(plan, episodes, args.seed, args.backend)
        energy = energy_stage(plan, res.counts.per_decision(), profiles, "cpu-45nm")
        out += rows_for(label, plan, res, energy)
        if plan is cartpole:
            out += static_table(plan, res.counts.per_decision(), profiles)
        dense = energy["baselines"]["fp32"]["total_J"]
        cheaper |= {n for n, rep in energy["targets"].items()
                    if rep.get("chip_dynamic_J") is not None and rep["chip_dynamic_J"] < dense}
        print(f"[{label}: {res.decisions} decisions measured in {secs:.1f} s]", file=sys.stderr)
    verdict = ("no target whose on-chip energy can be priced comes out cheaper than" if not cheaper else
               f"only {', '.join(sorted(cheaper))} comes out cheaper than")
    out += ["Reading: the seed heuristic turns activation sparsity into a saving. Priced with cited constants "
            f"and measured counts, {verdict} a dense fp32 pass of the same layers on 45 nm arithmetic (memory "
            "traffic excluded from the baseline), and Loihi's whole-chip static power over real-time steps dwarfs "
            "every dynamic term (the static-power table shows how much of that is the assumption: unthrottled "
            "steps and the used cores' share shrink it by three orders of magnitude). Loihi 2, Speck and "
            "Xylo publish no per-operation energy, so they cannot be ranked at all. The random policy's "
            "returns are those of untrained weights; it is there to show how the terms scale with width.", ""]
    text = "\n".join(out)
    print(text)
    if not args.no_write:
        update_section(SECTION, text, Path(args.out))
        print(f"updated {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
