"""The one asyncio server behind every listener: a thin driver of a sans-I/O core.

What it owns, the same for illumos ``audit_remote`` and Linux ``audisp-remote``: who may connect
(:class:`~auditrecv.receive.access.NetworkAllowlist`, the per-peer and total caps of
:class:`~auditrecv.receive.access.ConnectionLimiter`), timeouts
(:class:`~auditrecv.receive.flow.Deadlines`), the per-connection window of records waiting for
the spool, backpressure when the spool is full or the peer leaves our replies unread, statistics,
the status page's view and shutdown. What differs between the protocols is a small
:class:`ListenerPolicy`: which core to make per connection, whether it has a handshake, what kind
of record it receives.

The ack path: bytes → core events → durable spool append → ``core.ack`` → bytes out, in arrival
order. A read that holds only records is stored and answered inside the transport's read
callback when the spool's ack journal takes them at once (``try_append_now``): stop-and-wait
senders wait for every ack, so each loop iteration saved is throughput. Otherwise the
connection's task appends (the spool group-commits across connections) while the socket keeps
being read, up to ``max_records_in_flight`` records per connection; beyond that, or while more
replies than the transport's high-water mark are unread, reading pauses (TCP slows the sender).

Nothing is acked that is not stored. A full spool holds the acks (the senders keep their records)
until it takes them; a record that can never be stored closes its connection unacked (the
sender retransmits). Every failure closes only its own connection, with one log line saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from auditrecv.logsetup import ThrottledLog
from auditrecv.metrics import ConnectionSnapshot, ListenerStats
from auditrecv.netaddr import principal_host
from auditrecv.receive.access import ConnectionLimiter, NetworkAllowlist, Ticket, peer_of
from auditrecv.receive.contract import (
    AckToken,
    Authenticated,
    ConnectionFailed,
    Event,
    Heartbeat,
    ReceiveCore,
    RecordReceived,
    SecurityFailure,
)
from auditrecv.receive.flow import Deadlines, InFlightWindow, close_now, replies_piled_up, wait_for_write_room
from auditrecv.spool.contract import ReceiverSpool
from auditrecv.spool.record import RecordKind, Source, SpoolRecord, spool_record
from auditrecv.spool.store import RecordTooLarge, SpoolClosed, SpoolFull

__all__ = ["ListenerPolicy", "ListenerSettings", "ReceiveServer", "ServerStats", "start_listener"]

# Bytes of records one connection may have waiting for the spool before we stop reading from it
# (beside max_records_in_flight, for large records). A real client never comes near.
MAX_IN_FLIGHT_BYTES = 16 * 1024 * 1024
SHUTDOWN_GRACE = 2.0  # seconds a closing server gives each connection's commit in flight
RETRY_DELAY = 0.5  # seconds between appends after an unexpected spool error


class ListenerSettings(Protocol):
    """The settings every listener has (config.AuditRemoteListener, config.AudispRemoteListener)."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def allow(self) -> list[str]: ...
    @property
    def max_connections(self) -> int: ...
    @property
    def max_connections_per_peer(self) -> int: ...
    @property
    def handshake_timeout(self) -> float: ...
    @property
    def stall_timeout(self) -> float: ...
    @property
    def idle_timeout(self) -> float: ...
    @property
    def max_records_in_flight(self) -> int: ...


class ListenerPolicy(Protocol):
    """What makes one listener's protocol different from another's."""

    @property
    def settings(self) -> ListenerSettings: ...
    @property
    def protocol(self) -> str:
        """``audit_remote`` or ``audisp_remote``: Source.transport and the metrics label."""

    @property
    def record_kind(self) -> RecordKind:
        """The spool record kind: ``bsm`` or ``linux``."""

    @property
    def handshake(self) -> bool:
        """The core authenticates before records (else the first well-formed frame proves the peer)."""

    @property
    def acks(self) -> bool:
        """Records are acknowledged (False: audisp-remote's ascii format)."""

    def new_core(self, peer: str) -> ReceiveCore:
        """The core of a new connection from ``peer`` (raises to refuse it)."""

    def sender_name(self, payload: bytes) -> str:
        """The sender's own name in its first record (audisp-remote's ``node=``), or ""."""

    def started(self, name: str, port: int) -> None:
        """Log what the listener serves, once it is bound."""


