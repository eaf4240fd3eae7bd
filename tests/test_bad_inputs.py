"""Bad input, tried as a hostile user would: one clear error, exit status 2, nothing written.

Every case below is one distinct bad input or fault. A CLI case runs ``spikeloop.cli.main``
in process and must:

- exit with status 2 (an argparse refusal counts: it is ``SystemExit(2)``);
- print exactly one ``error:`` line on stderr that names the fault (the file, node, field
  or value given in the case), and no traceback;
- leave every file it was given byte-identical and create nothing (the whole case folder and
  the shared good artifacts are compared before and after);
- for commands that may start Lava (``run``, ``demo``, ``simulate --backend lava``), leave no
  process and no ``/dev/shm`` segment behind;
- where the case says so, fail before any work starts (within a few seconds, where the work
  would take a minute).

An API case calls a public function and must raise the spikeloop error class named in the
case, with a message naming the fault. Lava runs for real; nothing is mocked.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import nir
import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from conftest import DATA, live_children, random_policy
from spikeloop.cli import main
from spikeloop.core import errors as E
from spikeloop.core.nir_io import write_graph

REPO = Path(__file__).resolve().parents[1]
PROFILE_DIR = REPO / "hwprofiles"
TINY_TRAIN = ["--quiet", "--total-steps", "300", "--learning-starts", "100", "--eval-every", "200",
              "--eval-episodes", "1", "--hidden", "8", "8", "--T", "4", "--norm-steps", "100"]
"""a training run of a few seconds (used where a case must not depend on long training)"""
BEFORE_WORK_S = 20.0
"""a case that must fail before any work: the work it guards takes a minute or more"""


# ----------------------------------------------------------------------------- helpers

def snapshot(root: Path) -> dict:
    """Every entry under ``root``: directories, and files with their bytes and mode."""
    out = {}
    if not root.exists():
        return out
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = ("link", os.readlink(p))
        elif p.is_dir():
            out[rel] = ("dir", p.stat().st_mode)
        else:
            out[rel] = ("file", p.read_bytes(), p.stat().st_mode)
    return out


def shm_segments() -> set[str]:
    try:
        return {p.name for p in Path("/dev/shm").iterdir() if p.name.startswith("psm_")}
    except OSError:
        return set()


def run_cli(argv) -> int:
    try:
        return main([str(a) for a in argv])
    except SystemExit as e:  # argparse refusals: the console script exits with this code
        return e.code if isinstance(e.code, int) else 1


def edit_h5(path: Path, fn) -> Path:
    with h5py.File(path, "r+") as f:
        fn(f)
    return path


def replace_ds(key: str, value):
    def fn(f):
        del f[key]
        f[key] = value
    return fn


def meta_body(path: Path) -> dict:
    with h5py.File(path, "r") as f:
        raw = f["node/metadata/spikeloop"][()]
    return json.loads(raw.decode() if isinstance(raw, bytes) else raw)


def set_meta(path: Path, body=None, raw: str | None = None, **changes) -> Path:
    """Rewrite the spikeloop metadata JSON: ``changes`` (None deletes a key), or ``raw`` text."""
    if raw is None:
        body = dict(meta_body(path) if body is None else body)
        for k, v in changes.items():
            if v is None:
                body.pop(k, None)
            else:
                body[k] = v
        raw = json.dumps(body)
    return edit_h5(path, replace_ds("node/metadata/spikeloop", raw))


def ckpt_record(path: Path) -> dict:
    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()["spikeloop"])


def write_ckpt(path: Path, record=None, tensors=None, raw: str | None = None, src: Path | None = None) -> Path:
    """A checkpoint from ``src`` with its record (or raw header text) and tensors replaced."""
    src = src or DATA / "policy.safetensors"
    t = load_file(str(src)) if tensors is None else tensors
    header = raw if raw is not None else json.dumps(ckpt_record(src) if record is None else record)
    save_file(t, str(path), metadata={"spikeloop": header})
    return path


def profile_text(name: str = "loihi") -> str:
    return (PROFILE_DIR / f"{name}.toml").read_text()


def readonly_dir(tmp: Path) -> Path:
    """A directory in which no file can be created, even by root (then a read-only mount)."""
    d = tmp / "readonly"
    d.mkdir()
    d.chmod(0o555)
    try:
        fd, probe = tempfile.mkstemp(dir=d)
    except OSError:
        return d
    os.close(fd)
    os.unlink(probe)
    d.chmod(0o755)
    d.rmdir()
    for ro in (Path("/sys"), Path("/proc")):
        try:
            fd, probe = tempfile.mkstemp(dir=ro)
        except OSError:
            return ro
        os.close(fd)
        os.unlink(probe)
    pytest.skip("no directory here refuses new files (root without a read-only mount)")


@dataclass
class Good:
    """Valid artifacts shared by every case (read only; snapshotted and compared)."""

    root: Path
    nir: Path
    """the committed trained CartPole policy"""
    ckpt: Path
    ckpt2: Path
    """the trained policy's checkpoint rewritten in the current format (the committed one is format 1)"""
    tiny_nir: Path
    """a random 4-8-2 policy graph (env CartPole-v1 in its metadata): fast to compile and simulate"""
    tiny_ckpt: Path
    run: Path
    """a run folder after `spikeloop run --episodes 1`: policy.nir, policy.safetensors, report.json/md"""
    x: Path
    """a good simulate input for the 4-input graphs (12 x 4 zeros)"""
    profile: Path
    """a copy of loihi.toml"""


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Good:
    from spikeloop.export.to_nir import export_policy
    from spikeloop.train.checkpoint import save_policy

    root = tmp_path_factory.mktemp("good")
    for name in ("policy.nir", "policy.safetensors"):
        shutil.copy(DATA / name, root / name)
    policy, _ = random_policy(sizes=(4, 8, 2), T=4, dtype=torch.float32)
    policy.network.spec["args"]["dtype"] = "float32"
    write_graph(root / "tiny.nir", export_policy(policy, 1e-3, {"env_id": "CartPole-v1"}))
    save_policy(root / "tiny.safetensors", policy)
    from spikeloop.train.checkpoint import load_policy

    save_policy(root / "policy2.safetensors", load_policy(root / "policy.safetensors")[0])
    run = root / "run"
    run.mkdir()
    for name in ("policy.nir", "policy.safetensors"):
        shutil.copy(DATA / name, run / name)
    assert run_cli(["run", run, "--episodes", "1", "--quiet", "--profile", "loihi"]) == 0
    np.save(root / "x.npy", np.zeros((12, 4)))
    shutil.copy(PROFILE_DIR / "loihi.toml", root / "loihi.toml")
    return Good(root, root / "policy.nir", root / "policy.safetensors", root / "policy2.safetensors",
                root / "tiny.nir",
                root / "tiny.safetensors", run, root / "x.npy", root / "loihi.toml")


@pytest.fixture(scope="module")
def good_snapshot(good) -> dict:
    return snapshot(good.root)


class W:
    """What a case's setup gets: its own folder and the good artifacts."""

    def __init__(self, tmp: Path, good: Good):
        self.tmp, self.good = tmp, good

    def copy(self, src: Path, name: str | None = None) -> Path:
        dst = self.tmp / (name or src.name)
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            shutil.copy(src, dst)
        return dst

    def nir(self, name: str = "g.nir", fn=None, src: Path | None = None) -> Path:
        """A copy of the trained policy graph (or ``src``), edited by ``fn(h5file)``."""
        p = self.copy(src or self.good.nir, name)
        return edit_h5(p, fn) if fn is not None else p

    def meta(self, name: str = "g.nir", src: Path | None = None, **changes) -> Path:
        return set_meta(self.nir(name, src=src), **changes)

    def copy_graph(self, graph, name: str) -> Path:
        import nir

        nir.write(self.tmp / name, graph)
        return self.tmp / name

    def npy(self, name: str, array) -> Path:
        p = self.tmp / name
        with open(p, "wb") as f:
            np.save(f, array, allow_pickle=False)
        return p

    def text(self, name: str, content: str | bytes) -> Path:
        p = self.tmp / name
        (p.write_bytes if isinstance(content, bytes) else p.write_text)(content)
        return p

    def profile(self, name: str, text: str | bytes) -> Path:
        return self.text(name, text)

    def sim(self, graph: Path, x: Path | None = None, *extra, out: Path | None = None) -> list:
        return ["simulate", graph, "--input", x or self.good.x, "--backend", "emulator",
                "--out", out or self.tmp / "out.npz", *extra]


@dataclass
class Case:
    argv: list
    expect: list[str]
    """substrings stderr must hold (file, node, field, value)"""
    lava: bool = False
    """the command may start Lava: check that nothing of it remains"""
    before_work: bool = False
    """must fail before the expensive work starts"""
    check: Callable | None = None
    """extra assertion on (stdout, stderr)"""


CLI: dict[str, Callable[[W], Case]] = {}
API: dict[str, Callable[[W], tuple]] = {}


def cli(name: str):
    def register(fn):
        assert name not in CLI, name
        CLI[name] = fn
        return fn
    return register


def api(name: str):
    def register(fn):
        assert name not in API, name
        API[name] = fn
        return fn
    return register


# ============================================================================ NIR files
# (through `inspect`, the cheapest command that reads and compiles a graph)

@cli("nir-group-contains-itself")
def _(w):
    p = w.nir("loop.nir", lambda f: f["node/nodes"].__setitem__("sub", f["node"]))
    return Case(["inspect", p], ["loop.nir", "node/nodes/sub", "contains itself"])


@cli("nir-deep-nesting")
def _(w):
    def deep(f):
        g = f["node/nodes"]
        for i in range(300):
            g = g.create_group(f"n{i}")
            g["type"] = "NIRGraph"
            g = g.create_group("nodes")
    p = w.nir("deep.nir", deep)
    return Case(["inspect", p], ["deep.nir", "nested more than", "levels deep"])


