"""Sans-I/O core of the illumos/Solaris ``audit_remote`` protocol (specs/bsm.md §11).

One :class:`AuditRemoteConnection` per TCP connection, speaking the receive contract
(:mod:`~auditrecv.receive.contract`): bytes in, events and bytes out, acks only when the server
says the record is durable. States: VERSION (plaintext ``"01"``) → CONTEXT (GSS tokens; the
mechanism is chosen from the OID of the first token and its context comes from the policy's
factories: Kerberos/SPNEGO, illumos mech_dummy) → RECORDS (``wrap(u64 seq ‖ record)`` in,
``u64 seq ‖ MIC(u64 seq ‖ record)`` out) → CLOSED.

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from auditrecv.receive.contract import (
    AckToken,
    Authenticated,
    ConnectionFailed,
    Event,
    Outbox,
    PrincipalPolicy,
    RecordReceived,
    SecurityContext,
    SecurityFailure,
    SpoolState,
)
from auditrecv.receive.framing import FrameDecoder, FrameError, encode_frame

__all__ = [
    "SUPPORTED_VERSION",
    "AuditRemoteConnection",
    "AuditRemotePolicy",
    "MicContext",
    "Phase",
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


class MicContext(SecurityContext, Protocol):
    """audit_remote acks with MICs; the mechanism says whether it authenticates anyone."""

    mech_name: str
    authenticated: bool

    def get_mic(self, data: bytes) -> bytes: ...


# Given the channel-binding application data (the client's versions + ours), a new context.
ContextFactory = Callable[[bytes], MicContext]


@dataclass(frozen=True)
class AuditRemotePolicy:
    """Per-connection rules; the listener builds one per peer (dummy permission depends on it).

    ``contexts``: for each mechanism a first token may name ("krb5", "spnego", "dummy"), the
    factory of its acceptor context, or why that mechanism is refused (one log-ready phrase).
    """

    contexts: Mapping[str, ContextFactory | str]
    principals: PrincipalPolicy
    require_channel_bound: bool = True
    max_handshake_token: int = 65536
    max_record_token: int = 4 * 1024 * 1024


class AuditRemoteConnection(Outbox):
    """Protocol state for one client connection (a :class:`~auditrecv.receive.contract.ReceiveCore`)."""

    def __init__(self, policy: AuditRemotePolicy) -> None:
        super().__init__()
        self.policy = policy
        self.phase = Phase.VERSION
        self.client_versions = b""
        self.context: MicContext | None = None
        self.handshake: Authenticated | None = None
        self.records_received = 0
        self.records_acked = 0
        self._frames = FrameDecoder(policy.max_handshake_token)

    # ----------------------------------------------------------------- input

    def receive_data(self, data: bytes, now_ns: int, max_records: int | None = None) -> list[Event]:
        """Consume received bytes; return what happened. After a :class:`ConnectionFailed` the
        connection is CLOSED and further input is ignored. Frames beyond ``max_records`` records
        stay buffered (not even unwrapped) until a later call."""
        if self.phase is Phase.CLOSED:
            return []
        events: list[Event] = []
        records = 0
        try:
            if data:
                self._frames.feed(data)
            while self._open():  # _on_frame may close it
                if max_records is not None and records >= max_records and self.phase is Phase.RECORDS:
                    break
                frame = self._frames.next_frame()
                if frame is None:
                    break
                event = self._on_frame(frame, now_ns)
                if event is not None:
                    events.append(event)
                    records += type(event) is RecordReceived
        except FrameError as exc:
            events.append(self._fail(f"framing: {exc} in the {self.phase.value} phase"))
        except SecurityFailure as exc:
            events.append(self._fail(f"GSS {exc}", security=True))
        return events

    def end_of_input(self, now_ns: int) -> list[Event]:
        if self.phase is Phase.CLOSED:
            return []
        if self.mid_frame:
            return [self._fail("peer closed the connection in the middle of a frame")]
        if self.phase is not Phase.RECORDS:
            return [self._fail(f"peer closed the connection during the {self.phase.value} phase")]
        self.phase = Phase.CLOSED
        return []

    def _open(self) -> bool:
        return self.phase is not Phase.CLOSED

    def _fail(self, reason: str, *, security: bool = False) -> ConnectionFailed:
        self.phase = Phase.CLOSED
        return ConnectionFailed(reason, security=security)

    def _on_frame(self, frame: bytes, now_ns: int) -> Event | None:
        if self.phase is Phase.RECORDS:
            return self._on_record(frame, now_ns)
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
            if isinstance(made, ConnectionFailed):
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
        self.handshake = Authenticated(
            mech=ctx.mech_name, principal=principal, authenticated=ctx.authenticated, target=ctx.target
        )
        self.phase = Phase.RECORDS
        self._frames.max_length = self.policy.max_record_token
        return self.handshake

    def _new_context(self, first_token: bytes) -> MicContext | ConnectionFailed:
        mech = mechanism_of(first_token)
        if mech is None:
            head = first_token[:16].hex(" ")
            return self._fail(f"unknown GSS mechanism in the first context token ({head} ...)")
        factory = self.policy.contexts.get(mech, "not supported")
        if isinstance(factory, str):
            return self._fail(f"{mech} mechanism refused: {factory}")
        return factory(self.client_versions + SUPPORTED_VERSION)

    def _on_record(self, frame: bytes, now_ns: int) -> Event:
        ctx = self.context
        assert ctx is not None
        if ctx.expired:
            return self._fail("GSS context expired; the client will reconnect and retransmit", security=True)
        plaintext = ctx.unwrap(frame, require_confidentiality=True)
        if len(plaintext) < 8:
            return self._fail(f"record token of {len(plaintext)} bytes has no 8-byte sequence number")
        self.records_received += 1
        # The ack token is the whole plaintext: the MIC of the ack covers seq ‖ record.
        return RecordReceived(plaintext[8:], plaintext, now_ns)

    # ----------------------------------------------------------------- output

    def ack(self, token: AckToken, spool_state: SpoolState = "ok") -> None:
        """Queue the ack ``u64 seq ‖ MIC(seq ‖ record)`` for a record received on this connection
        (``token`` is its :attr:`RecordReceived.ack_token`); call only once it is durable.
        Raises SecurityFailure if the MIC cannot be made (close then)."""
        if not isinstance(token, bytes) or len(token) < 8:
            raise TypeError("an audit_remote ack token is the record's plaintext")
        # A record that arrived before a bad frame in the same read is still acked once durable: the
        # context that made it is established even though the connection is now closing.
        if self.context is None or self.handshake is None:
            raise ValueError("no established context to ack with")
        mic = self.context.get_mic(token)
        self.records_acked += 1
        self._out.append(encode_frame(token[:8] + mic))

    def answer_heartbeat(self, token: int) -> None:
        raise ValueError("audit_remote has no heartbeats")

    def end(self) -> None:
        """audit_remote has no goodbye: the host reconnects and retransmits what is unacked."""

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
