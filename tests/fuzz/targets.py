"""Fuzz targets: one ``check(data)`` per target, shared by scripts/fuzz.py (atheris, coverage-guided), the
regression replay (tests/fuzz/test_regressions.py) and the bounded test of the normal suite.

A target returns normally for every input that keeps the invariants. It raises :class:`InvariantBroken` when
the code under test behaved wrongly without crashing (an ack for a record never received, data lost between
chunkings, ...), or lets through the unexpected exception the code raised (a crash). Nothing here needs atheris.

Stream targets read their input as ``ctrl byte ‖ bytes from the peer``: the control byte picks how the bytes
are cut into reads (0: one read; otherwise a pseudo-random cut derived from it, down to single bytes) and, for
audit_remote, when the emulated server acks. Every stream is also fed in one piece, and the events of both runs
must be the same: a protocol core must not care how TCP split the stream.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from auditrecv.receive import dummy_mech
from auditrecv.receive.audisp_remote import (
    HEADER,
    HEADER_SIZE,
    MAGIC,
    MAGIC_BYTES,
    REPLY_MASK,
    AsciiSession,
    FrameParser,
    Krb5Session,
    ManagedSession,
    MessageType,
    default_principals,
)
from auditrecv.receive.audit_remote import AuditRemoteConnection, AuditRemotePolicy, MicContext, Phase
from auditrecv.receive.contract import (
    Authenticated,
    ConnectionFailed,
    Event,
    Heartbeat,
    PrincipalPolicy,
    RecordReceived,
    SecurityFailure,
)
from auditrecv.receive.framing import FrameDecoder
from auditrecv.spool.record import Source, SpoolRecord
from auditrecv.spool.store import Spool, _source_from_json, _source_json

__all__ = ["TARGETS", "InvariantBroken", "Target", "chunks_of"]


class InvariantBroken(AssertionError):
    """The code under test did not crash but broke a rule of its protocol (a bug all the same)."""


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise InvariantBroken(what)


_CUT_SIZES = (1, 1, 2, 3, 4, 5, 7, 8, 12, 16, 17, 31, 64, 100, 255, 1024, 4096)


def chunks_of(stream: bytes, ctrl: int) -> list[bytes]:
    """The reads a server would see: all at once for ctrl 0, else cut pseudo-randomly (deterministic)."""
    if ctrl == 0 or not stream:
        return [stream]
    rng = random.Random(ctrl)
    out = []
    pos = 0
    while pos < len(stream):
        size = rng.choice(_CUT_SIZES)
        out.append(stream[pos : pos + size])
        pos += size
    return out


# --------------------------------------------------------------------------- (a) illumos audit_remote


AUDIT_REMOTE_MAX_HANDSHAKE = 4096  # small limits so that the "token too large" paths are reachable
AUDIT_REMOTE_MAX_RECORD = 65536


NS = 1_700_000_000_123_456_789  # the clock value every read arrives at


def _dummy_context(_binding_data: bytes) -> MicContext:
    return dummy_mech.DummyAcceptorContext()


def audit_remote_policy() -> AuditRemotePolicy:
    # No Kerberos acceptor: krb5/SPNEGO first tokens must be refused cleanly; the dummy mech reaches records.
    return AuditRemotePolicy(
        contexts={"dummy": _dummy_context, "krb5": "no Kerberos acceptor", "spnego": "no Kerberos acceptor"},
        principals=PrincipalPolicy(["*"]),
        max_handshake_token=AUDIT_REMOTE_MAX_HANDSHAKE,
        max_record_token=AUDIT_REMOTE_MAX_RECORD,
    )


def _plaintext(record: RecordReceived) -> bytes:
    expect(isinstance(record.ack_token, bytes), "an audit_remote ack token is not the plaintext")
    assert isinstance(record.ack_token, bytes)
    return record.ack_token


def _audit_remote_norm(event: object) -> tuple[object, ...]:
    if isinstance(event, RecordReceived):
        return ("record", event.ack_token, event.payload)
    if isinstance(event, Authenticated):
        return ("handshake", event.mech, event.principal, event.authenticated, event.target)
    if isinstance(event, ConnectionFailed):
        return ("failed", event.reason)
    raise InvariantBroken(f"unknown event type {type(event).__name__}")


def check_audit_remote(data: bytes) -> None:
    """AuditRemoteConnection driven as the server drives it: feed reads, ack committed records, send output.

    Invariants: no exception out of ``receive_data``; a handshake at most once and before any record; records
    only in the RECORDS phase, their payload the plaintext after its seq; nothing after ``ConnectionFailed``
    and no input accepted after it; output = the version reply, dummy handshake replies, then exactly one ack
    (``seq ‖ MIC``) per acked record, in ack order, and no ack for a record never received; the same events
    however the stream is cut. Finally every record received before a failure is acked, as the server does
    for records it had already unwrapped and spooled ("acked if the socket is still open").
    """
    if not data:
        return
    ctrl, stream = data[0], data[1:]
    whole = AuditRemoteConnection(audit_remote_policy())
    whole_events = [_audit_remote_norm(e) for e in whole.receive_data(stream, NS)]

    conn = AuditRemoteConnection(audit_remote_policy())
    rng = random.Random(ctrl ^ 0x5A)
    events: list[object] = []
    output = bytearray()
    unacked: list[RecordReceived] = []
    acked: list[RecordReceived] = []
    failed = False
    for chunk in chunks_of(stream, ctrl):
        new = conn.receive_data(chunk, NS)
        if failed:
            expect(not new, f"events after ConnectionFailed: {new!r}")
        for i, event in enumerate(new):
            if isinstance(event, ConnectionFailed):
                expect(i == len(new) - 1, "ConnectionFailed is not the last event of its read")
                expect(conn.phase is Phase.CLOSED, "ConnectionFailed without the CLOSED phase")
                failed = True
            elif isinstance(event, Authenticated):
                expect(not any(isinstance(e, Authenticated | RecordReceived) for e in events), "late handshake")
                expect(event.mech == "dummy" and not event.authenticated, f"unexpected handshake {event!r}")
            elif isinstance(event, RecordReceived):
                expect(any(isinstance(e, Authenticated) for e in events + new[:i]), "record before handshake")
                plaintext = _plaintext(event)
                expect(len(plaintext) >= 8, "record shorter than its sequence number")
                expect(plaintext[8:] == event.payload, "the payload is not the plaintext after its seq")
                expect(event.received_ns == NS, "the record is not stamped with the clock value passed in")
                unacked.append(event)
        events.extend(new)
        output += conn.data_to_send()
        # The server acks after its spool commit, in batches, while the connection is up.
        if unacked and not failed and rng.random() < 0.6:
            n = rng.randint(1, len(unacked))
            for record in unacked[:n]:
                conn.ack(record.ack_token)
                acked.append(record)
            del unacked[:n]
            output += conn.data_to_send()
    expect([_audit_remote_norm(e) for e in events] == whole_events, "events depend on how the stream was cut")
    received = [e for e in events if isinstance(e, RecordReceived)]
    expect(conn.records_received == len(received), "records_received miscounted")
    expect(conn.records_acked == len(acked), "records_acked miscounted")
    if failed:
        expect(conn.receive_data(b"\x00\x00\x00\x0201", NS) == [], "input accepted after ConnectionFailed")

    frames = FrameDecoder(1 << 30)
    frames.feed(bytes(output))
    sent = list(frames.frames())
    expect(not frames.mid_frame, "output ends inside a frame")
    want_acks = [_plaintext(r)[:8] + dummy_mech.MIC_TOKEN for r in acked]
    if sent:
        expect(sent[0] == b"01", f"first reply is {sent[0][:20]!r}, not the version")
        n_handshake = len(sent) - 1 - len(want_acks)
        expect(n_handshake in (0, 1), f"{n_handshake} handshake replies")
        expect(all(t == dummy_mech.COMPLETE_TOKEN for t in sent[1 : 1 + n_handshake]), "bad handshake reply")
        expect(sent[1 + n_handshake :] == want_acks, "acks differ from the records acked")
    else:
        expect(not acked, "records acked but no ack sent")
        expect(not received, "records received without a version reply")

    # What the server does with records it unwrapped before the connection failed: commit, then ack.
    for record in unacked:
        conn.ack(record.ack_token)
    expect(len(frames_of(conn.data_to_send())) == len(unacked), "late acks missing")


def frames_of(data: bytes) -> list[bytes]:
    decoder = FrameDecoder(1 << 30)
    decoder.feed(data)
    return list(decoder.frames())


# --------------------------------------------------------------------------- (b) Linux audisp-remote


AUDISP_MAX_PAYLOAD = 1024  # small so that the oversize paths are reachable


def _audisp_norm(event: object) -> tuple[object, ...]:
    if isinstance(event, RecordReceived):
        return ("record", event.ack_token, event.payload)
    if isinstance(event, Heartbeat):
        return ("heartbeat", event.token)
    if isinstance(event, Sent):
        return ("send", event.data)
    if isinstance(event, Authenticated):
        return ("authenticated", event.principal)
    if isinstance(event, ConnectionFailed):
        return ("violation", event.reason)
    raise InvariantBroken(f"unknown event type {type(event).__name__}")


@dataclass(frozen=True)
class Sent:
    """What the session had to send after one read (handshake tokens), as a pseudo-event in order."""

    data: bytes


def _feed_session(session: ManagedSession | AsciiSession | Krb5Session, chunks: list[bytes]) -> list[Event | Sent]:
    """Events in order, each read's output (``data_to_send``) as a :class:`Sent` before its events."""
    events: list[Event | Sent] = []
    for chunk in chunks:
        new = session.receive_data(chunk, NS)
        if any(isinstance(e, ConnectionFailed) for e in events):
            expect(not new, f"events after a ConnectionFailed: {new!r}")
        for i, event in enumerate(new):
            if isinstance(event, ConnectionFailed):
                expect(i == len(new) - 1, "ConnectionFailed is not the last event of its read")
        out = session.data_to_send()
        if out:  # the handshake's output belongs before the read's Authenticated
            events.append(Sent(out))
        events.extend(new)
    return events


