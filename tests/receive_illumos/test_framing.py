"""u32 BE length framing: split anywhere, limits checked on the prefix alone."""

from __future__ import annotations

import pytest

from auditrecv.receive.framing import FrameDecoder, FrameTooLarge, encode_frame


def test_encode_frame_is_big_endian_length_then_payload() -> None:
    assert encode_frame(b"01") == b"\x00\x00\x00\x0201"
    assert encode_frame(b"") == b"\x00\x00\x00\x00"
    assert encode_frame(b"x" * 0x0102)[:4] == b"\x00\x00\x01\x02"


def test_frames_survive_every_split_point() -> None:
    payloads = [b"01", b"", b"a" * 300, bytes(range(256))]
    stream = b"".join(encode_frame(p) for p in payloads)
    for cut in range(len(stream) + 1):
        dec = FrameDecoder(1000)
        got: list[bytes] = []
        for part in (stream[:cut], stream[cut:]):
            dec.feed(part)
            got.extend(dec.frames())
        assert got == payloads, cut
        assert not dec.mid_frame and dec.buffered == 0


def test_byte_by_byte_and_mid_frame() -> None:
    dec = FrameDecoder(10)
    for b in encode_frame(b"hello")[:-1]:
        dec.feed(bytes([b]))
        assert dec.next_frame() is None
    assert dec.mid_frame
    dec.feed(b"o")
    assert dec.next_frame() == b"hello"
    assert not dec.mid_frame


def test_limit_is_enforced_from_the_prefix_alone() -> None:
    dec = FrameDecoder(128_000)
    dec.feed(b"\x7f\xff\xff\xff")  # 2 GiB announced, no payload sent
    with pytest.raises(FrameTooLarge) as info:
        dec.next_frame()
    assert info.value.length == 0x7FFFFFFF and info.value.limit == 128_000
    with pytest.raises(FrameTooLarge):  # poisoned: the stream position is lost
        dec.feed(b"more")


def test_limit_exactly_at_max_is_accepted_and_limit_can_change_between_frames() -> None:
    dec = FrameDecoder(4)
    dec.feed(encode_frame(b"abcd") + encode_frame(b"abcdefgh"))
    assert dec.next_frame() == b"abcd"
    dec.max_length = 8  # e.g. handshake limit -> record limit
    assert dec.next_frame() == b"abcdefgh"


def test_long_stream_compacts_buffer() -> None:
    dec = FrameDecoder(1 << 20)
    frame = encode_frame(b"z" * 5000)
    for _ in range(200):
        dec.feed(frame)
        assert dec.next_frame() == b"z" * 5000
    assert dec.buffered == 0
