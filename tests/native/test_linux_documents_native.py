"""Native Linux documents (auditrecv._native.LinuxDocuments, Rust) for Linux audit lines, against what the
Python path (DocumentBuilder → Enricher → sink serialization) made before its deletion (issue 12), recorded
in tests/native/recorded/linux_documents.tsv (see recorded.py).

What is compared is what the pipeline hands the sink, event by event in completion order: the document
id, the spool ids of the lines that made it (or that an orphan EOE closes), and the document's JSON exactly
as `auditrecv/sink/bulk.py` serializes it. Every Linux fixture, the decoder's hand-picked edge cases, huge
events over `[limits]`, several senders and receivers, both clocks and both schemas; then enrichment values
given per sender and the bulk-body variant. Events the native side hands back are rebuilt from the event
JSON it returns, the way a caller would: only those with an integer past 64 bits remain (the sink refuses them).
Generated and mutated lines (hypothesis), which no recording holds, keep the invariants of a row.
"""

from __future__ import annotations

import base64
import dataclasses
import gc
import gzip
import os
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditrecv import _native
from auditrecv.config import Limits
from auditrecv.pipeline import linux_documents_settings
from auditrecv.sink import bulk_lines
from auditrecv.sink.naming import index_for
from auditrecv.spool.record import Source
from auditrecv.tools import decode_config
from tests.golden.goldens import read_records
from tests.golden.test_decoder_properties import linux_payloads
from tests.native import recorded
from tests.native.test_documents_native import ENRICHMENTS, OBSERVERS, SCHEMAS, SOURCES, case_key, sender_enrichment
from tests.native.test_linux_native import EDGE_CASES, LINUX_FIXTURES, SYSCALL, lines_of

Schema = str
RECEIVED_NS = 1_700_000_000_123_456_789
TRUNCATED_MARK = b'"truncated":true,"truncation":{"document_bytes":'  # only a cut document holds it
EXAMPLES = int(os.environ.get("AUDITRECV_PROPERTY_EXAMPLES", "150"))  # raise it for a longer hunt

# (doc id, serialized document or why the sink refuses it, spool ids); doc None: no document
Row = tuple[str, bytes | str | None, list[int]]


def arrivals(count: int, step_ns: int) -> list[int]:
    return [RECEIVED_NS + i * step_ns for i in range(count)]


def serialized(doc: dict[str, Any]) -> bytes | str:
    """The sink's serialization of a document, or why it refuses it (sink.bulk_lines)."""
    lines = bulk_lines("index", "id", doc)
    if isinstance(lines, str):
        return "unencodable: " + lines.split(": ", 1)[1]
    return lines.split(b"\n")[1]


def native_builder(schema: Schema, observer: Mapping[str, Any], record_clock: bool, limits: Limits | None) -> Any:
    lim = limits or Limits()
    ev = decode_config(schema).decode.linux
    return _native.LinuxDocuments(
        schema=schema, observer=dict(observer), record_clock=record_clock, **linux_documents_settings(ev, lim)
    )


def handed_back(
    event: bytes | None,
    why: str,
    source: Source,
    schema: Schema,
    observer: Mapping[str, Any],
    received: int | None,
    limits: Limits | None,
) -> bytes | str:
    """A hand-back as the caller completes it: only unencodable documents remain (the sink's refusal);
    everything else, over [limits] included, the native core builds itself."""
    assert why.startswith("unencodable: "), why
    return why


def native_rows(
    lines: Sequence[bytes],
    *,
    schema: Schema,
    source: Source,
    observer: Mapping[str, Any],
    received: Sequence[int],
    record_clock: bool,
    chunk: int = 1000,
    limits: Limits | None = None,
    enrichment: dict[str, Any] | None = None,
) -> list[Row]:
    builder = native_builder(schema, observer, record_clock, limits)
    rows = []
    for start in range(0, len(lines), chunk):
        rows += builder.add(
            list(lines[start : start + chunk]),
            received_ns=list(received[start : start + chunk]),
            spool_ids=list(range(start, min(start + chunk, len(lines)))),
            source=source.to_dict(),
            enrichment=enrichment,
        )
    rows += builder.flush(enrichment=enrichment)
    assert len(builder) == 0
    out: list[Row] = []
    for doc_id, doc, ids, why, event, at in rows:
        if why == "no_document":
            out.append(("", None, ids))
        elif doc is None:
            assert enrichment is None, "hand-backs are not enriched here"
            out.append((doc_id, handed_back(event, why, source, schema, observer, at, limits), ids))
        else:
            out.append((doc_id, doc, ids))
    return out


