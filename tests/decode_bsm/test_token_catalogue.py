"""Every token id of bsm.md 4.1 that has a layout: built from the spec's table, decoded, fields checked."""

from __future__ import annotations

import struct

import pytest

from tests import bsm_builders as B
from tests.golden.native_core import bsm_record

S = B.str16

# (token bytes, version, event, expected subset of the decoded token)
CASES: list[tuple[str, bytes, int, int, dict[str, object]]] = [
    ("file32", B.file32(100, 5, "f"), 2, 1, {"token": "file", "time_ns": 100 * 10**9 + 5000, "name": "f"}),
    ("file64", B.file64(100, 5, "g"), 2, 1, {"token": "file", "time_ns": 100 * 10**9 + 5000, "name": "g"}),
    ("fmri", b"\x20" + S("svc:/network/ssh:default"), 2, 6172, {"fmri": "svc:/network/ssh:default"}),
    (
        "data hex int32",
        bytes([0x21, 3, 2, 2]) + struct.pack(">ii", 1, -2),
        2,
        1,
        {"token": "arbitrary", "print": "hex", "type": "int32", "count": 2, "values": [1, 0xFFFFFFFE]},
    ),
    ("data decimal int64", bytes([0x21, 2, 3, 1]) + struct.pack(">Q", 7), 2, 1, {"type": "int64", "values": [7]}),
    ("data octal short", bytes([0x21, 1, 1, 1]) + struct.pack(">H", 8), 2, 1, {"print": "octal", "values": [8]}),
    ("data binary byte", bytes([0x21, 0, 0, 2, 1, 2]), 2, 1, {"print": "binary", "values": [1, 2]}),
    (
        "ipc",
        struct.pack(">BBI", 0x22, 2, 99),
        2,
        1,
        {"token": "IPC", "ipc_type": 2, "ipc_type_name": "sem", "ipc_id": 99},
    ),
    ("path", B.path("/p"), 2, 1, {"path": "/p"}),
    ("path_attr", B.cstr_list(0x25, ["a"]), 2, 1, {"token": "path_attr", "xattr": ["a"]}),
    ("text", B.text("héllo"), 2, 1, {"text": "héllo"}),
    ("opaque", b"\x29\x00\x02\xab\xcd", 2, 1, {"token": "opaque", "data": "abcd", "size": 2}),
    ("in_addr", b"\x2a" + B.addr("1.2.3.4"), 2, 1, {"token": "ip_address", "address": "1.2.3.4"}),
    ("in_addr_ex v6", b"\x7e" + struct.pack(">I", 16) + B.addr("::1"), 2, 1, {"address": "::1", "type": 16}),
    ("in_addr_ex v4", b"\x7e" + struct.pack(">I", 4) + B.addr("9.9.9.9"), 2, 1, {"address": "9.9.9.9"}),
    ("iport", b"\x2c\x00\x16", 11, 1, {"token": "ip_port", "port": 22, "port_swapped": 0x1600}),
    ("seq", b"\x2f" + struct.pack(">I", 12345), 2, 1, {"token": "sequence", "seq_num": 12345}),
    ("acl", struct.pack(">BIII", 0x30, 2, 1000, 0o6), 2, 1, {"token": "acl", "kind": "posix", "value": 1000}),
    (
        "ace",
        struct.pack(">BIIHH", 0x35, 1000, 0x1F, 0x40, 1),
        2,
        1,
        {"token": "acl", "kind": "ace", "id_value": 1000, "access_mask": 0x1F, "flags": 0x40, "type": 1},
    ),
    (
        "ipc_perm",
        struct.pack(">B7I", 0x32, 1, 2, 3, 4, 0o600, 0, 0x1234),
        2,
        1,
        {"token": "IPC_perm", "creator_uid": 3, "creator_gid": 4, "mode_octal": "600", "key": 0x1234},
    ),
    (
        "label",
        b"\x33" + bytes([1, 2]) + struct.pack("<h", 5) + struct.pack("<8I", *range(8)),
        2,
        9101,
        {"token": "sensitivity_label", "classification": 5, "compartments": list(range(8))},
    ),
    ("groups old", b"\x34" + struct.pack(">16I", *range(16)), 2, 1, {"token": "group", "gid": list(range(16))}),
    ("newgroups", b"\x3b" + struct.pack(">HII", 2, 10, 20), 2, 1, {"token": "group", "gid": [10, 20]}),
    (
        "user",
        b"\x36" + struct.pack(">I", 501) + S("alice"),
        2,
        6172,
        {"token": "user", "uid": 501, "username": "alice"},
    ),
    (
        "upriv",
        b"\x39\x01" + S("file_dac_read"),
        2,
        1,
        {"token": "use_of_privilege", "result": True, "privs": "file_dac_read"},
    ),
    (
        "uauth",
        b"\x3f" + S("solaris.admin"),
        2,
        6172,
        {"token": "use_of_authorization", "authorization": "solaris.admin"},
    ),
    ("liaison", b"\x3a" + struct.pack(">I", 7), 2, 1, {"token": "liaison", "value": 7}),
    ("exec_env", B.cstr_list(0x3D, ["A=1"]), 2, 23, {"env": ["A=1"]}),
    (
        "cmd",
        b"\x51" + struct.pack(">H", 2) + S("ls") + S("-l") + struct.pack(">H", 1) + S("X=1"),
        2,
        6172,
        {"token": "cmd", "argv": ["ls", "-l"], "arge": ["X=1"]},
    ),
    ("exit", struct.pack(">BIi", 0x52, 0, 3), 2, 1, {"token": "exit", "errval": 0, "retval": 3}),
    ("zonename", B.zonename("global"), 2, 1, {"token": "zone", "name": "global"}),
    (
        "tid",
        struct.pack(">BBHHI", 0x61, 1, 22, 40000, 4) + B.addr("10.0.0.2"),
        2,
        6172,
        {"token": "tid", "type": "ip", "remote_port": 22, "local_port": 40000, "host": "10.0.0.2"},
    ),
    (
        "secflags",
        b"\x62" + S("effective") + S("aslr,forbidnullmap"),
        2,
        312,
        {"token": "secflags", "set_type": "effective", "flags": "aslr,forbidnullmap"},
    ),
    ("host", b"\x70" + B.addr("5.6.7.8"), 2, 1, {"token": "host", "address": "5.6.7.8"}),
    ("arg64", B.arg64(1, 2**40, "len"), 2, 1, {"token": "argument", "value": 2**40, "bits": 64}),
    ("return64", B.return64(0, 2**33), 2, 1, {"token": "return", "retval": 2**33, "success": True}),
    (
        "ip illumos",
        b"\x2b" + bytes.fromhex("45 00 1400 3412 0000 40 06 0000") + bytes.fromhex("0f02000a 0100000a"),
        2,
        1,
        {"token": "ip", "len": 20, "ip_id": 0x1234, "src_addr": "10.0.2.15", "dest_addr": "10.0.0.1"},
    ),
    (
        "sockinet32",
        b"\x80" + struct.pack(">H", 2) + b"\x00\x50" + B.addr("1.1.1.1"),
        11,
        1,
        {"token": "socket_inet", "port": 80, "addr": "1.1.1.1"},
    ),
    (
        "sockinet128",
        b"\x81\x00\x1c\x01\xbb" + B.addr("::2"),
        11,
        1,
        {"token": "socket_inet6", "port": 443, "addr": "::2"},
    ),
    ("sockunix", b"\x82\x00\x01/tmp/s\x00", 11, 1, {"token": "socket_unix", "family": 1, "path": "/tmp/s"}),
    (
        "socket 15 openbsm",
        b"\x2e\x00\x02\x00\x16" + B.addr("1.2.3.4") + b"\xc3\x50" + B.addr("4.3.2.1"),
        11,
        1,
        {"layout": 15, "lport": 22, "laddr": "1.2.3.4", "fport": 50000, "faddr": "4.3.2.1"},
    ),
    ("X atom", b"\x40" + S("WM_NAME"), 2, 9101, {"token": "X_atom", "atom": "WM_NAME"}),
    (
        "X selection",
        b"\x43" + S("p") + S("t") + S("d"),
        2,
        9101,
        {"x_sel_text": "p", "x_sel_type": "t", "x_sel_data": "d"},
    ),
    ("X window", struct.pack(">BiI", 0x4A, -5, 100), 2, 9101, {"token": "X_window", "xid": -5, "xcreator_uid": 100}),
    ("X color map", struct.pack(">BiI", 0x44, 1, 2), 2, 9101, {"token": "X_color_map"}),
    ("X cursor", struct.pack(">BiI", 0x45, 1, 2), 2, 9101, {"token": "X_cursor"}),
    ("X font", struct.pack(">BiI", 0x46, 1, 2), 2, 9101, {"token": "X_font"}),
    ("X gc", struct.pack(">BiI", 0x47, 1, 2), 2, 9101, {"token": "X_graphic_context"}),
    ("X pixmap", struct.pack(">BiI", 0x48, 1, 2), 2, 9101, {"token": "X_pixmap"}),
    ("X property", struct.pack(">BiI", 0x49, 3, 4) + S("prop"), 2, 9101, {"token": "X_property", "name": "prop"}),
    ("X client", struct.pack(">BI", 0x4B, 17), 2, 9101, {"token": "X_client", "client": 17}),
    (
        "arg uuid",
        b"\x84\x04" + bytes(range(16)) + S("u"),
        11,
        1,
        {"token": "argument_uuid", "uuid": "00010203-0405-0607-0809-0a0b0c0d0e0f", "desc": "u"},
    ),
    ("return uuid", b"\x85\x05" + bytes(16) + S("r"), 11, 1, {"token": "return_uuid", "arg_num": 5}),
]


