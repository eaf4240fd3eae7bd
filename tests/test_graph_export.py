"""SpikingGraph: graph-time semantics by hand, and exact torch -> NIR -> file -> NIR round trips."""
from __future__ import annotations

import json

import nir
import numpy as np
import pytest
import torch
from torch import nn

from graph_cases import DT_S, graph_cases
from spikeloop.core.errors import ConfigError, ExportError
from spikeloop.core.metadata import GraphMeta
from spikeloop.core.nir_io import read_graph, write_graph
from spikeloop.export.to_nir import GRAPH_EXPORTERS, export_graph
from spikeloop.train.graph import (Delay, Neuron, Scale, SpikingGraph, SumPool2d, Threshold,
                                   graph_order)

F64 = torch.float64
CASES = graph_cases()


def chain(*named, input_shape):
    path = ["input", *(n for n, _ in named), "output"]
    return SpikingGraph(dict(named), list(zip(path[:-1], path[1:])), input_shape)


def run(g: SpikingGraph, x, record=False):
    """Run an unbatched time-major sequence; drop the batch dimension again."""
    with torch.no_grad():
        res = g(torch.as_tensor(np.asarray(x, dtype=np.float64))[:, None], record=record)
    if record:
        return res[0][:, 0].numpy(), {k: v[:, 0].numpy() for k, v in res[1].items()}
    return res[:, 0].numpy()


def fixed_linear(weight, bias=None):
    w = torch.as_tensor(weight, dtype=F64)
    m = nn.Linear(w.shape[1], w.shape[0], bias=bias is not None, dtype=F64)
    with torch.no_grad():
        m.weight.copy_(w)
        if bias is not None:
            m.bias.copy_(torch.as_tensor(bias, dtype=F64))
    return m


# ----------------------------------------------------------------------------- graph_order


def test_graph_order_finds_back_edges_by_dfs_in_edge_order():
    names = ["input", "fc", "lif", "rec", "output"]
    edges = [("input", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "output")]
    assert graph_order(names, edges, "input") == (["input", "fc", "lif", "output", "rec"], [("rec", "lif")])
    # a self-loop is a back edge; the order is the reverse DFS post-order
    order, back = graph_order(["input", "b", "a", "output"],
                              [("input", "a"), ("input", "b"), ("a", "a"), ("a", "output"), ("b", "output")],
                              "input")
    assert order == ["input", "b", "a", "output"] and back == [("a", "a")]
    # a two-node cycle entered at b: the edge back into b closes it
    order, back = graph_order(["input", "a", "b", "output"],
                              [("input", "b"), ("a", "b"), ("b", "a"), ("b", "output")], "input")
    assert back == [("a", "b")] and order == ["input", "b", "output", "a"]


@pytest.mark.parametrize("names, edges, message", [
    (["input", "a"], [("input", "x")], "names node 'x', which does not exist"),
    (["input", "a"], [("input", "a"), ("input", "a")], "duplicate edge"),
    (["input", "a"], [("input", "a"), ("a", "input")], "leads into the input node"),
    (["input", "a", "b"], [("input", "a"), ("b", "a")], r"nodes \['b'\] are not reachable"),
])
def test_graph_order_errors(names, edges, message):
    with pytest.raises(ValueError, match=message):
        graph_order(names, edges, "input")


# ----------------------------------------------------------------------------- torch by hand


def test_delay_by_hand():
    g = chain(("d", Delay(2)), input_shape=1)
    np.testing.assert_array_equal(run(g, [[1.0], [2.0], [3.0], [4.0], [5.0]])[:, 0], [0, 0, 1, 2, 3])


def test_threshold_is_strict_and_stateless():
    g = chain(("thr", Threshold([0.5, 0.25], dtype=F64)), input_shape=2)
    y = run(g, [[0.5, 0.25], [0.6, 0.3], [0.2, 0.0], [0.75, 0.25]])
    np.testing.assert_array_equal(y, [[0, 0], [1, 1], [0, 0], [1, 0]])


