"""Where records go when they cannot go on: an index that refuses them, a spool at its limit, a disk that is
really full. Nothing acknowledged is lost, nothing is stored twice, and the flow resumes by itself."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.chaos.support import (
    EVENT_SECONDS,
    POISON_SECONDS,
    Case,
    IllumosHost,
    LinuxHost,
    Receiver,
    Verdicts,
    assert_exactly_once,
    assert_no_record_twice_in_an_event,
    assert_rss_bounded,
    bsm_record,
    bsm_records,
    chaos_table,
    eventually,
    linux_lines,
    run_all,
    settle_and_count,
    wait_until,
)
from tests.e2e.test_spool_sink_e2e import FlakyProxy
from tests.infra.audisp import AudispRemote
from tests.infra.engine import SearchEngine

pytestmark = [pytest.mark.chaos, pytest.mark.engine, pytest.mark.audisp]

Factory = Callable[..., AudispRemote]


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


async def test_documents_refused_by_the_mapping_become_dead_letters_and_later_records_flow(
    chaos_engine: SearchEngine, audisp_remote_factory: Factory, tmp_path: Path
) -> None:
    """One day's index exists with a strict mapping that refuses every auditrecv document. Every tenth
    record is dated that day: each becomes a dead letter (once), and the records between and after
    them are indexed normally."""
    case = Case("mapping")
    poison_index = f"{case.prefix}-{time.strftime('%Y.%m.%d', time.gmtime(POISON_SECONDS))}"
    chaos_engine.request(
        "PUT",
        f"/{poison_index}",
        {
            "settings": {"number_of_shards": 1, "number_of_replicas": 0},
            "mappings": {"dynamic": "strict", "properties": {"@timestamp": {"type": "date"}}},
        },
    )
    rx = Receiver(chaos_table(tmp_path, chaos_engine.url, case), tmp_path / "rx")
    poisoned: set[str] = set()
    illumos = []
    for k in range(2):
        records = []
        for i in range(2000):
            marker = case.marker(f"i{k}", i)
            seconds = POISON_SECONDS if i % 10 == 9 else EVENT_SECONDS
            if seconds == POISON_SECONDS:
                poisoned.add(marker)
            records.append(bsm_record(marker, i, seconds=seconds))
        illumos.append(IllumosHost(f"i{k}", [("127.0.0.1", rx.audit_remote_port)], records))
    linux = []
    for k in range(2):
        lines, poisoned_events = linux_lines(case, f"l{k}", 200, poison_every=10)
        poisoned |= poisoned_events
        linux.append(LinuxHost(f"l{k}", audisp_remote_factory, rx.audisp_remote_port, lines))
    try:
        await asyncio.to_thread(rx.start)
        for host in linux:
            host.start()
        await run_all(*illumos, *linux)
        held = await settle_and_count(chaos_engine, case, rx)
        dlq = case.prefix + "-dlq-"
        misplaced = {m for m in poisoned if not held.indices.get(m, dlq).startswith(dlq)}
        stray = {m for m in case.all_markers() - poisoned if held.indices.get(m, "").startswith(dlq)}
        with Verdicts() as v:
            v.check(assert_exactly_once, held, case, case.all_markers())
            v.that(not misplaced, f"refused records not dead-lettered: {sorted(misplaced)[:5]}")
            v.that(not stray, f"good records dead-lettered: {sorted(stray)[:5]}")
            v.that(chaos_engine.count(poison_index) == 0, "the refusing index holds documents")
            dead = rx.metric("auditrecv_documents_total", outcome="dead_lettered")
            v.that(dead == len(poisoned), f"{dead} dead letters for {len(poisoned)} refused records")
            v.check(assert_rss_bounded, rx)
            v.check(assert_no_record_twice_in_an_event, held)
    finally:
        for host in illumos:
            await host.close()
        await asyncio.to_thread(rx.stop)
        chaos_engine.delete_indices(case.pattern)


async def _fill_hold_drain(
    engine: SearchEngine, case: Case, rx: Receiver, proxy: FlakyProxy, factory: Factory, full_reason: str
) -> None:
    """Engine unreachable while big records pour in until the spool refuses them; check the senders are
    held (illumos window full, audisp-remote's record withheld), then give the engine back and count."""
    illumos = [
        IllumosHost(f"i{k}", [("127.0.0.1", rx.audit_remote_port)], bsm_records(case, f"i{k}", 4000, pad=1500))
        for k in range(2)
    ]
    linux = [
        LinuxHost(f"l{k}", factory, rx.audisp_remote_port, linux_lines(case, f"l{k}", 150, pad=600)[0])
        for k in range(2)
    ]
    senders: asyncio.Task[None] | None = None
    try:
        await asyncio.to_thread(rx.start)
        for host in linux:
            host.start()
        senders = asyncio.create_task(run_all(*illumos, *linux))
        await wait_until(f"the spool full ({full_reason})", lambda: rx.health()[1].get("spool") == "full")
        await wait_until("the illumos hosts held (window full)", lambda: all(h.unacked == h.qsize for h in illumos))
        await wait_until(
            "audisp-remote's record held",
            lambda: rx.metric("auditrecv_spool_full_waits_total", listener="audisp_remote") >= 1,
        )
        assert not senders.done()
        assert all(h.acked < len(h.records) for h in illumos)
        stored = rx.metric("auditrecv_spool_records")
        proxy.come_back()
        try:
            await senders
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nreceiver errors: {rx.errors()}") from None
        held = await settle_and_count(engine, case, rx)
        health_ok_again = await eventually(lambda: rx.health()[0] == 200 and rx.health()[1].get("spool") == "ok", 30.0)
        with Verdicts() as v:
            v.that(health_ok_again, f"/health not ok once the spool drained: {rx.health()}")
            v.check(assert_exactly_once, held, case, case.all_markers())
            v.that(stored < len(case.all_markers()), "the spool held everything: it never was full")
            v.check(assert_rss_bounded, rx)
            v.that(all(h.dropped == 0 for h in illumos), "an illumos host dropped records")
            v.check(assert_no_record_twice_in_an_event, held)
    finally:
        await _cancel(senders)
        for host in illumos:
            await host.close()


async def test_spool_limit_holds_senders_then_drains(
    chaos_engine: SearchEngine, audisp_remote_factory: Factory, tmp_path: Path
) -> None:
    case = Case("spoolfull")
    proxy = await FlakyProxy(chaos_engine.url).start()
    proxy.go_down()
    rx = Receiver(chaos_table(tmp_path, proxy.url, case, spool={"max_bytes": "1MiB"}), tmp_path / "rx")
    try:
        await _fill_hold_drain(chaos_engine, case, rx, proxy, audisp_remote_factory, "spool.max_bytes")
    finally:
        await asyncio.to_thread(rx.stop)
        await proxy.close()
        chaos_engine.delete_indices(case.pattern)


TMPFS_SIZE = "12m"


async def test_real_full_disk_holds_senders_then_drains(
    chaos_engine: SearchEngine, audisp_remote_factory: Factory, tmp_path: Path
) -> None:
    """The spool on a 12 MiB tmpfs with a 64 MiB spool.max_bytes: the filesystem fills long before the
    limit, SQLite hits ENOSPC for real."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a {TMPFS_SIZE} tmpfs for the spool (needs root): {mounted.stderr.strip()}")
    case = Case("diskfull")
    proxy = await FlakyProxy(chaos_engine.url).start()
    proxy.go_down()
    rx = Receiver(chaos_table(disk, proxy.url, case, spool={"max_bytes": "64MiB"}), tmp_path / "rx")
    try:
        await _fill_hold_drain(chaos_engine, case, rx, proxy, audisp_remote_factory, "filesystem")
        assert "filesystem full" in rx.log_path.read_text(), "the spool never met ENOSPC: make the tmpfs smaller"
    finally:
        await asyncio.to_thread(rx.stop)
        await proxy.close()
        subprocess.run(["umount", str(disk)], capture_output=True)
        if disk.is_mount():
            subprocess.run(["umount", "-l", str(disk)], capture_output=True)
        chaos_engine.delete_indices(case.pattern)
