"""The asyncio audisp-remote server over real sockets, with an in-memory spool."""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from auditrecv.config import AudispRemoteListener, Gss
from auditrecv.receive.audisp_remote import MessageType, ack_frame, ending_frame, pack_frame
from auditrecv.receive.listeners import node_name, start_audisp_remote_server
from auditrecv.receive.server import ReceiveServer
from auditrecv.spool import SpoolRecord
from tests.receive_linux.fakes import CAPTURES, logged_frames
from tests.spool_fake import FakeSpool

LINE = b'type=CWD msg=audit(1700000000.123:4242): cwd="/home/alice"'

Start = Callable[..., Awaitable[ReceiveServer]]


@pytest.fixture
async def start(spool_path: str) -> AsyncIterator[Start]:
    servers: list[ReceiveServer] = []

    async def _start(spool: FakeSpool, **settings: object) -> ReceiveServer:
        cfg = AudispRemoteListener(host="127.0.0.1", port=0, **settings)  # type: ignore[arg-type]
        server = await start_audisp_remote_server(cfg, Gss(), spool, name="test")
        servers.append(server)
        return server

    yield _start
    for server in servers:
        await server.close()


async def _connect(server: ReceiveServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", server.port)


async def _reply(reader: asyncio.StreamReader) -> tuple[int, int, bytes]:
    header = await asyncio.wait_for(reader.readexactly(16), 10)
    magic, _, _, typ, length, seq = struct.unpack("<IBBIHI", header)
    assert magic == 0xFF0000FE
    return typ, seq, await reader.readexactly(length)


async def _nothing_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    try:
        data = await asyncio.wait_for(reader.read(1), seconds)
    except TimeoutError:
        return True
    raise AssertionError(f"unexpected data {data!r}")


async def _closed(reader: asyncio.StreamReader) -> bool:
    """True once the server closed the connection without having sent anything."""
    try:
        return await asyncio.wait_for(reader.read(), 10) == b""
    except ConnectionResetError:  # closed while our bytes were unread
        return True


async def test_capture01_stop_and_wait_through_a_socket(start: Start, spool_path: str) -> None:
    spool = FakeSpool()
    server = await start(spool)
    reader, writer = await _connect(server)
    frames = logged_frames(CAPTURES / "01-basic-ack-conn1.log")
    for f in frames:
        writer.write(pack_frame(f.type, f.seq, f.payload))
        assert await _reply(reader) == (MessageType.ACK, f.seq, b"")
    assert spool.lines() == [f.payload.rstrip(b"\n") for f in frames]
    src = spool.records[0].source
    assert (src.transport, src.peer, src.mech, src.authenticated, src.listener) == (
        "audisp_remote",
        "127.0.0.1",
        "",
        False,
        "test",
    )
    assert src.peer_port == writer.get_extra_info("sockname")[1]
    # Every record answered in the read callback when the spool takes it at once.
    assert spool.taken_now == (len(frames) if spool_path == "taken now" else 0)
    assert server.stats.records == len(frames) and server.stats.in_flight_peak == 1
    writer.close()


async def test_heartbeat_is_acked_not_spooled(start: Start) -> None:
    spool = FakeSpool()
    server = await start(spool)
    reader, writer = await _connect(server)
    writer.write(pack_frame(MessageType.HEARTBEAT, 3))
    assert await _reply(reader) == (MessageType.ACK, 3, b"")
    assert spool.records == []
    writer.close()


async def test_fragments_spooled_in_order(start: Start) -> None:
    spool = FakeSpool()
    server = await start(spool)
    reader, writer = await _connect(server)
    data = (CAPTURES / "12-oversize-line-split-conn1.bin").read_bytes()
    writer.write(data[:8985])  # first frame (16 + 8969)
    assert (await _reply(reader))[1] == 2
    writer.write(data[8985:])
    assert (await _reply(reader))[1] == 3
    head, tail = spool.lines()
    assert len(head) == 8969 and head.startswith(b"type=USER_CMD") and tail.startswith(b"word0989 ")
    writer.close()


@pytest.mark.parametrize(
    ("garbage", "reason"),
    [
        (b"\xfe\x00\x00\xfe" + b"\x00" * 12, "bad magic"),
        (struct.pack("<IBBIHI", 0xFF0000FE, 0, 0, 0, 9000, 2), "exceeds the limit"),
        (b"type=CWD msg=audit(1.0:1): x\n" * 2, "ascii"),
        (ack_frame(2), "reply type"),
    ],
)
async def test_malformed_input_closes_only_that_connection(
    start: Start, caplog: pytest.LogCaptureFixture, garbage: bytes, reason: str
) -> None:
    spool = FakeSpool()
    server = await start(spool)
    good_reader, good_writer = await _connect(server)
    bad_reader, bad_writer = await _connect(server)
    with caplog.at_level(logging.WARNING, "auditrecv.receive.audisp_remote"):
        bad_writer.write(garbage)
        assert await _closed(bad_reader)
    assert any(reason in r.getMessage() for r in caplog.records), caplog.text
    good_writer.write(pack_frame(MessageType.MESSAGE, 2, LINE + b"\n"))
    assert await _reply(good_reader) == (MessageType.ACK, 2, b"")
    assert spool.lines() == [LINE]
    good_writer.close()
    bad_writer.close()


async def test_graceful_close_sends_ending_to_every_client(start: Start) -> None:
    spool = FakeSpool()
    server = await start(spool)
    clients = [await _connect(server) for _ in range(3)]
    reader0, writer0 = clients[0]
    writer0.write(pack_frame(MessageType.MESSAGE, 2, LINE + b"\n"))
    assert await _reply(reader0) == (MessageType.ACK, 2, b"")
    await asyncio.sleep(0)  # every connection handler has started
    await server.close()
    await server.wait_closed()
    for reader, writer in clients:
        assert await asyncio.wait_for(reader.read(), 10) == ending_frame()
        writer.close()


async def test_spool_full_withholds_ack_until_space_returns(start: Start, caplog: pytest.LogCaptureFixture) -> None:
    spool = FakeSpool(capacity=1)
    server = await start(spool)
    reader, writer = await _connect(server)
    writer.write(pack_frame(MessageType.MESSAGE, 2, b"type=A msg=audit(1.0:1): a=1\n"))
    assert await _reply(reader) == (MessageType.ACK, 2, b"")
    with caplog.at_level(logging.WARNING, "auditrecv.receive.audisp_remote"):
        writer.write(pack_frame(MessageType.MESSAGE, 3, b"type=A msg=audit(1.0:2): a=2\n"))
        assert await _nothing_within(reader, 0.3)  # no ACK, and no DISKFULL either
    assert "spool full" in caplog.text
    assert spool.refused >= 1 and spool.lines() == [b"type=A msg=audit(1.0:1): a=1"]
    spool.set_capacity(10)
    assert await _reply(reader) == (MessageType.ACK, 3, b"")
    assert spool.lines() == [b"type=A msg=audit(1.0:1): a=1", b"type=A msg=audit(1.0:2): a=2"]
    # After the hold, the connection reads and answers as before (in the callback, if it can).
    taken = spool.taken_now
    writer.write(pack_frame(MessageType.MESSAGE, 4, b"type=A msg=audit(1.0:3): a=3\n"))
    assert await _reply(reader) == (MessageType.ACK, 4, b"")
    assert spool.taken_now == taken + (1 if FakeSpool.takes_now else 0)
    assert len(spool.lines()) == 3 and server.stats.spool_full_waits == 1
    writer.close()


async def test_retransmission_on_new_connection_while_full(start: Start) -> None:
    """The client gave up on the held connection and resent elsewhere: both copies are stored (the
    content identity folds them later), each connection gets its own ack, none before storing."""
    spool = FakeSpool(capacity=0)
    server = await start(spool)
    r1, w1 = await _connect(server)
    frame = pack_frame(MessageType.MESSAGE, 2, LINE + b"\n")
    w1.write(frame)
    assert await _nothing_within(r1, 0.2)
    w1.close()  # like audisp-remote after max_time_per_record
    r2, w2 = await _connect(server)
    w2.write(frame)
    assert await _nothing_within(r2, 0.2)
    spool.set_capacity(10)
    assert await _reply(r2) == (MessageType.ACK, 2, b"")
    assert LINE in spool.lines()
    w2.close()


async def test_an_error_in_the_read_callback_closes_only_that_connection(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever goes wrong while a read is handled in the transport's callback is logged and ends
    that connection, unanswered; the listener keeps serving the others."""

    class BrokenSpool(FakeSpool):
        def try_append_now(self, records: list[SpoolRecord], appender: object) -> list[int] | None:
            if records[0].payload == b"poison":
                raise RuntimeError("spool bug")
            return super().try_append_now(records, appender)

    spool = BrokenSpool()
    server = await start(spool)
    bad_reader, bad_writer = await _connect(server)
    good_reader, good_writer = await _connect(server)
    with caplog.at_level(logging.INFO, "auditrecv.receive.audisp_remote"):
        bad_writer.write(pack_frame(MessageType.MESSAGE, 2, b"poison\n"))
        assert await _closed(bad_reader)
        good_writer.write(pack_frame(MessageType.MESSAGE, 2, LINE + b"\n"))
        assert await _reply(good_reader) == (MessageType.ACK, 2, b"")
    assert "internal error: RuntimeError: spool bug" in caplog.text
    assert spool.lines() == [LINE]
    good_writer.close()
    bad_writer.close()


async def test_spool_low_replies_disklow_after_storing(start: Start) -> None:
    spool = FakeSpool(low_at=1)
    server = await start(spool)
    reader, writer = await _connect(server)
    writer.write(pack_frame(MessageType.MESSAGE, 2, LINE + b"\n"))
    typ, seq, text = await _reply(reader)
    assert (typ, seq) == (MessageType.DISKLOW, 2) and text
    assert spool.lines() == [LINE]
    writer.close()


async def test_allowlist_refuses_other_peers(start: Start, caplog: pytest.LogCaptureFixture) -> None:
    spool = FakeSpool()
    server = await start(spool, allow=["192.0.2.0/24"])
    reader, writer = await _connect(server)
    with caplog.at_level(logging.WARNING, "auditrecv.receive.audisp_remote"):
        writer.write(pack_frame(MessageType.MESSAGE, 2, LINE + b"\n"))
        assert await _closed(reader)
    assert "address not in allow" in caplog.text and spool.records == []
    writer.close()
    server2 = await start(spool, allow=["127.0.0.0/8"])
    reader, writer = await _connect(server2)
    writer.write(pack_frame(MessageType.MESSAGE, 2, LINE + b"\n"))
    assert await _reply(reader) == (MessageType.ACK, 2, b"")
    writer.close()


async def test_max_connections(start: Start) -> None:
    spool = FakeSpool()
    server = await start(spool, max_connections=1)
    r1, w1 = await _connect(server)
    w1.write(pack_frame(MessageType.HEARTBEAT, 2))
    assert await _reply(r1) == (MessageType.ACK, 2, b"")
    r2, w2 = await _connect(server)
    assert await _closed(r2)
    w1.write(pack_frame(MessageType.HEARTBEAT, 3))
    assert await _reply(r1) == (MessageType.ACK, 3, b"")
    w1.close()
    w2.close()


async def test_idle_timeout_closes(start: Start, caplog: pytest.LogCaptureFixture) -> None:
    spool = FakeSpool()
    server = await start(spool, idle_timeout=0.2)
    reader, writer = await _connect(server)
    with caplog.at_level(logging.INFO, "auditrecv.receive.audisp_remote"):
        assert await _closed(reader)
    assert "idle" in caplog.text
    writer.close()


async def test_ascii_listener(start: Start) -> None:
    spool = FakeSpool()
    server = await start(spool, format="ascii")
    reader, writer = await _connect(server)
    data = (CAPTURES / "08-ascii-format-conn1.bin").read_bytes()
    writer.write(data)
    writer.write_eof()
    # Nothing is ever sent back; the server closes only once everything received is stored.
    assert await _closed(reader)
    assert spool.lines() == [line for line in data.split(b"\n") if line]


def test_node_name_is_audisp_remotes_name_format_prefix() -> None:
    assert node_name(b"node=web1.example type=CWD msg=audit(1.0:1): cwd=/") == "web1.example"
    assert node_name(b"node=web1") == "web1"
    assert node_name(b"type=CWD msg=audit(1.0:1): cwd=/") == ""
