"""Sans-I/O core of the Linux ``audisp-remote`` protocol (specs/linux.md §3).

Three session types share one event vocabulary so the asyncio server does not care which one
it drives:

* :class:`ManagedSession` - ``format = managed`` over plain TCP: 16-byte little-endian header
  (magic ``0xff0000fe``, type, length, seq) + one audit line per MESSAGE frame, strict
  stop-and-wait, every frame answered with a reply carrying the same seq.
* :class:`AsciiSession` - ``format = ascii``: bare ``\\n``-terminated lines, no replies at all.
* :class:`Krb5Session` - ``transport = krb5``: the managed frames, each one a ``gss_wrap`` token
  behind a 4-byte big-endian length, after a leading empty token and a raw-krb5 handshake with
  no channel bindings; every reply is wrapped too.

Sessions never do I/O and never touch the spool. They turn bytes into events
(:class:`Record`, :class:`Heartbeat`, :class:`Send`, :class:`Authenticated`,
:class:`Violation`) and build reply bytes. The server stores records first and only then asks
the session for the reply, so the client never sees a reply that would make it drop a record
that is not stored (see :func:`reply_type_for_stored`).
"""

from __future__ import annotations

import fnmatch
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

from auditrecv.receive.context import SecurityContext
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
_ACK = int(MessageType.ACK)

DISKLOW_TEXT = b"auditrecv spool is filling up"


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Record:
    """One audit line (or oversize-line fragment) to spool; ``seq`` None means "no reply owed" (ascii)."""

    line: bytes
    seq: int | None


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A client keep-alive; answer with :meth:`Session.heartbeat_reply`, never spool it."""

    seq: int


@dataclass(frozen=True, slots=True)
class Send:
    """Bytes the session must send now (krb5 handshake tokens)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Authenticated:
    """The krb5 handshake completed and the client principal passed the policy."""

    principal: str


@dataclass(frozen=True, slots=True)
class Violation:
    """Fatal for this connection only: log ``reason`` and close. Nothing after it is valid."""

    reason: str


Event = Record | Heartbeat | Send | Authenticated | Violation


# --------------------------------------------------------------------------- frames


@dataclass(frozen=True, slots=True)
class Frame:
    type: int
    seq: int
    payload: bytes
    header_version: int = 0
    message_version: int = 0


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
        buf: bytes | bytearray
        if self._buf:
            self._buf += data
            buf = self._buf
        else:
            buf = data
        frames: list[Frame] = []
        pos = 0
        size = len(buf)
        while size - pos >= HEADER_SIZE:
            magic, hver, mver, msg_type, length, seq = HEADER.unpack_from(buf, pos)
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
            frames.append(Frame(msg_type, seq, bytes(buf[pos + HEADER_SIZE : end]), hver, mver))
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


def strip_newline(payload: bytes) -> bytes:
    """audisp-remote sends the line with its trailing newline; auditd strips exactly one."""
    return payload[:-1] if payload.endswith(b"\n") else payload


# --------------------------------------------------------------------------- sessions


class Session(Protocol):
    """What the asyncio server drives; one instance per connection."""

    mech: str  # "krb5" or ""
    principal: str
    authenticated: bool

    def receive_data(self, data: bytes) -> list[Event]: ...

    @property
    def mid_frame(self) -> bool:
        """A frame (line, token) has started arriving but is not complete."""
        ...

    def record_reply(self, seq: int, spool_state: str) -> bytes: ...

    def heartbeat_reply(self, seq: int) -> bytes: ...

    def ending(self) -> bytes: ...


