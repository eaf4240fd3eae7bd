"""Human-readable description of a NIR graph and of the Lava processes it compiles to."""
from __future__ import annotations

import nir
import numpy as np

from spikeloop.core.metadata import GraphMeta
from spikeloop.core.nir_io import node_params
from spikeloop.runtime.plan import INPUT, NetworkPlan


def _summary(a: np.ndarray) -> str:
    a = np.asarray(a)
    if a.size == 1:
        return f"{a.reshape(-1)[0]:.4g}"
    if a.size and np.all(a == a.reshape(-1)[0]):
        return f"{a.reshape(-1)[0]:.4g} x{a.shape}"
    return f"{a.shape} in [{a.min():.4g}, {a.max():.4g}]"


def describe_graph(graph: nir.NIRGraph, indent: str = "") -> list[str]:
    """Nodes (type, shapes, parameter summary), edges and metadata of a NIR graph."""
    lines = []
    for name, node in graph.nodes.items():
        shapes = ""
        it, ot = getattr(node, "input_type", None), getattr(node, "output_type", None)
        if it and ot:
            shapes = f" {list(map(lambda v: tuple(np.asarray(v).tolist()), it.values()))} -> " \
                     f"{list(map(lambda v: tuple(np.asarray(v).tolist()), ot.values()))}"
        lines.append(f"{indent}{name}: {type(node).__name__}{shapes}")
        if isinstance(node, nir.NIRGraph):
            lines += describe_graph(node, indent + "    ")
            continue
        for k, v in node_params(node).items():
            lines.append(f"{indent}    {k} = {_summary(v)}")
    lines.append(f"{indent}edges: " + ", ".join(f"{a}->{b}" for a, b in graph.edges))
    return lines


def describe_lava(plan: NetworkPlan) -> list[str]:
    """The Lava processes of the per-node mapping, and the fused alternative."""
    lines = [f"Lava, per-node mapping (one process per NIR node; period {plan.period} steps = "
             f"T {plan.T} + latency {plan.latency}):",
             f"  host input      HostInput/SequenceInput ({plan.input_size},) "
             f"{'graded payload' if plan.input_graded else 'binary spikes'}"]
    depth = plan.depths()
    for c in plan.connections:
        proc = (f"CountingDelayDense (+{c.delay} steps)" if c.delay else
                f"CountingConv kernel {tuple(c.weight.shape)} stride {c.conv.stride}" if c.conv is not None
                else "CountingDense")
        lines.append(f"  {c.name:15s} {proc} {c.shape}  {c.src} -> {c.dst}"
                     f"{'  (graded)' if c.src == INPUT and plan.input_graded else ''}"
                     f"{f'  graph delay {c.graph_delay}' if c.graph_delay else ''}")
    for p in plan.populations:
        if p.lava_lif:
            proc = "CountingLIFReset (Lava LIFReset)"
        else:
            proc = "CubaNeuron (spikeloop)" + ("" if p.spiking else ", non-spiking")
        lines.append(f"  {p.name:15s} {proc} {p.shape} du={_decay_text(p.du)} dv={_decay_text(p.dv)} "
                     f"vth={p.vth} reset={p.reset} depth={depth[p.name]}")
    lines.append("Lava, fused mapping: one FusedNetwork process (bit-exact with per-node)")
    return lines


def _decay_text(d: np.ndarray) -> str:
    """One decay, or the range of per-neuron decays (never one of them shown as if for all)."""
    lo, hi = float(np.min(d)), float(np.max(d))
    return f"{lo:.4g}" if lo == hi else f"{lo:.4g}..{hi:.4g} (per neuron)"


def describe(graph: nir.NIRGraph, plan: NetworkPlan | None, source: str) -> str:
    meta = GraphMeta.from_nir_metadata(graph.metadata, source)
    out = [f"{source}: NIR graph, {len(graph.nodes)} nodes, {len(graph.edges)} edges"]
    out += describe_graph(graph, "  ")
    if meta is not None:
        out.append(f"  metadata: dt={meta.dt_s:g} s, reset={meta.reset}, T={meta.T}, "
                   f"encoding={meta.encoding.describe() if meta.encoding else None}, "
                   f"decoding={meta.decoding}")
    else:
        out.append(f"  metadata: {dict(graph.metadata or {})} (no spikeloop metadata)")
    if meta is None or meta.T is None:
        out.append("  window: T not set (a streaming graph); closed-loop runs need --T, the Lava timing "
                   "below is shown for T = 1")
    if plan is not None:
        out += describe_lava(plan)
    return "\n".join(out)
