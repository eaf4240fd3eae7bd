"""The seed tasks: registered gymnasium environments with the rules their docstrings state."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import deploy_in_lava

from spikeloop.core.envs import make_env, observation_shape
from spikeloop.core.tasks import CHEMOTAXIS, GRID_FORAGING, Chemotaxis, succeeded
from spikeloop.train.agents.reinforce import ReinforceConfig, train_reinforce


def _toward_food(obs) -> int:
    """Turn toward the food until it is ahead, then go forward (what a solved policy does)."""
    return Chemotaxis.LEFT if obs[1] > 0.125 else Chemotaxis.RIGHT if obs[1] < -0.125 else Chemotaxis.FORWARD


def _play(env_id, policy, episodes: int, seed: int = 0):
    env, returns, wins = make_env(env_id), [], []
    env.action_space.seed(seed)
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        total, done, info = 0.0, False, {}
        while not done:
            obs, r, term, trunc, info = env.step(policy(obs, env))
            total, done = total + r, term or trunc
        returns.append(total)
        wins.append(info["success"])
    return np.array(returns), np.array(wins)


def test_chemotaxis_senses_strength_and_angle_and_pays_for_the_food():
    env = make_env(CHEMOTAXIS, seed=0)
    assert observation_shape(env) == (2,) and env.action_space.n == 4
    obs, _ = env.reset(seed=3)
    core = env.unwrapped
    d = core.food - core.pos
    assert obs[0] == pytest.approx(np.exp(-np.hypot(*d) / 5.0), rel=1e-6)
    assert -1.0 <= obs[1] <= 1.0
    # a left turn changes the angle by +1/4 half-turn (mod 2), and stay changes nothing
    obs2, r, *_ = env.step(Chemotaxis.LEFT)
    assert ((obs[1] - obs2[1]) + 1) % 2 - 1 == pytest.approx(0.25, abs=1e-6) and r == 0.0
    obs3, r, *_ = env.step(Chemotaxis.STAY)
    np.testing.assert_array_equal(obs3, obs2)
    returns, wins = _play(CHEMOTAXIS, lambda o, e: _toward_food(o), 50)
    assert wins.all() and np.array_equal(succeeded(returns), wins)
    returns, wins = _play(CHEMOTAXIS, lambda o, e: e.action_space.sample(), 100)
    assert wins.mean() < 0.2 and np.array_equal(succeeded(returns), wins)
    assert returns.max(initial=0) <= 1.5 and returns[~wins].max(initial=0) <= 0.5  # the bonuses are small
    with pytest.raises(ValueError, match="action 7 is not one of 0..3"):
        env.step(7)


def test_chemotaxis_is_reproducible_from_its_seed():
    a, _ = _play(CHEMOTAXIS, lambda o, e: e.action_space.sample(), 10, seed=5)
    b, _ = _play(CHEMOTAXIS, lambda o, e: e.action_space.sample(), 10, seed=5)
    np.testing.assert_array_equal(a, b)


def test_grid_foraging_shows_the_board_as_two_channels():
    env = make_env(GRID_FORAGING, seed=0)
    assert observation_shape(env) == (2, 15, 15) and env.observation_space.shape == (450,)
    obs, _ = env.reset(seed=1)
    board = obs.reshape(2, 15, 15)
    core = env.unwrapped
    assert board[0].sum() == 1 and board[0][tuple(core.pos)] == 1 and board[1][tuple(core.food)] == 1

    def greedy(o, e):
        (r0, c0), (r1, c1) = (np.argwhere(o.reshape(2, 15, 15)[k])[0] for k in (0, 1))
        return 1 if r1 > r0 else 0 if r1 < r0 else 3 if c1 > c0 else 2
    returns, wins = _play(GRID_FORAGING, greedy, 30)
    assert wins.all() and np.array_equal(succeeded(returns, GRID_FORAGING), wins)
    returns, wins = _play(GRID_FORAGING, lambda o, e: e.action_space.sample(), 30)
    assert np.array_equal(succeeded(returns, GRID_FORAGING), wins) and (~wins).any()


def test_reinforce_trains_on_chemotaxis_and_runs_in_lava(tmp_path):
    cfg = ReinforceConfig(env_id=CHEMOTAXIS, max_episodes=6, eval_every=3, eval_episodes=3, hidden=[16], T=8,
                          norm_steps=300, target_return=1e9).validate()
    policy, plan, out = deploy_in_lava(tmp_path, train_reinforce(cfg, progress=False).policy, CHEMOTAXIS)
    assert plan.input_size == 2 and plan.population(plan.output).size == 4
    assert out["float"].agreement >= 0.95 and out["fixed"].agreement >= 0.8


@pytest.mark.parametrize("preset,agent,env_id", [("reinforce-chemotaxis", "reinforce", CHEMOTAXIS),
                                                  ("ppo-foraging", "ppo", GRID_FORAGING)])
def test_each_seed_task_preset_is_the_benchmarked_setup(preset, agent, env_id):
    import sys
    from pathlib import Path

    from spikeloop.options import preset_path
    from spikeloop.pipeline import read_config
    from spikeloop.train.agents import config_from_dict, get_agent

    got, table = read_config(preset_path(preset))
    cfg = config_from_dict(get_agent(agent).config, table)
    assert got == agent and cfg.env_id == env_id
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    try:
        from agents import BUDGETS
    finally:
        sys.path.pop(0)
    assert {k: getattr(cfg, k) for k in BUDGETS[agent][env_id]} == BUDGETS[agent][env_id]


def test_ppo_trains_on_grid_foraging_and_runs_in_lava(tmp_path):
    from spikeloop.train.agents.ppo import PPOConfig, train_ppo

    cfg = PPOConfig(env_id=GRID_FORAGING, total_steps=512, n_envs=2, n_steps=128, eval_every=512, eval_episodes=2,
                    hidden=[16], T=4, norm_steps=300).validate()
    policy, plan, out = deploy_in_lava(tmp_path, train_ppo(cfg, progress=False).policy, GRID_FORAGING)
    assert plan.input_size == 450 and plan.population(plan.output).size == 4
    assert out["float"].agreement >= 0.95 and out["fixed"].agreement >= 0.8
