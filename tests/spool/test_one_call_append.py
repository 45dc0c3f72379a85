"""The one-call append (``try_append_now`` with ``synchronous = "normal"``: ``JournalLedger.append_record``,
no writer lock, the counters kept natively): the same ids, journal entries and counters as the locked
way it replaced, and every case it does not take itself handed to that way (issue 12, the ack path)."""

from __future__ import annotations

import asyncio
import errno
import os
from pathlib import Path

import pytest
from auditrecv._native import APPEND_CLOSED, APPEND_DECLINED, APPEND_NEW_SOURCE, APPEND_NOT_PLAIN

from auditrecv.spool import Source, Spool, SpoolRecord, store
from auditrecv.spool.journal import journal_files, read_journal

pytestmark = pytest.mark.usefixtures("journal_storage")  # mapped and written: conftest.py

SRC = Source(transport="audisp_remote", peer="192.0.2.7", peer_port=40000, listener="audisp_remote")
OTHER = Source(transport="audisp_remote", peer="192.0.2.8", peer_port=40001, listener="audisp_remote")


def rec(payload: bytes, source: Source = SRC, ns: int = 1_763_800_000_000_000_000) -> SpoolRecord:
    return SpoolRecord("linux", payload, source, ns)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "spool.db"


def one_call(spool: Spool, record: SpoolRecord) -> int:
    """The native call try_append_now makes for one record with "normal"."""
    result: int = spool._ledger.append_record(record.kind, record.payload, record.source, record.received_ns)
    return result


def counters(spool: Spool) -> tuple[object, ...]:
    m = spool.metrics
    return (m.appended, m.journaled, m.committed, m.records, spool.count(), spool.oldest_received_ns, spool.last_id)


async def test_one_call_appends_count_what_the_locked_way_counts(tmp_path: Path) -> None:
    """Every counter the locked way moves, the one-call way moves alike (read when asked), and the journal
    holds the same entries."""
    records = [rec(b"line %d" % n, SRC if n % 4 else OTHER, 1_000 + n) for n in range(60)]
    async with await Spool.open(tmp_path / "locked.db", synchronous="normal") as locked:
        for r in records:
            assert await locked.append([r])  # the locked way (journal_append_one)
        expected = counters(locked)
        locked_entries = [(e.id, e.kind, e.source_json, e.received_ns, e.payload) for e in read_journal(locked.path)]
    async with await Spool.open(tmp_path / "one.db", synchronous="normal") as spool:
        ids = [spool.try_append_now([r], "conn") for r in records]
        assert ids == [[n + 1] for n in range(60)]
        assert spool._ledger.tally_records > 0, "counted natively until read"
        assert counters(spool) == expected == (60, 60, 60, 60, 60, 1_000, 60)
        assert spool._ledger.tally_records == 0
        m = spool.metrics
        assert len(m.recent_ack_seconds) == 60 and m.ack_seconds_max >= max(m.recent_ack_seconds) > 0
        assert m.ack_seconds_sum == pytest.approx(sum(m.recent_ack_seconds))
        entries = [(e.id, e.kind, e.source_json, e.received_ns, e.payload) for e in read_journal(spool.path)]
        assert entries == locked_entries
        got = await spool.read(0, 100)  # folds them
        assert [(rid, r) for rid, r in got] == [(n + 1, r) for n, r in enumerate(records)]
        assert counters(spool) == expected
        assert spool.stats()["journaled"] == 60 and spool.stats()["records"] == 60


async def test_what_the_one_call_does_not_take_goes_the_locked_way(path: Path) -> None:
    """A new source, a payload that is not exactly bytes, a closed ledger: the locked way takes them (and
    raises as before for records it refuses); the budget's refusal is final."""
    async with await Spool.open(path, synchronous="normal") as spool:
        writer = spool._writer
        assert one_call(spool, rec(b"first")) == APPEND_NEW_SOURCE
        assert spool.try_append_now([rec(b"first")], "conn") == [1]  # learns the source
        assert one_call(spool, rec(b"second")) == 2
        assert one_call(spool, SpoolRecord("linux", bytearray(b"x"), SRC, 1)) == APPEND_NOT_PLAIN  # type: ignore[arg-type]
        assert spool.try_append_now([SpoolRecord("linux", bytearray(b"third"), SRC, 1)], "conn") == [3]  # type: ignore[arg-type]
        assert one_call(spool, rec(b"x", ns=2**63)) == APPEND_NOT_PLAIN
        with pytest.raises(ValueError, match="64 bits"):
            spool.try_append_now([rec(b"x", ns=2**63)], "conn")
        assert one_call(spool, SpoolRecord("linux", b"x", SRC, True)) == APPEND_NOT_PLAIN
        with pytest.raises(TypeError):
            spool.try_append_now([SpoolRecord(b"linux", b"x", SRC, 1)], "conn")  # type: ignore[arg-type]
        writer.ledger.open = False  # as while the writer cuts the journal: the locked way waits and decides
        assert one_call(spool, rec(b"x")) == APPEND_CLOSED
        assert spool.try_append_now([rec(b"fourth")], "conn") == [4]
        writer.ledger.open = True
        room = writer.ledger.room
        writer.ledger.room = 0
        assert one_call(spool, rec(b"x")) == APPEND_DECLINED
        assert spool.try_append_now([rec(b"x")], "conn") is None
        writer.ledger.room = room
        assert spool.try_append_now([rec(b"fifth")], "conn") == [5]
        assert spool.metrics.appended == 5 and spool.count() == 5
        assert [r.payload for _, r in await spool.read(0, 10)] == [b"first", b"second", b"third", b"fourth", b"fifth"]