@pytest.mark.parametrize("reset, v, s", [
    # v = 0.75 v + 0.75, vth = 1; soft: v -= 1 where s; hard: v = 0 where s
    ("soft", [0.75, 0.3125, 0.984375, 0.48828125], [0, 1, 0, 1]),
    ("hard", [0.75, 0.0, 0.75, 0.0], [0, 1, 0, 1]),
])
def test_lif_reset_by_hand(reset, v, s):
    g = chain(("lif", Neuron(1, "LIF", dv=0.25, vth=1.0, reset=reset, dtype=F64)), input_shape=1)
    y, tr = run(g, [[0.75]] * 4, record=True)
    np.testing.assert_array_equal(tr["lif.v"][:, 0], v)
    np.testing.assert_array_equal(y[:, 0], s)
    np.testing.assert_array_equal(tr["lif.spikes"], y)


def test_cubalif_and_if_by_hand():
    # CubaLIF du = dv = 0.5, one input of 1 at t = 0: u = 1, .5, .25; v = 1, 1, .75 (vth 2: silent)
    g = chain(("n", Neuron(1, "CubaLIF", du=0.5, dv=0.5, vth=2.0, dtype=F64)), input_shape=1)
    _, tr = run(g, [[1.0], [0.0], [0.0]], record=True)
    np.testing.assert_array_equal(tr["n.v"][:, 0], [1.0, 1.0, 0.75])
    # IF integrates without leak: 0.4, 0.8, 1.2 -> spike, reset to 0, 0.4
    g = chain(("n", Neuron(1, "IF", vth=1.0, dtype=F64)), input_shape=1)
    y, tr = run(g, [[0.375]] * 4, record=True)
    np.testing.assert_array_equal(tr["n.v"][:, 0], [0.375, 0.75, 0.0, 0.375])
    np.testing.assert_array_equal(y[:, 0], [0, 0, 1, 0])


def test_li_outputs_its_voltage():
    g = chain(("li", Neuron(1, "LI", dv=0.5, bias=0.25, dtype=F64)), input_shape=1)
    y, tr = run(g, [[1.0], [0.0], [0.0]], record=True)
    np.testing.assert_array_equal(y[:, 0], [1.25, 0.875, 0.6875])  # v = v/2 + x + 1/4
    np.testing.assert_array_equal(tr["li.v"], y)
    assert "li.spikes" not in tr


def test_recurrent_edge_carries_the_previous_step():
    # v = x[t] - s[t-1] (dv = 1: no memory), vth 0.5: spikes alternate under constant input
    nodes = {"fc": fixed_linear([[1.0]]), "lif": Neuron(1, "LIF", dv=1.0, vth=0.5, dtype=F64),
             "rec": fixed_linear([[-1.0]])}
    g = SpikingGraph(nodes, [("input", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"),
                             ("lif", "output")], 1)
    assert g.back_edges == [("rec", "lif")]
    y, tr = run(g, [[1.0]] * 5, record=True)
    np.testing.assert_array_equal(y[:, 0], [1, 0, 1, 0, 1])
    np.testing.assert_array_equal(tr["rec.out"][:, 0], [-1, 0, -1, 0, -1])


def test_inputs_of_a_node_are_summed():
    g = SpikingGraph({"a": Scale([2.0], dtype=F64), "b": Scale([3.0], dtype=F64)},
                     [("input", "a"), ("input", "b"), ("a", "output"), ("b", "output")], 1)
    np.testing.assert_array_equal(run(g, [[1.0], [-1.0]])[:, 0], [5.0, -5.0])


def test_pooling_by_hand():
    x = np.arange(16.0).reshape(1, 1, 4, 4)  # one step, one channel
    s = run(chain(("p", SumPool2d(2)), input_shape=(1, 4, 4)), x)[0, 0]
    a = run(chain(("p", nn.AvgPool2d(2)), input_shape=(1, 4, 4)), x)[0, 0]
    np.testing.assert_array_equal(s, [[10, 18], [42, 50]])
    np.testing.assert_array_equal(a, [[2.5, 4.5], [10.5, 12.5]])


def test_conv2d_and_flatten_by_hand():
    conv = nn.Conv2d(1, 1, 2, dtype=F64)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]))
        conv.bias.fill_(0.5)
    g = chain(("conv", conv), ("flat", nn.Flatten()), input_shape=(1, 3, 3))
    y = run(g, np.arange(9.0).reshape(1, 1, 3, 3))
    np.testing.assert_array_equal(y[0], [27.5, 37.5, 57.5, 67.5])
    assert g.node_shapes()["flat"] == ((1, 2, 2), (4,))


