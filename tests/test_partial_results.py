"""A run stopped part way (Ctrl-C, or an exception) leaves what it completed, marked incomplete.

The report is not written (it would describe a run that did not happen); ``partial.json``
holds the summaries of the episodes that completed, each run marked ``complete: false``
where it was cut short.
"""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time

import torch

from conftest import random_policy
from spikeloop.core.nir_io import write_graph
from spikeloop.export.to_nir import export_policy


def test_ctrl_c_leaves_the_completed_episodes_marked_incomplete(tmp_path):
    policy, _ = random_policy(sizes=(4, 8, 2), T=2, dtype=torch.float32)
    graph = tmp_path / "tiny.nir"  # an untrained policy: episodes of a few steps, many a second
    write_graph(graph, export_policy(policy, 1e-3, {"env_id": "CartPole-v1"}))
    out = tmp_path / "run"
    # the command as a user runs it, in its own process, Ctrl-C'd once its progress bar shows episodes done
    proc = subprocess.Popen([sys.executable, "-m", "spikeloop", "run", str(graph), "--out", str(out), "--backend",
                             "emulator", "--precision", "fixed", "--episodes", "1000000", "--profile", "loihi"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    chunks: list[str] = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: proc.stderr.read(256), "")), daemon=True)
    reader.start()
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            done = re.findall(r"(\d+)/1000000", "".join(chunks[-8:]))
            if done and int(done[-1]) >= 20:
                break
            time.sleep(0.1)
        t0 = time.time()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
        reader.join(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = "".join(chunks)
    code = proc.returncode
    assert code == 130 and time.time() - t0 < 60, err
    assert "the episodes completed so far are in" in err and "interrupted" in err
    assert not (out / "report.json").exists()
    partial = json.loads((out / "partial.json").read_text())
    assert partial["complete"] is False and partial["stopped_by"] in ("KeyboardInterrupt", "Interrupted: SIGINT")
    run = partial["evaluation"]["emulator_fixed"]
    assert run["complete"] is False and 0 < run["episodes"] < 1_000_000
    assert len(run["returns"]) == run["episodes"] and run["mean_length"] == run["decisions"] / run["episodes"]
    assert all(r >= 1 for r in run["returns"])
