"""CPU per record on the ack path of one audisp-remote connection, each part against a baseline run alongside.

A stop-and-wait sender waits for every ack, so each microsecond the receiver spends per record on the
event loop's thread is a microsecond of every round trip (bench_audisp_remote.py measures the round trips
with the real client; this one says where the time goes, without sockets or a client process):

* core:    ``ManagedSession.receive_record`` of one whole MESSAGE frame (payload, seq, reply; and the
           general ``receive_data`` + ``ack`` + ``data_to_send``), against what the ack-only listener
           does itself per record (unpack the header, pack the ack);
* server:  the read callback (``data_received``: core, window, ``try_append_now``, ack, write) into a
           fake transport with a spool that costs nothing, against a bare asyncio protocol answering
           the same frames with the same ack bytes;
* spool:   ``Spool.try_append_now`` of one record (real spool, ack journal, ``synchronous = "normal"``,
           the writer thread folding alongside), and ``try_append_one`` of its fields (what the server
           calls), against the journal's native append alone;
* whole:   the read callback with the real spool, against the bare protocol.
* fold:    the writer thread's CPU per record for one fold of a round's journaled records into SQLite
           (``try_append_now`` of every record with folds held off, then one fold), against SQLite alone
           inserting the same rows (100-row INSERTs of ready parameters, one transaction, same schema).

Figures are CPU time of the calling (event loop) thread per record (``time.thread_time``), best of
``--rounds`` interleaved rounds; "process" adds every thread (the writer's folds). ``--profile`` prints
a cProfile of the whole read path.

    .venv/bin/python bench/bench_ack_path.py [--records 20000] [--rounds 7] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import pstats
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import benchkit  # noqa: E402
from auditrecv._native import JournalFile  # noqa: E402

from auditrecv.config import AudispRemoteListener, Gss  # noqa: E402
from auditrecv.receive.audisp_remote import ManagedSession, MessageType, pack_frame  # noqa: E402
from auditrecv.receive.listeners import AudispRemoteListenerPolicy  # noqa: E402
from auditrecv.receive.server import ReceiveServer, _ReceiverProtocol  # noqa: E402
from auditrecv.spool import Source, Spool, SpoolRecord, SpoolState, store  # noqa: E402
from auditrecv.spool.record import RecordKind  # noqa: E402
from tests.paths import LINUX_FIXTURES  # noqa: E402

HEADER = struct.Struct("<IBBIHI")
YIELD_EVERY = 500  # records between visits to the loop (the writer's results, the connection's task)


def make_frames(n: int) -> list[bytes]:
    """n MESSAGE frames of realistic lines (the fixture's, fresh serial numbers), as audisp-remote sends them."""
    src = (LINUX_FIXTURES / "audisp-remote" / "captures" / "input-events.log").read_bytes().splitlines()
    src = [s for s in src if b"type=EOE" not in s]
    return [
        pack_frame(MessageType.MESSAGE, i + 1, src[i % len(src)].replace(b":424", b":%d" % (100000 + i), 1) + b"\n")
        for i in range(n)
    ]


class FreeSpool:
    """Takes every record at once and keeps nothing: the receiver's own cost."""

    state: SpoolState = "ok"

    def try_append_now(self, records: Sequence[SpoolRecord], appender: object) -> list[int]:
        return [0] * len(records)

    def try_append_one(
        self, kind: RecordKind, payload: bytes, source: Source, received_ns: int, appender: object
    ) -> int:
        return 0

    async def append(self, records: Sequence[SpoolRecord]) -> list[int]:
        return [0] * len(records)

    async def wait_for_space(self, timeout: float | None = None) -> bool:
        return True


class FakeTransport(asyncio.Transport):
    """What the read path touches of a socket transport; writes are counted, not kept."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0

    def write(self, data: Any) -> None:
        self.written += len(data)

    def get_write_buffer_size(self) -> int:
        return 0

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (16384, 65536)

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


class BareAckProtocol(asyncio.Protocol):
    """The least an asyncio receiver can do per frame: take the seq, write the ack."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        seq = HEADER.unpack_from(data)[5]
        self.transport.write(HEADER.pack(0xFF0000FE, 0, 0, 0x40000000, 0, seq))


Timing = tuple[float, float]  # (this thread's CPU, the process's CPU), seconds per record


async def timed(frames: list[bytes], per_frame: Callable[[bytes], object]) -> Timing:
    """CPU per record of ``per_frame`` over every frame, visiting the loop every YIELD_EVERY records."""
    gc.collect()
    thread = process = 0.0
    for start in range(0, len(frames), YIELD_EVERY):
        chunk = frames[start : start + YIELD_EVERY]
        t0, p0 = time.thread_time(), time.process_time()
        for frame in chunk:
            per_frame(frame)
        thread += time.thread_time() - t0
        process += time.process_time() - p0
        await asyncio.sleep(0)
    return thread / len(frames), process / len(frames)


def baseline_core(frame: bytes) -> bytes:
    seq = HEADER.unpack_from(frame)[5]
    return HEADER.pack(0xFF0000FE, 0, 0, 0x40000000, 0, seq)


async def run_core(frames: list[bytes]) -> Timing:
    """The server's way for a whole frame: payload, seq and reply in one call."""
    session = ManagedSession()
    take = session.receive_record

    def one(frame: bytes) -> bytes:
        taken = take(frame)
        assert taken is not None
        return taken[2]

    return await timed(frames, one)


async def run_core_general(frames: list[bytes]) -> Timing:
    """The general way (any read: split frames, heartbeats, several frames): events, ack, output."""
    session = ManagedSession()
    receive, ack, out = session.receive_data, session.ack, session.data_to_send

    def one(frame: bytes) -> bytes:
        for event in receive(frame, 0, 64):
            ack(event.ack_token, "ok")  # type: ignore[union-attr]  # only records in these frames
        return out()

    return await timed(frames, one)


async def run_bare(frames: list[bytes]) -> Timing:
    protocol = BareAckProtocol()
    protocol.connection_made(FakeTransport())
    return await timed(frames, protocol.data_received)


def new_server(spool: Any) -> tuple[ReceiveServer, _ReceiverProtocol]:
    settings = AudispRemoteListener(host="127.0.0.1", port=0)
    server = ReceiveServer(AudispRemoteListenerPolicy(settings, Gss()), spool, name="bench")
    protocol = _ReceiverProtocol(server)
    protocol.connection_made(FakeTransport())
    return server, protocol


async def run_server(frames: list[bytes], spool: Any, profile: cProfile.Profile | None = None) -> Timing:
    server, protocol = new_server(spool)
    try:
        if profile is None:
            return await timed(frames, protocol.data_received)
        profile.enable()
        try:
            return await timed(frames, protocol.data_received)
        finally:
            profile.disable()
    finally:
        await server.abort()


async def open_spool(directory: Path) -> Spool:
    return await Spool.open(directory / f"spool-{time.monotonic_ns()}.db", max_bytes=1024**3, synchronous="normal")


def as_records(frames: list[bytes]) -> list[SpoolRecord]:
    source = Source(transport="audisp_remote", peer="127.0.0.1", peer_port=40000, listener="bench")
    return [SpoolRecord("linux", frame[16:-1], source, time.time_ns()) for frame in frames]


async def run_spool(frames: list[bytes], directory: Path, by_fields: bool = False) -> Timing:
    """try_append_now of a one-record list, or (``by_fields``) try_append_one of its fields (the server's)."""
    spool = await open_spool(directory)
    try:
        records = iter(as_records(frames))
        appender = object()

        def one(_frame: bytes) -> None:
            if spool.try_append_now([next(records)], appender) is None:
                raise RuntimeError("the ack journal declined a record")

        def one_by_fields(_frame: bytes) -> None:
            rec = next(records)
            if spool.try_append_one(rec.kind, rec.payload, rec.source, rec.received_ns, appender) is None:
                raise RuntimeError("the ack journal declined a record")

        return await timed(frames, one_by_fields if by_fields else one)
    finally:
        await spool.close()


async def run_journal(frames: list[bytes], directory: Path) -> Timing:
    file = JournalFile(directory / f"journal-{time.monotonic_ns()}")
    try:
        records = iter(as_records(frames))
        source = b'{"authenticated":false,"listener":"bench","mech":"","peer":"127.0.0.1"}'
        ids = iter(range(1, len(frames) + 1))

        def one(_frame: bytes) -> None:
            rec = next(records)
            file.append(next(ids), rec.kind, source, rec.received_ns, rec.payload)

        return await timed(frames, one)
    finally:
        file.close()


async def run_whole(frames: list[bytes], directory: Path, profile: cProfile.Profile | None = None) -> Timing:
    spool = await open_spool(directory)
    try:
        return await run_server(frames, spool, profile)
    finally:
        await spool.close()


async def run_fold(frames: list[bytes], directory: Path) -> Timing:
    """The writer thread's CPU for one fold of every record (thread and process columns alike)."""
    spool = await open_spool(directory)
    ledger = spool._writer.ledger
    held = ledger.fold_seconds, ledger.fold_records
    try:
        writer_store = spool._writer._store
        run_group = writer_store.run_group
        cpu = [0.0]

        def timed_group(*args: Any) -> Any:
            started = time.thread_time()
            try:
                return run_group(*args)
            finally:
                cpu[0] += time.thread_time() - started

        writer_store.run_group = timed_group  # type: ignore[method-assign]
        ledger.fold_seconds, ledger.fold_records = 3600.0, 10**9
        appender = object()
        for record in as_records(frames):
            if spool.try_append_now([record], appender) is None:
                raise RuntimeError("the ack journal declined a record")
        ledger.fold_seconds, ledger.fold_records = held
        gc.collect()
        await spool.read(0, 1)  # folds everything journaled, then answers
        if spool.last_id != len(frames) or not cpu[0]:
            raise RuntimeError("the fold did not take every record")
        return cpu[0] / len(frames), cpu[0] / len(frames)
    finally:
        ledger.fold_seconds, ledger.fold_records = held
        await spool.close()


def run_sqlite_insert(frames: list[bytes], directory: Path, same: bool = False) -> Timing:
    """SQLite alone: the same rows, ready, in 100-row INSERTs in one transaction (the store's database:
    its schema and pragmas); ``same``: with the kind and source id bound once per INSERT, as the fold
    binds a chunk of one connection's records (store._INSERT_SAME_CHUNK)."""
    conn = store._Store._open_db(directory / f"plain-{time.monotonic_ns()}.db", "normal")
    try:
        rows = [(i + 1, r.kind, 1, r.received_ns, r.payload) for i, r in enumerate(as_records(frames))]
        chunk = store._FOLD_CHUNK  # the fold's
        insert = "INSERT INTO records (id, kind, source_id, received_ns, payload) VALUES "
        many = insert + ", ".join(["(?, ?, ?, ?, ?)"] * chunk)
        full = len(rows) // chunk * chunk
        params = [tuple(v for row in rows[i : i + chunk] for v in row) for i in range(0, full, chunk)]
        if same:
            many = store._INSERT_SAME_CHUNK
            params = [
                ("linux", 1, *(v for row in rows[i : i + chunk] for v in (row[0], row[3], row[4])))
                for i in range(0, full, chunk)
            ]
        gc.collect()
        started = time.thread_time()
        conn.execute("BEGIN IMMEDIATE")
        for p in params:
            conn.execute(many, p)
        conn.executemany(insert + "(?, ?, ?, ?, ?)", rows[full:])
        conn.execute("COMMIT")
        cpu = (time.thread_time() - started) / len(rows)
        return cpu, cpu
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="cProfile the whole read path once, at the end")
    benchkit.add_deadline_argument(parser, 600)
    args = parser.parse_args()
    sys.exit(benchkit.run("bench_ack_path", args.deadline, lambda dl: asyncio.run(body(args, dl))))


