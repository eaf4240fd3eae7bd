"""Build a :class:`NetworkPlan` as Lava processes and run it, always stopping the runtime.

Two mappings, bit-exact with each other (tests hold them so):

- ``per-node``: one Lava process per NIR node, as on hardware: Lava's own ``Dense``
  and ``LIFReset`` models (with counters added), spikeloop's ``CubaNeuron``, and host
  input/output processes. The reference.
- ``fused``: the whole network in one Lava process stepping the emulator's code; a
  few times faster because Lava synchronises one process per step instead of many.

Lava starts OS processes and shared-memory segments. :class:`LavaNetwork` is a
context manager that stops the runtime on every path; if Lava's own ``stop`` fails or
hangs, it terminates the processes and unlinks the segments the runtime created.
"""
from __future__ import annotations

import multiprocessing
import os
import threading
from multiprocessing import shared_memory
from pathlib import Path

import numpy as np
import psutil

from spikeloop.core.errors import LavaRuntimeError
from spikeloop.runtime import lava_compat
from spikeloop.runtime.counters import OpCounts
from spikeloop.runtime.fixed_point import FixedPlan, quantize_plan
from spikeloop.runtime.plan import INPUT, STREAM_INTERVAL, NetworkPlan

lava_compat.install()

from lava.magma.core.run_conditions import RunSteps  # noqa: E402
from lava.magma.core.run_configs import Loihi2SimCfg  # noqa: E402
from lava.proc.monitor.process import Monitor  # noqa: E402

from spikeloop.runtime.lava_procs import procs as P  # noqa: E402

MAPPINGS = ("fused", "per-node")
TAGS = {"float": P.FLOAT_TAG, "fixed": P.FIXED_TAG}
SHM = Path("/dev/shm")
STOP_TIMEOUT_S = 20.0


def _shm_segments() -> set[str]:
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


