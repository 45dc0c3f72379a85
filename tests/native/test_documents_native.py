"""Native documents (auditrecv._native.ecs_bsm_documents / ecs_bsm_bulk_body / BsmDocuments, Rust) for
BSM records, against what the Python path (DocumentBuilder → Enricher → sink serialization) sent before
its deletion (issue 12), recorded in tests/native/recorded/documents_bsm.tsv (see recorded.py).

What is compared is what the sink sends: the document id and the document's JSON exactly as
`auditrecv/sink/bulk.py` serialized it (orjson, keys in the order the Python mappers built them), for every
fixture record, hand-built records of every token, damaged records, several senders and receivers, both
schemas, tight [limits]; then enrichment values given per sender against the Python enricher's
per-document merge, and whole bulk bodies (index names, action lines, dead letters) and the zones
enrichment looks up. Records the native side hands back (over the document caps, unencodable) are those
the Python path cut or could not serialize. Generated records (hypothesis), which no recording holds,
keep the invariants of a document row.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import itertools
import os
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditrecv import _native
from auditrecv.config import Limits
from auditrecv.enrich import StaticMap
from auditrecv.netaddr import principal_host, valid_ip
from auditrecv.spool.record import Source
from auditrecv.tools import decode_config
from tests import bsm_builders as B
from tests.decode_bsm.test_token_catalogue import CASES
from tests.golden.test_decoder_properties import bsm_payloads
from tests.native import recorded
from tests.native.test_bsm_native import FIXTURE_RECORDS, HANDBUILT, SUBJ

GROUP = "documents_bsm"  # the recorded outcomes of every test of this module

Schema = str
SCHEMAS = ("ecs", "auditrecv-v1")
RECEIVED_NS = 1_700_000_000_123_456_789

SOURCES = [
    Source(transport="file", peer="golden-sender.example"),
    Source(
        transport="audit_remote",
        peer="192.0.2.7",
        peer_port=40001,
        mech="krb5",
        principal="host/web1.example.com@EXAMPLE.COM",
        authenticated=True,
        listener="bsm",
    ),
    Source(
        transport="audit_remote", peer="2001:db8::7", peer_port=5, principal="alice@EXAMPLE.COM", authenticated=True
    ),
    Source(transport="audit_remote", peer="::ffff:192.0.2.9", mech="dummy", principal="host/x@R", authenticated=False),
    Source(transport="import", peer=""),
]
OBSERVERS: list[dict[str, Any]] = [
    {"name": "recv", "hostname": "recv.example", "version": "1.2.3"},
    {"name": "recv", "type": "", "vendor": "acme", "ip": ["10.0.0.1", "bogus", "::ffff:1.2.3.4", "10.0.0.1"]},
    {"ip": "192.0.2.1", "product": "x"},
    {},
]

UUID = "8f2b6c2e-0d1a-4b7e-9c3f-2a1b3c4d5e6f"
OTHER_UUID = "0b9c4a1e-1111-4222-8333-944455556666"


def zone_records() -> list[bytes]:
    """Records the enricher acts on: a non-global zone, a zlogin from the global zone, plain global ones."""
    out = []
    for zone in (UUID, OTHER_UUID, "global", "dmz"):
        out.append(B.record(B.header64_ex(23, 1_700_000_000, 5, "192.0.2.7"), SUBJ, B.return32(0, 0), B.zonename(zone)))
    for args in (["/usr/sbin/zlogin", UUID.upper(), "ls"], ["zlogin", "-l", "root", OTHER_UUID], ["/bin/ls", UUID]):
        out.append(
            B.record(
                B.header64_ex(23, 1_700_000_000, 5, "192.0.2.7"),
                B.cstr_list(0x3C, args),
                B.path("/usr/sbin/zlogin"),
                SUBJ,
                B.return32(0, 0),
                B.zonename("global"),
            )
        )
    # no zone token: a v1 document then has no zonename, and the Python enricher gives it the ECS zlogin
    # fields (its v1 test looks for "zonename" or a "schema" key v1 documents do not have)
    out.append(
        B.record(
            B.header64_ex(23, 1_700_000_000, 5, "192.0.2.7"),
            B.cstr_list(0x3C, ["/usr/sbin/zlogin", UUID]),
            SUBJ,
            B.return32(0, 0),
        )
    )
    return out


ZONE_RECORDS = zone_records()


# ---------------------------------------------------------------- the native side and the recording


def native_documents(
    payloads: Sequence[bytes],
    *,
    schema: Schema,
    source: Source,
    observer: Mapping[str, Any],
    received_ns: int = RECEIVED_NS,
    enrichment: dict[str, Any] | None = None,
    limits: Limits | None = None,
) -> list[tuple[str, bytes | None, str | None]]:
    caps = dataclasses.asdict(limits or Limits())
    caps.pop("max_linux_event_bytes")
    return _native.ecs_bsm_documents(
        list(payloads),
        schema=schema,
        received_ns=received_ns,
        source=source.to_dict(),
        observer=dict(observer),
        enrichment=enrichment,
        **caps,
    )


def case_key(what: str, payloads: Sequence[bytes], **kw: Any) -> bytes:
    """One recorded input: the test's kind of case, the records and every option (enrichment values too)."""
    options = orjson.dumps(kw, default=lambda v: dataclasses.asdict(v) if dataclasses.is_dataclass(v) else repr(v))
    return what.encode() + b"\0" + options + b"\0" + b"\0".join(payloads)


