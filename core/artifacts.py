"""Run folders and atomic writes: a crash never leaves a half-written artifact.

One discipline for every command that writes:

1. before any work, :func:`check_output_file` / :func:`check_output_dir` refuse an output
   path that cannot be written (a directory where a file goes, a file where a folder goes,
   a read-only place), naming it;
2. only after all the work succeeded, :func:`write_files` (a command's set of files) or
   :func:`atomic_path` (one file) write: each file goes to a temporary name first and is
   renamed into place once written; a folder that did not exist is created only then, as a
   whole, by one rename. A failure before that point leaves every existing file as it was
   and creates nothing.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from spikeloop.core.errors import ConfigError


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _existing_ancestor(path: Path) -> Path:
    """The nearest ancestor of ``path`` (or ``path`` itself) that exists."""
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _probe_writable(directory: Path, target: Path) -> None:
    """Create and remove a temporary file in ``directory``: the only test that also holds for root."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".spikeloop-probe.", dir=directory)
    except OSError as e:
        raise ConfigError(f"{target}: cannot write into {directory} ({e.strerror or e})") from None
    os.close(fd)
    os.unlink(probe)


def _check_parent(path: Path) -> None:
    """Every existing ancestor of ``path`` must be a directory, and the nearest one writable."""
    anc = _existing_ancestor(path.parent)
    if not anc.is_dir():
        raise ConfigError(f"{path}: cannot write there: {anc} is not a directory")
    _probe_writable(anc, path)


def check_output_file(path: str | Path) -> Path:
    """Refuse, before any work, an output file path that cannot be written; return it as a Path."""
    try:
        path = Path(path)
    except TypeError:
        raise ConfigError(f"an output path must be a path, got {path!r}") from None
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory; give the path of the file to write")
    if path.exists() and not path.is_file():
        raise ConfigError(f"{path}: exists and is not a regular file")
    _check_parent(path)
    return path


def check_output_dir(path: str | Path) -> Path:
    """Refuse, before any work, a run folder that cannot be written; return it as a Path."""
    try:
        path = Path(path)
    except TypeError:
        raise ConfigError(f"an output folder must be a path, got {path!r}") from None
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"{path}: exists and is not a directory; give a run folder")
        _probe_writable(path, path)
        return path
    _check_parent(path)
    return path


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    On an exception the temporary file is removed and ``path`` is left untouched. Missing
    parent folders are created only when the file is complete.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory; give the path of the file to write")
    stage_dir = path.parent if path.parent.is_dir() else _existing_ancestor(path.parent)
    if not stage_dir.is_dir():
        raise ConfigError(f"{path}: cannot write there: {stage_dir} is not a directory")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=stage_dir)
    except OSError as e:
        raise ConfigError(f"{path}: cannot write into {stage_dir} ({e.strerror or e})") from None
    os.close(fd)
    tmp = Path(tmp)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; artifacts get the usual permissions
    try:
        yield tmp
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


Writer = Callable[[Path], object]
"""writes one complete file at the path it is given"""


def write_files(directory: str | Path, files: dict[str, Writer]) -> list[Path]:
    """Write a command's files into ``directory`` at once, at the end of the command.

    Every file is first written under a temporary name (``files[name](tmp_path)``); only
    when all are complete are they renamed into place, so a failure in any writer leaves
    the folder as it was. A ``directory`` that does not exist is assembled as a temporary
    folder and renamed into place as a whole: it exists complete or not at all.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{directory}: exists and is not a directory; give a run folder")
    if directory.is_dir():
        tmps: dict[str, Path] = {}
        try:
            for name, write in files.items():
                fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
                os.close(fd)
                tmps[name] = Path(tmp)
                os.chmod(tmp, 0o666 & ~_umask())
                write(Path(tmp))
            for name, tmp in tmps.items():
                os.replace(tmp, directory / name)
        finally:
            for tmp in tmps.values():
                tmp.unlink(missing_ok=True)
        return [directory / name for name in files]
    anc = _existing_ancestor(directory.parent)
    if not anc.is_dir():
        raise ConfigError(f"{directory}: cannot write there: {anc} is not a directory")
    stage = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=anc))
    try:
        os.chmod(stage, 0o777 & ~_umask())
        for name, write in files.items():
            write(stage / name)
            if (stage / name).exists():
                os.chmod(stage / name, 0o666 & ~_umask())
        directory.parent.mkdir(parents=True, exist_ok=True)
        os.rename(stage, directory)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
    return [directory / name for name in files]


def write_text(path: str | Path, text: str) -> Path:
    """Atomically write a text file (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | Path, obj) -> Path:
    """Atomically write JSON (sorted keys, 2-space indent)."""
    return write_text(path, json_text(obj))


def json_text(obj) -> str:
    """The JSON text :func:`write_json` writes."""
    return json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n"


def _jsonable(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
