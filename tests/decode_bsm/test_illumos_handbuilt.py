"""Hand-built illumos version-2 records (team-authored from bsm.md) decode to the values the spec gives."""

from __future__ import annotations

import struct

import pytest

from tests import bsm_builders as B
from tests.golden.native_core import bsm_items, bsm_record, bsm_records, raw_bytes, token_values, tokens_of

SEC = 1_700_000_000
NSEC = 123_456_789
EXPECTED_NS = SEC * 10**9 + NSEC

# bsm.md section 6.1 test vectors: (rport, lport, X, 64-bit native P, 64-bit DEVEXPL P, praudit DEVEXPL maj/min)
PORT_VECTORS = [
    (61707, 22, 0x0BF11600, 0x000000000BF11600, 0x000002FC00011600, (764, 71168)),
    (50000, 22, 0x50C31600, 0x0000000050C31600, 0x0000143000031600, (5168, 202240)),
    (32896, 22, 0x80801600, 0xFFFFFFFF80801600, 0x0000202000001600, (8224, 5632)),
]


def login_record(subject_token: bytes, event: int = 6172) -> bytes:
    return B.record(
        B.header64_ex(event, SEC, NSEC, "192.168.1.10"), subject_token, B.return64(0, 0), B.zonename("global")
    )


def test_header64_ex_v2_nanoseconds_and_host() -> None:
    rec = bsm_record(B.record(B.header64_ex(23, SEC, NSEC, "10.1.2.3"), B.return32(0, 0)))
    assert rec["errors"] == []
    assert (rec["version"], rec["header_id"], rec["event_id"], rec["event_name"]) == (2, 0x79, 23, "AUE_EXECVE")
    assert rec["event_classes"] == ["ps", "ex"]
    assert rec["time_ns"] == EXPECTED_NS
    assert rec["host"] == "10.1.2.3"
    assert rec["dialect"] == "illumos"
    assert not rec["has_trailer"]


@pytest.mark.parametrize("make", [B.header32, B.header64])
def test_header_v2_is_ns_in_both_widths(make) -> None:  # type: ignore[no-untyped-def]
    rec = bsm_record(B.record(make(23, SEC, NSEC)))
    assert rec["time_ns"] == EXPECTED_NS and rec["errors"] == []


def test_header32_ex_ipv6_host() -> None:
    rec = bsm_record(B.record(B.header32_ex(6172, SEC, 5, "fe80::1"), B.return32(0, 0)))
    assert rec["host"] == "fe80::1" and rec["time_ns"] == SEC * 10**9 + 5 and rec["event_name"] == "AUE_ssh"


def test_openbsm_header_is_milliseconds() -> None:
    rec = bsm_record(B.record(B.header32(45029, SEC, 381, version=11)))
    assert rec["time_ns"] == SEC * 10**9 + 381 * 10**6 and rec["dialect"] == "openbsm"


@pytest.mark.parametrize(("rport", "lport", "x", "native", "devexpl", "majmin"), PORT_VECTORS)
def test_subject_port_recipes(
    rport: int, lport: int, x: int, native: int, devexpl: int, majmin: tuple[int, int]
) -> None:
    cases = [(32, x, "32bit"), (64, native, "native64"), (64, devexpl, "devexpl")]
    for bits, port, recipe in cases:
        tok = B.subject(1001, 0, 1, 1001, 1, 4242, 4242, port, "10.0.2.15", bits=bits)
        rec = bsm_record(login_record(tok))
        assert rec["errors"] == []
        tid = rec["tokens"][0]["tid"]
        assert (tid["rport"], tid["lport"], tid["port_recipe"]) == (rport, lport, recipe)
        assert tid["port"] == port  # the raw value is kept beside the interpretation
        assert tid["host"] == "10.0.2.15"
        if recipe == "devexpl":
            assert (tid["major"], tid["minor"]) == majmin
    # (the 32-bit recipe, Python decode_port_pair(x, 32), is the first case above: rport, lport, "32bit")


