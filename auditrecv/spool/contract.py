"""The spool as each stage sees it, typed apart from the SQLite store so that the stages and their test
doubles depend on these few calls only (`Spool` in store.py implements them all).

The pipeline's side is here; the receivers' side (append, backpressure) belongs with the receive server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from auditrecv.spool.record import SpoolRecord


class PipelineSpool(Protocol):
    """What the pipeline does with the spool: read what the receivers committed, in id order, and delete
    what the engine confirmed (ids from `read`; unknown ones are ignored)."""

    async def read(self, after_id: int, limit: int) -> list[tuple[int, SpoolRecord]]: ...

    async def wait_for_records(self, after_id: int, timeout: float | None = None) -> bool: ...

    async def delete(self, ids: Sequence[int]) -> int: ...
