"""Saved fuzz inputs and how a crash is recognised as one already known (no atheris needed)."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from pathlib import Path

REGRESSIONS = Path(__file__).resolve().parent / "regressions"

Signature = tuple[str, str, int]


def regression_files(target: str) -> list[Path]:
    return sorted((REGRESSIONS / target).glob("*.bin"))


def crash_signature(exc: BaseException) -> Signature:
    """Exception type and the innermost frame of our code (for a broken invariant: the check that failed,
    not the ``expect`` helper): how "the same crash" is recognised."""
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if ("/auditrecv/" in f.filename or "/tests/" in f.filename) and f.name != "expect"
    ]
    if not frames:
        return (type(exc).__name__, "", 0)
    return (type(exc).__name__, frames[-1].filename, frames[-1].lineno or 0)


def known_signatures(target: str, check: Callable[[bytes], None]) -> set[Signature]:
    """The crashes the saved regression inputs of ``target`` still cause."""
    known = set()
    for path in regression_files(target):
        try:
            check(path.read_bytes())
        except Exception as exc:
            known.add(crash_signature(exc))
    return known
