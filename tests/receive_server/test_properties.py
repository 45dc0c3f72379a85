"""The one receive server's promises, under generated schedules (no sockets: a fake transport).

A pipelining peer (audisp-remote, or illumos audit_remote over the dummy mechanism) sends
numbered records in reads cut anywhere, while the spool takes them at once (the ack journal) or
declines and makes the server await an append that may yield, say "full" (until room is made) or
fail with an I/O error. Whatever the schedule:

* an ack is only ever sent for a record the spool holds, each record is acked once, in order;
* the window holds: the server never has more records of one connection waiting than allowed;
* nothing is lost: once the spool works again, every record sent is stored and acked.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditrecv.config import AudispRemoteListener, AuditRemoteListener, Gss
from auditrecv.receive import dummy_mech as dm
from auditrecv.receive import server as server_module
from auditrecv.receive.audisp_remote import HEADER, HEADER_SIZE, MessageType, pack_frame
from auditrecv.receive.framing import FrameDecoder, encode_frame
from auditrecv.receive.listeners import AudispRemoteListenerPolicy, AuditRemoteListenerPolicy
from auditrecv.receive.server import ReceiveServer, _ReceiverProtocol
from auditrecv.spool import SpoolFull, SpoolRecord, SpoolState
from auditrecv.spool.record import RecordKind, Source, spool_record

WINDOW = 4


class ScriptedSpool:
    """Each append or take-now consumes the next step of ``script``: "now" (taken at once), "ok"
    (awaited, yields), "full" (SpoolFull until make_room), "error" (OSError); then "now"."""

    def __init__(self, script: Sequence[str]) -> None:
        self.script = list(script)
        self.stored: list[bytes] = []
        self.full = False
        self.space = asyncio.Event()

    def _next(self) -> str:
        return self.script.pop(0) if self.script else "now"

    @property
    def state(self) -> SpoolState:
        return "ok"

    def try_append_now(self, records: Sequence[SpoolRecord], appender: object) -> list[int] | None:
        if self.full or not self.script or self.script[0] != "now":
            return None
        self.script.pop(0)
        return self._store(records)

    def try_append_one(
        self, kind: RecordKind, payload: bytes, source: Source, received_ns: int, appender: object
    ) -> int | None:
        """try_append_now of the one record these fields make, as the real spool's."""
        ids = self.try_append_now([spool_record(kind, payload, source, received_ns)], appender)
        return None if ids is None else ids[0]

    async def append(self, records: Sequence[SpoolRecord]) -> list[int]:
        await asyncio.sleep(0)
        if self.full:
            raise SpoolFull(1, 1)
        step = self._next()
        if step == "full":
            self.full = True
            self.space.clear()
            raise SpoolFull(1, 1)
        if step == "error":
            raise OSError(5, "Input/output error")
        await asyncio.sleep(0)
        return self._store(records)

    async def wait_for_space(self, timeout: float | None = None) -> bool:
        await self.space.wait()
        return True

    def make_room(self) -> None:
        """The spool works again from now on (what is left of the script is dropped)."""
        self.script.clear()
        self.full = False
        self.space.set()

    def _store(self, records: Sequence[SpoolRecord]) -> list[int]:
        start = len(self.stored)
        self.stored.extend(r.payload for r in records)
        return list(range(start, start + len(records)))


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.sent = bytearray()
        self.reading = True
        self.closed = False

    def write(self, data: Any) -> None:
        self.sent += data

    def get_write_buffer_size(self) -> int:
        return 0

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (16384, 65536)

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True


def line(seq: int) -> bytes:
    return b'type=CWD msg=audit(1.0:%d): cwd="/"' % seq


class Peer:
    """One protocol as the property sees it: the server for it, the peer's stream, its acks."""

    name = ""
    handshake = b""

    def server(self, spool: ScriptedSpool) -> ReceiveServer:
        raise NotImplementedError

    def records(self, seqs: range) -> bytes:
        raise NotImplementedError

    def acks(self, sent: bytes) -> list[int]:
        raise NotImplementedError


class Audisp(Peer):
    name = "audisp_remote"

    def server(self, spool: ScriptedSpool) -> ReceiveServer:
        settings_ = AudispRemoteListener(host="127.0.0.1", port=0, max_records_in_flight=WINDOW)
        return ReceiveServer(AudispRemoteListenerPolicy(settings_, Gss()), spool, name="prop")

    def records(self, seqs: range) -> bytes:
        return b"".join(pack_frame(MessageType.MESSAGE, seq, line(seq) + b"\n") for seq in seqs)

    def acks(self, sent: bytes) -> list[int]:
        seqs = []
        for pos in range(0, len(sent), HEADER_SIZE):
            _magic, _h, _m, msg_type, _length, seq = HEADER.unpack_from(sent, pos)
            assert msg_type == MessageType.ACK
            seqs.append(seq)
        return seqs


