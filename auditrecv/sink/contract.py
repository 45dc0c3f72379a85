"""What the rest of the service sees of the sink: the document and outcome types and typed Protocols.

Kept apart from the indexer so the pipeline, the engine set-up and test doubles depend on this small
module rather than on `bulk.py` (and so the sink modules do not import each other in a circle).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")


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


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes
    node: str


class Requester(Protocol):
    """One JSON request with node failover: what engine detection and template installation need."""

    async def request(self, method: str, path: str, body: bytes | None = None) -> Reply: ...


class Indexer(Protocol):
    """The sink as the pipeline sees it: one outcome per document, in order, once each is settled."""

    async def index(self, docs: Iterable[BulkDoc[T]]) -> list[BulkOutcome[T]]: ...

    async def close(self) -> None: ...
