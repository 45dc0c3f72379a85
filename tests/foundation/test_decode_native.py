"""`auditrecv decode` writes its JSON lines with the native core (--raw of BSM and Linux, documents of
both kinds): byte for byte what the Python path printed, with the same error messages and exit status, for
every golden fixture and damaged input (recorded from the Python path before its deletion:
tests/native/recorded.py)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from auditrecv.tools import decode_files, read_input
from tests.golden.test_goldens import _fixture_names
from tests.native import recorded
from tests.paths import BSM_FIXTURES, FIXTURES, LINUX_FIXTURES

NAMES = _fixture_names()
TRAIL = BSM_FIXTURES / "plaso" / "openbsm.bsm"


def decode(names: list[str], capsys: pytest.CaptureFixture[str], *, raw: bool, schema: str = "ecs") -> bytes:
    """stdout, stderr and exit status of `auditrecv decode` as one outcome (paths of the machine left out)."""
    out = io.BytesIO()
    rc = decode_files(
        names,
        raw=raw,
        schema=schema,
        host="golden-sender.example",
        out=out,
        clock=lambda: 1_700_000_000_123_456_789,
        observer={"name": "recv", "hostname": "recv.example"},
    )
    err = capsys.readouterr().err.replace(str(FIXTURES), "<fixtures>")
    return out.getvalue() + f"\n-- stderr --\n{err}\n-- exit {rc} --\n".encode()


def input_key(names: list[str], **options: object) -> bytes:
    """A decode run as a recorded input: the files' contents and the options."""
    files = [Path(n) if Path(n).is_absolute() else FIXTURES / n for n in names]
    contents = b"".join(f.read_bytes() if f.exists() else b"<missing>" for f in files)
    return repr(sorted(options.items())).encode() + contents


def test_raw_output_of_every_fixture_as_python(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(FIXTURES)  # Linux events name their input as given
    native = decode(NAMES, capsys, raw=True)
    assert native.count(b"\n") > 200
    recorded.check("cli_raw", [(input_key(NAMES, raw=True) + repr(NAMES).encode(), native)])


@pytest.mark.parametrize("schema", ["ecs", "auditrecv-v1"])
def test_documents_of_every_fixture_as_python(capsys: pytest.CaptureFixture[str], schema: str) -> None:
    names = [str(FIXTURES / n) for n in NAMES]
    native = decode(names, capsys, raw=False, schema=schema)
    assert native.count(b"\n") > 200
    recorded.check(f"cli_documents_{schema}", [(input_key(names, schema=schema), native)])


@pytest.mark.parametrize("raw", [True, False])
def test_damaged_inputs_report_the_same_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], raw: bool) -> None:
    data = TRAIL.read_bytes()
    damaged = tmp_path / "damaged.bsm"
    damaged.write_bytes(data[:-7] + b"\xff" * 40 + data[: len(data) // 2] + data[5:90])
    log = LINUX_FIXTURES / "third_party" / "audit-userspace-v3.0.9" / "auparse" / "test" / "test.log"
    bad_log = tmp_path / "bad.log"
    bad_log.write_bytes(b"type=SYSCALL msg=audit(nonsense\n\n  \r\n" + log.read_bytes()[:3000] + b"\ngarbage line\n")
    names = [str(damaged), str(bad_log), str(tmp_path / "missing")]
    native = decode(names, capsys, raw=raw).replace(str(tmp_path).encode(), b"<tmp>")
    recorded.check(f"cli_damaged_{'raw' if raw else 'documents'}", [(input_key(names, raw=raw), native)])
    assert native.endswith(b"-- exit 1 --\n") and b"offset" in native and b"<tmp>/missing" in native


def test_stdin_through_the_command() -> None:
    """The CLI reads stdin whole for the native core: same lines as the file."""
    run = [sys.executable, "-m", "auditrecv", "decode", "--raw"]
    from_stdin = subprocess.run([*run, "-"], input=TRAIL.read_bytes(), capture_output=True, timeout=120, check=True)
    from_file = subprocess.run([*run, str(TRAIL)], capture_output=True, timeout=120, check=True)
    assert from_stdin.stdout == from_file.stdout and from_file.stdout.count(b"\n") > 10


def test_trails_split_as_the_python_reader_split_them() -> None:
    """read_input's BSM records (native split) are the Python iter_trail_file's (recorded), damaged bytes
    included."""
    cases = []
    for path in [*sorted(BSM_FIXTURES.rglob("*.bsm")), TRAIL]:
        kind, records = read_input(str(path))
        assert kind == "bsm"
        cases.append(
            (path.read_bytes(), b"".join(b"%d:%s\n" % (offset, raw.hex().encode()) for offset, raw in records))
        )
    recorded.check("cli_trail_split", cases)


def test_linux_documents_are_built_natively(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Linux documents come from LinuxDocuments (not the Python mapper), byte for byte as Python printed them,
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
    native = decode(names, capsys, raw=False)
    recorded.check("cli_linux_documents", [(input_key(names), native)])
    assert made and sum(d.stats()["linux_events"] for d in made) > 100
    assert native.count(b"\n") > 100 and b'"truncated":true' in native
