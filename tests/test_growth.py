"""Growing and pruning hidden layers: the function is kept, the rules fire where they say, and the grown
network trains, exports and runs in Lava."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from conftest import deploy_in_lava

from spikeloop.train.growth import GrowthRules, growth_step, hidden_names, resize_hidden
from spikeloop.train.networks import spiking_mlp


def _net(seed=0, sizes=(4, 40, 24, 2)):
    torch.manual_seed(seed)
    net = spiking_mlp(list(sizes), fake_quant=False)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.normal_(0, 1.0)
    return net


def _out(net, x):
    with torch.no_grad():
        return net.window(x, 8)


def test_growing_keeps_the_function_and_pruning_silent_neurons_too():
    net, gen = _net(), torch.Generator().manual_seed(0)
    x = torch.randn(32, 4)
    grown = resize_hidden(net, 0, np.arange(40), 32, gen)
    assert grown.nodes["fc0"].weight.shape == (72, 4) and grown.nodes["fc1"].weight.shape == (24, 72)
    assert grown.spec["args"]["sizes"] == [4, 72, 24, 2] and net.spec["args"]["sizes"] == [4, 40, 24, 2]
    assert torch.equal(_out(grown, x), _out(net, x))  # new neurons have no outgoing weight yet
    assert grown.nodes["fc0"].weight[40:].abs().sum() > 0  # ...but Kaiming-initialised inputs
    with torch.no_grad():
        net.nodes["fc0"].weight[10:25] = 0.0  # neurons 10..24 get no input: they never fire
    _, trace = net(x.expand(8, *x.shape), record=True)
    assert trace["lif0.spikes"][..., 10:25].sum() == 0
    keep = np.r_[0:10, 25:40]
    pruned = resize_hidden(net, 0, keep, 0, gen)
    assert pruned.nodes["lif0"].shape == (25,)
    assert torch.equal(_out(pruned, x), _out(net, x))


def test_the_rules_grow_quiet_layers_and_prune_silent_neurons():
    rules = GrowthRules(grow_below=0.05, grow_by=32, max_neurons=80, prune_below=0.005, prune_share=0.3,
                        min_neurons=32)
    net, gen = _net(), torch.Generator().manual_seed(1)
    assert [p for _, p, _ in hidden_names(net)] == ["lif0", "lif1"]
    quiet = {"lif0": np.full(40, 0.01), "lif1": np.full(24, 0.2)}  # lif0 too quiet on average, none silent
    net2, events = growth_step(net, quiet, rules, gen)
    assert events == [{"layer": "lif0", "event": "grow", "before": 40, "after": 72, "rate": 0.01}]
    net3, events = growth_step(net2, {"lif0": np.full(72, 0.01), "lif1": np.full(24, 0.2)}, rules, gen)
    assert events[0]["after"] == 80  # capped at max_neurons
    rates = np.where(np.arange(80) % 2 == 0, 0.0, 0.3)  # half of them silent: more than 30 %
    net4, events = growth_step(net3, {"lif0": rates, "lif1": np.full(24, 0.2)}, rules, gen)
    assert [{**e, "rate": round(e["rate"], 12)} for e in events] == [
        {"layer": "lif0", "event": "prune", "before": 80, "after": 40, "rate": 0.15}]
    rates = np.where(np.arange(40) < 30, 0.0, 0.3)  # 30 silent of 40: keeps the 32 most active
    net5, events = growth_step(net4, {"lif0": rates, "lif1": np.full(24, 0.2)}, rules, gen)
    assert events[0]["after"] == 32 and net5.nodes["lif0"].shape == (32,)
    _, events = growth_step(net5, {"lif0": np.full(32, 0.2), "lif1": np.full(24, 0.2)}, rules, gen)
    assert events == []


def test_reinforce_grows_logs_and_the_grown_network_runs_in_lava(tmp_path):
    from spikeloop.cli import main
    from spikeloop.train.checkpoint import load_policy

    flags = ["--max-episodes", "8", "--hidden", "16", "--T", "4", "--eval-every", "4", "--eval-episodes", "2",
             "--grow-every", "2", "--grow-below", "1.0", "--grow-by", "8", "--max-hidden", "40", "--min-hidden", "8"]
    assert main(["train", "--agent", "reinforce", "--out", str(tmp_path / "run"), "--quiet", *flags]) == 0
    rows = list(csv.DictReader((tmp_path / "run" / "training.csv").open()))
    growth = [r["growth"] for r in rows if r.get("growth")]
    assert growth == ["grow lif0 16->24", "grow lif0 24->32", "grow lif0 32->40"]  # every check: rate < 1
    assert [int(r["neurons"]) for r in rows] == [16, 16, 24, 24, 32, 32, 40, 40]
    policy, _ = load_policy(tmp_path / "run" / "policy.safetensors")
    assert policy.network.nodes["lif0"].shape[0] in (16, 24, 32, 40)  # the best network seen, whatever its size
    (tmp_path / "deploy").mkdir()
    _, plan, out = deploy_in_lava(tmp_path / "deploy", policy, "CartPole-v1")
    assert out["fixed"].agreement >= 0.8 and plan.population("lif0").size == policy.network.nodes["lif0"].shape[0]


@pytest.mark.parametrize("name,agent", [("reinforce-growing", "reinforce"), ("ppo-cartpole", "ppo"),
                                        ("ppo-foraging", "ppo")])
def test_the_presets_read_back_as_valid_configs(name, agent):
    from spikeloop.options import preset_path
    from spikeloop.pipeline import read_config
    from spikeloop.train.agents import config_from_dict, get_agent

    got, table = read_config(preset_path(name))
    cfg = config_from_dict(get_agent(agent).config, table)
    assert got == agent and cfg.validate() is cfg
    if agent == "reinforce":
        assert (cfg.hidden, cfg.grow_every, cfg.max_hidden, cfg.min_hidden) == ([32], 10, 128, 32)
    else:
        assert cfg.total_steps == 100_000


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_growing_run_serves_prometheus_metrics_while_it_trains_and_stops_serving_after(tmp_path):
    import threading
    import urllib.request

    from spikeloop.train.agents.reinforce import ReinforceConfig, train_reinforce

    port, scrapes, done = _free_port(), [], threading.Event()

    def scrape():
        while not done.is_set():
            try:
                scrapes.append(urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1).read().decode())
            except OSError:
                pass
            done.wait(0.05)

    cfg = ReinforceConfig(hidden=[16], T=4, max_episodes=12, eval_every=12, eval_episodes=1, grow_every=2,
                          grow_below=1.0, grow_by=8, min_hidden=8, max_hidden=64, metrics_port=port)
    thread = threading.Thread(target=scrape)
    thread.start()
    try:
        res = train_reinforce(cfg, progress=False)
    finally:
        done.set()
        thread.join()
    grown = sum(r.get("grown", 0) for r in res.log)

    def value(text: str, name: str) -> float:
        line = next(l for l in text.splitlines() if l.startswith(f'spikeloop_{name}{{agent="reinforce"}}'))
        return float(line.split()[-1])

    assert scrapes and grown > 0
    last = scrapes[-1]  # the endpoint as it stood after the last episode it served
    episodes = value(last, "episodes_total")
    assert 1 <= episodes <= 12 and 0 <= value(last, "sparsity") <= 1 and value(last, "firing_rate") >= 0
    assert value(last, "hidden_neurons") == 16 + value(last, "neurons_grown_total") - value(last, "neurons_pruned_total")
    with pytest.raises(OSError):  # the server is gone with the run
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1)


def test_a_metrics_port_in_use_is_refused_before_training():
    import socket

    from spikeloop.core.errors import ConfigError
    from spikeloop.train.agents.reinforce import ReinforceConfig, train_reinforce

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"--metrics-port {port}: cannot listen on 127.0.0.1:{port}"):
            train_reinforce(ReinforceConfig(hidden=[8], T=2, max_episodes=1, metrics_port=port), progress=False)
