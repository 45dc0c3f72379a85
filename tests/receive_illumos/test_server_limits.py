"""One sender must not hurt the others (issue 14): the in-flight window, unread acks, silent
sockets against the connection caps, and the exact text of refusals."""

from __future__ import annotations

import asyncio
import logging
import re
import struct
from collections import defaultdict
from collections.abc import Sequence

import pytest

from auditrecv.config import ConfigError, parse_config
from auditrecv.receive import dummy_mech as dm
from auditrecv.receive.framing import encode_frame
from auditrecv.spool import SpoolFull
from auditrecv.spool.record import SpoolRecord
from auditrecv.testclient.illumos import IllumosClient
from tests.receive_illumos.conftest import MemorySpool, ServerFactory
from tests.receive_illumos.loopback import connect_from, open_from, read_to_close, shrink_send_buffers, until
from tests.receive_illumos.test_server_dummy import VERSION_01, records

ACK_FRAME_BYTES = 4 + 8 + len(dm.MIC_TOKEN)  # one dummy-mech ack on the wire


def record_frame(seq: int, record: bytes) -> bytes:
    return encode_frame(dm.wrap(struct.pack(">Q", seq) + record))


class GatedSpool(MemorySpool):
    """Records the size of every append per client port; appends from ``gated`` ports wait for ``gate``."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.gated: set[int] = set()
        self.batches: dict[int, list[int]] = defaultdict(list)

    async def append(self, records: list[SpoolRecord]) -> list[int]:
        port = records[0].source.peer_port
        self.batches[port].append(len(records))
        if port in self.gated:
            await self.gate.wait()
        return await super().append(records)

    def stored_from(self, port: int) -> int:
        return sum(1 for r in self.records if r.source.peer_port == port)


async def test_client_that_never_reads_acks_is_held_to_its_window(
    start_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "auditrecv.receive.audit_remote")
    window = 64
    spool = GatedSpool()
    server = await start_server(spool=spool, allow_dummy_mech=True, max_records_in_flight=window, stall_timeout=1.0)
    shrink_send_buffers(server.sockets)
    flood = 20_000
    flooder = await connect_from("127.0.0.1", server.port, rcvbuf=4096)
    flooder_port = flooder.getsockname()[1]
    spool.gated.add(flooder_port)
    wire = [VERSION_01, encode_frame(dm.COMPLETE_TOKEN)]
    wire += [record_frame(seq, rec) for seq, rec in enumerate(records(flood, b"f"), 1)]
    # A plain socket that never reads a single ack (an asyncio stream would read some for us).
    sending = asyncio.create_task(asyncio.get_running_loop().sock_sendall(flooder, b"".join(wire)))

    # 1. The spool is slow for the flooder: at most `window` of its records wait for it.
    await until(lambda: server.stats.window_pauses >= 1, "the reader to stop at the window")
    assert server.stats.in_flight_peak <= window
    good = IllumosClient("127.0.0.1", server.port, mech="dummy")
    assert await good.send_records(records(200, b"a"), wait_when_full=True) == 200
    assert await good.wait_all_acked(10)

    # 2. The spool takes everything, but the flooder reads no acks: reading stops once more
    #    than the high-water mark of acks is unsent, so its acks in our memory stay bounded.
    spool.gate.set()
    await until(lambda: server.stats.backlog_pauses >= 1, "the reader to stop on unread acks")
    assert await good.send_records(records(200, b"b"), wait_when_full=True) == 200
    assert await good.wait_all_acked(10)
    assert good.stats.acked == 400 and good.stats.resets == 0

    # 3. Left unread for stall_timeout, the flooder is closed.
    await until(lambda: server.stats.timeouts == 1, "the flooder to be closed")
    assert max(spool.batches[flooder_port]) <= window
    assert server.stats.in_flight_peak <= window
    high_water = 64 * 1024  # asyncio's default for the transport
    assert server.stats.unsent_peak <= high_water + window * ACK_FRAME_BYTES
    stored = spool.stored_from(flooder_port)
    assert 0 < stored < flood // 4  # it stopped reading long before the flood's end
    await good.close()
    sending.cancel()
    flooder.close()
    good_payloads = [r.payload for r in spool.records if r.source.peer_port != flooder_port]
    assert good_payloads == records(200, b"a") + records(200, b"b")
    assert re.search(
        rf"audit_remote: closing 127\.0\.0\.1:{flooder_port}: peer has not read our replies for 1 s "
        r"\(\d+ bytes unsent, high-water mark 65536\)",
        caplog.text,
    )


async def test_silent_sockets_from_one_peer_cannot_take_every_slot(start_server: ServerFactory) -> None:
    server = await start_server(allow_dummy_mech=True, max_connections=4, max_connections_per_peer=3)
    silent = [await open_from("127.0.0.3", server.port) for _ in range(3)]
    await until(lambda: server.stats.active == 3, "3 silent connections")
    fourth = await open_from("127.0.0.3", server.port)  # takes the place of its own peer's oldest
    assert await read_to_close(silent[0][0]) == b""
    await until(lambda: server.stats.active == 3, "the oldest to make way")
    assert server.stats.evicted == 1 and server.limiter.count("127.0.0.3") == 3

    good = IllumosClient("127.0.0.1", server.port, mech="dummy")
    assert await good.send_records(records(20), wait_when_full=True) == 20
    assert await good.wait_all_acked(10)
    assert good.stats.resets == 0
    await good.close()
    for _, writer in [*silent, fourth]:
        writer.close()


async def test_a_host_at_its_cap_replaces_its_own_stalest_connection(
    start_server: ServerFactory, memory_spool: MemorySpool
) -> None:
    """Established connections of one address fill its cap (e.g. left behind by reboots): the next
    connection from there replaces the one silent longest instead of locking the host out."""
    server = await start_server(allow_dummy_mech=True, max_connections_per_peer=2)
    stale, recent, again = (IllumosClient("127.0.0.1", server.port, mech="dummy") for _ in range(3))
    for client in (stale, recent):
        handshakes = server.stats.handshakes
        await client.connect()
        await until(lambda h=handshakes: server.stats.handshakes == h + 1, "the handshake")
    await recent.send_records(records(1, b"recent"), wait_when_full=True)
    assert await recent.wait_all_acked(10)
    assert await again.send_records(records(5, b"again"), wait_when_full=True) == 5
    assert await again.wait_all_acked(10)
    assert await stale.wait_disconnected(10)
    assert recent.connected and server.stats.evicted == 1 and server.stats.refused_limit == 0
    for client in (stale, recent, again):
        await client.close()
    assert memory_spool.payloads() == records(1, b"recent") + records(5, b"again")


async def test_silent_sockets_from_many_peers_make_way_for_a_real_sender(
    start_server: ServerFactory, memory_spool: MemorySpool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "auditrecv.receive.audit_remote")
    server = await start_server(allow_dummy_mech=True, max_connections=4, max_connections_per_peer=4)
    silent = []
    for source in ("127.0.0.3", "127.0.0.3", "127.0.0.4", "127.0.0.4"):
        silent.append(await open_from(source, server.port))
        expected = len(silent)
        await until(lambda expected=expected: server.stats.active == expected, f"{expected} silent connections")
    oldest_port = silent[0][1].get_extra_info("sockname")[1]

    good = IllumosClient("127.0.0.1", server.port, mech="dummy")
    assert await good.send_records(records(20), wait_when_full=True) == 20
    assert await good.wait_all_acked(10)
    assert await read_to_close(silent[0][0]) == b""  # the one silent longest made way
    assert server.stats.evicted == 1 and server.stats.refused_limit == 0
    assert server.stats.evicted == 1  # exported on /metrics
    assert memory_spool.payloads() == records(20)

    # Once every slot is held by an established sender, a newcomer is refused instead.
    await good.close()
    await until(lambda: server.stats.active == 3, "the good sender to leave")
    senders = [IllumosClient("127.0.0.1", server.port, mech="dummy") for _ in range(4)]
    for sender in senders:  # each evicts one more silent socket, then completes its handshake
        handshakes = server.stats.handshakes
        await sender.connect()
        await until(lambda h=handshakes: server.stats.handshakes == h + 1, "the handshake")
    refused_reader, refused_writer = await open_from("127.0.0.5", server.port)
    assert await read_to_close(refused_reader) == b""
    assert server.stats.refused_limit == 1 and server.stats.evicted == 4
    for sender in senders:
        await sender.close()
    for _, writer in silent:
        writer.close()
    refused_writer.close()
    assert re.search(
        rf"audit_remote: closing 127\.0\.0\.3:{oldest_port}: closed to admit 127\.0\.0\.1:\d+: max_connections "
        r"\(4\) reached, and this connection had not completed its handshake and was the one silent longest "
        r"\(\d+\.\d s\)",
        caplog.text,
    )
    assert re.search(
        r"audit_remote: refused 127\.0\.0\.5:\d+: max_connections \(4\) reached and every connection has "
        r"completed its handshake",
        caplog.text,
    )


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ({"allow_dummy_mech": False}, "dummy mechanism refused: allow_dummy_mech is false"),
        (
            {"allow_dummy_mech": True, "dummy_mech_networks": ["192.0.2.0/24", "2001:db8::/32"]},
            "dummy mechanism refused: peer 127.0.0.1 is not in dummy_mech_networks (192.0.2.0/24, 2001:db8::/32)",
        ),
    ],
)
async def test_dummy_refusal_names_the_setting_that_refused(
    start_server: ServerFactory, caplog: pytest.LogCaptureFixture, settings: dict[str, object], reason: str
) -> None:
    caplog.set_level(logging.WARNING, "auditrecv.receive.audit_remote")
    server = await start_server(**settings)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    port = writer.get_extra_info("sockname")[1]
    writer.write(VERSION_01 + encode_frame(dm.COMPLETE_TOKEN))
    assert await reader.readexactly(6) == VERSION_01
    assert await read_to_close(reader) == b""
    writer.close()
    closing = [r.getMessage() for r in caplog.records if "closing" in r.getMessage()]
    assert closing == [f"audit_remote: closing 127.0.0.1:{port}: {reason}"]


class FullSpool(MemorySpool):
    """Refuses with the real SpoolFull until ``make_room()``."""

    async def append(self, records: list[SpoolRecord]) -> list[int]:
        if self.full:
            self.refused += 1
            raise SpoolFull(5000, 4096)
        return await super().append(records)


async def test_spool_full_warning_says_spool_full_once(
    start_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "auditrecv.receive.audit_remote")
    spool = FullSpool()
    spool.full = True
    server = await start_server(spool=spool, allow_dummy_mech=True)
    client = IllumosClient("127.0.0.1", server.port, mech="dummy")
    await client.send_records(records(3))
    await until(lambda: spool.refused >= 1, "the spool to refuse")
    spool.make_room()
    assert await client.wait_all_acked(10)
    await client.close()
    full = [r.getMessage() for r in caplog.records if "spool" in r.getMessage()]
    # The spool's own text ("spool full (why): ...") comes once, not wrapped in a second "spool full (...)".
    why = "withholding acks; senders keep their records until the spool takes them"
    expected = f"audit_remote: {SpoolFull(5000, 4096)}: {why}"
    assert full[0] == expected
    assert full[0].count("spool full") == 1


class FailingSpool(MemorySpool):
    """Its first ``failures`` appends fail with an I/O error (a disk hiccup), then it works."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def append(self, records: Sequence[SpoolRecord]) -> list[int]:
        if self.failures > 0:
            self.failures -= 1
            self.refused += 1
            raise OSError(5, "Input/output error")
        return await super().append(records)