def test_port_vector_bytes_are_as_spec() -> None:
    """The 32-bit token carries X big-endian; 64-bit tokens carry P big-endian."""
    for _r, _l, x, native, devexpl, _mm in PORT_VECTORS:
        tok32 = B.subject(0, 0, 0, 0, 0, 0, 0, x, "0.0.0.0")
        assert tok32[29:33] == struct.pack(">I", x)
        assert B.subject(0, 0, 0, 0, 0, 0, 0, native, "0.0.0.0", bits=64)[29:37] == struct.pack(">Q", native)
        tok64 = B.subject(0, 0, 0, 0, 0, 0, 0, devexpl, "0.0.0.0", bits=64)
        assert tok64[29:37] == struct.pack(">Q", devexpl)
    assert PORT_VECTORS[0][4].to_bytes(8, "big").hex() == "000002fc00011600"


def test_port_not_a_pair_keeps_raw_only() -> None:
    port = 0x0001000200030004  # high word > 0x3FFF: neither native nor DEVEXPL
    rec = bsm_record(login_record(B.subject(0, 0, 0, 0, 0, 1, 1, port, "0.0.0.0", bits=64)))
    tid = rec["tokens"][0]["tid"]
    assert (tid["rport"], tid["lport"], tid["port_recipe"], tid["port"]) == (None, None, None, port)
    assert (tid["major"], tid["minor"]) == (0x00010002, 0x00030004)  # praudit's 32/32 split of a 64-bit port


def test_subject64_ex_ipv6_and_process_tokens() -> None:
    port = PORT_VECTORS[0][3]
    tokens = [
        B.subject(5, 6, 7, 8, 9, 10, 11, port, "2001:db8::5", bits=64, ex=True),
        B.subject(5, 6, 7, 8, 9, 12, 11, port, "2001:db8::5", bits=32, ex=True, kind="process"),
        B.subject(5, 6, 7, 8, 9, 13, 11, port, "10.9.8.7", bits=64, kind="process"),
    ]
    rec = bsm_record(B.record(B.header64(6172, SEC, NSEC), *tokens, B.return64(0, 0)))
    assert rec["errors"] == []
    assert [(t["token"], t["id"], t["pid"]) for t in rec["tokens"][:3]] == [
        ("subject", 0x7C, 10),
        ("process", 0x7B, 12),
        ("process", 0x77, 13),
    ]
    assert rec["tokens"][0]["tid"]["host"] == "2001:db8::5" and rec["tokens"][0]["tid"]["type"] == 16
    assert rec["tokens"][0]["tid"]["host_uncertain"] is False  # _ex writers are correct
    assert rec["tokens"][2]["tid"]["host_uncertain"] is True  # user-level, non-ex: libbsm x86 reversal possible
    assert rec["tokens"][2]["tid"]["host_reversed"] == "7.8.9.10"
    assert "host_reversed" not in rec["tokens"][0]["tid"]
    assert rec["tokens"][0]["tid"]["rport"] == 61707


def test_attr64_and_attr32_widths_then_more_tokens() -> None:
    """attr32 is 29 bytes (64-bit nodeid): the tokens after it must still decode (Erlang defect 1)."""
    rec = bsm_record(
        B.record(
            B.header64(5, SEC, NSEC),
            B.path("/etc/passwd"),
            B.attr64(0o100644, 0, 3, 0x00010007, 0x123456789A, 0x000000B400010007),
            B.attr32(0o100755, 1, 2, -1, 0x1122334455667788, 0x00010007),
            B.subject(0, 0, 0, 0, 0, 1, 1, 0, "0.0.0.0", bits=64),
            B.return32(0, 3),
            B.zonename("z1"),
        )
    )
    assert rec["errors"] == []
    a64, a32 = rec["tokens"][1], rec["tokens"][2]
    assert (a64["bits"], a64["mode"], a64["mode_octal"], a64["gid"], a64["fsid"]) == (
        64,
        0o100644,
        "100644",
        3,
        0x00010007,
    )
    assert (a64["nodeid"], a64["nodeid_hex"], a64["device"]) == (0x123456789A, "123456789a", 0xB400010007)
    assert (a32["bits"], a32["mode_octal"], a32["fsid"], a32["nodeid"], a32["device"]) == (
        32,
        "100755",
        -1,
        0x1122334455667788,
        0x00010007,
    )
    assert token_values(rec, "zone", "name") == ["z1"]
    assert tokens_of(rec, "return")[-1]["retval"] == 3
    assert rec["tokens"][3]["tid"]["host_uncertain"] is False  # kernel writer is correct


