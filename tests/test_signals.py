"""A signal stops a Lava run cleanly: SIGINT to the process group (a terminal's Ctrl-C),
SIGTERM, SIGHUP and a double Ctrl-C, on `spikeloop run` and `spikeloop simulate`.

Each case starts the command in its own session, waits until Lava is stepping, sends the
signal and checks: the exit status is 128 + the signal, stderr is the one line
``spikeloop <command>: interrupted`` (no child's traceback), no process of the run is
left, no shared-memory segment of the run is left, and nothing was half-written.

Where the machine allows it, the run lives in a private PID and mount namespace with its
own /dev/shm (``unshare``); a small init there reports what is left in them once the
command has exited, so anything left is the run's by construction and other programs on
the machine cannot disturb the check. Everywhere, the checks are also made by ownership:
the processes of the run's tree and the segments they had mapped or open, recorded while
it ran. ``SPIKELOOP_TEST_NO_NAMESPACES=1`` forces the ownership checks alone.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from conftest import DATA

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
UNSHARE = ["unshare", "--user", "--map-root-user", "--pid", "--fork", "--mount-proc", "--mount"]
SHM = Path("/dev/shm")


def spikeloop_command(*args: str) -> list[str]:
    """The installed ``spikeloop`` console script (what a user runs), or ``python -m spikeloop``."""
    script = Path(sys.executable).with_name("spikeloop")
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "spikeloop", *args]


def quiet_env() -> dict:
    # One torch thread per run: two cores are shared with other runs and tests.
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _own_session() -> None:
    """preexec: a session and process group of its own, signals as in a terminal.

    A shell starts background jobs with SIGINT ignored, and the test runner may be one: the
    command gets the dispositions of a program started from a terminal.
    """
    os.setsid()
    for s in SIGNALS:
        signal.signal(s, signal.SIG_DFL)


@functools.cache
def private_namespaces() -> bool:
    """Whether ``unshare`` gives this user a PID namespace and a private /dev/shm (checked once)."""
    if os.environ.get("SPIKELOOP_TEST_NO_NAMESPACES") or not shutil.which("unshare"):
        return False
    try:
        probe = subprocess.run(UNSHARE + ["sh", "-c", 'mount -t tmpfs tmpfs /dev/shm && [ "$$" = 1 ] '
                                                      '&& [ -z "$(ls -A /dev/shm)" ]'],
                               capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


# PID 1 of the private namespace: mounts a fresh /dev/shm, runs the command as its child in
# a process group of its own, and once the command has exited reports what is left in the
# namespace (processes, after a grace period for them to go) and in its /dev/shm.
INIT = r"""
import json, os, signal, subprocess, sys, time

report, grace, cmd = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=1777", "tmpfs", "/dev/shm"], check=True)
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, signal.SIG_IGN)


def setup():
    os.setpgid(0, 0)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_DFL)


status = subprocess.Popen(cmd, preexec_fn=setup).wait()


def others():
    left = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            if state == "Z":  # an orphan of the run, now ours: reap it
                os.waitpid(int(d), os.WNOHANG)
                continue
            with open(f"/proc/{d}/cmdline", "rb") as f:
                left.append(f.read().replace(b"\0", b" ").decode(errors="replace").strip())
        except (OSError, ChildProcessError):
            pass
    return left


deadline = time.monotonic() + grace
left = others()
while left and time.monotonic() < deadline:
    time.sleep(0.05)
    left = others()
with open(report + ".tmp", "w") as f:
    json.dump({"status": status, "processes": left, "shm": sorted(os.listdir("/dev/shm"))}, f)
