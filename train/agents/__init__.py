"""Agents: one readable file per algorithm, registered by name.

Each agent module defines a config dataclass (every field documented by the string
under it; those docstrings become the CLI's help) and a ``train(cfg, progress)``
function that returns a :class:`TrainResult` holding a
:class:`~spikeloop.train.policy.Policy`. Register it with :func:`register_agent`;
``spikeloop train --agent NAME`` and the demo find it in :data:`AGENTS`.

To add an agent: write ``train/agents/<name>.py`` with its config and training loop,
decorate the train function with ``@register_agent("<name>", <Config>)``, and add the
module to :data:`AGENT_MODULES`.
"""
from __future__ import annotations

import dataclasses
import importlib
import math
import typing
from dataclasses import dataclass
from typing import Callable

from spikeloop.core.errors import ConfigError


@dataclass
class TrainResult:
    """What every agent's training returns: the policy and how training went."""

    policy: object
    """the trained :class:`~spikeloop.train.policy.Policy` (the best one seen)"""
    best_eval: float
    steps: int
    seconds: float
    history: list[dict]
    log: list[dict] = dataclasses.field(default_factory=list)
    """one row per episode (losses, learning rate, entropy, firing rates, gradient norms) for agents that
    log them: written as ``training.csv`` and plotted"""


@dataclass(frozen=True)
class Agent:
    name: str
    config: type
    train: Callable
    undeployable: str | None = None
    """why its policy does not export to NIR (``None``: it does); commands that deploy refuse it with this"""

    @property
    def deployable(self) -> bool:
        return self.undeployable is None


