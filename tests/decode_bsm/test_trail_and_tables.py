"""Trail files as the CLI reads them, and the decoder's lookup tables (embedded in the native core from the
project's data files) against their upstream fixture files, seen through decoded records."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditrecv.tools import read_input
from tests import bsm_builders as B
from tests.golden.native_core import bsm_items, bsm_raw, bsm_records, sniff_kind
from tests.paths import BSM_FIXTURES


@pytest.mark.parametrize("trail", ["plaso/apple.bsm", "plaso/openbsm.bsm", "openbsm/samples/execve-long-args.trail"])
def test_sniff_bsm_fixtures(trail: str) -> None:
    assert sniff_kind((BSM_FIXTURES / trail).read_bytes()[:4096]) == "bsm"


def test_sniff_illumos_trail_and_others() -> None:
    rec = B.record(B.header64(23, 1, 2), B.return32(0, 0))
    assert sniff_kind(B.file64(1, 2, "") + rec) == "bsm"
    assert sniff_kind(rec[:10]) == "bsm"  # first record cut by the sniff window
    linux = b"type=SYSCALL msg=audit(1700000000.123:42): arch=c000003e syscall=59 success=yes\n"
    assert sniff_kind(linux) == "linux"
    assert sniff_kind(b"node=host1 " + linux) == "linux"
    assert sniff_kind(b"hello world") is None
    assert sniff_kind(b"") is None
    assert sniff_kind(b"\x14\x00\x00\x00\x05\x63") is None  # version 99


def file_records(path: Path) -> list[dict[str, object]]:
    """A trail file's records as `auditrecv decode` reads and decodes them (file offsets)."""
    kind, items = read_input(str(path))
    assert kind == "bsm"
    return [bsm_raw(payload, offset) for offset, payload in items]


def test_trail_file_offsets(tmp_path: Path) -> None:
    r1 = B.record(B.header64(23, 1, 2), B.path("/bin/sh"), B.return32(0, 0))
    r2 = B.record(B.header64(23, 3, 4), B.path("/bin/ls"), b"\xee\xee", B.zonename("z"))
    start, end = B.file64(1, 0, ""), B.file64(5, 0, "")
    f = tmp_path / "20250101000000.not_terminated.host"
    f.write_bytes(start + r1 + r2 + end)
    recs = file_records(f)
    assert [r["offset"] for r in recs] == [len(start), len(start) + len(r1)]
    # `decode --raw` decodes each record alone: the offset within it (26 + 11: header64 and the path token)
    assert recs[1]["errors"] == ["unknown token id 0xee at offset 37"]
    # decoded in place in the trail: the file offset
    in_place = bsm_records(f.read_bytes())
    assert [r["offset"] for r in in_place] == [len(start), len(start) + len(r1)]
    assert in_place[1]["errors"] == [f"unknown token id 0xee at offset {len(start) + len(r1) + 26 + 11}"]


def _data_lines(path: Path) -> list[str]:
    return [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]


def event(number: int, version: int) -> dict[str, object]:
    """The header facts of a record of event `number` (illumos: version 2, OpenBSM: version 11)."""
    return bsm_raw(B.record(B.header32(number, 1, 2, version=version)))


def test_illumos_event_table_has_all_upstream_events_plus_auditrecv_extras() -> None:
    lines = _data_lines(BSM_FIXTURES / "illumos" / "audit_event.txt")
    assert len(lines) == 556
    for ln in lines:
        num, name, *_rest = ln.split(":")
        assert event(int(num), 2)["event_name"] == name
    assert sum(event(n, 2)["event_name"] is not None for n in range(65536)) == 561
    assert [event(n, 2)["event_name"] for n in range(313, 318)] == [
        "AUE_AUDITON_GETPINFO",
        "AUE_AUDITON_SETPMASK",
        "AUE_AUDITON_GETKAUDIT",
        "AUE_AUDITON_SETKAUDIT",
        "AUE_AUDITON_OTHER",
    ]
    ev = event(6172, 2)
    assert (ev["event_name"], ev["event_description"], ev["event_classes"]) == ("AUE_ssh", "login - ssh", ["lo"])


