"""A short, bounded fuzz of every target in the normal suite (scripts/fuzz.py does the long, coverage-guided runs).

Inputs are the real-session seeds, mutated by Hypothesis (bit flips, cuts, insertions, splices, other reads),
a fixed number of examples per target. Crashes that a saved regression input already reproduces are tracked
there (strict xfail in test_regressions.py) and not reported again here; anything else fails the test.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditrecv.receive.audit_remote import AuditRemoteConnection, Phase
from auditrecv.receive.contract import Authenticated, RecordReceived
from tests.fuzz.known import crash_signature, known_signatures
from tests.fuzz.seeds import SEEDS
from tests.fuzz.targets import NS, TARGETS, audit_remote_policy

EXAMPLES = 150


@st.composite
def mutated(draw: st.DrawFn, seeds: tuple[bytes, ...]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(("flip", "set", "cut", "insert", "delete", "splice", "ctrl")))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.sampled_from((0x00, 0x01, 0x7F, 0x80, 0xFF)))
        elif op == "cut":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif op == "splice":
            other = draw(st.sampled_from(seeds))
            data[pos:] = other[draw(st.integers(1, max(1, len(other) - 1))) :]
        elif op == "ctrl" and data:
            data[0] = draw(st.integers(0, 255))
    return bytes(data)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_quick_fuzz(name: str) -> None:
    check = TARGETS[name].check
    known = known_signatures(name, check)

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(mutated(SEEDS[name]()) | st.binary(max_size=64))
    def run(data: bytes) -> None:
        try:
            check(data)
        except Exception as exc:
            if crash_signature(exc) not in known:
                raise

    run()


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_seeds_keep_every_invariant(name: str) -> None:
    """The seeds are real, well-formed sessions: each must pass its target untouched."""
    for seed in SEEDS[name]():
        TARGETS[name].check(seed)


def test_audit_remote_seeds_reach_the_record_phase() -> None:
    """Fuzzing starts from sessions that get past version and dummy handshake into records."""
    for seed in SEEDS["audit_remote"]():
        conn = AuditRemoteConnection(audit_remote_policy())
        events = conn.receive_data(seed[1:], NS)
        assert conn.phase is Phase.RECORDS
        assert [type(e) for e in events][:2] == [Authenticated, RecordReceived]
        assert conn.records_received in (2, 6)
