"""Spiking DQN in the style of DSQN (Liu et al. 2022) with the Rainbow parts, in one readable file.

The Q-network is a spiking MLP (:func:`~spikeloop.train.networks.spiking_mlp`), or for an
image environment spiking convolutions before it (``conv_channels``,
:func:`~spikeloop.train.networks.spiking_conv`, the convolutional DSQN):
observations enter as graded input held for ``T`` timesteps, hidden LIF or CUBA-LIF
layers (hard or soft reset, arctan, sigmoid or fast-sigmoid surrogate), and a readout
decoded as its voltage at the last step, its mean over the window, or its spike count.
Training is DQN with experience replay and a target network. Each Rainbow part
(Hessel et al. 2018) is a switch of the config, and each deploys as plain NIR or as the
decoding the runner applies:

- ``double``: the online network picks the next action, the target network rates it;
- ``dueling``: value and advantage streams (both spiking); ``Q = V + A - mean A`` is the
  readout layer itself (two fixed-combination heads summing into the readout);
- ``n_step``: n-step returns;
- ``prioritized``: proportional prioritized replay with importance weights;
- ``noisy``: noisy linear synapses (exploration), deterministic (their means) at export;
- ``atoms > 1``: distributional C51; the readout holds ``atoms`` logits per action and the
  deployed decoding takes the expectation over the atoms' softmax on the host.

Every source of randomness is seeded: the same config and seed give the same weights.
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from spikeloop.core.coding import ATOMS, SPIKE_COUNT, Decoding, SpikeEncoding
from spikeloop.core.envs import make_env, observation_shape
from spikeloop.core.errors import ConfigError
from spikeloop.train.agents import FieldRules, TrainResult, fit_encoding, neuron_options, register_agent
from spikeloop.train.evaluate import evaluate_torch
from spikeloop.train.networks import dense_mlp, noisy_layers, spiking_conv, spiking_mlp
from spikeloop.train.policy import Policy, Provenance, decode_window, window_readout
from spikeloop.train.replay import NStep, PrioritizedReplay, ReplayBuffer
from spikeloop.train.seeding import seed_everything
from spikeloop.train.sparsity import activity_cost


@dataclass
class DQNConfig:
    """Hyperparameters of a spiking DQN run (every field is a CLI option of `spikeloop train`)."""

    env_id: str = "CartPole-v1"
    """gymnasium environment id (Discrete actions; Box observations: a vector, or an image for conv_channels)"""
    seed: int = 0
    """seeds the environment, torch, numpy and replay sampling: same seed, same weights"""
    total_steps: int = 60_000
    """environment steps at most (training stops early once the eval target is met)"""
    hidden: list[int] = field(default_factory=lambda: [64, 64])
    """hidden LIF layer sizes (after the convolutions, if any)"""
    conv_channels: list[int] = field(default_factory=list)
    """channels of the spiking convolutions before the hidden layers (empty: an MLP); an image environment
    (as MinAtar/Breakout-v1) only"""
    conv_kernel: int = 3
    """kernel size of every convolution"""
    conv_stride: int = 1
    """stride of every convolution"""
    network: str = "spiking"
    """spiking (the deployable Q-network) or dense (a ReLU twin of the same sizes: the comparison baseline and
    the source of `spikeloop convert`; it does not export to NIR)"""
    T: int = 8
    """timesteps per decision window"""
    dv_hidden: float = 0.125
    """voltage decay per step of the hidden LIF neurons (tau = dt/dv)"""
    dv_readout: float = 0.125
    """voltage decay per step of the leaky-integrator readout (1: no memory, a dense layer per step)"""
    du_hidden: float = 1.0
    """current decay per step of the hidden neurons: 1 is a LIF neuron, below 1 a CUBA-LIF (tau_syn = dt/du)"""
    du_readout: float = 1.0
    """current decay per step of the readout (1: LI, below 1: CUBA-LI)"""
    vth: float = 1.0
    """firing threshold of the hidden neurons (and of a spiking readout)"""
    reset: str = "hard"
    """reset after a spike: hard (v = 0) or soft (v -= vth)"""
    surrogate: str = "arctan"
    """surrogate gradient of the spike: arctan, sigmoid or fast-sigmoid"""
    surrogate_slope: float = 0.0
    """slope of the surrogate (0: its usual value, arctan 2, sigmoid 25, fast-sigmoid 25)"""
    readout: str = "voltage-last"
    """what the readout gives as Q: voltage-last, voltage-mean (both a leaky integrator) or spike-count
    (a spiking readout; counts lie in [0, T], so scale rewards to fit with reward_scale)"""
    reward_scale: float = 1.0
    """rewards are multiplied by this before learning (the returns reported are unscaled)"""
    double: bool = True
    """double DQN: the online network picks the next action, the target network rates it"""
    dueling: bool = False
    """dueling value and advantage streams (both spiking) in place of the last hidden layer"""
    n_step: int = 1
    """n-step returns"""
    prioritized: bool = False
    """proportional prioritized replay (importance weights annealed from per_beta to 1)"""
    per_alpha: float = 0.5
    """prioritized replay: priority exponent"""
    per_beta: float = 0.4
    """prioritized replay: initial importance-sampling exponent"""
    noisy: bool = False
    """noisy linear synapses for exploration (their means deploy); set eps_start = eps_end = 0 with them"""
    noisy_std: float = 0.5
    """noisy synapses: initial noise scale sigma_0 (sigma = sigma_0 / sqrt(fan-in))"""
    atoms: int = 1
    """distributional C51 when above 1: atoms per action on [v_min, v_max]"""
    v_min: float = -10.0
    """C51: smallest atom (in scaled reward units)"""
    v_max: float = 10.0
    """C51: largest atom"""
    adam_eps: float = 1e-8
    """Adam's epsilon"""
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
    speck: bool = False
    """train on Speck's (DYNAP-CNN's) arithmetic: integrate-and-fire layers without leak or bias, 8-bit
    integer weights, a 16-bit state, a spiking readout (Q = spike count; needs readout spike-count and
    conv_channels): the torch policy then gives the Speck emulator's spikes (spikeloop.train.speck)"""
    netx_grid: bool = False
    """train the layers behind the first on lava-dl netx's grid (no weight exponent, bias exponent fixed at 6:
    biases on half the weight step, a weight step dividing twice the threshold), so that `spikeloop export
    --format netx` keeps them exactly (an MLP without dueling streams; with --input-bits 6 the first layer's
    weights stay exact too)"""
    eval_every: int = 2_500
    """environment steps between greedy evaluations (the best policy is kept)"""
    eval_episodes: int = 10
    """episodes per greedy evaluation"""
    target_return: float = 495.0
    """stop once the greedy eval mean reaches this"""
    norm_steps: int = 2_000
    """random-policy steps used to freeze the input normalization"""
    input_clip: float = 4.0
    """normalized observations are clipped to +-input_clip (a vector's; an image is scaled by each channel's
    peak into [-1, 1])"""
    input_bits: int = 8
    """bits of the graded input payload (Loihi 2 graded spikes)"""
    encoder: str = "graded"
    """the input: graded (Loihi 2's graded payload), or binary events of a spike encoder, at most one per
    channel and step, as Loihi 1 and Speck take them (rate: on/off channels; population: encoder_neurons
    tuning curves per value; events: the observation as event counts, for a binary board, an image kept an
    image). The delta code is stateful across decisions and replay samples decisions out of order: not
    offered here"""
    encoder_neurons: int = 9
    """channels per observation value of a population code"""
    threads: int = 1
    """torch CPU threads"""
    max_seconds: float = 0.0
    """wall-clock budget of the training loop in seconds, evaluations included (0: none); the run stops with
    one last evaluation. Where it stops a run, the same seed need not stop at the same step twice"""
    sparsity_penalty: float = 0.0
    """weight of the activity cost in the loss, to trade return for energy (0: off; spikeloop.train.sparsity)"""
    sparsity_measure: str = "synops"
    """the activity cost: synops (share of the possible synaptic events the hidden spikes cause) or spikes (per
    hidden neuron and step)"""

    def validate(self) -> "DQNConfig":
        """Refuse every value training cannot run with (one error naming the field and the value)."""
        from spikeloop.core.metadata import MAX_T

        rules = FieldRules(self)
        bad, finite, integer = rules.bad, rules.finite, rules.integer
        rules.environment()
        integer("seed", 0)
        integer("total_steps", 1)
        integer("T", 1, MAX_T)
        rules.hidden()
        if not isinstance(self.conv_channels, list) or not all(
                isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in self.conv_channels):
            raise ConfigError(f"config field 'conv_channels' must list positive channel counts (or be empty), got "
                              f"{self.conv_channels!r}")
        integer("conv_kernel", 1, 64)
        integer("conv_stride", 1, 64)
        rules.neuron()
        if self.readout not in READOUTS:
            bad("readout", f"must be one of {', '.join(READOUTS)}")
        if finite("reward_scale") <= 0:
            bad("reward_scale", "must be positive")
        rules.boolean("double", "dueling", "prioritized", "noisy")
        integer("n_step", 1, 1000)
        for name in ("per_alpha", "per_beta"):
            if not 0 <= finite(name) <= 1:
                bad(name, "must be in [0, 1]")
        if finite("noisy_std") <= 0:
            bad("noisy_std", "must be positive")
        integer("atoms", 1, 1001)
        if finite("v_max") <= finite("v_min"):
            raise ConfigError(f"config field 'v_max' ({self.v_max}) must exceed 'v_min' ({self.v_min})")
        if self.network not in ("spiking", "dense"):
            bad("network", "must be spiking or dense")
        if self.network == "dense" and (self.dueling or self.noisy or self.atoms > 1 or self.conv_channels):
            raise ConfigError("config field 'network' dense is the plain ReLU twin of an MLP: it takes no dueling, "
                              "noisy, atoms or conv_channels option")
        if self.atoms > 1 and self.readout == "spike-count":
            raise ConfigError("config field 'readout' spike-count cannot carry C51 atoms (their logits are "
                              "voltages); use voltage-last or voltage-mean with atoms > 1")
        if finite("adam_eps") <= 0:
            bad("adam_eps", "must be positive")
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
        for name in ("train_freq", "target_update", "eval_every", "eval_episodes"):
            integer(name, 1)
        for name in ("eps_start", "eps_end", "eps_fraction"):
            if not 0 <= finite(name) <= 1:
                bad(name, "must be in [0, 1]")
        if finite("grad_clip") <= 0:
            bad("grad_clip", "must be positive")
        finite("target_return")
        rules.encoding()
        rules.sparsity()
        rules.boolean("fake_quant")
        rules.boolean("netx_grid", "speck")
        if self.encoder not in ENCODERS:
            bad("encoder", f"must be one of {', '.join(ENCODERS)}")
        integer("encoder_neurons", 2, 64)
        if self.encoder != "graded" and self.network != "spiking":
            bad("encoder", "a spike encoder feeds a spiking network (not network dense)")
        if self.encoder in ("rate", "population") and self.conv_channels:
            bad("encoder", f"the {self.encoder} code feeds a spiking MLP (its channels are not an image's); an "
                "image's events: encoder events")
        if self.speck and self.encoder != "events":
            bad("speck", "needs encoder events (Speck takes input events: a binary board, one event per lit pixel)")
        if self.speck and (self.readout != "spike-count" or not self.conv_channels or self.dueling or self.atoms > 1
                           or not self.fake_quant):
            bad("speck", "needs readout spike-count, conv_channels, fake_quant and no dueling streams or atoms (Speck's "
                "cores are convolutions of integrate-and-fire neurons whose output is spikes)")
        if self.netx_grid and (not self.fake_quant or self.dueling or self.conv_channels or self.network != "spiking"):
            bad("netx_grid", "needs fake_quant and a spiking MLP without dueling streams or convolutions (the chain "
                "of layers netx describes)")
        return self


