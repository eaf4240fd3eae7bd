"""Lava processes and process models written by spikeloop.

- ``HostInput`` / ``HostOutput``: talk to the host once per decision through Lava's
  external pipes (the observation in; the output over its window out: voltages, or
  spikes for a spike-count decoding), on the plan's ``DecisionWindow``.
- ``CubaNeuron``: the contract's neuron for what Lava's LIF cannot do (non-spiking
  readout, soft reset, dv = 1); sends spikes and its voltage every step.
- ``CountingDense`` / ``CountingDelayDense`` / ``CountingLIFReset``: Lava's own models with
  operation counters accumulated in Vars. Their arithmetic is Lava's stock models',
  untouched; the counters only observe.
- ``FusedNetwork``: the whole network in one process, stepping the emulator's code
  once per Lava timestep (fewer processes to synchronise: the fast mapping). Tests
  hold it bit-exact to the per-node mapping of stock models.

Lava re-executes this file by path when it searches for models, so it uses absolute
imports only.
"""
import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.dense.models import (PyDelayDenseModelBitAcc, PyDelayDenseModelFloat, PyDenseModelBitAcc,
                                   PyDenseModelFloat)
from lava.proc.dense.process import Dense, DelayDense
from lava.proc.lif.models import PyLifResetModelBitAcc, PyLifResetModelFloat
from lava.proc.lif.process import LIFReset

from spikeloop.runtime.counters import fanout, neuron_activity
from spikeloop.runtime.fixed_point import LOIHI, VTH_SHIFT, dense_accumulate, effective_bias, lava_effective_weights
from spikeloop.core.neuron import FLOAT, cuba_step

FLOAT_TAG, FIXED_TAG = "floating_pt", "fixed_pt"


# --------------------------------------------------------------------------- host I/O
class HostInput(AbstractProcess):
    """Receives one input vector per decision from the host; emits it while ``window`` holds it."""

    def __init__(self, *, shape, window, **kwargs):
        super().__init__(shape=shape, window=window, **kwargs)
        self.pipe_in = InPort(shape=shape)
        self.pipe_in.flag_external_pipe(buffer_size=4)
        self.s_out = OutPort(shape=shape)


class _HostInputModel(PyLoihiProcessModel):
    pipe_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.window = proc_params["window"]
        self.x = np.zeros(proc_params["shape"], self.dtype)

    def run_spk(self):
        k = self.window.phase(self.time_step)
        if k == 0:
            self.x = np.asarray(self.pipe_in.recv(), dtype=self.dtype)
        self.s_out.send(self.x if self.window.holds(k) else np.zeros_like(self.x))


