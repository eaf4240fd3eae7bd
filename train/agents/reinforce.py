"""Spiking REINFORCE: a policy-gradient agent with the stabilisers spiking policies need, in one file.

The policy is a spiking MLP (:func:`~spikeloop.train.networks.spiking_mlp`) whose readout
voltages are the action logits (at the last step of the window, or their mean). Training
samples actions from their softmax; the deployed policy takes the argmax, so it exports,
compiles and runs in Lava like any other. Plain REINFORCE (Williams 1992) with spiking
networks tends to collapse onto one action or diverge; the stabilisers here are the ones
that made it work in practice:

- an exponential moving average of the episodes' mean discounted return as the baseline
  (``baseline_alpha``), and advantages scaled to unit spread (not re-centred, so that the
  baseline keeps its meaning);
- an entropy bonus decaying linearly from ``entropy_start`` to ``entropy_end`` over
  ``entropy_episodes`` episodes;
- the learning rate decaying by ``lr_decay`` per episode;
- gradient value clipping, then norm clipping;
- Kaiming initialisation of the synapses, the output layer scaled by ``output_scale`` (a
  near-uniform first policy, which keeps it from collapsing onto one action);
- a shallow surrogate (slope 1 by default) and long windows.

Every episode logs its return, loss, learning rate, entropy, hidden firing rates and gradient
norm (:attr:`TrainResult.log`: ``training.csv`` and ``training.png`` in the run folder).
Every source of randomness is seeded: the same config and seed give the same weights.
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from spikeloop.core.coding import Decoding, SpikeEncoding
from spikeloop.train.metrics import training_metrics
from spikeloop.train.sparsity import activity_cost
from spikeloop.core.envs import make_env, observation_shape
from spikeloop.train.agents import FieldRules, TrainResult, fit_encoding, neuron_options, register_agent
from spikeloop.train.evaluate import evaluate_torch
from spikeloop.train.graph import Neuron, QuantLinear
from spikeloop.train.growth import GrowthRules, growth_step
from spikeloop.train.networks import spiking_mlp, xylo_mlp
from spikeloop.train.policy import Policy, Provenance, window_readout
from spikeloop.train.seeding import seed_everything

READOUTS = ("voltage-last", "voltage-mean")
TARGETS = ("loihi", "xylo")


@dataclass
class ReinforceConfig:
    """Hyperparameters of a spiking REINFORCE run (every field is a CLI option of `spikeloop train`)."""

    env_id: str = "CartPole-v1"
    """gymnasium environment id (Discrete actions, Box observations)"""
    seed: int = 0
    """seeds the environment, torch, numpy and action sampling: same seed, same weights"""
    max_episodes: int = 500
    """training episodes at most (training stops early once the eval target is met)"""
    hidden: list[int] = field(default_factory=lambda: [64])
    """hidden LIF layer sizes"""
    T: int = 16
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
    """slope of the surrogate (0: its usual value); a shallow slope keeps gradients flowing through silent neurons"""
    readout: str = "voltage-mean"
    """the logits: the readout voltage at the last step (voltage-last) or its mean over the window (voltage-mean)"""
    gamma: float = 0.99
    """discount factor"""
    lr: float = 0.005
    """initial Adam learning rate"""
    lr_decay: float = 0.015
    """fractional learning-rate decay per episode (lr_e = lr * (1 - lr_decay)^e)"""
    entropy_start: float = 0.15
    """initial entropy bonus coefficient"""
    entropy_end: float = 0.01
    """final entropy bonus coefficient"""
    entropy_episodes: int = 50
    """episodes over which the entropy bonus decays linearly"""
    baseline_alpha: float = 0.05
    """weight of each episode's mean discounted return in the moving-average baseline"""
    clip_value: float = 1.0
    """gradient value clip (applied first)"""
    clip_norm: float = 1.0
    """gradient norm clip (applied after the value clip)"""
    output_scale: float = 0.01
    """the output layer's Kaiming initialisation is scaled by this (a near-uniform first policy)"""
    eval_every: int = 10
    """episodes between greedy evaluations (the best policy is kept)"""
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
    target: str = "loihi"
    """what the policy is trained for: loihi (graded input, the contract's float/fixed-point neuron) or xylo
    (a spike encoder in front, Xylo's integer neuron, 8-bit weights, fan-in mask, bit-shift decays)"""
    encoder: str = "auto"
    """the input: graded (Loihi 2's graded payload), or a spike encoder of the observations (rate: on/off
    channels; population: tuning curves; delta: up/down events of what changed since the last decision,
    reset each episode); auto: graded on loihi, rate on xylo"""
    max_events: int = 0
    """with a spike encoder, events per channel per step at most (0: the target's own, 15 on Xylo, 1 on Loihi:
    binary spikes only, as Loihi 1 takes them)"""
    encoder_neurons: int = 9
    """channels per observation value of a population code"""
    xylo_vth: int = 512
    """xylo: integer threshold of the hidden neurons (register units)"""
    dash_syn: int = 1
    """xylo: current decay shift of the hidden neurons (du = 2**-dash_syn)"""
    dash_mem: int = 3
    """xylo: voltage decay shift of the hidden neurons (dv = 2**-dash_mem)"""
    readout_dash_mem: int = 1
    """xylo: voltage decay shift of the readout neurons"""
    fan_in: int = 63
    """xylo: inputs per neuron at most (a fixed random mask where a layer has more; Xylo: 63)"""
    logit_scale: float = 0.001
    """xylo: the readout voltages (register units) times this are the training logits (argmax is unchanged)"""
    grow_every: int = 0
    """episodes between growth and pruning checks of the hidden layers (0: the network keeps its size)"""
    grow_below: float = 0.05
    """grow a hidden layer whose mean firing rate (spikes per neuron per step) is below this"""
    grow_by: int = 32
    """neurons added at a time (Kaiming-initialised inputs, zero outputs: the function is kept)"""
    max_hidden: int = 256
    """neurons per hidden layer at most"""
    prune_below: float = 0.005
    """a neuron firing below this rate is quiet"""
    prune_share: float = 0.3
    """prune a layer's quiet neurons when more than this share of them are quiet"""
    min_hidden: int = 32
    """neurons per hidden layer at least after pruning"""
    threads: int = 1
    """torch CPU threads"""
    max_seconds: float = 0.0
    """wall-clock budget of the training loop in seconds, evaluations included (0: none)"""
    sparsity_penalty: float = 0.0
    """weight of the activity cost in the loss, to trade return for energy (0: off; spikeloop.train.sparsity)"""
    sparsity_measure: str = "synops"
    """the activity cost: synops (share of the possible synaptic events the hidden spikes cause) or spikes (per
    hidden neuron and step)"""
    metrics_port: int = 0
    """serve Prometheus metrics (neurons, firing rate, sparsity, reward, growth and pruning counters) on this
    local port while training (0: off; needs the extra spikeloop[metrics])"""

    def validate(self) -> "ReinforceConfig":
        """Refuse every value training cannot run with (one error naming the field and the value)."""
        from spikeloop.core.metadata import MAX_T

        rules = FieldRules(self)
        rules.environment()
        rules.integer("seed", 0)
        rules.integer("max_episodes", 1)
        rules.integer("T", 1, MAX_T)
        rules.hidden()
        rules.neuron()
        if self.readout not in READOUTS:
            rules.bad("readout", f"must be one of {', '.join(READOUTS)} (the logits are readout voltages)")
        if not 0 < rules.finite("gamma") <= 1:
            rules.bad("gamma", "must be in (0, 1]")
        if rules.finite("lr") <= 0:
            rules.bad("lr", "must be a positive learning rate")
        for name in ("lr_decay", "baseline_alpha"):
            if not 0 <= rules.finite(name) < 1:
                rules.bad(name, "must be in [0, 1)")
        for name in ("entropy_start", "entropy_end"):
            if rules.finite(name) < 0:
                rules.bad(name, "must be 0 or positive")
        rules.integer("entropy_episodes", 1)
        for name in ("clip_value", "clip_norm", "output_scale"):
            if rules.finite(name) <= 0:
                rules.bad(name, "must be positive")
        rules.integer("eval_every", 1)
        rules.integer("eval_episodes", 1)
        rules.finite("target_return")
        rules.encoding()
        rules.sparsity()
        rules.boolean("fake_quant")
        if self.target not in TARGETS:
            rules.bad("target", f"must be one of {', '.join(TARGETS)}")
        from spikeloop.core.coding import SPIKE_CODES
        from spikeloop.core.xylo import MAX_INPUT_EVENTS

        codes = ("auto", "graded", *SPIKE_CODES) if self.target == "loihi" else ("auto", *SPIKE_CODES)
        if self.encoder not in codes:
            rules.bad("encoder", f"must be one of {', '.join(codes)} on target {self.target}")
        rules.integer("max_events", 0, MAX_INPUT_EVENTS if self.target == "xylo" else 1)
        rules.integer("encoder_neurons", 2, 64)
        rules.integer("grow_every", 0)
        rules.integer("metrics_port", 0, 65535)
        rules.integer("grow_by", 1)
        rules.integer("min_hidden", 1)
        rules.integer("max_hidden", max(self.min_hidden, 1) if isinstance(self.min_hidden, int) else 1)
        for name in ("grow_below", "prune_below", "prune_share"):
            if not 0 <= rules.finite(name) <= 1:
                rules.bad(name, "must lie in [0, 1]")
        if self.target == "xylo":
            from spikeloop.core.xylo import DASH_MAX, STATE_MAX
            from spikeloop.train.xylo import FAN_IN_MAX

            rules.integer("xylo_vth", 1, STATE_MAX)
            for name in ("dash_syn", "dash_mem", "readout_dash_mem"):
                rules.integer(name, 1, DASH_MAX)
            rules.integer("fan_in", 1, FAN_IN_MAX)
        if self.grow_every and self.target == "xylo":
            rules.bad("grow_every", "must be 0 with target xylo (growth resizes the Loihi spiking MLP)")
            if rules.finite("logit_scale") <= 0:
                rules.bad("logit_scale", "must be positive")
        return self


