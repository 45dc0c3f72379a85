"""The receive contract: what every protocol core speaks and what the one server drives.

A core (``audit_remote.AuditRemoteConnection``, ``audisp_remote.ManagedSession`` and its siblings)
is sans-I/O in the h11 sense: bytes and a clock value in (:meth:`ReceiveCore.receive_data`), events
and bytes out (the returned events, :meth:`ReceiveCore.data_to_send`). It never acks on its own: the
server asks for an ack (:meth:`ReceiveCore.ack`) only once the record is durably spooled, because an
ack hands responsibility for the record from the host to us. Security contexts come from outside
(:class:`SecurityContext`), so no core imports a GSS library; their failures are
:class:`SecurityFailure`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = [
    "AckToken",
    "Authenticated",
    "ConnectionFailed",
    "Event",
    "Heartbeat",
    "Outbox",
    "PrincipalPolicy",
    "ReceiveCore",
    "RecordReceived",
    "SecurityContext",
    "SecurityFailure",
    "SpoolState",
    "hold_beyond",
]

SpoolState = Literal["ok", "low", "full"]
# What a core needs back to build a record's ack: illumos MICs cover the whole plaintext (bytes),
# audisp-remote replies carry the frame's sequence number (int); None when no ack is owed (ascii).
AckToken = bytes | int | None


class SecurityFailure(Exception):
    """A security mechanism refused a token or a property (GSS-API, the illumos dummy mech): the
    connection closes; ``str(exc)`` is one log-ready line."""


class SecurityContext(Protocol):
    """What the cores need from an accepted context, whatever the mechanism (Kerberos through
    ``gss.AcceptorContext``, ``dummy_mech.DummyAcceptorContext``). Every method raises
    :class:`SecurityFailure` on failure."""

    @property
    def complete(self) -> bool: ...
    @property
    def initiator(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def expired(self) -> bool: ...
    def step(self, token: bytes) -> bytes | None: ...
    def check(self, *, require_channel_bound: bool = ..., require_confidentiality: bool = ...) -> None: ...
    def unwrap(self, token: bytes, *, require_confidentiality: bool = ...) -> bytes: ...


class PrincipalPolicy:
    """Which authenticated client principals may send: case-sensitive ``fnmatch`` patterns, e.g.
    ``host/*.example.com@EXAMPLE.COM``. No pattern allows nobody; each listener states its own
    default explicitly (illumos: ``*``, any principal the KDC vouches for; audisp-remote, like
    auditd: ``<service>/*@<default realm>``)."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = tuple(patterns)

    def allows(self, principal: str) -> bool:
        return any(fnmatch.fnmatchcase(principal, p) for p in self.patterns)

    def __repr__(self) -> str:
        return f"PrincipalPolicy({list(self.patterns)!r})"


def escape_pattern(text: str) -> str:
    """``text`` as an fnmatch pattern matching only itself."""
    return "".join(f"[{c}]" if c in "*?[]" else c for c in text)


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Authenticated:
    """The handshake completed and the peer passed the policy; records may follow."""

    mech: str  # "krb5", "dummy"
    principal: str  # the authenticated initiator ("" for dummy)
    authenticated: bool  # False: the mechanism authenticates nobody (dummy)
    target: str = ""  # the service principal the client asked for


@dataclass(frozen=True, slots=True)
class RecordReceived:
    """One record to spool; ack it with ``core.ack(ack_token, state)`` once durable. An empty
    ``payload`` (an empty audisp-remote message) is not stored but still acked in order."""

    payload: bytes
    ack_token: AckToken
    received_ns: int


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A keep-alive: answered with ``core.answer_heartbeat(token)`` in order, never spooled."""

    token: int


@dataclass(frozen=True, slots=True)
class ConnectionFailed:
    """Fatal for this connection only; nothing after it is valid. Records before it are still
    stored and acked."""

    reason: str  # one log-ready line
    security: bool = False  # a GSS/mechanism failure (counted apart)
    timeout: bool = False


Event = Authenticated | RecordReceived | Heartbeat | ConnectionFailed


class ReceiveCore(Protocol):
    """One connection's protocol state. Not thread-safe; one owner."""

    @property
    def mid_frame(self) -> bool:
        """A frame has started arriving but is not complete (a stalled peer)."""

    @property
    def frame_ready(self) -> bool:
        """Complete input is held back by ``max_records``: call ``receive_data(b"", ...)``."""

    @property
    def frames_received(self) -> int:
        """Complete frames (tokens, lines) taken from the stream so far."""

    def receive_data(self, data: bytes, now_ns: int, max_records: int | None = None) -> list[Event]:
        """Consume bytes received at ``now_ns`` (wall clock, stamped on records); at most
        ``max_records`` records are returned, the rest stay held (see :attr:`frame_ready`)."""

    def receive_record(self, data: bytes) -> tuple[bytes, AckToken, bytes] | None:
        """A stop-and-wait sender's usual read, one whole record while nothing is held, the short way: its payload, ack
        token and the reply ``ack(token, "ok")`` would queue (sent once stored). None: nothing taken (receive_data)."""

    def end_of_input(self, now_ns: int) -> list[Event]:
        """The peer closed its side: what its last bytes still mean (a last unterminated line),
        or why closing there is a failure (mid-frame, mid-handshake)."""

    def ack(self, token: AckToken, spool_state: SpoolState) -> None:
        """Queue the reply for a durably stored record."""

    def answer_heartbeat(self, token: int) -> None: ...

    def end(self) -> None:
        """Queue the protocol's goodbye on server shutdown (audisp-remote's ENDING), if any."""

    def data_to_send(self) -> bytes:
        """Everything queued for the peer since the last call (possibly b"")."""


class Outbox:
    """The output half every core shares: bytes queued until :meth:`data_to_send`."""

    def __init__(self) -> None:
        self._out: list[bytes] = []

    def receive_record(self, data: bytes) -> tuple[bytes, AckToken, bytes] | None:
        """No short way (see ReceiveCore.receive_record) unless a core has one."""
        return None

    def data_to_send(self) -> bytes:
        if not self._out:
            return b""
        out = b"".join(self._out)
        self._out.clear()
        return out


def hold_beyond(events: list[Event], max_records: int | None, held: list[Event]) -> list[Event]:
    """Events up to the ``max_records``-th record; the rest go to ``held`` (in order) for the
    core's next call. For cores that parse a whole read at once."""
    if max_records is None:
        return events
    count = 0
    for i, event in enumerate(events):
        if type(event) is RecordReceived:
            if count == max_records:
                held.extend(events[i:])
                return events[:i]
            count += 1
    return events