@cli("nir-weights-strings")
def _(w):
    p = w.nir("wstr.nir", replace_ds("node/nodes/fc0/weight", np.array([["a"] * 4] * 64, dtype="S1")))
    return Case(["inspect", p], ["wstr.nir", "'fc0'", "'weight'", "not numbers"])


@cli("nir-tau-string")
def _(w):
    p = w.nir("taustr.nir", replace_ds("node/nodes/lif0/tau", "abc"))
    return Case(["inspect", p], ["taustr.nir", "'lif0'", "'tau'", "not numbers"])


@cli("nir-type-not-a-string")
def _(w):
    p = w.nir("t.nir", replace_ds("node/nodes/fc0/type", 7))
    return Case(["inspect", p], ["t.nir", "'fc0'", "type"])


@cli("nir-unknown-node-type")
def _(w):
    p = w.nir("t.nir", replace_ds("node/nodes/lif0/type", b"Izhikevich"))
    return Case(["inspect", p], ["t.nir", "'lif0'", "'Izhikevich'"])


@cli("nir-node-without-type")
def _(w):
    p = w.nir("t.nir", lambda f: f["node/nodes/lif0"].__delitem__("type"))
    return Case(["inspect", p], ["t.nir", "'lif0'", "'type'"])


@cli("nir-not-hdf5")
def _(w):
    return Case(["inspect", w.text("junk.nir", b"not an hdf5 file at all")], ["junk.nir", "unreadable"])


@cli("nir-truncated")
def _(w):
    p = w.text("cut.nir", w.good.nir.read_bytes()[:900])
    return Case(["inspect", p], ["cut.nir", "truncated"])


@cli("nir-missing-file")
def _(w):
    return Case(["inspect", w.tmp / "nope.nir"], ["nope.nir", "no such NIR file"])


@cli("nir-path-is-a-directory")
def _(w):
    d = w.tmp / "adir.nir"
    d.mkdir()
    return Case(["inspect", d], ["adir.nir", "is a directory"])


@cli("nir-no-node-group")
def _(w):
    p = w.tmp / "empty.nir"
    with h5py.File(p, "w") as f:
        f["version"] = "0.0.1"
    return Case(["inspect", p], ["empty.nir", "'node'"])


@cli("nir-huge-dataset")
def _(w):
    def huge(f):
        del f["node/nodes/fc1/weight"]
        f["node/nodes/fc1"].create_dataset("weight", shape=(200_000, 200_000), dtype="f4", chunks=(64, 64),
                                           compression="gzip")
    p = w.nir("huge.nir", huge)
    return Case(["inspect", p], ["huge.nir", "fc1", "weight", "40,000,000,000"])


@cli("nir-edges-not-strings")
def _(w):
    p = w.nir("e.nir", replace_ds("node/edges", np.arange(14).reshape(7, 2)))
    return Case(["inspect", p], ["e.nir", "edges"])


@cli("nir-edge-to-unknown-node")
def _(w):
    edges = np.array([[b"input", b"fc0"], [b"fc0", b"lif0"], [b"lif0", b"fc1"], [b"fc1", b"lif1"],
                      [b"lif1", b"fc2"], [b"fc2", b"ghost"], [b"li2", b"output"]], dtype=object)
    p = w.nir("e.nir", replace_ds("node/edges", edges.astype("S")))
    return Case(["inspect", p], ["e.nir", "'ghost'"])


@cli("nir-input-shape-zero")
def _(w):
    p = w.nir("s.nir", replace_ds("node/nodes/input/shape", np.array([0])))
    return Case(["inspect", p], ["s.nir", "'input'", "shape"])


@cli("nir-weight-nan")
def _(w):
    def fn(f):
        a = f["node/nodes/fc1/weight"][()]
        a[3, 5] = np.nan
        replace_ds("node/nodes/fc1/weight", a)(f)
    return Case(["inspect", w.nir("nan.nir", fn)], ["nan.nir", "'fc1'", "'weight'", "nan"])


@cli("nir-tau-zero")
def _(w):
    p = w.nir("t0.nir", replace_ds("node/nodes/lif0/tau", np.zeros(64)))
    return Case(["inspect", p], ["t0.nir", "'lif0'", "'tau'", "0"])


@cli("nir-tau-negative")
def _(w):
    p = w.nir("tn.nir", replace_ds("node/nodes/lif1/tau", np.full(64, -0.01)))
    return Case(["inspect", p], ["tn.nir", "'lif1'", "tau", "-0.01"])


@cli("nir-readout-tau-zero")
def _(w):
    p = w.nir("t0.nir", replace_ds("node/nodes/li2/tau", np.zeros(2)))
    return Case(["inspect", p], ["t0.nir", "'li2'", "'tau'", "0"])


@cli("nir-threshold-zero")
def _(w):
    p = w.nir("v.nir", replace_ds("node/nodes/lif0/v_threshold", np.zeros(64)))
    return Case(["inspect", p], ["v.nir", "'lif0'", "v_threshold", "0"])


@cli("nir-param-shape-mismatch")
def _(w):
    p = w.nir("s.nir", replace_ds("node/nodes/lif0/r", np.ones(3)))
    return Case(["inspect", p], ["s.nir", "'lif0'"])


@cli("nir-weight-shape-mismatch")
def _(w):
    p = w.nir("s.nir", replace_ds("node/nodes/fc1/weight", np.ones((64, 5), np.float32)))
    return Case(["inspect", p], ["s.nir", "fc1", "type mismatch"])


@cli("nir-v-reset-nonzero")
def _(w):
    p = w.nir("r.nir", replace_ds("node/nodes/lif0/v_reset", np.full(64, 0.5)))
    return Case(["inspect", p], ["r.nir", "'lif0'", "v_reset=0.5"])


# ---------------------------------------------------------------- spikeloop metadata

@cli("meta-not-json")
def _(w):
    return Case(["inspect", set_meta(w.nir("m.nir"), raw="{not json")], ["m.nir", "'spikeloop' metadata"])


@cli("meta-list-shaped")
def _(w):
    return Case(["inspect", set_meta(w.nir("m.nir"), raw="[1, 2, 3]")], ["m.nir", "'spikeloop' metadata", "list"])


@cli("meta-deeply-nested-json")
def _(w):
    return Case(["inspect", set_meta(w.nir("m.nir"), raw="[" * 100_000 + "]" * 100_000)],
                ["m.nir", "'spikeloop' metadata"])


@cli("meta-missing-dt")
def _(w):
    return Case(["inspect", w.meta("nodt.nir", dt=None)], ["nodt.nir", "'dt'"])


@cli("meta-dt-negative")
def _(w):
    return Case(["inspect", w.meta("m.nir", dt=-0.001)], ["m.nir", "dt", "-0.001"])


@cli("meta-dt-string")
def _(w):
    return Case(["inspect", w.meta("m.nir", dt="fast")], ["m.nir", "dt", "'fast'"])


@cli("meta-dt-bool")
def _(w):
    return Case(["inspect", w.meta("m.nir", dt=True)], ["m.nir", "dt", "True"])


@cli("meta-plain-dt-string")
def _(w):
    def fn(f):
        del f["node/metadata/spikeloop"]
        replace_ds("node/metadata/dt", "soon")(f)
    return Case(["inspect", w.nir("m.nir", fn)], ["m.nir", "dt", "soon"])


@cli("meta-T-zero")
def _(w):
    return Case(["inspect", w.meta("m.nir", T=0)], ["m.nir", "T", "0"])


@cli("meta-T-negative")
def _(w):
    return Case(["inspect", w.meta("m.nir", T=-3)], ["m.nir", "T", "-3"])


@cli("meta-T-fraction")
def _(w):
    return Case(["inspect", w.meta("m.nir", T=8.5)], ["m.nir", "T", "8.5"])


@cli("meta-T-huge")
def _(w):
    return Case(["inspect", w.meta("m.nir", T=10 ** 9)], ["m.nir", "T", "1000000000", "10000"])


@cli("meta-reset-unknown")
def _(w):
    return Case(["inspect", w.meta("m.nir", reset="banana")], ["m.nir", "reset", "'banana'"])


@cli("meta-format-unknown")
def _(w):
    return Case(["inspect", w.meta("m.nir", format=2)], ["m.nir", "format"])


def _encoding(w, name, **changes):
    enc = dict(meta_body(w.good.nir)["encoding"], **changes)
    return w.meta(name, encoding=enc)


@cli("meta-encoding-std-zero")
def _(w):
    return Case(["inspect", _encoding(w, "e.nir", std=[1.0, 0.0, 1.0, 1.0])], ["e.nir", "std", "0"])


@cli("meta-encoding-std-negative")
def _(w):
    return Case(["inspect", _encoding(w, "e.nir", std=[1.0, -2.0, 1.0, 1.0])], ["e.nir", "std", "-2"])


@cli("meta-encoding-mean-nan")
def _(w):
    return Case(["inspect", _encoding(w, "e.nir", mean=[0.0, float("nan"), 0.0, 0.0])], ["e.nir", "mean", "nan"])


@cli("meta-encoding-bits-one")
def _(w):
    return Case(["inspect", _encoding(w, "e.nir", bits=1)], ["e.nir", "bits", "1"])


@cli("meta-encoding-bits-huge")
def _(w):
    return Case(["inspect", _encoding(w, "e.nir", bits=99)], ["e.nir", "bits", "99"])


@cli("meta-encoding-clip-zero")
def _(w):
    return Case(["inspect", _encoding(w, "e.nir", clip=0)], ["e.nir", "clip", "0"])


@cli("meta-encoding-lengths-differ")
def _(w):
    return Case(["inspect", _encoding(w, "e.nir", std=[1.0, 1.0])], ["e.nir", "mean", "std"])


@cli("meta-encoding-size-not-input")
def _(w):
    enc = _encoding(w, "e.nir", mean=[0.0] * 3, std=[1.0] * 3)
    return Case(["inspect", enc], ["e.nir", "encoding", "3", "4"])


@cli("meta-encoding-not-a-table")
def _(w):
    return Case(["inspect", w.meta("e.nir", encoding="graded")], ["e.nir", "encoding"])


