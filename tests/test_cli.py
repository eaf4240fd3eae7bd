"""Smoke runs of every CLI command, on the committed trained policy and a tiny training run."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from spikeloop.cli import main

COMMANDS = ["demo", "train", "export", "run", "energy", "inspect", "simulate", "fit"]


def test_help_for_every_command(capsys):
    out = subprocess.run([sys.executable, "-m", "spikeloop", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and all(c in out.stdout for c in COMMANDS)
    for cmd in COMMANDS:
        with pytest.raises(SystemExit) as e:
            main([cmd, "--help"])
        assert e.value.code == 0 and "usage: spikeloop " + cmd in capsys.readouterr().out, cmd


def test_train_export_inspect(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--quiet", "--total-steps", "300", "--learning-starts", "100",
                 "--eval-every", "200", "--eval-episodes", "1", "--hidden", "8", "8", "--T", "4",
                 "--norm-steps", "100"]) == 0
    assert (run / "policy.safetensors").is_file() and (run / "config.toml").is_file()
    assert main(["export", str(run)]) == 0
    assert (run / "policy.nir").is_file()
    assert main(["inspect", str(run / "policy.nir")]) == 0
    out = capsys.readouterr().out
    assert "CountingLIFReset" in out and "period 7 steps = T 4 + latency 3" in out


def test_run_energy_and_simulate_on_trained_policy(trained_run, tmp_path, capsys):
    assert main(["run", str(trained_run), "--episodes", "1", "--quiet", "--profile", "loihi"]) == 0
    report = json.loads((trained_run / "report.json").read_text())
    assert report["evaluation"]["lava_fixed"]["mean_return"] >= 475
    assert (trained_run / "report.md").read_text().startswith("# spikeloop report: CartPole-v1")
    assert main(["energy", str(trained_run), "--profile", "loihi"]) == 0
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((12, 4)))
    out = tmp_path / "sim.npz"
    assert main(["simulate", str(trained_run / "policy.nir"), "--input", str(x), "--backend", "emulator",
                 "--precision", "fixed", "--out", str(out)]) == 0
    data = np.load(out)
    assert data["lif0.spikes"].shape == (12, 64) and data["li2.v"].shape == (12, 2)
    assert data["output"].shape == (12, 2)


def test_errors_exit_2_with_one_message(tmp_path, capsys):
    bad = tmp_path / "bad.nir"
    bad.write_bytes(b"not hdf5")
    assert main(["inspect", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.nir: unreadable or truncated NIR/HDF5 file" in err and "Traceback" not in err


def test_no_agent_option_shadows_the_commands_own_arguments():
    """Every config field is a `train` flag; one named like argparse's own destinations (the sub-command,
    its handler, the run folder) would overwrite them silently."""
    import dataclasses

    from spikeloop.train.agents import agent_names, get_agent

    reserved = {"command", "func", "out", "quiet", "agent", "config", "preset", "help"}
    for name in agent_names():
        clash = {f.name for f in dataclasses.fields(get_agent(name).config)} & reserved
        assert not clash, f"agent {name}: config fields {sorted(clash)} shadow train's own arguments"
