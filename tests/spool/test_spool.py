"""Behaviour of the durable spool: round trips, ids, group commit, the byte limit, restart."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest

from auditrecv.config import Config
from auditrecv.spool import (
    RecordTooLarge,
    Source,
    Spool,
    SpoolClosed,
    SpoolError,
    SpoolFull,
    SpoolRecord,
    iter_records,
)

SRC_A = Source(
    transport="audit_remote",
    peer="192.0.2.7",
    peer_port=40123,
    mech="krb5",
    principal="host/cn42.example.com@EXAMPLE.COM",
    authenticated=True,
    listener="audit_remote",
)
SRC_B = Source(transport="audisp_remote", peer="2001:db8::1", peer_port=60000, listener="audisp_remote")
SRC_FILE = Source(transport="import", peer="/var/audit/20261122.not_terminated.\udcff")  # surrogateescape'd name


def rec(payload: bytes, source: Source = SRC_A, kind: str = "bsm", ns: int = 1_763_800_000_123_456_789) -> SpoolRecord:
    return SpoolRecord(kind, payload, source, ns)  # type: ignore[arg-type]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "spool.db"


async def test_round_trip_exact_bytes_sources_and_ids(path: Path) -> None:
    records = [
        rec(b"\x14\x00\x00\x00\x3a\x0b\x00\x00", SRC_A),
        rec(b"type=SYSCALL msg=audit(1763800000.123:42): arch=c000003e", SRC_B, "linux", 1),
        rec(b"", SRC_FILE),
        rec(b"\x00" * 3 + b"\xff\xfe invalid utf-8 \xc3\x28", SRC_A, ns=2**62),
    ]
    async with await Spool.open(path) as spool:
        first = await spool.append(records[:2])
        second = await spool.append(records[2:])
        assert first == [1, 2] and second == [3, 4]
        assert spool.count() == 4 and spool.last_id == 4
        got = await spool.read(0, 100)
        assert got == list(zip([1, 2, 3, 4], records, strict=True))
        assert [type(r.payload) for _, r in got] == [bytes] * 4
        assert got[2][1].source.peer == SRC_FILE.peer  # lone surrogate survived
        assert await spool.read(2, 1) == [(3, records[2])]
        assert await spool.read(4, 10) == []
        assert await spool.delete([1, 3, 999]) == 2
        assert await spool.read(0, 10) == [(2, records[1]), (4, records[3])]
        assert spool.count() == 2
    # Reopen: everything not deleted is there, and ids continue after the highest ever given.
    async with await Spool.open(path) as spool:
        assert spool.count() == 2
        assert await spool.read(0, 10) == [(2, records[1]), (4, records[3])]
        assert await spool.append([rec(b"next")]) == [5]
        assert list(iter_records(path)) == [(2, records[1]), (4, records[3]), (5, rec(b"next"))]


async def test_delete_takes_stretches_of_ids_and_only_those(path: Path) -> None:
    """Deletes run one statement per stretch of consecutive ids: unsorted, repeated and unknown ids too."""
    async with await Spool.open(path) as spool:
        ids = await spool.append([rec(b"r%d" % i) for i in range(10)])
        assert ids == list(range(1, 11))
        assert await spool.delete([8, 2, 3, 4, 4, 7, 10, 11]) == 6
        assert [rid for rid, _ in await spool.read(0, 100)] == [1, 5, 6, 9]
        assert spool.count() == 4


async def test_ids_never_reused_after_emptying_and_restart(path: Path) -> None:
    async with await Spool.open(path) as spool:
        ids = await spool.append([rec(b"a"), rec(b"b", SRC_B)])
        assert await spool.delete(ids) == 2
        assert spool.count() == 0
        assert await spool.append([rec(b"c", SRC_B)]) == [3]
        assert await spool.delete([3]) == 1
    async with await Spool.open(path) as spool:
        assert spool.count() == 0
        assert await spool.append([rec(b"d", SRC_FILE)]) == [4]
        assert await spool.read(0, 10) == [(4, rec(b"d", SRC_FILE))]


async def test_settings_from_config(tmp_path: Path) -> None:
    cfg = Config(state_dir=str(tmp_path / "state"))
    async with await Spool.open(cfg.spool_path, cfg.spool) as spool:
        assert spool.max_bytes == cfg.spool.max_bytes
        assert spool.low_water_bytes == int(cfg.spool.max_bytes * cfg.spool.low_water_ratio)
        assert spool.path == tmp_path / "state" / "spool.db"
    assert (tmp_path / "state" / "spool.db").stat().st_mode & 0o077 == 0  # audit data: owner only


async def test_group_commit_shares_commits(path: Path) -> None:
    """100 concurrent appenders with the default commit_delay: far fewer commits than appends."""
    async with await Spool.open(path, commit_delay=0.002, ack_journal=False) as spool:
        ids = await asyncio.gather(*(spool.append([rec(b"%d" % i)]) for i in range(100)))
        flat = sorted(i for chunk in ids for i in chunk)
        assert flat == list(range(1, 101))
        assert spool.metrics.committed == 100
        # Without grouping this would be 100; a loaded machine may split a group a few times.
        assert spool.metrics.commits <= 25
        assert spool.metrics.records_per_commit >= 4


async def test_group_commit_queues_behind_inflight_commit(path: Path) -> None:
    """Even with commit_delay 0: appends arriving during a commit all ride on the next one."""
    async with await Spool.open(path, commit_delay=0, ack_journal=False) as spool:
        store = spool._writer._store
        gate = threading.Event()
        entered = threading.Event()
        real = store.run_group

        def slow_first_group(*args):  # type: ignore[no-untyped-def]
            entered.set()
            gate.wait()
            return real(*args)

        store.run_group = slow_first_group  # type: ignore[method-assign]
        first = asyncio.ensure_future(spool.append([rec(b"first")]))
        await asyncio.to_thread(entered.wait)  # the writer is now "inside" the first commit
        store.run_group = real  # type: ignore[method-assign]
        rest = [asyncio.ensure_future(spool.append([rec(b"%d" % i)])) for i in range(100)]
        await asyncio.sleep(0)  # let all 100 queue up
        gate.set()
        assert await first == [1]
        results = await asyncio.gather(*rest)
        assert sorted(i for r in results for i in r) == list(range(2, 102))
        assert spool.metrics.commits == 2
        assert spool.metrics.max_records_per_commit == 100


async def test_byte_limit_backpressure_low_water_and_resume(path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="auditrecv.spool")
    max_bytes = 256 * 1024
    payload = bytes(range(256)) * 4  # 1 KiB
    async with await Spool.open(path, max_bytes=max_bytes, low_water_ratio=0.5, commit_delay=0) as spool:
        acked: list[tuple[int, SpoolRecord]] = []
        states = [spool.state]
        with pytest.raises(SpoolFull) as full:
            for n in range(10_000):
                r = rec(payload + n.to_bytes(4, "big"))
                (rid,) = await spool.append([r])
                acked.append((rid, r))
                states.append(spool.state)
        assert full.value.reason == "limit" and full.value.max_bytes == max_bytes
        assert spool.state == "full"
        states.append(spool.state)
        assert states[0] == "ok" and "low" in states and states[-1] == "full"
        assert states.index("low") < states.index("full")
        # Bounded by bytes on disk: the database file did not grow past the limit.
        assert path.stat().st_size <= max_bytes
        assert spool.bytes_used <= max_bytes
        assert 150 < len(acked) == spool.count()  # most of the space holds records, none dropped
        refused_before = spool.metrics.refused
        for _ in range(50):  # refused at once while full, each time, without losing anything
            with pytest.raises(SpoolFull):
                await spool.append([rec(b"x")])
        assert spool.metrics.refused == refused_before + 50
        assert spool.metrics.full_events == 1
        waiter = asyncio.ensure_future(spool.wait_for_space())
        assert await spool.wait_for_space(timeout=0.01) is False
        assert not waiter.done()
        # Deleting a few records is not enough to resume (hysteresis down to the low-water mark)...
        await spool.delete([rid for rid, _ in acked[:5]])
        assert spool.state == "full" and not waiter.done()
        # ...deleting most is.
        await spool.delete([rid for rid, _ in acked[5:-20]])
        assert await waiter is True
        assert spool.state == "ok"
        new_id = await spool.append([rec(b"after")])
        assert new_id == [acked[-1][0] + 1]
        assert await spool.read(0, 100) == [*acked[-20:], (new_id[0], rec(b"after"))]
    full_logs = [r for r in caplog.records if "spool full" in r.getMessage()]
    recovered_logs = [r for r in caplog.records if "accepting records again" in r.getMessage()]
    assert len(full_logs) == 1 and full_logs[0].levelno == logging.WARNING
    assert len(recovered_logs) == 1


async def test_concurrent_appends_into_a_full_spool_store_nothing_partial(path: Path) -> None:
    """Appends that race into the limit are each wholly stored or wholly refused."""
    async with await Spool.open(path, max_bytes=128 * 1024, commit_delay=0.002) as spool:
        batches = [[rec(bytes([b]) * 900 + bytes([i])) for i in range(5)] for b in range(100)]
        outcomes = await asyncio.gather(*(spool.append(b) for b in batches), return_exceptions=True)
        stored = [(ids, b) for ids, b in zip(outcomes, batches, strict=True) if isinstance(ids, list)]
        refused = [o for o in outcomes if not isinstance(o, list)]
        assert stored and refused and all(isinstance(o, SpoolFull) for o in refused)
        expected = sorted((i, r) for ids, b in stored for i, r in zip(ids, b, strict=True))
        assert await spool.read(0, 10_000) == expected
        assert spool.state == "full"


async def test_append_bigger_than_the_spool_is_rejected_not_full(path: Path) -> None:
    async with await Spool.open(path, max_bytes=64 * 1024) as spool:
        with pytest.raises(RecordTooLarge):
            await spool.append([rec(b"z" * (128 * 1024))])
        assert spool.state == "ok" and spool.count() == 0
        assert await spool.append([rec(b"small")]) == [1]


async def test_wait_for_records_is_woken_by_commit(path: Path) -> None:
    async with await Spool.open(path) as spool:
        assert await spool.wait_for_records(0, timeout=0.01) is False
        waiter = asyncio.ensure_future(spool.wait_for_records(0))
        await asyncio.sleep(0)
        assert not waiter.done()
        await spool.append([rec(b"wake")])
        assert await waiter is True
        assert await spool.wait_for_records(1, timeout=0.01) is False
        await spool.delete([1])
        # Empty spool: nothing to wait for even though id 1 > 0 was committed once.
        assert await spool.wait_for_records(0, timeout=0.01) is False
        late = asyncio.ensure_future(spool.wait_for_records(1))
    assert await late is False  # close wakes waiters


async def test_close_commits_queued_appends_then_refuses(path: Path) -> None:
    spool = await Spool.open(path, commit_delay=0.05)
    pending = asyncio.ensure_future(spool.append([rec(b"queued")]))
    await asyncio.sleep(0)
    await spool.close()
    assert await pending == [1]
    with pytest.raises(SpoolClosed):
        await spool.append([rec(b"late")])
    assert list(iter_records(path)) == [(1, rec(b"queued"))]


async def test_one_process_per_spool(path: Path) -> None:
    async with await Spool.open(path):
        with pytest.raises(SpoolError, match="in use"):
            await Spool.open(path)
    async with await Spool.open(path):  # released on close
        pass


async def test_not_a_spool_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    junk = b"this is not a database" * 100
    path.write_bytes(junk)
    with pytest.raises(SpoolError, match="cannot open"):
        await Spool.open(path)
    assert path.read_bytes() == junk


async def test_normal_synchronous_and_wal_mode(path: Path) -> None:
    async with await Spool.open(path, synchronous="normal") as spool:
        await spool.append([rec(b"n")])
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


async def test_bad_record_type_is_a_caller_error(path: Path) -> None:
    async with await Spool.open(path) as spool:
        with pytest.raises(TypeError):
            await spool.append([SpoolRecord("bsm", "text", SRC_A, 0)])  # type: ignore[arg-type]
        assert await spool.append([SpoolRecord("bsm", bytearray(b"ba"), SRC_A, 0)]) == [1]  # type: ignore[arg-type]
        assert (await spool.read(0, 1))[0][1].payload == b"ba"


@pytest.fixture
def small_filesystem(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real 8 MiB filesystem (tmpfs), so that the disk, not spool.max_bytes, runs out."""
    mount_point = tmp_path / "small-fs"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(mount_point)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def eat_all_space(path: Path) -> None:
    with path.open("wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass
        try:
            while True:
                f.write(b"\0" * 512)
        except OSError:
            pass


async def test_full_filesystem_refuses_keeps_acked_and_recovers(
    small_filesystem: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="auditrecv.spool")
    clock = [1000.0]  # probes of the full filesystem happen when this test says they are due
    filler = small_filesystem / "someone-elses-file"
    filler.write_bytes(b"\0" * (2 * 1024 * 1024))
    path = small_filesystem / "spool.db"
    payload = bytes(range(256)) * 4
    async with await Spool.open(
        path, max_bytes=1 << 30, commit_delay=0, reserve_bytes=1 << 20, clock=lambda: clock[0]
    ) as spool:
        acked: list[tuple[int, SpoolRecord]] = []
        with pytest.raises(SpoolFull) as full:
            for n in range(100_000):
                r = rec(payload + n.to_bytes(4, "big"))
                acked.extend(zip(await spool.append([r]), [r], strict=True))
        assert full.value.reason == "disk"
        assert spool.state == "full" and spool.metrics.full_events == 1
        assert len(acked) > 1000
        assert await spool.read(0, 100_000) == acked  # nothing acknowledged lost, nothing extra
        # The released reserve lets deletes through on the full filesystem...
        assert await spool.delete([rid for rid, _ in acked[:400]]) == 400
        assert not Path(f"{path}.reserve").exists()
        # Appends wait until the filesystem has room for the reserve again.
        eat_all_space(small_filesystem / "another-file")
        clock[0] += 1.5  # the first probe is due: this append finds the filesystem still full
        with pytest.raises(SpoolFull):
            await spool.append([rec(b"still full")])
        assert spool.state == "full"
        filler.unlink()
        (small_filesystem / "another-file").unlink()
        clock[0] += 10
        r = rec(b"after the disk was full")
        (new_id,) = await spool.append([r])
        assert spool.state != "full"
        assert Path(f"{path}.reserve").stat().st_size == 1 << 20
        assert await spool.read(0, 100_000) == [*acked[400:], (new_id, r)]
    assert list(iter_records(path)) == [*acked[400:], (new_id, r)]
    transitions = [m for m in caplog.messages if "spool full" in m or "accepting records again" in m]
    assert len(transitions) == 2, transitions


async def test_a_really_full_filesystem_fills_drains_and_refills_with_no_sender_probing(small_filesystem: Path) -> None:
    """The chaos full-disk case, without the network: the database grows until the filesystem is full,
    the pipeline drains it, and then:
    - the spool gives its free pages back to the filesystem and takes records again on its own (no
      sender is left to append), although the file took all the room there was;
    - every delete goes through on the full filesystem, cycle after cycle: what the WAL holds uncopied
      must fit in the released reserve."""
    clock = [1000.0]
    path = small_filesystem / "spool.db"
    payload = bytes(range(256)) * 6
    async with await Spool.open(path, max_bytes=64 << 20, commit_delay=0, clock=lambda: clock[0]) as spool:
        for cycle in range(3):
            ids: list[int] = []
            with pytest.raises(SpoolFull) as full:
                for n in range(100_000):
                    ids.extend(await spool.append([rec(payload + n.to_bytes(4, "big"))]))
            assert full.value.reason == "disk" and len(ids) > 1000, (cycle, len(ids))
            for start in range(0, len(ids), 250):
                assert await spool.delete(ids[start : start + 250]) == len(ids[start : start + 250]), cycle
            assert spool.count() == 0
            clock[0] += 60  # every probe is due; nobody appends
            async with asyncio.timeout(10):
                while spool.state == "full":
                    await asyncio.sleep(0.02)
            assert Path(f"{path}.reserve").exists()
            assert path.stat().st_size < 2 << 20, "the drained spool kept the filesystem's space"


async def test_cursor_reader_never_skips_while_writers_append(path: Path) -> None:
    """The pipeline's cursor (read after the last id seen) must see every record exactly once."""
    async with await Spool.open(path, commit_delay=0.001) as spool:
        written: dict[int, SpoolRecord] = {}

        async def writer(w: int) -> None:
            for i in range(40):
                r = rec(b"%d/%d" % (w, i), SRC_B if i % 2 else SRC_A)
                for rid in await spool.append([r, r] if i % 5 == 0 else [r]):
                    written[rid] = r

        seen: list[tuple[int, SpoolRecord]] = []

        async def pipeline() -> None:
            cursor = 0
            while len(seen) < 50 * 48:
                if not await spool.wait_for_records(cursor, timeout=5):
                    raise AssertionError(f"stuck at {cursor} with {len(seen)} seen")
                batch = await spool.read(cursor, 37)
                seen.extend(batch)
                if batch:
                    cursor = batch[-1][0]
                    await spool.delete([rid for rid, _ in batch[::2]])  # deletes interleave too

        await asyncio.gather(pipeline(), *(writer(w) for w in range(50)))
        assert [rid for rid, _ in seen] == list(range(1, 50 * 48 + 1))
        assert dict(seen) == written


async def test_cancelled_append_is_all_or_nothing(path: Path) -> None:
    # The SQLite path: a journaled append completes without an await point, so nothing can cancel it.
    async with await Spool.open(path, commit_delay=0.01, ack_journal=False) as spool:
        await spool.append([rec(b"first")])  # a previous group makes the writer wait for company
        batch = [rec(b"a"), rec(b"b"), rec(b"c")]
        task = asyncio.ensure_future(spool.append(batch))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await spool.append([rec(b"after")])  # the writer carried on
        stored = [r.payload for _, r in await spool.read(0, 10)]
        assert stored in ([b"first", b"a", b"b", b"c", b"after"], [b"first", b"after"])


async def test_out_of_range_time_is_refused_before_the_writer(path: Path) -> None:
    async with await Spool.open(path) as spool:
        with pytest.raises(ValueError):
            await spool.append([rec(b"t", ns=2**63)])
        assert await spool.append([rec(b"t", ns=2**63 - 1)]) == [1]


async def test_a_group_that_cannot_be_written_fails_alone(path: Path) -> None:
    async with await Spool.open(path, ack_journal=False) as spool:
        store = spool._writer._store
        real = store._transaction

        def broken(appends, deletes, journaled):  # type: ignore[no-untyped-def]
            store._transaction = real  # type: ignore[method-assign]
            raise RuntimeError("simulated bug")

        store._transaction = broken  # type: ignore[method-assign]
        with pytest.raises(SpoolError, match="simulated bug"):
            await spool.append([rec(b"lost, and not acknowledged")])
        assert await spool.append([rec(b"next")]) == [1]
        assert spool.metrics.errors == 1


async def test_unusable_location_is_a_spool_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    with pytest.raises(SpoolError, match="cannot open spool"):
        await Spool.open(blocker / "spool.db")  # parent is a file, not a directory
