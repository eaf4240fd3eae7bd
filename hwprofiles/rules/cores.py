"""Rules of core-based chips (Loihi, Loihi 2, TrueNorth, SpiNNaker 2) and their placement.

Each layer is split evenly over the fewest identical cores on which every per-core limit
that is known holds (neurons, synapse memory, input axons); output axons are counted
afterwards, as (neuron, destination core) pairs. Synapse memory is a lower bound: one
stored weight of the deployed width per non-zero synapse; encoding overhead is not
modelled. The per-core rules then read that placement; the chip totals read the network.
"""
from __future__ import annotations

import math

import numpy as np

from spikeloop.hwprofiles.network import DENSE, Layer, Network
from spikeloop.hwprofiles.profile import Profile
from spikeloop.hwprofiles.rules.common import (COMMON_RULES, DEPLOYED_WEIGHT_BITS, NETWORK, Context, Rule,
                                               Violation, listed, over)

MAPPING = "cores"
SYNAPSE_MEMORY = ("synapse_memory_per_core", "memory_per_core")
"""per-core synapse memory: its own budget (Loihi) or one shared with neuron state (Loihi 2)"""


# ----------------------------------------------------------------------------- placement
def _chunks(n: int, k: int) -> list[tuple[int, int]]:
    base, extra = divmod(n, k)
    bounds, start = [], 0
    for i in range(k):
        size = base + (i < extra)
        bounds.append((start, start + size))
        start += size
    return bounds


def _core_load(layer: Layer, lo: int, hi: int) -> tuple[int, int]:
    """(non-zero synapses, distinct input axons) of neurons ``lo:hi`` of a dense layer."""
    syn = sum(int(np.count_nonzero(w[lo:hi])) for w in layer.weights.values())
    axons = sum(int(np.count_nonzero(np.any(w[lo:hi] != 0, axis=0))) for w in layer.weights.values())
    return syn, axons


def place_on_cores(net: Network, profile: Profile) -> tuple[list[dict] | None, str]:
    """Split each layer over the fewest cores that meet every known per-core limit.

    Returns the per-core records (or None with the reason when no placement can be made).
    """
    npc = profile.value("neurons_per_core")
    if npc is None:
        return None, f"{profile.name} publishes no neurons per core"
    conv = [lay.name for lay in net.layers if lay.kind != DENSE]
    if conv:
        return None, f"placing convolutional layers {conv} on a core-based chip is not implemented"
    mem = profile.value("synapse_memory_per_core") or profile.value("memory_per_core")
    fan_in = profile.value("fan_in_per_core")
    bytes_per_syn = DEPLOYED_WEIGHT_BITS / 8

    def ok(layer, bounds):
        for lo, hi in bounds:
            syn, axons = _core_load(layer, lo, hi)
            if (mem is not None and math.ceil(syn * bytes_per_syn) > mem) or (fan_in is not None and axons > fan_in):
                return False
        return True

    cores, split = [], {}
    for lay in net.layers:
        k0 = max(1, math.ceil(lay.neurons / npc))
        fan = lay.fan_in
        single_ok = (mem is None or math.ceil(int(fan.max(initial=0)) * bytes_per_syn) <= mem) and \
            (fan_in is None or int(fan.max(initial=0)) <= fan_in)
        k = k0
        if single_ok:  # a placement exists (one neuron per core at worst): find the fewest cores
            while not ok(lay, _chunks(lay.neurons, k)):
                if k >= lay.neurons:  # one neuron per core is the finest split: never search past it
                    return None, (f"layer {lay.name!r}: no split over cores meets the per-core limits, "
                                  "not even one neuron per core (the single-neuron check and the core "
                                  "check disagree)")
                k += 1
        split[lay.name] = _chunks(lay.neurons, k)
        for lo, hi in split[lay.name]:
            syn, axons = _core_load(lay, lo, hi)
            cores.append({"core": len(cores), "layer": lay.name, "neurons": hi - lo, "rows": [lo, hi],
                          "synapses": syn, "synapse_bytes": math.ceil(syn * bytes_per_syn), "fan_in": axons,
                          "fan_out": 0})
    for core in cores:  # output axons: one per (neuron, destination core) it reaches
        lo, hi = core["rows"]
        for dst in net.destinations(core["layer"]):
            w = dst.weights[core["layer"]]
            for a, b in split[dst.name]:
                core["fan_out"] += int(np.count_nonzero(np.any(w[a:b, lo:hi] != 0, axis=0)))
    return cores, ""


