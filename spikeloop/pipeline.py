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
from spikeloop.core.artifacts import (check_output_dir, check_output_file, json_text, write_files, write_json,
                                      write_text)
from spikeloop.core.config_io import write_toml
from spikeloop.core.errors import ConfigError, ExportError, SpikeloopError

POLICY_CKPT, POLICY_NIR, REPORT_JSON, REPORT_MD, CONFIG = (
    "policy.safetensors", "policy.nir", "report.json", "report.md", "config.toml")


EVAL_BACKENDS = ("lava", "emulator", "torch")
EVAL_PRECISIONS = ("float", "fixed", "both")


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
    record: bool = False
    """keep every decision's observation, values and action (``decisions.npz`` of ``run``)"""
    backend: str = "lava"
    """what runs the deployed graph: 'lava' (the --mapping), 'emulator' or 'torch' (the checkpoint)"""
    precision: str = "both"
    """'float', 'fixed' or 'both' (lava and emulator)"""
    envs: int = 1
    """copies of the network stepped at once, one environment each (emulator, Lava fused)"""
    static_timestep: str = "realtime"
    """static power over the real-time timestep or the unthrottled one (hwprofiles.energy.StaticPower)"""
    static_share: str = "chip"
    """the whole chip's static power or the used cores' share"""

    def __post_init__(self):
        from spikeloop.runtime.backends import LAVA_MAPPINGS

        def integer(name: str, lo: int) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ConfigError(f"{name} must be an integer >= {lo}, got {v!r}")

        integer("episodes", 1)
        integer("seed", 0)
        integer("envs", 1)
        if self.backend not in EVAL_BACKENDS:
            raise ConfigError(f"backend must be one of {EVAL_BACKENDS}, got {self.backend!r}")
        if self.precision not in EVAL_PRECISIONS:
            raise ConfigError(f"precision must be one of {EVAL_PRECISIONS}, got {self.precision!r}")
        if self.envs > 1 and (self.backend == "torch" or (self.backend == "lava" and self.mapping != "fused")):
            raise ConfigError(f"--envs {self.envs}: batched copies run on the emulator and on Lava's fused "
                              f"mapping, not on {self.backend}" + (f" {self.mapping}" if self.backend == "lava" else ""))
        if not isinstance(self.mapping, str) or self.mapping not in LAVA_MAPPINGS:
            raise ConfigError(f"mapping must be one of {tuple(LAVA_MAPPINGS)}, got {self.mapping!r}")
        if not isinstance(self.profiles, (list, tuple)) or not self.profiles or not all(
                isinstance(p, (str, Path)) and str(p) for p in self.profiles):
            raise ConfigError(f"profiles must name at least one profile, got {self.profiles!r}")
        self.profiles = list(self.profiles)
        if not isinstance(self.baseline, (str, Path)) or not str(self.baseline):
            raise ConfigError(f"baseline must name a conventional profile, got {self.baseline!r}")
        from spikeloop.hwprofiles.energy import StaticPower

        StaticPower(self.static_timestep, self.static_share)
        for name in ("check_emulator", "record"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, got {getattr(self, name)!r}")


def _neuromorphic_profiles() -> list[str]:
    from spikeloop.hwprofiles import builtin_profiles

    return builtin_profiles("neuromorphic")


def train_stage(run_dir: Path, agent: str, cfg, progress: bool = True):
    """Train agent ``agent`` with ``cfg``; write its checkpoint, ``config.toml`` and ``training.json``.

    ``config.toml`` reads back: ``spikeloop train --config RUN/config.toml`` reproduces the run.
    Nothing is written before training succeeded; then the three files at once
    (:func:`~spikeloop.core.artifacts.write_files`).
    """
    from spikeloop.train.agents import get_agent

    check_output_dir(run_dir)
    spec = get_agent(agent)
    result = spec.train(cfg, progress=progress)
    write_files(run_dir, training_files(agent, cfg, result))
    return result


def training_files(agent: str, cfg, result) -> dict:
    """The writers of a training run's files: checkpoint, config and training record."""
    from spikeloop.train.checkpoint import save_policy

    training = {"best_eval": result.best_eval, "steps": result.steps, "seconds": result.seconds}
    # a model that is not a deployable Policy (the spiking decision transformer) writes its own checkpoint
    save = getattr(result.policy, "save", None) or (lambda p, extra: save_policy(p, result.policy, extra))
    files = {POLICY_CKPT: lambda p: save(p, {"training": training}),
             CONFIG: lambda p: write_toml(p, {"agent": {"name": agent}, agent: asdict(cfg)}),
             "training.json": lambda p: write_json(p, {**training, "history": result.history})}
    if result.log:  # an agent that logs every episode: the table and its plot
        from spikeloop.plots import plot_training_log

        files |= {"training.csv": lambda p: write_csv(p, result.log),
                  "training.png": lambda p: plot_training_log(result.log, p)}
    return files


def write_csv(path: Path, rows: list[dict]) -> Path:
    """Rows as CSV, one column per key any row has (in first-seen order; blank where a row lacks it)."""
    import csv
    import io

    columns = list(dict.fromkeys(k for r in rows for k in r))
    text = io.StringIO()
    writer = csv.DictWriter(text, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return write_text(path, text.getvalue())


def read_config(path: Path) -> tuple[str, dict]:
    """``(agent name, its options)`` from a ``config.toml`` written by :func:`train_stage`."""
    import tomllib

    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config ({e.strerror or e})") from e
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as e:
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
    target = out or (ckpt.parent / "policy.net" if fmt == "netx" else run_dir / POLICY_NIR)
    check_output_file(target)
    policy, _ = load_policy(ckpt)
    try:
        graph = export_policy(policy, dt_s)
    except ExportError as e:
        raise ExportError(f"{ckpt}: {e}") from None
    if fmt == "netx":
        from spikeloop.runtime.netx import export_netx

        return export_netx(ckpt, target, graph=graph)
    return write_graph(target, graph)


def evaluate_stage(run_dir: Path, env_id: str, cfg: EvalConfig, nir_path: Path | None = None,
                   progress: bool = True, prepared: "PreparedPolicy | None" = None) -> dict:
    """Closed-loop returns of the torch policy (if a checkpoint is there) and of the deployed
    graph on ``cfg.backend`` in ``cfg.precision`` (keys ``torch_float``, ``lava_fixed``, ...).

    The Lava backend is the registered one of ``cfg.mapping``; Lava fixed point runs beside
    the bit-exact emulator as its twin when ``cfg.check_emulator``; ``cfg.envs`` copies run
    at once where it is above 1. ``priced`` names the result whose counts are priced. ``prepared`` is the
    policy already read and checked (:func:`prepare_policy`); without it the graph is read
    from ``nir_path`` (default ``run_dir/policy.nir``) and checked here.
    """
    from spikeloop.runtime.backends import LAVA_MAPPINGS, make_backend
    from spikeloop.runtime.runner import run_closed_loop
    from spikeloop.train.policy import TorchPolicy

    if cfg.mapping not in LAVA_MAPPINGS:
        raise ConfigError(f"mapping must be one of {tuple(LAVA_MAPPINGS)}, got {cfg.mapping!r}")
    lava = LAVA_MAPPINGS[cfg.mapping]
    if prepared is None:
        nir_path = nir_path or run_dir / POLICY_NIR
        prepared = prepare_policy(nir_path, env_id, checkpoint=run_dir / POLICY_CKPT)
    plan, fixed = prepared.plan, prepared.fixed
    torch_model = None if prepared.policy is None else TorchPolicy(prepared.policy)
    common = dict(env_id=env_id, episodes=cfg.episodes, seed=cfg.seed, progress=progress, record=cfg.record)
    if torch_model is None and cfg.backend == "torch":
        raise ConfigError(f"{prepared.path}: --backend torch runs the policy's checkpoint, and none is beside "
                          f"the graph ({POLICY_CKPT})")
    runs, priced = [], None  # every backend is built (and so checked) before any episode runs
    if cfg.backend != "torch":
        name = lava if cfg.backend == "lava" else "emulator"
        opts = {"memory": prepared.memory} | ({"batch": cfg.envs} if cfg.envs > 1 else {})
        try:
            for prec in (("float", "fixed") if cfg.precision == "both" else (cfg.precision,)):
                q = fixed if prec == "fixed" else None
                twin = (make_backend("emulator", plan, "fixed", fixed, **opts)
                        if prec == "fixed" and cfg.backend == "lava" and cfg.check_emulator else None)
                priced = f"{cfg.backend}_{prec}"
                runs.append((priced, make_backend(name, plan, prec, q, **opts), twin))
        except ConfigError as e:
            raise ConfigError(f"{prepared.path}: {e}") from None
    results = {}
    todo = ([("torch_float", torch_model, None, None)] if torch_model is not None else []) + \
        [(key, backend, torch_model, twin) for key, backend, twin in runs]
    for key, backend, reference, twin in todo:
        try:
            results[key] = run_closed_loop(backend, reference=reference, twin=twin, **common)
        except BaseException as e:  # hand the caller what completed, marked incomplete
            partial = dict(results)
            if getattr(e, "partial_result", None) is not None:
                partial[key] = e.partial_result
            try:
                e.partial_results = partial
            except AttributeError:
                pass
            raise
    return {"plan": plan, "fixed": fixed, "results": results, "priced": priced}


PARTIAL_JSON = "partial.json"


def partial_files(results: dict, command: str, exc: BaseException) -> dict:
    """The writer of ``partial.json``: what a stopped evaluation completed, marked incomplete
    (each run's summary says ``complete: false`` where it was cut short)."""
    body = {"complete": False, "stopped_by": type(exc).__name__ + (f": {exc}" if str(exc) else ""),
            "command": command, "spikeloop_version": __version__,
            "evaluation": {k: r.summary() | {"complete": r.extra.get("complete", True)} for k, r in results.items()}}
    text = json_text(body)
    return {PARTIAL_JSON: lambda p: write_text(p, text)}


def priced_counts(evaluation: dict) -> dict | None:
    """Per-decision counts of the deployed run the energy is priced on (fixed point where it
    ran), or ``None`` where nothing counted operations (the torch backend)."""
    key = priced_key(evaluation)
    return None if key is None else evaluation["results"][key].counts.per_decision()


def priced_key(evaluation: dict) -> str | None:
    """The result the energy is priced on: ``evaluation['priced']``, else Lava fixed point."""
    if "priced" in evaluation:
        return evaluation["priced"]
    return "lava_fixed" if "lava_fixed" in evaluation["results"] else None


def energy_stage(plan, counts_per_decision: dict | None, profiles: list[str], baseline: str,
                 static_timestep: str = "realtime", static_share: str = "chip") -> dict | None:
    """Price the measured counts on each profile, beside the dense-ANN baseline.

    Each target also carries its mapping check (does it fit, cores, utilisation) and the
    profile's reference figures; ``neurobench`` holds the NeuroBench-convention counts.
    ``None`` where nothing was counted (the torch backend): nothing is priced on a guess.
    """
    if counts_per_decision is None:
        return None
    from spikeloop.hwprofiles import NetworkShape, price_dense_baseline, price_neuromorphic
    from spikeloop.hwprofiles.energy import StaticPower, neurobench_counts
    from spikeloop.hwprofiles.fit import check_fit, layers_from_plan

    StaticPower(static_timestep, static_share)  # one error for a bad choice, before any pricing
    shape = NetworkShape.of(plan)
    host = load_baseline(baseline)
    net = layers_from_plan(plan, "policy.nir")
    out = {"baselines": {p: price_dense_baseline(shape, host, p).to_dict() for p in ("fp32", "int8")},
           "targets": {}, "baseline_profile": host.name}
    for name in profiles:
        prof = load_target(name)
        fit = check_fit(net, prof)
        static = StaticPower(static_timestep, static_share, fit.cores_used)
        rep = price_neuromorphic(counts_per_decision, shape, prof, host, static).to_dict()
        rep["ratio_vs_dense_fp32"] = _ratio(rep["total_J"], out["baselines"]["fp32"]["total_J"])
        rep["ratio_vs_dense_int8"] = _ratio(rep["total_J"], out["baselines"]["int8"]["total_J"])
        rep["dynamic_ratio_vs_dense_fp32"] = _ratio(rep["dynamic_J"], out["baselines"]["fp32"]["total_J"])
        rep["dynamic_ratio_vs_dense_int8"] = _ratio(rep["dynamic_J"], out["baselines"]["int8"]["total_J"])
        rep["fit"] = fit.to_dict()
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
                 cfg: EvalConfig, command: str, checkpoint: bool | None = None) -> dict:
    """The report of a run; ``checkpoint`` says whether the run folder holds the checkpoint
    (default: whether it does now)."""
    plan, fixed, results = evaluation["plan"], evaluation["fixed"], evaluation["results"]
    if checkpoint is None:
        checkpoint = (Path(run_dir) / POLICY_CKPT).exists()
    priced = priced_key(evaluation)
    deployed = results[priced] if priced else results["torch_float"]
    per_dec = priced_counts(evaluation)
    names = {"lava": f"Lava ({cfg.mapping} mapping)", "emulator": "the emulator"}
    return {
        "spikeloop_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine()},
        "env_id": env_id,
        "policy": {"nir": POLICY_NIR, "checkpoint": POLICY_CKPT if checkpoint else None,
                   "layers": [plan.input_size] + [p.size for p in plan.populations],
                   "populations": {p.name: {"kind": p.kind, "size": p.size, "spiking": p.spiking}
                                   for p in plan.populations},
                   "dt_s": plan.dt_s, "T": plan.T, "latency_steps": plan.latency,
                   "steps_per_decision": plan.period, "encoding": plan.encoding.to_dict()},
        "training": training,
        "quantization": fixed.errors,
        "evaluation": {k: r.summary() for k, r in results.items()},
        "counts_per_decision": per_dec,
        "counts_source": None if priced is None else (
            f"{names[cfg.backend]} {deployed.precision} point, counters inside the "
            f"{'process models' if cfg.backend == 'lava' else 'emulator'}, {deployed.decisions} decisions"
            + (f", {cfg.envs} copies at once" if cfg.envs > 1 else "")),
        "energy": energy,
        "acceptance": _acceptance(env_id, deployed, priced or "torch_float"),
    }


def _acceptance(env_id: str, fixed_res, key: str = "lava_fixed") -> dict:
    """The deployed run's mean return (Lava fixed point by default) against the environment's
    own solved threshold."""
    from spikeloop.core.envs import reward_threshold

    target = reward_threshold(env_id)
    return {"run": key, "mean_return": fixed_res.mean_return, "episodes": len(fixed_res.returns),
            "target_return": target, "target_source": f"gymnasium reward_threshold of {env_id}",
            "met": None if target is None else bool(fixed_res.mean_return >= target)}


def report_files(report: dict) -> dict:
    """The writers of a report's two files (the Markdown is rendered first: a fault writes nothing)."""
    from spikeloop.report import render_markdown

    md = render_markdown(report)
    text = json_text(report)
    return {REPORT_JSON: lambda p: write_text(p, text), REPORT_MD: lambda p: write_text(p, md)}


DECISIONS = "decisions.npz"


def decision_files(results: dict) -> dict:
    """The writer of ``decisions.npz``: per evaluated backend (``lava_fixed`` ...), every
    decision's ``observations``, ``values``, ``actions`` and ``episode`` (recorded runs)."""
    import numpy as np

    arrays = {f"{key}.{name}": a for key, r in results.items() if r.trace is not None
              for name, a in r.trace.items()}

    def write(path):
        with open(path, "wb") as f:
            np.savez(f, **arrays)
    return {DECISIONS: write}


def write_report(run_dir: Path, report: dict) -> None:
    write_files(run_dir, report_files(report))


# ----------------------------------------------------------------------------- validation

def load_target(name):
    """A neuromorphic profile to price on; a conventional one is refused, naming it."""
    from spikeloop.hwprofiles import load_profile

    prof = load_profile(name)
    if prof.kind != "neuromorphic":
        raise ConfigError(f"{name} is a conventional profile: it prices the dense-ANN baseline "
                          f"(--baseline {name}), not a neuromorphic target")
    return prof


def load_baseline(name):
    """The conventional profile that prices the dense-ANN baseline; a neuromorphic one is refused."""
    from spikeloop.hwprofiles import load_profile

    prof = load_profile(name)
    if prof.kind != "conventional":
        raise ConfigError(f"--baseline {name}: {prof.name} is a neuromorphic profile; the baseline is a "
                          "conventional profile that prices the dense ANN (for example cpu-45nm). Price "
                          f"{prof.name} as a target with --profile {name}")
    return prof


def check_pricing(profiles, baseline) -> None:
    """Every profile and the baseline load and are of the right kind (before any work)."""
    for name in profiles:
        load_target(name)
    load_baseline(baseline)


@dataclass
class PreparedPolicy:
    """A policy graph read, compiled, quantized and checked for closed-loop runs on an environment."""

    path: Path
    graph: object
    plan: object
    fixed: object
    env_id: str
    policy: object | None = None
    """the torch policy of the checkpoint beside the graph (the reference), if there is one"""
    checkpoint: Path | None = None
    memory: str = "window"
    """'window' or 'stream' (the graph's metadata ``memory``): what decisions carry over"""


def compile_graph(graph, source: str, dt_s: float | None = None):
    """``(plan, fixed)`` of a graph; quantization errors name ``source``."""
    from spikeloop.runtime.compiler import plan_from_nir

    plan = plan_from_nir(graph, dt_s=dt_s, source=source)
    return plan, quantize_or_say(plan, source)


def quantize_or_say(plan, source: str):
    """The plan's fixed-point registers; a quantization error names ``source``."""
    from spikeloop.core.errors import QuantizationError
    from spikeloop.runtime.fixed_point import quantize_plan

    try:
        return quantize_plan(plan)
    except QuantizationError as e:
        raise QuantizationError(f"{source}: {e}") from None


def prepare_policy(nir_path: Path, env_id: str | None = None, checkpoint: Path | None = None,
                   graph=None, policy=None, plan=None) -> PreparedPolicy:
    """Read and check everything a closed-loop evaluation needs, before anything runs.

    The graph (read from ``nir_path`` unless given) compiles and quantizes; it carries an
    input encoding and a decoding that fits its output; the environment (``env_id``, else
    the graph's own) exists and matches its input size and action count; the checkpoint
    (``checkpoint`` if it exists, or ``policy``) is the network of the graph.
    """
    from spikeloop.core.envs import check_env_fits
    from spikeloop.core.metadata import GraphMeta
    from spikeloop.core.nir_io import read_graph
    from spikeloop.runtime.backends import make_backend

    nir_path = Path(nir_path)
    source = str(nir_path)
    graph = read_graph(nir_path) if graph is None else graph
    meta = GraphMeta.from_nir_metadata(graph.metadata, source)
    if env_id is None:
        env_id = meta.extra.get("env_id") if meta else None
        if not env_id:
            raise ConfigError(f"{source}: the graph names no environment (env_id); pass --env ENV_ID")
    if plan is None:
        plan, fixed = compile_graph(graph, source)
    else:  # the plan of ``graph``, compiled by the caller (the import path)
        fixed = quantize_or_say(plan, source)
    memory = (meta.extra.get("memory") if meta else None) or "window"
    try:  # the host codec and the decision schedule: encoding, decoding, what decisions carry over
        make_backend("emulator", plan, "fixed", fixed, memory=memory)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    out = plan.population(plan.output)
    n_values = out.size // len(plan.decoding.atoms) if plan.decoding.atoms else out.size
    # the encoder takes the observation (a spike code sends several channels per value)
    obs_size = len(plan.encoding.mean) if plan.encoding is not None else plan.input_size
    check_env_fits(env_id, obs_size, n_values, source)
    if policy is None and checkpoint is not None and Path(checkpoint).exists():
        from spikeloop.train.checkpoint import load_policy

        policy = load_policy(checkpoint)[0]
        _check_same_network(policy, plan, Path(checkpoint), source)
    return PreparedPolicy(nir_path, graph, plan, fixed, env_id, policy,
                          Path(checkpoint) if policy is not None and checkpoint is not None else None, memory)


def _check_same_network(policy, plan, ckpt: Path, source: str) -> None:
    """The checkpoint beside a graph must be its network (it is the evaluation's torch reference)."""
    from spikeloop.export.to_nir import export_policy
    from spikeloop.runtime.compiler import plan_from_nir

    try:
        mine = plan_from_nir(export_policy(policy, plan.dt_s), source=str(ckpt))
    except SpikeloopError as e:
        raise ConfigError(f"{ckpt}: the checkpoint beside {source} cannot be compiled: {e}") from None

    def shape(p):
        return ([(q.name, q.size) for q in p.populations], sorted((c.name, c.shape, c.conv) for c in p.connections),
                p.input_size, p.T)

    if shape(mine) != shape(plan):
        a, b = shape(mine), shape(plan)
        raise ConfigError(f"{ckpt}: is not the network of {source} (checkpoint populations {a[0]}, T {a[3]}; "
                          f"graph populations {b[0]}, T {b[3]}); the checkpoint beside a graph is its torch "
                          "reference. Remove it or export the graph from it")


def demo(run_dir: Path, agent: str, cfg, eval_cfg: EvalConfig, dt_s: float = 1e-3, progress: bool = True,
         command: str = "spikeloop demo") -> dict:
    """The whole pipeline (train, export, evaluate, price, report); returns the report dict.

    Every input is checked first (run folder, profiles, baseline, environment); the
    artifacts (checkpoint, config, training record, graph, report) are written at the
    end, at once: a failure anywhere leaves the run folder as it was.
    """
    from spikeloop.core.envs import env_spaces
    from spikeloop.core.metadata import check_dt
    from spikeloop.core.nir_io import write_graph
    from spikeloop.export.to_nir import export_policy
    from spikeloop.train.agents import get_agent

    run_dir = check_output_dir(run_dir)
    check_pricing(eval_cfg.profiles, eval_cfg.baseline)
    check_dt(dt_s)
    spec = get_agent(agent)
    if not spec.deployable:
        raise ConfigError(f"agent {agent} {spec.undeployable}")
    if cfg.env_id:  # an offline agent may take its environment from its demonstrations
        env_spaces(cfg.env_id)
    result = spec.train(cfg, progress=progress)
    env_id = cfg.env_id or result.policy.provenance.env_id
    graph = export_policy(result.policy, dt_s)
    prepared = prepare_policy(run_dir / POLICY_NIR, env_id, graph=graph, policy=result.policy)
    evaluation = evaluate_stage(run_dir, env_id, eval_cfg, progress=progress, prepared=prepared)
    energy = energy_stage(evaluation["plan"], priced_counts(evaluation), eval_cfg.profiles, eval_cfg.baseline,
                          eval_cfg.static_timestep, eval_cfg.static_share)
    training = {"agent": agent, "best_eval_return_torch": result.best_eval, "env_steps": result.steps,
                "seconds": round(result.seconds, 1), "seed": cfg.seed}
    report = build_report(run_dir, env_id, evaluation, energy, training, eval_cfg, command,
                          checkpoint=True)
    files = training_files(agent, cfg, result) | {POLICY_NIR: lambda p: write_graph(p, graph)}
    write_files(run_dir, files | report_files(report))
    return report
