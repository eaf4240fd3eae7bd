"""Lava starts OS processes and shared memory: nothing may outlive a run, on any path."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from multiprocessing import shared_memory
from pathlib import Path

import numpy as np
import psutil
import pytest

from conftest import DATA, live_children
from spikeloop.core.errors import LavaRuntimeError
from spikeloop.runtime.backends import LAVA_MAPPINGS, make_backend
from spikeloop.runtime.lava_runtime import _shm_segments


def lava_backend(plan, precision, mapping):
    """The Lava backend of ``mapping`` ('fused' or 'per-node'), built, not started."""
    return make_backend(LAVA_MAPPINGS[mapping], plan, precision)


@pytest.fixture
def leak_check():
    shm, kids = _shm_segments(), live_children()
    yield
    assert live_children() == kids, "a Lava process outlived its runtime"
    assert _shm_segments() == shm, "a /dev/shm segment outlived its runtime"


@pytest.mark.parametrize("mapping", ["fused", "per-node"])
def test_normal_run_leaves_nothing(small_plan, leak_check, mapping):
    before = live_children()
    with lava_backend(small_plan, "fixed", mapping) as net:
        assert live_children() - before, "Lava started no processes: the check would be vacuous"
        assert _shm_segments(), "Lava created no shared memory: the check would be vacuous"
        for _ in range(3):
            net.decide(np.ones(small_plan.input_size))


def test_exception_in_the_loop_leaves_nothing(small_plan, leak_check):
    with pytest.raises(RuntimeError, match="user code failed"):
        with lava_backend(small_plan, "float", "fused") as net:
            net.decide(np.ones(small_plan.input_size))
            raise RuntimeError("user code failed")


def test_failure_inside_lava_leaves_nothing(small_plan, leak_check):
    """A host input of the wrong shape fails inside Lava's channel; the runtime is still freed."""
    with pytest.raises(Exception):
        with lava_backend(small_plan, "float", "per-node") as net:
            net.decide_raw(np.ones(small_plan.input_size + 3))


def test_decide_outside_context_is_an_error(small_plan):
    net = lava_backend(small_plan, "float", "fused")
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


# ------------------------------------------------------------------ ownership: only what the runtime created
FOREIGN_SEGMENT = """\
import sys
from multiprocessing import shared_memory
seg = shared_memory.SharedMemory(create=True, size=4096)
print(seg.name, flush=True)
sys.stdin.read()  # held until the test closes stdin: another run on the same machine
seg.close()
seg.unlink()
"""


def _lava_segments(net) -> set[str]:
    """The segments Lava's own shared-memory manager created for this runtime (Lava's account)."""
    smm = net._root.runtime._messaging_infrastructure.smm
    return {h.name for h in smm._shared_memory_handles}


def _lava_actors(net) -> set[int]:
    """The OS processes Lava started for this runtime's process models (Lava's account)."""
    return {a.pid for a in net._root.runtime._messaging_infrastructure.actors}


@pytest.mark.parametrize("mapping", ["fused", "per-node"])
def test_forced_cleanup_frees_only_what_the_runtime_created(small_plan, mapping):
    """A failure inside the ``with`` forces the cleanup; segments and processes that other
    code created meanwhile (another process's segment, this process's own, a child process
    of this process) survive it, and everything of the runtime's own is still gone."""
    foreign = mine = None
    try:
        with pytest.raises(RuntimeError, match="user code failed"):
            with lava_backend(small_plan, "float", mapping) as net:
                net.decide(np.ones(small_plan.input_size))
                own, actors = _lava_segments(net), _lava_actors(net)
                assert own and own <= _shm_segments(), "Lava created no segments: the check would be vacuous"
                assert actors and actors <= live_children()
                foreign = subprocess.Popen([sys.executable, "-c", FOREIGN_SEGMENT], stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE, text=True)
                foreign_name = foreign.stdout.readline().strip()
                mine = shared_memory.SharedMemory(create=True, size=4096)
                assert {foreign_name, mine.name} <= _shm_segments()
                raise RuntimeError("user code failed")
        left = _shm_segments()
        assert foreign_name in left, "the cleanup destroyed another process's shared memory"
        assert mine.name in left, "the cleanup destroyed shared memory this process created itself"
        assert foreign.poll() is None, "the cleanup killed a child process the runtime did not start"
        assert not own & left, f"the runtime's own segments outlived it: {sorted(own & left)}"
        assert not actors & live_children(), "the runtime's own processes outlived it"
    finally:
        if foreign is not None:
            foreign.stdin.close()
            foreign.wait(timeout=30)
        if mine is not None:
            mine.close()
            mine.unlink()


