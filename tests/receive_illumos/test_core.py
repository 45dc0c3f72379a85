"""The sans-I/O audit_remote core, driven with bytes alone (specs/bsm.md §11, §12)."""

from __future__ import annotations

import struct

import pytest

from auditrecv.config import AuditRemoteListener
from auditrecv.receive import dummy_mech as dm
from auditrecv.receive.audit_remote import AuditRemoteConnection, AuditRemotePolicy, Phase, mechanism_of
from auditrecv.receive.contract import Authenticated, ConnectionFailed, RecordReceived
from auditrecv.receive.framing import encode_frame
from auditrecv.receive.listeners import AuditRemoteListenerPolicy

VERSION_01 = b"\x00\x00\x00\x0201"
DUMMY_INIT_0 = bytes.fromhex("000000126010060a2b060104012a021a010200003000")
DUMMY_INIT_1 = bytes.fromhex("000000126010060a2b060104012a021a010200003100")
ACK_SEQ5 = bytes.fromhex("000000260000000000000005601c060a2b060104012a021a0102000064756d6d795f6773735f7369676e")


NS = 1_700_000_000_123_456_789  # the clock value every read arrives at


def core_policy(*, dummy: bool = True, **settings: object) -> AuditRemotePolicy:
    """The policy the listener gives a core for a peer on 127.0.0.1 (no Kerberos keytab)."""
    listener = AuditRemoteListener(allow_dummy_mech=dummy, dummy_mech_networks=["127.0.0.0/8"], **settings)  # type: ignore[arg-type]
    return AuditRemoteListenerPolicy(listener, keytab="/nonexistent.keytab").policy_for("127.0.0.1")


def dummy_conn(**settings: object) -> AuditRemoteConnection:
    return AuditRemoteConnection(core_policy(**settings))


def seq_of(record: RecordReceived) -> int:
    assert isinstance(record.ack_token, bytes)
    return int(struct.unpack_from(">Q", record.ack_token)[0])


def dummy_record_frame(seq: int, record: bytes) -> bytes:
    return encode_frame(dm.make_token(struct.pack(">Q", seq) + record))


# ------------------------------------------------------------------ version


def test_version_01_is_answered_with_01() -> None:
    conn = dummy_conn()
    assert conn.receive_data(VERSION_01, NS) == []
    assert conn.data_to_send() == VERSION_01
    assert conn.phase is Phase.CONTEXT
    assert conn.client_versions == b"01"


def test_version_comma_list_containing_01_is_answered_with_01() -> None:
    conn = dummy_conn()
    assert conn.receive_data(encode_frame(b"02,01"), NS) == []
    assert conn.data_to_send() == VERSION_01
    assert conn.client_versions == b"02,01"  # the binding data is the client's string + "01"


@pytest.mark.parametrize("offer", [b"02", b"1", b"", b"010", b"\xff\xfe"])
def test_version_without_01_fails_and_sends_nothing(offer: bytes) -> None:
    conn = dummy_conn()
    events = conn.receive_data(encode_frame(offer), NS)
    assert len(events) == 1 and isinstance(events[0], ConnectionFailed)
    assert "version negotiation" in events[0].reason
    assert conn.data_to_send() == b""
    assert conn.phase is Phase.CLOSED
    assert conn.receive_data(VERSION_01, NS) == []  # closed: input ignored


def test_oversized_handshake_token_fails() -> None:
    conn = dummy_conn(max_handshake_token=65536)
    events = conn.receive_data(b"\x00\x01\x00\x01", NS)  # 65537 announced
    assert isinstance(events[0], ConnectionFailed) and "65537" in events[0].reason


# ------------------------------------------------------------------ mechanism dispatch


def test_mechanism_of_first_token() -> None:
    assert mechanism_of(dm.COMPLETE_TOKEN) == "dummy"
    krb = bytes.fromhex("608202b306092a864886f71201020201006e8202")
    assert mechanism_of(krb) == "krb5"
    assert mechanism_of(bytes.fromhex("6082010006062b0601050502a0")) == "spnego"
    assert mechanism_of(b"\x60\x05\x06\x03\x2a\x03\x04") is None
    assert mechanism_of(b"garbage") is None
    assert mechanism_of(b"") is None


def test_dummy_refused_unless_allowed() -> None:
    conn = AuditRemoteConnection(core_policy(dummy=False))
    events = conn.receive_data(VERSION_01 + DUMMY_INIT_0, NS)
    assert isinstance(events[-1], ConnectionFailed) and "dummy" in events[-1].reason
    assert conn.data_to_send() == VERSION_01  # the version reply was already due


