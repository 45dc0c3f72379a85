"""/metrics of a running service, scraped while records flow and parsed with the reference parser.

The record counters must equal what the test senders were acknowledged, per listener (labels), and
every family must carry TYPE and HELP; with the engine, the sink's documents and bulk latency move too.
"""

from __future__ import annotations

import asyncio
import struct
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from auditrecv.receive.audisp_remote import MessageType, pack_frame
from auditrecv.testclient.illumos import IllumosClient
from tests.e2e.harness import running_service, service_config, wait_count
from tests.e2e.test_illumos_e2e import dummy_listener, fixture_records
from tests.infra.engine import SearchEngine
from tests.infra.prometheus import Scrape, scrape

WAIT = 30.0


async def scrape_until(http_port: int, ok: Callable[[Scrape], bool], what: str) -> Scrape:
    """Scrape until ``ok(scrape)`` holds (records are counted as the spool commits them)."""
    deadline = asyncio.get_running_loop().time() + WAIT
    while True:
        result = await asyncio.to_thread(scrape, http_port)
        if result is not None and ok(result):
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"gave up waiting for {what}:\n{result.text if result else 'no scrape'}")
        await asyncio.sleep(0.05)


def status_page(http_port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/", timeout=5) as resp:
        assert resp.headers["Content-Type"].startswith("text/html")
        return str(resp.read().decode())


async def send_audisp(port: int, n: int) -> None:
    """``n`` managed-format MESSAGE frames, each waited for its ACK, as audisp-remote sends them."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for seq in range(1, n + 1):
            line = b'type=CWD msg=audit(1700000000.123:%d): cwd="/metrics"' % seq
            writer.write(pack_frame(MessageType.MESSAGE, seq, line))
            header = await asyncio.wait_for(reader.readexactly(16), WAIT)
            _magic, _, _, typ, length, ack_seq = struct.unpack("<IBBIHI", header)
            await reader.readexactly(length)
            assert (typ, ack_seq) == (MessageType.ACK, seq)
    finally:
        writer.close()
        await writer.wait_closed()


def assert_standard_text(result: Scrape) -> None:
    """Every family has HELP and TYPE, counters end in _total, nothing uses the old per-listener names."""
    for name, family in result.families.items():
        assert f"# HELP {name}" in result.text or f"# HELP {name}_total" in result.text, name
        assert family.type in {"counter", "gauge", "histogram"}, (name, family.type)
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples), name
    assert "auditrecv_listener_" not in result.text and "_p99" not in result.text


async def test_metrics_count_records_per_listener_while_they_flow(tmp_path: Path) -> None:
    table = service_config(tmp_path, listeners=dummy_listener())
    http_port = table["http"]["port"]
    records = fixture_records()[:60]
    async with running_service(table):
        before = await scrape_until(http_port, lambda s: s.has("auditrecv_spool_records"), "the first scrape")
        assert before.value("auditrecv_records_received_total") == 0
        client = IllumosClient("127.0.0.1", table["listeners"]["audit_remote"]["port"], mech="dummy")
        await client.connect()
        try:
            half = len(records) // 2
            await client.send_records(records[:half], wait_when_full=True)
            assert await client.wait_all_acked(WAIT)
            # Connected and halfway: the active connection and the first half show.
            mid = await scrape_until(
                http_port,
                lambda s: s.value("auditrecv_records_acked_total", listener="audit_remote") == half,
                "the first half acked",
            )
            assert mid.value("auditrecv_connections_active", listener="audit_remote", protocol="audit_remote") == 1
            await client.send_records(records[half:], wait_when_full=True)
            assert await client.wait_all_acked(WAIT)
        finally:
            await client.close()
        await send_audisp(table["listeners"]["audisp_remote"]["port"], 25)
        result = await scrape_until(
            http_port,
            lambda s: (
                s.value("auditrecv_records_acked_total", listener="audit_remote") == len(records)
                and s.value("auditrecv_connections_active") == 0
            ),
            "every record acked and the senders gone",
        )
    assert_standard_text(result)
    illumos = {"listener": "audit_remote", "protocol": "audit_remote"}
    linux = {"listener": "audisp_remote", "protocol": "audisp_remote"}
    assert result.value("auditrecv_records_received_total", **illumos) == len(records)
    assert result.value("auditrecv_records_acked_total", **illumos) == len(records)
    assert result.value("auditrecv_records_received_total", **linux) == 25
    assert result.value("auditrecv_records_acked_total", **linux) == 25
    assert result.value("auditrecv_connections_total", outcome="accepted", **illumos) == 1
    assert result.value("auditrecv_connections_total", outcome="accepted", **linux) == 1
    assert result.value("auditrecv_connections_total", outcome="refused") == 0
    assert result.value("auditrecv_gss_failures_total") == 0
    # No engine configured: every record stays spooled (for `export`).
    assert result.value("auditrecv_spool_records") == len(records) + 25
    assert result.value("auditrecv_spool_records_committed_total") == len(records) + 25
    assert result.value("auditrecv_spool_records_refused_total") == 0
    assert result.value("auditrecv_spool_oldest_record_age_seconds") > 0
    assert result.value("auditrecv_spool_bytes") > 0
    assert result.families["auditrecv_spool_commit_seconds"].type == "histogram"
    assert result.value("auditrecv_spool_commit_seconds_count") >= 1
    assert result.value("auditrecv_spool_commit_seconds_bucket", le="+Inf") == result.value(
        "auditrecv_spool_commit_seconds_count"
    )
    assert "# TYPE auditrecv_records_received_total counter" in result.text


@pytest.mark.engine
async def test_metrics_follow_documents_into_the_engine(search_engine: SearchEngine, tmp_path: Path) -> None:
    index = f"e2e-metrics-{uuid.uuid4().hex[:8]}"
    table = service_config(
        tmp_path, search_engine.url, listeners=dummy_listener(), search={"index": index + "-%Y.%m.%d"}
    )
    http_port = table["http"]["port"]
    records = fixture_records()
    async with running_service(table):
        client = IllumosClient("127.0.0.1", table["listeners"]["audit_remote"]["port"], mech="dummy")
        await client.connect()
        await client.send_records(records, wait_when_full=True)
        assert await client.wait_all_acked(WAIT)
        await client.close()
        await wait_count(search_engine, index + "-*", len(records))
        result = await scrape_until(
            http_port,
            lambda s: (
                s.value("auditrecv_spool_records") == 0
                and s.value("auditrecv_documents_total", outcome="created") == len(records)
            ),
            "every record indexed and deleted from the spool",
        )
        page = await asyncio.to_thread(status_page, http_port)
    search_engine.delete_indices(index + "-*")
    assert_standard_text(result)
    engine = result.families["auditrecv_documents"].samples[0].labels["engine"]
    assert engine in {"opensearch", "elasticsearch"}
    assert result.value("auditrecv_documents_total", engine=engine, outcome="duplicate") == 0
    assert result.value("auditrecv_documents_total", outcome="dead_lettered") == 0
    assert result.value("auditrecv_pipeline_records_total", protocol="audit_remote") == len(records)
    assert result.value("auditrecv_pipeline_documents_confirmed_total") == len(records)
    assert result.value("auditrecv_spool_records_deleted_total") == len(records)
    requests = result.value("auditrecv_bulk_requests_total", engine=engine)
    assert requests >= 1
    assert result.value("auditrecv_bulk_request_seconds_count", engine=engine) == requests
    assert result.value("auditrecv_engine_halted", engine=engine) == 0
    # The status page says the same (its browser test runs without an engine: tests/e2e/test_status_page.py).
    assert f"<dd id=confirmed>{len(records)}</dd>" in page
    assert f"<dt>engine</dt><dd>{engine} " in page
