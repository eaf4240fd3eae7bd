"""A compiled plan on a Xylo SNN core: the register mapping and the closed-loop backends.

:func:`map_plan` places a :class:`~spikeloop.runtime.plan.NetworkPlan` on one Xylo core
(:class:`~spikeloop.runtime.xylo.XyloRegisters`): the first hidden layer takes the input
weights, every further hidden layer is a block of the recurrent weights, the output
population is the readout. The NIR file holds the float semantics of Xylo's neuron
(``spikeloop.train.xylo``): ``du = 2**-dash_syn``, ``dv = 2**-dash_mem``, and each weight
scaled by ``1 - 2**-dash_syn`` of its target (Xylo adds the input before the current
decays). The mapper inverts that; a policy trained for Xylo maps onto integers exactly.

Timing: Xylo's input reaches the first hidden neurons in the step it arrives, every hop
after that takes one step. A decision resets the core, holds the input for ``T + depth``
steps and reads the readout over its last ``T`` steps; with zero biases behind the first
layer this equals the delay-free torch model step for step.

Backends: ``xylo-emulator`` (spikeloop's numpy emulator, bit-exact with the vendor's
simulator) and ``xylosim`` (SynSense's simulator, imported only when that backend starts:
it declares no licence and stays an optional extra, never a dependency).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spikeloop.core.coding import SpikeEncoding
from spikeloop.core.errors import ConfigError
from spikeloop.core.neuron import SOFT
from spikeloop.runtime.backends import PlanBackend
from spikeloop.runtime.counters import OpCounts
from spikeloop.runtime.plan import INPUT, DecisionWindow, NetworkPlan
from spikeloop.runtime.xylo import (DASH_MAX, MAX_INPUT_EVENTS, STATE_MAX, WEIGHT_BITS,
                                    XyloEmulator, XyloRegisters)

ARITHMETIC = "xylo"
"""the ``arithmetic`` a Xylo-trained policy states in its metadata"""
WEIGHT_MAX = (1 << (WEIGHT_BITS - 1)) - 1


def dash_of(name: str, what: str, decay: np.ndarray) -> np.ndarray:
    """The 4-bit shifts of decays ``2**-dash`` (one error naming the population otherwise)."""
    d = np.asarray(decay, np.float64)
    with np.errstate(divide="ignore"):
        dash = -np.log2(d)
    ok = np.isfinite(dash) & (np.abs(dash - np.rint(dash)) < 1e-12) & (np.rint(dash) >= 1) & (np.rint(dash) <= DASH_MAX)
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise ConfigError(f"population {name!r}: {what} = {d[i]:g} (neuron {i}) is not a Xylo bit-shift decay; "
                          f"Xylo decays by 2**-dash with dash in 1..{DASH_MAX} (0.5 ... {2.0 ** -DASH_MAX:g}). "
                          "Train with --target xylo")
    return np.rint(dash).astype(np.int64)


@dataclass
class XyloMapping:
    """Where a plan's populations sit on the core, and how to read the readout back."""

    registers: XyloRegisters
    hidden: dict[str, slice]
    """hidden population -> its neurons in the hidden pool"""
    readout: str
    depth: dict[str, int]
    """steps after the input at which each population sees a decision's first input"""
    scale: dict[str, float]
    """register units per real unit of each population's state (1 for a Xylo-trained policy)"""
    spiking_readout: bool
    T: int
    """the decision window of the policy"""

    @property
    def window(self) -> DecisionWindow:
        """Input held ``T + depth`` steps; the readout's window is the last ``T``."""
        return DecisionWindow(self.T, self.depth[self.readout])


def _integer_scale(w: np.ndarray, vth: float | None) -> float:
    """1 when the weights (and threshold) already are Xylo integers, else the scale that puts the
    largest weight on the 8-bit grid's end."""
    vals = [w.reshape(-1)] + ([np.array([vth])] if vth is not None else [])
    v = np.concatenate(vals)
    if np.all(np.abs(v - np.rint(v)) < 1e-6) and np.abs(w).max(initial=0) <= WEIGHT_MAX:
        return 1.0
    peak = float(np.abs(w).max(initial=0.0))
    return WEIGHT_MAX / peak if peak > 0 else 1.0