def row_outcome(row: tuple[str, bytes | None, str | None]) -> bytes:
    """One record's document id and what the sink sends for it, or why it is handed back."""
    doc_id, doc, why = row
    return doc_id.encode() + b"\n" + (doc if doc is not None else f"handed back: {why}".encode()) + b"\n"


def assert_same_documents(payloads: Sequence[bytes], *, lookups: str | None = None, **kw: Any) -> None:
    """The native documents of these records (one recorded outcome for them all) as the Python path made
    them. `lookups`: the ENRICHMENTS shape the Python enricher was given for the recording (`enrichment`
    holds the same values as the native core takes them)."""
    rows = native_documents(payloads, **kw)
    recorded.check(GROUP, [(case_key("documents", payloads, **kw), b"".join(row_outcome(r) for r in rows))])


# ---------------------------------------------------------------- documents


@pytest.mark.parametrize("schema", SCHEMAS)
@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.peer or "no-peer")
def test_every_fixture_record_as_python(schema: Schema, source: Source) -> None:
    payloads = [raw for _, _, raw in FIXTURE_RECORDS]
    for observer in OBSERVERS[:2] if source is SOURCES[0] else OBSERVERS[1:2]:
        assert_same_documents(payloads, schema=schema, source=source, observer=observer)


@pytest.mark.parametrize("schema", SCHEMAS)
def test_handbuilt_records_as_python(schema: Schema) -> None:
    for source, observer in zip(SOURCES, OBSERVERS * 2, strict=False):
        assert_same_documents(HANDBUILT + ZONE_RECORDS, schema=schema, source=source, observer=observer)


