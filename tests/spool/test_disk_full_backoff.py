"""A really full filesystem must not make the spool flap (issue 14, defect 7).

Releasing the disk reserve is what makes room on a full filesystem; taking it back as soon as it
fits fills the disk again with the next append, and the reserve is released again: the chaos probe
saw 29 warnings and a flapping /health in 20 s. The spool now retakes the reserve only once twice
its size is free, checking with backoff, and says so once on release and once on recovery.

The full filesystem is simulated without root or a tmpfs: SQLite's own ``max_page_count`` makes
the next write that needs a page fail with SQLITE_FULL (the error a full disk gives), and the
free-space probe and the clock are the spool's injectable ones.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from auditrecv.spool import Source, Spool, SpoolFull, SpoolRecord

SRC = Source(transport="audisp_remote", peer="192.0.2.9", peer_port=50000, listener="audisp_remote")
MiB = 1 << 20
RESERVE = MiB


class SimulatedDisk:
    """What the spool is told about free space; counts how often it asked (= appends let through)."""

    def __init__(self, free: int) -> None:
        self.free = free
        self.asked = 0

    def free_bytes(self, directory: Path) -> int:
        self.asked += 1
        return self.free


class SimulatedClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(n: int) -> SpoolRecord:
    # Bigger than a page: every append needs new pages, so a capped database refuses every one.
    return SpoolRecord("linux", b"type=SYSCALL msg=audit(1.0:%d): " % n + b"x" * 6000, SRC, n)


async def simulated_spool(path: Path, disk: SimulatedDisk, clock: SimulatedClock) -> Spool:
    """A spool on the simulated disk and clock. Fullness is simulated inside SQLite only, so the ack
    journal (which a really full filesystem refuses too) is off; see the module docstring."""
    return await Spool.open(
        path,
        max_bytes=1 << 30,
        commit_delay=0,
        reserve_bytes=RESERVE,
        free_bytes=disk.free_bytes,
        clock=clock,
        ack_journal=False,
    )


def spool_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "auditrecv.spool" and r.levelno >= logging.WARNING]


async def test_full_filesystem_releases_once_and_retakes_only_with_room(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="auditrecv.spool")
    disk = SimulatedDisk(free=64 * MiB)
    clock = SimulatedClock()
    path = tmp_path / "spool.db"
    spool = await simulated_spool(path, disk, clock)
    try:
        stored = [i for n in range(5) for i in await spool.append([record(n)])]
        assert Path(f"{path}.reserve").stat().st_size == RESERVE

        # The filesystem fills up: SQLite cannot grow the database any more.
        conn = spool._writer._store.conn  # the writer thread is idle between awaited appends
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(SpoolFull) as full:
            await spool.append([record(100)])
        assert full.value.reason == "disk" and spool.state == "full"
        assert not Path(f"{path}.reserve").exists()
        # Releasing the reserve freed it; the filesystem is otherwise still full.
        disk.free = RESERVE + MiB // 2

        # A sender retrying once a simulated second for a minute.
        let_through: list[float] = []
        for step in range(1, 61):
            clock.now = 1000.0 + step
            asked = disk.asked
            with pytest.raises(SpoolFull):
                await spool.append([record(100 + step)])
            if disk.asked != asked:
                let_through.append(float(step))
        # Checked with backoff (1, 2, 4 s, then every 5 s), never retaken without room.
        assert let_through == [1.0, 3.0, 7.0, *(float(t) for t in range(12, 61, 5))]
        assert not Path(f"{path}.reserve").exists()
        m = spool.metrics
        assert (m.reserve_releases, m.reserve_retakes, m.full_events) == (1, 0, 1)
        assert spool.state == "full"

        # Room again (the operator cleaned up): the next check retakes the reserve and takes records.
        disk.free = 3 * MiB
        conn.execute("PRAGMA max_page_count = 1073741823")
        new_ids: list[int] = []
        for step in range(61, 61 + 6):
            clock.now = 1000.0 + step
            try:
                new_ids = await spool.append([record(1000)])
                break
            except SpoolFull:
                pass
        assert new_ids, "appends should resume within one backoff interval once there is room"
        assert spool.state != "full"
        assert Path(f"{path}.reserve").stat().st_size == RESERVE
        assert (m.reserve_releases, m.reserve_retakes, m.full_events) == (1, 1, 1)
        assert [rid for rid, _ in await spool.read(0, 100)] == [*stored, *new_ids]

        warnings = spool_messages(caplog)
        assert len(warnings) == 2, warnings
        assert "filesystem full" in warnings[0] and f"{2 * RESERVE} bytes are free" in warnings[0]
        assert "accepting records again" in warnings[1]
    finally:
        await spool.close()


async def test_no_retake_while_the_released_reserve_is_all_the_room_there_is(tmp_path: Path) -> None:
    """The exact loop of the chaos probe: the released reserve fits again, but taking it would leave
    nothing for the records. Free space must reach twice the reserve first."""
    disk = SimulatedDisk(free=64 * MiB)
    clock = SimulatedClock()
    path = tmp_path / "spool.db"
    async with await simulated_spool(path, disk, clock) as spool:
        await spool.append([record(1)])
        conn = spool._writer._store.conn
        conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")
        with pytest.raises(SpoolFull):
            await spool.append([record(2)])
        disk.free = 2 * RESERVE - 1
        for step in range(1, 200):
            clock.now = 1000.0 + step
            with pytest.raises(SpoolFull):
                await spool.append([record(2 + step)])
        assert (spool.metrics.reserve_releases, spool.metrics.reserve_retakes) == (1, 0)
        assert not Path(f"{path}.reserve").exists()


async def test_a_drained_spool_on_a_still_full_filesystem_takes_records_again(tmp_path: Path) -> None:
    """The database file never shrinks: after the pipeline drained it, the filesystem may stay short of
    twice the reserve for ever while the file's own free pages could hold every new record. Appends
    must resume then, and a waiting receiver must be told to try."""
    disk = SimulatedDisk(free=64 * MiB)
    clock = SimulatedClock()
    path = tmp_path / "spool.db"
    async with await simulated_spool(path, disk, clock) as spool:
        stored = [i for n in range(400) for i in await spool.append([record(n)])]
        conn = spool._writer._store.conn  # the writer's private connection, as in the test above
        conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")
        with pytest.raises(SpoolFull):
            await spool.append([record(999)])
        assert spool.state == "full"
        disk.free = RESERVE + MiB + MiB // 2  # room for the reserve and some WAL, not for twice the reserve
        assert await spool.delete(stored) == len(stored)  # drained: ~2.4 MiB of free pages in the file
        # No sender needs to probe: the deletes that made room end the full state (and /health's 503).
        assert spool.state != "full"
        assert await spool.wait_for_space(timeout=5) is True
        assert await spool.append([record(1000)])
        assert spool.state != "full"


async def test_a_full_spool_finds_room_again_by_itself_with_no_sender_left(tmp_path: Path) -> None:
    """The chaos full-disk case: every sender has given up (or is parked in wait_for_space) and the
    pipeline's last delete met ENOSPC, so no operation will ever ask the filesystem again. The spool's
    own probe timer must, on the same backoff schedule, or /health says "full" over an empty spool."""
    disk = SimulatedDisk(free=64 * MiB)
    clock = SimulatedClock()
    path = tmp_path / "spool.db"
    async with await simulated_spool(path, disk, clock) as spool:
        await spool.append([record(1)])
        conn = spool._writer._store.conn
        conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")
        with pytest.raises(SpoolFull):
            await spool.append([record(2)])
        assert spool.state == "full" and not Path(f"{path}.reserve").exists()

        # Still no room: probes come on the backoff schedule and change nothing.
        disk.free = RESERVE + MiB // 2
        asked = disk.asked
        clock.now += 1.5
        async with asyncio.timeout(10):
            while disk.asked == asked:
                await asyncio.sleep(0.02)
        assert spool.state == "full" and spool.metrics.reserve_retakes == 0

        # The operator makes room; nobody appends. The next probe retakes the reserve.
        disk.free = 8 * MiB
        conn.execute("PRAGMA max_page_count = 1073741823")
        clock.now += 10
        async with asyncio.timeout(10):
            while spool.state == "full":
                await asyncio.sleep(0.02)
        assert Path(f"{path}.reserve").stat().st_size == RESERVE
        assert spool.metrics.reserve_retakes == 1
        assert await spool.append([record(3)])
