"""Mutation testing of spikeloop's core modules with cosmic-ray (``make mutation``).

What it does, in order:

1. installs the pinned tool (:data:`TOOL`) into the running venv, constrained to the
   versions already installed there (so torch, nir and the rest never change);
2. copies the work tree's source and tests into a scratch folder (``build/mutation/src``)
   and mutates only that copy: an interrupted run never leaves a mutated file in the
   work tree. The copy imports as ``spikeloop`` through a symlink tree that mirrors the
   package-dir mapping of ``pyproject.toml`` (``_pkg/spikeloop/core -> core`` ...);
3. per session of :data:`SESSIONS` (one per core module, or one group for the fit
   modules): ``cosmic-ray init``, the operators filter (the operator selection of
   ``benchmarks/mutation/cosmic-ray.toml``), the design filter
   (``benchmarks/mutation/filter.py``: annotations, raise messages, ``# pragma: no
   mutate``), then ``cosmic-ray exec`` with ONE local worker, running the session's test
   stages (:data:`SESSIONS`) per mutant, in forks of a test server that has the heavy,
   never-mutated imports done (:func:`serve`; ``--no-server`` runs plain pytest processes);
4. writes the results into BENCHMARKS.md between the markers :data:`BEGIN` / :data:`END`
   (the rest of the file is kept): command, machine, date, per-module counts and score,
   and every surviving mutant with the reason it is equivalent
   (``benchmarks/mutation/equivalent.toml``).

Usage::

    .venv/bin/python benchmarks/mutation.py                    # every session, fresh
    .venv/bin/python benchmarks/mutation.py --sessions neuron,counters
    .venv/bin/python benchmarks/mutation.py --resume           # finish pending mutants of existing sessions
    .venv/bin/python benchmarks/mutation.py --retest-survivors # re-run only the survivors (after adding tests)
    .venv/bin/python benchmarks/mutation.py --sessions compiler --sample compiler=200  # a seeded random sample
    .venv/bin/python benchmarks/mutation.py --report           # only rewrite the BENCHMARKS.md section

Sessions are kept in ``build/mutation/sessions/*.sqlite``.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "benchmarks" / "mutation"
BUILD = Path(os.environ.get("SPIKELOOP_MUTATION_BUILD", ROOT / "build" / "mutation"))
SRC = BUILD / "src"
SESSIONS_DIR = BUILD / "sessions"
TOOL = "cosmic-ray==8.7.0"
BEGIN, END = "<!-- mutation:begin -->", "<!-- mutation:end -->"

PACKAGE_DIRS = {"core": "core", "train": "train", "export": "export", "runtime": "runtime",
                "hwprofiles": "hwprofiles"}
"""subpackages of ``spikeloop`` and their folders (pyproject.toml's package-dir)"""
COPY = ("core", "train", "export", "runtime", "hwprofiles", "tests", "pyproject.toml")
"""copied to the scratch folder; ``spikeloop/`` goes to ``_pkg/spikeloop`` (never beside the tests, where
``python -m pytest`` would import it from the working directory without its subpackages)"""

PYTEST = [sys.executable, "-m", "pytest", "--noconftest", "-x", "-q", "--assert=plain", "-p", "no:cacheprovider",
          "-p", "no:hypothesispytest", "-o", "addopts=", "-o", "timeout=120"]
AUDIT = [*PYTEST, "tests/test_mutation_audit.py", "-k"]
FIT_RULES = [*PYTEST, "tests/test_fit_rules.py"]


def audit(own: str, torch: bool = False) -> list[list[str]]:
    """The audit file in two stages: the module's own tests first (most mutants die there, and
    a killed mutant costs one short run), then the rest of the file (without the compiler's
    tests, which import torch, unless ``torch``)."""
    rest = f"not ({own})" + ("" if torch else " and not compiler")
    return [[*AUDIT, own], [*AUDIT, rest]]


# session: (paths to mutate, test stages run in order; the first failing stage kills the mutant)
SESSIONS: dict[str, tuple[list[str], list[list[str]]]] = {
    "neuron": (["core/neuron.py"], audit("neuron")),
    "fixed_point": (["runtime/fixed_point.py"], audit("fixed_point")),
    "emulator": (["runtime/emulator.py"], audit("emulator")),
    "counters": (["runtime/counters.py"], audit("counters")),
    "energy": (["hwprofiles/energy.py"], audit("energy")),
    "fit": (["hwprofiles/fit.py", "hwprofiles/network.py", "hwprofiles/rules"],
            [*audit("fit or network or rules"), FIT_RULES]),
    "compiler": (["runtime/compiler.py"], audit("compiler", torch=True)),
}
TIMEOUT_S = {"compiler": 30.0}
"""per-mutant limit (a mutant that runs past it counts as killed, listed as a timeout)"""
DEFAULT_TIMEOUT_S = 15.0


def sh(cmd, **kw):
    print("+", " ".join(map(str, cmd)), flush=True)
    return subprocess.run(cmd, check=True, **kw)


# ----------------------------------------------------------------------------- setup
def install_tool() -> None:
    try:
        import cosmic_ray  # noqa: F401
        from importlib.metadata import version
        if version("cosmic-ray") == TOOL.split("==")[1]:
            return
    except ImportError:
        pass
    frozen = subprocess.run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"], check=True,
                            capture_output=True, text=True).stdout
    BUILD.mkdir(parents=True, exist_ok=True)
    constraints = BUILD / "constraints.txt"
    # keep every installed package at its version (torch, nir, numpy ...); cosmic-ray adds its own
    constraints.write_text("\n".join(line for line in frozen.splitlines() if not line.startswith("cosmic")))
    sh([sys.executable, "-m", "pip", "install", "-q", TOOL, "-c", str(constraints)])


