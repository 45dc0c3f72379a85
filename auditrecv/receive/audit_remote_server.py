"""asyncio server for illumos ``audit_remote``: a thin shell around the sans-I/O core.

Per connection two tasks cooperate:

* the *reader* reads bytes, feeds :class:`~auditrecv.receive.audit_remote.AuditRemoteConnection`,
  writes handshake replies and queues unwrapped records;
* the *committer* takes every record queued so far, appends them to the spool in one call (the
  spool group-commits across connections), and only when that returned writes their acks.

So the ack path is exactly: unwrap → durable append → MIC → write. Decoding, mapping and indexing
happen elsewhere, from the spool. With the default ``cnt`` policy an illumos host drops records
once ``qsize`` (default 100) records are unacked, so ack latency is the per-host throughput cap
(bsm.md §11.10).

When the spool is full nothing is acked (the host keeps the records); the committer waits for
space and retries, logging once. Every failure closes only its own connection, with one log
line saying why; the client reconnects and retransmits what was not acked.

One connection cannot hurt the others (see :mod:`~auditrecv.receive.flow`): at most
``max_records_in_flight`` records per connection wait for the spool, and the reader stops while
that window is full or while more acks than the transport's high-water mark are unread (a
client that never reads its acks is slowed to nothing, then closed after ``stall_timeout``).
Admission (per-peer cap, eviction of silent unauthenticated sockets) is in
:mod:`~auditrecv.receive.access`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from auditrecv.config import AuditRemoteListener, Gss
from auditrecv.metrics import ConnectionSnapshot, ListenerStats
from auditrecv.netaddr import principal_host
from auditrecv.receive.access import ConnectionLimiter, NetworkAllowlist, ThrottledLog, Ticket, peer_of
from auditrecv.receive.audit_remote import (
    AuditRemoteConnection,
    AuditRemotePolicy,
    Failed,
    HandshakeComplete,
    Phase,
    RecordReceived,
)
from auditrecv.receive.flow import (
    Deadlines,
    InFlightWindow,
    close_now,
    replies_piled_up,
    unsent_bytes,
    wait_for_write_room,
)
from auditrecv.receive.gss import GssFailure, KerberosAcceptor, PrincipalAllowlist
from auditrecv.spool import Source, SpoolFull, SpoolRecord

__all__ = ["AuditRemoteServer", "AuditRemoteStats", "SpoolAppender", "start_audit_remote_server"]

log = logging.getLogger("auditrecv.receive.audit_remote")

READ_CHUNK = 256 * 1024
# Bytes of records one connection may have waiting for the spool before we stop reading from it
# (next to max_records_in_flight, for large records). A real client never comes near.
MAX_IN_FLIGHT_BYTES = 16 * 1024 * 1024
SPOOL_RETRY_SECONDS = 1.0
ACCEPTOR_RETRY_SECONDS = 30.0


class SpoolAppender(Protocol):
    """The one spool call a receiver needs: returns once the records are durably committed."""

    async def append(self, records: list[SpoolRecord]) -> Sequence[int]: ...


def _is_spool_full(exc: BaseException) -> bool:
    """SpoolFull (backpressure, retry later), or a test double of it (matched by name)."""
    return isinstance(exc, SpoolFull) or type(exc).__name__.endswith("SpoolFull")


@dataclass
class AuditRemoteStats:
    """Counters for metrics and tests (monotonic, except ``active``)."""

    accepted: int = 0
    active: int = 0
    refused_address: int = 0
    refused_limit: int = 0  # max_connections
    evicted: int = 0  # connections closed to admit a newcomer (see access.ConnectionLimiter)
    handshakes: int = 0
    failures: int = 0
    gss_failures: int = 0  # ... of which a GSS-API failure (context refused or expired, unwrap failed)
    timeouts: int = 0  # handshake, stalled frame, unread acks (idle closes are not counted)
    received: int = 0  # records unwrapped and queued for the spool
    records: int = 0  # ... stored by the spool
    acks: int = 0
    record_bytes: int = 0
    spool_full_waits: int = 0
    window_pauses: int = 0  # reads paused because max_records_in_flight were waiting for the spool
    backlog_pauses: int = 0  # reads paused because the peer left our acks unread
    in_flight_peak: int = 0  # most records one connection had waiting for the spool
    reads_ended: int = 0  # connections that stopped reading (peer gone, error, shutdown); commits may still run
    unsent_peak: int = 0  # most bytes of acks one connection had unread in our send buffer


class AuditRemoteServer:
    """One listening socket. Use :func:`start_audit_remote_server` to create and start it."""

    def __init__(
        self,
        settings: AuditRemoteListener,
        spool: SpoolAppender,
        *,
        acceptor: KerberosAcceptor | None,
        name: str = "audit_remote",
        keytab: str = "",
    ) -> None:
        self.settings = settings
        self.spool = spool
        self.acceptor = acceptor
        self.name = name
        self.keytab = keytab
        self.acceptor_error = ""
        self._acceptor_retry_at = 0.0
        self.stats = AuditRemoteStats()
        self.peers = NetworkAllowlist(settings.allow, empty_allows_all=True)
        # Opt-in: an empty network list means "every peer that passed `allow`" (bsm.md §12.6:
        # "optionally restricted to listed source CIDRs").
        # The dummy mech authenticates nobody: only networks named for it may use it, never "any".
        self.dummy_peers = NetworkAllowlist(settings.dummy_mech_networks, empty_allows_all=False)
        self.principals = PrincipalAllowlist(settings.allowed_principals)
        self.limiter = ConnectionLimiter(settings.max_connections, settings.max_connections_per_peer)
        self.throttled = ThrottledLog(log)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sessions: set[_Session] = set()  # for connections()
        self._spool_full_logged = False

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._on_connection, self.settings.host, self.settings.port, limit=READ_CHUNK
        )

    @property
    def sockets(self) -> tuple[Any, ...]:
        return tuple(self._server.sockets) if self._server is not None else ()

    @property
    def metrics(self) -> dict[str, int]:
        """The counters by name, for tests and logs (/metrics reads ``listener_stats()``)."""
        return dataclasses.asdict(self.stats)

    def connections(self) -> list[ConnectionSnapshot]:
        """The senders connected now, for the status page."""
        out = []
        for session in list(self._sessions):
            src = session.source  # None until the handshake completes
            name = (principal_host(src.principal) or "") if src is not None else ""
            out.append(
                ConnectionSnapshot(
                    listener=self.name,
                    protocol="audit_remote",
                    peer=session.peer,
                    peer_port=session.peer_port,
                    name=name,
                    mech=src.mech if src is not None else "",
                    principal=src.principal if src is not None else "",
                    authenticated=src.authenticated if src is not None else False,
                    connected_at=session.connected_at,
                    records=session.records,
                    last_record_at=session.last_record_at or None,
                )
            )
        return out

    def listener_stats(self) -> ListenerStats:
        """This listener's counters for /metrics (auditrecv.metrics.ListenersCollector)."""
        st = self.stats
        return ListenerStats(
            listener=self.name,
            protocol="audit_remote",
            connections_accepted=st.accepted,
            connections_refused=st.refused_address + st.refused_limit,
            connections_evicted=st.evicted,
            connections_active=st.active,
            connections_failed=st.failures,
            timeouts=st.timeouts,
            gss_failures=st.gss_failures,
            records_received=st.received,
            records_acked=st.acks,
            spool_full_waits=st.spool_full_waits,
        )

    @property
    def port(self) -> int:
        """The bound port (useful with ``port = 0`` in tests)."""
        for sock in self.sockets:
            return int(sock.getsockname()[1])
        return self.settings.port

    def close(self) -> None:
        """Stop accepting and drop open connections (unacked records are retransmitted by hosts)."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()

    async def wait_closed(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    # ----------------------------------------------------------------- connections

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # The session runs in its own task so close() can cancel it while this callback task
        # ends normally (Python 3.11's start_server logs a cancelled callback task as an error).
        session = asyncio.create_task(self._serve(reader, writer))
        self._tasks.add(session)
        try:
            await session
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # we are being cancelled ourselves (loop shutdown)
        finally:
            self._tasks.discard(session)
            close_now(writer)
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer, peer_port = peer_of(writer.get_extra_info("peername"))
        if not self.peers.allows(peer):
            self.stats.refused_address += 1
            self.throttled.warning("refused", "%s: refused %s:%d: address not in allow", self.name, peer, peer_port)
            return
        admission = self.limiter.admit(peer, peer_port)
        ticket = admission.ticket
        if ticket is None:
            self.stats.refused_limit += 1
            self.throttled.warning("refused", "%s: refused %s:%d: %s", self.name, peer, peer_port, admission.refusal)
            return
        if admission.evicted is not None:
            self.stats.evicted += 1
        self.stats.accepted += 1
        self.stats.active += 1
        try:
            session = _Session(self, reader, writer, peer, peer_port, ticket)
            ticket.close = session.abort
            self._sessions.add(session)
            try:
                await session.run()
            finally:
                self._sessions.discard(session)
        except Exception:  # a bug must not take the listener down
            log.exception("%s: connection from %s:%d crashed", self.name, peer, peer_port)
        finally:
            self.stats.active -= 1
            self.limiter.release(ticket)

    def load_acceptor(self) -> KerberosAcceptor | None:
        """(Re)acquire acceptor credentials from the keytab; logs and returns None on failure."""
        self._acceptor_retry_at = time.monotonic() + ACCEPTOR_RETRY_SECONDS
        try:
            self.acceptor = KerberosAcceptor(self.keytab, self.settings.acceptor_principal)
        except GssFailure as exc:
            if str(exc) != self.acceptor_error:
                # No keytab configured is the embedded default, not a fault: say what to do, calmly.
                level = logging.WARNING if not self.keytab else logging.ERROR
                log.log(
                    level,
                    "%s: Kerberos clients will be refused until a keytab with audit/<host>@REALM is readable%s: %s",
                    self.name,
                    "" if self.keytab else " (set [gss] keytab)",
                    exc,
                )
            self.acceptor_error = str(exc)
            return None
        if self.acceptor_error:
            log.warning("%s: Kerberos acceptor credentials are available now", self.name)
        self.acceptor_error = ""
        return self.acceptor

    def policy_for(self, peer: str) -> AuditRemotePolicy:
        s = self.settings
        if self.acceptor is None and time.monotonic() >= self._acceptor_retry_at:
            self.load_acceptor()
        if not s.allow_dummy_mech:
            dummy_refusal = "allow_dummy_mech is false"
        else:
            networks = ", ".join(str(n) for n in self.dummy_peers.networks)
            dummy_refusal = f"peer {peer} is not in dummy_mech_networks ({networks})"
        return AuditRemotePolicy(
            acceptor=self.acceptor,
            dummy_allowed=s.allow_dummy_mech and self.dummy_peers.allows(peer),
            dummy_refusal=dummy_refusal,
            require_channel_bound=s.require_channel_bindings,
            principals=self.principals,
            max_handshake_token=s.max_handshake_token,
            max_record_token=s.max_record_token,
        )

    def note_spool_full(self, exc: BaseException) -> None:
        self.stats.spool_full_waits += 1
        if not self._spool_full_logged:
            self._spool_full_logged = True
            # The exception text says "spool full (why): ..." itself.
            log.warning("%s: %s: not acking; hosts keep their records until space frees up", self.name, exc)

    def note_spool_ok(self) -> None:
        if self._spool_full_logged:
            self._spool_full_logged = False
            log.warning("%s: spool has space again; acking resumes", self.name)


class _Session:
    """The reader and committer of one connection."""

    def __init__(
        self,
        server: AuditRemoteServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: str,
        peer_port: int,
        ticket: Ticket,
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.peer = peer
        self.peer_port = peer_port
        self.ticket = ticket
        self.connected_at = time.time()  # these three for the status page
        self.records = 0  # stored
        self.last_record_at = 0.0
        self.conn = AuditRemoteConnection(server.policy_for(peer))
        self.source: Source | None = None
        settings = server.settings
        self.deadlines = Deadlines(
            time.monotonic(),
            handshake_timeout=settings.handshake_timeout,
            stall_timeout=settings.stall_timeout,
            idle_timeout=settings.idle_timeout,
        )
        self.window = InFlightWindow(settings.max_records_in_flight, MAX_IN_FLIGHT_BYTES)
        self.pending: list[RecordReceived] = []
        self.has_pending = asyncio.Event()
        self.reading_done = False
        self.fatal: str | None = None
        self.timed_out = False

    @property
    def who(self) -> str:
        return f"{self.server.name}: {self.peer}:{self.peer_port}"

    async def run(self) -> None:
        committer = asyncio.create_task(self._commit_loop())
        try:
            try:
                reason = await self._read_loop()
            finally:
                self.reading_done = True
                self.server.stats.reads_ended += 1
                self.has_pending.set()
            # Records already unwrapped are still committed (and acked if the socket is still
            # open); the host retransmits them anyway if it never sees the ack.
            await committer
        except BaseException:
            committer.cancel()
            raise
        reason = self.fatal or reason
        if reason:
            self.server.stats.failures += 1
            self.server.stats.timeouts += self.timed_out
            if self.ticket.proven:
                log.warning("%s: closing: %s", self.who, reason)
            else:  # a flood of unauthenticated connections must not flood the log
                self.server.throttled.warning("unproven", "%s: closing: %s", self.who, reason)
        else:
            log.info(
                "%s: disconnected after %d records (%d acked)",
                self.who,
                self.conn.records_received,
                self.conn.records_acked,
            )

    async def _read_loop(self) -> str:
        """Returns a failure reason, or "" for an orderly close by the peer."""
        stats = self.server.stats
        while self.fatal is None:
            # Our own backpressure first; time spent here does not count against the peer.
            paused = False
            if self.window.room == 0:
                stats.window_pauses += 1
                paused = True
                await self.window.wait_for_room()
                if self.fatal is not None:
                    break
            if replies_piled_up(self.writer):
                stats.backlog_pauses += 1
                paused = True
                stall = await wait_for_write_room(self.writer, self.server.settings.stall_timeout)
                if stall is not None:
                    self.timed_out = stall.timed_out
                    return stall.reason
            if paused:
                self.deadlines.resume(time.monotonic())
                continue  # the window may have filled again meanwhile
            if self.conn.frame_ready:
                # Frames received earlier and held back by the window.
                failed = self._receive(b"")
                if failed:
                    return failed
                self.deadlines.input(time.monotonic(), mid_frame=self.conn.mid_frame, completed=True)
                continue
            deadline = self.deadlines.next()
            timeout = None
            if deadline is not None:
                timeout = deadline.at - time.monotonic()
                if timeout <= 0:
                    self.timed_out = deadline.kind != "idle"  # idle is the operator's choice, not a fault
                    if deadline.kind == "handshake":
                        return f"{deadline.reason} ({self.conn.phase.value})"
                    return deadline.reason
            try:
                data = await asyncio.wait_for(self.reader.read(READ_CHUNK), timeout)
            except TimeoutError:
                continue  # the deadline is checked at the top
            except (ConnectionError, OSError) as exc:
                return f"receive failed: {exc}"
            if not data:
                if self.conn.mid_frame:
                    return "peer closed the connection in the middle of a frame"
                if self.conn.phase is not Phase.RECORDS:
                    return f"peer closed the connection during the {self.conn.phase.value} phase"
                return ""
            now = time.monotonic()
            self.ticket.heard(now)
            frames_before = self.conn.frames_received
            failed = self._receive(data)
            if failed:
                return failed
            completed = self.conn.frames_received > frames_before
            self.deadlines.input(now, mid_frame=self.conn.mid_frame, completed=completed)
        return self.fatal or ""

    def _receive(self, data: bytes) -> str:
        """Feed bytes (or held frames) to the core, taking at most the window's room in records."""
        events = self.conn.receive_data(data, self.window.room)
        out = self.conn.data_to_send()
        if out:
            self._write(out)
        return self._handle(events)

    def _write(self, data: bytes) -> None:
        self.writer.write(data)
        stats = self.server.stats
        stats.unsent_peak = max(stats.unsent_peak, unsent_bytes(self.writer))

    def _handle(self, events: list[Any]) -> str:
        added = 0
        nbytes = 0
        failed = ""
        for event in events:
            if isinstance(event, RecordReceived):
                self.pending.append(event)
                added += 1
                nbytes += len(event.plaintext)
            elif isinstance(event, HandshakeComplete):
                self._on_handshake(event)
            elif isinstance(event, Failed):
                failed = event.reason
                if failed.startswith("GSS "):  # audit_remote.py's reason for a GssFailure
                    self.server.stats.gss_failures += 1
                break
        if added:
            self.window.add(added, nbytes)
            stats = self.server.stats
            stats.received += added
            stats.in_flight_peak = max(stats.in_flight_peak, self.window.records)
            self.has_pending.set()
        return failed

    def _on_handshake(self, hs: HandshakeComplete) -> None:
        self.server.stats.handshakes += 1
        self.ticket.prove()
        self.deadlines.establish()
        self.source = Source(
            transport="audit_remote",
            peer=self.peer,
            peer_port=self.peer_port,
            mech=hs.mech,
            principal=hs.principal,
            authenticated=hs.authenticated,
            listener=self.server.name,
        )
        if hs.mech == "dummy":
            log.warning(
                "%s: established with the DUMMY mechanism: no authentication, no encryption; "
                "records are tagged unauthenticated",
                self.who,
            )
        else:
            log.info("%s: established %s context, client %s, service %s", self.who, hs.mech, hs.principal, hs.target)

    async def _commit_loop(self) -> None:
        while True:
            if not self.pending:
                if self.reading_done:
                    return
                self.has_pending.clear()
                await self.has_pending.wait()
                continue
            batch, self.pending = self.pending, []
            if not await self._append(batch):
                return
            self._ack(batch)
            self.window.remove(len(batch), sum(len(r.plaintext) for r in batch))
            if self.fatal is not None:
                return

    async def _append(self, batch: list[RecordReceived]) -> bool:
        """Append until it succeeds (waiting while the spool is full); False on a hard error."""
        assert self.source is not None
        source = self.source
        records = [SpoolRecord("bsm", r.record, source, r.received_ns) for r in batch]
        server = self.server
        while True:
            try:
                await server.spool.append(records)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not _is_spool_full(exc):
                    self.abort(f"spool append failed, records not acked: {exc!r}")
                    return False
                server.note_spool_full(exc)
                if self.reading_done:
                    return False  # the connection is gone; the host will retransmit
                wait = getattr(server.spool, "wait_for_space", None)
                with contextlib.suppress(TimeoutError):
                    if wait is not None:
                        await asyncio.wait_for(wait(), SPOOL_RETRY_SECONDS)
                    else:
                        await asyncio.sleep(SPOOL_RETRY_SECONDS)
                continue
            server.note_spool_ok()
            server.stats.records += len(batch)
            self.records += len(batch)
            self.last_record_at = time.time()
            server.stats.record_bytes += sum(len(r.plaintext) - 8 for r in batch)
            return True

    def _ack(self, batch: list[RecordReceived]) -> None:
        if self.writer.is_closing():
            return
        try:
            for record in batch:
                self.conn.ack(record)
        except GssFailure as exc:
            self.abort(f"GSS {exc}")
        out = self.conn.data_to_send()
        if out:
            self._write(out)
        self.server.stats.acks += sum(1 for r in batch if r.acked)

    def abort(self, reason: str) -> None:
        """Fail the connection from outside the reader (committer, limiter): stop reading, close."""
        if self.fatal is None:
            self.fatal = reason
        self.window.wake()
        self.writer.close()


async def start_audit_remote_server(
    settings: AuditRemoteListener,
    gss: Gss,
    spool: SpoolAppender,
    *,
    name: str = "audit_remote",
    acceptor: KerberosAcceptor | None = None,
) -> AuditRemoteServer:
    """Acquire Kerberos acceptor credentials, bind and listen.

    A keytab that cannot be read does not stop the listener (the default configuration enables
    it, and dummy-mech or Linux-only sites may have no keytab): the reason is logged as an error,
    Kerberos clients are refused with that reason, and the keytab is tried again at most every
    30 s, so deploying it later needs no restart.
    """
    server = AuditRemoteServer(settings, spool, acceptor=acceptor, name=name, keytab=gss.keytab)
    if acceptor is None:
        server.load_acceptor()
    if settings.allow_dummy_mech:
        where = ", ".join(settings.dummy_mech_networks) or "no network (dummy_mech_networks is empty)"
        log.warning(
            "%s: the illumos dummy GSS mechanism is ENABLED for %s: it provides no authentication and no "
            "encryption (anyone there can inject audit records); use it only for testing",
            name,
            where,
        )
    await server.start()
    return server
