"""Observation encoding and output decoding, frozen at export and shared by every backend.

Observations enter the network as graded input through the first layer (Loihi 2
graded spikes). The encoder is fixed at export time and stored in the NIR metadata:

    x = clip((obs - mean) / std, -clip, clip)            # frozen normalization
    x = round(x * levels / clip) * clip / levels         # graded payload grid

``levels = 2**(bits-1) - 1``; the integer ``round(x * levels / clip)`` is the graded
spike payload that the fixed-point runtime sends. Every backend (torch training,
emulator, Lava float and fixed) sees the same quantized values.

A code may be stateful across decisions (the delta code sends changes): whoever
encodes an episode does it through an :class:`EncoderStream` (``encoding.stream()``),
reset at every episode start, or encodes the whole episode at once
(:meth:`InputEncoding.encode_episode`).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


PAYLOAD_BITS = (2, 32)
"""the graded payload widths an encoding may use (the payload is an int32)"""


def _real(x) -> bool:
    """A real number (Python or numpy), not a bool and not a string."""
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


def _numbers(what: str, values) -> tuple[float, ...]:
    from spikeloop.core.errors import ConfigError

    if isinstance(values, np.ndarray):
        values = values.reshape(-1).tolist() if values.ndim <= 1 else None
    if not isinstance(values, (list, tuple)) or not values:
        raise ConfigError(f"input encoding: {what} must be a non-empty list of numbers, got {values!r}")
    for i, v in enumerate(values):
        if not _real(v):
            raise ConfigError(f"input encoding: {what}[{i}] must be a number, got {v!r}")
    return tuple(float(v) for v in values)


@dataclass(frozen=True)
class InputEncoding:
    """Frozen observation normalization and the graded payload grid.

    Validated at construction: ``mean`` and ``std`` are lists of the same, non-zero length
    with finite values and ``std > 0``; ``clip`` is finite and positive; ``bits`` is an
    integer in :data:`PAYLOAD_BITS`. An invalid encoding cannot exist.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    clip: float = 4.0
    bits: int = 8

    def __post_init__(self):
        from spikeloop.core.errors import ConfigError

        mean, std = _numbers("mean", self.mean), _numbers("std", self.std)
        if len(mean) != len(std):
            raise ConfigError(f"input encoding: mean has {len(mean)} values, std {len(std)}; one of each "
                              "per observation element")
        for i, m in enumerate(mean):
            if not math.isfinite(m):
                raise ConfigError(f"input encoding: mean[{i}] must be finite, got {m}")
        for i, s in enumerate(std):
            if not (math.isfinite(s) and s > 0):
                raise ConfigError(f"input encoding: std[{i}] must be a finite positive number, got {s:g}")
        if not _real(self.clip) or not (math.isfinite(self.clip) and self.clip > 0):
            raise ConfigError(f"input encoding: clip must be a finite positive number, got {self.clip!r}")
        lo, hi = PAYLOAD_BITS
        if not isinstance(self.bits, (int, np.integer)) or isinstance(self.bits, (bool, np.bool_)) \
                or not lo <= self.bits <= hi:
            raise ConfigError(f"input encoding: bits must be an integer in [{lo}, {hi}], got {self.bits!r}")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)
        object.__setattr__(self, "clip", float(self.clip))
        object.__setattr__(self, "bits", int(self.bits))

    @property
    def levels(self) -> int:
        return 2 ** (self.bits - 1) - 1

    @property
    def n_inputs(self) -> int:
        """Input channels the network takes (one per observation element for a graded input)."""
        return len(self.mean)

    @property
    def peak(self) -> float:
        """The largest magnitude an encoded input takes (real units)."""
        return self.clip

    def describe(self) -> str:
        return f"graded {self.bits}-bit"

    stateful = False
    """whether the input of a decision depends on earlier observations of the episode"""

    def stream(self) -> "EncoderStream":
        """An encoder for one episode's observations in order (reset it at every episode start)."""
        return EncoderStream(self)

    def encode_episode(self, observations: np.ndarray) -> np.ndarray:
        """One episode's observations ``(steps, n)``, in order from its start -> the inputs the
        network saw at each decision (float64), for a stateful code too."""
        stream = self.stream()
        return np.stack([stream.encode(o) for o in np.asarray(observations)]) if self.stateful \
            else self.encode(observations)

    def normalize(self, obs: np.ndarray) -> np.ndarray:
        """The frozen normalization, clipped to +-clip (float64)."""
        x = (np.asarray(obs, dtype=np.float64) - np.asarray(self.mean)) / np.asarray(self.std)
        return np.clip(x, -self.clip, self.clip)

    @property
    def scale(self) -> float:
        """Integer payload per unit of normalized input (``sigma_in``)."""
        return self.levels / self.clip

    def to_payload(self, obs: np.ndarray) -> np.ndarray:
        """Observation(s) -> integer graded payload (int32)."""
        return np.rint(self.normalize(obs) * self.scale).astype(np.int32)

    def encode(self, obs: np.ndarray) -> np.ndarray:
        """Observation(s) -> the real-valued input the network sees (float64)."""
        return self.to_payload(obs) / self.scale

    def to_dict(self) -> dict:
        return {"kind": "graded", **asdict(self), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: dict) -> "InputEncoding":
        from spikeloop.core.errors import ConfigError

        if not isinstance(d, dict):
            raise ConfigError(f"input encoding: expected a table of mean, std, clip and bits, got {d!r}")
        if d.get("kind") in SPIKE_CODES:
            return SpikeEncoding.from_dict(d)
        if d.get("kind", "graded") != "graded":
            raise ConfigError(f"input encoding: kind must be 'graded' or one of the spike codes "
                              f"{', '.join(SPIKE_CODES)}, got {d.get('kind')!r}")
        unknown = sorted(set(d) - {"kind", "mean", "std", "clip", "bits"})
        if unknown:
            raise ConfigError(f"input encoding: unknown keys {unknown}")
        for key in ("mean", "std", "clip", "bits"):
            if key not in d:
                raise ConfigError(f"input encoding: missing {key!r}")
        return cls(mean=d["mean"], std=d["std"], clip=d["clip"], bits=d["bits"])

    @classmethod
    def fit(cls, observations: np.ndarray, clip: float = 4.0, bits: int = 8) -> "InputEncoding":
        """Freeze a normalization from sample observations (std floored at 1e-3)."""
        from spikeloop.core.errors import ConfigError

        obs = np.asarray(observations, dtype=np.float64)
        if obs.ndim != 2 or obs.shape[0] == 0 or obs.shape[1] == 0:
            raise ConfigError(f"input encoding: fitting needs at least one observation of at least one "
                              f"value, got observations of shape {obs.shape}")
        if not np.all(np.isfinite(obs)):
            raise ConfigError("input encoding: the observations to fit hold NaN or inf")
        std = np.maximum(obs.std(axis=0), 1e-3)
        return cls(mean=tuple(obs.mean(axis=0).tolist()), std=tuple(std.tolist()), clip=clip, bits=bits)

    @classmethod
    def fit_image(cls, observations: np.ndarray, shape: tuple[int, int, int], bits: int = 8) -> "InputEncoding":
        """Freeze the normalization of flattened ``(C, H, W)`` images: each channel divided by its
        peak ``max |x|`` over the samples (1 for a channel that stays 0), no offset, clip 1.

        One scale per channel, not per pixel, keeps a convolution's kernel meaning the same
        everywhere on the image, and zero stays zero: an empty pixel sends no event.
        """
        from spikeloop.core.errors import ConfigError

        obs = np.asarray(observations, dtype=np.float64)
        c = int(shape[0])
        if obs.ndim != 2 or obs.shape[0] == 0 or obs.shape[1] != int(np.prod(shape)):
            raise ConfigError(f"input encoding: fitting images of shape {tuple(shape)} needs observations of "
                              f"{int(np.prod(shape))} values each, got observations of shape {obs.shape}")
        if not np.all(np.isfinite(obs)):
            raise ConfigError("input encoding: the observations to fit hold NaN or inf")
        peak = np.abs(obs).reshape(obs.shape[0], c, -1).max(axis=(0, 2))
        std = np.repeat(np.where(peak > 0, peak, 1.0), obs.shape[1] // c)
        return cls(mean=(0.0,) * obs.shape[1], std=tuple(std.tolist()), clip=1.0, bits=bits)


RATE, POPULATION, DELTA, EVENTS = "rate", "population", "delta", "events"
SPIKE_CODES = (RATE, POPULATION, DELTA, EVENTS)
MAX_EVENTS = (1, 255)
"""events per channel per step an encoder may emit (1: binary events; Xylo takes up to 15)"""
POPULATION_NEURONS = (2, 64)
"""channels per observation element a population code may use"""


@dataclass(frozen=True)
class SpikeEncoding(InputEncoding):
    """A spike encoder for targets that take events, not graded values (Xylo, Loihi 1, Speck).

    The observation is normalized as by :class:`InputEncoding` (``x`` in ``[-clip, clip]``),
    then each element becomes event counts per step, held for the decision window:

    - ``rate``: two channels per element, on and off, ``round(max_events * x+ / clip)`` and
      ``round(max_events * x- / clip)`` events (``x+ = max(x, 0)``, ``x- = max(-x, 0)``);
    - ``population``: ``neurons`` channels per element with Gaussian tuning curves, centres
      evenly spaced over ``[-clip, clip]`` and a width of one spacing:
      ``round(max_events * exp(-(x - c)^2 / (2 w^2)))`` events;
    - ``delta`` (send-on-delta): two channels per element, up and down. The element is
      quantized to the rate code's grid, ``level = round(max_events * x / clip)``; a decision
      sends the change since what was sent before, ``up = clip(level - ref, 0, max_events)``,
      ``down = clip(ref - level, 0, max_events)``, and the reference moves by what was sent,
      ``ref += up - down`` (a change larger than ``max_events`` arrives over two decisions).
      ``ref`` starts at 0 each episode, so the first decision sends the rate code. It is
      stateful: it is encoded through a :class:`EncoderStream`.
    - ``events``: one channel per element, ``round(max_events * x+ / clip)`` events: the
      observation already is event counts (a binary board such as MinAtar's, one event per lit
      pixel), its layout kept (an image stays an image); negative values send nothing.

    The counts are the payload (``scale`` 1): every backend sees the same integers.
    ``max_events`` is 15 for Xylo and 1 for a binary-event chip. ``bits`` is unused.
    """

    code: str = RATE
    max_events: int = 15
    neurons: int = 5
    """channels per observation element of a population code"""

    def __post_init__(self):
        super().__post_init__()
        from spikeloop.core.errors import ConfigError

        if self.code not in SPIKE_CODES:
            raise ConfigError(f"spike encoding: code must be one of {', '.join(SPIKE_CODES)}, got {self.code!r}")
        for name, (lo, hi) in (("max_events", MAX_EVENTS), ("neurons", POPULATION_NEURONS)):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, (bool, np.bool_)) or not lo <= v <= hi:
                raise ConfigError(f"spike encoding: {name} must be an integer in [{lo}, {hi}], got {v!r}")
            object.__setattr__(self, name, int(v))

    @property
    def binary(self) -> bool:
        """At most one event per channel and step: plain spikes, no graded payload."""
        return self.max_events == 1

    @property
    def channels(self) -> int:
        """Event channels per observation element."""
        return self.neurons if self.code == POPULATION else 1 if self.code == EVENTS else 2

    @property
    def stateful(self) -> bool:
        return self.code == DELTA

    @property
    def n_inputs(self) -> int:
        return len(self.mean) * self.channels

    @property
    def scale(self) -> float:
        return 1.0

    @property
    def peak(self) -> float:
        return float(self.max_events)

    def describe(self) -> str:
        extra = f", {self.neurons} per value" if self.code == POPULATION else ""
        return f"{self.code} code, at most {self.max_events} event{'s' * (self.max_events > 1)} per channel " \
               f"per step{extra}"

    def level(self, obs: np.ndarray) -> np.ndarray:
        """Observation(s) ``(..., n)`` -> the signed event grid ``round(max_events * x / clip)`` (int64)."""
        return np.rint(self.normalize(obs) * (self.max_events / self.clip)).astype(np.int64)

    def delta_step(self, obs: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The delta code's one decision: ``(counts (..., 2n) int32, the new reference)``."""
        d = self.level(obs) - reference
        up, down = np.clip(d, 0, self.max_events), np.clip(-d, 0, self.max_events)
        counts = np.stack([up, down], axis=-1).astype(np.int32).reshape(*d.shape[:-1], -1)
        return counts, reference + up - down

    def to_payload(self, obs: np.ndarray) -> np.ndarray:
        """Observation(s) ``(..., n)`` -> event counts per step ``(..., n * channels)`` (int32); the
        channels of one element are adjacent (on, off for a rate code)."""
        if self.stateful:
            from spikeloop.core.errors import ConfigError

            raise ConfigError("the delta code is stateful (it sends what changed since the last decision): "
                              "encode an episode in order through encoding.stream(), reset at each "
                              "episode start, or all at once with encoding.encode_episode()")
        x = self.normalize(obs)
        if self.code == RATE:
            counts = np.stack([np.maximum(x, 0), np.maximum(-x, 0)], axis=-1) * (self.max_events / self.clip)
        elif self.code == EVENTS:
            counts = np.maximum(x, 0) * (self.max_events / self.clip)
        else:
            centres = np.linspace(-self.clip, self.clip, self.neurons)
            width = centres[1] - centres[0]
            counts = self.max_events * np.exp(-0.5 * ((x[..., None] - centres) / width) ** 2)
        return np.rint(counts).astype(np.int32).reshape(*x.shape[:-1], -1)

    def encode(self, obs: np.ndarray) -> np.ndarray:
        return self.to_payload(obs).astype(np.float64)

    def host_ops(self) -> int:
        """Arithmetic operations the host spends encoding one observation (counted from the code
        above: normalize and clip 4 per element; rate 3 per channel, population 6 per channel,
        events 2; delta 2 per element for its level and 3 per channel for difference, clip and
        reference)."""
        per_channel = {RATE: 3, POPULATION: 6, DELTA: 3, EVENTS: 2}[self.code]
        return len(self.mean) * (4 + 2 * (self.code == DELTA)) + self.n_inputs * per_channel

    def to_dict(self) -> dict:
        return {"kind": self.code, "mean": list(self.mean), "std": list(self.std), "clip": self.clip,
                "max_events": self.max_events} | ({"neurons": self.neurons} if self.code == POPULATION else {})

    @classmethod
    def from_dict(cls, d: dict) -> "SpikeEncoding":
        from spikeloop.core.errors import ConfigError

        if not isinstance(d, dict) or d.get("kind") not in SPIKE_CODES:
            raise ConfigError(f"spike encoding: expected a table with kind one of {SPIKE_CODES}, got {d!r}")
        unknown = sorted(set(d) - {"kind", "mean", "std", "clip", "max_events", "neurons"})
        if unknown:
            raise ConfigError(f"spike encoding: unknown keys {unknown}")
        for key in ("mean", "std", "clip", "max_events"):
            if key not in d:
                raise ConfigError(f"spike encoding: missing {key!r}")
        return cls(mean=d["mean"], std=d["std"], clip=d["clip"], code=d["kind"], max_events=d["max_events"],
                   **({"neurons": d["neurons"]} if "neurons" in d else {}))

    @classmethod
    def from_normalization(cls, norm: InputEncoding, code: str, max_events: int,
                           neurons: int = 5) -> "SpikeEncoding":
        """The spike code ``code`` over the frozen normalization of ``norm``."""
        return cls(mean=norm.mean, std=norm.std, clip=norm.clip, code=code, max_events=max_events, neurons=neurons)


class EncoderStream:
    """The encoder of one episode: what the host runs on each observation, in order.

    A stateless encoding is passed through; the delta code keeps its reference here, one
    row per environment for a batch of observations. :meth:`reset` starts an episode
    (of every row, or of the rows given).
    """

    def __init__(self, encoding: InputEncoding):
        self.encoding = encoding
        self.reference: np.ndarray | None = None

    def reset(self, rows=None) -> None:
        """A new episode: forget what was sent (of the batch rows ``rows``; all if ``None``)."""
        if rows is None or self.reference is None:
            self.reference = None
        else:
            self.reference[rows] = 0

    def payload(self, obs: np.ndarray) -> np.ndarray:
        """Observation(s) -> what the host sends (the integer payload or event counts)."""
        enc = self.encoding
        if not enc.stateful:
            return enc.to_payload(obs)
        obs = np.asarray(obs)
        ref = self.reference
        if ref is None or ref.shape != obs.shape:
            if ref is not None:
                from spikeloop.core.errors import ConfigError

                raise ConfigError(f"delta code: an observation of shape {obs.shape} in an episode of "
                                  f"shape {ref.shape}; reset the stream between them")
            ref = np.zeros(obs.shape, np.int64)
        counts, self.reference = enc.delta_step(obs, ref)
        return counts

    def encode(self, obs: np.ndarray) -> np.ndarray:
        """Observation(s) -> the real-valued input the network sees (float64)."""
        return self.payload(obs) / self.encoding.scale


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
        if self.atoms is not None and not all(_real(a) and math.isfinite(a) for a in self.atoms):
            raise ConfigError(f"decoding: atoms must be finite numbers, got {list(self.atoms)}")

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

        if d is not None and not isinstance(d, dict):
            raise ConfigError(f"decoding: expected a table of kind, step, action (and atoms), got {d!r}")
        d = dict(d or {})
        unknown = sorted(set(d) - {"kind", "step", "action", "atoms"})
        if unknown:
            raise ConfigError(f"decoding: unknown keys {unknown}")
        atoms = d.get("atoms")
        try:
            return cls(kind=str(d.get("kind", READOUT_VOLTAGE)), step=str(d.get("step", "last")),
                       action=str(d.get("action", "argmax")),
                       atoms=None if atoms is None else tuple(float(a) if _real(a) else a for a in atoms))
        except (TypeError, ValueError) as e:
            raise ConfigError(f"decoding: malformed record {d}: {e}") from e


def greedy_action(values: np.ndarray) -> np.ndarray | int:
    """Argmax on the host (first index on ties, as numpy and torch both do)."""
    values = np.asarray(values)
    return int(np.argmax(values)) if values.ndim == 1 else np.argmax(values, axis=-1)
