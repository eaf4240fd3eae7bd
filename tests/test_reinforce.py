"""The spiking REINFORCE agent: its stabilisers, its log, and deployment in Lava.

A short run trains on CartPole-v1 through the CLI (config, checkpoint, ``training.csv``,
``training.png``), then the policy exports, compiles and runs closed loop in Lava, float and
fixed point, beside the emulator.
"""
from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from conftest import deploy_in_lava

from spikeloop.core.errors import ConfigError
from spikeloop.train.agents import get_agent
from spikeloop.train.agents.reinforce import (ReinforceConfig, advantages, build_policy_net, discounted_returns,
                                              entropy_coefficient, learning_rate, train_reinforce)
from spikeloop.train.checkpoint import load_policy
from spikeloop.train.graph import QuantLinear

BRIEF = dict(max_episodes=12, eval_every=6, eval_episodes=3, hidden=[32], T=8, norm_steps=300)


def test_the_stabilisers_follow_their_schedules():
    cfg = ReinforceConfig().validate()
    assert [entropy_coefficient(cfg, e) for e in (0, 25, 50, 80)] == pytest.approx([0.15, 0.08, 0.01, 0.01])
    assert learning_rate(cfg, 0) == cfg.lr and learning_rate(cfg, 10) == pytest.approx(cfg.lr * 0.985 ** 10)
    np.testing.assert_allclose(discounted_returns([1.0, 1.0, 1.0], 0.5), [1.75, 1.5, 1.0])
    # scaled to unit spread but not re-centred: below the baseline stays negative, above positive
    a = advantages(np.array([1.0, 3.0, 5.0]), baseline=2.0)
    assert a.std() == pytest.approx(1.0) and a[0] < 0 < a[1] < a[2]
    np.testing.assert_allclose(a, (np.array([1.0, 3.0, 5.0]) - 2.0) / np.std([-1.0, 1.0, 3.0]))
    np.testing.assert_array_equal(advantages(np.array([2.0, 2.0]), 2.0), [0.0, 0.0])  # no spread: no division


def test_kaiming_init_with_a_quiet_output_layer():
    cfg = ReinforceConfig(hidden=[256]).validate()
    net = build_policy_net(cfg, 400, 4, torch.Generator().manual_seed(0))
    fc0, fc1 = (m for m in net.nodes.values() if isinstance(m, QuantLinear))
    assert fc0.weight.std().item() == pytest.approx(math.sqrt(2 / 400), rel=0.05)
    assert fc1.weight.std().item() == pytest.approx(0.01 * math.sqrt(2 / 256), rel=0.1)


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match=r"'readout' must be one of voltage-last, voltage-mean"):
        ReinforceConfig(readout="spike-count").validate()
    with pytest.raises(ConfigError, match=r"'lr_decay' must be in \[0, 1\), got 1.0"):
        ReinforceConfig(lr_decay=1.0).validate()
    with pytest.raises(ConfigError, match=r"'clip_norm' must be positive"):
        ReinforceConfig(clip_norm=0.0).validate()
    assert get_agent("reinforce").config is ReinforceConfig


def test_same_seed_same_weights():
    a = train_reinforce(ReinforceConfig(**{**BRIEF, "max_episodes": 4, "eval_every": 4}), progress=False)
    b = train_reinforce(ReinforceConfig(**{**BRIEF, "max_episodes": 4, "eval_every": 4}), progress=False)
    for (k, va), vb in zip(a.policy.network.state_dict().items(), b.policy.network.state_dict().values()):
        assert torch.equal(va, vb), k
    assert a.log == b.log


def test_reinforce_trains_logs_and_runs_in_lava_float_and_fixed(tmp_path):
    from spikeloop.cli import main

    flags = []
    for k, v in BRIEF.items():
        flags += [f"--{k.replace('_', '-')}", *map(str, v if isinstance(v, list) else [v])]
    assert main(["train", "--agent", "reinforce", "--out", str(tmp_path / "run"), "--quiet", *flags]) == 0
    run = tmp_path / "run"
    assert {"policy.safetensors", "config.toml", "training.json", "training.csv", "training.png"} <= {
        p.name for p in run.iterdir()}
    rows = list(csv.DictReader((run / "training.csv").open()))
    assert len(rows) == 12 and [int(r["episode"]) for r in rows] == list(range(12))
    for column in ("return", "loss", "lr", "entropy", "entropy_coef", "grad_norm", "rate_lif0"):
        assert all(math.isfinite(float(r[column])) for r in rows), column
    assert float(rows[0]["entropy"]) == pytest.approx(math.log(2), abs=0.01)  # the quiet output layer: uniform
    assert sum(1 for r in rows if r["eval_mean"]) == 2
    policy, _ = load_policy(run / "policy.safetensors")
    assert policy.provenance.agent == "reinforce"
    (tmp_path / "deploy").mkdir()
    policy, plan, out = deploy_in_lava(tmp_path / "deploy", policy, "CartPole-v1")
    # the twin check inside the runner already proved Lava == emulator at every decision
    assert out["float"].agreement >= 0.95 and out["fixed"].agreement >= 0.8
    assert policy.decoding.step == "mean" and not plan.population(plan.output).spiking
