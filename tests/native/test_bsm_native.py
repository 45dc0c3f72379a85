"""The native BSM decoder (auditrecv._native, Rust): the outcomes the Python decoder had before it was
deleted (issue 12), and what the native side adds.

For every record of every BSM fixture file, hand-built records of every token in both dialects and widths,
thousands of damaged copies of them (every truncation, bit flips, overwritten bytes), damaged streams and
random bytes, the native JSON line (and trail split) must be byte-equal to what the Python decoder gave,
recorded in tests/native/recorded/ (see recorded.py), or raise the same exception class; edited records
without a recording keep the decoder's invariants. Then the caps on one record's work, and the panic
boundary.
"""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditrecv import _native
from tests import bsm_builders as B
from tests.decode_bsm.test_token_catalogue import CASES
from tests.native import recorded
from tests.native.recorded import Outcome, joined, outcome_of
from tests.paths import BSM_FIXTURES

S = B.str16


# ---------------------------------------------------------------- the implementation checked


@dataclass(frozen=True)
class BsmDecoder:
    """The decoder functions the recorded groups are made with: the native core (scripts recorded the
    Python decoder's outcomes through the same groups)."""

    raw_json: Callable[[bytes, int], Outcome]  # `decode --raw` line of a record at a file offset
    record_json: Callable[[bytes, int, bool], Outcome]  # decode_record(data, offset, whole).to_dict() line
    split: Callable[[bytes, int], list[tuple[int, int, int]]]  # (kind, offset, length) per trail item
    looks_like: Callable[[bytes], bool]


NATIVE = BsmDecoder(
    raw_json=lambda payload, offset: outcome_of(lambda: _native.bsm_decode_raw_json(payload, offset)),
    record_json=lambda data, offset, whole: outcome_of(lambda: _native.bsm_decode_record_json(data, offset, whole)),
    split=lambda data, base: _native.bsm_split_trail(data, base),
    looks_like=_native.bsm_looks_like,
)


def records_of(data: bytes, decoder: BsmDecoder = NATIVE) -> list[tuple[int, bytes]]:
    """(offset, bytes) of every record of a trail (file tokens left out), as `auditrecv decode` reads it."""
    return [(off, data[off : off + n]) for kind, off, n in decoder.split(data, 0) if kind != _native.ITEM_FILE]


def split_text(items: list[tuple[int, int, int]]) -> bytes:
    return orjson.dumps(items, option=orjson.OPT_APPEND_NEWLINE)


# ---------------------------------------------------------------- inputs


def fixture_files() -> list[Path]:
    """Every binary file of the BSM fixture set (trails, reference records and lone tokens)."""
    skip = {".md", ".txt", ".xml"}
    files = [p for p in sorted(BSM_FIXTURES.rglob("*")) if p.is_file() and p.suffix not in skip]
    return [p for p in files if "etc_audit" not in p.name]


FIXTURE_FILES = fixture_files()
TRAILS = [p for p in FIXTURE_FILES if _native.bsm_looks_like(p.read_bytes()[:4096])]


def fixture_records() -> list[tuple[str, int, bytes]]:
    out = []
    for path in TRAILS:
        for offset, raw in records_of(path.read_bytes()):
            out.append((str(path.relative_to(BSM_FIXTURES)), offset, raw))
    return out


FIXTURE_RECORDS = fixture_records()

SUBJ = B.subject(1001, 1001, 10, 1001, 10, 4242, 4242, 0x0BF11600, "10.0.2.15", bits=64)


