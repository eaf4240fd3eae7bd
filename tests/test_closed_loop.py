"""Closed-loop episodes of the trained CartPole policy on every backend."""
from __future__ import annotations

import pytest

from spikeloop.core.nir_io import read_graph
from spikeloop.runtime.backends import make_backend
from spikeloop.runtime.compiler import plan_from_nir
from spikeloop.runtime.runner import run_closed_loop
from spikeloop.train.checkpoint import load_policy
from spikeloop.train.policy import TorchPolicy


@pytest.fixture
def policy(trained_run):
    plan = plan_from_nir(read_graph(trained_run / "policy.nir"))
    model, _ = load_policy(trained_run / "policy.safetensors")
    return plan, model


def test_trained_policy_balances_in_lava_fixed_point(policy):
    plan, model = policy
    res = run_closed_loop(make_backend("lava-fused", plan, "fixed"), "CartPole-v1", episodes=2, seed=1000,
                          reference=TorchPolicy(model), twin=make_backend("emulator", plan, "fixed"),
                          progress=False)
    assert min(res.returns) >= 475, res.returns
    assert res.agreement > 0.95
    per = res.counts.per_decision()
    assert per["steps"] == plan.period
    assert per["updates"]["lif0"] == 64 * plan.period  # Loihi updates every neuron every step
    assert 0 < per["spikes"]["lif0"] < 64 * plan.period


def test_backends_see_the_same_episodes(policy):
    """Same seeds -> the same first observations; the emulator equals Lava fixed exactly."""
    plan, model = policy
    kw = dict(env_id="CartPole-v1", episodes=1, seed=7, progress=False, max_steps=60)
    emu = run_closed_loop(make_backend("emulator", plan, "fixed"), **kw)
    lava = run_closed_loop(make_backend("lava-per-node", plan, "fixed"), **kw)
    torch_ = run_closed_loop(TorchPolicy(model), **kw)
    assert emu.returns == lava.returns == torch_.returns == [60.0]
    assert emu.counts.to_dict() == lava.counts.to_dict()
