"""A document the engine keeps failing on is split out and dead-lettered; an outage dead-letters nothing;
refusals are logged once per reason, not once per document and retry (issue 14, defects 1 and 6).

Against the fault-injecting fake engine. The indexer's sleeps are replaced by `Backoffs`, which waits
only a tick and gives up (raises) after a bound, so a sink that retries forever fails the test instead
of hanging it.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from auditrecv.config import parse_config
from auditrecv.pipeline import Pipeline
from auditrecv.sink import BulkBatch, BulkIndexer, Result, RetryPolicy, Settlement
from auditrecv.spool import Source, Spool, SpoolRecord
from tests.bsm_builders import header32, record, str16
from tests.golden.native_core import bsm_document_id
from tests.sink.fake_engine import FakeEngine
from tests.sink.test_bulk_fake import INDEX, dlq_index_now, make_docs, make_settings


class GaveUp(Exception):
    """The sink was still retrying after far more backoffs than the behaviour under test needs."""


class Backoffs:
    """Stands in for asyncio.sleep in the indexer: counts backoffs, runs `hook(n)` at each, gives up at `limit`."""

    def __init__(self, limit: int = 200, hook: Callable[[int], Awaitable[None]] | None = None) -> None:
        self.calls = 0
        self.limit = limit
        self.hook = hook

    async def __call__(self, seconds: float) -> None:
        self.calls += 1
        if self.calls > self.limit:
            raise GaveUp(f"still retrying after {self.limit} backoffs")
        if self.hook is not None:
            await self.hook(self.calls)
        await asyncio.sleep(0.001)


@pytest.fixture
async def fake() -> AsyncIterator[FakeEngine]:
    engine = await FakeEngine().start()
    yield engine
    await engine.stop()


def sent_ids(fake: FakeEngine) -> list[list[str]]:
    """The `_id`s of every `_bulk` request, in order (dead-letter writes included)."""
    return [[next(iter(a.values()))["_id"] for a in r.actions] for r in fake.requests]


async def test_item_failing_500_while_others_succeed_is_dead_lettered_after_k_tries(fake: FakeEngine) -> None:
    fake.item_faults[f"{INDEX}/id3"] = [(500, "internal_error", "boom")] * 100
    docs = make_docs(10)
    async with BulkIndexer(make_settings(fake.url, max_document_retries=3), sleep=Backoffs()) as idx:
        outcomes = await idx.index(BulkBatch.of(docs))

    assert outcomes.results() == [Result.CREATED] * 3 + [Result.DEAD_LETTERED] + [Result.CREATED] * 6
    assert outcomes.outcome(3).status == 500 and outcomes.outcome(3).error_type == "internal_error"
    assert [ids.count("id3") for ids in sent_ids(fake)] == [1, 1, 1, 1]  # 3 tries, then its dead letter
    assert set(fake.docs(INDEX)) == {f"id{i}" for i in range(10)} - {"id3"}
    letter = fake.docs(dlq_index_now())["id3"]
    assert letter["error"]["code"] == "500"
    assert letter["error"]["message"].startswith("failed 3 times while the engine accepted other documents")
    assert letter["auditrecv"]["dead_letter"] == {"index": INDEX, "id": "id3", "status": 500, "truncated": False}


async def test_request_failing_500_is_split_down_to_the_poison_document(fake: FakeEngine) -> None:
    fake.request_faults["id5"] = 500  # the engine fails every request holding id5, whole
    docs = make_docs(8)
    async with BulkIndexer(make_settings(fake.url, max_document_retries=2), sleep=Backoffs()) as idx:
        outcomes = await idx.index(BulkBatch.of(docs))

    assert outcomes.results() == [Result.CREATED] * 5 + [Result.DEAD_LETTERED] + [Result.CREATED] * 2
    assert set(fake.docs(INDEX)) == {f"id{i}" for i in range(8)} - {"id5"}
    assert set(fake.docs(dlq_index_now())) == {"id5"}
    requests = sent_ids(fake)
    # halved after 2 failures each time: 8 -> 4 -> 2 -> 1; the lone id5 fails twice more, then its letter
    assert [len(r) for r in requests if "id5" in r] == [8, 8, 4, 4, 2, 2, 1, 1, 1]
    assert sum(r.count("id0") for r in requests) == 3  # a good document is sent again only until it is split off


async def test_timeouts_split_the_request_and_dead_letter_the_document_that_hangs_the_engine(fake: FakeEngine) -> None:
    hung = 0
    original = fake._bulk_answer

    async def hang_on_id1(request: Any) -> Any:
        nonlocal hung
        body = await request.read()
        if b'"create":{"_index":"%s","_id":"id1"}' % INDEX.encode() in gzip.decompress(body):  # not its dead letter
            hung += 1
            await fake._release.wait()  # no answer before the test ends: the client times out
        return await original(request)

    fake._bulk_answer = hang_on_id1  # type: ignore[method-assign]
    settings = make_settings(fake.url, max_document_retries=2, request_timeout=0.3)
    async with BulkIndexer(settings, sleep=Backoffs()) as idx:
        outcomes = await idx.index(BulkBatch.of(make_docs(4)))

    assert outcomes.results() == [Result.CREATED, Result.DEAD_LETTERED, Result.CREATED, Result.CREATED]
    assert outcomes.outcome(1).error_type == "timeout"
    assert hung == 2 + 2 + 2  # 4 docs, 2 docs, then id1 alone (once proven the problem)
    assert set(fake.docs(dlq_index_now())) == {"id1"}


def closed_port() -> tuple[socket.socket, int]:
    """A loopback port that refuses connections (bound, never listening) until the socket is closed."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock, int(sock.getsockname()[1])