def entropy_coefficient(cfg: ReinforceConfig, episode: int) -> float:
    """The entropy bonus of ``episode`` (0-based): linear from ``entropy_start`` to ``entropy_end``."""
    f = min(1.0, episode / cfg.entropy_episodes)
    return cfg.entropy_start + (cfg.entropy_end - cfg.entropy_start) * f


def learning_rate(cfg: ReinforceConfig, episode: int) -> float:
    """The learning rate of ``episode`` (0-based): ``lr * (1 - lr_decay) ** episode``."""
    return cfg.lr * (1.0 - cfg.lr_decay) ** episode


def discounted_returns(rewards, gamma: float) -> np.ndarray:
    """``G_t = r_t + gamma * G_{t+1}`` for every step of one episode (float64)."""
    out, g = np.zeros(len(rewards)), 0.0
    for t in range(len(rewards) - 1, -1, -1):
        g = rewards[t] + gamma * g
        out[t] = g
    return out


def advantages(returns: np.ndarray, baseline: float) -> np.ndarray:
    """``(G - baseline) / std(G - baseline)``: scaled to unit spread, not re-centred."""
    a = returns - baseline
    spread = a.std()
    return a / spread if spread > 1e-8 else a


def spike_encoding(cfg: ReinforceConfig, norm):
    """The config's input encoding over the fitted normalization ``norm``: graded, or a spike code."""
    code = cfg.encoder if cfg.encoder != "auto" else ("rate" if cfg.target == "xylo" else "graded")
    if code == "graded":
        return norm
    return SpikeEncoding.from_normalization(norm, code, cfg.max_events or (15 if cfg.target == "xylo" else 1),
                                            neurons=cfg.encoder_neurons)


