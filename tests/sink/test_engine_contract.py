"""The sink's contract with every engine major version users run (``every_engine``: OpenSearch 2.19 and 3.x,
Elasticsearch 7.17, 8.19 and 9.x, embedded; or the cluster of ``AUDITRECV_ES_URL``).

Through ``open_indexer``, as the service does it: the schema's real templates go in, ECS documents built
from real fixture records land in their daily index or the data stream, a resend is a 409 (duplicate), a
document the mapping refuses becomes a dead letter under the dead-letter template. On engines with data
streams, our template must win over the built-in ``logs`` template of Elasticsearch 8/9 (priority 100,
``logs-*-*``): the embedded nodes have no x-pack, hence no built-in template, so an equivalent one is
installed here first. TLS and authentication are not part of it: no embedded engine has its security plugin
(tests/sink/test_tls.py covers the client side against a TLS server of its own).
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from auditrecv.config import Search
from auditrecv.schema.templates import build_templates
from auditrecv.sink import (
    BulkBatch,
    BulkIndexer,
    EngineInfo,
    Result,
    detect_engine,
    index_for,
    install_templates,
    open_indexer,
)
from auditrecv.sink.naming import template_names
from auditrecv.spool.record import Source
from tests.golden.native_core import bsm_documents, bsm_records, linux_documents, raw_bytes
from tests.infra.engine import SearchEngine
from tests.paths import BSM_FIXTURES

PREFIX = "contract"
STREAM = f"logs-{PREFIX}-default"
BSM_SRC = Source("audit_remote", "192.0.2.7", 40001, "krb5", "host/cn1.example.com@EXAMPLE.COM", True, "main")
LINUX_SRC = Source("audisp_remote", "192.0.2.9", 50123, "", "", False, "linux")
OBSERVER = {"hostname": "collector1", "name": "auditrecv-test", "version": "0.1.0"}
LINUX_LINES = [
    "node=web1.example.com type=SYSCALL msg=audit(1700000000.123:42): arch=c000003e syscall=59 success=yes "
    "exit=0 a0=1 a1=2 a2=3 a3=4 items=1 ppid=1 pid=4321 auid=1001 uid=0 gid=0 euid=0 suid=0 "
    'fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=3 comm="id" exe="/usr/bin/id" key="exec"',
    'node=web1.example.com type=EXECVE msg=audit(1700000000.123:42): argc=1 a0="id"',
]
# What Elasticsearch 8/9 install as "logs" (x-pack's stack plugin): data streams for logs-*-*, priority 100.
BUILT_IN_LOGS_TEMPLATE = {
    "index_patterns": ["logs-*-*"],
    "data_stream": {},
    "priority": 100,
    "template": {
        "settings": {"number_of_replicas": 0},
        "mappings": {"_meta": {"template": "logs"}, "properties": {"message": {"type": "text"}}},
    },
    "_meta": {"description": "stand-in for the built-in logs template of Elasticsearch 8/9"},
}


def ecs_documents() -> list[tuple[str, dict[str, Any]]]:
    """(document id, ECS document) for a few real BSM records and one Linux event, as the pipeline makes them."""
    raw = (BSM_FIXTURES / "plaso" / "openbsm.bsm").read_bytes()
    payloads = [raw_bytes(record) for record in bsm_records(raw)[:8]]
    received_ns = 1_700_000_000_000_000_000
    out: list[tuple[str, dict[str, Any]]] = []
    for doc_id, doc, why in bsm_documents(payloads, source=BSM_SRC, observer=OBSERVER, received_ns=received_ns):
        assert doc is not None, why
        out.append((doc_id, doc))
    lines = [line.encode() if isinstance(line, str) else line for line in LINUX_LINES]
    out += linux_documents(lines, source=LINUX_SRC, observer=OBSERVER, received_ns=received_ns)
    return out


def daily_settings(engine: SearchEngine) -> Search:
    return Search(
        urls=[engine.url], index=f"{PREFIX}-%Y.%m.%d", dead_letter_index=f"{PREFIX}dlq-%Y.%m", number_of_replicas=0
    )


def stream_settings(engine: SearchEngine) -> Search:
    return Search(
        urls=[engine.url],
        mode="data_stream",
        data_stream=STREAM,
        dead_letter_index=f"{PREFIX}dlq-%Y.%m",
        number_of_replicas=0,
    )


def real_templates(engine: SearchEngine, settings: Search) -> Any:
    """The schema's templates for the detected engine, as the embedded node can take them."""

    def build(info: EngineInfo) -> Mapping[str, Any]:
        return engine.adapt_templates(build_templates(info.flavor, info.version, settings))

    return build


