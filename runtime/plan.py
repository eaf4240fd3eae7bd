"""The compiled network: what every backend (emulator, Lava float, Lava fixed) runs.

A :class:`NetworkPlan` is the discrete-time network that a NIR graph denotes under
the semantics contract: populations of CUBA-LIF / leaky-integrator neurons and the
dense connections between them, with ``dt``, the decision window ``T``, and the
input encoding and output decoding of the deployed policy.

Timing follows Lava, measured: every Dense hop delays spikes by one timestep. A
population at depth ``k`` (Dense hops from the host input) sees a decision's first
input ``k`` steps after it is injected. For a windowed policy (state reset at every
decision) each population is reset at the step its window starts, which makes the
pipelined Lava network compute exactly what the delay-free torch model computes;
a decision takes ``period = T + depth(output)`` Lava steps.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spikeloop.core.errors import NIRValidationError
from spikeloop.core.coding import Decoding, InputEncoding
from spikeloop.core.neuron import HARD

INPUT = "input"
STREAM_INTERVAL = 1 << 30
"""reset interval of a streaming (open-loop) run: each population resets once, when the
input first reaches it, and never again"""


@dataclass
class Population:
    """Neurons of one NIR neuron node, in the contract's discrete form."""

    name: str
    size: int
    du: np.ndarray
    dv: np.ndarray
    bias: np.ndarray
    vth: float | None
    reset: str = HARD
    kind: str = "LIF"
    """the NIR node type it came from"""
    shape: tuple = ()
    """the node's own shape (e.g. (C, H, W) after a convolution); () means (size,)"""
    bias_source: bool = False
    """a neuron without inputs that fires every step, carrying a constant input current
    (``spikeloop.runtime.compiler.bias_source``); not a node of the graph"""

    def __post_init__(self):
        self.shape = tuple(self.shape) or (self.size,)
        # Per-neuron decays are kept per neuron (every backend runs them exactly); a scalar
        # is broadcast so that the backends see one form.
        self.du = np.broadcast_to(np.asarray(self.du, np.float64).reshape(-1), (self.size,)).copy()
        self.dv = np.broadcast_to(np.asarray(self.dv, np.float64).reshape(-1), (self.size,)).copy()

    @property
    def spiking(self) -> bool:
        return self.vth is not None

    @property
    def uniform_decays(self) -> bool:
        """Whether every neuron has the same ``du`` and the same ``dv`` (one time constant each)."""
        return bool(np.all(self.du == self.du.flat[0]) and np.all(self.dv == self.dv.flat[0]))

    @property
    def lava_lif(self) -> bool:
        """Whether Lava's own LIF model runs it (hard reset, a voltage decay below 1, one
        ``du``/``dv`` for the population: Lava's LIF holds them as scalars); otherwise
        spikeloop's ``CubaNeuron`` does, which takes per-neuron decays."""
        return (self.spiking and self.reset == HARD and self.uniform_decays
                and float(np.max(self.dv)) < 1.0)


@dataclass(frozen=True)
class DecisionWindow:
    """The schedule of one closed-loop decision, written once for every backend.

    A decision takes ``period = T + latency`` steps, numbered ``k = 0 .. period-1``. The
    host input is held for the first ``T`` steps (:meth:`holds`) and is silent while the
    pipeline drains. The output population runs ``latency`` steps behind the input, so its
    own window (reset at its first step) is ``k = latency .. period-1``
    (:attr:`output_steps`): the ``T`` steps whose output the decoding reduces. A backend in
    the graph's own time (no Dense delays) has ``latency = 0``.

    Lava's ``time_step`` starts at 1: step ``k`` of a decision is the Lava step with
    ``(time_step - 1) % period == k`` (:meth:`phase`).
    """

    T: int
    latency: int = 0

    @property
    def period(self) -> int:
        """Steps per decision: the window plus the pipeline latency."""
        return self.T + self.latency

    def holds(self, k: int) -> bool:
        """Whether step ``k`` of a decision carries the host input."""
        return k < self.T

    @property
    def output_steps(self) -> range:
        """The steps of a decision at which the output population runs its window."""
        return range(self.latency, self.period)

    def output_row(self, k: int) -> int | None:
        """Row of the output window that step ``k`` fills, or ``None`` before the window."""
        return k - self.latency if k >= self.latency else None

    def phase(self, time_step: int) -> int:
        """Step of its decision that Lava's ``time_step`` (from 1) is."""
        return (time_step - 1) % self.period

    def to_params(self) -> dict:
        """Plain values for Lava process parameters (which are pickled to the model processes)."""
        return {"T": self.T, "latency": self.latency}


@dataclass
class Connection:
    """Dense synapses ``weight`` (dst.size, src size) from ``src`` into ``dst``.

    ``graph_delay``: timesteps between the source's output and its arrival in the graph's
    own time (1 for a recurrent edge, plus any Delay node). ``delay``: the extra Lava
    steps beyond Dense's own one, set by the plan so that arrivals match graph time.
    """

    name: str
    src: str
    dst: str
    weight: np.ndarray
    graph_delay: int = 0
    delay: int = 0

    @property
    def graded(self) -> bool:
        """True where the source is the host input (graded spikes), not binary spikes."""
        return self.src == INPUT


