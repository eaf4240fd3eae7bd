"""Speck-aware training: the torch twin of Speck's integer integrate-and-fire layer.

A Speck layer (:mod:`spikeloop.runtime.speck`, as sinabs discretizes it for the chip) holds
8-bit integer weights ``W = round(w * scale)`` in [-128, 127] (``scale = 127 / max(w)``, or
``128 / |min(w)|`` where the most negative weight binds) and the threshold
``round(vth * scale)``, and its neurons integrate those integers in a 16-bit state, firing
where ``v >= threshold``. Here the same numbers are trained: :class:`SpeckLinear` and
:class:`SpeckConv2d` send ``W @ s`` in register units (straight-through), and
:class:`SpeckNeuron` integrates, clips to 16 bits, fires and resets on the integer threshold
of its synapse's grid: the one update :func:`~spikeloop.core.neuron.cuba_step` in
:class:`TorchSpeckArithmetic`, whose primitives alone are torch's. Integers held in float32 are exact here (16-bit states, sums of 8-bit
weights over fewer than 2**16 events), so the torch policy, the emulator and sinabs's model give
the same spikes. The surrogate gradient sees ``v - threshold`` in real units (times the grid
step), so training behaves as on the float neuron.

Both export their float semantics to NIR: weights on the 8-bit grid in real units, IF neurons
of threshold ``vth``; the graph's metadata says ``arithmetic: speck``, and the emulator
recovers the integers exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from spikeloop.core.neuron import HARD, cuba_step
from spikeloop.core.speck import STATE_MAX, STATE_MIN, WEIGHT_MAX, WEIGHT_MIN, SpeckArithmetic
from spikeloop.train.graph import Neuron, QuantConv2d, QuantLinear


@dataclass(frozen=True)
class TorchSpeckArithmetic(SpeckArithmetic):
    """Speck's update on torch tensors in register units; ``step`` is the grid step, so that the
    surrogate gradient sees ``v - threshold`` in real units."""

    step: float = 1.0
    name: str = "speck-torch"

    def as_state(self, a_in):
        return a_in

    def clip(self, x):
        return torch.clamp(x, STATE_MIN, STATE_MAX)

    def spike(self, d, spike_fn):
        return spike_fn((d + 0.5) * self.step)  # d >= 0 on integers


class _RegisterUnits:
    """A synapse whose output is in register units: the integer weights of sinabs's 8-bit grid."""

    def weight_step(self) -> torch.Tensor:
        """The grid step (no gradient): ``max(w) / 127``, or ``|min(w)| / 128`` where the most negative
        weight is the one that binds (sinabs's scale onto [-128, 127], :func:`spikeloop.core.speck.discretize_layer`)."""
        w = self.weight.detach()
        lo, hi = float(w.min()), float(w.max())
        if abs(lo) <= max(hi, 0.0) * (-WEIGHT_MIN / WEIGHT_MAX):  # sinabs_scale's choice, kept as a step
            return w.new_tensor(max(hi, 1e-12) / WEIGHT_MAX)
        return w.new_tensor(max(-lo, 1e-12) / -WEIGHT_MIN)

    def integer_weight(self) -> torch.Tensor:
        """The 8-bit register values, exact integers held as floats (straight-through in training)."""
        x = self.weight / self.weight_step()
        return x + (torch.clamp(torch.round(x), WEIGHT_MIN, WEIGHT_MAX) - x).detach()

    def deployed_weight(self) -> torch.Tensor:
        """The weight export writes: the integers times the step (the emulator recovers them exactly)."""
        return self.integer_weight() * self.weight_step()


class SpeckLinear(_RegisterUnits, QuantLinear):
    """Bias-free synapses sending ``W @ s`` with Speck's 8-bit integer weights."""

    def __init__(self, in_features: int, out_features: int, dtype: torch.dtype | None = None):
        super().__init__(in_features, out_features, bias=False, fake_quant=True, dtype=dtype)

    def forward(self, x):
        return x @ self.integer_weight().T


class SpeckConv2d(_RegisterUnits, QuantConv2d):
    """A bias-free convolution sending its integer kernel's sums (Speck's 8-bit weights)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dtype: torch.dtype | None = None):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, fake_quant=True,
                         dtype=dtype)

    def forward(self, x):
        return self._conv_forward(x, self.integer_weight(), None)


class SpeckNeuron(Neuron):
    """Speck's integrate-and-fire neurons in register units, on the grid of the synapse that feeds them."""

    def __init__(self, shape, synapse: _RegisterUnits, vth: float = 1.0, reset: str = HARD,
                 surrogate_alpha: float = 2.0, surrogate: str = "arctan", dtype: torch.dtype | None = None):
        super().__init__(shape, "IF", vth=vth, reset=reset, surrogate_alpha=surrogate_alpha, surrogate=surrogate,
                         dtype=dtype)
        self.bias.requires_grad_(False)  # Speck's bias is a leak on a slow clock: none here
        object.__setattr__(self, "_synapse", synapse)  # read, not owned: not a submodule

    def threshold(self) -> tuple[float, torch.Tensor]:
        """``(integer threshold, grid step)``: ``round(vth / step)``, as the chip's discretization."""
        step = self._synapse.weight_step()
        return float(torch.round(self.vth / step)), step

    def step(self, a_in, state):
        u, v = (torch.zeros_like(a_in), torch.zeros_like(a_in)) if state is None else state
        thr, step = self.threshold()
        u, v, s, _ = cuba_step(u, v, a_in, du=1.0, dv=0.0, bias=0.0, vth=thr, reset=self.reset, spike_fn=self._spike,
                               arith=TorchSpeckArithmetic(step=float(step)))
        return s, (u, v)

    def extra_repr(self):
        return f"speck, shape={self.shape}, vth={self.vth}, reset={self.reset!r}"
