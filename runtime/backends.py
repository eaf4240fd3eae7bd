"""The backends that run a compiled plan, their shared host codec, and the registry of names.

Every executor of a :class:`~spikeloop.runtime.plan.NetworkPlan` (the emulator, the
plan-level reference, Lava per-node, Lava fused) is a :class:`PlanBackend`: it
implements :class:`spikeloop.core.backend.Backend`, runs the plan's one
:class:`~spikeloop.runtime.plan.DecisionWindow`, and decodes the output over that window
with the plan's own :class:`~spikeloop.core.coding.Decoding` through one
:class:`HostCodec`. The CLI, the pipeline and ``simulate`` find them by name in
:data:`BACKENDS`; nothing branches on a backend's name.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import numpy as np

from spikeloop.core.coding import ATOMS
from spikeloop.core.errors import ConfigError
from spikeloop.runtime.counters import OpCounts
from spikeloop.runtime.fixed_point import FixedPlan, quantize_plan
from spikeloop.runtime.plan import DecisionWindow, NetworkPlan

FLOAT_PRECISION, FIXED_PRECISION = "float", "fixed"
PRECISIONS = (FLOAT_PRECISION, FIXED_PRECISION)

BACKENDS: dict[str, str] = {
    "emulator": "spikeloop.runtime.emulator:Emulator",
    "reference": "spikeloop.runtime.reference:Reference",
    "lava-fused": "spikeloop.runtime.lava_runtime:LavaFused",
    "lava-per-node": "spikeloop.runtime.lava_runtime:LavaPerNode",
}
"""name -> ``module:class``; resolved on use, so that naming a backend does not import Lava"""

ALIASES: dict[str, str] = {"lava": "lava-per-node", "torch": "reference"}
"""the open-loop names of ``spikeloop simulate`` before the registry (``torch`` was the
plan-level torch reference, ``lava`` the per-node mapping)"""

LAVA_MAPPINGS: dict[str, str] = {"fused": "lava-fused", "per-node": "lava-per-node"}
"""``--mapping`` of ``spikeloop run`` -> backend name"""


def backend_names(aliases: bool = False) -> tuple[str, ...]:
    """The registered backend names (and, with ``aliases``, the old open-loop names)."""
    return tuple(BACKENDS) + (tuple(ALIASES) if aliases else ())


def backend_class(name: str) -> type["PlanBackend"]:
    """The class registered under ``name`` (or an alias); :class:`ConfigError` for an unknown one."""
    key = ALIASES.get(name, name) if isinstance(name, str) else name
    if not isinstance(key, str) or key not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r}; the backends are {', '.join(BACKENDS)}"
                          f" (aliases: {', '.join(f'{a} = {b}' for a, b in ALIASES.items())})")
    module, cls = BACKENDS[key].split(":")
    return getattr(importlib.import_module(module), cls)


def open_loop_names() -> tuple[str, ...]:
    """The registered backends that record open-loop runs (``simulate``), by their declaration."""
    return tuple(n for n in BACKENDS if n not in CLOSED_LOOP_ONLY)


CLOSED_LOOP_ONLY = ("lava-fused",)
"""backends that run decisions only (no open-loop recording)"""


def check_open_loop_backend(name: str) -> str:
    """``name`` if it is a backend (or alias) that records open-loop runs; one error otherwise."""
    if not isinstance(name, str) or ALIASES.get(name, name) not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r}; the backends are {', '.join(BACKENDS)}"
                          f" (aliases: {', '.join(f'{a} = {b}' for a, b in ALIASES.items())})")
    if ALIASES.get(name, name) in CLOSED_LOOP_ONLY:
        raise ConfigError(f"backend {name!r} runs closed loop only (decisions, `spikeloop run`); open-loop "
                          f"simulation takes one of {', '.join(open_loop_names())}")
    return name


def make_backend(name: str, plan: NetworkPlan, precision: str, fixed: FixedPlan | None = None,
                 **options) -> "PlanBackend":
    """Build (not start) the backend ``name`` for ``plan`` in ``precision`` ('float' or 'fixed').

    ``fixed`` is the plan's fixed-point registers (quantized if omitted); ``options`` go to
    the backend's constructor (``windowed=False`` for an open-loop run).
    """
    return backend_class(name)(plan, precision, fixed, **options)


class HostCodec:
    """What the host sends into a plan backend and how it reads the output back.

    ``encode``: an observation -> the input the network takes (real values in float,
    the integer graded payload in fixed point). ``decode``: the raw output over the
    decision window (``(T, n)`` voltage registers or spikes) -> the per-action values,
    in real units, by the plan's decoding.
    """

    def __init__(self, plan: NetworkPlan, precision: str, fixed: FixedPlan | None):
        if plan.encoding is None:
            raise ConfigError("the policy graph has no input encoding in its metadata; closed-loop runs "
                              "need one (--encoding fit or --obs-mean/--obs-std, or `spikeloop annotate`)")
        dec, out = plan.decoding, plan.population(plan.output)
        if dec.spiking_output != out.spiking:
            raise ConfigError(
                f"decoding {dec.kind!r} needs a {'spiking' if dec.spiking_output else 'non-spiking'} output "
                f"population, but {out.name!r} is {'spiking' if out.spiking else 'a non-spiking readout'}; "
                "state the decoding with --decoding")
        if dec.kind == ATOMS and out.size % len(dec.atoms):
            raise ConfigError(f"decoding 'atoms': the readout {out.name!r} has {out.size} neurons, not a "
                              f"multiple of its {len(dec.atoms)} atoms")
        self.plan, self.precision, self.fixed = plan, precision, fixed
        # Voltages are held as x * scale in fixed point; spikes are spikes in every precision.
        fixed_voltage = precision == FIXED_PRECISION and not dec.spiking_output
        self.scale = fixed.populations[out.name].scale if fixed_voltage else 1.0
        self.spiking_output = dec.spiking_output
        self.stream = plan.encoding.stream()

    def begin_episode(self) -> None:
        """A new episode: a stateful encoder (the delta code) starts from nothing sent."""
        self.stream.reset()

    def encode(self, obs: np.ndarray) -> np.ndarray:
        """Observation -> what the host injects (the payload integers in fixed point)."""
        s = self.stream
        return s.payload(obs) if self.precision == FIXED_PRECISION else s.encode(obs)

    def real(self, raw: np.ndarray) -> np.ndarray:
        """Output registers -> real units (float64)."""
        return np.asarray(raw, np.float64) / self.scale

    def decode(self, window: np.ndarray) -> np.ndarray:
        """The raw output over a decision window ``(T, n)`` -> per-action values (real units)."""
        return self.plan.decoding.reduce(self.real(window))


@dataclass
class Recording:
    """Every population of an open-loop run, step by step, in the backend's own time."""

    v: dict[str, np.ndarray] = field(default_factory=dict)
    """per population: (steps, neurons) voltage after reset (registers in fixed point)"""
    spikes: dict[str, np.ndarray] = field(default_factory=dict)
    """per spiking population: (steps, neurons)"""
    latency: dict[str, int] = field(default_factory=dict)
    """steps by which each population runs behind the input (0 in the graph's own time)"""


