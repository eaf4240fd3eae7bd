"""Sweeps on Ray Tune: many trainings and closed-loop deployments, one run folder each, and the
return-versus-energy frontier across targets.

A sweep file (TOML) names a registered agent, the seeds, the search and what it varies::

    [sweep]
    agent = "bc"                 # a registered, deployable agent
    preset = "bc-return-cartpole"   # optional: start from a preset's options
    seeds = [0, 1, 2]            # every point of the search runs with each seed
    search = "grid"              # grid (every combination) or random (`samples` points)
    samples = 8                  # random: how many points (drawn with numpy from search_seed)
    search_seed = 0
    workers = 2                  # trials at once (Ray Tune's max_concurrent_trials, one CPU each)
    threshold = 475.0            # the return a configuration must reach (the frontier names the cheapest)

    [config]                     # agent options every trial shares
    demos = "demos.npz"          # a relative path is relative to the sweep file

    [grid]                       # grid: each option a list of values; deploy.* are evaluation choices
    T = [4, 8]
    hidden = [[16], [64]]
    sparsity_penalty = [0.0, 1.0]
    "deploy.static_share" = ["chip", "cores"]

    [random]                     # random: {choice = [...]}, {uniform = [lo, hi]}, {loguniform = [lo, hi]}
    lr = {loguniform = [1e-4, 1e-2]}

    [deploy]                     # the evaluation every trial runs (spikeloop.pipeline.EvalConfig)
    episodes = 5
    backend = "emulator"         # emulator (bit-exact with Lava fixed point) or lava
    precision = "fixed"

Every trial is ``spikeloop demo`` in its own folder ``trials/<key>``: config, checkpoint,
``policy.nir``, report and counts, written at once when it completes. Ray Tune schedules
them (``ray.init()`` local by default, ``--address`` for a cluster); nothing here schedules.
A trial whose folder is complete is not run again, so a stopped sweep resumes where it
stopped. The sweep folder also holds ``results.csv`` and ``results.parquet``, one row per
trial. Each trial runs in its own worker process, which owns the Lava runtime it starts and
stops it on every path (``spikeloop.runtime.lava_runtime``): trials never touch each other's.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import time
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from spikeloop.core.errors import ConfigError

SWEEP_TOML = "sweep.toml"
RESULTS_CSV, RESULTS_PARQUET = "results.csv", "results.parquet"
TRIALS = "trials"
SEARCHES = ("grid", "random")
DEPLOY = "deploy."
DISTRIBUTIONS = ("choice", "uniform", "loguniform")


@dataclass
class Trial:
    """One point of the search with one seed."""

    key: str
    point: dict
    """the varied options: agent fields by name, evaluation choices as ``deploy.<field>``"""
    seed: int

    def agent_options(self) -> dict:
        return {k: v for k, v in self.point.items() if not k.startswith(DEPLOY)}

    def deploy_options(self) -> dict:
        return {k[len(DEPLOY):]: v for k, v in self.point.items() if k.startswith(DEPLOY)}


@dataclass
class Sweep:
    """A validated sweep file: the agent, its shared options, the trials and the evaluation."""

    path: Path
    agent: str
    base: dict
    deploy: dict
    seeds: list[int]
    search: str
    workers: int
    threshold: float
    varied: list[str]
    trials: list[Trial] = field(default_factory=list)

    def agent_config(self, trial: Trial):
        from spikeloop.train.agents import config_from_dict, get_agent

        return config_from_dict(get_agent(self.agent).config,
                                self.base | trial.agent_options() | {"seed": trial.seed})

    def eval_config(self, trial: Trial):
        from spikeloop.pipeline import EvalConfig

        options = self.deploy | trial.deploy_options()
        known = {f.name for f in fields(EvalConfig)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(f"{self.path}: unknown deploy options {unknown}; known: {sorted(known)}")
        return EvalConfig(**options)


def _table(data: dict, name: str, path: Path) -> dict:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: [{name}] must be a table, got {value!r}")
    return dict(value)


def _key(point: dict, seed: int) -> str:
    """A trial's folder name: stable across runs of the same sweep file (what resuming finds)."""
    digest = hashlib.sha1(json.dumps([point, seed], sort_keys=True).encode()).hexdigest()[:10]
    return f"s{seed}-{digest}"


