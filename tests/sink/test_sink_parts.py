"""Batcher, engine detection, template installation (fake), naming, auth/TLS helpers."""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from auditrecv.config import Search
from auditrecv.sink import (
    BulkBatch,
    BulkIndexer,
    EngineAuthError,
    Result,
    SinkError,
    TemplateError,
    detect_engine,
    format_index,
    index_for,
    index_pattern,
    install_templates,
    open_indexer,
    parse_engine_info,
)
from auditrecv.sink.transport import NodePool, RetryPolicy, auth_header, parse_retry_after, ssl_context
from tests.sink.fake_engine import FakeEngine


@pytest.fixture
async def fake() -> AsyncIterator[FakeEngine]:
    engine = await FakeEngine().start()
    yield engine
    await engine.stop()


Doc = tuple[str, str, dict[str, Any] | bytes, Any]  # (index, id, source, token) for BulkBatch.of


def docs(n: int, start: int = 0) -> list[Doc]:
    return [("idx-a", f"d{i}", {"n": i}, i) for i in range(start, start + n)]


# ---------------------------------------------------------------------------- the batch


def test_batch_lines_by_position_and_a_source_no_json_holds() -> None:
    batch: BulkBatch[int] = BulkBatch()
    batch.add_lines("idx-a", "n0", b'{"create":{"_index":"idx-a","_id":"n0"}}\n{"n":0}\n', 0)
    batch.add("idx-a", "d1", {"n": 1}, 1)
    batch.add("idx-a", "big", {"n": {1: 2}}, 2)  # a key that is not a string: no JSON
    batch.add("idx-b", "d3", b'{\n  "n": 3\n}', 3)  # pretty-printed: written on one line
    one = b'{"create":{"_index":"idx-a","_id":"d1"}}\n{"n":1}\n'
    three = b'{"create":{"_index":"idx-b","_id":"d3"}}\n{"n":3}\n'
    assert batch.body(range(4)) == b'{"create":{"_index":"idx-a","_id":"n0"}}\n{"n":0}\n' + one + three
    assert batch.body(range(1, 2)) == one and batch.body([1, 3]) == one + three and batch.body([]) == b""
    assert batch.body([2]) == b""  # no lines: dead-lettered by the sink
    for positions in (range(4), range(1, 2), range(0), [1, 3], [3, 0], [2], []):
        assert batch.size(positions) == len(batch.body(positions)), positions
    assert batch.unencodable == {2: ("TypeError: Dict key must be str", "{'n': {1: 2}}")}
    merged: BulkBatch[int] = BulkBatch()
    merged.take(batch, [3, 2])
    merged.take(BulkBatch.of([("idx-c", "x", {"x": 1}, 9)]), range(1))
    assert (merged.ids, merged.indexes, merged.tokens) == (["d3", "big", "x"], ["idx-b", "idx-a", "idx-c"], [3, 2, 9])
    assert merged.unencodable == {1: batch.unencodable[2]} and merged.body([0]) == three


async def test_index_tells_per_document_only_what_was_not_created(fake: FakeEngine) -> None:
    fake.item_faults["idx-a/d1"] = [(400, "mapper_parsing_exception", "bad")]
    async with BulkIndexer(Search(urls=[fake.url])) as idx:
        first = await idx.index(BulkBatch.of(docs(3)))
        again = await idx.index(BulkBatch.of(docs(1)))
    assert first.results() == [Result.CREATED, Result.DEAD_LETTERED, Result.CREATED]
    assert list(first.confirmed) == [0, 1, 2] and first.tokens() == [0, 1, 2]
    assert set(first.details) == {1} and first.outcome(1).status == 400
    assert first.outcome(0).result is Result.CREATED
    assert again.results() == [Result.DUPLICATE] and again.outcome(0).status == 409


# ---------------------------------------------------------------------------- engine detection


def test_parse_engine_info_opensearch() -> None:
    body = b'{"version":{"distribution":"opensearch","number":"2.19.1"},"cluster_name":"c"}'
    info = parse_engine_info({}, body)
    got = (info.flavor, info.version, info.major, info.minor, info.cluster_name)
    assert got == ("opensearch", "2.19.1", 2, 19, "c")


