"""What one receiver holds: connections, records/s and memory with many illumos hosts and several real
audisp-remote processes at once (figures for docs/scaling.md).

    sudo .venv/bin/python bench/bench_scale.py [--idle 5000] [--hosts 100,500] [--records-per-host 1000]
                                               [--audisp 8] [--lines-per-audisp 2000] [--engine fake|none|URL]
                                               [--deadline 600]

Steps, each against a fresh `auditrecv serve` process (real spool, synchronous = full):

  idle   --idle emulated illumos hosts connect, complete the handshake and stay idle (as auditd does
         between records): receiver RSS before and after, per connection.
  load   for each count in --hosts: that many emulated illumos hosts (auditrecv.testclient.illumos, dummy
         mech, window 100) each send --records-per-host records as fast as acked, while --audisp real
         /sbin/audisp-remote processes each send --lines-per-audisp lines. Aggregate records/s (first record
         to last ack), the receiver's CPU use and peak RSS, ack latency of the illumos hosts.

The emulated hosts share this one Python process (and the machine's cores with the receiver, the engine
and audisp-remote), so the rates are a floor for what the receiver takes, not its ceiling. --engine fake
(default) runs the pipeline against tests/sink/fake_engine.py in a child process; none = ack path only.
Every step is bounded; at --deadline the bench prints what it has and exits 1. Needs root for audisp-remote.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for path in (REPO, REPO / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from bench_hostile import FakeEngineProcess, audisp_factory  # noqa: E402

from auditrecv.testclient.illumos import IllumosClient, _percentile  # noqa: E402
from tests.chaos.support import Case, LinuxHost, Receiver, bsm_records, chaos_table, linux_lines  # noqa: E402
from tests.e2e.harness import to_toml  # noqa: E402


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # USER_HZ is 100 on Linux


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def established(port: int) -> int:
    """ESTABLISHED IPv4 connections whose local port is `port` (the receiver's side)."""
    want = f":{port:04X}"
    with open("/proc/net/tcp") as f:
        return sum(1 for line in f.readlines()[1:] if line.split()[1].endswith(want) and line.split()[3] == "01")


def new_receiver(workdir: Path, engine_url: str) -> Receiver:
    case = Case("scale")
    table = chaos_table(workdir, engine_url, case, listeners={"audit_remote": {"max_connections": 20000}})
    rx = Receiver(table, workdir / "rx")
    if not engine_url:
        rx.table["search"]["urls"] = []
        rx.config_path.write_text(to_toml(rx.table))
    return rx


async def idle_step(n: int, engine_url: str, workdir: Path) -> str:
    rx = new_receiver(workdir, engine_url)
    clients: list[IllumosClient] = []
    try:
        await asyncio.to_thread(rx.start)
        assert rx.proc is not None
        before = rss_kib(rx.proc.pid)
        sem = asyncio.Semaphore(200)  # connect in waves: the listen backlog is finite

        async def one() -> None:
            client = IllumosClient("127.0.0.1", rx.audit_remote_port, mech="dummy", timeout=30.0)
            async with sem:
                await client.connect()
            clients.append(client)

        await asyncio.gather(*(one() for _ in range(n)))
        held = established(rx.audit_remote_port)
        after = rss_kib(rx.proc.pid)
        return (
            f"idle: {held} illumos connections held (handshake done, idle); receiver RSS {before // 1024} MiB -> "
            f"{after // 1024} MiB, {(after - before) / max(1, held):.1f} KiB per connection"
        )
    finally:
        for client in clients:
            await client.close()
        await asyncio.to_thread(rx.stop)


async def load_step(hosts: int, args: argparse.Namespace, engine_url: str, workdir: Path) -> str:
    rx = new_receiver(workdir, engine_url)
    case = Case("scale")
    records = [bsm_records(case, f"h{k}", args.records_per_host) for k in range(hosts)]
    factory = audisp_factory(workdir)
    linux = [
        LinuxHost(
            f"l{k}",
            factory,
            rx.audisp_remote_port,
            linux_lines(case, f"l{k}", max(1, args.lines_per_audisp // 4))[0],
        )
        for k in range(args.audisp)
    ]
    clients = [IllumosClient("127.0.0.1", rx.audit_remote_port, mech="dummy", timeout=30.0) for _ in range(hosts)]
    peak_rss = 0
    sampling = threading.Event()

    def sample(pid: int) -> None:
        nonlocal peak_rss
        while not sampling.wait(0.2):
            with contextlib.suppress(OSError):
                peak_rss = max(peak_rss, rss_kib(pid))

    try:
        await asyncio.to_thread(rx.start)
        assert rx.proc is not None
        pid = rx.proc.pid
        sampler = threading.Thread(target=sample, args=(pid,), daemon=True)
        sampler.start()
        sem = asyncio.Semaphore(200)

        async def connect(client: IllumosClient) -> None:
            async with sem:
                await client.connect()

        await asyncio.gather(*(connect(c) for c in clients))
        for host in linux:
            host.start()
        cpu0, t0 = cpu_seconds(pid), time.perf_counter()

        async def illumos_host(client: IllumosClient, recs: list[bytes]) -> None:
            await client.send_records(recs, wait_when_full=True)
            if not await client.wait_all_acked(args.step_timeout):
                raise RuntimeError(f"illumos host: {len(client.transq)} records never acked")

        async def timed(coro: Any) -> float:
            await coro
            return time.perf_counter() - t0

        results = await asyncio.gather(
            timed(asyncio.gather(*(illumos_host(c, r) for c, r in zip(clients, records, strict=True)))),
            timed(asyncio.gather(*(h.run(args.step_timeout) for h in linux))),
            return_exceptions=True,
        )
        wall = time.perf_counter() - t0
        cpu = cpu_seconds(pid) - cpu0
        sampling.set()
        sampler.join(2)
        problems = [str(r)[:160] for r in results if isinstance(r, BaseException)]
        illumos_total = sum(len(r) for r in records)
        linux_total = sum(len(h.lines) for h in linux)
        illumos_s, linux_s = (r if isinstance(r, float) else float("nan") for r in results)
        lat = [x for c in clients for x in c.stats.ack_latencies]
        metrics = rx.metrics()
        per_commit = metrics.get("auditrecv_spool_records_per_commit", 0)
        commit_p99_ms = 1000 * metrics.get("auditrecv_spool_ack_seconds_p99", 0)
        return (
            f"load: {hosts} illumos hosts x {args.records_per_host} records + {args.audisp} audisp-remote x "
            f"{linux_total // max(1, args.audisp)} lines: {(illumos_total + linux_total) / wall:.0f} records/s "
            f"overall ({illumos_total / illumos_s:.0f}/s illumos in {illumos_s:.1f} s, "
            f"{linux_total / linux_s:.0f}/s audisp-remote in {linux_s:.1f} s); receiver CPU "
            f"{100 * cpu / wall:.0f}% of one core, peak RSS {peak_rss // 1024} MiB; illumos ack latency p50 "
            f"{_percentile(lat, 0.5) * 1000:.1f} ms p99 {_percentile(lat, 0.99) * 1000:.1f} ms (mean "
            f"{statistics.fmean(lat) * 1000 if lat else float('nan'):.1f}); spool {per_commit:.0f} "
            f"records/commit, append-to-durable p99 {commit_p99_ms:.1f} ms"
            + (f"; PROBLEMS: {problems}" if problems else "")
        )
    finally:
        sampling.set()
        for client in clients:
            await client.close()
        for host in linux:
            host.client.close()
        await asyncio.to_thread(rx.stop)


async def main_async(args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as stack:
        engine_url = ""
        if args.engine == "fake":
            engine_url = stack.enter_context(FakeEngineProcess()).url
        elif args.engine != "none":
            engine_url = args.engine
        base = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-scale-")))
        print(f"engine: {args.engine}; {socket.gethostname()}; {len(__import__('os').sched_getaffinity(0))} CPUs")
        steps: list[tuple[str, Any]] = []
        if args.idle:
            steps.append(("idle", lambda d: idle_step(args.idle, engine_url, d)))
        for hosts in (int(h) for h in args.hosts.split(",") if h):
            steps.append((f"load {hosts}", lambda d, h=hosts: load_step(h, args, engine_url, d)))
        deadline = time.monotonic() + args.deadline
        code = 0
        for i, (name, step) in enumerate(steps):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                print(f"{name}: not run (--deadline reached)")
                code = 1
                continue
            try:
                async with asyncio.timeout(remaining):
                    print(await step(base / f"step{i}"), flush=True)
            except TimeoutError:
                print(f"{name}: cut off (--deadline reached)")
                code = 1
        return code


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--idle", type=int, default=5000, help="idle illumos connections to hold (0: skip)")
    ap.add_argument("--hosts", default="100,500", help="comma list of illumos host counts for the load steps")
    ap.add_argument("--records-per-host", type=int, default=1000)
    ap.add_argument("--audisp", type=int, default=8, help="real audisp-remote processes in each load step")
    ap.add_argument("--lines-per-audisp", type=int, default=2000)
    ap.add_argument("--engine", default="fake", help="fake (default), none, or an engine URL")
    ap.add_argument("--step-timeout", type=float, default=240.0)
    ap.add_argument("--deadline", type=float, default=600.0, help="bound on the whole bench, seconds")
    return asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
