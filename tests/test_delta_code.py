"""The delta spike code: stateful across decisions (it sends what changed), so every encode path starts
an episode's encoder afresh: the runner at each episode, the batched runner refuses it, training encodes
each episode in order, and Xylo and Lava run it exactly as torch does."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import deploy_in_lava

from spikeloop.cli import main
from spikeloop.core.coding import InputEncoding, SpikeEncoding
from spikeloop.core.errors import ConfigError
from spikeloop.core.nir_io import read_graph, write_graph
from spikeloop.export.to_nir import export_policy
from spikeloop.runtime.backends import make_backend
from spikeloop.runtime.compiler import plan_from_nir
from spikeloop.runtime.runner import run_closed_loop
from spikeloop.runtime.xylo_map import make_xylo_backend
from spikeloop.train.checkpoint import load_policy, save_policy
from spikeloop.train.policy import TorchPolicy

XYLO = Path(__file__).parent / "data" / "xylo"


def test_the_delta_code_sends_what_changed_and_catches_up_on_large_steps():
    enc = SpikeEncoding(mean=(0.0,), std=(1.0,), clip=2.0, code="delta", max_events=15)
    rate = SpikeEncoding(mean=(0.0,), std=(1.0,), clip=2.0, code="rate", max_events=15)
    s = enc.stream()
    # level = round(15 x / 2): x = 1 -> 8 (half to even), x = -2 -> -15; the reference moves by what was sent
    sent = [s.payload(np.array([x])).tolist() for x in (1.0, 1.0, -2.0, -2.0, -2.0, 0.1)]
    assert sent == [[8, 0], [0, 0], [0, 15], [0, 8], [0, 0], [15, 0]]
    assert s.reference.tolist() == [0]  # round(0.75) = 1, but 15 up from -15 is as far as one decision goes
    s.reset()  # a new episode: the first decision is the rate code
    first = s.payload(np.array([-0.7]))
    assert first.tolist() == rate.to_payload(np.array([-0.7])).tolist() == [0, 5]
    with pytest.raises(ConfigError, match="the delta code is stateful"):
        enc.to_payload(np.array([0.5]))
    obs = np.random.default_rng(0).normal(size=(30, 1))
    episode = enc.encode_episode(obs)
    s.reset()
    np.testing.assert_array_equal(episode, np.stack([s.encode(o) for o in obs]))
    np.testing.assert_array_equal(np.cumsum(episode[:, 0] - episode[:, 1])[-1], s.reference[0])
    # a batch keeps one reference per row; reset(rows) restarts only those rows' episodes
    b = enc.stream()
    b.payload(np.array([[1.0], [1.0]]))
    b.reset(rows=[1])
    assert b.payload(np.array([[1.0], [1.0]])).tolist() == [[0, 0], [8, 0]]
    with pytest.raises(ConfigError, match=r"an observation of shape \(1,\) in an episode of shape \(2, 1\)"):
        b.payload(np.array([1.0]))
    assert InputEncoding.from_dict(json.loads(json.dumps(enc.to_dict()))) == enc
    assert enc.host_ops() == 1 * (4 + 2) + 2 * 3 and enc.stateful and not rate.stateful


def _delta_twin_of_the_xylo_policy(tmp_path: Path):
    """The committed Xylo policy with its rate code swapped for the delta code of the same grid
    (both send two channels per value), saved and exported."""
    policy, _ = load_policy(XYLO / "policy.safetensors")
    policy.encoding = replace(policy.encoding, code="delta")
    save_policy(tmp_path / "policy.safetensors", policy)
    write_graph(tmp_path / "policy.nir", export_policy(load_policy(tmp_path / "policy.safetensors")[0], 1e-3))
    return load_policy(tmp_path / "policy.safetensors")[0], plan_from_nir(read_graph(tmp_path / "policy.nir"))


def test_each_episode_starts_its_encoder_afresh_on_xylo_and_torch_agrees(tmp_path):
    policy, plan = _delta_twin_of_the_xylo_policy(tmp_path)
    assert plan.encoding.code == "delta"
    res = run_closed_loop(make_xylo_backend("emulator", plan), "CartPole-v1", episodes=3, seed=7,
                          reference=TorchPolicy(policy), progress=False, record=True, max_steps=60)
    assert res.agreement == 1.0 and res.q_max_abs_diff < 1e-4
    tr = res.trace
    for ep in range(3):  # each episode replayed on a fresh core and encoder gives the same values
        core = make_xylo_backend("emulator", plan)
        for obs, values in zip(tr["observations"][tr["episode"] == ep], tr["values"][tr["episode"] == ep]):
            np.testing.assert_array_equal(core.decide(obs), values)
    # what the runner's reset is for: carried over, the second episode's first input would differ
    carried = plan.encoding.stream()
    for obs in tr["observations"][tr["episode"] == 0]:
        carried.payload(obs)
    first = tr["observations"][tr["episode"] == 1][0]
    assert not np.array_equal(carried.payload(first), plan.encoding.stream().payload(first))
    with pytest.raises(ConfigError, match="the delta code carries what it sent .* run it with one environment"):
        run_closed_loop(make_backend("emulator", plan, "fixed", batch=2), "CartPole-v1", episodes=2, seed=0,
                        progress=False)


def test_a_delta_coded_policy_on_xylosim_equals_the_emulator_at_every_decision(tmp_path, capsys):
    _delta_twin_of_the_xylo_policy(tmp_path)
    assert main(["run", str(tmp_path), "--target", "xylo", "--backend", "xylosim", "--episodes", "2",
                 "--eval-seed", "1003", "--quiet", "--out", str(tmp_path / "sim")]) == 0
    s = json.loads((tmp_path / "sim" / "report.json").read_text())
    assert s["evaluation"]["xylo_sim"]["emulator_bit_exact"] is True
    assert s["evaluation"]["xylo_sim"]["agreement_with_torch"] == 1.0
    assert s["encoder"]["host_ops_per_decision"] == 4 * (4 + 2) + 8 * 3 and "delta" in s["encoder"]["kind"]


def test_train_with_the_delta_code_and_run_it_on_binary_spikes_in_lava(tmp_path):
    flags = ["--max-episodes", "4", "--hidden", "16", "--T", "4", "--eval-every", "2", "--eval-episodes", "2",
             "--encoder", "delta"]
    assert main(["train", "--agent", "reinforce", "--out", str(tmp_path / "run"), "--quiet", *flags]) == 0
    policy, _ = load_policy(tmp_path / "run" / "policy.safetensors")
    assert policy.encoding.code == "delta" and policy.encoding.binary
    # Lava (fused) in float and fixed point beside the emulator, every decision equal; torch agrees
    _, plan, out = deploy_in_lava(tmp_path, policy, "CartPole-v1")
    assert not plan.input_graded
    assert out["fixed"].agreement >= 0.8 and out["float"].agreement >= 0.95


def test_the_delta_preset_is_the_xylo_preset_with_the_delta_code():
    from spikeloop.options import preset_path
    from spikeloop.pipeline import read_config
    from spikeloop.train.agents import config_from_dict, get_agent

    (a, delta), (b, rate) = (read_config(preset_path(n)) for n in ("reinforce-xylo-delta", "reinforce-xylo"))
    assert a == b == "reinforce" and delta == rate | {"encoder": "delta"}
    assert config_from_dict(get_agent(a).config, delta).validate().encoder == "delta"
