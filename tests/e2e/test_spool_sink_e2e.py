"""Spool + sink end to end against the real engine: exactly-once delivery through outages, crashes,
a full spool, re-imports and exports (issue 8, "Tests that matter").

The engine is made unreachable by a TCP relay in the test (`FlakyProxy`) that refuses connections
while "down": auditrecv sees exactly what a stopped engine looks like (connections reset), while the
real engine keeps the documents already indexed so final counts can be checked exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from auditrecv.spool import Source, Spool, SpoolRecord
from auditrecv.testclient.illumos import IllumosClient, split_trail
from tests.e2e.harness import ServiceProcess, load, running_service, service_config, to_toml, wait_count
from tests.infra.engine import SearchEngine
from tests.infra.prometheus import parse
from tests.paths import BSM_FIXTURES, LINUX_FIXTURES, REPO

TRAILS = [BSM_FIXTURES / "plaso" / "openbsm.bsm", BSM_FIXTURES / "plaso" / "apple.bsm"]
LINUX_LOG = LINUX_FIXTURES / "third_party" / "audit-userspace-v3.0.9" / "auparse" / "test" / "test.log"
WAIT = 60.0  # every wait in this file is bounded by this; none is a pass/fail timing

# -- records -------------------------------------------------------------------------------------------------


def fixture_records() -> list[bytes]:
    records: list[bytes] = []
    for trail in TRAILS:
        records.extend(split_trail(trail.read_bytes()))
    return records


def distinct_records(n: int) -> list[bytes]:
    """`n` different BSM records: the fixture records with their header32 seconds moved forward.

    Distinct bytes mean distinct document ids, so the expected engine count is exactly `n`.
    """
    base = fixture_records()
    out: list[bytes] = []
    for i in range(n):
        rec = bytearray(base[i % len(base)])
        assert rec[0] == 0x14, "header32 expected: seconds live at offset 10"
        (seconds,) = struct.unpack_from(">I", rec, 10)
        struct.pack_into(">I", rec, 10, seconds + i // len(base))
        out.append(bytes(rec))
    assert len(set(out)) == n
    return out


def big_record(i: int, size: int = 3000) -> bytes:
    """A valid ~3 KB BSM record (header32, text, return32, trailer), built here from the token layout
    (bsm.md) so a 1 MiB spool fills after a few hundred records."""
    text = (f"e2e spool-full record {i} ".encode() + b"x" * size)[: size - 1] + b"\0"
    body = b"\x28" + struct.pack(">H", len(text)) + text + b"\x27" + struct.pack(">BI", 0, 0)
    total = 18 + len(body) + 7
    header = b"\x14" + struct.pack(">IBHHII", total, 11, 6152, 0, 1_700_000_000 + i, 0)
    return header + body + b"\x13" + struct.pack(">HI", 0xB105, total)


# -- a relay that can play a stopped engine --------------------------------------------------------------------


class FlakyProxy:
    """TCP relay to the engine. `go_down()` resets every open connection and every new one until
    `come_back()`: to auditrecv that is an engine that stopped (connection refused/reset)."""

    def __init__(self, target_url: str) -> None:
        parts = urlsplit(target_url)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 9200)
        self.up = True
        self.refused = 0  # connections reset while down: proof the outage was seen
        self.cut_replies = 0  # this many engine replies are swallowed and their connection reset
        self.replies_cut = 0
        self.relayed = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FlakyProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    def go_down(self) -> None:
        self.up = False
        for writer in list(self._open):
            writer.transport.abort()

    def come_back(self) -> None:
        self.up = True

    async def close(self) -> None:
        self.go_down()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            self.refused += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.relayed += 1
        self._open |= {writer, up_writer}
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer, replies=True))
        finally:
            self._tasks.discard(task)
            for w in (writer, up_writer):
                self._open.discard(w)
                w.transport.abort()

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, replies: bool = False) -> None:
        try:
            while data := await src.read(65536):
                if replies and self.cut_replies > 0:
                    # The engine has done the work; the client never hears of it (a reply lost).
                    self.cut_replies -= 1
                    self.replies_cut += 1
                    break
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            dst.transport.abort()  # one side gone: the other goes too (no half-open HTTP connections)


# -- helpers ---------------------------------------------------------------------------------------------------


async def wait_for(predicate: Callable[[], bool], timeout: float = WAIT, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(interval)
    return predicate()


async def scrape(http_port: int) -> dict[str, float]:
    """The service's /metrics as {sample name: value} (label values summed): what an operator's
    monitoring would see, read with Prometheus's own parser."""
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{http_port}/metrics") as resp:
        assert resp.status == 200
        result = parse(await resp.text())
    return {s.name: result.value(s.name) for f in result.families.values() for s in f.samples}


