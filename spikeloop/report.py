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


def chip_run_head(title: str, report: dict) -> list[str]:
    """The first lines of a chip run's report (Xylo, Speck): title, policy, command, and the returns and
    agreement with torch of each run."""
    lines = [title, "", f"Policy: `{report['policy']}`. Command: `{report.get('command', '')}`", "",
             "| run | mean return | std | episodes | actions equal to torch |", "|---|---:|---:|---:|---:|"]
    for k, s in report["evaluation"].items():
        agree = s.get("agreement_with_torch")
        lines.append(f"| {k} | {s['mean_return']:.1f} | {s['std_return']:.1f} | {s['episodes']} | "
                     f"{'' if agree is None else f'{100 * agree:.2f} %'} |")
    return lines


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
        status = t.get("status", "priced" if t["energy_per_event"] is not None else "unpriced")
        per_event = {"priced": fmt_energy(t["energy_per_event"]), "included": "included"}.get(status, "unknown")
        if t["unit"] == "s":  # a power times a duration
            per_event = per_event.replace("J", "W")
        energy = {"priced": fmt_energy(t["energy_J"]), "included": "in the all-in figure"}.get(status, "**unpriced**")
        lines.append(f"| {t['name']} | {fmt_count(t['count'])} {t['unit']} | {per_event} "
                     f"| {energy} | {t['source']}{note} | {t['confidence']} |")
    return lines


def target_rows(energy: dict) -> list[dict]:
    """One row per target: fits?, cores, priced chip energy per decision, ratios and unpriced terms.

    Chip energy is the sum of the priced on-chip terms; with any on-chip term unpriced it is
    a lower bound, shown with '≥'. Host encoding and decoding are shown apart.
    """
    rows = []
    fp32 = energy["baselines"]["fp32"]["total_J"]
    int8 = energy["baselines"]["int8"]["total_J"]
    for name, rep in energy["targets"].items():
        fit = rep.get("fit") or {}
        cores, avail = fit.get("cores_used"), fit.get("cores_available")
        chip, dyn = rep.get("chip_J"), rep.get("chip_dynamic_J")
        bound = "" if rep.get("chip_complete") else "≥ "
        chip_terms = [t["name"] for t in rep["terms"] if t.get("where", "chip") == "chip"
                      and t.get("status") != "included" and t["name"] != "input spike encoder"]
        unpriced = rep["unpriced"]
        if chip_terms and all(n in unpriced for n in chip_terms):
            unpriced = ["every on-chip term"] + [n for n in unpriced if n not in chip_terms]
        rows.append({"target": name, "fits": fit.get("verdict", "not checked"),
                     "cores": "–" if cores is None else (f"{cores} of {avail}" if avail else str(cores)),
                     "chip": "unpriced" if chip is None else bound + fmt_energy(chip),
                     "static": "–" if chip is None else (fmt_energy(rep["static_J"]) if rep["static_J"] else
                                                         "unpriced" if "static power x window" in rep["unpriced"]
                                                         else "included" if any(
                                                             t["name"] == "static power x window" and
                                                             t.get("status") == "included" for t in rep["terms"])
                                                         else "–"),
                     "host": fmt_energy(rep.get("host_J")) if rep.get("host_J") else "–",
                     "vs_fp32": "–" if dyn is None or not fp32 else bound + _num(dyn / fp32, 3),
                     "vs_int8": "–" if dyn is None or not int8 else bound + _num(dyn / int8, 3),
                     "unpriced": ", ".join(unpriced) or "none"})
    return rows


TARGET_COLUMNS = (("target", "target"), ("fits", "fits?"), ("cores", "cores"),
                  ("chip", "chip energy / decision (priced terms)"), ("static", "of which static"),
                  ("host", "host encode + decode"), ("vs_fp32", "chip dynamic / dense fp32"),
                  ("vs_int8", "chip dynamic / dense int8"), ("unpriced", "unpriced terms"))
NUMERIC_COLUMNS = ("chip", "static", "host", "vs_fp32", "vs_int8")


def targets_markdown(energy: dict) -> list[str]:
    """The cross-target table as markdown lines."""
    lines = ["| " + " | ".join(h for _, h in TARGET_COLUMNS) + " |",
             "|" + "|".join("---:" if k in NUMERIC_COLUMNS else "---"
                            for k, _ in TARGET_COLUMNS) + "|"]
    lines += ["| " + " | ".join(row[k] for k, _ in TARGET_COLUMNS) + " |" for row in target_rows(energy)]
    return lines


