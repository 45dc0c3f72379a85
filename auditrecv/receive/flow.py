"""Per-connection flow control and timeouts, for the one receive server (:mod:`~auditrecv.receive.server`).

* :class:`Deadlines` (sans-I/O): when a connection must be closed for taking too long, and why:
  a handshake not complete after ``handshake_timeout``, a frame started but not complete after
  ``stall_timeout`` (measured from the frame's first byte, so trickling a byte at a time does
  not extend it), or no input for ``idle_timeout``. Time the server itself spends not reading
  (waiting for the spool or for the peer to read its replies) never counts against the peer.
* :class:`InFlightWindow`: records received on one connection and not yet stored and acked.
  Beyond it the server stops reading the socket, so a sender that outruns the spool is slowed
  down by TCP, as auditd's own ``qsize`` slows the sender side, instead of growing our memory.
* :func:`wait_for_write_room`: replies (acks) a peer does not read pile up in the transport's
  write buffer; above its high-water mark the server stops reading until they drain, and closes
  the connection if they do not drain within ``stall_timeout``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "Deadline",
    "Deadlines",
    "InFlightWindow",
    "SendStall",
    "close_now",
    "replies_piled_up",
    "wait_for_write_room",
]

DeadlineKind = Literal["handshake", "stall", "idle"]


_REASONS = {
    "handshake": "handshake not complete after {:g} s",
    "stall": "stalled in the middle of a frame for {:g} s",
    "idle": "idle for {:g} s",
}


@dataclass(frozen=True, slots=True)
class Deadline:
    at: float  # on the clock the caller passed in
    kind: DeadlineKind
    timeout: float

    @property
    def reason(self) -> str:
        """Log-ready, e.g. "stalled in the middle of a frame for 30 s" (built only when needed)."""
        return _REASONS[self.kind].format(self.timeout)


class Deadlines:
    """The timeouts of one connection. ``handshake_timeout`` 0 means there is no handshake
    (the connection counts as established from the start); ``stall_timeout`` or
    ``idle_timeout`` 0 disables that limit."""

    __slots__ = (
        "established",
        "frame_started",
        "handshake_timeout",
        "idle_timeout",
        "last_input",
        "opened",
        "stall_timeout",
    )

    def __init__(self, now: float, *, handshake_timeout: float, stall_timeout: float, idle_timeout: float) -> None:
        self.opened = now
        self.handshake_timeout = handshake_timeout
        self.stall_timeout = stall_timeout
        self.idle_timeout = idle_timeout
        self.established = handshake_timeout <= 0
        self.last_input = now
        self.frame_started: float | None = None

    def input(self, now: float, *, mid_frame: bool, completed: bool) -> None:
        """Bytes arrived. ``mid_frame``: a frame is now started but not complete; ``completed``:
        at least one frame was completed by them (so a partial one left over is a new frame)."""
        self.last_input = now
        if not mid_frame:
            self.frame_started = None
        elif self.frame_started is None or completed:
            self.frame_started = now

    def establish(self) -> None:
        self.established = True

    def resume(self, now: float) -> None:
        """The server reads again after a pause of its own: restart the peer's clocks."""
        self.last_input = now
        if self.frame_started is not None:
            self.frame_started = now

    def next_at(self) -> float | None:
        """When :meth:`next`'s deadline falls, without building it (checked after every read)."""
        due = self._due()
        return due[0] if due is not None else None

    def next(self) -> Deadline | None:
        """The earliest deadline in force, or None."""
        due = self._due()
        return Deadline(*due) if due is not None else None

    def _due(self) -> tuple[float, DeadlineKind, float] | None:
        found: tuple[float, DeadlineKind, float] | None = None
        if not self.established:
            found = (self.opened + self.handshake_timeout, "handshake", self.handshake_timeout)
        if self.frame_started is not None and self.stall_timeout > 0:
            stall = self.frame_started + self.stall_timeout
            if found is None or stall < found[0]:
                found = (stall, "stall", self.stall_timeout)
        elif self.established and self.idle_timeout > 0:
            found = (self.last_input + self.idle_timeout, "idle", self.idle_timeout)
        return found


class InFlightWindow:
    """Records (and their bytes) received on one connection but not yet stored and acked.

    ``room`` is how many more records may be taken in; the server stops reading at 0. The byte
    limit is soft (it stops further reads; it does not split a read), and bounds memory when
    records are large.
    """

    __slots__ = ("bytes", "max_bytes", "max_records", "records")

    def __init__(self, max_records: int, max_bytes: int) -> None:
        self.max_records = max(1, max_records)
        self.max_bytes = max_bytes
        self.records = 0
        self.bytes = 0

    @property
    def room(self) -> int:
        full = self.bytes >= self.max_bytes or self.records >= self.max_records
        return 0 if full else self.max_records - self.records

    def add(self, records: int, nbytes: int) -> None:
        self.records += records
        self.bytes += nbytes

    def remove(self, records: int, nbytes: int) -> None:
        self.records -= records
        self.bytes -= nbytes


def replies_piled_up(writer: asyncio.StreamWriter) -> bool:
    """More of our replies are unsent than the transport's high-water mark (and it is open)."""
    transport = writer.transport
    _low, high = transport.get_write_buffer_limits()
    return not transport.is_closing() and transport.get_write_buffer_size() > high


@dataclass(frozen=True, slots=True)
class SendStall:
    """Why a connection must close while waiting for the peer to read our replies."""

    reason: str
    timed_out: bool  # False: the connection broke


async def wait_for_write_room(writer: asyncio.StreamWriter, timeout: float) -> SendStall | None:
    """If more than the high-water mark of our replies is unsent, wait until the peer has read
    them down to the low-water mark. Returns None, or why to close the connection: the peer did
    not read within ``timeout`` seconds (0 = wait for ever), or the connection broke."""
    if not replies_piled_up(writer):
        return None
    try:
        await asyncio.wait_for(writer.drain(), timeout or None)
    except TimeoutError:
        transport = writer.transport
        return SendStall(
            f"peer has not read our replies for {timeout:g} s ({transport.get_write_buffer_size()} bytes unsent, "
            f"high-water mark {transport.get_write_buffer_limits()[1]})",
            timed_out=True,
        )
    except (ConnectionError, OSError) as exc:
        return SendStall(f"send failed: {exc}", timed_out=False)
    return None


def close_now(writer: asyncio.StreamWriter) -> None:
    """Close the connection; replies the peer left unread are dropped rather than kept (with the
    socket) until it reads them, which a peer that stopped reading never does."""
    if writer.transport.get_write_buffer_size():
        writer.transport.abort()
    else:
        writer.close()
