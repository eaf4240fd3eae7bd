"""Binary input for Loihi 1: a spike encoder of one event per channel and step in front of the network, plain
spikes into Lava (no graded payload), and the encoder priced as host work."""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import deploy_in_lava

from spikeloop.cli import main
from spikeloop.core.coding import SpikeEncoding
from spikeloop.train.checkpoint import load_policy

AGENT_FLAGS = {
    "reinforce": ["--max-episodes", "6", "--hidden", "16", "--T", "4", "--eval-every", "3", "--eval-episodes", "2"],
    "dqn": ["--total-steps", "400", "--learning-starts", "100", "--hidden", "16", "16", "--T", "4", "--eval-every",
            "200", "--eval-episodes", "2"],
}


@pytest.mark.parametrize("agent", sorted(AGENT_FLAGS))
def test_a_population_coded_policy_runs_on_binary_spikes_and_prices_its_encoder(agent, tmp_path):
    flags = [*AGENT_FLAGS[agent], "--encoder", "population", "--encoder-neurons", "5"]
    assert main(["train", "--agent", agent, "--out", str(tmp_path / "run"), "--quiet", *flags]) == 0
    policy, _ = load_policy(tmp_path / "run" / "policy.safetensors")
    enc = policy.encoding
    assert isinstance(enc, SpikeEncoding) and enc.binary and enc.n_inputs == 4 * 5
    x = enc.encode(np.random.default_rng(0).normal(size=(50, 4)))
    assert set(np.unique(x)) <= {0.0, 1.0}  # every input is a spike or nothing
    _, plan, out = deploy_in_lava(tmp_path, policy, "CartPole-v1")
    assert not plan.input_graded and not plan.is_graded(plan.connections[0])
    assert out["fixed"].agreement >= 0.8 and out["fixed"].counts.graded == {c.name: False for c in plan.connections}
    # the run's report prices the encoder on the host, and nothing about the input is left unpriced
    assert main(["export", str(tmp_path / "run")]) == 0
    assert main(["run", str(tmp_path / "run"), "--backend", "emulator", "--precision", "fixed", "--episodes", "1",
                 "--quiet", "--profile", "loihi"]) == 0
    loihi = json.loads((tmp_path / "run" / "report.json").read_text())["energy"]["targets"]["loihi"]
    terms = {t["name"]: t for t in loihi["terms"]}
    assert terms["input spike encoder (host)"]["status"] == "priced" and terms["input spike encoder (host)"][
        "where"] == "host"
    assert terms["input spike encoder (host)"]["count"] == enc.host_ops()
    assert "input spike encoder" not in terms and "synaptic ops (graded input)" not in loihi["unpriced"]
    assert terms["synaptic ops (graded input)"]["count"] == 0


def test_dqn_refuses_a_spike_encoder_in_front_of_an_image_or_a_dense_network():
    """An image takes the events code (one channel per pixel, the layout kept), not rate or population."""
    from spikeloop.core.errors import ConfigError
    from spikeloop.train.agents.dqn import DQNConfig

    with pytest.raises(ConfigError, match="'encoder'.*rate code feeds a spiking MLP.*encoder events"):
        DQNConfig(env_id="MinAtar/Breakout-v1", conv_channels=[4], encoder="rate").validate()
    with pytest.raises(ConfigError, match="'encoder'.*spiking network"):
        DQNConfig(encoder="rate", network="dense").validate()
    with pytest.raises(ConfigError, match="'encoder'.*must be one of graded, rate, population, events"):
        DQNConfig(encoder="delta").validate()
    with pytest.raises(ConfigError, match="'speck'.*encoder events"):
        DQNConfig(env_id="MinAtar/Breakout-v1", conv_channels=[4], readout="spike-count", speck=True).validate()
