"""The `spikeloop` command line: demo, train, export, run, energy, inspect, simulate."""
from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from pathlib import Path

from spikeloop import options as O
from spikeloop.core.errors import SpikeloopError


def _command_line() -> str:
    return " ".join(["spikeloop"] + [shlex.quote(a) for a in sys.argv[1:]])


def cmd_demo(args) -> int:
    from spikeloop.pipeline import demo

    agent, cfg = O.agent_config(args)
    report = demo(Path(args.out), agent, cfg, O.eval_config(args), dt_s=args.dt_s, progress=not args.quiet,
                  command=_command_line())
    _print_summary(Path(args.out), report)
    return 3 if report["acceptance"]["met"] is False else 0


def _print_summary(run_dir: Path, report: dict) -> None:
    from spikeloop.report import targets_text

    ev = report["evaluation"]
    print(f"\nreport: {run_dir / 'report.md'}")
    for key, s in sorted(ev.items(), key=lambda kv: ("torch_float", "lava_float", "lava_fixed").index(kv[0])
                         if kv[0] in ("torch_float", "lava_float", "lava_fixed") else 9):
        agree = s.get("agreement_with_torch")
        print(f"  {key:12s} mean return {s['mean_return']:7.1f} over {s['episodes']} episodes"
              + ("" if agree is None else f", actions equal to torch {100 * agree:.2f} %"))
    print(targets_text(report["energy"]))


