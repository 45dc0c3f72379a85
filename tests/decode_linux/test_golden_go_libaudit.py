"""Field-by-field comparison with elastic/go-libaudit's golden outputs (auparse per-record goldens and
aucoalesce per-event goldens).

Deliberate differences:
* go-libaudit's ``@timestamp`` drops trailing zeros of the fraction; compared as instants.
* aucoalesce strips a leading ``key=`` from rule keys (``key="key=net"`` -> tag ``net``); we keep the key
  exactly as the kernel sent it, like libauparse. Compared after removing that prefix.
* aucoalesce's ``process.title`` for a proctitle without NULs is the text as is; ours too. Where the
  kernel truncated proctitle (128 bytes), both keep the cut text.
* go-libaudit reads the test line whose ENRICHED separator was lost (``key=(null)ARCH=x86_64``) as key
  ``x86_64``; libauparse and we read "no key". That tag comparison is skipped.
* records go-libaudit failed to parse (no ``data``) are skipped.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.golden.native_core import linux_events

from .helpers import GO_LIBAUDIT, read_cases

AUPARSE_GOLDENS = sorted((GO_LIBAUDIT / "auparse" / "testdata").glob("*.log.golden"))
COALESCE_GOLDENS = sorted((GO_LIBAUDIT / "aucoalesce" / "testdata").glob("*.json.golden"))
PLAIN_FIELDS = ("exe", "comm", "cwd", "name", "proctitle", "syscall", "arch")
FAMILIES = {"inet": "ipv4", "inet6": "ipv6", "local": "unix", "netlink": "netlink"}


def _instant(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


@pytest.mark.parametrize("golden", AUPARSE_GOLDENS, ids=[p.name for p in AUPARSE_GOLDENS])
def test_auparse_golden_records(golden: Path) -> None:
    log = golden.with_suffix("")
    alone: dict[str, dict[str, Any]] = {}  # each line decoded alone: its record's event
    for line in log.read_text().split("\n"):
        for event in linux_events([line]):
            if event["error"] is None:
                alone[line[line.index("audit(") :] if "audit(" in line else line] = event
    compared = 0
    for expected in json.loads(golden.read_text()):
        data = expected.get("data") if expected else None
        if not data:
            continue
        event = alone[expected["raw_msg"]]
        (record,) = event["records"]
        fields, interpreted = record["fields"], record["interpreted"]  # interpret_field of each field
        assert event["serial"] == expected["sequence"]
        assert _instant(event["timestamp"] or "") == _instant(expected["@timestamp"])
        if not record["type"].startswith("UNKNOWN"):
            assert record["type"].lower() == expected["record_type"]
        for name in PLAIN_FIELDS:
            if name in data and name in fields:
                assert interpreted[name] == data[name], name
                compared += 1
        if "exit" in data:
            exit_value = int(fields["exit"])
            ours = interpreted["exit"].split("(")[0]
            assert ours == data["exit"] if exit_value < 0 else fields["exit"] == data["exit"]
            compared += 1
        for name in ("auid", "ses"):
            if data.get(name) == "unset":
                assert interpreted[name] == "unset"
                compared += 1
        if "result" in data and ("success" in fields or "res" in fields):
            raw = fields.get("success") or fields["res"].strip("'\"")
            ours = "success" if raw in ("yes", "success", "1") else "fail"
            assert ours == data["result"]
            compared += 1
        if "socket_family" in data:
            (sock,) = event["sockaddr"]  # decode_sockaddr of its saddr
            assert FAMILIES.get(sock["family"], sock["family"]) == data["socket_family"]
            if "socket_addr" in data:
                assert sock["address"] == data["socket_addr"]
                assert str(sock["port"]) == data["socket_port"]
            if "socket_path" in data:
                assert sock["path"] == data["socket_path"]
            compared += 1
    assert compared > 0


def _coalesce_expectations(event: dict[str, Any], golden: dict[str, Any]) -> int:
    """Compare our interpreted event with one aucoalesce golden event; returns the number of facts."""
    compared = 0
    assert event["serial"] == golden["sequence"]
    assert _instant(event["timestamp"]) == _instant(golden["@timestamp"])
    if golden.get("result") in ("success", "fail"):
        assert {"success": "success", "failure": "fail"}.get(event["outcome"]) == golden["result"]
        compared += 1
    if ("session" in golden and event["session"] is not None) or golden.get("session") == "unset":
        assert (event["session"] or "unset") == golden["session"]
        compared += 1
    if golden.get("tags") and not any(
        r["fields"].get("key", "").startswith("(null)") for r in event["records"] if "fields" in r
    ):
        assert [k.removeprefix("key=") for k in event["keys"]] == golden["tags"]
        compared += 1
    for name, value in ((golden.get("user") or {}).get("ids") or {}).items():
        ours = event["user"]["ids"].get(name, "missing")
        assert (ours if ours is not None else "unset") == value, name
        compared += 1
    process = golden.get("process") or {}
    mapping = {
        "pid": "pid",
        "ppid": "ppid",
        "title": "title",
        "name": "comm",
        "exe": "exe",
        "cwd": "cwd",
        "args": "args",
    }
    for name, ours_name in mapping.items():
        if name in process and ours_name in event["process"]:
            ours = event["process"][ours_name]
            assert (str(ours) if name in ("pid", "ppid") else ours) == process[name], name
            compared += 1
    data = golden.get("data") or {}
    if "syscall" in event:
        if "syscall" in data:
            assert event["syscall"]["name"] == data["syscall"]
            compared += 1
        if "arch" in data:
            assert event["syscall"]["arch"] == data["arch"]
            compared += 1
        if "exit" in data:
            assert (event["syscall"]["errno"] or str(event["syscall"]["exit"])) == data["exit"]
            compared += 1
    if "socket_addr" in data:
        assert event["sockaddr"][0]["address"] == data["socket_addr"]
        assert str(event["sockaddr"][0]["port"]) == data["socket_port"]
        compared += 1
    for ours, theirs in zip(event["paths"], golden.get("paths", []), strict=True):
        for name in ("name", "nametype", "dev", "mode", "rdev"):
            if name in theirs:
                assert str(ours.get(name)) == theirs[name], name
                compared += 1
        for name in ("inode", "item"):
            if name in theirs:
                assert str(ours[name]) == theirs[name]
        for name in ("ouid", "ogid"):
            if name in theirs:
                assert (ours[name] if ours[name] is not None else "4294967295") == theirs[name]
    return compared


@pytest.mark.parametrize("golden", COALESCE_GOLDENS, ids=[p.name for p in COALESCE_GOLDENS])
def test_aucoalesce_golden_events(golden: Path) -> None:
    cases = read_cases(golden.with_name(golden.name.replace(".json.golden", ".yaml")))
    compared = 0
    for expected in json.loads(golden.read_text()):
        events = linux_events([line for line in cases[expected["test_name"]] if line.strip()])
        assert len(events) == 1, expected["test_name"]
        compared += _coalesce_expectations(events[0], expected["event"])
    assert compared > 0
