"""Tests written from the mutation run of the core modules (``make mutation``, BENCHMARKS.md).

Each test pins one behaviour of a core module with hand-computed values or exact
equalities (no mocks), so that a mutant of that behaviour fails it. The file imports
neither torch nor Lava except in the ``compiler`` tests, which import the compiler
lazily: ``-k "not compiler"`` runs in a few seconds, as the per-mutant command needs.
Its tests need no conftest fixture (the mutation run uses ``--noconftest``).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from spikeloop.core.errors import QuantizationError
from spikeloop.core.neuron import (FLOAT, HARD, SOFT, cuba_step, first_offender, heaviside, neuron_fault,
                                   neuron_kind)
from spikeloop.runtime import fixed_point as fp
from spikeloop.runtime.counters import OpCounts, fanout, neuron_activity, synops
from spikeloop.runtime.plan import INPUT, Connection, NetworkPlan, Population


# ============================================================================ neuron contract
def test_neuron_float_cuba_step_hard_and_soft_reset_by_hand():
    """cuba_step in float: decays, input, bias, strict threshold (v == vth does not spike), both resets."""
    u0 = np.array([0.5, 0.5, 0.0, -1.0])
    v0 = np.array([2.0, 2.0, 0.0, 0.0])
    a = np.array([1.0, 1.0, 0.0, 0.0])
    bias = np.array([0.125, -0.625, 2.0, 0.0])
    # u = u0 * (1 - 0.25) + a = [1.375, 1.375, 0, -0.75]
    # v = v0 * (1 - 0.5) + u + bias = [2.5, 1.75, 2.0, -0.75]
    u, v, s, vpre = cuba_step(u0, v0, a, du=0.25, dv=0.5, bias=bias, vth=2.0)
    np.testing.assert_array_equal(u, [1.375, 1.375, 0.0, -0.75])
    np.testing.assert_array_equal(vpre, [2.5, 1.75, 2.0, -0.75])
    np.testing.assert_array_equal(s, [True, False, False, False])
    np.testing.assert_array_equal(v, [0.0, 1.75, 2.0, -0.75])
    u2, v2, s2, vpre2 = cuba_step(u0, v0, a, du=0.25, dv=0.5, bias=bias, vth=2.0, reset=SOFT)
    np.testing.assert_array_equal(u2, u)
    np.testing.assert_array_equal(vpre2, vpre)
    np.testing.assert_array_equal(s2, s)
    np.testing.assert_array_equal(v2, [0.5, 1.75, 2.0, -0.75])


def test_neuron_non_spiking_returns_voltage_twice_and_no_spikes():
    """vth=None: a leaky integrator, (u, v, None, v), no threshold or reset applied."""
    u, v, s, vpre = cuba_step(np.array([4.0]), np.array([8.0]), np.array([1.0]), du=0.5, dv=0.25,
                              bias=np.array([0.5]), vth=None)
    np.testing.assert_array_equal(u, [3.0])       # 4 * 0.5 + 1
    np.testing.assert_array_equal(v, [9.5])       # 8 * 0.75 + 3 + 0.5
    assert s is None
    np.testing.assert_array_equal(vpre, [9.5])


def test_neuron_unknown_reset_mode_raises_and_heaviside_is_strict():
    """An unknown reset mode is an error; the hard threshold is x > 0 (0 does not spike)."""
    with pytest.raises(ValueError):
        cuba_step(np.zeros(1), np.zeros(1), np.ones(1), du=1.0, dv=0.0, bias=np.zeros(1), vth=0.5,
                  reset="zero")
    np.testing.assert_array_equal(heaviside(np.array([-1.0, 0.0, 1e-12])), [False, False, True])
    assert HARD == "hard" and SOFT == "soft"
    assert FLOAT.decay_u(np.array([8.0]), 0.25)[0] == 6.0
    assert FLOAT.decay_v(np.array([8.0]), 0.75)[0] == 2.0
    assert FLOAT.synaptic_input(3.5) == 3.5 and FLOAT.wrap_u(7.0) == 7.0 and FLOAT.clip_v(1e9) == 1e9


def test_neuron_first_offender_names_value_and_neuron():
    """first_offender: '[]' for no values, the value alone when all are equal, else with its neuron."""
    assert first_offender([]) == "[]"
    assert first_offender([3.0]) == "3"
    assert first_offender([5.0, 5.0, 5.0]) == "5"
    assert first_offender([5.0, 5.0], ok=[True, False]) == "5"
    assert first_offender([1.0, 2.0, 3.0], ok=[True, False, False]) == "2 (neuron 1 of 3)"
    assert first_offender([1.0, 2.0]) == "1 (neuron 0 of 2)"
    assert first_offender([1.0, 2.0], ok=[True, True]) == "1 (neuron 0 of 2)"
    assert first_offender(np.array([[1.0, 2.0], [4.0, 8.0]]), ok=np.array([[True, True], [True, False]])) \
        == "8 (neuron 3 of 4)"


def test_neuron_kind_names_dynamics():
    """neuron_kind: du == 1 everywhere means no current state, dv == 0 everywhere means no leak."""
    assert neuron_kind(1.0, 0.0, True) == "IF"
    assert neuron_kind(1.0, 0.5, True) == "LIF"
    assert neuron_kind(0.5, 0.5, True) == "CubaLIF"
    assert neuron_kind(0.5, 0.0, True) == "CubaLIF"
    assert neuron_kind(1.0, 0.5, False) == "LI"
    assert neuron_kind(1.0, 0.0, False) == "LI"
    assert neuron_kind(0.5, 0.5, False) == "CubaLI"
    assert neuron_kind([1.0, 0.5], 0.5, True) == "CubaLIF"
    assert neuron_kind([1.0, 1.0], [0.0, 0.1], True) == "LIF"
    assert neuron_kind([1.0, 1.0], [0.0, 0.0], True) == "IF"
    assert neuron_kind([1.0, 0.9], 0.5, False) == "CubaLI"


@pytest.mark.parametrize("kind,du,dv,vth", [
    ("LIF", 1.0, 1.0, 1.0), ("LIF", 1.0, 1e-9, 0.1), ("CubaLIF", 1.0, 1.0, 2.0), ("CubaLIF", 1e-9, 0.5, 1.0),
    ("IF", 1.0, 0.0, 1.0), ("LI", 1.0, 0.5, None), ("CubaLI", 0.25, 1.0, None), ("CubaLI", 1.0, 1.0, None),
    ("LIF", [1.0, 1.0], [0.5, 1.0], [1.0, 0.5]), ("CubaLIF", [0.5, 1.0], [1.0, 0.1], 3.0),
])
def test_neuron_fault_accepts_every_valid_population(kind, du, dv, vth):
    """The contract's table: the bounds du, dv in (0, 1] (1 included), du = 1 and dv = 0 exactly."""
    assert neuron_fault(kind, du, dv, vth) is None


@pytest.mark.parametrize("kind,du,dv,vth,overshoot,expect", [
    ("Izhikevich", 1.0, 0.5, 1.0, False, "unknown neuron kind 'Izhikevich'"),
    ("LIF", "a", 0.5, 1.0, False, "needs numeric decays"),
    ("LIF", None, 0.5, 1.0, False, "needs finite decays, got du=nan"),
    ("LIF", 1.0, np.nan, 1.0, False, "finite decays, got du=1, dv=nan"),
    ("CubaLIF", [0.5, np.inf], 0.5, 1.0, False, "finite decays, got du=inf (neuron 1 of 2), dv=0.5"),
    ("LIF", [1.0, 0.5, 1.0], 0.5, 1.0, False, "du must be 1, got 0.5 (neuron 1 of 3); use CubaLIF"),
    ("IF", 0.5, 0.0, 1.0, False, "use CubaLIF for du < 1"),
    ("LI", 0.5, 0.5, None, False, "use CubaLI for du < 1"),
    ("CubaLIF", 0.0, 0.5, 1.0, False, "du must lie in (0, 1] (tau_syn >= dt > 0), got 0"),
    ("CubaLIF", 1.5, 0.5, 1.0, False, "du must lie in (0, 1]"),
    ("CubaLI", [0.5, -0.5], 0.5, None, False, "got -0.5 (neuron 1 of 2)"),
    ("IF", 1.0, 0.25, 1.0, False, "dv must be 0, got 0.25; use LIF"),
    ("IF", 1.0, [0.0, 0.25], 1.0, True, "dv must be 0, got 0.25 (neuron 1 of 2)"),
    ("LIF", 1.0, 0.0, 1.0, False, "dv must lie in (0, 1] (tau_mem >= dt > 0), got 0; use IF for dv = 0"),
    ("LIF", 1.0, 1.5, 1.0, False, "got 1.5"),
    ("LI", 1.0, -0.5, None, True, "got -0.5"),
    ("LIF", 1.0, 0.5, 0.0, False, "needs a positive threshold vth, got 0.0"),
    ("CubaLIF", 0.5, 0.5, None, False, "needs a positive threshold vth, got None"),
    ("IF", 1.0, 0.0, [1.0, -1.0], False, "positive threshold"),
    ("LIF", 1.0, 0.5, "high", False, "positive threshold vth, got 'high'"),
    ("LI", 1.0, 0.5, 1.0, False, "a LI population does not spike: vth must be None, got 1.0"),
    ("CubaLI", 0.5, 0.5, 0.0, False, "vth must be None"),
])
def test_neuron_fault_names_each_broken_rule(kind, du, dv, vth, overshoot, expect):
    """Each rule of the contract's table is checked, in order, and the fault names the first offender."""
    fault = neuron_fault(kind, du, dv, vth, overshoot=overshoot)
    assert fault is not None and expect in fault, fault


def test_neuron_fault_overshoot_lets_decays_exceed_one_only():
    """overshoot: du, dv > 1 are accepted (a NIR time constant shorter than dt), 0 and below still not."""
    assert neuron_fault("CubaLIF", 1.5, 2.0, 1.0, overshoot=True) is None
    assert neuron_fault("LI", 1.0, 3.0, None, overshoot=True) is None
    assert neuron_fault("CubaLIF", 1.5, 2.0, 1.0) is not None
    assert neuron_fault("CubaLIF", 0.0, 2.0, 1.0, overshoot=True) is not None
    assert neuron_fault("CubaLIF", 1.5, 0.0, 1.0, overshoot=True) is not None
    assert neuron_fault("LIF", 1.5, 0.5, 1.0, overshoot=True) is not None  # LIF: du must be exactly 1


def test_neuron_cuba_step_signature_and_unknown_reset_modes():
    """u, v, a_in may be passed by name; the constants are keyword-only; any unknown reset mode raises
    (whatever its alphabetical place beside 'hard' and 'soft')."""
    u, v, s, _ = cuba_step(u=np.zeros(1), v=np.zeros(1), a_in=np.ones(1), du=1.0, dv=0.0, bias=np.zeros(1),
                           vth=0.5)
    assert s.tolist() == [True] and v.tolist() == [0.0]
    with pytest.raises(TypeError):
        cuba_step(np.zeros(1), np.zeros(1), np.ones(1), 1.0, 0.0, np.zeros(1), 0.5)
    for mode in ("adaptive", "linear", "zero", "HARD"):
        with pytest.raises(ValueError):
            cuba_step(np.zeros(1), np.zeros(1), np.ones(1), du=1.0, dv=0.0, bias=np.zeros(1), vth=0.5, reset=mode)


def test_neuron_float_arithmetic_is_a_frozen_value():
    """FloatArithmetic is a frozen dataclass: instances compare equal, and FLOAT cannot be changed."""
    from dataclasses import FrozenInstanceError

    from spikeloop.core.neuron import FloatArithmetic

    assert FloatArithmetic() == FLOAT and hash(FloatArithmetic()) == hash(FLOAT)
    with pytest.raises(FrozenInstanceError):
        FLOAT.name = "other"


def test_neuron_kind_and_fault_outside_the_unit_interval():
    """Decays past the contract's bounds (overshoot du > 1, a negative dv) are named by their value:
    du = 1.5 still has a current state, dv < 0 is not 'no leak', an IF with dv < 0 is a fault."""
    assert neuron_kind(1.5, 0.5, True) == "CubaLIF"
    assert neuron_kind(1.5, 0.5, False) == "CubaLI"
    assert neuron_kind(1.0, -0.5, True) == "LIF"
    assert neuron_fault("IF", 1.0, -0.5, 1.0) is not None
    assert "got 2 (neuron 0 of 2)" in neuron_fault("LIF", [2.0, 0.5], 0.5, 1.0)
    assert "got -0.5 (neuron 0 of 2)" in neuron_fault("IF", 1.0, [-0.5, 0.25], 1.0)
    assert first_offender([np.nan]) == "nan"
    assert first_offender([np.nan], ok=[False]) == "nan"


# ============================================================================ counters
def test_counters_fanout_synops_and_activity_by_hand():
    """fanout = non-zero weights per input column; synops = fan-out of the non-zero inputs; activity."""
    w = np.array([[1.0, 0.0, -2.0], [0.5, 0.0, 0.0]])
    fan = fanout(w)
    np.testing.assert_array_equal(fan, [2, 0, 1])
    assert fan.dtype == np.int64
    assert synops(fan, np.array([3.0, 1.0, 0.0])) == 2
    assert synops(fan, np.array([0.0, 1.0, -1.0])) == 1
    assert synops(fan, np.array([True, False, True])) == 3
    assert isinstance(synops(fan, np.zeros(3)), int) and synops(fan, np.zeros(3)) == 0
    u = np.array([0.0, 1.0, 0.0, 0.0, 0.0])
    v = np.array([0.0, 0.0, -2.0, 0.0, 0.0])
    s = np.array([False, False, False, True, False])
    assert neuron_activity(u, v, s) == 3
    assert neuron_activity(u, v, None) == 2
    assert neuron_activity(np.zeros(2), np.zeros(2), np.array([True, True])) == 2
    # a negative current or a positive voltage is activity too
    assert neuron_activity(np.array([-1.0, 0.0, 0.0]), np.array([0.0, 3.0, 0.0]), None) == 2
    assert neuron_activity(np.array([-1, 0]), np.array([0, 0]), np.array([False, False])) == 1
    assert neuron_activity(np.array([1.0, 0.0]), np.array([2.0, 0.0]), None) == 1   # both non-zero: one active


def test_counters_per_decision_and_to_dict():
    """OpCounts.per_decision divides by the decisions (at least 1) and sorts layers; to_dict copies all."""
    c = OpCounts(steps=12, decisions=4, synops={"b": 8, "a": 2}, graded={"a": True, "b": False},
                 updates={"h": 40}, active={"h": 10}, spikes={"h": 6})
    d = c.per_decision()
    assert d == {"synops": {"a": 0.5, "b": 2.0}, "updates": {"h": 10.0}, "active": {"h": 2.5},
                 "spikes": {"h": 1.5}, "steps": 3.0, "graded": {"a": True, "b": False}}
    assert list(d["synops"]) == ["a", "b"]
    assert OpCounts(steps=13, decisions=2).per_decision()["steps"] == 6.5
    assert OpCounts(steps=13, decisions=2, spikes={"h": 3}).per_decision()["spikes"] == {"h": 1.5}
    zero = OpCounts(steps=5, synops={"a": 3}).per_decision()
    assert zero["steps"] == 5.0 and zero["synops"] == {"a": 3.0}
    assert c.to_dict() == {"steps": 12, "decisions": 4, "synops": {"b": 8, "a": 2},
                           "graded": {"a": True, "b": False}, "updates": {"h": 40}, "active": {"h": 10},
                           "spikes": {"h": 6}}
    assert c.to_dict()["synops"] is not c.synops
    assert OpCounts().to_dict() == {"steps": 0, "decisions": 0, "synops": {}, "graded": {}, "updates": {},
                                    "active": {}, "spikes": {}}


# ============================================================================ fixed point
def test_fixed_point_constants_are_loihis():
    """The register widths and shifts of Loihi's CUBA-LIF (lava-nc 0.10.0 bit-accurate models)."""
    assert (fp.DECAY_SHIFT, fp.DECAY_UNITY, fp.DS_OFFSET, fp.DM_OFFSET) == (12, 4096, 1, 0)
    assert (fp.ACT_SHIFT, fp.VTH_SHIFT, fp.UV_BITS, fp.MAX_UV) == (6, 6, 24, 8388608)
    assert (fp.VTH_MANT_MAX, fp.BIAS_MANT_MAX, fp.BIAS_EXP_MAX) == (131071, 4095, 7)
    assert (fp.WEIGHT_LEVELS, fp.WEIGHT_EXP_RANGE) == (127, (-8, 7))


def test_fixed_point_loihi_arithmetic_is_a_frozen_value():
    """LoihiArithmetic is a frozen dataclass like FloatArithmetic: equal instances, LOIHI immutable."""
    from dataclasses import FrozenInstanceError

    assert fp.LoihiArithmetic() == fp.LOIHI and fp.LOIHI.name == "loihi"
    with pytest.raises(FrozenInstanceError):
        fp.LOIHI.name = "other"


def test_fixed_point_decay_truncates_toward_zero():
    """x * (4096 - d) >> 12 rounds toward zero (sign * (|x f| >> 12)), for one or per-neuron decays."""
    x = np.array([1001, -1001, 4096, 3])
    np.testing.assert_array_equal(fp._decay(x, 1024), [750, -750, 3072, 2])
    out = fp._decay(x, 0)
    np.testing.assert_array_equal(out, x)
    assert out.dtype == np.int64
    out = fp._decay(x, 4096)
    np.testing.assert_array_equal(out, [0, 0, 0, 0])
    assert out.dtype == np.int64 and out.shape == (4,)
    np.testing.assert_array_equal(fp._decay(x, 1), [1000, -1000, 4095, 2])
    np.testing.assert_array_equal(fp._decay(x, 4095), [0, 0, 1, 0])
    np.testing.assert_array_equal(fp._decay(np.array([1001, -1001, 4096, 4096]), np.array([0, 1024, 4096, 1])),
                                  [1001, -750, 0, 4095])
    assert fp._decay(np.array([1001, -1001]), np.array([1024, 1024])).dtype == np.int64


def test_fixed_point_loihi_arithmetic_by_hand():
    """Loihi adds 1 to du (not to dv), shifts the input by 6, wraps u at 24 bits and clips v."""
    A = fp.LOIHI
    np.testing.assert_array_equal(A.decay_u(np.array([4096, -4095]), 1023), [3072, -3071])
    np.testing.assert_array_equal(A.decay_v(np.array([4096, -4095]), 1024), [3072, -3071])
    np.testing.assert_array_equal(A.decay_u(np.array([4096]), np.array([1023])), [3072])
    np.testing.assert_array_equal(A.decay_v(np.array([4096]), np.array([1024])), [3072])
    si = A.synaptic_input(np.array([3, -2, 0]))
    np.testing.assert_array_equal(si, [192, -128, 0])
    assert si.dtype == np.int64
    M = fp.MAX_UV
    u = np.array([M, M + 5, -M, -M + 1, -M - 5, 7])
    np.testing.assert_array_equal(A.wrap_u(u), [M, -M + 5, M, -M + 1, M - 5, 7])
    np.testing.assert_array_equal(A.wrap_u(np.array([M + 1])), [-M + 1])
    np.testing.assert_array_equal(A.wrap_u(np.array([-M])), [M])
    np.testing.assert_array_equal(A.wrap_u(np.array([-M - 5])), [M - 5])   # only below the range
    np.testing.assert_array_equal(A.wrap_u(np.array([-M + 1, M])), [-M + 1, M])
    assert A.wrap_u(np.array([], np.int64)).size == 0
    np.testing.assert_array_equal(A.clip_v(np.array([M, -M, M - 1, -M + 1, 5])), [M - 1, -M + 1, M - 1, -M + 1, 5])


