"""Two `spikeloop run` processes and an unrelated program using POSIX shared memory, at once.

Both runs finish with the same results (they are seeded the same, and each checks every
Lava fixed-point decision against the bit-exact emulator as it runs), leave no process or
segment of theirs behind, and the other program's segments survive with their content:
one held open by a program that runs throughout, one created and closed (not unlinked) by a
program that ran and exited while both runtimes were up. Cleanup is by ownership, in the
one /dev/shm they all share.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time

from conftest import DATA
from test_signals import SHM, WORKERS, runs, workdir  # noqa: F401  (fixtures)

PATTERN = "bytes((i * 7 + 3) % 256 for i in range(8192))"

HOLDER = f"""\
import sys
from multiprocessing import shared_memory
seg = shared_memory.SharedMemory(create=True, size=8192)
seg.buf[:] = {PATTERN}
print(seg.name, flush=True)
sys.stdin.read()  # held open until the test closes stdin
seg.close()
seg.unlink()
"""

CREATE_AND_CLOSE = f"""\
from multiprocessing import resource_tracker, shared_memory
seg = shared_memory.SharedMemory(create=True, size=8192)
seg.buf[:] = {PATTERN}[::-1]
print(seg.name, flush=True)
seg.close()  # closed, not unlinked: the segment stays for whoever uses it next
resource_tracker.unregister(seg._name, "shared_memory")  # nor unlinked by Python at exit
"""

EXPECTED = eval(PATTERN)


def _evaluation(run_dir) -> dict:
    """What must not depend on what else runs on the machine: returns, agreement, counts."""
    report = json.loads((run_dir / "report.json").read_text())
    ev = {k: {f: v[f] for f in ("returns", "decisions", "agreement_with_torch", "q_max_abs_diff_vs_torch")}
          for k, v in report["evaluation"].items()}
    return {"evaluation": ev, "counts_per_decision": report["counts_per_decision"]}


def test_two_runs_and_another_shared_memory_user_at_once(workdir, runs):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    closed_name = None
    try:
        held_name = holder.stdout.readline().strip()
        assert (SHM / held_name).exists()
        outs = [workdir / "a", workdir / "b"]
        both = [runs(["run", str(DATA / "policy.nir"), "--episodes", "2", "--profile", "loihi", "--quiet",
                      "--out", str(out)], workdir / f"run-{out.name}", private=False) for out in outs]
        for run in both:  # the fused mapping (the default), Lava float first
            run.wait_for_lava(WORKERS["fused"], timeout=180)
        closed = subprocess.run([sys.executable, "-c", CREATE_AND_CLOSE], capture_output=True, text=True,
                                timeout=60, check=True)
        closed_name = closed.stdout.strip()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and any(r.proc.poll() is None for r in both):
            for run in both:
                if run.proc.poll() is None:
                    run.record()
            time.sleep(0.1)
        statuses = [run.finish(timeout=10) for run in both]
        assert statuses == [0, 0], [run.err()[-3000:] for run in both]
        for run in both:
            assert "Traceback" not in run.err(), run.err()[-3000:]
        first, second = (_evaluation(out) for out in outs)
        assert first == second, "two runs seeded the same disagree when run at once"
        assert set(first["evaluation"]) == {"torch_float", "lava_float", "lava_fixed"}
        assert all(len(v["returns"]) == 2 for v in first["evaluation"].values())
        for run in both:
            assert run.segments, "no segment of a run was seen: the leak check would be vacuous"
            assert held_name not in run.segments and closed_name not in run.segments
            procs, segs = run.leftovers()
            assert not procs, f"processes of a run outlived it: {procs}"
            assert not segs, f"shared-memory segments of a run outlived it: {segs}"
        assert (SHM / held_name).read_bytes() == EXPECTED, "another program's open segment was changed"
        assert (SHM / closed_name).read_bytes() == EXPECTED[::-1], "another program's closed segment was lost"
        assert holder.poll() is None, "the other program did not survive the runs"
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
        if closed_name:
            (SHM / closed_name).unlink(missing_ok=True)
