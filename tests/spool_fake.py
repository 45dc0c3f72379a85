"""An in-memory spool for the receiver tests, with the real one's surface (auditrecv.spool.contract.ReceiverSpool)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from auditrecv.spool import SpoolFull, SpoolRecord, SpoolState
from auditrecv.spool.record import RecordKind, Source, spool_record

__all__ = ["FakeSpool"]


class FakeSpool:
    """In-memory spool with the real one's surface: append (durable once it returns), state, wait_for_space.

    ``capacity`` counts records; ``low_at`` is the fill level from which the state reads "low".
    """

    takes_now = False  # offer try_append_now (see there)

    def __init__(self, capacity: int | None = None, low_at: int | None = None) -> None:
        self.records: list[SpoolRecord] = []
        self.capacity = capacity
        self.low_at = low_at
        self.appends = 0
        self.taken_now = 0  # appends stored through try_append_now
        self.refused = 0
        self._space = asyncio.Event()

    @property
    def state(self) -> SpoolState:
        n = len(self.records)
        if self.capacity is not None and n >= self.capacity:
            return "full"
        if self.low_at is not None and n >= self.low_at:
            return "low"
        return "ok"

    async def append(self, records: Sequence[SpoolRecord]) -> list[int]:
        await asyncio.sleep(0)  # a commit always yields to the loop
        if self.capacity is not None and len(self.records) + len(records) > self.capacity:
            self.refused += 1
            self._space.clear()
            raise SpoolFull(len(self.records), self.capacity)
        start = len(self.records)
        self.records.extend(records)
        self.appends += 1
        return list(range(start, start + len(records)))

    def try_append_now(self, records: Sequence[SpoolRecord], appender: object) -> list[int] | None:
        """The real spool's no-wait path when ``takes_now`` (class-wide, set by the ``spool_path``
        fixture); like it, None when the records must go through ``append`` (here: would not fit)."""
        if not self.takes_now or type(self).append is not FakeSpool.append:
            return None  # a subclass that changes append must see every record
        if self.capacity is not None and len(self.records) + len(records) > self.capacity:
            return None
        start = len(self.records)
        self.records.extend(records)
        self.appends += 1
        self.taken_now += 1
        return list(range(start, start + len(records)))

    def try_append_one(
        self, kind: RecordKind, payload: bytes, source: Source, received_ns: int, appender: object
    ) -> int | None:
        """try_append_now of the one record these fields make, as the real spool's."""
        ids = self.try_append_now([spool_record(kind, payload, source, received_ns)], appender)
        return None if ids is None else ids[0]

    async def wait_for_space(self, timeout: float | None = None) -> bool:
        while self.capacity is not None and len(self.records) >= self.capacity:
            self._space.clear()
            await self._space.wait()
        return True

    def set_capacity(self, capacity: int | None) -> None:
        self.capacity = capacity
        self._space.set()

    def lines(self) -> list[bytes]:
        return [r.payload for r in self.records]
