"""What the rest of the service (and the sink's own modules, and test doubles) sees of the sink: its
vocabulary and Protocols, apart from `bulk.py` so that nothing imports in a circle."""

from __future__ import annotations

import enum
import json
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

import orjson

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


_DocSource = dict[str, Any] | bytes
# Bulk lines as the sink holds and sends them: bytes, or a native body as it came (a read-only memoryview of
# the bytes the native core wrote, never copied into a `bytes`: see native/src/bulk_body.rs).
BodyBytes = bytes | memoryview


class BulkBatch(Generic[T]):
    """Documents to `create`, as one object: their NDJSON lines back to back (a `create` action line and a
    source line each; the native core's bulk bodies as they are) and, by position, where each one's lines
    end, its id, index and token (opaque to the sink: the spool ids it was built from). One that cannot be
    serialized takes no bytes: the sink dead-letters it (`serialization_error`, its repr kept)."""

    __slots__ = ("_parts", "_size", "ends", "ids", "indexes", "tokens", "unencodable")

    def __init__(self) -> None:
        self._parts: list[BodyBytes] = []
        self._size = 0
        self.ends: list[int] = []  # document p's lines end at ends[p] and start at ends[p - 1] (0 for p = 0)
        self.ids: list[str] = []
        self.indexes: list[str] = []
        self.tokens: list[T] = []
        self.unencodable: dict[int, tuple[str, str]] = {}  # position -> (why, repr of the source)

    @classmethod
    def of(cls, docs: Iterable[tuple[str, str, _DocSource, T]]) -> BulkBatch[T]:
        """A batch of (index, id, source, token)."""
        batch: BulkBatch[T] = cls()
        for index, doc_id, source, token in docs:
            batch.add(index, doc_id, source, token)
        return batch

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, index: str, doc_id: str, source: _DocSource, token: T) -> None:
        """A document whose source is a dict or single-document JSON bytes: serialized here."""
        lines = bulk_lines(index, doc_id, source)
        if isinstance(lines, str):
            self.unencodable[len(self.ids)] = (lines, repr(source))
            lines = b""
        self.add_lines(index, doc_id, lines, token)

    def add_lines(self, index: str, doc_id: str, lines: BodyBytes, token: T) -> None:
        """A document whose lines are written."""
        self._parts.append(lines)
        self._size += len(lines)
        self.ends.append(self._size)
        self.ids.append(doc_id)
        self.indexes.append(index)
        self.tokens.append(token)

    def add_body(
        self, body: BodyBytes, ends: Sequence[int], ids: Sequence[str], indexes: Sequence[str], tokens: Sequence[T]
    ) -> None:
        """Documents written back to back in `body`, the lines of each ending at its `ends` offset."""
        self._parts.append(body)
        self.ends += [self._size + end for end in ends] if self._size else ends
        self._size += len(body)
        self.ids += ids
        self.indexes += indexes
        self.tokens += tokens

    def body(self, positions: Sequence[int]) -> BodyBytes:
        """The request body of the documents at `positions`: a slice when they follow each other (of a
        native body, a memoryview: nothing copied), else bytes."""
        if len(self._parts) != 1:
            self._parts = [b"".join(self._parts)]
        whole, ends = self._parts[0], self.ends
        if isinstance(positions, range) and positions:
            return whole[ends[positions.start - 1] if positions.start else 0 : ends[positions.stop - 1]]
        return b"".join([whole[ends[p - 1] if p else 0 : ends[p]] for p in positions])

    def size(self, positions: Sequence[int]) -> int:
        """Bytes of `body(positions)`, read from the offsets (nothing copied)."""
        ends = self.ends
        if isinstance(positions, range) and positions:
            return ends[positions.stop - 1] - (ends[positions.start - 1] if positions.start else 0)
        return sum(ends[p] - (ends[p - 1] if p else 0) for p in positions)

    def take(self, other: BulkBatch[T], positions: Iterable[int]) -> None:
        """Append the documents at `positions` of `other`."""
        for p in positions:
            if p in other.unencodable:
                self.unencodable[len(self.ids)] = other.unencodable[p]
            self.add_lines(other.indexes[p], other.ids[p], other.body(range(p, p + 1)), other.tokens[p])


def _json_default(obj: Any) -> Any:
    """What orjson cannot serialize natively: bytes as text, everything else (IP addresses, ...) as str."""
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj).decode("utf-8", "backslashreplace")
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    return str(obj)


def _dumps(doc: Mapping[str, Any]) -> bytes:
    """A document as compact JSON. orjson refuses integers beyond 64 bits, which documents hold exactly
    where no engine field is numeric (e.g. a far-future time inside `bsm.tokens`): those go through json."""
    try:
        return orjson.dumps(doc, default=_json_default)
    except TypeError as exc:
        if "64-bit" not in str(exc):
            raise
        return json.dumps(doc, default=_json_default, ensure_ascii=False, separators=(",", ":")).encode()


def loads_exact(data: bytes) -> Any:
    """JSON read back with its integers exact: orjson reads one beyond 64 bits as a float."""
    return json.loads(data) if _LONG_NUMBER.search(data) else orjson.loads(data)


_LONG_NUMBER = re.compile(rb"[\[:,]-?\d{20}")  # a JSON number of 20 digits or more (strings may match too)


def action_line(op: str, index: str, doc_id: str) -> bytes:
    return orjson.dumps({op: {"_index": index, "_id": doc_id}}) + b"\n"


def bulk_lines(index: str, doc_id: str, source: _DocSource) -> bytes | str:
    """The NDJSON lines of one `create`, or why the source cannot be made into JSON."""
    try:
        if isinstance(source, bytes | bytearray | memoryview):
            data = bytes(source)
            if b"\n" in data or b"\r" in data:  # pretty-printed JSON would break NDJSON framing
                data = orjson.dumps(orjson.loads(data))
        else:
            data = _dumps(source)
    except (orjson.JSONEncodeError, orjson.JSONDecodeError, TypeError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return action_line("create", index, doc_id) + data + b"\n"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of a document that was not simply created."""

    result: Result
    status: int = 0  # the engine's item status (the original one for dead letters)
    error_type: str = ""
    error_reason: str = ""


CREATED = Outcome(Result.CREATED, 201)


@dataclass(frozen=True, slots=True)
class Settlement(Generic[T]):
    """One pass of the sink over documents of a batch: those the engine now holds (`confirmed`, positions),
    and an Outcome for each document not simply created (duplicates, dead letters, failures)."""

    batch: BulkBatch[T]
    confirmed: Sequence[int]
    details: Mapping[int, Outcome]

    def tokens(self) -> list[T]:
        """The tokens of the confirmed documents."""
        tokens = self.batch.tokens
        if len(self.confirmed) == len(tokens):
            return tokens
        return [tokens[p] for p in self.confirmed]

    def outcome(self, position: int) -> Outcome:
        return self.details.get(position, CREATED)

    def results(self) -> list[Result]:
        """Each document's result, in batch order (for a pass over the whole batch, as `index` makes)."""
        return [self.outcome(p).result for p in range(len(self.batch))]


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


Settled = Callable[[Settlement[T]], Awaitable[None]]  # told of documents confirmed, as they are


class Indexer(Protocol):
    """The sink as the pipeline sees it: it retries until each document is confirmed (or the indexer
    closes), at most `search.concurrency` batches at a time; `submit` waits for room."""

    async def submit(self, batch: BulkBatch[T], settled: Settled[T]) -> None: ...

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