def _draw(name: str, spec, rng: np.random.Generator, path: Path):
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS:
        raise ConfigError(f"{path}: [random] {name} must be one of {{choice = [...]}}, {{uniform = [lo, hi]}}, "
                          f"{{loguniform = [lo, hi]}}, got {spec!r}")
    (kind, args), = spec.items()
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise ConfigError(f"{path}: [random] {name}: choice needs a non-empty list, got {args!r}")
        return args[int(rng.integers(len(args)))]
    if (not isinstance(args, list) or len(args) != 2 or not all(isinstance(a, (int, float)) for a in args)
            or not args[0] < args[1] or (kind == "loguniform" and args[0] <= 0)):
        raise ConfigError(f"{path}: [random] {name}: {kind} needs [lo, hi] with lo < hi"
                          f"{' and lo > 0' if kind == 'loguniform' else ''}, got {args!r}")
    lo, hi = args
    return float(rng.uniform(lo, hi)) if kind == "uniform" else float(math.exp(rng.uniform(math.log(lo),
                                                                                          math.log(hi))))


def load_sweep(path: str | Path) -> Sweep:
    """Read and check a sweep file; every trial's config is built and validated before anything runs."""
    from spikeloop.pipeline import check_pricing, read_config
    from spikeloop.train.agents import get_agent

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such sweep file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not a valid TOML file ({e})") from None
    unknown = sorted(set(data) - {"sweep", "config", "grid", "random", "deploy"})
    if unknown:
        raise ConfigError(f"{path}: unknown tables {unknown}; a sweep has [sweep], [config], [grid] or [random], "
                          "and [deploy]")
    s = _table(data, "sweep", path)
    known = {"agent", "preset", "seeds", "search", "samples", "search_seed", "workers", "threshold"}
    if sorted(set(s) - known):
        raise ConfigError(f"{path}: unknown [sweep] keys {sorted(set(s) - known)}; known: {sorted(known)}")
    agent = s.get("agent")
    if not isinstance(agent, str):
        raise ConfigError(f"{path}: [sweep] agent must name a registered agent, got {agent!r}")
    spec = get_agent(agent)
    if not spec.deployable:
        raise ConfigError(f"{path}: agent {agent!r} does not deploy, so a sweep cannot measure its cost on a "
                          f"chip: it {spec.undeployable}")
    base = {}
    if s.get("preset") is not None:
        from spikeloop.options import preset_path

        preset_agent, base = read_config(preset_path(s["preset"]))
        if preset_agent != agent:
            raise ConfigError(f"{path}: preset {s['preset']!r} configures agent {preset_agent!r}, not {agent!r}")
    base |= _table(data, "config", path)
    if isinstance(base.get("demos"), str) and base["demos"] and not Path(base["demos"]).is_absolute():
        # relative to the sweep file: Ray runs each trial in a folder of its own
        base["demos"] = str((path.parent / base["demos"]).resolve())
    if "seed" in base:
        raise ConfigError(f"{path}: [config] seed: the seeds are [sweep] seeds")
    seeds = s.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(x, int) and not isinstance(x, bool)
                                                          and x >= 0 for x in seeds):
        raise ConfigError(f"{path}: [sweep] seeds must be a non-empty list of non-negative integers, got {seeds!r}")
    search = s.get("search", "grid")
    if search not in SEARCHES:
        raise ConfigError(f"{path}: [sweep] search must be one of {', '.join(SEARCHES)}, got {search!r}")
    workers = s.get("workers", 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"{path}: [sweep] workers must be a positive integer, got {workers!r}")
    threshold = s.get("threshold", 475.0)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        raise ConfigError(f"{path}: [sweep] threshold must be a number, got {threshold!r}")
    grid, rand = _table(data, "grid", path), _table(data, "random", path)
    if search == "grid":
        if rand:
            raise ConfigError(f"{path}: [random] needs search = \"random\"")
        for name, values in grid.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{path}: [grid] {name} must be a non-empty list of values, got {values!r}")
        names = list(grid)
        points = [dict(zip(names, combo)) for combo in itertools.product(*(grid[n] for n in names))]
    else:
        if grid:
            raise ConfigError(f"{path}: [grid] needs search = \"grid\"")
        samples = s.get("samples", 1)
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ConfigError(f"{path}: [sweep] samples must be a positive integer, got {samples!r}")
        rng = np.random.default_rng(s.get("search_seed", 0))
        names = list(rand)
        points = [{n: _draw(n, rand[n], rng, path) for n in names} for _ in range(samples)]
    sweep = Sweep(path, agent, base, _table(data, "deploy", path), list(seeds), search, workers, float(threshold),
                  names)
    sweep.trials = [Trial(_key(p, seed), p, seed) for p in points for seed in seeds]
    for t in sweep.trials:  # every trial checked before the first one starts
        try:
            sweep.agent_config(t)
            ev = sweep.eval_config(t)
        except ConfigError as e:
            raise ConfigError(f"{path}: trial {t.point} seed {t.seed}: {e}") from None
        check_pricing(ev.profiles, ev.baseline)
    return sweep


