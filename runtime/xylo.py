"""A numpy emulator of Xylo's SNN core, bit-exact with ``xylosim``.

Xylo (SynSense; Xylo Audio 2 is the ``syns61201`` core, simulated by ``xylosim.v2``) runs
one pool of hidden neurons with input, recurrent and readout weights. Its neuron is the
contract's CUBA-LIF (:func:`spikeloop.core.neuron.cuba_step`) in Xylo's arithmetic,
:class:`spikeloop.core.xylo.XyloArithmetic` (re-exported here with its constants).

Per timestep (:meth:`XyloEmulator.step`): the input events (at most 15 per channel) reach
the hidden neurons, the hidden spikes of the *previous* step reach the hidden neurons
(recurrent weights) and the readout neurons, each synaptic event a saturating addition of
``weight << weight_shift`` in the simulator's order (presynaptic neuron by neuron, spike by
spike); then the hidden neurons update, then the readout neurons. So between hidden
neurons, and from them to the readout, every connection takes one step.

The constants are the simulator's (``xylosim`` 0.1.3, ``src/v2/cpp/XyloIAFNeuron.h``); the
chip's published sizes (16 inputs, 1000 hidden neurons, 8 outputs) are the xylo profile's.
``xylosim`` has no licence declared: spikeloop never imports it (the tests compare against it).
Each neuron uses one of Xylo's two synapses: a spikeloop population has one current.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spikeloop.core.errors import ConfigError
from spikeloop.core.neuron import SOFT
from spikeloop.core.xylo import (DASH_MAX, HIDDEN, MAX_HIDDEN_SPIKES, MAX_INPUT_EVENTS, MAX_OUTPUT_SPIKES,  # noqa: F401
                                 READOUT, STATE_BITS, STATE_MAX, STATE_MIN, WEIGHT_BITS, WEIGHT_SHIFT_MAX,
                                 XyloArithmetic, bitshift_decay, saturate)


@dataclass
class XyloRegisters:
    """What a Xylo SNN core holds: weights, shifts, decays, thresholds and biases (integers).

    ``w_in`` is ``(inputs, hidden)``, ``w_rec`` ``(hidden, hidden)`` and ``w_out``
    ``(hidden, outputs)``, each an 8-bit signed weight; ``shift_*`` the left shift of each
    weight matrix's events; ``dash_syn``/``dash_mem`` (and their ``_out`` twins) the 4-bit
    decay shifts; ``vth`` positive 16-bit thresholds; ``bias`` 16-bit voltage biases.
    """

    w_in: np.ndarray
    w_rec: np.ndarray
    w_out: np.ndarray
    dash_syn: np.ndarray
    dash_mem: np.ndarray
    vth: np.ndarray
    bias: np.ndarray
    dash_syn_out: np.ndarray
    dash_mem_out: np.ndarray
    vth_out: np.ndarray
    bias_out: np.ndarray
    shift_in: int = 0
    shift_rec: int = 0
    shift_out: int = 0

    def __post_init__(self):
        ints = {k: np.asarray(v, dtype=np.int64) for k, v in vars(self).items() if not k.startswith("shift")}
        for k, v in ints.items():
            setattr(self, k, v)
        n_in, n_hid = self.w_in.shape if self.w_in.ndim == 2 else (None, None)
        if n_hid is None or self.w_rec.shape != (n_hid, n_hid) or self.w_out.ndim != 2 \
                or self.w_out.shape[0] != n_hid:
            raise ConfigError(f"Xylo weights must be w_in (inputs, hidden), w_rec (hidden, hidden), w_out (hidden, "
                              f"outputs); got {self.w_in.shape}, {self.w_rec.shape}, {self.w_out.shape}")
        n_out = self.w_out.shape[1]
        lo, hi = -(1 << (WEIGHT_BITS - 1)), (1 << (WEIGHT_BITS - 1)) - 1
        for name in ("w_in", "w_rec", "w_out"):
            _in_range(name, getattr(self, name), lo, hi)
        for name, n in (("dash_syn", n_hid), ("dash_mem", n_hid), ("vth", n_hid), ("bias", n_hid),
                        ("dash_syn_out", n_out), ("dash_mem_out", n_out), ("vth_out", n_out), ("bias_out", n_out)):
            value = np.broadcast_to(getattr(self, name), (n,)).copy()
            setattr(self, name, value)
            if name.startswith("dash"):
                _in_range(name, value, 0, DASH_MAX)
            elif name.startswith("vth"):
                _in_range(name, value, 1, STATE_MAX)
            else:
                _in_range(name, value, STATE_MIN, STATE_MAX)
        for name in ("shift_in", "shift_rec", "shift_out"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or not 0 <= value <= WEIGHT_SHIFT_MAX:
                raise ConfigError(f"Xylo register {name} must be an integer in [0, {WEIGHT_SHIFT_MAX}], got {value!r}")
            setattr(self, name, int(value))

    @property
    def sizes(self) -> tuple[int, int, int]:
        """``(inputs, hidden, outputs)``."""
        return self.w_in.shape[0], self.w_in.shape[1], self.w_out.shape[1]

    def recurrent_fanout(self) -> float:
        """Recurrent synapses per hidden neuron, on average (the cycle model's fan-out)."""
        return float(np.count_nonzero(self.w_rec, axis=1).mean()) if self.w_rec.size else 0.0


def _in_range(name: str, value: np.ndarray, lo: int, hi: int) -> None:
    bad = np.flatnonzero((value < lo) | (value > hi))
    if bad.size:
        i = int(bad[0])
        raise ConfigError(f"Xylo register {name}[{i}] = {int(value.reshape(-1)[i])} is outside [{lo}, {hi}]")


def deliver(i_syn: np.ndarray, counts: np.ndarray, weights: np.ndarray, shift: int, cap: int) -> np.ndarray:
    """The synaptic currents after events: ``counts[k]`` events (at most ``cap``) of presynaptic
    neuron ``k``, each adding ``weights[k] << shift`` with 16-bit saturation, in the simulator's
    order (neuron by neuron, event by event).

    Where no partial sum can leave the 16-bit range the order does not matter and one
    product gives the same integers; otherwise each presynaptic neuron's events are added in
    turn (its ``n`` events of one weight are one clipped sum: the same weight keeps a
    saturated current at its rail).
    """
    counts = np.minimum(np.asarray(counts, dtype=np.int64), cap)
    w = np.left_shift(weights, shift)
    reach = np.abs(i_syn) + counts @ np.abs(w)
    if reach.max(initial=0) <= STATE_MAX:
        return i_syn + counts @ w
    out = i_syn.copy()
    for k in np.flatnonzero(counts):
        # n events of one weight: once a rail is reached the next ones stay there, so one clipped sum
        out = saturate(out + counts[k] * w[k])
    return out


class XyloEmulator:
    """The Xylo SNN core of :class:`XyloRegisters`, one step at a time (numpy, bit-exact).

    State: the hidden and readout neurons' ``i_syn`` and ``v_mem`` and the hidden spikes of
    the last step. :meth:`step` takes the input event counts of one step and returns the
    readout spikes; :attr:`record` (when ``record=True``) keeps every step's states.
    """

    def __init__(self, registers: XyloRegisters, record: bool = False):
        self.reg = registers
        self.recording = record
        self.reset()

    def reset(self) -> None:
        """Zero state, as the chip starts an episode."""
        n_in, n_hid, n_out = self.reg.sizes
        self.i_syn, self.v_mem = np.zeros(n_hid, np.int64), np.zeros(n_hid, np.int64)
        self.i_syn_out, self.v_mem_out = np.zeros(n_out, np.int64), np.zeros(n_out, np.int64)
        self.spikes = np.zeros(n_hid, np.int64)
        self.record: dict[str, list] = {k: [] for k in ("events", "i_syn", "v_mem", "spikes", "i_syn_out",
                                                        "v_mem_out", "spikes_out")}

    def step(self, events: np.ndarray) -> np.ndarray:
        """One timestep with ``events`` (one count per input channel); returns the readout spikes."""
        r = self.reg
        events = np.asarray(events, dtype=np.int64)
        if events.shape != (r.sizes[0],) or events.min(initial=0) < 0:
            raise ConfigError(f"Xylo input: one non-negative event count per input channel ({r.sizes[0]}), got "
                              f"{events.shape} with minimum {events.min(initial=0)}")
        i_syn = deliver(self.i_syn, events, r.w_in, r.shift_in, MAX_INPUT_EVENTS)
        i_syn = deliver(i_syn, self.spikes, r.w_rec, r.shift_rec, MAX_HIDDEN_SPIKES)
        i_out = deliver(self.i_syn_out, self.spikes, r.w_out, r.shift_out, MAX_HIDDEN_SPIKES)
        # the currents already hold this step's events: nothing more to add
        self.i_syn, self.v_mem, self.spikes = _update(HIDDEN, i_syn, self.v_mem, r.dash_syn, r.dash_mem, r.bias,
                                                      r.vth)
        self.i_syn_out, self.v_mem_out, out = _update(READOUT, i_out, self.v_mem_out, r.dash_syn_out,
                                                      r.dash_mem_out, r.bias_out, r.vth_out)
        if self.recording:
            for k, v in (("events", np.minimum(events, MAX_INPUT_EVENTS)), ("i_syn", self.i_syn),
                         ("v_mem", self.v_mem), ("spikes", self.spikes), ("i_syn_out", self.i_syn_out),
                         ("v_mem_out", self.v_mem_out), ("spikes_out", out)):
                self.record[k].append(v.copy())
        return out

    def run(self, events: np.ndarray) -> np.ndarray:
        """Steps over ``events`` ``(T, inputs)``; returns the readout spikes ``(T, outputs)``."""
        return np.stack([self.step(e) for e in np.asarray(events)])


def _update(arith: XyloArithmetic, i_syn, v_mem, dash_syn, dash_mem, bias, vth):
    from spikeloop.core.neuron import cuba_step

    u, v, s, _ = cuba_step(i_syn, v_mem, 0, du=dash_syn, dv=dash_mem, bias=bias, vth=vth, reset=SOFT, arith=arith)
    return u, v, s
