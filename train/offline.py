"""Learning from demonstrations: recorded expert trajectories and behaviour cloning of a spiking policy.

**The demonstrations file** (``spikeloop collect``) is a numpy ``.npz`` archive read with
``allow_pickle=False`` (nothing in it can execute). Its arrays, one row per environment step:

========================  =========  ==========================================================
``observations``          float64    ``(N, obs)``: what the expert saw
``actions``               int64      ``(N,)``: what it did
``rewards``               float64    ``(N,)``: what the step paid
``episode``               int64      ``(N,)``: the episode's index, 0 ...
``step``                  int64      ``(N,)``: the step within the episode, 0 ...
``returns_to_go``         float64    ``(N,)``: the undiscounted rewards from this step to the end
``meta``                  str        one JSON object: ``format`` (``spikeloop-demos/1``), ``env_id``,
                                     ``source`` (the expert), ``episodes``, ``seed``, ``returns``
========================  =========  ==========================================================

Episode ``i`` is reset with ``seed + i``; the expert acts greedily, or with ``epsilon`` (one value per
episode, cycled) takes a uniformly random action with that probability (a generator seeded
with ``seed``); ``meta`` then holds ``epsilon``.

Behaviour cloning from these files is the agent ``bc`` (``spikeloop.train.agents.bc``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from spikeloop.core.errors import ConfigError

FORMAT = "spikeloop-demos/1"
ARRAYS = {"observations": np.float64, "actions": np.int64, "rewards": np.float64, "episode": np.int64,
          "step": np.int64, "returns_to_go": np.float64}


@dataclass
class Demos:
    """Recorded trajectories (see the module docstring for the file format)."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    episode: np.ndarray
    step: np.ndarray
    returns_to_go: np.ndarray
    meta: dict

    @property
    def returns(self) -> list[float]:
        return [float(self.rewards[self.episode == e].sum()) for e in np.unique(self.episode)]


def collect(expert: "Expert", env_id: str, episodes: int, seed: int, source: str,
            progress: bool = True, epsilon: list[float] | None = None) -> Demos:
    """Run ``expert`` (observation -> action) for ``episodes`` episodes, greedily or, episode ``i``,
    with a random action at probability ``epsilon[i % len(epsilon)]``; the trajectories."""
    from spikeloop.core.envs import make_env

    epsilon = list(epsilon or [0.0])
    rng = np.random.default_rng(seed)
    cols: dict[str, list] = {k: [] for k in ARRAYS if k != "returns_to_go"}
    rtg = []
    for ep in tqdm(range(episodes), desc=f"collect {env_id}", unit="ep", disable=not progress):
        env = make_env(env_id)
        obs, _ = env.reset(seed=seed + ep)
        expert.begin_episode()
        eps = epsilon[ep % len(epsilon)]
        done, t, rewards = False, 0, []
        while not done:
            a = int(expert.act(obs))  # the expert sees every observation (a stateful encoder stays in step)
            if eps and rng.random() < eps:
                a = int(rng.integers(expert.n_actions))
            cols["observations"].append(np.asarray(obs, np.float64).reshape(-1))
            cols["actions"].append(a)
            obs, r, term, trunc, _ = env.step(a)
            rewards.append(float(r))
            cols["episode"].append(ep)
            cols["step"].append(t)
            t, done = t + 1, term or trunc
        env.close()
        cols["rewards"] += rewards
        rtg += list(np.cumsum(rewards[::-1])[::-1])
    arrays = {k: np.asarray(v, ARRAYS[k]) for k, v in cols.items()} | {"returns_to_go": np.asarray(rtg, np.float64)}
    demos = Demos(**arrays, meta={"format": FORMAT, "env_id": env_id, "source": source, "episodes": episodes,
                                  "seed": seed} | ({"epsilon": epsilon} if any(epsilon) else {}))
    demos.meta["returns"] = demos.returns
    return demos


