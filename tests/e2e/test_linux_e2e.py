"""Linux end to end: the REAL /sbin/audisp-remote → auditrecv (real spool) → the real search engine.

The expected events are computed independently of auditrecv's decoder: from libauparse's own reading of
each fixture log (``reference-outputs/*.auparse.jsonl``: one line per event with its node, serial and
records, EOE excluded just as audisp-remote drops EOE on the wire), or, for the renumbered stream used
by the restart tests, from the distinct ``(node, msg=audit(...))`` keys of the lines fed.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import ServiceProcess, running_service, service_config, wait_count
from tests.infra.audisp import AudispRemote
from tests.infra.engine import SearchEngine
from tests.infra.prometheus import scrape
from tests.paths import LINUX_FIXTURES

pytestmark = [pytest.mark.engine, pytest.mark.audisp]

Factory = Callable[..., AudispRemote]
EventKey = tuple[str | None, int]  # (node, serial)

REFERENCE = LINUX_FIXTURES / "reference-outputs"
THIRD_PARTY = LINUX_FIXTURES / "third_party"
# (log fed to audisp-remote, libauparse's events for it). test2.log repeats test.log's events: left out.
FIXTURE_LOGS = [
    (
        LINUX_FIXTURES / "audisp-remote" / "captures" / "input-events.log",
        LINUX_FIXTURES / "audisp-remote" / "captures" / "input-events.auparse.jsonl",
    ),
    (THIRD_PARTY / "go-libaudit/testdata/normal.log", REFERENCE / "go-libaudit/testdata/normal.auparse.jsonl"),
    *[
        (
            THIRD_PARTY / f"audit-userspace-v3.0.9/auparse/test/{name}.log",
            REFERENCE / f"audit-userspace-v3.0.9/{name}.auparse.jsonl",
        )
        for name in ("test", "test3", "test4")
    ],
]

# An event is closed once a later serial of its (peer, node) stream arrives plus the grace window; a last
# single-record event per stream closes every stream's final event without waiting for max_age.
SENTINEL_SERIAL = 90_000_000
STREAM_NODES: list[str | None] = [None, "web01", "auditdtest.a1959.org"]


def sentinel_lines() -> list[bytes]:
    out = []
    for i, node in enumerate(STREAM_NODES):
        prefix = f"node={node} " if node else ""
        out.append(
            f"{prefix}type=USER_END msg=audit(1800000000.000:{SENTINEL_SERIAL + i}): pid=1 uid=0 auid=0 ses=1 "
            'msg=\'op=PAM:session_close acct="root" exe="/usr/sbin/sshd" hostname=? addr=? terminal=ssh '
            "res=success'".encode()
        )
    return out


def sentinel_events() -> dict[EventKey, list[str]]:
    return {(node, SENTINEL_SERIAL + i): ["USER_END"] for i, node in enumerate(STREAM_NODES)}


def fixture_lines(*, sentinels: bool = True) -> list[bytes]:
    lines: list[bytes] = []
    for log, _ in FIXTURE_LOGS:
        lines.extend(line for line in log.read_bytes().splitlines() if line)
    return lines + sentinel_lines() if sentinels else lines


def reference_events() -> dict[EventKey, list[str]]:
    """libauparse's events: (node, serial) -> record types in order."""
    events: dict[EventKey, list[str]] = {}
    for _, ref in FIXTURE_LOGS:
        for text in ref.read_text().splitlines():
            event = json.loads(text)
            key = (event["node"], int(event["serial"]))
            assert key not in events, f"fixture overlap: {key}"
            events[key] = [r["type"] for r in event["records"]]
    events.update(sentinel_events())
    return events


_LINE_KEY = re.compile(rb"^(?:node=(?P<node>\S+) )?type=(?P<type>\S+) msg=audit\((?P<time>[\d.]+):(?P<serial>\d+)\)")


