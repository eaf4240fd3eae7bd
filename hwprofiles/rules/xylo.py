"""Rules of Xylo-style chips: input channels -> one pool of hidden neurons -> output neurons.

Every layer but the output layer belongs to the hidden pool. Each neuron has a fan-in
limit and the whole network a budget of non-zero weights. There is no placement to make.
"""
from __future__ import annotations

import numpy as np

from spikeloop.hwprofiles.network import INPUT, Layer, Network
from spikeloop.hwprofiles.rules.common import COMMON_RULES, NETWORK, Context, Rule, Violation, over

MAPPING = "xylo"


def hidden_layers(net: Network) -> list[Layer]:
    """The layers of Xylo's hidden pool: every layer but the output layer."""
    return [lay for lay in net.layers if lay.name != net.output]


def rule_input_channels(ctx: Context) -> list[Violation]:
    """Observation elements, one input channel each."""
    return over("input_channels", INPUT, "input channels", ctx.net.input_size, ctx.limit("input_channels"),
                "channels", "one channel per observation element (rate or delta coding); reduce the input")


def rule_hidden_neurons(ctx: Context) -> list[Violation]:
    """Neurons of all hidden layers together, against the hidden pool."""
    hidden = hidden_layers(ctx.net)
    name = ", ".join(lay.name for lay in hidden) or "<none>"
    return over("hidden_neurons", name, "hidden neurons", sum(lay.neurons for lay in hidden),
                ctx.limit("hidden_neurons"), "neurons")


def rule_output_neurons(ctx: Context) -> list[Violation]:
    """Neurons of the output layer."""
    out = ctx.net.layer(ctx.net.output)
    return over("output_neurons", out.name, "output neurons", out.neurons, ctx.limit("output_neurons"),
                "neurons")


def rule_fan_in_per_neuron(ctx: Context) -> list[Violation]:
    """The largest number of non-zero synapses into one neuron, per layer."""
    lim = ctx.limit("fan_in_per_neuron")
    out = []
    for lay in ctx.net.layers:
        fan = lay.fan_in
        if fan.size and fan.max() > lim:
            n_over = int(np.count_nonzero(fan > lim))
            out += over("fan_in_per_neuron", lay.name, "largest fan-in", int(fan.max()), lim, "synapses",
                        f"{n_over} of {lay.neurons} neurons exceed it; prune to at most {lim} inputs per neuron")
    return out


def rule_readout_after_hidden(ctx: Context) -> list[Violation]:
    """The readout neurons take hidden spikes only: at least one hidden layer, no input into the readout
    (Rockpool's mapper: at least two neuron layers, the input feeds hidden neurons)."""
    out = ctx.net.layer(ctx.net.output)
    if hidden_layers(ctx.net) and INPUT not in out.sources:
        return []
    return [Violation("readout_after_hidden", out.name, "readout fed by", "the input", "hidden layers only", "",
                      None, "put a hidden spiking layer between the input and the readout")]


def rule_total_weights(ctx: Context) -> list[Violation]:
    """Non-zero weights of the whole network, against the chip's weight memory."""
    return over("total_weights", NETWORK, "non-zero weights", sum(lay.synapses for lay in ctx.net.layers),
                ctx.limit("total_weights"), "weights")


RULES: list[Rule] = [
    Rule("input_channels", ("input_channels",), rule_input_channels),
    Rule("hidden_neurons", ("hidden_neurons",), rule_hidden_neurons),
    Rule("output_neurons", ("output_neurons",), rule_output_neurons),
    Rule("fan_in_per_neuron", ("fan_in_per_neuron",), rule_fan_in_per_neuron),
    Rule("total_weights", ("total_weights",), rule_total_weights),
    Rule("readout_after_hidden", ("output_neurons",), rule_readout_after_hidden),
    *COMMON_RULES,
]
UNIMPLEMENTED: list[tuple[str, str]] = [
    ("decay_bit_shift", "Xylo decays by bit shift; the published figures give no shift range"),
]
"""limits of the chip the rules know of but do not check, reported as not checked"""