def test_old_attr_is_25_bytes() -> None:
    rec = bsm_record(B.record(B.header32(5, SEC, 0), B.attr_old(0o644, 1, 2, 3, 4, 5), B.return32(0, 0)))
    assert rec["errors"] == [] and rec["tokens"][0]["nodeid"] == 4 and rec["tokens"][0]["bits"] == 0


def test_return64_kernel_errno_and_adt_failure() -> None:
    kern = bsm_record(B.record(B.header64(5, SEC, 0, emod=0x8000), B.return64(13, -1)))
    ret = kern["tokens"][0]
    assert (ret["errval"], ret["retval"], ret["bits"], ret["success"], ret["error"]) == (13, -1, 64, False, "EACCES")
    assert kern["modifier_names"] == ["fe"]
    adt = bsm_record(B.record(B.header64(6172, SEC, 0), B.return64(0xFF, 1003)))
    assert adt["tokens"][0]["error"] == "ADT_FAIL_VALUE_AUTH" and tokens_of(adt, "return")[-1]["success"] is False
    pam = bsm_record(B.record(B.header64(6172, SEC, 0), B.return64(0xFF, 2009)))
    assert pam["tokens"][0]["error"] == "PAM_AUTH_ERR"


def test_kernel_socket_9_bytes_x86() -> None:
    """family BE, port little-endian, address reversed (bsm.md 6.3)."""
    sock = bytes.fromhex("2e000216000f02000a")
    rec = bsm_record(B.record(B.header64(247, SEC, 0), sock, B.return32(0, 0), B.zonename("global")))
    assert rec["errors"] == []
    tok = rec["tokens"][0]
    assert (tok["token"], tok["layout"], tok["family"], tok["port"], tok["addr"]) == (
        "old_socket",
        9,
        2,
        22,
        "10.0.2.15",
    )
    assert token_values(rec, "zone", "name") == ["global"]


def test_libbsm_socket_15_bytes_in_v2_record() -> None:
    sock = bytes.fromhex("2e000216000f02000a50c30100000a")
    rec = bsm_record(B.record(B.header32(6172, SEC, 0), sock, B.return32(0, 0)))
    tok = rec["tokens"][0]
    assert rec["errors"] == []
    assert (tok["layout"], tok["lport"], tok["laddr"], tok["fport"], tok["faddr"]) == (
        15,
        22,
        "10.0.2.15",
        50000,
        "10.0.0.1",
    )


def test_kernel_socket_9_bytes_at_record_end_without_trailer() -> None:
    sock = bytes.fromhex("2e000216000f02000a")
    rec = bsm_record(B.record(B.header64(6172, SEC, 0), B.return32(0, 0), sock))
    assert rec["errors"] == [] and rec["tokens"][1]["layout"] == 9


def test_socket_ex_x86_ports() -> None:
    tok = bytes.fromhex("7f0002000200041600") + B.addr("10.0.2.15") + bytes.fromhex("50c3") + B.addr("10.0.0.1")
    rec = bsm_record(B.record(B.header64(6172, SEC, 0), tok, B.return32(0, 0)))
    s = rec["tokens"][0]
    assert rec["errors"] == []
    assert (s["sock_domain"], s["sock_type"], s["lport"], s["laddr"], s["fport"], s["faddr"]) == (
        2,
        2,
        22,
        "10.0.2.15",
        50000,
        "10.0.0.1",
    )
    v6 = bytes.fromhex("7f001a000200101600") + B.addr("fe80::1") + bytes.fromhex("50c3") + B.addr("fe80::2")
    rec6 = bsm_record(B.record(B.header64(6172, SEC, 0), v6))
    assert rec6["tokens"][0]["laddr"] == "fe80::1" and rec6["tokens"][0]["sock_domain"] == 26


def test_zonename_after_return_no_trailer_and_repeats_kept() -> None:
    rec = bsm_record(
        B.record(
            B.header64_ex(289, SEC, NSEC, "10.0.0.9"),
            B.arg32(1, 2, "op"),
            B.priv("effective", "proc_fork"),
            B.priv("effective", "ALL"),
            B.subject(100, 100, 10, 100, 10, 77, 77, 0, "0.0.0.0", bits=64),
            B.return32(0, 0),
            B.zonename("web01"),
        )
    )
    assert rec["errors"] == []
    assert [t["token"] for t in rec["tokens"]] == ["argument", "privilege", "privilege", "subject", "return", "zone"]
    assert [t["privs"] for t in tokens_of(rec, "privilege")] == ["proc_fork", "ALL"]
    assert rec["tokens"][0]["value_text"] == "PRIV_SET"
    assert token_values(rec, "zone", "name") == ["web01"]
    assert not rec["has_trailer"]