def test_fixed_point_loihi_cuba_step_by_hand():
    """One fixed-point step through the contract: ((u * 3071) >> 12) + (a << 6), then v and the reset."""
    u, v, s, vpre = cuba_step(np.array([4096, 0]), np.array([8192, 100]), np.array([2, 1]), du=1023, dv=2048,
                              bias=np.array([10, 0]), vth=12000, arith=fp.LOIHI)
    # u = 4096 * 3072 / 4096 + 128 = 3200;  0 + 64 = 64
    # v = 8192 * 2048 / 4096 + 3200 + 10 = 7306;  50 + 64 = 114
    np.testing.assert_array_equal(u, [3200, 64])
    np.testing.assert_array_equal(vpre, [7306, 114])
    np.testing.assert_array_equal(s, [False, False])
    u, v, s, vpre = cuba_step(np.array([4096]), np.array([8192]), np.array([2]), du=1023, dv=2048,
                              bias=np.array([10]), vth=7305, arith=fp.LOIHI)
    np.testing.assert_array_equal(s, [True])
    np.testing.assert_array_equal(v, [0])


def test_fixed_point_effective_bias_and_weights():
    """bias_mant << exp (>> for negative exponents, rounding down); Lava's sign-mode weight truncation."""
    np.testing.assert_array_equal(fp.effective_bias([3, 12, -13, 5, -3], [2, -2, -2, 0, 3]), [12, 3, -4, 5, -24])
    assert fp.effective_bias(7, 1) == 14
    np.testing.assert_array_equal(fp.effective_bias([12, -12, 12], [-1, -1, 0]), [6, -6, 12])
    np.testing.assert_array_equal(fp.lava_effective_weights(np.array([0, 3, 300])), [0, 3, 255])
    np.testing.assert_array_equal(fp.lava_effective_weights(np.array([-3, -300, 0])), [-3, -255, 0])
    np.testing.assert_array_equal(fp.lava_effective_weights(np.array([3, -3, 300, -300, 0])), [2, -4, 254, -256, 0])
    np.testing.assert_array_equal(fp.lava_effective_weights(np.array([7, 255, 0]), num_weight_bits=6), [4, 252, 0])
    np.testing.assert_array_equal(fp.lava_effective_weights(np.array([-7, -255]), num_weight_bits=6), [-4, -252])
    np.testing.assert_array_equal(fp.lava_effective_weights(np.array([7, -7]), num_weight_bits=7), [4, -8])
    np.testing.assert_array_equal(fp.lava_effective_weights(np.array([2.9, 5.0])), [2, 5])
    np.testing.assert_array_equal(fp.lava_effective_weights(np.array([-3, 1])), [-4, 0])       # mixed signs
    np.testing.assert_array_equal(fp.lava_effective_weights(np.array([-1, 3])), [-2, 2])
    assert fp.lava_effective_weights(np.array([1, 2])).dtype == np.int64


def test_fixed_point_dense_accumulate_shifts_by_exponent():
    """(w @ s) << exp, arithmetic >> for a negative exponent (rounding down), exact in int64."""
    w = np.array([[2.0, 4.0], [-6.0, 1.0]])
    s = np.array([1, 1])
    np.testing.assert_array_equal(fp.dense_accumulate(w, s, 0), [6, -5])
    np.testing.assert_array_equal(fp.dense_accumulate(w, s, 2), [24, -20])
    np.testing.assert_array_equal(fp.dense_accumulate(w, s, -1), [3, -3])
    np.testing.assert_array_equal(fp.dense_accumulate(w, np.array([0, 3]), 1), [24, 6])
    assert fp.dense_accumulate(w, s, 1).dtype == np.int64


def test_fixed_point_register_records():
    """vth_eff = vth << 6; bias_eff = mant << exp; w_eff = Lava's truncated weights at their width."""
    p = fp.FixedPopulation("p", 2.0, 10, 20, np.array([3, -5]), np.array([1, 2]), 5)
    assert p.vth_eff == 320
    np.testing.assert_array_equal(p.bias_eff, [6, -20])
    assert fp.FixedPopulation("q", 1.0, 0, 0, np.zeros(1), np.zeros(1), None).vth_eff is None
    c = fp.FixedConnection("c", np.array([[3, -3]], np.int32), 2)
    np.testing.assert_array_equal(c.w_eff, [[2, -4]])
    np.testing.assert_array_equal(fp.FixedConnection("d", np.array([[7, 5]]), 0, 6).w_eff, [[4, 4]])


def test_fixed_point_decay_register_by_hand():
    """rint(d * 4096) - offset within [0, top]: one int when shared, one per neuron otherwise."""
    assert fp._decay_register("p", "du", np.array([0.25]), 1) == 1023
    assert isinstance(fp._decay_register("p", "du", np.array([0.25, 0.25]), 1), int)
    assert fp._decay_register("p", "dv", np.array([0.5]), 0) == 2048
    assert fp._decay_register("p", "dv", np.array([0.1]), 0) == 410
    assert fp._decay_register("p", "du", np.array([1 / 4096]), 1) == 0
    assert fp._decay_register("p", "dv", np.array([0.0]), 0) == 0
    assert fp._decay_register("p", "du", np.array([1.0]), 1) == 4095
    assert fp._decay_register("p", "dv", np.array([1.0]), 0, top=4096) == 4096
    reg = fp._decay_register("p", "dv", np.array([0.25, 0.5]), 0)
    np.testing.assert_array_equal(reg, [1024, 2048])
    assert reg.dtype == np.int64
    with pytest.raises(QuantizationError, match=r"population 'p': dv=1 is outside what the 12-bit register "
                                                r"represents \[0, 0\.999756\] \(tau = dt/dv too short\)"):
        fp._decay_register("p", "dv", np.array([1.0]), 0)
    with pytest.raises(QuantizationError, match=r"du=0 is outside .* \[0\.000244141, 1\] \(tau = dt/du too long\)"):
        fp._decay_register("p", "du", np.array([0.0]), 1)
    with pytest.raises(QuantizationError, match=r"du=0 \(neuron 0\) is outside"):
        fp._decay_register("p", "du", np.array([0.0, 0.5]), 1)
    with pytest.raises(QuantizationError, match=r"du=0 \(neuron 1\) is outside"):
        fp._decay_register("p", "du", np.array([0.5, 0.0, -1.0]), 1)
    reg = fp._decay_register("p", "dv", np.array([0.5, 0.25]), 0)            # falling: still per neuron
    np.testing.assert_array_equal(reg, [2048, 1024])
    for bad in (-np.inf, np.inf):
        with pytest.raises(QuantizationError):
            fp._decay_register("p", "du", np.array([bad]), 1)
    with pytest.raises(QuantizationError, match=r"dv=nan \(neuron 0\) is outside"):
        fp._decay_register("p", "dv", np.array([np.nan]), 0)
    with pytest.raises(QuantizationError, match=r"dv=1\.5 is outside .* \[0, 1\] \(tau = dt/dv too short\)"):
        fp._decay_register("p", "dv", np.array([1.5]), 0, top=4096)


def test_fixed_point_bias_registers_round_before_the_range_check():
    """A scaled bias takes the smallest exponent whose rounded mantissa fits 13 bits: 4095.6 rounds to 4096
    (exponent 1, mantissa 2048); -4095.2 rounds to -4095 (exponent 0)."""
    unit = Population("u", 2, 1.0, 0.5, np.array([4095.6, -4095.2]), None)
    fpop, err = fp._bias_only(unit, 1.0, 4095, 2048)
    np.testing.assert_array_equal(fpop.bias_exp, [1, 0])
    np.testing.assert_array_equal(fpop.bias_mant, [2048, -4095])
    assert err["bias_abs_err"] == pytest.approx(0.4, rel=1e-9)             # 4096 - 4095.6
    assert fpop.vth_17bit is None and err["scale"] == 1.0 and "vth_rel_err" not in err


def test_fixed_point_threshold_register_bounds():
    """round(scale * vth / 64) in [1, 2**17 - 1]; half to even; infinite or out-of-range values refused."""
    assert fp.threshold_register("p", 1.0, 6400.0) == 100
    assert fp.threshold_register("p", 1.0, 96.0) == 2      # 1.5 -> 2
    assert fp.threshold_register("p", 2.5, 64.0) == 2      # 2.5 -> 2
    assert fp.threshold_register("p", 1.0, 64.0) == 1
    assert fp.threshold_register("p", 131071.0, 64.0) == 131071
    for vth, scale in ((1.0, 20.0), (131072.0, 64.0), (1.0, math.inf), (-1.0, 64.0)):
        with pytest.raises(QuantizationError):
            fp.threshold_register("p", vth, scale)


# ---------------------------------------------------------------------------- a small plan, by hand
def small_plan(T=4, encoding=None, o_du=0.25, o_dv=0.1, h_bias=(0.25, -0.5)):
    """input(2) -> h (2 LIF, du 1, dv 0.5, vth 1) -> o (1 CubaLI); depths 1 and 2, period T + 2."""
    h = Population("h", 2, 1.0, 0.5, np.array(h_bias), 1.0)
    o = Population("o", 1, o_du, o_dv, np.zeros(1), None, kind="CubaLI")
    c1 = Connection("c1", INPUT, "h", np.array([[1.0, -2.0], [0.5, 0.0]]))
    c2 = Connection("c2", "h", "o", np.array([[3.0, -1.0]]))
    return NetworkPlan(2, [h, o], [c1, c2], "o", 1e-3, T, encoding)


def test_fixed_point_state_bound_by_hand():
    """|u| <= sum|w| * max input * min(1/du, steps); |v| <= (u bound + |bias|) * min(1/dv, steps), >= vth."""
    plan = small_plan()
    assert plan.period == 6
    src_max = {INPUT: 2.0, "h": 1.0, "o": 1.0}
    assert fp._state_bound(plan, "h", src_max) == (6.0, 13.0)   # 3*2*1; (6 + 0.5) * 2
    assert fp._state_bound(plan, "o", src_max) == (16.0, 96.0)  # 4 * 4; 16 * 6 (1/0.1 > 6 steps)
    big = NetworkPlan(2, [Population("h", 2, 1.0, 0.5, np.zeros(2), 100.0)],
                      [Connection("c1", INPUT, "h", np.array([[1.0, -2.0], [0.5, 0.0]]))], "h", 1e-3, 4)
    assert fp._state_bound(big, "h", {INPUT: 1.0, "h": 1.0}) == (3.0, 100.0)
    slow = NetworkPlan(2, [Population("h", 2, 0.0, 0.0, np.zeros(2), None)],
                       [Connection("c1", INPUT, "h", np.array([[1.0, -2.0], [0.5, 0.0]]))], "h", 1e-3, 4)
    assert slow.period == 5
    assert fp._state_bound(slow, "h", {INPUT: 1.0, "h": 1.0}) == (15.0, 75.0)  # 3 * 5; 15 * 5
    per = NetworkPlan(2, [Population("h", 2, [1.0, 0.5], [0.5, 0.25], np.array([0.0, -2.0]), None)],
                      [Connection("c1", INPUT, "h", np.array([[1.0, -2.0], [0.5, 0.0]]))], "h", 1e-3, 8)
    assert fp._state_bound(per, "h", {INPUT: 1.0, "h": 1.0}) == (6.0, 32.0)  # 3 * 2; (6 + 2) * 4
    third = NetworkPlan(1, [Population("h", 1, 0.3, 1.0, np.zeros(1), None)],
                        [Connection("c", INPUT, "h", np.array([[3.0]]))], "h", 1e-3, 8)
    assert fp._state_bound(third, "h", {INPUT: 1.0, "h": 1.0}) == (3.0 / 0.3, 3.0 / 0.3)   # 1 / du, not 1 // du


def test_fixed_point_quantize_small_plan_by_hand():
    """quantize_plan: scale limited by the bias register, exponent 7, registers and errors by hand."""
    fx = fp.quantize_plan(small_plan())
    assert fx.input_scale == 1.0
    h, o = fx.populations["h"], fx.populations["o"]
    # h: limits (2^23-1)/3, (2^23-1)/7, 131071*64/1, 4095*128/0.5 = 1048320 -> base 127*128/2 = 8128, exp 7
    assert h.scale == 8128 * 128 == 1040384
    assert (h.du_12bit, h.dv_12bit, h.vth_17bit) == (4095, 2048, 16256)
    np.testing.assert_array_equal(h.bias_mant, [4064, -4064])
    np.testing.assert_array_equal(h.bias_exp, [6, 7])
    c1 = fx.connections["c1"]
    assert c1.weight_exp == 7 and c1.weights.dtype == np.int32
    np.testing.assert_array_equal(c1.weights, [[128, -254], [64, 0]])  # 2 * rint(w * 63.5)
    eh = fx.errors["h"]
    assert eh["weight_rel_err[c1]"] == pytest.approx(1 / 254, rel=1e-12)
    assert eh["vth_rel_err"] == 0.0 and eh["bias_abs_err"] == 0.0
    assert eh["du_abs_err"] == 0.0 and eh["dv_abs_err"] == 0.0 and eh["scale"] == 1040384
    # o: limits (2^23-1)/16, (2^23-1)/96 -> base 127*128/3, exp 4
    assert o.scale == pytest.approx(127 * 128 / 3 * 16, rel=1e-15)
    assert (o.du_12bit, o.dv_12bit, o.vth_17bit) == (1023, 410, None)
    np.testing.assert_array_equal(o.bias_mant, [0])
    np.testing.assert_array_equal(o.bias_exp, [0])
    c2 = fx.connections["c2"]
    assert c2.weight_exp == 4
    np.testing.assert_array_equal(c2.weights, [[254, -84]])            # 3 -> 127, -1 -> rint(-42.33)
    eo = fx.errors["o"]
    assert eo["weight_rel_err[c2]"] == pytest.approx((1 - 42 / 42.333333333333336) / 3, rel=1e-9)
    assert eo["dv_abs_err"] == pytest.approx(410 / 4096 - 0.1, rel=1e-12)
    assert eo["du_abs_err"] == 0.0 and eo["bias_abs_err"] == 0.0 and "vth_rel_err" not in eo
    assert set(fx.errors) == {"h", "o"}


def test_fixed_point_quantize_graded_input_by_hand():
    """Graded host input: source scale 127/4 and max 4 (the encoding's clip) enter the bound and the weights."""
    from spikeloop.core.coding import InputEncoding

    fx = fp.quantize_plan(small_plan(encoding=InputEncoding((0.0, 0.0), (1.0, 1.0))))
    assert fx.input_scale == 31.75
    h = fx.populations["h"]
    # bound: u 3 * 4 = 12, v (12 + 0.5) * 2 = 25 -> sigma_max 8388607 / 25; base 31.75 * 127 * 128 / 2 = 258064
    assert h.scale == 258064 and h.vth_17bit == 4032                      # round(4032.25)
    np.testing.assert_array_equal(fx.connections["c1"].weights, [[128, -254], [64, 0]])
    assert fx.connections["c1"].weight_exp == 0
    np.testing.assert_array_equal(h.bias_mant, [4032, -4032])
    np.testing.assert_array_equal(h.bias_exp, [4, 5])
    e = fx.errors["h"]
    assert e["vth_rel_err"] == pytest.approx(16 / 258064, rel=1e-9)
    assert e["bias_abs_err"] == pytest.approx(8 / 258064, rel=1e-9)
    assert e["weight_rel_err[c1]"] == pytest.approx(1 / 254, rel=1e-9)


def _two_input_plan(w_in=0.3):
    """input(1) -> a (LIF, w 1) -> b (LI, w 2), and input -> b directly (w w_in): b has a primary and a second input."""
    a = Population("a", 1, 1.0, 0.5, np.zeros(1), 1.0)
    b = Population("b", 1, 1.0, 0.5, np.zeros(1), None, kind="LI")
    conns = [Connection("ab", "a", "b", np.array([[2.0]])), Connection("ib", INPUT, "b", np.array([[w_in]])),
             Connection("ia", INPUT, "a", np.array([[1.0]]))]
    return NetworkPlan(1, [a, b], conns, "b", 1e-3, 2)


def test_fixed_point_quantize_second_input_gets_its_own_exponent():
    """The primary input (largest |w| / source scale) sets the scale; another input takes the smallest
    exponent that holds its peak: ceil(log2(peak / (2 * 127 * 64)))."""
    fx = fp.quantize_plan(_two_input_plan())
    a, b = fx.populations["a"], fx.populations["b"]
    assert a.scale == 16256 * 128 and a.vth_17bit == 32512                 # exponent 8 clamped to 7
    assert fx.connections["ia"].weight_exp == 7
    np.testing.assert_array_equal(fx.connections["ia"].weights, [[254]])
    assert b.scale == 8128 * 128 == 1040384
    assert fx.connections["ab"].weight_exp == 7
    np.testing.assert_array_equal(fx.connections["ab"].weights, [[254]])
    ib = fx.connections["ib"]
    assert ib.weight_exp == 5                                              # ceil(log2(19.2))
    np.testing.assert_array_equal(ib.weights, [[152]])                     # 2 * rint(312115.2 / 4096)
    assert fx.errors["b"]["weight_rel_err[ib]"] == pytest.approx(abs(76 * 4096 / 1040384 - 0.3) / 0.3, rel=1e-9)
    assert fx.errors["b"]["weight_rel_err[ab]"] == 0.0
    exact = fp.quantize_plan(_two_input_plan(w_in=0.25))
    assert exact.connections["ib"].weight_exp == 4                          # log2(16) = 4 exactly
    np.testing.assert_array_equal(exact.connections["ib"].weights, [[254]])
    tiny = fp.quantize_plan(_two_input_plan(w_in=1e-9))
    assert tiny.connections["ib"].weight_exp == -8                         # clipped to the range
    np.testing.assert_array_equal(tiny.connections["ib"].weights, [[0]])
    off = fp.quantize_plan(_two_input_plan(w_in=0.0))
    assert off.connections["ib"].weight_exp == 0                            # no weight: exponent 0
    assert off.errors["b"]["weight_rel_err[ib]"] == 0.0
    np.testing.assert_array_equal(off.connections["ib"].weights, [[0]])
    neg = fp.quantize_plan(_two_input_plan(w_in=-0.3))
    np.testing.assert_array_equal(neg.connections["ib"].weights, [[-152]])
    assert neg.connections["ib"].weight_exp == 5