@pytest.mark.parametrize("schema", SCHEMAS)
def test_damaged_and_far_future_records_as_python(schema: Schema) -> None:
    """Cuts and flips of fixture records, and times Python cannot print (its dead letters, reproduced)."""
    payloads = []
    for _, _, raw in FIXTURE_RECORDS[::7]:
        payloads += [raw[:n] for n in range(0, len(raw), max(1, len(raw) // 12))]
        payloads.append(raw + b"EXTRA")
    for sec in (253_402_300_799, 253_402_300_800, 2**40, 67_767_976_233_316_800, 2**62, 2**63, 2**64 - 1):
        payloads.append(B.record(B.header64(1, sec, 0, version=2), B.return32(0, 0), trailer=True))
    assert_same_documents(payloads, schema=schema, source=SOURCES[1], observer=OBSERVERS[0])


@pytest.mark.parametrize("schema", SCHEMAS)
def test_records_over_the_document_caps_are_cut_as_limit_document_cut_them(schema: Schema) -> None:
    """Records over the caps become cut documents (auditrecv.truncated), as the Python limit_document cut
    them (verified byte for byte against it before it was deleted; the recording holds those bytes). Large
    records within the caps are kept whole."""
    big = B.record(B.header64(1, 1, 0), *[B.text("x")] * 1200)
    many_args = B.record(B.header64(23, 1, 0), B.cstr_list(0x3C, ["a"] * 12_000))
    long_args = B.record(B.header64(23, 1, 0), B.cstr_list(0x3C, ["a" * 20_000]))
    payloads = [big, many_args, long_args, ZONE_RECORDS[0]]
    rows = native_documents(payloads, schema=schema, source=SOURCES[0], observer={})
    assert [why for _, _, why in rows] == [None] * 4
    cut = [b'"truncated":true' in (doc or b"") for _, doc, _ in rows]
    # auditrecv-v1 has no token list: 1200 texts are within max_array_items there, as Python judged it.
    assert cut == ([True, True, False, False] if schema == "ecs" else [False, True, False, False])
    assert_same_documents(payloads, schema=schema, source=SOURCES[0], observer={})


@pytest.mark.parametrize("schema", SCHEMAS)
def test_tight_limits_as_limit_document_judges_them(schema: Schema) -> None:
    """With caps every fixture record is near: kept whole exactly when Python kept it whole, cut as it cut it."""
    payloads = [raw for _, _, raw in FIXTURE_RECORDS] + HANDBUILT[:200]
    for limits in (
        Limits(max_document_bytes=2500, max_tokens=6, max_array_items=40, max_string_chars=60),
        Limits(max_document_bytes=100_000, max_tokens=4, max_array_items=1000, max_string_chars=1000),
        Limits(max_document_bytes=100_000, max_tokens=1000, max_array_items=20, max_string_chars=100),
    ):
        kw: dict[str, Any] = {"schema": schema, "source": SOURCES[1], "observer": OBSERVERS[0], "limits": limits}
        assert_same_documents(payloads, **kw)
        rows = native_documents(payloads, **kw)
        cut = [b'"truncated":true' in (doc or b"") for _, doc, _ in rows]
        if schema == "ecs":  # the smaller v1 documents stay within these caps, as they did in Python
            assert any(cut) and not all(cut), cut  # both sides of the line reached


EXAMPLES = int(os.environ.get("AUDITRECV_PROPERTY_EXAMPLES", "150"))  # raise it for a longer hunt


@settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(bsm_payloads(), min_size=1, max_size=6),
    st.sampled_from(SCHEMAS),
    st.sampled_from(SOURCES),
    st.sampled_from(OBSERVERS),
    st.integers(0, 2**63 - 1),
)
def test_property_generated_and_mutated_records_keep_the_invariants(
    payloads: list[bytes], schema: Schema, source: Source, observer: dict[str, Any], received_ns: int
) -> None:
    assert_document_invariants(payloads, schema=schema, source=source, observer=observer, received_ns=received_ns)


def assert_document_invariants(payloads: Sequence[bytes], **kw: Any) -> None:
    """What every row keeps (inputs no recording holds): one per record, in order; a 22-character id that
    depends on the record and the sender only; a JSON object, or a hand-back with its reason; the same
    rows for the same input."""
    rows = native_documents(payloads, **kw)
    assert len(rows) == len(payloads) and rows == native_documents(payloads, **kw)
    elsewhere = native_documents(payloads, **(kw | {"received_ns": 1, "observer": {}}))
    assert [r[0] for r in rows] == [r[0] for r in elsewhere]
    for doc_id, doc, why in rows:
        assert len(doc_id) == 22
        if doc is None:
            assert why is not None and why.split(":")[0] in ("unencodable", "native_error"), why
            assert not why.startswith("native_error"), why
        else:
            assert why is None and isinstance(orjson.loads(doc), dict)


def _event_numbers() -> list[int]:
    """Event numbers of both dialects whose names the categorization tables know (every object kind and
    direction), plus a few that only their classes categorize or nothing does."""
    data = Path(__file__).resolve().parents[2] / "auditrecv"
    known = {
        line.split("\t")[0]
        for line in (data / "schema/data/bsm_categories.tsv").read_text().splitlines()
        if line and not line.startswith("#")
    }
    numbers = set()
    for name in ("illumos_events.tsv", "openbsm_events.tsv"):
        for line in (data.parent / "native" / "tables" / "bsm" / name).read_text().splitlines():
            cells = line.split("\t")
            if len(cells) > 1 and cells[1] in known:
                numbers.add(int(cells[0]))
    return sorted(numbers | {1, 23, 6152, 6153, 43259, 65535, 9999})


EVENTS = _event_numbers()
_ADDRS = ["10.0.2.15", "0.0.0.0", "::", "2001:db8::1", "::ffff:198.51.100.1", "fe80::1"]
_SOCKETS = [
    struct.pack(">BHHHH", 0x7F, 2, 2, 4, 0x1600) + B.addr("10.0.0.1") + b"\xd4\x31" + B.addr("10.0.0.2"),
    struct.pack(">BHHHH", 0x7F, 26, 1, 16, 0x1600) + B.addr("fe80::1") + b"\x00\x00" + B.addr("::"),
    struct.pack(">BHHHH", 0x7F, 1, 5, 4, 0) + B.addr("0.0.0.0") + b"\x00\x00" + B.addr("0.0.0.0"),
    bytes.fromhex("2e00021600") + bytes([1, 2, 3, 4]),
    b"\x2e" + bytes(range(14)),
    b"\x82\x00\x01/tmp/s\x00",
]


def _rich_tokens() -> st.SearchStrategy[bytes]:
    ids = st.integers(0, 2**32 - 1)
    return st.one_of(
        st.sampled_from([tok for _, tok, _, _, _ in CASES]),  # every token layout of the catalogue
        st.sampled_from(_SOCKETS),
        st.builds(
            B.subject,
            st.sampled_from([0, 1001, 2**32 - 1, 2**32 - 2]),
            ids,
            ids,
            ids,
            ids,
            st.integers(0, 2**31),
            ids,
            st.integers(0, 2**32 - 1),
            st.sampled_from(_ADDRS),
            bits=st.sampled_from([32, 64]),
            ex=st.booleans(),
            kind=st.sampled_from(["subject", "process"]),
        ),
        st.builds(B.return32, st.integers(0, 255), st.integers(-(2**31), 2**31 - 1)),
        st.builds(B.arg32, st.integers(0, 9), ids, st.sampled_from(["pid", "process", "signal", "op", "mode", ""])),
        st.builds(B.path, st.sampled_from(["/etc/passwd", "/", "a/b/", "//", "", "/usr/sbin/zlogin", "x"])),
        st.builds(B.text, st.text(max_size=12)),
        st.builds(B.zonename, st.sampled_from(["global", UUID, "", "dmz"])),
        st.builds(B.attr64, ids, ids, ids, st.integers(-(2**31), 2**31 - 1), st.integers(-(2**63), 2**63 - 1), ids),
        st.builds(B.cstr_list, st.sampled_from([0x3C, 0x3D]), st.lists(st.text(max_size=8), max_size=4)),
        st.builds(B.priv, st.sampled_from(["Effective", "Limit"]), st.sampled_from(["", "a, b ,c", "file_read"])),
        st.builds(lambda uid, name: b"\x36" + struct.pack(">I", uid) + B.str16(name), ids, st.text(max_size=8)),
        st.builds(lambda ok, privs: b"\x39" + bytes([ok]) + B.str16(privs), st.integers(0, 1), st.text(max_size=12)),
        st.builds(lambda text: b"\x3f" + B.str16(text), st.sampled_from(["solaris.admin", "", "a,b"])),
        st.builds(lambda a: b"\x2a" + B.addr(a), st.sampled_from(["1.2.3.4", "0.0.0.0", "10.0.2.15"])),
    )


@st.composite
def rich_bsm(draw: st.DrawFn) -> bytes:
    version = draw(st.sampled_from([2, 11]))
    event = draw(st.sampled_from(EVENTS))
    sec, subsec = draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 999_999_999))
    header = draw(
        st.sampled_from(
            [
                B.header32(event, sec, subsec, version=version),
                B.header64_ex(event, sec, subsec, draw(st.sampled_from(_ADDRS)), version=version),
            ]
        )
    )
    return B.record(header, *draw(st.lists(_rich_tokens(), max_size=8)), trailer=draw(st.booleans()))


@settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(st.lists(rich_bsm(), min_size=1, max_size=4), st.sampled_from(SCHEMAS), st.sampled_from(SOURCES))
def test_property_every_token_and_event_kind_keeps_the_invariants(
    payloads: list[bytes], schema: Schema, source: Source
) -> None:
    """Records of every token layout under categorized events of every object kind and direction."""
    assert_document_invariants(payloads, schema=schema, source=source, observer=OBSERVERS[1])


def test_limits_and_arrival_times_per_record() -> None:
    payloads = [raw for _, _, raw in FIXTURE_RECORDS[:3]]
    times = [1, 2_000_000_000_000_000_000, 3]
    rows = _native.ecs_bsm_documents(
        payloads, schema="ecs", received_ns=times, source=SOURCES[0].to_dict(), observer={}, max_tokens=1
    )
    for (_, doc, why), t in zip(rows, times, strict=True):
        assert (doc is None) == (why == "over_limits")
        if doc is not None:
            assert orjson.loads(doc)["event"]["created"].startswith("1970" if t < 10 else "2033")
    with pytest.raises(ValueError, match="arrival times"):
        _native.ecs_bsm_documents(payloads, schema="ecs", received_ns=[1], source={}, observer={})
    with pytest.raises(ValueError, match="schema"):
        _native.ecs_bsm_documents(payloads, schema="v2", received_ns=1, source={}, observer={})


