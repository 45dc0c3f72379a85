"""Sans-I/O core of the illumos/Solaris ``audit_remote`` protocol (specs/bsm.md §11).

One :class:`AuditRemoteConnection` per TCP connection. The server feeds it received bytes and
gets back events (:class:`HandshakeComplete`, :class:`RecordReceived`, :class:`Failed`) plus
bytes to send (:meth:`~AuditRemoteConnection.data_to_send`). The core never acks by itself:
the server calls :meth:`~AuditRemoteConnection.ack` only after the record is durably spooled,
because an ack transfers responsibility for the record from the host to us.

States: VERSION (plaintext ``"01"``) → CONTEXT (GSS tokens, mechanism chosen from the OID of the
first token: Kerberos/SPNEGO through python-gssapi, illumos mech_dummy natively) → RECORDS
(``wrap(u64 seq ‖ record)`` in, ``u64 seq ‖ MIC(u64 seq ‖ record)`` out) → CLOSED.

Rules from illumos ``transport.c`` that shape this code:

* During the handshake send a token only when the acceptor produced one, never an empty one:
  the client reads a token only while its ``init_sec_context`` says CONTINUE_NEEDED, and a
  stray token later is taken for an ack, fails verification and resets the connection.
* Ack every received record exactly once; never ack a seq the client did not send on this
  connection (it would not verify and the client would reset).
* Any protocol or GSS error closes the connection: the client reconnects and retransmits every
  unacked record, so closing never loses data.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from auditrecv.receive import dummy_mech
from auditrecv.receive.context import SecurityContext
from auditrecv.receive.framing import FrameDecoder, FrameError, encode_frame
from auditrecv.receive.gss import (
    GssFailure,
    KerberosAcceptor,
    PrincipalAllowlist,
    null_address_bindings,
)

__all__ = [
    "SUPPORTED_VERSION",
    "AuditRemoteConnection",
    "AuditRemotePolicy",
    "Event",
    "Failed",
    "HandshakeComplete",
    "Phase",
    "RecordReceived",
    "mechanism_of",
]

SUPPORTED_VERSION = b"01"
_SEQ = struct.Struct(">Q")

# DER-encoded OIDs (tag, length, value) as they appear after "60 <len>" in an initial token.
_KRB5_OID_TLV = bytes.fromhex("06092a864886f712010202")  # 1.2.840.113554.1.2.2
_SPNEGO_OID_TLV = bytes.fromhex("06062b0601050502")  # 1.3.6.1.5.5.2
_DUMMY_OID_TLV = bytes.fromhex("060a2b06010401 2a021a0102".replace(" ", ""))


def mechanism_of(token: bytes) -> str | None:
    """Which mechanism an initial context token is for: "krb5", "spnego", "dummy" or None.

    Looks only at the RFC 2743 generic header (``60 <DER length> <OID TLV>``); the token body
    is left to the mechanism.
    """
    if len(token) < 2 or token[0] != 0x60:
        return None
    first = token[1]
    pos = 2 if first < 0x80 else 2 + (first & 0x7F)
    if first == 0x80 or first > 0x84:
        return None
    oid = token[pos : pos + 12]
    if oid.startswith(_KRB5_OID_TLV):
        return "krb5"
    if oid.startswith(_SPNEGO_OID_TLV):
        return "spnego"
    if oid.startswith(_DUMMY_OID_TLV):
        return "dummy"
    return None


class Phase(Enum):
    VERSION = "version"
    CONTEXT = "context"
    RECORDS = "records"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class HandshakeComplete:
    """The context is established and authorized; records may follow."""

    mech: str  # "krb5" or "dummy"
    principal: str  # authenticated initiator ("" for dummy)
    authenticated: bool
    target: str  # the service principal the client asked for ("" for dummy)


@dataclass(slots=True, eq=False)
class RecordReceived:
    """One unwrapped record. ``plaintext`` (seq ‖ record) is kept because the ack MIC covers it."""

    seq: int
    plaintext: bytes
    received_ns: int
    acked: bool = False

    @property
    def record(self) -> bytes:
        """The BSM record exactly as auditd handed it to the plugin."""
        return self.plaintext[8:]


@dataclass(frozen=True, slots=True)
class Failed:
    """The connection must be closed; ``reason`` is one log-ready line."""

    reason: str


Event = HandshakeComplete | RecordReceived | Failed


class _Acceptor(SecurityContext, Protocol):
    """audit_remote acks with MICs; the mechanism decides whether the records are authenticated."""

    mech_name: str
    authenticated: bool

    def get_mic(self, data: bytes) -> bytes: ...


@dataclass
class AuditRemotePolicy:
    """Per-connection rules; the server builds one per peer (dummy permission depends on it)."""

    acceptor: KerberosAcceptor | None = None  # None: Kerberos clients are refused
    dummy_allowed: bool = False
    # Why the dummy mech is refused, naming the setting that refuses it (for the log line).
    dummy_refusal: str = "not enabled for this peer"
    require_channel_bound: bool = True
    principals: PrincipalAllowlist = field(default_factory=PrincipalAllowlist)
    max_handshake_token: int = 65536
    max_record_token: int = 4 * 1024 * 1024


class AuditRemoteConnection:
    """Protocol state for one client connection. Not thread-safe; one owner (the server task)."""

    def __init__(self, policy: AuditRemotePolicy) -> None:
        self.policy = policy
        self.phase = Phase.VERSION
        self.client_versions = b""
        self.context: _Acceptor | None = None
        self.handshake: HandshakeComplete | None = None
        self.close_reason = ""
        self.records_received = 0
        self.records_acked = 0
        self._frames = FrameDecoder(policy.max_handshake_token)
        self._out: list[bytes] = []

    # ----------------------------------------------------------------- input

    def receive_data(self, data: bytes, max_records: int | None = None) -> list[Event]:
        """Consume received bytes; return what happened. After a :class:`Failed` event the
        connection is CLOSED and further input is ignored.

        ``max_records`` stops after that many records; later frames stay buffered (not even
        unwrapped) until a later call, ``receive_data(b"", n)`` when no new bytes arrived
        (:attr:`frame_ready` says whether one is waiting)."""
        if self.phase is Phase.CLOSED:
            return []
        events: list[Event] = []
        records = 0
        try:
            if data:
                self._frames.feed(data)
            while self.phase is not Phase.CLOSED:
                if max_records is not None and records >= max_records and self.phase is Phase.RECORDS:
                    break
                frame = self._frames.next_frame()
                if frame is None:
                    break
                event = self._on_frame(frame)
                if event is not None:
                    events.append(event)
                    records += isinstance(event, RecordReceived)
        except FrameError as exc:
            events.append(self._fail(f"framing: {exc} in the {self.phase.value} phase"))
        except GssFailure as exc:
            events.append(self._fail(f"GSS {exc}"))
        except dummy_mech.DummyTokenError as exc:
            events.append(self._fail(f"dummy mech: {exc}"))
        return events

    def _fail(self, reason: str) -> Failed:
        self.phase = Phase.CLOSED
        self.close_reason = reason
        return Failed(reason)

    def _on_frame(self, frame: bytes) -> Event | None:
        if self.phase is Phase.RECORDS:
            return self._on_record(frame)
        if self.phase is Phase.VERSION:
            return self._on_version(frame)
        return self._on_context_token(frame)

    def _on_version(self, frame: bytes) -> Event | None:
        offered = [v.strip() for v in frame.split(b",")]
        if SUPPORTED_VERSION not in offered:
            shown = frame[:64].decode("ascii", "backslashreplace")
            return self._fail(f"version negotiation: client offered {shown!r}, only '01' is supported")
        self.client_versions = frame
        self._out.append(encode_frame(SUPPORTED_VERSION))
        self.phase = Phase.CONTEXT
        return None

    def _on_context_token(self, frame: bytes) -> Event | None:
        if self.context is None:
            made = self._new_context(frame)
            if isinstance(made, Failed):
                return made
            self.context = made
        ctx = self.context
        reply = ctx.step(frame)
        if not ctx.complete:
            if reply:
                self._out.append(encode_frame(reply))
            return None
        # The final reply (Kerberos: the mutual-auth AP-REP) goes out only once the client is
        # authorized; a refused client gets nothing but the close.
        ctx.check(require_channel_bound=self.policy.require_channel_bound and ctx.authenticated)
        principal = ctx.initiator
        if ctx.authenticated and not self.policy.principals.allows(principal):
            return self._fail(f"client principal {principal!r} is not in allowed_principals")
        if reply:
            self._out.append(encode_frame(reply))
        self.handshake = HandshakeComplete(
            mech=ctx.mech_name, principal=principal, authenticated=ctx.authenticated, target=ctx.target
        )
        self.phase = Phase.RECORDS
        self._frames.max_length = self.policy.max_record_token
        return self.handshake

    def _new_context(self, first_token: bytes) -> _Acceptor | Failed:
        mech = mechanism_of(first_token)
        if mech == "dummy":
            if not self.policy.dummy_allowed:
                return self._fail(f"dummy mech refused: {self.policy.dummy_refusal}")
            return dummy_mech.DummyAcceptorContext()
        if mech in ("krb5", "spnego"):
            if self.policy.acceptor is None:
                return self._fail(f"{mech} context refused: no Kerberos acceptor is configured")
            bindings = null_address_bindings(self.client_versions + SUPPORTED_VERSION)
            return self.policy.acceptor.new_context(bindings)
        head = first_token[:16].hex(" ")
        return self._fail(f"unknown GSS mechanism in the first context token ({head} ...)")

    def _on_record(self, frame: bytes) -> Event:
        ctx = self.context
        assert ctx is not None
        if ctx.expired:
            return self._fail("GSS context expired; the client will reconnect and retransmit")
        plaintext = ctx.unwrap(frame, require_confidentiality=True)
        if len(plaintext) < 8:
            return self._fail(f"record token of {len(plaintext)} bytes has no 8-byte sequence number")
        (seq,) = _SEQ.unpack_from(plaintext)
        self.records_received += 1
        return RecordReceived(seq=seq, plaintext=plaintext, received_ns=time.time_ns())

    # ----------------------------------------------------------------- output

    def ack(self, record: RecordReceived) -> None:
        """Queue the ack ``u64 seq ‖ MIC(seq ‖ record)`` for a record received on this connection;
        call only once it is durable. Raises GssFailure if the MIC cannot be made (close then)."""
        if record.acked:
            raise ValueError(f"record seq {record.seq} was already acked")
        # A record that arrived before a bad frame in the same read is still acked once durable: the
        # context that made it is established even though the connection is now closing.
        if self.context is None or self.handshake is None:
            raise ValueError("no established context to ack with")
        mic = self.context.get_mic(record.plaintext)
        record.acked = True
        self.records_acked += 1
        self._out.append(encode_frame(record.plaintext[:8] + mic))

    def data_to_send(self) -> bytes:
        """Everything queued for the peer since the last call (possibly b"")."""
        if not self._out:
            return b""
        out = b"".join(self._out)
        self._out.clear()
        return out

    @property
    def mid_frame(self) -> bool:
        """True while a frame is partially received (a stalled peer)."""
        return self._frames.mid_frame and not self._frames.frame_ready

    @property
    def frames_received(self) -> int:
        """Complete frames taken from the stream so far (handshake tokens included)."""
        return self._frames.frames_decoded

    @property
    def frame_ready(self) -> bool:
        """A complete frame is buffered but was held back by ``max_records``."""
        return self.phase is not Phase.CLOSED and self._frames.frame_ready
