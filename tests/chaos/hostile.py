"""Hostile clients (raw sockets, from their own loopback address) and a relay that cuts connections in
the middle of a frame.

Hostile peers connect from 127.0.0.66 (all of 127.0.0.0/8 is loopback), so a per-peer limit can tell
them from the good senders on 127.0.0.1. Each hostile client is a blocking function meant for a thread
(``asyncio.to_thread``); every loop in it is bounded by a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from auditrecv.receive import dummy_mech
from auditrecv.receive.audisp_remote import HEADER_SIZE, MessageType, pack_frame
from auditrecv.receive.framing import encode_frame

HOSTILE_PEER = "127.0.0.66"
Protocol = Literal["audit_remote", "audisp_remote"]


# -- raw connections ----------------------------------------------------------------------------------------------


def connect_from(port: int, *, source: str = HOSTILE_PEER, rcvbuf: int = 0, timeout: float = 10.0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind((source, 0))
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    return sock


def read_frame(sock: socket.socket) -> bytes:
    head = _read_exactly(sock, 4)
    (length,) = struct.unpack(">I", head)
    return _read_exactly(sock, length)


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed by the receiver")
        buf += chunk
    return buf


def dummy_handshake(sock: socket.socket) -> None:
    """audit_remote version negotiation and a one-token dummy-mech context, as transport.c does."""
    sock.sendall(encode_frame(b"01"))
    if read_frame(sock) != b"01":
        raise ConnectionError("version negotiation refused")
    sock.sendall(encode_frame(dummy_mech.DummyInitiatorContext().step()))


def record_frame(seq: int, record: bytes) -> bytes:
    """One audit_remote record token: wrap(u64 seq || record), framed."""
    return encode_frame(dummy_mech.wrap(struct.pack(">Q", seq) + record))


def line_frame(seq: int, line: bytes) -> bytes:
    """One audisp-remote managed MESSAGE frame."""
    return pack_frame(MessageType.MESSAGE, seq, line)


def closed_by_receiver(sock: socket.socket, timeout: float) -> bool:
    """True once the receiver has closed the connection (EOF or reset), reading and discarding what it
    sends meanwhile; False if it is still open after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, min(1.0, deadline - time.monotonic())))
        try:
            if not sock.recv(65536):
                return True
        except TimeoutError:
            continue
        except OSError:
            return True
    return False


# -- the hostile behaviours -------------------------------------------------------------------------------------------


@dataclass
class HostileReport:
    """What a hostile client did and saw; `kept_open` lists what the receiver failed to close."""

    name: str
    connections: int = 0
    closed_by_receiver: int = 0
    kept_open: list[str] = field(default_factory=list)
    notes: dict[str, int] = field(default_factory=dict)


def garbage(ports: dict[Protocol, int], rounds: int = 20, seed: int = 14) -> HostileReport:
    """Random bytes from the first byte, and random bytes after a valid audit_remote handshake or
    after a valid audisp-remote header: every such connection must be closed, nothing stored."""
    rng = random.Random(seed)
    rep = HostileReport("garbage")
    for i in range(rounds):
        for proto, port in ports.items():
            junk = rng.randbytes(rng.randrange(64, 4096))
            with contextlib.closing(connect_from(port)) as sock:
                rep.connections += 1
                if i % 2 == 0:
                    payload = b"\xff\xff\xff\xff" + junk  # a frame length no receiver accepts
                elif proto == "audit_remote":
                    dummy_handshake(sock)
                    payload = encode_frame(junk)  # a record token that does not unwrap
                else:
                    payload = struct.pack("<I", 0x12345678) + junk  # wrong magic
                with contextlib.suppress(OSError):
                    sock.sendall(payload)
                if closed_by_receiver(sock, 15.0):
                    rep.closed_by_receiver += 1
                else:
                    rep.kept_open.append(f"{proto} round {i}")
    return rep


