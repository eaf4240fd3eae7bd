"""The policy record every agent returns, and the torch policy as a backend.

A :class:`Policy` is what spikeloop deploys: the network (a
:class:`~spikeloop.train.graph.SpikingGraph`), the decision window ``T``, the frozen
input encoding, the typed output decoding and where it came from. Checkpoints,
export, the closed-loop reference and reports all take this one record.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from spikeloop.core.coding import ATOMS, SPIKE_COUNT, Decoding, EncoderStream, InputEncoding
from spikeloop.core.errors import ConfigError
from spikeloop.train.graph import SpikingGraph


@dataclass(frozen=True)
class Provenance:
    """Where a policy came from: the agent, its environment, its full config and seed."""

    agent: str
    env_id: str
    seed: int
    config: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Provenance":
        try:
            return cls(agent=str(d["agent"]), env_id=str(d["env_id"]), seed=int(d["seed"]),
                       config=dict(d.get("config") or {}))
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(f"malformed provenance record {d!r}: {e}") from e


def window_readout(decoding: Decoding, y: torch.Tensor) -> torch.Tensor:
    """The output window reduced to the readout (``(T, batch, n) -> (batch, n)``): the voltage
    at the last step or its mean, or the spike count; for atoms these are the logits."""
    if decoding.kind == SPIKE_COUNT:
        return y.sum(dim=0)
    return y[-1] if decoding.step == "last" else y.mean(dim=0)


def decode_window(decoding: Decoding, y: torch.Tensor) -> torch.Tensor:
    """Torch twin of :meth:`Decoding.reduce` (differentiable): ``(T, batch, n) -> (batch, actions)``."""
    out = window_readout(decoding, y)
    if decoding.kind == ATOMS:
        z = torch.as_tensor(decoding.atoms, dtype=out.dtype)
        p = torch.softmax(out.reshape(*out.shape[:-1], -1, z.numel()), dim=-1)
        out = p @ z
    return out


@dataclass
class Policy:
    """A deployable spiking policy: network, window, encoding, decoding, provenance."""

    network: SpikingGraph
    T: int
    encoding: InputEncoding
    decoding: Decoding = field(default_factory=Decoding)
    provenance: Provenance | None = None

    def __post_init__(self):
        if not isinstance(self.network, SpikingGraph):
            raise ConfigError(f"a Policy's network is a SpikingGraph, got {type(self.network).__name__}")
        if isinstance(self.T, bool) or not isinstance(self.T, int) or self.T < 1:
            raise ConfigError(f"the decision window T must be a positive integer, got {self.T!r}")
        if self.encoding.n_inputs != int(np.prod(self.network.input_shape)):
            raise ConfigError(f"the encoding has {self.encoding.n_inputs} inputs, the network "
                              f"{self.network.input_shape}")

    @property
    def dtype(self) -> torch.dtype:
        return next(self.network.parameters()).dtype

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Per-action values of encoded inputs ``x`` (batch, n_in), differentiable."""
        return decode_window(self.decoding, self.network.window(x, self.T))

    def values(self, obs: np.ndarray, stream: EncoderStream | None = None) -> np.ndarray:
        """Per-action values (float64) of raw observation(s), through the frozen encoder (or
        ``stream``, the episode's encoder, which a stateful code needs)."""
        obs = np.asarray(obs)
        single = obs.ndim == 1
        encode = (stream or self.encoding).encode
        x = torch.as_tensor(encode(obs[None] if single else obs), dtype=self.dtype)
        with torch.no_grad():
            q = self(x).double().numpy()
        return q[0] if single else q


class TorchPolicy:
    """The trained torch policy as a :class:`~spikeloop.core.backend.Backend` (float, uncounted)."""

    name = "torch"
    precision = "float"
    THREADS = 1
    """intra-op threads while started: a batch-1 window is too small to split, and torch's
    default (every core) made decisions about 30x slower on a 2-core machine"""

    def __init__(self, policy: Policy):
        self.policy = policy
        self.stream = policy.encoding.stream()
        self._threads: list[int] = []

    def start(self) -> "TorchPolicy":
        import torch

        self._threads.append(torch.get_num_threads())
        torch.set_num_threads(self.THREADS)
        return self

    def reset(self) -> None:
        """Nothing to reset: every decision window starts from zero state."""

    def begin_episode(self) -> None:
        """A new episode: a stateful encoder (the delta code) starts from nothing sent."""
        self.stream.reset()

    def decide(self, obs: np.ndarray) -> np.ndarray:
        return self.policy.values(obs, self.stream)

    def counts(self):
        return None

    def close(self) -> None:
        import torch

        if self._threads:  # the caller's setting back
            torch.set_num_threads(self._threads.pop())

    def __enter__(self) -> "TorchPolicy":
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()
