"""Loihi fixed-point arithmetic and the quantizer that maps a float plan onto it.

The arithmetic is Lava's bit-accurate models (``PyLifModelBitAcc``,
``PyDenseModelBitAcc``, lava-nc 0.10.0), restated as pure functions so that the
emulator, spikeloop's own Lava process models and the torch side share one update
(:func:`spikeloop.core.neuron.cuba_step`). Register forms carry their width in the
name and never leave ``spikeloop.runtime``.

Scaling: a population's real-valued state ``x`` is held as the integer ``x * scale``.
Its incoming Dense weights, threshold and bias are chosen on that scale::

    (w_lava @ s_int) << (weight_exp + 6)  ==  scale * (w @ s) / source_scale
    vth_17bit << 6                        ==  scale * vth
    bias_mant_13bit << bias_exp_3bit      ==  scale * bias

where ``source_scale`` is 1 for binary spikes and the graded payload scale for the
host input. Weights use the 8-bit signed mantissa grid ``w_lava = 2 * m``, ``|m| <=
127`` (Lava's mixed-sign Dense truncates the lowest bit), which is the grid of
:func:`spikeloop.train.layers.fake_quantize`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spikeloop.core.errors import QuantizationError
from spikeloop.core.neuron import Arithmetic
from spikeloop.runtime.plan import INPUT, NetworkPlan

DECAY_SHIFT = 12
DECAY_UNITY = 1 << DECAY_SHIFT
DS_OFFSET = 1  # Loihi adds 1 to du (current decay), 0 to dv
DM_OFFSET = 0
ACT_SHIFT = 6
VTH_SHIFT = 6
UV_BITS = 24
MAX_UV = 1 << (UV_BITS - 1)
VTH_MANT_MAX = (1 << 17) - 1
BIAS_MANT_MAX = (1 << 12) - 1  # signed 13-bit
BIAS_EXP_MAX = 7
WEIGHT_LEVELS = 127
WEIGHT_EXP_RANGE = (-8, 7)


def _decay(x, d_eff):
    """``x * (4096 - d) >> 12`` rounding toward zero, as Lava does it (sign * (|x*f| >> 12)).

    ``d_eff`` is one register value or one per neuron. The product of a 24-bit state and a
    12-bit factor is below 2**36, so float64 holds it and the power-of-two division
    exactly; casting truncates toward zero like Lava (also for factors 0 and 4096).
    """
    x = np.asarray(x)
    if np.ndim(d_eff) == 0:  # one decay per population: the common case, with its shortcuts
        factor = DECAY_UNITY - int(d_eff)
        if factor == 0:
            return np.zeros(x.shape, np.int64)
        if factor == DECAY_UNITY:
            return x.astype(np.int64)
        return (x * (factor / DECAY_UNITY)).astype(np.int64)
    factor = DECAY_UNITY - np.asarray(d_eff, np.int64)
    return (x * (factor / DECAY_UNITY)).astype(np.int64)


@dataclass(frozen=True)
class LoihiArithmetic(Arithmetic):
    """Integer arithmetic of Loihi's CUBA-LIF; ``du``/``dv`` are the 12-bit registers."""

    name: str = "loihi"

    def decay_u(self, u, du_12bit):
        return _decay(u, du_12bit + DS_OFFSET)

    def decay_v(self, v, dv_12bit):
        return _decay(v, dv_12bit + DM_OFFSET)

    def synaptic_input(self, a_in):
        return np.left_shift(np.asarray(a_in, dtype=np.int64), ACT_SHIFT)

    def wrap_u(self, u):
        if u.size == 0 or (u.max() <= MAX_UV and u.min() > -MAX_UV):
            return u  # the common case: nothing to wrap
        # Lava wraps the 24-bit current; the second test deliberately uses the unwrapped value.
        wrapped = np.where(u > MAX_UV, u - 2 * MAX_UV, u)
        return np.where(wrapped <= -MAX_UV, u + 2 * MAX_UV, wrapped)

    def clip_v(self, v):
        return np.clip(v, -MAX_UV + 1, MAX_UV - 1)


LOIHI = LoihiArithmetic()


