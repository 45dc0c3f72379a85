"""[limits]: one freak or hostile record becomes a truncated document that says so, never an 8-43 MB one
(issue 14, defect 1); normal records never pay for the check.

The native core cuts documents (`limit_document_json` and every document entry point): byte-equal to the
goldens the Python `limit_document` wrote (tests/schema/limits_cases.py). The 200,000-text-token BSM record
and the 1,000-record Linux event are the chaos probe's; the bounds test pins the arithmetic behind
`within_limits_fast` on every fixture and on adversarial records.
"""

from __future__ import annotations

import base64
import dataclasses
import struct
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from auditrecv import _native
from auditrecv.config import Config, Limits, Search, parse_config
from auditrecv.pipeline import BuiltDoc, DocumentBuilder, linux_documents_settings, native_caps
from auditrecv.spool.record import SpoolRecord
from tests.bsm_builders import header32, record, str16
from tests.paths import BSM_FIXTURES, LINUX_FIXTURES
from tests.schema import bsm_build
from tests.schema.fixtures import golden_cases
from tests.schema.limits_cases import LINUX_SRC, OBS, RECEIVED_NS, SRC, Case, cases, read_goldens

SMALL = Limits(max_document_bytes=64 * 1024, max_tokens=3, max_array_items=5, max_string_chars=1024)
# the bounds within_limits_fast relies on (native/src/ecs/limits.rs)
STRING_EXPANSION, STRING_SLACK, DOC_EXPANSION, DOC_SLACK = 4, 4096, 32, 64 * 1024
TOKEN_FIELDS = frozenset({"bsm.tokens", "auditd.records", "auditd.paths", "other_tokens", "records"})
FULL_COPY_FIELDS = ("bsm.tokens_full", "auditd.records_full")


def size(doc: Any) -> int:
    return len(orjson.dumps(doc))


def limit_document(doc: dict[str, Any], raw: bytes, kind: str, limits: Limits) -> dict[str, Any]:
    """The native cutting of one document, as a dict."""
    out: dict[str, Any] = orjson.loads(_native.limit_document_json(orjson.dumps(doc), raw, kind, **native_caps(limits)))
    return out


def build(cfg: Config, *records: SpoolRecord) -> list[BuiltDoc]:
    builder = DocumentBuilder(cfg, OBS, record_clock=True)
    return builder.finish(builder.add(list(enumerate(records, 1)))) + builder.flush()


def documents(built: list[BuiltDoc]) -> list[dict[str, Any]]:
    return [orjson.loads(b.source) for b in built if b.source is not None]


# --------------------------------------------------------------------------- the goldens


def built_case(case: Case) -> tuple[list[tuple[str, bytes]], dict[str, int]]:
    cfg = dataclasses.replace(Config(), limits=case.limits, search=Search(schema=case.schema))
    builder = DocumentBuilder(cfg, OBS, record_clock=True)
    source = SRC if case.kind == "bsm" else LINUX_SRC
    items = [(i, SpoolRecord(case.kind, p, source, RECEIVED_NS)) for i, p in enumerate(case.payloads, 1)]
    built = builder.finish(builder.add(items)) + builder.flush()
    return [(b.doc_id, b.source) for b in built if b.source is not None], builder.stats


@pytest.mark.parametrize("case", list(cases()), ids=lambda c: c.name)
def test_cut_documents_are_byte_equal_to_the_python_goldens(case: Case) -> None:
    got, stats = built_case(case)
    assert got == read_goldens()[case.name]
    assert stats["truncated"] == len(got)


def test_the_goldens_cover_every_rule() -> None:
    fields: set[str] = set()
    for name, docs in read_goldens().items():
        for _, source in docs:
            doc = orjson.loads(source)
            assert doc["auditrecv"]["truncated"] is True and "truncated" in doc["tags"], name
            fields.update(doc["auditrecv"]["truncation"]["fields"])
    assert {"(document)", "auditrecv.raw_base64", "auditd.data", "bsm.tokens", "bsm.texts", "text"} <= fields
    assert {"event.original", "process.args", "auditd.records", "records", "exec_args"} <= fields


# --------------------------------------------------------------------------- the function


def test_document_within_limits_is_returned_untouched() -> None:
    doc = {"bsm": {"tokens": [{"id": 1}] * 3, "texts": ["a"] * 5}, "message": "m" * 1024}
    json = orjson.dumps(doc)
    assert _native.limit_document_json(json, b"raw", "bsm", **native_caps(SMALL)) == json


