"""Hostile clients beside good senders: the good senders complete, every one of their records is in the
engine exactly once, the receiver's memory stays bounded, and the hostile client is dealt with.

Several cases depend on fixes made in parallel with this suite; what they assume (config keys, bounds)
is in tests/chaos/assumed.py.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests import bsm_builders
from tests.chaos import assumed, hostile
from tests.chaos.support import (
    EVENT_SECONDS,
    RSS_LIMIT_KIB,
    Case,
    Holdings,
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
    linux_single_line,
    run_all,
    settle_and_count,
    wait_until,
)
from tests.chaos.support import linux_lines as make_linux_lines
from tests.infra.audisp import AudispRemote
from tests.infra.engine import SearchEngine

pytestmark = [pytest.mark.chaos, pytest.mark.engine, pytest.mark.audisp]

Factory = Callable[..., AudispRemote]


class Beside:
    """A receiver and four good senders (two illumos hosts, two real audisp-remote), for one case."""

    def __init__(
        self, engine: SearchEngine, factory: Factory, tmp: Path, name: str, engine_url: str = "", **config: Any
    ) -> None:
        self.engine = engine
        self.case = Case(name)
        self.rx = Receiver(chaos_table(tmp, engine_url or engine.url, self.case, **config), tmp / "rx")
        self.illumos = [
            IllumosHost(
                f"i{k}", [("127.0.0.1", self.rx.audit_remote_port)], bsm_records(self.case, f"i{k}", 2000), rate=400
            )
            for k in range(2)
        ]
        self.linux = [
            LinuxHost(f"l{k}", factory, self.rx.audisp_remote_port, make_linux_lines(self.case, f"l{k}", 200)[0])
            for k in range(2)
        ]
        self.good = self.case.all_markers()

    @property
    def ports(self) -> dict[hostile.Protocol, int]:
        return {"audit_remote": self.rx.audit_remote_port, "audisp_remote": self.rx.audisp_remote_port}

    async def start(self) -> None:
        await asyncio.to_thread(self.rx.start)
        for host in self.linux:
            host.start()

    async def run(self, *hostiles: Awaitable[Any]) -> list[Any]:
        """Good senders and hostile clients at once; returns the hostile results."""
        results = await asyncio.gather(run_all(*self.illumos, *self.linux), *hostiles)
        return list(results[1:])

    async def settle(self) -> Holdings:
        return await settle_and_count(self.engine, self.case, self.rx)

    def common_verdicts(
        self, v: Verdicts, held: Holdings, *, extra_allowed: set[str] = frozenset(), rss_limit_kib: int = RSS_LIMIT_KIB
    ) -> None:
        """What every case asserts: good senders' records exactly once, nothing dropped, RSS bounded."""
        v.check(assert_exactly_once, held, self.case, self.good, extra_allowed=extra_allowed)
        v.that(all(h.dropped == 0 for h in self.illumos), "a good illumos host dropped records")
        v.check(assert_rss_bounded, self.rx, limit_kib=rss_limit_kib)
        v.check(assert_no_record_twice_in_an_event, held)

    async def close(self) -> None:
        for host in self.illumos:
            await host.close()
        await asyncio.to_thread(self.rx.stop)
        self.engine.delete_indices(self.case.pattern)


@pytest.fixture
async def beside(chaos_engine: SearchEngine, audisp_remote_factory: Factory, tmp_path: Path) -> Any:
    made: list[Beside] = []

    def make(name: str, **config: Any) -> Beside:
        b = Beside(chaos_engine, audisp_remote_factory, tmp_path, name, **config)
        made.append(b)
        return b

    yield make
    for b in made:
        await b.close()


async def test_garbage_is_refused_beside_good_senders(beside: Callable[..., Beside]) -> None:
    b = beside("garbage")
    await b.start()
    (report,) = await b.run(asyncio.to_thread(hostile.garbage, b.ports))
    held = await b.settle()
    with Verdicts() as v:
        v.that(report.kept_open == [] and report.closed_by_receiver == report.connections, f"{report}")
        b.common_verdicts(v, held)


async def test_oversized_frames_are_refused_beside_good_senders(beside: Callable[..., Beside]) -> None:
    b = beside("oversized")
    await b.start()
    (report,) = await b.run(asyncio.to_thread(hostile.oversized, b.ports))
    held = await b.settle()
    with Verdicts() as v:
        v.that(report.kept_open == [] and report.closed_by_receiver == report.connections, f"{report}")
        b.common_verdicts(v, held)


async def test_client_that_never_reads_acks_is_held_to_a_window(beside: Callable[..., Beside]) -> None:
    """An illumos-protocol client pushes records as fast as it can and never reads an ack. Without a
    per-connection window the receiver reads everything and queues the acks in memory for ever."""
    b = beside("noread")
    marker = b.case.marker("h0", 0)
    # more than any window plus what the kernel's socket buffers can hold (a few MB of acks)
    records = 150_000 + 4 * assumed.UNREAD_ACK_WINDOW_MAX_RECORDS
    await b.start()
    (report,) = await b.run(
        asyncio.to_thread(
            hostile.never_reads_acks,
            b.rx.audit_remote_port,
            bsm_record(marker, 0),
            records,
            stall_seconds=3.0,
            timeout=90.0,
        )
    )
    held = await b.settle()
    with Verdicts() as v:
        v.that(
            report.notes["read_by_receiver"] < records,
            f"the receiver read all {records} records of a client that never read an ack (no per-connection "
            f"window): {report.notes}",
        )
        b.common_verdicts(v, held, extra_allowed={marker})


