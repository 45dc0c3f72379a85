"""The sink's shared vocabulary: its errors, the engine's error text, Retry-After, the backoff policy.

Plain functions and values that every sink module uses (`transport.py`, `bulk.py`, `engine.py`) and
that tests pin down on their own (backoff delays, Retry-After parsing).
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import orjson

log = logging.getLogger("auditrecv.sink")


class SinkError(Exception):
    """A search-engine problem worth a one-line operator message."""


class EngineAuthError(SinkError):
    """The engine refused our credentials (401) or privileges (403): shipping halts, records stay spooled."""


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_reason(body: bytes) -> str:
    """The engine's own words from an error body (`error.root_cause[0].reason`, `error.reason`, ...)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:300].decode("utf-8", "replace")
    err = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(err, dict):
        # The top-level reason is often generic ("template after composition is invalid"); the
        # specific one is down the caused_by chain.
        parts: list[str] = []
        node: Any = err
        while isinstance(node, dict) and len(parts) < 4:
            t, r = node.get("type", ""), node.get("reason", "")
            parts.append(f"{t}: {r}" if t else str(r))
            node = node.get("caused_by")
        return " (caused by) ".join(parts)
    if isinstance(err, str):
        return err
    return body[:300].decode("utf-8", "replace")


@dataclass
class RetryPolicy:
    """Jittered exponential backoff: attempt n waits in [d/2, d] with d = min(cap, initial * 2**n).

    Half the delay is fixed so a flapping engine is not hammered by an unlucky streak of short waits;
    the other half is random so several auditrecv instances do not retry in lockstep.
    """

    initial: float = 0.5
    cap: float = 30.0
    retry_after_cap: float = 300.0  # trust the engine's Retry-After, up to this
    halt_probe_interval: float = 30.0  # how often a halted (401/403) indexer tries again
    node_dead_initial: float = 5.0  # a failed node is skipped this long, doubling per failure
    node_dead_cap: float = 120.0
    throttle_window: float = 5.0  # after a 429, one request at a time for at least this long

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        d = min(self.cap, self.initial * (2.0 ** min(attempt, 30)))
        r = (rng or random).random()
        return d / 2 + r * d / 2

    def after_retry_after(self, retry_after: float | None, attempt: int) -> float:
        """Delay after a 429: the engine's Retry-After if it gave one, else the normal backoff."""
        if retry_after is not None:
            return min(retry_after, self.retry_after_cap)
        return self.delay(attempt)
