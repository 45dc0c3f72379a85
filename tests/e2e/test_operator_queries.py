"""docs/queries.md answers operators' questions; here every Query DSL block of it runs, unchanged, against
the real engines over illumos and Linux events indexed by `auditrecv import`, and the answers are checked.

The events are made at test time with the current clock (the queries ask for "the last hour"): illumos
records from the BSM builders, Linux lines from the fixtures with their times moved to now."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests import bsm_builders as bb
from tests.e2e.harness import service_config, to_toml
from tests.infra.engine import SearchEngine
from tests.paths import LINUX_FIXTURES, REPO
from tests.schema import bsm_build as b

QUERIES = REPO / "docs" / "queries.md"
INDEX_PREFIX = "opsq"
SENDER = "cn1.example.com"


def documented_queries() -> dict[str, dict[str, Any]]:
    """Each ```json block that follows a `<!-- query: NAME -->` marker."""
    text = QUERIES.read_text()
    found = re.findall(r"<!-- query: ([\w-]+) -->\n```json\n(.*?)\n```", text, re.S)
    return {name: json.loads(body) for name, body in found}


def _bsm_records(now: int) -> bytes:
    """illumos records: executions in two zones, connections (one of them two hours old), logins,
    an audit policy change."""
    ssh = b.SSH_PORT
    subject_alice = b.subject32(1001, 1001, 10, 1001, 10, 4242, 77, ssh, "198.51.100.23")
    alice_as_root = b.subject32(1001, 0, 0, 1001, 10, 4243, 77, ssh, "198.51.100.23")
    nobody = (0xFFFFFFFF,) * 5
    records = [
        bb.record(b.header32(23, now - 600, 0), b.path("/usr/bin/curl"), subject_alice,
                  b.exec_args("curl", "-s", "https://example.com/"), b.return32(0, 0), b.zonename("webzone")),
        bb.record(b.header32(23, now - 590, 0), b.path("/usr/sbin/svcadm"), alice_as_root,
                  b.exec_args("svcadm", "restart", "nginx"), b.return32(0, 0), b.zonename("webzone")),
        bb.record(b.header32(23, now - 580, 0), b.path("/usr/bin/psql"),
                  b.subject32(1002, 0, 0, 1002, 10, 5001, 90, 0, "0.0.0.0"),
                  b.exec_args("psql"), b.return32(0, 0), b.zonename("dbzone")),
        bb.record(b.header32(32, now - 570, 0), b.arg32(1, 3, "fd"),
                  b.socket_ex_ipv4(2, 2, 40000, "10.0.0.5", 443, "203.0.113.9"), subject_alice,
                  b.return32(0, 0), b.zonename("webzone")),
        bb.record(b.header32(32, now - 7200, 0), b.arg32(1, 3, "fd"),
                  b.socket_ex_ipv4(2, 2, 40001, "10.0.0.5", 443, "198.51.100.77"), subject_alice,
                  b.return32(0, 0), b.zonename("webzone")),
        bb.record(b.header32(6172, now - 560, 0), b.subject32(*nobody, 5151, 5151, ssh, "192.0.2.66"),
                  b.text("bad password"), b.return32(0xFF, 5), b.zonename("webzone")),
        bb.record(b.header32(6172, now - 550, 0), b.subject32(*nobody, 5152, 5152, ssh, "192.0.2.66"),
                  b.text("bad password"), b.return32(0xFF, 5), b.zonename("webzone")),
        bb.record(b.header32(6172, now - 540, 0), subject_alice, b.text("successful login alice"),
                  b.return32(0, 0), b.zonename("webzone")),
        bb.record(b.header32(142, now - 530, 0), b.arg32(1, 0x20, "policy"),
                  b.subject32(1001, 0, 0, 0, 0, 800, 77, 0, "0.0.0.0"), b.return32(0, 0), b.zonename("global")),
    ]  # fmt: skip
    return b"".join(records)


def _linux_lines(now: int) -> bytes:
    """Linux fixture events (a root curl connecting out, logins, one failed from 179.38.151.221) with
    each event moved into the last minutes, in order, serials kept."""
    logs = [
        LINUX_FIXTURES / "audisp-remote" / "captures" / "input-events.log",
        LINUX_FIXTURES / "third_party" / "go-libaudit" / "auparse" / "testdata" / "audit-ubuntu16.log",
    ]
    lines = b"".join(log.read_bytes() for log in logs)
    stamps: dict[bytes, int] = {}

    def moved(m: re.Match[bytes]) -> bytes:
        new = stamps.setdefault(m.group(1), now - 400 + len(stamps))
        return b"audit(%d.%s:" % (new, m.group(2))

    return re.sub(rb"audit\((\d+)\.(\d+):", moved, lines)


@pytest.fixture(scope="module")
def indexed(search_engine: SearchEngine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SearchEngine]:
    tmp = tmp_path_factory.mktemp("queries")
    now = int(time.time())
    (tmp / "hosts.bsm").write_bytes(_bsm_records(now))
    (tmp / "linux.log").write_bytes(_linux_lines(now))
    table = service_config(
        tmp,
        search_engine.url,
        search={"index": f"{INDEX_PREFIX}-%Y.%m.%d", "dead_letter_index": f"{INDEX_PREFIX}-dlq-%Y.%m"},
    )
    config = tmp / "auditrecv.toml"
    config.write_text(to_toml(table))
    search_engine.delete_indices(f"{INDEX_PREFIX}-*")
    res = subprocess.run(
        [sys.executable, "-m", "auditrecv", "import", "-c", str(config), "--host", SENDER,
         str(tmp / "hosts.bsm"), str(tmp / "linux.log")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    search_engine.refresh(f"{INDEX_PREFIX}-*")
    yield search_engine
    search_engine.delete_indices(f"{INDEX_PREFIX}-*")


def _run(engine: SearchEngine, name: str) -> dict[str, Any]:
    _, reply = engine.request("POST", f"/{INDEX_PREFIX}-*/_search", documented_queries()[name])
    assert reply["_shards"]["failed"] == 0, reply
    out: dict[str, Any] = reply
    return out


def _buckets(agg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(bucket["key"]): bucket for bucket in agg["buckets"]}


def test_every_question_has_a_query_and_each_is_tested() -> None:
    assert set(documented_queries()) == {
        "outbound-connections",
        "root-executions-in-zone",
        "failed-logins-by-source",
        "audit-configuration-changes",
    }


def test_outbound_connections_in_the_last_hour(indexed: SearchEngine) -> None:
    processes = _buckets(_run(indexed, "outbound-connections")["aggregations"]["process"])
    answer = {
        exe: ({u["key"] for u in p["user"]["buckets"]}, {d["key"] for d in p["destination"]["buckets"]})
        for exe, p in processes.items()
    }
    # Linux: curl as root to 192.0.2.1; illumos: a process of uid 1001 in webzone to 203.0.113.9 (its record
    # names no program). The illumos connection two hours ago is not in the last hour.
    assert answer == {
        "/usr/bin/curl": ({"0"}, {"192.0.2.1"}),
        "(pid only)": ({"1001"}, {"203.0.113.9"}),
    }


def test_root_executions_in_a_zone(indexed: SearchEngine) -> None:
    hits = [h["_source"] for h in _run(indexed, "root-executions-in-zone")["hits"]["hits"]]
    # alice's curl ran as herself, and psql ran as root in another zone: neither is the answer.
    assert hits == [
        {
            "@timestamp": hits[0]["@timestamp"],
            "host": {"name": SENDER},
            "container": {"name": "webzone"},
            "user": {"audit": {"id": "1001"}, "id": "1001"},
            "process": {"executable": "/usr/sbin/svcadm", "args": ["svcadm", "restart", "nginx"]},
        }
    ]


def test_failed_logins_by_source_address(indexed: SearchEngine) -> None:
    sources = _buckets(_run(indexed, "failed-logins-by-source")["aggregations"]["source"])
    answer = {ip: (s["doc_count"], {a["key"] for a in s["accounts"]["buckets"]}) for ip, s in sources.items()}
    # Two bad ssh passwords on the illumos zone, one invalid user on the Ubuntu host; successful logins
    # (from 198.51.100.23, 203.0.113.9 and 72.83.230.100) are not failures.
    assert answer == {"192.0.2.66": (2, set()), "179.38.151.221": (1, {"(invalid user)"})}
    assert list(sources) == ["192.0.2.66", "179.38.151.221"]  # most failures first


def test_audit_configuration_changes(indexed: SearchEngine) -> None:
    hits = [h["_source"] for h in _run(indexed, "audit-configuration-changes")["hits"]["hits"]]
    assert [(h["event"]["action"], h["user"]["audit"]["id"], h["user"]["id"]) for h in hits] == [
        ("changed-audit-configuration", "1001", "0")
    ]


# --------------------------------------------------------------------------- the starter dashboards


def _dashboards() -> Any:
    """scripts/gen_dashboards.py, imported as a module (it is a script, not part of the package)."""
    import importlib.util

    if "gen_dashboards" not in sys.modules:
        spec = importlib.util.spec_from_file_location("gen_dashboards", REPO / "scripts" / "gen_dashboards.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["gen_dashboards"] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules["gen_dashboards"]


def _mapped_fields(properties: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for name, body in properties.items():
        if "properties" in body:
            out |= _mapped_fields(body["properties"], f"{prefix}{name}.")
        else:
            out[f"{prefix}{name}"] = body.get("type", "object")
    return out


def test_the_dashboard_files_are_the_generators_output() -> None:
    res = subprocess.run([sys.executable, str(REPO / "scripts" / "gen_dashboards.py"), "--check"], capture_output=True)
    assert res.returncode == 0, res.stderr.decode()
    gen = _dashboards()
    for name in gen.FILES:
        objects = [json.loads(line) for line in (REPO / "deploy" / "dashboards" / name).read_text().splitlines()]
        by_type: dict[str, list[dict[str, Any]]] = {}
        for obj in objects:
            by_type.setdefault(obj["type"], []).append(obj)
        (dashboard,) = by_type["dashboard"]
        # Every panel's reference resolves to a visualization in the file, which uses the file's index pattern.
        vis_ids = {v["id"] for v in by_type["visualization"]}
        assert {r["id"] for r in dashboard["references"]} == vis_ids
        panel_refs = {p["panelRefName"] for p in json.loads(dashboard["attributes"]["panelsJSON"])}
        assert panel_refs == {r["name"] for r in dashboard["references"]}
        (pattern,) = by_type["index-pattern"]
        for vis in by_type["visualization"]:
            assert [r["id"] for r in vis["references"]] == [pattern["id"]]
        # Each product's version marks: Kibana 8/9 refuse objects without a core version they accept.
        for obj in objects:
            if name == "kibana.ndjson":
                assert (obj["coreMigrationVersion"], obj["typeMigrationVersion"]) == ("8.8.0", "7.10.0")
            else:
                assert obj["migrationVersion"] == {obj["type"]: "7.10.0"} and "coreMigrationVersion" not in obj


@pytest.mark.parametrize("flavor,version", [("opensearch", "2.19.1"), ("elasticsearch", "8.19.0")])
def test_every_field_a_dashboard_uses_is_in_the_index_template(flavor: str, version: str) -> None:
    from auditrecv.schema.templates import build_mappings

    mapped = _mapped_fields(build_mappings(flavor, version)["properties"])
    gen = _dashboards()
    used = {name for panel in gen.PANELS for name in panel.fields()} | {"@timestamp"}
    for name in sorted(used):
        assert name in mapped, f"{name} is not in the {flavor} template"
        # Split and filter fields must be aggregatable: keywords, numbers, ips, dates; never text.
        assert mapped[name] in {"keyword", "constant_keyword", "ip", "long", "integer", "date", "date_nanos"}, name
    # The same vocabulary the visualizations name in their saved objects.
    for line in (REPO / "deploy" / "dashboards" / "kibana.ndjson").read_text().splitlines():
        obj = json.loads(line)
        if obj["type"] == "visualization":
            state = json.loads(obj["attributes"]["visState"])
            assert {a["params"]["field"] for a in state["aggs"] if "field" in a["params"]} <= used


def test_every_dashboard_panel_shows_the_indexed_events(indexed: SearchEngine) -> None:
    """Each panel's query and aggregations (the Query DSL of its KQL and buckets) over the indexed events:
    no panel is empty, and the tables show what the questions above found."""
    gen = _dashboards()
    rows: dict[str, set[tuple[str, ...]]] = {}
    for panel in gen.PANELS:
        body = {"size": 0, "query": panel.query_dsl(), "aggs": gen.aggregation_dsl(panel)}
        _, reply = indexed.request("POST", f"/{INDEX_PREFIX}-*/_search", body)
        assert reply["hits"]["total"]["value"] > 0, panel.id
        top = reply["aggregations"]
        if panel.kind == "histogram":
            top = {
                "level0": {"buckets": [b for slot in top["over_time"]["buckets"] for b in slot["level0"]["buckets"]]}
            }
        found: set[tuple[str, ...]] = set()

        def walk(agg: dict[str, Any], depth: int, path: tuple[str, ...], found: set[tuple[str, ...]] = found) -> None:
            for bucket in agg[f"level{depth}"]["buckets"]:
                here = (*path, str(bucket.get("key_as_string", bucket["key"])))
                if f"level{depth + 1}" in bucket:
                    walk(bucket, depth + 1, here)
                else:
                    found.add(here)

        walk(top, 0, ())
        assert found, panel.id
        rows[panel.id] = found
    assert ("/usr/bin/curl", "192.0.2.1", "80") in rows["auditrecv-outbound-connections"]
    assert ("(pid only)", "203.0.113.9", "443") in rows["auditrecv-outbound-connections"]
    assert ("192.0.2.66", SENDER) in rows["auditrecv-failed-logins"]
    assert ("1001", "0", "/usr/sbin/svcadm") in rows["auditrecv-executions-by-user"]
    assert rows["auditrecv-audit-config-changes"] == {(SENDER, "changed-audit-configuration", "1001")}
    assert rows["auditrecv-events-by-zone"] == {("webzone",), ("dbzone",), ("(global zone, or not a zone)",)}
