"""Sans-I/O audisp-remote core against the byte captures of the real client and the real auditd."""

from __future__ import annotations

import itertools
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditrecv.receive.audisp_remote import (
    AsciiSession,
    Krb5Session,
    ManagedSession,
    MessageType,
    ack_frame,
    default_principals,
    ending_frame,
    pack_frame,
    reply_type_for_stored,
)
from auditrecv.receive.contract import (
    AckToken,
    Authenticated,
    ConnectionFailed,
    Event,
    Heartbeat,
    PrincipalPolicy,
    ReceiveCore,
    RecordReceived,
    SecurityFailure,
)
from tests.receive_linux.fakes import CAPTURES, logged_frames, logged_replies, recv_chunks, tap_chunks

NS = 1_700_000_000_123_456_789  # the clock value every read arrives at
PRINCIPALS = PrincipalPolicy(["auditd/*@TEST.LAN"])  # the audisp listener's default for realm TEST.LAN


def reply(core: ReceiveCore, token: AckToken, state: str = "ok") -> bytes:
    core.ack(token, state)  # type: ignore[arg-type]
    return core.data_to_send()


def heartbeat_reply(core: ReceiveCore, token: int) -> bytes:
    core.answer_heartbeat(token)
    return core.data_to_send()


def ending(core: ReceiveCore) -> bytes:
    core.end()
    return core.data_to_send()


MANAGED_CASES = sorted(p for p in CAPTURES.glob("[01][0-9]-*-conn*.bin") if not p.name.startswith("08-"))


def _feed_all(session: ManagedSession | AsciiSession, chunks: list[bytes]) -> list[Event]:
    events: list[Event] = []
    for chunk in chunks:
        events.extend(session.receive_data(chunk, NS))
    return events


def _expected_events(frames: list) -> list[Event]:
    out: list[Event] = []
    for f in frames:
        if f.type == MessageType.HEARTBEAT:
            out.append(Heartbeat(f.seq))
        else:
            out.append(RecordReceived(f.payload[:-1] if f.payload.endswith(b"\n") else f.payload, f.seq, NS))
    return out


def test_every_managed_capture_exists() -> None:
    assert len(MANAGED_CASES) >= 20


@pytest.mark.parametrize("capture", MANAGED_CASES, ids=lambda p: p.stem)
def test_capture_whole_and_bytewise(capture) -> None:
    """Each captured connection decodes to exactly the frames the capture listener logged."""
    data = capture.read_bytes()
    expected = _expected_events(logged_frames(capture.with_suffix(".log")))
    assert expected, "capture log lists no frames"
    assert _feed_all(ManagedSession(), [data]) == expected
    assert _feed_all(ManagedSession(), [data[i : i + 1] for i in range(len(data))]) == expected


def test_basic_ack_replies_match_listener_bytes() -> None:
    """Case 01: our ACK for each record equals the bytes audisp-remote accepted, seq echoed."""
    log = CAPTURES / "01-basic-ack-conn1.log"
    session = ManagedSession()
    replies = []
    for chunk in recv_chunks(log):
        for ev in session.receive_data(chunk, NS):
            assert isinstance(ev, RecordReceived)
            assert ev.ack_token is not None
            replies.append(reply(session, ev.ack_token, "ok"))
    assert replies == logged_replies(log)
    assert [struct.unpack_from("<I", r, 12)[0] for r in replies] == list(range(2, 13))


def test_real_auditd_conversation_byte_for_byte() -> None:
    """Capture 21 (real audisp-remote -> real auditd): replaying the client's TCP reads as they
    arrived (one header split from its payload) yields auditd's reply stream exactly, ENDING included."""
    log = CAPTURES / "21-audisp-remote-to-auditd.log"
    chunks = tap_chunks(log, "c2s")
    assert b"".join(chunks) == (CAPTURES / "21-audisp-remote-to-auditd.conn1.c2s.bin").read_bytes()
    assert any(len(c) == 16 and c.startswith(b"\xfe\x00\x00\xff\x00\x00\x00") for c in chunks)  # the split
    session = ManagedSession()
    out = b""
    records = heartbeats = 0
    for chunk in chunks:
        for ev in session.receive_data(chunk, NS):
            if isinstance(ev, RecordReceived):
                assert ev.ack_token is not None
                out += reply(session, ev.ack_token, "ok")
                records += 1
            elif isinstance(ev, Heartbeat):
                out += heartbeat_reply(session, ev.token)
                heartbeats += 1
            else:
                pytest.fail(f"unexpected {ev}")
    out += ending(session)
    assert (records, heartbeats) == (11, 2)
    assert out == (CAPTURES / "21-audisp-remote-to-auditd.conn1.s2c.bin").read_bytes()


