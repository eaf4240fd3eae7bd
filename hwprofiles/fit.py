"""Mapping checks: does a network fit a chip, and where does each layer go?

:func:`check_fit` reads a :class:`Network` (see :mod:`spikeloop.hwprofiles.network`) against
a profile's limits with the small named rules of the profile's mapping model
(:mod:`spikeloop.hwprofiles.rules`: ``cores``, ``xylo``, ``speck``) and returns a
:class:`FitReport`. Every rule runs; a rule whose limit the profile does not publish is
reported as "not checked", never as a silent pass. All violations are then raised together
as one :class:`~spikeloop.core.errors.HardwareConstraintError` naming rule, layer, measured
value, limit and excess. :func:`format_fit` prints a report.

This module also re-exports the network view and the rule records, so that
``spikeloop.hwprofiles.fit`` stays the one import for mapping checks.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from spikeloop.core.errors import HardwareConstraintError
from spikeloop.hwprofiles.network import (CONV2D, DENSE, INPUT, Layer, Network, has_conv, layers_from_nir,
                                          layers_from_plan, neuron_model)
from spikeloop.hwprofiles.profile import Profile
from spikeloop.hwprofiles.rules import DEPLOYED_WEIGHT_BITS, FAMILIES, RULES, UNIMPLEMENTED, Context, Rule, Violation
from spikeloop.hwprofiles.rules.common import listed
from spikeloop.hwprofiles.rules.cores import place_on_cores
from spikeloop.hwprofiles.rules.speck import place_on_speck, speck_memory
from spikeloop.hwprofiles.rules.xylo import hidden_layers

OK, VIOLATED, NOT_CHECKED = "ok", "violated", "not checked"
"""the outcome of one rule"""

__all__ = ["CONV2D", "DENSE", "DEPLOYED_WEIGHT_BITS", "INPUT", "NOT_CHECKED", "OK", "RULES", "UNIMPLEMENTED",
           "VIOLATED", "Context", "FitReport", "Layer", "Network", "Rule", "RuleResult", "Violation", "check_fit",
           "format_fit", "has_conv", "layers_from_nir", "layers_from_plan", "neuron_model", "place_on_cores",
           "place_on_speck", "speck_memory"]


# ----------------------------------------------------------------------------- results
@dataclass
class RuleResult:
    """The outcome of one rule: ok, violated (with its violations) or not checked (with the reason)."""

    rule: str
    status: str
    detail: str = ""
    violations: list[Violation] = field(default_factory=list)


@dataclass
class FitReport:
    """Outcome of all rules for one profile, with the placement they were checked on."""

    profile: str
    title: str
    mapping: str
    source: str
    results: list[RuleResult]
    cores_used: int | None = None
    cores_available: int | None = None
    per_core: list[dict] = field(default_factory=list)
    resources: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def violations(self) -> list[Violation]:
        """Every violation of every rule, in rule order."""
        return [v for r in self.results for v in r.violations]

    @property
    def not_checked(self) -> list[RuleResult]:
        """The rules that could not be checked."""
        return [r for r in self.results if r.status == NOT_CHECKED]

    @property
    def fits(self) -> bool | None:
        """False on any violation; None when no rule could be checked; else True."""
        if self.violations:
            return False
        return None if all(r.status == NOT_CHECKED for r in self.results) else True

    def verdict(self) -> str:
        """'yes', 'no (N violations)' or 'unknown', with the count of rules not checked."""
        nc = len(self.not_checked)
        tail = f", {nc} rule{'s' * (nc != 1)} not checked" if nc and self.fits is not None else ""
        if self.fits is None:
            return "unknown (no limit published)"
        if self.fits:
            return "yes" + tail
        n = len(self.violations)
        return f"no ({n} violation{'s' * (n != 1)}{tail})"

    def error(self) -> HardwareConstraintError:
        """One error listing every violation (rule, layer, value, limit, excess)."""
        lines = [f"{self.source} does not fit {self.profile} ({self.title}): "
                 f"{len(self.violations)} violation(s)"]
        lines += [f"  - {v.message()}" for v in self.violations]
        if self.not_checked:
            lines.append("  not checked: " + "; ".join(f"{r.rule} ({r.detail})" for r in self.not_checked))
        return HardwareConstraintError("\n".join(lines))

    def raise_if_violated(self) -> "FitReport":
        """Raise :meth:`error` on any violation; otherwise return the report."""
        if self.violations:
            raise self.error()
        return self

    def to_dict(self) -> dict:
        """The report as JSON-ready data (as written into ``report.json``)."""
        return {"profile": self.profile, "title": self.title, "mapping": self.mapping, "fits": self.fits,
                "verdict": self.verdict(), "cores_used": self.cores_used,
                "cores_available": self.cores_available, "per_core": self.per_core,
                "resources": self.resources, "notes": self.notes,
                "violations": [asdict(v) | {"message": v.message()} for v in self.violations],
                "rules": [{"rule": r.rule, "status": r.status, "detail": r.detail} for r in self.results]}


# ----------------------------------------------------------------------------- entry points
def check_fit(net: Network, profile: Profile) -> FitReport:
    """Run every rule of the profile's mapping model on ``net``; never raises on violations."""
    ctx = Context(net, profile)
    place = getattr(FAMILIES.get(profile.mapping), "place", None)
    if place is not None:  # cores and speck place layers; xylo and conventional profiles do not
        ctx.placement, ctx.placement_note = place(net, profile)
    results = []
    for rule in RULES[profile.mapping]:
        needs = [listed(profile, n) for n in rule.needs]
        name = needs[0] if not isinstance(rule.needs[0], str) and rule.name in rule.needs[0] else rule.name
        missing = [n for n in needs if profile.get(n) is None]
        unknown = [n for n in needs if profile.get(n) is not None and not profile.get(n).known]
        if missing or unknown:
            why = (f"{profile.name} lists no {', '.join(missing)}" if missing else "limit not published")
            results.append(RuleResult(name, NOT_CHECKED, why))
            continue
        if rule.placement and ctx.placement is None:
            results.append(RuleResult(name, NOT_CHECKED, f"no placement: {ctx.placement_note}"))
            continue
        if profile.mapping == "xylo" and any(lay.kind != DENSE for lay in net.layers):
            results.append(RuleResult(name, NOT_CHECKED, "convolutional layers on Xylo not implemented"))
            continue
        found = rule.check(ctx)
        results.append(RuleResult(name, VIOLATED if found else OK, "", found))
    results += [RuleResult(name, NOT_CHECKED, why) for name, why in UNIMPLEMENTED.get(profile.mapping, [])]
    report = FitReport(profile.name, profile.title, profile.mapping, net.source, results)
    _describe(report, ctx)
    return report