class AuditRemote(Peer):
    """illumos audit_remote over the dummy mechanism: version "01", one context token, then
    wrap(seq || record) per record; acks are seq || MIC after the version reply."""

    name = "audit_remote"
    handshake = encode_frame(b"01") + encode_frame(dm.make_token(b"0\x00"))

    def server(self, spool: ScriptedSpool) -> ReceiveServer:
        settings_ = AuditRemoteListener(
            host="127.0.0.1",
            port=0,
            max_records_in_flight=WINDOW,
            allow_dummy_mech=True,
            dummy_mech_networks=["127.0.0.0/8"],
        )
        policy = AuditRemoteListenerPolicy(settings_, keytab="/nonexistent.keytab")  # no Kerberos here
        return ReceiveServer(policy, spool, name="prop")

    def records(self, seqs: range) -> bytes:
        return b"".join(encode_frame(dm.wrap(struct.pack(">Q", seq) + line(seq))) for seq in seqs)

    def acks(self, sent: bytes) -> list[int]:
        frames = FrameDecoder(1 << 20)
        frames.feed(sent)
        replies = list(frames.frames())
        assert not replies or replies[0] == b"01"
        return [struct.unpack_from(">Q", r)[0] for r in replies[1:]]


PEERS = [Audisp(), AuditRemote()]


async def run_schedule(
    peer: Peer,
    script: list[str],
    reads: list[int],
    ticks: list[int],
    spool_type: type[ScriptedSpool] = ScriptedSpool,
) -> None:
    spool = spool_type(script)
    server = peer.server(spool)
    protocol = _ReceiverProtocol(server)
    transport = FakeTransport()
    protocol.connection_made(transport)
    stream = peer.handshake + peer.records(range(1, 25))
    pos = 0
    for size, tick in zip(reads, ticks, strict=False):
        if pos >= len(stream):
            break
        if transport.reading:  # a paused socket is not read: the bytes wait in the kernel
            protocol.data_received(stream[pos : pos + size])
            pos += size
        for _ in range(tick):
            await asyncio.sleep(0)
        stored = set(spool.stored)
        acked = peer.acks(bytes(transport.sent))
        assert all(line(seq) in stored for seq in acked), "an ack for a record the spool does not hold"
        (conn,) = server._conns
        assert conn.window.records <= WINDOW, "more records waiting for the spool than the window allows"
    spool.make_room()
    for _ in range(2000):  # the rest, whenever the server reads again
        if pos >= len(stream):
            break
        await asyncio.sleep(0)
        if transport.reading:
            protocol.data_received(stream[pos : pos + 64])
            pos += 64
    assert pos >= len(stream), "the server never read again after the spool took records"
    for _ in range(200):
        if len(peer.acks(bytes(transport.sent))) == 24:
            break
        await asyncio.sleep(0)
    acked = peer.acks(bytes(transport.sent))
    assert acked == list(range(1, 25)), "each record acked once, in order, none missing"
    assert sorted(set(spool.stored)) == sorted(line(seq) for seq in range(1, 25)), "a record lost"
    protocol.eof_received()
    await server.close()


@pytest.fixture(autouse=True)
def _no_retry_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_module, "RETRY_DELAY", 0)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    script=st.lists(st.sampled_from(["now", "ok", "full", "error"]), max_size=12),
    reads=st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=30),
    ticks=st.lists(st.integers(min_value=0, max_value=4), min_size=30, max_size=30),
)
@pytest.mark.parametrize("peer", PEERS, ids=lambda p: p.name)
def test_acks_only_for_stored_records_in_order_and_nothing_lost(
    peer: Peer, script: list[str], reads: list[int], ticks: list[int]
) -> None:
    asyncio.run(run_schedule(peer, script, reads, ticks))


class LyingSpool(ScriptedSpool):
    """Says it stored what it did not: the property must catch the acks that follow."""

    def _store(self, records: Sequence[SpoolRecord]) -> list[int]:
        return list(range(len(records)))


@pytest.mark.parametrize("peer", PEERS, ids=lambda p: p.name)
def test_the_property_catches_an_ack_for_a_record_not_stored(peer: Peer) -> None:
    with pytest.raises(AssertionError, match="an ack for a record the spool does not hold"):
        asyncio.run(run_schedule(peer, ["now"], [len(peer.handshake) + 200], [1], LyingSpool))
