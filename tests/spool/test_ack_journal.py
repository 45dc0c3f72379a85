"""The ack journal (auditrecv/spool/journal.py): a lone connection's records are durable after one
append to a flat file, and nothing acknowledged is lost or duplicated when the process dies before
the writer folded them into SQLite (issue 12, the ack path)."""

from __future__ import annotations

import asyncio
import errno
import logging
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from auditrecv.spool import Source, Spool, SpoolRecord, store
from auditrecv.spool.journal import decode_entries, encode_entry, journal_files
from auditrecv.spool.store import iter_records

pytestmark = pytest.mark.usefixtures("journal_storage")  # mapped and written: conftest.py

REPO = Path(__file__).resolve().parents[2]
SRC = Source(transport="audisp_remote", peer="192.0.2.7", peer_port=40000, listener="audisp_remote")
ODD = Source(transport="import", peer="/var/audit/odd.\udcff")  # a surrogateescape'd file name


def rec(payload: bytes, source: Source = SRC, ns: int = 1_763_800_000_123_456_789) -> SpoolRecord:
    return SpoolRecord("linux", payload, source, ns)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "spool.db"


def test_entries_round_trip_and_a_torn_tail_ends_the_valid_part() -> None:
    a = encode_entry(7, "bsm", '{"peer":"\udcff"}', -5, b"\x00\xff payload")
    b = encode_entry(8, "linux", "{}", 2**63 - 1, b"")
    entries, good = decode_entries(a + b + b[:-1])
    assert [(e.id, e.kind, e.source_json, e.received_ns, e.payload) for e in entries] == [
        (7, "bsm", '{"peer":"\udcff"}', -5, b"\x00\xff payload"),
        (8, "linux", "{}", 2**63 - 1, b""),
    ]
    assert good == len(a + b)
    damaged = bytearray(a)
    damaged[-1] ^= 1
    assert decode_entries(bytes(damaged) + b) == ([], 0), "a damaged entry ends the file's valid part"