# ---------------------------------------------------------------- enrichment per sender


ZONES = {
    UUID: {
        "uuid": UUID,
        "alias": "web",
        "owner_uuid": "owner-1",
        "owner_login": "alice",
        "brand": "joyent",
        "server_uuid": "srv-1",
        "tags": {"role": "db", "n": 1},
    },
    OTHER_UUID: {"uuid": OTHER_UUID, "alias": "", "owner_uuid": "", "owner_login": "", "brand": "", "server_uuid": ""},
}
STATIC = StaticMap(
    by_name={"web1.example.com": {"role": "compute", "dc": "ams1"}, UUID: {"dc": "ams2", "tier": "gold"}},
    by_network=[(ipaddress.ip_network("192.0.2.0/24"), {"dc": "ams", "net": "doc"})],
)


def sender_enrichment(
    source: Source,
    *,
    dns: Mapping[str, str],
    static: StaticMap,
    zones: Mapping[str, Mapping[str, Any]],
    schema: Schema = "ecs",
) -> dict[str, Any]:
    """The per-sender values, looked up once (what the pipeline will pass for a batch from `source`): the
    names the static map is asked about are the sender's host names as the documents carry them (ECS:
    host.name and host.hostname, from the principal or the peer; v1 documents carry none), plus the PTR."""
    peer_ip = source.peer
    name = None if schema != "ecs" else (principal_host(source.principal) if source.authenticated else None)
    name = name or (source.peer if schema == "ecs" else None)
    hostname = name if name and valid_ip(name) is None else None
    ptr = dns.get(peer_ip) if hostname is None else None  # the enricher asks only when host.hostname is unset
    names = tuple(n for n in (name, hostname, ptr) if n)
    return {
        "hostname": ptr,
        "labels": static.lookup(ip=peer_ip, names=names),
        "zone_labels": {name: labels for name, labels in static.by_name.items()},
        "zones": dict(zones),
    }


ENRICHMENTS: dict[str, dict[str, Any]] = {
    "everything": {"dns": {"192.0.2.7": "gz1.example"}, "static": STATIC, "zones": ZONES},
    "zones-only": {"dns": {}, "static": StaticMap.empty(), "zones": ZONES},
    "labels-only": {"dns": {}, "static": STATIC, "zones": {}},
    "nothing-found": {"dns": {}, "static": StaticMap.empty(), "zones": {}},
}


@pytest.mark.parametrize("schema", SCHEMAS)
@pytest.mark.parametrize("shape", list(ENRICHMENTS))
@pytest.mark.parametrize("principal", ["", "host/web1.example.com@EXAMPLE.COM"], ids=["peer", "principal"])
def test_enrichment_per_sender_as_the_python_merge(schema: Schema, shape: str, principal: str) -> None:
    source = Source(transport="audit_remote", peer="192.0.2.7", peer_port=1, principal=principal, authenticated=True)
    lookups = ENRICHMENTS[shape]
    payloads = ZONE_RECORDS + [raw for _, _, raw in FIXTURE_RECORDS[:40]] + HANDBUILT[:40]
    assert_same_documents(
        payloads,
        schema=schema,
        source=source,
        observer=OBSERVERS[0],
        lookups=shape,
        enrichment=sender_enrichment(source, schema=schema, **lookups),
    )