def renumbered_stream(copies: int) -> tuple[list[bytes], Counter[EventKey]]:
    """`copies` copies of the fixtures with every event given the next serial of its node's stream.

    Real kernels number events in order, so each stream only moves forward; an event whose records
    straddle a receiver restart is then always rejoined (see the restart tests). Returns the lines and
    the expected events, counted from the distinct (node, serial) keys written here.
    """
    base = fixture_lines(sentinels=False)
    next_serial: dict[str | None, int] = {}
    lines: list[bytes] = []
    for _ in range(copies):
        assigned: dict[tuple[bytes | None, bytes, bytes], int] = {}
        for line in base:
            m = _LINE_KEY.match(line)
            assert m is not None, line
            if m["type"] == b"EOE":
                continue  # audisp-remote drops these anyway (linux.md §3.8)
            node = m["node"].decode() if m["node"] else None
            key = (m["node"], m["time"], m["serial"])
            if key not in assigned:
                assigned[key] = next_serial.get(node, 1000) + 1
                next_serial[node] = assigned[key]
            lines.append(line[: m.start("serial")] + str(assigned[key]).encode() + line[m.end("serial") :])
    lines += sentinel_lines()
    keys = {(m["node"].decode() if m["node"] else None, int(m["serial"])) for m in map(_LINE_KEY.match, lines) if m}
    per_copy = len(reference_events()) - len(STREAM_NODES)  # libauparse agrees on the events per copy
    assert len(keys) == copies * per_copy + len(STREAM_NODES)
    return lines, Counter(keys)


# -- service and engine helpers ---------------------------------------------------------------------------


def linux_table(tmp: Path, engine: SearchEngine, index: str, **sections: dict[str, Any]) -> dict[str, Any]:
    """Only the Linux listeners; events close 2 s (the default grace) after a later serial or after their
    first record when older than the newest serial (most fixture logs start below the previous one): on
    a loaded machine a shorter grace cuts such an event in two. Open ones live 15 s; across a restart
    both count from when the service is back (the pipeline's arrival floor), not from before the kill."""
    table = service_config(
        tmp,
        engine.url,
        search={"index": index + "-%Y.%m.%d"},
        decode={"linux": {"grace_seconds": 2.0, "max_age_seconds": 15.0}},
        **sections,
    )
    table["listeners"]["audit_remote"]["enabled"] = False
    return table


async def all_docs(engine: SearchEngine, pattern: str) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = await asyncio.to_thread(engine.search, pattern, {"match_all": {}})
    return docs


def event_key(doc: dict[str, Any]) -> EventKey:
    return (doc.get("auditd", {}).get("node"), int(doc["event"]["sequence"]))


def metric(http_port: int, name: str, **labels: str) -> float:
    """One value from the service's /metrics (0 while it is not there yet)."""
    result = scrape(http_port, timeout=2)
    return result.value(name, **labels) if result is not None else 0.0


async def wait_metric(http_port: int, name: str, at_least: float, timeout: float = 30.0, **labels: str) -> float:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    value = 0.0
    while loop.time() < deadline:
        value = await asyncio.to_thread(metric, http_port, name, **labels)
        if value >= at_least:
            return value
        await asyncio.sleep(0.01)
    raise AssertionError(f"{name}{labels or ''} stayed at {value} < {at_least}")


async def exit_code(client: AudispRemote, timeout: float = 60.0) -> int:
    return int(await asyncio.to_thread(client.wait, timeout))


