"""Replay every input the fuzzer saved (tests/fuzz/regressions/<target>/*.bin) through its target.

Plain pytest, no atheris. An input whose bug is not fixed yet is listed in KNOWN_FAILURES with the exact
exception it raises; it is a strict xfail, so the fix makes it pass and the entry must then be removed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.known import REGRESSIONS
from tests.fuzz.targets import TARGETS, InvariantBroken

# "<target>/<file>": (exception type, the exact exception and why), for bugs in code this branch must not edit.
KNOWN_FAILURES: dict[str, tuple[type[BaseException], str]] = {
    "audit_remote/crash-c3ff95ca6d3f48d1.bin": (
        ValueError,
        "ValueError('no established context to ack with'): a read carrying a record and then a bad frame gives "
        "[RecordReceived, Failed]; the server still spools that record and acks it (audit_remote_server "
        "_Session._ack), but AuditRemoteConnection.ack refuses once the phase is CLOSED, so the server's "
        "connection task crashes (logged 'connection ... crashed', the close reason is lost)",
    ),
    "audisp_krb5/crash-3ce3893d83847f84.bin": (
        InvariantBroken,
        "InvariantBroken('Violation is not the last event of its read'): Krb5Session._data_token appends the "
        "frame parser's error after a Violation that frames_to_events already returned (client sent a reply "
        "type, then a bad magic in the same token): two Violations in one read",
    ),
    "spool_codec/handmade-deep-json-nesting.bin": (
        RecursionError,
        "RecursionError('maximum recursion depth exceeded while decoding a JSON array from a unicode string'): a "
        "sources row of deeply nested JSON (corrupt spool file) escapes the (TypeError, ValueError) that the "
        "spool readers (_Reader._source, _Store.__init__) catch for an unreadable source",
    ),
}


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
