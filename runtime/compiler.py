"""NIR graph -> :class:`NetworkPlan` (the contract's discrete network, timed for Lava).

Neuron nodes (LIF, CubaLIF, IF, LI, CubaLI, Threshold) become populations. Every chain
of linear nodes between two populations (Linear, Affine, Scale, Conv2d, SumPool2d,
AvgPool2d, Flatten, Delay) is composed into one connection. A convolution (and a
pooling, which is a depthwise convolution of ones) stays a convolution: its kernel and
:class:`~spikeloop.runtime.plan.ConvGeometry`, never unrolled, where it is the one map
between two populations (a Flatten after it changes nothing). Composed with another map
it is unrolled into the dense matrix it applies (same sums, same non-zero fan-out),
within :data:`~spikeloop.runtime.plan.MAX_UNROLLED` entries. Nested subgraphs are inlined.
With forward Euler at ``dt`` (DESIGN.md)::

    CubaLIF: du = dt/tau_syn, dv = dt/tau_mem, gain = du*dv*r*w_in, bias = dv*v_leak
    LIF:     du = 1,          dv = dt/tau,     gain = dv*r,         bias = dv*v_leak
    IF:      du = 1,          dv = 0,          gain = dt*r          (v' = R I)
    LI / CubaLI: as LIF / CubaLIF without threshold;  Threshold: du = dv = 1, gain 1

The gain multiplies the rows of the incoming weights. An Affine/Conv bias is a
constant input current; it equals a voltage bias ``gain * b`` only where ``du = 1``.
Where ``u`` decays (a CubaLIF: snnTorch ``Synaptic``, Norse ``LIFCell``), it becomes
synapses of weight ``gain * b`` from a *bias source* (:func:`bias_source`), one neuron
that fires at every step: exact, and what the chip would run.

Time follows :class:`spikeloop.train.graph.SpikingGraph`: neurons hold the state and run
in :func:`~spikeloop.train.graph.graph_order`; a neuron's output reaches itself or a
neuron that runs before it one step later (a recurrent connection), and a path through a
Delay node delivers the value of ``round(delay / dt)`` steps before: the connection's
graph-time delay ``g``. On Lava every
Dense hop adds one step, so each population ``p`` runs ``depth[p]`` steps behind the
input; a connection needs ``g + depth[dst] - depth[src] - 1 >= 0`` extra steps of delay
(Lava's DelayDense). The compiler solves for the smallest depths; a recurrent loop
that would need a negative delay cannot run exactly on Lava and is an error.
"""
from __future__ import annotations

from dataclasses import dataclass

import nir
import numpy as np

from spikeloop.core.errors import NIRValidationError
from spikeloop.core.metadata import check_T
from spikeloop.core.nir_io import check_finite, check_graph, flatten_graph, graph_meta
from spikeloop.runtime.plan import INPUT, MAX_UNROLLED, Connection, ConvGeometry, NetworkPlan, Population
from spikeloop.core.graphs import graph_order
from spikeloop.core.neuron import HARD, RESET_MODES, first_offender, neuron_fault

NEURON_TYPES = (nir.LIF, nir.CubaLIF, nir.IF, nir.LI, nir.CubaLI, nir.Threshold)
OP_TYPES = (nir.Linear, nir.Affine, nir.Scale, nir.Conv2d, nir.SumPool2d, nir.AvgPool2d, nir.Flatten,
            nir.Delay)


@dataclass
class _Neuron:
    du: np.ndarray
    dv: np.ndarray
    gain: np.ndarray
    bias: np.ndarray
    vth: float | None
    v_reset: np.ndarray | None
    shape: tuple


def _arr(x, n=None):
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    return np.broadcast_to(a, (n,)).copy() if n is not None and a.size == 1 else a


def _shape(x) -> tuple:
    return tuple(int(s) for s in np.asarray(x).reshape(-1))


def _scalar_vth(name, v_threshold):
    vth = np.unique(_arr(v_threshold))
    if vth.size != 1:
        raise NIRValidationError(f"node {name!r}: per-neuron thresholds {vth[:4].tolist()}... are not "
                                 "supported; Lava's LIF holds one threshold per population")
    if vth[0] <= 0:
        raise NIRValidationError(f"node {name!r}: v_threshold must be positive, got {vth[0]:g}")
    return float(vth[0])


