"""Reading and writing NIR files, with one clear error per fault."""
from __future__ import annotations

from pathlib import Path

import h5py
import nir
import numpy as np

from spikeloop.artifacts import atomic_path
from spikeloop.errors import NIRValidationError


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
