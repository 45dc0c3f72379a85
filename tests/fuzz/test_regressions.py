"""Replay every input the fuzzer saved (tests/fuzz/regressions/<target>/*.bin) through its target.

Plain pytest, no atheris. An input whose bug is not fixed yet is listed in KNOWN_FAILURES with the exact
exception it raises; it is a strict xfail, so the fix makes it pass and the entry must then be removed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.known import REGRESSIONS
from tests.fuzz.targets import TARGETS

# "<target>/<file>": (exception type, the exact exception and why), for bugs in code this branch must not edit.
KNOWN_FAILURES: dict[str, tuple[type[BaseException], str]] = {}


def _cases() -> list[object]:
    cases: list[object] = []
    for path in sorted(REGRESSIONS.glob("*/*.bin")):
        key = f"{path.parent.name}/{path.name}"
        marks = []
        if key in KNOWN_FAILURES:
            exc_type, reason = KNOWN_FAILURES[key]
            marks.append(pytest.mark.xfail(strict=True, raises=exc_type, reason=reason))
        cases.append(pytest.param(path, id=key, marks=marks))
    return cases


@pytest.mark.parametrize("path", _cases())
def test_saved_fuzz_input(path: Path) -> None:
    TARGETS[path.parent.name].check(path.read_bytes())


def test_known_failures_name_saved_inputs() -> None:
    """A stale entry (input renamed or deleted) would silently stop guarding its bug."""
    missing = [key for key in KNOWN_FAILURES if not (REGRESSIONS / key).is_file()]
    assert missing == []
    assert {p.parent.name for p in REGRESSIONS.glob("*/*.bin")} <= set(TARGETS)
