"""The spool as each stage sees it, typed apart from the SQLite store so that the stages and their
test doubles depend on these few calls only (`Spool` in store.py implements them all)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from auditrecv.spool.record import RecordKind, Source, SpoolRecord
from auditrecv.spool.store import SpoolState

__all__ = ["PipelineSpool", "ReceiverSpool"]


class ReceiverSpool(Protocol):
    """What a receiver needs. ``append`` returns once the records are durable and raises
    ``SpoolFull`` (backpressure: wait, retry), ``SpoolClosed`` or ``RecordTooLarge`` (retrying
    cannot help)."""

    @property
    def state(self) -> SpoolState: ...

    async def append(self, records: Sequence[SpoolRecord]) -> Sequence[int]: ...

    def try_append_now(self, records: Sequence[SpoolRecord], appender: object) -> Sequence[int] | None:
        """The ids if the records are durable already (the ack journal took them), else None
        with nothing stored: ``append`` then."""
        ...

    def try_append_one(
        self, kind: RecordKind, payload: bytes, source: Source, received_ns: int, appender: object
    ) -> int | None:
        """``try_append_now`` of the one record these fields make (a stop-and-wait sender's read): its
        id, or None with nothing stored."""
        ...

    async def wait_for_space(self, timeout: float | None = None) -> bool:
        """True: try the append again; False: the spool closed (or the timeout passed)."""
        ...


class PipelineSpool(Protocol):
    """What the pipeline does with the spool: read what the receivers committed, in id order, and delete
    what the engine confirmed (ids from `read`; unknown ones are ignored)."""

    async def read(self, after_id: int, limit: int) -> list[tuple[int, SpoolRecord]]: ...

    async def wait_for_records(self, after_id: int, timeout: float | None = None) -> bool: ...

    async def delete(self, ids: Sequence[int]) -> int: ...
