"""Recurrent and delayed policies closed loop, in both meanings of memory.

- ``window``: every decision starts from zero state, and what a recurrent or delayed
  connection still carries from the previous decision is cleared (graph time's own
  windowed semantics: the torch graph's ``window``).
- ``stream``: the state and what the connections carry run on across decisions, the
  input silent during the pipeline's drain between them (defined on Lava's timing).

Both must be bit-exact between Lava fixed point and the emulator.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from spikeloop.core.coding import InputEncoding
from spikeloop.core.envs import random_observations
from spikeloop.core.errors import ConfigError
from spikeloop.core.metadata import GraphMeta
from spikeloop.export.to_nir import export_graph
from spikeloop.runtime.backends import make_backend
from spikeloop.runtime.compiler import plan_from_nir
from spikeloop.runtime.fixed_point import quantize_plan
from spikeloop.runtime.runner import run_closed_loop
from spikeloop.train.graph import Delay, Neuron, SpikingGraph

F64 = torch.float64
T = 6
COMMON = dict(env_id="CartPole-v1", episodes=2, seed=7, progress=False, record=True, max_steps=30)


def _linear(n_in, n_out, gen, std, mean=0.0):
    m = nn.Linear(n_in, n_out, bias=False, dtype=F64)
    with torch.no_grad():
        m.weight.copy_(mean + std * torch.randn(n_out, n_in, generator=gen, dtype=F64))
    return m


def _policy(kind: str):
    """A 4-16-2 policy whose hidden LIF feeds itself back ('recurrent') or reaches the readout
    through a Delay of 2 steps ('delayed')."""
    gen = torch.Generator().manual_seed(3)
    nodes = {"fc": _linear(4, 16, gen, 1.0, 0.2), "lif": Neuron(16, "LIF", dv=0.3, vth=1.0, dtype=F64),
             "out": _linear(16, 2, gen, 0.8), "q": Neuron(2, "LI", dv=0.5, dtype=F64)}
    edges = [("input", "fc"), ("fc", "lif"), ("out", "q"), ("q", "output")]
    if kind == "recurrent":
        nodes["rec"] = _linear(16, 16, gen, 0.6)
        edges += [("lif", "rec"), ("rec", "lif"), ("lif", "out")]
    else:
        nodes["delay"] = Delay(2)
        edges += [("lif", "delay"), ("delay", "out")]
    graph = SpikingGraph(nodes, edges, 4)
    enc = InputEncoding.fit(random_observations("CartPole-v1", 300, 0))
    nir_graph = export_graph(graph, 1e-3, GraphMeta(dt_s=1e-3, T=T, encoding=enc, extra={"env_id": "CartPole-v1"}))
    plan = plan_from_nir(nir_graph)
    assert any(c.graph_delay for c in plan.connections)
    return graph, enc, plan, quantize_plan(plan)


@pytest.fixture(scope="module", params=["recurrent", "delayed"])
def policy(request):
    return _policy(request.param)


def _same(a, b):
    assert a.returns == b.returns
    for k in a.trace:
        assert np.array_equal(a.trace[k], b.trace[k]), k


def test_windowed_lava_fixed_equals_the_emulator_and_is_graph_time(policy):
    """Windowed: Lava fused fixed point beside the emulator as its twin (every raw output
    equal), batched and not; in float the emulator picks the torch graph's own action (a
    window from zero state) at every decision, so nothing leaked across decisions."""
    graph, enc, plan, fixed = policy
    lava = run_closed_loop(make_backend("lava-fused", plan, "fixed", fixed),
                           twin=make_backend("emulator", plan, "fixed", fixed), **COMMON)
    _same(lava, run_closed_loop(make_backend("emulator", plan, "fixed", fixed, batch=2), **COMMON))
    emu = run_closed_loop(make_backend("emulator", plan, "float"), **COMMON)
    with torch.no_grad():
        x = torch.as_tensor(enc.encode(emu.trace["observations"]), dtype=F64)
        q = graph.window(x, T)[-1].numpy()
    assert np.array_equal(q.argmax(-1), emu.trace["actions"])
    np.testing.assert_allclose(emu.trace["values"], q, rtol=0, atol=1e-12)


def test_windowed_without_clearing_would_differ(policy):
    """The clearing matters: streaming the same policy gives other values (so the windowed
    test above proves the clearing, not a policy that never carries anything)."""
    _, _, plan, fixed = policy
    win = run_closed_loop(make_backend("emulator", plan, "fixed", fixed), **COMMON)
    stream = run_closed_loop(make_backend("emulator", plan, "fixed", fixed, memory="stream"), **COMMON)
    assert not np.array_equal(win.trace["values"][:20], stream.trace["values"][:20])


def test_streaming_bit_exact_on_lava_per_node_fused_and_the_emulator(policy):
    """Streaming: the state carried across decisions (and episodes), bit-exact on Lava
    per-node (Lava's own Dense keeps what it carries), Lava fused and the emulator. Batched
    copies are refused: each would carry another history."""
    _, _, plan, fixed = policy
    runs = [run_closed_loop(make_backend(name, plan, "fixed", fixed, memory="stream"), **COMMON)
            for name in ("emulator", "lava-per-node", "lava-fused")]
    for r in runs[1:]:
        _same(runs[0], r)
    with pytest.raises(ConfigError, match="streaming policy .* run it with one environment"):
        run_closed_loop(make_backend("emulator", plan, "fixed", fixed, memory="stream", batch=2), **COMMON)


def test_lava_per_node_refuses_a_windowed_recurrent_policy(policy):
    _, _, plan, fixed = policy
    with pytest.raises(ConfigError, match=r"lava-per-node cannot clear what they carry between decision windows"
                                          r".*--memory stream"):
        make_backend("lava-per-node", plan, "fixed", fixed)
    with pytest.raises(ConfigError, match="reference runs graph time.*no pipeline drain"):
        make_backend("reference", plan, "float", memory="stream")
