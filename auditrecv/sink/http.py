"""HTTP plumbing shared by the bulk indexer and the template installer: auth, TLS, nodes, backoff.

Kept apart from the bulk logic so the retry/status policy in `bulk.py` reads as policy, and so the
pieces a test wants to pin down (header values, backoff delays, node choice) are plain functions.
"""

from __future__ import annotations

import base64
import email.utils
import logging
import random
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from auditrecv.config import Search

log = logging.getLogger("auditrecv.sink")


class SinkError(Exception):
    """A search-engine problem worth a one-line operator message."""


class EngineAuthError(SinkError):
    """The engine refused our credentials (401) or privileges (403): shipping halts, records stay spooled."""


def auth_header(settings: Search) -> str | None:
    """The Authorization header for the configured scheme, or None for an open engine."""
    if settings.api_key:
        key = settings.api_key.strip()
        # "id:key" is encoded here; anything else is taken as Elastic's already-encoded form.
        if ":" in key:
            key = base64.b64encode(key.encode()).decode("ascii")
        return f"ApiKey {key}"
    if settings.bearer_token:
        return f"Bearer {settings.bearer_token.strip()}"
    if settings.username:
        pair = f"{settings.username}:{settings.password}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")
    return None


def ssl_context(settings: Search) -> ssl.SSLContext | None:
    """A TLS context when any URL is https; None otherwise (aiohttp then never negotiates TLS)."""
    if not any(u.lower().startswith("https://") for u in settings.urls):
        return None
    ctx = ssl.create_default_context(cafile=settings.ca_file or None)
    if settings.client_cert:
        ctx.load_cert_chain(settings.client_cert, settings.client_key or None)
    if not settings.verify_certs:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        log.warning(
            "!!! search.verify_certs = false: the engine's TLS certificate is NOT checked; anyone on the "
            "path can read and alter audit records and steal the credentials. Development use only. !!!"
        )
    return ctx


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


@dataclass
class Node:
    url: str  # base URL without a trailing slash
    failures: int = 0
    dead_until: float = 0.0


@dataclass
class NodePool:
    """Round-robin over the configured URLs, skipping nodes that failed recently."""

    urls: list[str]
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    nodes: list[Node] = field(init=False)
    _next: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if not self.urls:
            raise SinkError("search.urls is empty: no engine to ship to")
        self.nodes = [Node(u.rstrip("/")) for u in self.urls]

    def pick(self, now: float | None = None) -> Node:
        """The next live node in turn; if all are dead, the one that comes back soonest."""
        now = time.monotonic() if now is None else now
        n = len(self.nodes)
        for i in range(n):
            node = self.nodes[(self._next + i) % n]
            if node.dead_until <= now:
                self._next = (self._next + i + 1) % n
                return node
        return min(self.nodes, key=lambda nd: nd.dead_until)

    def any_alive(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return any(nd.dead_until <= now for nd in self.nodes)

    def failed(self, node: Node, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        pause = min(self.policy.node_dead_cap, self.policy.node_dead_initial * (2 ** min(node.failures, 20)))
        node.failures += 1
        node.dead_until = now + pause
        if len(self.nodes) > 1:
            log.warning("search node %s failed; skipping it for %.0f s", node.url, pause)

    def succeeded(self, node: Node) -> None:
        if node.failures:
            log.info("search node %s is answering again", node.url)
        node.failures = 0
        node.dead_until = 0.0
