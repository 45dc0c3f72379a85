"""The asyncio server with the dummy mech, driven by the transport.c emulator and by raw sockets."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct

import pytest

from auditrecv.receive import dummy_mech as dm
from auditrecv.receive.framing import FrameDecoder, encode_frame
from auditrecv.testclient.illumos import IllumosClient, TransportReset
from tests.receive_illumos.conftest import MemorySpool, ServerFactory
from tests.receive_illumos.loopback import until

VERSION_01 = encode_frame(b"01")


def records(n: int, tag: bytes = b"r") -> list[bytes]:
    # Shaped like a header32 record (id 0x14, u32 length) so the payload is recognisable.
    out = []
    for i in range(n):
        body = tag + b"%06d" % i
        out.append(b"\x14" + struct.pack(">I", 5 + len(body)) + body)
    return out


async def read_to_close(reader: asyncio.StreamReader) -> bytes:
    """What the server sent before closing (a close with unread input arrives as a reset)."""
    try:
        return await asyncio.wait_for(reader.read(), 5)
    except ConnectionResetError:
        return b""


async def raw_dummy_session(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(VERSION_01 + encode_frame(dm.COMPLETE_TOKEN))
    assert await reader.readexactly(6) == VERSION_01
    return reader, writer


async def test_dummy_session_delivers_every_record_once_acked(
    start_server: ServerFactory, memory_spool: MemorySpool
) -> None:
    server = await start_server(allow_dummy_mech=True, dummy_mech_networks=["127.0.0.0/8"])
    client = IllumosClient("127.0.0.1", server.port, mech="dummy")
    sent = records(500)
    assert await client.send_records(sent, wait_when_full=True) == 500
    assert await client.wait_all_acked(10)
    await client.close()
    assert memory_spool.payloads() == sent
    assert client.stats.acked == 500 and client.stats.resets == 0 and client.stats.dropped == 0
    assert set(client.stats.acks_per_connection[1].values()) == {1}
    src = memory_spool.records[0].source
    assert (src.transport, src.peer, src.mech, src.principal, src.authenticated, src.listener) == (
        "audit_remote",
        "127.0.0.1",
        "dummy",
        "",
        False,
        "audit_remote",
    )
    assert src.peer_port > 0
    assert all(r.kind == "bsm" for r in memory_spool.records)


async def test_dummy_refused_from_other_network(start_server: ServerFactory, memory_spool: MemorySpool) -> None:
    server = await start_server(allow_dummy_mech=True, dummy_mech_networks=["192.0.2.0/24"])
    client = IllumosClient("127.0.0.1", server.port, mech="dummy")
    # The dummy initiator needs no reply, so its handshake may "succeed" before the close arrives.
    with contextlib.suppress(TransportReset):  # the close may overtake the handshake
        await client.send_record(records(1)[0])
    assert await client.wait_disconnected(10)
    await client.close()
    assert memory_spool.records == []
    assert client.stats.acked == 0
    assert server.stats.failures >= 1 and server.stats.handshakes == 0


async def test_dummy_off_by_default(start_server: ServerFactory, memory_spool: MemorySpool) -> None:
    server = await start_server()  # no keytab, no dummy: Kerberos refused only at connection time
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(VERSION_01 + encode_frame(dm.COMPLETE_TOKEN) + encode_frame(dm.wrap(bytes(8) + b"x")))
    assert await reader.readexactly(6) == VERSION_01
    assert await read_to_close(reader) == b""  # closed, nothing acked
    writer.close()
    assert memory_spool.records == []


async def test_bad_connections_do_not_disturb_a_good_one(
    start_server: ServerFactory, memory_spool: MemorySpool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "auditrecv.receive.audit_remote")
    server = await start_server(allow_dummy_mech=True)
    good = IllumosClient("127.0.0.1", server.port, mech="dummy")
    await good.send_records(records(50, b"a"), wait_when_full=True)

    # 1. garbage instead of a version token
    r1, w1 = await asyncio.open_connection("127.0.0.1", server.port)
    w1.write(b"GET / HTTP/1.0\r\n\r\n")
    # 2. a 2 GB length prefix after the handshake
    r2, w2 = await raw_dummy_session(server.port)
    w2.write(b"\x7f\xff\xff\xff")
    # 3. a half frame that never completes (stalled)
    _r3, w3 = await raw_dummy_session(server.port)
    w3.write(b"\x00\x00\x10\x00" + b"partial")
    await w3.drain()

    assert await read_to_close(r1) == b""
    assert await read_to_close(r2) == b""
    await good.send_records(records(50, b"b"), wait_when_full=True)
    assert await good.wait_all_acked(10)
    assert good.stats.resets == 0 and good.stats.acked == 100
    assert server.stats.active == 2  # the good client and the stalled one
    await good.close()
    w1.close()
    w2.close()
    w3.close()
    assert memory_spool.payloads() == records(50, b"a") + records(50, b"b")
    text = caplog.text
    assert "frame of 1195725856 bytes exceeds the limit of 65536 bytes in the version phase" in text  # "GET "
    assert "exceeds the limit of 4194304" in text


async def test_stalled_handshake_is_closed_after_handshake_timeout(start_server: ServerFactory) -> None:
    server = await start_server(allow_dummy_mech=True, handshake_timeout=0.2)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"\x00\x00")  # half a length prefix
    assert await read_to_close(reader) == b""
    writer.close()
    assert server.stats.failures == 1


async def test_frame_stalled_after_handshake_is_closed(
    start_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "auditrecv.receive.audit_remote")
    server = await start_server(allow_dummy_mech=True, stall_timeout=0.2)  # idle_timeout 0: never
    reader, writer = await raw_dummy_session(server.port)
    writer.write(encode_frame(dm.wrap(bytes(8) + b"whole")))
    assert len(await reader.readexactly(42)) == 42  # acked
    writer.write(b"\x00\x00\x01\x00half")
    assert await read_to_close(reader) == b""
    writer.close()
    assert "stalled in the middle of a frame" in caplog.text


async def test_idle_timeout_closes_and_client_retransmits(
    start_server: ServerFactory, memory_spool: MemorySpool
) -> None:
    server = await start_server(allow_dummy_mech=True, idle_timeout=0.2)
    client = IllumosClient("127.0.0.1", server.port, mech="dummy")
    await client.send_records(records(3), wait_when_full=True)
    assert await client.wait_all_acked(5)
    assert await client.wait_disconnected(10)  # the server drops the idle connection
    assert client.stats.resets == 1
    await client.send_records(records(2, b"later"), wait_when_full=True)  # reconnects
    assert await client.wait_all_acked(5)
    assert client.stats.connects == 2
    await client.close()
    assert memory_spool.payloads() == records(3) + records(2, b"later")


async def test_max_connections_and_address_allowlist(start_server: ServerFactory) -> None:
    server = await start_server(allow_dummy_mech=True, max_connections=1)
    first = IllumosClient("127.0.0.1", server.port, mech="dummy")
    await first.connect()
    second_reader, second_writer = await asyncio.open_connection("127.0.0.1", server.port)
    second_writer.write(VERSION_01)
    assert await read_to_close(second_reader) == b""  # refused before any reply
    assert server.stats.refused_limit == 1
    await first.close()
    second_writer.close()

    fenced = await start_server(allow_dummy_mech=True, allow=["192.0.2.0/24", "2001:db8::/32"])
    client = IllumosClient("127.0.0.1", fenced.port, mech="dummy")
    with pytest.raises(TransportReset):
        await client.connect()
    assert fenced.stats.refused_address == 1


async def test_retransmission_after_server_side_close(start_server: ServerFactory, memory_spool: MemorySpool) -> None:
    """The server drops every connection once; the client resends unacked records with the same
    seq on a new connection. Spool may hold duplicates; the client sees every record acked
    exactly once per connection and nothing lost."""
    server = await start_server(allow_dummy_mech=True)
    client = IllumosClient("127.0.0.1", server.port, mech="dummy", qsize=1000)
    sent = records(300)
    # Hold the spool so nothing is acked, then kill the connections from the server side.
    memory_spool.full = True
    assert await client.send_records(sent) == 300
    while memory_spool.refused == 0:
        await asyncio.sleep(0.01)
    await server.close()
    assert await client.wait_disconnected(10)
    assert client.stats.resets == 1 and len(client.transq) == 300

    memory_spool.make_room()
    second = await start_server(allow_dummy_mech=True)
    client.port = second.port
    assert await client.wait_all_acked(10)
    assert client.stats.retransmitted == 300
    assert client.stats.acked == 300
    per_conn = client.stats.acks_per_connection
    assert sum(per_conn[1].values()) == 0
    assert sorted(per_conn[2]) == list(range(1, 301)) and set(per_conn[2].values()) == {1}
    await client.close()
    assert set(memory_spool.payloads()) == set(sent)


async def test_spool_full_means_no_ack_until_space(
    start_server: ServerFactory, memory_spool: MemorySpool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "auditrecv.receive.audit_remote")
    server = await start_server(allow_dummy_mech=True)
    client = IllumosClient("127.0.0.1", server.port, mech="dummy")
    memory_spool.full = True
    await client.send_records(records(10), wait_when_full=False)
    assert not await client.wait_all_acked(0.3)
    assert client.stats.acked == 0 and len(client.transq) == 10
    memory_spool.make_room()
    assert await client.wait_all_acked(5)
    assert memory_spool.payloads() == records(10)
    assert caplog.text.count("spool full") == 1


async def test_dummy_continue_handshake_over_tcp(start_server: ServerFactory, memory_spool: MemorySpool) -> None:
    server = await start_server(allow_dummy_mech=True)
    client = IllumosClient("127.0.0.1", server.port, mech="dummy", dummy_token_nums=2)
    await client.send_records(records(5), wait_when_full=True)
    assert await client.wait_all_acked(5)
    await client.close()
    assert len(memory_spool.records) == 5


async def test_ack_frames_on_the_wire(start_server: ServerFactory) -> None:
    server = await start_server(allow_dummy_mech=True)
    reader, writer = await raw_dummy_session(server.port)
    writer.write(encode_frame(dm.wrap(struct.pack(">Q", 5) + b"\x14record")))
    ack = await reader.readexactly(42)
    assert ack == bytes.fromhex("000000260000000000000005601c060a2b060104012a021a0102000064756d6d795f6773735f7369676e")
    writer.close()
    dec = FrameDecoder(100)
    dec.feed(ack)
    assert dec.next_frame() == struct.pack(">Q", 5) + dm.MIC_TOKEN


class GateSpool(MemorySpool):
    """append() does not return (is not 'committed') until the gate opens."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.waiting = 0

    async def append(self, records: list) -> list[int]:  # type: ignore[type-arg,override]
        self.waiting += 1
        await self.gate.wait()
        return await super().append(records)


