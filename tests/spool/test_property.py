"""Property: any payload bytes and any source text round-trip exactly, through a restart too."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditrecv.spool import Source, Spool, SpoolRecord, iter_records

any_text = st.text(alphabet=st.characters(blacklist_categories=()), max_size=40)  # includes lone surrogates
sources = st.builds(
    Source,
    transport=st.sampled_from(["audit_remote", "audisp_remote", "import"]) | any_text,
    peer=any_text,
    peer_port=st.integers(0, 65535),
    mech=any_text,
    principal=any_text,
    authenticated=st.booleans(),
    listener=any_text,
)
records = st.builds(
    SpoolRecord,
    kind=st.sampled_from(["bsm", "linux"]),
    payload=st.binary(max_size=3000) | st.sampled_from([b"", b"\x00", b"\xff\xfe\x00\x80", b"\xc3\x28"]),
    source=sources,
    received_ns=st.integers(-(2**63), 2**63 - 1),
)


async def _round_trip(path: Path, batches: list[list[SpoolRecord]]) -> None:
    # Round-tripping is the point here, not durability: skip the fsyncs and the reserve file.
    async with await Spool.open(path, commit_delay=0, synchronous="normal", reserve_bytes=0) as spool:
        ids = await asyncio.gather(*(spool.append(b) for b in batches))
        expected = sorted((i, r) for chunk, b in zip(ids, batches, strict=True) for i, r in zip(chunk, b, strict=True))
        assert [i for i, _ in expected] == list(range(1, len(expected) + 1))
        assert await spool.read(0, 10_000) == expected
    assert list(iter_records(path)) == expected  # after close and reopen, from a fresh connection


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(records, min_size=1, max_size=8), min_size=1, max_size=6))
def test_arbitrary_records_round_trip(batches: list[list[SpoolRecord]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_round_trip(Path(tmp) / "spool.db", batches))
