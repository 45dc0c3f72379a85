"""The loop after the spool: read → decode → map to ECS → enrich → bulk index → delete confirmed.

This is the only module that knows every stage. Nothing here sits on a receiver's ack path: the
receivers have already acked once the spool committed, so this loop may be slow, restart, or wait
for the engine for an hour without losing anything. A spooled record is deleted only after the
engine confirmed the document built from it (created, duplicate, or dead-lettered): the sink retries
and tells (`Indexer.submit`), the pipeline forgets.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain, repeat
from typing import TYPE_CHECKING, Any, Protocol, TypedDict

import orjson
from prometheus_client.core import CounterMetricFamily, Metric

from auditrecv import _native
from auditrecv.config import Config, Limits, LinuxEvents, index_pattern_problem
from auditrecv.metrics import counter
from auditrecv.sink import BulkBatch, Indexer, Settlement, index_for
from auditrecv.sink.contract import BodyBytes, loads_exact
from auditrecv.spool import SpoolClosed, SpoolError
from auditrecv.spool.contract import PipelineSpool
from auditrecv.spool.record import Source, SpoolRecord

log = logging.getLogger("auditrecv.pipeline")

Document = dict[str, Any]  # a JSON object, as orjson reads it
Enrichment = Mapping[str, object]  # the values of one sender, as _native's `enrichment=` takes them
if TYPE_CHECKING:  # the stub's alias: not in the compiled module
    from auditrecv._native import LinuxColumns


class _Naming(TypedDict):
    """Where a LinuxDocuments call writes its documents, and with which enrichment values."""

    index: str
    data_stream: str | None
    enrichment: Mapping[str, object] | None


class SenderEnricher(Protocol):
    """The enricher as the pipeline uses it (auditrecv.enrich.Enricher): values looked up once per sender
    and merged natively, and `enrich` for the documents that ask per document."""

    def uniform_sender(self, source: Source, schema: str) -> bool: ...

    async def for_sender(self, source: Source, zone_refs: Sequence[str]) -> Enrichment: ...

    async def enrich(self, doc: Document) -> None: ...


@dataclass(slots=True)
class BuiltDoc:
    """A document, its identity, and the spool ids of every raw record it was built from.

    The native core writes documents as JSON: `source` (the document) and `lines` (its bulk action and
    document lines) for `index`. Until its batch is serialized (`DocumentBuilder.serialize`), `native`
    holds the batch and the rest is unknown. `doc` is the document as a dict instead, only where it is
    enriched per document in Python (`as_dicts`) or came from a whole native call that failed (a dead
    letter). A BuiltDoc with neither makes no document (an EOE whose event was already emitted): its
    spool ids are simply forgotten.
    """

    doc: Document | None
    doc_id: str
    spool_ids: list[int] = field(default_factory=list)
    source: bytes | None = None
    # the bulk lines (action and document) of `source`, as the native body has them (a Linux body written
    # whole: the memoryview the native core returned, not copied)
    lines: BodyBytes | None = None
    index: str = ""
    native: NativeBatch | None = None
    # Written without its sender's enrichment values: an enriching pipeline enriches it as a dict.
    unenriched: bool = False
    # Several documents written whole in `lines` (a Linux bulk body, see DocumentBuilder(whole_bodies=)):
    # where each one's lines end in it, their ids, indexes and spool ids.
    whole: tuple[list[int], list[str], list[str], list[list[int]]] | None = None

    @property
    def has_document(self) -> bool:
        return self.doc is not None or self.source is not None or self.native is not None or self.whole is not None


@dataclass(slots=True)
class NativeBatch:
    """The BSM records from one sender and one read, mapped by the native core; the documents stay in
    Rust until `DocumentBuilder.serialize` writes them as bulk lines, enriched with values looked up once
    for the sender (zone/host metadata is per source, not per field)."""

    source: Source
    items: list[tuple[int, SpoolRecord]]
    documents: _native.BsmDocuments
    slots: list[int]  # where each record's document comes among the outputs of its step (`Built`)
    # One BuiltDoc per record, made only when the batch is not written whole (or for `add`'s callers).
    built: list[BuiltDoc] = field(default_factory=list)
    # Written whole (`serialize(whole=True)`): the body, and each document's end offset, id and index in it.
    written: tuple[BodyBytes, list[int], list[str], list[str]] | None = None

    def zone_refs(self) -> list[str]:
        return list(self.documents.zone_refs())

    def docs(self) -> list[BuiltDoc]:
        """Its records' BuiltDocs, made now if they were not yet."""
        if not self.built:
            self.built = [BuiltDoc(None, "", [spool_id], native=self) for spool_id, _ in self.items]
        return self.built

    def tokens(self) -> list[list[int]]:
        """The spool ids of each document, for a batch written whole."""
        return [[spool_id] for spool_id, _ in self.items]


