"""Gymnasium environments, with one clear error for an id that does not exist.

Every environment spikeloop creates gives a flat float observation: a vector stays as
it is, and an image (a 2-D or 3-D Box) is laid out channels first, ``(C, H, W)``, and
flattened, the layout of a convolution's input, so that the replay buffer, the frozen
encoder and every backend see one vector per observation. :func:`observation_shape`
gives the shape the policy's first layer takes.
"""
from __future__ import annotations

import importlib.util

import gymnasium as gym
import numpy as np

from spikeloop.core.errors import ConfigError
from spikeloop.core.tasks import register_tasks


DISCRETE_EXAMPLES = ("CartPole-v1", "Acrobot-v1", "MountainCar-v0", "LunarLander-v3", "MinAtar/Breakout-v1")
"""gymnasium ids whose spaces fit: a Box observation (a vector or an image) and Discrete actions"""

MINATAR_GAMES = ("asterix", "breakout", "freeway", "seaquest", "space_invaders")
"""MinAtar (Young & Tian 2019) games, registered as ``MinAtar/<Game>-v1`` when the package is installed"""


def _register_minatar() -> None:
    """Register MinAtar's games with gymnasium if the (GPL-3.0, never required) package is installed.

    gymnasium 1.x loads no plugins, and MinAtar registers its ids only once imported; it is
    not imported here (it stays off spikeloop's path unless a MinAtar id is made), only
    found, and its ids name its own entry point.
    """
    if "MinAtar/Breakout-v1" in gym.registry or importlib.util.find_spec("minatar") is None:
        return
    for game in MINATAR_GAMES:
        name = "".join(w.capitalize() for w in game.split("_"))
        gym.register(id=f"MinAtar/{name}-v1", entry_point=_minatar_env, max_episode_steps=MINATAR_MAX_STEPS,
                     kwargs=dict(game=game, use_minimal_action_set=True))


MINATAR_MAX_STEPS = 10_000
"""spikeloop's own bound on a MinAtar episode (MinAtar sets none, and a good Breakout agent
can play on for ever); each game's own rules end an episode well before it for a random policy"""


def _minatar_env(**kwargs) -> gym.Env:
    """MinAtar's gymnasium environment, imported without its import-time warnings about the
    rendering packages (matplotlib, seaborn) it does not need to play: ``logging.warning``
    would also install a handler on the caller's root logger."""
    import logging

    root, null, level = logging.getLogger(), logging.NullHandler(), logging.root.manager.disable
    root.addHandler(null)
    logging.disable(logging.WARNING)
    try:
        from minatar.gym import BaseEnv
    finally:
        logging.disable(level)
        root.removeHandler(null)
    return BaseEnv(**kwargs)


_register_minatar()
register_tasks()


class ChannelsFirstFlat(gym.ObservationWrapper):
    """An image observation as one float32 vector, laid out ``(C, H, W)``.

    ``image_shape`` is that ``(C, H, W)``. A 3-D Box is channels-last (``H, W, C``, as
    MinAtar's) when its last axis is the shortest of its first and last axes, and
    channels-first otherwise (as a frame stack's ``4, 84, 84``); a 2-D Box is one channel.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        shape = tuple(env.observation_space.shape)
        self.channels_last = len(shape) == 3 and shape[-1] < shape[0]
        self.image_shape = ((1, *shape) if len(shape) == 2 else
                            (shape[2], shape[0], shape[1]) if self.channels_last else shape)
        low = self._flat(env.observation_space.low)
        high = self._flat(env.observation_space.high)
        self.observation_space = gym.spaces.Box(low, high, (low.size,), np.float32)

    def _flat(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        return (np.moveaxis(x, -1, 0) if self.channels_last else x).reshape(-1)

    def observation(self, observation):
        return self._flat(observation)


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
    """Create ``env_id``; it must have a Box observation (a vector or an image) and Discrete actions.

    An image comes out flattened channels-first (:class:`ChannelsFirstFlat`).
    """
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
    space = env.observation_space
    if not isinstance(space, gym.spaces.Box) or not 1 <= len(space.shape) <= 3:
        env.close()
        shape = getattr(space, "shape", None)
        hint = (" (a Dict or Tuple space can be flattened with gymnasium.wrappers.FlattenObservation)"
                if isinstance(space, (gym.spaces.Dict, gym.spaces.Tuple)) else
                " (a 4-D Box, such as stacked RGB frames, can be merged into (C, H, W) first)"
                if shape is not None and len(shape) > 3 else "")
        raise ConfigError(f"{env_id}: its observation space is {space}; spikeloop's policies take a Box of a "
                          f"vector (n,), for an MLP, or an image (H, W), (H, W, C) or (C, H, W), for a "
                          f"convolutional policy{hint}")
    if len(space.shape) > 1:
        env = ChannelsFirstFlat(env)
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


def observation_shape(env: gym.Env) -> tuple[int, ...]:
    """The shape a policy's first layer takes from ``env`` (made by :func:`make_env`):
    ``(n,)`` for a vector, ``(C, H, W)`` for an image."""
    shape = getattr(env, "image_shape", None)
    return tuple(int(n) for n in shape) if shape is not None else (int(env.observation_space.shape[0]),)


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
