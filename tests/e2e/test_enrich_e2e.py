"""Enrichment through the whole service: zone metadata arrives, and a down or slow VMAPI stalls nothing."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from auditrecv.testclient.illumos import IllumosClient
from tests.e2e.harness import ServiceProcess, running_service, service_config, wait_count
from tests.enrich.fake_triton import FakeTriton
from tests.infra.engine import SearchEngine
from tests.schema import bsm_build as b

pytestmark = pytest.mark.engine

ZONE = "d8069ac3-0a93-e9fb-d82e-d61541df45f9"
OWNER = "930896af-bf8c-48d4-885c-6573a94b1853"
AUE_EXECVE = 23


def zone_records(n: int, zone: str = ZONE) -> list[bytes]:
    """n distinct execve records from one zone (distinct times, so distinct documents)."""
    return [
        b.record(
            b.header32(AUE_EXECVE, 1_700_000_000 + i, 1000 * i),
            b.path("/usr/bin/foobar"),
            b.exec_args("foobar", f"--run={i}"),
            b.subject32(1001, 1001, 10, 1001, 10, 4000 + i, 77, 0, "10.0.0.9"),
            b.return32(0, 0),
            b.zonename(zone),
        )
        for i in range(n)
    ]


@pytest.fixture
async def triton() -> AsyncIterator[FakeTriton]:
    fake = FakeTriton()
    fake.add_zone(ZONE, "web-frontend-1", OWNER, "acmecorp")
    await fake.start()
    yield fake
    await fake.stop()


def table_for(tmp: Path, engine: SearchEngine, index: str, vmapi: str) -> dict[str, object]:
    return service_config(
        tmp,
        engine.url,
        listeners={"audit_remote": {"allow_dummy_mech": True, "dummy_mech_networks": ["127.0.0.0/8"]}},
        search={"index": index + "-%Y.%m.%d"},
        enrich={"triton": {"vmapi_url": vmapi, "mahi_url": vmapi}, "lookup_timeout": 0.5, "event_budget": 0.2},
    )


async def send(port: int, records: list[bytes]) -> None:
    client = IllumosClient("127.0.0.1", port, mech="dummy")
    await client.connect()
    await client.send_records(records, wait_when_full=True)
    assert await client.wait_all_acked(30)
    await client.close()


async def test_documents_carry_zone_alias_and_owner_with_one_lookup(
    search_engine: SearchEngine, triton: FakeTriton, tmp_path: Path
) -> None:
    index = f"e2e-enrich-{uuid.uuid4().hex[:8]}"
    table = table_for(tmp_path, search_engine, index, triton.url)
    records = zone_records(300)
    async with running_service(table):
        await send(table["listeners"]["audit_remote"]["port"], records)  # type: ignore[index]
        assert await wait_count(search_engine, index + "-*", len(records)) == len(records)
    docs = await asyncio.to_thread(search_engine.search, index + "-*")
    assert {d["container"]["name"] for d in docs} == {"web-frontend-1"}
    assert {d["cloud"]["account"]["name"] for d in docs} == {"acmecorp"}
    assert {d["labels"]["zonealias"] for d in docs} == {"acmecorp-web-frontend-1"}
    assert triton.requests == {f"/vms/{ZONE}": 1, f"/accounts/{OWNER}": 1}
    search_engine.delete_indices(index + "-*")


async def test_slow_vmapi_stalls_neither_acks_nor_indexing(
    search_engine: SearchEngine, triton: FakeTriton, tmp_path: Path
) -> None:
    triton.mode, triton.delay = "slow", 60.0
    index = f"e2e-enrich-slow-{uuid.uuid4().hex[:8]}"
    table = table_for(tmp_path, search_engine, index, triton.url)
    records = zone_records(200)
    async with running_service(table):
        await send(table["listeners"]["audit_remote"]["port"], records)  # type: ignore[index]
        assert await wait_count(search_engine, index + "-*", len(records)) == len(records)
        # Every document is in while VMAPI has not answered a single request.
        assert sum(triton.answered.values()) == 0
    docs = await asyncio.to_thread(search_engine.search, index + "-*")
    # Without metadata the zone is still named, by its zone name; no alias, no owner.
    assert {(d["container"]["id"], d["container"]["name"]) for d in docs} == {(ZONE, ZONE)}
    assert not any("cloud" in d or "zonealias" in d.get("labels", {}) for d in docs)
    search_engine.delete_indices(index + "-*")


async def test_static_map_applies_and_sighup_reloads_it(search_engine: SearchEngine, tmp_path: Path) -> None:
    index = f"e2e-map-{uuid.uuid4().hex[:8]}"
    static_map = tmp_path / "hosts.toml"
    static_map.write_text('[[host]]\nmatch = "127.0.0.0/8"\nlabels = { datacenter = "ams1" }\n')
    table = service_config(
        tmp_path,
        search_engine.url,
        listeners={"audit_remote": {"allow_dummy_mech": True, "dummy_mech_networks": ["127.0.0.0/8"]}},
        search={"index": index + "-%Y.%m.%d"},
        enrich={"static_map": str(static_map)},
    )
    svc = ServiceProcess(table, tmp_path)
    svc.start()
    port = table["listeners"]["audit_remote"]["port"]
    try:
        first = zone_records(3)
        await send(port, first)
        assert await wait_count(search_engine, index + "-*", 3) == 3
        static_map.write_text('[[host]]\nmatch = "127.0.0.1"\nlabels = { datacenter = "lon2", role = "test" }\n')
        svc.signal(signal.SIGHUP)
        for _ in range(100):  # the reload is logged once done
            if "static map reloaded" in svc.log():
                break
            await asyncio.sleep(0.05)
        later = zone_records(6)[3:]
        await send(port, later)
        assert await wait_count(search_engine, index + "-*", 6) == 6
    finally:
        svc.stop()
    docs = await asyncio.to_thread(search_engine.search, index + "-*")
    by_pid = {d["process"]["pid"]: d["labels"] for d in docs}
    assert [by_pid[4000 + i].get("datacenter") for i in range(6)] == ["ams1"] * 3 + ["lon2"] * 3
    assert by_pid[4005]["role"] == "test" and "role" not in by_pid[4000]
    search_engine.delete_indices(index + "-*")
