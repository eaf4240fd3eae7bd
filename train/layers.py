"""Torch spiking layers: thin wrappers around :func:`spikeloop.core.neuron.cuba_step`.

A :class:`SpikingMLP` is the network that spikeloop deploys: graded input held for a
window of ``T`` timesteps, hidden CUBA-LIF populations, and a non-spiking leaky
integrator readout whose voltage at the last step of the window is the output
(Q-values or logits). State starts from zero at every decision.

Lava delays spikes by one timestep per Dense hop. The torch model has no such delay;
the compiler restores the same behaviour in Lava by resetting each population at the
step where the decision's first input reaches it (see ``spikeloop.runtime.plan``).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from spikeloop.core.neuron import HARD, RESET_MODES, cuba_step


class _ArctanSpike(torch.autograd.Function):
    """Heaviside forward, arctan surrogate backward: alpha/2 / (1 + (pi/2 alpha x)^2)."""

    @staticmethod
    def forward(ctx, x, alpha):
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        a = ctx.alpha
        return grad * (a / 2) / (1 + (math.pi / 2 * a * x) ** 2), None


def arctan_spike(x: torch.Tensor, alpha: float = 2.0) -> torch.Tensor:
    """Spike where ``x > 0`` with the arctan surrogate gradient (Fang et al. 2021)."""
    return _ArctanSpike.apply(x, alpha)


@dataclass(frozen=True)
class NeuronConfig:
    """Discrete-time neuron constants of a population (see the semantics contract).

    ``du``/``dv`` are the per-step decay fractions of current and voltage, ``vth`` the
    threshold (``None`` for a non-spiking readout), ``reset`` 'hard' or 'soft'.
    """

    du: float = 1.0
    dv: float = 0.125
    vth: float | None = 1.0
    reset: str = HARD

    def __post_init__(self):
        if not 0.0 <= self.du <= 1.0 or not 0.0 <= self.dv <= 1.0:
            raise ValueError(f"du and dv must lie in [0, 1], got du={self.du}, dv={self.dv}")
        if self.reset not in RESET_MODES:
            raise ValueError(f"reset must be one of {RESET_MODES}, got {self.reset!r}")

    def to_dict(self) -> dict:
        return asdict(self)


def fake_quantize(w: torch.Tensor, levels: int = 127) -> torch.Tensor:
    """Per-tensor symmetric quantization with a straight-through gradient.

    The same grid the fixed-point compiler uses for a population's weights
    (``spikeloop.runtime.fixed_point``): ``levels`` steps of ``max|w| / levels``.
    """
    m = w.detach().abs().max().clamp_min(1e-12)
    step = m / levels
    return w + (torch.round(w / step) * step - w).detach()


class SpikingLayer(nn.Module):
    """Linear synapses (no bias) into a population; the bias lives in the neuron."""

    def __init__(self, n_in: int, n_out: int, neuron: NeuronConfig, fake_quant: bool = False):
        super().__init__()
        self.linear = nn.Linear(n_in, n_out, bias=False)
        self.bias = nn.Parameter(torch.zeros(n_out))
        self.neuron = neuron
        self.fake_quant = fake_quant

    def weight(self) -> torch.Tensor:
        return fake_quantize(self.linear.weight) if self.fake_quant else self.linear.weight

    def current(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight().T

    def step(self, u, v, a_in, spike_fn):
        n = self.neuron
        return cuba_step(u, v, a_in, du=n.du, dv=n.dv, bias=self.bias, vth=n.vth,
                         reset=n.reset, spike_fn=spike_fn)


class SpikingMLP(nn.Module):
    """Graded input -> hidden CUBA-LIF layers -> leaky-integrator readout.

    ``forward(x)`` holds ``x`` (batch, n_in) for ``T`` steps and returns the readout
    voltage at the last step (batch, n_out).
    """

    def __init__(self, sizes: list[int], T: int, hidden: NeuronConfig, readout: NeuronConfig,
                 fake_quant: bool = False, surrogate_alpha: float = 2.0):
        super().__init__()
        if len(sizes) < 2:
            raise ValueError(f"sizes needs an input and an output size, got {sizes}")
        if T < 1:
            raise ValueError(f"T must be >= 1, got {T}")
        if readout.vth is not None:
            raise ValueError("the readout is a non-spiking integrator: readout.vth must be None")
        self.sizes = list(sizes)
        self.T = T
        self.alpha = surrogate_alpha
        neurons = [hidden] * (len(sizes) - 2) + [readout]
        self.layers = nn.ModuleList(
            SpikingLayer(a, b, n, fake_quant) for a, b, n in zip(sizes[:-1], sizes[1:], neurons)
        )

    def _spike(self, x):
        return arctan_spike(x, self.alpha)

    def forward(self, x: torch.Tensor, record: bool = False):
        """Return readout voltages at step T-1; with ``record`` also per-layer traces.

        Traces are lists over layers of tensors (T, batch, n): ``spikes`` (hidden
        layers), ``v`` (after reset) for every layer.
        """
        batch = x.shape[0]
        zeros = [x.new_zeros(batch, layer.linear.out_features) for layer in self.layers]
        u, v = list(zeros), list(zeros)
        first = self.layers[0].current(x)  # the input is held: its current is the same each step
        trace_s = [[] for _ in self.layers[:-1]]
        trace_v = [[] for _ in self.layers]
        for _ in range(self.T):
            a_in = first
            for k, layer in enumerate(self.layers):
                u[k], v[k], s, _ = layer.step(u[k], v[k], a_in, self._spike)
                if record:
                    trace_v[k].append(v[k])
                    if s is not None:
                        trace_s[k].append(s)
                if k + 1 < len(self.layers):
                    a_in = self.layers[k + 1].current(s)
        out = v[-1]
        if record:
            return out, {"spikes": [torch.stack(t) for t in trace_s],
                         "v": [torch.stack(t) for t in trace_v]}
        return out

    def config(self) -> dict:
        """Architecture record stored next to the weights in checkpoints."""
        return {"sizes": self.sizes, "T": self.T, "hidden": self.layers[0].neuron.to_dict(),
                "readout": self.layers[-1].neuron.to_dict(),
                "fake_quant": self.layers[0].fake_quant, "surrogate_alpha": self.alpha}

    @classmethod
    def from_config(cls, cfg: dict) -> "SpikingMLP":
        return cls(cfg["sizes"], cfg["T"], NeuronConfig(**cfg["hidden"]),
                   NeuronConfig(**cfg["readout"]), cfg.get("fake_quant", False),
                   cfg.get("surrogate_alpha", 2.0))
