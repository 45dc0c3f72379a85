"""SIGKILL the receiver mid-stream, restart it: the client retransmits and nothing is lost."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from auditrecv.spool import Spool
from auditrecv.testclient.illumos import IllumosClient
from tests.paths import REPO
from tests.receive_illumos.test_server_dummy import records


async def start_receiver(spool: Path, port: int) -> tuple[asyncio.subprocess.Process, int]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.receive_illumos.receiver_process",
        str(spool),
        str(port),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    assert line.startswith(b"PORT "), line
    return proc, int(line.split()[1])


async def test_sigkill_mid_stream_then_restart_loses_nothing(tmp_path: Path) -> None:
    spool_path = tmp_path / "spool.db"
    first, port = await start_receiver(spool_path, 0)
    second = None
    client = IllumosClient("127.0.0.1", port, mech="dummy", qsize=5000)
    sent = records(3000, b"k")
    try:
        await client.send_records(sent[:2000])
        while client.stats.acked < 200:  # some acked, most still in flight
            await asyncio.sleep(0.005)
        first.send_signal(signal.SIGKILL)
        await first.wait()
        acked_before_kill = {n.seq for n in client.transq}  # the complement: still unacked
        acked_before_kill = set(range(1, 2001)) - acked_before_kill
        assert await client.wait_disconnected(10)
        assert client.stats.resets == 1

        second, _ = await start_receiver(spool_path, port)
        await client.send_records(sent[2000:])  # reconnects, retransmits the unacked first
        assert await client.wait_all_acked(30)
        assert client.stats.retransmitted == 2000 - len(acked_before_kill)
        assert set(client.stats.acks_per_connection[2].values()) == {1}
    finally:
        await client.close()
        for proc in (first, second):
            if proc is not None and proc.returncode is None:
                proc.send_signal(signal.SIGKILL)
                await proc.wait()

    spool = await Spool.open(spool_path)
    try:
        stored = [rec.payload for _, rec in await spool.read(0, 100_000)]
    finally:
        await spool.close()
    assert set(stored) == set(sent)  # everything arrived; duplicates are allowed (document identity)
    assert len(acked_before_kill) >= 200
