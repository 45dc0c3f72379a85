"""Connections cut half-way through a frame, in both directions, for both protocols."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.chaos.hostile import CuttingRelay
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
    linux_lines,
    run_all,
    settle_and_count,
)
from tests.infra.audisp import AudispRemote
from tests.infra.engine import SearchEngine

pytestmark = [pytest.mark.chaos, pytest.mark.engine, pytest.mark.audisp]

CUTS = 6  # per relay: three cutting a record (or request) frame, three cutting an ack (reply) frame


async def test_sockets_cut_mid_frame_both_directions_both_protocols(
    chaos_engine: SearchEngine, audisp_remote_factory: Callable[..., AudispRemote], tmp_path: Path
) -> None:
    """The receiver sees half a record and then a reset; the client sees half an ack and then a reset.
    illumos hosts retransmit their unacked window, audisp-remote its one record; both reconnect."""
    case = Case("cut")
    rx = Receiver(chaos_table(tmp_path, chaos_engine.url, case), tmp_path / "rx")
    illumos_relay = await CuttingRelay(rx.audit_remote_port, "audit_remote", cuts=CUTS, after_frames=150).start()
    linux_relay = await CuttingRelay(rx.audisp_remote_port, "audisp_remote", cuts=CUTS, after_frames=60).start()
    illumos = [
        IllumosHost(f"i{k}", [("127.0.0.1", illumos_relay.port)], bsm_records(case, f"i{k}", 3000), rate=1500)
        for k in range(2)
    ]
    linux = [
        LinuxHost(f"l{k}", audisp_remote_factory, linux_relay.port, linux_lines(case, f"l{k}", 250)[0])
        for k in range(2)
    ]
    try:
        await asyncio.to_thread(rx.start)
        for host in linux:
            host.start()
        await run_all(*illumos, *linux)
        assert len(illumos_relay.cut_done) == CUTS, illumos_relay.cut_done
        assert len(linux_relay.cut_done) == CUTS, linux_relay.cut_done
        held = await settle_and_count(chaos_engine, case, rx)
        with Verdicts() as v:
            v.check(assert_exactly_once, held, case, case.all_markers())
            v.check(assert_rss_bounded, rx)
            v.that(all(h.dropped == 0 for h in illumos), "an illumos host dropped records")
            v.that(sum(h.resets for h in illumos) >= CUTS, f"cuts unnoticed: {[h.describe() for h in illumos]}")
            v.check(assert_no_record_twice_in_an_event, held)
    finally:
        for host in illumos:
            await host.close()
        await illumos_relay.close()
        await linux_relay.close()
        await asyncio.to_thread(rx.stop)
        chaos_engine.delete_indices(case.pattern)
