"""What the benchmark scripts share: the machine line and BENCHMARKS.md section updates."""
from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "BENCHMARKS.md"
HEADER = "# Benchmarks\n\nMeasured numbers with the commands that made them.\n"


def machine() -> str:
    """One line naming the machine, Python and commit the numbers come from."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return (f"{platform.platform()}, {cpu}, {os.cpu_count()} CPUs visible, Python {platform.python_version()}, "
            f"commit {commit}")


def update_section(title: str, body: str, path: Path = BENCHMARKS) -> None:
    """Replace the ``## title`` section of BENCHMARKS.md (or append it), keeping the others."""
    text = path.read_text() if path.exists() else HEADER
    head = f"## {title}"
    section = f"{head}\n\n{body.strip()}\n"
    if head in text:
        start = text.index(head)
        nxt = text.find("\n## ", start + len(head))
        text = text[:start] + section + ("" if nxt < 0 else text[nxt:])
    else:
        text = text.rstrip() + "\n\n" + section
    from spikeloop.core.artifacts import write_text

    write_text(path, text if text.endswith("\n") else text + "\n")