@pytest.mark.parametrize(("name", "tok", "version", "event", "expected"), CASES, ids=[c[0] for c in CASES])
def test_token_decodes(name: str, tok: bytes, version: int, event: int, expected: dict[str, object]) -> None:
    rec = bsm_record(B.record(B.header32(event, 1, 0, version=version), tok, B.return32(0, 0), trailer=True))
    assert rec["errors"] == [], name
    assert len(rec["tokens"]) == 2 and rec["tokens"][0]["id"] == tok[0]
    got = {k: rec["tokens"][0].get(k) for k in expected}
    assert got == expected


HEADER_IDS = (0x14, 0x15, 0x74, 0x79)  # header32, header32_ex, header64, header64_ex: a record starts with one


def known_token_ids() -> set[int]:
    """The token ids the decoder knows: every id that, right after a header, is not reported as unknown
    in either dialect, plus the headers (inside a record they are reported as the next record's start)."""
    known = set(HEADER_IDS)
    for tid in range(256):
        for version in (2, 11):
            rec = bsm_record(B.record(B.header32(1, 1, 0, version=version), bytes([tid]) + bytes(64)))
            if f"unknown token id 0x{tid:02x} at offset 18" not in rec["errors"]:
                known.add(tid)
    return known


def test_headers_start_records() -> None:
    for header in (B.header32(1, 1, 0), B.header32_ex(1, 1, 0, "10.0.0.1"), B.header64(1, 1, 0)):
        assert bsm_record(B.record(header))["header_id"] in HEADER_IDS
    assert bsm_record(B.record(B.header64_ex(1, 1, 0, "::1")))["header_id"] == 0x79


def test_catalogue_covers_every_known_token() -> None:
    """Guard: a token id added to the decoder must get a case here (headers and trailer tested elsewhere)."""
    covered = {c[1][0] for c in CASES} | {
        0x13,
        0x14,
        0x15,
        0x74,
        0x79,
        0x24,
        0x26,
        0x75,
        0x77,
        0x7A,
        0x7B,
        0x7C,
        0x7D,
        0x27,
        0x2D,
        0x2E,
        0x31,
        0x3C,
        0x3E,
        0x73,
        0x38,
        0x7F,
    }
    assert known_token_ids() <= covered
    assert len(known_token_ids()) == 70  # as many as the Python decoder knew (KNOWN_TOKEN_IDS)
