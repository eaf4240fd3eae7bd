"""Network builders: each returns a :class:`~spikeloop.train.graph.SpikingGraph`.

A builder is registered by name with the limits of its arguments, so that a
checkpoint can store ``{"builder": name, "args": {...}}`` and rebuild the network
without executing anything it reads: the arguments are validated before a single
tensor is allocated (a corrupt header cannot make torch allocate 160 GB).
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from spikeloop.core.errors import ConfigError
from spikeloop.core.neuron import HARD, RESET_MODES, SOFT
from spikeloop.train.graph import Neuron, QuantConv2d, QuantLinear, SpikingGraph, check_surrogate
from spikeloop.train.speck import SpeckConv2d, SpeckLinear, SpeckNeuron

MAX_PARAMETERS = 50_000_000
"""the largest network a checkpoint may declare (weights and biases)"""

DECAY_GRID = 4096
"""Loihi's decays are 12-bit registers: trained on the fixed-point grid, the decays are on it too"""


def on_decay_grid(d: float, fake_quant: bool) -> float:
    """The decay ``d`` rounded onto Loihi's 12-bit grid when ``fake_quant`` (never to 0)."""
    return max(1, round(d * DECAY_GRID)) / DECAY_GRID if fake_quant else d


Builder = Callable[..., SpikingGraph]
BUILDERS: dict[str, Builder] = {}


def register_builder(name: str):
    """Register a network builder under ``name`` (used by checkpoints)."""
    def register(fn: Builder) -> Builder:
        BUILDERS[name] = fn
        return fn
    return register


def build(spec: dict) -> SpikingGraph:
    """Rebuild a network from its ``{"builder": name, "args": {...}}`` spec."""
    if not isinstance(spec, dict) or not isinstance(spec.get("builder"), str) or not isinstance(
            spec.get("args", {}), dict):
        raise ConfigError(f"network spec must be {{'builder': name, 'args': {{...}}}}, got {spec!r}")
    fn = BUILDERS.get(spec["builder"])
    if fn is None:
        raise ConfigError(f"unknown network builder {spec['builder']!r}; known: {sorted(BUILDERS)}")
    try:
        return fn(**spec.get("args", {}))
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"network builder {spec['builder']!r}: bad arguments ({e})") from e