async def health(http_port: int) -> tuple[int, str]:
    """/health's status code and spool state, as a load balancer or monitor sees them."""
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{http_port}/health") as resp:
        return resp.status, str((await resp.json())["spool"])


async def wait_metric(http_port: int, name: str, ok: Callable[[float], bool], timeout: float = WAIT) -> float:
    deadline = time.monotonic() + timeout
    value = float("nan")
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError, OSError):
            value = (await scrape(http_port)).get(name, float("nan"))
            if ok(value):
                return value
        await asyncio.sleep(0.1)
    return value


def dummy_listener(**extra: Any) -> dict[str, Any]:
    return {"audit_remote": {"allow_dummy_mech": True, "dummy_mech_networks": ["127.0.0.0/8"], **extra}}


async def spooled_count(path: Path) -> int:
    """Records in a spool file nobody else holds (the service is stopped or dead)."""
    spool = await Spool.open(path)
    try:
        return spool.count()
    finally:
        await spool.close()


def run_cli(*args: str, timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "auditrecv", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


# -- tests -----------------------------------------------------------------------------------------------------


async def test_spooled_records_arrive_exactly_once(search_engine: SearchEngine, tmp_path: Path) -> None:
    """Records already in the spool at start-up (duplicates included) become exactly one document each,
    and the spool ends empty."""
    index = f"e2e-once-{uuid.uuid4().hex[:8]}"
    table = service_config(tmp_path, search_engine.url, search={"index": index + "-%Y.%m.%d"})
    cfg = load(table)
    records = distinct_records(2000)
    source = Source(transport="audit_remote", peer="192.0.2.10", peer_port=40000, mech="dummy", listener="ar")
    now = time.time_ns()
    cfg.spool_path.parent.mkdir(parents=True)
    async with await Spool.open(cfg.spool_path, cfg.spool) as spool:
        for start in range(0, len(records), 500):
            await spool.append([SpoolRecord("bsm", r, source, now) for r in records[start : start + 500]])
        # a retransmission of 300 of them (same host, same bytes): must not create documents
        await spool.append([SpoolRecord("bsm", r, source, now) for r in records[:300]])
        assert spool.count() == 2300
    try:
        async with running_service(table) as svc:
            count = await wait_count(search_engine, index + "-*", len(records))
            assert await wait_for(lambda: svc.spool.count() == 0)
            sink = svc.indexer.metrics
            assert (sink.docs_created, sink.docs_duplicate, sink.docs_dead_lettered) == (2000, 300, 0)
            assert svc.pipeline.stats["deleted"] == 2300
        assert count == len(records)
        assert await spooled_count(cfg.spool_path) == 0
    finally:
        search_engine.delete_indices(index + "-*")


def test_import_twice_adds_nothing(search_engine: SearchEngine, tmp_path: Path) -> None:
    """`auditrecv import` indexes every BSM record and Linux event of the files once; importing them
    again adds nothing."""
    index = f"e2e-import-{uuid.uuid4().hex[:8]}"
    config = tmp_path / "auditrecv.toml"
    config.write_text(to_toml(service_config(tmp_path, search_engine.url, search={"index": index + "-%Y.%m.%d"})))
    expected = {trail.name: len(set(split_trail(trail.read_bytes()))) for trail in TRAILS}
    bsm_total = sum(expected.values())
    linux_lines = [line for line in LINUX_LOG.read_bytes().splitlines() if line.strip()]
    linux_events = len(set(re.findall(rb"msg=audit\((\d+\.\d+:\d+)\)", LINUX_LOG.read_bytes())))
    try:
        for attempt in (1, 2):
            files = [*map(str, TRAILS), str(LINUX_LOG)]
            proc = run_cli("import", "-c", str(config), "--host", "e2e-importer", *files)
            assert proc.returncode == 0, proc.stderr
            for trail in TRAILS:
                assert f"{trail}: spooled {expected[trail.name]} bsm records" in proc.stderr
            assert f"{LINUX_LOG}: spooled {len(linux_lines)} linux records" in proc.stderr
            assert f"indexed {bsm_total + len(linux_lines)} records" in proc.stderr, proc.stderr
            count = search_engine.count(index + "-*")
            assert count == bsm_total + linux_events, f"after import {attempt}"
        assert search_engine.count(index + "-*", {"term": {"event.module": "bsm"}}) == bsm_total
        assert search_engine.count(index + "-*", {"term": {"event.module": "auditd"}}) == linux_events
        assert asyncio.run(spooled_count(tmp_path / "state" / "spool.db")) == 0
    finally:
        search_engine.delete_indices(index + "-*")


def test_import_larger_than_the_spool_makes_room_as_it_goes(search_engine: SearchEngine, tmp_path: Path) -> None:
    """A trail bigger than the whole spool still imports completely: when the spool is full, the import
    indexes what it holds to free room, then goes on."""
    index = f"e2e-bigimport-{uuid.uuid4().hex[:8]}"
    trail = tmp_path / "big.bsm"
    records = [big_record(i) for i in range(1200)]  # about 3.6 MB, a 1 MiB spool
    trail.write_bytes(b"".join(records))
    table = service_config(tmp_path, search_engine.url, search={"index": index + "-%Y.%m.%d"})
    table["spool"] = {"max_bytes": "1MiB"}
    config = tmp_path / "auditrecv.toml"
    config.write_text(to_toml(table))
    try:
        proc = run_cli("import", "-c", str(config), str(trail))
        assert proc.returncode == 0, proc.stderr
        assert f"spooled {len(records)} bsm records" in proc.stderr
        assert search_engine.count(index + "-*") == len(records)
    finally:
        search_engine.delete_indices(index + "-*")


async def test_export_drains_spool_written_without_engine(tmp_path: Path) -> None:
    """No engine configured: `import --no-wait` spools, `export --ndjson` writes one document per BSM
    record / Linux event and empties the spool; a second export finds nothing."""
    config = tmp_path / "auditrecv.toml"
    config.write_text(to_toml(service_config(tmp_path)))
    trail = TRAILS[0]
    bsm_records = len(list(split_trail(trail.read_bytes())))
    linux_keys = set(re.findall(rb"msg=audit\((\d+\.\d+:(\d+))\)", LINUX_LOG.read_bytes()))
    linux_serials = {int(serial) for _, serial in linux_keys}
    spool_path = tmp_path / "state" / "spool.db"

    proc = await asyncio.to_thread(run_cli, "import", "--no-wait", "-c", str(config), str(trail), str(LINUX_LOG))
    assert proc.returncode == 0, proc.stderr
    linux_lines = sum(1 for line in LINUX_LOG.read_bytes().splitlines() if line.strip())
    assert await spooled_count(spool_path) == bsm_records + linux_lines

    out = tmp_path / "out.ndjson"
    proc = await asyncio.to_thread(run_cli, "export", "--ndjson", str(out), "-c", str(config))
    assert proc.returncode == 0, proc.stderr
    assert f"exported {bsm_records + len(linux_keys)} documents" in proc.stderr
    docs = [json.loads(line) for line in out.read_text().splitlines()]
    modules = [d["event"]["module"] for d in docs]
    assert modules.count("bsm") == bsm_records
    assert modules.count("auditd") == len(linux_keys)
    assert {d["auditd"]["sequence"] for d in docs if d["event"]["module"] == "auditd"} == linux_serials
    assert await spooled_count(spool_path) == 0

    size = out.stat().st_size
    proc = await asyncio.to_thread(run_cli, "export", "--ndjson", str(out), "-c", str(config))
    assert proc.returncode == 0, proc.stderr
    assert "exported 0 documents" in proc.stderr
    assert out.stat().st_size == size


async def test_engine_outage_spool_grows_then_drains(search_engine: SearchEngine, tmp_path: Path) -> None:
    """Engine gone: records are still acked and pile up in the spool (visible in /metrics); engine back:
    the spool drains and every record is in the engine exactly once."""
    index = f"e2e-outage-{uuid.uuid4().hex[:8]}"
    proxy = await FlakyProxy(search_engine.url).start()
    table = service_config(tmp_path, proxy.url, listeners=dummy_listener(), search={"index": index + "-%Y.%m.%d"})
    records = distinct_records(1200)
    first, second = records[:400], records[400:]
    http_port = table["http"]["port"]
    client = IllumosClient("127.0.0.1", table["listeners"]["audit_remote"]["port"], mech="dummy")
    try:
        async with running_service(table) as svc:
            await client.connect()
            await client.send_records(first, wait_when_full=True)
            assert await client.wait_all_acked(WAIT)
            assert await wait_count(search_engine, index + "-*", len(first)) == len(first)
            assert await wait_for(lambda: svc.spool.count() == 0)

            proxy.go_down()
            await client.send_records(second, wait_when_full=True)
            assert await client.wait_all_acked(WAIT), "acks must not depend on the engine"
            assert client.stats.dropped == 0
            assert svc.spool.count() == len(second)
            assert await wait_metric(http_port, "auditrecv_spool_records", lambda v: v == len(second)) == len(second)
            assert await wait_for(lambda: proxy.refused > 0 and svc.indexer.metrics.request_errors > 0)
            assert search_engine.count(index + "-*") == len(first)
            assert svc.spool.count() == len(second)  # nothing was deleted without the engine's word

            proxy.come_back()
            count = await wait_count(search_engine, index + "-*", len(records))
            assert count == len(records)
            assert await wait_metric(http_port, "auditrecv_spool_records", lambda v: v == 0) == 0
    finally:
        await client.close()
        await proxy.close()
        search_engine.delete_indices(index + "-*")


async def test_lost_bulk_replies_neither_lose_nor_duplicate(search_engine: SearchEngine, tmp_path: Path) -> None:
    """The engine indexes a bulk request but the reply never arrives: the retry meets 409s, which
    confirm the documents; no record stays spooled and no document is doubled."""
    index = f"e2e-lost-{uuid.uuid4().hex[:8]}"
    proxy = await FlakyProxy(search_engine.url).start()
    table = service_config(tmp_path, proxy.url, listeners=dummy_listener(), search={"index": index + "-%Y.%m.%d"})
    records = distinct_records(900)
    client = IllumosClient("127.0.0.1", table["listeners"]["audit_remote"]["port"], mech="dummy")
    try:
        async with running_service(table) as svc:
            await client.connect()
            await client.send_records(records[:100], wait_when_full=True)
            assert await wait_count(search_engine, index + "-*", 100) == 100  # set-up done, bulk path open
            proxy.cut_replies = 2
            await client.send_records(records[100:], wait_when_full=True)
            assert await client.wait_all_acked(WAIT)
            count = await wait_count(search_engine, index + "-*", len(records))
            assert count == len(records)
            assert await wait_for(lambda: svc.spool.count() == 0)
            assert proxy.replies_cut == 2
            sink = svc.indexer.metrics
            assert sink.docs_duplicate > 0, "the retried documents were already indexed"
            # each document confirmed once: created on first sight, or found there (409) after a lost reply
            assert sink.docs_created + sink.docs_duplicate == len(records) == svc.pipeline.stats["deleted"]
    finally:
        await client.close()
        await proxy.close()
        search_engine.delete_indices(index + "-*")


async def test_graceful_stop_with_engine_down_keeps_records(search_engine: SearchEngine, tmp_path: Path) -> None:
    """SIGTERM while the engine is unreachable exits with 0 (shutdown does not hang on the engine; the
    harness would SIGKILL it after 15 s) and keeps every acked record for the next start."""
    index = f"e2e-term-{uuid.uuid4().hex[:8]}"
    proxy = await FlakyProxy(search_engine.url).start()
    proxy.go_down()
    table = service_config(tmp_path, proxy.url, listeners=dummy_listener(), search={"index": index + "-%Y.%m.%d"})
    records = distinct_records(300)
    svc = ServiceProcess(table, tmp_path)
    client = IllumosClient("127.0.0.1", table["listeners"]["audit_remote"]["port"], mech="dummy")
    try:
        await asyncio.to_thread(svc.start)
        await client.connect()
        await client.send_records(records, wait_when_full=True)
        assert await client.wait_all_acked(WAIT)
        await client.close()
        assert await wait_for(lambda: proxy.refused > 0)
        assert await asyncio.to_thread(svc.stop, 15.0) == 0, svc.log()
        assert "Traceback" not in svc.log()
        assert await spooled_count(tmp_path / "state" / "spool.db") == len(records)

        proxy.come_back()
        await asyncio.to_thread(svc.start)
        assert await wait_count(search_engine, index + "-*", len(records)) == len(records)
    finally:
        await client.close()
        if svc.proc is not None:
            await asyncio.to_thread(svc.stop)
        await proxy.close()
        search_engine.delete_indices(index + "-*")


async def test_kill9_after_ack_before_indexing_loses_nothing(search_engine: SearchEngine, tmp_path: Path) -> None:
    """Records acked (committed to the spool) but not yet indexed survive SIGKILL; after a restart with
    the engine reachable the count is exact."""
    index = f"e2e-kill9-{uuid.uuid4().hex[:8]}"
    proxy = await FlakyProxy(search_engine.url).start()
    proxy.go_down()  # nothing can be indexed before the kill
    table = service_config(tmp_path, proxy.url, listeners=dummy_listener(), search={"index": index + "-%Y.%m.%d"})
    records = distinct_records(600)
    svc = ServiceProcess(table, tmp_path)
    client = IllumosClient("127.0.0.1", table["listeners"]["audit_remote"]["port"], mech="dummy")
    try:
        await asyncio.to_thread(svc.start)
        await client.connect()
        await client.send_records(records, wait_when_full=True)
        assert await client.wait_all_acked(WAIT)
        await client.close()
        assert await wait_for(lambda: proxy.refused > 0)  # the service did try the engine
        await asyncio.to_thread(svc.kill9)
        assert search_engine.count(index + "-*") == 0
        assert await spooled_count(tmp_path / "state" / "spool.db") == len(records)  # acked = on disk

        proxy.come_back()
        await asyncio.to_thread(svc.start)
        count = await wait_count(search_engine, index + "-*", len(records))
        assert count == len(records), svc.log()
        assert await wait_metric(table["http"]["port"], "auditrecv_spool_records", lambda v: v == 0) == 0
        assert await asyncio.to_thread(svc.stop) == 0
        assert await spooled_count(tmp_path / "state" / "spool.db") == 0
    finally:
        await client.close()
        if svc.proc is not None:
            await asyncio.to_thread(svc.stop)
        await proxy.close()
        search_engine.delete_indices(index + "-*")


async def test_full_spool_withholds_acks_until_engine_returns(search_engine: SearchEngine, tmp_path: Path) -> None:
    """A full spool (engine unreachable, spool.max_bytes reached) stops the acks: the illumos window
    fills and nothing is dropped or lost; with the engine back the spool drains, acks resume, and
    every record is indexed once."""
    index = f"e2e-full-{uuid.uuid4().hex[:8]}"
    proxy = await FlakyProxy(search_engine.url).start()
    proxy.go_down()
    table = service_config(
        tmp_path,
        proxy.url,
        listeners=dummy_listener(),
        search={"index": index + "-%Y.%m.%d"},
        spool={"max_bytes": 1024 * 1024},
    )
    records = [big_record(i) for i in range(800)]  # ~2.4 MB: more than twice the spool
    port = table["listeners"]["audit_remote"]["port"]
    client = IllumosClient("127.0.0.1", port, mech="dummy", qsize=100)
    sender: asyncio.Task[int] | None = None
    try:
        async with running_service(table) as svc:
            await client.connect()
            sender = asyncio.create_task(client.send_records(records, wait_when_full=True))
            assert await wait_for(lambda: svc.spool.state == "full"), svc.spool.stats()
            assert await wait_for(lambda: len(client.transq) == client.qsize), "the client's window should fill"
            # settled: every committed record's ack has reached the client, and the window is full
            assert await wait_for(lambda: client.stats.acked == svc.spool.count() and len(client.transq) == 100)
            acked = client.stats.acked
            stored = svc.spool.count()
            await asyncio.sleep(1.5)  # longer than the receiver's spool retry interval
            assert client.stats.acked == acked, "no ack may be sent while the spool is full"
            assert svc.spool.count() == stored
            assert not sender.done()
            assert svc.spool.metrics.refused > 0 and svc.spool.metrics.full_events >= 1
            assert svc.servers["audit_remote"].stats.spool_full_waits > 0
            assert await health(table["http"]["port"]) == (503, "full")
            assert acked == stored < len(records) - client.qsize

            proxy.come_back()
            assert await asyncio.wait_for(sender, WAIT) == len(records)
            assert await client.wait_all_acked(WAIT)
            assert client.stats.dropped == 0
            count = await wait_count(search_engine, index + "-*", len(records))
            assert count == len(records)
            assert await wait_for(lambda: svc.spool.count() == 0)
            assert await health(table["http"]["port"]) == (200, "ok")
    finally:
        if sender is not None and not sender.done():
            sender.cancel()
        await client.close()
        await proxy.close()
        search_engine.delete_indices(index + "-*")


async def test_data_stream_mode(search_engine: SearchEngine, tmp_path: Path) -> None:
    """`search.mode = "data_stream"`: every record lands once in the data stream's backing index."""
    if not search_engine.supports_data_streams:
        pytest.skip(f"{search_engine.flavor} {search_engine.version} here has no data streams (no x-pack)")
    stream = f"logs-e2e{uuid.uuid4().hex[:8]}-default"
    table = service_config(
        tmp_path,
        search_engine.url,
        listeners=dummy_listener(),
        search={"mode": "data_stream", "data_stream": stream},
    )
    records = distinct_records(500)
    client = IllumosClient("127.0.0.1", table["listeners"]["audit_remote"]["port"], mech="dummy")
    try:
        async with running_service(table) as svc:
            await client.connect()
            await client.send_records(records, wait_when_full=True)
            await client.send_records(records[:50], wait_when_full=True)  # retransmitted copies
            assert await client.wait_all_acked(WAIT)
            count = await wait_count(search_engine, stream, len(records))
            assert count == len(records)
            assert await wait_for(lambda: svc.spool.count() == 0)
            assert svc.indexer.metrics.docs_dead_lettered == 0
        _, res = search_engine.request("GET", f"/_data_stream/{stream}")
        (info,) = res["data_streams"]
        assert info["name"] == stream
        hits = search_engine.hits(stream, size=len(records) + 10)
        assert {h["_index"] for h in hits} == {i["index_name"] for i in info["indices"]}
        assert all(h["_index"].startswith(".ds-") for h in hits)
    finally:
        await client.close()
        search_engine.delete_indices(stream)
