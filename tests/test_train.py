"""Training: determinism, checkpoints (safetensors only), environment and config errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from spikeloop.core.errors import CheckpointError, ConfigError
from spikeloop.train.checkpoint import load_policy, save_policy
from spikeloop.train.dqn import DQNConfig, train_dqn
from spikeloop.core.coding import InputEncoding
from spikeloop.core.envs import make_env

TINY = dict(total_steps=400, learning_starts=100, eval_every=200, eval_episodes=2, hidden=[16, 16],
            T=4, norm_steps=200, buffer_size=500, batch_size=16, target_update=100)


def test_same_seed_same_weights_and_history():
    a = train_dqn(DQNConfig(seed=3, **TINY), progress=False)
    b = train_dqn(DQNConfig(seed=3, **TINY), progress=False)
    c = train_dqn(DQNConfig(seed=4, **TINY), progress=False)
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(va, vb), k
    assert a.history == b.history and a.encoding == b.encoding
    assert not torch.equal(a.model.layers[0].linear.weight, c.model.layers[0].linear.weight)


def test_checkpoint_round_trip(tmp_path):
    res = train_dqn(DQNConfig(seed=1, **TINY), progress=False)
    path = save_policy(tmp_path / "p.safetensors", res.model, {"encoding": res.encoding.to_dict()})
    model, info = load_policy(path)
    assert InputEncoding.from_dict(info["encoding"]) == res.encoding
    x = torch.as_tensor(res.encoding.encode(np.ones((3, 4))), dtype=torch.float32)
    with torch.no_grad():
        assert torch.equal(model(x), res.model(x))


def test_corrupt_and_foreign_checkpoints_are_clear_errors(tmp_path):
    res = train_dqn(DQNConfig(seed=1, **TINY), progress=False)
    good = save_policy(tmp_path / "p.safetensors", res.model)
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
    with pytest.raises(ConfigError, match="needs a Discrete action space"):
        make_env("Pendulum-v1")


def test_config_errors():
    with pytest.raises(ConfigError, match=r"unknown DQN config keys \['hiden'\]"):
        DQNConfig.from_dict({"hiden": [3]})
    with pytest.raises(ConfigError, match="hidden must list positive layer sizes"):
        DQNConfig(hidden=[]).validate()
