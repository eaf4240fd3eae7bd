"""spikeloop's seed tasks, registered as gymnasium environments.

``spikeloop/Chemotaxis-v0``: chemotaxis navigation. An agent on a 20 x 20 grid, facing one
of 8 compass directions, senses two things: the chemical's strength where it stands
(``exp(-d / 5)``, ``d`` its distance to the food) and the angle from its heading to the food
(in half-turns, ``[-1, 1]``). It acts forward (one cell along its heading), left or right (a
45-degree turn), or stay. Reaching the food is a success (reward 1, the episode ends);
every newly visited cell gives a small bonus (0.005); after 100 steps the episode is
truncated. ``info["success"]`` says whether the food was reached, and so does the return:
the bonuses add up to at most 0.5, so an episode succeeded exactly when its return is at
least 1 (:func:`succeeded`).

``spikeloop/GridForaging-v0``: a 15 x 15 grid seen whole as two binary channels, the agent and
the food (a ``(2, 15, 15)`` image, 450 inputs), with actions up, down, left and right. Eating
the food gives 1 and ends the episode; every step costs 0.01; after 100 steps the episode is
truncated.

Both are seeded only through ``reset(seed=...)`` (gymnasium's ``np_random``): the same seed
gives the same episodes.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

CHEMOTAXIS = "spikeloop/Chemotaxis-v0"
GRID_FORAGING = "spikeloop/GridForaging-v0"

HEADINGS = np.array([(1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1)])
"""the 8 compass directions, counter-clockwise from +x"""


class Chemotaxis(gym.Env):
    """Find the food by its chemical: strength and angle in, forward/left/right/stay out."""

    metadata = {"render_modes": []}
    FORWARD, LEFT, RIGHT, STAY = range(4)
    SUCCESS_REWARD, VISIT_BONUS = 1.0, 0.005

    def __init__(self, size: int = 20, max_steps: int = 100, decay_length: float = 5.0):
        self.size, self.max_steps, self.decay_length = int(size), int(max_steps), float(decay_length)
        self.observation_space = gym.spaces.Box(np.array([0.0, -1.0], np.float32), np.array([1.0, 1.0], np.float32))
        self.action_space = gym.spaces.Discrete(4)

    def _observe(self) -> np.ndarray:
        delta = self.food - self.pos
        strength = np.exp(-np.hypot(*delta) / self.decay_length)
        bearing = np.arctan2(delta[1], delta[0]) - self.heading * np.pi / 4
        angle = (bearing + np.pi) % (2 * np.pi) - np.pi
        return np.array([strength, angle / np.pi], np.float32)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        cells = self.np_random.choice(self.size * self.size, size=2, replace=False)
        self.pos = np.array(divmod(int(cells[0]), self.size))
        self.food = np.array(divmod(int(cells[1]), self.size))
        self.heading = int(self.np_random.integers(8))
        self.visited = {tuple(self.pos)}
        self.steps = 0
        return self._observe(), {"success": False}

    def step(self, action):
        action = int(action)
        if not self.action_space.contains(action):
            raise ValueError(f"Chemotaxis: action {action!r} is not one of 0..3 (forward, left, right, stay)")
        reward = 0.0
        if action == self.FORWARD:
            self.pos = np.clip(self.pos + HEADINGS[self.heading], 0, self.size - 1)
        elif action == self.LEFT:
            self.heading = (self.heading + 1) % 8
        elif action == self.RIGHT:
            self.heading = (self.heading - 1) % 8
        if tuple(self.pos) not in self.visited:
            self.visited.add(tuple(self.pos))
            reward += self.VISIT_BONUS
        self.steps += 1
        success = bool(np.array_equal(self.pos, self.food))
        if success:
            reward += self.SUCCESS_REWARD
        return self._observe(), reward, success, self.steps >= self.max_steps and not success, {"success": success}


class GridForaging(gym.Env):
    """Walk to the food on a grid seen whole: two channels (agent, food), four moves."""

    metadata = {"render_modes": []}
    MOVES = np.array([(-1, 0), (1, 0), (0, -1), (0, 1)])
    """up, down, left, right (row, column)"""
    FOOD_REWARD, STEP_COST, MAX_STEPS = 1.0, 0.01, 100

    def __init__(self, size: int = 15, max_steps: int = MAX_STEPS):
        self.size, self.max_steps = int(size), int(max_steps)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (2, self.size, self.size), np.float32)
        self.action_space = gym.spaces.Discrete(4)

    def _observe(self) -> np.ndarray:
        board = np.zeros((2, self.size, self.size), np.float32)
        board[0][tuple(self.pos)] = 1.0
        board[1][tuple(self.food)] = 1.0
        return board

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        cells = self.np_random.choice(self.size * self.size, size=2, replace=False)
        self.pos = np.array(divmod(int(cells[0]), self.size))
        self.food = np.array(divmod(int(cells[1]), self.size))
        self.steps = 0
        return self._observe(), {"success": False}

    def step(self, action):
        action = int(action)
        if not self.action_space.contains(action):
            raise ValueError(f"GridForaging: action {action!r} is not one of 0..3 (up, down, left, right)")
        self.pos = np.clip(self.pos + self.MOVES[action], 0, self.size - 1)
        self.steps += 1
        success = bool(np.array_equal(self.pos, self.food))
        reward = (self.FOOD_REWARD if success else 0.0) - self.STEP_COST
        return self._observe(), reward, success, self.steps >= self.max_steps and not success, {"success": success}


def succeeded(returns, env_id: str = CHEMOTAXIS) -> np.ndarray:
    """Which episodes of a seed task reached the food, from their returns."""
    r = np.asarray(returns, dtype=np.float64)
    if env_id == CHEMOTAXIS:
        return r >= Chemotaxis.SUCCESS_REWARD
    if env_id == GRID_FORAGING:  # the food pays 1, steps cost at most 1 in all
        return r > -GridForaging.STEP_COST * GridForaging.MAX_STEPS + 1e-9
    raise ValueError(f"{env_id!r} is not a spikeloop seed task")


def register_tasks() -> None:
    """Register the seed tasks with gymnasium (once)."""
    for env_id, entry in ((CHEMOTAXIS, Chemotaxis), (GRID_FORAGING, GridForaging)):
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry)