async def body(args: argparse.Namespace, dl: benchkit.Deadline) -> None:
    frames = make_frames(args.records)
    with tempfile.TemporaryDirectory(prefix="bench-ack-", dir="/var/tmp") as tmp:
        directory = Path(tmp)
        parts: list[tuple[str, Callable[[], Any]]] = [
            ("baseline: header + ack", lambda: timed(frames, baseline_core)),
            ("core: receive_record", lambda: run_core(frames)),
            ("core, general: receive_data + ack", lambda: run_core_general(frames)),
            ("baseline: bare ack protocol", lambda: run_bare(frames)),
            ("server: read callback, free spool", lambda: run_server(frames, FreeSpool())),
            ("baseline: journal append alone", lambda: run_journal(frames, directory)),
            ("spool: try_append_now", lambda: run_spool(frames, directory)),
            ("spool: try_append_one", lambda: run_spool(frames, directory, by_fields=True)),
            ("whole: read callback, real spool", lambda: run_whole(frames, directory)),
            ("baseline: SQLite insert alone", lambda: asyncio.sleep(0, run_sqlite_insert(frames, directory))),
            (
                "baseline: SQLite insert, kind+source once",
                lambda: asyncio.sleep(0, run_sqlite_insert(frames, directory, same=True)),
            ),
            ("fold: writer thread", lambda: run_fold(frames, directory)),
        ]
        best: dict[str, Timing] = {}
        for r in range(args.rounds):
            for name, run in parts:
                dl.phase(f"round {r + 1}: {name}")
                thread, process = await run()
                old = best.get(name)
                best[name] = (min(old[0], thread), min(old[1], process)) if old else (thread, process)
        print(f"{args.records} records per round, best of {args.rounds}; us per record, loop thread (process)")
        for name, (thread, process) in best.items():
            dl.measured(f"{name:<42} {thread * 1e6:6.2f} us  ({process * 1e6:6.2f})")
        for part, base in (
            ("core: receive_record", "baseline: header + ack"),
            ("core, general: receive_data + ack", "baseline: header + ack"),
            ("server: read callback, free spool", "baseline: bare ack protocol"),
            ("spool: try_append_now", "baseline: journal append alone"),
            ("spool: try_append_one", "baseline: journal append alone"),
            ("whole: read callback, real spool", "baseline: bare ack protocol"),
            ("fold: writer thread", "baseline: SQLite insert alone"),
            ("fold: writer thread", "baseline: SQLite insert, kind+source once"),
        ):
            dl.measured(
                f"ratio {part:<34} / {base:<42} {best[part][0] / best[base][0]:5.2f}x  "
                f"(+{(best[part][0] - best[base][0]) * 1e6:.2f} us)"
            )
        if args.profile:
            profile = cProfile.Profile()
            await run_whole(frames, directory, profile)
            pstats.Stats(profile).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
