"""A spiking decision transformer: offline from demonstrations, then fine-tuned online with REINFORCE.

The model reads a context of the last ``context`` steps of an episode. Each step is one
token of the return-to-go (scaled by the best return in the demonstrations), the
normalized observation and the previous action (one-hot), embedded linearly with a learned
position embedding. Blocks of spiking self-attention follow (Spikformer's SSA, Zhou et al.
2023): the token currents drive the contract's LIF neurons; queries, keys and values are
spikes of their own LIF populations; attention is ``(Q K^T) * scale`` under a causal mask,
with no softmax (spikes are non-negative, so the products are counts), times ``V``, into
another LIF population and a linear projection added back to the residual stream; then a
spiking MLP block. The head reads the last token's spikes. The window runs ``T`` steps of
the same context from zero state and the logits are the head's mean over the window.

Training is the decision transformer's (Chen et al. 2021): cross-entropy of every
position's logits against the action taken there (positions before the episode's start are
masked). Online fine-tuning plays episodes with the command ``target_return`` (the
return-to-go falls by each reward), samples actions from the softmax and takes REINFORCE
steps (normalized discounted returns, an entropy bonus, norm clipping).

NIR has no attention (no product of two activity streams), so this model does not
export, compile or deploy: its checkpoint says so to every command that would deploy it,
and names the deployable alternatives trained from the same demonstrations (agent ``bc``,
plain or ``--condition return``). It is here for comparison, in torch.
"""
from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from spikeloop.core.coding import InputEncoding, greedy_action
from spikeloop.core.errors import CheckpointError, ConfigError
from spikeloop.train.agents import FieldRules, TrainResult, register_agent
from spikeloop.train.graph import Neuron
from spikeloop.train.offline import demos_for

KIND = "spiking-decision-transformer"
"""the checkpoint record's kind (a policy checkpoint has none)"""

NOT_DEPLOYABLE = (
    "is a spiking decision transformer (agent sdt): NIR cannot express its self-attention (a product of two "
    "spiking activity streams over a context of returns-to-go, states and actions), so it cannot be exported, "
    "compiled or deployed; it runs in torch only. Deployable policies from the same demonstrations: "
    "`spikeloop train --agent bc --demos FILE` (behaviour cloning) or `--agent bc --condition return` "
    "(a return-conditioned spiking MLP)")


@dataclass
class SDTConfig:
    """A spiking decision transformer (every field is a CLI option of `spikeloop train --agent sdt`)."""

    demos: str = ""
    """the demonstrations file (`spikeloop collect`)"""
    env_id: str = ""
    """gymnasium environment id of the evaluations and fine-tuning (default: the demonstrations')"""
    seed: int = 0
    """seeds torch, the minibatch order and the fine-tuning's action sampling"""
    context: int = 10
    """steps of the episode the model reads (tokens)"""
    embed: int = 32
    """width of the token embedding and the residual stream"""
    heads: int = 2
    """attention heads (embed must be a multiple)"""
    layers: int = 1
    """self-attention blocks"""
    T: int = 4
    """timesteps of the spiking window per decision"""
    dv: float = 0.25
    """voltage decay per step of every LIF population"""
    vth: float = 1.0
    """firing threshold of every LIF population (the attention output's is half of it, as in SSA)"""
    attention_scale: float = 0.125
    """the factor on Q K^T (SSA's constant in place of a softmax)"""
    epochs: int = 20
    """offline passes over the demonstrations at most"""
    batch_size: int = 128
    """contexts per minibatch"""
    lr: float = 0.001
    """Adam learning rate offline"""
    finetune_episodes: int = 0
    """online REINFORCE episodes after the offline training (0: none)"""
    finetune_lr: float = 0.0001
    """Adam learning rate online"""
    gamma: float = 0.99
    """discount of the online returns"""
    entropy: float = 0.01
    """entropy bonus online"""
    clip_norm: float = 1.0
    """gradient norm clipping online"""
    target_return: float = 0.0
    """the command (return asked for) in evaluations and online (0: the best in the demonstrations)"""
    eval_episodes: int = 5
    """greedy episodes after each epoch and every eval_every fine-tuning episodes (the best model is kept)"""
    eval_every: int = 10
    """fine-tuning episodes between evaluations"""
    input_clip: float = 4.0
    """normalized observations are clipped to +-input_clip"""
    threads: int = 1
    """torch CPU threads"""
    max_seconds: float = 0.0
    """wall-clock budget in seconds (0: none)"""

    def validate(self) -> "SDTConfig":
        rules = FieldRules(self)
        if not isinstance(self.demos, str) or not self.demos:
            rules.bad("demos", "must name a demonstrations file (`spikeloop collect ... --out demos.npz`)")
        if self.env_id:
            rules.environment()
        rules.integer("seed", 0)
        for name in ("context", "embed", "heads", "layers", "T", "epochs", "batch_size", "eval_episodes",
                     "eval_every", "threads"):
            rules.integer(name, 1)
        rules.integer("finetune_episodes", 0)
        if isinstance(self.embed, int) and isinstance(self.heads, int) and self.heads > 0 \
                and self.embed % self.heads:
            rules.bad("embed", f"must be a multiple of heads ({self.heads})")
        if not 0 < rules.finite("dv") <= 1:
            rules.bad("dv", "must lie in (0, 1] (a voltage decay per step)")
        for name in ("vth", "attention_scale", "lr", "finetune_lr", "clip_norm", "input_clip"):
            if rules.finite(name) <= 0:
                rules.bad(name, "must be positive")
        if not 0 < rules.finite("gamma") <= 1:
            rules.bad("gamma", "must lie in (0, 1]")
        for name in ("entropy", "target_return", "max_seconds"):
            if rules.finite(name) < 0:
                rules.bad(name, "must not be negative")
        return self


