"""One client must not hurt the others on the audisp-remote listener (issue 14): a client that
pipelines frames and never reads replies, silent sockets against the connection caps, frames and
krb5 handshakes that never complete, the spool-full warning text."""

from __future__ import annotations

import asyncio
import logging
import re
import struct
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from auditrecv.config import AudispRemoteListener, Gss
from auditrecv.receive.audisp_remote import MessageType, pack_frame
from auditrecv.receive.listeners import start_audisp_remote_server
from auditrecv.receive.server import ReceiveServer
from auditrecv.spool import SpoolFull
from auditrecv.spool.record import SpoolRecord
from tests.receive_illumos.loopback import connect_from, open_from, read_to_close, shrink_send_buffers, until
from tests.spool_fake import FakeSpool

LOG = "auditrecv.receive.audisp_remote"
REPLY_BYTES = 16  # an ACK frame: header only


def line(i: int, tag: str = "a") -> bytes:
    return b'type=CWD msg=audit(1700000000.123:%d): cwd="/%s"' % (i, tag.encode())


Start = Callable[..., Awaitable[ReceiveServer]]


@pytest.fixture
async def start(spool_path: str) -> AsyncIterator[Start]:
    servers: list[ReceiveServer] = []

    async def _start(spool: Any, gss: Gss | None = None, **settings: Any) -> ReceiveServer:
        cfg = AudispRemoteListener(host="127.0.0.1", port=0, **settings)
        server = await start_audisp_remote_server(cfg, gss or Gss(), spool, name="test")
        servers.append(server)
        return server

    yield _start
    for server in servers:
        await server.close()


async def ack_of(reader: asyncio.StreamReader) -> tuple[int, int]:
    header = await asyncio.wait_for(reader.readexactly(16), 10)
    _magic, _, _, typ, length, seq = struct.unpack("<IBBIHI", header)
    await reader.readexactly(length)
    return typ, seq


