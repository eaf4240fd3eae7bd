"""The `spikeloop` command line: demo, train, sweep, frontier, collect, convert, export, annotate, run, energy,
fit, inspect, simulate."""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from spikeloop import options as O
from spikeloop.core.errors import ConfigError, SpikeloopError


_ARGV: list[str] | None = None
"""the arguments of the command running now (``main``'s, not always ``sys.argv``)"""


def _command_line() -> str:
    """The command as a user would type it, for reports."""
    argv = sys.argv[1:] if _ARGV is None else _ARGV
    return " ".join(["spikeloop"] + [shlex.quote(a) for a in argv])


def cmd_demo(args) -> int:
    from spikeloop.pipeline import demo

    agent, cfg = O.agent_config(args)
    report = demo(Path(args.out), agent, cfg, O.eval_config(args), dt_s=args.dt_s, progress=not args.quiet,
                  command=_command_line())
    _print_summary(Path(args.out), report)
    return 3 if report["acceptance"]["met"] is False else 0


def cmd_sweep(args) -> int:
    from spikeloop.sweep import run_sweep

    out = Path(args.out) if args.out else Path(args.sweep).with_suffix("")
    s = run_sweep(args.sweep, out, address=args.address, progress=not args.quiet)
    overhead = 1 - s["trial_s"] / (s["wall_s"] * s["workers"]) if s["ran"] and s["wall_s"] else None
    print(f"{s['trials']} trials ({s['ran']} run now, {s['resumed_from']} already complete) in {s['wall_s']:.0f} s "
          f"on {s['workers']} workers; wrote {out / 'results.csv'} and {out / 'results.parquet'}"
          + ("" if overhead is None else f" (workers idle or scheduling {100 * overhead:.1f} % of the time)"))
    return 0


def cmd_frontier(args) -> int:
    from spikeloop.sweep import frontier

    res = frontier(args.sweep_dir, args.threshold)
    for target, t in res["targets"].items():
        ch = t["cheapest"]
        print(f"{target:12s} cheapest at >= {res['threshold']:g}: "
              + (f"{ch['config']} (return {ch['return']:.1f}, {t['cost']} {ch['cost']:.4g})" if ch else "none"))
    print(f"wrote {Path(args.sweep_dir) / 'frontier.png'} and {Path(args.sweep_dir) / 'frontier.md'}")
    return 0


def _print_summary(run_dir: Path, report: dict) -> None:
    from spikeloop.report import targets_text

    ev = report["evaluation"]
    print(f"\nreport: {run_dir / 'report.md'}")
    for key, s in ev.items():  # torch first, then float, then fixed: the order they ran
        agree = s.get("agreement_with_torch")
        rate = s["decisions"] / s["seconds"] if s.get("seconds") else 0.0
        print(f"  {key:14s} return {s['mean_return']:7.1f} ± {s['std_return']:.1f} (min {s['min_return']:.0f}, "
              f"max {s['max_return']:.0f}) over {s['episodes']} episodes, {s['mean_length']:.0f} steps each, "
              f"{rate:,.0f} decisions/s" + ("" if agree is None else f", actions equal to torch {100 * agree:.2f} %"))
    if report["energy"] is None:
        print("energy: not priced (the torch backend counts no operations; use --backend lava or emulator)")
    else:
        print(targets_text(report["energy"]))


def cmd_train(args) -> int:
    from spikeloop.core.artifacts import check_output_dir
    from spikeloop.pipeline import train_stage

    run_dir = check_output_dir(args.out)
    agent, cfg = O.agent_config(args)
    res = train_stage(run_dir, agent, cfg, progress=not args.quiet)
    print(f"best greedy eval return {res.best_eval:.1f} after {res.steps} steps; "
          f"wrote {run_dir / 'policy.safetensors'}")
    return 0


