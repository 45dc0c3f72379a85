"""Event assembly: go-libaudit's reassembler fixtures and the completion rules (EOE, later serial + grace,
max age, max records, in-flight limit), fragments of oversize lines, tags and rollover."""

from __future__ import annotations

from typing import Any

import pytest

from tests.golden.native_core import LinuxAssembler as EventAssembler
from tests.golden.native_core import linux_events

from .helpers import GO_LIBAUDIT

# expected (serial, record count) per file, from go-libaudit reassembler_test.go, and the lost count
REASSEMBLER_CASES = {
    "normal": ([(58, 2), (59, 5), (60, 5), (61, 4), (62, 1)], 0),
    "lost_messages": ([(49, 2), (59, 5), (60, 5), (61, 4), (62, 1)], 9),
    "out_of_order": ([(58, 2), (59, 5), (60, 5), (61, 4), (62, 1)], 0),
    "rollover": ([(4294967294, 1), (4294967295, 1), (0, 1), (1, 1), (2, 1)], 0),
}

SYSCALL = "type=SYSCALL msg=audit(1700000000.{ms:03d}:{serial}): arch=c000003e syscall=59 success=yes exit=0"
PATH = 'type=PATH msg=audit(1700000000.{ms:03d}:{serial}): item=0 name="/bin/true"'
EOE = "type=EOE msg=audit(1700000000.{ms:03d}:{serial}): "
USER = "type=USER_LOGIN msg=audit(1700000000.{ms:03d}:{serial}): pid=1 uid=0 msg='op=login res=success'"


def _line(template: str, serial: int, ms: int = 1) -> str:
    return template.format(ms=ms, serial=serial)


@pytest.mark.parametrize("name", sorted(REASSEMBLER_CASES))
def test_go_libaudit_reassembler_fixtures(name: str) -> None:
    expected, lost = REASSEMBLER_CASES[name]
    lines = (GO_LIBAUDIT / "testdata" / f"{name}.log").read_text().split("\n")
    events = linux_events([line for line in lines if line.strip()])
    assert [(e["serial"], len(e["records"])) for e in events] == expected
    assert sum(e["lost_before"] for e in events) == lost
    # every record of an event carries its serial, and every line is accounted for exactly once
    assert all(f":{e['serial']})" in r["raw"] for e in events for r in e["records"])
    asm = EventAssembler(record_clock=True)
    tagged = [e for i, line in enumerate(lines, 1) if line.strip() for e in asm.add_line(line, "a", 0.0, tag=i)]
    numbered = sorted(tag for e in tagged + asm.flush() for tag in e["tags"])
    assert numbered == [i for i, line in enumerate(lines, 1) if line.strip()]


def test_eoe_completes_immediately() -> None:
    asm = EventAssembler(grace_seconds=10, max_age_seconds=100)
    assert asm.add_line(_line(SYSCALL, 5), "a", 0.0, tag=1) == []
    assert asm.add_line(_line(PATH, 5), "a", 0.0, tag=2) == []
    done = asm.add_line(_line(EOE, 5), "a", 0.0, tag=3)
    assert [(e["serial"], e["complete"], e["tags"]) for e in done] == [(5, "eoe", [1, 2, 3])]
    assert asm.in_flight == 0


def test_later_serial_then_grace_window() -> None:
    asm = EventAssembler(grace_seconds=1.0, max_age_seconds=100)
    asm.add_line(_line(SYSCALL, 5), "a", 0.0, tag=1)
    assert asm.add_line(_line(SYSCALL, 6, ms=2), "a", 10.0, tag=2) == []  # 5 superseded at t=10
    assert asm.add_line(_line(PATH, 5), "a", 10.5, tag=3) == []  # late record still joins 5
    done = asm.poll(11.0)
    assert [(e["serial"], e["complete"], e["tags"]) for e in done] == [(5, "superseded", [1, 3])]
    assert asm.poll(1000.0)[0]["complete"] == "max_age"  # 6 was never superseded


def test_serial_from_other_node_or_source_does_not_supersede() -> None:
    asm = EventAssembler(grace_seconds=1.0, max_age_seconds=100)
    asm.add_line(_line(SYSCALL, 5), "a", 0.0)
    asm.add_line("node=other " + _line(SYSCALL, 9), "a", 0.0)
    asm.add_line(_line(SYSCALL, 9), "b", 0.0)
    assert asm.poll(50.0) == []
    assert len(asm.flush()) == 3


