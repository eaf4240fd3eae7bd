"""Behaviour cloning: a spiking policy trained to pick a recorded expert's actions, in one file.

The network is the spiking MLP of the other agents (readout voltages as logits, as in
REINFORCE); the loss is the cross-entropy of those logits against the actions of a
demonstrations file (``spikeloop collect``, format in :mod:`spikeloop.train.offline`), with
Adam over shuffled minibatches, the input normalization frozen from the demonstrations, and
a greedy evaluation after every epoch (the best policy is kept). The result is an ordinary
policy: it exports, compiles and runs in Lava.

``condition = "return"`` trains a **return-conditioned** policy (upside-down RL / RvS):
the network also takes the return of the episode each step came from, ``G / G_max``, as one
more input, so that demonstrations of mixed quality teach what each return looks like.
At deployment the policy is asked for one return, ``command_return`` (default: the best in the
demonstrations). A constant input through the first synapse is a constant current, and with
``du_hidden = 1`` (no current state) a constant current is exactly a bias of the first
population: the command is folded into that bias (``b += W[:, -1] * command_return / G_max``),
so the deployed policy is a plain spiking MLP of the observations that exports, compiles
and runs in Lava like any other. Evaluation during training runs the folded policy.
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from spikeloop.core.coding import Decoding, InputEncoding
from spikeloop.train.agents import FieldRules, TrainResult, register_agent
from spikeloop.train.offline import demos_for
from spikeloop.train.sparsity import activity_cost


@dataclass
class BCConfig:
    """Behaviour cloning of a spiking policy (every field is a CLI option of `spikeloop train --agent bc`)."""

    demos: str = ""
    """the demonstrations file (`spikeloop collect`)"""
    env_id: str = ""
    """gymnasium environment id of the evaluations (default: the demonstrations')"""
    seed: int = 0
    """seeds torch and the minibatch order: same seed, same weights"""
    epochs: int = 30
    """passes over the demonstrations at most (training stops early once the eval target is met)"""
    batch_size: int = 256
    """steps per minibatch"""
    lr: float = 0.005
    """Adam learning rate"""
    hidden: list[int] = field(default_factory=lambda: [64])
    """hidden LIF layer sizes"""
    T: int = 8
    """timesteps per decision window"""
    dv_hidden: float = 0.125
    """voltage decay per step of the hidden LIF neurons"""
    dv_readout: float = 0.125
    """voltage decay per step of the readout"""
    du_hidden: float = 1.0
    """current decay per step of the hidden neurons"""
    du_readout: float = 1.0
    """current decay per step of the readout"""
    vth: float = 1.0
    """firing threshold of the hidden neurons"""
    reset: str = "hard"
    """reset after a spike: hard or soft"""
    surrogate: str = "fast-sigmoid"
    """surrogate gradient of the spike"""
    surrogate_slope: float = 1.0
    """slope of the surrogate (0: its usual value)"""
    readout: str = "voltage-mean"
    """the logits: the readout voltage at the last step (voltage-last) or its mean over the window"""
    output_scale: float = 1.0
    """the output layer's Kaiming initialisation is scaled by this"""
    eval_episodes: int = 10
    """greedy episodes after each epoch (the best policy is kept)"""
    target_return: float = 500.0
    """stop once the greedy eval mean reaches this"""
    fake_quant: bool = True
    """train against the 8-bit weight grid of the fixed-point deployment"""
    input_clip: float = 4.0
    """normalized observations are clipped to +-input_clip"""
    input_bits: int = 8
    """bits of the graded input payload"""
    threads: int = 1
    """torch CPU threads"""
    max_seconds: float = 0.0
    """wall-clock budget in seconds (0: none)"""
    sparsity_penalty: float = 0.0
    """weight of the activity cost in the loss, to trade return for energy (0: off; spikeloop.train.sparsity)"""
    sparsity_measure: str = "synops"
    """the activity cost: synops (share of the possible synaptic events the hidden spikes cause) or spikes (per
    hidden neuron and step)"""
    condition: str = "none"
    """none: plain behaviour cloning; return: a return-conditioned policy (the episode's return is one more
    input in training; the deployed command is folded into the first layer's bias)"""
    command_return: float = 0.0
    """with condition return: the return asked for at deployment (0: the best return in the demonstrations)"""

    def validate(self) -> "BCConfig":
        from spikeloop.core.metadata import MAX_T
        from spikeloop.train.agents.reinforce import READOUTS

        rules = FieldRules(self)
        if not isinstance(self.demos, str) or not self.demos:
            rules.bad("demos", "must name a demonstrations file (`spikeloop collect ... --out demos.npz`)")
        if self.env_id:
            rules.environment()
        rules.integer("seed", 0)
        rules.integer("epochs", 1)
        rules.integer("batch_size", 1)
        rules.integer("T", 1, MAX_T)
        rules.hidden()
        rules.neuron()
        if self.readout not in READOUTS:
            rules.bad("readout", f"must be one of {', '.join(READOUTS)}")
        for name in ("lr", "output_scale"):
            if rules.finite(name) <= 0:
                rules.bad(name, "must be positive")
        rules.integer("eval_episodes", 1)
        rules.finite("target_return")
        rules.encoding()
        rules.sparsity()
        rules.boolean("fake_quant")
        if self.condition not in CONDITIONS:
            rules.bad("condition", f"must be one of {', '.join(CONDITIONS)}")
        if rules.finite("command_return") < 0:
            rules.bad("command_return", "must be 0 (the best return in the demonstrations) or a positive return")
        if self.condition == "return" and self.du_hidden != 1:
            rules.bad("du_hidden", "must be 1 with condition return: only without a current state is the "
                                   "command's constant input exactly a bias of the first layer")
        return self


CONDITIONS = ("none", "return")


def episode_returns(demos) -> np.ndarray:
    """Per step of the demonstrations, the return of its episode (float64)."""
    firsts = demos.step == 0
    by_episode = dict(zip(demos.episode[firsts].tolist(), demos.returns_to_go[firsts].tolist()))
    return np.asarray([by_episode[e] for e in demos.episode.tolist()], np.float64)


def fold_command(net, conditioned, command: float) -> None:
    """Copy ``conditioned`` (one more input: the command) into ``net``, the command folded into
    the bias of the population behind ``fc0`` (exact while that population has ``du = 1``)."""
    state = {k: v.clone() for k, v in conditioned.state_dict().items()}
    w = state["nodes.fc0.weight"]
    first = next(dst for src, dst in net.edges if src == "fc0")
    state["nodes.fc0.weight"] = w[:, :-1].contiguous()
    state[f"nodes.{first}.bias"] = state[f"nodes.{first}.bias"] + w[:, -1] * command
    net.load_state_dict(state)


@register_agent("bc", BCConfig)
def train_bc(cfg: BCConfig, progress: bool = True) -> TrainResult:
    """Clone the demonstrations' actions into a spiking policy; the best greedy policy seen."""
    from spikeloop.train.agents.reinforce import build_policy_net
    from spikeloop.train.evaluate import evaluate_torch
    from spikeloop.train.policy import Policy, Provenance, window_readout
    from spikeloop.train.seeding import seed_everything

    cfg.validate()
    demos, env_id, n_obs, n_actions = demos_for(cfg.demos, cfg.env_id)  # checked before training starts
    seed_everything(cfg.seed)
    torch.set_num_threads(cfg.threads)
    encoding = InputEncoding.fit(demos.observations, clip=cfg.input_clip, bits=cfg.input_bits)
    conditioned = cfg.condition == "return"
    init = torch.Generator().manual_seed(cfg.seed + 40_000)
    # a return-conditioned network takes the command as one more input; the policy is the folded one
    trained = build_policy_net(cfg, encoding.n_inputs + conditioned, n_actions, init)
    net = build_policy_net(cfg, encoding.n_inputs, n_actions, init) if conditioned else trained
    decoding = Decoding(step="mean" if cfg.readout == "voltage-mean" else "last")
    policy = Policy(net, cfg.T, encoding, decoding, Provenance("bc", env_id, cfg.seed, asdict(cfg)))
    X = torch.as_tensor(encoding.encode(demos.observations), dtype=policy.dtype)
    if conditioned:
        G = episode_returns(demos)
        g_max = float(np.abs(G).max()) or 1.0
        command = (cfg.command_return or float(G.max())) / g_max
        X = torch.cat([X, torch.as_tensor(G / g_max, dtype=X.dtype)[:, None]], dim=1)
    Y = torch.as_tensor(demos.actions)
    opt = torch.optim.Adam(trained.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    best, best_net, history, log, t0 = -np.inf, copy.deepcopy(net), [], [], time.time()
    bar = tqdm(total=cfg.epochs, desc=f"clone {env_id} (bc)", unit="epoch", disable=not progress, dynamic_ncols=True)
    for epoch in range(cfg.epochs):
        perm = torch.randperm(len(Y), generator=gen)
        losses, correct = [], 0
        for k in range(0, len(Y), cfg.batch_size):
            idx = perm[k:k + cfg.batch_size]
            x = X[idx]
            y, trace = trained(x.expand(cfg.T, *x.shape), record=True) if cfg.sparsity_penalty else \
                (trained(x.expand(cfg.T, *x.shape)), None)
            logits = window_readout(decoding, y)
            loss = torch.nn.functional.cross_entropy(logits, Y[idx])
            if cfg.sparsity_penalty:
                loss = loss + cfg.sparsity_penalty * activity_cost(trained, trace, cfg.sparsity_measure)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            correct += int((logits.argmax(1) == Y[idx]).sum())
        if conditioned:
            fold_command(net, trained, command)
        mean = float(np.mean(evaluate_torch(policy, env_id, cfg.eval_episodes, seed=cfg.seed + 20_000)))
        log.append({"epoch": epoch, "loss": float(np.mean(losses)), "accuracy": correct / len(Y), "eval_mean": mean}
                   | ({"command_return": command * g_max} if conditioned else {}))
        history.append({"step": (epoch + 1) * len(Y), "epoch": epoch, "eval_mean": mean})
        if mean >= best:
            best, best_net = mean, copy.deepcopy(net)
        bar.set_postfix(loss=f"{log[-1]['loss']:.3f}", acc=f"{log[-1]['accuracy']:.3f}", eval=f"{mean:.0f}")
        bar.update(1)
        if mean >= cfg.target_return or (cfg.max_seconds and time.time() - t0 >= cfg.max_seconds):
            break
    bar.close()
    policy.network = best_net
    best_net.eval()
    return TrainResult(policy, float(best), len(Y) * len(log), time.time() - t0, history, log)