@cli("meta-decoding-unknown-kind")
def _(w):
    return Case(["inspect", w.meta("d.nir", decoding={"kind": "vibes"})], ["d.nir", "decoding", "'vibes'"])


@cli("meta-env-id-not-a-string")
def _(w):
    p = w.meta("env.nir", env_id=["CartPole-v1"])
    return Case(["run", p, "--quiet", "--out", w.tmp / "r"], ["env.nir", "env_id"], lava=True, before_work=True)


# ============================================================================ run

def _run(w, *extra, policy=None, out=True):
    argv = ["run", policy or w.good.nir, "--quiet", *extra]
    return argv + (["--out", w.tmp / "r"] if out else [])


@cli("run-episodes-zero")
def _(w):
    return Case(_run(w, "--episodes", "0"), ["--episodes", "0"], lava=True, before_work=True)


@cli("run-episodes-negative")
def _(w):
    return Case(_run(w, "--episodes", "-4"), ["--episodes", "-4"], lava=True, before_work=True)


@cli("run-eval-seed-negative")
def _(w):
    return Case(_run(w, "--eval-seed", "-1"), ["--eval-seed", "-1"], lava=True, before_work=True)


@cli("run-env-observation-size-differs")
def _(w):
    return Case(_run(w, "--env", "MountainCar-v0"), ["MountainCar-v0", "2", "4", "observation"], lava=True,
                before_work=True)


@cli("run-env-action-count-differs")
def _(w):
    return Case(_run(w, "--env", "Acrobot-v1"), ["Acrobot-v1", "6", "4"], lava=True, before_work=True)


@cli("run-env-actions-differ-same-obs")
def _(w):
    # a 4-input, 2-action graph against an environment of 4 observations and another action count
    p = w.nir("a3.nir", replace_ds("node/nodes/fc2/weight", np.ones((3, 64), np.float32)))
    edit_h5(p, replace_ds("node/nodes/li2/tau", np.full(3, 0.008)))
    edit_h5(p, replace_ds("node/nodes/li2/r", np.full(3, 8.0)))
    edit_h5(p, replace_ds("node/nodes/li2/v_leak", np.zeros(3)))
    edit_h5(p, replace_ds("node/nodes/output/shape", np.array([3])))
    return Case(_run(w, policy=p), ["a3.nir", "CartPole-v1", "2 actions", "3"], lava=True, before_work=True)


@cli("run-env-unknown")
def _(w):
    return Case(_run(w, "--env", "NoSuchEnv-v0"), ["'NoSuchEnv-v0'", "unknown environment"], lava=True,
                before_work=True)


@cli("run-env-module-prefix-flag")
def _(w):
    return Case(_run(w, "--env", "this:CartPole-v1"), ["'this:CartPole-v1'", "never imported"], lava=True,
                before_work=True, check=_no_zen)


def _no_zen(out, err):
    assert "Zen of Python" not in out + err, "a module named by an environment id was imported"


@cli("run-env-module-prefix-in-graph")
def _(w):
    sys.modules.pop("this", None)
    p = w.meta("evil.nir", env_id="this:CartPole-v1")

    def check(out, err):
        _no_zen(out, err)
        assert "this" not in sys.modules, "the module 'this' was imported"
    return Case(_run(w, policy=p), ["'this:CartPole-v1'", "never imported"], lava=True, before_work=True,
                check=check)


@cli("run-env-box2d-missing")
def _(w):
    import importlib.util

    if importlib.util.find_spec("Box2D") is not None:
        pytest.skip("Box2D is installed here")
    return Case(_run(w, "--env", "LunarLander-v3"), ["LunarLander-v3", 'pip install "gymnasium[box2d]"'],
                lava=True, before_work=True)


@cli("run-env-continuous-actions")
def _(w):
    return Case(_run(w, "--env", "Pendulum-v1"), ["Pendulum-v1", "Discrete"], lava=True, before_work=True)


@cli("run-env-not-a-box")
def _(w):
    return Case(_run(w, "--env", "FrozenLake-v1"), ["FrozenLake-v1", "Box"], lava=True, before_work=True)


@cli("run-graph-names-no-env")
def _(w):
    return Case(_run(w, policy=w.meta("noenv.nir", env_id=None)), ["noenv.nir", "--env"], lava=True,
                before_work=True)


@cli("run-profile-unknown")
def _(w):
    return Case(_run(w, "--profile", "loihi,nosuchchip"), ["'nosuchchip'"], lava=True, before_work=True)


@cli("run-profile-bad-file")
def _(w):
    p = w.profile("bad.toml", profile_text().replace('unit = "J"', 'unit = "kJ"', 1))
    return Case(_run(w, "--profile", p), ["bad.toml", "[energy.synop]", "'kJ'"], lava=True, before_work=True)


@cli("run-profile-conventional-as-target")
def _(w):
    return Case(_run(w, "--profile", "cpu-45nm"), ["cpu-45nm", "conventional"], lava=True, before_work=True)


@cli("run-baseline-neuromorphic")
def _(w):
    return Case(_run(w, "--baseline", "loihi"), ["--baseline", "loihi", "neuromorphic"], lava=True,
                before_work=True)


@cli("run-baseline-unknown")
def _(w):
    return Case(_run(w, "--baseline", "abacus"), ["'abacus'"], lava=True, before_work=True)


@cli("run-out-is-a-file")
def _(w):
    f = w.text("taken", "a file, not a folder")
    return Case(_run(w, out=False) + ["--out", f], ["taken", "not a directory"], lava=True, before_work=True)


@cli("run-out-under-a-file")
def _(w):
    f = w.text("taken", "a file")
    return Case(_run(w, out=False) + ["--out", f / "sub"], ["taken", "not a directory"], lava=True,
                before_work=True)


@cli("run-out-read-only")
def _(w):
    ro = readonly_dir(w.tmp)
    return Case(_run(w, out=False) + ["--out", ro / "newrun"], [str(ro), "cannot write"], lava=True,
                before_work=True)


@cli("run-policy-folder-without-nir")
def _(w):
    d = w.tmp / "emptyrun"
    d.mkdir()
    return Case(_run(w, policy=d), ["emptyrun/policy.nir", "no such NIR file"], lava=True, before_work=True)


@cli("run-T-huge")
def _(w):
    return Case(_run(w, policy=w.meta("long.nir", T=10 ** 9)), ["long.nir", "T", "1000000000", "10000"],
                lava=True, before_work=True)


@cli("run-graph-without-encoding")
def _(w):
    return Case(_run(w, policy=w.meta("noenc.nir", encoding=None)), ["noenc.nir", "encoding"], lava=True,
                before_work=True)


@cli("run-decoding-needs-spikes")
def _(w):
    p = w.meta("dec.nir", decoding={"kind": "spike_count", "step": "last", "action": "argmax"})
    return Case(_run(w, policy=p), ["dec.nir", "spike_count", "'li2'"], lava=True, before_work=True)


@cli("run-corrupt-checkpoint-beside-graph")
def _(w):
    d = w.tmp / "pol"
    d.mkdir()
    shutil.copy(w.good.nir, d / "policy.nir")
    (d / "policy.safetensors").write_bytes(b"\x00" * 64)
    return Case(_run(w, policy=d), ["pol/policy.safetensors"], lava=True, before_work=True)


@cli("run-checkpoint-of-another-network")
def _(w):
    d = w.tmp / "pol"
    d.mkdir()
    shutil.copy(w.good.nir, d / "policy.nir")
    shutil.copy(w.good.tiny_ckpt, d / "policy.safetensors")
    return Case(_run(w, policy=d), ["pol/policy.safetensors", "pol/policy.nir"], lava=True, before_work=True)


@cli("run-failed-into-existing-run-folder")
def _(w):
    run = w.copy(w.good.run, "oldrun")  # holds the trained policy's policy.nir and report.json
    argv = ["run", w.good.tiny_nir, "--quiet", "--out", run, "--baseline", "loihi"]
    return Case(argv, ["--baseline", "loihi"], lava=True, before_work=True)


@cli("run-failed-into-new-run-folder")
def _(w):
    return Case(["run", w.good.tiny_nir, "--quiet", "--out", w.tmp / "new" / "run", "--profile", "nochip"],
                ["'nochip'"], lava=True, before_work=True)


@cli("run-quantization-fails")
def _(w):
    p = w.nir("q.nir", replace_ds("node/nodes/fc1/weight", np.full((64, 64), 1e-12, np.float32)))
    return Case(_run(w, policy=p), ["q.nir", "'lif1'", "weight exponent"], lava=True, before_work=True)


@cli("run-recurrent-graph")
def _(w):
    def rec(f):
        edges = [tuple(e) for e in f["node/edges"][()]] + [(b"lif1", b"rec")]
        edges.append((b"rec", b"lif1"))
        g = f["node/nodes"].create_group("rec")
        g["type"] = "Linear"
        g["weight"] = np.eye(64, dtype=np.float32) * 0.1
        replace_ds("node/edges", np.array(edges, dtype="S"))(f)
    return Case(_run(w, "--mapping", "per-node", policy=w.nir("rec.nir", rec)),
                ["rec.nir", "across timesteps", "lava-per-node cannot clear", "--memory stream"], lava=True,
                before_work=True)


# ============================================================================ energy

def _energy_run(w, report: str | bytes | None = None, nir_path: bool = True) -> Path:
    run = w.tmp / "run"
    run.mkdir()
    if nir_path:
        shutil.copy(w.good.nir, run / "policy.nir")
    if report is not None:
        (run / "report.json").write_bytes(report if isinstance(report, bytes) else report.encode())
    return run


def _report(w, **changes) -> str:
    r = json.loads((w.good.run / "report.json").read_text())
    for k, v in changes.items():
        if v is None:
            r.pop(k, None)
        else:
            r[k] = v
    return json.dumps(r)


@cli("energy-no-report")
def _(w):
    return Case(["energy", _energy_run(w)], ["run/report.json", "not found"])


