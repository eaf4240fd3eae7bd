"""Copyleft and unlicensed packages stay off spikeloop's runtime path.

Rockpool (AGPL-3.0) and xylosim (no licence declared) may be test dependencies only;
MinAtar (GPL-3.0) is imported only when a MinAtar environment is made. Importing every
spikeloop module, and running a command, must load none of them.
"""
from __future__ import annotations

import subprocess
import sys

FOREIGN = ("rockpool", "xylosim", "minatar", "samna")

PROBE = f"""
import pkgutil, importlib, sys
PACKAGES = ["spikeloop", "spikeloop.core", "spikeloop.train", "spikeloop.train.agents", "spikeloop.export",
            "spikeloop.runtime", "spikeloop.runtime.lava_procs", "spikeloop.hwprofiles", "spikeloop.hwprofiles.rules"]
count = 0
for name in PACKAGES:
    pkg = importlib.import_module(name)
    for m in pkgutil.iter_modules(pkg.__path__, name + "."):
        if not m.name.endswith("__main__"):  # runs the CLI
            importlib.import_module(m.name)
            count += 1
assert count > 40, count
from spikeloop.core.envs import make_env
make_env("CartPole-v1", seed=0).close()
loaded = sorted({{n.split(".")[0] for n in sys.modules}} & set({FOREIGN!r}))
print(",".join(loaded))
"""


def test_no_copyleft_or_unlicensed_package_is_imported_by_spikeloop():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "", f"spikeloop imported {out.stdout.strip()}"


def test_minatar_is_imported_only_when_a_minatar_environment_is_made():
    probe = ("import sys\nfrom spikeloop.core.envs import make_env\nassert 'minatar' not in sys.modules\n"
             "make_env('MinAtar/Breakout-v1', seed=0).close()\nprint('minatar' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "True"