# ------------------------------------------------------------------------------------- trials

def trial_dir(sweep_dir: Path, trial: Trial) -> Path:
    return Path(sweep_dir) / TRIALS / trial.key


def done(sweep_dir: Path, trial: Trial) -> bool:
    """Whether the trial's folder is complete (``demo`` writes it whole or not at all)."""
    return (trial_dir(sweep_dir, trial) / "report.json").is_file()


def run_trial(sweep: Sweep, trial: Trial, sweep_dir: Path) -> dict:
    """Train, export, deploy and price one trial into its folder (``spikeloop demo``); its results row."""
    from spikeloop.pipeline import demo

    out = trial_dir(sweep_dir, trial)
    if not done(sweep_dir, trial):
        t0 = time.time()
        demo(out, sweep.agent, sweep.agent_config(trial), sweep.eval_config(trial), progress=False,
             command=f"spikeloop sweep {sweep.path.name} (trial {trial.key})")
        t1 = time.time()
        (out / "wall.json").write_text(json.dumps({"seconds": t1 - t0, "start": t0, "end": t1}))
    return row(sweep, trial, json.loads((out / "report.json").read_text()), out)


def _flat(value):
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def row(sweep: Sweep, trial: Trial, report: dict, out: Path) -> dict:
    """One trial as a results row: returns, agreement, activity, and per target energy and fit."""
    ev = report["evaluation"]
    deployed = next(k for k in ev if k != "torch_float")
    counts = report.get("counts_per_decision") or {}
    wall = json.loads((out / "wall.json").read_text())["seconds"] if (out / "wall.json").is_file() else None
    r = {"trial": trial.key, "seed": trial.seed, **{k: _flat(v) for k, v in trial.point.items()},
         "agent": sweep.agent, "return_torch": ev.get("torch_float", {}).get("mean_return"),
         "deployed": deployed, "return_deployed": ev[deployed]["mean_return"],
         "agreement": ev[deployed].get("agreement_with_torch"),
         "spikes_per_decision": float(sum((counts.get("spikes") or {}).values())),
         "synops_per_decision": float(sum((counts.get("synops") or {}).values())),
         "env_steps": report["training"]["env_steps"], "train_s": report["training"]["seconds"], "wall_s": wall}
    for name, t in report["energy"]["targets"].items():
        # a target whose chip terms have no cited energy is compared on spikes, not on its host terms alone
        chip_priced = t.get("chip_dynamic_J") is not None and t.get("total_J") is not None
        r[f"energy_J[{name}]"] = t["total_J"] if chip_priced else float("nan")
        r[f"unpriced[{name}]"] = "; ".join(t.get("unpriced") or [])
        r[f"fits[{name}]"] = bool(t.get("fit", {}).get("fits"))
    return r


def write_results(sweep_dir: Path, rows: list[dict]) -> None:
    """``results.csv`` and ``results.parquet``: one row per completed trial (rewritten whole)."""
    import pandas as pd

    from spikeloop.core.artifacts import write_files

    frame = pd.DataFrame(rows)
    write_files(sweep_dir, {RESULTS_CSV: lambda p: frame.to_csv(p, index=False),
                            RESULTS_PARQUET: lambda p: frame.to_parquet(p, index=False)})


def _ray_trial(params: dict) -> None:
    """The function Ray Tune runs in a worker: one trial, its row reported as the trial's result."""
    from ray import tune

    sweep = load_sweep(params["sweep_file"])
    trial = next(t for t in sweep.trials if t.key == params["key"])
    r = run_trial(sweep, trial, Path(params["sweep_dir"]))
    tune.report({k: v for k, v in r.items() if isinstance(v, (int, float, bool)) and not isinstance(v, str)})