def effective_bias(bias_mant_13bit, bias_exp_3bit):
    """``bias_mant << bias_exp`` as Lava's ``scale_bias``."""
    m = np.asarray(bias_mant_13bit, dtype=np.int64)
    e = np.asarray(bias_exp_3bit, dtype=np.int64)
    return np.where(e >= 0, np.left_shift(m, np.maximum(e, 0)), np.right_shift(m, np.maximum(-e, 0)))


def lava_effective_weights(weights: np.ndarray, num_weight_bits: int = 8) -> np.ndarray:
    """The weights Lava's bit-accurate Dense really uses: sign-mode clip, then truncation."""
    w = np.asarray(weights).astype(np.int64)
    if w.min() >= 0:
        mode = "exc"
    elif w.max() <= 0:
        mode = "inh"
    else:
        mode = "mixed"
    if mode == "inh":
        w = -w
    mixed = int(mode == "mixed")
    w = np.clip(w, -(1 << 8) * mixed, (1 << 8) - 1)
    drop = 8 - num_weight_bits + mixed
    w = (w >> drop) << drop
    return -w if mode == "inh" else w


def dense_accumulate(w_eff: np.ndarray, s_in: np.ndarray, weight_exp: int, conn=None) -> np.ndarray:
    """Dendritic sum of Lava's bit-accurate Dense: ``(w @ s) << exp`` (arithmetic >> if < 0).

    ``w_eff`` may be given as float64: integer sums below 2**53 are exact there, and BLAS
    is far faster than numpy's integer matmul. ``s_in`` is ``(n,)`` or ``(batch, n)``
    (integer sums: the same numbers in any order). ``conn``: the plan's connection, whose
    map (a convolution kernel's, where it has one) ``w_eff`` is applied as.
    """
    if conn is not None and conn.conv is not None:
        acc = np.rint(conn.apply(np.asarray(w_eff, np.float64), s_in)).astype(np.int64)
    else:
        s = np.asarray(s_in, dtype=w_eff.dtype)
        acc = (w_eff @ s if s.ndim == 1 else s @ w_eff.T).astype(np.int64)
    return np.left_shift(acc, weight_exp) if weight_exp > 0 else np.right_shift(acc, -weight_exp)


@dataclass
class FixedPopulation:
    """Register values of one population and the scale they were chosen on."""

    name: str
    scale: float
    du_12bit: int | np.ndarray
    """one register for the population, or one per neuron (per-neuron time constants)"""
    dv_12bit: int | np.ndarray
    bias_mant: np.ndarray
    bias_exp: np.ndarray
    vth_17bit: int | None

    @property
    def vth_eff(self) -> int | None:
        return None if self.vth_17bit is None else self.vth_17bit << VTH_SHIFT

    @property
    def bias_eff(self) -> np.ndarray:
        return effective_bias(self.bias_mant, self.bias_exp)


@dataclass
class FixedConnection:
    name: str
    weights: np.ndarray
    """what Lava's Dense receives: 8-bit-mantissa integers (int32)"""
    weight_exp: int
    num_weight_bits: int = 8

    @property
    def w_eff(self) -> np.ndarray:
        return lava_effective_weights(self.weights, self.num_weight_bits)


@dataclass
class FixedPlan:
    """The fixed-point registers of a :class:`NetworkPlan`, plus the quantization error."""

    populations: dict[str, FixedPopulation]
    connections: dict[str, FixedConnection]
    input_scale: float
    errors: dict[str, dict] = field(default_factory=dict)


def _decay_register(name: str, what: str, d: np.ndarray, offset: int,
                    top: int = DECAY_UNITY - 1) -> int | np.ndarray:
    """The 12-bit register(s) of a decay: one int if every neuron shares it, else one per neuron.

    Per-neuron decays run on spikeloop's own neuron model (Lava's LIF holds one per
    population); they are kept per neuron, never replaced by one of them.
    """
    d = np.asarray(d, dtype=np.float64).reshape(-1)
    with np.errstate(over="ignore", invalid="ignore"):
        regf = np.rint(d * DECAY_UNITY) - offset
    bad = ~np.isfinite(regf) | (regf < 0) | (regf > top)
    reg = np.where(bad, 0, regf).astype(np.int64)
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        lo, hi = offset / DECAY_UNITY, (top + offset) / DECAY_UNITY
        where = "" if np.all(d == d[0]) else f" (neuron {i})"
        raise QuantizationError(
            f"population {name!r}: {what}={d[i]:g}{where} is outside what the 12-bit register "
            f"represents [{lo:g}, {hi:g}] (tau = dt/{what} too {'long' if d[i] < lo else 'short'})")
    return int(reg[0]) if np.all(reg == reg[0]) else reg


