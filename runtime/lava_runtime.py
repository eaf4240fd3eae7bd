"""Build a :class:`NetworkPlan` as Lava processes and run it, always stopping the runtime.

Two mappings, two backends, bit-exact with each other (tests hold them so):

- :class:`LavaPerNode` (``lava-per-node``): one Lava process per NIR node, as on
  hardware: Lava's own ``Dense`` and ``LIFReset`` models (with counters added),
  spikeloop's ``CubaNeuron``, and host input/output processes. The reference.
- :class:`LavaFused` (``lava-fused``): the whole network in one Lava process stepping
  the emulator's code; a few times faster because Lava synchronises one process per
  step instead of many.

Both share :class:`LavaBackend`, the lifecycle: build, start, stop on every path (normal
end, exception, Ctrl-C, SIGTERM, SIGHUP). Lava starts OS processes and shared-memory
segments; if its own ``stop`` fails or hangs, the backend terminates the processes and
unlinks the segments *this runtime created*, recorded as they are created
(:class:`_Ledger`), never "whatever appeared since it started": other runs on the same
machine keep theirs.

Signals (:mod:`spikeloop.core.signals`): while a runtime is started, SIGTERM and SIGHUP raise
in the main process as Ctrl-C does, so the same ``with`` exit stops it; a second signal
cannot cut its cleanup short. Lava's worker processes leave Ctrl-C and hangup to the
parent (a terminal sends them to the whole process group) and end silently on the
SIGTERM with which the parent stops them.
"""
from __future__ import annotations

import multiprocessing
import os
import tempfile
import threading
from multiprocessing import shared_memory
from pathlib import Path

import numpy as np
import psutil

from spikeloop.core import signals
from spikeloop.core.errors import ConfigError, LavaRuntimeError
from spikeloop.runtime import lava_compat
from spikeloop.runtime.backends import FIXED_PRECISION, WINDOW, PlanBackend, Recording
from spikeloop.runtime.counters import OpCounts
from spikeloop.runtime.fixed_point import FixedPlan
from spikeloop.runtime.plan import INPUT, STREAM_INTERVAL, NetworkPlan

lava_compat.install()

from lava.magma.core.run_conditions import RunSteps  # noqa: E402
from lava.magma.core.run_configs import Loihi2SimCfg  # noqa: E402
from lava.proc.monitor.process import Monitor  # noqa: E402

from spikeloop.runtime.lava_procs import procs as P  # noqa: E402

TAGS = {"float": P.FLOAT_TAG, "fixed": P.FIXED_TAG}
SHM = Path("/dev/shm")
STOP_TIMEOUT_S = 20.0


def _shm_segments() -> set[str]:
    """Names of the shared-memory segments of Python's ``SharedMemory`` now in /dev/shm."""
    try:
        return {p.name for p in SHM.iterdir() if p.name.startswith("psm_")}
    except OSError:
        return set()


def _children() -> set[int]:
    return {c.pid for c in psutil.Process().children(recursive=True)}


def is_resource_tracker(pid: int) -> bool:
    """Python's own shared-memory bookkeeping helper (one per interpreter, exits with it)."""
    try:
        return "resource_tracker" in " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return False


