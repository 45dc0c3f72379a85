"""Accumulate documents and flush by count, bytes or age, with a bounded number of batches in flight.

For a caller that produces documents one at a time: `await batcher.add(doc)` returns quickly while
there is room and blocks (backpressure) once `concurrency` batches are being shipped and the next
one is full. Each finished batch's outcomes go to `on_outcomes`, where the caller deletes the
confirmed documents' records from the spool.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

from auditrecv.sink.bulk import BulkDoc, BulkIndexer, BulkOutcome, Result, _Item, _outcome, encode, log

OnOutcomes = Callable[[list[BulkOutcome]], Awaitable[None] | None]


class BulkBatcher:
    def __init__(
        self,
        indexer: BulkIndexer,
        on_outcomes: OnOutcomes,
        *,
        max_docs: int | None = None,
        max_bytes: int | None = None,
        max_age: float | None = None,
        concurrency: int | None = None,
    ) -> None:
        s = indexer.settings
        self._indexer = indexer
        self._on_outcomes = on_outcomes
        self.max_docs = max_docs or s.batch_max_docs
        self.max_bytes = max_bytes or s.batch_max_bytes
        self.max_age = s.batch_max_age if max_age is None else max_age
        self._slots = asyncio.Semaphore(max(1, concurrency or s.concurrency))
        self._batch: list[_Item] = []
        self._bad: list[_Item] = []  # documents that could not be serialized (dead-lettered with the batch)
        self._bytes = 0
        self._started = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._add_lock = asyncio.Lock()

    async def add(self, doc: BulkDoc) -> None:
        async with self._add_lock:
            enc = encode(doc)
            if isinstance(enc, tuple):
                self._bad.append(_Item(doc, b"", b"", failure=(0, "serialization_error", enc[1])))
            else:
                self._batch.append(enc)
                self._bytes += len(enc.lines)
            if len(self._batch) + len(self._bad) == 1:
                self._started = time.monotonic()
                self._arm_timer()
            if len(self._batch) >= self.max_docs or self._bytes >= self.max_bytes:
                await self._dispatch()

    async def flush(self) -> None:
        """Ship what is pending now and wait until every batch in flight has reported its outcomes."""
        async with self._add_lock:
            await self._dispatch()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        try:
            await self.flush()
        finally:
            if self._timer is not None:
                self._timer.cancel()

    async def __aenter__(self) -> BulkBatcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if exc[0] is None:
            await self.close()
        else:
            if self._timer is not None:
                self._timer.cancel()
            for t in list(self._tasks):
                t.cancel()

    @property
    def pending(self) -> int:
        return len(self._batch) + len(self._bad)

    # ------------------------------------------------------------------ internals

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.max_age, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self.pending:
            # Not under the add lock: producers keep filling the batch while this waits for a slot.
            task = asyncio.create_task(self._dispatch())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _dispatch(self) -> None:
        """Wait for a free slot, then take the current batch (so a waiting batch may still grow)."""
        if not self.pending:
            return
        await self._slots.acquire()
        batch, bad = self._batch, self._bad
        self._batch, self._bad, self._bytes = [], [], 0
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not batch and not bad:
            self._slots.release()
            return
        task = asyncio.create_task(self._run(batch, bad))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[_Item], bad: list[_Item]) -> None:
        try:
            try:
                await self._indexer.index_items(batch, bad)
                outcomes = [_outcome(it) for it in batch + bad]
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a sink bug: report everything unconfirmed, keep it spooled
                log.exception("bulk batch of %d documents failed", len(batch) + len(bad))
                outcomes = [
                    BulkOutcome(it.doc, Result.FAILED, 0, "internal", repr(exc)) if it.outcome is None else it.outcome
                    for it in batch + bad
                ]
            try:
                res = self._on_outcomes(outcomes)
                if inspect.isawaitable(res):
                    await res
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("on_outcomes callback failed")
        finally:
            self._slots.release()