READOUTS = ("voltage-last", "voltage-mean", "spike-count")
ENCODERS = ("graded", "rate", "population", "events")


def check_observations(cfg: DQNConfig, obs_shape: tuple[int, ...]) -> None:
    """Convolutions need an image: one error naming the environment's observations otherwise."""
    if cfg.conv_channels and len(obs_shape) != 3:
        raise ConfigError(f"config field 'conv_channels' {cfg.conv_channels} needs an image environment; "
                          f"{cfg.env_id} gives vectors of {obs_shape[0]} (leave conv_channels empty for an MLP)")


def build_qnet(cfg: DQNConfig, obs_shape: tuple[int, ...], n_actions: int):
    """The spiking Q-network of ``cfg`` for observations of ``obs_shape`` (``(n,)`` or an image's
    ``(C, H, W)``): an MLP, or convolutions then an MLP, with its readout, streams and atoms."""
    check_observations(cfg, obs_shape)
    n_in = int(np.prod(obs_shape))
    if cfg.network == "dense":
        return dense_mlp([n_in, *cfg.hidden, n_actions])
    options = dict(neuron_options(cfg), spiking_readout=cfg.readout == "spike-count", dueling=cfg.dueling,
                   atoms=cfg.atoms, noisy_std=cfg.noisy_std if cfg.noisy else 0.0)
    if cfg.netx_grid:
        options["netx_grid"] = True
    if cfg.speck:
        options["speck"] = True
    if cfg.conv_channels:
        return spiking_conv(list(obs_shape), cfg.conv_channels, [*cfg.hidden, n_actions * cfg.atoms],
                            kernel=cfg.conv_kernel, stride=cfg.conv_stride, **options)
    return spiking_mlp([n_in, *cfg.hidden, n_actions * cfg.atoms], **options)


