"""The Python 3.11 compatibility shim for lava-nc 0.10.0."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap

import pytest

from spikeloop.runtime import lava_compat


def _source(module: str) -> str:
    spec = importlib.util.find_spec(module.rsplit(".", 1)[0])
    import os

    path = os.path.join(spec.submodule_search_locations[0], module.rsplit(".", 1)[1] + ".py")
    with open(path) as f:
        return f.read()


def test_var_model_rewrite_fixes_mutable_defaults():
    src = _source("lava.magma.compiler.var_model")
    patched = lava_compat.patch_source("lava.magma.compiler.var_model", src)
    assert "= ByteEncoder()" in src and "= ByteEncoder()" not in patched
    assert patched.count("field(default_factory=ByteEncoder)") == 8
    assert "from dataclasses import dataclass, InitVar, field\n" in patched


def test_unexpected_source_fails_loudly():
    with pytest.raises(lava_compat.LavaCompatError, match="expected 1 match"):
        lava_compat.patch_source("lava.magma.compiler.var_model", "x = 1\n")


def test_unpatched_lava_really_fails_on_311_and_patched_imports():
    """The shim is needed (plain import fails) and sufficient (import works), in fresh interpreters."""
    plain = subprocess.run([sys.executable, "-c", "import lava.magma.compiler.var_model"],
                           capture_output=True, text=True)
    assert plain.returncode != 0 and "mutable default" in plain.stderr
    code = textwrap.dedent("""
        import multiprocessing as mp, tqdm
        mp.RLock()  # fixes the start method the way tqdm does, before Lava is imported
        from spikeloop.runtime import lava_compat
        print(lava_compat.check())
    """)
    shimmed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert shimmed.returncode == 0, shimmed.stderr
    assert shimmed.stdout.strip() == "0.10.0"


def test_install_after_lava_import_is_refused():
    code = ("import lava.magma.runtime.message_infrastructure.multiprocessing\n"
            "from spikeloop.runtime import lava_compat\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode != 0
    assert "imported before spikeloop's compatibility shim" in r.stderr
