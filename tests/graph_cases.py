"""Small seeded SpikingGraphs, one per NIR primitive, for cross-backend tests.

``graph_cases()`` returns ``{name: (SpikingGraph, inputs)}``: float64 modules and a
binary (0/1) input sequence of shape ``(T, *input_shape)`` (time-major, no batch), so
that fixed point needs no input encoding. Export them with ``DT_S``; the decays are
dyadic so that the NIR round trip (``tau = dt/dv`` and back) is exact.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from spikeloop.train.graph import Delay, Neuron, QuantLinear, Scale, SpikingGraph, SumPool2d, Threshold

DT_S = 1e-3
T = 40
F64 = torch.float64


def _linear(n_in, n_out, gen, std, bias=False, mean=0.0, fake_quant=None):
    """An ``nn.Linear``, or (``fake_quant`` True/False) spikeloop's QuantLinear."""
    m = (nn.Linear(n_in, n_out, bias=bias, dtype=F64) if fake_quant is None
         else QuantLinear(n_in, n_out, bias=bias, fake_quant=fake_quant, dtype=F64))
    with torch.no_grad():
        m.weight.copy_(mean + std * torch.randn(n_out, n_in, generator=gen, dtype=F64))
        if bias:
            m.bias.copy_(0.2 * torch.randn(n_out, generator=gen, dtype=F64))
    return m


def _conv(c_in, c_out, k, gen, std, mean=0.0, **kw):
    m = nn.Conv2d(c_in, c_out, k, dtype=F64, **kw)
    with torch.no_grad():
        m.weight.copy_(mean + std * torch.randn(m.weight.shape, generator=gen, dtype=F64))
        if m.bias is not None:
            m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen, dtype=F64))
    return m


def _bias(shape, gen, std=0.05):
    return std * torch.randn(shape, generator=gen, dtype=F64)


def _chain(*named, input_shape) -> SpikingGraph:
    """input -> named[0] -> ... -> output."""
    names = [n for n, _ in named]
    path = ["input", *names, "output"]
    return SpikingGraph(dict(named), list(zip(path[:-1], path[1:])), input_shape)


def _spikes(gen, shape, p=0.3, steps=T) -> np.ndarray:
    return (torch.rand((steps, *shape), generator=gen, dtype=F64) < p).to(F64).numpy()


def graph_cases(seed: int = 0) -> dict[str, tuple[SpikingGraph, np.ndarray]]:
    """All cases, each built from its own generator seeded with ``seed`` and the case's index."""
    builders = [_affine_lif, _linear_cubalif, _scale, _if, _li_readout, _cubali_readout, _soft_lif,
                _threshold, _delay, _recurrent_lif, _conv_lif, _conv_flatten_affine, _sumpool, _avgpool,
                _nested]
    out = {}
    for k, build in enumerate(builders):
        gen = torch.Generator().manual_seed(1000 * seed + k)
        name = build.__name__.lstrip("_")
        out[name] = build(gen)
    return out


def _affine_lif(gen):
    g = _chain(("fc", _linear(6, 8, gen, 0.7, bias=True, mean=0.2)),
               ("lif", Neuron(8, "LIF", dv=0.25, vth=1.0, bias=_bias(8, gen), dtype=F64)), input_shape=6)
    return g, _spikes(gen, (6,))


def _linear_cubalif(gen):
    g = _chain(("fc", _linear(6, 8, gen, 0.5, mean=0.1, fake_quant=True)),
               ("lif", Neuron(8, "CubaLIF", du=0.5, dv=0.25, vth=1.0, bias=_bias(8, gen), dtype=F64)),
               input_shape=6)
    return g, _spikes(gen, (6,))


def _scale(gen):
    scale = 0.4 + 0.5 * torch.rand(6, generator=gen, dtype=F64)
    g = _chain(("scale", Scale(scale, dtype=F64)),
               ("lif", Neuron(6, "LIF", dv=0.125, vth=1.0, bias=_bias(6, gen), dtype=F64)), input_shape=6)
    return g, _spikes(gen, (6,), p=0.5)


def _if(gen):
    g = _chain(("fc", _linear(6, 8, gen, 0.4, mean=0.3)), ("if", Neuron(8, "IF", vth=1.0, dtype=F64)),
               input_shape=6)
    return g, _spikes(gen, (6,))


def _li_readout(gen):
    g = _chain(("fc0", _linear(6, 8, gen, 0.7, mean=0.1)),
               ("lif", Neuron(8, "LIF", dv=0.25, vth=1.0, bias=_bias(8, gen), dtype=F64)),
               ("fc1", _linear(8, 3, gen, 0.5)),
               ("li", Neuron(3, "LI", dv=0.125, bias=_bias(3, gen), dtype=F64)), input_shape=6)
    return g, _spikes(gen, (6,))


