"""Spiking PPO: a spiking actor (deployed) and a dense critic (not deployed), in one file.

The actor is the spiking MLP of REINFORCE (:func:`~spikeloop.train.agents.reinforce.build_policy_net`:
Kaiming initialisation, the output layer scaled down); its readout voltages over the decision
window are the action logits, so the trained policy exports, compiles and runs in Lava like
every other. The critic is a small tanh MLP on the same encoded observation: it only serves
training, and export takes the actor alone (the :class:`~spikeloop.train.policy.Policy`
holds nothing else).

The algorithm is PPO with the clipped surrogate objective (Schulman et al. 2017) as CleanRL
writes it: ``n_envs`` gymnasium environments stepped together (a ``SyncVectorEnv``,
resetting in the step that ends an episode), ``n_steps`` steps per rollout, generalised
advantage estimation (GAE, ``gamma``/``gae_lambda``), advantages normalised per minibatch,
``epochs`` passes over the rollout in minibatches, a linearly annealed learning rate and
global gradient-norm clipping. Every update logs its losses, entropy, clip fraction, learning
rate, hidden firing rates and gradient norm (``training.csv``). Every source of randomness is
seeded: the same config and seed give the same weights.
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from spikeloop.core.coding import Decoding
from spikeloop.core.envs import make_env, observation_shape
from spikeloop.train.agents import FieldRules, TrainResult, fit_encoding, register_agent
from spikeloop.train.agents.reinforce import READOUTS, _firing_rates, build_policy_net
from spikeloop.train.evaluate import evaluate_torch
from spikeloop.train.policy import Policy, Provenance, window_readout
from spikeloop.train.seeding import seed_everything
from spikeloop.train.sparsity import activity_cost


@dataclass
class PPOConfig:
    """Hyperparameters of a spiking PPO run (every field is a CLI option of `spikeloop train`)."""

    env_id: str = "CartPole-v1"
    """gymnasium environment id (Discrete actions, Box observations)"""
    seed: int = 0
    """seeds the environments, torch and numpy: same seed, same weights"""
    total_steps: int = 100_000
    """environment steps (all environments together) at most; training stops early once the eval target is met"""
    n_envs: int = 4
    """environments stepped together (gymnasium SyncVectorEnv)"""
    n_steps: int = 128
    """steps per environment in one rollout"""
    epochs: int = 4
    """passes over each rollout"""
    minibatches: int = 4
    """minibatches per pass"""
    gamma: float = 0.99
    """discount factor"""
    gae_lambda: float = 0.95
    """GAE's lambda"""
    clip: float = 0.2
    """the surrogate's clipping range (ratio within 1 +- clip)"""
    ent_coef: float = 0.01
    """entropy bonus coefficient"""
    vf_coef: float = 0.5
    """value loss coefficient"""
    lr: float = 2.5e-3
    """initial Adam learning rate (annealed linearly to 0 over total_steps)"""
    max_grad_norm: float = 0.5
    """global gradient-norm clip"""
    hidden: list[int] = field(default_factory=lambda: [64])
    """hidden LIF layer sizes of the spiking actor"""
    critic_hidden: list[int] = field(default_factory=lambda: [64, 64])
    """hidden tanh layer sizes of the dense critic (training only, not deployed)"""
    T: int = 8
    """timesteps per decision window"""
    dv_hidden: float = 0.125
    """voltage decay per step of the hidden LIF neurons"""
    dv_readout: float = 0.125
    """voltage decay per step of the leaky-integrator readout (its voltages are the logits)"""
    du_hidden: float = 1.0
    """current decay per step of the hidden neurons (1: LIF, below 1: CUBA-LIF)"""
    du_readout: float = 1.0
    """current decay per step of the readout"""
    vth: float = 1.0
    """firing threshold of the hidden neurons"""
    reset: str = "hard"
    """reset after a spike: hard (v = 0) or soft (v -= vth)"""
    surrogate: str = "fast-sigmoid"
    """surrogate gradient of the spike: arctan, sigmoid or fast-sigmoid"""
    surrogate_slope: float = 1.0
    """slope of the surrogate (0: its usual value)"""
    readout: str = "voltage-mean"
    """the logits: the readout voltage at the last step (voltage-last) or its mean over the window"""
    output_scale: float = 0.01
    """the actor's output layer's Kaiming initialisation is scaled by this (a near-uniform first policy)"""
    eval_every: int = 10_000
    """environment steps between greedy evaluations (the best policy is kept)"""
    eval_episodes: int = 10
    """episodes per greedy evaluation"""
    target_return: float = 475.0
    """stop once the greedy eval mean reaches this"""
    fake_quant: bool = True
    """train against the 8-bit weight grid of the fixed-point deployment"""
    norm_steps: int = 2_000
    """random-policy steps used to freeze the input normalization"""
    input_clip: float = 4.0
    """normalized observations are clipped to +-input_clip"""
    input_bits: int = 8
    """bits of the graded input payload (Loihi 2 graded spikes)"""
    threads: int = 1
    """torch CPU threads"""
    max_seconds: float = 0.0
    """wall-clock budget of the training loop in seconds, evaluations included (0: none)"""
    sparsity_penalty: float = 0.0
    """weight of the activity cost in the loss, to trade return for energy (0: off; spikeloop.train.sparsity)"""
    sparsity_measure: str = "synops"
    """the activity cost: synops (share of the possible synaptic events the hidden spikes cause) or spikes (per
    hidden neuron and step)"""

    def validate(self) -> "PPOConfig":
        """Refuse every value training cannot run with (one error naming the field and the value)."""
        from spikeloop.core.metadata import MAX_T

        rules = FieldRules(self)
        rules.environment()
        rules.integer("seed", 0)
        rules.integer("total_steps", 1)
        rules.integer("n_envs", 1, 256)
        rules.integer("n_steps", 1)
        rules.integer("epochs", 1)
        rules.integer("minibatches", 1, self.n_envs * self.n_steps if isinstance(self.n_steps, int) and
                      isinstance(self.n_envs, int) else None)
        rules.integer("T", 1, MAX_T)
        rules.hidden()
        if not isinstance(self.critic_hidden, list) or not self.critic_hidden or not all(
                isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 4096 for n in self.critic_hidden):
            rules.bad("critic_hidden", "must list layer sizes in [1, 4096]")
        rules.neuron()
        if self.readout not in READOUTS:
            rules.bad("readout", f"must be one of {', '.join(READOUTS)} (the logits are readout voltages)")
        for name in ("gamma", "gae_lambda"):
            if not 0 < rules.finite(name) <= 1:
                rules.bad(name, "must be in (0, 1]")
        for name in ("clip", "lr", "max_grad_norm", "output_scale"):
            if rules.finite(name) <= 0:
                rules.bad(name, "must be positive")
        for name in ("ent_coef", "vf_coef"):
            if rules.finite(name) < 0:
                rules.bad(name, "must be 0 or positive")
        rules.integer("eval_every", 1)
        rules.integer("eval_episodes", 1)
        rules.finite("target_return")
        rules.encoding()
        rules.sparsity()
        rules.boolean("fake_quant")
        return self


