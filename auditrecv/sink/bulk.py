"""Bulk indexing built around the spool: the one retry layer of the path, and its one concurrency limit.

A batch travels as one object (`BulkBatch`, documents by position): a reply of only 201s settles it in one
step; only documents not simply created get per-document state (`_Pass`) and an `Outcome`.

A document is *confirmed* only when the engine holds it: created, already there (409 on `create` with
our deterministic `_id`), or written to the dead-letter index. Everything else is retried here (what
each status means is `policy.py`): `index` goes through once and reports a document whose dead letter
was refused too as failed; `submit`, the pipeline's, retries those as well (parked in the background
after a few tries) and tells its caller of the documents confirmed, pass by pass.

A document the engine keeps failing on must not block the ones behind it, and an outage must never
dead-letter anything (issue 14): failures a document may cause (5xx bar 502/503/504, timeouts, a dropped
connection) are counted; a request that failed `search.max_document_retries` times is halved, a lone
document dead-lettered after that many failures once the engine accepted others (so never in an outage).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from prometheus_client.core import CounterMetricFamily, Metric

from auditrecv.config import Search
from auditrecv.logsetup import ThrottledLog
from auditrecv.metrics import LatencyHistogram, counter, gauge, histogram
from auditrecv.sink.contract import (
    BodyBytes,
    BulkBatch,
    BulkMetrics,
    EngineInfo,
    Outcome,
    Reply,
    Result,
    Settled,
    Settlement,
    T,
    action_line,
)
from auditrecv.sink.engine import TemplatesFor, detect_until_answered, install_until_done
from auditrecv.sink.naming import format_index
from auditrecv.sink.policy import (
    ItemResult,
    ItemVerdict,
    RequestVerdict,
    UnreadableReply,
    accepted,
    all_created,
    error_reason,
    error_type,
    item_verdict,
    parse_items,
    request_verdict,
)
from auditrecv.sink.transport import RetryPolicy, Transport, Unanswered, log, parse_retry_after

Sleep = Callable[[float], Awaitable[None]]
Failure = tuple[int, str, str]  # (status, type, reason)

_DEAD_LETTER_MAX_SOURCE = 1024 * 1024  # keep dead letters far below http.max_content_length
_DEAD_LETTER_MAX_REASON = 4096  # the engine's error reason can quote the whole document
_LOG_INTERVAL = 60.0  # seconds between two log lines about the same refusal


@dataclass(eq=False, slots=True)
class _Pass:
    """One pass over a batch (or over a batch of dead letters): per-document state, by position, only for
    the documents that were not simply created."""

    batch: BulkBatch[Any]
    details: dict[int, Outcome] = field(default_factory=dict)  # what the caller is told of them
    failure: dict[int, Failure] = field(default_factory=dict)  # what sends a document to the dead-letter index
    failed_since: dict[int, int] = field(default_factory=dict)  # the acceptance count at its first failure
    failures: dict[int, int] = field(default_factory=dict)  # failures counted towards dead-lettering it
    letters_for: _Pass | None = None  # dead-letter writes: for documents of this pass (tokens: their positions)


_Send = Callable[[_Pass, Sequence[int]], Awaitable[list[int]]]


class BulkIndexer:
    """`async with BulkIndexer(settings) as idx: ...`; waits (retrying) while the engine is unreachable,
    overloaded or refusing our credentials; a cancelled call confirms nothing."""

    def __init__(
        self,
        settings: Search,
        *,
        policy: RetryPolicy | None = None,
        sleep: Sleep | None = None,
        rng: random.Random | None = None,
        dead_letter_max_source: int = _DEAD_LETTER_MAX_SOURCE,
        gzip_level: int = 1,
    ) -> None:
        self.settings = settings
        self.policy = policy or RetryPolicy()
        self.metrics = BulkMetrics()
        self.request_latency = LatencyHistogram()  # _bulk requests, answered or failed, for /metrics
        self.engine: EngineInfo | None = None  # once detected (set by open_indexer / detect)
        self._sleep: Sleep = sleep or asyncio.sleep
        self._rng = rng or random.Random()
        self._dlq_max = dead_letter_max_source
        self.transport = Transport(settings, self.policy, self.metrics, gzip_level=gzip_level)
        # The one concurrency limit of the path: a batch (a `submit`, a chunk of `index`) holds a lane
        # until it is settled, and sends one request at a time (splits and dead letters included).
        self._lanes = asyncio.Semaphore(max(1, settings.concurrency))
        self._deliveries: set[asyncio.Task[None]] = set()
        # Documents refused along with their dead letters, retried in the background so that they hold no
        # lane: a handful of them must not stop every later record (issue 14). By whom to tell.
        self._parked: dict[Settled[Any], BulkBatch[Any]] = {}
        self._parked_task: asyncio.Task[None] | None = None
        self._retrying = 0  # parked documents in the retry under way
        self._max_failures = max(1, settings.max_document_retries)
        self._accepted = 0  # bulk replies that created or found at least one document: the engine works
        self._log_limited = ThrottledLog(log, burst=1, interval=_LOG_INTERVAL, unit="document")
        # While the engine pushes back (429), requests go one at a time through this lock.
        self._throttle_lock = asyncio.Lock()
        self._throttle_until = 0.0
        self._requests_since: list[float] = []  # monotonic start of each _bulk request in flight
        self._ready: asyncio.Event | None = None  # set by open_indexer while templates install
        self._setup_task: asyncio.Task[None] | None = None

    async def open(self) -> BulkIndexer:
        self.transport.open()
        return self

    async def close(self) -> None:
        """Documents submitted and not confirmed yet are given up: they stay in the spool."""
        tasks = [*self._deliveries, *filter(None, [self._parked_task, self._setup_task])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._parked.clear()
        self._setup_task = None
        await self.transport.close()

    async def __aenter__(self) -> BulkIndexer:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(self, method: str, path: str, body: bytes | None = None) -> Reply:
        """One JSON request with node failover (Transport.request): what engine set-up uses."""
        return await self.transport.request(method, path, body)

    async def submit(self, batch: BulkBatch[T], settled: Settled[T]) -> None:
        """Index `batch` in the background once a lane is free (the wait is the caller's backpressure);
        `settled` is told of its documents as they are confirmed. Nothing is given up on before `close`: a
        document refused even as a dead letter is retried, parked after `max_document_retries` tries."""
        await self._lanes.acquire()
        task = asyncio.create_task(self._deliver(batch, range(len(batch)), settled))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def wait_idle(self) -> None:
        """Until every submitted document is confirmed (parked ones included)."""
        while self._deliveries or self._parked_task is not None:
            await asyncio.gather(*self._deliveries, *filter(None, [self._parked_task]), return_exceptions=True)

    @property
    def parked(self) -> int:
        return self._retrying + sum(len(batch) for batch in self._parked.values())

    async def _deliver(self, batch: BulkBatch[T], positions: Sequence[int], settled: Settled[T]) -> None:
        try:
            delay = 1.0
            tries = 0
            while positions:
                positions = await self._attempt(batch, positions, settled, delay)
                tries += 1
                if positions:
                    if tries >= self._max_failures and self._park(batch, positions, settled):
                        return
                    await self._sleep(delay)
                    delay = min(delay * 2, 60.0)
        finally:
            self._lanes.release()

    async def _attempt(
        self, batch: BulkBatch[T], positions: Sequence[int], settled: Settled[T], delay: float
    ) -> Sequence[int]:
        """One pass over `positions` in the lane held: the confirmed ones to `settled`, the rest returned."""
        try:
            done, failed = await self._pass(batch, positions, in_lanes=False)
        except Exception:
            log.exception("indexing %d documents failed; retrying in %.0f s", len(positions), delay)
            return positions
        if done.confirmed:
            try:
                await settled(done)
            except Exception:
                log.exception("%d confirmed documents could not be settled", len(done.confirmed))
        return failed

    def _park(self, batch: BulkBatch[T], positions: Sequence[int], settled: Settled[T]) -> bool:
        """Hand those documents to the background retry; False (keep the lane and retry) when that is full."""
        if self.parked + len(positions) > max(1, self.settings.batch_max_docs):
            return False
        self._parked.setdefault(settled, BulkBatch()).take(batch, positions)
        log.warning(
            "%d document(s) refused even as dead letters: retried in the background, still in the spool (%d parked)",
            len(positions),
            self.parked,
        )
        if self._parked_task is None:
            self._parked_task = asyncio.create_task(self._retry_parked(), name="sink-parked")
        return True

    async def _retry_parked(self) -> None:
        delay = 30.0
        try:
            while self._parked:
                await self._sleep(delay)
                parked, self._parked = self._parked, {}
                self._retrying = sum(len(batch) for batch in parked.values())
                async with self._lanes:
                    for settled, batch in parked.items():
                        if left := await self._attempt(batch, range(len(batch)), settled, delay):
                            self._parked.setdefault(settled, BulkBatch()).take(batch, left)
                        self._retrying -= len(batch)
                delay = min(delay * 2, 600.0)
        finally:
            self._parked_task = None
            self._retrying = 0

    async def index(self, batch: BulkBatch[T]) -> Settlement[T]:
        """Index `batch` once through, its chunks in lanes of their own: the documents confirmed, and an
        Outcome for each one not simply created (failed: refused even as a dead letter, not retried here)."""
        return (await self._pass(batch, range(len(batch)), in_lanes=True))[0]

    async def _in_lane(self, send: _Send, run: _Pass, positions: Sequence[int]) -> list[int]:
        async with self._lanes:
            return await send(run, positions)

    async def _pass(
        self, batch: BulkBatch[T], positions: Sequence[int], *, in_lanes: bool
    ) -> tuple[Settlement[T], list[int]]:
        """`index` over `positions` (without `in_lanes`: in the caller's lane, the chunks one after the
        other): what it confirmed, and the positions failed."""
        run = _Pass(batch)
        everything = positions
        unencodable: list[int] = []
        if batch.unencodable:
            unencodable = [p for p in positions if p in batch.unencodable]
            positions = [p for p in positions if p not in batch.unencodable]
        await self.wait_ready()
        sends: list[tuple[_Send, Sequence[int]]] = [(self._ship, chunk) for chunk in self._chunks(batch, positions)]
        if unencodable:
            for p in unencodable:
                run.failure[p] = (0, "serialization_error", batch.unencodable[p][0])
            self._log_limited.error(
                "serialize",
                "%d document(s) cannot be serialized (first: %s: %s): dead-lettering them",
                len(unencodable),
                batch.ids[unencodable[0]],
                batch.unencodable[unencodable[0]][0],
                items=len(unencodable),
            )
            sends.insert(0, (self._dead_letter, unencodable))
        failed: list[int] = []
        if in_lanes:
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(self._in_lane(send, run, chunk)) for send, chunk in sends]
            for task in tasks:
                failed += task.result()
        else:
            for send, chunk in sends:
                failed += await send(run, chunk)
        if not failed:
            return Settlement(batch, everything, run.details), failed
        gone = set(failed)
        confirmed = [p for p in everything if p not in gone]
        return Settlement(batch, confirmed, run.details), [p for p in everything if p in gone]

    def _chunks(self, batch: BulkBatch[Any], positions: Sequence[int]) -> Iterator[Sequence[int]]:
        max_docs, max_bytes = self.settings.batch_max_docs, self.settings.batch_max_bytes
        if 0 < len(positions) <= max_docs and batch.size(positions) <= max_bytes:
            yield positions  # one request (the pipeline's batches): no per-document bookkeeping
            return
        chunk: list[int] = []
        size = 0
        for p in positions:
            n = batch.size((p,))
            if chunk and (len(chunk) >= max_docs or size + n > max_bytes):
                yield chunk
                chunk, size = [], 0
            chunk.append(p)
            size += n
        if chunk:
            yield chunk

    async def _ship(self, run: _Pass, positions: Sequence[int]) -> list[int]:
        """Send until every document at `positions` is confirmed or failed (the status policy of the module
        docstring); returns the failed ones."""
        attempt = 0
        failures = 0  # failures of this very request that may be its documents' fault
        sent = False
        failed: list[int] = []
        while positions:
            if sent:
                self.metrics.docs_retried += len(positions)
            sent = True
            try:
                reply = await self._post_bulk(run.batch.body(positions), len(positions))
            except Unanswered as exc:
                if exc.suspect:
                    failures += 1
                    if (done := await self._failed(run, positions, failures, exc.failure)) is not None:
                        return failed + done
                if exc.can_fail_over:
                    continue  # another node is up: try it straight away
                await self.back_off(attempt)
                attempt += 1
                continue
            status = reply.status
            verdict = request_verdict(status, len(positions))
            if verdict is RequestVerdict.HALT:
                await self.halt(status, f"{reply.node}: HTTP {status}: {error_reason(reply.body)}")
                continue
            if verdict is RequestVerdict.THROTTLE:
                self.metrics.error(429, f"{reply.node}: HTTP 429: {error_reason(reply.body)}")
                retry_after = parse_retry_after(reply.headers.get("Retry-After"))
                delay = self.policy.after_retry_after(retry_after, attempt)
                self._pushed_back(delay)
                await self._sleep(delay)
                attempt += 1
                continue
            if verdict in (RequestVerdict.SPLIT, RequestVerdict.REFUSE):
                reason = error_reason(reply.body)
                if status == 413:
                    self.metrics.error(413, f"{reply.node}: request of {len(positions)} docs too large (HTTP 413)")
                    if verdict is RequestVerdict.SPLIT:
                        log.warning("HTTP 413 for %d documents: splitting in two", len(positions))
                    etype, reason = "request_too_large", reason or "HTTP 413"
                else:
                    self.metrics.error(400, f"{reply.node}: whole request refused (HTTP 400): {reason}")
                    etype = error_type(reply.body) or "bad_request"
                if verdict is RequestVerdict.SPLIT:  # find the document that breaks the request
                    return failed + await self._split(run, positions)
                return failed + await self._give_up(run, positions[0], (status, etype, reason))
            if verdict is not RequestVerdict.ITEMS:  # OUTAGE or RETRY_COUNTED
                reason = error_reason(reply.body)
                msg = f"{reply.node}: HTTP {status}: {reason}"
                self.metrics.error(status, msg)
                log.warning("bulk request of %d documents failed, will retry: %s", len(positions), msg)
                if verdict is RequestVerdict.RETRY_COUNTED:
                    failures += 1
                    failure = (status, error_type(reply.body) or f"http_{status}", reason)
                    if (done := await self._failed(run, positions, failures, failure)) is not None:
                        return failed + done
                else:
                    if self.transport.node_unavailable(reply.node):
                        continue
                await self.back_off(attempt)
                attempt += 1
                continue
            if run.letters_for is None and all_created(reply.body, len(positions)):
                self._reply_read(True)  # what the item path below concludes, without reading items
                self.metrics.docs_created += len(positions)
                return failed
            results = self._parse_items(reply, len(positions))
            if results is None:
                await self.back_off(attempt)
                attempt += 1
                continue
            accepted_before = self._reply_read(any(accepted(r.status) for r in results))
            retry, dead, refused, halted = self._apply(run, positions, results, accepted_before)
            failed += refused
            if dead:
                failed += await self._dead_letter(run, dead)
            if len(retry) < len(positions):
                failures = 0  # a different request from now on
            positions = retry
            if positions:
                if halted:
                    await self.halt(halted[0], f"{reply.node}: {halted[1]}")
                else:
                    delay = self.policy.delay(attempt, self._rng)
                    if any(r.status == 429 for r in results):
                        self._pushed_back(delay)
                    await self._sleep(delay)
                    attempt += 1
            else:
                attempt = 0
        return failed

    def _reply_read(self, accepted_any: bool) -> int:
        """A readable 2xx reply: the engine answers (resume, last success); one that created or found
        documents proves it healthy. Returns the count of such replies before this one."""
        self.resume()
        self.metrics.last_success_time = time.time()
        before = self._accepted
        if accepted_any:
            self._accepted += 1
        return before

    async def _split(self, run: _Pass, positions: Sequence[int]) -> list[int]:
        half = len(positions) // 2
        return await self._ship(run, positions[:half]) + await self._ship(run, positions[half:])

    def _count_failure(self, run: _Pass, p: int, accepted_at_failure: int) -> bool:
        """Count one failure of document `p`; True when it has failed often enough, with the engine proven
        healthy, to be dead-lettered. Failures before any proof do not count: an outage never does."""
        since = run.failed_since.setdefault(p, accepted_at_failure)
        if self._accepted > since:
            run.failures[p] = run.failures.get(p, 0) + 1
        return run.failures.get(p, 0) >= self._max_failures

    async def _failed(self, run: _Pass, positions: Sequence[int], failures: int, failure: Failure) -> list[int] | None:
        """The request of `positions` failed in a way a document can cause, for the `failures`-th time: split
        it once that reaches the limit, or dead-letter its lone document once that is proven to be the
        problem. The failed positions when dealt with that way; None: retry the request."""
        for p in positions:
            run.failed_since.setdefault(p, self._accepted)
        if len(positions) > 1:
            if failures < self._max_failures:
                return None
            log.warning(
                "bulk request of %d documents failed %d times (%s): splitting it in two",
                len(positions),
                failures,
                _failure_text(failure),
            )
            return await self._split(run, positions)
        (p,) = positions
        if not self._count_failure(run, p, self._accepted):
            return None
        status, etype, reason = failure
        if run.letters_for is None:
            self._log_poisoned(run, [p], failure)
        reason = f"failed {run.failures[p]} times while the engine accepted other documents: {reason}"
        return await self._give_up(run, p, (status, etype, reason))

    def _log_poisoned(self, run: _Pass, positions: list[int], failure: Failure) -> None:
        first = positions[0]
        self._log_limited.error(
            f"poison|{failure[0]}|{failure[1]}",
            "%d document(s) failed %d times (%s) while the engine accepted other documents (first: %s, %d "
            "bytes, in %s): dead-lettering them so they cannot block the records behind them",
            len(positions),
            self._max_failures,
            _failure_text(failure),
            run.batch.ids[first],
            len(_source(run.batch.body([first]))),
            run.batch.indexes[first],
            items=len(positions),
        )

    def _apply(
        self, run: _Pass, positions: Sequence[int], results: list[ItemResult], accepted_before: int
    ) -> tuple[list[int], list[int], list[int], tuple[int, str] | None]:
        """Per-item statuses into outcomes; returns (to retry, to dead-letter, failed: dead letters refused,
        halting status). Documents created in this reply (`accepted_before`: the count before it) prove the
        engine healthy."""
        retry: list[int] = []
        dead: list[int] = []
        refused: list[int] = []
        poisoned: list[int] = []
        missing_index: dict[str, list[int]] = {}
        refused_letters: dict[Failure, list[int]] = {}
        halted: tuple[int, str] | None = None
        m = self.metrics
        batch, origin = run.batch, run.letters_for
        for p, result in zip(positions, results, strict=True):
            status, etype, reason = result.status, result.error_type, result.reason
            match item_verdict(status, dead_letter=origin is not None):
                case ItemVerdict.CREATED:
                    m.docs_created += 1
                case ItemVerdict.LETTER_WRITTEN:
                    assert origin is not None
                    orig = batch.tokens[p]
                    origin.details[orig] = Outcome(Result.DEAD_LETTERED, *origin.failure[orig])
                    m.docs_dead_lettered += 1
                case ItemVerdict.DUPLICATE:
                    run.details[p] = Outcome(Result.DUPLICATE, status, etype, reason)
                    m.docs_duplicate += 1
                case ItemVerdict.RETRY:
                    m.error(status, f"item {batch.ids[p]}: {etype}: {reason}")
                    retry.append(p)
                case ItemVerdict.RETRY_COUNTED:
                    m.error(status, f"item {batch.ids[p]}: {etype}: {reason}")
                    if not self._count_failure(run, p, accepted_before):
                        retry.append(p)
                        continue
                    reason = f"failed {run.failures[p]} times while the engine accepted other documents: {reason}"
                    if origin is None:
                        run.failure[p] = (status, etype, reason)
                        poisoned.append(p)
                        dead.append(p)
                    else:
                        refused_letters.setdefault((status, etype, reason), []).append(p)
                case ItemVerdict.HALT:
                    m.error(status, f"item {batch.ids[p]}: {etype}: {reason}")
                    halted = (status, f"{etype}: {reason}")
                    retry.append(p)
                case ItemVerdict.DEAD_LETTER:
                    m.error(status, f"item {batch.ids[p]} in {batch.indexes[p]}: {etype}: {reason}")
                    if status == 404:
                        missing_index.setdefault(batch.indexes[p], []).append(p)
                    run.failure[p] = (status, etype, reason)
                    dead.append(p)
                case ItemVerdict.LETTER_REFUSED:
                    m.error(status, f"dead letter for {batch.ids[p]}: {etype}: {reason}")
                    refused_letters.setdefault((status, etype, reason), []).append(p)
        for index, group in missing_index.items():
            self._log_limited.error(
                f"404|{index}",
                "index %s does not exist and cannot be created (%s): dead-lettering %d document(s)",
                index,
                run.failure[group[0]][2],
                len(group),
                items=len(group),
            )
        if poisoned:
            self._log_poisoned(run, poisoned, run.failure[poisoned[0]])
        for (status, etype, reason), letters in refused_letters.items():
            self._dead_letter_refused(run, letters, status, etype, reason)
            refused += letters
        return retry, dead, refused, halted

    def _dead_letter_refused(self, run: _Pass, letters: list[int], status: int, etype: str, reason: str) -> None:
        """Dead letters the engine will not take either: their documents stay spooled (one log line per
        reason and minute, however many documents and retries: defect 6 of issue 14)."""
        origin, index = run.letters_for, run.batch.indexes[letters[0]]
        assert origin is not None
        for p in letters:
            orig = run.batch.tokens[p]
            origin.details[orig] = Outcome(Result.FAILED, *origin.failure[orig])
            self.metrics.docs_failed += 1
        self._log_limited.error(
            f"dlq|{index}|{status}|{etype}",
            "dead-letter index %s refused %d dead letter(s) (HTTP %s %s: %s; first for document %s): those "
            "documents stay in the spool and are retried later",
            index,
            len(letters),
            status or "-",
            etype,
            reason[:500],
            run.batch.ids[letters[0]],
            items=len(letters),
        )

    async def _give_up(self, run: _Pass, p: int, failure: Failure) -> list[int]:
        """A document the engine will never take is dead-lettered; a dead letter, failed (kept spooled)."""
        if run.letters_for is not None:
            self._dead_letter_refused(run, [p], *failure)
            return [p]
        run.failure[p] = failure
        return await self._dead_letter(run, [p])

    async def _dead_letter(self, run: _Pass, positions: Sequence[int]) -> list[int]:
        """`index` a dead letter per refused document into the dead-letter index (same `_id`: idempotent);
        one that could not be serialized keeps its repr. Returns the documents whose letter was refused."""
        now = datetime.now(UTC)
        dlq_index = format_index(self.settings.dead_letter_index, now)
        batch = run.batch
        letters: BulkBatch[int] = BulkBatch()  # tokens: the positions of the documents in `run`
        for p in positions:
            status, etype, reason = run.failure[p]
            unencodable = batch.unencodable.get(p)
            original = unencodable[1] if unencodable else _source(batch.body([p])).decode("utf-8", "replace")
            truncated = len(original) > self._dlq_max
            if truncated:
                original = original[: self._dlq_max]
            doc_id, index = batch.ids[p], batch.indexes[p]
            letter = {
                "@timestamp": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "message": f"{etype}: {reason}"[:4096],
                "event": {"kind": "pipeline_error", "original": original},
                "error": {"type": etype, "code": str(status), "message": reason[:_DEAD_LETTER_MAX_REASON]},
                "auditrecv": {"dead_letter": {"index": index, "id": doc_id, "status": status, "truncated": truncated}},
            }
            letters.add_lines(
                dlq_index, doc_id, action_line("index", dlq_index, doc_id) + orjson.dumps(letter) + b"\n", p
            )
        self._log_limited.warning(
            f"dead-letter|{dlq_index}",
            "dead-lettering %d document(s) into %s",
            len(letters),
            dlq_index,
            items=len(letters),
        )
        refused = await self._ship(_Pass(letters, letters_for=run), range(len(letters)))
        return [letters.tokens[p] for p in refused]

    async def halt(self, status: int, message: str) -> None:
        """Count the refusal, say once that shipping is halted, and wait before the caller tries again."""
        m = self.metrics
        m.error(status, message)
        if not m.halted:
            m.halted = True
            log.error(
                "!!! search engine refused our credentials/privileges (%s). Shipping HALTED: records stay in "
                "the spool; retrying every %.0f s. Fix search.username/api_key/bearer_token or the role. !!!",
                message,
                self.policy.halt_probe_interval,
            )
        await self._sleep(self.policy.halt_probe_interval)

    def resume(self) -> None:
        if self.metrics.halted:
            self.metrics.halted = False
            log.warning("search engine accepts our requests again: shipping resumed")

    def _parse_items(self, reply: Reply, sent: int) -> list[ItemResult] | None:
        """One result per item, or None (logged) if the reply cannot be trusted."""
        results = parse_items(reply.body, sent)
        if isinstance(results, UnreadableReply):
            msg = f"{reply.node}: {results.message}"
            self.metrics.error(results.kind, msg)
            log.error("%s", msg)
            return None
        return results

    async def _post_bulk(self, body: BodyBytes, docs: int) -> Reply:
        async with self._throttle():
            self.metrics.in_flight += 1
            started = time.monotonic()
            self._requests_since.append(started)
            try:
                return await self.transport.post_bulk(body, docs)
            finally:
                self.metrics.in_flight -= 1
                self._requests_since.remove(started)
                self.request_latency.observe(time.monotonic() - started)

    def metric_families(self) -> Iterator[Metric]:
        """The sink's counters as Prometheus metrics (auditrecv.metrics), read at scrape time; labelled
        with the engine's flavour once detected ("unknown" until then)."""
        m = self.metrics
        engine = {"engine": self.engine.flavor if self.engine is not None else "unknown"}
        docs = CounterMetricFamily(
            "auditrecv_documents",
            "Documents confirmed by the engine, by outcome: created, duplicate (409: indexed already), "
            "dead_lettered (refused, written to the dead-letter index), failed (refused and the dead letter too).",
            labels=["engine", "outcome"],
        )
        for outcome, value in (
            ("created", m.docs_created),
            ("duplicate", m.docs_duplicate),
            ("dead_lettered", m.docs_dead_lettered),
            ("failed", m.docs_failed),
        ):
            docs.add_metric([engine["engine"], outcome], value)
        yield docs
        yield counter("auditrecv_bulk_requests", "_bulk requests sent.", m.requests, engine)
        errors = CounterMetricFamily(
            "auditrecv_bulk_errors",
            "Failed requests and refused items, by outcome: an HTTP status, connection, timeout, bad_reply, ...",
            labels=["engine", "outcome"],
        )
        for key, value in sorted(m.errors_by_status.items()):
            errors.add_metric([engine["engine"], key], value)
        yield errors
        yield counter(
            "auditrecv_bulk_retried_documents", "Documents resent after a retryable failure.", m.docs_retried, engine
        )
        yield counter(
            "auditrecv_bulk_sent_documents", "Documents transmitted, retransmissions included.", m.docs_sent, engine
        )
        yield counter("auditrecv_bulk_sent_bytes", "Request bytes on the wire (after gzip).", m.bytes_sent, engine)
        yield gauge("auditrecv_bulk_requests_in_flight", "_bulk requests waiting for a reply.", m.in_flight, engine)
        yield histogram(
            "auditrecv_bulk_request_seconds",
            "Time from sending a _bulk request (gzip included) to its reply or failure.",
            self.request_latency,
            engine,
        )
        yield gauge(
            "auditrecv_pipeline_parked_documents",
            "Documents refused by the engine and retried in the background.",
            self.parked,
        )
        yield gauge(
            "auditrecv_engine_halted", "1 while the engine refuses our credentials: nothing ships.", m.halted, engine
        )
        yield gauge(
            "auditrecv_bulk_last_success_timestamp_seconds",
            "Unix time of the last _bulk reply with item results (0: none yet).",
            m.last_success_time,
            engine,
        )

    def longest_request_seconds(self) -> float:
        """How long the oldest _bulk request in flight has waited (0 if none): a stalled engine shows
        here long before the request times out."""
        return time.monotonic() - min(self._requests_since) if self._requests_since else 0.0

    def _throttle(self) -> contextlib.AbstractAsyncContextManager[Any]:
        if time.monotonic() < self._throttle_until:
            return self._throttle_lock
        return contextlib.nullcontext()

    def _pushed_back(self, delay: float) -> None:
        """A 429: lower concurrency to one request until the engine has had a quiet while."""
        if time.monotonic() >= self._throttle_until:
            log.warning("engine overloaded (HTTP 429): one bulk request at a time for a while")
        self._throttle_until = time.monotonic() + max(delay, self.policy.throttle_window)

    async def wait_ready(self) -> None:
        """Wait for the background engine detection and template installation (if any)."""
        if self._ready is not None:
            await self._ready.wait()

    async def back_off(self, attempt: int) -> None:
        """The jittered exponential backoff of the retry policy, on the indexer's clock."""
        await self._sleep(self.policy.delay(attempt, self._rng))

    def start_setup(self, templates_for: TemplatesFor | None) -> None:
        """Detect the engine and install templates in the background; `index` waits for it."""
        self._ready = asyncio.Event()
        self._setup_task = asyncio.create_task(self._setup(templates_for), name="sink-setup")

    async def _setup(self, templates_for: TemplatesFor | None) -> None:
        assert self._ready is not None
        try:
            self.engine = await detect_until_answered(self)
            if self.settings.install_templates:
                await install_until_done(self, self.engine, templates_for)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("search engine setup failed; shipping anyway")
        finally:
            self._ready.set()


def _source(lines: BodyBytes) -> bytes:
    """The source line of a document's lines."""
    lines = bytes(lines)
    return lines[lines.index(b"\n") + 1 : -1]


def _failure_text(failure: Failure) -> str:
    status, etype, _reason = failure
    return f"HTTP {status} {etype}" if status else etype
