"""ANN-to-SNN conversion: our own dense DQN and a Stable-Baselines3 DQN archive written by SB3 itself."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch

from spikeloop.cli import main
from spikeloop.core.errors import ConfigError
from spikeloop.core.nir_io import read_graph
from spikeloop.runtime.backends import make_backend
from spikeloop.runtime.compiler import plan_from_nir
from spikeloop.runtime.runner import run_closed_loop
from spikeloop.train.agents.dqn import DQNConfig, train_dqn
from spikeloop.train.checkpoint import load_policy, save_policy
from spikeloop.train.convert import DenseQ, balance, convert, dense_from_policy, read_sb3_dqn
from spikeloop.train.policy import TorchPolicy


SB3_WRITER = """
import sys, numpy as np, torch
from stable_baselines3 import DQN
path = sys.argv[1]
model = DQN("MlpPolicy", "CartPole-v1", learning_starts=200, seed=0, verbose=0, device="cpu",
            policy_kwargs={"net_arch": [32, 32]})
model.learn(3000)
model.save(path)
obs = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
with torch.no_grad():
    q = model.q_net(torch.as_tensor(obs)).numpy()
np.savez(path + ".q.npz", obs=obs, q=q)
"""


@pytest.fixture(scope="module")
def sb3_zip(tmp_path_factory):
    """A DQN archive written by Stable-Baselines3 itself, in its own process (SB3 and pandas stay out
    of the test process), with its Q-values on 50 observations."""
    import subprocess
    import sys

    import importlib.util

    if importlib.util.find_spec("stable_baselines3") is None:
        pytest.skip("stable-baselines3 is not installed (make setup installs it)")
    path = tmp_path_factory.mktemp("sb3") / "dqn.zip"
    subprocess.run([sys.executable, "-c", SB3_WRITER, str(path)], check=True, timeout=600)
    ref = np.load(str(path) + ".q.npz")
    return path, (ref["obs"], ref["q"])


def test_sb3_archive_reads_as_the_same_q_network_without_pickle(sb3_zip):
    path, (obs, q_sb3) = sb3_zip
    dense = read_sb3_dqn(path)
    assert [w.shape for w, _ in dense.layers] == [(32, 4), (32, 32), (2, 32)]
    assert np.allclose(dense.q(obs), q_sb3, atol=1e-5)


def test_sb3_archive_converts_and_runs_in_lava(tmp_path, sb3_zip):
    path, _ = sb3_zip
    out = tmp_path / "conv"
    assert main([ "convert", str(path), "--out", str(out), "--env", "CartPole-v1", "--T", "16", "64",
                 "--episodes", "3", "--calib-steps", "800", "--quiet"]) == 0
    report = json.loads((out / "convert.json").read_text())
    assert [r["T"] for r in report["rows"]] == [16, 64]
    assert report["rows"][-1]["action_agreement_with_ann"] >= 0.6  # rate coding approaches the ANN
    assert {"policy.safetensors", "policy.nir", "convert.md"} <= {p.name for p in out.iterdir()}
    plan = plan_from_nir(read_graph(out / "policy.nir"))
    assert [p.kind for p in plan.populations] == ["IF", "IF", "LI"]
    assert all(p.reset == "soft" for p in plan.populations if p.spiking)
    policy, _ = load_policy(out / "policy.safetensors")
    res = run_closed_loop(make_backend("lava-fused", plan, "fixed"), "CartPole-v1", episodes=1, seed=77,
                          reference=TorchPolicy(policy), twin=make_backend("emulator", plan, "fixed"),
                          progress=False, max_steps=40)
    assert res.agreement >= 0.8


def test_own_dense_dqn_converts_with_the_encoding_folded_in(tmp_path):
    res = train_dqn(DQNConfig(network="dense", total_steps=1500, learning_starts=300, eval_every=1500,
                              eval_episodes=2, norm_steps=300), progress=False)
    save_policy(tmp_path / "dense.safetensors", res.policy)
    dense_policy, _ = load_policy(tmp_path / "dense.safetensors")
    dense, enc = dense_from_policy(dense_policy, "dense")
    obs = np.random.default_rng(1).normal(size=(64, 4)) * 0.1
    x = torch.as_tensor((obs - np.asarray(enc.mean)) / np.asarray(enc.std), dtype=torch.float32)
    with torch.no_grad():
        q_policy = dense_policy(x).double().numpy()
    assert np.allclose(dense.q(obs), q_policy, rtol=1e-4, atol=1e-4)  # float32 network vs float64 fold
    # balancing: the percentile activation of each hidden layer maps to one spike per step
    lams = balance(dense, obs, 100.0)
    acts = dense.activations(obs)
    assert lams == pytest.approx([float(a[a > 0].max()) for a in acts[:-1]])
    snn = convert(dense, enc, obs, T=4, percentile=100.0)
    w1 = snn.network.nodes["fc1"].weight.detach().numpy()
    assert np.allclose(w1, dense.layers[1][0] * lams[0] / lams[1])
    assert main(["convert", str(tmp_path / "dense.safetensors"), "--out", str(tmp_path / "c"), "--T", "8",
                 "--episodes", "2", "--calib-steps", "300", "--quiet"]) == 0


def test_conversion_inputs_are_refused_before_work(tmp_path, capsys):
    spiking = tmp_path / "spiking.safetensors"
    res = train_dqn(DQNConfig(total_steps=50, learning_starts=10, eval_every=50, eval_episodes=1, norm_steps=50),
                    progress=False)
    save_policy(spiking, res.policy)
    bad_zip = tmp_path / "other.zip"
    with zipfile.ZipFile(bad_zip, "w") as z:
        z.writestr("data", json.dumps({"policy_class": {"__module__": "stable_baselines3.ppo.policies"}}))
        z.writestr("policy.pth", b"")
    evil = tmp_path / "evil.zip"  # a policy.pth whose pickle would run code: refused, never run
    import pickle

    class Boom:
        def __reduce__(self):
            return (exec, ("open('PWNED', 'w').write('x')",))

    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("data", json.dumps({"policy_class": {"__module__": "stable_baselines3.dqn.policies"}}))
        z.writestr("policy.pth", pickle.dumps({"q_net.q_net.0.weight": Boom()}))
    for argv, needle in (([str(spiking)], "conversion takes a dense ReLU network"),
                         ([str(evil), "--env", "CartPole-v1"], "not a plain tensor file"),
                         ([str(bad_zip), "--env", "CartPole-v1"], "not a DQN model"),
                         ([str(tmp_path / "missing.zip")], "no such file"),
                         ([str(spiking).replace("spiking", "x")], "no such file")):
        out = tmp_path / "never"
        assert main(["convert", *argv, "--out", str(out), "--quiet"]) == 2
        assert needle in capsys.readouterr().err
        assert not out.exists()
    assert not (tmp_path / "PWNED").exists() and not __import__("pathlib").Path("PWNED").exists()
    with pytest.raises(ConfigError, match="layer 1 takes 3 inputs"):
        DenseQ([(np.zeros((4, 2)), np.zeros(4)), (np.zeros((2, 3)), np.zeros(2))], "x")
