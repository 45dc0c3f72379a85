"""What the rest of the service (and the sink's own modules, and test doubles) sees of the sink: its
vocabulary and Protocols, apart from `bulk.py` so that nothing imports in a circle."""

from __future__ import annotations

import enum
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

from auditrecv.metrics import MetricSource

T = TypeVar("T")
Flavor = Literal["elasticsearch", "opensearch"]


class SinkError(Exception):
    """A search-engine problem worth a one-line operator message."""


class EngineAuthError(SinkError):
    """The engine refused our credentials (401) or privileges (403): shipping halts, records stay spooled."""


class Result(enum.Enum):
    CREATED = "created"
    DUPLICATE = "duplicate"  # 409 on create: an earlier copy (retransmit, retry) is already indexed
    DEAD_LETTERED = "dead_lettered"  # refused by the engine, kept in the dead-letter index
    FAILED = "failed"  # NOT confirmed: keep it spooled


@dataclass(frozen=True, slots=True)
class BulkDoc(Generic[T]):
    """One document to `create`. `source` is a dict or already-serialized single-line JSON bytes."""

    index: str
    id: str
    source: dict[str, Any] | bytes
    token: T | None = None  # opaque to the sink: the spool ids the document was built from
    # The document's NDJSON lines when they are already written (the native bulk body: the `create` action
    # line for `index` and `id`, then `source`, each ending in a newline): sent as they are.
    lines: bytes | None = None


@dataclass(frozen=True, slots=True)
class BulkOutcome(Generic[T]):
    doc: BulkDoc[T]
    result: Result
    status: int = 0  # the engine's item status (the original one for dead letters)
    error_type: str = ""
    error_reason: str = ""

    @property
    def confirmed(self) -> bool:
        """True when the spool may forget the records behind this document."""
        return self.result is not Result.FAILED

    @property
    def token(self) -> T | None:
        return self.doc.token


@dataclass
class BulkMetrics:
    """Plain counters for /metrics; errors_by_status keys are HTTP statuses or 'connection', 'timeout', ..."""

    docs_sent: int = 0  # document lines transmitted, retransmissions included
    docs_created: int = 0
    docs_duplicate: int = 0
    docs_dead_lettered: int = 0
    docs_failed: int = 0  # returned unconfirmed (the dead-letter write failed too)
    docs_retried: int = 0
    bytes_sent: int = 0  # on the wire (after gzip)
    bytes_uncompressed: int = 0
    requests: int = 0
    request_errors: int = 0
    errors_by_status: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0
    halted: bool = False  # 401/403: nothing ships until the engine accepts us again
    last_error: str = ""
    last_error_time: float = 0.0  # Unix seconds
    last_success_time: float = 0.0  # Unix seconds of the last _bulk reply with item results

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def error(self, key: str | int, message: str) -> None:
        k = str(key)
        self.errors_by_status[k] = self.errors_by_status.get(k, 0) + 1
        self.last_error = message
        self.last_error_time = time.time()


@dataclass(frozen=True, slots=True)
class EngineInfo:
    """The engine that answered `GET /` (sink.engine.parse_engine_info)."""

    flavor: Flavor
    version: str  # as reported, e.g. "2.19.1" or "8.15.0-SNAPSHOT"
    major: int
    minor: int = 0
    cluster_name: str = ""


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes
    node: str


class Requester(Protocol):
    """One JSON request with node failover: what engine detection and template installation need."""

    async def request(self, method: str, path: str, body: bytes | None = None) -> Reply: ...


Settled = Callable[[list[BulkOutcome[T]]], Awaitable[None]]  # told of documents confirmed, as they are


class Indexer(Protocol):
    """The sink as the pipeline sees it: it retries until each document is confirmed (or the indexer
    closes), at most `search.concurrency` batches at a time; `submit` waits for room."""

    async def submit(self, docs: Sequence[BulkDoc[T]], settled: Settled[T]) -> None: ...

    async def wait_idle(self) -> None: ...

    async def close(self) -> None: ...


class EngineStatus(Protocol):
    """What the health checks and the status page read of the sink."""

    @property
    def metrics(self) -> BulkMetrics: ...

    @property
    def engine(self) -> EngineInfo | None: ...

    def longest_request_seconds(self) -> float:
        """How long the oldest `_bulk` request in flight has waited (0 if none)."""
        ...


class ServiceIndexer(Indexer, EngineStatus, MetricSource, Protocol):
    """The sink as the service wires it: the pipeline's Indexer, watched by /health and /, on /metrics."""