def _without_sent(events: list[Event | Sent]) -> list[tuple[object, ...]]:
    return [_audisp_norm(e) for e in events if not isinstance(e, Sent)]


def _sent(events: list[Event | Sent]) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, Sent))


def _reply(session: ManagedSession | Krb5Session, token: int, state: str = "ok") -> bytes:
    session.ack(token, state)  # type: ignore[arg-type]
    return session.data_to_send()


def _heartbeat_reply(session: ManagedSession | Krb5Session, token: int) -> bytes:
    session.answer_heartbeat(token)
    return session.data_to_send()


def reference_managed(stream: bytes, max_payload: int) -> list[tuple[object, ...]]:
    """What a managed client stream means, by the spec (linux.md §3), written plainly and independently."""
    out: list[tuple[object, ...]] = []
    pos = 0
    while len(stream) - pos >= HEADER_SIZE:
        magic, _hver, _mver, msg_type, length, seq = HEADER.unpack_from(stream, pos)
        if magic != MAGIC or length > max_payload:
            out.append(("violation",))
            break
        end = pos + HEADER_SIZE + length
        if end > len(stream):
            break
        payload = stream[pos + HEADER_SIZE : end]
        if msg_type == MessageType.HEARTBEAT:
            out.append(("heartbeat", seq))
        elif msg_type & REPLY_MASK:
            out.append(("violation",))
            break
        else:
            out.append(("record", seq, payload[:-1] if payload.endswith(b"\n") else payload))
        pos = end
    return out


