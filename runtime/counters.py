"""Operation counts: what the deployed network really did, per population and connection.

Definitions (the same in the emulator and inside the Lava process models):

- ``synops``: for every non-zero input element arriving at a Dense connection, one
  operation per non-zero weight in its column (its fan-out). Graded inputs (the
  host's observation payload) are multiply-accumulates, binary spikes accumulates.
- ``updates``: neuron updates; Loihi updates every configured neuron every step.
- ``active``: updates after which the neuron's state (u or v) is non-zero, or which
  spiked; the rest are ``updates - active`` (inactive updates).
- ``spikes``: spikes emitted by a spiking population.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class OpCounts:
    """Counts accumulated over ``steps`` Lava timesteps and ``decisions`` decisions."""

    steps: int = 0
    decisions: int = 0
    synops: dict[str, int] = field(default_factory=dict)
    graded: dict[str, bool] = field(default_factory=dict)
    updates: dict[str, int] = field(default_factory=dict)
    active: dict[str, int] = field(default_factory=dict)
    spikes: dict[str, int] = field(default_factory=dict)

    def per_decision(self) -> dict:
        """Mean counts per decision (floats), keyed like the raw counts."""
        d = max(self.decisions, 1)
        return {name: {k: v / d for k, v in sorted(getattr(self, name).items())}
                for name in ("synops", "updates", "active", "spikes")} | {
            "steps": self.steps / d, "graded": dict(self.graded)}

    def to_dict(self) -> dict:
        return {"steps": self.steps, "decisions": self.decisions, "synops": dict(self.synops),
                "graded": dict(self.graded), "updates": dict(self.updates),
                "active": dict(self.active), "spikes": dict(self.spikes)}


def fanout(weight: np.ndarray) -> np.ndarray:
    """Non-zero weights per input column (the synaptic operations one input event costs)."""
    return np.count_nonzero(weight, axis=0).astype(np.int64)


def synops(fan: np.ndarray, s_in: np.ndarray) -> int:
    """Synaptic operations of input events ``s_in`` (``(n,)``, or ``(batch, n)``: summed)."""
    nz = np.asarray(s_in) != 0
    return int(fan[nz].sum()) if nz.ndim == 1 else int(nz.sum(axis=0) @ fan)


def neuron_activity(u: np.ndarray, v_before_reset: np.ndarray, s) -> int:
    """Active updates: state non-zero after the update, or a spike."""
    act = (np.asarray(u) != 0) | (np.asarray(v_before_reset) != 0)
    if s is not None:
        act |= np.asarray(s) != 0
    return int(np.count_nonzero(act))
