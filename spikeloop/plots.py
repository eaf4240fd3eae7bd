"""Figures of a run: the energy breakdown per target, a spike raster of one episode, a training log.

matplotlib's object API with the Agg canvas (no pyplot, no display, no global state);
files are written atomically next to the report.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from spikeloop.core.artifacts import atomic_path

BREAKDOWN_PNG, RASTER_PNG = "energy_breakdown.png", "raster.png"


def _save(fig, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    return Path(path)


def plot_energy_breakdown(energy: dict, path: Path) -> Path:
    """Stacked bars of the priced dynamic terms per target, beside the dense-ANN baselines.

    Static power is drawn separately (it is a whole-chip figure that dwarfs the dynamic
    terms); unpriced terms are named under their bar, never drawn with a guessed size.
    """
    from matplotlib.figure import Figure

    targets = energy["targets"]
    names = list(targets) + [f"dense {p}" for p in energy["baselines"]]
    term_names: list[str] = []
    for rep in targets.values():
        for t in rep["terms"]:
            if t["energy_J"] is not None and t["constant"] != "static_power" and t["name"] not in term_names:
                term_names.append(t["name"])
    fig = Figure(figsize=(11, 4.8))
    ax, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    x = np.arange(len(names))
    bottom = np.zeros(len(names))
    colors = [f"C{i}" for i in range(10)]
    for i, term in enumerate(term_names):
        vals = np.array([sum(t["energy_J"] for t in rep["terms"] if t["name"] == term and t["energy_J"] is not None)
                         for rep in targets.values()] + [0.0] * len(energy["baselines"]))
        ax.bar(x, vals * 1e9, bottom=bottom * 1e9, label=term, color=colors[i % 10])
        bottom += vals
    base = np.array([0.0] * len(targets) + [b["total_J"] for b in energy["baselines"].values()])
    ax.bar(x, base * 1e9, color="0.6", label="dense MACs (45 nm)")
    labels = [f"{n}\n({len(rep['unpriced'])} unpriced)" if rep["unpriced"] else n for n, rep in targets.items()]
    ax.set_xticks(x, labels + names[len(targets):], rotation=30, fontsize=7)
    ax.set_ylabel("dynamic energy per decision (nJ)")
    ax.set_title("Priced dynamic terms (measured counts × cited constants)", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.28), ncol=3, frameon=False)
    totals = [(n, rep["chip_J"], rep["static_J"]) for n, rep in targets.items() if rep.get("chip_J")]
    if totals:
        y = np.arange(len(totals))
        ax2.barh(y, [t - s for _, t, s in totals], color="C0", label="dynamic on chip (priced)")
        ax2.barh(y, [s for _, _, s in totals], left=[t - s for _, t, s in totals], color="0.3",
                 label="static power × window")
        ax2.set_yticks(y, [n for n, _, _ in totals], fontsize=8)
        ax2.set_xscale("log")
        ax2.set_xlim(min(t - s for _, t, s in totals) / 3, max(t for _, t, _ in totals) * 3)
        ax2.set_xlabel("energy per decision (J, log scale)")
        ax2.set_title("Chip total of priced terms (targets with any)", fontsize=9)
        ax2.legend(fontsize=7)
    return _save(fig, path)


def record_episode(plan, env_id: str, seed: int, fixed=None, max_decisions: int | None = None) -> dict:
    """Spikes of every spiking population over one closed-loop episode, in Loihi fixed point.

    Uses the numpy emulator, which is bit-exact with Lava's ``fixed_pt`` models (the
    parity tests hold it to that on every spike and voltage), with the runner's host
    codec: encode the observation, run a decision window, decode the readout, argmax.
    """
    from spikeloop.runtime.emulator import Emulator
    from spikeloop.runtime.fixed_point import quantize_plan
    from spikeloop.core.coding import greedy_action
    from spikeloop.core.envs import make_env

    fixed = fixed if fixed is not None else quantize_plan(plan)
    em = Emulator(plan, "fixed", fixed)
    codec, win = em.codec, em.window
    spiking = [p.name for p in plan.populations if p.spiking]
    trains: dict[str, list[np.ndarray]] = {k: [] for k in spiking}
    env = make_env(env_id)
    obs, _ = env.reset(seed=seed)
    ret, done, actions = 0.0, False, []
    try:
        while not done and (max_decisions is None or len(actions) < max_decisions):
            x = codec.encode(obs)
            zero = np.zeros_like(np.asarray(x))
            out = []
            for k in range(win.period):  # Emulator.decide, keeping every step's spikes
                rec = em.step(x if win.holds(k) else zero)
                for name in spiking:
                    trains[name].append(np.asarray(rec[name][0], bool))
                if win.output_row(k) is not None:
                    out.append(em.output_of(rec))
            em.ops.decisions += 1
            action = greedy_action(codec.decode(np.asarray(out)))
            actions.append(int(action))
            obs, r, term, trunc, _ = env.step(action)
            ret += float(r)
            done = term or trunc
    finally:
        env.close()
    return {"spikes": {k: np.array(v) for k, v in trains.items()}, "period": plan.period, "T": plan.T,
            "decisions": len(actions), "return": ret, "seed": seed, "env_id": env_id,
            "counts": em.counts().per_decision()}


def plot_raster(record: dict, path: Path, zoom_decisions: int = 4) -> Path:
    """Spike raster of the episode (top) and of its first decisions with window boundaries (bottom)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 6))
    top, bottom = fig.subplots(2, 1, gridspec_kw={"height_ratios": [3, 2]})
    period = record["period"]
    offset, ticks = 0, []
    for i, (name, s) in enumerate(record["spikes"].items()):
        steps, idx = np.nonzero(s)
        for ax, keep in ((top, slice(None)), (bottom, steps < zoom_decisions * period)):
            ax.scatter(steps[keep], idx[keep] + offset, s=1.5 if ax is top else 6, marker="|",
                       color=f"C{i}", label=f"{name} ({s.shape[1]} neurons)")
        ticks.append((offset + s.shape[1] / 2, name))
        offset += s.shape[1] + 4
    n_steps = max((s.shape[0] for s in record["spikes"].values()), default=0)
    top.set_title(f"{record['env_id']}, episode reset with seed {record['seed']}: {record['decisions']} decisions, "
                  f"return {record['return']:.0f} ({n_steps} Lava steps; emulator in Loihi fixed point, "
                  "bit-exact with Lava fixed_pt)", fontsize=9)
    top.set_xlim(0, max(n_steps, 1))
    for k in range(zoom_decisions + 1):
        bottom.axvline(k * period - 0.5, color="0.5", lw=0.6, ls="--")
    bottom.set_xlim(-0.5, zoom_decisions * period - 0.5)
    bottom.set_title(f"first {zoom_decisions} decisions: {period} steps each (window T = {record['T']} + "
                     "pipeline latency)", fontsize=9)
    for ax in (top, bottom):
        ax.set_yticks([t for t, _ in ticks], [n for _, n in ticks], fontsize=8)
        ax.set_xlabel("Lava timestep")
    top.legend(fontsize=7, loc="upper right", markerscale=4)
    fig.tight_layout()
    return _save(fig, path)


