"""Seeded snnTorch and Norse models, their NIR files, and their own simulations.

Each builder returns a :class:`PeerCase`: the peer's NIR file (written with the peer's
own exporter and ``nir.write``), a seeded binary input sequence, and the spikes every
neuron layer of the original model produced on it in the peer's own simulation.
Everything runs in float64 so that a spike differs only where the mapping does.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import nir
import numpy as np
import torch


@dataclass
class PeerCase:
    path: Path
    inputs: np.ndarray
    """(timesteps, inputs) 0/1"""
    spikes: dict[str, np.ndarray]
    """NIR node name -> (timesteps, neurons) spikes of the peer's own simulation"""
    output: str
    """NIR node name of the output layer"""
    info: dict = field(default_factory=dict)


def binary_input(steps: int, n: int, p: float = 0.3, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((steps, n)) < p).astype(np.float64)


def _init_linear(layer: torch.nn.Module, std: float, bias: bool) -> None:
    with torch.no_grad():
        layer.weight.normal_(0.0, std)
        if layer.bias is not None:
            layer.bias.normal_(0.0, 0.2) if bias else layer.bias.zero_()


# ---------------------------------------------------------------- snnTorch

def _snn_run(net: torch.nn.Sequential, names: dict[int, str], x: np.ndarray, shape=None,
             dtype=torch.float64):
    """Run snnTorch's own forward step by step; spikes of the modules in ``names``."""
    import snntorch.utils

    net = copy.deepcopy(net).to(dtype)
    snntorch.utils.reset(net)
    rec = {n: [] for n in names.values()}
    with torch.no_grad():
        for row in x:
            h = torch.as_tensor(row, dtype=dtype).reshape(1, *(shape or row.shape))
            for i, mod in enumerate(net):
                h = mod(h)
                if isinstance(h, tuple):
                    h = h[0]
                h = h.to(dtype)  # snnTorch's spike functions return float32 0/1
                if i in names:
                    rec[names[i]].append(h.reshape(-1).numpy().copy())
    return {k: np.asarray(v, dtype=np.int8) for k, v in rec.items()}


def _snn_export(net, sample, path: Path) -> Path:
    from snntorch.export_nir import export_to_nir

    graph = export_to_nir(copy.deepcopy(net).float(), sample.float(), ignore_dims=[0])
    nir.write(path, graph)
    return path


