"""No input bytes make the decoder raise; damaged input is reported and accounted for byte by byte."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditrecv.decode.bsm import BsmRecord, decode_record, iter_records, iter_stream, sniff_format
from tests import bsm_builders as B
from tests.paths import BSM_FIXTURES

FIXTURE_DATA = b"".join(
    (BSM_FIXTURES / p).read_bytes()
    for p in ("plaso/apple.bsm", "plaso/openbsm.bsm", "openbsm/samples/execve-long-args.trail")
)
VALID_RECORDS = [r.raw for r in iter_records(FIXTURE_DATA)]
HANDBUILT = [
    B.record(
        B.header64_ex(6172, 1, 2, "10.0.0.1"),
        B.subject(1, 2, 3, 4, 5, 6, 7, 0x0BF11600, "10.0.2.15", bits=64),
        B.attr64(0o644, 0, 0, 1, 2, 3),
        bytes.fromhex("2e00021600") + bytes(4),
        B.return64(0, 0),
        B.zonename("global"),
    ),
    B.record(
        B.header32_ex(23, 1, 2, "fe80::1"),
        B.cstr_list(0x3C, ["a", "b"]),
        B.priv("x", "y"),
        B.return32(0, 0),
        trailer=True,
    ),
]


def check_stream(data: bytes) -> None:
    """Items tile the input exactly: every byte is in exactly one record or file token."""
    pos = 0
    for item in iter_stream(data, base_offset=1000):
        assert item.offset == 1000 + pos
        assert item.length > 0
        if isinstance(item, BsmRecord):
            assert item.raw == data[pos : pos + item.length]
            json.dumps(item.to_dict())
        pos += item.length
    assert pos == len(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    rec = decode_record(data)
    json.dumps(rec.to_dict())
    check_stream(data)
    sniff_format(data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(VALID_RECORDS + HANDBUILT), st.data())
def test_mutated_records_never_raise(record: bytes, data: st.DataObject) -> None:
    buf = bytearray(record)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(buf) - 1))
        buf[i] = data.draw(st.integers(0, 255))
    mutated = bytes(buf)
    json.dumps(decode_record(mutated).to_dict())
    check_stream(mutated + record)


_SYNC_BYTES = frozenset((0x11, 0x14, 0x15, 0x74, 0x78, 0x79))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(VALID_RECORDS + HANDBUILT), min_size=2, max_size=5), st.binary(min_size=1, max_size=20))
def test_garbage_between_records_resyncs(records: list[bytes], junk: bytes) -> None:
    junk = bytes(b for b in junk if b not in _SYNC_BYTES) or b"\x00"
    data = records[0] + junk + b"".join(records[1:])
    check_stream(data)
    decoded = list(iter_records(data))
    assert [r.raw for r in decoded] == [records[0], junk, *records[1:]]
    assert [bool(r.errors) for r in decoded] == [False, True] + [False] * (len(records) - 1)
    assert decoded[1].offset == len(records[0]) and "no BSM header" in decoded[1].errors[0]


def test_every_truncation_of_valid_records() -> None:
    for rec in VALID_RECORDS[:60] + HANDBUILT:
        for cut in range(len(rec)):
            got = decode_record(rec[:cut])
            assert got.errors, (rec.hex(), cut)
            json.dumps(got.to_dict())
            check_stream(rec[:cut])


def test_corrupted_length_reported_with_offset() -> None:
    """A record whose length was corrupted to 0xFFFFFFFF (OpenBSM praudit silently prints nothing)."""
    good = VALID_RECORDS[0]
    bad = good[:1] + b"\xff\xff\xff\xff" + good[5:]
    recs = list(iter_records(good + bad))
    assert recs[0].errors == []
    assert recs[1].offset == len(good)
    assert any(f"offset {len(good)}" in e for e in recs[1].errors)