class FieldRules:
    """The checks agent configs share; each failure is one error naming the field and its value."""

    def __init__(self, cfg):
        self.cfg = cfg

    def bad(self, name: str, rule: str):
        raise ConfigError(f"config field {name!r} {rule}, got {getattr(self.cfg, name)!r}")

    def finite(self, name: str) -> float:
        v = getattr(self.cfg, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            self.bad(name, "must be a finite number")
        return v

    def integer(self, name: str, lo: int, hi: int | None = None) -> int:
        v = getattr(self.cfg, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi is not None and v > hi):
            self.bad(name, f"must be an integer {'>= ' + str(lo) if hi is None else f'in [{lo}, {hi}]'}")
        return v

    def boolean(self, *names: str) -> None:
        for name in names:
            if not isinstance(getattr(self.cfg, name), bool):
                self.bad(name, "must be true or false")

    def environment(self) -> None:
        """``env_id`` names a registered gymnasium environment (never imported on trust)."""
        from spikeloop.core.envs import registered_id

        if not isinstance(self.cfg.env_id, str):
            self.bad("env_id", "must be a gymnasium environment id")
        registered_id(self.cfg.env_id)

    def hidden(self) -> None:
        """``hidden`` lists positive layer sizes within the parameter limit."""
        from spikeloop.train.networks import MAX_PARAMETERS

        hidden = self.cfg.hidden
        if not isinstance(hidden, list) or not hidden or not all(
                isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in hidden):
            raise ConfigError(f"config field 'hidden' must list positive layer sizes, got {hidden!r}")
        inner = sum(a * b + b for a, b in zip(hidden[:-1], hidden[1:]))
        if inner > MAX_PARAMETERS:
            raise ConfigError(f"config field 'hidden' {hidden} declares {inner:,} parameters between the "
                              f"hidden layers alone, more than the limit {MAX_PARAMETERS:,}")

    def neuron(self) -> None:
        """The neuron options every spiking agent has (decays, threshold, reset, surrogate)."""
        from spikeloop.core.neuron import RESET_MODES
        from spikeloop.train.graph import SURROGATES

        for name in ("dv_hidden", "dv_readout"):
            if not 0 < self.finite(name) <= 1:
                self.bad(name, "must lie in (0, 1] (a voltage decay per step)")
        for name in ("du_hidden", "du_readout"):
            if not 0 < self.finite(name) <= 1:
                self.bad(name, "must lie in (0, 1] (a current decay per step; 1 is no current state)")
        if self.finite("vth") <= 0:
            self.bad("vth", "must be positive")
        if self.cfg.reset not in RESET_MODES:
            self.bad("reset", f"must be one of {', '.join(RESET_MODES)}")
        if self.cfg.surrogate not in SURROGATES:
            self.bad("surrogate", f"must be one of {', '.join(SURROGATES)}")
        if self.finite("surrogate_slope") < 0:
            self.bad("surrogate_slope", "must be positive (or 0 for the surrogate's usual slope)")

    def sparsity(self) -> None:
        """The sparsity pressure's weight and measure (spikeloop.train.sparsity)."""
        from spikeloop.train.sparsity import MEASURES

        if self.finite("sparsity_penalty") < 0:
            self.bad("sparsity_penalty", "must be 0 (off) or positive")
        if self.cfg.sparsity_measure not in MEASURES:
            self.bad("sparsity_measure", f"must be one of {', '.join(MEASURES)}")

    def encoding(self) -> None:
        """The frozen input encoding's options, the threads and the wall-clock budget."""
        from spikeloop.core.coding import PAYLOAD_BITS

        if self.finite("input_clip") <= 0:
            self.bad("input_clip", "must be positive")
        self.integer("input_bits", *PAYLOAD_BITS)
        if hasattr(self.cfg, "norm_steps"):  # agents that freeze the normalization from random-policy steps
            self.integer("norm_steps", 1)
        self.integer("threads", 1)
        if self.finite("max_seconds") < 0:
            self.bad("max_seconds", "must be 0 (no budget) or a positive number of seconds")


def fit_encoding(cfg, obs_shape: tuple[int, ...]):
    """The frozen input encoding of an agent config, fitted on random-policy observations: a vector
    standardised and clipped to ``input_clip``, an image scaled by each channel's peak."""
    from spikeloop.core.coding import InputEncoding
    from spikeloop.core.envs import random_observations

    samples = random_observations(cfg.env_id, cfg.norm_steps, cfg.seed + 10_000)
    if len(obs_shape) == 3:
        return InputEncoding.fit_image(samples, obs_shape, bits=cfg.input_bits)
    return InputEncoding.fit(samples, clip=cfg.input_clip, bits=cfg.input_bits)


def neuron_options(cfg) -> dict:
    """The spiking network builder's neuron arguments from an agent config's neuron fields (decays on
    Loihi's 12-bit grid when the config trains on the fixed-point grid)."""
    from spikeloop.train.graph import DEFAULT_SLOPES
    from spikeloop.train.networks import on_decay_grid

    grid = cfg.fake_quant
    return dict(du=on_decay_grid(cfg.du_hidden, grid), dv=on_decay_grid(cfg.dv_hidden, grid), vth=cfg.vth,
                readout_du=on_decay_grid(cfg.du_readout, grid), readout_dv=on_decay_grid(cfg.dv_readout, grid),
                reset=cfg.reset, fake_quant=cfg.fake_quant, surrogate=cfg.surrogate,
                surrogate_alpha=cfg.surrogate_slope or DEFAULT_SLOPES[cfg.surrogate])


AGENTS: dict[str, Agent] = {}
AGENT_MODULES = ("spikeloop.train.agents.dqn", "spikeloop.train.agents.reinforce", "spikeloop.train.agents.ppo",
                 "spikeloop.train.agents.bc", "spikeloop.train.agents.sdt")
"""the modules that register the built-in agents (a fixed list: nothing is imported by a name read from a file)"""


def register_agent(name: str, config: type, undeployable: str | None = None):
    """Register ``train(cfg, progress) -> TrainResult`` under ``name`` with its config class."""
    def register(fn: Callable) -> Callable:
        AGENTS[name] = Agent(name, config, fn, undeployable)
        return fn
    return register


def get_agent(name: str) -> Agent:
    """The registered agent ``name``, or one error listing the known ones."""
    for module in AGENT_MODULES:
        importlib.import_module(module)
    if name not in AGENTS:
        raise ConfigError(f"unknown agent {name!r}; known agents: {', '.join(sorted(AGENTS))}")
    return AGENTS[name]


def agent_names() -> list[str]:
    """Names of the built-in agents."""
    for module in AGENT_MODULES:
        importlib.import_module(module)
    return sorted(AGENTS)


def _coerce(name: str, tp, value):
    """``value`` read from TOML as the field's declared type; one error naming the field."""
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        (inner,) = typing.get_args(tp)[:1] or (object,)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config field {name!r} must be a list, got {value!r}")
        return [_coerce(name, inner, v) for v in value]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config field {name!r} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config field {name!r} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"config field {name!r} must be a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"config field {name!r} must be a string, got {value!r}")
        return value
    return value


def config_from_dict(cls: type, d: dict):
    """Build and validate an agent config from a dict (a ``config.toml`` table)."""
    if not isinstance(d, dict):
        raise ConfigError(f"{cls.__name__}: expected a table of options, got {type(d).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__.removesuffix('Config')} config keys {unknown}; "
                          f"known: {sorted(names)}")
    kw = {k: _coerce(k, hints[k], v) for k, v in d.items()}
    cfg = cls(**kw)
    return cfg.validate() if hasattr(cfg, "validate") else cfg


__all__ = ["AGENTS", "Agent", "FieldRules", "TrainResult", "agent_names", "config_from_dict", "get_agent",
           "fit_encoding", "neuron_options", "register_agent"]
