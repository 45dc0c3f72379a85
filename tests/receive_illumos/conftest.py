"""Fixtures for the illumos audit_remote receiver tests: an in-memory spool and a server factory."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any

import pytest

from auditrecv.config import AuditRemoteListener, Gss
from auditrecv.receive.listeners import start_audit_remote_server
from auditrecv.receive.server import ReceiveServer
from auditrecv.spool import SpoolFull
from auditrecv.spool.record import SpoolRecord
from tests.spool_fake import FakeSpool


class MemorySpool(FakeSpool):
    """The shared fake spool; ``full = True`` makes appends raise the real SpoolFull until
    :meth:`make_room` (every append is awaited: a subclass that changes ``append`` is never taken
    in the read callback)."""

    def __init__(self) -> None:
        super().__init__()
        self.full = False

    async def append(self, records: Sequence[SpoolRecord]) -> list[int]:
        await asyncio.sleep(0)
        if self.full:
            self.refused += 1
            raise SpoolFull(len(self.records), len(self.records))
        return await super().append(records)

    async def wait_for_space(self, timeout: float | None = None) -> bool:
        while self.full:
            self._space.clear()
            await self._space.wait()
        return True

    def make_room(self) -> None:
        self.full = False
        self._space.set()

    def payloads(self) -> list[bytes]:
        return self.lines()


@pytest.fixture
def memory_spool() -> MemorySpool:
    return MemorySpool()


ServerFactory = Callable[..., Coroutine[Any, Any, ReceiveServer]]


@pytest.fixture
async def start_server(memory_spool: MemorySpool) -> AsyncIterator[ServerFactory]:
    """``await start_server(spool=None, gss=None, **listener_settings)`` on 127.0.0.1, a free port."""
    started: list[ReceiveServer] = []

    async def factory(spool: Any = None, gss: Gss | None = None, **settings: Any) -> ReceiveServer:
        base = AuditRemoteListener(
            host="127.0.0.1", port=0, handshake_timeout=5.0, dummy_mech_networks=["127.0.0.0/8", "::1/128"]
        )
        server = await start_audit_remote_server(
            dataclasses.replace(base, **settings), gss or Gss(), spool if spool is not None else memory_spool
        )
        started.append(server)
        return server

    yield factory
    for server in started:
        await server.close()