def handbuilt_records() -> list[bytes]:
    """Records for every token layout, both dialects, both widths, kernel and user-level events."""
    out: list[bytes] = []
    for _name, tok, version, event, _expected in CASES:
        out.append(B.record(B.header32(event, 1, 0, version=version), tok, B.return32(0, 0), trailer=True))
        other = 11 if version == 2 else 2
        out.append(B.record(B.header64(event, 1, 5, version=other), tok, B.return64(1, -1)))
        out.append(B.record(B.header64(6172, 1, 5, version=2), tok, B.return32(2, 1003)))
    for bits in (32, 64):
        for ex in (False, True):
            for kind in ("subject", "process"):
                for host in ("10.0.2.15", "fe80::1:2", "::ffff:1.2.3.4", "::1.2.3.4"):
                    if ":" in host and not ex:
                        continue
                    for port in (0, 0x0BF11600, 0xFFFFFFFF, 2**63 + 7 if bits == 64 else 7, (5 << 32) | 77):
                        port &= (1 << bits) - 1
                        subj = B.subject(1, 2, 3, 4, 5, 6, 7, port, host, bits=bits, ex=ex, kind=kind)
                        for version, event in ((2, 6172), (2, 23), (11, 23)):
                            out.append(B.record(B.header64_ex(event, 9, 9, "192.168.1.10", version=version), subj))
    headers = [
        B.header32(1, 5, 999, version=1),
        B.header32(1, 5, 1000, version=3),
        B.header32(1, 5, 7, version=10),
        B.header32(1, 5, 7, version=99),
        B.header32_ex(1, 5, 7, "10.1.2.3", version=11, emod=0xC183),
        B.header32_ex(1, 5, 7, "2001:db8::1", version=2),
        B.header64_ex(1, 5, 7, "::", version=2),
        B.header64(65535, 2**40, 7, version=2, emod=0xFFFF),
    ]
    for h in headers:
        out.append(B.record(h, B.text("t"), trailer=True))
    args = [
        (15, "signal", 9),
        (15, "signal", 999),
        (133, "as_success", 0x3),
        (133, "am_failure", 0xFFFFFFFF),
        (289, "op", 1),
        (289, "op", 7),
        (5, "mode", 0o644),
        (5, "cmd mode", 0o644),
        (133, "port", 0x31D41600),
        (266, "tid port", 0x31D41600),
    ]
    for event, desc, value in args:
        for version in (2, 11):
            out.append(B.record(B.header32(event, 1, 0, version=version), B.arg32(1, value, desc), B.return32(0, 0)))
            out.append(
                B.record(B.header32(event, 1, 0, version=version), B.arg64(1, value | 2**40, desc), B.return32(0, 0))
            )
    # 0x2e on illumos: 9 or 15 bytes, the next token id arbitrating, kernel and user events
    for event in (1, 6172):
        kernel_socket = bytes.fromhex("2e00021600") + bytes([1, 2, 3, 4])
        out.append(B.record(B.header64(event, 1, 0), kernel_socket, B.return32(0, 0)))
        out.append(B.record(B.header64(event, 1, 0), b"\x2e" + bytes(range(14)), B.return32(0, 0)))
        out.append(B.record(B.header64(event, 1, 0), b"\x2e" + bytes(range(8))))
        out.append(B.record(B.header64(event, 1, 0), b"\x2e" + bytes(range(14))))
    # socket_ex both dialects, 0x3f in the upriv layout, unusual strings
    sock = struct.pack(">BHHHH", 0x7F, 2, 1, 4, 0x1600) + B.addr("10.0.0.1") + b"\xd4\x31" + B.addr("10.0.0.2")
    sock6 = struct.pack(">BHHHH", 0x7F, 26, 1, 16, 0x1600) + B.addr("fe80::1") + b"\xd4\x31" + B.addr("::2")
    for version in (2, 11):
        out.append(B.record(B.header32(6172, 1, 0, version=version), sock, sock6, B.return32(0, 0)))
    out.append(B.record(B.header64(6172, 1, 0), b"\x3f\x01" + S("file_dac_read"), B.return32(0, 0)))
    out.append(B.record(B.header64(6172, 1, 0), b"\x3f\x00" + S("x")))
    out.append(B.record(B.header64(1, 1, 0), B.text('tab\tnl\nquote"back\\ctl\x01\x7f é \u2028')))
    out.append(B.record(B.header64(1, 1, 0), b"\x28" + S(b"bad \xff\xfe utf8 \xe2\x82 \xed\xa0\x80 x\0hidden")))
    out.append(B.record(B.header64(1, 1, 0), bytes([0x21, 4, 0, 6]) + b"a\0b\xffcd"))
    out.append(B.record(B.header64(1, 1, 0), bytes([0x21, 9, 3, 2]) + bytes(range(16))))
    out.append(B.record(B.header64(1, 1, 0), B.file64(2**40, 999_999, "f"), B.file32(1, 2, "g")))
    # the record walk's edge cases
    out.append(B.record(B.header64(1, 1, 0), B.text("a"), trailer=True) + B.record(B.header64(2, 1, 0), B.text("b")))
    return out


