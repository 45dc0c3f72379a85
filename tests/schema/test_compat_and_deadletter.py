"""The auditrecv-v1 compatibility shape (original Erlang auditrecv, defects fixed) and dead-letter documents, as
the native core builds them for the pipeline."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

from auditrecv import _native
from auditrecv.spool.record import Source
from tests.golden.native_core import bsm_document, linux_documents
from tests.schema import bsm_build as b

SRC = Source("audit_remote", "192.0.2.7", 40001, "krb5", "host/cn1.example.com@EXAMPLE.COM", True, "main")


def v1(raw: bytes) -> dict[str, Any]:
    return bsm_document(raw, SRC, {}, received_ns=1, schema="auditrecv-v1")


def zone_alias_enrichment(zone: str, alias: str) -> dict[str, Any]:
    """The per-sender enrichment values naming a zone's alias (what the enricher looked up)."""
    info = {"uuid": zone, "alias": alias, "owner_uuid": None, "owner_login": None, "brand": None}
    return {
        "hostname": None,
        "labels": {},
        "zone_labels": {},
        "zones": {zone: info | {"server_uuid": None, "tags": {}}},
    }


def test_execve_has_the_original_field_names_and_values() -> None:
    ((_, enriched, _),) = _native.ecs_bsm_documents(
        [b.EXECVE_ZONE],
        schema="auditrecv-v1",
        received_ns=1,
        source=SRC.to_dict(),
        observer={},
        enrichment=zone_alias_enrichment("webzone", "web-prod-1"),
    )
    assert enriched is not None and json.loads(enriched)["zonealias"] == "web-prod-1"  # from enrichment
    assert v1(b.EXECVE_ZONE) | {"zonealias": "web-prod-1"} == {
        "@timestamp": "2023-11-14T22:13:20.123456789Z",
        "time": "2023-11-14T22:13:20.123456789Z",
        "version": 2,
        "event": "execve",
        "from": "192.0.2.7",
        "path": "/usr/bin/curl",
        # attr32 node id is 64 bits: 5000000123 = 0x12A05F27B (the original read 32 bits, bsm.md 13 #1)
        "attributes": {
            "mode_octal": "100755",
            "uid": 0,
            "gid": 2,
            "fsid": 65537,
            "inode_hex": "12A05F27B",
            "devid": "0",
        },
        "subject": {
            "audit_id": 1001,
            "uid": 1001,
            "gid": 10,
            "ruid": 1001,
            "rgid": 10,
            "pid": 4242,
            "session_id": 77,
            "terminal": {"ip": "198.51.100.23", "local_port": 22, "remote_port": 61707},
        },
        "exec_args": ["curl", "-s", "https://example.com/"],
        "return": 0,
        "errno": "0",
        "zonename": "webzone",
        "zonealias": "web-prod-1",
    }


def test_repeated_tokens_become_lists_instead_of_overwriting() -> None:
    rename = v1(b.RENAME)
    assert rename["path"] == ["/etc/passwd.new", "/etc/passwd"]
    assert [a["inode_hex"] for a in rename["attributes"]] == ["2A", "29"]
    pfexec = v1(b.PFEXEC)
    assert pfexec["text"] == ["first text", "second text"]
    assert pfexec["privs"] == {"Inherit": ["file_dac_read,sys_mount", "file_dac_read,sys_mount,sys_config"]}
    assert pfexec["used_privs"] == {"privs": "sys_mount", "success": 1}


def test_errno_signal_and_unset_audit_id_keep_the_original_style() -> None:
    assert v1(b.EXECVE_DENIED)["errno"] == "eacces"
    assert v1(b.EXECVE_DENIED)["return"] == -1
    assert v1(b.SU_FAILED)["errno"] == "adt_fail_value_auth"
    kill = v1(b.KILL)
    assert kill["args"] == {"signal": "sigkill"}
    assert kill["process"]["pid"] == 9999
    assert v1(b.ACCEPT)["subject"]["audit_id"] == -2
    assert v1(b.ACCEPT)["subject"]["terminal"] == {"dev": 0}


