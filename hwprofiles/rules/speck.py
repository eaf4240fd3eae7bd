"""Rules of Speck-style chips: one layer per convolutional core, and the layer-to-core matching.

The kernel- and neuron-memory formulas are those of the vendor's constraint tables; the
layers are matched onto the nine cores of unequal memory. A dense layer maps as a
convolution whose kernel covers its whole input: ``c`` = input features as channels,
a 1 x 1 kernel, ``f`` = neurons.
"""
from __future__ import annotations

from spikeloop.hwprofiles.network import CONV2D, DENSE, Layer, Network
from spikeloop.hwprofiles.profile import Profile
from spikeloop.hwprofiles.rules.common import COMMON_RULES, NETWORK, Context, Rule, Violation, over

MAPPING = "speck"


# ----------------------------------------------------------------------------- memory and placement
def _ceil_log2(n: int) -> int:
    return (int(n) - 1).bit_length()


def speck_memory(layer: Layer) -> tuple[int, int]:
    """``(neuron memory, kernel memory)`` entries: f*2^(ceil log2 fx + ceil log2 fy) and
    c*2^(ceil log2(kx*ky) + ceil log2 f), as sinabs's ``DynapcnnLayer.memory_summary`` and
    ``validate_memory_mapping_speck`` count them (each side of the map and each kernel is held in
    a power-of-two block)."""
    c, kx, ky, f, fx, fy, _, _ = layer.speck_geometry()
    return f * 2 ** (_ceil_log2(fx) + _ceil_log2(fy)), c * 2 ** (_ceil_log2(kx * ky) + _ceil_log2(f))


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
    # within the largest core's memory on each side, yet no core holds both sides (the per-memory
    # rules name a layer over a side's largest core)
    no_core = [lay.name for lay, (n, k), ok in zip(net.layers, need, fits_some)
               if not ok and n <= max(ncap) and k <= max(kcap)]
    unplaced = [lay.name for lay, w, ok in zip(net.layers, where, fits_some) if w is None and ok]
    if no_core or (unplaced and len(net.layers) <= len(caps)):
        return None, ",".join(no_core + unplaced)
    cores = []
    for lay, (n, k), j in zip(net.layers, need, where):
        if j is not None:
            cores.append({"core": j, "layer": lay.name, "neurons": lay.neurons, "neuron_memory": n,
                          "neuron_memory_capacity": caps[j][0], "kernel_memory": k,
                          "kernel_memory_capacity": caps[j][1]})
    return sorted(cores, key=lambda c: c["core"]), ""


def place(net: Network, profile: Profile) -> tuple[list[dict] | None, str]:
    """The placement the core-assignment rule reads (see :func:`place_on_speck`)."""
    return place_on_speck(net, profile)


# ----------------------------------------------------------------------------- rules
def rule_layer_kinds(ctx: Context) -> list[Violation]:
    """Every layer's kind must be allowed; a dense layer counts as a convolution here."""
    allowed = ctx.limit("layer_kinds")
    out = []
    for lay in ctx.net.layers:
        kind = CONV2D if lay.kind == DENSE else lay.kind
        if kind not in allowed:
            out.append(Violation("layer_kinds", lay.name, "layer kind", lay.kind, ", ".join(allowed)))
    return out


def rule_cores(ctx: Context) -> list[Violation]:
    """Layers (one core each), against the cores on the chip."""
    return over("cores", NETWORK, "layers (one core each)", len(ctx.net.layers), ctx.limit("cores"),
                "cores", "merge or remove layers")


def _memory(ctx: Context, rule: str, index: int, what: str) -> list[Violation]:
    """One violation per layer whose memory need ``index`` exceeds the largest core's."""
    cap = max(ctx.limit(rule))
    return [v for lay in ctx.net.layers
            for v in over(rule, lay.name, what, speck_memory(lay)[index], cap, "entries",
                          "larger than the largest core")]


def rule_neuron_memory_per_core(ctx: Context) -> list[Violation]:
    """Each layer's neuron memory (f*2^(ceil log2 fx + ceil log2 fy)), against the largest core's."""
    return _memory(ctx, "neuron_memory_per_core", 0, "neuron memory")


def rule_kernel_memory_per_core(ctx: Context) -> list[Violation]:
    """Each layer's kernel memory (c*2^(ceil log2(kx*ky) + ceil log2 f)), against the largest core's."""
    return _memory(ctx, "kernel_memory_per_core", 1, "kernel memory")


