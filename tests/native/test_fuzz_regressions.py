"""The native fuzzers' regressions through the Python-facing functions of auditrecv._native.

Every input saved under native/fuzz/regressions/<target>/*.bin (crashes scripts/fuzz_native.py found, and
hand-made hostile inputs) goes through every BSM function the receiver calls: each gives a result or a clean
error (orjson's TypeError for an integer beyond 64 bits), never NativePanic; and the native output equals the
Python decoder's recorded before its deletion (tests/native/recorded/: split alike and record alike, within
the caps as everywhere; also read as a Linux log). Inputs saved since have no Python outcome: they are
replayed without one.
native/tests/fuzz_regressions.rs replays the same files in Rust.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from auditrecv import _native
from tests.native import recorded
from tests.native.recorded import Outcome, joined
from tests.native.test_bsm_native import NATIVE, BsmDecoder, split_text
from tests.native.test_linux_native import DEFAULTS, LinuxDecoder, log_lines, native_decoder
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


def within_caps(payload: bytes, offset: int) -> bool:
    """Records the native decoder does not cap (a capped record differs from Python's by design)."""
    try:
        return b'"truncation"' not in _native.bsm_decode_raw_json(payload, offset)
    except TypeError:
        return True


def bsm_outcome(data: bytes, decoder: BsmDecoder) -> bytes:
    """The input as a record, sniffed, split (base offset 7), and every record of the split alone."""
    out = [f"{decoder.looks_like(data[:4096])}\n".encode(), split_text(decoder.split(data, 7))]
    records = [(0, data)] + [
        (off, data[off : off + n]) for kind, off, n in _native.bsm_split_trail(data) if kind == _native.ITEM_RECORD
    ]
    return b"".join(out) + joined(decoder.raw_json(raw, off) for off, raw in records if within_caps(raw, off))


GROUPS: dict[str, Callable[[Any], list[tuple[bytes, Outcome]]]] = {
    "fuzz_regressions_bsm": lambda d: [(p.read_bytes(), bsm_outcome(p.read_bytes(), d)) for p in INPUTS],
    "fuzz_regressions_as_linux": lambda d: [
        (p.read_bytes(), d(log_lines(p.read_bytes()), "t", *DEFAULTS)) for p in INPUTS
    ],
}
DECODERS: dict[str, BsmDecoder | LinuxDecoder] = {
    "fuzz_regressions_bsm": NATIVE,
    "fuzz_regressions_as_linux": native_decoder,
}


@pytest.mark.parametrize("group", list(GROUPS))
def test_regression_inputs_as_recorded_from_python(group: str) -> None:
    recorded.check(group, GROUPS[group](DECODERS[group]), new_ok=True)


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
    call(_native.bsm_looks_like, data[:4096])
    for buf in (data, bytearray(data), memoryview(data)):
        assert call(_native.bsm_split_trail, buf, 7) == _native.bsm_split_trail(data, 7)


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_regression_input_as_linux_audit_lines_decodes_cleanly(path: Path) -> None:
    """Every input (BSM bytes included) read as a Linux log: lines or one of the exceptions Python raised
    too (README known gaps), never NativePanic."""
    outcome = native_decoder(log_lines(path.read_bytes()), "t", *DEFAULTS)
    assert isinstance(outcome, bytes) or outcome in (TypeError, ValueError, OverflowError), outcome