def snntorch_case(tmp: Path, kind: str = "leaky", reset: str = "zero", steps: int = 200,
                  seed: int = 0, sizes=(6, 12, 4), reset_delay: bool = True) -> PeerCase:
    """``kind``: 'leaky', 'synaptic', 'rleaky' or 'conv'; ``reset``: snnTorch reset_mechanism;
    ``reset_delay``: snnTorch's reset timing (True, its default: a spike's reset applies in
    the next step's update; False: in the same step)."""
    import snntorch as snn

    torch.manual_seed(seed)
    n_in, n_h, n_out = sizes
    full = lambda v, *n: torch.full(n, float(v), dtype=torch.float64)  # noqa: E731
    # Per-neuron beta/threshold: export_to_nir needs vectors (scalars fail NIR's type check).
    if kind == "conv":
        c, hw = 2, 6
        conv = torch.nn.Conv2d(1, c, 3)
        fc = torch.nn.Linear(c * (hw - 2) ** 2, n_out)
        _init_linear(conv, 1.0, True)
        _init_linear(fc, 0.6, True)
        net = torch.nn.Sequential(
            conv, snn.Leaky(beta=full(0.85, c, hw - 2, hw - 2), threshold=full(1.0, c, hw - 2, hw - 2),
                            init_hidden=True, reset_mechanism=reset),
            torch.nn.Flatten(), fc,
            snn.Leaky(beta=full(0.8, n_out), threshold=full(1.0, n_out), init_hidden=True,
                      reset_mechanism=reset)).double()
        x = binary_input(steps, hw * hw, seed=seed)
        path = _snn_export(net, torch.zeros(1, 1, hw, hw), tmp / "snntorch_conv.nir")
        spikes = _snn_run(net, {1: "1", 4: "4"}, x, shape=(1, hw, hw))
        return PeerCase(path, x, spikes, "4", {"peer": "snntorch", "kind": kind, "reset": reset})
    fc1, fc2 = torch.nn.Linear(n_in, n_h), torch.nn.Linear(n_h, n_out)
    # Synaptic adds a Linear bias to its decaying current: spikeloop's contract has only a
    # voltage bias (the compiler rejects it), so Synaptic models get zero biases.
    _init_linear(fc1, 1.2, kind != "synaptic")
    _init_linear(fc2, 0.8, kind != "synaptic")
    if kind == "leaky":
        l1 = snn.Leaky(beta=full(0.85, n_h), threshold=full(1.0, n_h), init_hidden=True, reset_mechanism=reset,
                       reset_delay=reset_delay)
    elif kind == "synaptic":
        l1 = snn.Synaptic(alpha=full(0.6, n_h), beta=full(0.85, n_h), threshold=full(1.0, n_h),
                          init_hidden=True, reset_mechanism=reset)
    elif kind == "rleaky":
        l1 = snn.RLeaky(beta=full(0.85, n_h), threshold=full(1.0, n_h), linear_features=n_h,
                        init_hidden=True, reset_mechanism=reset)
        _init_linear(l1.recurrent, 0.4, True)
    else:
        raise ValueError(kind)
    if kind == "synaptic":
        l2 = snn.Synaptic(alpha=full(0.5, n_out), beta=full(0.8, n_out), threshold=full(1.0, n_out),
                          init_hidden=True, reset_mechanism=reset)
    else:
        l2 = snn.Leaky(beta=full(0.8, n_out), threshold=full(1.0, n_out), init_hidden=True,
                       reset_mechanism=reset, reset_delay=reset_delay)
    net = torch.nn.Sequential(fc1, l1, fc2, l2).double()
    x = binary_input(steps, n_in, seed=seed)
    path = _snn_export(net, torch.zeros(1, n_in), tmp / f"snntorch_{kind}_{reset}{'' if reset_delay else '_now'}.nir")
    first = "1.lif" if kind == "rleaky" else "1"
    # RLeaky feeds its float32 spikes to its own recurrent Linear: it runs in float32 only.
    spikes = _snn_run(net, {1: first, 3: "3"}, x, dtype=torch.float32 if kind == "rleaky" else torch.float64)
    return PeerCase(path, x, spikes, "3", {"peer": "snntorch", "kind": kind, "reset": reset})


# ---------------------------------------------------------------- Norse

def _f64(v) -> torch.Tensor:
    return torch.as_tensor(v, dtype=torch.float64)