@cli("energy-report-corrupt")
def _(w):
    return Case(["energy", _energy_run(w, '{"counts_per_decision": ')], ["run/report.json", "not valid JSON"])


@cli("energy-report-list-shaped")
def _(w):
    return Case(["energy", _energy_run(w, "[1, 2]")], ["run/report.json", "list"])


@cli("energy-report-not-utf8")
def _(w):
    return Case(["energy", _energy_run(w, b"\xff\xfe{}")], ["run/report.json", "UTF-8"])


@cli("energy-report-without-counts")
def _(w):
    return Case(["energy", _energy_run(w, _report(w, counts_per_decision=None))],
                ["run/report.json", "counts_per_decision"])


@cli("energy-counts-of-another-graph")
def _(w):
    c = json.loads((w.good.run / "report.json").read_text())["counts_per_decision"]
    c["synops"] = {"conv9": 1.0}
    return Case(["energy", _energy_run(w, _report(w, counts_per_decision=c))], ["run/report.json", "'conv9'"])


@cli("energy-counts-negative")
def _(w):
    c = json.loads((w.good.run / "report.json").read_text())["counts_per_decision"]
    c["spikes"]["lif0"] = -5
    return Case(["energy", _energy_run(w, _report(w, counts_per_decision=c))],
                ["run/report.json", "spikes", "lif0", "-5"])


@cli("energy-counts-strings")
def _(w):
    c = json.loads((w.good.run / "report.json").read_text())["counts_per_decision"]
    c["steps"] = "eleven"
    return Case(["energy", _energy_run(w, _report(w, counts_per_decision=c))],
                ["run/report.json", "steps", "'eleven'"])


@cli("energy-report-lacks-policy")
def _(w):
    return Case(["energy", _energy_run(w, _report(w, policy=None))], ["run/report.json", "'policy'"])


@cli("energy-no-policy-nir")
def _(w):
    return Case(["energy", _energy_run(w, _report(w), nir_path=False)], ["run/policy.nir", "no such NIR file"])


@cli("energy-run-is-a-file")
def _(w):
    return Case(["energy", w.text("notarun", "x")], ["notarun", "not a run folder"])


@cli("energy-profile-bad-file")
def _(w):
    p = w.profile("bad.toml", profile_text() + "\n[energy.synop2]\nvalue = 1\n")
    return Case(["energy", _energy_run(w, _report(w)), "--profile", p], ["bad.toml", "synop2"])


@cli("energy-baseline-neuromorphic")
def _(w):
    return Case(["energy", _energy_run(w, _report(w)), "--baseline", "speck"], ["--baseline", "speck",
                                                                                  "neuromorphic"])


@cli("energy-profile-conventional")
def _(w):
    return Case(["energy", _energy_run(w, _report(w)), "--profile", "cpu-45nm"], ["cpu-45nm", "conventional"])


@cli("energy-raster-seed-negative")
def _(w):
    return Case(["energy", _energy_run(w, _report(w)), "--raster-seed", "-3"], ["--raster-seed", "-3"])


@cli("energy-run-read-only")
def _(w):
    ro = readonly_dir(w.tmp)
    if ro.parent != w.tmp:
        pytest.skip("needs a read-only run folder of its own")
    shutil.copy(w.good.nir, ro.parent / "x.nir")
    ro.chmod(0o755)
    shutil.copy(w.good.nir, ro / "policy.nir")
    (ro / "report.json").write_text(_report(w))
    ro.chmod(0o555)
    return Case(["energy", ro], [str(ro), "cannot write"])


# ============================================================================ profiles (fit)

@cli("profile-not-utf8")
def _(w):
    p = w.profile("latin.toml", profile_text().replace("Davies", "D\xe4vies").encode("latin-1"))
    return Case(["fit", w.good.nir, "--profile", p], ["latin.toml", "UTF-8"])


@cli("profile-reference-wrong-type")
def _(w):
    return Case(["fit", w.good.nir, "--profile", w.profile("r.toml", 'reference = [1, 2]\n' + profile_text())],
                ["r.toml", "[reference]", "table"])


@cli("profile-reference-entry-not-a-table")
def _(w):
    return Case(["fit", w.good.nir, "--profile",
                 w.profile("r.toml", profile_text() + '\n[reference]\nkws = "fast"\n')],
                ["r.toml", "[reference.kws]", "table"])


@cli("profile-reference-value-string")
def _(w):
    text = profile_text() + '\n[reference.kws]\nvalue = "lots"\nunit = "J"\nsource = "x"\nconfidence = "vendor"\n'
    return Case(["fit", w.good.nir, "--profile", w.profile("r.toml", text)], ["r.toml", "[reference.kws]", "'lots'"])


@cli("profile-toml-syntax")
def _(w):
    return Case(["fit", w.good.nir, "--profile", w.profile("s.toml", "[profile\nname = ")], ["s.toml", "TOML"])


@cli("profile-missing-file")
def _(w):
    return Case(["fit", w.good.nir, "--profile", w.tmp / "gone.toml"], ["gone.toml", "not found"])


@cli("profile-is-a-directory")
def _(w):
    (w.tmp / "dir.toml").mkdir()
    return Case(["fit", w.good.nir, "--profile", w.tmp / "dir.toml"], ["dir.toml"])


@cli("profile-negative-energy")
def _(w):
    p = w.profile("n.toml", profile_text().replace("value = 23.6e-12", "value = -23.6e-12"))
    return Case(["fit", w.good.nir, "--profile", p], ["n.toml", "[energy.synop]", "-2.36e-11"])


@cli("profile-limit-fraction")
def _(w):
    p = w.profile("c.toml", profile_text().replace("value = 128\n", "value = 12.5\n", 1))
    return Case(["fit", w.good.nir, "--profile", p], ["c.toml", "[limits.cores]", "12.5"])


@cli("profile-unknown-section")
def _(w):
    return Case(["fit", w.good.nir, "--profile", w.profile("u.toml", profile_text() + "\n[cooling]\nfan = 1\n")],
                ["u.toml", "cooling"])


@cli("profile-kind-unknown")
def _(w):
    p = w.profile("k.toml", profile_text().replace('kind = "neuromorphic"', 'kind = "quantum"'))
    return Case(["fit", w.good.nir, "--profile", p], ["k.toml", "'quantum'"])


@cli("profile-name-wrong-type")
def _(w):
    p = w.profile("k.toml", profile_text().replace('name = "loihi"', "name = 42"))
    return Case(["fit", w.good.nir, "--profile", p], ["k.toml", "'name'"])


@cli("profile-name-path-traversal")
def _(w):
    return Case(["fit", w.good.nir, "--profile", "../hwprofiles/loihi"], ["'../hwprofiles/loihi'"])


@cli("profile-unknown-name")
def _(w):
    return Case(["fit", w.good.nir, "--profile", "loihi9"], ["'loihi9'", "built-in profiles"])


@cli("profile-empty-list")
def _(w):
    return Case(["fit", w.good.nir, "--profile", " , "], ["--profile"])


# ============================================================================ fit / inspect options

@cli("fit-missing-graph")
def _(w):
    return Case(["fit", w.tmp / "none.nir"], ["none.nir", "no such NIR file"])


@cli("fit-tau-zero")
def _(w):
    return Case(["fit", w.nir("t0.nir", replace_ds("node/nodes/lif0/tau", np.zeros(64)))],
                ["t0.nir", "'lif0'", "'tau'"])


@cli("fit-dt-nan")
def _(w):
    return Case(["fit", w.good.nir, "--dt", "nan"], ["--dt", "nan"])


@cli("fit-dt-negative")
def _(w):
    return Case(["fit", w.good.nir, "--dt=-1e-3"], ["--dt", "-1e-3"])


@cli("inspect-dt-zero")
def _(w):
    return Case(["inspect", w.good.nir, "--dt", "0"], ["--dt", "0"])


@cli("inspect-dt-inf")
def _(w):
    return Case(["inspect", w.good.nir, "--dt", "inf"], ["--dt", "inf"])


@cli("inspect-dt-word")
def _(w):
    return Case(["inspect", w.good.nir, "--dt", "soon"], ["--dt", "'soon'"])


@cli("inspect-peer-reset-without-peer")
def _(w):
    return Case(["inspect", w.good.nir, "--peer", "none", "--peer-reset", "zero"], ["--peer-reset"])


# ============================================================================ annotate

def _peer_nir(w) -> Path:
    """A plain NIR graph without spikeloop metadata (what another framework writes)."""
    import nir

    g = nir.read(w.good.tiny_nir)
    return w.copy_graph(nir.NIRGraph(nodes=g.nodes, edges=g.edges, metadata={}), "peer.nir")


@cli("annotate-env-module-id")
def _(w):
    return Case(["annotate", w.good.tiny_nir, "--out", w.tmp / "a.nir", "--env", "this:CartPole-v1"],
                ["'this:CartPole-v1'", "never imported"])


@cli("annotate-env-wrong-size")
def _(w):
    return Case(["annotate", w.good.tiny_nir, "--out", w.tmp / "a.nir", "--env", "Acrobot-v1", "--encoding",
                 "fit"], ["Acrobot-v1", "observations of 6 values", "takes 4"], before_work=True)


@cli("annotate-fit-without-env")
def _(w):
    return Case(["annotate", _peer_nir(w), "--out", w.tmp / "a.nir", "--dt", "1e-3", "--encoding", "fit"],
                ["--encoding fit", "--env"])


@cli("annotate-mean-without-std")
def _(w):
    return Case(["annotate", w.good.tiny_nir, "--out", w.tmp / "a.nir", "--obs-mean", "0,0,0,0"],
                ["--obs-mean", "--obs-std"])


@cli("annotate-std-zero")
def _(w):
    return Case(["annotate", w.good.tiny_nir, "--out", w.tmp / "a.nir", "--obs-mean", "0,0,0,0",
                 "--obs-std", "1,0,1,1"], ["std[1]", "0"])


