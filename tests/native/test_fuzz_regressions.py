"""The native fuzzers' regressions through the Python-facing functions of auditrecv._native.

Every input saved under native/fuzz/regressions/<target>/*.bin (crashes scripts/fuzz_native.py found, and
hand-made hostile inputs) goes through every BSM function the receiver calls: each gives a result or a clean
error (orjson's TypeError for an integer beyond 64 bits), never NativePanic; and the native output equals the
Python decoder's, split alike and record alike (within the caps, as everywhere).
native/tests/fuzz_regressions.rs replays the same files in Rust.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from auditrecv import _native
from auditrecv.decode.bsm import looks_like_bsm
from tests.native.test_bsm_native import assert_same, python_split
from tests.native.test_linux_native import assert_same as assert_same_linux
from tests.native.test_linux_native import log_lines
from tests.paths import REPO

REGRESSIONS = REPO / "native" / "fuzz" / "regressions"
INPUTS = sorted(REGRESSIONS.glob("*/*.bin"))
LIMITS = [(1000, 10_000), (2, 1), (0, 0)]


def test_there_are_regression_inputs() -> None:
    assert len(INPUTS) >= 3, REGRESSIONS


def call(fn: object, *args: object, **kw: object) -> object:
    """fn(*args, **kw), or the TypeError orjson would raise too; NativePanic fails the test."""
    assert callable(fn)
    try:
        return fn(*args, **kw)
    except _native.NativePanic as exc:
        pytest.fail(f"NativePanic from {getattr(fn, '__name__', fn)}: {exc}")
    except TypeError as exc:
        assert "64-bit" in str(exc), exc
        return None


def assert_alike(payload: bytes, offset: int, what: str) -> None:
    """Native == Python, for records within the caps (a capped record differs by design: test_bsm_native)."""
    try:
        native = _native.bsm_decode_raw_json(payload, offset)
    except TypeError:
        native = b""
    if not (native and "truncation" in orjson.loads(native)):
        assert_same(payload, offset, what)


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_regression_input_decodes_cleanly_and_alike(path: Path) -> None:
    data = path.read_bytes()
    for max_tokens, max_items in LIMITS:
        for offset in (0, 2**64 - 1):
            call(_native.bsm_decode_raw_json, data, offset, max_tokens=max_tokens, max_array_items=max_items)
            call(_native.bsm_decode_raw, data, offset, max_tokens=max_tokens, max_array_items=max_items)
        for whole in (True, False):
            for off in (0, 1, len(data) // 2, len(data)):
                call(_native.bsm_decode_record_json, data, off, whole, max_tokens=max_tokens, max_array_items=max_items)
    assert_alike(data, 0, str(path.name))
    assert call(_native.bsm_looks_like, data[:4096]) == looks_like_bsm(data[:4096])
    for buf in (data, bytearray(data), memoryview(data)):
        items = call(_native.bsm_split_trail, buf, 7)
        assert items == python_split(data, 7)
    for kind, off, length in _native.bsm_split_trail(data):
        if kind == _native.ITEM_RECORD:
            assert_alike(data[off : off + length], off, f"{path.name} record at {off}")


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_regression_input_as_linux_audit_lines_decodes_alike(path: Path) -> None:
    """Every input (BSM bytes included) read as a Linux log: native == Python, or the same exception,
    never NativePanic."""
    assert_same_linux(log_lines(path.read_bytes()), path.name)  # a NativePanic is never what Python raises
