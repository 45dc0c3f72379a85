"""Decode whole files or stdin: lines in, one interpreted event dict out per event (``auditrecv decode``).

Iterate files line by line (text or binary mode): never split with ``str.splitlines()``, which also
splits on 0x1d, the ENRICHED separator. A file has no arrival times, so the assembler's clock is the
newest event time seen so far (as laurel does): late records still join their event while they are
within ``grace_seconds`` of event time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from .assembler import EventAssembler
from .interpret import interpret
from .model import COMPLETE_ORPHAN_EOE, LinuxEvent
from .parser import parse_line


def decode_events(
    lines: Iterable[str | bytes],
    source: str = "",
    grace_seconds: float = 2.0,
    max_age_seconds: float = 30.0,
    max_records: int = 4096,
    max_in_flight: int = 10000,
) -> Iterator[LinuxEvent]:
    """Group the lines into events (blank lines are skipped); the tag of each line is its 1-based number."""
    assembler = EventAssembler(grace_seconds, max_age_seconds, max_records, max_in_flight)
    clock = 0.0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        record = parse_line(line)
        if record.time_ns is not None:
            seconds = record.time_ns / 1e9
            if seconds > clock:
                clock = seconds
        yield from assembler.add(record, source, clock, number)
    yield from assembler.flush()


def decode_lines(
    lines: Iterable[str | bytes],
    source: str = "",
    grace_seconds: float = 2.0,
    max_age_seconds: float = 30.0,
    max_records: int = 4096,
    max_in_flight: int = 10000,
) -> Iterator[dict[str, Any]]:
    """Interpreted event dicts (JSON-serialisable), one per event, in completion order.

    EOE records whose event was already complete (``complete == "orphan_eoe"``: the EOE after a
    single-record user message in a local audit.log) are not events and are left out here.
    """
    for event in decode_events(lines, source, grace_seconds, max_age_seconds, max_records, max_in_flight):
        if event.complete != COMPLETE_ORPHAN_EOE:
            yield interpret(event)