def map_plan(plan: NetworkPlan) -> XyloMapping:
    """The Xylo registers of ``plan``, or one :class:`ConfigError` naming what does not map."""
    enc = plan.encoding
    if not isinstance(enc, SpikeEncoding) or enc.max_events > MAX_INPUT_EVENTS:
        got = "none" if enc is None else enc.describe()
        raise ConfigError(f"Xylo takes event counts of 0..{MAX_INPUT_EVENTS} per input channel and step; the policy's "
                          f"input encoding is {got}. Train with --target xylo (a spike encoder in front)")
    convs = [c.name for c in plan.connections if c.conv is not None]
    if convs:
        raise ConfigError(f"connections {convs} are convolutions; a Xylo core holds dense weights only")
    delayed = [c.name for c in plan.connections if c.graph_delay > 0]
    if delayed:
        raise ConfigError(f"connections {delayed} are recurrent or delayed; spikeloop maps feed-forward networks "
                          "onto Xylo")
    out = plan.population(plan.output)
    hidden_pops = [p for p in plan.populations if p.name != out.name]
    if not hidden_pops:
        raise ConfigError("a Xylo network needs at least one hidden population before the readout")
    for p in plan.populations:
        if p.bias_source:
            raise ConfigError(f"population {p.name!r} is a bias source; Xylo has no constant input neuron")
        if p.spiking and p.reset != SOFT:
            raise ConfigError(f"population {p.name!r} resets to zero ({p.reset}); Xylo's neurons subtract the "
                              "threshold (soft reset)")
        if p is not out and not p.spiking:
            raise ConfigError(f"population {p.name!r} is a non-spiking {p.kind}; Xylo's hidden neurons spike")
    # depths: input -> first layer in the same step, each further hop one step
    depth: dict[str, int] = {}
    for _ in range(len(plan.populations) + 1):
        for c in plan.connections:
            d = 0 if c.src == INPUT else (depth.get(c.src, -10**6) + 1)
            if c.src == INPUT and c.dst == out.name:
                raise ConfigError(f"connection {c.name!r} feeds the input straight into the readout; Xylo's "
                                  "readout neurons take hidden spikes only")
            depth[c.dst] = max(depth.get(c.dst, -10**6), d)
    for c in plan.connections:
        d_src = -1 if c.src == INPUT else depth[c.src]
        if depth[c.dst] != d_src + 1:
            raise ConfigError(f"connection {c.name!r} skips a layer ({c.src!r} -> {c.dst!r}); Xylo delays each "
                              "hop by one step, so every path to a population must have the same length")
    n_in = plan.input_size
    sizes = [p.size for p in hidden_pops]
    offsets = np.cumsum([0] + sizes)
    hidden = {p.name: slice(int(offsets[i]), int(offsets[i + 1])) for i, p in enumerate(hidden_pops)}
    n_hid, n_out = int(offsets[-1]), out.size
    w_in = np.zeros((n_in, n_hid), np.int64)
    w_rec = np.zeros((n_hid, n_hid), np.int64)
    w_out = np.zeros((n_hid, n_out), np.int64)
    regs: dict[str, np.ndarray] = {}
    scale: dict[str, float] = {}
    for p in plan.populations:
        dash_syn, dash_mem = dash_of(p.name, "du", p.du), dash_of(p.name, "dv", p.dv)
        gain = 1.0 - 2.0 ** -dash_syn.astype(np.float64)
        incoming = plan.incoming(p.name)
        w_full = [c.weight / gain[:, None] for c in incoming]
        s = _integer_scale(np.concatenate([w.reshape(-1) for w in w_full]) if w_full else np.zeros(0), p.vth)
        scale[p.name] = s
        for c, w in zip(incoming, w_full):
            w_int = np.rint(w * s).astype(np.int64)
            if np.abs(w_int).max(initial=0) > WEIGHT_MAX + 1 or w_int.min(initial=0) < -(WEIGHT_MAX + 1):
                raise ConfigError(f"connection {c.name!r}: weights beyond Xylo's 8 bits after scaling")
            w_int = np.clip(w_int, -(WEIGHT_MAX + 1), WEIGHT_MAX)
            dst = hidden.get(p.name)
            if c.src == INPUT:
                w_in[:, dst] = w_int.T
            elif p is out:
                w_out[hidden[c.src], :] = w_int.T
            else:
                w_rec[hidden[c.src], dst] = w_int.T
        bias = np.rint(np.broadcast_to(p.bias, (p.size,)) * s).astype(np.int64)
        if depth[p.name] > 0 and np.any(bias != 0):
            raise ConfigError(f"population {p.name!r} has a bias and sits {depth[p.name]} step(s) behind the input; "
                              "Xylo resets the whole core at a decision, so it would integrate its bias before its "
                              "input arrives. Only the first layer may carry a bias")
        vth = np.full(p.size, STATE_MAX if p.vth is None else max(1, int(np.rint(p.vth * s))), np.int64)
        if p.vth is not None and p.vth * s > STATE_MAX:
            raise ConfigError(f"population {p.name!r}: threshold {p.vth:g} is {p.vth * s:.0f} register units, above "
                              f"Xylo's 16-bit {STATE_MAX}")
        regs[p.name] = dict(dash_syn=dash_syn, dash_mem=dash_mem, vth=vth, bias=bias)
    cat = {k: np.concatenate([regs[p.name][k] for p in hidden_pops]) for k in ("dash_syn", "dash_mem", "vth", "bias")}
    registers = XyloRegisters(w_in=w_in, w_rec=w_rec, w_out=w_out, **cat,
                              **{f"{k}_out": regs[out.name][k] for k in ("dash_syn", "dash_mem", "vth", "bias")})
    return XyloMapping(registers, hidden, out.name, depth, scale, plan.decoding.spiking_output, plan.T)


