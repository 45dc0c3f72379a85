"""Records/s from one real /sbin/audisp-remote into auditrecv's receiver vs an ack-only listener.

audisp-remote is strictly stop-and-wait, so its rate is 1 / (round trip + the receiver's time to
answer). The baseline is a trivial asyncio listener that acks every frame without storing it;
auditrecv answers only after the durable spool commit. Both run in this process, one after the
other, with the same client settings and the same input. Target: ratio >= 0.9.

    sudo .venv/bin/python bench/bench_audisp_remote.py [--records 20000] [--rounds 3] [--deadline 1800]

The "auditrecv service" line is the whole `auditrecv serve` (Service with the default config: its real
spool, no search engine configured, so nothing else competes for the CPU).

Needs root (audisp-remote runs in a private mount namespace; see tests/infra/audisp.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import benchkit  # noqa: E402

from auditrecv.config import AudispRemoteListener, Gss  # noqa: E402
from auditrecv.receive.listeners import start_audisp_remote_server  # noqa: E402
from auditrecv.spool import Spool, SpoolRecord, SpoolState  # noqa: E402
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


class MemorySpool:
    """Not durable: isolates the receiver's own cost from the spool's commit latency."""

    state: SpoolState = "ok"

    def __init__(self) -> None:
        self.count = 0

    async def append(self, records: Sequence[SpoolRecord]) -> list[int]:
        self.count += len(records)
        return list(range(len(records)))

    def try_append_now(self, records: Sequence[SpoolRecord], appender: object) -> list[int]:
        """The real spool's no-wait path (its ack journal), so the receiver takes its fast path too."""
        self.count += len(records)
        return list(range(len(records)))

    async def wait_for_space(self, timeout: float | None = None) -> bool:
        return True


async def ack_only_listener() -> tuple[asyncio.Server, list[int]]:
    """The baseline: parse headers, ack immediately, store nothing."""
    count = [0]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                header = await reader.readexactly(16)
                _, _, _, typ, length, seq = HEADER.unpack(header)
                if length:
                    await reader.readexactly(length)
                if typ == 0:
                    count[0] += 1
                writer.write(HEADER.pack(0xFF0000FE, 0, 0, 0x40000000, 0, seq))
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # CancelledError: shutdown (deadline); end quietly instead of asyncio logging it
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, count


async def fsync_listener(directory: Path) -> tuple[asyncio.Server, list[int]]:
    """The floor for synchronous = "full": ack each record once it and an fdatasync are on this disk
    (the least any durable receiver must do per stop-and-wait record), nothing else."""
    count = [0]
    fd = os.open(directory / f"fsync-floor-{time.monotonic_ns()}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                header = await reader.readexactly(16)
                _, _, _, typ, length, seq = HEADER.unpack(header)
                body = await reader.readexactly(length) if length else b""
                if typ == 0:
                    os.write(fd, body)
                    os.fdatasync(fd)
                    count[0] += 1
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
        code = await asyncio.to_thread(client.wait, max(1.0, dl.remaining() + 5))
        elapsed = time.perf_counter() - t0
        feeder.join()
        if code != 0:
            raise RuntimeError(f"audisp-remote exited {code}: {client.syslog_lines()[-5:]}")
        return elapsed
    finally:
        client.close()
        dl.forget_process_group(client.proc.pid)


async def measure(
    name: str,
    lines: list[bytes],
    start: Callable[[], Awaitable[tuple[int, Callable[[], int], Callable[[], Awaitable[None]]]]],
    workdir: Path,
    dl: benchkit.Deadline,
) -> float:
    port, stored, stop = await start()
    dl.phase(name, lambda: f"{stored()} of {len(lines)} records stored")
    try:
        elapsed = await run_client(port, lines, workdir, dl)
    finally:
        await stop()
    n = stored()
    if n < len(lines):
        raise RuntimeError(f"{name}: only {n} of {len(lines)} records arrived")
    rate = len(lines) / elapsed
    dl.measured(f"{name:<44} {len(lines):>7} records  {elapsed:7.2f} s  {rate:9.0f} rec/s")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--commit-delay", type=float, default=None, help="spool.commit_delay (default: the config default)"
    )
    benchkit.add_deadline_argument(parser, 1800)
    args = parser.parse_args()
    sys.exit(benchkit.run("bench_audisp_remote", args.deadline, lambda dl: asyncio.run(body(args, dl))))


