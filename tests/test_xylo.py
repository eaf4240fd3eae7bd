"""Xylo's arithmetic in the neuron contract: the numpy emulator against SynSense's own ``xylosim``.

``xylosim`` (0.1.3, built from source by ``make setup``) is the vendor's bit-accurate
simulator of the Xylo SNN core; ``xylosim.v2`` is Xylo Audio 2's core (Rockpool's
``syns61201``). It is imported here only, never by spikeloop (it declares no licence). A
missing ``xylosim`` fails these tests: it is part of the test setup, not optional.
"""
from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from xylosim.v2 import XyloLayer, XyloSynapse

from spikeloop.core.errors import ConfigError
from spikeloop.core.neuron import HARD, SOFT, cuba_step
from spikeloop.runtime.xylo import HIDDEN, READOUT, XyloEmulator, XyloRegisters, bitshift_decay, deliver


def _xylosim(r: XyloRegisters) -> tuple[XyloLayer, list]:
    """The vendor simulator holding the registers ``r`` (one synapse per neuron, as Rockpool builds it),
    and its synapse objects: the layer keeps raw pointers to them, so they must outlive it."""
    def synapses(w):
        return [[XyloSynapse(int(post), 0, int(w[pre, post])) for post in np.flatnonzero(w[pre])]
                for pre in range(w.shape[0])]
    n_hid = r.sizes[1]
    held = [synapses(r.w_in), synapses(r.w_rec), synapses(r.w_out)]
    return XyloLayer(*held, [[] for _ in range(n_hid)],
                     r.vth.tolist(), r.vth_out.tolist(), True, r.bias.tolist(), r.bias_out.tolist(),
                     r.shift_in, r.shift_rec, r.shift_out, r.dash_mem.tolist(), r.dash_mem_out.tolist(),
                     [[int(d)] for d in r.dash_syn], [[int(d)] for d in r.dash_syn_out], "spikeloop-test"), held


def _random_registers(rng, n_in=16, n_hid=60, n_out=8, shift=(0, 0, 0), vth=(50, 2000), density=0.5):
    def weights(a, b):
        return rng.integers(-128, 128, (a, b)) * (rng.random((a, b)) < density)
    return XyloRegisters(
        w_in=weights(n_in, n_hid), w_rec=weights(n_hid, n_hid), w_out=weights(n_hid, n_out),
        dash_syn=rng.integers(0, 16, n_hid), dash_mem=rng.integers(0, 16, n_hid),
        vth=rng.integers(*vth, n_hid), bias=rng.integers(-200, 200, n_hid),
        dash_syn_out=rng.integers(0, 16, n_out), dash_mem_out=rng.integers(0, 16, n_out),
        vth_out=rng.integers(*vth, n_out), bias_out=rng.integers(-200, 200, n_out),
        shift_in=shift[0], shift_rec=shift[1], shift_out=shift[2])


def _compare(r: XyloRegisters, events: np.ndarray) -> dict:
    sim, _held = _xylosim(r)
    out_sim = np.array(sim.evolve(events.astype(np.uint8).tolist()))
    emu = XyloEmulator(r, record=True)
    out_emu = emu.run(events)
    rec = {k: np.array(v) for k, v in emu.record.items()}
    np.testing.assert_array_equal(out_emu, out_sim)
    np.testing.assert_array_equal(rec["spikes"], np.array(sim.rec_recurrent_spikes))
    for ours, theirs in (("i_syn", "rec_i_syn"), ("v_mem", "rec_v_mem"), ("i_syn_out", "rec_i_syn_out"),
                         ("v_mem_out", "rec_v_mem_out")):
        np.testing.assert_array_equal(rec[ours], np.array(getattr(sim, theirs)).T, err_msg=ours)
    return rec


@pytest.mark.parametrize("seed", [0, 1])
def test_emulator_is_bit_exact_with_xylosim_on_a_random_network(seed):
    """Every neuron's current, voltage and spike count at every one of 1,500 steps."""
    rng = np.random.default_rng(seed)
    r = _random_registers(rng)
    events = rng.integers(0, 20, (1500, 16)) * (rng.random((1500, 16)) < 0.3)  # counts above 15 are clipped
    rec = _compare(r, events)
    assert rec["spikes"].max() > 1 and rec["spikes_out"].sum() > 0  # several spikes a step, and readout spikes


