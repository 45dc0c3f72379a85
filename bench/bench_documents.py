"""Document building on one core: decode + map + serialize the bulk body, by the native core, against the
serialization alone of the same documents.

Input: the records of the apple.bsm fixture trail repeated N times (>= --records), as spooled payloads
(one raw record each, the way the pipeline reads them from the spool), in batches of --batch records
(search.batch_max_docs, 1000 by default).

Native: auditrecv._native.ecs_bsm_bulk_body, the bulk body in one call per batch (decode, ECS or
auditrecv-v1 mapping, document id, action lines, JSON), also with per-sender enrichment. Baseline, in the
same run: the sink encoding (index_for + sink.bulk_lines: action line and orjson) of the very same documents,
already built as dicts, i.e. the serialization alone that any implementation pays (the native body is
checked equal to it before timing). Times are best-of-N CPU (process) time, because the machine is
shared; issue 12's target is >= 150k docs/s.

Linux: the fixture logs of bench_linux_decode.py repeated with fresh serials (>= --linux-lines lines), fed
in batches of --batch lines to LinuxDocuments.add_columns (records' clock, the assembler kept across
batches) then flush_columns: the calls the pipeline makes, the body and its layout in a few flat columns;
also as add_bulk/flush_bulk, the same body with a Python tuple per document (`native rows`). The baseline
encodes the same events' documents. docs/s counts documents (events), the unit the target is stated in.
Also through the pipeline's DocumentBuilder as the pipeline runs it (`read`, whole bodies: a clean body
goes to the sink with its columns, no Python object per document), and as `add` (decode, export, tests),
whose Python rows (a BuiltDoc per document) come on top.

The Python path (DocumentBuilder's mappers) is gone (issue 12); its figures measured before the switch are
printed for reference (PYTHON_BEFORE).

Usage: .venv/bin/python bench/bench_documents.py [--records N] [--linux-lines L] [--batch B] [--repeat R]
       [--only bsm|linux] [--deadline S]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import benchkit  # noqa: E402
import orjson  # noqa: E402

from auditrecv import _native  # noqa: E402
from auditrecv.pipeline import BuiltDoc, DocumentBuilder  # noqa: E402
from auditrecv.sink import bulk_lines  # noqa: E402
from auditrecv.sink.naming import index_for  # noqa: E402
from auditrecv.spool.record import Source, SpoolRecord  # noqa: E402
from auditrecv.tools import decode_config  # noqa: E402
from tests.paths import BSM_FIXTURES  # noqa: E402

SOURCE = Source(transport="audit_remote", peer="192.0.2.7", peer_port=40001, listener="bsm")
OBSERVER = {"name": "recv", "hostname": "recv.example", "version": "bench"}
ENRICHMENT = {
    "hostname": "sender.example",
    "labels": {"datacenter": "ams1", "role": "compute"},
    "zone_labels": {},
    "zones": {},
}
RECEIVED_NS = 1_700_000_000_123_456_789
# The Python path measured before the switch (bench/bench_documents.py of commit 23b3f08, 50k records /
# 50k lines, batches of 1000, best of 2, this machine, shared): docs/s of decode + map + id + bulk lines;
# the native core made 153,897 / 536,854 / 56,012 / 97,561 docs/s in that run.
PYTHON_BEFORE = {"ecs": 15_857, "auditrecv-v1": 30_231, "linux ecs": 7_548, "linux auditrecv-v1": 14_291}


def payloads(min_records: int) -> list[bytes]:
    data = (BSM_FIXTURES / "plaso/apple.bsm").read_bytes()
    unit = [data[o : o + n] for kind, o, n in _native.bsm_split_trail(data) if kind != _native.ITEM_FILE]
    copies = -(-min_records // len(unit))
    return unit * copies


def batches(items: list[bytes], size: int) -> list[list[bytes]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def encoded_body(schema: str, docs: list[tuple[str, dict[str, Any]]]) -> bytes:
    """The sink's bulk lines of documents given as dicts (index_for + sink.bulk_lines)."""
    search = decode_config(schema).search
    lines = []
    for doc_id, doc in docs:
        enc = bulk_lines(index_for(search, doc), doc_id, doc)
        assert isinstance(enc, bytes)
        lines.append(enc)
    return b"".join(lines)