os.replace(report + ".tmp", report)
"""


class Run:
    """A spikeloop command in a session of its own (in private namespaces where possible).

    While it runs, :meth:`record` notes every process of its tree (pid and start time) and
    every /dev/shm segment those processes have mapped or open: what it owns.
    """

    def __init__(self, args: list[str], workdir: Path, private: bool | None = None, grace_s: float = 8.0):
        self.cmd = spikeloop_command(*args)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.private = private_namespaces() if private is None else private
        self.stdout, self.stderr = self.workdir / "stdout.txt", self.workdir / "stderr.txt"
        self.report_path = self.workdir / "namespace.json"
        self.grace_s = grace_s
        self.procs: dict[int, tuple[float, str]] = {}  # pid -> (create_time, cmdline)
        self.segments: set[str] = set()
        self.private_segments: set[str] = set()  # seen in the namespace's own /dev/shm
        self.proc: subprocess.Popen | None = None
        self._main: psutil.Process | None = None

    # ------------------------------------------------------------------ running
    def start(self) -> "Run":
        full = (UNSHARE + [sys.executable, "-c", INIT, str(self.report_path), str(self.grace_s), *self.cmd]
                if self.private else self.cmd)
        with open(self.stdout, "w") as out, open(self.stderr, "w") as err:  # files: dying writers never block
            self.proc = subprocess.Popen(full, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                         preexec_fn=_own_session, env=quiet_env())
        return self

    def main(self, timeout: float = 60) -> psutil.Process:
        """The spikeloop process itself (under the namespace's init, or the one started)."""
        if self._main is not None:
            return self._main
        if not self.private:
            self._main = psutil.Process(self.proc.pid)
            return self._main
        deadline, n = time.monotonic() + timeout, len(self.cmd)
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:  # unshare -> init (PID 1 there) -> the command
                for init in psutil.Process(self.proc.pid).children():
                    for p in init.children():
                        if p.cmdline()[-n:] == self.cmd:
                            self._main = p
                            return p
            except psutil.Error:
                pass
            time.sleep(0.02)
        raise AssertionError(f"the command did not start: {self.err()[-3000:]}")

    def workers(self) -> list[psutil.Process]:
        """The main process's forked children (Lava's actors and its memory manager)."""
        main = self.main()
        try:
            cmd = main.cmdline()
            return [c for c in main.children() if c.cmdline() == cmd]
        except psutil.Error:
            return []

    def record(self) -> None:
        """Note the processes of the run's tree and the segments they map or hold open."""
        try:
            main = self.main()
            tree = [main] + main.children(recursive=True)
        except psutil.Error:
            return
        for p in tree:
            try:
                self.procs.setdefault(p.pid, (p.create_time(), " ".join(p.cmdline())))
            except psutil.Error:
                continue
            self.segments |= _shm_names(p.pid)
        if self.private:
            try:
                self.private_segments |= set(os.listdir(f"/proc/{main.pid}/root/dev/shm"))
            except OSError:
                pass

    def wait_for_lava(self, min_workers: int, timeout: float = 120) -> None:
        """Poll (recording) until ``min_workers`` Lava processes exist and are stepping."""
        deadline, cpu0, workers = time.monotonic() + timeout, None, []
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the run ended before Lava ran (status {self.proc.returncode}): "
                                     f"{self.err()[-3000:]}")
            self.record()
            workers = self.workers()
            if len(workers) >= min_workers:
                cpu = sum(_cpu(w) for w in workers)
                if cpu0 is None:
                    cpu0 = cpu
                elif cpu - cpu0 > 0.3:  # the actors compute: decisions are flowing
                    return
            time.sleep(0.05)
        raise AssertionError(f"Lava did not start {min_workers} stepping processes in {timeout} s "
                             f"(workers: {len(workers)}, their CPU time: {cpu0} -> "
                             f"{sum(_cpu(w) for w in workers)} s): {self.err()[-3000:]}")

    def send(self, sig: int, group: bool = False) -> None:
        main = self.main()
        if group:
            pgid = os.getpgid(main.pid)
            assert pgid == main.pid and pgid != os.getpgrp(), "the run is not in a process group of its own"
            os.killpg(pgid, sig)
        else:
            os.kill(main.pid, sig)

    def finish(self, timeout: float = 90) -> int:
        """Wait for the command; its exit status (negative: killed by that signal)."""
        self.proc.wait(timeout=timeout)
        if self.private:
            return self.namespace()["status"]
        return self.proc.returncode

    def namespace(self) -> dict:
        """What the namespace's init found left (``status``, ``processes``, ``shm``)."""
        assert self.report_path.exists(), f"the namespace's init wrote no report: {self.err()[-3000:]}"
        return json.loads(self.report_path.read_text())

    def err(self) -> str:
        return self.stderr.read_text(errors="replace") if self.stderr.exists() else ""

    # ------------------------------------------------------------------ what is left
    def alive(self) -> list[str]:
        """Recorded processes that still run (the same process: pid and start time match)."""
        out = []
        for pid, (created, cmd) in self.procs.items():
            try:
                p = psutil.Process(pid)
                if p.create_time() == created and p.status() != psutil.STATUS_ZOMBIE:
                    out.append(f"{pid} {cmd[:120]}")
            except psutil.Error:
                pass
        return out

    def leftovers(self, timeout: float = 10) -> tuple[list[str], list[str]]:
        """(processes, segments) of the run still there, after ``timeout`` s for them to go."""
        deadline = time.monotonic() + timeout
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        procs = self.alive()
        segs = sorted(n for n in self.segments if (SHM / n).exists()) if not self.private else []
        if self.private:
            ns = self.namespace()
            procs += [f"(in the namespace) {c[:120]}" for c in ns["processes"]]
            segs += [f"(in the namespace) {n}" for n in ns["shm"]]
        return procs, segs

    def kill(self) -> None:
        """After a failed test: stop whatever of the run is left and free its segments."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                if self.private:  # the namespace's init: its death ends everything in the namespace
                    for p in psutil.Process(self.proc.pid).children():
                        p.kill()
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (psutil.Error, ProcessLookupError, PermissionError):
                pass
            self.proc.wait(timeout=30)
        for pid, (created, _) in self.procs.items():
            try:
                p = psutil.Process(pid)
                if p.create_time() == created:
                    p.kill()
            except psutil.Error:
                pass
        if not self.private:
            for name in self.segments:
                (SHM / name).unlink(missing_ok=True)


def _cpu(p: psutil.Process) -> float:
    try:
        t = p.cpu_times()
        return t.user + t.system
    except psutil.Error:
        return 0.0


def _shm_names(pid: int) -> set[str]:
    """Names of the /dev/shm files process ``pid`` maps or holds open."""
    names = set()
    try:
        with open(f"/proc/{pid}/maps") as f:
            for line in f:
                if " /dev/shm/" in line:
                    names.add(line.split(" /dev/shm/", 1)[1].split()[0])
    except OSError:
        pass
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("/dev/shm/"):
                names.add(target.removeprefix("/dev/shm/").split()[0])
    except OSError:
        pass
    return names


@pytest.fixture
def runs(workdir):
    """Start :class:`Run` s; whatever of them is left after the test is killed and freed
    (before ``workdir`` goes)."""
    started: list[Run] = []

    def start(*args, **kw) -> Run:
        run = Run(*args, **kw).start()
        started.append(run)
        return run

    yield start
    for run in started:
        run.kill()


@pytest.fixture
def workdir():
    """A private temporary folder. Not ``tmp_path``: another pytest session on the machine
    (sharing pytest's base folder and keeping only its last few) may delete that folder
    while the run still reads and writes in it."""
    with tempfile.TemporaryDirectory(prefix="spikeloop-signals-", ignore_cleanup_errors=True) as d:
        yield Path(d)


@pytest.fixture
def policy_only(workdir) -> Path:
    """The trained policy's graph alone: no checkpoint beside it, so no torch episodes first
    and Lava starts at once."""
    folder = workdir / "policy"
    folder.mkdir()
    shutil.copy(DATA / "policy.nir", folder / "policy.nir")
    return folder / "policy.nir"


# --------------------------------------------------------------------------- checks
WORKERS = {"fused": 3, "per-node": 10}
"""Lava's processes once a network runs: memory manager, runtime service, process models"""


def assert_stopped_cleanly(run: Run, status: int, expected: int, command: str) -> None:
    """Every promise at once, so that a failure lists all that are broken."""
    err = run.err()
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(run.procs) > 3 and (run.segments or run.private_segments), \
        "no Lava process or segment was seen: the leak checks would be vacuous"
    procs, segs = run.leftovers()
    broken = []
    if status != expected:
        broken.append(f"exit status {status}, expected {expected}")
    if "Traceback" in err:
        broken.append(f"{err.count('Traceback')} tracebacks reached the terminal")
    if not lines or not lines[-1].startswith(f"spikeloop {command}: interrupted"):
        broken.append(f"the last line on stderr is not 'spikeloop {command}: interrupted'")
    if len(lines) > 3:
        broken.append(f"{len(lines)} lines on stderr")
    if procs:
        broken.append(f"{len(procs)} processes of the run outlived it: {procs}")
    if segs:
        broken.append(f"{len(segs)} shared-memory segments of the run outlived it: {segs}")
    assert not broken, "\n".join(broken) + f"\n--- stderr (end):\n{err[-2000:]}"


def _run_args(policy: Path, out: Path, mapping: str) -> list[str]:
    return ["run", str(policy), "--episodes", "20", "--profile", "loihi", "--quiet", "--mapping", mapping,
            "--out", str(out)]


@pytest.mark.parametrize("sig, group, mapping", [
    (signal.SIGINT, True, "per-node"),  # a terminal's Ctrl-C: the whole foreground process group
    (signal.SIGTERM, False, "fused"),   # kill PID
    (signal.SIGHUP, False, "fused"),    # the terminal went away
], ids=["ctrl-c-to-the-group", "sigterm", "sighup"])
def test_a_signal_stops_run_cleanly(runs, workdir, policy_only, sig, group, mapping):
    out = workdir / "out"
    run = runs(_run_args(policy_only, out, mapping), workdir / "run")
    run.wait_for_lava(WORKERS[mapping])
    run.record()
    run.send(sig, group=group)
    status = run.finish()
    assert_stopped_cleanly(run, status, 128 + sig, "run")
    assert not (out / "report.json").exists() and not (out / "report.md").exists(), "a report was written"


@pytest.mark.parametrize("when", ["cleanup", "exit"])
def test_a_second_ctrl_c_changes_nothing(runs, workdir, policy_only, when):
    """The second Ctrl-C lands while the runtime is being stopped (its first process is
    gone), or once the run has said it was interrupted and the interpreter is shutting down."""
    out = workdir / "out"
    run = runs(_run_args(policy_only, out, "per-node"), workdir / "run")
    run.wait_for_lava(WORKERS["per-node"])
    run.record()
    workers = list(run.workers())

    def ready() -> bool:
        if when == "exit":
            return "interrupted" in run.err()
        def gone(w) -> bool:
            try:
                return not w.is_running() or w.status() == psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:  # it exited between the two questions
                return True
        return any(gone(w) for w in workers)

    run.send(signal.SIGINT, group=True)
    deadline, second = time.monotonic() + 20, False
    while time.monotonic() < deadline and run.proc.poll() is None:
        if ready():
            try:
                run.send(signal.SIGINT, group=True)
                second = True
            except (ProcessLookupError, psutil.Error):
                pass
            break
        time.sleep(0.002)
    assert second, f"the run ended before a second Ctrl-C could land ({when})"
    status = run.finish()
    assert_stopped_cleanly(run, status, 130, "run")
    assert not (out / "report.json").exists(), "a report was written"


def test_sigterm_stops_simulate_cleanly(runs, workdir):
    """`spikeloop simulate --backend lava-per-node`: a long open-loop recording, SIGTERM mid-run."""
    x = workdir / "x.npy"
    np.save(x, np.random.default_rng(0).normal(0, 1, (20_000, 4)))
    out = workdir / "out.npz"
    run = runs(["simulate", str(DATA / "policy.nir"), "--input", str(x), "--backend", "lava-per-node",
                "--out", str(out)], workdir / "run")
    run.wait_for_lava(WORKERS["per-node"])
    run.record()
    run.send(signal.SIGTERM)
    status = run.finish()
    assert_stopped_cleanly(run, status, 143, "simulate")
    assert not out.exists() and not list(workdir.glob(".out.npz.*")), "a partial output was written"