def build_critic(n_in: int, hidden: list[int], generator: torch.Generator) -> nn.Sequential:
    """The dense critic: tanh layers, orthogonal initialisation (gain sqrt 2, the value head 1)."""
    layers, sizes = [], [n_in, *hidden]
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.Tanh()]
    layers.append(nn.Linear(sizes[-1], 1))
    with torch.no_grad():
        for m in layers:
            if isinstance(m, nn.Linear):
                q, _ = torch.linalg.qr(torch.randn(max(m.weight.shape), min(m.weight.shape), generator=generator))
                w = q[: m.weight.shape[0], : m.weight.shape[1]] if m.weight.shape[0] >= m.weight.shape[1] else \
                    q[: m.weight.shape[1], : m.weight.shape[0]].T
                m.weight.copy_(w * (1.0 if m is layers[-1] else np.sqrt(2.0)))
                m.bias.zero_()
    return nn.Sequential(*layers)


def gae(rewards: np.ndarray, values: np.ndarray, dones: np.ndarray, next_value: np.ndarray, gamma: float,
        lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimates and returns of one rollout ``(n_steps, n_envs)``.

    ``dones[t]`` marks that the episode ended with step ``t`` (its next state is not bootstrapped).
    """
    adv = np.zeros_like(rewards)
    last = np.zeros(rewards.shape[1])
    for t in range(len(rewards) - 1, -1, -1):
        nxt = next_value if t == len(rewards) - 1 else values[t + 1]
        live = 1.0 - dones[t]
        delta = rewards[t] + gamma * nxt * live - values[t]
        last = delta + gamma * lam * live * last
        adv[t] = last
    return adv, adv + values


@register_agent("ppo", PPOConfig)
def train_ppo(cfg: PPOConfig, progress: bool = True) -> TrainResult:
    """Train a spiking actor with PPO (a dense critic beside it); return the best greedy policy seen."""
    cfg.validate()
    seed_everything(cfg.seed)
    torch.set_num_threads(cfg.threads)
    probe = make_env(cfg.env_id, cfg.seed)
    obs_shape, n_actions = observation_shape(probe), int(probe.action_space.n)
    probe.close()
    encoding = fit_encoding(cfg, obs_shape)
    init = torch.Generator().manual_seed(cfg.seed + 40_000)
    net = build_policy_net(cfg, encoding.n_inputs, n_actions, init)
    critic = build_critic(encoding.n_inputs, cfg.critic_hidden, init)
    decoding = Decoding(step="mean" if cfg.readout == "voltage-mean" else "last")
    policy = Policy(net, cfg.T, encoding, decoding, Provenance("ppo", cfg.env_id, cfg.seed, asdict(cfg)))
    params = list(net.parameters()) + list(critic.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr, eps=1e-5)
    envs = gym.vector.SyncVectorEnv([lambda i=i: make_env(cfg.env_id, cfg.seed + i) for i in range(cfg.n_envs)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    dtype = policy.dtype

    def encode(o):
        return torch.as_tensor(encoding.encode(np.asarray(o)), dtype=dtype)

    batch = cfg.n_envs * cfg.n_steps
    updates = max(1, cfg.total_steps // batch)
    mb = max(1, batch // cfg.minibatches)
    best, best_state, history, log = -np.inf, copy.deepcopy(net.state_dict()), [], []
    steps, t0, next_eval = 0, time.time(), cfg.eval_every
    ep_return, finished = np.zeros(cfg.n_envs), []
    obs, _ = envs.reset(seed=cfg.seed)
    bar = tqdm(total=updates * batch, desc=f"train {cfg.env_id} (ppo)", unit="step", disable=not progress,
               dynamic_ncols=True)
    try:
        for update in range(updates):
            lr = cfg.lr * (1.0 - update / updates)
            for group in opt.param_groups:
                group["lr"] = lr
            xs, acts, logps, vals = [], [], [], []
            rewards, dones = np.zeros((cfg.n_steps, cfg.n_envs)), np.zeros((cfg.n_steps, cfg.n_envs))
            for t in range(cfg.n_steps):
                x = encode(obs)
                with torch.no_grad():
                    logits = window_readout(decoding, net.window(x, cfg.T))
                    dist = torch.distributions.Categorical(logits=logits)
                    a = dist.sample()
                    vals.append(critic(x)[:, 0])
                xs.append(x)
                acts.append(a)
                logps.append(dist.log_prob(a))
                obs, r, term, trunc, _ = envs.step(a.numpy())
                rewards[t], dones[t] = r, np.logical_or(term, trunc)
                ep_return += r
                for i in np.flatnonzero(dones[t]):
                    finished.append(float(ep_return[i]))
                    history.append({"step": steps + (t + 1) * cfg.n_envs, "train_return": float(ep_return[i])})
                    ep_return[i] = 0.0
            steps += batch
            with torch.no_grad():
                next_value = critic(encode(obs))[:, 0].double().numpy()
            values = torch.stack(vals).double().numpy()
            adv, ret = gae(rewards, values, dones, next_value, cfg.gamma, cfg.gae_lambda)
            X = torch.cat(xs)
            A, LP = torch.cat(acts), torch.cat(logps)
            ADV = torch.as_tensor(adv.reshape(-1), dtype=dtype)
            RET = torch.as_tensor(ret.reshape(-1), dtype=dtype)
            stats = {"pg_loss": 0.0, "v_loss": 0.0, "entropy": 0.0, "clipfrac": 0.0, "grad_norm": 0.0}
            rates: dict = {}
            n_mb = 0
            for _ in range(cfg.epochs):
                perm = torch.randperm(batch)
                for k in range(0, batch, mb):
                    idx = perm[k:k + mb]
                    x = X[idx]
                    y, trace = net(x.expand(cfg.T, *x.shape), record=True)
                    dist = torch.distributions.Categorical(logits=window_readout(decoding, y))
                    logp, entropy = dist.log_prob(A[idx]), dist.entropy().mean()
                    ratio = torch.exp(logp - LP[idx])
                    a_mb = ADV[idx]
                    a_mb = (a_mb - a_mb.mean()) / (a_mb.std() + 1e-8) if len(idx) > 1 else a_mb
                    pg = torch.max(-a_mb * ratio, -a_mb * torch.clamp(ratio, 1 - cfg.clip, 1 + cfg.clip)).mean()
                    v_loss = 0.5 * ((critic(x)[:, 0] - RET[idx]) ** 2).mean()
                    loss = pg - cfg.ent_coef * entropy + cfg.vf_coef * v_loss
                    if cfg.sparsity_penalty:
                        loss = loss + cfg.sparsity_penalty * activity_cost(net, trace, cfg.sparsity_measure)
                    opt.zero_grad()
                    loss.backward()
                    gn = float(torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm))
                    opt.step()
                    n_mb += 1
                    for key, v in (("pg_loss", pg), ("v_loss", v_loss), ("entropy", entropy),
                                   ("clipfrac", ((ratio - 1).abs() > cfg.clip).float().mean())):
                        stats[key] += float(v.detach())
                    stats["grad_norm"] += gn
                    rates = _firing_rates(net, trace)
            row = {"update": update, "step": steps, "lr": lr,
                   "mean_train_return": float(np.mean(finished[-20:])) if finished else float("nan"),
                   **{k: v / n_mb for k, v in stats.items()}, **rates}
            log.append(row)
            bar.update(batch)
            out_of_time = bool(cfg.max_seconds) and time.time() - t0 >= cfg.max_seconds
            if steps >= next_eval or out_of_time or update == updates - 1:
                next_eval += cfg.eval_every
                mean = float(np.mean(evaluate_torch(policy, cfg.env_id, cfg.eval_episodes, seed=cfg.seed + 20_000)))
                history.append({"step": steps, "eval_mean": mean})
                row["eval_mean"] = mean
                if mean >= best:
                    best, best_state = mean, copy.deepcopy(net.state_dict())
                bar.set_postfix(eval=f"{mean:.0f}", best=f"{best:.0f}", lr=f"{lr:.1e}")
                if mean >= cfg.target_return:
                    break
            if out_of_time:
                break
    finally:
        bar.close()
        envs.close()
    net.load_state_dict(best_state)
    net.eval()
    return TrainResult(policy, float(best), steps, time.time() - t0, history, log)