def norse_case(tmp: Path, kind: str = "lifbox", reset: str = "value", steps: int = 200, seed: int = 0,
               sizes=(6, 12, 4), dt: float = 1e-3, v_leak: float = 0.0, current_bias: bool = False) -> PeerCase:
    """``kind``: 'lifbox' (LIFBoxCell), 'lif' (LIFCell), 'recurrent' (LIFRecurrentCell) or
    'conv'; ``reset``: LIFBoxCell's reset_method ('value' or 'subtract'); ``current_bias``:
    Linear biases into LIFCell (CubaLIF) layers, a constant input current."""
    import norse.torch as nt
    from norse.torch.functional.reset import reset_subtract, reset_value

    torch.manual_seed(seed)
    n_in, n_h, n_out = sizes

    def box(tau_mem):
        return nt.LIFBoxCell(nt.LIFBoxParameters(
            tau_mem_inv=_f64(1 / tau_mem), v_leak=_f64(v_leak), v_th=_f64(1.0), v_reset=_f64(0.0),
            reset_method=reset_subtract if reset == "subtract" else reset_value), dt=dt)

    def cuba(tau_syn, tau_mem):
        return nt.LIFCell(nt.LIFParameters(tau_syn_inv=_f64(1 / tau_syn), tau_mem_inv=_f64(1 / tau_mem),
                                           v_leak=_f64(v_leak), v_th=_f64(1.0), v_reset=_f64(0.0)), dt=dt)

    if kind == "conv":
        c, hw = 2, 6
        conv1, conv2 = torch.nn.Conv2d(1, c, 3), torch.nn.Conv2d(c, c, 3)
        _init_linear(conv1, 1.5, False)  # Norse exports the conv bias; a current bias is not ours
        _init_linear(conv2, 3.0, False)
        layers = [conv1, cuba(2e-3, 5e-3), conv2, cuba(2e-3, 5e-3)]
        x = binary_input(steps, hw * hw, seed=seed)
        shape, names, out = (1, hw, hw), {1: "1", 3: "3"}, "3"
    else:
        # Norse adds a LIFCell's Linear bias to the decaying synaptic current: a constant
        # input current, which spikeloop deploys as a bias source (only with current_bias).
        bias = kind == "lifbox" or current_bias
        fc1, fc2 = torch.nn.Linear(n_in, n_h, bias=True), torch.nn.Linear(n_h, n_out, bias=True)
        _init_linear(fc1, 2.0 if kind == "lifbox" else 1.0, bias)
        _init_linear(fc2, 3.0 if kind == "lifbox" else 0.7, bias)
        if kind == "lifbox":
            cells = [box(5e-3), box(4e-3)]
        elif kind == "lif":
            cells = [cuba(2e-3, 5e-3), cuba(4e-3, 8e-3)]
        elif kind == "recurrent":
            cells = [nt.LIFRecurrentCell(n_h, n_h, dt=dt), box(8e-3)]
        else:
            raise ValueError(kind)
        layers = [fc1, cells[0], fc2, cells[1]]
        x = binary_input(steps, n_in, seed=seed)
        shape, names, out = (n_in,), {1: "1", 3: "3"}, "3"
    model = nt.SequentialState(*layers).double()
    graph = nt.to_nir(model, torch.zeros(1, *shape, dtype=torch.float64), dt=dt)
    for k, node in list(graph.nodes.items()):
        if node is None:  # a module to_nir has no converter for
            raise NotImplementedError(f"Norse's to_nir exported module {k!r} ({type(layers[int(k)]).__name__}) as None")
        if isinstance(node, nir.Conv2d) and node.input_shape is None:
            # to_nir leaves input_shape unset, which nir.write cannot store; set it as a
            # Norse user must before writing the file.
            hw_in = shape[-1] if k == "0" else shape[-1] - 2
            graph.nodes[k] = nir.Conv2d(input_shape=(hw_in, hw_in), weight=node.weight.numpy(),
                                        stride=node.stride, padding=node.padding, dilation=node.dilation,
                                        groups=node.groups, bias=node.bias.numpy())
    path = tmp / f"norse_{kind}_{reset}.nir"
    # nir.write's default gzip cannot store Norse's 0-d parameters.
    nir.write(path, graph, compression=None)
    rec = {n: [] for n in names.values()}
    states = [None] * len(layers)
    with torch.no_grad():
        for row in x:
            h = torch.as_tensor(row, dtype=torch.float64).reshape(1, *shape)
            for i, mod in enumerate(layers):
                if i in names:
                    h, states[i] = mod(h, states[i])
                    rec[names[i]].append(h.reshape(-1).numpy().copy())
                else:
                    h = mod(h)
    spikes = {k: np.asarray(v, dtype=np.int8) for k, v in rec.items()}
    return PeerCase(path, x, spikes, out, {"peer": "norse", "kind": kind, "reset": reset, "dt": dt})


# ---------------------------------------------------------------- Q-networks trained in the peers

def _f(v, n, dtype=torch.float32):
    return torch.full((n,), float(v), dtype=dtype)


