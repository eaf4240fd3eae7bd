"""Gymnasium environments, with one clear error for an id that does not exist."""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from spikeloop.core.errors import ConfigError


def make_env(env_id: str, seed: int | None = None) -> gym.Env:
    """Create ``env_id``; it must have a flat Box observation and Discrete actions."""
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