def test_emulator_is_bit_exact_with_xylosim_where_every_addition_saturates():
    """Large shifted weights and low thresholds: the currents and voltages sit at the 16-bit rails, where the
    order of the saturating additions decides the result; the spike cap of 31 is reached."""
    rng = np.random.default_rng(7)
    r = _random_registers(rng, n_hid=40, n_out=4, shift=(7, 6, 5), vth=(1, 400), density=0.9)
    events = rng.integers(0, 16, (1200, 16))
    rec = _compare(r, events)
    # the recorded currents have decayed once since they hit the rail
    assert rec["i_syn"].max() > 32000 and rec["i_syn"].min() < -32000
    assert max(rec["v_mem"].max(), -rec["v_mem"].min()) > 32000
    assert rec["spikes"].max() == 31 and rec["spikes_out"].max() == 1


def test_the_xylo_stages_are_the_contract_update_with_its_own_nesting():
    # decay: one step toward zero at least, an arithmetic shift otherwise
    np.testing.assert_array_equal(bitshift_decay([100, -100, 3, -3, 0, -1], 4), [6, -7, 1, -1, 0, -1])
    # the input joins the current before it decays; the voltage sums saturate step by step
    u, v, s, v_pre = cuba_step(np.array([100]), np.array([-30000]), np.array([29900]), du=1, dv=1, bias=0,
                               vth=np.array([1000]), reset=SOFT, arith=HIDDEN)
    assert u.tolist() == [15000] and v_pre.tolist() == [0] and s.tolist() == [0]
    u, v, s, _ = cuba_step(np.array([0]), np.array([-30000]), np.array([30000]), du=15, dv=1, bias=0,
                           vth=np.array([100]), reset=SOFT, arith=HIDDEN)
    # dv = sat(15000 + 29999) = 32767, v = -30000 + 32767 = 2767 (one sum would give 14999): 27 spikes
    assert u.tolist() == [29999] and s.tolist() == [27] and v.tolist() == [2767 - 27 * 100]
    u, v, s, _ = cuba_step(np.array([0]), np.array([0]), np.array([5000]), du=0, dv=15, bias=0,
                           vth=np.array([100]), reset=SOFT, arith=HIDDEN)
    assert u.tolist() == v.tolist() == s.tolist() == [0]  # a shift of 0 empties the current before v sees it
    _, v, s, _ = cuba_step(np.array([0]), np.array([0]), np.array([8000]), du=15, dv=15, bias=0,
                           vth=np.array([100]), reset=SOFT, arith=HIDDEN)
    assert s.tolist() == [31] and v.tolist() == [7999 - 31 * 100]  # the cap: 31 spikes, the rest stays
    _, _, s, _ = cuba_step(np.array([0]), np.array([0]), np.array([5000]), du=1, dv=15, bias=0,
                           vth=np.array([100]), reset=SOFT, arith=READOUT)
    assert s.tolist() == [1]
    with pytest.raises(ConfigError, match="Xylo resets by subtracting the threshold"):
        cuba_step(np.array([0]), np.array([0]), np.array([0]), du=1, dv=1, bias=0, vth=np.array([1]), reset=HARD,
                  arith=HIDDEN)


def test_delivery_order_matters_only_at_the_rails():
    w = np.array([[30000], [-30000], [5000]])
    # 30000 + 30000 saturates before -30000 arrives: 32767 - 30000 + 5000 = 7767, not 35000
    assert deliver(np.array([0]), np.array([2, 1, 1]), w, 0, 15).tolist() == [7767]
    assert deliver(np.array([0]), np.array([1, 1, 1]), w, 0, 15).tolist() == [5000]


