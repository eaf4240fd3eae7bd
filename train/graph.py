"""Spiking graphs in torch: any NIR-shaped network, run in graph time.

A :class:`SpikingGraph` holds named node modules and directed edges between them,
with one virtual input node and one virtual output node (NIR's ``Input``/``Output``).
It runs in *graph time* (no Lava pipeline delays). At every timestep ``t``:

* neurons (and Threshold nodes) run in the order of :func:`graph_order`; every other
  node is an instantaneous function of its inputs (a node's input is the SUM of its
  predecessors' outputs);
* a neuron sees the current output of neurons that ran before it in the step, and the
  previous step's output (zeros at ``t = 0``) of itself and of neurons after it: every
  cycle is broken at a neuron's output, where the state is;
* a Delay of ``k`` steps gives its input as it stood at the end of step ``t - k``;
* state (neurons, delays) persists across steps from zero; nested graphs are inlined.

Node modules: ``nn.Linear``, :class:`Scale`, ``nn.Conv2d`` (and :class:`QuantConv2d`), ``nn.Flatten``,
:class:`SumPool2d`, ``nn.AvgPool2d``, :class:`Delay`, :class:`Threshold`,
:class:`Neuron` and a nested :class:`SpikingGraph`. Stateful nodes expose
``step(x, state) -> (y, state)`` (state ``None`` at ``t = 0``); the others are plain
modules applied per step. Tensors are ``(batch, *shape)`` per step; shapes named
anywhere here are per sample (no batch dimension), as in NIR.
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import math

import torch
from torch import nn
from torch.nn import functional as F

from spikeloop.core.errors import ConfigError
from spikeloop.core.graphs import graph_order, inline_graph
from spikeloop.core.neuron import HARD, NEURON_KINDS, RESET_MODES, cuba_step, neuron_fault

# ----------------------------------------------------------------------------- surrogate, quantization


SURROGATES = ("arctan", "sigmoid", "fast-sigmoid")
"""the surrogate gradients of the spike (forward: the Heaviside step in every case)"""
DEFAULT_SLOPES = {"arctan": 2.0, "sigmoid": 25.0, "fast-sigmoid": 25.0}
"""each surrogate's usual slope: SpikingJelly's arctan alpha, snnTorch's sigmoid and fast-sigmoid slope"""


def surrogate_grad(kind: str, x: torch.Tensor, slope: float, grad: torch.Tensor | float = 1.0) -> torch.Tensor:
    """``grad`` times d spike / d x of the surrogate ``kind`` at ``x = v - vth``.

    - ``arctan`` (Fang et al. 2021): ``slope/2 / (1 + (pi/2 * slope * x)^2)``
    - ``sigmoid``: ``slope * sig(slope x) * (1 - sig(slope x))``
    - ``fast-sigmoid`` (SuperSpike, Zenke & Ganguli 2018): ``1 / (1 + slope |x|)^2``
    """
    if kind == "arctan":
        return grad * (slope / 2) / (1 + (math.pi / 2 * slope * x) ** 2)
    if kind == "sigmoid":
        sg = torch.sigmoid(slope * x)
        return grad * slope * sg * (1 - sg)
    if kind == "fast-sigmoid":
        return grad / (1 + slope * x.abs()) ** 2
    raise ConfigError(f"unknown surrogate {kind!r}; expected one of {SURROGATES}")


def check_surrogate(kind, slope) -> None:
    """One error naming a surrogate or slope that training cannot use."""
    if kind not in SURROGATES:
        raise ConfigError(f"unknown surrogate {kind!r}; expected one of {SURROGATES}")
    if isinstance(slope, bool) or not isinstance(slope, (int, float)) or not math.isfinite(slope) or slope <= 0:
        raise ConfigError(f"surrogate slope must be a finite positive number, got {slope!r}")


class _Spike(torch.autograd.Function):
    """Heaviside forward, a surrogate derivative backward (:func:`surrogate_grad`)."""

    @staticmethod
    def forward(ctx, x, slope, kind):
        ctx.save_for_backward(x)
        ctx.slope, ctx.kind = slope, kind
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return surrogate_grad(ctx.kind, x, ctx.slope, grad), None, None


def spike(x: torch.Tensor, slope: float = 2.0, kind: str = "arctan") -> torch.Tensor:
    """Spike where ``x > 0``, with the surrogate gradient ``kind`` of ``slope`` in training."""
    return _Spike.apply(x, slope, kind)


