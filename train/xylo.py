"""Xylo-aware training: the torch twin of Xylo's integer neuron and its 8-bit synapses.

:class:`TorchXyloArithmetic` is :class:`spikeloop.core.xylo.XyloArithmetic` with its
four primitives (saturation, bit-shift decay, 16-bit negation, spike count) in torch, each
exact in the forward pass and with a straight-through or surrogate gradient: training
runs the very update the emulator and the vendor's simulator run. States are in register
units (integers held in float32, exact for 16-bit states and these sums).

:class:`XyloNeuron` is a population on that arithmetic (soft multi-spike reset, the cap of
31 spikes per step in hidden neurons, one in readout neurons). :class:`XyloLinear` holds
8-bit integer weights (``round(127 * clamp(w, -1, 1))``, straight-through), optionally
under a fixed fan-in mask (Xylo: at most 63 inputs per neuron). Both export their float
semantics to NIR: ``du = 2**-dash_syn``, ``dv = 2**-dash_mem`` and weights scaled by
``1 - 2**-dash_syn`` of the target (the input joins the current before it decays), which
``spikeloop.runtime.xylo_map`` inverts exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from spikeloop.core.errors import ConfigError
from spikeloop.core.neuron import SOFT, cuba_step
from spikeloop.core.xylo import (DASH_MAX, MAX_HIDDEN_SPIKES, MAX_OUTPUT_SPIKES, STATE_MAX, STATE_MIN,
                                    XyloArithmetic)
from spikeloop.train.graph import Neuron, QuantLinear

WEIGHT_LEVELS = 127
FAN_IN_MAX = 63
"""Xylo's synapses per neuron"""


class _Round(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, g):
        return g


class _SpikeCount(torch.autograd.Function):
    """``min(cap, floor(v / vth))`` where ``v >= vth``; the gradient is a fast-sigmoid surrogate
    below the threshold and the count's slope ``1 / vth`` up to the cap."""

    @staticmethod
    def forward(ctx, v, vth, cap, alpha):
        ctx.save_for_backward(v)
        ctx.vth, ctx.cap, ctx.alpha = vth, cap, alpha
        n = torch.clamp(torch.div(v, vth, rounding_mode="floor"), max=cap)
        return torch.where(v >= vth, n, torch.zeros_like(v))

    @staticmethod
    def backward(ctx, g):
        (v,) = ctx.saved_tensors
        x = (v - ctx.vth) / ctx.vth
        below = 1.0 / (1.0 + ctx.alpha * x.abs()) ** 2
        slope = torch.where(v < ctx.vth, below, (v < (ctx.cap + 1) * ctx.vth).to(v.dtype))
        return g * slope / ctx.vth, None, None, None


@dataclass(frozen=True)
class TorchXyloArithmetic(XyloArithmetic):
    """Xylo's update on torch tensors (see the module docstring)."""

    alpha: float = 1.0
    name: str = "xylo-torch"

    def sat(self, x):
        return torch.clamp(x, STATE_MIN, STATE_MAX)

    def shift(self, x, dash):
        y = x * torch.pow(2.0, -dash.to(x.dtype))
        f = torch.floor(y)
        f = torch.where(f == 0, torch.sign(x), f)  # at least one step toward zero
        return y + (f - y).detach()

    def neg16(self, x):
        return torch.where(x == STATE_MIN, x, -x)

    def spike_count(self, v, vth):
        return _SpikeCount.apply(v, float(vth), float(self.max_spikes), self.alpha)

    def synaptic_input(self, a_in):
        return a_in