TIME_CONSTANTS = ("tau", "tau_syn", "tau_mem")


@dataclass(frozen=True)
class _ConvMap:
    """A convolution in a composed map, kept as its kernel until something needs a matrix."""

    kernel: np.ndarray
    geometry: ConvGeometry


def _dense(m, size: int, node: str = "", source: str = "graph") -> np.ndarray:
    """A composed map as a matrix: ``None`` (the identity, kept lazy) becomes ``eye(size)``,
    a convolution its unrolled matrix, each refused past :data:`MAX_UNROLLED` entries so
    that a huge input never allocates one."""
    if isinstance(m, _ConvMap):
        return m.geometry.matrix(m.kernel, f"{source}: node {node!r}, a convolution composed with another map,")
    if m is not None:
        return m
    if size * size > MAX_UNROLLED:
        raise NIRValidationError(f"{source}: node {node!r} takes {size:,} inputs one to one; as a dense "
                                 f"connection that is {size * size:,} entries, more than the limit "
                                 f"{MAX_UNROLLED:,}")
    return np.eye(size)


def _check_neuron(name: str, node) -> None:
    """Time constants of a neuron node are positive seconds (a short one compiles: the peer
    importer warns about it, and every backend refuses a decay that diverges)."""
    for field in TIME_CONSTANTS:
        if not hasattr(node, field):
            continue
        tau = _arr(getattr(node, field))
        if tau.size == 0:
            raise NIRValidationError(f"node {name!r}: {field!r} holds no values")
        if np.any(tau <= 0):
            raise NIRValidationError(f"node {name!r}: {field!r} must be a positive time constant in seconds, "
                                     f"got {first_offender(tau, tau > 0)}")


def _lif(name, n: nir.LIF, dt):
    dv = dt / _arr(n.tau)
    return _Neuron(np.ones_like(dv), dv, dv * _arr(n.r, dv.size), dv * _arr(n.v_leak, dv.size),
                   _scalar_vth(name, n.v_threshold), None if n.v_reset is None else _arr(n.v_reset),
                   np.shape(n.tau))


def _li(name, n: nir.LI, dt):
    dv = dt / _arr(n.tau)
    return _Neuron(np.ones_like(dv), dv, dv * _arr(n.r, dv.size), dv * _arr(n.v_leak, dv.size), None, None,
                   np.shape(n.tau))


def _cubalif(name, n: nir.CubaLIF, dt):
    du, dv = dt / _arr(n.tau_syn), dt / _arr(n.tau_mem)
    gain = du * dv * _arr(n.r, du.size) * _arr(n.w_in, du.size)
    return _Neuron(du, dv, gain, dv * _arr(n.v_leak, du.size), _scalar_vth(name, n.v_threshold),
                   None if n.v_reset is None else _arr(n.v_reset), np.shape(n.tau_mem))


def _cubali(name, n: nir.CubaLI, dt):
    du, dv = dt / _arr(n.tau_syn), dt / _arr(n.tau_mem)
    gain = du * dv * _arr(n.r, du.size) * _arr(n.w_in, du.size)
    return _Neuron(du, dv, gain, dv * _arr(n.v_leak, du.size), None, None, np.shape(n.tau_mem))


def _if(name, n: nir.IF, dt):
    r = _arr(n.r)
    return _Neuron(np.ones_like(r), np.zeros_like(r), dt * r, np.zeros_like(r),
                   _scalar_vth(name, n.v_threshold), None if n.v_reset is None else _arr(n.v_reset),
                   np.shape(n.r))


def _threshold(name, n: nir.Threshold, dt):
    th = np.asarray(n.threshold, dtype=np.float64)
    ones = np.ones(th.size)
    return _Neuron(ones, ones.copy(), ones.copy(), np.zeros(th.size), _scalar_vth(name, th), None, th.shape)


NEURONS = {nir.LIF: _lif, nir.LI: _li, nir.CubaLIF: _cubalif, nir.CubaLI: _cubali, nir.IF: _if,
           nir.Threshold: _threshold}


# ------------------------------------------------------------------------- linear ops

def _compose(m, mm, size: int, node: str, source: str):
    """The map ``m`` after ``mm`` (``None`` is the identity; convolutions stay so alone)."""
    if m is None:
        return mm
    if mm is None:
        return m
    return _dense(m, size, node, source) @ _dense(mm, size, node, source)