def arctan_spike(x: torch.Tensor, alpha: float = 2.0) -> torch.Tensor:
    """Spike where ``x > 0`` with the arctan surrogate gradient (Fang et al. 2021)."""
    return _Spike.apply(x, alpha, "arctan")


def fake_quantize(w: torch.Tensor, levels: int = 127, divides: float | None = None) -> torch.Tensor:
    """Per-tensor symmetric quantization with a straight-through gradient.

    The same grid the fixed-point compiler uses for a population's weights
    (``spikeloop.runtime.fixed_point``): ``levels`` steps of ``max|w| / levels``. With
    ``divides``, the step grows to the nearest that divides ``divides`` a whole number of
    times (less than one part in that number coarser), the largest weight clipped to
    ``levels`` steps: a threshold ``divides / 2`` then sits exactly on a grid whose weights
    have no exponent (lava-dl's netx).
    """
    m = w.detach().abs().max().clamp_min(1e-12)
    step = m / levels
    if divides is not None:
        step = divides / torch.floor(divides / step).clamp_min(1.0)
    q = torch.clamp(torch.round(w / step), -levels, levels) * step
    return w + (q - w).detach()


# ----------------------------------------------------------------------------- nodes


class Scale(nn.Module):
    """Elementwise multiplication by a fixed vector: ``y = x * scale`` (NIR Scale)."""

    def __init__(self, scale, dtype: torch.dtype | None = None):
        super().__init__()
        self.register_buffer("scale", torch.as_tensor(scale, dtype=dtype or torch.get_default_dtype()))

    def forward(self, x):
        return x * self.scale


class _DeployedWeight:
    """The weight a synapse deploys: ``_weight()`` on the 8-bit grid when ``fake_quant``.

    Without gradients (acting, evaluating) the grid is recomputed only when the weight
    changes: a decision window applies the layer ``T`` times to one weight.
    """

    fake_quant: bool
    _deployed: tuple | None = None

    def _weight(self) -> torch.Tensor:
        return self.weight

    def _exact(self) -> bool:
        """The trained weight is what deploys (no grid, no noise, no fixed combination)."""
        return not self.fake_quant

    def deployed_weight(self) -> torch.Tensor:
        """The weight the forward pass uses and export writes (the deployed grid)."""
        if self._exact():
            return self.weight
        divides = getattr(self, "grid_divides", None)
        if torch.is_grad_enabled() or getattr(self, "noise_on", False):
            w = self._weight()
            return fake_quantize(w, divides=divides) if self.fake_quant else w
        key = (self.weight.data_ptr(), self.weight._version, self.weight.dtype)
        if self._deployed is None or self._deployed[0] != key:
            w = self._weight()
            self._deployed = (key, (fake_quantize(w, divides=divides) if self.fake_quant else w).detach())
        return self._deployed[1]


