"""The chaos probe's records through the whole service into the REAL engine (issue 14, defect 1).

A 1,000,031-byte BSM record of 200,000 text tokens used to become an 8 MB document that ran the
engine (512 MB heap) out of memory, after which nothing else was indexed; a 1,000-record Linux event
from the real audisp-remote became a 43 MB document. Now both arrive cut to [limits], saying so, and
the records sent after them arrive too, every one exactly once.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from auditrecv.config import Limits
from auditrecv.testclient.illumos import IllumosClient
from tests.e2e.harness import running_service, service_config, wait_count
from tests.e2e.test_linux_e2e import Factory, all_docs, exit_code, linux_table, sentinel_lines
from tests.e2e.test_spool_sink_e2e import distinct_records, dummy_listener
from tests.infra.engine import SearchEngine
from tests.schema.test_limits import execve_event_lines, text_flood

MAX_DOCUMENT_BYTES = Limits().max_document_bytes


def source_bytes(doc: dict[str, Any]) -> int:
    return len(json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode())


@pytest.mark.engine
async def test_text_token_flood_is_indexed_truncated_and_later_records_follow(
    search_engine: SearchEngine, tmp_path: Path
) -> None:
    index = f"e2e-limits-{uuid.uuid4().hex[:8]}"
    table = service_config(
        tmp_path, search_engine.url, listeners=dummy_listener(), search={"index": index + "-%Y.%m.%d"}
    )
    flood = text_flood()
    normal = distinct_records(300)
    try:
        async with running_service(table):
            client = IllumosClient("127.0.0.1", table["listeners"]["audit_remote"]["port"], mech="dummy")
            await client.connect()
            await client.send_records([flood], wait_when_full=True)
            await client.send_records(normal, wait_when_full=True)
            assert await client.wait_all_acked(60)
            await client.close()
            count = await wait_count(search_engine, index + "-*", 1 + len(normal), timeout=120.0)
        assert count == 1 + len(normal)
        truncated = await asyncio.to_thread(search_engine.search, index + "-*", {"term": {"auditrecv.truncated": True}})
        assert len(truncated) == 1
        (big,) = truncated
        assert source_bytes(big) <= MAX_DOCUMENT_BYTES
        assert big["auditrecv"]["truncation"]["fields"] == ["bsm.texts", "bsm.tokens"]
        assert big["auditrecv"]["truncation"]["raw_bytes"] == len(flood)
        assert base64.b64decode(big["auditrecv"]["raw_base64"]) == flood
        assert len(big["bsm"]["tokens"]) == 1000 and len(big["bsm"]["texts"]) == 10_000
        assert "truncated" in big["tags"]
        not_cut = {"bool": {"must_not": {"exists": {"field": "auditrecv.truncated"}}}}
        assert await asyncio.to_thread(search_engine.count, index + "-*", not_cut) == len(normal)
        assert await asyncio.to_thread(search_engine.health) in ("green", "yellow")
    finally:
        search_engine.delete_indices(index + "-*")


@pytest.mark.engine
@pytest.mark.audisp
async def test_thousand_record_linux_event_stays_under_the_document_cap(
    search_engine: SearchEngine, audisp_remote_factory: Factory, tmp_path: Path
) -> None:
    index = f"e2e-limits-linux-{uuid.uuid4().hex[:8]}"
    lines = execve_event_lines(1000)
    assert 8_800_000 < sum(map(len, lines)) < 8_900_000  # each line under audisp-remote's 8969 bytes
    table = linux_table(tmp_path, search_engine, index)
    try:
        async with running_service(table):
            client = audisp_remote_factory("127.0.0.1", table["listeners"]["audisp_remote"]["port"]).start()
            # from a thread: 8.8 MB fill the pipe, and audisp-remote reads on only as this loop acks
            await asyncio.to_thread(client.send_lines, [*lines, sentinel_lines()[0]])
            client.close_stdin()
            assert await exit_code(client, 120) == 0, client.syslog_lines()
            # 1 MiB of lines per event: 120 + 7 x 119 + 47 records, then the sentinel event
            count = await wait_count(search_engine, index + "-*", 10, timeout=120.0)
        assert count == 10
        docs = [d for d in await all_docs(search_engine, index + "-*") if d["event"]["sequence"] == 777]
        assert sorted(len(d["auditd"]["record_types"]) for d in docs) == sorted([120] + [119] * 7 + [47])
        assert sorted(d["auditd"]["complete"] for d in docs) == ["max_bytes"] * 8 + ["superseded"]
        assert all(source_bytes(d) <= MAX_DOCUMENT_BYTES for d in docs)
        assert all(d["auditrecv"]["truncated"] for d in docs)  # ~6 MB each when mapped whole
        raw = b"\n".join(base64.b64decode(d["auditrecv"]["raw_base64"]) for d in docs)
        assert sorted(raw.split(b"\n")) == sorted(lines)  # every line kept, byte for byte
    finally:
        search_engine.delete_indices(index + "-*")
