"""Open-loop simulation of a NIR graph: one input row per timestep, every neuron recorded.

Any registered backend that records (:data:`spikeloop.runtime.backends.BACKENDS`):
``reference`` (the graph's own time: no pipeline delays, float; the old name ``torch``),
``emulator`` and ``lava-per-node`` (the old name ``lava``) on Lava timing (one step of
delay per Dense hop; float or bit-accurate fixed point). The Lava pipeline latency of
each population (its depth in Dense hops) is removed, so row ``t`` of every output
answers input row ``t`` as the source framework would; the latencies are returned for
the record.
"""
from __future__ import annotations

import tokenize
from dataclasses import dataclass, field

import numpy as np

from spikeloop.core.errors import ConfigError
from spikeloop.runtime.backends import PRECISIONS, check_open_loop_backend, make_backend
from spikeloop.runtime.fixed_point import FixedPlan
from spikeloop.runtime.plan import NetworkPlan


@dataclass
class SimulationResult:
    backend: str
    precision: str
    spikes: dict[str, np.ndarray] = field(default_factory=dict)
    """per spiking population: (timesteps, neurons) 0/1"""
    v: dict[str, np.ndarray] = field(default_factory=dict)
    """per population: (timesteps, neurons) voltage after reset, in real units"""
    v_raw: dict[str, np.ndarray] = field(default_factory=dict)
    """fixed point only: the integer voltage registers"""
    output: np.ndarray | None = None
    latency: dict[str, int] = field(default_factory=dict)
    """Lava steps removed per population (0 in the graph's own time: the reference)"""
    shapes: dict[str, tuple] = field(default_factory=dict)
    """per population: the node's own shape (e.g. (C, H, W)); the arrays above are flat"""
    output_name: str | None = None

    def arrays(self) -> dict[str, np.ndarray]:
        """``{'<node>.spikes', '<node>.v', 'output'}`` for an .npz file, each ``(timesteps, *node shape)``."""
        def shaped(k, a):
            return a.reshape(len(a), *self.shapes[k]) if k in self.shapes else a

        out = {f"{k}.spikes": shaped(k, v) for k, v in self.spikes.items()}
        out |= {f"{k}.v": shaped(k, v) for k, v in self.v.items()}
        out["output"] = shaped(self.output_name, self.output) if self.output_name else self.output
        out["latency_removed"] = np.array([self.latency.get(k, 0) for k in self.v], dtype=np.int64)
        return out


MAX_STEPS = 1_000_000
"""the most timesteps one open-loop simulation runs (every neuron is recorded at every step)"""


def _describe(a) -> str:
    kind = getattr(getattr(a, "dtype", None), "kind", None)
    return {"U": "strings", "S": "strings", "O": "Python objects", "c": "complex numbers",
            "V": "records", "M": "dates", "m": "time spans"}.get(kind, f"values of type {type(a).__name__}")


def check_inputs(plan: NetworkPlan, inputs, source: str = "input") -> np.ndarray:
    """``inputs`` as a ``(timesteps, plan.input_size)`` float array, or one error naming ``source``.

    Refused: no array, a 0-d array, no timesteps, more than :data:`MAX_STEPS`, values that
    are not real numbers (strings, objects, complex), a row width other than the graph's
    input, NaN or inf.
    """
    a = inputs if isinstance(inputs, np.ndarray) else None
    if a is None:
        try:
            a = np.asarray(inputs)
        except (ValueError, TypeError) as e:
            raise ConfigError(f"{source}: not an array of numbers ({e})") from None
    if a.dtype.kind not in "biuf":
        raise ConfigError(f"{source}: holds {_describe(a)}, not numbers (dtype {a.dtype})")
    if a.ndim == 0:
        raise ConfigError(f"{source}: a 0-d array (shape ()), not one row per timestep; the input must be "
                          f"(timesteps, {plan.input_size})")
    if a.shape[0] == 0:
        raise ConfigError(f"{source}: holds no timesteps (shape {a.shape}); the input must be "
                          f"(timesteps, {plan.input_size})")
    if a.shape[0] > MAX_STEPS:
        raise ConfigError(f"{source}: {a.shape[0]} timesteps, more than the limit {MAX_STEPS} of one "
                          "open-loop simulation (spikeloop.runtime.simulate.MAX_STEPS); split the input")
    width = int(np.prod(a.shape[1:])) if a.ndim > 1 else 1
    if width != plan.input_size:
        raise ConfigError(f"{source}: shape {a.shape} gives {width} value(s) per timestep; the graph's input "
                          f"takes {plan.input_size} (shape (timesteps, {plan.input_size}))")
    x = a.reshape(a.shape[0], width).astype(np.float64)
    if not np.all(np.isfinite(x)):
        t, j = (int(i[0]) for i in np.nonzero(~np.isfinite(x)))
        raise ConfigError(f"{source}: contains NaN or inf (timestep {t}, value {j}: {x[t, j]})")
    return x


