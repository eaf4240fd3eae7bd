"""What every chip family's rules share: the rule record, its context, the violation record,
and the rules that read no family-specific mapping (weight precision, neuron models).

A rule is a small named function ``rule_<name>(ctx) -> list[Violation]``, registered in
its family module's ``RULES`` with the profile constants it needs. It runs only when
every constant it needs is listed and known (the check itself never meets a missing
limit) and returns one :class:`Violation` per broken limit, or nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from spikeloop.hwprofiles.network import Network
from spikeloop.hwprofiles.profile import Profile

DEPLOYED_WEIGHT_BITS = 8
"""spikeloop deploys signed 8-bit weight mantissas (|m| <= 127, the runtime's fixed-point format)"""
NETWORK = "<network>"
"""the layer name of a violation that concerns the whole network (a chip total)"""


@dataclass
class Violation:
    """One broken limit: rule, layer (or core), measured value, limit and excess."""

    rule: str
    layer: str
    what: str
    value: float | str
    limit: float | str
    unit: str = ""
    excess: float | None = None
    hint: str = ""

    def message(self) -> str:
        """One line: ``[rule] layer 'name': what value unit > limit ... (excess ...)`` and the hint."""
        if self.excess is not None:
            body = (f"{self.what} {_num(self.value)} {self.unit} > limit {_num(self.limit)} {self.unit} "
                    f"(excess {_num(self.excess)} {self.unit})")
        else:
            body = f"{self.what} {self.value}; allowed: {self.limit}"
        return f"[{self.rule}] layer {self.layer!r}: " + " ".join(body.split()) + \
            (f". {self.hint}" if self.hint else "")


def _num(x) -> str:
    return f"{x:,}" if isinstance(x, int) else (f"{x:,.4g}" if isinstance(x, float) else str(x))


@dataclass(frozen=True)
class Rule:
    """A named design rule: the profile constants it needs and the check itself."""

    name: str
    needs: tuple[str | tuple[str, ...], ...]
    """profile constants; a tuple entry is satisfied by the first of its names that the profile lists"""
    check: Callable[["Context"], list[Violation]]
    placement: bool = False
    """needs the core placement (not checked when it could not be made)"""


@dataclass
class Context:
    """What a rule reads: the network, the profile, and the placement made for them (if any)."""

    net: Network
    profile: Profile
    placement: list[dict] | None = None
    placement_note: str = ""
    """why no placement was made, or (Speck) the layers no core could be assigned to"""

    def limit(self, name: str | tuple[str, ...]):
        """The known value of constant ``name`` (or of the first listed of several names)."""
        return self.profile.value(listed(self.profile, name))


def listed(profile: Profile, name: str | tuple[str, ...]) -> str:
    """``name``, or of several alternative names the first that ``profile`` lists (else the first)."""
    if isinstance(name, str):
        return name
    return next((n for n in name if profile.get(n) is not None), name[0])


def over(rule, layer, what, value, limit, unit, hint="") -> list[Violation]:
    """A one-item list with the violation when ``value > limit``, else an empty list."""
    return [Violation(rule, layer, what, value, limit, unit, value - limit, hint)] if value > limit else []


def rule_weight_bits(ctx: Context) -> list[Violation]:
    """Every layer with synapses needs the chip to hold spikeloop's deployed weight width."""
    lim = ctx.limit("weight_bits")
    if DEPLOYED_WEIGHT_BITS <= lim:
        return []
    return [Violation("weight_bits", lay.name, "weight precision", DEPLOYED_WEIGHT_BITS, lim, "bits",
                      DEPLOYED_WEIGHT_BITS - lim, "spikeloop deploys 8-bit weight mantissas")
            for lay in ctx.net.layers if lay.synapses]


def rule_neuron_models(ctx: Context) -> list[Violation]:
    """Every layer's neuron dynamics must be among the profile's neuron models (the output layer's among
    its readout models where it lists them)."""
    allowed = ctx.limit("neuron_models")
    readout = ctx.profile.value("readout_models") or allowed  # a chip whose host reads the readout's voltage
    out = []
    for lay in ctx.net.layers:
        ok = readout if lay.name == ctx.net.output else allowed
        if lay.model not in ok:
            hint = ("use a spiking readout and decode spike counts on the host" if not lay.spiking
                    and lay.name == ctx.net.output else "a hidden layer must spike" if not lay.spiking else
                    "retrain without synaptic current decay (du = 1)" if lay.model == "CubaLIF" else "")
            kind = "spiking" if lay.spiking else "non-spiking"
            out.append(Violation("neuron_models", lay.name, "neuron model",
                                 f"{lay.model} ({kind})", ", ".join(ok), hint=hint))
    return out


COMMON_RULES = [
    Rule("weight_bits", ("weight_bits",), rule_weight_bits),
    Rule("neuron_models", ("neuron_models",), rule_neuron_models),
]
"""the rules every chip family runs last, in this order"""
