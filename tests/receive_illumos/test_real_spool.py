"""Against the real durable spool: acked records are committed and survive a reopen."""

from __future__ import annotations

from pathlib import Path

from auditrecv.spool import Spool
from auditrecv.testclient.illumos import IllumosClient
from tests.receive_illumos.conftest import ServerFactory
from tests.receive_illumos.test_server_dummy import records


async def test_acked_records_are_in_the_spool_after_reopen(start_server: ServerFactory, tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    spool = await Spool.open(path)
    try:
        server = await start_server(spool=spool, allow_dummy_mech=True)
        clients = [IllumosClient("127.0.0.1", server.port, mech="dummy") for _ in range(3)]
        for i, c in enumerate(clients):
            await c.send_records(records(120, b"h%d-" % i), wait_when_full=True)
        for c in clients:
            assert await c.wait_all_acked(20)
            await c.close()
        await server.close()
    finally:
        await spool.close()

    reopened = await Spool.open(path)
    try:
        got = await reopened.read(0, 10_000)
    finally:
        await reopened.close()
    payloads = [rec.payload for _, rec in got]
    assert sorted(payloads) == sorted(records(120, b"h0-") + records(120, b"h1-") + records(120, b"h2-"))
    assert {rec.source.mech for _, rec in got} == {"dummy"}
    assert {rec.kind for _, rec in got} == {"bsm"}
