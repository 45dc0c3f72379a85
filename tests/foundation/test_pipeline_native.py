"""The pipeline builds every document natively, per sender and straight into bulk lines: what reaches the
indexer must be exactly what its DocumentBuilder builds read in the same batches, enriched per sender as
the Python Enricher enriches each document (Enricher.enrich on the document as a dict, then the sink's
encode), for every kind of record (dead letters, over [limits], unencodable, several senders, Linux mixed
in), every spool id confirmed once, index names and data streams as `index_for` names them. The documents
themselves are checked against the goldens (tests/golden, tests/schema/test_limits.py)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from auditrecv import _native
from auditrecv.config import Config, ConfigError, Enrich, Limits, Triton, parse_config
from auditrecv.enrich import Enricher
from auditrecv.pipeline import BuiltDoc, DocumentBuilder, Pipeline, native_caps
from auditrecv.sink import BulkBatch, Settlement, bulk_lines
from auditrecv.sink.naming import index_for
from auditrecv.spool.record import Source, SpoolRecord
from tests import bsm_builders as B
from tests.enrich.fake_triton import FakeTriton
from tests.golden.goldens import read_records
from tests.native.test_bsm_native import FIXTURE_RECORDS
from tests.native.test_documents_native import OTHER_UUID, UUID, ZONE_RECORDS
from tests.native.test_linux_native import EDGE_CASES, LINUX_FIXTURES, SYSCALL, lines_of

OBSERVER = {"name": "recv", "hostname": "recv.example"}
SENDERS = [
    Source(transport="audit_remote", peer="192.0.2.7", peer_port=4000, listener="bsm"),
    Source(transport="audit_remote", peer="2001:db8::9", principal="host/web1.example.com@R", authenticated=True),
    Source(transport="import", peer="web2.example"),  # not an address: enriched the Python way
]
LINUX = Source(transport="audisp_remote", peer="192.0.2.8", listener="audisp_remote")
BIG = B.record(B.header64(1, 1, 0), *[B.text("x")] * 1200)  # over max_tokens: cut
FAR_FILE_TIME = B.record(B.header32(1, 1_700_000_000, 0), B.file64(2**40, 0, "/x"), trailer=True)


def spooled() -> list[tuple[int, SpoolRecord]]:
    payloads = [raw for _, _, raw in FIXTURE_RECORDS[:120]] + ZONE_RECORDS + [b"\x00not bsm", BIG, FAR_FILE_TIME]
    out: list[tuple[int, SpoolRecord]] = []
    for i, payload in enumerate(payloads):
        out.append((len(out) + 1, SpoolRecord("bsm", payload, SENDERS[i % 3], 1_700_000_000_000_000_000 + i)))
        if i % 40 == 0:
            line = f"type=USER_LOGIN msg=audit(1700000000.{i:03d}:{i}): pid=1 uid=0 res=success".encode()
            out.append((len(out) + 1, SpoolRecord("linux", line, LINUX, 1_700_000_000_000_000_000 + i)))
    return out


class FakeSpool:
    def __init__(self, items: list[tuple[int, SpoolRecord]]) -> None:
        self.items = items
        self.deleted: list[int] = []

    async def read(self, cursor: int, limit: int) -> list[tuple[int, SpoolRecord]]:
        return [it for it in self.items if it[0] > cursor][:limit]

    async def delete(self, ids: list[int]) -> None:
        self.deleted += ids


SERIALIZED: set[str] = set()  # ids of the documents handed to the sink as sources, not as bulk lines


@pytest.fixture(autouse=True)
def _record_serialized(monkeypatch: pytest.MonkeyPatch) -> None:
    """Note the documents the pipeline adds as sources for the sink to serialize (`BulkBatch.add`)."""
    SERIALIZED.clear()
    add = BulkBatch.add

    def recording(self: BulkBatch[Any], index: str, doc_id: str, source: Any, token: Any) -> None:
        SERIALIZED.add(doc_id)
        add(self, index, doc_id, source, token)

    monkeypatch.setattr(BulkBatch, "add", recording)


class FakeIndexer:
    """Confirms everything; keeps the NDJSON lines the sink would send (or why it could not encode)."""

    def __init__(self) -> None:
        self.lines: dict[str, bytes | str] = {}
        self.prebuilt: set[str] = set()  # ids of the documents that came as bulk lines (built natively)

    async def submit(self, batch: BulkBatch[Any], settled: Any) -> None:
        for p, doc_id in enumerate(batch.ids):
            if doc_id not in SERIALIZED:
                self.prebuilt.add(doc_id)
            refused = batch.unencodable.get(p)
            self.lines[doc_id] = refused[0] if refused else batch.body([p])
        await settled(Settlement(batch, range(len(batch)), {}))

    async def wait_idle(self) -> None:
        pass


def builder_documents(
    cfg: Config, items: list[tuple[int, SpoolRecord]], stats: dict[str, int], record_clock: bool = True
) -> list[BuiltDoc]:
    """The pipeline's DocumentBuilder alone, read in batches as the pipeline reads them, every document
    as a dict (as a per-document enricher gets it)."""
    builder = DocumentBuilder(cfg, dict(OBSERVER), record_clock=record_clock)
    docs = []
    for start in range(0, len(items), cfg.search.batch_max_docs):
        docs += builder.finish(builder.add(items[start : start + cfg.search.batch_max_docs]))
    docs += builder.flush()
    stats.update(builder.stats)
    for d in docs:
        if d.source is not None:
            exact = holds_big_integer(d.source)
            d.doc, d.source, d.lines = (json.loads if exact else orjson.loads)(d.source), None, None
    return [d for d in docs if d.doc is not None]


def holds_big_integer(source: bytes) -> bool:
    """Whether a document's JSON holds an integer beyond 64 bits, written exactly where it is not indexed as a
    number (a BSM file token's far-future time in bsm.tokens): orjson would read it as a float."""
    big = []
    json.loads(source, parse_int=lambda text: big.append(not -(2**63) <= int(text) < 2**64))
    return any(big)


def exact_bulk_lines(cfg: Config, doc_id: str, doc: dict[str, Any]) -> bytes | str:
    """The sink's lines of a dict document, an integer beyond 64 bits (which orjson refuses) written exactly
    as the native core writes it where it is not indexed as a number (bsm.tokens, auditd.records)."""
    line = bulk_lines(index_for(cfg.search, doc), doc_id, doc)
    if line == "TypeError: Integer exceeds 64-bit range":
        exact = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
        line = bulk_lines(index_for(cfg.search, doc), doc_id, exact)
    return line


def encoded(cfg: Config, docs: list[BuiltDoc]) -> dict[str, bytes | str]:
    """What the sink sends for dict documents (or why it could not encode one)."""
    out: dict[str, bytes | str] = {}
    for d in docs:
        assert d.doc is not None
        out[d.doc_id] = exact_bulk_lines(cfg, d.doc_id, d.doc)
    return out


async def run_pipeline(cfg: Config, items: list[tuple[int, SpoolRecord]], enrich: Any = None) -> tuple[Any, ...]:
    spool, indexer = FakeSpool(items), FakeIndexer()
    pipeline = Pipeline(cfg, spool, indexer, dict(OBSERVER), enrich, record_clock=True)
    await pipeline.drain()
    return pipeline, spool, indexer


NAMINGS = {
    "daily": {},
    "pattern": {"index": "Audit-%Y.%j-%H%%x"},
    "data-stream": {"mode": "data_stream", "data_stream": "logs-auditrecv-default"},
}


@pytest.mark.parametrize("naming", list(NAMINGS))
@pytest.mark.parametrize("schema", ["ecs", "auditrecv-v1"])
def test_pipeline_sends_what_its_builder_builds(naming: str, schema: str) -> None:
    cfg = Config()
    cfg = dataclasses.replace(
        cfg,
        search=dataclasses.replace(cfg.search, schema=schema, batch_max_docs=50, **NAMINGS[naming]),
        limits=Limits(max_tokens=1000),
    )
    items = spooled()
    pipeline, spool, indexer = asyncio.run(run_pipeline(cfg, items))
    stats: dict[str, int] = {}
    docs = builder_documents(cfg, items, stats)
    assert indexer.lines == encoded(cfg, docs)
    # every document came as bulk lines
    assert indexer.prebuilt == set(indexer.lines) and all(isinstance(v, bytes) for v in indexer.lines.values())
    assert sorted(spool.deleted) == [i for i, _ in items]
    assert {k: pipeline.stats[k] for k in stats} == stats
    assert stats["dead_letters"] == 1 and stats["truncated"] == (schema == "ecs")
    # a file token's time beyond 64 bits: written exactly in bsm.tokens / other_tokens (not indexed as a
    # number), a document like any other (once handed to the sink as a dict, which dead-lettered it)
    payloads = {i: rec.payload for i, rec in items}
    (far,) = [d for d in docs if payloads[d.spool_ids[0]] == FAR_FILE_TIME]
    assert b'"time_ns":1099511627776000000000,' in indexer.lines[far.doc_id]


BEYOND_64_BITS_LINUX = (
    "serial beyond 64 bits (known bug)",
    "integer field beyond 64 bits (known bug)",
    "huge type number",
    "time beyond 64 bits (known bug)",
)
# where a value is left out of a long field (and the document tagged value_out_of_range)
OUT_OF_RANGE = {
    ("ecs", "serial beyond 64 bits (known bug)"),
    ("auditrecv-v1", "integer field beyond 64 bits (known bug)"),
    # a time beyond what @timestamp (date_nanos) holds: the arrival time stands for it
    ("ecs", "time beyond 64 bits (known bug)"),
    ("auditrecv-v1", "time beyond 64 bits (known bug)"),
}


@pytest.mark.parametrize("schema", ["ecs", "auditrecv-v1"])
@pytest.mark.parametrize("case", ["bsm", *BEYOND_64_BITS_LINUX])
def test_integers_beyond_64_bits_make_documents_like_any_other(schema: str, case: str) -> None:
    """A document holding an integer beyond 64 bits was handed over as the dict the Python mappers made, for
    the sink to refuse (a serialization_error dead letter): now every one is native JSON, the value left out
    of a long field (the document tagged value_out_of_range) or written exactly where it is not indexed as a
    number (bsm.tokens, auditd.records)."""
    cfg = Config()
    cfg = dataclasses.replace(cfg, search=dataclasses.replace(cfg.search, schema=schema))
    kind, source, payloads = (
        ("bsm", SENDERS[0], [FAR_FILE_TIME]) if case == "bsm" else ("linux", LINUX_SENDERS[0], EDGE_CASES[case])
    )
    builder = DocumentBuilder(cfg, dict(OBSERVER), record_clock=True)
    items = [(i, SpoolRecord(kind, p, source, 1_700_000_000_000_000_000)) for i, p in enumerate(payloads, 1)]
    built = [d for d in builder.finish(builder.add(items)) + builder.flush() if d.has_document]
    assert built and all(d.doc is None and d.source is not None for d in built)
    tagged = [d for d in built if d.source is not None and b'"value_out_of_range"' in d.source]
    assert len(tagged) == ((schema, case) in OUT_OF_RANGE)


def test_an_index_pattern_the_native_core_cannot_format_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"\[search\] index = 'audit-%b': '%b' is not supported"):
        parse_config('[search]\nindex = "audit-%b"\n')
    cfg = Config()
    with pytest.raises(ValueError, match="not supported"):
        DocumentBuilder(dataclasses.replace(cfg, search=dataclasses.replace(cfg.search, index="a-%b")), {})
    parse_config('[search]\nmode = "data_stream"\nindex = "audit-%b"\n')  # not used for a data stream


