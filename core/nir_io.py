"""Reading and writing NIR files, with one clear error per fault."""
from __future__ import annotations

from pathlib import Path

import h5py
import nir
import numpy as np

from spikeloop.core.artifacts import atomic_path
from spikeloop.core.errors import NIRValidationError
from spikeloop.core.graphs import inline_graph
from spikeloop.core.metadata import GraphMeta


def write_graph(path: str | Path, graph: nir.NIRGraph) -> Path:
    """Atomically write ``graph`` with ``nir.write``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        nir.write(tmp, graph)
    return path


def read_graph(path: str | Path) -> nir.NIRGraph:
    """Read a NIR file; raise :class:`NIRValidationError` naming the file and the fault."""
    path = Path(path)
    if not path.is_file():
        raise NIRValidationError(f"{path}: no such NIR file")
    try:
        with h5py.File(path, "r") as f:
            if "node" not in f:
                raise NIRValidationError(f"{path}: HDF5 file has no 'node' group; not a NIR file")
            node_type = f["node"].get("type")
            if node_type is None:
                raise NIRValidationError(f"{path}: the top-level node has no 'type'; not a NIR graph")
            unknown = _unknown_types(f["node"])
            if unknown:
                name, kind = unknown[0]
                raise NIRValidationError(
                    f"{path}: node {name!r} has unknown NIR type {kind!r}; supported: {', '.join(sorted(KNOWN_TYPES))}")
    except NIRValidationError:
        raise
    except (OSError, KeyError) as e:
        raise NIRValidationError(f"{path}: unreadable or truncated NIR/HDF5 file ({e})") from e
    try:
        return nir.read(path)
    except NIRValidationError:
        raise
    except Exception as e:  # nir raises ValueError/KeyError/AssertionError for malformed graphs
        raise NIRValidationError(f"{path}: malformed NIR graph: {type(e).__name__}: {e}") from e


KNOWN_TYPES = {"Affine", "AvgPool2d", "Conv1d", "Conv2d", "CubaLI", "CubaLIF", "Delay", "Flatten", "I",
               "IF", "Input", "LI", "LIF", "Linear", "NIRGraph", "Output", "Scale", "SumPool2d",
               "Threshold"}


def _unknown_types(group, prefix: str = "") -> list[tuple[str, str]]:
    out = []
    kind = group["type"][()]
    kind = kind.decode() if isinstance(kind, bytes) else str(kind)
    if kind not in KNOWN_TYPES:
        out.append((prefix or "<graph>", kind))
    if kind == "NIRGraph" and "nodes" in group:
        for name, child in group["nodes"].items():
            out += _unknown_types(child, f"{prefix}.{name}" if prefix else name)
    return out


def node_params(node: nir.NIRNode) -> dict[str, np.ndarray]:
    """The numeric parameters of a node (for validation and summaries)."""
    out = {}
    for k, v in vars(node).items():
        if k in ("metadata", "input_type", "output_type"):
            continue
        if isinstance(v, (np.ndarray, float, int)) and not isinstance(v, bool):
            out[k] = np.asarray(v)
    return out


def graph_meta(graph: nir.NIRGraph, dt_s: float | None, source: str) -> GraphMeta:
    """spikeloop metadata of ``graph``, with ``dt_s`` taken from the argument, metadata, or an error."""
    meta = GraphMeta.from_nir_metadata(graph.metadata, source)
    if meta is None:
        plain = (graph.metadata or {}).get("dt")
        if dt_s is None and plain is None:
            raise NIRValidationError(
                f"{source}: the graph carries no time step ('dt' metadata); pass it explicitly "
                "(--dt SECONDS). snnTorch writes none and assumes 1e-4 s")
        meta = GraphMeta(dt_s=float(dt_s if dt_s is not None else np.asarray(plain)))
    elif dt_s is not None:
        meta.dt_s = float(dt_s)
    if not np.isfinite(meta.dt_s) or meta.dt_s <= 0:
        raise NIRValidationError(f"{source}: dt must be a positive number of seconds, got {meta.dt_s}")
    return meta


def check_finite(graph: nir.NIRGraph, source: str) -> None:
    """One error naming the node and parameter that holds a NaN or inf."""
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            check_finite(node, f"{source}: subgraph {name!r}")
            continue
        for k, v in node_params(node).items():
            if v.dtype.kind in "fc" and not np.all(np.isfinite(v)):
                bad = v[~np.isfinite(v)].reshape(-1)[0]
                raise NIRValidationError(f"{source}: node {name!r} parameter {k!r} contains {bad} "
                                         "(NaN or inf)")


def _nir_subgraph(node):
    if not isinstance(node, nir.NIRGraph):
        return None
    ins = [k for k, v in node.nodes.items() if isinstance(v, nir.Input)]
    outs = [k for k, v in node.nodes.items() if isinstance(v, nir.Output)]
    return node.nodes, node.edges, ins, outs


def flatten_graph(graph: nir.NIRGraph, source: str) -> tuple[dict, list]:
    """Inline nested subgraphs: nodes ``sub.x``; edges into/out of ``sub`` (or ``sub.<io>``)
    are rewired to the subgraph's Input/Output neighbours."""
    return inline_graph(graph.nodes, graph.edges, _nir_subgraph, source)
