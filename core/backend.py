"""The one interface every executor of a policy implements.

The emulator, the plan-level torch reference, Lava per-node and Lava fused (in
``spikeloop.runtime``), the trained torch policy itself (in ``spikeloop.train``) and
later the vendor simulators all look the same to the closed-loop runner and to
``simulate``: the runner never asks which one it holds.

A backend is built by its constructor, started by ``__enter__`` (or :meth:`start`),
and always stopped by ``__exit__``/:meth:`close`, on every path. A ``with`` block closes
only what it started: code that takes a backend (the closed-loop runner) may enter it
whether or not its owner has started it already.

Backends that run a compiled plan also keep ``last_output``: the raw, undecoded output
of their last decision (registers over the decision window), which a bit-exact twin
must reproduce exactly. Backends without registers (the torch policy) need not have it.
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Backend(Protocol):
    """build (constructor + start), reset, begin_episode, decide or step, counts, close."""

    name: str
    """what runs the network, for reports: 'emulator', 'lava-fused', 'lava-per-node', 'torch', ..."""
    precision: str
    """'float' or 'fixed'"""

    def start(self) -> "Backend":
        """Acquire what the backend runs on (processes, memory); return ``self``."""

    def reset(self) -> None:
        """Zero the network state and the counters (a new episode of decisions)."""

    def begin_episode(self) -> None:
        """A new episode starts: the host encoder forgets what it carried across decisions
        (the delta code's reference). The counters run on."""

    def decide(self, obs: np.ndarray) -> np.ndarray:
        """One decision: an observation in, the decoded per-action values out (real units).

        The values are the policy's decoding (``Decoding.reduce``) of the output over the
        decision window; the action is their argmax on the host."""

    def counts(self) -> Any | None:
        """Operations performed since :meth:`reset` (``OpCounts``), or ``None`` if not counted."""

    def close(self) -> None:
        """Release everything :meth:`start` acquired; safe to call twice."""

    def __enter__(self) -> "Backend":
        """Start if not running; the matching ``__exit__`` closes only what this started."""

    def __exit__(self, exc_type, exc, tb) -> None:
        ...