def test_a_native_failure_on_a_bsm_batch_dead_letters_its_records(monkeypatch: pytest.MonkeyPatch) -> None:
    """A native bug outside the per-record guards (the whole call fails): every record of the batch becomes
    a dead letter with its bytes, built by the native dead-letter builder, and is confirmed once."""
    import auditrecv.pipeline as pipeline

    def failing(*args: Any, **kw: Any) -> Any:
        raise _native.NativePanic("native bug")

    monkeypatch.setattr(pipeline._native, "BsmDocuments", failing)
    items = [it for it in spooled() if it[1].kind == "bsm"][:20]
    spool, indexer = FakeSpool(items), FakeIndexer()
    p = Pipeline(Config(), spool, indexer, dict(OBSERVER), record_clock=True)
    asyncio.run(p.drain())
    assert sorted(spool.deleted) == [i for i, _ in items] and p.stats["dead_letters"] == 20
    for _, rec in items:
        doc_id = _native.document_id("bsm", rec.source.to_dict(), [rec.payload])
        lines = indexer.lines[doc_id]
        assert isinstance(lines, bytes)
        letter = orjson.loads(lines.split(b"\n")[1])
        assert letter["error"]["message"] == "internal error: NativePanic('native bug')"
        assert base64.b64decode(letter["auditrecv"]["raw_base64"]) == rec.payload


