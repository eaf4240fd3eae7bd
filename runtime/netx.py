"""Write a policy as lava-dl netx hdf5, the Loihi 2 deployment format (lava-dl 0.6.0).

``lava.lib.dl.netx.hdf5.Network`` builds a *chain* of layers from the file: each
``dense`` layer is a Dense synapse followed by a CUBA neuron (Lava's ``LIF``, or
``LIFReset`` when the Network is given a ``reset_interval``), and it runs only in
Lava's ``fixed_pt`` models: every number in the file is a Loihi register.

Supported (a :class:`~spikeloop.runtime.plan.NetworkPlan` of this shape)
    input -> Dense -> CUBA-LIF -> ... -> Dense -> output population, each
    population fed only by the one before, hard reset. Mapping, per population:
    ``weight`` = integer weights, ``bias`` = bias mantissas (netx fixes the bias
    exponent at 6), ``neuron``: ``type='CUBA'``, ``iDecay = du_12bit + 1`` (netx
    subtracts Loihi's current-decay offset again), ``vDecay = dv_12bit``,
    ``vThMant = vth_17bit``, ``refDelay = 1``, ``gradedSpike = False``.
Non-spiking readout (LI / CubaLI) as the last layer
    A CUBA neuron with ``vThMant = 2**17``: its effective threshold ``2**23`` lies
    above the largest 24-bit voltage, so it never fires (netx's own default for a
    layer without a neuron). The readout is that neuron's ``v`` Var, read at the
    decision's read step. On hardware the 17-bit register holds at most
    ``2**17 - 1``; Lava's simulation does not check the width.
Graded host input
    netx has no layer that relays signed graded values, so the file has no input
    layer: the first dense layer takes graded spikes when the Network is built with
    ``input_message_bits=24``. That, the windowed reset (``reset_interval`` = the
    decision period, ``reset_offset=1``: netx resets layer ``i`` at step
    ``reset_offset + 1 + i``, which is spikeloop's ``1 + depth``) and the encoding,
    window and readout scale are not part of netx's layer description; they are
    stored as attributes of the file's ``spikeloop`` group, and
    :func:`netx_network_kwargs` returns the Network arguments.

netx's grid differs from spikeloop's fixed point in two ways, so the registers are
re-derived from :func:`~spikeloop.runtime.fixed_point.quantize_plan`'s choice
(:func:`netx_fixed_plan`), never on a larger scale than it (same overflow policy):

- no weight exponent: the loader derives one from the integer weights so that a
  layer's input is exactly ``W @ s`` with ``|W| <= 254``. A connection whose
  spikeloop exponent ``e`` is positive moves it into the population's scale (exact);
  one with ``e < 0`` keeps its scale, and its weights are rounded to a grid
  ``2**(-e-1)`` times coarser (spikeloop's own sits on even integers). For the input
  layer that is the graded payload's resolution meeting the weights': a policy trained
  on a payload grid ``2**(-e-1)`` times coarser (``--input-bits``) has ``e >= -1`` and
  keeps that layer's weights exactly (the export's note says which bits). Thresholds and
  biases still move: a positive exponent shrinks the population's scale by ``2**e``, and
  the bias exponent is fixed, so netx's registers equal spikeloop's only where every
  connection has ``e`` in ``{-1, 0}``.
- bias exponent fixed at 6: biases are rounded to multiples of 64 state units, with
  13-bit mantissas (the scale is halved, coarsening the weights, until they fit).

Not supported (:class:`~spikeloop.core.errors.ExportError` naming the node): soft reset,
a population fed by more than one connection or not by the previous layer (skips,
merges, recurrence), delayed connections (netx's ``delay`` field is not written), a
non-spiking population that is not the last layer, ``dv = 1`` (vDecay 4096 does not
fit 12 bits), a threshold or weights that vanish on netx's grid, and convolutions
(the plan keeps them as kernels; netx's conv block is not written).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from spikeloop.core.artifacts import atomic_path
from spikeloop.core.coding import PAYLOAD_BITS
from spikeloop.core.errors import ExportError, QuantizationError
from spikeloop.runtime.fixed_point import (BIAS_MANT_MAX, DECAY_UNITY, DS_OFFSET, VTH_SHIFT,
                                           FixedConnection, FixedPlan, FixedPopulation,
                                           lava_effective_weights, quantize_plan, threshold_register)
from spikeloop.runtime.plan import INPUT, NetworkPlan
from spikeloop.core.neuron import HARD

NETX_BIAS_EXP = 6
"""netx's ``get_neuron_params`` hard-codes ``bias_exp = 6``"""
NEVER_FIRES_VTH = 1 << 17
"""``vThMant`` of a non-spiking layer: ``2**17 << 6`` exceeds every 24-bit voltage"""
INPUT_MESSAGE_BITS = 24
"""graded payload width of the host input, as in spikeloop's own Lava compile"""
FORMAT = "spikeloop-netx/1"