def test_rename_two_paths_texts_args_in_order() -> None:
    rec = bsm_record(
        B.record(
            B.header32(42, SEC, NSEC),
            B.path("/a"),
            B.attr32(0o100600, 0, 0, 1, 2, 3),
            B.path("/b"),
            B.text("one"),
            B.text("two"),
            B.text("one"),
            B.arg32(1, 5, "fd"),
            B.arg32(1, 6, "fd"),
            B.subject(0, 0, 0, 0, 0, 1, 1, 0, "0.0.0.0"),
            B.return32(0, 0),
            trailer=True,
        )
    )
    assert rec["errors"] == [] and rec["has_trailer"]
    assert token_values(rec, "path", "path") == ["/a", "/b"]
    assert token_values(rec, "text", "text") == ["one", "two", "one"]
    assert [(a["arg_num"], a["value"]) for a in tokens_of(rec, "argument")] == [(1, 5), (1, 6)]


def test_semantics_signal_mask_mode() -> None:
    rec = bsm_record(
        B.record(
            B.header64(15, SEC, 0),  # AUE_KILL
            B.arg32(2, 9, "signal"),
            B.arg32(1, 0o4755, "mode"),
            B.arg32(3, 0x40001000, "setaudit:as_success"),
            B.arg32(3, 0, "setaudit:as_failure"),
            B.return32(0, 0),
        )
    )
    sig, mode, succ, fail = rec["tokens"][:4]
    assert sig["value_text"] == "SIGKILL" and sig["value"] == 9
    assert mode["value_text"] == "4755"
    assert succ["value_classes"] == ["lo", "ex"] and succ["value"] == 0x40001000
    assert fail["value_classes"] == []


def test_exec_args_env_without_equals_and_path_attr() -> None:
    rec = bsm_record(
        B.record(
            B.header64(23, SEC, 0),
            B.cstr_list(0x3C, ["/bin/ls", "-l", ""]),
            B.cstr_list(0x3D, ["PATH=/bin", "NOEQUALS"]),
            B.path("/bin/ls"),
            B.cstr_list(0x25, ["attr1", "attr2"]),
            B.return32(0, 0),
        )
    )
    assert rec["errors"] == []
    assert token_values(rec, "exec_args", "args") == [["/bin/ls", "-l", ""]]
    assert rec["tokens"][1]["env"] == ["PATH=/bin", "NOEQUALS"]
    assert rec["tokens"][3]["xattr"] == ["attr1", "attr2"]


def test_trail_with_file64_tokens_and_mixed_widths() -> None:
    r1 = B.record(B.header64(23, SEC, NSEC), B.subject(0, 0, 0, 0, 0, 1, 1, 0, "0.0.0.0", bits=64), B.return32(0, 0))
    r2 = B.record(
        B.header32(6172, SEC + 1, 7),
        B.subject(0, 0, 0, 0, 0, 2, 2, 0x0BF11600, "10.0.2.15"),
        B.return64(0, 0),
        B.zonename("global"),
    )
    start = B.file64(SEC - 1, 500_000, "")
    end = B.file64(SEC + 2, 250, "/var/audit/next")
    trail = start + r1 + r2 + end
    recs = bsm_records(trail)
    assert [r["offset"] for r in recs] == [len(start), len(start) + len(r1)]
    assert [r["errors"] for r in recs] == [[], []]
    assert [r["time_ns"] for r in recs] == [EXPECTED_NS, (SEC + 1) * 10**9 + 7]
    items = bsm_items(trail)
    assert [i["item"] for i in items] == ["file", "record", "record", "file"]
    assert items[0]["time_ns"] == (SEC - 1) * 10**9 + 500_000 * 1000
    assert items[-1]["name"] == "/var/audit/next"