def cmd_export(args) -> int:
    from spikeloop.core.artifacts import check_output_file
    from spikeloop.pipeline import POLICY_CKPT, export_stage

    src = O.in_run_folder(args.checkpoint, POLICY_CKPT)
    if src.suffix != ".nir":
        given = [flag for flag, v in (("--peer", args.peer != "auto"), ("--peer-reset", args.peer_reset),
                                      ("--T", args.T)) if v]
        if given:
            raise ConfigError(f"{' and '.join(given)} describe a .nir graph; {src} is a checkpoint, "
                              "which records them itself")
    dt_s = args.dt_s if args.dt_s is not None else O.DT_DEFAULT_S
    if args.format == "netx":
        out = Path(args.out) if args.out else src.parent / "policy.net"
        check_output_file(out)
        if src.suffix == ".nir":
            from spikeloop.runtime.netx import export_netx

            res = export_netx(src, out, graph=_import_policy(args, src).graph)
        else:
            res = export_stage(src.parent, dt_s, checkpoint=src, out=out, fmt="netx")
        for note in res.notes:
            print(f"spikeloop export: warning: {note}", file=sys.stderr)
        print(f"wrote {res.path}")
        return 0
    out = Path(args.out) if args.out else src.parent / "policy.nir"
    if src.suffix == ".nir":
        raise ConfigError(f"{src}: is already a NIR graph; --format nir exports a checkpoint "
                          "(use `spikeloop annotate` to rewrite a graph's metadata)")
    path = export_stage(src.parent, dt_s, checkpoint=src, out=out)
    print(f"wrote {path}")
    return 0


def cmd_collect(args) -> int:
    """Check the expert, the environment and the output path; record; write the file at once."""
    from spikeloop.core.artifacts import check_output_file
    from spikeloop.core.envs import check_env_fits, registered_id
    from spikeloop.pipeline import POLICY_CKPT
    from spikeloop.train.offline import collect, expert_actor, save_demos

    src = Path(args.source)
    if src.is_dir():
        src = O.in_run_folder(src, POLICY_CKPT)
    out = Path(args.out)
    if out.suffix != ".npz":
        raise ConfigError(f"{out}: a demonstrations file is a .npz archive")
    check_output_file(out)
    expert = expert_actor(src)
    env_id = args.env_id or expert.env_id
    if not env_id:
        raise ConfigError(f"{src}: names no environment; pass --env")
    registered_id(env_id)
    check_env_fits(env_id, expert.n_obs, expert.n_actions, str(src))
    demos = collect(expert, env_id, args.episodes, args.seed, str(src), progress=not args.quiet,
                    epsilon=args.epsilon)
    save_demos(out, demos)
    r = demos.returns
    print(f"wrote {out}: {len(demos.actions)} steps of {len(r)} episodes, expert return {sum(r) / len(r):.1f} "
          f"(min {min(r):.0f}, max {max(r):.0f})")
    return 0


def cmd_convert(args) -> int:
    """Validate the source, the environment and every option; convert; write the run folder at once."""
    from spikeloop.core.artifacts import check_output_dir, write_files, write_json
    from spikeloop.core.nir_io import write_graph
    from spikeloop.export.to_nir import export_policy
    from spikeloop.pipeline import POLICY_CKPT, POLICY_NIR
    from spikeloop.train.checkpoint import save_policy
    from spikeloop.conversion import convert_markdown, convert_run
    from spikeloop.train.convert import ConvertOptions, load_dense

    run_dir = check_output_dir(args.out)
    dense, env_id = load_dense(Path(args.source))
    env_id = args.env_id or env_id
    if env_id is None:
        raise ConfigError(f"{args.source}: a Stable-Baselines3 archive does not name its environment; pass --env")
    opts = ConvertOptions(env_id=env_id, Ts=tuple(args.T), deploy_T=args.deploy_T, episodes=args.episodes,
                          eval_seed=args.eval_seed, calib_steps=args.calib_steps, seed=args.seed,
                          percentile=args.percentile, clip=args.clip, bits=args.bits).validate(dense, args.source)
    policy, report = convert_run(dense, opts, progress=not args.quiet)
    graph = export_policy(policy, O.DT_DEFAULT_S)
    md = convert_markdown(report, _command_line())
    write_files(run_dir, {POLICY_CKPT: lambda p: save_policy(p, policy, {"conversion": report}),
                          POLICY_NIR: lambda p: write_graph(p, graph),
                          "convert.json": lambda p: write_json(p, report),
                          "convert.md": lambda p: p.write_text(md, encoding="utf-8")})
    print(md)
    return 0


