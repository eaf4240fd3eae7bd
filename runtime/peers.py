"""Import of NIR graphs written by other frameworks (snnTorch, Norse).

A peer's NIR file is continuous-time and carries neither ``dt`` nor its reset
mechanism, and the peer exporters have known faults. This module names each peer's
conventions, corrects what can be corrected in the graph before compiling it with
:func:`~spikeloop.runtime.compiler.plan_from_nir`, and returns the plan together with
warnings (each with a fix) for what cannot be represented exactly.

Conventions, read in the peers' own code (snnTorch 1.0.0, Norse 1.1.0):

snnTorch (``snntorch/export_nir.py``, ``snntorch/_neurons``):
  * time step: the exporter hard-codes ``dt = 1e-4`` and writes ``tau = dt/(1-beta)``,
    ``r = tau/dt`` (and for ``Synaptic`` ``w_in = tau_syn/dt``). Under forward Euler at
    ``dt = 1e-4`` this is the model's own ``v = beta v + I`` (decay ``1 - beta``, gain 1).
  * spike: ``spk = mem > threshold`` (``surrogate.py``: ``(input_ > 0)``), as ours.
  * reset: ``reset_delay=True`` (default) stores ``mem`` un-reset and applies the
    reset of a spike at ``t-1`` inside the update at ``t``. ``Leaky`` "zero":
    ``mem = beta (1 - s[t-1]) mem + I`` = our hard reset. ``Leaky`` "subtract" (the
    default): ``mem = beta mem + I - s[t-1] vth``; the threshold is subtracted after the
    decay, ours (soft) before it. ``Synaptic``/``RLeaky`` "zero" zero the whole update
    of the step after a spike (``mem = (1 - s[t-1]) (beta mem + syn)``), a refractory
    step our contract lacks. The exporter writes ``v_reset = 0`` for every mechanism.
Norse (``norse/torch/utils/export_nir.py``, ``norse/torch/functional``):
  * time step: ``to_nir(dt=0.001)`` writes ``tau = dt / tau_inv``, which is ``dt``
    times the real time constant ``1/tau_inv``; the cells integrate with their own
    ``dt`` (default 0.001): ``v += dt tau_mem_inv (v_leak - v + i)``.
  * ``LIFCell`` -> ``CubaLIF`` with ``w_in = 1``: the cell adds its input to ``i`` without
    the factor ``dt/tau_syn`` that NIR's CubaLIF implies (gain ``dv``, not ``du dv``).
    It updates ``i`` before ``v`` within a step, as ours.
  * ``LIFBoxCell`` -> ``LIF``; ``reset_method`` (``reset_value`` or ``reset_subtract``,
    which is our soft reset) is not exported. Spike: ``torch.gt(v - v_th, 0)``, as ours.
  * cells start at ``v = v_leak`` (ours at 0); neuron parameters are exported as
    scalars and the Input/Output shapes keep the batch dimension.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import nir
import numpy as np

from spikeloop.core.errors import ConfigError, NIRValidationError
from spikeloop.core.metadata import GraphMeta
from spikeloop.core.nir_io import check_nir_file, read_graph, read_metadata
from spikeloop.runtime.compiler import plan_from_nir
from spikeloop.runtime.plan import NetworkPlan
from spikeloop.core.neuron import SOFT

PEERS = ("snntorch", "norse", "sinabs", "rockpool")
PEER_CHOICES = ("auto", *PEERS, "none")
RESETS = ("zero", "subtract")
DELAYED, IMMEDIATE = "delayed", "immediate"
TIMINGS = (DELAYED, IMMEDIATE)
"""snnTorch's reset timing: ``reset_delay=True`` (its default) or ``False``"""
SNNTORCH_DT = 1e-4
"""the time step snnTorch's exporter hard-codes (``export_nir.py``: ``dt = 1e-4``)"""
NORSE_DT = 1e-3
"""Norse's default ``dt`` of ``to_nir`` and of every cell"""
ROCKPOOL_DT = 1e-3
"""Rockpool's default ``dt`` (its torch modules'), which its ``to_nir`` does not write"""
SINABS_DT = 1.0
"""sinabs has no physical time: its time constants are in timesteps (``alpha = exp(-1/tau_mem)``)"""
_NEURONS = (nir.LIF, nir.CubaLIF, nir.LI, nir.CubaLI, nir.IF)


