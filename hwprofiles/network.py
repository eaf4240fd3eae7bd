"""The network view the mapping checks read: :class:`Layer` and :class:`Network` records.

A network is read into one :class:`Layer` per neuron population, with the synapses that
feed it, in topological order. Two readers build it: :func:`layers_from_plan` from a
compiled plan (dense layers), and :func:`layers_from_nir` from a NIR graph, which reads
convolutional graphs straight from NIR and takes a dense graph's compiled plan from the
caller (hwprofiles sits below the runtime and never compiles a graph itself).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spikeloop.core.errors import ConfigError, NIRValidationError
from spikeloop.core.neuron import neuron_kind

INPUT = "input"
DENSE, CONV2D = "dense", "conv2d"


@dataclass
class Layer:
    """One neuron population and the synapses that feed it.

    ``weights`` (dense layers) maps each source (a layer name or ``"input"``) to its
    ``(neurons, source size)`` matrix; only the non-zero pattern matters here.
    Convolutional layers give shapes instead: ``in_shape`` (c, h, w), ``out_shape``
    (f, h, w), ``kernel`` (kx, ky) and ``kernel_nonzero`` stored weights. A dense layer read
    behind a feature map keeps that map's (pooled) shape as ``in_shape``: on Speck it is a
    convolution whose kernel covers the map (sinabs's conversion of a Linear layer).
    """

    name: str
    kind: str
    neurons: int
    model: str
    """neuron dynamics: IF, LIF, CubaLIF (spiking) or LI, CubaLI (non-spiking readout)"""
    sources: tuple[str, ...]
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    has_bias: bool = False
    in_shape: tuple[int, int, int] | None = None
    out_shape: tuple[int, int, int] | None = None
    kernel: tuple[int, int] | None = None
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    pool: int = 1
    """sum-pooling applied to this layer's output spikes (on its own core, on Speck)"""
    kernel_nonzero: int = 0

    @property
    def spiking(self) -> bool:
        """Whether the layer's neurons spike (IF, LIF, CubaLIF) rather than only integrate."""
        return self.model in ("IF", "LIF", "CubaLIF")

    @property
    def synapses(self) -> int:
        """Stored non-zero weights (for a convolution: the shared kernel)."""
        if self.kind == CONV2D:
            return self.kernel_nonzero
        return int(sum(np.count_nonzero(w) for w in self.weights.values()))

    @property
    def fan_in(self) -> np.ndarray:
        """Non-zero synapses into each neuron (dense layers)."""
        rows = [np.count_nonzero(w, axis=1) for w in self.weights.values()]
        return np.sum(rows, axis=0) if rows else np.zeros(self.neurons, np.int64)

    def speck_geometry(self) -> tuple[int, int, int, int, int, int, int, int]:
        """``(c, kx, ky, f, fx, fy, in_h, in_w)`` of the layer as a Speck convolution."""
        if self.kind == CONV2D:
            c, h, w = self.in_shape
            f, fx, fy = self.out_shape
            return c, self.kernel[0], self.kernel[1], f, fx, fy, h, w
        if self.in_shape is not None:  # behind a feature map: a kernel over the whole map
            c, h, w = self.in_shape
            return c, h, w, self.neurons, 1, 1, h, w
        c = int(sum(w.shape[1] for w in self.weights.values()))
        return c, 1, 1, self.neurons, 1, 1, 1, 1


@dataclass
class Network:
    """What the mapping checks see: input size, layers in topological order, output layer."""

    input_size: int
    layers: list[Layer]
    output: str
    source: str = "network"
    input_events: bool = False
    """the input is a spike encoder's event counts, not graded observation values"""

    def layer(self, name: str) -> Layer:
        """The layer called ``name``."""
        return next(lay for lay in self.layers if lay.name == name)

    def destinations(self, name: str) -> list[Layer]:
        """Layers fed by layer ``name``."""
        return [lay for lay in self.layers if name in lay.sources]


def neuron_model(du, dv, spiking: bool) -> str:
    """Name the dynamics: the contract's own :func:`~spikeloop.core.neuron.neuron_kind`."""
    return neuron_kind(du, dv, spiking)


def layers_from_plan(plan, source: str = "network") -> Network:
    """Mapping view of a compiled network plan (dense layers).

    ``plan`` is duck-typed: ``.populations`` (each with ``name``, ``size``, ``du``,
    ``dv``, ``bias``, ``spiking``), ``.incoming(name)`` (connections with ``src`` and a
    dense ``weight``), ``.input_size`` and ``.output``.
    """
    layers = []
    for p in plan.populations:
        inc = plan.incoming(p.name)
        layers.append(Layer(p.name, DENSE, p.size, neuron_model(p.du, p.dv, p.spiking),
                            tuple(c.src for c in inc), {c.src: np.asarray(c.weight) for c in inc},
                            has_bias=bool(np.any(np.asarray(p.bias) != 0))))
    from spikeloop.core.coding import SpikeEncoding

    return Network(plan.input_size, layers, plan.output, source,
                   input_events=isinstance(getattr(plan, "encoding", None), SpikeEncoding))


def _spike_encoded(graph, plan, source: str) -> bool:
    """Whether the graph's input is a spike encoder's event counts (its plan's, else its metadata's encoding)."""
    from spikeloop.core.coding import SpikeEncoding

    if plan is not None:
        return isinstance(plan.encoding, SpikeEncoding)
    from spikeloop.core.errors import NIRValidationError
    from spikeloop.core.metadata import GraphMeta

    try:
        meta = GraphMeta.from_nir_metadata(graph.metadata, source)
    except NIRValidationError:
        return False  # the fit reads the layers; a malformed encoding is the run's error to report
    return meta is not None and isinstance(meta.encoding, SpikeEncoding)


def has_conv(graph, source: str = "graph") -> bool:
    """Whether the NIR graph (nested subgraphs included) holds a Conv2d node.

    Such a graph is read straight from NIR by :func:`layers_from_nir`; any other graph
    is read from its compiled plan, which the caller passes in.
    """
    import nir

    from spikeloop.core.nir_io import flatten_graph  # imports nir and h5py: only when a graph is read

    nodes, _ = flatten_graph(graph, source)
    return any(isinstance(n, nir.Conv2d) for n in nodes.values())


def layers_from_nir(graph, dt_s: float | None = None, source: str = "graph", plan=None) -> Network:
    """Mapping view of a NIR graph.

    A graph with a Conv2d node is read here, straight from NIR (``dt_s`` names the
    dynamics of CubaLIF/CubaLI nodes). Any other graph is read from ``plan``, the graph
    already compiled by the caller (see :func:`layers_from_plan`); without it a
    :class:`~spikeloop.core.errors.ConfigError` naming ``source`` is raised.
    """
    if has_conv(graph, source):
        net = _conv_network(graph, dt_s, source)
        net.input_events = _spike_encoded(graph, plan, source)
        return net
    if plan is None:
        raise ConfigError(f"{source}: a graph without Conv2d nodes is mapped from its compiled plan; "
                          "compile it (plan_from_nir) and pass plan=")
    return layers_from_plan(plan, source)


# ----------------------------------------------------------------------------- NIR conv reader
def _pair(x) -> tuple[int, int]:
    a = np.asarray(x).reshape(-1)
    return (int(a[0]), int(a[-1]))


def _conv_network(graph, dt, source) -> Network:
    """Read Input -> (Conv2d | Linear | Affine) -> neuron ... -> Output, through Flatten/SumPool2d."""
    import nir

    from spikeloop.core.nir_io import flatten_graph

    nodes, edges = flatten_graph(graph, source)
    pred = {k: [a for a, b in edges if b == k] for k in nodes}
    neuron_types = (nir.IF, nir.LIF, nir.CubaLIF, nir.LI, nir.CubaLI)
    passthrough = (nir.Flatten, nir.SumPool2d)
    inputs = [k for k, v in nodes.items() if isinstance(v, nir.Input)]
    outputs = [k for k, v in nodes.items() if isinstance(v, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise NIRValidationError(f"{source}: expected one Input and one Output node")
    shape_of = {inputs[0]: tuple(int(s) for s in np.asarray(nodes[inputs[0]].input_type["input"]).reshape(-1))}
    layers: dict[str, Layer] = {}
    pools: dict[str, int] = {}
    done, order = {INPUT, *inputs}, []  # _walk_back names the Input node INPUT, whatever its own name
    pending = [k for k in nodes if isinstance(nodes[k], neuron_types)]
    while pending:  # topological: a neuron is read once its synapse's source is
        progressed = False
        for name in list(pending):
            syn = pred[name]
            if len(syn) != 1 or not isinstance(nodes[syn[0]], (nir.Conv2d, nir.Linear, nir.Affine)):
                raise NIRValidationError(f"{source}: neuron node {name!r} must be fed by one Conv2d, "
                                         f"Linear or Affine node, got {syn}")
            src, pool = _walk_back(nodes, pred, syn[0], passthrough, source)
            if src not in done:
                continue
            if pool > 1:
                pools[src] = pool
            layers[name] = _read_layer(nodes, name, syn[0], src, shape_of, pool, dt, source)
            shape_of[name] = layers[name].out_shape or (layers[name].neurons,)
            done.add(name)
            order.append(name)
            pending.remove(name)
            progressed = True
        if not progressed:
            raise NIRValidationError(f"{source}: cannot order neuron nodes {pending} (recurrence?)")
    for src, pool in pools.items():
        if src in layers:
            layers[src].pool = pool
    out_src, _ = _walk_back(nodes, pred, outputs[0], passthrough, source, skip_self=False)
    input_size = int(np.prod(shape_of[inputs[0]]))
    return Network(input_size, [layers[k] for k in order], out_src, source)


def _walk_back(nodes, pred, start, passthrough, source, skip_self=True) -> tuple[str, int]:
    """The neuron or Input behind ``start``'s Flatten/SumPool2d chain, and the pooling met."""
    import nir

    pool, node = 1, (pred[start][0] if pred[start] else None)
    while node is not None and isinstance(nodes[node], passthrough):
        if isinstance(nodes[node], nir.SumPool2d):
            pool *= _pair(nodes[node].kernel_size)[0]
        node = pred[node][0] if pred[node] else None
    if node is None:
        raise NIRValidationError(f"{source}: node {start!r} has no source")
    return INPUT if isinstance(nodes[node], nir.Input) else node, pool


def _read_layer(nodes, name, syn_name, src, shape_of, pool, dt, source) -> Layer:
    """One neuron node and the Conv2d, Linear or Affine node that feeds it, as a :class:`Layer`."""
    import nir

    neuron, syn = nodes[name], nodes[syn_name]
    src_key = INPUT if src == INPUT else src
    src_shape = shape_of[[k for k, v in nodes.items() if isinstance(v, nir.Input)][0]] \
        if src == INPUT else shape_of[src]
    model = _nir_model(neuron, dt)
    if isinstance(syn, nir.Conv2d):
        w = np.asarray(syn.weight)
        f, c, kx, ky = w.shape
        h, wd = (src_shape[-2], src_shape[-1]) if len(src_shape) >= 2 else _pair(syn.input_shape)
        if pool > 1:  # the pooling sits between the source neurons and this convolution
            h, wd = h // pool, wd // pool
        (sx, sy), (px, py) = _pair(syn.stride), _pair(syn.padding if not isinstance(syn.padding, str) else 0)
        dx, dy = _pair(syn.dilation)
        fx = (h + 2 * px - dx * (kx - 1) - 1) // sx + 1
        fy = (wd + 2 * py - dy * (ky - 1) - 1) // sy + 1
        bias = np.asarray(syn.bias) if syn.bias is not None else np.zeros(1)
        return Layer(name, CONV2D, f * fx * fy, model, (src_key,), has_bias=bool(np.any(bias != 0)),
                     in_shape=(c, h, wd), out_shape=(f, fx, fy), kernel=(kx, ky), stride=(sx, sy),
                     padding=(px, py), kernel_nonzero=int(np.count_nonzero(w)))
    w = np.asarray(syn.weight)
    bias = np.asarray(getattr(syn, "bias", 0.0))
    in_shape = None
    if len(src_shape) == 3 and src != INPUT:  # a feature map, flattened (and pooled) on its way here
        c, h, wd = src_shape
        in_shape = (c, h // pool, wd // pool)
    return Layer(name, DENSE, w.shape[0], model, (src_key,), {src_key: w}, in_shape=in_shape,
                 has_bias=bool(np.any(bias != 0)) or bool(np.any(np.asarray(getattr(neuron, "v_leak", 0)) != 0)))


def _nir_model(node, dt) -> str:
    """The dynamics of a NIR neuron node (CubaLIF/CubaLI with ``dt == tau_syn`` have no current state)."""
    import nir

    if isinstance(node, nir.IF):
        return "IF"
    if isinstance(node, (nir.LIF, nir.LI)):
        return "LIF" if isinstance(node, nir.LIF) else "LI"
    spiking = isinstance(node, nir.CubaLIF)
    if dt is not None and np.all(dt / np.asarray(node.tau_syn) == 1):
        return "LIF" if spiking else "LI"
    return "CubaLIF" if spiking else "CubaLI"
