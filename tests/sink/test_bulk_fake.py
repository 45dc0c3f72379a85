"""BulkIndexer against the fault-injecting fake: the status policy, what is confirmed, bytes on the wire."""

from __future__ import annotations

import asyncio
import base64
import gzip
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from itertools import accumulate
from typing import Any

import orjson
import pytest

from auditrecv.config import Search
from auditrecv.sink import BulkBatch, BulkIndexer, Result, RetryPolicy, bulk_lines
from auditrecv.sink.contract import loads_exact
from tests.sink.fake_engine import FakeEngine, Fault

INDEX = "auditrecv-2026.11.22"


class Delays:
    """Stands in for asyncio.sleep: records every backoff the indexer asks for, waits only a tick."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        await asyncio.sleep(0.001)


@pytest.fixture
async def fake() -> AsyncIterator[FakeEngine]:
    engine = await FakeEngine().start()
    yield engine
    await engine.stop()


def make_settings(*urls: str, **kw: Any) -> Search:
    return Search(urls=list(urls), **kw)


Doc = tuple[str, str, dict[str, Any] | bytes, Any]  # (index, id, source, token) for BulkBatch.of


def make_docs(n: int, start: int = 0, index: str = INDEX) -> list[Doc]:
    return [
        (
            index,
            f"id{i}",
            {"@timestamp": "2026-11-22T10:00:00.000Z", "n": i, "message": f"record {i} " + "x" * 50},
            [1000 + i],
        )
        for i in range(start, start + n)
    ]


def dlq_index_now() -> str:
    return "auditrecv-dlq-" + datetime.now(UTC).strftime("%Y.%m")


async def test_wire_format_create_ids_gzip_and_auth(fake: FakeEngine) -> None:
    docs = make_docs(3)
    settings = make_settings(fake.url, username="user", password="pa:ss")
    async with BulkIndexer(settings) as idx:
        outcomes = await idx.index(BulkBatch.of(docs))

    assert outcomes.results() == [Result.CREATED] * 3
    assert outcomes.tokens() == [[1000], [1001], [1002]]
    assert list(outcomes.confirmed) == [0, 1, 2]
    (req,) = fake.requests
    assert req.headers["Content-Type"] == "application/x-ndjson"
    assert req.headers["Accept"] == "application/json"
    assert req.headers["Content-Encoding"] == "gzip"
    assert req.headers["Authorization"] == "Basic " + base64.b64encode(b"user:pa:ss").decode()
    assert req.raw[:2] == b"\x1f\x8b"  # gzip magic on the wire
    expected = b"".join(
        b'{"create":{"_index":"%s","_id":"%s"}}\n' % (INDEX.encode(), doc_id.encode()) + orjson.dumps(source) + b"\n"
        for _, doc_id, source, _ in docs
    )
    assert gzip.decompress(req.raw) == expected
    assert fake.docs(INDEX)["id2"] == docs[2][2]
    m = idx.metrics
    assert (m.docs_created, m.requests, m.docs_sent, m.bytes_sent) == (3, 1, 3, len(req.raw))
    assert m.bytes_uncompressed == len(expected)


@pytest.mark.parametrize("gzipped", [True, False])
async def test_a_native_body_goes_on_the_wire_as_it_is(fake: FakeEngine, gzipped: bool) -> None:
    """A Linux body comes from the native core as a read-only memoryview (native/src/bulk_body.rs): sent
    whole or in parts (batch_max_docs), gzipped or not, its bytes are what reaches the engine."""
    docs = make_docs(5)
    lines = [bulk_lines(index, doc_id, source) for index, doc_id, source, _ in docs]
    assert all(isinstance(item, bytes) for item in lines)
    body, ends = b"".join(lines), list(accumulate(map(len, lines)))
    batch: BulkBatch[Any] = BulkBatch()
    batch.add_body(memoryview(body), ends, [d[1] for d in docs], [d[0] for d in docs], [d[3] for d in docs])
    async with BulkIndexer(make_settings(fake.url, gzip=gzipped, batch_max_docs=2)) as idx:
        outcomes = await idx.index(batch)
    assert outcomes.results() == [Result.CREATED] * 5
    sent = [gzip.decompress(req.raw) if gzipped else req.raw for req in fake.requests]
    assert [len(part.splitlines()) for part in sent] == [4, 4, 2] and b"".join(sent) == body
    assert {doc_id: fake.docs(INDEX)[doc_id] for _, doc_id, _, _ in docs} == {d[1]: d[2] for d in docs}


async def test_plain_body_without_gzip_and_pre_serialized_source(fake: FakeEngine) -> None:
    raw = b'{\n  "n": 5,\n  "message": "pretty"\n}'  # newlines must not break NDJSON framing
    docs = [(INDEX, "a", {"n": 1}, None), (INDEX, "b", raw, None)]
    async with BulkIndexer(make_settings(fake.url, gzip=False)) as idx:
        outcomes = await idx.index(BulkBatch.of(docs))
    assert outcomes.results() == [Result.CREATED, Result.CREATED]
    (req,) = fake.requests
    assert "Content-Encoding" not in req.headers
    assert req.raw == (
        b'{"create":{"_index":"auditrecv-2026.11.22","_id":"a"}}\n{"n":1}\n'
        b'{"create":{"_index":"auditrecv-2026.11.22","_id":"b"}}\n{"n":5,"message":"pretty"}\n'
    )


@pytest.mark.parametrize(
    ("kw", "header"),
    [
        ({"api_key": "myid:mykey"}, "ApiKey " + base64.b64encode(b"myid:mykey").decode()),
        ({"api_key": "bXlpZDpteWtleQ=="}, "ApiKey bXlpZDpteWtleQ=="),
        ({"bearer_token": "tok123"}, "Bearer tok123"),
    ],
)
async def test_auth_schemes_on_the_wire(fake: FakeEngine, kw: dict[str, str], header: str) -> None:
    fake.required_auth = header
    async with BulkIndexer(make_settings(fake.url, **kw)) as idx:
        outcomes = await idx.index(BulkBatch.of(make_docs(2)))
    assert all(r is Result.CREATED for r in outcomes.results())
    assert fake.requests[0].headers["Authorization"] == header


async def test_same_docs_twice_are_duplicates_not_new_docs(fake: FakeEngine) -> None:
    async with BulkIndexer(make_settings(fake.url)) as idx:
        first = await idx.index(BulkBatch.of(make_docs(5)))
        second = await idx.index(BulkBatch.of(make_docs(5)))
    assert first.results() == [Result.CREATED] * 5
    assert second.results() == [Result.DUPLICATE] * 5
    assert list(second.confirmed) == list(range(5))
    assert second.outcome(0).status == 409 and second.outcome(0).error_type == "version_conflict_engine_exception"
    assert fake.count() == 5
    assert (idx.metrics.docs_created, idx.metrics.docs_duplicate) == (5, 5)


async def test_429_honours_retry_after_then_succeeds(fake: FakeEngine) -> None:
    fake.script = [Fault(429, {"Retry-After": "7"})]
    delays = Delays()
    async with BulkIndexer(make_settings(fake.url), sleep=delays) as idx:
        outcomes = await idx.index(BulkBatch.of(make_docs(4)))
    assert outcomes.results() == [Result.CREATED] * 4
    assert delays.calls == [7.0]
    assert len(fake.requests) == 2
    assert fake.requests[0].lines == fake.requests[1].lines  # the same batch, resent
    assert idx.metrics.errors_by_status == {"429": 1}
    assert idx.metrics.docs_retried == 4


async def test_5xx_retried_with_growing_jittered_backoff(fake: FakeEngine) -> None:
    fake.script = [Fault(500), Fault(503), Fault(429), Fault(504)]
    delays = Delays()
    async with BulkIndexer(make_settings(fake.url), sleep=delays) as idx:
        outcomes = await idx.index(BulkBatch.of(make_docs(3)))
    assert all(r is Result.CREATED for r in outcomes.results())
    assert fake.count() == 3 and len(fake.requests) == 5
    assert len(delays.calls) == 4
    for attempt, d in enumerate(delays.calls):  # d in [b/2, b], b = 0.5 * 2**attempt
        base = 0.5 * 2**attempt
        assert base / 2 <= d <= base, (attempt, d)
    assert idx.metrics.errors_by_status == {"500": 1, "503": 1, "429": 1, "504": 1}


def test_backoff_is_capped_at_30_seconds() -> None:
    policy = RetryPolicy()
    delays = [policy.delay(a) for a in range(40) for _ in range(20)]
    assert max(delays) <= 30.0
    assert min(policy.delay(a) for a in range(10, 40)) >= 15.0


async def test_413_splits_in_half_and_every_doc_arrives_once(fake: FakeEngine) -> None:
    docs = make_docs(16)
    one = len(b'{"create":{"_index":"auditrecv-2026.11.22","_id":"id10"}}\n') + len(orjson.dumps(docs[10][2])) + 1
    fake.max_body_bytes = one * 5  # 16 docs: too large; 8: too large; 4: fine
    async with BulkIndexer(make_settings(fake.url)) as idx:
        outcomes = await idx.index(BulkBatch.of(docs))
    assert outcomes.results() == [Result.CREATED] * 16
    assert fake.count() == 16
    sizes = sorted(len(r.actions) for r in fake.requests)
    assert sizes == [4, 4, 4, 4, 8, 8, 16]
    created_ids = [a["create"]["_id"] for r in fake.requests if r.answered for a in r.actions]
    assert sorted(created_ids) == sorted(d[1] for d in docs)  # each exactly once


async def test_mapping_error_item_is_dead_lettered_with_raw_doc(fake: FakeEngine) -> None:
    docs = make_docs(3)
    bad_source = {"@timestamp": "2026-11-22T10:00:00Z", "n": "not-a-number", "note": "ünï"}
    docs[1] = (INDEX, "bad1", bad_source, [77])
    async with BulkIndexer(make_settings(fake.url)) as idx:
        outcomes = await idx.index(BulkBatch.of(docs))
    assert outcomes.results() == [Result.CREATED, Result.DEAD_LETTERED, Result.CREATED]
    dead = outcomes.outcome(1)
    assert 1 in outcomes.confirmed and outcomes.batch.tokens[1] == [77]
    assert (dead.status, dead.error_type) == (400, "mapper_parsing_exception")
    assert "failed to parse field [n] of type [long]" in dead.error_reason
    letter = fake.docs(dlq_index_now())["bad1"]
    assert letter["event"]["original"] == orjson.dumps(bad_source).decode()
    assert letter["error"]["type"] == "mapper_parsing_exception"
    assert letter["error"]["code"] == "400"
    assert letter["auditrecv"]["dead_letter"] == {"index": INDEX, "id": "bad1", "status": 400, "truncated": False}
    dlq_req = fake.requests[-1]
    assert dlq_req.actions == [{"index": {"_index": dlq_index_now(), "_id": "bad1"}}]
    assert "bad1" not in fake.docs(INDEX)
    assert idx.metrics.docs_dead_lettered == 1


async def test_item_404_index_not_found_is_dead_lettered(fake: FakeEngine) -> None:
    fake.item_faults["id0"] = [(404, "index_not_found_exception", "no such index [auditrecv-2026.11.22]")]
    async with BulkIndexer(make_settings(fake.url)) as idx:
        outcomes = await idx.index(BulkBatch.of(make_docs(2)))
    assert outcomes.results() == [Result.DEAD_LETTERED, Result.CREATED]
    assert fake.docs(dlq_index_now())["id0"]["error"]["type"] == "index_not_found_exception"


async def test_item_429_and_503_retry_only_those_items(fake: FakeEngine) -> None:
    fake.item_faults["id1"] = [(429, "es_rejected_execution_exception", "rejected execution")]
    fake.item_faults["id3"] = [(503, "unavailable_shards_exception", "primary shard is not active")]
    delays = Delays()
    async with BulkIndexer(make_settings(fake.url), sleep=delays) as idx:
        outcomes = await idx.index(BulkBatch.of(make_docs(5)))
    assert outcomes.results() == [Result.CREATED] * 5
    assert [a["create"]["_id"] for a in fake.requests[1].actions] == ["id1", "id3"]
    assert len(fake.requests) == 2 and len(delays.calls) == 1
    assert fake.count() == 5


async def test_dead_letter_write_refused_leaves_doc_unconfirmed(fake: FakeEngine) -> None:
    fake.strict_indices.add(dlq_index_now())
    docs = make_docs(2)
    docs[0] = (INDEX, "bad", {"n": "x"}, "t-bad")
    async with BulkIndexer(make_settings(fake.url)) as idx:
        outcomes = await idx.index(BulkBatch.of(docs))
    assert outcomes.results() == [Result.FAILED, Result.CREATED]
    assert 0 not in outcomes.confirmed and outcomes.batch.tokens[0] == "t-bad"
    assert outcomes.outcome(0).error_type == "mapper_parsing_exception"  # the original reason, for the caller's log
    assert idx.metrics.docs_failed == 1


async def test_whole_request_400_bisects_to_the_bad_doc(fake: FakeEngine) -> None:
    fake.poison.add("id5")
    async with BulkIndexer(make_settings(fake.url)) as idx:
        outcomes = await idx.index(BulkBatch.of(make_docs(8)))
    results = outcomes.results()
    assert results == [Result.CREATED] * 5 + [Result.DEAD_LETTERED] + [Result.CREATED] * 2
    assert outcomes.outcome(5).error_type == "x_content_parse_exception"
    assert sorted(fake.docs(INDEX)) == sorted(f"id{i}" for i in range(8) if i != 5)
    assert "id5" in fake.docs(dlq_index_now())


async def test_unserializable_source_is_dead_lettered(fake: FakeEngine) -> None:
    odd = {"n": {1: "a key that is not a string"}}
    docs = [(INDEX, "odd", odd, 1), *make_docs(1)]
    async with BulkIndexer(make_settings(fake.url)) as idx:
        outcomes = await idx.index(BulkBatch.of(docs))
    assert outcomes.results() == [Result.DEAD_LETTERED, Result.CREATED]
    letter = fake.docs(dlq_index_now())["odd"]
    assert letter["error"]["type"] == "serialization_error"
    assert letter["event"]["original"] == repr(odd)


def test_integers_beyond_64_bits_are_written_and_read_back_exactly() -> None:
    """Documents hold them where no engine field is numeric (a far-future time inside bsm.tokens); a
    document enriched as a dict is read back (loads_exact) and written again (bulk_lines) unchanged."""
    source = b'{"bsm":{"tokens":[{"time_ns":1099511627776000000000}]},"n":-18446744073709551617,"t":"x:123"}'
    doc = loads_exact(source)
    assert doc["bsm"]["tokens"][0]["time_ns"] == 2**40 * 10**9 and doc["n"] == -(2**64) - 1
    assert bulk_lines(INDEX, "id", doc) == b'{"create":{"_index":"%s","_id":"id"}}\n%s\n' % (INDEX.encode(), source)


async def test_401_halts_confirms_nothing_and_resumes(fake: FakeEngine) -> None:
    fake.auth_failures = 10**9
    delays = Delays()
    policy = RetryPolicy(halt_probe_interval=42.0)
    async with BulkIndexer(make_settings(fake.url), sleep=delays, policy=policy) as idx:
        task = asyncio.create_task(idx.index(BulkBatch.of(make_docs(3))))
        for _ in range(500):
            if idx.metrics.halted and len(delays.calls) >= 3:
                break
            await asyncio.sleep(0.005)
        assert idx.metrics.halted
        assert not task.done()
        assert fake.count() == 0
        assert set(delays.calls) == {42.0}
        fake.auth_failures = 0
        outcomes = await asyncio.wait_for(task, 10)
    assert outcomes.results() == [Result.CREATED] * 3
    assert not idx.metrics.halted
    assert idx.metrics.errors_by_status["401"] >= 3


async def test_halted_index_call_can_be_cancelled(fake: FakeEngine) -> None:
    fake.auth_failures = 10**9
    async with BulkIndexer(make_settings(fake.url), sleep=Delays()) as idx:
        task = asyncio.create_task(idx.index(BulkBatch.of(make_docs(3))))
        while not idx.metrics.halted:
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert fake.count() == 0


async def test_connection_reset_is_retried(fake: FakeEngine) -> None:
    fake.script = [Fault(kind="reset")]
    delays = Delays()
    async with BulkIndexer(make_settings(fake.url), sleep=delays) as idx:
        outcomes = await idx.index(BulkBatch.of(make_docs(3)))
    assert outcomes.results() == [Result.CREATED] * 3
    assert fake.count() == 3 and len(fake.requests) == 2
    assert idx.metrics.errors_by_status == {"connection": 1}
    assert len(delays.calls) == 1


async def test_timeout_is_retried(fake: FakeEngine) -> None:
    fake.script = [Fault(kind="hang")]
    async with BulkIndexer(make_settings(fake.url, request_timeout=0.3), sleep=Delays()) as idx:
        outcomes = await idx.index(BulkBatch.of(make_docs(2)))
    assert outcomes.results() == [Result.CREATED] * 2
    assert idx.metrics.errors_by_status == {"timeout": 1}


async def test_sent_n_got_m_items_is_an_error_and_the_batch_is_resent(fake: FakeEngine) -> None:
    fake.script = [Fault(kind="short_items")]  # the engine stored all 4 but answered 3 items
    async with BulkIndexer(make_settings(fake.url), sleep=Delays()) as idx:
        outcomes = await idx.index(BulkBatch.of(make_docs(4)))
    assert outcomes.results() == [Result.DUPLICATE] * 4  # resent; all already there
    assert idx.metrics.errors_by_status == {"item_count_mismatch": 1}
    assert "sent 4 documents, got 3 items" in idx.metrics.last_error
    assert fake.count() == 4


async def test_failover_skips_a_failed_node_for_a_while() -> None:
    bad, good = await FakeEngine().start(), await FakeEngine().start()
    try:
        bad.script = [Fault(503) for _ in range(10)]
        delays = Delays()
        async with BulkIndexer(make_settings(bad.url, good.url), sleep=delays) as idx:
            for k in range(4):
                outcomes = await idx.index(BulkBatch.of(make_docs(2, start=2 * k)))
                assert all(r is Result.CREATED for r in outcomes.results())
        assert bad.hits == 1  # tried once, then skipped
        assert good.count() == 8 and bad.count() == 0
        assert delays.calls == []  # failing over needs no backoff
    finally:
        await bad.stop()
        await good.stop()


async def test_failover_from_a_refused_port() -> None:
    good = await FakeEngine().start()
    dead = await FakeEngine().start()
    dead_url = dead.url
    await dead.stop()  # nothing listens there any more
    try:
        async with BulkIndexer(make_settings(dead_url, good.url), sleep=Delays()) as idx:
            outcomes = await idx.index(BulkBatch.of(make_docs(3)))
        assert all(r is Result.CREATED for r in outcomes.results())
        assert good.count() == 3
        assert idx.metrics.errors_by_status == {"connection": 1}
    finally:
        await good.stop()


async def test_large_batch_is_chunked_by_docs_and_bytes(fake: FakeEngine) -> None:
    async with BulkIndexer(make_settings(fake.url, batch_max_docs=10, concurrency=3)) as idx:
        outcomes = await idx.index(BulkBatch.of(make_docs(35)))
    assert all(r is Result.CREATED for r in outcomes.results())
    assert sorted(len(r.actions) for r in fake.requests) == [5, 10, 10, 10]
    assert outcomes.batch.ids == [f"id{i}" for i in range(35)]


async def test_item_403_halts_then_retries_only_that_item(fake: FakeEngine) -> None:
    reason = "action [indices:data/write/bulk[s]] is unauthorized for user [shipper]"
    fake.item_faults["id1"] = [(403, "security_exception", reason)]
    delays = Delays()
    async with BulkIndexer(make_settings(fake.url), sleep=delays, policy=RetryPolicy(halt_probe_interval=9.0)) as idx:
        outcomes = await idx.index(BulkBatch.of(make_docs(3)))
    assert outcomes.results() == [Result.CREATED] * 3
    assert delays.calls == [9.0]
    assert [a["create"]["_id"] for a in fake.requests[1].actions] == ["id1"]
    assert not idx.metrics.halted and idx.metrics.in_flight == 0


def test_retry_after_is_trusted_up_to_a_cap() -> None:
    policy = RetryPolicy(retry_after_cap=300.0)
    assert policy.after_retry_after(12.0, attempt=5) == 12.0
    assert policy.after_retry_after(86400.0, attempt=0) == 300.0
    assert 0.25 <= policy.after_retry_after(None, attempt=0) <= 0.5


@pytest.mark.parametrize("pushback", [False, True])
async def test_429_lowers_concurrency_to_one_request(fake: FakeEngine, pushback: bool) -> None:
    fake.latency = 0.05  # long enough for two requests in flight to overlap at the server
    async with BulkIndexer(make_settings(fake.url, batch_max_docs=2, concurrency=2), sleep=Delays()) as idx:
        if pushback:
            fake.script = [Fault(429)]
            await idx.index(BulkBatch.of(make_docs(1)))
        fake.max_active = 0
        outcomes = await idx.index(BulkBatch.of(make_docs(8, start=10)))
    assert all(r is Result.CREATED for r in outcomes.results())
    assert fake.max_active == (1 if pushback else 2)