def test_fixed_point_primary_is_the_largest_weight_per_source_scale():
    """The primary input is the largest max|w| / source scale (30 / 31.75 from the host beats 0.9 from
    spikes); its base 31.75 * 16256 / 30 and the 24-bit bound 241.8 give exponent 1."""
    from spikeloop.core.coding import InputEncoding

    a = Population("a", 1, 1.0, 0.5, np.zeros(1), 1.0)
    b = Population("b", 1, 1.0, 0.5, np.zeros(1), None, kind="LI")
    conns = [Connection("ab", "a", "b", np.array([[0.9]])), Connection("ib", INPUT, "b", np.array([[30.0]])),
             Connection("ia", INPUT, "a", np.array([[1.0]]))]
    plan = NetworkPlan(1, [a, b], conns, "b", 1e-3, 2, InputEncoding((0.0,), (1.0,)))
    fx = fp.quantize_plan(plan)
    assert fx.populations["b"].scale == pytest.approx(31.75 * 16256 / 30 * 2, rel=1e-12)
    assert fx.connections["ib"].weight_exp == 1
    np.testing.assert_array_equal(fx.connections["ib"].weights, [[254]])
    # and the other way round: 5 from spikes beats 1 / 31.75 from the host
    conns = [Connection("ab", "a", "b", np.array([[5.0]])), Connection("ib", INPUT, "b", np.array([[1.0]])),
             Connection("ia", INPUT, "a", np.array([[1.0]]))]
    fx = fp.quantize_plan(NetworkPlan(1, [a, b], conns, "b", 1e-3, 2, InputEncoding((0.0,), (1.0,))))
    np.testing.assert_array_equal(fx.connections["ab"].weights, [[254]])
    # bound: u = 5 + 1 * 4 = 9, v = 18 -> (2**23 - 1) / 18 over base 16256 / 5: log2(143.4) -> exponent 7
    assert fx.populations["b"].scale == pytest.approx(16256 / 5 * 128, rel=1e-12)


def test_fixed_point_quantize_bias_source_by_hand():
    """A bias source (no inputs) takes the largest power of two under its limits; its bias and threshold."""
    s = Population("s", 1, 1.0, 1.0, np.ones(1), 0.5, bias_source=True)
    h = Population("h", 1, 1.0, 0.5, np.zeros(1), 1.0)
    plan = NetworkPlan(1, [s, h], [Connection("sh", "s", "h", np.array([[0.5]])),
                                   Connection("ih", INPUT, "h", np.array([[1.0]]))], "h", 1e-3, 2)
    fx = fp.quantize_plan(plan)
    fs = fx.populations["s"]
    # limits: v 1 -> 8388607; vth 131071 * 64 / 0.5; bias 4095 * 128 / 1 = 524160 -> 2**18
    assert fs.scale == 2.0 ** 18 and fs.vth_17bit == 2048
    assert (fs.du_12bit, fs.dv_12bit) == (4095, 4096)
    np.testing.assert_array_equal(fs.bias_mant, [2048])
    np.testing.assert_array_equal(fs.bias_exp, [7])
    assert fx.errors["s"] == {"vth_rel_err": 0.0, "bias_abs_err": 0.0, "du_abs_err": 0.0, "dv_abs_err": 0.0,
                              "scale": 2.0 ** 18}
    assert "sh" in fx.connections and fx.connections["sh"].weight_exp == 6
    np.testing.assert_array_equal(fx.connections["sh"].weights, [[254]])
    assert fx.populations["h"].scale == 2080768


def test_fixed_point_quantize_refusals():
    """No non-zero incoming weight, or weights too large for the threshold range: QuantizationError."""
    zero = NetworkPlan(1, [Population("h", 1, 1.0, 0.5, np.zeros(1), 1.0)],
                       [Connection("c", INPUT, "h", np.zeros((1, 1)))], "h", 1e-3, 2)
    with pytest.raises(QuantizationError):
        fp.quantize_plan(zero)
    zero_li = NetworkPlan(1, [Population("h", 1, 1.0, 0.5, np.zeros(1), None)],
                          [Connection("c", INPUT, "h", np.zeros((1, 1)))], "h", 1e-3, 2)
    with pytest.raises(QuantizationError):                                 # a zero bound, not a ZeroDivisionError
        fp.quantize_plan(zero_li)
    alone = NetworkPlan(1, [Population("h", 1, 1.0, 0.5, np.zeros(1), 1.0)], [], "h", 1e-3, 2)
    with pytest.raises(QuantizationError):
        fp.quantize_plan(alone)
    huge = NetworkPlan(1, [Population("h", 1, 1.0, 0.5, np.zeros(1), 1e12)],
                       [Connection("c", INPUT, "h", np.ones((1, 1)))], "h", 1e-3, 2)
    with pytest.raises(QuantizationError, match="needs weight exponent"):
        fp.quantize_plan(huge)
    fine = NetworkPlan(1, [Population("h", 1, 1.0, 0.5, np.zeros(1), 100.0)],
                       [Connection("c", INPUT, "h", np.ones((1, 1)))], "h", 1e-3, 2)
    lowest = NetworkPlan(1, [Population("h", 1, 1.0, 0.5, np.zeros(1), 93415.0)],
                         [Connection("c", INPUT, "h", np.ones((1, 1)))], "h", 1e-3, 2)
    low = fp.quantize_plan(lowest)                                         # log2(89.8 / 16256) = -7.5
    assert low.connections["c"].weight_exp == -8 and low.populations["h"].scale == 63.5
    assert low.populations["h"].vth_17bit == 92685
    ff = fp.quantize_plan(fine)   # threshold-limited: log2(131071 * 64 / 100 / 16256) = 2.37 -> exponent 2
    assert ff.connections["c"].weight_exp == 2 and ff.populations["h"].scale == 65024
    assert ff.populations["h"].vth_17bit == 101600
    bad_tau = NetworkPlan(1, [Population("h", 1, 1.0, 0.0, np.zeros(1), 1.0)],
                          [Connection("c", INPUT, "h", np.ones((1, 1)))], "h", 1e-3, 2)
    assert fp.quantize_plan(bad_tau).populations["h"].dv_12bit == 0


def _one_li(w, dv, T, vth=None, encoding=None):
    pop = Population("o", 1, 1.0, dv, np.zeros(1), vth, kind="LI" if vth is None else "LIF")
    return NetworkPlan(1, [pop], [Connection("c", INPUT, "o", np.array([[w]]))], "o", 1e-3, T, encoding)


def test_fixed_point_scale_limits_at_their_exact_values():
    """The 24-bit limit is (2**23 - 1) / bound, the threshold limit (2**17 - 1) * 64 / vth: at a power-of-two
    boundary one unit more would give the next exponent (and a state or threshold that no longer fits)."""
    from spikeloop.core.coding import InputEncoding

    # v bound 512/127 (dv = 127/512): (2**23 - 1) / (16256 * 512/127) = 127.99998 -> exponent 6, not 7
    fx = fp.quantize_plan(_one_li(1.0, 127 / 512, 4))
    assert fx.connections["c"].weight_exp == 6 and fx.populations["o"].scale == 16256 * 64
    assert fx.populations["o"].dv_12bit == 1016
    # threshold 129.0074: the threshold limit 8388544 / (129.0074 * 16256) = 3.99998 -> exponent 1, while the
    # 24-bit limit alone, 8388607 / (129.0074 * 16256) = 4.000004, would allow 2 (and vth would not fit 17 bits)
    fx = fp.quantize_plan(_one_li(1.0, 0.5, 2, vth=129.0074))
    assert fx.connections["c"].weight_exp == 1 and fx.populations["o"].vth_17bit == 65536
    assert fx.errors["o"]["vth_rel_err"] == pytest.approx(abs(65536 * 64 / 32512 - 129.0074) / 129.0074, rel=1e-9)
    # and from the other side: dv = 2080768 / 8388607 puts (2**23 - 1) / bound exactly on 128 * base -> exponent 7
    fx = fp.quantize_plan(_one_li(1.0, 2080768 / 8388607, 4))
    assert fx.connections["c"].weight_exp == 7
    # the u limit is a true division too: u bound 3 / du with (2**23 - 1) / bound just above 64 * 16256 / 3
    cuba = NetworkPlan(1, [Population("o", 1, 0.12402345228487166, 1.0, np.zeros(1), None, kind="CubaLI")],
                       [Connection("c", INPUT, "o", np.array([[3.0]]))], "o", 1e-3, 9)
    assert fp.quantize_plan(cuba).connections["c"].weight_exp == 6
    # the bias limit (4095 << 7) / max|bias| is a true division: just above 64 * base -> exponent 6
    base = 127 * 128 / 3.0
    b = 524160 / (base * 64) * (1 - 1e-10)
    biased = NetworkPlan(1, [Population("o", 1, 1.0, 0.5, np.array([b]), None, kind="LI")],
                         [Connection("c", INPUT, "o", np.array([[3.0]]))], "o", 1e-3, 2)
    assert fp.quantize_plan(biased).connections["c"].weight_exp == 6
    # weights above 16256 make the base scale < 1: still a valid scale (exponent 7, threshold register 2)
    fx = fp.quantize_plan(_one_li(20000.0, 0.5, 2, vth=1.0))
    assert fx.connections["c"].weight_exp == 7 and fx.populations["o"].vth_17bit == 2
    # tiny weights (bound 0.5 < 1): the limit divides by the bound, it does not subtract it
    enc = InputEncoding((0.0,), (1.0,))
    fx = fp.quantize_plan(_one_li(0.125, 1.0, 1, encoding=enc))
    assert fx.connections["c"].weight_exp == 2                             # log2(16777214 / 4129024) = 2.02
    assert fx.populations["o"].scale == 31.75 * 16256 / 0.125 * 4


# ============================================================================ emulator
def _emulator(plan, precision="float", windowed=True):
    from spikeloop.runtime.emulator import Emulator

    return Emulator(plan, precision, windowed=windowed)


def test_emulator_float_window_by_hand():
    """One decision of input(2) -> h -> o, step by step: resets at each window start, one step per hop."""
    from spikeloop.core.coding import InputEncoding

    plan = small_plan(encoding=InputEncoding((0.0, 0.0), (1.0, 1.0)), o_du=0.5, o_dv=0.5, h_bias=(0.25, 0.0))
    emu = _emulator(plan)
    assert emu.period == 6 and emu.interval == 6
    assert [(p.name, p.offset) for p in emu.pops] == [("h", 2), ("o", 3)]
    out = emu.decide_raw(np.array([1.0, 0.0]))
    # o resets at t = 3 and integrates 3 (h's neuron 0 spikes at t = 2..5): u 3, 4.5, 5.25, 5.625
    np.testing.assert_array_equal(out, [[3.0], [6.0], [8.25], [9.75]])
    c = emu.counts()
    assert (c.steps, c.decisions) == (6, 1)
    assert c.synops == {"c1": 8, "c2": 4}
    assert c.graded == {"c1": True, "c2": False}
    assert c.updates == {"h": 12, "o": 6}
    assert c.active == {"h": 11, "o": 4}
    assert c.spikes == {"h": 4}
    np.testing.assert_array_equal(emu.u["h"], [0.0, 0.0])
    np.testing.assert_array_equal(emu.v["h"], [0.25, 0.46875])
    np.testing.assert_array_equal(emu.u["o"], [5.625])
    # the second decision starts from the carried state, but each population resets at its window
    np.testing.assert_array_equal(emu.decide_raw(np.array([1.0, 0.0])), out)
    c2 = emu.counts()
    assert (c2.steps, c2.decisions) == (12, 2)
    assert c2.synops == {"c1": 16, "c2": 8} and c2.spikes == {"h": 8}
    assert c2.active == {"h": 11 + 12, "o": 4 + 6}
    assert emu.counts() is not emu.ops and emu.counts().synops is not emu.ops.synops
    emu.reset()
    z = emu.counts()
    assert (z.steps, z.decisions, z.synops, z.updates, z.active, z.spikes) == \
        (0, 0, {"c1": 0, "c2": 0}, {"h": 0, "o": 0}, {"h": 0, "o": 0}, {"h": 0})
    assert emu.time_step == 0 and not emu.u["o"].any() and not emu.v["h"].any()
    np.testing.assert_array_equal(emu.decide_raw(np.array([1.0, 0.0])), out)


def test_emulator_step_records_spikes_and_voltage():
    """step(): {population: (spikes or None, v after reset)}; the Dense output arrives one step later."""
    from spikeloop.core.coding import InputEncoding

    plan = small_plan(encoding=InputEncoding((0.0, 0.0), (1.0, 1.0)), o_du=0.5, o_dv=0.5, h_bias=(0.25, 0.0))
    emu = _emulator(plan)
    r1 = emu.step(np.array([1.0, 0.0]))
    np.testing.assert_array_equal(r1["h"][0], [False, False])
    np.testing.assert_array_equal(r1["h"][1], [0.25, 0.0])
    assert r1["o"][0] is None
    np.testing.assert_array_equal(r1["o"][1], [0.0])
    assert emu.time_step == 1 and emu.ops.synops == {"c1": 2, "c2": 0}
    r2 = emu.step(np.array([1.0, 0.0]))
    np.testing.assert_array_equal(r2["h"][0], [True, False])
    np.testing.assert_array_equal(r2["h"][1], [0.0, 0.5])
    assert emu.ops.synops == {"c1": 4, "c2": 1}
    with pytest.raises(RuntimeError):
        emu._run_window(np.array([1.0, 0.0]))


def one_neuron_plan(T=2, delay_out=False):
    """input(1) -> h (1 LIF, dv 0.5, vth 1, weight 1); with delay_out, h -> o (LI) through 1 step of delay."""
    pops = [Population("h", 1, 1.0, 0.5, np.zeros(1), 1.0)]
    conns = [Connection("c", INPUT, "h", np.array([[1.0]]))]
    if delay_out:
        pops = [Population("h", 1, 1.0, 0.0, np.zeros(1), 0.5, kind="IF"),
                Population("o", 1, 1.0, 0.5, np.zeros(1), None, kind="LI")]
        conns.append(Connection("d", "h", "o", np.array([[2.0]]), graph_delay=2))
    return NetworkPlan(1, pops, conns, pops[-1].name, 1e-3, T)


def test_emulator_fixed_point_steps_by_hand():
    """Fixed point: the registers of one_neuron_plan (scale 2080768, w 254 << 7, vth 32512 << 6) step by step."""
    plan = one_neuron_plan()
    emu = _emulator(plan, "fixed", windowed=False)
    f = emu.fixed.populations["h"]
    assert (f.scale, f.vth_17bit, f.du_12bit, f.dv_12bit) == (2080768, 32512, 4095, 2048)
    assert emu.fixed.connections["c"].weight_exp == 7
    np.testing.assert_array_equal(emu.fixed.connections["c"].weights, [[254]])
    assert emu.dtype == np.int64 and emu.arith is fp.LOIHI
    assert emu.conns[0].weight.dtype == np.float64 and emu.conns[0].exp == 7
    r = emu.step(np.array([1]))
    np.testing.assert_array_equal(r["h"][1], [0])
    np.testing.assert_array_equal(emu.pipe[0][0], [32512])     # 254 << 7
    r = emu.step(np.array([1]))
    np.testing.assert_array_equal(r["h"][0], [False])          # v == vth exactly: no spike
    np.testing.assert_array_equal(r["h"][1], [2080768])        # 32512 << 6
    assert emu.u["h"].dtype == np.int64
    r = emu.step(np.array([0]))
    np.testing.assert_array_equal(r["h"][0], [True])           # 1040384 + 2080768 > 2080768
    np.testing.assert_array_equal(r["h"][1], [0])
    assert emu.ops.synops == {"c": 2} and emu.ops.spikes == {"h": 1} and emu.ops.active == {"h": 2}


def test_emulator_record_streams_from_zero_with_padding():
    """record(): streams the rows, padded until the deepest population has seen the last one."""
    emu = _emulator(one_neuron_plan(), "fixed", windowed=False)
    emu.step(np.array([1]))
    rec = emu.record(np.array([[1], [1]]))
    assert rec.latency == {"h": 1}
    np.testing.assert_array_equal(rec.v["h"], [[0], [2080768], [0]])
    np.testing.assert_array_equal(rec.spikes["h"], [[False], [False], [True]])
    femu = _emulator(one_neuron_plan(), "float", windowed=False)
    assert femu.interval == 1 << 30 and femu.dtype == np.float64 and femu.arith is FLOAT
    rec = femu.record(np.array([[1.0], [1.0]]))
    np.testing.assert_array_equal(rec.v["h"], [[0.0], [1.0], [0.0]])
    np.testing.assert_array_equal(rec.spikes["h"], [[False], [False], [True]])


def test_emulator_float_delayed_connection_by_hand():
    """A delayed connection (DelayDense) holds its output delay + 1 steps; o sees h's spike at t = 4."""
    plan = one_neuron_plan(delay_out=True)
    assert plan.depths() == {INPUT: 0, "h": 1, "o": 1} and plan.connections[1].delay == 1
    emu = _emulator(plan, "float", windowed=False)
    assert len(emu.pipe[1]) == 2 and len(emu.pipe[0]) == 1
    rec = emu.record(np.array([[1.0], [0.0], [0.0], [0.0]]))
    np.testing.assert_array_equal(rec.spikes["h"][:, 0], [False, True, False, False, False])
    np.testing.assert_array_equal(rec.v["o"][:, 0], [0.0, 0.0, 0.0, 2.0, 1.0])
    assert emu.ops.synops == {"c": 1, "d": 1} and emu.ops.active == {"h": 1, "o": 2}
    assert "o" not in emu.ops.spikes and rec.spikes.keys() == {"h"}


def test_emulator_keeps_shared_decays_scalar_and_per_neuron_decays_per_neuron():
    """The fast path: a decay every neuron shares is one Python number; per-neuron decays stay arrays."""
    from spikeloop.runtime.emulator import _decay

    assert _decay(np.array([0.5, 0.5])) == 0.5 and isinstance(_decay(np.array([0.5, 0.5])), float)
    np.testing.assert_array_equal(_decay(np.array([0.5, 0.25])), [0.5, 0.25])
    plan = NetworkPlan(1, [Population("h", 2, [1.0, 1.0], [0.5, 0.25], np.zeros(2), None)],
                       [Connection("c", INPUT, "h", np.array([[1.0], [1.0]]))], "h", 1e-3, 2)
    emu = _emulator(plan, "float", windowed=False)
    assert emu.pops[0].du == 1.0 and isinstance(emu.pops[0].du, float)
    rec = emu.record(np.array([[4.0], [0.0]]))
    np.testing.assert_array_equal(rec.v["h"], [[0.0, 0.0], [4.0, 4.0], [2.0, 3.0]])
    rising = NetworkPlan(1, [Population("h", 2, [1.0, 1.0], [0.25, 0.5], np.zeros(2), None)],
                         [Connection("c", INPUT, "h", np.array([[1.0], [1.0]]))], "h", 1e-3, 2)
    rec = _emulator(rising, "float", windowed=False).record(np.array([[4.0], [0.0]]))
    np.testing.assert_array_equal(rec.v["h"], [[0.0, 0.0], [4.0, 4.0], [3.0, 2.0]])


