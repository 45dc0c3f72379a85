"""Good senders' rate alone and beside each hostile client, in the same run (issue 14: within 2x).

    sudo .venv/bin/python bench/bench_hostile.py [--records 60000] [--lines 3000] [--engine fake|none|URL]
                                                 [--repeat 2] [--only garbage,silent] [--deadline 900]

Per phase, a fresh `auditrecv serve` process (its real spool, both listeners) takes two good senders at
once: one emulated illumos host (auditrecv.testclient.illumos, window 100, as fast as acked) and one real
/sbin/audisp-remote (stop-and-wait). Their rates (records/s from the first record to the last ack, or to
audisp-remote's exit) beside a hostile client are compared with an "alone" phase run just before it (the
machine's speed drifts); a ratio under 0.5 misses the target. The hostile clients come from
tests/chaos/hostile.py, looped until the good senders are done; measuring starts once each is going.
They run in this process, on the same cores as the receiver, so a hostile client's own CPU use slows
everyone here where on a network it would not (audisp-remote, stop-and-wait, feels it most):

  garbage          random bytes, from the first byte and after a valid handshake/header, reconnecting
  oversized        frames announcing more than any limit (4 GiB, 4 MiB + 1, 64 KiB audisp frames)
  never-reads-acks audit_remote records pushed as fast as taken, acks never read
  slowloris        40 connections per protocol dribbling a frame one byte a second
  silent           --silent connections per listener from one peer, saying nothing (default 1000: the
                   default max_connections, so without a per-peer cap the good senders find no slot)
  huge-records     two ~4 MiB BSM records of one-character text tokens (800 000 tokens each)

--engine fake (default) runs the receiver's pipeline against tests/sink/fake_engine.py in a child process,
so decoding and mapping compete for the CPU as they do in production, without a JVM; `none` measures the
ack path alone; a URL uses that engine. Every phase is bounded; at --deadline the bench prints what it has
and exits 1. Needs root (audisp-remote runs in a private mount namespace, tests/infra/audisp.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from auditrecv.testclient.illumos import IllumosClient  # noqa: E402
from tests import bsm_builders  # noqa: E402
from tests.chaos import hostile  # noqa: E402
from tests.chaos.support import (  # noqa: E402
    EVENT_SECONDS,
    Case,
    LinuxHost,
    Receiver,
    bsm_records,
    chaos_table,
    linux_lines,
)
from tests.e2e.harness import to_toml  # noqa: E402
from tests.infra.audisp import AudispRemote  # noqa: E402

TARGET_RATIO = 0.5  # "within 2x of their rate alone"


# -- an engine for the pipeline -------------------------------------------------------------------------------------


def _serve_fake_engine(port_out: Any, stop: Any) -> None:
    from tests.sink.fake_engine import FakeEngine

    async def main() -> None:
        engine = await FakeEngine().start()
        port_out.put(engine.url)
        while not stop.is_set():
            await asyncio.sleep(0.2)
        await engine.stop()

    asyncio.run(main())


class FakeEngineProcess:
    """tests/sink/fake_engine.py in a child process, so its work does not share this process's CPU."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._queue = ctx.Queue()
        self._stop = ctx.Event()
        self._proc = ctx.Process(target=_serve_fake_engine, args=(self._queue, self._stop), daemon=True)
        self.url = ""

    def __enter__(self) -> FakeEngineProcess:
        self._proc.start()
        self.url = str(self._queue.get(timeout=60))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)


# -- hostile loops (each runs in a thread until `stop` is set) -------------------------------------------------------


def _until(stop: threading.Event, ready: threading.Event, action: Callable[[int], object]) -> None:
    i = 0
    while not stop.is_set():
        with contextlib.suppress(OSError, ConnectionError):
            action(i)
        ready.set()
        i += 1


def garbage_loop(ports: dict[hostile.Protocol, int], stop: threading.Event, ready: threading.Event) -> None:
    _until(stop, ready, lambda i: hostile.garbage(ports, rounds=1, seed=i))


def oversized_loop(ports: dict[hostile.Protocol, int], stop: threading.Event, ready: threading.Event) -> None:
    _until(stop, ready, lambda i: hostile.oversized(ports, rounds=2))


def never_reads_acks_loop(ports: dict[hostile.Protocol, int], stop: threading.Event, ready: threading.Event) -> None:
    record = bsm_builders.record(
        bsm_builders.header32(6152, EVENT_SECONDS, 0), bsm_builders.text("never-read"), trailer=True
    )
    burst = hostile.record_frame(9, record) * 512
    with contextlib.closing(hostile.connect_from(ports["audit_remote"], rcvbuf=4096)) as sock:
        hostile.dummy_handshake(sock)
        sock.setblocking(False)
        ready.set()
        offset = 0  # into the burst: a partial send must go on where it stopped, or frames break
        while not stop.is_set():
            try:
                offset = (offset + sock.send(burst[offset:])) % len(burst)
            except BlockingIOError:
                time.sleep(0.01)
            except OSError:
                return