@dataclass(slots=True)
class Built:
    """What one DocumentBuilder step made. The BSM records are in `natives` (one pending batch per sender,
    a document per record), so that a batch written whole costs nothing per document in Python; `docs`
    holds every other output (Linux documents, dead letters). `at` places each of `docs` among all the
    outputs in record order (`size` of them, counting one per BSM record; a batch's `slots` place its
    records), for `in_order`."""

    docs: list[BuiltDoc] = field(default_factory=list)
    natives: list[NativeBatch] = field(default_factory=list)
    at: list[int] = field(default_factory=list)
    size: int = 0
    sorted: bool = True  # `at` is increasing (dead letters of a BSM sender placed afterwards make it not)

    def place(self, docs: list[BuiltDoc]) -> None:
        """`docs` come next in record order."""
        self.docs += docs
        self.at += range(self.size, self.size + len(docs))
        self.size += len(docs)

    def in_order(self) -> list[BuiltDoc]:
        """Every output in record order (as `DocumentBuilder.add` returns them) but the documents of
        batches written whole (those go to the sink as bodies)."""
        pending = [batch for batch in self.natives if batch.written is None]
        if not pending and self.sorted:
            return self.docs
        merged: list[BuiltDoc | None] = [None] * self.size
        for doc, slot in zip(self.docs, self.at, strict=True):
            merged[slot] = doc
        for batch in pending:
            for slot, doc in zip(batch.slots, batch.docs(), strict=True):
                merged[slot] = doc
        return [doc for doc in merged if doc is not None]


class NativeCaps(TypedDict):
    """``[limits]`` as the native document entry points take them."""

    max_document_bytes: int
    max_tokens: int
    max_array_items: int
    max_string_chars: int


class LinuxSettings(NativeCaps):
    """The keyword arguments of ``_native.LinuxDocuments`` besides schema, observer and clock."""

    grace_seconds: float
    max_age_seconds: float
    max_records: int
    max_linux_event_bytes: int


def native_caps(limits: Limits) -> NativeCaps:
    return NativeCaps(
        max_document_bytes=limits.max_document_bytes,
        max_tokens=limits.max_tokens,
        max_array_items=limits.max_array_items,
        max_string_chars=limits.max_string_chars,
    )


def linux_documents_settings(events: LinuxEvents, limits: Limits) -> LinuxSettings:
    return LinuxSettings(
        grace_seconds=events.grace_seconds,
        max_age_seconds=events.max_age_seconds,
        max_records=events.max_records,
        max_linux_event_bytes=limits.max_linux_event_bytes,
        **native_caps(limits),
    )


def linux_source_key(source: Source) -> str:
    """Lines are grouped per sender: events never mix lines of two peers or two listeners."""
    return f"{source.listener or source.transport}|{source.peer}"


# Only a dead letter's "event" object starts so, and only a cut document's "auditrecv" holds this: inside
# a JSON string these quotes would be escaped.
_DEAD_LETTER_MARK = _native.DEAD_LETTER_MARK
_TRUNCATED_MARK = _native.TRUNCATED_MARK