def _number(name: str, value, lo: float | None = None, hi: float | None = None, low_open: bool = True) -> float:
    """A finite real argument within ``(lo, hi]`` (``[lo, hi]`` unless ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"network argument {name} must be a finite number, got {value!r}")
    if lo is not None and (value < lo or (low_open and value == lo)):
        raise ConfigError(f"network argument {name} must be {'>' if low_open else '>='} {lo:g}, got {value!r}")
    if hi is not None and value > hi:
        raise ConfigError(f"network argument {name} must be <= {hi:g}, got {value!r}")
    return float(value)


def _sizes(sizes) -> list[int]:
    if not isinstance(sizes, (list, tuple)) or len(sizes) < 2:
        raise ConfigError(f"sizes needs an input and an output size, got {sizes!r}")
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in sizes):
        raise ConfigError(f"sizes must be positive integers, got {sizes!r}")
    params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    if params > MAX_PARAMETERS:
        raise ConfigError(f"sizes {list(sizes)} declare {params:,} parameters, more than the limit "
                          f"{MAX_PARAMETERS:,}")
    return list(sizes)


def dueling_matrices(n_actions: int, atoms: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """The dueling combination ``Q = V + A - mean_a A`` as two fixed linear maps.

    Outputs are ordered action-major (``a * atoms + z``). ``Mv`` (``n_actions * atoms`` x
    ``atoms``) copies the value stream to every action; ``Ma`` (square) subtracts the mean
    over actions of the advantage, atom by atom. Both are exact in float, so the readout
    that sums ``Mv @ V`` and ``Ma @ A`` is the dueling head itself, in plain NIR.
    """
    n = n_actions * atoms
    mv = torch.zeros(n, atoms, dtype=torch.float64)
    ma = torch.zeros(n, n, dtype=torch.float64)
    for a in range(n_actions):
        for z in range(atoms):
            mv[a * atoms + z, z] = 1.0
            for b in range(n_actions):
                ma[a * atoms + z, b * atoms + z] = (1.0 if a == b else 0.0) - 1.0 / n_actions
    return mv, ma


def _check_neuron_args(du, dv, readout_du, readout_dv, vth, noisy_std, surrogate, surrogate_alpha, reset, dtype,
                       **flags) -> None:
    """One error naming a neuron or synapse option of a spiking builder that is out of range."""
    for name, value in (("du", du), ("dv", dv), ("readout_du", readout_du), ("readout_dv", readout_dv)):
        if value is not None:
            _number(name, value, 0.0, 1.0)
    _number("vth", vth, 0.0)
    _number("noisy_std", noisy_std, 0.0, low_open=False)
    check_surrogate(surrogate, surrogate_alpha)
    for name, flag in flags.items():
        if not isinstance(flag, bool):
            raise ConfigError(f"network argument {name} must be true or false, got {flag!r}")
    if not isinstance(reset, str) or reset not in RESET_MODES:
        raise ConfigError(f"network argument reset must be one of {RESET_MODES}, got {reset!r}")
    if dtype not in ("float32", "float64"):
        raise ConfigError(f"dtype must be 'float32' or 'float64', got {dtype!r}")


def _population_kind(du: float, spiking: bool) -> tuple[str, str]:
    """The neuron kind of a population and its node-name label (CUBA when ``du < 1``)."""
    cuba = du != 1.0
    kind = ("CubaLIF" if cuba else "LIF") if spiking else ("CubaLI" if cuba else "LI")
    return kind, {"LIF": "lif", "LI": "li", "CubaLIF": "cubalif", "CubaLI": "cubali"}[kind]


def _spiking_layers(nodes: dict, edges: list, prev: str, sizes: list[int], *, du, dv, vth, readout_du, readout_dv,
                    reset, fake_quant, surrogate_alpha, surrogate, tdtype, spiking_readout, dueling, atoms,
                    noisy_std, netx_grid: bool = False, speck: bool = False) -> str:
    """Add the fully connected spiking layers ``sizes`` after node ``prev``; return the readout's name."""
    def population(name_of, size, readout, fc):
        d_u = readout_du if readout else du
        spiking = not readout or spiking_readout
        if speck:
            name = name_of("if")
            nodes[name] = SpeckNeuron(size, nodes[fc], vth, reset, surrogate_alpha, surrogate, tdtype)
            return name
        kind, label = _population_kind(d_u, spiking)
        name = name_of(label)
        nodes[name] = Neuron(size, kind, du=d_u if d_u != 1.0 else None, dv=readout_dv if readout else dv,
                             vth=vth if spiking else None, reset=reset, surrogate_alpha=surrogate_alpha,
                             surrogate=surrogate, dtype=tdtype)
        return name

    def synapse(name, src, a, b, combine=None):
        if speck:
            nodes[name] = SpeckLinear(a, b, dtype=tdtype)
        else:
            nodes[name] = QuantLinear(a, b, bias=False, fake_quant=fake_quant, dtype=tdtype, noisy_std=noisy_std,
                                      combine=combine)
        edges.append((src, name))
        return name

    def on_grid(pop, fc, src):
        if netx_grid and src != "input":
            nodes[pop].put_bias_on_grid(lambda syn=nodes[fc]: weight_step(syn) / 2)
            if nodes[pop].spiking:
                nodes[fc].grid_divides = 2.0 * float(vth)

    trunk = len(sizes) - (3 if dueling else 2)  # hidden layers before the head(s)
    for k in range(trunk):
        src = prev
        fc = synapse(f"fc{k}", prev, sizes[k], sizes[k + 1])
        prev = population(lambda label: f"{label}{k}", sizes[k + 1], False, fc)
        edges.append((fc, prev))
        on_grid(prev, fc, src)
    if dueling:
        width, n_out = sizes[-2], sizes[-1]
        mv, ma = dueling_matrices(n_out // atoms, atoms)
        readout = population(lambda label: label, n_out, True, None)
        for stream, m in (("v", mv), ("a", ma)):
            fc = synapse(f"fc_{stream}", prev, sizes[-3], width)
            pop = population(lambda label: f"{label}_{stream}", width, False, fc)
            edges.append((fc, pop))
            edges.append((synapse(f"head_{stream}", pop, width, n_out, combine=m), readout))
    else:
        k = len(sizes) - 2
        fc = synapse(f"fc{k}", prev, sizes[k], sizes[k + 1])
        readout = population(lambda label: f"{label}{k}", sizes[-1], True, fc)
        edges.append((fc, readout))
        on_grid(readout, fc, prev)
    return readout


def weight_step(synapse) -> torch.Tensor:
    """The step of a synapse's deployed 8-bit weight grid, ``max|w| / 127`` (no gradient)."""
    return synapse.deployed_weight().detach().abs().max() / 127


def _check_head(sizes: list[int], atoms, dueling: bool) -> None:
    if isinstance(atoms, bool) or not isinstance(atoms, int) or atoms < 1 or sizes[-1] % atoms:
        raise ConfigError(f"network argument atoms must be a positive integer dividing the output size "
                          f"{sizes[-1]}, got {atoms!r}")
    if dueling and len(sizes) < 3:
        raise ConfigError("a dueling network needs at least one hidden layer (its two streams)")


@register_builder("mlp")
def spiking_mlp(sizes, du: float = 1.0, dv: float = 0.125, vth: float = 1.0, readout_dv: float | None = None,
                readout_du: float | None = None, reset: str = HARD, fake_quant: bool = False,
                surrogate_alpha: float = 2.0, dtype: str = "float32", surrogate: str = "arctan",
                spiking_readout: bool = False, dueling: bool = False, atoms: int = 1,
                noisy_std: float = 0.0, netx_grid: bool = False) -> SpikingGraph:
    """Graded input -> hidden spiking populations -> a readout population.

    Nodes ``fc0, lif0, fc1, lif1, ..., fcK, liK`` (``cubalif``/``cubali`` when ``du < 1``):
    bias-free :class:`QuantLinear` synapses, the bias lives in the neuron. ``du``/``dv``
    are the per-step decays of the hidden populations, ``readout_du``/``readout_dv``
    those of the readout (default: the same), ``vth`` the hidden threshold.

    Options of value-based agents (each exports as plain NIR):

    - ``spiking_readout``: the readout spikes (``lifK``, threshold ``vth``), for a
      spike-count decoding;
    - ``dueling``: the last hidden layer becomes two streams of that size, a value stream
      (``fc_v, lif_v``: ``atoms`` outputs) and an advantage stream (``fc_a, lif_a``), whose
      heads (``head_v``, ``head_a``: the fixed :func:`dueling_matrices` times a trained
      weight) sum into the readout: the dueling combination is the readout layer;
    - ``atoms``: outputs per action of a distributional (C51) readout; ``sizes[-1]`` is
      ``n_actions * atoms``;
    - ``noisy_std``: every synapse a noisy linear layer (deterministic at export).

    ``netx_grid`` (with ``fake_quant``) trains every population fed by spikes on the grid of
    lava-dl's netx format, whose dense weights have no exponent and whose bias exponent is fixed
    at 6: there the weights ``W = w / (step / 2)`` are integers up to 254, so the threshold and
    bias registers are multiples of half the weight step. The bias is trained on that grid and
    the weight step divides twice the threshold (:func:`~spikeloop.train.graph.fake_quantize`),
    so that the export keeps weights, threshold and bias exactly (``spikeloop.runtime.netx``).
    The first layer, on a graded input, has grids as fine as the payload's and stays free.
    """
    sizes = _sizes(sizes)
    _check_neuron_args(du, dv, readout_du, readout_dv, vth, noisy_std, surrogate, surrogate_alpha, reset, dtype,
                       fake_quant=fake_quant, spiking_readout=spiking_readout, dueling=dueling, netx_grid=netx_grid)
    _check_head(sizes, atoms, dueling)
    if netx_grid and (not fake_quant or dueling):
        raise ConfigError("network argument netx_grid needs fake_quant (the weight grid it follows) and a chain of "
                          "layers (no dueling streams, whose readout two synapses feed)")
    readout_du = du if readout_du is None else readout_du
    readout_dv = dv if readout_dv is None else readout_dv
    nodes, edges = {}, []
    readout = _spiking_layers(nodes, edges, "input", sizes, du=du, dv=dv, vth=vth, readout_du=readout_du,
                              readout_dv=readout_dv, reset=reset, fake_quant=fake_quant,
                              surrogate_alpha=surrogate_alpha, surrogate=surrogate, tdtype=getattr(torch, dtype),
                              spiking_readout=spiking_readout, dueling=dueling, atoms=atoms, noisy_std=noisy_std,
                              netx_grid=netx_grid)
    edges.append((readout, "output"))
    graph = SpikingGraph(nodes, edges, input_shape=sizes[0])
    graph.spec = {"builder": "mlp", "args": {
        "sizes": sizes, "du": du, "dv": dv, "vth": vth, "readout_du": readout_du, "readout_dv": readout_dv,
        "reset": reset, "fake_quant": fake_quant, "surrogate_alpha": surrogate_alpha, "dtype": dtype,
        "surrogate": surrogate, "spiking_readout": spiking_readout, "dueling": dueling, "atoms": atoms,
        "noisy_std": noisy_std} | ({"netx_grid": True} if netx_grid else {})}
    return graph


def _positive_ints(name: str, values, least: int = 1) -> list[int]:
    if not isinstance(values, (list, tuple)) or len(values) < least or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in values):
        raise ConfigError(f"network argument {name} must list at least {least} positive integer(s), got {values!r}")
    return list(values)


