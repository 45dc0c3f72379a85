"""Caps on one document (config ``[limits]``), applied to every document built from spooled input.

Mapping is 1:1 with the input, so one freak or hostile record becomes one freak document: 200,000
one-byte BSM text tokens made an 8 MB document with 200,000-entry ``bsm.tokens`` and ``bsm.texts`` that
ran a 512 MB OpenSearch out of heap, and a 1,000-record Linux event made 43 MB. A document over a limit
is indexed cut instead, and says so (``auditrecv.truncated``, ``auditrecv.truncation.*``, tag
``truncated``); its raw input is kept byte for byte in ``auditrecv.raw_base64``, the dead-letter
encoding, so nothing acknowledged is lost (only a raw input too large for ``max_document_bytes``
itself is cut, and then named in ``auditrecv.truncation.fields``).

Almost every record is far too small to reach any limit, and ``within_limits_fast`` proves that from
the raw size and the token count alone; only the rest pay for a walk.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from auditrecv.config import Limits

from .common import Doc, add_unique, put
from .deadletter import put_raw

# Lists of flattened objects (several values each): capped at max_tokens rather than max_array_items.
TOKEN_FIELDS = frozenset({"bsm.tokens", "auditd.records", "auditd.paths", "other_tokens", "records"})
# Stored, uncut JSON copies of the token/record lists: dropped (never cut: half a JSON text is useless) when
# the document is too large; the raw input kept in a truncated document holds the same information.
FULL_COPY_FIELDS = ("bsm.tokens_full", "auditd.records_full")
RAW_FIELD = "auditrecv.raw_base64"

# Bounds the fast path relies on (checked on every fixture and on adversarial records by
# tests/schema/test_limits.py): every list item and object key comes from at least one raw byte; no
# string but the full copies is longer than STRING_EXPANSION x raw + STRING_SLACK (hex doubles; the
# message repeats an object and a path); no document is larger than DOC_EXPANSION x raw + DOC_SLACK
# (a 4-byte BSM data token becomes ~90 bytes of JSON).
STRING_EXPANSION = 4
STRING_SLACK = 4096
DOC_EXPANSION = 32
DOC_SLACK = 64 * 1024

_RESERVE = 8 * 1024  # room kept for the truncation fields themselves (at most 64 names of 100 characters)
_MAX_NAMED_FIELDS = 64  # auditrecv.truncation.fields is a list too
# However hard a document is squeezed, it keeps its structure: objects this many keys, lists (tags,
# event.category, ...) this many items (token lists: 1), strings this many characters.
_DICT_FLOOR = 256
_LIST_FLOOR = 16
_STRING_FLOOR = 256
_ROUNDS = 12  # each round divides the caps by 4: from the defaults to the floors in far fewer


def within_limits_fast(raw_len: int, token_count: int, limits: Limits) -> bool:
    """True when a document built from ``raw_len`` bytes (characters for Linux lines) holding
    ``token_count`` tokens/records cannot exceed any limit, by the bounds above: no walk needed."""
    return (
        token_count <= limits.max_tokens
        and raw_len <= limits.max_array_items
        and raw_len * STRING_EXPANSION + STRING_SLACK <= limits.max_string_chars
        and raw_len * DOC_EXPANSION + DOC_SLACK <= limits.max_document_bytes
    )


def document_size(doc: Any) -> int:
    """Serialized size in bytes, as the sink will send it (near enough for values orjson refuses)."""
    try:
        return len(orjson.dumps(doc, default=str))
    except (orjson.JSONEncodeError, TypeError):  # lone surrogates, odd keys: the slow, generous answer
        return len(json.dumps(doc, default=str).encode("utf-8", "surrogatepass"))


def limit_document(doc: Doc, raw: bytes, kind: str, limits: Limits) -> Doc:
    """``doc`` itself when within ``limits``; otherwise a truncated copy that says so (see the module
    docstring). ``raw`` is the input the document was built from, ``kind`` "bsm" or "linux"."""
    size = document_size(doc)
    if size <= limits.max_document_bytes and not _exceeds(doc, "", limits):
        return doc
    return _truncate(doc, raw, kind, limits, size)


# --------------------------------------------------------------------------- checking


def _exceeds(value: Any, path: str, limits: Limits) -> bool:
    if isinstance(value, str):
        return len(value) > limits.max_string_chars and path not in FULL_COPY_FIELDS
    if isinstance(value, dict):
        if len(value) > limits.max_array_items:
            return True
        for key, v in value.items():
            if isinstance(v, dict | list | str) and _exceeds(v, f"{path}.{key}" if path else str(key), limits):
                return True
        return False
    if isinstance(value, list):
        cap = limits.max_tokens if path in TOKEN_FIELDS else limits.max_array_items
        if len(value) > cap:
            return True
        return any(isinstance(v, dict | list | str) and _exceeds(v, path, limits) for v in value)
    return False


# --------------------------------------------------------------------------- cutting


class _Caps:
    __slots__ = ("chars", "fields", "items", "keys", "tokens")

    def __init__(self, limits: Limits) -> None:
        self.tokens = limits.max_tokens
        self.items = limits.max_array_items
        self.keys = limits.max_array_items
        self.chars = limits.max_string_chars
        self.fields: dict[str, None] = {}  # an ordered set of the dotted names cut

    def tighten(self) -> None:
        self.tokens = max(1, self.tokens // 4)
        self.items = max(min(self.items, _LIST_FLOOR), self.items // 4)
        self.keys = max(min(self.keys, _DICT_FLOOR), self.keys // 4)
        self.chars = max(min(self.chars, _STRING_FLOOR), self.chars // 4)

    def cut(self, path: str) -> None:
        self.fields[path or "(document)"] = None


def _cap(value: Any, path: str, caps: _Caps) -> Any:
    """``value`` with every list, object and string within ``caps`` (lists and objects cut in place)."""
    if isinstance(value, str):
        if len(value) > caps.chars:
            caps.cut(path)
            return value[: caps.chars]
        return value
    if isinstance(value, dict):
        if len(value) > caps.keys:
            caps.cut(path)
            for key in list(value)[caps.keys :]:
                del value[key]
        for key, v in value.items():
            if isinstance(v, dict | list | str):
                sub = f"{path}.{key}" if path else str(key)
                if sub in FULL_COPY_FIELDS:
                    continue  # dropped whole, if at all, by _truncate
                value[key] = _cap(v, sub, caps)
        return value
    if isinstance(value, list):
        limit = caps.tokens if path in TOKEN_FIELDS else caps.items
        if len(value) > limit:
            caps.cut(path)
            del value[limit:]  # before descending: a 200,000-entry list costs nothing more
        for i, v in enumerate(value):
            if isinstance(v, dict | list | str):
                value[i] = _cap(v, path, caps)
        return value
    return value


def _pop(doc: Doc, dotted: str) -> Any:
    *parents, leaf = dotted.split(".")
    node: Any = doc
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    return node.pop(leaf, None) if isinstance(node, dict) else None


def _skeleton(doc: Doc) -> Doc:
    """Last resort (objects with thousands of keys still too large): when, who sent it, what it was."""
    out: Doc = {}

    def scalars(section: Any) -> dict[str, Any]:
        if not isinstance(section, dict):
            return {}
        return {
            k: v[:_STRING_FLOOR] if isinstance(v, str) else v
            for k, v in list(section.items())[:_DICT_FLOOR]
            if isinstance(v, str | int | float | bool)
        }

    if isinstance(doc.get("@timestamp"), str):
        out["@timestamp"] = doc["@timestamp"][:64]
    for name in ("event", "host", "observer", "labels"):
        if section := scalars(doc.get(name)):
            out[name] = section
    auditrecv = doc.get("auditrecv")
    if isinstance(auditrecv, dict):
        out["auditrecv"] = {"source": scalars(auditrecv.get("source"))}
    if isinstance(doc.get("message"), str):
        out["message"] = doc["message"][:1024]
    return out


def _truncate(doc: Doc, raw: bytes, kind: str, limits: Limits, size: int) -> Doc:
    _pop(doc, RAW_FIELD)  # a dead letter's raw copy: rewritten below, within the budget
    raw_b64_len = 4 * ((len(raw) + 2) // 3)
    cap = limits.max_document_bytes
    # the raw input has priority, up to 3/4 of the document; the mapped fields get the rest
    budget = max(cap - raw_b64_len - _RESERVE, cap // 4 - _RESERVE)
    caps = _Caps(limits)
    indexed = 0
    for _ in range(_ROUNDS):
        _cap(doc, "", caps)
        indexed = document_size(doc)
        if indexed <= budget:
            break
        dropped = False
        for name in FULL_COPY_FIELDS:
            if _pop(doc, name) is not None:
                caps.cut(name)
                dropped = True
        if not dropped:
            caps.tighten()
    else:
        caps.fields = {"(document)": None, **caps.fields}  # first: the list of names is capped
        doc = _skeleton(doc)
        indexed = document_size(doc)
    keep = min(len(raw), max(0, (cap - indexed - _RESERVE) // 4 * 3))
    if keep < len(raw):
        caps.cut(RAW_FIELD)
    put_raw(doc, raw[:keep], kind)
    put(doc, "auditrecv.truncated", True)
    put(doc, "auditrecv.truncation.document_bytes", size)
    put(doc, "auditrecv.truncation.raw_bytes", len(raw))
    put(doc, "auditrecv.truncation.fields", [name[:100] for name in list(caps.fields)[:_MAX_NAMED_FIELDS]])
    add_unique(doc, "tags", "truncated")
    return doc
