"""Seed inputs for the fuzz targets, from real sessions wherever one can be had.

* audit_remote: the bytes auditrecv.testclient.illumos (the transport.c emulator) really sends in a dummy-mech
  session carrying BSM fixture records, captured on loopback (one- and two-round handshakes);
* audisp_managed / audisp_ascii: the captures of the real audisp-remote 3.0.9 in the shared fixtures;
* audisp_krb5: the managed frames of such a capture, behind the fake context's handshake and wrap tokens;
* spool_codec: encoded sources as the spool stores them.

Every seed is ``ctrl byte ‖ stream`` (see tests/fuzz/targets.py); each stream is given whole and cut.
"""

from __future__ import annotations

import asyncio
import functools
import struct

from auditrecv.receive.audisp_remote import HEADER, HEADER_SIZE
from auditrecv.receive.audit_remote import AuditRemoteConnection
from auditrecv.receive.contract import RecordReceived
from auditrecv.receive.framing import encode_frame as frame_token
from auditrecv.spool.record import Source
from auditrecv.spool.store import _source_json
from auditrecv.testclient.illumos import IllumosClient, split_trail
from tests.fuzz.targets import audit_remote_policy
from tests.paths import BSM_FIXTURES, LINUX_FIXTURES

CAPTURES = LINUX_FIXTURES / "audisp-remote" / "captures"
CTRLS = (0, 7)  # one read, and a cut into small reads


async def _capture_illumos_session(records: list[bytes], token_nums: int) -> bytes:
    """Everything the emulated illumos host sends in one session, as the server read it."""
    captured = bytearray()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = AuditRemoteConnection(audit_remote_policy())
        while data := await reader.read(65536):
            captured.extend(data)
            for event in conn.receive_data(data, 0):
                if isinstance(event, RecordReceived):
                    conn.ack(event.ack_token)
            writer.write(conn.data_to_send())
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = IllumosClient("127.0.0.1", port, mech="dummy", dummy_token_nums=token_nums, timeout=10)
    try:
        await client.connect()
        await client.send_records(records, wait_when_full=True)
        if not await client.wait_all_acked(30, reconnect=False):
            raise RuntimeError(f"seed session: records not acked ({client.stats.reset_reasons})")
    finally:
        await client.close()
        server.close()
        await server.wait_closed()
    return bytes(captured)


@functools.cache
def audit_remote_seeds() -> tuple[bytes, ...]:
    records = list(split_trail((BSM_FIXTURES / "plaso" / "openbsm.bsm").read_bytes()))[:6]
    sessions = [
        asyncio.run(_capture_illumos_session(records, 1)),
        asyncio.run(_capture_illumos_session(records[:2], 2)),
    ]
    return tuple(bytes([ctrl]) + s for s in sessions for ctrl in CTRLS)


def _managed_captures() -> list[bytes]:
    return [
        p.read_bytes()
        for p in sorted(CAPTURES.glob("*.bin"))
        if not p.name.startswith(("08-", "20-", "30-", "31-")) and ".s2c." not in p.name
    ]


@functools.cache
def audisp_managed_seeds() -> tuple[bytes, ...]:
    return tuple(bytes([ctrl]) + c for c in _managed_captures() for ctrl in CTRLS)


@functools.cache
def audisp_ascii_seeds() -> tuple[bytes, ...]:
    lines = (CAPTURES / "input-events.log").read_bytes()[:3000]
    streams = [(CAPTURES / "08-ascii-format-conn1.bin").read_bytes(), lines]
    return tuple(bytes([ctrl]) + s for s in streams for ctrl in CTRLS)


def _frames(stream: bytes) -> list[bytes]:
    out = []
    pos = 0
    while len(stream) - pos >= HEADER_SIZE:
        length = HEADER.unpack_from(stream, pos)[4]
        out.append(stream[pos : pos + HEADER_SIZE + length])
        pos += HEADER_SIZE + length
    return out


@functools.cache
def audisp_krb5_seeds() -> tuple[bytes, ...]:
    frames = _frames((CAPTURES / "01-basic-ack-conn1.bin").read_bytes())[:4]
    hello = b"auditd/client.fuzz.test@FUZZ.TEST\x00auditd/receiver.fuzz.test@FUZZ.TEST"
    one_round = frame_token(b"") + frame_token(b"I\x00" + hello)
    two_rounds = frame_token(b"") + frame_token(b"I\x01") + frame_token(b"I\x00" + hello)
    data = b"".join(frame_token(b"W" + f) for f in frames)
    return tuple(bytes([ctrl]) + hs + data for hs in (one_round, two_rounds) for ctrl in CTRLS)


@functools.cache
def spool_codec_seeds() -> tuple[bytes, ...]:
    sources = [
        Source("audit_remote", "192.0.2.7", 40000, "krb5", "host/a.example@AUDIT.TEST", True, "audit_remote"),
        Source("audisp_remote", "2001:db8::1", 60, "", "", False, "linux-tcp"),
        Source("import", "trail-\udcff.bsm", 0, "", "", False, ""),
    ]
    out = [_source_json(s).encode() for s in sources]
    port = struct.pack(">H", 40000)
    out.append(b"audit_remote\x00192.0.2.7\x00" + port + b"\x00krb5\x00p@R\x00\x01\x00l\x00" + bytes(8))
    return tuple(out)


SEEDS = {
    "audit_remote": audit_remote_seeds,
    "audisp_managed": audisp_managed_seeds,
    "audisp_ascii": audisp_ascii_seeds,
    "audisp_krb5": audisp_krb5_seeds,
    "spool_codec": spool_codec_seeds,
}
