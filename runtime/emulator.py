"""A numpy emulator of the deployed network, timed exactly like Lava.

It runs the same :func:`spikeloop.core.neuron.cuba_step` as the torch layers, in
float or in Loihi integer arithmetic (:mod:`spikeloop.runtime.fixed_point`), with
Lava's schedule: in every step each population first updates from the Dense
outputs computed in the previous step, then every Dense computes its new output
from this step's spikes (one step of delay per hop). In fixed point it is bit-exact
with Lava's ``fixed_pt`` models; the tests hold it to that on every spike and voltage.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from spikeloop.core.errors import ConfigError
from spikeloop.runtime.backends import FIXED_PRECISION, FLOAT_PRECISION, WINDOW, PlanBackend, Recording
from spikeloop.runtime.counters import OpCounts, neuron_activity, synops
from spikeloop.runtime.fixed_point import LOIHI, FixedPlan, dense_accumulate
from spikeloop.runtime.plan import INPUT, STREAM_INTERVAL, Connection, NetworkPlan
from spikeloop.core.neuron import FLOAT, cuba_step


def _decay(d: np.ndarray):
    """One decay for the population where every neuron shares it (the fast path of the
    arithmetic), else the per-neuron array: both give the same numbers, neuron by neuron."""
    d = np.asarray(d)
    return d.reshape(-1)[0].item() if np.all(d == d.reshape(-1)[0]) else d


@dataclass
class _Pop:
    name: str
    size: int
    du: object
    dv: object
    bias: np.ndarray
    vth: object
    reset: str
    spiking: bool
    offset: int


@dataclass
class _Conn:
    name: str
    src: str
    dst: str
    weight: np.ndarray  # float weights, or Lava's effective integer weights
    exp: int
    fan: np.ndarray
    delay: int
    graph_delay: int = 0
    dst_offset: int = 0
    plan: Connection | None = None
    """the plan's connection (its map: a matrix or a convolution)"""