class EngineProxy:
    """An HTTP pass-through to the engine that can swallow `_bulk` answers: the engine has indexed the
    documents but auditrecv never hears so, keeps their records in the spool, and must index them again
    after a restart: only stable document ids keep that from becoming duplicates."""

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.swallow_bulk = False
        self.swallowed = 0
        self._runner: Any = None
        self._session: Any = None
        self.url = ""

    async def start(self) -> EngineProxy:
        from aiohttp import ClientSession, web

        self._session = ClientSession(auto_decompress=False)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def _forward(self, request: Any) -> Any:
        from aiohttp import web

        body = await request.read()  # aiohttp has already gunzipped it: Content-Encoding is not passed on
        passed = ("content-type", "accept", "authorization")
        headers = {k: v for k, v in request.headers.items() if k.lower() in passed}
        async with self._session.request(
            request.method, self.target + request.rel_url.path_qs, data=body, headers=headers
        ) as resp:
            payload = await resp.read()
            if self.swallow_bulk and request.path.endswith("/_bulk"):
                self.swallowed += 1
                request.transport.close()  # indexed, but the answer is lost on the way
                raise ConnectionResetError("answer swallowed")
            keep = ("content-type", "content-encoding")
            reply = {k: v for k, v in resp.headers.items() if k.lower() in keep}
            return web.Response(status=resp.status, body=payload, headers=reply)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()


def assert_host_identity(docs: Iterable[dict[str, Any]], name_without_node: str) -> None:
    """host.name is the node= name when the record has one, else `name_without_node`; the peer is in
    host.ip either way."""
    for doc in docs:
        node = doc.get("auditd", {}).get("node")
        assert doc["host"]["name"] == (node or name_without_node), doc["host"]
        assert "127.0.0.1" in doc["host"]["ip"], doc["host"]
        assert doc["auditrecv"]["source"]["peer"] == "127.0.0.1"


# -- tests ------------------------------------------------------------------------------------------------


async def test_tcp_every_line_becomes_exactly_the_reference_events(
    search_engine: SearchEngine, audisp_remote_factory: Factory, tmp_path: Path
) -> None:
    index = f"e2e-linux-tcp-{uuid.uuid4().hex[:8]}"
    expected = reference_events()
    table = linux_table(tmp_path, search_engine, index)
    try:
        async with running_service(table):
            client = audisp_remote_factory("127.0.0.1", table["listeners"]["audisp_remote"]["port"]).start()
            client.send_lines(fixture_lines())
            client.close_stdin()
            assert await exit_code(client) == 0, client.syslog_lines()
            count = await wait_count(search_engine, index + "-*", len(expected))
        docs = await all_docs(search_engine, index + "-*")
        assert Counter(event_key(d) for d in docs) == Counter(expected.keys())  # shows a duplicate or a loss
        assert count == len(expected)
        assert {event_key(d): d["auditd"]["record_types"] for d in docs} == expected
        assert_host_identity(docs, "127.0.0.1")
        assert {d["auditrecv"]["source"]["transport"] for d in docs} == {"audisp_remote"}
    finally:
        search_engine.delete_indices(index + "-*")


async def test_krb5_every_line_becomes_exactly_the_reference_events(
    search_engine: SearchEngine, kdc: Any, audisp_remote_factory: Factory, tmp_path: Path
) -> None:
    from tests.infra.kdc import LINUX_SERVICE, linux_client_principal

    index = f"e2e-linux-krb5-{uuid.uuid4().hex[:8]}"
    expected = reference_events()
    table = linux_table(
        tmp_path,
        search_engine,
        index,
        gss={"keytab": str(kdc.service_keytab(LINUX_SERVICE)), "krb5_config": str(kdc.krb5_conf)},
        listeners={"audisp_remote_krb5": {"enabled": True}},
    )
    svc = ServiceProcess(table, tmp_path)  # its own process: Kerberos settings stay out of this one
    try:
        svc.start()
        client = audisp_remote_factory(
            "127.0.0.1", table["listeners"]["audisp_remote_krb5"]["port"], transport="krb5"
        ).start()
        client.send_lines(fixture_lines())
        client.close_stdin()
        assert await exit_code(client) == 0, (client.syslog_lines(), svc.log())
        count = await wait_count(search_engine, index + "-*", len(expected))
        docs = await all_docs(search_engine, index + "-*")
        assert Counter(event_key(d) for d in docs) == Counter(expected.keys()), svc.log()
        assert count == len(expected)
        assert {event_key(d): d["auditd"]["record_types"] for d in docs} == expected
        # without node=, the host is the one the KDC vouched for: auditd/<hostname>
        assert_host_identity(docs, socket.gethostname())
        principal = kdc.qualify(linux_client_principal())
        assert {(d["auditrecv"]["source"]["principal"], d["auditrecv"]["source"]["authenticated"]) for d in docs} == {
            (principal, True)
        }
    finally:
        svc.stop()
        search_engine.delete_indices(index + "-*")


