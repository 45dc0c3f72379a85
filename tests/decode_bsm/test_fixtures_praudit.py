"""Every fixture trail decodes, and its fields equal OpenBSM praudit's independent output exactly.

The reference is `praudit -r` (raw, numeric) from fixtures/bsm/praudit-openbsm/, parsed here: one
comma-separated line per token, the first field being the token id in decimal.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tests.golden.native_core import bsm_record, bsm_records, tokens_of
from tests.paths import BSM_FIXTURES

PRAUDIT = BSM_FIXTURES / "praudit-openbsm"

TRAILS = {
    "plaso/apple.bsm": "plaso_apple.bsm",
    "plaso/openbsm.bsm": "plaso_openbsm.bsm",
    "openbsm/samples/execve-long-args.trail": "openbsm_samples_execve-long-args.trail",
}

U32 = 0xFFFFFFFF


def parse_praudit_raw(path: Path) -> list[list[list[str]]]:
    """Records as lists of token lines, each line split on commas (raw bytes kept as latin-1 text)."""
    records: list[list[list[str]]] = []
    for line in path.read_bytes().decode("latin-1").split("\n"):
        if not line or line.startswith("###"):
            continue
        fields = line.split(",")
        if fields[0] == "20":
            records.append([])
        records[-1].append(fields)
    return records


def _u(text: str) -> int:
    """praudit prints some u32 fields signed (-1): compare as unsigned 32-bit."""
    return int(text, 0) & U32


def check_token(line: list[str], tok: dict[str, object]) -> None:
    """Assert one decoded token equals one praudit -r line."""
    tid = int(line[0])
    assert tok["id"] == tid, (line, tok)
    f = line[1:]
    if tid in (0x24, 0x26, 0x75, 0x77, 0x7A, 0x7B, 0x7C, 0x7D):
        ids = [tok["audit_uid"], tok["uid"], tok["gid"], tok["ruid"], tok["rgid"], tok["pid"], tok["sid"]]
        assert ids == [_u(x) for x in f[:7]]
        tid_info = tok["tid"]
        assert isinstance(tid_info, dict)
        assert tid_info["port"] == int(f[7])
        assert tid_info["host"] == f[8]
    elif tid == 0x27:
        assert tok["errval"] == int(f[0])
        assert isinstance(tok["retval"], int)
        assert tok["retval"] & U32 == int(f[1])
    elif tid in (0x2D, 0x71):
        assert [tok["arg_num"], tok["value"], tok["desc"]] == [int(f[0]), int(f[1], 16), ",".join(f[2:])]
    elif tid == 0x28:
        assert tok["text"] == ",".join(f)
    elif tid == 0x23:
        assert tok["path"] == ",".join(f)
    elif tid == 0x60:
        assert tok["name"] == ",".join(f)
    elif tid == 0x3C:
        assert tok["args"] == f
    elif tid == 0x3E:
        assert [tok["mode_octal"], tok["uid"], tok["gid"], tok["fsid"], tok["nodeid"], tok["device"]] == [
            f[0],
            int(f[1]),
            int(f[2]),
            int(f[3]),
            int(f[4]),
            int(f[5]),
        ]
    elif tid == 0x21:
        assert [tok["print"], tok["type"], tok["count"], tok["values"]] == [f[0], f[1], int(f[2]), ",".join(f[3:])]
    elif tid == 0x11:
        assert [tok["sec"], tok["subsec"], tok["name"]] == [int(f[0]), int(f[1]), f[2]]
        assert tok["time_ns"] == int(f[0]) * 10**9 + int(f[1]) * 10**6  # OpenBSM: milliseconds
    elif tid == 0x2A:
        assert tok["address"] == f[0]
    elif tid == 0x2B:
        got = [
            tok["version"],
            tok["service_type"],
            tok["len"],
            tok["ip_id"],
            tok["offset"],
            tok["time_to_live"],
            tok["protocol"],
            tok["cksum"],
            tok["src_addr"],
            tok["dest_addr"],
        ]
        assert got == [
            int(f[0], 16),
            int(f[1], 16),
            int(f[2]),
            int(f[3]),
            int(f[4]),
            int(f[5], 16),
            int(f[6], 16),
            int(f[7]),
            f[8],
            f[9],
        ]
    elif tid == 0x22:
        assert [tok["ipc_type"], tok["ipc_id"]] == [int(f[0]), int(f[1])]
    elif tid == 0x2C:
        assert tok["port"] == int(f[0], 16)
    elif tid == 0x29:
        assert [tok["size"], "0x" + str(tok["data"])] == [int(f[0]), f[1]]
    elif tid == 0x2F:
        assert tok["seq_num"] == int(f[0])
    elif tid == 0x7F:
        got = [tok["sock_domain"], tok["sock_type"], tok["lport"], tok["laddr"], tok["fport"], tok["faddr"]]
        assert got == [int(f[0], 16), int(f[1], 16), int(f[2]), f[3], int(f[4]), f[5]]
    elif tid in (0x84, 0x85):
        assert [tok["arg_num"], tok["uuid"], tok["desc"]] == [int(f[0]), f[1], f[2]]
    else:
        pytest.fail(f"praudit token {tid} has no comparison in this test")


def check_record(lines: list[list[str]], rec: dict[str, Any]) -> None:
    head = lines[0]
    assert rec["errors"] == []
    assert [rec["length"], rec["version"], rec["event_id"], rec["modifier"]] == [int(x) for x in head[1:5]]
    assert rec["time_ns"] == int(head[5]) * 10**9 + int(head[6]) * 10**6
    body = lines[1:]
    if body and body[-1][0] == "19":
        assert rec["has_trailer"]
        assert int(body[-1][1]) == rec["length"]
        body = body[:-1]
    else:
        assert not rec["has_trailer"]
    assert len(body) == len(rec["tokens"]), ([b[0] for b in body], [t["token"] for t in rec["tokens"]])
    for line, tok in zip(body, rec["tokens"], strict=True):
        check_token(line, tok)


@pytest.mark.parametrize("trail", sorted(TRAILS))
def test_trail_matches_praudit_raw(trail: str) -> None:
    data = (BSM_FIXTURES / trail).read_bytes()
    expected = parse_praudit_raw(PRAUDIT / f"{TRAILS[trail]}.praudit-r.txt")
    records = bsm_records(data)
    assert len(records) == len(expected)
    assert sum(r["length"] for r in records) == len(data)
    for lines, rec in zip(expected, records, strict=True):
        check_record(lines, rec)


def test_every_reference_record_matches_praudit() -> None:
    """Each openbsm/reference/*_record file, decoded on its own, equals its praudit block."""
    blocks: dict[str, list[list[str]]] = {}
    name = ""
    for line in (PRAUDIT / "openbsm__reference__ALL_records.praudit-r.txt").read_bytes().decode("latin-1").split("\n"):
        if line.startswith("### "):
            name = line[4:].strip()
            blocks[name] = []
        elif line:
            blocks[name].append(line.split(","))
    ref_files = sorted(p.name for p in (BSM_FIXTURES / "openbsm" / "reference").glob("*_record*"))
    assert sorted(blocks) == ref_files
    for fname, lines in blocks.items():
        rec = bsm_record((BSM_FIXTURES / "openbsm" / "reference" / fname).read_bytes())
        check_record(lines, rec)


def test_reference_tokens_decode_alone() -> None:
    """`*_token` files hold one token without a header: wrapped in a v11 header they decode cleanly."""
    from tests.bsm_builders import header32, record

    for p in sorted((BSM_FIXTURES / "openbsm" / "reference").glob("*_token*")):
        tok = p.read_bytes()
        if tok[0] in (0x14, 0x13):  # header32_token / trailer_token are not body tokens
            continue
        rec = bsm_record(record(header32(0, 0, 0, version=11), tok))
        assert rec["errors"] == [], p.name
        assert len(rec["tokens"]) == 1, p.name


def test_header_and_trailer_reference_tokens() -> None:
    ref = BSM_FIXTURES / "openbsm" / "reference"
    hdr = bsm_record(ref.joinpath("header32_token").read_bytes(), whole=False)
    # header32_token: reclen 0x12345678 with 18 bytes present: reported, not raised
    assert hdr["event_id"] == 3 and hdr["modifier"] == 0x4567 and hdr["version"] == 11
    assert hdr["time_ns"] == 0x12345 * 10**9 + 0x1A8 * 10**6
    assert hdr["errors"] and "truncated" in hdr["errors"][0]


def test_apple_xml_subject_and_text_count() -> None:
    """Cross-check with the XML rendering: per-record text tokens and subject pids."""
    tree = ET.parse(PRAUDIT / "plaso_apple.bsm.praudit-x.xml")
    xml_records = tree.getroot().findall("record")
    records = bsm_records((BSM_FIXTURES / "plaso/apple.bsm").read_bytes())
    assert len(records) == len(xml_records) == 54
    for xrec, rec in zip(xml_records, records, strict=True):
        assert int(xrec.get("event", "-1")) == rec["event_id"]
        assert [t.text for t in xrec.findall("text")] == [t["text"] for t in tokens_of(rec, "text")]
        assert [int(s.get("pid", "-1")) for s in xrec.findall("subject")] == [
            t["pid"] for t in tokens_of(rec, "subject")
        ]
        assert [p.text for p in xrec.findall("path")] == [t["path"] for t in tokens_of(rec, "path")]
