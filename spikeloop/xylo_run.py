"""`spikeloop run --target xylo`: a policy closed loop on a Xylo core, its counts and its clock.

The graph is compiled to a plan, checked against the xylo profile's limits, mapped onto
the core's registers (:mod:`spikeloop.runtime.xylo_map`) and run on the vendor's
simulator (``xylosim``) or spikeloop's bit-exact emulator. The torch policy beside the
graph, when there is one, answers every observation the core saw (the action agreement).
The report gives the spikes and synaptic events per decision, the input encoder's own
host cost, the vendor's cycle model on the measured activity and the clock real time
needs. Energy is priced only where the profile holds an energy per cycle; otherwise the
report says why not.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from spikeloop.core.errors import ConfigError

XYLO_BACKEND_NAMES = ("xylosim", "emulator")


def xylo_stage(nir_path: Path, env_id: str | None, backend: str, episodes: int, seed: int,
               checkpoint: Path | None, progress: bool = True, profile_name: str = "xylo",
               check_emulator: bool = True) -> dict:
    """Check, map and run a policy on a Xylo backend; the report as a dict (nothing written).

    On ``xylosim`` with ``check_emulator``, spikeloop's emulator decides beside it on every
    observation and must give the same readout at every step of every decision (the run
    stops with :class:`~spikeloop.core.errors.RuntimeMismatchError` otherwise).
    """
    from spikeloop.core.nir_io import read_graph
    from spikeloop.hwprofiles.cycles import xylo_cycles
    from spikeloop.hwprofiles.fit import check_fit, layers_from_nir
    from spikeloop.hwprofiles.profile import load_profile
    from spikeloop.pipeline import prepare_policy
    from spikeloop.runtime.runner import run_closed_loop
    from spikeloop.runtime.xylo_map import make_xylo_backend
    from spikeloop.train.policy import TorchPolicy

    if backend not in XYLO_BACKEND_NAMES:
        raise ConfigError(f"--target xylo runs on --backend {' or '.join(XYLO_BACKEND_NAMES)}, got {backend!r}")
    profile = load_profile(profile_name)
    graph = read_graph(nir_path)
    prepared = prepare_policy(nir_path, env_id, checkpoint=checkpoint, graph=graph)
    plan = prepared.plan
    core = make_xylo_backend(backend, plan)  # every register checked before an episode runs
    check_fit(layers_from_nir(graph, source=str(nir_path), plan=plan), profile).raise_if_violated()  # every violated limit
    reference = None if prepared.policy is None else TorchPolicy(prepared.policy)
    env_id = prepared.env_id
    runs = {}
    if reference is not None:
        runs["torch"] = run_closed_loop(reference, env_id, episodes, seed, progress=progress)
    key = f"xylo_{'sim' if backend == 'xylosim' else 'emulator'}"
    twin = make_xylo_backend("emulator", plan) if backend == "xylosim" and check_emulator else None
    res = run_closed_loop(core, env_id, episodes, seed, reference=reference, twin=twin, progress=progress)
    res.extra["emulator_bit_exact"] = True if twin is not None else None
    runs[key] = res
    per = res.counts.per_decision()
    reg = core.placement.registers
    n_in, n_hid, n_out = reg.sizes
    act = core.activity()
    cycles = xylo_cycles(profile, n_in, n_hid, n_out, reg.recurrent_fanout(), act["input"], act["hidden"],
                         act["output"])
    steps = core.placement.window.period
    enc = plan.encoding
    epc = profile.constants.get("energy_per_cycle")
    energy = ({"priced": True, "per_decision_J": cycles.per_step * steps * epc.value, "source": epc.source}
              if epc is not None and epc.value is not None else
              {"priced": False, "reason": epc.source if epc is not None else "the profile holds no energy per cycle"})
    return {
        "target": profile.name, "backend": backend, "env_id": env_id, "policy": str(nir_path),
        "evaluation": {k: r.summary() for k, r in runs.items()},
        "mapping": {"inputs": n_in, "hidden": n_hid, "outputs": n_out,
                    "populations": {k: [s.start, s.stop] for k, s in core.placement.hidden.items()},
                    "readout": core.placement.readout, "depth": core.placement.depth,
                    "synapses": int(np.count_nonzero(reg.w_in) + np.count_nonzero(reg.w_rec)
                                    + np.count_nonzero(reg.w_out)),
                    "steps_per_decision": steps},
        "counts_per_decision": per,
        "spikes_per_decision": float(sum(per["spikes"].values())),
        "synops_per_decision": float(sum(per["synops"].values())),
        "encoder": {"kind": enc.describe(), "host_ops_per_decision": enc.host_ops(),
                    "events_per_decision": core.input_events / max(res.decisions, 1)},
        "cycles": {"per_step": cycles.per_step, "per_decision": cycles.per_step * steps,
                   "activity": act, "dt_s": plan.dt_s, "realtime_clock_hz": cycles.clock_hz(plan.dt_s),
                   "model": "SynSense's cycle model of the Xylo Audio 2 core (Rockpool 3.1.0 "
                            "power_cycles_model.py), constants in the xylo profile's [cycles]"},
        "energy": energy,
    }


def report_markdown(report: dict) -> str:
    """The human-readable report of a Xylo run."""
    from spikeloop.report import chip_run_head

    lines = chip_run_head(f"# Xylo run: {report['env_id']} on {report['backend']}", report)
    m, c, e = report["mapping"], report["cycles"], report["encoder"]
    lines += ["", f"Core: {m['inputs']} inputs, {m['hidden']} hidden neurons, {m['outputs']} outputs, "
                  f"{m['synapses']} synapses; {m['steps_per_decision']} steps per decision.", "",
              f"Per decision: {report['spikes_per_decision']:.1f} spikes, {report['synops_per_decision']:.1f} "
              f"synaptic events; input encoder ({e['kind']}): {e['events_per_decision']:.1f} input events, "
              f"{e['host_ops_per_decision']} host operations.", "",
              f"Cycle model: {c['per_step']:.0f} cycles per timestep on the measured activity "
              f"({c['per_decision']:.0f} per decision); real time at dt = {c['dt_s']:g} s needs a "
              f"{c['realtime_clock_hz'] / 1e6:.3f} MHz clock (20 % headroom). {c['model']}.", ""]
    en = report["energy"]
    lines.append(f"Energy per decision: {en['per_decision_J']:.3g} J ({en['source']})" if en["priced"] else
                 f"Energy per decision: not priced ({en['reason']}).")
    return "\n".join(lines) + "\n"
