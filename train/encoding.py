"""Observation encoding and action decoding, frozen at export and shared by every backend.

Observations enter the network as graded input through the first layer (Loihi 2
graded spikes). The encoder is fixed at export time and stored in the NIR metadata:

    x = clip((obs - mean) / std, -clip, clip)            # frozen normalization
    x = round(x * levels / clip) * clip / levels         # graded payload grid

``levels = 2**(bits-1) - 1``; the integer ``round(x * levels / clip)`` is the graded
spike payload that the fixed-point runtime sends. Every backend (torch training,
emulator, Lava float and fixed) sees the same quantized values.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class InputEncoding:
    """Frozen observation normalization and the graded payload grid."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    clip: float = 4.0
    bits: int = 8

    @property
    def levels(self) -> int:
        return 2 ** (self.bits - 1) - 1

    @property
    def scale(self) -> float:
        """Integer payload per unit of normalized input (``sigma_in``)."""
        return self.levels / self.clip

    def to_payload(self, obs: np.ndarray) -> np.ndarray:
        """Observation(s) -> integer graded payload (int32)."""
        x = (np.asarray(obs, dtype=np.float64) - np.asarray(self.mean)) / np.asarray(self.std)
        x = np.clip(x, -self.clip, self.clip)
        return np.rint(x * self.scale).astype(np.int32)

    def encode(self, obs: np.ndarray) -> np.ndarray:
        """Observation(s) -> the real-valued input the network sees (float64)."""
        return self.to_payload(obs) / self.scale

    def to_dict(self) -> dict:
        return {"kind": "graded", **asdict(self), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: dict) -> "InputEncoding":
        return cls(mean=tuple(float(m) for m in d["mean"]), std=tuple(float(s) for s in d["std"]),
                   clip=float(d["clip"]), bits=int(d["bits"]))

    @classmethod
    def fit(cls, observations: np.ndarray, clip: float = 4.0, bits: int = 8) -> "InputEncoding":
        """Freeze a normalization from sample observations (std floored at 1e-3)."""
        obs = np.asarray(observations, dtype=np.float64)
        std = np.maximum(obs.std(axis=0), 1e-3)
        return cls(mean=tuple(obs.mean(axis=0).tolist()), std=tuple(std.tolist()), clip=clip, bits=bits)


def greedy_action(values: np.ndarray) -> np.ndarray | int:
    """Argmax on the host (first index on ties, as numpy and torch both do)."""
    values = np.asarray(values)
    return int(np.argmax(values)) if values.ndim == 1 else np.argmax(values, axis=-1)
