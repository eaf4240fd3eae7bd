"""Lava starts OS processes and shared memory: nothing may outlive a run, on any path."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import psutil
import pytest

from conftest import DATA, live_children
from spikeloop.core.errors import LavaRuntimeError
from spikeloop.runtime.lava_runtime import LavaNetwork, _shm_segments
from spikeloop.runtime.runner import HostCodec



@pytest.fixture
def leak_check():
    shm, kids = _shm_segments(), live_children()
    yield
    assert live_children() == kids, "a Lava process outlived its runtime"
    assert _shm_segments() == shm, "a /dev/shm segment outlived its runtime"


@pytest.mark.parametrize("mapping", ["fused", "per-node"])
def test_normal_run_leaves_nothing(small_plan, leak_check, mapping):
    before = live_children()
    with LavaNetwork(small_plan, "fixed", mapping) as net:
        assert live_children() - before, "Lava started no processes: the check would be vacuous"
        assert _shm_segments(), "Lava created no shared memory: the check would be vacuous"
        codec = HostCodec(small_plan, "fixed", net.fixed)
        for _ in range(3):
            net.decide(codec.encode(np.ones(small_plan.input_size)))


def test_exception_in_the_loop_leaves_nothing(small_plan, leak_check):
    with pytest.raises(RuntimeError, match="user code failed"):
        with LavaNetwork(small_plan, "float", "fused") as net:
            net.decide(np.ones(small_plan.input_size))
            raise RuntimeError("user code failed")


def test_failure_inside_lava_leaves_nothing(small_plan, leak_check):
    """A host input of the wrong shape fails inside Lava's channel; the runtime is still freed."""
    with pytest.raises(Exception):
        with LavaNetwork(small_plan, "float", "per-node") as net:
            net.decide(np.ones(small_plan.input_size + 3))


def test_decide_outside_context_is_an_error(small_plan):
    net = LavaNetwork(small_plan, "float", "fused")
    with pytest.raises(LavaRuntimeError, match="not running"):
        net.decide(np.ones(small_plan.input_size))


@pytest.mark.parametrize("mapping", ["per-node", "fused"])
def test_ctrl_c_leaves_nothing(tmp_path, mapping):
    """SIGINT to the whole process group (a terminal's Ctrl-C) mid-run."""
    marker = f"spikeloop-ctrlc-{uuid.uuid4().hex}"
    shm_before = _shm_segments()
    worker = Path(__file__).parent / "lava_worker.py"
    log = tmp_path / "worker.log"  # a file, not a pipe: dying processes' tracebacks cannot block on it
    with open(log, "w") as sink:
        proc = subprocess.Popen([sys.executable, str(worker), marker, str(DATA / "policy.nir"), mapping],
                                stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and "READY" not in log.read_text() and proc.poll() is None:
            time.sleep(0.1)
        assert "READY" in log.read_text(), f"worker did not start: {log.read_text()[-2000:]}"
        group = [p for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])]
        assert len(group) > 1, "the worker started no Lava processes: the check would be vacuous"
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:  # the test has failed; do not leave a killed worker's segments behind
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            for name in _shm_segments() - shm_before:
                (Path("/dev/shm") / name).unlink(missing_ok=True)
    time.sleep(0.5)
    left = [p.pid for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])]
    assert not left, f"processes left after Ctrl-C: {left}"
    assert proc.returncode == 130, log.read_text()[-3000:]
    assert _shm_segments() - shm_before == set(), "shared memory left after Ctrl-C"
