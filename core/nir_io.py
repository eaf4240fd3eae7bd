"""Reading and writing NIR files, with one clear error per fault."""
from __future__ import annotations

from pathlib import Path

import h5py
import nir
import numpy as np

from spikeloop.core.artifacts import atomic_path
from spikeloop.core.errors import NIRValidationError
from spikeloop.core.graphs import inline_graph
from spikeloop.core.metadata import GraphMeta, check_dt


def write_graph(path: str | Path, graph: nir.NIRGraph) -> Path:
    """Atomically write ``graph`` with ``nir.write``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        nir.write(tmp, graph)
    return path


MAX_NESTING = 32
"""the deepest nesting of subgraphs a NIR file may have"""
MAX_NODES = 100_000
"""the most node groups a NIR file may hold"""
MAX_VALUES = 50_000_000
"""the most values one array of a NIR file may hold (a 7,000 x 7,000 weight matrix)"""
MAX_TOTAL_VALUES = 200_000_000
"""the most values all arrays of a NIR file may hold together"""
STRING_FIELDS = {"Conv1d": {"padding"}, "Conv2d": {"padding"}}
"""node fields that NIR allows to be a string ('same', 'valid')"""
SAME_SHAPE = {"LIF": ("tau", "r", "v_leak", "v_threshold", "v_reset"), "LI": ("tau", "r", "v_leak"),
              "CubaLIF": ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"),
              "CubaLI": ("tau_syn", "tau_mem", "r", "v_leak", "w_in"), "IF": ("r", "v_threshold", "v_reset")}
"""per neuron type, the parameters that hold one value per neuron (NIR asserts equal shapes)"""


def _path(path) -> Path:
    if isinstance(path, bytes):
        path = path.decode(errors="replace")
    if not isinstance(path, (str, Path)):
        raise NIRValidationError(f"{path!r} is not a path to a NIR file")
    return Path(path)


def read_graph(path: str | Path) -> nir.NIRGraph:
    """Read a NIR file; raise :class:`NIRValidationError` naming the file and the fault.

    The file is checked as HDF5 before NIR reads it (:func:`check_nir_file`), and the
    graph after: spikeloop's metadata is parsed and validated here, so that every fault
    of the file is reported with its name.
    """
    path = _path(path)
    check_nir_file(path)
    try:
        graph = nir.read(path)
    except NIRValidationError:
        raise
    except RecursionError:
        raise NIRValidationError(f"{path}: malformed NIR graph: nested too deeply to read") from None
    except Exception as e:  # nir raises ValueError/KeyError/AssertionError for malformed graphs
        raise NIRValidationError(f"{path}: malformed NIR graph: {type(e).__name__}: {e}") from e
    check_graph(graph, str(path))
    return graph


def read_metadata(path: str | Path) -> GraphMeta | None:
    """The spikeloop metadata of a NIR file (None for a file without), parsed and validated, naming the file.

    Reads only the top-level metadata group (after :func:`check_nir_file`), so that a
    malformed metadata record is reported with the file's name whatever reads the graph.
    """
    path = _path(path)
    check_nir_file(path)
    try:
        with h5py.File(path, "r") as f:
            group = f["node"].get("metadata")
            md = {} if group is None else {k: group[k][()] for k in group}
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise NIRValidationError(f"{path}: unreadable or truncated NIR/HDF5 file ({e})") from e
    return GraphMeta.from_nir_metadata(md, str(path))


def check_graph(graph, source: str) -> None:
    """A NIR graph object as read: a graph at the top, numeric parameters, valid spikeloop metadata."""
    if not isinstance(graph, nir.NIRGraph):
        raise NIRValidationError(f"{source}: expected a nir.NIRGraph at the top, got {type(graph).__name__}")
    GraphMeta.from_nir_metadata(graph.metadata, source)
    stack = [(graph, "")]
    while stack:
        g, prefix = stack.pop()
        for name, node in g.nodes.items():
            if isinstance(node, nir.NIRGraph):
                stack.append((node, f"{prefix}{name}."))
                continue
            kind = type(node).__name__
            for k, v in vars(node).items():
                if k in ("metadata", "input_type", "output_type") or v is None:
                    continue
                if isinstance(v, str) and k in STRING_FIELDS.get(kind, ()):
                    continue
                a = np.asarray(v) if not isinstance(v, dict) else None
                if a is None or a.dtype.kind not in "biuf":
                    raise NIRValidationError(f"{source}: node {prefix + name!r} ({kind}) field {k!r} holds "
                                             f"{_what(a if a is not None else v)}, not numbers")


def _what(a) -> str:
    if isinstance(a, np.ndarray):
        return {"S": "strings", "U": "strings", "O": "objects", "c": "complex numbers", "V": "records"}.get(
            a.dtype.kind, f"values of dtype {a.dtype}")
    return type(a).__name__


def _text(value) -> str | None:
    """A scalar string dataset's value as text, else None."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return value if isinstance(value, str) else None