def test_over_limits_lists_and_strings_are_cut_and_the_document_says_so() -> None:
    doc: dict[str, Any] = {
        "@timestamp": "2026-01-01T00:00:00.000Z",
        "message": "x" * 2000,
        "process": {"args": ["a", "b", "c"]},
        "bsm": {
            "tokens": [{"id": 40, "text": str(i)} for i in range(10)],
            "texts": [str(i) for i in range(8)],
            "paths": ["/a"],
        },
        "tags": ["decode_error"],
    }
    original_size = size(doc)
    raw = bytes(range(100))
    out = limit_document(doc, raw, "bsm", SMALL)
    assert out == {
        "@timestamp": "2026-01-01T00:00:00.000Z",
        "message": "x" * 1024,
        "process": {"args": ["a", "b", "c"]},
        "bsm": {
            "tokens": [{"id": 40, "text": "0"}, {"id": 40, "text": "1"}, {"id": 40, "text": "2"}],  # max_tokens
            "texts": ["0", "1", "2", "3", "4"],  # max_array_items
            "paths": ["/a"],
        },
        "tags": ["decode_error", "truncated"],
        "auditrecv": {
            "raw_base64": base64.b64encode(raw).decode(),  # the dead-letter encoding
            "raw_kind": "bsm",
            "truncated": True,
            "truncation": {
                "document_bytes": original_size,
                "raw_bytes": 100,
                "fields": ["message", "bsm.tokens", "bsm.texts"],
            },
        },
    }


def test_nested_lists_objects_and_full_copies() -> None:
    doc: dict[str, Any] = {
        "auditd": {
            "records": [{"type": "EXECVE", "a": [str(i) for i in range(9)]}],
            "data": {f"k{i}": "v" for i in range(7)},
            "records_full": "y" * 5000,  # the stored uncut copy: never cut, kept while the document fits
        },
    }
    out = limit_document(doc, b"line", "linux", SMALL)
    assert out["auditd"] == {
        "records": [{"type": "EXECVE", "a": ["0", "1", "2", "3", "4"]}],
        "data": {f"k{i}": "v" for i in range(5)},  # max_array_items counts keys too
        "records_full": "y" * 5000,
    }
    assert out["auditrecv"]["truncation"]["fields"] == ["auditd.records.a", "auditd.data"]
    assert out["auditrecv"]["raw_kind"] == "linux"


def test_too_large_document_drops_full_copies_then_squeezes_until_it_fits() -> None:
    limits = Limits(max_document_bytes=64 * 1024)
    doc: dict[str, Any] = {
        "event": {"kind": "event", "module": "bsm"},
        "bsm": {"tokens_full": "z" * 100_000, "texts": ["t" * 1000] * 200},  # 300 kB
    }
    raw = b"r" * 30_000
    out = limit_document(doc, raw, "bsm", limits)
    assert size(out) <= limits.max_document_bytes
    assert "tokens_full" not in out["bsm"]
    assert out["event"] == {"kind": "event", "module": "bsm"}
    assert out["auditrecv"]["truncation"]["fields"] == ["bsm.tokens_full", "bsm.texts"]
    assert base64.b64decode(out["auditrecv"]["raw_base64"]) == raw  # the raw input whole
    assert len(out["bsm"]["texts"]) * len(out["bsm"]["texts"][0]) < 30_000


def test_raw_input_larger_than_the_document_cap_is_cut_and_named() -> None:
    limits = Limits(max_document_bytes=64 * 1024)
    raw = bytes(range(256)) * 1000  # 256 kB: its base64 alone is 5 times the cap
    dead_letter = _native.dead_letter_json(  # hex + base64 of it
        raw, kind="bsm", error="undecodable", received_ns=1, source=SRC.to_dict(), observer=OBS
    )
    doc = orjson.loads(dead_letter)
    out = limit_document(doc, raw, "bsm", limits)
    assert size(out) <= limits.max_document_bytes
    kept = base64.b64decode(out["auditrecv"]["raw_base64"])
    assert 30_000 < len(kept) < len(raw) and raw.startswith(kept)
    assert out["auditrecv"]["truncation"]["fields"] == ["event.original", "auditrecv.raw_base64"]
    assert out["auditrecv"]["truncation"]["raw_bytes"] == len(raw)
    assert out["event"]["kind"] == "pipeline_error" and out["tags"] == ["decode_error", "dead_letter", "truncated"]