def snntorch_q_net(n_in: int = 4, n_h: int = 32, n_out: int = 2, seed: int = 0) -> torch.nn.Sequential:
    """A snnTorch Q-network: Leaky hidden layer (reset to zero), and the Q-values in the
    membrane of an output Leaky that cannot spike (snnTorch has no non-spiking readout that
    its exporter writes)."""
    import snntorch as snn

    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(n_in, n_h),
        snn.Leaky(beta=_f(0.9, n_h), threshold=_f(1.0, n_h), init_hidden=True, reset_mechanism="zero"),
        torch.nn.Linear(n_h, n_out),
        snn.Leaky(beta=_f(0.8, n_out), threshold=_f(1e9, n_out), init_hidden=True, reset_mechanism="none",
                  output=True))


def snntorch_q(net: torch.nn.Sequential, x: torch.Tensor, T: int) -> torch.Tensor:
    """Q-values of a window: the input held ``T`` steps from reset, the output membrane at the last."""
    import snntorch.utils

    snntorch.utils.reset(net)
    for _ in range(T):
        h = x
        for mod in net:
            h = mod(h)
            h, mem = h if isinstance(h, tuple) else (h, None)
            h = h.to(x.dtype)  # snnTorch's spike functions return float32 0/1
    return mem.to(x.dtype)


def norse_q_net(n_in: int = 4, n_h: int = 32, n_out: int = 2, seed: int = 0):
    """A Norse Q-network of LIFCell (CubaLIF) layers whose Linears have biases (constant input
    currents); the Q-values are the voltage of an output LIFCell with an unreachable threshold
    (Norse's to_nir has no converter for LICell)."""
    import norse.torch as nt

    torch.manual_seed(seed)
    cell = lambda v_th: nt.LIFCell(nt.LIFParameters(  # noqa: E731
        tau_syn_inv=torch.tensor(200.0), tau_mem_inv=torch.tensor(100.0), v_leak=torch.tensor(0.0),
        v_th=torch.tensor(v_th), v_reset=torch.tensor(0.0)), dt=1e-3)
    fc1, fc2 = torch.nn.Linear(n_in, n_h), torch.nn.Linear(n_h, n_out)
    with torch.no_grad():
        fc1.weight.mul_(8.0)
        fc1.bias.uniform_(-2.0, 4.0)
        fc2.weight.mul_(4.0)
    return nt.SequentialState(fc1, cell(0.3), fc2, cell(1e6))


def norse_q(net, x: torch.Tensor, T: int) -> torch.Tensor:
    """Q-values of a window: the output LIFCell's voltage at the last of ``T`` steps."""
    state = None
    for _ in range(T):
        _, state = net(x, state)
    return state[3].v


