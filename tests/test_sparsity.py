"""Sparsity pressure: the activity cost counts what the deployed network does (checked against a count by
hand), its gradient reaches the weights, and every deployable agent trained with it spikes less."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from spikeloop.core.errors import ConfigError
from spikeloop.train.networks import spiking_mlp
from spikeloop.train.sparsity import activity_cost


def _net(seed=0):
    torch.manual_seed(seed)
    net = spiking_mlp([4, 16, 8, 2], du=1.0, dv=0.25).double()
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.normal_(0, 1.0)
            if name.endswith("fc1.weight"):
                p[:, ::3] = 0  # some silent columns: their spikes reach fewer synapses
    return net


def test_the_synops_cost_is_the_share_of_possible_synaptic_events_counted_by_hand():
    net = _net()
    x = torch.randn(32, 4, dtype=torch.float64)
    y, trace = net.window(x, 6, record=True)
    s0, s1 = trace["lif0.spikes"].detach().numpy(), trace["lif1.spikes"].detach().numpy()
    w1, w2 = net.nodes["fc1"].weight.detach().numpy(), net.nodes["fc2"].weight.detach().numpy()
    nnz1, nnz2 = (w1 != 0).sum(axis=0), (w2 != 0).sum(axis=0)
    events = (s0.sum(axis=(0, 1)) * nnz1).sum() + (s1.sum(axis=(0, 1)) * nnz2).sum()
    possible = (nnz1.sum() + nnz2.sum()) * 6 * 32
    assert 0 < events < possible
    assert float(activity_cost(net, trace, "synops")) == pytest.approx(events / possible, rel=1e-12)
    spikes = (s0.sum() + s1.sum()) / ((16 + 8) * 6 * 32)
    assert float(activity_cost(net, trace, "spikes")) == pytest.approx(spikes, rel=1e-12)
    # the recorded window is the plain window
    np.testing.assert_array_equal(y.detach().numpy(), net.window(x, 6).detach().numpy())
    cost = activity_cost(net, trace, "synops")
    cost.backward()
    assert net.nodes["fc0"].weight.grad.abs().sum() > 0  # through the surrogate into the first layer
    with pytest.raises(ConfigError, match="sparsity measure must be one of synops, spikes"):
        activity_cost(net, trace, "energy")


def _probe_cost(policy) -> float:
    obs = np.random.default_rng(0).normal(scale=[1.0, 1.0, 0.1, 1.0], size=(256, 4))
    x = torch.as_tensor(policy.encoding.encode(obs), dtype=policy.dtype)
    with torch.no_grad():
        _, trace = policy.network.window(x, policy.T, record=True)
    return float(activity_cost(policy.network, trace, "synops"))


def _train(agent: str, penalty: float, tmp_path):
    from spikeloop.train.agents import get_agent

    common = {"sparsity_penalty": penalty, "T": 4}
    if agent == "reinforce":
        cfg = dict(hidden=[32], max_episodes=20, eval_every=20, eval_episodes=1, lr=0.05, lr_decay=0.0)
    elif agent == "ppo":
        cfg = dict(hidden=[32], total_steps=1024, n_envs=2, n_steps=128, eval_every=1024, eval_episodes=1)
    elif agent == "dqn":
        cfg = dict(hidden=[32, 32], total_steps=700, learning_starts=100, eval_every=700, eval_episodes=1)
    else:
        from spikeloop.cli import main

        demos = tmp_path / "demos.npz"
        if not demos.exists():
            from pathlib import Path

            data = Path(__file__).parent / "data" / "policy.safetensors"
            assert main(["collect", str(data), "--out", str(demos), "--episodes", "2", "--quiet"]) == 0
        cfg = dict(demos=str(demos), hidden=[32], epochs=3, eval_episodes=1, target_return=1e9, lr=0.02)
    spec = get_agent(agent)
    return spec.train(spec.config(**cfg, **common), progress=False).policy


@pytest.mark.parametrize("agent", ["reinforce", "ppo", "dqn", "bc"])
def test_every_deployable_agent_trained_under_sparsity_pressure_spikes_less(agent, tmp_path):
    """The same seed with and without the penalty: without it wired in, both runs would be identical. The
    few updates of a test move the activity by 4-25 % (Adam's step, not the penalty, limits them)."""
    free, pressed = (_probe_cost(_train(agent, lam, tmp_path)) for lam in (0.0, 50.0))
    assert pressed < 0.98 * free, (free, pressed)