class LavaNetwork:
    """A compiled Lava network for one plan, precision and mapping.

    Use as a context manager; :meth:`decide` runs one decision window.
    ``probe_steps`` attaches Lava Monitors to every population's ``v`` (and spikes)
    for that many steps (used by the parity tests).
    """

    def __init__(self, plan: NetworkPlan, precision: str = "fixed", mapping: str = "fused",
                 fixed: FixedPlan | None = None, probe_steps: int = 0, windowed: bool = True,
                 sequence: np.ndarray | None = None):
        if precision not in TAGS:
            raise ValueError(f"precision must be one of {tuple(TAGS)}, got {precision!r}")
        if mapping not in MAPPINGS:
            raise ValueError(f"mapping must be one of {MAPPINGS}, got {mapping!r}")
        self.plan, self.precision, self.mapping = plan, precision, mapping
        self.fixed = fixed if fixed is not None or precision == "float" else quantize_plan(plan)
        self.probe_steps = probe_steps
        self.windowed = windowed
        self.sequence = None if sequence is None else np.asarray(sequence)
        if self.sequence is not None and mapping != "per-node":
            raise ValueError("a recorded input sequence runs on the per-node mapping only")
        if probe_steps and mapping != "per-node":
            raise ValueError("probes need the per-node mapping (one Lava process per population)")
        if windowed and plan.stateful_connections:
            raise LavaRuntimeError(
                f"connections {[c.name for c in plan.stateful_connections]} carry activity across "
                "timesteps (recurrent or delayed); deploying them with a state reset per decision window "
                "is not supported yet (Lava's Dense buffers are not reset). Run such graphs open loop")
        self.time_step = 0
        self._root = None
        self._started = False
        self._ran = False

    # ------------------------------------------------------------------ build
    def _build(self):
        plan, fixed = self.plan, self.fixed
        if self.mapping == "fused":
            net = P.FusedNetwork(plan=plan, fixed=fixed, precision=self.precision)
            self._send_port, self._recv_port = net.pipe_in, net.pipe_out
            self._fused = net
            self._root = net
            return
        period = plan.period
        interval = period if self.windowed else STREAM_INTERVAL
        offsets = plan.reset_offsets(interval)
        if self.sequence is None:
            host_in = P.HostInput(shape=(plan.input_size,), period=period, hold=plan.T, name="host_in")
        else:
            dtype = np.int32 if self.precision == "fixed" else np.float64
            host_in = P.SequenceInput(data=self.sequence.astype(dtype), name="sequence_in")
        self.procs, self.dense = {}, {}
        for p in plan.populations:
            if self.precision == "fixed":
                f = fixed.populations[p.name]
                neuron = dict(du=f.du_12bit, dv=f.dv_12bit, bias_mant=f.bias_mant, bias_exp=f.bias_exp)
                vth = f.vth_17bit
            else:
                neuron = dict(du=float(np.min(p.du)), dv=float(np.min(p.dv)), bias_mant=np.asarray(p.bias),
                              bias_exp=0)
                vth = p.vth
            window = dict(reset_interval=interval, reset_offset=offsets[p.name])
            if p.lava_lif:
                self.procs[p.name] = P.CountingLIFReset(shape=(p.size,), vth=vth, name=p.name, **neuron,
                                                        **window)
            else:
                self.procs[p.name] = P.CubaNeuron(shape=(p.size,), vth=vth, reset=p.reset, name=p.name,
                                                  **neuron, **window)
        for c in plan.connections:
            bits = 24 if c.src == INPUT else 0
            cls, extra = (P.CountingDelayDense, {"delays": c.delay}) if c.delay else (P.CountingDense, {})
            if self.precision == "fixed":
                f = fixed.connections[c.name]
                dense = cls(weights=f.weights, weight_exp=f.weight_exp, num_weight_bits=f.num_weight_bits,
                            num_message_bits=bits, name=c.name, **extra)
            else:
                dense = cls(weights=np.asarray(c.weight), num_message_bits=bits, name=c.name, **extra)
            src = host_in.s_out if c.src == INPUT else self.procs[c.src].s_out
            src.connect(dense.s_in)
            dense.a_out.connect(self.procs[c.dst].a_in)
            self.dense[c.name] = dense
        self._root = host_in
        self._send_port = self._recv_port = None
        if self.sequence is None:
            out = plan.population(plan.output)
            host_out = P.HostOutput(shape=(out.size,), period=period, read=plan.read_offset(),
                                    name="host_out")
            self.procs[plan.output].v_out.connect(host_out.a_in)
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

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "LavaNetwork":
        self._shm_before = _shm_segments()
        self._children_before = _children()
        self._started = True
        try:
            self._build()
            self._root.create_runtime(run_cfg=Loihi2SimCfg(select_tag=TAGS[self.precision]))
        except Exception as e:
            self.stop()
            raise LavaRuntimeError(f"could not compile the network onto Lava: {type(e).__name__}: {e}") from e
        if self._send_port is not None:
            self._tx = self._send_port.external_pipe_csp_send_port
            self._rx = self._recv_port.external_pipe_csp_recv_port
        return self

    def __enter__(self) -> "LavaNetwork":
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        # After a failure the runtime may be mid-step: give Lava's own stop only a moment; after
        # Ctrl-C (which a terminal also sends to Lava's processes) none at all.
        if exc_type is None:
            self.stop()
        else:
            self.stop(timeout=0.0 if issubclass(exc_type, KeyboardInterrupt) else 2.0)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop the runtime; if Lava's stop fails or hangs, kill its processes and segments.

        A runtime that never ran a step is not stopped through Lava: its process models
        wait for a first command that never comes, and Lava's ``stop`` would hang.
        """
        if not self._started:
            return
        self._started = False
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
        """Terminate what this runtime started and unlink the segments it created."""
        new = _children() - self._children_before
        for proc in multiprocessing.active_children():  # Lava's actors: reap them properly
            if proc.pid in new:
                proc.terminate()
                # Lava's SystemProcess.join takes no timeout; the base class's does.
                multiprocessing.Process.join(proc, 3)
                if proc.is_alive():
                    proc.kill()
                    multiprocessing.Process.join(proc, 3)
        for pid in _children() - self._children_before:
            if is_resource_tracker(pid):
                continue
            try:
                psutil.Process(pid).kill()
                psutil.Process(pid).wait(3)
            except psutil.Error:
                pass
        for name in _shm_segments() - self._shm_before:
            try:
                seg = shared_memory.SharedMemory(name=name)
                seg.close()
                seg.unlink()  # also tells Python's resource tracker it is gone
            except (OSError, ValueError):
                try:
                    os.unlink(SHM / name)
                except OSError:
                    pass

    # ------------------------------------------------------------------ running
    def decide(self, x: np.ndarray) -> np.ndarray:
        """Run one decision window on host input ``x``; return the output registers."""
        if not self._started:
            raise LavaRuntimeError("the Lava network is not running (use it as a context manager)")
        self._tx.send(np.asarray(x, dtype=np.float64))
        self._ran = True
        self._root.run(condition=RunSteps(num_steps=self.plan.period, blocking=True))
        self.time_step += self.plan.period
        return np.asarray(self._rx.recv())

    def run(self, steps: int) -> None:
        """Run ``steps`` Lava steps of the recorded input sequence."""
        if not self._started or self.sequence is None:
            raise LavaRuntimeError("run() needs a running network built with an input sequence")
        self._ran = True
        self._root.run(condition=RunSteps(num_steps=steps, blocking=True))
        self.time_step += steps

    def counts(self) -> OpCounts:
        """Read the counters accumulated inside the process models."""
        c = OpCounts(steps=self.time_step, decisions=self.time_step // self.plan.period,
                     graded={k.name: self.plan.is_graded(k) for k in self.plan.connections})
        pops = self.plan.populations
        if self.mapping == "fused":
            f = self._fused
            syn, upd, act, spk = (v.get().astype(np.int64) for v in
                                  (f.synops, f.update_count, f.active_count, f.spike_count))
            c.synops = {k.name: int(s) for k, s in zip(self.plan.connections, syn)}
            c.updates = {p.name: int(u) for p, u in zip(pops, upd)}
            c.active = {p.name: int(a) for p, a in zip(pops, act)}
            c.spikes = {p.name: int(s) for p, s in zip(pops, spk) if p.spiking}
            return c
        c.synops = {k: int(d.synops.get()[0]) for k, d in self.dense.items()}
        for p in pops:
            proc = self.procs[p.name]
            c.updates[p.name] = int(proc.update_count.get()[0])
            c.active[p.name] = int(proc.active_count.get()[0])
            if p.spiking:
                c.spikes[p.name] = int(proc.spike_count.get()[0])
        return c

    def probes(self) -> dict[tuple[str, str], np.ndarray]:
        """Monitor data (steps, neurons) per ``(population, 'v'|'s')`` (per-node with probes)."""
        out = {}
        for (name, what), mon in self.monitors.items():
            data = mon.get_data()
            proc = self.procs[name]
            key = "v" if what == "v" else "s_out"
            out[(name, what)] = np.asarray(data[proc.name][key])
        return out
