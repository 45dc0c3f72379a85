"""Bulk indexing built around the spool: the one retry layer of the path, and its one concurrency limit.

A document is *confirmed* only when the engine holds it: created, already there (409 on `create` with
our deterministic `_id`), or written to the dead-letter index. Everything else is retried here (what
each status means is `policy.py`): `index` goes through once and reports a document whose dead letter
was refused too as unconfirmed; `submit`, the pipeline's, retries those as well (parked in the
background after a few tries) and tells its caller of each document once confirmed.

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
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from prometheus_client.core import CounterMetricFamily, Metric

from auditrecv.config import Search
from auditrecv.logsetup import ThrottledLog
from auditrecv.metrics import LatencyHistogram, counter, gauge, histogram
from auditrecv.sink.contract import BulkDoc, BulkMetrics, BulkOutcome, EngineInfo, Reply, Result, Settled, T
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

_DEAD_LETTER_MAX_SOURCE = 1024 * 1024  # keep dead letters far below http.max_content_length
_DEAD_LETTER_MAX_REASON = 4096  # the engine's error reason can quote the whole document
_LOG_INTERVAL = 60.0  # seconds between two log lines about the same refusal


@dataclass(eq=False, slots=True)
class _Item:
    """A document as it travels: its NDJSON lines are built once and reused by retries and splits."""

    doc: BulkDoc[Any]
    lines: bytes  # action line + source line, each ending in "\n"
    source: bytes  # the serialized source (what a dead letter preserves)
    dead_letter_for: _Item | None = None  # set on dead-letter writes: the refused original
    failure: tuple[int, str, str] = (0, "", "")  # (status, type, reason) that sent it to the DLQ
    outcome: BulkOutcome[Any] | None = None
    failed_since: int | None = None  # the indexer's acceptance count when this document first failed
    failures: int = 0  # failures counted towards dead-lettering it (see the module docstring)
    letter_index: str = ""  # on dead-letter writes: where to


def _json_default(obj: Any) -> Any:
    """What orjson cannot serialize natively: bytes as text, everything else (IP addresses, ...) as str."""
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj).decode("utf-8", "backslashreplace")
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    return str(obj)


def _action(op: str, index: str, doc_id: str) -> bytes:
    return orjson.dumps({op: {"_index": index, "_id": doc_id}})


def _serialize(source: dict[str, Any] | bytes) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        if b"\n" in data or b"\r" in data:  # pretty-printed JSON would break NDJSON framing
            data = orjson.dumps(orjson.loads(data))
        return data
    return orjson.dumps(source, default=_json_default)


def encode(doc: BulkDoc[Any]) -> _Item | tuple[BulkDoc[Any], str]:
    """The NDJSON lines of one `create`, or (doc, why) if the source cannot be made into JSON."""
    if doc.lines is not None and isinstance(doc.source, bytes):
        return _Item(doc, doc.lines, doc.source)
    try:
        src = _serialize(doc.source)
    except (orjson.JSONEncodeError, orjson.JSONDecodeError, TypeError, ValueError) as exc:
        return doc, f"{type(exc).__name__}: {exc}"
    return _Item(doc, _action("create", doc.index, doc.id) + b"\n" + src + b"\n", src)


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
        self._parked: dict[Settled[Any], list[BulkDoc[Any]]] = {}
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

    async def submit(self, docs: Sequence[BulkDoc[T]], settled: Settled[T]) -> None:
        """Index `docs` in the background once a lane is free (the wait is the caller's backpressure);
        `settled` gets their outcomes as they are confirmed. Nothing is given up on before `close`: a
        document refused even as a dead letter is retried, parked after `max_document_retries` tries."""
        await self._lanes.acquire()
        task = asyncio.create_task(self._deliver(list(docs), settled))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def wait_idle(self) -> None:
        """Until every submitted document is confirmed (parked ones included)."""
        while self._deliveries or self._parked_task is not None:
            await asyncio.gather(*self._deliveries, *filter(None, [self._parked_task]), return_exceptions=True)

    @property
    def parked(self) -> int:
        return self._retrying + sum(len(docs) for docs in self._parked.values())

    async def _deliver(self, docs: list[BulkDoc[T]], settled: Settled[T]) -> None:
        try:
            delay = 1.0
            tries = 0
            while docs:
                docs = await self._attempt(docs, settled, delay)
                tries += 1
                if docs:
                    if tries >= self._max_failures and self._park(docs, settled):
                        return
                    await self._sleep(delay)
                    delay = min(delay * 2, 60.0)
        finally:
            self._lanes.release()

    async def _attempt(self, docs: list[BulkDoc[T]], settled: Settled[T], delay: float) -> list[BulkDoc[T]]:
        """One pass over `docs` in the lane held: the confirmed ones to `settled`, the rest returned."""
        try:
            outcomes = await self._index(docs, in_lanes=False)
        except Exception:
            log.exception("indexing %d documents failed; retrying in %.0f s", len(docs), delay)
            return docs
        failed = Result.FAILED
        left = [o.doc for o in outcomes if o.result is failed]
        confirmed = [o for o in outcomes if o.result is not failed] if left else outcomes
        if confirmed:
            try:
                await settled(confirmed)
            except Exception:
                log.exception("%d confirmed documents could not be settled", len(confirmed))
        return left

    def _park(self, docs: list[BulkDoc[T]], settled: Settled[T]) -> bool:
        """Hand `docs` to the background retry; False (keep the lane and retry) when that is full."""
        if self.parked + len(docs) > max(1, self.settings.batch_max_docs):
            return False
        self._parked.setdefault(settled, []).extend(docs)
        log.warning(
            "%d document(s) refused even as dead letters: retried in the background, still in the spool (%d parked)",
            len(docs),
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
                self._retrying = sum(len(docs) for docs in parked.values())
                async with self._lanes:
                    for settled, docs in parked.items():
                        if left := await self._attempt(docs, settled, delay):
                            self._parked.setdefault(settled, []).extend(left)
                        self._retrying -= len(docs)
                delay = min(delay * 2, 600.0)
        finally:
            self._parked_task = None
            self._retrying = 0

    async def index(self, docs: Iterable[BulkDoc[T]]) -> list[BulkOutcome[T]]:
        """Index `docs` once through, its chunks in lanes of their own; one outcome per doc, in order:
        created, duplicate, dead-lettered, or failed (refused even as a dead letter: not retried here)."""
        return await self._index(docs, in_lanes=True)

    async def _in_lane(self, send: Callable[[list[_Item]], Awaitable[None]], items: list[_Item]) -> None:
        async with self._lanes:
            await send(items)

    async def _index(self, docs: Iterable[BulkDoc[T]], *, in_lanes: bool) -> list[BulkOutcome[T]]:
        """`index`; without `in_lanes`, in the caller's lane, the chunks one after the other."""
        order, items, unencodable = _encode_all(docs)
        await self.wait_ready()
        sends = [(self._ship, chunk) for chunk in self._chunks(items)]
        if unencodable:
            first = unencodable[0]
            self._log_limited.error(
                "serialize",
                "%d document(s) cannot be serialized (first: %s: %s): dead-lettering them",
                len(unencodable),
                first.doc.id,
                first.failure[2],
                items=len(unencodable),
            )
            sends.insert(0, (self._dead_letter, unencodable))
        if in_lanes:
            async with asyncio.TaskGroup() as tg:
                for send, chunk in sends:
                    tg.create_task(self._in_lane(send, chunk))
        else:
            for send, chunk in sends:
                await send(chunk)
        return [it.outcome or _outcome(it) for it in order]

    def _chunks(self, items: list[_Item]) -> Iterable[list[_Item]]:
        max_docs, max_bytes = self.settings.batch_max_docs, self.settings.batch_max_bytes
        if 0 < len(items) <= max_docs and sum([len(it.lines) for it in items]) <= max_bytes:
            yield items  # one request (the pipeline's batches): no per-document bookkeeping
            return
        chunk: list[_Item] = []
        size = 0
        for it in items:
            if chunk and (len(chunk) >= max_docs or size + len(it.lines) > max_bytes):
                yield chunk
                chunk, size = [], 0
            chunk.append(it)
            size += len(it.lines)
        if chunk:
            yield chunk

    async def _ship(self, items: list[_Item]) -> None:
        """Send until every item has an outcome (the status policy of the module docstring)."""
        attempt = 0
        failures = 0  # failures of this very request that may be its documents' fault
        sent = False
        while items:
            if sent:
                self.metrics.docs_retried += len(items)
            sent = True
            try:
                reply = await self._post_bulk(items)
            except Unanswered as exc:
                if exc.suspect:
                    failures += 1
                    if await self._failed(items, failures, exc.failure):
                        return
                if exc.can_fail_over:
                    continue  # another node is up: try it straight away
                await self.back_off(attempt)
                attempt += 1
                continue
            status = reply.status
            verdict = request_verdict(status, len(items))
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
                    self.metrics.error(413, f"{reply.node}: request of {len(items)} docs too large (HTTP 413)")
                    if verdict is RequestVerdict.SPLIT:
                        log.warning("HTTP 413 for %d documents: splitting in two", len(items))
                    etype, reason = "request_too_large", reason or "HTTP 413"
                else:
                    self.metrics.error(400, f"{reply.node}: whole request refused (HTTP 400): {reason}")
                    etype = error_type(reply.body) or "bad_request"
                if verdict is RequestVerdict.SPLIT:  # find the document that breaks the request
                    await self._split(items)
                else:
                    await self._give_up(items[0], (status, etype, reason))
                return
            if verdict is not RequestVerdict.ITEMS:  # OUTAGE or RETRY_COUNTED
                reason = error_reason(reply.body)
                msg = f"{reply.node}: HTTP {status}: {reason}"
                self.metrics.error(status, msg)
                log.warning("bulk request of %d documents failed, will retry: %s", len(items), msg)
                if verdict is RequestVerdict.RETRY_COUNTED:
                    failures += 1
                    failure = (status, error_type(reply.body) or f"http_{status}", reason)
                    if await self._failed(items, failures, failure):
                        return
                else:
                    if self.transport.node_unavailable(reply.node):
                        continue
                await self.back_off(attempt)
                attempt += 1
                continue
            if items[0].dead_letter_for is None and all_created(reply.body, len(items)):
                self._all_created(items)  # what the general path below concludes, without per-item parsing
                return
            results = self._parse_items(reply, len(items))
            if results is None:
                await self.back_off(attempt)
                attempt += 1
                continue
            accepted_before = self._reply_read(any(accepted(r.status) for r in results))
            retry, dead, halted = self._apply(items, results, accepted_before)
            if dead:
                await self._dead_letter(dead)
            if len(retry) < len(items):
                failures = 0  # a different request from now on
            items = retry
            if items:
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

    def _reply_read(self, accepted_any: bool) -> int:
        """A readable 2xx reply: the engine answers (resume, last success); one that created or found
        documents proves it healthy. Returns the count of such replies before this one."""
        self.resume()
        self.metrics.last_success_time = time.time()
        before = self._accepted
        if accepted_any:
            self._accepted += 1
        return before

    def _all_created(self, items: list[_Item]) -> None:
        """Every document of `items` (no dead letters: those are sent in requests of their own) created."""
        self._reply_read(True)
        created = Result.CREATED
        for it in items:
            it.outcome = BulkOutcome(it.doc, created, 201)
        self.metrics.docs_created += len(items)

    async def _split(self, items: list[_Item]) -> None:
        half = len(items) // 2
        await self._ship(items[:half])
        await self._ship(items[half:])

    def _count_failure(self, it: _Item, accepted_at_failure: int) -> bool:
        """Count one failure of `it`; True when it has failed often enough, with the engine proven
        healthy, to be dead-lettered. Failures before any proof do not count: an outage never does."""
        if it.failed_since is None:
            it.failed_since = accepted_at_failure
        if self._accepted > it.failed_since:
            it.failures += 1
        return it.failures >= self._max_failures

    async def _failed(self, items: list[_Item], failures: int, failure: tuple[int, str, str]) -> bool:
        """The request `items` failed in a way a document can cause, for the `failures`-th time: split it
        once that reaches the limit, or dead-letter its lone document once that is proven to be the
        problem. True when the items were dealt with that way; False: retry the request."""
        for it in items:
            if it.failed_since is None:
                it.failed_since = self._accepted
        if len(items) > 1:
            if failures < self._max_failures:
                return False
            log.warning(
                "bulk request of %d documents failed %d times (%s): splitting it in two",
                len(items),
                failures,
                _failure_text(failure),
            )
            await self._split(items)
            return True
        (it,) = items
        if not self._count_failure(it, self._accepted):
            return False
        status, etype, reason = failure
        if it.dead_letter_for is None:
            self._log_poisoned([it], failure)
        reason = f"failed {it.failures} times while the engine accepted other documents: {reason}"
        await self._give_up(it, (status, etype, reason))
        return True

    def _log_poisoned(self, items: list[_Item], failure: tuple[int, str, str]) -> None:
        first = items[0]
        self._log_limited.error(
            f"poison|{failure[0]}|{failure[1]}",
            "%d document(s) failed %d times (%s) while the engine accepted other documents (first: %s, %d "
            "bytes, in %s): dead-lettering them so they cannot block the records behind them",
            len(items),
            self._max_failures,
            _failure_text(failure),
            first.doc.id,
            len(first.source),
            first.doc.index,
            items=len(items),
        )

    def _apply(
        self, items: list[_Item], results: list[ItemResult], accepted_before: int
    ) -> tuple[list[_Item], list[_Item], tuple[int, str] | None]:
        """Per-item statuses into outcomes; returns (to retry, to dead-letter, halting status). Documents
        created in this reply (`accepted_before`: the count before it) prove the engine healthy."""
        retry: list[_Item] = []
        dead: list[_Item] = []
        poisoned: list[_Item] = []
        missing_index: dict[str, list[_Item]] = {}
        refused_letters: dict[tuple[int, str, str], list[_Item]] = {}
        halted: tuple[int, str] | None = None
        m = self.metrics
        for it, result in zip(items, results, strict=True):
            status, etype, reason = result.status, result.error_type, result.reason
            orig = it.dead_letter_for
            match item_verdict(status, dead_letter=orig is not None):
                case ItemVerdict.CREATED:
                    it.outcome = BulkOutcome(it.doc, Result.CREATED, status)
                    m.docs_created += 1
                case ItemVerdict.LETTER_WRITTEN:
                    assert orig is not None
                    orig.outcome = BulkOutcome(orig.doc, Result.DEAD_LETTERED, *it.failure)
                    m.docs_dead_lettered += 1
                case ItemVerdict.DUPLICATE:
                    it.outcome = BulkOutcome(it.doc, Result.DUPLICATE, status, etype, reason)
                    m.docs_duplicate += 1
                case ItemVerdict.RETRY:
                    m.error(status, f"item {it.doc.id}: {etype}: {reason}")
                    retry.append(it)
                case ItemVerdict.RETRY_COUNTED:
                    m.error(status, f"item {it.doc.id}: {etype}: {reason}")
                    if not self._count_failure(it, accepted_before):
                        retry.append(it)
                        continue
                    reason = f"failed {it.failures} times while the engine accepted other documents: {reason}"
                    if orig is None:
                        it.failure = (status, etype, reason)
                        poisoned.append(it)
                        dead.append(it)
                    else:
                        refused_letters.setdefault((status, etype, reason), []).append(it)
                case ItemVerdict.HALT:
                    m.error(status, f"item {it.doc.id}: {etype}: {reason}")
                    halted = (status, f"{etype}: {reason}")
                    retry.append(it)
                case ItemVerdict.DEAD_LETTER:
                    m.error(status, f"item {it.doc.id} in {it.doc.index}: {etype}: {reason}")
                    if status == 404:
                        missing_index.setdefault(it.doc.index, []).append(it)
                    it.failure = (status, etype, reason)
                    dead.append(it)
                case ItemVerdict.LETTER_REFUSED:
                    assert orig is not None
                    m.error(status, f"dead letter for {orig.doc.id}: {etype}: {reason}")
                    refused_letters.setdefault((status, etype, reason), []).append(it)
        for index, group in missing_index.items():
            self._log_limited.error(
                f"404|{index}",
                "index %s does not exist and cannot be created (%s): dead-lettering %d document(s)",
                index,
                group[0].failure[2],
                len(group),
                items=len(group),
            )
        if poisoned:
            self._log_poisoned(poisoned, poisoned[0].failure)
        for (status, etype, reason), letters in refused_letters.items():
            self._dead_letter_refused(letters, status, etype, reason)
        return retry, dead, halted

    def _dead_letter_refused(self, letters: list[_Item], status: int, etype: str, reason: str) -> None:
        """Dead letters the engine will not take either: their documents stay spooled (one log line per
        reason and minute, however many documents and retries: defect 6 of issue 14)."""
        for letter in letters:
            orig = letter.dead_letter_for
            assert orig is not None
            orig.outcome = BulkOutcome(orig.doc, Result.FAILED, *orig.failure)
            self.metrics.docs_failed += 1
        index = letters[0].letter_index
        self._log_limited.error(
            f"dlq|{index}|{status}|{etype}",
            "dead-letter index %s refused %d dead letter(s) (HTTP %s %s: %s; first for document %s): those "
            "documents stay in the spool and are retried later",
            index,
            len(letters),
            status or "-",
            etype,
            reason[:500],
            letters[0].doc.id,
            items=len(letters),
        )

    async def _give_up(self, it: _Item, failure: tuple[int, str, str]) -> None:
        """A document the engine will never take is dead-lettered; a dead letter, failed (kept spooled)."""
        if it.dead_letter_for is not None:
            self._dead_letter_refused([it], *failure)
        else:
            it.failure = failure
            await self._dead_letter([it])

    async def _dead_letter(self, items: list[_Item]) -> None:
        """`index` a dead letter per refused document into the dead-letter index (same `_id`: idempotent);
        one that could not be serialized keeps its repr."""
        now = datetime.now(UTC)
        dlq_index = format_index(self.settings.dead_letter_index, now)
        letters: list[_Item] = []
        for it in items:
            status, etype, reason = it.failure
            original = it.source.decode("utf-8", "replace") if it.lines else repr(it.doc.source)
            truncated = len(original) > self._dlq_max
            if truncated:
                original = original[: self._dlq_max]
            letter = {
                "@timestamp": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "message": f"{etype}: {reason}"[:4096],
                "event": {"kind": "pipeline_error", "original": original},
                "error": {"type": etype, "code": str(status), "message": reason[:_DEAD_LETTER_MAX_REASON]},
                "auditrecv": {
                    "dead_letter": {"index": it.doc.index, "id": it.doc.id, "status": status, "truncated": truncated}
                },
            }
            src = orjson.dumps(letter)
            lines = _action("index", dlq_index, it.doc.id) + b"\n" + src + b"\n"
            letters.append(_Item(it.doc, lines, src, dead_letter_for=it, failure=it.failure, letter_index=dlq_index))
        self._log_limited.warning(
            f"dead-letter|{dlq_index}",
            "dead-lettering %d document(s) into %s",
            len(letters),
            dlq_index,
            items=len(letters),
        )
        await self._ship(letters)

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

    async def _post_bulk(self, items: list[_Item]) -> Reply:
        body = b"".join([it.lines for it in items])
        async with self._throttle():
            self.metrics.in_flight += 1
            started = time.monotonic()
            self._requests_since.append(started)
            try:
                return await self.transport.post_bulk(body, len(items))
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


def _encode_all(docs: Iterable[BulkDoc[Any]]) -> tuple[list[_Item], list[_Item], list[_Item]]:
    """(every document in order, those encoded, those that cannot be: `serialization_error`)."""
    order: list[_Item] = []
    items: list[_Item] = []
    unencodable: list[_Item] = []
    for doc in docs:
        # the native core's bulk lines (most documents) are sent as they are: no call, no checks
        enc = _Item(doc, doc.lines, doc.source) if doc.lines is not None and type(doc.source) is bytes else encode(doc)
        if isinstance(enc, tuple):
            enc = _Item(doc, b"", b"", failure=(0, "serialization_error", enc[1]))
            unencodable.append(enc)
        else:
            items.append(enc)
        order.append(enc)
    return order, items, unencodable


def _failure_text(failure: tuple[int, str, str]) -> str:
    status, etype, _reason = failure
    return f"HTTP {status} {etype}" if status else etype


def _outcome(it: _Item) -> BulkOutcome[Any]:
    if it.outcome is None:  # cannot happen unless a code path forgot an item: never claim success
        log.error("internal: no outcome for document %s; keeping it spooled", it.doc.id)
        return BulkOutcome(it.doc, Result.FAILED, 0, "internal", "no outcome")
    return it.outcome
