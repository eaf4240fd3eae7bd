"""`spikeloop run --target speck`: a policy closed loop on spikeloop's emulator of Speck (DYNAP-CNN).

The graph is compiled to a plan, checked against the speck profile's limits (one layer per
core: the placement is in the report), discretized as sinabs discretizes a network for the chip
and run in :class:`~spikeloop.runtime.speck.SpeckEmulator` (bit-exact with sinabs's software model
of the chip, ``tests/test_speck.py``). The torch policy beside the graph, when there is one,
answers every observation the emulator saw (the action agreement). The report gives the spikes,
input events and synaptic events per decision. Energy stays unpriced: the speck profile cites no
energy per operation (none is published), and the chip has no timestep to turn its resting power
into energy per decision.
"""
from __future__ import annotations

from pathlib import Path

from spikeloop.core.errors import ConfigError

SPECK_BACKEND_NAMES = ("emulator",)


def speck_stage(nir_path: Path, env_id: str | None, backend: str, episodes: int, seed: int,
                checkpoint: Path | None, progress: bool = True) -> dict:
    """Check, place and run a policy on the Speck emulator; the report as a dict (nothing written)."""
    from spikeloop.core.nir_io import read_graph
    from spikeloop.hwprofiles.fit import check_fit, layers_from_nir
    from spikeloop.hwprofiles.profile import load_profile
    from spikeloop.pipeline import prepare_policy
    from spikeloop.runtime.runner import run_closed_loop
    from spikeloop.runtime.speck import SpeckEmulator
    from spikeloop.train.policy import TorchPolicy

    if backend not in SPECK_BACKEND_NAMES:
        raise ConfigError(f"--target speck runs on --backend {' or '.join(SPECK_BACKEND_NAMES)} (spikeloop's "
                          f"emulator; SynSense's tools need samna and the chip), got {backend!r}")
    profile = load_profile("speck")
    graph = read_graph(nir_path)
    prepared = prepare_policy(nir_path, env_id, checkpoint=checkpoint, graph=graph)
    plan = prepared.plan
    try:
        core = SpeckEmulator(plan)  # every register checked before an episode runs
    except ConfigError as e:
        raise ConfigError(f"{nir_path}: {e}") from None
    fit = check_fit(layers_from_nir(graph, source=str(nir_path), plan=plan), profile).raise_if_violated()
    reference = None if prepared.policy is None else TorchPolicy(prepared.policy)
    env_id = prepared.env_id
    runs = {}
    if reference is not None:
        runs["torch"] = run_closed_loop(reference, env_id, episodes, seed, progress=progress)
    res = run_closed_loop(core, env_id, episodes, seed, reference=reference, progress=progress)
    runs["speck_emulator"] = res
    per = res.counts.per_decision()
    return {
        "target": profile.name, "backend": backend, "env_id": env_id, "policy": str(nir_path),
        "evaluation": {k: r.summary() for k, r in runs.items()},
        "mapping": {"cores": fit.per_core, "cores_used": fit.cores_used, "cores_available": fit.cores_available,
                    "layers": [{"population": lay.population, "threshold": lay.threshold,
                                "threshold_low": lay.threshold_low, "scale": lay.scale, "reset": lay.reset}
                               for lay in core.layers],
                    "steps_per_decision": plan.T},
        "counts_per_decision": per,
        "spikes_per_decision": float(sum(per["spikes"].values())),
        "synops_per_decision": float(sum(per["synops"].values())),
        "input_events_per_decision": core.input_events / max(res.decisions, 1),
        "energy": {"priced": False, "reason": "the speck profile holds no energy per synaptic operation or spike "
                                              "(not published), and the chip has no timestep to turn its resting "
                                              "power into energy per decision"},
    }


def speck_markdown(report: dict) -> str:
    """The human-readable report of a Speck run."""
    from spikeloop.report import chip_run_head

    lines = chip_run_head(f"# Speck run: {report['env_id']} on the {report['backend']}", report)
    m = report["mapping"]
    lines += ["", f"Placement: {m['cores_used']} of {m['cores_available']} cores, one layer each; "
                  f"{m['steps_per_decision']} steps per decision.", "",
              "| core | layer | neuron memory | kernel memory |", "|---:|---|---:|---:|"]
    for c in m["cores"]:
        lines.append(f"| {c['core']} | {c['layer']} | {c['neuron_memory']:,}/{c['neuron_memory_capacity']:,} | "
                     f"{c['kernel_memory']:,}/{c['kernel_memory_capacity']:,} |")
    lines += ["", f"Per decision: {report['input_events_per_decision']:.1f} input events, "
                  f"{report['spikes_per_decision']:.1f} spikes, {report['synops_per_decision']:.1f} synaptic events.",
              "", f"Energy per decision: not priced ({report['energy']['reason']}).", ""]
    return "\n".join(lines) + "\n"
