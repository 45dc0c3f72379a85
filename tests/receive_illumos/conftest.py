"""Fixtures for the illumos audit_remote receiver tests: an in-memory spool and a server factory."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

from auditrecv.config import AuditRemoteListener, Gss
from auditrecv.receive.audit_remote_server import AuditRemoteServer, start_audit_remote_server
from auditrecv.spool.record import SpoolRecord


class SpoolFull(Exception):
    """Test double of auditrecv.spool.SpoolFull (the server matches it by name)."""


class MemorySpool:
    """Durable-enough for tests: ``append`` yields once (like a commit) and keeps everything.

    ``full = True`` makes appends raise SpoolFull until ``full`` is cleared again.
    """

    def __init__(self) -> None:
        self.records: list[SpoolRecord] = []
        self.appends = 0
        self.full = False
        self.refused = 0
        self._space = asyncio.Event()

    async def append(self, records: list[SpoolRecord]) -> list[int]:
        await asyncio.sleep(0)
        if self.full:
            self.refused += 1
            raise SpoolFull("spool full (test): no room")
        start = len(self.records)
        self.records.extend(records)
        self.appends += 1
        return list(range(start + 1, start + 1 + len(records)))

    async def wait_for_space(self) -> None:
        while self.full:
            self._space.clear()
            await self._space.wait()

    def make_room(self) -> None:
        self.full = False
        self._space.set()

    def payloads(self) -> list[bytes]:
        return [r.payload for r in self.records]


@pytest.fixture
def memory_spool() -> MemorySpool:
    return MemorySpool()


ServerFactory = Callable[..., Coroutine[Any, Any, AuditRemoteServer]]


@pytest.fixture
async def start_server(memory_spool: MemorySpool) -> AsyncIterator[ServerFactory]:
    """``await start_server(spool=None, gss=None, **listener_settings)`` on 127.0.0.1, a free port."""
    started: list[AuditRemoteServer] = []

    async def factory(spool: Any = None, gss: Gss | None = None, **settings: Any) -> AuditRemoteServer:
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
        server.close()
        await server.wait_closed()