def test_max_records_and_in_flight_limit() -> None:
    asm = EventAssembler(max_records=3, max_in_flight=2, grace_seconds=100, max_age_seconds=100)
    out: list[dict[str, Any]] = []
    for item in range(3):
        out += asm.add_line(_line(PATH, 7) + f" item={item}", "a", 0.0)
    assert [(e["serial"], e["complete"], len(e["records"])) for e in out] == [(7, "max_records", 3)]
    asm.add_line(_line(PATH, 1, ms=5), "a", 0.0)  # older serials: each waits for its own grace window
    asm.add_line(_line(PATH, 2, ms=5), "a", 0.0)
    evicted = asm.add_line(_line(PATH, 3, ms=5), "a", 0.0)
    assert [(e["serial"], e["complete"]) for e in evicted] == [(1, "evicted")]


def test_single_record_types_and_orphan_eoe() -> None:
    asm = EventAssembler()
    done = asm.add_line(_line(USER, 8), "a", 0.0, tag=21)
    assert [(e["serial"], e["complete"], e["tags"]) for e in done] == [(8, "single", [21])]
    orphan = asm.add_line(_line(EOE, 8), "a", 0.0, tag=5)
    assert [(e["complete"], e["tags"]) for e in orphan] == [("orphan_eoe", [5])]


def test_oversize_fragment_joins_previous_line() -> None:
    value = "x" * 9000
    line = _line(SYSCALL, 11) + f' comm="{value}" key="k"'
    head, rest = line[:8969], line[8969:]
    asm = EventAssembler()
    asm.add_line(head, "peer", 0.0, tag=1)
    assert asm.add_line(rest, "peer", 0.0, tag=2) == []
    (event,) = asm.flush()
    assert event["tags"] == [1, 2]
    assert event["records"][0]["fields"]["key"] == '"k"'
    # one record of the joined line (the Python assembler counted it in stats["fragments_joined"])
    ((record,),) = (e["records"] for e in linux_events([head, rest]))
    assert record["raw"] == line


def test_oversize_single_record_waits_for_its_fragment() -> None:
    line = _line(USER, 12)[:-1] + " " + "y" * 9000 + "'"
    asm = EventAssembler(grace_seconds=1.0)
    assert asm.add_line(line[:8969], "p", 0.0, tag=1) == []
    assert asm.add_line(line[8969:], "p", 0.1, tag=2) == []
    (event,) = asm.poll(2.0)
    assert event["tags"] == [1, 2] and len(event["records"]) == 1
    assert [[r["raw"] for r in e["records"]] for e in linux_events([line[:8969], line[8969:]])] == [[line]]


def test_orphan_fragment_is_an_error_event() -> None:
    asm = EventAssembler()
    (event,) = asm.add_line("tail of something", "p", 0.0, tag=9)
    assert event["complete"] == "error" and event["error"] and event["tags"] == [9]


def test_unparseable_line_is_an_error_event_and_kept_whole() -> None:
    asm = EventAssembler()
    (event,) = asm.add_line("type=SYSCALL garbage", "p", 0.0, tag=1)
    assert event["error"] is not None and event["records"][0]["raw"] == "type=SYSCALL garbage"


def test_serial_rollover_ordering() -> None:
    assert serial_newer(0, 4294967295)
    assert serial_newer(3, 4294967293)
    assert not serial_newer(4294967295, 0)
    assert not serial_newer(5, 5)


def serial_newer(serial: int, than: int) -> bool:
    """Whether `serial` counts as newer than `than` (modulo 2**32): seen as the assembler does, by whether a
    record of `serial` arriving supersedes the open event of `than` (it completes after the grace window)."""
    asm = EventAssembler(grace_seconds=1.0, max_age_seconds=100)
    asm.add_line(_line(SYSCALL, than), "a", 0.0, tag=1)
    asm.add_line(_line(PATH, serial, ms=2), "a", 0.0, tag=2)
    return [e["tags"] for e in asm.poll(2.0)] == [[1]]


def test_rollover_lost_count() -> None:
    asm = EventAssembler()
    asm.add_line(_line(SYSCALL, 4294967293), "a", 0.0)
    out = asm.add_line(_line(SYSCALL, 2, ms=2), "a", 0.0)
    out += asm.flush()
    assert [e["lost_before"] for e in out if e["serial"] == 2] == [4]  # 4294967294, 4294967295, 0, 1


def test_a_resent_line_is_consumed_once() -> None:
    """audisp-remote resends the line whose ack it lost; the receiver stored both copies. The event keeps
    one (its document id and content are those of the event without the resend) and both tags."""
    asm = EventAssembler(grace_seconds=100, max_age_seconds=100)
    lines = [_line(PATH, 9) + f" item={item}" for item in (0, 1, 1, 2)]
    for tag, line in enumerate(lines, 1):
        asm.add_line(line, "a", 0.0, tag=tag)
    (event,) = asm.flush()
    assert len(event["records"]) == 3
    assert event["tags"] == [1, 2, 3, 4]
    # the resend is consumed once (the Python assembler counted it in stats["resends"])
    (resent,) = linux_events(lines)
    assert [r["raw"].rsplit(" ", 1)[1] for r in resent["records"]] == ["item=0", "item=1", "item=2"]
