"""Against the real engines: templates install, every fixture document indexes without a mapping error,
one query finds BSM and Linux documents together, and a resend of the same record is a 409."""

from __future__ import annotations

import json
from typing import Any

import pytest

from auditrecv.config import Search
from auditrecv.schema import build_templates, tables
from auditrecv.sink import BulkBatch, Result, index_for
from auditrecv.spool.record import Source
from tests.golden.native_core import bsm_document, bsm_documents, bsm_records, linux_documents, raw_bytes
from tests.infra.engine import SearchEngine
from tests.paths import BSM_FIXTURES, LINUX_FIXTURES
from tests.schema import bsm_build as b
from tests.schema.fixtures import golden_cases

PREFIX = "schematest"
BSM_SRC = Source("audit_remote", "192.0.2.7", 40001, "krb5", "host/cn1.example.com@EXAMPLE.COM", True, "main")
LINUX_SRC = Source("audisp_remote", "192.0.2.9", 50123, "", "", False, "linux")
OBS = {"hostname": "collector1", "name": "auditrecv-test", "version": "0.1.0"}
CURL_LINES = [
    "node=web1.example.com type=SYSCALL msg=audit(1700000000.123:42): arch=c000003e syscall=59 success=no "
    "exit=-13 a0=1 a1=2 a2=3 a3=4 items=1 ppid=1 pid=4321 auid=1001 uid=1001 gid=1001 euid=1001 suid=1001 "
    'fsuid=1001 egid=1001 sgid=1001 fsgid=1001 tty=pts0 ses=3 comm="curl" exe="/usr/bin/curl" key="exec"',
    "node=web1.example.com type=PROCTITLE msg=audit(1700000000.123:42): "
    "proctitle=6375726C0068747470733A2F2F6578616D706C652E636F6D2F",
]


def _renamed(templates: dict[str, dict[str, Any]], prefix: str) -> dict[str, dict[str, Any]]:
    """The same templates under test-only names, so the sink's tests keep their own."""

    def rename(name: str) -> str:
        return prefix + name.removeprefix("auditrecv")

    components = {rename(k): v for k, v in templates["component_templates"].items()}
    indexes = {}
    for name, body in templates["index_templates"].items():
        indexes[rename(name)] = {**body, "composed_of": [rename(c) for c in body["composed_of"]]}
    return {"component_templates": components, "index_templates": indexes}


def _install(engine: SearchEngine, settings: Search, prefix: str) -> None:
    templates = _renamed(build_templates(engine.flavor, engine.version, settings), prefix)
    for name, body in templates["component_templates"].items():
        engine.request("PUT", f"/_component_template/{name}", body)
    for name, body in templates["index_templates"].items():
        engine.request("PUT", f"/_index_template/{name}", body)


def _documents() -> list[tuple[str, dict[str, Any]]]:
    """(document id, document) for every fixture record and event."""
    out: list[tuple[str, dict[str, Any]]] = []
    raws = list(b.ALL.values())
    for name in ("plaso/apple.bsm", "plaso/openbsm.bsm", "openbsm/samples/execve-long-args.trail"):
        raws += [raw_bytes(r) for r in bsm_records((BSM_FIXTURES / name).read_bytes())]
    # the documents the pipeline builds (native core); a dead letter: a truncated header
    unique = [*dict.fromkeys(raws), b"\x14\x00\x00\x00"]
    for doc_id, doc, why in bsm_documents(unique, source=BSM_SRC, observer=OBS, received_ns=1_700_000_000_000_000_000):
        assert doc is not None, why
        out.append((doc_id, doc))
    logs = [CURL_LINES] + [lines for _, _, lines, _ in golden_cases()]
    base = LINUX_FIXTURES / "third_party" / "audit-userspace-v3.0.9" / "auparse" / "test"
    for log in sorted(base.glob("*.log")):
        logs.append(log.read_text(encoding="utf-8", errors="replace").splitlines())
    seen: set[str] = set()
    for lines in logs:
        for doc_id, doc in linux_documents(
            lines, source=LINUX_SRC, observer=OBS, received_ns=1_700_000_000_000_000_000
        ):
            if doc_id not in seen:
                seen.add(doc_id)
                out.append((doc_id, doc))
    # what the enrichment stage adds for a Triton zone (auditrecv/enrich): mapped by the same template
    enriched = bsm_document(b.CONNECT, BSM_SRC, OBS, received_ns=1)
    vm = "0b5f0d3e-1111-4c3a-9e0e-5d2b9c6f7a10"
    enriched["container"].update({"id": vm, "name": "web-prod-1", "labels": {"role": "web"}})
    enriched["orchestrator"] = {"type": "triton", "resource": {"type": "vm", "id": vm, "name": "web-prod-1"}}
    enriched["cloud"] = {
        "provider": "triton",
        "instance": {"id": vm, "name": "web-prod-1"},
        "account": {"id": "9f1d2c3b-0000-4000-8000-000000000001", "name": "alice"},
    }
    enriched["labels"].update({"zonealias": "alice-web-prod-1", "datacenter": "ams1"})
    enriched["auditrecv"]["zlogin"] = {
        "zone": {"id": vm, "name": "web-prod-1"},
        "zonealias": "alice-web-prod-1",
        "owner": {"id": "9f1d2c3b-0000-4000-8000-000000000001", "name": "alice"},
    }
    out.append(("enriched-connect", enriched))
    return out


