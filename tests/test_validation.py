"""Bad input: one clear error per fault, naming it, and no partial output file."""
from __future__ import annotations

import h5py
import nir
import numpy as np
import pytest

from spikeloop.cli import main
from spikeloop.core.errors import NIRValidationError, QuantizationError
from spikeloop.core.nir_io import read_graph, write_graph
from spikeloop.runtime.compiler import plan_from_nir
from spikeloop.runtime.fixed_point import quantize_plan


def lif(n, tau=0.01, r=10.0):
    return nir.LIF(tau=np.full(n, tau), r=np.full(n, r), v_leak=np.zeros(n), v_threshold=np.ones(n))


def graph(nodes, edges, dt=1e-3):
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={} if dt is None else {"dt": dt}, type_check=False)


def chain(w=None, neuron=None, dt=1e-3):
    w = np.ones((4, 3)) if w is None else w
    return graph({"input": nir.Input(np.array([w.shape[1]])), "fc": nir.Linear(w),
                  "lif": neuron or lif(w.shape[0]), "output": nir.Output(np.array([w.shape[0]]))},
                 [("input", "fc"), ("fc", "lif"), ("lif", "output")], dt)


def test_unreadable_file(tmp_path):
    p = tmp_path / "junk.nir"
    p.write_bytes(b"\x89HDF\r\n garbage")
    with pytest.raises(NIRValidationError, match=r"junk.nir: unreadable or truncated NIR/HDF5 file"):
        read_graph(p)


def test_truncated_file(tmp_path):
    good = write_graph(tmp_path / "good.nir", chain())
    cut = tmp_path / "cut.nir"
    cut.write_bytes(good.read_bytes()[:700])
    with pytest.raises(NIRValidationError, match=r"cut.nir: unreadable or truncated NIR/HDF5 file"):
        read_graph(cut)


def test_missing_file(tmp_path):
    with pytest.raises(NIRValidationError, match=r"nope.nir: no such NIR file"):
        read_graph(tmp_path / "nope.nir")


def test_unknown_node_type(tmp_path):
    p = write_graph(tmp_path / "g.nir", chain())
    with h5py.File(p, "r+") as f:
        del f["node/nodes/lif/type"]
        f["node/nodes/lif"].create_dataset("type", data=b"Izhikevich")
    with pytest.raises(NIRValidationError, match=r"g.nir: node 'lif' has unknown NIR type 'Izhikevich'; "
                                                 r"supported: Affine, "):
        read_graph(p)


def test_shape_mismatch_on_an_edge():
    g = chain(w=np.ones((4, 3)), neuron=lif(5))
    with pytest.raises(NIRValidationError, match=r"^g.nir: shape mismatch on the edge 'fc' -> 'lif': 'lif' has "
                                                 r"5 neurons, 'fc' gives shape \(4,\)$"):
        plan_from_nir(g, source="g.nir")


def test_cycle_without_state():
    g = graph({"input": nir.Input(np.array([3])), "a": nir.Linear(np.eye(3)), "b": nir.Linear(np.eye(3)),
               "lif": lif(3), "output": nir.Output(np.array([3]))},
              [("input", "a"), ("a", "b"), ("b", "a"), ("b", "lif"), ("lif", "output")])
    with pytest.raises(NIRValidationError, match=r"^g.nir: the cycle through \['a', 'b'\] has no neuron \(no "
                                                 r"state\) to break it"):
        plan_from_nir(g, source="g.nir")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_parameter(bad):
    w = np.ones((4, 3))
    w[2, 1] = bad
    with pytest.raises(NIRValidationError, match=rf"^g.nir: node 'fc' parameter 'weight' contains {bad} "
                                                 r"\(NaN or inf\)$"):
        plan_from_nir(chain(w=w), source="g.nir")


def test_missing_dt():
    with pytest.raises(NIRValidationError, match=r"^g.nir: the graph carries no time step \('dt' metadata\); "
                                                 r"pass it explicitly \(--dt SECONDS\)"):
        plan_from_nir(chain(dt=None), source="g.nir")


def test_decay_outside_the_12_bit_register():
    g = graph({"input": nir.Input(np.array([3])), "fc": nir.Linear(np.ones((4, 3))),
               "cuba": nir.CubaLIF(tau_syn=np.full(4, 100.0), tau_mem=np.full(4, 0.01), r=np.ones(4),
                                   v_leak=np.zeros(4), v_threshold=np.ones(4)),
               "output": nir.Output(np.array([4]))}, [("input", "fc"), ("fc", "cuba"), ("cuba", "output")])
    plan = plan_from_nir(g)
    with pytest.raises(QuantizationError, match=r"^population 'cuba': du=1e-05 is outside what the 12-bit "
                                                r"register represents \[0.000244141, 1\] \(tau = dt/du too long\)$"):
        quantize_plan(plan)


def test_weights_outside_the_weight_exponent_range():
    plan = plan_from_nir(chain(w=np.full((4, 3), 1e-9)))
    with pytest.raises(QuantizationError, match=r"^population 'lif': needs weight exponent -\d+ < -8"):
        quantize_plan(plan)


def test_bad_input_writes_nothing(tmp_path, capsys):
    bad = write_graph(tmp_path / "tiny.nir", chain(w=np.full((4, 3), 1e-9)))
    x = tmp_path / "x.npy"
    np.save(x, np.ones((5, 3)))
    out = tmp_path / "out.npz"
    assert main(["simulate", str(bad), "--input", str(x), "--backend", "emulator", "--precision", "fixed",
                 "--out", str(out)]) == 2
    assert "needs weight exponent" in capsys.readouterr().err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["tiny.nir", "x.npy"]
