"""Output types of the Linux audit decoder (stable interface for the receiver, pipeline and ECS mapper).

Data flow: one text line (one audisp-remote frame payload, or one audit.log line) becomes one
:class:`LinuxRecord` (``parse_line``); records are grouped into :class:`LinuxEvent` objects by the sans-I/O
``EventAssembler`` (no EOE travels over audisp-remote, so grouping relies on serials and time);
``interpret(event)`` turns an event into a plain JSON-serialisable ``dict``.

Public API (all importable from ``auditrecv.decode.linux``)::

    parse_line(line: str | bytes, lazy: bool = True) -> LinuxRecord   # body parsed on first .fields access
    EventAssembler(grace_seconds=1.0, max_age_seconds=5.0, max_records=4096, max_in_flight=10000)
        .add(record: LinuxRecord, source: str, now: float, tag: object = None) -> list[LinuxEvent]
        .add_line(line: str | bytes, source: str, now: float, tag: object = None) -> list[LinuxEvent]
        .poll(now: float) -> list[LinuxEvent]          # call periodically (e.g. every 0.25 s)
        .flush() -> list[LinuxEvent]                   # shutdown / end of input
        .stats: dict[str, int]; .in_flight: int        # counters for metrics
    interpret(event: LinuxEvent) -> dict               # output keys documented in interpret.py
    decode_events(lines, source="", ...) -> Iterator[LinuxEvent]   # files/stdin, event-time clock
    decode_lines(lines, source="", ...) -> Iterator[dict]          # the same, interpreted

``now`` is the caller's clock in seconds (``time.monotonic()`` for a live receiver); ``source`` names the
sender (peer address or connection id): fragments join per source, events group per (source, node).

Invariant relied upon by the spool: every line given to ``add``/``add_line`` ends up in exactly one emitted
``LinuxEvent`` (its ``tag`` in ``event.tags``), either inside a grouped event or in an error event
(``event.error`` set). Nothing here raises on bad input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

# Why these completion reasons exist: the pipeline and metrics want to know how an event ended
# (EOE is rare over the network; "max_age"/"max_records"/"evicted" hint at loss or misconfiguration).
COMPLETE_EOE = "eoe"  # an EOE record closed it
COMPLETE_SINGLE = "single"  # a single-record type (user space / daemon messages)
COMPLETE_SUPERSEDED = "superseded"  # a later serial arrived and the grace window passed
COMPLETE_MAX_AGE = "max_age"  # it stayed open longer than max_age_seconds
COMPLETE_MAX_RECORDS = "max_records"  # it reached max_records
COMPLETE_MAX_BYTES = "max_bytes"  # its lines reached max_bytes
COMPLETE_EVICTED = "evicted"  # too many events in flight; the oldest was pushed out
COMPLETE_FLUSH = "flush"  # flush() at shutdown / end of input
COMPLETE_ERROR = "error"  # an unparseable line or an orphan fragment, emitted on its own
COMPLETE_ORPHAN_EOE = "orphan_eoe"  # an EOE whose event was already emitted (or never seen)


_parse_body_impl: Callable[[LinuxRecord], None] | None = None  # parser.parse_body, bound on first use


class LinuxRecord:
    """One parsed audit record line.

    ``fields`` keeps the *raw* value text as written in the line (quotes kept, hex not decoded) so the
    interpretation can tell quoted text from hex-encoded text, exactly like libauparse's "raw" value.
    Inner ``msg='…'`` key=values of user-space records are flattened into ``fields`` (as libauparse and
    go-libaudit do). A repeated key keeps its first value in ``fields``; later ones go to ``duplicates``.

    Why lazy: grouping, deduplication and spooling need only the header (type, node, time, serial), so
    ``parse_line`` parses the key=value body on first access of ``fields``/``enriched``/``duplicates``/
    ``text``. Callers see no difference except where the time is spent.
    """

    __slots__ = (
        "_body",
        "_duplicates",
        "_enriched",
        "_fields",
        "_text",
        "error",
        "fragment",
        "node",
        "raw",
        "serial",
        "time_ns",
        "type_name",
        "type_num",
    )

    def __init__(
        self,
        type_name: str,  # "SYSCALL", or "UNKNOWN[1234]" as written when the sender had no name
        type_num: int | None,  # resolved from the name (or the UNKNOWN[n] number); None if unknown
        node: str | None,  # the "node=" prefix, if any
        time_ns: int | None,  # event time: sec * 1e9 + ms * 1e6
        serial: int | None,
        fields: dict[str, str],
        enriched: dict[str, str],  # the ENRICHED section after 0x1d: UPPER-CASE keys, values unquoted
        raw: str,  # the line as received, trailing newline removed
        error: str | None = None,  # set when the line could not be parsed; the record is then kept whole
        duplicates: list[tuple[str, str]] | None = None,
        text: str | None = None,  # the inner msg='…' text of user-space records, unquoted (for humans)
        fragment: bool = False,  # the line does not start with type=/node=: an oversize-line continuation
    ) -> None:
        self.type_name = type_name
        self.type_num = type_num
        self.node = node
        self.time_ns = time_ns
        self.serial = serial
        self._fields = fields
        self._enriched = enriched
        self.raw = raw
        self.error = error
        self._duplicates = duplicates
        self._text = text
        self.fragment = fragment
        self._body: tuple[int, int] | None = None  # (start, end) of the body not parsed yet

    def _parse_body(self) -> None:
        global _parse_body_impl
        if _parse_body_impl is None:
            # late import (the parser depends on this module), done once: a relative import statement
            # costs microseconds, which mattered when it ran for every lazily parsed record
            from .parser import parse_body

            _parse_body_impl = parse_body
        _parse_body_impl(self)

    @property
    def fields(self) -> dict[str, str]:
        if self._body is not None:
            self._parse_body()
        return self._fields

    @fields.setter
    def fields(self, value: dict[str, str]) -> None:
        self._fields = value

    @property
    def enriched(self) -> dict[str, str]:
        if self._body is not None:
            self._parse_body()
        return self._enriched

    @enriched.setter
    def enriched(self, value: dict[str, str]) -> None:
        self._enriched = value

    @property
    def duplicates(self) -> list[tuple[str, str]] | None:
        if self._body is not None:
            self._parse_body()
        return self._duplicates

    @duplicates.setter
    def duplicates(self, value: list[tuple[str, str]] | None) -> None:
        self._duplicates = value

    @property
    def text(self) -> str | None:
        if self._body is not None:
            self._parse_body()
        return self._text

    @text.setter
    def text(self, value: str | None) -> None:
        self._text = value

    @property
    def msg_id(self) -> str | None:
        """``sec.mmm:serial`` as written in ``msg=audit(...)``, the event identity within a node."""
        if self.time_ns is None or self.serial is None:
            return None
        sec, rest = divmod(self.time_ns, 1_000_000_000)
        return f"{sec}.{rest // 1_000_000:03d}:{self.serial}"

    def __repr__(self) -> str:
        return (
            f"LinuxRecord({self.type_name!r}, node={self.node!r}, id={self.msg_id!r}, "
            f"error={self.error!r}, raw={self.raw[:60]!r})"
        )


@dataclass(slots=True)
class LinuxEvent:
    """Records sharing (source, node, time, serial), plus the caller's tags of every line it consumed."""

    source: str
    node: str | None
    time_ns: int | None
    serial: int | None
    records: list[LinuxRecord] = field(default_factory=list)
    tags: list[object] = field(default_factory=list)  # one per input line (fragments included), in order
    complete: str = ""  # one of the COMPLETE_* reasons
    error: str | None = None  # set for error events (unparseable line, orphan fragment)
    lost_before: int = 0  # serials skipped between the newest earlier event of this node and this one
    first_seen: float = 0.0  # caller's clock when the first record arrived
    size: int = 0  # characters of raw lines so far (the assembler's max_bytes)