@dataclass
class NetworkPlan:
    input_size: int
    populations: list[Population]
    connections: list[Connection]
    output: str
    dt_s: float
    T: int
    encoding: InputEncoding | None = None
    decoding: Decoding = field(default_factory=Decoding)
    input_shape: tuple = ()

    def __post_init__(self):
        self.input_shape = tuple(self.input_shape) or (self.input_size,)
        names = [p.name for p in self.populations]
        if len(set(names)) != len(names) or INPUT in names:
            raise NIRValidationError(f"population names must be unique and not '{INPUT}': {names}")
        if self.output not in names:
            raise NIRValidationError(f"output population {self.output!r} is not among {names}")
        sizes = {p.name: p.size for p in self.populations} | {INPUT: self.input_size}
        for c in self.connections:
            if c.src not in sizes or c.dst not in sizes or c.dst == INPUT:
                raise NIRValidationError(f"connection {c.name!r}: unknown endpoint {c.src!r} -> {c.dst!r}")
            if c.weight.shape != (sizes[c.dst], sizes[c.src]):
                raise NIRValidationError(
                    f"connection {c.name!r}: weight shape {c.weight.shape} does not match "
                    f"{c.src!r} ({sizes[c.src]}) -> {c.dst!r} ({sizes[c.dst]})")
        self._depth = self._solve_depths()
        for c in self.connections:
            c.delay = c.graph_delay + self._depth[c.dst] - self._depth[c.src] - 1

    def population(self, name: str) -> Population:
        for p in self.populations:
            if p.name == name:
                return p
        raise KeyError(name)

    def incoming(self, name: str) -> list[Connection]:
        return [c for c in self.connections if c.dst == name]

    def outgoing(self, name: str) -> list[Connection]:
        return [c for c in self.connections if c.src == name]

    def depths(self) -> dict[str, int]:
        """Lava steps by which each population runs behind the input (its Dense-hop depth)."""
        return dict(self._depth)

    def _solve_depths(self) -> dict[str, int]:
        """Smallest depths with ``depth[dst] >= depth[src] + 1 - graph_delay``, all >= 1 but a
        bias source (>= 0).

        A connection then needs ``graph_delay + depth[dst] - depth[src] - 1 >= 0`` extra
        steps. No solution means a recurrent loop that Lava's per-hop delay makes too slow.
        """
        sources = [p.name for p in self.populations if p.bias_source]
        depth = {INPUT: 0} | {p.name: 1 for p in self.populations} | {k: 0 for k in sources}
        for _ in range(len(self.populations) + 1):
            changed = False
            for c in self.connections:
                need = depth[c.src] + 1 - c.graph_delay
                if depth[c.dst] < need:
                    depth[c.dst], changed = need, True
            if not changed:
                # a bias source (fed by nothing) runs one hop ahead of its first target, so
                # that its spikes need no delay there
                for k in sources:
                    depth[k] = max(0, min((depth[c.dst] - 1 + c.graph_delay for c in self.outgoing(k)),
                                          default=0))
                return depth
        loop = [c.name for c in self.connections if depth[c.dst] < depth[c.src] + 1 - c.graph_delay]
        raise NIRValidationError(
            f"the recurrent loop through {', '.join(loop or [c.name for c in self.connections if c.graph_delay])} "
            "cannot run exactly on Lava: every Dense hop adds a timestep, so the loop takes more steps "
            "than its recurrence allows. Loops through one population (a population feeding itself) are exact")

    @property
    def stateful_connections(self) -> list[Connection]:
        """Connections that carry activity across timesteps (recurrent or delayed)."""
        return [c for c in self.connections if c.graph_delay > 0 or c.delay > 0]

    @property
    def latency(self) -> int:
        """Lava steps from injecting an input to the output population seeing it."""
        return self.depths()[self.output]

    @property
    def window(self) -> DecisionWindow:
        """The decision window on Lava's timing (input held ``T`` steps, then the drain)."""
        return DecisionWindow(self.T, self.latency)

    @property
    def period(self) -> int:
        """Lava steps per decision: the window plus the pipeline latency."""
        return self.window.period

    def reset_offsets(self, interval: int | None = None) -> dict[str, int]:
        """Lava ``time_step % interval`` at which each population starts its window.

        Lava's ``time_step`` starts at 1; the host input is injected at steps where
        ``time_step % interval == 1``; a population at depth ``k`` sees it ``k`` steps
        later. ``interval`` defaults to the decision period; a streaming run uses
        :data:`STREAM_INTERVAL` so that each population resets once, as its input
        arrives (before that it would integrate its bias alone).
        """
        P = interval or self.period
        return {name: (1 + k) % P for name, k in self.depths().items() if name != INPUT}

    def read_offset(self) -> int:
        """``time_step % period`` at which the output holds the decision (its step T-1)."""
        return (self.window.output_steps[-1] + 1) % self.period

    @property
    def input_graded(self) -> bool:
        """Graded (real-valued payload) host input, or binary spikes (a peer graph's default)."""
        return self.encoding is not None

    def is_graded(self, conn: Connection) -> bool:
        """Whether a connection carries graded events (priced as MACs) or binary spikes (ACs)."""
        return conn.src == INPUT and self.input_graded

    @property
    def neuron_count(self) -> int:
        return sum(p.size for p in self.populations)
