"""The native core (auditrecv._native, through tests/golden/core.py) still produces, byte for byte, what the
golden files recorded (see README.md).

A failure names the first differing line of one golden file with a field-level diff. If the fixture itself
changed since the goldens were made (its sha256 differs from MANIFEST.tsv), that is said instead.

    AUDITRECV_REGEN_GOLDENS=1 .venv/bin/python -m pytest -q tests/golden/test_goldens.py   # rewrite them first
"""

from __future__ import annotations

import functools
import io
import os
from pathlib import Path

import orjson
import pytest

from auditrecv.spool.record import RecordKind
from auditrecv.tools import decode_files
from tests.golden.goldens import (
    GOLDEN_DIR,
    GOLDEN_HOST,
    GOLDEN_RECEIVED_NS,
    MANIFEST,
    OUTPUTS,
    Fixture,
    ManifestRow,
    describe_difference,
    discover_fixtures,
    golden_observer,
    read_manifest,
    read_records,
    sha256_of,
    split_lines,
    write_goldens,
)
from tests.paths import FIXTURES

REGENERATE = os.environ.get("AUDITRECV_REGEN_GOLDENS") == "1"
if REGENERATE:  # at collection, so that the parametrization below already sees the new manifest
    write_goldens()

ROWS = read_manifest()
REGEN_HINT = "if the change is deliberate: python scripts/gen_goldens.py, review the diff, list it in the commit"


@functools.cache
def _records(relpath: str, kind: RecordKind) -> list[tuple[int, bytes]]:
    return read_records(Fixture(relpath, kind))


def test_manifest_covers_every_fixture_and_nothing_else() -> None:
    """A fixture added, removed or read as another kind needs new goldens; a stray golden file is a leftover."""
    discovered = {(f.relpath, f.kind) for f in discover_fixtures()}
    listed = {(r.fixture, r.kind) for r in ROWS}
    assert discovered == listed, (
        f"fixtures without goldens: {sorted(discovered - listed)}; goldens without fixture: "
        f"{sorted(listed - discovered)}; {REGEN_HINT}"
    )
    assert {(r.fixture, r.output) for r in ROWS} == {(f, o) for f, _ in listed for o in OUTPUTS}
    on_disk = {p.relative_to(GOLDEN_DIR).as_posix() for p in GOLDEN_DIR.rglob("*.jsonl")}
    assert on_disk == {r.golden for r in ROWS}, (
        f"golden files not in {MANIFEST.name}: {sorted(on_disk - {r.golden for r in ROWS})}"
    )


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.fixture}:{r.output}" for r in ROWS])
def test_output_matches_golden(row: ManifestRow) -> None:
    path = FIXTURES / row.fixture
    if not path.is_file():
        pytest.fail(f"{row.fixture}: the fixture is gone; {REGEN_HINT}", pytrace=False)
    if sha256_of(path) != row.sha256:
        pytest.fail(
            f"{row.fixture}: the FIXTURE changed since the goldens were made (sha256 {row.sha256[:12]}… in "
            f"{MANIFEST.name}), not necessarily the code; regenerate and review",
            pytrace=False,
        )
    records = _records(row.fixture, row.kind)
    assert len(records) == row.records, f"{row.fixture}: {len(records)} raw records read, {row.records} listed"
    made = OUTPUTS[row.output](Fixture(row.fixture, row.kind), records)
    golden = split_lines((GOLDEN_DIR / row.golden).read_bytes())
    difference = describe_difference(row.golden, golden, made)
    if difference:
        pytest.fail(f"{difference}\n{REGEN_HINT}", pytrace=False)
    assert len(golden) == row.lines


def _golden_values(output: str, *, key: str | None = None) -> list[object]:
    values = []
    for row in ROWS:
        if row.output == output:
            for line in split_lines((GOLDEN_DIR / row.golden).read_bytes()):
                value = orjson.loads(line)
                values.append(value[key] if key else value)
    return values


def _fixture_names() -> list[str]:
    return list(dict.fromkeys(r.fixture for r in ROWS))


@pytest.mark.parametrize(("schema", "output"), [("ecs", "ecs"), ("auditrecv-v1", "v1")])
def test_decode_command_prints_the_golden_documents(schema: str, output: str) -> None:
    """The goldens are what `auditrecv decode` prints (with its clock and host names fixed), in that order."""
    out = io.BytesIO()
    decode_files(
        [str(FIXTURES / name) for name in _fixture_names()],
        raw=False,
        schema=schema,
        host=GOLDEN_HOST,
        out=out,
        clock=lambda: GOLDEN_RECEIVED_NS,
        observer=golden_observer(),
    )
    printed = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert printed == _golden_values(output, key="_source")


def test_decode_raw_command_prints_the_golden_raw_output(monkeypatch: pytest.MonkeyPatch) -> None:
    """`cd fixtures && auditrecv decode --raw <path>...` prints the raw goldens (Linux events name their input)."""
    monkeypatch.chdir(FIXTURES)
    out = io.BytesIO()
    decode_files(_fixture_names(), raw=True, schema="ecs", host=GOLDEN_HOST, out=out)
    printed = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert printed == _golden_values("raw")


def test_golden_files_are_small_enough_to_review() -> None:
    """Kept as plain JSON lines while the whole set stays under ~15 MB (README.md: when to gzip)."""
    total = sum(p.stat().st_size for p in GOLDEN_DIR.rglob("*.jsonl"))
    assert total < 15_000_000, f"goldens are {total / 1e6:.1f} MB: gzip the largest (see README.md)"


def test_golden_lines_are_canonical() -> None:
    """One object per line, keys sorted, no line breaks inside: a diff shows whole documents."""
    for path in sorted(Path(GOLDEN_DIR).rglob("*.jsonl")):
        data = path.read_bytes()
        assert not data or data.endswith(b"\n"), path
        for line in split_lines(data):
            value = orjson.loads(line)
            assert isinstance(value, dict)
            assert orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE) == line, path