@pytest.mark.parametrize("outage", ["http_500", "http_503", "http_429", "connection_refused", "frozen"])
async def test_outage_dead_letters_nothing_then_only_the_poison_document(outage: str) -> None:
    """Everything fails for far longer than `max_document_retries` would allow a poison document; nothing
    may be dead-lettered until the engine is back, and then only the document the engine refuses."""
    blocker, port = closed_port()
    fake = FakeEngine()
    fake.item_faults[f"{INDEX}/id2"] = [(500, "internal_error", "boom")] * 100  # the poison: seen once the engine is up
    frozen = asyncio.Event()
    if outage.startswith("http_"):
        fake.outage = int(outage[5:])
    if outage != "connection_refused":
        blocker.close()
        await fake.start(port=port)
    if outage == "frozen":  # SIGSTOP: connections are accepted, nothing is answered
        original = fake._bulk_answer

        async def frozen_answer(request: Any) -> Any:
            await frozen.wait()
            return await original(request)

        fake._bulk_answer = frozen_answer  # type: ignore[method-assign]
    dead_letters_during_outage: list[int] = []

    async def recover(n: int) -> None:
        if n == 20:  # 10 times more backoffs than max_document_retries
            dead_letters_during_outage.append(len(fake.docs(dlq_index_now())))
            fake.outage = 0
            frozen.set()
            if outage == "connection_refused":
                blocker.close()
                await fake.start(port=port)

    settings = make_settings(f"http://127.0.0.1:{port}", max_document_retries=2, request_timeout=0.3)
    try:
        async with BulkIndexer(settings, sleep=Backoffs(hook=recover)) as idx:
            outcomes = await idx.index(BulkBatch.of(make_docs(6)))
    finally:
        blocker.close()
        await fake.stop()

    assert dead_letters_during_outage == [0]
    results = outcomes.results()
    # a frozen engine indexes what it was sent once it thaws, so a retry may find the document there
    assert all(r in (Result.CREATED, Result.DUPLICATE) for r in results[:2] + results[3:]), results
    assert outcomes.outcome(2).result is Result.DEAD_LETTERED and outcomes.outcome(2).status == 500
    assert set(fake.docs(INDEX)) == {"id0", "id1", "id3", "id4", "id5"}
    assert set(fake.docs(dlq_index_now())) == {"id2"}


