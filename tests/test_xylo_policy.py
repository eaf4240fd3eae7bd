"""A policy trained for Xylo: spike encoders, the torch twin of Xylo's neuron, the register mapping,
and closed loop on SynSense's xylosim and on spikeloop's emulator.

``tests/data/xylo`` is a trained policy, not a random one: `spikeloop train --agent reinforce --target xylo
--T 8 --xylo-vth 256 --logit-scale 0.003 --max-episodes 400 --seed 0` (its config.toml is beside it; best
greedy eval 500 after 10,076 steps; 491.7 over 20 episodes on xylosim) and its `spikeloop export`.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from test_xylo import _compare

from spikeloop.cli import main
from spikeloop.core.coding import InputEncoding, SpikeEncoding
from spikeloop.core.errors import ConfigError
from spikeloop.core.neuron import SOFT, cuba_step
from spikeloop.core.nir_io import read_graph
from spikeloop.export.to_nir import export_policy
from spikeloop.runtime.compiler import plan_from_nir
from spikeloop.runtime.xylo import HIDDEN, READOUT, STATE_MAX, STATE_MIN, XyloEmulator
from spikeloop.runtime.xylo_map import make_xylo_backend, map_plan
from spikeloop.train.checkpoint import load_policy
from spikeloop.train.networks import xylo_mlp
from spikeloop.train.xylo import TorchXyloArithmetic, XyloLinear

DATA = Path(__file__).parent / "data" / "xylo"


@pytest.fixture
def xylo_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("xylo_run")
    for name in ("policy.safetensors", "policy.nir"):
        shutil.copy(DATA / name, run / name)
    return run


def test_rate_and_population_codes_count_events_exactly():
    enc = SpikeEncoding(mean=(1.0, 0.0), std=(2.0, 1.0), clip=2.0, code="rate", max_events=15)
    # x = ((3 - 1) / 2, -1.5) = (1, -1.5): on/off counts 15 * x+ / 2, 15 * x- / 2, rounded half to even
    assert enc.to_payload(np.array([3.0, -1.5])).tolist() == [8, 0, 0, 11]
    assert enc.to_payload(np.array([[100.0, 100.0]])).tolist() == [[15, 0, 15, 0]]  # clipped at +-clip
    assert enc.n_inputs == 4 and enc.scale == 1.0 and enc.peak == 15.0
    pop = SpikeEncoding(mean=(0.0,), std=(1.0,), clip=2.0, code="population", max_events=1, neurons=5)
    # centres -2, -1, 0, 1, 2, width 1: exp(-0.5 * d^2) rounds to 1 within d = 1.18 of a centre
    assert pop.to_payload(np.array([1.5])).tolist() == [0, 0, 0, 1, 1]
    assert pop.to_payload(np.array([-0.2])).tolist() == [0, 1, 1, 0, 0]  # d = 1.2 from centre 1
    assert SpikeEncoding(mean=(0.0,), std=(1.0,), clip=2.0, code="population", max_events=15,
                         neurons=5).to_payload(np.array([0.0])).tolist() == [2, 9, 15, 9, 2]  # 15 exp(-d^2 / 2), d = 2, 1, 0
    for e in (enc, pop):  # the record round-trips through the one reader of encodings
        assert InputEncoding.from_dict(json.loads(json.dumps(e.to_dict()))) == e
    with pytest.raises(ConfigError, match="code must be one of rate, population, delta"):
        SpikeEncoding(mean=(0.0,), std=(1.0,), code="morse")
    with pytest.raises(ConfigError, match=r"max_events must be an integer in \[1, 255\], got 0"):
        SpikeEncoding(mean=(0.0,), std=(1.0,), max_events=0)
    with pytest.raises(ConfigError, match="spike encoding: unknown keys"):
        InputEncoding.from_dict(enc.to_dict() | {"bits": 8})


def test_the_torch_twin_runs_the_emulators_update_bit_for_bit():
    """Random states across the whole 16-bit range, every shift, thresholds down to 1: the same
    currents, voltages and spike counts from the numpy and the torch primitives."""
    rng = np.random.default_rng(5)
    n = 20_000
    u, v = rng.integers(STATE_MIN, STATE_MAX + 1, n), rng.integers(STATE_MIN, STATE_MAX + 1, n)
    a = rng.integers(-40_000, 40_000, n)
    du, dv = rng.integers(1, 16, n), rng.integers(1, 16, n)
    vth = int(rng.integers(1, 3000))
    for arith, twin in ((HIDDEN, TorchXyloArithmetic(31)), (READOUT, TorchXyloArithmetic(1))):
        want = cuba_step(u, v, a, du=du, dv=dv, bias=0, vth=vth, reset=SOFT, arith=arith)
        t = [torch.as_tensor(x, dtype=torch.float64) for x in (u, v, a, du, dv)]
        got = cuba_step(t[0], t[1], t[2], du=t[3], dv=t[4], bias=0.0, vth=vth, reset=SOFT, spike_fn=None, arith=twin)
        for w, g in zip(want, got):
            np.testing.assert_array_equal(w, g.numpy().astype(np.int64))
    assert want[2].max() == 1 and HIDDEN.max_spikes == 31


def test_integer_weights_fan_in_mask_and_the_exported_float_semantics():
    gen = torch.Generator().manual_seed(0)
    fc = XyloLinear(100, 7, target_dash_syn=2, fan_in=63, generator=gen)
    assert fc.mask.sum(1).tolist() == [63.0] * 7  # every neuron keeps 63 of its 100 inputs
    with torch.no_grad():
        fc.weight.uniform_(-2, 2)
    w = fc.integer_weight()
    assert w.abs().max() == 127 and torch.equal(w, torch.round(w)) and torch.all(w[fc.mask == 0] == 0)
    assert torch.equal(fc.deployed_weight(), w * 0.75)  # NIR: the integers times 1 - 2**-dash_syn
    with pytest.raises(ConfigError, match="a Xylo network has at most 16 inputs; this one has 20"):
        xylo_mlp([20, 8, 2])
    with pytest.raises(ConfigError, match=r"fan_in must be an integer in \[1, 63\]"):
        XyloLinear(4, 4, 1, fan_in=64)


def _policy_plan():
    policy = load_policy(DATA / "policy.safetensors")[0]
    plan = plan_from_nir(read_graph(DATA / "policy.nir"), source="policy.nir")
    return policy, plan


def test_the_trained_policy_maps_onto_integers_and_the_torch_policy_is_the_core():
    policy, plan = _policy_plan()
    placement = map_plan(plan)
    r = placement.registers
    assert placement.scale == {"lif0": 1.0, "li1": 1.0} and placement.window.period == policy.T + 1
    np.testing.assert_array_equal(r.w_in, policy.network.nodes["fc0"].integer_weight().detach().numpy().T)
    assert r.dash_syn.tolist() == [1] * 64 and r.dash_mem.tolist() == [3] * 64 and r.vth.tolist() == [256] * 64
    assert np.count_nonzero(r.w_out, axis=0).max() <= 63  # the readout's fan-in mask
    # the torch policy's window equals the core's readout window, to the last voltage
    obs = np.random.default_rng(0).normal(scale=[1.0, 1.0, 0.1, 1.0], size=(40, 4))
    x = torch.as_tensor(policy.encoding.encode(obs), dtype=torch.float32)
    with torch.no_grad():
        y = policy.network.window(x, policy.T).numpy()
    core = make_xylo_backend("emulator", plan)
    for i, o in enumerate(obs):
        core.decide(o)
        np.testing.assert_array_equal(core.last_output, y[:, i].astype(np.int64))


def test_emulator_is_bit_exact_with_xylosim_on_the_trained_policy():
    """Every neuron's current, voltage and spikes, 1,200 steps: CartPole observations encoded by the
    policy's own rate code, each held for a decision's 9 steps, the core never reset."""
    import gymnasium as gym

    policy, plan = _policy_plan()
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=3)
    rng = np.random.default_rng(3)
    events = []
    while len(events) < 1200:
        events += [plan.encoding.to_payload(obs)] * 9
        obs, _, term, trunc, _ = env.step(int(rng.integers(2)))
        if term or trunc:
            obs, _ = env.reset()
    rec = _compare(map_plan(plan).registers, np.array(events[:1200]))
    assert rec["spikes"].max() > 1 and rec["v_mem_out"].std() > 0  # multi-spike steps and a live readout


def test_run_target_xylo_on_xylosim_and_the_emulator_gives_the_same_episode(xylo_run, capsys):
    reports = {}
    for backend in ("xylosim", "emulator"):
        out = xylo_run / backend
        assert main(["run", str(xylo_run), "--target", "xylo", "--backend", backend, "--episodes", "1",
                     "--eval-seed", "1003", "--quiet", "--out", str(out)]) == 0
        reports[backend] = json.loads((out / "report.json").read_text())
        assert (out / "report.md").exists() and (out / "policy.nir").exists()
    sim, emu = reports["xylosim"], reports["emulator"]
    s = sim["evaluation"]["xylo_sim"]
    assert s["agreement_with_torch"] == 1.0 and s["emulator_bit_exact"] is True
    assert s["mean_return"] == sim["evaluation"]["torch"]["mean_return"] == emu["evaluation"]["xylo_emulator"][
        "mean_return"]
    assert sim["counts_per_decision"] == emu["counts_per_decision"] and sim["cycles"] == emu["cycles"]
    assert sim["spikes_per_decision"] > 0 and sim["cycles"]["per_step"] > 0
    assert sim["cycles"]["realtime_clock_hz"] == pytest.approx(sim["cycles"]["per_step"] * 1.2 / 1e-3)
    assert sim["energy"]["priced"] is False and "not derivable" in sim["energy"]["reason"]
    assert sim["encoder"]["host_ops_per_decision"] == 4 * 4 + 8 * 3
    assert "actions equal to torch" in capsys.readouterr().out


def test_what_does_not_map_onto_xylo_is_refused_before_a_run(xylo_run, trained_run, capsys):
    # a policy trained for Loihi: graded input, hard reset
    assert main(["run", str(trained_run), "--target", "xylo", "--quiet"]) == 2
    assert "Xylo takes event counts of 0..15 per input channel" in capsys.readouterr().err
    assert main(["run", str(xylo_run), "--backend", "xylosim", "--quiet"]) == 2
    assert "--backend xylosim runs a Xylo core: add --target xylo" in capsys.readouterr().err
    assert main(["run", str(xylo_run), "--target", "xylo", "--backend", "lava", "--quiet"]) == 2
    assert "--target xylo runs on --backend xylosim or emulator" in capsys.readouterr().err
    assert not (xylo_run / "report.json").exists()
    _, plan = _policy_plan()
    hidden = plan.population("lif0")
    hidden.du[:] = 0.3
    with pytest.raises(ConfigError, match=r"population 'lif0': du = 0.3 \(neuron 0\) is not a Xylo bit-shift decay"):
        map_plan(plan)
    _, plan = _policy_plan()
    plan.population("li1").bias[:] = 5.0
    with pytest.raises(ConfigError, match="population 'li1' has a bias and sits 1 step"):
        map_plan(plan)


def test_fit_accepts_the_xylo_policy_and_names_a_fan_in_beyond_63(tmp_path, capsys):
    assert main(["fit", str(DATA / "policy.nir"), "--profile", "xylo"]) == 0
    out = capsys.readouterr().out
    assert "fits: yes" in out and "need a spike encoder" not in out  # its input is already events
    policy = load_policy(DATA / "policy.safetensors")[0]
    with torch.no_grad():
        policy.network.nodes["fc1"].mask.fill_(1.0)  # all 64 hidden neurons into each readout neuron
        policy.network.nodes["fc1"].weight.fill_(0.5)
    from spikeloop.core.nir_io import write_graph

    write_graph(tmp_path / "wide.nir", export_policy(policy, 1e-3))
    capsys.readouterr()
    assert main(["fit", str(tmp_path / "wide.nir"), "--profile", "xylo"]) == 2
    err = capsys.readouterr().err
    assert "[fan_in_per_neuron] layer 'li1': largest fan-in 64 synapses > limit 63" in err


def test_the_emulator_record_matches_the_backend_counts():
    _, plan = _policy_plan()
    core = make_xylo_backend("emulator", plan)
    obs = np.array([0.01, 0.2, -0.03, -0.1])
    core.decide(obs)
    emu = XyloEmulator(core.placement.registers, record=True)
    emu.run(np.tile(plan.encoding.to_payload(obs), (9, 1)))
    spikes = np.array(emu.record["spikes"]).sum()
    c = core.counts()
    assert c.spikes["lif0"] == spikes and c.decisions == 1 and c.steps == 9
    assert c.synops["fc0"] == int(np.array(emu.record["events"]).sum(0) @ np.count_nonzero(core.placement.registers.w_in, 1))


def _rockpool_xylo_mapper():
    """Rockpool's own Xylo Audio 2 mapper (``syns61201/xylo_mapper.py``), loaded from its files.

    The package's ``__init__`` imports ``samna`` (not installable here); the mapper and its graph
    modules need only ``rockpool.graph``, so they are loaded under a bare package of their own.
    """
    import importlib.util
    import sys
    import types

    import rockpool

    d = Path(rockpool.__file__).parent / "devices" / "xylo" / "syns61201"
    pkg = types.ModuleType("rockpool_xa2_rules")
    pkg.__path__ = [str(d)]
    sys.modules.setdefault(pkg.__name__, pkg)
    for name in ("xylo_graph_modules", "xylo_mapper"):
        full = f"{pkg.__name__}.{name}"
        if full not in sys.modules:
            spec = importlib.util.spec_from_file_location(full, d / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            sys.modules[full] = module
            spec.loader.exec_module(module)
    return sys.modules[f"{pkg.__name__}.xylo_mapper"]


def _sparse(n_out: int, n_in: int) -> np.ndarray:
    """``(n_out, n_in)`` weights with one synapse per neuron (fan-in 1: only the sizes are at stake)."""
    w = np.zeros((n_out, n_in))
    w[np.arange(n_out), np.arange(n_out) % n_in] = 1.0
    return w


@pytest.mark.parametrize("sizes,fits", [
    ([8, 64, 2], True), ([16, 63, 63, 8], True), ([16, 500, 500, 8], True),   # at every limit
    ([17, 4, 2], False),                                                       # 17 input channels
    ([8, 4, 9], False),                                                        # 9 output neurons
    ([8, 600, 401, 2], False),                                                 # 1,001 hidden neurons
    ([8, 2], False),                                                           # no hidden layer
])
def test_fit_agrees_with_rockpools_xylo_mapper(sizes, fits):
    """`spikeloop fit --profile xylo` and Rockpool's mapper (its design rules and its allocation of
    hidden and output neurons, a warning counted as a refusal) give the same verdict on the same
    networks. Rockpool leaves the fan-in and the weight count to its configuration check, which needs
    samna; the fan-in case is in test_fit_accepts_the_xylo_policy_and_names_a_fan_in_beyond_63."""
    import warnings

    from rockpool.graph import GraphHolder, LIFNeuronWithSynsRealValue, LinearWeights, connect_modules

    from spikeloop.hwprofiles.fit import check_fit
    from spikeloop.hwprofiles.network import DENSE, Layer, Network
    from spikeloop.hwprofiles.profile import load_profile

    layers, src = [], "input"
    first = prev = None
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = _sparse(b, a)
        layers.append(Layer(f"l{i}", DENSE, b, "LIF", (src,), {src: w}))
        src = f"l{i}"
        lin = LinearWeights._factory(a, b, f"w{i}", None, w.T)
        neurons = LIFNeuronWithSynsRealValue._factory(b, b, f"n{i}", None, tau_mem=[8e-3] * b, tau_syn=[2e-3] * b,
                                                      threshold=[1.0] * b, bias=[0.0] * b, dt=1e-3)
        connect_modules(lin, neurons)
        if prev is not None:
            connect_modules(prev, lin)
        first, prev = first or lin, neurons
    ours = check_fit(Network(sizes[0], layers, src, "sizes"), load_profile("xylo")).fits
    mapper = _rockpool_xylo_mapper()
    with warnings.catch_warnings():
        warnings.simplefilter("error", mapper.DRCWarning)
        try:
            mapper.mapper(GraphHolder(first.input_nodes, prev.output_nodes, "net", None))
            theirs = True
        except mapper.DRCError:
            theirs = False
    assert ours is theirs is fits
