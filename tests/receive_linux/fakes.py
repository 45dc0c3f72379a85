"""Test doubles and capture readers for the audisp-remote receiver tests."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from tests.paths import LINUX_FIXTURES

CAPTURES = LINUX_FIXTURES / "audisp-remote" / "captures"


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