def rows_outcome(rows: list[Row]) -> bytes:
    """The events in completion order: id, spool ids, and the document's JSON or the sink's refusal."""
    out = b""
    for doc_id, doc, ids in rows:
        text = doc if isinstance(doc, bytes) else str(doc).encode()
        out += f"{doc_id} {ids}\n".encode() + text + b"\n"
    return out


def assert_same(lines: Sequence[bytes], *, lookups: str | None = None, **kw: Any) -> None:
    """The native rows of these lines as the Python path made them (recorded). `lookups`: the ENRICHMENTS
    shape the Python enricher was given (`enrichment` holds the same values as the native core takes them)."""
    rows = native_rows(lines, **kw)
    recorded.check("linux_documents", [(case_key("linux rows", lines, **kw), rows_outcome(rows))])


def assert_row_invariants(lines: Sequence[bytes], **kw: Any) -> None:
    """What every run keeps (inputs no recording holds): each line's spool id in exactly one row, in order of
    completion; documents are JSON objects; orphan EOEs have no id; the same rows twice."""
    rows = native_rows(lines, **kw)
    assert rows == native_rows(lines, **kw)
    assert sorted(i for _, _, ids in rows for i in ids) == list(range(len(lines)))
    for doc_id, doc, _ids in rows:
        if doc is None:
            assert doc_id == ""
        elif isinstance(doc, bytes):
            assert len(doc_id) == 22 and isinstance(orjson.loads(doc), dict)
        else:
            assert doc.startswith("unencodable: "), doc


# ---------------------------------------------------------------- fixtures


@pytest.mark.parametrize("schema", SCHEMAS)
@pytest.mark.parametrize("fixture", LINUX_FIXTURES, ids=[f.relpath for f in LINUX_FIXTURES])
def test_every_fixture_as_python(fixture: Any, schema: Schema) -> None:
    lines = [line for _, line in read_records(fixture)]
    for source, observer, record_clock, step in [
        (SOURCES[0], OBSERVERS[0], True, 0),
        (SOURCES[1], OBSERVERS[1], False, 7_000_000),  # arrival clock: lines 7 ms apart
        (SOURCES[2], OBSERVERS[3], False, 0),
    ]:
        assert_same(
            lines,
            schema=schema,
            source=source,
            observer=observer,
            received=arrivals(len(lines), step),
            record_clock=record_clock,
            chunk=97,
        )


# ---------------------------------------------------------------- edge cases


@pytest.mark.parametrize("schema", SCHEMAS)
@pytest.mark.parametrize("name", list(EDGE_CASES))
@pytest.mark.parametrize("record_clock", [True, False], ids=["record-clock", "arrival-clock"])
def test_edge_cases_as_python(name: str, schema: Schema, record_clock: bool) -> None:
    lines = EDGE_CASES[name]
    for source in SOURCES[:3]:
        assert_same(
            lines,
            schema=schema,
            source=source,
            observer=OBSERVERS[0],
            received=arrivals(len(lines), 3_000_000_000),
            record_clock=record_clock,
            chunk=2,
        )


def test_orphan_eoe_and_unterminated_events() -> None:
    """An EOE after its event makes no document but its spool id comes back; open events come at flush."""
    lines = lines_of(
        SYSCALL.format(serial=1),
        "type=EOE msg=audit(1700000000.123:1): ",
        "type=EOE msg=audit(1700000000.123:1): ",
        SYSCALL.format(serial=2),
    )
    builder = native_builder("ecs", {}, True, None)
    rows = builder.add(lines, received_ns=RECEIVED_NS, spool_ids=[10, 11, 12, 13], source=SOURCES[0].to_dict())
    assert [(r[2], r[3]) for r in rows] == [([10, 11], None), ([12], "no_document")]
    assert len(builder) == 1
    (last,) = builder.flush()
    assert last[2] == [13] and last[1] is not None and orjson.loads(last[1])["auditd"]["complete"] == "flush"
    assert builder.stats() == {"linux_lines": 4, "linux_events": 3, "dead_letters": 0}


