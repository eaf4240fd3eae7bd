"""The graph metadata spikeloop writes into NIR files and reads back.

NIR is continuous-time; mapping it onto the discrete contract needs ``dt``. spikeloop
stores its metadata as one JSON string under the graph-metadata key ``spikeloop`` (so
that ``nir.write``/``nir.read`` round-trip it exactly: HDF5 would otherwise turn lists
and booleans into arrays), and ``dt`` also as a plain number for other tools.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np

from spikeloop.core.coding import Decoding, InputEncoding
from spikeloop.core.errors import ConfigError, NIRValidationError

KEY = "spikeloop"
FORMAT = 1
MAX_T = 10_000
"""the longest decision window spikeloop runs (timesteps per decision); a longer ``T`` is refused"""
GRAPH_RESETS = ("hard", "soft", "mixed")
"""the graph-level reset mode: one of the neuron contract's modes, or 'mixed' (named per node)"""


def check_T(T, what: str = "T") -> int | None:
    """``T`` (timesteps per decision) as an int, or ``None``; :class:`NIRValidationError` if invalid."""
    if T is None:
        return None
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)):
        raise NIRValidationError(f"{what} (the decision window) must be a whole number of timesteps, got {T!r}")
    if not 1 <= T <= MAX_T:
        raise NIRValidationError(f"{what} (the decision window) must be between 1 and {MAX_T} timesteps "
                                 f"(spikeloop.core.metadata.MAX_T), got {int(T)}")
    return int(T)


def check_dt(dt_s, what: str = "dt") -> float:
    """``dt_s`` as a float of positive, finite seconds; :class:`NIRValidationError` if invalid."""
    if isinstance(dt_s, (bool, np.bool_)) or not isinstance(dt_s, (int, float, np.integer, np.floating)) \
            or not (math.isfinite(dt_s) and dt_s > 0):
        raise NIRValidationError(f"{what} must be a positive number of seconds, got {dt_s!r}")
    return float(dt_s)


@dataclass
class GraphMeta:
    """What a NIR graph needs besides its nodes to run as a policy (validated at construction)."""

    dt_s: float
    """seconds per timestep"""
    reset: str = "hard"
    T: int | None = None
    """decision window (timesteps, at most :data:`MAX_T`); None for a streaming graph"""
    encoding: InputEncoding | None = None
    decoding: Decoding = field(default_factory=Decoding)
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        self.dt_s = check_dt(self.dt_s)
        if not isinstance(self.reset, str) or self.reset not in GRAPH_RESETS:
            raise NIRValidationError(f"reset must be one of {GRAPH_RESETS}, got {self.reset!r}")
        self.T = check_T(self.T)
        if self.encoding is not None and not isinstance(self.encoding, InputEncoding):
            raise NIRValidationError(f"encoding must be an InputEncoding, got {type(self.encoding).__name__}")
        if not isinstance(self.decoding, Decoding):
            raise NIRValidationError(f"decoding must be a Decoding, got {type(self.decoding).__name__}")
        if not isinstance(self.extra, dict):
            raise NIRValidationError(f"extra metadata must be a table, got {self.extra!r}")
        env_id = self.extra.get("env_id")
        if env_id is not None and not isinstance(env_id, str):
            raise NIRValidationError(f"env_id must be a gymnasium environment id (a string), got {env_id!r}")

    def __setattr__(self, name, value):
        if name == "dt_s" and "dt_s" in self.__dict__:
            value = check_dt(value)
        elif name == "T" and "T" in self.__dict__:
            value = check_T(value)
        super().__setattr__(name, value)

    def to_nir_metadata(self) -> dict:
        body = {"format": FORMAT, "dt": self.dt_s, "reset": self.reset, "T": self.T,
                "encoding": None if self.encoding is None else self.encoding.to_dict(),
                "decoding": self.decoding.to_dict(), **self.extra}
        return {KEY: json.dumps(body, sort_keys=True), "dt": float(self.dt_s)}

    @classmethod
    def from_nir_metadata(cls, metadata: dict | None, source: str = "graph") -> "GraphMeta | None":
        """Parse spikeloop metadata; ``None`` if the graph carries none (a peer's file)."""
        if not isinstance(metadata, dict) or KEY not in metadata:
            return None
        raw = metadata[KEY]
        if isinstance(raw, np.ndarray) and raw.ndim == 0:
            raw = raw[()]
        try:
            raw = raw.decode() if isinstance(raw, bytes) else raw
            if not isinstance(raw, str):
                raise ValueError(f"a JSON string was expected, got {type(raw).__name__}")
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError(f"a JSON object was expected, got a {type(body).__name__}")
            if body.get("format") != FORMAT:
                raise ValueError(f"format {body.get('format')!r}, expected {FORMAT}")
            if "dt" not in body:
                raise ValueError("missing field 'dt' (seconds per timestep)")
            enc = body.pop("encoding", None)
            known = {"dt", "reset", "T", "decoding"}
            reset = body.get("reset")
            return cls(dt_s=body["dt"], reset="hard" if reset is None else reset, T=body.get("T"),
                       encoding=None if enc is None else InputEncoding.from_dict(enc),
                       decoding=Decoding.from_dict(body.get("decoding")),
                       extra={k: v for k, v in body.items() if k not in known | {"format"}})
        except RecursionError:
            raise NIRValidationError(f"{source}: malformed '{KEY}' metadata: JSON nested too deeply") from None
        except (ValueError, KeyError, TypeError, UnicodeDecodeError, ConfigError) as e:
            raise NIRValidationError(f"{source}: malformed '{KEY}' metadata: {e}") from e