def _lif(shape, cfg: SDTConfig, vth: float | None = None) -> Neuron:
    return Neuron(shape, "LIF", dv=cfg.dv, vth=cfg.vth if vth is None else vth, surrogate="fast-sigmoid",
                  surrogate_alpha=1.0)


class SpikingSelfAttention(nn.Module):
    """SSA under a causal mask: ``LIF(Wq s), LIF(Wk s), LIF(Wv s)`` -> ``(Q K^T * scale) V`` -> LIF -> Wo."""

    def __init__(self, cfg: SDTConfig):
        super().__init__()
        d, k = cfg.embed, cfg.context
        self.heads, self.scale = cfg.heads, cfg.attention_scale
        self.q, self.k, self.v, self.o = (nn.Linear(d, d, bias=False) for _ in range(4))
        self.lq, self.lk, self.lv = (_lif((k, d), cfg) for _ in range(3))
        self.lattn = _lif((k, d), cfg, vth=cfg.vth / 2)

    def step(self, s, mask, state):
        """One timestep on input spikes ``s`` ``(B, K, d)``; ``mask`` ``(B, 1, K, K)`` is where a query may look."""
        state = state or {}
        q, state["q"] = self.lq.step(self.q(s), state.get("q"))
        k, state["k"] = self.lk.step(self.k(s), state.get("k"))
        v, state["v"] = self.lv.step(self.v(s), state.get("v"))
        B, K, d = s.shape
        split = lambda x: x.reshape(B, K, self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        a = (split(q) @ split(k).transpose(-1, -2)) * self.scale * mask
        y = (a @ split(v)).transpose(1, 2).reshape(B, K, d)
        y, state["attn"] = self.lattn.step(y, state.get("attn"))
        return self.o(y), state


class Block(nn.Module):
    """Residual stream ``x`` -> ``x + SSA(LIF(x))`` -> ``+ W2 LIF(W1 LIF(x))``."""

    def __init__(self, cfg: SDTConfig):
        super().__init__()
        d, k = cfg.embed, cfg.context
        self.l_in, self.l_mlp_in, self.l_hidden = _lif((k, d), cfg), _lif((k, d), cfg), _lif((k, 4 * d), cfg)
        self.attn = SpikingSelfAttention(cfg)
        self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def step(self, x, mask, state):
        state = state or {}
        s, state["in"] = self.l_in.step(x, state.get("in"))
        y, state["attn"] = self.attn.step(s, mask, state.get("attn"))
        x = x + y
        s, state["mlp_in"] = self.l_mlp_in.step(x, state.get("mlp_in"))
        h, state["hidden"] = self.l_hidden.step(self.fc1(s), state.get("hidden"))
        return x + self.fc2(h), state


class SpikingDecisionTransformer(nn.Module):
    """Context tokens ``(B, K, n_obs + 1 + n_actions)`` and their validity ``(B, K)`` -> logits ``(B, K, actions)``."""

    def __init__(self, cfg: SDTConfig, n_obs: int, n_actions: int):
        super().__init__()
        self.cfg, self.n_obs, self.n_actions = cfg, n_obs, n_actions
        d, k = cfg.embed, cfg.context
        self.embed = nn.Linear(n_obs + 1 + n_actions, d)
        self.position = nn.Parameter(torch.zeros(k, d))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.l_out = _lif((k, d), cfg)
        self.head = nn.Linear(d, n_actions)
        causal = torch.tril(torch.ones(k, k))
        self.register_buffer("causal", causal)

    def forward(self, tokens: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        x0 = self.embed(tokens) + self.position
        # a query looks at earlier valid keys only; a padded query reads nothing
        mask = (self.causal * valid[:, None, :] * valid[:, :, None])[:, None]
        states = [None] * len(self.blocks) + [None]
        out = 0.0
        for _ in range(self.cfg.T):  # the same context each step, from zero state
            x = x0
            for i, block in enumerate(self.blocks):
                x, states[i] = block.step(x, mask, states[i])
            s, states[-1] = self.l_out.step(x, states[-1])
            out = out + self.head(s)
        return out / self.cfg.T


class DecisionTransformerPolicy:
    """The trained model with its frozen normalization and return scale; not a deployable Policy."""

    def __init__(self, model: SpikingDecisionTransformer, encoding: InputEncoding, return_scale: float,
                 command: float, env_id: str, config: dict):
        self.model, self.encoding, self.return_scale = model, encoding, float(return_scale)
        self.command, self.env_id, self.config = float(command), env_id, dict(config)

    @property
    def context(self) -> int:
        return self.model.cfg.context

    def tokens(self, obs_history: np.ndarray, rtg_history: np.ndarray, prev_actions: np.ndarray):
        """The context ending at the last step of one episode's history: ``(tokens (K, f), valid (K,))``."""
        K, n = self.context, len(obs_history)
        take = slice(max(0, n - K), n)
        x = self.encoding.encode(np.asarray(obs_history[take], np.float64))
        rtg = np.asarray(rtg_history[take], np.float64)[:, None] / self.return_scale
        onehot = np.zeros((len(x), self.model.n_actions))
        prev = np.asarray(prev_actions[take])
        onehot[prev >= 0, prev[prev >= 0]] = 1.0
        tok = np.zeros((K, x.shape[1] + 1 + self.model.n_actions))
        valid = np.zeros(K)
        tok[K - len(x):] = np.concatenate([rtg, x, onehot], axis=1)
        valid[K - len(x):] = 1.0
        return tok, valid

    def save(self, path: Path, extra: dict | None = None) -> Path:
        """Write the model (safetensors, a JSON record that names it as not deployable)."""
        from safetensors.torch import save_file

        from spikeloop.core.artifacts import atomic_path

        record = {"format": 2, "kind": KIND, "config": self.config, "encoding": self.encoding.to_dict(),
                  "n_obs": self.model.n_obs, "n_actions": self.model.n_actions, "return_scale": self.return_scale,
                  "command": self.command, "env_id": self.env_id, "extra": extra or {},
                  "note": "not deployable: " + NOT_DEPLOYABLE}
        tensors = {k: v.detach().contiguous() for k, v in self.model.state_dict().items()}
        with atomic_path(Path(path)) as tmp:
            save_file(tensors, str(tmp), metadata={"spikeloop": json.dumps(record, sort_keys=True)})
        return Path(path)


def load_decision_transformer(path: str | Path) -> DecisionTransformerPolicy:
    """Read a checkpoint written by :meth:`DecisionTransformerPolicy.save` (no pickle)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from spikeloop.train.agents import config_from_dict

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            record = json.loads((f.metadata() or {})["spikeloop"])
        if record.get("kind") != KIND:
            raise ValueError(f"kind {record.get('kind')!r}, not {KIND!r}")
        cfg = config_from_dict(SDTConfig, record["config"])
        model = SpikingDecisionTransformer(cfg, int(record["n_obs"]), int(record["n_actions"]))
        model.load_state_dict(load_file(str(path)), strict=True)
        encoding = InputEncoding.from_dict(record["encoding"])
    except (OSError, KeyError, ValueError, TypeError, RuntimeError, ConfigError) as e:
        raise CheckpointError(f"{path}: not a readable spiking decision transformer checkpoint ({e})") from e
    model.eval()
    return DecisionTransformerPolicy(model, encoding, record["return_scale"], record["command"], record["env_id"],
                                     record["config"])


def _contexts(policy: DecisionTransformerPolicy, demos) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every step's context ending there, with the actions at each position (-1: padding)."""
    toks, valids, targets = [], [], []
    K = policy.context
    for e in np.unique(demos.episode):
        rows = np.flatnonzero(demos.episode == e)
        obs, rtg, act = demos.observations[rows], demos.returns_to_go[rows], demos.actions[rows]
        prev = np.concatenate([[-1], act[:-1]])
        for t in range(len(rows)):
            tok, valid = policy.tokens(obs[:t + 1], rtg[:t + 1], prev[:t + 1])
            target = np.full(K, -1)
            target[K - min(t + 1, K):] = act[max(0, t + 1 - K):t + 1]
            toks.append(tok)
            valids.append(valid)
            targets.append(target)
    f = torch.float32
    return (torch.as_tensor(np.stack(toks), dtype=f), torch.as_tensor(np.stack(valids), dtype=f),
            torch.as_tensor(np.stack(targets)))


def play(policy: DecisionTransformerPolicy, env_id: str, episodes: int, seed: int,
         rng: np.random.Generator | None = None) -> tuple[list[float], list[dict]]:
    """Episodes with the command (greedy, or sampled from the softmax with ``rng``); per episode
    the return and, when sampling, the contexts, actions and rewards for a policy-gradient step."""
    from spikeloop.core.envs import make_env

    returns, trajectories = [], []
    for ep in range(episodes):
        env = make_env(env_id)
        obs, _ = env.reset(seed=seed + ep)
        hist_obs, hist_rtg, hist_prev, toks, valids, actions, rewards = [], [], [], [], [], [], []
        rtg, prev, done = policy.command, -1, False
        while not done:
            hist_obs.append(np.asarray(obs, np.float64))
            hist_rtg.append(rtg)
            hist_prev.append(prev)
            tok, valid = policy.tokens(np.stack(hist_obs), np.asarray(hist_rtg), np.asarray(hist_prev))
            with torch.no_grad():
                logits = policy.model(torch.as_tensor(tok[None], dtype=torch.float32),
                                      torch.as_tensor(valid[None], dtype=torch.float32))[0, -1].double().numpy()
            if rng is None:
                action = int(greedy_action(logits))
            else:
                p = np.exp(logits - logits.max())
                action = int(rng.choice(len(p), p=p / p.sum()))
                toks.append(tok)
                valids.append(valid)
            obs, r, term, trunc, _ = env.step(action)
            actions.append(action)
            rewards.append(float(r))
            rtg, prev, done = rtg - float(r), action, term or trunc
        env.close()
        returns.append(float(sum(rewards)))
        if rng is not None:
            trajectories.append({"tokens": np.stack(toks), "valid": np.stack(valids), "actions": actions,
                                 "rewards": rewards})
    return returns, trajectories


@register_agent("sdt", SDTConfig, undeployable=NOT_DEPLOYABLE)
def train_sdt(cfg: SDTConfig, progress: bool = True) -> TrainResult:
    """Train offline on the demonstrations, then fine-tune online; the best greedy model seen."""
    from spikeloop.train.agents.reinforce import advantages, discounted_returns
    from spikeloop.train.seeding import seed_everything

    cfg.validate()
    demos, env_id, n_obs, n_actions = demos_for(cfg.demos, cfg.env_id)  # checked before training starts
    seed_everything(cfg.seed)
    torch.set_num_threads(cfg.threads)
    encoding = InputEncoding.fit(demos.observations, clip=cfg.input_clip, bits=8)
    best_return = float(max(demos.returns))
    scale = best_return or 1.0
    policy = DecisionTransformerPolicy(SpikingDecisionTransformer(cfg, n_obs, n_actions), encoding, scale,
                                       cfg.target_return or best_return, env_id, asdict(cfg))
    model = policy.model
    X, V, Y = _contexts(policy, demos)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    best, best_state, history, log, t0, steps = -np.inf, copy.deepcopy(model.state_dict()), [], [], time.time(), 0

    def evaluate(row: dict) -> None:
        nonlocal best, best_state
        model.eval()
        mean = float(np.mean(play(policy, env_id, cfg.eval_episodes, cfg.seed + 20_000)[0]))
        model.train()
        row["eval_mean"] = mean
        history.append({"step": steps, "eval_mean": mean, "phase": row["phase"]})
        if mean >= best:
            best, best_state = mean, copy.deepcopy(model.state_dict())

    def out_of_time() -> bool:
        return bool(cfg.max_seconds) and time.time() - t0 >= cfg.max_seconds

    bar = tqdm(total=cfg.epochs + cfg.finetune_episodes, desc=f"sdt {env_id}", unit="round",
               disable=not progress, dynamic_ncols=True)
    for epoch in range(cfg.epochs):
        perm = torch.randperm(len(Y), generator=gen)
        losses, correct, seen = [], 0, 0
        for k in range(0, len(Y), cfg.batch_size):
            idx = perm[k:k + cfg.batch_size]
            logits = model(X[idx], V[idx])
            y = Y[idx]
            loss = nn.functional.cross_entropy(logits.reshape(-1, n_actions), y.reshape(-1), ignore_index=-1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            last = logits[:, -1].argmax(1)
            correct, seen = correct + int((last == y[:, -1]).sum()), seen + len(idx)
        steps += len(Y)
        row = {"phase": "offline", "step": steps, "epoch": epoch, "loss": float(np.mean(losses)), "accuracy": correct / seen}
        evaluate(row)
        log.append(row)
        bar.update(1)
        bar.set_postfix(loss=f"{row['loss']:.3f}", eval=f"{row['eval_mean']:.0f}")
        if row["eval_mean"] >= policy.command or out_of_time():
            break
    if cfg.finetune_episodes:
        model.load_state_dict(best_state)  # fine-tune the best offline model
        opt = torch.optim.Adam(model.parameters(), lr=cfg.finetune_lr)
        rng = np.random.default_rng(cfg.seed)
        for episode in range(cfg.finetune_episodes):
            if out_of_time():
                break
            ret, (traj,) = play(policy, env_id, 1, cfg.seed + 30_000 + episode, rng)
            logits = model(torch.as_tensor(traj["tokens"], dtype=torch.float32),
                           torch.as_tensor(traj["valid"], dtype=torch.float32))[:, -1]
            logp = torch.log_softmax(logits, dim=1)
            g = discounted_returns(traj["rewards"], cfg.gamma)
            adv = torch.as_tensor(advantages(g, g.mean()), dtype=logp.dtype)
            entropy = -(logp.exp() * logp).sum(dim=1).mean()
            loss = -(logp[torch.arange(len(adv)), torch.as_tensor(traj["actions"])] * adv).mean() \
                - cfg.entropy * entropy
            opt.zero_grad()
            loss.backward()
            grad = float(nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm))
            opt.step()
            steps += len(traj["actions"])
            row = {"phase": "online", "step": steps, "episode": episode, "return": ret[0], "loss": float(loss.detach()),
                   "entropy": float(entropy.detach()), "grad_norm": grad}
            if (episode + 1) % cfg.eval_every == 0 or episode + 1 == cfg.finetune_episodes:
                evaluate(row)
            log.append(row)
            bar.update(1)
            bar.set_postfix(ret=f"{ret[0]:.0f}")
    bar.close()
    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(policy, float(best), steps, time.time() - t0, history, log)
