"""Records/s from one real /sbin/audisp-remote into auditrecv's receiver vs an ack-only listener.

audisp-remote is strictly stop-and-wait, so its rate is 1 / (round trip + the receiver's time to
answer). The baseline is a trivial asyncio listener that acks every frame without storing it;
auditrecv answers only after the durable spool commit. Both run in this process, one after the
other, with the same client settings and the same input. Target: ratio >= 0.9.

The rate is taken in the stream: (records - 1) over the time from the first record's arrival to the
last one's, as each receiver stamps them (the baseline in its read loop, auditrecv in the record's
``received_ns``), so neither the client's start and exit nor the wait for its exit count. (Waiting
with a timeout, as this bench did before, polls every 50 ms: the rates then came in steps of 50 ms
per run, ~42k, 30k, 23k, 18.7k rec/s for 5000 records.) The wall-clock rate is printed beside it.

    sudo .venv/bin/python bench/bench_audisp_remote.py [--records 20000] [--rounds 3] [--cpu N] [--per-thread]
        [--deadline 1800]

``--per-thread`` also prints, for each run, the CPU time and context switches per record of each of this
process's threads (the event loop's, the spool's writer and checkpointer, ...; from /proc, between the
client's start and its exit) and the garbage collections in that time: where the receiver's CPU goes
in situ, which a tight-loop micro-benchmark (bench_ack_path.py) does not show.

The "auditrecv service" line is the whole `auditrecv serve` (Service with the default config: its real
spool, no search engine configured, so nothing else competes for the CPU).

Needs root (audisp-remote runs in a private mount namespace; see tests/infra/audisp.py).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import benchkit  # noqa: E402

from auditrecv.config import AudispRemoteListener, Gss  # noqa: E402
from auditrecv.receive.listeners import start_audisp_remote_server  # noqa: E402
from auditrecv.spool import Source, Spool, SpoolRecord, SpoolState  # noqa: E402
from auditrecv.spool.record import RecordKind  # noqa: E402
from tests.e2e.harness import running_service, service_config  # noqa: E402
from tests.infra.audisp import AudispRemote  # noqa: E402
from tests.paths import LINUX_FIXTURES  # noqa: E402

HEADER = struct.Struct("<IBBIHI")


def make_lines(n: int) -> list[bytes]:
    """n distinct, realistic record lines (the fixture's, with fresh serial numbers)."""
    src = (LINUX_FIXTURES / "audisp-remote" / "captures" / "input-events.log").read_bytes().splitlines()
    src = [s for s in src if b"type=EOE" not in s]
    out = []
    for i in range(n):
        line = src[i % len(src)]
        out.append(line.replace(b":424", b":%d" % (100000 + i), 1))
    return out


class Arrivals:
    """Records counted as a receiver takes them, with the first's and the last's arrival (ns)."""

    def __init__(self) -> None:
        self.count = 0
        self.first = self.last = 0

    def take(self, received_ns: int) -> None:
        if not self.count:
            self.first = received_ns
        self.last = received_ns
        self.count += 1

    async def span(self) -> tuple[int, int]:
        return self.first, self.last


async def spool_span(spool: Spool, n: int) -> tuple[int, int]:
    """First and last arrival of the records a spool holds (read back, so after its ack journal's fold)."""
    rows = await spool.read(0, n)
    return rows[0][1].received_ns, rows[-1][1].received_ns


class MemorySpool:
    """Not durable: isolates the receiver's own cost from the spool's commit latency."""

    state: SpoolState = "ok"

    def __init__(self) -> None:
        self.arrivals = Arrivals()

    async def append(self, records: Sequence[SpoolRecord]) -> list[int]:
        return self.try_append_now(records, None)

    def try_append_now(self, records: Sequence[SpoolRecord], appender: object) -> list[int]:
        """The real spool's no-wait path (its ack journal), so the receiver takes its fast path too."""
        for rec in records:
            self.arrivals.take(rec.received_ns)
        return list(range(len(records)))

    def try_append_one(
        self, kind: RecordKind, payload: bytes, source: Source, received_ns: int, appender: object
    ) -> int:
        self.arrivals.take(received_ns)
        return 0

    async def wait_for_space(self, timeout: float | None = None) -> bool:
        return True


async def ack_only_listener() -> tuple[asyncio.Server, Arrivals]:
    """The baseline: parse headers, ack immediately, store nothing."""
    count = Arrivals()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                header = await reader.readexactly(16)
                _, _, _, typ, length, seq = HEADER.unpack(header)
                if length:
                    await reader.readexactly(length)
                if typ == 0:
                    count.take(time.time_ns())
                writer.write(HEADER.pack(0xFF0000FE, 0, 0, 0x40000000, 0, seq))
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # CancelledError: shutdown (deadline); end quietly instead of asyncio logging it
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, count


async def fsync_listener(directory: Path) -> tuple[asyncio.Server, Arrivals]:
    """The floor for synchronous = "full": ack each record once it and an fdatasync are on this disk
    (the least any durable receiver must do per stop-and-wait record), nothing else."""
    count = Arrivals()
    fd = os.open(directory / f"fsync-floor-{time.monotonic_ns()}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                header = await reader.readexactly(16)
                _, _, _, typ, length, seq = HEADER.unpack(header)
                body = await reader.readexactly(length) if length else b""
                if typ == 0:
                    count.take(time.time_ns())
                    os.write(fd, body)
                    os.fdatasync(fd)
                writer.write(HEADER.pack(0xFF0000FE, 0, 0, 0x40000000, 0, seq))
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    server.close_fd = fd  # type: ignore[attr-defined]
    return server, count


async def run_client(port: int, lines: list[bytes], workdir: Path, dl: benchkit.Deadline) -> float:
    """Feed every line, wait for audisp-remote to flush and exit; seconds elapsed."""
    client = AudispRemote("127.0.0.1", port, workdir, queue_depth=len(lines) + 10, max_time_per_record=30).start()
    assert client.proc is not None
    dl.kill_on_hard_exit(client.proc.pid)  # its own process group (process_group=0)
    try:
        t0 = time.perf_counter()

        def feed() -> None:
            try:
                client.send_lines(lines)
                client.close_stdin()
            except BrokenPipeError:
                pass  # the client was killed (deadline); run_client reports that

        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        # A blocking waitpid: Popen.wait with a timeout polls, up to 50 ms late (the deadline's hard exit
        # kills the client's process group, which ends this wait too).
        code = await asyncio.to_thread(client.proc.wait)
        elapsed = time.perf_counter() - t0
        feeder.join()
        if code != 0:
            raise RuntimeError(f"audisp-remote exited {code}: {client.syslog_lines()[-5:]}")
        return elapsed
    finally:
        client.close()
        dl.forget_process_group(client.proc.pid)


def thread_usage() -> dict[str, tuple[int, int, int]]:
    """This process's threads by name: (CPU ns, voluntary, involuntary context switches), from /proc.

    Threads are grouped by their Python name (``asyncio_0``-style worker names collapsed to their prefix),
    so the loop thread, the spool's writer and checkpointer and the bench's helpers add up separately.
    """
    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[str, tuple[int, int, int]] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                cpu_ns = int(f.read().split()[0])
            with open(f"/proc/self/task/{tid}/status") as f:
                fields = dict(line.split(":", 1) for line in f if "ctxt_switches" in line)
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended in between
        name = names.get(int(tid), "other")
        name = name.rstrip("0123456789").rstrip("_-") or name
        vol, invol = int(fields["voluntary_ctxt_switches"]), int(fields["nonvoluntary_ctxt_switches"])
        old = out.get(name, (0, 0, 0))
        out[name] = (old[0] + cpu_ns, old[1] + vol, old[2] + invol)
    return out


def usage_per_record(before: dict[str, tuple[int, int, int]], after: dict[str, tuple[int, int, int]], n: int) -> str:
    """Each thread's CPU (us) and context switches (voluntary + involuntary) per record between two readings.

    A thread that ended in between is missing from ``after`` and not counted (the spool's writer is read
    before the spool closes)."""
    parts = []
    for name in sorted(after, key=lambda k: -(after[k][0] - before.get(k, (0, 0, 0))[0])):
        cpu, vol, invol = (a - b for a, b in zip(after[name], before.get(name, (0, 0, 0)), strict=True))
        if cpu < 1000 * n // 100 and vol + invol < n // 100:
            continue  # under 0.01 us and 0.01 switches per record
        parts.append(f"{name} {cpu / 1000 / n:.2f} us {vol / n:.2f}+{invol / n:.2f} cs")
    return "; ".join(parts)


class AppendTimer:
    """CPU of each ``Spool.try_append_one`` call in situ (``--time-append``): ``time.thread_time_ns()`` read
    around it on the loop thread, less what a pair of those reads costs alone (measured once, the median
    of many pairs). In a tight loop the append runs with warm caches; between two round trips of the real
    client it does not, and its in-situ cost is 2-4x the tight loop's (docs/performance.md, ackcpu). The
    wrapper itself adds ~0.4 us per record to the loop thread: take rates from runs without it."""

    def __init__(self) -> None:
        clock = time.thread_time_ns
        pairs = []
        for _ in range(20_000):
            t0 = clock()
            pairs.append(clock() - t0)
        self.pair_ns = statistics.median(pairs)
        self.calls: list[int] = []

    def wrap(self, spool: Spool) -> None:
        real, clock, calls = spool.try_append_one, time.thread_time_ns, self.calls

        def timed(*args: object) -> int | None:
            t0 = clock()
            rid = real(*args)  # type: ignore[arg-type]
            calls.append(clock() - t0)
            return rid

        spool.try_append_one = timed  # type: ignore[method-assign]

    def report(self) -> str:
        """Median and mean CPU per call (us), the pair's cost subtracted; then forget the calls."""
        calls, self.calls[:] = list(self.calls), []
        if not calls:
            return "no calls"
        median = (statistics.median(calls) - self.pair_ns) / 1000
        mean = (statistics.fmean(calls) - self.pair_ns) / 1000
        return f"try_append_one in situ: median {median:.2f} us, mean {mean:.2f} us per call ({len(calls)} calls)"


@dataclass
class Target:
    """One receiver under test: its port, how many records it took, their first and last arrival."""

    port: int
    stored: Callable[[], int]
    span: Callable[[], Awaitable[tuple[int, int]]]
    stop: Callable[[], Awaitable[None]]


@dataclass
class Rate:
    in_stream: float  # (records - 1) / (last arrival - first arrival)
    wall: float  # records / (client start .. client exit)


async def measure(
    name: str,
    lines: list[bytes],
    start: Callable[[], Awaitable[Target]],
    workdir: Path,
    dl: benchkit.Deadline,
    per_thread: bool = False,
    timer: AppendTimer | None = None,
) -> Rate:
    target = await start()
    dl.phase(name, lambda: f"{target.stored()} of {len(lines)} records stored")
    try:
        gc_before = [g["collections"] for g in gc.get_stats()]
        before = thread_usage()
        elapsed = await run_client(target.port, lines, workdir, dl)
        after = thread_usage()
        gc_runs = [g["collections"] - b for g, b in zip(gc.get_stats(), gc_before, strict=True)]
        n = target.stored()
        if n < len(lines):
            raise RuntimeError(f"{name}: only {n} of {len(lines)} records arrived")
        first, last = await target.span()
    finally:
        await target.stop()
    rate = Rate((len(lines) - 1) / max((last - first) / 1e9, 1e-9), len(lines) / elapsed)
    dl.measured(
        f"{name:<44} {len(lines):>7} records  {(last - first) / 1e9:7.3f} s {rate.in_stream:9.0f} rec/s"
        f"   (wall {elapsed:6.3f} s {rate.wall:7.0f} rec/s)"
    )
    if per_thread:
        dl.measured(f"{'':<44} per record: {usage_per_record(before, after, len(lines))}")
        dl.measured(f"{'':<44} garbage collections (generations 0/1/2): {'/'.join(map(str, gc_runs))}")
    if timer is not None and timer.calls:
        dl.measured(f"{'':<44} {timer.report()}")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--commit-delay", type=float, default=None, help="spool.commit_delay (default: the config default)"
    )
    parser.add_argument(
        "--cpu",
        type=int,
        default=None,
        help="run the bench, its receivers and the client on this one CPU: each round trip is then the two sides'"
        " CPU time and two context switches, not the wake-up of another (possibly idle, virtual) CPU",
    )
    parser.add_argument("--dir", default="/var/tmp", help="where the spools and the fsync floor's file go")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated variants to run beside the baseline: floor, memory, service, full, normal (default: all)",
    )
    parser.add_argument(
        "--per-thread",
        action="store_true",
        help="also print each of this process's threads' CPU and context switches per record (client start to exit;"
        " the client's own process is not counted)",
    )
    parser.add_argument(
        "--time-append",
        action="store_true",
        help="also print the CPU of each Spool.try_append_one call on the loop thread, in situ (thread_time_ns"
        " around it, the pair's own cost subtracted; the wrapper slows the loop thread: not for rates)",
    )
    benchkit.add_deadline_argument(parser, 1800)
    args = parser.parse_args()
    if args.records < 2:
        parser.error("--records: at least 2 (the rate is taken between the first and the last record)")
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})  # before any thread or child: they inherit it
    sys.exit(benchkit.run("bench_audisp_remote", args.deadline, lambda dl: asyncio.run(body(args, dl))))


