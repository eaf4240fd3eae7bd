"""Equivalence across implementations: emulator vs Lava (per-node stock models, fused), torch vs Lava.

The fixed-point emulator must be bit-exact with Lava's own ``fixed_pt`` models on every
spike and every voltage; that equality is the strongest test spikeloop has.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import random_plan
from spikeloop.core.nir_io import read_graph
from spikeloop.runtime.backends import LAVA_MAPPINGS, HostCodec, make_backend
from spikeloop.runtime.compiler import plan_from_nir
from spikeloop.runtime.emulator import Emulator
from spikeloop.runtime.fixed_point import quantize_plan
from spikeloop.runtime.lava_runtime import LavaFused, LavaPerNode
from spikeloop.train.checkpoint import load_policy

DECISIONS = 100  # x 11 steps per decision = 1,100 Lava timesteps


def decision_sequence(plan, observations, precision):
    """The per-step host input of a run of decisions: each held T steps, then silence."""
    codec = HostCodec(plan, precision, quantize_plan(plan) if precision == "fixed" else None)
    rows = []
    for obs in observations:
        x = codec.encode(obs)
        rows += [x] * plan.T + [np.zeros_like(x)] * (plan.period - plan.T)
    return np.asarray(rows)


def assert_bit_exact(plan, seq, precision):
    """Run ``seq`` on Lava's stock per-node models with probes and on the emulator."""
    steps = len(seq)
    fixed = quantize_plan(plan) if precision == "fixed" else None
    with LavaPerNode(plan, precision, fixed, probe_steps=steps, sequence=seq) as net:
        net.run(steps)
        probes = net.probes()
        lava_counts = net.counts()
    em = Emulator(plan, precision, fixed)
    recs = [em.step(row) for row in seq]
    em_counts = em.counts()
    checked = 0
    for p in plan.populations:
        v_em = np.stack([r[p.name][1] for r in recs])
        v_lava = probes[(p.name, "v")]
        assert v_lava.shape == v_em.shape == (steps, p.size)
        np.testing.assert_array_equal(v_lava, v_em, err_msg=f"voltage of {p.name}")
        checked += v_em.size
        if p.spiking:
            s_em = np.stack([r[p.name][0] for r in recs]).astype(np.int64)
            np.testing.assert_array_equal(probes[(p.name, "s")].astype(np.int64), s_em,
                                          err_msg=f"spikes of {p.name}")
            assert s_em.sum() > 0, f"{p.name} never spiked: the comparison would be vacuous"
    lava_counts.decisions = em_counts.decisions = 0
    assert lava_counts.to_dict() == em_counts.to_dict()
    return checked


def test_fixed_point_bit_exact_random_network(rng):
    plan, _, _ = random_plan(sizes=(4, 48, 32, 3), seed=3)
    seq = decision_sequence(plan, rng.normal(0, 1.5, size=(DECISIONS, 4)), "fixed")
    assert len(seq) >= 1000
    assert assert_bit_exact(plan, seq, "fixed") > 0


def test_fixed_point_bit_exact_trained_policy(trained_run, rng):
    plan = plan_from_nir(read_graph(trained_run / "policy.nir"))
    model, info = load_policy(trained_run / "policy.safetensors")
    # Observations of the range CartPole produces (the encoding's frozen statistics).
    mean, std = np.asarray(plan.encoding.mean), np.asarray(plan.encoding.std)
    obs = mean + std * rng.normal(size=(DECISIONS, 4))
    seq = decision_sequence(plan, obs, "fixed")
    assert assert_bit_exact(plan, seq, "fixed") > 0


def test_float_lava_matches_emulator_exactly(rng):
    plan, _, _ = random_plan(sizes=(4, 24, 16, 2), seed=5)
    seq = decision_sequence(plan, rng.normal(size=(20, 4)), "float")
    # Lava sums spikes by column selection and graded inputs by dot product, like the emulator.
    assert_bit_exact(plan, seq, "float")


@pytest.mark.parametrize("precision", ["float", "fixed"])
def test_fused_mapping_matches_per_node(precision, rng):
    plan, _, enc = random_plan(sizes=(4, 32, 32, 2), seed=7)
    obs = rng.normal(size=(40, 4))
    fixed = quantize_plan(plan) if precision == "fixed" else None
    codec = HostCodec(plan, precision, fixed)
    outs = {}
    for mapping in ("per-node", "fused"):
        with make_backend(LAVA_MAPPINGS[mapping], plan, precision, fixed) as net:
            outs[mapping] = np.stack([net.decide_raw(codec.encode(o)) for o in obs])
            outs[mapping + "_counts"] = net.counts().to_dict()
    np.testing.assert_array_equal(outs["fused"], outs["per-node"])
    assert outs["fused_counts"] == outs["per-node_counts"]
    assert sum(outs["fused_counts"]["spikes"].values()) > 0


def test_lava_float_readout_matches_torch(rng):
    """Lava floating_pt reproduces the torch model's readout to 1e-5 (float64 torch)."""
    plan, model, enc = random_plan(sizes=(4, 32, 32, 2), seed=11, fake_quant=False)
    obs = rng.normal(size=(60, 4))
    with LavaFused(plan, "float") as net:
        q_lava = np.stack([net.decide(o) for o in obs])
    with torch.no_grad():
        q_torch = model(torch.as_tensor(enc.encode(obs))).numpy()
    np.testing.assert_allclose(q_lava, q_torch, rtol=0, atol=1e-5)
    assert np.abs(q_torch).max() > 0.1  # the readout is not trivially zero


def test_lava_float_matches_trained_torch_policy(trained_run, rng):
    plan = plan_from_nir(read_graph(trained_run / "policy.nir"))
    model, _ = load_policy(trained_run / "policy.safetensors")
    model.network.double()  # the Policy record holds the torch network
    obs = np.asarray(plan.encoding.mean) + np.asarray(plan.encoding.std) * rng.normal(size=(50, 4))
    with LavaPerNode(plan, "float") as net:
        q_lava = np.stack([net.decide(o) for o in obs])
    with torch.no_grad():
        q_torch = model(torch.as_tensor(plan.encoding.encode(obs))).numpy()
    # The NIR graph stores float32 weights (the trained dtype); torch here runs float64 on
    # the same values, so only summation order differs.
    np.testing.assert_allclose(q_lava, q_torch, rtol=0, atol=1e-5)