def oversized(ports: dict[Protocol, int], rounds: int = 10) -> HostileReport:
    """Frames announcing more than any limit: 4 GiB version token, a record token over
    max_record_token (then the bytes actually start coming), an audisp frame over max_message_bytes."""
    rep = HostileReport("oversized")
    big = b"x" * (1 << 20)
    for i in range(rounds):
        for proto, port in ports.items():
            with contextlib.closing(connect_from(port)) as sock:
                rep.connections += 1
                with contextlib.suppress(OSError):
                    if proto == "audit_remote":
                        if i % 2 == 0:
                            sock.sendall(struct.pack(">I", 0xFFFFFFFF))
                        else:
                            dummy_handshake(sock)
                            sock.sendall(struct.pack(">I", 4 * 1024 * 1024 + 1))
                            for _ in range(5):
                                sock.sendall(big)
                    else:
                        header = pack_frame(MessageType.MESSAGE, 2)[:HEADER_SIZE]
                        header = header[:10] + struct.pack("<H", 0xFFFF) + header[12:]
                        sock.sendall(header + big[:0xFFFF])
                if closed_by_receiver(sock, 15.0):
                    rep.closed_by_receiver += 1
                else:
                    rep.kept_open.append(f"{proto} round {i}")
    return rep


def slowloris(proto: Protocol, port: int, interval: float, timeout: float, stop: Callable[[], bool]) -> HostileReport:
    """A frame dribbled one byte every `interval` seconds (after a valid handshake for audit_remote):
    the receiver must close the connection within `timeout`."""
    rep = HostileReport(f"slowloris-{proto}")
    with contextlib.closing(connect_from(port)) as sock:
        rep.connections = 1
        if proto == "audit_remote":
            dummy_handshake(sock)
            frame = record_frame(1, b"\x14" + b"s" * 400)
        else:
            frame = line_frame(2, b"type=USER_END msg=audit(1700000000.000:1): " + b"s" * 400)
        deadline = time.monotonic() + timeout
        sent = 0
        while time.monotonic() < deadline and not stop() and sent < len(frame) - 1:
            try:
                sock.sendall(frame[sent : sent + 1])
            except OSError:
                rep.closed_by_receiver = 1
                break
            sent += 1
            if closed_by_receiver(sock, interval):
                rep.closed_by_receiver = 1
                break
        rep.notes["bytes_dribbled"] = sent
        if not rep.closed_by_receiver:
            rep.kept_open.append(f"{proto}: still open after {sent} bytes dribbled")
    return rep


def silent(
    proto: Protocol, port: int, count: int, hold: Callable[[], bool], timeout: float, opened: threading.Event
) -> HostileReport:
    """Open `count` connections and say nothing more (audit_remote: after a valid handshake, as an idle
    auditd does, so no handshake deadline applies); set `opened`; hold them until `hold()` returns False,
    counting how many the receiver closed (refused) meanwhile."""
    rep = HostileReport(f"silent-{proto}")
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            try:
                sock = connect_from(port, timeout=5.0)
            except OSError:
                rep.closed_by_receiver += 1
                continue
            socks.append(sock)
            rep.connections += 1
            if proto == "audit_remote":
                with contextlib.suppress(OSError):
                    dummy_handshake(sock)
        opened.set()
        deadline = time.monotonic() + timeout
        open_socks = list(socks)
        while hold() and time.monotonic() < deadline:
            still = []
            for sock in open_socks:
                sock.settimeout(0.0)
                try:
                    if sock.recv(65536) == b"":
                        rep.closed_by_receiver += 1
                        continue
                except BlockingIOError:
                    pass
                except OSError:
                    rep.closed_by_receiver += 1
                    continue
                still.append(sock)
            open_socks = still
            time.sleep(0.05)
        rep.notes["open_at_end"] = len(open_socks)
    finally:
        opened.set()
        for sock in socks:
            sock.close()
    return rep


def _proc_net_tcp_address(address: tuple[str, int]) -> str:
    return socket.inet_aton(address[0])[::-1].hex().upper() + f":{address[1]:04X}"


