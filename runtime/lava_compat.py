"""Make lava-nc 0.10.0 (declared for Python <3.11) import on Python 3.11.

Lava is archived. On 3.11 exactly one thing breaks at import: dataclasses in
``lava/magma/compiler/var_model.py`` use instances of the (unhashable) dataclass
``ByteEncoder`` as field defaults, which Python 3.11 rejects as mutable defaults.

Instead of editing site-packages, :func:`install` puts an import hook on
``sys.meta_path`` that compiles that one module from its own source with the
defaults rewritten to ``field(default_factory=ByteEncoder)``. Nothing else in the
module changes, and the hook refuses to load the module if the source no longer
looks the way this shim expects (so a future Lava is not silently mis-patched).

Lava runs its process models in forked children, which inherit the hook.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import re
import sys

_TARGET = "lava.magma.compiler.var_model"
_DEFAULT = re.compile(r"(:\s*ByteEncoder\s*=\s*)ByteEncoder\(\)")
_IMPORT = "from dataclasses import dataclass, InitVar"


class LavaCompatError(ImportError):
    """The installed Lava does not look like the release the shim was written for."""


def patch_var_model_source(source: str) -> str:
    """Return ``var_model.py`` source with its mutable dataclass defaults fixed."""
    if _IMPORT not in source:
        raise LavaCompatError(
            f"{_TARGET}: expected the line '{_IMPORT}'; this Lava is not lava-nc 0.10.0"
        )
    patched, count = _DEFAULT.subn(r"\1field(default_factory=ByteEncoder)", source)
    if count == 0:
        raise LavaCompatError(f"{_TARGET}: no ByteEncoder() defaults found to rewrite")
    return patched.replace(_IMPORT, _IMPORT + ", field", 1)


class _PatchedLoader(importlib.machinery.SourceFileLoader):
    def get_code(self, fullname):
        # Always compile from source: a cached .pyc would be the unpatched module.
        source = self.get_data(self.path).decode("utf-8")
        return compile(patch_var_model_source(source), self.path, "exec", dont_inherit=True)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != _TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.origin is None:
            return None
        spec.loader = _PatchedLoader(fullname, spec.origin)
        return spec


def install() -> None:
    """Install the import hook (idempotent). Must run before Lava is first imported."""
    if any(isinstance(f, _Finder) for f in sys.meta_path):
        return
    if _TARGET in sys.modules:
        raise LavaCompatError(
            f"{_TARGET} was imported before spikeloop's compatibility shim; "
            "import spikeloop.runtime before lava"
        )
    sys.meta_path.insert(0, _Finder())


def check() -> str:
    """Import the Lava pieces spikeloop uses; return the Lava version. Used by `make setup`."""
    install()
    from importlib.metadata import version

    import lava.magma.compiler.compiler  # noqa: F401
    import lava.proc.dense.process  # noqa: F401
    import lava.proc.lif.process  # noqa: F401

    return version("lava-nc")
