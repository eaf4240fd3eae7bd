"""Closed-loop evaluation: observation -> decision window -> readout -> action -> env step.

One function runs every backend (torch float, the emulator, Lava float and fixed) on
the same seeded episodes, so returns and actions are comparable decision by decision.
"""
from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from spikeloop.core.errors import ConfigError, RuntimeMismatchError
from spikeloop.runtime.counters import OpCounts
from spikeloop.runtime.emulator import Emulator
from spikeloop.runtime.fixed_point import FixedPlan, quantize_plan
from spikeloop.runtime.plan import NetworkPlan
from spikeloop.core.coding import greedy_action
from spikeloop.core.envs import make_env
from spikeloop.train.layers import SpikingMLP

BACKENDS = ("torch", "emulator", "lava")


class HostCodec:
    """What the host sends into the network and how it reads the output back."""

    def __init__(self, plan: NetworkPlan, precision: str, fixed: FixedPlan | None):
        if plan.encoding is None:
            raise ConfigError("the policy graph has no input encoding in its metadata; "
                              "closed-loop runs need one (export it with spikeloop)")
        self.plan, self.precision, self.fixed = plan, precision, fixed

    def encode(self, obs: np.ndarray) -> np.ndarray:
        enc = self.plan.encoding
        return enc.to_payload(obs) if self.precision == "fixed" else enc.encode(obs)

    def decode(self, v_out: np.ndarray) -> np.ndarray:
        if self.precision == "fixed":
            return np.asarray(v_out, np.float64) / self.fixed.populations[self.plan.output].scale
        return np.asarray(v_out, np.float64)


@dataclass
class ClosedLoopResult:
    backend: str
    precision: str
    returns: list[float]
    decisions: int
    counts: OpCounts | None = None
    agreement: float | None = None
    """fraction of decisions where the reference policy picked the same action"""
    q_max_abs_diff: float | None = None
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))

    def summary(self) -> dict:
        return {"backend": self.backend, "precision": self.precision, "episodes": len(self.returns),
                "mean_return": self.mean_return, "std_return": float(np.std(self.returns)),
                "min_return": float(np.min(self.returns)), "returns": list(map(float, self.returns)),
                "decisions": self.decisions, "agreement_with_torch": self.agreement,
                "q_max_abs_diff_vs_torch": self.q_max_abs_diff, "seconds": self.seconds, **self.extra}


def torch_policy(model: SpikingMLP, plan: NetworkPlan) -> Callable[[np.ndarray], np.ndarray]:
    """Q-values of the torch model for one observation, through the same encoder."""
    dtype = next(model.parameters()).dtype

    def q(obs):
        with torch.no_grad():
            x = torch.as_tensor(plan.encoding.encode(np.asarray(obs)[None]), dtype=dtype)
            return model(x)[0].double().numpy()

    return q


def run_closed_loop(plan: NetworkPlan, env_id: str, episodes: int, seed: int, backend: str = "lava",
                    precision: str = "fixed", mapping: str = "fused", model: SpikingMLP | None = None,
                    reference: SpikingMLP | None = None, fixed: FixedPlan | None = None,
                    check_emulator: bool = False, progress: bool = True,
                    max_steps: int | None = None) -> ClosedLoopResult:
    """Run ``episodes`` greedy episodes (episode ``i`` reset with ``seed + i``).

    ``reference`` (a torch model) is queried on every observation the backend saw, to
    measure action agreement. ``check_emulator`` steps the bit-exact emulator beside
    Lava and raises :class:`RuntimeMismatchError` on the first differing output.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if fixed is None and precision == "fixed" and backend != "torch":
        fixed = quantize_plan(plan)
    codec = HostCodec(plan, precision, fixed)
    ref_q = torch_policy(reference, plan) if reference is not None else None
    t0 = time.time()
    with ExitStack() as stack:
        twin = None
        if backend == "torch":
            if model is None:
                raise ConfigError("backend 'torch' needs the torch model (a checkpoint)")
            tq = torch_policy(model, plan)
            policy = tq
            counts_fn = lambda: None  # noqa: E731
        elif backend == "emulator":
            em = Emulator(plan, precision, fixed)
            policy = lambda obs: codec.decode(em.decide(codec.encode(obs)))  # noqa: E731
            counts_fn = lambda: em.counts  # noqa: E731
        else:
            from spikeloop.runtime.lava_runtime import LavaNetwork

            net = stack.enter_context(LavaNetwork(plan, precision, mapping, fixed))
            if check_emulator:
                twin = Emulator(plan, precision, fixed)

            def policy(obs):
                x = codec.encode(obs)
                v = net.decide(x)
                if twin is not None:
                    v_twin = twin.decide(x)
                    if not np.array_equal(np.asarray(v, np.float64), np.asarray(v_twin, np.float64)):
                        raise RuntimeMismatchError(
                            f"Lava {precision} ({mapping}) and the emulator differ at decision "
                            f"{twin.counts.decisions}: {v} vs {v_twin}")
                return codec.decode(v)

            counts_fn = net.counts

        returns, decisions, agree, qdiff = [], 0, 0, 0.0
        bar = tqdm(total=episodes, desc=f"{backend} {precision}", unit="ep", disable=not progress,
                   dynamic_ncols=True)
        for ep in range(episodes):
            env = make_env(env_id)
            obs, _ = env.reset(seed=seed + ep)
            total, done, steps = 0.0, False, 0
            while not done:
                q = policy(obs)
                action = greedy_action(q)
                if ref_q is not None:
                    rq = ref_q(obs)
                    agree += int(greedy_action(rq) == action)
                    qdiff = max(qdiff, float(np.abs(rq - q).max()))
                obs, r, term, trunc, _ = env.step(action)
                total += r
                decisions += 1
                steps += 1
                done = term or trunc or (max_steps is not None and steps >= max_steps)
            env.close()
            returns.append(total)
            bar.update(1)
            bar.set_postfix(mean_return=f"{np.mean(returns):.1f}")
        bar.close()
        counts = counts_fn()
    return ClosedLoopResult(backend, precision, returns, decisions, counts,
                            agree / decisions if ref_q is not None else None,
                            qdiff if ref_q is not None else None, time.time() - t0,
                            {"mapping": mapping} if backend == "lava" else {})
