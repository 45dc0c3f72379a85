"""The per-record path (decode → map → document id → JSON) of the native core, auditrecv._native (Rust),
behind the interface that the golden files (test_goldens.py, scripts/gen_goldens.py) and the decoder
properties (test_decoder_properties.py) check; tests/golden/core.py picks it. Also the one test-side
adapter of the other tests: decoded records, events and documents as plain dicts parsed from the native
JSON (see "Decoded values as dicts" below), with the keys and values the Python models had.

BSM records go through `_native.ecs_bsm_documents` (decode, map, document id, dead letters and JSON in
one call per batch). Linux lines go through `_native.LinuxDocuments` the way `auditrecv decode` feeds its
DocumentBuilder (chunks of 1000 lines on the records' clock, then a flush). `--raw` is
`_native.bsm_decode_raw_json` / `_native.linux_decode_raw`.

The native core builds every document itself (over the document caps: cut; a native bug: a dead
letter); only a document with an integer beyond 64 bits is handed back, refused as `auditrecv decode`
refuses it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import orjson

from auditrecv import _native
from auditrecv.config import Config
from auditrecv.pipeline import linux_documents_settings
from auditrecv.spool.record import RecordKind, Source
from auditrecv.tools import dumps

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
    for doc_id, doc, why in rows:
        if why is not None and why.startswith("unencodable: "):
            # what `auditrecv decode` does with such a document: orjson refuses it (README known bug)
            raise TypeError(why.removeprefix("unencodable: "))
        assert doc is not None, why  # nothing else is handed back
        lines.append(document_line(doc_id, doc))
    return lines


def document_line(doc_id: str, doc: bytes) -> bytes:
    """``{"_id", "_source"}`` as one line, keys sorted, numbers exact (see `sorted_line`)."""
    return sorted_line(b'{"_id":%s,"_source":%s}' % (orjson.dumps(doc_id), doc))


def decode_raw(kind: RecordKind, records: Sequence[tuple[int, bytes]], *, label: str) -> list[bytes]:
    """`auditrecv decode --raw` of `records`, (file position, raw record) pairs as auditrecv.tools.read_input
    yields them (BSM: the record's file offset, printed as its `offset`; Linux: the line number), from an
    input named `label` (printed as Linux events' `source`). One decoded record or event per line, keys sorted.
    """
    if kind != "bsm":
        out = _native.linux_decode_raw([line for _, line in records], label)
        return [sorted_line(line) for line in out.splitlines()]
    return [sorted_line(_native.bsm_decode_raw_json(payload, offset)) for offset, payload in records]


def sorted_line(line: bytes) -> bytes:
    """One JSON line with its keys sorted, its numbers exact: `decode --raw` writes integers beyond 64 bits
    exactly (a far-future time in ns), which orjson reads as floats and cannot write; `json` does both."""
    value = json.loads(line)
    try:
        return dumps(value, sort_keys=True)
    except TypeError:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return text.encode() + b"\n"


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
    for doc_id, doc, _ids, why, _event, _received in rows:
        if doc is not None:
            lines.append(document_line(doc_id, doc))
        elif why is not None and why.startswith("unencodable: "):
            # what `auditrecv decode` does with such a document: orjson refuses it (README known bug)
            raise TypeError(why.removeprefix("unencodable: "))
        else:
            assert why == "no_document", why  # nothing else is handed back
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


def linux_events(lines: Sequence[bytes | str] | bytes, source: str = "", **settings: Any) -> list[dict[str, Any]]:
    """`auditrecv decode --raw` of Linux lines (one record each, no newline) or of a whole log (bytes) on
    the records' own clock: one dict per event (``interpret(event)``: serial, complete, records with
    raw/fields/interpreted, ...), in completion order. `settings`: grace_seconds, max_age_seconds,
    max_records, max_in_flight."""
    data = (
        lines
        if isinstance(lines, bytes)
        else [line.encode("utf-8", "surrogateescape") if isinstance(line, str) else line for line in lines]
    )
    return [json.loads(line) for line in _native.linux_decode_raw(data, source, **settings).splitlines()]


class LinuxAssembler:
    """Events assembled as the pipeline assembles them: one native LinuxDocuments per sender key, lines added
    with their arrival time (`now`, seconds) and a tag (an int: the spool id), completed on that clock. Each
    completed event comes as a dict of what its ECS document records: ``serial``, ``complete``, ``tags``,
    ``records`` (``auditd.records``), ``lost_before``, ``error``, and ``doc`` (the whole document)."""

    def __init__(self, **settings: Any) -> None:
        self._settings = settings
        self._senders: dict[str, Any] = {}

    def _sender(self, key: str) -> Any:
        if key not in self._senders:
            self._senders[key] = _native.LinuxDocuments(schema="ecs", observer={}, **self._settings)
        return self._senders[key]

    def add_line(self, line: bytes | str, key: str, now: float, tag: int = 0) -> list[dict[str, Any]]:
        data = line.encode("utf-8", "surrogateescape") if isinstance(line, str) else line
        source = {"transport": "tcp", "peer": key}
        rows = self._sender(key).add([data], received_ns=int(now * 1e9), source=source, spool_ids=[tag], now=now)
        return _events(rows)

    def poll(self, now: float) -> list[dict[str, Any]]:
        return [e for sender in self._senders.values() for e in _events(sender.poll(now))]

    def flush(self) -> list[dict[str, Any]]:
        return [e for sender in self._senders.values() for e in _events(sender.flush())]

    @property
    def in_flight(self) -> int:
        return sum(len(sender) for sender in self._senders.values())


def _events(rows: list[Any]) -> list[dict[str, Any]]:
    out = []
    for _doc_id, doc, ids, why, _event, _received in rows:
        if why == "no_document":  # an orphan EOE
            out.append({"serial": None, "complete": "orphan_eoe", "tags": list(ids), "records": [], "doc": None})
            continue
        assert doc is not None, why
        document = json.loads(doc)
        auditd = document.get("auditd", {})
        out.append(
            {
                "serial": auditd.get("sequence"),
                "complete": auditd.get("complete"),
                "tags": list(ids),
                "records": auditd.get("records", []),
                "lost_before": auditd.get("lost_before", 0),
                "error": auditd.get("error"),
                "doc": document,
            }
        )
    return out


# ---------------------------------------------------------------------------- documents as dicts


def get(doc: dict[str, Any], dotted: str) -> Any:
    """The value at a dotted path of a document (``a.b.c``), or None."""
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def bsm_documents(
    payloads: Sequence[bytes],
    *,
    source: Source,
    observer: Mapping[str, Any],
    received_ns: int | Sequence[int],
    schema: Schema = "ecs",
    **caps: int,
) -> list[tuple[str, dict[str, Any] | None, str | None]]:
    """The pipeline's documents of BSM records from one sender (``_native.ecs_bsm_documents``): per record
    its document id, the document (None when handed back) and why it was handed back."""
    rows = _native.ecs_bsm_documents(
        list(payloads),
        schema=schema,
        received_ns=received_ns if isinstance(received_ns, int) else list(received_ns),
        source=source.to_dict(),
        observer=dict(observer),
        **caps,
    )
    return [(doc_id, None if doc is None else json.loads(doc), why) for doc_id, doc, why in rows]


def bsm_document(
    payload: bytes, source: Source, observer: Mapping[str, Any], *, received_ns: int, schema: Schema = "ecs"
) -> dict[str, Any]:
    """The document of one BSM record (ECS or auditrecv-v1 mapping of the decoded record, or its dead
    letter), as the pipeline builds it natively."""
    ((_doc_id, doc, why),) = bsm_documents(
        [payload], source=source, observer=observer, received_ns=received_ns, schema=schema
    )
    assert doc is not None, f"handed back: {why}"
    return doc


def bsm_document_id(payload: bytes, source: Source) -> str:
    """The document id of a BSM record from `source` (``document_id("bsm", source, bsm_id_parts(...))``)."""
    ((doc_id, _doc, _why),) = bsm_documents([payload], source=source, observer={}, received_ns=0)
    return doc_id


def linux_documents(
    lines: Sequence[bytes | str],
    *,
    source: Source,
    observer: Mapping[str, Any],
    received_ns: int,
    schema: Schema = "ecs",
    record_clock: bool = True,
) -> list[tuple[str, dict[str, Any]]]:
    """The documents of Linux lines from one sender, as ``auditrecv decode`` makes them (the records'
    clock, then a flush): (document id, document) per event, in completion order; orphan EOEs make none."""
    data = [line.encode("utf-8", "surrogateescape") if isinstance(line, str) else line for line in lines]
    builder = _native.LinuxDocuments(schema=schema, observer=dict(observer), record_clock=record_clock)
    rows = builder.add(data, received_ns=received_ns, source=source.to_dict()) + builder.flush()
    out = []
    for doc_id, doc, _ids, why, _event, _received in rows:
        if why == "no_document":
            continue
        assert doc is not None, f"handed back: {why}"
        out.append((doc_id, json.loads(doc)))
    return out
