"""CIDR allowlists, the connection limiter, log throttling, deadlines, principal patterns, GSS error text."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditrecv.receive.access import ConnectionLimiter, NetworkAllowlist, ThrottledLog, parse_address, peer_of
from auditrecv.receive.contract import PrincipalPolicy
from auditrecv.receive.flow import Deadline, Deadlines
from auditrecv.receive.gss import GssFailure, KerberosAcceptor


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


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_connection_limiter_global_cap_and_release() -> None:
    lim = ConnectionLimiter(2, clock=FakeClock())
    a, b = lim.admit("192.0.2.1", 1).ticket, lim.admit("192.0.2.2", 2).ticket
    assert a is not None and b is not None
    a.prove()
    b.prove()
    refused = lim.admit("192.0.2.3", 3)
    assert refused.ticket is None
    assert refused.refusal == "max_connections (2) reached and every connection has completed its handshake"
    assert lim.refused == 1 and lim.active == 2
    lim.release(a)
    lim.release(a)  # idempotent
    assert lim.active == 1 and lim.admit("192.0.2.3", 3).ticket is not None
    unlimited = ConnectionLimiter(0)
    assert all(unlimited.admit("192.0.2.1", i).ticket for i in range(1000))


def test_per_peer_cap_counts_addresses_not_ports_and_replaces_the_stalest() -> None:
    """At its cap with every connection established, a peer's connection silent longest makes way
    (a host that reconnects has usually lost the old one); other peers are never touched."""
    clock = FakeClock()
    lim = ConnectionLimiter(100, 2, clock=clock)
    closed: list[str] = []
    other = lim.admit("192.0.2.2", 1).ticket
    tickets = []
    for port in (1, 2):
        ticket = lim.admit("::ffff:192.0.2.1", port).ticket  # IPv4-mapped: the same peer as 192.0.2.1
        assert ticket is not None
        ticket.prove()
        ticket.close = closed.append
        tickets.append(ticket)
        clock.now += 1
    tickets[0].heard(clock.now)  # the first one spoke last: the second is the stalest
    clock.now += 5
    admitted = lim.admit("192.0.2.1", 3)
    assert admitted.ticket is not None and admitted.evicted is tickets[1]
    assert closed == [
        "closed to admit 192.0.2.1:3: max_connections_per_peer (2) reached for 192.0.2.1, all of them "
        "established, and this one was the one silent longest (6.0 s; a host that connects again has usually "
        "lost its old connection)"
    ]
    assert lim.count("192.0.2.1") == 2 and lim.count("192.0.2.2") == 1 and other is not None
    assert lim.refused == 0 and lim.evicted == 1


def test_full_limit_evicts_the_unproven_connection_silent_longest() -> None:
    clock = FakeClock()
    lim = ConnectionLimiter(3, 0, unproven_as="first frame", clock=clock)
    closed: list[tuple[int, str]] = []
    tickets = []
    for port in (1, 2, 3):
        ticket = lim.admit("192.0.2.9", port).ticket
        assert ticket is not None
        ticket.close = lambda reason, port=port: closed.append((port, reason))
        tickets.append(ticket)
        clock.now += 1
    tickets[0].prove()  # a real sender: never evicted
    tickets[1].heard(clock.now)  # sent a byte just now: silent for less time than #3
    clock.now = 110.0
    admitted = lim.admit("198.51.100.7", 4000)
    assert admitted.ticket is not None and admitted.evicted is tickets[2]
    assert closed == [
        (
            3,
            "closed to admit 198.51.100.7:4000: max_connections (3) reached, and this connection had not "
            "completed its first frame and was the one silent longest (8.0 s)",
        )
    ]
    assert lim.active == 3 and lim.evicted == 1
    lim.release(tickets[2])  # the evicted connection's own clean-up later: no double release
    assert lim.active == 3


def test_per_peer_cap_evicts_only_that_peers_silent_connections() -> None:
    lim = ConnectionLimiter(100, 2, clock=FakeClock())
    other = lim.admit("192.0.2.50", 1).ticket
    first = lim.admit("192.0.2.1", 1).ticket
    second = lim.admit("192.0.2.1", 2).ticket
    assert other is not None and first is not None and second is not None
    admitted = lim.admit("192.0.2.1", 3)
    assert admitted.evicted is first and admitted.ticket is not None
    assert lim.count("192.0.2.1") == 2 and lim.count("192.0.2.50") == 1


def test_throttled_log_limits_a_flood_and_reports_what_it_left_out(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    throttled = ThrottledLog(logging.getLogger("test.throttle"), burst=3, interval=10.0, clock=clock)
    with caplog.at_level(logging.WARNING, "test.throttle"):
        results = [throttled.warning("refused", "refused %d", i) for i in range(10)]
        assert throttled.warning("other", "another kind")  # counted separately
        clock.now += 10
        throttled.warning("refused", "refused %d", 10)
    assert results == [True] * 3 + [False] * 7
    assert [r.getMessage() for r in caplog.records] == [
        "refused 0",
        "refused 1",
        "refused 2",
        "another kind",
        "refused 10 [7 more such message(s) held back in the last 10 s]",
    ]


def test_deadlines_handshake_then_idle() -> None:
    d = Deadlines(0.0, handshake_timeout=30, stall_timeout=5, idle_timeout=600)
    assert d.next() == Deadline(30.0, "handshake", 30)
    assert d.next().reason == "handshake not complete after 30 s"  # type: ignore[union-attr]
    d.establish()
    d.input(12.0, mid_frame=False, completed=True)
    assert d.next() == Deadline(612.0, "idle", 600)
    assert d.next().reason == "idle for 600 s"  # type: ignore[union-attr]
    assert Deadlines(0.0, handshake_timeout=0, stall_timeout=5, idle_timeout=0).next() is None


def test_deadlines_stall_counts_from_the_frames_first_byte() -> None:
    """Trickling one byte at a time does not extend a partial frame's deadline."""
    d = Deadlines(0.0, handshake_timeout=0, stall_timeout=5, idle_timeout=600)
    d.input(1.0, mid_frame=True, completed=False)
    d.input(4.0, mid_frame=True, completed=False)
    assert d.next() == Deadline(6.0, "stall", 5)
    assert d.next().reason == "stalled in the middle of a frame for 5 s"  # type: ignore[union-attr]
    d.input(5.0, mid_frame=True, completed=True)  # that frame done, the next one begun
    assert d.next() is not None and d.next().at == 10.0  # type: ignore[union-attr]
    d.resume(9.0)  # the server paused reading: not the peer's time
    assert d.next().at == 14.0  # type: ignore[union-attr]
    d.input(9.5, mid_frame=False, completed=True)
    assert d.next() == Deadline(609.5, "idle", 600)


