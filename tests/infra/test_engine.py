"""Proof that every engine of ``every_engine`` is a real one: documents go in over HTTP and come back out of
Lucene, and the helpers (data-stream flag, wildcard deletes) tell the truth on each."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.infra.engine import SearchEngine

pytestmark = pytest.mark.engine


def test_root_endpoint_reports_flavor_and_version(every_engine: SearchEngine) -> None:
    # Read GET / with a bare urllib call, independently of the helper's own parsing.
    with urllib.request.urlopen(every_engine.url + "/", timeout=10) as resp:
        root = json.load(resp)
        product_header = resp.headers.get("X-Elastic-Product")
    assert root["version"]["number"] == every_engine.version
    if every_engine.flavor == "opensearch":
        assert root["version"]["distribution"] == "opensearch"
        assert product_header is None
    else:
        assert "distribution" not in root["version"]
        if every_engine.process is not None:  # ES < 7.14 (external) does not send the header
            assert product_header == "Elasticsearch"
    if every_engine.kind is not None:  # embedded engines have pinned versions
        assert every_engine.version.startswith(every_engine.kind.version_prefix)
        assert every_engine.flavor == every_engine.kind.flavor
    assert every_engine.health() in ("green", "yellow")


def test_indexed_document_is_searchable(every_engine: SearchEngine) -> None:
    index = "auditrecv-infra-test-doc"
    every_engine.delete_indices(index)
    try:
        doc = {"event": {"action": "login", "outcome": "success"}, "user": {"name": "alice"}, "n": 7}
        every_engine.request("PUT", f"/{index}/_doc/one", doc)
        assert every_engine.count(index) == 1
        assert every_engine.search(index, {"term": {"user.name": "alice"}}) == [doc]
        assert every_engine.search(index, {"term": {"user.name": "bob"}}) == []
        hits = every_engine.hits(index, {"range": {"n": {"gte": 5}}})
        assert [(h["_index"], h["_id"]) for h in hits] == [(index, "one")]
    finally:
        every_engine.delete_indices(index)
    assert every_engine.count(index) == 0  # deleted, and a missing index counts as empty


def test_bulk_create_then_duplicate_conflicts(every_engine: SearchEngine) -> None:
    """The status codes the sink's retry policy relies on come from the engine itself."""
    index = "auditrecv-infra-test-bulk"
    every_engine.delete_indices(index)
    try:
        lines = []
        for i in range(3):
            lines.append(json.dumps({"create": {"_index": index, "_id": f"id{i}"}}))
            lines.append(json.dumps({"seq": i}))
        body = ("\n".join(lines) + "\n").encode()
        _, first = every_engine.request("POST", "/_bulk", ndjson=body)
        assert [item["create"]["status"] for item in first["items"]] == [201, 201, 201]
        _, again = every_engine.request("POST", "/_bulk", ndjson=body)
        assert again["errors"] is True
        assert [item["create"]["status"] for item in again["items"]] == [409, 409, 409]
        assert {item["create"]["error"]["type"] for item in again["items"]} == {"version_conflict_engine_exception"}
        assert every_engine.count(index, {"terms": {"seq": [0, 2]}}) == 2
    finally:
        every_engine.delete_indices(index)


def test_data_stream_support_flag_is_truthful(every_engine: SearchEngine) -> None:
    """``supports_data_streams`` tells sink tests whether ``"data_stream": {}`` templates work here."""
    name = "auditrecv-infra-ds-probe"
    template = {"index_patterns": [f"{name}*"], "data_stream": {}, "priority": 500,
                "template": {"settings": {"number_of_replicas": 0}}}  # fmt: skip
    try:
        status, res = every_engine.request("PUT", f"/_index_template/{name}", template, ok=(200, 400))
        assert (status == 200) == every_engine.supports_data_streams, res
        if status == 200:
            every_engine.request("POST", f"/{name}-x/_doc", {"@timestamp": "2024-01-01T00:00:00Z", "a": 1})
            _, ds = every_engine.request("GET", f"/_data_stream/{name}-x")
            assert [d["name"] for d in ds["data_streams"]] == [f"{name}-x"]
            assert every_engine.count(f"{name}-x") == 1
    finally:
        every_engine.delete_indices(f"{name}*")
        every_engine.delete_index_templates(name)


def test_delete_indices_resolves_wildcards(every_engine: SearchEngine) -> None:
    prefix = "auditrecv-infra-test-wild"
    for suffix in ("a", "b"):
        every_engine.request("PUT", f"/{prefix}-{suffix}/_doc/1", {"x": suffix})
    keep = "auditrecv-infra-test-keep"
    every_engine.request("PUT", f"/{keep}/_doc/1", {"x": "keep"})
    try:
        assert every_engine.count(f"{prefix}-*") == 2
        every_engine.delete_indices(f"{prefix}-*")
        _, res = every_engine.request("GET", f"/{prefix}-*/_settings?expand_wildcards=all")
        assert res == {}
        assert every_engine.count(keep) == 1
    finally:
        every_engine.delete_indices(keep)
        every_engine.delete_indices(f"{prefix}-*")


def test_what_the_embedded_node_lacks_is_what_it_says(every_engine: SearchEngine) -> None:
    """``missing_types`` and ``zstd_codec`` (what ``adapt_templates`` works around) match the node: a type it
    lists is refused, and ``best_compression`` works exactly where it says so."""
    if every_engine.kind is None:
        pytest.skip("an external cluster is taken as it is: adapt_templates changes nothing there")
    index = "auditrecv-infra-test-lacks"
    every_engine.delete_indices(index)
    try:
        for missing in sorted(every_engine.missing_types):
            body = {"mappings": {"properties": {"f": {"type": missing}}}}
            status, res = every_engine.request("PUT", f"/{index}", body, ok=(200, 400))
            assert status == 400 and missing in json.dumps(res), res
        settings = {"settings": {"index.codec": "best_compression", "number_of_replicas": 0}}
        every_engine.request("PUT", f"/{index}", settings)
        # without zstd the shard fails at its first refresh (500), or is not active again yet (503 after the
        # request's own timeout, kept short: the default would wait a minute)
        status, res = every_engine.request(
            "PUT", f"/{index}/_doc/1?refresh=true&timeout=3s", {"a": 1}, ok=(200, 201, 500, 503)
        )
        assert (status in (200, 201)) == every_engine.zstd_codec, res
    finally:
        every_engine.delete_indices(index)


def test_adapt_templates_replaces_only_what_is_missing() -> None:
    engine = SearchEngine(
        url="http://unused", flavor="elasticsearch", version="9.5.3",
        missing_types=frozenset({"wildcard", "match_only_text"}), zstd_codec=False,
    )  # fmt: skip
    templates = {
        "settings": {"index": {"codec": "best_compression", "number_of_replicas": 0}},
        "mappings": {"properties": {
            "a": {"type": "wildcard"}, "b": {"type": "match_only_text"}, "c": {"type": "flattened"},
            "type": {"type": "keyword"}, "d": {"properties": {"type": {"type": "wildcard"}}},
        }},
    }  # fmt: skip
    assert engine.adapt_templates(templates) == {
        "settings": {"index": {"number_of_replicas": 0}},
        "mappings": {"properties": {
            "a": {"type": "keyword"}, "b": {"type": "text"}, "c": {"type": "flattened"},
            "type": {"type": "keyword"}, "d": {"properties": {"type": {"type": "keyword"}}},
        }},
    }  # fmt: skip