class XyloBackend(PlanBackend):
    """A closed-loop backend on a Xylo core (the :class:`~spikeloop.core.backend.Backend` protocol;
    the lifecycle of every plan backend: ``start``/``close``/``with``).

    Each decision resets the core, holds the observation's event counts for the window and
    decodes the readout (voltages or spikes) over its last ``T`` steps. :meth:`counts` gives
    the spikes and synaptic events of every population and connection; :meth:`activity` the
    event probabilities the cycle model prices.
    """

    name = "xylo"
    precision = "xylo"

    def __init__(self, plan: NetworkPlan):
        # not PlanBackend's constructor: Xylo has its own arithmetic (no Loihi registers, no host codec)
        self.plan, self.windowed, self.memory, self.codec = plan, True, "window", None
        self.placement = map_plan(plan)
        self.stream = plan.encoding.stream()
        self.last_output: np.ndarray | None = None
        self._running = False
        self._with_started: list[bool] = []
        self.reset()

    @property
    def window(self) -> DecisionWindow:
        """Xylo's decision window (one step per hop after the first), not Lava's."""
        return self.placement.window

    def reset(self) -> None:
        """Zero the counters (the core itself is reset at every decision)."""
        self._steps = self._decisions = 0
        self.input_events = 0
        """input events delivered since :meth:`reset` (what the encoder sent, clipped to 15 a step)"""
        self._nz = {"input": 0, "hidden": 0, "output": 0}
        self._spikes = {p.name: 0 for p in self.plan.populations}
        self._synops = {c.name: 0 for c in self.plan.connections}

    def begin_episode(self) -> None:
        """A new episode: a stateful encoder (the delta code) starts from nothing sent."""
        self.stream.reset()

    def encode(self, obs: np.ndarray) -> np.ndarray:
        """Observation -> the input event counts of one step (through the episode's encoder)."""
        return self.stream.payload(np.asarray(obs)).reshape(-1)

    def decide(self, obs: np.ndarray) -> np.ndarray:
        """One decision: observation in, the decoded per-action values (real units) out."""
        events = self.encode(obs)
        window = self.window
        ins, hid, outs, vout = self._run(events, window.period)
        m = self.placement
        rows = slice(window.latency, window.period)
        raw = outs[rows] if m.spiking_readout else vout[rows]
        self.last_output = raw
        self._count(ins, hid, outs)
        scale = 1.0 if m.spiking_readout else m.scale[m.readout]
        return self.plan.decoding.reduce(np.asarray(raw, np.float64) / scale)

    def _run(self, events: np.ndarray, steps: int):
        """From a reset core, ``steps`` steps of ``events``: input, hidden and output spikes and the
        readout voltages, each ``(steps, n)``."""
        raise NotImplementedError

    def _count(self, ins, hid, outs) -> None:
        m, r = self.placement, self.placement.registers
        self._steps += len(ins)
        self._decisions += 1
        ins = np.minimum(ins, MAX_INPUT_EVENTS)
        self._nz["input"] += int(np.count_nonzero(ins))
        self.input_events += int(ins.sum())
        self._nz["hidden"] += int(np.count_nonzero(hid))
        self._nz["output"] += int(np.count_nonzero(outs))
        for name, sl in m.hidden.items():
            self._spikes[name] += int(hid[:, sl].sum())
        self._spikes[m.readout] += int(outs.sum())
        # every event is delivered to every non-zero weight of its row, one by one
        for c in self.plan.connections:
            src = ins if c.src == INPUT else hid[:, m.hidden[c.src]]
            dst = m.hidden.get(c.dst)
            if c.src == INPUT:
                w = r.w_in[:, dst]
            elif c.dst == m.readout:
                w = r.w_out[m.hidden[c.src], :]
            else:
                w = r.w_rec[m.hidden[c.src], dst]
            self._synops[c.name] += int(src.sum(axis=0) @ np.count_nonzero(w, axis=1))

    def counts(self) -> OpCounts:
        """Spikes and synaptic events since :meth:`reset` (every multi-spike event counted)."""
        return OpCounts(steps=self._steps, decisions=self._decisions, synops=dict(self._synops),
                        graded={c.name: False for c in self.plan.connections}, updates={}, active={},
                        spikes=dict(self._spikes))

    def activity(self) -> dict[str, float]:
        """Event probabilities since :meth:`reset` (share of channel-steps with an event)."""
        n_in, n_hid, n_out = self.placement.registers.sizes
        s = max(self._steps, 1)
        return {"input": self._nz["input"] / (s * n_in), "hidden": self._nz["hidden"] / (s * n_hid),
                "output": self._nz["output"] / (s * n_out)}


