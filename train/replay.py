"""A uniform experience-replay buffer of flat observations and discrete actions."""
from __future__ import annotations

import numpy as np


class ReplayBuffer:
    """Ring buffer of ``(obs, action, reward, next_obs, done)``; samples with the caller's rng."""

    def __init__(self, capacity: int, obs_dim: int):
        self.capacity = int(capacity)
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.action = np.zeros(capacity, np.int64)
        self.reward = np.zeros(capacity, np.float32)
        self.done = np.zeros(capacity, np.float32)
        self.size = self.ptr = 0

    def add(self, obs, action: int, reward: float, next_obs, done: bool) -> None:
        """Store one transition; ``done`` is termination only (a truncation is not terminal)."""
        i = self.ptr
        self.obs[i], self.next_obs[i], self.action[i] = obs, next_obs, action
        self.reward[i], self.done[i] = reward, float(done)
        self.ptr, self.size = (i + 1) % self.capacity, min(self.size + 1, self.capacity)

    def sample(self, rng: np.random.Generator, batch_size: int) -> np.ndarray:
        """Indices of ``batch_size`` transitions drawn uniformly with replacement."""
        return rng.integers(0, self.size, batch_size)
