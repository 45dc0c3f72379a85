"""BulkIndexer against the REAL engines of the `every_engine` fixture (embedded OpenSearch 2.19 and 3.x,
Elasticsearch 7.17, 8.19 and 9.x)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from auditrecv.config import Search
from auditrecv.sink import (
    BulkBatch,
    BulkIndexer,
    Result,
    TemplateError,
    bulk,
    dead_letter_template,
    detect_engine,
    install_templates,
    open_indexer,
    policy,
)
from tests.infra.engine import SearchEngine

PREFIX = "sinktest"
INDEX = f"{PREFIX}-2026.11.22"
DLQ_PATTERN = f"{PREFIX}dlq-%Y.%m"


def template_bodies() -> dict[str, Any]:
    return {
        "component_templates": {
            f"{PREFIX}-settings": {"template": {"settings": {"number_of_shards": 1, "number_of_replicas": 0}}},
        },
        "index_templates": {
            f"{PREFIX}-daily": {
                "index_patterns": [f"{PREFIX}-*"],
                "priority": 500,
                "composed_of": [f"{PREFIX}-settings"],
                "template": {
                    "mappings": {
                        "properties": {
                            "@timestamp": {"type": "date"},
                            "n": {"type": "long"},
                            "message": {"type": "keyword"},
                        }
                    }
                },
            }
        },
    }


def settings_for(engine: SearchEngine, **kw: Any) -> Search:
    base: dict[str, Any] = {"dead_letter_index": DLQ_PATTERN, "number_of_replicas": 0}
    base.update(kw)
    return Search(urls=[engine.url], **base)


@pytest.fixture
def clean(every_engine: SearchEngine) -> Iterator[SearchEngine]:
    def wipe() -> None:
        every_engine.delete_indices(f"{PREFIX}*")
        every_engine.delete_indices(f"logs-{PREFIX}-*")
        every_engine.delete_index_templates(f"{PREFIX}*")

    wipe()
    yield every_engine
    wipe()


Doc = tuple[str, str, dict[str, Any] | bytes, Any]  # (index, id, source, token) for BulkBatch.of


def make_docs(n: int, index: str = INDEX) -> list[Doc]:
    return [
        (index, f"doc-{i:05d}", {"@timestamp": "2026-11-22T10:00:00.000Z", "n": i, "message": f"m{i}"}, i)
        for i in range(n)
    ]


async def test_engine_detection(every_engine: SearchEngine) -> None:
    async with BulkIndexer(Search(urls=[every_engine.url])) as idx:
        info = await detect_engine(idx)
    assert info.flavor == every_engine.flavor
    assert info.version == every_engine.version
    assert info.major == int(every_engine.version.split(".")[0])


async def test_docs_arrive_exactly_once_and_reindexing_adds_nothing(
    clean: SearchEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = clean
    settings = settings_for(engine, batch_max_docs=150)
    fast_path: list[bool] = []  # what `all_created` said of each real reply

    def all_created(body: bytes, sent: int) -> bool:
        fast_path.append(policy.all_created(body, sent))
        return fast_path[-1]

    monkeypatch.setattr(bulk, "all_created", all_created)
    async with BulkIndexer(settings) as idx:
        info = await detect_engine(idx)
        installed = await install_templates(idx, info, template_bodies())
        assert installed == [f"component_template/{PREFIX}-settings", f"index_template/{PREFIX}-daily"]
        first = await idx.index(BulkBatch.of(make_docs(1000)))
        assert fast_path == [True] * 7  # this engine's replies take the fast path when all are created
        second = await idx.index(BulkBatch.of(make_docs(1000)))
        assert fast_path[7:] == [False] * 7  # 409s: read item by item
    assert first.results() == [Result.CREATED] * 1000
    assert first.tokens() == list(range(1000))
    assert second.results() == [Result.DUPLICATE] * 1000  # 409 from the real engine
    assert engine.count(f"{PREFIX}-*") == 1000
    assert engine.count(INDEX, {"term": {"n": 999}}) == 1
    _, mapping = engine.request("GET", f"/{INDEX}/_mapping")
    assert mapping[INDEX]["mappings"]["properties"]["n"] == {"type": "long"}  # our template applied
    assert idx.metrics.docs_created == 1000 and idx.metrics.docs_duplicate == 1000


async def test_real_mapping_error_is_dead_lettered(clean: SearchEngine) -> None:
    engine = clean
    settings = settings_for(engine)
    templates = template_bodies()
    templates["index_templates"][f"{PREFIX}-dead-letter"] = dead_letter_template(settings)
    bad = {"@timestamp": "2026-11-22T10:00:00.000Z", "n": "not a number", "message": "bad"}
    docs = [*make_docs(2), (INDEX, "bad-1", bad, "tok")]
    async with BulkIndexer(settings) as idx:
        await install_templates(idx, await detect_engine(idx), templates)
        outcomes = await idx.index(BulkBatch.of(docs))
    assert outcomes.results() == [Result.CREATED, Result.CREATED, Result.DEAD_LETTERED]
    dead = outcomes.outcome(2)
    assert dead.status == 400 and 2 in outcomes.confirmed and outcomes.batch.tokens[2] == "tok"
    assert dead.error_type in ("mapper_parsing_exception", "document_parsing_exception")
    dlq_index = datetime.now(UTC).strftime(DLQ_PATTERN)
    (hit,) = engine.hits(f"{PREFIX}dlq-*")
    assert (hit["_index"], hit["_id"]) == (dlq_index, "bad-1")
    src = hit["_source"]
    assert src["event"]["original"] == '{"@timestamp":"2026-11-22T10:00:00.000Z","n":"not a number","message":"bad"}'
    assert src["error"]["type"] == dead.error_type
    assert src["auditrecv"]["dead_letter"]["index"] == INDEX
    _, mapping = engine.request("GET", f"/{dlq_index}/_mapping")
    original = mapping[dlq_index]["mappings"]["properties"]["event"]["properties"]["original"]
    assert original["index"] is False  # kept, not indexed
    assert engine.count(INDEX) == 2


async def test_rejected_template_names_itself_and_quotes_the_engine(clean: SearchEngine) -> None:
    broken = {
        "index_templates": {
            f"{PREFIX}-broken": {
                "index_patterns": [f"{PREFIX}-x-*"],
                "template": {"mappings": {"properties": {"n": {"type": "no_such_type"}}}},
            }
        }
    }
    async with BulkIndexer(settings_for(clean)) as idx:
        with pytest.raises(TemplateError) as err:
            await install_templates(idx, await detect_engine(idx), broken)
    assert f"{PREFIX}-broken" in str(err.value)
    assert "no_such_type" in str(err.value)


async def test_open_indexer_installs_templates_before_indexing(clean: SearchEngine) -> None:
    engine = clean
    # The dead-letter template is named after its pattern (sinktestdlq-* -> sinktestdlq-dead-letter),
    # so the `clean` fixture removes it and the session's default one is left alone.
    idx = await open_indexer(settings_for(engine), templates_for=lambda info: template_bodies())
    try:
        outcomes = await idx.index(BulkBatch.of(make_docs(5)))  # waits for detection + templates
    finally:
        await idx.close()
    assert all(r is Result.CREATED for r in outcomes.results())
    assert idx.engine is not None and idx.engine.flavor == engine.flavor
    _, res = engine.request("GET", f"/_index_template/{PREFIX}dlq-dead-letter")
    assert res["index_templates"][0]["index_template"]["index_patterns"] == [f"{PREFIX}dlq-*"]
    assert engine.count(INDEX) == 5


async def test_data_stream_create_and_duplicates(every_engine: SearchEngine) -> None:
    engine = every_engine
    if not engine.supports_data_streams:
        pytest.skip(f"{engine.flavor} {engine.version} here has no data streams (no x-pack)")
    stream = f"logs-{PREFIX}-default"
    engine.delete_indices(stream)
    engine.delete_index_templates(f"{PREFIX}-stream")
    templates = {
        "index_templates": {
            f"{PREFIX}-stream": {
                "index_patterns": [stream],
                "data_stream": {},
                "priority": 500,
                "template": {
                    "settings": {"number_of_replicas": 0},
                    "mappings": {"properties": {"n": {"type": "long"}}},
                },
            }
        }
    }
    try:
        async with BulkIndexer(settings_for(engine, mode="data_stream", data_stream=stream)) as idx:
            await install_templates(idx, await detect_engine(idx), templates)
            first = await idx.index(BulkBatch.of(make_docs(20, index=stream)))
            second = await idx.index(BulkBatch.of(make_docs(20, index=stream)))
        assert first.results() == [Result.CREATED] * 20
        assert second.results() == [Result.DUPLICATE] * 20
        assert engine.count(stream) == 20
        _, res = engine.request("GET", f"/_data_stream/{stream}")
        assert res["data_streams"][0]["name"] == stream
    finally:
        engine.delete_indices(stream)
        engine.delete_index_templates(f"{PREFIX}-stream")


async def test_schema_package_templates_install(clean: SearchEngine) -> None:
    """The real templates of auditrecv.schema go in through install_templates on every engine flavor.

    Installed under renamed names (and a pattern of our own) so the session's shared engine keeps the
    templates other tests rely on.
    """
    from auditrecv.sink import schema_templates

    settings = Search(urls=[clean.url], index=f"{PREFIX}schema-%Y.%m.%d", number_of_replicas=0)
    build = schema_templates(settings)
    assert build is not None
    async with BulkIndexer(settings) as idx:
        info = await detect_engine(idx)
        original = build(info)
        rename = {n: f"{PREFIX}-{n}" for n in original["component_templates"]}
        index_templates = {
            f"{PREFIX}-{n}": dict(body, composed_of=[rename[c] for c in body.get("composed_of", [])])
            for n, body in original["index_templates"].items()
        }
        templates = {
            "component_templates": {rename[n]: b for n, b in original["component_templates"].items()},
            "index_templates": index_templates,
        }
        names = await install_templates(idx, info, clean.adapt_templates(templates))
        outcomes = await idx.index(
            BulkBatch.of(
                [(f"{PREFIX}schema-2026.11.22", "s1", {"@timestamp": "2026-11-22T10:00:00Z", "message": "m"}, None)]
            )
        )
    assert len(names) == len(rename) + len(index_templates)
    assert outcomes.results() == [Result.CREATED]
    _, settings_res = clean.request("GET", f"/{PREFIX}schema-2026.11.22/_settings")
    assert settings_res[f"{PREFIX}schema-2026.11.22"]["settings"]["index"]["number_of_replicas"] == "0"