def build_policy_net(cfg: ReinforceConfig, n_in: int, n_actions: int, generator: torch.Generator):
    """The spiking policy network, Kaiming-initialised with the output layer scaled down (for
    ``target = xylo`` in the 8-bit weights' units: ``w = 1`` is the register value 127)."""
    if getattr(cfg, "target", "loihi") == "xylo":
        net = xylo_mlp([n_in, *cfg.hidden, n_actions], dash_syn=cfg.dash_syn, dash_mem=cfg.dash_mem,
                       vth=cfg.xylo_vth, readout_dash_syn=cfg.dash_syn, readout_dash_mem=cfg.readout_dash_mem,
                       fan_in=cfg.fan_in, mask_seed=cfg.seed + 50_000,
                       surrogate_alpha=cfg.surrogate_slope or 1.0)
    else:
        net = spiking_mlp([n_in, *cfg.hidden, n_actions], **neuron_options(cfg))
    synapses = [m for m in net.nodes.values() if isinstance(m, QuantLinear)]
    with torch.no_grad():
        for m in synapses:
            m.weight.copy_(torch.randn(m.weight.shape, generator=generator, dtype=m.weight.dtype)
                           * np.sqrt(2.0 / m.in_features))
        synapses[-1].weight.mul_(cfg.output_scale)
    return net


