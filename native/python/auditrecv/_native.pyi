"""auditrecv._native: the compiled per-record work (Rust, native/). Signatures of what it exports.

This directory deliberately has no ``__init__.py``: the wheel built from native/ holds only
``auditrecv/_native.abi3.so`` (and this stub), and never replaces the Python package's files.
"""

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

__version__: Final[str]

ITEM_RECORD: Final[int]
"""bsm_split_trail kind: a record (possibly with errors)."""
ITEM_FILE: Final[int]
"""bsm_split_trail kind: a standalone file token."""
ITEM_SKIPPED: Final[int]
"""bsm_split_trail kind: bytes that start no record, skipped up to the next plausible one."""
DEAD_LETTER_MARK: Final[bytes]
"""What a dead letter's document says first (``"event":{"kind":"pipeline_error"``)."""
TRUNCATED_MARK: Final[bytes]
"""What a document cut to ``[limits]`` says (``"truncated":true,"truncation":{"document_bytes":``)."""
DEFAULT_MAX_TOKENS: Final[int]
DEFAULT_MAX_ARRAY_ITEMS: Final[int]
APPEND_DECLINED: Final[int]
"""JournalLedger.append_record: no room, or too many records kept: nothing written (0)."""
APPEND_NEW_SOURCE: Final[int]
"""JournalLedger.append_record: the record's source is not the one set_source gave: nothing written."""
APPEND_NOT_PLAIN: Final[int]
"""JournalLedger.append_record: not plainly a record (the caller checks it): nothing written."""
APPEND_CLOSED: Final[int]
"""JournalLedger.append_record: the ledger is not open (the writer is busy with the journal): nothing written."""

class NativePanic(RuntimeError):
    """A bug in the native code (a Rust panic) while handling one input: dead-letter that input."""

def bsm_decode_raw_json(
    payload: bytes, offset: int = 0, *, max_tokens: int = 1000, max_array_items: int = 10000
) -> bytes:
    """One BSM record as the JSON line ``auditrecv decode --raw`` writes: ``decode_record(payload)``
    with its offset set to ``offset`` (the record's file position), ``to_dict()``, orjson with a
    newline. Byte-equal to the Python decoder for records within the caps; a record over them keeps
    ``max_tokens`` tokens and ``max_array_items`` items per list and ends with a ``"truncation"``
    object. Integers beyond 64 bits (a far-future time in ns) are exact JSON numbers, which orjson
    refuses and Python's json reads. Raises NativePanic on a bug."""

def bsm_decode_raw(
    payload: bytes, offset: int = 0, *, max_tokens: int = 1000, max_array_items: int = 10000
) -> tuple[bytes, list[str]]:
    """``bsm_decode_raw_json`` and the record's errors."""

def bsm_decode_record_json(
    data: bytes, offset: int = 0, whole: bool = True, *, max_tokens: int = 1000, max_array_items: int = 10000
) -> bytes:
    """``decode_record(data, offset, whole=whole).to_dict()`` as one JSON line."""

def bsm_split_trail(data: bytes | bytearray | memoryview, base_offset: int = 0) -> list[tuple[int, int, int]]:
    """A stream or trail split as the Python ``iter_stream`` splits it: ``(kind, offset, length)`` per
    item in order (kinds ITEM_RECORD, ITEM_FILE, ITEM_SKIPPED), offsets plus ``base_offset``. Buffers
    other than bytes (an mmap, ...) are copied first."""

def bsm_looks_like(head: bytes) -> bool:
    """True when the bytes start like a BSM trail (the Python ``looks_like_bsm``)."""

def gzip(data: bytes | memoryview, level: int = 1) -> bytes:
    """A gzip member of ``data`` (libdeflate; ``level`` 1 fastest .. 12 smallest, clamped), computed
    without the GIL: what the sink sends as ``Content-Encoding: gzip``."""

def _bsm_decode_with_fault(payload: bytes) -> bytes:
    """Test hook: decodes with a panic injected into the token decoder; always raises NativePanic."""

# ---------------------------------------------------------------- documents (src/ecs/)