def check_nir_file(path: str | Path) -> None:
    """Check a NIR file as HDF5, before anything reads it: one :class:`NIRValidationError` per fault.

    Refused: a path that is no file, a file that is not HDF5, links (a group that contains
    itself or another node, soft and external links), nesting deeper than
    :data:`MAX_NESTING`, more than :data:`MAX_NODES` nodes, a node without a string
    ``type`` or of a type spikeloop does not know, parameters that are not numbers, arrays
    larger than :data:`MAX_VALUES` (checked on the declared shape: nothing is read),
    neuron parameters of different shapes, edges that are not pairs of names, and
    Input/Output shapes that are not positive integers.
    """
    path = _path(path)
    if path.is_dir():
        raise NIRValidationError(f"{path}: is a directory, not a NIR file")
    if not path.is_file():
        raise NIRValidationError(f"{path}: no such NIR file")
    try:
        with h5py.File(path, "r") as f:
            if not isinstance(f.get("node", getlink=True), h5py.HardLink) or not isinstance(f["node"], h5py.Group):
                raise NIRValidationError(f"{path}: HDF5 file has no 'node' group; not a NIR file")
            _check_groups(f["node"], str(path))
    except NIRValidationError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError, TypeError) as e:
        raise NIRValidationError(f"{path}: unreadable or truncated NIR/HDF5 file ({e})") from e


def _check_groups(top: h5py.Group, path: str) -> None:
    """Walk the node groups iteratively (no recursion), checking every one."""
    seen: set[int] = set()
    total = 0
    stack = [(top, "", (), 0)]
    while stack:
        group, name, ancestors, depth = stack.pop()
        where = f"{path}: node {name!r}" if name else f"{path}: the top-level node"
        addr = h5py.h5o.get_info(group.id).addr
        if addr in ancestors:
            raise NIRValidationError(f"{where} (HDF5 group {group.name}) contains itself: the file links a "
                                     "group into its own subtree")
        if addr in seen:
            raise NIRValidationError(f"{where} (HDF5 group {group.name}) is the same group as another node: "
                                     "the file links one group twice")
        seen.add(addr)
        if depth > MAX_NESTING:
            raise NIRValidationError(f"{path}: subgraphs nested more than {MAX_NESTING} levels deep (at "
                                     f"{name!r})")
        if len(seen) > MAX_NODES:
            raise NIRValidationError(f"{path}: more than {MAX_NODES:,} nodes")
        kind = _node_type(group, where)
        if kind not in KNOWN_TYPES:
            raise NIRValidationError(f"{where} has unknown NIR type {kind!r}; supported: "
                                     f"{', '.join(sorted(KNOWN_TYPES))}")
        if not name and kind != "NIRGraph":
            raise NIRValidationError(f"{where} is a {kind}, not a NIRGraph")
        shapes = {}
        for key in group:
            link = group.get(key, getlink=True)
            if not isinstance(link, h5py.HardLink):
                raise NIRValidationError(f"{where}: {key!r} is a {type(link).__name__}; NIR files hold no links")
            if key == "type":
                continue
            item = group[key]
            if kind == "NIRGraph" and key == "nodes":
                if not isinstance(item, h5py.Group):
                    raise NIRValidationError(f"{where}: 'nodes' must be a group of nodes")
                for child in item:
                    if not isinstance(item.get(child, getlink=True), h5py.HardLink):
                        raise NIRValidationError(f"{where}: node {child!r} is a link; NIR files hold no links")
                    sub = item[child]
                    cname = f"{name}.{child}" if name else child
                    if not isinstance(sub, h5py.Group):
                        raise NIRValidationError(f"{path}: node {cname!r} is not a group (HDF5 {sub.name})")
                    stack.append((sub, cname, ancestors + (addr,), depth + 1))
                continue
            if key == "metadata":
                if not isinstance(item, h5py.Group):
                    raise NIRValidationError(f"{where}: 'metadata' must be a group")
                for mk in item:
                    if not isinstance(item.get(mk, getlink=True), h5py.HardLink) \
                            or not isinstance(item[mk], h5py.Dataset):
                        raise NIRValidationError(f"{where}: metadata {mk!r} must be a plain value")
                    total += _count(item[mk], f"{where} metadata {mk!r}")
                continue
            if not isinstance(item, h5py.Dataset):
                raise NIRValidationError(f"{where} field {key!r} is a group, expected an array of numbers")
            total += _count(item, f"{where} field {key!r}")
            if kind == "NIRGraph" and key == "edges":
                _check_edges(item, where)
                continue
            if item.dtype.kind not in "biuf" and not (key in STRING_FIELDS.get(kind, ())
                                                       and _text(item[()]) is not None):
                raise NIRValidationError(f"{where} ({kind}) field {key!r} holds "
                                         f"{_what(np.empty(0, item.dtype))}, not numbers")
            shapes[key] = item.shape
            if kind in ("Input", "Output") and key == "shape":
                shape = np.asarray(item[()]).reshape(-1)
                if item.dtype.kind not in "iu" or shape.size == 0 or np.any(shape < 1):
                    raise NIRValidationError(f"{where} ({kind}) field 'shape' must list positive integers, got "
                                             f"{shape.tolist()}")
        if total > MAX_TOTAL_VALUES:
            raise NIRValidationError(f"{path}: the arrays hold more than {MAX_TOTAL_VALUES:,} values together")
        same = [k for k in SAME_SHAPE.get(kind, ()) if k in shapes]
        if len({shapes[k] for k in same}) > 1:
            raise NIRValidationError(f"{where} ({kind}): its parameters need one shape, got "
                                     + ", ".join(f"{k} {shapes[k]}" for k in same))


