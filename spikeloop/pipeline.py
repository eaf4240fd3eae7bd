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


def train_stage(run_dir: Path, agent: str, cfg, progress: bool = True):
    """Train agent ``agent`` with ``cfg``; write its checkpoint, ``config.toml`` and ``training.json``.

    ``config.toml`` reads back: ``spikeloop train --config RUN/config.toml`` reproduces the run.
    """
    from spikeloop.train.agents import get_agent
    from spikeloop.train.checkpoint import save_policy

    spec = get_agent(agent)
    result = spec.train(cfg, progress=progress)
    training = {"best_eval": result.best_eval, "steps": result.steps, "seconds": result.seconds}
    save_policy(run_dir / POLICY_CKPT, result.policy, {"training": training})
    write_toml(run_dir / CONFIG, {"agent": {"name": agent}, agent: asdict(cfg)})
    write_json(run_dir / "training.json", {**training, "history": result.history})
    return result


def read_config(path: Path) -> tuple[str, dict]:
    """``(agent name, its options)`` from a ``config.toml`` written by :func:`train_stage`."""
    import tomllib

    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config ({e.strerror or e})") from e
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not a valid TOML file ({e})") from e
    agent = data.get("agent", {}).get("name") if isinstance(data.get("agent"), dict) else None
    if agent is None and list(data) == ["dqn"]:  # run folders written before agents were registered
        agent = "dqn"
    if not isinstance(agent, str):
        raise ConfigError(f"{path}: no [agent] table with name = \"...\"; it was not written by spikeloop train")
    if not isinstance(data.get(agent), dict):
        raise ConfigError(f"{path}: no [{agent}] table with the agent's options")
    return agent, data[agent]


def export_stage(run_dir: Path, dt_s: float = 1e-3, checkpoint: Path | None = None,
                 out: Path | None = None, fmt: str = "nir") -> Path:
    """Export the run's checkpoint to ``policy.nir`` (or lava-dl netx: ``policy.net``)."""
    from spikeloop.core.nir_io import write_graph
    from spikeloop.export.to_nir import export_policy
    from spikeloop.train.checkpoint import load_policy

    ckpt = checkpoint or run_dir / POLICY_CKPT
    policy, _ = load_policy(ckpt)
    graph = export_policy(policy, dt_s)
    if fmt == "netx":
        from spikeloop.runtime.netx import export_netx

        return export_netx(ckpt, out or ckpt.parent / "policy.net", graph=graph)
    return write_graph(out or run_dir / POLICY_NIR, graph)


def evaluate_stage(run_dir: Path, env_id: str, cfg: EvalConfig, nir_path: Path | None = None,
                   progress: bool = True) -> dict:
    """Closed-loop returns in torch float, Lava float and Lava fixed; counts; energy.

    The Lava backend is the registered one of ``cfg.mapping``; Lava fixed point runs beside
    the bit-exact emulator as its twin when ``cfg.check_emulator``.
    """
    from spikeloop.core.nir_io import read_graph
    from spikeloop.runtime.backends import LAVA_MAPPINGS, make_backend
    from spikeloop.runtime.compiler import plan_from_nir
    from spikeloop.runtime.fixed_point import quantize_plan
    from spikeloop.runtime.runner import run_closed_loop
    from spikeloop.train.checkpoint import load_policy
    from spikeloop.train.policy import TorchPolicy

    if cfg.mapping not in LAVA_MAPPINGS:
        raise ConfigError(f"mapping must be one of {tuple(LAVA_MAPPINGS)}, got {cfg.mapping!r}")
    lava = LAVA_MAPPINGS[cfg.mapping]
    nir_path = nir_path or run_dir / POLICY_NIR
    plan = plan_from_nir(read_graph(nir_path), source=str(nir_path))
    fixed = quantize_plan(plan)
    ckpt = run_dir / POLICY_CKPT
    torch_model = TorchPolicy(load_policy(ckpt)[0]) if ckpt.exists() else None
    common = dict(env_id=env_id, episodes=cfg.episodes, seed=cfg.seed, progress=progress)
    results = {}
    if torch_model is not None:
        results["torch_float"] = run_closed_loop(torch_model, **common)
    results["lava_float"] = run_closed_loop(make_backend(lava, plan, "float"), reference=torch_model, **common)
    twin = make_backend("emulator", plan, "fixed", fixed) if cfg.check_emulator else None
    results["lava_fixed"] = run_closed_loop(make_backend(lava, plan, "fixed", fixed), reference=torch_model,
                                            twin=twin, **common)
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
                   "dt_s": plan.dt_s, "T": plan.T, "latency_steps": plan.latency,
                   "steps_per_decision": plan.period, "encoding": plan.encoding.to_dict()},
        "training": training,
        "quantization": fixed.errors,
        "evaluation": {k: r.summary() for k, r in results.items()},
        "counts_per_decision": per_dec,
        "counts_source": f"Lava fixed_pt ({cfg.mapping} mapping), counters inside the process models, "
                         f"{fixed_res.decisions} decisions",
        "energy": energy,
        "acceptance": _acceptance(env_id, fixed_res),
    }


def _acceptance(env_id: str, fixed_res) -> dict:
    """Lava fixed point's mean return against the environment's own solved threshold."""
    from spikeloop.core.envs import reward_threshold

    target = reward_threshold(env_id)
    return {"lava_fixed_mean_return": fixed_res.mean_return, "episodes": len(fixed_res.returns),
            "target_return": target, "target_source": f"gymnasium reward_threshold of {env_id}",
            "met": None if target is None else bool(fixed_res.mean_return >= target)}


def write_report(run_dir: Path, report: dict) -> None:
    from spikeloop.report import render_markdown

    write_json(run_dir / REPORT_JSON, report)
    write_text(run_dir / REPORT_MD, render_markdown(report))


def demo(run_dir: Path, agent: str, cfg, eval_cfg: EvalConfig, dt_s: float = 1e-3, progress: bool = True,
         command: str = "spikeloop demo") -> dict:
    """The whole pipeline (train, export, evaluate, price, report); returns the report dict."""
    run_dir.mkdir(parents=True, exist_ok=True)
    result = train_stage(run_dir, agent, cfg, progress)
    export_stage(run_dir, dt_s)
    evaluation = evaluate_stage(run_dir, cfg.env_id, eval_cfg, progress=progress)
    per_dec = evaluation["results"]["lava_fixed"].counts.per_decision()
    energy = energy_stage(evaluation["plan"], per_dec, eval_cfg.profiles, eval_cfg.baseline)
    training = {"agent": agent, "best_eval_return_torch": result.best_eval, "env_steps": result.steps,
                "seconds": round(result.seconds, 1), "seed": cfg.seed}
    report = build_report(run_dir, cfg.env_id, evaluation, energy, training, eval_cfg, command)
    write_report(run_dir, report)
    return report