def targets_text(energy: dict) -> str:
    """The cross-target table as aligned plain text (for the terminal)."""
    rows = target_rows(energy)
    keys = [k for k, _ in TARGET_COLUMNS if k not in ("host", "vs_int8")]
    heads = dict(TARGET_COLUMNS) | {"chip": "chip energy/decision", "static": "of which static",
                                    "vs_fp32": "dynamic/dense fp32"}
    width = {k: max(len(heads[k]), *(len(r[k]) for r in rows)) if rows else len(heads[k]) for k in keys}
    width["unpriced"] = len(heads["unpriced"])
    fmt = lambda r: "  ".join(str(r[k]).ljust(width[k]) for k in keys)  # noqa: E731
    lines = [fmt(heads), fmt({k: "-" * width[k] for k in keys})] + [fmt(r) for r in rows]
    return "\n".join(lines + static_lines(energy))


def static_lines(energy: dict) -> list[str]:
    """The static-power assumption the figures use (both halves are choices: see --static-*)."""
    choices = {rep["static_choice"]["described"] for rep in energy["targets"].values() if rep.get("static_choice")}
    return [f"static power: {c} (--static-timestep, --static-share)" for c in sorted(choices)]


def _fit_lines(fit: dict) -> list[str]:
    lines = [f"Does it fit? **{fit['verdict']}** (mapping model '{fit['mapping']}')."]
    for v in fit["violations"]:
        lines.append(f"- violation: {v['message']}")
    if fit["per_core"] and fit["mapping"] == "cores":
        per = fit["per_core"]
        worst = {k: max((c["utilisation"][k] for c in per if c["utilisation"][k] is not None), default=None)
                 for k in ("neurons", "synapse_bytes", "fan_in", "fan_out")}
        lines.append(f"- placement: {len(per)} cores; busiest core uses " + ", ".join(
            f"{lab} {'–' if worst[k] is None else f'{100 * worst[k]:.1f} %'}" for k, lab in (
                ("neurons", "neurons"), ("synapse_bytes", "synapse memory (lower bound)"),
                ("fan_in", "input axons"), ("fan_out", "output axons"))))
    elif fit["per_core"]:
        lines.append("- placement: " + "; ".join(
            f"core {c['core']} ← {c['layer']} (neuron memory {c['neuron_memory']}/{c['neuron_memory_capacity']}, "
            f"kernel memory {c['kernel_memory']}/{c['kernel_memory_capacity']})" for c in fit["per_core"]))
    for r in fit["resources"]:
        lim = "unknown" if r["limit"] is None else f"{r['limit']:,}"
        lines.append(f"- {r['resource']}: {r['used']:,} of {lim} {r['unit']}")
    nc = [f"{r['rule']} ({r['detail']})" for r in fit["rules"] if r["status"] == "not checked"]
    if nc:
        lines.append("- not checked: " + "; ".join(nc))
    lines += [f"- note: {n}" for n in fit["notes"]]
    return lines


