"""Closed-loop evaluation: observation -> decision window -> readout -> action -> env step.

One function runs any :class:`~spikeloop.core.backend.Backend` (the torch policy, the
emulator, the reference, Lava per-node or fused) on the same seeded episodes, so returns
and actions are comparable decision by decision. It never asks which backend it holds.
"""
from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from spikeloop.core.backend import Backend
from spikeloop.core.coding import greedy_action
from spikeloop.core.envs import make_env
from spikeloop.core.errors import ConfigError, RuntimeMismatchError
from spikeloop.runtime.counters import OpCounts


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
    trace: dict | None = None
    """with ``record``: per decision, ``observations``, ``values``, ``actions`` and ``episode``"""

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))

    def summary(self) -> dict:
        return {"backend": self.backend, "precision": self.precision, "episodes": len(self.returns),
                "mean_return": self.mean_return, "std_return": float(np.std(self.returns)),
                "min_return": float(np.min(self.returns)), "max_return": float(np.max(self.returns)),
                "mean_length": self.decisions / max(len(self.returns), 1),
                "returns": list(map(float, self.returns)),
                "decisions": self.decisions, "agreement_with_torch": self.agreement,
                "q_max_abs_diff_vs_torch": self.q_max_abs_diff, "seconds": self.seconds, **self.extra}


def run_closed_loop(backend: Backend, env_id: str, episodes: int, seed: int, reference: Backend | None = None,
                    twin: Backend | None = None, progress: bool = True,
                    max_steps: int | None = None, record: bool = False) -> ClosedLoopResult:
    """Run ``episodes`` greedy episodes of ``backend`` (episode ``i`` reset with ``seed + i``).

    ``backend``, ``reference`` and ``twin`` may be started already (they stay started) or
    not (the runner starts them and stops them on every path). ``reference`` is queried on
    every observation the backend saw, for the action agreement and the largest value
    difference. ``twin`` decides on the same observations and must produce exactly the
    same raw output at every decision (:class:`RuntimeMismatchError` otherwise): the
    bit-exact emulator beside Lava fixed point. ``record`` keeps every observation, the
    values and the action decided on it (:attr:`ClosedLoopResult.trace`), so that another
    framework's model can be checked on exactly what the backend saw.
    """
    if getattr(backend, "batch", None) is not None:
        return _run_batched(backend, env_id, episodes, seed, reference, twin, progress, max_steps, record)
    if twin is not None:  # refuse before anything is started
        for b, role in ((backend, "checked"), (twin, "twin")):
            if not hasattr(b, "last_output"):
                raise ConfigError(f"the {role} backend {b.name!r} shows no raw output (last_output) to "
                                  "compare exactly; a twin check needs two plan backends")
    t0 = time.time()
    with ExitStack() as stack:
        for b in (backend, reference, twin):
            if b is not None:
                stack.enter_context(b)
                b.reset()  # this run's counts, from decision 0
        returns, decisions, agree, qdiff = [], 0, 0, 0.0
        trace = {"observations": [], "values": [], "actions": [], "episode": []} if record else None
        bar = tqdm(total=episodes, desc=f"{backend.name} {backend.precision}", unit="ep",
                   disable=not progress, dynamic_ncols=True)
        stack.callback(bar.close)
        stack.push(_partial(lambda: ClosedLoopResult(
            backend.name, backend.precision, list(returns), sum(_lengths), None, None, None, time.time() - t0,
            {"complete": False})))
        _lengths: list[int] = []
        for ep in range(episodes):
            env = make_env(env_id)
            obs, _ = env.reset(seed=seed + ep)
            for b in (backend, reference, twin):
                if b is not None:
                    b.begin_episode()
            total, done, steps = 0.0, False, 0
            while not done:
                q = backend.decide(obs)
                if twin is not None:
                    q_twin = twin.decide(obs)
                    raw, raw_twin = (np.asarray(b.last_output, np.float64) for b in (backend, twin))
                    if not np.array_equal(raw, raw_twin):
                        raise RuntimeMismatchError(
                            f"{backend.name} {backend.precision} and its twin {twin.name} differ at decision "
                            f"{decisions} (episode {ep}, step {steps}): raw output {raw.tolist()} vs "
                            f"{raw_twin.tolist()} (values {q} vs {q_twin})")
                action = greedy_action(q)
                if trace is not None:
                    for key, value in (("observations", obs), ("values", q), ("actions", action),
                                       ("episode", ep)):
                        trace[key].append(np.asarray(value))
                if reference is not None:
                    rq = reference.decide(obs)
                    agree += int(greedy_action(rq) == action)
                    qdiff = max(qdiff, float(np.abs(rq - q).max()))
                obs, r, term, trunc, _ = env.step(action)
                total += r
                decisions += 1
                steps += 1
                done = term or trunc or (max_steps is not None and steps >= max_steps)
            env.close()
            returns.append(total)
            _lengths.append(steps)
            bar.update(1)
            bar.set_postfix(mean_return=f"{np.mean(returns):.1f}")
        bar.close()
        counts = backend.counts()
    mapping = getattr(backend, "mapping", "")
    if trace is not None:
        trace = {k: np.stack(v) if v else np.zeros((0,)) for k, v in trace.items()}
    return ClosedLoopResult(backend.name, backend.precision, returns, decisions, counts,
                            agree / decisions if reference is not None else None,
                            qdiff if reference is not None else None, time.time() - t0,
                            {"mapping": mapping} if mapping else {}, trace)