def test_enrichment_changes_the_documents() -> None:
    """Not vacuous: the zone record gets the zone's fields, the zlogin record the zlogin target."""
    source = Source(transport="audit_remote", peer="192.0.2.7")
    values = sender_enrichment(source, **ENRICHMENTS["everything"])
    rows = native_documents(ZONE_RECORDS[:5], schema="ecs", source=source, observer={}, enrichment=values)
    in_zone, zlogin = orjson.loads(rows[0][1] or b""), orjson.loads(rows[4][1] or b"")
    assert in_zone["labels"]["zonealias"] == "alice-web" and in_zone["labels"]["tier"] == "gold"
    assert in_zone["host"]["hostname"] == "gz1.example"
    assert zlogin["auditrecv"]["zlogin"]["zonealias"] == "alice-web" and "zlogin" in zlogin["tags"]
    # the Python enricher's shape mix-ups, reproduced: every v1 document gets a "host" object, and a v1
    # zlogin without a zone token the ECS zlogin fields
    v1 = sender_enrichment(source, schema="auditrecv-v1", **ENRICHMENTS["everything"])
    rows = native_documents(ZONE_RECORDS[-1:], schema="auditrecv-v1", source=source, observer={}, enrichment=v1)
    (v1_zlogin,) = (orjson.loads(doc or b"") for _, doc, _ in rows)
    assert v1_zlogin["host"] == {"hostname": "gz1.example"} and "zonename" not in v1_zlogin
    assert v1_zlogin["auditrecv"]["zlogin"]["zonealias"] == "alice-web"


# ---------------------------------------------------------------- bulk body


def native_body(
    payloads: Sequence[bytes], *, schema: Schema, source: Source, observer: Mapping[str, Any], search: Any
) -> tuple[bytes, list[tuple[str, str]]]:
    """The native body, and the (id, reason) of the records it hands back (their lines are not in it)."""
    data_stream = search.data_stream if search.mode == "data_stream" else None
    body, layout = _native.ecs_bsm_bulk_body(
        list(payloads),
        schema=schema,
        received_ns=RECEIVED_NS,
        source=source.to_dict(),
        observer=dict(observer),
        index=search.index,
        data_stream=data_stream,
    )
    assert isinstance(body, memoryview) and body.readonly  # not copied: native/src/bulk_body.rs
    body = bytes(body)
    for _doc_id, index, start, end, why in layout:
        if not why:
            assert body[start:end].startswith(b'{"create":{"_index":"' + index.encode())
            assert body[start:end].count(b"\n") == 2
    return body, [(doc_id, why.split(":")[0]) for doc_id, _, _, _, why in layout if why]


def body_outcome(body: bytes, handed_back: list[tuple[str, str]]) -> bytes:
    return body + b"-- handed back --\n" + b"".join(f"{i} {why}\n".encode() for i, why in handed_back)


@pytest.mark.parametrize("schema", SCHEMAS)
@pytest.mark.parametrize(
    "naming",
    [
        {},
        {"index": "Audit-%Y.%j-%H%%x"},
        {"mode": "data_stream", "data_stream": "logs-auditrecv-default"},
    ],
    ids=["daily", "pattern", "data-stream"],
)
def test_bulk_body_as_the_sink_sends_it(schema: Schema, naming: dict[str, Any]) -> None:
    search = dataclasses.replace(decode_config(schema).search, **naming)
    big = B.record(B.header64(1, 1, 0), *[B.text("x")] * 1200)
    far_file_time = B.record(B.header32(1, 1_700_000_000, 0), B.file64(2**40, 0, "/x"), trailer=True)
    payloads = [raw for _, _, raw in FIXTURE_RECORDS] + [b"\x00not bsm", big, far_file_time] + ZONE_RECORDS
    for source in SOURCES[:2]:
        kw: dict[str, Any] = {"schema": schema, "source": source, "observer": OBSERVERS[0], "search": search}
        body, handed_back = native_body(payloads, **kw)
        kw["search"] = naming  # the key names only what the body depends on, not every [search] key
        # none: the 2**40 file token's time is written exactly in bsm.tokens / other_tokens; big is cut in the body
        assert handed_back == []
        assert (b'"truncated":true' in body) == (schema == "ecs")
        recorded.check(GROUP, [(case_key("body", payloads, **kw), body_outcome(body, handed_back))])