@pytest.fixture
async def triton() -> Any:
    fake = FakeTriton()
    fake.add_zone(UUID, "web", "930896af-bf8c-48d4-885c-6573a94b1853", "alice", tags={"role": "db"})
    fake.add_zone(OTHER_UUID, "", "", "")
    await fake.start()
    yield fake
    await fake.stop()


async def test_enriched_per_sender_as_per_document(triton: FakeTriton, tmp_path: Path) -> None:
    static = tmp_path / "static.toml"
    static.write_text(
        '[[host]]\nmatch = "192.0.2.0/24"\nlabels = { dc = "ams" }\n'
        f'[[host]]\nmatch = "{UUID}"\nlabels = {{ tier = "gold" }}\n'
        '[[host]]\nmatch = "web1.example.com"\nlabels = { role = "web" }\n'
    )
    settings = Enrich(triton=Triton(vmapi_url=triton.url, mahi_url=triton.url), static_map=str(static), event_budget=5)
    cfg = dataclasses.replace(Config(), enrich=settings)
    items = spooled()
    per_document = Enricher(settings)
    docs = await asyncio.to_thread(builder_documents, cfg, items, {})
    for d in docs:
        assert d.doc is not None
        await per_document.enrich(d.doc)
    await per_document.close()
    expected = encoded(cfg, docs)
    enricher = Enricher(settings)
    for _ in range(2):  # the second run is answered by the enricher's cache
        _, spool, indexer = await run_pipeline(cfg, items, enricher)
        assert indexer.lines == expected
        assert sorted(spool.deleted) == [i for i, _ in items]
    await enricher.close()
    assert triton.requests[f"/vms/{UUID}"] == 2  # one per enricher: then its cache answers
    assert any(b'"zonealias":"alice-web"' in v for v in expected.values() if isinstance(v, bytes))