@cli("annotate-fit-and-explicit")
def _(w):
    return Case(["annotate", w.good.tiny_nir, "--out", w.tmp / "a.nir", "--obs-mean", "0,0,0,0",
                 "--obs-std", "1,1,1,1", "--encoding", "fit", "--env", "CartPole-v1"], ["--encoding fit", "not both"])


@cli("annotate-bits-out-of-range")
def _(w):
    return Case(["annotate", w.good.tiny_nir, "--out", w.tmp / "a.nir", "--encoding", "fit", "--env",
                 "CartPole-v1", "--bits", "40"], ["bits", "40"], before_work=True)


@cli("annotate-T-zero")
def _(w):
    return Case(["annotate", w.good.tiny_nir, "--out", w.tmp / "a.nir", "--T", "0"], ["--T", "0"])


@cli("annotate-peer-none-no-dt")
def _(w):
    return Case(["annotate", _peer_nir(w), "--out", w.tmp / "a.nir", "--peer", "none"],
                ["peer.nir", "no time step", "--dt"])


@cli("annotate-spike-count-of-readout")
def _(w):
    return Case(["run", w.good.tiny_nir, "--out", w.tmp / "r", "--decoding", "spike-count", "--quiet"],
                ["spike_count", "non-spiking readout", "--decoding"], before_work=True)


@cli("run-would-replace-its-input")
def _(w):
    run = w.tmp / "r"
    run.mkdir()
    shutil.copy(w.good.tiny_nir, run / "policy.nir")
    return Case(["run", run, "--T", "3", "--quiet"], ["policy.nir", "replace its own input", "--out"],
                before_work=True)


@cli("run-peer-graph-without-encoding")
def _(w):
    return Case(["run", _peer_nir(w), "--out", w.tmp / "r", "--dt", "1e-3", "--T", "4", "--env", "CartPole-v1",
                 "--quiet"], ["no input encoding", "--encoding fit"], before_work=True)


@cli("export-nir-of-a-nir")
def _(w):
    return Case(["export", w.good.tiny_nir, "--out", w.tmp / "x.nir"], ["tiny", "already a NIR graph", "annotate"])


@cli("export-T-for-a-checkpoint")
def _(w):
    return Case(["export", w.good.tiny_ckpt, "--out", w.tmp / "x.nir", "--T", "4"], ["--T", "checkpoint"])


# ============================================================================ simulate

@cli("simulate-input-0d")
def _(w):
    return Case(w.sim(w.good.nir, w.npy("zero_d.npy", np.float64(3.0))), ["zero_d.npy", "0-d"])


@cli("simulate-input-empty")
def _(w):
    return Case(w.sim(w.good.nir, w.npy("empty.npy", np.zeros((0, 4)))), ["empty.npy", "no timesteps"])


@cli("simulate-input-strings")
def _(w):
    return Case(w.sim(w.good.nir, w.npy("str.npy", np.array([["a"] * 4] * 3))), ["str.npy", "numbers"])


@cli("simulate-input-npz-renamed")
def _(w):
    p = w.tmp / "arch.npz"
    np.savez(p, a=np.zeros((3, 4)))
    return Case(w.sim(w.good.nir, w.copy(p, "arch.npy")), ["arch.npy", ".npz"])


@cli("simulate-input-pickled-objects")
def _(w):
    p = w.tmp / "obj.npy"
    np.save(p, np.array([{"a": 1}] * 3, dtype=object), allow_pickle=True)
    return Case(w.sim(w.good.nir, p), ["obj.npy", "pickle"])


@cli("simulate-input-not-npy")
def _(w):
    return Case(w.sim(w.good.nir, w.text("text.npy", "1,2,3,4\n")), ["text.npy", ".npy"])


@cli("simulate-input-missing")
def _(w):
    return Case(w.sim(w.good.nir, w.tmp / "absent.npy"), ["absent.npy"])


@cli("simulate-input-wrong-width")
def _(w):
    return Case(w.sim(w.good.nir, w.npy("w3.npy", np.zeros((5, 3)))), ["w3.npy", "(5, 3)", "4"])


@cli("simulate-input-nan")
def _(w):
    x = np.zeros((5, 4))
    x[2, 1] = np.nan
    return Case(w.sim(w.good.nir, w.npy("nan.npy", x)), ["nan.npy", "NaN"])


@cli("simulate-input-complex")
def _(w):
    return Case(w.sim(w.good.nir, w.npy("c.npy", np.zeros((5, 4), complex))), ["c.npy", "complex"])


@cli("simulate-input-off-grid-fixed")
def _(w):
    return Case(w.sim(w.good.nir, w.npy("g.npy", np.full((5, 4), 0.01234)), "--precision", "fixed"),
                ["g.npy", "payload grid"])


@cli("simulate-input-too-long")
def _(w):
    p = w.tmp / "long.npy"
    a = np.lib.format.open_memmap(p, mode="w+", dtype=np.int8, shape=(2_000_001, 4))
    del a
    return Case(w.sim(w.good.tiny_nir, p), ["long.npy", "2000001", "1000000"])


@cli("simulate-out-is-a-directory")
def _(w):
    d = w.tmp / "outdir"
    d.mkdir()
    return Case(w.sim(w.good.nir, out=d), ["outdir", "is a directory"])


@cli("simulate-out-under-a-file")
def _(w):
    f = w.text("afile", "x")
    return Case(w.sim(w.good.nir, out=f / "o.npz"), ["afile", "not a directory"])


@cli("simulate-out-read-only")
def _(w):
    ro = readonly_dir(w.tmp)
    return Case(w.sim(w.good.nir, out=ro / "o.npz"), [str(ro), "cannot write"])


@cli("simulate-existing-out-kept-on-failure")
def _(w):
    out = w.text("keep.npz", b"previous results")
    return Case(w.sim(w.good.nir, w.npy("w3.npy", np.zeros((5, 3))), out=out), ["w3.npy"])


@cli("simulate-tau-zero-fixed")
def _(w):
    p = w.nir("t0.nir", replace_ds("node/nodes/li2/tau", np.zeros(2)))
    return Case(w.sim(p, None, "--precision", "fixed"), ["t0.nir", "'li2'", "'tau'", "0"])


@cli("simulate-tau-tiny-float")
def _(w):
    p = w.nir("tt.nir", replace_ds("node/nodes/lif0/tau", np.full(64, 1e-9)))
    return Case(w.sim(p), ["tt.nir", "'lif0'", "diverge"])


@cli("simulate-zero-weights-fixed")
def _(w):
    p = w.nir("w0.nir", replace_ds("node/nodes/fc1/weight", np.zeros((64, 64), np.float32)))
    return Case(w.sim(p, None, "--precision", "fixed"), ["w0.nir", "'lif1'", "weight"])


@cli("simulate-lava-fused-open-loop")
def _(w):
    return Case(["simulate", w.good.tiny_nir, "--input", w.good.x, "--backend", "lava-fused", "--out",
                 w.tmp / "o.npz"], ["lava-fused", "closed loop"], lava=True)


@cli("simulate-lava-bad-input")
def _(w):
    return Case(["simulate", w.good.tiny_nir, "--input", w.npy("w5.npy", np.ones((5, 5))), "--backend", "lava",
                 "--out", w.tmp / "o.npz"], ["w5.npy", "(5, 5)"], lava=True)


@cli("simulate-peer-graph-strings")
def _(w):
    # a peer-style graph (no spikeloop metadata) whose r is text: the lenient peer reader must refuse it too
    def fn(f):
        del f["node/metadata/spikeloop"]
        replace_ds("node/nodes/lif0/r", np.array([b"x"] * 64))(f)
    return Case(w.sim(w.nir("peer.nir", fn)), ["peer.nir", "'lif0'", "'r'"])


# ============================================================================ export

@cli("export-dt-nan")
def _(w):
    return Case(["export", w.good.ckpt, "--dt", "nan", "--out", w.tmp / "p.nir"], ["--dt", "nan"])


@cli("export-dt-zero")
def _(w):
    return Case(["export", w.good.ckpt, "--dt", "0", "--out", w.tmp / "p.nir"], ["--dt", "0"])


@cli("export-missing-checkpoint")
def _(w):
    return Case(["export", w.tmp / "nope.safetensors"], ["nope.safetensors", "not found"])


@cli("export-run-folder-without-checkpoint")
def _(w):
    (w.tmp / "run").mkdir()
    return Case(["export", w.tmp / "run"], ["run/policy.safetensors", "not found"])


@cli("export-garbage-checkpoint")
def _(w):
    return Case(["export", w.text("g.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{garbage"),
                 "--out", w.tmp / "p.nir"], ["g.safetensors"])


@cli("export-plain-safetensors")
def _(w):
    p = w.tmp / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(p))
    return Case(["export", p, "--out", w.tmp / "p.nir"], ["plain.safetensors", "'spikeloop' metadata"])


@cli("export-header-not-json")
def _(w):
    return Case(["export", write_ckpt(w.tmp / "h.safetensors", src=w.good.ckpt2, raw="{oops"), "--out", w.tmp / "p.nir"],
                ["h.safetensors", "corrupt"])


@cli("export-header-deeply-nested")
def _(w):
    return Case(["export", write_ckpt(w.tmp / "h.safetensors", src=w.good.ckpt2, raw="[" * 100_000 + "]" * 100_000),
                 "--out", w.tmp / "p.nir"], ["h.safetensors", "corrupt"])


def _rec(w, **changes):
    r = ckpt_record(w.good.ckpt2)
    for k, v in changes.items():
        r[k] = v
    return r


@cli("export-huge-layers-declared")
def _(w):
    r = _rec(w)
    r["network"]["args"]["sizes"] = [4, 100_000, 100_000, 2]
    return Case(["export", write_ckpt(w.tmp / "big.safetensors", src=w.good.ckpt2, record=r), "--out", w.tmp / "p.nir"],
                ["big.safetensors", "10,000,", "50,000,000"])


