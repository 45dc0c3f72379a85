"""`auditrecv decode` writes its JSON lines with the native core (--raw of BSM and Linux, BSM documents):
byte for byte what the Python path prints, and the same error messages, for every golden fixture and
damaged input."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def test_linux_documents_are_built_natively(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Linux documents come from LinuxDocuments (not the Python mapper), byte for byte as Python prints them,
    damaged lines, an orphan EOE and an event over [limits] (handed back, built the Python way) included."""
    import auditrecv.pipeline as pipeline

    made: list[Any] = []
    real = pipeline._native.LinuxDocuments

    def spy(**kw: Any) -> Any:
        made.append(real(**kw))
        return made[-1]

    monkeypatch.setattr(pipeline._native, "LinuxDocuments", spy)
    log = tmp_path / "mixed.log"
    syscall = 'type=SYSCALL msg=audit(1700000000.123:{0}): arch=c000003e syscall=59 success=yes exit=0 comm="ls"'
    log.write_text(
        "\n".join(
            [
                syscall.format(1),
                "type=EOE msg=audit(1700000000.123:1): ",
                "type=EOE msg=audit(1700000000.123:1): ",  # orphan: no document
                syscall.format(2),
                "type=EXECVE msg=audit(1700000000.123:2): argc=1 a0=" + "41" * 200_000,  # over [limits]
                "garbage line",
                syscall.format(3),
            ]
        )
        + "\n"
    )
    names = [str(log), *(str(f) for f in sorted(LINUX_FIXTURES.rglob("*.log")))]
    native, python = both(names, capsys, raw=False)
    assert made and sum(d.stats()["linux_events"] for d in made) > 100
    assert native == python
    assert native[0].count(b"\n") > 100 and b'"truncated":true' in native[0]
