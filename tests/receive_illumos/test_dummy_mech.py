"""illumos mech_dummy tokens, byte for byte (specs/bsm.md §12)."""

from __future__ import annotations

import pytest

from auditrecv.receive import dummy_mech as dm

HDR = bytes.fromhex("060a2b060104012a021a01020000")  # OID TLV + tok_type


def test_context_tokens_exact_bytes() -> None:
    assert bytes.fromhex("6010060a2b060104012a021a010200003000") == dm.COMPLETE_TOKEN
    assert bytes.fromhex("6010060a2b060104012a021a010200003100") == dm.CONTINUE_TOKEN
    assert len(dm.COMPLETE_TOKEN) == 18


def test_mic_token_exact_bytes() -> None:
    assert bytes.fromhex("601c060a2b060104012a021a0102000064756d6d795f6773735f7369676e") == dm.MIC_TOKEN
    assert dm.get_mic(b"anything") == dm.MIC_TOKEN


@pytest.mark.parametrize(
    ("body_len", "header"),
    [
        (113, b"\x60\x7f"),  # largest short form
        (114, b"\x60\x81\x80"),
        (208, b"\x60\x81\xde"),  # the spec's 200-byte record example (seq8 + 200)
        (200, b"\x60\x81\xd6"),
        (241, b"\x60\x81\xff"),
        (242, b"\x60\x82\x01\x00"),
        (65521, b"\x60\x82\xff\xff"),
        (65522, b"\x60\x83\x01\x00\x00"),
    ],
)
def test_wrap_header_sizes(body_len: int, header: bytes) -> None:
    body = bytes(body_len)
    tok = dm.wrap(body)
    assert tok == header + HDR + body
    assert dm.unwrap(tok) == body


@pytest.mark.parametrize(
    ("token", "why"),
    [
        (b"", "no 0x60"),
        (b"\x61\x10" + HDR + b"0\x00", "tag"),
        (b"\x60\x11" + HDR + b"0\x00", "length longer than data"),
        (b"\x60\x0f" + HDR + b"0\x00", "length shorter than data"),
        (b"\x60\x85\x00\x00\x00\x00\x10" + HDR + b"0\x00", "5 length octets"),
        (b"\x60\x10\x06\x09\x2a\x86\x48\x86\xf7\x12\x01\x02\x02\x00\x00" + b"0\x00\x00", "krb5 OID"),
        (b"\x60\x10" + HDR[:-2] + b"\x00\x01" + b"0\x00", "tok_type 1"),
    ],
)
def test_reader_rejects_what_g_verify_token_header_rejects(token: bytes, why: str) -> None:
    with pytest.raises(dm.DummyTokenError):
        dm.parse_token(token)


def test_acceptor_native_rules() -> None:
    acc = dm.DummyAcceptorContext()
    assert acc.step(dm.COMPLETE_TOKEN) is None and acc.complete  # "0": send nothing
    acc = dm.DummyAcceptorContext()
    assert acc.step(dm.CONTINUE_TOKEN) == dm.COMPLETE_TOKEN and acc.complete  # "1": answer "0"
    with pytest.raises(dm.DummyTokenError):
        dm.DummyAcceptorContext().step(dm.make_token(b"x\x00"))


def test_initiator_token_nums() -> None:
    one = dm.DummyInitiatorContext()
    assert one.step() == dm.COMPLETE_TOKEN and one.complete
    two = dm.DummyInitiatorContext(token_nums=2)
    assert two.step() == dm.CONTINUE_TOKEN and not two.complete
    assert two.step(dm.COMPLETE_TOKEN) == b"" and two.complete
    assert two.verify_mic(b"ignored", dm.MIC_TOKEN)
    assert not two.verify_mic(b"ignored", b"\x60\x00")