def test_parse_engine_info_elasticsearch_header_and_old_tagline() -> None:
    info = parse_engine_info({"X-Elastic-Product": "Elasticsearch"}, b'{"version":{"number":"8.15.0-SNAPSHOT"}}')
    assert (info.flavor, info.major, info.minor) == ("elasticsearch", 8, 15)
    old = parse_engine_info({}, b'{"version":{"number":"7.10.2"},"tagline":"You Know, for Search"}')
    assert (old.flavor, old.major) == ("elasticsearch", 7)


@pytest.mark.parametrize("body", [b"not json", b'{"version":{"number":"1.0"}}', b'{"name":"x"}'])
def test_parse_engine_info_refuses_other_servers(body: bytes) -> None:
    with pytest.raises(SinkError):
        parse_engine_info({}, body)


@pytest.mark.parametrize(("flavor", "version"), [("opensearch", "2.11.0"), ("elasticsearch", "8.15.0")])
async def test_detect_engine_over_http(flavor: str, version: str) -> None:
    fake = await FakeEngine(flavor, version).start()
    try:
        async with BulkIndexer(Search(urls=[fake.url])) as idx:
            info = await detect_engine(idx)
        assert (info.flavor, info.version) == (flavor, version)
    finally:
        await fake.stop()


async def test_detect_engine_auth_refusal_is_an_auth_error(fake: FakeEngine) -> None:
    fake.auth_failures = 1
    async with BulkIndexer(Search(urls=[fake.url])) as idx:
        with pytest.raises(EngineAuthError):
            await detect_engine(idx)


# ---------------------------------------------------------------------------- templates


TEMPLATES: dict[str, Any] = {
    "ilm_policies": {"auditrecv-ilm": {"policy": {"phases": {}}}},
    "component_templates": {"c1": {"template": {"settings": {"number_of_shards": 1}}}},
    "index_templates": {"t1": {"index_patterns": ["a-*"], "composed_of": ["c1"], "priority": 200}},
}


async def test_install_templates_puts_each_in_order(fake: FakeEngine) -> None:
    async with BulkIndexer(Search(urls=[fake.url])) as idx:
        info = await detect_engine(idx)
        names = await install_templates(idx, info, TEMPLATES)
        again = await install_templates(idx, info, TEMPLATES)  # idempotent
    # opensearch: no ILM; its ISM section is absent here
    assert names == again == ["component_template/c1", "index_template/t1"]
    assert fake.templates["_index_template/t1"] == TEMPLATES["index_templates"]["t1"]


async def test_install_templates_elasticsearch_also_puts_ilm() -> None:
    fake = await FakeEngine("elasticsearch", "8.15.0").start()
    try:
        async with BulkIndexer(Search(urls=[fake.url])) as idx:
            names = await install_templates(idx, await detect_engine(idx), TEMPLATES)
        assert names == ["ilm_policy/auditrecv-ilm", "component_template/c1", "index_template/t1"]
    finally:
        await fake.stop()


async def test_rejected_template_error_names_it(fake: FakeEngine) -> None:
    fake.reject_templates["t1"] = "unknown setting [index.bogus]"
    async with BulkIndexer(Search(urls=[fake.url])) as idx:
        with pytest.raises(TemplateError, match=r"index_template 't1'.*unknown setting \[index.bogus\]"):
            await install_templates(idx, await detect_engine(idx), TEMPLATES)


async def test_open_indexer_detects_installs_then_indexes(fake: FakeEngine) -> None:
    settings = Search(urls=[fake.url], dead_letter_index="dl-%Y.%m", number_of_replicas=0)
    idx = await open_indexer(settings, templates_for=lambda info: TEMPLATES)
    try:
        outcomes = await idx.index(BulkBatch.of(docs(2)))
    finally:
        await idx.close()
    assert outcomes.results() == [Result.CREATED] * 2
    assert idx.engine.flavor == "opensearch"
    dl = fake.templates["_index_template/dl-dead-letter"]  # named after its own pattern
    assert dl["index_patterns"] == ["dl-*"]
    assert dl["template"]["settings"] == {"number_of_shards": 1, "number_of_replicas": 0}
    assert dl["template"]["mappings"]["properties"]["event"]["properties"]["original"]["index"] is False
    assert "_index_template/t1" in fake.templates