def tcp_queues(local: tuple[str, int], remote: tuple[str, int]) -> tuple[int, int] | None:
    """(tx_queue, rx_queue) bytes of the IPv4 TCP socket local->remote, from /proc/net/tcp: bytes the
    kernel still holds to send, and received bytes its process has not read yet."""
    want = (_proc_net_tcp_address(local), _proc_net_tcp_address(remote))
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            if (parts[1], parts[2]) == want:
                tx, rx = (int(x, 16) for x in parts[4].split(":"))
                return tx, rx
    return None


def never_reads_acks(port: int, record: bytes, records: int, *, stall_seconds: float, timeout: float) -> HostileReport:
    """audit_remote records pushed as fast as the receiver takes them, acks never read, tiny receive buffer.

    How many records the receiver's process has read is counted from the kernel: bytes pushed minus what
    both sockets' queues still hold. Ends when the receiver has read every record (it has no window: it
    kept reading while its acks piled up), or when it read nothing more for `stall_seconds` (a window), or
    at `timeout`. The records are all the same bytes, so however many are stored they make one document.
    """
    rep = HostileReport("never-reads-acks")
    frame = record_frame(7, record)
    burst = frame * 512
    total = len(frame) * records
    with contextlib.closing(connect_from(port, rcvbuf=4096)) as sock:
        rep.connections = 1
        dummy_handshake(sock)
        me = sock.getsockname()
        receiver_side = (("127.0.0.1", port), (me[0], me[1]))
        sock.setblocking(False)
        pushed = 0
        read = 0
        deadline = time.monotonic() + timeout
        last_progress = time.monotonic()
        while time.monotonic() < deadline:
            if pushed < total:
                offset = pushed % len(frame)
                try:
                    pushed += sock.send(burst[offset : offset + min(len(burst) - offset, total - pushed)])
                    continue
                except BlockingIOError:
                    pass
                except OSError:
                    break
            mine = tcp_queues((me[0], me[1]), ("127.0.0.1", port))
            theirs = tcp_queues(*receiver_side)
            if mine is not None and theirs is not None:
                now_read = pushed - mine[0] - theirs[1]
                if now_read != read:
                    read, last_progress = now_read, time.monotonic()
                if read >= total:
                    break
            if time.monotonic() - last_progress > stall_seconds:
                break
            time.sleep(0.05)
        rep.notes["pushed_records"] = pushed // len(frame)
        rep.notes["read_by_receiver"] = read // len(frame)
        rep.notes["records"] = records
    return rep


# -- a relay that cuts connections in the middle of a frame ------------------------------------------------------------


class _FrameTracker:
    """Follows frame boundaries of one direction of a stream: u32 BE length frames (audit_remote) or
    16-byte audisp-remote headers with a u16 LE payload length at offset 10."""

    def __init__(self, kind: Protocol) -> None:
        self.kind = kind
        self.header_len = 4 if kind == "audit_remote" else HEADER_SIZE
        self.header = b""
        self.remaining = 0  # payload bytes of the current frame still to come
        self.frames = 0

    def _payload_length(self) -> int:
        if self.kind == "audit_remote":
            return int(struct.unpack(">I", self.header)[0])
        return int(struct.unpack_from("<H", self.header, 10)[0])

    def cut_point(self, data: bytes, cut_after: int | None) -> int | None:
        """Consume `data`. Once `cut_after` frames have passed (None: never), return the offset in `data`
        at which to cut so that the frame in progress is split: some of its bytes sent, not all."""
        pos = 0
        while pos < len(data):
            armed = cut_after is not None and self.frames >= cut_after
            if len(self.header) < self.header_len:
                if armed:
                    return pos if self.header else pos + 1  # inside the header (it is never empty)
                take = min(self.header_len - len(self.header), len(data) - pos)
                self.header += data[pos : pos + take]
                pos += take
                if len(self.header) == self.header_len:
                    self.remaining = self._payload_length()
                    if self.remaining == 0:
                        self.header, self.frames = b"", self.frames + 1
                continue
            if armed:
                return pos  # header sent, payload not complete
            take = min(self.remaining, len(data) - pos)
            pos += take
            self.remaining -= take
            if self.remaining == 0:
                self.header, self.frames = b"", self.frames + 1
        return None


