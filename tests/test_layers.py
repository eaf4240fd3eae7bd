"""The folders are layers: every import (top level or inside a function) points down.

core/ stands below everything; train/, export/, runtime/ and hwprofiles/ stand on it;
the CLI and pipeline (spikeloop/) sit on top. Forbidden directions are checked on the
source of every module, so a lazy import inside a function cannot hide one.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"core": "spikeloop.core", "train": "spikeloop.train", "export": "spikeloop.export",
           "runtime": "spikeloop.runtime", "hwprofiles": "spikeloop.hwprofiles", "spikeloop": "spikeloop"}
TOP = tuple(f"spikeloop.{p.stem}" for p in sorted((ROOT / "spikeloop").glob("*.py")) if p.stem != "__init__")
"""the top layer's modules (CLI, pipeline, options, report, plots): nothing below imports them"""
FORBIDDEN = {
    "spikeloop.core": ("spikeloop.train", "spikeloop.export", "spikeloop.runtime", "spikeloop.hwprofiles", *TOP),
    "spikeloop.export": ("spikeloop.runtime", "spikeloop.hwprofiles", *TOP),
    "spikeloop.runtime": ("spikeloop.train", "spikeloop.export", *TOP),
    "spikeloop.hwprofiles": ("spikeloop.runtime", "spikeloop.train", "spikeloop.export", *TOP),
    "spikeloop.train": ("spikeloop.runtime", "spikeloop.export", "spikeloop.hwprofiles", *TOP),
}


def _modules():
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield package, path


def _imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.append((node.lineno, node.module))
            out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return out


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_every_folder_is_walked():
    assert {"spikeloop.cli", "spikeloop.pipeline", "spikeloop.options"} <= set(TOP)
    files = list(_modules())
    assert len(files) > 40 and {p for p, _ in files} == set(FOLDERS.values())


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_down(package):
    bad = []
    for pkg, path in _modules():
        if pkg != package:
            continue
        for line, name in _imports(path):
            for banned in FORBIDDEN[package]:
                if _under(name, banned):
                    bad.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not bad, "\n".join(sorted(set(bad)))


def test_the_walker_sees_lazy_imports(tmp_path):
    probe = tmp_path / "m.py"
    probe.write_text("def f():\n    from spikeloop.runtime.compiler import plan_from_nir\n")
    assert (2, "spikeloop.runtime.compiler") in _imports(probe)
