"""Proof that ``audisp_remote_factory`` drives the real audisp-remote: its frames arrive on a socket.

The listeners here are deliberately trivial (ack everything) and written from linux.md §3.2/§3.13, so they
check the client's bytes without depending on auditrecv's own receiver.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import gssapi
import gssapi.raw
import pytest

from tests.infra.audisp import AudispRemote, SyslogCatcher
from tests.infra.kdc import LINUX_SERVICE, TestKdc, linux_client_principal

pytestmark = pytest.mark.audisp

MAGIC = b"\xfe\x00\x00\xff"
HEADER = struct.Struct("<IBBIHI")  # magic, header version, message version, type, length, seq
TYPE_MESSAGE, TYPE_ACK, TYPE_ENDING = 0, 0x40000000, 0x40000001
LINES = [
    "type=USER_LOGIN msg=audit(1700000000.123:41): pid=1 uid=0 res=success",
    "node=h1 type=SYSCALL msg=audit(1700000000.124:42): arch=c000003e syscall=59 success=yes",
    'type=PROCTITLE msg=audit(1700000000.124:42): proctitle="ls"',
]


def header(msg_type: int, seq: int, length: int = 0) -> bytes:
    return HEADER.pack(0xFF0000FE, 0, 0, msg_type, length, seq)


@dataclass
class Frame:
    raw_header: bytes
    msg_type: int
    seq: int
    payload: bytes


@dataclass
class Listener:
    """Collects frames; ``reply(frame) -> header bytes | None`` decides each answer (default: ACK)."""

    reply: Callable[[Frame], bytes | None] = lambda f: header(TYPE_ACK, f.seq)
    frames: list[Frame] = field(default_factory=list)
    connections: int = 0
    initiators: list[str] = field(default_factory=list)


def parse_frame(data: bytes) -> Frame:
    magic, _hver, _mver, msg_type, length, seq = HEADER.unpack(data[:16])
    assert data[:4] == MAGIC and magic == 0xFF0000FE
    assert len(data) == 16 + length
    return Frame(data[:16], msg_type, seq, data[16:])


async def serve_tcp(listener: Listener) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        listener.connections += 1
        try:
            while True:
                head = await reader.readexactly(16)
                length = struct.unpack_from("<H", head, 10)[0]
                frame = parse_frame(head + await reader.readexactly(length))
                listener.frames.append(frame)
                answer = listener.reply(frame)
                if answer is not None:
                    writer.write(answer)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def serve_krb5(listener: Listener, keytab: str) -> asyncio.Server:
    """linux.md §3.13: BE u32 length + token; skip empty tokens; accept; unwrap frames; wrap replies."""
    creds = gssapi.Credentials(usage="accept", store={"keytab": keytab})

    async def read_token(reader: asyncio.StreamReader) -> bytes:
        (length,) = struct.unpack(">I", await reader.readexactly(4))
        return await reader.readexactly(length)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        listener.connections += 1
        ctx = gssapi.SecurityContext(creds=creds, usage="accept")
        try:
            while not ctx.complete:
                token = await read_token(reader)
                if not token:
                    continue  # the client's "someone has to go first" empty token
                out = ctx.step(token)
                if out:
                    writer.write(struct.pack(">I", len(out)) + out)
                    await writer.drain()
            listener.initiators.append(str(ctx.initiator_name))
            while True:
                unwrapped = gssapi.raw.unwrap(ctx, await read_token(reader))
                assert unwrapped.encrypted
                frame = parse_frame(unwrapped.message)
                listener.frames.append(frame)
                answer = listener.reply(frame)
                if answer is not None:
                    wrapped = ctx.wrap(answer, True).message
                    writer.write(struct.pack(">I", len(wrapped)) + wrapped)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def port_of(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


async def run_to_eof(client: AudispRemote, lines: list[str]) -> int:
    client.start()
    client.send_lines(lines)
    client.close_stdin()
    try:
        return await asyncio.to_thread(client.wait, 30)
    except Exception:
        raise AssertionError(
            f"audisp-remote did not exit; output: {client.output()}; syslog: {client.syslog_lines()}"
        ) from None


def assert_message_frames(frames: list[Frame]) -> None:
    assert [f.msg_type for f in frames] == [TYPE_MESSAGE] * len(LINES)
    assert [f.payload for f in frames] == [(line + "\n").encode() for line in LINES]
    seqs = [f.seq for f in frames]
    assert seqs == list(range(seqs[0], seqs[0] + len(LINES)))  # consecutive; 3.0.9 starts at 2
    for f in frames:
        assert f.raw_header == MAGIC + b"\x00\x00" + b"\x00\x00\x00\x00" + struct.pack("<HI", len(f.payload), f.seq)


async def test_tcp_frames_reach_an_ack_only_listener(
    audisp_remote_factory: Callable[..., AudispRemote],
) -> None:
    listener = Listener()
    server = await serve_tcp(listener)
    async with server:
        client = audisp_remote_factory("127.0.0.1", port_of(server))
        returncode = await run_to_eof(client, LINES)
    assert returncode == 0, client.output()
    assert_message_frames(listener.frames)
    assert listener.connections == 1


async def test_syslog_catcher_sees_remote_ending(audisp_remote_factory: Callable[..., AudispRemote]) -> None:
    """ENDING instead of the 2nd ACK: audisp-remote says so in syslog (linux.md §4.5 case 06)."""

    def reply(frame: Frame) -> bytes:
        return header(TYPE_ENDING, 0) if len(listener.frames) == 2 else header(TYPE_ACK, frame.seq)

    listener = Listener(reply=reply)
    server = await serve_tcp(listener)
    async with server:
        client = audisp_remote_factory("127.0.0.1", port_of(server))
        client.start()
        client.send_lines(LINES[:2])
        message = await asyncio.to_thread(client.wait_for_syslog, "remote server is going down", 20)
        client.kill()
    assert "remote logging disconnected" in message
    assert [f.payload for f in listener.frames] == [(line + "\n").encode() for line in LINES[:2]]


async def test_krb5_frames_unwrap_with_the_service_keytab(
    kdc: TestKdc, audisp_remote_factory: Callable[..., AudispRemote]
) -> None:
    listener = Listener()
    server = await serve_krb5(listener, str(kdc.service_keytab(LINUX_SERVICE)))
    async with server:
        client = audisp_remote_factory("127.0.0.1", port_of(server), transport="krb5", krb5_principal=LINUX_SERVICE)
        returncode = await run_to_eof(client, LINES)
    assert returncode == 0, (client.output(), client.syslog_lines())
    assert listener.initiators == [f"{linux_client_principal()}@AUDIT.TEST"]
    assert_message_frames(listener.frames)


def test_syslog_catcher_strips_glibc_prefixes(tmp_path: Path) -> None:
    catcher = SyslogCatcher(tmp_path / "log.sock")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(b"<13>Nov  2 19:10:29 audisp-remote: Connected to 127.0.0.1", str(catcher.path))
            s.sendto(b"<11>audisp-remote[123]: read from 127.0.0.1 failed\n", str(catcher.path))
        assert catcher.wait_for("failed", 5) == "read from 127.0.0.1 failed"
        assert catcher.messages() == ["Connected to 127.0.0.1", "read from 127.0.0.1 failed"]
        assert catcher.raw_lines()[0].startswith("<13>Nov  2 ")
        with pytest.raises(TimeoutError):
            catcher.wait_for("never logged", 0.2)
    finally:
        catcher.close()
