"""The acceptance run: `spikeloop demo` from scratch (about 4 minutes on two cores)."""
from __future__ import annotations

import json

import pytest

from spikeloop.cli import main


@pytest.mark.slow
def test_demo_trains_deploys_and_reports(tmp_path):
    run = tmp_path / "demo"
    assert main(["demo", "--out", str(run), "--quiet"]) == 0
    report = json.loads((run / "report.json").read_text())
    ev = report["evaluation"]
    assert ev["lava_fixed"]["episodes"] >= 20
    assert ev["lava_fixed"]["mean_return"] >= 475
    assert {"torch_float", "lava_float", "lava_fixed"} <= set(ev)
    assert ev["lava_fixed"]["agreement_with_torch"] is not None
    assert {"loihi", "loihi2", "speck", "xylo"} <= set(report["energy"]["targets"])
    for name in ("policy.safetensors", "policy.nir", "report.md", "config.toml"):
        assert (run / name).is_file(), name