def sync_copy() -> None:
    """The scratch copy of the sources and tests, and its ``_pkg/spikeloop`` import tree."""
    if SRC.exists():
        shutil.rmtree(SRC)
    SRC.mkdir(parents=True)
    for name in COPY:
        src, dst = ROOT / name, SRC / name
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, dst)
    pkg = SRC / "_pkg" / "spikeloop"
    shutil.copytree(ROOT / "spikeloop", pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for sub, folder in PACKAGE_DIRS.items():
        (pkg / sub).symlink_to(SRC / folder, target_is_directory=True)


def env() -> dict:
    e = dict(os.environ, PYTHONPATH=str(SRC / "_pkg"), PYTHONDONTWRITEBYTECODE="1")
    return e


def check_import_path() -> None:
    out = subprocess.run([sys.executable, "-c", "import spikeloop.core.neuron as m; print(m.__file__)"],
                         cwd=SRC, env=env(), check=True, capture_output=True, text=True).stdout.strip()
    if not Path(out).resolve().is_relative_to(SRC.resolve()):
        raise SystemExit(f"the scratch copy does not shadow the installed package: {out}")


# ----------------------------------------------------------------------------- sessions
def config_for(name: str) -> Path:
    paths, _ = SESSIONS[name]
    base = (HERE / "cosmic-ray.toml").read_text()
    cmd = f"{sys.executable} {ROOT / 'benchmarks' / 'mutation.py'} --test {name}"
    text = base.replace("@MODULE_PATH@", "[" + ", ".join(f'"{p}"' for p in paths) + "]") \
        .replace("@TEST_COMMAND@", cmd).replace("@TIMEOUT@", str(TIMEOUT_S.get(name, DEFAULT_TIMEOUT_S)))
    out = BUILD / f"{name}.toml"
    out.write_text(text)
    return out


def run_stages(name: str) -> int:
    """The test command of one mutant: each stage in turn, stop at the first failure.

    With the session's test server running (:func:`serve`), the stages run in a fork of it;
    otherwise each stage is a fresh ``python -m pytest`` (same tests, same outcome, slower).
    """
    rc = _ask_server(name)
    if rc is not None:
        return rc
    for stage in SESSIONS[name][1]:
        rc = subprocess.run(stage, cwd=SRC, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
        if rc != 0:
            return rc
    return 0


# ----------------------------------------------------------------------------- test server
SOCKET = BUILD / "pytest-server.sock"
PRELOAD = ("numpy", "scipy", "h5py", "nir", "torch", "pytest", "_pytest.python", "_pytest.main",
           "_pytest.assertion.rewrite", "_pytest.fixtures", "_pytest.terminal")
"""imported once by the server, never mutated: the per-mutant cost is then the tests, not the imports
(``spikeloop`` itself is imported fresh in every fork, from the mutated scratch copy)"""
TIMED_OUT = 124


def _ask_server(name: str) -> int | None:
    import socket

    if not SOCKET.exists():
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(str(SOCKET))
            s.sendall(name.encode() + b"\n")
            answer = s.makefile().readline().strip()
    except OSError:
        return None
    rc = int(answer)
    if rc == TIMED_OUT:
        print("timeout", end="")  # what cosmic-ray records for a mutant it timed out itself
    return rc


def _run_forked(stage: list[str], limit_s: float) -> int:
    """One pytest stage in a fork of the server (clean: no spikeloop module imported yet)."""
    import signal

    pid = os.fork()
    if pid == 0:  # the child: run the stage, exit with pytest's code
        try:
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, 1)
            os.dup2(null, 2)
            import pytest
            os._exit(int(pytest.main(stage[stage.index("pytest") + 1:])))
        except BaseException:
            os._exit(3)
    deadline = time.monotonic() + limit_s
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return TIMED_OUT
        time.sleep(0.005)


def serve(name: str) -> None:
    """Answer each request (a session name) with the exit code of its stages, run in forks."""
    import importlib
    import socket

    for mod in PRELOAD:
        importlib.import_module(mod)
    assert not any(m == "spikeloop" or m.startswith("spikeloop.") for m in sys.modules), "spikeloop preloaded"
    os.chdir(SRC)
    # cosmic-ray kills the command at its timeout; stop the fork a little earlier so that the
    # next mutant never waits for a stale one
    limit = TIMEOUT_S.get(name, DEFAULT_TIMEOUT_S) - 3
    if SOCKET.exists():
        SOCKET.unlink()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as srv:
        srv.bind(str(SOCKET))
        srv.listen(1)
        while True:
            conn, _ = srv.accept()
            with conn:
                req = conn.makefile().readline().strip()
                if req == "STOP":
                    break
                t0, rc = time.monotonic(), 0
                for stage in SESSIONS[req][1]:
                    rc = _run_forked(stage, limit - (time.monotonic() - t0))
                    if rc != 0:
                        break
                try:
                    conn.sendall(f"{rc}\n".encode())
                except OSError:
                    pass
    SOCKET.unlink()


def start_server(name: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve", name], cwd=SRC, env=env())
    for _ in range(600):
        if SOCKET.exists():
            return proc
        if proc.poll() is not None:
            raise SystemExit(f"the test server of {name} did not start (exit {proc.returncode})")
        time.sleep(0.1)
    raise SystemExit("the test server did not start in 60 s")


def stop_server(proc: subprocess.Popen) -> None:
    import socket

    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(str(SOCKET))
            s.sendall(b"STOP\n")
    except OSError:
        pass
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    if SOCKET.exists():
        SOCKET.unlink()


RUN_LOG = BUILD / "runs.json"
"""one entry per session run: session, mode (fresh, resume, retest), commit, date (the report lists them)"""


def _commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    return out.stdout.strip() + ("+changes" if dirty else "")


def _log_run(name: str, mode: str) -> None:
    import json

    runs = json.loads(RUN_LOG.read_text()) if RUN_LOG.exists() else []
    if mode == "fresh":
        runs = [r for r in runs if r["session"] != name]
    runs.append({"session": name, "mode": mode, "commit": _commit(), "date": datetime.date.today().isoformat()})
    RUN_LOG.write_text(json.dumps(runs, indent=1))


def _sample(db: Path, n: int, seed: int = 0) -> None:
    """Keep a seeded random sample of ``n`` of the session's pending mutants; mark the rest 'not sampled'."""
    import random

    with sqlite3.connect(db) as c:
        pending = sorted(j for (j,) in c.execute(
            "select job_id from mutation_specs where job_id not in (select job_id from work_results)"))
        keep = set(random.Random(seed).sample(pending, min(n, len(pending))))
        c.executemany("insert into work_results (worker_outcome, output, test_outcome, diff, job_id) "
                      "values ('SKIPPED', 'not sampled', NULL, NULL, ?)", [(j,) for j in pending if j not in keep])
    print(f"{db.stem}: a random sample of {len(keep)} of {len(pending)} mutants (seed {seed})")


def run_session(name: str, mode: str, use_server: bool = True, sample: int | None = None) -> None:
    SESSIONS_DIR.mkdir(parents=True, exist_ok=True)
    cfg, db = config_for(name), SESSIONS_DIR / f"{name}.sqlite"
    cr = [sys.executable, "-m", "cosmic_ray.cli"]
    fresh = mode == "fresh" or not db.exists()
    _log_run(name, "fresh" if fresh else mode)
    if fresh:
        if db.exists():
            db.unlink()
        sh([*cr, "init", str(cfg), str(db)], cwd=SRC, env=env())
        sh([sys.executable, "-m", "cosmic_ray.tools.filters.operators_filter", str(db), str(cfg)], cwd=SRC, env=env())
        sh([sys.executable, str(HERE / "filter.py"), str(db)], cwd=SRC, env=env())
        if sample is not None:
            _sample(db, sample)
    elif mode == "retest":
        with sqlite3.connect(db) as c:
            n = c.execute("delete from work_results where lower(test_outcome) = 'survived'").rowcount
        print(f"{name}: re-testing {n} survivors")
    server = start_server(name) if use_server else None
    try:
        t0 = time.time()
        if run_stages(name) != 0:
            raise SystemExit(f"{name}: the test command fails on unmutated code; fix the tests first")
        print(f"{name}: baseline test command {time.time() - t0:.1f} s", flush=True)
        sh([*cr, "exec", str(cfg), str(db)], cwd=SRC, env=env())
        print(f"{name}: done in {time.time() - t0:.0f} s", flush=True)
    finally:
        if server is not None:
            stop_server(server)


# ----------------------------------------------------------------------------- report
def results(name: str) -> list[dict]:
    db = SESSIONS_DIR / f"{name}.sqlite"
    if not db.exists():
        return []
    with sqlite3.connect(db) as c:
        rows = c.execute(
            "select s.job_id, s.module_path, s.operator_name, s.occurrence, s.start_pos_row, s.start_pos_col, "
            "r.worker_outcome, r.test_outcome, r.output, r.diff from mutation_specs s "
            "left join work_results r on r.job_id = s.job_id").fetchall()
    keys = ("job", "module", "operator", "occurrence", "row", "col", "worker", "test", "output", "diff")
    return [dict(zip(keys, r)) for r in rows]


def classify(r: dict) -> str:
    if r["worker"] is None:
        return "pending"
    if r["worker"].lower() == "skipped":
        if r["output"] == "not sampled":
            return "not sampled"
        return "excluded (operator selection)" if r["output"] == "Filtered operator" else str(r["output"])
    if r["worker"].lower() != "normal":
        return "error"
    if r["test"].lower() == "killed":
        return "timeout" if (r["output"] or "").strip() == "timeout" else "killed"
    return r["test"].lower()


def equivalents() -> dict[str, str]:
    path = HERE / "equivalent.toml"
    return tomllib.loads(path.read_text()).get("equivalent", {}) if path.exists() else {}


def mutant_key(r: dict) -> str:
    return f"{r['module']}:{r['row']}:{r['col']}:{r['operator'].removeprefix('core/')}"


def mutated_line(r: dict) -> str:
    for line in (r["diff"] or "").splitlines():
        if line.startswith("+") and not line.startswith("+++"):
            return line[1:].strip()
    return ""


def report(command: str) -> str:
    import json

    eq = equivalents()
    lines = [BEGIN, "## Mutation testing (benchmarks/mutation.py)", ""]
    cpu = next((ln.split(":", 1)[1].strip() for ln in subprocess.run(["lscpu"], capture_output=True, text=True)
                .stdout.splitlines() if ln.startswith("Model name")), platform.processor())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    lines += [f"Command: `{command}` (cosmic-ray 8.7.0, one local worker; the runs behind the numbers are "
              f"listed under the table). Machine: {platform.platform()}, "
              f"{cpu}, {os.cpu_count()} CPUs visible, Python {platform.python_version()}. "
              f"Date: {datetime.date.today().isoformat()}; tests and sources of commit {commit}.", ""]
    lines += ["What runs per mutant (no Lava; torch only for the compiler): the mutated module's own tests of "
              "`tests/test_mutation_audit.py` (`-k <module>`), then the rest of that file (`-k 'not (<module>) "
              "and not compiler'`; the whole file for the compiler), then `tests/test_fit_rules.py` for the fit "
              "modules, each as `pytest --noconftest -x -q --assert=plain -p no:cacheprovider`, in a fork of a "
              "test server that has numpy, nir, torch and pytest imported (spikeloop itself is imported fresh in "
              "every fork, from the mutated scratch copy). A mutant is killed when a stage fails; one that runs "
              "past its limit is killed too and counted apart (timeout). Score = (killed + timeout) / (killed + "
              "timeout + survived); the last column also leaves out the survivors listed below as equivalent. "
              "'not run': mutants still pending, or left out of a seeded random sample (`--sample`).", "",
              "Excluded by design, not in the score: mutants inside annotations (never evaluated: every core "
              "module has `from __future__ import annotations`), inside the arguments of a `raise` (the text of "
              "the error; the condition that raises is mutated), on `# pragma: no mutate` lines (none so far), "
              "and the operator selection of `benchmarks/mutation/cosmic-ray.toml`: replacements across operator "
              "families (`+` by `%`, `**`, shifts or bitwise operators; shifts by arithmetic; `==` by `is` and "
              "back) and the unary replacements that repeat 'delete -' (`-x` by `+x`, `~x`, `not x`); a mutant "
              "both filters skip counts under operators, which run first. Strings and docstrings are never "
              "mutated by cosmic-ray.", ""]
    lines += ["| module | mutants | excluded: operators | excluded: by design | killed | timeout | survived "
              "| of them equivalent | not run | score | score without equivalents |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    survivors, total = [], {"n": 0, "o": 0, "x": 0, "k": 0, "t": 0, "s": 0, "e": 0, "p": 0}
    for name in SESSIONS:
        rs = results(name)
        for module in sorted({r["module"] for r in rs}):
            mr = [r for r in rs if r["module"] == module]
            cls = [classify(r) for r in mr]
            k, t, s = cls.count("killed"), cls.count("timeout"), cls.count("survived")
            p = cls.count("pending") + cls.count("not sampled")
            xo = cls.count("excluded (operator selection)")
            x = sum(c.startswith("excluded") for c in cls) - xo
            sv = [r for r, c in zip(mr, cls) if c == "survived"]
            e = sum(mutant_key(r) in eq for r in sv)
            survivors += sv
            lines.append(f"| {module} | {len(mr)} | {xo} | {x} | {k} | {t} | {s} | {e} | {p} | {_score(k + t, s)} "
                         f"| {_score(k + t, s - e)} |")
            for key, v in zip("noxktsep", (len(mr), xo, x, k, t, s, e, p)):
                total[key] += v
    k, t, s = total["k"], total["t"], total["s"]
    lines.append(f"| **all run** | {total['n']} | {total['o']} | {total['x']} | {k} | {t} | {s} | {total['e']} | "
                 f"{total['p']} | **{_score(k + t, s)}** | **{_score(k + t, s - total['e'])}** |")
    for name in SESSIONS:
        cls = [classify(r) for r in results(name)]
        if "not sampled" in cls:
            ran = len([c for c in cls if not c.startswith("excluded")]) - cls.count("not sampled")
            lines += ["", f"{name}: a seeded random sample (seed 0) of {ran} of its "
                      f"{ran + cls.count('not sampled')} mutants left after the exclusions was run "
                      "(`--sample`); the full session did not fit the time of this run."]
    missing = [n for n in SESSIONS if not results(n)]
    if missing:
        lines += ["", f"Not run: {', '.join(missing)}."]
    runs = json.loads(RUN_LOG.read_text()) if RUN_LOG.exists() else []
    if runs:
        lines += ["", "Runs behind these numbers (`fresh`: every mutant; `resume`: the pending ones after an "
                  "interruption; `retest`: the survivors again, after tests were added, and any pending; tests were only ever "
                  "added, so a mutant killed earlier stays killed):", ""]
        lines += [f"- {r['session']}: {r['mode']}, commit {r['commit']}, {r['date']}" for r in runs]
    lines += ["", "### Surviving mutants", "",
              "Key: `module:row:column:operator` (the mutated line follows). Each is either killed by a test "
              "in `tests/test_mutation_audit.py` on a later run or listed with the reason it is equivalent "
              "(`benchmarks/mutation/equivalent.toml`).", ""]
    if not survivors:
        lines.append("None.")
    for r in survivors:
        why = eq.get(mutant_key(r), "**not yet explained**")
        lines.append(f"- `{mutant_key(r)}` (`{mutated_line(r)}`): {why}")
    lines += ["", END]
    return "\n".join(lines)


def _score(killed: int, survived: int) -> str:
    return "–" if not killed + survived else f"{100 * killed / (killed + survived):.1f} %"


def write_report(command: str) -> None:
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text()
    section = report(command)
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)
    print(section)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", default=",".join(SESSIONS), help="comma-separated, of: " + ", ".join(SESSIONS))
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--resume", action="store_true", help="keep existing sessions, run their pending mutants")
    g.add_argument("--retest-survivors", action="store_true", help="re-run the survivors of existing sessions")
    g.add_argument("--report", action="store_true", help="only rewrite the BENCHMARKS.md section")
    g.add_argument("--test", metavar="SESSION", help=argparse.SUPPRESS)  # the per-mutant test command
    g.add_argument("--serve", metavar="SESSION", help=argparse.SUPPRESS)  # the session's test server
    ap.add_argument("--sample", action="append", default=[], metavar="SESSION=N",
                    help="run a seeded random sample of N mutants of a fresh session (e.g. compiler=300)")
    ap.add_argument("--no-server", action="store_true",
                    help="run each mutant's tests as fresh pytest processes (slower; same tests)")
    ap.add_argument("--command", default="make mutation", help="the command named in BENCHMARKS.md")
    args = ap.parse_args(argv)
    if args.test:
        return run_stages(args.test)
    if args.serve:
        serve(args.serve)
        return 0
    if not args.report:
        names = [n.strip() for n in args.sessions.split(",") if n.strip()]
        unknown = sorted(set(names) - set(SESSIONS))
        if unknown:
            raise SystemExit(f"unknown sessions {unknown}; expected some of {list(SESSIONS)}")
        install_tool()
        sync_copy()
        check_import_path()
        mode = "retest" if args.retest_survivors else "resume" if args.resume else "fresh"
        samples = {k: int(v) for k, v in (x.split("=", 1) for x in args.sample)}
        for name in names:
            run_session(name, mode, use_server=not args.no_server, sample=samples.get(name))
    write_report(args.command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
