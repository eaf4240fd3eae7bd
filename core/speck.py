"""Speck's (DYNAP-CNN's) integer neuron: one more arithmetic of the contract's update.

SynSense's Speck runs each layer of a convolutional network on one of its nine cores. Its
neuron is integrate-and-fire (:func:`~spikeloop.core.neuron.cuba_step` with ``du = 1``,
``dv = 0``: no synaptic current state, no leak) in 16-bit integers, as SynSense's own
software model of the chip describes it (``sinabs.backend.dynapcnn``, sinabs 3.1.3):

* every input event adds its 8-bit weight to the target's state;
* a neuron fires where ``v >= threshold`` (sinabs's spike functions test ``v - thr >= 0``,
  not the contract's ``v > vth``), one spike per step;
* the reset subtracts the threshold (``soft``) or returns to zero (``hard``);
* the state is clamped below at ``threshold_low`` (here the 16-bit floor) and saturates at
  the 16-bit top (sinabs's float state has no top: that part is the register width only).

The registers come from sinabs's discretization (:func:`discretize_layer`): one scale per
layer, the smaller of the weights' scale onto [-128, 127] (``127 / max(w)``, or ``128 / |min(w)|``
where the most negative weight binds: :func:`sinabs_scale`) and the scale that puts the
threshold pair ``(threshold_low, threshold)`` on 16 bits, then every value rounded half to even.

The stages are written once over three primitives (``as_state``, ``clip``, ``spike``) in numpy
integers; the torch training twin (``spikeloop.train.speck``) overrides only the primitives.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spikeloop.core.neuron import HARD, SOFT, Arithmetic

STATE_BITS = 16
STATE_MAX = (1 << (STATE_BITS - 1)) - 1
STATE_MIN = -(1 << (STATE_BITS - 1))
WEIGHT_BITS = 8
WEIGHT_MAX = (1 << (WEIGHT_BITS - 1)) - 1
WEIGHT_MIN = -(1 << (WEIGHT_BITS - 1))


def sinabs_scale(lo: float, hi: float, bits: int) -> float:
    """sinabs's ``determine_discretization_scale``: the factor that puts ``[lo, hi]`` on ``bits``
    signed bits (the largest magnitude onto the top, or the most negative onto the bottom)."""
    top, bottom = (1 << (bits - 1)) - 1, -(1 << (bits - 1))
    big, small = max(abs(lo), abs(hi)), min(lo, hi, 0.0)
    if big == 0:
        return np.inf
    if abs(small) <= max(hi, 0.0) * abs(bottom / top):
        return abs(top / max(hi, 0.0)) if hi > 0 else np.inf
    return abs(bottom / small)


def discretize_layer(weight: np.ndarray, vth: float, vmin: float | None = None) -> tuple[np.ndarray, int, int, float]:
    """``(integer weights, threshold, threshold_low, scale)`` of one layer, as sinabs discretizes it.

    ``weight`` is the layer's real-valued weights, ``vth`` its neurons' threshold, ``vmin`` the
    state's lower bound in real units (default: the 16-bit floor on the weights' scale, the
    widest the register allows; sinabs's own default of -32768 real units caps its scale at 1).
    """
    w = np.asarray(weight, np.float64)
    s_w = sinabs_scale(float(w.min(initial=0.0)), float(w.max(initial=0.0)), WEIGHT_BITS)
    if vmin is None:
        vmin = STATE_MIN / s_w if np.isfinite(s_w) else -float(vth)
    scale = min(s_w, sinabs_scale(float(vmin), float(vth), STATE_BITS))
    return (np.rint(w * scale).astype(np.int64), int(np.rint(vth * scale)), int(np.rint(vmin * scale)),
            float(scale))


@dataclass(frozen=True)
class SpeckArithmetic(Arithmetic):
    """Speck's integer integrate-and-fire neuron (``du``/``dv`` are unused: no current, no leak).

    The state is clipped to 16 bits as it integrates: the floor is ``threshold_low`` (sinabs
    clamps after the reset, which gives the same numbers: a clipped negative state does not fire,
    and a reset leaves ``v >= 0``).
    """

    name: str = "speck"

    # -- primitives (numpy, int64)
    def as_state(self, a_in):
        return np.asarray(a_in, np.int64)

    def clip(self, x):
        return np.clip(x, STATE_MIN, STATE_MAX)

    def spike(self, d, spike_fn):
        """Spikes where ``d = v - threshold >= 0`` (integers)."""
        return (d >= 0).astype(np.int64)

    # -- stages
    def integrate_u(self, u, a_in, du):
        return self.as_state(a_in)  # no synaptic current state: the step's events

    def integrate_v(self, v, u, bias, dv):
        return self.clip(v + u + bias)

    def fire(self, v, vth, reset: str, spike_fn):
        s = self.spike(v - vth, spike_fn)
        if reset == HARD:
            return s, v - s * v
        if reset == SOFT:
            return s, v - s * vth
        raise ValueError(f"unknown reset mode {reset!r}")


SPECK = SpeckArithmetic()
