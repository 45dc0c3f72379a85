"""The spool knows, without I/O, when its oldest record arrived: what /health reports as the age of
the oldest record the engine has not confirmed yet (issue 14, defect 4)."""

from __future__ import annotations

from pathlib import Path

from auditrecv.spool import Source, Spool, SpoolRecord

SRC = Source(transport="audit_remote", peer="192.0.2.7", peer_port=40001, listener="audit_remote")


def rec(received_ns: int) -> SpoolRecord:
    return SpoolRecord("bsm", b"record %d" % received_ns, SRC, received_ns)


async def test_oldest_received_follows_appends_and_deletes_and_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    async with await Spool.open(path, commit_delay=0) as spool:
        assert spool.oldest_received_ns is None
        a, b, c = [await spool.append([rec(ns)]) for ns in (30, 10, 20)]  # ids in arrival order
        assert spool.oldest_received_ns == 30  # the lowest id, whatever its clock said
        await spool.delete(c)  # not the oldest
        assert spool.oldest_received_ns == 30
        await spool.delete(a)
        assert spool.oldest_received_ns == 10
        more = await spool.append([rec(40), rec(50)])
        assert spool.oldest_received_ns == 10
        await spool.delete([*b, more[0]])
        assert spool.oldest_received_ns == 50
    async with await Spool.open(path, commit_delay=0) as spool:
        assert spool.oldest_received_ns == 50
        await spool.delete(more[1:])
        assert spool.oldest_received_ns is None
        await spool.append([rec(60)])
        assert spool.oldest_received_ns == 60