def slowloris_loop(
    ports: dict[hostile.Protocol, int], stop: threading.Event, ready: threading.Event, per_protocol: int = 40
) -> None:
    frames = {
        "audit_remote": hostile.record_frame(1, b"\x14" + b"s" * 400),
        "audisp_remote": hostile.line_frame(2, b"type=USER_END msg=audit(1700000000.000:1): " + b"s" * 400),
    }
    conns: list[tuple[str, socket.socket, int]] = []
    while not stop.is_set():
        while len(conns) < per_protocol * len(ports) and not stop.is_set():
            proto = "audit_remote" if len(conns) % 2 == 0 else "audisp_remote"
            try:
                sock = hostile.connect_from(ports[proto], timeout=5.0)  # type: ignore[index]
                if proto == "audit_remote":
                    hostile.dummy_handshake(sock)
            except OSError:
                break
            conns.append((proto, sock, 0))
        ready.set()
        alive = []
        for proto, sock, sent in conns:
            try:
                sock.sendall(frames[proto][sent : sent + 1])
                alive.append((proto, sock, (sent + 1) % (len(frames[proto]) - 1)))
            except OSError:
                sock.close()
        conns = alive
        stop.wait(1.0)
    for _, sock, _ in conns:
        sock.close()


def silent_loop(ports: dict[hostile.Protocol, int], stop: threading.Event, ready: threading.Event, count: int) -> None:
    opened = {proto: threading.Event() for proto in ports}
    threads = [
        threading.Thread(
            target=hostile.silent, args=(proto, port, count, lambda: not stop.is_set(), 600.0, opened[proto])
        )
        for proto, port in ports.items()
    ]
    for t in threads:
        t.start()
    for event in opened.values():
        event.wait(120)
    ready.set()
    for t in threads:
        t.join()