@cli("export-checkpoint-T-zero")
def _(w):
    return Case(["export", write_ckpt(w.tmp / "t.safetensors", src=w.good.ckpt2, record=_rec(w, T=0)), "--out", w.tmp / "p.nir"],
                ["t.safetensors", "T", "0"])


@cli("export-checkpoint-T-huge")
def _(w):
    return Case(["export", write_ckpt(w.tmp / "t.safetensors", src=w.good.ckpt2, record=_rec(w, T=10 ** 9)), "--out", w.tmp / "p.nir"],
                ["t.safetensors", "T", "1000000000"])


@cli("export-checkpoint-std-zero")
def _(w):
    r = _rec(w)
    r["encoding"]["std"] = [0.0] * 4
    return Case(["export", write_ckpt(w.tmp / "s.safetensors", src=w.good.ckpt2, record=r), "--out", w.tmp / "p.nir"],
                ["s.safetensors", "std", "0"])


@cli("export-checkpoint-unknown-builder")
def _(w):
    r = _rec(w)
    r["network"]["builder"] = "transformer"
    return Case(["export", write_ckpt(w.tmp / "b.safetensors", src=w.good.ckpt2, record=r), "--out", w.tmp / "p.nir"],
                ["b.safetensors", "'transformer'"])


@cli("export-checkpoint-arg-wrong-type")
def _(w):
    r = _rec(w)
    r["network"]["args"]["dv"] = "slow"
    return Case(["export", write_ckpt(w.tmp / "b.safetensors", src=w.good.ckpt2, record=r), "--out", w.tmp / "p.nir"],
                ["b.safetensors", "dv", "'slow'"])


@cli("export-checkpoint-decay-out-of-range")
def _(w):
    r = _rec(w)
    r["network"]["args"]["dv"] = 1.5
    return Case(["export", write_ckpt(w.tmp / "b.safetensors", src=w.good.ckpt2, record=r), "--out", w.tmp / "p.nir"],
                ["b.safetensors", "dv", "1.5"])


@cli("export-checkpoint-tensor-shapes")
def _(w):
    t = load_file(str(w.good.ckpt2))
    t["nodes.fc1.weight"] = torch.zeros(3, 3)
    return Case(["export", write_ckpt(w.tmp / "t.safetensors", src=w.good.ckpt2, tensors=t), "--out", w.tmp / "p.nir"],
                ["t.safetensors", "nodes.fc1.weight"])


@cli("export-checkpoint-nan-weights")
def _(w):
    t = load_file(str(w.good.ckpt2))
    t["nodes.fc1.weight"][0, 0] = float("nan")
    return Case(["export", write_ckpt(w.tmp / "t.safetensors", src=w.good.ckpt2, tensors=t), "--out", w.tmp / "p.nir"],
                ["t.safetensors", "'fc1'", "nan"])


@cli("export-out-is-a-directory")
def _(w):
    (w.tmp / "o").mkdir()
    return Case(["export", w.good.ckpt, "--out", w.tmp / "o"], ["o", "is a directory"])


@cli("export-out-under-a-file")
def _(w):
    f = w.text("f", "x")
    return Case(["export", w.good.ckpt, "--out", f / "p.nir"], ["f", "not a directory"])


@cli("export-out-read-only")
def _(w):
    ro = readonly_dir(w.tmp)
    return Case(["export", w.good.ckpt, "--out", ro / "p.nir"], [str(ro), "cannot write"])


@cli("export-netx-from-bad-graph")
def _(w):
    p = w.nir("t0.nir", replace_ds("node/nodes/lif0/tau", np.zeros(64)))
    return Case(["export", p, "--format", "netx", "--out", w.tmp / "p.net"], ["t0.nir", "'lif0'", "'tau'"])


# ============================================================================ train

def _train(w, *extra, out=True):
    return ["train", *TINY_TRAIN, *extra] + (["--out", w.tmp / "t"] if out else [])


@cli("train-lr-nan")
def _(w):
    return Case(_train(w, "--lr", "nan"), ["'lr'", "nan"], before_work=True)


@cli("train-lr-negative")
def _(w):
    return Case(_train(w, "--lr", "-1"), ["lr", "-1"], before_work=True)


@cli("train-T-zero")
def _(w):
    return Case(_train(w, "--T", "0"), ["T", "0"], before_work=True)


@cli("train-T-huge")
def _(w):
    return Case(_train(w, "--T", "1000000000"), ["T", "1000000000", "10000"], before_work=True)


@cli("train-hidden-zero")
def _(w):
    return Case(_train(w, "--hidden", "0"), ["hidden", "0"], before_work=True)


@cli("train-hidden-huge")
def _(w):
    return Case(_train(w, "--hidden", "100000", "100000"), ["hidden", "50,000,000"], before_work=True)


@cli("train-env-unknown")
def _(w):
    return Case(_train(w, "--env-id", "NoSuchEnv-v0"), ["'NoSuchEnv-v0'"], before_work=True)


@cli("train-env-module-prefix")
def _(w):
    return Case(_train(w, "--env-id", "this:CartPole-v1"), ["'this:CartPole-v1'", "never imported"],
                before_work=True, check=_no_zen)


@cli("train-env-continuous")
def _(w):
    return Case(_train(w, "--env-id", "Pendulum-v1"), ["Pendulum-v1", "Discrete"], before_work=True)


@cli("train-gamma-above-one")
def _(w):
    return Case(_train(w, "--gamma", "2"), ["gamma", "2"], before_work=True)


@cli("train-batch-size-zero")
def _(w):
    return Case(_train(w, "--batch-size", "0"), ["batch_size", "0"], before_work=True)


@cli("train-input-bits-one")
def _(w):
    return Case(_train(w, "--input-bits", "1"), ["input_bits", "1"], before_work=True)


@cli("train-input-clip-zero")
def _(w):
    return Case(_train(w, "--input-clip", "0"), ["input_clip", "0"], before_work=True)


@cli("train-eps-start-above-one")
def _(w):
    return Case(_train(w, "--eps-start", "2"), ["eps_start", "2"], before_work=True)


@cli("train-norm-steps-zero")
def _(w):
    return Case(_train(w, "--norm-steps", "0"), ["norm_steps", "0"], before_work=True)


@cli("train-dv-hidden-zero")
def _(w):
    return Case(_train(w, "--dv-hidden", "0"), ["dv_hidden", "0"], before_work=True)


@cli("train-vth-negative")
def _(w):
    return Case(_train(w, "--vth", "-1"), ["vth", "-1"], before_work=True)


@cli("train-eval-every-zero")
def _(w):
    return Case(_train(w, "--eval-every", "0"), ["eval_every", "0"], before_work=True)


@cli("train-threads-zero")
def _(w):
    return Case(_train(w, "--threads", "0"), ["threads", "0"], before_work=True)


@cli("train-buffer-smaller-than-batch")
def _(w):
    return Case(_train(w, "--buffer-size", "8", "--batch-size", "64"), ["buffer_size", "8", "64"],
                before_work=True)


@cli("train-agent-unknown")
def _(w):
    return Case(_train(w, "--agent", "ppo9"), ["agent", "'ppo9'"])


@cli("train-config-missing")
def _(w):
    return Case(_train(w, "--config", w.tmp / "none.toml"), ["none.toml"])


@cli("train-config-not-toml")
def _(w):
    return Case(_train(w, "--config", w.text("c.toml", "[dqn\nlr = ")), ["c.toml", "TOML"])


@cli("train-config-not-utf8")
def _(w):
    return Case(_train(w, "--config", w.text("c.toml", b'[agent]\nname = "dqn"\n[dqn]\nenv_id = "\xff"\n')),
                ["c.toml", "TOML"])


@cli("train-config-unknown-key")
def _(w):
    return Case(_train(w, "--config", w.text("c.toml", '[agent]\nname = "dqn"\n[dqn]\nlearning_rate = 1\n')),
                ["learning_rate"])


@cli("train-config-wrong-type")
def _(w):
    return Case(_train(w, "--config", w.text("c.toml", '[agent]\nname = "dqn"\n[dqn]\nlr = "fast"\n')),
                ["'lr'", "'fast'"])


@cli("train-config-no-agent")
def _(w):
    return Case(_train(w, "--config", w.text("c.toml", '[other]\nx = 1\n')), ["c.toml", "[agent]"])


@cli("train-out-is-a-file")
def _(w):
    f = w.text("taken", "x")
    return Case(_train(w, out=False) + ["--out", f], ["taken", "not a directory"], before_work=True)


@cli("train-out-under-a-file")
def _(w):
    f = w.text("taken", "x")
    return Case(_train(w, out=False) + ["--out", f / "run"], ["taken", "not a directory"], before_work=True)


@cli("train-out-read-only")
def _(w):
    ro = readonly_dir(w.tmp)
    return Case(_train(w, out=False) + ["--out", ro / "run"], [str(ro), "cannot write"], before_work=True)


# ============================================================================ demo

def _demo(w, *extra):
    return ["demo", *TINY_TRAIN, "--out", w.tmp / "demo", *extra]


@cli("demo-episodes-zero")
def _(w):
    return Case(_demo(w, "--episodes", "0"), ["--episodes", "0"], lava=True, before_work=True)


@cli("demo-profile-bad-file")
def _(w):
    p = w.profile("bad.toml", profile_text().replace('confidence = "pre-silicon"', 'confidence = "rumour"', 1))
    return Case(_demo(w, "--profile", p), ["bad.toml", "'rumour'"], lava=True, before_work=True)


@cli("demo-baseline-neuromorphic")
def _(w):
    return Case(_demo(w, "--baseline", "xylo"), ["--baseline", "xylo", "neuromorphic"], lava=True,
                before_work=True)


@cli("demo-out-is-a-file")
def _(w):
    f = w.text("taken", "x")
    return Case(["demo", *TINY_TRAIN, "--out", f], ["taken", "not a directory"], lava=True, before_work=True)


@cli("demo-env-module-prefix")
def _(w):
    return Case(_demo(w, "--env-id", "this:CartPole-v1"), ["'this:CartPole-v1'"], lava=True, before_work=True,
                check=_no_zen)


