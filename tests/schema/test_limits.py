"""[limits]: one freak or hostile record becomes a truncated document that says so, never an 8-43 MB one
(issue 14, defect 1); normal records never pay for the check.

The 200,000-text-token BSM record and the 1,000-record Linux event are the chaos probe's; the bounds
test pins the arithmetic behind `within_limits_fast` on every fixture and on adversarial records.
"""

from __future__ import annotations

import base64
import copy
import struct
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from auditrecv.config import Config, Limits, parse_config
from auditrecv.decode.bsm import decode_record, iter_records
from auditrecv.decode.linux import EventAssembler, decode_events, parse_line
from auditrecv.pipeline import BuiltDoc, DocumentBuilder
from auditrecv.schema import (
    bsm_to_ecs,
    dead_letter_doc,
    limit_document,
    linux_to_ecs,
    to_compat_v1,
    within_limits_fast,
)
from auditrecv.schema import limits as limits_module
from auditrecv.spool.record import Source, SpoolRecord
from tests.bsm_builders import header32, record, str16
from tests.paths import BSM_FIXTURES, LINUX_FIXTURES
from tests.schema import bsm_build
from tests.schema.fixtures import golden_cases

SRC = Source("audit_remote", "192.0.2.7", 40001, "dummy", "", False, "main")
LINUX_SRC = Source("audisp_remote", "192.0.2.9", 50000, listener="linux")
OBS = {"hostname": "rx", "name": "auditrecv-test"}
SMALL = Limits(max_document_bytes=64 * 1024, max_tokens=3, max_array_items=5, max_string_chars=1024)


def size(doc: Any) -> int:
    return len(orjson.dumps(doc))


# --------------------------------------------------------------------------- the function


def test_document_within_limits_is_returned_untouched() -> None:
    doc = {"bsm": {"tokens": [{"id": 1}] * 3, "texts": ["a"] * 5}, "message": "m" * 1024}
    before = copy.deepcopy(doc)
    assert limit_document(doc, b"raw", "bsm", SMALL) is doc
    assert doc == before


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
    doc = dead_letter_doc(raw, SRC, "undecodable", "bsm", observer=OBS, received_ns=1)  # hex + base64 of it
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


def build(cfg: Config, *records: SpoolRecord) -> list[BuiltDoc]:
    builder = DocumentBuilder(cfg, OBS, record_clock=True)
    return builder.add(list(enumerate(records, 1))) + builder.flush()


def test_text_token_flood_becomes_a_truncated_document() -> None:
    raw = text_flood()
    assert len(raw) == 1_000_031
    (built,) = build(Config(), SpoolRecord("bsm", raw, SRC, 1))
    doc = built.doc
    assert doc is not None
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
    (built,) = build(Config(), SpoolRecord("bsm", raw, SRC, 1))
    assert built.doc is not None
    assert size(built.doc) <= Config().limits.max_document_bytes
    assert "auditrecv.raw_base64" in built.doc["auditrecv"]["truncation"]["fields"]
    assert raw.startswith(base64.b64decode(built.doc["auditrecv"]["raw_base64"]))


def test_text_token_flood_in_the_v1_shape_is_truncated_too() -> None:
    cfg = parse_config('[search]\nschema = "auditrecv-v1"\n')
    (built,) = build(cfg, SpoolRecord("bsm", text_flood(), SRC, 1))
    doc = built.doc
    assert doc is not None
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
    docs = [b.doc for b in built if b.doc is not None]
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
    built = build(cfg, *(SpoolRecord("linux", line, LINUX_SRC, 1) for line in lines))
    (doc,) = [b.doc for b in built if b.doc is not None]
    assert size(doc) <= 262144
    assert doc["auditrecv"]["truncated"] is True
    assert base64.b64decode(doc["auditrecv"]["raw_base64"]) == b"\n".join(lines)
    assert doc["auditrecv"]["raw_kind"] == "linux"
    assert doc["auditd"]["sequence"] == 777


def test_assembler_closes_an_event_at_max_bytes_and_orphans_later_fragments() -> None:
    asm = EventAssembler(grace_seconds=1, max_age_seconds=10, max_bytes=20_000)
    head = "type=USER_CMD msg=audit(1700000000.000:9): " + "c" * (8969 - 43)
    assert len(head) == 8969  # may continue: the next line without type= is a fragment of it
    out = []
    for line in [head, "f" * 8969, "g" * 8969, "h" * 100]:
        out += asm.add(parse_line(line), "peer", 0.0)
    assert [(e.complete, len(e.records), e.size) for e in out[:1]] == [("max_bytes", 1, 3 * 8969)]
    assert [e.complete for e in out[1:]] == ["error"]  # "h..." had no head line left to join
    assert asm.in_flight == 0


