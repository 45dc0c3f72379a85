"""Who may connect, and how many at once; shared by the audit_remote and audisp-remote servers.

Checked at accept time, before a single byte is parsed, so refused peers cost nothing beyond
the TCP handshake. IPv4 peers that arrive on a dual-stack socket as IPv4-mapped IPv6
(``::ffff:192.0.2.7``) are matched as IPv4, so operators can write plain IPv4 CIDRs.

Silent sockets must not lock real senders out: :class:`ConnectionLimiter` caps connections per
peer address as well as in total, and at a full limit closes the connection that has been silent
longest without ever completing its handshake (or first frame) rather than refusing the
newcomer. Refusals and such closures can come in floods, so their log lines go through
:class:`ThrottledLog`.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from auditrecv.logsetup import ThrottledLog

__all__ = [
    "Admission",
    "ConnectionLimiter",
    "NetworkAllowlist",
    "ThrottledLog",
    "Ticket",
    "parse_address",
    "peer_of",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_address(address: str) -> IPAddress | None:
    """An IP address from a socket peer string; IPv4-mapped IPv6 becomes IPv4, zone ids are
    dropped; None when it is not an IP address at all (e.g. a Unix socket)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def peer_of(peername: object) -> tuple[str, int]:
    """``(address, port)`` from ``transport.get_extra_info("peername")`` (2- or 4-tuples);
    IPv4-mapped addresses are shown as IPv4."""
    if isinstance(peername, tuple) and len(peername) >= 2:
        host, port = str(peername[0]), int(peername[1])
        ip = parse_address(host)
        return (str(ip) if ip is not None else host), port
    return (str(peername) if peername else ""), 0


class NetworkAllowlist:
    """Source networks allowed to connect (CIDRs, or single addresses).

    ``empty_allows_all`` picks the meaning of an empty list: True for the listener ``allow``
    setting (empty = any peer), False for opt-in features such as the dummy mechanism.
    Raises ValueError on a malformed network at construction (config validation already
    catches these; this is the last line).
    """

    def __init__(self, networks: Sequence[str] = (), *, empty_allows_all: bool = True) -> None:
        self.networks: tuple[IPNetwork, ...] = tuple(ipaddress.ip_network(n.strip(), strict=False) for n in networks)
        self.empty_allows_all = empty_allows_all

    def allows(self, address: str) -> bool:
        if not self.networks:
            return self.empty_allows_all
        ip = parse_address(address)
        if ip is None:
            return False
        return any(ip.version == net.version and ip in net for net in self.networks)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __repr__(self) -> str:
        return f"NetworkAllowlist({[str(n) for n in self.networks]!r})"