def cmd_run(args) -> int:
    """Check every input (graph and the choices on it, checkpoint, environment, profiles, run
    folder), then evaluate, then write the run folder's files at once."""
    import shutil

    from spikeloop.core.artifacts import check_output_dir, write_files
    from spikeloop.core.nir_io import write_graph
    from spikeloop.pipeline import (POLICY_CKPT, POLICY_NIR, build_report, check_pricing, decision_files,
                                    energy_stage, evaluate_stage, prepare_policy, priced_counts, report_files)

    if args.target in ("xylo", "speck"):
        return cmd_run_chip(args)
    if args.backend == "xylosim":
        raise ConfigError("--backend xylosim runs a Xylo core: add --target xylo")
    nir_path = O.in_run_folder(args.policy, POLICY_NIR)
    run_dir = check_output_dir(Path(args.out) if args.out else nir_path.parent)
    cfg = O.eval_config(args)
    cfg.record = args.record
    check_pricing(cfg.profiles, cfg.baseline)
    choices = O.policy_choices(args)
    imported = _import_policy(args, nir_path)
    annotated = choices.changes or imported.peer != "spikeloop"
    same = (run_dir / POLICY_NIR).exists() and (run_dir / POLICY_NIR).resolve() == nir_path.resolve()
    if same and annotated:
        raise ConfigError(f"{nir_path}: the run would replace its own input with the annotated graph; "
                          "pass --out DIR (or annotate it first with `spikeloop annotate`)")
    ckpt = nir_path.parent / POLICY_CKPT if imported.peer == "spikeloop" else None
    prepared = prepare_policy(nir_path, None, checkpoint=ckpt, graph=imported.graph, plan=imported.plan)
    env_id = prepared.env_id
    try:
        evaluation = evaluate_stage(nir_path.parent, env_id, cfg, nir_path=nir_path, progress=not args.quiet,
                                    prepared=prepared)
    except BaseException as e:  # what completed is written, marked incomplete, before the stop goes on
        if getattr(e, "partial_results", None):
            from spikeloop.pipeline import PARTIAL_JSON, partial_files

            try:
                write_files(run_dir, partial_files(e.partial_results, _command_line(), e))
                print(f"spikeloop run: the episodes completed so far are in {run_dir / PARTIAL_JSON} "
                      "(marked incomplete)", file=sys.stderr)
            except Exception:  # the original fault is what the user must see
                pass
        raise
    energy = energy_stage(evaluation["plan"], priced_counts(evaluation), cfg.profiles, cfg.baseline,
                          cfg.static_timestep, cfg.static_share)
    report = build_report(run_dir, env_id, evaluation, energy, None, cfg, _command_line(),
                          checkpoint=(run_dir / POLICY_CKPT).exists() and ckpt is not None)
    files = report_files(report) | (decision_files(evaluation["results"]) if cfg.record else {})
    if annotated:  # the run folder holds what it reports on
        files = {POLICY_NIR: lambda p: write_graph(p, imported.graph)} | files
    elif not same:
        files = {POLICY_NIR: lambda p: shutil.copyfile(nir_path, p)} | files
    write_files(run_dir, files)
    _print_summary(run_dir, report)
    return 0