async def body(args: argparse.Namespace, dl: benchkit.Deadline) -> None:
    lines = make_lines(args.records)
    from auditrecv.config import Spool as SpoolSettings

    defaults = SpoolSettings()
    delay = defaults.commit_delay if args.commit_delay is None else args.commit_delay
    timer = AppendTimer() if args.time_append else None

    with (
        tempfile.TemporaryDirectory(prefix="bench-audisp-", dir=args.dir) as tmp,
        tempfile.TemporaryDirectory(prefix="bench-audisp-client-", dir="/var/tmp") as clients,
    ):
        base = Path(tmp)

        async def baseline() -> Target:
            server, count = await ack_only_listener()

            async def stop() -> None:
                server.close()
                await server.wait_closed()

            return Target(int(server.sockets[0].getsockname()[1]), lambda: count.count, count.span, stop)

        async def fsync_floor() -> Target:
            server, count = await fsync_listener(base)

            async def stop() -> None:
                server.close()
                await server.wait_closed()
                os.close(server.close_fd)  # type: ignore[attr-defined]

            return Target(int(server.sockets[0].getsockname()[1]), lambda: count.count, count.span, stop)

        async def auditrecv_receiver(sync: str) -> Target:
            spool = await Spool.open(
                base / f"spool-{sync}-{time.monotonic_ns()}.db", max_bytes=1024**3, commit_delay=delay, synchronous=sync
            )
            if timer is not None:
                timer.wrap(spool)
            server = await start_audisp_remote_server(
                AudispRemoteListener(host="127.0.0.1", port=0), Gss(), spool, name="bench"
            )

            async def stop() -> None:
                await server.close()
                await spool.close()

            return Target(server.port, spool.count, lambda: spool_span(spool, len(lines)), stop)

        async def whole_service() -> Target:
            table = service_config(base / f"service-{time.monotonic_ns()}")
            table["listeners"]["audit_remote"]["enabled"] = False
            table["http"]["enabled"] = False
            context = running_service(table)
            svc = await context.__aenter__()

            async def stop() -> None:
                await context.__aexit__(None, None, None)

            return Target(
                int(svc.servers["audisp_remote"].port),
                lambda: int(svc.spool.count()),
                lambda: spool_span(svc.spool, len(lines)),
                stop,
            )

        async def receiver_only() -> Target:
            spool = MemorySpool()
            server = await start_audisp_remote_server(
                AudispRemoteListener(host="127.0.0.1", port=0), Gss(), spool, name="bench"
            )
            return Target(server.port, lambda: spool.arrivals.count, spool.arrivals.span, server.close)

        print(
            f"one real audisp-remote, stop-and-wait, loopback; spool commit_delay={delay} s; "
            f"{args.rounds} interleaved rounds, median reported"
        )
        variants: list[tuple[str, Callable[[], Awaitable[Target]]]] = [
            ("ack-only listener (baseline)", baseline),
            ("write + fdatasync per record (floor)", fsync_floor),
            ("auditrecv receiver + in-memory spool", receiver_only),
            ("auditrecv service (default config)", whole_service),
            ("auditrecv + spool (synchronous=full)", lambda: auditrecv_receiver("full")),
            ("auditrecv + spool (synchronous=normal)", lambda: auditrecv_receiver("normal")),
        ]
        if args.only:
            keys = ("baseline", "floor", "memory", "service", "full", "normal")
            wanted = {"baseline", *args.only.split(",")}
            variants = [v for key, v in zip(keys, variants, strict=True) if key in wanted]
        rates: dict[str, list[Rate]] = {name: [] for name, _ in variants}
        for r in range(args.rounds):
            for i, (name, start) in enumerate(variants):
                workdir = Path(clients) / f"r{r}v{i}"
                rates[name].append(await measure(name, lines, start, workdir, dl, args.per_thread, timer))
        med = {name: statistics.median(r.in_stream for r in values) for name, values in rates.items()}
        wall = {name: statistics.median(r.wall for r in values) for name, values in rates.items()}
        base_rate, base_wall = med["ack-only listener (baseline)"], wall["ack-only listener (baseline)"]
        print()
        for name, rate in med.items():
            dl.measured(
                f"{name:<44} median {rate:9.0f} rec/s   ratio {rate / base_rate:5.2f}x"
                f"   (wall {wall[name]:7.0f} rec/s, {wall[name] / base_wall:5.2f}x)"
            )
        # Each round's pair (receiver, baseline) measured next to each other: their spread shows the noise.
        for name in ("auditrecv receiver + in-memory spool", "auditrecv + spool (synchronous=normal)"):
            if name not in rates:
                continue
            pairs = [
                f"{got.in_stream / ref.in_stream:.2f}"
                for got, ref in zip(rates[name], rates["ack-only listener (baseline)"], strict=True)
            ]
            dl.measured(f"{name:<44} per round ratio {' '.join(pairs)}")
        floor = med.get("write + fdatasync per record (floor)")
        full = med.get("auditrecv + spool (synchronous=full)")
        if floor and full:
            dl.measured(f"{'synchronous=full / fsync floor':<44} ratio {full / floor:5.2f}x")
        print("targets: synchronous=normal / baseline >= 0.9x; synchronous=full / fsync floor >= 0.8x (within 1.25x)")


if __name__ == "__main__":
    main()