def test_openbsm_event_table_used_for_v11() -> None:
    lines = _data_lines(BSM_FIXTURES / "openbsm" / "etc_audit_event")
    assert len(lines) == 677
    assert event(32800, 11)["event_name"] == "AUE_openssh"
    assert event(45029, 11)["event_name"] == "AUE_audit_recovery"
    assert event(45029, 2)["event_name"] is None  # not illumos


def mask_classes(mask: int, version: int) -> list[str]:
    """The classes of an audit mask, as the decoder annotates an auditon `as_success` argument with them."""
    record = B.record(B.header32(133, 1, 0, version=version), B.arg32(1, mask, "as_success"), B.return32(0, 0))
    classes: list[str] = bsm_raw(record)["tokens"][0]["value_classes"]
    return classes


def error_of(errval: int, retval: int, *, event_number: int = 1, version: int = 2) -> str | None:
    """The error name the decoder gives a return token."""
    record = B.record(B.header32(event_number, 1, 0, version=version), B.return32(errval, retval))
    error: str | None = bsm_raw(record)["tokens"][0]["error"]
    return error


def value_text(event_number: int, desc: str, value: int) -> str | None:
    record = B.record(B.header32(event_number, 1, 0, version=2), B.arg32(1, value, desc))
    text: str | None = bsm_raw(record)["tokens"][0].get("value_text")
    return text


def test_class_masks_errno_signals() -> None:
    assert mask_classes(0x00008000, 2) == ["cy"]
    assert mask_classes(0x00031000, 2) == ["lo", "ss", "as"]  # meta-class am is not repeated
    assert mask_classes(0xFFFFFFFF, 2) == ["all"]
    assert error_of(151, -1) == "ESTALE" and error_of(75, -1) is None  # illumos errno
    assert error_of(199, -1, version=11) == "ENOATTR" and error_of(199, -1) is None  # BSM errno, not illumos
    assert [value_text(15, "signal", n) for n in (9, 41, 42)] == ["SIGKILL", "SIGINFO", "SIGRTMIN"]
    setppriv = next(n for n in range(65536) if event(n, 2)["event_name"] == "AUE_SETPPRIV")
    assert [value_text(setppriv, "op", n) for n in range(4)] == ["PRIV_ON", "PRIV_OFF", "PRIV_SET", None]
    assert error_of(1, 1003, event_number=6172) == "ADT_FAIL_VALUE_AUTH"  # user-level illumos event


def test_trail_items_and_empty_file(tmp_path: Path) -> None:
    rec = B.record(B.header64(23, 1, 2), B.return32(0, 0))
    data = B.file64(7, 250, "") + rec + B.file64(9, 0, "next")
    items = bsm_items(data)
    assert [i["item"] for i in items] == ["file", "record", "file"]
    assert items[0]["time_ns"] == 7 * 10**9 + 250_000
    assert items[2]["name"] == "next"
    assert bytes.fromhex(items[1]["raw"]) == rec
    f = tmp_path / "t"
    f.write_bytes(data)
    assert [r["raw"] for r in file_records(f)] == [rec.hex()]
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    _kind, records = read_input(str(empty))
    assert list(records) == []


def test_trail_file_with_garbage_resyncs(tmp_path: Path) -> None:
    rec = B.record(B.header64(23, 1, 2), B.path("/p"), B.return32(0, 0))
    f = tmp_path / "g"
    f.write_bytes(rec + b"\x00\x01garbage\x02" + rec)
    assert [r["offset"] for r in file_records(f)] == [0, len(rec), len(rec) + 10]
    recs = bsm_records(f.read_bytes())
    assert [r["offset"] for r in recs] == [0, len(rec), len(rec) + 10]
    assert [bool(r["errors"]) for r in recs] == [False, True, False]
    assert recs[1]["errors"][0].startswith(f"no BSM header at offset {len(rec)}")
