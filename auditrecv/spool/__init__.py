"""The durable local queue between receivers (ack after commit) and the pipeline (delete after confirm).

Receivers call ``await spool.append(records)`` and acknowledge the sender only after it returned:
by then the records are committed (fsynced with ``synchronous = "full"``). The pipeline reads with
``read``/``wait_for_records`` and deletes what the search engine confirmed.
"""

from auditrecv.spool.record import RecordKind, Source, SpoolRecord
from auditrecv.spool.store import (
    RecordTooLarge,
    Spool,
    SpoolClosed,
    SpoolError,
    SpoolFull,
    SpoolMetrics,
    SpoolSettings,
    SpoolState,
    iter_records,
)

__all__ = [
    "RecordKind",
    "RecordTooLarge",
    "Source",
    "Spool",
    "SpoolClosed",
    "SpoolError",
    "SpoolFull",
    "SpoolMetrics",
    "SpoolRecord",
    "SpoolSettings",
    "SpoolState",
    "iter_records",
]
