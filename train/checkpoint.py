"""Safetensors checkpoints: tensors plus a JSON record of the model and run config.

No pickle is ever executed: safetensors stores raw tensors and a string header.
"""
from __future__ import annotations

import json
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from spikeloop.core.artifacts import atomic_path
from spikeloop.core.errors import CheckpointError
from spikeloop.train.layers import SpikingMLP

_KEY = "spikeloop"


def save_policy(path: str | Path, model: SpikingMLP, extra: dict | None = None) -> Path:
    """Write ``model`` (and JSON-serialisable ``extra`` info) atomically to ``path``."""
    meta = {_KEY: json.dumps({"model": model.config(), **(extra or {})}, sort_keys=True)}
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def load_policy(path: str | Path) -> tuple[SpikingMLP, dict]:
    """Read a checkpoint written by :func:`save_policy`; return ``(model, extra)``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        tensors = load_file(str(path))
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({e})") from e
    if _KEY not in header:
        raise CheckpointError(f"{path}: safetensors file has no '{_KEY}' metadata; "
                              "it was not written by spikeloop")
    try:
        info = json.loads(header[_KEY])
        model = SpikingMLP.from_config(info.pop("model"))
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: corrupt '{_KEY}' metadata ({e})") from e
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: tensors do not match the stored model config: {e}") from e
    return model, info
