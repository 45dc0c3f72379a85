"""CIDR allowlists, the connection limiter, principal patterns, GSS error text."""

from __future__ import annotations

import pytest

from auditrecv.receive.access import ConnectionLimiter, NetworkAllowlist, parse_address, peer_of
from auditrecv.receive.gss import GssFailure, KerberosAcceptor, PrincipalAllowlist


def test_network_allowlist_matches_v4_v6_and_mapped() -> None:
    allow = NetworkAllowlist(["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"])
    assert allow.allows("10.1.2.3")
    assert allow.allows("192.0.2.7") and not allow.allows("192.0.2.8")
    assert allow.allows("::ffff:10.9.9.9")  # IPv4 peer on a dual-stack socket
    assert allow.allows("2001:db8::1") and not allow.allows("2001:db9::1")
    assert allow.allows("2001:db8::1%eth0")
    assert not allow.allows("not-an-address")
    assert not allow.allows("11.0.0.1")


def test_empty_allowlist_meaning_is_explicit() -> None:
    assert NetworkAllowlist([]).allows("203.0.113.1")
    assert not NetworkAllowlist([], empty_allows_all=False).allows("203.0.113.1")
    with pytest.raises(ValueError):
        NetworkAllowlist(["10.0.0.0/33"])


def test_parse_address_and_peer_of() -> None:
    assert str(parse_address("::ffff:127.0.0.1")) == "127.0.0.1"
    assert peer_of(("::ffff:192.0.2.1", 5000, 0, 0)) == ("192.0.2.1", 5000)
    assert peer_of(("127.0.0.1", 16162)) == ("127.0.0.1", 16162)
    assert peer_of(None) == ("", 0)


def test_connection_limiter() -> None:
    lim = ConnectionLimiter(2)
    assert lim.try_acquire() and lim.try_acquire()
    assert not lim.try_acquire() and lim.refused == 1
    lim.release()
    assert lim.try_acquire() and lim.active == 2
    unlimited = ConnectionLimiter(0)
    assert all(unlimited.try_acquire() for _ in range(1000))


def test_principal_allowlist_patterns() -> None:
    allow = PrincipalAllowlist(["host/*.example.com@EXAMPLE.COM", "*@LAB.TEST"])
    assert allow.allows("host/cn1.example.com@EXAMPLE.COM")
    assert not allow.allows("host/cn1.example.org@EXAMPLE.COM")
    assert not allow.allows("HOST/cn1.example.com@EXAMPLE.COM")  # case-sensitive, like Kerberos
    assert allow.allows("anyone@LAB.TEST")
    assert not allow.allows("anyone@LAB.TEST.EVIL")
    assert PrincipalAllowlist([]).allows("whoever@ANY")


def test_missing_keytab_error_names_keytab_and_gss_text(tmp_path: object) -> None:
    with pytest.raises(GssFailure) as info:
        KerberosAcceptor("/nonexistent/auditrecv.keytab")
    text = str(info.value)
    assert "/nonexistent/auditrecv.keytab" in text
    assert "nonexistent or empty" in text  # the MIT minor status text