@pytest.mark.parametrize("schema", SCHEMAS)
def test_two_steps_zone_refs_then_enriched_body(schema: Schema) -> None:
    """BsmDocuments: map, say which zones enrichment needs, look those up, then write the enriched body."""
    source = Source(transport="audit_remote", peer="192.0.2.7", peer_port=1)
    search = decode_config(schema).search
    payloads = ZONE_RECORDS + [raw for _, _, raw in FIXTURE_RECORDS[:60]] + [b"\x00junk"]
    batch = _native.BsmDocuments(
        payloads, schema=schema, received_ns=RECEIVED_NS, source=source.to_dict(), observer=OBSERVERS[0]
    )
    assert len(batch) == len(payloads)
    refs = batch.zone_refs()  # Enricher._enrich's names, in first-seen order: recorded below
    assert UUID in refs and OTHER_UUID in refs
    lookups = ENRICHMENTS["everything"]
    values = sender_enrichment(source, schema=schema, **lookups)
    values["zones"] = {r: lookups["zones"][r] for r in refs if r in lookups["zones"]}  # only what was asked
    body, layout = batch.bulk_body(index=search.index, enrichment=values)
    assert not any(row[4] for row in layout)
    key = case_key("zone refs, enriched body", payloads, schema=schema, source=source, observer=OBSERVERS[0])
    recorded.check(GROUP, [(key, orjson.dumps(refs) + b"\n" + bytes(body))])
    with pytest.raises(ValueError, match="already serialized"):
        batch.bulk_body()


@pytest.mark.parametrize("schema", SCHEMAS)
def test_bulk_columns_are_the_bulk_body_by_column(schema: Schema) -> None:
    """BsmDocuments.bulk_columns: the body bulk_body writes, and its layout as columns (ends, ids,
    indexes, and the reasons of the records not in the body, by position)."""
    source = Source(transport="audit_remote", peer="192.0.2.7", peer_port=1)
    far_file_time = B.record(B.header32(1, 1_700_000_000, 0), B.file64(2**40, 0, "/x"), trailer=True)
    payloads = [raw for _, _, raw in FIXTURE_RECORDS[:40]] + [far_file_time, b"\x00junk"] + ZONE_RECORDS
    kw: dict[str, Any] = {"schema": schema, "received_ns": RECEIVED_NS, "source": source.to_dict()}
    naming = {
        "index": "Audit-%Y.%m-%H",
        "enrichment": sender_enrichment(source, schema=schema, **ENRICHMENTS["everything"]),
    }
    body, layout = _native.BsmDocuments(payloads, observer=OBSERVERS[0], **kw).bulk_body(**naming)
    columns = _native.BsmDocuments(payloads, observer=OBSERVERS[0], **kw)
    same_body, ends, ids, indexes, fallbacks, marked = columns.bulk_columns(**naming)
    assert same_body == body
    assert marked  # b"\x00junk"'s dead letter is in the body
    assert ends == [end for _, _, _, end, _ in layout]
    assert ids == [doc_id for doc_id, _, _, _, _ in layout]
    assert indexes == [index for _, index, _, _, _ in layout]
    assert fallbacks == {p: why for p, (_, _, _, _, why) in enumerate(layout) if why}
    assert fallbacks == {}  # the 2**40 file token is a document like any other (once handed back: unencodable)
    assert [start for _, _, start, _, _ in layout] == [0, *ends[:-1]]  # each starts where the previous ends
    placed = [index for p, index in enumerate(indexes) if p not in fallbacks]
    runs = 1 + sum(a != b for a, b in itertools.pairwise(placed))
    assert len({id(index) for index in placed}) == runs  # one string object per run of equal names
    with pytest.raises(ValueError, match="already serialized"):
        columns.bulk_columns()
    clean = _native.BsmDocuments(payloads[:40], observer=OBSERVERS[0], **kw).bulk_columns(**naming)
    assert clean[0] and not clean[5]


def test_bulk_body_refuses_patterns_it_cannot_format() -> None:
    with pytest.raises(ValueError, match="not supported natively"):
        _native.ecs_bsm_bulk_body([b""], schema="ecs", received_ns=1, source={}, observer={}, index="a-%b")


def test_document_caps_default_to_the_configuration() -> None:
    limits = Limits()
    assert (limits.max_document_bytes, limits.max_tokens, limits.max_array_items, limits.max_string_chars) == (
        4_194_304,
        1000,
        10_000,
        262_144,
    )
