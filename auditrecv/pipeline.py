"""The loop after the spool: read → decode → map to ECS → enrich → bulk index → delete confirmed.

This is the only module that knows every stage. Nothing here sits on a receiver's ack path: the
receivers have already acked once the spool committed, so this loop may be slow, restart, or wait
for the engine for an hour without losing anything. A spooled record is deleted only after the
engine confirmed the document built from it (created, duplicate, or dead-lettered).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from auditrecv.config import Config, Limits, LinuxEvents
from auditrecv.decode.bsm import decode_record
from auditrecv.decode.linux import EventAssembler, LinuxEvent, parse_line
from auditrecv.decode.linux.model import COMPLETE_ORPHAN_EOE, LinuxRecord
from auditrecv.schema import (
    bsm_to_ecs,
    dead_letter_doc,
    document_id,
    limit_document,
    linux_id_parts,
    linux_to_ecs,
    to_compat_v1,
    within_limits_fast,
)
from auditrecv.sink import BulkDoc, index_for
from auditrecv.spool import SpoolClosed, SpoolError
from auditrecv.spool.record import Source, SpoolRecord

log = logging.getLogger("auditrecv.pipeline")

# The compiled core (native/): its stub lives in native/python, out of mypy's sight from here.
_native: Any = importlib.import_module("auditrecv._native")

Enricher = Callable[[dict[str, Any]], Awaitable[None]]

# The record kinds whose documents the native core builds straight into bulk lines; the others go through
# the Python decoders and mappers (which still build what the native core hands back).
NATIVE_KINDS = frozenset({"bsm", "linux"})


@dataclass(slots=True)
class BuiltDoc:
    """An ECS document, its identity, and the spool ids of every raw record it was built from.

    `doc` is None for records that make no document (an EOE whose event was already emitted):
    their spool ids are simply forgotten.
    """

    doc: dict[str, Any] | None
    doc_id: str
    spool_ids: list[int] = field(default_factory=list)
    # Built natively: the serialized document and its index (then `doc` is None). Until its batch is
    # serialized (`DocumentBuilder.serialize`), `native` holds the batch and the rest is unknown.
    source: bytes | None = None
    lines: bytes | None = None  # the bulk lines (action and document) of `source`, as the native body has them
    index: str = ""
    native: NativeBatch | None = None
    # A native Linux document written without enrichment values: an enriching pipeline turns it back into
    # a dict (see _unprebuild).
    linux: bool = False

    @property
    def has_document(self) -> bool:
        return self.doc is not None or self.source is not None


@dataclass(slots=True)
class NativeBatch:
    """The records of one kind from one sender and one read, mapped by the native core; the documents
    stay in Rust until `DocumentBuilder.serialize` writes them as bulk lines, enriched with values looked
    up once for the sender (zone/host metadata is per source, not per field)."""

    source: Source
    items: list[tuple[int, SpoolRecord]]
    documents: Any  # _native.BsmDocuments
    built: list[BuiltDoc] = field(default_factory=list)

    def zone_refs(self) -> list[str]:
        return list(self.documents.zone_refs())


@dataclass(frozen=True, slots=True)
class _LineTag:
    spool_id: int
    source: Source
    received_ns: int


def native_caps(limits: Limits) -> dict[str, int]:
    """``[limits]`` as the native document entry points take them."""
    return {
        "max_document_bytes": limits.max_document_bytes,
        "max_tokens": limits.max_tokens,
        "max_array_items": limits.max_array_items,
        "max_string_chars": limits.max_string_chars,
    }


def linux_documents_settings(events: LinuxEvents, limits: Limits) -> dict[str, Any]:
    """The keyword arguments of ``_native.LinuxDocuments`` besides schema, observer and clock."""
    return {
        "grace_seconds": events.grace_seconds,
        "max_age_seconds": events.max_age_seconds,
        "max_records": events.max_records,
        "max_linux_event_bytes": limits.max_linux_event_bytes,
        **native_caps(limits),
    }


def linux_source_key(source: Source) -> str:
    """Lines are grouped per sender: events never mix lines of two peers or two listeners."""
    return f"{source.listener or source.transport}|{source.peer}"


class DocumentBuilder:
    """Turns spooled records into documents. Synchronous and stateful (the Linux event assembler),
    so one instance is used by one worker at a time."""

    def __init__(
        self, cfg: Config, observer: dict[str, Any], *, record_clock: bool = False, native: bool = False
    ) -> None:
        """Linux events are completed on the clock of the records themselves, never on when this
        builder happens to process them, so a pipeline held up by the engine (or restarted) groups
        lines exactly as a prompt one would: `record_clock` uses the records' own timestamps (files
        and spool exports, where arrival means nothing), otherwise their arrival time at the receiver.

        `native`: records of the NATIVE_KINDS come out as BuiltDocs pending in a NativeBatch, to be
        finished by `serialize` (the pipeline); otherwise every document is a dict (decode, export)."""
        ev = cfg.decode.linux
        self._record_clock = record_clock
        self._clock = 0.0  # the newest record time (record_clock) or arrival time seen so far
        self._limits = cfg.limits
        self._assembler = EventAssembler(
            grace_seconds=ev.grace_seconds,
            max_age_seconds=ev.max_age_seconds,
            max_records=ev.max_records,
            max_bytes=cfg.limits.max_linux_event_bytes,
        )
        self._observer = observer
        self._compat = cfg.search.schema == "auditrecv-v1"
        self._schema = cfg.search.schema
        self._search = cfg.search
        self._native = native and native_naming(cfg)
        self._caps = native_caps(cfg.limits)
        self.stats = {"bsm_records": 0, "linux_lines": 0, "linux_events": 0, "dead_letters": 0, "truncated": 0}
        # Native Linux: one LinuxDocuments per sender key (its assembler holds that sender's open events),
        # the counters already folded into `stats`, and each line whose event is still open (a hand-back
        # is built the Python way with the source of its first line, or from its lines if it has no event).
        self._linux_native = self._native and "linux" in NATIVE_KINDS
        self._linux_settings = linux_documents_settings(ev, cfg.limits)
        self._linux_senders: dict[str, Any] = {}
        self._linux_counted: dict[str, dict[str, int]] = {}
        self._linux_lines: dict[int, tuple[Source, bytes, int]] = {}
        self._linux_first: dict[str, Source] = {}  # the first source of each sender key
        self._linux_mixed: set[str] = set()  # sender keys seen with more than one identity
        self._linux_values: Mapping[str, dict[str, Any]] = {}  # the enrichment of the call under way

    def add(
        self,
        items: Iterable[tuple[int, SpoolRecord]],
        now: float | None = None,
        *,
        linux_enrichment: Mapping[str, dict[str, Any]] | None = None,
    ) -> list[BuiltDoc]:
        """`now` (tests) overrides the records' clock. `linux_enrichment`: the enrichment values of Linux
        sender keys (see `linux_senders`), merged natively into their documents; the others' native
        documents come back to be enriched as dicts (`BuiltDoc.linux`)."""
        self._linux_values = linux_enrichment or {}
        out: list[BuiltDoc] = []
        senders: dict[Source, list[tuple[int, SpoolRecord]]] = {}
        slots: dict[Source, list[int]] = {}
        run: list[tuple[int, SpoolRecord]] = []  # consecutive native Linux lines of one source
        for spool_id, rec in items:
            if rec.kind == "linux" and self._linux_native:
                if run and run[0][1].source != rec.source:
                    out += self._linux_run(run, now)
                    run = []
                run.append((spool_id, rec))
                continue
            if self._native and rec.kind in NATIVE_KINDS:
                senders.setdefault(rec.source, []).append((spool_id, rec))
                slots.setdefault(rec.source, []).append(len(out))
                out.append(_PLACEHOLDER)
            elif rec.kind == "bsm":
                out.append(self._bsm(spool_id, rec))
            else:
                out += self._linux_line(spool_id, rec, now)
        if run:
            out += self._linux_run(run, now)
        out.extend(self._linux(e) for e in self._assembler.poll(self._clock if now is None else now))
        if self._linux_senders:
            # as DocumentBuilder's one assembler after each batch: every sender's events, on the shared
            # arrival clock (the record clock is each sender's own: see _linux_run)
            shared = now if now is not None else (None if self._record_clock else self._clock)
            out += self._linux_poll(shared)
        for source, group in senders.items():
            for slot, built in zip(slots[source], self._bsm_native(source, group), strict=True):
                out[slot] = built
        return out

    def _linux_line(self, spool_id: int, rec: SpoolRecord, now: float | None) -> list[BuiltDoc]:
        """One Linux line the Python way: parsed, assembled, the events it completed mapped."""
        self.stats["linux_lines"] += 1
        tag = _LineTag(spool_id, rec.source, rec.received_ns)
        record = parse_line(rec.payload)
        if self._record_clock:
            if record.time_ns is not None:
                self._clock = max(self._clock, record.time_ns / 1e9)
        else:
            self._clock = max(self._clock, rec.received_ns / 1e9)
        events = self._assembler.add(record, linux_source_key(rec.source), self._clock if now is None else now, tag=tag)
        return [self._linux(e) for e in events]

    def _bsm_native(self, source: Source, group: list[tuple[int, SpoolRecord]]) -> list[BuiltDoc]:
        """The BSM records of one sender, mapped natively (see NativeBatch); on a native bug, the Python way."""
        try:
            documents = _native.BsmDocuments(
                [rec.payload for _, rec in group],
                schema=self._schema,
                received_ns=[rec.received_ns for _, rec in group],
                source=source.to_dict(),
                observer=self._observer,
                **self._caps,
            )
        except Exception:
            log.exception(
                "%d BSM records from %s could not be mapped natively; mapping them in Python", len(group), source.peer
            )
            return [self._bsm(spool_id, rec) for spool_id, rec in group]
        self.stats["bsm_records"] += len(group)
        batch = NativeBatch(source, group, documents)
        batch.built = [BuiltDoc(None, "", [spool_id], native=batch) for spool_id, _ in group]
        return batch.built

    def serialize(self, batch: NativeBatch, enrichment: dict[str, Any] | None) -> list[BuiltDoc]:
        """Write a NativeBatch's documents as bulk lines, with the sender's enrichment values merged in.
        Records the native core hands back (over [limits], unencodable, a native bug) are built the
        Python way as dicts, and returned: they are enriched the Python way, document by document.
        Synchronous and CPU-bound: run it in a thread."""
        data_stream = self._search.data_stream if self._search.mode == "data_stream" else None
        try:
            body, layout = batch.documents.bulk_body(
                index=self._search.index, data_stream=data_stream, enrichment=enrichment
            )
        except Exception:
            log.exception(
                "%d BSM documents could not be serialized natively; building them in Python", len(batch.items)
            )
            layout = [("", "", 0, 0, "native_error")] * len(batch.items)
            body = b""
        handed_back = []
        for built, (spool_id, rec), (doc_id, index, start, end, why) in zip(
            batch.built, batch.items, layout, strict=True
        ):
            built.native = None
            if why:
                python = self._bsm(spool_id, rec, counted=True)
                built.doc, built.doc_id = python.doc, python.doc_id
                handed_back.append(built)
                continue
            built.lines = body[start:end]
            built.source = built.lines[built.lines.index(b"\n") + 1 : -1]
            built.index = index
            built.doc_id = doc_id
            if _DEAD_LETTER_MARK in built.source:
                self.stats["dead_letters"] += 1
        return handed_back

    def in_python(self, batch: NativeBatch) -> None:
        """Build a NativeBatch's documents the Python way instead (enrichment that is not per sender)."""
        for built, (spool_id, rec) in zip(batch.built, batch.items, strict=True):
            python = self._bsm(spool_id, rec, counted=True)
            built.native = None
            built.doc, built.doc_id = python.doc, python.doc_id

    def poll(
        self, now: float | None = None, *, linux_enrichment: Mapping[str, dict[str, Any]] | None = None
    ) -> list[BuiltDoc]:
        """Events whose grace window or maximum age has passed. Called when every spooled record has
        been read, so on the arrival clock it is "now" (no later line of an open event can be waiting)."""
        self._linux_values = linux_enrichment or {}
        native_now = now if now is not None or self._record_clock else max(self._clock, time.time())
        if now is None:
            now = self._clock if self._record_clock else max(self._clock, time.time())
        out = [self._linux(e) for e in self._assembler.poll(now)]
        return out + self._linux_poll(native_now) if self._linux_senders else out

    def flush(self, *, linux_enrichment: Mapping[str, dict[str, Any]] | None = None) -> list[BuiltDoc]:
        """Everything still open (end of input or shutdown)."""
        self._linux_values = linux_enrichment or {}
        out = [self._linux(e) for e in self._assembler.flush()]
        for key, documents in self._linux_senders.items():
            out += self._linux_rows(key, documents, documents.flush_bulk(**self._naming(key)))
        return out

    def _naming(self, key: str) -> dict[str, Any]:
        data_stream = self._search.data_stream if self._search.mode == "data_stream" else None
        return {"index": self._search.index, "data_stream": data_stream, "enrichment": self._linux_values.get(key)}

    def linux_senders(self, items: Iterable[tuple[int, SpoolRecord]]) -> dict[str, Source]:
        """The Linux sender keys whose events `add(items)` (or `poll`, `flush`: no items) may complete
        natively, each with a source whose enrichment values are those of every event of the key: keys
        whose lines came with different identities (peer, principal) are left out, to be enriched per
        document."""
        out: dict[str, Source] = {}
        mixed: set[str] = set()
        if not self._linux_native:
            return out
        candidates = [(key, s) for key, s in self._linux_first.items() if len(self._linux_senders[key])]
        candidates += [(linux_source_key(r.source), r.source) for _, r in items if r.kind == "linux"]
        for key, source in candidates:
            seen = out.get(key) or self._linux_first.get(key)
            if key in self._linux_mixed or (seen is not None and _identity(seen) != _identity(source)):
                mixed.add(key)
            out.setdefault(key, source)
        return {key: source for key, source in out.items() if key not in mixed}

    def _linux_run(self, run: list[tuple[int, SpoolRecord]], now: float | None) -> list[BuiltDoc]:
        """Consecutive Linux lines of one source, assembled and mapped natively by their sender's
        LinuxDocuments. Deliberate differences from the one Python assembler: the record clock is each
        sender's own (one host's skewed clock no longer times out another's events) and `max_in_flight`
        bounds each sender's open events, not all senders' together (one sender's flood no longer pushes
        out another's events). On the arrival clock, the sender's events first time out as of the shared
        clock, as the Python assembler's expiry on any sender's line would have done."""
        source = run[0][1].source
        key = linux_source_key(source)
        documents = self._linux_senders.get(key)
        out: list[BuiltDoc] = []
        if documents is None:
            documents = self._linux_senders[key] = _native.LinuxDocuments(
                schema=self._schema, observer=self._observer, record_clock=self._record_clock, **self._linux_settings
            )
            self._linux_counted[key] = {}
        elif not self._record_clock and (now is not None or self._clock):
            out += self._linux_rows(
                key, documents, documents.poll_bulk(self._clock if now is None else now, **self._naming(key))
            )
        ids = [spool_id for spool_id, _ in run]
        received = [rec.received_ns for _, rec in run]
        if not self._record_clock:
            self._clock = max(self._clock, max(received) / 1e9)
        for spool_id, rec in run:
            self._linux_lines[spool_id] = (source, rec.payload, rec.received_ns)
        first = self._linux_first.setdefault(key, source)
        if _identity(first) != _identity(source):
            self._linux_mixed.add(key)
        try:
            built = documents.add_bulk(
                [rec.payload for _, rec in run],
                received_ns=received,
                source=source.to_dict(),
                spool_ids=ids,
                now=now,
                **self._naming(key),
            )
        except Exception:  # a native bug (NativePanic): these lines go the Python way rather than stop the loop
            log.exception("%d Linux lines from %s could not be built natively; building them in Python", len(run), key)
            for spool_id in ids:
                self._linux_lines.pop(spool_id, None)
            for spool_id, rec in run:
                out += self._linux_line(spool_id, rec, now)
            return out
        return out + self._linux_rows(key, documents, built)

    def _linux_poll(self, now: float | None) -> list[BuiltDoc]:
        out: list[BuiltDoc] = []
        for key, documents in self._linux_senders.items():
            if len(documents):
                out += self._linux_rows(key, documents, documents.poll_bulk(now, **self._naming(key)))
        return out

    def _linux_rows(self, key: str, documents: Any, built: tuple[bytes, list[Any]]) -> list[BuiltDoc]:
        """BuiltDocs from a LinuxDocuments bulk body; hand-backs built the Python way from the event."""
        body, layout = built
        enriched = key in self._linux_values
        out = []
        for doc_id, index, start, end, why, ids, event_json, received_ns in layout:
            lines = [self._linux_lines.pop(spool_id, None) for spool_id in ids]
            if why == "no_document":
                out.append(BuiltDoc(None, "", list(ids)))
            elif why:
                if not why.startswith("over_limits"):
                    log.warning("Linux event from %s handed back by the native core (%s)", key, why)
                first = lines[0][0] if lines and lines[0] else Source(transport="unknown")
                if event_json is not None:  # json, not orjson: integers past 64 bits stay exact
                    out.append(self._linux_event(json.loads(event_json), first, received_ns, list(ids)))
                else:
                    out += self._linux_again(key, list(zip(ids, lines, strict=True)))
            else:
                bulk = body[start:end]
                doc_source = bulk[bulk.index(b"\n") + 1 : -1]
                out.append(
                    BuiltDoc(None, doc_id, list(ids), source=doc_source, lines=bulk, index=index, linux=not enriched)
                )
        counted = self._linux_counted[key]
        for name, value in documents.stats().items():
            if name in self.stats:
                self.stats[name] += value - counted.get(name, 0)
                counted[name] = value
        return out

    def _linux_again(self, key: str, lines: list[tuple[int, tuple[Source, bytes, int] | None]]) -> list[BuiltDoc]:
        """An event handed back without its event (the native core cannot write it: an integer past 64
        bits, a README known bug), assembled again from its lines the Python way. Its `complete` is what
        these lines alone give (eoe, single, max_records, max_bytes, or else flush: a timeout or eviction
        is not seen again)."""
        assembler = EventAssembler(
            grace_seconds=self._assembler.grace_seconds,
            max_age_seconds=self._assembler.max_age_seconds,
            max_records=self._assembler.max_records,
            max_bytes=self._limits.max_linux_event_bytes,
        )
        events: list[LinuxEvent] = []
        for spool_id, line in lines:
            if line is not None:
                source, payload, received_ns = line
                tag = _LineTag(spool_id, source, received_ns)
                events += assembler.add(parse_line(payload), key, 0.0, tag=tag)
        events += assembler.flush()
        self.stats["linux_events"] -= len(events)  # counted by the native core
        return [self._linux(e) for e in events]

    def _linux_event(self, event: dict[str, Any], source: Source, received_ns: int | None, ids: list[int]) -> BuiltDoc:
        """`_linux` for an event the native core handed back (its `interpret()` dict); already counted."""
        doc_id = document_id("linux", source, linux_id_parts(event))
        records = event.get("records") or []
        raw = "\n".join(str(r.get("raw", "")) for r in records).encode("utf-8", "surrogateescape")
        try:
            if self._compat:
                doc = to_compat_v1(event, source, received_ns=received_ns)
            else:
                doc = linux_to_ecs(event, source, self._observer, received_ns=received_ns)
        except Exception as exc:
            log.exception("Linux event from %s could not be mapped", source.peer)
            self.stats["dead_letters"] += 1
            doc = dead_letter_doc(
                raw, source, f"internal error: {exc!r}", "linux", observer=self._observer, received_ns=received_ns
            )
        raw_len = sum(len(str(r.get("raw", ""))) for r in records)
        if not within_limits_fast(raw_len, len(records), self._limits):
            doc = self._limit(doc, raw, "linux")
        return BuiltDoc(doc, doc_id, ids)

    def _limit(self, doc: dict[str, Any], raw: bytes, kind: str) -> dict[str, Any]:
        """Every document, BSM or Linux, ECS or v1, comes here unless `within_limits_fast` proved it
        small from the raw size and token count (almost all do): see schema/limits.py."""
        limited = limit_document(doc, raw, kind, self._limits)
        if limited.get("auditrecv", {}).get("truncated"):
            self.stats["truncated"] += 1
            log.warning(
                "%s document of %d bytes over [limits]: indexed truncated (cut: %s), raw input kept",
                kind,
                limited["auditrecv"]["truncation"]["document_bytes"],
                ", ".join(limited["auditrecv"]["truncation"]["fields"]),
            )
        return limited

    def _bsm(self, spool_id: int, rec: SpoolRecord, *, counted: bool = False) -> BuiltDoc:
        if not counted:
            self.stats["bsm_records"] += 1
        tokens = 0
        try:
            decoded = decode_record(rec.payload)
            tokens = len(decoded.tokens)
            if decoded.event_id is None:  # not even a header: nothing to map, keep the bytes
                self.stats["dead_letters"] += 1
                doc = dead_letter_doc(
                    rec.payload,
                    rec.source,
                    "; ".join(decoded.errors),
                    "bsm",
                    observer=self._observer,
                    received_ns=rec.received_ns,
                )
            elif self._compat:
                doc = to_compat_v1(decoded, rec.source, received_ns=rec.received_ns)
            else:
                doc = bsm_to_ecs(decoded, rec.source, self._observer, received_ns=rec.received_ns)
        except Exception as exc:  # a mapper bug must not lose the record
            log.exception("BSM record %d could not be mapped", spool_id)
            self.stats["dead_letters"] += 1
            doc = dead_letter_doc(
                rec.payload,
                rec.source,
                f"internal error: {exc!r}",
                "bsm",
                observer=self._observer,
                received_ns=rec.received_ns,
            )
        payload = rec.payload
        if not within_limits_fast(len(payload), tokens, self._limits):
            doc = self._limit(doc, payload, "bsm")
        return BuiltDoc(doc, document_id("bsm", rec.source, [payload]), [spool_id])

    def _linux(self, event: LinuxEvent) -> BuiltDoc:
        self.stats["linux_events"] += 1
        tags = [t for t in event.tags if isinstance(t, _LineTag)]
        ids = [t.spool_id for t in tags]
        source = tags[0].source if tags else Source(transport="unknown")
        received_ns = tags[0].received_ns if tags else None
        if event.complete == COMPLETE_ORPHAN_EOE:
            return BuiltDoc(None, "", ids)
        doc_id = document_id("linux", source, linux_id_parts(event))
        records = event.records
        try:
            if self._compat:
                doc = to_compat_v1(event, source, received_ns=received_ns)
            else:
                doc = linux_to_ecs(event, source, self._observer, received_ns=received_ns)
        except Exception as exc:
            log.exception("Linux event from %s could not be mapped", source.peer)
            self.stats["dead_letters"] += 1
            doc = dead_letter_doc(
                _lines(records),
                source,
                f"internal error: {exc!r}",
                "linux",
                observer=self._observer,
                received_ns=received_ns,
            )
        raw_len = sum(len(r.raw) for r in records)
        if not within_limits_fast(raw_len, len(records), self._limits):
            doc = self._limit(doc, _lines(records), "linux")
        return BuiltDoc(doc, doc_id, ids)


