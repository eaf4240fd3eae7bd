"""Sweeps on Ray Tune: trials as run folders, two workers at once running Lava, each trial equal to a standalone
run of its config, resume, the results table and the frontier."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spikeloop.cli import main
from spikeloop.core.errors import ConfigError
from spikeloop.sweep import RESULTS_CSV, RESULTS_PARQUET, load_sweep, pareto, run_sweep, trial_dir

DATA = Path(__file__).parent / "data"

SWEEP = """
[sweep]
agent = "bc"
seeds = [0]
workers = 2
threshold = 100.0

[config]
demos = "{demos}"
epochs = 1
eval_episodes = 1
hidden = [16]

[grid]
T = [2, 4]
sparsity_penalty = [0.0, 5.0]

[deploy]
episodes = 1
backend = "lava"
precision = "fixed"
"""


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sweep")
    demos = root / "demos.npz"
    assert main(["collect", str(DATA / "policy.safetensors"), "--out", str(demos), "--episodes", "2", "--quiet"]) == 0
    path = root / "tiny.toml"
    path.write_text(SWEEP.format(demos=demos.name))  # relative to the sweep file
    return path


@pytest.fixture(scope="module")
def swept(sweep_file) -> Path:
    out = sweep_file.parent / "tiny"
    summary = run_sweep(sweep_file, out, progress=False)
    assert summary["trials"] == summary["ran"] == 4 and summary["workers"] == 2
    return out


def _numbers(report: dict) -> dict:
    """What a trial measured (not when or where it ran)."""
    return {"evaluation": {k: {m: v[m] for m in ("returns", "decisions", "agreement_with_torch")}
                           for k, v in report["evaluation"].items()},
            "counts": report["counts_per_decision"],
            "energy": {t: e["total_J"] for t, e in report["energy"]["targets"].items()},
            "training": {k: report["training"][k] for k in ("best_eval_return_torch", "env_steps")}}


def test_two_workers_at_once_give_what_standalone_runs_of_the_same_configs_give(swept, sweep_file, tmp_path):
    from spikeloop.pipeline import demo

    sweep = load_sweep(sweep_file)
    assert sweep.base["demos"] == str(sweep_file.parent / "demos.npz")  # relative to the sweep file
    starts = []
    for t in sweep.trials:
        folder = trial_dir(swept, t)
        for name in ("config.toml", "policy.safetensors", "policy.nir", "report.json", "report.md"):
            assert (folder / name).is_file(), (t.key, name)
        alone = demo(tmp_path / t.key, sweep.agent, sweep.agent_config(t), sweep.eval_config(t), progress=False)
        assert _numbers(json.loads((folder / "report.json").read_text())) == _numbers(alone), t.point
        starts.append(json.loads((folder / "wall.json").read_text()))
    # two at once: some trial started before another had ended
    assert any(a["start"] < b["start"] < a["end"] for a in starts for b in starts if a is not b)
    assert "lava_fixed" in alone["evaluation"]  # the trials ran Lava itself, beside the emulator as its twin
    # the trials are not copies of each other
    spikes = [sum(json.loads((trial_dir(swept, t) / "report.json").read_text())["counts_per_decision"]["spikes"]
                  .values()) for t in sweep.trials]
    assert len(set(spikes)) > 1


def test_the_results_table_has_one_row_per_trial_in_csv_and_parquet(swept):
    csv, parquet = pd.read_csv(swept / RESULTS_CSV), pd.read_parquet(swept / RESULTS_PARQUET)
    assert len(csv) == len(parquet) == 4 and list(csv.columns) == list(parquet.columns)
    for col in ("return_torch", "return_deployed", "agreement", "spikes_per_decision", "synops_per_decision",
                "energy_J[loihi]", "unpriced[loihi]", "fits[loihi]", "fits[xylo]", "wall_s", "env_steps"):
        assert col in csv.columns, col
    assert csv["deployed"].eq("lava_fixed").all() and csv["energy_J[loihi]"].gt(0).all()
    assert csv["energy_J[xylo]"].isna().all()  # Xylo's chip terms are unpriced: no energy figure
    np.testing.assert_array_equal(csv["return_deployed"].to_numpy(), parquet["return_deployed"].to_numpy())


def test_a_stopped_sweep_resumes_where_it_stopped(swept, sweep_file, tmp_path):
    copy = tmp_path / "resumed"
    shutil.copytree(swept, copy)
    sweep = load_sweep(sweep_file)
    lost = sweep.trials[1]
    shutil.rmtree(trial_dir(copy, lost))  # stopped before this trial completed
    before = {t.key: (trial_dir(copy, t) / "report.json").stat().st_mtime_ns for t in sweep.trials if t != lost}
    summary = run_sweep(sweep_file, copy, progress=False)
    assert (summary["ran"], summary["resumed_from"]) == (1, 3)
    assert before == {k: (copy / "trials" / k / "report.json").stat().st_mtime_ns for k in before}
    a, b = pd.read_csv(swept / RESULTS_CSV), pd.read_csv(copy / RESULTS_CSV)
    pd.testing.assert_frame_equal(a.drop(columns=["wall_s", "train_s"]), b.drop(columns=["wall_s", "train_s"]))
    other = tmp_path / "other.toml"
    other.write_text(sweep_file.read_text().replace("threshold = 100.0", "threshold = 200.0"))
    with pytest.raises(ConfigError, match="holds the results of another sweep file"):
        run_sweep(other, copy, progress=False)


def test_the_frontier_names_the_cheapest_configuration_that_meets_the_threshold(swept, capsys):
    assert main(["frontier", str(swept), "--threshold", "0"]) == 0
    md = (swept / "frontier.md").read_text()
    assert (swept / "frontier.png").stat().st_size > 0
    assert "### loihi: return against energy per decision (J)" in md
    assert "### xylo: return against spikes per decision (unpriced)" in md
    assert "Cheapest configuration at ≥ 0: **" in md and "cheapest at >= 0" in capsys.readouterr().out


def test_pareto_keeps_what_nothing_beats():
    pts = [(500, 3.0), (500, 2.0), (400, 1.0), (300, 1.5), (450, 1.0)]
    assert pareto(pts) == [4, 1]  # (450, 1.0) beats (400, 1.0); (500, 2.0) beats (500, 3.0)


@pytest.mark.parametrize("edit,message", [
    (("agent = \"bc\"", "agent = \"sdt\""), "agent 'sdt' does not deploy"),
    (("T = [2, 4]", "T = 4"), r"\[grid\] T must be a non-empty list"),
    (("T = [2, 4]", "T = [2, 0]"), "trial .* seed 0: config field 'T'"),
    (("backend = \"lava\"", "backend = \"lava\"\nbogus = 2"), r"unknown deploy options \['bogus'\]"),
    (("epochs = 1", "epochs = 1\nbogus = 2"), r"unknown BC config keys \['bogus'\]"),
    (("workers = 2", "workers = 2\nscheduler = \"asha\""), r"unknown \[sweep\] keys \['scheduler'\]"),
])
def test_a_bad_sweep_file_is_refused_before_any_trial_runs(sweep_file, tmp_path, edit, message, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(sweep_file.read_text().replace(*edit))
    with pytest.raises(ConfigError, match=message):
        load_sweep(bad)
    assert main(["sweep", str(bad), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert not (tmp_path / "out").exists()
