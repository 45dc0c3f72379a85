"""Who may connect, and how many at once; shared by the audit_remote and audisp-remote servers.

Checked at accept time, before a single byte is parsed, so refused peers cost nothing beyond
the TCP handshake. IPv4 peers that arrive on a dual-stack socket as IPv4-mapped IPv6
(``::ffff:192.0.2.7``) are matched as IPv4, so operators can write plain IPv4 CIDRs.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

__all__ = ["ConnectionLimiter", "NetworkAllowlist", "parse_address", "peer_of"]

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


class ConnectionLimiter:
    """A counter of open connections with a hard maximum.

    ``try_acquire()`` at accept, ``release()`` exactly once when the connection ends (use
    try/finally). ``max_connections <= 0`` means no limit.
    """

    def __init__(self, max_connections: int) -> None:
        self.max_connections = max_connections
        self.active = 0
        self.refused = 0

    def try_acquire(self) -> bool:
        if 0 < self.max_connections <= self.active:
            self.refused += 1
            return False
        self.active += 1
        return True

    def release(self) -> None:
        if self.active > 0:
            self.active -= 1