def _run_batched(backend, env_id: str, episodes: int, seed: int, reference, twin, progress: bool,
                 max_steps: int | None, record: bool) -> ClosedLoopResult:
    """:func:`run_closed_loop` on a backend of ``B`` copies of the network, one environment each.

    Copy ``i`` takes the next episode as soon as its own ends (episode ``k`` reset with
    ``seed + k``), so every episode is the one a single-copy run plays: the same
    observations, values, actions and returns (the trace is ordered as a single run's).
    Copies without an episode left run on, masked out of the counts (``backend.active``).
    Counts differ from a single run's only in each population's steps before its window,
    which carry the previous decision of the same copy.
    """
    n = backend.batch
    if getattr(backend, "memory", "window") != "window":
        raise ConfigError(f"{backend.name}: a streaming policy (memory 'stream') carries its state from one "
                          "episode into the next, so copies that play different episodes would each carry a "
                          "different history; run it with one environment")
    encoding = getattr(getattr(backend, "plan", None), "encoding", None)
    if encoding is not None and encoding.stateful:
        raise ConfigError(f"{backend.name}: the {encoding.code} code carries what it sent from one decision "
                          "to the next, one episode at a time; run it with one environment")
    if twin is not None and getattr(twin, "batch", None) != n:
        raise ConfigError(f"the twin of a batch of {n} copies must be a batch of {n} copies")
    t0 = time.time()
    with ExitStack() as stack:
        for b in (backend, reference, twin):
            if b is not None:
                stack.enter_context(b)
                b.reset()
        envs = [stack.enter_context(_closing(make_env(env_id))) for _ in range(n)]
        episode = np.full(n, -1)
        totals, steps = np.zeros(n), np.zeros(n, int)
        obs = None
        returns: list[float | None] = [None] * episodes
        nxt, decisions, agree, qdiff = 0, 0, 0, 0.0
        rows = []  # (episode, step, observation, values, action)
        bar = tqdm(total=episodes, desc=f"{backend.name} {backend.precision} x{n}", unit="ep",
                   disable=not progress, dynamic_ncols=True)
        stack.callback(bar.close)
        done_steps: list[int] = []
        stack.push(_partial(lambda: ClosedLoopResult(
            backend.name, backend.precision, [r for r in returns if r is not None], sum(done_steps), None, None,
            None, time.time() - t0, {"complete": False, "envs": n})))

        def start(i: int) -> None:
            nonlocal nxt, obs
            if nxt >= episodes:
                episode[i] = -1
                return
            o, _ = envs[i].reset(seed=seed + nxt)
            o = np.asarray(o)
            if obs is None:
                obs = np.zeros((n,) + o.shape, o.dtype)
            obs[i], episode[i], totals[i], steps[i] = o, nxt, 0.0, 0
            nxt += 1

        for i in range(n):
            start(i)
        while np.any(episode >= 0):
            active = episode >= 0
            for b in (backend, twin):
                if b is not None:
                    b.active = active
            q = backend.decide(obs)
            if twin is not None:
                q_twin = twin.decide(obs)
                raw, raw_twin = (np.asarray(b.last_output, np.float64)[:, active] for b in (backend, twin))
                if not np.array_equal(raw, raw_twin):
                    raise RuntimeMismatchError(
                        f"{backend.name} {backend.precision} and its twin {twin.name} differ at decision "
                        f"{decisions} (batch of {n}): values {q[active].tolist()} vs {q_twin[active].tolist()}")
            actions = greedy_action(q)
            for i in np.flatnonzero(active):
                a = int(actions[i])
                if reference is not None:
                    rq = reference.decide(obs[i])
                    agree += int(greedy_action(rq) == a)
                    qdiff = max(qdiff, float(np.abs(rq - q[i]).max()))
                if record:
                    rows.append((int(episode[i]), int(steps[i]), obs[i].copy(), np.asarray(q[i]), a))
                o, r, term, trunc, _ = envs[i].step(a)
                obs[i] = o
                totals[i] += r
                steps[i] += 1
                decisions += 1
                if term or trunc or (max_steps is not None and steps[i] >= max_steps):
                    returns[int(episode[i])] = float(totals[i])
                    done_steps.append(int(steps[i]))
                    bar.update(1)
                    start(i)
        bar.close()
        counts = backend.counts()
    trace = None
    if record:
        rows.sort(key=lambda r: (r[0], r[1]))
        trace = {"observations": np.stack([r[2] for r in rows]), "values": np.stack([r[3] for r in rows]),
                 "actions": np.asarray([r[4] for r in rows]), "episode": np.asarray([r[0] for r in rows])}
    mapping = getattr(backend, "mapping", "")
    extra = {"envs": n} | ({"mapping": mapping} if mapping else {})
    return ClosedLoopResult(backend.name, backend.precision, [float(r) for r in returns], decisions, counts,
                            agree / decisions if reference is not None else None,
                            qdiff if reference is not None else None, time.time() - t0, extra, trace)


class _closing:
    """An environment as a context: closed on every path."""

    def __init__(self, env):
        self.env = env

    def __enter__(self):
        return self.env

    def __exit__(self, *exc):
        self.env.close()


def _partial(result_so_far):
    """An exit callback that hands an exception (or a signal's ``KeyboardInterrupt``) the
    episodes completed so far, as ``exc.partial_result`` (marked incomplete); nothing when
    no episode was completed."""
    def on_exit(exc_type, exc, tb):
        if exc is not None and not hasattr(exc, "partial_result"):
            r = result_so_far()
            if r.returns:
                try:
                    exc.partial_result = r
                except AttributeError:  # an exception type that takes no attributes
                    pass
        return False
    return on_exit
