"""Deterministic document ids, so retransmitted records land on the same document.

Both forwarders retransmit after a reconnect (illumos audit_remote resends unacked records, audisp-remote
resends the line it had not seen acked); with ``create`` and this id the engine answers 409 and the
duplicate is dropped. The id therefore depends only on who the host is and what it said: never on the
TCP source port, the connection, the listener or the arrival time.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from typing import Any

from auditrecv.spool.record import Source

_PERSON = b"auditrecv-id-v1"  # domain separation: a change of recipe must change every id


def host_identity(source: Source) -> str:
    """Who the sender is, as stably as we know it: the authenticated principal, else its address.

    A Kerberos principal survives address changes (DHCP, NAT rebinding); an unauthenticated sender is
    only its address. The port is left out on purpose: every reconnect gets a new one.
    """
    if source.authenticated and source.principal:
        return "principal:" + source.principal
    return "peer:" + source.peer


def _frame(part: bytes) -> bytes:
    """Length-prefix a part so that (b"ab", b"c") and (b"a", b"bc") hash differently."""
    return len(part).to_bytes(8, "big") + part


def document_id(kind: str, source: Source, raw_parts: Iterable[bytes]) -> str:
    """base64url(blake2b-128(kind, host identity, raw parts)) without padding: 22 characters.

    BSM: ``raw_parts`` = [the exact record bytes]. Linux: [event key ``node|sec.msec:serial``, then each
    raw record line of the event in arrival order] (see ``linux_id_parts``).
    """
    h = hashlib.blake2b(digest_size=16, person=_PERSON)
    h.update(_frame(kind.encode()))
    h.update(_frame(host_identity(source).encode("utf-8", "surrogateescape")))
    for part in raw_parts:
        h.update(_frame(part))
    return base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode("ascii")


def bsm_id_parts(record: Any) -> list[bytes]:
    """Identity of a BSM record: its exact bytes (a retransmission is byte-identical)."""
    return [bytes(record.raw)]


def linux_id_parts(event: Any) -> list[bytes]:
    """Identity of a Linux event: ``node|sec.msec:serial`` plus its raw record lines, sorted.

    The serial repeats across reboots and hosts, hence the node and the raw text; sorting makes the
    id independent of the order records happened to arrive in (interleaving differs on a resend).
    Accepts a ``LinuxEvent`` or its ``interpret()`` dict.
    """
    if isinstance(event, dict):
        node = event.get("node") or ""
        key = event.get("id") or ""
        lines = [str(r.get("raw", "")) for r in event.get("records") or []]
    else:
        node = event.node or ""
        key = event.records[0].msg_id if event.records else ""
        lines = [r.raw for r in event.records]
    head = f"{node}|{key or ''}".encode("utf-8", "surrogateescape")
    return [head, *sorted(line.encode("utf-8", "surrogateescape") for line in lines)]