def test_auditd_peer_reply_bytes() -> None:
    """ACK, heartbeat ACK and ENDING built here equal what a real auditd sent (capture 20)."""
    text = (CAPTURES / "20-auditd-peer-replies.log").read_text()
    hexes = [line.split("reply hex=")[1].split()[0] for line in text.splitlines() if "reply hex=" in line]
    replies = [bytes.fromhex(h) for h in hexes]
    assert replies[0] == ack_frame(2)
    assert replies[1] == ack_frame(3)
    assert replies[-1] == ending_frame() == bytes.fromhex("fe0000ff000001000040000000000000")


def test_oversize_split_line_is_two_ordered_fragments() -> None:
    """Case 12: an 8969-byte head without newline, then a fragment not starting with type=/node=."""
    events = _feed_all(ManagedSession(), [(CAPTURES / "12-oversize-line-split-conn1.bin").read_bytes()])
    assert [type(e) for e in events] == [RecordReceived, RecordReceived]
    head, tail = events
    assert isinstance(head, RecordReceived) and isinstance(tail, RecordReceived)
    assert (head.ack_token, tail.ack_token) == (2, 3)
    assert len(head.payload) == 8969 and head.payload.startswith(b"type=USER_CMD ")
    assert len(tail.payload) == 1012 and tail.payload.startswith(b"word0989 ")
    assert not tail.payload.startswith((b"type=", b"node="))


def test_heartbeats_case07() -> None:
    events = _feed_all(ManagedSession(), [(CAPTURES / "07-heartbeat-idle-ending-conn1.bin").read_bytes()])
    assert events[0] == RecordReceived(b'type=CWD msg=audit(1700000000.123:4242): cwd="/home/alice"', 2, NS)
    assert events[1:] == [Heartbeat(3), Heartbeat(4), Heartbeat(5)]
    session = ManagedSession()
    assert heartbeat_reply(session, 4) == bytes.fromhex("fe0000ff000000000040000004000000")


def test_bad_magic_is_a_violation_and_nothing_after_counts() -> None:
    good = pack_frame(MessageType.MESSAGE, 2, b'type=CWD msg=audit(1.0:1): cwd="/"\n')
    session = ManagedSession()
    events = session.receive_data(good + b"\xfe\x00\x00\xfe" + good[4:] + good, NS)
    assert events[0] == RecordReceived(b'type=CWD msg=audit(1.0:1): cwd="/"', 2, NS)
    assert isinstance(events[1], ConnectionFailed) and "bad magic" in events[1].reason
    assert len(events) == 2
    assert session.receive_data(good, NS) == []


def test_ascii_lines_to_managed_listener_are_named() -> None:
    data = (CAPTURES / "08-ascii-format-conn1.bin").read_bytes()
    (ev,) = ManagedSession().receive_data(data, NS)
    assert isinstance(ev, ConnectionFailed) and "ascii" in ev.reason


def test_length_over_limit_is_a_violation_before_payload_arrives() -> None:
    header = struct.pack("<IBBIHI", 0xFF0000FE, 0, 0, 0, 8971, 2)
    (ev,) = ManagedSession().receive_data(header, NS)
    assert isinstance(ev, ConnectionFailed) and "8971" in ev.reason
    # a raised limit accepts it
    frame = header + b"x" * 8971
    assert ManagedSession(max_payload=65535).receive_data(frame, NS) == [RecordReceived(b"x" * 8971, 2, NS)]


