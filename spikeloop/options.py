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


def probability_list(text: str) -> list[float]:
    """argparse type of ``collect --epsilon``: comma-separated probabilities in [0, 1]."""
    values = number_list(text)
    bad = [v for v in values if not 0 <= v <= 1]
    if bad:
        raise argparse.ArgumentTypeError(f"every value must be a probability in [0, 1], got {bad[0]:g}")
    return values


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


def add_static(p: argparse.ArgumentParser) -> None:
    """How static power is priced: both halves are assumptions, and every report states them."""
    from spikeloop.hwprofiles.energy import STATIC_SHARES, STATIC_TIMESTEPS

    p.add_argument("--static-timestep", choices=STATIC_TIMESTEPS, default="realtime",
                   help="static power over the profile's real-time timestep (default) or its unthrottled one "
                        "(the chip runs the next step at once)")
    p.add_argument("--static-share", choices=STATIC_SHARES, default="chip",
                   help="the whole chip's static power (default) or the share of the cores the network uses")


def add_quiet(p: argparse.ArgumentParser) -> None:
    """``--quiet``: no progress bars."""
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def add_eval(p: argparse.ArgumentParser, targets: bool = False) -> None:
    """How a compiled policy is evaluated closed loop and priced (``run`` and ``demo``)."""
    p.add_argument("--episodes", type=positive_int, default=20,
                   help="closed-loop episodes per backend (default: 20)")
    p.add_argument("--eval-seed", type=seed_int, default=1000,
                   help="episode i starts from reset(seed + i) (a non-negative integer)")
    from spikeloop.runtime.backends import LAVA_MAPPINGS

    p.add_argument("--mapping", choices=tuple(LAVA_MAPPINGS), default="fused",
                   help="Lava mapping: one fused process (fast) or one process per NIR node (reference)")
    from spikeloop.pipeline import EVAL_BACKENDS, EVAL_PRECISIONS

    if targets:
        p.add_argument("--target", choices=("loihi", "xylo", "speck"), default="loihi",
                       help="the chip: loihi (Lava float and fixed point), xylo (a Xylo core: the vendor's "
                            "simulator xylosim or spikeloop's emulator of it) or speck (spikeloop's emulator of "
                            "Speck / DYNAP-CNN; default: loihi)")
    p.add_argument("--backend", choices=EVAL_BACKENDS + (("xylosim",) if targets else ()), default=None,
                   help="what runs the deployed graph: Lava (--mapping), the bit-exact numpy emulator, or the "
                        "torch policy of the checkpoint beside the graph (default: lava)"
                        + ("; with --target xylo: xylosim (default) or emulator; with --target speck: emulator"
                           if targets else ""))
    p.add_argument("--precision", choices=EVAL_PRECISIONS, default="both",
                   help="float, fixed (bit-accurate Loihi) or both (default: both)")
    p.add_argument("--envs", type=positive_int, default=1,
                   help="copies of the network stepped at once, one environment each (emulator and Lava "
                        "fused; the same episodes and actions as one copy; default: 1)")
    add_profiles(p, None, "to price")
    add_baseline(p)
    add_static(p)


def eval_config(args):
    """The :class:`~spikeloop.pipeline.EvalConfig` of parsed :func:`add_eval` options."""
    from spikeloop.pipeline import EvalConfig

    cfg = EvalConfig(episodes=args.episodes, seed=args.eval_seed, mapping=args.mapping, baseline=args.baseline,
                     backend=args.backend or "lava", precision=args.precision, envs=args.envs,
                     static_timestep=args.static_timestep, static_share=args.static_share)
    if args.profiles:
        cfg.profiles = list(args.profiles)
    return cfg


def in_run_folder(src: str | Path, filename: str) -> Path:
    """A file given directly, or ``filename`` inside a run folder."""
    src = Path(src)
    return src / filename if src.is_dir() else src


# ----------------------------------------------------------------------------- policy graphs

DECODING_CHOICES = ("voltage-last", "voltage-mean", "spike-count")