HANDBUILT = handbuilt_records()


def mutations(payload: bytes, rng: random.Random, flips: int) -> Iterator[bytes]:
    """Every truncation, then bit flips, overwritten bytes and a doubled tail."""
    for n in range(len(payload)):
        yield payload[:n]
    for _ in range(flips):
        b = bytearray(payload)
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
        yield bytes(b)
        b = bytearray(payload)
        i = rng.randrange(len(b))
        b[i] = rng.choice((0, 0xFF, 0x13, 0x14, 0x74, 0x79, 0x11, 0x78, rng.randrange(256)))
        yield bytes(b)
    yield payload + payload[len(payload) // 2 :]


# ---------------------------------------------------------------- the recorded groups


def fixture_file_outcome(path: Path, decoder: BsmDecoder) -> bytes:
    """A fixture file: sniffed, split, every record decoded alone and in place inside the whole file."""
    data = path.read_bytes()
    out = [f"{decoder.looks_like(data[:4096])}\n".encode(), split_text(decoder.split(data, 1000))]
    for offset, raw in records_of(data, decoder):
        out += [joined([decoder.raw_json(raw, offset), decoder.record_json(data, offset, False)])]
    return b"".join(out)


def in_chunks(payloads: list[bytes], outcome: Callable[[bytes], Outcome], size: int) -> list[tuple[bytes, Outcome]]:
    """Inputs recorded `size` at a time (one key for many small inputs keeps the recordings small)."""
    chunks = [payloads[i : i + size] for i in range(0, len(payloads), size)]
    return [(b"".join(c), joined(outcome(p) for p in c)) for c in chunks]


def damaged_records(source: str) -> list[tuple[bytes, list[bytes]]]:
    rng = random.Random(12)
    bases = [raw for _, _, raw in FIXTURE_RECORDS] if source == "fixtures" else HANDBUILT
    return [(payload, list(mutations(payload, rng, flips=6))) for payload in bases]


def damaged_outcomes(source: str, decoder: BsmDecoder) -> list[tuple[bytes, Outcome]]:
    """Keyed by position and base record: one base may come twice, with other seeded damage."""
    cases = damaged_records(source)
    return [(b"%d:" % i + p, joined(decoder.raw_json(m, 0) for m in ms)) for i, (p, ms) in enumerate(cases)]


def damaged_streams() -> list[bytes]:
    rng = random.Random(7)
    pieces = [raw for _, _, raw in FIXTURE_RECORDS[:60]] + HANDBUILT[:60]
    pieces += [B.file32(1, 2, "trail"), B.file64(3, 4, "x"), b"\x11\x00", b"\x78" + bytes(30), bytes(5)]
    out = []
    for _ in range(300):
        parts = [rng.choice(pieces) for _ in range(rng.randrange(1, 8))]
        data = bytearray(b"".join(parts))
        for _ in range(rng.randrange(4)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        if data and rng.random() < 0.3:
            del data[rng.randrange(len(data)) :]
        out.append(bytes(data))
    return out


def stream_outcome(blob: bytes, decoder: BsmDecoder) -> bytes:
    head = [split_text(decoder.split(blob, 5)), f"{decoder.looks_like(blob)}\n".encode()]
    return b"".join(head) + joined(decoder.raw_json(raw, offset) for offset, raw in records_of(blob, decoder))


def random_records() -> list[bytes]:
    rng = random.Random(3)
    out = []
    for _ in range(3000):
        head = rng.choice((0x14, 0x15, 0x74, 0x79))
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(60)))
        payload = bytes([head]) + body
        if len(payload) > 5 and rng.random() < 0.7:  # a plausible length and version
            payload = payload[:1] + struct.pack(">I", len(payload)) + bytes([rng.choice((2, 11))]) + payload[6:]
        out.append(payload)
    return out


def invalid_utf8_records() -> list[bytes]:
    rng = random.Random(5)
    alphabet = [*range(0x20, 0x7F), *range(0x80, 0xC2), 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF, 0]
    out = []
    for _ in range(2000):
        raw = bytes(rng.choice(alphabet) for _ in range(rng.randrange(1, 24)))
        out.append(
            B.record(
                B.header32(23, 1, 0, version=rng.choice((2, 11))),
                struct.pack(">BI", 0x3C, 1) + raw.replace(b"\0", b"") + b"\0",  # exec_args: one C string
                b"\x28" + S(raw),  # text: cut at a NUL
                bytes([0x21, 4, 0, len(raw)]) + raw,  # arbitrary, string format: not cut
            )
        )
    return out


