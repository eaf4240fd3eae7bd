"""NIR graph -> :class:`NetworkPlan` (the contract's discrete network).

One converter per NIR node type. Neuron nodes become populations, synapse nodes
become dense connections. With forward Euler at ``dt`` (DESIGN.md)::

    CubaLIF: du = dt/tau_syn, dv = dt/tau_mem, gain = du*dv*r*w_in, bias = dv*v_leak
    LIF:     du = 1,          dv = dt/tau,     gain = dv*r,         bias = dv*v_leak
    LI / CubaLI: the same, non-spiking

The gain multiplies the rows of the incoming weights. An Affine bias enters the
neuron as a constant input; it equals a voltage bias ``gain * b`` only for ``du = 1``.
"""
from __future__ import annotations

from dataclasses import dataclass

import nir
import numpy as np

from spikeloop.errors import NIRValidationError
from spikeloop.export.metadata import GraphMeta
from spikeloop.export.nir_io import node_params
from spikeloop.runtime.plan import INPUT, Connection, NetworkPlan, Population


@dataclass
class _Neuron:
    du: np.ndarray
    dv: np.ndarray
    gain: np.ndarray
    bias: np.ndarray
    vth: float | None
    v_reset: np.ndarray | None


def _arr(x, n=None):
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    return np.broadcast_to(a, (n,)).copy() if n is not None and a.size == 1 else a


def _scalar_vth(name, v_threshold):
    vth = np.unique(_arr(v_threshold))
    if vth.size != 1:
        raise NIRValidationError(f"node {name!r}: per-neuron thresholds {vth[:4].tolist()}... are not "
                                 "supported; Lava's LIF holds one threshold per population")
    if vth[0] <= 0:
        raise NIRValidationError(f"node {name!r}: v_threshold must be positive, got {vth[0]:g}")
    return float(vth[0])


def _lif(name, n: nir.LIF, dt):
    dv = dt / _arr(n.tau)
    return _Neuron(np.ones_like(dv), dv, dv * _arr(n.r), dv * _arr(n.v_leak), _scalar_vth(name, n.v_threshold),
                   None if n.v_reset is None else _arr(n.v_reset))


def _li(name, n: nir.LI, dt):
    dv = dt / _arr(n.tau)
    return _Neuron(np.ones_like(dv), dv, dv * _arr(n.r), dv * _arr(n.v_leak), None, None)


def _cubalif(name, n: nir.CubaLIF, dt):
    du, dv = dt / _arr(n.tau_syn), dt / _arr(n.tau_mem)
    gain = du * dv * _arr(n.r) * _arr(n.w_in, du.size)
    return _Neuron(du, dv, gain, dv * _arr(n.v_leak), _scalar_vth(name, n.v_threshold),
                   None if n.v_reset is None else _arr(n.v_reset))


def _cubali(name, n: nir.CubaLI, dt):
    du, dv = dt / _arr(n.tau_syn), dt / _arr(n.tau_mem)
    gain = du * dv * _arr(n.r) * _arr(n.w_in, du.size)
    return _Neuron(du, dv, gain, dv * _arr(n.v_leak), None, None)


NEURONS = {nir.LIF: _lif, nir.LI: _li, nir.CubaLIF: _cubalif, nir.CubaLI: _cubali}
SYNAPSES = (nir.Linear, nir.Affine)


def graph_meta(graph: nir.NIRGraph, dt: float | None, source: str) -> GraphMeta:
    """spikeloop metadata of ``graph``, with ``dt`` taken from the argument, metadata, or an error."""
    meta = GraphMeta.from_nir_metadata(graph.metadata, source)
    if meta is None:
        plain = (graph.metadata or {}).get("dt")
        if dt is None and plain is None:
            raise NIRValidationError(
                f"{source}: the graph carries no time step ('dt' metadata); pass it explicitly "
                "(--dt SECONDS). snnTorch writes none and assumes 1e-4 s")
        meta = GraphMeta(dt=float(dt if dt is not None else plain))
    elif dt is not None:
        meta.dt = float(dt)
    if not np.isfinite(meta.dt) or meta.dt <= 0:
        raise NIRValidationError(f"{source}: dt must be a positive number of seconds, got {meta.dt}")
    return meta


def check_finite(graph: nir.NIRGraph, source: str) -> None:
    for name, node in graph.nodes.items():
        for k, v in node_params(node).items():
            if v.dtype.kind in "fc" and not np.all(np.isfinite(v)):
                bad = v[~np.isfinite(v)].reshape(-1)[0]
                raise NIRValidationError(f"{source}: node {name!r} parameter {k!r} contains {bad} "
                                         "(NaN or inf)")


