"""A receiver in its own process (audit_remote server + the real durable spool), to be SIGKILLed.

    python -m tests.receive_illumos.receiver_process SPOOL_PATH PORT

Prints ``PORT <n>`` on stdout once listening, then serves until killed.
"""

from __future__ import annotations

import asyncio
import sys

from auditrecv.config import AuditRemoteListener, Gss
from auditrecv.receive.listeners import start_audit_remote_server
from auditrecv.spool import Spool


async def serve(spool_path: str, port: int) -> None:
    spool = await Spool.open(spool_path)
    settings = AuditRemoteListener(
        host="127.0.0.1", port=port, allow_dummy_mech=True, dummy_mech_networks=["127.0.0.0/8"]
    )
    server = await start_audit_remote_server(settings, Gss(), spool)
    print(f"PORT {server.port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], int(sys.argv[2])))
