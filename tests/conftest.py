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
from spikeloop.train.layers import NeuronConfig, SpikingMLP

DATA = Path(__file__).parent / "data"


def random_policy(sizes=(4, 32, 32, 2), T=8, seed=0, weight_std=0.8, bias_std=0.1, du=1.0, dv=0.125,
                  fake_quant=True, dtype=torch.float64):
    """A random SpikingMLP that spikes a fair amount, and an input encoding for it."""
    torch.manual_seed(seed)
    model = SpikingMLP(list(sizes), T, NeuronConfig(du=du, dv=dv), NeuronConfig(du=du, dv=dv, vth=None),
                       fake_quant=fake_quant).to(dtype)
    with torch.no_grad():
        for layer in model.layers:
            layer.linear.weight.normal_(0, weight_std)
            layer.bias.normal_(0, bias_std)
    enc = InputEncoding(mean=(0.0,) * sizes[0], std=(1.0,) * sizes[0])
    return model, enc


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
    return plan_from_nir(export_policy(model, 1e-3, enc)), model, enc


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
