"""Offline commands: decode files to JSON, import files through the spool, export the spool.

They reuse the live path (SpoolRecord → DocumentBuilder → documents) so a file decodes exactly
as the same records would have arriving over the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO, TYPE_CHECKING, Any

import orjson

from auditrecv.config import Config
from auditrecv.spool.record import RecordKind, Source, SpoolRecord

if TYPE_CHECKING:
    from auditrecv.pipeline import BuiltDoc

log = logging.getLogger("auditrecv.tools")

# The compiled core (native/): its stub lives in native/python, out of mypy's sight from here.
_native: Any = importlib.import_module("auditrecv._native")
# `decode --raw` prints every token of a record, as the Python decoder does: no native caps.
_NO_CAP = sys.maxsize

_JSON_OPTS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS


def _json_default(obj: Any) -> Any:
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj).hex()
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps(obj: Any, *, sort_keys: bool = False) -> bytes:
    """One JSON line as `auditrecv decode` prints it; `sort_keys` for output compared as text (golden files)."""
    return orjson.dumps(obj, default=_json_default, option=_JSON_OPTS | (orjson.OPT_SORT_KEYS if sort_keys else 0))


def read_input(name: str) -> tuple[RecordKind, Iterator[tuple[int, bytes]]]:
    """A file (or '-' for stdin) as raw records: BSM records by their header length (file tokens
    skipped; the trail is read whole and split by the native core), Linux logs line by line, streamed.
    The int beside each record is its file offset (BSM) or line number (Linux), for error messages.
    Raises OSError if the file cannot be read.
    """
    stdin = sys.stdin.buffer
    kind = input_kind(name)
    if kind == "bsm":  # split by the native core (the Python iter_trail_file decodes every record to split)
        return kind, bsm_records(read_whole(name))

    def lines() -> Iterator[tuple[int, bytes]]:
        # Binary line iteration splits on b"\n" only: str.splitlines() would also split on the
        # 0x1d that introduces a record's ENRICHED section.
        with contextlib.ExitStack() as stack:
            src = stdin if name == "-" else stack.enter_context(open(name, "rb"))
            for n, line in enumerate(src, start=1):
                line = line.rstrip(b"\r\n")
                if line.strip():
                    yield n, line

    return kind, lines()


def _chunks(
    items: Iterator[tuple[int, bytes]], size: int = 1000, max_bytes: int = 1 << 62
) -> Iterator[list[tuple[int, bytes]]]:
    chunk: list[tuple[int, bytes]] = []
    held = 0
    for item in items:
        chunk.append(item)
        held += len(item[1])
        if len(chunk) >= size or held >= max_bytes:
            yield chunk
            chunk, held = [], 0
    if chunk:
        yield chunk


def decode_config(schema: str) -> Config:
    """The configuration `auditrecv decode` maps with: the built-in defaults, in the asked document shape."""
    cfg = Config()
    if schema == "auditrecv-v1":
        cfg = dataclasses.replace(cfg, search=dataclasses.replace(cfg.search, schema="auditrecv-v1"))
    return cfg


def decode_files(
    names: list[str],
    *,
    raw: bool,
    schema: str,
    host: str,
    out: IO[bytes] | None = None,
    clock: Callable[[], int] = time.time_ns,
    observer: dict[str, Any] | None = None,
) -> int:
    """`auditrecv decode`: one JSON document per record (BSM) or event (Linux) on stdout, streamed.

    `out`, `clock` (the arrival time given to every record of a file, Unix ns) and `observer` (default:
    this host's `observer_info`) are for tests that need the output reproducible. The native core writes
    the JSON lines (`--raw` and documents of both kinds).
    """
    from auditrecv.schema.observer import observer_info

    if out is None:
        out = sys.stdout.buffer
    failed = 0
    cfg = decode_config(schema)
    if observer is None:
        observer = observer_info(cfg)
    for name in names:
        try:
            if raw:
                failed += _decode_raw_native(name, out)
                continue
            source = Source(transport="file", peer=host)
            kind, items = read_input(name)
            if kind == "bsm":
                failed += _decode_bsm_native(
                    name, items, cfg=cfg, source=source, observer=observer, received_ns=clock(), out=out
                )
                continue
            docs = file_documents(kind, items, cfg=cfg, source=source, observer=observer, received_ns=clock())
            for first, built in docs:
                line = _json_line(built)
                if line is None:
                    if built.doc is not None:
                        failed += 1
                        print(f"auditrecv: {name}: line {first}: {_UNENCODABLE}", file=sys.stderr)
                    continue
                errors = _doc_errors(orjson.loads(line)) if b'"decode_error' in line else ""
                if errors:
                    failed += 1
                    print(f"auditrecv: {name}: line {first}: {errors}", file=sys.stderr)
                out.write(line)
        except OSError as exc:
            print(f"auditrecv: {name}: {exc.strerror or exc}", file=sys.stderr)
            failed += 1
        except Exception as exc:  # a bug in the core: one line for the file, then the next file
            print(f"auditrecv: {name}: decoding stopped: {_describe(exc)}", file=sys.stderr)
            failed += 1
    out.flush()
    return 1 if failed else 0


def file_documents(
    kind: RecordKind,
    items: Iterable[tuple[int, bytes]],
    *,
    cfg: Config,
    source: Source,
    observer: dict[str, Any],
    received_ns: int,
) -> Iterator[tuple[int, BuiltDoc]]:
    """The documents `auditrecv decode` makes of one input, streamed in output order, each with the file
    position (offset or line number) of its first record. `items` are (position, raw record) pairs as
    `read_input` yields them; a file has no arrival times, so every record gets `received_ns`.

    Built by the live path (SpoolRecord → DocumentBuilder), so a file decodes as the same records would
    have arriving over the network: the document JSON in `source`. Records that make no document (an
    EOE after its event) come as a BuiltDoc without a document.
    """
    from auditrecv.pipeline import DocumentBuilder

    builder = DocumentBuilder(cfg, observer, record_clock=True)
    positions: dict[int, int] = {}  # builder id -> file position, for records not yet emitted
    next_id = 0
    for chunk in _chunks(iter(items)):
        batch = []
        for position, payload in chunk:
            next_id += 1
            positions[next_id] = position
            batch.append((next_id, SpoolRecord(kind, payload, source, received_ns)))
        yield from _positioned(builder.finish(builder.add(batch)), positions)
    yield from _positioned(builder.flush(), positions)


def _positioned(docs: list[BuiltDoc], positions: dict[int, int]) -> Iterator[tuple[int, BuiltDoc]]:
    for built in docs:
        first = positions.get(built.spool_ids[0], 0) if built.spool_ids else 0
        for i in built.spool_ids:
            positions.pop(i, None)
        yield first, built


def input_kind(name: str) -> RecordKind:
    """BSM or Linux, from the first bytes (as `read_input` tells them apart); stdin is peeked, not consumed."""
    if name == "-":
        stdin = sys.stdin.buffer
        head = stdin.peek(4096)[:4096] if hasattr(stdin, "peek") else b""
    else:
        with open(name, "rb") as f:
            head = f.read(4096)
    return "bsm" if _native.bsm_looks_like(head) else "linux"


def read_whole(name: str) -> bytes:
    """A file (or '-' for stdin) in memory, for the native core, which splits it itself."""
    if name == "-":
        return sys.stdin.buffer.read()
    with open(name, "rb") as f:
        return f.read()


def bsm_records(data: bytes) -> Iterator[tuple[int, bytes]]:
    """A trail's records as `read_input` yields them (file tokens left out; bytes that start no record
    come as one record, an undecodable one), split by the native core."""
    for kind, offset, length in _native.bsm_split_trail(data):
        if kind != _native.ITEM_FILE:
            yield offset, data[offset : offset + length]


def _decode_raw_native(name: str, out: IO[bytes]) -> int:
    """--raw: the decoders' own output before any mapping (the Python decoders' JSON lines, byte for byte),
    and its error messages."""
    kind = input_kind(name)
    data = read_whole(name)
    failed = 0
    if kind == "bsm":
        lines = []
        for offset, payload in bsm_records(data):
            try:
                line, errors = _native.bsm_decode_raw(payload, offset, max_tokens=_NO_CAP, max_array_items=_NO_CAP)
            except Exception as exc:  # one record the core cannot write: say so, go on
                failed += 1
                print(f"auditrecv: {name}: offset {offset}: record not written: {_describe(exc)}", file=sys.stderr)
                continue
            lines.append(line)
            if errors:
                failed += 1
                print(f"auditrecv: {name}: offset {offset}: {'; '.join(errors)}", file=sys.stderr)
            if len(lines) >= 1000:
                out.write(b"".join(lines))
                lines.clear()
        out.write(b"".join(lines))
        return failed

    def write(chunk: bytes) -> None:
        nonlocal failed
        out.write(chunk)
        # An event's error is its top-level "error" key, null in every line without one: look closer only
        # at lines with an error text (a key followed by a string; inside a string a quote is escaped).
        if b'"error":"' not in chunk:
            return
        for line in chunk.split(b"\n"):
            if b'"error":"' in line:
                event = orjson.loads(line)
                if event.get("error"):
                    failed += 1
                    print(f"auditrecv: {name}: {event['error']}", file=sys.stderr)

    _native.linux_decode_raw_into(data, write, name)
    return failed


def _decode_bsm_native(
    name: str,
    items: Iterator[tuple[int, bytes]],
    *,
    cfg: Config,
    source: Source,
    observer: dict[str, Any],
    received_ns: int,
    out: IO[bytes],
) -> int:
    """BSM documents by the native core (`ecs_bsm_documents`), as `file_documents` builds them."""
    from auditrecv.pipeline import native_caps

    failed = 0
    for chunk in _chunks(items):
        rows = _native.ecs_bsm_documents(
            [payload for _, payload in chunk],
            schema=cfg.search.schema,
            received_ns=received_ns,
            source=source.to_dict(),
            observer=observer,
            **native_caps(cfg.limits),
        )
        lines = []
        for (offset, _), (_, doc, why) in zip(chunk, rows, strict=True):
            if why is not None:  # an integer beyond 64 bits (or not even a dead letter could be made of it)
                failed += 1
                reason = _UNENCODABLE if why.startswith("unencodable") else f"no document ({why})"
                print(f"auditrecv: {name}: offset {offset}: {reason}", file=sys.stderr)
                continue
            errors = _doc_errors(orjson.loads(doc)) if b'"decode_error' in doc else ""
            if errors:
                failed += 1
                print(f"auditrecv: {name}: offset {offset}: {errors}", file=sys.stderr)
            lines.append(doc + b"\n")
        out.write(b"".join(lines))
    return failed


def _describe(exc: BaseException) -> str:
    """An exception as one line for the user: its type and message, no traceback."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