def test_client_sending_reply_type_is_a_violation() -> None:
    (ev,) = ManagedSession().receive_data(ack_frame(5), NS)
    assert isinstance(ev, ConnectionFailed) and "0x40000000" in ev.reason


def test_unknown_client_type_is_stored_like_auditd() -> None:
    """auditd logs any non-heartbeat client frame (type 5 verified); storing beats acking it away."""
    assert ManagedSession().receive_data(pack_frame(5, 9, b"type=X msg=audit(1.0:1): a=b\n"), NS) == [
        RecordReceived(b"type=X msg=audit(1.0:1): a=b", 9, NS)
    ]


@pytest.mark.parametrize("capture", MANAGED_CASES, ids=lambda p: p.stem)
def test_one_frame_per_read_as_the_client_sends(capture) -> None:
    """Reads of exactly one frame (the stop-and-wait client's way, which takes a shorter path)
    give the same events as the general parser."""
    frames = logged_frames(capture.with_suffix(".log"))
    reads = [pack_frame(f.type, f.seq, f.payload) for f in frames]
    assert _feed_all(ManagedSession(), reads) == _expected_events(frames)


@pytest.mark.parametrize(
    "payload",
    [b"", b"\n", b"a\n\n", b"no newline", b"x" * 8970],
)
def test_one_frame_read_edges(payload: bytes) -> None:
    one = pack_frame(MessageType.MESSAGE, 0xFFFFFFFF, payload)
    assert ManagedSession().receive_data(one, NS) == [
        RecordReceived(payload[:-1] if payload.endswith(b"\n") else payload, 0xFFFFFFFF, NS)
    ]
    # Over the limit, a frame and a half, or a frame after a partial one: the general path decides.
    if payload:
        assert isinstance(ManagedSession(max_payload=len(payload) - 1).receive_data(one, NS)[-1], ConnectionFailed)
    assert ManagedSession().receive_data(one + one[:5], NS) == ManagedSession().receive_data(one, NS)
    split = ManagedSession()
    assert split.receive_data(one[:3], NS) == []
    assert split.receive_data(one[3:], NS) == ManagedSession().receive_data(one, NS)


def test_reply_choice() -> None:
    s = ManagedSession()
    assert reply(s, 7, "ok") == ack_frame(7)
    assert reply(s, 2**32 + 7, "ok") == ack_frame(7)
    low = reply(s, 7, "low")
    magic, _, _, typ, length, seq = struct.unpack_from("<IBBIHI", low)
    assert (magic, typ, seq) == (0xFF0000FE, 0x50000001, 7)
    assert low[16:] and len(low) == 16 + length
    assert reply_type_for_stored("ok") == MessageType.ACK
    # never DISKFULL for a stored record (the client might resend or drop it depending on settings)
    assert reply_type_for_stored("full") == MessageType.ACK


def test_ascii_session_capture08() -> None:
    data = (CAPTURES / "08-ascii-format-conn1.bin").read_bytes()
    expected = [RecordReceived(line, None, NS) for line in data.split(b"\n") if line]
    assert _feed_all(AsciiSession(), [data[i : i + 7] for i in range(0, len(data), 7)]) == expected
    assert reply(AsciiSession(), 1, "ok") == b"" and ending(AsciiSession()) == b""


def test_ascii_session_long_line_and_eof() -> None:
    s = AsciiSession(max_line=10)
    assert s.receive_data(b"type=ABCDEFGHIJKL\nnode", NS) == [
        RecordReceived(b"type=ABCDE", None, NS),
        RecordReceived(b"FGHIJKL", None, NS),
    ]
    assert s.end_of_input(NS) == [RecordReceived(b"node", None, NS)]
    (ev,) = AsciiSession().receive_data(ack_frame(1), NS)
    assert isinstance(ev, ConnectionFailed) and "managed" in ev.reason


# --------------------------------------------------------------------------- krb5 layer with a fake GSS