def _firing_rates(net, trace: dict) -> dict[str, float]:
    """Mean spikes per neuron per step of each hidden population, from a recorded pass."""
    spiking = [n for n, m in net.nodes.items() if isinstance(m, Neuron) and m.spiking]
    return {f"rate_{n}": float(trace[n + ".spikes"].detach().mean()) for n in spiking}


def _hidden_neurons(net) -> int:
    return sum(m.shape[0] for m in net.nodes.values() if isinstance(m, Neuron) and m.spiking)


def _sparsity(net, trace: dict) -> float:
    """Share of hidden neuron-steps without a spike, from a recorded pass."""
    zeros = [(trace[n + ".spikes"].detach() == 0).double().mean().item() for n, m in net.nodes.items()
             if isinstance(m, Neuron) and m.spiking and n + ".spikes" in trace]
    return float(np.mean(zeros)) if zeros else 1.0


@register_agent("reinforce", ReinforceConfig)
def train_reinforce(cfg: ReinforceConfig, progress: bool = True) -> TrainResult:
    """Train a spiking policy with REINFORCE; return the best greedy policy seen."""
    cfg.validate()
    seed_everything(cfg.seed)
    torch.set_num_threads(cfg.threads)
    env = make_env(cfg.env_id, cfg.seed)
    obs_shape, n_actions = observation_shape(env), int(env.action_space.n)
    encoding = spike_encoding(cfg, fit_encoding(cfg, obs_shape))
    logit_scale = cfg.logit_scale if cfg.target == "xylo" else 1.0
    init = torch.Generator().manual_seed(cfg.seed + 40_000)
    net = build_policy_net(cfg, encoding.n_inputs, n_actions, init)
    decoding = Decoding(step="mean" if cfg.readout == "voltage-mean" else "last")
    policy = Policy(net, cfg.T, encoding, decoding, Provenance("reinforce", cfg.env_id, cfg.seed, asdict(cfg)))
    params = list(net.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr)
    rng = np.random.default_rng(cfg.seed)

    # the best network is kept whole: growth may change its shape
    best, best_net, history, log = -np.inf, copy.deepcopy(net), [], []
    baseline, steps, t0 = None, 0, time.time()
    rules = GrowthRules(cfg.grow_below, cfg.grow_by, cfg.max_hidden, cfg.prune_below, cfg.prune_share,
                        cfg.min_hidden)
    grow_gen = torch.Generator().manual_seed(cfg.seed + 60_000)
    spike_sum: dict[str, np.ndarray] = {}
    spike_steps = 0
    obs, _ = env.reset(seed=cfg.seed)
    with training_metrics(cfg.metrics_port, "reinforce") as metrics:
        bar = tqdm(total=cfg.max_episodes, desc=f"train {cfg.env_id} (reinforce)", unit="episode",
                   disable=not progress, dynamic_ncols=True)
        stream = encoding.stream()
        for episode in range(cfg.max_episodes):
            observations, actions, rewards, done = [], [], [], False
            stream.reset()
            while not done:
                x = torch.as_tensor(stream.encode(obs[None]), dtype=policy.dtype)
                with torch.no_grad():
                    p = torch.softmax(window_readout(decoding, net.window(x, cfg.T)) * logit_scale, dim=1)[0].double().numpy()
                action = int(rng.choice(n_actions, p=p / p.sum()))
                observations.append(obs)
                actions.append(action)
                obs, reward, term, trunc, _ = env.step(action)
                rewards.append(float(reward))
                done = term or trunc
            obs, _ = env.reset()
            steps += len(rewards)

            # the episode's windows again, with gradients, in one batch (each window starts from zero state);
            # the same pass records the hidden spikes for the firing rates
            x = torch.as_tensor(encoding.encode_episode(np.asarray(observations)), dtype=policy.dtype)
            y, trace = net(x.expand(cfg.T, *x.shape), record=True)
            logp = torch.log_softmax(window_readout(decoding, y) * logit_scale, dim=1)
            entropy = -(logp.exp() * logp).sum(dim=1).mean()
            g = discounted_returns(rewards, cfg.gamma)
            a = cfg.baseline_alpha
            baseline = g.mean() if baseline is None else (1 - a) * baseline + a * g.mean()
            adv = torch.as_tensor(advantages(g, baseline), dtype=logp.dtype)
            beta = entropy_coefficient(cfg, episode)
            pg = -(logp[torch.arange(len(actions)), torch.as_tensor(actions)] * adv).mean()
            loss = pg - beta * entropy
            if cfg.sparsity_penalty:
                loss = loss + cfg.sparsity_penalty * activity_cost(net, trace, cfg.sparsity_measure)
            lr = learning_rate(cfg, episode)
            for group in opt.param_groups:
                group["lr"] = lr
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_value_(params, cfg.clip_value)
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.clip_norm))
            opt.step()
            log.append({"episode": episode, "return": float(sum(rewards)), "length": len(rewards),
                        "loss": float(loss.detach()), "policy_loss": float(pg.detach()),
                        "entropy": float(entropy.detach()), "entropy_coef": beta, "lr": lr, "grad_norm": grad_norm,
                        "baseline": float(baseline), **_firing_rates(net, trace)})
            history.append({"step": steps, "train_return": float(sum(rewards))})
            if cfg.grow_every:
                for n, m in net.nodes.items():  # per-neuron spike counts since the last check
                    if isinstance(m, Neuron) and m.spiking and n + ".spikes" in trace:
                        s = trace[n + ".spikes"].detach().sum(dim=(0, 1)).double().numpy()
                        spike_sum[n] = spike_sum.get(n, 0) + s
                spike_steps += cfg.T * len(actions)
                log[-1]["neurons"] = _hidden_neurons(net)
                if (episode + 1) % cfg.grow_every == 0:
                    net, events = growth_step(net, {k: v / spike_steps for k, v in spike_sum.items()}, rules, grow_gen)
                    spike_sum, spike_steps = {}, 0
                    if events:  # a new shape: new parameters, a new optimizer (Adam's moments start over)
                        policy.network = net
                        params = list(net.parameters())
                        opt = torch.optim.Adam(params, lr=lr)
                        log[-1]["growth"] = "; ".join(f"{e['event']} {e['layer']} {e['before']}->{e['after']}"
                                                      for e in events)
                        log[-1]["grown"] = sum(e["after"] - e["before"] for e in events if e["event"] == "grow")
                        log[-1]["pruned"] = sum(e["before"] - e["after"] for e in events if e["event"] == "prune")

            if metrics.port is not None:  # measured only while an endpoint serves them
                rates = [v for k, v in log[-1].items() if k.startswith("rate_")]
                metrics.episode(float(sum(rewards)), _hidden_neurons(net), float(np.mean(rates)) if rates else 0.0,
                                _sparsity(net, trace), log[-1].get("grown", 0), log[-1].get("pruned", 0))
            out_of_time = bool(cfg.max_seconds) and time.time() - t0 >= cfg.max_seconds
            if (episode + 1) % cfg.eval_every == 0 or out_of_time or episode == cfg.max_episodes - 1:
                rets = evaluate_torch(policy, cfg.env_id, cfg.eval_episodes, seed=cfg.seed + 20_000)
                mean = float(np.mean(rets))
                history.append({"step": steps, "episode": episode, "eval_mean": mean, "eval_returns": rets})
                log[-1]["eval_mean"] = mean
                if mean >= best:
                    best, best_net = mean, copy.deepcopy(net)
                bar.set_postfix(eval=f"{mean:.0f}", best=f"{best:.0f}", lr=f"{lr:.1e}")
                if mean >= cfg.target_return:
                    bar.update(1)
                    break
            bar.update(1)
            if out_of_time:
                break
        bar.close()
    env.close()
    policy.network = best_net
    best_net.eval()
    return TrainResult(policy, float(best), steps, time.time() - t0, history, log)