def _check_reply(reply: bytes, msg_types: tuple[int, ...], seq: int) -> None:
    parser = FrameParser(1 << 16)
    frames = parser.feed(reply)
    expect(parser.error is None and parser.buffered == 0 and len(frames) == 1, f"reply {reply!r} is not one frame")
    expect(frames[0].type in msg_types and frames[0].seq == seq, f"reply {frames[0]!r} for seq {seq}")


def check_audisp_managed(data: bytes) -> None:
    """ManagedSession: the events match the plain reference reading; same events however the stream is cut;
    nothing after a Violation; every record's and heartbeat's reply is one frame carrying its seq."""
    if not data:
        return
    ctrl, stream = data[0], data[1:]
    whole = [_audisp_norm(e) for e in _feed_session(ManagedSession(AUDISP_MAX_PAYLOAD), [stream])]
    session = ManagedSession(AUDISP_MAX_PAYLOAD)
    events = _feed_session(session, chunks_of(stream, ctrl))
    norm = [_audisp_norm(e) for e in events]
    expect(norm == whole, "events depend on how the stream was cut")
    ref = reference_managed(stream, AUDISP_MAX_PAYLOAD)
    expect([n if n[0] != "violation" else ("violation",) for n in norm] == ref, "events differ from the reference")
    for event in events:
        if isinstance(event, RecordReceived):
            assert isinstance(event.ack_token, int)
            state = ("ok", "low")[event.ack_token & 1]
            _check_reply(
                _reply(session, event.ack_token, state), (MessageType.ACK, MessageType.DISKLOW), event.ack_token
            )
        elif isinstance(event, Heartbeat):
            _check_reply(_heartbeat_reply(session, event.token), (MessageType.ACK,), event.token)
        else:
            expect(not isinstance(event, Sent), f"a managed session sent {event!r} unasked")
    if events and isinstance(events[-1], ConnectionFailed):
        expect(session.receive_data(b"\x00" * 32, NS) == [], "input accepted after a ConnectionFailed")


ASCII_MAX_LINE = 64


