"""What lava-dl's netx grid costs the committed CartPole policy, against spikeloop's own fixed point.

    .venv/bin/python benchmarks/netx.py
    .venv/bin/python benchmarks/netx.py --policy runs/n0 --policy runs/n1   # and run folders trained otherwise,
        # e.g. on netx's grid: spikeloop train --preset netx-cartpole --seed 0 --out runs/n0 && spikeloop export runs/n0

The policy is ``tests/data/policy.nir`` (the demo's spiking DQN). Both register sets run in the
numpy emulator, which is bit-exact with Lava fixed point on spikeloop's registers and with
lava-dl's own netx loader on netx's (``tests/test_netx.py``), over the same 20 greedy episodes
(reset seeds 1000...), the torch policy on every observation. Writes the section "netx" of
BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, update_section  # noqa: E402

SECTION = "netx: lava-dl's grid against spikeloop's fixed point (benchmarks/netx.py)"
EPISODES = 20


def measure(nir: Path, ckpt: Path) -> tuple[list[str], list[str], str, list[float]]:
    """Rows of both register sets for one policy, the export's notes, its weight exponents, and the
    shares of actions equal to torch float on spikeloop's and on netx's grid."""
    from spikeloop.core.nir_io import read_graph
    from spikeloop.runtime.backends import make_backend
    from spikeloop.runtime.compiler import plan_from_nir
    from spikeloop.runtime.fixed_point import quantize_plan
    from spikeloop.runtime.netx import netx_fixed_plan
    from spikeloop.runtime.runner import run_closed_loop
    from spikeloop.train.checkpoint import load_policy
    from spikeloop.train.policy import TorchPolicy

    plan = plan_from_nir(read_graph(nir))
    policy = load_policy(ckpt)[0]
    fixed = quantize_plan(plan)
    netx, notes = netx_fixed_plan(plan, fixed)
    rows, agreements = [], []
    for name, registers in (("spikeloop fixed point", fixed), ("netx grid", netx)):
        r = run_closed_loop(make_backend("emulator", plan, "fixed", registers), "CartPole-v1", EPISODES, 1000,
                            reference=TorchPolicy(policy), progress=False)
        rows.append(f"| {name} | {r.mean_return:.1f} | {100 * r.agreement:.2f} % | {r.decisions:,} |")
        agreements.append(r.agreement)
    exps = ", ".join(f"{n} {c.weight_exp:+d}" for n, c in fixed.connections.items())
    return rows, notes, exps, agreements


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--policy", action="append", default=[], type=Path,
                   help="a run folder (policy.nir and policy.safetensors) to measure beside the committed policy")
    args = p.parse_args(argv)
    extra = argv if argv is not None else sys.argv[1:]
    command = "python benchmarks/netx.py" + (f" {shlex.join(extra)}" if extra else "")
    data = ROOT / "tests" / "data"
    parts, verdicts, gaps = [], [], []
    for label, nir, ckpt in [("the committed CartPole policy (`tests/data/policy.nir`, 8-bit input)",
                              data / "policy.nir", data / "policy.safetensors")] + \
            [(describe(r), r / "policy.nir", r / "policy.safetensors") for r in args.policy]:
        rows, notes, exps, (own, agreement) = measure(nir, ckpt)
        verdicts.append(f"{label.split(' (')[0]} {100 * agreement:.2f} %")
        if nir.parent != data:
            gaps.append(100 * (own - agreement))
        note = "\n".join(f"- {n}" for n in notes) or "- none"
        parts.append(f"""**{label}**: spikeloop's weight exponents {exps}.

| registers | mean return | actions equal to torch float | decisions |
|:---|---:|---:|---:|
{chr(10).join(rows)}

The export's notes:
{note}
""")
    update_section(SECTION, f"""`{command}` on {machine()}.

{EPISODES} greedy episodes (reset seeds 1000...) on each register set, torch float on every observation. netx's dense layer has no weight exponent (its integer weights are the input per unit of the payload or spike, at most 254) and a fixed bias exponent 6: a negative exponent coarsens the weights, a positive one shrinks the population's scale (a coarser threshold and bias).

{chr(10).join(parts)}
Actions on netx's grid equal to torch float: {"; ".join(verdicts)}. A policy trained on spikeloop's own grid loses its input layer's weight resolution (netx has no weight exponent) and its hidden thresholds and biases (a positive exponent shrinks the scale). Trained on netx's grid (`--preset netx-cartpole`: a 6-bit payload keeps the first layer's weights exact; `netx_grid` puts every later layer's threshold and bias on netx's registers), netx holds every weight and every register behind the first layer exactly; the first layer's bias (at netx's fixed exponent 6) is the one register netx still rounds more coarsely than spikeloop's fixed point{f", and netx's agreement is at most {max(gaps):.2f} points below spikeloop's own fixed point's" if gaps else ""}. Where both grids fall short of 99 %, the gap is the fixed point's (integer state and rounding against torch float), not netx's. `tests/data/netx` is the seed-2 policy; tests/test_netx.py holds it to 99 %.
""")
    return 0


def describe(run: Path) -> str:
    """A run folder's policy: its input bits, agent, seed and how its training went."""
    import json

    from spikeloop.train.checkpoint import load_policy

    policy = load_policy(run / "policy.safetensors")[0]
    t = json.loads((run / "training.json").read_text())
    return (f"`{run}` ({policy.encoding.bits}-bit input; agent {policy.provenance.agent}, seed "
            f"{policy.provenance.seed}, {t['steps']:,} steps, best greedy eval {t['best_eval']:.1f})")


if __name__ == "__main__":
    sys.exit(main())
