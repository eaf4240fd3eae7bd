"""Mapping checks: one network that fits and one that fails per profile, values worked by hand."""
from __future__ import annotations

import nir
import numpy as np
import pytest

from spikeloop.cli import main
from spikeloop.core.errors import HardwareConstraintError
from spikeloop.core.nir_io import read_graph
from spikeloop.hwprofiles import load_profile
from spikeloop.hwprofiles.fit import (NOT_CHECKED, OK, RULES, Layer, Network, check_fit,
                                      layers_from_nir, layers_from_plan, speck_memory)
from spikeloop.hwprofiles.profile import MAPPING_LIMITS
from spikeloop.runtime.compiler import plan_from_nir

DATA = "tests/data/policy.nir"


def dense(name, n, sources: dict, model="LIF", bias=False) -> Layer:
    """A dense layer; ``sources`` maps source name -> (source size, non-zeros per row)."""
    weights = {}
    for src, (n_src, nnz) in sources.items():
        w = np.zeros((n, n_src), np.int8)
        w[:, :nnz] = 1
        weights[src] = w
    return Layer(name, "dense", n, model, tuple(sources), weights, has_bias=bias)


def mlp(sizes, readout="LIF") -> Network:
    """Fully connected sizes[0] -> ... -> sizes[-1]."""
    layers, prev = [], "input"
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        layers.append(dense(f"l{i}", b, {prev: (a, a)}, readout if last else "LIF"))
        prev = f"l{i}"
    return Network(sizes[0], layers, prev, "toy")


def status(report, rule):
    return next(r.status for r in report.results if r.rule == rule)


def fired(report):
    return sorted({(v.rule, v.layer) for v in report.violations})


def test_every_rule_reads_only_limits_its_mapping_requires():
    for mapping, rules in RULES.items():
        listed = set(MAPPING_LIMITS[mapping])
        for rule in rules:
            assert set(rule.needs) <= listed, (mapping, rule.name)


# ---------------------------------------------------------------- Loihi: cores of 1024 neurons, 128 KB, 4096 axons
def test_loihi_fits_with_hand_computed_placement():
    rep = check_fit(mlp([4, 64, 64, 2]), load_profile("loihi"))
    assert rep.fits is True and rep.cores_used == 3 and rep.cores_available == 128
    c0, c1, c2 = rep.per_core
    assert (c0["neurons"], c0["synapse_bytes"], c0["fan_in"], c0["fan_out"]) == (64, 256, 4, 64)
    assert (c1["neurons"], c1["synapse_bytes"], c1["fan_in"], c1["fan_out"]) == (64, 4096, 64, 64)
    assert (c2["neurons"], c2["synapse_bytes"], c2["fan_in"], c2["fan_out"]) == (2, 128, 64, 0)
    assert c1["utilisation"] == {"neurons": 64 / 1024, "synapse_bytes": 4096 / 131072, "fan_in": 64 / 4096,
                                 "fan_out": 64 / 4096}
    assert status(rep, "synapses_per_chip") == NOT_CHECKED  # Loihi's per-chip synapse count is not in HARDWARE.md


def test_loihi_splits_layers_by_neurons_and_by_synapse_memory():
    # 2048 neurons -> 2 cores of 1024; 100 neurons x 2000 inputs = 200,000 B > 131,072 B -> 2 cores of 50
    net = Network(2000, [dense("wide", 2048, {"input": (2000, 1)}), dense("heavy", 100, {"input": (2000, 2000)})],
                  "heavy")
    rep = check_fit(net, load_profile("loihi"))
    assert rep.fits is True
    assert [(c["layer"], c["neurons"], c["synapse_bytes"]) for c in rep.per_core] == [
        ("wide", 1024, 1024), ("wide", 1024, 1024), ("heavy", 50, 100_000), ("heavy", 50, 100_000)]


def test_loihi_fails_with_every_violation_in_one_error():
    # one neuron with 5000 inputs: 5000 axons > 4096; 131,073 neurons: 129 cores > 128 and > 131,072 neurons
    net = Network(5000, [dense("fanin", 1, {"input": (5000, 5000)}),
                         dense("big", 131_073, {"input": (5000, 1)})], "big", "toy")
    rep = check_fit(net, load_profile("loihi"))
    assert rep.fits is False
    assert fired(rep) == [("cores", "<network>"), ("fan_in_per_core", "fanin"), ("neurons_per_chip", "<network>")]
    v = {v.rule: v for v in rep.violations}
    assert (v["fan_in_per_core"].value, v["fan_in_per_core"].limit, v["fan_in_per_core"].excess) == (5000, 4096, 904)
    assert (v["cores"].value, v["cores"].limit, v["cores"].excess) == (1 + 129, 128, 2)
    assert (v["neurons_per_chip"].value, v["neurons_per_chip"].excess) == (131_074, 2)
    with pytest.raises(HardwareConstraintError) as e:
        rep.raise_if_violated()
    msg = str(e.value)
    assert msg.startswith("toy does not fit loihi (Intel Loihi (2018)): 3 violation(s)\n")
    assert ("  - [fan_in_per_core] layer 'fanin': input axons on core 0 5,000 axons > limit 4,096 axons "
            "(excess 904 axons)") in msg
    assert "[cores] layer '<network>': cores used 130 cores > limit 128 cores (excess 2 cores)" in msg