async def test_ack_only_after_the_append_returned(start_server: ServerFactory) -> None:
    spool = GateSpool()
    server = await start_server(spool=spool, allow_dummy_mech=True)
    client = IllumosClient("127.0.0.1", server.port, mech="dummy")
    await client.send_records(records(20))
    # Every record has reached the server and its commit is blocked: an ack now would be premature.
    await until(lambda: spool.waiting == 1 and server.stats.in_flight_peak == 20, "20 records waiting for the spool")
    assert server.stats.acks == 0 and server.stats.records == 0
    assert client.stats.acked == 0 and len(client.transq) == 20
    spool.gate.set()
    assert await client.wait_all_acked(5)
    await client.close()
    assert spool.payloads() == records(20)


async def test_many_concurrent_hosts(start_server: ServerFactory, memory_spool: MemorySpool) -> None:
    from auditrecv.testclient.illumos import run_hosts

    # 40 emulated hosts, all from 127.0.0.1: no per-peer cap here (real hosts have their own addresses).
    server = await start_server(allow_dummy_mech=True, max_connections_per_peer=0)
    clients, _ = await run_hosts("127.0.0.1", server.port, records(150), hosts=40, timeout=30, mech="dummy")
    assert all(c.stats.acked == 150 and c.stats.resets == 0 for c in clients)
    assert len(memory_spool.records) == 40 * 150
    per_peer: dict[int, list[bytes]] = {}
    for r in memory_spool.records:
        per_peer.setdefault(r.source.peer_port, []).append(r.payload)
    assert len(per_peer) == 40 and all(v == records(150) for v in per_peer.values())


async def test_client_vanishing_while_commit_in_flight_ends_the_session(start_server: ServerFactory) -> None:
    """Records still being committed when the peer disappears are stored; the session then ends."""
    spool = GateSpool()
    server = await start_server(spool=spool, allow_dummy_mech=True)
    client = IllumosClient("127.0.0.1", server.port, mech="dummy")
    await client.send_records(records(10))
    await until(lambda: spool.waiting == 1, "the first commit to block")
    await client.send_records(records(5, b"more"))  # queued behind the blocked commit
    await until(lambda: server.stats.in_flight_peak == 15, "the 5 more records to reach the server")
    await client.abort_connection()
    await until(lambda: server.stats.reads_ended == 1, "the server to see the reset while the commit is blocked")
    assert spool.waiting == 1 and server.stats.records == 0
    spool.gate.set()
    for _ in range(500):
        if server.stats.active == 0:
            break
        await asyncio.sleep(0.01)
    assert server.stats.active == 0
    assert sorted(spool.payloads()) == sorted(records(10) + records(5, b"more"))
    await client.close()
