"""Enrichment against a fake Triton: right metadata, one lookup per key, and never a stall."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from auditrecv.config import Enrich, Triton
from auditrecv.enrich import Enricher, build_enricher
from tests.enrich.fake_triton import FakeTriton

ZONE = "d8069ac3-0a93-e9fb-d82e-d61541df45f9"
OWNER = "930896af-bf8c-48d4-885c-6573a94b1853"


@pytest.fixture
async def triton() -> AsyncIterator[FakeTriton]:
    fake = FakeTriton()
    fake.add_zone(ZONE, "web-frontend-1", OWNER, "acmecorp", tags={"role": "web"})
    await fake.start()
    yield fake
    await fake.stop()


def settings(url: str, **kw: object) -> Enrich:
    base: dict[str, object] = {"triton": Triton(vmapi_url=url, mahi_url=url), "lookup_timeout": 0.5}
    base.update(kw)
    return Enrich(**base)  # type: ignore[arg-type]


def zone_doc(zone: str = ZONE) -> dict[str, object]:
    return {
        "host": {"name": "cn42", "ip": ["10.0.0.42"]},
        "container": {"id": zone, "runtime": "zone"},
        "process": {"executable": "/usr/bin/foobar", "args": ["foobar"]},
    }


async def test_zone_gets_alias_owner_and_orchestrator(triton: FakeTriton) -> None:
    enricher = Enricher(settings(triton.url))
    doc = zone_doc()
    await enricher.enrich(doc)
    await enricher.close()
    assert doc["container"] == {
        "id": ZONE,
        "name": "web-frontend-1",
        "runtime": "zone",
        "labels": {"role": "web"},
    }
    assert doc["cloud"] == {
        "provider": "triton",
        "instance": {"id": ZONE, "name": "web-frontend-1"},
        "account": {"id": OWNER, "name": "acmecorp"},
    }
    assert doc["orchestrator"] == {"type": "triton", "resource": {"type": "vm", "id": ZONE, "name": "web-frontend-1"}}
    assert doc["labels"]["zonealias"] == "acmecorp-web-frontend-1"  # type: ignore[index]
    assert doc["related"] == {"user": ["acmecorp"]}


async def test_compat_shape_gets_zonealias(triton: FakeTriton) -> None:
    enricher = Enricher(settings(triton.url))
    doc: dict[str, object] = {"zonename": ZONE, "from": "10.0.0.42", "event": "AUE_EXECVE"}
    await enricher.enrich(doc)
    await enricher.close()
    assert doc["zonealias"] == "acmecorp-web-frontend-1"


async def test_thousand_events_for_one_zone_cause_one_lookup(triton: FakeTriton) -> None:
    enricher = Enricher(settings(triton.url))
    docs = [zone_doc() for _ in range(1000)]
    await asyncio.gather(*(enricher.enrich(d) for d in docs))
    await enricher.close()
    assert triton.requests == {f"/vms/{ZONE}": 1, f"/accounts/{OWNER}": 1}
    assert all(d["container"]["name"] == "web-frontend-1" for d in docs)  # type: ignore[index]
    assert enricher.metrics["vmapi"]["lookups"] == 1


async def test_unknown_zone_is_negatively_cached(triton: FakeTriton) -> None:
    other = "11111111-2222-3333-4444-555555555555"
    enricher = Enricher(settings(triton.url))
    for _ in range(3):
        doc = zone_doc(other)
        await enricher.enrich(doc)
        assert "name" not in doc["container"]  # type: ignore[operator]
    await enricher.close()
    assert triton.requests[f"/vms/{other}"] == 1
    assert enricher.metrics["vmapi"]["not_found"] == 1


async def test_global_zone_and_non_uuid_names_are_not_looked_up(triton: FakeTriton) -> None:
    enricher = Enricher(settings(triton.url))
    for name in ("global", "myzone"):
        await enricher.enrich(zone_doc(name))
    await enricher.close()
    assert sum(triton.requests.values()) == 0


async def test_vmapi_slow_event_is_not_held_and_cache_fills_later(triton: FakeTriton) -> None:
    triton.mode, triton.delay = "slow", 0.4
    enricher = Enricher(settings(triton.url, lookup_timeout=2.0, event_budget=0.05))
    first = zone_doc()
    await enricher.enrich(first)
    # The event went on without metadata while VMAPI had not yet answered.
    assert triton.requests[f"/vms/{ZONE}"] == 1 and triton.answered[f"/vms/{ZONE}"] == 0
    assert "name" not in first["container"]  # type: ignore[operator]
    assert enricher.metrics["vmapi"]["misses"] == 1
    # The lookup carried on in the background; a later event gets the value from the cache.
    triton.mode = "ok"
    await enricher.settled()
    assert triton.answered[f"/vms/{ZONE}"] == 1
    later = zone_doc()
    await enricher.enrich(later)
    await enricher.close()
    assert later["container"]["name"] == "web-frontend-1"  # type: ignore[index]
    assert triton.requests[f"/vms/{ZONE}"] == 1


async def test_vmapi_down_means_no_metadata_and_counted_errors(triton: FakeTriton) -> None:
    triton.mode = "down"
    enricher = Enricher(settings(triton.url))
    docs = [zone_doc() for _ in range(50)]
    await asyncio.gather(*(enricher.enrich(d) for d in docs))
    await enricher.close()
    assert all("name" not in d["container"] for d in docs)  # type: ignore[operator]
    m = enricher.metrics["vmapi"]
    assert m["errors"] == 1 and m["lookups"] == 1 and m["misses"] == 50


async def test_closed_port_is_an_error_not_a_stall() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    enricher = Enricher(settings(f"http://127.0.0.1:{port}"))
    doc = zone_doc()
    await enricher.enrich(doc)
    await enricher.close()
    assert "name" not in doc["container"]  # type: ignore[operator]
    assert enricher.metrics["vmapi"]["errors"] == 1


async def test_cache_expiry_refreshes_and_serves_stale_when_down(triton: FakeTriton) -> None:
    clock = [1000.0]
    enricher = Enricher(settings(triton.url, cache_ttl=60, negative_ttl=30), cache_clock=lambda: clock[0])
    await enricher.enrich(zone_doc())
    clock[0] += 61
    triton.vms[ZONE]["alias"] = "renamed"
    # Expired: this event gets the stale value at once, and a refresh starts.
    stale = zone_doc()
    await enricher.enrich(stale)
    assert stale["container"]["name"] == "web-frontend-1"  # type: ignore[index]
    await enricher.settled()
    fresh = zone_doc()
    await enricher.enrich(fresh)
    assert fresh["container"]["name"] == "renamed"  # type: ignore[index]
    assert triton.requests[f"/vms/{ZONE}"] == 2
    # Now VMAPI fails: after expiry the last good value keeps being used, retried after negative_ttl.
    triton.mode = "down"
    for step in range(3):
        clock[0] += 61 if step == 0 else 31
        doc = zone_doc()
        await enricher.enrich(doc)
        await enricher.settled()
        assert doc["container"]["name"] == "renamed"  # type: ignore[index]
    assert triton.requests[f"/vms/{ZONE}"] == 5
    await enricher.close()
    assert enricher.metrics["vmapi"]["errors"] >= 1


async def test_zlogin_in_global_zone_is_annotated_with_the_target_zone(triton: FakeTriton) -> None:
    enricher = Enricher(settings(triton.url))
    doc: dict[str, object] = {
        "host": {"name": "cn42"},
        "process": {"executable": "/usr/sbin/zlogin", "args": ["/usr/sbin/zlogin", "-Q", ZONE, "uptime"]},
    }
    await enricher.enrich(doc)
    await enricher.close()
    assert doc["auditrecv"] == {
        "zlogin": {
            "zone": {"id": ZONE, "name": "web-frontend-1"},
            "owner": {"id": OWNER, "name": "acmecorp"},
            "zonealias": "acmecorp-web-frontend-1",
        }
    }
    assert "zlogin" in doc["tags"]  # type: ignore[operator]
    assert "container" not in doc  # the event itself happened in the global zone


async def test_other_executables_with_uuid_args_are_not_zlogin(triton: FakeTriton) -> None:
    enricher = Enricher(settings(triton.url))
    doc: dict[str, object] = {"process": {"executable": "/usr/sbin/vmadm", "args": ["vmadm", "get", ZONE]}}
    await enricher.enrich(doc)
    await enricher.close()
    assert "auditrecv" not in doc and sum(triton.requests.values()) == 0


async def test_static_map_applies_and_reloads(tmp_path: Path) -> None:
    path = tmp_path / "hosts.toml"
    path.write_text(
        '[[host]]\nmatch = "10.0.0.0/8"\nlabels = { datacenter = "ams1" }\n'
        '[[host]]\nmatch = "cn42"\nlabels = { role = "compute" }\n'
    )
    enricher = await build_enricher(Enrich(static_map=str(path)))
    assert enricher is not None
    doc: dict[str, object] = {"host": {"name": "cn42", "ip": ["10.0.0.42"]}}
    await enricher.enrich(doc)
    assert doc["labels"] == {"datacenter": "ams1", "role": "compute"}
    path.write_text('[[host]]\nmatch = "10.0.0.42"\nlabels = { datacenter = "ams2", owner = "ops" }\n')
    enricher.reload()
    doc2: dict[str, object] = {"host": {"name": "cn42", "ip": ["10.0.0.42"]}}
    await enricher.enrich(doc2)
    assert doc2["labels"] == {"datacenter": "ams2", "owner": "ops"}
    path.write_text("[[host]\nbroken")
    enricher.reload()  # a broken file keeps the previous map
    doc3: dict[str, object] = {"host": {"ip": ["10.0.0.42"]}}
    await enricher.enrich(doc3)
    assert doc3["labels"] == {"datacenter": "ams2", "owner": "ops"}
    assert enricher.static_reloads == 1
    await enricher.close()


async def test_static_map_csv(tmp_path: Path) -> None:
    path = tmp_path / "hosts.csv"
    path.write_text(f"match,datacenter,owner\n{ZONE},ams1,web-team\n192.0.2.7,lon1,\n")
    enricher = Enricher(Enrich(static_map=str(path)))
    doc: dict[str, object] = {"container": {"id": ZONE}, "host": {"ip": "192.0.2.7"}}
    await enricher.enrich(doc)
    await enricher.close()
    assert doc["labels"] == {"datacenter": "ams1", "owner": "web-team"}


async def test_nothing_configured_means_no_stage() -> None:
    assert await build_enricher(Enrich()) is None