def place(net: Network, profile: Profile) -> tuple[list[dict] | None, str]:
    """The placement the per-core rules read (see :func:`place_on_cores`)."""
    return place_on_cores(net, profile)


# ----------------------------------------------------------------------------- rules
def _per_core(ctx: Context, constant, key: str, unit: str, what: str) -> list[Violation]:
    """One violation per placed core whose ``key`` exceeds the limit ``constant``."""
    lim = ctx.limit(constant)
    rule = listed(ctx.profile, constant)
    out = []
    for core in ctx.placement:
        out += over(rule, core["layer"], f"{what} on core {core['core']}", core[key], lim, unit)
    return out


def rule_neurons_per_core(ctx: Context) -> list[Violation]:
    """Neurons placed on each core (the placement splits layers to meet it; a guard)."""
    return _per_core(ctx, "neurons_per_core", "neurons", "neurons", "neurons")


def rule_synapse_memory_per_core(ctx: Context) -> list[Violation]:
    """Bytes of non-zero synapses on each core, against its synapse (or shared) memory."""
    return _per_core(ctx, SYNAPSE_MEMORY, "synapse_bytes", "bytes", "synapse memory (lower bound)")


def rule_fan_in_per_core(ctx: Context) -> list[Violation]:
    """Distinct input axons reaching each core."""
    return _per_core(ctx, "fan_in_per_core", "fan_in", "axons", "input axons")


def rule_fan_out_per_core(ctx: Context) -> list[Violation]:
    """Output axons leaving each core: one per (neuron, destination core) pair."""
    return _per_core(ctx, "fan_out_per_core", "fan_out", "axons", "output axons")


def rule_cores(ctx: Context) -> list[Violation]:
    """Cores the placement uses, against the cores on one chip."""
    return over("cores", NETWORK, "cores used", len(ctx.placement), ctx.limit("cores"), "cores",
                "split the network over several chips (not modelled) or shrink the layers")


def rule_neurons_per_chip(ctx: Context) -> list[Violation]:
    """Neurons of the whole network, against one chip's total."""
    return over("neurons_per_chip", NETWORK, "neurons", sum(lay.neurons for lay in ctx.net.layers),
                ctx.limit("neurons_per_chip"), "neurons")


def rule_synapses_per_chip(ctx: Context) -> list[Violation]:
    """Non-zero synapses of the whole network, against one chip's total."""
    return over("synapses_per_chip", NETWORK, "synapses", sum(lay.synapses for lay in ctx.net.layers),
                ctx.limit("synapses_per_chip"), "synapses")


RULES: list[Rule] = [
    Rule("neurons_per_core", ("neurons_per_core",), rule_neurons_per_core, True),
    Rule("synapse_memory_per_core", (SYNAPSE_MEMORY,), rule_synapse_memory_per_core, True),
    Rule("fan_in_per_core", ("fan_in_per_core",), rule_fan_in_per_core, True),
    Rule("fan_out_per_core", ("fan_out_per_core",), rule_fan_out_per_core, True),
    Rule("cores", ("cores",), rule_cores, True),
    Rule("neurons_per_chip", ("neurons_per_chip",), rule_neurons_per_chip),
    Rule("synapses_per_chip", ("synapses_per_chip",), rule_synapses_per_chip),
    *COMMON_RULES,
]
UNIMPLEMENTED: list[tuple[str, str]] = [
    ("synapse_encoding", "per-core synapse memory counts 1 byte per 8-bit synapse; the chip's "
                         "synapse encoding overhead is not modelled"),
]
"""limits of the chip the rules know of but do not check, reported as not checked"""