def rule_core_assignment(ctx: Context) -> list[Violation]:
    """Layers that get no distinct core with both memories: no core holds both (though each side is
    within the largest core's), or every core that would is taken by another layer."""
    if ctx.placement is not None:
        return []
    return [Violation("core_assignment", name, "memory needs (neurons, kernel)",
                      f"{speck_memory(ctx.net.layer(name))}", "a distinct core with both",
                      hint="no core holds both memories, or no one-to-one assignment of layers to cores "
                           "satisfies every core's memory")
            for name in ctx.placement_note.split(",") if name]


def rule_bias_memory_per_core(ctx: Context) -> list[Violation]:
    """Biases (one per output channel) of each layer that has any."""
    lim = ctx.limit("bias_memory_per_core")
    return [v for lay in ctx.net.layers if lay.has_bias
            for v in over("bias_memory_per_core", lay.name, "biases (one per output channel)",
                          lay.speck_geometry()[3], lim, "entries")]


def rule_destinations_per_core(ctx: Context) -> list[Violation]:
    """Layers each layer feeds (one destination core each)."""
    lim = ctx.limit("destinations_per_core")
    return [v for lay in ctx.net.layers
            for v in over("destinations_per_core", lay.name, "destination layers",
                          len(ctx.net.destinations(lay.name)), lim, "cores")]


def rule_max_input_size(ctx: Context) -> list[Violation]:
    """The longer side of each layer's input."""
    lim = ctx.limit("max_input_size")
    return [v for lay in ctx.net.layers
            for v in over("max_input_size", lay.name, "input side", max(lay.speck_geometry()[6:8]), lim,
                          "pixels")]


def rule_max_kernel_size(ctx: Context) -> list[Violation]:
    """The longer side of each layer's kernel."""
    lim = ctx.limit("max_kernel_size")
    return [v for lay in ctx.net.layers
            for v in over("max_kernel_size", lay.name, "kernel side", max(lay.speck_geometry()[1:3]), lim,
                          "pixels")]


def rule_max_channels(ctx: Context) -> list[Violation]:
    """Input and output channels of each layer (a dense layer's input features are channels)."""
    lim = ctx.limit("max_channels")
    out = []
    for lay in ctx.net.layers:
        c, _, _, f, *_ = lay.speck_geometry()
        out += over("max_channels", lay.name, "input channels", c, lim, "channels",
                    "a dense layer's input features become channels" if lay.kind == DENSE else "")
        out += over("max_channels", lay.name, "output channels", f, lim, "channels")
    return out


def rule_max_padding(ctx: Context) -> list[Violation]:
    """The larger padding of each layer."""
    lim = ctx.limit("max_padding")
    return [v for lay in ctx.net.layers for v in over("max_padding", lay.name, "padding", max(lay.padding),
                                                       lim, "pixels")]


def rule_strides(ctx: Context) -> list[Violation]:
    """Each layer's stride along both axes must be an allowed one."""
    allowed = ctx.limit("strides")
    return [Violation("strides", lay.name, "stride", str(lay.stride), ", ".join(map(str, allowed)))
            for lay in ctx.net.layers if any(s not in allowed for s in lay.stride)]


def rule_pool_sizes(ctx: Context) -> list[Violation]:
    """The sum-pooling on each layer's output must be an allowed size."""
    allowed = ctx.limit("pool_sizes")
    return [Violation("pool_sizes", lay.name, "sum-pooling", lay.pool, ", ".join(map(str, allowed)))
            for lay in ctx.net.layers if lay.pool not in allowed]


RULES: list[Rule] = [
    Rule("layer_kinds", ("layer_kinds",), rule_layer_kinds),
    Rule("cores", ("cores",), rule_cores),
    Rule("neuron_memory_per_core", ("neuron_memory_per_core",), rule_neuron_memory_per_core),
    Rule("kernel_memory_per_core", ("kernel_memory_per_core",), rule_kernel_memory_per_core),
    Rule("core_assignment", ("cores", "neuron_memory_per_core", "kernel_memory_per_core"),
         rule_core_assignment),
    Rule("bias_memory_per_core", ("bias_memory_per_core",), rule_bias_memory_per_core),
    Rule("destinations_per_core", ("destinations_per_core",), rule_destinations_per_core),
    Rule("max_input_size", ("max_input_size",), rule_max_input_size),
    Rule("max_kernel_size", ("max_kernel_size",), rule_max_kernel_size),
    Rule("max_channels", ("max_channels",), rule_max_channels),
    Rule("max_padding", ("max_padding",), rule_max_padding),
    Rule("strides", ("strides",), rule_strides),
    Rule("pool_sizes", ("pool_sizes",), rule_pool_sizes),
    *COMMON_RULES,
]
UNIMPLEMENTED: list[tuple[str, str]] = []
"""limits of the chip the rules know of but do not check, reported as not checked"""
