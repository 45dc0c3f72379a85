"""An emulator of the illumos ``audit_remote`` plugin's transport (``transport.c``), for tests,
demos and benchmarks.

It behaves as the real plugin does on the wire (specs/bsm.md §11), so the receiver can be tested
without an illumos host:

* connect, send ``"01"``, require ``"01"`` back; channel-binding application data ``"0101"``;
* ``init_sec_context`` for ``audit@<service host>`` with MUTUAL|REPLAY|SEQUENCE|CONF and NULLADDR
  bindings, Kerberos through python-gssapi or illumos ``mech_dummy`` natively; send a token only
  when non-empty, read one only while CONTINUE_NEEDED;
* per record: ``wrap(conf, u64 seq ‖ record)``, keep ``(seq, plaintext)`` in the transmission
  queue, send at once (pipelined, no waiting);
* acks ``u64 seq ‖ MIC``: find the first queued node with that seq and verify the MIC against its
  plaintext (BAD_SIG → try the next node with that seq); an ack that does not verify, a token
  over 128 000 bytes, or a receive failure resets the connection; the queue is retransmitted with
  the original sequence numbers, re-wrapped in the new context, before any new record;
* a full queue (``qsize`` unacked records) makes ``send_record`` refuse the record; with the
  default ``cnt`` audit policy auditd then drops it (counted in ``stats.dropped``).

Usage: ``python -m auditrecv.testclient.illumos --host H --port P --mech kerberos_v5|dummy FILE...``
sends every BSM record of the trail files and reports how many were acked, the rate and the ack
latency. ``--hosts N`` emulates N hosts at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import statistics
import struct
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditrecv.receive import dummy_mech
from auditrecv.receive.framing import FrameDecoder, FrameError, encode_frame

__all__ = ["ClientStats", "IllumosClient", "TransportReset", "main", "split_trail"]

log = logging.getLogger("auditrecv.testclient.illumos")

MAX_TOK_LEN = 128 * 1000  # transport.c refuses longer incoming tokens
VERSION = b"01"
_SEQ = struct.Struct(">Q")
_HEADER_IDS = {0x14, 0x15, 0x74, 0x79}  # header32, header32_ex, header64, header64_ex


class TransportReset(Exception):
    """The connection could not be (re)established; ``send_record`` would move to the next host."""


def split_trail(data: bytes) -> Iterator[bytes]:
    """The records of a BSM trail file, header to end, as auditd would hand them to a plugin.

    File tokens (0x11, 0x78) between records are skipped (auditd never sends them). Stops at the
    first byte that starts neither a record nor a file token.
    """
    pos = 0
    n = len(data)
    while pos < n:
        tid = data[pos]
        if tid in _HEADER_IDS and pos + 5 <= n:
            (length,) = struct.unpack_from(">I", data, pos + 1)
            if length < 5 or pos + length > n:
                return
            yield data[pos : pos + length]
            pos += length
        elif tid == 0x11 and pos + 11 <= n:
            (name_len,) = struct.unpack_from(">H", data, pos + 9)
            pos += 11 + name_len
        elif tid == 0x78 and pos + 19 <= n:
            (name_len,) = struct.unpack_from(">H", data, pos + 17)
            pos += 19 + name_len
        else:
            return


@dataclass
class ClientStats:
    connects: int = 0
    resets: int = 0
    sent: int = 0  # records sent the first time
    retransmitted: int = 0
    acked: int = 0
    dropped: int = 0  # refused because the queue was full (auditd drops them under `cnt`)
    unverifiable: int = 0
    reset_reasons: list[str] = field(default_factory=list)
    ack_latencies: list[float] = field(default_factory=list)  # seconds, first send to ack
    # connection number -> seq -> how many acks verified for it on that connection
    acks_per_connection: dict[int, Counter[int]] = field(default_factory=dict)


@dataclass(eq=False)
class _Node:
    seq: int
    plaintext: bytes
    first_sent: float = 0.0


class IllumosClient:
    """One emulated illumos host sending to one receiver.

    ``mech``: "kerberos_v5" or "dummy". ``channel_bindings=False`` sends none (to test that the
    receiver requires them); ``app_data`` overrides the "0101" binding data. ``ccache`` /
    ``principal`` select the client credential (default: the default ccache).
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        mech: str = "kerberos_v5",
        service_host: str = "localhost",
        qsize: int = 100,
        timeout: float = 5.0,
        channel_bindings: bool = True,
        app_data: bytes | None = None,
        ccache: str | None = None,
        principal: str | None = None,
        dummy_token_nums: int = 1,
        first_seq: int = 1,
    ) -> None:
        if mech not in ("kerberos_v5", "dummy"):
            raise ValueError(f"mech {mech!r}: expected kerberos_v5 or dummy")
        self.host = host
        self.port = port
        self.mech = mech
        self.service_host = service_host
        self.qsize = qsize
        self.timeout = timeout
        self.channel_bindings = channel_bindings
        self.app_data = app_data
        self.ccache = ccache
        self.principal = principal
        self.dummy_token_nums = dummy_token_nums
        self.next_seq = first_seq
        self.stats = ClientStats()
        self.transq: list[_Node] = []
        self.flush_transq = False
        self.connection_no = 0
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._ctx: Any = None
        self._recv_task: asyncio.Task[None] | None = None
        self._queue_changed = asyncio.Event()

    # ------------------------------------------------------------------ connection

    @property
    def connected(self) -> bool:
        return self._writer is not None

    async def connect(self) -> None:
        """sock_prepare + prot_ver_negotiate + establish_context, then retransmit the queue."""
        if self.connected:
            return
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), self.timeout
            )
        except (OSError, TimeoutError) as exc:
            raise TransportReset(f"connect: {exc!r}") from None
        try:
            await self._negotiate_version()
            await self._establish_context()
        except Exception as exc:
            await self._close_socket()
            raise TransportReset(f"handshake: {exc!r}") from None
        self.connection_no += 1
        self.stats.connects += 1
        self.stats.acks_per_connection[self.connection_no] = Counter()
        assert self._reader is not None
        self._recv_task = asyncio.create_task(self._recv_loop(self._reader, self.connection_no))
        if self.flush_transq:
            for node in list(self.transq):
                self._send_node(node)
                self.stats.retransmitted += 1
            self.flush_transq = False

    async def _recv_token(self, max_len: int = MAX_TOK_LEN) -> bytes:
        assert self._reader is not None
        head = await asyncio.wait_for(self._reader.readexactly(4), self.timeout)
        (length,) = struct.unpack(">I", head)
        if length > max_len:
            raise TransportReset("Indicated invalid token length")
        return await asyncio.wait_for(self._reader.readexactly(length), self.timeout)

    def _send(self, payload: bytes) -> None:
        assert self._writer is not None
        self._writer.write(encode_frame(payload))

    async def _negotiate_version(self) -> None:
        self._send(VERSION)
        reply = await self._recv_token()
        if reply != VERSION:
            raise TransportReset(f"version negotiation: server replied {reply!r}")
        self._bindings_data = VERSION + reply

    async def _establish_context(self) -> None:
        app_data = self.app_data if self.app_data is not None else self._bindings_data
        if self.mech == "dummy":
            ctx: Any = dummy_mech.DummyInitiatorContext(self.dummy_token_nums)
        else:
            from auditrecv.receive.gss import KerberosInitiator  # loads GSS only when Kerberos is used

            ctx = KerberosInitiator(
                self.service_host, app_data if self.channel_bindings else None, self.ccache, self.principal
            )
        token: bytes | None = None
        while True:
            out = ctx.step(token)
            if out:
                self._send(out)
            if ctx.complete:
                break
            token = await self._recv_token()
        assert self._writer is not None
        await self._writer.drain()
        self._ctx = ctx

    async def _close_socket(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        self._ctx = None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _reset(self, reason: str) -> None:
        """transport.c ``do_reset``: close, drop the context, flag the queue for retransmission."""
        if self._writer is None:
            return
        self.stats.resets += 1
        self.stats.reset_reasons.append(reason)
        log.debug("reset: %s", reason)
        writer, self._writer, self._reader = self._writer, None, None
        self._ctx = None
        writer.close()
        if self.transq:
            self.flush_transq = True
        self._queue_changed.set()

    # ------------------------------------------------------------------ sending

    def _send_node(self, node: _Node) -> None:
        token = self._ctx.wrap(node.plaintext)
        if not node.first_sent:
            node.first_sent = time.perf_counter()
        self._send(token)

    async def send_record(self, record: bytes, seq: int | None = None) -> bool:
        """``auditd_plugin`` + ``send_record``: False when the queue is full (auditd would drop the
        record under the default ``cnt`` policy). Connects (and retransmits) first if needed;
        raises TransportReset if that fails."""
        if len(self.transq) >= self.qsize:
            self.stats.dropped += 1
            return False
        if not self.connected:
            await self.connect()
        if seq is None:
            seq = self.next_seq
            self.next_seq += 1
        node = _Node(seq, _SEQ.pack(seq) + record)
        self.transq.append(node)
        self._send_node(node)
        self.stats.sent += 1
        return True

    async def send_records(self, records: Sequence[bytes], *, wait_when_full: bool = False) -> int:
        """Send many; with ``wait_when_full`` wait for acks instead of dropping (no ``cnt``).
        Returns the number accepted into the queue."""
        accepted = 0
        for rec in records:
            while wait_when_full and len(self.transq) >= self.qsize:
                await self._wait_queue_change()
            if await self.send_record(rec):
                accepted += 1
            if self._writer is not None and self._writer.transport.get_write_buffer_size() > 1 << 20:
                await self._drain()
        await self._drain()
        return accepted

    async def _drain(self) -> None:
        writer = self._writer
        if writer is not None:
            try:
                await writer.drain()
            except (ConnectionError, OSError) as exc:
                if self._writer is writer:
                    self._reset(f"send failed: {exc!r}")

    async def _wait_queue_change(self) -> None:
        self._queue_changed.clear()
        if not self.connected and self.transq:
            await self.connect()
            return
        await self._queue_changed.wait()

    async def wait_all_acked(self, timeout: float = 10.0, *, reconnect: bool = True) -> bool:
        """Wait until the transmission queue is empty; reconnects (and retransmits) after a reset
        when ``reconnect``, as the next record from auditd would. False on timeout."""
        try:
            async with asyncio.timeout(timeout):
                while self.transq:
                    if not self.connected:
                        if not reconnect:
                            return False
                        try:
                            await self.connect()
                        except TransportReset:
                            await asyncio.sleep(0.05)
                        continue
                    self._queue_changed.clear()
                    await self._queue_changed.wait()
        except TimeoutError:
            return False
        return True

    async def wait_disconnected(self, timeout: float = 10.0) -> bool:
        """Wait until the connection is gone (closed by the server or lost); False on timeout."""
        try:
            async with asyncio.timeout(timeout):
                while self.connected:
                    self._queue_changed.clear()
                    await self._queue_changed.wait()
        except TimeoutError:
            return False
        return True

    # ------------------------------------------------------------------ receiving

    async def _recv_loop(self, reader: asyncio.StreamReader, connection_no: int) -> None:
        frames = FrameDecoder(MAX_TOK_LEN)
        counts = self.stats.acks_per_connection[connection_no]
        try:
            while self._reader is reader:
                data = await reader.read(65536)
                if not data:
                    self._reset("token receive failed (server closed the connection)")
                    return
                try:
                    frames.feed(data)
                    for token in frames.frames():
                        if self._reader is not reader:
                            return
                        self._on_ack(token, counts)
                except FrameError:
                    self._reset("Indicated invalid token length")
                    return
        except (ConnectionError, OSError) as exc:
            if self._reader is reader:
                self._reset(f"token receive failed: {exc!r}")

    def _on_ack(self, token: bytes, counts: Counter[int]) -> None:
        if len(token) < 8:
            self._unverifiable(f"ack of {len(token)} bytes")
            return
        (seq,) = _SEQ.unpack_from(token)
        mic = token[8:]
        verified = False
        for node in self.transq:
            if node.seq != seq:
                continue
            result = self._ctx.verify_mic(node.plaintext, mic)
            if result is False:
                continue  # BAD_SIG: try the next node with the same seq
            if result:
                self.transq.remove(node)
                verified = True
                counts[seq] += 1
                self.stats.acked += 1
                self.stats.ack_latencies.append(time.perf_counter() - node.first_sent)
                self._queue_changed.set()
            break
        if not verified:
            self._unverifiable(f"ack for seq {seq}")

    def _unverifiable(self, what: str) -> None:
        self.stats.unverifiable += 1
        log.warning("received unverifiable token (%s)", what)
        self._reset(f"received unverifiable token ({what})")

    # ------------------------------------------------------------------ shutdown

    async def close(self) -> None:
        task, self._recv_task = self._recv_task, None
        await self._close_socket()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def abort_connection(self) -> None:
        """Drop the TCP connection without ceremony (as a crash or network loss would)."""
        if self._writer is not None:
            self._writer.transport.abort()
            self._reset("connection aborted by the test")


# ---------------------------------------------------------------------- command line


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_hosts(
    host: str,
    port: int,
    records: Sequence[bytes],
    *,
    hosts: int = 1,
    timeout: float = 60.0,
    drop_when_full: bool = False,
    **client_args: Any,
) -> tuple[list[IllumosClient], float]:
    """Run ``hosts`` emulated hosts, each sending all ``records`` and waiting for every ack.
    A full queue makes a host wait, or drop the record with ``drop_when_full`` (auditd's ``cnt``
    policy). Returns the clients and the elapsed seconds."""
    clients = [IllumosClient(host, port, **client_args) for _ in range(hosts)]

    async def one(client: IllumosClient) -> None:
        await client.connect()
        await client.send_records(records, wait_when_full=not drop_when_full)
        await client.wait_all_acked(timeout)

    start = time.perf_counter()
    try:
        await asyncio.gather(*(one(c) for c in clients))
    finally:
        elapsed = time.perf_counter() - start
        for c in clients:
            await c.close()
    return clients, elapsed


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m auditrecv.testclient.illumos",
        description="Send BSM records from trail files the way illumos audit_remote does.",
    )
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=16162)
    ap.add_argument("--mech", choices=("kerberos_v5", "dummy"), default="kerberos_v5")
    ap.add_argument("--service-host", default="localhost", help="target is audit@SERVICE_HOST")
    ap.add_argument("--ccache", help="client credential cache (default: KRB5CCNAME)")
    ap.add_argument("--qsize", type=int, default=100, help="unacked window (audit_remote qsize)")
    ap.add_argument("--hosts", type=int, default=1, help="concurrent emulated hosts")
    ap.add_argument("--repeat", type=int, default=1, help="send the records this many times")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument(
        "--cnt", action="store_true", help="drop records while the queue is full, as auditd's cnt policy does"
    )
    ap.add_argument("files", nargs="+", type=Path, help="BSM trail files")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")

    records: list[bytes] = []
    for path in args.files:
        records.extend(split_trail(path.read_bytes()))
    records *= max(1, args.repeat)
    if not records:
        print("no BSM records found in the given files", file=sys.stderr)
        return 2
    try:
        clients, elapsed = asyncio.run(
            run_hosts(
                args.host,
                args.port,
                records,
                hosts=args.hosts,
                timeout=args.timeout,
                drop_when_full=args.cnt,
                mech=args.mech,
                service_host=args.service_host,
                ccache=args.ccache,
                qsize=args.qsize,
            )
        )
    except TransportReset as exc:
        print(f"connection failed: {exc}", file=sys.stderr)
        return 1
    total = len(records) * args.hosts
    acked = sum(c.stats.acked for c in clients)
    lat = [x for c in clients for x in c.stats.ack_latencies]
    print(
        f"{acked}/{total} records acked from {args.hosts} host(s) in {elapsed:.3f} s "
        f"({acked / elapsed if elapsed else 0:.0f} rec/s); ack latency p50 "
        f"{_percentile(lat, 0.5) * 1000:.2f} ms, p99 {_percentile(lat, 0.99) * 1000:.2f} ms; "
        f"resets {sum(c.stats.resets for c in clients)}, retransmitted "
        f"{sum(c.stats.retransmitted for c in clients)}, dropped (queue full) "
        f"{sum(c.stats.dropped for c in clients)}"
    )
    if lat:
        log.info("mean latency %.3f ms", statistics.fmean(lat) * 1000)
    dropped = sum(c.stats.dropped for c in clients)
    return 0 if acked + dropped == total and (args.cnt or dropped == 0) else 1


if __name__ == "__main__":
    sys.exit(main())