@dataclass
class ServerStats:
    """Counters for metrics, the status page and tests (monotonic, except ``active``)."""

    accepted: int = 0
    active: int = 0
    refused_address: int = 0  # not in `allow`
    refused_limit: int = 0  # max_connections, every connection established
    evicted: int = 0  # connections closed to admit a newcomer (see access.ConnectionLimiter)
    handshakes: int = 0
    failures: int = 0  # connections closed for a fault: protocol, security, timeout
    gss_failures: int = 0  # ... of which a security mechanism refused something
    timeouts: int = 0  # ... of which a handshake, stalled frame or unread replies (idle is not a fault)
    received: int = 0  # records taken off the wire
    records: int = 0  # ... stored by the spool
    acks: int = 0
    heartbeats: int = 0
    spool_full_waits: int = 0  # batches held back because the spool was full
    window_pauses: int = 0  # reads paused because max_records_in_flight were waiting for the spool
    backlog_pauses: int = 0  # reads paused because the peer left our replies unread
    in_flight_peak: int = 0  # most records one connection had waiting for the spool
    unsent_peak: int = 0  # most reply bytes one connection left unread in our send buffer
    reads_ended: int = 0  # connections whose peer closed or broke its side


# failure: a fault, counted and logged as a warning; closed: closed by us (to admit a newcomer, an
# internal error), logged as a warning; quiet and broken (idle, shutdown, the peer's network): INFO.
EndKind = Literal["failure", "closed", "quiet", "broken"]


class _Connection:
    """One connection's state, shared by the read callback and the connection's task."""

    def __init__(
        self,
        server: ReceiveServer,
        transport: asyncio.Transport,
        writer: asyncio.StreamWriter,
        core: ReceiveCore,
        source: Source,
        ticket: Ticket,
        deadlines: Deadlines,
    ) -> None:
        self.transport = transport
        self.writer = writer
        self.core = core
        self.source = source
        self.ticket = ticket
        self.deadlines = deadlines  # on the loop's clock
        self.window = InFlightWindow(server.settings.max_records_in_flight, MAX_IN_FLIGHT_BYTES)
        # Received, in arrival order, not yet stored and answered; to_store: their spool records.
        self.pending: list[RecordReceived | Heartbeat] = []
        self.to_store: list[SpoolRecord] = []
        self.task: asyncio.Task[None] | None = None
        self.wakeup = asyncio.Event()
        self.busy = False  # the task has work: the read callback must not answer out of order
        self.reading = True
        self.draining = False  # waiting for the peer to read our replies
        self.eof = False
        self.eof_handled = False
        self.read_error: BaseException | None = None
        self.end: tuple[EndKind, str, ConnectionFailed | None] | None = None  # why it ends, first wins
        self.ended = False  # nothing more may be written (shutdown sent its goodbye, or aborted)
        self.watchdog: asyncio.TimerHandle | None = None
        self.watchdog_at = 0.0
        self.unsent_peak = 0
        # For the status page.
        self.connected_at = time.time()
        self.records = 0
        self.last_record_ns = 0
        self.name: str | None = None  # the sender's name in its first record

    @property
    def who(self) -> str:
        return f"{self.source.peer}:{self.source.peer_port}"

    def write(self, data: bytes) -> bool:
        """Send unless the connection is ending; False when it could not be sent."""
        if self.ended or self.transport.is_closing():
            return False
        if data:
            self.transport.write(data)
            unsent = self.transport.get_write_buffer_size()
            if unsent > self.unsent_peak:
                self.unsent_peak = unsent
        return True

    def finish(self, kind: EndKind, reason: str, failure: ConnectionFailed | None = None) -> None:
        """Stop taking input; the task stores and answers what is pending, then closes."""
        if self.end is None:
            self.end = (kind, reason, failure)
        self.wakeup.set()

    def kill(self, reason: str, kind: EndKind = "closed") -> None:
        """Close from outside the task (the limiter made room, the watchdog fired)."""
        self.finish(kind, reason)
        close_now(self.writer)


