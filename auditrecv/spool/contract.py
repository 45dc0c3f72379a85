"""The spool as the stages around it see it: typed seams, so a receiver or the pipeline can be
tested with a small fake and read without the SQLite store behind it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from auditrecv.spool.record import SpoolRecord
from auditrecv.spool.store import SpoolState

__all__ = ["ReceiverSpool"]


class ReceiverSpool(Protocol):
    """What a receiver needs (auditrecv.spool.Spool provides it). ``append`` returns once the
    records are durable and raises ``SpoolFull`` (backpressure: wait, retry), ``SpoolClosed`` or
    ``RecordTooLarge`` (retrying cannot help)."""

    @property
    def state(self) -> SpoolState: ...

    async def append(self, records: Sequence[SpoolRecord]) -> Sequence[int]: ...

    def try_append_now(self, records: Sequence[SpoolRecord], appender: object) -> Sequence[int] | None:
        """The ids if the records are durable already (the ack journal took them), else None
        with nothing stored: ``append`` then."""
        ...

    async def wait_for_space(self, timeout: float | None = None) -> bool:
        """True: try the append again; False: the spool closed (or the timeout passed)."""
        ...