def _bulk(engine: SearchEngine, docs: list[tuple[str, str, dict[str, Any]]]) -> list[dict[str, Any]]:
    lines: list[str] = []
    for index, doc_id, doc in docs:
        lines.append(json.dumps({"create": {"_index": index, "_id": doc_id}}))
        lines.append(json.dumps(doc))
    _, res = engine.request("POST", "/_bulk", ndjson=("\n".join(lines) + "\n").encode())
    items = [item["create"] for item in res["items"]]
    assert len(items) == len(docs)
    return items


def _mapped_paths(properties: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for name, spec in properties.items():
        path = f"{prefix}.{name}" if prefix else name
        if "properties" in spec:
            out += _mapped_paths(spec["properties"], path)
        else:
            out.append((path, spec.get("type", "object")))
    return out


def test_every_document_indexes_and_queries_span_both_operating_systems(search_engine: SearchEngine) -> None:
    engine = search_engine
    engine.delete_indices(f"{PREFIX}-*")
    engine.delete_index_templates(f"{PREFIX}*")
    settings = Search(number_of_replicas=0, index=f"{PREFIX}-%Y.%m.%d", dead_letter_index=f"{PREFIX}-dlq-%Y.%m")
    try:
        _install(engine, settings, PREFIX)
        docs = [(index_for(settings, doc), doc_id, doc) for doc_id, doc in _documents()]
        assert len(docs) > 150
        items = _bulk(engine, docs)
        errors = [(i["_id"], i.get("error")) for i in items if i["status"] != 201]
        assert errors == []
        assert engine.count(f"{PREFIX}-*") == len(docs)

        # the engine added no field of its own outside the open detail maps: the mapping is explicit
        _, mapping = engine.request("GET", f"/{PREFIX}-*/_mapping")
        declared = {f.name for f in tables.fields()}
        open_maps = tuple(f.name[:-1] for f in tables.fields() if f.name.endswith(".*"))
        for index_mapping in mapping.values():
            for path, _type in _mapped_paths(index_mapping["mappings"]["properties"]):
                known = path in declared or path.startswith(open_maps) or f"{path}." in open_maps
                assert known, f"{path} was mapped dynamically"

        curl = engine.search(f"{PREFIX}-*", {"term": {"process.executable": "/usr/bin/curl"}})
        assert {d["event"]["module"] for d in curl} == {"bsm", "auditd"}
        failed_curl = engine.search(
            f"{PREFIX}-*",
            {
                "bool": {
                    "filter": [
                        {"term": {"process.executable": "/usr/bin/curl"}},
                        {"term": {"event.outcome": "failure"}},
                    ]
                }
            },
        )
        assert {(d["event"]["module"], d["host"]["name"]) for d in failed_curl} == {
            ("bsm", "cn1.example.com"),
            ("auditd", "web1.example.com"),
        }
        by_user = engine.search(f"{PREFIX}-*", {"term": {"user.id": "1001"}})
        assert {d["event"]["module"] for d in by_user} == {"bsm", "auditd"}
        zone = engine.search(f"{PREFIX}-*", {"term": {"container.id": "webzone"}})
        assert len(zone) == 3
        owned = engine.search(f"{PREFIX}-*", {"term": {"cloud.account.name": "alice"}})
        assert [d["orchestrator"]["resource"]["name"] for d in owned] == ["web-prod-1"]
        nanos = engine.search(f"{PREFIX}-*", {"term": {"@timestamp": "2023-11-14T22:13:20.123456789Z"}})
        assert [d["process"]["executable"] for d in nanos] == ["/usr/bin/curl"]

        # a retransmission maps to the same document: create answers 409 for every one
        again = _bulk(engine, docs[:20])
        assert {i["status"] for i in again} == {409}
        assert engine.count(f"{PREFIX}-*") == len(docs)
    finally:
        engine.delete_indices(f"{PREFIX}-*")
        engine.delete_index_templates(f"{PREFIX}*")


def test_data_stream_mode_accepts_the_documents(search_engine: SearchEngine) -> None:
    engine = search_engine
    if not engine.supports_data_streams:
        pytest.skip(f"{engine.flavor} {engine.version} (OSS build) has no data streams")
    stream = f"logs-{PREFIX}ds-default"
    prefix = f"{PREFIX}ds"
    engine.delete_indices(stream)
    engine.delete_index_templates(f"{prefix}*")
    settings = Search(
        mode="data_stream", data_stream=stream, number_of_replicas=0, dead_letter_index=f"{prefix}-dlq-%Y.%m"
    )
    try:
        _install(engine, settings, prefix)
        docs = [(index_for(settings, doc), doc_id, doc) for doc_id, doc in _documents()[:40]]
        items = _bulk(engine, docs)
        assert [i for i in items if i["status"] != 201] == []
        assert engine.count(stream) == len(docs)
    finally:
        engine.delete_indices(stream)
        engine.delete_index_templates(f"{prefix}*")


def test_compat_v1_documents_index_under_their_template(search_engine: SearchEngine) -> None:
    engine = search_engine
    prefix = f"{PREFIX}v1"
    engine.delete_indices(f"{prefix}-*")
    engine.delete_index_templates(f"{prefix}*")
    settings = Search(
        schema="auditrecv-v1", number_of_replicas=0, index=f"{prefix}-%Y-%m-%d", dead_letter_index=f"{prefix}-dlq-%Y.%m"
    )
    try:
        _install(engine, settings, prefix)
        docs: list[tuple[str, str, dict[str, Any]]] = []
        apple = bsm_records((BSM_FIXTURES / "plaso/apple.bsm").read_bytes())
        raws = [*dict.fromkeys(list(b.ALL.values()) + [raw_bytes(r) for r in apple])]
        for doc_id, doc, why in bsm_documents(raws, source=BSM_SRC, observer=OBS, received_ns=1, schema="auditrecv-v1"):
            assert doc is not None, why
            docs.append((index_for(settings, doc), doc_id, doc))
        for _, _, lines, _ in golden_cases()[:10]:
            for doc_id, doc in linux_documents(
                lines, source=LINUX_SRC, observer=OBS, received_ns=1, schema="auditrecv-v1"
            ):
                docs.append((index_for(settings, doc), doc_id, doc))
        items = _bulk(engine, docs)
        assert [(i["_id"], i.get("error")) for i in items if i["status"] != 201] == []
        hits = engine.search(f"{prefix}-*", {"term": {"path": "/etc/passwd"}})
        assert [h["event"] for h in hits] == ["rename"]
        assert engine.count(f"{prefix}-*", {"term": {"subject.terminal.remote_port": 61707}}) >= 5
    finally:
        engine.delete_indices(f"{prefix}-*")
        engine.delete_index_templates(f"{prefix}*")


def test_huge_argument_values_index_and_stay_whole(search_engine: SearchEngine) -> None:
    """A 40 kB argument exceeds Lucene's term limit; flat_object has no ignore_above (OpenSearch)."""
    engine = search_engine
    prefix = f"{PREFIX}big"
    engine.delete_indices(f"{prefix}-*")
    engine.delete_index_templates(f"{prefix}*")
    settings = Search(number_of_replicas=0, index=f"{prefix}-%Y.%m.%d", dead_letter_index=f"{prefix}-dlq-%Y.%m")
    huge = "A" * 40000
    raw = b.record(b.header32(23, b.T_SEC, 0), b.path("/usr/bin/x"), b.exec_args("x", huge), b.return32(0, 0))
    bsm_doc = bsm_document(raw, BSM_SRC, OBS, received_ns=1)
    linux_lines = [
        "type=SYSCALL msg=audit(1700000000.500:77): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 "
        "a3=4 items=0 ppid=1 pid=99 auid=1001 uid=1001 gid=1001 euid=1001 suid=1001 fsuid=1001 egid=1001 "
        'sgid=1001 fsgid=1001 tty=pts0 ses=3 comm="x" exe="/usr/bin/x" key=(null)',
        f'type=EXECVE msg=audit(1700000000.500:77): argc=2 a0="x" a1="{huge}"',
    ]
    ((_, linux_doc),) = linux_documents(linux_lines, source=LINUX_SRC, observer=OBS, received_ns=1)
    for doc in (bsm_doc, linux_doc):
        assert doc["process"]["args"] == ["x", huge]
        assert "long_values_cut_in_index" in doc["tags"]
    assert huge in json.loads(bsm_doc["bsm"]["tokens_full"])[1]["args"]
    assert huge in json.dumps(json.loads(linux_doc["auditd"]["records_full"]))
    try:
        _install(engine, settings, prefix)
        docs = [(index_for(settings, d), f"big{i}", d) for i, d in enumerate((bsm_doc, linux_doc))]
        items = _bulk(engine, docs)
        assert [(i["_id"], i.get("error")) for i in items if i["status"] != 201] == []
        stored = engine.search(f"{prefix}-*", {"term": {"process.executable": "/usr/bin/x"}})
        assert sorted(len(d["process"]["args"][1]) for d in stored) == [40000, 40000]
    finally:
        engine.delete_indices(f"{prefix}-*")
        engine.delete_index_templates(f"{prefix}*")


async def test_two_index_namings_keep_their_own_templates(search_engine: SearchEngine) -> None:
    """Two receivers with different (here: nested) index patterns on one cluster (issue 14, defect 9):
    each installs its own templates through the real set-up path, neither overwrites the other, and
    a document of each lands with its own receiver's mapping."""
    from auditrecv.sink import open_indexer
    from auditrecv.sink.naming import template_names

    engine = search_engine
    prefix = f"{PREFIX}tn"
    engine.delete_indices(f"{prefix}*")
    engine.delete_index_templates(f"{prefix}*")
    common: dict[str, Any] = {"urls": [engine.url], "number_of_replicas": 0}
    ecs = Search(index=f"{prefix}-%Y.%m.%d", dead_letter_index=f"{prefix}-dlq-a-%Y.%m", **common)
    v1 = Search(
        index=f"{prefix}-x-%Y.%m.%d", dead_letter_index=f"{prefix}-dlq-b-%Y.%m", schema="auditrecv-v1", **common
    )
    doc = {"@timestamp": "2026-11-22T10:00:00.000Z", "message": "m"}
    try:
        for settings in (ecs, v1):
            idx = await open_indexer(settings)
            try:
                outcomes = await idx.index(BulkBatch.of([(index_for(settings, doc), "tn1", dict(doc), None)]))
            finally:
                await idx.close()
            assert outcomes.results() == [Result.CREATED]

        names = {template_names(ecs).index_template, template_names(v1).index_template}
        assert names == {prefix, f"{prefix}-x"}
        _, res = engine.request("GET", f"/_index_template/{prefix}*")
        installed = {t["name"]: t["index_template"]["index_patterns"] for t in res["index_templates"]}
        assert installed == {
            prefix: [f"{prefix}-*"],
            f"{prefix}-x": [f"{prefix}-x-*"],
            f"{prefix}-dlq-a-dead-letter": [f"{prefix}-dlq-a-*"],
            f"{prefix}-dlq-b-dead-letter": [f"{prefix}-dlq-b-*"],
        }
        _, mapping = engine.request("GET", f"/{prefix}-2026.11.22,{prefix}-x-2026.11.22/_mapping")
        ecs_props = mapping[f"{prefix}-2026.11.22"]["mappings"]["properties"]
        v1_props = mapping[f"{prefix}-x-2026.11.22"]["mappings"]["properties"]
        assert ecs_props["process"]["properties"]["pid"] == {"type": "long"} and "exec_args" not in ecs_props
        assert "properties" in ecs_props["event"]  # ECS: event.* is an object
        assert v1_props["exec_args"]["type"] == "keyword" and v1_props["event"]["type"] == "keyword"
        assert v1_props["@timestamp"] == {"type": "date_nanos"}
    finally:
        engine.delete_indices(f"{prefix}*")
        engine.delete_index_templates(f"{prefix}*")