# --------------------------------------------------------------------------- the fast path


def fixture_inputs() -> Iterator[tuple[str, bytes, int, list[dict[str, Any]]]]:
    """(name, raw, token count, documents in every shape) for every fixture record and event, plus
    adversarial records built to expand as much as possible."""
    bsm_raws = list(bsm_build.ALL.values())
    for name in ("plaso/apple.bsm", "plaso/openbsm.bsm", "openbsm/samples/execve-long-args.trail"):
        bsm_raws += [r.raw for r in iter_records((BSM_FIXTURES / name).read_bytes())]
    empty_data = b"\x21\x00\x00\x00"  # arbitrary token, 0 values: ~90 bytes of JSON from 4
    bsm_raws.append(record(header32(6152, 1, 0, version=11), *[empty_data] * 2000))
    bsm_raws.append(record(header32(23, 1, 0, version=11), b"\x3c" + struct.pack(">I", 4000) + b"\0" * 4000))
    bsm_raws.append(record(header32(6152, 1, 0, version=11), *[b"\x28" + str16("")] * 2000))
    for raw in bsm_raws:
        rec = decode_record(raw)
        docs = [bsm_to_ecs(rec, SRC, OBS, received_ns=1), to_compat_v1(rec, SRC, received_ns=1)]
        docs.append(dead_letter_doc(raw, SRC, "x", "bsm", observer=OBS, received_ns=1))
        yield f"bsm {rec.event_name}", raw, len(rec.tokens), docs
    events = []
    for _, _, lines, _ in golden_cases():
        events += decode_events(lines)
    for log in sorted((LINUX_FIXTURES / "third_party").rglob("*.log")):
        events += decode_events(log.read_text(encoding="utf-8", errors="replace").splitlines())
    many = "type=USER_ACCT msg=audit(1700000000.000:5): " + " ".join(f"k{i}=1" for i in range(1500))
    events += decode_events([many, "type=PROCTITLE msg=audit(1700000000.000:6): proctitle=61"])
    for event in events:
        raw = "\n".join(r.raw for r in event.records).encode("utf-8", "surrogateescape")
        docs = [linux_to_ecs(event, LINUX_SRC, OBS), to_compat_v1(event, LINUX_SRC, received_ns=1)]
        yield f"linux {event.serial}", raw, len(event.records), docs


def extremes(value: Any, path: str = "") -> Iterator[tuple[str, str, int]]:
    """(path, "list"/"object"/"string", items, keys or characters) of every value, full copies left out."""
    if isinstance(value, dict):
        yield path, "object", len(value)
        for k, v in value.items():
            sub = f"{path}.{k}" if path else k
            if sub not in limits_module.FULL_COPY_FIELDS:
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
            assert size(doc) <= limits_module.DOC_EXPANSION * len(raw) + limits_module.DOC_SLACK, name
            for path, kind, n in extremes(doc):
                if kind == "string":
                    assert n <= limits_module.STRING_EXPANSION * len(raw) + limits_module.STRING_SLACK, (name, path)
                else:
                    assert n <= len(raw), (name, path, n)
                if kind == "list" and path in limits_module.TOKEN_FIELDS:
                    assert n <= tokens, (name, path)
            checked += 1
    assert checked > 600


@pytest.mark.parametrize("schema", ["ecs", "auditrecv-v1"])
def test_fixture_records_take_the_fast_path(monkeypatch: pytest.MonkeyPatch, schema: str) -> None:
    """No fixture record is big enough to be measured: the check costs them a few comparisons."""
    walked: list[str] = []
    monkeypatch.setattr("auditrecv.pipeline.limit_document", lambda doc, raw, kind, limits: walked.append(kind))
    cfg = parse_config(f'[search]\nschema = "{schema}"\n')
    records = [SpoolRecord("bsm", r.raw, SRC, 1) for r in iter_records((BSM_FIXTURES / "plaso/apple.bsm").read_bytes())]
    log = LINUX_FIXTURES / "third_party" / "audit-userspace-v3.0.9" / "auparse" / "test" / "test.log"
    records += [SpoolRecord("linux", line, LINUX_SRC, 1) for line in log.read_bytes().splitlines() if line]
    built = build(cfg, *records)
    assert len(built) > 50 and walked == []
    assert within_limits_fast(10_000, 1000, Limits()) and not within_limits_fast(10_001, 1, Limits())
    assert not within_limits_fast(100, 1001, Limits())
