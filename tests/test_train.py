"""Training: determinism, checkpoints (safetensors only), environment and config errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from spikeloop.core.errors import CheckpointError, ConfigError
from spikeloop.core.envs import make_env
from spikeloop.train.agents import config_from_dict
from spikeloop.train.agents.dqn import DQNConfig, train_dqn
from spikeloop.train.checkpoint import load_policy, save_policy

TINY = dict(total_steps=400, learning_starts=100, eval_every=200, eval_episodes=2, hidden=[16, 16],
            T=4, norm_steps=200, buffer_size=500, batch_size=16, target_update=100)


def test_same_seed_same_weights_and_history():
    a = train_dqn(DQNConfig(seed=3, **TINY), progress=False)
    b = train_dqn(DQNConfig(seed=3, **TINY), progress=False)
    c = train_dqn(DQNConfig(seed=4, **TINY), progress=False)
    for (k, va), vb in zip(a.policy.network.state_dict().items(), b.policy.network.state_dict().values()):
        assert torch.equal(va, vb), k
    assert a.history == b.history and a.policy.encoding == b.policy.encoding
    assert not torch.equal(a.policy.network.nodes["fc0"].weight, c.policy.network.nodes["fc0"].weight)


def test_checkpoint_round_trip(tmp_path):
    res = train_dqn(DQNConfig(seed=1, **TINY), progress=False)
    path = save_policy(tmp_path / "p.safetensors", res.policy, {"note": "x"})
    policy, info = load_policy(path)
    assert policy.encoding == res.policy.encoding and info == {"note": "x"}
    assert policy.T == res.policy.T and policy.decoding == res.policy.decoding
    assert policy.provenance == res.policy.provenance and policy.provenance.agent == "dqn"
    x = torch.as_tensor(res.policy.encoding.encode(np.ones((3, 4))), dtype=torch.float32)
    with torch.no_grad():
        assert torch.equal(policy(x), res.policy(x))


def test_corrupt_and_foreign_checkpoints_are_clear_errors(tmp_path):
    res = train_dqn(DQNConfig(seed=1, **TINY), progress=False)
    good = save_policy(tmp_path / "p.safetensors", res.policy)
    truncated = tmp_path / "t.safetensors"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="t.safetensors: not a readable safetensors checkpoint"):
        load_policy(truncated)
    pickled = tmp_path / "evil.pt"
    torch.save({"w": torch.ones(2)}, pickled)  # a pickle file is refused, never unpickled
    with pytest.raises(CheckpointError, match="evil.pt: not a readable safetensors checkpoint"):
        load_policy(pickled)
    from safetensors.torch import save_file

    foreign = tmp_path / "f.safetensors"
    save_file({"w": torch.ones(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="has no 'spikeloop' metadata"):
        load_policy(foreign)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_policy(tmp_path / "missing.safetensors")


def test_unknown_environment_id():
    with pytest.raises(ConfigError, match=r"unknown environment id 'CartPol-v9'.*known ids include"):
        make_env("CartPol-v9")


def test_continuous_action_env_is_refused():
    with pytest.raises(ConfigError, match=r"Pendulum-v1: its action space is Box.*need a Discrete action space \(as CartPole-v1, Acrobot-v1"):
        make_env("Pendulum-v1")


def test_a_wall_clock_budget_stops_the_run_with_one_last_evaluation():
    cfg = DQNConfig(total_steps=1_000_000, learning_starts=50, eval_every=1_000_000, eval_episodes=1,
                    hidden=[8], T=2, norm_steps=50, max_seconds=1.5)
    result = train_dqn(cfg, progress=False)
    evals = [h for h in result.history if "eval_mean" in h]
    assert result.steps < cfg.total_steps and len(evals) == 1 and evals[0]["step"] == result.steps
    assert result.best_eval == evals[0]["eval_mean"]
    with pytest.raises(ConfigError, match=r"'max_seconds' must be 0 \(no budget\) or a positive number"):
        DQNConfig(max_seconds=-1).validate()


def test_config_errors():
    with pytest.raises(ConfigError, match=r"unknown DQN config keys \['hiden'\]"):
        config_from_dict(DQNConfig, {"hiden": [3]})
    with pytest.raises(ConfigError, match=r"config field 'hidden' must list positive layer sizes, got \[\]"):
        DQNConfig(hidden=[]).validate()


def test_train_config_toml_reproduces_the_run_exactly(tmp_path):
    """`spikeloop train --agent dqn --config RUN/config.toml` gives the same weights, bit for bit."""
    from spikeloop.cli import main

    args = ["--seed", "5", "--total-steps", "400", "--learning-starts", "100", "--eval-every", "200",
            "--eval-episodes", "2", "--hidden", "16", "16", "--T", "4", "--norm-steps", "200",
            "--buffer-size", "500", "--batch-size", "16", "--target-update", "100", "--lr", "0.0007"]
    assert main(["train", "--out", str(tmp_path / "a"), "--quiet", *args]) == 0
    assert main(["train", "--agent", "dqn", "--config", str(tmp_path / "a" / "config.toml"),
                 "--out", str(tmp_path / "b"), "--quiet"]) == 0
    a, _ = load_policy(tmp_path / "a" / "policy.safetensors")
    b, _ = load_policy(tmp_path / "b" / "policy.safetensors")
    assert a.provenance == b.provenance and a.provenance.config["lr"] == 0.0007
    for (k, va), vb in zip(a.network.state_dict().items(), b.network.state_dict().values()):
        assert torch.equal(va, vb), k
    assert (tmp_path / "a" / "config.toml").read_text() == (tmp_path / "b" / "config.toml").read_text()
    # a flag overrides the file, and a different seed gives different weights
    assert main(["train", "--config", str(tmp_path / "a" / "config.toml"), "--seed", "6",
                 "--out", str(tmp_path / "c"), "--quiet"]) == 0
    c, _ = load_policy(tmp_path / "c" / "policy.safetensors")
    assert c.provenance.seed == 6
    assert not torch.equal(a.network.nodes["fc0"].weight, c.network.nodes["fc0"].weight)


def test_config_file_errors_are_clear(tmp_path, capsys):
    from spikeloop.cli import main

    bad = tmp_path / "config.toml"
    bad.write_text('[agent]\nname = "dqn"\n[dqn]\nlr = "fast"\n')
    assert main(["train", "--config", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "config field 'lr' must be a finite number, got 'fast'" in capsys.readouterr().err
    bad.write_text('[agent]\nname = "ppo9"\n[ppo9]\nx = 1\n')
    assert main(["train", "--config", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "unknown agent 'ppo9'; known agents: bc, dqn, ppo" in capsys.readouterr().err
    bad.write_bytes(b"\xff\xfe not toml")
    assert main(["train", "--config", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "not a valid TOML file" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_agents_are_registered_with_documented_configs():
    import dataclasses

    from spikeloop.options import field_docs
    from spikeloop.train.agents import agent_names, get_agent

    assert "dqn" in agent_names()
    for name in agent_names():
        agent = get_agent(name)
        docs = field_docs(agent.config)
        undocumented = [f.name for f in dataclasses.fields(agent.config) if not docs.get(f.name)]
        assert not undocumented, f"{name}: fields without a docstring: {undocumented}"


def test_legacy_checkpoint_reads_as_the_same_policy(trained_run):
    """The committed format-1 checkpoint (a SpikingMLP config) loads as an MLP graph policy."""
    policy, info = load_policy(trained_run / "policy.safetensors")
    assert sorted(policy.network.nodes) == ["fc0", "fc1", "fc2", "li2", "lif0", "lif1"]
    assert policy.provenance.env_id == "CartPole-v1" and policy.T == 8
