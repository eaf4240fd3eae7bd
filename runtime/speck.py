"""A numpy emulator of Speck (DYNAP-CNN): the plan on the chip's integer arithmetic.

Each population of the plan is one layer on one core: the connection into it (a
convolution, a dense map, or a sum pooling composed with either: the compiler composes
the pooling between a layer's neurons and the next convolution into that connection, and
over binary spikes the composed integer map gives the same sums as pooling then
convolving) and its integrate-and-fire neurons. :func:`speck_layers` discretizes each
layer as sinabs does for the chip (:func:`spikeloop.core.speck.discretize_layer`); the
neurons run the contract's :func:`~spikeloop.core.neuron.cuba_step` in
:class:`~spikeloop.core.speck.SpeckArithmetic`. It is bit-exact with sinabs's software model
of the chip and with the torch policy trained on Speck's integers (``spikeloop.train.speck``);
``tests/test_speck.py`` holds it to both.

Time: the chip is event-driven, without timesteps. Like sinabs's software model of it, the
emulator advances in steps of the graph's own time: in each step every layer, in order,
integrates the events its source sent in that step (no delay per hop), fires at most once
and resets. The input is held for the decision's ``T`` steps; every decision starts from
zero state. An observation must encode to event counts (non-negative integers: a binary
image, or a spike encoder's output), each count that many input events.

What Speck cannot run is refused, naming the population: a leak or a synaptic current
(``dv != 0`` or ``du != 1``), a bias (the chip's bias is a leak on a slow clock, not a
per-step current), a non-spiking readout, a population fed by more than one connection
(merges and skips need a merge core), recurrent or delayed connections.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from spikeloop.core.errors import ConfigError, QuantizationError
from spikeloop.core.neuron import cuba_step
from spikeloop.core.speck import SPECK, STATE_MIN, WEIGHT_MAX, WEIGHT_MIN, discretize_layer
from spikeloop.runtime.backends import FIXED_PRECISION, FLOAT_PRECISION, WINDOW, HostCodec, PlanBackend
from spikeloop.runtime.counters import OpCounts, neuron_activity
from spikeloop.runtime.fixed_point import FixedPlan, dense_accumulate
from spikeloop.runtime.plan import INPUT, DecisionWindow, NetworkPlan


@dataclass
class SpeckLayer:
    """One core's registers: the integer weights into a population and its thresholds."""

    population: str
    connection: str
    source: str
    weights: np.ndarray
    threshold: int
    threshold_low: int
    reset: str
    scale: float
    """register units per real unit of the population's state"""


def speck_layers(plan: NetworkPlan) -> list[SpeckLayer]:
    """The plan as Speck layers (sinabs's discretization); :class:`ConfigError` naming what cannot run."""
    layers = []
    for p in plan.populations:
        if not p.spiking:
            raise ConfigError(f"population {p.name!r}: a non-spiking readout; Speck's layers send spikes "
                              "(train the readout to spike: DQN --readout spike-count, --speck)")
        du, dv = np.asarray(p.du, np.float64), np.asarray(p.dv, np.float64)
        if np.any(du != 1) or np.any(dv != 0):
            raise ConfigError(f"population {p.name!r}: du {float(du.reshape(-1)[0]):g}, dv "
                              f"{float(dv.reshape(-1)[0]):g}; Speck's neurons integrate and fire without a leak "
                              "or a synaptic current (du 1, dv 0: NIR IF)")
        if np.any(np.asarray(p.bias) != 0):
            raise ConfigError(f"population {p.name!r}: a bias; Speck adds its bias as a leak on a slow clock, not "
                              "per timestep, so spikeloop deploys bias-free layers only (train with --speck)")
        incoming = plan.incoming(p.name)
        if len(incoming) != 1:
            raise ConfigError(f"population {p.name!r}: fed by {len(incoming)} connections; a Speck layer is one "
                              "convolution (or dense map) into its neurons")
        (c,) = incoming
        if c.graph_delay or c.delay:
            raise ConfigError(f"connection {c.name!r}: recurrent or delayed; Speck's layers feed forward")
        w, vth, vmin, scale = discretize_layer(c.weight, float(p.vth))
        if not np.any(w):
            raise QuantizationError(f"connection {c.name!r}: every weight rounds to 0 on Speck's 8-bit grid")
        if vth < 1:
            raise QuantizationError(f"population {p.name!r}: threshold {p.vth:g} rounds to {vth} on the scale of "
                                    f"its 8-bit weights ({scale:g} per unit)")
        assert WEIGHT_MIN <= w.min() and w.max() <= WEIGHT_MAX and vmin == STATE_MIN, (w.min(), w.max(), vmin)
        layers.append(SpeckLayer(p.name, c.name, c.src, w, vth, vmin, p.reset, scale))
    return layers