_PLACEHOLDER = BuiltDoc(None, "")
# Only a dead letter's "event" object starts so: inside a JSON string these quotes would be escaped.
_DEAD_LETTER_MARK = b'"event":{"kind":"pipeline_error"'


def native_naming(cfg: Config) -> bool:
    """Whether the native bulk body can name the indices as `index_for` does (strftime directives it
    knows; a data stream always)."""
    if cfg.search.mode == "data_stream":
        return True
    try:
        _native.ecs_bsm_bulk_body(
            [], schema=cfg.search.schema, received_ns=0, source={}, observer={}, index=cfg.search.index
        )
    except ValueError:
        log.info(
            "index pattern %r: BSM documents are built in Python (a directive the native core does not format)",
            cfg.search.index,
        )
        return False
    return True


def _identity(source: Source) -> tuple[str, str, bool]:
    """What Enricher.for_sender looks a source up by."""
    return (source.peer, source.principal, source.authenticated)


def _unprebuild(docs: list[BuiltDoc]) -> None:
    """Native Linux documents written without their sender's enrichment (its lines came with more than one
    identity, or `uniform_sender` refused it): an enriching pipeline takes them back as dicts (byte-equal
    JSON, so the same dicts the Python mapper makes) and enriches them the Python way."""
    for d in docs:
        if d.linux and d.source is not None:
            d.doc = orjson.loads(d.source)
            d.source = d.lines = None
            d.index = ""


