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


MAX_UNROLLED = 50_000_000
"""the most entries of a dense matrix that a convolution (or a map composed with one) is
unrolled into where nothing else expresses it"""


def _pair(x) -> tuple[int, int]:
    a = np.asarray(x).reshape(-1)
    return (int(a[0]), int(a[0])) if a.size == 1 else (int(a[0]), int(a[1]))


@dataclass(frozen=True)
class ConvGeometry:
    """Where a convolution kernel ``(C_out, C_in / groups, kh, kw)`` slides: the layout of
    its input ``in_shape`` and output ``out_shape`` (both ``(C, H, W)``, flattened in C
    order into the populations), stride, padding, dilation and groups.

    The kernel is what a convolutional chip stores, and what every backend applies: one
    function, :meth:`apply`, in float64 (integer sums below 2**53 are exact there, so the
    fixed-point backends use it too). :meth:`matrix` unrolls it only on request.
    """

    in_shape: tuple
    out_shape: tuple
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    dilation: tuple = (1, 1)
    groups: int = 1

    @classmethod
    def of(cls, kernel_shape, in_shape, stride=1, padding=0, dilation=1, groups=1) -> "ConvGeometry":
        """The geometry of a kernel of ``kernel_shape`` on ``in_shape``; the output shape follows."""
        c, h, w = (int(n) for n in in_shape)
        co, ci, kh, kw = (int(n) for n in kernel_shape)
        (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
        if ci * int(groups) != c or co % int(groups):
            raise NIRValidationError(f"kernel {tuple(kernel_shape)} with groups {groups} does not take "
                                     f"an input of {c} channels")
        oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        if oh < 1 or ow < 1:
            raise NIRValidationError(f"kernel {tuple(kernel_shape)} does not fit an input of shape {(c, h, w)} "
                                     f"(padding {(ph, pw)}, dilation {(dh, dw)})")
        return cls((c, h, w), (co, oh, ow), (sh, sw), (ph, pw), (dh, dw), int(groups))

    @property
    def n_in(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def n_out(self) -> int:
        return int(np.prod(self.out_shape))

    def _padded(self, x: np.ndarray) -> np.ndarray:
        (ph, pw) = self.padding
        return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))

    def _taps(self, kh: int, kw: int):
        """Per kernel tap ``(i, j)``: the slices of the padded input it reads for every output."""
        (_, oh, ow), (sh, sw), (dh, dw) = self.out_shape, self.stride, self.dilation
        for i in range(kh):
            for j in range(kw):
                yield i, j, (slice(i * dh, i * dh + sh * (oh - 1) + 1, sh), slice(j * dw, j * dw + sw * (ow - 1) + 1, sw))

    def apply(self, kernel: np.ndarray, x: np.ndarray) -> np.ndarray:
        """The convolution of flat input(s) ``x`` (``(n_in,)`` or ``(batch, n_in)``): float64, flat.

        numpy only (im2col, then one matrix product per group): it runs inside Lava's
        forked model processes, where torch's thread pool can hang.
        """
        kernel = np.asarray(kernel, np.float64)
        x = np.asarray(x, np.float64)
        lead = x.shape[:-1]
        c, _, _ = self.in_shape
        co, ci, kh, kw = kernel.shape
        _, oh, ow = self.out_shape
        g = self.groups
        xp = self._padded(x.reshape(-1, *self.in_shape))
        b = xp.shape[0]
        cols = np.empty((b, c, kh, kw, oh, ow))
        for i, j, (rows, cells) in self._taps(kh, kw):
            cols[:, :, i, j] = xp[:, :, rows, cells]
        cols = cols.reshape(b, g, ci * kh * kw, oh * ow)
        out = np.matmul(kernel.reshape(g, co // g, ci * kh * kw), cols)  # (b, g, co/g, oh*ow)
        return out.reshape(*lead, self.n_out)

    def transpose_apply(self, kernel: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The transpose of :meth:`apply` on one flat output ``y`` (what each input reaches)."""
        kernel = np.asarray(kernel, np.float64)
        c, h, w = self.in_shape
        co, ci, kh, kw = kernel.shape
        _, oh, ow = self.out_shape
        g = self.groups
        yg = np.asarray(y, np.float64).reshape(g, co // g, oh * ow)
        cols = np.matmul(kernel.reshape(g, co // g, ci * kh * kw).transpose(0, 2, 1), yg)
        cols = cols.reshape(c, kh, kw, oh, ow)
        (ph, pw) = self.padding
        xp = np.zeros((c, h + 2 * ph, w + 2 * pw))
        for i, j, (rows, cells) in self._taps(kh, kw):
            xp[:, rows, cells] += cols[:, i, j]
        return xp[:, ph:ph + h, pw:pw + w].reshape(-1)

    def matrix(self, kernel: np.ndarray, what: str = "convolution") -> np.ndarray:
        """The dense ``(n_out, n_in)`` matrix of the convolution, refused past :data:`MAX_UNROLLED`."""
        if self.n_in * self.n_out > MAX_UNROLLED:
            raise NIRValidationError(f"{what} on an input of {self.n_in:,} values would unroll into a dense "
                                     f"matrix of {self.n_in * self.n_out:,} entries, more than the limit "
                                     f"{MAX_UNROLLED:,}")
        return self.apply(kernel, np.eye(self.n_in)).T.copy()


@dataclass
class Connection:
    """Synapses ``weight`` from ``src`` into ``dst``: a dense matrix (dst.size, src size), or,
    with ``conv``, a convolution kernel ``(C_out, C_in / groups, kh, kw)`` applied as
    :class:`ConvGeometry` says (the kernel is stored, never unrolled).

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
    conv: ConvGeometry | None = None

    @property
    def graded(self) -> bool:
        """True where the source is the host input (graded spikes), not binary spikes."""
        return self.src == INPUT

    @property
    def shape(self) -> tuple[int, int]:
        """``(targets, sources)``: the shape of the map as a matrix."""
        return (self.conv.n_out, self.conv.n_in) if self.conv is not None else tuple(self.weight.shape)

    def apply(self, weight: np.ndarray, x: np.ndarray) -> np.ndarray:
        """``weight`` (this connection's, or its integer registers) applied to flat input(s) ``x``."""
        if self.conv is not None:
            return self.conv.apply(weight, x)
        x = np.asarray(x, dtype=weight.dtype)
        return weight @ x if x.ndim == 1 else x @ weight.T

    def dense(self) -> np.ndarray:
        """The dense matrix of the connection (a convolution unrolled, within :data:`MAX_UNROLLED`)."""
        return self.weight if self.conv is None else self.conv.matrix(self.weight, f"connection {self.name!r}")

    def row_abs_sum(self, weight: np.ndarray | None = None) -> np.ndarray:
        """Per target, the sum of ``|w|`` over its sources (the largest input one step can bring)."""
        w = np.abs(np.asarray(self.weight if weight is None else weight, np.float64))
        return self.conv.apply(w, np.ones(self.conv.n_in)) if self.conv is not None else w.sum(axis=1)

    def fanout(self, weight: np.ndarray | None = None) -> np.ndarray:
        """Per source, its non-zero synapses (the operations one input event costs)."""
        nz = (np.asarray(self.weight if weight is None else weight) != 0)
        if self.conv is None:
            return np.count_nonzero(nz, axis=0).astype(np.int64)
        return np.rint(self.conv.transpose_apply(nz.astype(np.float64), np.ones(self.conv.n_out))).astype(np.int64)

    @property
    def synapses(self) -> int:
        """Source-target pairs the map connects (zeros too): a dense layer's MACs per pass."""
        if self.conv is None:
            return int(self.weight.size)
        return int(self.fanout(np.ones_like(self.weight)).sum())


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
            if c.shape != (sizes[c.dst], sizes[c.src]) or (c.conv is not None and c.weight.shape[0] != c.conv.out_shape[0]):
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
        """Graded (real-valued payload) host input, or binary spikes (a peer graph's default, or a spike
        encoder of at most one event per channel and step)."""
        return self.encoding is not None and not getattr(self.encoding, "binary", False)

    def is_graded(self, conn: Connection) -> bool:
        """Whether a connection carries graded events (priced as MACs) or binary spikes (ACs)."""
        return conn.src == INPUT and self.input_graded

    @property
    def neuron_count(self) -> int:
        return sum(p.size for p in self.populations)