class XyloEmulatorBackend(XyloBackend):
    """Decisions on spikeloop's numpy Xylo emulator."""

    name = "xylo-emulator"

    def _run(self, events, steps):
        emu = XyloEmulator(self.placement.registers, record=True)
        for _ in range(steps):
            emu.step(events)
        rec = emu.record
        return (np.array(rec["events"]), np.array(rec["spikes"]), np.array(rec["spikes_out"]),
                np.array(rec["v_mem_out"]))


class XylosimBackend(XyloBackend):
    """Decisions on SynSense's own ``xylosim`` (an optional extra: it declares no licence, so it is
    imported here only, when this backend starts)."""

    name = "xylosim"

    def _open(self) -> None:
        try:
            from xylosim.v2 import XyloLayer, XyloSynapse
        except ImportError as e:
            raise ConfigError(f"backend xylosim needs SynSense's xylosim (pip install --no-deps xylosim==0.1.3; "
                              f"`make setup` builds it): {e}") from None
        r = self.placement.registers

        def synapses(w):
            return [[XyloSynapse(int(post), 0, int(w[pre, post])) for post in np.flatnonzero(w[pre])]
                    for pre in range(w.shape[0])]
        # the layer keeps raw pointers to its synapse objects: they must outlive it
        self._held = [synapses(r.w_in), synapses(r.w_rec), synapses(r.w_out)]
        self._layer = XyloLayer(*self._held, [[] for _ in range(r.sizes[1])], r.vth.tolist(), r.vth_out.tolist(),
                                True, r.bias.tolist(), r.bias_out.tolist(), r.shift_in, r.shift_rec, r.shift_out,
                                r.dash_mem.tolist(), r.dash_mem_out.tolist(), [[int(d)] for d in r.dash_syn],
                                [[int(d)] for d in r.dash_syn_out], "spikeloop")

    def _shut(self, exc_type) -> None:
        self._layer = None
        self._held = None

    def _run(self, events, steps):
        if not self._running:
            raise ConfigError("backend xylosim: start() it (or use it in a with block) before deciding")
        sim = self._layer
        sim.reset_all()
        clipped = np.minimum(events, MAX_INPUT_EVENTS)
        out = np.array(sim.evolve([clipped.astype(np.int64).tolist()] * steps), np.int64).reshape(steps, -1)
        hid = np.array(sim.rec_recurrent_spikes, np.int64).reshape(steps, -1)
        vout = np.array(sim.rec_v_mem_out, np.int64).T.reshape(steps, -1)
        return np.tile(clipped, (steps, 1)), hid, out, vout


XYLO_BACKENDS = {"emulator": XyloEmulatorBackend, "xylosim": XylosimBackend}
"""``spikeloop run --target xylo --backend ...``"""


def make_xylo_backend(name: str, plan: NetworkPlan) -> XyloBackend:
    """Build (not start) the Xylo backend ``name`` for ``plan``."""
    if name not in XYLO_BACKENDS:
        raise ConfigError(f"unknown Xylo backend {name!r}; the Xylo backends are {', '.join(XYLO_BACKENDS)}")
    return XYLO_BACKENDS[name](plan)