def ecs_bsm_documents(
    payloads: list[bytes],
    *,
    schema: str,
    received_ns: int | Sequence[int],
    source: Mapping[str, object],
    observer: Mapping[str, object],
    enrichment: Mapping[str, object] | None = None,
    max_document_bytes: int = 4194304,
    max_tokens: int = 1000,
    max_array_items: int = 10000,
    max_string_chars: int = 262144,
) -> list[tuple[str, bytes | None, str | None]]:
    """The documents of spooled BSM records from one sender, as the pipeline builds them
    (``DocumentBuilder._bsm``: decode, ECS or ``auditrecv-v1`` mapping, dead letters for records
    without a header or that make the mapper fail, the document id) and as the sink serializes them
    (orjson bytes, keys in the Python mappers' order), enriched (see below) when ``enrichment`` is given.

    ``schema``: "ecs" or "auditrecv-v1". ``received_ns``: one arrival time (Unix ns) for all, or one per
    payload. ``source``: ``Source.to_dict()``. ``observer``: the pipeline's observer dict. The ``max_*``
    caps are config ``[limits]``.

    One ``(doc_id, document, fallback)`` per payload, in order. Documents over ``[limits]`` are cut as
    ``limit_document`` cut them (a record over the decoder's caps is decoded whole first, as the Python
    decoder did). A record that hits a bug here (a caught panic) becomes a dead letter with its bytes
    (``error.message`` "internal error: native: ..."). ``document`` is None and ``fallback`` says why
    only for: "unencodable: ..." (a guard, no longer made: an integer beyond the long of its field is
    left out and the document tagged value_out_of_range, or written exactly where the field is not indexed
    as a number; ``bsm_unencodable_json`` would give it, for the sink to dead-letter) and
    "native_error: ..." (not even the dead letter could be built).

    ``enrichment``, the values enrichment adds, looked up once per sender and batch::

        {"hostname": PTR name of the sender's address or None,
         "labels": {...},                 # static-map labels of the sender's address and host names
         "zone_labels": {name: {...}},    # static-map labels matched by a zone name (override)
         "zones": {uuid: {"uuid", "alias", "owner_uuid", "owner_login", "brand", "server_uuid", "tags"}}}

    merged into every document as ``Enricher._enrich`` merges its lookups (same fields, same order).
    """

def ecs_bsm_bulk_body(
    payloads: list[bytes],
    *,
    schema: str,
    received_ns: int | Sequence[int],
    source: Mapping[str, object],
    observer: Mapping[str, object],
    index: str = "auditrecv-%Y.%m.%d",
    data_stream: str | None = None,
    enrichment: Mapping[str, object] | None = None,
    max_document_bytes: int = 4194304,
    max_tokens: int = 1000,
    max_array_items: int = 10000,
    max_string_chars: int = 262144,
) -> tuple[memoryview, list[tuple[str, str, int, int, str]]]:
    """The ``_bulk`` body for the documents of ``ecs_bsm_documents``, as a read-only memoryview of the bytes
    the native core wrote (not copied; see ``BulkBody``): per document the ``create`` action
    line (``_index`` = ``data_stream`` if given, else the strftime ``index`` pattern of the document's
    ``@timestamp``, lower-cased, as ``index_for``) and the document line, each ending in a newline.

    With it, one ``(doc_id, index, start, end, fallback)`` per payload: the record's lines are
    ``body[start:end]``; a record with a ``fallback`` (as in ``ecs_bsm_documents``) is not in the body, and
    ``start == end`` is where its lines belong. A bug while enriching or writing
    a document writes it as far as enrichment got rather than none. Raises ValueError for a pattern
    directive other than ``%Y %m %d %j %y %H %M %S %%`` (config validation refuses those).
    """

def bsm_unencodable_json(
    payload: bytes,
    *,
    schema: str,
    received_ns: int,
    source: Mapping[str, object],
    observer: Mapping[str, object],
    max_document_bytes: int = 4194304,
    max_tokens: int = 1000,
    max_array_items: int = 10000,
    max_string_chars: int = 262144,
) -> bytes | None:
    """The document of a spooled BSM record handed back as "unencodable" (an integer beyond 64 bits, which
    orjson refuses), mapped as ``ecs_bsm_documents`` maps it (not enriched nor cut), as JSON with those
    integers written: ``json.loads`` of it (not orjson) is exactly the dict the Python mappers made, which
    the sink dead-letters (``serialization_error``) as before. None if it cannot be made."""