def test_objects_too_large_even_squeezed_fall_back_to_a_skeleton_that_fits() -> None:
    limits = Limits(max_document_bytes=64 * 1024, max_array_items=100_000)
    doc: dict[str, Any] = {
        "@timestamp": "2026-01-01T00:00:00.000Z",
        "event": {"kind": "event", "action": "executed"},
        "auditrecv": {"source": {"peer": "192.0.2.9"}},
        # objects keep 256 keys however hard they are squeezed: 256 x 256 x 100 characters cannot fit
        "auditd": {"data": {f"f{i}": {f"g{j}": "v" * 100 for j in range(260)} for i in range(260)}},
    }
    out = limit_document(doc, b"x" * 100, "linux", limits)
    assert size(out) <= limits.max_document_bytes
    assert out["event"] == {"kind": "event", "action": "executed"}
    assert out["auditrecv"]["source"] == {"peer": "192.0.2.9"}
    assert "auditd" not in out
    assert out["auditrecv"]["truncation"]["fields"][0] == "(document)"


# --------------------------------------------------------------------------- the chaos probe's records


def text_flood(n: int = 200_000) -> bytes:
    """The chaos probe's record: header, `n` one-byte text tokens, return, trailer (1,000,025 bytes)."""
    body = (b"\x28" + struct.pack(">H", 2) + b"x\0") * n + b"\x27" + struct.pack(">BI", 0, 0)
    total = 18 + len(body) + 7
    header = b"\x14" + struct.pack(">IBHHII", total, 11, 6152, 0, 1_700_000_000, 0)
    return header + body + b"\x13" + struct.pack(">HI", 0xB105, total)


def test_text_token_flood_becomes_a_truncated_document() -> None:
    raw = text_flood()
    assert len(raw) == 1_000_031
    (doc,) = documents(build(Config(), SpoolRecord("bsm", raw, SRC, 1)))
    assert size(doc) <= Config().limits.max_document_bytes
    assert len(doc["bsm"]["tokens"]) == 1000 and len(doc["bsm"]["texts"]) == 10_000
    assert doc["bsm"]["tokens"][999] == {"token": "text", "id": 0x28, "text": "x"}
    assert doc["auditrecv"]["truncated"] is True
    assert doc["auditrecv"]["truncation"]["fields"] == ["bsm.texts", "bsm.tokens"]
    assert doc["auditrecv"]["truncation"]["raw_bytes"] == len(raw)
    assert doc["auditrecv"]["truncation"]["document_bytes"] > 8_000_000
    assert base64.b64decode(doc["auditrecv"]["raw_base64"]) == raw
    assert doc["event"]["action"] and "truncated" in doc["tags"]