def test_kerberos_refused_without_acceptor() -> None:
    conn = AuditRemoteConnection(core_policy())
    krb = encode_frame(bytes.fromhex("6082000b06092a864886f712010202"))
    events = conn.receive_data(VERSION_01 + krb, NS)
    assert isinstance(events[-1], ConnectionFailed) and "no Kerberos acceptor" in events[-1].reason


def test_unknown_mechanism_closes() -> None:
    conn = dummy_conn()
    events = conn.receive_data(VERSION_01 + encode_frame(b"hello, not GSS"), NS)
    assert isinstance(events[-1], ConnectionFailed) and "unknown GSS mechanism" in events[-1].reason


# ------------------------------------------------------------------ dummy session


def test_dummy_session_exact_bytes_and_seq5_ack() -> None:
    conn = dummy_conn()
    record = bytes(range(200))
    wire = VERSION_01 + DUMMY_INIT_0 + dummy_record_frame(5, record)
    events = conn.receive_data(wire, NS)
    assert conn.data_to_send() == VERSION_01  # nothing for the "0" context token
    assert events[0] == Authenticated(mech="dummy", principal="", authenticated=False, target="")
    rec = events[1]
    assert isinstance(rec, RecordReceived)
    assert seq_of(rec) == 5 and rec.payload == record and rec.received_ns == NS
    assert conn.data_to_send() == b""  # never acks on its own
    conn.ack(rec.ack_token)
    ack = conn.data_to_send()
    assert ack == ACK_SEQ5 and len(ack) == 42


def test_dummy_continue_token_gets_one_complete_reply() -> None:
    conn = dummy_conn()
    events = conn.receive_data(VERSION_01 + DUMMY_INIT_1, NS)
    assert isinstance(events[0], Authenticated)
    assert conn.data_to_send() == VERSION_01 + bytes.fromhex("00000012") + dm.COMPLETE_TOKEN


def test_dummy_records_split_anywhere_and_pipelined() -> None:
    records = [bytes([i]) * (10 + i * 37) for i in range(12)]
    wire = VERSION_01 + DUMMY_INIT_0 + b"".join(dummy_record_frame(100 + i, r) for i, r in enumerate(records))
    conn = dummy_conn()
    got: list[RecordReceived] = []
    for i in range(0, len(wire), 7):
        got.extend(e for e in conn.receive_data(wire[i : i + 7], NS) if isinstance(e, RecordReceived))
    assert [r.payload for r in got] == records
    assert [seq_of(r) for r in got] == list(range(100, 112))
    assert conn.data_to_send() == VERSION_01
    for r in reversed(got):  # acks in any order
        conn.ack(r.ack_token)
    out = conn.data_to_send()
    assert out == b"".join(encode_frame(struct.pack(">Q", s) + dm.MIC_TOKEN) for s in reversed(range(100, 112)))


def test_record_without_sequence_number_fails() -> None:
    conn = dummy_conn()
    events = conn.receive_data(VERSION_01 + DUMMY_INIT_0 + encode_frame(dm.make_token(b"1234567")), NS)
    assert isinstance(events[-1], ConnectionFailed) and "sequence number" in events[-1].reason


def test_empty_record_after_seq_is_still_delivered() -> None:
    conn = dummy_conn()
    events = conn.receive_data(VERSION_01 + DUMMY_INIT_0 + dummy_record_frame(1, b""), NS)
    assert isinstance(events[-1], RecordReceived) and events[-1].payload == b""


def test_garbage_record_token_fails() -> None:
    conn = dummy_conn()
    events = conn.receive_data(VERSION_01 + DUMMY_INIT_0 + encode_frame(b"\x00garbage"), NS)
    assert isinstance(events[-1], ConnectionFailed) and "dummy mech" in events[-1].reason


def test_record_limit_applies_after_handshake() -> None:
    conn = dummy_conn(max_handshake_token=64, max_record_token=1024)
    ok = conn.receive_data(VERSION_01 + DUMMY_INIT_0 + dummy_record_frame(1, b"r" * 900), NS)
    assert isinstance(ok[-1], RecordReceived)
    bad = conn.receive_data(dummy_record_frame(2, b"r" * 1100), NS)
    assert isinstance(bad[-1], ConnectionFailed) and "exceeds the limit of 1024" in bad[-1].reason


def test_records_before_failure_in_same_chunk_are_reported() -> None:
    conn = dummy_conn()
    events = conn.receive_data(VERSION_01 + DUMMY_INIT_0 + dummy_record_frame(1, b"a") + b"\xff\xff\xff\xff", NS)
    kinds = [type(e) for e in events]
    assert kinds == [Authenticated, RecordReceived, ConnectionFailed]
