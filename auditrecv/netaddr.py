"""Address and principal helpers shared by enrichment and the sender identity (not document mapping:
the native core writes the documents)."""

from __future__ import annotations

import functools
import ipaddress
from typing import Any


def valid_ip(text: Any) -> str | None:
    """Normalised address text if ``text`` is an IP address, else None (ip fields reject anything else)."""
    if not isinstance(text, str) or not text:
        return None
    return _normalised_ip(text)


@functools.lru_cache(maxsize=4096)
def _normalised_ip(text: str) -> str | None:
    # a fleet has few distinct addresses, each looked at many times: cached
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        return None


def routable_ip(text: Any) -> str | None:
    """Like valid_ip, but None for the unspecified address (0.0.0.0 / ::, "no remote peer" in BSM tids)."""
    ip = valid_ip(text)
    if ip is None or ip in ("0.0.0.0", "::"):
        return None
    return ip


def principal_host(principal: str) -> str | None:
    """``host/web1.example.com@REALM`` -> ``web1.example.com``: the host name a KDC vouched for."""
    if not principal:
        return None
    name = principal.split("@", 1)[0]
    if "/" in name:
        service, _, instance = name.partition("/")
        if instance and service in ("host", "auditd", "audit", "nfs"):
            return instance
    return None
