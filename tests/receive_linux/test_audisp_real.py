"""The real /sbin/audisp-remote (audit 3.0.9) against auditrecv's receiver."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from auditrecv.config import AudispRemoteListener, Gss
from auditrecv.receive.listeners import start_audisp_remote_server
from auditrecv.receive.server import ReceiveServer
from auditrecv.spool import Spool, SpoolRecord
from tests.infra.audisp import AudispRemote
from tests.receive_linux.fakes import CAPTURES
from tests.spool_fake import FakeSpool

pytestmark = pytest.mark.audisp

INPUT = (CAPTURES / "input-events.log").read_bytes().splitlines()
# audisp-remote drops EOE records (linux.md §3.8); everything else must arrive, in order.
EXPECTED = [line for line in INPUT if b"type=EOE" not in line.split(b" ", 2)[:2]]

Factory = Callable[..., AudispRemote]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _start(spool: Any, port: int = 0, gss: Gss | None = None, **settings: Any) -> ReceiveServer:
    cfg = AudispRemoteListener(host="127.0.0.1", port=port, **settings)
    return await start_audisp_remote_server(cfg, gss or Gss(), spool, name="audisp")


async def _wait_until(predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def _exit_code(client: AudispRemote, timeout: float = 30.0) -> int:
    return await asyncio.to_thread(client.wait, timeout)


async def _spooled(spool: Spool) -> list[SpoolRecord]:
    return [rec for _, rec in await spool.read(0, 100_000)]


@pytest.fixture
async def real_spool(tmp_path: Path) -> AsyncIterator[Spool]:
    spool = await Spool.open(tmp_path / "spool.db", max_bytes=64 * 1024 * 1024, commit_delay=0.0)
    yield spool
    await spool.close()


def _collapse(lines: list[bytes]) -> list[bytes]:
    """Adjacent duplicates folded: a retransmitted record may be stored twice, never reordered."""
    out: list[bytes] = []
    for line in lines:
        if not out or out[-1] != line:
            out.append(line)
    return out


async def test_tcp_delivers_every_line_in_order_once(real_spool: Spool, audisp_remote_factory: Factory) -> None:
    server = await _start(real_spool)
    client = audisp_remote_factory("127.0.0.1", server.port).start()
    try:
        client.send_lines(INPUT)
        client.close_stdin()
        assert await _exit_code(client) == 0, client.syslog_lines()
        records = await _spooled(real_spool)
        assert [r.payload for r in records] == EXPECTED
        assert {(r.kind, r.source.transport, r.source.peer, r.source.mech) for r in records} == {
            ("linux", "audisp_remote", "127.0.0.1", "")
        }
        assert server.stats.records == len(EXPECTED) and server.stats.failures == 0
        assert not [m for m in client.syslog_lines() if "timed out" in m or "mismatch" in m]
    finally:
        await server.close()


async def test_krb5_delivers_every_line(kdc: Any, real_spool: Spool, audisp_remote_factory: Factory) -> None:
    from tests.infra.kdc import LINUX_SERVICE, linux_client_principal

    gss = Gss(keytab=str(kdc.service_keytab(LINUX_SERVICE)))
    server = await _start(real_spool, gss=gss, transport="krb5")
    client = audisp_remote_factory("127.0.0.1", server.port, transport="krb5").start()
    try:
        client.send_lines(INPUT)
        client.close_stdin()
        assert await _exit_code(client) == 0, (client.syslog_lines(), client.output())
        records = await _spooled(real_spool)
        assert [r.payload for r in records] == EXPECTED
        principal = kdc.qualify(linux_client_principal())
        assert {(r.source.mech, r.source.principal, r.source.authenticated) for r in records} == {
            ("krb5", principal, True)
        }
    finally:
        await server.close()


async def test_krb5_unauthorized_principal_is_refused(
    kdc: Any, audisp_remote_factory: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.infra.kdc import LINUX_SERVICE

    spool = FakeSpool()
    gss = Gss(keytab=str(kdc.service_keytab(LINUX_SERVICE)))
    server = await _start(spool, gss=gss, transport="krb5", allowed_principals=["host/*@AUDIT.TEST"])
    client = audisp_remote_factory(
        "127.0.0.1", server.port, transport="krb5", max_tries_per_record=1, max_time_per_record=2
    ).start()
    try:
        client.send_lines(INPUT[:1])
        await _wait_until(lambda: server.stats.failures >= 1, "the refusal")
        assert "unauthorized client principal" in caplog.text
        assert spool.records == []
    finally:
        client.kill()
        await server.close()


async def test_receiver_killed_mid_stream_nothing_lost(audisp_remote_factory: Factory) -> None:
    """The first receiver dies (no ack, no ENDING) while a record is in flight; the client
    retransmits to the restarted receiver and every line arrives."""
    port = _free_port()
    stuck = asyncio.Event()

    class DyingSpool(FakeSpool):
        async def append(self, records: list[SpoolRecord]) -> list[int]:
            if records[0].payload == EXPECTED[3]:
                stuck.set()
                await asyncio.Event().wait()  # the process "dies" before this commit
            return await super().append(records)

    first, second = DyingSpool(), FakeSpool()
    server = await _start(first, port)
    client = audisp_remote_factory(
        "127.0.0.1", port, max_tries_per_record=10, max_time_per_record=10, network_retry_time=1
    ).start()
    try:
        client.send_lines(INPUT)
        await asyncio.wait_for(stuck.wait(), 20)
        await server.abort()
        server = await _start(second, port)
        client.close_stdin()
        assert await _exit_code(client) == 0, client.syslog_lines()
        assert first.lines() == EXPECTED[:3]
        assert second.lines() == EXPECTED[3:]
    finally:
        await server.close()


async def test_graceful_shutdown_ending_and_reconnect(audisp_remote_factory: Factory) -> None:
    port = _free_port()
    first, second = FakeSpool(), FakeSpool()
    server = await _start(first, port)
    client = audisp_remote_factory("127.0.0.1", port).start()
    try:
        client.send_lines(INPUT[:3])
        await _wait_until(lambda: len(first.records) == 3, "the first three lines")
        await server.close()
        client.wait_for_syslog("remote server is going down")
        server = await _start(second, port)
        client.send_lines(INPUT[3:])  # the next line makes audisp-remote reconnect
        client.close_stdin()
        assert await _exit_code(client) == 0, client.syslog_lines()
        assert first.lines() == EXPECTED[:3]
        assert second.lines() == EXPECTED[3:]
        assert len([m for m in client.syslog_lines() if m.startswith("Connected to")]) == 2
    finally:
        await server.close()


async def test_heartbeats_acked_and_oversize_line_in_two_fragments(audisp_remote_factory: Factory) -> None:
    spool = FakeSpool()
    server = await _start(spool, idle_timeout=5.0)
    client = audisp_remote_factory("127.0.0.1", server.port, heartbeat_timeout=1).start()
    words = " ".join(f"word{i:04d}" for i in range(1100))
    long_line = f"type=USER_CMD msg=audit(1700000005.000:4247): pid=1 uid=0 msg='cmd=\"{words}\"'".encode()
    assert 8969 < len(long_line) < 2 * 8969
    try:
        client.send_lines(INPUT[:1])
        await _wait_until(lambda: server.stats.heartbeats >= 2, "two heartbeats")
        client.send_lines([long_line])
        client.close_stdin()
        assert await _exit_code(client) == 0, client.syslog_lines()
        assert spool.lines()[0] == EXPECTED[0]
        head, tail = spool.lines()[1:]
        assert len(head) == 8969 and head + tail == long_line
        assert not tail.startswith((b"type=", b"node="))
        assert server.stats.failures == 0
        assert not [m for m in client.syslog_lines() if "timed out" in m]
    finally:
        await server.close()


async def _just_after_a_whole_second() -> None:
    """Wait for the wall clock's next whole second (a clock phase, not an event to synchronise on).

    audisp-remote waits `max_time_per_record` seconds for an ack, then retries only while
    `time(now) - time(then) <= max_time_per_record` in whole seconds: a record first sent in the last
    moments of a second (as long as the reconnect and the poll's overshoot take: milliseconds, more on
    a loaded machine) finds that difference one too large after the timeout and is given up ("max
    retry time exhausted"). Sent just after a second starts, it has most of a second of slack.
    """
    await asyncio.sleep(1.0 - time.time() % 1.0 + 0.01)


async def test_spool_full_no_ack_then_retransmission_stored(audisp_remote_factory: Factory) -> None:
    spool = FakeSpool(capacity=2)
    server = await _start(spool)
    client = audisp_remote_factory("127.0.0.1", server.port, max_time_per_record=2, max_tries_per_record=10).start()
    try:
        await _just_after_a_whole_second()
        client.send_lines(INPUT[:4])
        await _wait_until(lambda: server.stats.spool_full_waits >= 1, "the spool-full hold")
        # no ack went out: the client times out and retransmits on a new connection
        client.wait_for_syslog("timed out", timeout=20)
        assert spool.lines() == EXPECTED[:2]
        spool.set_capacity(None)
        client.close_stdin()
        assert await _exit_code(client) == 0, client.syslog_lines()
        assert _collapse(spool.lines()) == EXPECTED[:4]
        assert spool.lines().count(EXPECTED[2]) <= 2  # held copy + at most one retransmission
        assert server.stats.accepted >= 2
    finally:
        await server.close()


async def test_disklow_counts_as_delivered_by_the_real_client(audisp_remote_factory: Factory) -> None:
    """Spool above its low-water mark: each stored record is answered DISKLOW; audisp-remote logs it
    and treats the record as delivered (nothing resent, queue empty at exit)."""
    spool = FakeSpool(low_at=0)
    server = await _start(spool)
    client = audisp_remote_factory("127.0.0.1", server.port).start()
    try:
        client.send_lines(INPUT)
        client.close_stdin()
        assert await _exit_code(client) == 0, client.syslog_lines()
        assert spool.lines() == EXPECTED
        assert [m for m in client.syslog_lines() if "low on disk space" in m]
        assert server.stats.accepted == 1
    finally:
        await server.close()


async def test_ascii_format_real_client(audisp_remote_factory: Factory) -> None:
    spool = FakeSpool()
    server = await _start(spool, format="ascii")
    client = audisp_remote_factory("127.0.0.1", server.port, format="ascii").start()
    try:
        client.send_lines(INPUT)
        client.close_stdin()
        assert await _exit_code(client) == 0, client.syslog_lines()
        await _wait_until(lambda: len(spool.records) >= len(EXPECTED), "every ascii line")
        assert spool.lines() == EXPECTED
    finally:
        await server.close()
