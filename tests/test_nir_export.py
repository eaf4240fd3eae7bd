"""torch -> NIR -> file -> NIR -> plan: exact round trips and preserved behaviour."""
from __future__ import annotations

import json

import nir
import numpy as np
import pytest
import torch

from conftest import random_policy
from spikeloop.core.errors import ExportError, NIRValidationError
from spikeloop.core.metadata import GraphMeta
from spikeloop.core.nir_io import read_graph, write_graph
from spikeloop.export.to_nir import export_policy
from spikeloop.runtime.compiler import plan_from_nir
from spikeloop.runtime.simulate import simulate


def graphs_equal(a: nir.NIRGraph, b: nir.NIRGraph) -> None:
    assert set(a.nodes) == set(b.nodes)
    assert sorted(a.edges) == sorted(b.edges)
    assert a.metadata == b.metadata
    for name in a.nodes:
        na, nb = a.nodes[name], b.nodes[name]
        assert type(na) is type(nb), name
        for k, v in vars(na).items():
            if k in ("input_type", "output_type", "metadata"):
                continue
            np.testing.assert_array_equal(np.asarray(v), np.asarray(getattr(nb, k)), err_msg=f"{name}.{k}")
            assert np.asarray(v).dtype == np.asarray(getattr(nb, k)).dtype, f"{name}.{k} dtype"


@pytest.mark.parametrize("du", [1.0, 0.5])  # LIF/LI and CubaLIF/CubaLI
def test_write_read_round_trip_is_exact(tmp_path, du):
    model, enc = random_policy(du=du)
    graph = export_policy(model, 1e-3, {"env_id": "CartPole-v1"})
    kinds = {type(n).__name__ for n in graph.nodes.values()}
    assert kinds == ({"Input", "Output", "Linear", "LIF", "LI"} if du == 1.0
                     else {"Input", "Output", "Linear", "CubaLIF", "CubaLI"})
    path = write_graph(tmp_path / "p.nir", graph)
    back = read_graph(path)
    graphs_equal(graph, back)
    meta = GraphMeta.from_nir_metadata(back.metadata)
    assert meta.dt_s == 1e-3 and meta.T == model.T and meta.reset == "hard"
    assert meta.encoding == enc and meta.extra["env_id"] == "CartPole-v1"
    assert meta.decoding.to_dict() == {"kind": "readout_voltage", "step": "last", "action": "argmax"}
    assert json.loads(back.metadata["spikeloop"])["format"] == 1
    spiking = [n for n, v in back.nodes.items() if type(v).__name__ in ("LIF", "CubaLIF")]
    assert len(spiking) == 2 and all(back.nodes[n].metadata == {"reset": "hard"} for n in spiking)


@pytest.mark.parametrize("du", [1.0, 0.5])
def test_export_write_read_compile_preserves_behaviour(tmp_path, du, rng):
    """The compiled graph read back from disk reproduces the torch model, step for step."""
    model, enc = random_policy(du=du, seed=4)
    path = write_graph(tmp_path / "p.nir", export_policy(model, 1e-3))
    plan = plan_from_nir(read_graph(path))
    x = enc.encode(rng.normal(size=(1, 4)))
    seq = np.repeat(x, model.T, axis=0)  # the decision window: the input held for T steps
    with torch.no_grad():
        q = model(torch.as_tensor(x))
        _, traces = model.network(torch.as_tensor(seq)[:, None], record=True)
    spikes = [traces[f"{p.name}.spikes"][:, 0].numpy() for p in plan.populations[:-1]]
    for backend in ("torch", "emulator", "lava"):
        res = simulate(plan, seq, backend, "float")
        np.testing.assert_allclose(res.output[-1], q.numpy()[0], rtol=0, atol=1e-9, err_msg=backend)
        for k, p in enumerate(plan.populations[:-1]):
            np.testing.assert_array_equal(res.spikes[p.name], spikes[k], err_msg=f"{backend} {p.name}")
    assert sum(int(s.sum()) for s in spikes) > 0


def test_soft_reset_policy_exports_per_node():
    """One exporter for every network: a soft-reset population keeps its mode in its node metadata."""
    model, enc = random_policy()
    model.network.nodes["lif0"].reset = "soft"
    graph = export_policy(model, 1e-3)
    assert graph.nodes["lif0"].metadata == {"reset": "soft"} and graph.nodes["lif1"].metadata == {"reset": "hard"}
    assert GraphMeta.from_nir_metadata(graph.metadata).reset == "mixed"
    assert plan_from_nir(graph).population("lif0").reset == "soft"
    with pytest.raises(ExportError, match="takes a Policy"):
        export_policy(model.network, 1e-3)


def test_missing_dt_is_one_clear_error(tmp_path):
    model, enc = random_policy()
    graph = export_policy(model, 1e-3)
    graph.metadata = {}
    with pytest.raises(NIRValidationError, match=r"carries no time step \('dt' metadata\); pass it explicitly"):
        plan_from_nir(graph, source="g.nir")
    assert plan_from_nir(graph, dt_s=1e-3).dt_s == 1e-3