@pytest.fixture
def clean(every_engine: SearchEngine) -> Iterator[SearchEngine]:
    def wipe() -> None:
        every_engine.delete_indices(f"{PREFIX}*")
        every_engine.delete_indices(f"logs-{PREFIX}-*")
        every_engine.delete_index_templates(f"{PREFIX}*")
        every_engine.delete_index_templates(f"logs-{PREFIX}-*")

    wipe()
    yield every_engine
    wipe()


async def test_daily_indices_take_our_templates_and_a_resend_is_a_duplicate(clean: SearchEngine) -> None:
    engine = clean
    settings = daily_settings(engine)
    docs = [(index_for(settings, doc), doc_id, doc, n) for n, (doc_id, doc) in enumerate(ecs_documents())]
    idx = await open_indexer(settings, templates_for=real_templates(engine, settings))
    try:
        first = await idx.index(BulkBatch.of(docs))
        again = await idx.index(BulkBatch.of(docs))
    finally:
        await idx.close()
    assert idx.metrics.errors_by_status == {}, idx.metrics.last_error
    assert first.results() == [Result.CREATED] * len(docs)
    assert again.results() == [Result.DUPLICATE] * len(docs)  # a 409 from the engine itself
    assert engine.count(f"{PREFIX}-*") == len(docs)
    names = template_names(settings)
    _, res = engine.request("GET", f"/_index_template/{names.index_template}")
    assert res["index_templates"][0]["index_template"]["index_patterns"] == [f"{PREFIX}-*"]
    index = docs[0][0]
    _, mapping = engine.request("GET", f"/{index}/_mapping")
    properties = mapping[index]["mappings"]["properties"]
    assert properties["process"]["properties"]["pid"] == {"type": "long"}  # explicit, not guessed
    assert engine.count(f"{PREFIX}-*", {"term": {"event.module": "auditd"}}) == 1


async def test_a_document_the_mapping_refuses_becomes_a_dead_letter(clean: SearchEngine) -> None:
    engine = clean
    settings = daily_settings(engine)
    (doc_id, good), *_ = ecs_documents()
    bad = {**good, "process": {**good.get("process", {}), "pid": "not a number"}}
    index = index_for(settings, good)
    idx = await open_indexer(settings, templates_for=real_templates(engine, settings))
    try:
        outcomes = await idx.index(BulkBatch.of([(index, doc_id, good, "good"), (index, "bad-1", bad, "bad")]))
    finally:
        await idx.close()
    assert outcomes.results() == [Result.CREATED, Result.DEAD_LETTERED]
    dead = outcomes.outcome(1)
    assert dead.status == 400 and dead.error_type in ("mapper_parsing_exception", "document_parsing_exception")
    (hit,) = engine.hits(f"{PREFIX}dlq-*")
    assert (hit["_index"], hit["_id"]) == (datetime.now(UTC).strftime(f"{PREFIX}dlq-%Y.%m"), "bad-1")
    assert hit["_source"]["auditrecv"]["dead_letter"]["index"] == index
    assert '"pid":"not a number"' in hit["_source"]["event"]["original"]
    assert engine.count(index) == 1