@pytest.mark.parametrize("protocol", ["audit_remote", "audisp_remote"])
async def test_slowloris_is_cut_off_beside_good_senders(beside: Callable[..., Beside], protocol: str) -> None:
    """A frame dribbled one byte a second: the receiver must close the connection once a frame has
    been incomplete for the partial-frame timeout, while good senders go on."""
    b = beside(f"slow{protocol[6:9]}", **assumed.SLOWLORIS_CONFIG[protocol])
    await b.start()
    bound = assumed.FRAME_TIMEOUT_SECONDS * 3 + 10
    port = b.ports[protocol]  # type: ignore[index]
    (report,) = await b.run(asyncio.to_thread(hostile.slowloris, protocol, port, 1.0, bound, lambda: False))
    held = await b.settle()
    with Verdicts() as v:
        v.that(report.closed_by_receiver == 1, f"slowloris not cut off: {report.kept_open} ({report.notes})")
        b.common_verdicts(v, held)


async def test_silent_connections_up_to_the_limit_do_not_lock_out_good_senders(
    beside: Callable[..., Beside],
) -> None:
    """One peer opens as many silent connections as the listener allows in all; a per-peer cap keeps
    it from taking every slot, so the good senders (another address) still get in."""
    b = beside("silent", **assumed.SILENT_CONNECTIONS_CONFIG)
    await b.start()
    good_done = threading.Event()
    opened = {proto: threading.Event() for proto in b.ports}
    silent_tasks = [
        asyncio.ensure_future(
            asyncio.to_thread(
                hostile.silent,
                proto,
                port,
                assumed.GLOBAL_CONNECTION_LIMIT,
                lambda: not good_done.is_set(),
                240.0,
                opened[proto],
            )
        )
        for proto, port in b.ports.items()
    ]
    try:
        await wait_until("the silent peer's connections made", lambda: all(e.is_set() for e in opened.values()))
        await b.run()
    finally:
        good_done.set()
        reports = await asyncio.gather(*silent_tasks)
    held = await b.settle()
    with Verdicts() as v:
        for report in reports:
            v.that(report.notes["open_at_end"] <= assumed.PER_PEER_CONNECTION_CAP, f"over the per-peer cap: {report}")
        b.common_verdicts(v, held)


async def test_huge_records_are_stored_once_within_bounds(
    beside: Callable[..., Beside], chaos_engine: SearchEngine, audisp_remote_factory: Factory
) -> None:
    """Records as big as the protocols allow and built to blow up when decoded: one illumos record of
    ~4 MiB made of one-character text tokens (~800 000 tokens), one Linux event of 1000 records of ~8 KB.
    Each is in the engine exactly once (as a document or a dead letter), no stored document exceeds the
    document cap, the receiver's memory stays bounded, and the good senders are not held up.

    The engine is reached through a guard refusing bulk bodies over 16 MiB (see EngineGuard)."""
    guard = await hostile.EngineGuard(chaos_engine.url, max_body=16 * 1024 * 1024).start()
    try:
        b = beside("huge", engine_url=guard.url)
        huge_bsm_marker = b.case.marker("h0", 0)
        one_char_texts = b"\x28\x00\x02a\x00" * ((4 * 1024 * 1024 - 128 * 1024) // 5)
        huge_record = bsm_builders.record(
            bsm_builders.header32(6152, EVENT_SECONDS, 0),
            bsm_builders.text(huge_bsm_marker),
            one_char_texts,
            bsm_builders.return32(0, 0),
            trailer=True,
        )
        huge_illumos = IllumosHost("h0", [("127.0.0.1", b.rx.audit_remote_port)], [huge_record])
        huge_linux_marker = b.case.marker("h1", 1)
        node = f"h1-{b.case.run}"
        head = f"node={node} type=%s msg=audit({EVENT_SECONDS}.000:7777): "
        lines = [linux_single_line(b.case.marker("h1", 0), node, 7776, "session_open")]
        lines.append(
            (
                head % "SYSCALL" + f'arch=c000003e syscall=59 success=yes exit=0 items=999 key="{huge_linux_marker}"'
            ).encode()
        )
        for i in range(999):
            name = f"/chaos/{i:04d}/" + "n" * 7900
            lines.append(
                (head % "PATH" + f'item={i} name="{name}" inode=1 dev=fd:00 mode=0100644 nametype=NORMAL').encode()
            )
        lines.append(linux_single_line(b.case.marker("h1", 2), node, 7778))
        huge_linux = LinuxHost("h1", audisp_remote_factory, b.rx.audisp_remote_port, lines)
        await b.start()
        huge_linux.start()
        await b.run(run_all(huge_illumos, huge_linux))
        await huge_illumos.close()
        held = await b.settle()
        huge = b.case.markers_of("h0", "h1")
        with Verdicts() as v:
            v.that(not held.lost(huge), f"huge records lost: {sorted(held.lost(huge))}")
            v.that(
                held.largest_source <= assumed.DOCUMENT_CAP_BYTES,
                f"a stored document of {held.largest_source} bytes (cap assumed: {assumed.DOCUMENT_CAP_BYTES}); "
                f"bulk bodies refused by the guard: {guard.refused}",
            )
            # Decoding a max-size record of one-byte tokens (max_record_token, 4 MiB) costs the Python decoder
            # about 100 bytes per byte of record before the document limits cut it: bounded by that setting,
            # not by the generous idle bound. The native decoder (issue 12) is to cap tokens while decoding.
            b.common_verdicts(v, held, extra_allowed=huge, rss_limit_kib=assumed.HUGE_RECORD_RSS_LIMIT_KIB)
    finally:
        await guard.close()
