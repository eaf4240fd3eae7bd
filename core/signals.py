"""One way a signal stops spikeloop: SIGINT, SIGTERM and SIGHUP all become Ctrl-C, once.

While :func:`handled` is active (the CLI around a whole command; a Lava runtime while it is
started, through :func:`enter`/:func:`leave`), SIGTERM and SIGHUP take the path of
Ctrl-C: they raise :class:`Interrupted`, a ``KeyboardInterrupt`` carrying the signal, in
the main thread, so every ``with`` block on the way out runs and frees what it holds.

- Only the first signal is raised. Later ones (a second Ctrl-C while the runtime is being
  stopped) are absorbed until the outermost :func:`handled` ends: they can neither abort
  the cleanup nor change the exit status (:func:`exit_status`, 128 + the first signal).
- Inside :func:`shielded` (a runtime's cleanup) a signal is held and raised when the
  block ends, so a cleanup is never cut in half.
- A signal whose disposition is "ignore" (``nohup``, a background job) stays ignored, and
  a handler the host program installed itself is left alone. Everything is restored when
  the outermost block ends.
- A process forked meanwhile does not run these handlers: it gets the dispositions from
  before (:func:`quiet_worker` makes a runtime's worker leave the signal to its parent).

Signal handlers run in the main thread only; from another thread this module does nothing.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""the signals that stop a run: Ctrl-C, ``kill``, the terminal going away"""


class Interrupted(KeyboardInterrupt):
    """A run stopped by a signal (SIGINT, SIGTERM or SIGHUP); ``signum`` says which."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_status(exc: BaseException) -> int:
    """The exit status of a run stopped by ``exc``: 128 + the signal (130 for a plain Ctrl-C)."""
    return 128 + int(getattr(exc, "signum", signal.SIGINT))


def describe(exc: BaseException) -> str:
    """``interrupted``, naming the signal when it was not Ctrl-C."""
    signum = int(getattr(exc, "signum", signal.SIGINT))
    return "interrupted" if signum == signal.SIGINT else f"interrupted ({signal.Signals(signum).name})"


def say(line: str) -> None:
    """Print ``line`` on stderr; a terminal that is gone (SIGHUP) is not an error."""
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


# --------------------------------------------------------------------------- state (main thread)
_depth = 0
"""how many :func:`enter` calls are active"""
_saved: dict[int, object] = {}
"""signal -> the disposition it had before the outermost :func:`enter`"""
_raised: int | None = None
"""the signal already raised as :class:`Interrupted` (later ones are absorbed)"""
_held: int | None = None
"""a signal that arrived inside :func:`shielded`, raised when the shield ends"""
_shields = 0


def _on_signal(signum, frame) -> None:
    global _raised, _held
    if _raised is not None:  # already stopping: let the cleanup finish
        return
    if _shields:
        if _held is None:
            _held = signum
        return
    _raised = signum
    raise Interrupted(signum)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def enter() -> bool:
    """Start turning SIGINT/SIGTERM/SIGHUP into :class:`Interrupted` (nestable).

    Returns a token for :func:`leave`: ``False`` where nothing was done (not the main thread).
    """
    global _depth
    if not _in_main_thread():
        return False
    if _depth == 0:
        _saved.clear()
        for s in SIGNALS:
            current = signal.getsignal(s)
            if current is signal.SIG_DFL or (s == signal.SIGINT and current is signal.default_int_handler):
                _saved[s] = current
                signal.signal(s, _on_signal)
    _depth += 1
    return True


def leave(token: bool) -> None:
    """End one :func:`enter`; the outermost restores the dispositions from before."""
    global _depth, _raised, _held
    if not token or _depth == 0:
        return
    _depth -= 1
    if _depth == 0:
        for s, previous in _saved.items():
            if signal.getsignal(s) is _on_signal:
                signal.signal(s, previous)
        _saved.clear()
        _raised = _held = None


@contextmanager
def handled() -> Iterator[None]:
    """A block in which SIGINT, SIGTERM and SIGHUP raise :class:`Interrupted`, once."""
    token = enter()
    try:
        yield
    finally:
        leave(token)


@contextmanager
def shielded() -> Iterator[None]:
    """A block (a cleanup) that a signal does not interrupt: it is raised when the block ends.

    Outside :func:`handled` (no handler of ours installed) this changes nothing.
    """
    global _shields, _held, _raised
    if not _in_main_thread():
        yield
        return
    _shields += 1
    try:
        yield
    finally:
        _shields -= 1
        if _shields == 0 and _held is not None and _raised is None and _depth:
            _raised, _held = _held, None
            raise Interrupted(_raised)


def ignore_until_exit() -> None:
    """The process is ending on a signal: ignore SIGINT, SIGTERM and SIGHUP from now on.

    For a program's entry point once it has stopped on a signal and cleaned up: a further
    signal during the interpreter's own shutdown (which restores the default dispositions
    early) would otherwise still kill the process and change its exit status.
    """
    if not _in_main_thread():
        return
    for s in SIGNALS:
        signal.signal(s, signal.SIG_IGN)


def quiet_worker() -> None:
    """In a forked worker of a runtime: leave Ctrl-C and hangup to the parent.

    A terminal sends them to the whole process group; the parent stops its workers (with
    SIGTERM, which keeps its default: the worker ends at once, silently).
    """
    for s, disposition in ((signal.SIGINT, signal.SIG_IGN), (signal.SIGHUP, signal.SIG_IGN),
                           (signal.SIGTERM, signal.SIG_DFL)):
        try:
            signal.signal(s, disposition)
        except (OSError, ValueError):
            pass


def _after_fork_in_child() -> None:
    """A forked child starts with the dispositions from before, not the parent's handlers."""
    global _depth, _raised, _held, _shields
    if _depth:
        for s, previous in _saved.items():
            try:
                signal.signal(s, previous)
            except (OSError, ValueError):
                pass
    _saved.clear()
    _depth = _shields = 0
    _raised = _held = None


os.register_at_fork(after_in_child=_after_fork_in_child)