async def test_sigkill_mid_stream_then_retransmission_exact_count(
    search_engine: SearchEngine, audisp_remote_factory: Factory, tmp_path: Path
) -> None:
    index = f"e2e-linux-kill-{uuid.uuid4().hex[:8]}"
    lines, expected = renumbered_stream(copies=8)
    table = linux_table(tmp_path, search_engine, index)
    http_port = table["http"]["port"]
    svc = ServiceProcess(table, tmp_path)
    try:
        svc.start()
        # generous retry budget: the record in flight is resent until the restarted receiver acks it
        client = audisp_remote_factory(
            "127.0.0.1",
            table["listeners"]["audisp_remote"]["port"],
            max_tries_per_record=60,
            max_time_per_record=60,
            network_retry_time=1,
        ).start()
        client.send_lines(lines)
        seen = await wait_metric(
            http_port, "auditrecv_records_received_total", len(lines) // 3, listener="audisp_remote"
        )
        svc.kill9()  # mid-stream: records committed, acked or not, one in flight, events open
        assert seen < len(lines), "the stream was over before the kill: make it longer"
        svc.start()
        client.close_stdin()
        assert await exit_code(client) == 0, (client.syslog_lines(), svc.log())
        count = await wait_count(search_engine, index + "-*", len(expected))
        assert count == len(expected), svc.log()
        docs = await all_docs(search_engine, index + "-*")
        assert Counter(event_key(d) for d in docs) == expected
        # the client noticed the receiver dying under it ("read from ... failed", "... timed out", ...)
        assert [m for m in client.syslog_lines() if re.search("failed|timed out|disconnected", m)]
    finally:
        svc.stop()
        search_engine.delete_indices(index + "-*")


