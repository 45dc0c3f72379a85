"""`auditrecv decode` as a user runs it, checked against the independent praudit and libauparse outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
