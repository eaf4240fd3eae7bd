"""The plan-level reference: the compiled network in the graph's own time, in torch float64.

No Lava timing: a connection delivers its source's output of the same step (a recurrent
edge or a Delay node of ``g`` steps that of step ``t - g``), as the torch
``SpikingGraph`` and the peers' simulators do. It runs the same
:func:`spikeloop.core.neuron.cuba_step` as every other backend, with per-neuron decays
as they are. Float only: fixed point exists on Lava's timing (the emulator, Lava).
"""
from __future__ import annotations

import numpy as np
import torch

from spikeloop.core.errors import ConfigError
from spikeloop.core.neuron import cuba_step
from spikeloop.runtime.backends import FLOAT_PRECISION, PlanBackend, Recording
from spikeloop.runtime.fixed_point import FixedPlan
from spikeloop.runtime.plan import INPUT, DecisionWindow, NetworkPlan


def _spike(d):
    return (d > 0).to(torch.float64)


class Reference(PlanBackend):
    """The plan in graph time (see the module docstring); decisions hold the input ``T`` steps."""

    name = "reference"
    timed_like_lava = False
    clears_in_flight = True  # every decision replays graph time from zero state

    def __init__(self, plan: NetworkPlan, precision: str = FLOAT_PRECISION, fixed: FixedPlan | None = None,
                 windowed: bool = True, memory: str = "window"):
        if precision != FLOAT_PRECISION:
            raise ConfigError(f"the reference backend runs in float only, got precision {precision!r}; "
                              "use 'emulator' or a Lava backend for fixed point")
        if memory != "window":
            raise ConfigError("the reference runs graph time, which has no pipeline drain between decisions; "
                              "streaming decisions (memory 'stream') are defined on Lava's timing: use the "
                              "emulator or a Lava backend")
        super().__init__(plan, FLOAT_PRECISION, None, windowed, memory)
        self._weights = {c.name: torch.as_tensor(np.asarray(c.weight, np.float64)) for c in plan.connections}
        self._params = {p.name: (torch.as_tensor(p.du), torch.as_tensor(p.dv), torch.as_tensor(p.bias))
                        for p in plan.populations}
        self.reset()

    @property
    def window(self) -> DecisionWindow:
        """No Dense delays in graph time: the output's window is the input's ``T`` steps."""
        return DecisionWindow(self.plan.T, latency=0)

    def reset(self) -> None:
        """Zero every state and forget the history of sent outputs."""
        self.t = 0
        self.u = {p.name: torch.zeros(p.size, dtype=torch.float64) for p in self.plan.populations}
        self.v = {p.name: torch.zeros(p.size, dtype=torch.float64) for p in self.plan.populations}
        self._sent: dict[str, list] = {INPUT: []} | {p.name: [] for p in self.plan.populations}

    def step(self, x: np.ndarray) -> dict[str, tuple[np.ndarray | None, np.ndarray]]:
        """One graph-time step on input ``x``; ``{population: (spikes or None, v after reset)}``.

        Populations run in the plan's order; a connection with graph delay ``g`` delivers
        its source's output of step ``t - g`` (the same step for ``g = 0``).
        """
        t = self.t
        self._sent[INPUT].append(torch.as_tensor(np.asarray(x, np.float64)))
        rec = {}
        for p in self.plan.populations:
            a_in = torch.zeros(p.size, dtype=torch.float64)
            for c in self.plan.incoming(p.name):
                if t - c.graph_delay >= 0:
                    src = self._sent[c.src][t - c.graph_delay]
                    a_in = a_in + (torch.from_numpy(c.apply(c.weight, src.numpy())) if c.conv is not None
                                   else self._weights[c.name] @ src)
            du, dv, bias = self._params[p.name]
            self.u[p.name], self.v[p.name], s, _ = cuba_step(
                self.u[p.name], self.v[p.name], a_in, du=du, dv=dv, bias=bias, vth=p.vth, reset=p.reset,
                spike_fn=_spike)
            self._sent[p.name].append(s if s is not None else self.v[p.name].clone())
            rec[p.name] = (None if s is None else s.numpy().astype(np.int8), self.v[p.name].numpy().copy())
        self.t += 1
        return rec

    def _run_window(self, x: np.ndarray) -> np.ndarray:
        """A decision from zero state: ``x`` held ``T`` steps, the output at each of them."""
        self.reset()
        win = self.window
        return np.stack([self.output_of(self.step(x)) for k in range(win.period) if win.holds(k)])

    def record(self, inputs: np.ndarray) -> Recording:
        """Stream ``inputs`` from zero state in graph time; every population per step."""
        x = self._check_stream(inputs).astype(np.float64)
        self.reset()
        recs = [self.step(row) for row in x]
        out = Recording(latency=self._latency())
        for p in self.plan.populations:
            out.v[p.name] = np.stack([r[p.name][1] for r in recs]).reshape(len(x), -1)
            if p.spiking:
                out.spikes[p.name] = np.stack([r[p.name][0] for r in recs]).reshape(len(x), -1)
        return out
