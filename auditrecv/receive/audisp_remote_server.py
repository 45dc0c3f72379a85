"""asyncio server for Linux ``audisp-remote`` (thin layer over :mod:`auditrecv.receive.audisp_remote`).

Per connection: read, let the session turn bytes into events, spool the records, and only once
they are durable (``spool.try_append_now`` took them into the ack journal, or ``spool.append``
returned) send the replies, in frame order. The client is strictly stop-and-wait, so
per-connection order is simply processing order.

Spool full: the record is neither acked nor dropped. The connection holds it (stop-and-wait
means at most one record per connection) and stores it as soon as space returns, then acks it.
If the client times out first it reconnects and resends; both copies are stored and the later
content-based document identity folds them into one. Nothing is ever acked that is not stored,
and DISKFULL is never sent (with ``disk_full_action = syslog`` the client would count the record
as delivered and drop it).

A client that pipelines frames and never reads the replies cannot hurt the others: records go to
the spool at most ``max_records_in_flight`` at a time, nothing more is read while more replies
than the transport's high-water mark are unsent, and the connection is closed if they stay
unread for ``stall_timeout``. Timeouts (krb5 handshake, a frame left incomplete, idle) and
admission (per-peer cap, eviction of silent connections) are shared with the illumos listener
(:mod:`~auditrecv.receive.flow`, :mod:`~auditrecv.receive.access`).

Read path: every read is parsed in the transport's ``data_received`` callback. The common case (only
records, the spool's ack journal takes them at once: :meth:`Spool.try_append_now`) is stored and
answered right there, with no task switch: audisp-remote waits for every ack, so each loop
iteration saved is throughput. Anything else (heartbeats, the krb5 handshake, a violation, a spool
that must be awaited, unread replies piling up, EOF) is queued to the connection's task, and
reading pauses until that task has caught up, so events are always handled in arrival order.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from auditrecv.config import AudispRemoteListener, Gss
from auditrecv.metrics import ConnectionSnapshot, ListenerStats
from auditrecv.netaddr import principal_host
from auditrecv.receive.access import ConnectionLimiter, NetworkAllowlist, ThrottledLog, Ticket, peer_of
from auditrecv.receive.audisp_remote import (
    DEFAULT_MAX_TOKEN,
    AsciiSession,
    Authenticated,
    Event,
    Heartbeat,
    Krb5Session,
    ManagedSession,
    PrincipalPolicy,
    Record,
    Send,
    Session,
    Violation,
    default_realm,
)
from auditrecv.receive.flow import Deadlines, close_now, replies_piled_up, wait_for_write_room
from auditrecv.receive.gss import KerberosAcceptor
from auditrecv.spool import RecordTooLarge, SpoolClosed, SpoolFull
from auditrecv.spool.record import Source, SpoolRecord

log = logging.getLogger("auditrecv.receive.audisp_remote")

SHUTDOWN_GRACE = 2.0  # seconds close() waits for an in-flight spool commit before cutting in
RETRY_DELAY = 0.5  # seconds between append retries after an unexpected spool failure


class SpoolLike(Protocol):
    """The spool surface the receiver needs (auditrecv.spool.Spool provides it). Optional:
    ``try_append_now(records, appender) -> ids | None`` (see :meth:`auditrecv.spool.Spool.try_append_now`),
    which lets a read be stored and answered inside the read callback."""

    @property
    def state(self) -> str: ...  # "ok" | "low" | "full"

    async def append(self, records: list[SpoolRecord]) -> Sequence[Any]: ...

    async def wait_for_space(self, timeout: float | None = None) -> bool: ...


AppendNow = Callable[[list[SpoolRecord], object], "Sequence[Any] | None"]


class _CannotStore(Exception):
    """Records could not be stored and retrying on this connection cannot help."""


# What the read callback hands the connection's task: events and their receive time, or EOF (None).
_Work = tuple[list[Event], int] | None


def node_name(line: bytes) -> str:
    """The ``node=NAME`` prefix audisp-remote adds with ``name_format`` (empty without one)."""
    if not line.startswith(b"node="):
        return ""
    end = line.find(b" ")
    return line[5 : end if end > 0 else len(line)].decode("utf-8", "replace")


class _Connection:
    def __init__(
        self,
        transport: asyncio.Transport,
        writer: asyncio.StreamWriter,
        session: Session,
        source: Source,
        ticket: Ticket,
        deadlines: Deadlines,
    ) -> None:
        self.transport = transport
        self.writer = writer
        self.session = session
        self.source = source
        self.ticket = ticket
        self.deadlines = deadlines  # on the loop's clock
        self.lock = asyncio.Lock()  # held while storing + replying, so ENDING never splits them
        self.ended = False  # after ENDING nothing else may be written
        self.task: asyncio.Task[None] | None = None
        self.watchdog: asyncio.TimerHandle | None = None
        self.watchdog_at = 0.0
        self.kill_reason: str | None = None  # set by the watchdog or the limiter, then the socket closes
        self.kill_logged = False  # the reason is logged at INFO (idle) rather than as a warning
        self.unsent_peak = 0
        # Work for the task, in arrival order. While it is not empty or being handled (busy),
        # reading is paused and nothing is answered in the read callback.
        self.inbox: collections.deque[_Work] = collections.deque()
        self.wakeup = asyncio.Event()
        self.busy = False
        self.eof = False
        self.read_error: BaseException | None = None
        self.done = False  # the task has cleaned up
        # For the status page (connections()): stored records, when the last arrived, the sender's
        # node name (audisp-remote's name_format; None until the first record, "" without one).
        self.connected_at = time.time()
        self.records = 0
        self.last_record_ns = 0
        self.node: str | None = None

    def write(self, data: bytes) -> None:
        if data and not self.ended and not self.transport.is_closing():
            self.transport.write(data)
            unsent = self.transport.get_write_buffer_size()
            if unsent > self.unsent_peak:
                self.unsent_peak = unsent

    def kill(self, reason: str) -> None:
        """End the connection from outside its task: the task sees EOF."""
        if self.kill_reason is None:
            self.kill_reason = reason
        self.writer.close()

    def queue(self, work: _Work) -> None:
        """Hand work to the task; reading pauses until it has caught up."""
        self.inbox.append(work)
        if not self.busy:
            self.busy = True
            self.transport.pause_reading()
        self.wakeup.set()

    async def next_work(self) -> _Work:
        while not self.inbox:
            self.wakeup.clear()
            await self.wakeup.wait()
        return self.inbox.popleft()

    def describe(self) -> str:
        return f"{self.source.peer}:{self.source.peer_port}"


class _ReceiverProtocol(asyncio.streams.FlowControlMixin, asyncio.Protocol):
    """One connection's transport callbacks (FlowControlMixin: ``StreamWriter.drain`` works)."""

    def __init__(self, server: AudispRemoteServer) -> None:
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
                self._server._failed(self._conn, exc)

    def eof_received(self) -> bool:
        if self._conn is not None:
            self._server._peer_gone(self._conn, None)
        return True  # keep our side open: replies for records still being stored go out

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)  # wakes a drain() in progress
        if self._conn is not None:
            self._server._peer_gone(self._conn, exc)


