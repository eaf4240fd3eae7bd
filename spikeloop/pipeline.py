"""The end-to-end job: train -> export NIR -> compile to Lava -> closed loop -> energy -> report.

Each stage reads and writes artifacts in one run folder, so every stage can also be
run alone from the CLI (``spikeloop train / export / run / energy``).
"""
from __future__ import annotations

import datetime as _dt
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path


from spikeloop import __version__
from spikeloop.core.artifacts import write_json, write_text
from spikeloop.core.config_io import write_toml
from spikeloop.core.errors import ConfigError

POLICY_CKPT, POLICY_NIR, REPORT_JSON, REPORT_MD, CONFIG = (
    "policy.safetensors", "policy.nir", "report.json", "report.md", "config.toml")


@dataclass
class EvalConfig:
    """How a compiled policy is evaluated and priced."""

    episodes: int = 20
    seed: int = 1000
    """episode i is reset with seed + i (the same episodes for every backend)"""
    mapping: str = "fused"
    profiles: list[str] = field(default_factory=lambda: _neuromorphic_profiles())
    baseline: str = "cpu-45nm"
    check_emulator: bool = True
    """step the bit-exact emulator beside Lava fixed point and stop on any difference"""


def _neuromorphic_profiles() -> list[str]:
    from spikeloop.hwprofiles import builtin_profiles

    return builtin_profiles("neuromorphic")


def train_stage(run_dir: Path, dqn_cfg, progress: bool = True):
    """Train a spiking DQN and write its checkpoint and config into ``run_dir``."""
    from spikeloop.train.checkpoint import save_policy
    from spikeloop.train.dqn import train_dqn

    result = train_dqn(dqn_cfg, progress=progress)
    save_policy(run_dir / POLICY_CKPT, result.model, {
        "encoding": result.encoding.to_dict(), "env_id": dqn_cfg.env_id,
        "training": {"best_eval": result.best_eval, "steps": result.steps, "seconds": result.seconds}})
    write_toml(run_dir / CONFIG, {"dqn": asdict(dqn_cfg)})
    write_json(run_dir / "training.json", {"best_eval": result.best_eval, "steps": result.steps,
                                           "seconds": result.seconds, "history": result.history})
    return result


def export_stage(run_dir: Path, dt: float = 1e-3, checkpoint: Path | None = None,
                 out: Path | None = None) -> Path:
    """Export the run's checkpoint to ``policy.nir`` (metadata: dt, T, reset, encoding)."""
    from spikeloop.core.nir_io import write_graph
    from spikeloop.export.to_nir import export_policy
    from spikeloop.train.checkpoint import load_policy
    from spikeloop.core.coding import InputEncoding

    model, info = load_policy(checkpoint or run_dir / POLICY_CKPT)
    if "encoding" not in info:
        raise ConfigError(f"{checkpoint or run_dir / POLICY_CKPT}: checkpoint has no input encoding")
    graph = export_policy(model, dt, InputEncoding.from_dict(info["encoding"]),
                          {"env_id": info.get("env_id")})
    return write_graph(out or run_dir / POLICY_NIR, graph)


def evaluate_stage(run_dir: Path, env_id: str, cfg: EvalConfig, nir_path: Path | None = None,
                   progress: bool = True) -> dict:
    """Closed-loop returns in torch float, Lava float and Lava fixed; counts; energy."""
    from spikeloop.core.nir_io import read_graph
    from spikeloop.runtime.compiler import plan_from_nir
    from spikeloop.runtime.fixed_point import quantize_plan
    from spikeloop.runtime.runner import run_closed_loop
    from spikeloop.train.checkpoint import load_policy

    nir_path = nir_path or run_dir / POLICY_NIR
    plan = plan_from_nir(read_graph(nir_path), source=str(nir_path))
    fixed = quantize_plan(plan)
    ckpt = run_dir / POLICY_CKPT
    model = load_policy(ckpt)[0] if ckpt.exists() else None
    common = dict(plan=plan, env_id=env_id, episodes=cfg.episodes, seed=cfg.seed, progress=progress)
    results = {}
    if model is not None:
        results["torch_float"] = run_closed_loop(backend="torch", precision="float", model=model, **common)
    results["lava_float"] = run_closed_loop(backend="lava", precision="float", mapping=cfg.mapping,
                                            reference=model, **common)
    results["lava_fixed"] = run_closed_loop(backend="lava", precision="fixed", mapping=cfg.mapping,
                                            reference=model, fixed=fixed,
                                            check_emulator=cfg.check_emulator, **common)
    return {"plan": plan, "fixed": fixed, "results": results}