def dead_letter_json(
    raw: bytes,
    *,
    kind: str,
    error: str,
    received_ns: int,
    source: Mapping[str, object],
    observer: Mapping[str, object],
) -> bytes:
    """The dead letter of raw input that has no document (``dead_letter_doc``: ``kind`` "bsm" for one record,
    "linux" for lines joined by newlines; ``error`` its reason), as JSON: the one dead-letter builder, also
    used by the pipeline when a whole native call fails. ValueError for a receive time past year 9999."""

def document_id(kind: str, source: Mapping[str, object], parts: list[bytes]) -> str:
    """``document_id(kind, source, parts)`` (``schema/ids.py``): a BSM record's is ``("bsm", source, [payload])``."""

def limit_document_json(
    doc: bytes,
    raw: bytes,
    kind: str,
    *,
    max_document_bytes: int = 4194304,
    max_tokens: int = 1000,
    max_array_items: int = 10000,
    max_string_chars: int = 262144,
) -> bytes:
    """``limit_document(doc, raw, kind, limits)`` of a document given as its JSON: the same bytes when within
    the limits, else the cut document's JSON, as the document entry points cut documents. ValueError if
    ``doc`` is not a JSON object."""

class BsmDocuments:
    """A batch of spooled BSM records from one sender, mapped (as ``ecs_bsm_documents``: decode, ECS or
    ``auditrecv-v1``, ids, dead letters, documents cut to ``[limits]``) but not yet enriched nor serialized; the
    documents stay in Rust. For enrichment: ``zone_refs()`` names what to look up, then ``bulk_body()``
    takes the values found and writes the body (once)."""

    def __init__(
        self,
        payloads: list[bytes],
        *,
        schema: str,
        received_ns: int | Sequence[int],
        source: Mapping[str, object],
        observer: Mapping[str, object],
        max_document_bytes: int = 4194304,
        max_tokens: int = 1000,
        max_array_items: int = 10000,
        max_string_chars: int = 262144,
    ) -> None: ...
    def __len__(self) -> int: ...
    def zone_refs(self) -> list[str]:
        """The distinct names the enricher would look up for these documents, in first-seen order: each
        document's zone name (container.id / v1 zonename: static-map labels by name, and the zone when it
        is not "global") and the zone a zlogin from the global zone enters (a lower-case UUID)."""
    def bulk_body(
        self,
        *,
        index: str = "auditrecv-%Y.%m.%d",
        data_stream: str | None = None,
        enrichment: Mapping[str, object] | None = None,
    ) -> tuple[memoryview, list[tuple[str, str, int, int, str]]]:
        """As ``ecs_bsm_bulk_body``, enriched with ``enrichment`` (same keys). Raises ValueError when
        called a second time."""
    def bulk_columns(
        self,
        *,
        index: str = "auditrecv-%Y.%m.%d",
        data_stream: str | None = None,
        enrichment: Mapping[str, object] | None = None,
    ) -> tuple[memoryview, list[int], list[str], list[str], dict[int, str], bool]:
        """``bulk_body`` in columns, so that the caller builds nothing per document: the body, and by
        position where each document's lines end (they start where the previous one's end), its id and
        index (one string object per run of equal names), the fallback reason of each record not in
        the body (its ``end`` is the previous one's, its index ""), and whether the body holds a dead
        letter or a cut document (``DEAD_LETTER_MARK``, ``TRUNCATED_MARK``: a memoryview has no substring
        search). Raises ValueError when called a second time (or after ``bulk_body``)."""

def linux_decode_raw(
    data: bytes | bytearray | memoryview | list[bytes],
    source: str = "",
    *,
    grace_seconds: float = 2.0,
    max_age_seconds: float = 30.0,
    max_records: int = 4096,
    max_in_flight: int = 10000,
) -> bytes:
    """``auditrecv decode --raw`` of Linux audit input, byte-equal to the Python decoder: ``data`` is a
    whole log (split into lines as ``auditrecv decode`` reads a file: after each newline, trailing
    CR/LF removed) or a list of lines (one record each, as ``read_input`` yields them or audisp-remote
    sends them). Returns one JSON line per event (orjson bytes, keys in the Python order, newline
    included) in completion order, ``source`` as each event's ``source``; EOE records of completed
    events make no line. Integers beyond 64 bits are exact JSON numbers; a header number of more than
    4300 digits (Python's int() refused it) makes an error event of its line. Raises NativePanic on a
    bug. Buffers other than bytes are copied first."""

