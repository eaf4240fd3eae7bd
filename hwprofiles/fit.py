"""Mapping checks: does a network fit a chip, and where does each layer go?

A network is read into :class:`Layer` records (one per neuron population, with the
synapses that feed it) and checked against a profile's limits by small named rules.
Every rule runs; a rule whose limit the profile does not publish is reported as
"not checked", never as a silent pass. All violations are then raised together as
one :class:`~spikeloop.core.errors.HardwareConstraintError` naming rule, layer, measured
value, limit and excess.

Three mapping models, chosen by the profile's ``mapping``:

- ``cores`` (Loihi, Loihi 2, TrueNorth, SpiNNaker 2): each layer is split evenly over
  the fewest identical cores on which every per-core limit that is known holds
  (neurons, synapse memory, input axons); output axons are counted afterwards, as
  (neuron, destination core) pairs. Synapse memory is a lower bound: one stored
  weight of the deployed width per non-zero synapse; encoding overhead is not modelled.
- ``xylo``: input channels -> one pool of hidden neurons -> output neurons, with a
  fan-in limit per neuron and a total weight budget.
- ``speck``: one layer per convolutional core, with the kernel- and neuron-memory
  formulas of the vendor's constraint tables and a matching of layers onto the nine
  cores of unequal memory. A dense layer maps as a convolution whose kernel covers its
  whole input: ``c`` = input features as channels, a 1 x 1 kernel, ``f`` = neurons.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from spikeloop.core.errors import HardwareConstraintError, NIRValidationError
from spikeloop.hwprofiles.profile import Profile

DEPLOYED_WEIGHT_BITS = 8
"""spikeloop deploys signed 8-bit weight mantissas (|m| <= 127, ``spikeloop.runtime.fixed_point``)"""
INPUT = "input"
DENSE, CONV2D = "dense", "conv2d"
OK, VIOLATED, NOT_CHECKED = "ok", "violated", "not checked"


# ----------------------------------------------------------------------------- network records
@dataclass
class Layer:
    """One neuron population and the synapses that feed it.

    ``weights`` (dense layers) maps each source (a layer name or ``"input"``) to its
    ``(neurons, source size)`` matrix; only the non-zero pattern matters here.
    Convolutional layers give shapes instead: ``in_shape`` (c, h, w), ``out_shape``
    (f, h, w), ``kernel`` (kx, ky) and ``kernel_nonzero`` stored weights.
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
        c = int(sum(w.shape[1] for w in self.weights.values()))
        return c, 1, 1, self.neurons, 1, 1, 1, 1


@dataclass
class Network:
    """What the mapping checks see: input size, layers in topological order, output layer."""

    input_size: int
    layers: list[Layer]
    output: str
    source: str = "network"

    def layer(self, name: str) -> Layer:
        return next(lay for lay in self.layers if lay.name == name)

    def destinations(self, name: str) -> list[Layer]:
        """Layers fed by layer ``name``."""
        return [lay for lay in self.layers if name in lay.sources]


def neuron_model(du, dv, spiking: bool) -> str:
    """Name the dynamics: no current state when ``du == 1``, no leak when ``dv == 0``."""
    du, dv = np.asarray(du), np.asarray(dv)
    no_current = bool(np.all(du == 1))
    if not spiking:
        return "LI" if no_current else "CubaLI"
    if not no_current:
        return "CubaLIF"
    return "IF" if bool(np.all(dv == 0)) else "LIF"


def layers_from_plan(plan, source: str = "network") -> Network:
    """Mapping view of a compiled :class:`~spikeloop.runtime.plan.NetworkPlan` (dense layers)."""
    layers = []
    for p in plan.populations:
        inc = plan.incoming(p.name)
        layers.append(Layer(p.name, DENSE, p.size, neuron_model(p.du, p.dv, p.spiking),
                            tuple(c.src for c in inc), {c.src: np.asarray(c.weight) for c in inc},
                            has_bias=bool(np.any(np.asarray(p.bias) != 0))))
    return Network(plan.input_size, layers, plan.output, source)


def layers_from_nir(graph, dt: float | None = None, source: str = "graph") -> Network:
    """Mapping view of a NIR graph; convolutional graphs are read here, dense ones via the compiler."""
    import nir

    if not any(isinstance(n, nir.Conv2d) for n in graph.nodes.values()):
        from spikeloop.runtime.compiler import plan_from_nir

        return layers_from_plan(plan_from_nir(graph, dt=dt, source=source), source)
    return _conv_network(graph, dt, source)


