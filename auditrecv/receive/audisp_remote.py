"""Sans-I/O cores of the Linux ``audisp-remote`` protocol (specs/linux.md §3).

Three cores speak the receive contract (:mod:`~auditrecv.receive.contract`), so the one server
does not care which it drives:

* :class:`ManagedSession` - ``format = managed`` over plain TCP: 16-byte little-endian header
  (magic ``0xff0000fe``, type, length, seq) + one audit line per MESSAGE frame, strict
  stop-and-wait, every frame answered with a reply carrying the same seq.
* :class:`AsciiSession` - ``format = ascii``: bare ``\\n``-terminated lines, no replies at all.
* :class:`Krb5Session` - ``transport = krb5``: the managed frames, each one a ``gss_wrap`` token
  behind a 4-byte big-endian length, after a leading empty token and a raw-krb5 handshake with
  no channel bindings; every reply is wrapped too.

A record's ack token is its frame's seq; the server asks for the reply only once the record is
stored, so the client never sees a reply that would make it drop a record that is not stored
(see :func:`reply_type_for_stored`).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

from auditrecv.receive.contract import (
    AckToken,
    Authenticated,
    ConnectionFailed,
    Event,
    Heartbeat,
    Outbox,
    PrincipalPolicy,
    RecordReceived,
    SecurityContext,
    SecurityFailure,
    SpoolState,
    escape_pattern,
    hold_beyond,
)
from auditrecv.receive.framing import FrameDecoder, FrameError, encode_frame

MAGIC = 0xFF0000FE
MAGIC_BYTES = struct.pack("<I", MAGIC)
HEADER = struct.Struct("<IBBIHI")  # magic, header version, message version, type, length, seq
HEADER_SIZE = HEADER.size  # 16
MAX_AUDIT_MESSAGE_LENGTH = 8970  # both reference peers cap frames at this (lib/private.h)

DEFAULT_MAX_TOKEN = 65536  # stock auditd rejects > 8970, which breaks near-maximum wrapped lines


class MessageType(IntEnum):
    """Frame types (lib/private.h)."""

    MESSAGE = 0x00000000
    HEARTBEAT = 0x00000001
    ACK = 0x40000000
    ENDING = 0x40000001
    DISKLOW = 0x50000001
    DISKFULL = 0x60000001
    DISKERROR = 0x60000002


REPLY_MASK = 0x40000000
_MESSAGE = int(MessageType.MESSAGE)  # plain ints for the per-record path (enum lookups cost)
_ACK_HEAD = HEADER.pack(MAGIC, 0, 0, MessageType.ACK, 0, 0)[:12]  # an ACK up to its seq (the header's last 4 bytes)

DISKLOW_TEXT = b"auditrecv spool is filling up"


# --------------------------------------------------------------------------- frames


@dataclass(frozen=True, slots=True)
class Frame:
    type: int
    seq: int
    payload: bytes


def pack_frame(msg_type: int, seq: int, payload: bytes = b"") -> bytes:
    """Header + payload exactly as audisp-remote and auditd lay it out (versions 0)."""
    if len(payload) > 0xFFFF:
        raise ValueError("payload longer than the 16-bit length field")
    return HEADER.pack(MAGIC, 0, 0, msg_type, len(payload), seq & 0xFFFFFFFF) + payload


def ack_frame(seq: int) -> bytes:
    return pack_frame(MessageType.ACK, seq)


def ending_frame() -> bytes:
    """What auditd sends every client on shutdown: ENDING, seq 0, no text."""
    return pack_frame(MessageType.ENDING, 0)


def reply_type_for_stored(spool_state: str) -> MessageType:
    """The reply for a record that IS durably stored.

    Only replies the client counts as delivered under every client setting are allowed here:
    ACK, or DISKLOW (``disk_low_action`` never re-queues the record; auditd sends it while its
    disk is low, and the operator's client-side action - ignore/syslog/suspend/... - is the
    reaction they chose). DISKFULL/DISKERROR are never used: with the default ``warn_once`` the
    client keeps and later resends a record we already stored (a duplicate), with ``syslog`` it
    drops a record - and for records we could NOT store the server sends nothing at all (the
    client times out, reconnects and resends; see the server's spool-full handling).
    """
    return MessageType.DISKLOW if spool_state == "low" else MessageType.ACK


class FrameParser:
    """Incremental parser of managed frames; tolerates headers and payloads split anywhere."""

    def __init__(self, max_payload: int = MAX_AUDIT_MESSAGE_LENGTH) -> None:
        self.max_payload = max_payload
        self._buf = bytearray()
        self.error: str | None = None

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        """Every complete frame, in order. A bad magic or an oversize length stops parsing for
        good: the frames before it are still returned and :attr:`error` says why."""
        if self.error is not None:
            return []
        # Stop-and-wait clients send exactly one frame per read: parse straight from ``data``
        # and only buffer a partial tail.
        if self._buf:
            self._buf += data
        buf: bytes | bytearray = self._buf or data
        frames: list[Frame] = []
        pos = 0
        size = len(buf)
        while size - pos >= HEADER_SIZE:
            magic, _hver, _mver, msg_type, length, seq = HEADER.unpack_from(buf, pos)
            if magic != MAGIC:
                self.error = _describe_bad_magic(bytes(buf[pos : pos + HEADER_SIZE]))
                break
            if length > self.max_payload:
                self.error = (
                    f"frame length {length} exceeds the limit {self.max_payload} (type 0x{msg_type:08x}, seq {seq})"
                )
                break
            end = pos + HEADER_SIZE + length
            if size < end:
                break
            frames.append(Frame(msg_type, seq, bytes(buf[pos + HEADER_SIZE : end])))
            pos = end
        if self.error is not None:
            self._buf = bytearray()
        elif buf is self._buf:
            del self._buf[:pos]
        elif pos < size:
            self._buf = bytearray(buf[pos:])
        return frames


def _describe_bad_magic(head: bytes) -> str:
    if head.startswith((b"type=", b"node=")):
        return "bad magic: the client sends plain lines (audisp-remote format = ascii?) to a managed listener"
    return f"bad magic: header starts {head[:16].hex()}, expected fe0000ff"


# --------------------------------------------------------------------------- sessions


class _Replies(Outbox):
    """The output half shared by the cores, and the events parsed beyond ``max_records``."""

    def __init__(self) -> None:
        super().__init__()
        self._held: list[Event] = []  # returned first next time
        self.frames_received = 0

    @property
    def frame_ready(self) -> bool:
        return bool(self._held)

    def _take(self, events: list[Event], max_records: int | None) -> list[Event]:
        if self._held:
            events = self._held + events
            self._held = []
        return hold_beyond(events, max_records, self._held)


class ManagedSession(_Replies):
    """``format = managed`` over plain TCP."""

    def __init__(self, max_payload: int = MAX_AUDIT_MESSAGE_LENGTH) -> None:
        super().__init__()
        self._parser = FrameParser(max_payload)
        self._failed = False

    def receive_record(self, data: bytes) -> tuple[bytes, AckToken, bytes] | None:
        """The stop-and-wait client's usual read, exactly one whole MESSAGE frame: its payload, seq and
        reply without the general path's objects (the reply's header is fixed, its seq the frame's)."""
        parser = self._parser
        # parser._buf, not the ``buffered`` property: this runs once per record on the event loop.
        if len(data) <= HEADER_SIZE or self._failed or parser._buf or self._held:
            return None
        magic, _hver, _mver, msg_type, length, seq = HEADER.unpack_from(data)
        if magic != MAGIC or msg_type != _MESSAGE or length != len(data) - HEADER_SIZE or length > parser.max_payload:
            return None
        self.frames_received += 1
        payload = data[HEADER_SIZE:-1] if data[-1] == 10 else data[HEADER_SIZE:]  # its newline (see frames_to_events)
        return payload, seq, _ACK_HEAD + data[12:HEADER_SIZE]

    def receive_data(self, data: bytes, now_ns: int, max_records: int | None = None) -> list[Event]:
        if self._failed:
            return self._take([], max_records)
        frames = self._parser.feed(data)
        self.frames_received += len(frames)
        events = self.frames_to_events(frames, now_ns)
        if self._parser.error is not None and not self._failed:
            self._failed = True
            events.append(ConnectionFailed(self._parser.error))
        return self._take(events, max_records)

    def end_of_input(self, now_ns: int) -> list[Event]:
        if self._failed or not self._parser.buffered:
            return []
        self._failed = True
        return [ConnectionFailed("peer closed the connection in the middle of a frame")]

    @property
    def mid_frame(self) -> bool:
        return self._parser.buffered > 0

    def frames_to_events(self, frames: Sequence[Frame], now_ns: int) -> list[Event]:
        """Client frames -> events, in order; stops at the first frame that kills the connection."""
        events: list[Event] = []
        for frame in frames:
            if frame.type == MessageType.HEARTBEAT:
                events.append(Heartbeat(frame.seq))
            elif frame.type & REPLY_MASK:
                # Only servers send reply types; a client sending one is confused or hostile.
                self._failed = True
                reason = f"client sent server reply type 0x{frame.type:08x} (seq {frame.seq})"
                events.append(ConnectionFailed(reason))
                break
            else:
                # MESSAGE, and like auditd any other non-reply type: store its text rather than
                # ack it away. An empty payload carries nothing to store: it is still an event, so
                # its reply goes out only after the frames before it are stored.
                # audisp-remote sends the line with its newline; auditd strips exactly one.
                payload = frame.payload[:-1] if frame.payload.endswith(b"\n") else frame.payload
                events.append(RecordReceived(payload, frame.seq, now_ns))
        return events

    def ack(self, token: AckToken, spool_state: SpoolState = "ok") -> None:
        self._out.append(self.reply(token, spool_state))

    def reply(self, token: AckToken, spool_state: SpoolState) -> bytes:
        """The reply frame for a stored record (Krb5Session wraps it)."""
        if not isinstance(token, int):
            raise TypeError("an audisp-remote ack token is the frame's seq")
        reply_type = reply_type_for_stored(spool_state)
        return pack_frame(reply_type, token, DISKLOW_TEXT if reply_type == MessageType.DISKLOW else b"")

    def answer_heartbeat(self, token: int) -> None:
        self._out.append(ack_frame(token))

    def end(self) -> None:
        self._out.append(ending_frame())


class AsciiSession(_Replies):
    """``format = ascii``: newline-terminated lines, nothing is ever sent back.

    The client cannot retransmit in this format, so the only back-pressure is TCP itself: the
    server simply stops reading while the spool is full. Lines longer than ``max_line`` are cut
    into fragments, just as audisp-remote cuts oversize lines in managed mode.
    """

    def __init__(self, max_line: int = MAX_AUDIT_MESSAGE_LENGTH) -> None:
        super().__init__()
        self.max_line = max_line
        self._buf = bytearray()
        self._checked_magic = False
        self._failed = False

    def receive_data(self, data: bytes, now_ns: int, max_records: int | None = None) -> list[Event]:
        if self._failed:
            return self._take([], max_records)
        self._buf += data
        if not self._checked_magic:
            if len(self._buf) < 4 and MAGIC_BYTES.startswith(bytes(self._buf)):
                return self._take([], max_records)
            self._checked_magic = True
            if self._buf.startswith(MAGIC_BYTES):
                self._failed = True
                reason = "client sends managed frames (audisp-remote format = managed) to an ascii listener"
                return self._take([ConnectionFailed(reason)], max_records)
        events: list[Event] = []
        buf = self._buf
        pos = 0
        while True:
            nl = buf.find(b"\n", pos)
            if nl < 0 or nl - pos > self.max_line:
                if len(buf) - pos > self.max_line:
                    events.append(RecordReceived(bytes(buf[pos : pos + self.max_line]), None, now_ns))
                    pos += self.max_line
                    continue
                break
            if nl > pos:  # skip empty lines
                events.append(RecordReceived(bytes(buf[pos:nl]), None, now_ns))
            pos = nl + 1
        if pos:
            del buf[:pos]
        self.frames_received += len(events)
        return self._take(events, max_records)

    @property
    def mid_frame(self) -> bool:
        return bool(self._buf)

    def end_of_input(self, now_ns: int) -> list[Event]:
        """An unterminated last line is still a line (never drop data the peer sent)."""
        if self._failed or not self._buf:
            return []
        line = bytes(self._buf)
        self._buf.clear()
        return [RecordReceived(line, None, now_ns)]

    def ack(self, token: AckToken, spool_state: SpoolState = "ok") -> None:
        """No replies in this format."""

    def answer_heartbeat(self, token: int) -> None:
        """No heartbeats in this format."""

    def end(self) -> None:
        """No goodbye in this format."""


# --------------------------------------------------------------------------- krb5


def default_principals(service: str, realm: str | None) -> list[str]:
    """Like auditd: ``<service>/<anything>@<default realm>``; no default realm: nobody (fail closed)."""
    return [f"{escape_pattern(service)}/*@{escape_pattern(realm)}"] if realm else []


class WrapContext(SecurityContext, Protocol):
    """audisp-remote's krb5 transport wraps every reply (no MICs)."""

    def wrap(self, data: bytes, *, confidential: bool = True) -> bytes: ...


class Krb5Session(_Replies):
    """``transport = krb5``: token framing + GSS handshake, then wrapped managed frames both ways."""

    def __init__(
        self,
        context: WrapContext,
        principals: PrincipalPolicy,
        *,
        service: str = "auditd",
        max_payload: int = MAX_AUDIT_MESSAGE_LENGTH,
        max_token: int = DEFAULT_MAX_TOKEN,
    ) -> None:
        super().__init__()
        self._context = context
        self._service = service  # "" = accept whatever keytab principal the client targeted
        self._principals = principals
        self._tokens = FrameDecoder(max_token)
        self._inner = ManagedSession(max_payload)
        self._frames = FrameParser(max_payload)
        self._failed = False
        self.authenticated = False

    def receive_data(self, data: bytes, now_ns: int, max_records: int | None = None) -> list[Event]:
        if self._failed:
            return self._take([], max_records)
        events: list[Event] = []
        try:
            self._tokens.feed(data)
            for token in self._tokens.frames():
                self.frames_received += 1
                if not self.authenticated:
                    self._handshake(token, events)
                else:
                    events.extend(self._data_token(token, now_ns))
                if events and type(events[-1]) is ConnectionFailed:
                    break
        except FrameError as exc:
            events.append(ConnectionFailed(f"krb5 token framing: {exc}"))
        except SecurityFailure as exc:  # the client reconnects and resends
            events.append(ConnectionFailed(f"GSS failure: {exc}", security=True))
        if events and type(events[-1]) is ConnectionFailed:
            self._failed = True
        return self._take(events, max_records)

    def end_of_input(self, now_ns: int) -> list[Event]:
        if self._failed:
            return []
        self._failed = True
        if self.mid_frame:
            return [ConnectionFailed("peer closed the connection in the middle of a frame")]
        if not self.authenticated:
            return [ConnectionFailed("peer closed the connection during the krb5 handshake")]
        return []

    @property
    def mid_frame(self) -> bool:
        return self._tokens.mid_frame or self._frames.buffered > 0

    def _handshake(self, token: bytes, events: list[Event]) -> None:
        if not token:
            return  # the client's "someone has to go first" empty token
        out = self._context.step(token)
        if not self._context.complete:
            if out:
                self._out.append(encode_frame(out))
            return
        # audisp-remote always requests confidentiality and sends no channel bindings.
        self._context.check(require_channel_bound=False, require_confidentiality=True)
        target = self._context.target
        if self._service and target.split("/", 1)[0].split("@", 1)[0] != self._service:
            # The keytab may hold other services (host/, audit/); audisp-remote targets auditd@host.
            events.append(ConnectionFailed(f"client targeted {target!r}, not the {self._service!r} service"))
            return
        principal = self._context.initiator
        if not self._principals.allows(principal):
            events.append(ConnectionFailed(f"unauthorized client principal {principal!r}"))
            return
        # The final token (the AP-REP) goes out only to an authorized client.
        if out:
            self._out.append(encode_frame(out))
        self.authenticated = True
        events.append(Authenticated("krb5", principal, True, target))

    def _data_token(self, token: bytes, now_ns: int) -> list[Event]:
        if self._context.expired:
            # The ticket behind the context ran out; the client reconnects with a fresh one.
            return [ConnectionFailed("GSS context expired", security=True)]
        message = self._context.unwrap(token, require_confidentiality=True)
        # One frame per token in practice; a stream parser costs nothing and tolerates splits.
        events = self._inner.frames_to_events(self._frames.feed(message), now_ns)
        if self._frames.error is not None and not (events and type(events[-1]) is ConnectionFailed):
            events.append(ConnectionFailed(self._frames.error))  # one per read: the first says why
        return events

    def _wrap(self, frame: bytes) -> bytes:
        return encode_frame(self._context.wrap(frame, confidential=True))

    def ack(self, token: AckToken, spool_state: SpoolState = "ok") -> None:
        self._out.append(self._wrap(self._inner.reply(token, spool_state)))

    def answer_heartbeat(self, token: int) -> None:
        self._out.append(self._wrap(ack_frame(token)))

    def end(self) -> None:
        """Wrapped ENDING; nothing before authentication (the client could not unwrap it)."""
        if self.authenticated and not self._failed:
            self._out.append(self._wrap(ending_frame()))
