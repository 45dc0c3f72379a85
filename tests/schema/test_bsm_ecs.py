"""BSM record -> ECS document (the native core, as the pipeline builds it): exact values for hand-built illumos
records and the OpenBSM fixtures."""

from __future__ import annotations

from typing import Any

import pytest

from auditrecv.spool.record import Source
from tests.golden.native_core import bsm_document, bsm_raw, bsm_records, get, raw_bytes
from tests.paths import BSM_FIXTURES
from tests.schema import bsm_build as b

SOURCE = Source("audit_remote", "192.0.2.7", 40001, "krb5", "host/cn1.example.com@EXAMPLE.COM", True, "main")
OBSERVER = {"hostname": "collector1", "name": "auditrecv-test", "version": "0.1.0"}
RECEIVED = 1_700_000_100_000_000_001

ABSENT = object()

CASES: dict[str, dict[str, Any]] = {
    "execve_zone": {
        "@timestamp": "2023-11-14T22:13:20.123456789Z",  # every nanosecond of the header kept
        "event.kind": "event",
        "event.category": ["process"],
        "event.type": ["start"],
        "event.action": "executed",
        "event.outcome": "success",
        "event.module": "bsm",
        "event.dataset": "illumos.audit",
        "event.code": "23",
        "event.created": "2023-11-14T22:15:00.000000001Z",
        "process.pid": 4242,
        "process.executable": "/usr/bin/curl",
        "process.name": "curl",
        "process.args": ["curl", "-s", "https://example.com/"],
        "process.args_count": 3,
        "process.title": "curl -s https://example.com/",
        "user.id": "1001",
        "user.effective.id": "1001",
        "user.audit.id": "1001",
        "user.group.id": "10",
        "file.path": "/usr/bin/curl",
        "file.mode": "0755",
        "file.type": "file",
        "file.uid": "0",
        "file.gid": "2",
        "file.inode": "5000000123",  # 64-bit node id (the original read 32 bits)
        "container.id": "webzone",
        "container.name": "webzone",
        "container.runtime": "zone",
        "bsm.zonename": "webzone",
        "bsm.session": "77",
        "bsm.terminal.rport": 61707,
        "bsm.terminal.lport": 22,
        "host.name": "cn1.example.com",
        "host.ip": ["192.0.2.7"],
        "observer.hostname": "collector1",
        "observer.product": "auditrecv",
        "related.ip": ["192.0.2.7", "198.51.100.23"],
        "related.user": ["1001"],
        "related.hosts": ["cn1.example.com"],
        "error.code": ABSENT,
        "auditrecv.source.peer_port": 40001,
        "auditrecv.source.principal": "host/cn1.example.com@EXAMPLE.COM",
    },
    "execve_denied": {
        "@timestamp": "2023-11-14T22:13:21.000000005Z",
        "event.outcome": "failure",
        "event.action": "executed",
        "error.code": "EACCES",
        "error.message": "Permission denied",
        "process.executable": "/usr/bin/curl",
        "process.args": ["curl", "http://203.0.113.1/"],
        "user.id": "1002",
        "container.id": ABSENT,  # the global zone is the host, not a container
        "bsm.zonename": "global",
        "bsm.return.errval": 13,
        "bsm.return.retval": -1,
    },
    "ssh_login": {
        "event.category": ["authentication", "session"],
        "event.type": ["start"],
        "event.action": "logged-in",
        "event.outcome": "success",
        "event.code": "6172",
        "source.ip": "198.51.100.23",
        "source.port": 61707,
        "network.direction": "ingress",
        "user.audit.id": "1001",
        "bsm.texts": ["successful login alice"],
        "bsm.summary.object.type": "user-session",
        "bsm.summary.object.primary": "198.51.100.23",
    },
    "su_failed": {
        "event.category": ["authentication", "session"],
        "event.action": "switched-user-to",
        "event.outcome": "failure",
        "error.code": "ADT_FAIL_VALUE_AUTH",
        "bsm.return.errval": 255,
        "bsm.return.retval": 1003,
        "bsm.summary.object.primary": "root",
    },
    "connect": {
        "event.category": ["network"],
        "event.type": ["connection", "start"],
        "event.action": "connected-to",
        "source.ip": "10.0.0.5",
        "source.port": 40000,
        "destination.ip": "203.0.113.9",
        "destination.port": 443,
        "network.transport": "tcp",
        "network.type": "ipv4",
        "network.direction": "egress",
        "related.ip": ["192.0.2.7", "198.51.100.23", "10.0.0.5", "203.0.113.9"],
    },
    "accept": {
        "event.action": "accepted-connection-from",
        "source.ip": "198.51.100.23",
        "source.port": 61707,
        "destination.ip": "10.0.0.5",
        "destination.port": 22,
        "network.direction": "ingress",
        "user.audit.id": ABSENT,  # 0xFFFFFFFE = AU_NOAUDITID
        "user.id": "0",
    },
    "rename": {
        "event.category": ["file"],
        "event.type": ["change"],
        "event.action": "renamed",
        "file.path": "/etc/passwd.new",
        "file.target_path": "/etc/passwd",
        "file.inode": "42",
        "file.mode": "0644",
        "bsm.paths": ["/etc/passwd.new", "/etc/passwd"],
        "user.id": "1001",
        "user.effective.id": "0",
        "related.user": ["1001", "0"],
    },
    "pfexec": {
        "event.category": ["process", "iam"],
        "event.type": ["start", "admin"],
        "event.action": "executed-with-privileges",
        "process.executable": "/usr/sbin/zfs",
        "bsm.privileges_used": ["sys_mount"],
        "bsm.texts": ["first text", "second text"],
    },
    "audit_policy": {
        "event.category": ["configuration"],
        "event.type": ["change"],
        "event.action": "changed-audit-configuration",
        "bsm.event_name": "AUE_AUDITON_SPOLICY",
        "bsm.classes": ["as"],
    },
    "kill": {
        "event.category": ["process"],
        "event.type": ["end"],
        "event.action": "killed-pid",
        "bsm.summary.object.type": "process",
        "bsm.summary.object.primary": "9999",
        "process.pid": 810,
    },
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_handbuilt_illumos_record_maps_to_exact_ecs_values(name: str) -> None:
    assert bsm_raw(b.ALL[name])["errors"] == []
    doc = bsm_document(b.ALL[name], SOURCE, OBSERVER, received_ns=RECEIVED)
    for field, expected in CASES[name].items():
        actual = doc.get(field) if field == "@timestamp" else get(doc, field)
        if expected is ABSENT:
            assert actual is None, f"{name}: {field} should be absent, is {actual!r}"
        else:
            assert actual == expected, f"{name}: {field} = {actual!r}, expected {expected!r}"


@pytest.mark.parametrize("name", sorted(b.ALL))
def test_every_token_is_kept_in_order(name: str) -> None:
    record = bsm_raw(b.ALL[name])
    doc = bsm_document(b.ALL[name], SOURCE, OBSERVER, received_ns=RECEIVED)
    assert [t["token"] for t in doc["bsm"]["tokens"]] == [t["token"] for t in record["tokens"]]
    assert len(doc["bsm"]["tokens"]) >= 3


def _praudit_records(name: str) -> list[list[list[str]]]:
    """``praudit -r`` output -> records -> tokens -> comma-separated fields (token id first)."""
    records: list[list[list[str]]] = []
    for line in (BSM_FIXTURES / "praudit-openbsm" / name).read_text(encoding="utf-8").splitlines():
        fields = line.split(",")
        if fields[0] in ("20", "21", "116", "121"):  # header32/_ex, header64/_ex
            records.append([fields])
        elif records and line:
            records[-1].append(fields)
    return records


@pytest.mark.parametrize(
    ("trail", "praudit"),
    [
        ("plaso/apple.bsm", "plaso_apple.bsm.praudit-r.txt"),
        ("openbsm/samples/execve-long-args.trail", "openbsm_samples_execve-long-args.trail.praudit-r.txt"),
    ],
)
def test_openbsm_fixtures_agree_with_openbsm_praudit(trail: str, praudit: str) -> None:
    """OpenBSM's own praudit is the independent reference for ids, times, paths, texts and outcome."""
    records = bsm_records((BSM_FIXTURES / trail).read_bytes())
    expected = _praudit_records(praudit)
    assert len(records) == len(expected) > 0
    for record, tokens in zip(records, expected, strict=True):
        doc = bsm_document(raw_bytes(record), SOURCE, OBSERVER, received_ns=RECEIVED)
        header = tokens[0]
        assert doc["event"]["code"] == header[3]
        sec, msec = int(header[5]), int(header[6])
        assert doc["@timestamp"] == _iso(sec) + f".{msec:03d}000000Z"
        subjects = [t for t in tokens if t[0] == "36"]
        if subjects:
            auid, euid, egid, ruid, rgid, pid = subjects[0][1:7]
            assert get(doc, "user.id") == ruid
            assert get(doc, "user.effective.id") == euid
            assert get(doc, "user.group.id") == rgid
            assert get(doc, "user.effective.group.id") == egid
            assert get(doc, "user.audit.id") == (None if auid == "-1" else auid)
            assert get(doc, "process.pid") == int(pid)
        paths = [",".join(t[1:]) for t in tokens if t[0] == "35"]
        assert (get(doc, "bsm.paths") or []) == paths
        texts = [",".join(t[1:]) for t in tokens if t[0] == "40"]
        assert (get(doc, "bsm.texts") or []) == texts
        returns = [t for t in tokens if t[0] == "39"]
        if returns:
            assert doc["event"]["outcome"] == ("success" if returns[-1][1] == "0" else "failure")
        args = [t[1:] for t in tokens if t[0] == "60"]
        if args:
            assert get(doc, "process.args") == args[0]
            assert get(doc, "process.args_count") == len(args[0])
            assert get(doc, "process.executable") == paths[0]
        attrs = [t for t in tokens if t[0] == "62"]
        if attrs and paths:
            assert get(doc, "file.mode") == f"{int(attrs[0][1], 8) & 0o7777:04o}"
            assert get(doc, "file.inode") == attrs[0][5]


def _iso(sec: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def test_openbsm_dataset_and_categories_for_macos_trail() -> None:
    records = bsm_records((BSM_FIXTURES / "plaso" / "apple.bsm").read_bytes())
    docs = [bsm_document(raw_bytes(r), SOURCE, OBSERVER, received_ns=RECEIVED) for r in records]
    assert {d["event"]["dataset"] for d in docs} == {"openbsm.audit"}
    startup = next(d for d in docs if d["bsm"]["event_name"] == "AUE_audit_startup")
    assert startup["event"]["action"] == "started-audit"
    assert startup["event"]["category"] == ["process"]
    assert startup["event"]["type"] == ["start"]


def test_unknown_event_falls_back_to_its_classes() -> None:
    raw = b.record(b.header32(6246, b.T_SEC, 0), b.text("infected"), b.return32(0, 0))  # AUE_vscan_quarantine: na
    doc = bsm_document(raw, SOURCE, OBSERVER, received_ns=RECEIVED)
    assert doc["event"]["action"] == "vscan_quarantine"
    assert doc["event"]["category"] == ["network"]
    assert doc["event"]["type"] == ["info"]


def test_truncated_record_keeps_what_was_decoded_and_is_tagged() -> None:
    raw = b.EXECVE_ZONE
    damaged = raw[:1] + raw[1:5] + raw[5:-12]  # header claims more bytes than there are
    assert bsm_raw(damaged)["errors"]
    doc = bsm_document(damaged, SOURCE, OBSERVER, received_ns=RECEIVED)
    assert "decode_error" in doc["tags"]
    assert doc["event"]["original"] == damaged.hex()
    assert get(doc, "process.executable") == "/usr/bin/curl"


def test_unauthenticated_sender_is_named_by_its_address() -> None:
    src = Source("audit_remote", "192.0.2.99", 1234, "dummy", "", False, "main")
    doc = bsm_document(b.SSH_LOGIN, src, OBSERVER, received_ns=RECEIVED)
    assert doc["host"]["name"] == "192.0.2.99"
    assert "hostname" not in doc["host"]
    assert doc["host"]["ip"] == ["192.0.2.99"]
