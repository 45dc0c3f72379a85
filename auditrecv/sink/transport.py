"""Getting bytes to a search node and its answer back: the session, nodes and failover, auth and TLS,
gzip, backoff. It decides nothing about documents: statuses are returned as they are (`policy.py` reads
them); a request that got no answer raises `Unanswered`."""

from __future__ import annotations

import asyncio
import base64
import email.utils
import logging
import random
import ssl
import time
from dataclasses import dataclass, field

import aiohttp
import orjson

# libdeflate through the compiled core (native/src/gzip.rs): ~3x zlib's speed at level 1, smaller output.
from auditrecv._native import gzip as _native_gzip
from auditrecv.config import Search
from auditrecv.sink.contract import BodyBytes, BulkMetrics, Reply, SinkError

log = logging.getLogger("auditrecv.sink")

_THREAD_COMPRESS_BYTES = 256 * 1024  # compress bigger bodies off the event loop (the native gzip drops the GIL)


@dataclass
class RetryPolicy:
    """Jittered exponential backoff: attempt n waits in [d/2, d] with d = min(cap, initial * 2**n): half
    fixed (a flapping engine is not hammered), half random (receivers do not retry in lockstep)."""

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


class Unanswered(Exception):
    """A request that got no answer. `can_fail_over`: another node is up. `suspect`: it was sent, then hung
    or was dropped (a document can cause that, not a refused connection); `failure`: for a dead letter."""

    def __init__(self, can_fail_over: bool, suspect: bool = False, failure: tuple[int, str, str] = (0, "", "")) -> None:
        super().__init__("unanswered")
        self.can_fail_over = can_fail_over
        self.suspect = suspect
        self.failure = failure


class Transport:
    """The HTTP side of the sink; counts what it sends and every failed request into `metrics`."""

    def __init__(self, settings: Search, policy: RetryPolicy, metrics: BulkMetrics, *, gzip_level: int = 1) -> None:
        self.settings = settings
        self.metrics = metrics
        self.nodes = NodePool(list(settings.urls), policy)
        self._ssl = ssl_context(settings)
        self._gzip_level = gzip_level  # 1: ~4x smaller at >100 MB/s; higher levels cost CPU for little
        self._session: aiohttp.ClientSession | None = None
        headers = {"Accept": "application/json"}
        auth = auth_header(settings)
        if auth:
            headers["Authorization"] = auth
        self._base_headers = headers
        bulk = dict(headers, **{"Content-Type": "application/x-ndjson"})
        if settings.gzip:
            bulk["Content-Encoding"] = "gzip"
        self._bulk_headers = bulk

    def open(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                ssl=self._ssl if self._ssl is not None else False,
                limit=max(4, 2 * max(1, self.settings.concurrency) * len(self.nodes.nodes)),
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.settings.request_timeout),
                json_serialize=lambda o: orjson.dumps(o).decode(),
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(self, method: str, path: str, body: bytes | None = None) -> Reply:
        """One JSON request, each live node tried once; HTTP error statuses are returned, SinkError raised
        when no node answered."""
        session = self._require_session()
        headers = dict(self._base_headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        last: BaseException | None = None
        for _ in range(len(self.nodes.nodes)):
            node = self.nodes.pick()
            try:
                async with session.request(method, node.url + path, data=body, headers=headers) as resp:
                    data = await resp.read()
                    self.nodes.succeeded(node)
                    return Reply(resp.status, resp.headers, data, node.url)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                last = exc
                self.nodes.failed(node)
                self.metrics.error(_conn_key(exc), f"{method} {node.url}{path}: {_describe(exc)}")
        raise SinkError(f"{method} {path}: no search node answered: {_describe(last)}")

    async def post_bulk(self, body: BodyBytes, docs: int) -> Reply:
        """POST one NDJSON body of `docs` documents to the next live node (gzipped if configured); raises
        Unanswered (counted and logged) when it did not answer."""
        session = self._require_session()
        m = self.metrics
        raw_len = len(body)
        if self.settings.gzip:
            body = await _gzip(body, self._gzip_level)
        node = self.nodes.pick()
        m.requests += 1
        m.docs_sent += docs
        m.bytes_uncompressed += raw_len
        m.bytes_sent += len(body)
        try:
            async with session.post(node.url + "/_bulk", data=body, headers=self._bulk_headers) as resp:
                data = await resp.read()
                self.nodes.succeeded(node)
                return Reply(resp.status, resp.headers, data, node.url)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            m.request_errors += 1
            msg = f"{node.url}: {_describe(exc)}"
            m.error(_conn_key(exc), msg)
            log.warning("bulk request of %d documents failed, will retry: %s", docs, msg)
            self.nodes.failed(node)
            suspect = not isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError)
            raise Unanswered(self.nodes.any_alive(), suspect, (0, _conn_key(exc), msg)) from exc

    def node_unavailable(self, url: str) -> bool:
        """The node at `url` answered 502/503/504: skip it for a while. True when another node is up."""
        self.nodes.failed(next(n for n in self.nodes.nodes if n.url == url))
        return self.nodes.any_alive()

    def _require_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise SinkError("BulkIndexer used before open() (use `async with BulkIndexer(...)`)")
        return self._session


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "no node configured"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"


def _conn_key(exc: BaseException) -> str:
    return "timeout" if isinstance(exc, TimeoutError) else "connection"


async def _gzip(body: BodyBytes, level: int = 1) -> bytes:
    if len(body) >= _THREAD_COMPRESS_BYTES:
        return await asyncio.to_thread(_native_gzip, body, level)
    return _native_gzip(body, level)