def run_sweep(sweep_file: str | Path, sweep_dir: str | Path, address: str | None = None,
              progress: bool = True) -> dict:
    """Run (or resume) the sweep on Ray Tune; write the results table. Returns a summary."""
    from spikeloop.core.artifacts import check_output_dir, write_files

    sweep = load_sweep(sweep_file)
    sweep_dir = check_output_dir(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    copy = sweep_dir / SWEEP_TOML
    text = Path(sweep_file).read_text(encoding="utf-8")
    if copy.is_file() and copy.read_text(encoding="utf-8") != text:
        raise ConfigError(f"{sweep_dir}: holds the results of another sweep file ({copy}); give a new folder")
    if not copy.is_file():
        write_files(sweep_dir, {SWEEP_TOML: lambda p: p.write_text(text, encoding="utf-8")})
    todo = [t for t in sweep.trials if not done(sweep_dir, t)]
    t0 = time.time()
    if todo:
        try:
            import ray
            from ray import tune
        except ImportError as e:
            raise ConfigError(f"spikeloop sweep runs on Ray Tune, which does not import here ({e}); install the "
                              "extra: pip install 'spikeloop[sweep]'") from None

        import signal

        # Tune installs its own SIGINT handler (a first Ctrl-C stops the trials gracefully) and leaves it
        # there; the caller's handlers come back when the sweep ends
        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        started = not ray.is_initialized()
        if started:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False,
                     **({} if address else {"num_cpus": sweep.workers}))
        try:
            tuner = tune.Tuner(
                tune.with_resources(_ray_trial, {"cpu": 1}),
                param_space={"sweep_file": str(Path(sweep_file).resolve()), "sweep_dir": str(sweep_dir.resolve()),
                             "key": tune.grid_search([t.key for t in todo])},
                # a worker keeps its process (imports, torch, Lava's modules) from one trial to the next
                tune_config=tune.TuneConfig(max_concurrent_trials=sweep.workers, reuse_actors=True),
                run_config=tune.RunConfig(storage_path=str((sweep_dir / "ray").resolve()),
                                          name=f"run-{int(time.time())}", verbose=1 if progress else 0))
            grid = tuner.fit()
            errors = [str(r.error) for r in grid if r.error is not None]
            if errors:
                raise ConfigError(f"{len(errors)} of {len(todo)} trials failed; the first: {errors[0]}")
        finally:
            if started:
                ray.shutdown()
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
    wall = time.time() - t0
    rows = [row(sweep, t, json.loads((trial_dir(sweep_dir, t) / "report.json").read_text()), trial_dir(sweep_dir, t))
            for t in sweep.trials]
    write_results(sweep_dir, rows)
    trial_s = sum(r["wall_s"] or 0.0 for r in rows if any(t.key == r["trial"] for t in todo))
    return {"trials": len(sweep.trials), "ran": len(todo), "resumed_from": len(sweep.trials) - len(todo),
            "wall_s": wall, "trial_s": trial_s, "workers": sweep.workers, "started": t0,
            "intervals": [[json.loads((trial_dir(sweep_dir, t) / "wall.json").read_text())[k] for k in ("start", "end")]
                          for t in todo]}


# ------------------------------------------------------------------------------------- frontier

