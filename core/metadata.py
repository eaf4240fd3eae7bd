"""The graph metadata spikeloop writes into NIR files and reads back.

NIR is continuous-time; mapping it onto the discrete contract needs ``dt``. spikeloop
stores its metadata as one JSON string under the graph-metadata key ``spikeloop`` (so
that ``nir.write``/``nir.read`` round-trip it exactly: HDF5 would otherwise turn lists
and booleans into arrays), and ``dt`` also as a plain number for other tools.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from spikeloop.core.coding import Decoding, InputEncoding
from spikeloop.core.errors import ConfigError, NIRValidationError

KEY = "spikeloop"
FORMAT = 1


@dataclass
class GraphMeta:
    """What a NIR graph needs besides its nodes to run as a policy."""

    dt_s: float
    """seconds per timestep"""
    reset: str = "hard"
    T: int | None = None
    """decision window (timesteps); None for a streaming graph"""
    encoding: InputEncoding | None = None
    decoding: Decoding = field(default_factory=Decoding)
    extra: dict = field(default_factory=dict)

    def to_nir_metadata(self) -> dict:
        body = {"format": FORMAT, "dt": self.dt_s, "reset": self.reset, "T": self.T,
                "encoding": None if self.encoding is None else self.encoding.to_dict(),
                "decoding": self.decoding.to_dict(), **self.extra}
        return {KEY: json.dumps(body, sort_keys=True), "dt": float(self.dt_s)}

    @classmethod
    def from_nir_metadata(cls, metadata: dict | None, source: str = "graph") -> "GraphMeta | None":
        """Parse spikeloop metadata; ``None`` if the graph carries none (a peer's file)."""
        if not metadata or KEY not in metadata:
            return None
        raw = metadata[KEY]
        raw = raw.decode() if isinstance(raw, bytes) else str(raw)
        try:
            body = json.loads(raw)
            if body.get("format") != FORMAT:
                raise ValueError(f"format {body.get('format')!r}, expected {FORMAT}")
            enc = body.pop("encoding", None)
            known = {"dt", "reset", "T", "decoding"}
            return cls(dt_s=float(body["dt"]), reset=body.get("reset", "hard"), T=body.get("T"),
                       encoding=None if enc is None else InputEncoding.from_dict(enc),
                       decoding=Decoding.from_dict(body.get("decoding")),
                       extra={k: v for k, v in body.items() if k not in known | {"format"}})
        except (ValueError, KeyError, TypeError, ConfigError) as e:
            raise NIRValidationError(f"{source}: malformed '{KEY}' metadata: {e}") from e
