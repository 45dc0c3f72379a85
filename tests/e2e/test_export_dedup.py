"""`auditrecv export` keeps one document per document id, like the engine does (issue 14, defect 5).

After a disk-full episode, records that were committed but not acknowledged are sent again by their
host and sit in the spool twice; the engine collapses them by `_id` (409), the export must too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from auditrecv import _native
from auditrecv.spool import Source, Spool, SpoolRecord
from auditrecv.testclient.illumos import split_trail
from tests.e2e.harness import service_config, to_toml
from tests.paths import BSM_FIXTURES, REPO


def event_time(raw: bytes) -> str:
    """A BSM record's own time as the documents' @timestamp starts (milliseconds, UTC)."""
    time_ns = json.loads(_native.bsm_decode_raw_json(raw))["time_ns"]
    assert time_ns is not None
    return datetime.fromtimestamp(time_ns / 1e9, UTC).isoformat(timespec="milliseconds")[:23]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "auditrecv", *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )


async def test_a_record_spooled_twice_is_exported_once(tmp_path: Path) -> None:
    config = tmp_path / "auditrecv.toml"
    config.write_text(to_toml(service_config(tmp_path)))
    first, other = list(split_trail((BSM_FIXTURES / "plaso" / "openbsm.bsm").read_bytes()))[:2]
    # The same host before and after a reconnect: new source port, later arrival, same bytes.
    before = Source("audit_remote", "192.0.2.7", 40001, "dummy", "", False, "audit_remote")
    after = Source("audit_remote", "192.0.2.7", 40777, "dummy", "", False, "audit_remote")
    spool_path = tmp_path / "state" / "spool.db"
    async with await Spool.open(spool_path) as spool:
        await spool.append([SpoolRecord("bsm", first, before, 1_700_000_000_000_000_000)])
        await spool.append([SpoolRecord("bsm", other, before, 1_700_000_000_100_000_000)])
        await spool.append([SpoolRecord("bsm", first, after, 1_700_000_090_000_000_000)])
        assert spool.count() == 3

    out = tmp_path / "out.ndjson"
    proc = run_cli("export", "--ndjson", str(out), "-c", str(config))
    assert proc.returncode == 0, proc.stderr
    docs = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(docs) == 2, [d["@timestamp"] for d in docs]
    assert "exported 2 documents" in proc.stderr and "1 duplicate" in proc.stderr
    # One document per distinct record; the resent record's is its first copy, as the engine keeps it.
    by_time = {d["@timestamp"][:23]: d for d in docs}
    assert set(by_time) == {event_time(first), event_time(other)}
    assert by_time[event_time(first)]["event"]["created"].startswith("2023-11-14T22:13:20")
    assert _native.document_id("bsm", before.to_dict(), [first]) == _native.document_id("bsm", after.to_dict(), [first])
    async with await Spool.open(spool_path) as spool:
        assert spool.count() == 0  # both copies are represented by the exported document
