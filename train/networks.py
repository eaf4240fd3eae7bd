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
from spikeloop.core.neuron import HARD, RESET_MODES
from spikeloop.train.graph import Neuron, QuantLinear, SpikingGraph

MAX_PARAMETERS = 50_000_000
"""the largest network a checkpoint may declare (weights and biases)"""

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


@register_builder("mlp")
def spiking_mlp(sizes, du: float = 1.0, dv: float = 0.125, vth: float = 1.0, readout_dv: float | None = None,
                readout_du: float | None = None, reset: str = HARD, fake_quant: bool = False,
                surrogate_alpha: float = 2.0, dtype: str = "float32") -> SpikingGraph:
    """Graded input -> hidden spiking populations -> a non-spiking leaky-integrator readout.

    Nodes ``fc0, lif0, fc1, lif1, ..., fcK, liK`` (``cubalif``/``cubali`` when ``du < 1``):
    bias-free :class:`QuantLinear` synapses, the bias lives in the neuron. ``du``/``dv``
    are the per-step decays of the hidden populations, ``readout_du``/``readout_dv``
    those of the readout (default: the same), ``vth`` the hidden threshold.
    """
    sizes = _sizes(sizes)
    for name, value in (("du", du), ("dv", dv), ("readout_du", readout_du), ("readout_dv", readout_dv)):
        if value is not None:
            _number(name, value, 0.0, 1.0)
    _number("vth", vth, 0.0)
    _number("surrogate_alpha", surrogate_alpha, 0.0)
    if not isinstance(fake_quant, bool):
        raise ConfigError(f"network argument fake_quant must be true or false, got {fake_quant!r}")
    if not isinstance(reset, str) or reset not in RESET_MODES:
        raise ConfigError(f"network argument reset must be one of {RESET_MODES}, got {reset!r}")
    if dtype not in ("float32", "float64"):
        raise ConfigError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    tdtype = getattr(torch, dtype)
    readout_du = du if readout_du is None else readout_du
    readout_dv = dv if readout_dv is None else readout_dv
    nodes, edges, prev = {}, [], "input"
    last = len(sizes) - 2
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        readout = k == last
        d_u = readout_du if readout else du
        cuba = d_u != 1.0
        kind = ("CubaLI" if cuba else "LI") if readout else ("CubaLIF" if cuba else "LIF")
        nodes[f"fc{k}"] = QuantLinear(a, b, bias=False, fake_quant=fake_quant, dtype=tdtype)
        label = {"LIF": "lif", "LI": "li", "CubaLIF": "cubalif", "CubaLI": "cubali"}[kind]
        nodes[f"{label}{k}"] = Neuron(b, kind, du=d_u if cuba else None, dv=readout_dv if readout else dv,
                                      vth=None if readout else vth, reset=reset,
                                      surrogate_alpha=surrogate_alpha, dtype=tdtype)
        edges += [(prev, f"fc{k}"), (f"fc{k}", f"{label}{k}")]
        prev = f"{label}{k}"
    edges.append((prev, "output"))
    graph = SpikingGraph(nodes, edges, input_shape=sizes[0])
    graph.spec = {"builder": "mlp", "args": {
        "sizes": sizes, "du": du, "dv": dv, "vth": vth, "readout_du": readout_du, "readout_dv": readout_dv,
        "reset": reset, "fake_quant": fake_quant, "surrogate_alpha": surrogate_alpha, "dtype": dtype}}
    return graph