def number_list(text: str) -> list[float]:
    """argparse type of ``--obs-mean``/``--obs-std``: comma-separated finite numbers."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None
    if not values or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"needs one finite number per observation element, got {text!r}")
    return values


def add_policy_graph(p: argparse.ArgumentParser, closed_loop: bool = True, dt_help: str | None = None) -> None:
    """How a NIR policy file is read: its writer, and what the file does not say (or is overridden).

    One set of flags for ``annotate``, ``run``, ``fit``, ``inspect``, ``simulate`` and
    ``export``; :func:`policy_choices` turns them into a
    :class:`~spikeloop.runtime.policy_import.PolicyChoices`.
    """
    from spikeloop.runtime.policy_import import FIT_STEPS_DEFAULT

    g = p.add_argument_group("policy graph: what the file does not say, or what overrides it")
    g.add_argument("--peer", choices=("auto", "snntorch", "norse", "sinabs", "rockpool", "none"), default="auto",
                   help="framework that wrote the graph, whose conventions and exporter faults are "
                        "mapped (default: auto-detect; none: plain NIR)")
    g.add_argument("--peer-reset", choices=("zero", "subtract"),
                   help="the original model's reset mechanism, which peer exporters do not write "
                        "(snnTorch reset_mechanism, Norse LIFBoxCell reset_method)")
    g.add_argument("--peer-reset-timing", choices=("delayed", "immediate"), default="delayed",
                   help="snnTorch's reset_delay, which its exporter does not write either: delayed (True, "
                        "snnTorch's default: a spike's reset applies in the next step) or immediate (False)")
    g.add_argument("--dt", dest="dt_s", type=positive_seconds, default=None,
                   help=dt_help or "seconds per timestep; overrides the graph's, required if it carries none")
    g.add_argument("--T", dest="T", type=positive_int, default=None,
                   help="timesteps per decision (the window); overrides the graph's")
    if not closed_loop:
        return
    g.add_argument("--env", dest="env_id", default=None,
                   help="gymnasium environment id (a registered one); overrides the graph's")
    g.add_argument("--encoding", choices=("fit",), default=None,
                   help="fit: freeze the input normalization from --fit-steps observations of a random "
                        "policy on --env (default: the graph's, or --obs-mean/--obs-std)")
    g.add_argument("--obs-mean", type=number_list, help="explicit normalization: comma-separated means")
    g.add_argument("--obs-std", type=number_list, help="explicit normalization: comma-separated stds")
    g.add_argument("--clip", type=float, default=4.0, help="normalized inputs are clipped to +-clip (default: 4)")
    g.add_argument("--bits", type=int, default=8, help="graded payload bits of the input (default: 8)")
    g.add_argument("--fit-steps", type=positive_int, default=FIT_STEPS_DEFAULT,
                   help=f"random-policy observations to fit the normalization from (default: {FIT_STEPS_DEFAULT})")
    g.add_argument("--fit-seed", type=seed_int, default=0, help="seed of the fitting episodes (default: 0)")
    g.add_argument("--decoding", choices=DECODING_CHOICES, default=None,
                   help="how the output becomes action values: the readout's voltage at the window's last "
                        "step or its mean, or the output's spike count (default: the graph's; a spiking "
                        "output read by voltage is deployed as a leaky integrator, with a warning)")
    g.add_argument("--memory", choices=("window", "stream"), default=None,
                   help="window: every decision from zero state, nothing carried over (what a recurrent "
                        "connection carries is cleared); stream: the state runs on across decisions and "
                        "episodes, the input silent during the pipeline's drain (default: the graph's, else window)")


def policy_choices(args):
    """The :class:`~spikeloop.runtime.policy_import.PolicyChoices` of :func:`add_policy_graph` options."""
    from spikeloop.core.coding import SPIKE_COUNT, Decoding, InputEncoding
    from spikeloop.runtime.policy_import import PolicyChoices

    closed = hasattr(args, "env_id")
    encoding = decoding = None
    if closed and (args.obs_mean is not None or args.obs_std is not None):
        if args.obs_mean is None or args.obs_std is None:
            raise ConfigError("an explicit encoding needs both --obs-mean and --obs-std")
        encoding = InputEncoding(mean=tuple(args.obs_mean), std=tuple(args.obs_std), clip=args.clip,
                                 bits=args.bits)
    if closed and args.decoding is not None:
        decoding = (Decoding(kind=SPIKE_COUNT) if args.decoding == "spike-count"
                    else Decoding(step=args.decoding.split("-")[1]))
    extra = {} if not closed else dict(
        env_id=args.env_id, encoding=encoding, fit_encoding=args.encoding == "fit", fit_steps=args.fit_steps,
        fit_seed=args.fit_seed, clip=args.clip, bits=args.bits, decoding=decoding, memory=args.memory)
    if closed and args.encoding == "fit":  # the grid is checked before any episode runs
        InputEncoding(mean=(0.0,), std=(1.0,), clip=args.clip, bits=args.bits)
    return PolicyChoices(peer=args.peer, peer_reset=args.peer_reset, peer_reset_timing=args.peer_reset_timing,
                         dt_s=args.dt_s, T=args.T, **extra)


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
        elif isinstance(default, list):  # an empty default (no convolutions) can be asked for again: nargs *
            item = type(default[0]) if default else {"list[float]": float, "list[str]": str}.get(str(f.type), int)
            group.add_argument(flag, dest=f.name, type=item, nargs="+" if default else "*", default=None,
                               help=f"{doc} (default: {' '.join(map(str, default)) or 'none'})")
        else:
            group.add_argument(flag, dest=f.name, type=type(default), default=None,
                               help=f"{doc} (default: {default})")


def add_agent(p: argparse.ArgumentParser, agent_cls) -> None:
    """``--agent``, ``--config`` and the agent's own options."""
    from spikeloop.train.agents import agent_names

    p.add_argument("--agent", default=None, choices=agent_names(),
                   help="training algorithm (default: dqn, or the one named in --config)")
    p.add_argument("--config", type=Path, help="a run's config.toml: start from its options (flags override them)")
    p.add_argument("--preset", choices=preset_names(), default=None,
                   help="start from a documented preset config (flags override it): "
                        + ", ".join(preset_names()))
    add_config_options(p, agent_cls)