def cmd_train(args) -> int:
    from spikeloop.pipeline import train_stage

    agent, cfg = O.agent_config(args)
    run_dir = Path(args.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    res = train_stage(run_dir, agent, cfg, progress=not args.quiet)
    print(f"best greedy eval return {res.best_eval:.1f} after {res.steps} steps; "
          f"wrote {run_dir / 'policy.safetensors'}")
    return 0


def cmd_export(args) -> int:
    from spikeloop.pipeline import POLICY_CKPT, export_stage

    src = O.in_run_folder(args.checkpoint, POLICY_CKPT)
    if args.format == "netx":
        if src.suffix == ".nir":
            from spikeloop.runtime.netx import export_netx

            res = export_netx(src, args.out)
        else:
            res = export_stage(src.parent, args.dt_s, checkpoint=src, out=args.out and Path(args.out), fmt="netx")
        for note in res.notes:
            print(f"spikeloop export: warning: {note}", file=sys.stderr)
        print(f"wrote {res.path}")
        return 0
    out = Path(args.out) if args.out else src.parent / "policy.nir"
    path = export_stage(src.parent, args.dt_s, checkpoint=src, out=out)
    print(f"wrote {path}")
    return 0


def cmd_run(args) -> int:
    import shutil

    from spikeloop.core.errors import ConfigError
    from spikeloop.core.metadata import GraphMeta
    from spikeloop.pipeline import POLICY_NIR, build_report, energy_stage, evaluate_stage, write_report
    from spikeloop.core.nir_io import read_graph

    nir_path = O.in_run_folder(args.policy, POLICY_NIR)
    run_dir = Path(args.out) if args.out else nir_path.parent
    run_dir.mkdir(parents=True, exist_ok=True)
    meta = GraphMeta.from_nir_metadata(read_graph(nir_path).metadata, str(nir_path))
    env_id = args.env or (meta.extra.get("env_id") if meta else None)
    if not env_id:
        raise ConfigError(f"{nir_path}: the graph names no environment; pass --env ENV_ID")
    if (run_dir / POLICY_NIR).resolve() != nir_path.resolve():
        shutil.copyfile(nir_path, run_dir / POLICY_NIR)  # the run folder holds what it reports on
    cfg = O.eval_config(args)
    evaluation = evaluate_stage(nir_path.parent, env_id, cfg, nir_path=nir_path, progress=not args.quiet)
    per_dec = evaluation["results"]["lava_fixed"].counts.per_decision()
    energy = energy_stage(evaluation["plan"], per_dec, cfg.profiles, cfg.baseline)
    report = build_report(run_dir, env_id, evaluation, energy, None, cfg, _command_line())
    write_report(run_dir, report)
    _print_summary(run_dir, report)
    return 0


def cmd_energy(args) -> int:
    import json

    from spikeloop.core.errors import ConfigError
    from spikeloop.core.nir_io import read_graph
    from spikeloop.hwprofiles import builtin_profiles
    from spikeloop.pipeline import POLICY_NIR, REPORT_JSON, REPORT_MD, energy_stage, write_report
    from spikeloop.plots import write_energy_figures
    from spikeloop.report import targets_text
    from spikeloop.runtime.compiler import plan_from_nir

    run_dir = Path(args.run)
    rpath = run_dir / REPORT_JSON
    if not rpath.is_file():
        raise ConfigError(f"{rpath} not found; run `spikeloop run` or `spikeloop demo` first")
    report = json.loads(rpath.read_text())
    plan = plan_from_nir(read_graph(run_dir / POLICY_NIR), source=str(run_dir / POLICY_NIR))
    profiles = args.profiles or builtin_profiles("neuromorphic")
    report["energy"] = energy_stage(plan, report["counts_per_decision"], profiles, args.baseline)
    if args.plots:
        report["energy"]["figures"] = write_energy_figures(run_dir, plan, report["energy"], report.get("env_id"),
                                                           args.raster_seed)
    write_report(run_dir, report)
    print(f"energy per decision from {report.get('counts_source', 'the measured counts')}:\n")
    print(targets_text(report["energy"]))
    print(f"\nbreakdown, sources and mapping details: {run_dir / REPORT_MD}")
    return 0


def cmd_fit(args) -> int:
    from spikeloop.core.errors import HardwareConstraintError
    from spikeloop.core.nir_io import read_graph
    from spikeloop.hwprofiles import load_profile
    from spikeloop.hwprofiles.fit import check_fit, format_fit, has_conv, layers_from_nir
    from spikeloop.pipeline import POLICY_NIR
    from spikeloop.runtime.compiler import plan_from_nir

    nir_path = O.in_run_folder(args.policy, POLICY_NIR)
    graph = read_graph(nir_path)  # a dense graph is mapped from its compiled plan, a convolutional one from NIR
    plan = None if has_conv(graph, str(nir_path)) else plan_from_nir(graph, dt_s=args.dt_s, source=str(nir_path))
    net = layers_from_nir(graph, dt_s=args.dt_s, source=str(nir_path), plan=plan)
    failed = []
    for name in args.profiles:
        rep = check_fit(net, load_profile(name))
        print(format_fit(rep) + "\n")
        failed += [rep] if rep.violations else []
    if failed:  # every violation of every profile, in one error
        raise HardwareConstraintError("\n".join(str(rep.error()) for rep in failed))
    return 0


def _import_graph(args):
    """The graph file compiled to a plan: spikeloop's own, or a peer's with its conventions mapped."""
    from spikeloop.core.errors import ConfigError
    from spikeloop.core.nir_io import read_graph
    from spikeloop.runtime.peers import import_peer_file
    from spikeloop.runtime.compiler import plan_from_nir

    if args.peer == "none":
        if args.peer_reset:
            raise ConfigError("--peer-reset needs --peer auto, snntorch or norse")
        graph = read_graph(args.graph)
        return graph, plan_from_nir(graph, dt_s=args.dt_s, source=args.graph), None
    imp = import_peer_file(args.graph, dt_s=args.dt_s, peer=args.peer, reset=args.peer_reset)
    for w in imp.warnings:
        print(f"spikeloop {args.command}: warning: {w}", file=sys.stderr)
    if imp.peer in ("snntorch", "norse") and not imp.exact:
        print(f"spikeloop {args.command}: warning: this simulation does not reproduce {imp.peer}'s own "
              "spike for spike (see the warnings above)", file=sys.stderr)
    return imp.graph, imp.plan, imp


def _peer_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--peer", choices=("auto", "snntorch", "norse", "none"), default="auto",
                   help="framework that wrote the graph, whose conventions and exporter faults are "
                        "mapped (default: auto-detect; none: plain NIR)")
    p.add_argument("--peer-reset", choices=("zero", "subtract"),
                   help="the original model's reset mechanism, which peer exporters do not write "
                        "(snnTorch reset_mechanism, Norse LIFBoxCell reset_method)")


def cmd_inspect(args) -> int:
    from spikeloop.runtime.describe import describe

    graph, plan, imp = _import_graph(args)
    print(describe(graph, plan, args.graph))
    if imp is not None and imp.peer in ("snntorch", "norse"):
        print(f"  peer: {imp.peer}, dt={imp.dt_s:g} s, {'exact' if imp.exact else 'NOT exact'} with "
              f"respect to the peer's own simulation ({len(imp.warnings)} warnings on stderr)")
    return 0