def energy_stage(plan, counts_per_decision: dict, profiles: list[str], baseline: str) -> dict:
    """Price the measured counts on each profile, beside the dense-ANN baseline.

    Each target also carries its mapping check (does it fit, cores, utilisation) and the
    profile's reference figures; ``neurobench`` holds the NeuroBench-convention counts.
    """
    from spikeloop.hwprofiles import (NetworkShape, load_profile, price_dense_baseline,
                                      price_neuromorphic)
    from spikeloop.hwprofiles.energy import neurobench_counts
    from spikeloop.hwprofiles.fit import check_fit, layers_from_plan

    shape = NetworkShape.of(plan)
    host = load_profile(baseline)
    net = layers_from_plan(plan, "policy.nir")
    out = {"baselines": {p: price_dense_baseline(shape, host, p).to_dict() for p in ("fp32", "int8")},
           "targets": {}, "baseline_profile": host.name}
    for name in profiles:
        prof = load_profile(name)
        if prof.kind != "neuromorphic":
            raise ConfigError(f"{name} is a conventional profile: it prices the dense-ANN baseline "
                              f"(--baseline {name}), not a neuromorphic target")
        rep = price_neuromorphic(counts_per_decision, shape, prof, host).to_dict()
        rep["ratio_vs_dense_fp32"] = _ratio(rep["total_J"], out["baselines"]["fp32"]["total_J"])
        rep["ratio_vs_dense_int8"] = _ratio(rep["total_J"], out["baselines"]["int8"]["total_J"])
        rep["dynamic_ratio_vs_dense_fp32"] = _ratio(rep["dynamic_J"], out["baselines"]["fp32"]["total_J"])
        rep["dynamic_ratio_vs_dense_int8"] = _ratio(rep["dynamic_J"], out["baselines"]["int8"]["total_J"])
        rep["fit"] = check_fit(net, prof).to_dict()
        rep["profile_file"] = prof.path
        rep["reference"] = {k: {"value": c.value, "unit": c.unit, "source": c.source,
                                "confidence": c.confidence} for k, c in prof.reference.items()}
        out["targets"][prof.name] = rep
    out["neurobench"] = neurobench_counts(counts_per_decision, shape)
    out["shape"] = asdict(shape)
    return out


def _ratio(a, b):
    return None if not b else a / b


def build_report(run_dir: Path, env_id: str, evaluation: dict, energy: dict, training: dict | None,
                 cfg: EvalConfig, command: str) -> dict:
    plan, fixed, results = evaluation["plan"], evaluation["fixed"], evaluation["results"]
    fixed_res = results["lava_fixed"]
    per_dec = fixed_res.counts.per_decision()
    return {
        "spikeloop_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine()},
        "env_id": env_id,
        "policy": {"nir": POLICY_NIR, "checkpoint": POLICY_CKPT if (run_dir / POLICY_CKPT).exists() else None,
                   "layers": [plan.input_size] + [p.size for p in plan.populations],
                   "populations": {p.name: {"kind": p.kind, "size": p.size, "spiking": p.spiking}
                                   for p in plan.populations},
                   "dt_s": plan.dt, "T": plan.T, "latency_steps": plan.latency,
                   "steps_per_decision": plan.period, "encoding": plan.encoding.to_dict()},
        "training": training,
        "quantization": fixed.errors,
        "evaluation": {k: r.summary() for k, r in results.items()},
        "counts_per_decision": per_dec,
        "counts_source": f"Lava fixed_pt ({cfg.mapping} mapping), counters inside the process models, "
                         f"{fixed_res.decisions} decisions",
        "energy": energy,
        "acceptance": {"lava_fixed_mean_return": fixed_res.mean_return,
                       "lava_fixed_mean_return_ge_475": fixed_res.mean_return >= 475.0,
                       "episodes": len(fixed_res.returns)},
    }


def write_report(run_dir: Path, report: dict) -> None:
    from spikeloop.report import render_markdown

    write_json(run_dir / REPORT_JSON, report)
    write_text(run_dir / REPORT_MD, render_markdown(report))


def demo(run_dir: Path, dqn_cfg, eval_cfg: EvalConfig, dt: float = 1e-3, progress: bool = True,
         command: str = "spikeloop demo") -> dict:
    """The whole pipeline on CartPole; returns the report dict."""
    run_dir.mkdir(parents=True, exist_ok=True)
    result = train_stage(run_dir, dqn_cfg, progress)
    export_stage(run_dir, dt)
    evaluation = evaluate_stage(run_dir, dqn_cfg.env_id, eval_cfg, progress=progress)
    per_dec = evaluation["results"]["lava_fixed"].counts.per_decision()
    energy = energy_stage(evaluation["plan"], per_dec, eval_cfg.profiles, eval_cfg.baseline)
    training = {"best_eval_return_torch": result.best_eval, "env_steps": result.steps,
                "seconds": round(result.seconds, 1), "seed": dqn_cfg.seed}
    report = build_report(run_dir, dqn_cfg.env_id, evaluation, energy, training, eval_cfg, command)
    write_report(run_dir, report)
    return report