def decoding_of(cfg: DQNConfig) -> Decoding:
    """The deployed decoding of ``cfg``'s readout (C51: the expectation over the atoms)."""
    step = "mean" if cfg.readout == "voltage-mean" else "last"
    if cfg.atoms > 1:
        return Decoding(kind=ATOMS, step=step, atoms=tuple(np.linspace(cfg.v_min, cfg.v_max, cfg.atoms).tolist()))
    if cfg.readout == "spike-count":
        return Decoding(kind=SPIKE_COUNT)
    return Decoding(step=step)


def _set_noise(policy: Policy, on: bool, generator: torch.Generator | None = None) -> None:
    for m in noisy_layers(policy.network):
        m.noise_on = on
        if on and generator is not None:
            m.reset_noise(generator)


def _c51_target(cfg: DQNConfig, q: Policy, q_target: Policy, xn, reward, discount, done, z) -> torch.Tensor:
    """The target distribution of C51: ``r + discount * z`` under the chosen next action, projected
    back onto the atoms (Bellemare et al. 2017)."""
    b, n = xn.shape[0], z.numel()
    logits_next = window_readout(q_target.decoding, q_target.network.window(xn, q_target.T))
    p_next = torch.softmax(logits_next.reshape(b, -1, n), dim=-1)
    chooser = q(xn) if cfg.double else p_next @ z
    p = p_next[torch.arange(b), chooser.argmax(dim=1)]
    tz = (reward[:, None] + (discount * (1 - done))[:, None] * z[None]).clamp(cfg.v_min, cfg.v_max)
    pos = (tz - cfg.v_min) / ((cfg.v_max - cfg.v_min) / (n - 1))
    lo, hi = pos.floor().long(), pos.ceil().long()
    m = torch.zeros(b, n, dtype=p.dtype)
    m.scatter_add_(1, lo, p * (hi.to(p.dtype) - pos + (lo == hi).to(p.dtype)))
    m.scatter_add_(1, hi, p * (pos - lo.to(p.dtype)))
    return m


