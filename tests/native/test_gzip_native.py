"""The sink's gzip (libdeflate in the compiled core): Python's own gzip reader, an independent
implementation, gets back exactly the body, for every size class the sink sends and every level."""

from __future__ import annotations

import asyncio
import gzip
import os
import threading

import auditrecv._native as native
import pytest

from auditrecv.sink import transport


@pytest.mark.parametrize("size", [0, 1, 100, 64 * 1024, 300 * 1024, 5 * 1024 * 1024])
@pytest.mark.parametrize("level", [1, 6, 12])
def test_round_trip_through_pythons_gzip(size: int, level: int) -> None:
    body = (b'{"create":{"_index":"auditrecv-2026.12.03"}}\n' + os.urandom(64).hex().encode() + b"\n") * (
        size // 175 + 1
    )
    body = body[:size]
    packed = native.gzip(body, level)
    assert packed[:3] == b"\x1f\x8b\x08"
    assert gzip.decompress(packed) == body


def test_levels_out_of_range_are_clamped_not_refused() -> None:
    assert gzip.decompress(native.gzip(b"abc", 0)) == b"abc"
    assert gzip.decompress(native.gzip(b"abc", 42)) == b"abc"


def test_the_sink_compresses_small_bodies_inline_and_big_ones_in_a_thread() -> None:
    small, big = b"x" * 1000, os.urandom(transport._THREAD_COMPRESS_BYTES).hex().encode()
    threads: list[str] = []
    real = transport._native_gzip

    def spy(data: bytes, level: int) -> bytes:
        threads.append(threading.current_thread().name)
        return real(data, level)

    transport._native_gzip = spy
    try:
        assert gzip.decompress(asyncio.run(transport._gzip(small))) == small
        assert gzip.decompress(asyncio.run(transport._gzip(big))) == big
    finally:
        transport._native_gzip = real
    assert threads[0] == threading.main_thread().name and threads[1] != threading.main_thread().name
