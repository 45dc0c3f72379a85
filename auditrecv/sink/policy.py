"""What a `_bulk` reply means for the documents in it, as plain functions (no I/O, clock nor state):
`bulk.py` asks these and does the sending, sleeping, counting and logging; tests/sink/test_policy.py
walks every status."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import orjson

# The engine (or its proxy) is unavailable or overloaded: an outage, which must never dead-letter anything.
OUTAGE_STATUSES = frozenset({429, 502, 503, 504})


class RequestVerdict(enum.Enum):
    ITEMS = "items"  # 2xx: read the per-item results
    SPLIT = "split"  # 413 / 400 on several documents: send each half on its own
    REFUSE = "refuse"  # 413 / 400 on one document: the engine will never take it
    HALT = "halt"  # 401 / 403: credentials or privileges refused
    THROTTLE = "throttle"  # 429: honour Retry-After, one request at a time for a while
    OUTAGE = "outage"  # 502 / 503 / 504: fail over to another node, else back off; never counted
    RETRY_COUNTED = "retry_counted"  # anything else: back off and count it against the documents


class ItemVerdict(enum.Enum):
    CREATED = "created"  # a document is indexed
    LETTER_WRITTEN = "letter_written"  # a dead letter is indexed: its document is dead-lettered
    DUPLICATE = "duplicate"  # 409 on `create`: an earlier copy is indexed
    RETRY = "retry"  # the engine is busy or unavailable: retry, not the document's fault
    RETRY_COUNTED = "retry_counted"  # retry, counted as a failure the document may cause
    HALT = "halt"  # credentials or privileges refused: retry once the engine accepts us again
    DEAD_LETTER = "dead_letter"  # the engine will never take this document
    LETTER_REFUSED = "letter_refused"  # the engine will not take the dead letter either: keep it spooled


def request_verdict(status: int, docs: int) -> RequestVerdict:
    """What a whole `_bulk` reply with HTTP `status` means for the `docs` documents it carried."""
    if status in (413, 400):
        return RequestVerdict.SPLIT if docs > 1 else RequestVerdict.REFUSE
    if status in (401, 403):
        return RequestVerdict.HALT
    if status == 429:
        return RequestVerdict.THROTTLE
    if 200 <= status < 300:
        return RequestVerdict.ITEMS
    if status in OUTAGE_STATUSES:
        return RequestVerdict.OUTAGE
    return RequestVerdict.RETRY_COUNTED


def item_verdict(status: int, *, dead_letter: bool) -> ItemVerdict:
    """What one item's `status` means; `dead_letter`: the item is a dead-letter write (an `index`)."""
    if 200 <= status < 300:
        return ItemVerdict.LETTER_WRITTEN if dead_letter else ItemVerdict.CREATED
    if status == 409 and not dead_letter:
        return ItemVerdict.DUPLICATE
    if status == 429 or status >= 500:
        return ItemVerdict.RETRY if status in OUTAGE_STATUSES else ItemVerdict.RETRY_COUNTED
    if status in (401, 403):
        return ItemVerdict.HALT
    return ItemVerdict.LETTER_REFUSED if dead_letter else ItemVerdict.DEAD_LETTER


def accepted(status: int) -> bool:
    """An item status that proves the engine works (it created or found the document)."""
    return 200 <= status < 300 or status == 409


@dataclass(frozen=True, slots=True)
class ItemResult:
    status: int
    error_type: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class UnreadableReply:
    """A 2xx reply whose items cannot be trusted: resend the whole request. `kind` is the metric key."""

    kind: str  # "bad_reply" or "item_count_mismatch"
    message: str


def parse_items(body: bytes, sent: int) -> list[ItemResult] | UnreadableReply:
    """One result per document sent, in order, from a 2xx `_bulk` reply body."""
    try:
        doc = orjson.loads(body)
        raw_items = doc["items"]
        if not isinstance(raw_items, list):
            raise TypeError("items is not a list")
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        return UnreadableReply("bad_reply", f"unreadable _bulk reply ({exc}): {body[:200]!r}")
    if len(raw_items) != sent:
        return UnreadableReply(
            "item_count_mismatch", f"sent {sent} documents, got {len(raw_items)} items back; resending the batch"
        )
    out: list[ItemResult] = []
    for x in raw_items:
        item: Any = next(iter(x.values()), {}) if isinstance(x, dict) and x else {}
        status = item.get("status", 0) if isinstance(item, dict) else 0
        err = item.get("error") if isinstance(item, dict) else None
        if isinstance(err, dict):
            out.append(ItemResult(int(status), str(err.get("type", "")), str(err.get("reason", ""))))
        else:
            out.append(ItemResult(int(status), "", str(err or "")))
    return out


_ERRORS_FALSE = b'"errors":false'
_STATUS = b'"status":'
_CREATED = b'"status":201'


def all_created(body: bytes, sent: int) -> bool:
    """True when a 2xx `_bulk` reply to `sent` `create`s says, in the compact form engines write, that
    every one was created: `errors: false` in its head, as many `"status":` keys as documents sent, each
    `201`, and an `items` list closed at the end. Read from the bytes, without parsing the reply into
    objects (per document, that would cost more than the rest of the sink's work). Anything else, False:
    `parse_items` then reads the reply item by item. A key cannot hide in a string value: a quote inside
    a JSON string is escaped, so `"status":` only occurs as a key."""
    return (
        _ERRORS_FALSE in body[:64]
        and body.count(_STATUS) == sent
        and body.count(_CREATED) == sent
        and body.rstrip().endswith(b"]}")
    )


def _error(body: bytes) -> Any:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return doc.get("error") if isinstance(doc, dict) else None


def error_type(body: bytes) -> str:
    """`error.type` of an error reply body, or ""."""
    err = _error(body)
    return str(err.get("type", "")) if isinstance(err, dict) else ""


def error_reason(body: bytes) -> str:
    """The engine's own words from an error body: `error.reason` and down its `caused_by` chain (the
    top-level reason is often generic, "template after composition is invalid"), or the body itself."""
    err = _error(body)
    if isinstance(err, str):
        return err
    if not isinstance(err, dict):
        return body[:300].decode("utf-8", "replace")
    parts: list[str] = []
    while isinstance(err, dict) and len(parts) < 4:
        t, r = err.get("type", ""), err.get("reason", "")
        parts.append(f"{t}: {r}" if t else str(r))
        err = err.get("caused_by")
    return " (caused by) ".join(parts)