async def test_spool_error_is_retried_on_the_connection_and_nothing_is_acked_before(
    start_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """An unexpected spool error withholds the acks and retries on the same connection (one error
    line), so the host keeps its records meanwhile; once stored they are acked exactly once."""
    caplog.set_level(logging.ERROR, "auditrecv.receive.audit_remote")
    spool = FailingSpool(failures=2)
    server = await start_server(spool=spool, allow_dummy_mech=True)
    client = IllumosClient("127.0.0.1", server.port, mech="dummy")
    sent = records(5)
    await client.send_records(sent)
    await until(lambda: spool.refused >= 1, "the first failed append")
    assert client.stats.acked == 0
    assert await client.wait_all_acked(10)
    await client.close()
    assert sorted(spool.payloads()) == sorted(sent)
    assert client.stats.resets == 0 and server.stats.failures == 0 and server.stats.accepted == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "withholding the acks and retrying: [Errno 5] Input/output error" in errors[0]


@pytest.mark.parametrize(
    ("toml", "error"),
    [
        ("[listeners.audit_remote]\nstall_timeout = 0", "listeners.audit_remote.stall_timeout = 0.0: must be > 0"),
        (
            "[listeners.audit_remote]\nmax_records_in_flight = 0",
            "listeners.audit_remote.max_records_in_flight = 0: must be > 0",
        ),
        (
            "[listeners.audisp_remote]\nmax_connections_per_peer = -1",
            "listeners.audisp_remote.max_connections_per_peer = -1: must be >= 0",
        ),
        (
            "[listeners.audisp_remote_krb5]\nhandshake_timeout = -2",
            "listeners.audisp_remote_krb5.handshake_timeout = -2.0: must be > 0",
        ),
    ],
)
def test_limit_settings_are_validated(toml: str, error: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(toml)
    assert str(info.value) == error


def test_limit_defaults() -> None:
    listeners = parse_config("").listeners
    for lst in (listeners.audit_remote, listeners.audisp_remote, listeners.audisp_remote_krb5):
        assert (lst.max_connections_per_peer, lst.max_records_in_flight, lst.stall_timeout) == (32, 2048, 30.0)
        assert lst.handshake_timeout == 30.0