@dataclass(eq=False, slots=True)
class Ticket:
    """One admitted connection, as the limiter sees it.

    The server sets ``last_heard`` on every read (what :meth:`heard` does, without the call) and
    calls :meth:`prove` once the peer completed its handshake (or first frame), and sets ``close`` to
    a function that ends the connection with a reason (called synchronously when the limiter evicts
    it: it must only start the close).
    """

    peer: str
    port: int
    opened: float
    last_heard: float
    proven: bool = False
    close: Callable[[str], None] | None = None

    def heard(self, now: float) -> None:
        self.last_heard = now

    def prove(self) -> None:
        self.proven = True


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer to one accept: a ticket, or the refusal as one log-ready phrase."""

    ticket: Ticket | None
    refusal: str = ""
    evicted: Ticket | None = None  # closed to make room for this one


@dataclass
class ConnectionLimiter:
    """Open connections, capped in total and per peer address; 0 (or less) means no cap.

    ``admit()`` at accept, ``release(ticket)`` when the connection ends (idempotent). At a full
    cap (the peer's own, or the global one) the newcomer takes the place of the connection in
    that scope that never completed its handshake (``unproven_as`` names what it failed to
    complete) and has been silent longest. So anonymous silent sockets, even from many
    addresses, cannot keep a real sender out: at worst they evict each other. At the global cap
    with every connection proven, the newcomer is refused. At a peer's cap with every one of its
    connections proven, its connection silent longest makes way: a host that connects again has
    usually lost its old connection without a FIN (a reboot, a network cut), and illumos
    listeners keep connections for ever by default, so refusing would lock that host out for
    good; only this peer's own connections are ever affected.

    Why a per-peer cap of a few dozen by default: a host runs one audit sender holding one
    connection (two or three briefly while it reconnects and the old one times out); a few
    dozen still lets a NAT gateway or a host with per-zone auditds share one address, while one
    address can no longer fill a listener of hundreds or thousands of slots.
    """

    max_connections: int
    max_per_peer: int = 0
    unproven_as: str = "handshake"
    clock: Callable[[], float] = time.monotonic
    refused: int = 0
    evicted: int = 0
    _tickets: list[Ticket] = field(default_factory=list, repr=False)
    _per_peer: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def active(self) -> int:
        return len(self._tickets)

    def count(self, peer: str) -> int:
        return self._per_peer.get(_peer_key(peer), 0)

    def admit(self, peer: str, port: int) -> Admission:
        key = _peer_key(peer)
        now = self.clock()
        evicted: Ticket | None = None
        if 0 < self.max_per_peer <= self._per_peer.get(key, 0):
            limit = f"max_connections_per_peer ({self.max_per_peer}) reached for {peer}"
            evicted = self._evict(now, key, limit, peer, port) or self._evict_stalest(now, key, limit, peer, port)
        elif 0 < self.max_connections <= len(self._tickets):
            evicted = self._evict(now, None, f"max_connections ({self.max_connections}) reached", peer, port)
            if evicted is None:
                self.refused += 1
                return Admission(
                    None,
                    f"max_connections ({self.max_connections}) reached and every connection has completed its "
                    f"{self.unproven_as}",
                )
        ticket = Ticket(peer, port, now, now)
        self._tickets.append(ticket)
        self._per_peer[key] = self._per_peer.get(key, 0) + 1
        return Admission(ticket, evicted=evicted)

    def _evict(self, now: float, key: str | None, limit: str, peer: str, port: int) -> Ticket | None:
        """Close the unproven connection (of ``key``, or of anyone) silent longest; None if none."""
        return self._close_stalest(
            [t for t in self._tickets if not t.proven and (key is None or _peer_key(t.peer) == key)],
            now,
            f"closed to admit {peer}:{port}: {limit}, and this connection had not completed its "
            f"{self.unproven_as} and was the one silent longest",
        )

    def _evict_stalest(self, now: float, key: str, limit: str, peer: str, port: int) -> Ticket | None:
        """Close the connection of peer ``key`` silent longest, proven or not."""
        return self._close_stalest(
            [t for t in self._tickets if _peer_key(t.peer) == key],
            now,
            f"closed to admit {peer}:{port}: {limit}, all of them established, and this one was the one silent longest",
            "; a host that connects again has usually lost its old connection",
        )

    def _close_stalest(self, candidates: list[Ticket], now: float, why: str, after: str = "") -> Ticket | None:
        if not candidates:
            return None
        victim = min(candidates, key=lambda t: t.last_heard)
        self.release(victim)
        self.evicted += 1
        if victim.close is not None:
            victim.close(f"{why} ({now - victim.last_heard:.1f} s{after})")
        return victim

    def release(self, ticket: Ticket) -> None:
        try:
            self._tickets.remove(ticket)
        except ValueError:
            return  # released already (evicted)
        key = _peer_key(ticket.peer)
        left = self._per_peer.get(key, 0) - 1
        if left > 0:
            self._per_peer[key] = left
        else:
            self._per_peer.pop(key, None)


def _peer_key(peer: str) -> str:
    ip = parse_address(peer)
    return str(ip) if ip is not None else peer
