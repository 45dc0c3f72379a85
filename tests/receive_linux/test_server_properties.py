"""The one receive server's promises, under generated schedules (no sockets: a fake transport).

A pipelining audisp-remote peer sends numbered records in reads cut anywhere, while the spool
takes them at once (the ack journal) or declines and makes the server await an append that may
yield, say "full" (until room is made) or fail with an I/O error. Whatever the schedule:

* an ack is only ever sent for a record the spool holds, each record is acked once, in order;
* the window holds: the server never has more records of one connection waiting than allowed;
* nothing is lost: once the spool works again, every record sent is stored and acked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditrecv.config import AudispRemoteListener, Gss
from auditrecv.receive import server as server_module
from auditrecv.receive.audisp_remote import HEADER, HEADER_SIZE, MessageType, pack_frame
from auditrecv.receive.listeners import AudispRemoteListenerPolicy
from auditrecv.receive.server import ReceiveServer, _ReceiverProtocol
from auditrecv.spool import SpoolFull, SpoolRecord, SpoolState

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


def acks(sent: bytes) -> list[int]:
    seqs = []
    for pos in range(0, len(sent), HEADER_SIZE):
        _magic, _h, _m, msg_type, _length, seq = HEADER.unpack_from(sent, pos)
        assert msg_type == MessageType.ACK
        seqs.append(seq)
    return seqs


def line(seq: int) -> bytes:
    return b'type=CWD msg=audit(1.0:%d): cwd="/"' % seq


async def run_schedule(
    script: list[str], reads: list[int], ticks: list[int], spool_type: type[ScriptedSpool] = ScriptedSpool
) -> None:
    spool = spool_type(script)
    settings_ = AudispRemoteListener(host="127.0.0.1", port=0, max_records_in_flight=WINDOW)
    server = ReceiveServer(AudispRemoteListenerPolicy(settings_, Gss()), spool, name="prop")  # type: ignore[arg-type]
    protocol = _ReceiverProtocol(server)
    transport = FakeTransport()
    protocol.connection_made(transport)
    stream = b"".join(pack_frame(MessageType.MESSAGE, seq, line(seq) + b"\n") for seq in range(1, 25))
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
        acked = acks(bytes(transport.sent))
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
        if len(acks(bytes(transport.sent))) == 24:
            break
        await asyncio.sleep(0)
    acked = acks(bytes(transport.sent))
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
def test_acks_only_for_stored_records_in_order_and_nothing_lost(
    script: list[str], reads: list[int], ticks: list[int]
) -> None:
    asyncio.run(run_schedule(script, reads, ticks))


class LyingSpool(ScriptedSpool):
    """Says it stored what it did not: the property must catch the acks that follow."""

    def _store(self, records: Sequence[SpoolRecord]) -> list[int]:
        return list(range(len(records)))


def test_the_property_catches_an_ack_for_a_record_not_stored() -> None:
    with pytest.raises(AssertionError, match="an ack for a record the spool does not hold"):
        asyncio.run(run_schedule(["now"], [200], [1], LyingSpool))
