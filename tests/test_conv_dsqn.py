"""The convolutional DSQN: image environments, a spiking convolution that deploys as a kernel.

MinAtar (Young & Tian 2019) is the image benchmark: its games are 10x10 boards of a few
binary channels. A short training run on MinAtar/Breakout-v1 must save, reload, export,
compile with the convolution kept a convolution, and run closed loop in Lava beside the
emulator, in float and in fixed point.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import deploy_in_lava

from spikeloop.core.coding import InputEncoding
from spikeloop.core.envs import make_env, observation_shape
from spikeloop.core.errors import ConfigError
from spikeloop.core.nir_io import read_graph
from spikeloop.train.agents.dqn import DQNConfig, build_qnet, train_dqn
from spikeloop.train.graph import QuantConv2d, fake_quantize
from spikeloop.train.networks import build, spiking_conv

pytest.importorskip("minatar")

BREAKOUT = "MinAtar/Breakout-v1"


class _Board(gym.Env):
    """A fixed image observation whose every element is its own flat index (to read the layout)."""

    def __init__(self, shape):
        self.observation_space = gym.spaces.Box(0, 10_000, shape, np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.board = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return self.board, {}

    def step(self, action):
        return self.board, 0.0, True, False, {}


@pytest.fixture
def board_env():
    ids = []

    def register(shape):
        env_id = f"spikeloop-test/Board{len(ids)}-v0"
        gym.register(env_id, entry_point=_Board, kwargs={"shape": shape})
        ids.append(env_id)
        return env_id
    yield register
    for env_id in ids:
        del gym.registry[env_id]


def test_images_come_out_channels_first_and_flat(board_env):
    last = make_env(board_env((5, 6, 3)))  # channels last (MinAtar's, gymnasium's pixels)
    obs, _ = last.reset(seed=0)
    assert observation_shape(last) == (3, 5, 6) and obs.shape == (90,) and obs.dtype == np.float32
    np.testing.assert_array_equal(obs.reshape(3, 5, 6), np.moveaxis(last.unwrapped.board, -1, 0))
    first = make_env(board_env((4, 7, 7)))  # a frame stack, channels first: kept
    obs, _ = first.reset(seed=0)
    assert observation_shape(first) == (4, 7, 7)
    np.testing.assert_array_equal(obs, np.arange(196))
    gray = make_env(board_env((6, 5)))
    assert observation_shape(gray) == (1, 6, 5)
    assert observation_shape(make_env("CartPole-v1")) == (4,)
    breakout = make_env(BREAKOUT, seed=0)
    assert observation_shape(breakout) == (4, 10, 10) and breakout.action_space.n == 3


def test_spaces_that_fit_no_policy_are_refused_with_what_would(board_env):
    with pytest.raises(ConfigError, match=r"observation space is Box.*\(2, 3, 8, 8\).*merged into \(C, H, W\)"):
        make_env(board_env((2, 3, 8, 8)))

    class Nested(gym.Env):
        observation_space = gym.spaces.Dict({"a": gym.spaces.Box(0, 1, (2,))})
        action_space = gym.spaces.Discrete(2)

    gym.register("spikeloop-test/Nested-v0", entry_point=Nested)
    try:
        with pytest.raises(ConfigError, match=r"observation space is Dict.*FlattenObservation"):
            make_env("spikeloop-test/Nested-v0")
    finally:
        del gym.registry["spikeloop-test/Nested-v0"]


def test_image_encoding_scales_each_channel_by_its_peak():
    obs = np.zeros((3, 2 * 4), dtype=np.float64)  # two channels of 2x2
    obs[0, :4] = [0, 2, 4, 0]
    obs[1, :4] = [-8, 0, 0, 0]
    enc = InputEncoding.fit_image(obs, (2, 2, 2))
    assert enc.mean == (0.0,) * 8 and enc.std == (8.0,) * 4 + (1.0,) * 4 and enc.clip == 1.0
    np.testing.assert_array_equal(enc.encode(obs[0]), [0, 32 / 127, 64 / 127, 0, 0, 0, 0, 0])
    with pytest.raises(ConfigError, match=r"images of shape \(2, 2, 2\) needs observations of 8 values"):
        InputEncoding.fit_image(obs[:, :6], (2, 2, 2))


def test_conv_network_trains_on_the_weight_grid_and_rebuilds_from_its_spec():
    torch.manual_seed(0)
    net = spiking_conv([4, 10, 10], [6, 5], [16, 3], kernel=3, stride=1, fake_quant=True)
    assert list(net.nodes) == ["conv0", "lif_c0", "conv1", "lif_c1", "flatten", "fc0", "lif0", "fc1", "li1"]
    assert net.node_shapes()["lif_c1"] == ((5, 6, 6), (5, 6, 6))
    conv = net.nodes["conv0"]
    assert isinstance(conv, QuantConv2d) and conv.bias is None
    assert torch.equal(conv.deployed_weight(), fake_quantize(conv.weight))
    on_grid = conv.deployed_weight() / (conv.weight.abs().max() / 127)
    assert torch.allclose(on_grid, on_grid.round(), atol=1e-4) and not torch.equal(conv.deployed_weight(), conv.weight)
    x = torch.rand(2, 400)
    y = net.window(x, 4)
    assert y.shape == (4, 2, 3)
    twin = build(net.spec)
    twin.load_state_dict(net.state_dict())
    assert torch.equal(twin.window(x, 4), y)
    with pytest.raises(ConfigError, match="kernel 5 .* does not fit convolution 2's input of 5x2x2"):
        spiking_conv([4, 10, 10], [6, 5, 4], [3], kernel=5)
    with pytest.raises(ConfigError, match="input_shape must be"):
        spiking_conv([10, 10], [6], [3])


def test_conv_config_needs_an_image_environment():
    cfg = DQNConfig(env_id="CartPole-v1", conv_channels=[8]).validate()
    with pytest.raises(ConfigError, match=r"'conv_channels' \[8\] needs an image environment; CartPole-v1 gives "
                                          r"vectors of 4"):
        train_dqn(cfg, progress=False)
    with pytest.raises(ConfigError, match="dense is the plain ReLU twin of an MLP"):
        DQNConfig(env_id=BREAKOUT, conv_channels=[8], network="dense").validate()
    with pytest.raises(ConfigError, match="conv_channels"):
        DQNConfig(env_id=BREAKOUT, conv_channels=[0]).validate()
    # an MLP on a flattened image is allowed: conv_channels empty
    assert list(build_qnet(DQNConfig(env_id=BREAKOUT, hidden=[8]), (4, 10, 10), 3).nodes)[0] == "fc0"


def test_conv_dsqn_trains_on_minatar_and_runs_in_lava_float_and_fixed(tmp_path):
    cfg = DQNConfig(env_id=BREAKOUT, conv_channels=[8], hidden=[32], T=4, total_steps=1200, learning_starts=200,
                    eval_every=600, eval_episodes=2, norm_steps=300, batch_size=32, target_update=200).validate()
    policy, plan, out = deploy_in_lava(tmp_path, train_dqn(cfg, progress=False).policy, BREAKOUT, max_steps=30)
    assert policy.network.spec["builder"] == "conv" and policy.network.input_shape == (4, 10, 10)
    assert read_graph(tmp_path / "policy.nir").nodes["conv0"].weight.shape == (8, 4, 3, 3)
    conv = plan.connections[0]
    assert conv.conv is not None and conv.conv.in_shape == (4, 10, 10) and conv.conv.out_shape == (8, 8, 8)
    assert plan.input_size == 400
    # the twin check inside the runner already proved Lava == emulator at every decision
    assert out["float"].agreement >= 0.95, out["float"].agreement
    assert out["fixed"].agreement >= 0.8, out["fixed"].agreement
    spikes = out["fixed"].counts.per_decision()["spikes"]
    assert spikes["lif_c0"] > 0  # the convolution's population really fires