def plan_from_nir(graph: nir.NIRGraph, dt: float | None = None, T: int | None = None,
                  source: str = "graph") -> NetworkPlan:
    """Compile a NIR graph into the discrete network every backend runs."""
    meta = graph_meta(graph, dt, source)
    check_finite(graph, source)
    nodes = graph.nodes
    inputs = [k for k, v in nodes.items() if isinstance(v, nir.Input)]
    outputs = [k for k, v in nodes.items() if isinstance(v, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise NIRValidationError(f"{source}: expected one Input and one Output node, got "
                                 f"inputs {inputs}, outputs {outputs}")
    for name, node in nodes.items():
        if not isinstance(node, (nir.Input, nir.Output, *SYNAPSES, *NEURONS)):
            raise NIRValidationError(f"{source}: node {name!r} of type {type(node).__name__} is not "
                                     f"supported yet (supported: Input, Output, Linear, Affine, "
                                     f"{', '.join(t.__name__ for t in NEURONS)})")
    succ = {k: [] for k in nodes}
    pred = {k: [] for k in nodes}
    for a, b in graph.edges:
        if a not in nodes or b not in nodes:
            raise NIRValidationError(f"{source}: edge ({a!r}, {b!r}) names a node that does not exist")
        succ[a].append(b)
        pred[b].append(a)
    input_size = int(np.prod(nodes[inputs[0]].input_type["input"]))

    neurons = {k: NEURONS[type(v)](k, v, meta.dt) for k, v in nodes.items() if type(v) in NEURONS}
    populations, connections = {}, []
    for name, nrn in neurons.items():
        if nrn.v_reset is not None and np.any(nrn.v_reset != 0):
            raise NIRValidationError(f"{source}: node {name!r} resets to v_reset="
                                     f"{nrn.v_reset[nrn.v_reset != 0][0]:g}; Lava's LIF resets to 0")
        populations[name] = Population(name, nrn.dv.size, nrn.du, nrn.dv, nrn.bias.copy(), nrn.vth,
                                       meta.reset, type(nodes[name]).__name__)
    for name, node in nodes.items():
        if not isinstance(node, SYNAPSES):
            continue
        if len(pred[name]) != 1 or len(succ[name]) != 1:
            raise NIRValidationError(f"{source}: synapse node {name!r} must have one source and one "
                                     f"target, has {pred[name]} -> {succ[name]}")
        src, dst = pred[name][0], succ[name][0]
        src_key = INPUT if src == inputs[0] else src
        if src_key != INPUT and src not in neurons or dst not in neurons:
            raise NIRValidationError(f"{source}: synapse {name!r} must connect the input or a neuron to "
                                     f"a neuron, got {src!r} -> {dst!r}")
        w = np.asarray(node.weight, dtype=np.float64)
        n_src = input_size if src_key == INPUT else populations[src].size
        if w.ndim != 2 or w.shape != (populations[dst].size, n_src):
            raise NIRValidationError(
                f"{source}: shape mismatch on edge {src!r} -> {name!r} -> {dst!r}: weight "
                f"{tuple(w.shape)} needs ({populations[dst].size}, {n_src})")
        gain = neurons[dst].gain
        connections.append(Connection(name, src_key, dst, w * gain[:, None]))
        if isinstance(node, nir.Affine) and np.any(node.bias != 0):
            if np.any(neurons[dst].du != 1):
                raise NIRValidationError(
                    f"{source}: Affine {name!r} has a bias into {dst!r} whose synaptic current decays "
                    "(du < 1); a constant input current is not a voltage bias there. Export the bias "
                    "as the neuron's v_leak instead")
            populations[dst].bias = populations[dst].bias + gain * np.asarray(node.bias, np.float64)
    out_src = pred[outputs[0]]
    if len(out_src) != 1 or out_src[0] not in populations:
        raise NIRValidationError(f"{source}: the Output must be fed by one neuron node, got {out_src}")
    order = _topological(populations, connections, source)
    window = T if T is not None else meta.T
    return NetworkPlan(input_size, [populations[k] for k in order], connections, out_src[0], meta.dt,
                       int(window) if window else 1, meta.encoding, meta.decoding)


def _topological(populations: dict, connections: list[Connection], source: str) -> list[str]:
    indeg = {k: 0 for k in populations}
    for c in connections:
        if c.src != INPUT:
            indeg[c.dst] += 1
    ready = [k for k in populations if indeg[k] == 0]
    order = []
    while ready:
        k = ready.pop(0)
        order.append(k)
        for c in connections:
            if c.src == k:
                indeg[c.dst] -= 1
                if indeg[c.dst] == 0:
                    ready.append(c.dst)
    if len(order) != len(populations):
        cyc = sorted(set(populations) - set(order))
        raise NIRValidationError(f"{source}: recurrent edges among {cyc} are not supported yet")
    return order
