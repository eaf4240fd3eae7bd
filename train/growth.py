"""Growing and pruning the hidden populations of a spiking MLP while it learns.

A network built by :func:`~spikeloop.train.networks.spiking_mlp` (nodes ``fc0, lif0, ...,
fcK, liK``) is resized layer by layer: :func:`resize_hidden` rebuilds it from its spec with
new sizes and carries every kept neuron's weights in and out (and its bias) over unchanged;
new neurons get Kaiming-initialised input weights and zero output weights, so that growing
leaves the network's function as it was. :func:`growth_step` applies the rules:

- **grow** when a layer's mean firing rate is below ``grow_below``: ``grow_by`` neurons,
  up to ``max_neurons``;
- **prune** when more than ``prune_share`` of a layer's neurons fire below ``prune_below``:
  those neurons go, keeping at least ``min_neurons`` (the most active of them).

The resized network is an ordinary spiking MLP: it exports, compiles and runs in Lava.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from spikeloop.core.errors import ConfigError
from spikeloop.train.graph import SpikingGraph
from spikeloop.train.networks import build


@dataclass(frozen=True)
class GrowthRules:
    """When to grow and prune (firing rates are spikes per neuron per step)."""

    grow_below: float = 0.05
    grow_by: int = 32
    max_neurons: int = 256
    prune_below: float = 0.005
    prune_share: float = 0.3
    min_neurons: int = 32


def hidden_names(net: SpikingGraph) -> list[tuple[str, str, str]]:
    """``(synapse in, population, synapse out)`` of each hidden layer of a spiking MLP."""
    spec = getattr(net, "spec", None)
    if not spec or spec.get("builder") != "mlp" or spec["args"].get("dueling"):
        raise ConfigError("growing and pruning resize a plain spiking MLP (builder 'mlp', no dueling head)")
    n_hidden = len(spec["args"]["sizes"]) - 2
    fed = {a: b for a, b in net.edges}  # each synapse feeds one population
    return [(f"fc{k}", fed[f"fc{k}"], f"fc{k + 1}") for k in range(n_hidden)]


def resize_hidden(net: SpikingGraph, layer: int, keep: np.ndarray, add: int,
                  generator: torch.Generator) -> SpikingGraph:
    """The network with hidden layer ``layer`` reduced to neurons ``keep`` (in order) plus ``add`` new ones."""
    names = hidden_names(net)
    fc_in, pop, fc_out = names[layer]
    sizes = list(net.spec["args"]["sizes"])
    keep = np.asarray(keep, dtype=np.int64)
    sizes[layer + 1] = len(keep) + add
    new = build({"builder": "mlp", "args": {**net.spec["args"], "sizes": sizes}})
    old_state = net.state_dict()
    state = new.state_dict()
    for k, v in old_state.items():  # every other tensor as it was
        if not k.startswith((f"nodes.{fc_in}.", f"nodes.{pop}.", f"nodes.{fc_out}.")):
            state[k] = v.clone()
    idx = torch.as_tensor(keep)
    w_in = old_state[f"nodes.{fc_in}.weight"]
    fresh = torch.randn((add, w_in.shape[1]), generator=generator, dtype=w_in.dtype) * np.sqrt(2.0 / w_in.shape[1])
    state[f"nodes.{fc_in}.weight"] = torch.cat([w_in[idx], fresh])
    w_out = old_state[f"nodes.{fc_out}.weight"]
    state[f"nodes.{fc_out}.weight"] = torch.cat([w_out[:, idx], w_out.new_zeros((w_out.shape[0], add))], dim=1)
    bias = old_state[f"nodes.{pop}.bias"]
    state[f"nodes.{pop}.bias"] = torch.cat([bias[idx], bias.new_zeros(add)])
    new.load_state_dict(state)
    return new


def growth_step(net: SpikingGraph, rates: dict[str, np.ndarray], rules: GrowthRules,
                generator: torch.Generator) -> tuple[SpikingGraph, list[dict]]:
    """Apply the rules to every hidden layer given its neurons' firing rates ``rates[population]``;
    the (possibly) resized network and one event per change (layer, kind, before, after)."""
    events = []
    for layer, (_, pop, _) in enumerate(hidden_names(net)):
        r = np.asarray(rates[pop], dtype=np.float64)
        n = r.size
        quiet = r < rules.prune_below
        if quiet.mean() > rules.prune_share and n > rules.min_neurons:
            order = np.argsort(-r, kind="stable")  # most active first
            keep = np.sort(order[:max(rules.min_neurons, int((~quiet).sum()))])
            net = resize_hidden(net, layer, keep, 0, generator)
            events.append({"layer": pop, "event": "prune", "before": n, "after": len(keep),
                           "rate": float(r.mean())})
        elif r.mean() < rules.grow_below and n < rules.max_neurons:
            add = min(rules.grow_by, rules.max_neurons - n)
            net = resize_hidden(net, layer, np.arange(n), add, generator)
            events.append({"layer": pop, "event": "grow", "before": n, "after": n + add, "rate": float(r.mean())})
    return net, events