async def test_sigterm_sends_ending_and_client_reconnects_on_next_line(
    search_engine: SearchEngine, audisp_remote_factory: Factory, tmp_path: Path
) -> None:
    index = f"e2e-linux-term-{uuid.uuid4().hex[:8]}"
    lines, expected = renumbered_stream(copies=1)
    first, rest = lines[: len(lines) // 2], lines[len(lines) // 2 :]
    table = linux_table(tmp_path, search_engine, index)
    http_port = table["http"]["port"]
    svc = ServiceProcess(table, tmp_path)
    try:
        svc.start()
        client = audisp_remote_factory("127.0.0.1", table["listeners"]["audisp_remote"]["port"]).start()
        client.send_lines(first)
        await wait_metric(
            http_port, "auditrecv_pipeline_records_total", len(first), protocol="audisp_remote"
        )  # all acked, client idle
        svc.signal(signal.SIGTERM)
        await asyncio.to_thread(client.wait_for_syslog, "remote server is going down", 20)
        assert svc.stop() == 0, svc.log()
        svc.start()
        client.send_lines(rest)  # the next line makes audisp-remote reconnect
        client.close_stdin()
        assert await exit_code(client) == 0, (client.syslog_lines(), svc.log())
        count = await wait_count(search_engine, index + "-*", len(expected))
        assert count == len(expected), svc.log()
        docs = await all_docs(search_engine, index + "-*")
        assert Counter(event_key(d) for d in docs) == expected
        syslog = client.syslog_lines()
        assert len([m for m in syslog if m.startswith("Connected to")]) == 2, syslog
        assert not [m for m in syslog if "timed out" in m or "mismatch" in m or "network failure" in m], syslog
    finally:
        svc.stop()
        search_engine.delete_indices(index + "-*")


async def test_heartbeats_acked_and_oversize_line_is_one_record(
    search_engine: SearchEngine, audisp_remote_factory: Factory, tmp_path: Path
) -> None:
    index = f"e2e-linux-big-{uuid.uuid4().hex[:8]}"
    words = " ".join(f"word{i:04d}" for i in range(1100))
    long_line = f"type=USER_CMD msg=audit(1700000005.000:4247): pid=1 uid=0 msg='cmd=\"{words}\"'".encode()
    assert 8969 < len(long_line) < 2 * 8969  # audisp-remote sends it as 8969 bytes + a fragment
    first = fixture_lines()[0]
    table = linux_table(tmp_path, search_engine, index, listeners={"audisp_remote": {"idle_timeout": 10.0}})
    try:
        async with running_service(table) as svc:
            server = svc.servers["audisp_remote"]
            client = audisp_remote_factory(
                "127.0.0.1", table["listeners"]["audisp_remote"]["port"], heartbeat_timeout=1
            ).start()
            client.send_lines([first])
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 20
            while server.stats.heartbeats < 2 and loop.time() < deadline:
                await asyncio.sleep(0.05)
            assert server.stats.heartbeats >= 2
            client.send_lines([long_line, sentinel_lines()[0]])
            client.close_stdin()
            assert await exit_code(client) == 0, client.syslog_lines()
            assert server.stats.records == 4  # first, head, fragment, sentinel: heartbeats not counted
            count = await wait_count(search_engine, index + "-*", 3)
        assert count == 3
        assert not [m for m in client.syslog_lines() if "timed out" in m]
        docs = {event_key(d): d for d in await all_docs(search_engine, index + "-*")}
        assert set(docs) == {(None, 4242), (None, 4247), (None, SENTINEL_SERIAL)}
        big = docs[(None, 4247)]
        assert big["auditd"]["record_types"] == ["USER_CMD"]
        assert big["auditd"]["data"]["cmd"] == words  # the fragment was joined back, not cut or doubled
    finally:
        search_engine.delete_indices(index + "-*")


async def test_sigkill_after_engine_indexed_unconfirmed_reindexes_without_duplicates(
    search_engine: SearchEngine, audisp_remote_factory: Factory, tmp_path: Path
) -> None:
    index = f"e2e-linux-unconf-{uuid.uuid4().hex[:8]}"
    lines, expected = renumbered_stream(copies=1)
    proxy = await EngineProxy(search_engine.url).start()
    proxy.swallow_bulk = True
    table = linux_table(tmp_path, search_engine, index)
    table["search"]["urls"] = [proxy.url]
    svc = ServiceProcess(table, tmp_path)
    try:
        svc.start()
        client = audisp_remote_factory("127.0.0.1", table["listeners"]["audisp_remote"]["port"]).start()
        client.send_lines(lines)
        client.close_stdin()
        assert await exit_code(client) == 0, client.syslog_lines()
        # the engine holds documents, yet no answer reached auditrecv: it retries them, deletes nothing
        # (the swallowed retries also keep every other batch waiting)
        assert await wait_count(search_engine, index + "-*", 1) >= 1, svc.log()
        assert proxy.swallowed >= 1
        svc.kill9()
        proxy.swallow_bulk = False
        svc.start()  # reads the whole spool again and indexes every event a second time
        # nothing was confirmed before the kill, so every spooled line is confirmed (and deleted) now
        await wait_metric(table["http"]["port"], "auditrecv_spool_records_deleted_total", len(lines), timeout=60)
        count = await wait_count(search_engine, index + "-*", len(expected))
        assert count == len(expected), svc.log()
        docs = await all_docs(search_engine, index + "-*")
        assert Counter(event_key(d) for d in docs) == expected
    finally:
        svc.stop()
        await proxy.close()
        search_engine.delete_indices(index + "-*")