def test_emulator_is_windowed_by_default_and_resets_every_window():
    """Emulator(plan) is the closed-loop (windowed) backend; every decision, the third too, resets each
    population at its window's first step, so equal inputs give equal windows."""
    from spikeloop.core.coding import InputEncoding
    from spikeloop.runtime.emulator import Emulator

    plan = small_plan(encoding=InputEncoding((0.0, 0.0), (1.0, 1.0)), o_du=0.5, o_dv=0.5, h_bias=(0.25, 0.0))
    emu = Emulator(plan)
    assert emu.windowed is True and emu.interval == 6 and emu.precision == "float"
    first = emu.decide_raw(np.array([1.0, 0.0]))
    for _ in range(3):
        np.testing.assert_array_equal(emu.decide_raw(np.array([1.0, 0.0])), first)
    assert emu.time_step == 24


def _delay_plan():
    """input(1) -> h (2 IF; only neuron 0 fed) -> o (LI, dv 0.5) through a Delay of 2 graph steps."""
    pops = [Population("h", 2, 1.0, 0.0, np.zeros(2), 0.5, kind="IF"),
            Population("o", 1, 1.0, 0.5, np.zeros(1), None, kind="LI")]
    conns = [Connection("c", INPUT, "h", np.array([[1.0], [0.0]])),
             Connection("d", "h", "o", np.array([[2.0, 3.0]]), graph_delay=2)]
    return NetworkPlan(1, pops, conns, "o", 1e-3, 2)


def test_emulator_float_delayed_connection_sums_rows():
    """Float DelayDense: the row sums of weights * spikes (one value per target neuron)."""
    emu = _emulator(_delay_plan(), "float", windowed=False)
    rec = emu.record(np.array([[1.0], [0.0], [0.0], [0.0]]))
    np.testing.assert_array_equal(rec.spikes["h"][:, 0], [False, True, False, False, False])
    np.testing.assert_array_equal(rec.spikes["h"][:, 1], [False] * 5)
    np.testing.assert_array_equal(rec.v["o"], [[0.0], [0.0], [0.0], [2.0], [1.0]])
    assert emu.ops.synops == {"c": 1, "d": 1} and emu.ops.active == {"h": 1, "o": 2}


@pytest.mark.parametrize("src", ["a", "z"])
def test_emulator_float_dense_sums_the_spiking_columns(src):
    """Lava's float Dense sums the weight columns of the spiking inputs (its rounding); a dot product
    rounds differently on these 16 weights, and the host input alone takes the dot product.
    (Source names on both sides of 'input' alphabetically.)"""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(1, 16)) * 10.0 ** rng.integers(-8, 8, size=(1, 16))
    columns = w[:, np.ones(16, bool)].sum(axis=1)
    assert columns[0] != w.dot(np.ones(16))[0]              # the two roundings differ here
    pops = [Population(src, 16, 1.0, 0.0, np.zeros(16), 0.5, kind="IF"),
            Population("out", 1, 1.0, 1.0, np.zeros(1), None, kind="LI")]
    conns = [Connection("c", INPUT, src, np.eye(16)), Connection("w", src, "out", w)]
    emu = _emulator(NetworkPlan(16, pops, conns, "out", 1e-3, 1), "float", windowed=False)
    rec = emu.record(np.ones((1, 16)))
    assert rec.spikes[src][1].all()
    assert rec.v["out"][2, 0] == columns[0]
    graded = NetworkPlan(16, [Population("out", 1, 1.0, 1.0, np.zeros(1), None, kind="LI")],
                         [Connection("w", INPUT, "out", w)], "out", 1e-3, 1)
    rec = _emulator(graded, "float", windowed=False).record(np.ones((1, 16)))
    assert rec.v["out"][1, 0] == w.dot(np.ones(16))[0]


# ============================================================================ energy
def _profile(name="P", graded=False, kind="neuromorphic", **values):
    from spikeloop.hwprofiles.profile import Constant, Profile

    conf = values.pop("confidence", {})
    consts = {k: Constant(k, v, "J", f"src of {k}", conf.get(k, "silicon")) for k, v in values.items()}
    return Profile(name, f"{name} title", kind, "<test>", consts, graded, "", "cores")


PER_DECISION = {"synops": {"c1": 8, "c2": 4}, "graded": {"c1": True, "c2": False},
                "updates": {"h": 12, "o": 6}, "active": {"h": 11, "o": 4}, "spikes": {"h": 4, "x": 3}, "steps": 6}


def _shape_of(output_size=3, input_size=2):
    from spikeloop.hwprofiles.energy import NetworkShape

    return NetworkShape(input_size=input_size, output_size=output_size, neurons=3, dense_macs=6, spike_destinations={"h": 2})


def _shape():
    return _shape_of()


def test_energy_neuromorphic_bill_by_hand():
    """Every term: count x constant; routes per destination (1 where unknown); static = P x steps x dt; host."""
    from spikeloop.hwprofiles.energy import price_neuromorphic

    chip = _profile(synop=2.0, neuron_update_active=3.0, neuron_update_inactive=0.5, spike_route=7.0,
                    static_power=10.0, timestep=0.25, confidence={"static_power": "derived"})
    host = _profile("H", kind="conventional", mac_fp32=4.0, ac_fp32=1.0)
    r = price_neuromorphic(PER_DECISION, _shape(), chip, host)
    got = {t.name: (t.count, t.energy, t.where, t.status) for t in r.terms}
    assert got == {
        "synaptic ops (binary spikes)": (4, 8.0, "chip", "priced"),
        "synaptic ops (graded input)": (8, 16.0, "chip", "priced"),
        "neuron updates (active)": (15, 45.0, "chip", "priced"),
        "neuron updates (inactive)": (3, 1.5, "chip", "priced"),
        "spikes routed": (11, 77.0, "chip", "priced"),                 # 4 * 2 + 3 * 1
        "static power x window": (1.5, 15.0, "chip", "priced"),        # 6 steps * 0.25 s * 10 W
        "input spike encoder": (2, None, "chip", "unpriced"),
        "host encoding (normalise observation)": (2, 8.0, "host", "priced"),
        "host decoding (argmax)": (2, 2.0, "host", "priced"),
    }
    one = price_neuromorphic(PER_DECISION, _shape_of(output_size=1), chip, host)
    assert one.terms[-1].count == 0 and one.terms[-1].energy == 0.0   # argmax of one value: no compare
    single = price_neuromorphic(PER_DECISION, _shape_of(input_size=1), chip)
    assert single.unpriced == ["input spike encoder"] and single.terms[-1].count == 1
    assert single.to_dict()["chip_complete"] is False
    assert [t.name for t in r.terms][-3:] == ["input spike encoder", "host encoding (normalise observation)",
                                              "host decoding (argmax)"]
    static = next(t for t in r.terms if t.constant == "static_power")
    assert static.unit == "s" and static.confidence == "derived" and static.note == ("6 steps of 0.25 s (real-time timestep; "
                                                                                    "whole-chip static power)")
    assert static.source == "src of static_power; timestep: src of timestep"
    graded = next(t for t in r.terms if t.name == "synaptic ops (graded input)")
    assert "P has no graded spikes" in graded.note and graded.source == "src of synop"
    assert r.total == 8 + 16 + 45 + 1.5 + 77 + 15 + 8 + 2
    assert r.static == 15.0
    assert r.unpriced == ["input spike encoder"]
    assert r.assumptions == ["static power: real-time timestep, whole-chip static power"]
    d = r.to_dict()
    assert d["total_J"] == 172.5 and d["static_J"] == 15.0 and d["dynamic_J"] == 157.5
    assert d["chip_J"] == 162.5 and d["host_J"] == 10.0 and d["chip_dynamic_J"] == 147.5
    assert d["chip_complete"] is False and d["unpriced"] == ["input spike encoder"]
    assert (d["profile"], d["title"]) == ("P", "P title")
    assert d["terms"][0]["energy_J"] == 8.0 and d["terms"][0]["status"] == "priced"
    assert d["terms"][6]["energy_J"] is None and d["terms"][6]["status"] == "unpriced"


def test_energy_graded_chip_without_host_and_unknown_constants():
    """A graded-spike chip has no encoder term; unknown constants are unpriced (never guessed); no host."""
    from spikeloop.hwprofiles.energy import price_neuromorphic

    chip = _profile(graded=True, synop=2.0, neuron_update_active=None, neuron_update_inactive=0.5,
                    static_power=10.0, timestep=None)
    r = price_neuromorphic(PER_DECISION, _shape(), chip)
    by = {t.name: t for t in r.terms}
    assert "input spike encoder" not in by and len(r.terms) == 6
    assert by["synaptic ops (graded input)"].note == ""
    assert by["neuron updates (active)"].energy is None and by["neuron updates (active)"].status == "unpriced"
    route = by["spikes routed"]
    assert (route.energy_per_event, route.source, route.confidence) == (None, "P lists no 'spike_route'", "unknown")
    st = by["static power x window"]
    assert (st.count, st.unit, st.energy, st.confidence) == (6, "steps", None, "unknown")
    assert st.source == "static power 10 W is published but no time per step, so the window has no duration"
    assert r.total == 8.0 + 16.0 + 1.5 and r.static == 0
    assert r.unpriced == ["neuron updates (active)", "spikes routed", "static power x window"]
    assert r.assumptions == ["host encoding/decoding not priced (no host profile given)",
                             "static power: real-time timestep, whole-chip static power"]
    d = r.to_dict()
    assert d["chip_J"] == 25.5 and d["host_J"] == 0 and d["chip_complete"] is False
    none = _profile(synop=None, neuron_update_active=None, neuron_update_inactive=None, spike_route=None,
                    static_power=None, timestep=1.0, graded=True)
    host = _profile("H", kind="conventional", mac_fp32=4.0, ac_fp32=1.0)
    r = price_neuromorphic(PER_DECISION, _shape(), none, host)          # priced host terms are not the chip's
    st = next(t for t in r.terms if t.name == "static power x window")
    assert st.source == "static power not published" and st.energy is None
    d = r.to_dict()
    assert d["chip_J"] is None and d["chip_dynamic_J"] is None and d["chip_complete"] is False
    assert d["total_J"] == 10.0 and d["host_J"] == 10.0
    done = _profile(graded=True, synop=1.0, neuron_update_active=1.0, neuron_update_inactive=1.0,
                    spike_route=1.0, static_power=0.0, timestep=1.0)
    zero_spikes = dict(PER_DECISION, spikes={"h": 0}, active={"h": 12, "o": 6})
    r = price_neuromorphic(zero_spikes, _shape(), done)
    assert r.to_dict()["chip_complete"] is True and r.unpriced == []
    assert next(t for t in r.terms if t.name == "neuron updates (inactive)").count == 0
    # an unknown constant whose count is 0 costs nothing: not listed as unpriced, the chip bill is complete
    idle = _profile(graded=True, synop=1.0, neuron_update_active=1.0, neuron_update_inactive=None,
                    spike_route=1.0, static_power=0.0, timestep=1.0)
    r = price_neuromorphic(zero_spikes, _shape(), idle)
    assert r.unpriced == [] and r.to_dict()["chip_complete"] is True
    assert next(t for t in r.terms if t.name == "neuron updates (inactive)").status == "unpriced"
    # an unknown host constant leaves the chip's bill complete (the host is not the chip)
    host = _profile("H", kind="conventional", mac_fp32=4.0, ac_fp32=None)
    r = price_neuromorphic(zero_spikes, _shape(), done, host)
    assert r.unpriced == ["host decoding (argmax)"] and r.to_dict()["chip_complete"] is True


def test_energy_all_in_figure_prices_synaptic_events_alone():
    """An all-in figure prices the synaptic events; neuron, route and static terms are 'included'."""
    from spikeloop.hwprofiles.energy import price_neuromorphic

    chip = _profile(graded=True, synop_all_in=5e-12)
    r = price_neuromorphic(PER_DECISION, _shape(), chip)
    got = [(t.name, t.count, t.status, t.included_in) for t in r.terms]
    assert got == [("synaptic ops (binary spikes)", 4, "priced", None),
                   ("synaptic ops (graded input)", 8, "priced", None),
                   ("neuron updates (active)", 15, "included", "synop_all_in"),
                   ("neuron updates (inactive)", 3, "included", "synop_all_in"),
                   ("spikes routed", 11, "included", "synop_all_in"),
                   ("static power x window", 6, "included", "synop_all_in")]
    assert r.total == pytest.approx(60e-12, rel=1e-15) and r.unpriced == [] and r.static == 0
    assert r.terms[2].source == "included in synop_all_in (5 pJ all-in per synaptic event)"
    assert r.terms[2].energy is None and r.terms[0].note == "all-in: chip energy over synaptic events"
    assert r.terms[1].note == "all-in: chip energy over synaptic events"
    assert r.to_dict()["chip_complete"] is True
    binary = price_neuromorphic(PER_DECISION, _shape(), _profile(synop_all_in=5e-12))
    assert "P has no graded spikes" in binary.terms[1].note
    assert binary.unpriced == ["input spike encoder"]


def test_energy_neurobench_counts_and_dense_baseline():
    """NeuroBench: dense = every weight each step, MACs on graded input, ACs on spikes, sparsity of spikes."""
    from spikeloop.hwprofiles.energy import neurobench_counts, price_dense_baseline

    nb = neurobench_counts(dict(PER_DECISION, spikes={"h": 4}), _shape())
    assert (nb["dense"], nb["effective_macs"], nb["effective_acs"], nb["steps"]) == (36, 8, 4, 6)
    assert nb["activation_sparsity"] == 1 - 4 / 12
    assert neurobench_counts(dict(PER_DECISION, spikes={}), _shape())["activation_sparsity"] is None
    host = _profile("H", kind="conventional", mac_fp32=4.0, mac_int8=0.5)
    r = price_dense_baseline(_shape(), host)
    assert (r.profile, r.title, r.total) == ("H/fp32", "H title, fp32", 24.0)
    assert r.terms[0].name == "dense MACs (fp32)" and r.terms[0].count == 6
    assert price_dense_baseline(_shape(), host, "int8").total == 3.0


def test_energy_network_shape_and_weakest_confidence():
    """NetworkShape.of a plan: sizes, neurons, dense MACs, routes per spiking population; the weakest tag."""
    from spikeloop.hwprofiles.energy import NetworkShape, _weakest

    s = NetworkShape.of(small_plan())
    assert (s.input_size, s.output_size, s.neurons, s.dense_macs, s.spike_destinations) == (2, 1, 3, 6, {"h": 1})
    assert _weakest("silicon", "derived") == "derived"
    assert _weakest("unknown", "silicon") == "unknown"
    assert _weakest("vendor", "architectural") == "vendor"
    assert _weakest("silicon") == "silicon"


def test_energy_term_status():
    """A term is priced with a constant, included when an all-in figure holds it, else unpriced."""
    from spikeloop.hwprofiles.energy import Term

    assert Term("a", 2, "ops", "c", 3.0, "s", "silicon").energy == 6.0
    assert Term("a", 2, "ops", "c", 0.0, "s", "silicon").status == "priced"
    assert Term("a", 2, "ops", "c", None, "s", "unknown").status == "unpriced"
    assert Term("a", 2, "ops", None, None, "s", "unknown", included_in="x").status == "included"
    assert Term("a", 2, "ops", None, None, "s", "unknown").where == "chip"


GOOD_COUNTS = {"synops": {"c1": 1.0}, "updates": {"h": 2}, "active": {"h": 0}, "spikes": {},
               "graded": {"c1": False}, "steps": 3}


@pytest.mark.parametrize("bad", [
    [], {k: v for k, v in GOOD_COUNTS.items() if k != "synops"}, {k: v for k, v in GOOD_COUNTS.items() if k != "graded"},
    {k: v for k, v in GOOD_COUNTS.items() if k != "steps"}, {k: v for k, v in GOOD_COUNTS.items() if k != "spikes"},
    dict(GOOD_COUNTS, updates=[2]), dict(GOOD_COUNTS, active={"h": -1}), dict(GOOD_COUNTS, active={"h": math.nan}),
    dict(GOOD_COUNTS, active={"h": math.inf}), dict(GOOD_COUNTS, spikes={"h": True}), dict(GOOD_COUNTS, synops={"c1": "1"}),
    dict(GOOD_COUNTS, graded=[]), dict(GOOD_COUNTS, graded={"c1": 1}), dict(GOOD_COUNTS, steps=0),
    dict(GOOD_COUNTS, steps=-1), dict(GOOD_COUNTS, steps=True), dict(GOOD_COUNTS, steps=None),
])
def test_energy_check_counts_refuses_each_malformed_table(bad):
    """check_counts: tables of finite non-negative numbers, graded booleans, a positive step count."""
    from spikeloop.core.errors import ConfigError
    from spikeloop.hwprofiles.energy import check_counts

    with pytest.raises(ConfigError):
        check_counts(bad)


def test_energy_check_counts_layers_must_be_the_graphs():
    """With the graph's names: updates and active name exactly its populations, spikes a subset; no unknown connection."""
    from spikeloop.core.errors import ConfigError
    from spikeloop.hwprofiles.energy import check_counts

    assert check_counts(GOOD_COUNTS) is GOOD_COUNTS
    assert check_counts(dict(GOOD_COUNTS, steps=0.5, active={"h": 0.0})) is not None
    assert check_counts(GOOD_COUNTS, populations=["h"], connections=["c1", "c2"]) is GOOD_COUNTS
    assert check_counts(dict(GOOD_COUNTS, spikes={"h": 1}), populations=["h"]) is not None
    both = dict(GOOD_COUNTS, updates={"h": 2, "o": 1}, active={"h": 0})      # 'active' lacks o
    with pytest.raises(ConfigError, match="counts 'active'"):
        check_counts(both, populations=["h", "o"])
    assert check_counts(dict(both, active={"h": 0, "o": 0}), populations=["h", "o"]) is not None
    with pytest.raises(ConfigError, match="counts 'updates'"):                 # 'updates' lacks o
        check_counts(dict(GOOD_COUNTS, updates={"h": 2}, active={"h": 0, "o": 0}), populations=["h", "o"])
    for kw in ({"populations": ["h", "o"]}, {"populations": []}, {"connections": []}):
        with pytest.raises(ConfigError):
            check_counts(GOOD_COUNTS, **kw)
    with pytest.raises(ConfigError, match=r"unknown: 'o'"):
        check_counts(dict(GOOD_COUNTS, spikes={"o": 1}), populations=["h"])
    with pytest.raises(ConfigError, match=r"counts 'active' name populations \['h', 'o'\], the graph has \['h'\] "
                                          r"\(unknown: 'o'\)"):
        check_counts(dict(GOOD_COUNTS, active={"h": 0, "o": 1}), populations=["h"])
    with pytest.raises(ConfigError, match=r"counts 'graded' name connections"):
        check_counts(dict(GOOD_COUNTS, synops={}), connections=[])


