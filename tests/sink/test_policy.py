"""The `_bulk` status policy (auditrecv.sink.policy) over every status a reply or an item can carry."""

from __future__ import annotations

import orjson
import pytest

from auditrecv.sink.policy import (
    OUTAGE_STATUSES,
    ItemResult,
    ItemVerdict,
    RequestVerdict,
    UnreadableReply,
    accepted,
    all_created,
    error_type,
    item_verdict,
    parse_items,
    request_verdict,
)

ALL_STATUSES = range(0, 600)


def expected_request(status: int, docs: int) -> RequestVerdict:
    """The rule as sink-and-gss.md A6.2 words it, written out case by case."""
    if status in (400, 413):
        return RequestVerdict.SPLIT if docs > 1 else RequestVerdict.REFUSE
    if status in (401, 403):
        return RequestVerdict.HALT
    if status == 429:
        return RequestVerdict.THROTTLE
    if status in (502, 503, 504):
        return RequestVerdict.OUTAGE
    if 200 <= status <= 299:
        return RequestVerdict.ITEMS
    return RequestVerdict.RETRY_COUNTED


@pytest.mark.parametrize("docs", [1, 2, 500])
def test_request_verdict_for_every_status(docs: int) -> None:
    for status in ALL_STATUSES:
        assert request_verdict(status, docs) is expected_request(status, docs), status


def test_request_verdict_named_cases() -> None:
    assert request_verdict(200, 10) is RequestVerdict.ITEMS
    assert request_verdict(413, 2) is RequestVerdict.SPLIT
    assert request_verdict(413, 1) is RequestVerdict.REFUSE
    assert request_verdict(400, 7) is RequestVerdict.SPLIT
    assert request_verdict(400, 1) is RequestVerdict.REFUSE
    assert request_verdict(401, 1) is RequestVerdict.HALT
    assert request_verdict(403, 9) is RequestVerdict.HALT
    assert request_verdict(429, 9) is RequestVerdict.THROTTLE
    assert request_verdict(503, 9) is RequestVerdict.OUTAGE
    assert request_verdict(500, 9) is RequestVerdict.RETRY_COUNTED
    assert request_verdict(404, 9) is RequestVerdict.RETRY_COUNTED
    assert request_verdict(0, 9) is RequestVerdict.RETRY_COUNTED
    assert request_verdict(302, 9) is RequestVerdict.RETRY_COUNTED


def expected_item(status: int, dead_letter: bool) -> ItemVerdict:
    if 200 <= status <= 299:
        return ItemVerdict.LETTER_WRITTEN if dead_letter else ItemVerdict.CREATED
    if status == 409 and not dead_letter:
        return ItemVerdict.DUPLICATE
    if status in (429, 502, 503, 504):
        return ItemVerdict.RETRY
    if status >= 500:
        return ItemVerdict.RETRY_COUNTED
    if status in (401, 403):
        return ItemVerdict.HALT
    return ItemVerdict.LETTER_REFUSED if dead_letter else ItemVerdict.DEAD_LETTER


@pytest.mark.parametrize("dead_letter", [False, True])
def test_item_verdict_for_every_status(dead_letter: bool) -> None:
    for status in ALL_STATUSES:
        assert item_verdict(status, dead_letter=dead_letter) is expected_item(status, dead_letter), status


def test_item_verdict_named_cases() -> None:
    assert item_verdict(201, dead_letter=False) is ItemVerdict.CREATED
    assert item_verdict(201, dead_letter=True) is ItemVerdict.LETTER_WRITTEN
    assert item_verdict(409, dead_letter=False) is ItemVerdict.DUPLICATE
    assert item_verdict(409, dead_letter=True) is ItemVerdict.LETTER_REFUSED  # an `index` never conflicts
    assert item_verdict(429, dead_letter=False) is ItemVerdict.RETRY
    assert item_verdict(503, dead_letter=True) is ItemVerdict.RETRY
    assert item_verdict(500, dead_letter=False) is ItemVerdict.RETRY_COUNTED
    assert item_verdict(403, dead_letter=True) is ItemVerdict.HALT
    assert item_verdict(400, dead_letter=False) is ItemVerdict.DEAD_LETTER
    assert item_verdict(404, dead_letter=False) is ItemVerdict.DEAD_LETTER
    assert item_verdict(0, dead_letter=False) is ItemVerdict.DEAD_LETTER  # no status: never claim success
    assert item_verdict(400, dead_letter=True) is ItemVerdict.LETTER_REFUSED


