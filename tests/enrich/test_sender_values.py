"""Enrichment values looked up once per sender (Enricher.for_sender) and merged natively into the documents
of a batch, against the Python enricher merging its lookups into each document, with a fake Triton."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest

from auditrecv import _native
from auditrecv.config import Enrich, Triton
from auditrecv.enrich import Enricher
from auditrecv.sink import bulk_lines
from auditrecv.spool.record import Source
from tests.enrich.fake_triton import FakeTriton
from tests.native.test_documents_native import (
    FIXTURE_RECORDS,
    OTHER_UUID,
    RECEIVED_NS,
    UUID,
    ZONE_RECORDS,
    native_documents,
)

OBSERVER = {"name": "recv", "hostname": "recv.example"}
PAYLOADS = ZONE_RECORDS + [raw for _, _, raw in FIXTURE_RECORDS[:60]] + [b"\x00not bsm"]
STATIC_MAP = """
[[host]]
match = "192.0.2.0/24"
labels = { dc = "ams", net = "doc" }
[[host]]
match = "web1.example.com"
labels = { role = "compute", dc = "ams1" }
[[host]]
match = "gz1.example"
labels = { ptr = "yes" }
[[host]]
match = "UPPER_UUID"
labels = { tier = "gold", dc = "ams2" }
[[host]]
match = "global"
labels = { zone = "global" }
""".replace("UPPER_UUID", UUID.upper())


class _Dns:
    """The PTR cache, answering from a dict (reverse DNS of documentation addresses is not in the test's hands)."""

    def __init__(self, answers: Mapping[str, str]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def get(self, key: str, deadline: float) -> str | None:
        self.asked.append(key)
        return self.answers.get(key)

    async def settled(self) -> None:
        return None


@pytest.fixture
async def triton() -> AsyncIterator[FakeTriton]:
    fake = FakeTriton()
    fake.add_zone(UUID, "web", "930896af-bf8c-48d4-885c-6573a94b1853", "alice", tags={"role": "db", "n": 1})
    fake.add_zone(OTHER_UUID, "", "", "")
    await fake.start()
    yield fake
    await fake.stop()


def enricher(url: str, tmp_path: Path, *, dns: bool = True, static: bool = True) -> Enricher:
    path = tmp_path / "static.toml"
    path.write_text(STATIC_MAP)
    settings = Enrich(
        triton=Triton(vmapi_url=url, mahi_url=url),
        lookup_timeout=2.0,
        event_budget=5.0,
        static_map=str(path) if static else "",
    )
    out = Enricher(settings)
    if dns:
        out._dns = _Dns({"192.0.2.7": "gz1.example"})  # type: ignore[assignment]
    return out


def bulk_documents(batch: Any, values: dict[str, Any]) -> list[tuple[str, bytes | None, str | None]]:
    """The documents of the batch's enriched bulk body."""
    body, layout = batch.bulk_body(enrichment=values)
    body = bytes(body)
    out = []
    for doc_id, _, start, end, why in layout:
        lines = body[start:end]
        out.append((doc_id, lines[lines.index(b"\n") + 1 : -1] if not why else None, why or None))
    return out


def _diff(python: bytes, native: bytes | None) -> str:
    a, b = orjson.loads(python), orjson.loads(native or b"{}")
    return "; ".join(
        f"{k}: python {a.get(k)!r} native {b.get(k)!r}" for k in a.keys() | b.keys() if a.get(k) != b.get(k)
    )


SENDERS = [
    Source(transport="audit_remote", peer="192.0.2.7", peer_port=1),
    Source(
        transport="audit_remote", peer="192.0.2.7", principal="host/web1.example.com@EXAMPLE.COM", authenticated=True
    ),
    Source(transport="audit_remote", peer="192.0.2.8", principal="alice@EXAMPLE.COM", authenticated=True),
    Source(transport="audit_remote", peer="2001:db8::7", principal="host/10.0.0.1@R", authenticated=True),
]


@pytest.mark.parametrize("source", SENDERS, ids=lambda s: f"{s.peer}-{s.principal or 'anon'}")
@pytest.mark.parametrize("lookups", ["all", "no-dns", "triton-only"])
async def test_values_per_sender_as_enrich_per_document(
    triton: FakeTriton, tmp_path: Path, source: Source, lookups: str
) -> None:
    kw = {"dns": lookups == "all", "static": lookups != "triton-only"}
    assert Enricher.uniform_sender(source, "ecs")
    per_document = enricher(triton.url, tmp_path, **kw)
    # the documents unenriched (the native core: test_documents_native checks them), enriched one by one
    rows = native_documents(PAYLOADS, schema="ecs", source=source, observer=OBSERVER)
    expected = [(doc_id, orjson.loads(doc)) for doc_id, doc, _ in rows if doc is not None]
    assert len(expected) == len(PAYLOADS)
    for _, doc in expected:
        await per_document.enrich(doc)
    await per_document.close()

    # as the pipeline does it: map, ask which zones the batch names, look up once, merge while serializing
    per_sender = enricher(triton.url, tmp_path, **kw)
    batch = _native.BsmDocuments(
        PAYLOADS, schema="ecs", received_ns=RECEIVED_NS, source=source.to_dict(), observer=OBSERVER
    )
    refs = batch.zone_refs()
    assert UUID in refs and OTHER_UUID in refs
    values = await per_sender.for_sender(source, refs)
    await per_sender.close()
    native = await asyncio.to_thread(bulk_documents, batch, values)
    assert len(native) == len(expected)
    for (py_id, py_doc), (nat_id, nat_doc, why) in zip(expected, native, strict=True):
        assert (nat_id, why) == (py_id, None)
        lines = bulk_lines("index", py_id, py_doc)
        assert isinstance(lines, bytes)
        source = lines.split(b"\n")[1]  # the sink's serialization of the Python document
        assert nat_doc == source, _diff(source, nat_doc)
    if lookups != "triton-only":
        assert values["zones"][UUID]["owner_login"] == "alice"
        assert "tier" in values["zone_labels"][UUID.lower()]


async def test_values_are_looked_up_once_per_sender(triton: FakeTriton, tmp_path: Path) -> None:
    e = enricher(triton.url, tmp_path)
    refs = [UUID, "global", OTHER_UUID, UUID, "dmz"]
    values = await e.for_sender(SENDERS[0], refs)
    await e.close()
    assert values["hostname"] == "gz1.example"
    assert values["labels"] == {"dc": "ams", "net": "doc", "ptr": "yes"}
    assert values["zone_labels"] == {UUID.lower(): {"tier": "gold", "dc": "ams2"}, "global": {"zone": "global"}}
    assert set(values["zones"]) == {UUID, OTHER_UUID}
    assert values["zones"][UUID]["alias"] == "web" and values["zones"][UUID]["tags"] == {"role": "db", "n": 1}
    assert e._dns.asked == ["192.0.2.7"]  # type: ignore[union-attr]
    assert triton.requests[f"/vms/{UUID}"] == 1


async def test_a_slow_triton_costs_one_budget_per_sender(triton: FakeTriton, tmp_path: Path) -> None:
    triton.mode = "slow"
    e = Enricher(Enrich(triton=Triton(vmapi_url=triton.url, mahi_url=triton.url), lookup_timeout=5, event_budget=0.2))
    values = await e.for_sender(SENDERS[0], [UUID])
    await e.close()
    assert values["zones"] == {} and values["labels"] == {}
    assert e.budget_exceeded <= 1


def test_only_uniform_senders() -> None:
    assert Enricher.uniform_sender(SENDERS[0], "ecs")
    assert not Enricher.uniform_sender(SENDERS[0], "auditrecv-v1")
    assert not Enricher.uniform_sender(Source(transport="file", peer="web1"), "ecs")
    assert not Enricher.uniform_sender(Source(transport="import", peer=""), "ecs")
    assert not Enricher.uniform_sender(Source(transport="audit_remote", peer="0.0.0.0"), "ecs")