# ============================================================================ fit: placement, rules, report
def _limits(mapping="cores", name="P", graded=False, **values):
    from spikeloop.hwprofiles.profile import Constant, Profile

    consts = {k: Constant(k, v, "u", f"src of {k}", "silicon") for k, v in values.items()}
    return Profile(name, f"{name} title", "neuromorphic", "<test>", consts, graded, "", mapping)


def _two_layer_net():
    """input 4 -> A (3 LIF, 2 synapses each) -> B (2 LI, 2 synapses each)."""
    from spikeloop.hwprofiles.fit import DENSE, Layer, Network

    wa = np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]], float)
    wb = np.array([[1, 0, 1], [0, 1, 1]], float)
    a = Layer("A", DENSE, 3, "LIF", ("input",), {"input": wa}, has_bias=True)
    b = Layer("B", DENSE, 2, "LI", ("A",), {"A": wb})
    return Network(4, [a, b], "B", "two.nir")


CORES = dict(neurons_per_core=2, synapse_memory_per_core=3, fan_in_per_core=3, fan_out_per_core=10, cores=8,
             neurons_per_chip=100, synapses_per_chip=100, weight_bits=8, neuron_models=("LIF", "LI"))


def test_fit_cores_placement_by_hand():
    """Each layer on the fewest cores meeting every per-core limit; output axons per (neuron, core) pair."""
    from spikeloop.hwprofiles.fit import place_on_cores

    cores, note = place_on_cores(_two_layer_net(), _limits(**CORES))
    assert note == ""
    got = [(c["core"], c["layer"], c["neurons"], c["rows"], c["synapses"], c["synapse_bytes"], c["fan_in"],
            c["fan_out"]) for c in cores]
    # A: 2 cores would put 4 bytes on one (limit 3) -> 3 cores; B: likewise 2 cores
    assert got == [(0, "A", 1, [0, 1], 2, 2, 2, 1), (1, "A", 1, [1, 2], 2, 2, 2, 1), (2, "A", 1, [2, 3], 2, 2, 2, 2),
                   (3, "B", 1, [0, 1], 2, 2, 2, 0), (4, "B", 1, [1, 2], 2, 2, 2, 0)]
    roomy = dict(CORES, synapse_memory_per_core=4, neurons_per_core=3)
    cores, _ = place_on_cores(_two_layer_net(), _limits(**roomy))
    got = [(c["layer"], c["rows"], c["synapses"], c["fan_in"], c["fan_out"]) for c in cores]
    assert got == [("A", [0, 2], 4, 3, 2), ("A", [2, 3], 2, 2, 1), ("B", [0, 2], 4, 3, 0)]
    wide = dict(CORES, synapse_memory_per_core=None, fan_in_per_core=None, neurons_per_core=1024)
    cores, _ = place_on_cores(_two_layer_net(), _limits(**wide))
    assert [(c["layer"], c["rows"], c["fan_in"], c["fan_out"]) for c in cores] == [("A", [0, 3], 4, 3),
                                                                                   ("B", [0, 2], 3, 0)]
    fan = dict(CORES, synapse_memory_per_core=None, fan_in_per_core=2, neurons_per_core=3)
    cores, _ = place_on_cores(_two_layer_net(), _limits(**fan))
    assert [c["rows"] for c in cores] == [[0, 1], [1, 2], [2, 3], [0, 1], [1, 2]]


def test_fit_cores_placement_refusals():
    """No neurons per core, a convolution, or a neuron alone over a per-core limit: no placement."""
    from spikeloop.hwprofiles.fit import CONV2D, Layer, Network, check_fit, place_on_cores

    assert place_on_cores(_two_layer_net(), _limits(**dict(CORES, neurons_per_core=None))) == \
        (None, "P publishes no neurons per core")
    conv = Network(4, [Layer("C", CONV2D, 8, "IF", ("input",), in_shape=(1, 2, 2), out_shape=(2, 2, 2),
                             kernel=(1, 1), kernel_nonzero=2)], "C")
    cores, note = place_on_cores(conv, _limits(**CORES))
    assert cores is None and "convolutional layers ['C']" in note
    tight = dict(CORES, synapse_memory_per_core=1)       # one neuron's 2 synapses need 2 bytes
    cores, note = place_on_cores(_two_layer_net(), _limits(**tight))
    # no split can help (one neuron alone needs 2 bytes): the neurons-per-core split stands, the rule reports it
    assert cores is not None and [c["synapse_bytes"] for c in cores] == [4, 2, 4]
    r = check_fit(_two_layer_net(), _limits(**tight))
    assert [(v.rule, v.layer, v.value, v.limit, v.excess) for v in r.violations] == \
        [("synapse_memory_per_core", "A", 4, 1, 3), ("synapse_memory_per_core", "A", 2, 1, 1),
         ("synapse_memory_per_core", "B", 4, 1, 3)]
    exact = dict(CORES, synapse_memory_per_core=2, fan_in_per_core=2)
    r = check_fit(_two_layer_net(), _limits(**exact))
    assert r.fits is True and r.cores_used == 5


def test_fit_report_on_cores_by_hand():
    """check_fit on a core-based chip: verdict, cores used, utilisation per core and per resource, notes."""
    from spikeloop.hwprofiles.fit import NOT_CHECKED, OK, check_fit, format_fit

    r = check_fit(_two_layer_net(), _limits(**CORES))
    assert r.fits is True and r.violations == [] and r.raise_if_violated() is r
    assert [(x.rule, x.status) for x in r.results] == [
        ("neurons_per_core", OK), ("synapse_memory_per_core", OK), ("fan_in_per_core", OK),
        ("fan_out_per_core", OK), ("cores", OK), ("neurons_per_chip", OK), ("synapses_per_chip", OK),
        ("weight_bits", OK), ("neuron_models", OK), ("synapse_encoding", NOT_CHECKED)]
    assert r.verdict() == "yes, 1 rule not checked"
    assert (r.cores_used, r.cores_available) == (5, 8)
    u = r.per_core[2]["utilisation"]
    assert u == {"neurons": 0.5, "synapse_bytes": 2 / 3, "fan_in": 2 / 3, "fan_out": 0.2}
    assert r.resources == [{"resource": "neurons", "used": 5, "limit": 100, "unit": "neurons", "utilisation": 0.05},
                           {"resource": "non-zero synapses", "used": 10, "limit": 100, "unit": "synapses",
                            "utilisation": 0.1}]
    assert r.notes == ["P takes binary events only: the 4 graded observation values need a spike encoder "
                       "(one channel each assumed; its cost is not modelled)"]
    d = r.to_dict()
    assert (d["fits"], d["verdict"], d["cores_used"], d["violations"]) == (True, "yes, 1 rule not checked", 5, [])
    assert d["rules"][-1] == {"rule": "synapse_encoding", "status": NOT_CHECKED,
                              "detail": "per-core synapse memory counts 1 byte per 8-bit synapse; the chip's "
                                        "synapse encoding overhead is not modelled"}
    text = format_fit(r).splitlines()
    assert text[0] == "P (P title), mapping 'cores': fits: yes, 1 rule not checked"
    assert text[1] == "  cores used: 5 of 8"
    assert text[4] == "     1  A                     1  50.0 %         2 B  66.7 %      2  66.7 %      1  10.0 %"
    assert "  neurons: 5 of 100 neurons (5.0 %)" in text
    assert "  non-zero synapses: 10 of 100 synapses (10.0 %)" in text
    assert text[-1].startswith("  note: P takes binary events only")
    graded = check_fit(_two_layer_net(), _limits(graded=True, **CORES))
    assert graded.notes == []


def test_fit_violations_and_verdicts():
    """Every violated limit is reported (value, limit, excess); exactly at a limit is not a violation."""
    from spikeloop.core.errors import HardwareConstraintError
    from spikeloop.hwprofiles.fit import VIOLATED, check_fit

    bad = dict(CORES, fan_out_per_core=1, cores=4, neurons_per_chip=4, synapses_per_chip=9, weight_bits=4,
               neuron_models=("LIF",))
    r = check_fit(_two_layer_net(), _limits(**bad))
    got = [(v.rule, v.layer, v.what, v.value, v.limit, v.excess) for v in r.violations]
    assert got == [("fan_out_per_core", "A", "output axons on core 2", 2, 1, 1),
                   ("cores", "<network>", "cores used", 5, 4, 1),
                   ("neurons_per_chip", "<network>", "neurons", 5, 4, 1),
                   ("synapses_per_chip", "<network>", "synapses", 10, 9, 1),
                   ("weight_bits", "A", "weight precision", 8, 4, 4), ("weight_bits", "B", "weight precision", 8, 4, 4),
                   ("neuron_models", "B", "neuron model", "LI (non-spiking)", "LIF", None)]
    assert r.violations[-1].hint == "use a spiking readout and decode spike counts on the host"
    assert r.fits is False and r.verdict() == "no (7 violations, 1 rule not checked)"
    assert [x.status for x in r.results].count(VIOLATED) == 6
    with pytest.raises(HardwareConstraintError) as e:
        r.raise_if_violated()
    lines = str(e.value).splitlines()
    assert lines[0] == "two.nir does not fit P (P title): 7 violation(s)"
    assert lines[1] == "  - [fan_out_per_core] layer 'A': output axons on core 2 2 axons > limit 1 axons (excess 1 axons)"
    assert lines[-1].startswith("  not checked: synapse_encoding (per-core synapse memory")
    assert "  ! [cores] layer '<network>': cores used 5 cores > limit 4 cores (excess 1 cores). split the network " \
           "over several chips (not modelled) or shrink the layers" in format_fit_lines(r)
    at = dict(CORES, fan_out_per_core=2, cores=5, neurons_per_chip=5, synapses_per_chip=10, weight_bits=8)
    assert check_fit(_two_layer_net(), _limits(**at)).fits is True
    one = check_fit(_two_layer_net(), _limits(**dict(CORES, cores=4)))
    assert one.verdict() == "no (1 violation, 1 rule not checked)"
    cuba = _two_layer_net()
    cuba.layers[0].model = "CubaLIF"
    v = check_fit(cuba, _limits(**CORES)).violations
    assert [(x.layer, x.value, x.hint) for x in v] == [("A", "CubaLIF (spiking)",
                                                        "retrain without synaptic current decay (du = 1)")]
    cuba.layers[0].model = "IF"
    assert check_fit(cuba, _limits(**CORES)).violations[0].hint == ""


def format_fit_lines(report):
    from spikeloop.hwprofiles.fit import format_fit

    return format_fit(report).splitlines()


def test_fit_rules_not_checked_and_unknown_verdicts():
    """A limit the profile lists as unknown, or does not list, is 'not checked'; none checked: unknown."""
    from spikeloop.hwprofiles.fit import NOT_CHECKED, check_fit

    r = check_fit(_two_layer_net(), _limits(**dict(CORES, fan_out_per_core=None, weight_bits=None)))
    st = {x.rule: (x.status, x.detail) for x in r.results}
    assert st["fan_out_per_core"] == (NOT_CHECKED, "limit not published")
    assert st["weight_bits"] == (NOT_CHECKED, "limit not published")
    assert r.verdict() == "yes, 3 rules not checked" and len(r.not_checked) == 3
    lim = {k: v for k, v in CORES.items() if k != "cores"}
    r = check_fit(_two_layer_net(), _limits(**lim))
    assert {x.rule: x.detail for x in r.results}["cores"] == "P lists no cores"
    r = check_fit(_two_layer_net(), _limits(**dict(CORES, neurons_per_core=None)))
    st = {x.rule: (x.status, x.detail) for x in r.results}
    assert st["fan_in_per_core"] == (NOT_CHECKED, "limit not published") or \
        st["fan_in_per_core"] == (NOT_CHECKED, "no placement: P publishes no neurons per core")
    assert st["cores"] == (NOT_CHECKED, "no placement: P publishes no neurons per core")
    assert r.cores_used is None and r.per_core == []
    nothing = check_fit(_two_layer_net(), _limits(**{k: None for k in CORES}))
    assert nothing.fits is None and nothing.verdict() == "unknown (no limit published)"
    assert nothing.to_dict()["fits"] is None
    shared = dict(CORES, memory_per_core=3)
    del shared["synapse_memory_per_core"]
    r = check_fit(_two_layer_net(), _limits(**shared))
    assert r.results[1].rule == "memory_per_core" and r.cores_used == 5
    assert r.per_core[0]["utilisation"]["synapse_bytes"] == 2 / 3


XYLO = dict(input_channels=4, hidden_neurons=3, output_neurons=2, fan_in_per_neuron=2, total_weights=10,
            weight_bits=8, neuron_models=("LIF", "LI"))


def test_fit_xylo_pools_by_hand():
    """Xylo: input channels, one hidden pool (every layer but the output), output neurons, fan-in, weights."""
    from spikeloop.hwprofiles.fit import CONV2D, Layer, Network, check_fit, format_fit
    from spikeloop.hwprofiles.rules.xylo import hidden_layers

    net = _two_layer_net()
    assert [lay.name for lay in hidden_layers(net)] == ["A"]
    r = check_fit(net, _limits("xylo", **XYLO))
    assert r.fits is True and r.verdict() == "yes, 1 rule not checked" and r.cores_used is None
    assert r.resources == [
        {"resource": "input channels", "used": 4, "limit": 4, "unit": "channels", "utilisation": 1.0},
        {"resource": "hidden neurons", "used": 3, "limit": 3, "unit": "neurons", "utilisation": 1.0},
        {"resource": "output neurons", "used": 2, "limit": 2, "unit": "neurons", "utilisation": 1.0},
        {"resource": "non-zero weights", "used": 10, "limit": 10, "unit": "weights", "utilisation": 1.0}]
    small = dict(input_channels=3, hidden_neurons=2, output_neurons=1, fan_in_per_neuron=1, total_weights=9)
    r = check_fit(net, _limits("xylo", **dict(XYLO, **small)))
    got = [(v.rule, v.layer, v.value, v.limit, v.excess) for v in r.violations]
    assert got == [("input_channels", "input", 4, 3, 1), ("hidden_neurons", "A", 3, 2, 1),
                   ("output_neurons", "B", 2, 1, 1), ("fan_in_per_neuron", "A", 2, 1, 1),
                   ("fan_in_per_neuron", "B", 2, 1, 1), ("total_weights", "<network>", 10, 9, 1)]
    assert r.violations[3].hint == "3 of 3 neurons exceed it; prune to at most 1 inputs per neuron"
    unknown = check_fit(net, _limits("xylo", **dict(XYLO, total_weights=None)))
    assert unknown.resources[3]["utilisation"] is None and unknown.resources[3]["limit"] is None
    assert "  non-zero weights: 10 of unknown weights (–)" in format_fit(unknown).splitlines()
    zero = check_fit(net, _limits("xylo", **dict(XYLO, total_weights=0)))
    assert zero.resources[3]["utilisation"] is None
    conv = Network(4, [Layer("C", CONV2D, 8, "IF", ("input",), in_shape=(1, 2, 2), out_shape=(2, 2, 2),
                             kernel=(1, 1), kernel_nonzero=2)], "C")
    r = check_fit(conv, _limits("xylo", **XYLO))
    assert {x.status for x in r.results} == {"not checked"}
    assert r.results[0].detail == "convolutional layers on Xylo not implemented"
    lonely = Network(4, [Layer("O", "dense", 1, "LIF", ("input",), {"input": np.ones((1, 4))})], "O")
    assert check_fit(lonely, _limits("xylo", **XYLO)).violations[0].rule == "fan_in_per_neuron"
    r = check_fit(lonely, _limits("xylo", **dict(XYLO, hidden_neurons=0, fan_in_per_neuron=4)))
    assert [(v.rule, v.layer) for v in r.violations] == [("readout_after_hidden", "O")]  # no hidden layer


SPECK = dict(cores=3, neuron_memory_per_core=(4, 10, 2), kernel_memory_per_core=(20, 40, 2), bias_memory_per_core=4,
             destinations_per_core=1, max_input_size=4, max_kernel_size=3, max_channels=4, max_padding=1,
             strides=(1, 2), pool_sizes=(1, 2), weight_bits=8, layer_kinds=("conv2d",), neuron_models=("LIF", "LI"))


def test_fit_speck_memory_and_core_matching_by_hand():
    """Speck: f*2^(ceil log2 fx + ceil log2 fy) neuron entries, c*2^(ceil log2(kx ky) + ceil log2 f) kernel
    entries, one core per layer; a dense layer behind a feature map is a kernel over that map."""
    from spikeloop.hwprofiles.fit import CONV2D, Layer, check_fit, place_on_speck, speck_memory
    from spikeloop.hwprofiles.rules.speck import _ceil_log2, _match

    assert [_ceil_log2(n) for n in (1, 2, 3, 4, 5, 8, 9)] == [0, 1, 2, 2, 3, 3, 4]
    net = _two_layer_net()
    assert speck_memory(net.layers[0]) == (3, 4 * 4)      # c = 4 inputs, f = 3 -> 2^2
    assert speck_memory(net.layers[1]) == (2, 3 * 2)      # c = 3, f = 2 -> 2^1
    conv = Layer("C", CONV2D, 144, "IF", ("input",), in_shape=(2, 8, 8), out_shape=(4, 6, 6), kernel=(3, 3),
                 kernel_nonzero=72)
    assert speck_memory(conv) == (4 * 2 ** (3 + 3), 2 * 2 ** (4 + 2))  # 6 x 6 held as 8 x 8
    assert conv.speck_geometry() == (2, 3, 3, 4, 6, 6, 8, 8)
    behind = Layer("D", "dense", 5, "IF", ("C",), {"C": np.ones((5, 144))}, in_shape=(4, 6, 6))
    assert behind.speck_geometry() == (4, 6, 6, 5, 1, 1, 6, 6)
    assert speck_memory(behind) == (5, 4 * 2 ** (6 + 3))
    assert net.layers[0].speck_geometry() == (4, 1, 1, 3, 1, 1, 1, 1)
    assert _match([(5, 5), (3, 3)], [(4, 4), (10, 10)]) == [1, 0]
    assert _match([(3, 3), (5, 5)], [(10, 10), (4, 4)]) == [1, 0]     # the first layer moves to make room
    assert _match([(3, 3), (3, 3)], [(4, 4), (4, 4)]) == [0, 1]
    assert _match([(5, 5), (5, 5)], [(10, 10), (4, 4)]) == [0, None]
    assert _match([(4, 4)], [(4, 3), (3, 4), (4, 4)]) == [2]
    cores, note = place_on_speck(net, _limits("speck", **SPECK))
    assert note == ""
    assert cores == [
        {"core": 0, "layer": "A", "neurons": 3, "neuron_memory": 3, "neuron_memory_capacity": 4, "kernel_memory": 16,
         "kernel_memory_capacity": 20},
        {"core": 1, "layer": "B", "neurons": 2, "neuron_memory": 2, "neuron_memory_capacity": 10, "kernel_memory": 6,
         "kernel_memory_capacity": 40}]
    r = check_fit(net, _limits("speck", **SPECK))
    assert r.fits is True and r.cores_used == 2 and r.verdict() == "yes"
    assert r.per_core[0]["utilisation"] == {"neuron_memory": 0.75, "kernel_memory": 0.8}
    assert r.notes[0] == ("dense layers are mapped as convolutions whose kernel covers the whole input "
                          "(input features as channels, 1 x 1 kernel)")
    text = format_fit_lines(r)
    assert text[2] == "  core  layer            neuron memory             kernel memory"
    assert text[3] == "     0  A                     3/4       75.0 %      16/20      80.0 %"
    assert place_on_speck(net, _limits("speck", **dict(SPECK, kernel_memory_per_core=None))) == (None, "")