def cmd_run_chip(args) -> int:
    """`spikeloop run --target xylo|speck`: every input checked, the episodes on the chip's backend, then
    the run folder's report written at once."""
    import shutil

    from spikeloop.core.artifacts import check_output_dir, json_text, write_files, write_text
    from spikeloop.pipeline import POLICY_CKPT, POLICY_NIR, REPORT_JSON, REPORT_MD

    if args.target == "xylo":
        from spikeloop.xylo_run import report_markdown, xylo_stage as stage
        default_backend = "xylosim"
    else:
        from spikeloop.speck_run import speck_markdown as report_markdown, speck_stage as stage
        default_backend = "emulator"
    given = [f for f, v in (("--peer", args.peer != "auto"), ("--encoding", args.encoding),
                            ("--obs-mean", args.obs_mean), ("--T", args.T), ("--dt", args.dt_s),
                            ("--precision", args.precision != "both"), ("--envs", args.envs != 1)) if v]
    if given:
        raise ConfigError(f"--target {args.target} runs a spikeloop policy trained for the chip as its file states "
                          f"it; {', '.join(given)} do not apply")
    nir_path = O.in_run_folder(args.policy, POLICY_NIR)
    run_dir = check_output_dir(Path(args.out) if args.out else nir_path.parent)
    report = stage(nir_path, args.env_id, args.backend or default_backend, args.episodes, args.eval_seed,
                   nir_path.parent / POLICY_CKPT, progress=not args.quiet)
    report["command"] = _command_line()
    files = {REPORT_JSON: lambda p: write_text(p, json_text(report)),
             REPORT_MD: lambda p: write_text(p, report_markdown(report))}
    if (run_dir / POLICY_NIR).resolve() != nir_path.resolve():
        files = {POLICY_NIR: lambda p: shutil.copyfile(nir_path, p)} | files
    write_files(run_dir, files)
    print(report_markdown(report))
    return 0


def read_run_report(run_dir: Path) -> tuple[Path, dict]:
    """A run folder's ``report.json`` as a dict, or one error naming the file and the fault."""
    import json

    from spikeloop.core.errors import ConfigError
    from spikeloop.pipeline import REPORT_JSON

    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: not a run folder (no such directory)" if not run_dir.exists() else
                          f"{run_dir}: not a run folder (it is a file); give the folder of a run")
    rpath = run_dir / REPORT_JSON
    if not rpath.is_file():
        raise ConfigError(f"{rpath} not found; run `spikeloop run` or `spikeloop demo` first")
    try:
        text = rpath.read_bytes().decode("utf-8")
    except OSError as e:
        raise ConfigError(f"{rpath}: cannot read the report ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{rpath}: not UTF-8 text (offset {e.start}); report.json is written by "
                          "`spikeloop run`") from None
    try:
        report = json.loads(text)
    except RecursionError:
        raise ConfigError(f"{rpath}: not valid JSON (nested too deeply)") from None
    except ValueError as e:
        raise ConfigError(f"{rpath}: not valid JSON ({e})") from None
    if not isinstance(report, dict):
        raise ConfigError(f"{rpath}: a report is a JSON object, got a {type(report).__name__}")
    return rpath, report


def cmd_energy(args) -> int:
    import tempfile

    from spikeloop.core.artifacts import check_output_dir, write_files
    from spikeloop.core.errors import ConfigError
    from spikeloop.core.nir_io import read_graph
    from spikeloop.hwprofiles import builtin_profiles
    from spikeloop.hwprofiles.energy import check_counts
    from spikeloop.pipeline import POLICY_NIR, REPORT_MD, check_pricing, energy_stage, report_files
    from spikeloop.plots import write_energy_figures
    from spikeloop.report import targets_text
    from spikeloop.runtime.compiler import plan_from_nir

    run_dir = Path(args.run)
    rpath, report = read_run_report(run_dir)
    if "counts_per_decision" not in report:
        raise ConfigError(f"{rpath}: holds no 'counts_per_decision' (the measured counts to price); "
                          "it was not written by `spikeloop run`")
    nir_path = run_dir / POLICY_NIR
    plan = plan_from_nir(read_graph(nir_path), source=str(nir_path))
    check_counts(report["counts_per_decision"], str(rpath), [p.name for p in plan.populations],
                 [c.name for c in plan.connections])
    profiles = args.profiles or builtin_profiles("neuromorphic")
    check_pricing(profiles, args.baseline)
    check_output_dir(run_dir)
    report["energy"] = energy_stage(plan, report["counts_per_decision"], profiles, args.baseline,
                                    args.static_timestep, args.static_share)
    with tempfile.TemporaryDirectory(prefix=".figures.", dir=run_dir) as stage:
        files = {}
        if args.plots:
            report["energy"]["figures"] = figures = write_energy_figures(
                Path(stage), plan, report["energy"], report.get("env_id"), args.raster_seed)
            for key in ("breakdown", "raster"):
                if key in figures:
                    files[figures[key]] = (lambda src: lambda p: Path(p).write_bytes(src.read_bytes()))(
                        Path(stage) / figures[key])
        try:  # the rest of the report comes from the file: it must render before anything is written
            rendered = report_files(report)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            field = f"field {e}" if isinstance(e, KeyError) else f"a malformed field ({type(e).__name__}: {e})"
            raise ConfigError(f"{rpath}: cannot be rendered: missing or malformed {field}") from None
        write_files(run_dir, files | rendered)
    print(f"energy per decision from {report.get('counts_source', 'the measured counts')}:\n")
    print(targets_text(report["energy"]))
    print(f"\nbreakdown, sources and mapping details: {run_dir / REPORT_MD}")
    return 0


