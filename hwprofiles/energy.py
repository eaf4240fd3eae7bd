"""Energy per decision from measured operation counts and a profile's cited constants.

    E = synops * E_synop + active * E_active + inactive * E_inactive
        + spikes routed * E_route + P_static * steps * t_step          (neuromorphic)
    E = MACs * E_MAC                                                   (dense-ANN baseline)

Every term keeps its count, its constant, and the constant's source. A term whose
constant the profile lists as unknown is reported as unpriced, never guessed.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from spikeloop.hwprofiles.profile import Profile

HOST_ENCODE_MACS_PER_INPUT = 1  # (obs - mean) * (1/std): one multiply-accumulate per element


@dataclass
class Term:
    name: str
    count: float
    unit: str
    constant: str | None
    energy_per_event: float | None
    source: str
    confidence: str
    note: str = ""

    @property
    def energy(self) -> float | None:
        return None if self.energy_per_event is None else self.count * self.energy_per_event


@dataclass
class EnergyReport:
    profile: str
    title: str
    terms: list[Term]
    assumptions: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        """Sum of the priced terms (J per decision)."""
        return sum(t.energy for t in self.terms if t.energy is not None)

    @property
    def static(self) -> float:
        return sum(t.energy for t in self.terms if t.energy is not None and t.constant == "static_power")

    @property
    def unpriced(self) -> list[str]:
        return [t.name for t in self.terms if t.energy is None and t.count > 0]

    def to_dict(self) -> dict:
        return {"profile": self.profile, "title": self.title, "total_J": self.total,
                "static_J": self.static, "dynamic_J": self.total - self.static,
                "unpriced": self.unpriced, "assumptions": self.assumptions,
                "terms": [asdict(t) | {"energy_J": t.energy} for t in self.terms]}


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

    @classmethod
    def of(cls, plan) -> "NetworkShape":
        return cls(plan.input_size, plan.population(plan.output).size, plan.neuron_count,
                   int(sum(c.weight.size for c in plan.connections)),
                   {p.name: len(plan.outgoing(p.name)) for p in plan.populations if p.spiking})


def _term(profile: Profile, name: str, constant: str, count: float, unit: str, note: str = "") -> Term:
    c = profile.get(constant)
    if c is None:
        return Term(name, count, unit, constant, None, f"{profile.name} lists no '{constant}'", "unknown",
                    note)
    return Term(name, count, unit, constant, c.value, c.source, c.confidence, note)


def price_neuromorphic(per_decision: dict, shape: NetworkShape, profile: Profile,
                       host: Profile | None = None) -> EnergyReport:
    """Price the per-decision counts (``OpCounts.per_decision()``) on ``profile``.

    ``host`` (a conventional profile) prices the encoding and decoding done on the host.
    """
    graded = per_decision["graded"]
    syn_binary = sum(v for k, v in per_decision["synops"].items() if not graded.get(k))
    syn_graded = sum(v for k, v in per_decision["synops"].items() if graded.get(k))
    updates = sum(per_decision["updates"].values())
    active = sum(per_decision["active"].values())
    routed = sum(n * shape.spike_destinations.get(k, 1) for k, n in per_decision["spikes"].items())
    steps = per_decision["steps"]
    terms = [
        _term(profile, "synaptic ops (binary spikes)", "synop", syn_binary, "ops"),
        _term(profile, "synaptic ops (graded input)", "synop", syn_graded, "ops",
              "" if profile.graded_spikes else
              f"{profile.name} has no graded spikes: priced as one synaptic op each; on this chip the "
              "observation needs a spike encoder, whose cost is not modelled"),
        _term(profile, "neuron updates (active)", "neuron_update_active", active, "updates"),
        _term(profile, "neuron updates (inactive)", "neuron_update_inactive", updates - active, "updates"),
        _term(profile, "spikes routed", "spike_route", routed, "spikes"),
    ]
    static = profile.get("static_power")
    tstep = profile.get("timestep")
    if static is not None and tstep is not None and static.known and tstep.known:
        terms.append(Term("static power x window", steps * tstep.value, "s", "static_power", static.value,
                          f"{static.source}; timestep: {tstep.source}",
                          _weakest(static.confidence, tstep.confidence),
                          f"{steps:g} steps of {tstep.value:g} s (whole-chip static power)"))
    else:
        terms.append(Term("static power x window", steps, "steps", "static_power", None,
                          "static power or timestep unknown for this profile", "unknown"))
    assumptions = []
    if host is not None:
        terms.append(_term(host, "host encoding (normalise observation)", "mac_fp32",
                           shape.input_size * HOST_ENCODE_MACS_PER_INPUT, "MACs", f"on {host.name}"))
        terms.append(_term(host, "host decoding (argmax)", "ac_fp32", max(shape.output_size - 1, 0),
                           "compares", f"on {host.name}"))
    else:
        assumptions.append("host encoding/decoding not priced (no host profile given)")
    return EnergyReport(profile.name, profile.title, terms, assumptions)


def price_dense_baseline(shape: NetworkShape, profile: Profile, precision: str = "fp32") -> EnergyReport:
    """A dense ANN of the same layer sizes, one pass per decision: ``MACs * E_MAC``."""
    term = _term(profile, f"dense MACs ({precision})", f"mac_{precision}", shape.dense_macs, "MACs",
                 "arithmetic only; memory traffic excluded")
    return EnergyReport(f"{profile.name}/{precision}", f"{profile.title}, {precision}", [term],
                        ["dense ANN with the same layer sizes, one forward pass per decision"])


_ORDER = ("silicon", "architectural", "vendor", "pre-silicon", "derived", "3rd-party", "unknown")


def _weakest(*tags: str) -> str:
    return max(tags, key=_ORDER.index)