def test_tokens_without_a_v1_field_are_kept_not_fatal() -> None:
    connect = v1(b.CONNECT)
    assert connect["args"] == {"fd": 3}
    assert [t["token"] for t in connect["other_tokens"]] == ["socket"]
    assert connect["return"] == 0 and connect["zonename"] == "webzone"  # tokens after it still parsed


def test_exec_env_entry_without_equals_is_kept() -> None:
    env = struct.pack(">BI", 0x3D, 2) + b"PATH=/usr/bin\0ODD\0"
    raw = b.record(b.header32(23, b.T_SEC, 0), b.path("/bin/true"), env, b.return32(0, 0))
    assert v1(raw)["exec_env"] == {"PATH": "/usr/bin", "ODD": ""}


def test_linux_event_in_the_v1_shape() -> None:
    lines = [
        "type=SYSCALL msg=audit(1700000000.123:42): arch=c000003e syscall=59 success=no exit=-13 a0=1 a1=2 a2=3 "
        "a3=4 items=1 ppid=1 pid=4321 auid=1001 uid=1001 gid=1001 euid=0 suid=1001 fsuid=1001 egid=1001 "
        'sgid=1001 fsgid=1001 tty=pts0 ses=3 comm="curl" exe="/usr/bin/curl" key="exec"',
        'type=PATH msg=audit(1700000000.123:42): item=0 name="/usr/bin/curl" inode=5 dev=08:01 mode=0100755 '
        "ouid=0 ogid=0 rdev=00:00 nametype=NORMAL",
    ]
    ((_, doc),) = linux_documents(
        lines, source=Source("audisp_remote", "192.0.2.9", 5000), observer={}, received_ns=1, schema="auditrecv-v1"
    )
    assert doc["time"] == "2023-11-14T22:13:20.123000000Z"
    assert doc["event"] == "execve"
    assert doc["from"] == "192.0.2.9"
    assert doc["path"] == "/usr/bin/curl"
    assert doc["errno"] == "eacces"
    assert doc["return"] == -13
    assert doc["subject"] == {
        "audit_id": 1001,
        "uid": 0,
        "gid": 1001,
        "ruid": 1001,
        "rgid": 1001,
        "pid": 4321,
        "session_id": 3,
    }
    assert doc["keys"] == ["exec"]
    assert [r["type"] for r in doc["records"]] == ["SYSCALL", "PATH"]


def test_dead_letter_keeps_the_raw_bytes_and_says_why() -> None:
    raw = b"\x14\x00\x00\x00\xff garbage \x00"
    doc = bsm_document(raw, SRC, {"hostname": "rx"}, received_ns=1_700_000_000_000_000_000)
    assert doc["@timestamp"] == "2023-11-14T22:13:20.000000000Z"
    assert doc["event"]["kind"] == "pipeline_error"
    assert doc["event"]["module"] == "bsm"
    assert doc["error"] == {"type": "decode_error", "message": "truncated header at offset 0"}
    assert doc["event"]["original"] == raw.hex()
    assert base64.b64decode(doc["auditrecv"]["raw_base64"]) == raw
    assert doc["tags"] == ["decode_error", "dead_letter"]
    assert doc["host"]["name"] == "cn1.example.com"
    assert doc["observer"]["hostname"] == "rx"
    # a time beyond what @timestamp holds (a year beyond 9999 was a dead letter): the arrival time stands for
    # it, the document tagged, the line's text kept
    line = b"type=SYSCALL msg=audit(253402300800.000:1): comm=\xff"
    ((_, linux),) = linux_documents([line], source=Source("audisp_remote", "192.0.2.9"), observer={}, received_ns=1)
    assert linux["tags"] == ["value_out_of_range"] and linux["@timestamp"] == "1970-01-01T00:00:00.000000001Z"
    assert linux["event"]["original"] == "type=SYSCALL msg=audit(253402300800.000:1): comm=\\xff"
    assert linux["host"]["name"] == "192.0.2.9"
