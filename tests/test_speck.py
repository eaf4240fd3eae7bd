"""Speck (DYNAP-CNN): the emulator against sinabs's software model of the chip, and what it refuses.

sinabs (SynSense's library) discretizes a network for the chip and runs it in software
(``sinabs.backend.dynapcnn.DynapcnnNetwork``, ``discretize=True``); spikeloop's emulator must give
the same integer weights, thresholds and spikes, step by step, on the same network. The sinabs
model is loaded as ``tests/sinabs_dynapcnn.py`` says (what that proves and what it cannot).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from spikeloop.core.coding import SPIKE_COUNT, Decoding
from spikeloop.core.errors import ConfigError
from spikeloop.core.metadata import GraphMeta
from spikeloop.core.neuron import HARD, SOFT
from spikeloop.core.speck import STATE_MAX, STATE_MIN, discretize_layer
from spikeloop.export.to_nir import export_graph
from spikeloop.runtime.compiler import plan_from_nir
from spikeloop.runtime.speck import SpeckEmulator, speck_layers
from spikeloop.train.graph import Neuron, QuantConv2d, QuantLinear, SpikingGraph, SumPool2d

pytest.importorskip("sinabs")

T = 12
SHAPE = (2, 10, 10)


def _graph(pool: int, reset: str, seed: int) -> SpikingGraph:
    """conv (2 -> 4, 3x3) -> IF -> [sum pooling] -> flatten -> linear (-> 5) -> IF, random weights."""
    g = torch.Generator().manual_seed(seed)
    conv = QuantConv2d(2, 4, 3, dtype=torch.float64)
    side = 8 // pool
    fc = QuantLinear(4 * side * side, 5, dtype=torch.float64)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=g, dtype=torch.float64) * 0.4 + 0.05)
        fc.weight.copy_(torch.randn(fc.weight.shape, generator=g, dtype=torch.float64) * 0.3 + 0.04)
    nodes = {"conv0": conv, "if0": Neuron((4, 8, 8), "IF", vth=1.0, reset=reset, dtype=torch.float64)}
    edges = [("input", "conv0"), ("conv0", "if0")]
    prev = "if0"
    if pool > 1:
        nodes["pool"] = SumPool2d(pool)
        edges.append((prev, "pool"))
        prev = "pool"
    nodes |= {"flatten": nn.Flatten(), "fc1": fc, "if1": Neuron(5, "IF", vth=1.5, reset=reset, dtype=torch.float64)}
    edges += [(prev, "flatten"), ("flatten", "fc1"), ("fc1", "if1"), ("if1", "output")]
    return SpikingGraph(nodes, edges, input_shape=SHAPE)


def _plan(graph: SpikingGraph):
    meta = GraphMeta(dt_s=1e-3, T=T, decoding=Decoding(kind=SPIKE_COUNT))
    return plan_from_nir(export_graph(graph, 1e-3, meta))


def _sinabs_model(graph: SpikingGraph, pool: int, reset: str):
    """The same network in sinabs's layers: single spikes, its reset, the 16-bit floor as min_v_mem."""
    import sinabs.activation as sa
    import sinabs.layers as sl

    def iaf(weight, vth):
        scale = discretize_layer(weight.detach().numpy(), vth)[3]
        return sl.IAFSqueeze(batch_size=1, spike_threshold=vth, min_v_mem=STATE_MIN / scale,
                             spike_fn=sa.SingleSpike,
                             reset_fn=sa.MembraneReset() if reset == HARD else sa.MembraneSubtract())

    n = graph.nodes
    conv = nn.Conv2d(2, 4, 3, bias=False)
    conv.weight.data = n["conv0"].weight.detach().float().clone()
    fc = nn.Linear(n["fc1"].in_features, 5, bias=False)
    fc.weight.data = n["fc1"].weight.detach().float().clone()
    layers = [conv, iaf(n["conv0"].weight, 1.0)]
    if pool > 1:
        layers.append(sl.SumPool2d(pool))
    layers += [nn.Flatten(), fc, iaf(n["fc1"].weight, 1.5)]
    return nn.Sequential(*layers)


