"""Seeded fuzzing of the readers: NIR files, checkpoints, profiles and .npy inputs.

Each file is mutated at random (bytes flipped, fields replaced by values of other types,
shapes and contents) by hypothesis with a fixed seed and a bounded number of examples.
The only outcomes allowed are success or a spikeloop error: never another exception.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from spikeloop.core.errors import SpikeloopError

DATA = Path(__file__).parent / "data"
PROFILE = Path(__file__).resolve().parents[1] / "hwprofiles" / "loihi.toml"
FUZZ = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

values = st.one_of(
    st.integers(-2**40, 2**40), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
    st.text(max_size=8), st.none(), st.lists(st.floats(-1e3, 1e3), max_size=5),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=3))
arrays = st.one_of(
    st.builds(lambda v: np.asarray(v, np.float64), st.lists(st.floats(allow_nan=True, allow_infinity=True),
                                                           max_size=6)),
    st.builds(lambda n, v: np.full(n, v), st.integers(0, 70), st.floats(-1e6, 1e6)),
    st.builds(lambda s: np.asarray(s.encode()), st.text(max_size=6)),
    st.builds(lambda v: np.asarray(v, np.int64), st.lists(st.integers(-5, 5), max_size=4)),
    st.just(np.zeros((0,))), st.just(np.zeros((3, 0, 2))), st.just(np.asarray(0.0)))


def _allowed(fn):
    """Run ``fn``; anything but success or a SpikeloopError fails the test."""
    try:
        fn()
    except SpikeloopError:
        pass


def _flip(path: Path, data, n_max: int = 8) -> None:
    raw = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, n_max))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[:data.draw(st.integers(0, len(raw)))]
    path.write_bytes(bytes(raw))


def _datasets(path: Path) -> list[str]:
    out = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.append(name) if isinstance(obj, h5py.Dataset) else None)
    return sorted(out)


def _compile_and_run(path: Path) -> None:
    from spikeloop.core.nir_io import read_graph
    from spikeloop.runtime.backends import make_backend
    from spikeloop.runtime.compiler import plan_from_nir

    plan = plan_from_nir(read_graph(path), source=str(path))
    for precision in ("float", "fixed"):
        em = make_backend("emulator", plan, precision)
        em.decide(np.zeros(plan.input_size))


@pytest.fixture(scope="module")
def nir_fields():
    return _datasets(DATA / "policy.nir")


@seed(1)
@FUZZ
@given(data=st.data())
def test_mutated_nir_fields(tmp_path, nir_fields, data):
    path = tmp_path / "f.nir"
    shutil.copy(DATA / "policy.nir", path)
    for _ in range(data.draw(st.integers(1, 3))):
        name = data.draw(st.sampled_from(nir_fields))
        value = data.draw(arrays)
        with h5py.File(path, "r+") as f:
            del f[name]
            f[name] = value
    _allowed(lambda: _compile_and_run(path))


@seed(2)
@FUZZ
@given(data=st.data())
def test_nir_bytes_flipped(tmp_path, data):
    path = tmp_path / "b.nir"
    shutil.copy(DATA / "policy.nir", path)
    _flip(path, data)
    _allowed(lambda: _compile_and_run(path))


@seed(3)
@FUZZ
@given(data=st.data())
def test_mutated_checkpoint_header(tmp_path, data):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from spikeloop.train.checkpoint import load_policy

    src = DATA / "policy.safetensors"
    with safe_open(str(src), framework="pt") as f:
        header = json.loads(f.metadata()["spikeloop"])
    tensors = load_file(str(src))
    record = json.loads(json.dumps(header))
    for _ in range(data.draw(st.integers(1, 3))):
        target = record
        path = []
        while isinstance(target, dict) and target and data.draw(st.booleans()):
            key = data.draw(st.sampled_from(sorted(target)))
            path.append(key)
            if not isinstance(target[key], dict):
                break
            target = target[key]
        if isinstance(target, dict) and target:
            key = data.draw(st.sampled_from(sorted(target)))
            target[key] = data.draw(values)
    if data.draw(st.booleans()):
        name = data.draw(st.sampled_from(sorted(tensors)))
        tensors[name] = tensors[name][: data.draw(st.integers(0, 3))]
    out = tmp_path / "c.safetensors"
    save_file(tensors, str(out), metadata={"spikeloop": json.dumps(record, default=str)})
    _allowed(lambda: load_policy(out))


@seed(4)
@FUZZ
@given(data=st.data())
def test_checkpoint_bytes_flipped(tmp_path, data):
    from spikeloop.train.checkpoint import load_policy

    path = tmp_path / "b.safetensors"
    shutil.copy(DATA / "policy.safetensors", path)
    _flip(path, data, n_max=4)
    _allowed(lambda: load_policy(path))


@seed(5)
@FUZZ
@given(data=st.data())
def test_mutated_profile(tmp_path, data):
    from spikeloop.hwprofiles import load_profile

    lines = PROFILE.read_text().splitlines()
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(lines) - 1))
        action = data.draw(st.sampled_from(["delete", "value", "garbage"]))
        if action == "delete":
            del lines[i]
        elif action == "value" and "=" in lines[i]:
            key = lines[i].split("=", 1)[0]
            lines[i] = f"{key}= {json.dumps(data.draw(values))}"
        else:
            lines[i] = data.draw(st.text(max_size=20))
        if not lines:
            break
    path = tmp_path / "p.toml"
    path.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    _allowed(lambda: load_profile(path))


@seed(6)
@FUZZ
@given(data=st.data())
def test_mutated_npy_inputs(tmp_path, data):
    from spikeloop.core.nir_io import read_graph
    from spikeloop.runtime.compiler import plan_from_nir
    from spikeloop.runtime.simulate import read_inputs, simulate

    plan = plan_from_nir(read_graph(DATA / "policy.nir"))
    path = tmp_path / "x.npy"
    kind = data.draw(st.sampled_from(["array", "bytes"]))
    if kind == "array":
        shape = tuple(data.draw(st.lists(st.integers(0, 6), max_size=3)))
        dtype = data.draw(st.sampled_from([np.float64, np.int8, np.bool_, np.complex64, "U3"]))
        np.save(path, np.zeros(shape, dtype=dtype))
    else:
        np.save(path, np.zeros((5, 4)))
        _flip(path, data, n_max=4)
    precision = data.draw(st.sampled_from(["float", "fixed"]))
    _allowed(lambda: simulate(plan, read_inputs(path, plan), "emulator", precision))
