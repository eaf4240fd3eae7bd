"""Open-loop simulation of a NIR graph: one input row per timestep, every neuron recorded.

Backends: ``torch`` (the graph's own time: no pipeline delays, float), ``emulator``
and ``lava`` (Lava timing: one step of delay per Dense hop; float or bit-accurate
fixed point). The Lava pipeline latency of each population (its depth in Dense hops)
is removed, so row ``t`` of every output answers input row ``t`` as the source
framework would; the latencies are returned for the record.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from spikeloop.core.errors import ConfigError
from spikeloop.runtime.emulator import Emulator
from spikeloop.runtime.fixed_point import FixedPlan, quantize_plan
from spikeloop.runtime.plan import INPUT, NetworkPlan
from spikeloop.core.neuron import cuba_step

SIM_BACKENDS = ("torch", "emulator", "lava")


@dataclass
class SimulationResult:
    backend: str
    precision: str
    spikes: dict[str, np.ndarray] = field(default_factory=dict)
    """per spiking population: (timesteps, neurons) 0/1"""
    v: dict[str, np.ndarray] = field(default_factory=dict)
    """per population: (timesteps, neurons) voltage after reset, in real units"""
    v_raw: dict[str, np.ndarray] = field(default_factory=dict)
    """fixed point only: the integer voltage registers"""
    output: np.ndarray | None = None
    latency: dict[str, int] = field(default_factory=dict)
    """Lava steps removed per population (0 for torch)"""

    def arrays(self) -> dict[str, np.ndarray]:
        """Flat ``{'<node>.spikes', '<node>.v', 'output'}`` mapping for an .npz file."""
        out = {f"{k}.spikes": v for k, v in self.spikes.items()}
        out |= {f"{k}.v": v for k, v in self.v.items()}
        out["output"] = self.output
        out["latency_removed"] = np.array([self.latency.get(k, 0) for k in self.v], dtype=np.int64)
        return out


def input_payload(plan: NetworkPlan, inputs: np.ndarray, precision: str) -> np.ndarray:
    """What the host injects per step: the inputs, or their integer payloads in fixed point."""
    x = np.asarray(inputs, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != plan.input_size:
        raise ConfigError(f"input must be (timesteps, {plan.input_size}), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ConfigError("input contains NaN or inf")
    if precision != "fixed":
        return x
    scale = plan.encoding.scale if plan.input_graded else 1.0
    payload = x * scale
    if not np.allclose(payload, np.rint(payload), atol=1e-9):
        raise ConfigError("fixed-point simulation needs inputs on the payload grid: binary spikes "
                          "(0/1) for a graph without a spikeloop input encoding, or multiples of "
                          f"1/{scale:g} for one with it")
    return np.rint(payload).astype(np.int64)


def _finish(res: SimulationResult, plan: NetworkPlan) -> SimulationResult:
    out = plan.population(plan.output)
    res.output = res.spikes[out.name] if out.spiking else res.v[out.name]
    return res


def _simulate_torch(plan: NetworkPlan, x: np.ndarray) -> SimulationResult:
    """The graph in its own time (no pipeline delays), float64, with the shared step function.

    Populations run in the plan's order; a connection with graph delay ``g`` delivers its
    source's output of step ``t - g`` (the same step for ``g = 0``).
    """
    res = SimulationResult("torch", "float")
    weights = {c.name: torch.as_tensor(c.weight) for c in plan.connections}
    u = {p.name: torch.zeros(p.size, dtype=torch.float64) for p in plan.populations}
    v = {p.name: torch.zeros(p.size, dtype=torch.float64) for p in plan.populations}
    sent = {INPUT: [torch.as_tensor(row) for row in x]} | {p.name: [] for p in plan.populations}
    traces_v = {p.name: [] for p in plan.populations}
    for t in range(len(x)):
        for p in plan.populations:
            a_in = torch.zeros(p.size, dtype=torch.float64)
            for c in plan.incoming(p.name):
                if t - c.graph_delay >= 0:
                    a_in = a_in + weights[c.name] @ sent[c.src][t - c.graph_delay]
            u[p.name], v[p.name], s, _ = cuba_step(
                u[p.name], v[p.name], a_in, du=float(np.min(p.du)), dv=float(np.min(p.dv)),
                bias=torch.as_tensor(p.bias), vth=p.vth, reset=p.reset,
                spike_fn=lambda d: (d > 0).to(torch.float64))
            sent[p.name].append(s if s is not None else v[p.name].clone())
            traces_v[p.name].append(v[p.name].numpy().copy())
    res.spikes = {p.name: torch.stack(sent[p.name]).numpy().astype(np.int8).reshape(len(x), -1)
                  for p in plan.populations if p.spiking}
    res.v = {k: np.asarray(t).reshape(len(x), -1) for k, t in traces_v.items()}
    res.latency = {p.name: 0 for p in plan.populations}
    return _finish(res, plan)


def simulate(plan: NetworkPlan, inputs: np.ndarray, backend: str = "emulator", precision: str = "float",
             fixed: FixedPlan | None = None) -> SimulationResult:
    """Run ``plan`` open loop on ``inputs`` (timesteps, input_size); see the module docstring."""
    if backend not in SIM_BACKENDS:
        raise ConfigError(f"backend must be one of {SIM_BACKENDS}, got {backend!r}")
    if precision not in ("float", "fixed"):
        raise ConfigError(f"precision must be 'float' or 'fixed', got {precision!r}")
    if backend == "torch":
        if precision != "float":
            raise ConfigError("the torch backend runs in float; use emulator or lava for fixed point")
        return _simulate_torch(plan, input_payload(plan, inputs, "float"))
    if precision == "fixed" and fixed is None:
        fixed = quantize_plan(plan)
    x = input_payload(plan, inputs, precision)
    n = len(x)
    depth = {k: d for k, d in plan.depths().items() if k != INPUT}
    steps = n + max(depth.values())
    padded = np.concatenate([x, np.zeros((steps - n, x.shape[1]), x.dtype)])
    raw_s, raw_v = {}, {}
    if backend == "emulator":
        em = Emulator(plan, precision, fixed, windowed=False)
        recs = [em.step(row) for row in padded]
        for p in plan.populations:
            raw_v[p.name] = np.stack([r[p.name][1] for r in recs])
            if p.spiking:
                raw_s[p.name] = np.stack([r[p.name][0] for r in recs])
    else:
        from spikeloop.runtime.lava_runtime import LavaNetwork

        with LavaNetwork(plan, precision, "per-node", fixed, probe_steps=steps, windowed=False,
                         sequence=padded) as net:
            net.run(steps)
            probes = net.probes()
        for (name, what), data in probes.items():
            (raw_v if what == "v" else raw_s)[name] = data
    res = SimulationResult(backend, precision, latency=depth)
    for p in plan.populations:
        k = depth[p.name]
        v = raw_v[p.name][k:k + n]
        if precision == "fixed":
            res.v_raw[p.name] = v.astype(np.int64)
            res.v[p.name] = v / fixed.populations[p.name].scale
        else:
            res.v[p.name] = np.asarray(v, np.float64)
        if p.spiking:
            res.spikes[p.name] = (raw_s[p.name][k:k + n] != 0).astype(np.int8)
    return _finish(res, plan)
