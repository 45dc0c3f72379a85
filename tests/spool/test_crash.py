"""kill -9 durability: every id printed after ``append`` returned survives, nothing is corrupt."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from auditrecv.spool import Spool, iter_records
from tests.paths import REPO
from tests.spool._append_child import payload_for, source_for

pytestmark = pytest.mark.usefixtures("journal_storage")  # mapped and written: conftest.py

ROUNDS = 3
LINES_BEFORE_KILL = 400


def run_and_kill(path: Path, first_seq: int) -> dict[int, int]:
    """Start the child, read LINES_BEFORE_KILL acknowledged ids, SIGKILL it mid-stream."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.spool._append_child", str(path), str(first_seq)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    acked: dict[int, int] = {}
    try:
        assert child.stdout is not None
        while len(acked) < LINES_BEFORE_KILL:
            line = child.stdout.readline()
            if not line:
                raise AssertionError(f"child ended early: {child.stderr.read().decode() if child.stderr else ''}")
            rid, seq = map(int, line.split())
            acked[rid] = seq
        child.send_signal(signal.SIGKILL)
        # Lines already written but not yet read were acknowledged too: they must survive as well.
        rest, _ = child.communicate()
        for line in rest.decode().splitlines():
            parts = line.split()
            if len(parts) == 2:  # the last line may be cut by the kill
                acked[int(parts[0])] = int(parts[1])
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    return acked


async def test_acknowledged_records_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    all_acked: dict[int, int] = {}
    next_seq = 0
    for _ in range(ROUNDS):  # each round recovers what the previous kill left behind
        acked = run_and_kill(path, next_seq)
        assert not acked.keys() & all_acked.keys(), "an id was handed out twice"
        all_acked.update(acked)
        next_seq = max(all_acked.values()) + 1_000_000

    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()

    stored = dict(iter_records(path))
    missing = all_acked.keys() - stored.keys()
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {sorted(missing)[:5]}"
    for rid, seq in all_acked.items():
        assert stored[rid].payload == payload_for(seq)
        assert stored[rid].source == source_for(seq)
    # Records committed but not yet printed when the kill came are allowed, but must be whole.
    for record in stored.values():
        seq = int(record.payload.split(b":", 1)[0])
        assert record.payload == payload_for(seq) and record.source == source_for(seq)

    async with await Spool.open(path) as spool:  # and the service opens it cleanly afterwards
        assert spool.count() == len(stored)
        assert spool.last_id >= max(stored)