def test_two_runtimes_on_one_machine_leave_each_other_alone(small_plan):
    """Stopping one runtime by force (the Ctrl-C path: Lava's stop skipped) while a second,
    started after it, runs: the second keeps its segments and processes and still decides."""
    with lava_backend(small_plan, "fixed", "fused") as first:
        first.decide(np.ones(small_plan.input_size))
        with lava_backend(small_plan, "fixed", "per-node") as second:
            q = second.decide(np.ones(small_plan.input_size))
            own, actors = _lava_segments(second), _lava_actors(second)
            first_own = _lava_segments(first)
            first.stop(timeout=0.0)
            assert not first_own & _shm_segments(), "the stopped runtime's segments outlived it"
            assert own <= _shm_segments(), "stopping one runtime destroyed another's shared memory"
            assert actors <= live_children(), "stopping one runtime killed another's processes"
            np.testing.assert_array_equal(second.decide(np.ones(small_plan.input_size)), q)


def _create_and_close_segment(conn):
    seg = shared_memory.SharedMemory(create=True, size=4096)
    conn.send(seg.name)
    seg.close()  # closed, not unlinked: only the ledger still knows it is the runtime's


def test_a_segment_a_runtime_child_created_and_closed_is_still_freed(small_plan):
    """Ownership is recorded as segments are created, also inside the runtime's forked
    processes, so a segment no process holds any more is still attributed and freed."""
    import multiprocessing

    from spikeloop.runtime.lava_runtime import _Ledger

    net = lava_backend(small_plan, "float", "fused")
    net._ledger = _Ledger()
    mine = shared_memory.SharedMemory(create=True, size=4096)  # the host's, not the runtime's
    try:
        parent, child = multiprocessing.Pipe()
        with net._ledger:  # as while the runtime builds: what is forked now is the runtime's
            proc = multiprocessing.get_context("fork").Process(target=_create_and_close_segment, args=(child,))
            proc.start()
        name = parent.recv()
        proc.join(30)
        assert name in _shm_segments() and str(proc.pid) in net._ledger.entries("pid")
        net._force_cleanup()
        assert name not in _shm_segments(), "a segment the runtime's child created outlived the cleanup"
        assert mine.name in _shm_segments()
    finally:
        mine.close()
        mine.unlink()


# ------------------------------------------------------------------ signals in-process
def _handlers():
    return {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_take_the_ctrl_c_path_while_a_runtime_runs(small_plan, leak_check, sig):
    """While a Lava runtime is started, SIGTERM/SIGHUP raise Interrupted (a KeyboardInterrupt)
    in the main thread, the runtime is freed by the same exit, and the handlers from before
    are back afterwards; its workers do not run the parent's handler (they leave it alone)."""
    from spikeloop.core.signals import Interrupted

    before = _handlers()
    if before[sig] is signal.SIG_IGN:  # e.g. under nohup: spikeloop leaves an ignored signal ignored, by design
        pytest.skip(f"{signal.Signals(sig).name} is ignored by this test process")
    with pytest.raises(KeyboardInterrupt) as info:
        with lava_backend(small_plan, "fixed", "fused") as net:
            net.decide(np.ones(small_plan.input_size))
            workers = [psutil.Process(p) for p in _lava_actors(net)]
            assert signal.getsignal(sig) is not before[sig], "no handler while the runtime runs"
            os.kill(os.getpid(), sig)
            for _ in range(1000):  # the handler runs between bytecodes: within a few of them
                time.sleep(0.001)
    assert isinstance(info.value, Interrupted) and info.value.signum == sig
    assert _handlers() == before, "the signal handlers from before were not restored"
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)


def test_a_signal_during_the_stop_is_raised_after_it(small_plan, leak_check):
    """A SIGTERM that arrives while the runtime is being stopped does not cut the cleanup
    short: it is raised once everything is freed."""
    from spikeloop.core.signals import Interrupted

    before = _handlers()
    net = lava_backend(small_plan, "float", "fused").start()
    net.decide(np.ones(small_plan.input_size))
    assert signal.getsignal(signal.SIGTERM) is not before[signal.SIGTERM], "no handler while the runtime runs"
    cleanup = net._force_cleanup

    def interrupted_cleanup():
        os.kill(os.getpid(), signal.SIGTERM)
        # Python runs the handler at the next bytecode: it has held the signal before the cleanup starts
        cleanup()

    net._force_cleanup = interrupted_cleanup
    with pytest.raises(Interrupted):
        net.close()
    assert net._ledger is None, "the cleanup did not finish"
    assert _handlers() == before
