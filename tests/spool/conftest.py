"""The journal tests run twice: with the file mapped (what ext4, XFS and tmpfs get) and written with one
``pwrite(2)`` per append (what copy-on-write, overlay and illumos filesystems get), so that the path this
machine's ext4 never takes by itself is proven by the same crash and recovery tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from auditrecv.spool.journal import UNMAPPED_FOR_TESTS


@pytest.fixture(params=["mapped", "written"])
def journal_storage(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The environment variable reaches the child processes of the kill -9 tests too."""
    if request.param == "written":
        monkeypatch.setenv(UNMAPPED_FOR_TESTS, "1")
    else:
        monkeypatch.delenv(UNMAPPED_FOR_TESTS, raising=False)
    yield request.param