def test_fit_speck_unplaceable_layers_and_limits():
    """Layers that each fit some core but not together: no placement, a core_assignment violation each."""
    from spikeloop.hwprofiles.fit import check_fit, place_on_speck

    crowded = dict(SPECK, neuron_memory_per_core=(4, 1, 1), kernel_memory_per_core=(20, 1, 1))
    cores, note = place_on_speck(_two_layer_net(), _limits("speck", **crowded))
    assert cores is None and note == "B"
    r = check_fit(_two_layer_net(), _limits("speck", **crowded))
    got = [(v.rule, v.layer, v.value) for v in r.violations]
    assert ("core_assignment", "B", "(2, 6)") in got
    assert ("neuron_memory_per_core", "A", 3) not in got
    small = dict(SPECK, neuron_memory_per_core=(2, 2, 2), kernel_memory_per_core=(6, 6, 6), max_channels=3,
                 destinations_per_core=0, bias_memory_per_core=2, layer_kinds=("dense",), cores=1)
    r = check_fit(_two_layer_net(), _limits("speck", **small))
    got = [(v.rule, v.layer, v.what, v.value, v.limit) for v in r.violations]
    assert got == [("layer_kinds", "A", "layer kind", "dense", "dense"),
                   ("layer_kinds", "B", "layer kind", "dense", "dense"),
                   ("cores", "<network>", "layers (one core each)", 2, 1),
                   ("neuron_memory_per_core", "A", "neuron memory", 3, 2),
                   ("kernel_memory_per_core", "A", "kernel memory", 16, 6),
                   ("bias_memory_per_core", "A", "biases (one per output channel)", 3, 2),
                   ("destinations_per_core", "A", "destination layers", 1, 0),
                   ("max_channels", "A", "input channels", 4, 3)]
    assert r.violations[-1].hint == "a dense layer's input features become channels"


# ============================================================================ fit: the network view
def test_network_layer_properties():
    """Layer: spiking models, stored synapses (a convolution's kernel), fan-in per neuron, neighbours."""
    from spikeloop.hwprofiles.fit import CONV2D, DENSE, Layer, Network

    for model, spiking in (("IF", True), ("LIF", True), ("CubaLIF", True), ("LI", False), ("CubaLI", False)):
        assert Layer("x", DENSE, 1, model, ()).spiking is spiking
    net = _two_layer_net()
    a, b = net.layers
    assert (a.synapses, b.synapses) == (6, 4)
    np.testing.assert_array_equal(a.fan_in, [2, 2, 2])
    two = Layer("t", DENSE, 2, "LIF", ("p", "q"), {"p": np.array([[1, 0], [1, 1]]), "q": np.array([[0, 0, 3], [0, 0, 0]])})
    np.testing.assert_array_equal(two.fan_in, [2, 2])
    assert two.synapses == 4 and two.speck_geometry()[0] == 5
    empty = Layer("e", DENSE, 3, "LIF", ())
    np.testing.assert_array_equal(empty.fan_in, [0, 0, 0])
    assert empty.synapses == 0
    conv = Layer("c", CONV2D, 8, "IF", ("input",), weights={"input": np.ones((8, 4))}, in_shape=(1, 2, 2),
                 out_shape=(2, 2, 2), kernel=(1, 1), kernel_nonzero=2)
    assert conv.synapses == 2
    assert net.layer("B") is b and [lay.name for lay in net.destinations("A")] == ["B"]
    assert net.destinations("B") == [] and [lay.name for lay in net.destinations("input")] == ["A"]


def test_network_layers_from_plan():
    """The mapping view of a compiled plan: one dense layer per population, its sources, weights and bias."""
    from spikeloop.core.errors import ConfigError
    from spikeloop.hwprofiles.fit import layers_from_nir, layers_from_plan, neuron_model

    net = layers_from_plan(small_plan(), "small")
    assert (net.input_size, net.output, net.source) == (2, "o", "small")
    h, o = net.layers
    assert (h.name, h.kind, h.neurons, h.model, h.sources, h.has_bias) == ("h", "dense", 2, "LIF", ("input",), True)
    assert (o.name, o.model, o.sources, o.has_bias) == ("o", "CubaLI", ("h",), False)
    np.testing.assert_array_equal(o.weights["h"], [[3.0, -1.0]])
    assert layers_from_plan(small_plan(h_bias=(0.0, 0.0))).layers[0].has_bias is False
    assert neuron_model(1.0, 0.0, True) == "IF" and neuron_model(0.5, 0.5, False) == "CubaLI"
    import nir

    g = nir.NIRGraph({"in": nir.Input({"input": np.array([2])}), "fc": nir.Linear(np.ones((1, 2))),
                      "n": nir.LI(np.array([1e-3]), np.array([1.0]), np.array([0.0])),
                      "out": nir.Output({"output": np.array([1])})},
                     [("in", "fc"), ("fc", "n"), ("n", "out")])
    with pytest.raises(ConfigError):
        layers_from_nir(g, source="g.nir")
    assert layers_from_nir(g, plan=small_plan(), source="g.nir").layers[0].name == "h"


def _conv_graph(pool=2, padding=0, stride=1, bias=0.0, dilation=1, tau_syn=None, leak=0.0):
    """in (2, 6, 6) -> conv 4x2x3x3 -> IF -> [SumPool2d] -> Flatten -> Affine -> LIF or CubaLIF -> out."""
    import nir

    w = np.zeros((4, 2, 3, 3))
    w[:, :, 1, 1] = 1.0
    w[0, 0, 0, 0] = 2.0
    side = (6 + 2 * padding - dilation * 2 - 1) // stride + 1
    pooled = side // pool
    n_flat = 4 * pooled * pooled
    nodes = {"in": nir.Input({"input": np.array([2, 6, 6])}),
             "conv": nir.Conv2d((6, 6), w, stride, padding, dilation, 1, np.full(4, bias)),
             "if": nir.IF(np.ones((4, side, side)), np.ones((4, side, side))),
             "flat": nir.Flatten({"input": np.array([4, pooled, pooled])}),
             "fc": nir.Affine(np.ones((3, n_flat)), np.zeros(3)),
             "out": nir.Output({"output": np.array([3])})}
    if tau_syn is None:
        nodes["lif"] = nir.LIF(np.full(3, 0.01), np.ones(3), np.full(3, leak), np.ones(3))
    else:
        nodes["lif"] = nir.CubaLIF(np.full(3, tau_syn), np.full(3, 0.01), np.ones(3), np.zeros(3), np.ones(3))
    edges = [("in", "conv"), ("conv", "if")]
    if pool > 1:
        nodes["pool"] = nir.SumPool2d(np.array([pool, pool]), np.array([pool, pool]), np.array([0, 0]))
        edges += [("if", "pool"), ("pool", "flat")]
    else:
        edges += [("if", "flat")]
    edges += [("flat", "fc"), ("fc", "lif"), ("lif", "out")]
    return nir.NIRGraph(nodes, edges, type_check=False)


def test_network_conv_graph_read_straight_from_nir():
    """A Conv2d graph: output side (h + 2p - d(k-1) - 1) // s + 1, pooling on the source layer, kernel non-zeros."""
    from spikeloop.hwprofiles.fit import CONV2D, DENSE, has_conv, layers_from_nir

    g = _conv_graph()
    assert has_conv(g)
    net = layers_from_nir(g, dt_s=1e-3)
    assert (net.input_size, net.output, [lay.name for lay in net.layers]) == (72, "lif", ["if", "lif"])
    c, d = net.layers
    assert (c.kind, c.neurons, c.model, c.sources) == (CONV2D, 64, "IF", ("input",))
    assert (c.in_shape, c.out_shape, c.kernel, c.stride, c.padding, c.pool) == ((2, 6, 6), (4, 4, 4), (3, 3), (1, 1),
                                                                                (0, 0), 2)
    assert c.kernel_nonzero == 9 and c.has_bias is False
    assert (d.kind, d.neurons, d.model, d.sources, d.pool, d.has_bias) == (DENSE, 3, "LIF", ("if",), 1, False)
    assert d.weights["if"].shape == (3, 16)
    net = layers_from_nir(_conv_graph(pool=1, padding=1, stride=2, bias=0.5, leak=0.25), dt_s=1e-3)
    c, d = net.layers
    assert (c.out_shape, c.stride, c.padding, c.pool, c.has_bias) == ((4, 3, 3), (2, 2), (1, 1), 1, True)
    assert d.has_bias is True and d.weights["if"].shape == (3, 36)
    c = layers_from_nir(_conv_graph(pool=1, dilation=2), dt_s=1e-3).layers[0]
    assert c.out_shape == (4, 2, 2)
    d = layers_from_nir(_conv_graph(pool=3), dt_s=1e-3).layers[1]
    assert d.weights["if"].shape == (3, 4)
    assert layers_from_nir(_conv_graph(tau_syn=1e-3), dt_s=1e-3).layers[1].model == "LIF"
    assert layers_from_nir(_conv_graph(tau_syn=2e-3), dt_s=1e-3).layers[1].model == "CubaLIF"
    assert layers_from_nir(_conv_graph(tau_syn=1e-3), dt_s=None).layers[1].model == "CubaLIF"


def test_network_nir_models_and_malformed_conv_graphs():
    """_nir_model names each NIR neuron; a neuron fed by no Conv2d/Linear/Affine is refused."""
    import nir

    from spikeloop.core.errors import NIRValidationError
    from spikeloop.hwprofiles.fit import layers_from_nir
    from spikeloop.hwprofiles.network import _nir_model

    one = np.ones(1)
    assert _nir_model(nir.IF(one, one), 1e-3) == "IF"
    assert _nir_model(nir.LIF(one, one, one, one), 1e-3) == "LIF"
    assert _nir_model(nir.LI(one, one, one), 1e-3) == "LI"
    assert _nir_model(nir.CubaLI(one * 1e-3, one, one, one), 1e-3) == "LI"
    assert _nir_model(nir.CubaLI(one * 2e-3, one, one, one), 1e-3) == "CubaLI"
    two = np.ones(2)
    assert _nir_model(nir.CubaLIF(np.array([1e-3, 2e-3]), two, two, two, two), 1e-3) == "CubaLIF"
    g = _conv_graph()
    g.nodes["fc2"] = nir.Linear(np.ones((3, 3)))
    g.edges.append(("fc2", "lif"))
    with pytest.raises(NIRValidationError):
        layers_from_nir(g, dt_s=1e-3)
    g = _conv_graph()
    g.nodes["in2"] = nir.Input({"input": np.array([1])})
    with pytest.raises(NIRValidationError):
        layers_from_nir(g, dt_s=1e-3)


# ============================================================================ compiler (imports torch: last)
def _g(nodes: dict, edges: list, n_in: int, n_out: int, metadata=None):
    import nir

    nodes = {"input": nir.Input({"input": np.array([n_in])}), **nodes,
             "output": nir.Output({"output": np.array([n_out])})}
    return nir.NIRGraph(nodes, edges, metadata or {}, type_check=False)


def _compile(graph, **kw):
    from spikeloop.runtime.compiler import plan_from_nir

    return plan_from_nir(graph, dt_s=kw.pop("dt_s", 1e-3), **kw)


W = np.array([[1.0, -2.0], [0.5, 4.0]])


def test_compiler_lif_and_li_by_forward_euler():
    """LIF: du 1, dv dt/tau, gain dv*r on the weight rows, bias dv*v_leak; LI: the same without threshold."""
    import nir

    g = _g({"fc": nir.Linear(W), "lif": nir.LIF(np.array([0.01, 0.004]), np.array([2.0, 1.0]), np.array([0.5, 0.0]),
                                                 np.array([1.0, 1.0])),
            "fc2": nir.Linear(np.array([[1.0, 1.0]])), "li": nir.LI(np.array([0.002]), np.array([3.0]), np.array([1.0]))},
           [("input", "fc"), ("fc", "lif"), ("lif", "fc2"), ("fc2", "li"), ("li", "output")], 2, 1)
    plan = _compile(g, T=4)
    assert [p.name for p in plan.populations] == ["lif", "li"] and plan.output == "li" and plan.T == 4
    lif, li = plan.populations
    np.testing.assert_allclose(lif.du, [1.0, 1.0])
    np.testing.assert_allclose(lif.dv, [0.1, 0.25])
    np.testing.assert_allclose(lif.bias, [0.05, 0.0])
    assert (lif.vth, lif.reset, lif.kind, lif.shape) == (1.0, "hard", "LIF", (2,))
    np.testing.assert_allclose(li.dv, [0.5])
    np.testing.assert_allclose(li.bias, [0.5])
    assert (li.vth, li.kind) == (None, "LI")
    c1, c2 = plan.connections
    assert (c1.name, c1.src, c1.dst, c1.graph_delay, c1.delay) == ("fc", INPUT, "lif", 0, 0)
    np.testing.assert_allclose(c1.weight, [[0.2, -0.4], [0.125, 1.0]])      # rows times dv * r = 0.2, 0.25
    assert (c2.name, c2.src, c2.dst) == ("fc2", "lif", "li")
    np.testing.assert_allclose(c2.weight, [[1.5, 1.5]])                       # 0.5 * 3
    assert plan.dt_s == 1e-3 and plan.input_size == 2 and plan.input_shape == (2,)
    assert _compile(g).T == 1


def test_compiler_cuba_if_and_threshold_nodes():
    """CubaLIF: du dt/tau_syn, gain du*dv*r*w_in; IF: dv 0, gain dt*r; Threshold: du = dv = gain = 1."""
    import nir

    two = np.ones(2)
    g = _g({"fc": nir.Linear(W),
            "cuba": nir.CubaLIF(np.full(2, 0.002), np.full(2, 0.004), np.full(2, 2.0), np.full(2, 0.4), two,
                                w_in=np.full(2, 3.0)),
            "fc2": nir.Linear(np.eye(2)), "if": nir.IF(np.full(2, 2.0), two),
            "fc3": nir.Linear(np.eye(2)), "th": nir.Threshold(np.full(2, 0.5)),
            "fc4": nir.Linear(np.ones((1, 2))),
            "cli": nir.CubaLI(np.array([0.004]), np.array([0.002]), np.array([1.0]), np.array([0.0]),
                              w_in=np.array([2.0]))},
           [("input", "fc"), ("fc", "cuba"), ("cuba", "fc2"), ("fc2", "if"), ("if", "fc3"), ("fc3", "th"),
            ("th", "fc4"), ("fc4", "cli"), ("cli", "output")], 2, 1)
    plan = _compile(g)
    cuba, iff, th, cli = plan.populations
    np.testing.assert_allclose(cuba.du, [0.5, 0.5])
    np.testing.assert_allclose(cuba.dv, [0.25, 0.25])
    np.testing.assert_allclose(cuba.bias, [0.1, 0.1])
    np.testing.assert_allclose(plan.connections[0].weight, W * 0.75)        # 0.5 * 0.25 * 2 * 3
    np.testing.assert_allclose(iff.du, [1.0, 1.0])
    np.testing.assert_allclose(iff.dv, [0.0, 0.0])
    np.testing.assert_allclose(iff.bias, [0.0, 0.0])
    np.testing.assert_allclose(plan.connections[1].weight, np.eye(2) * 0.002)
    np.testing.assert_allclose(th.du, [1.0, 1.0])
    np.testing.assert_allclose(th.dv, [1.0, 1.0])
    assert th.vth == 0.5 and th.kind == "Threshold"
    np.testing.assert_allclose(plan.connections[2].weight, np.eye(2))
    np.testing.assert_allclose(cli.du, [0.25])
    np.testing.assert_allclose(cli.dv, [0.5])
    np.testing.assert_allclose(plan.connections[3].weight, [[0.25, 0.25]])  # 0.25 * 0.5 * 1 * 2
    assert [p.kind for p in plan.populations] == ["CubaLIF", "IF", "Threshold", "CubaLI"]


def test_compiler_composes_linear_chains_and_biases():
    """Linear ops between two populations compose into one matrix; an Affine bias into a LIF is a voltage
    bias gain * b; into a CubaLIF it is a bias source's synapses of weight gain * b."""
    import nir

    g = _g({"fc": nir.Affine(W, np.array([1.0, -1.0])), "sc": nir.Scale(np.array([2.0, 3.0])),
            "lif": nir.LIF(np.full(2, 0.002), np.ones(2), np.zeros(2), np.ones(2)),
            "fc2": nir.Affine(np.ones((1, 2)), np.array([0.5])),
            "cuba": nir.CubaLIF(np.array([0.002]), np.array([0.002]), np.array([1.0]), np.array([0.0]),
                                np.array([1.0]))},
           [("input", "fc"), ("fc", "sc"), ("sc", "lif"), ("lif", "fc2"), ("fc2", "cuba"), ("cuba", "output")], 2, 1)
    plan = _compile(g)
    assert [p.name for p in plan.populations] == ["lif", "cuba.bias", "cuba"]
    lif, src, cuba = plan.populations
    np.testing.assert_allclose(plan.connections[0].weight, np.diag([2.0, 3.0]) @ W * 0.5)
    assert plan.connections[0].name == "fc+sc"
    np.testing.assert_allclose(lif.bias, [1.0, -1.5])          # 0.5 * (2 * 1, 3 * -1)
    np.testing.assert_allclose(cuba.bias, [0.0])
    assert src.bias_source and src.size == 1 and src.vth == 0.5
    bias_conn = [c for c in plan.connections if c.src == "cuba.bias"]
    assert len(bias_conn) == 1 and bias_conn[0].dst == "cuba" and bias_conn[0].name == "cuba.bias"
    np.testing.assert_allclose(bias_conn[0].weight, [[0.125]])  # du dv = 0.25, times 0.5
    np.testing.assert_allclose([c.weight for c in plan.connections if c.src == "lif"][0], [[0.25, 0.25]])
    g.nodes["fc"] = nir.Affine(W, np.array([0.5, 1 / 3]))                 # a current of exactly 1 is a bias too
    np.testing.assert_allclose(_compile(g).populations[0].bias, [0.5, 0.5])