class FakeAcceptor:
    """Stands in for a GSS context: records the handshake tokens, 'wraps' by prefixing."""

    def __init__(self, principal: str = "auditd/vm@TEST.LAN", target: str = "auditd/vm@TEST.LAN") -> None:
        self.steps: list[bytes] = []
        self.unwrapped: list[bytes] = []
        self.principal = principal
        self.target = target
        self.expired = False

    @property
    def complete(self) -> bool:
        return bool(self.steps)

    @property
    def initiator(self) -> str:
        return self.principal

    def step(self, token: bytes) -> bytes | None:
        self.steps.append(token)
        return b"AP-REP"

    def check(self, *, require_channel_bound: bool = False, require_confidentiality: bool = True) -> None:
        assert not require_channel_bound

    def unwrap(self, token: bytes, *, require_confidentiality: bool = True) -> bytes:
        self.unwrapped.append(token)
        if token.startswith(bytes.fromhex("050406ff")):  # a real sealed CFX token from a capture
            return pack_frame(MessageType.MESSAGE, len(self.unwrapped) + 1, b"type=X msg=audit(1.0:1): a=1\n")
        if not token.startswith(b"W:"):
            raise SecurityFailure("unwrap: not a token of this context")
        return token[2:]

    def wrap(self, data: bytes, *, confidential: bool = True) -> bytes:
        return b"W:" + data


