#!/usr/bin/env python3
"""Document building on one core: decode + map + serialize the bulk body, native against Python.

Input: the records of the apple.bsm fixture trail repeated N times (>= --records), as spooled payloads
(one raw record each, the way the pipeline reads them from the spool), in batches of --batch records
(search.batch_max_docs, 1000 by default).

Python: what the pipeline and the sink did per batch before issue 12 (PythonBuilder: decode, ECS mapping,
document id; then index_for + bulk.encode per document: the create action line and orjson of the
document), the NDJSON lines joined into one body. Native: auditrecv._native.ecs_bsm_bulk_body, the same
body in one call per batch (checked equal to the Python body before timing). Both in the ECS shape and
the auditrecv-v1 shape, and natively with per-sender enrichment too. Times are best-of-N CPU (process)
time, because the machine is shared; issue 12's target is >= 150k docs/s.

Linux: the fixture logs of bench_linux_decode.py repeated with fresh serials (>= --linux-lines lines), fed
in batches of --batch lines to PythonBuilder (records' clock) then flushed, each batch's completed
events encoded as above; natively LinuxDocuments.add_bulk / flush_bulk (the assembler kept across
batches). docs/s counts documents (events), the unit the target is stated in.

Usage: .venv/bin/python bench/bench_documents.py [--records N] [--linux-lines L] [--batch B] [--repeat R]
       [--deadline S]
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

from auditrecv.decode.bsm import decode_record, iter_records  # noqa: E402
from auditrecv.decode.linux import EventAssembler, parse_line  # noqa: E402
from auditrecv.decode.linux.model import COMPLETE_ORPHAN_EOE  # noqa: E402
from auditrecv.schema import bsm_to_ecs, document_id, linux_id_parts, linux_to_ecs, to_compat_v1  # noqa: E402
from auditrecv.sink.bulk import BulkDoc, encode  # noqa: E402
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


class PythonBuilder:
    """The Python path the pipeline ran before issue 12 (DocumentBuilder without the native core: decode,
    map, document id; the Linux event assembler on the records' clock), for clean input: no dead letters
    nor [limits] (the fixtures have none). Gone with the Python decoders and mappers."""

    def __init__(self, cfg: Any, observer: dict[str, Any]) -> None:
        ev = cfg.decode.linux
        self.compat = cfg.search.schema == "auditrecv-v1"
        self.observer = observer
        self.clock = 0.0
        self.assembler = EventAssembler(
            grace_seconds=ev.grace_seconds,
            max_age_seconds=ev.max_age_seconds,
            max_records=ev.max_records,
            max_bytes=cfg.limits.max_linux_event_bytes,
        )

    def add(self, items: list[tuple[int, SpoolRecord]]) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for _, rec in items:
            if rec.kind == "bsm":
                decoded = decode_record(rec.payload)
                if self.compat:
                    doc = to_compat_v1(decoded, rec.source, received_ns=rec.received_ns)
                else:
                    doc = bsm_to_ecs(decoded, rec.source, self.observer, received_ns=rec.received_ns)
                out.append((document_id("bsm", rec.source, [rec.payload]), doc))
                continue
            record = parse_line(rec.payload)
            if record.time_ns is not None:
                self.clock = max(self.clock, record.time_ns / 1e9)
            out += self._mapped(self.assembler.add(record, "bench", self.clock))
        return out + self._mapped(self.assembler.poll(self.clock))

    def flush(self) -> list[tuple[str, dict[str, Any]]]:
        return self._mapped(self.assembler.flush())

    def _mapped(self, events: list[Any]) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for event in events:
            if event.complete == COMPLETE_ORPHAN_EOE:
                continue
            if self.compat:
                doc = to_compat_v1(event, LINUX_SOURCE, received_ns=RECEIVED_NS)
            else:
                doc = linux_to_ecs(event, LINUX_SOURCE, self.observer, received_ns=RECEIVED_NS)
            out.append((document_id("linux", LINUX_SOURCE, linux_id_parts(event)), doc))
        return out


def payloads(min_records: int) -> list[bytes]:
    unit = [rec.raw for rec in iter_records((BSM_FIXTURES / "plaso/apple.bsm").read_bytes())]
    copies = -(-min_records // len(unit))
    return unit * copies


def batches(items: list[bytes], size: int) -> list[list[bytes]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def python_bodies(schema: str) -> Callable[[list[list[bytes]]], int]:
    cfg = decode_config(schema)

    def run(chunks: list[list[bytes]]) -> int:
        builder = PythonBuilder(cfg, OBSERVER)
        n = 0
        spool_id = 0
        for chunk in chunks:
            items = []
            for payload in chunk:
                spool_id += 1
                items.append((spool_id, SpoolRecord("bsm", payload, SOURCE, RECEIVED_NS)))
            lines = []
            for doc_id, doc in builder.add(items):
                enc = encode(BulkDoc(index_for(cfg.search, doc), doc_id, doc))
                assert not isinstance(enc, tuple)
                lines.append(enc.lines)
            b"".join(lines)
            n += len(lines)
        return n

    return run


def native_bodies(schema: str, enrichment: dict[str, Any] | None = None) -> Callable[[list[list[bytes]]], int]:
    from auditrecv import _native

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


def best_of(fn: Callable[[list[list[bytes]]], int], chunks: list[list[bytes]], repeat: int) -> tuple[float, int]:
    best = float("inf")
    count = 0
    for _ in range(repeat):
        t0 = time.process_time()
        count = fn(chunks)
        best = min(best, time.process_time() - t0)
    return best, count


def check_equal(chunk: list[bytes], schema: str) -> None:
    """The native body is the Python body (so the two timings measure the same work)."""
    from auditrecv import _native

    cfg = decode_config(schema)
    builder = PythonBuilder(cfg, OBSERVER)
    items = [(i, SpoolRecord("bsm", p, SOURCE, RECEIVED_NS)) for i, p in enumerate(chunk)]
    expected = b""
    for doc_id, doc in builder.add(items):
        enc = encode(BulkDoc(index_for(cfg.search, doc), doc_id, doc))
        assert not isinstance(enc, tuple)
        expected += enc.lines
    body, layout = _native.ecs_bsm_bulk_body(
        chunk, schema=schema, received_ns=RECEIVED_NS, source=SOURCE.to_dict(), observer=OBSERVER
    )
    assert not any(row[4] for row in layout), "a record was handed back"
    if body != expected:
        raise SystemExit(f"{schema}: the native bulk body differs from the Python one")


def linux_lines(min_lines: int) -> list[bytes]:
    from bench_linux_decode import build_log

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.log"
        build_log(path, min_lines)
        return [line for line in path.read_bytes().split(b"\n") if line]


LINUX_SOURCE = Source(transport="audisp-remote", peer="192.0.2.8", peer_port=40002, listener="linux")


def python_linux_bodies(schema: str) -> Callable[[list[list[bytes]]], int]:
    cfg = decode_config(schema)

    def run(chunks: list[list[bytes]]) -> int:
        builder = PythonBuilder(cfg, OBSERVER)
        n = 0
        spool_id = 0

        def encoded(built_docs: list[tuple[str, dict[str, Any]]]) -> int:
            lines = []
            for doc_id, doc in built_docs:
                enc = encode(BulkDoc(index_for(cfg.search, doc), doc_id, doc))
                assert not isinstance(enc, tuple)
                lines.append(enc.lines)
            b"".join(lines)
            return len(lines)

        for chunk in chunks:
            items = []
            for line in chunk:
                spool_id += 1
                items.append((spool_id, SpoolRecord("linux", line, LINUX_SOURCE, RECEIVED_NS)))
            n += encoded(builder.add(items))
        return n + encoded(builder.flush())

    return run


def linux_builder(schema: str) -> Any:
    from auditrecv import _native

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


def native_linux_bodies(schema: str, enrichment: dict[str, Any] | None = None) -> Callable[[list[list[bytes]]], int]:
    source = LINUX_SOURCE.to_dict()

    def run(chunks: list[list[bytes]]) -> int:
        builder = linux_builder(schema)
        n = 0
        for chunk in chunks:
            _body, layout = builder.add_bulk(chunk, received_ns=RECEIVED_NS, source=source, enrichment=enrichment)
            n += sum(1 for row in layout if not row[4])
        _body, layout = builder.flush_bulk(enrichment=enrichment)
        return n + sum(1 for row in layout if not row[4])

    return run


def check_linux_equal(chunks: list[list[bytes]], schema: str) -> None:
    """The native Linux bodies are the Python ones, batch by batch."""
    cfg = decode_config(schema)
    python = PythonBuilder(cfg, OBSERVER)
    native = linux_builder(schema)
    spool_id = 0
    for chunk in [*chunks, None]:
        if chunk is None:
            built, (body, layout) = python.flush(), native.flush_bulk()
        else:
            items = []
            for line in chunk:
                spool_id += 1
                items.append((spool_id, SpoolRecord("linux", line, LINUX_SOURCE, RECEIVED_NS)))
            built = python.add(items)
            body, layout = native.add_bulk(chunk, received_ns=RECEIVED_NS, source=LINUX_SOURCE.to_dict())
        expected = b""
        for doc_id, doc in built:
            enc = encode(BulkDoc(index_for(cfg.search, doc), doc_id, doc))
            assert not isinstance(enc, tuple)
            expected += enc.lines
        assert all(row[4] in ("", "no_document") for row in layout), "an event was handed back"
        if body != expected:
            raise SystemExit(f"linux {schema}: the native bulk body differs from the Python one")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=50_000)
    ap.add_argument("--linux-lines", type=int, default=50_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    benchkit.add_deadline_argument(ap, 600)
    args = ap.parse_args()
    sys.exit(benchkit.run("bench_documents", args.deadline, lambda dl: body(args, dl)))


def body(args: argparse.Namespace, dl: benchkit.Deadline) -> None:
    dl.phase("reading apple.bsm")
    records = payloads(args.records)
    chunks = batches(records, args.batch)
    mb = sum(map(len, records)) / 1e6
    copies = len(records) // 54
    dl.measured(f"input: apple.bsm x {copies}: {len(records)} records, {mb:.1f} MB, batches of {args.batch}")
    try:
        from auditrecv import _native  # noqa: F401
    except ImportError as exc:
        dl.measured(f"native: not built ({exc}); run scripts/install.sh")
        return
    for schema in ("ecs", "auditrecv-v1"):
        dl.phase(f"checking the {schema} bodies are equal")
        check_equal(records[: args.batch], schema)
        dl.phase(f"python {schema}")
        t_py, n_py = best_of(python_bodies(schema), chunks, args.repeat)
        dl.measured(f"{schema:13} python: {n_py / t_py:10,.0f} docs/s  ({t_py:.3f} s, decode + map + id + bulk lines)")
        dl.phase(f"native {schema}")
        t_nat, n_nat = best_of(native_bodies(schema), chunks, args.repeat)
        assert n_nat == n_py == len(records), (n_nat, n_py, len(records))
        dl.measured(f"{schema:13} native: {n_nat / t_nat:10,.0f} docs/s  ({t_nat:.3f} s, one call per batch)")
        dl.measured(f"{schema:13} ratio native/python: {t_py / t_nat:.1f}x")
    dl.phase("native ecs, enriched")
    t_en, n_en = best_of(native_bodies("ecs", ENRICHMENT), chunks, args.repeat)
    dl.measured(f"ecs enriched  native: {n_en / t_en:10,.0f} docs/s  ({t_en:.3f} s, per-sender values merged)")

    dl.phase("building the Linux log")
    lines = linux_lines(args.linux_lines)
    line_chunks = batches(lines, args.batch)
    mb = sum(map(len, lines)) / 1e6
    dl.measured(f"input: Linux fixture logs repeated: {len(lines)} lines, {mb:.1f} MB, batches of {args.batch}")
    for schema in ("ecs", "auditrecv-v1"):
        dl.phase(f"checking the Linux {schema} bodies are equal")
        check_linux_equal(line_chunks[:5], schema)
        dl.phase(f"python linux {schema}")
        t_py, n_py = best_of(python_linux_bodies(schema), line_chunks, args.repeat)
        label = f"linux {schema}"
        dl.measured(f"{label:19} python: {n_py / t_py:10,.0f} docs/s  ({t_py:.3f} s, parse + assemble + map + bulk)")
        dl.phase(f"native linux {schema}")
        t_nat, n_nat = best_of(native_linux_bodies(schema), line_chunks, args.repeat)
        assert n_nat == n_py, (n_nat, n_py)
        rate = f"{len(lines) / t_nat:,.0f} lines/s"
        dl.measured(f"{label:19} native: {n_nat / t_nat:10,.0f} docs/s  ({t_nat:.3f} s, {rate})")
        dl.measured(f"{label:19} ratio native/python: {t_py / t_nat:.1f}x")
    dl.phase("native linux ecs, enriched")
    t_en, n_en = best_of(native_linux_bodies("ecs", ENRICHMENT), line_chunks, args.repeat)
    dl.measured(f"linux ecs enriched  native: {n_en / t_en:10,.0f} docs/s  ({t_en:.3f} s)")


if __name__ == "__main__":
    main()
