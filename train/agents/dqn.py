"""Spiking DQN in the style of DSQN (Liu et al. 2022), in one readable file.

The Q-network is a spiking MLP (:func:`~spikeloop.train.networks.spiking_mlp`):
observations enter as graded input held for ``T`` timesteps, hidden LIF layers (hard
reset, arctan surrogate), and a leaky integrator readout whose voltage at the last
step is Q(s, .). Training is DQN with experience replay, a target network and
double-DQN targets. Every source of randomness is seeded: the same config and seed
give the same weights.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from spikeloop.core.coding import Decoding, InputEncoding
from spikeloop.core.envs import make_env, random_observations
from spikeloop.core.errors import ConfigError
from spikeloop.train.agents import TrainResult, register_agent
from spikeloop.train.evaluate import evaluate_torch
from spikeloop.train.networks import spiking_mlp
from spikeloop.train.policy import Policy, Provenance
from spikeloop.train.replay import ReplayBuffer
from spikeloop.train.seeding import seed_everything


@dataclass
class DQNConfig:
    """Hyperparameters of a spiking DQN run (every field is a CLI option of `spikeloop train`)."""

    env_id: str = "CartPole-v1"
    """gymnasium environment id (Discrete actions, flat Box observations)"""
    seed: int = 0
    """seeds the environment, torch, numpy and replay sampling: same seed, same weights"""
    total_steps: int = 60_000
    """environment steps at most (training stops early once the eval target is met)"""
    hidden: list[int] = field(default_factory=lambda: [64, 64])
    """hidden LIF layer sizes"""
    T: int = 8
    """timesteps per decision window"""
    dv_hidden: float = 0.125
    """voltage decay per step of the hidden LIF neurons (tau = dt/dv)"""
    dv_readout: float = 0.125
    """voltage decay per step of the leaky-integrator readout"""
    vth: float = 1.0
    """firing threshold of the hidden neurons"""
    lr: float = 1e-3
    """Adam learning rate"""
    gamma: float = 0.99
    """discount factor"""
    buffer_size: int = 50_000
    """replay buffer capacity (transitions)"""
    batch_size: int = 64
    """transitions per gradient step"""
    learning_starts: int = 1_000
    """environment steps before the first gradient step"""
    train_freq: int = 4
    """environment steps per gradient step"""
    target_update: int = 500
    """environment steps between hard target-network updates"""
    eps_start: float = 1.0
    """initial exploration rate"""
    eps_end: float = 0.02
    """final exploration rate"""
    eps_fraction: float = 0.3
    """fraction of total_steps over which epsilon decays linearly"""
    grad_clip: float = 10.0
    """gradient norm clip"""
    fake_quant: bool = True
    """train against the 8-bit weight grid of the fixed-point deployment"""
    eval_every: int = 2_500
    """environment steps between greedy evaluations (the best policy is kept)"""
    eval_episodes: int = 10
    """episodes per greedy evaluation"""
    target_return: float = 495.0
    """stop once the greedy eval mean reaches this"""
    norm_steps: int = 2_000
    """random-policy steps used to freeze the input normalization"""
    input_clip: float = 4.0
    """normalized observations are clipped to +-input_clip"""
    input_bits: int = 8
    """bits of the graded input payload (Loihi 2 graded spikes)"""
    threads: int = 1
    """torch CPU threads"""

    def validate(self) -> "DQNConfig":
        """Refuse every value training cannot run with (one error naming the field and the value)."""
        from spikeloop.core.coding import PAYLOAD_BITS
        from spikeloop.core.envs import registered_id
        from spikeloop.core.metadata import MAX_T
        from spikeloop.train.networks import MAX_PARAMETERS

        def bad(name: str, rule: str):
            raise ConfigError(f"config field {name!r} {rule}, got {getattr(self, name)!r}")

        def finite(name: str) -> float:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                bad(name, "must be a finite number")
            return v

        def integer(name: str, lo: int, hi: int | None = None) -> int:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi is not None and v > hi):
                bad(name, f"must be an integer {'>= ' + str(lo) if hi is None else f'in [{lo}, {hi}]'}")
            return v

        if not isinstance(self.env_id, str):
            bad("env_id", "must be a gymnasium environment id")
        registered_id(self.env_id)
        integer("seed", 0)
        integer("total_steps", 1)
        integer("T", 1, MAX_T)
        if not isinstance(self.hidden, list) or not self.hidden or not all(
                isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in self.hidden):
            raise ConfigError(f"config field 'hidden' must list positive layer sizes, got {self.hidden!r}")
        inner = sum(a * b + b for a, b in zip(self.hidden[:-1], self.hidden[1:]))
        if inner > MAX_PARAMETERS:
            raise ConfigError(f"config field 'hidden' {self.hidden} declares {inner:,} parameters between the "
                              f"hidden layers alone, more than the limit {MAX_PARAMETERS:,}")
        for name in ("dv_hidden", "dv_readout"):
            if not 0 < finite(name) <= 1:
                bad(name, "must lie in (0, 1] (a voltage decay per step)")
        if finite("vth") <= 0:
            bad("vth", "must be positive")
        if finite("lr") <= 0:
            bad("lr", "must be a positive learning rate")
        if not 0 < finite("gamma") <= 1:
            bad("gamma", "must be in (0, 1]")
        integer("batch_size", 1)
        integer("buffer_size", 1)
        if self.buffer_size < self.batch_size:
            raise ConfigError(f"config field 'buffer_size' ({self.buffer_size}) must hold at least one batch "
                              f"(batch_size {self.batch_size})")
        integer("learning_starts", 0)
        for name in ("train_freq", "target_update", "eval_every", "eval_episodes", "norm_steps", "threads"):
            integer(name, 1)
        for name in ("eps_start", "eps_end", "eps_fraction"):
            if not 0 <= finite(name) <= 1:
                bad(name, "must be in [0, 1]")
        if finite("grad_clip") <= 0:
            bad("grad_clip", "must be positive")
        finite("target_return")
        if finite("input_clip") <= 0:
            bad("input_clip", "must be positive")
        integer("input_bits", *PAYLOAD_BITS)
        if not isinstance(self.fake_quant, bool):
            bad("fake_quant", "must be true or false")
        return self


def build_qnet(cfg: DQNConfig, obs_dim: int, n_actions: int):
    """The spiking Q-network of ``cfg``: a SpikingGraph MLP with a leaky-integrator readout."""
    return spiking_mlp([obs_dim, *cfg.hidden, n_actions], du=1.0, dv=cfg.dv_hidden, vth=cfg.vth,
                       readout_dv=cfg.dv_readout, fake_quant=cfg.fake_quant)


@register_agent("dqn", DQNConfig)
def train_dqn(cfg: DQNConfig, progress: bool = True) -> TrainResult:
    """Train a spiking Q-network; return the best greedy policy seen."""
    cfg.validate()
    seed_everything(cfg.seed)
    torch.set_num_threads(cfg.threads)
    env = make_env(cfg.env_id, cfg.seed)
    obs_dim, n_actions = env.observation_space.shape[0], int(env.action_space.n)
    encoding = InputEncoding.fit(random_observations(cfg.env_id, cfg.norm_steps, cfg.seed + 10_000),
                                 clip=cfg.input_clip, bits=cfg.input_bits)
    provenance = Provenance("dqn", cfg.env_id, cfg.seed, asdict(cfg))
    q = Policy(build_qnet(cfg, obs_dim, n_actions), cfg.T, encoding, Decoding(), provenance)
    q_target = copy.deepcopy(q)
    opt = torch.optim.Adam(q.network.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(cfg.seed)
    buf = ReplayBuffer(cfg.buffer_size, obs_dim)

    best, best_state, history = -np.inf, copy.deepcopy(q.network.state_dict()), []
    obs, _ = env.reset(seed=cfg.seed)
    ep_return, t0 = 0.0, time.time()
    bar = tqdm(total=cfg.total_steps, desc=f"train {cfg.env_id}", unit="step", disable=not progress,
               dynamic_ncols=True)
    step = 0
    for step in range(1, cfg.total_steps + 1):
        eps = max(cfg.eps_end, cfg.eps_start - (cfg.eps_start - cfg.eps_end) * step
                  / max(1.0, cfg.eps_fraction * cfg.total_steps))
        if rng.random() < eps:
            action = int(rng.integers(n_actions))
        else:
            with torch.no_grad():
                x = torch.as_tensor(encoding.encode(obs[None]), dtype=torch.float32)
                action = int(q(x).argmax(dim=1).item())
        next_obs, reward, term, trunc, _ = env.step(action)
        buf.add(obs, action, reward, next_obs, term)  # truncation is not a terminal state
        obs, ep_return = next_obs, ep_return + reward
        if term or trunc:
            history.append({"step": step, "train_return": ep_return})
            obs, _ = env.reset()
            ep_return = 0.0

        if step > cfg.learning_starts and step % cfg.train_freq == 0:
            i = buf.sample(rng, cfg.batch_size)
            x = torch.as_tensor(encoding.encode(buf.obs[i]), dtype=torch.float32)
            xn = torch.as_tensor(encoding.encode(buf.next_obs[i]), dtype=torch.float32)
            with torch.no_grad():
                a_next = q(xn).argmax(dim=1, keepdim=True)  # double DQN: online picks, target rates
                q_next = q_target(xn).gather(1, a_next).squeeze(1)
                target = torch.as_tensor(buf.reward[i]) + cfg.gamma * q_next * (1 - torch.as_tensor(buf.done[i]))
            q_sa = q(x).gather(1, torch.as_tensor(buf.action[i])[:, None]).squeeze(1)
            loss = F.smooth_l1_loss(q_sa, target)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(q.network.parameters(), cfg.grad_clip)
            opt.step()
        if step % cfg.target_update == 0:
            q_target.network.load_state_dict(q.network.state_dict())

        if step % cfg.eval_every == 0 and step > cfg.learning_starts:
            rets = evaluate_torch(q, cfg.env_id, cfg.eval_episodes, seed=cfg.seed + 20_000)
            mean = float(np.mean(rets))
            history.append({"step": step, "eval_mean": mean})
            if mean >= best:
                best, best_state = mean, copy.deepcopy(q.network.state_dict())
            bar.set_postfix(eval=f"{mean:.0f}", best=f"{best:.0f}", eps=f"{eps:.2f}")
            if mean >= cfg.target_return:
                bar.update(step - bar.n)
                break
        if step % 100 == 0:
            bar.update(step - bar.n)
    bar.close()
    env.close()
    q.network.load_state_dict(best_state)
    q.network.eval()
    return TrainResult(q, float(best), step, time.time() - t0, history)