def cmd_simulate(args) -> int:
    import numpy as np

    from spikeloop.core.artifacts import atomic_path
    from spikeloop.core.errors import ConfigError
    from spikeloop.runtime.simulate import simulate

    _, plan, _ = _import_graph(args)
    try:
        x = np.load(args.input, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ConfigError(f"{args.input}: cannot read a .npy array ({e})") from e
    res = simulate(plan, x.reshape(len(x), -1), args.backend, args.precision)
    with atomic_path(args.out) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **res.arrays())
    lat = ", ".join(f"{k} {v}" for k, v in res.latency.items())
    print(f"wrote {args.out}: {len(x)} timesteps, {args.backend} {args.precision}; "
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

    p = sub.add_parser("export", help="export a checkpoint to a NIR graph or lava-dl netx hdf5",
                       description="Export a policy checkpoint (or a run folder) to NIR with dt, T, reset, "
                                   "encoding and decoding in the graph metadata, or (--format netx) to "
                                   "lava-dl's netx hdf5 for Loihi 2, from a checkpoint or a .nir graph.")
    p.add_argument("checkpoint", help="policy.safetensors or a run folder holding it (netx: or a .nir file)")
    p.add_argument("--format", choices=("nir", "netx"), default="nir", help="output format (default: nir)")
    O.add_dt(p, writes=True)
    p.add_argument("--out", help="output path (default: policy.nir or policy.net next to the source)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("run", help="run a NIR policy closed-loop in Lava and report",
                       description="Compile a NIR policy onto Lava (float and fixed point), run closed-loop "
                                   "episodes, and write report.md/report.json.")
    p.add_argument("policy", help="policy.nir or a run folder holding it")
    p.add_argument("--env", help="gymnasium environment id (default: from the graph metadata)")
    p.add_argument("--out", help="run folder for the report (default: the policy's folder)")
    O.add_quiet(p)
    O.add_eval(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("inspect", help="print a NIR graph and the Lava processes it compiles to",
                       description="Print the nodes, shapes, parameters and metadata of a NIR graph and "
                                   "the Lava processes it compiles to.")
    p.add_argument("graph", help="a .nir file")
    O.add_dt(p, writes=False)
    _peer_options(p)
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("simulate", help="run a NIR graph open loop on a recorded input",
                       description="Run a NIR graph on a time-major input (one row per timestep) and "
                                   "write every neuron node's spikes and voltages, aligned to the graph's "
                                   "own time (Lava's pipeline latency removed).")
    p.add_argument("graph", help="a .nir file")
    p.add_argument("--input", required=True, help=".npy array, one row per timestep")
    O.add_dt(p, writes=False)
    from spikeloop.runtime.backends import ALIASES, backend_names

    p.add_argument("--backend", choices=backend_names(aliases=True), default="lava",
                   help="a registered backend ("
                        + ", ".join(n for n in backend_names() if n != "lava-fused")
                        + "; lava-fused runs closed loop only) or an alias ("
                        + ", ".join(f"{a} = {b}" for a, b in ALIASES.items()) + "); default: lava")
    p.add_argument("--precision", choices=("float", "fixed"), default="float")
    p.add_argument("--out", required=True, help="output .npz (<node>.spikes, <node>.v, output)")
    _peer_options(p)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("energy", help="price a run's measured counts on hardware profiles",
                       description="Price the counts measured in a run on one or more hardware profiles and "
                                   "rewrite its report.")
    p.add_argument("run", help="run folder holding report.json and policy.nir")
    O.add_profiles(p, None, "to price")
    O.add_baseline(p)
    p.add_argument("--plots", default=True, action=argparse.BooleanOptionalAction,
                   help="write energy_breakdown.png and raster.png (one episode) into the run folder")
    p.add_argument("--raster-seed", type=int, default=1000, help="reset seed of the raster's episode")
    p.set_defaults(func=cmd_energy)

    p = sub.add_parser("fit", help="check that a NIR policy fits a chip's limits and show its placement",
                       description="Place a NIR policy's layers onto the cores of one or more hardware "
                                   "profiles, report cores used and utilisation, and fail with every "
                                   "violated limit (rule, layer, value, limit, excess).")
    p.add_argument("policy", help="policy.nir or a run folder holding it")
    O.add_profiles(p, ["loihi"], "to check")
    O.add_dt(p, writes=False)
    p.set_defaults(func=cmd_fit)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = build_parser(O.preparse_agent(argv))
    except SpikeloopError as e:
        print(f"spikeloop: error: {e}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except SpikeloopError as e:
        print(f"spikeloop {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"spikeloop {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
