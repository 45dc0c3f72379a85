"""Records that once could not be indexed, through `auditrecv import` into the REAL engine (tests/golden/README.md,
the fixed known bugs): an integer beyond 64 bits (a Linux serial and pids beyond a long, a huge record type
number, a BSM file token's far-future time), a time beyond what @timestamp holds, a line that is not valid
UTF-8 (its bytes kept), bytes after a trail's record (a dead letter with them). Each is one searchable
document of the main index, counted there, none in the dead-letter index (the sink's serialization_error or
the engine's mapping errors)."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests import bsm_builders as B
from tests.e2e.harness import service_config, to_toml
from tests.infra.engine import SearchEngine
from tests.paths import REPO

LINUX_LINES = [
    b"not an audit line \xff",  # first: after a record it would be that record's continuation
    b"type=SYSCALL msg=audit(1700000000.123:99999999999999999999): arch=c000003e syscall=59 success=yes exit=0",
    b"type=SYSCALL msg=audit(1700000000.124:7): arch=c000003e syscall=59 success=yes exit=0 "
    b"pid=9223372036854775808 ppid=-9223372036854775809",
    b"type=SYSCALL msg=audit(111170021493.977:10): arch=c000003e syscall=59 success=yes exit=0",  # year 5492
    b"type=UNKNOWN[99999999999999999999999] msg=audit(1700000000.125:8): x=1",
    b"type=SYSCALL msg=audit(1700000000.126:9): arch=c000003e syscall=59 success=yes exit=0 pid=42",
]
FAR_FILE_TIME = B.record(B.header32(1, 1_700_000_000, 0, version=2), B.file64(2**40, 0, "/x"), trailer=True)
GLUED = B.record(B.header32(1, 1_700_000_001, 0, version=2), B.return32(0, 0), trailer=True) + b"EXTRA"


@pytest.mark.engine
async def test_once_unindexable_records_are_searchable_documents(search_engine: SearchEngine, tmp_path: Path) -> None:
    index = f"e2e-range-{uuid.uuid4().hex[:8]}"
    config = tmp_path / "auditrecv.toml"
    table = service_config(
        tmp_path,
        search_engine.url,
        search={"index": index + "-%Y.%m.%d", "dead_letter_index": index + "-dlq-%Y.%m"},
    )
    config.write_text(to_toml(table))
    log = tmp_path / "audit.log"
    log.write_bytes(b"\n".join(LINUX_LINES) + b"\n")
    trail = tmp_path / "far.bsm"
    trail.write_bytes(FAR_FILE_TIME)
    glued = tmp_path / "glued.bsm"
    glued.write_bytes(GLUED)
    try:
        for name in (log, trail, glued):
            proc = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "auditrecv", "import", "-c", str(config), "--host", "h1", str(name)],
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert proc.returncode == 0, proc.stderr
        main = index + "-2*"
        assert (
            await asyncio.to_thread(search_engine.count, main) == len(LINUX_LINES) + 3
        )  # the far record, the glued one and its EXTRA
        assert await asyncio.to_thread(search_engine.count, index + "-dlq-*") == 0
        tagged = await asyncio.to_thread(search_engine.search, main, {"term": {"tags": "value_out_of_range"}})
        assert sorted(d["event"]["original"] for d in tagged) == sorted(line.decode() for line in LINUX_LINES[1:4])
        assert all("sequence" not in d["event"] for d in tagged if "99999999999999999999" in d["event"]["original"])
        # the huge type number is a keyword leaf of auditd.records (flattened), searchable as its digits
        (unknown,) = await asyncio.to_thread(
            search_engine.search, main, {"term": {"event.code": "99999999999999999999999"}}
        )
        assert "tags" not in unknown
        # the file token's far-future time, a leaf of bsm.tokens, is searchable as its digits
        query = {"term": {"bsm.tokens.time_ns": "1099511627776000000000"}}
        (far,) = await asyncio.to_thread(search_engine.search, main, query)
        assert far["bsm"]["tokens"][0]["time_ns"] == 2**40 * 10**9
        # the line that is not UTF-8 keeps its bytes; the bytes after the trail's record are a dead letter
        errors = await asyncio.to_thread(search_engine.search, main, {"term": {"event.kind": "pipeline_error"}})
        assert sorted(base64.b64decode(d["auditrecv"]["raw_base64"]) for d in errors) == [b"EXTRA", LINUX_LINES[0]]
    finally:
        search_engine.delete_indices(index + "-*")