@pytest.mark.parametrize("pool,reset", [(1, HARD), (1, SOFT), (2, HARD)])
def test_emulator_is_sinabs_dynapcnn_bit_for_bit(pool, reset):
    from sinabs_dynapcnn import dynapcnn as load

    graph = _graph(pool, reset, seed=pool + (reset == SOFT))
    plan = _plan(graph)
    net = load().DynapcnnNetwork(_sinabs_model(graph, pool, reset), input_shape=SHAPE, discretize=True)
    layers = speck_layers(plan)
    # the registers: sinabs's discretized kernels and thresholds (a Linear is a convolution over the map)
    for ours, theirs in zip(layers, net.dynapcnn_layers.values()):
        w = theirs.conv_layer.weight.detach().numpy().astype(np.int64)
        mine = ours.weights
        if mine.ndim == 2:  # a dense map over the (C, H, W) layout; composed with the pooling, each
            mine = mine.reshape(w.shape[0], w.shape[1], w.shape[2] * pool, w.shape[3] * pool)[:, :, ::pool, ::pool]
        assert np.array_equal(mine, w)  # pooled weight is repeated over its window
        assert ours.threshold == int(theirs.spk_layer.spike_threshold)
        assert ours.threshold_low == int(theirs.spk_layer.min_v_mem) == STATE_MIN
    rng = np.random.default_rng(7)
    x = (rng.random((T, *SHAPE)) < 0.35).astype(np.int64)  # binary events, a new frame each step
    emu = SpeckEmulator(plan, windowed=False)
    steps = [emu.step(row.reshape(-1)) for row in x]
    theirs = net(torch.as_tensor(x, dtype=torch.float32), return_complete=True)
    last = max(k for k in theirs if k != "input")
    ours = np.stack([s["if1"][0] for s in steps])
    spikes = theirs[last][-1].detach().numpy().reshape(T, -1).astype(np.int64)
    assert ours.sum() > 0 and not np.all(ours == 1), "the comparison needs activity that is not saturated"
    assert np.array_equal(ours, spikes)
    if pool == 1:
        first = np.stack([s["if0"][0] for s in steps])
        assert np.array_equal(first, theirs[0][1].detach().numpy().reshape(T, -1).astype(np.int64))
    assert max(np.abs(s[p][1]).max() for s in steps for p in s) < STATE_MAX  # sinabs has no 16-bit top


def test_the_state_floor_is_sinabs_min_v_mem():
    """Strongly inhibited neurons sit at the 16-bit floor, then need the same input as sinabs's to fire."""
    from sinabs_dynapcnn import dynapcnn as load

    graph = _graph(1, HARD, 3)
    with torch.no_grad():
        w = graph.nodes["conv0"].weight
        w[:, 0] = -1.0  # channel 0 inhibits every neuron; channel 1 excites them
        w[:, 1] = torch.linspace(0.7, 1.0, 4, dtype=w.dtype)[:, None, None]
    plan = _plan(graph)
    net = load().DynapcnnNetwork(_sinabs_model(graph, 1, HARD), input_shape=SHAPE, discretize=True)
    x = np.zeros((80, *SHAPE), np.int64)
    x[:35, 0] = 1
    x[35:, 1] = 1
    emu = SpeckEmulator(plan, windowed=False)
    steps = [emu.step(row.reshape(-1)) for row in x]
    assert min(s["if0"][1].min() for s in steps) == STATE_MIN  # the floor was reached
    theirs = net(torch.as_tensor(x, dtype=torch.float32), return_complete=True)
    first = np.stack([s["if0"][0] for s in steps])
    assert first.sum() > 0
    assert np.array_equal(first, theirs[0][1].detach().numpy().reshape(80, -1).astype(np.int64))