@cli("demo-dt-nan")
def _(w):
    return Case(_demo(w, "--dt", "nan"), ["--dt", "nan"])


@cli("demo-lr-nan")
def _(w):
    return Case(_demo(w, "--lr", "nan"), ["'lr'", "nan"], lava=True, before_work=True)


@cli("demo-profile-missing-file")
def _(w):
    # every input of the demo is checked before training: here the last one, a profile file
    return Case(_demo(w, "--profile", w.tmp / "missing.toml"), ["missing.toml", "not found"], lava=True,
                before_work=True)


# ---------------------------------------------------------------------------- the runner

@pytest.mark.parametrize("name", sorted(CLI))
def test_cli_bad_input(name, tmp_path, good, good_snapshot, capsys):
    work = tmp_path / "case"
    work.mkdir()
    case = CLI[name](W(work, good))
    capsys.readouterr()
    before = snapshot(tmp_path)
    kids, shm = live_children(), shm_segments()
    t0 = time.time()
    code = run_cli(case.argv)
    elapsed = time.time() - t0
    out, err = capsys.readouterr()
    assert code == 2, f"exit status {code}; stderr:\n{err}"
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if re.match(r"spikeloop( [\w-]+)?: error: ", line)]
    assert len(errors) == 1, f"not one error line:\n{err}"
    for s in case.expect:
        assert s in err, f"the message does not name {s!r}:\n{err}"
    if case.check:
        case.check(out, err)
    for p in Path(work).iterdir():  # restore permissions so that the snapshot can read everything
        if p.is_dir() and p.name == "readonly":
            p.chmod(0o755)
    after = snapshot(tmp_path)
    if (tmp_path / "case" / "readonly").exists():
        before = {k: v for k, v in before.items() if not k.startswith("case/readonly")}
        after = {k: v for k, v in after.items() if not k.startswith("case/readonly")}
    assert after == before, f"files changed: {sorted(set(after) ^ set(before)) or 'contents'}"
    assert snapshot(good.root) == good_snapshot, "a shared good artifact changed"
    if case.before_work:
        assert elapsed < BEFORE_WORK_S, f"refused only after {elapsed:.0f} s: validated after the work"
    if case.lava:
        assert live_children() == kids, "a Lava process outlived the command"
        new = shm_segments() - shm
        deadline = time.time() + 5.0  # the resource tracker unlinks a moment after the command
        while new and time.time() < deadline:
            time.sleep(0.05)
            new &= shm_segments()
        assert not new, f"/dev/shm segments outlived the command: {new}"


def test_battery_size():
    """At least 100 distinct bad inputs across the commands and the API."""
    commands = {n.split("-")[0] for n in CLI}
    assert len(CLI) + len(API) >= 100, len(CLI) + len(API)
    assert {"nir", "meta", "run", "energy", "profile", "fit", "inspect", "simulate", "export", "train",
            "demo", "annotate"} <= commands


