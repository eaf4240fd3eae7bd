"""Bring your own policy: one import path from any NIR file to a graph that runs closed loop.

A graph written by spikeloop carries everything a closed-loop run needs in its metadata
(:class:`~spikeloop.core.metadata.GraphMeta`: dt, window T, input encoding, decoding,
environment). A graph written by another framework carries none of it. :func:`import_policy`
reads either, maps a peer's conventions (:mod:`spikeloop.runtime.peers`), applies the
user's :class:`PolicyChoices` on top of what the file says, and returns the *annotated*
graph: a plain NIR graph with spikeloop metadata that every command (and ``spikeloop
run`` later, with no flags) reads as spikeloop's own. ``spikeloop annotate`` writes it.

The choices, with what happens when one is not given:

* ``dt_s``, ``T``: the file's; a peer's default dt with a warning; T absent = streaming.
* ``encoding``: explicit (mean/std/clip/bits), or fitted from ``fit_steps`` observations
  of a uniformly random policy on the environment, or the file's.
* ``decoding``: the file's, else the readout voltage at the window's last step. A
  stated voltage readout of a *spiking* output node (snnTorch cannot export a
  non-spiking readout) reads that node as a leaky integrator, with a warning that says
  whether its threshold is provably unreachable (then the reading is exact).
* ``env_id``: checked to be a registered id, never imported on trust.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import nir
import numpy as np

from spikeloop.core.coding import Decoding, InputEncoding
from spikeloop.core.errors import ConfigError
from spikeloop.core.metadata import GraphMeta, check_T
from spikeloop.runtime.compiler import plan_from_nir
from spikeloop.runtime.peers import PEERS, PeerWarning, compile_lenient, import_peer, read_peer_graph
from spikeloop.runtime.plan import NetworkPlan

FIT_STEPS_DEFAULT = 2_000
"""random-policy observations an input normalization is fitted from by default (as DQN's ``norm_steps``)"""


@dataclass(frozen=True)
class PolicyChoices:
    """What the user states about a policy graph; ``None`` keeps what the file says."""

    peer: str = "auto"
    peer_reset: str | None = None
    peer_reset_timing: str = "delayed"
    """snnTorch's reset_delay: 'delayed' (True, its default) or 'immediate' (False)"""
    dt_s: float | None = None
    T: int | None = None
    env_id: str | None = None
    encoding: InputEncoding | None = None
    fit_encoding: bool = False
    """fit the input normalization from random-policy observations of the environment"""
    fit_steps: int = FIT_STEPS_DEFAULT
    fit_seed: int = 0
    clip: float = 4.0
    bits: int = 8
    decoding: Decoding | None = None
    memory: str | None = None
    """'window' (each decision from zero state) or 'stream' (state carried across decisions)"""

    def __post_init__(self):
        check_T(self.T, "--T")
        if self.memory not in (None, "window", "stream"):
            raise ConfigError(f"memory must be 'window' or 'stream', got {self.memory!r}")
        if self.peer == "none" and self.peer_reset is not None:
            raise ConfigError("--peer-reset needs --peer auto, snntorch or norse")
        if self.fit_encoding and self.encoding is not None:
            raise ConfigError("give either an explicit encoding (--obs-mean/--obs-std) or --encoding fit, not both")
        if isinstance(self.fit_steps, bool) or not isinstance(self.fit_steps, int) or self.fit_steps < 1:
            raise ConfigError(f"fit steps must be a positive integer, got {self.fit_steps!r}")

    @property
    def changes(self) -> bool:
        """Whether any choice differs from 'what the file says'."""
        return self != PolicyChoices(peer=self.peer)


@dataclass
class ImportedPolicy:
    """A policy graph annotated for closed-loop runs, compiled."""

    graph: nir.NIRGraph
    """the annotated graph (spikeloop metadata; a peer's conventions already mapped)"""
    plan: NetworkPlan
    meta: GraphMeta
    peer: str
    """'spikeloop', 'snntorch', 'norse' or 'unknown' (plain NIR)"""
    warnings: list[PeerWarning] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        """Whether the deployed graph reproduces the file's own model (no warning says otherwise)."""
        return all(w.exact for w in self.warnings)

    @property
    def env_id(self) -> str | None:
        return self.meta.extra.get("env_id")


def import_policy(path: str | Path, choices: PolicyChoices = PolicyChoices()) -> ImportedPolicy:
    """Read a NIR policy file, map its writer's conventions and apply ``choices``; see the module doc.

    Every check runs before anything expensive: the file, the peer mapping, the window,
    the environment (registered, sized like the graph) and then the fitted encoding.
    """
    source = str(path)
    graph, warnings = read_peer_graph(path)
    return import_policy_graph(graph, choices, source, warnings)


def import_policy_graph(graph: nir.NIRGraph, choices: PolicyChoices = PolicyChoices(), source: str = "graph",
                        warnings: list[PeerWarning] | None = None) -> ImportedPolicy:
    """:func:`import_policy` of a graph already read."""
    from spikeloop.core.envs import check_env_fits, random_observations, registered_id

    return compile_lenient(list(warnings or []), lambda: _import(graph, choices, source, warnings))


def _import(graph, choices: PolicyChoices, source: str, warnings) -> ImportedPolicy:
    from spikeloop.core.envs import check_env_fits, random_observations, registered_id

    file_meta = GraphMeta.from_nir_metadata(graph.metadata, source)
    imp = import_peer(graph, choices.dt_s, choices.peer, choices.peer_reset, None, source, warnings,
                      choices.peer_reset_timing)
    meta = file_meta if file_meta is not None else GraphMeta(dt_s=imp.dt_s)
    meta = replace(meta, dt_s=imp.dt_s, extra=dict(meta.extra))
    if choices.T is not None:
        meta.T = choices.T
    decoding = choices.decoding or meta.decoding
    meta.decoding = decoding
    mapped, converted = imp.graph, None
    if choices.decoding is not None:  # a stated voltage readout of a spiking output: read it as an integrator
        mapped, converted = _readout_as_integrator(imp.graph, imp.plan, decoding, source)
    warnings = list(imp.warnings)
    if choices.env_id is not None:
        meta.extra["env_id"] = registered_id(choices.env_id)
    if choices.encoding is not None:
        meta.encoding = choices.encoding
    if choices.memory is not None:
        meta.extra["memory"] = choices.memory
    env_id = meta.extra.get("env_id")
    if choices.fit_encoding:  # sizes as the peer's plan has them (reading the output by voltage keeps them)
        if env_id is None:
            raise ConfigError(f"{source}: --encoding fit needs an environment to observe; pass --env ENV_ID")
        out = imp.plan.population(imp.plan.output)
        n_values = out.size // len(decoding.atoms) if decoding.atoms else out.size
        check_env_fits(env_id, imp.plan.input_size, n_values, source)
        obs = random_observations(env_id, choices.fit_steps, choices.fit_seed)
        meta.encoding = InputEncoding.fit(obs, clip=choices.clip, bits=choices.bits)
    # compiled once, as every later command compiles it; the provenance added below
    # ('imported') is not read by the compiler
    plan = plan_from_nir(_with_meta(mapped, meta), source=source)
    if converted is not None:
        warnings.append(_integrator_warning(plan, converted, source))
    if imp.peer in PEERS:
        meta.extra["imported"] = {"peer": imp.peer, "peer_reset": choices.peer_reset,
                                  "peer_reset_timing": choices.peer_reset_timing,
                                  "exact": all(w.exact for w in warnings)}
    annotated = _with_meta(mapped, meta)
    return ImportedPolicy(annotated, plan, meta, imp.peer, warnings)


def _with_meta(graph: nir.NIRGraph, meta: GraphMeta) -> nir.NIRGraph:
    others = {k: v for k, v in (graph.metadata or {}).items() if k not in ("spikeloop", "dt")}
    return nir.NIRGraph(nodes=dict(graph.nodes), edges=list(graph.edges),
                        metadata={**others, **meta.to_nir_metadata()}, type_check=False)


def _readout_as_integrator(graph: nir.NIRGraph, plan: NetworkPlan, decoding: Decoding,
                           source: str) -> tuple[nir.NIRGraph, tuple[str, str, float] | None]:
    """A voltage decoding of a spiking output node reads that node as a leaky integrator.

    Returns the graph and, if a node was converted, ``(name, NIR type, threshold)``.
    """
    out = plan.population(plan.output)
    if decoding.spiking_output or not out.spiking:
        return graph, None
    name = out.name
    node = graph.nodes.get(name)
    if not isinstance(node, (nir.LIF, nir.CubaLIF)):
        raise ConfigError(f"{source}: the decoding reads the output's voltage, but output node {name!r} is a "
                          f"spiking {type(node).__name__} that cannot be read as a leaky integrator; "
                          "pass --decoding spike-count")
    # a soft reset's self-inhibition edge (snnTorch 'subtract') belongs to the spiking node only
    drop = {f"{name}.reset"}
    nodes = {k: v for k, v in graph.nodes.items() if k not in drop}
    edges = [(a, b) for a, b in graph.edges if a not in drop and b not in drop]
    if isinstance(node, nir.LIF):
        nodes[name] = nir.LI(tau=np.asarray(node.tau), r=np.asarray(node.r), v_leak=np.asarray(node.v_leak))
    else:
        nodes[name] = nir.CubaLI(tau_syn=np.asarray(node.tau_syn), tau_mem=np.asarray(node.tau_mem),
                                 r=np.asarray(node.r), v_leak=np.asarray(node.v_leak),
                                 w_in=np.asarray(node.w_in))
    vth = float(np.min(np.asarray(node.v_threshold, np.float64)))
    converted = nir.NIRGraph(nodes=nodes, edges=edges, metadata=dict(graph.metadata or {}), type_check=False)
    return converted, (name, type(node).__name__, vth)


def _integrator_warning(plan: NetworkPlan, converted: tuple[str, str, float], source: str) -> PeerWarning:
    """Says that an output node is read as a leaky integrator, and whether that is exact:
    exact when the voltage bound over any input stays below the node's threshold."""
    name, kind, vth = converted
    bound = _voltage_bound(plan, name)
    unreachable = bool(np.isfinite(bound) and bound < vth)
    ok = (f"its voltage stays within {bound:.4g} for any input, so the threshold is never reached and the "
          "reading is exact" if unreachable else
          f"its voltage can reach the threshold (bound {bound:.4g}), so where the model spiked and reset, "
          "values differ")
    return PeerWarning(
        "readout-as-integrator", f"{source}: output node {name!r} is a spiking {kind} (threshold {vth:g}) "
        f"read by its voltage: it is deployed as a leaky integrator ({'LI' if kind == 'LIF' else 'CubaLI'}); "
        f"{ok}.", "export a non-spiking readout, or keep the threshold above the voltage bound",
        exact=unreachable)


def _voltage_bound(plan: NetworkPlan, name: str) -> float:
    """An upper bound of ``|v|`` of population ``name`` over any input sequence.

    Inputs from spiking populations are 0/1; the host input and graded sources are
    unbounded (``inf``).
    """
    pop = plan.population(name)
    u = np.zeros(pop.size)
    for c in plan.connections:
        if c.dst != name:
            continue
        if c.graded or not plan.population(c.src).spiking:
            return float("inf")
        u = u + c.row_abs_sum()
    du, dv = np.asarray(pop.du, np.float64), np.asarray(pop.dv, np.float64)
    if np.any(du <= 0) or np.any(dv <= 0):
        return float("inf")
    return float(np.max((u / du + np.abs(pop.bias)) / dv))
