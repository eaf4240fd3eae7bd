"""A minimal TOML writer for run configs (flat tables of scalars and lists)."""
from __future__ import annotations

from pathlib import Path

from spikeloop.core.artifacts import write_text


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def write_toml(path: str | Path, tables: dict[str, dict]) -> Path:
    """Write ``{table: {key: scalar|list}}`` atomically (None values are left out)."""
    lines = []
    for table, body in tables.items():
        lines.append(f"[{table}]")
        lines += [f"{k} = {_value(v)}" for k, v in body.items() if v is not None]
        lines.append("")
    return write_text(path, "\n".join(lines))
