"""Gymnasium environments, with one clear error for an id that does not exist."""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from spikeloop.core.errors import ConfigError


DISCRETE_EXAMPLES = ("CartPole-v1", "Acrobot-v1", "MountainCar-v0", "LunarLander-v3")
"""gymnasium ids whose spaces fit: a flat Box observation and Discrete actions"""


def registered_id(env_id) -> str:
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
    thr = gym.spec(registered_id(env_id)).reward_threshold
    return None if thr is None else float(thr)


def _extra(env_id: str) -> str | None:
    """The gymnasium extra that provides ``env_id`` ('box2d', 'mujoco', ...), from its entry point."""
    entry = gym.spec(env_id).entry_point
    module = entry.split(":")[0] if isinstance(entry, str) else getattr(entry, "__module__", "")
    parts = module.split(".")
    if parts[:2] == ["gymnasium", "envs"] and len(parts) > 2 and parts[2] not in ("classic_control", "toy_text"):
        return parts[2]
    return None


def make_env(env_id: str, seed: int | None = None) -> gym.Env:
    """Create ``env_id``; it must have a flat Box observation and Discrete actions."""
    registered_id(env_id)
    try:
        env = gym.make(env_id)
    except gym.error.DependencyNotInstalled as e:
        extra = _extra(env_id)
        fix = f'pip install "gymnasium[{extra}]"' if extra else "install the package that provides it"
        raise ConfigError(f"{env_id} needs a package that is not installed ({e}); {fix}") from None
    except gym.error.Error as e:
        known = sorted(k for k in gym.registry if "/" not in k)[:12]
        raise ConfigError(f"cannot create environment {env_id!r} ({e}); "
                          f"known ids include {', '.join(known)}, ...") from e
    except (ImportError, TypeError, ValueError, AttributeError, RuntimeError) as e:  # the env's own constructor
        raise ConfigError(f"cannot create environment {env_id!r}: {type(e).__name__}: {e}") from None
    if not isinstance(env.action_space, gym.spaces.Discrete):
        env.close()
        raise ConfigError(f"{env_id}: its action space is {env.action_space}; spikeloop's policies choose one "
                          f"of n actions, so they need a Discrete action space (as {', '.join(DISCRETE_EXAMPLES)} "
                          "have)")
    if not isinstance(env.observation_space, gym.spaces.Box) or len(env.observation_space.shape) != 1:
        env.close()
        shape = getattr(env.observation_space, "shape", None)
        hint = (" (an image needs a convolutional policy, which spikeloop's training does not build yet; "
                "flattening it with gymnasium.wrappers.FlattenObservation would fit an MLP)"
                if shape is not None and len(shape) >= 2 else "")
        raise ConfigError(f"{env_id}: its observation space is {env.observation_space}; spikeloop's MLP "
                          f"policies take one flat Box vector (shape (n,)){hint}")
    if seed is not None:
        check_seed(seed)
        env.reset(seed=seed)
        env.action_space.seed(seed)
    return env


def check_seed(seed, what: str = "seed") -> int:
    """A reset seed: a non-negative integer (gymnasium and numpy refuse others)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"{what} must be a non-negative integer, got {seed!r}")
    return int(seed)


def env_spaces(env_id: str) -> tuple[int, int]:
    """``(observation size, number of actions)`` of ``env_id``, checked as :func:`make_env` does."""
    env = make_env(env_id)
    try:
        return int(env.observation_space.shape[0]), int(env.action_space.n)
    finally:
        env.close()


def check_env_fits(env_id: str, obs_size: int, n_values: int, source: str) -> None:
    """The environment ``env_id`` can drive a policy of ``obs_size`` inputs and ``n_values`` actions."""
    obs, actions = env_spaces(env_id)
    if obs != obs_size:
        raise ConfigError(f"{source}: {env_id} gives observations of {obs} values, but the policy's input "
                          f"takes {obs_size}; pass the environment it was trained on (--env)")
    if actions != n_values:
        raise ConfigError(f"{source}: {env_id} has {actions} actions, but the policy's output gives "
                          f"{n_values} values (one per action)")


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