def test_compiler_recurrence_delay_and_reset_modes():
    """A neuron's output into itself arrives a step later (graph delay 1); a Delay node adds whole steps;
    reset: the argument, then the node's metadata, then the graph's, else hard."""
    import nir

    lif = lambda: nir.LIF(np.full(2, 0.002), np.ones(2), np.zeros(2), np.ones(2))  # noqa: E731
    g = _g({"fc": nir.Linear(W), "lif": lif(), "rec": nir.Linear(np.eye(2)), "d": nir.Delay(np.array([0.002, 0.002])),
            "fc2": nir.Linear(np.ones((1, 2))), "li": nir.LI(np.array([0.002]), np.ones(1), np.zeros(1))},
           [("input", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "d"), ("d", "fc2"), ("fc2", "li"),
            ("li", "output")], 2, 1)
    plan = _compile(g)
    by = {c.name: c for c in plan.connections}
    assert by["rec"].graph_delay == 1 and (by["rec"].src, by["rec"].dst) == ("lif", "lif")
    assert by["d+fc2"].graph_delay == 2 and by["fc"].graph_delay == 0
    np.testing.assert_allclose(by["rec"].weight, np.eye(2) * 0.5)
    np.testing.assert_allclose(by["d+fc2"].weight, [[0.5, 0.5]])          # the delayed path keeps its weights
    assert plan.populations[0].reset == "hard"
    assert _compile(g, reset="soft").populations[0].reset == "soft"
    g.nodes["lif"].metadata = {"reset": b"soft"}
    assert _compile(g).populations[0].reset == "soft"
    assert _compile(g, reset="hard").populations[0].reset == "hard"
    g.nodes["lif"].metadata = {}
    assert _compile(g).populations[1].reset == "hard"         # a non-spiking population: hard


def test_compiler_keeps_conv_and_pooling_as_kernels():
    """Conv2d, SumPool2d and AvgPool2d stay kernels (a pooling the depthwise kernel of ones or of
    their mean) whose unrolled matrices are the maps they apply (C-order, per sample)."""
    import nir

    k = np.zeros((1, 1, 2, 2))
    k[0, 0] = [[1.0, 2.0], [3.0, 4.0]]
    g = _g({"conv": nir.Conv2d((2, 3), k, 1, 0, 1, 1, np.zeros(1)),
            "if": nir.IF(np.ones((1, 1, 2)), np.ones((1, 1, 2))),
            "flat": nir.Flatten({"input": np.array([1, 1, 2])}), "fc": nir.Linear(np.ones((1, 2))),
            "li": nir.LI(np.array([0.001]), np.ones(1), np.zeros(1))},
           [("input", "conv"), ("conv", "if"), ("if", "flat"), ("flat", "fc"), ("fc", "li"), ("li", "output")], 6, 1)
    g.nodes["input"] = nir.Input({"input": np.array([1, 2, 3])})
    plan = _compile(g)
    # input 2 x 3 (x0..x5), output 1 x 2: y0 = x0 + 2 x1 + 3 x3 + 4 x4, y1 = x1 + 2 x2 + 3 x4 + 4 x5; IF gain dt * r
    np.testing.assert_allclose(plan.connections[0].dense(), 1e-3 * np.array([[1, 2, 0, 3, 4, 0], [0, 1, 2, 0, 3, 4]]))
    assert plan.input_shape == (1, 2, 3) and plan.populations[0].shape == (1, 1, 2)
    conv = plan.connections[0]
    np.testing.assert_allclose(conv.weight, 1e-3 * k)  # the kernel itself, times the IF gain
    assert conv.conv.in_shape == (1, 2, 3) and conv.conv.out_shape == (1, 1, 2) and conv.shape == (2, 6)
    np.testing.assert_array_equal(conv.fanout(), [1, 2, 1, 1, 2, 1])
    np.testing.assert_allclose(conv.row_abs_sum(), 1e-3 * np.array([10, 10]))
    assert plan.connections[1].conv is None  # the Linear after the Flatten is dense
    pool = _g({"p": nir.SumPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0])),
               "if": nir.IF(np.ones((1, 1, 1)), np.ones((1, 1, 1)))}, [("input", "p"), ("p", "if"), ("if", "output")], 4, 1)
    pool.nodes["input"] = nir.Input({"input": np.array([1, 2, 2])})
    np.testing.assert_allclose(_compile(pool).connections[0].dense(), 1e-3 * np.ones((1, 4)))
    assert _compile(pool).connections[0].weight.shape == (1, 1, 2, 2)
    pool.nodes["p"] = nir.AvgPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0]))
    np.testing.assert_allclose(_compile(pool).connections[0].dense(), 1e-3 * np.full((1, 4), 0.25))
    pool.nodes["input"] = nir.Input({"input": np.array([2, 2])})          # (H, W): one channel
    np.testing.assert_allclose(_compile(pool).connections[0].dense(), 1e-3 * np.full((1, 4), 0.25))
    flat = _g({"conv": nir.Conv2d((2, 3), k, 1, 0, 1, 1, np.zeros(1)), "if": nir.IF(np.ones((1, 1, 2)), np.ones((1, 1, 2))),
               "flat": nir.Flatten({"input": np.array([1, 1, 2])}), "fc": nir.Linear(np.ones((1, 2))),
               "li": nir.LI(np.array([0.001]), np.ones(1), np.zeros(1))},
              [("input", "conv"), ("conv", "if"), ("if", "flat"), ("flat", "fc"), ("fc", "li"), ("li", "output")], 6, 1)
    np.testing.assert_allclose(_compile(flat).connections[0].dense(),           # flat input read as (1, 2, 3)
                               1e-3 * np.array([[1, 2, 0, 3, 4, 0], [0, 1, 2, 0, 3, 4]]))


@pytest.mark.parametrize("case", ["v_reset", "tau", "two_thresholds", "negative_threshold", "unknown_node",
                                  "two_outputs", "no_edge", "graded_feed", "op_cycle", "shape", "bad_reset",
                                  "bias_into_delay", "fractional_delay", "empty_tau", "bad_params",
                                  "output_from_op", "fractional_stride", "short_encoding",
                                  "no_input", "empty_stride", "two_output_sources",
                                  "fractional_padding", "bool_padding"])
def test_compiler_refuses_malformed_graphs(case):
    """Each malformed graph is one NIRValidationError (Lava's reset to 0, positive time constants,
    one threshold per population, supported nodes, one Input and Output, no instant op cycle ...)."""
    import nir

    from spikeloop.core.errors import NIRValidationError

    one = np.ones(2)
    lif = dict(tau=np.full(2, 0.002), r=one, v_leak=np.zeros(2), v_threshold=one)
    nodes = {"fc": nir.Linear(W), "lif": nir.LIF(**lif)}
    edges = [("input", "fc"), ("fc", "lif"), ("lif", "output")]
    if case == "v_reset":
        nodes["lif"] = nir.LIF(**lif, v_reset=np.array([0.0, 0.5]))
    elif case == "tau":
        nodes["lif"] = nir.LIF(**dict(lif, tau=np.array([0.002, 0.0])))
    elif case == "two_thresholds":
        nodes["lif"] = nir.LIF(**dict(lif, v_threshold=np.array([1.0, 2.0])))
    elif case == "negative_threshold":
        nodes["lif"] = nir.LIF(**dict(lif, v_threshold=np.array([-1.0, -1.0])))
    elif case == "unknown_node":
        nodes["fc"] = nir.I(np.ones(2)) if hasattr(nir, "I") else nir.Output({"output": np.array([2])})
    elif case == "two_outputs":
        nodes["out2"] = nir.Output({"output": np.array([2])})
        edges.append(("lif", "out2"))
    elif case == "no_edge":
        nodes["fc2"] = nir.Linear(W)
        nodes["lif2"] = nir.LIF(**lif)
        edges.append(("fc2", "lif2"))
    elif case == "graded_feed":
        nodes["li"] = nir.LI(np.full(2, 0.002), one, np.zeros(2))
        nodes["fc2"] = nir.Linear(W)
        edges = [("input", "fc"), ("fc", "li"), ("li", "fc2"), ("fc2", "lif"), ("lif", "output")]
    elif case == "op_cycle":
        nodes["fc2"] = nir.Linear(np.eye(2))
        edges = [("input", "fc"), ("fc", "fc2"), ("fc2", "fc"), ("fc", "lif"), ("lif", "output")]
    elif case == "shape":
        nodes["fc"] = nir.Linear(np.ones((2, 3)))
    elif case == "bad_reset":
        nodes["lif"].metadata = {"reset": "subtract"}
    elif case == "bias_into_delay":
        nodes["fc"] = nir.Affine(W, np.ones(2))
        nodes["d"] = nir.Delay(np.array([0.001, 0.001]))
        edges = [("input", "fc"), ("fc", "d"), ("d", "lif"), ("lif", "output")]
    elif case == "empty_tau":
        nodes["lif"].tau = np.array([])
    elif case == "bad_params":
        nodes["lif"].r = np.ones(3)                              # 2 time constants, 3 resistances
    elif case == "output_from_op":
        nodes["fc2"] = nir.Linear(np.eye(2))
        edges = [("input", "fc"), ("fc", "lif"), ("lif", "fc2"), ("fc2", "output")]
    elif case == "fractional_stride":
        nodes["conv"] = nir.Conv2d((1, 2), np.ones((1, 1, 1, 1)), 1, 0, 1, 1, np.zeros(1))
        nodes["conv"].stride = np.array([2.5, 2.5])
        edges = [("input", "conv"), ("conv", "fc"), ("fc", "lif"), ("lif", "output")]
    elif case == "no_input":
        import nir as _nir

        g = _nir.NIRGraph({k: v for k, v in nodes.items()} | {"output": _nir.Output({"output": np.array([2])})},
                          [e for e in edges if e[0] != "input"], type_check=False)
        with pytest.raises(NIRValidationError):
            _compile(g)
        return
    elif case == "two_output_sources":
        nodes["lif2"] = nir.LIF(**lif)
        edges = [("input", "fc"), ("fc", "lif"), ("fc", "lif2"), ("lif", "output"), ("lif2", "output")]
    elif case in ("fractional_padding", "bool_padding"):
        nodes["conv"] = nir.Conv2d((1, 2), np.ones((1, 1, 1, 1)), 1, 0, 1, 1, np.zeros(1))
        nodes["conv"].padding = np.array([0.5, 0.5]) if case == "fractional_padding" else np.array([False, False])
        edges = [("input", "conv"), ("conv", "fc"), ("fc", "lif"), ("lif", "output")]
    elif case == "empty_stride":
        nodes["conv"] = nir.Conv2d((1, 2), np.ones((1, 1, 1, 1)), 1, 0, 1, 1, np.zeros(1))
        nodes["conv"].stride = np.array([])
        edges = [("input", "conv"), ("conv", "fc"), ("fc", "lif"), ("lif", "output")]
    elif case == "short_encoding":
        from spikeloop.core.coding import InputEncoding
        from spikeloop.core.metadata import GraphMeta

        g = _g(nodes, edges, 2, 2, GraphMeta(dt_s=1e-3, encoding=InputEncoding((0.0,), (1.0,))).to_nir_metadata())
        with pytest.raises(NIRValidationError):
            _compile(g)
        return
    elif case == "fractional_delay":
        nodes["d"] = nir.Delay(np.array([0.0015, 0.001]))
        edges = [("input", "fc"), ("fc", "d"), ("d", "lif"), ("lif", "output")]
    g = _g(nodes, edges, 2, 2)
    with pytest.raises(NIRValidationError):
        _compile(g)


def test_compiler_bias_source_and_limits():
    """The bias source: one LIF neuron, du = dv = 1, bias 1 > vth 0.5 (fires every step); names; limits."""
    from spikeloop.core.errors import NIRValidationError
    from spikeloop.runtime.compiler import MAX_UNROLLED, _dense, _op_order, bias_source, bias_source_name

    s = bias_source("x.bias")
    assert (s.name, s.size, s.vth, s.kind, s.reset, s.bias_source) == ("x.bias", 1, 0.5, "LIF", "hard", True)
    np.testing.assert_array_equal(s.du, [1.0])
    np.testing.assert_array_equal(s.dv, [1.0])
    np.testing.assert_array_equal(s.bias, [1.0])
    assert bias_source_name("pop") == "pop.bias"
    assert MAX_UNROLLED == 50_000_000
    np.testing.assert_array_equal(_dense(None, 3), np.eye(3))
    m = np.ones((2, 2))
    assert _dense(m, 2) is m
    with pytest.raises(NIRValidationError):
        _dense(None, 7072)                     # 7072 ** 2 > 5e7
    assert _op_order(["a", "b", "c"], {"a": ["input"], "b": ["a", "c"], "c": ["a"]}, "g") == ["a", "c", "b"]
    with pytest.raises(NIRValidationError):
        _op_order(["a", "b"], {"a": ["b"], "b": ["a"]}, "g")


def test_fit_violation_messages_and_numbers():
    """Violation.message: value, unit, limit and excess (thousands separated), or the allowed set; hints."""
    from spikeloop.hwprofiles.fit import Violation
    from spikeloop.hwprofiles.rules.common import _num, listed, over

    v = Violation("cores", "<network>", "cores used", 1500, 1024, "cores", 476, "split it")
    assert v.message() == "[cores] layer '<network>': cores used 1,500 cores > limit 1,024 cores (excess 476 cores). split it"
    k = Violation("layer_kinds", "A", "layer kind", "dense", "conv2d")
    assert k.message() == "[layer_kinds] layer 'A': layer kind dense; allowed: conv2d"
    assert (_num(1234567), _num(2.5), _num(1234.5678), _num("x")) == ("1,234,567", "2.5", "1,235", "x")
    assert over("r", "L", "what", 3, 3, "u") == [] and over("r", "L", "what", 4, 3, "u")[0].excess == 1
    assert over("r", "L", "what", 2.5, 2, "u", "h")[0].hint == "h"
    p = _limits(memory_per_core=1)
    assert listed(p, ("synapse_memory_per_core", "memory_per_core")) == "memory_per_core"
    assert listed(p, ("a", "b")) == "a" and listed(p, "cores") == "cores"


def test_fit_chunks_and_report_lines():
    """Layers split as evenly as possible (the first chunks one larger); the report's rule lines."""
    from spikeloop.hwprofiles.fit import check_fit, format_fit
    from spikeloop.hwprofiles.rules.cores import _chunks, _core_load

    assert _chunks(5, 2) == [(0, 3), (3, 5)]
    assert _chunks(7, 3) == [(0, 3), (3, 5), (5, 7)]
    assert _chunks(3, 3) == [(0, 1), (1, 2), (2, 3)]
    assert _chunks(4, 1) == [(0, 4)]
    a = _two_layer_net().layers[0]
    assert _core_load(a, 0, 2) == (4, 3) and _core_load(a, 2, 3) == (2, 2) and _core_load(a, 0, 3) == (6, 4)
    r = check_fit(_two_layer_net(), _limits(**dict(CORES, cores=4, fan_out_per_core=None)))
    lines = format_fit(r).splitlines()
    assert "  violated: cores" in lines
    assert "  ok: neurons_per_core, synapse_memory_per_core, fan_in_per_core, neurons_per_chip, synapses_per_chip, " \
           "weight_bits, neuron_models" in lines
    assert any(x.startswith("  not checked: fan_out_per_core (limit not published), synapse_encoding (") for x in lines)
    assert r.per_core[0]["utilisation"]["fan_out"] is None
    assert "     0  A                     1  50.0 %         2 B  66.7 %      2  66.7 %      1       –" in lines
    none = check_fit(_two_layer_net(), _limits(**dict(CORES, neurons_per_chip=None, cores=None)))
    text = format_fit(none).splitlines()
    assert "  cores used: 5" in text and "  neurons: 5 of unknown neurons (–)" in text
    assert none.resources[0]["utilisation"] is None and none.cores_available is None
    zero = check_fit(_two_layer_net(), _limits(**dict(CORES, neurons_per_chip=0)))
    assert zero.resources[0]["utilisation"] is None
    assert zero.violations[0].rule == "neurons_per_chip"


def test_network_conv_after_pooling_and_flat_input():
    """A convolution fed through a SumPool2d reads the pooled size; a flat input takes the conv's input_shape."""
    import nir

    from spikeloop.hwprofiles.fit import layers_from_nir

    k1, k2 = np.ones((2, 1, 3, 3)), np.ones((2, 2, 2, 2))
    nodes = {"in": nir.Input({"input": np.array([1, 8, 8])}),
             "c1": nir.Conv2d((8, 8), k1, 1, 0, 1, 1, np.zeros(2)), "n1": nir.IF(np.ones((2, 6, 6)), np.ones((2, 6, 6))),
             "p": nir.SumPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0])),
             "c2": nir.Conv2d((3, 3), k2, 1, 0, 1, 1, np.zeros(2)), "n2": nir.IF(np.ones((2, 2, 2)), np.ones((2, 2, 2))),
             "out": nir.Output({"output": np.array([2, 2, 2])})}
    edges = [("in", "c1"), ("c1", "n1"), ("n1", "p"), ("p", "c2"), ("c2", "n2"), ("n2", "out")]
    net = layers_from_nir(nir.NIRGraph(nodes, edges, type_check=False), dt_s=1e-3)
    a, b = net.layers
    assert (a.out_shape, a.pool, b.in_shape, b.out_shape, b.sources) == ((2, 6, 6), 2, (2, 3, 3), (2, 2, 2), ("n1",))
    assert (net.output, net.input_size, b.kernel_nonzero, b.neurons) == ("n2", 64, 16, 8)
    nodes["in"] = nir.Input({"input": np.array([64])})
    a = layers_from_nir(nir.NIRGraph(nodes, edges, type_check=False), dt_s=1e-3).layers[0]
    assert (a.in_shape, a.out_shape) == ((1, 8, 8), (2, 6, 6))


def test_fit_conventional_profile_runs_no_rule():
    """A conventional profile (mapping 'none') has no rules and no notes: the verdict is unknown."""
    from spikeloop.hwprofiles.fit import check_fit, format_fit

    r = check_fit(_two_layer_net(), _limits("none"))
    assert r.results == [] and r.notes == [] and r.fits is None and r.resources == [] and r.cores_used is None
    assert format_fit(r).splitlines()[:2] == ["P (P title), mapping 'none': fits: unknown (no limit published)",
                                               "  cores used: –"]
    x = check_fit(_two_layer_net(), _limits("xylo", **XYLO))
    assert format_fit(x).splitlines()[1] == "  cores used: –"
    bad = check_fit(_two_layer_net(), _limits(**dict(CORES, cores=4)))
    d = bad.to_dict()
    assert d["violations"] == [{"rule": "cores", "layer": "<network>", "what": "cores used", "value": 5, "limit": 4,
                                "unit": "cores", "excess": 1,
                                "hint": "split the network over several chips (not modelled) or shrink the layers",
                                "message": bad.violations[0].message()}]


