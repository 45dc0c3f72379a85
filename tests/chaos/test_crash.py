"""The receiver killed with SIGKILL mid-stream, the engine frozen with SIGSTOP, and a second receiver taking
over: nothing acknowledged is lost, nothing is indexed twice."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.chaos import assumed
from tests.chaos.support import (
    Case,
    IllumosHost,
    LinuxHost,
    Receiver,
    Verdicts,
    assert_exactly_once,
    assert_no_record_twice_in_an_event,
    assert_rss_bounded,
    bsm_records,
    chaos_table,
    eventually,
    linux_lines,
    run_all,
    settle_and_count,
    wait_until,
)
from tests.infra.audisp import AudispRemote
from tests.infra.engine import SearchEngine

pytestmark = [pytest.mark.chaos, pytest.mark.engine, pytest.mark.audisp]

Factory = Callable[..., AudispRemote]
ENGINE_FROZEN_SECONDS = 60.0  # the length of the outage the issue asks for (a scenario, not a synchronisation)


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


async def test_kill9_mid_stream_twice_then_restart_both_protocols(
    chaos_engine: SearchEngine, audisp_remote_factory: Factory, tmp_path: Path
) -> None:
    case = Case("kill9")
    rx = Receiver(chaos_table(tmp_path, chaos_engine.url, case), tmp_path / "rx")
    illumos = [
        IllumosHost(f"i{k}", [("127.0.0.1", rx.audit_remote_port)], bsm_records(case, f"i{k}", 3000), rate=500)
        for k in range(2)
    ]
    linux = [
        LinuxHost(f"l{k}", audisp_remote_factory, rx.audisp_remote_port, linux_lines(case, f"l{k}", 300)[0])
        for k in range(2)
    ]
    total = sum(len(h.records) for h in illumos) + sum(len(h.lines) for h in linux)
    senders: asyncio.Task[None] | None = None
    try:
        await asyncio.to_thread(rx.start)
        for host in linux:
            host.start()
        senders = asyncio.create_task(run_all(*illumos, *linux))
        for fraction in (0.3, 0.6):
            await wait_until(
                f"{fraction:.0%} of the records spooled",
                lambda f=fraction: rx.total("auditrecv_spool_records_committed_total") >= f * total,
                interval=0.02,
            )
            await asyncio.to_thread(rx.kill9)  # acked and spooled, unacked in flight, events open
            assert not senders.done(), "the streams ended before the kill: make them longer"
            await asyncio.to_thread(rx.start)
        await senders
        held = await settle_and_count(chaos_engine, case, rx)
        with Verdicts() as v:
            v.check(assert_exactly_once, held, case, case.all_markers())
            v.check(assert_rss_bounded, rx)
            v.that(all(h.dropped == 0 for h in illumos), "an illumos host dropped records")
            v.that(all(h.resets >= 2 for h in illumos), f"hosts missed a death: {[h.describe() for h in illumos]}")
            v.check(assert_no_record_twice_in_an_event, held)
    finally:
        await _cancel(senders)
        for host in illumos:
            await host.close()
        await asyncio.to_thread(rx.stop)
        chaos_engine.delete_indices(case.pattern)


async def test_engine_frozen_60s_then_resumed(
    chaos_engine: SearchEngine, audisp_remote_factory: Factory, tmp_path: Path
) -> None:
    """SIGSTOP on the engine's JVM: connections stay open and nothing answers (a hung cluster, worse than a
    refused connection). Senders keep being acked from the spool; after SIGCONT everything drains."""
    if chaos_engine.process is None:
        pytest.skip("freezing the engine needs the embedded engine's process (AUDITRECV_ES_URL is external)")
    engine_pid = chaos_engine.process.pid
    case = Case("frozen")
    rx = Receiver(chaos_table(tmp_path, chaos_engine.url, case, search={"request_timeout": 10.0}), tmp_path / "rx")
    # illumos hosts produce records for ~30 s: they start before the freeze and end during it
    illumos = [
        IllumosHost(f"i{k}", [("127.0.0.1", rx.audit_remote_port)], bsm_records(case, f"i{k}", 3000), rate=100)
        for k in range(2)
    ]
    linux = [
        LinuxHost(f"l{k}", audisp_remote_factory, rx.audisp_remote_port, linux_lines(case, f"l{k}", 300)[0])
        for k in range(2)
    ]
    senders: asyncio.Task[None] | None = None
    health_during: list[tuple[int, dict[str, object]]] = []
    try:
        await asyncio.to_thread(rx.start)
        for host in linux:
            host.start()
        senders = asyncio.create_task(run_all(*illumos, *linux))
        await wait_until(
            "the first documents indexed", lambda: rx.metric("auditrecv_pipeline_documents_confirmed_total") >= 100
        )
        acked_before = sum(h.acked for h in illumos)
        os.kill(engine_pid, signal.SIGSTOP)
        try:
            frozen_until = time.monotonic() + ENGINE_FROZEN_SECONDS
            while time.monotonic() < frozen_until:
                health_during.append(await asyncio.to_thread(rx.health))
                await asyncio.sleep(min(1.0, max(0.0, frozen_until - time.monotonic())))
            acked_during = sum(h.acked for h in illumos) - acked_before
            committed = rx.metric("auditrecv_spool_records_committed_total")
        finally:
            os.kill(engine_pid, signal.SIGCONT)
        await wait_until("the engine healthy again", lambda: _engine_healthy(chaos_engine))
        await senders
        held = await settle_and_count(chaos_engine, case, rx)
        health_ok_again = await eventually(lambda: assumed.health_reports_ok(*rx.health()), 30.0)
        with Verdicts() as v:
            v.that(
                acked_during > 0 and committed > 0, "no acks while the engine was frozen: acks must come from the spool"
            )
            v.check(assert_exactly_once, held, case, case.all_markers())
            v.check(assert_rss_bounded, rx)
            v.that(
                all(h.resets == 0 and h.dropped == 0 for h in illumos),
                f"illumos hosts were disturbed: {[h.describe() for h in illumos]}",
            )
            # health reporting (assumed fix, tests/chaos/assumed.py): the outage was visible
            v.that(
                any(assumed.health_reports_engine_down(*h) for h in health_during),
                f"/health never reported the frozen engine; last answers: {health_during[-2:]}",
            )
            v.that(health_ok_again, f"/health not ok after the engine came back: {rx.health()}")
            v.check(assert_no_record_twice_in_an_event, held)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(engine_pid, signal.SIGCONT)  # whatever happened, the shared engine runs on
        await _cancel(senders)
        for host in illumos:
            await host.close()
        await asyncio.to_thread(rx.stop)
        await wait_until("the shared engine healthy for the rest of the suite", lambda: _engine_healthy(chaos_engine))
        chaos_engine.delete_indices(case.pattern)


def _engine_healthy(engine: SearchEngine) -> bool:
    try:
        return engine.health() in ("green", "yellow")
    except Exception:
        return False


async def test_two_receivers_one_killed_illumos_fails_over(
    chaos_engine: SearchEngine, audisp_remote_factory: Factory, tmp_path: Path
) -> None:
    """Two receivers, one engine. illumos hosts list both in p_hosts (A first); Linux hosts are split
    between them. A is killed mid-stream: illumos hosts move to B with their unacked records, the Linux
    host of A waits for A's restart. Content-hash ids make the overlap (records A spooled but never acked,
    retransmitted to B) land on one document."""
    case = Case("tworx")
    a = Receiver(chaos_table(tmp_path / "a", chaos_engine.url, case, observer_name="rx-a"), tmp_path / "a", name="rx-a")
    b = Receiver(chaos_table(tmp_path / "b", chaos_engine.url, case, observer_name="rx-b"), tmp_path / "b", name="rx-b")
    p_hosts = [("127.0.0.1", a.audit_remote_port), ("127.0.0.1", b.audit_remote_port)]
    illumos = [IllumosHost(f"i{k}", p_hosts, bsm_records(case, f"i{k}", 4000), rate=400) for k in range(2)]
    linux = [
        LinuxHost("l0", audisp_remote_factory, a.audisp_remote_port, linux_lines(case, "l0", 300)[0]),
        LinuxHost("l1", audisp_remote_factory, b.audisp_remote_port, linux_lines(case, "l1", 300)[0]),
    ]
    senders: asyncio.Task[None] | None = None
    try:
        await asyncio.gather(asyncio.to_thread(a.start), asyncio.to_thread(b.start))
        for host in linux:
            host.start()
        senders = asyncio.create_task(run_all(*illumos, *linux))
        to_a = sum(len(h.records) for h in illumos) + len(linux[0].lines)
        await wait_until(
            "a third of A's share spooled", lambda: a.total("auditrecv_spool_records_committed_total") >= to_a / 3
        )
        await asyncio.to_thread(a.kill9)
        killed_at = time.monotonic()
        assert not senders.done(), "the streams ended before the kill: make them longer"
        await wait_until(
            "every illumos host acked by B",
            lambda: all(h.host_index == 1 and h.acked_on[1] > 0 for h in illumos),
            interval=0.02,
        )
        failover_seconds = [h.first_ack_on[1] - killed_at for h in illumos]
        await asyncio.to_thread(a.start)  # A's Linux host resumes; A's spool is indexed
        await senders
        held = await settle_and_count(chaos_engine, case, a, b)
        print(
            f"\ntwo receivers: {held.docs} documents ({dict(held.observers)} by indexing receiver); illumos "
            f"hosts acked by B {min(failover_seconds):.3f}-{max(failover_seconds):.3f} s after A's kill "
            f"(p_retries 3, connections refused); acked by A/B per host {[dict(h.acked_on) for h in illumos]}; "
            f"retransmitted {[h.retransmitted for h in illumos]}; "
            f"spooled by A ~{a.total('auditrecv_spool_records_committed_total'):.0f}"
            f", by B ~{b.total('auditrecv_spool_records_committed_total'):.0f} of "
            f"{sum(len(h.records) for h in illumos) + sum(len(h.lines) for h in linux)} records and lines sent"
        )
        with Verdicts() as v:
            v.check(assert_exactly_once, held, case, case.all_markers())
            v.check(assert_rss_bounded, a, b)
            v.that(all(h.dropped == 0 for h in illumos), "an illumos host dropped records")
            v.check(assert_no_record_twice_in_an_event, held)
    finally:
        await _cancel(senders)
        for host in illumos:
            await host.close()
        await asyncio.gather(asyncio.to_thread(a.stop), asyncio.to_thread(b.stop))
        chaos_engine.delete_indices(case.pattern)