def read_inputs(path, plan: NetworkPlan) -> np.ndarray:
    """The ``.npy`` file at ``path`` as simulation inputs (see :func:`check_inputs`); errors name the file."""
    from pathlib import Path

    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, not a .npy file")
    if not path.is_file():
        raise ConfigError(f"{path}: no such .npy file")
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
            f.seek(0)
            if magic[:2] == b"PK":
                raise ConfigError(f"{path}: is a .npz archive (zip), not a .npy array; save one array with "
                                  "numpy.save")
            if magic != b"\x93NUMPY":
                raise ConfigError(f"{path}: not a .npy file (no NumPy header); save the array with numpy.save")
            a = np.load(f, allow_pickle=False, mmap_mode=None)
    except ConfigError:
        raise
    except ValueError as e:
        if "pickle" in str(e):
            raise ConfigError(f"{path}: holds Python objects, which would need pickle (never loaded); save "
                              "an array of numbers") from None
        raise ConfigError(f"{path}: cannot read a .npy array ({e})") from None
    except (OSError, EOFError, MemoryError, SyntaxError, tokenize.TokenError) as e:
        # numpy parses a damaged header with the tokenizer and literal_eval: their errors are the file's
        raise ConfigError(f"{path}: cannot read a .npy array (damaged header: {e})") from None
    return check_inputs(plan, a, str(path))


def input_payload(plan: NetworkPlan, inputs: np.ndarray, precision: str, source: str = "input") -> np.ndarray:
    """What the host injects per step: the inputs, or their integer payloads in fixed point."""
    x = check_inputs(plan, inputs, source)
    if precision != "fixed":
        return x
    scale = plan.encoding.scale if plan.input_graded else 1.0
    payload = x * scale
    if not np.allclose(payload, np.rint(payload), atol=1e-9):
        raise ConfigError(f"{source}: fixed-point simulation needs inputs on the payload grid: binary spikes "
                          "(0/1) for a graph without a spikeloop input encoding, or multiples of "
                          f"1/{scale:g} for one with it")
    return np.rint(payload).astype(np.int64)


def simulate(plan: NetworkPlan, inputs: np.ndarray, backend: str = "emulator", precision: str = "float",
             fixed: FixedPlan | None = None, source: str = "input") -> SimulationResult:
    """Run ``plan`` open loop on ``inputs`` (timesteps, input_size); see the module docstring.

    ``backend`` is a registered name (or an old alias); ``fixed`` the fixed-point
    registers (quantized if omitted).
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be 'float' or 'fixed', got {precision!r}")
    check_open_loop_backend(backend)
    x = input_payload(plan, inputs, precision, source)
    runner = make_backend(backend, plan, precision, fixed, windowed=False)
    rec = runner.record(x)
    n = len(x)
    res = SimulationResult(backend, precision, latency=dict(rec.latency),
                           shapes={p.name: tuple(p.shape) for p in plan.populations}, output_name=plan.output)
    for p in plan.populations:
        k = rec.latency[p.name]
        v = rec.v[p.name][k:k + n]
        if precision == "fixed":
            res.v_raw[p.name] = v.astype(np.int64)
            res.v[p.name] = v / runner.fixed.populations[p.name].scale
        else:
            res.v[p.name] = np.asarray(v, np.float64)
        if p.spiking:
            res.spikes[p.name] = (rec.spikes[p.name][k:k + n] != 0).astype(np.int8)
    out = plan.population(plan.output)
    res.output = res.spikes[out.name] if out.spiking else res.v[out.name]
    return res
