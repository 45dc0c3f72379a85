"""Linux events are grouped on the records' arrival clock, not on when the pipeline gets to them.

The chaos suite found an event cut in two after the engine was frozen for 60 s: the pipeline had read
the first line of an event, then waited for the engine, and timed the event out on its own clock before
reading the rest, which had arrived within the same millisecond.
"""

from __future__ import annotations

import time

import pytest

from auditrecv.config import Config
from auditrecv.pipeline import DocumentBuilder
from auditrecv.spool.record import Source, SpoolRecord

SOURCE = Source(transport="audisp_remote", peer="192.0.2.7", listener="audisp_remote")
ARRIVAL_NS = 1_700_000_000_000_000_000


def _line(kind: str, serial: int, rest: str, arrived_ms: int) -> SpoolRecord:
    payload = f"type={kind} msg=audit(1700000000.123:{serial}): {rest}".encode()
    return SpoolRecord("linux", payload, SOURCE, ARRIVAL_NS + arrived_ms * 1_000_000)


def test_a_pipeline_held_up_between_two_reads_does_not_cut_an_event(monkeypatch: pytest.MonkeyPatch) -> None:
    builder = DocumentBuilder(Config(), {"hostname": "rx"})
    processing = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: processing[0])
    first = builder.add([(1, _line("SYSCALL", 100, "arch=c000003e syscall=59 success=yes exit=0 items=1", 0))])
    processing[0] += 60.0  # the engine was frozen: the next read comes a minute later
    rest = builder.add(
        [
            (2, _line("PATH", 100, 'item=0 name="/bin/true" nametype=NORMAL', 1)),
            (3, _line("PROCTITLE", 100, "proctitle=74727565", 1)),
            (4, _line("USER_LOGIN", 101, "pid=1 uid=0 res=success", 2)),
        ]
    )
    docs = [d for d in first + rest + builder.flush() if d.has_document]
    by_spool_ids = sorted(sorted(d.spool_ids) for d in docs)
    assert by_spool_ids == [[1, 2, 3], [4]]


def _across_a_restart(arrival_floor: float | None) -> list[list[int]]:
    """An event's SYSCALL and a later serial spooled before a crash; the service back a minute later; the
    event's PATH resent by its sender 1.5 s after that: the events by spool ids."""
    started = ARRIVAL_NS / 1e9 + 60.0
    builder = DocumentBuilder(Config(), {"hostname": "rx"}, arrival_floor=arrival_floor)
    out = builder.add(
        [
            (1, _line("SYSCALL", 100, "arch=c000003e syscall=59 success=yes exit=0 items=1", 0)),
            (2, _line("USER_LOGIN", 101, "pid=1 uid=0 res=success", 1)),
        ]
    )
    out += builder.poll(now=started + 1.0)  # the spool read to its end: the pipeline's idle poll
    resent = _line("PATH", 100, 'item=0 name="/bin/true" nametype=NORMAL', 61_500)
    out += builder.add([(3, resent)])
    out += builder.poll(now=started + 10.0)
    return sorted(sorted(d.spool_ids) for d in out if d.has_document)


def test_the_time_the_receiver_was_down_does_not_cut_an_event() -> None:
    assert _across_a_restart(arrival_floor=ARRIVAL_NS / 1e9 + 60.0) == [[1, 3], [2]]
    # Without the floor the downtime counts towards the grace window: the SYSCALL goes out alone.
    assert _across_a_restart(arrival_floor=None) == [[1], [2], [3]]