# ---------------------------------------------------------------- Loihi 2: 8192 neurons and 192 KB per core
def test_loihi2_fits_and_fails():
    ok = check_fit(mlp([4, 64, 64, 2]), load_profile("loihi2"))
    assert ok.fits is True and ok.cores_used == 3
    assert status(ok, "memory_per_core") == OK and status(ok, "fan_in_per_core") == NOT_CHECKED
    # one neuron with 200,000 one-byte synapses > 196,608 B; 1,000,001 neurons > 1 M per chip
    net = Network(200_000, [dense("heavy", 1, {"input": (200_000, 200_000)}),
                            dense("many", 1_000_000, {"heavy": (1, 1)})], "many")
    rep = check_fit(net, load_profile("loihi2"))
    assert fired(rep) == [("memory_per_core", "heavy"), ("neurons_per_chip", "<network>")]
    v = {v.rule: v for v in rep.violations}
    assert (v["memory_per_core"].value, v["memory_per_core"].excess) == (200_000, 200_000 - 196_608)
    assert v["neurons_per_chip"].excess == 1


# ---------------------------------------------------------------- Xylo: 16 in, 1000 hidden, 8 out, fan-in 63
def test_xylo_fits():
    rep = check_fit(mlp([16, 63, 63, 8]), load_profile("xylo"))
    assert rep.fits is True
    assert [(r["resource"], r["used"], r["limit"]) for r in rep.resources] == [
        ("input channels", 16, 16), ("hidden neurons", 126, 1000), ("output neurons", 8, 8),
        ("non-zero weights", 16 * 63 + 63 * 63 + 63 * 8, 64_000)]
    assert status(rep, "decay_bit_shift") == NOT_CHECKED


def test_xylo_fails_on_every_limit():
    # 20 inputs; hidden 100 + 901 = 1001, the first non-spiking; 9 outputs (a voltage readout, which Xylo's
    # host reads); fan-in 100 > 63; weights 20*100 + 901*100 + 9*64 = 92,676 > 64,000
    layers = [dense("h1", 100, {"input": (20, 20)}, model="LI"), dense("h2", 901, {"h1": (100, 100)}),
              dense("out", 9, {"h2": (901, 64)}, model="LI")]
    rep = check_fit(Network(20, layers, "out", "toy"), load_profile("xylo"))
    v = {(v.rule, v.layer): v for v in rep.violations}
    assert sorted(v) == [("fan_in_per_neuron", "h2"), ("fan_in_per_neuron", "out"), ("hidden_neurons", "h1, h2"),
                         ("input_channels", "input"), ("neuron_models", "h1"), ("output_neurons", "out"),
                         ("total_weights", "<network>")]
    assert (v["input_channels", "input"].value, v["input_channels", "input"].excess) == (20, 4)
    assert (v["hidden_neurons", "h1, h2"].value, v["hidden_neurons", "h1, h2"].excess) == (1001, 1)
    assert (v["output_neurons", "out"].value, v["output_neurons", "out"].excess) == (9, 1)
    assert (v["fan_in_per_neuron", "h2"].value, v["fan_in_per_neuron", "h2"].excess) == (100, 37)
    assert (v["fan_in_per_neuron", "out"].value, v["fan_in_per_neuron", "out"].excess) == (64, 1)
    assert (v["total_weights", "<network>"].value, v["total_weights", "<network>"].excess) == (92_676, 28_676)
    assert v["neuron_models", "h1"].value == "LI (non-spiking)"


def test_trained_cartpole_policy_on_xylo_names_the_dense_hidden_layer():
    net = layers_from_nir(read_graph(DATA), source="policy.nir",
                          plan=plan_from_nir(read_graph(DATA), source="policy.nir"))
    rep = check_fit(net, load_profile("xylo"))
    w = net.layer("lif1").weights["lif0"]
    fan = np.count_nonzero(w, axis=1)
    v = {v.rule: v for v in rep.violations}
    assert sorted(v) == ["fan_in_per_neuron"]  # its voltage readout is a Xylo readout whose membrane the host reads
    assert v["fan_in_per_neuron"].layer == "lif1" and v["fan_in_per_neuron"].value == fan.max() == 64
    assert f"{np.count_nonzero(fan > 63)} of 64 neurons exceed it" in v["fan_in_per_neuron"].hint