class _ReceiverProtocol(asyncio.streams.FlowControlMixin, asyncio.Protocol):
    """One connection's transport callbacks (FlowControlMixin: ``StreamWriter.drain`` works)."""

    def __init__(self, server: ReceiveServer) -> None:
        super().__init__()
        self._server = server
        self._conn: _Connection | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._conn = self._server._accept(transport, self)

    def data_received(self, data: bytes) -> None:
        if self._conn is not None:
            try:
                self._server._received(self._conn, data)
            except Exception as exc:  # never let one connection take the listener down
                self._server._internal_error(self._conn, exc)

    def eof_received(self) -> bool:
        if self._conn is not None:
            self._server._peer_gone(self._conn, None)
        return True  # keep our side open: replies for records still being stored go out

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)  # wakes a drain() in progress
        if self._conn is not None:
            self._server._peer_gone(self._conn, exc)


class ReceiveServer:
    """One listening socket; create with :func:`start_listener`."""

    def __init__(self, policy: ListenerPolicy, spool: ReceiverSpool, *, name: str) -> None:
        self.policy = policy
        self.settings = policy.settings
        self.spool = spool
        self.name = name
        self.log = logging.getLogger(f"auditrecv.receive.{policy.protocol}")
        self.stats = ServerStats()
        self._allow = NetworkAllowlist(self.settings.allow)
        self.limiter = ConnectionLimiter(
            self.settings.max_connections,
            self.settings.max_connections_per_peer,
            unproven_as="handshake" if policy.handshake else "first frame",
        )
        self._throttled = ThrottledLog(self.log)
        self._conns: set[_Connection] = set()
        self._server: asyncio.Server | None = None
        self._closing = False
        self._closed = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._spool_full_logged = False

    # ----------------------------------------------------------------- lifecycle and views

    async def start(self) -> None:
        s = self.settings
        self._server = await self._loop.create_server(lambda: _ReceiverProtocol(self), s.host, s.port)
        self.policy.started(self.name, self.port)

    @property
    def port(self) -> int:
        """The bound port (useful with ``port = 0`` in tests)."""
        for sock in self.sockets:
            return int(sock.getsockname()[1])
        return self.settings.port

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return tuple(self._server.sockets) if self._server is not None else ()

    def connections(self) -> list[ConnectionSnapshot]:
        """The senders connected now, for the status page."""
        return [
            ConnectionSnapshot(
                listener=self.name,
                protocol=self.policy.protocol,
                peer=conn.source.peer,
                peer_port=conn.source.peer_port,
                name=conn.name or principal_host(conn.source.principal) or "",
                mech=conn.source.mech,
                principal=conn.source.principal,
                authenticated=conn.source.authenticated,
                connected_at=conn.connected_at,
                records=conn.records,
                last_record_at=conn.last_record_ns / 1e9 if conn.last_record_ns else None,
            )
            for conn in list(self._conns)
        ]

    def listener_stats(self) -> ListenerStats:
        """This listener's counters for /metrics (auditrecv.metrics.ListenersCollector)."""
        st = self.stats
        return ListenerStats(
            listener=self.name,
            protocol=self.policy.protocol,
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

    async def close(self) -> None:
        """Stop accepting; let each connection store and answer what it has (up to a grace
        period), send the protocol's goodbye (audisp-remote's ENDING) and close."""
        if self._closing:
            await self.wait_closed()
            return
        self._closing = True
        if self._server is not None:
            self._server.close()
        conns = list(self._conns)
        for conn in conns:
            conn.wakeup.set()
        tasks = [c.task for c in conns if c.task is not None]
        if tasks:
            _done, stuck = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE)
            for task in stuck:  # waiting for spool space: the sender keeps the unacked records
                task.cancel()
        await asyncio.gather(*(self._goodbye(c) for c in conns), return_exceptions=True)
        await self._finish(conns)

    async def _goodbye(self, conn: _Connection) -> None:
        if not conn.ended and not conn.transport.is_closing():
            conn.core.end()
            conn.write(conn.core.data_to_send())
            conn.ended = True
            with contextlib.suppress(TimeoutError, ConnectionError, OSError):
                await asyncio.wait_for(conn.writer.drain(), SHUTDOWN_GRACE)
        close_now(conn.writer)

    async def abort(self) -> None:
        """Drop every connection at once, no goodbye: what senders see when the receiver crashes."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        conns = list(self._conns)
        for conn in conns:
            conn.ended = True
            conn.transport.abort()
            if conn.task is not None:
                conn.task.cancel()
        await self._finish(conns)

    async def _finish(self, conns: list[_Connection]) -> None:
        """Let every connection task run its clean-up (3.11's Server.wait_closed does not wait)."""
        tasks = [c.task for c in conns if c.task is not None and c.task is not asyncio.current_task()]
        if tasks:
            await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE)
        if self._server is not None:
            await self._server.wait_closed()
        self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    # ----------------------------------------------------------------- accept

    def _accept(self, transport: asyncio.Transport, protocol: _ReceiverProtocol) -> _Connection | None:
        """Admission for a new connection; its state, or None (refused and closed)."""
        peer, port = peer_of(transport.get_extra_info("peername"))
        if self._closing:
            transport.close()
            return None
        if not self._allow.allows(peer):
            self.stats.refused_address += 1
            self._throttled.warning("refused", "%s: refused %s:%d: address not in allow", self.name, peer, port)
            transport.close()
            return None
        try:
            core = self.policy.new_core(peer)
        except Exception as exc:  # refuse this client, keep serving the others
            self.log.error("%s: cannot set up a connection for %s:%d: %s", self.name, peer, port, exc)
            transport.close()
            return None
        admission = self.limiter.admit(peer, port)
        ticket = admission.ticket
        if ticket is None:
            self.stats.refused_limit += 1
            self._throttled.warning("refused", "%s: refused %s:%d: %s", self.name, peer, port, admission.refusal)
            transport.close()
            return None
        if admission.evicted is not None:
            self.stats.evicted += 1
        s = self.settings
        deadlines = Deadlines(
            self._loop.time(),
            handshake_timeout=s.handshake_timeout if self.policy.handshake else 0.0,
            stall_timeout=s.stall_timeout,
            idle_timeout=s.idle_timeout,
        )
        source = Source(transport=self.policy.protocol, peer=peer, peer_port=port, listener=self.name)
        writer = asyncio.StreamWriter(transport, protocol, None, self._loop)
        conn = _Connection(self, transport, writer, core, source, ticket, deadlines)
        ticket.close = conn.kill
        self._conns.add(conn)
        self.stats.accepted += 1
        self.stats.active += 1
        self._throttled.log(logging.INFO, "connected", "%s: connection from %s", self.name, conn.who)
        conn.task = self._loop.create_task(self._run(conn))
        self._arm(conn)
        return conn

    # ----------------------------------------------------------------- input (the read callback)

    def _received(self, conn: _Connection, data: bytes) -> None:
        if conn.end is not None or self._closing:
            return  # closing: nothing more is stored or answered (the sender resends what is unacked)
        now = self._loop.time()
        conn.ticket.last_heard = now  # Ticket.heard, without the call (once per read)
        taken = None if conn.busy else conn.core.receive_record(data)
        if taken is None:
            self._feed(conn, data, now)
        elif self._answer_record(conn, taken, now):
            return
        if (conn.pending or conn.end is not None) and (conn.busy or conn.end is not None or not self._answer_now(conn)):
            conn.busy = True  # the task takes it from here, in order
            conn.wakeup.set()
        elif conn.core.frame_ready and not conn.busy:
            conn.busy = True  # the core held input back beyond the window: the task feeds it
            conn.wakeup.set()
        self._update_reading(conn)
        self._arm(conn)

    def _answer_record(self, conn: _Connection, taken: tuple[bytes, AckToken, bytes], now: float) -> bool:
        """A stop-and-wait sender's usual read (one whole record, nothing pending) stored and answered: what
        _feed, _take and _answer_now do, in fewer steps. False: finish as any read (spool declined, replies pile up)."""
        payload, token, reply = taken
        received_ns = time.time_ns()
        conn.deadlines.last_input, conn.deadlines.frame_started = now, None  # Deadlines.input: a frame completed
        conn.ticket.proven = True  # a well-formed frame (after the handshake, if there is one)
        st = self.stats
        if payload:
            if self.spool.try_append_one(self.policy.record_kind, payload, conn.source, received_ns, conn.task) is None:
                self._take(conn, [RecordReceived(payload, token, received_ns)])
                conn.busy = True  # the task appends it
                return False
            # _stored, for one record
            st.records += 1
            conn.records += 1
            conn.last_record_ns = received_ns
            if conn.name is None:
                conn.name = self.policy.sender_name(payload)
        st.received += 1
        st.in_flight_peak = st.in_flight_peak or 1
        if (state := self.spool.state) != "ok":  # the reply for the state once stored (DISKLOW)
            conn.core.ack(token, state)
            reply = conn.core.data_to_send()
        st.acks += conn.write(reply) and self.policy.acks
        if conn.unsent_peak and replies_piled_up(conn.writer):
            conn.busy = conn.draining = True  # the task waits for the peer to read them (see _commit)
            conn.wakeup.set()
            return False
        if conn.watchdog is None:  # else it fires no later than the idle deadline now: it re-checks then
            self._arm(conn)
        return True

    def _feed(self, conn: _Connection, data: bytes, now: float) -> None:
        """Bytes (or, with b"", input the core held back) through the core, in arrival order."""
        core = conn.core
        before = core.frames_received
        events = core.receive_data(data, time.time_ns(), conn.window.room)
        conn.deadlines.input(now, mid_frame=core.mid_frame, completed=core.frames_received != before)
        conn.write(core.data_to_send())
        if events:
            self._take(conn, events)

    def _take(self, conn: _Connection, events: list[Event]) -> None:
        records = nbytes = 0
        kind = self.policy.record_kind
        for event in events:
            if type(event) is RecordReceived:
                conn.pending.append(event)
                if event.payload:
                    conn.to_store.append(spool_record(kind, event.payload, conn.source, event.received_ns))
                records += 1
                nbytes += len(event.payload)
            elif type(event) is Heartbeat:
                conn.pending.append(event)
                self.stats.heartbeats += 1
            elif isinstance(event, Authenticated):
                self._authenticated(conn, event)
            elif isinstance(event, ConnectionFailed):
                conn.finish("failure", event.reason, event)
                break
        if not self.policy.handshake and type(events[0]) is not ConnectionFailed:
            conn.ticket.prove()  # a well-formed frame (or line): a real client, not a silent socket
        if records:
            conn.window.add(records, nbytes)
            self.stats.in_flight_peak = max(self.stats.in_flight_peak, conn.window.records)
            self.stats.received += records

    def _authenticated(self, conn: _Connection, event: Authenticated) -> None:
        self.stats.handshakes += 1
        conn.ticket.prove()
        conn.deadlines.establish()
        conn.source = dataclasses.replace(
            conn.source, mech=event.mech, principal=event.principal, authenticated=event.authenticated
        )
        if event.mech == "dummy":
            self.log.warning(
                "%s: %s established with the DUMMY mechanism: no authentication, no encryption; "
                "records are tagged unauthenticated",
                self.name,
                conn.who,
            )
        else:
            self.log.info(
                "%s: %s established %s context, client %s, service %s",
                self.name,
                conn.who,
                event.mech,
                event.principal,
                event.target,
            )

    def _answer_now(self, conn: _Connection) -> bool:
        """The fast path: the spool's ack journal takes the records without waiting, so they are
        stored and answered in the read callback. False: nothing was done, the task does it."""
        records = conn.to_store
        if records and self.spool.try_append_now(records, conn.task) is None:
            return False
        batch = conn.pending
        conn.pending, conn.to_store = [], []
        self._stored(conn, records)
        self._answer(conn, batch)
        if conn.unsent_peak and replies_piled_up(conn.writer):  # 0: never anything unsent
            conn.busy = True  # the task waits for the peer to read them (see _commit)
            conn.draining = True
            conn.wakeup.set()
        return True

    def _peer_gone(self, conn: _Connection, exc: BaseException | None) -> None:
        """EOF or a broken connection: the task finishes what is pending, then ends."""
        if conn.eof:
            if exc is not None and conn.read_error is None:
                conn.read_error = exc
            return
        conn.eof = True
        conn.read_error = exc
        self.stats.reads_ended += 1
        conn.busy = True
        conn.wakeup.set()

    def _internal_error(self, conn: _Connection, exc: Exception) -> None:
        """A bug or an unexpected spool error in the read callback: close this connection only."""
        self.log.error("%s: connection %s failed", self.name, conn.who, exc_info=exc)
        conn.pending, conn.to_store = [], []  # not stored, not acked: the sender resends them
        conn.kill(f"internal error: {type(exc).__name__}: {exc}", "quiet")  # logged just now

    def _update_reading(self, conn: _Connection) -> None:
        """Read while the window has room, nothing is held back, no reply backlog, not ending."""
        want = (
            conn.end is None
            and not conn.eof
            and not self._closing
            and not conn.draining
            and conn.window.room > 0
            and not conn.core.frame_ready
        )
        if want == conn.reading or conn.transport.is_closing():
            return
        conn.reading = want
        if want:
            conn.transport.resume_reading()
            conn.deadlines.resume(self._loop.time())  # the pause was our time, not the peer's
            self._arm(conn)
        else:
            conn.transport.pause_reading()
            if conn.window.room == 0 and conn.end is None:
                self.stats.window_pauses += 1

    # ----------------------------------------------------------------- the connection's task

    async def _run(self, conn: _Connection) -> None:
        try:
            await self._serve(conn)
        except asyncio.CancelledError:
            conn.finish("quiet", "server shutting down")
        except Exception as exc:  # never let one connection take the listener down
            conn.finish("failure", f"internal error: {type(exc).__name__}: {exc}")
            self.log.exception("%s: connection %s failed", self.name, conn.who)
        finally:
            self._ended(conn)

    async def _serve(self, conn: _Connection) -> None:
        """Store and answer in arrival order until the connection ends."""
        while True:
            if conn.pending:
                await self._commit(conn)
                continue
            if conn.core.frame_ready and conn.end is None and not self._closing and conn.window.room > 0:
                self._feed(conn, b"", self._loop.time())  # input the core held back while the window was full
                continue
            if conn.end is not None or self._closing:
                return
            if conn.eof:
                if not conn.eof_handled:
                    conn.eof_handled = True
                    if conn.read_error is None:
                        events = conn.core.end_of_input(time.time_ns())
                        if events:
                            self._take(conn, events)
                        continue
                if conn.read_error is not None:
                    conn.finish("broken", f"receive failed: {conn.read_error}")
                return
            conn.busy = False
            self._update_reading(conn)
            self._arm(conn)
            conn.wakeup.clear()
            await conn.wakeup.wait()

    async def _commit(self, conn: _Connection) -> None:
        """Store the pending records, answer them in order, wait while the peer leaves replies unread."""
        batch, records = conn.pending, conn.to_store
        conn.pending, conn.to_store = [], []
        if records:
            if not await self._store(conn, records):
                return
            self._stored(conn, records)
        self._answer(conn, batch)
        if conn.draining or replies_piled_up(conn.writer):
            self.stats.backlog_pauses += 1
            conn.draining = True
        self._update_reading(conn)  # once: room for reads again, unless the replies piled up
        if conn.draining:
            stall = await wait_for_write_room(conn.writer, self.settings.stall_timeout)
            conn.draining = False
            if stall is not None:
                if stall.timed_out:
                    conn.finish("failure", stall.reason, ConnectionFailed(stall.reason, timeout=True))
                else:
                    conn.finish("broken", stall.reason)

    async def _store(self, conn: _Connection, records: list[SpoolRecord]) -> bool:
        """Append until the spool takes the records; until then nothing is acked, so the sender
        keeps them. False (and the connection ends unacked) when retrying cannot help."""
        held = complained = False
        while True:
            try:
                await self.spool.append(records)
            except SpoolFull as exc:
                if not held:
                    held = True
                    self.stats.spool_full_waits += 1
                    if not self._spool_full_logged:
                        self._spool_full_logged = True
                        # The exception text says "spool full (why): ..." itself.
                        self.log.warning(
                            "%s: %s: withholding acks; senders keep their records until the spool takes them",
                            self.name,
                            exc,
                        )
                if not await self.spool.wait_for_space():
                    conn.finish("failure", "spool closed while waiting for space; records not acked")
                    return False
                continue
            except (SpoolClosed, RecordTooLarge) as exc:
                conn.finish("failure", f"not stored, not acked: {exc}")
                return False
            except Exception as exc:  # an I/O error of the spool: transient until proven otherwise
                if not complained:
                    complained = True
                    self.log.error(
                        "%s: spool error storing %d record(s) from %s, withholding the acks and retrying: %s",
                        self.name,
                        len(records),
                        conn.who,
                        exc,
                    )
                await asyncio.sleep(RETRY_DELAY)
                continue
            if self._spool_full_logged:
                self._spool_full_logged = False
                self.log.warning("%s: the spool takes records again; acking resumes", self.name)
            return True

    def _stored(self, conn: _Connection, records: Sequence[SpoolRecord]) -> None:
        if records:
            self.stats.records += len(records)
            conn.records += len(records)
            conn.last_record_ns = records[-1].received_ns
            if conn.name is None:
                conn.name = self.policy.sender_name(records[0].payload)

    def _answer(self, conn: _Connection, batch: Sequence[RecordReceived | Heartbeat]) -> None:
        """Replies for a stored batch, in order; then the window has room for as many."""
        core = conn.core
        state = self.spool.state
        records = nbytes = 0
        try:
            for event in batch:
                if type(event) is RecordReceived:
                    core.ack(event.ack_token, state)
                    records += 1
                    nbytes += len(event.payload)
                elif type(event) is Heartbeat:
                    core.answer_heartbeat(event.token)
        except SecurityFailure as exc:
            conn.finish("failure", f"GSS {exc}", ConnectionFailed(f"GSS {exc}", security=True))
        if conn.write(core.data_to_send()) and self.policy.acks:
            self.stats.acks += records
        conn.window.remove(records, nbytes)

    def _ended(self, conn: _Connection) -> None:
        """Count, log and release a connection whose task is done."""
        if conn.watchdog is not None:
            conn.watchdog.cancel()
        self.limiter.release(conn.ticket)
        self._conns.discard(conn)
        st = self.stats
        st.active -= 1
        st.unsent_peak = max(st.unsent_peak, conn.unsent_peak)
        if not self._closing:
            close_now(conn.writer)
        kind, reason, failure = conn.end or ("quiet", "", None)
        if kind == "failure":
            st.failures += 1
            if failure is not None:
                st.timeouts += failure.timeout
                st.gss_failures += failure.security
        if kind in ("failure", "closed"):
            if conn.ticket.proven:
                self.log.warning("%s: closing %s: %s", self.name, conn.who, reason)
            else:  # a flood of unauthenticated connections must not flood the log
                self._throttled.warning("unproven", "%s: closing %s: %s", self.name, conn.who, reason)
        why = reason or "closed by the peer"
        if conn.ticket.proven:
            self.log.info("%s: %s ended after %d records: %s", self.name, conn.who, conn.records, why)
        else:
            self._throttled.log(logging.INFO, "ended", "%s: %s ended: %s", self.name, conn.who, why)

    # ----------------------------------------------------------------- deadlines

    def _arm(self, conn: _Connection) -> None:
        """Schedule the watchdog for the connection's next deadline (one timer, not one per read)."""
        at = conn.deadlines.next_at()
        if at is None:
            if conn.watchdog is not None:
                conn.watchdog.cancel()
                conn.watchdog = None
            return
        if conn.watchdog is not None:
            if conn.watchdog_at <= at:
                return  # fires no later; it re-checks then
            conn.watchdog.cancel()
        conn.watchdog_at = at
        conn.watchdog = self._loop.call_at(at, self._check_deadline, conn)

    def _check_deadline(self, conn: _Connection) -> None:
        conn.watchdog = None
        if conn.busy or not conn.reading or conn.end is not None:
            return  # storing, replying or paused: our time; re-armed when that is done
        deadline = conn.deadlines.next()
        if deadline is None:
            return
        if deadline.at > self._loop.time():
            self._arm(conn)
            return
        if deadline.kind == "idle":  # the operator's choice, not a fault
            conn.kill(deadline.reason, "quiet")
            return
        reason = deadline.reason
        conn.finish("failure", reason, ConnectionFailed(reason, timeout=True))
        close_now(conn.writer)


async def start_listener(policy: ListenerPolicy, spool: ReceiverSpool, *, name: str) -> ReceiveServer:
    """Bind and serve one listener; ``await server.close()`` ends it gracefully."""
    server = ReceiveServer(policy, spool, name=name)
    await server.start()
    return server