@dataclass(frozen=True)
class PeerWarning:
    """Something about a peer file the user must know: what, and how to fix it."""

    code: str
    message: str
    fix: str = ""
    exact: bool = True
    """False when the plan does not reproduce the peer's simulation exactly"""

    def __str__(self) -> str:
        return self.message + (f" Fix: {self.fix}" if self.fix else "")


@dataclass
class PeerImport:
    """A peer graph compiled to the contract, with what was corrected and what was not."""

    plan: NetworkPlan
    peer: str
    """'snntorch', 'norse', 'spikeloop' (own metadata) or 'unknown'"""
    dt_s: float
    graph: nir.NIRGraph
    """the corrected graph that was compiled"""
    warnings: list[PeerWarning] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        """Whether the plan reproduces the peer's own simulation spike for spike (float)."""
        return all(w.exact for w in self.warnings)


# ---------------------------------------------------------------- reading, detection

def read_peer_graph(path: str | Path) -> tuple[nir.NIRGraph, list[PeerWarning]]:
    """Read a NIR file; a graph failing only NIR's type check (Norse keeps the batch
    dimension in Input/Output shapes) is read without it, with a warning.

    The file is checked as HDF5 and its spikeloop metadata parsed first, so that the
    lenient reading never sees a malformed file.
    """
    check_nir_file(path)
    read_metadata(path)
    try:
        return read_graph(path), []
    except NIRValidationError as e:
        try:
            graph = nir.read(path, type_check=False)
        except Exception:
            raise e from None
        # Lenient, as nir's own reader offers: the compiler takes every shape from the weights,
        # so a declared type that is wrong but unambiguous (a batch dimension in Input/Output)
        # costs nothing; a graph that does not compile without the check keeps both errors.
        peer = detect_peer(graph)[0]
        return graph, [PeerWarning(
            "type-check", f"{path}: the graph fails NIR's type check ({e.__cause__ or e}); read "
            "without it, the shapes taken from the weights.",
            "re-export with shapes that match" + (" (Norse: the Input/Output shapes include the batch "
                                                  "dimension)" if peer == "norse" else ""))]


def compile_lenient(warnings: list[PeerWarning], compile_fn):
    """``compile_fn()``; if the graph was read without NIR's type check and does not compile,
    one error that gives both faults."""
    try:
        return compile_fn()
    except NIRValidationError as e:
        lenient = [w for w in warnings if w.code == "type-check"]
        if not lenient:
            raise
        raise NIRValidationError(f"{lenient[0].message.split('; read without it')[0]}; read without the "
                                 f"type check, it does not compile either: {e}") from None


def _nodes(graph: nir.NIRGraph, prefix: str = ""):
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            yield from _nodes(node, f"{prefix}{name}.")
        else:
            yield prefix + name, node