async def body(args: argparse.Namespace, dl: benchkit.Deadline) -> None:
    lines = make_lines(args.records)
    from auditrecv.config import Spool as SpoolSettings

    defaults = SpoolSettings()
    delay = defaults.commit_delay if args.commit_delay is None else args.commit_delay

    with tempfile.TemporaryDirectory(prefix="bench-audisp-", dir="/var/tmp") as tmp:
        base = Path(tmp)

        async def baseline() -> tuple[int, Callable[[], int], Callable[[], Awaitable[None]]]:
            server, count = await ack_only_listener()

            async def stop() -> None:
                server.close()
                await server.wait_closed()

            return int(server.sockets[0].getsockname()[1]), lambda: count[0], stop

        async def fsync_floor() -> tuple[int, Callable[[], int], Callable[[], Awaitable[None]]]:
            server, count = await fsync_listener(base)

            async def stop() -> None:
                server.close()
                await server.wait_closed()
                os.close(server.close_fd)  # type: ignore[attr-defined]

            return int(server.sockets[0].getsockname()[1]), lambda: count[0], stop

        async def auditrecv_receiver(
            sync: str,
        ) -> tuple[int, Callable[[], int], Callable[[], Awaitable[None]]]:
            spool = await Spool.open(
                base / f"spool-{sync}-{time.monotonic_ns()}.db", max_bytes=1024**3, commit_delay=delay, synchronous=sync
            )
            server = await start_audisp_remote_server(
                AudispRemoteListener(host="127.0.0.1", port=0), Gss(), spool, name="bench"
            )

            async def stop() -> None:
                await server.close()
                await spool.close()

            return server.port, lambda: spool.count(), stop

        async def whole_service() -> tuple[int, Callable[[], int], Callable[[], Awaitable[None]]]:
            table = service_config(base / f"service-{time.monotonic_ns()}")
            table["listeners"]["audit_remote"]["enabled"] = False
            table["http"]["enabled"] = False
            context = running_service(table)
            svc = await context.__aenter__()

            async def stop() -> None:
                await context.__aexit__(None, None, None)

            return int(svc.servers["audisp_remote"].port), lambda: int(svc.spool.count()), stop

        async def receiver_only() -> tuple[int, Callable[[], int], Callable[[], Awaitable[None]]]:
            spool = MemorySpool()
            server = await start_audisp_remote_server(
                AudispRemoteListener(host="127.0.0.1", port=0), Gss(), spool, name="bench"
            )
            return server.port, lambda: spool.count, server.close

        print(
            f"one real audisp-remote, stop-and-wait, loopback; spool commit_delay={delay} s; "
            f"{args.rounds} interleaved rounds, median reported"
        )
        variants: list[
            tuple[str, Callable[[], Awaitable[tuple[int, Callable[[], int], Callable[[], Awaitable[None]]]]]]
        ] = [
            ("ack-only listener (baseline)", baseline),
            ("write + fdatasync per record (floor)", fsync_floor),
            ("auditrecv receiver + in-memory spool", receiver_only),
            ("auditrecv service (default config)", whole_service),
            ("auditrecv + spool (synchronous=full)", lambda: auditrecv_receiver("full")),
            ("auditrecv + spool (synchronous=normal)", lambda: auditrecv_receiver("normal")),
        ]
        rates: dict[str, list[float]] = {name: [] for name, _ in variants}
        for r in range(args.rounds):
            for i, (name, start) in enumerate(variants):
                rates[name].append(await measure(name, lines, start, base / f"r{r}v{i}", dl))
        med = {name: statistics.median(values) for name, values in rates.items()}
        base_rate = med["ack-only listener (baseline)"]
        print()
        for name, rate in med.items():
            dl.measured(f"{name:<44} median {rate:9.0f} rec/s   ratio {rate / base_rate:5.2f}x")
        # The baseline's rate is bimodal on a shared 2-core machine (its task hop lands well or badly):
        # the best rounds compare the two at their best.
        best = {name: max(values) for name, values in rates.items()}
        best_base = best["ack-only listener (baseline)"]
        for name in ("auditrecv receiver + in-memory spool", "auditrecv + spool (synchronous=normal)"):
            dl.measured(f"{name:<44} best   {best[name]:9.0f} rec/s   ratio {best[name] / best_base:5.2f}x")
        floor = med["write + fdatasync per record (floor)"]
        full = med["auditrecv + spool (synchronous=full)"]
        dl.measured(f"{'synchronous=full / fsync floor':<44} ratio {full / floor:5.2f}x")
        print("targets: synchronous=normal / baseline >= 0.9x; synchronous=full / fsync floor >= 0.8x (within 1.25x)")


if __name__ == "__main__":
    main()