class DocumentBuilder:
    """Turns spooled records into documents, all built by the native core. Synchronous and stateful
    (the Linux event assemblers), so one instance is used by one worker at a time."""

    def __init__(
        self,
        cfg: Config,
        observer: Mapping[str, str],
        *,
        record_clock: bool = False,
        whole_bodies: bool = False,
        enriched_later: bool = False,
        arrival_floor: float | None = None,
    ) -> None:
        """Linux events are completed on the clock of the records themselves, never on when this
        builder happens to process them, so a pipeline held up by the engine (or restarted) groups
        lines exactly as a prompt one would: `record_clock` uses the records' own timestamps (files
        and spool exports, where arrival means nothing), otherwise their arrival time at the receiver.

        BSM records come out as BuiltDocs pending in a NativeBatch, finished by `serialize` (the
        pipeline, with enrichment values) or `finish` (decode, export); Linux documents come out written.
        Raises ValueError for a daily index pattern the native core cannot format (config validation
        refuses those).

        `whole_bodies` (the pipeline): a Linux bulk body whose every event made a clean document (or none: an
        orphan EOE) comes back as one BuiltDoc holding it (`BuiltDoc.whole`), unless its documents were
        written unenriched and are `enriched_later` as dicts.

        `arrival_floor` (the service: when it started): on the arrival clock, lines that arrived before it
        were spooled by an earlier run and count as arriving then, so the time the receiver was down does
        not close their events before the senders are back to resend what was not acknowledged."""
        if cfg.search.mode == "daily" and (problem := index_pattern_problem(cfg.search.index)):
            raise ValueError(problem)
        self._record_clock = record_clock
        self._whole_bodies = whole_bodies
        self._enriched_later = enriched_later
        self._clock = 0.0  # the newest arrival time seen so far (arrival clock)
        self._floor_ns = 0 if record_clock or arrival_floor is None else int(arrival_floor * 1e9)
        self._observer = observer
        self._schema = cfg.search.schema
        self._search = cfg.search
        self._caps = native_caps(cfg.limits)
        self.stats = {"bsm_records": 0, "linux_lines": 0, "linux_events": 0, "dead_letters": 0, "truncated": 0}
        # One LinuxDocuments per sender key (its assembler holds that sender's open events), the counters
        # already folded into `stats`, and the line of each spool id whose event is still open (a whole
        # native call that fails dead-letters them).
        self._linux_settings = linux_documents_settings(cfg.decode.linux, cfg.limits)
        self._linux_senders: dict[str, _native.LinuxDocuments] = {}
        self._linux_counted: dict[str, dict[str, int]] = {}
        self._linux_lines: dict[int, SpoolRecord] = {}
        self._linux_first: dict[str, Source] = {}  # the first source of each sender key
        self._linux_mixed: set[str] = set()  # sender keys seen with more than one identity
        self._linux_values: Mapping[str, Enrichment] = {}  # the enrichment of the call under way

    def add(
        self,
        items: Iterable[tuple[int, SpoolRecord]],
        now: float | None = None,
        *,
        linux_enrichment: Mapping[str, Enrichment] | None = None,
    ) -> list[BuiltDoc]:
        """`read`, as one BuiltDoc per output in record order (decode, export, tests): a BSM record's is
        pending in its NativeBatch until `serialize` or `finish`."""
        return self.read(items, now, linux_enrichment=linux_enrichment).in_order()

    def read(
        self,
        items: Iterable[tuple[int, SpoolRecord]],
        now: float | None = None,
        *,
        linux_enrichment: Mapping[str, Enrichment] | None = None,
    ) -> Built:
        """`now` (tests) overrides the records' clock. `linux_enrichment`: the enrichment values of Linux
        sender keys (see `linux_senders`), merged natively into their documents; the others' documents
        come back marked `unenriched`, to be enriched as dicts. The BSM records of each sender make one
        NativeBatch and no BuiltDoc (the pipeline's usual read: see `Built`)."""
        self._linux_values = linux_enrichment or {}
        out = Built()
        # per BSM sender: its records and their slots; `last` saves hashing the same Source record by record
        senders: dict[Source, tuple[list[tuple[int, SpoolRecord]], list[int]]] = {}
        last: Source | None = None
        group: list[tuple[int, SpoolRecord]] = []
        slots: list[int] = []
        run: list[tuple[int, SpoolRecord]] = []  # consecutive Linux lines of one source
        for item in items:
            rec = item[1]
            if rec.kind == "linux":
                if run and run[0][1].source is not rec.source and run[0][1].source != rec.source:
                    out.place(self._linux_run(run, now))
                    run = []
                run.append(item)
                continue
            if rec.source is not last:
                last = rec.source
                group, slots = senders.setdefault(last, ([], []))
            group.append(item)
            slots.append(out.size)
            out.size += 1
        if run:
            out.place(self._linux_run(run, now))
        if self._linux_senders:
            # every sender's events time out on the shared arrival clock after each batch (the record clock
            # is each sender's own: see _linux_run)
            shared = now if now is not None else (None if self._record_clock else self._clock)
            out.place(self._linux_poll(shared))
        for source, (group, slots) in senders.items():
            self._bsm(source, group, slots, out)
        return out

    def _bsm(self, source: Source, group: list[tuple[int, SpoolRecord]], slots: list[int], out: Built) -> None:
        """The BSM records of one sender, mapped natively (see NativeBatch); dead letters if that fails."""
        self.stats["bsm_records"] += len(group)
        try:
            documents = _native.BsmDocuments(
                [rec.payload for _, rec in group],
                schema=self._schema,
                received_ns=[rec.received_ns for _, rec in group],
                source=source.to_dict(),
                observer=self._observer,
                **self._caps,
            )
        except Exception as exc:
            log.exception("%d BSM records from %s could not be mapped natively", len(group), source.peer)
            out.docs += [
                self._dead_letter("bsm", [spool_id], rec.payload, rec.source, rec.received_ns, exc)
                for spool_id, rec in group
            ]
            out.at += slots
            out.sorted = False
            return
        out.natives.append(NativeBatch(source, group, documents, slots))

    def _dead_letter(
        self, kind: str, ids: list[int], raw: bytes, source: Source, received_ns: int, exc: BaseException
    ) -> BuiltDoc:
        """The dead letter of input a whole native call failed on (a native bug outside the per-record
        guards), built by the native dead-letter builder."""
        self.stats["dead_letters"] += 1
        doc = orjson.loads(
            _native.dead_letter_json(
                raw,
                kind=kind,
                error=f"internal error: {exc!r}",
                received_ns=received_ns,
                source=source.to_dict(),
                observer=self._observer,
            )
        )
        return BuiltDoc(doc, _native_doc_id(kind, source, raw), ids)

    def serialize(
        self, batch: NativeBatch, enrichment: Enrichment | None, *, unenriched: bool = False, whole: bool = False
    ) -> None:
        """Write a NativeBatch's documents as bulk lines, with the sender's enrichment values merged in.
        Synchronous and CPU-bound: run it in a thread. `unenriched`: written without values, for an
        enriching pipeline to enrich them as dicts (enrichment that is not per sender). `whole`: a batch
        whose every record made a document, none a dead letter nor cut down (the usual case), is kept as
        one body (`batch.written`) for the sink, its BuiltDocs left pending."""
        data_stream = self._search.data_stream if self._search.mode == "data_stream" else None
        try:
            body, ends, ids, indexes, fallbacks, marked = batch.documents.bulk_columns(
                index=self._search.index, data_stream=data_stream, enrichment=enrichment
            )
        except Exception as exc:
            log.exception("%d BSM documents could not be serialized natively", len(batch.items))
            for built, (spool_id, rec) in zip(batch.docs(), batch.items, strict=True):
                letter = self._dead_letter("bsm", [spool_id], rec.payload, rec.source, rec.received_ns, exc)
                built.native, built.doc, built.doc_id = None, letter.doc, letter.doc_id
            return
        # Kept whole when every record made a document, none a dead letter nor cut (those are counted and
        # logged document by document): the documents follow each other in the body.
        if whole and not unenriched and ends and not fallbacks and not marked:
            batch.written = (body, ends, ids, indexes)
            return
        end = 0
        for position, (built, (_, rec)) in enumerate(zip(batch.docs(), batch.items, strict=True)):
            start, end = end, ends[position]  # a record not in the body has start == end
            doc_id, index = ids[position], indexes[position]
            why = fallbacks.get(position, "")
            built.native = None
            built.doc_id = doc_id
            if why.startswith("unencodable"):
                document = _native.bsm_unencodable_json(
                    rec.payload,
                    schema=self._schema,
                    received_ns=rec.received_ns,
                    source=rec.source.to_dict(),
                    observer=self._observer,
                    **self._caps,
                )
                built.doc = _unencodable(document, why, doc_id)
                if built.doc is None:
                    built.spool_ids = []
                continue
            if why:  # not even its dead letter could be built: left in the spool (read again after a restart)
                log.error(
                    "BSM record %s from %s has no document (%s); it stays spooled", doc_id, batch.source.peer, why
                )
                built.spool_ids = []
                continue
            built.lines = lines = bytes(body[start:end])
            built.source = lines[lines.index(b"\n") + 1 : -1]
            built.index = index
            built.unenriched = unenriched
            self._count(built.source, "bsm")

    def finish(self, docs: list[BuiltDoc]) -> list[BuiltDoc]:
        """`docs` with their NativeBatches serialized, unenriched (decode, export: no pipeline)."""
        for batch in {id(d.native): d.native for d in docs if d.native is not None}.values():
            self.serialize(batch, None)
        return docs

    def _count(self, source: bytes, kind: str) -> None:
        """Dead letters and cut documents, counted and the cut ones logged as the Python `_limit` did."""
        if kind == "bsm" and _DEAD_LETTER_MARK in source:
            self.stats["dead_letters"] += 1
        if _TRUNCATED_MARK in source:
            self.stats["truncated"] += 1
            truncation = orjson.loads(source)["auditrecv"]["truncation"]
            log.warning(
                "%s document of %d bytes over [limits]: indexed truncated (cut: %s), raw input kept",
                kind,
                truncation["document_bytes"],
                ", ".join(truncation["fields"]),
            )

    def poll(
        self, now: float | None = None, *, linux_enrichment: Mapping[str, Enrichment] | None = None
    ) -> list[BuiltDoc]:
        """Events whose grace window or maximum age has passed. Called when every spooled record has
        been read, so on the arrival clock it is "now" (no later line of an open event can be waiting)."""
        self._linux_values = linux_enrichment or {}
        if now is None and not self._record_clock:
            now = max(self._clock, time.time())
        return self._linux_poll(now) if self._linux_senders else []

    def flush(self, *, linux_enrichment: Mapping[str, Enrichment] | None = None) -> list[BuiltDoc]:
        """Everything still open (end of input or shutdown)."""
        self._linux_values = linux_enrichment or {}
        out: list[BuiltDoc] = []
        for key in list(self._linux_senders):
            out += self._linux_call(key, lambda documents, naming: documents.flush_columns(**naming))
        return out

    def _naming(self, key: str) -> _Naming:
        data_stream = self._search.data_stream if self._search.mode == "data_stream" else None
        return {"index": self._search.index, "data_stream": data_stream, "enrichment": self._linux_values.get(key)}

    def linux_senders(self, items: Iterable[tuple[int, SpoolRecord]]) -> dict[str, Source]:
        """The Linux sender keys whose events `add(items)` (or `poll`, `flush`: no items) may complete,
        each with a source whose enrichment values are those of every event of the key: keys whose lines
        came with different identities (peer, principal) are left out, to be enriched per document."""
        out: dict[str, Source] = {}
        mixed: set[str] = set()
        candidates = [(key, s) for key, s in self._linux_first.items() if len(self._linux_senders[key])]
        candidates += [(linux_source_key(r.source), r.source) for _, r in items if r.kind == "linux"]
        for key, source in candidates:
            seen = out.get(key) or self._linux_first.get(key)
            if key in self._linux_mixed or (seen is not None and _identity(seen) != _identity(source)):
                mixed.add(key)
            out.setdefault(key, source)
        return {key: source for key, source in out.items() if key not in mixed}

    def _linux_run(self, run: list[tuple[int, SpoolRecord]], now: float | None) -> list[BuiltDoc]:
        """Consecutive Linux lines of one source, assembled and mapped by their sender's LinuxDocuments.
        The record clock is each sender's own (one host's skewed clock never times out another's events)
        and `max_in_flight` bounds each sender's open events. On the arrival clock, the sender's events
        first time out as of the shared clock, as one assembler's expiry on any sender's line would."""
        if now is None and run[0][1].received_ns < self._floor_ns:
            restored = next((i for i, (_, rec) in enumerate(run) if rec.received_ns >= self._floor_ns), len(run))
            floor = self._floor_ns / 1e9
            built = self._linux_run(run[:restored], max(self._clock, floor))
            return built + (self._linux_run(run[restored:], None) if restored < len(run) else [])
        source = run[0][1].source
        key = linux_source_key(source)
        documents = self._linux_senders.get(key)
        out: list[BuiltDoc] = []
        if documents is None:
            documents = self._linux_documents(key)
        elif not self._record_clock and (now is not None or self._clock):
            clock = self._clock if now is None else now
            out += self._linux_call(key, lambda documents, naming: documents.poll_columns(clock, **naming))
        received = [rec.received_ns for _, rec in run]
        if not self._record_clock:
            self._clock = max(self._clock, max(received) / 1e9)
        self._linux_lines.update(run)  # until their event is done (see _linux_call)
        first = self._linux_first.setdefault(key, source)
        if _identity(first) != _identity(source):
            self._linux_mixed.add(key)
        return out + self._linux_call(
            key,
            lambda documents, naming: documents.add_columns(
                [rec.payload for _, rec in run],
                received_ns=received,
                source=source.to_dict(),
                spool_ids=[spool_id for spool_id, _ in run],
                now=now,
                **naming,
            ),
        )

    def _linux_documents(self, key: str) -> _native.LinuxDocuments:
        documents = self._linux_senders[key] = _native.LinuxDocuments(
            schema=self._schema, observer=self._observer, record_clock=self._record_clock, **self._linux_settings
        )
        self._linux_counted[key] = {}
        return documents

    def _linux_poll(self, now: float | None) -> list[BuiltDoc]:
        out: list[BuiltDoc] = []
        for key, documents in list(self._linux_senders.items()):
            if len(documents):
                out += self._linux_call(key, lambda documents, naming: documents.poll_columns(now, **naming))
        return out

    def _linux_call(self, key: str, call: Callable[[_native.LinuxDocuments, _Naming], LinuxColumns]) -> list[BuiltDoc]:
        """One call (add_columns, poll_columns, flush_columns) on a sender's LinuxDocuments, its events as
        BuiltDocs. A whole call that fails (a native
        bug outside the per-event guards) dead-letters every line of that sender still open, one dead
        letter per line, and starts the sender afresh: its assembler's state is not to be trusted."""
        documents = self._linux_senders[key]
        try:
            built = call(documents, self._naming(key))
        except Exception as exc:
            log.exception("Linux lines from %s could not be built natively; dead-lettering the open ones", key)
            open_ids = [i for i, rec in self._linux_lines.items() if linux_source_key(rec.source) == key]
            out = []
            for spool_id in open_ids:
                rec = self._linux_lines.pop(spool_id)
                out.append(self._dead_letter("linux", [spool_id], rec.payload, rec.source, rec.received_ns, exc))
            self._fold_stats(key, documents)
            self._linux_documents(key)
            return out
        return self._linux_built(key, documents, built)

    def _linux_built(self, key: str, documents: _native.LinuxDocuments, columns: LinuxColumns) -> list[BuiltDoc]:
        """BuiltDocs from a LinuxDocuments body in columns. Where every event made a clean document or none
        (an orphan EOE), the body is one BuiltDoc holding it whole (see DocumentBuilder(whole_bodies=)), then
        one empty BuiltDoc per orphan EOE: nothing is made per document. Else one BuiltDoc per event, in
        completion order, each with its own list of spool ids (kept, not copied). The native core counts
        Linux dead letters itself and names the cut documents (counted and logged here)."""
        body, ends, ids, indexes, tokens, cut, others = columns
        lines = self._linux_lines
        deque(map(lines.pop, chain.from_iterable(tokens), repeat(None)), maxlen=0)  # their events are done
        for _, _, spool_ids, _, _ in others:
            for spool_id in spool_ids:
                lines.pop(spool_id, None)
        self._fold_stats(key, documents)
        unenriched = key not in self._linux_values
        whole = bool(ends) and self._whole_bodies and not (unenriched and self._enriched_later)
        if whole and not cut and all(other[3] == "no_document" for other in others):
            return [
                BuiltDoc(None, "", [], lines=body, whole=(ends, ids, indexes, tokens)),
                *(BuiltDoc(None, "", spool_ids) for _, _, spool_ids, _, _ in others),
            ]
        out: list[BuiltDoc] = []
        left = others[::-1]  # taken from the end as their place comes
        start = 0
        for position, end in enumerate(ends):
            while left and left[-1][0] == position:
                self._linux_other(key, left.pop(), out)
            bulk = bytes(body[start:end])
            start = end
            doc_source = bulk[bulk.index(b"\n") + 1 : -1]
            if cut and position in cut:
                self._count(doc_source, "linux")
            doc = BuiltDoc(
                None,
                ids[position],
                tokens[position],
                source=doc_source,
                lines=bulk,
                index=indexes[position],
                unenriched=unenriched,
            )
            out.append(doc)
        while left:
            self._linux_other(key, left.pop(), out)
        return out

    @staticmethod
    def _linux_other(key: str, other: tuple[int, str, list[int], str, bytes | None], out: list[BuiltDoc]) -> None:
        """An event not in its body: an orphan EOE (nothing to index, its lines are done), a document holding an
        integer beyond 64 bits (the sink dead-letters it), or one without even a dead letter (left spooled)."""
        _, doc_id, spool_ids, why, document = other
        if why == "no_document":
            out.append(BuiltDoc(None, "", spool_ids))
        elif why.startswith("unencodable"):
            doc = _unencodable(document, why, doc_id)
            out.append(BuiltDoc(doc, doc_id, spool_ids if doc is not None else []))
        else:  # not even its dead letter could be built: left in the spool (read again after a restart)
            log.error("Linux event %s from %s has no document (%s); its lines stay spooled", doc_id, key, why)

    def _fold_stats(self, key: str, documents: _native.LinuxDocuments) -> None:
        counted = self._linux_counted[key]
        for name, value in documents.stats().items():
            if name in self.stats:
                self.stats[name] += value - counted.get(name, 0)
                counted[name] = value


