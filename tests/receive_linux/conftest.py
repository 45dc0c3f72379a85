"""Fixtures shared by the audisp-remote receiver tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.spool_fake import FakeSpool


@pytest.fixture(params=["awaited", "taken now"])
def spool_path(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a test both ways a record reaches the spool: awaited ``append`` (a group commit) and
    ``try_append_now`` (the ack journal), which the receiver answers inside its read callback."""
    FakeSpool.takes_now = request.param == "taken now"
    try:
        yield request.param
    finally:
        FakeSpool.takes_now = False