def preset_names() -> list[str]:
    """The preset configs shipped with spikeloop (``train/presets/<name>.toml``)."""
    from importlib import resources

    folder = resources.files("spikeloop.train") / "presets"
    return sorted(f.name.removesuffix(".toml") for f in folder.iterdir() if f.name.endswith(".toml"))


def preset_path(name: str) -> Path:
    """The config file of preset ``name`` (one of :func:`preset_names`; nothing else is opened)."""
    from importlib import resources

    if name not in preset_names():
        raise ConfigError(f"unknown preset {name!r}; known presets: {', '.join(preset_names())}")
    return Path(str(resources.files("spikeloop.train") / "presets" / f"{name}.toml"))


def agent_config(args):
    """``(agent name, validated config)`` from ``--config`` and the flags that override it."""
    from spikeloop.pipeline import read_config
    from spikeloop.train.agents import config_from_dict, get_agent

    base, agent = {}, args.agent
    preset = getattr(args, "preset", None)
    if preset is not None and args.config is not None:
        raise ConfigError("give --preset or --config, not both (a run's config.toml already holds its preset)")
    source = preset_path(preset) if preset is not None else args.config
    if source is not None:
        file_agent, base = read_config(source)
        if agent is not None and agent != file_agent:
            raise ConfigError(f"--agent {agent} disagrees with {source}, which configures "
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
    pre.add_argument("--preset")
    known, _ = pre.parse_known_args(argv)
    if known.agent:
        return known.agent
    if known.preset in preset_names():
        from spikeloop.pipeline import read_config

        return read_config(preset_path(known.preset))[0]
    if known.config is not None and known.config.is_file():
        from spikeloop.pipeline import read_config

        try:
            return read_config(known.config)[0]
        except ConfigError:
            return "dqn"  # the real parse reports the error
    return "dqn"
