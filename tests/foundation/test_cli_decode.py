"""`auditrecv decode` as a user runs it, checked against the independent praudit and libauparse outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.paths import BSM_FIXTURES, LINUX_FIXTURES

TRAIL = BSM_FIXTURES / "plaso" / "openbsm.bsm"
PRAUDIT = BSM_FIXTURES / "praudit-openbsm" / "plaso_openbsm.bsm.praudit.txt"
AUDIT_LOG = LINUX_FIXTURES / "third_party" / "audit-userspace-v3.0.9" / "auparse" / "test" / "test.log"
AUPARSE = LINUX_FIXTURES / "reference-outputs" / "audit-userspace-v3.0.9" / "test.auparse.jsonl"


def decode(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "auditrecv", "decode", *args], input=stdin, capture_output=True, timeout=120
    )


def docs(res: subprocess.CompletedProcess[bytes]) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in res.stdout.splitlines()]


def praudit_headers() -> list[list[str]]:
    return [line.split(",") for line in PRAUDIT.read_text().splitlines() if line.startswith("header,")]


def test_bsm_trail_gives_one_ecs_document_per_record() -> None:
    res = decode(str(TRAIL))
    assert res.returncode == 0, res.stderr.decode()
    out = docs(res)
    headers = praudit_headers()
    assert len(out) == len(headers)
    assert [d["event"]["code"] for d in out] == [h[3] for h in headers]
    assert all(d["event"]["module"] == "bsm" and d["@timestamp"].startswith("2008-12-28T15:12:18.") for d in out)
    # praudit's "+ 131 msec" is the sub-second part of the first record's time
    assert out[0]["@timestamp"] == "2008-12-28T15:12:18.131000000Z"


def test_stdin_and_raw_structure() -> None:
    res = decode("--raw", "-", stdin=TRAIL.read_bytes())
    assert res.returncode == 0, res.stderr.decode()
    out = docs(res)
    assert len(out) == len(praudit_headers())
    assert out[0]["tokens"][0] == {
        "token": "argument",
        "id": 0x2D,
        "arg_num": 3,
        "value": 0xABCDEF00,
        "desc": "test_arg32_token",
        "bits": 32,
    }


def test_damaged_trail_reports_the_offset_and_fails(tmp_path: Path) -> None:
    data = TRAIL.read_bytes()
    bad = tmp_path / "bad.bsm"
    bad.write_bytes(data[:-7])  # cut into the last record
    res = decode(str(bad))
    assert res.returncode == 1
    err = res.stderr.decode()
    assert "bad.bsm" in err and "offset" in err
    assert "Traceback" not in err
    assert len(docs(res)) == len(praudit_headers())  # the damaged record is still a document


def test_linux_log_gives_one_document_per_event_like_libauparse() -> None:
    res = decode(str(AUDIT_LOG))
    assert res.returncode == 0, res.stderr.decode()
    out = docs(res)
    reference = [json.loads(line) for line in AUPARSE.read_text().splitlines()]
    assert len(out) == len(reference)
    assert all(d["event"]["module"] == "auditd" for d in out)


def test_compat_schema_shape() -> None:
    res = decode("--schema", "auditrecv-v1", str(TRAIL))
    assert res.returncode == 0, res.stderr.decode()
    first = docs(res)[0]
    assert "time" in first and isinstance(first["event"], str)


def test_missing_file_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    res = decode(str(tmp_path / "nope.bsm"))
    assert res.returncode == 1
    assert b"nope.bsm" in res.stderr and b"Traceback" not in res.stderr


def test_integers_beyond_64_bits_are_exact_in_raw_output(tmp_path: Path) -> None:
    """A far-future time (Linux audit(SEC...), BSM header64 seconds) and a serial past 2**64 are exact JSON
    numbers in `--raw` output (once a TypeError traceback that ended `decode --raw`)."""
    from tests import bsm_builders as B

    log = tmp_path / "far.log"
    log.write_bytes(
        b"type=SYSCALL msg=audit(111170021493.977:293): arch=c000003e syscall=59 success=yes exit=0\n"
        b"type=SYSCALL msg=audit(1700000000.123:18446744073709551616): arch=c000003e syscall=59 success=yes exit=0\n"
    )
    trail = tmp_path / "far.bsm"
    trail.write_bytes(B.record(B.header64(1, 2**40, 0, version=2), B.return32(0, 0), trailer=True))
    res = decode("--raw", str(log), str(trail))
    assert (res.returncode, res.stderr) == (0, b"")
    linux_far, linux_serial, bsm_far = docs(res)
    assert (linux_far["time_ns"], linux_far["serial"]) == (111170021493977000000, 293)
    assert linux_serial["serial"] == 2**64
    assert bsm_far["time_ns"] == 2**40 * 10**9


def test_a_record_the_core_cannot_write_is_one_error_line(tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    """The CLI's boundary: a BSM record whose `--raw` line the core cannot write is named (file, offset) on
    one line of stderr and decoding goes on; a Linux file the core gives up on is named and the next file
    decoded. No traceback."""
    import io

    from auditrecv import tools

    trail = tmp_path / "two.bsm"
    data = TRAIL.read_bytes()
    trail.write_bytes(data)
    real = tools._native.bsm_decode_raw

    def refuse_second(payload: bytes, offset: int, **caps: int) -> Any:
        if offset == second:
            raise TypeError("Integer exceeds 64-bit range")
        return real(payload, offset, **caps)

    offsets = [offset for offset, _ in tools.bsm_records(data)]
    second = offsets[1]
    monkeypatch.setattr(tools._native, "bsm_decode_raw", refuse_second)

    def give_up(*args: Any, **kw: Any) -> int:
        raise ValueError("Exceeds the limit (4300 digits)\nfor integer string conversion")

    monkeypatch.setattr(tools._native, "linux_decode_raw_into", give_up)
    log = tmp_path / "a.log"
    log.write_bytes(b"type=SYSCALL msg=audit(1.000:1): x=1\n")
    out = io.BytesIO()
    assert tools.decode_files([str(trail), str(log), str(trail)], raw=True, schema="ecs", host="h", out=out) == 1
    assert len(out.getvalue().splitlines()) == 2 * (len(offsets) - 1)
    assert capsys.readouterr().err.splitlines() == [
        f"auditrecv: {trail}: offset {second}: record not written: TypeError: Integer exceeds 64-bit range",
        f"auditrecv: {log}: decoding stopped: ValueError: Exceeds the limit (4300 digits) for integer string "
        "conversion",
        f"auditrecv: {trail}: offset {second}: record not written: TypeError: Integer exceeds 64-bit range",
    ]