def cmd_fit(args) -> int:
    from spikeloop.core.errors import HardwareConstraintError
    from spikeloop.hwprofiles import load_profile
    from spikeloop.hwprofiles.fit import check_fit, format_fit, has_conv, layers_from_nir
    from spikeloop.pipeline import POLICY_NIR

    profiles = [load_profile(name) for name in args.profiles]  # every input before any work
    nir_path = O.in_run_folder(args.policy, POLICY_NIR)
    imp = _import_policy(args, nir_path)
    graph = imp.graph  # a dense graph is mapped from its compiled plan, a convolutional one from NIR
    plan = None if has_conv(graph, str(nir_path)) else imp.plan
    net = layers_from_nir(graph, source=str(nir_path), plan=plan)
    failed = []
    for prof in profiles:
        rep = check_fit(net, prof)
        print(format_fit(rep) + "\n")
        failed += [rep] if rep.violations else []
    if failed:  # every violation of every profile, in one error
        raise HardwareConstraintError("\n".join(str(rep.error()) for rep in failed))
    return 0


def _import_policy(args, path):
    """The policy file read through the one import path, with the flags' choices applied;
    its warnings go to stderr."""
    from spikeloop.runtime.policy_import import import_policy

    imported = import_policy(path, O.policy_choices(args))
    for w in imported.warnings:
        print(f"spikeloop {args.command}: warning: {w}", file=sys.stderr)
    from spikeloop.runtime.peers import PEERS

    if imported.peer in PEERS and not imported.exact:
        print(f"spikeloop {args.command}: warning: this simulation does not reproduce {imported.peer}'s own "
              "spike for spike (see the warnings above)", file=sys.stderr)
    return imported


def cmd_annotate(args) -> int:
    """Write the graph with the choices in its metadata, so that it runs closed loop as it is."""
    from spikeloop.core.artifacts import check_output_file
    from spikeloop.core.nir_io import write_graph

    out = check_output_file(args.out)
    imported = _import_policy(args, args.graph)
    write_graph(out, imported.graph)
    m = imported.meta
    missing = [what for what, ok in (("--T", m.T is not None), ("--env", imported.env_id is not None),
                                     ("an encoding (--encoding fit or --obs-mean/--obs-std)",
                                      m.encoding is not None)) if not ok]
    print(f"wrote {out}: dt={m.dt_s:g} s, T={m.T}, env={imported.env_id}, "
          f"encoding={m.encoding.describe() if m.encoding else None}, decoding={m.decoding.kind} "
          f"({m.decoding.step}), written by {imported.peer}, {'exact' if imported.exact else 'NOT exact'}")
    if missing:
        print(f"spikeloop annotate: note: to run closed loop it still needs {', '.join(missing)}", file=sys.stderr)
    return 0


def cmd_inspect(args) -> int:
    from spikeloop.runtime.describe import describe

    imp = _import_policy(args, args.graph)
    print(describe(imp.graph, imp.plan, args.graph))
    from spikeloop.runtime.peers import PEERS

    if imp.peer in PEERS:
        print(f"  peer: {imp.peer}, dt={imp.meta.dt_s:g} s, {'exact' if imp.exact else 'NOT exact'} with "
              f"respect to the peer's own simulation ({len(imp.warnings)} warnings on stderr)")
    return 0


