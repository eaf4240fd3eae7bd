"""Open-loop simulation of a NIR graph: one input row per timestep, every neuron recorded.

Any registered backend that records (:data:`spikeloop.runtime.backends.BACKENDS`):
``reference`` (the graph's own time: no pipeline delays, float; the old name ``torch``),
``emulator`` and ``lava-per-node`` (the old name ``lava``) on Lava timing (one step of
delay per Dense hop; float or bit-accurate fixed point). The Lava pipeline latency of
each population (its depth in Dense hops) is removed, so row ``t`` of every output
answers input row ``t`` as the source framework would; the latencies are returned for
the record.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spikeloop.core.errors import ConfigError
from spikeloop.runtime.backends import PRECISIONS, make_backend
from spikeloop.runtime.fixed_point import FixedPlan
from spikeloop.runtime.plan import NetworkPlan


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
    """Lava steps removed per population (0 in the graph's own time: the reference)"""

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


def simulate(plan: NetworkPlan, inputs: np.ndarray, backend: str = "emulator", precision: str = "float",
             fixed: FixedPlan | None = None) -> SimulationResult:
    """Run ``plan`` open loop on ``inputs`` (timesteps, input_size); see the module docstring.

    ``backend`` is a registered name (or an old alias); ``fixed`` the fixed-point
    registers (quantized if omitted).
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be 'float' or 'fixed', got {precision!r}")
    x = input_payload(plan, inputs, precision)
    runner = make_backend(backend, plan, precision, fixed, windowed=False)
    rec = runner.record(x)
    n = len(x)
    res = SimulationResult(backend, precision, latency=dict(rec.latency))
    for p in plan.populations:
        k = rec.latency[p.name]
        v = rec.v[p.name][k:k + n]
        if precision == "fixed":
            res.v_raw[p.name] = v.astype(np.int64)
            res.v[p.name] = v / runner.fixed.populations[p.name].scale
        else:
            res.v[p.name] = np.asarray(v, np.float64)
        if p.spiking:
            res.spikes[p.name] = (rec.spikes[p.name][k:k + n] != 0).astype(np.int8)
    out = plan.population(plan.output)
    res.output = res.spikes[out.name] if out.spiking else res.v[out.name]
    return res