def test_unknown_token_keeps_decoded_part_and_next_record() -> None:
    bad = B.record(B.header64(23, SEC, 0), B.path("/x"), b"\xee\x01\x02\x03", B.zonename("z"))
    good = B.record(B.header64(23, SEC, 0), B.path("/y"), B.return32(0, 0))
    recs = bsm_records(bad + good)
    assert len(recs) == 2
    assert token_values(recs[0], "path", "path") == ["/x"]
    assert recs[0]["errors"] and "unknown token id 0xee" in recs[0]["errors"][0]
    assert recs[0]["tokens"][-1]["token"] == "unknown"
    assert recs[0]["tokens"][-1]["data"] == ("ee010203" + B.zonename("z").hex())
    assert recs[1]["errors"] == [] and token_values(recs[1], "path", "path") == ["/y"]


def test_truncated_token_inside_record() -> None:
    raw = B.record(B.header64(23, SEC, 0), B.path("/x"), B.attr64(0, 0, 0, 0, 0, 0)[:20])
    rec = bsm_record(raw)
    assert token_values(rec, "path", "path") == ["/x"] and rec["errors"] and "truncated token 0x73" in rec["errors"][0]


def test_to_dict_is_json() -> None:
    import json

    rec = bsm_record(login_record(B.subject(0, 0, 0, 0, 0, 1, 1, 0x0BF11600, "10.0.2.15")))
    d = json.loads(json.dumps(rec))
    assert raw_bytes(d) == login_record(B.subject(0, 0, 0, 0, 0, 1, 1, 0x0BF11600, "10.0.2.15"))
    assert d["tokens"][0]["tid"]["rport"] == 61707


def test_overlong_length_does_not_swallow_the_next_record() -> None:
    r1 = B.record(B.header64(23, SEC, 0), B.path("/a"), B.return32(0, 0))
    r2 = B.record(B.header64(23, SEC, 1), B.path("/b"), B.return32(0, 0))
    r3 = B.record(B.header64(23, SEC, 2), B.path("/c"), B.return32(0, 0))
    bad = r1[:1] + struct.pack(">I", len(r1) + 10) + r1[5:]  # length reaches into r2
    recs = bsm_records(bad + r2 + r3)
    assert [token_values(r, "path", "path") for r in recs] == [["/a"], ["/b"], ["/c"]]
    assert recs[0]["length"] == len(r1) and "overruns into a header" in recs[0]["errors"][0]
    assert recs[1]["errors"] == [] and recs[1]["offset"] == len(r1)


def test_libbsm_upriv_written_with_uauth_id() -> None:
    """illumos libbsm au_to_upriv() writes id 0x3f with the upriv layout (bsm.md 4.6)."""
    upriv_bug = b"\x3f\x01" + B.str16("proc_exec")
    rec = bsm_record(B.record(B.header32(6172, SEC, 0), upriv_bug, B.return32(0, 0)))
    assert rec["errors"] == []
    assert (rec["tokens"][0]["token"], rec["tokens"][0]["result"], rec["tokens"][0]["privs"]) == (
        "use_of_privilege",
        True,
        "proc_exec",
    )
    uauth = b"\x3f" + B.str16("solaris.smf.manage")
    rec2 = bsm_record(B.record(B.header32(6172, SEC, 0), uauth, B.return32(0, 0)))
    assert rec2["tokens"][0] == {"token": "use_of_authorization", "id": 0x3F, "authorization": "solaris.smf.manage"}


def test_decode_record_whole_flags_trailing_bytes() -> None:
    raw = B.record(B.header64(23, SEC, 0), B.return32(0, 0))
    assert bsm_record(raw + b"\x00\x01")["errors"] == [f"2 bytes after the record end at offset {len(raw)}"]
    assert bsm_record(raw + b"\x00\x01", whole=False)["errors"] == []
    assert bsm_record(b"\x00" + raw, 1)["offset"] == 1


def test_accessors() -> None:
    rec = bsm_record(
        B.record(B.header64(5, SEC, 0), B.path("/x"), B.subject(7, 0, 0, 0, 0, 9, 9, 0, "0.0.0.0"), B.return32(2, -1))
    )
    # what the Python model's accessors (subject, success, error, ok, exec_args, zonename) read
    assert tokens_of(rec, "subject")[0]["audit_uid"] == 7
    ret = tokens_of(rec, "return")[-1]
    assert (ret["success"], ret["error"], rec["errors"]) == (False, "ENOENT", [])
    assert tokens_of(rec, "exec_args") == [] and tokens_of(rec, "zone") == [] and tokens_of(rec, "nothing") == []