@dataclass
class NetxExport:
    """A written netx file, the registers it holds, and what netx's grid cost."""

    path: Path
    fixed: FixedPlan
    notes: list[str] = field(default_factory=list)


def _chain(plan: NetworkPlan) -> None:
    """Raise unless ``plan`` is the layer chain that netx's Network describes."""
    prev = INPUT
    for i, p in enumerate(plan.populations):
        if p.bias_source:
            target = ", ".join(c.dst for c in plan.outgoing(p.name))
            raise ExportError(f"node {target!r}: a bias into its decaying synaptic current (CubaLIF) runs as a "
                              f"bias source {p.name!r}, a neuron outside the chain of layers that netx "
                              "describes; netx's CUBA layers have a voltage bias only")
        if p.reset != HARD:
            raise ExportError(f"node {p.name!r}: {p.reset} reset is not expressible in netx, whose CUBA "
                              "neuron (Lava's LIF) resets the voltage to 0")
        srcs = [c.src for c in plan.incoming(p.name)]
        if srcs != [prev]:
            raise ExportError(f"node {p.name!r}: netx describes a chain of layers, each fed only by the one "
                              f"before ({prev!r}); {p.name!r} is fed by {srcs}")
        for c in plan.incoming(p.name):
            if c.graph_delay or c.delay:
                raise ExportError(f"node {c.name!r}: delayed connections (a Delay node) are not exported "
                                  "to netx")
            if c.conv is not None:
                raise ExportError(f"node {c.name!r}: a convolution; spikeloop writes netx's dense blocks only "
                                  "(netx's conv block is not written yet). Run it with a Lava backend")
        last = i == len(plan.populations) - 1
        if not p.spiking and not last:
            raise ExportError(f"node {p.name!r}: a non-spiking {p.kind} that feeds another layer is not "
                              "expressible in netx, whose layers pass spikes on; only the last layer may be "
                              "a non-spiking readout")
        if last and p.name != plan.output:
            raise ExportError(f"node {p.name!r}: the last layer of the chain is not the graph's output "
                              f"{plan.output!r}")
        # netx resets layer i at step reset_offset + 1 + i: right only where depth == i + 1
        assert plan.depths()[p.name] == i + 1, (p.name, plan.depths())
        prev = p.name


def _dense_registers(name: str, W: np.ndarray) -> FixedConnection:
    """Integer weights ``W`` as a Lava Dense whose input is exactly ``W @ s``."""
    if not np.any(W):
        raise ExportError(f"node {name!r}: all weights round to 0 on netx's grid")
    # Lava's mixed-sign Dense drops the lowest weight bit at 8 bits: odd weights (only
    # ever |W| <= 127 here) go in doubled with exponent -1, which netx's loader also does.
    conn = FixedConnection(name, W.astype(np.int32), 0) if not np.any(W % 2) else \
        FixedConnection(name, (2 * W).astype(np.int32), -1)
    assert np.array_equal(lava_effective_weights(conn.weights), conn.weights)
    return conn