class PerDocumentEnricher:
    """An enricher no sender is uniform for: every document is enriched as a dict."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def uniform_sender(self, source: Source, schema: str) -> bool:
        return False

    async def for_sender(self, source: Source, zone_refs: Sequence[str]) -> dict[str, Any]:
        raise AssertionError("no sender is uniform")

    async def enrich(self, doc: dict[str, Any]) -> None:
        self.seen.append(doc)
        doc.setdefault("labels", {})["seen"] = "yes"


async def test_an_enricher_uniform_for_no_sender_gets_every_document_as_a_dict() -> None:
    enricher = PerDocumentEnricher()
    items = spooled()[:30]
    _, _, indexer = await run_pipeline(Config(), items, enricher)
    assert len(enricher.seen) == len(indexer.lines) and all(b'"seen":"yes"' in v for v in indexer.lines.values())


# ---------------------------------------------------------------- Linux


LINUX_SENDERS = [
    Source(transport="audisp_remote", peer="192.0.2.8", peer_port=5000, listener="audisp_remote"),
    Source(transport="audisp_remote", peer="192.0.2.9", peer_port=5001, listener="audisp_remote"),
    # the first sender again, another connection: the same sender key, so the same open events
    Source(transport="audisp_remote", peer="192.0.2.8", peer_port=5002, listener="audisp_remote"),
]


def interleaved(lines: list[bytes], *, step_ns: int, bsm_every: int = 0) -> list[tuple[int, SpoolRecord]]:
    """Every line sent by two senders, interleaved line by line (the first sender's lines alternating
    between two connections), with BSM records mixed in."""
    out: list[tuple[int, SpoolRecord]] = []
    for i, line in enumerate(lines):
        received = 1_700_000_000_000_000_000 + i * step_ns
        for sender in (LINUX_SENDERS[2 * (i % 2) if i % 3 else 0], LINUX_SENDERS[1]):
            out.append((len(out) + 1, SpoolRecord("linux", line, sender, received)))
        if bsm_every and i % bsm_every == 0:
            payload = FIXTURE_RECORDS[i % len(FIXTURE_RECORDS)][2]
            out.append((len(out) + 1, SpoolRecord("bsm", payload, SENDERS[0], received)))
    return out


def as_sent(cfg: Config, docs: list[BuiltDoc]) -> dict[str, bytes | str]:
    """What the sink sends for each document, native (bulk lines) or dict."""
    out: dict[str, bytes | str] = {}
    for d in docs:
        if d.lines is not None:
            out[d.doc_id] = d.lines
        elif d.doc is not None:
            out[d.doc_id] = exact_bulk_lines(cfg, d.doc_id, d.doc)
    return out


def linux_cfg(schema: str = "ecs", batch: int = 37, limits: Limits | None = None) -> Config:
    cfg = Config()
    return dataclasses.replace(
        cfg, search=dataclasses.replace(cfg.search, schema=schema, batch_max_docs=batch), limits=limits or Limits()
    )


def assert_pipeline_as_builder(cfg: Config, items: list[tuple[int, SpoolRecord]], record_clock: bool) -> None:
    spool, indexer = FakeSpool(items), FakeIndexer()
    pipeline = Pipeline(cfg, spool, indexer, dict(OBSERVER), record_clock=record_clock)
    asyncio.run(pipeline.drain())
    assert sorted(spool.deleted) == [i for i, _ in items]  # each once
    stats: dict[str, int] = {}
    docs = builder_documents(cfg, items, stats, record_clock)
    assert indexer.lines == as_sent(cfg, docs)
    assert indexer.prebuilt == {k for k, v in indexer.lines.items() if isinstance(v, bytes)}
    assert {k: pipeline.stats[k] for k in stats} == dict(stats)


def _count_whole_bodies(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of documents of each body handed to the sink whole, as they are handed."""
    bodies: list[int] = []
    add_body = BulkBatch.add_body

    def recording(self: BulkBatch[Any], body: bytes, ends: Any, ids: Any, indexes: Any, tokens: Any) -> None:
        bodies.append(len(ids))
        add_body(self, body, ends, ids, indexes, tokens)

    monkeypatch.setattr(BulkBatch, "add_body", recording)
    return bodies