class ManagedSession:
    """``format = managed`` over plain TCP."""

    mech = ""
    principal = ""
    authenticated = False

    def __init__(self, max_payload: int = MAX_AUDIT_MESSAGE_LENGTH) -> None:
        self._parser = FrameParser(max_payload)
        self._failed = False

    def receive_data(self, data: bytes) -> list[Event]:
        if self._failed:
            return []
        if len(data) > HEADER_SIZE and not self._parser.buffered:
            # The stop-and-wait client's usual read: exactly one whole MESSAGE frame. Same result as
            # the general path below, without its intermediate objects (this runs once per record).
            magic, _hver, _mver, msg_type, length, seq = HEADER.unpack_from(data)
            if (
                magic == MAGIC
                and msg_type == _MESSAGE
                and length == len(data) - HEADER_SIZE
                and length <= self._parser.max_payload
            ):
                end = len(data) - 1 if data[-1] == 10 else len(data)  # strip_newline
                return [Record(data[HEADER_SIZE:end], seq)]
        events = self.frames_to_events(self._parser.feed(data))
        if self._parser.error is not None and not self._failed:
            self._failed = True
            events.append(Violation(self._parser.error))
        return events

    @property
    def mid_frame(self) -> bool:
        return self._parser.buffered > 0

    def frames_to_events(self, frames: Sequence[Frame]) -> list[Event]:
        """Client frames -> events, in order; stops at the first frame that kills the connection."""
        events: list[Event] = []
        for frame in frames:
            if frame.type == MessageType.HEARTBEAT:
                events.append(Heartbeat(frame.seq))
            elif frame.type & REPLY_MASK:
                # Only servers send reply types; a client sending one is confused or hostile.
                self._failed = True
                reason = f"client sent server reply type 0x{frame.type:08x} (seq {frame.seq})"
                events.append(Violation(reason))
                break
            else:
                # MESSAGE, and like auditd any other non-reply type: store its text rather than
                # ack it away. An empty payload carries nothing to store: Record(b"") is still
                # emitted so the reply goes out only after the frames before it are stored.
                events.append(Record(strip_newline(frame.payload), frame.seq))
        return events

    def record_reply(self, seq: int, spool_state: str) -> bytes:
        if spool_state == "ok":  # the usual reply, built directly (once per record)
            return HEADER.pack(MAGIC, 0, 0, _ACK, 0, seq & 0xFFFFFFFF)
        reply_type = reply_type_for_stored(spool_state)
        return pack_frame(reply_type, seq, DISKLOW_TEXT if reply_type == MessageType.DISKLOW else b"")

    def heartbeat_reply(self, seq: int) -> bytes:
        return ack_frame(seq)

    def ending(self) -> bytes:
        return ending_frame()


class AsciiSession:
    """``format = ascii``: newline-terminated lines, nothing is ever sent back.

    The client cannot retransmit in this format, so the only back-pressure is TCP itself: the
    server simply stops reading while the spool is full. Lines longer than ``max_line`` are cut
    into fragments, just as audisp-remote cuts oversize lines in managed mode.
    """

    mech = ""
    principal = ""
    authenticated = False

    def __init__(self, max_line: int = MAX_AUDIT_MESSAGE_LENGTH) -> None:
        self.max_line = max_line
        self._buf = bytearray()
        self._checked_magic = False
        self._failed = False

    def receive_data(self, data: bytes) -> list[Event]:
        if self._failed:
            return []
        self._buf += data
        if not self._checked_magic:
            if len(self._buf) < 4 and MAGIC_BYTES.startswith(bytes(self._buf)):
                return []
            self._checked_magic = True
            if self._buf.startswith(MAGIC_BYTES):
                self._failed = True
                reason = "client sends managed frames (audisp-remote format = managed) to an ascii listener"
                return [Violation(reason)]
        events: list[Event] = []
        buf = self._buf
        pos = 0
        while True:
            nl = buf.find(b"\n", pos)
            if nl < 0 or nl - pos > self.max_line:
                if len(buf) - pos > self.max_line:
                    events.append(Record(bytes(buf[pos : pos + self.max_line]), None))
                    pos += self.max_line
                    continue
                break
            if nl > pos:  # skip empty lines
                events.append(Record(bytes(buf[pos:nl]), None))
            pos = nl + 1
        if pos:
            del buf[:pos]
        return events

    @property
    def mid_frame(self) -> bool:
        return bool(self._buf)

    def flush(self) -> list[Event]:
        """At EOF: an unterminated last line is still a line (never drop data the peer sent)."""
        if self._failed or not self._buf:
            return []
        line = bytes(self._buf)
        self._buf.clear()
        return [Record(line, None)]

    def record_reply(self, seq: int, spool_state: str) -> bytes:
        return b""

    def heartbeat_reply(self, seq: int) -> bytes:
        return b""

    def ending(self) -> bytes:
        return b""


# --------------------------------------------------------------------------- krb5


def frame_token(token: bytes) -> bytes:
    """u32 big-endian length + token, as audisp-remote's send_token."""
    return encode_frame(token)


class Acceptor(SecurityContext, Protocol):
    """audisp-remote's krb5 transport wraps every reply (no MICs)."""

    def wrap(self, data: bytes, *, confidential: bool = True) -> bytes: ...