def _tok(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def test_krb5_handshake_framing_from_capture31() -> None:
    """Capture 31's first client bytes: an empty token, then the raw-krb5 AP-REQ (one token)."""
    chunks = tap_chunks(CAPTURES / "31-krb5-audisp-remote-to-python-acceptor.log", "c2s")
    acceptor = FakeAcceptor()
    session = Krb5Session(acceptor, PRINCIPALS)
    events = session.receive_data(chunks[0], NS) + session.receive_data(chunks[1], NS)
    assert len(acceptor.steps) == 1  # the empty token never reaches GSS
    ap_req = acceptor.steps[0]
    assert ap_req.startswith(bytes.fromhex("608202bb06092a864886f71201020201006e"))  # krb5 OID, AP-REQ
    assert session.data_to_send() == _tok(b"AP-REP")
    assert events == [Authenticated("krb5", "auditd/vm@TEST.LAN", True, "auditd/vm@TEST.LAN")]
    assert session.authenticated


def test_krb5_token_stream_of_capture30() -> None:
    """Capture 30 (real audisp-remote -> real auditd, krb5): the client's token stream, replayed as
    it was read, yields one handshake token and three sealed data tokens (CFX 05 04, flags 06)."""
    chunks = tap_chunks(CAPTURES / "30-krb5-audisp-remote-to-auditd.log", "c2s")
    acceptor = FakeAcceptor()
    session = Krb5Session(acceptor, PRINCIPALS)
    events: list[Event] = []
    for chunk in chunks:
        events.extend(session.receive_data(chunk, NS))
    assert len(acceptor.steps) == 1 and len(acceptor.unwrapped) == 3
    assert all(t.startswith(bytes.fromhex("050406ff")) for t in acceptor.unwrapped)
    assert session.data_to_send() == _tok(b"AP-REP")
    assert [type(e) for e in events] == [Authenticated, RecordReceived, RecordReceived, RecordReceived]
    assert [e.ack_token for e in events if isinstance(e, RecordReceived)] == [2, 3, 4]


def test_krb5_wrong_service_refused() -> None:
    session = Krb5Session(FakeAcceptor(target="host/vm@TEST.LAN"), PRINCIPALS)
    events = session.receive_data(_tok(b"AP-REQ"), NS)
    assert isinstance(events[-1], ConnectionFailed) and "host/vm@TEST.LAN" in events[-1].reason


def test_krb5_data_phase_and_wrapped_replies() -> None:
    session = Krb5Session(FakeAcceptor(), PRINCIPALS)
    session.receive_data(_tok(b"") + _tok(b"AP-REQ"), NS)
    assert session.data_to_send() == _tok(b"AP-REP")
    frame = pack_frame(MessageType.MESSAGE, 2, b'type=CWD msg=audit(1.0:1): cwd="/"\n')
    hb = pack_frame(MessageType.HEARTBEAT, 3)
    stream = _tok(b"W:" + frame) + _tok(b"W:" + hb)
    events: list[Event] = []
    for i in range(len(stream)):  # split anywhere
        events.extend(session.receive_data(stream[i : i + 1], NS))
    assert events == [RecordReceived(b'type=CWD msg=audit(1.0:1): cwd="/"', 2, NS), Heartbeat(3)]
    assert reply(session, 2, "ok") == _tok(b"W:" + ack_frame(2))
    assert heartbeat_reply(session, 3) == _tok(b"W:" + ack_frame(3))
    assert ending(session) == _tok(b"W:" + ending_frame())


def test_krb5_principal_policy() -> None:
    default = PrincipalPolicy(default_principals("auditd", "TEST.LAN"))
    assert default.patterns == PRINCIPALS.patterns
    assert default.allows("auditd/web01.example.com@TEST.LAN")
    assert not default.allows("host/web01@TEST.LAN")
    assert not default.allows("auditd/web01@OTHER.LAN")
    assert not default.allows("auditd@TEST.LAN")
    assert not PrincipalPolicy(default_principals("auditd", None)).allows("auditd/x@TEST.LAN")  # fail closed
    assert PrincipalPolicy(default_principals("a*d", "T?")).patterns == ("a[*]d/*@T[?]",)
    explicit = PrincipalPolicy(["host/*@TEST.LAN"])
    assert explicit.allows("host/a@TEST.LAN") and not explicit.allows("auditd/a@TEST.LAN")
    session = Krb5Session(FakeAcceptor("host/evil@TEST.LAN"), default)
    events = session.receive_data(_tok(b"AP-REQ"), NS)
    assert isinstance(events[-1], ConnectionFailed) and "host/evil@TEST.LAN" in events[-1].reason
    assert ending(session) == b""  # never talk to an unauthorized peer


def test_krb5_oversize_token_and_gss_errors_close() -> None:
    session = Krb5Session(FakeAcceptor(), PRINCIPALS, max_token=100)
    (ev,) = session.receive_data(struct.pack(">I", 101), NS)
    assert isinstance(ev, ConnectionFailed) and "101" in ev.reason
    session = Krb5Session(FakeAcceptor(), PRINCIPALS)
    session.receive_data(_tok(b"AP-REQ"), NS)
    (ev,) = session.receive_data(_tok(b"not wrapped"), NS)
    assert isinstance(ev, ConnectionFailed) and "GSS failure" in ev.reason


# --------------------------------------------------------------------------- robustness

_VALID = (CAPTURES / "21-audisp-remote-to-auditd.conn1.c2s.bin").read_bytes()


@settings(max_examples=150, deadline=None)
@given(
    cuts=st.lists(st.integers(min_value=0, max_value=len(_VALID)), max_size=12),
    noise=st.binary(max_size=64),
    noise_at=st.integers(min_value=0, max_value=len(_VALID)),
)
def test_any_chunking_or_corruption_never_raises(cuts: list[int], noise: bytes, noise_at: int) -> None:
    """Valid stream cut anywhere decodes identically; injected garbage ends in one ConnectionFailed at most."""
    bounds = sorted({0, len(_VALID), *cuts})
    chunks = [_VALID[a:b] for a, b in itertools.pairwise(bounds)]
    reference = ManagedSession().receive_data(_VALID, NS)
    assert _feed_all(ManagedSession(), chunks) == reference
    corrupted = _VALID[:noise_at] + noise + _VALID[noise_at:]
    for session in (ManagedSession(), AsciiSession()):
        pieces = [corrupted[a:b] for a, b in itertools.pairwise(bounds)] + [corrupted[len(_VALID) :]]
        events = _feed_all(session, pieces)
        assert sum(isinstance(e, ConnectionFailed) for e in events) <= 1
        if events and any(isinstance(e, ConnectionFailed) for e in events):
            assert isinstance(events[-1], ConnectionFailed)
    krb = Krb5Session(FakeAcceptor(), PRINCIPALS)
    events = krb.receive_data(noise + corrupted, NS)
    assert sum(isinstance(e, ConnectionFailed) for e in events) <= 1
