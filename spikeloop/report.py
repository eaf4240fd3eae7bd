"""report.md: the run's answers to "does it still work there, and what does a decision cost?"."""
from __future__ import annotations


def fmt_energy(joules: float | None) -> str:
    """Energy with an SI prefix (``12.3 nJ``); 'unpriced' for None."""
    if joules is None:
        return "unpriced"
    for scale, unit in ((1, "J"), (1e-3, "mJ"), (1e-6, "µJ"), (1e-9, "nJ"), (1e-12, "pJ")):
        if abs(joules) >= scale:
            return f"{joules / scale:.3g} {unit}"
    return f"{joules / 1e-15:.3g} fJ"


def fmt_count(x: float) -> str:
    """A per-decision count: thousands separators, and small values kept readable."""
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:,.1f}"
    return f"{x:.4g}"


def _num(x, nd=1):
    return "–" if x is None else f"{x:,.{nd}f}"


def _energy_table(rep: dict) -> list[str]:
    lines = ["| term | count / decision | energy per event | energy / decision | source | confidence |",
             "|---|---:|---:|---:|---|---|"]
    for t in rep["terms"]:
        note = f" ({t['note']})" if t.get("note") else ""
        per_event = fmt_energy(t["energy_per_event"])
        if t["unit"] == "s":  # a power times a duration
            per_event = per_event.replace("J", "W")
        lines.append(f"| {t['name']} | {fmt_count(t['count'])} {t['unit']} | {per_event} "
                     f"| {fmt_energy(t['energy_J'])} | {t['source']}{note} | {t['confidence']} |")
    return lines


def render_markdown(r: dict) -> str:
    pol, ev = r["policy"], r["evaluation"]
    kinds = ", ".join(f"{v['kind']}" for v in pol["populations"].values())
    out = [f"# spikeloop report: {r['env_id']}", "",
           f"Policy `{pol['nir']}`: {' → '.join(map(str, pol['layers']))} ({kinds}); "
           f"decision window T = {pol['T']} steps of dt = {pol['dt_s'] * 1e3:g} ms. On Lava a decision takes "
           f"{pol['steps_per_decision']} steps: the window plus {pol['latency_steps']} steps of pipeline "
           f"latency (one per Dense hop).", "",
           f"Created {r['created']} by `{r['command']}` (spikeloop {r['spikeloop_version']}, "
           f"Python {r['machine']['python']}).", ""]
    if r.get("training"):
        t = r["training"]
        out += [f"Training: {t['env_steps']:,} environment steps, {t['seconds']:.0f} s, seed {t['seed']}; "
                f"best greedy evaluation in torch {t['best_eval_return_torch']:.1f}.", ""]
    out += ["## Does it still work there?", "",
            "| run | episodes | mean return | min | std | actions equal to torch float | max abs ΔQ vs torch |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    names = {"torch_float": "torch float (training model)", "lava_float": "Lava floating_pt",
             "lava_fixed": "Lava fixed_pt (bit-accurate Loihi)", "emulator_fixed": "emulator fixed"}
    for key, s in ev.items():
        agree = "–" if s.get("agreement_with_torch") is None else f"{100 * s['agreement_with_torch']:.2f} %"
        out.append(f"| {names.get(key, key)} | {s['episodes']} | {s['mean_return']:.1f} | {s['min_return']:.0f} "
                   f"| {s['std_return']:.1f} | {agree} | {_num(s.get('q_max_abs_diff_vs_torch'), 4)} |")
    acc = r["acceptance"]
    out += ["", f"Lava fixed point mean return over {acc['episodes']} episodes: **{acc['lava_fixed_mean_return']:.1f}** "
            f"({'meets' if acc['lava_fixed_mean_return_ge_475'] else 'misses'} the 475 bar).", "",
            "## What the deployed network did (per decision)", "",
            f"Source: {r['counts_source']}.", "",
            "| population | neurons | spikes | active updates | inactive updates |", "|---|---:|---:|---:|---:|"]
    c = r["counts_per_decision"]
    for name, info in pol["populations"].items():
        upd, act = c["updates"][name], c["active"][name]
        spikes = c["spikes"].get(name)
        out.append(f"| {name} ({info['kind']}) | {info['size']} | {'–' if spikes is None else fmt_count(spikes)} "
                   f"| {fmt_count(act)} | {fmt_count(upd - act)} |")
    out += ["", "| connection | input | synaptic ops |", "|---|---|---:|"]
    for name, n in c["synops"].items():
        out.append(f"| {name} | {'graded observation' if c['graded'][name] else 'binary spikes'} | {fmt_count(n)} |")
    en = r["energy"]
    out += ["", "## What does one decision cost?", ""]
    for name, rep in en["targets"].items():
        out += [f"### {rep['title']} (`{name}`)", ""] + _energy_table(rep) + [""]
        out.append(f"Total of the priced terms: **{fmt_energy(rep['total_J'])} per decision**, of which "
                   f"static {fmt_energy(rep['static_J'])} and dynamic {fmt_energy(rep['dynamic_J'])}"
                   + (f"; unpriced: {', '.join(rep['unpriced'])}" if rep["unpriced"] else "") + ".")
        for a in rep["assumptions"]:
            out.append(f"- {a}")
        out.append("")
    out += ["### Dense-ANN baseline (same layer sizes, one forward pass per decision)", ""]
    for prec, rep in en["baselines"].items():
        t = rep["terms"][0]
        out.append(f"- {prec}: {t['count']:,.0f} MACs × {fmt_energy(t['energy_per_event'])} = "
                   f"**{fmt_energy(rep['total_J'])}** ({t['source']}; {t['confidence']}; {t['note']})")
    for name, rep in en["targets"].items():
        out.append(f"- `{name}` total / dense fp32 = {_num(rep['ratio_vs_dense_fp32'], 2)}×; dynamic only / "
                   f"dense fp32 = {_num(rep['dynamic_ratio_vs_dense_fp32'], 3)}×, / dense int8 = "
                   f"{_num(rep['dynamic_ratio_vs_dense_int8'], 3)}×")
    out += ["", "## Fixed-point quantization", "",
            "| population | scale (int per unit) | max weight rel. error | threshold rel. error | max bias abs. error |",
            "|---|---:|---:|---:|---:|"]
    for name, q in r["quantization"].items():
        w = max((v for k, v in q.items() if k.startswith("weight_rel_err")), default=0.0)
        out.append(f"| {name} | {q['scale']:.4g} | {w:.2e} | {_num(q.get('vth_rel_err'), 6)} | {q['bias_abs_err']:.2e} |")
    out += ["", "## How to read this report", "",
            "- Returns come from closed-loop episodes: each decision feeds one observation as graded input, "
            "runs the window in Lava, reads the readout voltage and takes the argmax as the action. "
            "Episode *i* starts from `reset(seed + i)` for every run, so rows are comparable.",
            "- Counts are read from counters inside the Lava process models (not estimated). Active "
            "updates are neuron updates after which the neuron holds non-zero state; Loihi also pays for "
            "the inactive ones.",
            "- Every energy figure is a measured count times a constant from the profile, whose source and "
            "confidence are listed. Terms a profile cannot price are listed as unpriced, never guessed.", ""]
    return "\n".join(out)