@pytest.mark.parametrize("reset,binding", [(HARD, 1.2), (SOFT, 1.2), (HARD, -1.2)])
def test_the_speck_aware_torch_network_is_the_emulator(reset, binding):
    """spiking_conv(speck=True) trains on Speck's integers: its spikes equal the emulator's on the exported
    graph, step by step, in every layer (60 steps of random binary events, no reset between them), whether
    the largest or the most negative weight sets a layer's scale (onto 127 or -128)."""
    from spikeloop.train.networks import spiking_conv

    torch.manual_seed(0)
    net = spiking_conv([4, 10, 10], [8], [32, 3], spiking_readout=True, speck=True, reset=reset, fake_quant=True)
    with torch.no_grad():
        for name in ("conv0", "fc0", "fc1"):
            w = net.nodes[name].weight
            w.mul_(3.0).add_(0.02)
            w.view(-1)[0] = binding * w.abs().max()  # one weight that binds the scale
    ends = {(int(net.nodes[n].integer_weight().min()), int(net.nodes[n].integer_weight().max()))
            for n in ("conv0", "fc0", "fc1")}
    assert all(lo == -128 and hi < 127 if binding < 0 else hi == 127 and lo > -128 for lo, hi in ends), ends
    plan = plan_from_nir(export_graph(net, 1e-3, GraphMeta(dt_s=1e-3, T=8, decoding=Decoding(kind=SPIKE_COUNT))))
    x = (np.random.default_rng(1).random((60, 400)) < 0.3).astype(np.int64)
    with torch.no_grad():
        _, rec = net(torch.as_tensor(x, dtype=torch.float32).reshape(60, 1, 4, 10, 10), record=True)
    emu = SpeckEmulator(plan, windowed=False)
    steps = [emu.step(row) for row in x]
    for pop in ("if_c0", "if0", "if1"):
        ours = np.stack([s[pop][0] for s in steps])
        assert ours.sum() > 0 and np.array_equal(ours, rec[pop + ".spikes"][:, 0].reshape(60, -1).numpy()), pop
        assert np.array_equal(np.stack([s[pop][1] for s in steps]), rec[pop + ".v"][:, 0].reshape(60, -1).numpy())


def test_refuses_what_speck_cannot_run():
    graph = _graph(1, HARD, 0)
    with torch.no_grad():
        graph.nodes["if0"].bias  # IF has no bias; a LIF (a leak) is refused
    lif = SpikingGraph({"fc": QuantLinear(4, 3, dtype=torch.float64),
                        "lif": Neuron(3, "LIF", dv=0.5, vth=1.0, dtype=torch.float64)},
                       [("input", "fc"), ("fc", "lif"), ("lif", "output")], input_shape=(4,))
    with torch.no_grad():
        lif.nodes["fc"].weight.fill_(0.5)
    meta = GraphMeta(dt_s=1e-3, T=4, decoding=Decoding(kind=SPIKE_COUNT))
    with pytest.raises(ConfigError, match="'lif'.*without a leak"):
        speck_layers(plan_from_nir(export_graph(lif, 1e-3, meta)))
    li = SpikingGraph({"fc": QuantLinear(4, 3, dtype=torch.float64),
                       "li": Neuron(3, "LI", dv=0.5, dtype=torch.float64)},
                      [("input", "fc"), ("fc", "li"), ("li", "output")], input_shape=(4,))
    with torch.no_grad():
        li.nodes["fc"].weight.fill_(0.5)
    with pytest.raises(ConfigError, match="'li'.*non-spiking readout"):
        speck_layers(plan_from_nir(export_graph(li, 1e-3, GraphMeta(dt_s=1e-3, T=4))))


# (c_in, c_out, kernel, stride, padding, input side): layers that pass, and layers that fail each of
# sinabs's memory checks (neuron memory over 64Ki, kernel memory over 64Ki, and the combinations no
# core holds). Each has (side - kernel + 2 padding) divisible by the stride: sinabs computes the
# output side by true division (no floor), which disagrees with its own DynapcnnLayer elsewhere.
MEMORY_CASES = [
    (2, 4, 3, 1, 0, 8), (16, 16, 3, 1, 1, 64), (4, 16, 3, 1, 0, 10), (32, 64, 3, 1, 1, 32),
    (64, 64, 3, 1, 1, 32), (1, 16, 1, 1, 0, 128), (1, 8, 1, 1, 0, 128), (128, 128, 3, 1, 1, 8),
    (256, 128, 3, 1, 1, 4), (512, 128, 3, 1, 1, 4), (64, 32, 5, 1, 2, 16), (96, 64, 4, 2, 1, 16),
    (16, 64, 8, 1, 0, 8), (16, 128, 8, 1, 0, 8), (16, 256, 8, 1, 0, 8), (3, 32, 3, 2, 0, 33),
    (8, 8, 16, 8, 4, 40), (1024, 16, 1, 1, 0, 4), (512, 64, 1, 1, 0, 2), (2, 512, 2, 2, 0, 64),
]