# --------------------------------------------------------------------------- ownership
class _Ledger:
    """The processes and shared-memory segments one Lava runtime created.

    Active in the thread that builds the runtime (only while it builds: a segment the
    host program creates later is not the runtime's), and in every process forked from
    it, which inherit the thread's state and stay the runtime's for life: a segment a
    Lava child creates and closes before cleanup is still recorded. The record is a file,
    appended with ``O_APPEND`` (one short write per entry), because children write to it.
    """

    _local = threading.local()

    def __init__(self):
        fd, self.path = tempfile.mkstemp(prefix="spikeloop-lava-", suffix=".owned")
        os.close(fd)

    @classmethod
    def active(cls) -> "_Ledger | None":
        return getattr(cls._local, "ledger", None)

    def __enter__(self) -> "_Ledger":
        self._outer = self.active()
        _Ledger._local.ledger = self
        return self

    def __exit__(self, *exc) -> None:
        _Ledger._local.ledger = self._outer

    def add(self, kind: str, value) -> None:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)  # no O_CREAT: a closed ledger stays closed
        except OSError:
            return
        try:
            os.write(fd, f"{kind} {value}\n".encode())
        finally:
            os.close(fd)

    def entries(self, kind: str) -> list[str]:
        try:
            lines = Path(self.path).read_text().splitlines()
        except OSError:
            return []
        return [line.split(" ", 1)[1] for line in lines if line.startswith(kind + " ")]

    def discard(self) -> None:
        try:
            os.unlink(self.path)
        except OSError:
            pass


def _record_fork() -> None:
    ledger = _Ledger.active()
    if ledger is not None:  # a process forked by a runtime's build (or by one of its processes)
        ledger.add("pid", os.getpid())
        signals.quiet_worker()  # the parent answers signals and stops its workers


_create_segment = shared_memory.SharedMemory.__init__


def _record_segment(self, *args, **kwargs):
    _create_segment(self, *args, **kwargs)
    ledger = _Ledger.active()
    if ledger is not None and kwargs.get("create", args[1] if len(args) > 1 else False):
        ledger.add("shm", self.name)


def _install_hooks() -> None:
    """Record forks and new segments into the active ledger (idempotent; inert without one).

    Lava creates every segment through ``multiprocessing.shared_memory.SharedMemory``
    (its channels' buffers, via a ``SharedMemoryManager``) and every process by forking.
    A forked process of the runtime is also made a quiet worker (:func:`signals.quiet_worker`).
    """
    if getattr(shared_memory.SharedMemory.__init__, "_spikeloop_ledger", False):
        return
    _record_segment._spikeloop_ledger = True
    shared_memory.SharedMemory.__init__ = _record_segment
    os.register_at_fork(after_in_child=_record_fork)


_install_hooks()