def linux_decode_raw_into(
    data: bytes | bytearray | memoryview,
    write: Callable[[bytes], object],
    source: str = "",
    *,
    chunk_bytes: int = 1 << 20,
    grace_seconds: float = 2.0,
    max_age_seconds: float = 30.0,
    max_records: int = 4096,
    max_in_flight: int = 10000,
) -> int:
    """``linux_decode_raw`` of a whole log, handing the output to ``write`` (e.g. a binary file's
    ``write``) in pieces of whole lines of about ``chunk_bytes``, as ``auditrecv decode --raw`` writes
    while it reads: memory stays bounded by the chunk. The decoding runs without the GIL; ``write`` is
    called with it. Returns the number of lines written; on an error (raised as ``linux_decode_raw``
    raises it, or whatever ``write`` raised) the lines before it have been written."""

# (doc_id, document JSON or None, spool ids of the event's lines, reason or None, the unencodable document's
# JSON or the `decode --raw` JSON of an event without a document, arrival time of its first line)
LinuxRow = tuple[str, bytes | None, list[int], str | None, bytes | None, int | None]
# (doc_id, index, start, end, reason ("" in the body), spool ids, the unencodable document's JSON or the
# `decode --raw` JSON of an event without a document, arrival time of the first line)
LinuxLayoutRow = tuple[str, str, int, int, str, list[int], bytes | None, int | None]
# A LinuxDocuments body in columns (the ``*_columns`` calls): the ``_bulk`` body (a read-only memoryview of the
# bytes the native core wrote, not copied; see ``BulkBody``); the events in it, in
# order (they follow each other from offset 0): where each one's lines end, its document id, index (one string
# object per run of equal names) and the spool ids of its lines; the positions among them of the documents cut
# to ``[limits]``; then the events not in it (orphan EOEs and hand-backs, as a layout row's reason says), each
# as (how many of the body's events come before it, document id, spool ids, reason, the unencodable document's
# JSON or the ``decode --raw`` JSON of the event).
LinuxColumns = tuple[
    memoryview,
    list[int],
    list[str],
    list[str],
    list[list[int]],
    list[int],
    list[tuple[int, str, list[int], str, bytes | None]],
]

class BulkBody:
    """The owner of a ``_bulk`` body's bytes, seen from Python only through the read-only ``memoryview``
    that every call returning a body gives (``native/src/bulk_body.rs``): the body is not copied into a
    ``bytes`` object (1-3 MiB a batch, ~10 % of the Linux documents path)."""
    def __len__(self) -> int: ...