def baseline_bodies(schema: str, docs: list[list[tuple[str, dict[str, Any]]]]) -> Callable[[Any], int]:
    """The serialization alone: the sink encoding of the documents of every batch, built beforehand."""

    def run(_chunks: Any) -> int:
        made = 0
        for batch in docs:
            encoded_body(schema, batch)
            made += len(batch)
        return made

    return run


def bsm_documents(schema: str, chunks: list[list[bytes]]) -> list[list[tuple[str, dict[str, Any]]]]:
    out = []
    for chunk in chunks:
        rows = _native.ecs_bsm_documents(
            chunk, schema=schema, received_ns=RECEIVED_NS, source=SOURCE.to_dict(), observer=OBSERVER
        )
        assert all(doc is not None for _, doc, _ in rows), "a record was handed back"
        out.append([(doc_id, orjson.loads(doc)) for doc_id, doc, _ in rows if doc is not None])
    return out


def native_bodies(schema: str, enrichment: dict[str, Any] | None = None) -> Callable[[list[list[bytes]]], int]:
    source = SOURCE.to_dict()

    def run(chunks: list[list[bytes]]) -> int:
        n = 0
        for chunk in chunks:
            _body, layout = _native.ecs_bsm_bulk_body(
                chunk, schema=schema, received_ns=RECEIVED_NS, source=source, observer=OBSERVER, enrichment=enrichment
            )
            n += len(layout)
        return n

    return run


def best_of(fn: Callable[[Any], int], chunks: list[list[bytes]], repeat: int) -> tuple[float, int]:
    best = float("inf")
    count = 0
    for _ in range(repeat):
        t0 = time.process_time()
        count = fn(chunks)
        best = min(best, time.process_time() - t0)
    return best, count


def check_equal(chunk: list[bytes], docs: list[tuple[str, dict[str, Any]]], schema: str) -> None:
    """The native body is the sink's encoding of its documents (so the two timings measure the same output)."""
    body, layout = _native.ecs_bsm_bulk_body(
        chunk, schema=schema, received_ns=RECEIVED_NS, source=SOURCE.to_dict(), observer=OBSERVER
    )
    assert not any(row[4] for row in layout), "a record was handed back"
    if body != encoded_body(schema, docs):
        raise SystemExit(f"{schema}: the native bulk body differs from the sink's encoding of its documents")


def linux_lines(min_lines: int) -> list[bytes]:
    from bench_linux_decode import build_log

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.log"
        build_log(path, min_lines)
        return [line for line in path.read_bytes().split(b"\n") if line]


LINUX_SOURCE = Source(transport="audisp-remote", peer="192.0.2.8", peer_port=40002, listener="linux")


def linux_builder(schema: str) -> Any:
    cfg = decode_config(schema)
    ev, lim = cfg.decode.linux, cfg.limits
    return _native.LinuxDocuments(
        schema=schema,
        observer=OBSERVER,
        record_clock=True,
        grace_seconds=ev.grace_seconds,
        max_age_seconds=ev.max_age_seconds,
        max_records=ev.max_records,
        max_linux_event_bytes=lim.max_linux_event_bytes,
    )


def native_linux_bodies(
    schema: str, enrichment: dict[str, Any] | None = None, *, rows: bool = False
) -> Callable[[list[list[bytes]]], int]:
    """The documents' bulk bodies in columns (`add_columns`, as the pipeline calls it), or with `rows` a layout
    row per document (`add_bulk`)."""
    source = LINUX_SOURCE.to_dict()

    def run(chunks: list[list[bytes]]) -> int:
        builder = linux_builder(schema)
        n = 0
        for chunk in chunks:
            if rows:
                _body, layout = builder.add_bulk(chunk, received_ns=RECEIVED_NS, source=source, enrichment=enrichment)
                n += sum(1 for row in layout if not row[4])
            else:
                n += len(builder.add_columns(chunk, received_ns=RECEIVED_NS, source=source, enrichment=enrichment)[1])
        if rows:
            _body, layout = builder.flush_bulk(enrichment=enrichment)
            return n + sum(1 for row in layout if not row[4])
        return n + len(builder.flush_columns(enrichment=enrichment)[1])

    return run