def hostile_record(count: int) -> bytes:
    return B.record(B.header32(1, 1, 0, version=11), *([B.text("x")] * count), trailer=True)


AT_THE_CAPS = [
    B.record(B.header32(23, 1, 0, version=11), B.cstr_list(0x3C, [str(i) for i in range(50)])),
    hostile_record(1000),
]

# name -> the (input, outcome) pairs of one recorded group, made with a decoder
GROUPS: dict[str, Callable[[BsmDecoder], list[tuple[bytes, Outcome]]]] = {
    "bsm_fixture_files": lambda d: [(p.read_bytes(), fixture_file_outcome(p, d)) for p in FIXTURE_FILES],
    "bsm_handbuilt": lambda d: [(p, d.raw_json(p, 12345)) for p in HANDBUILT],
    "bsm_damaged_fixtures": lambda d: damaged_outcomes("fixtures", d),
    "bsm_damaged_handbuilt": lambda d: damaged_outcomes("handbuilt", d),
    "bsm_damaged_streams": lambda d: [(b, stream_outcome(b, d)) for b in damaged_streams()],
    "bsm_random_bytes": lambda d: in_chunks(random_records(), lambda p: d.raw_json(p, 0), 30),
    "bsm_invalid_utf8": lambda d: in_chunks(invalid_utf8_records(), lambda p: d.raw_json(p, 0), 20),
    "bsm_at_the_caps": lambda d: [(p, d.raw_json(p, 0)) for p in AT_THE_CAPS],
}


# ---------------------------------------------------------------- as the Python decoder was


def test_fixture_set_is_there() -> None:
    assert len(TRAILS) >= 3 and len(FIXTURE_RECORDS) >= 100, (TRAILS, len(FIXTURE_RECORDS))
    assert len(HANDBUILT) > 300


@pytest.mark.parametrize("group", list(GROUPS))
def test_outcomes_as_recorded_from_python(group: str) -> None:
    """Fixture files (sniff, split, every record alone and in place), hand-built records, every truncation
    and seeded damage of both, damaged streams, random bytes, invalid UTF-8 (the same U+FFFD for every
    invalid sequence), records exactly at the caps: byte-equal to the Python decoder's recorded outcome."""
    recorded.check(group, GROUPS[group](NATIVE))


def test_damage_reaches_thousands_of_records() -> None:
    assert sum(len(ms) for _, ms in damaged_records("fixtures")) > 5000
    assert sum(len(ms) for _, ms in damaged_records("handbuilt")) > 5000


def test_split_accepts_any_buffer() -> None:
    """mmap-like buffers are split as bytes are."""
    data = b"".join(p.read_bytes() for p in TRAILS)
    assert _native.bsm_split_trail(memoryview(data)) == _native.bsm_split_trail(data)
    assert _native.bsm_split_trail(bytearray(data), 7) == _native.bsm_split_trail(data, 7)


def assert_decoder_invariants(payload: bytes, offset: int = 0) -> None:
    """What every decoded record keeps (an input no recording holds): one JSON line that agrees with the
    record's bytes (integers beyond 64 bits written exactly)."""
    line = _native.bsm_decode_raw_json(payload, offset)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    rec = json.loads(line)
    assert rec["offset"] == offset and rec["length"] == len(bytes.fromhex(rec["raw"]))
    assert payload.startswith(bytes.fromhex(rec["raw"])) and rec["length"] <= len(payload)
    assert isinstance(rec["tokens"], list) and isinstance(rec["errors"], list)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(range(len(FIXTURE_RECORDS) + len(HANDBUILT))),
    edits=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, 1 << 20),
    fix_length=st.booleans(),
)
def test_property_edited_records_keep_the_invariants(
    base: int, edits: list[tuple[int, int]], cut: int, fix_length: bool
) -> None:
    payload = bytearray(
        FIXTURE_RECORDS[base][2] if base < len(FIXTURE_RECORDS) else HANDBUILT[base - len(FIXTURE_RECORDS)]
    )
    for where, value in edits:
        payload[where % len(payload)] = value
    del payload[max(1, cut % (len(payload) + 1)) :]
    if fix_length and len(payload) >= 5:
        payload[1:5] = struct.pack(">I", len(payload))
    assert_decoder_invariants(bytes(payload))


