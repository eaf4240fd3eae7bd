"""Observation encoding and output decoding, frozen at export and shared by every backend.

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


READOUT_VOLTAGE, SPIKE_COUNT, ATOMS = "readout_voltage", "spike_count", "atoms"
DECODING_KINDS = (READOUT_VOLTAGE, SPIKE_COUNT, ATOMS)
WINDOW_STEPS = ("last", "mean")


@dataclass(frozen=True)
class Decoding:
    """How the output population's window becomes values and an action (typed, in the metadata).

    ``kind``:

    - ``readout_voltage``: the voltage of a non-spiking readout, at the ``last`` step of
      the decision window or its ``mean`` over the window (Q-values, logits);
    - ``spike_count``: spikes of a spiking output population summed over the window;
    - ``atoms``: a readout of ``n_actions * len(atoms)`` logits (``step`` as for a
      voltage); each action's value is the expectation over ``atoms`` of their softmax
      (a distributional critic, C51 style).

    The action is the argmax of the values on the host (first index on ties).
    """

    kind: str = READOUT_VOLTAGE
    step: str = "last"
    action: str = "argmax"
    atoms: tuple[float, ...] | None = None

    def __post_init__(self):
        from spikeloop.core.errors import ConfigError

        if self.kind not in DECODING_KINDS:
            raise ConfigError(f"decoding kind must be one of {DECODING_KINDS}, got {self.kind!r}")
        if self.step not in WINDOW_STEPS:
            raise ConfigError(f"decoding step must be one of {WINDOW_STEPS}, got {self.step!r}")
        if self.action != "argmax":
            raise ConfigError(f"decoding action must be 'argmax', got {self.action!r}")
        if (self.kind == ATOMS) != (self.atoms is not None):
            raise ConfigError("decoding: atoms are given exactly when kind is 'atoms'")
        if self.atoms is not None and len(self.atoms) < 2:
            raise ConfigError(f"decoding: an atoms readout needs at least 2 atoms, got {len(self.atoms)}")

    @property
    def spiking_output(self) -> bool:
        """Whether the output population spikes (spike counts) or is a readout voltage."""
        return self.kind == SPIKE_COUNT

    def reduce(self, window) -> np.ndarray:
        """Values from the output over one window: ``(T, ..., n)`` voltages or spikes -> ``(..., n)``."""
        w = np.asarray(window, dtype=np.float64)
        if self.kind == SPIKE_COUNT:
            out = w.sum(axis=0)
        else:
            out = w[-1] if self.step == "last" else w.mean(axis=0)
        return self.values(out) if self.kind == ATOMS else out

    def values(self, readout) -> np.ndarray:
        """Per-action values of a reduced readout (the identity except for atoms)."""
        x = np.asarray(readout, dtype=np.float64)
        if self.kind != ATOMS:
            return x
        z = np.asarray(self.atoms)
        logits = x.reshape(*x.shape[:-1], -1, z.size)
        p = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return (p / p.sum(axis=-1, keepdims=True)) @ z

    def to_dict(self) -> dict:
        d = {"kind": self.kind, "step": self.step, "action": self.action}
        if self.atoms is not None:
            d["atoms"] = list(self.atoms)
        return d

    @classmethod
    def from_dict(cls, d: dict | None) -> "Decoding":
        from spikeloop.core.errors import ConfigError

        d = dict(d or {})
        unknown = sorted(set(d) - {"kind", "step", "action", "atoms"})
        if unknown:
            raise ConfigError(f"decoding: unknown keys {unknown}")
        atoms = d.get("atoms")
        try:
            return cls(kind=str(d.get("kind", READOUT_VOLTAGE)), step=str(d.get("step", "last")),
                       action=str(d.get("action", "argmax")),
                       atoms=None if atoms is None else tuple(float(a) for a in atoms))
        except (TypeError, ValueError) as e:
            raise ConfigError(f"decoding: malformed record {d}: {e}") from e


def greedy_action(values: np.ndarray) -> np.ndarray | int:
    """Argmax on the host (first index on ties, as numpy and torch both do)."""
    values = np.asarray(values)
    return int(np.argmax(values)) if values.ndim == 1 else np.argmax(values, axis=-1)
