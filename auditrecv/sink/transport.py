"""Getting bytes to a search node and its answer back: the session, nodes and failover, auth, gzip.

It decides nothing about documents: HTTP statuses are returned as they are (`policy.py` reads them) and
a request that got no answer raises `Unanswered`, which says whether another node is worth trying at
once and whether a document could have caused it.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable

import aiohttp
import orjson

from auditrecv.config import Search
from auditrecv.sink.contract import BulkMetrics, Reply
from auditrecv.sink.http import NodePool, RetryPolicy, SinkError, auth_header, log, ssl_context

_THREAD_COMPRESS_BYTES = 256 * 1024  # compress bigger bodies off the event loop (the native gzip drops the GIL)
# libdeflate through the compiled core (native/src/gzip.rs): ~3x zlib's speed at level 1, smaller output.
_native_gzip: Callable[[bytes, int], bytes] = importlib.import_module("auditrecv._native").gzip


class Unanswered(Exception):
    """A request that got no answer. `can_fail_over`: another node is up. `suspect`: it was sent and then
    hung or was dropped, which a document can cause (a refused connection cannot); `failure` is
    (0, kind, message) for a dead letter."""

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
        """One JSON request with node failover (each live node tried once on connection errors).

        Raises SinkError when no node answered; HTTP error statuses are returned, not raised.
        """
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

    async def post_bulk(self, body: bytes, docs: int) -> Reply:
        """POST one NDJSON body of `docs` documents to the next live node (gzipped if configured).

        Raises Unanswered (counted and logged) when the node did not answer.
        """
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


async def _gzip(body: bytes, level: int = 1) -> bytes:
    if len(body) >= _THREAD_COMPRESS_BYTES:
        return await asyncio.to_thread(_native_gzip, body, level)
    return _native_gzip(body, level)