class QuantLinear(_DeployedWeight, nn.Linear):
    """``nn.Linear`` trained against the 8-bit weight grid of the fixed-point deployment.

    With ``fake_quant`` the forward pass uses :func:`fake_quantize` of the weight
    (straight-through gradient); export writes :meth:`deployed_weight`.

    Two options serve value-based agents, and neither leaves a trace in the deployed graph
    beyond a plain weight matrix:

    - ``noisy_std > 0``: a noisy linear layer (factorised Gaussian noise, Fortunato et al.
      2018), ``w = mu + sigma * f(e_out) f(e_in)^T`` with ``f(e) = sign(e) sqrt|e|`` and
      ``sigma`` initialised to ``noisy_std / sqrt(in)``. The noise acts only while
      :attr:`noise_on` is set (the agent sets it while it trains); otherwise, and always at
      export, the weight is ``mu``.
    - ``combine``: a fixed matrix ``M`` (out x rows); the layer's weight is ``M @ W``. A
      dueling head is two of these (the value and the advantage stream) feeding one readout.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = False, fake_quant: bool = False,
                 dtype: torch.dtype | None = None, noisy_std: float = 0.0, combine: torch.Tensor | None = None):
        rows = out_features if combine is None else int(combine.shape[1])
        super().__init__(in_features, rows, bias=bias, dtype=dtype)
        self.fake_quant = bool(fake_quant)
        self.noisy_std = float(noisy_std)
        self.noise_on = False
        if combine is not None:
            if tuple(combine.shape) != (out_features, rows):
                raise ConfigError(f"combine must be ({out_features}, rows), got {tuple(combine.shape)}")
            self.register_buffer("combine", torch.as_tensor(combine, dtype=self.weight.dtype))
        else:
            self.combine = None
        if self.noisy_std > 0:
            self.weight_sigma = nn.Parameter(torch.full_like(self.weight, self.noisy_std / math.sqrt(in_features)))
            self.register_buffer("eps_in", torch.zeros(in_features, dtype=self.weight.dtype), persistent=False)
            self.register_buffer("eps_out", torch.zeros(rows, dtype=self.weight.dtype), persistent=False)

    def reset_noise(self, generator: torch.Generator | None = None) -> None:
        """Draw new factorised noise (from ``generator``, which the agent seeds)."""
        if self.noisy_std <= 0:
            return

        def f(n):
            e = torch.randn(n, generator=generator, dtype=self.weight.dtype)
            return e.sign() * e.abs().sqrt()
        self.eps_in.copy_(f(self.eps_in.numel()))
        self.eps_out.copy_(f(self.eps_out.numel()))

    def _weight(self) -> torch.Tensor:
        w = self.weight
        if self.noise_on and self.noisy_std > 0:
            w = w + self.weight_sigma * torch.outer(self.eps_out, self.eps_in)
        return w if self.combine is None else self.combine @ w

    def _exact(self) -> bool:
        return not self.fake_quant and self.combine is None and not self.noise_on

    def deployed_bias(self) -> torch.Tensor | None:
        if self.bias is None or self.combine is None:
            return self.bias
        return self.combine @ self.bias

    def forward(self, x):
        y = x @ self.deployed_weight().T
        return y if self.bias is None else y + self.deployed_bias()

    def extra_repr(self):
        extra = f", fake_quant={self.fake_quant}"
        if self.noisy_std > 0:
            extra += f", noisy_std={self.noisy_std:g}"
        if self.combine is not None:
            extra += f", combine={tuple(self.combine.shape)}"
        return super().extra_repr() + extra


class QuantConv2d(_DeployedWeight, nn.Conv2d):
    """A bias-free ``nn.Conv2d`` trained against the 8-bit weight grid (as :class:`QuantLinear`).

    The grid is per tensor, the fixed-point compiler's grid for the one population the
    convolution feeds; the bias lives in that population's neurons.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 fake_quant: bool = False, dtype: torch.dtype | None = None):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False,
                         dtype=dtype)
        self.fake_quant = bool(fake_quant)

    def forward(self, x):
        return self._conv_forward(x, self.deployed_weight(), None)

    def extra_repr(self):
        return super().extra_repr() + f", fake_quant={self.fake_quant}"


