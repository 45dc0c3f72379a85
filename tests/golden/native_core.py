"""The native implementation of the per-record path (auditrecv._native, Rust) behind the interface of
python_core.py, so that the golden files and the decoder properties check it unchanged.

BSM records go through `_native.ecs_bsm_documents` (decode, map, document id, dead letters and JSON in
one call per batch); the few records it hands back (over the document caps, unencodable, a native bug)
are built by the Python path, as the pipeline will do. Linux lines go through `_native.LinuxDocuments`
the way `auditrecv decode` feeds its DocumentBuilder (chunks of 1000 lines on the records' clock, then a
flush); events it hands back are mapped by the Python mapper from the event it returns. Linux `--raw`
is `_native.linux_decode_raw`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from auditrecv import _native
from auditrecv.config import Config, Limits
from auditrecv.pipeline import linux_documents_settings
from auditrecv.schema import dead_letter_doc, document_id, limit_document, linux_id_parts, linux_to_ecs, to_compat_v1
from auditrecv.spool.record import RecordKind, Source
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
        return _linux_documents(payloads, schema=schema, received_ns=received_ns, host=host, observer=observer)
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
    """Same contract as python_core.decode_raw (the native decoders' JSON lines, keys sorted)."""
    if kind != "bsm":
        out = _native.linux_decode_raw([line for _, line in records], label)
        return [dumps(orjson.loads(line), sort_keys=True) for line in out.splitlines()]
    return [
        dumps(orjson.loads(_native.bsm_decode_raw_json(payload, offset)), sort_keys=True) for offset, payload in records
    ]


LINUX_CHUNK = 1000  # lines per DocumentBuilder.add call, as auditrecv.tools.file_documents feeds it


def linux_builder(schema: Schema, observer: Mapping[str, str], cfg: Config | None = None) -> Any:
    """A LinuxDocuments set up as `auditrecv decode` sets up its DocumentBuilder (records' clock)."""
    cfg = cfg or Config()
    ev, lim = cfg.decode.linux, cfg.limits
    return _native.LinuxDocuments(
        schema=schema, observer=dict(observer), record_clock=True, **linux_documents_settings(ev, lim)
    )


def python_fallback(
    event: dict[str, Any],
    source: Source,
    schema: Schema,
    observer: Mapping[str, str],
    received_ns: int | None,
    limits: Limits | None = None,
) -> tuple[str, dict[str, Any]]:
    """An event the native builder handed back, built the pipeline's Python way from its interpret() dict."""
    doc_id = document_id("linux", source, linux_id_parts(event))
    raw = "\n".join(str(r.get("raw", "")) for r in event.get("records") or []).encode("utf-8", "surrogateescape")
    try:
        if schema == "auditrecv-v1":
            doc = to_compat_v1(event, source, received_ns=received_ns)
        else:
            doc = linux_to_ecs(event, source, dict(observer), received_ns=received_ns)
    except Exception as exc:
        doc = dead_letter_doc(
            raw, source, f"internal error: {exc!r}", "linux", observer=dict(observer), received_ns=received_ns
        )
    return doc_id, limit_document(doc, raw, "linux", limits or Limits())


def _linux_documents(
    payloads: Sequence[bytes], *, schema: Schema, received_ns: int, host: str, observer: Mapping[str, str]
) -> list[bytes]:
    source = {"transport": "file", "peer": host}
    builder = linux_builder(schema, observer)
    rows = []
    for start in range(0, len(payloads), LINUX_CHUNK):
        chunk = list(payloads[start : start + LINUX_CHUNK])
        rows += builder.add(chunk, received_ns=received_ns, source=source)
    rows += builder.flush()
    lines: list[bytes] = []
    for doc_id, doc, _ids, why, event, received in rows:
        if doc is not None:
            lines.append(dumps({"_id": doc_id, "_source": orjson.loads(doc)}, sort_keys=True))
        elif why is not None and why.startswith("unencodable: "):
            # what `auditrecv decode` does with such a document: orjson refuses it (README known bug)
            raise TypeError(why.removeprefix("unencodable: "))
        elif why != "no_document":
            assert event is not None, why
            fallback_id, fallback_doc = python_fallback(
                orjson.loads(event), Source(transport="file", peer=host), schema, observer, received
            )
            lines.append(dumps({"_id": fallback_id, "_source": fallback_doc}, sort_keys=True))
    return lines