def cmd_simulate(args) -> int:
    """Check the output path, the graph, the backend and the input; simulate; write the .npz."""
    import numpy as np

    from spikeloop.core.artifacts import atomic_path, check_output_file
    from spikeloop.core.errors import ConfigError
    from spikeloop.pipeline import quantize_or_say
    from spikeloop.runtime.backends import check_open_loop_backend, check_stable
    from spikeloop.runtime.simulate import read_inputs, simulate

    out = check_output_file(args.out)
    check_open_loop_backend(args.backend)
    plan = _import_policy(args, args.graph).plan
    try:
        check_stable(plan)
    except ConfigError as e:
        raise ConfigError(f"{args.graph}: {e}") from None
    fixed = quantize_or_say(plan, args.graph) if args.precision == "fixed" else None
    x = read_inputs(args.input, plan)
    res = simulate(plan, x, args.backend, args.precision, fixed=fixed, source=str(args.input))
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **res.arrays())
    lat = ", ".join(f"{k} {v}" for k, v in res.latency.items())
    print(f"wrote {out}: {len(x)} timesteps, {args.backend} {args.precision}; "
          f"Lava pipeline latency removed per node (steps): {lat}")
    return 0


def build_parser(agent: str = "dqn") -> argparse.ArgumentParser:
    """The parser; ``agent`` chooses whose options ``train`` and ``demo`` show."""
    from spikeloop.train.agents import get_agent

    agent_cls = get_agent(agent).config

    parser = argparse.ArgumentParser(prog="spikeloop", description=(
        "Train a spiking RL policy, export it to NIR, run it on Lava (float and bit-accurate "
        "fixed point) and price every decision on a hardware profile."))
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="train, export, compile and evaluate a policy end to end (CartPole by default)",
                       description="Train a spiking agent (default: DQN on CartPole-v1), export policy.nir, run "
                                   "it in Lava float and fixed point, and write report.md/report.json. Exits 3 "
                                   "if Lava fixed point misses the environment's solved threshold.")
    p.add_argument("--out", default="runs/demo", help="run folder (default: runs/demo)")
    O.add_dt(p, writes=True)
    O.add_quiet(p)
    O.add_eval(p)
    O.add_agent(p, agent_cls)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("train", help="train a spiking agent and write policy.safetensors",
                       description="Train a registered agent (--agent) and write the checkpoint, config.toml "
                                   "(which --config reads back) and training.json.")
    p.add_argument("--out", required=True, help="run folder")
    O.add_quiet(p)
    O.add_agent(p, agent_cls)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sweep", help="train and deploy a grid or random search of configs on Ray Tune",
                       description="Run every trial of a sweep file (spikeloop.sweep documents the format) as a "
                                   "`spikeloop demo` in its own run folder, scheduled by Ray Tune (local unless "
                                   "--address), and write results.csv/.parquet. A stopped sweep resumes: complete "
                                   "trials are not run again.")
    p.add_argument("sweep", help="the sweep file (.toml)")
    p.add_argument("--out", help="the sweep folder (default: the sweep file's name without .toml)")
    p.add_argument("--address", help="an existing Ray cluster (default: a local one, ray.init())")
    O.add_quiet(p)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("frontier", help="the return-versus-energy Pareto front of a sweep, per target",
                       description="Group a sweep's trials by configuration (mean and spread over seeds), draw per "
                                   "target the Pareto front of deployed return against energy per decision (spikes "
                                   "where unpriced), name the cheapest configuration that meets the threshold, and "
                                   "write frontier.png and frontier.md.")
    p.add_argument("sweep_dir", help="a sweep folder written by `spikeloop sweep`")
    p.add_argument("--threshold", type=float, help="the return to meet (default: the sweep file's)")
    p.set_defaults(func=cmd_frontier)

    p = sub.add_parser("collect", help="record an expert's trajectories for learning from demonstrations",
                       description="Run a trained policy (a spikeloop checkpoint of any agent, or a "
                                   "Stable-Baselines3 DQN .zip, read without unpickling) greedily and write its "
                                   "trajectories to a .npz file (format: spikeloop.train.offline).")
    p.add_argument("source", help="the expert: policy.safetensors (or a run folder holding it) or an SB3 DQN .zip")
    p.add_argument("--out", required=True, help="the demonstrations file to write (.npz)")
    p.add_argument("--env", dest="env_id", help="gymnasium id (default: the checkpoint's; required for a .zip)")
    p.add_argument("--episodes", type=O.positive_int, default=20, help="episodes to record (default: 20)")
    p.add_argument("--seed", type=O.seed_int, default=0, help="episode i is reset with seed + i (default: 0)")
    p.add_argument("--epsilon", type=O.probability_list, default=[0.0],
                   help="comma-separated probabilities of a random action, episode i taking value i mod their "
                        "number: demonstrations of mixed quality for a return-conditioned policy (default: 0)")
    O.add_quiet(p)
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("convert", help="convert a trained ReLU DQN into a spiking policy (IF, soft reset)",
                       description="Balance thresholds on the dense network's recorded activations, build the "
                                   "IF/soft-reset spiking network, and report its return against the window T "
                                   "next to the ANN (torch float and the emulator in Loihi fixed point). Writes "
                                   "policy.safetensors, policy.nir, convert.json and convert.md.")
    p.add_argument("source", help="a dense checkpoint (spikeloop train --network dense) or a Stable-Baselines3 "
                                  "DQN .zip (read without executing anything in it)")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--env", dest="env_id", help="gymnasium id (default: the checkpoint's; required for a .zip)")
    p.add_argument("--T", type=int, nargs="+", default=[8, 16, 32, 64], help="windows to evaluate (default: 8 16 32 64)")
    p.add_argument("--deploy-T", type=int, default=None,
                   help="window of the written policy (default: the shortest within 2%% of the ANN in fixed point)")
    p.add_argument("--episodes", type=int, default=10, help="episodes per evaluation (default: 10)")
    p.add_argument("--eval-seed", type=O.seed_int, default=1000, help="reset seed of the first episode")
    p.add_argument("--calib-steps", type=int, default=3000, help="observations recorded to balance thresholds")
    p.add_argument("--seed", type=O.seed_int, default=0, help="seed of the calibration episodes")
    p.add_argument("--percentile", type=float, default=99.9,
                   help="activation percentile that maps to one spike per step (default: 99.9)")
    p.add_argument("--clip", type=float, default=8.0, help="input clip in standard deviations (default: 8)")
    p.add_argument("--bits", type=int, default=10, help="graded input payload bits (default: 10)")
    O.add_quiet(p)
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("export", help="export a checkpoint to a NIR graph or lava-dl netx hdf5",
                       description="Export a policy checkpoint (or a run folder) to NIR with dt, T, reset, "
                                   "encoding and decoding in the graph metadata, or (--format netx) to "
                                   "lava-dl's netx hdf5 for Loihi 2, from a checkpoint or a .nir graph.")
    p.add_argument("checkpoint", help="policy.safetensors or a run folder holding it (netx: or a .nir file)")
    p.add_argument("--format", choices=("nir", "netx"), default="nir", help="output format (default: nir)")
    O.add_policy_graph(p, closed_loop=False, dt_help=f"seconds per timestep: written into the export of a "
                       f"checkpoint (default: {O.DT_DEFAULT_S:g}); for a .nir source, overrides the graph's")
    p.add_argument("--out", help="output path (default: policy.nir or policy.net next to the source)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("run", help="run a NIR policy closed-loop in Lava (or on a Xylo core) and report",
                       description="Compile a NIR policy onto Lava (float and fixed point), run closed-loop "
                                   "episodes, and write report.md/report.json. With --target xylo: map it onto "
                                   "a Xylo core and run it on SynSense's xylosim or spikeloop's emulator.")
    p.add_argument("policy", help="policy.nir or a run folder holding it (spikeloop's own or a peer's graph)")
    p.add_argument("--out", help="run folder for the report (default: the policy's folder)")
    p.add_argument("--record", action="store_true",
                   help="write decisions.npz: every observation each backend saw, its values and action")
    O.add_quiet(p)
    O.add_eval(p, targets=True)
    O.add_policy_graph(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("inspect", help="print a NIR graph and the Lava processes it compiles to",
                       description="Print the nodes, shapes, parameters and metadata of a NIR graph and "
                                   "the Lava processes it compiles to.")
    p.add_argument("graph", help="a .nir file")
    O.add_policy_graph(p)
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("annotate", help="write a NIR policy with what closed-loop runs need in its metadata",
                       description="Read a NIR policy (spikeloop's own or a peer's: snnTorch, Norse, plain "
                                   "NIR), map its writer's conventions, and write it with dt, the window T, "
                                   "the input encoding, the decoding and the environment in its metadata, "
                                   "so that `spikeloop run FILE` runs it as it is.")
    p.add_argument("graph", help="a .nir file")
    p.add_argument("--out", required=True, help="the annotated .nir file to write")
    O.add_policy_graph(p)
    p.set_defaults(func=cmd_annotate)

    p = sub.add_parser("simulate", help="run a NIR graph open loop on a recorded input",
                       description="Run a NIR graph on a time-major input (one row per timestep) and "
                                   "write every neuron node's spikes and voltages, aligned to the graph's "
                                   "own time (Lava's pipeline latency removed).")
    p.add_argument("graph", help="a .nir file")
    p.add_argument("--input", required=True, help=".npy array, one row per timestep")
    from spikeloop.runtime.backends import ALIASES, backend_names

    p.add_argument("--backend", choices=backend_names(aliases=True), default="lava",
                   help="a registered backend ("
                        + ", ".join(n for n in backend_names() if n != "lava-fused")
                        + "; lava-fused runs closed loop only) or an alias ("
                        + ", ".join(f"{a} = {b}" for a, b in ALIASES.items()) + "); default: lava")
    p.add_argument("--precision", choices=("float", "fixed"), default="float")
    p.add_argument("--out", required=True, help="output .npz (<node>.spikes, <node>.v, output)")
    O.add_policy_graph(p, closed_loop=False)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("energy", help="price a run's measured counts on hardware profiles",
                       description="Price the counts measured in a run on one or more hardware profiles and "
                                   "rewrite its report.")
    p.add_argument("run", help="run folder holding report.json and policy.nir")
    O.add_profiles(p, None, "to price")
    O.add_baseline(p)
    O.add_static(p)
    p.add_argument("--plots", default=True, action=argparse.BooleanOptionalAction,
                   help="write energy_breakdown.png and raster.png (one episode) into the run folder")
    p.add_argument("--raster-seed", type=O.seed_int, default=1000,
                   help="reset seed of the raster's episode (a non-negative integer)")
    p.set_defaults(func=cmd_energy)

    p = sub.add_parser("fit", help="check that a NIR policy fits a chip's limits and show its placement",
                       description="Place a NIR policy's layers onto the cores of one or more hardware "
                                   "profiles, report cores used and utilisation, and fail with every "
                                   "violated limit (rule, layer, value, limit, excess).")
    p.add_argument("policy", help="policy.nir or a run folder holding it")
    O.add_profiles(p, ["loihi"], "to check")
    O.add_policy_graph(p)
    p.set_defaults(func=cmd_fit)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit status.

    SIGINT, SIGTERM and SIGHUP stop any command the same way (``spikeloop.core.signals``): every
    runtime is stopped, one line is printed, and the status is 128 + the signal (130, 143,
    129); a second signal meanwhile changes nothing. Called as the program (no ``argv``),
    a process stopped by a signal ignores further ones until it has exited.
    """
    from spikeloop.core import signals

    global _ARGV
    program = argv is None
    argv = sys.argv[1:] if argv is None else list(argv)
    _ARGV = argv
    name = "spikeloop"
    with signals.handled():
        try:
            try:
                parser = build_parser(O.preparse_agent(argv))
            except SpikeloopError as e:
                print(f"spikeloop: error: {e}", file=sys.stderr)
                return 2
            args = parser.parse_args(argv)
            name = f"spikeloop {args.command}"
            return args.func(args)
        except SpikeloopError as e:
            print(f"{name}: error: {e}", file=sys.stderr)
            return 2
        except KeyboardInterrupt as e:
            if program:
                signals.ignore_until_exit()
            signals.say(f"{name}: {signals.describe(e)}")
            return signals.exit_status(e)


if __name__ == "__main__":
    sys.exit(main())