@pytest.fixture
def fast_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any fdatasync counts as fast: a loaded test machine must not turn the journal off for "full"."""
    monkeypatch.setattr(store, "_SLOW_SYNC_SECONDS", float("inf"))


@pytest.mark.parametrize("synchronous", ["normal", "full"])
async def test_a_lone_senders_records_go_through_the_journal_and_into_sqlite(
    path: Path, synchronous: str, fast_disk: None
) -> None:
    calls: list[str] = []
    async with await Spool.open(path, synchronous=synchronous, commit_delay=0) as spool:
        real = spool._writer._store.run_group

        def spy(*args):  # type: ignore[no-untyped-def]
            calls.append(threading.current_thread().name)
            return real(*args)

        spool._writer._store.run_group = spy  # type: ignore[method-assign]
        ids = [i for n in range(50) for i in await spool.append([rec(b"%d" % n)])]
        assert ids == list(range(1, 51))
        assert spool.metrics.journaled == 50 and spool.count() == 50 and spool.last_id == 50
        assert spool.oldest_received_ns == 1_763_800_000_123_456_789
        # A reader sees every acknowledged record: reading folds what the journal holds.
        got = await spool.read(0, 100)
        assert [(rid, r.payload) for rid, r in got] == [(i, b"%d" % (i - 1)) for i in ids]
        assert set(calls) == {"auditrecv-spool-writer"}, "folds run in the writer thread, never on the loop"
        assert await spool.delete(ids[:10]) == 10
        assert spool.count() == 40
    assert not journal_files(path), "a clean close folds the journal and removes it"
    async with await Spool.open(path, synchronous=synchronous) as spool:
        assert spool.count() == 40 and spool.last_id == 50
        assert await spool.append([rec(b"next")]) == [51]


async def test_the_journal_file_is_mapped_or_written_as_the_filesystem_allows(path: Path, journal_storage: str) -> None:
    """Mapped, the file holds its preallocated room; written, only what was appended (and the end mark)."""
    async with await Spool.open(path, commit_delay=0) as spool:
        assert spool.try_append_one("linux", b"one", SRC, 1, None) == 1
        ((_seq, journal),) = journal_files(path)
        entries, good = decode_entries(journal.read_bytes())
        assert [e.payload for e in entries] == [b"one"]
        room = 256 * 1024 if journal_storage == "mapped" else good + 2
        assert journal.stat().st_size == room


@pytest.mark.parametrize("one_source", [False, True])
async def test_appends_of_several_connections_share_a_group_commit_with_synchronous_full(
    path: Path, fast_disk: None, one_source: bool
) -> None:
    """With "full" the journal's fdatasync would run on the event loop once per record: concurrent
    connections (tasks; whatever their sources say) get one group commit instead."""
    async with await Spool.open(path, commit_delay=0.002) as spool:
        sources = [
            Source(transport="audisp_remote", peer="192.0.2.8", peer_port=0 if one_source else p) for p in range(100)
        ]

        async def connection(i: int) -> list[int]:
            ids = []
            for n in range(5):
                ids += await spool.append([rec(b"%d/%d" % (i, n), sources[i])])
            return ids

        got = await asyncio.gather(*(connection(i) for i in range(100)))
        assert sorted(i for ids in got for i in ids) == list(range(1, 501))
        # Only the first connection, alone until its first await, went through the journal.
        assert spool.metrics.journaled <= 5
        assert spool.metrics.commits <= 100 and spool.metrics.max_records_per_commit >= 50


@pytest.mark.parametrize("synchronous", ["normal", "full"])
async def test_try_append_now_takes_a_lone_senders_records_without_awaiting(
    path: Path, synchronous: str, fast_disk: None
) -> None:
    """The receiver's no-wait path: the same journal, ids and counts as append, or None and nothing done."""
    async with await Spool.open(path, synchronous=synchronous, commit_delay=0) as spool:
        sender = object()  # what the receiver passes: its connection's task
        assert spool.try_append_now([rec(b"a")], sender) == [1]
        assert spool.try_append_now([rec(b"b"), rec(b"c")], sender) == [2, 3]
        assert await spool.append([rec(b"d")]) == [4]  # another sender ("full": a group commit)
        assert spool.try_append_now([], sender) is None
        m = spool.metrics
        journaled = 4 if synchronous == "normal" else 3
        assert (m.appended, m.journaled, m.committed, spool.count(), spool.last_id) == (4, journaled, 4, 4, 4)
        assert journal_files(path) and [r.payload for _, r in await spool.read(0, 10)] == [b"a", b"b", b"c", b"d"]
    async with await Spool.open(path, synchronous=synchronous) as spool:
        assert [r.payload for _, r in await spool.read(0, 10)] == [b"a", b"b", b"c", b"d"]
        await spool.close()
        assert spool.try_append_now([rec(b"e")], object()) is None, "closed: append raises SpoolClosed"


async def test_one_fold_keeps_each_records_own_source_and_order(path: Path) -> None:
    """Journaled records of several connections, interleaved, folded in one run: every record keeps
    its source (new ones are added to the source table mid-fold) and its id."""
    async with await Spool.open(path, synchronous="normal") as spool:
        sources = [Source(transport="audisp_remote", peer=f"192.0.2.{i}", peer_port=1000 + i) for i in range(3)]
        for i in range(30):
            assert spool.try_append_now([rec(b"r%d" % i, sources[i % 3], i)], object()) == [i + 1]
        got = await spool.read(0, 100)
        assert [(rid, r.payload, r.source, r.received_ns) for rid, r in got] == [
            (i + 1, b"r%d" % i, sources[i % 3], i) for i in range(30)
        ]
    async with await Spool.open(path) as spool:
        assert [r.source for _, r in await spool.read(0, 100)] == [sources[i % 3] for i in range(30)]