MAX_DECAY = 2.0
"""the largest per-step decay ``dt/tau`` whose forward-Euler update does not diverge: ``|1 - d| <= 1``"""


def check_stable(plan: NetworkPlan) -> None:
    """Refuse a plan whose state would grow without bound (a time constant below ``dt/2``).

    The compiler accepts such a graph (the peer importer warns that ``dt`` may be wrong, and
    ``inspect`` shows it); running it would only produce infinities, on every backend.
    """
    from spikeloop.core.neuron import first_offender

    for p in plan.populations:
        for what, d in (("du", p.du), ("dv", p.dv)):
            d = np.asarray(d, dtype=np.float64)
            if np.any(d > MAX_DECAY):
                raise ConfigError(
                    f"population {p.name!r}: decay {what} = dt/tau = {first_offender(d, d <= MAX_DECAY)} at "
                    f"dt = {plan.dt_s:g} s makes forward Euler diverge (|1 - {what}| > 1: the state grows "
                    "without bound). Pass the dt the model was trained with (--dt) or check the exporter's "
                    "time units")


WINDOW, STREAM = "window", "stream"
MEMORIES = (WINDOW, STREAM)


class PlanBackend:
    """What every plan backend shares: precision, registers, window, codec, lifecycle.

    ``windowed`` (closed loop) resets each population at the start of its decision
    window; without it the network streams (open-loop :meth:`record`), each population
    reset once as the input first reaches it.

    Lifecycle: :meth:`start` acquires what the backend runs on, :meth:`close` releases
    it. A ``with`` block closes only what it started, so a backend that is already
    started can be handed to code that uses ``with`` (the closed-loop runner) and stays
    started for its owner.
    """

    name = "plan"
    timed_like_lava = True
    """whether the backend runs Lava's timing (one step per Dense hop) or the graph's own"""

    clears_in_flight = False
    """whether the backend clears the spikes a recurrent or delayed connection still carries
    from the previous decision (what a windowed recurrent policy needs)"""

    def __init__(self, plan: NetworkPlan, precision: str = FIXED_PRECISION, fixed: FixedPlan | None = None,
                 windowed: bool = True, memory: str = WINDOW):
        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if memory not in MEMORIES:
            raise ConfigError(f"memory must be one of {MEMORIES}, got {memory!r}")
        recurrent = [c.name for c in plan.connections if c.graph_delay > 0]
        if windowed and memory == WINDOW and recurrent and not self.clears_in_flight:
            raise ConfigError(
                f"connections {recurrent} carry activity across timesteps (recurrent or delayed); {self.name} "
                "cannot clear what they carry between decision windows (Lava's own Dense keeps it). Run "
                "them windowed on the emulator or lava-fused, or with the state carried across decisions "
                "(--memory stream)")
        check_stable(plan)
        self.memory = memory
        """'window': every decision from zero state, nothing carried over; 'stream': the state
        (and what recurrent connections carry) runs on across decisions, with the input silent
        during the pipeline's drain between them"""
        self.plan, self.precision, self.windowed = plan, precision, windowed
        self.fixed = fixed if fixed is not None or precision == FLOAT_PRECISION else quantize_plan(plan)
        # Closed loop needs the encoding and a decoding that fits the output; refuse before
        # anything is started. Open-loop runs take inputs as given and decode nothing.
        self.codec = HostCodec(plan, precision, self.fixed) if windowed else None
        self.last_output: np.ndarray | None = None
        """the raw output (registers over the window, ``(T, n)``) of the last decision"""
        self._running = False
        self._with_started: list[bool] = []

    # ------------------------------------------------------------------ schedule
    @property
    def window(self) -> DecisionWindow:
        """The decision window this backend runs (Lava timing unless overridden)."""
        return self.plan.window

    def output_of(self, rec: dict, name: str | None = None) -> np.ndarray:
        """What the decoding reads from a step record ``{pop: (spikes, v)}``: spikes or voltage."""
        s, v = rec[name or self.plan.output]
        return s if self.plan.decoding.spiking_output else v

    # ------------------------------------------------------------------ lifecycle
    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> "PlanBackend":
        """Acquire what the backend runs on; a no-op if it is running. Returns ``self``."""
        if not self._running:
            self._open()
            self._running = True
        return self

    def close(self) -> None:
        """Release everything :meth:`start` acquired; safe to call twice."""
        if self._running:
            self._running = False
            self._shut(None)

    def __enter__(self) -> "PlanBackend":
        self._with_started.append(not self._running)
        try:
            return self.start()
        except BaseException:
            self._with_started.pop()  # no __exit__ follows a failed __enter__
            raise

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._with_started.pop() and self._running:
            self._running = False
            self._shut(exc_type)

    def _open(self) -> None:
        """Acquire resources (processes, memory); nothing for an in-process backend."""

    def _shut(self, exc_type) -> None:
        """Release resources; ``exc_type`` is the exception leaving a ``with`` block, if any."""

    # ------------------------------------------------------------------ decisions
    def reset(self) -> None:
        """Zero the network state and the counters."""

    def begin_episode(self) -> None:
        """A new episode: the host encoder forgets what it carried (the counters run on)."""
        if self.codec is not None:
            self.codec.begin_episode()

    def decide(self, obs: np.ndarray) -> np.ndarray:
        """One decision: observation in, the decoded per-action values out (real units)."""
        codec = self._codec()
        return codec.decode(self.decide_raw(codec.encode(obs)))

    def decide_raw(self, x: np.ndarray) -> np.ndarray:
        """One decision on host input ``x`` (payload in fixed point): the raw output window ``(T, n)``."""
        self._codec()
        self.last_output = np.asarray(self._run_window(x))
        return self.last_output

    def _codec(self) -> HostCodec:
        if self.codec is None:
            raise ConfigError(f"{self.name}: built for an open-loop run (windowed=False); "
                              "decisions need a windowed backend")
        return self.codec

    def _run_window(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def counts(self) -> OpCounts | None:
        """Operations performed since :meth:`reset`, or ``None`` where not counted."""
        return None

    # ------------------------------------------------------------------ open loop
    def record(self, inputs: np.ndarray) -> Recording:
        """Run ``inputs`` (one row per step; payloads in fixed point) open loop from zero state.

        The run streams (the backend must be built with ``windowed=False``) and continues
        past the last row, with silent input, until every population has answered it.
        """
        raise ConfigError(f"backend {self.name!r} does not record open-loop runs")

    def _check_stream(self, inputs) -> np.ndarray:
        if self.windowed:
            raise ConfigError(f"{self.name}: an open-loop recording needs a streaming backend "
                              "(windowed=False)")
        return np.asarray(inputs)

    def _padded(self, x: np.ndarray) -> np.ndarray:
        """``x`` followed by silent steps until the deepest population has seen its last row."""
        depth = max(d for k, d in self.plan.depths().items()) if self.timed_like_lava else 0
        return np.concatenate([x, np.zeros((depth, x.shape[1]), x.dtype)])

    def _latency(self) -> dict[str, int]:
        depths = self.plan.depths()
        return {p.name: depths[p.name] if self.timed_like_lava else 0 for p in self.plan.populations}
