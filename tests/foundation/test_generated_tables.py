"""The decoders' tables are generated from upstream facts (scripts/gen_*_tables.py); the committed
files must be exactly what the scripts write today, so nobody edits a table by hand and a changed
generator cannot leave stale data behind."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import BSM_FIXTURES, LINUX_FIXTURES

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("script", "fixtures", "committed"),
    [
        ("gen_bsm_tables.py", BSM_FIXTURES, REPO / "native" / "tables" / "bsm"),
        ("gen_linux_tables.py", LINUX_FIXTURES, REPO / "native" / "tables" / "linux"),
    ],
)
def test_committed_tables_are_what_the_generator_writes(
    script: str, fixtures: Path, committed: Path, tmp_path: Path
) -> None:
    out = tmp_path / "data"
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / script), "--fixtures", str(fixtures), "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(p.name for p in committed.iterdir() if p.is_file()), "a table appeared or went away"
    _same, mismatch, errors = filecmp.cmpfiles(committed, out, written, shallow=False)
    assert not mismatch and not errors, f"regenerate with scripts/{script}: {mismatch + errors} differ"
