"""Gymnasium environments, with one clear error for an id that does not exist."""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from spikeloop.core.errors import ConfigError


def _registered(env_id) -> str:
    """``env_id`` if gymnasium has registered it; never import a module an id names.

    ``gym.make("module:Env-v0")`` imports ``module`` first; an id read from a file must
    not be able to run code, so only ids already in the registry are accepted.
    """
    if not isinstance(env_id, str) or ":" in env_id or env_id not in gym.registry:
        known = sorted(k for k in gym.registry if "/" not in k)[:12]
        hint = (" (a 'module:' prefix is never imported)" if isinstance(env_id, str) and ":" in env_id else "")
        raise ConfigError(f"unknown environment id {env_id!r}{hint}; known ids include {', '.join(known)}, ...")
    return env_id


def reward_threshold(env_id: str) -> float | None:
    """The return at which gymnasium's registration calls ``env_id`` solved (None if it sets none)."""
    thr = gym.spec(_registered(env_id)).reward_threshold
    return None if thr is None else float(thr)


def make_env(env_id: str, seed: int | None = None) -> gym.Env:
    """Create ``env_id``; it must have a flat Box observation and Discrete actions."""
    _registered(env_id)
    try:
        env = gym.make(env_id)
    except gym.error.Error as e:
        known = sorted(k for k in gym.registry if "/" not in k)[:12]
        raise ConfigError(f"unknown environment id {env_id!r} ({e}); "
                          f"known ids include {', '.join(known)}, ...") from e
    if not isinstance(env.action_space, gym.spaces.Discrete):
        env.close()
        raise ConfigError(f"{env_id}: spikeloop's DQN needs a Discrete action space, "
                          f"got {env.action_space}")
    if not isinstance(env.observation_space, gym.spaces.Box) or len(env.observation_space.shape) != 1:
        env.close()
        raise ConfigError(f"{env_id}: needs a flat Box observation space, got {env.observation_space}")
    if seed is not None:
        env.reset(seed=seed)
        env.action_space.seed(seed)
    return env


def random_observations(env_id: str, steps: int, seed: int) -> np.ndarray:
    """Observations of a uniformly random policy, to freeze an input normalization."""
    env = make_env(env_id, seed)
    obs, _ = env.reset(seed=seed)
    out = []
    for _ in range(steps):
        out.append(obs)
        obs, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            obs, _ = env.reset()
    env.close()
    return np.asarray(out, dtype=np.float64)
