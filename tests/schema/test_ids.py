"""Document identity (the native core's ids, as the pipeline sends them as the bulk ``_id``): a retransmitted
record maps to the same _id; different records never collide; both recipes recomputed here independently."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from auditrecv.spool.record import Source
from tests.golden.native_core import (
    bsm_document_id,
    bsm_documents,
    bsm_records,
    linux_documents,
    linux_events,
    raw_bytes,
)
from tests.paths import BSM_FIXTURES, LINUX_FIXTURES
from tests.schema import bsm_build as b
from tests.schema.fixtures import golden_cases

KRB = Source("audit_remote", "192.0.2.7", 40001, "krb5", "host/cn1.example.com@EXAMPLE.COM", True, "a")


def recipe(kind: str, identity: str, parts: list[bytes]) -> str:
    """sink-and-gss.md A6.3 + docs/schema.md: blake2b-128, person auditrecv-id-v1, length-framed parts."""
    h = hashlib.blake2b(digest_size=16, person=b"auditrecv-id-v1")
    for part in (kind.encode(), identity.encode("utf-8", "surrogateescape"), *parts):
        h.update(len(part).to_bytes(8, "big") + part)
    return base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()


def linux_parts(event: dict[str, Any]) -> list[bytes]:
    """A Linux event's identity (``linux_id_parts``): ``node|sec.msec:serial``, then its raw lines sorted."""
    head = f"{event['node'] or ''}|{event['id'] or ''}".encode("utf-8", "surrogateescape")
    return [head, *sorted(str(r["raw"]).encode("utf-8", "surrogateescape") for r in event["records"])]


def test_id_is_22_base64url_characters_of_the_documented_recipe() -> None:
    raw = b.EXECVE_ZONE
    got = bsm_document_id(raw, KRB)
    assert got == recipe("bsm", "principal:host/cn1.example.com@EXAMPLE.COM", [raw])
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", got)


def test_linux_id_is_the_documented_recipe() -> None:
    src = Source("audisp_remote", "192.0.2.9", 5000)
    lines = [line for *_, lines, _ in golden_cases()[:20] for line in lines]
    events = linux_events(lines)
    docs = linux_documents(lines, source=src, observer={}, received_ns=1)
    assert len(docs) == len(events) > 10
    for (doc_id, _), event in zip(docs, events, strict=True):
        assert doc_id == recipe("linux", "peer:192.0.2.9", linux_parts(event))


def test_retransmission_after_reconnect_keeps_the_id() -> None:
    """New TCP port, other listener, later arrival: still the same sender and bytes, so the same id."""
    again = Source("audit_remote", "192.0.2.7", 51999, "krb5", "host/cn1.example.com@EXAMPLE.COM", True, "b")
    assert bsm_document_id(b.EXECVE_ZONE, KRB) == bsm_document_id(bytes(b.EXECVE_ZONE), again)


def test_authenticated_sender_keeps_its_id_across_address_changes() -> None:
    moved = Source("audit_remote", "198.51.100.200", 1, "krb5", "host/cn1.example.com@EXAMPLE.COM", True)
    assert bsm_document_id(b.SSH_LOGIN, KRB) == bsm_document_id(b.SSH_LOGIN, moved)


def test_same_bytes_from_different_hosts_differ() -> None:
    other = Source("audit_remote", "192.0.2.8", 40001, "krb5", "host/cn2.example.com@EXAMPLE.COM", True)
    plain_a = Source("audit_remote", "192.0.2.8", 40001)
    plain_b = Source("audit_remote", "192.0.2.9", 40001)
    ((linux_id, _),) = linux_documents([b.SSH_LOGIN], source=plain_b, observer={}, received_ns=1)
    ids = {
        bsm_document_id(b.SSH_LOGIN, KRB),
        bsm_document_id(b.SSH_LOGIN, other),
        bsm_document_id(b.SSH_LOGIN, plain_a),
        bsm_document_id(b.SSH_LOGIN, plain_b),
        linux_id,  # the same bytes read as a Linux line from the same sender
    }
    assert len(ids) == 5


def test_part_boundaries_matter() -> None:
    """The recipe frames every part with its length (the native ids follow it: tests above)."""
    assert recipe("linux", "peer:192.0.2.9", [b"ab", b"c"]) != recipe("linux", "peer:192.0.2.9", [b"a", b"bc"])


def test_no_collisions_among_all_fixture_records_and_events() -> None:
    src = Source("import", "fixtures")
    seen: dict[str, bytes] = {}
    distinct_inputs = 0
    raws: set[bytes] = set()
    for name in ("plaso/apple.bsm", "plaso/openbsm.bsm", "openbsm/samples/execve-long-args.trail"):
        raws.update(raw_bytes(r) for r in bsm_records((BSM_FIXTURES / name).read_bytes()))
    raws.update(b.ALL.values())
    ordered = sorted(raws)
    for raw, (doc_id, _, _) in zip(
        ordered, bsm_documents(ordered, source=src, observer={}, received_ns=1), strict=True
    ):
        assert doc_id not in seen
        seen[doc_id] = raw
        distinct_inputs += 1
    linux_ids: dict[tuple[bytes, ...], str] = {}  # each distinct event identity, with its native id
    logs = [lines for _, _, lines, _ in golden_cases()]
    logs += [
        log.read_text(encoding="utf-8", errors="replace").splitlines()
        for log in sorted(
            (LINUX_FIXTURES / "third_party" / "audit-userspace-v3.0.9" / "auparse" / "test").glob("*.log")
        )
    ]
    for lines in logs:
        lines = [line for line in lines if line.strip()]
        docs = linux_documents(lines, source=src, observer={}, received_ns=1)
        for event, (doc_id, _) in zip(linux_events(lines), docs, strict=True):
            linux_ids[tuple(linux_parts(event))] = doc_id
    for parts, doc_id in linux_ids.items():
        assert doc_id not in seen
        seen[doc_id] = b"|".join(parts)
        distinct_inputs += 1
    assert distinct_inputs == len(seen) > 150


def test_linux_id_ignores_record_arrival_order() -> None:
    lines = [
        "type=SYSCALL msg=audit(1700000000.123:42): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 "
        "a3=4 items=0 ppid=1 pid=4321 auid=1001 uid=1001 gid=1001 euid=1001 suid=1001 fsuid=1001 egid=1001 "
        'sgid=1001 fsgid=1001 tty=pts0 ses=3 comm="id" exe="/usr/bin/id" key=(null)',
        'type=CWD msg=audit(1700000000.123:42): cwd="/tmp"',
        "type=PROCTITLE msg=audit(1700000000.123:42): proctitle=6964",
    ]
    src = Source("audisp_remote", "192.0.2.9", 5000)
    ((forward, _),) = linux_documents(lines, source=src, observer={}, received_ns=1)
    ((backward, _),) = linux_documents([lines[1], lines[0], lines[2]], source=src, observer={}, received_ns=2)
    assert forward == backward
    other_port = Source("audisp_remote", "192.0.2.9", 6000)
    assert forward == linux_documents(lines, source=other_port, observer={}, received_ns=1)[0][0]