# --------------------------------------------------------------------------- lifecycle
class LavaBackend(PlanBackend):
    """A compiled Lava network for one plan and precision; the mappings subclass it.

    Use as a context manager (or :meth:`start`/:meth:`close`); :meth:`decide` runs one
    decision window. On every path out the runtime is stopped, and what it created is
    freed. From start to stop, SIGTERM and SIGHUP raise :class:`spikeloop.core.signals.Interrupted`
    (a ``KeyboardInterrupt``) in the main thread, and the stop itself is shielded from signals.
    """

    mapping = ""

    @property
    def lava_steps_per_decision(self) -> int:
        """Lava steps one decision takes: the decision period (one step per network step)."""
        return self.window.period

    def __init__(self, plan: NetworkPlan, precision: str = FIXED_PRECISION, fixed: FixedPlan | None = None,
                 windowed: bool = True, memory: str = WINDOW):
        super().__init__(plan, precision, fixed, windowed, memory)
        self.time_step = 0
        self._root = None
        self._ran = False
        self._ledger: _Ledger | None = None
        self._signals = False  # the token of signals.enter() while started
        self.stop_error: BaseException | None = None

    # ------------------------------------------------------------------ to implement
    def _build(self) -> None:
        """Create the Lava processes; set ``_root`` and the host pipe ports (or ``None``)."""
        raise NotImplementedError

    def _read_counts(self) -> OpCounts:
        """The counters accumulated inside the process models since the start."""
        raise NotImplementedError

    # ------------------------------------------------------------------ lifecycle
    def _open(self) -> None:
        self._ledger = _Ledger()
        self._signals = signals.enter()  # released by _stop, on every path
        self._send_port = self._recv_port = None
        self.time_step, self._ran = 0, False
        try:
            with self._ledger:
                self._build()
                self._root.create_runtime(run_cfg=Loihi2SimCfg(select_tag=TAGS[self.precision]))
        except Exception as e:
            self._stop(STOP_TIMEOUT_S)  # free what was built so far
            raise LavaRuntimeError(f"could not compile the network onto Lava: {type(e).__name__}: {e}") from e
        except BaseException:
            self._stop(0.0)
            raise
        if self._send_port is not None:
            self._tx = self._send_port.external_pipe_csp_send_port
            self._rx = self._recv_port.external_pipe_csp_recv_port

    def _shut(self, exc_type) -> None:
        # After a failure the runtime may be mid-step: give Lava's own stop only a moment; after
        # a signal (the main thread was interrupted anywhere, mid-step too) none at all.
        if exc_type is None:
            self._stop(STOP_TIMEOUT_S)
        else:
            self._stop(0.0 if issubclass(exc_type, KeyboardInterrupt) else 2.0)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop the runtime; if Lava's stop fails or hangs, kill its processes and segments."""
        if self._running:
            self._running = False
            self._stop(timeout)

    def _stop(self, timeout: float) -> None:
        """Lava's own stop (in a thread, bounded by ``timeout``), then :meth:`_force_cleanup`.

        A runtime that never ran a step is not stopped through Lava: its process models
        wait for a first command that never comes, and Lava's ``stop`` would hang. A signal
        that arrives meanwhile is raised once everything is freed (a second Ctrl-C during
        the cleanup after the first is dropped); then the signal handling started by
        :meth:`_open` ends.
        """
        try:
            with signals.shielded():
                self._stop_runtime(timeout)
        finally:
            token, self._signals = self._signals, False
            signals.leave(token)

    def _stop_runtime(self, timeout: float) -> None:
        self.stop_error = None
        runtime = getattr(self._root, "runtime", None) if self._root is not None else None
        if runtime is not None and self._ran and timeout > 0:
            done = threading.Event()

            def _stop():
                try:
                    self._root.stop()
                except BaseException as e:  # noqa: BLE001 - recorded; the cleanup below frees everything
                    self.stop_error = e
                finally:
                    done.set()

            threading.Thread(target=_stop, daemon=True).start()
            if not done.wait(timeout):
                self.stop_error = TimeoutError(f"Lava's runtime did not stop within {timeout:.0f} s")
        self._force_cleanup()
        if runtime is not None:
            # Lava's Runtime.__del__ and Process.__del__ call stop() again, which waits forever
            # for answers from processes that are gone: mark the runtime as stopped.
            runtime._is_started = runtime._is_running = False

    def _force_cleanup(self) -> None:
        """Terminate the processes this runtime created and unlink the segments it created.

        Ownership comes from the ledger: the processes forked by this runtime's build (and
        by them), the segments created there. A process that is no longer a descendant of
        this one is not ours any more (its pid may have been reused) and is left alone.
        """
        ledger = self._ledger
        if ledger is None:
            return
        owned = {int(p) for p in ledger.entries("pid")}
        alive = owned & _children()
        for proc in multiprocessing.active_children():  # Lava's actors: reap them properly
            if proc.pid in alive:
                proc.terminate()
                # Lava's SystemProcess.join takes no timeout; the base class's does.
                multiprocessing.Process.join(proc, 3)
                if proc.is_alive():
                    proc.kill()
                    multiprocessing.Process.join(proc, 3)
        for pid in owned & _children():
            if is_resource_tracker(pid):
                continue
            try:
                psutil.Process(pid).kill()
                psutil.Process(pid).wait(3)
            except psutil.Error:
                pass
        for name in set(ledger.entries("shm")) & _shm_segments():
            try:
                seg = shared_memory.SharedMemory(name=name)
                seg.close()
                seg.unlink()  # also tells Python's resource tracker it is gone
            except (OSError, ValueError):
                try:
                    os.unlink(SHM / name)
                except OSError:
                    pass
        ledger.discard()
        self._ledger = None

    # ------------------------------------------------------------------ running
    def _run_window(self, x: np.ndarray) -> np.ndarray:
        """Send ``x``, run one decision period, receive the output window ``(T, n)``."""
        if not self._running or self._send_port is None:
            raise LavaRuntimeError("the Lava network is not running (use it as a context manager)")
        batch = getattr(self, "batch", None)
        x = np.asarray(x, dtype=np.float64)
        if batch is not None:  # each copy's row ends with whether it counts
            active = np.ones(batch, bool) if self.active is None else np.asarray(self.active, bool)
            x = np.concatenate([x.reshape(batch, -1), active[:, None].astype(np.float64)], axis=1)
            self._copy_decisions += int(np.count_nonzero(active))
        self._tx.send(x.reshape(-1))
        self._ran = True
        self._root.run(condition=RunSteps(num_steps=self.lava_steps_per_decision, blocking=True))
        self.time_step += self.window.period
        out = np.asarray(self._rx.recv())
        return out.reshape(self.window.T, -1) if batch is None else out.reshape(self.window.T, batch, -1)

    def decide_raw(self, x: np.ndarray) -> np.ndarray:
        if not self._running:
            raise LavaRuntimeError("the Lava network is not running (use it as a context manager)")
        return super().decide_raw(x)

    def reset(self) -> None:
        """Zero the network state and the counters inside the process models.

        Decisions alone would not need it (every population starts its window from zero),
        but a population's steps before its window (the pipeline's tail of the previous
        decision) are counted: after a reset the counts are those of a fresh network.
        """
        if self._running and self._ran:  # before the first step everything is zero already
            self._reset_state()
        self.time_step = 0

    def _reset_state(self) -> None:
        """Set every state and counter Var of the running network to zero (between runs)."""
        raise NotImplementedError

    def counts(self) -> OpCounts:
        """Read the counters inside the process models (since :meth:`reset`)."""
        return self._read_counts()

    def _new_counts(self) -> OpCounts:
        return OpCounts(steps=self.time_step, decisions=self.time_step // self.plan.period,
                        graded={k.name: self.plan.is_graded(k) for k in self.plan.connections})


