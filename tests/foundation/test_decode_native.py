"""`auditrecv decode` writes its JSON lines with the native core (--raw of BSM and Linux, BSM documents):
byte for byte what the Python path prints, and the same error messages, for every golden fixture and
damaged input."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from auditrecv.decode.bsm import iter_trail_file
from auditrecv.tools import decode_files, read_input
from tests.golden.test_goldens import _fixture_names
from tests.paths import BSM_FIXTURES, FIXTURES, LINUX_FIXTURES

NAMES = _fixture_names()
TRAIL = BSM_FIXTURES / "plaso" / "openbsm.bsm"


def both(
    names: list[str], capsys: pytest.CaptureFixture[str], *, raw: bool, schema: str = "ecs"
) -> tuple[tuple[bytes, str, int], tuple[bytes, str, int]]:
    """(stdout, stderr, exit status) of the native and of the Python path."""
    made = []
    for native in (True, False):
        out = io.BytesIO()
        rc = decode_files(
            names,
            raw=raw,
            schema=schema,
            host="golden-sender.example",
            out=out,
            clock=lambda: 1_700_000_000_123_456_789,
            observer={"name": "recv", "hostname": "recv.example"},
            native=native,
        )
        made.append((out.getvalue(), capsys.readouterr().err, rc))
    return made[0], made[1]


def test_raw_output_of_every_fixture_as_python(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(FIXTURES)  # Linux events name their input as given
    native, python = both(NAMES, capsys, raw=True)
    assert native[0].count(b"\n") > 200
    assert native == python


@pytest.mark.parametrize("schema", ["ecs", "auditrecv-v1"])
def test_documents_of_every_fixture_as_python(capsys: pytest.CaptureFixture[str], schema: str) -> None:
    native, python = both([str(FIXTURES / n) for n in NAMES], capsys, raw=False, schema=schema)
    assert native[0].count(b"\n") > 200
    assert native == python


@pytest.mark.parametrize("raw", [True, False])
def test_damaged_inputs_report_the_same_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], raw: bool) -> None:
    data = TRAIL.read_bytes()
    damaged = tmp_path / "damaged.bsm"
    damaged.write_bytes(data[:-7] + b"\xff" * 40 + data[: len(data) // 2] + data[5:90])
    log = LINUX_FIXTURES / "third_party" / "audit-userspace-v3.0.9" / "auparse" / "test" / "test.log"
    bad_log = tmp_path / "bad.log"
    bad_log.write_bytes(b"type=SYSCALL msg=audit(nonsense\n\n  \r\n" + log.read_bytes()[:3000] + b"\ngarbage line\n")
    native, python = both([str(damaged), str(bad_log), str(tmp_path / "missing")], capsys, raw=raw)
    assert native == python
    assert native[2] == 1 and "offset" in native[1] and "missing" in native[1]


def test_stdin_through_the_command() -> None:
    """The CLI reads stdin whole for the native core: same lines as the file."""
    run = [sys.executable, "-m", "auditrecv", "decode", "--raw"]
    from_stdin = subprocess.run([*run, "-"], input=TRAIL.read_bytes(), capture_output=True, timeout=120, check=True)
    from_file = subprocess.run([*run, str(TRAIL)], capture_output=True, timeout=120, check=True)
    assert from_stdin.stdout == from_file.stdout and from_file.stdout.count(b"\n") > 10


def test_trails_split_as_the_python_reader_split_them() -> None:
    """read_input's BSM records (native split) are iter_trail_file's, damaged bytes included."""
    for path in [*sorted(BSM_FIXTURES.rglob("*.bsm")), TRAIL]:
        expected = [(rec.offset, rec.raw) for rec in iter_trail_file(path)]
        kind, records = read_input(str(path))
        assert kind == "bsm" and list(records) == expected, path