class _EventCodec(HostCodec):
    """The host side of Speck: observations become input events; spike counts come back."""

    def encode(self, obs: np.ndarray) -> np.ndarray:
        x = np.asarray(self.stream.encode(obs), np.float64)
        bad = (x < 0) | (x != np.rint(x))
        if np.any(bad):
            i = int(np.flatnonzero(bad.reshape(-1))[0])
            raise ConfigError(f"input channel {i}: the encoded observation is {x.reshape(-1)[i]:g}, not a count of "
                              "events; Speck takes events only (a binary image, or a spike encoder in front)")
        return x.astype(np.int64)


class SpeckEmulator(PlanBackend):
    """Run a plan on Speck's integer arithmetic in the graph's time (see the module docstring)."""

    name = "speck"
    timed_like_lava = False
    clears_in_flight = True

    def __init__(self, plan: NetworkPlan, precision: str = FIXED_PRECISION, fixed: FixedPlan | None = None,
                 windowed: bool = True, memory: str = WINDOW):
        if precision != FIXED_PRECISION or fixed is not None or memory != WINDOW:
            raise ConfigError("the Speck emulator runs Speck's own integer registers, one decision per window "
                              "(precision 'fixed', no Loihi registers, memory 'window')")
        self.layers = speck_layers(plan)  # every register checked before anything runs
        super().__init__(plan, FLOAT_PRECISION, None, windowed, memory)
        self.precision = FIXED_PRECISION
        self.codec = _EventCodec(plan, FLOAT_PRECISION, None) if windowed else None
        self._conn = {c.name: c for c in plan.connections}
        self._fan = {lay.connection: self._conn[lay.connection].fanout(lay.weights) for lay in self.layers}
        self._w = {lay.connection: lay.weights.astype(np.float64) for lay in self.layers}  # exact sums: < 2**53
        self.input_events = 0
        """input events sent since :meth:`reset`"""
        self.reset()

    @property
    def window(self) -> DecisionWindow:
        """Graph time: the output's window is the input's ``T`` steps."""
        return DecisionWindow(self.plan.T, latency=0)

    def reset(self) -> None:
        """Zero the state and the counters."""
        self.v = {lay.population: np.zeros(self.plan.population(lay.population).size, np.int64)
                  for lay in self.layers}
        self.input_events = 0
        self.ops = OpCounts(graded={c.name: False for c in self.plan.connections})
        for lay in self.layers:
            self.ops.synops[lay.connection] = 0
            self.ops.updates[lay.population] = self.ops.active[lay.population] = self.ops.spikes[lay.population] = 0

    def counts(self) -> OpCounts:
        """Operations since :meth:`reset`: every input event and spike costs its non-zero fan-out."""
        return copy.deepcopy(self.ops)

    def step(self, events: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """One step: ``events`` (counts per input channel) in; ``{population: (spikes, v)}``."""
        out = {INPUT: np.asarray(events, np.int64)}
        self.input_events += int(out[INPUT].sum())
        rec = {}
        for lay in self.layers:
            s_in = out[lay.source]
            a_in = dense_accumulate(self._w[lay.connection], s_in, 0, self._conn[lay.connection])
            self.ops.synops[lay.connection] += int(self._fan[lay.connection] @ s_in)
            _, v, s, v_pre = cuba_step(np.zeros_like(a_in), self.v[lay.population], a_in, du=1, dv=0, bias=0,
                                       vth=lay.threshold, reset=lay.reset, arith=SPECK)
            self.v[lay.population] = v
            n = s.size
            self.ops.updates[lay.population] += n
            self.ops.active[lay.population] += neuron_activity(np.zeros(n), v_pre, s)
            self.ops.spikes[lay.population] += int(s.sum())
            out[lay.population] = s
            rec[lay.population] = (s, v)
        self.ops.steps += 1
        return rec

    def _run_window(self, x: np.ndarray) -> np.ndarray:
        """A decision from zero state: the events ``x`` held ``T`` steps; the output spikes ``(T, n)``."""
        for v in self.v.values():
            v[:] = 0
        rows = [self.step(x)[self.plan.output][0] for _ in range(self.plan.T)]
        self.ops.decisions += 1
        return np.stack(rows)
