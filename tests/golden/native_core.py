"""The per-record path (decode → map → document id → JSON) of the native core, auditrecv._native (Rust),
behind the interface that the golden files (test_goldens.py, scripts/gen_goldens.py) and the decoder
properties (test_decoder_properties.py) check; tests/golden/core.py picks it. Also the one test-side
adapter of the other tests: decoded records, events and documents as plain dicts parsed from the native
JSON (see "Decoded values as dicts" below), with the keys and values the Python models had.

BSM records go through `_native.ecs_bsm_documents` (decode, map, document id, dead letters and JSON in
one call per batch). Linux lines go through `_native.LinuxDocuments` the way `auditrecv decode` feeds its
DocumentBuilder (chunks of 1000 lines on the records' clock, then a flush). `--raw` is
`_native.bsm_decode_raw_json` / `_native.linux_decode_raw`.

The few records the native core still hands back (over the document caps, a native bug) are built the
package's Python way: the lines marked `# handbacks branch` go once the handbacks branch has ported
those to Rust.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import orjson

from auditrecv import _native
from auditrecv.config import Config, Limits
from auditrecv.pipeline import linux_documents_settings
from auditrecv.spool.record import RecordKind, Source
from auditrecv.tools import decode_config, dumps

__all__ = ["Schema", "build_documents", "decode_raw"]

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
    ECS observer.* fields), as `auditrecv decode` makes them. One line per document:
    ``{"_id": <document id>, "_source": <document>}``, keys sorted, ending in a newline. Records that make
    no document (an EOE after its event) make no line.
    """
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
    for payload, (doc_id, doc, why) in zip(payloads, rows, strict=True):
        if why is not None and why.startswith("unencodable: "):
            # what `auditrecv decode` does with such a document: orjson refuses it (README known bug)
            raise TypeError(why.removeprefix("unencodable: "))
        if doc is None:  # handed back: built the package's Python way
            lines += _handed_back_bsm(payload, schema, received_ns, host, observer)
            continue
        lines.append(dumps({"_id": doc_id, "_source": orjson.loads(doc)}, sort_keys=True))
    return lines


def decode_raw(kind: RecordKind, records: Sequence[tuple[int, bytes]], *, label: str) -> list[bytes]:
    """`auditrecv decode --raw` of `records`, (file position, raw record) pairs as auditrecv.tools.read_input
    yields them (BSM: the record's file offset, printed as its `offset`; Linux: the line number), from an
    input named `label` (printed as Linux events' `source`). One decoded record or event per line, keys sorted.
    """
    if kind != "bsm":
        out = _native.linux_decode_raw([line for _, line in records], label)
        return [dumps(orjson.loads(line), sort_keys=True) for line in out.splitlines()]
    return [
        dumps(orjson.loads(_native.bsm_decode_raw_json(payload, offset)), sort_keys=True) for offset, payload in records
    ]


def sniff_kind(head: bytes) -> RecordKind | None:
    """What `auditrecv decode` recognizes by the first bytes: a BSM trail, Linux audit text, or neither."""
    if _native.bsm_looks_like(head):
        return "bsm"
    return "linux" if head.lstrip().startswith((b"type=", b"node=")) else None


LINUX_CHUNK = 1000  # lines per DocumentBuilder.add call, as auditrecv.tools.file_documents feeds it


def linux_builder(schema: Schema, observer: Mapping[str, str], cfg: Config | None = None) -> Any:
    """A LinuxDocuments set up as `auditrecv decode` sets up its DocumentBuilder (records' clock)."""
    cfg = cfg or Config()
    ev, lim = cfg.decode.linux, cfg.limits
    return _native.LinuxDocuments(
        schema=schema, observer=dict(observer), record_clock=True, **linux_documents_settings(ev, lim)
    )


def _handed_back_bsm(
    payload: bytes, schema: Schema, received_ns: int, host: str, observer: Mapping[str, str]
) -> list[bytes]:
    """A BSM record the native core handed back, built by `auditrecv decode`'s own DocumentBuilder."""
    from auditrecv.tools import file_documents  # handbacks branch

    cfg, source = decode_config(schema), Source(transport="file", peer=host)
    observed = dict(observer)
    docs = file_documents("bsm", [(0, payload)], cfg=cfg, source=source, observer=observed, received_ns=received_ns)
    return [dumps({"_id": b.doc_id, "_source": b.doc}, sort_keys=True) for _, b in docs if b.doc is not None]