async def test_outage_that_never_ends_dead_letters_nothing(fake: FakeEngine) -> None:
    fake.outage = 500
    gave_up = False
    async with BulkIndexer(make_settings(fake.url, max_document_retries=1), sleep=Backoffs(limit=60)) as idx:
        try:
            await idx.index(BulkBatch.of(make_docs(16)))
        except* GaveUp:
            gave_up = True
    assert gave_up
    assert fake.docs(dlq_index_now()) == {}
    assert max(len(r.actions) for r in fake.requests[-5:]) == 1  # split down to single documents, all waiting


# --------------------------------------------------------------------------- defect 6: the log


@pytest.mark.parametrize("refusal", ["mapping", "index_not_found"])
async def test_refused_dead_letters_log_one_line_per_reason_not_per_document(
    fake: FakeEngine, caplog: pytest.LogCaptureFixture, refusal: str
) -> None:
    docs = make_docs(101)
    if refusal == "mapping":  # every document refused by the mapping, and every dead letter too
        docs = [(index, doc_id, {"n": "not a number"}, token) for index, doc_id, _, token in docs]
        fake.strict_indices.add(dlq_index_now())
        dlq_reason = "strict_dynamic_mapping_exception"
    else:  # the index is missing and cannot be created, the dead-letter index neither (same _ids)
        for d in docs:
            fake.item_faults[d[1]] = [(404, "index_not_found_exception", "no such index [x]")] * 10
        dlq_reason = "index_not_found_exception"
    now = [1000.0]
    caplog.set_level(logging.WARNING, logger="auditrecv.sink")
    async with BulkIndexer(make_settings(fake.url), sleep=Backoffs()) as idx:
        idx._log_limited.clock = lambda: now[0]
        for _ in range(3):  # as the pipeline retries them
            outcomes = await idx.index(BulkBatch.of(docs))
            assert outcomes.results() == [Result.FAILED] * 101
        lines_first_minute = [r for r in caplog.records if r.levelno >= logging.ERROR]
        now[0] += 61.0
        await idx.index(BulkBatch.of(docs))
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]

    reasons = 2 if refusal == "index_not_found" else 1  # (index missing +) dead-letter index refusing
    assert len(lines_first_minute) == reasons
    assert len(errors) == 2 * reasons
    refused = [m for m in errors if "refused 101 dead letter(s)" in m]
    assert len(refused) == 2
    assert "stay in the spool" in refused[0] and dlq_reason in refused[0]
    assert refused[1].endswith("[2 more such message(s) about 202 document(s) held back in the last 61 s]")
    assert len(caplog.records) <= 4 * reasons  # warnings too: one per reason and minute


# --------------------------------------------------------------------------- submit: retried until confirmed


async def test_submit_retries_a_document_refused_with_its_dead_letter_until_the_letter_is_taken(
    fake: FakeEngine,
) -> None:
    fake.item_faults[f"{INDEX}/id1"] = [(400, "mapper_parsing_exception", "refused")] * 1000
    fake.strict_indices.add(dlq_index_now())
    settled: list[list[str]] = []

    async def on_settled(s: Settlement[Any]) -> None:
        settled.append([f"{s.batch.ids[p]}:{s.outcome(p).result.value}" for p in s.confirmed])

    async def dead_letter_index_fixed(n: int) -> None:
        if n == 3:
            fake.strict_indices.clear()

    settings = make_settings(fake.url, max_document_retries=5)
    async with BulkIndexer(settings, sleep=Backoffs(hook=dead_letter_index_fixed)) as idx:
        await idx.submit(BulkBatch.of(make_docs(4)), on_settled)
        await idx.wait_idle()
        assert idx.parked == 0
    assert settled == [["id0:created", "id2:created", "id3:created"], ["id1:dead_lettered"]]
    # the document and its dead letter, 4 times: the dead-letter index is fixed during the third backoff
    assert [ids.count("id1") for ids in sent_ids(fake)] == [1] * 8
    assert set(fake.docs(dlq_index_now())) == {"id1"}