def plot_training_log(rows: list[dict], path: Path) -> Path:
    """One panel per logged quantity of a training run (return, losses, entropy, learning rate,
    firing rates, gradient norm) against the episode (or, for an agent that logs per update, the step)."""
    from matplotlib.figure import Figure

    x = next((k for k in ("episode", "step", "epoch") if all(k in r for r in rows)), None)
    if x is None:  # no column every row has: the row's index
        rows, x = [{"row": i, **r} for i, r in enumerate(rows)], "row"
    keys = [k for k in dict.fromkeys(k for r in rows for k in r)
            if k not in (x, "update") and all(isinstance(r.get(k, 0.0), (int, float)) for r in rows)]
    cols = 3
    fig = Figure(figsize=(4 * cols, 2.4 * -(-len(keys) // cols)))
    axes = fig.subplots(-(-len(keys) // cols), cols, squeeze=False).reshape(-1)
    episodes = [r[x] for r in rows]
    for ax, key in zip(axes, keys):
        points = [(e, r[key]) for e, r in zip(episodes, rows) if key in r]
        ax.plot(*zip(*points), lw=0.9, marker="o" if key == "eval_mean" else None, ms=3)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel(x, fontsize=8)
    for ax in axes[len(keys):]:
        ax.set_visible(False)
    fig.tight_layout()
    return _save(fig, path)


def write_energy_figures(run_dir: Path, plan, energy: dict, env_id: str | None, seed: int) -> dict:
    """Write the breakdown chart and (with an environment) the raster of one episode; describe them."""
    run_dir = Path(run_dir)
    figures = {"breakdown": plot_energy_breakdown(energy, run_dir / BREAKDOWN_PNG).name}
    if env_id and plan.encoding is not None:
        rec = record_episode(plan, env_id, seed)
        figures["raster"] = plot_raster(rec, run_dir / RASTER_PNG).name
        figures["raster_episode"] = {"env_id": env_id, "seed": seed, "decisions": rec["decisions"],
                                     "return": rec["return"], "steps": int(rec["decisions"] * rec["period"]),
                                     "spikes": {k: int(v.sum()) for k, v in rec["spikes"].items()},
                                     "source": "numpy emulator in Loihi fixed point (bit-exact with Lava "
                                               "fixed_pt; tests/test_parity.py)"}
    return figures
