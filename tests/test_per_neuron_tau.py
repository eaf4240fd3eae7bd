"""Per-neuron time constants run exactly on every backend, never replaced by one of them.

A NIR LIF/CubaLIF/LI whose tau differs per neuron compiles to per-neuron decays. Float:
the reference, the emulator and Lava floating_pt reproduce a hand-written numpy loop of
the contract (DESIGN.md) step for step. Fixed point: the decays become per-neuron 12-bit
registers, and the emulator is bit-exact with Lava fixed_pt (such populations run on
spikeloop's CubaNeuron; Lava's LIF holds one du and one dv).
"""
from __future__ import annotations

import nir
import numpy as np
import pytest

from spikeloop.core.coding import InputEncoding
from spikeloop.runtime.compiler import plan_from_nir
from spikeloop.runtime.fixed_point import DECAY_UNITY, quantize_plan
from spikeloop.runtime.simulate import simulate

DT = 1e-3
N_IN, N1, N2, N_OUT = 3, 8, 6, 2
STEPS = 60


def _decays(*values):
    """Decays on the 12-bit grid (exact in float and in the registers), as taus of dt."""
    return DT / np.asarray(values, np.float64)


TAU_SYN = _decays(0.5, 0.25, 1.0, 0.125, 0.75, 0.375, 0.5, 0.0625)
TAU_MEM1 = _decays(0.125, 0.25, 0.0625, 0.5, 0.1875, 0.125, 0.3125, 0.25)
TAU_MEM2 = _decays(0.5, 0.25, 0.125, 0.0625, 0.375, 0.1875)
TAU_OUT = _decays(0.25, 0.0625)


