"""Experience replay: a uniform ring buffer, a prioritized one, and n-step returns.

Every transition carries its own discount ``gamma**k`` (``k`` the steps it spans), so a
learner forms ``r + discount * (1 - done) * Q(next)`` the same way for 1-step and n-step
transitions. Sampling uses the caller's numpy generator: the same seed draws the same batches.
"""
from __future__ import annotations

from collections import deque

import numpy as np


class ReplayBuffer:
    """Ring buffer of ``(obs, action, reward, next_obs, done, discount)``; uniform sampling."""

    def __init__(self, capacity: int, obs_dim: int):
        self.capacity = int(capacity)
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.action = np.zeros(capacity, np.int64)
        self.reward = np.zeros(capacity, np.float32)
        self.done = np.zeros(capacity, np.float32)
        self.discount = np.zeros(capacity, np.float32)
        self.size = self.ptr = 0

    def add(self, obs, action: int, reward: float, next_obs, done: bool, discount: float) -> int:
        """Store one transition and return its slot; ``done`` is termination only (a truncation
        is not terminal: its next state is bootstrapped)."""
        i = self.ptr
        self.obs[i], self.next_obs[i], self.action[i] = obs, next_obs, action
        self.reward[i], self.done[i], self.discount[i] = reward, float(done), discount
        self.ptr, self.size = (i + 1) % self.capacity, min(self.size + 1, self.capacity)
        return i

    def sample(self, rng: np.random.Generator, batch_size: int, beta: float = 1.0) -> tuple[np.ndarray, None]:
        """``(indices, None)``: ``batch_size`` transitions drawn uniformly with replacement
        (no importance weights: every transition is equally likely)."""
        return rng.integers(0, self.size, batch_size), None

    def update(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """Uniform replay keeps no priorities."""


class PrioritizedReplay(ReplayBuffer):
    """Proportional prioritized replay (Schaul et al. 2016) on a sum tree.

    A transition is drawn with probability ``p_i^alpha / sum p^alpha``; new transitions get
    the largest priority seen so far. :meth:`sample` returns importance-sampling weights
    ``(N P(i))^-beta`` normalised by their maximum.
    """

    def __init__(self, capacity: int, obs_dim: int, alpha: float = 0.5, eps: float = 1e-6):
        super().__init__(capacity, obs_dim)
        self.alpha, self.eps = float(alpha), float(eps)
        self.leaves = 1 << max(0, int(np.ceil(np.log2(max(capacity, 1)))))
        self.tree = np.zeros(2 * self.leaves, np.float64)  # node k holds the sum of its children
        self.max_priority = 1.0

    def _set(self, slots: np.ndarray, values: np.ndarray) -> None:
        # one slot at a time, so that a slot drawn twice in a batch keeps its last priority
        for slot, value in zip(np.asarray(slots).tolist(), np.asarray(values, np.float64).tolist()):
            k = slot + self.leaves
            delta = value - self.tree[k]
            while k >= 1:
                self.tree[k] += delta
                k //= 2

    def add(self, obs, action: int, reward: float, next_obs, done: bool, discount: float) -> int:
        i = super().add(obs, action, reward, next_obs, done, discount)
        self._set(np.array([i]), np.array([self.max_priority ** self.alpha]))
        return i

    def sample(self, rng: np.random.Generator, batch_size: int, beta: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """``(indices, weights)``: one draw in each of ``batch_size`` equal slices of the total mass."""
        total = self.tree[1]
        bounds = (np.arange(batch_size) + rng.random(batch_size)) * (total / batch_size)
        k = np.ones(batch_size, np.int64)
        while k[0] < self.leaves:  # descend: left child if the mass lies there, else right
            left = 2 * k
            go_right = bounds >= self.tree[left]
            bounds = np.where(go_right, bounds - self.tree[left], bounds)
            k = np.where(go_right, left + 1, left)
        idx = np.minimum(k - self.leaves, self.size - 1)
        p = self.tree[idx + self.leaves] / total
        w = (self.size * np.maximum(p, 1e-12)) ** (-beta)
        return idx, (w / w.max()).astype(np.float32)

    def update(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """New priorities ``|TD error| + eps`` (or a distributional loss) for the drawn transitions."""
        pr = np.abs(np.asarray(priorities, np.float64)) + self.eps
        self.max_priority = max(self.max_priority, float(pr.max()))
        self._set(indices, pr ** self.alpha)


class NStep:
    """Turns 1-step experience into n-step transitions ``(s_t, a_t, sum_k gamma^k r_{t+k}, s_{t+n})``.

    :meth:`push` returns the transitions that became complete: one per step once ``n``
    are queued, and at the end of an episode every queued one (shorter, with their own
    discount ``gamma**k``). A termination makes them terminal; a truncation does not.
    """

    def __init__(self, n: int, gamma: float):
        self.n, self.gamma = int(n), float(gamma)
        self.queue: deque = deque()

    def push(self, obs, action: int, reward: float, next_obs, terminated: bool, truncated: bool) -> list[tuple]:
        self.queue.append((obs, action, reward))
        out = []
        if len(self.queue) == self.n:
            out.append(self._pop(next_obs, terminated))
        if terminated or truncated:
            while self.queue:
                out.append(self._pop(next_obs, terminated))
        return out

    def _pop(self, next_obs, terminated: bool) -> tuple:
        ret, discount = 0.0, 1.0
        for _, _, r in self.queue:
            ret += discount * r
            discount *= self.gamma
        obs, action, _ = self.queue.popleft()
        return obs, action, ret, next_obs, terminated, discount
