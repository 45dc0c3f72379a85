"""Sans-I/O audisp-remote core against the byte captures of the real client and the real auditd."""

from __future__ import annotations

import itertools
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditrecv.receive.audisp_remote import (
    AsciiSession,
    Authenticated,
    Event,
    Heartbeat,
    Krb5Session,
    ManagedSession,
    MessageType,
    PrincipalPolicy,
    Record,
    Send,
    Violation,
    ack_frame,
    ending_frame,
    pack_frame,
    reply_type_for_stored,
)
from tests.receive_linux.fakes import CAPTURES, logged_frames, logged_replies, recv_chunks, tap_chunks

MANAGED_CASES = sorted(p for p in CAPTURES.glob("[01][0-9]-*-conn*.bin") if not p.name.startswith("08-"))


def _feed_all(session: ManagedSession | AsciiSession, chunks: list[bytes]) -> list[Event]:
    events: list[Event] = []
    for chunk in chunks:
        events.extend(session.receive_data(chunk))
    return events


def _expected_events(frames: list) -> list[Event]:
    out: list[Event] = []
    for f in frames:
        if f.type == MessageType.HEARTBEAT:
            out.append(Heartbeat(f.seq))
        else:
            out.append(Record(f.payload[:-1] if f.payload.endswith(b"\n") else f.payload, f.seq))
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
        for ev in session.receive_data(chunk):
            assert isinstance(ev, Record)
            assert ev.seq is not None
            replies.append(session.record_reply(ev.seq, "ok"))
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
        for ev in session.receive_data(chunk):
            if isinstance(ev, Record):
                assert ev.seq is not None
                out += session.record_reply(ev.seq, "ok")
                records += 1
            elif isinstance(ev, Heartbeat):
                out += session.heartbeat_reply(ev.seq)
                heartbeats += 1
            else:
                pytest.fail(f"unexpected {ev}")
    out += session.ending()
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
    assert [type(e) for e in events] == [Record, Record]
    head, tail = events
    assert isinstance(head, Record) and isinstance(tail, Record)
    assert (head.seq, tail.seq) == (2, 3)
    assert len(head.line) == 8969 and head.line.startswith(b"type=USER_CMD ")
    assert len(tail.line) == 1012 and tail.line.startswith(b"word0989 ")
    assert not tail.line.startswith((b"type=", b"node="))


def test_heartbeats_case07() -> None:
    events = _feed_all(ManagedSession(), [(CAPTURES / "07-heartbeat-idle-ending-conn1.bin").read_bytes()])
    assert events[0] == Record(b'type=CWD msg=audit(1700000000.123:4242): cwd="/home/alice"', 2)
    assert events[1:] == [Heartbeat(3), Heartbeat(4), Heartbeat(5)]
    session = ManagedSession()
    assert session.heartbeat_reply(4) == bytes.fromhex("fe0000ff000000000040000004000000")


def test_bad_magic_is_a_violation_and_nothing_after_counts() -> None:
    good = pack_frame(MessageType.MESSAGE, 2, b'type=CWD msg=audit(1.0:1): cwd="/"\n')
    session = ManagedSession()
    events = session.receive_data(good + b"\xfe\x00\x00\xfe" + good[4:] + good)
    assert events[0] == Record(b'type=CWD msg=audit(1.0:1): cwd="/"', 2)
    assert isinstance(events[1], Violation) and "bad magic" in events[1].reason
    assert len(events) == 2
    assert session.receive_data(good) == []


def test_ascii_lines_to_managed_listener_are_named() -> None:
    data = (CAPTURES / "08-ascii-format-conn1.bin").read_bytes()
    (ev,) = ManagedSession().receive_data(data)
    assert isinstance(ev, Violation) and "ascii" in ev.reason


def test_length_over_limit_is_a_violation_before_payload_arrives() -> None:
    header = struct.pack("<IBBIHI", 0xFF0000FE, 0, 0, 0, 8971, 2)
    (ev,) = ManagedSession().receive_data(header)
    assert isinstance(ev, Violation) and "8971" in ev.reason
    # a raised limit accepts it
    frame = header + b"x" * 8971
    assert ManagedSession(max_payload=65535).receive_data(frame) == [Record(b"x" * 8971, 2)]


def test_client_sending_reply_type_is_a_violation() -> None:
    (ev,) = ManagedSession().receive_data(ack_frame(5))
    assert isinstance(ev, Violation) and "0x40000000" in ev.reason