class AudispRemoteServer:
    """One listener; create with :func:`start_audisp_remote_server`."""

    def __init__(self, settings: AudispRemoteListener, gss: Gss, spool: SpoolLike, *, name: str) -> None:
        self.settings = settings
        self.gss = gss
        self.spool = spool
        self.name = name
        self._allow = NetworkAllowlist(settings.allow)
        self._limiter = ConnectionLimiter(
            settings.max_connections,
            settings.max_connections_per_peer,
            unproven_as="handshake" if settings.transport == "krb5" else "first frame",
        )
        self._throttled = ThrottledLog(log)
        self._conns: set[_Connection] = set()
        self._server: asyncio.base_events.Server | None = None
        self._closing = False
        self._closed = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._append_now: AppendNow | None = getattr(spool, "try_append_now", None)
        # Plain counters for metrics and tests. refused: by allow, max_connections or
        # max_connections_per_peer; evicted: silent connections closed to admit a newcomer;
        # timeouts: handshake, stalled frame, unread replies (idle closes are not counted);
        # backlog_pauses: reads paused while replies were unread; in_flight_peak: largest batch
        # of one connection handed to the spool; unsent_peak: most reply bytes one connection
        # left unread in our send buffer.
        self.counters: dict[str, int] = dict.fromkeys(
            (
                "connections",
                "refused",
                "records",
                "heartbeats",
                "violations",
                "gss_failures",
                "held",
                "evicted",
                "timeouts",
                "backlog_pauses",
                "in_flight_peak",
                "unsent_peak",
            ),
            0,
        )
        self._kerberos: KerberosAcceptor | None = None
        self._policy: PrincipalPolicy | None = None
        if settings.transport == "krb5":
            # Fails here (GssFailure) on a missing/unreadable keytab: a startup error, not a
            # per-client one. Any principal in the keytab is served.
            self._kerberos = KerberosAcceptor(gss.keytab)
            realm = default_realm()
            self._policy = PrincipalPolicy(settings.allowed_principals, settings.krb5_service, realm)
            if not self._policy.patterns:
                log.error("%s: no default Kerberos realm and no allowed_principals: every client is refused", name)

    @property
    def port(self) -> int:
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def sockets(self) -> tuple[Any, ...]:
        return tuple(self._server.sockets) if self._server is not None else ()

    @property
    def metrics(self) -> dict[str, int]:
        """The counters by name, for tests and logs (/metrics reads ``listener_stats()``)."""
        return {**self.counters, "active": len(self._conns)}

    def connections(self) -> list[ConnectionSnapshot]:
        """The senders connected now, for the status page."""
        out = []
        for conn in list(self._conns):
            src = conn.source
            out.append(
                ConnectionSnapshot(
                    listener=self.name,
                    protocol="audisp_remote",
                    peer=src.peer,
                    peer_port=src.peer_port,
                    name=conn.node or principal_host(src.principal) or "",
                    mech=src.mech,
                    principal=src.principal,
                    authenticated=src.authenticated,
                    connected_at=conn.connected_at,
                    records=conn.records,
                    last_record_at=conn.last_record_ns / 1e9 if conn.last_record_ns else None,
                )
            )
        return out

    def listener_stats(self) -> ListenerStats:
        """This listener's counters for /metrics (auditrecv.metrics.ListenersCollector). A record is
        counted once the spool took it, just before its reply: received and acked move together,
        except in the ascii format, which has no replies."""
        c = self.counters
        return ListenerStats(
            listener=self.name,
            protocol="audisp_remote",
            connections_accepted=c["connections"],
            connections_refused=c["refused"],
            connections_evicted=c["evicted"],
            connections_active=len(self._conns),
            connections_failed=c["timeouts"] + c["violations"],
            timeouts=c["timeouts"],
            gss_failures=c["gss_failures"],
            records_received=c["records"],
            records_acked=0 if self.settings.format == "ascii" else c["records"],
            spool_full_waits=c["held"],
        )

    async def start(self) -> None:
        self._server = await self._loop.create_server(
            lambda: _ReceiverProtocol(self), self.settings.host, self.settings.port
        )
        log.info(
            "%s: audisp-remote listener on %s:%d (transport %s, format %s)",
            self.name,
            self.settings.host,
            self.port,
            self.settings.transport,
            self.settings.format,
        )

    def _new_session(self) -> Session:
        s = self.settings
        if s.transport == "krb5":
            assert self._policy is not None and self._kerberos is not None
            return Krb5Session(
                self._kerberos.new_context(),
                self._policy,
                service=s.krb5_service,
                max_payload=s.max_message_bytes,
                max_token=max(DEFAULT_MAX_TOKEN, s.max_message_bytes + 1024),
            )
        if s.format == "ascii":
            return AsciiSession(s.max_message_bytes)
        return ManagedSession(s.max_message_bytes)

    def _accept(self, transport: asyncio.Transport, protocol: _ReceiverProtocol) -> _Connection | None:
        """Admission for a new connection; its connection, or None (refused and closed)."""
        host, port = peer_of(transport.get_extra_info("peername"))
        if self._closing:
            transport.close()
            return None
        if not self._allow.allows(host):
            self.counters["refused"] += 1
            self._throttled.warning(
                "refused", "%s: refused connection from %s:%d: peer not in the allow list", self.name, host, port
            )
            transport.close()
            return None
        try:
            session = self._new_session()
        except Exception as exc:  # refuse this client, keep serving the others
            log.error("%s: cannot set up a session for %s:%d: %s", self.name, host, port, exc)
            transport.close()
            return None
        admission = self._limiter.admit(host, port)
        ticket = admission.ticket
        if ticket is None:
            self.counters["refused"] += 1
            self._throttled.warning(
                "refused", "%s: refused connection from %s:%d: %s", self.name, host, port, admission.refusal
            )
            transport.close()
            return None
        if admission.evicted is not None:
            self.counters["evicted"] += 1
        s = self.settings
        deadlines = Deadlines(
            self._loop.time(),
            handshake_timeout=s.handshake_timeout if s.transport == "krb5" else 0.0,
            stall_timeout=s.stall_timeout,
            idle_timeout=s.idle_timeout,
        )
        source = Source(transport="audisp_remote", peer=host, peer_port=port, mech=session.mech, listener=self.name)
        writer = asyncio.StreamWriter(transport, protocol, None, self._loop)
        conn = _Connection(transport, writer, session, source, ticket, deadlines)
        ticket.close = conn.kill
        self._conns.add(conn)
        self.counters["connections"] += 1
        self._throttled.log(logging.INFO, "connected", "%s: connection from %s", self.name, conn.describe())
        conn.task = self._loop.create_task(self._run(conn))
        self._arm(conn)
        return conn

    async def _run(self, conn: _Connection) -> None:
        """The connection's task: the work the read callback could not finish, then the clean-up."""
        reason = "closed by client"
        try:
            reason = await self._serve(conn)
        except _CannotStore as exc:
            reason = str(exc)
            log.error("%s: closing %s: %s", self.name, conn.describe(), exc)
        except asyncio.CancelledError:
            reason = "server shutting down"
        except Exception as exc:  # never let one connection take the listener down
            reason = f"internal error: {type(exc).__name__}: {exc}"
            log.exception("%s: connection %s failed", self.name, conn.describe())
        finally:
            conn.done = True
            if conn.watchdog is not None:
                conn.watchdog.cancel()
            self._limiter.release(conn.ticket)
            self._conns.discard(conn)
            close_now(conn.writer)
            self.counters["unsent_peak"] = max(self.counters["unsent_peak"], conn.unsent_peak)
            if conn.ticket.proven:
                log.info("%s: connection %s ended: %s", self.name, conn.describe(), reason)
            else:
                self._throttled.log(
                    logging.INFO, "ended", "%s: connection %s ended: %s", self.name, conn.describe(), reason
                )

    def _received(self, conn: _Connection, data: bytes) -> None:
        """One read, in the transport's callback: parse it, then answer it here or queue it."""
        if conn.done or conn.ended or conn.kill_reason is not None or self._closing:
            return  # closing: nothing more is stored or answered (the client resends what is unacked)
        now = self._loop.time()
        received_ns = time.time_ns()
        conn.ticket.heard(time.monotonic())
        session = conn.session
        events = session.receive_data(data)
        conn.deadlines.input(now, mid_frame=session.mid_frame, completed=bool(events))
        if events:
            if session.mech != "krb5" and type(events[0]) is not Violation:
                conn.ticket.prove()  # a well-formed frame (or line): a real client, not a silent socket
            if conn.busy or not self._answer_now(conn, events, received_ns):
                conn.queue((events, received_ns))
                return
        self._arm(conn)

    def _answer_now(self, conn: _Connection, events: list[Event], received_ns: int) -> bool:
        """The fast path: records only, taken by the spool without waiting (its ack journal), so
        they are stored and answered inside the read callback. False: nothing was done, the task
        handles the events. Counts and replies exactly as :meth:`_flush` does."""
        append_now = self._append_now
        if append_now is None or conn.lock.locked() or len(events) > self.settings.max_records_in_flight:
            return False
        batch: list[Record] = []
        records = []
        for event in events:
            if type(event) is not Record:
                return False
            batch.append(event)
            if event.line:
                records.append(SpoolRecord("linux", event.line, conn.source, received_ns))
        if records:
            if append_now(records, conn.task) is None:
                return False
            counters = self.counters
            counters["records"] += len(records)
            if len(records) > counters["in_flight_peak"]:
                counters["in_flight_peak"] = len(records)
            conn.records += len(records)
            conn.last_record_ns = received_ns
            if conn.node is None:
                conn.node = node_name(records[0].payload)
        state = self.spool.state
        transport = conn.transport
        if conn.ended or transport.is_closing():
            return True  # stored; the reply could not be sent anyway (see _Connection.write)
        for r in batch:
            if r.seq is not None:
                transport.write(conn.session.record_reply(r.seq, state))
        unsent = transport.get_write_buffer_size()  # 0 unless the peer is slow to read
        if unsent:
            conn.unsent_peak = max(conn.unsent_peak, unsent)
            if replies_piled_up(conn.writer):
                conn.queue(([], received_ns))  # the task waits for the peer to read them (see _flush)
        return True

    def _failed(self, conn: _Connection, exc: Exception) -> None:
        """A bug or an unexpected spool error while handling a read: log it, close this connection."""
        log.error("%s: connection %s failed", self.name, conn.describe(), exc_info=exc)
        conn.kill_logged = True
        conn.kill(f"internal error: {type(exc).__name__}: {exc}")

    def _peer_gone(self, conn: _Connection, exc: BaseException | None) -> None:
        """EOF or a broken/closed connection: the task finishes what is queued, then ends."""
        if conn.eof or conn.done:
            return
        conn.eof = True
        conn.read_error = exc
        conn.queue(None)

    async def _serve(self, conn: _Connection) -> str:
        """Handle queued work in order; returns why the connection ends."""
        session = conn.session
        while not self._closing:
            work = await conn.next_work()
            if work is None:  # EOF, or the connection broke or was closed by us
                if conn.read_error is not None:
                    return conn.kill_reason or f"read error: {conn.read_error}"
                if isinstance(session, AsciiSession):
                    # No acks in ascii: a partial last line is still data the client sent.
                    async with conn.lock:
                        await self._handle_events(conn, session.flush(), time.time_ns())
                return self._closed_by_us(conn) if conn.kill_reason is not None else "closed by client"
            events, received_ns = work
            async with conn.lock:
                if conn.ended:
                    return "server shutting down"
                failure = await self._handle_events(conn, events, received_ns)
            if failure is not None:
                kind, reason = failure
                if kind != "broken":
                    self.counters["timeouts" if kind == "timeout" else "violations"] += 1
                    if reason.startswith("GSS failure"):  # Krb5Session's reason for a GSS error
                        self.counters["gss_failures"] += 1
                if conn.ticket.proven:
                    log.warning("%s: closing %s: %s", self.name, conn.describe(), reason)
                else:
                    self._throttled.warning("unproven", "%s: closing %s: %s", self.name, conn.describe(), reason)
                return reason
            if not conn.inbox:
                conn.deadlines.resume(self._loop.time())  # storing and replying was our time, not the peer's
                self._arm(conn)
                conn.busy = False
                conn.transport.resume_reading()
        return "server shutting down"

    def _closed_by_us(self, conn: _Connection) -> str:
        """Log (once) why the watchdog or the limiter closed this connection; return the reason."""
        reason = conn.kill_reason or ""
        if not conn.kill_logged:
            if conn.ticket.proven:
                log.warning("%s: closing %s: %s", self.name, conn.describe(), reason)
            else:
                self._throttled.warning("unproven", "%s: closing %s: %s", self.name, conn.describe(), reason)
        return reason

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
        if conn.busy or conn.lock.locked():
            return  # storing or replying: our time; _serve re-arms when done
        deadline = conn.deadlines.next()
        if deadline is None:
            return
        if deadline.at > self._loop.time():
            self._arm(conn)
            return
        if deadline.kind == "idle":
            conn.kill_logged = True  # an idle client is normal: the INFO "ended" line says it
        else:
            self.counters["timeouts"] += 1
        conn.kill(deadline.reason)

    async def _handle_events(self, conn: _Connection, events: list[Any], received_ns: int) -> tuple[str, str] | None:
        """Store and answer events in order, at most ``max_records_in_flight`` records per spool
        append, pausing while the client leaves too many replies unread. Returns ``(kind,
        reason)`` (kind "violation", "timeout" or "broken") when the connection must close."""
        window = self.settings.max_records_in_flight
        batch: list[Record] = []
        for event in events:
            if isinstance(event, Record):
                batch.append(event)
                if len(batch) >= window:
                    if failure := await self._flush(conn, batch, received_ns):
                        return failure
                    batch = []
                continue
            if failure := await self._flush(conn, batch, received_ns):
                return failure
            batch = []
            if isinstance(event, Violation):
                return "violation", event.reason
            if isinstance(event, Heartbeat):
                self.counters["heartbeats"] += 1
                conn.write(conn.session.heartbeat_reply(event.seq))
            elif isinstance(event, Send):
                conn.write(event.data)
            elif isinstance(event, Authenticated):
                conn.source = Source(
                    transport="audisp_remote",
                    peer=conn.source.peer,
                    peer_port=conn.source.peer_port,
                    mech=conn.session.mech,
                    principal=event.principal,
                    authenticated=True,
                    listener=self.name,
                )
                conn.ticket.prove()
                conn.deadlines.establish()
                log.info("%s: %s authenticated as %s", self.name, conn.describe(), event.principal)
        return await self._flush(conn, batch, received_ns)

    async def _flush(self, conn: _Connection, batch: list[Record], received_ns: int) -> tuple[str, str] | None:
        """Store ``batch``, send its replies, then wait while the client leaves them unread."""
        if batch:
            records = [SpoolRecord("linux", r.line, conn.source, received_ns) for r in batch if r.line]
            if records:
                self.counters["in_flight_peak"] = max(self.counters["in_flight_peak"], len(records))
                await self._store(conn, records)
                self.counters["records"] += len(records)
                conn.records += len(records)
                conn.last_record_ns = received_ns
                if conn.node is None:
                    conn.node = node_name(records[0].payload)
            state = self.spool.state
            for r in batch:
                if r.seq is not None:
                    conn.write(conn.session.record_reply(r.seq, state))
        if replies_piled_up(conn.writer):
            self.counters["backlog_pauses"] += 1
            stall = await wait_for_write_room(conn.writer, self.settings.stall_timeout)
            if stall is not None:
                return ("timeout" if stall.timed_out else "broken"), stall.reason
        return None

    async def _store(self, conn: _Connection, records: list[SpoolRecord]) -> None:
        """Append until it succeeds; until then no reply is sent, so the client keeps the record.

        Raises :class:`_CannotStore` when retrying cannot help (spool closed, record too large):
        the connection is then closed without a reply and the client resends elsewhere/later.
        """
        complained = False
        while True:
            try:
                await self.spool.append(records)
            except SpoolFull as exc:
                if not complained:
                    self.counters["held"] += 1
                    # The exception text says "spool full (why): ..." itself.
                    log.warning(
                        "%s: %s: withholding the ack for %d record(s) from %s until the spool takes them "
                        "(the client keeps and retransmits them)",
                        self.name,
                        exc,
                        len(records),
                        conn.describe(),
                    )
                    complained = True
                if not await self.spool.wait_for_space():
                    raise _CannotStore("spool closed while waiting for space") from None
                continue
            except (SpoolClosed, RecordTooLarge) as exc:
                raise _CannotStore(f"not stored, not acked: {exc}") from None
            except Exception as exc:  # an I/O error of the spool: transient until proven otherwise
                if not complained:
                    log.error(
                        "%s: spool error storing %d record(s) from %s, withholding the ack and retrying: %s",
                        self.name,
                        len(records),
                        conn.describe(),
                        exc,
                    )
                    complained = True
                await asyncio.sleep(RETRY_DELAY)
                continue
            if complained:
                log.info("%s: stored the held record(s) from %s", self.name, conn.describe())
            return

    async def close(self) -> None:
        """Stop accepting, send ENDING to every client (after its in-flight commit), close them."""
        if self._closing:
            await self.wait_closed()
            return
        self._closing = True
        if self._server is not None:
            self._server.close()
        conns = list(self._conns)
        await asyncio.gather(*(self._end(conn) for conn in conns), return_exceptions=True)
        await self._finish(conns)

    async def _finish(self, conns: list[_Connection]) -> None:
        """Let every handler run its clean-up (3.11's Server.wait_closed does not wait for them)."""
        current = asyncio.current_task()
        tasks = [c.task for c in conns if c.task is not None and c.task is not current]
        if tasks:
            await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE)
        if self._server is not None:
            await self._server.wait_closed()
        self._closed.set()

    async def _end(self, conn: _Connection) -> None:
        try:
            await asyncio.wait_for(conn.lock.acquire(), SHUTDOWN_GRACE)
            locked = True
        except TimeoutError:
            # Stuck waiting for spool space: the unacked record stays with the client, which
            # treats ENDING as "keep it queued and resend after reconnecting".
            locked = False
            if conn.task is not None:
                conn.task.cancel()
        try:
            with contextlib.suppress(Exception):
                conn.write(conn.session.ending())
                conn.ended = True
                await asyncio.wait_for(conn.writer.drain(), SHUTDOWN_GRACE)
            conn.writer.close()
            if conn.task is not None and not conn.task.done():
                conn.task.cancel()
        finally:
            if locked:
                conn.lock.release()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def abort(self) -> None:
        """Drop every connection at once, no ENDING: what clients see when the receiver crashes."""
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


async def start_audisp_remote_server(
    settings: AudispRemoteListener, gss: Gss, spool: SpoolLike, *, name: str
) -> AudispRemoteServer:
    """Start one audisp-remote listener; ``await server.close()`` sends ENDING to every client."""
    server = AudispRemoteServer(settings, gss, spool, name=name)
    await server.start()
    return server