def test_a_clean_bsm_read_goes_to_the_sink_as_one_body(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every record of a read made a document, none a dead letter nor cut: its native body is handed to the
    sink whole (`BulkBatch.add_body`), the same lines as written document by document."""
    bodies = _count_whole_bodies(monkeypatch)
    records = [
        B.record(B.header32(6152, 1_700_000_000 + i, 0, version=11), b"\x28" + B.str16(f"r{i}")) for i in range(120)
    ]
    items = [
        (i + 1, SpoolRecord("bsm", payload, SENDERS[0], 1_700_000_000_000_000_000 + i))
        for i, payload in enumerate(records)
    ]
    assert_pipeline_as_builder(linux_cfg(batch=50), items, record_clock=True)
    assert bodies == [50, 50, 20]


@pytest.mark.parametrize("schema", ["ecs", "auditrecv-v1"])
@pytest.mark.parametrize("fixture", LINUX_FIXTURES, ids=[f.relpath for f in LINUX_FIXTURES])
def test_every_linux_fixture_as_builder(fixture: Any, schema: str) -> None:
    """Two senders interleaved, events split across batches, BSM mixed in; both clocks."""
    lines = [line for _, line in read_records(fixture)]
    cfg = linux_cfg(schema)
    assert_pipeline_as_builder(cfg, interleaved(lines, step_ns=0, bsm_every=11), record_clock=True)
    assert_pipeline_as_builder(cfg, interleaved(lines, step_ns=7_000_000, bsm_every=11), record_clock=False)


@pytest.mark.parametrize("record_clock", [True, False], ids=["record-clock", "arrival-clock"])
@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_linux_edge_cases_as_builder(name: str, record_clock: bool) -> None:
    cfg = linux_cfg(batch=3)
    assert_pipeline_as_builder(cfg, interleaved(EDGE_CASES[name], step_ns=3_000_000_000), record_clock)


def test_orphan_eoe_and_timeouts_via_poll() -> None:
    """Call by call (as the Python assembler did them): an orphan EOE's id comes back with no document,
    events time out on poll(now) (grace after a later serial, then max age), the rest at flush."""
    eoe = "type=EOE msg=audit(1700000000.123:{serial}): "
    lines = lines_of(SYSCALL.format(serial=1), eoe.format(serial=1), eoe.format(serial=1), SYSCALL.format(serial=2))
    later = lines_of(SYSCALL.format(serial=3), SYSCALL.format(serial=4))
    cfg = linux_cfg()
    calls: list[Any] = [
        lambda b: b.add(interleaved(lines, step_ns=1_000)),
        # one sender's line, half a minute on: on the arrival clock the others' open events time out too
        lambda b: b.add([(50, SpoolRecord("linux", lines[0], LINUX_SENDERS[1], 1_700_000_030 * 10**9))]),
        lambda b: b.poll(1_700_000_000.5),
        lambda b: b.add(
            [(100 + i, SpoolRecord("linux", x, LINUX_SENDERS[1], 1_700_000_001 * 10**9)) for i, x in enumerate(later)]
        ),
        lambda b: b.poll(1_700_000_004.0),
        lambda b: b.poll(1_700_000_100.0),
        lambda b: b.flush(),
    ]
    for record_clock, expected in EXPECTED_CALLS.items():
        builder = DocumentBuilder(cfg, dict(OBSERVER), record_clock=record_clock)
        made = [sorted((sorted(d.spool_ids), d.has_document) for d in call(builder)) for call in calls]
        assert made == expected, record_clock
        assert builder.stats == EXPECTED_STATS[record_clock]


# What the Python DocumentBuilder returned call by call (spool ids, whether a document), sorted
EXPECTED_CALLS: dict[bool, list[list[tuple[list[int], bool]]]] = {
    True: [
        [([1, 3], True), ([2, 4], True), ([5], False), ([6], False)],
        [],
        [],
        [],
        [([8], True), ([50], True), ([100], True)],
        [([7], True), ([101], True)],
        [],
    ],
    False: [
        [([1, 3], True), ([2, 4], True), ([5], False), ([6], False)],
        [([7], True), ([8], True)],
        [],
        [],
        [],
        [([50], True), ([100], True), ([101], True)],
        [],
    ],
}
STATS = {"bsm_records": 0, "linux_lines": 11, "linux_events": 9, "dead_letters": 0, "truncated": 0}
EXPECTED_STATS = {True: STATS, False: STATS}


@pytest.mark.parametrize("schema", ["ecs", "auditrecv-v1"])
def test_linux_events_over_the_limits(schema: str) -> None:
    """Cut natively, exactly as `limit_document` cuts the uncut document (with the event's lines as raw)."""
    tight = dataclasses.replace(Limits(), max_document_bytes=64 * 1024, max_string_chars=1024, max_tokens=3)
    lines = lines_of(
        SYSCALL.format(serial=1),
        *(f'type=PATH msg=audit(1700000000.123:1): item={i} name="/{"x" * 3000}{i}"' for i in range(40)),
        "type=EOE msg=audit(1700000000.123:1): ",
        SYSCALL.format(serial=2),
        "type=EXECVE msg=audit(1700000000.123:2): argc=1 a0=" + "41" * 20000,
    )
    for limits in (tight, Limits()):
        cfg = linux_cfg(schema, batch=5, limits=limits)
        assert_pipeline_as_builder(cfg, interleaved(lines, step_ns=1_000), record_clock=True)
    unlimited = Limits(
        max_document_bytes=1 << 40, max_tokens=1 << 40, max_array_items=1 << 40, max_string_chars=1 << 40
    )
    items = interleaved(lines, step_ns=0)
    payloads = {i: rec.payload for i, rec in items}
    cut, whole = (linux_sources(linux_cfg(schema, limits=lim), items) for lim in (tight, unlimited))
    assert cut.keys() == whole.keys()
    truncated = 0
    for doc_id, (ids, source) in cut.items():
        raw = b"\n".join(payloads[i] for i in ids)
        assert source == _native.limit_document_json(whole[doc_id][1], raw, "linux", **native_caps(tight))
        truncated += b'"truncated":true' in source
    assert truncated >= 2


def linux_sources(cfg: Config, items: list[tuple[int, SpoolRecord]]) -> dict[str, tuple[list[int], bytes]]:
    """Document id -> (spool ids, document JSON) as the builder writes them."""
    builder = DocumentBuilder(cfg, dict(OBSERVER), record_clock=True)
    built = builder.finish(builder.add(items)) + builder.flush()
    return {d.doc_id: (d.spool_ids, d.source) for d in built if d.source is not None}


@pytest.mark.parametrize("schema", ["ecs", "auditrecv-v1"])
async def test_linux_enriched_as_per_document(triton: FakeTriton, tmp_path: Path, schema: str) -> None:
    """ECS: each sender's values merged natively; a sender key seen with two identities (a principal on
    one connection), and auditrecv-v1 documents, enriched the Python way, per document."""
    static = tmp_path / "static.toml"
    static.write_text(
        '[[host]]\nmatch = "192.0.2.0/24"\nlabels = { dc = "ams" }\n'
        '[[host]]\nmatch = "web1.example.com"\nlabels = { role = "web" }\n'
    )
    settings = Enrich(triton=Triton(vmapi_url=triton.url, mahi_url=triton.url), static_map=str(static), event_budget=5)
    cfg = dataclasses.replace(linux_cfg(schema), enrich=settings)
    lines = [line for _, line in read_records(LINUX_FIXTURES[0])]
    items = interleaved(lines, step_ns=0, bsm_every=5)
    mixed = [
        Source(transport="audisp_remote", peer="192.0.2.10", listener="audisp_remote"),
        Source(transport="audisp_remote", peer="192.0.2.10", principal="host/web1.example.com@R", authenticated=True),
    ]
    for i, line in enumerate(lines[:60]):
        items.append((len(items) + 1, SpoolRecord("linux", line, mixed[i % 2], 1_700_000_000_000_000_000)))
    per_document = Enricher(settings)
    docs = await asyncio.to_thread(builder_documents, cfg, items, {}, True)
    for d in docs:
        if d.doc is not None:
            await per_document.enrich(d.doc)
    await per_document.close()
    expected = as_sent(cfg, docs)
    enricher = Enricher(settings)
    _, spool, indexer = await run_pipeline(cfg, items, enricher)
    await enricher.close()
    assert indexer.lines == expected
    assert sorted(spool.deleted) == [i for i, _ in items]
    assert any(b'"dc":"ams"' in v for v in expected.values() if isinstance(v, bytes))
    peers = {d.doc_id: items[d.spool_ids[0] - 1][1] for d in docs if d.doc is not None}
    native = {peers[i].source.peer for i in indexer.prebuilt if peers[i].kind == "linux"}
    assert native == ({"192.0.2.8", "192.0.2.9"} if schema == "ecs" else set())


def test_record_clock_is_each_senders_own() -> None:
    """The deliberate difference from the one Python assembler: on the record clock, a sender whose clock
    runs an hour ahead does not time out another sender's open event (it did in the Python assembler)."""
    ahead = SYSCALL.replace("1700000000.123", "1700003600.000")
    items = [
        (1, SpoolRecord("linux", lines_of(SYSCALL.format(serial=1))[0], LINUX_SENDERS[0], 1)),
        (2, SpoolRecord("linux", lines_of(ahead.format(serial=7))[0], LINUX_SENDERS[1], 2)),
    ]
    builder = DocumentBuilder(linux_cfg(), dict(OBSERVER), record_clock=True)
    assert builder.add(items) == []
    assert sorted(d.spool_ids for d in builder.flush()) == [[1], [2]]


def test_a_native_failure_dead_letters_the_open_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """A native bug while adding lines (a whole call fails) does not stop the pipeline: every line of that
    sender still open becomes a dead letter with its bytes, the sender starts afresh, and every record is
    still confirmed once."""
    import auditrecv.pipeline as pipeline

    real = pipeline._native.LinuxDocuments

    class Failing:
        def __init__(self, **kw: Any) -> None:
            self.real = real(**kw)
            self.calls = 0

        def __getattr__(self, name: str) -> Any:
            return getattr(self.real, name)

        def __len__(self) -> int:
            return len(self.real)

        def add_columns(self, *args: Any, **kw: Any) -> Any:
            self.calls += 1
            if self.calls == 2:
                raise _native.NativePanic("native bug")
            return self.real.add_columns(*args, **kw)

    monkeypatch.setattr(pipeline._native, "LinuxDocuments", Failing)
    lines = [line for _, line in read_records(LINUX_FIXTURES[0])]
    items = interleaved(lines, step_ns=0)
    spool, indexer = FakeSpool(items), FakeIndexer()
    p = Pipeline(linux_cfg(batch=5), spool, indexer, dict(OBSERVER), record_clock=True)
    asyncio.run(p.drain())
    assert sorted(spool.deleted) == [i for i, _ in items]
    letters = [orjson.loads(v.split(b"\n")[1]) for v in indexer.lines.values() if isinstance(v, bytes)]
    letters = [d for d in letters if d["event"]["kind"] == "pipeline_error"]
    assert letters and p.stats["dead_letters"] >= len(letters)
    assert {d["error"]["message"] for d in letters} == {"internal error: NativePanic('native bug')"}
    payloads = {rec.payload for _, rec in items}
    assert all(base64.b64decode(d["auditrecv"]["raw_base64"]) in payloads for d in letters)


def test_a_read_comes_back_in_record_order_and_clean_senders_as_bodies() -> None:
    """`add`: one output per BSM record at its record's place (senders interleaved, Linux lines between
    them), then the Linux documents. `read` (the pipeline's): no BuiltDoc for a sender's records until its
    batch is serialized; a clean sender's batch is written whole, the others' outputs keep that order."""
    items = spooled()[:60]
    bsm = [i for i, rec in items if rec.kind == "bsm"]
    linux = [i for i, rec in items if rec.kind == "linux"]
    assert len(linux) == 2 and items[1][1].kind == "linux"  # a Linux line among the BSM records
    first = DocumentBuilder(Config(), dict(OBSERVER), record_clock=True)
    outputs = first.add(items)
    assert [d.spool_ids for d in outputs] == [[i] for i in bsm] + [[i] for i in linux]
    assert all(d.native is not None for d in outputs[: len(bsm)])
    first.finish(outputs)

    junk = (len(items) + 1, SpoolRecord("bsm", b"\x00not bsm", SENDERS[1], 1_700_000_000_000_000_000))
    builder = DocumentBuilder(Config(), dict(OBSERVER), record_clock=True)
    built = builder.read([*items, junk])
    assert [b.source for b in built.natives] == SENDERS and all(not b.built for b in built.natives)
    for batch in built.natives:
        builder.serialize(batch, None, whole=True)
    whole = [b.written is not None for b in built.natives]
    assert whole == [True, False, True]  # the junk record's dead letter keeps its sender's body apart
    second = [i for i, rec in [*items, junk] if rec.kind == "bsm" and rec.source == SENDERS[1]]
    assert [d.spool_ids for d in built.in_order()] == [[i] for i in second] + [[i] for i in linux]
    written = built.natives[0].written
    assert written is not None and written[2] == [
        d.doc_id for d in outputs if d.spool_ids[0] in {i for i, _ in built.natives[0].items}
    ]


def test_clean_linux_bodies_go_to_the_sink_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """A LinuxDocuments body whose every event made a clean document (or none: an orphan EOE) is handed to the
    sink as it is (`BulkBatch.add_body`), the same lines as the builder writes them event by event; one
    holding a document cut to [limits] goes document by document (its cut is counted and logged)."""
    bodies = _count_whole_bodies(monkeypatch)
    lines = [f"type=USER_LOGIN msg=audit(1700000000.{i:03d}:{i}): pid=1 uid=0 res=success".encode() for i in range(90)]
    items = [(i + 1, SpoolRecord("linux", line, LINUX, 1_700_000_000_000_000_000 + i)) for i, line in enumerate(lines)]
    assert_pipeline_as_builder(linux_cfg(batch=50), items, record_clock=True)
    assert bodies == [50, 40]
    bodies.clear()
    long = b'type=USER_LOGIN msg=audit(1700000000.999:999): pid=1 uid=0 msg="' + b"x" * 5000 + b'" res=success'
    items[60] = (61, SpoolRecord("linux", long, LINUX, 1_700_000_000_000_000_060))
    assert_pipeline_as_builder(linux_cfg(batch=50, limits=Limits(max_string_chars=1000)), items, record_clock=True)
    assert bodies == [50]
    # orphan EOEs (a one-record event's EOE) make no document: the body stays whole, their lines are done
    bodies.clear()
    with_eoes = [(line, f"type=EOE msg=audit(1700000000.{i:03d}:{i}): ".encode()) for i, line in enumerate(lines)]
    lines = [line for pair in with_eoes for line in pair]
    items = [(i + 1, SpoolRecord("linux", line, LINUX, 1_700_000_000_000_000_000 + i)) for i, line in enumerate(lines)]
    assert_pipeline_as_builder(linux_cfg(batch=50), items, record_clock=True)
    assert bodies == [25, 25, 25, 15]