async def test_a_full_spool_and_full_sync_never_take_the_one_call(path: Path) -> None:
    async with await Spool.open(path, synchronous="full") as spool:
        assert not spool._one_call and not spool._writer.ledger.open
        assert spool.try_append_now([rec(b"a")], "conn") == [1]  # the locked way, with its fdatasync
        assert spool.metrics.journaled == 1


def _journal_fd(journal_path: Path) -> int:
    """This process's descriptor of the journal file."""
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == str(journal_path):
                return int(name)
        except OSError:
            continue
    raise AssertionError(f"{journal_path} is not open")


async def test_a_one_call_write_that_fails_declines_and_the_next_append_commits_through_sqlite(path: Path) -> None:
    """The journal file cannot grow (its descriptor made read-only, so the posix_fallocate of its growth
    fails, as a full filesystem's ENOSPC would) for a record beyond its preallocated room: nothing
    acknowledged, nothing counted, the file as it was; the room is 0, so the append that follows goes
    to SQLite."""
    beyond_the_room = b"x" * (256 * 1024 + 1)
    async with await Spool.open(path, synchronous="normal") as spool:
        assert spool.try_append_now([rec(b"kept")], "conn") == [1]
        (_, journal_path), *_ = journal_files(path)
        before = journal_path.read_bytes()
        fd = _journal_fd(journal_path)
        saved = os.dup(fd)
        read_only = os.open(journal_path, os.O_RDONLY)
        try:
            os.dup2(read_only, fd)
            assert spool.try_append_now([rec(beyond_the_room)], "conn") is None
        finally:
            os.dup2(saved, fd)
        assert journal_path.read_bytes() == before
        assert spool.metrics.appended == 1 and spool.count() == 1 and spool._writer.ledger.room == 0
        assert await spool.append([rec(b"committed")]) == [2]
        assert spool.metrics.append_commits == 1
        assert [r.payload for _, r in await spool.read(0, 10)] == [b"kept", b"committed"]
        before = journal_path.read_bytes()
        with pytest.raises(OSError) as raised:  # what the native call raised, seen from below
            spool._writer.ledger.room = 1 << 30
            os.dup2(read_only, fd)
            try:
                one_call(spool, rec(beyond_the_room))
            finally:
                os.dup2(saved, fd)
                os.close(saved)
                os.close(read_only)
        assert raised.value.errno == errno.EBADF
        assert journal_path.read_bytes() == before, "the failed growth left the file as it was"


async def test_a_one_call_append_wakes_an_idle_writer(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer sleeps without a deadline while nothing is journaled: the first record kept wakes it, so the
    fold follows within JOURNAL_FOLD_SECONDS, and JOURNAL_FOLD_RECORDS kept make it fold at once."""
    monkeypatch.setattr(store, "JOURNAL_FOLD_SECONDS", 0.01)
    monkeypatch.setattr(store, "JOURNAL_FOLD_RECORDS", 3)
    async with await Spool.open(path, synchronous="normal") as spool:
        writer = spool._writer
        for _ in range(500):
            if writer.ledger.writer_idle:
                break
            await asyncio.sleep(0.01)
        assert writer.ledger.writer_idle
        assert spool.try_append_now([rec(b"a")], "conn") == [1]
        assert await spool.wait_for_records(0, timeout=10), "the idle writer never folded"
        writer.ledger.fold_seconds = 3600.0
        for _ in range(500):
            if writer.ledger.writer_idle:
                break
            await asyncio.sleep(0.01)
        assert [spool.try_append_now([rec(b"%d" % n)], "conn") for n in range(3)] == [[2], [3], [4]]
        assert await spool.wait_for_records(3, timeout=10), "three kept did not fold at once"


async def test_try_append_one_is_try_append_now_of_the_record_its_fields_make(path: Path) -> None:
    """The receive server's call: the same ids and counts, the same ways out (a new source and a closed
    ledger through the locked way, a declined append None, a closed or full spool None)."""
    async with await Spool.open(path, synchronous="normal") as spool:
        assert spool.try_append_one("linux", b"a", SRC, 10, "conn") == 1  # learns the source
        assert spool.try_append_one("linux", b"b", SRC, 11, "conn") == 2
        spool._writer.ledger.open = False
        assert spool.try_append_one("linux", b"c", SRC, 12, "conn") == 3
        spool._writer.ledger.open = True
        room = spool._writer.ledger.room
        spool._writer.ledger.room = 0
        assert spool.try_append_one("linux", b"x", SRC, 13, "conn") is None
        spool._writer.ledger.room = room
        assert spool.try_append_one("bsm", b"d", OTHER, 14, "conn") == 4
        assert counters(spool) == (4, 4, 4, 4, 4, 10, 4)
        got = await spool.read(0, 10)
        assert [(rid, r.kind, r.payload, r.source, r.received_ns) for rid, r in got] == [
            (1, "linux", b"a", SRC, 10),
            (2, "linux", b"b", SRC, 11),
            (3, "linux", b"c", SRC, 12),
            (4, "bsm", b"d", OTHER, 14),
        ]
    assert spool.try_append_one("linux", b"late", SRC, 15, "conn") is None