# ---------------------------------------------------------------------------- naming


def test_daily_index_from_event_time_in_utc() -> None:
    assert format_index("auditrecv-%Y.%m.%d", "2026-11-22T23:59:59.999Z") == "auditrecv-2026.11.22"
    assert format_index("auditrecv-%Y.%m.%d", "2026-11-23T01:00:00+02:00") == "auditrecv-2026.11.22"
    assert format_index("a-%Y.%m.%d-%H", "2026-11-23T01:30:00Z") == "a-2026.11.23-01"
    assert format_index("a-%Y.%m", datetime(2026, 1, 31, 23, tzinfo=UTC)) == "a-2026.01"
    assert format_index("a-%Y.%m.%d", 0) == "a-1970.01.01"
    fallback = datetime(2030, 5, 6, tzinfo=UTC)
    assert format_index("a-%Y.%m.%d", "garbage", default=fallback) == "a-2030.05.06"


def test_index_for_modes() -> None:
    doc = {"@timestamp": "2026-02-03T04:05:06Z"}
    assert index_for(Search(), doc) == "auditrecv-2026.02.03"
    assert index_for(Search(mode="data_stream", data_stream="logs-x-default"), doc) == "logs-x-default"


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [("auditrecv-%Y.%m.%d", "auditrecv-*"), ("auditrecv-dlq-%Y.%m", "auditrecv-dlq-*"), ("x-%Y-%%", "x-*-%")],
)
def test_index_pattern(pattern: str, expected: str) -> None:
    assert index_pattern(pattern) == expected


# ---------------------------------------------------------------------------- http helpers


def test_auth_headers() -> None:
    assert auth_header(Search()) is None
    assert auth_header(Search(username="elastic", password="changeme")) == "Basic ZWxhc3RpYzpjaGFuZ2VtZQ=="
    assert auth_header(Search(api_key="VuaCfGcBCdbkQm-e5aOx:ui2lp2axTNmsyakw9tvNnw")) == (
        "ApiKey VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="  # Elastic's documented example
    )


def test_verify_certs_false_warns_loudly(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="auditrecv.sink"):
        ctx = ssl_context(Search(urls=["https://es:9200"], verify_certs=False))
    assert ctx is not None and ctx.verify_mode == ssl.CERT_NONE and not ctx.check_hostname
    assert "verify_certs = false" in caplog.text
    assert ssl_context(Search(urls=["http://es:9200"])) is None
    strict = ssl_context(Search(urls=["https://es:9200"]))
    assert strict is not None and strict.verify_mode == ssl.CERT_REQUIRED and strict.check_hostname


def test_retry_after_forms() -> None:
    assert parse_retry_after("12") == 12.0
    now = datetime(2026, 11, 22, 19, 0, tzinfo=UTC).timestamp()
    assert parse_retry_after("Sun, 22 Nov 2026 19:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_node_pool_round_robin_and_revival() -> None:
    pool = NodePool(["http://a/", "http://b", "http://c"], RetryPolicy(node_dead_initial=5))
    assert [pool.pick(0).url for _ in range(4)] == ["http://a", "http://b", "http://c", "http://a"]
    pool.failed(pool.nodes[1], now=0)
    assert [pool.pick(1).url for _ in range(3)] == ["http://c", "http://a", "http://c"]
    assert [pool.pick(6).url for _ in range(3)] == ["http://a", "http://b", "http://c"]
    for n in pool.nodes:
        pool.failed(n, now=10)
    pool.nodes[2].dead_until = 11
    assert pool.pick(10).url == "http://c"  # all dead: the one back soonest