def _energy_section(r: dict) -> list[str]:
    en = r["energy"]
    if en is None:
        return ["", "## Does it fit, and what does one decision cost?", "",
                "Not priced: this run evaluated the torch policy only, which counts no operations of a "
                "deployed network (run it with `--backend lava` or `--backend emulator`).", ""]
    out = ["", "## Does it fit, and what does one decision cost?", "",
           "Chip energy per decision is the sum of the **priced** on-chip terms: a measured count (per decision, "
           f"from {r.get('counts_source', 'the run')}) times a constant of the profile, whose source and "
           "confidence are listed below. '≥' marks a target with unpriced on-chip terms: it costs more than "
           "shown, by an amount nobody has published. Static power is priced over the decision's Lava steps "
           f"under one stated assumption ({'; '.join(c['described'] for c in {rep['static_choice']['described']: rep['static_choice'] for rep in en['targets'].values() if rep.get('static_choice')}.values()) or 'whole-chip, real-time timestep'}: "
           "`--static-timestep`, `--static-share` choose); ratios compare the dynamic chip energy with a dense ANN of the same layers on 45 nm "
           "arithmetic.", ""]
    out += targets_markdown(en) + [""]
    figs = en.get("figures") or {}
    if figs.get("breakdown"):
        out += [f"![energy breakdown per target]({figs['breakdown']})", "",
                "*Priced dynamic terms per target beside the dense-ANN baselines (left) and the total including "
                "static power (right, log scale). Unpriced terms are named, not drawn.*", ""]
    if figs.get("raster"):
        ep = figs.get("raster_episode", {})
        out += [f"![spike raster of one episode]({figs['raster']})", "",
                f"*Spikes of every spiking population over one {ep.get('env_id', '')} episode (reset seed "
                f"{ep.get('seed')}, {ep.get('decisions')} decisions, return {ep.get('return', 0):.0f}), recorded "
                "with the numpy emulator in Loihi fixed point, which is bit-exact with Lava's fixed_pt models "
                "(tests/test_parity.py).*", ""]
    for name, rep in en["targets"].items():
        out += [f"### {rep['title']} (`{name}`)", ""]
        if rep.get("fit"):
            out += _fit_lines(rep["fit"]) + [""]
        out += _energy_table(rep) + [""]
        if "chip_J" in rep:
            chip = "unpriced" if rep["chip_J"] is None else (
                f"{'' if rep['chip_complete'] else '≥ '}{fmt_energy(rep['chip_J'])} (static "
                f"{fmt_energy(rep['static_J']) if rep['static_J'] else 'not priced separately'})")
            out.append(f"Per decision: chip **{chip}**; host encoding and decoding {fmt_energy(rep['host_J'])}"
                       + (f"; unpriced: {', '.join(rep['unpriced'])}" if rep["unpriced"] else "") + ".")
        else:  # a report written before chip and host were told apart
            out.append(f"Total of the priced terms: **{fmt_energy(rep['total_J'])} per decision**"
                       + (f"; unpriced: {', '.join(rep['unpriced'])}" if rep["unpriced"] else "") + ".")
        for a in rep["assumptions"]:
            out.append(f"- {a}")
        for k, ref in (rep.get("reference") or {}).items():
            out.append(f"- published for another workload, not used here: {k} = {ref['value']:g} {ref['unit']} "
                       f"({ref['source']}; {ref['confidence']})")
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
    nb = en.get("neurobench")
    if nb:
        sp = nb["activation_sparsity"]
        out += ["", "### NeuroBench-convention counts (profile-free)", "",
                f"Per decision, over its {nb['steps']:g} Lava steps: dense synaptic ops {fmt_count(nb['dense'])}, "
                f"effective MACs {fmt_count(nb['effective_macs'])}, effective ACs {fmt_count(nb['effective_acs'])}, "
                f"activation sparsity {'–' if sp is None else f'{sp:.4f}'}. {nb['convention']}; computed from the "
                "plan and the measured counts (tests/test_energy.py checks them against neurobench's own metrics)."]
    return out


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
             "lava_fixed": "Lava fixed_pt (bit-accurate Loihi)", "emulator_float": "emulator float",
             "emulator_fixed": "emulator fixed (bit-accurate Loihi)"}
    for key, s in ev.items():
        agree = "–" if s.get("agreement_with_torch") is None else f"{100 * s['agreement_with_torch']:.2f} %"
        out.append(f"| {names.get(key, key)} | {s['episodes']} | {s['mean_return']:.1f} | {s['min_return']:.0f} "
                   f"| {s['std_return']:.1f} | {agree} | {_num(s.get('q_max_abs_diff_vs_torch'), 4)} |")
    acc = r["acceptance"]
    verdict = ("no solved threshold is registered for this environment" if acc.get("met") is None else
               f"{'meets' if acc['met'] else 'misses'} the {acc['target_return']:g} bar, the "
               f"{acc['target_source']}")
    out += ["", f"{names.get(acc['run'], acc['run'])} mean return over {acc['episodes']} episodes: "
            f"**{acc['mean_return']:.1f}** ({verdict}).", ""]
    c = r["counts_per_decision"]
    if c is None:
        return "\n".join(out + _energy_section(r))
    out += ["## What the deployed network did (per decision)", "",
            f"Source: {r['counts_source']}.", "",
            "| population | neurons | spikes | active updates | inactive updates |", "|---|---:|---:|---:|---:|"]
    for name, info in pol["populations"].items():
        upd, act = c["updates"][name], c["active"][name]
        spikes = c["spikes"].get(name)
        out.append(f"| {name} ({info['kind']}) | {info['size']} | {'–' if spikes is None else fmt_count(spikes)} "
                   f"| {fmt_count(act)} | {fmt_count(upd - act)} |")
    out += ["", "| connection | input | synaptic ops |", "|---|---|---:|"]
    for name, n in c["synops"].items():
        out.append(f"| {name} | {'graded observation' if c['graded'][name] else 'binary spikes'} | {fmt_count(n)} |")
    out += _energy_section(r)
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