def test_registers_out_of_range_are_refused_with_the_register_named():
    rng = np.random.default_rng(0)
    good = _random_registers(rng, n_hid=4, n_out=2)
    with pytest.raises(ConfigError, match=r"Xylo register w_in\[5\] = 300 is outside \[-128, 127\]"):
        XyloRegisters(**{**vars(good), "w_in": np.where(np.arange(64).reshape(16, 4) == 5, 300, good.w_in)})
    with pytest.raises(ConfigError, match=r"dash_mem\[0\] = 16 is outside \[0, 15\]"):
        XyloRegisters(**{**vars(good), "dash_mem": np.full(4, 16)})
    with pytest.raises(ConfigError, match=r"vth_out\[0\] = 0 is outside \[1, 32767\]"):
        XyloRegisters(**{**vars(good), "vth_out": np.zeros(2)})
    with pytest.raises(ConfigError, match=r"shift_rec must be an integer in \[0, 7\]"):
        XyloRegisters(**{**vars(good), "shift_rec": 8})
    with pytest.raises(ConfigError, match=r"one non-negative event count per input channel \(16\)"):
        XyloEmulator(good).step(np.zeros(3))


def _rockpool_cycles_model():
    """Rockpool's own cycle model of the Xylo Audio 2 core (its function, loaded from its file).

    Its module imports ``samna`` (not installable here) only to name a type in a signature;
    the function reads nothing but the config's attributes, so a bare module stands in for
    that import and the vendor's formula runs as written.
    """
    import rockpool

    path = Path(rockpool.__file__).parent / "devices" / "xylo" / "syns61201" / "power_cycles_model.py"
    samna = types.ModuleType("samna")
    samna.xyloCore2 = SimpleNamespace(configuration=SimpleNamespace(XyloConfiguration=object))
    saved = sys.modules.get("samna")
    sys.modules["samna"] = samna
    try:
        spec = importlib.util.spec_from_file_location("rockpool_xylo_a2_cycles", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        if saved is None:
            del sys.modules["samna"]
        else:
            sys.modules["samna"] = saved
    return module.cycles_model, module.est_clock_freq


def _rockpool_config(r: XyloRegisters):
    """The attributes of a Xylo Audio 2 configuration that the cycle model reads, for ``r``."""
    ns = SimpleNamespace
    n_hid = r.sizes[1]
    return ns(
        input=ns(weights=r.w_in), readout=ns(weights=r.w_out), synapse2_enable=False,
        reservoir=ns(weights=r.w_rec, neurons=[ns(alias_target=None) for _ in range(n_hid)]))


def test_cycle_model_agrees_with_rockpools_on_measured_rasters_and_the_worst_case():
    from spikeloop.hwprofiles.cycles import xylo_cycles
    from spikeloop.hwprofiles.profile import load_profile

    cycles_model, est_clock_freq = _rockpool_cycles_model()
    profile = load_profile("xylo")
    rng = np.random.default_rng(3)
    r = _random_registers(rng, n_hid=50, n_out=5, density=0.3)
    emu = XyloEmulator(r, record=True)
    emu.run(rng.integers(0, 4, (400, 16)) * (rng.random((400, 16)) < 0.2))
    rec = {k: np.array(v) for k, v in emu.record.items()}
    n_in, n_hid, n_out = r.sizes
    ours = xylo_cycles(profile, n_in, n_hid, n_out, r.recurrent_fanout(), rec["events"], rec["spikes"],
                       rec["spikes_out"])
    theirs, isyn2_ops = cycles_model(_rockpool_config(r), rec["events"], rec["spikes"], rec["spikes_out"])
    assert 0 < ours.hidden_rate < 1 and isyn2_ops == 0
    assert ours.per_step == pytest.approx(theirs, rel=1e-12)
    worst = xylo_cycles(profile, n_in, n_hid, n_out, r.recurrent_fanout())
    assert worst.per_step == pytest.approx(cycles_model(_rockpool_config(r))[0], rel=1e-12)
    assert worst.clock_hz(1e-3) == pytest.approx(est_clock_freq(_rockpool_config(r), 1e-3), rel=1e-12)
    assert worst.per_step > ours.per_step
    with pytest.raises(ConfigError, match=r"profile 'loihi' has no cycle model"):
        xylo_cycles(load_profile("loihi"), n_in, n_hid, n_out, 1.0)