def test_network_non_square_shapes_and_overshooting_synapses():
    """Non-square inputs keep (h, w) in order; the pooling factor is the kernel's first side; a CubaLIF whose
    tau_syn is shorter than dt (du > 1) still has a current state."""
    import nir

    from spikeloop.core.errors import NIRValidationError
    from spikeloop.hwprofiles.fit import layers_from_nir
    from spikeloop.hwprofiles.network import _nir_model

    nodes = {"in": nir.Input({"input": np.array([2, 6, 8])}),
             "c": nir.Conv2d((6, 8), np.ones((4, 2, 3, 3)), 1, 0, 1, 1, np.zeros(4)),
             "n": nir.IF(np.ones((4, 4, 6)), np.ones((4, 4, 6))),
             "p": nir.SumPool2d(np.array([2, 3]), np.array([2, 3]), np.array([0, 0])),
             "f": nir.Flatten({"input": np.array([4, 2, 2])}), "fc": nir.Linear(np.ones((1, 16))),
             "o": nir.LIF(np.ones(1), np.ones(1), np.zeros(1), np.ones(1)), "out": nir.Output({"output": np.array([1])})}
    edges = [("in", "c"), ("c", "n"), ("n", "p"), ("p", "f"), ("f", "fc"), ("fc", "o"), ("o", "out")]
    c = layers_from_nir(nir.NIRGraph(nodes, edges, type_check=False), dt_s=1e-3).layers[0]
    assert (c.in_shape, c.out_shape, c.pool) == ((2, 6, 8), (4, 4, 6), 2)
    del nodes["out"]
    with pytest.raises(NIRValidationError):
        layers_from_nir(nir.NIRGraph(nodes, edges[:-1], type_check=False), dt_s=1e-3)
    one = np.ones(1)
    for tau_syn in (0.5e-3, 0.6e-3):
        assert _nir_model(nir.CubaLIF(one * tau_syn, one, one, one, one), 1e-3) == "CubaLIF"


def test_fit_speck_input_side_and_channel_hints_of_conv_layers():
    """Speck reads the longer input side (here the width); a convolution's channel violation has no dense hint."""
    from spikeloop.hwprofiles.fit import CONV2D, Layer, Network, check_fit

    conv = Layer("C", CONV2D, 4 * 1 * 6, "LIF", ("input",), in_shape=(5, 2, 8), out_shape=(4, 1, 6), kernel=(2, 3),
                 kernel_nonzero=120)
    net = Network(80, [conv], "C")
    r = check_fit(net, _limits("speck", **dict(SPECK, neuron_memory_per_core=(64, 64, 64),
                                               kernel_memory_per_core=(999, 999, 999), max_kernel_size=3)))
    got = [(v.rule, v.what, v.value, v.limit, v.hint) for v in r.violations]
    assert ("max_input_size", "input side", 8, 4, "") in got
    assert ("max_channels", "input channels", 5, 4, "") in got


def test_fit_speck_matching_through_a_two_step_augmenting_path():
    """Four layers onto four unequal cores: the last layer fits only after two earlier layers move (an
    augmenting path of length two); every layer gets a distinct core that covers both its memories."""
    from spikeloop.hwprofiles.rules.speck import _match

    need = [(2, 3), (4, 4), (1, 4), (3, 4)]
    caps = [(2, 4), (4, 4), (3, 4), (3, 3)]
    where = _match(need, caps)
    assert where == [3, 1, 0, 2]
    assert sorted(where) == [0, 1, 2, 3]
    assert all(n <= caps[j][0] and k <= caps[j][1] for (n, k), j in zip(need, where))


def test_fit_dense_defaults_and_layer_lookup():
    """A dense layer has stride 1 and no padding (so Speck's stride and padding rules pass); Network.layer
    finds a layer by its exact name whatever the order; the input's height is read as well as its width."""
    from spikeloop.hwprofiles.fit import CONV2D, DENSE, Layer, Network, check_fit

    lay = Layer("x", DENSE, 1, "LIF", ())
    assert (lay.stride, lay.padding, lay.pool) == ((1, 1), (0, 0), 1)
    r = check_fit(_two_layer_net(), _limits("speck", **dict(SPECK, strides=(1,), max_padding=0)))
    assert r.violations == []
    b, a = Layer("B", DENSE, 1, "LIF", ("A",)), Layer("A", DENSE, 1, "LIF", ("input",))
    net = Network(1, [b, a], "B")
    assert net.layer("A") is a and net.layer("B") is b
    tall = Layer("T", CONV2D, 4 * 6 * 1, "LIF", ("input",), in_shape=(1, 8, 2), out_shape=(4, 6, 1), kernel=(3, 2),
                 kernel_nonzero=24)
    r = check_fit(Network(16, [tall], "T"), _limits("speck", **dict(SPECK, neuron_memory_per_core=(64, 64, 64),
                                                                      kernel_memory_per_core=(999, 999, 999))))
    assert [(v.rule, v.value) for v in r.violations] == [("max_input_size", 8)]


def test_network_conv_reader_order_cycles_and_dense_bias():
    """Neurons are read once their source is, in any node order; a cycle of neurons is refused; an Affine
    bias marks the dense layer as biased."""
    import nir

    from spikeloop.core.errors import NIRValidationError
    from spikeloop.hwprofiles.fit import layers_from_nir

    g = _conv_graph()
    lif = g.nodes.pop("lif")
    g.nodes = {"lif": lif, **g.nodes}                     # the second layer listed first
    net = layers_from_nir(g, dt_s=1e-3)
    assert [lay.name for lay in net.layers] == ["if", "lif"]
    g = _conv_graph()
    g.nodes["fc"] = nir.Affine(np.ones((3, 16)), np.array([0.0, 0.5, 0.0]))
    assert layers_from_nir(g, dt_s=1e-3).layers[1].has_bias is True
    g = _conv_graph()
    g.nodes["fc_back"] = nir.Linear(np.ones((64, 3)))
    g.edges = [e for e in g.edges if e != ("conv", "if")] + [("lif", "fc_back"), ("fc_back", "if")]
    with pytest.raises(NIRValidationError):
        layers_from_nir(g, dt_s=1e-3)


def test_fit_more_rule_edges():
    """Negative weights are synapses and axons too; as many layers as cores with one unplaceable means no
    placement; Xylo's conv refusal reports every rule; Speck reads the kernel's longer side and adds the
    dense-layer note only for dense layers; a string padding counts as no padding."""
    import nir

    from spikeloop.hwprofiles.fit import CONV2D, DENSE, Layer, Network, check_fit, layers_from_nir, place_on_speck
    from spikeloop.hwprofiles.rules.cores import _core_load

    neg = Layer("N", DENSE, 2, "LIF", ("input",), {"input": np.array([[-1.0, 0.0], [0.0, -2.0]])})
    assert _core_load(neg, 0, 2) == (2, 2)
    two = dict(SPECK, neuron_memory_per_core=(4, 1), kernel_memory_per_core=(20, 1))
    assert place_on_speck(_two_layer_net(), _limits("speck", **two)) == (None, "B")
    conv = Network(4, [Layer("C", CONV2D, 8, "IF", ("input",), in_shape=(1, 2, 2), out_shape=(2, 2, 2),
                             kernel=(1, 1), kernel_nonzero=2)], "C")
    assert len(check_fit(conv, _limits("xylo", **XYLO)).results) == 9    # 6 Xylo rules, 2 common, 1 unimplemented
    wide = Layer("K", CONV2D, 4 * 2 * 2, "LIF", ("input",), in_shape=(1, 2, 6), out_shape=(4, 2, 2), kernel=(1, 5),
                 kernel_nonzero=20)
    r = check_fit(Network(12, [wide], "K"), _limits("speck", **dict(SPECK, neuron_memory_per_core=(64, 64, 64),
                                                                      kernel_memory_per_core=(999, 999, 999))))
    assert [(v.rule, v.value) for v in r.violations] == [("max_input_size", 6), ("max_kernel_size", 5)]
    assert not any(n.startswith("dense layers are mapped") for n in r.notes) and len(r.notes) == 1
    g = _conv_graph()
    g.nodes["conv"] = nir.Conv2d((6, 6), g.nodes["conv"].weight, 1, "valid", 1, 1, np.zeros(4))
    assert layers_from_nir(g, dt_s=1e-3).layers[0].out_shape == (4, 4, 4)


def test_fit_record_defaults_and_remaining_reader_edges():
    """Layer defaults (no bias, no kernel), frozen Rule records, kernel sides in order, Speck's kernel
    height, the cores rules on a conv network (not checked), fractional Xylo utilisation, a graph without
    Input, a non-square stride, and an IF readout layer without a bias."""
    from dataclasses import FrozenInstanceError

    import nir

    from spikeloop.core.errors import NIRValidationError
    from spikeloop.hwprofiles.fit import CONV2D, DENSE, NOT_CHECKED, Layer, Network, check_fit, layers_from_nir
    from spikeloop.hwprofiles.rules import RULES

    lay = Layer("x", DENSE, 1, "LIF", ())
    assert lay.has_bias is False and lay.kernel_nonzero == 0 and lay.kernel is None
    with pytest.raises(FrozenInstanceError):
        RULES["cores"][0].name = "other"
    tallk = Layer("K", CONV2D, 4 * 2 * 2, "LIF", ("input",), in_shape=(1, 6, 2), out_shape=(4, 2, 2), kernel=(5, 1),
                  kernel_nonzero=20)
    assert tallk.speck_geometry()[1:3] == (5, 1)
    r = check_fit(Network(12, [tallk], "K"), _limits("speck", **dict(SPECK, neuron_memory_per_core=(64, 64, 64),
                                                                       kernel_memory_per_core=(999, 999, 999))))
    assert [(v.rule, v.value) for v in r.violations] == [("max_input_size", 6), ("max_kernel_size", 5)]
    r = check_fit(Network(12, [tallk], "K"), _limits(**CORES))
    st = {x.rule: (x.status, x.detail) for x in r.results}
    assert st["neurons_per_core"][0] == NOT_CHECKED and st["neurons_per_core"][1].startswith("no placement: placing")
    x = check_fit(_two_layer_net(), _limits("xylo", **dict(XYLO, input_channels=8, total_weights=40)))
    assert x.resources[0]["utilisation"] == 0.5 and x.resources[3]["utilisation"] == 0.25
    g = _conv_graph()
    del g.nodes["in"]
    g.edges = [e for e in g.edges if e[0] != "in"]
    with pytest.raises(NIRValidationError):
        layers_from_nir(g, dt_s=1e-3)
    g = _conv_graph(pool=1)
    g.nodes["conv"] = nir.Conv2d((6, 6), g.nodes["conv"].weight, np.array([1, 2]), 0, 1, 1, np.zeros(4))
    g.nodes["fc"] = nir.Affine(np.ones((3, 32)), np.zeros(3))
    assert layers_from_nir(g, dt_s=1e-3).layers[0].out_shape == (4, 4, 2)
    g = _conv_graph()
    g.nodes["lif"] = nir.IF(np.ones(3), np.ones(3))
    assert layers_from_nir(g, dt_s=1e-3).layers[1].has_bias is False


def test_fit_last_reader_and_xylo_edges():
    """Xylo's hidden pool is every layer but the output (whatever the names); its hint counts the neurons
    over the limit; positive-only plan biases and negative conv biases or leaks are biases; a Linear has
    none; odd sides pool down to whole numbers; padding counts on both sides of both axes."""
    import nir

    from spikeloop.hwprofiles.fit import DENSE, Layer, Network, check_fit, layers_from_nir, layers_from_plan
    from spikeloop.hwprofiles.rules.xylo import hidden_layers

    z = Layer("Z", DENSE, 3, "LIF", ("input",), {"input": np.array([[1, 1, 1], [1, 0, 0], [1, 1, 0]])})
    a = Layer("A", DENSE, 1, "LIF", ("Z",), {"Z": np.ones((1, 3))})
    net = Network(3, [z, a], "A")
    assert hidden_layers(net) == [z]
    r = check_fit(net, _limits("xylo", **dict(XYLO, fan_in_per_neuron=2)))
    v = [x for x in r.violations if x.layer == "Z"][0]
    assert (v.value, v.hint) == (3, "1 of 3 neurons exceed it; prune to at most 2 inputs per neuron")
    assert layers_from_plan(small_plan(h_bias=(0.25, 0.0))).layers[0].has_bias is True
    g = _conv_graph(bias=-0.5, leak=-0.25)
    c, d = layers_from_nir(g, dt_s=1e-3).layers
    assert c.has_bias is True and d.has_bias is True
    g = _conv_graph()
    g.nodes["fc"] = nir.Linear(np.ones((3, 16)))
    assert layers_from_nir(g, dt_s=1e-3).layers[1].has_bias is False
    c = layers_from_nir(_conv_graph(pool=1, padding=1), dt_s=1e-3).layers[0]
    assert c.out_shape == (4, 6, 6)
    nodes = {"in": nir.Input({"input": np.array([1, 7, 7])}),
             "c1": nir.Conv2d((7, 7), np.ones((2, 1, 3, 3)), 1, 0, 1, 1, np.zeros(2)), "n1": nir.IF(np.ones((2, 5, 5)), np.ones((2, 5, 5))),
             "p": nir.SumPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0])),
             "c2": nir.Conv2d((2, 2), np.ones((2, 2, 1, 1)), 1, 0, 1, 1, np.zeros(2)), "n2": nir.IF(np.ones((2, 2, 2)), np.ones((2, 2, 2))),
             "out": nir.Output({"output": np.array([2, 2, 2])})}
    edges = [("in", "c1"), ("c1", "n1"), ("n1", "p"), ("p", "c2"), ("c2", "n2"), ("n2", "out")]
    b = layers_from_nir(nir.NIRGraph(nodes, edges, type_check=False), dt_s=1e-3).layers[1]
    assert b.in_shape == (2, 2, 2) and all(isinstance(s, int) for s in b.in_shape + b.out_shape)


def test_fit_exact_capacities_negative_fan_out_and_notes():
    """A layer whose need equals a core's capacity fits it (so a crowded chip has no placement); negative
    weights are output axons; Speck and Xylo note the binary input; a neuron with no synapse node is
    refused; a conv layer reads its source layer's shape whatever the source's name."""
    import nir

    from spikeloop.core.errors import NIRValidationError
    from spikeloop.hwprofiles.fit import DENSE, Layer, Network, check_fit, layers_from_nir, place_on_cores, place_on_speck

    a = Layer("A", DENSE, 3, "LIF", ("input",), {"input": np.ones((3, 4))})
    b = Layer("B", DENSE, 3, "LIF", ("A",), {"A": np.ones((3, 3))})
    exact = dict(SPECK, cores=2, neuron_memory_per_core=(3, 1), kernel_memory_per_core=(16, 1))
    assert place_on_speck(Network(4, [a, b], "B"), _limits("speck", **exact)) == (None, "B")
    net = _two_layer_net()
    net.layers[1].weights["A"] = -net.layers[1].weights["A"]
    cores, _ = place_on_cores(net, _limits(**CORES))
    assert [c["fan_out"] for c in cores] == [1, 1, 2, 0, 0]
    binary = "P takes binary events only: the 4 graded observation values need a spike encoder"
    assert any(n.startswith(binary) for n in check_fit(_two_layer_net(), _limits("speck", **SPECK)).notes)
    assert any(n.startswith(binary) for n in check_fit(_two_layer_net(), _limits("xylo", **XYLO)).notes)
    g = _conv_graph()
    g.edges = [e for e in g.edges if e != ("fc", "lif")]
    with pytest.raises(NIRValidationError):
        layers_from_nir(g, dt_s=1e-3)
    k1, k2 = np.ones((2, 1, 3, 3)), np.ones((2, 2, 2, 2))
    nodes = {"in": nir.Input({"input": np.array([1, 8, 8])}),
             "c1": nir.Conv2d((8, 8), k1, 1, 0, 1, 1, np.zeros(2)), "a1": nir.IF(np.ones((2, 6, 6)), np.ones((2, 6, 6))),
             "c2": nir.Conv2d((6, 6), k2, 1, 0, 1, 1, np.zeros(2)), "n2": nir.IF(np.ones((2, 5, 5)), np.ones((2, 5, 5))),
             "out": nir.Output({"output": np.array([2, 5, 5])})}
    edges = [("in", "c1"), ("c1", "a1"), ("a1", "c2"), ("c2", "n2"), ("n2", "out")]
    second = layers_from_nir(nir.NIRGraph(nodes, edges, type_check=False), dt_s=1e-3).layers[1]
    assert (second.in_shape, second.out_shape) == ((2, 6, 6), (2, 5, 5))


def test_compiler_shapes_through_ops_and_chained_biases():
    """A neuron with one scalar parameter set takes the shape of the op before it (conv: channels kept;
    pooling: no batch axis); a non-square pooling kernel; biases of two Affine nodes in a row add up."""
    import nir

    k = np.ones((2, 1, 1, 1))
    g = _g({"conv": nir.Conv2d((2, 2), k, 1, 0, 1, 1, np.zeros(2)), "if": nir.IF(np.ones(1), np.ones(1))},
           [("input", "conv"), ("conv", "if"), ("if", "output")], 4, 8)
    g.nodes["input"] = nir.Input({"input": np.array([1, 2, 2])})
    assert _compile(g).populations[0].shape == (2, 2, 2)
    g = _g({"conv": nir.Conv2d((2, 2), k, 1, 0, 1, 1, np.zeros(2)),
            "p": nir.SumPool2d(np.array([1, 2]), np.array([1, 2]), np.array([0, 0])), "if": nir.IF(np.ones(1), np.ones(1))},
           [("input", "conv"), ("conv", "p"), ("p", "if"), ("if", "output")], 4, 4)
    g.nodes["input"] = nir.Input({"input": np.array([1, 2, 2])})
    plan = _compile(g)
    assert plan.populations[0].shape == (2, 2, 1)
    np.testing.assert_allclose(plan.connections[0].weight, 1e-3 * np.array(
        [[1, 1, 0, 0], [0, 0, 1, 1], [1, 1, 0, 0], [0, 0, 1, 1]]))
    g = _g({"a1": nir.Affine(np.eye(2), np.array([1.0, 2.0])), "a2": nir.Affine(W, np.array([0.5, 0.5])),
            "lif": nir.LIF(np.full(2, 0.002), np.ones(2), np.zeros(2), np.ones(2))},
           [("input", "a1"), ("a1", "a2"), ("a2", "lif"), ("lif", "output")], 2, 2)
    np.testing.assert_allclose(_compile(g).populations[0].bias, 0.5 * (W @ [1.0, 2.0] + 0.5))


def test_fit_negative_bias_padding_outputs_and_two_outputs():
    """A negative-only bias is a bias; Speck's input side is the input's, not a padded output's; a conv
    graph with two Output nodes is refused."""
    import nir

    from spikeloop.core.errors import NIRValidationError
    from spikeloop.hwprofiles.fit import CONV2D, Layer, Network, check_fit, layers_from_nir, layers_from_plan

    assert layers_from_plan(small_plan(h_bias=(0.0, -0.5))).layers[0].has_bias is True
    padded = Layer("P", CONV2D, 36, "LIF", ("input",), in_shape=(1, 2, 2), out_shape=(1, 6, 6), kernel=(1, 1),
                   padding=(2, 2), kernel_nonzero=1)
    r = check_fit(Network(4, [padded], "P"), _limits("speck", **dict(SPECK, neuron_memory_per_core=(64, 64, 64),
                                                                       kernel_memory_per_core=(999, 999, 999))))
    assert [v.rule for v in r.violations] == ["max_padding"]
    g = _conv_graph()
    g.nodes["out2"] = nir.Output({"output": np.array([3])})
    g.edges.append(("lif", "out2"))
    with pytest.raises(NIRValidationError):
        layers_from_nir(g, dt_s=1e-3)