def pareto(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other beats: higher return (first) at no higher cost (second)."""
    front = []
    for i, (ri, ci) in enumerate(points):
        if not any((rj >= ri and cj <= ci) and (rj > ri or cj < ci) for j, (rj, cj) in enumerate(points) if j != i):
            front.append(i)
    return sorted(front, key=lambda i: points[i][1])


def frontier(sweep_dir: str | Path, threshold: float | None = None) -> dict:
    """Per target, the Pareto front of deployed return against energy per decision (spikes per decision
    where the target is unpriced) over the configurations (mean and spread across seeds); writes
    ``frontier.png`` and ``frontier.md`` into the sweep folder."""
    import pandas as pd

    sweep_dir = Path(sweep_dir)
    table = sweep_dir / RESULTS_CSV
    if not table.is_file():
        raise ConfigError(f"{sweep_dir}: no {RESULTS_CSV} (run `spikeloop sweep SWEEP.toml --out {sweep_dir}`)")
    sweep = load_sweep(sweep_dir / SWEEP_TOML)
    threshold = sweep.threshold if threshold is None else threshold
    frame = pd.read_csv(table)
    varied = [v for v in sweep.varied if v in frame.columns]
    frame["config"] = frame[varied].astype(str).agg(", ".join, axis=1) if varied else "base"
    targets = sorted(c[len("energy_J["):-1] for c in frame.columns if c.startswith("energy_J["))
    out = {"threshold": threshold, "targets": {}}
    for target in targets:
        priced = frame[f"energy_J[{target}]"].notna().all()
        cost = f"energy_J[{target}]" if priced else "spikes_per_decision"
        g = frame.groupby("config")
        stats = pd.DataFrame({"return": g["return_deployed"].mean(), "return_std": g["return_deployed"].std(ddof=0),
                              "cost": g[cost].mean(), "cost_std": g[cost].std(ddof=0),
                              "synops": g["synops_per_decision"].mean(), "seeds": g["seed"].count(),
                              "fits": g[f"fits[{target}]"].all()}).reset_index()
        front = set(pareto(list(zip(stats["return"], stats["cost"]))))
        stats["front"] = [i in front for i in range(len(stats))]
        ok = stats[stats["return"] >= threshold]
        cheapest = None if ok.empty else ok.sort_values("cost").iloc[0].to_dict()
        out["targets"][target] = {"cost": "energy per decision (J)" if priced else "spikes per decision (unpriced)",
                                  "configs": stats.to_dict("records"), "cheapest": cheapest}
    _plot(out, sweep_dir / "frontier.png")
    (sweep_dir / "frontier.md").write_text(frontier_markdown(out, varied), encoding="utf-8")
    return out


def frontier_markdown(result: dict, varied: list[str]) -> str:
    """The frontier as markdown: per target, every configuration (front marked) and the cheapest that meets
    the threshold."""
    lines = [f"Configurations ({', '.join(varied) or 'none varied'}): mean over seeds ± spread; "
             f"threshold {result['threshold']:g}.", ""]
    for target, t in result["targets"].items():
        lines += [f"### {target}: return against {t['cost']}", "",
                  "| configuration | seeds | deployed return | cost | synops / decision | fits | on the front |",
                  "|:---|---:|---:|---:|---:|:---:|:---:|"]
        for c in sorted(t["configs"], key=lambda c: c["cost"]):
            lines.append(f"| {c['config']} | {c['seeds']} | {c['return']:.1f} ± {c['return_std']:.1f} | "
                         f"{c['cost']:.4g} ± {c['cost_std']:.2g} | {c['synops']:,.0f} | "
                         f"{'yes' if c['fits'] else 'no'} | {'yes' if c['front'] else ''} |")
        ch = t["cheapest"]
        lines += ["", f"Cheapest configuration at ≥ {result['threshold']:g}: " +
                  (f"**{ch['config']}** ({ch['return']:.1f}, {ch['cost']:.4g})" if ch else "none reaches it"), ""]
    return "\n".join(lines)


def _plot(result: dict, path: Path) -> None:
    from matplotlib.figure import Figure

    targets = list(result["targets"].items())
    cols = min(max(len(targets), 1), 3)
    rows = -(-max(len(targets), 1) // cols)
    fig = Figure(figsize=(4.4 * cols, 3.4 * rows))
    axes = fig.subplots(rows, cols, squeeze=False).reshape(-1)
    for ax in axes[len(targets):]:
        ax.set_visible(False)
    for ax, (target, t) in zip(axes, targets):
        cs = t["configs"]
        ax.errorbar([c["cost"] for c in cs], [c["return"] for c in cs], xerr=[c["cost_std"] for c in cs],
                    yerr=[c["return_std"] for c in cs], fmt="o", ms=3, lw=0.8, alpha=0.7)
        front = sorted((c for c in cs if c["front"]), key=lambda c: c["cost"])
        ax.plot([c["cost"] for c in front], [c["return"] for c in front], "-", lw=1.2, color="C3", label="front")
        ax.axhline(result["threshold"], ls=":", color="grey", lw=0.8)
        ax.set_xscale("log")
        ax.set_title(target, fontsize=9)
        ax.set_xlabel(t["cost"], fontsize=8)
        ax.set_ylabel("deployed return", fontsize=8)
    fig.tight_layout()
    from spikeloop.plots import _save

    _save(fig, path)
