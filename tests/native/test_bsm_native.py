"""The native BSM decoder (auditrecv._native, Rust) against the Python one (auditrecv.decode.bsm).

For every record of every BSM fixture trail, for hand-built records of every token in both dialects
and widths, and for thousands of damaged copies of them (every truncation, bit flips, overwritten
bytes), the native JSON line must be byte-equal to what ``auditrecv decode --raw`` writes with the
Python decoder, or both must raise the same exception class. Trail splitting must match
``iter_stream`` item for item. Then what the native side adds: the caps on one record's work, and
the panic boundary.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditrecv import _native
from auditrecv.decode.bsm import BsmFileToken, decode_record, iter_records, iter_stream, looks_like_bsm
from auditrecv.schema.deadletter import dead_letter_doc
from auditrecv.spool.record import Source
from auditrecv.tools import dumps
from tests import bsm_builders as B
from tests.decode_bsm.test_token_catalogue import CASES
from tests.paths import BSM_FIXTURES

S = B.str16


# ---------------------------------------------------------------- the two sides


def python_raw_json(payload: bytes, offset: int) -> bytes | type[Exception]:
    """What ``auditrecv decode --raw`` writes for a record at file position ``offset`` (tools._decode_raw)."""
    rec = decode_record(payload)
    rec.offset = offset
    try:
        return dumps(rec.to_dict())
    except Exception as exc:  # orjson refuses an integer beyond 64 bits: the CLI would crash here
        return type(exc)


def native_raw_json(payload: bytes, offset: int) -> bytes | type[Exception]:
    try:
        return _native.bsm_decode_raw_json(payload, offset)
    except Exception as exc:
        return type(exc)


def assert_same(payload: bytes, offset: int = 0, what: str = "") -> None:
    expected = python_raw_json(payload, offset)
    got = native_raw_json(payload, offset)
    if got != expected:
        detail = ""
        if isinstance(got, bytes) and isinstance(expected, bytes):
            a, b = orjson.loads(expected), orjson.loads(got)
            diff = {k: (a.get(k), b.get(k)) for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
            detail = f"\nparsed differences (python, native): {diff}"
        pytest.fail(f"{what} payload {payload.hex()} offset {offset}:\npython {expected!r}\nnative {got!r}{detail}")


def python_split(data: bytes, base: int = 0) -> list[tuple[int, int, int]]:
    out = []
    for item in iter_stream(data, base):
        if isinstance(item, BsmFileToken):
            out.append((_native.ITEM_FILE, item.offset, item.length))
        elif item.version is None and item.errors and item.errors[0].startswith("no BSM header"):
            out.append((_native.ITEM_SKIPPED, item.offset, item.length))
        else:
            out.append((_native.ITEM_RECORD, item.offset, item.length))
    return out


# ---------------------------------------------------------------- inputs


def fixture_files() -> list[Path]:
    """Every binary file of the BSM fixture set (trails, reference records and lone tokens)."""
    skip = {".md", ".txt", ".xml"}
    files = [p for p in sorted(BSM_FIXTURES.rglob("*")) if p.is_file() and p.suffix not in skip]
    return [p for p in files if "etc_audit" not in p.name]


FIXTURE_FILES = fixture_files()
TRAILS = [p for p in FIXTURE_FILES if looks_like_bsm(p.read_bytes()[:4096])]


def fixture_records() -> list[tuple[str, int, bytes]]:
    out = []
    for path in TRAILS:
        for rec in iter_records(path.read_bytes()):
            out.append((str(path.relative_to(BSM_FIXTURES)), rec.offset, rec.raw))
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


# ---------------------------------------------------------------- equivalence


def test_fixture_set_is_there() -> None:
    assert len(TRAILS) >= 3 and len(FIXTURE_RECORDS) >= 100, (TRAILS, len(FIXTURE_RECORDS))


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: str(p.relative_to(BSM_FIXTURES)))
def test_every_fixture_file_splits_and_decodes_alike(path: Path) -> None:
    data = path.read_bytes()
    assert _native.bsm_looks_like(data[:4096]) == looks_like_bsm(data[:4096])
    assert _native.bsm_split_trail(data, 1000) == python_split(data, 1000)
    for rec in iter_records(data):
        assert_same(rec.raw, rec.offset, str(path))
        # the same record decoded in place, inside the whole file
        off = rec.offset
        expected = dumps(decode_record(data, off, whole=False).to_dict())
        assert _native.bsm_decode_record_json(data, off, False) == expected


def test_every_fixture_record_byte_equal() -> None:
    for name, offset, raw in FIXTURE_RECORDS:
        assert_same(raw, offset, name)
    # and the split of everything at once, mmap-like buffers included
    data = b"".join(p.read_bytes() for p in TRAILS)
    assert _native.bsm_split_trail(memoryview(data)) == python_split(data)
    assert _native.bsm_split_trail(bytearray(data), 7) == python_split(data, 7)


def test_handbuilt_records_byte_equal() -> None:
    assert len(HANDBUILT) > 300
    for payload in HANDBUILT:
        assert_same(payload, 12345, "handbuilt")


@pytest.mark.parametrize("source", ["fixtures", "handbuilt"])
def test_damaged_records_alike(source: str) -> None:
    rng = random.Random(12)
    bases = [raw for _, _, raw in FIXTURE_RECORDS] if source == "fixtures" else HANDBUILT
    count = 0
    for payload in bases:
        for damaged in mutations(payload, rng, flips=6):
            assert_same(damaged, 0, f"{source} mutation")
            count += 1
    assert count > 5000


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(range(len(FIXTURE_RECORDS) + len(HANDBUILT))),
    edits=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, 1 << 20),
    fix_length=st.booleans(),
)
def test_property_edited_records_alike(base: int, edits: list[tuple[int, int]], cut: int, fix_length: bool) -> None:
    payload = bytearray(
        FIXTURE_RECORDS[base][2] if base < len(FIXTURE_RECORDS) else HANDBUILT[base - len(FIXTURE_RECORDS)]
    )
    for where, value in edits:
        payload[where % len(payload)] = value
    del payload[max(1, cut % (len(payload) + 1)) :]
    if fix_length and len(payload) >= 5:
        payload[1:5] = struct.pack(">I", len(payload))
    assert_same(bytes(payload), 0, "property")


def test_damaged_streams_split_alike() -> None:
    rng = random.Random(7)
    pieces = [raw for _, _, raw in FIXTURE_RECORDS[:60]] + HANDBUILT[:60]
    pieces += [B.file32(1, 2, "trail"), B.file64(3, 4, "x"), b"\x11\x00", b"\x78" + bytes(30), bytes(5)]
    for _ in range(300):
        parts = [rng.choice(pieces) for _ in range(rng.randrange(1, 8))]
        data = bytearray(b"".join(parts))
        for _ in range(rng.randrange(4)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        if data and rng.random() < 0.3:
            del data[rng.randrange(len(data)) :]
        blob = bytes(data)
        assert _native.bsm_split_trail(blob, 5) == python_split(blob, 5), blob.hex()
        assert _native.bsm_looks_like(blob) == looks_like_bsm(blob), blob.hex()
        for rec in iter_records(blob):
            assert_same(rec.raw, rec.offset, "stream record")


def test_random_bytes_alike() -> None:
    rng = random.Random(3)
    for _ in range(3000):
        head = rng.choice((0x14, 0x15, 0x74, 0x79))
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(60)))
        payload = bytes([head]) + body
        if len(payload) > 5 and rng.random() < 0.7:  # a plausible length and version
            payload = payload[:1] + struct.pack(">I", len(payload)) + bytes([rng.choice((2, 11))]) + payload[6:]
        assert_same(payload, 0, "random")


def test_invalid_utf8_replaced_alike() -> None:
    """Strings are UTF-8 with errors="replace" on both sides: the same U+FFFD for every invalid
    sequence (lead bytes without continuations, overlongs, surrogates, bytes past U+10FFFF)."""
    rng = random.Random(5)
    alphabet = [*range(0x20, 0x7F), *range(0x80, 0xC2), 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF, 0]
    for _ in range(2000):
        raw = bytes(rng.choice(alphabet) for _ in range(rng.randrange(1, 24)))
        payload = B.record(
            B.header32(23, 1, 0, version=rng.choice((2, 11))),
            struct.pack(">BI", 0x3C, 1) + raw.replace(b"\0", b"") + b"\0",  # exec_args: one C string
            b"\x28" + S(raw),  # text: cut at a NUL
            bytes([0x21, 4, 0, len(raw)]) + raw,  # arbitrary, string format: not cut
        )
        assert_same(payload, 0, "utf-8")


def test_integer_beyond_64_bits_fails_alike() -> None:
    """A header64 with a huge second count: orjson cannot write its time_ns, so ``decode --raw`` raises
    (a Python bug, kept identical for now); the native side raises the same class."""
    payload = B.record(B.header64(1, 2**64 - 1, 0), B.text("t"))
    assert python_raw_json(payload, 0) is TypeError
    with pytest.raises(TypeError, match="64-bit"):
        _native.bsm_decode_raw_json(payload)


# ---------------------------------------------------------------- what the native side adds


def hostile_record(count: int) -> bytes:
    return B.record(B.header32(1, 1, 0, version=11), *([B.text("x")] * count), trailer=True)


def test_token_cap_reports_truncation_and_keeps_the_rest_equal() -> None:
    """200,000 one-byte text tokens (the record that ran an engine out of heap): the Python decoder
    builds all of them; the native one keeps max_tokens and says how many it saw."""
    payload = hostile_record(200_000)
    native = orjson.loads(_native.bsm_decode_raw_json(payload, 0))
    python = decode_record(payload).to_dict()
    assert len(python["tokens"]) == 200_000
    assert len(native["tokens"]) == _native.DEFAULT_MAX_TOKENS == 1000
    assert native["tokens"] == python["tokens"][:1000]
    assert native.pop("truncation") == {
        "max_tokens": 1000,
        "tokens_seen": 200_000,
        "max_array_items": 10_000,
        "array_items_dropped": 0,
    }
    del native["tokens"], python["tokens"]
    assert native == python  # trailer found, no error, same header facts
    json_line, errors = _native.bsm_decode_raw(payload, 0)
    assert errors == [] and len(json_line) < 3 * len(payload)  # the raw hex dominates, not the tokens


def test_list_cap_and_records_under_the_caps() -> None:
    payload = B.record(B.header32(23, 1, 0, version=11), B.cstr_list(0x3C, [str(i) for i in range(50)]))
    native = orjson.loads(_native.bsm_decode_raw_json(payload, 0, max_array_items=20))
    assert native["tokens"][0]["args"] == [str(i) for i in range(20)]
    assert native["truncation"]["array_items_dropped"] == 30
    # exactly at the caps: no truncation, byte-equal
    assert _native.bsm_decode_raw_json(payload, 0, max_array_items=50) == python_raw_json(payload, 0)
    capped = hostile_record(1000)
    assert _native.bsm_decode_raw_json(capped, 0) == python_raw_json(capped, 0)
    assert b"truncation" in _native.bsm_decode_raw_json(hostile_record(1001), 0)


def decode_or_dead_letter(payload: bytes, decode: Callable[[bytes], bytes]) -> dict[str, object]:
    """What a caller of the native decoder does (the pipeline will, once switched): any exception
    from decoding one record turns that record into a dead letter; the stream goes on."""
    try:
        return orjson.loads(decode(payload))
    except Exception as exc:
        return dead_letter_doc(payload, Source(transport="file", peer="test"), f"decoder error: {exc}", "bsm")


def test_a_panic_in_the_decoder_is_an_exception_and_the_next_record_decodes() -> None:
    good = HANDBUILT[0]
    with pytest.raises(_native.NativePanic, match="fault injected") as info:
        _native._bsm_decode_with_fault(good)
    assert isinstance(info.value, RuntimeError)  # an Exception: `except Exception` catches it
    assert _native.NativePanic.__module__ == "auditrecv._native"
    doc = decode_or_dead_letter(good, _native._bsm_decode_with_fault)
    assert doc["event"]["kind"] == "pipeline_error"  # type: ignore[index]
    assert "fault injected" in str(doc)
    # the process and the module are fine afterwards
    assert decode_or_dead_letter(good, _native.bsm_decode_raw_json)["tokens"]
    assert_same(good, 0, "after a panic")


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
