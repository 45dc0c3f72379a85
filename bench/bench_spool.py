"""Spool commit throughput and latency against raw write+fsync on the same filesystem, same run.

    .venv/bin/python bench/bench_spool.py [--dir DIR] [--records 2000] [--commit-delay 0.002] [--deadline 900]

Baselines (measured first, in DIR):
  fsync/record   os.write + os.fsync of each 1 KiB record: what "ack after durable" costs naively.
  fsync/100      os.write of 100 records, then one os.fsync: the ideal a group commit can approach.
Spool runs: 1 writer appending one record at a time (stop-and-wait, like audisp-remote), and 100
concurrent writers (many connections). Latency is per append, from call to return (what a receiver
waits before it may ack). Ratios > 1 mean "more than the baseline" (throughput: better; latency: worse).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchkit

from auditrecv.spool import Source, Spool, SpoolRecord

RECORD = bytes(range(256)) * 4  # 1 KiB
SOURCE = Source(transport="audit_remote", peer="192.0.2.7", peer_port=40000, mech="krb5", authenticated=True)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Result:
    def __init__(self, name: str, records: int, seconds: float, latencies: list[float], commits: int) -> None:
        self.name = name
        self.rate = records / seconds
        self.p50 = quantile(latencies, 0.50)
        self.p99 = quantile(latencies, 0.99)
        self.commits = commits
        self.per_commit = records / commits if commits else 0.0


def baseline(directory: Path, records: int, group: int) -> Result:
    records = max(records, group)  # at least one fsync, else there is nothing to measure
    path = directory / f"baseline-{group}.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
    latencies: list[float] = []
    try:
        start = time.perf_counter()
        for _ in range(records // group):
            t = time.perf_counter()
            for _ in range(group):
                os.write(fd, RECORD)
            os.fsync(fd)
            latencies.extend([time.perf_counter() - t] * group)
        seconds = time.perf_counter() - start
    finally:
        os.close(fd)
        path.unlink()
    return Result(f"raw write+fsync, {group}/fsync", records, seconds, latencies, records // group)


async def spool_run(directory: Path, writers: int, records: int, delay: float, sync: str) -> Result:
    path = directory / f"spool-{writers}.db"
    latencies: list[float] = []
    per_writer = records // writers
    async with await Spool.open(path, max_bytes=1 << 30, commit_delay=delay, synchronous=sync) as spool:

        async def writer() -> None:
            for i in range(per_writer):
                rec = SpoolRecord("bsm", RECORD, SOURCE, i)
                t = time.perf_counter()
                await spool.append([rec])
                latencies.append(time.perf_counter() - t)

        start = time.perf_counter()
        await asyncio.gather(*(writer() for _ in range(writers)))
        seconds = time.perf_counter() - start
        commits = spool.metrics.commits
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    total = per_writer * writers
    name = f"spool, {writers} writer{'s' if writers > 1 else ''}, delay {delay * 1e3:g} ms"
    return Result(name, total, seconds, latencies, commits)


def show(dl: benchkit.Deadline, result: Result, base: Result) -> None:
    dl.measured(
        f"{result.name:<34} {result.rate:>10.0f} rec/s ({result.rate / base.rate:6.2f}x)"
        f"  p50 {result.p50 * 1e3:7.3f} ms ({result.p50 / base.p50:6.2f}x)"
        f"  p99 {result.p99 * 1e3:7.3f} ms ({result.p99 / base.p99:6.2f}x)"
        f"  commits {result.commits:>6}  rec/commit {result.per_commit:7.1f}"
    )


def median_of(runs: list[Result]) -> Result:
    """Per-field median over repeated runs: the machine is shared, single runs are noisy."""
    out = runs[0]
    for attr in ("rate", "p50", "p99", "commits", "per_commit"):
        setattr(out, attr, statistics.median(getattr(r, attr) for r in runs))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", help="directory on the filesystem to measure (default: a temp dir in /tmp)")
    parser.add_argument("--records", type=int, default=2000, help="records per run (default 2000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case, interleaved; medians shown")
    parser.add_argument("--commit-delay", type=float, default=0.002)
    parser.add_argument("--synchronous", choices=["full", "normal"], default="full")
    benchkit.add_deadline_argument(parser, 900)
    args = parser.parse_args()
    sys.exit(benchkit.run("bench_spool", args.deadline, lambda dl: body(args, dl)))


def body(args: argparse.Namespace, dl: benchkit.Deadline) -> None:
    n, delay, sync = args.records, args.commit_delay, args.synchronous
    cases = {
        "base1": lambda d: baseline(d, n, 1),
        "base100": lambda d: baseline(d, n, 100),
        "one": lambda d: asyncio.run(spool_run(d, 1, n, delay, sync)),
        "one_nodelay": lambda d: asyncio.run(spool_run(d, 1, n, 0.0, sync)),
        "many": lambda d: asyncio.run(spool_run(d, 100, n, delay, sync)),
        "many_nodelay": lambda d: asyncio.run(spool_run(d, 100, n, 0.0, sync)),
    }
    runs: dict[str, list[Result]] = {name: [] for name in cases}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for i in range(args.repeat):  # interleaved, so load changes hit every case alike
            for name, case in cases.items():
                dl.phase(f"run {i + 1}/{args.repeat} of case {name}")
                result = case(Path(tmp))
                runs[name].append(result)
                dl.measured(
                    f"run {i + 1}: {result.name:<34} {result.rate:>10.0f} rec/s  p50 {result.p50 * 1e3:7.3f} ms"
                    f"  p99 {result.p99 * 1e3:7.3f} ms"
                )
    r = {name: median_of(results) for name, results in runs.items()}
    dl.measured(f"1 KiB records, {n} per run, median of {args.repeat}, synchronous={sync}, in {args.dir or '/tmp'}")
    dl.measured("ratios against raw write+fsync per record:")
    for name in ("base1", "base100", "one", "one_nodelay", "many", "many_nodelay"):
        show(dl, r[name], r["base1"])
    dl.measured("ratios against raw write of 100 records + one fsync (ideal group commit):")
    for name in ("one", "one_nodelay", "many", "many_nodelay"):
        show(dl, r[name], r["base100"])


if __name__ == "__main__":
    main()
