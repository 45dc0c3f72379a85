"""Every bench in bench/ finishes with tiny parameters and prints its ratio line; none can hang (issue 10).

These run the benches as a user would (a subprocess), so they also catch a bench broken by a refactoring
elsewhere. No timing is asserted: only that the bench completes, exits 0 and prints its result. The
subprocess timeout is a safety net far above the few seconds each takes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.infra.engine import SearchEngine

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"
SAFETY_TIMEOUT = 300  # far above what any of these needs; only there so a regression cannot hang the suite


def run_bench(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=SAFETY_TIMEOUT,
        env={**os.environ, **(env or {})},
    )


def assert_completed(proc: subprocess.CompletedProcess[str], ratio_line: str) -> None:
    output = f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, output
    assert re.search(ratio_line, proc.stdout, re.MULTILINE), output
    assert "DEADLINE" not in proc.stdout + proc.stderr, output


def test_bench_audit_remote_dummy_completes() -> None:
    """Issue 10: auditrecv refused the bench's dummy clients (no dummy_mech_networks), which reconnected for ever."""
    proc = run_bench(
        "bench_audit_remote.py", "--records", "200", "--hosts", "2", "--mech", "dummy", "--deadline", "240"
    )
    assert_completed(proc, r"^ratio dummy +2 host\(s\): durable spool / baseline \d+\.\d+x")
    assert "connection resets" not in proc.stdout, proc.stdout  # every scenario ran without a refused client


@pytest.mark.kdc  # the bench starts its own throw-away MIT KDC
def test_bench_audit_remote_krb5_completes() -> None:
    proc = run_bench("bench_audit_remote.py", "--records", "60", "--hosts", "2", "--mech", "krb5", "--deadline", "240")
    assert_completed(proc, r"^ratio krb5 +2 host\(s\): durable spool / baseline \d+\.\d+x")
    assert "connection resets" not in proc.stdout, proc.stdout


def test_bench_bsm_decode_completes() -> None:
    proc = run_bench("bench_bsm_decode.py", "--records", "500", "--repeat", "1", "--deadline", "240")
    assert_completed(proc, r"^ratio decode/baseline throughput: \d+\.\d+")


def test_bench_documents_completes() -> None:
    proc = run_bench("bench_documents.py", "--records", "500", "--batch", "100", "--repeat", "1", "--deadline", "240")
    assert_completed(proc, r"^auditrecv-v1 +ratio native/baseline: \d+\.\d+x")
    assert re.search(r"^linux auditrecv-v1 +ratio native/baseline: \d+\.\d+x", proc.stdout, re.MULTILINE), proc.stdout


def test_bench_gzip_completes() -> None:
    proc = run_bench("bench_gzip.py", "--mbytes", "0.2", "--repeat", "1", "--deadline", "240")
    assert_completed(proc, r"^ratio native/zlib throughput: \d+\.\d+x")


def test_bench_linux_decode_completes() -> None:
    proc = run_bench("bench_linux_decode.py", "--records", "500", "--repeat", "1", "--deadline", "240")
    assert_completed(proc, r"^ratio native decode --raw / libauparse parse\+group: \d+\.\d+x")


def test_bench_schema_completes() -> None:
    proc = run_bench("bench_schema.py", "--seconds", "0.05", "--deadline", "240")
    assert_completed(proc, r"^linux .*mapper/baseline +\d+\.\d+")


def test_bench_spool_completes(tmp_path: Path) -> None:
    proc = run_bench("bench_spool.py", "--records", "100", "--repeat", "1", "--dir", str(tmp_path), "--deadline", "240")
    assert_completed(proc, r"^spool, 100 writers, delay 0 ms .*\(\s*\d+\.\d+x\)")


def test_bench_ack_path_completes() -> None:
    proc = run_bench("bench_ack_path.py", "--records", "500", "--rounds", "1", "--deadline", "240")
    assert_completed(proc, r"^ratio whole: read callback, real spool +/ baseline: bare ack protocol +\d+\.\d+x")


@pytest.mark.audisp
def test_bench_audisp_remote_completes() -> None:
    proc = run_bench("bench_audisp_remote.py", "--records", "30", "--rounds", "1", "--deadline", "240")
    assert_completed(proc, r"^auditrecv \+ spool \(synchronous=normal\) +median +\d+ rec/s +ratio +\d+\.\d+x")


def test_bench_sink_completes(opensearch_engine: SearchEngine) -> None:
    proc = run_bench(
        "bench_sink.py", "--url", opensearch_engine.url, "--docs", "50", "--rounds", "1", "--deadline", "240"
    )
    assert_completed(proc, r"^best: raw \d+ docs/s, BulkIndexer \d+ docs/s, ratio \d+\.\d+x")


def test_bench_e2e_completes(opensearch_engine: SearchEngine) -> None:
    proc = run_bench(
        "bench_e2e.py",
        *("--records", "60", "--batch", "20", "--spool-writers", "2", "--spool-records", "20", "--deadline", "240"),
        env={"AUDITRECV_ES_URL": opensearch_engine.url},
    )
    assert_completed(proc, r"^ratio pipeline / raw: \d+\.\d+x")
    assert "!!! counts differ" not in proc.stdout, proc.stdout


# --------------------------------------------------------------------------- the deadline itself


def test_bench_past_its_deadline_reports_what_it_measured_and_exits_3() -> None:
    """A workload that cannot finish in 3 s: the bench stops, names where it was and how far it got, exits 3."""
    proc = run_bench(
        "bench_audit_remote.py", "--records", "1000000", "--hosts", "1", "--mech", "dummy", "--deadline", "3"
    )
    assert proc.returncode == 3, proc.stderr[-3000:]
    assert "--- bench_audit_remote: measured before the deadline (0 result line(s)):" in proc.stdout
    # Where it stops depends on the machine's speed; what it says about it does not.
    assert re.search(
        r"bench_audit_remote: DEADLINE EXCEEDED: stopped after 3 s while (building the records|dummy +1 host\(s\) "
        r"baseline ack-only \(\d+/1000000 records acked, 0 connection resets\)); no complete result",
        proc.stderr,
    ), proc.stderr[-3000:]


HANGING_BODY = {
    # sync code that never returns
    "sync": "while True:\n    pass",
    # an event loop waiting for ever
    "async": "asyncio.run(asyncio.Event().wait())",
    # a coroutine that swallows cancellation: the second interrupt must still end it
    "stubborn": textwrap.dedent(
        """\
        async def stubborn():
            while True:
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    pass
        asyncio.run(stubborn())"""
    ),
}


@pytest.mark.parametrize("kind", sorted(HANGING_BODY))
def test_deadline_stops_every_kind_of_hang(tmp_path: Path, kind: str) -> None:
    script = tmp_path / "hang.py"
    script.write_text(
        "import asyncio, sys\n"
        f"sys.path.insert(0, {str(BENCH)!r})\n"
        "import benchkit\n"
        "def body(dl):\n"
        "    dl.measured('first result 42')\n"
        "    dl.phase('hanging on purpose')\n" + textwrap.indent(HANGING_BODY[kind], "    ") + "\n"
        "sys.exit(benchkit.run('hang', 1.0, body, grace=1.0))\n"
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=SAFETY_TIMEOUT)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-2:] == [
        "--- hang: measured before the deadline (1 result line(s)):",
        "    first result 42",
    ]
    assert "hang: DEADLINE EXCEEDED: stopped after 1 s while hanging on purpose;" in proc.stderr
