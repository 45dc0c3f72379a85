"""The chaos suite's own counting: it must see a loss, a duplicate, a stray or split document (no engine)."""

from __future__ import annotations

import base64
from collections import Counter

import pytest

from tests.chaos.support import Case, Holdings, assert_exactly_once, assert_no_record_twice_in_an_event, markers_in

pytestmark = pytest.mark.chaos


def _held(case: Case, markers: list[str], **extra: object) -> Holdings:
    fields: dict[str, object] = {
        "unmarked": [],
        "fragments": [],
        "multi_marked": [],
        "doubled_records": {},
        "largest_source": 0,
        "pieces": 0,
        "observers": Counter(),
    }
    fields.update(extra)
    per_marker = Counter(markers)
    return Holdings(
        docs=len(markers) + len(fields["unmarked"]) + len(fields["fragments"]),  # type: ignore[arg-type]
        per_marker=per_marker,
        indices={m: case.prefix + "-x" for m in per_marker},
        **fields,  # type: ignore[arg-type]
    )


def test_every_kind_of_miscount_is_reported() -> None:
    case = Case("ledger")
    sent = [case.marker("i0", n) for n in range(4)]
    assert_exactly_once(_held(case, sent), case, set(sent))  # all there once: passes
    cases = {
        "lost 1 of 4": _held(case, sent[:3]),
        "held more than once": _held(case, [*sent, sent[0]]),
        "never sent": _held(case, [*sent, f"cx{case.run}-zz-000001"]),
        "without a marker": _held(case, sent, unmarked=["abc"]),
        "events cut in two": _held(case, sent, fragments=[("l0", 1001, ["PATH"])]),
    }
    for expected, held in cases.items():
        with pytest.raises(AssertionError, match=expected):
            assert_exactly_once(held, case, set(sent))
    with pytest.raises(AssertionError, match="hold one record twice"):
        assert_no_record_twice_in_an_event(_held(case, sent, doubled_records={sent[0]: ["PATH", "PATH"]}))


def test_markers_are_found_in_fields_dead_letters_and_raw_bytes() -> None:
    case = Case("ledger")
    m = case.marker("i0", 7)
    assert markers_in({"bsm": {"texts": [m]}}, case.marker_re) == {m}
    assert markers_in({"event": {"original": '{"bsm": {"texts": ["' + m + '"]}}'}}, case.marker_re) == {m}
    assert markers_in({"auditrecv": {"raw_base64": base64.b64encode(m.encode()).decode()}}, case.marker_re) == {m}
    assert markers_in({"message": "cx00000000-i0-000007"}, case.marker_re) == set()  # another run's marker