def _state_bound(plan: NetworkPlan, name: str, src_max: dict[str, float]) -> tuple[float, float]:
    """Worst-case |u| and |v| of a population over one window (no overflow is possible)."""
    p = plan.population(name)
    step_in = np.zeros(p.size)
    for c in plan.incoming(name):
        step_in += c.row_abs_sum() * src_max[c.src]
    # The slowest decay of the population bounds every neuron's state (a valid bound, not a
    # replacement of the per-neuron decays, which the backends run as they are).
    du = float(np.min(p.du))
    dv = float(np.min(p.dv))
    steps = plan.period
    u_bound = float(step_in.max()) * (min(1.0 / du, steps) if du > 0 else steps)
    per_v = u_bound + float(np.abs(p.bias).max(initial=0.0))
    v_bound = per_v * (min(1.0 / dv, steps) if dv > 0 else steps)
    if p.spiking:
        v_bound = max(v_bound, abs(p.vth))
    return u_bound, v_bound


def threshold_register(name: str, vth: float, scale: float) -> int:
    """The 17-bit threshold mantissa of ``vth`` on ``scale`` (``vth_17bit << 6 == scale * vth``)."""
    value = scale * vth / (1 << VTH_SHIFT)
    if not np.isfinite(value):
        raise QuantizationError(f"population {name!r}: threshold {vth:g} on scale {scale:g} is not finite")
    reg = int(round(value))
    if not 1 <= reg <= VTH_MANT_MAX:
        raise QuantizationError(f"population {name!r}: threshold {vth:g} maps to {reg}, outside the "
                                f"17-bit register [1, {VTH_MANT_MAX}]")
    return reg