def check_audisp_ascii(data: bytes) -> None:
    """AsciiSession: no byte lost or invented (the lines, fragments included, are the input without its
    newlines); no empty line, no line longer than max_line; same events however the stream is cut; managed
    frames refused at the start and nothing after that."""
    if not data:
        return
    ctrl, stream = data[0], data[1:]
    whole_session = AsciiSession(ASCII_MAX_LINE)
    whole = [*_feed_session(whole_session, [stream]), *whole_session.end_of_input(NS)]
    session = AsciiSession(ASCII_MAX_LINE)
    events = [*_feed_session(session, chunks_of(stream, ctrl)), *session.end_of_input(NS)]
    expect([_audisp_norm(e) for e in events] == [_audisp_norm(e) for e in whole], "events depend on the cut")
    if stream.startswith(MAGIC_BYTES):
        expect([type(e) for e in events] == [ConnectionFailed], f"managed frames not refused: {events[:3]!r}")
        return
    lines = [e for e in events if isinstance(e, RecordReceived)]
    expect(len(lines) == len(events), "non-record event from an ascii stream")
    expect(b"".join(r.payload for r in lines) == stream.replace(b"\n", b""), "bytes lost or invented")
    for r in lines:
        ok = 0 < len(r.payload) <= ASCII_MAX_LINE and b"\n" not in r.payload and r.ack_token is None
        expect(ok, f"bad line {r!r}")


# ---- krb5, with a fake GSS context (the real one needs a KDC and is not what is being fuzzed)


class FakeGssError(SecurityFailure):
    """What the fake context raises where python-gssapi would raise a GSSError."""


FAKE_REALM = "FUZZ.TEST"


class FakeAcceptor:
    """A GSS acceptor context whose tokens are plain bytes, so the fuzzer can steer the handshake.

    Context token: ``b"I" ‖ flags ‖ initiator ‖ 0 ‖ target``. flags bit 0: another round needed (reply
    ``b"c"``); bit 1: no confidentiality (``check`` fails); bit 2: the context expires at once; bit 3: the
    final step produces no token. Anything else fails like a defective token. Wrap tokens: ``b"W" ‖ data``.
    """

    def __init__(self) -> None:
        self.complete = False
        self.initiator = ""
        self.target = ""
        self.expired = False
        self._conf = True

    def step(self, token: bytes) -> bytes | None:
        if self.complete:
            raise FakeGssError("step after completion")
        if len(token) < 2 or token[:1] != b"I":
            raise FakeGssError("defective token")
        flags = token[1]
        if flags & 1:
            return b"c"
        names = token[2:].split(b"\x00", 1)
        self.initiator = names[0].decode("utf-8", "replace")
        self.target = names[1].decode("utf-8", "replace") if len(names) > 1 else ""
        self._conf = not flags & 2
        self.expired = bool(flags & 4)
        self.complete = True
        return None if flags & 8 else b"R" + token[2:6]

    def check(self, *, require_channel_bound: bool = False, require_confidentiality: bool = True) -> None:
        if require_confidentiality and not self._conf:
            raise FakeGssError("confidentiality not available")

    def unwrap(self, token: bytes, *, require_confidentiality: bool = True) -> bytes:
        if not self.complete or token[:1] != b"W":
            raise FakeGssError("bad wrap token")
        return token[1:]

    def wrap(self, data: bytes, *, confidential: bool = True) -> bytes:
        if not self.complete:
            raise FakeGssError("no context")
        return b"W" + data


def _krb5_session() -> tuple[Krb5Session, FakeAcceptor]:
    acceptor = FakeAcceptor()
    policy = PrincipalPolicy(default_principals("auditd", FAKE_REALM))  # auditd/<anything>@<default realm>
    return Krb5Session(acceptor, policy, max_payload=AUDISP_MAX_PAYLOAD, max_token=4096), acceptor


