"""A bounded TTL cache whose loads are coalesced and never make a caller wait past its deadline.

Why not functools/an LRU library: enrichment needs three things together that none offers — one
in-flight load per key shared by every waiter, a shorter TTL for "not found"/errors, and stale
values served while a refresh is slow or the service is down.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

_MISSING = object()


class NotFound(Exception):
    """The service answered that the key does not exist (cached with the negative TTL)."""


@dataclass
class ProviderStats:
    """Per-provider counters, exported as metrics."""

    hits: int = 0
    misses: int = 0  # the caller got no value (not found, error, or over its time budget)
    lookups: int = 0  # loads actually sent to the service
    errors: int = 0
    timeouts: int = 0  # loads over lookup_timeout, and callers that stopped waiting at their deadline
    not_found: int = 0
    stale_served: int = 0
    latency_sum: float = 0.0
    latency_max: float = 0.0
    latency_buckets: dict[str, int] = field(
        default_factory=lambda: {"0.01": 0, "0.05": 0, "0.1": 0, "0.5": 0, "1": 0, "+Inf": 0}
    )

    def observe(self, seconds: float) -> None:
        self.latency_sum += seconds
        self.latency_max = max(self.latency_max, seconds)
        for bound in self.latency_buckets:
            if bound == "+Inf" or seconds <= float(bound):
                self.latency_buckets[bound] += 1


@dataclass(slots=True)
class _Entry:
    value: Any
    expires: float
    negative: bool


class LookupCache:
    def __init__(
        self,
        loader: Callable[[str], Awaitable[Any]],
        *,
        ttl: float,
        negative_ttl: float,
        max_entries: int,
        lookup_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._loader = loader
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._max = max_entries
        self._timeout = lookup_timeout
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._inflight: dict[str, asyncio.Task[Any]] = {}
        self.stats = ProviderStats()

    def __len__(self) -> int:
        return len(self._entries)

    async def settled(self) -> None:
        """Wait until no lookup is in flight (those started meanwhile included)."""
        while self._inflight:
            await asyncio.gather(*self._inflight.values(), return_exceptions=True)

    async def get(self, key: str, deadline: float | None = None) -> Any | None:
        """The value for key, or None when unknown, failed, or not ready before `deadline` (monotonic)."""
        now = self._clock()
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            if entry.expires > now:
                if entry.negative:
                    self.stats.misses += 1
                    return None
                self.stats.hits += 1
                return entry.value
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._load(key))
            self._inflight[key] = task
        stale = entry.value if entry is not None and not entry.negative else None
        if stale is not None:
            # A refresh is under way; never make the event wait for it.
            self.stats.stale_served += 1
            return stale
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            value = await asyncio.wait_for(asyncio.shield(task), wait)
        except asyncio.CancelledError:
            self.stats.misses += 1
            raise
        except TimeoutError:
            self.stats.misses += 1
            self.stats.timeouts += 1
            return None
        except Exception:  # the load failed
            self.stats.misses += 1
            return None
        if value is _MISSING:
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        return value

    async def _load(self, key: str) -> Any:
        start = time.monotonic()
        self.stats.lookups += 1
        negative = False
        try:
            value = await asyncio.wait_for(self._loader(key), self._timeout)
        except NotFound:
            self.stats.not_found += 1
            value, negative = _MISSING, True
        except TimeoutError:
            self.stats.errors += 1
            self.stats.timeouts += 1
            value, negative = _MISSING, True
        except Exception:
            self.stats.errors += 1
            value, negative = _MISSING, True
        finally:
            self.stats.observe(time.monotonic() - start)
            self._inflight.pop(key, None)
        old = self._entries.get(key)
        if negative and old is not None and not old.negative:
            # Keep serving the stale value when the service fails, but retry after the short TTL.
            old.expires = self._clock() + self._negative_ttl
            return old.value
        ttl = self._negative_ttl if negative else self._ttl
        self._entries[key] = _Entry(value, self._clock() + ttl, negative)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return value
