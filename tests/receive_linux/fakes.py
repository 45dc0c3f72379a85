"""Test doubles and capture readers for the audisp-remote receiver tests."""

from __future__ import annotations

import ast
import asyncio
import re
from dataclasses import dataclass
from pathlib import Path

from auditrecv.spool import SpoolFull, SpoolRecord
from tests.paths import LINUX_FIXTURES

CAPTURES = LINUX_FIXTURES / "audisp-remote" / "captures"


class FakeSpool:
    """In-memory spool with the real one's surface: append (durable once it returns), state, wait_for_space.

    ``capacity`` counts records; ``low_at`` is the fill level from which the state reads "low".
    """

    takes_now = False  # offer try_append_now (see there)

    def __init__(self, capacity: int | None = None, low_at: int | None = None) -> None:
        self.records: list[SpoolRecord] = []
        self.capacity = capacity
        self.low_at = low_at
        self.appends = 0
        self.taken_now = 0  # appends stored through try_append_now
        self.refused = 0
        self._space = asyncio.Event()

    @property
    def state(self) -> str:
        n = len(self.records)
        if self.capacity is not None and n >= self.capacity:
            return "full"
        if self.low_at is not None and n >= self.low_at:
            return "low"
        return "ok"

    async def append(self, records: list[SpoolRecord]) -> list[int]:
        await asyncio.sleep(0)  # a commit always yields to the loop
        if self.capacity is not None and len(self.records) + len(records) > self.capacity:
            self.refused += 1
            self._space.clear()
            raise SpoolFull(len(self.records), self.capacity)
        start = len(self.records)
        self.records.extend(records)
        self.appends += 1
        return list(range(start, start + len(records)))

    def try_append_now(self, records: list[SpoolRecord], appender: object) -> list[int] | None:
        """The real spool's no-wait path when ``takes_now`` (class-wide, set by the ``spool_path``
        fixture); like it, None when the records must go through ``append`` (here: would not fit)."""
        if not self.takes_now or type(self).append is not FakeSpool.append:
            return None  # a subclass that changes append must see every record
        if self.capacity is not None and len(self.records) + len(records) > self.capacity:
            return None
        start = len(self.records)
        self.records.extend(records)
        self.appends += 1
        self.taken_now += 1
        return list(range(start, start + len(records)))

    async def wait_for_space(self, timeout: float | None = None) -> bool:
        while self.capacity is not None and len(self.records) >= self.capacity:
            self._space.clear()
            await self._space.wait()
        return True

    def set_capacity(self, capacity: int | None) -> None:
        self.capacity = capacity
        self._space.set()

    def lines(self) -> list[bytes]:
        return [r.payload for r in self.records]


@dataclass(frozen=True)
class LoggedFrame:
    type: int
    seq: int
    payload: bytes


_FRAME_RE = re.compile(
    r"frame #\d+ hver=(\d+) mver=(\d+) type=0x([0-9a-f]{8})\(\w+\) len=(\d+) seq=(\d+) payload=(.*)$"
)


def logged_frames(log: Path) -> list[LoggedFrame]:
    """The frames the capture listener decoded, as it logged them (an independent decoding)."""
    out = []
    for line in log.read_text().splitlines():
        m = _FRAME_RE.search(line)
        if m:
            payload = ast.literal_eval(m.group(6))
            assert len(payload) == int(m.group(4))
            out.append(LoggedFrame(int(m.group(3), 16), int(m.group(5)), payload))
    return out


def logged_replies(log: Path) -> list[bytes]:
    """Reply bytes the capture listener sent ("sent reply <hex>")."""
    return [bytes.fromhex(m.group(1)) for m in re.finditer(r"sent reply ([0-9a-f]+)", log.read_text())]


def tap_chunks(log: Path, direction: str) -> list[bytes]:
    """Chunks of a TCP tap log (``connN c2s <len> <hex>``) in arrival order, for one direction."""
    out = []
    for line in log.read_text().splitlines():
        parts = line.split()
        if len(parts) == 5 and parts[2] == direction and parts[3].isdigit():
            data = bytes.fromhex(parts[4])
            assert len(data) == int(parts[3])
            out.append(data)
    return out


def recv_chunks(log: Path) -> list[bytes]:
    """Chunks as the capture listener read them ("recv N bytes: <hex>")."""
    return [bytes.fromhex(m.group(1)) for m in re.finditer(r"recv \d+ bytes: ([0-9a-f]+)", log.read_text())]