class CuttingRelay:
    """A TCP relay in front of one listener that cuts connections half-way through a frame.

    Connection k (k < `cuts`) is cut after it carried `after_frames` complete frames in the chosen
    direction: client→server (the receiver sees half a record, the client a reset) on even k,
    server→client (the client sees half an ack) on odd k. Later connections pass untouched.
    """

    def __init__(self, target_port: int, kind: Protocol, *, cuts: int, after_frames: int, seed: int = 14) -> None:
        self.target_port = target_port
        self.kind = kind
        self.cuts = cuts
        self.after_frames = after_frames
        self.rng = random.Random(seed)
        self.connections = 0
        self.cut_done: list[str] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> CuttingRelay:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        k = self.connections
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            self._tasks.discard(task)
            return
        cut_direction = None if k >= self.cuts else ("up" if k % 2 == 0 else "down")
        threshold = self.after_frames + self.rng.randrange(0, max(1, self.after_frames))
        done = asyncio.Event()

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, direction: str) -> None:
            tracker = _FrameTracker(self.kind)
            try:
                while data := await src.read(65536):
                    cut = tracker.cut_point(data, threshold if cut_direction == direction else None)
                    if cut is not None:
                        dst.write(data[:cut])
                        with contextlib.suppress(ConnectionError, OSError):
                            await dst.drain()
                        self.cut_done.append(f"connection {k} {direction} after {tracker.frames} frames")
                        break
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                done.set()

        tasks = [
            asyncio.create_task(pipe(reader, up_writer, "up")),
            asyncio.create_task(pipe(up_reader, writer, "down")),
        ]
        try:
            await done.wait()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            writer.transport.abort()
            up_writer.transport.abort()
            self._tasks.discard(task)


# -- a guard in front of the shared engine --------------------------------------------------------------------------


class EngineGuard:
    """HTTP pass-through to the engine that answers 413 to a `_bulk` body over `max_body` bytes, as a
    cluster's ``http.max_content_length`` (or a reverse proxy's body limit) would.

    Why: the test engine is shared by the whole session and has a 512 MiB heap; one 32 MB document of
    800 000 values (what an unbounded 4 MiB BSM record becomes) runs its write thread out of memory.
    """

    def __init__(self, target: str, max_body: int) -> None:
        self.target = target.rstrip("/")
        self.max_body = max_body
        self.refused: list[int] = []  # sizes of the bodies refused
        self.url = ""
        self._runner: Any = None
        self._session: Any = None

    async def start(self) -> EngineGuard:
        from aiohttp import ClientSession, ClientTimeout, web

        self._session = ClientSession(auto_decompress=False, timeout=ClientTimeout(total=120))
        app = web.Application(client_max_size=512 * 1024 * 1024)
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

        body = await request.read()  # already gunzipped by aiohttp: Content-Encoding is not passed on
        if request.path.endswith("/_bulk") and len(body) > self.max_body:
            self.refused.append(len(body))
            error = {"type": "content_too_long_exception", "reason": f"request body of {len(body)} bytes"}
            return web.json_response({"error": error, "status": 413}, status=413)
        passed = ("content-type", "accept", "authorization")
        headers = {k: v for k, v in request.headers.items() if k.lower() in passed}
        async with self._session.request(
            request.method, self.target + request.rel_url.path_qs, data=body, headers=headers
        ) as resp:
            payload = await resp.read()
            keep = ("content-type", "content-encoding")
            return web.Response(
                status=resp.status, body=payload, headers={k: v for k, v in resp.headers.items() if k.lower() in keep}
            )

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
