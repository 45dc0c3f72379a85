"""Documents for records that failed to decode: the raw input is kept, searchable by source and time.

A decoder bug must not lose an audit record: the spool can be reprocessed later, and meanwhile the
record is visible in the index as ``event.kind: pipeline_error`` with its raw bytes.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from auditrecv.spool.record import Source

from .common import Doc, add_unique, host_fields, iso_ns, observer_fields, put, source_fields


def put_raw(doc: Doc, raw: bytes, kind: str) -> None:
    """The raw input, byte for byte, in the one encoding every document that keeps raw bytes uses
    (dead letters here, truncated documents in limits.py): base64 plus the input kind."""
    put(doc, "auditrecv.raw_base64", base64.b64encode(raw).decode("ascii"))
    put(doc, "auditrecv.raw_kind", kind)


def dead_letter_doc(
    raw: bytes,
    source: Source,
    error: str,
    kind: str,
    *,
    observer: dict[str, Any] | None = None,
    received_ns: int | None = None,
) -> dict[str, Any]:
    """ECS document for undecodable input of ``kind`` ("bsm" or "linux")."""
    now = received_ns if received_ns is not None else time.time_ns()
    doc: Doc = {"@timestamp": iso_ns(now)}
    put(doc, "event.kind", "pipeline_error")
    put(doc, "event.category", ["host"])
    put(doc, "event.type", ["error"])
    put(doc, "event.outcome", "unknown")
    put(doc, "event.module", "bsm" if kind == "bsm" else "auditd")
    put(doc, "event.dataset", "bsm.audit" if kind == "bsm" else "linux.audit")
    put(doc, "event.created", iso_ns(now))
    put(doc, "event.reason", error)
    put(doc, "error.type", "decode_error")
    put(doc, "error.message", error)
    if kind == "bsm":
        put(doc, "event.original", raw.hex())
    else:
        put(doc, "event.original", raw.decode("utf-8", "backslashreplace"))
    put_raw(doc, raw, kind)
    source_fields(doc, source)
    host_fields(doc, source)
    observer_fields(doc, observer or {})
    add_unique(doc, "tags", "decode_error", "dead_letter")
    put(doc, "message", f"undecodable {kind} record from {source.peer or 'unknown'}: {error}")
    return doc