@given(
    st.lists(
        st.tuples(st.sampled_from(["input", "resume", "establish"]), st.floats(0, 50), st.booleans(), st.booleans()),
        max_size=12,
    ),
    st.sampled_from([0.0, 30.0]),
    st.sampled_from([0.0, 5.0]),
    st.sampled_from([0.0, 600.0]),
)
def test_deadlines_next_at_is_when_next_falls(
    steps: list[tuple[str, float, bool, bool]], handshake: float, stall: float, idle: float
) -> None:
    """next_at (checked after every read, builds nothing) always agrees with next()."""
    d = Deadlines(0.0, handshake_timeout=handshake, stall_timeout=stall, idle_timeout=idle)
    now = 0.0
    for op, dt, mid_frame, completed in steps:
        now += dt
        if op == "input":
            d.input(now, mid_frame=mid_frame, completed=completed)
        elif op == "resume":
            d.resume(now)
        else:
            d.establish()
        found = d.next()
        assert d.next_at() == (found.at if found is not None else None)


def test_principal_policy_patterns() -> None:
    allow = PrincipalPolicy(["host/*.example.com@EXAMPLE.COM", "*@LAB.TEST"])
    assert allow.allows("host/cn1.example.com@EXAMPLE.COM")
    assert not allow.allows("host/cn1.example.org@EXAMPLE.COM")
    assert not allow.allows("HOST/cn1.example.com@EXAMPLE.COM")  # case-sensitive, like Kerberos
    assert allow.allows("anyone@LAB.TEST")
    assert not allow.allows("anyone@LAB.TEST.EVIL")
    assert PrincipalPolicy(["*"]).allows("whoever/x@ANY")  # the illumos listener's default
    assert not PrincipalPolicy([]).allows("whoever@ANY")  # no pattern: nobody


def test_missing_keytab_error_names_keytab_and_gss_text(tmp_path: object) -> None:
    with pytest.raises(GssFailure) as info:
        KerberosAcceptor("/nonexistent/auditrecv.keytab")
    text = str(info.value)
    assert "/nonexistent/auditrecv.keytab" in text
    assert "nonexistent or empty" in text  # the MIT minor status text
