"""Document identity: a retransmitted record maps to the same _id; different records never collide."""

from __future__ import annotations

import base64
import hashlib
import re

from auditrecv.decode.bsm import decode_record, iter_records
from auditrecv.decode.linux import decode_events, interpret
from auditrecv.schema import bsm_id_parts, document_id, linux_id_parts
from auditrecv.spool.record import Source
from tests.paths import BSM_FIXTURES, LINUX_FIXTURES
from tests.schema import bsm_build as b
from tests.schema.fixtures import golden_cases

KRB = Source("audit_remote", "192.0.2.7", 40001, "krb5", "host/cn1.example.com@EXAMPLE.COM", True, "a")


def test_id_is_22_base64url_characters_of_the_documented_recipe() -> None:
    """Recomputed here from sink-and-gss.md A6.3 + docs/schema.md: blake2b-128, length-framed parts."""
    raw = b.EXECVE_ZONE
    h = hashlib.blake2b(digest_size=16, person=b"auditrecv-id-v1")
    for part in (b"bsm", b"principal:host/cn1.example.com@EXAMPLE.COM", raw):
        h.update(len(part).to_bytes(8, "big") + part)
    expected = base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()
    got = document_id("bsm", KRB, bsm_id_parts(decode_record(raw)))
    assert got == expected
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", got)


def test_retransmission_after_reconnect_keeps_the_id() -> None:
    """New TCP port, other listener, later arrival: still the same sender and bytes, so the same id."""
    again = Source("audit_remote", "192.0.2.7", 51999, "krb5", "host/cn1.example.com@EXAMPLE.COM", True, "b")
    first = document_id("bsm", KRB, bsm_id_parts(decode_record(b.EXECVE_ZONE)))
    second = document_id("bsm", again, bsm_id_parts(decode_record(bytes(b.EXECVE_ZONE))))
    assert first == second


def test_authenticated_sender_keeps_its_id_across_address_changes() -> None:
    moved = Source("audit_remote", "198.51.100.200", 1, "krb5", "host/cn1.example.com@EXAMPLE.COM", True)
    assert document_id("bsm", KRB, [b.SSH_LOGIN]) == document_id("bsm", moved, [b.SSH_LOGIN])


def test_same_bytes_from_different_hosts_differ() -> None:
    other = Source("audit_remote", "192.0.2.8", 40001, "krb5", "host/cn2.example.com@EXAMPLE.COM", True)
    plain_a = Source("audit_remote", "192.0.2.8", 40001)
    plain_b = Source("audit_remote", "192.0.2.9", 40001)
    ids = {
        document_id("bsm", KRB, [b.SSH_LOGIN]),
        document_id("bsm", other, [b.SSH_LOGIN]),
        document_id("bsm", plain_a, [b.SSH_LOGIN]),
        document_id("bsm", plain_b, [b.SSH_LOGIN]),
        document_id("linux", plain_b, [b.SSH_LOGIN]),
    }
    assert len(ids) == 5


def test_part_boundaries_matter() -> None:
    src = Source("audisp_remote", "192.0.2.9")
    assert document_id("linux", src, [b"ab", b"c"]) != document_id("linux", src, [b"a", b"bc"])


def test_no_collisions_among_all_fixture_records_and_events() -> None:
    src = Source("import", "fixtures")
    seen: dict[str, bytes] = {}
    distinct_inputs = 0
    raws: set[bytes] = set()
    for name in ("plaso/apple.bsm", "plaso/openbsm.bsm", "openbsm/samples/execve-long-args.trail"):
        for record in iter_records((BSM_FIXTURES / name).read_bytes()):
            raws.add(record.raw)
    raws.update(b.ALL.values())
    for raw in raws:
        doc_id = document_id("bsm", src, [raw])
        assert doc_id not in seen
        seen[doc_id] = raw
        distinct_inputs += 1
    linux_keys: set[tuple[bytes, ...]] = set()
    for _, _, lines, _ in golden_cases():
        for event in decode_events(lines):
            linux_keys.add(tuple(linux_id_parts(event)))
    for log in sorted((LINUX_FIXTURES / "third_party" / "audit-userspace-v3.0.9" / "auparse" / "test").glob("*.log")):
        for event in decode_events(log.read_text(encoding="utf-8", errors="replace").splitlines()):
            linux_keys.add(tuple(linux_id_parts(event)))
    for parts in linux_keys:
        doc_id = document_id("linux", src, list(parts))
        assert doc_id not in seen
        seen[doc_id] = b"|".join(parts)
        distinct_inputs += 1
    assert distinct_inputs == len(seen) > 150


def test_linux_id_ignores_record_arrival_order_and_accepts_the_interpreted_dict() -> None:
    lines = [
        "type=SYSCALL msg=audit(1700000000.123:42): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 "
        "a3=4 items=0 ppid=1 pid=4321 auid=1001 uid=1001 gid=1001 euid=1001 suid=1001 fsuid=1001 egid=1001 "
        'sgid=1001 fsgid=1001 tty=pts0 ses=3 comm="id" exe="/usr/bin/id" key=(null)',
        'type=CWD msg=audit(1700000000.123:42): cwd="/tmp"',
        "type=PROCTITLE msg=audit(1700000000.123:42): proctitle=6964",
    ]
    src = Source("audisp_remote", "192.0.2.9", 5000)
    (forward,) = list(decode_events(lines))
    (backward,) = list(decode_events([lines[1], lines[0], lines[2]]))
    a = document_id("linux", src, linux_id_parts(forward))
    assert a == document_id("linux", src, linux_id_parts(backward))
    assert a == document_id("linux", Source("audisp_remote", "192.0.2.9", 6000), linux_id_parts(interpret(forward)))