class BatchSpool(FakeSpool):
    """Remembers the size of every append, per client port."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: dict[int, list[int]] = defaultdict(list)

    async def append(self, records: list[SpoolRecord]) -> list[int]:
        self.batches[records[0].source.peer_port].append(len(records))
        return await super().append(records)

    def stored_from(self, port: int) -> int:
        return sum(1 for r in self.records if r.source.peer_port == port)


async def test_pipelining_client_that_never_reads_replies_is_bounded_then_closed(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, LOG)
    window = 16
    spool = BatchSpool()
    server = await start(spool, max_records_in_flight=window, stall_timeout=1.0)
    shrink_send_buffers(server.sockets)
    flood = 20_000
    flooder = await connect_from("127.0.0.1", server.port, rcvbuf=4096)
    flooder_port = flooder.getsockname()[1]
    wire = b"".join(pack_frame(MessageType.MESSAGE, seq, line(seq, "f") + b"\n") for seq in range(2, flood + 2))
    # A plain socket that never reads a reply (an asyncio stream would read some for us).
    sending = asyncio.create_task(asyncio.get_running_loop().sock_sendall(flooder, wire))

    await until(lambda: server.stats.backlog_pauses >= 1, "the reader to stop on unread replies")
    reader, writer = await open_from("127.0.0.2", server.port)
    for seq in range(2, 12):  # a stop-and-wait client on another connection is served meanwhile
        writer.write(pack_frame(MessageType.MESSAGE, seq, line(seq) + b"\n"))
        assert await ack_of(reader) == (MessageType.ACK, seq)

    await until(lambda: server.stats.timeouts == 1, "the flooder to be closed")
    assert max(spool.batches[flooder_port]) <= window
    assert server.stats.in_flight_peak <= window
    high_water = 64 * 1024  # asyncio's default for the transport
    assert server.stats.unsent_peak <= high_water + window * REPLY_BYTES
    # It stopped reading long before the end. What it may store first: the replies the transport buffers up
    # to its high-water mark, plus the kernel's send and receive buffers (4 KiB each, doubled by Linux), plus
    # the frames of the one read (asyncio reads up to 256 KiB) answered before the check: about 9 300.
    frame = len(pack_frame(MessageType.MESSAGE, 2, line(2, "f") + b"\n"))
    bound = (64 * 1024 + 4 * 4096) // REPLY_BYTES + window + 256 * 1024 // frame
    assert 0 < spool.stored_from(flooder_port) <= bound < flood // 2
    assert [r.payload for r in spool.records if r.source.peer == "127.0.0.2"] == [line(seq) for seq in range(2, 12)]
    sending.cancel()
    flooder.close()
    writer.close()
    assert re.search(
        rf"test: closing 127\.0\.0\.1:{flooder_port}: peer has not read our replies for 1 s "
        r"\(\d+ bytes unsent, high-water mark 65536\)",
        caplog.text,
    )


async def test_silent_sockets_from_one_peer_leave_room_for_another(start: Start) -> None:
    spool = FakeSpool()
    server = await start(spool, max_connections=4, max_connections_per_peer=3)
    silent = [await open_from("127.0.0.3", server.port) for _ in range(4)]  # the 4th replaces the 1st
    assert await read_to_close(silent[0][0]) == b""
    await until(lambda: server.stats.active == 3, "3 silent connections")
    reader, writer = await open_from("127.0.0.2", server.port)
    writer.write(pack_frame(MessageType.MESSAGE, 2, line(2) + b"\n"))
    assert await ack_of(reader) == (MessageType.ACK, 2)
    assert spool.lines() == [line(2)]
    assert server.stats.evicted == 1 and server.stats.refused_limit == 0
    for _, w in [*silent, (reader, writer)]:
        w.close()


async def test_silent_sockets_from_many_peers_make_way_for_a_real_client(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, LOG)
    spool = FakeSpool()
    server = await start(spool, max_connections=3)
    silent = []
    for source in ("127.0.0.3", "127.0.0.4", "127.0.0.5"):
        silent.append(await open_from(source, server.port))
        expected = len(silent)
        await until(lambda expected=expected: server.stats.active == expected, f"{expected} connections")
    oldest_port = silent[0][1].get_extra_info("sockname")[1]
    reader, writer = await open_from("127.0.0.2", server.port)
    writer.write(pack_frame(MessageType.MESSAGE, 2, line(2) + b"\n"))
    assert await ack_of(reader) == (MessageType.ACK, 2)
    assert await read_to_close(silent[0][0]) == b""
    assert server.stats.evicted == 1 and spool.lines() == [line(2)]
    for _, w in [*silent, (reader, writer)]:
        w.close()
    assert re.search(
        rf"test: closing 127\.0\.0\.3:{oldest_port}: closed to admit 127\.0\.0\.2:\d+: max_connections \(3\) "
        r"reached, and this connection had not completed its first frame and was the one silent longest "
        r"\(\d+\.\d s\)",
        caplog.text,
    )


@pytest.mark.parametrize("after_a_frame", [False, True])
async def test_partial_frame_is_closed_after_stall_timeout(
    start: Start, caplog: pytest.LogCaptureFixture, after_a_frame: bool
) -> None:
    caplog.set_level(logging.WARNING, LOG)
    server = await start(FakeSpool(), stall_timeout=0.3)  # idle_timeout stays 600 s
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    port = writer.get_extra_info("sockname")[1]
    if after_a_frame:
        writer.write(pack_frame(MessageType.MESSAGE, 2, line(2) + b"\n"))
        assert await ack_of(reader) == (MessageType.ACK, 2)
    writer.write(pack_frame(MessageType.MESSAGE, 3, line(3) + b"\n")[:10])  # half a header, then nothing
    assert await read_to_close(reader) == b""
    writer.close()
    assert server.stats.timeouts == 1
    closing = [r.getMessage() for r in caplog.records if "closing" in r.getMessage()]
    assert closing == [f"test: closing 127.0.0.1:{port}: stalled in the middle of a frame for 0.3 s"]


@pytest.mark.kdc
async def test_krb5_handshake_that_never_completes_is_closed(
    start: Start, kdc: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.infra.kdc import LINUX_SERVICE

    caplog.set_level(logging.WARNING, LOG)
    gss = Gss(keytab=str(kdc.service_keytab(LINUX_SERVICE)))
    server = await start(FakeSpool(), gss=gss, transport="krb5", handshake_timeout=0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    port = writer.get_extra_info("sockname")[1]
    writer.write(b"\x00\x00\x00\x00")  # audisp-remote's leading empty token, then no AP-REQ
    assert await read_to_close(reader) == b""
    writer.close()
    assert server.stats.timeouts == 1
    closing = [r.getMessage() for r in caplog.records if "closing" in r.getMessage()]
    assert closing == [f"test: closing 127.0.0.1:{port}: handshake not complete after 0.3 s"]


async def test_spool_full_warning_says_spool_full_once(start: Start, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, LOG)
    spool = FakeSpool(capacity=0)
    server = await start(spool)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(pack_frame(MessageType.MESSAGE, 2, line(2) + b"\n"))
    await until(lambda: spool.refused >= 1, "the spool to refuse")
    spool.set_capacity(10)
    assert await ack_of(reader) == (MessageType.ACK, 2)
    writer.close()
    full = [r.getMessage() for r in caplog.records if "spool" in r.getMessage()]
    assert full == [
        f"test: {SpoolFull(0, 0)}: withholding acks; senders keep their records until the spool takes them",
        "test: the spool takes records again; acking resumes",
    ]
    assert full[0].count("spool full") == 1
