"""illumos audit_remote end to end: emulated transport.c client → auditrecv → the real engine."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from auditrecv.testclient.illumos import IllumosClient, split_trail
from tests.e2e.harness import ServiceProcess, running_service, service_config, wait_count
from tests.infra.engine import SearchEngine
from tests.infra.kdc import ILLUMOS_CLIENT, ILLUMOS_SERVICE, TestKdc
from tests.paths import BSM_FIXTURES

pytestmark = pytest.mark.engine

TRAILS = [BSM_FIXTURES / "plaso" / "openbsm.bsm", BSM_FIXTURES / "plaso" / "apple.bsm"]


def fixture_records() -> list[bytes]:
    records: list[bytes] = []
    for trail in TRAILS:
        records.extend(split_trail(trail.read_bytes()))
    return records


def dummy_listener() -> dict[str, object]:
    return {"audit_remote": {"allow_dummy_mech": True, "dummy_mech_networks": ["127.0.0.0/8"]}}


async def test_dummy_mech_records_arrive_once_each(search_engine: SearchEngine, tmp_path: Path) -> None:
    index = f"e2e-illumos-{uuid.uuid4().hex[:8]}"
    table = service_config(
        tmp_path, search_engine.url, listeners=dummy_listener(), search={"index": index + "-%Y.%m.%d"}
    )
    records = fixture_records()
    async with running_service(table):
        client = IllumosClient("127.0.0.1", table["listeners"]["audit_remote"]["port"], mech="dummy")
        await client.connect()
        await client.send_records(records, wait_when_full=True)
        assert await client.wait_all_acked(30)
        await client.close()
        # Send everything again, as a client does after a reconnect: no new documents.
        client2 = IllumosClient("127.0.0.1", table["listeners"]["audit_remote"]["port"], mech="dummy")
        await client2.connect()
        await client2.send_records(records[:20], wait_when_full=True)
        assert await client2.wait_all_acked(30)
        await client2.close()
        count = await wait_count(search_engine, index + "-*", len(records))
    assert count == len(records)
    docs = await asyncio.to_thread(search_engine.search, index + "-*", {"term": {"event.module": "bsm"}})
    assert len(docs) == len(records)
    assert {d["auditrecv"]["source"]["mech"] for d in docs} == {"dummy"}
    search_engine.delete_indices(index + "-*")


async def test_kill9_mid_stream_then_retransmit_gives_exact_count(search_engine: SearchEngine, tmp_path: Path) -> None:
    index = f"e2e-kill-{uuid.uuid4().hex[:8]}"
    table = service_config(
        tmp_path, search_engine.url, listeners=dummy_listener(), search={"index": index + "-%Y.%m.%d"}
    )
    records = fixture_records()
    svc = ServiceProcess(table, tmp_path)
    svc.start()
    port = table["listeners"]["audit_remote"]["port"]
    client = IllumosClient("127.0.0.1", port, mech="dummy")
    try:
        await client.connect()
        half = len(records) // 2
        await client.send_records(records[:half], wait_when_full=True)
        await asyncio.sleep(0.05)
        svc.kill9()  # mid-stream: some records acked and spooled, some in flight, none maybe indexed
        svc.start()
        await client.send_records(records[half:], wait_when_full=True)
        assert await client.wait_all_acked(60, reconnect=True)
        count = await wait_count(search_engine, index + "-*", len(records))
        assert count == len(records), svc.log()
    finally:
        await client.close()
        svc.stop()
        search_engine.delete_indices(index + "-*")


@pytest.mark.kdc
async def test_kerberos_records_arrive_with_the_authenticated_principal(
    search_engine: SearchEngine, kdc: TestKdc, tmp_path: Path
) -> None:
    index = f"e2e-krb-{uuid.uuid4().hex[:8]}"
    table = service_config(
        tmp_path,
        search_engine.url,
        listeners={"audit_remote": {"allowed_principals": ["host/*@AUDIT.TEST"]}},
        gss={"keytab": str(kdc.service_keytab(ILLUMOS_SERVICE)), "krb5_config": str(kdc.krb5_conf)},
        search={"index": index + "-%Y.%m.%d"},
    )
    records = fixture_records()
    async with running_service(table):
        client = IllumosClient(
            "127.0.0.1",
            table["listeners"]["audit_remote"]["port"],
            mech="kerberos_v5",
            service_host="localhost",
            ccache=kdc.client_ccache(ILLUMOS_CLIENT),
        )
        await client.connect()
        await client.send_records(records, wait_when_full=True)
        assert await client.wait_all_acked(30)
        await client.close()
        count = await wait_count(search_engine, index + "-*", len(records))
    assert count == len(records)
    docs = await asyncio.to_thread(search_engine.search, index + "-*")
    sources = {(d["auditrecv"]["source"]["mech"], d["auditrecv"]["source"]["principal"]) for d in docs}
    assert sources == {("krb5", f"{ILLUMOS_CLIENT}@AUDIT.TEST")}
    search_engine.delete_indices(index + "-*")