def test_unknown_client_type_is_stored_like_auditd() -> None:
    """auditd logs any non-heartbeat client frame (type 5 verified); storing beats acking it away."""
    assert ManagedSession().receive_data(pack_frame(5, 9, b"type=X msg=audit(1.0:1): a=b\n")) == [
        Record(b"type=X msg=audit(1.0:1): a=b", 9)
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
    assert ManagedSession().receive_data(one) == [
        Record(payload[:-1] if payload.endswith(b"\n") else payload, 0xFFFFFFFF)
    ]
    # Over the limit, a frame and a half, or a frame after a partial one: the general path decides.
    if payload:
        assert isinstance(ManagedSession(max_payload=len(payload) - 1).receive_data(one)[-1], Violation)
    assert ManagedSession().receive_data(one + one[:5]) == ManagedSession().receive_data(one)
    split = ManagedSession()
    assert split.receive_data(one[:3]) == []
    assert split.receive_data(one[3:]) == ManagedSession().receive_data(one)


def test_reply_choice() -> None:
    s = ManagedSession()
    assert s.record_reply(7, "ok") == ack_frame(7)
    assert s.record_reply(2**32 + 7, "ok") == ack_frame(7)
    low = s.record_reply(7, "low")
    magic, _, _, typ, length, seq = struct.unpack_from("<IBBIHI", low)
    assert (magic, typ, seq) == (0xFF0000FE, 0x50000001, 7)
    assert low[16:] and len(low) == 16 + length
    assert reply_type_for_stored("ok") == MessageType.ACK
    # never DISKFULL for a stored record (the client might resend or drop it depending on settings)
    assert reply_type_for_stored("full") == MessageType.ACK


def test_ascii_session_capture08() -> None:
    data = (CAPTURES / "08-ascii-format-conn1.bin").read_bytes()
    expected = [Record(line, None) for line in data.split(b"\n") if line]
    assert _feed_all(AsciiSession(), [data[i : i + 7] for i in range(0, len(data), 7)]) == expected
    assert AsciiSession().record_reply(1, "ok") == b"" and AsciiSession().ending() == b""


def test_ascii_session_long_line_and_eof() -> None:
    s = AsciiSession(max_line=10)
    assert s.receive_data(b"type=ABCDEFGHIJKL\nnode") == [Record(b"type=ABCDE", None), Record(b"FGHIJKL", None)]
    assert s.flush() == [Record(b"node", None)]
    (ev,) = AsciiSession().receive_data(ack_frame(1))
    assert isinstance(ev, Violation) and "managed" in ev.reason


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
        assert token.startswith(b"W:")
        return token[2:]

    def wrap(self, data: bytes, *, confidential: bool = True) -> bytes:
        return b"W:" + data


def _tok(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def test_krb5_handshake_framing_from_capture31() -> None:
    """Capture 31's first client bytes: an empty token, then the raw-krb5 AP-REQ (one token)."""
    chunks = tap_chunks(CAPTURES / "31-krb5-audisp-remote-to-python-acceptor.log", "c2s")
    acceptor = FakeAcceptor()
    session = Krb5Session(acceptor, PrincipalPolicy([], "auditd", "TEST.LAN"))
    events = session.receive_data(chunks[0]) + session.receive_data(chunks[1])
    assert len(acceptor.steps) == 1  # the empty token never reaches GSS
    ap_req = acceptor.steps[0]
    assert ap_req.startswith(bytes.fromhex("608202bb06092a864886f71201020201006e"))  # krb5 OID, AP-REQ
    assert events == [Send(_tok(b"AP-REP")), Authenticated("auditd/vm@TEST.LAN")]
    assert session.principal == "auditd/vm@TEST.LAN" and session.authenticated


def test_krb5_token_stream_of_capture30() -> None:
    """Capture 30 (real audisp-remote -> real auditd, krb5): the client's token stream, replayed as
    it was read, yields one handshake token and three sealed data tokens (CFX 05 04, flags 06)."""
    chunks = tap_chunks(CAPTURES / "30-krb5-audisp-remote-to-auditd.log", "c2s")
    acceptor = FakeAcceptor()
    session = Krb5Session(acceptor, PrincipalPolicy([], "auditd", "TEST.LAN"))
    events: list[Event] = []
    for chunk in chunks:
        events.extend(session.receive_data(chunk))
    assert len(acceptor.steps) == 1 and len(acceptor.unwrapped) == 3
    assert all(t.startswith(bytes.fromhex("050406ff")) for t in acceptor.unwrapped)
    assert [type(e) for e in events] == [Send, Authenticated, Record, Record, Record]
    assert [e.seq for e in events if isinstance(e, Record)] == [2, 3, 4]


def test_krb5_wrong_service_refused() -> None:
    session = Krb5Session(FakeAcceptor(target="host/vm@TEST.LAN"), PrincipalPolicy([], "auditd", "TEST.LAN"))
    events = session.receive_data(_tok(b"AP-REQ"))
    assert isinstance(events[-1], Violation) and "host/vm@TEST.LAN" in events[-1].reason


def test_krb5_data_phase_and_wrapped_replies() -> None:
    session = Krb5Session(FakeAcceptor(), PrincipalPolicy([], "auditd", "TEST.LAN"))
    session.receive_data(_tok(b"") + _tok(b"AP-REQ"))
    frame = pack_frame(MessageType.MESSAGE, 2, b'type=CWD msg=audit(1.0:1): cwd="/"\n')
    hb = pack_frame(MessageType.HEARTBEAT, 3)
    stream = _tok(b"W:" + frame) + _tok(b"W:" + hb)
    events: list[Event] = []
    for i in range(len(stream)):  # split anywhere
        events.extend(session.receive_data(stream[i : i + 1]))
    assert events == [Record(b'type=CWD msg=audit(1.0:1): cwd="/"', 2), Heartbeat(3)]
    assert session.record_reply(2, "ok") == _tok(b"W:" + ack_frame(2))
    assert session.heartbeat_reply(3) == _tok(b"W:" + ack_frame(3))
    assert session.ending() == _tok(b"W:" + ending_frame())


def test_krb5_principal_policy() -> None:
    default = PrincipalPolicy([], "auditd", "TEST.LAN")
    assert default.allows("auditd/web01.example.com@TEST.LAN")
    assert not default.allows("host/web01@TEST.LAN")
    assert not default.allows("auditd/web01@OTHER.LAN")
    assert not default.allows("auditd@TEST.LAN")
    assert not PrincipalPolicy([], "auditd", None).allows("auditd/x@TEST.LAN")  # fail closed
    explicit = PrincipalPolicy(["host/*@TEST.LAN"], "auditd", "TEST.LAN")
    assert explicit.allows("host/a@TEST.LAN") and not explicit.allows("auditd/a@TEST.LAN")
    session = Krb5Session(FakeAcceptor("host/evil@TEST.LAN"), default)
    events = session.receive_data(_tok(b"AP-REQ"))
    assert isinstance(events[-1], Violation) and "host/evil@TEST.LAN" in events[-1].reason
    assert session.ending() == b""  # never talk to an unauthorized peer


def test_krb5_oversize_token_and_gss_errors_close() -> None:
    session = Krb5Session(FakeAcceptor(), PrincipalPolicy([], "auditd", "TEST.LAN"), max_token=100)
    (ev,) = session.receive_data(struct.pack(">I", 101))
    assert isinstance(ev, Violation) and "101" in ev.reason
    session = Krb5Session(FakeAcceptor(), PrincipalPolicy([], "auditd", "TEST.LAN"))
    session.receive_data(_tok(b"AP-REQ"))
    (ev,) = session.receive_data(_tok(b"not wrapped"))
    assert isinstance(ev, Violation) and "GSS failure" in ev.reason


# --------------------------------------------------------------------------- robustness

_VALID = (CAPTURES / "21-audisp-remote-to-auditd.conn1.c2s.bin").read_bytes()


@settings(max_examples=150, deadline=None)
@given(
    cuts=st.lists(st.integers(min_value=0, max_value=len(_VALID)), max_size=12),
    noise=st.binary(max_size=64),
    noise_at=st.integers(min_value=0, max_value=len(_VALID)),
)
def test_any_chunking_or_corruption_never_raises(cuts: list[int], noise: bytes, noise_at: int) -> None:
    """Valid stream cut anywhere decodes identically; injected garbage ends in one Violation at most."""
    bounds = sorted({0, len(_VALID), *cuts})
    chunks = [_VALID[a:b] for a, b in itertools.pairwise(bounds)]
    reference = ManagedSession().receive_data(_VALID)
    assert _feed_all(ManagedSession(), chunks) == reference
    corrupted = _VALID[:noise_at] + noise + _VALID[noise_at:]
    for session in (ManagedSession(), AsciiSession()):
        pieces = [corrupted[a:b] for a, b in itertools.pairwise(bounds)] + [corrupted[len(_VALID) :]]
        events = _feed_all(session, pieces)
        assert sum(isinstance(e, Violation) for e in events) <= 1
        if events and any(isinstance(e, Violation) for e in events):
            assert isinstance(events[-1], Violation)
    krb = Krb5Session(FakeAcceptor(), PrincipalPolicy([], "auditd", "TEST.LAN"))
    events = krb.receive_data(noise + corrupted)
    assert sum(isinstance(e, Violation) for e in events) <= 1
