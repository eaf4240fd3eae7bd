"""The neuron contract: golden trajectories by hand, Loihi integer arithmetic, Lava's timing."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import spikeloop.runtime  # noqa: F401
from spikeloop.runtime.fixed_point import LOIHI, dense_accumulate, lava_effective_weights
from spikeloop.train.graph import arctan_spike
from spikeloop.core.neuron import FLOAT, cuba_step


def run(a_seq, **kw):
    u = v = np.zeros(1)
    out = []
    for a in a_seq:
        u, v, s, _ = cuba_step(u, v, np.array([a]), **kw)
        out.append((u[0], v[0], None if s is None else bool(s[0])))
    return out


def test_float_golden_trajectory_hard_reset():
    # du=0.5, dv=0.25, bias=0.1, vth=1:  u1=1, v1=0+1+.1=1.1 -> spike, v=0
    #   u2=0.5+0=0.5, v2=0*.75+0.5+0.1=0.6;  u3=0.25+1=1.25, v3=0.45+1.25+0.1=1.8 -> spike
    out = run([1.0, 0.0, 1.0], du=0.5, dv=0.25, bias=0.1, vth=1.0, reset="hard")
    assert out[0] == (1.0, 0.0, True)
    assert out[1][0] == 0.5 and out[1][1] == pytest.approx(0.6, abs=1e-15) and out[1][2] is False
    assert out[2][0] == 1.25 and out[2][1] == 0.0 and out[2][2] is True


def test_float_soft_reset_subtracts_threshold():
    out = run([1.5, 0.0], du=1.0, dv=0.0, bias=0.0, vth=1.0, reset="soft")
    assert out[0] == (1.5, 0.5, True)  # 1.5 > 1 -> 1.5 - 1
    assert out[1] == (0.0, 0.5, False)


def test_non_spiking_readout_integrates():
    out = run([2.0, 2.0], du=1.0, dv=0.5, bias=0.0, vth=None)
    assert [o[1] for o in out] == [2.0, 3.0] and out[0][2] is None


def test_spike_is_strictly_greater_than_threshold():
    assert run([1.0], du=1.0, dv=0.0, bias=0.0, vth=1.0)[0][2] is False


def test_loihi_arithmetic_by_hand():
    # du_12bit=2047 -> decay factor (4096-2048)/4096 = 1/2; dv_12bit=1024 -> 3/4.
    u, v, s, v_pre = cuba_step(np.array([1001]), np.array([-1001]), np.array([3]), du=2047, dv=1024,
                               bias=np.array([5]), vth=500, arith=LOIHI)
    # u = sign(1001*2048)*(|..|>>12) = 500 ; + (3 << 6) = 692
    # v = -(1001*3072 >> 12) = -750 ; + 692 + 5 = -53
    assert u.tolist() == [692] and v_pre.tolist() == [-53] and not s[0]


def test_loihi_decay_rounds_toward_zero_and_state_saturates():
    assert LOIHI.decay_v(np.array([-7, 7]), 2048).tolist() == [-3, 3]  # -3.5 -> -3
    assert LOIHI.clip_v(np.array([1 << 24, -(1 << 24)])).tolist() == [(1 << 23) - 1, -(1 << 23) + 1]
    assert LOIHI.wrap_u(np.array([(1 << 23) + 5])).tolist() == [-(1 << 23) + 5]


def test_lava_dense_weight_grid_and_exponent():
    w = np.array([[255, -3], [7, 100]])
    # mixed sign: clip to [-256, 255] then drop the lowest bit
    assert lava_effective_weights(w).tolist() == [[254, -4], [6, 100]]
    assert dense_accumulate(np.array([[2, -4]]), np.array([1, 1]), -1).tolist() == [-1]  # floor(-2/2)
    assert dense_accumulate(np.array([[3]]), np.array([1]), 2).tolist() == [12]


def test_arctan_surrogate_gradient():
    x = torch.tensor([0.0, 1.0, -2.0], requires_grad=True)
    s = arctan_spike(x, alpha=2.0)
    s.sum().backward()
    assert s.tolist() == [0.0, 1.0, 0.0]
    expected = 1.0 / (1 + (np.pi * x.detach().numpy()) ** 2)
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-6)


def test_same_step_function_in_torch_and_numpy():
    a = np.array([0.3, 1.7, -0.2])
    ref = cuba_step(np.zeros(3), np.zeros(3), a, du=0.5, dv=0.2, bias=0.1, vth=1.0)
    t = cuba_step(torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64),
                  torch.as_tensor(a), du=0.5, dv=0.2, bias=0.1, vth=1.0, arith=FLOAT,
                  spike_fn=lambda d: (d > 0).double())
    for x, y in zip(ref, t):
        np.testing.assert_array_equal(np.asarray(x, float), y.numpy())


def test_lava_delays_one_step_per_dense_hop():
    """Measured Lava fact: a spike injected at step 0 through Dense->LIF->Dense->LIF makes the
    first LIF spike at step 1 and the second at step 2; the emulator reproduces it."""
    from spikeloop.runtime.emulator import Emulator
    from spikeloop.runtime.lava_runtime import LavaPerNode
    from spikeloop.runtime.plan import Connection, NetworkPlan, Population

    def pop(name, vth):
        return Population(name, 1, np.ones(1), np.zeros(1), np.zeros(1), vth)

    plan = NetworkPlan(1, [pop("a", 1.0), pop("b", 1.0), pop("c", None)],
                       [Connection("d1", "input", "a", np.array([[2.0]])),
                        Connection("d2", "a", "b", np.array([[2.0]])),
                        Connection("d3", "b", "c", np.array([[1.0]]))], "c", 1e-3, 1)
    seq = np.zeros((6, 1))
    seq[0] = 1
    with LavaPerNode(plan, "float", probe_steps=6, windowed=False, sequence=seq) as net:
        net.run(6)
        probes = net.probes()
    first, second = probes[("a", "s")][:, 0], probes[("b", "s")][:, 0]
    assert np.flatnonzero(first).tolist() == [1]
    assert np.flatnonzero(second).tolist() == [2]
    em = Emulator(plan, "float", windowed=False)
    recs = [em.step(x) for x in seq]
    assert [int(r["a"][0][0]) for r in recs] == first.astype(int).tolist()
    assert [int(r["b"][0][0]) for r in recs] == second.astype(int).tolist()