@pytest.mark.parametrize("case", MEMORY_CASES, ids=lambda c: "c{}-f{}-k{}-s{}-p{}-in{}".format(*c))
def test_fit_agrees_with_sinabs_validate_memory_mapping_speck(case):
    """spikeloop's Speck rules and sinabs's own check give the same verdict and the same memories."""
    import re

    from sinabs.utils import validate_memory_mapping_speck

    from spikeloop.hwprofiles.fit import CONV2D, Layer, Network, check_fit
    from spikeloop.hwprofiles.profile import load_profile
    from spikeloop.hwprofiles.rules.speck import speck_memory

    c, f, k, s, p, side = case
    out = (side - k + 2 * p) // s + 1
    layer = Layer("conv", CONV2D, f * out * out, "IF", ("input",), in_shape=(c, side, side), out_shape=(f, out, out),
                  kernel=(k, k), stride=(s, s), padding=(p, p), kernel_nonzero=c * f * k * k)
    memory_rules = {"neuron_memory_per_core", "kernel_memory_per_core", "core_assignment"}
    report = check_fit(Network(c * side * side, [layer], "conv", "case"), load_profile("speck"))
    ours_fits = not any(v.rule in memory_rules for v in report.violations)
    neurons, kernel = speck_memory(layer)
    try:
        message = validate_memory_mapping_speck(c, f, (k, k), (s, s), (p, p), [side, side])
    except Exception as e:  # sinabs raises a plain Exception naming the memories
        message, theirs_fits = str(e), False
    else:
        theirs_fits = True
    assert ours_fits == theirs_fits, (case, report.violations, message)
    if theirs_fits:
        kib = re.search(r"Kernel memory is ([\d.]+)Ki and neuron memory is ([\d.]+)Ki", message)
        assert (float(kib[1]), float(kib[2])) == (kernel / 1024, neurons / 1024)


def test_memory_cases_cover_passing_and_failing_layers():
    from sinabs.utils import validate_memory_mapping_speck

    verdicts = []
    for c, f, k, s, p, side in MEMORY_CASES:
        try:
            validate_memory_mapping_speck(c, f, (k, k), (s, s), (p, p), [side, side])
            verdicts.append(True)
        except Exception:
            verdicts.append(False)
    assert 5 <= sum(verdicts) <= len(verdicts) - 5


def test_speck_aware_dqn_trains_fits_and_runs_closed_loop_on_the_emulator(tmp_path, capsys):
    """MinAtar/Breakout-v1 (binary board channels: one input event per lit pixel and step) with DQN's
    --speck: integrate-and-fire layers without bias, a spiking readout; the run checks the fit, places
    one layer per core, runs the emulator beside the torch policy and leaves energy unpriced."""
    import json

    from spikeloop.cli import main

    pytest.importorskip("minatar")
    run = tmp_path / "run"
    assert main(["train", "--env-id", "MinAtar/Breakout-v1", "--conv-channels", "4", "--hidden", "16", "--encoder", "events",
                 "--readout", "spike-count", "--speck", "--T", "4", "--total-steps", "300",
                 "--learning-starts", "100", "--eval-every", "300", "--eval-episodes", "1", "--quiet",
                 "--out", str(run)]) == 0
    assert main(["export", str(run)]) == 0
    assert main(["run", str(run), "--target", "speck", "--episodes", "2", "--quiet"]) == 0
    report = json.loads((run / "report.json").read_text())
    assert report["target"] == "speck" and report["mapping"]["cores_used"] == 3
    assert [c["layer"] for c in report["mapping"]["cores"]] == ["if_c0", "if0", "if1"]
    ev = report["evaluation"]["speck_emulator"]
    assert ev["episodes"] == 2 and ev["agreement_with_torch"] == 1.0  # torch trains on the chip's integers
    assert ev["mean_return"] == report["evaluation"]["torch"]["mean_return"]
    assert report["input_events_per_decision"] > 0 and report["synops_per_decision"] > 0
    assert report["energy"]["priced"] is False
    assert "Speck run" in (run / "report.md").read_text()
    capsys.readouterr()


def test_run_target_speck_refuses_a_policy_it_cannot_run(trained_run, capsys):
    from spikeloop.cli import main

    assert main(["run", str(trained_run), "--target", "speck", "--quiet"]) == 2
    assert "Speck's neurons integrate and fire without a leak" in capsys.readouterr().err
    assert main(["run", str(trained_run), "--target", "speck", "--backend", "lava", "--quiet"]) == 2
    assert "--target speck runs on --backend emulator" in capsys.readouterr().err
    assert not (trained_run / "report.json").exists()