def test_outage_statuses_are_never_counted_against_documents() -> None:
    for status in OUTAGE_STATUSES:
        assert item_verdict(status, dead_letter=False) is ItemVerdict.RETRY
        assert request_verdict(status, 2) in (RequestVerdict.THROTTLE, RequestVerdict.OUTAGE)


def test_accepted_means_created_or_found() -> None:
    assert [s for s in ALL_STATUSES if accepted(s)] == [*range(200, 300), 409]


def test_parse_items_without_errors_reads_statuses_only() -> None:
    body = orjson.dumps({"errors": False, "items": [{"create": {"status": 201}}, {"create": {"status": 409}}]})
    assert parse_items(body, 2) == [ItemResult(201), ItemResult(409)]


def test_parse_items_with_errors_keeps_type_and_reason() -> None:
    body = orjson.dumps(
        {
            "errors": True,
            "items": [
                {"create": {"status": 201}},
                {"create": {"status": 400, "error": {"type": "mapper_parsing_exception", "reason": "bad [n]"}}},
                {"index": {"status": 500, "error": "plain text"}},
                {},
                "junk",
            ],
        }
    )
    assert parse_items(body, 5) == [
        ItemResult(201),
        ItemResult(400, "mapper_parsing_exception", "bad [n]"),
        ItemResult(500, "", "plain text"),
        ItemResult(0),
        ItemResult(0),
    ]


def test_parse_items_refuses_what_it_cannot_trust() -> None:
    unreadable = parse_items(b"<html>proxy error</html>", 1)
    assert isinstance(unreadable, UnreadableReply) and unreadable.kind == "bad_reply"
    assert "<html>proxy error" in unreadable.message
    no_list = parse_items(orjson.dumps({"items": {"create": {}}}), 1)
    assert isinstance(no_list, UnreadableReply) and no_list.kind == "bad_reply"
    assert parse_items(orjson.dumps({"errors": False, "items": [{"create": {"status": 201}}]}), 2) == UnreadableReply(
        "item_count_mismatch", "sent 2 documents, got 1 items back; resending the batch"
    )


def _created(doc_id: str, seq: int) -> dict[str, object]:
    item = {"_index": "a-2026.12.03", "_id": doc_id, "_version": 1, "result": "created"}
    return {"create": {**item, "_shards": {"total": 1, "successful": 1, "failed": 0}, "_seq_no": seq, "status": 201}}


def test_all_created_reads_the_compact_replies_of_both_engines() -> None:
    items = [_created("a", 0), _created("b", 1)]
    opensearch = orjson.dumps({"took": 3, "errors": False, "items": items})
    elasticsearch = orjson.dumps({"errors": False, "took": 3, "ingest_took": 0, "items": items})
    assert all_created(opensearch, 2) and all_created(elasticsearch, 2)
    assert all_created(opensearch + b"\n", 2)


def test_all_created_says_no_to_anything_else() -> None:
    created = [_created("a", 0), _created("b", 1)]
    reply = orjson.dumps({"took": 3, "errors": False, "items": created})
    assert not all_created(reply, 3)  # fewer items than documents sent
    assert not all_created(reply, 1)
    assert not all_created(reply[:-2], 2)  # truncated
    assert not all_created(orjson.dumps({"took": 3, "errors": True, "items": created}), 2)
    assert not all_created(orjson.dumps({"took": 3, "errors": False, "items": created}, option=orjson.OPT_INDENT_2), 2)
    found = {"create": {"_index": "a", "_id": "b", "status": 409}}
    assert not all_created(orjson.dumps({"took": 3, "errors": False, "items": [created[0], found]}), 2)
    indexed = {"index": {"_index": "a", "_id": "b", "result": "updated", "status": 200}}
    assert not all_created(orjson.dumps({"took": 3, "errors": False, "items": [created[0], indexed]}), 2)
    # a key inside a string value is escaped, so an id cannot pass for an item
    sneaky = _created('x","status":201,"y":"', 0)
    assert not all_created(orjson.dumps({"took": 3, "errors": False, "items": [sneaky]}), 2)
    assert all_created(orjson.dumps({"took": 3, "errors": False, "items": [sneaky]}), 1)


def test_error_type_of_an_error_body() -> None:
    assert error_type(orjson.dumps({"error": {"type": "illegal_argument_exception"}})) == "illegal_argument_exception"
    assert error_type(orjson.dumps({"error": "text"})) == ""
    assert error_type(b"not json") == ""
    assert error_type(b"[1]") == ""