async def test_submit_parks_what_stays_refused_and_frees_the_lane(fake: FakeEngine) -> None:
    """One lane: documents refused with their dead letters for `max_document_retries` tries are parked, and
    the next submission gets the lane; closing gives the parked ones up (they stay spooled)."""
    fake.item_faults[f"{INDEX}/id0"] = [(400, "mapper_parsing_exception", "refused")] * 1000
    fake.strict_indices.add(dlq_index_now())
    settled: list[str] = []
    all_good_ones = asyncio.Event()

    async def on_settled(s: Settlement[Any]) -> None:
        settled.extend(s.batch.ids[p] for p in s.confirmed)
        if len(settled) == 3:
            all_good_ones.set()

    settings = make_settings(fake.url, max_document_retries=2, concurrency=1)
    async with BulkIndexer(settings, sleep=Backoffs(limit=10)) as idx:
        await idx.submit(BulkBatch.of(make_docs(2)), on_settled)
        await idx.submit(BulkBatch.of(make_docs(2, start=2)), on_settled)  # waits for the one lane
        await asyncio.wait_for(all_good_ones.wait(), 10)
        assert idx.parked == 1
    assert settled == ["id1", "id2", "id3"]
    assert idx.parked == 0


# --------------------------------------------------------------------------- the pipeline


def bsm_record(i: int) -> bytes:
    return record(header32(6152, 1_700_000_000 + i, 0, version=11), b"\x28" + str16(f"record {i}"))


async def test_documents_refused_with_their_dead_letters_do_not_block_later_records(
    fake: FakeEngine, tmp_path: Path
) -> None:
    """One lane, the dead-letter index refusing: the sink parks the refused document (still spooled) and
    the records behind it are indexed."""
    source = Source(transport="audit_remote", peer="127.0.0.1")
    payloads = [bsm_record(i) for i in range(6)]
    poison_id = bsm_document_id(payloads[0], source)
    fake.item_faults[poison_id] = [(400, "mapper_parsing_exception", "refused")] * 1000
    fake.strict_indices.add(dlq_index_now())
    cfg = parse_config(
        f'[search]\nurls = ["{fake.url}"]\nconcurrency = 1\nbatch_max_docs = 1\nmax_document_retries = 2\n'
    )
    spool = await Spool.open(tmp_path / "spool.db")
    try:
        await spool.append([SpoolRecord("bsm", p, source, 1) for p in payloads])
        async with BulkIndexer(cfg.search, policy=RetryPolicy(initial=0.01, cap=0.02)) as idx:
            pipeline = Pipeline(cfg, spool, idx, {"name": "t"})
            task = asyncio.create_task(pipeline.run())
            try:
                for _ in range(2000):  # bounded poll: every good record indexed and deleted from the spool
                    indexed = sum(len(v) for k, v in fake.indices.items() if not k.startswith("auditrecv-dlq"))
                    if indexed == 5 and spool.count() == 1:
                        break
                    await asyncio.sleep(0.01)
            finally:
                parked = idx.parked
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        indexed = {i for k, v in fake.indices.items() if not k.startswith("auditrecv-dlq") for i in v}
        assert indexed == {bsm_document_id(p, source) for p in payloads[1:]}
        assert parked == 1
        assert spool.count() == 1  # the refused record stays spooled
    finally:
        await spool.close()


async def test_pipeline_shut_down_during_an_outage_keeps_every_record_spooled(tmp_path: Path) -> None:
    """The sink retries while the engine is down; closing it gives the documents up, deleting nothing."""
    fake = await FakeEngine().start()
    fake.outage = 503
    retrying = asyncio.Event()

    async def third_backoff(n: int) -> None:
        if n == 3:
            retrying.set()

    source = Source(transport="audit_remote", peer="127.0.0.1")
    cfg = parse_config(f'[search]\nurls = ["{fake.url}"]\nbatch_max_docs = 2\n')
    spool = await Spool.open(tmp_path / "spool.db")
    try:
        await spool.append([SpoolRecord("bsm", bsm_record(i), source, 1) for i in range(6)])
        async with BulkIndexer(cfg.search, sleep=Backoffs(hook=third_backoff)) as idx:
            pipeline = Pipeline(cfg, spool, idx, {"name": "t"})
            task = asyncio.create_task(pipeline.run())
            await asyncio.wait_for(retrying.wait(), 10)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert spool.count() == 6 and pipeline.stats["deleted"] == 0
        assert fake.requests and fake.indices == {}
    finally:
        await spool.close()
        await fake.stop()