class LavaFused(LavaBackend):
    """The whole network in one Lava process stepping the emulator's code (the fast mapping)."""

    name = "lava-fused"
    mapping = "fused"
    clears_in_flight = True  # the emulator's code, stepped inside the process
    lava_steps_per_decision = 1
    """the process runs a whole decision window per Lava step (one synchronisation a decision)"""

    def __init__(self, plan: NetworkPlan, precision: str = FIXED_PRECISION, fixed: FixedPlan | None = None,
                 windowed: bool = True, batch: int | None = None, memory: str = WINDOW):
        from spikeloop.runtime.emulator import check_batch

        if not windowed:
            raise ConfigError("lava-fused runs closed-loop decision windows only; open-loop "
                              "recordings run on lava-per-node (Monitors on every population)")
        super().__init__(plan, precision, fixed, windowed, memory)
        self.batch = check_batch(batch, windowed, self.name)
        self.active: np.ndarray | None = None
        """with ``batch``: which copies count operations (default: all)"""
        self._copy_decisions = 0

    def _build(self) -> None:
        net = P.FusedNetwork(plan=self.plan, fixed=self.fixed, precision=self.precision, batch=self.batch,
                             memory=self.memory)
        self._send_port, self._recv_port = net.pipe_in, net.pipe_out
        self._fused = self._root = net

    def _reset_state(self) -> None:
        # The model resets its emulator (state, pipeline, counters) when the epoch changes.
        f = self._fused
        f.epoch.set(f.epoch.get() + 1)
        for var in (f.synops, f.update_count, f.active_count, f.spike_count):
            var.set(np.zeros(var.shape, np.int64))

    def _read_counts(self) -> OpCounts:
        c, f, pops = self._new_counts(), self._fused, self.plan.populations
        syn, upd, act, spk = (v.get().astype(np.int64) for v in
                              (f.synops, f.update_count, f.active_count, f.spike_count))
        c.synops = {k.name: int(s) for k, s in zip(self.plan.connections, syn)}
        c.updates = {p.name: int(u) for p, u in zip(pops, upd)}
        c.active = {p.name: int(a) for p, a in zip(pops, act)}
        c.spikes = {p.name: int(s) for p, s in zip(pops, spk) if p.spiking}
        if self.batch is not None:  # decisions and steps of the copies that counted, as the emulator's
            c.decisions, c.steps = self._copy_decisions, self._copy_decisions * self.plan.period
        return c

    def reset(self) -> None:
        super().reset()
        self._copy_decisions = 0


