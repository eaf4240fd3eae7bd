"""Shared fixtures: small random networks, the trained CartPole policy, leak checks."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch

import spikeloop.runtime  # noqa: F401  (installs the Lava shim before anything imports lava)
from spikeloop.export.to_nir import export_policy
from spikeloop.runtime.compiler import plan_from_nir
from spikeloop.core.coding import InputEncoding
from spikeloop.train.graph import Neuron, QuantLinear
from spikeloop.train.networks import spiking_mlp
from spikeloop.train.policy import Policy

DATA = Path(__file__).parent / "data"


def deploy_in_lava(tmp_path: Path, policy: Policy, env_id: str, max_steps: int = 40, seed: int = 4242):
    """Save and reload ``policy``, export it to a NIR file, compile it and run one closed-loop episode
    (at most ``max_steps`` decisions) on Lava (fused mapping) in float and in fixed point, each beside the
    emulator as its twin: the runner raises unless both give the same raw output at every decision.

    Returns ``(reloaded policy, plan, {precision: result})``.
    """
    from spikeloop.core.nir_io import read_graph, write_graph
    from spikeloop.runtime.backends import make_backend
    from spikeloop.runtime.runner import run_closed_loop
    from spikeloop.train.checkpoint import load_policy, save_policy
    from spikeloop.train.policy import TorchPolicy

    save_policy(tmp_path / "policy.safetensors", policy)
    policy, _ = load_policy(tmp_path / "policy.safetensors")
    write_graph(tmp_path / "policy.nir", export_policy(policy, 1e-3))
    plan = plan_from_nir(read_graph(tmp_path / "policy.nir"))
    out = {}
    for precision in ("float", "fixed"):
        out[precision] = run_closed_loop(
            make_backend("lava-fused", plan, precision), env_id, episodes=1, seed=seed,
            reference=TorchPolicy(policy), twin=make_backend("emulator", plan, precision), progress=False,
            max_steps=max_steps)
    return policy, plan, out


def random_policy(sizes=(4, 32, 32, 2), T=8, seed=0, weight_std=0.8, bias_std=0.1, du=1.0, dv=0.125,
                  fake_quant=True, dtype=torch.float64):
    """A random MLP policy that spikes a fair amount, and its input encoding."""
    torch.manual_seed(seed)
    net = spiking_mlp(list(sizes), du=du, dv=dv, fake_quant=fake_quant).to(dtype)
    net.spec["args"]["dtype"] = str(dtype).removeprefix("torch.")
    with torch.no_grad():
        for m in net.nodes.values():
            if isinstance(m, QuantLinear):
                m.weight.normal_(0, weight_std)
            elif isinstance(m, Neuron):
                m.bias.normal_(0, bias_std)
    enc = InputEncoding(mean=(0.0,) * sizes[0], std=(1.0,) * sizes[0])
    return Policy(net, T, enc), enc


def live_children() -> set[int]:
    """Live child processes of this test process, except Python's resource tracker."""
    from spikeloop.runtime.lava_runtime import is_resource_tracker

    out = set()
    for c in psutil.Process().children(recursive=True):
        try:
            if c.status() != psutil.STATUS_ZOMBIE and not is_resource_tracker(c.pid):
                out.add(c.pid)
        except psutil.NoSuchProcess:
            pass
    return out


def random_plan(**kw):
    model, enc = random_policy(**kw)
    return plan_from_nir(export_policy(model, 1e-3)), model, enc


@pytest.fixture
def small_plan():
    plan, _, _ = random_plan()
    return plan


@pytest.fixture
def trained_run(tmp_path) -> Path:
    """A run folder holding the committed trained CartPole policy (checkpoint + NIR)."""
    for name in ("policy.safetensors", "policy.nir"):
        shutil.copy(DATA / name, tmp_path / name)
    return tmp_path


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def signal_state_is_restored():
    """Every test leaves spikeloop's signal handling as it found it (no handler, no pending signal):
    a leak would make a later run swallow its Ctrl-C."""
    import signal

    from spikeloop.core import signals

    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    yield
    state = {"depth": signals._depth, "shields": signals._shields, "raised": signals._raised, "held": signals._held}
    assert state == {"depth": 0, "shields": 0, "raised": None, "held": None}, state
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