@pytest.mark.parametrize("schema", SCHEMAS)
def test_huge_events_over_the_limits(schema: Schema) -> None:
    """Events past [limits] are cut natively (auditrecv.truncated), as limit_document cut them."""
    tight = dataclasses.replace(Limits(), max_document_bytes=64 * 1024, max_string_chars=1024, max_tokens=3)
    lines = lines_of(
        SYSCALL.format(serial=1),
        *(f'type=PATH msg=audit(1700000000.123:1): item={i} name="/{"x" * 3000}{i}"' for i in range(40)),
        "type=EOE msg=audit(1700000000.123:1): ",
        SYSCALL.format(serial=2),
        "type=EXECVE msg=audit(1700000000.123:2): argc=1 a0=" + "41" * 20000,
    )
    for limits in (tight, Limits()):
        assert_same(
            lines,
            schema=schema,
            source=SOURCES[1],
            observer=OBSERVERS[0],
            received=arrivals(len(lines), 0),
            record_clock=True,
            limits=limits,
        )
    builder = native_builder(schema, {}, True, tight)
    rows = builder.add(lines, received_ns=RECEIVED_NS, source=SOURCES[1].to_dict()) + builder.flush()
    assert {r[3] for r in rows} == {None}
    assert any(b'"truncated":true' in (r[1] or b"") for r in rows)


def test_stats_count_dead_letters_as_the_pipeline() -> None:
    """A v1 session id that is a digit but no decimal (a superscript) makes the Python mapper raise: a dead
    letter with the line's exact bytes, counted as DocumentBuilder counts it."""
    line = "type=SYSCALL msg=audit(1.000:1): syscall=1 ses=\u00b2 comm=".encode() + b"\xff"
    builder = native_builder("auditrecv-v1", {}, True, None)
    (row,) = builder.add([line], received_ns=RECEIVED_NS, source=SOURCES[0].to_dict()) + builder.flush()
    letter = orjson.loads(row[1] or b"")
    assert letter["error"]["message"].startswith('internal error: ValueError("invalid literal for int()')
    assert base64.b64decode(letter["auditrecv"]["raw_base64"]) == line
    # DocumentBuilder's Python counters for the same line, before the switch
    assert builder.stats() == {"linux_lines": 1, "linux_events": 1, "dead_letters": 1}


def test_invalid_utf8_keeps_the_text_and_the_bytes() -> None:
    """An undecodable line keeps its \\xNN text in event.original and, when it is not valid UTF-8, its bytes
    in auditrecv.raw_base64 and its id: the byte 0xff and the four characters \\xff make two documents
    (once the same document, even the same id, so the second was taken for a resend of the first)."""
    rows = []
    for line in (b"\xff junk", b"\\xff junk"):
        builder = native_builder("ecs", {}, True, None)
        rows += builder.add([line], received_ns=RECEIVED_NS, source=SOURCES[0].to_dict()) + builder.flush()
    (id1, doc1, *_), (id2, doc2, *_) = rows
    assert id1 != id2 and doc1 is not None and doc2 is not None
    first, second = orjson.loads(doc1), orjson.loads(doc2)
    assert first["event"]["original"] == second["event"]["original"] == "\\xff junk"
    assert first["auditrecv"]["raw_base64"] == "/yBqdW5r" and "raw_base64" not in second["auditrecv"]


def test_lines_of_several_connections_keep_their_first_lines_source() -> None:
    """One sender over two connections: an event's document names the connection of its first line."""
    first, second = SOURCES[1], dataclasses.replace(SOURCES[1], peer_port=40002)
    lines = lines_of(SYSCALL.format(serial=1), "type=EOE msg=audit(1700000000.123:1): ")
    builder = native_builder("ecs", {}, False, None)
    assert builder.add(lines[:1], received_ns=RECEIVED_NS, spool_ids=[5], source=first.to_dict()) == []
    ((_, doc, ids, why, _, at),) = builder.add(
        lines[1:], received_ns=RECEIVED_NS + 5, spool_ids=[6], source=second.to_dict()
    )
    assert why is None and ids == [5, 6] and at == RECEIVED_NS
    assert orjson.loads(doc or b"")["auditrecv"]["source"]["peer_port"] == 40001