def python_fallback(
    event: dict[str, Any],
    source: Source,
    schema: Schema,
    observer: Mapping[str, str],
    received_ns: int | None,
    limits: Limits | None = None,
) -> tuple[str, dict[str, Any]]:
    """An event the native builder handed back, built the pipeline's Python way from its interpret() dict."""
    from auditrecv import schema as mappers  # handbacks branch: the Python mappers

    doc_id = mappers.document_id("linux", source, mappers.linux_id_parts(event))  # handbacks branch
    raw = "\n".join(str(r.get("raw", "")) for r in event.get("records") or []).encode("utf-8", "surrogateescape")
    try:
        if schema == "auditrecv-v1":
            doc = mappers.to_compat_v1(event, source, received_ns=received_ns)  # handbacks branch
        else:
            doc = mappers.linux_to_ecs(event, source, dict(observer), received_ns=received_ns)  # handbacks branch
    except Exception as exc:
        doc = mappers.dead_letter_doc(  # handbacks branch
            raw, source, f"internal error: {exc!r}", "linux", observer=dict(observer), received_ns=received_ns
        )
    return doc_id, mappers.limit_document(doc, raw, "linux", limits or Limits())  # handbacks branch


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


# ---------------------------------------------------------------------------- decoded values as dicts

NO_CAP = sys.maxsize  # `auditrecv decode --raw` prints every token of a record: no native caps
_CAPS = {"max_tokens": NO_CAP, "max_array_items": NO_CAP}
_EMPTY_HEADER32 = bytes([0x14]) + b"\x00\x00\x00\x00" + bytes([11]) + bytes(12)  # v11 header, length filled in


def bsm_record(data: bytes, offset: int = 0, *, whole: bool = True) -> dict[str, Any]:
    """The record at `offset` of `data` (``decode_record(data, offset, whole=whole).to_dict()``): header
    facts, ``tokens`` (one dict per token, as ``bsm.tokens`` holds them), ``errors``, ``raw`` in hex."""
    return dict(json.loads(_native.bsm_decode_record_json(data, offset, whole, **_CAPS)))


def bsm_raw(payload: bytes, offset: int = 0) -> dict[str, Any]:
    """One record as `auditrecv decode --raw` prints it: `payload` alone, ``offset`` its file position."""
    return dict(json.loads(_native.bsm_decode_raw_json(payload, offset, **_CAPS)))


def bsm_items(data: bytes, base_offset: int = 0) -> list[dict[str, Any]]:
    """A stream or trail item by item, as the native core splits it (``iter_stream``). Records are decoded
    in place (their error texts count offsets from the start of `data`; bytes that start no record come as
    one undecodable record), with the item's ``offset`` and ``length``; standalone file tokens come as the
    decoded token plus ``item: "file"``, ``offset`` and ``length``. Offsets count from `base_offset`."""
    out: list[dict[str, Any]] = []
    for kind, offset, length in _native.bsm_split_trail(data, base_offset):
        start = offset - base_offset
        if kind == _native.ITEM_FILE:
            piece = data[start : start + length]
            wrapped = _EMPTY_HEADER32[:1] + (18 + length).to_bytes(4, "big") + _EMPTY_HEADER32[5:] + piece
            token = bsm_raw(wrapped)["tokens"][0]
            out.append(token | {"item": "file", "offset": offset, "length": length})
        else:
            # a record decoded where it lies (it may overrun into the next one); skipped bytes as one piece
            record = (
                bsm_record(data, start, whole=False)
                if kind == _native.ITEM_RECORD
                else bsm_record(data[: start + length], start)
            )
            out.append(record | {"item": "record", "offset": offset, "length": length})
    return out


def bsm_records(data: bytes, base_offset: int = 0) -> list[dict[str, Any]]:
    """The records of a stream or trail (file tokens left out), as ``iter_records`` yielded them."""
    return [item for item in bsm_items(data, base_offset) if item["item"] == "record"]


def tokens_of(record: dict[str, Any], token: str) -> list[dict[str, Any]]:
    """A record's tokens of one kind ("subject", "path", ...), in order (``BsmRecord.find``)."""
    return [t for t in record["tokens"] if t.get("token") == token]


def token_values(record: dict[str, Any], token: str, key: str) -> list[Any]:
    """One value of each token of a kind: ``token_values(rec, "path", "path")`` is ``BsmRecord.paths``."""
    return [t[key] for t in tokens_of(record, token)]


def raw_bytes(record: dict[str, Any]) -> bytes:
    return bytes.fromhex(record["raw"])
