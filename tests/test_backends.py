"""One backend interface: the registry, the decision window, the decodings, the runner's contract.

Every decoding kind (readout voltage last/mean, spike count, atoms) gives the same values
on the emulator and on the plan-level reference (float), and the same raw window
bit for bit on the emulator and on both Lava mappings (fixed point).
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import random_plan
from spikeloop.core.backend import Backend
from spikeloop.core.coding import ATOMS, SPIKE_COUNT, Decoding, InputEncoding
from spikeloop.core.errors import ConfigError, RuntimeMismatchError
from spikeloop.runtime.backends import BACKENDS, PlanBackend, backend_class, make_backend
from spikeloop.runtime.fixed_point import quantize_plan
from spikeloop.runtime.plan import Connection, DecisionWindow, NetworkPlan, Population
from spikeloop.runtime.runner import run_closed_loop

ATOM_VALUES = (-1.0, 0.5, 2.0)
KINDS = {
    "last": Decoding(),
    "mean": Decoding(step="mean"),
    "spike_count": Decoding(SPIKE_COUNT),
    "atoms": Decoding(ATOMS, atoms=ATOM_VALUES),
    "atoms_mean": Decoding(ATOMS, step="mean", atoms=ATOM_VALUES),
}


def spiking_output_plan(seed: int = 0) -> NetworkPlan:
    """4 -> 24 LIF -> 3 spiking LIF (per-neuron voltage decays), decoded by spike count."""
    rng = np.random.default_rng(seed)
    pops = [Population("hidden", 24, np.ones(24), np.full(24, 0.125), rng.normal(0, 0.05, 24), 1.0),
            Population("out", 3, np.ones(3), np.array([0.25, 0.125, 0.5]), np.zeros(3), 1.0)]
    conns = [Connection("w1", "input", "hidden", rng.normal(0, 1.0, (24, 4))),
             Connection("w2", "hidden", "out", rng.normal(0.1, 0.6, (3, 24)))]
    return NetworkPlan(4, pops, conns, "out", 1e-3, 8, InputEncoding(mean=(0.0,) * 4, std=(1.0,) * 4),
                       Decoding(SPIKE_COUNT))


def plan_for(kind: str) -> NetworkPlan:
    if kind == "spike_count":
        return spiking_output_plan()
    plan, _, _ = random_plan(sizes=(4, 24, 16, 2 * len(ATOM_VALUES) if kind.startswith("atoms") else 2), seed=3)
    plan.decoding = KINDS[kind]
    return plan


def hand_decode(kind: str, window: np.ndarray) -> np.ndarray:
    """The decodings written out: last row, mean, sum of spikes, expectation over softmaxed atoms."""
    w = np.asarray(window, np.float64)
    if kind == "spike_count":
        return w.sum(axis=0)
    r = w.mean(axis=0) if kind.endswith("mean") else w[-1]
    if not kind.startswith("atoms"):
        return r
    logits = r.reshape(-1, len(ATOM_VALUES))
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return p @ np.asarray(ATOM_VALUES)


@pytest.fixture
def observations(rng):
    return rng.normal(0, 1.5, size=(12, 4))


# ------------------------------------------------------------------ registry
def test_registry_names_every_backend_and_refuses_unknown_ones(small_plan):
    assert set(BACKENDS) == {"emulator", "reference", "lava-fused", "lava-per-node"}
    for name in BACKENDS:
        cls = backend_class(name)
        assert issubclass(cls, PlanBackend) and cls.name == name
        b = make_backend(name, small_plan, "float")  # built, not started: nothing runs yet
        assert isinstance(b, Backend) and b.precision == "float" and not b.running
    assert backend_class("lava").name == "lava-per-node" and backend_class("torch").name == "reference"
    with pytest.raises(ConfigError, match="unknown backend 'loihi3'; the backends are emulator, reference, "
                                          "lava-fused, lava-per-node"):
        make_backend("loihi3", small_plan, "fixed")
    with pytest.raises(ConfigError, match="reference backend runs in float only"):
        make_backend("reference", small_plan, "fixed")


def test_decision_window_is_the_plans_schedule(small_plan):
    win = small_plan.window
    assert win == DecisionWindow(small_plan.T, small_plan.latency) and win.period == small_plan.period
    assert [k for k in range(win.period) if win.holds(k)] == list(range(small_plan.T))
    assert list(win.output_steps) == list(range(small_plan.latency, small_plan.period))
    assert [win.output_row(k) for k in win.output_steps] == list(range(small_plan.T))
    assert win.phase(1) == 0 and win.phase(win.period) == win.period - 1 and win.phase(win.period + 1) == 0
    assert small_plan.read_offset() == win.period % win.period  # the output's last window step
    assert make_backend("reference", small_plan, "float").window == DecisionWindow(small_plan.T, 0)


def test_decoding_must_fit_the_output_population(small_plan):
    small_plan.decoding = Decoding(SPIKE_COUNT)  # but the readout does not spike
    with pytest.raises(ConfigError, match="'spike_count' needs a spiking output population"):
        make_backend("lava-fused", small_plan, "fixed")  # refused before Lava starts anything
    small_plan.decoding = Decoding(ATOMS, atoms=ATOM_VALUES)  # 2 readout neurons, 3 atoms
    with pytest.raises(ConfigError, match="not a multiple of its 3 atoms"):
        make_backend("emulator", small_plan, "float")


# ------------------------------------------------------------------ decodings
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_decoding_on_emulator_and_reference(kind, observations):
    plan = plan_for(kind)
    with make_backend("emulator", plan, "float") as em, make_backend("reference", plan, "float") as ref:
        for obs in observations:
            q_em, q_ref = em.decide(obs), ref.decide(obs)
            assert em.last_output.shape == ref.last_output.shape == (plan.T, plan.population(plan.output).size)
            np.testing.assert_allclose(em.last_output, ref.last_output, rtol=0, atol=1e-9)
            np.testing.assert_allclose(q_ref, hand_decode(kind, ref.last_output), rtol=0, atol=1e-12)
            np.testing.assert_allclose(q_em, q_ref, rtol=0, atol=1e-9)
            n_actions = 2 if kind != "spike_count" else 3
            assert q_em.shape == (n_actions,)
    if kind == "spike_count":
        assert em.counts().spikes["out"] > 0, "the output never spiked: the comparison would be vacuous"
    elif kind.endswith("mean"):
        assert not np.allclose(q_ref, hand_decode(kind.replace("mean", "last"), ref.last_output))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_decoding_bit_exact_on_both_lava_mappings(kind, observations):
    plan = plan_for(kind)
    fixed = quantize_plan(plan)
    runs = {}
    for name in ("emulator", "lava-fused", "lava-per-node"):
        with make_backend(name, plan, "fixed", fixed) as b:
            q = np.stack([b.decide(o) for o in observations])
            raw = np.stack([b.decide_raw(b.codec.encode(o)) for o in observations])
            runs[name] = (q, raw, b.counts().to_dict())
    for name in ("lava-fused", "lava-per-node"):
        np.testing.assert_array_equal(runs[name][1], runs["emulator"][1], err_msg=f"{name}: raw window")
        np.testing.assert_array_equal(runs[name][0], runs["emulator"][0], err_msg=f"{name}: values")
        assert runs[name][2] == runs["emulator"][2], name
    assert np.abs(runs["emulator"][1]).sum() > 0


# ------------------------------------------------------------------ the runner's contract
@pytest.mark.parametrize("name", ["lava-fused", "lava-per-node"])
def test_runner_leaves_a_started_backend_started_and_counts_its_own_run(small_plan, name):
    """A started backend stays started; each run resets it, so its counts are those of a fresh one."""
    with make_backend(name, small_plan, "fixed") as net:
        first = run_closed_loop(net, "CartPole-v1", 1, 0, progress=False, max_steps=3)
        second = run_closed_loop(net, "CartPole-v1", 1, 0, progress=False, max_steps=4)
        assert net.running, "the runner closed a backend it did not start"
        assert (first.decisions, first.counts.decisions) == (3, 3)
        assert (second.decisions, second.counts.decisions) == (4, 4)
        assert second.counts.steps == 4 * small_plan.period
        assert second.summary()["backend"] == name and second.summary()["mapping"] == net.mapping
    assert not net.running
    em = make_backend("emulator", small_plan, "fixed")
    res = run_closed_loop(em, "CartPole-v1", 1, 0, progress=False, max_steps=4)
    assert not em.running and res.counts.to_dict() == second.counts.to_dict()


def test_twin_must_match_the_raw_output_exactly(small_plan):
    em_fixed = make_backend("emulator", small_plan, "fixed")
    with pytest.raises(RuntimeMismatchError, match="emulator fixed and its twin emulator differ at decision 0"):
        run_closed_loop(em_fixed, "CartPole-v1", 1, 0, twin=make_backend("emulator", small_plan, "float"),
                        progress=False, max_steps=3)

    class NoRegisters:  # a backend without a raw output (a torch policy) cannot be a twin
        name, precision = "torch", "float"

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

    with pytest.raises(ConfigError, match="twin backend 'torch' shows no raw output"):
        run_closed_loop(em_fixed, "CartPole-v1", 1, 0, twin=NoRegisters(), progress=False)
