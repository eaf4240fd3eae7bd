"""torch -> NIR: :func:`export_graph` (any :class:`SpikingGraph`, through a registry from
module type to a small export function) and :func:`export_policy` (a
:class:`~spikeloop.train.policy.Policy`: its graph plus the metadata a deployment needs).

Neuron nodes invert the compiler's forward-Euler mapping (DESIGN.md) at gain 1, so
that the NIR weights are exactly the trained (deployed) weights.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import nir
import numpy as np
import torch
from torch import nn

from spikeloop.core.errors import ExportError, NIRValidationError
from spikeloop.core.metadata import GraphMeta, check_dt
from spikeloop.train.graph import Delay, Neuron, QuantConv2d, QuantLinear, Scale, SpikingGraph, SumPool2d, Threshold
from spikeloop.train.policy import Policy


# ----------------------------------------------------------------------------- SpikingGraph
#
# One small function per module type, registered in GRAPH_EXPORTERS. Shapes are per sample
# (NIR has no batch dimension). Neuron nodes invert the compiler's forward-Euler mapping at
# gain 1, so NIR weights equal torch weights:
#
#   LIF      tau = dt/dv, r = 1/dv, v_leak = bias/dv, v_threshold = vth, v_reset = 0
#   CubaLIF  tau_syn = dt/du, tau_mem = dt/dv, r = 1/(du*dv), w_in = 1, v_leak = bias/dv
#   LI, CubaLI: the same without threshold
#   IF       r = 1/dt (v += dt*r*I), v_threshold = vth, v_reset = 0 (no bias)
#
# A spiking neuron node carries its reset mode as node metadata {"reset": "hard"|"soft"}.


@dataclass(frozen=True)
class NodeContext:
    """What an export function knows besides the module: its name and per-sample shapes."""

    name: str
    """path of the node, nested names joined by '.'"""
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    dt_s: float


ExportFn = Callable[[nn.Module, NodeContext], nir.NIRNode]
GRAPH_EXPORTERS: dict[type, ExportFn] = {}


def _exports(*types: type):
    def register(fn: ExportFn) -> ExportFn:
        for t in types:
            GRAPH_EXPORTERS[t] = fn
        return fn
    return register


def _f64(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().to(torch.float64).numpy()
    return np.array(x, dtype=np.float64)


def _ints(x) -> np.ndarray:
    return np.array(x, dtype=np.int64).reshape(-1)


def _need_ndim(m: nn.Module, ctx: NodeContext, ndim: int, hint: str) -> None:
    if len(ctx.input_shape) != ndim:
        raise ExportError(f"node {ctx.name!r} ({type(m).__name__}): input of shape {ctx.input_shape} per "
                          f"sample, NIR expects {ndim} dimension(s); {hint}")


@_exports(nn.Linear, QuantLinear)
def _linear(m: nn.Linear, ctx: NodeContext) -> nir.NIRNode:
    _need_ndim(m, ctx, 1, "put an nn.Flatten before it")
    weight = _f64(m.deployed_weight() if isinstance(m, QuantLinear) else m.weight)  # the deployed grid
    if m.bias is None:
        return nir.Linear(weight=weight)
    bias = m.deployed_bias() if isinstance(m, QuantLinear) else m.bias
    return nir.Affine(weight=weight, bias=_f64(bias))


@_exports(Scale)
def _scale(m: Scale, ctx: NodeContext) -> nir.NIRNode:
    return nir.Scale(scale=np.broadcast_to(_f64(m.scale), ctx.input_shape).copy())


@_exports(nn.Conv2d)
def _conv2d(m: nn.Conv2d, ctx: NodeContext) -> nir.NIRNode:
    _need_ndim(m, ctx, 3, "NIR Conv2d takes (C, H, W) per sample")
    if m.padding_mode != "zeros":
        raise ExportError(f"node {ctx.name!r} (Conv2d): padding_mode {m.padding_mode!r} is not expressible "
                          "in NIR; use 'zeros'")
    bias = _f64(m.bias) if m.bias is not None else np.zeros(m.out_channels, dtype=np.float64)
    padding = m.padding if isinstance(m.padding, str) else _ints(m.padding)
    weight = _f64(m.deployed_weight() if isinstance(m, QuantConv2d) else m.weight)  # the deployed grid
    return nir.Conv2d(input_shape=_ints(ctx.input_shape[1:]), weight=weight, stride=_ints(m.stride),
                      padding=padding, dilation=_ints(m.dilation), groups=int(m.groups), bias=bias)


@_exports(nn.Flatten)
def _flatten(m: nn.Flatten, ctx: NodeContext) -> nir.NIRNode:
    nd = len(ctx.input_shape)
    start = m.start_dim % (nd + 1) - 1  # torch dims count the batch; NIR's do not
    end = m.end_dim % (nd + 1) - 1
    if start < 0 or end < start:
        raise ExportError(f"node {ctx.name!r} (Flatten): start_dim={m.start_dim}, end_dim={m.end_dim} on "
                          f"input (batch, {', '.join(map(str, ctx.input_shape))}) flattens the batch "
                          "dimension; use start_dim >= 1")
    return nir.Flatten(input_type={"input": _ints(ctx.input_shape)}, start_dim=start,
                       end_dim=-1 if end == nd - 1 else end)


def _pool_arrays(kernel_size, stride, padding):
    pair = nn.modules.utils._pair
    return dict(kernel_size=_ints(pair(kernel_size)),
                stride=_ints(pair(kernel_size if stride is None else stride)), padding=_ints(pair(padding)))


@_exports(SumPool2d)
def _sumpool(m: SumPool2d, ctx: NodeContext) -> nir.NIRNode:
    _need_ndim(m, ctx, 3, "NIR SumPool2d takes (C, H, W) per sample")
    return nir.SumPool2d(**_pool_arrays(m.kernel_size, m.stride, m.padding))


@_exports(nn.AvgPool2d)
def _avgpool(m: nn.AvgPool2d, ctx: NodeContext) -> nir.NIRNode:
    _need_ndim(m, ctx, 3, "NIR AvgPool2d takes (C, H, W) per sample")
    arrays = _pool_arrays(m.kernel_size, m.stride, m.padding)
    if m.ceil_mode or m.divisor_override is not None or (np.any(arrays["padding"]) and not m.count_include_pad):
        raise ExportError(f"node {ctx.name!r} (AvgPool2d): NIR AvgPool2d divides every window by "
                          f"kh*kw; ceil_mode={m.ceil_mode}, divisor_override={m.divisor_override}, "
                          f"count_include_pad={m.count_include_pad} with padding do not")
    return nir.AvgPool2d(**arrays)


@_exports(Delay)
def _delay(m: Delay, ctx: NodeContext) -> nir.NIRNode:
    return nir.Delay(delay=np.full(ctx.input_shape, m.steps * ctx.dt_s, dtype=np.float64))


@_exports(Threshold)
def _threshold(m: Threshold, ctx: NodeContext) -> nir.NIRNode:
    return nir.Threshold(threshold=np.broadcast_to(_f64(m.threshold), ctx.input_shape).copy())


@_exports(Neuron)
def _neuron(m: Neuron, ctx: NodeContext) -> nir.NIRNode:
    dt, du, dv = ctx.dt_s, m.du, m.dv
    full = lambda x: np.full(m.shape, x, dtype=np.float64)  # noqa: E731
    bias = _f64(m.deployed_bias())
    meta = {"reset": m.reset} if m.spiking else {}
    if m.kind == "IF":
        if np.any(bias != 0):
            raise ExportError(f"node {ctx.name!r} (IF): bias must be 0, NIR IF has no leak voltage; "
                              "export it as a LIF")
        return nir.IF(r=full(1 / dt), v_threshold=full(m.vth), v_reset=full(0.0), metadata=meta)
    if m.kind in ("LIF", "LI"):
        common = dict(tau=full(dt / dv), r=full(1 / dv), v_leak=bias / dv)
    else:
        common = dict(tau_syn=full(dt / du), tau_mem=full(dt / dv), r=full(1 / (du * dv)), v_leak=bias / dv,
                      w_in=full(1.0))
    node_type = {"LIF": nir.LIF, "LI": nir.LI, "CubaLIF": nir.CubaLIF, "CubaLI": nir.CubaLI}[m.kind]
    if m.spiking:
        common.update(v_threshold=full(m.vth), v_reset=full(0.0))
    return node_type(**common, metadata=meta)


@_exports(SpikingGraph)
def _subgraph(m: SpikingGraph, ctx: NodeContext) -> nir.NIRNode:
    nodes, edges = _graph_nodes(m, ctx.dt_s, prefix=ctx.name + ".")
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={}, type_check=False)  # checked from the top


def _exporter(m: nn.Module) -> ExportFn | None:
    for t in type(m).__mro__:
        if t in GRAPH_EXPORTERS:
            return GRAPH_EXPORTERS[t]
    return None


def _out_shape(node: nir.NIRNode):
    types = node.output_type or {}
    return next(iter(types.values()), None)


def _graph_nodes(model: SpikingGraph, dt_s: float, prefix: str = "") -> tuple[dict, list]:
    shapes = model.node_shapes()
    nodes: dict[str, nir.NIRNode] = {model.input_name: nir.Input(input_type=_ints(model.input_shape))}
    for name, module in model.nodes.items():
        ctx = NodeContext(prefix + name, *shapes[name], dt_s)
        fn = _exporter(module)
        if fn is None:
            supported = ", ".join(sorted(t.__name__ for t in GRAPH_EXPORTERS))
            raise ExportError(f"node {ctx.name!r}: {type(module).__name__} has no NIR export (supported: "
                              f"{supported})")
        try:
            node = fn(module, ctx)
        except ExportError:
            raise
        except (ValueError, AssertionError, TypeError) as e:  # nir validates with asserts
            raise ExportError(f"node {ctx.name!r} ({type(module).__name__}): NIR rejected it: {e}") from e
        shape = _out_shape(node)
        if shape is not None and tuple(int(n) for n in np.atleast_1d(shape)) != ctx.output_shape:
            raise ExportError(f"node {ctx.name!r} ({type(module).__name__}): NIR computes output shape "
                              f"{tuple(np.atleast_1d(shape))}, torch {ctx.output_shape}")
        nodes[name] = node
    nodes[model.output_name] = nir.Output(output_type=_ints(model.output_shape))
    return nodes, [(a, b) for a, b in model.edges]


def _resets(model: SpikingGraph) -> set[str]:
    out = set()
    for m in model.modules():
        if isinstance(m, Neuron) and m.spiking:
            out.add(m.reset)
    return out


def _check_finite_parameters(model: nn.Module) -> None:
    """Every trained parameter and buffer is finite: a NaN or inf never reaches a NIR file."""
    for key, t in list(model.named_parameters()) + list(model.named_buffers()):
        flat = t.detach().reshape(-1)
        if t.is_floating_point() and not bool(torch.isfinite(flat).all()):
            bad = flat[~torch.isfinite(flat)][0].item()
            node, _, field = key.removeprefix("nodes.").rpartition(".")
            raise ExportError(f"node {node.replace('.nodes.', '.')!r}: parameter {field!r} holds {bad} "
                              "(NaN or inf); the network cannot be exported")


def _dt(dt_s) -> float:
    try:
        return check_dt(dt_s)
    except NIRValidationError as e:
        raise ExportError(str(e)) from None


def export_graph(model: SpikingGraph, dt_s: float, meta: GraphMeta | dict | None = None) -> nir.NIRGraph:
    """Export ``model`` to a type-checked NIR graph.

    Every node keeps its name; ``model``'s input and output become NIR ``Input`` and
    ``Output`` nodes, a nested :class:`SpikingGraph` a nested ``NIRGraph`` (with its own
    ``Input``/``Output``) that edges name directly, as in ``("fc", "sub")`` and
    ``("sub", "lif")``. ``meta`` is a :class:`GraphMeta` (its ``dt`` must equal
    ``dt_s``), a dict of extra metadata, or ``None``; its ``reset`` is set from the
    populations: ``'hard'``, ``'soft'`` or ``'mixed'`` (the node metadata is per node).
    """
    if not isinstance(model, SpikingGraph):
        raise ExportError(f"export_graph takes a SpikingGraph, got {type(model).__name__}")
    dt_s = _dt(dt_s)
    _check_finite_parameters(model)
    resets = _resets(model)
    reset = resets.pop() if len(resets) == 1 else ("hard" if not resets else "mixed")
    if meta is None or isinstance(meta, dict):
        try:
            meta = GraphMeta(dt_s=float(dt_s), reset=reset, extra=dict(meta or {}))
        except NIRValidationError as e:
            raise ExportError(f"the graph cannot be written with this metadata: {e}") from None
    else:
        if meta.dt_s != dt_s:
            raise ExportError(f"GraphMeta.dt_s={meta.dt_s} disagrees with dt_s={dt_s}")
        meta = dataclasses.replace(meta, reset=reset)
    nodes, edges = _graph_nodes(model, float(dt_s))
    try:
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta.to_nir_metadata(), type_check=True)
    except (ValueError, AssertionError, NotImplementedError) as e:
        raise ExportError(f"the exported graph fails NIR's type check: {e}") from e


def export_policy(policy: Policy, dt_s: float, extra_metadata: dict | None = None) -> nir.NIRGraph:
    """Export a policy: its graph, with dt, T, encoding, decoding and provenance in the metadata."""
    if not isinstance(policy, Policy):
        raise ExportError(f"export_policy takes a Policy, got {type(policy).__name__}")
    extra = dict(extra_metadata or {})
    if policy.provenance is not None:
        extra.setdefault("env_id", policy.provenance.env_id)
        extra.setdefault("agent", policy.provenance.agent)
        extra.setdefault("seed", policy.provenance.seed)
    from spikeloop.train.speck import SpeckNeuron
    from spikeloop.train.xylo import XyloNeuron

    modules = list(policy.network.modules())
    if any(isinstance(m, XyloNeuron) for m in modules):
        # NIR has no multi-spike or bit-shift neuron: the nodes hold the float semantics, this names the chip's
        extra.setdefault("arithmetic", "xylo")
    elif any(isinstance(m, SpeckNeuron) for m in modules):
        # the nodes hold IF neurons on the 8-bit grid; on integers the chip fires at v >= threshold
        extra.setdefault("arithmetic", "speck")
    dt_s = _dt(dt_s)
    try:
        meta = GraphMeta(dt_s=float(dt_s), T=policy.T, encoding=policy.encoding, decoding=policy.decoding,
                         extra=extra)
    except NIRValidationError as e:
        raise ExportError(f"the policy cannot be written as NIR metadata: {e}") from None
    return export_graph(policy.network, float(dt_s), meta)