class LinuxDocuments:
    """The Linux documents of one sender, as the pipeline's ``DocumentBuilder`` makes them: spooled lines go
    in with their arrival times and spool ids (``add``), the event assembler keeps the open events across
    calls (per instance: one per sender key ``listener|peer``), and every call returns the events it
    completed, in completion order. Events are completed on the records' own clock (``record_clock``:
    files, spool exports) or on the lines' arrival time, as ``DocumentBuilder(record_clock=...)``.

    Each row is one event: its document id (``linux_id_parts``), the document JSON (ECS or ``auditrecv-v1``,
    cut to ``[limits]``, dead letters for events the mapper cannot map, cannot write or hits a bug on, as
    in ``ecs_bsm_documents``, with the event's lines joined by newlines as raw input; enriched with the
    ``enrichment`` given with the call) and the spool ids of every line it was built from. Reason
    ``"no_document"``: an orphan EOE (its event was already emitted): delete the spool ids, index nothing.
    Reason ``unencodable: ...``: the document holds an integer beyond 64 bits; the JSON slot (the 5th
    item of a row, the 7th of a layout row) holds it with those integers written (as
    ``bsm_unencodable_json``). Reason ``native_error: ...``: not even the dead letter could be built; the
    JSON slot holds the event's ``decode --raw`` JSON if it can be written.
    The source of an event is that of its first line (``source`` of the ``add`` call that brought it).

    One ``DocumentBuilder`` has one clock and one ``max_in_flight`` for all senders; an instance here has
    its own. To time every sender's events out on one shared clock (as DocumentBuilder does after each
    batch), call ``poll(now)`` on each instance with that clock."""

    def __init__(
        self,
        *,
        schema: str,
        observer: Mapping[str, object],
        record_clock: bool = False,
        grace_seconds: float = 2.0,
        max_age_seconds: float = 10.0,
        max_records: int = 1000,
        max_in_flight: int = 10000,
        max_linux_event_bytes: int | None = 1048576,
        max_document_bytes: int = 4194304,
        max_tokens: int = 1000,
        max_array_items: int = 10000,
        max_string_chars: int = 262144,
    ) -> None: ...
    def __len__(self) -> int:
        """Number of events still open."""
    def stats(self) -> dict[str, int]:
        """``DocumentBuilder.stats``' Linux counters of this instance: linux_lines, linux_events (orphan EOEs
        included), dead_letters (events the mapper could not map)."""
    def add(
        self,
        lines: list[bytes],
        *,
        received_ns: int | Sequence[int],
        source: Mapping[str, object],
        spool_ids: Sequence[int] | None = None,
        enrichment: Mapping[str, object] | None = None,
        now: float | None = None,
    ) -> list[LinuxRow]:
        """``DocumentBuilder.add``: each line (no newline) parsed and assembled, then what timed out.
        ``received_ns``: one arrival time for all or one per line; ``spool_ids`` default to 1, 2, ...;
        ``now`` (tests) overrides the clock."""
    def poll(self, now: float | None = None, *, enrichment: Mapping[str, object] | None = None) -> list[LinuxRow]:
        """``DocumentBuilder.poll``: events whose grace window or maximum age has passed (without ``now``:
        the records' clock, or on the arrival clock the later of it and the wall clock)."""
    def flush(self, *, enrichment: Mapping[str, object] | None = None) -> list[LinuxRow]:
        """``DocumentBuilder.flush``: every event still open (end of input, shutdown)."""
    def add_bulk(
        self,
        lines: list[bytes],
        *,
        received_ns: int | Sequence[int],
        source: Mapping[str, object],
        spool_ids: Sequence[int] | None = None,
        enrichment: Mapping[str, object] | None = None,
        now: float | None = None,
        index: str = "auditrecv-%Y.%m.%d",
        data_stream: str | None = None,
    ) -> tuple[memoryview, list[LinuxLayoutRow]]:
        """``add``, returning the ``_bulk`` body of the completed events (as ``ecs_bsm_bulk_body``: rows with
        a reason are not in it; their lines belong at ``start``), as a read-only memoryview (not copied)."""
    def poll_bulk(
        self,
        now: float | None = None,
        *,
        enrichment: Mapping[str, object] | None = None,
        index: str = "auditrecv-%Y.%m.%d",
        data_stream: str | None = None,
    ) -> tuple[memoryview, list[LinuxLayoutRow]]:
        """``poll``, returning the ``_bulk`` body."""
    def flush_bulk(
        self,
        *,
        enrichment: Mapping[str, object] | None = None,
        index: str = "auditrecv-%Y.%m.%d",
        data_stream: str | None = None,
    ) -> tuple[memoryview, list[LinuxLayoutRow]]:
        """``flush``, returning the ``_bulk`` body."""
    def add_columns(
        self,
        lines: list[bytes],
        *,
        received_ns: int | Sequence[int],
        source: Mapping[str, object],
        spool_ids: Sequence[int] | None = None,
        enrichment: Mapping[str, object] | None = None,
        now: float | None = None,
        index: str = "auditrecv-%Y.%m.%d",
        data_stream: str | None = None,
    ) -> LinuxColumns:
        """``add_bulk`` in columns (as ``BsmDocuments.bulk_columns``): the same body, and its layout without a
        Python object per event (the pipeline hands body and columns to the sink as they are)."""
    def poll_columns(
        self,
        now: float | None = None,
        *,
        enrichment: Mapping[str, object] | None = None,
        index: str = "auditrecv-%Y.%m.%d",
        data_stream: str | None = None,
    ) -> LinuxColumns:
        """``poll_bulk`` in columns."""
    def flush_columns(
        self,
        *,
        enrichment: Mapping[str, object] | None = None,
        index: str = "auditrecv-%Y.%m.%d",
        data_stream: str | None = None,
    ) -> LinuxColumns:
        """``flush_bulk`` in columns."""

