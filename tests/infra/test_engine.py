"""Proof that ``search_engine`` is a real engine: documents go in over HTTP and come back out of Lucene."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.infra.engine import SearchEngine

pytestmark = pytest.mark.engine

EXPECTED_VERSION_PREFIX = {"opensearch": "2.19.", "elasticsearch": "7.17."}


def test_root_endpoint_reports_flavor_and_version(search_engine: SearchEngine) -> None:
    # Read GET / with a bare urllib call, independently of the helper's own parsing.
    with urllib.request.urlopen(search_engine.url + "/", timeout=10) as resp:
        root = json.load(resp)
        product_header = resp.headers.get("X-Elastic-Product")
    assert root["version"]["number"] == search_engine.version
    if search_engine.flavor == "opensearch":
        assert root["version"]["distribution"] == "opensearch"
        assert product_header is None
    else:
        assert "distribution" not in root["version"]
        if search_engine.process is not None:  # ES < 7.14 (external) does not send the header
            assert product_header == "Elasticsearch"
    prefix = EXPECTED_VERSION_PREFIX.get(search_engine.flavor)
    if search_engine.process is not None and prefix:  # embedded engines have pinned versions
        assert search_engine.version.startswith(prefix)
    assert search_engine.health() in ("green", "yellow")


def test_indexed_document_is_searchable(search_engine: SearchEngine) -> None:
    index = "auditrecv-infra-test-doc"
    search_engine.delete_indices(index)
    try:
        doc = {"event": {"action": "login", "outcome": "success"}, "user": {"name": "alice"}, "n": 7}
        search_engine.request("PUT", f"/{index}/_doc/one", doc)
        assert search_engine.count(index) == 1
        assert search_engine.search(index, {"term": {"user.name": "alice"}}) == [doc]
        assert search_engine.search(index, {"term": {"user.name": "bob"}}) == []
        hits = search_engine.hits(index, {"range": {"n": {"gte": 5}}})
        assert [(h["_index"], h["_id"]) for h in hits] == [(index, "one")]
    finally:
        search_engine.delete_indices(index)
    assert search_engine.count(index) == 0  # deleted, and a missing index counts as empty


def test_bulk_create_then_duplicate_conflicts(search_engine: SearchEngine) -> None:
    """The status codes the sink's retry policy relies on come from the engine itself."""
    index = "auditrecv-infra-test-bulk"
    search_engine.delete_indices(index)
    try:
        lines = []
        for i in range(3):
            lines.append(json.dumps({"create": {"_index": index, "_id": f"id{i}"}}))
            lines.append(json.dumps({"seq": i}))
        body = ("\n".join(lines) + "\n").encode()
        _, first = search_engine.request("POST", "/_bulk", ndjson=body)
        assert [item["create"]["status"] for item in first["items"]] == [201, 201, 201]
        _, again = search_engine.request("POST", "/_bulk", ndjson=body)
        assert again["errors"] is True
        assert [item["create"]["status"] for item in again["items"]] == [409, 409, 409]
        assert {item["create"]["error"]["type"] for item in again["items"]} == {"version_conflict_engine_exception"}
        assert search_engine.count(index, {"terms": {"seq": [0, 2]}}) == 2
    finally:
        search_engine.delete_indices(index)


def test_data_stream_support_flag_is_truthful(search_engine: SearchEngine) -> None:
    """``supports_data_streams`` tells sink tests whether ``"data_stream": {}`` templates work here."""
    name = "auditrecv-infra-ds-probe"
    template = {"index_patterns": [f"{name}*"], "data_stream": {}, "priority": 500,
                "template": {"settings": {"number_of_replicas": 0}}}  # fmt: skip
    try:
        status, res = search_engine.request("PUT", f"/_index_template/{name}", template, ok=(200, 400))
        assert (status == 200) == search_engine.supports_data_streams, res
        if status == 200:
            search_engine.request("POST", f"/{name}-x/_doc", {"@timestamp": "2024-01-01T00:00:00Z", "a": 1})
            _, ds = search_engine.request("GET", f"/_data_stream/{name}-x")
            assert [d["name"] for d in ds["data_streams"]] == [f"{name}-x"]
            assert search_engine.count(f"{name}-x") == 1
    finally:
        search_engine.delete_indices(f"{name}*")
        search_engine.delete_index_templates(name)


def test_delete_indices_resolves_wildcards(search_engine: SearchEngine) -> None:
    prefix = "auditrecv-infra-test-wild"
    for suffix in ("a", "b"):
        search_engine.request("PUT", f"/{prefix}-{suffix}/_doc/1", {"x": suffix})
    keep = "auditrecv-infra-test-keep"
    search_engine.request("PUT", f"/{keep}/_doc/1", {"x": "keep"})
    try:
        assert search_engine.count(f"{prefix}-*") == 2
        search_engine.delete_indices(f"{prefix}-*")
        _, res = search_engine.request("GET", f"/{prefix}-*/_settings?expand_wildcards=all")
        assert res == {}
        assert search_engine.count(keep) == 1
    finally:
        search_engine.delete_indices(keep)
        search_engine.delete_indices(f"{prefix}-*")
