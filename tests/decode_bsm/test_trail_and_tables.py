"""Trail-file helpers for the CLI, and the lookup tables against their upstream fixture files."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditrecv.decode.bsm import decode_record, iter_trail_file, load_tables, sniff_format
from auditrecv.decode.bsm.tables import mask_to_classes
from tests import bsm_builders as B
from tests.paths import BSM_FIXTURES


@pytest.mark.parametrize("trail", ["plaso/apple.bsm", "plaso/openbsm.bsm", "openbsm/samples/execve-long-args.trail"])
def test_sniff_bsm_fixtures(trail: str) -> None:
    assert sniff_format((BSM_FIXTURES / trail).read_bytes()[:4096]) == "bsm"


def test_sniff_illumos_trail_and_others() -> None:
    rec = B.record(B.header64(23, 1, 2), B.return32(0, 0))
    assert sniff_format(B.file64(1, 2, "") + rec) == "bsm"
    assert sniff_format(rec[:10]) == "bsm"  # first record cut by the sniff window
    linux = b"type=SYSCALL msg=audit(1700000000.123:42): arch=c000003e syscall=59 success=yes\n"
    assert sniff_format(linux) == "linux"
    assert sniff_format(b"node=host1 " + linux) == "linux"
    assert sniff_format(b"hello world") is None
    assert sniff_format(b"") is None
    assert sniff_format(b"\x14\x00\x00\x00\x05\x63") is None  # version 99


def test_iter_trail_file_offsets(tmp_path: Path) -> None:
    r1 = B.record(B.header64(23, 1, 2), B.path("/bin/sh"), B.return32(0, 0))
    r2 = B.record(B.header64(23, 3, 4), B.path("/bin/ls"), b"\xee\xee", B.zonename("z"))
    start, end = B.file64(1, 0, ""), B.file64(5, 0, "")
    f = tmp_path / "20250101000000.not_terminated.host"
    f.write_bytes(start + r1 + r2 + end)
    recs = list(iter_trail_file(f))
    assert [r.offset for r in recs] == [len(start), len(start) + len(r1)]
    assert recs[1].errors == [f"unknown token id 0xee at offset {len(start) + len(r1) + 26 + 11}"]


def _data_lines(path: Path) -> list[str]:
    return [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]


def test_illumos_event_table_has_all_upstream_events_plus_auditrecv_extras() -> None:
    t = load_tables()
    lines = _data_lines(BSM_FIXTURES / "illumos" / "audit_event.txt")
    assert len(lines) == 556
    for ln in lines:
        num, name, *_rest = ln.split(":")
        assert t.illumos.events[int(num)].name == name
    assert len(t.illumos.events) == 561
    assert [t.illumos.events[n].name for n in range(313, 318)] == [
        "AUE_AUDITON_GETPINFO",
        "AUE_AUDITON_SETPMASK",
        "AUE_AUDITON_GETKAUDIT",
        "AUE_AUDITON_SETKAUDIT",
        "AUE_AUDITON_OTHER",
    ]
    ev = t.illumos.events[6172]
    assert (ev.name, ev.description, ev.classes) == ("AUE_ssh", "login - ssh", ("lo",))


def test_openbsm_event_table_used_for_v11() -> None:
    t = load_tables()
    assert len(_data_lines(BSM_FIXTURES / "openbsm" / "etc_audit_event")) == 677
    assert t.openbsm.events[32800].name == "AUE_openssh"
    rec = decode_record(B.record(B.header32(45029, 1, 2, version=11)))
    assert rec.event_name == t.openbsm.events[45029].name
    assert decode_record(B.record(B.header32(45029, 1, 2, version=2))).event_name is None  # not illumos


def test_class_masks_errno_signals() -> None:
    t = load_tables()
    assert mask_to_classes(0x00008000, t.illumos) == ["cy"]
    assert mask_to_classes(0x00031000, t.illumos) == ["lo", "ss", "as"]  # meta-class am is not repeated
    assert mask_to_classes(0xFFFFFFFF, t.illumos) == ["all"]
    assert t.illumos.errno[151] == "ESTALE" and 75 not in t.illumos.errno
    assert t.openbsm.errno[199] == "ENOATTR" and 199 not in t.illumos.errno
    assert (t.signals[9], t.signals[41], t.signals[42]) == ("SIGKILL", "SIGINFO", "SIGRTMIN")
    assert t.priv_ops == {0: "PRIV_ON", 1: "PRIV_OFF", 2: "PRIV_SET"}
    assert t.adt_fail[1003] == "ADT_FAIL_VALUE_AUTH"


def test_iter_trail_file_items_and_empty_file(tmp_path: Path) -> None:
    from auditrecv.decode.bsm import BsmFileToken, iter_trail_file_items

    rec = B.record(B.header64(23, 1, 2), B.return32(0, 0))
    f = tmp_path / "t"
    f.write_bytes(B.file64(7, 250, "") + rec + B.file64(9, 0, "next"))
    items = list(iter_trail_file_items(f))
    assert [type(i).__name__ for i in items] == ["BsmFileToken", "BsmRecord", "BsmFileToken"]
    assert isinstance(items[0], BsmFileToken) and items[0].time_ns == 7 * 10**9 + 250_000
    assert isinstance(items[2], BsmFileToken) and items[2].name == "next"
    assert items[1].raw == rec  # bytes copied out of the map: valid after the file is closed
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert list(iter_trail_file(empty)) == []


def test_trail_file_with_garbage_resyncs_through_mmap(tmp_path: Path) -> None:
    rec = B.record(B.header64(23, 1, 2), B.path("/p"), B.return32(0, 0))
    f = tmp_path / "g"
    f.write_bytes(rec + b"\x00\x01garbage\x02" + rec)
    recs = list(iter_trail_file(f))
    assert [r.offset for r in recs] == [0, len(rec), len(rec) + 10]
    assert [bool(r.errors) for r in recs] == [False, True, False]
    assert recs[1].errors[0].startswith(f"no BSM header at offset {len(rec)}")
