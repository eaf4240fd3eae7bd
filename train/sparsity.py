"""Sparsity pressure: a training penalty on the activity the deployed network will perform.

Every deployable agent has ``sparsity_penalty`` (``lambda``, default 0: off) and
``sparsity_measure``; its loss gains ``lambda * cost``, with ``cost`` one of (both
dimensionless, in ``[0, 1]`` for binary spikes, differentiable through the surrogate):

- ``synops``: the synaptic events the spikes cause, as sinabs' ``SynOpCounter`` counts them
  (each spike of a population times the non-zero weights it reaches in the next layer: a
  column of a dense weight, an input channel's kernels over the stride squared for a
  convolution), divided by the most the window could cause (every neuron spiking every
  step): the share of the possible synaptic operations that happen;
- ``spikes``: hidden spikes per neuron and step.

The graded host input is not counted: its synaptic operations are set by the observation,
not by training. A sweep trades return against these measured costs.
"""
from __future__ import annotations

import torch

from spikeloop.core.errors import ConfigError

MEASURES = ("synops", "spikes")


def _fan_out(module) -> torch.Tensor | None:
    """Non-zero weights each input neuron (or input channel) reaches; ``None`` for a non-synapse."""
    from spikeloop.train.graph import QuantConv2d, QuantLinear

    if isinstance(module, QuantLinear):
        return (module.deployed_weight().detach() != 0).sum(dim=0).to(torch.float64)
    if isinstance(module, QuantConv2d):
        w = module.deployed_weight().detach()
        stride = module.stride[0] * module.stride[1]
        return (w != 0).sum(dim=(0, 2, 3)).to(torch.float64) / stride
    return None


def activity_cost(net, trace: dict, measure: str) -> torch.Tensor:
    """The activity of one recorded pass of ``net`` (``net(x, record=True)``) as a dimensionless cost."""
    from spikeloop.train.graph import Neuron

    if measure not in MEASURES:
        raise ConfigError(f"sparsity measure must be one of {', '.join(MEASURES)}, got {measure!r}")
    spiking = [n for n, m in net.nodes.items() if isinstance(m, Neuron) and m.spiking and n + ".spikes" in trace]
    if not spiking:
        raise ConfigError("sparsity pressure needs spiking hidden populations; the network has none")
    ref = trace[spiking[0] + ".spikes"]
    if measure == "spikes":
        total = sum(trace[n + ".spikes"].sum() for n in spiking)
        neurons = sum(trace[n + ".spikes"][0, 0].numel() for n in spiking)
        return total / (neurons * ref.shape[0] * ref.shape[1])
    events, possible = ref.new_zeros(()), 0.0
    for src, dst in net.edges:
        if src not in spiking or dst not in net.nodes:
            continue
        fan = _fan_out(net.nodes[dst])
        if fan is None:
            continue
        s = trace[src + ".spikes"]  # (T, batch, n) or (T, batch, C, H, W)
        per_unit = s.sum(dim=(0, 1))
        if per_unit.dim() > 1:  # a convolution's input: per channel
            positions = per_unit[0].numel()
            per_unit = per_unit.reshape(per_unit.shape[0], -1).sum(dim=1)
        else:
            positions = 1
        events = events + (per_unit * fan.to(per_unit.dtype)).sum()
        possible += float(fan.sum()) * positions * s.shape[0] * s.shape[1]
    if possible == 0:
        raise ConfigError("sparsity measure 'synops': no spiking population feeds a synapse with a non-zero weight")
    return events / possible
