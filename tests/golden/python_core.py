"""The Python implementation of the per-record path (decode → map → document id → JSON), behind the
interface that the golden files and the property tests check (tests/golden/core.py picks it).

Both functions go through exactly what `auditrecv decode` runs (auditrecv.tools: `file_documents`, the
live DocumentBuilder, and `raw_objects`); only the output is written the golden way: one JSON object per
line, keys sorted, so that another implementation can be compared with it byte for byte.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from auditrecv.spool.record import RecordKind, Source
from auditrecv.tools import decode_config, dumps, file_documents, raw_objects

Schema = Literal["ecs", "auditrecv-v1"]


def build_documents(
    kind: RecordKind,
    payloads: Sequence[bytes],
    *,
    schema: Schema,
    received_ns: int,
    host: str,
    observer: Mapping[str, str],
) -> list[bytes]:
    """The documents made of `payloads` (BSM records, or Linux lines without their newline) sent by
    `host`, all received at `received_ns` (Unix ns), mapped by a receiver described by `observer` (the
    ECS observer.* fields). One line per document: ``{"_id": <document id>, "_source": <document>}``,
    keys sorted, ending in a newline. Records that make no document (an EOE after its event) make no line.
    """
    cfg = decode_config(schema)
    source = Source(transport="file", peer=host)
    docs = file_documents(
        kind, enumerate(payloads, 1), cfg=cfg, source=source, observer=dict(observer), received_ns=received_ns
    )
    return [
        dumps({"_id": built.doc_id, "_source": built.doc}, sort_keys=True) for _, built in docs if built.doc is not None
    ]


def decode_raw(kind: RecordKind, records: Sequence[tuple[int, bytes]], *, label: str) -> list[bytes]:
    """`auditrecv decode --raw` of `records`, (file position, raw record) pairs as auditrecv.tools.read_input
    yields them (BSM: the record's file offset, printed as its `offset`; Linux: the line number), from an
    input named `label` (printed as Linux events' `source`). One decoded record or event per line, keys sorted.
    """
    return [dumps(obj, sort_keys=True) for obj, _ in raw_objects(kind, records, label=label)]
