"""Child process for the kill -9 test: appends forever and prints each id once ``append`` returned.

Run as ``python -m tests.spool._append_child SPOOL_PATH FIRST_SEQ``. Every payload names its own
sequence number and is derived from it, so the parent can check each stored record for damage.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import sys
import time

from auditrecv.spool import Source, Spool, SpoolRecord

WRITERS = 16


def payload_for(seq: int) -> bytes:
    """Deterministic, varied-length bytes (including NULs and non-UTF-8) for sequence number seq."""
    digest = hashlib.sha256(str(seq).encode()).digest()
    return f"{seq}:".encode() + digest * (1 + seq % 40) + b"\x00\xff"


def source_for(seq: int) -> Source:
    return Source(transport="audit_remote", peer=f"192.0.2.{seq % 7}", peer_port=40000 + seq % 3, mech="krb5")


async def main(path: str, first_seq: int) -> None:
    spool = await Spool.open(path, max_bytes=1 << 30, commit_delay=0.001)
    counter = itertools.count(first_seq)
    out = sys.stdout

    async def writer() -> None:
        while True:
            seq = next(counter)
            rec = SpoolRecord("bsm", payload_for(seq), source_for(seq), time.time_ns())
            (rid,) = await spool.append([rec])
            out.write(f"{rid} {seq}\n")
            out.flush()

    await asyncio.gather(*(writer() for _ in range(WRITERS)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
