"""Sans-I/O event assembly: records -> events, with the caller's clock passed in explicitly.

audisp-remote never sends EOE (linux.md §8), so an event is complete when
1. an EOE record for it arrives (local logs), or
2. it is a single-record type (user-space/daemon messages, 1100-1299 and 2100-2999), or
3. a later serial of the same (source, node) arrived and ``grace_seconds`` have passed since (late and
   interleaved records of the older event still join it during that window), or
4. it has been open ``max_age_seconds``, or
5. it holds ``max_records`` records or ``max_bytes`` characters of lines, or
6. more than ``max_in_flight`` events are open (the oldest is pushed out).

Lines that do not start with ``type=``/``node=`` continue the previous line of the same source
(audisp-remote cuts lines longer than 8969 bytes, linux.md §3.9). Every line added ends up in exactly one
emitted event, whose ``tags`` hold the caller's tokens (e.g. spool ids) of all lines it consumed. A line
identical to the one before it in the same event is a resend (audisp-remote lost the ack; the receiver
stored both copies): it is consumed (its tag kept) but not added again.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from .model import (
    COMPLETE_EOE,
    COMPLETE_ERROR,
    COMPLETE_EVICTED,
    COMPLETE_FLUSH,
    COMPLETE_MAX_AGE,
    COMPLETE_MAX_BYTES,
    COMPLETE_MAX_RECORDS,
    COMPLETE_ORPHAN_EOE,
    COMPLETE_SINGLE,
    COMPLETE_SUPERSEDED,
    LinuxEvent,
    LinuxRecord,
)
from .parser import parse_line

AUDIT_EOE = 1320
OVERSIZE_LINE_BYTES = 8969  # audisp-remote's audit_fgets limit: a line this long may have a continuation
_SERIAL_MOD = 1 << 32
_SERIAL_HALF = 1 << 31
_MAX_COUNTED_GAP = 1 << 20  # a larger forward jump is a reboot/reset rather than loss

EventKey = tuple[str, str | None, int | None, int | None]
StreamKey = tuple[str, str | None]


def is_single_record_type(type_num: int | None) -> bool:
    """User-space and daemon messages are whole events on their own (linux.md §8)."""
    return type_num is not None and (1100 <= type_num <= 1299 or 2100 <= type_num <= 2999)


def serial_newer(a: int, b: int) -> bool:
    """True if serial ``a`` comes after ``b``, allowing for 32-bit rollover."""
    return 0 < (a - b) % _SERIAL_MOD < _SERIAL_HALF


def _may_continue(raw: str) -> bool:
    """A line cut by audisp-remote is exactly 8969 bytes; anything that long may get a fragment."""
    return len(raw) * 4 >= OVERSIZE_LINE_BYTES and len(raw.encode("utf-8", "replace")) >= OVERSIZE_LINE_BYTES


class EventAssembler:
    """Groups records into events by (source, node, time, serial); see the module docstring for rules."""

    def __init__(
        self,
        grace_seconds: float = 1.0,
        max_age_seconds: float = 5.0,
        max_records: int = 4096,
        max_in_flight: int = 10000,
        max_bytes: int | None = None,
    ) -> None:
        self.grace_seconds = grace_seconds
        self.max_age_seconds = max_age_seconds
        self.max_records = max(1, max_records)
        # bounds one event's memory and document: 1000 records of 8969-byte lines would be 8.8 MB
        self.max_bytes = math.inf if max_bytes is None else max(1, max_bytes)
        self.max_in_flight = max(1, max_in_flight)
        self._in_flight: dict[EventKey, LinuxEvent] = {}  # insertion order = creation order
        # the newest open event per stream, not yet superseded (at most one: a newer serial supersedes it)
        self._open: dict[StreamKey, tuple[EventKey, LinuxEvent]] = {}
        self._superseded: deque[tuple[float, EventKey, LinuxEvent]] = deque()
        self._newest_serial: dict[StreamKey, int] = {}
        # the event that took each source's last line (for fragments); its key is rebuilt from its header
        # fields when needed, which saves a tuple per record on the hot path
        self._last_line: dict[str, LinuxEvent | None] = {}
        self._age_deadline = math.inf  # no open event can reach max age before this time
        # counters for metrics: records, events, errors, fragments_joined, orphan_fragments, lost, resends
        self.stats: dict[str, int] = {
            "records": 0,
            "events": 0,
            "errors": 0,
            "fragments_joined": 0,
            "orphan_fragments": 0,
            "lost": 0,
            "resends": 0,
        }

    # -- public API -------------------------------------------------------------------------------------

    def add_line(self, line: str | bytes, source: str, now: float, tag: Any = None) -> list[LinuxEvent]:
        """Parse a line and add it (convenience for receivers and files)."""
        return self.add(parse_line(line), source, now, tag)

    def add(self, record: LinuxRecord, source: str, now: float, tag: Any = None) -> list[LinuxEvent]:
        """Add one record; returns the events completed by it or timed out as of ``now``."""
        out: list[LinuxEvent] = []
        self.stats["records"] += 1
        if record.fragment:
            self._add_fragment(record, source, tag, out)
        elif record.error is not None:
            self._last_line[source] = None
            out.append(self._error_event(record, source, tag, now, record.error))
        else:
            self._add_record(record, source, now, tag, out)
        superseded = self._superseded
        if (superseded and superseded[0][0] <= now) or now >= self._age_deadline:
            self._expire(now, out)
        return out

    def poll(self, now: float) -> list[LinuxEvent]:
        """Events that timed out (grace after a later serial, or max age) as of ``now``."""
        out: list[LinuxEvent] = []
        self._expire(now, out)
        return out

    def flush(self) -> list[LinuxEvent]:
        """Emit everything still open (shutdown, end of a file), oldest first."""
        out = list(self._in_flight.values())
        for event in out:
            event.complete = COMPLETE_FLUSH
        self.stats["events"] += len(out)
        self._in_flight.clear()
        self._open.clear()
        self._superseded.clear()
        self._last_line.clear()
        self._age_deadline = math.inf
        return out

    @property
    def in_flight(self) -> int:
        """Number of open events (a gauge for metrics)."""
        return len(self._in_flight)

    # -- internals --------------------------------------------------------------------------------------

    def _error_event(self, record: LinuxRecord, source: str, tag: Any, now: float, error: str) -> LinuxEvent:
        self.stats["errors"] += 1
        self.stats["events"] += 1
        return LinuxEvent(
            source,
            record.node,
            record.time_ns,
            record.serial,
            [record],
            [tag],
            COMPLETE_ERROR,
            error,
            first_seen=now,
        )

    def _add_fragment(self, record: LinuxRecord, source: str, tag: Any, out: list[LinuxEvent]) -> None:
        event = self._last_line.get(source)
        if event is not None and self._in_flight.get((source, event.node, event.time_ns, event.serial)) is event:
            joined = parse_line(event.records[-1].raw + record.raw)
            if joined.error is None:
                event.records[-1] = joined
            event.tags.append(tag)
            self.stats["fragments_joined"] += 1
            event.size += len(record.raw)
            if event.size >= self.max_bytes:  # later fragments become orphans: each a bounded error event
                self._emit((source, event.node, event.time_ns, event.serial), event, COMPLETE_MAX_BYTES, out)
            return
        self.stats["orphan_fragments"] += 1
        out.append(self._error_event(record, source, tag, 0.0, "oversize-line fragment without its head line"))

    def _add_record(self, record: LinuxRecord, source: str, now: float, tag: Any, out: list[LinuxEvent]) -> None:
        # hot path (every record): locals instead of repeated attribute lookups, helpers inlined
        node = record.node
        serial = record.serial
        key: EventKey = (source, node, record.time_ns, serial)
        in_flight = self._in_flight
        event = in_flight.get(key)
        type_num = record.type_num
        if type_num == AUDIT_EOE:
            self._last_line[source] = None
            if event is None:
                self.stats["events"] += 1
                out.append(
                    LinuxEvent(
                        source,
                        node,
                        record.time_ns,
                        serial,
                        [record],
                        [tag],
                        COMPLETE_ORPHAN_EOE,
                        first_seen=now,
                    )
                )
            else:
                event.records.append(record)
                event.tags.append(tag)
                self._emit(key, event, COMPLETE_EOE, out)
            return
        if event is not None:
            records = event.records
            if records[-1].raw == record.raw:
                # audisp-remote resends the line whose ack it lost: both copies are spooled, one belongs here
                event.tags.append(tag)
                self.stats["resends"] += 1
                return
            records.append(record)
            event.tags.append(tag)
            self._last_line[source] = event
            event.size += len(record.raw)
            if len(records) >= self.max_records:
                self._emit(key, event, COMPLETE_MAX_RECORDS, out)
            elif event.size >= self.max_bytes:
                self._emit(key, event, COMPLETE_MAX_BYTES, out)
            return
        if serial is None:  # only hand-built records can lack one; keep the invariant, never raise
            out.append(self._error_event(record, source, tag, now, "record without a serial"))
            return
        event = LinuxEvent(source, node, record.time_ns, serial, [record], [tag], "", None, 0, now, len(record.raw))
        stream: StreamKey = (source, node)
        newest = self._newest_serial.get(stream)
        if newest is None:
            newer = True
        else:
            ahead = (serial - newest) % _SERIAL_MOD  # serial_newer(), inlined
            newer = 0 < ahead < _SERIAL_HALF
            if newer and 1 < ahead <= _MAX_COUNTED_GAP:  # 0 < gap < _MAX_COUNTED_GAP with gap = ahead - 1
                event.lost_before = ahead - 1
                self.stats["lost"] += ahead - 1
        if newer:
            self._newest_serial[stream] = serial
        single = type_num is not None and (1100 <= type_num <= 1299 or 2100 <= type_num <= 2999)
        if single and not _may_continue(record.raw):
            self._last_line[source] = None
            self.stats["events"] += 1
            event.complete = COMPLETE_SINGLE
            out.append(event)
            if newer:
                self._supersede_open(stream, now)
            return
        in_flight[key] = event
        self._last_line[source] = event
        if now + self.max_age_seconds < self._age_deadline:
            self._age_deadline = now + self.max_age_seconds
        if newer and not single:
            self._supersede_open(stream, now)
            self._open[stream] = (key, event)
        else:
            # a late newcomer (older serial) or an oversize single record: only wait for late records
            self._superseded.append((now + self.grace_seconds, key, event))
        if self.max_records == 1:
            self._emit(key, event, COMPLETE_MAX_RECORDS, out)
        elif event.size >= self.max_bytes:
            self._emit(key, event, COMPLETE_MAX_BYTES, out)
        if len(in_flight) > self.max_in_flight:
            while len(in_flight) > self.max_in_flight:
                old_key = next(iter(in_flight))
                self._emit(old_key, in_flight[old_key], COMPLETE_EVICTED, out)

    def _supersede_open(self, stream: StreamKey, now: float) -> None:
        """A newer serial arrived: the older open event of this stream gets its grace window."""
        opened = self._open.pop(stream, None)
        if opened is not None and self._in_flight.get(opened[0]) is opened[1]:
            self._superseded.append((now + self.grace_seconds, opened[0], opened[1]))

    def _emit(self, key: EventKey, event: LinuxEvent, reason: str, out: list[LinuxEvent]) -> None:
        del self._in_flight[key]
        event.complete = reason
        self.stats["events"] += 1
        out.append(event)

    def _expire(self, now: float, out: list[LinuxEvent]) -> None:
        superseded = self._superseded
        in_flight = self._in_flight
        while superseded and superseded[0][0] <= now:
            _, key, event = superseded.popleft()
            if in_flight.get(key) is event:
                self._emit(key, event, COMPLETE_SUPERSEDED, out)
        if in_flight:
            limit = now - self.max_age_seconds
            expired = []
            for key, event in in_flight.items():
                if event.first_seen > limit:
                    break
                expired.append((key, event))
            for key, event in expired:
                self._emit(key, event, COMPLETE_MAX_AGE, out)
        # the oldest open event decides when the next max-age check is due
        oldest = next(iter(in_flight.values()), None)
        self._age_deadline = math.inf if oldest is None else oldest.first_seen + self.max_age_seconds
