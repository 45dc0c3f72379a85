"""The durable local queue between receivers (ack after commit) and the pipeline (delete after confirm).

    spool = await Spool.open(cfg.spool_path, cfg.spool)          # one per process

Receivers::

    try:
        ids = await spool.append([SpoolRecord("bsm", raw, source, time.time_ns())])
    except SpoolFull:            # backpressure: nothing stored, do NOT ack; the sender retries
        await spool.wait_for_space(timeout=...)
    else:
        ack()                    # durable now (fsynced with synchronous = "full")
    spool.state                  # "ok" | "low" (above low_water_ratio: DISKLOW) | "full"

Pipeline::

    cursor = 0
    while await spool.wait_for_records(cursor, timeout=1.0) or not spool.closed:
        batch = await spool.read(cursor, 1000)        # [(id, SpoolRecord)], id order
        if batch:
            cursor = batch[-1][0]
            ...ship...; await spool.delete(confirmed_ids)   # may raise SpoolError: retry later

Export: ``for rid, rec in iter_records(path): ...`` (synchronous, safe while the service runs).
Metrics: ``spool.metric_families()`` (Prometheus, see auditrecv.metrics), ``spool.stats()`` (a dict) or
``spool.metrics``. Shutdown: ``await spool.close()``.
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