def _cubali_readout(gen):
    g = _chain(("fc0", _linear(6, 8, gen, 0.5, mean=0.1)),
               ("lif", Neuron(8, "CubaLIF", du=0.5, dv=0.25, vth=1.0, bias=_bias(8, gen), dtype=F64)),
               ("fc1", _linear(8, 3, gen, 0.5)),
               ("li", Neuron(3, "CubaLI", du=0.25, dv=0.125, bias=_bias(3, gen), dtype=F64)), input_shape=6)
    return g, _spikes(gen, (6,))


def _soft_lif(gen):
    g = _chain(("fc", _linear(6, 8, gen, 0.7, mean=0.2)),
               ("lif", Neuron(8, "LIF", dv=0.125, vth=1.0, reset="soft", bias=_bias(8, gen), dtype=F64)),
               input_shape=6)
    return g, _spikes(gen, (6,), p=0.4)


def _threshold(gen):
    g = _chain(("fc0", _linear(6, 8, gen, 0.6)), ("thr", Threshold(0.25, dtype=F64)),
               ("fc1", _linear(8, 4, gen, 0.6, mean=0.2)),
               ("lif", Neuron(4, "LIF", dv=0.25, vth=1.0, dtype=F64)), input_shape=6)
    return g, _spikes(gen, (6,))


def _delay(gen):
    g = _chain(("fc0", _linear(6, 8, gen, 0.7, mean=0.1)),
               ("lif0", Neuron(8, "LIF", dv=0.25, vth=1.0, dtype=F64)), ("delay", Delay(3)),
               ("fc1", _linear(8, 4, gen, 0.6, mean=0.2)),
               ("lif1", Neuron(4, "LIF", dv=0.25, vth=1.0, dtype=F64)), input_shape=6)
    return g, _spikes(gen, (6,))


def _recurrent_lif(gen):
    nodes = {"fc": _linear(6, 8, gen, 0.6, mean=0.1),
             "lif": Neuron(8, "LIF", dv=0.25, vth=1.0, bias=_bias(8, gen), dtype=F64),
             "rec": _linear(8, 8, gen, 0.5)}
    edges = [("input", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "output")]
    return SpikingGraph(nodes, edges, 6), _spikes(gen, (6,))


def _conv_lif(gen):
    g = _chain(("conv", _conv(2, 3, 3, gen, 0.4, mean=0.1, padding=1)),
               ("lif", Neuron((3, 6, 6), "LIF", dv=0.25, vth=1.0, dtype=F64)), input_shape=(2, 6, 6))
    return g, _spikes(gen, (2, 6, 6))


def _conv_flatten_affine(gen):
    g = _chain(("conv", _conv(2, 2, 3, gen, 0.4, mean=0.1, bias=False)),
               ("lif0", Neuron((2, 4, 4), "LIF", dv=0.25, vth=1.0, dtype=F64)),
               ("flat", nn.Flatten()), ("fc", _linear(32, 4, gen, 0.3, bias=True, mean=0.05)),
               ("lif1", Neuron(4, "LIF", dv=0.25, vth=1.0, dtype=F64)), input_shape=(2, 6, 6))
    return g, _spikes(gen, (2, 6, 6))


def _sumpool(gen):
    g = _chain(("conv", _conv(2, 2, 3, gen, 0.3, mean=0.25, padding=1)),
               ("lif0", Neuron((2, 6, 6), "LIF", dv=0.25, vth=1.0, dtype=F64)), ("pool", SumPool2d(2)),
               ("lif1", Neuron((2, 3, 3), "LIF", dv=0.25, vth=1.0, dtype=F64)), input_shape=(2, 6, 6))
    return g, _spikes(gen, (2, 6, 6))


def _avgpool(gen):
    g = _chain(("pool", nn.AvgPool2d(2)),
               ("lif", Neuron((2, 3, 3), "LIF", dv=0.25, vth=0.5, bias=_bias((2, 3, 3), gen), dtype=F64)),
               input_shape=(2, 6, 6))
    return g, _spikes(gen, (2, 6, 6))


def _nested(gen):
    inner = _chain(("fc", _linear(8, 8, gen, 0.5, mean=0.1)),
                   ("lif", Neuron(8, "CubaLIF", du=0.5, dv=0.25, vth=1.0, dtype=F64)), input_shape=8)
    g = _chain(("fc0", _linear(6, 8, gen, 0.7, mean=0.1)),
               ("lif0", Neuron(8, "LIF", dv=0.25, vth=1.0, dtype=F64)), ("sub", inner),
               ("fc1", _linear(8, 3, gen, 0.5)), ("li", Neuron(3, "LI", dv=0.125, dtype=F64)),
               input_shape=6)
    return g, _spikes(gen, (6,))