def _matvec(m, v: np.ndarray) -> np.ndarray:
    """A composed map applied to a constant vector."""
    if m is None:
        return v
    if isinstance(m, _ConvMap):
        return m.geometry.apply(m.kernel, v)
    return m @ v


def _pair(x) -> tuple[int, int]:
    a = np.asarray(x).reshape(-1)
    return (int(a[0]), int(a[0])) if a.size == 1 else (int(a[0]), int(a[1]))


def _op(name: str, node, in_shape: tuple, dt: float, source: str, shape_only: bool = False):
    """(matrix or None for identity, bias or None, out_shape, delay steps array or None).

    With ``shape_only`` the (possibly large) matrix of a convolution is not built.
    """
    n_in = int(np.prod(in_shape))
    if isinstance(node, (nir.Linear, nir.Affine)):
        w = np.asarray(node.weight, np.float64)
        if w.ndim != 2 or w.shape[1] != n_in:
            raise NIRValidationError(f"{source}: shape mismatch at {name!r}: weight {w.shape} takes "
                                     f"{w.shape[1] if w.ndim == 2 else '?'} inputs, its source gives {n_in}")
        bias = np.asarray(node.bias, np.float64).reshape(-1) if isinstance(node, nir.Affine) else None
        return w, bias, (w.shape[0],), None
    if isinstance(node, nir.Scale):
        s = np.asarray(node.scale, np.float64).reshape(-1)
        if s.size not in (1, n_in):
            raise NIRValidationError(f"{source}: shape mismatch at {name!r}: scale of {s.size} for {n_in} inputs")
        return np.diag(np.broadcast_to(s, (n_in,))), None, in_shape, None
    if isinstance(node, nir.Flatten):
        return None, None, (n_in,), None
    if isinstance(node, nir.Delay):
        steps = np.asarray(node.delay, np.float64).reshape(-1) / dt
        if steps.size not in (1, n_in):
            raise NIRValidationError(f"{source}: shape mismatch at {name!r}: delay of {steps.size} for "
                                     f"{n_in} inputs")
        if np.any(steps < 0) or not np.allclose(steps, np.rint(steps), atol=1e-6):
            raise NIRValidationError(f"{source}: node {name!r}: delay {node.delay} is not a whole number "
                                     f"of timesteps of dt = {dt:g} s")
        return None, None, in_shape, np.broadcast_to(np.rint(steps).astype(int), (n_in,))
    if len(in_shape) != 3 and isinstance(node, nir.Conv2d) and getattr(node, "input_shape", None) is not None:
        # A flat or (H, W) input reinterpreted as (C, H, W) from the kernel and input_shape.
        h, w = _pair(node.input_shape)
        c = int(np.asarray(node.weight).shape[1]) * int(np.asarray(node.groups).reshape(-1)[0])
        if c * h * w == n_in:
            in_shape = (c, h, w)
    elif len(in_shape) == 2:
        in_shape = (1, *in_shape)
    if len(in_shape) != 3:
        raise NIRValidationError(f"{source}: node {name!r} ({type(node).__name__}) needs a (C, H, W) input, "
                                 f"its source gives shape {in_shape}")
    if isinstance(node, nir.Conv2d):
        w = np.asarray(node.weight, np.float64)
        groups = int(np.asarray(node.groups).reshape(-1)[0])
        if w.ndim != 4 or w.shape[1] * groups != in_shape[0]:
            raise NIRValidationError(f"{source}: shape mismatch at {name!r}: kernel {tuple(w.shape)} "
                                     f"(groups {groups}) for an input of {in_shape[0]} channels")
        pad = node.padding
        if isinstance(pad, str):
            raise NIRValidationError(f"{source}: node {name!r}: string padding {pad!r} is not supported")
        geo = ConvGeometry.of(w.shape, in_shape, node.stride, pad, node.dilation, groups)
        if shape_only:
            return None, None, geo.out_shape, None
        out = geo.out_shape
        b = np.asarray(node.bias, np.float64).reshape(-1)
        bias = None if not np.any(b) else np.repeat(np.broadcast_to(b, (out[0],)), out[1] * out[2])
        return _ConvMap(w.copy(), geo), bias, out, None
    # a pooling is the depthwise convolution of a kernel of ones (or of their mean)
    k, s, p = _pair(node.kernel_size), _pair(node.stride), _pair(node.padding)
    c = in_shape[0]
    value = 1.0 if isinstance(node, nir.SumPool2d) else 1.0 / (k[0] * k[1])
    geo = ConvGeometry.of((c, 1, *k), in_shape, s, p, 1, c)
    if shape_only:
        return None, None, geo.out_shape, None
    return _ConvMap(np.full((c, 1, *k), value), geo), None, geo.out_shape, None