def train_q_briefly(q_fn, net, encode, seed: int = 0, steps: int = 400, gamma: float = 0.9) -> None:
    """Fitted-Q steps on random CartPole transitions, through the peer's own surrogate
    gradients; ``encode`` maps raw observations to the network's input (the deployment's
    frozen encoding). The policy need not be good, only trained."""
    import gymnasium as gym

    rng = np.random.default_rng(seed)
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=seed)
    batch = []
    for _ in range(600):
        a = int(rng.integers(2))
        nxt, r, term, trunc, _ = env.step(a)
        batch.append((obs, a, r, nxt, float(term)))
        obs = env.reset()[0] if term or trunc else nxt
    env.close()
    o, a, r, n, d = (torch.as_tensor(np.asarray(v), dtype=torch.float32) for v in zip(*batch))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    torch.manual_seed(seed)
    for _ in range(steps):
        i = torch.as_tensor(rng.integers(0, len(batch), 64))
        with torch.no_grad():
            target = r[i] + gamma * (1 - d[i]) * q_fn(net, encode(n[i]), 8).max(-1).values
        q = q_fn(net, encode(o[i]), 8).gather(1, a[i].long()[:, None])[:, 0]
        loss = torch.nn.functional.smooth_l1_loss(q, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():  # leave no hidden state that carries the autograd graph (deepcopy refuses it)
        q_fn(net, encode(o[:1]), 1)


# ---------------------------------------------------------------- sinabs

def sinabs_case(tmp: Path, single: bool = True, steps: int = 200, seed: int = 0, sizes=(6, 12, 4),
                lif: bool = False) -> PeerCase:
    """A sinabs Linear-IAF-Linear-IAF (or LIF as the hidden layer) network, exported with
    ``sinabs.to_nir``; ``single``: SingleSpike (else sinabs's default MultiSpike)."""
    import sinabs
    import sinabs.activation as sa
    import sinabs.layers as sl

    torch.manual_seed(seed)
    n_in, n_h, n_out = sizes
    spike = dict(spike_fn=sa.SingleSpike) if single else {}
    fc1, fc2 = torch.nn.Linear(n_in, n_h), torch.nn.Linear(n_h, n_out)
    _init_linear(fc1, 2.0 if lif else 0.5, True)  # sinabs's LIF scales its input by 1 - exp(-1/tau)
    _init_linear(fc2, 0.6, True)
    hidden = (sl.LIFSqueeze(tau_mem=torch.full((n_h,), 4.0), spike_threshold=torch.ones(n_h), batch_size=1, **spike) if lif
              else sl.IAFSqueeze(batch_size=1, **spike))
    net = torch.nn.Sequential(fc1, hidden, fc2, sl.IAFSqueeze(batch_size=1, **spike)).double()
    x = binary_input(steps, n_in, seed=seed)
    with torch.no_grad():
        h, rec = torch.as_tensor(x), {}  # the Squeeze layers take (batch * time, ...): batch 1
        for i, m in enumerate(net):
            h = m(h).double()  # sinabs's spike functions return float32
            if i in (1, 3):
                rec[str(i)] = h.numpy().copy()
        # sinabs's to_nir reads the layers' state shapes, which the run above has set
        graph = sinabs.to_nir(copy.deepcopy(net).float(), torch.zeros(1, n_in))
    path = tmp / f"sinabs_{'lif' if lif else 'iaf'}_{'single' if single else 'multi'}.nir"
    nir.write(path, graph)
    counts = {k: v for k, v in rec.items()}
    spikes = {k: (v > 0).astype(np.int8) for k, v in counts.items()}
    return PeerCase(path, x, spikes, "3", {"peer": "sinabs", "counts": counts})


# ---------------------------------------------------------------- Rockpool

def rockpool_case(tmp: Path, steps: int = 200, seed: int = 0, sizes=(6, 12, 4), bias: bool = True,
                  max_spikes: int = 1) -> PeerCase:
    """A Rockpool LinearTorch-LIFTorch-LinearTorch-LIFTorch network (a Linear bias into the
    first, a constant current), exported with Rockpool's ``to_nir``."""
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFTorch, LinearTorch
    from rockpool.nn.modules.torch.nir import to_nir

    torch.manual_seed(seed)
    n_in, n_h, n_out = sizes
    net = Sequential(LinearTorch((n_in, n_h), has_bias=bias),
                     LIFTorch(n_h, tau_syn=0.004, tau_mem=0.01, max_spikes_per_dt=max_spikes),
                     LinearTorch((n_h, n_out)), LIFTorch(n_out, tau_syn=0.005, tau_mem=0.02,
                                                         max_spikes_per_dt=max_spikes))
    with torch.no_grad():
        net[0].weight.mul_(6.0)
        if bias:
            net[0].bias.uniform_(-0.3, 0.6)
        net[2].weight.mul_(0.6)
    x = binary_input(steps, n_in, seed=seed)
    path = tmp / f"rockpool_{'bias' if bias else 'nobias'}_{max_spikes}.nir"
    nir.write(path, to_nir(net))
    with torch.no_grad():  # Rockpool's LIFTorch computes in float32 (its states are created so)
        _, _, rec = net(torch.as_tensor(x, dtype=torch.float32)[None], record=True)
    counts = {"1_LIFTorch": rec["1_LIFTorch_output"][0].numpy().astype(np.int64),
              "3_LIFTorch": rec["3_LIFTorch_output"][0].numpy().astype(np.int64)}
    spikes = {k: (v > 0).astype(np.int8) for k, v in counts.items()}
    return PeerCase(path, x, spikes, "3_LIFTorch", {"peer": "rockpool", "counts": counts})
