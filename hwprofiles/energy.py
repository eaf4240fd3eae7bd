"""Energy per decision from measured operation counts and a profile's cited constants.

    E = synops * E_synop + active * E_active + inactive * E_inactive
        + spikes routed * E_route + P_static * steps * t_step          (neuromorphic)
    E = synops * E_all_in                                              (all-in figure, TrueNorth)
    E = MACs * E_MAC                                                   (dense-ANN baseline)

Every term keeps its count, its constant, and the constant's source. A term whose
constant the profile lists as unknown is reported as unpriced, never guessed. An
all-in figure (total chip energy over synaptic events) already contains the neuron,
routing and static energy: those terms are listed as "included", never added again.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from spikeloop.core.errors import ConfigError
from spikeloop.hwprofiles.profile import ALL_IN, Profile

HOST_ENCODE_MACS_PER_INPUT = 1  # (obs - mean) * (1/std): one multiply-accumulate per element


STATIC_TIMESTEPS = ("realtime", "unthrottled")
STATIC_SHARES = ("chip", "cores")


@dataclass(frozen=True)
class StaticPower:
    """How static power becomes energy per decision: both halves are assumptions, stated in every report.

    ``timestep``: ``realtime`` (the profile's real-time timestep, ``[timing.timestep]``: the chip
    idles out each step) or ``unthrottled`` (``[timing.timestep_unthrottled]``: the chip runs the
    next step as soon as it can). ``share``: ``chip`` (the whole chip's static power) or ``cores``
    (the share of the cores the network uses, ``cores_used / cores`` from the fit's placement).
    The default, real time and the whole chip, is what a chip dedicated to one real-time
    policy draws.
    """

    timestep: str = "realtime"
    share: str = "chip"
    cores_used: int | None = None

    def __post_init__(self):
        if self.timestep not in STATIC_TIMESTEPS:
            raise ConfigError(f"static timestep must be one of {STATIC_TIMESTEPS}, got {self.timestep!r}")
        if self.share not in STATIC_SHARES:
            raise ConfigError(f"static share must be one of {STATIC_SHARES}, got {self.share!r}")

    def describe(self) -> str:
        return (f"{'real-time' if self.timestep == 'realtime' else 'unthrottled'} timestep, "
                f"{'whole-chip' if self.share == 'chip' else 'used-core share of'} static power")


@dataclass
class Term:
    """One line of an energy bill: a measured count times a cited constant (or unpriced)."""

    name: str
    count: float
    unit: str
    constant: str | None
    energy_per_event: float | None
    source: str
    confidence: str
    note: str = ""
    included_in: str | None = None
    """the all-in constant that already contains this term (it is then neither priced nor unpriced)"""
    where: str = "chip"
    """'chip' (the neuromorphic target) or 'host' (encoding and decoding on the conventional host)"""

    @property
    def energy(self) -> float | None:
        """The term's energy in J, or None when its constant is unknown."""
        return None if self.energy_per_event is None else self.count * self.energy_per_event

    @property
    def status(self) -> str:
        """'priced', 'included' (in an all-in figure) or 'unpriced'."""
        if self.energy_per_event is not None:
            return "priced"
        return "included" if self.included_in else "unpriced"


@dataclass
class EnergyReport:
    """The energy of one decision on one profile: its terms and the assumptions made."""

    profile: str
    title: str
    terms: list[Term]
    assumptions: list[str] = field(default_factory=list)
    static_choice: StaticPower | None = None

    @property
    def total(self) -> float:
        """Sum of the priced terms (J per decision)."""
        return sum(t.energy for t in self.terms if t.energy is not None)

    @property
    def static(self) -> float:
        """The static-power part of :attr:`total` (J per decision)."""
        return sum(t.energy for t in self.terms if t.energy is not None and t.constant == "static_power")

    @property
    def unpriced(self) -> list[str]:
        """Terms with a non-zero count whose constant is unknown: the total leaves them out."""
        return [t.name for t in self.terms if t.status == "unpriced" and t.count > 0]

    def _sum(self, where: str) -> float:
        return sum(t.energy for t in self.terms if t.energy is not None and t.where == where)

    def to_dict(self) -> dict:
        """The report as JSON-ready data, with chip and host sums and every term."""
        chip_unpriced = [t.name for t in self.terms if t.status == "unpriced" and t.count > 0 and t.where == "chip"]
        chip_priced = any(t.status == "priced" and t.where == "chip" for t in self.terms)
        return {"profile": self.profile, "title": self.title, "total_J": self.total,
                "static_J": self.static, "dynamic_J": self.total - self.static,
                "chip_J": self._sum("chip") if chip_priced else None, "host_J": self._sum("host"),
                "chip_dynamic_J": self._sum("chip") - self.static if chip_priced else None,
                "chip_complete": chip_priced and not chip_unpriced,
                "unpriced": self.unpriced, "assumptions": self.assumptions,
                "static_choice": None if self.static_choice is None else {
                    "timestep": self.static_choice.timestep, "share": self.static_choice.share,
                    "described": self.static_choice.describe()},
                "terms": [asdict(t) | {"energy_J": t.energy, "status": t.status} for t in self.terms]}


@dataclass
class NetworkShape:
    """What the baseline and the per-step terms need to know about the network."""

    input_size: int
    output_size: int
    neurons: int
    dense_macs: int
    """multiply-accumulates of one pass of a dense ANN with the same layers"""
    spike_destinations: dict[str, int]
    """per spiking population, the number of connections its spikes are routed to"""
    encoder: tuple[str, int] | None = None
    """a spike encoder on the host: its description and its arithmetic operations per decision"""

    @classmethod
    def of(cls, plan) -> "NetworkShape":
        """The shape of a compiled plan (duck-typed: populations, connections, output, encoding)."""
        from spikeloop.core.coding import SpikeEncoding

        enc = getattr(plan, "encoding", None)
        return cls(plan.input_size, plan.population(plan.output).size, plan.neuron_count,
                   int(sum(c.synapses for c in plan.connections)),
                   {p.name: len(plan.outgoing(p.name)) for p in plan.populations if p.spiking},
                   (enc.describe(), enc.host_ops()) if isinstance(enc, SpikeEncoding) else None)


def _term(profile: Profile, name: str, constant: str, count: float, unit: str, note: str = "") -> Term:
    c = profile.get(constant)
    if c is None:
        return Term(name, count, unit, constant, None, f"{profile.name} lists no '{constant}'", "unknown",
                    note)
    return Term(name, count, unit, constant, c.value, c.source, c.confidence, note)


COUNT_TABLES = ("synops", "updates", "active", "spikes")
"""per-decision counts keyed by layer: synaptic ops per connection, updates/active/spikes per population"""


def check_counts(per_decision, source: str = "counts", populations=None, connections=None) -> dict:
    """Validate per-decision counts (``OpCounts.per_decision()``, or a report's copy of them).

    Every table of :data:`COUNT_TABLES` maps layer names to finite non-negative numbers,
    ``graded`` maps connections to true/false, ``steps`` is a positive number. With
    ``populations``/``connections`` (the names of the compiled graph), the counts must be
    those of that graph. Returns ``per_decision``; raises ``ConfigError`` naming ``source``,
    the table, the layer and the value.
    """
    from spikeloop.core.errors import ConfigError

    def number(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0

    if not isinstance(per_decision, dict):
        raise ConfigError(f"{source}: counts per decision must be a table, got {type(per_decision).__name__}")
    for key in (*COUNT_TABLES, "graded", "steps"):
        if key not in per_decision:
            raise ConfigError(f"{source}: counts per decision lack {key!r}")
    for key in COUNT_TABLES:
        table = per_decision[key]
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: counts {key!r} must be a table of layer -> count, got {table!r}")
        for layer, v in table.items():
            if not number(v):
                raise ConfigError(f"{source}: counts {key!r} of {layer!r} must be a finite non-negative "
                                  f"number, got {v!r}")
    graded = per_decision["graded"]
    if not isinstance(graded, dict) or not all(isinstance(v, bool) for v in graded.values()):
        raise ConfigError(f"{source}: counts 'graded' must be a table of connection -> true/false, got {graded!r}")
    steps = per_decision["steps"]
    if not number(steps) or steps == 0:
        raise ConfigError(f"{source}: counts 'steps' must be a positive number, got {steps!r}")
    if populations is not None:
        pops = set(populations)
        for key in ("updates", "active", "spikes"):
            extra = sorted(set(per_decision[key]) - pops)
            missing = sorted(pops - set(per_decision[key])) if key != "spikes" else []
            if extra or missing:
                raise ConfigError(f"{source}: counts {key!r} name populations "
                                  f"{sorted(per_decision[key])}, the graph has {sorted(pops)}"
                                  + (f" (unknown: {', '.join(map(repr, extra))})" if extra else ""))
    if connections is not None:
        conns = set(connections)
        for key in ("synops", "graded"):
            extra = sorted(set(per_decision[key]) - conns)
            if extra:
                raise ConfigError(f"{source}: counts {key!r} name connections {sorted(per_decision[key])}, "
                                  f"the graph has {sorted(conns)}"
                                  + (f" (unknown: {', '.join(map(repr, extra))})" if extra else ""))
    return per_decision


def price_neuromorphic(per_decision: dict, shape: NetworkShape, profile: Profile,
                       host: Profile | None = None, static: StaticPower | None = None) -> EnergyReport:
    """Price the per-decision counts (``OpCounts.per_decision()``) on ``profile``.

    ``host`` (a conventional profile) prices the encoding and decoding done on the host;
    ``static`` says how static power is turned into energy (default :class:`StaticPower`).
    """
    static = static or StaticPower()
    graded = per_decision["graded"]
    syn_binary = sum(v for k, v in per_decision["synops"].items() if not graded.get(k))
    syn_graded = sum(v for k, v in per_decision["synops"].items() if graded.get(k))
    updates = sum(per_decision["updates"].values())
    active = sum(per_decision["active"].values())
    routed = sum(n * shape.spike_destinations.get(k, 1) for k, n in per_decision["spikes"].items())
    steps = per_decision["steps"]
    graded_note = "" if profile.graded_spikes else (
        f"{profile.name} has no graded spikes: counted as one synaptic op each; on this chip the "
        "observation needs a spike encoder, whose cost is not modelled")
    all_in = profile.get(ALL_IN)
    if all_in is not None:
        terms = _all_in_terms(profile, all_in, syn_binary, syn_graded, active, updates, routed, steps,
                              graded_note)
    else:
        terms = [
            _term(profile, "synaptic ops (binary spikes)", "synop", syn_binary, "ops"),
            _term(profile, "synaptic ops (graded input)", "synop", syn_graded, "ops", graded_note),
            _term(profile, "neuron updates (active)", "neuron_update_active", active, "updates"),
            _term(profile, "neuron updates (inactive)", "neuron_update_inactive", updates - active, "updates"),
            _term(profile, "spikes routed", "spike_route", routed, "spikes",
                  "one route per destination connection of the spiking population"),
            _static_term(profile, steps, static),
        ]
    assumptions = []
    if shape.encoder is not None:  # the policy's own spike encoder runs on the host
        what, ops = shape.encoder
        if host is not None:
            terms.append(_term(host, "input spike encoder (host)", "mac_fp32", ops, "ops",
                               f"on {host.name}: {what}; each operation priced as one fp32 MAC (an upper bound)"))
            terms[-1].where = "host"
        else:
            terms.append(Term("input spike encoder (host)", ops, "ops", None, None, "no host profile given",
                              "unknown", what, where="host"))
    elif not profile.graded_spikes:
        terms.append(Term("input spike encoder", shape.input_size, "values", None, None,
                          f"{profile.name} takes binary events only; no published cost for a spike encoder",
                          "unknown", "rate, population or delta coding of each observation value"))
    if host is not None:
        terms.append(_term(host, "host encoding (normalise observation)", "mac_fp32",
                           shape.input_size * HOST_ENCODE_MACS_PER_INPUT, "MACs", f"on {host.name}"))
        terms.append(_term(host, "host decoding (argmax)", "ac_fp32", max(shape.output_size - 1, 0),
                           "compares", f"on {host.name}"))
        terms[-2].where = terms[-1].where = "host"
    else:
        assumptions.append("host encoding/decoding not priced (no host profile given)")
    assumptions.append(f"static power: {static.describe()}")
    return EnergyReport(profile.name, profile.title, terms, assumptions, static)


def _static_term(profile: Profile, steps: float, choice: StaticPower) -> Term:
    name = "timestep" if choice.timestep == "realtime" else "timestep_unthrottled"
    static, tstep = profile.get("static_power"), profile.get(name)
    share, share_note = 1.0, "whole-chip static power"
    if choice.share == "cores":
        cores = profile.value("cores")
        if not cores or choice.cores_used is None:
            return Term("static power x window", steps, "steps", "static_power", None,
                        f"a used-core share needs the cores used and the chip's cores ({profile.name}: "
                        f"{'no placement' if choice.cores_used is None else 'cores not published'})", "unknown")
        share, share_note = choice.cores_used / cores, f"{choice.cores_used} of {cores} cores' share of static power"
    if static is not None and tstep is not None and static.known and tstep.known:
        return Term("static power x window", steps * tstep.value * share, "s", "static_power", static.value,
                    f"{static.source}; {name}: {tstep.source}", _weakest(static.confidence, tstep.confidence),
                    f"{steps:g} steps of {tstep.value:g} s "
                    f"({'real-time' if choice.timestep == 'realtime' else 'unthrottled'} timestep; {share_note})")
    known = static is not None and static.known
    step = "time per step" if choice.timestep == "realtime" else "unthrottled time per step"
    why = (f"static power {static.value:g} W is published but no {step}, so the window has no "
           "duration" if known else "static power not published")
    return Term("static power x window", steps, "steps", "static_power", None, why, "unknown")


def _all_in_terms(profile, all_in, syn_binary, syn_graded, active, updates, routed, steps, graded_note):
    """Synaptic events priced with the all-in figure alone; everything it contains is listed as included."""
    inc = f"included in {ALL_IN} ({all_in.value * 1e12:g} pJ all-in per synaptic event)"
    terms = [Term("synaptic ops (binary spikes)", syn_binary, "ops", ALL_IN, all_in.value, all_in.source,
                  all_in.confidence, "all-in: chip energy over synaptic events"),
             Term("synaptic ops (graded input)", syn_graded, "ops", ALL_IN, all_in.value, all_in.source,
                  all_in.confidence, graded_note or "all-in: chip energy over synaptic events")]
    for name, count, unit in (("neuron updates (active)", active, "updates"),
                              ("neuron updates (inactive)", updates - active, "updates"),
                              ("spikes routed", routed, "spikes"), ("static power x window", steps, "steps")):
        terms.append(Term(name, count, unit, None, None, inc, all_in.confidence, included_in=ALL_IN))
    return terms


def neurobench_counts(per_decision: dict, shape: NetworkShape) -> dict:
    """NeuroBench-convention counts per decision, from the plan's shape and the measured counts.

    Over every Lava step of a decision (the window plus the pipeline latency):
    ``dense`` counts every weight at every step, ``effective_macs`` the synaptic ops on
    graded (non-binary) input, ``effective_acs`` those on binary spikes (zero inputs
    and zero weights are not counted), and ``activation_sparsity`` is the fraction of
    spiking-neuron outputs that are zero.
    """
    graded = per_decision["graded"]
    spikes = sum(per_decision["spikes"].values())
    outputs = sum(per_decision["updates"][k] for k in per_decision["spikes"])
    return {"dense": shape.dense_macs * per_decision["steps"],
            "effective_macs": sum(v for k, v in per_decision["synops"].items() if graded.get(k)),
            "effective_acs": sum(v for k, v in per_decision["synops"].items() if not graded.get(k)),
            "activation_sparsity": None if not outputs else 1 - spikes / outputs,
            "steps": per_decision["steps"],
            "convention": "NeuroBench: dense = every weight each step; effective MACs on "
                          "graded input, effective ACs on binary spikes; zero inputs and weights not counted"}


def price_dense_baseline(shape: NetworkShape, profile: Profile, precision: str = "fp32") -> EnergyReport:
    """A dense ANN of the same layer sizes, one pass per decision: ``MACs * E_MAC``."""
    term = _term(profile, f"dense MACs ({precision})", f"mac_{precision}", shape.dense_macs, "MACs",
                 "arithmetic only; memory traffic excluded")
    return EnergyReport(f"{profile.name}/{precision}", f"{profile.title}, {precision}", [term],
                        ["dense ANN with the same layer sizes, one forward pass per decision"])


_ORDER = ("silicon", "architectural", "vendor", "pre-silicon", "derived", "3rd-party", "unknown")


def _weakest(*tags: str) -> str:
    return max(tags, key=_ORDER.index)