def huge_records_loop(
    ports: dict[hostile.Protocol, int], stop: threading.Event, ready: threading.Event, limit: int = 2
) -> None:
    """At most `limit` records: each costs the receiver ~400 MiB while decoded (measured on this branch,
    8.8 GiB peak when they came one after another), and this machine is shared."""
    one_char_texts = b"\x28\x00\x02a\x00" * ((4 * 1024 * 1024 - 128 * 1024) // 5)
    record = bsm_builders.record(
        bsm_builders.header32(6152, EVENT_SECONDS, 0), bsm_builders.text("huge"), one_char_texts, trailer=True
    )

    def one(i: int) -> None:
        with contextlib.closing(hostile.connect_from(ports["audit_remote"], timeout=60.0)) as sock:
            hostile.dummy_handshake(sock)
            sock.sendall(hostile.record_frame(i + 1, record))
            hostile.read_frame(sock)  # its ack: one huge record at a time

    for i in range(limit):
        if stop.is_set():
            break
        with contextlib.suppress(OSError, ConnectionError):
            one(i)
        ready.set()
    ready.set()


HOSTILES: dict[str, Callable[..., None]] = {
    "garbage": garbage_loop,
    "oversized": oversized_loop,
    "never-reads-acks": never_reads_acks_loop,
    "slowloris": slowloris_loop,
    "silent": silent_loop,
    "huge-records": huge_records_loop,
}


# -- one phase ---------------------------------------------------------------------------------------------------------


@dataclass
class PhaseResult:
    name: str
    illumos_rate: float = 0.0
    linux_rate: float = 0.0
    peak_rss_mib: float = 0.0
    note: str = ""


def audisp_factory(workdir: Path) -> Callable[..., AudispRemote]:
    """Like the tests' fixture: one workdir (config, syslog socket, queue) per audisp-remote made."""
    made = 0

    def factory(host: str, port: int, **conf: Any) -> AudispRemote:
        nonlocal made
        made += 1
        return AudispRemote(host, port, workdir / f"audisp-{made}", **conf)

    return factory


async def run_phase(name: str, args: argparse.Namespace, engine_url: str, workdir: Path) -> PhaseResult:
    result = PhaseResult(name)
    case = Case("bench")
    # a 256 MiB spool bounds the disk a flood can take on this shared machine
    rx = Receiver(chaos_table(workdir, engine_url, case, spool={"max_bytes": "256MiB"}), workdir / "rx")
    if not engine_url:
        rx.table["search"]["urls"] = []
        rx.config_path.write_text(to_toml(rx.table))
    ports: dict[hostile.Protocol, int] = {"audit_remote": rx.audit_remote_port, "audisp_remote": rx.audisp_remote_port}
    # the emulator's own event-driven sending (waits on acks, no polling): the steadiest rate to compare
    illumos = IllumosClient("127.0.0.1", rx.audit_remote_port, mech="dummy", timeout=10.0)
    illumos_records = bsm_records(case, "i0", args.records)
    events = max(1, args.lines // 4)
    linux = LinuxHost("good-linux", audisp_factory(workdir), rx.audisp_remote_port, linux_lines(case, "l0", events)[0])
    stop = threading.Event()
    hostile_thread: threading.Thread | None = None
    try:
        await asyncio.to_thread(rx.start)
        kind = name.split(" ")[0]
        if kind in HOSTILES:
            extra = (args.silent,) if kind == "silent" else ()
            ready = threading.Event()
            hostile_thread = threading.Thread(target=HOSTILES[kind], args=(ports, stop, ready, *extra), daemon=True)
            hostile_thread.start()
            if not await asyncio.to_thread(ready.wait, 120.0):  # the hostile client is going before we measure
                result.note += "hostile client never got going; "
        linux.start()

        async def send_illumos() -> None:
            await illumos.connect()
            await illumos.send_records(illumos_records, wait_when_full=True)
            if not await illumos.wait_all_acked(args.phase_timeout):
                raise RuntimeError(f"{len(illumos.transq)} records unacked after {args.phase_timeout:g} s")

        async def timed(run: Awaitable[None], count: int) -> float:
            started = time.perf_counter()
            await asyncio.wait_for(run, args.phase_timeout)
            return count / (time.perf_counter() - started)

        rates = await asyncio.gather(
            timed(send_illumos(), len(illumos_records)),
            timed(linux.run(args.phase_timeout), len(linux.lines)),
            return_exceptions=True,
        )
        for i, rate in enumerate(rates):
            if isinstance(rate, BaseException):
                result.note += f"{('illumos', 'linux')[i]} did not finish: {str(rate)[:120] or repr(rate)}; "
            elif i == 0:
                result.illumos_rate = rate
            else:
                result.linux_rate = rate
        result.peak_rss_mib = rx.note_rss() / 1024
    finally:
        stop.set()
        await illumos.close()
        linux.client.close()
        if hostile_thread is not None:
            await asyncio.to_thread(hostile_thread.join, 30)
        await asyncio.to_thread(rx.stop)
    return result


def ratio(value: float, alone: float) -> str:
    if not alone:
        return "-"
    r = value / alone
    return f"{r:.2f}{'' if r >= TARGET_RATIO else ' MISSED'}"


async def main_async(args: argparse.Namespace) -> int:
    # every hostile phase right after its own "alone" phase: this machine's speed drifts (it is shared),
    # so each ratio compares two measurements taken a few seconds apart
    chosen = [h for h in args.only.split(",") if h] or list(HOSTILES)
    phases = [name for h in chosen for name in ("alone", h)]
    results: list[PhaseResult] = []
    with contextlib.ExitStack() as stack:
        engine_url = ""
        if args.engine == "fake":
            engine_url = stack.enter_context(FakeEngineProcess()).url
        elif args.engine != "none":
            engine_url = args.engine
        base = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-hostile-")))
        deadline = time.monotonic() + args.deadline
        exit_code = 0
        for i, name in enumerate(phases):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                results.append(PhaseResult(name, note="not run: --deadline reached"))
                exit_code = 1
                continue
            best = PhaseResult(name)
            try:
                async with asyncio.timeout(remaining):
                    for attempt in range(args.repeat):  # best of N: interference on a shared machine only slows
                        r = await run_phase(name, args, engine_url, base / f"phase{i}-{attempt}")
                        best.illumos_rate = max(best.illumos_rate, r.illumos_rate)
                        best.linux_rate = max(best.linux_rate, r.linux_rate)
                        best.peak_rss_mib = max(best.peak_rss_mib, r.peak_rss_mib)
                        best.note = best.note or r.note
            except TimeoutError:
                best.note += "cut off: --deadline reached"
                exit_code = 1
            results.append(best)
            r = results[-1]
            print(
                f"  {r.name:18s} illumos {r.illumos_rate:8.0f} rec/s   audisp-remote {r.linux_rate:6.0f} rec/s   "
                f"receiver peak RSS {r.peak_rss_mib:5.0f} MiB  {r.note}",
                flush=True,
            )
    print(f"\nratio to the 'alone' phase just before (target >= {TARGET_RATIO}; engine: {args.engine}):")
    print(f"  {'beside':18s} {'illumos':>14s} {'audisp-remote':>14s} {'peak RSS MiB':>13s}")
    for alone, r in zip(results[0::2], results[1::2], strict=False):
        print(
            f"  {r.name:18s} {ratio(r.illumos_rate, alone.illumos_rate):>14s} "
            f"{ratio(r.linux_rate, alone.linux_rate):>14s} {r.peak_rss_mib:13.0f}  {r.note[:200]}"
        )
    return exit_code


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=60000, help="records from the good illumos host per phase")
    ap.add_argument("--lines", type=int, default=3000, help="lines from the good audisp-remote per phase")
    ap.add_argument("--engine", default="fake", help="fake (default), none, or an engine URL")
    ap.add_argument("--silent", type=int, default=1000, help="silent connections per listener (default: the limit)")
    ap.add_argument("--only", default="", help="comma list of hostile phases to run (default: all)")
    ap.add_argument("--phase-timeout", type=float, default=60.0, help="bound on the good senders per phase")
    ap.add_argument("--repeat", type=int, default=2, help="runs per phase; the best rate counts")
    ap.add_argument("--deadline", type=float, default=900.0, help="bound on the whole bench, seconds")
    args = ap.parse_args()
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