def test_a_record_as_big_as_the_listener_takes_stays_within_the_document_cap() -> None:
    """~4 MiB of one-character text tokens (the chaos suite's record): the raw copy alone cannot fit, and
    what is written around it (truncation notes, tags) must not push the document over the cap."""
    raw = text_flood((4 * 1024 * 1024 - 128 * 1024) // 5)
    (doc,) = documents(build(Config(), SpoolRecord("bsm", raw, SRC, 1)))
    assert size(doc) <= Config().limits.max_document_bytes
    assert "auditrecv.raw_base64" in doc["auditrecv"]["truncation"]["fields"]
    assert raw.startswith(base64.b64decode(doc["auditrecv"]["raw_base64"]))


def test_text_token_flood_in_the_v1_shape_is_truncated_too() -> None:
    cfg = parse_config('[search]\nschema = "auditrecv-v1"\n')
    (doc,) = documents(build(cfg, SpoolRecord("bsm", text_flood(), SRC, 1)))
    assert size(doc) <= cfg.limits.max_document_bytes
    assert len(doc["text"]) == 10_000
    assert doc["auditrecv"]["truncated"] is True and doc["auditrecv"]["truncation"]["fields"] == ["text"]


def execve_event_lines(n: int, serial: int = 777, arg_len: int = 8800) -> list[bytes]:
    """One Linux event of `n` records: a SYSCALL and `n - 1` EXECVE records of ~`arg_len` bytes each."""
    stamp = f"msg=audit(1700000100.000:{serial}):"
    lines = [
        f"type=SYSCALL {stamp} arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=0 ppid=1 "
        f'pid=2 auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=1 comm="x" '
        f'exe="/usr/bin/x" key=(null)'.encode()
    ]
    for i in range(1, n):
        lines.append(f'type=EXECVE {stamp} a{i}="{"v" * arg_len}"'.encode())
    return lines


def test_thousand_record_linux_event_is_cut_by_bytes_into_documents_under_the_cap() -> None:
    cfg = Config()
    lines = execve_event_lines(1000)
    assert 8_800_000 < sum(map(len, lines)) < 8_900_000
    built = build(cfg, *(SpoolRecord("linux", line, LINUX_SRC, 1) for line in lines))
    docs = documents(built)
    expected, current, event_size = [], 0, 0  # events close once their lines reach 1 MiB
    for line in lines:
        current, event_size = current + 1, event_size + len(line)
        if event_size >= cfg.limits.max_linux_event_bytes:
            expected.append(current)
            current, event_size = 0, 0
    expected.append(current)
    assert [len(d["auditd"]["record_types"]) for d in docs] == expected == [120] + [119] * 7 + [47]
    assert [d["auditd"]["complete"] for d in docs] == ["max_bytes"] * 8 + ["flush"]
    assert sorted(i for b in built for i in b.spool_ids) == list(range(1, 1001))
    assert all(size(d) <= cfg.limits.max_document_bytes for d in docs)


def test_linux_event_over_the_document_cap_is_truncated_with_its_lines_kept() -> None:
    cfg = parse_config("[limits]\nmax_document_bytes = 262144\n")
    lines = execve_event_lines(60, arg_len=2000)  # 120 kB of lines: ~500 kB mapped
    (doc,) = documents(build(cfg, *(SpoolRecord("linux", line, LINUX_SRC, 1) for line in lines)))
    assert size(doc) <= 262144
    assert doc["auditrecv"]["truncated"] is True
    assert base64.b64decode(doc["auditrecv"]["raw_base64"]) == b"\n".join(lines)
    assert doc["auditrecv"]["raw_kind"] == "linux"
    assert doc["auditd"]["sequence"] == 777


def test_assembler_closes_an_event_at_max_bytes_and_orphans_later_fragments() -> None:
    settings = linux_documents_settings(
        Config().decode.linux, dataclasses.replace(Limits(), max_linux_event_bytes=20_000)
    )
    documents_ = _native.LinuxDocuments(schema="ecs", observer=OBS, record_clock=True, **settings)
    head = "type=USER_CMD msg=audit(1700000000.000:9): " + "c" * (8969 - 43)
    assert len(head) == 8969  # may continue: the next line without type= is a fragment of it
    lines = [line.encode() for line in (head, "f" * 8969, "g" * 8969, "h" * 100)]
    rows = documents_.add(lines, received_ns=RECEIVED_NS, source=LINUX_SRC.to_dict(), now=0.0)
    docs = [orjson.loads(doc) for _, doc, _, _, _, _ in rows]
    assert [(d["auditd"]["complete"], d["auditd"]["record_types"]) for d in docs[:1]] == [("max_bytes", ["USER_CMD"])]
    assert [ids for _, _, ids, _, _, _ in rows] == [[1, 2, 3], [4]]
    assert docs[1]["auditd"]["complete"] == "error"  # "h..." had no head line left to join
    assert len(documents_) == 0


# --------------------------------------------------------------------------- the fast path


def trail_records(data: bytes) -> list[bytes]:
    return [data[off : off + n] for kind, off, n in _native.bsm_split_trail(data) if kind == _native.ITEM_RECORD]


def bsm_documents(payloads: list[bytes], schema: str, limits: Limits) -> list[dict[str, Any]]:
    rows = _native.ecs_bsm_documents(
        payloads, schema=schema, received_ns=1, source=SRC.to_dict(), observer=OBS, **native_caps(limits)
    )
    assert all(doc is not None for _, doc, _ in rows)
    return [orjson.loads(doc) for _, doc, _ in rows]


def linux_documents(lines: list[bytes], schema: str) -> list[tuple[bytes, int, dict[str, Any]]]:
    """(raw lines, record count, document) of every event of `lines`."""
    settings = linux_documents_settings(Config().decode.linux, Limits())
    builder = _native.LinuxDocuments(schema=schema, observer=OBS, record_clock=True, **settings)
    rows = builder.add(lines, received_ns=1, source=LINUX_SRC.to_dict()) + builder.flush()
    out = []
    for _, doc, ids, _, _, _ in rows:
        if doc is not None:
            out.append((b"\n".join(lines[i - 1] for i in ids), len(ids), orjson.loads(doc)))
    return out


def fixture_inputs() -> Iterator[tuple[str, bytes, int, list[dict[str, Any]]]]:
    """(name, raw, token count, documents in every shape) for every fixture record and event, plus
    adversarial records built to expand as much as possible."""
    bsm_raws = list(bsm_build.ALL.values())
    for name in ("plaso/apple.bsm", "plaso/openbsm.bsm", "openbsm/samples/execve-long-args.trail"):
        bsm_raws += trail_records((BSM_FIXTURES / name).read_bytes())
    empty_data = b"\x21\x00\x00\x00"  # arbitrary token, 0 values: ~90 bytes of JSON from 4
    bsm_raws.append(record(header32(6152, 1, 0, version=11), *[empty_data] * 2000))
    bsm_raws.append(record(header32(23, 1, 0, version=11), b"\x3c" + struct.pack(">I", 4000) + b"\0" * 4000))
    bsm_raws.append(record(header32(6152, 1, 0, version=11), *[b"\x28" + str16("")] * 2000))
    unlimited = Limits(
        max_document_bytes=1 << 40, max_tokens=1 << 40, max_array_items=1 << 40, max_string_chars=1 << 40
    )
    ecs, v1 = bsm_documents(bsm_raws, "ecs", unlimited), bsm_documents(bsm_raws, "auditrecv-v1", unlimited)
    letters = [
        orjson.loads(
            _native.dead_letter_json(raw, kind="bsm", error="x", received_ns=1, source=SRC.to_dict(), observer=OBS)
        )
        for raw in bsm_raws
    ]
    for raw, *docs in zip(bsm_raws, ecs, v1, letters, strict=True):
        tokens = len(
            orjson.loads(_native.bsm_decode_raw_json(raw, max_tokens=1 << 40, max_array_items=1 << 40))["tokens"]
        )
        yield f"bsm {docs[0].get('event', {}).get('action')}", raw, tokens, docs
    logs = [[line.encode() for line in lines] for _, _, lines, _ in golden_cases()]
    for log in sorted((LINUX_FIXTURES / "third_party").rglob("*.log")):
        logs.append(
            [
                line.encode("utf-8", "surrogateescape")
                for line in log.read_text(encoding="utf-8", errors="replace").splitlines()
                if line.strip()
            ]
        )
    many = "type=USER_ACCT msg=audit(1700000000.000:5): " + " ".join(f"k{i}=1" for i in range(1500))
    logs.append([many.encode(), b"type=PROCTITLE msg=audit(1700000000.000:6): proctitle=61"])
    for lines in logs:
        for (raw, count, ecs_doc), (_, _, v1_doc) in zip(
            linux_documents(lines, "ecs"), linux_documents(lines, "auditrecv-v1"), strict=True
        ):
            yield f"linux {ecs_doc.get('auditd', {}).get('sequence')}", raw, count, [ecs_doc, v1_doc]


def extremes(value: Any, path: str = "") -> Iterator[tuple[str, str, int]]:
    """(path, "list"/"object"/"string", items, keys or characters) of every value, full copies left out."""
    if isinstance(value, dict):
        yield path, "object", len(value)
        for k, v in value.items():
            sub = f"{path}.{k}" if path else k
            if sub not in FULL_COPY_FIELDS:
                yield from extremes(v, sub)
    elif isinstance(value, list):
        yield path, "list", len(value)
        for v in value:
            yield from extremes(v, path)
    elif isinstance(value, str):
        yield path, "string", len(value)


def test_documents_stay_within_the_bounds_the_fast_path_assumes() -> None:
    checked = 0
    for name, raw, tokens, docs in fixture_inputs():
        for doc in docs:
            assert size(doc) <= DOC_EXPANSION * len(raw) + DOC_SLACK, name
            for path, kind, n in extremes(doc):
                if kind == "string":
                    assert n <= STRING_EXPANSION * len(raw) + STRING_SLACK, (name, path)
                else:
                    assert n <= len(raw), (name, path, n)
                if kind == "list" and path in TOKEN_FIELDS:
                    assert n <= tokens, (name, path)
            checked += 1
    assert checked > 600


@pytest.mark.parametrize("schema", ["ecs", "auditrecv-v1"])
def test_fixture_records_are_never_cut(schema: str) -> None:
    """No fixture record is big enough to be cut (nor, by the bounds above, to be measured)."""
    cfg = parse_config(f'[search]\nschema = "{schema}"\n')
    records = [
        SpoolRecord("bsm", raw, SRC, 1) for raw in trail_records((BSM_FIXTURES / "plaso/apple.bsm").read_bytes())
    ]
    log = LINUX_FIXTURES / "third_party" / "audit-userspace-v3.0.9" / "auparse" / "test" / "test.log"
    records += [SpoolRecord("linux", line, LINUX_SRC, 1) for line in log.read_bytes().splitlines() if line]
    builder = DocumentBuilder(cfg, OBS, record_clock=True)
    built = builder.finish(builder.add(list(enumerate(records, 1)))) + builder.flush()
    assert len(built) > 50 and builder.stats["truncated"] == 0
