"""The sans-I/O audit_remote core, driven with bytes alone (specs/bsm.md §11, §12)."""

from __future__ import annotations

import struct

import pytest

from auditrecv.receive import dummy_mech as dm
from auditrecv.receive.audit_remote import (
    AuditRemoteConnection,
    AuditRemotePolicy,
    Failed,
    HandshakeComplete,
    Phase,
    RecordReceived,
    mechanism_of,
)
from auditrecv.receive.framing import encode_frame

VERSION_01 = b"\x00\x00\x00\x0201"
DUMMY_INIT_0 = bytes.fromhex("000000126010060a2b060104012a021a010200003000")
DUMMY_INIT_1 = bytes.fromhex("000000126010060a2b060104012a021a010200003100")
ACK_SEQ5 = bytes.fromhex("000000260000000000000005601c060a2b060104012a021a0102000064756d6d795f6773735f7369676e")


def dummy_conn(**policy: object) -> AuditRemoteConnection:
    return AuditRemoteConnection(AuditRemotePolicy(dummy_allowed=True, **policy))  # type: ignore[arg-type]


def dummy_record_frame(seq: int, record: bytes) -> bytes:
    return encode_frame(dm.make_token(struct.pack(">Q", seq) + record))


# ------------------------------------------------------------------ version


def test_version_01_is_answered_with_01() -> None:
    conn = dummy_conn()
    assert conn.receive_data(VERSION_01) == []
    assert conn.data_to_send() == VERSION_01
    assert conn.phase is Phase.CONTEXT
    assert conn.client_versions == b"01"


def test_version_comma_list_containing_01_is_answered_with_01() -> None:
    conn = dummy_conn()
    assert conn.receive_data(encode_frame(b"02,01")) == []
    assert conn.data_to_send() == VERSION_01
    assert conn.client_versions == b"02,01"  # the binding data is the client's string + "01"


@pytest.mark.parametrize("offer", [b"02", b"1", b"", b"010", b"\xff\xfe"])
def test_version_without_01_fails_and_sends_nothing(offer: bytes) -> None:
    conn = dummy_conn()
    events = conn.receive_data(encode_frame(offer))
    assert len(events) == 1 and isinstance(events[0], Failed)
    assert "version negotiation" in events[0].reason
    assert conn.data_to_send() == b""
    assert conn.phase is Phase.CLOSED
    assert conn.receive_data(VERSION_01) == []  # closed: input ignored


def test_oversized_handshake_token_fails() -> None:
    conn = dummy_conn(max_handshake_token=65536)
    events = conn.receive_data(b"\x00\x01\x00\x01")  # 65537 announced
    assert isinstance(events[0], Failed) and "65537" in events[0].reason


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
    conn = AuditRemoteConnection(AuditRemotePolicy(dummy_allowed=False))
    events = conn.receive_data(VERSION_01 + DUMMY_INIT_0)
    assert isinstance(events[-1], Failed) and "dummy" in events[-1].reason
    assert conn.data_to_send() == VERSION_01  # the version reply was already due


def test_kerberos_refused_without_acceptor() -> None:
    conn = AuditRemoteConnection(AuditRemotePolicy(acceptor=None))
    krb = encode_frame(bytes.fromhex("6082000b06092a864886f712010202"))
    events = conn.receive_data(VERSION_01 + krb)
    assert isinstance(events[-1], Failed) and "no Kerberos acceptor" in events[-1].reason


def test_unknown_mechanism_closes() -> None:
    conn = dummy_conn()
    events = conn.receive_data(VERSION_01 + encode_frame(b"hello, not GSS"))
    assert isinstance(events[-1], Failed) and "unknown GSS mechanism" in events[-1].reason


# ------------------------------------------------------------------ dummy session


def test_dummy_session_exact_bytes_and_seq5_ack() -> None:
    conn = dummy_conn()
    record = bytes(range(200))
    wire = VERSION_01 + DUMMY_INIT_0 + dummy_record_frame(5, record)
    events = conn.receive_data(wire)
    assert conn.data_to_send() == VERSION_01  # nothing for the "0" context token
    assert events[0] == HandshakeComplete(mech="dummy", principal="", authenticated=False, target="")
    rec = events[1]
    assert isinstance(rec, RecordReceived)
    assert rec.seq == 5 and rec.record == record
    assert conn.data_to_send() == b""  # never acks on its own
    conn.ack(rec)
    ack = conn.data_to_send()
    assert ack == ACK_SEQ5 and len(ack) == 42
    with pytest.raises(ValueError):
        conn.ack(rec)  # exactly once


def test_dummy_continue_token_gets_one_complete_reply() -> None:
    conn = dummy_conn()
    events = conn.receive_data(VERSION_01 + DUMMY_INIT_1)
    assert isinstance(events[0], HandshakeComplete)
    assert conn.data_to_send() == VERSION_01 + bytes.fromhex("00000012") + dm.COMPLETE_TOKEN


def test_dummy_records_split_anywhere_and_pipelined() -> None:
    records = [bytes([i]) * (10 + i * 37) for i in range(12)]
    wire = VERSION_01 + DUMMY_INIT_0 + b"".join(dummy_record_frame(100 + i, r) for i, r in enumerate(records))
    conn = dummy_conn()
    got: list[RecordReceived] = []
    for i in range(0, len(wire), 7):
        got.extend(e for e in conn.receive_data(wire[i : i + 7]) if isinstance(e, RecordReceived))
    assert [r.record for r in got] == records
    assert [r.seq for r in got] == list(range(100, 112))
    assert conn.data_to_send() == VERSION_01
    for r in reversed(got):  # acks in any order
        conn.ack(r)
    out = conn.data_to_send()
    assert out == b"".join(encode_frame(struct.pack(">Q", s) + dm.MIC_TOKEN) for s in reversed(range(100, 112)))


def test_record_without_sequence_number_fails() -> None:
    conn = dummy_conn()
    events = conn.receive_data(VERSION_01 + DUMMY_INIT_0 + encode_frame(dm.make_token(b"1234567")))
    assert isinstance(events[-1], Failed) and "sequence number" in events[-1].reason


def test_empty_record_after_seq_is_still_delivered() -> None:
    conn = dummy_conn()
    events = conn.receive_data(VERSION_01 + DUMMY_INIT_0 + dummy_record_frame(1, b""))
    assert isinstance(events[-1], RecordReceived) and events[-1].record == b""


def test_garbage_record_token_fails() -> None:
    conn = dummy_conn()
    events = conn.receive_data(VERSION_01 + DUMMY_INIT_0 + encode_frame(b"\x00garbage"))
    assert isinstance(events[-1], Failed) and "dummy mech" in events[-1].reason


def test_record_limit_applies_after_handshake() -> None:
    conn = dummy_conn(max_handshake_token=64, max_record_token=1024)
    ok = conn.receive_data(VERSION_01 + DUMMY_INIT_0 + dummy_record_frame(1, b"r" * 900))
    assert isinstance(ok[-1], RecordReceived)
    bad = conn.receive_data(dummy_record_frame(2, b"r" * 1100))
    assert isinstance(bad[-1], Failed) and "exceeds the limit of 1024" in bad[-1].reason


def test_records_before_failure_in_same_chunk_are_reported() -> None:
    conn = dummy_conn()
    events = conn.receive_data(VERSION_01 + DUMMY_INIT_0 + dummy_record_frame(1, b"a") + b"\xff\xff\xff\xff")
    kinds = [type(e) for e in events]
    assert kinds == [HandshakeComplete, RecordReceived, Failed]
