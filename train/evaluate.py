"""Greedy evaluation of a policy in torch, used during training to keep the best one."""
from __future__ import annotations

import numpy as np
import torch

from spikeloop.core.coding import greedy_action
from spikeloop.core.envs import make_env


def evaluate_torch(policy, env_id: str, episodes: int, seed: int) -> list[float]:
    """Greedy returns of ``episodes`` episodes (episode ``i`` reset with ``seed + i``).

    The episodes run in lockstep with one batched forward pass per step.
    ``policy`` is a :class:`~spikeloop.train.policy.Policy`.
    """
    envs = [make_env(env_id) for _ in range(episodes)]
    obs = np.stack([e.reset(seed=seed + i)[0] for i, e in enumerate(envs)])
    returns = np.zeros(episodes)
    alive = np.ones(episodes, bool)
    stream = policy.encoding.stream()  # every row starts its episode together
    with torch.no_grad():
        while alive.any():
            idx = np.flatnonzero(alive)
            x = torch.as_tensor(stream.encode(obs)[idx], dtype=policy.dtype)
            actions = greedy_action(policy(x).numpy())
            for j, a in zip(idx, actions):
                o, r, term, trunc, _ = envs[j].step(int(a))
                obs[j] = o
                returns[j] += r
                if term or trunc:
                    alive[j] = False
    for e in envs:
        e.close()
    return returns.tolist()