async def test_a_fold_that_fails_keeps_its_records_in_front_of_later_ones(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fold whose transaction fails leaves its records acknowledged and kept: the next fold takes them
    with those journaled meanwhile, ids and order as given (250 records: full 100-row chunks and a rest)."""
    monkeypatch.setattr(store, "_FOLD_RETRY_SECONDS", 0.01)
    real = store._Store._transaction
    failed: list[int] = []
    fold_failed = threading.Event()

    def fails_once(
        self: store._Store, appends: list[store._Append], deletes: list[store._Delete], journaled: object = None
    ) -> store._GroupResult:
        if journaled and not failed:
            failed.append(len(journaled))  # type: ignore[arg-type]
            fold_failed.set()
            raise sqlite3.OperationalError("disk I/O error")
        return real(self, appends, deletes, journaled)  # type: ignore[arg-type]

    monkeypatch.setattr(store._Store, "_transaction", fails_once)
    sender = object()
    async with await Spool.open(path, synchronous="normal") as spool:
        for n in range(150):
            assert spool.try_append_now([rec(b"%d" % n, ns=n)], sender) == [n + 1]
        spool._writer.request_fold()
        assert await asyncio.to_thread(fold_failed.wait, 10)
        for n in range(150, 250):
            assert spool.try_append_now([rec(b"%d" % n, ns=n)], sender) == [n + 1]
        got = await spool.read(0, 1000)
        assert failed and 1 <= failed[0] <= 150
        assert [(rid, r.payload, r.received_ns) for rid, r in got] == [(n + 1, b"%d" % n, n) for n in range(250)]
        assert spool.count() == 250 and spool.metrics.journaled == 250
    async with await Spool.open(path) as spool:
        assert [rid for rid, _ in await spool.read(0, 1000)] == list(range(1, 251))


async def test_a_fold_stores_each_rows_kind_and_source_whether_chunks_share_them_or_not(path: Path) -> None:
    """The fold binds a chunk's kind and source once when all its rows share them, five values per row
    when not: 100 records of one connection, 150 of two kinds and three sources mixed, 100 of one again,
    a rest; every row comes back as appended."""
    other = Source(transport="audit_remote", peer="192.0.2.9", peer_port=40001)
    shapes = [("linux", SRC)] * 100
    shapes += [(("bsm", "linux")[n % 2], (SRC, ODD, other)[n % 3]) for n in range(150)]
    shapes += [("bsm", other)] * 130
    sender = object()
    async with await Spool.open(path, synchronous="normal") as spool:
        spool._writer.ledger.fold_seconds, spool._writer.ledger.fold_records = 3600.0, 10**9  # one fold
        for n, (kind, source) in enumerate(shapes):
            assert spool.try_append_now([SpoolRecord(kind, b"%d" % n, source, n)], sender) == [n + 1]
        got = await spool.read(0, 1000)
        assert spool.metrics.journaled == len(shapes) and spool.count() == len(shapes)
    expected = [(n + 1, kind, source, n, b"%d" % n) for n, (kind, source) in enumerate(shapes)]
    assert [(rid, r.kind, r.source, r.received_ns, r.payload) for rid, r in got] == expected


async def test_try_append_now_declines_what_append_must_wait_for(path: Path, fast_disk: None) -> None:
    """With "full", a sender that is not alone shares group commits: try_append_now declines, and the
    append that follows for the same sender sees the same decision (declining changed nothing)."""
    async with await Spool.open(path, synchronous="full", commit_delay=0) as spool:
        first, second = object(), object()
        assert spool.try_append_now([rec(b"1")], first) == [1]
        assert spool.try_append_now([rec(b"2")], second) is None  # someone else appended just now
        assert spool.metrics.appended == 1 and spool.metrics.journaled == 1
        assert await spool.append([rec(b"2")]) == [2]  # the group commit
        assert spool.metrics.journaled == 1 and spool.metrics.append_commits == 1
        journal = spool._writer._journal

        def no_space(*entry: object) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        journal.append = no_space  # type: ignore[method-assign]
        assert spool.try_append_now([rec(b"3")], second) is None
        assert spool.metrics.appended == 2 and spool.count() == 2


async def test_records_interleave_between_the_journal_and_group_commits_in_id_order(path: Path) -> None:
    """A lone sender (journal), bursts (group commits through the writer) and the pipeline's reads and
    deletes at once: ids stay unique and increasing in arrival order per sender, the reader's cursor
    sees every record once, and the state is exact at the end."""
    async with await Spool.open(path, synchronous="normal", commit_delay=0) as spool:
        acked: dict[int, bytes] = {}

        async def lone_sender() -> None:
            last = 0
            for i in range(400):
                (rid,) = await spool.append([rec(b"lone %d" % i)])
                assert rid > last
                last = rid
                acked[rid] = b"lone %d" % i

        async def bursts() -> None:
            with_journal_off = spool._writer
            for i in range(40):
                batch = [[rec(b"burst %d/%d" % (i, k), ODD)] for k in range(5)]
                if i % 2:
                    with_journal_off._use_journal = False  # half the bursts through the group path
                got = await asyncio.gather(*(spool.append(b) for b in batch))
                with_journal_off._use_journal = True
                for b, ids in zip(batch, got, strict=True):
                    acked[ids[0]] = b[0].payload

        seen: dict[int, bytes] = {}

        async def pipeline() -> None:
            cursor = 0
            while len(seen) < 600:
                assert await spool.wait_for_records(cursor, timeout=10), "acknowledged records never showed up"
                batch = await spool.read(cursor, 50)
                for rid, r in batch:
                    assert rid > cursor and rid not in seen
                    seen[rid] = r.payload
                    cursor = rid
                await spool.delete([rid for rid, _ in batch[:10]])

        await asyncio.gather(lone_sender(), bursts(), pipeline())
        assert len(acked) == 600 and seen == acked
        assert spool.metrics.journaled >= 400
        left = await spool.read(0, 10_000)
        assert spool.count() == len(left) and spool.last_id == max(acked)
        assert {rid for rid, _ in left} <= set(acked)


def _append_then_die(path: Path, synchronous: str, n: int) -> list[int]:
    """A separate process appends n records, prints their ids and is SIGKILLed before any fold."""
    script = textwrap.dedent(
        f"""
        import asyncio, os, signal, sys
        from auditrecv.spool import Source, Spool, SpoolRecord
        from auditrecv.spool import store
        store.JOURNAL_FOLD_SECONDS = 3600.0  # nothing is folded: everything must come from the journal
        store.JOURNAL_FOLD_RECORDS = 10**9
        store._SLOW_SYNC_SECONDS = float("inf")
        async def main():
            spool = await Spool.open({str(path)!r}, synchronous={synchronous!r}, commit_delay=0)
            src = Source(transport="audisp_remote", peer="192.0.2.7", peer_port=40000)
            for i in range({n}):
                ids = await spool.append([SpoolRecord("linux", b"rec %d" % i, src, 1000 + i)])
                print(ids[0], flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        asyncio.run(main())
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    return [int(line) for line in proc.stdout.split()]


@pytest.mark.parametrize("synchronous", ["normal", "full"])
async def test_a_killed_process_loses_nothing_it_acknowledged(
    path: Path, synchronous: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with await Spool.open(path, synchronous=synchronous) as spool:
        assert await spool.append([rec(b"before")]) == [1]
    acked = _append_then_die(path, synchronous, 300)
    assert acked == list(range(2, 302))
    assert journal_files(path), "the records are only in the journal"
    # `auditrecv export` of the dead service's spool reads the journal too.
    exported = list(iter_records(path))
    assert [rid for rid, _ in exported] == [1, *acked]
    caplog.set_level(logging.WARNING, logger="auditrecv.spool")
    async with await Spool.open(path, synchronous=synchronous) as spool:
        assert "300 acknowledged records recovered from the ack journal" in caplog.text
        got = await spool.read(0, 1000)
        assert [(rid, r.payload, r.received_ns, r.source.peer) for rid, r in got] == [
            (1, b"before", 1_763_800_000_123_456_789, "192.0.2.7"),
            *((rid, b"rec %d" % (rid - 2), 1000 + rid - 2, "192.0.2.7") for rid in acked),
        ]
        assert await spool.append([rec(b"after")]) == [302]
    assert not journal_files(path) or all(p.stat().st_size == 0 for _, p in journal_files(path))


async def test_a_slow_fdatasync_sends_full_appends_back_to_the_group_commit(path: Path) -> None:
    """With "full" the journal's fdatasync blocks the event loop: after a slow one, no more of that."""
    async with await Spool.open(path, synchronous="full", commit_delay=0) as spool:
        journal = spool._writer._journal
        real = journal.append
        sync_seconds = [0.001]

        def timed(*entry: object) -> int | None:
            rid = real(*entry)  # type: ignore[arg-type]
            journal.last_sync_seconds = sync_seconds[0]
            return rid

        journal.append = timed  # type: ignore[method-assign]
        ids = [i for n in range(3) for i in await spool.append([rec(b"fast %d" % n)])]
        sync_seconds[0] = 0.1  # one slow sync (a new file, a neighbour's burst): carry on
        ids += await spool.append([rec(b"one slow")])
        sync_seconds[0] = 0.001
        ids += await spool.append([rec(b"fast again")])
        assert spool.metrics.journaled == 5
        sync_seconds[0] = 0.1  # the disk stays slow: after a few, appends leave the event loop alone
        while spool.metrics.append_commits == 0:
            ids += await spool.append([rec(b"slow")])
            assert len(ids) < 20, "a disk that stays slow keeps blocking the event loop"
        journaled = spool.metrics.journaled
        ids += await spool.append([rec(b"group commit")])
        assert spool.metrics.journaled == journaled and spool.metrics.append_commits == 2
        assert [rid for rid, _ in await spool.read(0, 100)] == ids == list(range(1, len(ids) + 1))


async def test_journal_entries_already_in_sqlite_are_not_stored_twice(path: Path) -> None:
    """A crash between the fold's commit and the journal's cut leaves entries SQLite already has."""
    saved = path.parent / "saved-journal"
    async with await Spool.open(path, synchronous="normal") as spool:
        for n in range(20):
            await spool.append([rec(b"%d" % n)])
        (_, current), *_ = journal_files(path)
        shutil.copyfile(current, saved)
        await spool.read(0, 100)  # folds
    assert saved.stat().st_size > 0
    shutil.copyfile(saved, Path(f"{path}.ack-000099"))
    async with await Spool.open(path, synchronous="normal") as spool:
        assert spool.count() == 20
        assert [rid for rid, _ in await spool.read(0, 100)] == list(range(1, 21))
        assert await spool.append([rec(b"next")]) == [21]


async def test_entries_of_a_folded_round_are_never_read_back(
    path: Path, caplog: pytest.LogCaptureFixture, journal_storage: str
) -> None:
    """A cut journal file starts again at its start, over the entries already folded: what a process
    killed after that leaves is read back to the end mark, not beyond (a fresh database would take
    the old entries again), and without a warning (nothing torn)."""
    crashed = path.parent / "crashed" / "spool.db"
    crashed.parent.mkdir()
    async with await Spool.open(path, synchronous="normal") as spool:
        for n in range(30):
            await spool.append([rec(b"first round %d" % n)])
        await spool.read(0, 1)  # folds, and cuts the journal
        for n in range(3):
            await spool.append([rec(b"second %d" % n)])
        (_, current), *_ = journal_files(path)
        if journal_storage == "mapped":
            assert current.stat().st_size == 256 * 1024, "one file, its room preallocated"
        else:  # written over the first round's entries, which go on after the end mark
            entries, good = decode_entries(current.read_bytes())
            assert len(entries) == 3 and current.stat().st_size > good + 2
        Path(f"{crashed}.ack-000001").write_bytes(current.read_bytes())  # what a SIGKILL would leave
    caplog.set_level(logging.WARNING, logger="auditrecv.spool")
    async with await Spool.open(crashed, synchronous="normal") as spool:
        assert [(rid, r.payload) for rid, r in await spool.read(0, 100)] == [
            (31 + n, b"second %d" % n) for n in range(3)
        ]
    assert "3 acknowledged records recovered" in caplog.text and "ignored" not in caplog.text


async def test_a_torn_journal_tail_is_ignored_and_said(path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with await Spool.open(path):
        pass
    entry = encode_entry(1, "linux", '{"transport":"audisp_remote"}', 5, b"whole")
    Path(f"{path}.ack-000001").write_bytes(entry + encode_entry(2, "linux", "{}", 6, b"cut short")[:20])
    caplog.set_level(logging.WARNING, logger="auditrecv.spool")
    async with await Spool.open(path) as spool:
        assert [(rid, r.payload, r.source.transport) for rid, r in await spool.read(0, 10)] == [
            (1, b"whole", "audisp_remote")
        ]
    assert "20 bytes after the last complete entry ignored" in caplog.text


async def test_a_journal_write_that_fails_falls_back_to_a_sqlite_commit(path: Path) -> None:
    async with await Spool.open(path, synchronous="normal") as spool:
        journal = spool._writer._journal

        def no_space(*entry: object) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        journal.append = no_space  # type: ignore[method-assign]
        assert await spool.append([rec(b"still stored")]) == [1]
        assert spool.metrics.journaled == 0 and spool.metrics.append_commits == 1
        assert [r.payload for _, r in await spool.read(0, 10)] == [b"still stored"]


async def test_the_journal_is_cut_and_rotated_so_it_never_grows_without_bound(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from auditrecv.spool import journal as journal_module

    monkeypatch.setattr(journal_module, "ROTATE_BYTES", 4096)
    async with await Spool.open(path, synchronous="normal") as spool:
        for n in range(2000):
            await spool.append([rec(b"x" * 100 + b"%d" % n)])
            if n % 100 == 99:
                await spool.read(n, 1)  # a reader makes the writer fold now
                files = journal_files(path)
                sizes = [decode_entries(p.read_bytes())[1] for _, p in files]  # the entries in them
                assert len(sizes) <= 2 and sum(sizes) <= 2 * 4096 + 200, sizes
                # Each file's room is its first preallocation (256 KiB): cut and rotated, it never grew.
                assert all(p.stat().st_size <= 256 * 1024 for _, p in files)
        assert spool.count() == 2000
    assert not journal_files(path)


async def test_a_new_journal_file_that_cannot_be_made_leaves_appends_in_the_full_one(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from auditrecv.spool import journal as journal_module

    monkeypatch.setattr(journal_module, "ROTATE_BYTES", 4096)
    real = journal_module.JournalFile
    made: list[Path] = []

    def no_more_files(file_path: Path, map: bool = True) -> object:
        if made:
            raise OSError(errno.EMFILE, "Too many open files")
        made.append(file_path)
        return real(file_path, map=map)

    monkeypatch.setattr(journal_module, "JournalFile", no_more_files)
    async with await Spool.open(path, synchronous="normal") as spool:
        for n in range(200):
            await spool.append([rec(b"x" * 100 + b"%d" % n)])
            if n % 50 == 49:
                await spool.read(n, 1)  # a fold, then a rotation that fails
        assert spool.metrics.journaled == 200, "the journal carried on in the file it had"
        assert [p for _, p in journal_files(path)] == made
        monkeypatch.setattr(journal_module, "JournalFile", real)
        for n in range(200, 300):
            await spool.append([rec(b"x" * 100 + b"%d" % n)])
        await spool.read(0, 1)
        assert [seq for seq, _ in journal_files(path)] == [2], "the next fold rotated (and cut the old file)"
        assert [r.payload[100:] for _, r in await spool.read(0, 1000)] == [b"%d" % n for n in range(300)]