@implements(proc=HostInput, protocol=LoihiProtocol)
@requires(CPU)
@tag(FLOAT_TAG)
class PyHostInputFloat(_HostInputModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    dtype = np.float64


@implements(proc=HostInput, protocol=LoihiProtocol)
@requires(CPU)
@tag(FIXED_TAG, "bit_accurate_loihi")
class PyHostInputFixed(_HostInputModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    dtype = np.int32


class SequenceInput(AbstractProcess):
    """Plays a recorded input, one row per Lava step (open-loop simulation and tests)."""

    def __init__(self, *, data, **kwargs):
        data = np.asarray(data)
        super().__init__(data=data, **kwargs)
        self.s_out = OutPort(shape=data.shape[1:])


class _SequenceInputModel(PyLoihiProcessModel):
    def run_spk(self):
        data = self.proc_params["data"]
        t = self.time_step - 1
        self.s_out.send(data[t] if t < len(data) else np.zeros(data.shape[1:], data.dtype))


@implements(proc=SequenceInput, protocol=LoihiProtocol)
@requires(CPU)
@tag(FLOAT_TAG)
class PySequenceInputFloat(_SequenceInputModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)


@implements(proc=SequenceInput, protocol=LoihiProtocol)
@requires(CPU)
@tag(FIXED_TAG, "bit_accurate_loihi")
class PySequenceInputFixed(_SequenceInputModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)


class HostOutput(AbstractProcess):
    """Collects its input over the output's steps of ``window``; sends the ``(T, n)`` window
    (flattened) to the host at the decision's last step."""

    def __init__(self, *, shape, window, **kwargs):
        super().__init__(shape=shape, window=window, **kwargs)
        self.a_in = InPort(shape=shape)
        self.pipe_out = OutPort(shape=(window.T * int(np.prod(shape)),))
        self.pipe_out.flag_external_pipe(buffer_size=4)


class _HostOutputModel(PyLoihiProcessModel):
    pipe_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.window = proc_params["window"]
        self.rows = np.zeros((self.window.T, int(np.prod(proc_params["shape"]))), np.float64)

    def run_spk(self):
        data = self.a_in.recv()
        k = self.window.phase(self.time_step)
        row = self.window.output_row(k)
        if row is not None:
            self.rows[row] = data
        if k == self.window.period - 1:
            self.pipe_out.send(self.rows.reshape(-1))


@implements(proc=HostOutput, protocol=LoihiProtocol)
@requires(CPU)
@tag(FLOAT_TAG)
class PyHostOutputFloat(_HostOutputModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)


@implements(proc=HostOutput, protocol=LoihiProtocol)
@requires(CPU)
@tag(FIXED_TAG, "bit_accurate_loihi")
class PyHostOutputFixed(_HostOutputModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)


# --------------------------------------------------------------------------- spikeloop's neuron
class CubaNeuron(AbstractProcess):
    """The contract's neuron where Lava's LIF falls short: non-spiking readouts, soft reset,
    per-neuron decays, and decays Lava's 12-bit LIF registers cannot hold (dv = 1 for a
    Threshold node).

    Sends spikes on ``s_out`` and its voltage on ``v_out`` every step. Parameters as Lava's
    LIF: floats in ``floating_pt``, register values in ``fixed_pt`` (``vth`` the 17-bit
    mantissa). ``vth=None`` makes a non-spiking integrator. ``reset_interval`` /
    ``reset_offset`` zero the state like Lava's ``LIFReset``.
    """

    def __init__(self, *, shape, du, dv, bias_mant, bias_exp=0, vth=None, reset="hard", reset_interval=0,
                 reset_offset=0, **kwargs):
        super().__init__(shape=shape, spiking=vth is not None, reset=reset, reset_interval=reset_interval,
                         reset_offset=reset_offset, **kwargs)
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.v_out = OutPort(shape=shape)
        self.u = Var(shape=shape, init=0)
        self.v = Var(shape=shape, init=0)
        # One decay per neuron: per-neuron time constants run exactly (Lava's LIF holds one).
        self.du = Var(shape=shape, init=np.broadcast_to(du, shape).copy())
        self.dv = Var(shape=shape, init=np.broadcast_to(dv, shape).copy())
        self.bias_mant = Var(shape=shape, init=bias_mant)
        self.bias_exp = Var(shape=shape, init=bias_exp)
        self.vth = Var(shape=(1,), init=0 if vth is None else vth)
        self.spike_count = Var(shape=(1,), init=0)
        self.update_count = Var(shape=(1,), init=0)
        self.active_count = Var(shape=(1,), init=0)


class _CubaNeuronModel(PyLoihiProcessModel):
    spike_count: np.ndarray = LavaPyType(np.ndarray, np.int64)
    update_count: np.ndarray = LavaPyType(np.ndarray, np.int64)
    active_count: np.ndarray = LavaPyType(np.ndarray, np.int64)

    def run_spk(self):
        a_in = self.a_in.recv()
        params = self.proc_params
        interval = params["reset_interval"]
        if interval and self.time_step % interval == params["reset_offset"] % interval:
            self.u[:] = 0
            self.v[:] = 0
        vth = self.vth_value() if params["spiking"] else None
        u, v, s, v_pre = cuba_step(self.u, self.v, a_in, du=self.du_value(), dv=self.dv_value(),
                                   bias=self.bias_value(), vth=vth, reset=params["reset"], arith=self.arith)
        self.u[:] = u
        self.v[:] = v
        self.update_count[0] += self.u.size
        self.active_count[0] += neuron_activity(u, v_pre, s)
        if s is None:
            s = np.zeros(self.u.shape, bool)
        else:
            self.spike_count[0] += int(np.count_nonzero(s))
        self.s_out.send(s)
        self.v_out.send(self.v)


@implements(proc=CubaNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag(FLOAT_TAG)
class PyCubaNeuronFloat(_CubaNeuronModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    v_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    u: np.ndarray = LavaPyType(np.ndarray, float)
    v: np.ndarray = LavaPyType(np.ndarray, float)
    du: np.ndarray = LavaPyType(np.ndarray, float)
    dv: np.ndarray = LavaPyType(np.ndarray, float)
    bias_mant: np.ndarray = LavaPyType(np.ndarray, float)
    bias_exp: np.ndarray = LavaPyType(np.ndarray, float)
    vth: np.ndarray = LavaPyType(np.ndarray, float)
    arith = FLOAT

    def du_value(self):
        return self.du

    def dv_value(self):
        return self.dv

    def bias_value(self):
        return self.bias_mant  # Lava's float LIF ignores bias_exp too

    def vth_value(self):
        return float(self.vth[0])


@implements(proc=CubaNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag(FIXED_TAG, "bit_accurate_loihi")
class PyCubaNeuronFixed(_CubaNeuronModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    v_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    u: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    v: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    du: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=13)
    dv: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=13)  # 13 bits: dv = 4096 (Threshold)
    bias_mant: np.ndarray = LavaPyType(np.ndarray, np.int16, precision=13)
    bias_exp: np.ndarray = LavaPyType(np.ndarray, np.int16, precision=3)
    vth: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=17)
    arith = LOIHI

    def du_value(self):
        return self.du.astype(np.int64)

    def dv_value(self):
        return self.dv.astype(np.int64)

    def bias_value(self):
        return effective_bias(self.bias_mant, self.bias_exp)

    def vth_value(self):
        return int(self.vth[0]) << VTH_SHIFT


# --------------------------------------------------------------------------- counting stock models
class CountingDense(Dense):
    """Lava's Dense with a ``synops`` counter (one per non-zero input per non-zero weight)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.synops = Var(shape=(1,), init=0)


class _CountingDenseMixin:
    implements_process = None  # Lava refuses to re-bind a subclassed model otherwise
    synops: np.ndarray = LavaPyType(np.ndarray, np.int64)

    def run_spk(self):
        if not getattr(self, "_counting", False):
            recv = self.s_in.recv

            def counted_recv():
                s = recv()
                if getattr(self, "_fan", None) is None:  # weights are final once the model receives
                    self._fan = fanout(self.weights)
                self.synops[0] += int(self._fan[np.asarray(s) != 0].sum())
                return s

            self.s_in.recv = counted_recv
            self._counting = True
        super().run_spk()


@implements(proc=CountingDense, protocol=LoihiProtocol)
@requires(CPU)
@tag(FLOAT_TAG)
class PyCountingDenseFloat(_CountingDenseMixin, PyDenseModelFloat):
    pass


@implements(proc=CountingDense, protocol=LoihiProtocol)
@requires(CPU)
@tag(FIXED_TAG, "bit_accurate_loihi")
class PyCountingDenseBitAcc(_CountingDenseMixin, PyDenseModelBitAcc):
    pass


class CountingDelayDense(DelayDense):
    """Lava's DelayDense (extra synaptic delay, for recurrence and NIR Delay) with ``synops``."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.synops = Var(shape=(1,), init=0)


@implements(proc=CountingDelayDense, protocol=LoihiProtocol)
@requires(CPU)
@tag(FLOAT_TAG)
class PyCountingDelayDenseFloat(_CountingDenseMixin, PyDelayDenseModelFloat):
    pass


@implements(proc=CountingDelayDense, protocol=LoihiProtocol)
@requires(CPU)
@tag(FIXED_TAG, "bit_accurate_loihi")
class PyCountingDelayDenseBitAcc(_CountingDenseMixin, PyDelayDenseModelBitAcc):
    pass


class CountingConv(AbstractProcess):
    """Convolutional synapses with a ``synops`` counter: a kernel that slides over its source.

    Lava's own ``Conv`` process holds (W, H, C) ports and its fixed-point model applies no
    weight exponent; this one takes the flat (C, H, W) populations of the plan and the
    kernel with Loihi's weight exponent, and applies it with the plan's one convolution
    function (:meth:`~spikeloop.runtime.plan.ConvGeometry.apply`), as the emulator does.
    Timing is Dense's: the output of step ``t`` is delivered at ``t + 1``.
    """

    def __init__(self, *, weights, geometry, weight_exp=0, num_weight_bits=8, num_message_bits=0, **kwargs):
        super().__init__(geometry=geometry, weight_exp=weight_exp, num_weight_bits=num_weight_bits,
                         num_message_bits=num_message_bits, **kwargs)
        self.s_in = InPort(shape=(geometry.n_in,))
        self.a_out = OutPort(shape=(geometry.n_out,))
        self.weights = Var(shape=weights.shape, init=weights)
        self.a_buff = Var(shape=(geometry.n_out,), init=0)
        self.synops = Var(shape=(1,), init=0)


class _CountingConvModel(PyLoihiProcessModel):
    synops: np.ndarray = LavaPyType(np.ndarray, np.int64)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.geometry = proc_params["geometry"]
        self.weight_exp = int(proc_params["weight_exp"])
        self.num_weight_bits = int(proc_params["num_weight_bits"])
        self.graded = int(proc_params["num_message_bits"]) > 0
        self._conn = self._fan = None

    def accumulate(self, s_in: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def run_spk(self):
        from spikeloop.runtime.plan import Connection

        if self._conn is None:  # the weights are final once the model runs
            self._conn = Connection("conv", "src", "dst", self.kernel(), conv=self.geometry)
            self._fan = self._conn.fanout()
        self.a_out.send(self.a_buff)
        s = self.s_in.recv()
        s = s if self.graded else (s != 0).astype(s.dtype)
        self.synops[0] += int(self._fan[np.asarray(s) != 0].sum())
        self.a_buff = self.accumulate(s)


@implements(proc=CountingConv, protocol=LoihiProtocol)
@requires(CPU)
@tag(FLOAT_TAG)
class PyCountingConvFloat(_CountingConvModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    a_buff: np.ndarray = LavaPyType(np.ndarray, float)
    weights: np.ndarray = LavaPyType(np.ndarray, float)

    def kernel(self):
        return np.asarray(self.weights, np.float64)

    def accumulate(self, s_in):
        return self._conn.apply(self._conn.weight, s_in)


@implements(proc=CountingConv, protocol=LoihiProtocol)
@requires(CPU)
@tag(FIXED_TAG, "bit_accurate_loihi")
class PyCountingConvBitAcc(_CountingConvModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    a_buff: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    weights: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=8)

    def kernel(self):
        return lava_effective_weights(self.weights, self.num_weight_bits)

    def accumulate(self, s_in):
        return dense_accumulate(self._conn.weight.astype(np.float64), s_in, self.weight_exp, self._conn)


class CountingLIFReset(LIFReset):
    """Lava's LIFReset with spike, update and active-update counters."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.spike_count = Var(shape=(1,), init=0)
        self.update_count = Var(shape=(1,), init=0)
        self.active_count = Var(shape=(1,), init=0)


class _CountingLIFMixin:
    implements_process = None
    spike_count: np.ndarray = LavaPyType(np.ndarray, np.int64)
    update_count: np.ndarray = LavaPyType(np.ndarray, np.int64)
    active_count: np.ndarray = LavaPyType(np.ndarray, np.int64)

    def reset_voltage(self, spike_vector):
        # Called by Lava's run_spk after the sub-threshold update, before the reset.
        self.spike_count[0] += int(np.count_nonzero(spike_vector))
        self.update_count[0] += self.v.size
        self.active_count[0] += neuron_activity(self.u, self.v, spike_vector)
        super().reset_voltage(spike_vector)


@implements(proc=CountingLIFReset, protocol=LoihiProtocol)
@requires(CPU)
@tag(FLOAT_TAG)
class PyCountingLIFResetFloat(_CountingLIFMixin, PyLifResetModelFloat):
    pass


@implements(proc=CountingLIFReset, protocol=LoihiProtocol)
@requires(CPU)
@tag(FIXED_TAG, "bit_accurate_loihi")
class PyCountingLIFResetBitAcc(_CountingLIFMixin, PyLifResetModelBitAcc):
    pass


# --------------------------------------------------------------------------- fused
class FusedNetwork(AbstractProcess):
    """A whole :class:`NetworkPlan` in one Lava process, with host pipes and counters.

    One Lava step of this process is one decision: the emulator runs the whole window
    (input held ``T`` steps, the pipeline drained) inside it, so Lava synchronises once per
    decision. ``batch``: ``B`` copies of the network (the emulator's batch); each decision's input
    row of a copy carries its observation payload and, last, whether the copy counts.
    """

    def __init__(self, *, plan, fixed, precision, batch=None, memory="window", **kwargs):
        super().__init__(plan=plan, fixed=fixed, precision=precision, batch=batch, memory=memory, **kwargs)
        out = plan.population(plan.output).size
        rows = 1 if batch is None else batch
        self.pipe_in = InPort(shape=((plan.input_size + (batch is not None)) * rows,))
        self.pipe_in.flag_external_pipe(buffer_size=4)
        self.pipe_out = OutPort(shape=(plan.window.T * out * rows,))  # the output over its window
        self.pipe_out.flag_external_pipe(buffer_size=4)
        self.synops = Var(shape=(len(plan.connections),), init=0)
        self.update_count = Var(shape=(len(plan.populations),), init=0)
        self.active_count = Var(shape=(len(plan.populations),), init=0)
        self.spike_count = Var(shape=(len(plan.populations),), init=0)
        self.epoch = Var(shape=(1,), init=0)
        """the host increments it to have the network reset (state and counters) before its next step"""


class _FusedModel(PyLoihiProcessModel):
    pipe_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    epoch: np.ndarray = LavaPyType(np.ndarray, np.int64)
    synops: np.ndarray = LavaPyType(np.ndarray, np.int64)
    update_count: np.ndarray = LavaPyType(np.ndarray, np.int64)
    active_count: np.ndarray = LavaPyType(np.ndarray, np.int64)
    spike_count: np.ndarray = LavaPyType(np.ndarray, np.int64)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        from spikeloop.runtime.emulator import Emulator

        plan = proc_params["plan"]
        self.batch = proc_params["batch"]
        self.em = Emulator(plan, proc_params["precision"], proc_params["fixed"], windowed=True, batch=self.batch,
                           memory=proc_params["memory"])
        self._epoch = 0

    def run_spk(self):
        # One Lava step is one whole decision: the emulator runs the window (hold, drain, read)
        # inside it, so Lava synchronises once per decision instead of once per network step.
        if self.epoch[0] != self._epoch:  # set between runs, so always at a decision boundary
            self._epoch = int(self.epoch[0])
            self.em.reset()
        x = np.asarray(self.pipe_in.recv(), dtype=np.float64)
        if self.batch is not None:
            x = x.reshape(self.batch, -1)
            x, self.em.active = x[:, :-1], x[:, -1] != 0
        rows = self.em._run_window(x.astype(self.em.dtype))
        self.pipe_out.send(rows.reshape(-1))
        c = self.em.ops
        self.synops[:] = [c.synops[n.name] for n in self.em.conns]
        self.update_count[:] = [c.updates[p.name] for p in self.em.pops]
        self.active_count[:] = [c.active[p.name] for p in self.em.pops]
        self.spike_count[:] = [c.spikes.get(p.name, 0) for p in self.em.pops]


@implements(proc=FusedNetwork, protocol=LoihiProtocol)
@requires(CPU)
@tag(FLOAT_TAG)
class PyFusedNetworkFloat(_FusedModel):
    pipe_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)


@implements(proc=FusedNetwork, protocol=LoihiProtocol)
@requires(CPU)
@tag(FIXED_TAG, "bit_accurate_loihi")
class PyFusedNetworkFixed(_FusedModel):
    pipe_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