class SumPool2d(nn.Module):
    """Sum over each window (NIR SumPool2d): ``avg_pool2d * kh * kw``, zero padding counted."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = nn.modules.utils._pair(kernel_size)
        self.stride = nn.modules.utils._pair(kernel_size if stride is None else stride)
        self.padding = nn.modules.utils._pair(padding)

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, count_include_pad=True,
                            divisor_override=1)


class Delay(nn.Module):
    """``y[t] = x[t - steps]`` (zeros for ``t < steps``); NIR Delay with ``delay = steps * dt``."""

    def __init__(self, steps: int):
        super().__init__()
        if int(steps) != steps or steps < 1:
            raise ConfigError(f"Delay steps must be a positive integer, got {steps!r}")
        self.steps = int(steps)

    def step(self, x, state):
        buf = x.new_zeros((self.steps, *x.shape)) if state is None else state
        return buf[0], torch.cat([buf[1:], x[None]])

    def forward(self, x_seq):
        """Delay a time-major sequence ``(T, batch, ...)``."""
        return _run_sequence(self, x_seq)


class Threshold(nn.Module):
    """Stateless spike: ``z = x > threshold`` (NIR Threshold), arctan surrogate gradient."""

    def __init__(self, threshold, surrogate_alpha: float = 2.0, dtype: torch.dtype | None = None,
                 surrogate: str = "arctan"):
        super().__init__()
        check_surrogate(surrogate, surrogate_alpha)
        self.register_buffer("threshold", torch.as_tensor(threshold, dtype=dtype or torch.get_default_dtype()))
        self.alpha, self.surrogate = surrogate_alpha, surrogate

    def forward(self, x):
        return spike(x - self.threshold.to(x.dtype), self.alpha, self.surrogate)



class Neuron(nn.Module):
    """A population of the contract's CUBA-LIF neurons (``spikeloop.core.neuron.cuba_step``)::

        u = (1 - du) u + a_in
        v = (1 - dv) v + u + bias
        s = v > vth;   hard: v = 0 where s   |   soft: v = v - vth where s

    The output is ``s`` for the spiking kinds and ``v`` for ``LI``/``CubaLI``.
    ``kind`` fixes the NIR node it exports to and constrains the constants:

    ========  =========  =========  =====  =============
    kind      du         dv         vth    bias
    ========  =========  =========  =====  =============
    LIF       1          (0, 1]     > 0    any
    CubaLIF   (0, 1]     (0, 1]     > 0    any
    IF        1          0          > 0    0
    LI        1          (0, 1]     None   any
    CubaLI    (0, 1]     (0, 1]     None   any
    ========  =========  =========  =====  =============

    ``du``, ``dv`` are per-step decay fractions (dimensionless), ``bias`` a voltage
    added per step (a trainable parameter of the population's full ``shape``).
    """

    def __init__(self, shape: int | Sequence[int], kind: str = "LIF", *, du: float | None = None,
                 dv: float | None = None, vth: float | None = 1.0, reset: str = HARD, bias=0.0,
                 surrogate_alpha: float = 2.0, dtype: torch.dtype | None = None, surrogate: str = "arctan"):
        super().__init__()
        check_surrogate(surrogate, surrogate_alpha)
        if kind not in NEURON_KINDS:
            raise ConfigError(f"unknown neuron kind {kind!r}; expected one of {NEURON_KINDS}")
        if reset not in RESET_MODES:
            raise ConfigError(f"reset must be one of {RESET_MODES}, got {reset!r}")
        shape = (int(shape),) if isinstance(shape, int) else tuple(int(n) for n in shape)
        cuba = kind.startswith("Cuba")
        if du is None:
            if cuba:
                raise ConfigError(f"a {kind} population needs du (its current decay per step)")
            du = 1.0
        if dv is None:
            if kind != "IF":
                raise ConfigError(f"a {kind} population needs dv (its voltage decay per step)")
            dv = 0.0
        if kind in ("LI", "CubaLI"):
            vth = None
        fault = neuron_fault(kind, du, dv, vth)
        if fault:
            raise ConfigError(fault)
        self.shape, self.kind = shape, kind
        self.du, self.dv, self.vth, self.reset = float(du), float(dv), vth, reset
        self.alpha, self.surrogate = surrogate_alpha, surrogate
        dtype = dtype or torch.get_default_dtype()
        self.bias = nn.Parameter(torch.broadcast_to(torch.as_tensor(bias, dtype=dtype), shape).clone())
        if kind == "IF" and torch.any(self.bias != 0):
            raise ConfigError("an IF population has no bias (NIR IF has no leak voltage); use LIF")
        self._bias_step = None

    def put_bias_on_grid(self, step) -> None:
        """Train and deploy the bias on multiples of ``step()`` (a zero-argument callable, read anew
        each forward: a grid that follows the incoming weights), with a straight-through gradient."""
        object.__setattr__(self, "_bias_step", step)  # a plain function, not a registered submodule

    def deployed_bias(self) -> torch.Tensor:
        """The bias the forward pass uses and export writes (on its grid, if it has one)."""
        if self._bias_step is None:
            return self.bias
        step = self._bias_step().clamp_min(1e-12)
        return self.bias + (torch.round(self.bias / step) * step - self.bias).detach()

    @property
    def spiking(self) -> bool:
        return self.vth is not None

    def _spike(self, x):
        if not torch.is_grad_enabled():  # the forward of the spike, without an autograd node
            return (x > 0).to(x.dtype)
        return spike(x, self.alpha, self.surrogate)

    def step(self, a_in, state):
        """One step; ``state`` is ``(u, v)`` (``None`` at ``t = 0``). Returns ``(out, (u, v))``."""
        if tuple(a_in.shape[1:]) != self.shape:
            raise ConfigError(f"{self.kind} population of shape {self.shape} got input of shape "
                              f"{tuple(a_in.shape[1:])} per sample")
        u, v = (torch.zeros_like(a_in), torch.zeros_like(a_in)) if state is None else state
        u, v, s, _ = cuba_step(u, v, a_in, du=self.du, dv=self.dv, bias=self.deployed_bias(), vth=self.vth,
                               reset=self.reset, spike_fn=self._spike)
        return (v if s is None else s), (u, v)

    def forward(self, x_seq):
        """Run a time-major sequence ``(T, batch, *shape)`` of input currents from zero state."""
        return _run_sequence(self, x_seq)

    def extra_repr(self):
        return (f"{self.kind}, shape={self.shape}, du={self.du}, dv={self.dv}, vth={self.vth}, "
                f"reset={self.reset!r}, surrogate={self.surrogate!r}({self.alpha:g})")


def _run_sequence(module, x_seq):
    state, out = None, []
    for x in x_seq:
        y, state = module.step(x, state)
        out.append(y)
    return torch.stack(out)


def _step(module: nn.Module, x, state):
    if hasattr(module, "step"):
        return module.step(x, state)
    return module(x), None


def _apply(module: nn.Module, x, name: str):
    try:
        return module(x)
    except RuntimeError as e:
        raise ConfigError(f"node {name!r} ({type(module).__name__}) failed on input of shape "
                          f"{tuple(x.shape[1:])} per sample: {e}") from e


def _out_shape(module: nn.Module, in_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Output shape of a cell (neurons and thresholds keep their input's shape)."""
    return tuple(in_shape)


# ----------------------------------------------------------------------------- graph


class SpikingGraph(nn.Module):
    """Named node modules and edges, run in graph time (see the module docstring).

    ``input_name`` and ``output_name`` are virtual nodes (NIR ``Input``/``Output``)
    that appear in ``edges`` but not in ``nodes``; the output is the sum of its
    predecessors. ``input_shape`` is per sample. A ``SpikingGraph`` can itself be a
    node of another one (a nested NIR graph).

    ``forward(x)`` takes ``(T, batch, *input_shape)`` and returns
    ``(T, batch, *output_shape)``.
    """

    def __init__(self, nodes: dict[str, nn.Module], edges: Iterable[tuple[str, str]],
                 input_shape: int | Sequence[int], input_name: str = "input",
                 output_name: str = "output"):
        super().__init__()
        for name in nodes:
            if name in (input_name, output_name) or "." in name or not name:
                raise ConfigError(f"node name {name!r} is reserved or invalid (the input and output "
                                  f"are {input_name!r}, {output_name!r}; '.' separates nested names)")
        self.nodes = nn.ModuleDict(nodes)
        self.edges = [(str(a), str(b)) for a, b in edges]
        self.input_name, self.output_name = input_name, output_name
        self.input_shape = ((int(input_shape),) if isinstance(input_shape, int)
                            else tuple(int(n) for n in input_shape))
        names = [input_name, *nodes, output_name]
        try:
            self.order, self.back_edges = graph_order(names, self.edges, input_name)
        except ValueError as e:
            raise ConfigError(f"SpikingGraph: {e}") from e
        if any(a == output_name for a, _ in self.edges):
            raise ConfigError(f"SpikingGraph: the output node {output_name!r} cannot have outgoing edges")
        back = set(self.back_edges)
        self._fwd_pred = {n: [a for a, b in self.edges if b == n and (a, b) not in back] for n in names}
        self._back_pred = {n: [a for a, b in self.edges if b == n and (a, b) in back] for n in names}
        self._back_src = sorted({a for a, _ in self.back_edges})
        self._shapes = self._infer_shapes()

    # -- running

    def _flat(self):
        """The graph with nested graphs inlined: ``(nodes, edges)`` named ``sub.node``."""
        return inline_graph(dict(self.nodes.items()), self.edges, _torch_subgraph, "SpikingGraph",
                            virtual=(self.input_name, self.output_name))

    def _plan(self):
        """Flat evaluation plan: cells (state holders) in order, predecessors, delays."""
        if getattr(self, "_flat_plan", None) is None:
            nodes, edges = self._flat()
            names = [self.input_name, *nodes, self.output_name]
            order, _ = graph_order(names, edges, self.input_name)
            pred = {n: [a for a, b in edges if b == n] for n in names}
            cells = [n for n in order if isinstance(nodes.get(n), (Neuron, Threshold))]
            delays = [n for n in order if isinstance(nodes.get(n), Delay)]
            static = set()  # stateless nodes fed by the input alone: constant while the input is held
            for n in order:
                if n in nodes and n not in cells and n not in delays and pred[n] and all(
                        p == self.input_name or p in static for p in pred[n]):
                    static.add(n)
            self._flat_plan = (nodes, pred, cells, delays, static)
        return self._flat_plan

    def step(self, x, state=None, record: dict | None = None, prefix: str = "", held: dict | None = None):
        """One timestep of the graph: ``(y, state)``; fills ``record[<prefix><node>...]``.

        Neurons (and Threshold nodes) hold the state and run in :func:`graph_order`;
        every other node is an instantaneous function of its inputs, evaluated when a
        neuron needs it. A neuron therefore sees the current step's output of neurons
        that ran before it and the previous step's output of itself and of those after
        it: every cycle is broken at a neuron's output. A Delay node of ``k`` steps
        gives its input as it stood at the end of step ``t - k``.

        ``held`` (a dict kept by the caller across the steps of one window) caches the
        nodes that depend on the input alone, for an input held constant.
        """
        nodes, pred, cells, delays, static = self._plan()
        cell_state, vals, delay_state = ({}, {}, {}) if state is None else state
        cell_state, vals, delay_state = dict(cell_state), dict(vals), dict(delay_state)
        memo: dict[str, Any] = {}

        def value(n):
            if n == self.input_name:
                return x
            if n in memo:
                return memo[n]
            if held is not None and n in held:
                return held[n]
            module = nodes.get(n)
            if isinstance(module, (Neuron, Threshold)):
                if n not in vals:  # before its first update: zeros of its output shape
                    vals[n] = x.new_zeros((x.shape[0], *_out_shape(module, self._cell_shape(n))))
                return vals[n]
            if isinstance(module, Delay):
                buf = delay_state.get(n)
                y = None if buf is None else buf[0]
                if y is None:
                    y = inputs(n) * 0  # zeros of the right shape for t < steps
            else:
                a = inputs(n)
                y = a if n == self.output_name else _apply(module, a, n)
            memo[n] = y
            if held is not None and n in static:
                held[n] = y
            return y

        def inputs(n):
            return _sum_inputs([value(p) for p in pred[n]], n, pred[n])

        for n in cells:
            module = nodes[n]
            a_in = inputs(n)
            try:
                y, cell_state[n] = _step(module, a_in, cell_state.get(n))
            except RuntimeError as e:
                raise ConfigError(f"node {prefix + n!r} ({type(module).__name__}) failed on input of shape "
                                  f"{tuple(a_in.shape[1:])} per sample: {e}") from e
            vals[n] = y
            memo.clear()  # values downstream of this neuron changed
            if record is not None:
                if isinstance(module, Neuron):
                    if module.spiking:
                        record.setdefault(prefix + n + ".spikes", []).append(y)
                    record.setdefault(prefix + n + ".v", []).append(cell_state[n][1])
                else:
                    record.setdefault(prefix + n + ".out", []).append(y)
        y = inputs(self.output_name)
        if record is not None:
            for n, module in nodes.items():
                if not isinstance(module, (Neuron, Threshold)):
                    record.setdefault(prefix + n + ".out", []).append(value(n))
        for n in delays:  # what each delay line holds at the end of the step
            a = inputs(n)
            buf = delay_state.get(n) or [None] * nodes[n].steps
            delay_state[n] = buf[1:] + [a]
        return y, (cell_state, vals, delay_state)

    def _cell_shape(self, flat_name: str) -> tuple[int, ...]:
        """Input shape of a (possibly nested) cell, from the shape inference."""
        graph, parts = self, flat_name.split(".")
        for part in parts[:-1]:
            graph = graph.nodes[part]
        return graph._shapes[parts[-1]][0]

    def _shaped(self, x: torch.Tensor, lead: int) -> torch.Tensor:
        """``x`` with its flat per-sample input (an image laid out as a vector) given ``input_shape``."""
        if len(self.input_shape) > 1 and x.ndim == lead + 1 and x.shape[-1] == math.prod(self.input_shape):
            return x.reshape(*x.shape[:lead], *self.input_shape)
        return x

    def forward(self, x: torch.Tensor, record: bool = False):
        """Run ``x`` (T, batch, *input_shape) from zero state; a flat per-sample input is reshaped.

        With ``record``, also return traces ``{name: (T, batch, *shape)}``: for neuron
        nodes ``'<node>.spikes'`` (spiking kinds) and ``'<node>.v'`` (voltage after
        reset), for other nodes ``'<node>.out'``; nested nodes are named
        ``'<subgraph>.<node>'``.
        """
        x = self._shaped(x, 2)
        if x.ndim < 2 or tuple(x.shape[2:]) != self.input_shape:
            raise ConfigError(f"SpikingGraph input must be (T, batch, {', '.join(map(str, self.input_shape))}), "
                              f"got {tuple(x.shape)}")
        rec: dict | None = {} if record else None
        state, ys = None, []
        for x_t in x:
            y, state = self.step(x_t, state, rec)
            ys.append(y)
        y = torch.stack(ys)
        if record:
            return y, {k: torch.stack(v) for k, v in rec.items()}
        return y

    def window(self, x: torch.Tensor, T: int, record: bool = False):
        """Hold ``x`` (batch, *input_shape) for ``T`` steps from zero state: ``(T, batch, *out)``.

        A flat ``(batch, prod(input_shape))`` input (as the encoder gives an image) is reshaped.

        The closed-loop decision window. Nodes fed by the input alone are computed once. With
        ``record``, also the traces of :meth:`forward` (every neuron's spikes and voltages).
        """
        x = self._shaped(x, 1)
        if tuple(x.shape[1:]) != self.input_shape:
            raise ConfigError(f"SpikingGraph window input must be (batch, {', '.join(map(str, self.input_shape))}), "
                              f"got {tuple(x.shape)}")
        held: dict = {}
        rec: dict | None = {} if record else None
        state, ys = None, []
        for _ in range(T):
            y, state = self.step(x, state, rec, held=held)
            ys.append(y)
        if record:
            return torch.stack(ys), {k: torch.stack(v) for k, v in rec.items() if len(v) == T}
        return torch.stack(ys)

    # -- shapes

    def _infer_shapes(self) -> dict[str, tuple[tuple[int, ...], tuple[int, ...]]]:
        p = next(iter(self.parameters()), None)
        b = next(iter(self.buffers()), None)
        dtype = p.dtype if p is not None else (b.dtype if b is not None else torch.get_default_dtype())
        shapes: dict[str, tuple] = {}
        x = torch.zeros((1, *self.input_shape), dtype=dtype)
        with torch.no_grad():
            self._shape_step(x, shapes)
        return shapes

    def _shape_step(self, x, shapes):
        out = {}
        for name in self.order:
            if name == self.input_name:
                out[name] = x
                shapes[name] = (self.input_shape, self.input_shape)
                continue
            a_in = _sum_inputs([out[p] for p in self._fwd_pred[name]], name, self._fwd_pred[name])
            if name == self.output_name:
                out[name] = a_in
            else:
                module = self.nodes[name]
                try:
                    out[name], _ = _step(module, a_in, None)
                except ConfigError as e:
                    raise ConfigError(f"node {name!r}: {e}") from e
                except RuntimeError as e:
                    raise ConfigError(f"node {name!r} ({type(module).__name__}) cannot take input of "
                                      f"shape {tuple(a_in.shape[1:])} per sample: {e}") from e
            shapes[name] = (tuple(a_in.shape[1:]), tuple(out[name].shape[1:]))
        for a, b in self.back_edges:
            if b != self.output_name and shapes[a][1] != shapes[b][0]:
                raise ConfigError(f"recurrent edge ({a!r}, {b!r}) carries shape {shapes[a][1]} into a "
                                  f"node whose input has shape {shapes[b][0]}")

    def node_shapes(self) -> dict[str, tuple[tuple[int, ...], tuple[int, ...]]]:
        """``{node: (input_shape, output_shape)}`` per sample, the input and output included."""
        return dict(self._shapes)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self._shapes[self.output_name][1]


def _torch_subgraph(module):
    if not isinstance(module, SpikingGraph):
        return None
    return dict(module.nodes.items()), module.edges, [module.input_name], [module.output_name]


def _sum_inputs(terms, name, sources):
    if len(terms) == 1:
        return terms[0]
    if not terms:
        raise ConfigError(f"node {name!r} has no input")
    shapes = {tuple(t.shape) for t in terms}
    if len(shapes) > 1:
        detail = ", ".join(f"{s!r}: {tuple(t.shape[1:])}" for s, t in zip(sources, terms))
        raise ConfigError(f"node {name!r} sums inputs of different shapes per sample ({detail})")
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return total