def _dash(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= DASH_MAX:
        raise ConfigError(f"{name} must be an integer bit shift in [1, {DASH_MAX}] (decay 2**-{name}), got {value!r}")
    return value


class XyloNeuron(Neuron):
    """A population of Xylo's integer CUBA-LIF neurons (register units; soft multi-spike reset).

    ``vth`` is the integer threshold; ``None`` makes a readout whose voltage is the output
    (on Xylo: a readout neuron at the largest threshold, which spikes, once, only at the
    16-bit rail, as modelled here). ``readout`` caps the spikes at one per step.
    """

    def __init__(self, shape: int, dash_syn: int, dash_mem: int, vth: int | None, readout: bool = False,
                 surrogate_alpha: float = 1.0, dtype: torch.dtype | None = None):
        dash_syn, dash_mem = _dash("dash_syn", dash_syn), _dash("dash_mem", dash_mem)
        if vth is not None and (isinstance(vth, bool) or not isinstance(vth, int) or not 1 <= vth <= STATE_MAX):
            raise ConfigError(f"a Xylo threshold is an integer in [1, {STATE_MAX}], got {vth!r}")
        super().__init__(shape, "CubaLIF" if vth is not None else "CubaLI", du=2.0 ** -dash_syn,
                         dv=2.0 ** -dash_mem, vth=None if vth is None else float(vth), reset=SOFT, bias=0.0,
                         surrogate_alpha=surrogate_alpha, dtype=dtype, surrogate="fast-sigmoid")
        self.bias.requires_grad_(False)  # behind the first layer a bias cannot run windowed on Xylo
        self.dash_syn, self.dash_mem, self.readout = dash_syn, dash_mem, bool(readout)
        self.arith = TorchXyloArithmetic(MAX_OUTPUT_SPIKES if readout else MAX_HIDDEN_SPIKES, alpha=surrogate_alpha)

    def step(self, a_in, state):
        u, v = (torch.zeros_like(a_in), torch.zeros_like(a_in)) if state is None else state
        dash_u = torch.tensor(float(self.dash_syn))
        dash_v = torch.tensor(float(self.dash_mem))
        vth = self.vth if self.spiking else float(STATE_MAX)
        u, v, s, _ = cuba_step(u, v, a_in, du=dash_u, dv=dash_v, bias=0.0, vth=vth, reset=SOFT, spike_fn=None,
                               arith=self.arith)
        return (s if self.spiking else v), (u, v)

    def extra_repr(self):
        return (f"xylo, shape={self.shape}, dash_syn={self.dash_syn}, dash_mem={self.dash_mem}, vth={self.vth}, "
                f"readout={self.readout}")


class XyloLinear(QuantLinear):
    """Bias-free synapses with 8-bit integer weights ``round(127 * clamp(w, -1, 1))`` (straight-through).

    ``target_dash_syn`` is the current decay shift of the population it feeds: the exported
    (NIR) weight is the integer times ``1 - 2**-target_dash_syn``. ``fan_in`` (at most 63)
    draws a fixed mask of that many inputs per neuron from ``generator`` when the layer has
    more inputs than that.
    """

    def __init__(self, in_features: int, out_features: int, target_dash_syn: int, fan_in: int = FAN_IN_MAX,
                 generator: torch.Generator | None = None, dtype: torch.dtype | None = None):
        super().__init__(in_features, out_features, bias=False, fake_quant=True, dtype=dtype)
        self.target_dash_syn = _dash("target_dash_syn", target_dash_syn)
        if isinstance(fan_in, bool) or not isinstance(fan_in, int) or not 1 <= fan_in <= FAN_IN_MAX:
            raise ConfigError(f"fan_in must be an integer in [1, {FAN_IN_MAX}] (Xylo's synapses per neuron), "
                              f"got {fan_in!r}")
        mask = torch.ones(out_features, in_features, dtype=self.weight.dtype)
        if in_features > fan_in:
            mask.zero_()
            for j in range(out_features):
                mask[j, torch.randperm(in_features, generator=generator)[:fan_in]] = 1.0
        self.register_buffer("mask", mask)

    def integer_weight(self) -> torch.Tensor:
        """The 8-bit register values (as floats), masked; straight-through in training."""
        return _Round.apply(torch.clamp(self.weight, -1.0, 1.0) * WEIGHT_LEVELS) * self.mask

    def deployed_weight(self) -> torch.Tensor:
        """The NIR weight: the integers times ``1 - 2**-dash_syn`` of the target population."""
        return self.integer_weight() * (1.0 - 2.0 ** -self.target_dash_syn)

    def forward(self, x):
        return x @ self.integer_weight().T

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, xylo 8-bit, "
                f"target_dash_syn={self.target_dash_syn}, fan_in={int(self.mask.sum(1).max())}")