class PrincipalPolicy:
    """Which authenticated client principals may send.

    Default, like auditd: ``<service>/<anything>@<default realm>`` (auditd requires the first
    component to equal its own krb5_principal and the realm to be its default realm). Explicit
    ``patterns`` are case-sensitive fnmatch patterns, e.g. ``auditd/*.example.com@EXAMPLE.COM``.
    """

    def __init__(self, patterns: Sequence[str], service: str, default_realm: str | None) -> None:
        if patterns:
            self.patterns = list(patterns)
        elif default_realm:
            self.patterns = [f"{_escape_fnmatch(service)}/*@{_escape_fnmatch(default_realm)}"]
        else:
            self.patterns = []  # no default realm known: fail closed, like an auditd without one

    def allows(self, principal: str) -> bool:
        return any(fnmatch.fnmatchcase(principal, p) for p in self.patterns)


def _escape_fnmatch(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in text)


class Krb5Session:
    """``transport = krb5``: token framing + GSS handshake, then wrapped managed frames both ways."""

    mech = "krb5"

    def __init__(
        self,
        acceptor: Acceptor,
        policy: PrincipalPolicy,
        *,
        service: str = "auditd",
        max_payload: int = MAX_AUDIT_MESSAGE_LENGTH,
        max_token: int = DEFAULT_MAX_TOKEN,
    ) -> None:
        self._acceptor = acceptor
        self._service = service  # "" = accept whatever keytab principal the client targeted
        self._policy = policy
        self._tokens = FrameDecoder(max_token)
        self._inner = ManagedSession(max_payload)
        self._frames = FrameParser(max_payload)
        self._failed = False
        self.principal = ""
        self.authenticated = False

    def receive_data(self, data: bytes) -> list[Event]:
        if self._failed:
            return []
        events: list[Event] = []
        try:
            self._tokens.feed(data)
            for token in self._tokens.frames():
                if not self.authenticated:
                    self._handshake(token, events)
                else:
                    events.extend(self._data_token(token))
                if events and isinstance(events[-1], Violation):
                    break
        except FrameError as exc:
            events.append(Violation(f"krb5 token framing: {exc}"))
        except Exception as exc:  # GSS errors of any kind: close, the client reconnects and resends
            events.append(Violation(f"GSS failure: {exc}"))
        if events and isinstance(events[-1], Violation):
            self._failed = True
        return events

    @property
    def mid_frame(self) -> bool:
        return self._tokens.mid_frame or self._frames.buffered > 0

    def _handshake(self, token: bytes, events: list[Event]) -> None:
        if not token:
            return  # the client's "someone has to go first" empty token
        out = self._acceptor.step(token)
        if out:
            events.append(Send(frame_token(out)))
        if not self._acceptor.complete:
            return
        # audisp-remote always requests confidentiality and sends no channel bindings.
        self._acceptor.check(require_channel_bound=False, require_confidentiality=True)
        target = self._acceptor.target
        if self._service and target.split("/", 1)[0].split("@", 1)[0] != self._service:
            # The keytab may hold other services (host/, audit/); audisp-remote targets auditd@host.
            events.append(Violation(f"client targeted {target!r}, not the {self._service!r} service"))
            return
        principal = self._acceptor.initiator
        if not self._policy.allows(principal):
            events.append(Violation(f"unauthorized client principal {principal!r}"))
            return
        self.principal = principal
        self.authenticated = True
        events.append(Authenticated(principal))

    def _data_token(self, token: bytes) -> list[Event]:
        if self._acceptor.expired:
            # The ticket behind the context ran out; the client reconnects with a fresh one.
            return [Violation("GSS context expired")]
        message = self._acceptor.unwrap(token, require_confidentiality=True)
        # One frame per token in practice; a stream parser costs nothing and tolerates splits.
        events = self._inner.frames_to_events(self._frames.feed(message))
        if self._frames.error is not None and not (events and isinstance(events[-1], Violation)):
            events.append(Violation(self._frames.error))  # one Violation per read: the first says why
        return events

    def _wrap(self, frame: bytes) -> bytes:
        return frame_token(self._acceptor.wrap(frame, confidential=True))

    def record_reply(self, seq: int, spool_state: str) -> bytes:
        return self._wrap(self._inner.record_reply(seq, spool_state))

    def heartbeat_reply(self, seq: int) -> bytes:
        return self._wrap(self._inner.heartbeat_reply(seq))

    def ending(self) -> bytes:
        """Wrapped ENDING; empty before authentication (the client could not unwrap it)."""
        if not self.authenticated or self._failed:
            return b""
        return self._wrap(ending_frame())


def default_realm() -> str | None:
    """The default realm of the Kerberos configuration in effect, or None if unavailable."""
    try:
        import gssapi

        name = gssapi.Name("x", gssapi.NameType.kerberos_principal).canonicalize(gssapi.MechType.kerberos)
        text = str(name)
    except Exception:
        return None
    return text.split("@", 1)[1] if "@" in text else None
