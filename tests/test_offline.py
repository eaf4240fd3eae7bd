"""Learning from demonstrations: the demonstrations file (recorded by a real expert, read without pickle),
behaviour cloning, and the cloned policy in Lava."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import deploy_in_lava

from spikeloop.cli import main
from spikeloop.core.errors import ConfigError
from spikeloop.train.agents.bc import BCConfig, train_bc
from spikeloop.train.offline import FORMAT, load_demos

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def demos(tmp_path_factory) -> Path:
    """5 episodes of the committed trained CartPole policy (greedy), as `spikeloop collect` writes them."""
    out = tmp_path_factory.mktemp("demos") / "demos.npz"
    assert main(["collect", str(DATA / "policy.safetensors"), "--out", str(out), "--episodes", "5", "--quiet"]) == 0
    return out


def test_collect_writes_the_documented_format(demos, capsys):
    d = load_demos(demos)
    assert d.meta["format"] == FORMAT and d.meta["env_id"] == "CartPole-v1" and d.meta["episodes"] == 5
    assert d.returns == d.meta["returns"] == [500.0] * 5  # the trained expert balances every episode
    assert d.observations.shape == (2500, 4) and set(np.unique(d.actions)) == {0, 1}
    assert d.episode.tolist() == [e for e in range(5) for _ in range(500)]
    assert d.step[:3].tolist() == [0, 1, 2] and d.returns_to_go[0] == 500.0 and d.returns_to_go[499] == 1.0
    with np.load(demos, allow_pickle=False) as z:  # nothing in it needs unpickling
        assert sorted(z.files) == sorted(["observations", "actions", "rewards", "episode", "step", "returns_to_go",
                                          "meta"])


def test_bad_demonstrations_are_refused_with_the_fault_named(demos, tmp_path):
    with np.load(demos, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    bad = tmp_path / "bad.npz"
    np.savez(bad, **{**arrays, "actions": arrays["actions"].astype(np.float64)})
    with pytest.raises(ConfigError, match=r"array 'actions' must be int64 \(N,\) with N = 2500, got float64"):
        load_demos(bad)
    np.savez(bad, **{**arrays, "meta": np.array(json.dumps({"format": "other/1"}))})
    with pytest.raises(ConfigError, match="format 'other/1', expected spikeloop-demos/1"):
        load_demos(bad)
    obj = tmp_path / "pickled.npz"
    np.savez(obj, **{**arrays, "actions": np.array([object()] * len(arrays["actions"]), dtype=object)})
    with pytest.raises(ConfigError, match="not a demonstrations archive"):
        load_demos(obj)
    with pytest.raises(ConfigError, match="config field 'demos' must name a demonstrations file"):
        BCConfig().validate()
    assert main(["collect", str(DATA / "policy.safetensors"), "--out", str(tmp_path / "d.txt")]) == 2


def test_behaviour_cloning_trains_seeded_and_runs_in_lava(demos, tmp_path):
    cfg = dict(demos=str(demos), epochs=2, eval_episodes=2, hidden=[32], T=4, target_return=1e9)
    a, b = train_bc(BCConfig(**cfg), progress=False), train_bc(BCConfig(**cfg), progress=False)
    assert a.log == b.log and [r["epoch"] for r in a.log] == [0, 1]
    assert a.log[1]["loss"] < a.log[0]["loss"] and a.log[1]["accuracy"] > 0.6
    assert a.policy.provenance.agent == "bc" and a.policy.encoding.n_inputs == 4
    _, plan, out = deploy_in_lava(tmp_path, a.policy, "CartPole-v1")
    assert out["float"].agreement >= 0.95 and out["fixed"].agreement >= 0.8


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Path:
    """6 episodes of the same expert with a random action at probability 0, 0.3 and 0.6 in turn."""
    out = tmp_path_factory.mktemp("mixed") / "mixed.npz"
    assert main(["collect", str(DATA / "policy.safetensors"), "--out", str(out), "--episodes", "6",
                 "--epsilon", "0,0.3,0.6", "--quiet"]) == 0
    return out


def test_collect_with_epsilon_records_mixed_quality_seeded(mixed, tmp_path):
    d = load_demos(mixed)
    assert d.meta["epsilon"] == [0.0, 0.3, 0.6]
    r = d.returns
    assert r[0] == r[3] == 500.0 and max(r[1], r[2], r[4], r[5]) < 500.0  # the noisy episodes fall early
    again = tmp_path / "again.npz"
    assert main(["collect", str(DATA / "policy.safetensors"), "--out", str(again), "--episodes", "6",
                 "--epsilon", "0,0.3,0.6", "--quiet"]) == 0
    np.testing.assert_array_equal(load_demos(again).actions, d.actions)
    with pytest.raises(SystemExit) as e:  # argparse: usage, the fault, exit status 2
        main(["collect", str(DATA / "policy.safetensors"), "--out", str(tmp_path / "e.npz"), "--epsilon", "0,1.5"])
    assert e.value.code == 2 and not (tmp_path / "e.npz").exists()


def test_the_folded_command_is_the_conditioned_network():
    import torch

    from spikeloop.train.agents.bc import fold_command
    from spikeloop.train.networks import spiking_mlp

    torch.manual_seed(0)
    conditioned = spiking_mlp([5, 24, 2], du=1.0, dv=0.25).double()
    with torch.no_grad():
        for p in conditioned.parameters():
            p.normal_(0, 0.8)
    net = spiking_mlp([4, 24, 2], du=1.0, dv=0.25).double()
    fold_command(net, conditioned, 0.7)
    x = torch.randn(300, 4, dtype=torch.float64)
    xc = torch.cat([x, torch.full((300, 1), 0.7, dtype=torch.float64)], dim=1)
    with torch.no_grad():
        a, b = net.window(x, 8), conditioned.window(xc, 8)
    assert a.abs().max() > 0.5
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=1e-12)  # float rounding order only


def test_a_return_conditioned_policy_trains_and_runs_in_lava(mixed, tmp_path):
    cfg = BCConfig(demos=str(mixed), epochs=3, eval_episodes=2, hidden=[32], T=4, target_return=1e9,
                   condition="return")
    res = train_bc(cfg, progress=False)
    assert [r["command_return"] for r in res.log] == [500.0] * 3  # the best return in the demonstrations
    assert res.policy.encoding.n_inputs == 4 and res.policy.network.input_shape == (4,)
    _, plan, out = deploy_in_lava(tmp_path, res.policy, "CartPole-v1")
    assert out["float"].agreement >= 0.95 and out["fixed"].agreement >= 0.8
    with pytest.raises(ConfigError, match="'du_hidden' must be 1 with condition return"):
        BCConfig(demos="d.npz", condition="return", du_hidden=0.5).validate()


def test_the_return_conditioned_preset_reads_back(mixed):
    from spikeloop.options import preset_path
    from spikeloop.pipeline import read_config
    from spikeloop.train.agents import config_from_dict, get_agent

    agent, table = read_config(preset_path("bc-return-cartpole"))
    cfg = config_from_dict(get_agent(agent).config, table | {"demos": str(mixed)})
    assert agent == "bc" and cfg.condition == "return" and cfg.du_hidden == 1.0


def test_the_spiking_decision_transformer_trains_fine_tunes_and_refuses_to_export(mixed, tmp_path, capsys):
    import torch

    from spikeloop.train.agents.sdt import SDTConfig, load_decision_transformer, play, train_sdt

    cfg = dict(demos=str(mixed), epochs=2, finetune_episodes=3, eval_every=3, eval_episodes=2, embed=16,
               context=6, target_return=400.0)
    a, b = train_sdt(SDTConfig(**cfg), progress=False), train_sdt(SDTConfig(**cfg), progress=False)
    assert a.log == b.log  # seeded: the same losses, returns and evaluations
    assert [r["phase"] for r in a.log] == ["offline"] * 2 + ["online"] * 3
    assert a.log[1]["loss"] < a.log[0]["loss"] and all(r["grad_norm"] > 0 for r in a.log[2:])
    # causal: a later token cannot change an earlier position's logits
    model = a.policy.model
    tok, valid = torch.rand(1, 6, 4 + 1 + 2), torch.ones(1, 6)
    changed = tok.clone()
    changed[0, -1] += 5.0
    with torch.no_grad():
        np.testing.assert_array_equal(model(tok, valid)[0, :-1].numpy(), model(changed, valid)[0, :-1].numpy())
    # the run folder: its checkpoint reads back as the same model, and every deploying command refuses it
    run = tmp_path / "run"
    assert main(["train", "--agent", "sdt", "--out", str(run), "--quiet",
                 *[f"--{k.replace('_', '-')}={v}" for k, v in cfg.items()]]) == 0
    back = load_decision_transformer(run / "policy.safetensors")
    assert play(back, "CartPole-v1", 2, 5)[0] == play(a.policy, "CartPole-v1", 2, 5)[0]
    assert (run / "training.csv").exists() and (run / "training.png").exists()
    capsys.readouterr()
    assert main(["export", str(run)]) == 2
    err = capsys.readouterr().err
    assert "NIR cannot express its self-attention" in err and "--agent bc --condition return" in err
    assert not (run / "policy.nir").exists()
    assert main(["collect", str(run), "--out", str(tmp_path / "d.npz"), "--quiet"]) == 2


def test_the_decision_transformer_preset_reads_back(mixed):
    from spikeloop.options import preset_path
    from spikeloop.pipeline import read_config
    from spikeloop.train.agents import config_from_dict, get_agent

    agent, table = read_config(preset_path("sdt-cartpole"))
    cfg = config_from_dict(get_agent(agent).config, table | {"demos": str(mixed)})
    assert agent == "sdt" and (cfg.context, cfg.finetune_episodes, cfg.target_return) == (10, 50, 500.0)


def test_demo_refuses_the_decision_transformer_before_training(mixed, tmp_path, capsys):
    assert main(["demo", "--agent", "sdt", "--demos", str(mixed), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert "NIR cannot express its self-attention" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
