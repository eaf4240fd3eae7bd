"""Guards against behaviour-changing mutations that the rest of the suite let through.

A mutation audit changed the core code in small ways; these survived (or were caught by
one incidental test only). Each test here names, in its docstring, the mutation it kills.
Every expected value is worked out by hand in the test (with the arithmetic in comments),
never read back from the code under test.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import spikeloop.runtime  # noqa: F401  (installs the Lava shim before anything imports lava)
from conftest import DATA, random_plan
from spikeloop.core.coding import InputEncoding
from spikeloop.core.neuron import cuba_step
from spikeloop.core.nir_io import read_graph
from spikeloop.hwprofiles import NetworkShape, load_profile, price_neuromorphic
from spikeloop.hwprofiles.fit import Layer, Network, check_fit
from spikeloop.runtime.backends import make_backend
from spikeloop.runtime.compiler import plan_from_nir
from spikeloop.runtime.counters import fanout, neuron_activity
from spikeloop.runtime.emulator import Emulator
from spikeloop.runtime.fixed_point import (ACT_SHIFT, DECAY_UNITY, DM_OFFSET, DS_OFFSET, LOIHI, MAX_UV,
                                           FixedConnection, FixedPlan, FixedPopulation, quantize_plan)
from spikeloop.runtime.plan import INPUT, Connection, NetworkPlan, Population

# ============================================================================ golden counts
#
# input(2) -> A(4 LIF) -> B(3 LIF) -> R(2 readout)
#                     \-> C(2 LIF) -/
#
# A feeds two connections (A->B and A->C). Every spiking population is a LIF (du = 1: the
# current is only this step's input; dv = 0.5) with vth = 1 and hard reset; each weight
# that matters is 2 (or 4 summed), so a neuron that gets an input spikes in that same step
# and is reset to 0: there is never a sub-threshold residue whose decay would need
# fixed-point rounding to count. R is a memoryless readout (du = dv = 1: v = this step's
# input). The neurons:
#
#   a0: 2 * x0            spikes whenever x0 = 1 arrives
#   a1: 2 * x1            spikes whenever x1 = 1 arrives
#   a2: no input, bias 0.25 (v -> 0.25, 0.375, ... < 0.5 < vth): never spikes, u == 0
#       but v != 0 at every update -> active every step ("u or v", not "u and v")
#   a3: no input, no bias: never active
#   b0: 2 * a0, b1: 2 * a0 + 2 * a1, b2: no synapses (dead)
#   c0: 2 * a1, c1: 2 * a2 (a2 never spikes: dead)
#   r0: 1 * b0 + 1 * c0, r1: 1 * b2 (dead)
#
# Depths (Dense hops): A 1, B 2, C 2, R 3. With T = 2 a decision is P = T + 3 = 5 Lava
# steps k = 0..4: the input is held at k = 0, 1; a population at depth d sees it at
# k = d, d+1 (and is reset at k = d).
T_GOLDEN = 2
OBS = np.array([1.0, 1.0])  # payload rint(1.0 * 127/4) = 32, i.e. 32/31.75 = 1.008: u = 2.016 > vth


def golden_plan() -> NetworkPlan:
    lif = dict(du=np.ones(1), dv=np.full(1, 0.5), vth=1.0)

    def pop(name, n, bias=None, **kw):
        kw = lif | kw
        return Population(name, n, np.broadcast_to(kw["du"], n), np.broadcast_to(kw["dv"], n),
                          np.zeros(n) if bias is None else np.asarray(bias, float), kw["vth"],
                          kind="LIF" if kw["vth"] is not None else "LI")

    w_in = np.array([[2.0, 0], [0, 2.0], [0, 0], [0, 0]])
    w_ab = np.array([[2.0, 0, 0, 0], [2.0, 2.0, 0, 0], [0, 0, 0, 0]])
    w_ac = np.array([[0, 2.0, 0, 0], [0, 0, 2.0, 0]])
    w_br = np.array([[1.0, 0, 0], [0, 0, 1.0]])
    w_cr = np.array([[1.0, 0], [0, 0]])
    pops = [pop("A", 4, [0, 0, 0.25, 0]), pop("B", 3), pop("C", 2),
            pop("R", 2, du=np.ones(1), dv=np.ones(1), vth=None)]
    conns = [Connection("in_A", INPUT, "A", w_in), Connection("A_B", "A", "B", w_ab),
             Connection("A_C", "A", "C", w_ac), Connection("B_R", "B", "R", w_br),
             Connection("C_R", "C", "R", w_cr)]
    return NetworkPlan(2, pops, conns, "R", 1e-3, T_GOLDEN, InputEncoding(mean=(0.0, 0.0), std=(1.0, 1.0)))


# Per decision, by hand (steps k = 0..4):
GOLDEN_PER_DECISION = {
    "steps": 5,
    # in_A (graded): the input is non-zero at k = 0, 1; each input column has one non-zero
    #   weight (x0 -> a0, x1 -> a1): 2 events x fan-out 1 x 2 steps = 4
    # A_B: a0 and a1 spike at k = 1, 2. Fan-out of column a0 = 2 (b0, b1), of a1 = 1 (b1):
    #   (2 + 1) x 2 steps = 6
    # A_C: fan-out of a0 = 0, of a1 = 1 (c0), of a2 = 1 (c1, but a2 never spikes): 1 x 2 = 2
    # B_R: b0 and b1 spike at k = 2, 3; fan-out of b0 = 1 (r0), of b1 = 0: 1 x 2 = 2
    # C_R: c0 spikes at k = 2, 3; fan-out 1 (r0): 1 x 2 = 2
    "synops": {"in_A": 4, "A_B": 6, "A_C": 2, "B_R": 2, "C_R": 2},
    # Loihi updates every neuron every step: size x 5
    "updates": {"A": 20, "B": 15, "C": 10, "R": 10},
    # A: a0 (k = 1, 2) + a1 (k = 1, 2) + a2 (all 5 steps: v != 0 from the bias) + a3 (never) = 9
    #    of which only 4 have u != 0: an "u and v" definition would count 4 + 0 = 4
    # B: b0 and b1 at k = 2, 3 (u != 0 and they spike) = 4; C: c0 at k = 2, 3 = 2
    # R: r0 at k = 3, 4 (v = input from b0 and c0) = 2
    "active": {"A": 9, "B": 4, "C": 2, "R": 2},
    # A: 2 neurons x 2 steps; B: 2 x 2; C: 1 x 2
    "spikes": {"A": 4, "B": 4, "C": 2},
}
DECISIONS = 3


def expected_counts(decisions: int) -> dict:
    g = GOLDEN_PER_DECISION
    return {"steps": g["steps"] * decisions, "decisions": decisions,
            "synops": {k: v * decisions for k, v in g["synops"].items()},
            "graded": {"in_A": True, "A_B": False, "A_C": False, "B_R": False, "C_R": False},
            "updates": {k: v * decisions for k, v in g["updates"].items()},
            "active": {k: v * decisions for k, v in g["active"].items()},
            "spikes": {k: v * decisions for k, v in g["spikes"].items()}}


def test_fanout_and_activity_by_hand():
    """Guards: fan-out counted per input *column* (non-zero weights a source reaches) and the
    active-update rule ``u != 0 or v != 0 or spike`` (mutation: ``and`` instead of ``or``)."""
    w = np.array([[2.0, 0, 0, 0], [2.0, 2.0, 0, 0], [0, 0, 0, 0]])  # A_B: columns a0..a3
    assert fanout(w).tolist() == [2, 1, 0, 0]  # column sums of non-zeros, not row sums [1, 2, 0]
    u = np.array([0, 5, 0, 0, -3])
    v = np.array([7, 0, 0, 0, 2])
    s = np.array([0, 0, 0, 1, 0])
    # neuron 0: v only -> active; 1: u only -> active; 2: nothing -> inactive; 3: spike only ->
    # active; 4: both -> active. Total 4 (an "and" rule would give 2: neurons 3 and 4).
    assert neuron_activity(u, v, s) == 4
    assert neuron_activity(u, v, None) == 3  # a readout: no spikes


@pytest.mark.parametrize("name,precision", [("emulator", "fixed"), ("emulator", "float"),
                                            ("lava-fused", "fixed"), ("lava-per-node", "fixed")])
def test_golden_counts_with_inactive_neurons_and_two_destinations(name, precision):
    """Guards: the active-update definition (mutation: ``u != 0 and v != 0``), fan-out counting
    (synops per non-zero weight of the source's column, a layer feeding two connections), the
    inactive-update count, and spike counts, on the emulator and on both Lava mappings in fixed
    point, against counts worked out by hand."""
    plan = golden_plan()
    assert plan.depths() == {INPUT: 0, "A": 1, "B": 2, "C": 2, "R": 3} and plan.period == 5
    assert not plan.stateful_connections
    with make_backend(name, plan, precision) as b:
        for _ in range(DECISIONS):
            q = b.decide(OBS)
        counts = b.counts().to_dict()
    assert counts == expected_counts(DECISIONS)
    # r0 reads b0 + c0 = 1 + 1 at its last window step (k = 4); r1 reads nothing
    np.testing.assert_allclose(q, [2.0, 0.0], rtol=0, atol=1e-3)
    inactive = sum(counts["updates"].values()) - sum(counts["active"].values())
    assert inactive == DECISIONS * (55 - 17)  # most updates are inactive: the term is not ~0


def test_golden_energy_routes_each_spike_to_every_destination():
    """Guards: routed spikes priced with the number of destination connections (mutation: one
    route per spike). A feeds A_B and A_C, so each of its spikes is routed twice."""
    plan = golden_plan()
    shape = NetworkShape.of(plan)
    assert shape.spike_destinations == {"A": 2, "B": 1, "C": 1}
    per = {"synops": dict(GOLDEN_PER_DECISION["synops"]), "graded": expected_counts(1)["graded"],
           "updates": dict(GOLDEN_PER_DECISION["updates"]), "active": dict(GOLDEN_PER_DECISION["active"]),
           "spikes": dict(GOLDEN_PER_DECISION["spikes"]), "steps": 5.0}
    loihi = load_profile("loihi")
    e_route = loihi.get("spike_route").value
    assert e_route == 1.7e-12  # Davies et al. 2018, Table 2 (the profile's constant)
    terms = {t.name: t for t in price_neuromorphic(per, shape, loihi).terms}
    routed = terms["spikes routed"]
    # A: 4 spikes x 2 destinations + B: 4 x 1 + C: 2 x 1 = 14 routes (not 10)
    assert routed.count == 14
    assert routed.energy == pytest.approx(14 * 1.7e-12, rel=1e-12)
    # and the rest of the bill by hand: 4 graded + 12 binary synops at 23.6 pJ,
    # 17 active updates at 81 pJ, 55 - 17 = 38 inactive at 52 pJ
    assert terms["synaptic ops (binary spikes)"].energy == pytest.approx(12 * 23.6e-12, rel=1e-12)
    assert terms["synaptic ops (graded input)"].energy == pytest.approx(4 * 23.6e-12, rel=1e-12)
    assert terms["neuron updates (active)"].energy == pytest.approx(17 * 81e-12, rel=1e-12)
    assert terms["neuron updates (inactive)"].energy == pytest.approx(38 * 52e-12, rel=1e-12)


def test_two_destination_routes_priced_from_profile_constants():
    """Guards: routed-spike energy = spikes x destinations x E_route (mutation: destinations
    dropped), on a hand-made shape with one population routed to two connections."""
    per = {"synops": {}, "graded": {}, "updates": {"h": 10.0, "g": 10.0}, "active": {"h": 10.0, "g": 10.0},
           "spikes": {"h": 3.0, "g": 5.0}, "steps": 1.0}
    shape = NetworkShape(2, 1, 20, 0, {"h": 2, "g": 1})
    for name in ("loihi",):
        prof = load_profile(name)
        route = next(t for t in price_neuromorphic(per, shape, prof).terms if t.name == "spikes routed")
        # 3 spikes x 2 destinations + 5 x 1 = 11 routes of 1.7 pJ
        assert route.count == 11
        assert route.energy == pytest.approx(11 * prof.get("spike_route").value, rel=1e-12)


# ============================================================================ 24-bit wrap of u
def test_u_wraps_on_negative_overflow_exactly_like_lava():
    """Guards: the 24-bit wrap of u on *negative* overflow (mutation: saturate instead).

    Lava's ``PyLifModelBitAcc``: ``u > 2**23 -> u - 2**24``, then ``u <= -2**23 -> u + 2**24``
    (both ends of the comparison as Lava writes them).
    """
    M = 1 << 23
    assert MAX_UV == M
    u = np.array([-M + 1, -M, -M - 1, -M - 5, M, M + 1])
    # -2**23 + 1 is in range; -2**23 is *not* (Lava's `<=`): -2**23 + 2**24 = 2**23;
    # -2**23 - 1 -> 2**23 - 1; -2**23 - 5 -> 2**23 - 5; 2**23 stays (Lava's `>`); 2**23 + 1 -> -2**23 + 1
    assert LOIHI.wrap_u(u).tolist() == [-M + 1, M, M - 1, M - 5, M, -M + 1]
    # through the one neuron update: u = 0 decayed + (a_in << 6); a_in = -2**17 gives u = -2**23
    for a_in, u_exp in ((-(1 << 17), M), (-(1 << 17) - 1, M - 64), (-(1 << 17) + 1, -M + 64)):
        u1, v1, s1, _ = cuba_step(np.array([0]), np.array([0]), np.array([a_in]), du=4095, dv=0,
                                  bias=np.array([0]), vth=None, arith=LOIHI)
        assert u1.tolist() == [u_exp], a_in
        # v = 0 + u + 0, clipped to +-(2**23 - 1)
        assert v1.tolist() == [min(u_exp, M - 1)]


def test_negative_u_wrap_on_lava_fixed_point_matches_hand_values():
    """Guards: the negative wrap of u (mutation: saturate), on Lava's own bit-accurate LIF and on
    the emulator, with registers set by hand (the quantizer would never allow the overflow).

    Three inputs -> three LIF neurons (input i to neuron i through weight -2, weight_exp 0;
    du = 4095: no current memory; dv = 0; vth at its largest mantissa, (2**17 - 1) << 6 =
    2**23 - 64) -> a readout. Payload ``x`` gives ``a = -2x`` and ``u = a << 6 = -128 x``:

    - h0, x = 65536: u = -2**23 -> wraps to +2**23; v = clip(2**23) = 2**23 - 1 > vth: a spike,
      v reset to 0;
    - h1, x = 65537: u = -2**23 - 128 -> 2**23 - 128 = v < vth: no spike;
    - h2, x = 65535: u = -2**23 + 128 (in range, no wrap): v = -2**23 + 128.

    A saturating u would give v = -(2**23 - 1) for h0 and h1 and no spike.
    """
    from spikeloop.runtime.lava_runtime import LavaPerNode

    zeros = np.zeros(3, np.int64)
    pops = [Population("h", 3, np.ones(3), np.zeros(3), np.zeros(3), 1.0),
            Population("r", 1, np.ones(1), np.full(1, 0.5), np.zeros(1), None)]
    conns = [Connection("in_h", INPUT, "h", -np.eye(3)), Connection("h_r", "h", "r", np.ones((1, 3)))]
    plan = NetworkPlan(3, pops, conns, "r", 1e-3, 1)
    assert plan.population("h").lava_lif  # Lava's own LIF model runs it on per-node
    fixed = FixedPlan({"h": FixedPopulation("h", 1.0, 4095, 0, zeros, zeros, (1 << 17) - 1),
                       "r": FixedPopulation("r", 1.0, 4095, 2048, zeros[:1], zeros[:1], None)},
                      {"in_h": FixedConnection("in_h", (-2 * np.eye(3)).astype(np.int32), 0),
                       "h_r": FixedConnection("h_r", np.full((1, 3), 2, np.int32), 0)}, 1.0)
    seq = np.array([[65536, 65537, 65535], [0, 0, 0]])
    M = 1 << 23
    v_h = [0, M - 128, -M + 128]
    s_h = [1, 0, 0]
    with LavaPerNode(plan, "fixed", fixed, windowed=False, probe_steps=len(seq), sequence=seq) as net:
        net.run(len(seq))
        probes = net.probes()
    # Dense delays the input one step: h sees seq[0] at step 1
    assert probes[("h", "v")][1].astype(np.int64).tolist() == v_h
    assert probes[("h", "s")][1].astype(np.int64).tolist() == s_h
    em = Emulator(plan, "fixed", fixed, windowed=False)
    recs = [em.step(x) for x in seq]
    assert recs[1]["h"][1].tolist() == v_h and recs[1]["h"][0].astype(int).tolist() == s_h
    assert em.u["h"].tolist() == [M, M - 128, -M + 128]


# ============================================================================ soft reset
def test_soft_reset_on_lava_fixed_point_matches_integer_arithmetic_by_hand():
    """Guards: the soft reset subtracts exactly vth (mutation: 0.99 * vth), on Lava fixed point
    (spikeloop's CubaNeuron process, per-node) against integer arithmetic done by hand.

    One IF neuron (du = 4095: u = a << 6; dv = 0: no leak), vth mantissa 10 -> vth = 640,
    soft reset; one input of payload 7 through weight 2 (exp 0): a = 14, u = 896 every step.

    step 1: v = 0 + 896 = 896 > 640 -> spike, v = 896 - 640 = 256
    step 2: v = 256 + 896 = 1152 > 640 -> spike, v = 512
    step 3: v = 512 + 896 = 1408 -> spike, v = 768
    step 4: v = 768 + 896 = 1664 -> spike, v = 1024
    step 5: no input: u = 0, v = 1024 -> spike, v = 384; step 6: v = 384, no spike
    (a 0.99 * vth reset would leave 262, 524, ... instead)
    """
    from spikeloop.runtime.lava_runtime import LavaPerNode

    pops = [Population("h", 1, np.ones(1), np.zeros(1), np.zeros(1), 1.0, reset="soft", kind="IF"),
            Population("r", 1, np.ones(1), np.full(1, 0.5), np.zeros(1), None)]
    conns = [Connection("in_h", INPUT, "h", np.array([[1.0]])), Connection("h_r", "h", "r", np.array([[1.0]]))]
    plan = NetworkPlan(1, pops, conns, "r", 1e-3, 1)
    fixed = FixedPlan({"h": FixedPopulation("h", 1.0, 4095, 0, np.zeros(1, np.int64), np.zeros(1, np.int64), 10),
                       "r": FixedPopulation("r", 1.0, 4095, 2048, np.zeros(1, np.int64), np.zeros(1, np.int64),
                                            None)},
                      {"in_h": FixedConnection("in_h", np.array([[2]], np.int32), 0),
                       "h_r": FixedConnection("h_r", np.array([[2]], np.int32), 0)}, 1.0)
    assert (2 * 7) << ACT_SHIFT == 896 and fixed.populations["h"].vth_eff == 640
    seq = np.array([[7], [7], [7], [7], [0], [0]])
    v_h = [256, 512, 768, 1024, 384, 384]
    s_h = [1, 1, 1, 1, 1, 0]
    with LavaPerNode(plan, "fixed", fixed, windowed=False, probe_steps=len(seq) + 1,
                     sequence=np.concatenate([seq, [[0]]])) as net:
        net.run(len(seq) + 1)
        probes = net.probes()
    assert probes[("h", "v")][1:, 0].astype(np.int64).tolist() == v_h
    assert probes[("h", "s")][1:, 0].astype(np.int64).tolist() == s_h
    em = Emulator(plan, "fixed", fixed, windowed=False)
    recs = [em.step(x) for x in np.concatenate([seq, [[0]]])]
    assert [int(r["h"][1][0]) for r in recs[1:]] == v_h


# ============================================================================ headroom
def _register_headroom(plan: NetworkPlan, fixed: FixedPlan) -> dict[str, tuple[int, int]]:
    """Largest reachable |u| and |v| of every population, in registers, over one decision.

    Worked out here from the registers quantize_plan chose (not from its own bound):
    per step a neuron receives at most ``A = sum_j |w_eff_ij| << (exp + 6)`` times the
    largest source value (the payload clip for graded input, 1 for a spike). Between two
    resets (one decision period P) the current is at most ``A * sum_{k<P} f_u^k`` with
    ``f_u = (4096 - du - 1) / 4096`` (Loihi adds 1 to du) and the voltage at most
    ``(U + |bias|) * sum_{k<P} f_v^k``; truncation toward zero only shrinks them.
    """
    P = plan.period
    levels = plan.encoding.levels if plan.input_graded else 1
    out = {}
    for p in plan.populations:
        f = fixed.populations[p.name]
        a_max = np.zeros(p.size)
        for c in plan.incoming(p.name):
            fc = fixed.connections[c.name]
            src_max = levels if c.src == INPUT else 1
            a_max += np.abs(fc.w_eff).sum(axis=1) * 2.0 ** (fc.weight_exp + ACT_SHIFT) * src_max
        fu = (DECAY_UNITY - (np.asarray(f.du_12bit) + DS_OFFSET)) / DECAY_UNITY
        fv = (DECAY_UNITY - (np.asarray(f.dv_12bit) + DM_OFFSET)) / DECAY_UNITY
        geo_u = sum(fu ** k for k in range(P))
        geo_v = sum(fv ** k for k in range(P))
        u_max = a_max * geo_u
        v_max = (u_max + np.abs(f.bias_eff)) * geo_v
        out[p.name] = (float(np.max(u_max)), float(np.max(v_max)))
    return out


def _headroom_plans():
    yield "trained policy", plan_from_nir(read_graph(DATA / "policy.nir"))
    yield "golden", golden_plan()
    for seed, kw in ((0, {}), (1, dict(du=0.5, dv=0.0625)), (2, dict(weight_std=3.0, bias_std=1.0)),
                     (3, dict(sizes=(8, 64, 2), T=32, dv=0.03125))):
        yield f"random {seed}", random_plan(seed=seed, **kw)[0]
    # IF neurons (no leak) integrating 8 full-scale inputs for 16 + 2 steps: the state bound,
    # not the threshold or bias range, decides the scale here
    n_in = 8
    pops = [Population("if0", 16, np.ones(16), np.zeros(16), np.zeros(16), 50.0, kind="IF"),
            Population("out", 2, np.full(2, 0.25), np.full(2, 0.0625), np.zeros(2), None, kind="CubaLI")]
    rng = np.random.default_rng(5)
    conns = [Connection("w0", INPUT, "if0", rng.uniform(0.5, 1.0, (16, n_in))),
             Connection("w1", "if0", "out", rng.uniform(-1, 1, (2, 16)))]
    yield "integrating IF", NetworkPlan(n_in, pops, conns, "out", 1e-3, 16,
                                        InputEncoding(mean=(0.0,) * n_in, std=(1.0,) * n_in))


def test_quantized_state_never_overflows_24_bits():
    """Guards: quantize_plan's promise that no state can overflow 24 bits within a window
    (mutation: a weaker state bound, e.g. without the window length or the input range),
    checked on its output registers with the worst case worked out in this test."""
    limit = MAX_UV - 1
    tight = []
    for name, plan in _headroom_plans():
        fixed = quantize_plan(plan)
        for pop, (u_max, v_max) in _register_headroom(plan, fixed).items():
            assert u_max <= limit, f"{name}: {pop} |u| can reach {u_max:.0f} > {limit}"
            assert v_max <= limit, f"{name}: {pop} |v| can reach {v_max:.0f} > {limit}"
            tight.append(max(u_max, v_max) / limit)
    # the scale is the largest power of two that fits: some populations use over half of the range
    # (a bound that is merely safe by a wide margin would not be tested here)
    assert max(tight) > 0.5, tight


# ============================================================================ decoded Q-values
def _window_records(em: Emulator, x: np.ndarray) -> list[dict]:
    """One decision window stepped by hand, as the plan's DecisionWindow says."""
    win = em.window
    zero = np.zeros_like(x)
    return [em.step(x if win.holds(k) else zero) for k in range(win.period)]


def q_error_bound(plan: NetworkPlan, fixed: FixedPlan, rec_fixed: list[dict], rec_float: list[dict]) -> np.ndarray:
    """Per readout neuron, a bound on |q_fixed - q_float| (real units) for one decision.

    The readout (du = 1, voltage decay f = 1 - dv, bias b, fed by one spiking population
    through W) in register units, where one register unit is the output's quantization
    step 1/sigma:  V_t = trunc(f V_{t-1}) + sum_j Wq_ij s'_j + B  versus
    sigma v_t = f sigma v_{t-1} + sigma sum_j W_ij s_j + sigma b. Their difference E obeys

        |E_t| <= f |E_{t-1}| + 1                    (truncation toward zero: < 1 unit)
                 + h * n_t                          (each of the n_t spikes received: a weight
                                                     rounded to its grid, h = half its step,
                                                     2**(exp + 6) units)
                 + sigma sum_j |W_ij| |s'_j - s_j|  (a hidden spike that differs)
                 + beta                             (bias rounded: half its step, 2**(bexp - 1))

    from E = 0 at the readout's reset; the decoded value is E at its last window step / sigma.
    """
    out = plan.population(plan.output)
    (conn,) = plan.incoming(out.name)
    assert np.all(out.du == 1.0)
    f = 1.0 - float(out.dv[0])
    fp, fc = fixed.populations[out.name], fixed.connections[conn.name]
    assert fp.dv_12bit + DM_OFFSET == round(float(out.dv[0]) * DECAY_UNITY)  # dv is exact on the grid
    sigma = fp.scale
    h = 2.0 ** (fc.weight_exp + ACT_SHIFT)
    # sanity of the half-step claim: every weight register is within h of sigma * W
    assert np.all(np.abs(fc.w_eff * 2.0 ** (fc.weight_exp + ACT_SHIFT) - sigma * conn.weight) <= h)
    beta = 2.0 ** (np.asarray(fp.bias_exp) - 1)  # rint(b / 2**bexp) errs by at most half a step
    assert np.all(np.abs(fp.bias_eff - sigma * out.bias) <= beta)
    win = plan.window
    E = np.zeros(out.size)
    for k in win.output_steps:  # the readout's window: it was reset at the first of these steps
        s_fix = np.asarray(rec_fixed[k - 1][conn.src][0], float)  # spikes sent one step earlier
        s_flt = np.asarray(rec_float[k - 1][conn.src][0], float)
        received = ((fc.w_eff != 0) | (conn.weight != 0)) @ s_fix  # a weight rounded to 0 errs < h too
        mismatch = sigma * np.abs(conn.weight) @ np.abs(s_fix - s_flt)
        E = f * E + 1 + h * received + mismatch + beta
    return E / sigma


@pytest.fixture(scope="module")
def trained():
    from spikeloop.train.checkpoint import load_policy

    plan = plan_from_nir(read_graph(DATA / "policy.nir"))
    model, _ = load_policy(DATA / "policy.safetensors")
    model.network.double()
    return plan, quantize_plan(plan), model


def _bounded_decision(plan, fixed, em_fixed, em_float, step_fixed, step_float, obs):
    """q_fixed (through the host codec), q_float (by hand from the float window), the bound."""
    q_fixed = em_fixed.decide(obs)
    rec_x = _window_records(step_fixed, step_fixed.codec.encode(obs))
    rec_f = _window_records(step_float, step_float.codec.encode(obs))
    # the stepped fixed twin ran the very same registers as the decision
    np.testing.assert_array_equal(rec_x[-1][plan.output][1], em_fixed.last_output[-1])
    # float: real units are the voltages themselves; decoding 'last' reads the last window step
    q_float = np.asarray(rec_f[-1][plan.output][1], float)
    np.testing.assert_array_equal(em_float.decide(obs), q_float)
    return q_fixed, q_float, q_error_bound(plan, fixed, rec_x, rec_f), rec_x, rec_f


def test_decoded_fixed_point_q_values_within_quantization_bound(trained):
    """Guards: fixed-point Q-values decoded with the output population's own scale (mutation:
    twice the scale): |q_fixed - q_float| <= the bound derived from the quantization steps
    (see :func:`q_error_bound`) on the trained policy over 60 decisions."""
    plan, fixed, model = trained
    assert plan.decoding.kind == "readout_voltage" and plan.decoding.step == "last"
    em_fixed, em_float = Emulator(plan, "fixed", fixed), Emulator(plan, "float")
    step_fixed, step_float = Emulator(plan, "fixed", fixed), Emulator(plan, "float")
    rng = np.random.default_rng(11)
    obs_all = np.asarray(plan.encoding.mean) + np.asarray(plan.encoding.std) * rng.normal(size=(60, 4))
    sigma = fixed.populations[plan.output].scale
    exact, q_matched = 0, []
    for obs in obs_all:
        q_fixed, q_float, bound, rec_x, rec_f = _bounded_decision(plan, fixed, em_fixed, em_float, step_fixed,
                                                                  step_float, obs)
        assert np.all(np.abs(q_fixed - q_float) <= bound + 1e-9), (obs, q_fixed, q_float, bound)
        same_spikes = all(np.array_equal(a[p.name][0], b[p.name][0]) for a, b in zip(rec_x, rec_f)
                          for p in plan.populations if p.spiking)
        if same_spikes:
            exact += 1
            # where every hidden spike agrees, the bound is some 10**4 output steps (mostly the
            # weight half-steps, 2**(exp + 6) = 128 units per received spike): about 0.35, against
            # Q-values of about 25 (a wrong output scale errs by a sizeable fraction of |q|)
            assert np.all(bound < 10_000 * 2 ** (fixed.connections["fc2"].weight_exp + ACT_SHIFT) / sigma)
            assert np.all(bound < 0.5), bound
            q_matched.append(np.abs(q_float))
        # the torch policy computes the same float values (independently of the host codec)
        q_torch = model.values(obs)
        np.testing.assert_allclose(q_torch, q_float, rtol=0, atol=1e-5)
    assert exact >= 40, f"only {exact} of 60 decisions had identical hidden spikes"
    # |q| is mostly far above the bound there: an output decoded on twice its scale (off by |q|/2)
    # breaks it in most decisions
    assert np.median(np.concatenate(q_matched)) > 10


def test_closed_loop_q_max_abs_diff_vs_torch_is_bounded(trained):
    """Guards: fixed-point Q-values decoded with the output scale (mutation: twice the scale) in a
    closed-loop run on Lava fixed point: ``q_max_abs_diff_vs_torch`` is at most the largest
    per-decision bound over the observations the run saw, and equals the largest difference
    recomputed here."""
    from spikeloop.core.coding import greedy_action
    from spikeloop.core.envs import make_env
    from spikeloop.runtime.runner import run_closed_loop
    from spikeloop.train.policy import TorchPolicy

    plan, fixed, model = trained
    steps, seed = 40, 1000
    res = run_closed_loop(make_backend("lava-fused", plan, "fixed", fixed), "CartPole-v1", episodes=1, seed=seed,
                          reference=TorchPolicy(model), progress=False, max_steps=steps)
    summary = res.summary()
    assert res.decisions == steps and summary["q_max_abs_diff_vs_torch"] == res.q_max_abs_diff
    # replay the same episode on the bit-exact emulator (Lava fixed == emulator, tested elsewhere)
    em_fixed, em_float = Emulator(plan, "fixed", fixed), Emulator(plan, "float")
    step_fixed, step_float = Emulator(plan, "fixed", fixed), Emulator(plan, "float")
    policy = TorchPolicy(model)
    env = make_env("CartPole-v1")
    obs, _ = env.reset(seed=seed)
    worst_bound, worst_diff = 0.0, 0.0
    for _ in range(steps):
        q_fixed, q_float, bound, _, _ = _bounded_decision(plan, fixed, em_fixed, em_float, step_fixed,
                                                          step_float, obs)
        worst_bound = max(worst_bound, float(bound.max()))
        worst_diff = max(worst_diff, float(np.abs(policy.decide(obs) - q_fixed).max()))
        obs, _, term, trunc, _ = env.step(greedy_action(q_fixed))
        assert not (term or trunc)
    env.close()
    assert res.q_max_abs_diff == pytest.approx(worst_diff, abs=1e-9)
    assert res.q_max_abs_diff <= worst_bound + 1e-5  # + torch's float rounding (see the test above)


# ============================================================================ core placement
def _dense(name, n, n_src, nnz, src="input", model="LIF"):
    """``n`` neurons, each with ``nnz`` non-zero synapses from the first ``nnz`` of ``n_src`` sources."""
    w = np.zeros((n, n_src), np.int8)
    w[:, :nnz] = 1
    return Layer(name, "dense", n, model, (src,), {src: w})


def _fit(layers, n_in):
    return check_fit(Network(n_in, layers, layers[-1].name, "limits"), load_profile("loihi"))


def _violations(rep):
    return [(v.rule, v.layer, v.value, v.limit, v.excess) for v in rep.violations]


@pytest.mark.timeout(20)
def test_fan_in_exactly_at_the_limit_fits_on_one_core():
    """Guards: the fan-in comparison of the core placement (mutation: ``>=`` for ``>``, which
    made check_fit loop forever on a 10 x 4096 layer). 4096 input axons is Loihi's limit
    exactly: one core; 4097 is one past: a violation of excess 1."""
    rep = _fit([_dense("l", 10, 4096, 4096)], 4096)
    assert rep.fits is True and rep.cores_used == 1
    assert rep.per_core[0]["fan_in"] == 4096 and rep.per_core[0]["synapse_bytes"] == 40960
    rep = _fit([_dense("l", 10, 4097, 4097)], 4097)
    assert rep.fits is False
    assert _violations(rep) == [("fan_in_per_core", "l", 4097, 4096, 1)]


@pytest.mark.timeout(20)
def test_neurons_per_core_exactly_at_the_limit_and_one_past():
    """Guards: the neurons-per-core split (1024 on Loihi): 1024 neurons on one core, 1025 on two
    (513 + 512)."""
    rep = _fit([_dense("l", 1024, 4, 4)], 4)
    assert rep.fits is True and rep.cores_used == 1 and rep.per_core[0]["neurons"] == 1024
    rep = _fit([_dense("l", 1025, 4, 4)], 4)
    assert rep.fits is True and [c["neurons"] for c in rep.per_core] == [513, 512]


@pytest.mark.timeout(20)
def test_synapse_memory_exactly_at_the_limit_and_one_past():
    """Guards: the synapse-memory comparison of the placement (131,072 bytes per Loihi core, one
    byte per 8-bit synapse): 32 neurons x 4096 synapses = 131,072 B on one core; a 33rd neuron
    with one synapse makes 131,073 B: two cores (17 + 16 neurons)."""
    rep = _fit([_dense("l", 32, 4096, 4096)], 4096)
    assert rep.fits is True and rep.cores_used == 1 and rep.per_core[0]["synapse_bytes"] == 131072
    w = np.zeros((33, 4096), np.int8)
    w[:32] = 1
    w[32, 0] = 1
    rep = _fit([Layer("l", "dense", 33, "LIF", ("input",), {"input": w})], 4096)
    assert rep.fits is True
    # rows 0..16 (17 x 4096) and 17..32 (15 x 4096 + 1)
    assert [(c["neurons"], c["synapse_bytes"]) for c in rep.per_core] == [(17, 69632), (16, 61441)]


@pytest.mark.timeout(20)
def test_fan_out_exactly_at_the_limit_and_one_past():
    """Guards: output axons per core (4096 on Loihi: one per (neuron, destination core) pair).

    A core of 1024 source neurons feeds a layer whose neuron ``i`` has one synapse, from source
    ``i % 1024``: 4096 destination neurons fill 4 cores, each reached by all 1024 sources ->
    4096 output axons (the limit); 4097 destination neurons need 5 cores (820, 820, 819, 819,
    819 neurons, each reached by as many distinct sources) -> 4097 axons, excess 1."""
    for n_dst, fan_out in ((4096, 4096), (4097, 4097)):
        w = np.zeros((n_dst, 1024), np.int8)
        w[np.arange(n_dst), np.arange(n_dst) % 1024] = 1
        src = _dense("src", 1024, 1, 1)
        dst = Layer("dst", "dense", n_dst, "LIF", ("src",), {"src": w})
        rep = _fit([src, dst], 1)
        assert rep.per_core[0]["layer"] == "src" and rep.per_core[0]["fan_out"] == fan_out
        assert rep.cores_used == 1 + math.ceil(n_dst / 1024)
        if fan_out == 4096:
            assert rep.fits is True
        else:
            assert _violations(rep) == [("fan_out_per_core", "src", 4097, 4096, 1)]


@pytest.mark.timeout(60)
def test_cores_and_neurons_per_chip_exactly_at_the_limit():
    """Guards: the chip totals (128 cores, 131,072 neurons on Loihi) at exactly their value:
    131,072 neurons fill 128 cores of 1024 and fit; one more neuron is one core and one neuron
    past (the suite's other test covers only the far side)."""
    rep = _fit([_dense("l", 131072, 1, 1)], 1)
    assert rep.fits is True and rep.cores_used == 128
    rep = _fit([_dense("l", 131073, 1, 1)], 1)
    assert sorted((v.rule, v.excess) for v in rep.violations) == [("cores", 1), ("neurons_per_chip", 1)]
