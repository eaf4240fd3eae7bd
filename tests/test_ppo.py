"""Spiking PPO: GAE by hand, seeded training, the actor alone exported and run in Lava."""
from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from conftest import deploy_in_lava

from spikeloop.core.errors import ConfigError
from spikeloop.train.agents import get_agent
from spikeloop.train.agents.ppo import PPOConfig, build_critic, gae, train_ppo
from spikeloop.train.checkpoint import load_policy
from spikeloop.train.graph import Neuron

BRIEF = dict(total_steps=1024, n_envs=2, n_steps=64, epochs=2, minibatches=2, eval_every=512, eval_episodes=2,
             hidden=[16], critic_hidden=[16], T=4)


def test_gae_by_hand():
    r = np.array([[1.0], [1.0], [1.0]])
    v = np.array([[0.5], [0.4], [0.3]])
    done = np.array([[0.0], [1.0], [0.0]])
    adv, ret = gae(r, v, done, np.array([2.0]), gamma=0.9, lam=0.5)
    d2 = 1 + 0.9 * 2.0 - 0.3            # the last step bootstraps from the next value
    d1 = 1 - 0.4                        # the episode ends with step 1: no bootstrap, no carry
    d0 = 1 + 0.9 * 0.4 - 0.5
    np.testing.assert_allclose(adv[:, 0], [d0 + 0.45 * d1, d1, d2], rtol=1e-12)
    np.testing.assert_allclose(ret, adv + v, rtol=1e-12)


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="config field 'clip' must be positive, got -0.1"):
        PPOConfig(clip=-0.1).validate()
    with pytest.raises(ConfigError, match="config field 'critic_hidden' must list layer sizes"):
        PPOConfig(critic_hidden=[]).validate()
    with pytest.raises(ConfigError, match="config field 'minibatches' must be an integer in"):
        PPOConfig(n_envs=1, n_steps=2, minibatches=3).validate()
    assert get_agent("ppo").config is PPOConfig


def test_same_seed_same_weights_and_the_critic_is_not_deployed():
    a, b = (train_ppo(PPOConfig(**BRIEF, seed=3), progress=False) for _ in range(2))
    for (k, va), vb in zip(a.policy.network.state_dict().items(), b.policy.network.state_dict().values()):
        assert torch.equal(va, vb), k
    assert a.log == b.log or all(x == y or (math.isnan(x["mean_train_return"]) and math.isnan(y["mean_train_return"]))
                                 for x, y in zip(a.log, b.log))
    names = set(a.policy.network.nodes)
    assert names == {"fc0", "lif0", "fc1", "li1"}  # the spiking actor only
    critic = build_critic(4, [8], torch.Generator().manual_seed(0))
    assert critic[0].weight.shape == (8, 4) and torch.all(critic[0].bias == 0)


def test_ppo_trains_logs_and_runs_in_lava_float_and_fixed(tmp_path):
    from spikeloop.cli import main

    flags = []
    for k, v in BRIEF.items():
        flags += [f"--{k.replace('_', '-')}", *map(str, v if isinstance(v, list) else [v])]
    assert main(["train", "--agent", "ppo", "--out", str(tmp_path / "run"), "--quiet", *flags]) == 0
    run = tmp_path / "run"
    assert {"policy.safetensors", "config.toml", "training.json", "training.csv", "training.png"} <= {
        p.name for p in run.iterdir()}
    rows = list(csv.DictReader((run / "training.csv").open()))
    assert [int(r["step"]) for r in rows] == [128 * (i + 1) for i in range(8)]
    for column in ("pg_loss", "v_loss", "entropy", "clipfrac", "lr", "grad_norm", "rate_lif0"):
        assert all(math.isfinite(float(r[column])) for r in rows), column
    assert float(rows[0]["entropy"]) == pytest.approx(math.log(2), abs=0.02)  # a near-uniform first policy
    assert float(rows[-1]["lr"]) < float(rows[0]["lr"])  # annealed
    policy, _ = load_policy(run / "policy.safetensors")
    assert policy.provenance.agent == "ppo"
    assert all(isinstance(m, Neuron) or not hasattr(m, "step") for m in policy.network.nodes.values())
    (tmp_path / "deploy").mkdir()
    policy, plan, out = deploy_in_lava(tmp_path / "deploy", policy, "CartPole-v1")
    assert out["float"].agreement >= 0.95 and out["fixed"].agreement >= 0.8