def _node_type(group: h5py.Group, where: str) -> str:
    if "type" not in group or not isinstance(group["type"], h5py.Dataset):
        raise NIRValidationError(f"{where} has no 'type'; not a NIR node")
    ds = group["type"]
    kind = _text(ds[()]) if ds.dtype.kind in "SOU" and ds.shape == () else None
    if kind is None:
        raise NIRValidationError(f"{where}: 'type' must be a string naming a NIR node type, got "
                                 f"{'an array' if ds.shape != () else repr(ds[()])} of dtype {ds.dtype}")
    return kind


def _count(ds: h5py.Dataset, where: str) -> int:
    n = int(np.prod(ds.shape, dtype=np.float64)) if ds.shape is not None else 0
    if n > MAX_VALUES:
        raise NIRValidationError(f"{where} declares {n:,} values (shape {ds.shape}), more than the limit "
                                 f"{MAX_VALUES:,}")
    return n


def _check_edges(ds: h5py.Dataset, where: str) -> None:
    if ds.shape == (0,) or (len(ds.shape) == 2 and ds.shape[0] == 0):
        return
    if len(ds.shape) != 2 or ds.shape[1] != 2 or ds.dtype.kind not in "SOU":
        raise NIRValidationError(f"{where}: 'edges' must be pairs of node names, got an array of shape "
                                 f"{ds.shape} and dtype {ds.dtype}")
    for a, b in ds[()]:
        if _text(a) is None or _text(b) is None:
            raise NIRValidationError(f"{where}: 'edges' must be pairs of node names, got ({a!r}, {b!r})")


KNOWN_TYPES = {"Affine", "AvgPool2d", "Conv1d", "Conv2d", "CubaLI", "CubaLIF", "Delay", "Flatten", "I",
               "IF", "Input", "LI", "LIF", "Linear", "NIRGraph", "Output", "Scale", "SumPool2d",
               "Threshold"}


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
    try:
        dt_s = None if dt_s is None else check_dt(dt_s)
        meta = GraphMeta.from_nir_metadata(graph.metadata, source)
        if meta is None:
            md = graph.metadata if isinstance(graph.metadata, dict) else {}
            plain = md.get("dt")
            if dt_s is None and plain is None:
                raise NIRValidationError(
                    "the graph carries no time step ('dt' metadata); pass it explicitly "
                    "(--dt SECONDS). snnTorch writes none and assumes 1e-4 s")
            if dt_s is None:
                a = np.asarray(plain)
                value = a.reshape(-1)[0].item() if a.size == 1 and a.dtype.kind in "biuf" else plain
                dt_s = check_dt(value, "the metadata 'dt'")
            meta = GraphMeta(dt_s=dt_s)
        elif dt_s is not None:
            meta.dt_s = dt_s
    except NIRValidationError as e:
        msg = str(e)
        raise NIRValidationError(msg if msg.startswith(f"{source}:") else f"{source}: {msg}") from None
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
