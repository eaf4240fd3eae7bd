"""Xylo's integer neuron: one more arithmetic of the contract's update (:func:`~spikeloop.core.neuron.cuba_step`).

SynSense's Xylo (Xylo Audio 2: the ``syns61201`` core, simulated by ``xylosim.v2``) nests the
stages of :class:`~spikeloop.core.neuron.Arithmetic` its own way:

* every state is a 16-bit signed integer and every addition saturates;
* a decay is a bit shift: ``x - max(x >> dash, sign(x))`` (at least one step toward 0);
* the step's input is added to the synaptic current *before* it decays;
* ``dv = sat(sat(-decay(v) + i_syn) + bias)``, ``v = sat(v + dv)``;
* ``n = min(cap, v // vth)`` spikes where ``v >= vth``, and ``v -= n * vth`` (the cap:
  31 for hidden neurons, 1 for readout neurons).

It lives here, beside the float arithmetic, because both the torch training twin
(``spikeloop.train.xylo``) and the emulator of the core (``spikeloop.runtime.xylo``) run it.
The constants are the simulator's (``xylosim`` 0.1.3, ``src/v2/cpp/XyloIAFNeuron.h``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spikeloop.core.errors import ConfigError
from spikeloop.core.neuron import SOFT, Arithmetic

STATE_BITS = 16
STATE_MAX = (1 << (STATE_BITS - 1)) - 1
STATE_MIN = -(1 << (STATE_BITS - 1))
WEIGHT_BITS = 8
MAX_INPUT_EVENTS = 15
"""events one input channel delivers per step (more are clipped)"""
MAX_HIDDEN_SPIKES = 31
"""spikes a hidden neuron emits per step at most"""
MAX_OUTPUT_SPIKES = 1
"""spikes a readout neuron emits per step at most"""
DASH_MAX = 15
"""decays are 4-bit shifts"""
WEIGHT_SHIFT_MAX = 7
"""the largest weight shift kept exact here: an 8-bit weight shifted by 7 still fits 16 bits"""


def saturate(x):
    """``x`` clipped to the 16-bit state range (every Xylo addition saturates)."""
    return np.clip(x, STATE_MIN, STATE_MAX)


def bitshift_decay(x, dash):
    """How much one step's decay takes off ``x``: ``x >> dash``, at least 1 toward zero."""
    x = np.asarray(x, dtype=np.int64)
    d = np.right_shift(x, np.asarray(dash, dtype=np.int64))
    return np.where(d == 0, np.sign(x), d)


def _neg16(x):
    """``-x`` as a 16-bit register holds it (``-(-32768)`` wraps to itself)."""
    n = -x
    return np.where(n > STATE_MAX, n - (1 << STATE_BITS), n)


@dataclass(frozen=True)
class XyloArithmetic(Arithmetic):
    """Xylo's integer neuron; ``du``/``dv`` are the 4-bit shifts ``dash_syn``/``dash_mem``.

    ``max_spikes`` is the cap on spikes per step (:data:`MAX_HIDDEN_SPIKES` for hidden
    neurons, :data:`MAX_OUTPUT_SPIKES` for readout neurons). The spikes are counts.

    The stages below are written once over four primitives (:meth:`sat`, :meth:`shift`,
    :meth:`neg16`, :meth:`spike_count`) in numpy integers; the torch training twin
    (``spikeloop.train.xylo``) overrides only the primitives, with straight-through
    gradients, so that training runs this very update.
    """

    max_spikes: int = MAX_HIDDEN_SPIKES
    name: str = "xylo"

    # -- primitives (numpy, int64)
    def sat(self, x):
        return saturate(x)

    def shift(self, x, dash):
        return bitshift_decay(x, dash)

    def neg16(self, x):
        return _neg16(x)

    def spike_count(self, v, vth):
        """Spikes of one step: ``min(cap, v // vth)`` where ``v >= vth``, else 0."""
        return np.where(v >= vth, np.minimum(self.max_spikes, v // vth), 0)

    def synaptic_input(self, a_in):
        return np.asarray(a_in, dtype=np.int64)

    # -- the stages, written once
    def decay_u(self, u, dash):
        return u - self.shift(u, dash)

    def decay_v(self, v, dash):
        return v - self.shift(v, dash)

    def wrap_u(self, u):
        return self.sat(u)

    def clip_v(self, v):
        return self.sat(v)

    def integrate_u(self, u, a_in, dash):
        # the input joins the current before it decays (Loihi decays first)
        return self.decay_u(self.wrap_u(u + self.synaptic_input(a_in)), dash)

    def integrate_v(self, v, u, bias, dash):
        dv = self.sat(self.neg16(self.shift(v, dash)) + u)
        return self.sat(v + self.sat(dv + bias))

    def fire(self, v, vth, reset: str, spike_fn):
        if reset != SOFT:
            raise ConfigError(f"Xylo resets by subtracting the threshold (soft); a {reset!r} reset does not run "
                              "on it")
        n = self.spike_count(v, vth)
        return n, v - n * vth


HIDDEN = XyloArithmetic(MAX_HIDDEN_SPIKES)
READOUT = XyloArithmetic(MAX_OUTPUT_SPIKES)
