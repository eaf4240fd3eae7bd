"""The neuron update of spikeloop, written once.

This is the semantics contract of DESIGN.md: Lava's/Loihi's CUBA-LIF in discrete
time. The same function runs the torch training layers (torch tensors, surrogate
spike function), the numpy emulator and spikeloop's own Lava process models (numpy
arrays, hard threshold), in float or in Loihi integer arithmetic::

    u[t] = (1 - du) * u[t-1] + a_in[t]          # synaptic current
    v[t] = (1 - dv) * v[t-1] + u[t] + bias      # membrane voltage
    s[t] = v[t] > vth                           # spike (absent for a readout)
    v[t] = 0          where s[t]                # hard reset (Lava's LIF)
    v[t] = v - vth    where s[t]                # soft reset

``du = 1`` is a plain LIF, ``dv = 0`` an IF neuron, and ``vth=None`` a non-spiking
leaky integrator (a readout of Q-values or logits).

What differs between float and Loihi fixed point is only the arithmetic of the
decays, of the synaptic input, and of the state range. That is the ``arith``
argument: :data:`FLOAT` here, and the integer variant in
``spikeloop.runtime.fixed_point`` (bit-exact with Lava's ``fixed_pt`` models).
Xylo's integer neuron (``spikeloop.core.xylo``; the emulator of its core in
``spikeloop.runtime.xylo`` is bit-exact with SynSense's ``xylosim``) is a third arithmetic: it also nests the stages of :class:`Arithmetic`
its own way (input added before the current decays, saturating 16-bit additions,
bit-shift decays, up to 31 spikes a step with a subtractive reset).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

HARD = "hard"
SOFT = "soft"
RESET_MODES = (HARD, SOFT)


class Arithmetic:
    """The three stages of one update, in the order float and Loihi both use.

    An arithmetic gives the primitives (``decay_u``, ``decay_v``, ``synaptic_input``,
    ``wrap_u``, ``clip_v``); a chip whose stages nest their rounding differently (Xylo:
    the input is added before the current decays, every addition saturates, several
    spikes per step) overrides a stage, and :func:`cuba_step` stays the one update.
    """

    def integrate_u(self, u, a_in, du):
        """The synaptic current after this step's input."""
        return self.wrap_u(self.decay_u(u, du) + self.synaptic_input(a_in))

    def integrate_v(self, v, u, bias, dv):
        """The membrane voltage before the spike test."""
        return self.clip_v(self.decay_v(v, dv) + u + bias)

    def fire(self, v, vth, reset: str, spike_fn):
        """``(spikes, v after reset)``: a spike where ``spike_fn(v - vth)``, then the reset."""
        s = spike_fn(v - vth)
        if reset == HARD:
            return s, v - s * v
        if reset == SOFT:
            return s, v - s * vth
        raise ValueError(f"unknown reset mode {reset!r}; expected one of {RESET_MODES}")


@dataclass(frozen=True)
class FloatArithmetic(Arithmetic):
    """Real-valued arithmetic; works on numpy arrays and torch tensors alike.

    The operation order matches Lava's ``floating_pt`` LIF models exactly, so that
    float results agree to the last bit when the inputs do.
    """

    name: str = "float"

    def decay_u(self, u, du):
        return u * (1 - du)

    def decay_v(self, v, dv):
        return v * (1 - dv)

    def synaptic_input(self, a_in):
        return a_in

    def wrap_u(self, u):
        return u

    def clip_v(self, v):
        return v


FLOAT = FloatArithmetic()


def heaviside(x):
    """Hard threshold used outside training: 1 where ``x > 0`` (numpy)."""
    return x > 0


def cuba_step(
    u: Any,
    v: Any,
    a_in: Any,
    *,
    du: Any,
    dv: Any,
    bias: Any,
    vth: Any | None,
    reset: str = HARD,
    spike_fn: Callable[[Any], Any] = heaviside,
    arith: Any = FLOAT,
):
    """Advance one timestep; return ``(u, v_after_reset, spikes, v_before_reset)``.

    ``spikes`` is ``None`` for a non-spiking neuron (``vth is None``). ``spike_fn``
    receives ``v - vth`` and returns the spikes (a surrogate in training, a hard
    threshold elsewhere). In Loihi arithmetic ``u``, ``v``, ``bias`` and ``vth`` are
    the integer register values (``vth`` already shifted), ``du``/``dv`` 12-bit.
    """
    u = arith.integrate_u(u, a_in, du)
    v = arith.integrate_v(v, u, bias, dv)
    if vth is None:
        return u, v, None, v
    s, v_out = arith.fire(v, vth, reset, spike_fn)
    return u, v_out, s, v