def check_audisp_krb5(data: bytes) -> None:
    """Krb5Session with a fake GSS context: no exception escapes; handshake tokens only before
    authentication; Authenticated once, only for an allowed principal that targeted the auditd service;
    records only after it; nothing after a Violation; same events however the stream is cut; replies
    unwrap to one frame with the record's seq."""
    if not data:
        return
    ctrl, stream = data[0], data[1:]
    whole = _feed_session(_krb5_session()[0], [stream])
    session, acceptor = _krb5_session()
    events = _feed_session(session, chunks_of(stream, ctrl))
    expect(_without_sent(events) == _without_sent(whole), "events depend on how the stream was cut")
    expect(_sent(events) == _sent(whole), "output depends on how the stream was cut")
    authenticated = False
    for event in events:
        if isinstance(event, Sent):
            expect(not authenticated, "handshake token sent after authentication")
            expect(frames_of(event.data) != [], "empty handshake send")
        elif isinstance(event, Authenticated):
            expect(not authenticated, "authenticated twice")
            expect(acceptor.complete, "authenticated before the context is complete")
            principal = event.principal
            expect(principal.startswith("auditd/") and principal.endswith("@" + FAKE_REALM), f"allowed {principal!r}")
            expect(acceptor.target.split("/", 1)[0].split("@", 1)[0] == "auditd", f"target {acceptor.target!r}")
            authenticated = True
        elif isinstance(event, RecordReceived | Heartbeat):
            expect(authenticated, f"{type(event).__name__} before authentication")
    expect(session.authenticated == authenticated, "session.authenticated disagrees with the events")
    if any(isinstance(e, ConnectionFailed) for e in events):
        expect(session.receive_data(b"\x00\x00\x00\x01W", NS) == [], "input accepted after a ConnectionFailed")
        session.end()
        expect(session.data_to_send() == b"", "ENDING offered on a failed session")
        return
    if authenticated:
        for event in events:
            if isinstance(event, RecordReceived):
                assert isinstance(event.ack_token, int)
                _check_wrapped_reply(_reply(session, event.ack_token), event.ack_token)
        _check_wrapped_reply(_heartbeat_reply(session, 7), 7, ending=False)


def _check_wrapped_reply(reply: bytes, seq: int, *, ending: bool = False) -> None:
    tokens = frames_of(reply)
    expect(len(tokens) == 1 and tokens[0][:1] == b"W", f"reply {reply!r} is not one wrapped token")
    _check_reply(tokens[0][1:], (MessageType.ACK,) if not ending else (MessageType.ENDING,), seq & 0xFFFFFFFF)


# --------------------------------------------------------------------------- (c) spool record codec


def _text(part: bytes) -> str:
    # surrogateescape: peer/file names can carry undecodable bytes, which the codec must keep exactly
    return part.decode("utf-8", "surrogateescape")


def check_spool_codec(data: bytes) -> None:
    """The spool's record metadata codec (``_source_json`` / ``_source_from_json``) and the
    record check of ``Spool.append``.

    Invariants: decoding any stored text (``_source_from_json``, what the spool's readers use) never
    raises; decode(encode(source)) == source, field types included; the append check raises only
    TypeError/ValueError and passes a valid record through unchanged.
    """
    _source_from_json(data.decode("utf-8", "surrogateescape"))  # must not raise: None for what it cannot read
    parts = data.split(b"\x00")
    parts += [b""] * (8 - len(parts))
    source = Source(
        transport=_text(parts[0]),
        peer=_text(parts[1]),
        peer_port=int.from_bytes(parts[2][:10], "big", signed=True),
        mech=_text(parts[3]),
        principal=_text(parts[4]),
        authenticated=bool(parts[5][:1]) and parts[5][0] & 1 == 1,
        listener=_text(parts[6]),
    )
    encoded = _source_json(source)
    expect(encoded.isascii(), "encoded source is not ASCII")
    decoded = _source_from_json(encoded)
    expect(decoded == source, f"round trip changed the source: {source!r} -> {decoded!r}")
    expect(
        [type(getattr(decoded, f)) for f in Source.__dataclass_fields__]
        == [type(getattr(source, f)) for f in Source.__dataclass_fields__],
        "round trip changed a field type",
    )
    received_ns = int.from_bytes(parts[7][:9], "big", signed=True)
    kind = ("bsm", "linux", _text(parts[0][:4]))[len(parts[7]) % 3]
    record = SpoolRecord(kind, parts[1], source, received_ns)  # type: ignore[arg-type]  # any kind, on purpose
    try:
        checked = Spool._checked(record)
    except (TypeError, ValueError):
        expect(not -(2**63) <= received_ns < 2**63, f"valid record refused: {record!r}")
        return
    expect(checked == record, "the append check changed a valid record")


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Target:
    name: str
    check: Callable[[bytes], None]
    doc: str


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("audit_remote", check_audit_remote, "illumos audit_remote core with the dummy mech"),
        Target("audisp_managed", check_audisp_managed, "audisp-remote managed frames (ManagedSession)"),
        Target("audisp_ascii", check_audisp_ascii, "audisp-remote format=ascii lines (AsciiSession)"),
        Target("audisp_krb5", check_audisp_krb5, "audisp-remote transport=krb5 (Krb5Session, fake GSS context)"),
        Target("spool_codec", check_spool_codec, "spool record metadata codec and append check"),
    )
}