def test_nested_subgraph_by_hand():
    inner = chain(("s", Scale([2.0], dtype=F64)), ("d", Delay(1)), input_shape=1)
    g = chain(("sub", inner), ("lif", Neuron(1, "LIF", dv=1.0, vth=3.0, dtype=F64)), input_shape=1)
    y, tr = run(g, [[1.0], [2.0], [3.0]], record=True)
    np.testing.assert_array_equal(tr["sub.d.out"][:, 0], [0, 2, 4])
    np.testing.assert_array_equal(y[:, 0], [0, 0, 1])


def test_spiking_graph_is_differentiable():
    g, x = CASES["recurrent_lif"]
    out = g(torch.as_tensor(x)[:, None]).sum()
    out.backward()
    assert g.nodes["fc"].weight.grad.abs().sum() > 0
    assert g.nodes["rec"].weight.grad.abs().sum() > 0
    assert g.nodes["lif"].bias.grad.abs().sum() > 0
    g.zero_grad()


@pytest.mark.parametrize("build, message", [
    (lambda: chain(("lif", Neuron(3, "LIF", dv=0.5)), input_shape=2), r"node 'lif'.*shape \(3,\).*\(2,\)"),
    (lambda: SpikingGraph({"a": Scale([1.0])}, [("input", "a"), ("b", "output")], 1), "does not exist"),
    (lambda: chain(("output", Scale([1.0])), input_shape=1), "reserved"),
    (lambda: Neuron(2, "IF", bias=0.5), "IF population has no bias"),
    (lambda: Neuron(2, "LIF", du=0.5, dv=0.5), "use CubaLIF"),
    (lambda: Neuron(2, "CubaLIF", dv=0.5), "needs du"),
    (lambda: Neuron(2, "LIF", dv=0.0), "use IF"),
])
def test_construction_errors_name_the_fault(build, message):
    with pytest.raises(ConfigError, match=message):
        build()


# ----------------------------------------------------------------------------- export


def assert_graphs_identical(a: nir.NIRGraph, b: nir.NIRGraph, path: str = "") -> None:
    """Same node names, types, parameters (values and dtypes), metadata and edge list."""
    assert list(a.edges) == list(b.edges), path
    assert a.metadata == b.metadata, path
    assert set(a.nodes) == set(b.nodes), path
    for name, na in a.nodes.items():
        nb, where = b.nodes[name], f"{path}{name}"
        assert type(na) is type(nb), where
        if isinstance(na, nir.NIRGraph):
            assert_graphs_identical(na, nb, where + ".")
            continue
        assert na.metadata == nb.metadata, where
        for k, v in vars(na).items():
            if k in ("metadata", "input_type", "output_type"):
                continue
            w = getattr(nb, k)
            if isinstance(v, str):
                assert v == w, f"{where}.{k}"
                continue
            np.testing.assert_array_equal(np.asarray(v), np.asarray(w), err_msg=f"{where}.{k}")
            assert np.asarray(v).dtype == np.asarray(w).dtype, f"{where}.{k} dtype"
        for t in ("input_type", "output_type"):
            for (ka, va), (kb, vb) in zip(getattr(na, t).items(), getattr(nb, t).items()):
                assert ka == kb and np.array_equal(va, vb), f"{where}.{t}"


