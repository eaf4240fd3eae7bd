"""Make lava-nc 0.10.0 (declared for Python <3.11) import and run on Python 3.11.

Lava is archived. Two things break, and :func:`install` fixes both without editing
site-packages, by an import hook on ``sys.meta_path`` that compiles the affected
modules from their own source with a small, exact rewrite:

1. ``lava/magma/compiler/var_model.py`` uses instances of the (unhashable) dataclass
   ``ByteEncoder`` as field defaults, which Python 3.11 rejects as mutable defaults:
   they become ``field(default_factory=ByteEncoder)``.
2. ``lava/magma/runtime/message_infrastructure/multiprocessing.py`` calls
   ``mp.set_start_method('fork')`` at import, which raises if anything (tqdm's lock,
   for one) already fixed the start method. Lava needs 'fork' and nothing else; the
   call becomes a no-op when 'fork' is already in force and forced otherwise.

3. lava-dl 0.6.0's ``lava/lib/dl/slayer/__init__.py`` imports its object-detection
   subpackage (``obd``), which needs torchvision and OpenCV; netx only needs
   ``slayer.neuron``. The import becomes lazy: ``slayer.obd`` still loads it on first
   access (and fails there, naming the missing module, where they are absent).

Each rewrite must match the expected text, or the import fails with
:class:`LavaCompatError` rather than loading a silently mis-patched Lava. Lava runs
its process models in forked children, which inherit the hook.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import re
import sys
from dataclasses import dataclass


class LavaCompatError(ImportError):
    """The installed Lava does not look like the release the shim was written for."""


@dataclass(frozen=True)
class Rewrite:
    pattern: str
    replacement: str
    count: int  # exact number of matches expected


PATCHES: dict[str, tuple[Rewrite, ...]] = {
    "lava.magma.compiler.var_model": (
        Rewrite(r"from dataclasses import dataclass, InitVar\n",
                "from dataclasses import dataclass, InitVar, field\n", 1),
        Rewrite(r"(:\s*ByteEncoder\s*=\s*)ByteEncoder\(\)", r"\1field(default_factory=ByteEncoder)", 8),
    ),
    "lava.magma.runtime.message_infrastructure.multiprocessing": (
        Rewrite(r"\n    mp\.set_start_method\('fork'\)\n",
                "\n    if mp.get_start_method(allow_none=True) != 'fork':\n"
                "        mp.set_start_method('fork', force=True)\n", 1),
    ),
    "lava.lib.dl.slayer": (
        Rewrite(r"\nfrom \. import object_detection as obd\n",
                "\n\n\ndef __getattr__(name):  # spikeloop shim: obd needs torchvision and OpenCV\n"
                "    if name == 'obd':\n"
                "        from . import object_detection\n"
                "        return object_detection\n"
                "    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')\n", 1),
    ),
}

# The release each patched module belongs to, for the error message.
RELEASE = {"lava.lib.dl.slayer": "lava-dl 0.6.0"}


def patch_source(module: str, source: str) -> str:
    """Apply the rewrites for ``module`` to its ``source``; raise if any does not match."""
    for rw in PATCHES[module]:
        source, n = re.subn(rw.pattern, rw.replacement, source)
        if n != rw.count:
            raise LavaCompatError(
                f"{module}: expected {rw.count} match(es) of {rw.pattern!r}, found {n}; "
                f"this is not the {RELEASE.get(module, 'lava-nc 0.10.0')} that spikeloop's shim "
                "was written for")
    return source


class _PatchedLoader(importlib.machinery.SourceFileLoader):
    def get_code(self, fullname):
        # Always compile from source: a cached .pyc would be the unpatched module.
        source = self.get_data(self.path).decode("utf-8")
        return compile(patch_source(fullname, source), self.path, "exec", dont_inherit=True)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname not in PATCHES:
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
    early = sorted(m for m in PATCHES if m in sys.modules)
    if early:
        raise LavaCompatError(f"{early} were imported before spikeloop's compatibility shim; "
                              "import spikeloop.runtime before lava")
    sys.meta_path.insert(0, _Finder())


def check() -> str:
    """Import the Lava pieces spikeloop uses; return the Lava version. Used by `make setup`."""
    install()
    from importlib.metadata import version

    import lava.magma.compiler.compiler  # noqa: F401
    import lava.magma.runtime.runtime  # noqa: F401
    import lava.proc.dense.process  # noqa: F401
    import lava.proc.lif.process  # noqa: F401

    return version("lava-nc")