@register_agent("dqn", DQNConfig)
def train_dqn(cfg: DQNConfig, progress: bool = True) -> TrainResult:
    """Train a spiking Q-network; return the best greedy policy seen."""
    cfg.validate()
    seed_everything(cfg.seed)
    torch.set_num_threads(cfg.threads)
    env = make_env(cfg.env_id, cfg.seed)
    obs_shape, n_actions = observation_shape(env), int(env.action_space.n)
    obs_dim = int(np.prod(obs_shape))
    try:
        check_observations(cfg, obs_shape)
    except ConfigError:
        env.close()
        raise
    encoding = fit_encoding(cfg, obs_shape)
    if cfg.encoder != "graded":  # binary events only
        encoding = SpikeEncoding.from_normalization(encoding, cfg.encoder, 1, neurons=cfg.encoder_neurons)
    provenance = Provenance("dqn", cfg.env_id, cfg.seed, asdict(cfg))
    window = 1 if cfg.network == "dense" else cfg.T  # a dense network decides in one step
    net_in = obs_shape if cfg.encoder in ("graded", "events") else (encoding.n_inputs,)
    q = Policy(build_qnet(cfg, net_in, n_actions), window, encoding, decoding_of(cfg), provenance)
    q_target = copy.deepcopy(q)
    noise = torch.Generator().manual_seed(cfg.seed + 30_000)
    _set_noise(q, True, noise)
    _set_noise(q_target, True, noise)
    opt = torch.optim.Adam(q.network.parameters(), lr=cfg.lr, eps=cfg.adam_eps)
    rng = np.random.default_rng(cfg.seed)
    buf = (PrioritizedReplay(cfg.buffer_size, obs_dim, cfg.per_alpha) if cfg.prioritized
           else ReplayBuffer(cfg.buffer_size, obs_dim))
    nstep = NStep(cfg.n_step, cfg.gamma)
    z = torch.as_tensor(q.decoding.atoms, dtype=q.dtype) if cfg.atoms > 1 else None

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
        for t in nstep.push(obs, action, reward * cfg.reward_scale, next_obs, term, trunc):
            buf.add(*t)  # a truncation is not a terminal state: its next state is bootstrapped
        obs, ep_return = next_obs, ep_return + reward
        if term or trunc:
            history.append({"step": step, "train_return": ep_return})
            obs, _ = env.reset()
            ep_return = 0.0

        if step > cfg.learning_starts and step % cfg.train_freq == 0 and buf.size:
            beta = cfg.per_beta + (1.0 - cfg.per_beta) * step / cfg.total_steps
            i, weights = buf.sample(rng, cfg.batch_size, beta)
            x = torch.as_tensor(encoding.encode(buf.obs[i]), dtype=torch.float32)
            xn = torch.as_tensor(encoding.encode(buf.next_obs[i]), dtype=torch.float32)
            a = torch.as_tensor(buf.action[i])
            r, done, discount = (torch.as_tensor(v[i]) for v in (buf.reward, buf.done, buf.discount))
            if z is None:
                with torch.no_grad():
                    if cfg.double:  # online picks, target rates
                        q_next = q_target(xn).gather(1, q(xn).argmax(dim=1, keepdim=True)).squeeze(1)
                    else:
                        q_next = q_target(xn).max(dim=1).values
                    target = r + discount * q_next * (1 - done)
            else:
                with torch.no_grad():
                    m = _c51_target(cfg, q, q_target, xn, r, discount, done, z)
            y, trace = q.network.window(x, q.T, record=True) if cfg.sparsity_penalty else \
                (q.network.window(x, q.T), None)
            if z is None:
                q_sa = decode_window(q.decoding, y).gather(1, a[:, None]).squeeze(1)
                per_sample = F.smooth_l1_loss(q_sa, target, reduction="none")
                priority = (q_sa - target).detach()
            else:
                logits = window_readout(q.decoding, y).reshape(len(i), n_actions, -1)
                logp = torch.log_softmax(logits, dim=-1)[torch.arange(len(i)), a]
                per_sample = -(m * logp).sum(dim=1)
                priority = per_sample.detach()
            loss = per_sample.mean() if weights is None else (torch.as_tensor(weights) * per_sample).mean()
            if cfg.sparsity_penalty:
                loss = loss + cfg.sparsity_penalty * activity_cost(q.network, trace, cfg.sparsity_measure)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(q.network.parameters(), cfg.grad_clip)
            opt.step()
            buf.update(i, priority.numpy())
            _set_noise(q, True, noise)
            _set_noise(q_target, True, noise)
        if step % cfg.target_update == 0:
            q_target.network.load_state_dict(q.network.state_dict())

        out_of_time = bool(cfg.max_seconds) and time.time() - t0 >= cfg.max_seconds
        if (step % cfg.eval_every == 0 or out_of_time) and step > cfg.learning_starts:
            _set_noise(q, False)  # greedy evaluation of the policy that deploys: the noise means
            rets = evaluate_torch(q, cfg.env_id, cfg.eval_episodes, seed=cfg.seed + 20_000)
            _set_noise(q, True)
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
        if out_of_time:  # evaluated just above: the last stretch of training counts too
            bar.update(step - bar.n)
            break
    bar.close()
    env.close()
    _set_noise(q, False)
    q.network.load_state_dict(best_state)
    q.network.eval()
    return TrainResult(q, float(best), step, time.time() - t0, history)