class Emulator(PlanBackend):
    """Step a :class:`NetworkPlan` in ``precision`` 'float' or 'fixed', timed like Lava.

    ``windowed`` resets each population at the start of its decision window (closed
    loop); without it the network streams (open-loop simulation of a NIR graph), each
    population reset once as the input first reaches it. Per-neuron decays run per neuron.

    ``batch``: ``B`` copies of the network stepped at once (closed loop: observations
    ``(B, obs)`` in, values ``(B, n)`` out), each copy bit-exact with a network of its own,
    in float as well (spike sums are taken per copy in the order a single copy takes
    them). :attr:`active` masks the copies that count operations (a copy whose episodes
    are over runs on, uncounted).
    """

    name = "emulator"
    clears_in_flight = True

    def __init__(self, plan: NetworkPlan, precision: str = FLOAT_PRECISION,
                 fixed: FixedPlan | None = None, windowed: bool = True, batch: int | None = None,
                 memory: str = WINDOW):
        super().__init__(plan, precision, fixed, windowed, memory)
        self.batch = check_batch(batch, windowed, self.name)
        self.shape = () if self.batch is None else (self.batch,)
        self.active: np.ndarray | None = None
        """with ``batch``: which copies count operations (default: all)"""
        self.period = plan.period
        self.interval = plan.period if windowed and memory == WINDOW else STREAM_INTERVAL
        self.arith = LOIHI if precision == FIXED_PRECISION else FLOAT
        dtype = np.int64 if precision == FIXED_PRECISION else np.float64
        offsets = plan.reset_offsets(self.interval)
        self.pops: list[_Pop] = []
        for p in plan.populations:
            if precision == FIXED_PRECISION:
                f = self.fixed.populations[p.name]
                self.pops.append(_Pop(p.name, p.size, _decay(f.du_12bit), _decay(f.dv_12bit),
                                      f.bias_eff.astype(np.int64), f.vth_eff, p.reset, p.spiking,
                                      offsets[p.name]))
            else:
                self.pops.append(_Pop(p.name, p.size, _decay(p.du), _decay(p.dv),
                                      np.asarray(p.bias, np.float64), p.vth, p.reset, p.spiking,
                                      offsets[p.name]))
        self.conns: list[_Conn] = []
        for c in plan.connections:
            if precision == FIXED_PRECISION:
                f = self.fixed.connections[c.name]
                w, exp = f.w_eff.astype(np.float64), f.weight_exp  # exact: see dense_accumulate
            else:
                w, exp = np.asarray(c.weight, np.float64), 0
            self.conns.append(_Conn(c.name, c.src, c.dst, w, exp, c.fanout(w), c.delay, c.graph_delay,
                                    offsets[c.dst], c))
        self._in_conns = {p.name: [i for i, c in enumerate(self.conns) if c.dst == p.name] for p in self.pops}
        self.dtype = dtype
        self.reset()

    def reset(self) -> None:
        """Zero all state, buffers, counters and the Lava step counter."""
        self.time_step = 0
        self.u = {p.name: np.zeros(self.shape + (p.size,), self.dtype) for p in self.pops}
        self.v = {p.name: np.zeros(self.shape + (p.size,), self.dtype) for p in self.pops}
        # One slot per step of delay: slot 0 reaches the target in the next step.
        self.pipe = [[np.zeros(self.shape + (c.plan.shape[0],), self.dtype) for _ in range(c.delay + 1)]
                     for c in self.conns]
        self.ops = OpCounts(graded={c.name: self.plan.is_graded(c) for c in self.plan.connections})
        """the live counters (:meth:`counts` returns a copy)"""
        for c in self.conns:
            self.ops.synops[c.name] = 0
        for p in self.pops:
            self.ops.updates[p.name] = self.ops.active[p.name] = 0
            if p.spiking:
                self.ops.spikes[p.name] = 0

    def counts(self) -> OpCounts:
        """Operations performed since :meth:`reset` (a copy of the live counters)."""
        return copy.deepcopy(self.ops)

    def step(self, x_in: np.ndarray) -> dict[str, tuple[np.ndarray | None, np.ndarray]]:
        """One Lava timestep with host input ``x_in`` (payload ints in fixed point).

        Returns ``{population: (spikes or None, v after reset)}``.
        """
        self.time_step += 1
        t = self.time_step
        out = {INPUT: np.asarray(x_in, dtype=self.dtype)}
        rec = {}
        counts = self.ops
        m = self.active if self.batch is not None and self.active is not None else slice(None)
        copies = 1 if self.batch is None else int(np.count_nonzero(np.ones(self.batch, bool)[m]))
        for p in self.pops:
            a_in = np.zeros(self.shape + (p.size,), self.dtype)
            for i in self._in_conns[p.name]:
                c = self.conns[i]
                # windowed: what a recurrent or delayed connection delivers in the first g steps of
                # the target's window left its source in the previous decision; the window starts
                # from nothing, as in graph time
                if c.graph_delay and self.interval == self.period \
                        and (t - c.dst_offset) % self.period < c.graph_delay:
                    continue
                a_in = a_in + self.pipe[i][0]
            u, v = self.u[p.name], self.v[p.name]
            if t % self.interval == p.offset:
                u, v = np.zeros_like(u), np.zeros_like(v)
            u, v, s, v_pre = cuba_step(u, v, a_in, du=p.du, dv=p.dv, bias=p.bias, vth=p.vth,
                                       reset=p.reset, arith=self.arith)
            self.u[p.name], self.v[p.name] = u, v
            counts.updates[p.name] += p.size * copies
            counts.active[p.name] += neuron_activity(u[m], v_pre[m], None if s is None else s[m])
            if s is not None:
                counts.spikes[p.name] += int(np.count_nonzero(s[m]))
                out[p.name] = s
            rec[p.name] = (s, v)
        for i, c in enumerate(self.conns):
            s_in = out[c.src]
            counts.synops[c.name] += synops(c.fan, s_in[m])
            if self.precision == FIXED_PRECISION:
                a = dense_accumulate(c.weight, s_in, c.exp, c.plan)
            elif self.batch is None or c.plan.conv is not None:  # a convolution sums per copy
                a = _float_dense(c, s_in)
            else:  # per copy, in the order one copy sums (float addition is not associative)
                a = np.stack([_float_dense(c, row) for row in s_in])
            pipe = self.pipe[i]
            pipe.append(a)
            del pipe[0]
        counts.steps += copies
        return rec

    def _run_window(self, x: np.ndarray) -> np.ndarray:
        """Run one decision window on input ``x``: the output over its window ``(T, n)``.

        ``x`` is held and the pipeline drained as the plan's :class:`DecisionWindow` says.
        Call on a window boundary (after :meth:`reset`).
        """
        if self.time_step % self.period:
            raise RuntimeError(f"decide() called mid-window (time_step={self.time_step})")
        win = self.window
        x = np.asarray(x, dtype=self.dtype)
        zero = np.zeros_like(x)
        out = np.zeros((win.T,) + self.shape + (self.plan.population(self.plan.output).size,), self.dtype)
        for k in range(win.period):
            rec = self.step(x if win.holds(k) else zero)
            row = win.output_row(k)
            if row is not None:
                out[row] = self.output_of(rec)
        self.ops.decisions += 1 if self.batch is None else int(np.count_nonzero(
            np.ones(self.batch, bool)[self.active if self.active is not None else slice(None)]))
        return out

    def record(self, inputs: np.ndarray) -> Recording:
        """Stream ``inputs`` from zero state; every population's voltage and spikes per step."""
        x = self._padded(self._check_stream(inputs).astype(self.dtype))
        self.reset()
        recs = [self.step(row) for row in x]
        out = Recording(latency=self._latency())
        for p in self.plan.populations:
            out.v[p.name] = np.stack([r[p.name][1] for r in recs])
            if p.spiking:
                out.spikes[p.name] = np.stack([r[p.name][0] for r in recs])
        return out


def _float_dense(c: _Conn, s_in: np.ndarray) -> np.ndarray:
    """One copy's float Dense output, summed in the order Lava's float models sum (a
    convolution: the plan's one function, which spikeloop's Lava convolution model runs)."""
    if c.plan.conv is not None:
        return c.plan.apply(c.weight, s_in)
    if c.delay:  # Lava's float DelayDense sums rows of weights * input
        return (c.weight * np.asarray(s_in, np.float64)).sum(axis=1)
    if c.src == INPUT:
        return c.weight.dot(np.asarray(s_in, np.float64))
    return c.weight[:, np.asarray(s_in, bool)].sum(axis=1)  # Lava's float Dense: columns of the spikes


def check_batch(batch, windowed: bool, name: str) -> int | None:
    """``batch`` as a positive int (or ``None``); batched copies run closed-loop windows only."""
    if batch is None:
        return None
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ConfigError(f"{name}: batch must be a positive integer, got {batch!r}")
    if not windowed:
        raise ConfigError(f"{name}: batched copies run closed-loop decision windows only (windowed=True)")
    return int(batch)