def linux_documents(schema: str, chunks: list[list[bytes]]) -> list[list[tuple[str, dict[str, Any]]]]:
    """The documents of each batch's completed events (the flush's as a last batch), as dicts."""
    builder = linux_builder(schema)
    source = LINUX_SOURCE.to_dict()
    out = []
    for chunk in [*chunks, None]:
        rows = builder.flush() if chunk is None else builder.add(chunk, received_ns=RECEIVED_NS, source=source)
        assert all(row[3] in (None, "no_document") for row in rows), "an event was handed back"
        out.append([(row[0], orjson.loads(row[1])) for row in rows if row[1] is not None])
    return out


def check_linux_equal(chunks: list[list[bytes]], docs: list[list[tuple[str, dict[str, Any]]]], schema: str) -> None:
    """The native Linux bodies are the sink's encoding of their documents, batch by batch."""
    native = linux_builder(schema)
    for chunk, expected in zip([*chunks, None], docs, strict=True):
        if chunk is None:
            body, layout = native.flush_bulk()
        else:
            body, layout = native.add_bulk(chunk, received_ns=RECEIVED_NS, source=LINUX_SOURCE.to_dict())
        assert all(row[4] in ("", "no_document") for row in layout), "an event was handed back"
        if body != encoded_body(schema, expected):
            raise SystemExit(f"linux {schema}: the native bulk body differs from the sink's encoding of its documents")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=50_000)
    ap.add_argument("--linux-lines", type=int, default=50_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", choices=("bsm", "linux"), help="only the BSM or only the Linux documents")
    benchkit.add_deadline_argument(ap, 600)
    args = ap.parse_args()
    sys.exit(benchkit.run("bench_documents", args.deadline, lambda dl: body(args, dl)))


def body(args: argparse.Namespace, dl: benchkit.Deadline) -> None:
    if args.only != "linux":
        bsm_body(args, dl)
    if args.only != "bsm":
        linux_body(args, dl)


def bsm_body(args: argparse.Namespace, dl: benchkit.Deadline) -> None:
    dl.phase("reading apple.bsm")
    records = payloads(args.records)
    chunks = batches(records, args.batch)
    mb = sum(map(len, records)) / 1e6
    copies = len(records) // 54
    dl.measured(f"input: apple.bsm x {copies}: {len(records)} records, {mb:.1f} MB, batches of {args.batch}")
    for schema in ("ecs", "auditrecv-v1"):
        dl.phase(f"building the {schema} documents for the baseline")
        docs = bsm_documents(schema, chunks)
        check_equal(chunks[0], docs[0], schema)
        dl.phase(f"baseline {schema}")
        t_base, n_base = best_of(baseline_bodies(schema, docs), chunks, args.repeat)
        dl.measured(
            f"{schema:13} baseline: {n_base / t_base:10,.0f} docs/s  ({t_base:.3f} s, bulk lines of built dicts)"
        )
        dl.phase(f"native {schema}")
        t_nat, n_nat = best_of(native_bodies(schema), chunks, args.repeat)
        assert n_nat == n_base == len(records), (n_nat, n_base, len(records))
        dl.measured(f"{schema:13} native: {n_nat / t_nat:10,.0f} docs/s  ({t_nat:.3f} s, one call per batch)")
        dl.measured(f"{schema:13} ratio native/baseline: {t_base / t_nat:.2f}x")
        before = PYTHON_BEFORE[schema]
        dl.measured(
            f"{schema:13} python before the switch: {before:,} docs/s; ratio native/that: {n_nat / t_nat / before:.1f}x"
        )
    dl.phase("native ecs, enriched")
    t_en, n_en = best_of(native_bodies("ecs", ENRICHMENT), chunks, args.repeat)
    dl.measured(f"ecs enriched  native: {n_en / t_en:10,.0f} docs/s  ({t_en:.3f} s, per-sender values merged)")


def linux_body(args: argparse.Namespace, dl: benchkit.Deadline) -> None:
    dl.phase("building the Linux log")
    lines = linux_lines(args.linux_lines)
    line_chunks = batches(lines, args.batch)
    mb = sum(map(len, lines)) / 1e6
    dl.measured(f"input: Linux fixture logs repeated: {len(lines)} lines, {mb:.1f} MB, batches of {args.batch}")
    for schema in ("ecs", "auditrecv-v1"):
        label = f"linux {schema}"
        dl.phase(f"building the Linux {schema} documents for the baseline")
        docs = linux_documents(schema, line_chunks)
        check_linux_equal(line_chunks[:5], linux_documents(schema, line_chunks[:5]), schema)
        dl.phase(f"baseline linux {schema}")
        t_base, n_base = best_of(baseline_bodies(schema, docs), line_chunks, args.repeat)
        dl.measured(
            f"{label:19} baseline: {n_base / t_base:10,.0f} docs/s  ({t_base:.3f} s, bulk lines of built dicts)"
        )
        dl.phase(f"native linux {schema}")
        t_nat, n_nat = best_of(native_linux_bodies(schema), line_chunks, args.repeat)
        assert n_nat == n_base, (n_nat, n_base)
        rate = f"{len(lines) / t_nat:,.0f} lines/s"
        dl.measured(f"{label:19} native: {n_nat / t_nat:10,.0f} docs/s  ({t_nat:.3f} s, {rate}, add_columns)")
        dl.measured(f"{label:19} ratio native/baseline: {t_base / t_nat:.2f}x")
        before = PYTHON_BEFORE[label]
        dl.measured(
            f"{label:19} python before the switch: {before:,} docs/s; ratio native/that: {n_nat / t_nat / before:.1f}x"
        )
    dl.phase("native linux ecs, enriched")
    t_en, n_en = best_of(native_linux_bodies("ecs", ENRICHMENT), line_chunks, args.repeat)
    dl.measured(f"linux ecs enriched  native: {n_en / t_en:10,.0f} docs/s  ({t_en:.3f} s)")
    dl.phase("native linux ecs, a layout row per document")
    t_rows, n_rows = best_of(native_linux_bodies("ecs", rows=True), line_chunks, args.repeat)
    assert n_rows == n_en, (n_rows, n_en)
    dl.measured(f"linux ecs           native rows: {n_rows / t_rows:,.0f} docs/s  ({t_rows:.3f} s, add_bulk)")
    dl.phase("linux ecs through the pipeline's DocumentBuilder")
    spooled = spooled_batches(line_chunks)
    t_pipe, n_pipe = best_of(pipeline_linux_documents("ecs"), spooled, args.repeat)
    assert n_pipe == n_en, (n_pipe, n_en)
    dl.measured(f"linux ecs pipeline  native: {n_pipe / t_pipe:10,.0f} docs/s  ({t_pipe:.3f} s, DocumentBuilder.read)")
    dl.phase("linux ecs through DocumentBuilder.add")
    t_rows, n_rows = best_of(pipeline_linux_documents("ecs", rows=True), spooled, args.repeat)
    assert n_rows == n_en, (n_rows, n_en)
    dl.measured(f"linux ecs rows      native: {n_rows / t_rows:10,.0f} docs/s  ({t_rows:.3f} s, DocumentBuilder.add)")


def spooled_batches(chunks: list[list[bytes]]) -> list[list[tuple[int, SpoolRecord]]]:
    """The lines as the pipeline reads them from the spool: (spool id, record) pairs."""
    out, spool_id = [], 0
    for chunk in chunks:
        batch = []
        for line in chunk:
            spool_id += 1
            batch.append((spool_id, SpoolRecord("linux", line, LINUX_SOURCE, RECEIVED_NS)))
        out.append(batch)
    return out


def pipeline_linux_documents(
    schema: str, *, rows: bool = False
) -> Callable[[list[list[tuple[int, SpoolRecord]]]], int]:
    """The pipeline's DocumentBuilder (records' clock): `read` with whole bodies as the pipeline runs it
    (each clean body one BuiltDoc with its columns), or with `rows` its `add`, a BuiltDoc per document."""

    def documents(docs: list[BuiltDoc]) -> int:
        return sum(len(d.whole[1]) if d.whole is not None else d.source is not None for d in docs)

    def run(batches: list[list[tuple[int, SpoolRecord]]]) -> int:
        builder = DocumentBuilder(decode_config(schema), OBSERVER, record_clock=True, whole_bodies=not rows)
        # each batch's BuiltDocs dropped once counted, as the pipeline drops them once indexed
        if rows:
            made = sum(documents(builder.add(batch)) for batch in batches)
        else:
            made = sum(documents(builder.read(batch).docs) for batch in batches)
        return made + documents(builder.flush())

    return run


if __name__ == "__main__":
    main()