class JournalFile:
    """One ack journal file of the spool, appended to (``native/src/journal.rs``). Every entry is byte
    for byte what ``auditrecv.spool.journal.encode_entry`` makes (``decode_entries`` reads it back).
    The file is preallocated (``posix_fallocate``) and mapped shared: an entry is copied into the page
    cache, no system call; after the last entry come two zero bytes (the end mark, where recovery
    stops), then the unused room. Not thread-safe: the spool writer's lock guards every call.

    ``OSError`` (with its errno) when the file cannot be created, grown (ENOSPC: a full filesystem) or
    synced: the entries of that write are then not in the file's valid part. ``ValueError`` for a field
    too long for the format (kind over 255 bytes, source over 65,535, payload over 4 GiB), or once
    closed.
    """

    def __init__(self, path: str | os.PathLike[str], map: bool = True) -> None:
        """Create (or empty) the file: mode 0600, 256 KiB of room allocated and mapped, close-on-exec. On a
        full filesystem the file is made without room, and the first append raises as a write would.
        Mapped only on ext2/3/4, XFS and tmpfs (elsewhere, or with ``map`` false, an append is one
        ``pwrite(2)``: a copy-on-write filesystem cannot keep a reservation, and a store into a mapped
        page it has no room for is a SIGBUS)."""
    def append(self, id: int, kind: str, source: bytes, received_ns: int, payload: bytes, sync: bool = False) -> None:
        """Encode one entry and copy it into the file (the GIL held; no system call unless the file must
        grow); with ``sync``, then ``msync`` of its pages (without the GIL). Durable as promised when this
        returns."""
    def stage(self, id: int, kind: str, source: bytes, received_ns: int, payload: bytes) -> None:
        """Encode one entry for the next ``write`` (several records of one append, one copy).
        A field too long drops everything staged."""
    def discard(self) -> None:
        """Drop the staged entries unwritten."""
    def write(self, sync: bool = False) -> None:
        """Copy the staged entries into the file (then ``msync`` with ``sync``); on an error none of them
        stays."""
    def clear(self) -> None:
        """Empty the file (everything in it is in SQLite): the end mark at its start, its room kept."""
    def close(self) -> None:
        """Close the file (unmapped, its unused room cut off); idempotent."""
    @property
    def size(self) -> int:
        """Bytes of whole entries in the file (where the next one goes; the room after them not counted)."""
    @property
    def last_id(self) -> int:
        """The highest id written (0: none)."""
    @property
    def last_sync_seconds(self) -> float:
        """How long the last ``msync`` took."""

