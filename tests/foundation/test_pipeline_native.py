"""The pipeline builds BSM documents natively, per sender and straight into bulk lines: what reaches the
indexer must be exactly what the Python path (DocumentBuilder dicts → Enricher.enrich → sink encode) made,
for every kind of record (dead letters, over [limits], unencodable, several senders, Linux mixed in), every
spool id confirmed once, index names and data streams as `index_for` names them."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from auditrecv.config import Config, Enrich, Limits, Triton
from auditrecv.enrich import Enricher
from auditrecv.pipeline import BuiltDoc, DocumentBuilder, Pipeline
from auditrecv.sink.bulk import BulkDoc, BulkOutcome, Result, encode
from auditrecv.sink.naming import index_for
from auditrecv.spool.record import Source, SpoolRecord
from tests import bsm_builders as B
from tests.enrich.fake_triton import FakeTriton
from tests.native.test_bsm_native import FIXTURE_RECORDS
from tests.native.test_documents_native import OTHER_UUID, UUID, ZONE_RECORDS

OBSERVER = {"name": "recv", "hostname": "recv.example"}
SENDERS = [
    Source(transport="audit_remote", peer="192.0.2.7", peer_port=4000, listener="bsm"),
    Source(transport="audit_remote", peer="2001:db8::9", principal="host/web1.example.com@R", authenticated=True),
    Source(transport="import", peer="web2.example"),  # not an address: enriched the Python way
]
LINUX = Source(transport="audisp_remote", peer="192.0.2.8", listener="audisp_remote")
BIG = B.record(B.header64(1, 1, 0), *[B.text("x")] * 1200)  # over max_tokens: cut by limit_document
UNENCODABLE = B.record(B.header32(1, 1_700_000_000, 0), B.file64(2**40, 0, "/x"), trailer=True)


def spooled() -> list[tuple[int, SpoolRecord]]:
    payloads = [raw for _, _, raw in FIXTURE_RECORDS[:120]] + ZONE_RECORDS + [b"\x00not bsm", BIG, UNENCODABLE]
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


class FakeIndexer:
    """Confirms everything; keeps the NDJSON lines the sink would send (or why it could not encode)."""

    def __init__(self) -> None:
        self.lines: dict[str, bytes | str] = {}

    async def index(self, docs: list[BulkDoc]) -> list[BulkOutcome]:
        for doc in docs:
            item = encode(doc)
            self.lines[doc.id] = item[1] if isinstance(item, tuple) else item.lines
        return [BulkOutcome(d, Result.CREATED) for d in docs]


def python_documents(cfg: Config, items: list[tuple[int, SpoolRecord]], stats: dict[str, int]) -> list[BuiltDoc]:
    """The Python path's documents, read in batches as the pipeline reads them."""
    builder = DocumentBuilder(cfg, dict(OBSERVER))
    docs = []
    for start in range(0, len(items), cfg.search.batch_max_docs):
        docs += builder.add(items[start : start + cfg.search.batch_max_docs])
    docs += builder.flush()
    stats.update(builder.stats)
    return [d for d in docs if d.doc is not None]


def encoded(cfg: Config, docs: list[BuiltDoc]) -> dict[str, bytes | str]:
    """What the sink sends for dict documents (or why it could not encode one)."""
    out: dict[str, bytes | str] = {}
    for d in docs:
        assert d.doc is not None
        item = encode(BulkDoc(index_for(cfg.search, d.doc), d.doc_id, d.doc))
        out[d.doc_id] = item[1] if isinstance(item, tuple) else item.lines
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
    "python-only-pattern": {"index": "audit-%b"},  # a directive the native core does not format
}


@pytest.mark.parametrize("naming", list(NAMINGS))
@pytest.mark.parametrize("schema", ["ecs", "auditrecv-v1"])
def test_pipeline_sends_what_the_python_path_sends(naming: str, schema: str) -> None:
    cfg = Config()
    cfg = dataclasses.replace(
        cfg,
        search=dataclasses.replace(cfg.search, schema=schema, batch_max_docs=50, **NAMINGS[naming]),
        limits=Limits(max_tokens=1000),
    )
    items = spooled()
    pipeline, spool, indexer = asyncio.run(run_pipeline(cfg, items))
    stats: dict[str, int] = {}
    expected = encoded(cfg, python_documents(cfg, items, stats))
    assert indexer.lines == expected
    assert sorted(spool.deleted) == [i for i, _ in items]
    assert any(isinstance(v, str) for v in expected.values())  # the unencodable one went the Python way
    assert {k: pipeline.stats[k] for k in stats} == stats
    assert stats["dead_letters"] >= 1 and stats["truncated"] == (schema == "ecs")


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
    docs = await asyncio.to_thread(python_documents, cfg, items, {})
    for d in docs:
        assert d.doc is not None
        await per_document.enrich(d.doc)
    await per_document.close()
    expected = encoded(cfg, docs)
    enricher = Enricher(settings)
    for enrich in (enricher.enrich, enricher):  # as the app passes it, or the object
        _, spool, indexer = await run_pipeline(cfg, items, enrich)
        assert indexer.lines == expected
        assert sorted(spool.deleted) == [i for i, _ in items]
    await enricher.close()
    assert triton.requests[f"/vms/{UUID}"] == 2  # one per enricher: then its cache answers
    assert any(b'"zonealias":"alice-web"' in v for v in expected.values() if isinstance(v, bytes))


async def test_a_plain_enrichment_callable_gets_dicts() -> None:
    seen: list[dict[str, Any]] = []

    async def enrich(doc: dict[str, Any]) -> None:
        seen.append(doc)
        doc.setdefault("labels", {})["seen"] = "yes"

    items = spooled()[:30]
    _, _, indexer = await run_pipeline(Config(), items, enrich)
    assert len(seen) == len(indexer.lines) and all(b'"seen":"yes"' in v for v in indexer.lines.values())