def quantize_plan(plan: NetworkPlan) -> FixedPlan:
    """Choose per-population scales and registers; raise :class:`QuantizationError` if impossible.

    The scale is the largest for which no state can overflow 24 bits within a window
    and the threshold and bias fit their registers, rounded so that the first incoming
    connection's weights land exactly on the 8-bit grid ``max|w| / 127``.
    """
    # Graded host input carries integer payloads on the encoding's grid; without an encoding
    # (a peer's graph) the input is binary spikes.
    sigma_in = plan.encoding.scale if plan.input_graded else 1.0
    in_max = float(plan.encoding.peak) if plan.input_graded else 1.0
    src_scale = {INPUT: sigma_in} | {p.name: 1.0 for p in plan.populations}
    src_max = {INPUT: in_max} | {p.name: 1.0 for p in plan.populations}
    pops, conns, errors = {}, {}, {}
    for p in plan.populations:
        incoming = plan.incoming(p.name)
        du12 = _decay_register(p.name, "du", p.du, DS_OFFSET)
        # dv = 1 (a memoryless Threshold node) needs the register value 4096, which only
        # spikeloop's own neuron model takes (Lava's LIF register is 12 bits).
        dv12 = _decay_register(p.name, "dv", p.dv, DM_OFFSET, top=DECAY_UNITY)
        u_bound, v_bound = _state_bound(plan, p.name, src_max)
        limits = [(MAX_UV - 1) / max(u_bound, 1e-30), (MAX_UV - 1) / max(v_bound, 1e-30)]
        if p.spiking:
            limits.append(VTH_MANT_MAX * (1 << VTH_SHIFT) / p.vth)
        bmax = float(np.abs(p.bias).max(initial=0.0))
        if bmax > 0:
            limits.append((BIAS_MANT_MAX << BIAS_EXP_MAX) / bmax)
        sigma_max = min(limits)
        if p.bias_source:  # no inputs: its scale is set by its bias and threshold alone
            sigma = 2.0 ** np.floor(np.log2(sigma_max))
            pops[p.name], errors[p.name] = _bias_only(p, sigma, du12, dv12)
            continue
        if not incoming or all(not np.any(c.weight) for c in incoming):
            raise QuantizationError(
                f"population {p.name!r}: every incoming weight is 0 (no non-zero connection reaches it); "
                "fixed point chooses the population's scale from its incoming weights, so it cannot be "
                "quantized. Remove the population or train its weights")
        primary = max(incoming, key=lambda c: np.abs(c.weight).max() / src_scale[c.src])
        wmax = float(np.abs(primary.weight).max())
        # scale(exp) = src * 127 * 2^(exp+7) / wmax; take the largest exponent that fits.
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            base = src_scale[primary.src] * WEIGHT_LEVELS * 2.0 ** 7 / wmax
            ratio = np.log2(sigma_max / base) if base > 0 else np.nan
        if not (np.isfinite(ratio) and np.isfinite(sigma_max) and sigma_max > 0):
            raise QuantizationError(
                f"population {p.name!r}: no register scale fits (max |w| = {wmax:g}, threshold "
                f"{p.vth!r}, max |bias| = {bmax:g}): the values span more than Loihi's registers represent")
        exp = int(np.floor(ratio))
        exp = min(exp, WEIGHT_EXP_RANGE[1])
        if exp < WEIGHT_EXP_RANGE[0]:
            raise QuantizationError(
                f"population {p.name!r}: needs weight exponent {exp} < {WEIGHT_EXP_RANGE[0]} to keep "
                f"its state within 24 bits (max |w| = {wmax:g}); the weights are too large for the "
                "threshold/bias range")
        sigma = base * 2.0 ** exp
        for c in incoming:
            target = sigma * c.weight / src_scale[c.src]  # = w_lava * 2^(exp + 6)
            if c is primary:
                cexp = exp
            else:
                peak = float(np.abs(target).max())
                cexp = int(np.ceil(np.log2(peak / (2 * WEIGHT_LEVELS * 2 ** 6)))) if peak > 0 else 0
                cexp = int(np.clip(cexp, *WEIGHT_EXP_RANGE))
            m = np.clip(np.rint(target / 2.0 ** (cexp + 7)), -WEIGHT_LEVELS, WEIGHT_LEVELS)
            conns[c.name] = FixedConnection(c.name, (2 * m).astype(np.int32), cexp)
            w_back = 2 * m * 2.0 ** (cexp + 6) * src_scale[c.src] / sigma
            errors.setdefault(p.name, {})[f"weight_rel_err[{c.name}]"] = float(
                np.abs(w_back - c.weight).max() / max(np.abs(c.weight).max(), 1e-30))
        pops[p.name], own = _bias_only(p, sigma, du12, dv12)
        errors.setdefault(p.name, {}).update(own)
    return FixedPlan(pops, conns, sigma_in, errors)


def _bias_only(p, sigma: float, du12, dv12) -> tuple["FixedPopulation", dict]:
    """A population's registers besides its weights (threshold, bias, decays) on ``sigma``, and their errors."""
    errors = {}
    vth17 = None
    if p.spiking:
        vth17 = threshold_register(p.name, p.vth, sigma)
        errors["vth_rel_err"] = abs(vth17 * 64 / sigma - p.vth) / abs(p.vth)
    b = sigma * np.asarray(p.bias, dtype=np.float64)
    bexp = np.zeros(p.size, np.int64)
    while np.any(np.abs(np.rint(b / 2.0 ** bexp)) > BIAS_MANT_MAX) and bexp.max() <= BIAS_EXP_MAX:
        bexp = np.where(np.abs(np.rint(b / 2.0 ** bexp)) > BIAS_MANT_MAX, bexp + 1, bexp)
    if bexp.max() > BIAS_EXP_MAX:
        raise QuantizationError(f"population {p.name!r}: bias {float(np.abs(p.bias).max()):g} does not fit "
                                f"13-bit mantissa with exponent <= {BIAS_EXP_MAX}")
    bmant = np.rint(b / 2.0 ** bexp).astype(np.int64)
    errors["bias_abs_err"] = float(np.abs(effective_bias(bmant, bexp) / sigma - p.bias).max(initial=0.0))
    errors["du_abs_err"] = float(np.abs((du12 + DS_OFFSET) / DECAY_UNITY - p.du).max())
    errors["dv_abs_err"] = float(np.abs((dv12 + DM_OFFSET) / DECAY_UNITY - p.dv).max())
    errors["scale"] = sigma
    return FixedPopulation(p.name, sigma, du12, dv12, bmant, bexp, vth17), errors