# ------------------------------------------------------------------------- compile

def plan_from_nir(graph: nir.NIRGraph, dt_s: float | None = None, T: int | None = None,
                  source: str = "graph", reset: str | None = None) -> NetworkPlan:
    """Compile a NIR graph into the discrete network every backend runs.

    ``dt_s`` (seconds per step) overrides the graph's own. ``reset`` overrides the reset mode of every spiking population ('hard' or 'soft');
    otherwise a node's ``metadata['reset']``, then the graph's spikeloop metadata, decide.
    """
    check_graph(graph, source)
    meta = graph_meta(graph, dt_s, source)
    try:
        T = check_T(T, "T")
    except NIRValidationError as e:
        raise NIRValidationError(f"{source}: {e}") from None
    check_finite(graph, source)
    nodes, edges = flatten_graph(graph, source)
    for name, node in nodes.items():
        if not isinstance(node, (nir.Input, nir.Output, *NEURON_TYPES, *OP_TYPES)):
            raise NIRValidationError(f"{source}: node {name!r} of type {type(node).__name__} is not supported "
                                     f"(supported: Input, Output, {', '.join(t.__name__ for t in NEURON_TYPES + OP_TYPES)})")
    inputs = [k for k, v in nodes.items() if isinstance(v, nir.Input)]
    outputs = [k for k, v in nodes.items() if isinstance(v, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise NIRValidationError(f"{source}: expected one Input and one Output node, got "
                                 f"inputs {inputs}, outputs {outputs}")
    inp, outp = inputs[0], outputs[0]
    pred = {k: [] for k in nodes}
    for a, b in edges:
        pred[b].append(a)
    try:
        order, _ = graph_order(list(nodes), edges, inp)
    except ValueError as e:
        raise NIRValidationError(f"{source}: {e}") from e
    position = {n: i for i, n in enumerate(order)}
    neurons = {}
    for k, v in nodes.items():
        if type(v) in NEURONS:
            try:
                _check_neuron(k, v)
                with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                    neurons[k] = NEURONS[type(v)](k, v, meta.dt_s)
            except NIRValidationError as e:
                raise NIRValidationError(f"{source}: {e}") from None
            except (ValueError, TypeError) as e:  # parameters that do not broadcast against each other
                raise NIRValidationError(f"{source}: node {k!r} ({type(v).__name__}): malformed parameters "
                                         f"({e})") from None
    for k, nrn in neurons.items():
        kind = type(nodes[k]).__name__
        fault = None if kind == "Threshold" else neuron_fault(kind, nrn.du, nrn.dv, nrn.vth, overshoot=True)
        if fault:
            raise NIRValidationError(f"{source}: node {k!r}: {fault} (du = dt/tau_syn, dv = dt/tau_mem at "
                                     f"dt = {meta.dt_s:g} s)")
    in_shape = _shape(nodes[inp].input_type["input"])
    if not in_shape or any(n < 1 for n in in_shape):
        raise NIRValidationError(f"{source}: the Input node {inp!r} has shape {in_shape}; it needs positive sizes")
    if meta.encoding is not None and meta.encoding.n_inputs != int(np.prod(in_shape)):
        raise NIRValidationError(f"{source}: the input encoding gives {meta.encoding.n_inputs} input values, "
                                 f"but the graph's input takes {int(np.prod(in_shape))}")
    shapes = _infer_shapes(nodes, pred, order, position, inp, in_shape, neurons, meta.dt_s, source)

    # Linear nodes are instantaneous: compose them, in the order of their own graph, into
    # maps[node][(source, delay)] = matrix (node size, source size), plus a constant.
    ops = [k for k, v in nodes.items() if isinstance(v, OP_TYPES)]
    maps: dict[str, dict] = {inp: {(INPUT, 0): None}} | {k: {(k, 0): None} for k in neurons}
    consts: dict[str, np.ndarray | None] = {k: None for k in maps}
    via: dict[str, dict] = {k: {key: () for key in maps[k]} for k in maps}  # op names on each path

    def gather(node: str):
        srcs = pred[node]
        if not srcs:
            raise NIRValidationError(f"{source}: node {node!r} has no incoming edge")
        sizes = {int(np.prod(shapes[p])) for p in srcs}
        if len(sizes) > 1:
            raise NIRValidationError(f"{source}: shape mismatch: the inputs of {node!r} have shapes "
                                     f"{sorted(shapes[p] for p in srcs)}")
        size = sizes.pop()
        acc, const, names = {}, None, {}
        for p in srcs:
            for key, m in maps[p].items():  # None is the identity, kept lazy until a sum needs it
                acc[key] = _dense(acc[key], size) + _dense(m, size) if key in acc else m
                names[key] = tuple(dict.fromkeys(names.get(key, ()) + via[p][key]))
            if consts[p] is not None:
                const = consts[p] if const is None else const + consts[p]
        return acc, const, shapes[srcs[0]], names

    for node in _op_order(ops, pred, source):
        acc, const, shape_in, names = gather(node)
        m, bias, out_shape, delay = _safe_op(node, nodes[node], shape_in, meta.dt_s, source)
        out, out_via = {}, {}
        for (src, d), mm in acc.items():
            if delay is None:
                out[(src, d)] = _compose(m, mm, int(np.prod(shape_in)), node, source)
                out_via[(src, d)] = names[(src, d)] + (node,)
            elif np.unique(delay).size == 1:  # one delay for all: the map itself, later
                key = (src, d + int(delay[0]))
                out[key] = _dense(out[key], len(delay), node, source) + _dense(mm, len(delay), node, source) \
                    if key in out else mm
                out_via[key] = tuple(dict.fromkeys(out_via.get(key, ()) + names[(src, d)] + (node,)))
            else:  # per-element delays split the map by delay value
                for steps in np.unique(delay):
                    key = (src, d + int(steps))
                    part = (delay == steps).astype(np.float64)[:, None] * _dense(mm, len(delay), node, source)
                    out[key] = out[key] + part if key in out else part
                    out_via[key] = tuple(dict.fromkeys(out_via.get(key, ()) + names[(src, d)] + (node,)))
        if delay is not None and const is not None and np.any(const) and np.any(delay):
            raise NIRValidationError(f"{source}: a bias flows into Delay {node!r}; a delayed constant is "
                                     "not constant over the first steps. Move the bias after the delay")
        maps[node], via[node] = out, out_via
        c = None if const is None else _matvec(m, const)
        consts[node] = c if bias is None else (bias if c is None else c + bias)
        shapes[node] = out_shape

    # Neurons hold the state (train/graph.py): a neuron's output reaches a neuron that runs
    # earlier in the step (or itself) one step later; that is where every cycle is broken.
    # A path through a Delay of k >= 1 steps delivers the value of step t - k.
    incoming, incoming_bias = {}, {}
    for name, nrn in neurons.items():
        srcs = [p for p in pred[name] if p in maps]
        if not srcs:
            raise NIRValidationError(f"{source}: neuron node {name!r} is not reachable from the input")
        acc, const, shape_in, names = gather(name)
        if int(np.prod(nrn.shape)) != int(np.prod(shape_in)):
            raise NIRValidationError(f"{source}: shape mismatch on the edge {pred[name][0]!r} -> {name!r}: "
                                     f"{name!r} has {int(np.prod(nrn.shape))} neurons, {pred[name][0]!r} "
                                     f"gives shape {shape_in}")
        incoming[name] = {
            (src, d + (d == 0 and src != INPUT and position[src] >= position[name])):
                (m if isinstance(m, _ConvMap) else _dense(m, int(np.prod(shape_in)), name, source),
                 names[(src, d)])
            for (src, d), m in acc.items()}
        if const is not None:
            incoming_bias[name] = const

    out_src = pred[outp]
    if len(out_src) != 1 or out_src[0] not in neurons:
        raise NIRValidationError(f"{source}: the Output must be fed by one neuron node, got {out_src}")
    for name, acc in incoming.items():
        graded = sorted({src for src, _ in acc if src in neurons and neurons[src].vth is None})
        if graded:
            raise NIRValidationError(f"{source}: non-spiking node(s) {graded} feed neuron node {name!r}; "
                                     "a leaky integrator's voltage is supported only as the graph's output")
    graph_reset = meta.reset
    populations, connections, current_bias = {}, [], {}
    for name, nrn in neurons.items():
        if nrn.v_reset is not None and np.any(nrn.v_reset != 0):
            raise NIRValidationError(f"{source}: node {name!r} resets to v_reset="
                                     f"{nrn.v_reset[nrn.v_reset != 0][0]:g}; Lava's LIF resets to 0")
        # a non-spiking node has no reset; a 'mixed' graph names the mode per node
        mode = HARD if nrn.vth is None else (reset or (nodes[name].metadata or {}).get("reset")
                                             or (graph_reset if graph_reset in RESET_MODES else None) or HARD)
        mode = mode.decode() if isinstance(mode, bytes) else str(mode)
        if mode not in RESET_MODES:
            raise NIRValidationError(f"{source}: node {name!r} has reset mode {mode!r}; expected one of "
                                     f"{RESET_MODES}")
        bias = nrn.bias.copy()
        if name in incoming_bias and np.any(incoming_bias[name] != 0):
            if np.any(nrn.du != 1):  # a constant input current, which decays in u: a bias source
                current_bias[name] = nrn.gain * np.broadcast_to(incoming_bias[name], nrn.gain.shape)
            else:  # without memory in u, a constant current is exactly a voltage bias
                bias = bias + nrn.gain * incoming_bias[name]
        populations[name] = Population(name, int(np.prod(nrn.shape)), nrn.du, nrn.dv, bias, nrn.vth,
                                       mode if nrn.vth is not None else HARD, type(nodes[name]).__name__,
                                       shape=tuple(nrn.shape))
    for dst in sorted(incoming, key=position.get):
        for (src, g), (m, ops_on_path) in sorted(incoming[dst].items(),
                                                 key=lambda kv: (position.get(kv[0][0], -1), kv[0][1])):
            if not np.any(m.kernel if isinstance(m, _ConvMap) else m):
                continue
            label = "+".join(ops_on_path) or f"{src}->{dst}"
            if sum(k[0] == src for k in incoming[dst]) > 1 or any(
                    k[0] != src and incoming[dst][k][1] == ops_on_path for k in incoming[dst]):
                label += f"[{src}" + (f"@{g}]" if g else "]")
            weight, conv = _scaled(m, neurons[dst].gain, dst, source)
            connections.append(Connection(label, src, dst, weight, graph_delay=g, conv=conv))
    order = list(order)
    for name, current in current_bias.items():
        src = bias_source_name(name)
        if src in populations or src in nodes:
            raise NIRValidationError(f"{source}: node name {src!r} is taken; spikeloop names the bias source "
                                     f"of {name!r} so")
        populations[src] = bias_source(src)
        connections.append(Connection(src, src, name, np.asarray(current, np.float64).reshape(-1, 1)))
        order.insert(order.index(name), src)
    window = T if T is not None else meta.T
    try:
        return NetworkPlan(int(np.prod(in_shape)), [populations[k] for k in order if k in populations],
                           connections, out_src[0], meta.dt_s, 1 if window is None else window, meta.encoding,
                           meta.decoding, input_shape=in_shape)
    except NIRValidationError as e:
        raise NIRValidationError(f"{source}: {e}") from None


def _scaled(m, gain: np.ndarray, node: str, source: str) -> tuple[np.ndarray, ConvGeometry | None]:
    """A connection's weights times its target's per-neuron gain: a convolution stays one
    where the gain is one per output channel (a kernel scales per channel), else unrolls."""
    if isinstance(m, _ConvMap):
        per_channel = np.broadcast_to(gain, (m.geometry.n_out,)).reshape(m.geometry.out_shape[0], -1)
        if np.all(per_channel == per_channel[:, :1]):
            return m.kernel * per_channel[:, 0][:, None, None, None], m.geometry
        m = _dense(m, m.geometry.n_in, node, source)
    return m * gain[:, None], None


BIAS_SOURCE_SUFFIX = ".bias"


def bias_source_name(population: str) -> str:
    """The name of the neuron that carries ``population``'s constant input current."""
    return population + BIAS_SOURCE_SUFFIX


def bias_source(name: str) -> Population:
    """One neuron that spikes at every step of its window (no input, no memory: ``v = 1 > 0.5``).

    A constant current ``c`` into a CUBA neuron with a decaying ``u`` (an Affine bias into a
    CubaLIF: snnTorch ``Synaptic``, Norse ``LIFCell``) is not a voltage bias, and Loihi's
    neuron has a voltage bias only. It is exact as synapses of weight ``c`` from a neuron
    that fires every step, which is also how it runs on the chip (and what it costs there:
    one spike and ``n`` synaptic operations per step).
    """
    return Population(name, 1, 1.0, 1.0, np.ones(1), 0.5, HARD, "LIF", bias_source=True)


def _safe_op(name: str, node, in_shape: tuple, dt: float, source: str, shape_only: bool = False):
    """:func:`_op` with its parameters checked: a malformed node is one error naming it."""
    kind = type(node).__name__
    if isinstance(node, (nir.Conv2d, nir.SumPool2d, nir.AvgPool2d)):
        ints = ("stride", "dilation", "groups") if isinstance(node, nir.Conv2d) else ("kernel_size", "stride")
        for f in ints:
            a = np.asarray(getattr(node, f))
            if a.dtype.kind not in "iuf" or a.size == 0 or np.any(a < 1) or np.any(a != np.rint(a)):
                raise NIRValidationError(f"{source}: node {name!r} ({kind}) field {f!r} must hold positive "
                                         f"integers, got {a.tolist()}")
        pad = getattr(node, "padding")
        if not isinstance(pad, str):
            a = np.asarray(pad)
            if a.dtype.kind not in "iuf" or a.size == 0 or np.any(a < 0) or np.any(a != np.rint(a)):
                raise NIRValidationError(f"{source}: node {name!r} ({kind}) field 'padding' must hold "
                                         f"non-negative integers, got {a.tolist()}")
    try:
        return _op(name, node, in_shape, dt, source, shape_only)
    except NIRValidationError:
        raise
    except (RuntimeError, ValueError, TypeError, IndexError, ZeroDivisionError) as e:
        raise NIRValidationError(f"{source}: node {name!r} ({kind}) on an input of shape {in_shape}: "
                                 f"{type(e).__name__}: {e}") from None


def _infer_shapes(nodes, pred, order, position, inp, in_shape, neurons, dt, source) -> dict:
    """Per-sample output shape of every node, along the forward edges.

    A neuron node with scalar parameters (Norse writes them so) takes its input's shape.
    """
    shapes = {inp: in_shape}
    for n in order:
        if n == inp or isinstance(nodes[n], nir.Output):
            continue
        fwd = [p for p in pred[n] if position[p] < position[n] and p in shapes]
        src_shape = shapes[fwd[0]] if fwd else None
        if n in neurons:
            nrn = neurons[n]
            size = int(np.prod(nrn.shape))
            if size == 1 and src_shape is not None and int(np.prod(src_shape)) > 1:
                k = int(np.prod(src_shape))
                nrn.du, nrn.dv, nrn.gain, nrn.bias = (np.broadcast_to(a, (k,)).copy()
                                                      for a in (nrn.du, nrn.dv, nrn.gain, nrn.bias))
                if nrn.v_reset is not None:
                    nrn.v_reset = np.broadcast_to(nrn.v_reset, (k,)).copy()
                nrn.shape = tuple(src_shape)
            shapes[n] = tuple(nrn.shape) if nrn.shape else (1,)
        elif src_shape is None:
            raise NIRValidationError(f"{source}: node {n!r} is not reachable from the input")
        else:
            shapes[n] = _safe_op(n, nodes[n], src_shape, dt, source, shape_only=True)[2]
    return shapes


def _op_order(ops: list[str], pred: dict, source: str) -> list[str]:
    """Topological order of the linear nodes; a cycle among them has no state: an error."""
    op_set = set(ops)
    indeg = {k: sum(p in op_set for p in pred[k]) for k in ops}
    ready = [k for k in ops if indeg[k] == 0]
    out = []
    succ = {k: [] for k in ops}
    for k in ops:
        for p in pred[k]:
            if p in op_set:
                succ[p].append(k)
    while ready:
        k = ready.pop(0)
        out.append(k)
        for m in succ[k]:
            indeg[m] -= 1
            if indeg[m] == 0:
                ready.append(m)
    if len(out) != len(ops):
        loop = sorted(op_set - set(out))
        raise NIRValidationError(f"{source}: the cycle through {loop} has no neuron (no state) to break "
                                 "it: its nodes would depend on their own output within one timestep")
    return out
