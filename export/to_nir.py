"""torch -> NIR: export a :class:`SpikingMLP` through nirtorch.

nirtorch traces one timestep of a module. spikeloop's models loop over a decision
window, so the exporter builds the one-step structure (``nn.Linear`` synapses and a
leaf module per neuron population) and lets ``nirtorch.torch_to_nir`` trace it, with a
registry mapping each population to its NIR node. The mapping inverts the compiler's
(forward Euler, see DESIGN.md)::

    LIF     tau = dt/dv,              r = 1/dv,        v_leak = bias/dv   (du = 1)
    CubaLIF tau_syn = dt/du, tau_mem = dt/dv, r = 1/(du*dv), w_in = 1, v_leak = bias/dv
    LI / CubaLI: the same without threshold

so that the NIR Linear weights are exactly the trained weights.
"""
from __future__ import annotations

from typing import Callable

import nir
import nirtorch
import numpy as np
import torch
from torch import nn

from spikeloop.errors import ExportError
from spikeloop.export.metadata import GraphMeta
from spikeloop.train.encoding import InputEncoding
from spikeloop.train.layers import NeuronConfig, SpikingLayer, SpikingMLP


class _Population(nn.Module):
    """One-step stand-in for a neuron population: identity in the traced graph."""

    def __init__(self, neuron: NeuronConfig, bias: np.ndarray):
        super().__init__()
        self.neuron = neuron
        self.bias_values = bias

    def forward(self, x):
        return x


def _population_to_nir(dt: float) -> Callable[[_Population], nir.NIRNode]:
    def convert(m: _Population) -> nir.NIRNode:
        n, b = m.neuron, np.asarray(m.bias_values, dtype=np.float64)
        size = b.shape[0]
        full = lambda x: np.full(size, x, dtype=np.float64)  # noqa: E731
        if n.dv <= 0 or n.du <= 0:
            raise ExportError(f"population with du={n.du}, dv={n.dv}: NIR needs finite time constants "
                              "(du, dv > 0)")
        v_leak = b / n.dv
        if n.du == 1.0:
            if n.vth is None:
                return nir.LI(tau=full(dt / n.dv), r=full(1 / n.dv), v_leak=v_leak)
            return nir.LIF(tau=full(dt / n.dv), r=full(1 / n.dv), v_leak=v_leak,
                           v_threshold=full(n.vth), v_reset=full(0.0))
        common = dict(tau_syn=full(dt / n.du), tau_mem=full(dt / n.dv), r=full(1 / (n.du * n.dv)),
                      v_leak=v_leak, w_in=full(1.0))
        if n.vth is None:
            return nir.CubaLI(**common)
        return nir.CubaLIF(**common, v_threshold=full(n.vth), v_reset=full(0.0))

    return convert


class _OneStep(nn.Module):
    def __init__(self, model: SpikingMLP):
        super().__init__()
        blocks = []
        for i, layer in enumerate(model.layers):
            layer: SpikingLayer
            lin = nn.Linear(layer.linear.in_features, layer.linear.out_features, bias=False,
                            dtype=layer.linear.weight.dtype)
            with torch.no_grad():
                lin.weight.copy_(layer.weight().detach())  # the deployed (fake-quantized) weights
            blocks += [lin, _Population(layer.neuron, layer.bias.detach().double().numpy())]
        self.net = nn.Sequential(*blocks)

    def forward(self, x):
        return self.net(x)


def _rename(graph: nir.NIRGraph) -> nir.NIRGraph:
    """Give nodes stable, readable names: input, fc0, lif0, fc1, ..., li2, output."""
    mapping = {}
    for name, node in graph.nodes.items():
        kind = type(node).__name__
        if kind in ("Input", "Output"):
            mapping[name] = kind.lower()
        else:  # nirtorch names the Sequential's children net_<j>; layer = j // 2
            layer = int(name.rsplit("_", 1)[-1]) // 2
            mapping[name] = f"{'fc' if kind in ('Linear', 'Affine') else kind.lower()}{layer}"
    nodes = {mapping[k]: v for k, v in graph.nodes.items()}
    edges = [(mapping[a], mapping[b]) for a, b in graph.edges]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=graph.metadata)


def export_policy(model: SpikingMLP, dt: float, encoding: InputEncoding | None,
                  extra_metadata: dict | None = None) -> nir.NIRGraph:
    """Export ``model`` to a NIR graph carrying dt, reset, T, encoding and decoding."""
    if dt <= 0:
        raise ExportError(f"dt must be positive seconds, got {dt}")
    resets = {layer.neuron.reset for layer in model.layers}
    if resets != {"hard"}:
        raise ExportError(f"spikeloop exports hard-reset populations only (Lava's LIF); got {resets}")
    step = _OneStep(model).eval()
    try:
        graph = nirtorch.torch_to_nir(step, {_Population: _population_to_nir(dt)}, type_check=True)
    except Exception as e:  # nirtorch raises bare exceptions from tracing
        raise ExportError(f"nirtorch could not trace the model: {e}") from e
    graph = _rename(graph)
    meta = GraphMeta(dt=dt, reset="hard", T=model.T, encoding=encoding, extra=extra_metadata or {})
    graph.metadata = meta.to_nir_metadata()
    return graph
