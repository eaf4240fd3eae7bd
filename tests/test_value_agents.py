"""The value-based agent's options: each trains briefly, then exports, compiles and runs in Lava.

Every case trains the DQN agent with one group of switches (between them they cover every
Rainbow part and every neuron option), saves and reloads the checkpoint, exports it to NIR,
and runs closed-loop episodes on Lava (fused mapping) in float and in fixed point, each beside
the emulator as its twin: the runner raises unless both give the same raw output at every
decision. The unit tests below check the parts themselves (the dueling head, n-step returns,
prioritized sampling, noise, the C51 projection and the surrogates).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import deploy_in_lava

from spikeloop.core.coding import ATOMS, SPIKE_COUNT
from spikeloop.core.errors import ConfigError
from spikeloop.export.to_nir import export_policy
from spikeloop.options import preset_path
from spikeloop.pipeline import read_config
from spikeloop.train.agents import config_from_dict
from spikeloop.train.agents.dqn import DQNConfig, _c51_target, train_dqn
from spikeloop.train.graph import SURROGATES, QuantLinear, spike, surrogate_grad
from spikeloop.train.networks import dueling_matrices, noisy_layers, spiking_mlp
from spikeloop.train.replay import NStep, PrioritizedReplay, ReplayBuffer

BRIEF = dict(total_steps=1500, learning_starts=300, eval_every=750, eval_episodes=3, hidden=[32, 32],
             norm_steps=500, buffer_size=5000, target_update=250)

CASES = {
    "dueling+single-q+soft+fast-sigmoid": dict(dueling=True, double=False, reset="soft", surrogate="fast-sigmoid"),
    "nstep+prioritized+cubalif+sigmoid+mean": dict(n_step=3, prioritized=True, du_hidden=0.5, du_readout=0.5,
                                                   surrogate="sigmoid", surrogate_slope=5.0,
                                                   readout="voltage-mean", T=6),
    "noisy": dict(noisy=True, eps_start=0.0, eps_end=0.0),
    "spike-count+soft": dict(readout="spike-count", reset="soft", reward_scale=0.1, lr=3e-3),
    "c51+dueling": dict(atoms=21, v_min=0.0, v_max=20.0, reward_scale=0.2, dueling=True),
}


def _deploy_and_check(tmp_path, cfg: DQNConfig):
    return deploy_in_lava(tmp_path, train_dqn(cfg, progress=False).policy, cfg.env_id)


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_option_trains_exports_and_runs_in_lava(tmp_path, case):
    cfg = DQNConfig(**BRIEF, **CASES[case]).validate()
    policy, plan, out = _deploy_and_check(tmp_path, cfg)
    # the twin check inside the runner already proved Lava == emulator at every decision
    assert out["float"].agreement >= 0.95, out["float"].agreement
    assert out["fixed"].agreement >= 0.8, out["fixed"].agreement
    if cfg.readout == "spike-count":
        assert policy.decoding.kind == SPIKE_COUNT and plan.population(plan.output).spiking
        assert out["fixed"].counts.per_decision()["spikes"][plan.output] > 0  # the counts are not all ties at 0
    if cfg.atoms > 1:
        assert policy.decoding.kind == ATOMS and len(policy.decoding.atoms) == cfg.atoms
        assert plan.population(plan.output).size == 2 * cfg.atoms
    if cfg.dueling:  # both streams spike, and both heads feed the readout
        readout = plan.output
        assert {c.src for c in plan.incoming(readout)} == {"lif_v", "lif_a"}
    if cfg.noisy:  # the noise is off once training returns: the deployed weights are the means
        assert all(not m.noise_on for m in noisy_layers(policy.network))


def test_spiking_rainbow_preset_trains_and_runs_in_lava(tmp_path):
    agent, table = read_config(preset_path("spiking-rainbow"))
    assert agent == "dqn"
    cfg = config_from_dict(DQNConfig, {**table, **BRIEF})
    assert (cfg.T, cfg.dv_hidden, cfg.du_hidden, cfg.vth, cfg.reset) == (5, 0.1, 0.2, 1.0, "soft")
    assert cfg.dueling and cfg.noisy and cfg.prioritized and cfg.double and cfg.n_step == 3 and cfg.atoms == 51
    policy, plan, out = _deploy_and_check(tmp_path, cfg)
    readout = plan.population(plan.output)
    assert not readout.spiking and np.all(readout.dv == 1.0)  # the dense output layer: no memory
    assert policy.decoding.step == "mean"
    assert out["float"].agreement >= 0.95 and out["fixed"].agreement >= 0.8


# ----------------------------------------------------------------------------- the parts


def test_dueling_head_is_value_plus_centred_advantage():
    torch.manual_seed(0)
    net = spiking_mlp([3, 8, 8, 4 * 5], dueling=True, atoms=5, dtype="float64")
    h_v, h_a = torch.rand(2, 8, dtype=torch.float64), torch.rand(2, 8, dtype=torch.float64)
    v = h_v @ net.nodes["head_v"].weight.T  # (2, atoms)
    a = (h_a @ net.nodes["head_a"].weight.T).reshape(2, 4, 5)
    q = net.nodes["head_v"](h_v) + net.nodes["head_a"](h_a)
    expect = v[:, None, :] + a - a.mean(dim=1, keepdim=True)
    assert torch.allclose(q.reshape(2, 4, 5), expect, atol=1e-12)
    mv, ma = dueling_matrices(4, 5)
    assert mv.shape == (20, 5) and ma.shape == (20, 20)
    # exported as plain Linear nodes holding the combined weights
    from spikeloop.core.coding import InputEncoding
    from spikeloop.train.policy import Policy
    graph = export_policy(Policy(net, 4, InputEncoding((0.0,) * 3, (1.0,) * 3)), 1e-3)
    w = graph.nodes["head_a"].weight
    assert type(graph.nodes["head_a"]).__name__ == "Linear" and w.shape == (20, 8)
    assert np.allclose(w.reshape(4, 5, 8).sum(axis=0), 0.0, atol=1e-12)  # advantages centred per atom


def test_nstep_returns_and_episode_ends():
    ns = NStep(3, 0.5)
    out = [ns.push(i, i, 1.0, i + 1, False, False) for i in range(3)]
    assert out[0] == [] and out[1] == []
    assert out[2] == [(0, 0, 1.75, 3, False, 0.125)]
    tail = ns.push(3, 3, 2.0, 4, True, False)  # termination flushes every queued start
    assert tail == [(1, 1, 1.0 + 0.5 + 0.5, 4, True, 0.125), (2, 2, 1.0 + 1.0, 4, True, 0.25), (3, 3, 2.0, 4, True, 0.5)]
    ns.push(10, 0, 1.0, 11, False, False)
    assert ns.push(11, 1, 1.0, 12, False, True) == [(10, 0, 1.5, 12, False, 0.25), (11, 1, 1.0, 12, False, 0.5)]
    one = NStep(1, 0.99)
    assert one.push(0, 1, 2.0, 1, False, False) == [(0, 1, 2.0, 1, False, 0.99)]


def test_prioritized_replay_samples_in_proportion_and_weights_the_bias():
    buf = PrioritizedReplay(8, 1, alpha=1.0, eps=0.0)
    for k in range(4):
        buf.add([k], 0, 0.0, [k], False, 0.99)
    buf.update(np.arange(4), np.array([1.0, 2.0, 3.0, 4.0]))
    rng = np.random.default_rng(0)
    counts = np.zeros(4)
    for _ in range(500):
        idx, w = buf.sample(rng, 20, beta=1.0)
        counts += np.bincount(idx, minlength=4)
        p = np.array([1, 2, 3, 4])[idx] / 10.0
        assert np.allclose(w, (1 / p) / (1 / p).max(), rtol=1e-6)
    assert np.allclose(counts / counts.sum(), [0.1, 0.2, 0.3, 0.4], atol=0.01)
    uniform = ReplayBuffer(8, 1)
    uniform.add([0], 0, 0.0, [0], False, 0.99)
    assert uniform.sample(rng, 3)[1] is None


def test_noisy_synapses_move_only_while_on_and_export_their_means():
    torch.manual_seed(0)
    layer = QuantLinear(6, 4, noisy_std=0.5, fake_quant=False, dtype=torch.float64)
    x = torch.randn(3, 6, dtype=torch.float64)
    mean_out = layer(x)
    layer.noise_on = True
    layer.reset_noise(torch.Generator().manual_seed(1))
    noisy_out = layer(x)
    assert not torch.allclose(noisy_out, mean_out)
    layer.noise_on = False
    assert torch.equal(layer(x), mean_out)
    assert torch.equal(layer.deployed_weight(), layer.weight)


def test_c51_projection_keeps_the_mass_on_the_support():
    cfg = DQNConfig(atoms=5, v_min=0.0, v_max=4.0, double=False)
    z = torch.linspace(0.0, 4.0, 5, dtype=torch.float64)

    # a point mass on atom 1 (value 1) shifted by r = 1, gamma 1: lands on atom 2 exactly
    net = spiking_mlp([2, 4, 2 * 5], dtype="float64", atoms=5)
    from spikeloop.core.coding import Decoding, InputEncoding
    from spikeloop.train.policy import Policy
    q = Policy(net, 1, InputEncoding((0.0, 0.0), (1.0, 1.0)), Decoding(kind=ATOMS, atoms=tuple(z.tolist())))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, QuantLinear):
                m.weight.zero_()
        net.nodes["li1"].bias.copy_(torch.tensor([0, 50.0, 0, 0, 0] * 2, dtype=torch.float64))
    xn = torch.zeros(3, 2, dtype=torch.float64)
    r = torch.tensor([1.0, 0.5, 10.0], dtype=torch.float64)
    m = _c51_target(cfg, q, q, xn, r, torch.ones(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64), z)
    assert torch.allclose(m.sum(dim=1), torch.ones(3, dtype=torch.float64))
    assert torch.allclose(m[0], torch.tensor([0, 0, 1.0, 0, 0], dtype=torch.float64), atol=1e-12)
    assert torch.allclose(m[1], torch.tensor([0, 0.5, 0.5, 0, 0], dtype=torch.float64), atol=1e-12)
    assert torch.allclose(m[2], torch.tensor([0, 0, 0, 0, 1.0], dtype=torch.float64), atol=1e-12)  # clipped


@pytest.mark.parametrize("kind", SURROGATES)
def test_surrogates_are_heaviside_forward_with_their_derivative(kind):
    x = torch.tensor([-0.5, -0.1, 0.0, 0.2, 1.0], dtype=torch.float64, requires_grad=True)
    y = spike(x, 3.0, kind)
    assert y.tolist() == [0, 0, 0, 1, 1]
    y.sum().backward()
    xs = x.detach()
    expect = {"arctan": 1.5 / (1 + (np.pi / 2 * 3.0 * xs) ** 2),
              "sigmoid": 3.0 * torch.sigmoid(3 * xs) * (1 - torch.sigmoid(3 * xs)),
              "fast-sigmoid": 1 / (1 + 3.0 * xs.abs()) ** 2}[kind]
    assert torch.allclose(x.grad, expect, atol=1e-12)
    assert torch.allclose(surrogate_grad(kind, xs, 3.0), expect, atol=1e-12)


def test_option_errors_name_the_field():
    for bad, field in ((dict(surrogate="relu"), "surrogate"), (dict(reset="zero"), "reset"),
                       (dict(readout="rate"), "readout"), (dict(du_hidden=0.0), "du_hidden"),
                       (dict(n_step=0), "n_step"), (dict(atoms=0), "atoms"), (dict(v_min=1.0, v_max=1.0), "v_max"),
                       (dict(atoms=11, readout="spike-count"), "readout"), (dict(per_alpha=2.0), "per_alpha")):
        with pytest.raises(ConfigError, match=field):
            DQNConfig(**bad).validate()


# ----------------------------------------------------------------------------- environments


@pytest.mark.parametrize("env_id", ["Acrobot-v1", "MountainCar-v0", "LunarLander-v3"])
def test_discrete_environments_train_and_run_in_lava(tmp_path, env_id):
    cfg = DQNConfig(**{**BRIEF, "total_steps": 800, "eval_every": 800, "eval_episodes": 1}, env_id=env_id).validate()
    policy, plan, out = _deploy_and_check(tmp_path, cfg)
    n_obs, n_act = {"Acrobot-v1": (6, 3), "MountainCar-v0": (2, 3), "LunarLander-v3": (8, 4)}[env_id]
    assert policy.network.input_shape == (n_obs,) and plan.population(plan.output).size == n_act
    assert out["float"].agreement >= 0.95 and out["fixed"].agreement >= 0.8