def demos_for(path: str, env_id: str = "") -> tuple[Demos, str, int, int]:
    """An offline agent's demonstrations, checked against its environment (``env_id``, or the file's own)
    before training starts: ``(demos, env_id, observation size, number of actions)``."""
    from spikeloop.core.envs import env_spaces, registered_id

    demos = load_demos(path)
    env_id = env_id or demos.meta.get("env_id")
    if not env_id:
        raise ConfigError(f"{path}: names no environment; pass --env-id")
    registered_id(env_id)
    n_obs, n_actions = env_spaces(env_id)
    if demos.observations.shape[1] != n_obs or demos.actions.max() >= n_actions:
        raise ConfigError(f"{path}: observations of {demos.observations.shape[1]} values and actions up to "
                          f"{int(demos.actions.max())} do not fit {env_id} ({n_obs} values, {n_actions} actions)")
    return demos, env_id, n_obs, n_actions


def save_demos(path: str | Path, demos: Demos) -> None:
    """Write ``demos`` as an ``.npz`` archive atomically (no pickled object in it)."""
    from spikeloop.core.artifacts import atomic_path

    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as f:
        np.savez(f, **{k: getattr(demos, k) for k in ARRAYS}, meta=np.array(json.dumps(demos.meta)))


def load_demos(path: str | Path) -> Demos:
    """Read and check a demonstrations file; one error naming the file and the fault."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such demonstrations file (write one with `spikeloop collect`)")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as e:
        raise ConfigError(f"{path}: not a demonstrations archive (.npz without pickled objects): {e}") from None
    missing = [k for k in (*ARRAYS, "meta") if k not in data]
    if missing:
        raise ConfigError(f"{path}: missing array(s) {missing} of format {FORMAT}")
    try:
        meta = json.loads(str(data["meta"]))
    except ValueError as e:
        raise ConfigError(f"{path}: 'meta' is not one JSON object: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ConfigError(f"{path}: format {meta.get('format') if isinstance(meta, dict) else meta!r}, "
                          f"expected {FORMAT}")
    n = len(data["actions"])
    for k, dt in ARRAYS.items():
        a = data[k]
        if a.dtype != dt or (k == "observations" and (a.ndim != 2 or a.shape[0] != n)) or \
                (k != "observations" and a.shape != (n,)):
            raise ConfigError(f"{path}: array {k!r} must be {np.dtype(dt).name} "
                              f"{'(N, obs)' if k == 'observations' else '(N,)'} with N = {n}, got "
                              f"{a.dtype.name} {a.shape}")
        if dt == np.float64 and not np.all(np.isfinite(a)):
            raise ConfigError(f"{path}: array {k!r} holds NaN or inf")
    if n == 0:
        raise ConfigError(f"{path}: holds no steps")
    if data["actions"].min() < 0:
        raise ConfigError(f"{path}: array 'actions' holds a negative action {int(data['actions'].min())}")
    return Demos(**{k: data[k] for k in ARRAYS}, meta=meta)


@dataclass
class Expert:
    """A greedy actor and what it was trained on."""

    act: Callable[[np.ndarray], int]
    env_id: str | None
    n_obs: int
    n_actions: int
    begin_episode: Callable[[], None] = lambda: None
    """called at every episode start (a stateful encoder forgets what it sent)"""


def expert_actor(source: Path) -> Expert:
    """The greedy actor of a spikeloop checkpoint (any agent's policy, or a dense one) or of a
    Stable-Baselines3 DQN ``.zip`` (read without unpickling)."""
    from spikeloop.train.convert import read_sb3_dqn

    source = Path(source)
    if not source.is_file():
        raise ConfigError(f"{source}: no such expert (a spikeloop policy.safetensors or a Stable-Baselines3 DQN "
                          ".zip)")
    if source.suffix == ".zip":
        dense = read_sb3_dqn(source)
        return Expert(lambda obs: int(np.argmax(dense.q(np.asarray(obs)[None])[0])), None, dense.n_in, dense.n_out)
    from spikeloop.train.checkpoint import load_policy
    from spikeloop.train.policy import TorchPolicy

    policy, _ = load_policy(source)
    model = TorchPolicy(policy)
    n_obs = len(policy.encoding.mean)
    n_actions = int(np.asarray(model.decide(np.zeros(n_obs))).size)
    return Expert(lambda obs: int(np.argmax(model.decide(obs))),
                  policy.provenance.env_id if policy.provenance else None, n_obs, n_actions, model.begin_episode)
