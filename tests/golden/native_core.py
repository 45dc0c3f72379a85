"""The native implementation of the per-record path (auditrecv._native, Rust) behind the interface of
python_core.py, so that the golden files and the decoder properties check it unchanged.

BSM records go through `_native.ecs_bsm_documents` (decode, map, document id, dead letters and JSON in
one call per batch); the few records it hands back (over the document caps, unencodable, a native bug)
are built by the Python path, as the pipeline will do. Linux input is still Python's (its native
decoder is being ported separately).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import orjson

from auditrecv import _native
from auditrecv.spool.record import RecordKind
from auditrecv.tools import dumps
from tests.golden import python_core
from tests.golden.python_core import Schema

__all__ = ["Schema", "build_documents", "decode_raw"]


def build_documents(
    kind: RecordKind,
    payloads: Sequence[bytes],
    *,
    schema: Schema,
    received_ns: int,
    host: str,
    observer: Mapping[str, str],
) -> list[bytes]:
    """Same contract as python_core.build_documents."""
    if kind != "bsm":
        return python_core.build_documents(
            kind, payloads, schema=schema, received_ns=received_ns, host=host, observer=observer
        )
    rows = _native.ecs_bsm_documents(
        list(payloads),
        schema=schema,
        received_ns=received_ns,
        source={"transport": "file", "peer": host},
        observer=dict(observer),
    )
    lines: list[bytes] = []
    for payload, (doc_id, doc, _why) in zip(payloads, rows, strict=True):
        if doc is None:  # handed back: built the Python way
            lines.extend(
                python_core.build_documents(
                    kind, [payload], schema=schema, received_ns=received_ns, host=host, observer=observer
                )
            )
            continue
        lines.append(dumps({"_id": doc_id, "_source": orjson.loads(doc)}, sort_keys=True))
    return lines


def decode_raw(kind: RecordKind, records: Sequence[tuple[int, bytes]], *, label: str) -> list[bytes]:
    """Same contract as python_core.decode_raw (BSM: the native decoder's JSON line, keys sorted)."""
    if kind != "bsm":
        return python_core.decode_raw(kind, records, label=label)
    return [
        dumps(orjson.loads(_native.bsm_decode_raw_json(payload, offset)), sort_keys=True) for offset, payload in records
    ]