def _a(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def detect_peer(graph: nir.NIRGraph) -> tuple[str, str]:
    """``(peer, evidence)``: the framework that wrote ``graph``, from its parameter patterns."""
    if GraphMeta.from_nir_metadata(graph.metadata) is not None:
        return "spikeloop", "spikeloop metadata"
    neurons = [(k, n) for k, n in _nodes(graph) if isinstance(n, _NEURONS)]
    if not neurons:
        return "unknown", "no neuron nodes"
    snn = norse = 0
    for _, n in neurons:
        if isinstance(n, nir.LIF) and np.allclose(_a(n.r) * SNNTORCH_DT, _a(n.tau), rtol=1e-5):
            snn += 1
        elif isinstance(n, nir.CubaLIF) and np.allclose(_a(n.r) * SNNTORCH_DT, _a(n.tau_mem), rtol=1e-5) \
                and np.allclose(_a(n.w_in) * SNNTORCH_DT, _a(n.tau_syn), rtol=1e-5):
            snn += 1
        elif isinstance(n, (nir.LIF, nir.CubaLIF, nir.LI)) and np.all(_a(n.r) == 1) \
                and getattr(n, "w_in", 1) == 1 \
                and _a(n.tau if hasattr(n, "tau") else n.tau_mem).ndim == 0:
            norse += 1
    if snn == len(neurons):
        return "snntorch", "r = tau/1e-4 on every neuron (snnTorch's hard-coded dt)"
    if all(isinstance(n, nir.CubaLIF) and np.all(_a(n.w_in) == 1) and np.allclose(
            _a(n.r) * ROCKPOOL_DT / _a(n.tau_mem), np.exp(-ROCKPOOL_DT / _a(n.tau_mem)), rtol=1e-5)
            for _, n in neurons):
        return "rockpool", "CubaLIF with r = exp(-dt/tau_mem) tau_mem/dt at dt = 1e-3 (Rockpool's to_nir of LIFTorch)"
    if all(isinstance(n, (nir.IF, nir.LIF)) and np.all(_a(n.r) == 1) and _a(n.r).ndim > 0
           and (isinstance(n, nir.IF) or np.all(_a(n.v_leak) == 0)) for _, n in neurons) \
            and any(isinstance(n, nir.IF) for _, n in neurons):
        return "sinabs", "IF neurons with r = 1 per neuron and no leak (sinabs's to_nir of IAF and LIF)"
    if norse == len(neurons):
        return "norse", "scalar neuron parameters with r = 1 and w_in = 1 (Norse's to_nir)"
    return "unknown", "no known exporter's parameter pattern"


# ---------------------------------------------------------------- graph corrections

def _rebuild(node, **kw):
    """A copy of a neuron node with some parameters replaced (types re-inferred)."""
    fields = {"LIF": ("tau", "r", "v_leak", "v_threshold", "v_reset"),
              "CubaLIF": ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"),
              "LI": ("tau", "r", "v_leak"),
              "CubaLI": ("tau_syn", "tau_mem", "r", "v_leak", "w_in"),
              "IF": ("r", "v_threshold", "v_reset")}[type(node).__name__]
    args = {f: _a(getattr(node, f)) for f in fields if getattr(node, f, None) is not None}
    args.update({k: _a(v) for k, v in kw.items()})
    return type(node)(**args)


def _soft_reset(graph: nir.NIRGraph, names: list[str]) -> nir.NIRGraph:
    """The graph with ``metadata['reset'] = 'soft'`` on the named neuron nodes (copies)."""
    if not names:
        return graph
    nodes = {}
    for k, n in graph.nodes.items():
        if k in names:
            n = copy.copy(n)
            n.metadata = {**(n.metadata or {}), "reset": SOFT}
        nodes[k] = n
    return _graph(graph, nodes)


def _graph(graph: nir.NIRGraph, nodes: dict, edges=None) -> nir.NIRGraph:
    return nir.NIRGraph(nodes=nodes, edges=list(edges if edges is not None else graph.edges),
                        metadata=dict(graph.metadata or {}), type_check=False)


def _fanin_size(graph: nir.NIRGraph, name: str) -> int | None:
    sizes = {np.asarray(graph.nodes[a].weight).shape[0] for a, b in graph.edges
             if b == name and isinstance(graph.nodes.get(a), (nir.Affine, nir.Linear))}
    return sizes.pop() if len(sizes) == 1 else None


def _broadcast_params(graph: nir.NIRGraph) -> nir.NIRGraph:
    """Scalar neuron parameters (Norse) -> one value per neuron, sized by the incoming weights."""
    nodes = dict(graph.nodes)
    for name, node in graph.nodes.items():
        if not isinstance(node, _NEURONS):
            continue
        shape_from = _a(node.tau if hasattr(node, "tau") else getattr(node, "tau_mem", node.r))
        n = _fanin_size(graph, name)
        if shape_from.size == 1 and n is not None and n > 1:
            fields = [f for f in ("tau", "tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset",
                                  "w_in") if getattr(node, f, None) is not None]
            nodes[name] = _rebuild(node, **{f: np.full(n, _a(getattr(node, f)).reshape(-1)[0])
                                             for f in fields})
    for name, node in graph.nodes.items():  # the batch dimension Norse keeps
        if isinstance(node, (nir.Input, nir.Output)):
            key = "input" if isinstance(node, nir.Input) else "output"
            shape = np.asarray(getattr(node, f"{key}_type")[key]).reshape(-1)
            if shape.size > 1 and shape[0] == 1:
                nodes[name] = type(node)(**{f"{key}_type": {key: shape[1:]}})
    return _graph(graph, nodes) if nodes != graph.nodes else graph


def _norse_corrections(graph: nir.NIRGraph, dt: float, warnings: list) -> nir.NIRGraph:
    """Undo Norse's tau = dt*tau_real where it is detectable, and its CubaLIF input gain."""
    nodes = dict(graph.nodes)
    scaled, gained, leaky = [], [], []
    for name, node in graph.nodes.items():
        if not isinstance(node, _NEURONS) or isinstance(node, nir.IF):
            continue
        kw = {}
        taus = ("tau",) if hasattr(node, "tau") else ("tau_syn", "tau_mem")
        # to_nir writes tau = dt/tau_inv = dt * tau_real: a time constant shorter than dt is
        # that fault (a real one would make forward Euler overshoot), so divide it out,
        # assuming to_nir's dt equals the simulation dt (both default to 1e-3 in Norse).
        if any(np.any(_a(getattr(node, t)) < dt) for t in taus):
            kw = {t: _a(getattr(node, t)) / dt for t in taus}
            scaled.append(name)
        if isinstance(node, (nir.CubaLIF, nir.CubaLI)) and np.all(_a(node.w_in) == 1):
            # Norse adds the input to i unscaled (functional/lif.py: i_new = state.i + input);
            # NIR's CubaLIF scales it by dt/tau_syn (the compiler's gain du*dv*r*w_in).
            tau_syn = kw.get("tau_syn", _a(node.tau_syn))
            kw["w_in"] = tau_syn / dt
            gained.append(name)
        if np.any(_a(node.v_leak) != 0):
            leaky.append(name)
        if kw:
            nodes[name] = _rebuild(node, **kw)
    if scaled:
        warnings.append(PeerWarning(
            "norse-tau-dt", f"time constants of {scaled} are shorter than dt={dt:g} s: Norse's "
            "to_nir writes tau = dt * (real tau); divided by dt, assuming to_nir's dt equals "
            f"{dt:g} s.", "export with norse.torch.to_nir(model, x, dt=1.0) so that tau is written "
            "in seconds, and pass --dt with the cells' dt"))
    if gained:
        warnings.append(PeerWarning(
            "norse-cubalif-gain", f"CubaLIF nodes {gained} carry w_in = 1; Norse adds the input to "
            "the synaptic current unscaled, so w_in was set to tau_syn/dt to reproduce Norse.",
            "none needed; other NIR consumers of this file will see a dt/tau_syn smaller input"))
    if leaky:
        warnings.append(PeerWarning(
            "norse-initial-v", f"nodes {leaky} have v_leak != 0: Norse starts v at v_leak, spikeloop "
            "at 0, so the first steps differ.", "start the Norse model from v = 0 or use v_leak = 0",
            exact=False))
    return _graph(graph, nodes) if scaled or gained else graph


def _rockpool_corrections(graph: nir.NIRGraph, dt: float, warnings: list) -> nir.NIRGraph:
    """Rockpool's LIFTorch per step: ``i = beta (i + x)``, ``v = alpha v + i + bias`` with
    ``alpha = exp(-dt/tau_mem)``, ``beta = exp(-dt/tau_syn)``; its to_nir writes the real time
    constants and ``r = alpha tau_mem / dt``. The same update in NIR's Euler CubaLIF:
    ``tau' = dt / (1 - decay)`` and an input gain ``du' dv' r' w_in' = beta`` (``r' = 1``)."""
    nodes, done = dict(graph.nodes), []
    for name, node in graph.nodes.items():
        if isinstance(node, nir.CubaLIF):
            alpha, beta = np.exp(-dt / _a(node.tau_mem)), np.exp(-dt / _a(node.tau_syn))
            du, dv = 1 - beta, 1 - alpha
            nodes[name] = _rebuild(node, tau_syn=dt / du, tau_mem=dt / dv, r=np.ones_like(alpha),
                                   w_in=beta / (du * dv))
            done.append(name)
    if done:
        warnings.append(PeerWarning(
            "rockpool-decays", f"CubaLIF nodes {done}: Rockpool decays by exp(-dt/tau) and adds the input "
            "to the synaptic current before it decays; time constants and input gain rewritten to give "
            "the same update in NIR's Euler form.", "none needed; other NIR consumers read the rewritten "
            "values as written"))
        return _graph(graph, nodes)
    return graph


def _sinabs_corrections(graph: nir.NIRGraph, dt: float, warnings: list) -> nir.NIRGraph:
    """sinabs's LIF decays exponentially: ``v = exp(-1/tau) v + (1 - exp(-1/tau)) x`` per step
    (``norm_input=True``, its default), which NIR's Euler LIF gives with ``tau' = dt / (1 -
    exp(-dt/tau))`` (and ``r = 1``)."""
    nodes, lif = dict(graph.nodes), []
    for name, node in graph.nodes.items():
        if isinstance(node, nir.LIF):
            tau = _a(node.tau)
            nodes[name] = _rebuild(node, tau=dt / -np.expm1(-dt / tau))
            lif.append(name)
    if lif:
        warnings.append(PeerWarning(
            "sinabs-lif-decay", f"LIF nodes {lif}: sinabs decays by exp(-1/tau) per step, not NIR's "
            "1 - dt/tau; tau rewritten to give the same decay. sinabs's to_nir does not write "
            "norm_input: assuming True (its default, input scaled by 1 - exp(-1/tau)).",
            "none needed for norm_input=True; with norm_input=False the inputs are larger than simulated",
            exact=False))
        return _graph(graph, nodes)
    return graph


def _check_plausible(graph: nir.NIRGraph, dt: float, warnings: list) -> None:
    """Warn about time constants that forward Euler at ``dt`` cannot integrate."""
    bad = []
    for name, node in _nodes(graph):
        for t in ("tau", "tau_syn", "tau_mem"):
            v = getattr(node, t, None)
            if v is not None and np.any(_a(v) < dt):
                bad.append(f"{name}.{t}={_a(v).min():.3g} s")
    if bad:
        warnings.append(PeerWarning(
            "tau-below-dt", f"time constants shorter than dt={dt:g} s ({', '.join(bad)}): decay "
            f"factors dt/tau exceed 1, so the neurons overshoot instead of decaying.",
            "pass the dt the model was trained with (--dt; snnTorch: 1e-4, Norse: 1e-3) or "
            "check the exporter's time units", exact=False))


def _self_inhibition(graph: nir.NIRGraph, names: list[str]) -> nir.NIRGraph:
    """snnTorch's subtract for LIF: a self-edge of -vth/r (gain dv*r -> -dv*vth in u).

    With a soft reset (v -= vth before the decay) this adds the missing ``dv*vth`` so that
    the step after a spike sees ``beta*v + I - vth`` exactly, as snnTorch computes.
    """
    nodes, edges = dict(graph.nodes), list(graph.edges)
    for name in names:
        n = graph.nodes[name]
        w = np.diag(-_a(n.v_threshold).reshape(-1) / _a(n.r).reshape(-1))
        rec = [a for a, b in edges if b == name and (name, a) in edges
               and isinstance(nodes[a], (nir.Linear, nir.Affine))]
        if rec:  # RLeaky: fold into its recurrent weights
            r = nodes[rec[0]]
            nodes[rec[0]] = (nir.Affine(_a(r.weight) + w, _a(r.bias)) if isinstance(r, nir.Affine)
                             else nir.Linear(_a(r.weight) + w))
        else:
            nodes[f"{name}.reset"] = nir.Linear(w)
            edges += [(name, f"{name}.reset"), (f"{name}.reset", name)]
    return _graph(graph, nodes, edges)


def _recurrent(graph: nir.NIRGraph) -> set[str]:
    """Neuron nodes on a cycle (through one synapse node)."""
    succ = {}
    for a, b in graph.edges:
        succ.setdefault(a, set()).add(b)
    return {k for k, n in graph.nodes.items() if isinstance(n, _NEURONS)
            and any(k in succ.get(s, ()) for s in succ.get(k, ()))}


# ---------------------------------------------------------------- import

def import_peer(graph: nir.NIRGraph, dt_s: float | None = None, peer: str = "auto",
                reset: str | None = None, T: int | None = None, source: str = "graph",
                warnings: list[PeerWarning] | None = None, timing: str = DELAYED) -> PeerImport:
    """Compile a peer's NIR graph, mapping its conventions; see the module docstring.

    ``peer``: 'auto' (detect), 'snntorch', 'norse' or 'none' (plain NIR). ``reset``: the
    reset mechanism of the original model, which no peer exporter writes ('zero' or
    'subtract'; None: what the file says, reset to zero). ``timing``: snnTorch's reset
    timing, which its exporter does not write either: 'delayed' (``reset_delay=True``, its
    default: a spike's reset applies in the next step's update) or 'immediate'
    (``reset_delay=False``: in the same step, as spikeloop's contract does).
    """
    dt = dt_s
    if peer not in PEER_CHOICES:
        raise ConfigError(f"peer must be one of {PEER_CHOICES}, got {peer!r}")
    if reset not in (None, *RESETS):
        raise ConfigError(f"peer reset must be one of {RESETS}, got {reset!r}")
    if timing not in TIMINGS:
        raise ConfigError(f"peer reset timing must be one of {TIMINGS}, got {timing!r}")
    warnings = list(warnings or [])
    detected, evidence = detect_peer(graph)
    name = detected if peer == "auto" else ("unknown" if peer == "none" else peer)
    if timing == IMMEDIATE and name != "snntorch":
        raise ConfigError(f"{source}: --peer-reset-timing is snnTorch's reset_delay; the graph is "
                          f"{'written by ' + name if name in PEERS + ('spikeloop',) else 'plain NIR'}")
    if peer in PEERS and detected in PEERS and detected != peer:
        warnings.append(PeerWarning(
            "peer-mismatch", f"{source}: --peer {peer} given, but the graph looks written by "
            f"{detected} ({evidence}).", "check --peer, or use --peer auto", exact=False))
    if name not in PEERS:  # spikeloop's own graph or plain NIR: the compiler as it is
        plan = plan_from_nir(graph, dt_s=dt, T=T, source=source, reset=SOFT if reset == "subtract" else None)
        _check_plausible(graph, plan.dt_s, warnings)
        return PeerImport(plan, detected if peer == "auto" else name, plan.dt_s, graph, warnings)
    meta_dt = (graph.metadata or {}).get("dt")
    if dt is None and meta_dt is None:
        dt = {"snntorch": SNNTORCH_DT, "norse": NORSE_DT, "sinabs": SINABS_DT, "rockpool": ROCKPOOL_DT}[name]
        warnings.append(PeerWarning(
            "dt-assumed", f"{source}: no time step in the file; using {name}'s "
            f"{'hard-coded' if name == 'snntorch' else 'default'} dt = {dt:g} s"
            + (" (one timestep: sinabs's time constants are in steps)." if name == "sinabs" else "."),
            "pass --dt SECONDS if the model ran with another time step"))
    elif dt is None:
        dt = float(np.asarray(meta_dt))
    if name == "snntorch" and not np.isclose(dt, SNNTORCH_DT):
        warnings.append(PeerWarning(
            "snntorch-dt", f"{source}: snnTorch writes tau = 1e-4/(1 - beta); with dt = {dt:g} s the "
            "decays are not the model's beta.", "pass --dt 1e-4 (or omit --dt)", exact=False))

    graph = _broadcast_params(graph)
    if name == "norse":
        graph = _norse_corrections(graph, dt, warnings)
    elif name == "sinabs":
        graph = _sinabs_corrections(graph, dt, warnings)
    elif name == "rockpool":
        graph = _rockpool_corrections(graph, dt, warnings)
    _check_plausible(graph, dt, warnings)

    soft, exact_graph = [], graph
    neurons = {k: n for k, n in graph.nodes.items() if isinstance(n, (nir.LIF, nir.CubaLIF, nir.IF))}
    rec = _recurrent(graph)
    if name == "snntorch":
        if reset is None:
            warnings.append(PeerWarning(
                "snntorch-reset-dropped", f"{source}: snnTorch's export_to_nir writes reset-to-zero "
                "for every neuron, whatever the model's reset_mechanism; snnTorch's default is "
                "'subtract'. Simulating reset-to-zero: spikes differ from a 'subtract' model.",
                "pass --peer-reset subtract (or zero) to state the model's reset_mechanism",
                exact=False))
        cuba_zero = [k for k, n in neurons.items() if (isinstance(n, nir.CubaLIF) or k in rec)]
        leaky = all(isinstance(n, nir.LIF) and k not in rec for k, n in neurons.items())
        if timing == IMMEDIATE and not leaky:
            warnings.append(PeerWarning(
                "snntorch-immediate-unverified", f"{source}: reset timing 'immediate' (reset_delay=False) "
                f"is mapped for Leaky neurons only; nodes {[k for k in neurons if k in cuba_zero]} are "
                "Synaptic or RLeaky, whose immediate reset has not been checked against snnTorch.",
                "use Leaky neurons, or reset_delay=True", exact=False))
        if timing == IMMEDIATE and leaky:
            # snnTorch resets within the step, as the contract does: reset to zero is the hard
            # reset and subtract the soft one, with no correction (its double-reset guard only
            # differs where a voltage stays above threshold after subtracting it)
            if reset == "subtract":
                warnings.append(PeerWarning(
                    "snntorch-immediate-subtract", f"{source}: immediate subtract matches snnTorch's voltages, "
                    "but after a step that leaves a voltage above threshold even once reset (it exceeded twice "
                    "the threshold), snnTorch's guard against a double reset tests the next spike against "
                    "twice the threshold; spikeloop's neuron does not, so spikes can differ there.",
                    "use reset 'zero', or keep the input a step brings below the threshold", exact=False))
            graph = _soft_reset(graph, list(neurons) if reset == "subtract" else [])
            plan = plan_from_nir(graph, dt_s=dt, T=T, source=source)
            return PeerImport(plan, detected if peer == "auto" else name, plan.dt_s, graph, warnings)
        if reset in (None, "zero") and cuba_zero:
            warnings.append(PeerWarning(
                "snntorch-zero-refractory", f"{source}: snnTorch's Synaptic/RLeaky reset 'zero' "
                f"clears the whole update of the step after a spike (nodes {cuba_zero}); Lava's LIF "
                "resets v to 0 and integrates that step, so spikes differ.",
                "train with Leaky neurons or reset_mechanism='subtract' for an exact deployment",
                exact=False))
        if reset == "subtract":
            lif = [k for k, n in neurons.items() if isinstance(n, nir.LIF)]
            cuba = [k for k, n in neurons.items() if not isinstance(n, nir.LIF)]
            exact_graph = _self_inhibition(graph, lif) if lif else graph
            soft = list(neurons)
            if cuba:
                warnings.append(PeerWarning(
                    "snntorch-subtract-synaptic", f"{source}: snnTorch's Synaptic subtracts the "
                    "threshold after the decay, spikeloop's soft reset before it (nodes "
                    f"{cuba}): each spike leaves v higher by (1 - beta) * threshold than snnTorch.",
                    "use Leaky neurons (mapped exactly) or reset_mechanism='zero' with Leaky",
                    exact=False))
    elif name == "sinabs":
        spiking = [k for k, n in neurons.items() if isinstance(n, (nir.IF, nir.LIF))]
        if reset is None:
            warnings.append(PeerWarning(
                "sinabs-reset-assumed", f"{source}: sinabs's to_nir does not write the reset; assuming "
                "MembraneSubtract (its default: v -= threshold at a spike).",
                "pass --peer-reset zero if the model used MembraneReset", exact=False))
        warnings.append(PeerWarning(
            "sinabs-spike-fn", f"{source}: sinabs's to_nir does not write the spike function either. "
            "spikeloop's neuron emits one spike where v > threshold; sinabs's default MultiSpike emits "
            "floor(v / threshold) spikes, and SingleSpike fires at v >= threshold: spikes differ where a "
            "voltage reaches twice the threshold in one step, or equals it.",
            "train with SingleSpike and inputs below the threshold per step for an exact deployment",
            exact=False))
        soft = spiking if reset in (None, "subtract") else []
    elif name == "rockpool":
        if reset == "zero":
            raise ConfigError(f"{source}: --peer-reset zero: Rockpool's LIFTorch always subtracts the threshold")
        warnings.append(PeerWarning(
            "rockpool-spikes", f"{source}: Rockpool's LIFTorch emits floor(v / threshold) spikes where v >= "
            "threshold (up to max_spikes_per_dt, which to_nir does not write); spikeloop's neuron emits one "
            "where v > threshold: spikes differ where a voltage reaches twice the threshold, or equals it.",
            "train with max_spikes_per_dt=1 and inputs below the threshold per step for an exact deployment",
            exact=False))
        soft = list(neurons)
    elif name == "norse":
        if reset is None:
            warnings.append(PeerWarning(
                "norse-reset-dropped", f"{source}: Norse's to_nir does not write LIFBoxCell's "
                "reset_method; simulating reset to v_reset (reset_value, the default).",
                "pass --peer-reset subtract if the model used reset_subtract"))
        elif reset == "subtract":
            soft = [k for k, n in neurons.items() if isinstance(n, nir.LIF)]
            cuba = [k for k in neurons if k not in soft]
            if cuba:
                raise ConfigError(f"{source}: --peer-reset subtract: Norse's LIFCell (CubaLIF nodes "
                                  f"{cuba}) always resets to v_reset; only LIFBoxCell has reset_subtract")

    graph = _soft_reset(exact_graph, soft)  # the compiler reads each node's reset from its metadata
    plan = plan_from_nir(graph, dt_s=dt, T=T, source=source)
    return PeerImport(plan, detected if peer == "auto" else name, plan.dt_s, graph, warnings)


def import_peer_file(path: str | Path, dt_s: float | None = None, peer: str = "auto",
                     reset: str | None = None, T: int | None = None, timing: str = DELAYED) -> PeerImport:
    """Read and import a peer NIR file (see :func:`import_peer`)."""
    graph, warnings = read_peer_graph(path)
    return compile_lenient(warnings, lambda: import_peer(graph, dt_s, peer, reset, T, str(path), warnings, timing))
