"""A cosmic-ray work-db filter: skip the mutants that cannot change behaviour by design.

Marked SKIPPED (and counted as excluded, not in the score), each with its reason:

- ``annotation``: inside a type annotation. Every core module starts with
  ``from __future__ import annotations``, so annotations are strings that are never
  evaluated (``int | None`` -> ``int & None`` runs the same).
- ``raise-message``: inside the arguments of a ``raise`` statement, i.e. the text of an
  error message (the condition that decides to raise is mutated as usual; only the
  message built after that decision is skipped).
- ``pragma``: a line marked ``# pragma: no mutate`` (the reason is on that line).

Usage: ``python benchmarks/mutation/filter.py SESSION.sqlite``.
"""
from __future__ import annotations

import ast
import sys
from functools import lru_cache
from pathlib import Path

from cosmic_ray.tools.filters.filter_app import FilterApp
from cosmic_ray.work_item import WorkerOutcome, WorkResult


@lru_cache
def excluded_spans(path: str) -> tuple[tuple[str, tuple[int, int], tuple[int, int]], ...]:
    """(reason, start, end) spans of ``path`` whose mutants are skipped; positions are (row 1-based, col)."""
    text = Path(path).read_text()
    tree = ast.parse(text)
    spans = []

    def add(reason, node):
        spans.append((reason, (node.lineno, node.col_offset), (node.end_lineno, node.end_col_offset)))

    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.returns is not None:
                add("annotation", node.returns)
            a = node.args
            for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]:
                if arg is not None and arg.annotation is not None:
                    add("annotation", arg.annotation)
        elif isinstance(node, ast.AnnAssign):
            add("annotation", node.annotation)
        elif isinstance(node, ast.Raise) and node.exc is not None:
            add("raise-message", node.exc)
    for i, line in enumerate(text.splitlines(), 1):
        if "pragma: no mutate" in line:
            spans.append(("pragma", (i, 0), (i, len(line) + 1)))
    return tuple(spans)


def reason_for(path: str, start: tuple[int, int]) -> str | None:
    for reason, lo, hi in excluded_spans(path):
        if lo <= tuple(start) < hi:
            return reason
    return None


class DesignFilter(FilterApp):
    """Skip mutants in annotations, raise messages and lines marked '# pragma: no mutate'."""

    def description(self):
        return __doc__

    def filter(self, work_db, args):
        for item in work_db.pending_work_items:
            for mutation in item.mutations:
                reason = reason_for(str(mutation.module_path), mutation.start_pos)
                if reason:
                    work_db.set_result(item.job_id, WorkResult(output=f"excluded: {reason}",
                                                               worker_outcome=WorkerOutcome.SKIPPED))
                    break


if __name__ == "__main__":
    sys.exit(DesignFilter().main())