def netx_fixed_plan(plan: NetworkPlan, fixed: FixedPlan | None = None) -> tuple[FixedPlan, list[str]]:
    """Registers of ``plan`` on netx's grid (see the module docstring), and notes on what it cost.

    Starts from ``fixed`` (default :func:`quantize_plan`) and never uses a larger
    scale than it, so the overflow guarantee of the quantizer carries over.
    """
    _chain(plan)
    fixed = fixed if fixed is not None else quantize_plan(plan)
    pops, conns, errors, notes = {}, {}, {}, []
    for p in plan.populations:
        (c,) = plan.incoming(p.name)
        fc, fp = fixed.connections[c.name], fixed.populations[p.name]
        if np.ndim(fp.du_12bit) or np.ndim(fp.dv_12bit):
            raise ExportError(f"node {p.name!r}: per-neuron time constants; netx's CUBA layer holds one "
                              "iDecay and one vDecay per layer")
        if fp.dv_12bit > DECAY_UNITY - 1:
            raise ExportError(f"node {p.name!r}: dv = 1 (no voltage memory) needs vDecay {fp.dv_12bit}, "
                              "beyond the 12-bit register of netx's CUBA neuron")
        src_scale = fixed.input_scale if c.src == INPUT else 1.0
        # scale = fp.scale / 2**shift; the weights W = w_eff * 2**(e - shift) are exact for shift == e.
        shift = max(fc.weight_exp, 0)
        while True:
            scale = fp.scale / 2.0 ** shift
            bias_mant = np.rint(scale * np.asarray(p.bias, np.float64) / 2 ** NETX_BIAS_EXP).astype(np.int64)
            if np.abs(bias_mant).max(initial=0) <= BIAS_MANT_MAX:
                break
            shift += 1
        lost = shift - fc.weight_exp
        W = np.rint(fc.w_eff.astype(np.float64) * 2.0 ** -lost).astype(np.int64) if lost else \
            fc.w_eff.astype(np.int64)
        conns[c.name] = _dense_registers(c.name, W)
        vth = None
        if p.spiking:
            try:
                vth = threshold_register(p.name, p.vth, scale)
            except QuantizationError as e:
                raise ExportError(f"node {p.name!r}: vThMant on netx's grid: {e}") from e
        pops[p.name] = FixedPopulation(p.name, scale, fp.du_12bit, fp.dv_12bit, bias_mant,
                                       np.full(p.size, NETX_BIAS_EXP, np.int64), vth)
        w_back = W * 2.0 ** VTH_SHIFT * src_scale / scale
        # spikeloop's weights sit on even integers (Lava drops the lowest mixed-sign bit)
        coarser = 2 ** lost // (1 if np.any(fc.w_eff % 2) else 2) if lost else 1
        err = {"scale": scale, "weight_grid_coarser": int(coarser),
               f"weight_rel_err[{c.name}]": float(np.abs(w_back - c.weight).max() / np.abs(c.weight).max()),
               "bias_abs_err": float(np.abs(bias_mant * 2.0 ** NETX_BIAS_EXP / scale - p.bias)
                                     .max(initial=0.0))}
        if vth is not None:
            err["vth_rel_err"] = abs(vth * 2.0 ** VTH_SHIFT / scale - p.vth) / p.vth
        errors[p.name] = err
        if shift > max(fc.weight_exp, 0):
            notes.append(f"{p.name}: its bias needs a 13-bit mantissa at netx's fixed exponent 6, so its "
                         f"scale is {2 ** (shift - max(fc.weight_exp, 0))}x smaller than the weights allow")
        if coarser > 1:
            hint = ""
            bits = getattr(plan.encoding, "bits", None) if plan.input_graded else None
            if c.src == INPUT and bits is not None and bits - int(np.log2(coarser)) >= PAYLOAD_BITS[0]:
                # a payload grid 2^k coarser moves k bits of the product into the weights' exponent
                hint = (f"; a policy trained with --input-bits {bits - int(np.log2(coarser))} (the input payload "
                        f"on a {coarser}x coarser grid) would put these weights exactly on netx's grid")
            notes.append(f"{c.name} -> {p.name}: netx has no weight exponent, so the weight grid is "
                         f"{coarser}x coarser than spikeloop's (max relative weight error "
                         f"{err[f'weight_rel_err[{c.name}]']:.2%}){hint}")
    return FixedPlan(pops, conns, fixed.input_scale, errors), notes