_UNENCODABLE = "document not written: it holds an integer beyond 64 bits, which JSON engines refuse"


def _json_line(built: BuiltDoc) -> bytes | None:
    """A built document as one JSON line; None for none, or for one no JSON line can hold (an integer
    beyond 64 bits: the native core hands it over as a dict, which the sink would dead-letter)."""
    if built.source is not None:
        return built.source + b"\n"
    if built.doc is None:
        return None
    try:
        return dumps(built.doc)
    except TypeError:
        return None


def _doc_errors(doc: dict[str, Any]) -> str:
    """The decode errors a document carries (ECS: tagged decode_error; compat shape: decode_errors)."""
    if doc.get("decode_errors"):
        return "; ".join(map(str, doc["decode_errors"]))
    tags = doc.get("tags")
    if not (isinstance(tags, list) and "decode_error" in tags):
        return ""
    event, error = doc.get("event"), doc.get("error")
    reason = event.get("reason") if isinstance(event, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return str(reason or message or "could not be decoded completely")


async def import_files(cfg: Config, names: list[str], *, host: str, wait: bool) -> int:
    """`auditrecv import`: spool every record of the files, then index them (unless --no-wait).

    Idempotent: the document identity depends on the host and the record content only, so importing
    the same file twice creates nothing new.
    """
    from auditrecv.pipeline import Pipeline
    from auditrecv.schema.observer import observer_info
    from auditrecv.sink import open_indexer
    from auditrecv.spool import Spool, SpoolFull

    if wait and not cfg.search.urls:
        print(
            "auditrecv: import: no search engine configured ([search] urls); use --no-wait to only spool",
            file=sys.stderr,
        )
        return 2
    cfg.spool_path.parent.mkdir(parents=True, exist_ok=True)
    spool = await Spool.open(cfg.spool_path, cfg.spool)
    indexer = await open_indexer(cfg.search) if wait else None
    pipeline = Pipeline(cfg, spool, indexer, observer_info(cfg), record_clock=True) if indexer is not None else None
    total = 0
    try:
        for name in names:
            try:
                kind, items = read_input(name)
                count = 0
                source = Source(transport="import", peer=host)
                now = time.time_ns()
                # One append must fit in a spool that has room for several: a full spool is drained between them.
                for chunk in _chunks(items, max_bytes=cfg.spool.max_bytes // 8):
                    records = [SpoolRecord(kind, payload, source, now) for _, payload in chunk]
                    while True:
                        try:
                            await spool.append(records)
                            break
                        except SpoolFull:
                            if pipeline is None:
                                print(
                                    f"auditrecv: import: the spool is full after {total + count} records; "
                                    "run without --no-wait, or raise [spool] max_bytes",
                                    file=sys.stderr,
                                )
                                return 1
                            await pipeline.drain(final=False)  # make room by indexing what is there
                    count += len(records)
                    _progress(f"{name}: spooled {count} {kind} records")
            except OSError as exc:
                print(f"auditrecv: {name}: {exc.strerror or exc}", file=sys.stderr)
                return 1
            _progress(f"{name}: spooled {count} {kind} records", done=True)
            total += count
        if pipeline is None:
            return 0
        task = asyncio.create_task(pipeline.drain())
        while not task.done():
            await asyncio.wait({task}, timeout=0.5)
            _progress(f"indexed {pipeline.stats['deleted']} of {total} records")
        await task
        _progress(f"indexed {pipeline.stats['deleted']} records", done=True)
    finally:
        if indexer is not None:
            await indexer.close()
        await spool.close()
    return 0


@dataclasses.dataclass
class _Export:
    """What `export` wrote so far, and the spool ids it may delete once the file is safe."""

    out: IO[bytes]
    spool_ids: list[int] = dataclasses.field(default_factory=list)
    doc_ids: set[str] = dataclasses.field(default_factory=set)  # ~100 bytes per document
    written: int = 0
    duplicates: int = 0

    def write(self, built: Any) -> None:
        """Write one document unless one with its id was written already (a resent record: the engine
        would have answered 409). Its spool ids go either way: the written copy stands for them."""
        line = _json_line(built)
        if line is None and built.doc is not None:
            print(f"auditrecv: export: document {built.doc_id}: {_UNENCODABLE}; left in the spool", file=sys.stderr)
            return
        self.spool_ids.extend(built.spool_ids)
        if line is None:
            return
        if built.doc_id in self.doc_ids:
            self.duplicates += 1
            return
        self.doc_ids.add(built.doc_id)
        self.out.write(line)
        self.written += 1


def _progress(text: str, *, done: bool = False) -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\r\x1b[K" + text + ("\n" if done else ""))
        sys.stderr.flush()
    elif done:
        print(text, file=sys.stderr)


async def export_spool(cfg: Config, target: str, *, keep: bool) -> int:
    """`auditrecv export --ndjson FILE`: documents for everything spooled, then (unless --keep) drop them.

    The records are deleted only after the file is written and fsynced, so a crash in between
    exports them twice at worst, never loses them. Like the engine (`create` with the same `_id`),
    the export keeps one document per document id: a record that was committed, not acknowledged
    and sent again is in the spool twice but comes out once.
    """
    from auditrecv.pipeline import DocumentBuilder
    from auditrecv.schema.observer import observer_info
    from auditrecv.spool import Spool

    if not cfg.spool_path.exists():
        print(f"auditrecv: export: no spool at {cfg.spool_path}", file=sys.stderr)
        return 1
    spool = await Spool.open(cfg.spool_path, cfg.spool)
    builder = DocumentBuilder(cfg, observer_info(cfg), record_clock=True)
    out: IO[bytes] = sys.stdout.buffer if target == "-" else open(target, "ab")  # noqa: SIM115
    export = _Export(out)
    try:
        cursor = 0
        while True:
            items = await spool.read(cursor, 5000)
            if not items:
                break
            cursor = items[-1][0]
            for built in builder.finish(builder.add(items)):
                export.write(built)
        for built in builder.flush():
            export.write(built)
        out.flush()
        if out is not sys.stdout.buffer:
            os.fsync(out.fileno())
        ids = export.spool_ids
        if not keep and ids:
            for start in range(0, len(ids), 5000):
                await spool.delete(ids[start : start + 5000])
    finally:
        if out is not sys.stdout.buffer:
            out.close()
        await spool.close()
    skipped = f" ({export.duplicates} duplicates of records resent by their host left out)" if export.duplicates else ""
    print(f"auditrecv: exported {export.written} documents to {target}{skipped}", file=sys.stderr)
    return 0