class JournalLedger:
    """The records acknowledged through the ack journal and not folded into SQLite yet, in id order
    (``native/src/journal.rs``, ``Ledger``): kept with one call per record (no Python object per record
    for the garbage collector to track), taken whole by a fold, which gets its ``INSERT`` parameters
    from here. Records sharing one source object (a connection's) share its source id. Not thread-safe:
    the spool writer's lock guards every call, except ``append_record`` (see there)."""

    def __init__(
        self,
        *,
        now: float | None = None,
        wake: Callable[[], object] | None = None,
        record_overhead: int = 0,
        latency_window: int = 0,
        max_records: int = ...,
        fold_seconds: float = 0.0,
        fold_records: int = ...,
    ) -> None:
        """``now``: ``time.monotonic()`` (the clock of ``fold_at``; without it, an ``append_record`` makes
        the records due at once); ``wake``: called without arguments when an ``append_record`` gives an
        idle writer work; ``record_overhead``: bytes a record takes in the database besides its payload;
        ``latency_window``: how many of the latest ack latencies the tally keeps; ``max_records``,
        ``fold_seconds``, ``fold_records``: ``append_record``'s limits (attributes too), set once rather
        than passed with every record (by default: no record limit, a fold due at once)."""
    def append_record(self, kind: object, payload: object, source: object, received_ns: object) -> int:
        """A stop-and-wait sender's append of one record (a ``SpoolRecord``'s fields) in one call, without the writer's lock
        (the GIL is held throughout, so it falls between two calls of the writer thread; only the event
        loop's thread appends): if ``open`` with a ``file``, the record plain, its source the one
        ``set_source`` gave and the budget allows it (fewer than ``max_records`` kept), the next id, its entry
        copied into ``file`` (no ``msync``: for
        ``synchronous = "normal"``), the record kept, ``fold_at`` set (``fold_seconds`` after the first
        record kept; 0 once ``fold_records`` are kept), ``wake`` called if ``writer_idle`` and this gives
        the writer work, and the record counted in the tally (``take_tally``). Returns the id (> 0), or
        ``APPEND_DECLINED`` (no room, too many kept), ``APPEND_NEW_SOURCE``, ``APPEND_NOT_PLAIN`` (payload
        not exactly ``bytes``, kind not a ``str`` or received_ns not a 64-bit ``int``) or ``APPEND_CLOSED``
        (not ``open``): nothing written. ``OSError``: the file as before and ``room`` 0."""
    def set_source(self, source: object, source_json: bytes) -> None:
        """The source ``append_record`` takes (by identity) and its JSON for the journal."""
    def take_tally(self) -> tuple[int, int, float, float, list[float]]:
        """What ``append_record`` counted since the last call: records, the first one's received_ns, the
        ack latencies' sum and maximum (seconds), the latest latencies oldest first (at most
        ``latency_window``); the tally starts again."""
    @property
    def tally_records(self) -> int:
        """Records ``append_record`` counted since the last ``take_tally``."""
    open: bool
    """``append_record`` may append (False by default: the writer opens it)."""
    file: JournalFile | None
    """The journal file ``append_record`` writes to."""
    writer_idle: bool
    """The writer waits for work (``append_record`` clears it when it calls ``wake``)."""
    fold_at: float
    """When the kept records are due for a fold, ``time.monotonic()`` seconds (0: now)."""
    max_records: int
    """``append_record`` declines a record while this many are kept."""
    fold_seconds: float
    """``fold_at`` is this long after the first record kept ..."""
    fold_records: int
    """... or now once this many are kept."""
    def keep(self, id: int, kind: str, source: object, received_ns: int, payload: bytes, estimate: int) -> int:
        """Keep one record (ids increase from call to call); returns how many are kept now."""
    def take(self) -> JournalLedger:
        """Everything kept, as a ledger of its own (a fold's, without a budget); this one is left empty and
        keeps its budget."""
    def append(
        self,
        file: JournalFile,
        kind: str,
        source_json: bytes,
        source: object,
        received_ns: int,
        payload: bytes,
        estimate: int,
        max_records: int,
        sync: bool = False,
    ) -> int | None:
        """A stop-and-wait sender's append in one call: if ``room`` holds twice ``estimate`` and fewer than
        ``max_records`` are kept, the next id (``issued + 1``), its entry written to ``file`` (then
        ``fdatasync`` without the GIL with ``sync``), the record kept, ``issued`` and ``room`` moved on;
        the id, or None (declined, nothing written). ``OSError``: the file as before and ``room`` 0."""
    issued: int
    """The highest id handed out so far (the journal's and the database's)."""
    room: int
    """Bytes journal appends may still take before a group looks again."""
    def put_back(self, earlier: JournalLedger) -> None:
        """Put ``earlier`` (a fold's records that did not make it; emptied) in front of what was kept since."""
    def __len__(self) -> int: ...
    @property
    def last_id(self) -> int:
        """The highest id kept (0: none)."""
    @property
    def estimate(self) -> int:
        """The sum of the kept records' estimates (bytes in the database, roughly)."""
    def plan(self, after_id: int) -> tuple[int, int, tuple[int, int] | None, list[Any]]:
        """For a fold of the records with ids above ``after_id`` (those below are in SQLite already): their
        count, the sum of their estimates, (id, received_ns) of the first, and their distinct sources in
        order of first use (``rows`` takes their source ids in that order)."""
    def rows(
        self, after_id: int, source_ids: list[int], chunk: int
    ) -> tuple[list[tuple[Any, ...]], list[tuple[int, str, int, int, bytes]]]:
        """The ``INSERT`` parameters of those records: each full chunk of ``chunk`` rows as one flat tuple
        (id, kind, source id, received_ns, payload per row), the rest one tuple per row. ``ValueError``
        when ``source_ids`` is shorter than the plan's sources."""
