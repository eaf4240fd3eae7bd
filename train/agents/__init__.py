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


@dataclass(frozen=True)
class Agent:
    name: str
    config: type
    train: Callable


AGENTS: dict[str, Agent] = {}
AGENT_MODULES = ("spikeloop.train.agents.dqn",)
"""the modules that register the built-in agents (a fixed list: nothing is imported by a name read from a file)"""


def register_agent(name: str, config: type):
    """Register ``train(cfg, progress) -> TrainResult`` under ``name`` with its config class."""
    def register(fn: Callable) -> Callable:
        AGENTS[name] = Agent(name, config, fn)
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


__all__ = ["AGENTS", "Agent", "TrainResult", "agent_names", "config_from_dict", "get_agent", "register_agent"]
