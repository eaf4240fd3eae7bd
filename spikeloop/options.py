"""Every command-line option that more than one command takes, defined once.

The commands in :mod:`spikeloop.cli` add these to their parsers; none defines its own
``--dt``, ``--profile``, ``--quiet`` or run-folder resolution.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import math
import textwrap
from pathlib import Path

from spikeloop.core.errors import ConfigError

DT_DEFAULT_S = 1e-3
"""seconds per timestep written into an exported graph when none is given"""


def positive_seconds(text: str) -> float:
    """argparse type of ``--dt``: a finite positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive, finite number of seconds, got {text}")
    return value


def _whole(text: str, lo: int, rule: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < lo:
        raise argparse.ArgumentTypeError(f"{rule}, got {text}")
    return value


def positive_int(text: str) -> int:
    """argparse type of a count: a whole number >= 1."""
    return _whole(text, 1, "must be a positive integer")


def seed_int(text: str) -> int:
    """argparse type of a reset seed: a whole number >= 0 (gymnasium refuses negative seeds)."""
    return _whole(text, 0, "a seed must be a non-negative integer")


def profile_list(text: str) -> list[str]:
    """argparse type of ``--profile``: comma-separated profile names or ``.toml`` paths."""
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise argparse.ArgumentTypeError("names no profile")
    return names


def add_dt(p: argparse.ArgumentParser, writes: bool) -> None:
    """``--dt``: the time step written into an export (``writes``), or one overriding the graph's."""
    if writes:
        p.add_argument("--dt", dest="dt_s", type=positive_seconds, default=DT_DEFAULT_S,
                       help=f"seconds per timestep written to the NIR graph (default: {DT_DEFAULT_S:g})")
    else:
        p.add_argument("--dt", dest="dt_s", type=positive_seconds, default=None,
                       help="seconds per timestep; overrides the graph's, required if it carries none")


def add_profiles(p: argparse.ArgumentParser, default: list[str] | None, what: str) -> None:
    """``--profile``: one or more hardware profiles."""
    shown = ", ".join(default) if default else "every built-in neuromorphic profile"
    p.add_argument("--profile", dest="profiles", type=profile_list, default=default,
                   help=f"comma-separated hardware profiles or .toml paths {what} (default: {shown})")


def add_baseline(p: argparse.ArgumentParser) -> None:
    """``--baseline``: the conventional profile pricing the dense-ANN baseline."""
    p.add_argument("--baseline", default="cpu-45nm",
                   help="conventional profile for the dense-ANN baseline (default: cpu-45nm)")


def add_quiet(p: argparse.ArgumentParser) -> None:
    """``--quiet``: no progress bars."""
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def add_eval(p: argparse.ArgumentParser) -> None:
    """How a compiled policy is evaluated closed loop and priced (``run`` and ``demo``)."""
    p.add_argument("--episodes", type=positive_int, default=20,
                   help="closed-loop episodes per backend (default: 20)")
    p.add_argument("--eval-seed", type=seed_int, default=1000,
                   help="episode i starts from reset(seed + i) (a non-negative integer)")
    from spikeloop.runtime.backends import LAVA_MAPPINGS

    p.add_argument("--mapping", choices=tuple(LAVA_MAPPINGS), default="fused",
                   help="Lava mapping: one fused process (fast) or one process per NIR node (reference)")
    add_profiles(p, None, "to price")
    add_baseline(p)


def eval_config(args):
    """The :class:`~spikeloop.pipeline.EvalConfig` of parsed :func:`add_eval` options."""
    from spikeloop.pipeline import EvalConfig

    cfg = EvalConfig(episodes=args.episodes, seed=args.eval_seed, mapping=args.mapping, baseline=args.baseline)
    if args.profiles:
        cfg.profiles = list(args.profiles)
    return cfg


def in_run_folder(src: str | Path, filename: str) -> Path:
    """A file given directly, or ``filename`` inside a run folder."""
    src = Path(src)
    return src / filename if src.is_dir() else src


# ----------------------------------------------------------------------------- agent configs

def field_docs(cls) -> dict[str, str]:
    """Attribute docstrings of a dataclass (the string literal under a field), CleanRL style."""
    body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body
    docs = {}
    for a, b in zip(body, body[1:]):
        if (isinstance(a, ast.AnnAssign) and isinstance(a.target, ast.Name) and isinstance(b, ast.Expr)
                and isinstance(b.value, ast.Constant) and isinstance(b.value.value, str)):
            docs[a.target.id] = " ".join(b.value.value.split())
    return docs


def add_config_options(parser: argparse.ArgumentParser, cls) -> None:
    """One --option per config field, typed from its default, helped by its docstring."""
    docs = field_docs(cls)
    group = parser.add_argument_group(f"{cls.__name__} options (override --config)")
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        flag = "--" + f.name.replace("_", "-")
        doc = docs.get(f.name, "")
        if isinstance(default, bool):
            group.add_argument(flag, dest=f.name, default=None, action=argparse.BooleanOptionalAction,
                               help=f"{doc} (default: {default})")
        elif isinstance(default, list):
            group.add_argument(flag, dest=f.name, type=type(default[0]), nargs="+", default=None,
                               help=f"{doc} (default: {' '.join(map(str, default))})")
        else:
            group.add_argument(flag, dest=f.name, type=type(default), default=None,
                               help=f"{doc} (default: {default})")


def add_agent(p: argparse.ArgumentParser, agent_cls) -> None:
    """``--agent``, ``--config`` and the agent's own options."""
    from spikeloop.train.agents import agent_names

    p.add_argument("--agent", default=None, choices=agent_names(),
                   help="training algorithm (default: dqn, or the one named in --config)")
    p.add_argument("--config", type=Path, help="a run's config.toml: start from its options (flags override them)")
    add_config_options(p, agent_cls)


def agent_config(args):
    """``(agent name, validated config)`` from ``--config`` and the flags that override it."""
    from spikeloop.pipeline import read_config
    from spikeloop.train.agents import config_from_dict, get_agent

    base, agent = {}, args.agent
    if args.config is not None:
        file_agent, base = read_config(args.config)
        if agent is not None and agent != file_agent:
            raise ConfigError(f"--agent {agent} disagrees with {args.config}, which was written by "
                              f"agent {file_agent!r}")
        agent = file_agent
    spec = get_agent(agent or "dqn")
    flags = {f.name: getattr(args, f.name) for f in dataclasses.fields(spec.config)
             if getattr(args, f.name, None) is not None}
    return spec.name, config_from_dict(spec.config, {**base, **flags})


def preparse_agent(argv: list[str]) -> str:
    """The agent whose options the parser shows: ``--agent``, else the one in ``--config``, else dqn."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--agent")
    pre.add_argument("--config", type=Path)
    known, _ = pre.parse_known_args(argv)
    if known.agent:
        return known.agent
    if known.config is not None and known.config.is_file():
        from spikeloop.pipeline import read_config

        try:
            return read_config(known.config)[0]
        except ConfigError:
            return "dqn"  # the real parse reports the error
    return "dqn"