def _native_doc_id(kind: str, source: Source, raw: bytes) -> str:
    """The document id of raw input dead-lettered whole (a BSM record, or one Linux line)."""
    return str(_native.document_id(kind, source.to_dict(), [raw]))


def _unencodable(document: bytes | None, why: str, doc_id: str) -> Document | None:
    """A document holding an integer beyond 64 bits, as the native core wrote it with those integers: read
    exactly (json, not orjson), it is the dict the Python mappers made, which the sink refuses and
    dead-letters (`serialization_error`, its repr kept in the dead-letter index) as it did before."""
    if document is None:
        log.error("document %s cannot be written, even as a dead letter (%s); its records stay spooled", doc_id, why)
        return None
    doc: Document = json.loads(document)
    return doc


def _identity(source: Source) -> tuple[str, str, bool]:
    """What Enricher.for_sender looks a source up by."""
    return (source.peer, source.principal, source.authenticated)


def _as_dicts(docs: list[BuiltDoc]) -> None:
    """Documents written without their sender's enrichment (a sender whose lines came with more than one
    identity, or that `uniform_sender` refused): an enriching pipeline takes them back as dicts (byte-equal
    JSON) and enriches them the Python way."""
    for d in docs:
        if d.unenriched and d.source is not None:
            d.doc = loads_exact(d.source)
            d.source = d.lines = None
            d.index = ""


