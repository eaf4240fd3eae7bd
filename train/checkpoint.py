"""Safetensors checkpoints of a :class:`~spikeloop.train.policy.Policy`.

The file holds the tensors and one JSON header: the network's builder spec, ``T``,
the encoding, the decoding, the provenance and free-form ``extra`` info. No pickle
is ever executed: safetensors stores raw tensors and a string header, and the
network is rebuilt by a registered builder from validated arguments.
"""
from __future__ import annotations

import json
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from spikeloop.core.artifacts import atomic_path
from spikeloop.core.coding import Decoding, InputEncoding
from spikeloop.core.errors import CheckpointError, ConfigError, NIRValidationError
from spikeloop.core.metadata import check_T
from spikeloop.train.networks import build
from spikeloop.train.policy import Policy, Provenance

_KEY = "spikeloop"
FORMAT = 2


def save_policy(path: str | Path, policy: Policy, extra: dict | None = None) -> Path:
    """Write ``policy`` (and JSON-serialisable ``extra`` info) atomically to ``path``."""
    spec = getattr(policy.network, "spec", None)
    if spec is None:
        raise CheckpointError(f"{path}: the network was not made by a registered builder "
                              "(spikeloop.train.networks); it has no spec to store")
    record = {"format": FORMAT, "network": spec, "T": policy.T, "encoding": policy.encoding.to_dict(),
              "decoding": policy.decoding.to_dict(),
              "provenance": None if policy.provenance is None else policy.provenance.to_dict(),
              "extra": extra or {}}
    meta = {_KEY: json.dumps(record, sort_keys=True)}
    tensors = {k: v.detach().contiguous().cpu() for k, v in policy.network.state_dict().items()}
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def _legacy(info: dict) -> dict:
    """A format-1 record (a ``SpikingMLP`` config, before the policy record) as format 2."""
    m = info["model"]
    hidden, readout = m["hidden"], m["readout"]
    if hidden.get("du", 1.0) != readout.get("du", 1.0):
        raise ValueError("format-1 checkpoints with different hidden and readout du are not supported")
    args = {"sizes": m["sizes"], "du": hidden["du"], "dv": hidden["dv"], "vth": hidden["vth"],
            "readout_dv": readout["dv"], "reset": hidden.get("reset", "hard"),
            "fake_quant": m.get("fake_quant", False), "surrogate_alpha": m.get("surrogate_alpha", 2.0)}
    env_id = info.get("env_id")
    return {"format": FORMAT, "network": {"builder": "mlp", "args": args, "legacy_keys": True}, "T": m["T"],
            "encoding": info["encoding"], "decoding": None,
            "provenance": {"agent": "dqn", "env_id": env_id, "seed": 0} if env_id else None,
            "extra": {k: v for k, v in info.items() if k not in ("model", "encoding", "env_id")}}


def _legacy_tensors(tensors: dict) -> dict:
    """``layers.k.linear.weight`` / ``layers.k.bias`` -> the MLP graph's node names."""
    n = 1 + max(int(k.split(".")[1]) for k in tensors if k.startswith("layers."))
    out = {}
    for k in range(n):
        neuron = f"li{k}" if k == n - 1 else f"lif{k}"
        out[f"nodes.fc{k}.weight"] = tensors[f"layers.{k}.linear.weight"]
        out[f"nodes.{neuron}.bias"] = tensors[f"layers.{k}.bias"]
    return out


def load_policy(path: str | Path) -> tuple[Policy, dict]:
    """Read a checkpoint written by :func:`save_policy`; return ``(policy, extra)``."""
    if isinstance(path, bytes):
        path = path.decode(errors="replace")
    if not isinstance(path, (str, Path)):
        raise CheckpointError(f"{path!r} is not a path to a checkpoint")
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, not a checkpoint")
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({e})") from e
    if _KEY not in header:
        raise CheckpointError(f"{path}: safetensors file has no '{_KEY}' metadata; "
                              "it was not written by spikeloop")
    try:
        info = json.loads(header[_KEY])
        if not isinstance(info, dict):
            raise ValueError(f"the record is a {type(info).__name__}, not an object")
        if info.get("kind") is not None:
            from spikeloop.train.agents.sdt import KIND, NOT_DEPLOYABLE

            if info["kind"] == KIND:
                raise CheckpointError(f"{path}: {NOT_DEPLOYABLE}")
            raise ValueError(f"unknown record kind {info['kind']!r}")
        legacy = "model" in info and "format" not in info
        if legacy:
            info = _legacy(info)
        if info.get("format") != FORMAT:
            raise ValueError(f"format {info.get('format')!r}, expected {FORMAT}")
        if not isinstance(info.get("network"), dict):
            raise ValueError(f"'network' must be an object naming the builder, got {info.get('network')!r}")
        T = check_T(info.get("T"))
        if T is None:
            raise ValueError("missing 'T' (the decision window)")
        spec = {k: v for k, v in info["network"].items() if k != "legacy_keys"}
        encoding = InputEncoding.from_dict(info.get("encoding"))
        decoding = Decoding.from_dict(info.get("decoding"))
        provenance = info.get("provenance")
        if provenance is not None and not isinstance(provenance, dict):
            raise ValueError(f"'provenance' must be an object, got {provenance!r}")
        provenance = None if provenance is None else Provenance.from_dict(provenance)
        if provenance is not None and not isinstance(provenance.config, dict):
            raise ValueError("provenance 'config' must be an object")
        if info.get("extra") is not None and not isinstance(info["extra"], dict):
            raise ValueError(f"'extra' must be an object, got {info['extra']!r}")
        network = build(spec)  # validates every argument before a tensor is allocated
        policy = Policy(network, T, encoding, decoding, provenance)
    except RecursionError:
        raise CheckpointError(f"{path}: corrupt '{_KEY}' metadata (JSON nested too deeply)") from None
    except (ValueError, KeyError, TypeError, AttributeError, ConfigError, NIRValidationError) as e:
        raise CheckpointError(f"{path}: corrupt '{_KEY}' metadata ({e})") from e
    try:
        tensors = load_file(str(path))
        if legacy:
            tensors = _legacy_tensors(tensors)
    except (SafetensorError, OSError, ValueError, RuntimeError, KeyError, IndexError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({e})") from e
    expected = network.state_dict()
    for k, t in tensors.items():
        if k in expected and tuple(t.shape) != tuple(expected[k].shape):
            raise CheckpointError(f"{path}: tensor {k!r} has shape {tuple(t.shape)}, the stored network "
                                  f"config needs {tuple(expected[k].shape)}")
    try:
        network.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: tensors do not match the stored model config: {e}") from e
    network.eval()
    return policy, dict(info.get("extra") or {})
