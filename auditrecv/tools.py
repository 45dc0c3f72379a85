"""Offline commands: decode files to JSON, import files through the spool, export the spool.

They reuse the live path (SpoolRecord → DocumentBuilder → documents) so a file decodes exactly
as the same records would have arriving over the network.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from auditrecv.config import Config
from auditrecv.decode.bsm import iter_records, sniff_format
from auditrecv.decode.linux import decode_lines
from auditrecv.spool.record import Source, SpoolRecord

log = logging.getLogger("auditrecv.tools")

_JSON_OPTS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS


def _json_default(obj: Any) -> Any:
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj).hex()
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, default=_json_default, option=_JSON_OPTS)


def _read(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    return Path(name).read_bytes()


def file_records(name: str, data: bytes, source: Source) -> tuple[str, Iterator[tuple[int, SpoolRecord]]]:
    """Split a file into spool records: BSM records by their header length, Linux logs by line.

    The int beside each record is its file offset (BSM) or line number (Linux), for error messages.
    """
    kind = sniff_format(data[:4096]) or "linux"
    now = time.time_ns()

    def bsm() -> Iterator[tuple[int, SpoolRecord]]:
        for rec in iter_records(data):
            yield rec.offset, SpoolRecord("bsm", rec.raw, source, now)

    def linux() -> Iterator[tuple[int, SpoolRecord]]:
        for n, line in enumerate(data.splitlines(), start=1):
            if line.strip():
                yield n, SpoolRecord("linux", line, source, now)

    return kind, (bsm() if kind == "bsm" else linux())


def decode_files(names: list[str], *, raw: bool, schema: str, host: str) -> int:
    """`auditrecv decode`: one JSON document per record (BSM) or event (Linux) on stdout."""
    from auditrecv.app import observer_info
    from auditrecv.config import Config
    from auditrecv.pipeline import DocumentBuilder

    out: IO[bytes] = sys.stdout.buffer
    failed = 0
    cfg = Config()
    if schema == "auditrecv-v1":
        cfg = dataclasses.replace(cfg, search=dataclasses.replace(cfg.search, schema="auditrecv-v1"))
    for name in names:
        try:
            data = _read(name)
        except OSError as exc:
            print(f"auditrecv: {name}: {exc.strerror}", file=sys.stderr)
            failed += 1
            continue
        source = Source(transport="file", peer=host)
        kind, items = file_records(name, data, source)
        if raw and kind == "bsm":
            for rec in iter_records(data):
                if rec.errors:
                    failed += 1
                    print(f"auditrecv: {name}: offset {rec.offset}: {'; '.join(rec.errors)}", file=sys.stderr)
                out.write(dumps(_bsm_raw(rec)))
            continue
        if raw:
            lines = (line.decode("utf-8", "surrogateescape") for line in data.splitlines() if line.strip())
            for event in decode_lines(lines, source=name):
                if event.get("error"):
                    failed += 1
                    print(f"auditrecv: {name}: {event['error']}", file=sys.stderr)
                out.write(dumps(event))
            continue
        builder = DocumentBuilder(cfg, observer_info(cfg), record_clock=True)
        offsets: dict[int, int] = {}
        batch: list[tuple[int, SpoolRecord]] = []
        for i, (offset, spooled) in enumerate(items):
            offsets[i] = offset
            batch.append((i, spooled))
        docs = builder.add(batch) + builder.flush()
        for built in docs:
            doc = built.doc
            if doc is None:
                continue
            errors = _doc_errors(doc)
            if errors:
                failed += 1
                where = "offset" if kind == "bsm" else "line"
                first = offsets.get(built.spool_ids[0], 0) if built.spool_ids else 0
                print(f"auditrecv: {name}: {where} {first}: {errors}", file=sys.stderr)
            out.write(dumps(doc))
    out.flush()
    return 1 if failed else 0


def _bsm_raw(rec: Any) -> dict[str, Any]:
    if hasattr(rec, "to_dict"):
        return dict(rec.to_dict())
    return dataclasses.asdict(rec)


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
    from auditrecv.app import observer_info
    from auditrecv.pipeline import Pipeline
    from auditrecv.sink import open_indexer
    from auditrecv.spool import Spool

    if wait and not cfg.search.urls:
        print(
            "auditrecv: import: no search engine configured ([search] urls); use --no-wait to only spool",
            file=sys.stderr,
        )
        return 2
    cfg.spool_path.parent.mkdir(parents=True, exist_ok=True)
    spool = await Spool.open(cfg.spool_path, cfg.spool)
    total = 0
    try:
        for name in names:
            try:
                data = _read(name)
            except OSError as exc:
                print(f"auditrecv: {name}: {exc.strerror}", file=sys.stderr)
                return 1
            source = Source(transport="import", peer=host)
            kind, items = file_records(name, data, source)
            pending: list[SpoolRecord] = []
            count = 0
            for _, rec in items:
                pending.append(rec)
                if len(pending) >= 1000:
                    await spool.append(pending)
                    count += len(pending)
                    pending = []
                    _progress(f"{name}: spooled {count} {kind} records")
            if pending:
                await spool.append(pending)
                count += len(pending)
            _progress(f"{name}: spooled {count} {kind} records", done=True)
            total += count
        if not wait:
            return 0
        indexer = await open_indexer(cfg.search)
        try:
            pipeline = Pipeline(cfg, spool, indexer, observer_info(cfg), record_clock=True)
            task = asyncio.create_task(pipeline.drain())
            while not task.done():
                await asyncio.wait({task}, timeout=0.5)
                _progress(f"indexed {pipeline.stats['deleted']} of {total} records")
            await task
            _progress(f"indexed {pipeline.stats['deleted']} records", done=True)
        finally:
            await indexer.close()
    finally:
        await spool.close()
    return 0


def _write_built(out: IO[bytes], built: Any, ids: list[int]) -> int:
    ids.extend(built.spool_ids)
    if built.doc is None:
        return 0
    out.write(dumps(built.doc))
    return 1


def _progress(text: str, *, done: bool = False) -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\r\x1b[K" + text + ("\n" if done else ""))
        sys.stderr.flush()
    elif done:
        print(text, file=sys.stderr)


async def export_spool(cfg: Config, target: str, *, keep: bool) -> int:
    """`auditrecv export --ndjson FILE`: documents for everything spooled, then (unless --keep) drop them.

    The records are deleted only after the file is written and fsynced, so a crash in between
    exports them twice at worst, never loses them.
    """
    from auditrecv.app import observer_info
    from auditrecv.pipeline import DocumentBuilder
    from auditrecv.spool import Spool

    if not cfg.spool_path.exists():
        print(f"auditrecv: export: no spool at {cfg.spool_path}", file=sys.stderr)
        return 1
    spool = await Spool.open(cfg.spool_path, cfg.spool)
    builder = DocumentBuilder(cfg, observer_info(cfg), record_clock=True)
    out: IO[bytes] = sys.stdout.buffer if target == "-" else open(target, "ab")  # noqa: SIM115
    written = 0
    try:
        cursor = 0
        ids: list[int] = []
        while True:
            items = await spool.read(cursor, 5000)
            if not items:
                break
            cursor = items[-1][0]
            for built in builder.add(items):
                written += _write_built(out, built, ids)
        for built in builder.flush():
            written += _write_built(out, built, ids)
        out.flush()
        if out is not sys.stdout.buffer:
            os.fsync(out.fileno())
        if not keep and ids:
            for start in range(0, len(ids), 5000):
                await spool.delete(ids[start : start + 5000])
    finally:
        if out is not sys.stdout.buffer:
            out.close()
        await spool.close()
    print(f"auditrecv: exported {written} documents to {target}", file=sys.stderr)
    return 0
