"""`auditrecv decode` writes its JSON lines with the native core (--raw of BSM and Linux, documents of both):
byte for byte the goldens the Python path wrote (orjson bytes, keys in the decoders' and mappers' order),
and its error messages, for every golden fixture and damaged input."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from auditrecv.tools import decode_files, read_input
from tests.golden.goldens import (
    GOLDEN_DIR,
    GOLDEN_HOST,
    GOLDEN_RECEIVED_NS,
    golden_observer,
    read_manifest,
    split_lines,
)
from tests.paths import BSM_FIXTURES, FIXTURES, LINUX_FIXTURES

ROWS = read_manifest()
NAMES = list(dict.fromkeys(r.fixture for r in ROWS))
TRAIL = BSM_FIXTURES / "plaso" / "openbsm.bsm"


def decode(
    names: list[str], capsys: pytest.CaptureFixture[str], *, raw: bool, schema: str = "ecs"
) -> tuple[bytes, str, int]:
    """(stdout, stderr, exit status) of `auditrecv decode` with the goldens' clock, host and observer."""
    out = io.BytesIO()
    rc = decode_files(
        names,
        raw=raw,
        schema=schema,
        host=GOLDEN_HOST,
        out=out,
        clock=lambda: GOLDEN_RECEIVED_NS,
        observer=golden_observer(),
    )
    return out.getvalue(), capsys.readouterr().err, rc


def goldens(output: str) -> list[Any]:
    values = []
    for row in ROWS:
        if row.output == output:
            values += [orjson.loads(line) for line in split_lines((GOLDEN_DIR / row.golden).read_bytes())]
    return values


def canonical(out: bytes) -> list[bytes]:
    """Each line as orjson writes it again: a line that is not orjson's own bytes shows up."""
    return [orjson.dumps(orjson.loads(line)) for line in out.splitlines()]


def test_raw_output_of_every_fixture_is_the_goldens(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(FIXTURES)  # Linux events name their input as given
    out, _, _ = decode(NAMES, capsys, raw=True)
    assert out.count(b"\n") > 200
    assert out.splitlines() == canonical(out)
    assert [orjson.loads(line) for line in out.splitlines()] == goldens("raw")


@pytest.mark.parametrize(("schema", "output"), [("ecs", "ecs"), ("auditrecv-v1", "v1")])
def test_documents_of_every_fixture_are_the_goldens(
    capsys: pytest.CaptureFixture[str], schema: str, output: str
) -> None:
    out, _, _ = decode([str(FIXTURES / n) for n in NAMES], capsys, raw=False, schema=schema)
    assert out.count(b"\n") > 200
    assert out.splitlines() == canonical(out)
    assert [orjson.loads(line) for line in out.splitlines()] == [g["_source"] for g in goldens(output)]


@pytest.mark.parametrize("raw", [True, False])
def test_damaged_inputs_report_their_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], raw: bool) -> None:
    data = TRAIL.read_bytes()
    damaged = tmp_path / "damaged.bsm"
    damaged.write_bytes(data[:-7] + b"\xff" * 40 + data[: len(data) // 2] + data[5:90])
    log = LINUX_FIXTURES / "third_party" / "audit-userspace-v3.0.9" / "auparse" / "test" / "test.log"
    bad_log = tmp_path / "bad.log"
    bad_log.write_bytes(b"type=SYSCALL msg=audit(nonsense\n\n  \r\n" + log.read_bytes()[:3000] + b"\ngarbage line\n")
    out, err, rc = decode([str(damaged), str(bad_log), str(tmp_path / "missing")], capsys, raw=raw)
    assert rc == 1 and out.splitlines() == canonical(out)
    assert err.replace(str(tmp_path), "TMP") == PYTHON_ERRORS[raw]


# What the Python path printed for these inputs (the native output was checked equal to it, stdout too)
_BSM_ERRORS = (
    "auditrecv: TMP/damaged.bsm: offset 1761: unknown token id 0xff at offset 24\n"
    "auditrecv: TMP/damaged.bsm: offset 1792: no BSM header at offset 0 (token id 0xff)\n"
    "auditrecv: TMP/damaged.bsm: offset 2718: record at offset 0 truncated: header says 2816 bytes, 88 available; "
    "unknown header version 0; unknown token id 0xab at offset 18\n"
)
PYTHON_ERRORS = {
    True: _BSM_ERRORS
    + "auditrecv: TMP/bad.log: no type=... msg=audit(sec.ms:serial)\n"
    + "auditrecv: TMP/bad.log: oversize-line fragment without its head line\n"
    + "auditrecv: TMP/missing: No such file or directory\n",
    False: _BSM_ERRORS
    + "auditrecv: TMP/bad.log: line 1: no type=... msg=audit(sec.ms:serial)\n"
    + "auditrecv: TMP/bad.log: line 15: oversize-line fragment without its head line\n"
    + "auditrecv: TMP/missing: No such file or directory\n",
}


def test_stdin_through_the_command() -> None:
    """The CLI reads stdin whole for the native core: same lines as the file."""
    run = [sys.executable, "-m", "auditrecv", "decode", "--raw"]
    from_stdin = subprocess.run([*run, "-"], input=TRAIL.read_bytes(), capture_output=True, timeout=120, check=True)
    from_file = subprocess.run([*run, str(TRAIL)], capture_output=True, timeout=120, check=True)
    assert from_stdin.stdout == from_file.stdout and from_file.stdout.count(b"\n") > 10


def test_trails_split_as_the_python_reader_split_them() -> None:
    """read_input's BSM records (native split) are those the raw goldens hold (each record's offset and
    length, as the Python iter_trail_file split them), damaged bytes included."""
    for row in ROWS:
        if row.output == "raw" and row.kind == "bsm":
            expected = [
                (r["offset"], r["length"])
                for r in map(orjson.loads, split_lines((GOLDEN_DIR / row.golden).read_bytes()))
            ]
            kind, records = read_input(str(FIXTURES / row.fixture))
            assert kind == "bsm" and [(offset, len(raw)) for offset, raw in records] == expected, row.fixture


def test_linux_documents_are_built_natively(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Linux documents come from LinuxDocuments, damaged lines, an orphan EOE and an event over [limits]
    (cut natively) included."""
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
    out, err, rc = decode([str(log)], capsys, raw=False)
    assert made and made[0].stats()["linux_events"] == 4
    docs = [orjson.loads(line) for line in out.splitlines()]
    assert [d["auditd"]["sequence"] for d in docs if "sequence" in d.get("auditd", {})] == [1, 2, 3]
    (cut,) = [d for d in docs if d.get("auditrecv", {}).get("truncated")]
    assert cut["auditrecv"]["truncation"]["fields"] and "truncated" in cut["tags"]
    assert (rc, err) == (0, "")  # the line without a header is a fragment of the line before it