def test_integer_beyond_64_bits_is_written_exactly() -> None:
    """A header64 with a huge second count: its time_ns is an exact JSON number (``decode --raw`` raised
    orjson's TypeError with the Python decoder, and the native one until the known bugs were fixed)."""
    payload = B.record(B.header64(1, 2**64 - 1, 0), B.text("t"))
    assert json.loads(_native.bsm_decode_raw_json(payload))["time_ns"] == (2**64 - 1) * 10**9


# ---------------------------------------------------------------- what the native side adds


def test_token_cap_reports_truncation_and_keeps_the_rest_equal() -> None:
    """200,000 one-byte text tokens (the record that ran an engine out of heap): the Python decoder
    built all of them; the native one keeps max_tokens and says how many it saw."""
    payload = hostile_record(200_000)
    native = orjson.loads(_native.bsm_decode_raw_json(payload, 0))
    assert native["tokens"] == [{"id": 0x28, "text": "x", "token": "text"}] * 1000
    assert _native.DEFAULT_MAX_TOKENS == 1000
    assert native.pop("truncation") == {
        "max_tokens": 1000,
        "tokens_seen": 200_000,
        "max_array_items": 10_000,
        "array_items_dropped": 0,
    }
    # the header facts as for the same record under the caps; trailer found, no error
    under = orjson.loads(_native.bsm_decode_raw_json(hostile_record(1000), 0))
    for key in ("tokens", "raw", "length"):
        del native[key], under[key]
    assert native == under and native["has_trailer"] is True and native["errors"] == []
    json_line, errors = _native.bsm_decode_raw(payload, 0)
    assert errors == [] and len(json_line) < 3 * len(payload)  # the raw hex dominates, not the tokens


def test_list_cap_and_records_under_the_caps() -> None:
    payload = AT_THE_CAPS[0]
    native = orjson.loads(_native.bsm_decode_raw_json(payload, 0, max_array_items=20))
    assert native["tokens"][0]["args"] == [str(i) for i in range(20)]
    assert native["truncation"]["array_items_dropped"] == 30
    # exactly at the caps: no truncation (byte-equal to Python: group bsm_at_the_caps)
    assert b"truncation" not in _native.bsm_decode_raw_json(payload, 0, max_array_items=50)
    assert b"truncation" not in _native.bsm_decode_raw_json(hostile_record(1000), 0)
    assert b"truncation" in _native.bsm_decode_raw_json(hostile_record(1001), 0)


def decode_or_error(payload: bytes, decode: Callable[[bytes], bytes]) -> dict[str, object]:
    """What a caller of the native decoder does (the pipeline does): any exception from decoding one
    record turns that record into an error (a dead letter there); the stream goes on."""
    try:
        return orjson.loads(decode(payload))
    except Exception as exc:
        return {"error": f"decoder error: {exc}"}


def test_a_panic_in_the_decoder_is_an_exception_and_the_next_record_decodes() -> None:
    good = HANDBUILT[0]
    before = _native.bsm_decode_raw_json(good, 0)
    with pytest.raises(_native.NativePanic, match="fault injected") as info:
        _native._bsm_decode_with_fault(good)
    assert isinstance(info.value, RuntimeError)  # an Exception: `except Exception` catches it
    assert _native.NativePanic.__module__ == "auditrecv._native"
    assert "fault injected" in str(decode_or_error(good, _native._bsm_decode_with_fault)["error"])
    # the process and the module are fine afterwards
    assert decode_or_error(good, _native.bsm_decode_raw_json)["tokens"]
    assert _native.bsm_decode_raw_json(good, 0) == before


def test_a_panic_does_not_abort_a_separate_interpreter() -> None:
    """In a child process, so an abort would show as a signal exit rather than kill the test run."""
    import subprocess
    import sys

    payload = HANDBUILT[0].hex()
    script = (
        "from auditrecv import _native\n"
        "for _ in range(3):\n"
        "    try:\n"
        f"        _native._bsm_decode_with_fault(bytes.fromhex({payload!r}))\n"
        "    except _native.NativePanic:\n"
        "        pass\n"
        "print('alive')\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "alive", proc.stderr[-2000:]