@register_builder("conv")
def spiking_conv(input_shape, channels, sizes, kernel: int = 3, stride: int = 1, padding: int = 0,
                 du: float = 1.0, dv: float = 0.125, vth: float = 1.0, readout_dv: float | None = None,
                 readout_du: float | None = None, reset: str = HARD, fake_quant: bool = False,
                 surrogate_alpha: float = 2.0, dtype: str = "float32", surrogate: str = "arctan",
                 spiking_readout: bool = False, dueling: bool = False, atoms: int = 1,
                 noisy_std: float = 0.0, speck: bool = False) -> SpikingGraph:
    """A convolutional spiking Q-network (DSQN's convolutional variant): image in, values out.

    Nodes ``conv0, lif_c0, conv1, lif_c1, ...`` (bias-free :class:`QuantConv2d` into a
    spiking population of the feature map's shape ``(C, H, W)``, the bias in the neurons),
    then ``flatten`` and the fully connected layers of :func:`spiking_mlp` over
    ``[C*H*W, *sizes]`` (``sizes``: hidden sizes, then the output size), with every option
    of it (the noisy synapses are the fully connected ones). ``input_shape`` is the image's
    ``(C, H, W)``; every convolution has the same ``kernel``, ``stride`` and zero
    ``padding``. The compiler keeps each convolution a convolution: its kernel deploys,
    not an unrolled matrix.

    ``speck`` trains on Speck's (DYNAP-CNN's) arithmetic (:mod:`spikeloop.train.speck`): every
    population integrate-and-fire without leak or bias in 16-bit register units, every synapse
    sending its 8-bit integer weights, the readout included, which must then spike
    (``spiking_readout``); ``du``/``dv`` are unused. The torch policy then gives the spikes the
    Speck emulator gives.
    """
    if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 3:
        raise ConfigError(f"network argument input_shape must be an image's (C, H, W), got {input_shape!r}")
    shape = _positive_ints("input_shape", input_shape, 3)
    channels = _positive_ints("channels", channels)
    sizes = _positive_ints("sizes", sizes)
    for name, value, lo in (("kernel", kernel, 1), ("stride", stride, 1), ("padding", padding, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise ConfigError(f"network argument {name} must be an integer >= {lo}, got {value!r}")
    _check_neuron_args(du, dv, readout_du, readout_dv, vth, noisy_std, surrogate, surrogate_alpha, reset, dtype,
                       fake_quant=fake_quant, spiking_readout=spiking_readout, dueling=dueling,
                       speck=speck)
    if speck and (not spiking_readout or dueling or noisy_std):
        raise ConfigError("network argument speck needs spiking_readout (Speck's last layer spikes) and no dueling "
                          "streams or noisy synapses")
    maps, params, (c, h, w) = [], 0, shape
    for k, out in enumerate(channels):
        h2, w2 = (h + 2 * padding - kernel) // stride + 1, (w + 2 * padding - kernel) // stride + 1
        if h2 < 1 or w2 < 1:
            raise ConfigError(f"network argument kernel {kernel} (stride {stride}, padding {padding}) does not "
                              f"fit convolution {k}'s input of {c}x{h}x{w}")
        params += c * out * kernel * kernel + out * h2 * w2  # kernel weights, then the neurons' biases
        maps.append((c, out, (out, h2, w2)))
        c, h, w = out, h2, w2
    full = _sizes([c * h * w, *sizes])
    _check_head(full, atoms, dueling)
    params += sum(a * b + b for a, b in zip(full[:-1], full[1:]))
    if params > MAX_PARAMETERS:
        raise ConfigError(f"a convolutional network of channels {channels} on {shape} with sizes {sizes} declares "
                          f"{params:,} parameters, more than the limit {MAX_PARAMETERS:,}")
    tdtype = getattr(torch, dtype)
    kind, label = _population_kind(du, True)
    nodes, edges, prev = {}, [], "input"
    for k, (c_in, c_out, out_shape) in enumerate(maps):
        if speck:
            label = "if"
            nodes[f"conv{k}"] = SpeckConv2d(c_in, c_out, kernel, stride=stride, padding=padding, dtype=tdtype)
            nodes[f"{label}_c{k}"] = SpeckNeuron(out_shape, nodes[f"conv{k}"], vth, reset, surrogate_alpha,
                                                 surrogate, tdtype)
        else:
            nodes[f"conv{k}"] = QuantConv2d(c_in, c_out, kernel, stride=stride, padding=padding,
                                            fake_quant=fake_quant, dtype=tdtype)
            nodes[f"{label}_c{k}"] = Neuron(out_shape, kind, du=du if du != 1.0 else None, dv=dv, vth=vth,
                                            reset=reset, surrogate_alpha=surrogate_alpha, surrogate=surrogate,
                                            dtype=tdtype)
        edges += [(prev, f"conv{k}"), (f"conv{k}", f"{label}_c{k}")]
        prev = f"{label}_c{k}"
    nodes["flatten"] = torch.nn.Flatten()
    edges.append((prev, "flatten"))
    readout_du = du if readout_du is None else readout_du
    readout_dv = dv if readout_dv is None else readout_dv
    readout = _spiking_layers(nodes, edges, "flatten", full, du=du, dv=dv, vth=vth, readout_du=readout_du,
                              readout_dv=readout_dv, reset=reset, fake_quant=fake_quant,
                              surrogate_alpha=surrogate_alpha, surrogate=surrogate, tdtype=tdtype,
                              spiking_readout=spiking_readout, dueling=dueling, atoms=atoms, noisy_std=noisy_std,
                              speck=speck)
    edges.append((readout, "output"))
    graph = SpikingGraph(nodes, edges, input_shape=shape)
    graph.spec = {"builder": "conv", "args": {
        "input_shape": shape, "channels": channels, "sizes": sizes, "kernel": kernel, "stride": stride,
        "padding": padding, "du": du, "dv": dv, "vth": vth, "readout_du": readout_du, "readout_dv": readout_dv,
        "reset": reset, "fake_quant": fake_quant, "surrogate_alpha": surrogate_alpha, "dtype": dtype,
        "surrogate": surrogate, "spiking_readout": spiking_readout, "dueling": dueling, "atoms": atoms,
        "noisy_std": noisy_std} | ({"speck": True} if speck else {})}
    return graph


def noisy_layers(network: torch.nn.Module) -> list[QuantLinear]:
    """The noisy synapses of a network (empty unless it was built with ``noisy_std > 0``)."""
    return [m for m in network.modules() if isinstance(m, QuantLinear) and m.noisy_std > 0]


@register_builder("dense")
def dense_mlp(sizes, dtype: str = "float32") -> SpikingGraph:
    """A conventional ReLU MLP ``fc0, relu0, ..., fcK`` (biases in the Linear layers).

    The dense twin of a spiking Q-network and the source of ANN-to-SNN conversion
    (:mod:`spikeloop.train.convert`). It has no state, so one timestep is a decision; it
    does not export to NIR (NIR has no ReLU): convert it first.
    """
    sizes = _sizes(sizes)
    if dtype not in ("float32", "float64"):
        raise ConfigError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    tdtype = getattr(torch, dtype)
    nodes, edges, prev = {}, [], "input"
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        nodes[f"fc{k}"] = torch.nn.Linear(a, b, dtype=tdtype)
        edges.append((prev, f"fc{k}"))
        prev = f"fc{k}"
        if k < len(sizes) - 2:
            nodes[f"relu{k}"] = torch.nn.ReLU()
            edges.append((prev, f"relu{k}"))
            prev = f"relu{k}"
    edges.append((prev, "output"))
    graph = SpikingGraph(nodes, edges, input_shape=sizes[0])
    graph.spec = {"builder": "dense", "args": {"sizes": sizes, "dtype": dtype}}
    return graph


def dense_layers(network: SpikingGraph) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``[(weight, bias), ...]`` of a :func:`dense_mlp`, input to output."""
    if getattr(network, "spec", {}).get("builder") != "dense":
        raise ConfigError("not a dense ReLU network (spikeloop.train.networks.dense_mlp)")
    k = len(network.spec["args"]["sizes"]) - 1
    return [(network.nodes[f"fc{i}"].weight.detach(), network.nodes[f"fc{i}"].bias.detach()) for i in range(k)]


@register_builder("converted")
def converted_snn(sizes, dtype: str = "float64") -> SpikingGraph:
    """The shape of an ANN-to-SNN conversion (:mod:`spikeloop.train.convert`).

    ``fc0, if0, ..., fcK, liK``: Linear synapses with biases (a constant current per step)
    into IF neurons (threshold 1, soft reset), and a readout without memory (``dv = 1``)
    whose mean over the window is the dense output layer applied to the spike rates.
    """
    sizes = _sizes(sizes)
    if dtype not in ("float32", "float64"):
        raise ConfigError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    tdtype = getattr(torch, dtype)
    nodes, edges, prev = {}, [], "input"
    last = len(sizes) - 2
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        nodes[f"fc{k}"] = QuantLinear(a, b, bias=True, fake_quant=True, dtype=tdtype)
        name = f"li{k}" if k == last else f"if{k}"
        nodes[name] = (Neuron(b, "LI", dv=1.0, dtype=tdtype) if k == last
                       else Neuron(b, "IF", vth=1.0, reset=SOFT, dtype=tdtype))
        edges += [(prev, f"fc{k}"), (f"fc{k}", name)]
        prev = name
    edges.append((prev, "output"))
    graph = SpikingGraph(nodes, edges, input_shape=sizes[0])
    graph.spec = {"builder": "converted", "args": {"sizes": sizes, "dtype": dtype}}
    return graph


@register_builder("xylo-mlp")
def xylo_mlp(sizes, dash_syn: int = 1, dash_mem: int = 3, vth: int = 512, readout_dash_syn: int = 1,
             readout_dash_mem: int = 1, fan_in: int = 63, mask_seed: int = 0, surrogate_alpha: float = 1.0,
             spiking_readout: bool = False, dtype: str = "float32") -> SpikingGraph:
    """Event counts in -> hidden Xylo populations -> a Xylo readout (``spikeloop.train.xylo``).

    Nodes ``fc0, lif0, ..., fcK, liK`` (``lifK`` with ``spiking_readout``): 8-bit integer
    synapses under a fan-in mask of at most ``fan_in`` inputs per neuron (drawn from
    ``mask_seed``), hidden neurons with bit-shift decays ``dash_syn``/``dash_mem``, integer
    threshold ``vth`` and up to 31 spikes per step; the readout's own shifts. The sizes are
    held to one Xylo core: at most 16 inputs, 1000 hidden neurons in all and 8 outputs.
    """
    from spikeloop.train.xylo import XyloLinear, XyloNeuron

    sizes = _sizes(sizes)
    limits = [("inputs", sizes[0], 16), ("hidden neurons", sum(sizes[1:-1]), 1000), ("outputs", sizes[-1], 8)]
    for what, n, cap in limits:
        if n > cap:
            raise ConfigError(f"a Xylo network has at most {cap} {what}; this one has {n}")
    if len(sizes) < 3:
        raise ConfigError("a Xylo network needs at least one hidden layer (the readout takes hidden spikes only)")
    if dtype not in ("float32", "float64"):
        raise ConfigError(f"dtype must be float32 or float64, got {dtype!r}")
    tdtype = getattr(torch, dtype)
    gen = torch.Generator().manual_seed(int(mask_seed))
    nodes, edges, prev = {}, [], "input"
    last = len(sizes) - 2
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        readout = i == last
        syn = readout_dash_syn if readout else dash_syn
        nodes[f"fc{i}"] = XyloLinear(a, b, syn, fan_in=fan_in, generator=gen, dtype=tdtype)
        name = f"lif{i}" if not readout or spiking_readout else f"li{i}"
        nodes[name] = XyloNeuron(b, syn, readout_dash_mem if readout else dash_mem,
                                 vth if (not readout or spiking_readout) else None, readout=readout,
                                 surrogate_alpha=surrogate_alpha, dtype=tdtype)
        edges += [(prev, f"fc{i}"), (f"fc{i}", name)]
        prev = name
    edges.append((prev, "output"))
    graph = SpikingGraph(nodes, edges, input_shape=sizes[0])
    graph.spec = {"builder": "xylo-mlp", "args": {
        "sizes": sizes, "dash_syn": dash_syn, "dash_mem": dash_mem, "vth": vth, "readout_dash_syn": readout_dash_syn,
        "readout_dash_mem": readout_dash_mem, "fan_in": fan_in, "mask_seed": mask_seed,
        "surrogate_alpha": surrogate_alpha, "spiking_readout": spiking_readout, "dtype": dtype}}
    return graph