KINDS = {
    "affine_lif": {"Affine", "LIF"}, "linear_cubalif": {"Linear", "CubaLIF"}, "scale": {"Scale", "LIF"},
    "if": {"Linear", "IF"}, "li_readout": {"Linear", "LIF", "LI"},
    "cubali_readout": {"Linear", "CubaLIF", "CubaLI"}, "soft_lif": {"Linear", "LIF"},
    "threshold": {"Linear", "Threshold", "LIF"}, "delay": {"Linear", "LIF", "Delay"},
    "recurrent_lif": {"Linear", "LIF"}, "conv_lif": {"Conv2d", "LIF"},
    "conv_flatten_affine": {"Conv2d", "LIF", "Flatten", "Affine"}, "sumpool": {"Conv2d", "LIF", "SumPool2d"},
    "avgpool": {"AvgPool2d", "LIF"}, "nested": {"Linear", "LIF", "NIRGraph", "LI"},
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_export_write_read_is_exact(tmp_path, case):
    g, _ = CASES[case]
    graph = export_graph(g, DT_S, {"case": case})
    assert {type(n).__name__ for n in graph.nodes.values()} == KINDS[case] | {"Input", "Output"}
    assert graph.edges == g.edges
    back = read_graph(write_graph(tmp_path / "g.nir", graph))
    assert_graphs_identical(graph, back)
    meta = GraphMeta.from_nir_metadata(back.metadata)
    assert meta.dt_s == DT_S and meta.extra == {"case": case}
    assert meta.reset == ("soft" if case == "soft_lif" else "hard")
    for name, node in back.nodes.items():  # the reset travels per node
        if isinstance(node, (nir.LIF, nir.CubaLIF, nir.IF)):
            assert node.metadata == {"reset": g.nodes[name].reset}, name


def test_every_registered_type_is_covered_by_a_case():
    used = {type(m) for g, _ in CASES.values() for m in g.modules()}
    assert set(GRAPH_EXPORTERS) <= used


def _discrete(node: nir.NIRNode, dt: float) -> dict:
    """The compiler's forward-Euler reading (DESIGN.md), written out independently."""
    if isinstance(node, nir.IF):
        return dict(du=np.ones_like(node.r), dv=np.zeros_like(node.r), gain=dt * node.r, bias=np.zeros_like(node.r), vth=node.v_threshold)
    if isinstance(node, (nir.LIF, nir.LI)):
        dv = dt / node.tau
        return dict(du=np.ones_like(dv), dv=dv, gain=dv * node.r, bias=dv * node.v_leak,
                    vth=getattr(node, "v_threshold", None))
    du, dv = dt / node.tau_syn, dt / node.tau_mem
    return dict(du=du, dv=dv, gain=du * dv * node.r * node.w_in, bias=dv * node.v_leak,
                vth=getattr(node, "v_threshold", None))


@pytest.mark.parametrize("case", sorted(CASES))
def test_neuron_nodes_invert_the_compiler_mapping_exactly(case):
    g, _ = CASES[case]
    graph = export_graph(g, DT_S)
    for module, node in _neuron_pairs(g, graph):
        d = _discrete(node, DT_S)
        shape = module.shape
        for k in ("du", "dv", "gain", "bias"):
            assert np.shape(d[k]) == shape, k
        np.testing.assert_array_equal(d["du"], module.du)
        np.testing.assert_array_equal(d["dv"], module.dv)
        np.testing.assert_array_equal(d["gain"], 1.0)
        np.testing.assert_array_equal(d["bias"], module.bias.detach().numpy())
        if module.spiking:
            np.testing.assert_array_equal(d["vth"], np.full(shape, module.vth))
            np.testing.assert_array_equal(node.v_reset, 0.0)


def _neuron_pairs(g: SpikingGraph, graph: nir.NIRGraph):
    for name, m in g.nodes.items():
        if isinstance(m, SpikingGraph):
            yield from _neuron_pairs(m, graph.nodes[name])
        elif isinstance(m, Neuron):
            yield m, graph.nodes[name]


def test_node_conventions():
    """Delay in seconds, Conv2d input_shape (H, W), Flatten per sample, nested graphs by name."""
    g, _ = CASES["delay"]
    d = export_graph(g, DT_S).nodes["delay"]
    np.testing.assert_array_equal(d.delay, np.full(8, 3 * DT_S))
    graph = export_graph(*CASES["conv_flatten_affine"][:1], DT_S)
    conv, flat = graph.nodes["conv"], graph.nodes["flat"]
    np.testing.assert_array_equal(conv.input_shape, [6, 6])
    np.testing.assert_array_equal(conv.bias, np.zeros(2))  # no torch bias: zeros
    assert (flat.start_dim, flat.end_dim) == (0, -1)
    np.testing.assert_array_equal(flat.output_type["output"], [32])
    graph = export_graph(CASES["nested"][0], DT_S)
    sub = graph.nodes["sub"]
    assert ("lif0", "sub") in graph.edges and ("sub", "fc1") in graph.edges
    assert sub.edges == [("input", "fc"), ("fc", "lif"), ("lif", "output")]
    assert isinstance(sub.nodes["input"], nir.Input) and isinstance(sub.nodes["output"], nir.Output)
    assert sub.metadata == {} and sub.nodes["lif"].metadata == {"reset": "hard"}


def test_mixed_resets_and_graph_meta():
    g = chain(("a", Neuron(2, "LIF", dv=0.5, reset="soft")), ("b", Neuron(2, "LIF", dv=0.5)), input_shape=2)
    graph = export_graph(g, 1e-3, GraphMeta(dt_s=1e-3, T=8))
    body = json.loads(graph.metadata["spikeloop"])
    assert body["reset"] == "mixed" and body["T"] == 8 and graph.metadata["dt"] == 1e-3
    assert graph.nodes["a"].metadata == {"reset": "soft"} and graph.nodes["b"].metadata == {"reset": "hard"}
    with pytest.raises(ExportError, match="disagrees"):
        export_graph(g, 2e-3, GraphMeta(dt_s=1e-3))


@pytest.mark.parametrize("build, message", [
    (lambda: chain(("relu", nn.ReLU()), input_shape=2), r"node 'relu': ReLU has no NIR export"),
    (lambda: chain(("sub", chain(("bad", nn.Tanh()), input_shape=2)), input_shape=2),
     r"node 'sub.bad': Tanh has no NIR export"),
    (lambda: chain(("flat", nn.Flatten(0)), input_shape=(2, 2)), r"node 'flat'.*flattens the batch"),
    (lambda: chain(("fc", nn.Linear(3, 2)), input_shape=(2, 3)), r"node 'fc'.*put an nn.Flatten"),
    (lambda: chain(("p", nn.AvgPool2d(2, ceil_mode=True)), input_shape=(1, 3, 3)), r"node 'p'.*ceil_mode"),
    (lambda: chain(("c", nn.Conv2d(1, 1, 2, padding_mode="reflect")), input_shape=(1, 3, 3)), "padding_mode"),
    (lambda: _if_with_bias(), r"node 'n' \(IF\): bias must be 0"),
])
def test_export_errors_name_the_node(build, message):
    with pytest.raises(ExportError, match=message):
        export_graph(build(), 1e-3)


def _if_with_bias():
    g = chain(("n", Neuron(2, "IF")), input_shape=2)
    with torch.no_grad():
        g.nodes["n"].bias.fill_(0.5)  # trained into a bias after construction
    return g


# ----------------------------------------------------------------------------- the cases themselves


@pytest.mark.parametrize("case", sorted(CASES))
def test_cases_are_small_binary_float64_and_spike_a_fair_amount(case):
    g, x = CASES[case]
    assert x.ndim >= 2 and x.shape[0] <= 60 and set(np.unique(x)) <= {0.0, 1.0}
    assert x.shape[1:] == g.input_shape
    assert np.prod(x.shape[1:]) <= (72 if len(x.shape) == 4 else 8)
    assert all(p.dtype == F64 for p in g.parameters()) and all(b.dtype == F64 for b in g.buffers())
    _, tr = run(g, x, record=True)
    for k, s in tr.items():
        if k.endswith(".spikes"):
            assert 0.05 < s.mean() < 0.7, (k, s.mean())
    again, _ = graph_cases()[case]
    np.testing.assert_array_equal(run(again, x), run(g, x))  # seeded
