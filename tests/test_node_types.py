"""Every NIR primitive: torch -> NIR file -> compile -> torch / emulator / Lava, float and fixed.

Float: the torch SpikingGraph, the plan's torch reference, the emulator and Lava
floating_pt agree on every recorded spike exactly, and on every voltage to 1e-12 (the
dense sums run in different orders: torch's matmul, numpy's dot, Lava's column sums;
the cases use dyadic decays, so the NIR round trip itself is exact). Fixed: the emulator is bit-exact with Lava
fixed_pt on every voltage register and spike; against float, 8-bit weights and 12-bit
decays may flip a few spikes, so that comparison is a stated tolerance.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from graph_cases import DT_S, graph_cases
from spikeloop.core.nir_io import read_graph, write_graph
from spikeloop.export.to_nir import export_graph
from spikeloop.runtime.compiler import plan_from_nir
from spikeloop.runtime.simulate import simulate

CASES = graph_cases()
FIXED_AGREEMENT = 0.95
"""fraction of output spikes (or sign of readout voltage) fixed point must share with float"""


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = {}
    tmp = tmp_path_factory.mktemp("nodes")
    for name, (graph, x) in CASES.items():
        path = write_graph(tmp / f"{name}.nir", export_graph(graph, DT_S))
        out[name] = plan_from_nir(read_graph(path), source=name)
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_float_backends_reproduce_torch(name, compiled):
    graph, x = CASES[name]
    plan = compiled[name]
    with torch.no_grad():
        y, rec = graph(torch.as_tensor(x)[:, None], record=True)
    flat = x.reshape(len(x), -1)
    for backend in ("torch", "emulator", "lava"):
        res = simulate(plan, flat, backend, "float")
        np.testing.assert_allclose(res.output, y[:, 0].numpy().reshape(len(x), -1), rtol=0, atol=1e-12,
                                   err_msg=f"{name}: output on {backend}")
        for p in plan.populations:
            if f"{p.name}.v" in rec:
                np.testing.assert_allclose(res.v[p.name], rec[f"{p.name}.v"][:, 0].numpy().reshape(len(x), -1),
                                           rtol=0, atol=1e-12, err_msg=f"{name}: {p.name}.v on {backend}")
            if p.spiking and f"{p.name}.spikes" in rec:
                np.testing.assert_array_equal(res.spikes[p.name],
                                              rec[f"{p.name}.spikes"][:, 0].numpy().reshape(len(x), -1),
                                              err_msg=f"{name}: {p.name}.spikes on {backend}")


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixed_point_emulator_is_bit_exact_with_lava(name, compiled):
    graph, x = CASES[name]
    plan = compiled[name]
    flat = x.reshape(len(x), -1)
    emu = simulate(plan, flat, "emulator", "fixed")
    lava = simulate(plan, flat, "lava", "fixed")
    for p in plan.populations:
        np.testing.assert_array_equal(lava.v_raw[p.name], emu.v_raw[p.name], err_msg=f"{name}: {p.name}.v")
        if p.spiking:
            np.testing.assert_array_equal(lava.spikes[p.name], emu.spikes[p.name], err_msg=f"{name}: {p.name}")
    flt = simulate(plan, flat, "emulator", "float")
    if plan.population(plan.output).spiking:
        agree = np.mean(lava.output == flt.output)
        assert flt.output.sum() > 0
    else:
        agree = np.mean(np.sign(lava.output) == np.sign(flt.output))
    assert agree >= FIXED_AGREEMENT, f"{name}: fixed point agrees with float on {agree:.3f}"


def test_cases_cover_every_primitive(compiled):
    kinds = {p.kind for plan in compiled.values() for p in plan.populations}
    assert kinds == {"LIF", "CubaLIF", "IF", "LI", "CubaLI", "Threshold"}
    assert any(c.graph_delay == 1 and c.src == c.dst for plan in compiled.values() for c in plan.connections)
    assert any(c.delay > 0 for plan in compiled.values() for c in plan.connections)
    assert any(p.reset == "soft" for plan in compiled.values() for p in plan.populations)
    assert any(len(p.shape) == 3 for plan in compiled.values() for p in plan.populations)