def write_netx(path: str | Path, plan: NetworkPlan, fixed: FixedPlan | None = None) -> NetxExport:
    """Atomically write ``plan`` as a netx hdf5 file; raise :class:`ExportError` if netx cannot hold it."""
    path = Path(path)
    nfixed, notes = netx_fixed_plan(plan, fixed)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        sim = f.create_group("simulation")  # lava-dl's own convention: step and sample length
        sim.create_dataset("Ts", data=float(plan.dt_s))
        sim.create_dataset("tSample", data=int(plan.T))
        layers = f.create_group("layer")
        for i, p in enumerate(plan.populations):
            (c,) = plan.incoming(p.name)
            fp, fc = nfixed.populations[p.name], nfixed.connections[c.name]
            g = layers.create_group(str(i))
            _string(g, "type", "dense")
            g.create_dataset("shape", data=np.array([p.size], np.int64))
            w = fc.weights.astype(np.int64)
            g.create_dataset("weight", data=(w >> -fc.weight_exp) if fc.weight_exp < 0 else w)
            g.create_dataset("bias", data=fp.bias_mant.astype(np.int64))
            n = g.create_group("neuron")
            _string(n, "type", "CUBA")
            n.create_dataset("iDecay", data=np.int64(fp.du_12bit + DS_OFFSET))
            n.create_dataset("vDecay", data=np.int64(fp.dv_12bit))
            vth = NEVER_FIRES_VTH if fp.vth_17bit is None else fp.vth_17bit
            n.create_dataset("vThMant", data=np.int64(vth))
            n.create_dataset("refDelay", data=np.int64(1))
            n.create_dataset("gradedSpike", data=False)
        meta = f.create_group("spikeloop")  # everything netx's layer description cannot carry
        meta.attrs.update({
            "format": FORMAT,
            "layers": json.dumps([p.name for p in plan.populations]),
            "input_message_bits": INPUT_MESSAGE_BITS,
            "reset_interval": plan.period,
            "reset_offset": 1,
            "T": plan.T,
            "period": plan.period,
            "read_offset": plan.read_offset(),
            "dt": plan.dt_s,
            "output": plan.output,
            "output_scale": nfixed.populations[plan.output].scale,
            "encoding": json.dumps(plan.encoding.to_dict() if plan.encoding else None),
            "decoding": json.dumps(plan.decoding.to_dict()),
            "quantization": json.dumps(nfixed.errors),
        })
    return NetxExport(path, nfixed, notes)


def _string(group: h5py.Group, key: str, value: str) -> None:
    # lava-dl writes strings as fixed-length ascii arrays of one element
    group.create_dataset(key, (1,), "S10", [value.encode("ascii")])


def netx_metadata(path: str | Path) -> dict:
    """The ``spikeloop`` attributes of a netx file written by :func:`write_netx` (JSON decoded)."""
    try:
        with h5py.File(path, "r") as f:
            attrs = dict(f["spikeloop"].attrs)
    except (OSError, KeyError) as e:
        raise ExportError(f"{path}: not a netx file written by spikeloop ({e})") from e
    out = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in attrs.items()}
    for k in ("layers", "encoding", "decoding", "quantization"):
        out[k] = json.loads(out[k])
    return out


def netx_network_kwargs(path: str | Path) -> dict:
    """Arguments for ``lava.lib.dl.netx.hdf5.Network`` that reproduce spikeloop's timing."""
    meta = netx_metadata(path)
    return {"net_config": str(path), "input_message_bits": meta["input_message_bits"],
            "reset_interval": meta["reset_interval"], "reset_offset": meta["reset_offset"]}


def export_netx(source: str | Path, out: str | Path | None = None, graph=None) -> NetxExport:
    """Export a ``.nir`` graph (or ``graph``, a ``nir.NIRGraph`` read from ``source``) to netx hdf5.

    The default output is ``policy.net`` next to the source.
    """
    from spikeloop.core.nir_io import read_graph
    from spikeloop.runtime.compiler import plan_from_nir

    source = Path(source)
    graph = read_graph(source) if graph is None else graph
    plan = plan_from_nir(graph, source=str(source))
    return write_netx(Path(out) if out else source.parent / "policy.net", plan)