def test_poll_on_the_arrival_clock() -> None:
    """An open event is completed once its maximum age has passed on the clock given to poll."""
    builder = native_builder("ecs", {}, False, None)
    assert builder.add([SYSCALL.format(serial=1).encode()], received_ns=RECEIVED_NS, source=SOURCES[0].to_dict()) == []
    assert builder.poll(RECEIVED_NS / 1e9 + 1) == []
    (row,) = builder.poll(RECEIVED_NS / 1e9 + 60)
    assert row[3] is None and orjson.loads(row[1])["auditd"]["complete"] == "max_age"
    assert builder.poll() == [] and len(builder) == 0


# ---------------------------------------------------------------- enrichment and bulk body


@pytest.mark.parametrize("schema", SCHEMAS)
@pytest.mark.parametrize("shape", list(ENRICHMENTS))
def test_enrichment_per_sender_as_the_python_merge(schema: Schema, shape: str) -> None:
    source = Source(transport="audisp-remote", peer="192.0.2.7", peer_port=1, listener="linux")
    lookups = ENRICHMENTS[shape]
    lines = [line for fixture in LINUX_FIXTURES[:4] for _, line in read_records(fixture)][:400]
    assert_same(
        lines,
        schema=schema,
        source=source,
        observer=OBSERVERS[0],
        received=arrivals(len(lines), 0),
        record_clock=True,
        lookups=shape,
        enrichment=sender_enrichment(source, schema=schema, **lookups),
    )


@pytest.mark.parametrize("naming", [{}, {"mode": "data_stream", "data_stream": "logs-auditrecv-linux"}])
def test_bulk_body_as_the_sink_sends_it(naming: dict[str, Any]) -> None:
    lines = [line for fixture in LINUX_FIXTURES[:3] for _, line in read_records(fixture)]
    source = SOURCES[1]
    cfg = decode_config("ecs")
    search = dataclasses.replace(cfg.search, **naming)
    python = native_rows(  # the rows recorded from the Python path (test_every_fixture_as_python's kind)
        lines, schema="ecs", source=source, observer={}, received=arrivals(len(lines), 0), record_clock=True
    )
    key = case_key("linux rows", lines, schema="ecs", source=source, observer={}, received=arrivals(len(lines), 0))
    recorded.check("linux_documents", [(key + b" record clock", rows_outcome(python))])
    expected = b""
    for doc_id, doc, _ in python:
        if isinstance(doc, bytes):
            item = bulk_lines(index_for(search, orjson.loads(doc)), doc_id, orjson.loads(doc))
            assert isinstance(item, bytes)
            expected += item
    builder = native_builder("ecs", {}, True, None)
    kw = {"data_stream": search.data_stream} if naming else {}
    body, layout = builder.add_bulk(lines, received_ns=RECEIVED_NS, source=source.to_dict(), **kw)
    tail, tail_layout = builder.flush_bulk(**kw)
    assert bytes(body) + bytes(tail) == expected
    assert [row[4] for row in layout + tail_layout if row[4]] == ["no_document"] * sum(
        doc is None for _, doc, _ in python
    )
    assert [row[0] for row in layout + tail_layout if not row[4]] == [r[0] for r in python if r[1] is not None]


def test_bodies_are_read_only_views_that_own_their_bytes() -> None:
    """A body is handed over without a copy (native/src/bulk_body.rs): a read-only memoryview whose bytes
    stay as they were while the builder writes the next bodies and after the builder is gone, and that the
    sink's consumers take as they take bytes (join, slices, gzip, orjson)."""
    lines = [line for fixture in LINUX_FIXTURES[:3] for _, line in read_records(fixture)]
    source = SOURCES[1].to_dict()
    builder = native_builder("ecs", {}, True, None)
    first, ends, *_ = builder.add_columns(lines[:40], received_ns=RECEIVED_NS, source=source)
    assert isinstance(first, memoryview) and first.readonly and first.contiguous and ends[-1] == len(first)
    kept = bytes(first)
    with pytest.raises(TypeError):
        first[0] = 0  # type: ignore[index]
    builder.add_bulk(lines[40:], received_ns=RECEIVED_NS, source=source)
    later, _ = builder.flush_bulk()
    del builder
    gc.collect()
    assert first == kept and len(later) > 0
    assert b"".join([first, later]) == kept + bytes(later)
    assert gzip.decompress(_native.gzip(first)) == kept == gzip.decompress(_native.gzip(kept))
    assert orjson.loads(first[kept.index(b"\n") + 1 : ends[0] - 1]) == orjson.loads(kept.split(b"\n")[1])
    assert first.obj.__class__ is _native.BulkBody and len(first.obj) == len(kept)


