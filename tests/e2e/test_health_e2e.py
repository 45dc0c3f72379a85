"""/health and /ready during a hung engine, against the real embedded engine (issue 14, defect 4).

The chaos probe stopped the engine for 60 s: /health kept saying "ok" while records piled up in the
spool, and the first log line came after 38 s (a bulk request timing out). Here the engine's JVM is
really stopped (SIGSTOP: connections are accepted by the kernel, nothing answers, exactly a hung
engine) and the test watches what an operator's monitoring would see.

The engine is the session's shared one: it is always continued in a `finally` and the test waits
until it is healthy again, so the tests after this one find it as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from auditrecv.testclient.illumos import IllumosClient
from tests.e2e.harness import running_service, service_config, wait_count
from tests.e2e.test_spool_sink_e2e import distinct_records, dummy_listener
from tests.infra.engine import EngineError, SearchEngine

WAIT = 60.0  # bounds every wait below; none is a pass/fail timing


async def get_json(port: int, path: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}{path}") as resp:
        return resp.status, await resp.json()


async def poll(port: int, path: str, ok: Callable[[int, dict[str, Any]], bool]) -> tuple[int, dict[str, Any]]:
    """Ask `path` until `ok(status, body)` or WAIT passes; returns the last answer."""
    deadline = time.monotonic() + WAIT
    answer: tuple[int, dict[str, Any]] = (0, {})
    while time.monotonic() < deadline:
        answer = await get_json(port, path)
        if ok(*answer):
            return answer
        await asyncio.sleep(0.2)
    return answer


def wait_engine_healthy(engine: SearchEngine) -> None:
    deadline = time.monotonic() + WAIT
    last = ""
    while time.monotonic() < deadline:
        try:
            last = engine.health()
            if last in ("green", "yellow"):
                return
        except (OSError, EngineError) as exc:
            last = repr(exc)
        time.sleep(0.2)
    raise AssertionError(f"the engine did not come back after SIGCONT: {last}")


@contextlib.contextmanager
def continued_at_exit(engine: SearchEngine) -> Iterator[int]:
    """The engine JVM's pid; whatever happens, it runs again and is healthy when this exits."""
    assert engine.process is not None, "an embedded engine is needed to stop it"
    pid = engine.process.pid
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGCONT)
        wait_engine_healthy(engine)


def stall_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "shipping to the search engine" in r.getMessage()]


async def test_health_degrades_while_the_engine_hangs_and_recovers(
    opensearch_engine: SearchEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="auditrecv")
    engine = opensearch_engine
    index = f"e2e-health-{uuid.uuid4().hex[:8]}"
    table = service_config(
        tmp_path,
        engine.url,
        listeners=dummy_listener(),
        search={"index": index + "-%Y.%m.%d"},
        health={"max_unshipped_age": 2.0, "max_request_seconds": 2.0},
    )
    http = table["http"]["port"]
    records = distinct_records(300)
    first, second = records[:100], records[100:]
    client = IllumosClient("127.0.0.1", table["listeners"]["audit_remote"]["port"], mech="dummy")
    try:
        async with running_service(table) as svc:
            await client.connect()
            await client.send_records(first, wait_when_full=True)
            assert await client.wait_all_acked(WAIT)
            assert await wait_count(engine, index + "-*", len(first)) == len(first)
            status, body = await poll(http, "/health", lambda s, b: b["spool_records"] == 0)
            assert (status, body["status"], body["oldest_unshipped_age"]) == (200, "ok", None)
            assert body["engine"]["configured"] is True and body["engine"]["halted"] is False
            assert body["engine"]["last_success_time"] is not None
            assert await get_json(http, "/ready") == (200, {"ready": True, "reasons": []})
            # Creating the first index can itself take longer than these tiny limits: start counting
            # the watchdog's lines once it has seen shipping healthy.
            deadline = time.monotonic() + WAIT
            while (svc.shipping_watch is None or svc.shipping_watch.stalled) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert svc.shipping_watch is not None and not svc.shipping_watch.stalled
            caplog.clear()

            with continued_at_exit(engine) as pid:
                os.kill(pid, signal.SIGSTOP)
                await client.send_records(second, wait_when_full=True)
                assert await client.wait_all_acked(WAIT), "acks must not depend on the engine"

                status, body = await poll(http, "/health", lambda s, b: b["status"] == "degraded")
                assert status == 503, body
                assert body["spool"] == "ok" and body["spool_records"] == len(second)
                assert body["oldest_unshipped_age"] > 2.0 or body["engine"]["longest_request_seconds"] > 2.0
                assert any("waited" in reason for reason in body["reasons"]), body["reasons"]
                # Still able to take records: a load balancer must not pull it out of service.
                assert await get_json(http, "/ready") == (200, {"ready": True, "reasons": []})
                deadline = time.monotonic() + WAIT
                while not stall_messages(caplog) and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                (stalled,) = stall_messages(caplog)
                assert "stalled" in stalled and "kept in the spool" in stalled

                os.kill(pid, signal.SIGCONT)
                status, body = await poll(http, "/health", lambda s, b: b["status"] == "ok")
                assert (status, body["reasons"]) == (200, []), body
                assert body["spool_records"] == 0

            assert await wait_count(engine, index + "-*", len(records)) == len(records)
            assert svc.spool.count() == 0
            messages = stall_messages(caplog)
            assert len(messages) == 2 and "resumed" in messages[1], messages
    finally:
        await client.close()
        engine.delete_indices(index + "-*")
        engine.delete_index_templates(index + "*")