async def test_data_stream_takes_our_template_over_the_built_in_logs_one(clean: SearchEngine) -> None:
    engine = clean
    if not engine.supports_data_streams:
        pytest.skip(f"{engine.flavor} {engine.version} here has no data streams (no x-pack)")
    settings = stream_settings(engine)
    docs = [(STREAM, doc_id, doc, n) for n, (doc_id, doc) in enumerate(ecs_documents())]
    external = engine.kind is None
    if not external:  # a real Elasticsearch 8/9 has it already; installing it would replace the real one
        engine.request("PUT", "/_index_template/logs", BUILT_IN_LOGS_TEMPLATE)
    try:
        idx = await open_indexer(settings, templates_for=real_templates(engine, settings))
        try:
            first = await idx.index(BulkBatch.of(docs))
            again = await idx.index(BulkBatch.of(docs))
        finally:
            await idx.close()
        assert first.results() == [Result.CREATED] * len(docs)
        assert again.results() == [Result.DUPLICATE] * len(docs)
        assert engine.count(STREAM) == len(docs)
        ours = template_names(settings).index_template
        _, res = engine.request("GET", f"/_data_stream/{STREAM}")
        (stream,) = res["data_streams"]
        assert stream["template"] == ours
        assert fnmatch.fnmatchcase(STREAM, "logs-*-*")  # both templates match it: the priority decided
        backing = stream["indices"][0]["index_name"]
        _, mapping = engine.request("GET", f"/{backing}/_mapping")
        mappings = mapping[backing]["mappings"]
        assert mappings["properties"]["process"]["properties"]["pid"] == {"type": "long"}
        assert mappings.get("_meta", {}).get("template") != "logs"  # nothing of the logs template
        if engine.flavor == "elasticsearch" and engine.version_tuple >= (8, 15):
            _, index_settings = engine.request("GET", f"/{backing}/_settings/index.mode")
            assert index_settings[backing]["settings"]["index"]["mode"] == "standard"  # not logsdb
    finally:
        if not external:
            engine.delete_indices(f"logs-{PREFIX}-*")
            engine.request("DELETE", "/_index_template/logs", ok=(200, 404))


async def test_retention_policy_is_installed_where_the_engine_manages_lifecycles(
    clean: SearchEngine, caplog: pytest.LogCaptureFixture
) -> None:
    """With ILM/ISM (a real cluster) the policy goes in before the templates that name it. The embedded nodes
    have neither: the templates go in without the policy (Elasticsearch: without the `index.lifecycle`
    setting, which it would refuse), and the sink says loudly that retention is not applied."""
    engine = clean
    settings = dataclasses.replace(daily_settings(engine), retention="30d")
    policy = f"{PREFIX}-retention"
    templates = real_templates(engine, settings)
    async with BulkIndexer(settings) as idx:
        info = await detect_engine(idx)
        names = await install_templates(idx, info, templates(info))
        outcomes = await idx.index(
            BulkBatch.of([(index_for(settings, doc), i, doc, None) for i, doc in ecs_documents()[:2]])
        )
    try:
        assert outcomes.results() == [Result.CREATED] * 2
        assert f"index_template/{PREFIX}" in names
        if engine.kind is not None and engine.flavor == "elasticsearch":  # embedded: no x-pack, no ILM
            assert not [n for n in names if n.startswith("ilm_policy/")]
            assert "retention not applied" in caplog.text
            _, got = engine.request("GET", f"/_component_template/{PREFIX}-settings")
            (component,) = got["component_templates"]
            assert "lifecycle" not in component["component_template"]["template"]["settings"]["index"]
        elif engine.kind is not None:  # embedded OpenSearch: no ISM plugin
            assert f"ism_policy/{policy}" not in names
            assert f"ISM policy '{policy}' not installed" in caplog.text
        elif engine.flavor == "elasticsearch":
            assert names[0] == f"ilm_policy/{policy}"
            _, res = engine.request("GET", f"/_ilm/policy/{policy}")
            assert res[policy]["policy"]["phases"]["delete"]["min_age"] == "30d"
        else:
            assert names[0] == f"ism_policy/{policy}"
    finally:
        if engine.kind is None:
            path = f"/_ilm/policy/{policy}" if engine.flavor == "elasticsearch" else f"/_plugins/_ism/policies/{policy}"
            engine.request("DELETE", path, ok=(200, 404))


def test_data_stream_template_pins_the_standard_index_mode_where_logsdb_exists() -> None:
    """Elasticsearch's logsdb settings provider gives a logs-*-* data stream index logsdb mode unless its
    settings name a mode (on by default from 9.0); index.mode exists from 8.15, when logsdb came."""
    stream = Search(mode="data_stream")
    for version, mode in (("9.5.3", "standard"), ("8.15.0", "standard"), ("8.14.3", None), ("7.17.28", None)):
        templates = build_templates("elasticsearch", version, stream)
        index = templates["component_templates"]["logs-auditrecv-default-settings"]["template"]["settings"]["index"]
        assert index.get("mode") == mode, version
    assert (
        "mode"
        not in build_templates("opensearch", "3.9.0", stream)["component_templates"]["logs-auditrecv-default-settings"][
            "template"
        ]["settings"]["index"]
    )
    daily = build_templates("elasticsearch", "9.5.3", Search())
    assert "mode" not in daily["component_templates"]["auditrecv-settings"]["template"]["settings"]["index"]