def test_module_env_id_refused_by_the_console_script(tmp_path):
    """The real entry point, in a fresh interpreter: exit 2, one error, nothing imported or written."""
    p = set_meta(shutil.copy(DATA / "policy.nir", tmp_path / "evil.nir"), env_id="this:CartPole-v1")
    before = snapshot(tmp_path)
    res = subprocess.run([sys.executable, "-m", "spikeloop", "run", str(p), "--quiet", "--episodes", "1"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    assert "Zen of Python" not in res.stdout + res.stderr and "Traceback" not in res.stderr
    assert "'this:CartPole-v1'" in res.stderr and res.stderr.count("error:") == 1
    assert snapshot(tmp_path) == before


# ============================================================================ the Python API

def _graph(T=None, tau=0.01, dt=1e-3, n=4, encoding=True):
    from spikeloop.core.coding import InputEncoding
    from spikeloop.core.metadata import GraphMeta

    meta = GraphMeta(dt_s=dt, T=T, encoding=InputEncoding((0.0,) * 3, (1.0,) * 3) if encoding else None)
    return nir.NIRGraph(nodes={"input": nir.Input(np.array([3])), "fc": nir.Linear(np.ones((n, 3))),
                               "lif": nir.LIF(tau=np.full(n, tau), r=np.ones(n), v_leak=np.zeros(n),
                                              v_threshold=np.ones(n)),
                               "output": nir.Output(np.array([n]))},
                        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")],
                        metadata=meta.to_nir_metadata(), type_check=False)


def _plan():
    from spikeloop.runtime.compiler import plan_from_nir

    return plan_from_nir(_graph(T=4))


def _plan_from(graph, **kw):
    from spikeloop.runtime.compiler import plan_from_nir

    return lambda: plan_from_nir(graph, source="g.nir", **kw)


@api("plan-T-zero")
def _(w):
    return _plan_from(_graph(), T=0), E.NIRValidationError, ["T", "0"]


@api("plan-T-negative")
def _(w):
    return _plan_from(_graph(), T=-2), E.NIRValidationError, ["T", "-2"]


@api("plan-T-huge")
def _(w):
    return _plan_from(_graph(), T=10 ** 9), E.NIRValidationError, ["T", "1000000000", "10000"]


@api("plan-T-string")
def _(w):
    return _plan_from(_graph(), T="8"), E.NIRValidationError, ["T", "'8'"]


@api("plan-metadata-T-zero")
def _(w):
    g = _graph()
    body = json.loads(g.metadata["spikeloop"])
    body["T"] = 0
    g.metadata["spikeloop"] = json.dumps(body)
    return _plan_from(g), E.NIRValidationError, ["g.nir", "T", "0"]


@api("plan-dt-nan")
def _(w):
    return _plan_from(_graph(), dt_s=float("nan")), E.NIRValidationError, ["dt", "nan"]


@api("plan-dt-negative")
def _(w):
    return _plan_from(_graph(), dt_s=-1.0), E.NIRValidationError, ["dt", "-1"]


@api("plan-not-a-graph")
def _(w):
    from spikeloop.runtime.compiler import plan_from_nir

    return lambda: plan_from_nir({"nodes": {}}, source="g.nir"), E.NIRValidationError, ["g.nir", "NIRGraph", "dict"]


@api("plan-tau-zero")
def _(w):
    return _plan_from(_graph(tau=0.0)), E.NIRValidationError, ["g.nir", "'lif'", "'tau'", "0"]


@api("plan-tau-negative")
def _(w):
    return _plan_from(_graph(tau=-0.01)), E.NIRValidationError, ["g.nir", "'lif'", "tau", "-0.01"]


@api("backend-tau-diverges")
def _(w):
    """A time constant far below dt compiles (the peer importer warns), but no backend runs it."""
    from spikeloop.runtime.backends import make_backend
    from spikeloop.runtime.compiler import plan_from_nir

    plan = plan_from_nir(_graph(tau=1e-7), source="g.nir")
    return (lambda: make_backend("emulator", plan, "float")), E.ConfigError, ["'lif'", "dv", "diverge"]


@api("plan-weights-strings")
def _(w):
    g = _graph()
    g.nodes["fc"].weight = np.array([["x"] * 3] * 4)
    return _plan_from(g), E.NIRValidationError, ["g.nir", "'fc'", "'weight'", "numbers"]


@api("plan-conv-too-large-to-unroll")
def _(w):
    from spikeloop.runtime.compiler import plan_from_nir

    g = nir.NIRGraph(nodes={
        "input": nir.Input(np.array([1, 400, 400])),
        "conv": nir.Conv2d(input_shape=np.array([400, 400]), weight=np.ones((2, 1, 3, 3)), stride=1, padding=1,
                           dilation=1, groups=1, bias=np.zeros(2)),
        # two convolutions with no neuron between compose into one map, which is no convolution
        "conv2": nir.Conv2d(input_shape=np.array([400, 400]), weight=np.ones((2, 2, 3, 3)), stride=1, padding=1,
                            dilation=1, groups=1, bias=np.zeros(2)),
        "lif": nir.LIF(tau=np.full((2, 400, 400), 0.01), r=np.ones((2, 400, 400)), v_leak=np.zeros((2, 400, 400)),
                       v_threshold=np.ones((2, 400, 400))),
        "output": nir.Output(np.array([2, 400, 400]))},
        edges=[("input", "conv"), ("conv", "conv2"), ("conv2", "lif"), ("lif", "output")], metadata={"dt": 1e-3},
        type_check=False)
    return lambda: plan_from_nir(g, source="g.nir"), E.NIRValidationError, ["g.nir", "'conv2'", "composed",
                                                                            "unroll", "50,000,000"]


@api("plan-encoding-size-not-input")
def _(w):
    from spikeloop.core.coding import InputEncoding
    from spikeloop.core.metadata import GraphMeta

    g = _graph()
    g.metadata = GraphMeta(dt_s=1e-3, T=4, encoding=InputEncoding((0.0,) * 5, (1.0,) * 5)).to_nir_metadata()
    return _plan_from(g), E.NIRValidationError, ["g.nir", "5", "3"]


@api("read-graph-directory")
def _(w):
    from spikeloop.core.nir_io import read_graph

    return lambda: read_graph(w.tmp), E.NIRValidationError, [str(w.tmp), "is a directory"]


@api("read-graph-not-a-path")
def _(w):
    from spikeloop.core.nir_io import read_graph

    return lambda: read_graph(None), E.NIRValidationError, ["None"]


@api("read-graph-self-reference")
def _(w):
    from spikeloop.core.nir_io import read_graph

    p = w.nir("loop.nir", lambda f: f["node/nodes"].__setitem__("again", f["node"]))
    return lambda: read_graph(p), E.NIRValidationError, ["loop.nir", "contains itself"]


@api("read-graph-metadata-missing-dt")
def _(w):
    from spikeloop.core.nir_io import read_graph

    p = w.meta("nodt.nir", dt=None)
    return lambda: read_graph(p), E.NIRValidationError, ["nodt.nir", "'dt'"]


@api("load-policy-missing")
def _(w):
    from spikeloop.train.checkpoint import load_policy

    return lambda: load_policy(w.tmp / "no.safetensors"), E.CheckpointError, ["no.safetensors", "not found"]


@api("load-policy-directory")
def _(w):
    from spikeloop.train.checkpoint import load_policy

    return lambda: load_policy(w.tmp), E.CheckpointError, [str(w.tmp), "is a directory"]


@api("load-policy-garbage")
def _(w):
    from spikeloop.train.checkpoint import load_policy

    p = w.text("g.safetensors", b"\xff" * 40)
    return lambda: load_policy(p), E.CheckpointError, ["g.safetensors"]


@api("load-policy-huge-layers")
def _(w):
    from spikeloop.train.checkpoint import load_policy

    r = _rec(w)
    r["network"]["args"]["sizes"] = [4, 1_000_000, 1_000_000, 2]
    p = write_ckpt(w.tmp / "big.safetensors", src=w.good.ckpt2, record=r)
    return lambda: load_policy(p), E.CheckpointError, ["big.safetensors", "parameters", "50,000,000"]


@api("load-policy-record-not-object")
def _(w):
    from spikeloop.train.checkpoint import load_policy

    p = write_ckpt(w.tmp / "l.safetensors", src=w.good.ckpt2, raw="[]")
    return lambda: load_policy(p), E.CheckpointError, ["l.safetensors", "list"]


@api("load-policy-provenance-malformed")
def _(w):
    from spikeloop.train.checkpoint import load_policy

    p = write_ckpt(w.tmp / "p.safetensors", src=w.good.ckpt2, record=_rec(w, provenance={"agent": "dqn"}))
    return lambda: load_policy(p), E.CheckpointError, ["p.safetensors", "env_id"]


@api("load-profile-not-utf8")
def _(w):
    from spikeloop.hwprofiles import load_profile

    p = w.profile("latin.toml", profile_text().replace("Davies", "D\xe4vies").encode("latin-1"))
    return lambda: load_profile(p), E.ProfileError, ["latin.toml", "UTF-8"]


@api("load-profile-reference-string")
def _(w):
    from spikeloop.hwprofiles import load_profile

    p = w.profile("r.toml", 'reference = "see paper"\n' + profile_text())
    return lambda: load_profile(p), E.ProfileError, ["r.toml", "[reference]"]


@api("load-profile-not-a-name")
def _(w):
    from spikeloop.hwprofiles import load_profile

    return lambda: load_profile(42), E.ProfileError, ["42"]


@api("parse-profile-constant-bool")
def _(w):
    from spikeloop.hwprofiles.profile import parse_profile

    text = profile_text().replace("value = 128\n", "value = true\n", 1)
    return lambda: parse_profile(text, "p.toml"), E.ProfileError, ["p.toml", "[limits.cores]", "True"]


def _enc(**kw):
    from spikeloop.core.coding import InputEncoding

    args = dict(mean=(0.0, 0.0), std=(1.0, 1.0), clip=4.0, bits=8) | kw
    return lambda: InputEncoding(**args)


@api("encoding-std-zero")
def _(w):
    return _enc(std=(1.0, 0.0)), E.ConfigError, ["std", "0"]


@api("encoding-std-negative")
def _(w):
    return _enc(std=(-1.0, 1.0)), E.ConfigError, ["std", "-1"]


@api("encoding-std-inf")
def _(w):
    return _enc(std=(float("inf"), 1.0)), E.ConfigError, ["std", "inf"]


@api("encoding-mean-nan")
def _(w):
    return _enc(mean=(float("nan"), 0.0)), E.ConfigError, ["mean", "nan"]


@api("encoding-bits-one")
def _(w):
    return _enc(bits=1), E.ConfigError, ["bits", "1"]


@api("encoding-bits-too-many")
def _(w):
    return _enc(bits=33), E.ConfigError, ["bits", "33"]


@api("encoding-bits-fraction")
def _(w):
    return _enc(bits=7.5), E.ConfigError, ["bits", "7.5"]


@api("encoding-clip-zero")
def _(w):
    return _enc(clip=0.0), E.ConfigError, ["clip", "0"]


@api("encoding-clip-nan")
def _(w):
    return _enc(clip=float("nan")), E.ConfigError, ["clip", "nan"]


@api("encoding-lengths-differ")
def _(w):
    return _enc(std=(1.0, 1.0, 1.0)), E.ConfigError, ["mean", "std", "2", "3"]


@api("encoding-empty")
def _(w):
    return _enc(mean=(), std=()), E.ConfigError, ["mean"]


@api("encoding-mean-strings")
def _(w):
    return _enc(mean=("a", "b")), E.ConfigError, ["mean", "'a'"]


@api("encoding-from-dict-missing-key")
def _(w):
    from spikeloop.core.coding import InputEncoding

    return lambda: InputEncoding.from_dict({"mean": [0.0], "std": [1.0]}), E.ConfigError, ["clip"]


@api("encoding-fit-no-observations")
def _(w):
    from spikeloop.core.coding import InputEncoding

    return lambda: InputEncoding.fit(np.zeros((0, 4))), E.ConfigError, ["observations"]


@api("graphmeta-dt-nan")
def _(w):
    from spikeloop.core.metadata import GraphMeta

    return lambda: GraphMeta(dt_s=float("nan")), E.NIRValidationError, ["dt", "nan"]


@api("graphmeta-reset-unknown")
def _(w):
    from spikeloop.core.metadata import GraphMeta

    return lambda: GraphMeta(dt_s=1e-3, reset="sometimes"), E.NIRValidationError, ["reset", "'sometimes'"]


def _simulate(x, backend="emulator", precision="float"):
    from spikeloop.runtime.simulate import simulate

    return lambda: simulate(_plan(), x, backend, precision)


@api("simulate-0d")
def _(w):
    return _simulate(np.float64(1.0)), E.ConfigError, ["input", "shape ()"]


@api("simulate-empty")
def _(w):
    return _simulate(np.zeros((0, 3))), E.ConfigError, ["input", "no timesteps"]


@api("simulate-strings")
def _(w):
    return _simulate(np.array([["a"] * 3])), E.ConfigError, ["input", "numbers"]


@api("simulate-wrong-width")
def _(w):
    return _simulate(np.zeros((4, 5))), E.ConfigError, ["(4, 5)", "3"]


@api("simulate-inf")
def _(w):
    return _simulate(np.full((4, 3), np.inf)), E.ConfigError, ["NaN or inf"]


@api("simulate-unknown-backend")
def _(w):
    return _simulate(np.zeros((4, 3)), backend="loihi-silicon"), E.ConfigError, ["'loihi-silicon'"]


@api("simulate-unknown-precision")
def _(w):
    return _simulate(np.zeros((4, 3)), precision="half"), E.ConfigError, ["'half'"]


@api("simulate-fused-open-loop")
def _(w):
    return _simulate(np.zeros((4, 3)), backend="lava-fused"), E.ConfigError, ["lava-fused", "closed loop"]


@api("quantize-zero-weights")
def _(w):
    from spikeloop.runtime.compiler import plan_from_nir
    from spikeloop.runtime.fixed_point import quantize_plan

    g = _graph(T=4)
    g.nodes["fc"].weight = np.zeros((4, 3))
    plan = plan_from_nir(g)
    return lambda: quantize_plan(plan), E.QuantizationError, ["'lif'", "weight"]


def _export(fn):
    from spikeloop.export.to_nir import export_policy

    return lambda: fn(export_policy)


@api("export-policy-not-a-policy")
def _(w):
    return _export(lambda ex: ex("policy.safetensors", 1e-3)), E.ExportError, ["Policy", "str"]


@api("export-policy-dt-nan")
def _(w):
    return _export(lambda ex: ex(random_policy(sizes=(4, 8, 2))[0], float("nan"))), E.ExportError, ["dt", "nan"]


@api("export-policy-dt-zero")
def _(w):
    return _export(lambda ex: ex(random_policy(sizes=(4, 8, 2))[0], 0.0)), E.ExportError, ["dt", "0"]


@api("export-policy-nan-weights")
def _(w):
    policy = random_policy(sizes=(4, 8, 2))[0]
    with torch.no_grad():
        policy.network.nodes["fc1"].weight[0, 0] = float("inf")
    return _export(lambda ex: ex(policy, 1e-3)), E.ExportError, ["'fc1'", "inf"]


@api("eval-config-episodes-zero")
def _(w):
    from spikeloop.pipeline import EvalConfig

    return lambda: EvalConfig(episodes=0), E.ConfigError, ["episodes", "0"]


@api("eval-config-mapping-unknown")
def _(w):
    from spikeloop.pipeline import EvalConfig

    return lambda: EvalConfig(mapping="diagonal"), E.ConfigError, ["mapping", "'diagonal'"]


@api("make-env-dependency-missing")
def _(w):
    import importlib.util

    from spikeloop.core.envs import make_env

    if importlib.util.find_spec("Box2D") is not None:
        pytest.skip("Box2D is installed here")
    return lambda: make_env("LunarLander-v3"), E.ConfigError, ["LunarLander-v3", 'pip install "gymnasium[box2d]"']


@api("build-network-bad-args")
def _(w):
    from spikeloop.train.networks import build

    return (lambda: build({"builder": "mlp", "args": {"sizes": [4, 8, 2], "vth": "high"}}), E.ConfigError,
            ["vth", "'high'"])


@api("build-network-huge")
def _(w):
    from spikeloop.train.networks import build

    return (lambda: build({"builder": "mlp", "args": {"sizes": [4, 10_000, 10_000, 2]}}), E.ConfigError,
            ["100,", "50,000,000"])


@pytest.mark.parametrize("name", sorted(API))
def test_api_bad_input(name, tmp_path, good):
    work = tmp_path / "case"
    work.mkdir()
    call, exc, expect = API[name](W(work, good))
    with pytest.raises(exc) as info:
        call()
    assert isinstance(info.value, E.SpikeloopError)
    msg = str(info.value)
    for s in expect:
        assert s in msg, f"the message does not name {s!r}: {msg}"