# ----------------------------------------------------------------------------- kinds


def first_offender(values, ok=None) -> str:
    """The first value where ``ok`` is false, with its neuron index when the values differ
    (an error names one value, not a 1,000-element array)."""
    import numpy as np

    a = np.asarray(values, dtype=np.float64).reshape(-1)
    if a.size == 0:
        return "[]"
    bad = np.ones(a.size, bool) if ok is None else ~np.asarray(ok).reshape(-1)
    i = int(np.flatnonzero(bad)[0]) if bad.any() else 0
    return f"{a[i]:g}" if a.size == 1 or np.all(a == a[i]) else f"{a[i]:g} (neuron {i} of {a.size})"

NEURON_KINDS = ("LIF", "CubaLIF", "IF", "LI", "CubaLI")
SPIKING_KINDS = ("LIF", "CubaLIF", "IF")


def neuron_kind(du, dv, spiking: bool) -> str:
    """Name the dynamics of constants: no current state when ``du == 1``, no leak when ``dv == 0``."""
    import numpy as np

    no_current = bool(np.all(np.asarray(du) == 1))
    if not spiking:
        return "LI" if no_current else "CubaLI"
    if not no_current:
        return "CubaLIF"
    return "IF" if bool(np.all(np.asarray(dv) == 0)) else "LIF"


def neuron_fault(kind: str, du, dv, vth, overshoot: bool = False) -> str | None:
    """What is wrong with constants for a ``kind`` population, or ``None`` (the one validator).

    The rules of the contract (scalars or per-neuron arrays):

    ========  =========  =========  =====
    kind      du         dv         vth
    ========  =========  =========  =====
    LIF       1          (0, 1]     > 0
    CubaLIF   (0, 1]     (0, 1]     > 0
    IF        1          0          > 0
    LI        1          (0, 1]     None
    CubaLI    (0, 1]     (0, 1]     None
    ========  =========  =========  =====

    Torch layers, the NIR compiler and the mapping checks all ask this function.
    ``overshoot`` lets decays exceed 1 (a time constant shorter than ``dt``): a NIR file
    may hold one, and float arithmetic runs it (fixed point refuses it); importers warn.
    """
    import numpy as np

    if kind not in NEURON_KINDS:
        return f"unknown neuron kind {kind!r}; expected one of {NEURON_KINDS}"
    try:
        du_a, dv_a = np.asarray(du, dtype=np.float64), np.asarray(dv, dtype=np.float64)
    except (TypeError, ValueError):
        return f"a {kind} population needs numeric decays, got du={du!r}, dv={dv!r}"
    if not (np.all(np.isfinite(du_a)) and np.all(np.isfinite(dv_a))):
        return (f"a {kind} population needs finite decays, got du={first_offender(du_a, np.isfinite(du_a))}, "
                f"dv={first_offender(dv_a, np.isfinite(dv_a))}")
    cuba = kind.startswith("Cuba")
    if not cuba and np.any(du_a != 1.0):
        return (f"a {kind} population has no current decay: du must be 1, got {first_offender(du_a, du_a == 1.0)}; "
                f"use Cuba{kind if kind != 'IF' else 'LIF'} for du < 1")
    top = np.inf if overshoot else 1.0
    ok = (du_a > 0) & (du_a <= top)
    if cuba and not np.all(ok):
        return f"{kind}: du must lie in (0, 1] (tau_syn >= dt > 0), got {first_offender(du_a, ok)}"
    if kind == "IF" and np.any(dv_a != 0):
        return f"an IF population does not leak: dv must be 0, got {first_offender(dv_a, dv_a == 0)}; use LIF"
    ok = (dv_a > 0) & (dv_a <= top)
    if kind != "IF" and not np.all(ok):
        return f"{kind}: dv must lie in (0, 1] (tau_mem >= dt > 0), got {first_offender(dv_a, ok)}; use IF for dv = 0"
    if kind in SPIKING_KINDS:
        try:
            vth_ok = vth is not None and bool(np.all(np.asarray(vth, dtype=np.float64) > 0))
        except (TypeError, ValueError):
            vth_ok = False
        if not vth_ok:
            return f"a {kind} population needs a positive threshold vth, got {vth!r}"
    if kind not in SPIKING_KINDS and vth is not None:
        return f"a {kind} population does not spike: vth must be None, got {vth!r}"
    return None