class Pipeline:
    """Ships spooled records to the engine; see the module docstring for the guarantees."""

    def __init__(
        self,
        cfg: Config,
        spool: PipelineSpool,
        indexer: Indexer,
        observer: Mapping[str, str],
        enricher: SenderEnricher | None = None,
        *,
        record_clock: bool = False,
        started: float | None = None,
    ) -> None:
        """`enricher`: values looked up once per sender are merged into the native documents; the
        documents of senders it calls non-uniform are enriched one by one, as dicts. `started`: when the
        service started (DocumentBuilder's `arrival_floor`)."""
        self._cfg = cfg
        self._spool = spool
        self._indexer = indexer
        self._enricher = enricher
        self._builder = DocumentBuilder(
            cfg,
            observer,
            record_clock=record_clock,
            whole_bodies=True,
            enriched_later=enricher is not None,
            arrival_floor=started,
        )
        self._cursor = 0
        self.stats = self._builder.stats
        self.stats.update({"indexed": 0, "deleted": 0})

    def metric_families(self) -> Iterator[Metric]:
        """The pipeline's counters as Prometheus metrics (auditrecv.metrics), read at scrape time."""
        st = self.stats
        decoded = CounterMetricFamily(
            "auditrecv_pipeline_records",
            "Spooled records decoded, by protocol (audit_remote: BSM records; audisp_remote: audit lines).",
            labels=["protocol"],
        )
        decoded.add_metric(["audit_remote"], st["bsm_records"])
        decoded.add_metric(["audisp_remote"], st["linux_lines"])
        yield decoded
        yield counter("auditrecv_pipeline_linux_events", "Linux events assembled from audit lines.", st["linux_events"])
        yield counter(
            "auditrecv_pipeline_dead_letters",
            "Records that could not be decoded, written to the dead-letter index with their raw bytes.",
            st["dead_letters"],
        )
        yield counter("auditrecv_pipeline_truncated", "Documents cut down to the configured [limits].", st["truncated"])
        yield counter(
            "auditrecv_pipeline_documents_confirmed",
            "Documents the engine confirmed (created, duplicate or dead-lettered).",
            st["indexed"],
        )

    async def run(self) -> None:
        """Forever: read what is new, build documents, submit them to the sink (which deletes them from the
        spool through `_settled` once the engine confirmed them)."""
        batch = self._cfg.search.batch_max_docs
        tick = max(0.05, min(self._cfg.decode.linux.grace_seconds, 1.0))
        while True:
            items = await self._spool.read(self._cursor, batch)
            if items:
                self._cursor = items[-1][0]
                docs = await self._build(self._builder.read, items)
            else:
                await self._spool.wait_for_records(self._cursor, tick)
                docs = await self._build(self._builder.poll)
            await self._submit(docs)

    async def drain(self, *, final: bool = True) -> None:
        """Process everything unread in the spool (import). `final` also flushes the Linux events still
        open; an intermediate drain (to make room in a full spool) leaves them open for later lines."""
        batch = self._cfg.search.batch_max_docs
        while True:
            items = await self._spool.read(self._cursor, batch)
            if not items:
                break
            self._cursor = items[-1][0]
            await self._submit(await self._build(self._builder.read, items))
        if final:
            await self._submit(await self._build(self._builder.flush))
        await self.wait_idle()

    async def _build(
        self, step: Callable[..., Built | list[BuiltDoc]], *items: Sequence[tuple[int, SpoolRecord]]
    ) -> Built:
        """One DocumentBuilder step (add, poll, flush) in a thread, given the enrichment values of every
        Linux sender whose events it may complete: native Linux documents are written when their event
        completes, so their sender's values are looked up first (once per sender and step, as for a BSM
        batch). Senders `uniform_sender` refuses get their documents back as dicts, enriched per document."""
        values: dict[str, Enrichment] = {}
        enricher = self._enricher
        if enricher is not None:
            schema = self._cfg.search.schema
            senders = {
                key: source
                for key, source in self._builder.linux_senders(items[0] if items else []).items()
                if enricher.uniform_sender(source, schema)
            }
            found = await asyncio.gather(*(enricher.for_sender(source, []) for source in senders.values()))
            values = dict(zip(senders, found, strict=True))
        made = await asyncio.to_thread(step, *items, linux_enrichment=values)
        if isinstance(made, Built):
            return made
        built = Built()
        built.place(made)
        return built

    async def wait_idle(self) -> None:
        await self._indexer.wait_idle()

    async def _finish_native(self, natives: list[NativeBatch]) -> None:
        """Serialize the native batches, each enriched with its sender's values (looked up once per
        sender and batch), whole where they can be. A sender whose documents would ask the enricher
        different questions (see Enricher.uniform_sender) has its documents written unenriched, to be
        enriched as dicts."""
        enricher = self._enricher
        if enricher is None:
            for batch in natives:
                await asyncio.to_thread(self._builder.serialize, batch, None, whole=True)
            return
        uniform = []
        for batch in natives:
            if enricher.uniform_sender(batch.source, self._cfg.search.schema):
                uniform.append(batch)
            else:
                await asyncio.to_thread(self._builder.serialize, batch, None, unenriched=True)
        # every sender's lookups at once, as enrich() runs every document's: one budget, not one per sender
        values = await asyncio.gather(*(enricher.for_sender(b.source, b.zone_refs()) for b in uniform))
        for batch, found in zip(uniform, values, strict=True):
            await asyncio.to_thread(self._builder.serialize, batch, found, whole=True)

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

    async def _submit(self, built: Built) -> None:
        """Finish the documents (native batches serialized, enrichment) and hand them to the sink, which
        waits for room: the spool is read no faster than the engine takes documents."""
        if not built.size:
            return
        await self._finish_native(built.natives)
        docs = built.in_order()  # what is not in a body written whole
        if self._enricher is not None:
            _as_dicts(docs)
            enrich = self._enricher.enrich
            await asyncio.gather(*(enrich(d.doc) for d in docs if d.doc is not None), return_exceptions=True)
        settings = self._cfg.search
        batch: BulkBatch[list[int]] = BulkBatch()  # tokens: the spool ids of each document
        for native in built.natives:  # bodies written whole go first; the other documents keep their order
            if native.written is not None:
                body, ends, ids, indexes = native.written
                batch.add_body(body, ends, ids, indexes, native.tokens())
        nothing: list[list[int]] = []  # the spool ids of records that make no document (`has_document`)
        for d in docs:
            if d.whole is not None:  # a Linux body whose every event made a clean document
                ends, ids, indexes, tokens = d.whole
                batch.add_body(d.lines or b"", ends, ids, indexes, tokens)
            elif d.lines is not None:
                batch.add_lines(d.index, d.doc_id, d.lines, d.spool_ids)
            elif d.source is not None:
                batch.add(d.index, d.doc_id, d.source, d.spool_ids)
            elif d.doc is not None:
                batch.add(index_for(settings, d.doc), d.doc_id, d.doc, d.spool_ids)
            else:
                nothing.append(d.spool_ids)
        if nothing:
            await self._confirmed(nothing)
        if len(batch):
            await self._indexer.submit(batch, self._settled)

    async def _settled(self, settlement: Settlement[list[int]]) -> None:
        await self._confirmed(settlement.tokens())

    async def _confirmed(self, docs: list[list[int]]) -> None:
        """Forget the spool records of documents the engine holds (or that make none): their spool ids."""
        ids = [i for spool_ids in docs for i in spool_ids]
        if ids:
            await self._forget(ids)
        self.stats["indexed"] += len(docs)
        self.stats["deleted"] += len(ids)