def _describe(report: FitReport, ctx: Context) -> None:
    """Cores used, utilisation per core and per resource, and notes on what the mapping assumed."""
    net, profile = ctx.net, ctx.profile
    cap = profile.value("cores")
    report.cores_available = cap
    if profile.mapping == "cores" and ctx.placement is not None:
        report.cores_used = len(ctx.placement)
        limits = {"neurons": profile.value("neurons_per_core"),
                  "synapse_bytes": profile.value("synapse_memory_per_core") or profile.value("memory_per_core"),
                  "fan_in": profile.value("fan_in_per_core"), "fan_out": profile.value("fan_out_per_core")}
        for core in ctx.placement:
            core["utilisation"] = {k: (None if lim is None else core[k] / lim) for k, lim in limits.items()}
        report.per_core = ctx.placement
    elif profile.mapping == "speck" and ctx.placement is not None:
        report.cores_used = len(ctx.placement)
        for core in ctx.placement:
            core["utilisation"] = {"neuron_memory": core["neuron_memory"] / core["neuron_memory_capacity"],
                                   "kernel_memory": core["kernel_memory"] / core["kernel_memory_capacity"]}
        report.per_core = ctx.placement
        if any(lay.kind == DENSE for lay in net.layers):
            report.notes.append("dense layers are mapped as convolutions whose kernel covers the whole input "
                                + ("(input features as channels, 1 x 1 kernel)"
                                   if all(lay.in_shape is None for lay in net.layers if lay.kind == DENSE) else
                                   "(a feature map's channels and sides, sinabs's mapping of a Linear layer; "
                                   "input features as channels, 1 x 1 kernel, for a vector)"))
    elif profile.mapping == "xylo":
        report.cores_used = None
        hidden = hidden_layers(net)
        rows = [("input channels", net.input_size, profile.value("input_channels"), "channels"),
                ("hidden neurons", sum(lay.neurons for lay in hidden), profile.value("hidden_neurons"), "neurons"),
                ("output neurons", net.layer(net.output).neurons, profile.value("output_neurons"), "neurons"),
                ("non-zero weights", sum(lay.synapses for lay in net.layers), profile.value("total_weights"),
                 "weights")]
        report.resources = [{"resource": r, "used": u, "limit": lim, "unit": unit,
                             "utilisation": None if not lim else u / lim} for r, u, lim, unit in rows]
    if profile.mapping == "cores":
        report.resources = [{"resource": "neurons", "used": sum(lay.neurons for lay in net.layers),
                             "limit": profile.value("neurons_per_chip"), "unit": "neurons"},
                            {"resource": "non-zero synapses", "used": sum(lay.synapses for lay in net.layers),
                             "limit": profile.value("synapses_per_chip"), "unit": "synapses"}]
        for r in report.resources:
            r["utilisation"] = None if not r["limit"] else r["used"] / r["limit"]
    if not profile.graded_spikes and profile.mapping != "none" and not net.input_events:
        report.notes.append(f"{profile.name} takes binary events only: the {net.input_size} graded "
                            "observation values need a spike encoder (one channel each assumed; its cost is "
                            "not modelled)")


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def format_fit(report: FitReport) -> str:
    """A plain-text summary: verdict, cores used, utilisation per core and resource, rule outcomes."""
    cores = ("–" if report.cores_used is None else str(report.cores_used)) + \
        ("" if report.cores_available is None else f" of {report.cores_available}")
    lines = [f"{report.profile} ({report.title}), mapping '{report.mapping}': fits: {report.verdict()}",
             f"  cores used: {cores}"]
    if report.per_core and report.mapping == "cores":
        lines.append("  core  layer            neurons        synapse memory   input axons    output axons")
        for c in report.per_core:
            u = c["utilisation"]
            lines.append(f"  {c['core']:>4}  {c['layer']:<15}  {c['neurons']:>6} {_pct(u['neurons']):>7}  "
                         f"{c['synapse_bytes']:>8} B {_pct(u['synapse_bytes']):>7}  {c['fan_in']:>5} "
                         f"{_pct(u['fan_in']):>7}  {c['fan_out']:>5} {_pct(u['fan_out']):>7}")
    elif report.per_core:
        lines.append("  core  layer            neuron memory             kernel memory")
        for c in report.per_core:
            u = c["utilisation"]
            lines.append(f"  {c['core']:>4}  {c['layer']:<15}  {c['neuron_memory']:>6}/{c['neuron_memory_capacity']:<6} "
                         f"{_pct(u['neuron_memory']):>7}  {c['kernel_memory']:>6}/{c['kernel_memory_capacity']:<6} "
                         f"{_pct(u['kernel_memory']):>7}")
    for r in report.resources:
        lim = "unknown" if r["limit"] is None else f"{r['limit']:,}"
        lines.append(f"  {r['resource']}: {r['used']:,} of {lim} {r['unit']} ({_pct(r['utilisation'])})")
    for status in (VIOLATED, OK, NOT_CHECKED):
        rs = [r for r in report.results if r.status == status]
        if rs:
            lines.append(f"  {status}: " + ", ".join(r.rule + (f" ({r.detail})" if r.detail else "") for r in rs))
    for v in report.violations:
        lines.append(f"  ! {v.message()}")
    lines += [f"  note: {n}" for n in report.notes]
    return "\n".join(lines)