# ---------------------------------------------------------------- Speck: 9 conv cores, memory formulas
def test_speck_memory_formulas_by_hand():
    conv = Layer("c", "conv2d", 8 * 64 * 64, "IF", ("input",), in_shape=(2, 64, 64), out_shape=(8, 64, 64),
                 kernel=(3, 3), kernel_nonzero=144)
    assert speck_memory(conv) == (8 * 64 * 64, 2 * 2 ** (4 + 3))  # ceil(log2 9) = 4, log2 8 = 3
    assert speck_memory(dense("d", 64, {"input": (64, 64)})) == (64, 64 * 2 ** (0 + 6))
    assert speck_memory(dense("d", 2, {"input": (64, 64)})) == (2, 64 * 2)
    assert speck_memory(dense("d", 1, {"input": (5, 5)})) == (1, 5)
    assert speck_memory(dense("d", 10, {"input": (3, 3)})) == (10, 3 * 16)  # f = 10 rounds up to 16


def _conv_graph(stride_b=2):
    """Input 2x64x64 -> conv 3x3 (8) -> IF -> sum-pool 2 -> conv 3x3 (16, stride) -> IF -> conv (10) -> IF."""
    def if_(shape):
        return nir.IF(r=np.ones(shape), v_threshold=np.ones(shape))

    side_b = (32 + 2 - 3) // stride_b + 1
    nodes = {
        "input": nir.Input(input_type={"input": np.array([2, 64, 64])}),
        "convA": nir.Conv2d(input_shape=(64, 64), weight=np.ones((8, 2, 3, 3)), stride=1, padding=1, dilation=1,
                            groups=1, bias=np.zeros(8)),
        "ifA": if_((8, 64, 64)),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "convB": nir.Conv2d(input_shape=(32, 32), weight=np.ones((16, 8, 3, 3)), stride=stride_b, padding=1,
                            dilation=1, groups=1, bias=np.zeros(16)),
        "ifB": if_((16, side_b, side_b)),
        "convC": nir.Conv2d(input_shape=(side_b, side_b), weight=np.ones((10, 16, side_b, side_b)), stride=1,
                            padding=0, dilation=1, groups=1, bias=np.zeros(10)),
        "ifC": if_((10, 1, 1)),
        "output": nir.Output(output_type={"output": np.array([10, 1, 1])}),
    }
    edges = [("input", "convA"), ("convA", "ifA"), ("ifA", "pool"), ("pool", "convB"), ("convB", "ifB"),
             ("ifB", "convC"), ("convC", "ifC"), ("ifC", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def test_speck_conv_network_from_nir_fits_on_hand_computed_cores():
    net = layers_from_nir(_conv_graph(), source="conv.nir")
    a, b, c = net.layers
    assert (a.in_shape, a.out_shape, a.pool) == ((2, 64, 64), (8, 64, 64), 2)
    assert (b.in_shape, b.out_shape, b.stride) == ((8, 32, 32), (16, 16, 16), (2, 2))
    assert (c.in_shape, c.out_shape, c.kernel) == ((16, 16, 16), (10, 1, 1), (16, 16))
    rep = check_fit(net, load_profile("speck"))
    assert rep.fits is True and rep.cores_used == 3
    # A: 32,768 neurons, 2*2^(4+3) = 256 kernel -> core 0; B: 4,096, 8*2^(4+4) = 2,048 -> core 1;
    # C: 10, 16*2^(8+4) = 65,536 kernel entries -> only cores 5 and 6 hold 64Ki: core 5
    assert [(p["core"], p["layer"], p["neuron_memory"], p["kernel_memory"]) for p in rep.per_core] == [
        (0, "ifA", 32_768, 256), (1, "ifB", 4_096, 2_048), (5, "ifC", 10, 65_536)]
    assert rep.per_core[2]["utilisation"] == {"neuron_memory": 10 / 16384, "kernel_memory": 1.0}


def test_speck_fails_stride_from_nir_and_kernel_limits():
    rep = check_fit(layers_from_nir(_conv_graph(stride_b=3), source="conv.nir"), load_profile("speck"))
    assert fired(rep) == [("strides", "ifB")] and rep.violations[0].value == "(3, 3)"
    assert rep.per_core[2]["kernel_memory"] == 16 * 2 ** (7 + 4)  # 11x11 = 121 -> 2^7, f = 10 -> 2^4
    big = Layer("k17", "conv2d", 10, "IF", ("input",), in_shape=(16, 20, 20), out_shape=(10, 4, 4),
                kernel=(17, 17), padding=(8, 0), kernel_nonzero=10 * 16 * 17 * 17)
    rep = check_fit(Network(16 * 400, [big], "k17", "toy"), load_profile("speck"))
    v = {v.rule: v for v in rep.violations}
    assert sorted(v) == ["kernel_memory_per_core", "max_kernel_size", "max_padding"]
    assert (v["max_kernel_size"].value, v["max_kernel_size"].excess) == (17, 1)
    assert (v["max_padding"].value, v["max_padding"].excess) == (8, 1)
    # 17x17 = 289 -> 2^9; f = 10 -> 2^4: 16 * 2^13 = 131,072 entries > 65,536
    assert (v["kernel_memory_per_core"].value, v["kernel_memory_per_core"].excess) == (131_072, 65_536)


def test_speck_fails_cores_destinations_channels_and_neuron_model():
    layers = [dense("hub", 8, {"input": (4, 4)})]
    layers += [dense(f"b{i}", 8, {"hub": (8, 8)}) for i in range(3)]  # hub feeds 3 cores
    layers += [dense(f"c{i}", 8, {f"c{i - 1}" if i else "b0": (8, 8)}) for i in range(5)]
    layers += [dense("wide", 2, {"c4": (2000, 1)}, model="LI")]  # 2000 input channels, non-spiking
    rep = check_fit(Network(4, layers, "wide", "toy"), load_profile("speck"))
    v = {v.rule: v for v in rep.violations}
    assert sorted(v) == ["cores", "destinations_per_core", "max_channels", "neuron_models"]
    assert (v["cores"].value, v["cores"].limit, v["cores"].excess) == (10, 9, 1)
    assert (v["destinations_per_core"].layer, v["destinations_per_core"].value,
            v["destinations_per_core"].excess) == ("hub", 3, 1)
    assert (v["max_channels"].layer, v["max_channels"].value, v["max_channels"].excess) == ("wide", 2000, 976)
    assert v["neuron_models"].limit == "IF, LIF"


def test_speck_core_assignment_needs_distinct_cores():
    # three layers of 64 x (1x1) -> 64 channels... each needing 65,536 kernel entries: only 2 cores have them
    layers = [dense(f"k{i}", 64, {"input" if i == 0 else f"k{i - 1}": (1024, 64)}) for i in range(3)]
    for lay in layers:
        assert speck_memory(lay) == (64, 1024 * 64)
    rep = check_fit(Network(1024, layers, "k2", "toy"), load_profile("speck"))
    assert fired(rep) == [("core_assignment", "k2")]
    assert status(rep, "kernel_memory_per_core") == OK


# ---------------------------------------------------------------- TrueNorth and SpiNNaker 2: what is published
def test_truenorth_checks_chip_totals_only():
    ok = check_fit(mlp([4, 64, 64, 2]), load_profile("truenorth"))
    assert ok.fits is True and ok.cores_used is None
    assert status(ok, "neurons_per_chip") == OK and status(ok, "neurons_per_core") == NOT_CHECKED
    assert ok.verdict() == "yes, 8 rules not checked"
    bad = check_fit(Network(1, [dense("n", 1_000_001, {"input": (1, 1)})], "n"), load_profile("truenorth"))
    assert fired(bad) == [("neurons_per_chip", "<network>")] and bad.violations[0].excess == 1


def test_spinnaker2_can_neither_pass_nor_fail():
    rep = check_fit(mlp([4, 64, 64, 2]), load_profile("spinnaker2"))
    assert rep.fits is None and rep.verdict() == "unknown (no limit published)"
    assert all(r.status == NOT_CHECKED for r in rep.results)
    huge = check_fit(Network(1, [dense("n", 2_000_000, {"input": (1, 1)})], "n"), load_profile("spinnaker2"))
    assert huge.fits is None


def test_plan_and_nir_views_agree_on_the_trained_policy(small_plan):
    net = layers_from_plan(small_plan)
    assert [lay.model for lay in net.layers] == ["LIF", "LIF", "LI"]
    assert [lay.neurons for lay in net.layers] == [32, 32, 2]
    assert all(status(check_fit(net, load_profile("loihi")), r) in (OK, NOT_CHECKED)
               for r in ("cores", "neurons_per_core"))


# ---------------------------------------------------------------- CLI
def test_cli_fit_prints_placement_and_fails_with_all_violations(capsys):
    assert main(["fit", DATA, "--profile", "loihi"]) == 0
    out = capsys.readouterr().out
    assert "fits: yes" in out and "cores used: 3 of 128" in out
    assert main(["fit", DATA, "--profile", "loihi,xylo,speck"]) == 2
    err = capsys.readouterr().err
    assert "does not fit xylo" in err and "[fan_in_per_neuron] layer 'lif1'" in err
    assert "does not fit speck" in err and "[neuron_models] layer 'li2'" in err