def columns_of_rows(body: bytes, layout: list[Any]) -> tuple[Any, ...]:
    """A `*_bulk` call's body and layout rows as the `*_columns` calls give them (cut: the documents whose
    lines say they were cut)."""
    in_body = [row for row in layout if not row[4]]
    # each event in the body starts where the previous one ended
    assert [row[2] for row in in_body] == [0, *(row[3] for row in in_body)][: len(in_body)]
    others, before = [], 0
    for row in layout:
        if row[4]:
            others.append((before, row[0], row[5], row[4], row[6]))
        before += not row[4]
    columns = [row[3] for row in in_body], [row[0] for row in in_body], [row[1] for row in in_body]
    body = bytes(body)  # a memoryview equals the bytes it shows
    cut = [p for p, row in enumerate(in_body) if TRUNCATED_MARK in body[row[2] : row[3]]]
    return body, *columns, [row[5] for row in in_body], cut, others


@pytest.mark.parametrize("record_clock", [True, False], ids=["record-clock", "arrival-clock"])
@pytest.mark.parametrize("schema", SCHEMAS)
def test_columns_are_the_bulk_layout_by_column(schema: Schema, record_clock: bool) -> None:
    """`add_columns`/`poll_columns`/`flush_columns`: the body `*_bulk` writes, the rows of its events by
    column (the pipeline's whole bodies) and the others at their place, for every fixture and edge case
    (orphan EOEs, integers beyond 64 bits: documents now, events over [limits]), in batches of 7 lines,
    each batch's events timed out on its own clock."""
    lines = [line for fixture in LINUX_FIXTURES for _, line in read_records(fixture)]
    lines += [line for case in EDGE_CASES.values() for line in case]
    source = SOURCES[1].to_dict()
    rows = native_builder(schema, OBSERVERS[0], record_clock, Limits(max_string_chars=2000))
    columns = native_builder(schema, OBSERVERS[0], record_clock, Limits(max_string_chars=2000))
    reasons: set[str] = set()
    for start in range(0, len(lines), 7):
        batch = lines[start : start + 7]
        received = arrivals(len(batch), 10**9)
        ids = list(range(start, start + len(batch)))
        kw: dict[str, Any] = {"received_ns": received, "source": source, "spool_ids": ids}
        expected = columns_of_rows(*rows.add_bulk(batch, **kw))
        assert columns.add_columns(batch, **kw) == expected
        now = received[-1] / 1e9 + 5
        timed_out = columns.poll_columns(now)
        assert timed_out == columns_of_rows(*rows.poll_bulk(now))
        reasons |= {other[3].split(":")[0] for made in (expected, timed_out) for other in made[6]}
        reasons |= {"cut" for made in (expected, timed_out) if made[5]}
    tail = columns.flush_columns(data_stream="logs-auditrecv-linux")
    assert tail == columns_of_rows(*rows.flush_bulk(data_stream="logs-auditrecv-linux"))
    reasons |= {other[3].split(":")[0] for other in tail[6]}
    assert reasons == {"no_document", "cut"}
    assert columns.stats() == rows.stats() and len(columns) == len(rows) == 0


# ---------------------------------------------------------------- property


@settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(linux_payloads(), min_size=1, max_size=12),
    st.sampled_from(SCHEMAS),
    st.sampled_from(SOURCES),
    st.booleans(),
    st.integers(min_value=1, max_value=5),
)
def test_property_generated_and_mutated_lines_keep_the_invariants(
    lines: list[bytes], schema: Schema, source: Source, record_clock: bool, chunk: int
) -> None:
    assert_row_invariants(
        lines,
        schema=schema,
        source=source,
        observer=OBSERVERS[1],
        received=arrivals(len(lines), 1_500_000_000),
        record_clock=record_clock,
        chunk=chunk,
    )