class LavaPerNode(LavaBackend):
    """One Lava process per NIR node: Lava's own models with counters (the reference mapping).

    ``sequence`` replaces the host input by a recorded one (one row per Lava step, run
    with :meth:`run`); ``probe_steps`` attaches Lava Monitors to every population's ``v``
    (and spikes) for that many steps (:meth:`probes`). :meth:`record` uses both.
    """

    name = "lava-per-node"
    mapping = "per-node"

    def __init__(self, plan: NetworkPlan, precision: str = FIXED_PRECISION, fixed: FixedPlan | None = None,
                 windowed: bool = True, probe_steps: int = 0, sequence: np.ndarray | None = None,
                 memory: str = WINDOW):
        super().__init__(plan, precision, fixed, windowed, memory)
        self.probe_steps = probe_steps
        self.sequence = None if sequence is None else np.asarray(sequence)

    def _neuron(self, p, interval: int, offset: int):
        if self.precision == FIXED_PRECISION:
            f = self.fixed.populations[p.name]
            neuron = dict(du=f.du_12bit, dv=f.dv_12bit, bias_mant=f.bias_mant, bias_exp=f.bias_exp)
            vth = f.vth_17bit
        else:
            neuron = dict(du=p.du, dv=p.dv, bias_mant=np.asarray(p.bias), bias_exp=0)
            vth = p.vth
        window = dict(reset_interval=interval, reset_offset=offset)
        if p.lava_lif:  # uniform decays (Lava's LIF holds one du and one dv)
            neuron["du"], neuron["dv"] = (np.asarray(neuron[k]).reshape(-1)[0].item() for k in ("du", "dv"))
            return P.CountingLIFReset(shape=(p.size,), vth=vth, name=p.name, **neuron, **window)
        return P.CubaNeuron(shape=(p.size,), vth=vth, reset=p.reset, name=p.name, **neuron, **window)

    def _build(self) -> None:
        plan, fixed, win = self.plan, self.fixed, self.plan.window
        interval = win.period if self.windowed and self.memory == WINDOW else STREAM_INTERVAL
        offsets = plan.reset_offsets(interval)
        if self.sequence is None:
            host_in = P.HostInput(shape=(plan.input_size,), window=win, name="host_in")
        else:
            dtype = np.int32 if self.precision == FIXED_PRECISION else np.float64
            host_in = P.SequenceInput(data=self.sequence.astype(dtype), name="sequence_in")
        self.procs = {p.name: self._neuron(p, interval, offsets[p.name]) for p in plan.populations}
        self.dense = {}
        for c in plan.connections:
            # the host input travels as 24-bit payloads, except a binary spike code's events: plain spikes
            bits = 24 if c.src == INPUT and not getattr(plan.encoding, "binary", False) else 0
            cls, extra = (P.CountingDelayDense, {"delays": c.delay}) if c.delay else (P.CountingDense, {})
            if c.conv is not None and not c.delay:
                cls, extra = P.CountingConv, {"geometry": c.conv}
            fixed_c = fixed.connections[c.name] if self.precision == FIXED_PRECISION else None
            if c.conv is not None and c.delay:  # DelayDense holds a matrix: unrolled (within its limit)
                weights = c.dense() if fixed_c is None else np.rint(
                    c.conv.matrix(fixed_c.weights.astype(np.float64), f"connection {c.name!r}")).astype(np.int32)
            else:
                weights = np.asarray(c.weight) if fixed_c is None else fixed_c.weights
            if fixed_c is not None:
                dense = cls(weights=weights, weight_exp=fixed_c.weight_exp, num_weight_bits=fixed_c.num_weight_bits,
                            num_message_bits=bits, name=c.name, **extra)
            else:
                dense = cls(weights=weights, num_message_bits=bits, name=c.name, **extra)
            src = host_in.s_out if c.src == INPUT else self.procs[c.src].s_out
            src.connect(dense.s_in)
            dense.a_out.connect(self.procs[c.dst].a_in)
            self.dense[c.name] = dense
        self._root = host_in
        if self.sequence is None:
            out = plan.population(plan.output)
            host_out = P.HostOutput(shape=(out.size,), window=win, name="host_out")
            proc = self.procs[plan.output]
            (proc.s_out if plan.decoding.spiking_output else proc.v_out).connect(host_out.a_in)
            self._send_port, self._recv_port = host_in.pipe_in, host_out.pipe_out
        self.monitors = {}
        if self.probe_steps:
            for p in plan.populations:
                mon = Monitor()
                mon.probe(self.procs[p.name].v, self.probe_steps)
                self.monitors[(p.name, "v")] = mon
                if p.spiking:
                    mon = Monitor()
                    mon.probe(self.procs[p.name].s_out, self.probe_steps)
                    self.monitors[(p.name, "s")] = mon

    def run(self, steps: int) -> None:
        """Run ``steps`` Lava steps of the recorded input sequence."""
        if not self._running or self.sequence is None:
            raise LavaRuntimeError("run() needs a running network built with an input sequence")
        self._ran = True
        self._root.run(condition=RunSteps(num_steps=steps, blocking=True))
        self.time_step += steps

    def _reset_state(self) -> None:
        zero = lambda var: var.set(np.zeros(var.shape, np.int64))  # noqa: E731
        for proc in self.procs.values():
            for var in (proc.u, proc.v, proc.update_count, proc.active_count, proc.spike_count):
                zero(var)
        for dense in self.dense.values():
            zero(dense.a_buff)
            zero(dense.synops)

    def _read_counts(self) -> OpCounts:
        c = self._new_counts()
        c.synops = {k: int(d.synops.get()[0]) for k, d in self.dense.items()}
        for p in self.plan.populations:
            proc = self.procs[p.name]
            c.updates[p.name] = int(proc.update_count.get()[0])
            c.active[p.name] = int(proc.active_count.get()[0])
            if p.spiking:
                c.spikes[p.name] = int(proc.spike_count.get()[0])
        return c

    def probes(self) -> dict[tuple[str, str], np.ndarray]:
        """Monitor data (steps, neurons) per ``(population, 'v'|'s')`` (with ``probe_steps``)."""
        out = {}
        for (name, what), mon in self.monitors.items():
            data = mon.get_data()
            proc = self.procs[name]
            key = "v" if what == "v" else "s_out"
            out[(name, what)] = np.asarray(data[proc.name][key])
        return out

    def record(self, inputs: np.ndarray) -> Recording:
        """Stream ``inputs`` through Lava's own models, every population probed by a Monitor."""
        x = self._padded(self._check_stream(inputs))
        if self._running:
            raise LavaRuntimeError("record() builds its own network; call it on a backend that is not running")
        self.sequence, self.probe_steps = x, len(x)
        with self:
            self.run(len(x))
            probes = self.probes()
        out = Recording(latency=self._latency())
        for (name, what), data in probes.items():
            (out.v if what == "v" else out.spikes)[name] = data
        return out