def _lines(records: list[LinuxRecord]) -> bytes:
    """A Linux event's raw input: its lines as received."""
    return "\n".join(r.raw for r in records).encode("utf-8", "surrogateescape")


class Pipeline:
    """Ships spooled records to the engine; see the module docstring for the guarantees."""

    def __init__(
        self,
        cfg: Config,
        spool: Any,
        indexer: Any,
        observer: dict[str, Any],
        enrich: Enricher | None = None,
        *,
        record_clock: bool = False,
    ) -> None:
        self._cfg = cfg
        self._spool = spool
        self._indexer = indexer
        # The Enricher itself (bound method or object) can give values per sender, which the native
        # documents take; any other callable enriches dicts, so then every document is built in Python.
        owner: Any = enrich if hasattr(enrich, "for_sender") else getattr(enrich, "__self__", None)
        sender: Any = owner if hasattr(owner, "for_sender") else None
        self._sender_enricher = sender
        self._enrich: Enricher | None = sender.enrich if sender is not None else enrich
        native = enrich is None or sender is not None
        self._builder = DocumentBuilder(cfg, observer, record_clock=record_clock, native=native)
        self._cursor = 0
        self._inflight: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(max(1, cfg.search.concurrency))
        # Documents the engine refused along with their dead letters, retried in the background so they
        # hold no slot: a handful of them must not stop every later record (issue 14).
        self._parked: list[BuiltDoc] = []
        self._max_parked = max(1, cfg.search.batch_max_docs)
        self._parked_task: asyncio.Task[None] | None = None
        self.stats = self._builder.stats
        self.stats.update({"indexed": 0, "deleted": 0, "parked": 0})

    async def run(self) -> None:
        """Forever: read what is new, build documents, index them, delete what was confirmed."""
        batch = self._cfg.search.batch_max_docs
        tick = max(0.05, min(self._cfg.decode.linux.grace_seconds, 1.0))
        try:
            while True:
                items = await self._spool.read(self._cursor, batch)
                if items:
                    self._cursor = items[-1][0]
                    docs = await self._build(self._builder.add, items)
                else:
                    await self._spool.wait_for_records(self._cursor, tick)
                    docs = await self._build(self._builder.poll)
                if docs:
                    await self._submit(docs)
        finally:
            for task in list(self._inflight):
                task.cancel()

    async def drain(self, *, final: bool = True) -> None:
        """Process everything unread in the spool (import). `final` also flushes the Linux events still
        open; an intermediate drain (to make room in a full spool) leaves them open for later lines."""
        batch = self._cfg.search.batch_max_docs
        while True:
            items = await self._spool.read(self._cursor, batch)
            if not items:
                break
            self._cursor = items[-1][0]
            await self._submit(await self._build(self._builder.add, items))
        if final:
            await self._submit(await self._build(self._builder.flush))
        await self.wait_idle()

    async def _build(self, step: Callable[..., list[BuiltDoc]], *items: Any) -> list[BuiltDoc]:
        """One DocumentBuilder step (add, poll, flush) in a thread, given the enrichment values of every
        Linux sender whose events it may complete: native Linux documents are written when their event
        completes, so their sender's values are looked up first (once per sender and step, as for a BSM
        batch). Senders `uniform_sender` refuses get their documents back as dicts, enriched per document."""
        values: dict[str, dict[str, Any]] = {}
        enricher = self._sender_enricher
        if enricher is not None:
            schema = self._cfg.search.schema
            senders = {
                key: source
                for key, source in self._builder.linux_senders(items[0] if items else []).items()
                if enricher.uniform_sender(source, schema)
            }
            found = await asyncio.gather(*(enricher.for_sender(source, []) for source in senders.values()))
            values = dict(zip(senders, found, strict=True))
        return await asyncio.to_thread(step, *items, linux_enrichment=values)

    async def wait_idle(self) -> None:
        while self._inflight:
            await asyncio.gather(*list(self._inflight), return_exceptions=True)

    async def _index(self, docs: list[BuiltDoc]) -> list[BuiltDoc]:
        """The documents the engine confirmed (created, duplicate or dead-lettered)."""
        settings = self._cfg.search
        bulk = []
        for d in docs:
            if d.source is not None:
                bulk.append(BulkDoc(d.index, d.doc_id, d.source, token=d, lines=d.lines))
            elif d.doc is not None:
                bulk.append(BulkDoc(index_for(settings, d.doc), d.doc_id, d.doc, token=d))
        outcomes = await self._indexer.index(bulk) if bulk else []
        return [d for d in docs if not d.has_document] + [o.token for o in outcomes if o.confirmed]

    async def _finish_native(self, docs: list[BuiltDoc]) -> None:
        """Serialize the native batches among `docs`, each enriched with its sender's values (looked up
        once per sender and batch). A sender whose documents would ask the enricher different questions
        (see Enricher.uniform_sender) has its documents built and enriched the Python way."""
        batches = list({id(d.native): d.native for d in docs if d.native is not None}.values())
        enricher = self._sender_enricher
        if enricher is None:
            values: list[dict[str, Any] | None] = [None] * len(batches)
        else:
            uniform = []
            for batch in batches:
                if enricher.uniform_sender(batch.source, self._cfg.search.schema):
                    uniform.append(batch)
                else:
                    await asyncio.to_thread(self._builder.in_python, batch)
            batches = uniform
            # every sender's lookups at once, as enrich() runs every document's: one budget, not one per sender
            values = await asyncio.gather(*(enricher.for_sender(b.source, b.zone_refs()) for b in batches))
        for batch, found in zip(batches, values, strict=True):
            await asyncio.to_thread(self._builder.serialize, batch, found)

    async def _forget(self, ids: list[int], *, quiet: bool = False) -> None:
        """Delete confirmed records; if the disk refuses, retry in halves (they would only be re-sent as
        409s). Halves because on a full filesystem a big delete needs more WAL than the reserve gave back,
        and retrying the same batch would never make room."""
        delay = 0.5
        while True:
            try:
                await self._spool.delete(ids)
                return
            except SpoolClosed:  # shutting down: they stay spooled and come back as 409s
                return
            except SpoolError as exc:
                if len(ids) > 1:
                    if not quiet:  # once per batch, not once per half
                        log.warning("could not delete %d confirmed records (%s); deleting in halves", len(ids), exc)
                    half = len(ids) // 2
                    await self._forget(ids[:half], quiet=True)
                    await self._forget(ids[half:], quiet=True)
                    return
                log.error("could not delete a confirmed record from the spool (%s); retrying", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _submit(self, docs: list[BuiltDoc]) -> None:
        if not docs:
            return
        await self._slots.acquire()
        task = asyncio.create_task(self._ship(docs))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _ship(self, docs: list[BuiltDoc]) -> None:
        """Index until every document is confirmed; a document is never given up on. The sink returns
        only what the engine refused with its dead letter too; after a few tries those are parked
        (retried in the background, still spooled) so they do not hold this slot forever."""
        try:
            await self._finish_native(docs)
            if self._enrich is not None:
                _unprebuild(docs)
                await asyncio.gather(*(self._enrich(d.doc) for d in docs if d.doc is not None), return_exceptions=True)
            pending = docs
            delay = 1.0
            tries = 0
            while pending:
                pending = await self._attempt(pending, delay)
                tries += 1
                if pending:
                    if tries >= self._cfg.search.max_document_retries and self._park(pending):
                        return
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 60.0)
        finally:
            self._slots.release()

    async def _attempt(self, pending: list[BuiltDoc], delay: float) -> list[BuiltDoc]:
        """One indexing call: forget what was confirmed, return the rest."""
        try:
            confirmed = await self._index(pending)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("indexing %d documents failed; retrying in %.0f s", len(pending), delay)
            confirmed = []
        ids = [i for d in confirmed for i in d.spool_ids]
        if ids:
            await self._forget(ids)
        self.stats["indexed"] += len(confirmed)
        self.stats["deleted"] += len(ids)
        done = {id(d) for d in confirmed}
        return [d for d in pending if id(d) not in done]

    def _park(self, docs: list[BuiltDoc]) -> bool:
        """Hand `docs` to the background retry; False (keep the slot and retry) when that is full."""
        if len(self._parked) + len(docs) > self._max_parked:
            return False
        self._parked.extend(docs)
        self.stats["parked"] = len(self._parked)
        log.warning(
            "%d document(s) refused even as dead letters: retried in the background, still in the spool (%d parked)",
            len(docs),
            len(self._parked),
        )
        if self._parked_task is None:
            task = asyncio.create_task(self._retry_parked(), name="pipeline-parked")
            self._parked_task = task
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
        return True

    async def _retry_parked(self) -> None:
        delay = 30.0
        try:
            while self._parked:
                await asyncio.sleep(delay)
                docs, self._parked = self._parked, []
                self._parked.extend(await self._attempt(docs, delay))
                self.stats["parked"] = len(self._parked)
                delay = min(delay * 2, 600.0)
        finally:
            self._parked_task = None