def _pair(x) -> tuple[int, int]:
    a = np.asarray(x).reshape(-1)
    return (int(a[0]), int(a[-1]))


def _conv_network(graph, dt, source) -> Network:
    """Read Input -> (Conv2d | Linear | Affine) -> neuron ... -> Output, through Flatten/SumPool2d."""
    import nir

    nodes = graph.nodes
    pred = {k: [a for a, b in graph.edges if b == k] for k in nodes}
    neuron_types = (nir.IF, nir.LIF, nir.CubaLIF, nir.LI, nir.CubaLI)
    passthrough = (nir.Flatten, nir.SumPool2d)
    inputs = [k for k, v in nodes.items() if isinstance(v, nir.Input)]
    outputs = [k for k, v in nodes.items() if isinstance(v, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise NIRValidationError(f"{source}: expected one Input and one Output node")
    shape_of = {inputs[0]: tuple(int(s) for s in np.asarray(nodes[inputs[0]].input_type["input"]).reshape(-1))}
    layers: dict[str, Layer] = {}
    pools: dict[str, int] = {}
    done, order = set(inputs), []
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
    return Layer(name, DENSE, w.shape[0], model, (src_key,), {src_key: w},
                 has_bias=bool(np.any(bias != 0)) or bool(np.any(np.asarray(getattr(neuron, "v_leak", 0)) != 0)))


def _nir_model(node, dt) -> str:
    import nir

    if isinstance(node, nir.IF):
        return "IF"
    if isinstance(node, (nir.LIF, nir.LI)):
        return "LIF" if isinstance(node, nir.LIF) else "LI"
    spiking = isinstance(node, nir.CubaLIF)
    if dt is not None and np.all(dt / np.asarray(node.tau_syn) == 1):
        return "LIF" if spiking else "LI"
    return "CubaLIF" if spiking else "CubaLI"


# ----------------------------------------------------------------------------- results
@dataclass
class Violation:
    """One broken limit: rule, layer (or core), measured value, limit and excess."""

    rule: str
    layer: str
    what: str
    value: float | str
    limit: float | str
    unit: str = ""
    excess: float | None = None
    hint: str = ""

    def message(self) -> str:
        if self.excess is not None:
            body = (f"{self.what} {_num(self.value)} {self.unit} > limit {_num(self.limit)} {self.unit} "
                    f"(excess {_num(self.excess)} {self.unit})")
        else:
            body = f"{self.what} {self.value}; allowed: {self.limit}"
        return f"[{self.rule}] layer {self.layer!r}: " + " ".join(body.split()) + \
            (f". {self.hint}" if self.hint else "")


def _num(x) -> str:
    return f"{x:,}" if isinstance(x, int) else (f"{x:,.4g}" if isinstance(x, float) else str(x))


@dataclass
class RuleResult:
    rule: str
    status: str
    detail: str = ""
    violations: list[Violation] = field(default_factory=list)


@dataclass
class FitReport:
    """Outcome of all rules for one profile, with the placement they were checked on."""

    profile: str
    title: str
    mapping: str
    source: str
    results: list[RuleResult]
    cores_used: int | None = None
    cores_available: int | None = None
    per_core: list[dict] = field(default_factory=list)
    resources: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def violations(self) -> list[Violation]:
        return [v for r in self.results for v in r.violations]

    @property
    def not_checked(self) -> list[RuleResult]:
        return [r for r in self.results if r.status == NOT_CHECKED]

    @property
    def fits(self) -> bool | None:
        """False on any violation; None when no rule could be checked; else True."""
        if self.violations:
            return False
        return None if all(r.status == NOT_CHECKED for r in self.results) else True

    def verdict(self) -> str:
        """'yes', 'no (N violations)' or 'unknown', with the count of rules not checked."""
        nc = len(self.not_checked)
        tail = f", {nc} rule{'s' * (nc != 1)} not checked" if nc and self.fits is not None else ""
        if self.fits is None:
            return "unknown (no limit published)"
        if self.fits:
            return "yes" + tail
        n = len(self.violations)
        return f"no ({n} violation{'s' * (n != 1)}{tail})"

    def error(self) -> HardwareConstraintError:
        """One error listing every violation (rule, layer, value, limit, excess)."""
        lines = [f"{self.source} does not fit {self.profile} ({self.title}): "
                 f"{len(self.violations)} violation(s)"]
        lines += [f"  - {v.message()}" for v in self.violations]
        if self.not_checked:
            lines.append("  not checked: " + "; ".join(f"{r.rule} ({r.detail})" for r in self.not_checked))
        return HardwareConstraintError("\n".join(lines))

    def raise_if_violated(self) -> "FitReport":
        if self.violations:
            raise self.error()
        return self

    def to_dict(self) -> dict:
        return {"profile": self.profile, "title": self.title, "mapping": self.mapping, "fits": self.fits,
                "verdict": self.verdict(), "cores_used": self.cores_used,
                "cores_available": self.cores_available, "per_core": self.per_core,
                "resources": self.resources, "notes": self.notes,
                "violations": [asdict(v) | {"message": v.message()} for v in self.violations],
                "rules": [{"rule": r.rule, "status": r.status, "detail": r.detail} for r in self.results]}


# ----------------------------------------------------------------------------- rules
@dataclass(frozen=True)
class Rule:
    """A named design rule: the profile constants it needs and the check itself."""

    name: str
    needs: tuple[str | tuple[str, ...], ...]
    """profile constants; a tuple entry is satisfied by the first of its names that the profile lists"""
    check: Callable[["_Ctx"], list[Violation]]
    placement: bool = False
    """needs the core placement (not checked when it could not be made)"""


@dataclass
class _Ctx:
    net: Network
    profile: Profile
    placement: list[dict] | None = None
    placement_note: str = ""

    def limit(self, name: str | tuple[str, ...]):
        """The known value of constant ``name`` (or of the first listed of several names)."""
        return self.profile.value(_listed(self.profile, name))


def _listed(profile: Profile, name: str | tuple[str, ...]) -> str:
    if isinstance(name, str):
        return name
    return next((n for n in name if profile.get(n) is not None), name[0])


def _rule_weight_bits(ctx):
    lim = ctx.limit("weight_bits")
    if DEPLOYED_WEIGHT_BITS <= lim:
        return []
    return [Violation("weight_bits", lay.name, "weight precision", DEPLOYED_WEIGHT_BITS, lim, "bits",
                      DEPLOYED_WEIGHT_BITS - lim, "spikeloop deploys 8-bit weight mantissas")
            for lay in ctx.net.layers if lay.synapses]


def _rule_neuron_models(ctx):
    allowed = ctx.limit("neuron_models")
    out = []
    for lay in ctx.net.layers:
        if lay.model not in allowed:
            hint = ("use a spiking readout and decode spike counts on the host" if not lay.spiking else
                    "retrain without synaptic current decay (du = 1)" if lay.model == "CubaLIF" else "")
            kind = "spiking" if lay.spiking else "non-spiking"
            out.append(Violation("neuron_models", lay.name, "neuron model",
                                 f"{lay.model} ({kind})", ", ".join(allowed), hint=hint))
    return out


def _over(rule, layer, what, value, limit, unit, hint="") -> list[Violation]:
    return [Violation(rule, layer, what, value, limit, unit, value - limit, hint)] if value > limit else []


# cores mapping ------------------------------------------------------------------
def _rule_cores(ctx):
    return _over("cores", "<network>", "cores used", len(ctx.placement), ctx.limit("cores"), "cores",
                 "split the network over several chips (not modelled) or shrink the layers")


def _per_core_rule(constant, key, unit, what):
    def check(ctx):
        lim = ctx.limit(constant)
        rule = _listed(ctx.profile, constant)
        out = []
        for core in ctx.placement:
            out += _over(rule, core["layer"], f"{what} on core {core['core']}", core[key], lim, unit)
        return out
    return check


def _rule_neurons_per_chip(ctx):
    return _over("neurons_per_chip", "<network>", "neurons", sum(lay.neurons for lay in ctx.net.layers),
                 ctx.limit("neurons_per_chip"), "neurons")


def _rule_synapses_per_chip(ctx):
    return _over("synapses_per_chip", "<network>", "synapses", sum(lay.synapses for lay in ctx.net.layers),
                 ctx.limit("synapses_per_chip"), "synapses")


# xylo mapping -------------------------------------------------------------------
def _xylo_hidden(net: Network) -> list[Layer]:
    return [lay for lay in net.layers if lay.name != net.output]


def _rule_input_channels(ctx):
    return _over("input_channels", INPUT, "input channels", ctx.net.input_size, ctx.limit("input_channels"),
                 "channels", "one channel per observation element (rate or delta coding); reduce the input")


def _rule_hidden_neurons(ctx):
    hidden = _xylo_hidden(ctx.net)
    name = ", ".join(lay.name for lay in hidden) or "<none>"
    return _over("hidden_neurons", name, "hidden neurons", sum(lay.neurons for lay in hidden),
                 ctx.limit("hidden_neurons"), "neurons")


def _rule_output_neurons(ctx):
    out = ctx.net.layer(ctx.net.output)
    return _over("output_neurons", out.name, "output neurons", out.neurons, ctx.limit("output_neurons"),
                 "neurons")


def _rule_fan_in_per_neuron(ctx):
    lim = ctx.limit("fan_in_per_neuron")
    out = []
    for lay in ctx.net.layers:
        fan = lay.fan_in
        if fan.size and fan.max() > lim:
            n_over = int(np.count_nonzero(fan > lim))
            out += _over("fan_in_per_neuron", lay.name, "largest fan-in", int(fan.max()), lim, "synapses",
                         f"{n_over} of {lay.neurons} neurons exceed it; prune to at most {lim} inputs per neuron")
    return out


def _rule_total_weights(ctx):
    return _over("total_weights", "<network>", "non-zero weights", sum(lay.synapses for lay in ctx.net.layers),
                 ctx.limit("total_weights"), "weights")


# speck mapping ------------------------------------------------------------------
def _ceil_log2(n: int) -> int:
    return (int(n) - 1).bit_length()


def speck_memory(layer: Layer) -> tuple[int, int]:
    """``(neuron memory, kernel memory)`` entries: f*fx*fy and c*2^(ceil log2(kx*ky) + ceil log2 f)."""
    c, kx, ky, f, fx, fy, _, _ = layer.speck_geometry()
    return f * fx * fy, c * 2 ** (_ceil_log2(kx * ky) + _ceil_log2(f))


def _rule_layer_kinds(ctx):
    allowed = ctx.limit("layer_kinds")
    out = []
    for lay in ctx.net.layers:
        kind = CONV2D if lay.kind == DENSE and ctx.profile.mapping == "speck" else lay.kind
        if kind not in allowed:
            out.append(Violation("layer_kinds", lay.name, "layer kind", lay.kind, ", ".join(allowed)))
    return out


def _rule_speck_cores(ctx):
    return _over("cores", "<network>", "layers (one core each)", len(ctx.net.layers), ctx.limit("cores"),
                 "cores", "merge or remove layers")


def _speck_memory_rule(rule, index, what):
    def check(ctx):
        cap = max(ctx.limit(rule))
        return [v for lay in ctx.net.layers
                for v in _over(rule, lay.name, what, speck_memory(lay)[index], cap, "entries",
                               "larger than the largest core")]
    return check


def _rule_core_assignment(ctx):
    if ctx.placement is not None:
        return []
    return [Violation("core_assignment", name, "memory needs (neurons, kernel)",
                      f"{speck_memory(ctx.net.layer(name))}", "a distinct core with both",
                      hint="no one-to-one assignment of layers to cores satisfies every core's memory")
            for name in ctx.placement_note.split(",") if name]


def _rule_bias_memory(ctx):
    lim = ctx.limit("bias_memory_per_core")
    return [v for lay in ctx.net.layers if lay.has_bias
            for v in _over("bias_memory_per_core", lay.name, "biases (one per output channel)",
                           lay.speck_geometry()[3], lim, "entries")]


def _rule_destinations(ctx):
    lim = ctx.limit("destinations_per_core")
    return [v for lay in ctx.net.layers
            for v in _over("destinations_per_core", lay.name, "destination layers",
                           len(ctx.net.destinations(lay.name)), lim, "cores")]


def _rule_input_size(ctx):
    lim = ctx.limit("max_input_size")
    return [v for lay in ctx.net.layers
            for v in _over("max_input_size", lay.name, "input side", max(lay.speck_geometry()[6:8]), lim,
                           "pixels")]


def _rule_kernel_size(ctx):
    lim = ctx.limit("max_kernel_size")
    return [v for lay in ctx.net.layers
            for v in _over("max_kernel_size", lay.name, "kernel side", max(lay.speck_geometry()[1:3]), lim,
                           "pixels")]


def _rule_channels(ctx):
    lim = ctx.limit("max_channels")
    out = []
    for lay in ctx.net.layers:
        c, _, _, f, *_ = lay.speck_geometry()
        out += _over("max_channels", lay.name, "input channels", c, lim, "channels",
                     "a dense layer's input features become channels" if lay.kind == DENSE else "")
        out += _over("max_channels", lay.name, "output channels", f, lim, "channels")
    return out


def _rule_padding(ctx):
    lim = ctx.limit("max_padding")
    return [v for lay in ctx.net.layers for v in _over("max_padding", lay.name, "padding", max(lay.padding),
                                                        lim, "pixels")]


def _rule_strides(ctx):
    allowed = ctx.limit("strides")
    return [Violation("strides", lay.name, "stride", str(lay.stride), ", ".join(map(str, allowed)))
            for lay in ctx.net.layers if any(s not in allowed for s in lay.stride)]


def _rule_pool_sizes(ctx):
    allowed = ctx.limit("pool_sizes")
    return [Violation("pool_sizes", lay.name, "sum-pooling", lay.pool, ", ".join(map(str, allowed)))
            for lay in ctx.net.layers if lay.pool not in allowed]


RULES: dict[str, list[Rule]] = {
    "cores": [
        Rule("neurons_per_core", ("neurons_per_core",), _per_core_rule("neurons_per_core", "neurons", "neurons",
                                                                       "neurons"), True),
        Rule("synapse_memory_per_core", (("synapse_memory_per_core", "memory_per_core"),),
             _per_core_rule(("synapse_memory_per_core", "memory_per_core"), "synapse_bytes", "bytes",
                            "synapse memory (lower bound)"), True),
        Rule("fan_in_per_core", ("fan_in_per_core",), _per_core_rule("fan_in_per_core", "fan_in", "axons",
                                                                     "input axons"), True),
        Rule("fan_out_per_core", ("fan_out_per_core",), _per_core_rule("fan_out_per_core", "fan_out", "axons",
                                                                       "output axons"), True),
        Rule("cores", ("cores",), _rule_cores, True),
        Rule("neurons_per_chip", ("neurons_per_chip",), _rule_neurons_per_chip),
        Rule("synapses_per_chip", ("synapses_per_chip",), _rule_synapses_per_chip),
        Rule("weight_bits", ("weight_bits",), _rule_weight_bits),
        Rule("neuron_models", ("neuron_models",), _rule_neuron_models),
    ],
    "xylo": [
        Rule("input_channels", ("input_channels",), _rule_input_channels),
        Rule("hidden_neurons", ("hidden_neurons",), _rule_hidden_neurons),
        Rule("output_neurons", ("output_neurons",), _rule_output_neurons),
        Rule("fan_in_per_neuron", ("fan_in_per_neuron",), _rule_fan_in_per_neuron),
        Rule("total_weights", ("total_weights",), _rule_total_weights),
        Rule("weight_bits", ("weight_bits",), _rule_weight_bits),
        Rule("neuron_models", ("neuron_models",), _rule_neuron_models),
    ],
    "speck": [
        Rule("layer_kinds", ("layer_kinds",), _rule_layer_kinds),
        Rule("cores", ("cores",), _rule_speck_cores),
        Rule("neuron_memory_per_core", ("neuron_memory_per_core",),
             _speck_memory_rule("neuron_memory_per_core", 0, "neuron memory")),
        Rule("kernel_memory_per_core", ("kernel_memory_per_core",),
             _speck_memory_rule("kernel_memory_per_core", 1, "kernel memory")),
        Rule("core_assignment", ("cores", "neuron_memory_per_core", "kernel_memory_per_core"),
             _rule_core_assignment),
        Rule("bias_memory_per_core", ("bias_memory_per_core",), _rule_bias_memory),
        Rule("destinations_per_core", ("destinations_per_core",), _rule_destinations),
        Rule("max_input_size", ("max_input_size",), _rule_input_size),
        Rule("max_kernel_size", ("max_kernel_size",), _rule_kernel_size),
        Rule("max_channels", ("max_channels",), _rule_channels),
        Rule("max_padding", ("max_padding",), _rule_padding),
        Rule("strides", ("strides",), _rule_strides),
        Rule("pool_sizes", ("pool_sizes",), _rule_pool_sizes),
        Rule("weight_bits", ("weight_bits",), _rule_weight_bits),
        Rule("neuron_models", ("neuron_models",), _rule_neuron_models),
    ],
    "none": [],
}

UNIMPLEMENTED: dict[str, list[tuple[str, str]]] = {
    "xylo": [("decay_bit_shift", "Xylo decays by bit shift; the published figures give no shift range")],
    "cores": [("synapse_encoding", "per-core synapse memory counts 1 byte per 8-bit synapse; the chip's "
                                   "synapse encoding overhead is not modelled")],
}


# ----------------------------------------------------------------------------- placement
def _chunks(n: int, k: int) -> list[tuple[int, int]]:
    base, extra = divmod(n, k)
    bounds, start = [], 0
    for i in range(k):
        size = base + (i < extra)
        bounds.append((start, start + size))
        start += size
    return bounds


def _core_load(layer: Layer, lo: int, hi: int) -> tuple[int, int]:
    """(non-zero synapses, distinct input axons) of neurons ``lo:hi`` of a dense layer."""
    syn = sum(int(np.count_nonzero(w[lo:hi])) for w in layer.weights.values())
    axons = sum(int(np.count_nonzero(np.any(w[lo:hi] != 0, axis=0))) for w in layer.weights.values())
    return syn, axons


def place_on_cores(net: Network, profile: Profile) -> tuple[list[dict] | None, str]:
    """Split each layer over the fewest cores that meet every known per-core limit.

    Returns the per-core records (or None with the reason when no placement can be made).
    """
    npc = profile.value("neurons_per_core")
    if npc is None:
        return None, f"{profile.name} publishes no neurons per core"
    conv = [lay.name for lay in net.layers if lay.kind != DENSE]
    if conv:
        return None, f"placing convolutional layers {conv} on a core-based chip is not implemented"
    mem = profile.value("synapse_memory_per_core") or profile.value("memory_per_core")
    fan_in = profile.value("fan_in_per_core")
    bytes_per_syn = DEPLOYED_WEIGHT_BITS / 8

    def ok(layer, bounds):
        for lo, hi in bounds:
            syn, axons = _core_load(layer, lo, hi)
            if (mem is not None and math.ceil(syn * bytes_per_syn) > mem) or (fan_in is not None and axons > fan_in):
                return False
        return True

    cores, split = [], {}
    for lay in net.layers:
        k0 = max(1, math.ceil(lay.neurons / npc))
        fan = lay.fan_in
        single_ok = (mem is None or math.ceil(int(fan.max(initial=0)) * bytes_per_syn) <= mem) and \
            (fan_in is None or int(fan.max(initial=0)) <= fan_in)
        k = k0
        if single_ok:  # a placement exists (one neuron per core at worst): find the fewest cores
            while not ok(lay, _chunks(lay.neurons, k)):
                k += 1
        split[lay.name] = _chunks(lay.neurons, k)
        for lo, hi in split[lay.name]:
            syn, axons = _core_load(lay, lo, hi)
            cores.append({"core": len(cores), "layer": lay.name, "neurons": hi - lo, "rows": [lo, hi],
                          "synapses": syn, "synapse_bytes": math.ceil(syn * bytes_per_syn), "fan_in": axons,
                          "fan_out": 0})
    for core in cores:  # output axons: one per (neuron, destination core) it reaches
        lo, hi = core["rows"]
        for dst in net.destinations(core["layer"]):
            w = dst.weights[core["layer"]]
            for a, b in split[dst.name]:
                core["fan_out"] += int(np.count_nonzero(np.any(w[a:b, lo:hi] != 0, axis=0)))
    return cores, ""


def _match(need: list[tuple[int, int]], caps: list[tuple[int, int]]) -> list[int | None]:
    """Assign each layer a distinct core whose capacity covers its need (augmenting paths)."""
    owner: dict[int, int] = {}

    def augment(i, seen):
        fit = [j for j, cap in enumerate(caps) if j not in seen and need[i][0] <= cap[0] and need[i][1] <= cap[1]]
        free = [j for j in fit if j not in owner]
        if free:  # the lowest free core first; move earlier layers only when none is left
            owner[free[0]] = i
            return True
        for j in fit:
            seen.add(j)
            if augment(owner[j], seen):
                owner[j] = i
                return True
        return False

    for i in range(len(need)):  # network order onto the lowest free core: a placement one can redo by hand
        augment(i, set())
    where: list[int | None] = [None] * len(need)
    for j, i in owner.items():
        where[i] = j
    return where


def place_on_speck(net: Network, profile: Profile) -> tuple[list[dict] | None, str]:
    """One layer per core; returns per-core records, or None and the unplaceable layers."""
    ncap, kcap = profile.value("neuron_memory_per_core"), profile.value("kernel_memory_per_core")
    if ncap is None or kcap is None:
        return None, ""
    caps = list(zip(ncap, kcap))
    need = [speck_memory(lay) for lay in net.layers]
    where = _match(need, caps)
    fits_some = [any(n <= a and k <= b for a, b in caps) for n, k in need]
    unplaced = [lay.name for lay, w, ok in zip(net.layers, where, fits_some) if w is None and ok]
    if unplaced and len(net.layers) <= len(caps):
        return None, ",".join(unplaced)
    cores = []
    for lay, (n, k), j in zip(net.layers, need, where):
        if j is not None:
            cores.append({"core": j, "layer": lay.name, "neurons": lay.neurons, "neuron_memory": n,
                          "neuron_memory_capacity": caps[j][0], "kernel_memory": k,
                          "kernel_memory_capacity": caps[j][1]})
    return sorted(cores, key=lambda c: c["core"]), ""


# ----------------------------------------------------------------------------- entry points
def check_fit(net: Network, profile: Profile) -> FitReport:
    """Run every rule of the profile's mapping model on ``net``; never raises on violations."""
    ctx = _Ctx(net, profile)
    if profile.mapping == "cores":
        ctx.placement, ctx.placement_note = place_on_cores(net, profile)
    elif profile.mapping == "speck":
        ctx.placement, ctx.placement_note = place_on_speck(net, profile)
    results = []
    for rule in RULES[profile.mapping]:
        needs = [_listed(profile, n) for n in rule.needs]
        name = needs[0] if not isinstance(rule.needs[0], str) and rule.name in rule.needs[0] else rule.name
        missing = [n for n in needs if profile.get(n) is None]
        unknown = [n for n in needs if profile.get(n) is not None and not profile.get(n).known]
        if missing or unknown:
            why = (f"{profile.name} lists no {', '.join(missing)}" if missing else "limit not published")
            results.append(RuleResult(name, NOT_CHECKED, why))
            continue
        if rule.placement and ctx.placement is None:
            results.append(RuleResult(name, NOT_CHECKED, f"no placement: {ctx.placement_note}"))
            continue
        if profile.mapping == "xylo" and any(lay.kind != DENSE for lay in net.layers):
            results.append(RuleResult(name, NOT_CHECKED, "convolutional layers on Xylo not implemented"))
            continue
        found = rule.check(ctx)
        results.append(RuleResult(name, VIOLATED if found else OK, "", found))
    results += [RuleResult(name, NOT_CHECKED, why) for name, why in UNIMPLEMENTED.get(profile.mapping, [])]
    report = FitReport(profile.name, profile.title, profile.mapping, net.source, results)
    _describe(report, ctx)
    return report


def _describe(report: FitReport, ctx: _Ctx) -> None:
    """Cores used, utilisation per core and per resource, and notes on what the mapping assumed."""
    net, profile = ctx.net, ctx.profile
    cap = profile.value("cores")
    report.cores_available = cap
    if profile.mapping == "cores" and ctx.placement is not None:
        report.cores_used = len(ctx.placement)
        limits = {"neurons": profile.value("neurons_per_core"),
                  "synapse_bytes": profile.value("synapse_memory_per_core") or profile.value("memory_per_core"),
                  "fan_in": profile.value("fan_in_per_core"), "fan_out": profile.value("fan_out_per_core")}
        for core in ctx.placement:
            core["utilisation"] = {k: (None if lim is None else core[k] / lim) for k, lim in limits.items()}
        report.per_core = ctx.placement
    elif profile.mapping == "speck" and ctx.placement is not None:
        report.cores_used = len(ctx.placement)
        for core in ctx.placement:
            core["utilisation"] = {"neuron_memory": core["neuron_memory"] / core["neuron_memory_capacity"],
                                   "kernel_memory": core["kernel_memory"] / core["kernel_memory_capacity"]}
        report.per_core = ctx.placement
        if any(lay.kind == DENSE for lay in net.layers):
            report.notes.append("dense layers are mapped as convolutions whose kernel covers the whole input "
                                "(input features as channels, 1 x 1 kernel)")
    elif profile.mapping == "xylo":
        report.cores_used = None
        hidden = _xylo_hidden(net)
        rows = [("input channels", net.input_size, profile.value("input_channels"), "channels"),
                ("hidden neurons", sum(lay.neurons for lay in hidden), profile.value("hidden_neurons"), "neurons"),
                ("output neurons", net.layer(net.output).neurons, profile.value("output_neurons"), "neurons"),
                ("non-zero weights", sum(lay.synapses for lay in net.layers), profile.value("total_weights"),
                 "weights")]
        report.resources = [{"resource": r, "used": u, "limit": lim, "unit": unit,
                             "utilisation": None if not lim else u / lim} for r, u, lim, unit in rows]
    if profile.mapping == "cores":
        report.resources = [{"resource": "neurons", "used": sum(lay.neurons for lay in net.layers),
                             "limit": profile.value("neurons_per_chip"), "unit": "neurons"},
                            {"resource": "non-zero synapses", "used": sum(lay.synapses for lay in net.layers),
                             "limit": profile.value("synapses_per_chip"), "unit": "synapses"}]
        for r in report.resources:
            r["utilisation"] = None if not r["limit"] else r["used"] / r["limit"]
    if not profile.graded_spikes and profile.mapping != "none":
        report.notes.append(f"{profile.name} takes binary events only: the {net.input_size} graded "
                            "observation values need a spike encoder (one channel each assumed; its cost is "
                            "not modelled)")


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def format_fit(report: FitReport) -> str:
    """A plain-text summary: verdict, cores used, utilisation per core and resource, rule outcomes."""
    cores = ("–" if report.cores_used is None else str(report.cores_used)) + \
        ("" if report.cores_available is None else f" of {report.cores_available}")
    lines = [f"{report.profile} ({report.title}), mapping '{report.mapping}': fits: {report.verdict()}",
             f"  cores used: {cores}"]
    if report.per_core and report.mapping == "cores":
        lines.append("  core  layer            neurons        synapse memory   input axons    output axons")
        for c in report.per_core:
            u = c["utilisation"]
            lines.append(f"  {c['core']:>4}  {c['layer']:<15}  {c['neurons']:>6} {_pct(u['neurons']):>7}  "
                         f"{c['synapse_bytes']:>8} B {_pct(u['synapse_bytes']):>7}  {c['fan_in']:>5} "
                         f"{_pct(u['fan_in']):>7}  {c['fan_out']:>5} {_pct(u['fan_out']):>7}")
    elif report.per_core:
        lines.append("  core  layer            neuron memory             kernel memory")
        for c in report.per_core:
            u = c["utilisation"]
            lines.append(f"  {c['core']:>4}  {c['layer']:<15}  {c['neuron_memory']:>6}/{c['neuron_memory_capacity']:<6} "
                         f"{_pct(u['neuron_memory']):>7}  {c['kernel_memory']:>6}/{c['kernel_memory_capacity']:<6} "
                         f"{_pct(u['kernel_memory']):>7}")
    for r in report.resources:
        lim = "unknown" if r["limit"] is None else f"{r['limit']:,}"
        lines.append(f"  {r['resource']}: {r['used']:,} of {lim} {r['unit']} ({_pct(r['utilisation'])})")
    for status in (VIOLATED, OK, NOT_CHECKED):
        rs = [r for r in report.results if r.status == status]
        if rs:
            lines.append(f"  {status}: " + ", ".join(r.rule + (f" ({r.detail})" if r.detail else "") for r in rs))
    for v in report.violations:
        lines.append(f"  ! {v.message()}")
    lines += [f"  note: {n}" for n in report.notes]
    return "\n".join(lines)