def per_neuron_graph(seed: int = 0) -> nir.NIRGraph:
    """Input -> Linear -> CubaLIF -> Linear -> LIF -> Linear -> LI, every tau per neuron."""
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, 1.2, (N1, N_IN))
    w2 = rng.normal(0, 0.9, (N2, N1))
    w3 = rng.normal(0, 0.8, (N_OUT, N2))
    ones = np.ones
    nodes = {
        "input": nir.Input(np.array([N_IN])),
        "fc1": nir.Linear(weight=w1),
        "cuba": nir.CubaLIF(tau_syn=TAU_SYN, tau_mem=TAU_MEM1, r=ones(N1) * 4.0, v_leak=np.zeros(N1),
                            v_threshold=ones(N1) * 1.0, w_in=ones(N1) * 2.0),
        "fc2": nir.Linear(weight=w2),
        "lif": nir.LIF(tau=TAU_MEM2, r=ones(N2) * 4.0, v_leak=np.zeros(N2), v_threshold=ones(N2) * 1.0),
        "fc3": nir.Linear(weight=w3),
        "out": nir.LI(tau=TAU_OUT, r=ones(N_OUT), v_leak=np.zeros(N_OUT)),
        "output": nir.Output(np.array([N_OUT])),
    }
    edges = [("input", "fc1"), ("fc1", "cuba"), ("cuba", "fc2"), ("fc2", "lif"), ("lif", "fc3"),
             ("fc3", "out"), ("out", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def contract_loop(graph: nir.NIRGraph, x: np.ndarray, tau_of=lambda tau: tau) -> dict[str, np.ndarray]:
    """The contract written out by hand, in the graph's own time (forward Euler at DT)::

        u = (1 - du) u + gain * (W s_in);  v = (1 - dv) v + u;  s = v > vth;  v = 0 where s

    with du = dt/tau_syn (1 for LIF/LI), dv = dt/tau_mem, gain = du dv r w_in (CubaLIF),
    dv r (LIF/LI). ``tau_of`` transforms every tau array (to show the test is not vacuous).
    """
    n = graph.nodes
    layers = []
    for fc, name in (("fc1", "cuba"), ("fc2", "lif"), ("fc3", "out")):
        node = n[name]
        if isinstance(node, nir.CubaLIF):
            du, dv = DT / tau_of(node.tau_syn), DT / tau_of(node.tau_mem)
            gain, vth = du * dv * node.r * node.w_in, node.v_threshold
        else:
            dv = DT / tau_of(node.tau)
            du, gain = np.ones_like(dv), dv * node.r
            vth = getattr(node, "v_threshold", None)
        layers.append((name, n[fc].weight, du, dv, gain, vth))
    u = {name: np.zeros(len(du)) for name, _, du, *_ in layers}
    v = {name: np.zeros(len(du)) for name, _, du, *_ in layers}
    out = {f"{name}.{k}": [] for name, *_ in layers for k in ("v", "s")}
    for row in x:
        s_in = row
        for name, w, du, dv, gain, vth in layers:
            u[name] = (1 - du) * u[name] + gain * (w @ s_in)
            v[name] = (1 - dv) * v[name] + u[name]
            if vth is not None:
                s = (v[name] > vth).astype(np.float64)
                v[name] = np.where(s > 0, 0.0, v[name])
                out[f"{name}.s"].append(s)
                s_in = s
            out[f"{name}.v"].append(v[name].copy())
    return {k: np.asarray(a) for k, a in out.items() if a}


@pytest.fixture(scope="module")
def case():
    graph = per_neuron_graph()
    x = (np.random.default_rng(1).random((STEPS, N_IN)) < 0.5).astype(np.float64)  # binary input spikes
    return graph, plan_from_nir(graph, dt_s=DT, T=8), x


def test_per_neuron_decays_are_kept(case):
    graph, plan, _ = case
    for p, tau_mem in zip(plan.populations, (TAU_MEM1, TAU_MEM2, TAU_OUT)):
        np.testing.assert_array_equal(p.dv, DT / tau_mem, err_msg=p.name)
        assert not p.lava_lif, f"{p.name}: per-neuron decays must not go to Lava's scalar-decay LIF"
    np.testing.assert_array_equal(plan.population("cuba").du, DT / TAU_SYN)
    fixed = quantize_plan(plan)
    for p in plan.populations:
        f = fixed.populations[p.name]
        np.testing.assert_array_equal(f.dv_12bit, np.rint(p.dv * DECAY_UNITY).astype(np.int64), err_msg=p.name)
    np.testing.assert_array_equal(fixed.populations["cuba"].du_12bit,
                                  np.rint(DT / TAU_SYN * DECAY_UNITY).astype(np.int64) - 1)


def test_float_backends_run_per_neuron_tau_exactly(case):
    graph, plan, x = case
    want = contract_loop(graph, x)
    assert want["cuba.s"].sum() > 0 and want["lif.s"].sum() > 0, "no spikes: the comparison would be vacuous"
    one_tau = contract_loop(graph, x, tau_of=lambda tau: np.full_like(tau, tau.max()))
    assert any(not np.allclose(one_tau[k], want[k]) for k in want), "per-neuron tau changes nothing here"
    for backend in ("torch", "emulator", "lava"):
        res = simulate(plan, x, backend, "float")
        for name in ("cuba", "lif", "out"):
            np.testing.assert_allclose(res.v[name], want[f"{name}.v"], rtol=0, atol=1e-12,
                                       err_msg=f"{backend}: {name}.v")
        for name in ("cuba", "lif"):
            np.testing.assert_array_equal(res.spikes[name], want[f"{name}.s"], err_msg=f"{backend}: {name}")


def test_fixed_point_per_neuron_tau_is_bit_exact_with_lava(case):
    graph, plan, x = case
    emu = simulate(plan, x, "emulator", "fixed")
    lava = simulate(plan, x, "lava", "fixed")
    for p in plan.populations:
        np.testing.assert_array_equal(lava.v_raw[p.name], emu.v_raw[p.name], err_msg=f"{p.name}.v")
        if p.spiking:
            np.testing.assert_array_equal(lava.spikes[p.name], emu.spikes[p.name], err_msg=p.name)
            assert emu.spikes[p.name].sum() > 0
    # Against float, 8-bit weights flip some spikes (more in deeper layers), but far fewer
    # than one time constant per population would: fixed point runs the per-neuron decays.
    flt = simulate(plan, x, "emulator", "float")
    one_tau = contract_loop(graph, x, tau_of=lambda tau: np.full_like(tau, tau.max()))
    assert np.mean(emu.spikes["cuba"] == flt.spikes["cuba"]) >= 0.95
    for name in ("cuba", "lif"):
        agree = np.mean(emu.spikes[name] == flt.spikes[name])
        assert agree > np.mean(one_tau[f"{name}.s"] == flt.spikes[name]) + 0.1, name


def test_closed_loop_per_neuron_tau_bit_exact_on_every_lava_mapping(case):
    """Decision windows (state reset per decision): emulator == Lava per-node == Lava fused."""
    from spikeloop.runtime.backends import make_backend

    graph, plan, _ = case
    plan.encoding = InputEncoding(mean=(0.0,) * N_IN, std=(1.0,) * N_IN)
    obs = np.random.default_rng(2).normal(0, 1.5, (12, N_IN))
    fixed = quantize_plan(plan)
    outs = {}
    for name in ("emulator", "lava-per-node", "lava-fused"):
        with make_backend(name, plan, "fixed", fixed) as b:
            outs[name] = np.stack([b.decide_raw(b.codec.encode(o)) for o in obs])
            outs[name + ".counts"] = b.counts().to_dict()
    np.testing.assert_array_equal(outs["lava-per-node"], outs["emulator"])
    np.testing.assert_array_equal(outs["lava-fused"], outs["emulator"])
    assert outs["lava-per-node.counts"] == outs["emulator.counts"] == outs["lava-fused.counts"]
    assert np.abs(outs["emulator"]).max() > 0
