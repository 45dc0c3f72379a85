"""u32 big-endian length framing, sans-I/O.

Both illumos ``audit_remote`` (every token, both directions) and the Linux ``audisp-remote``
Kerberos transport frame each GSS token as ``u32 BE length ‖ payload``. The decoder here never
touches a socket: the caller feeds whatever bytes arrived and pulls complete frames out, which
keeps the protocol cores testable with bytes alone.

The length limit is checked as soon as the 4-byte prefix is complete, *before* any payload is
buffered, so a peer announcing 2 GB costs us four bytes of memory, not two gigabytes. The limit
can be changed between frames (audit_remote allows small handshake tokens but larger record
tokens).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

__all__ = ["FrameDecoder", "FrameError", "FrameTooLarge", "encode_frame"]

_LEN = struct.Struct(">I")
MAX_U32 = 0xFFFFFFFF


class FrameError(Exception):
    """The byte stream cannot be framed any further; the connection must be closed."""


class FrameTooLarge(FrameError):
    """A length prefix announced more than the current limit allows."""

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"frame of {length} bytes exceeds the limit of {limit} bytes")
        self.length = length
        self.limit = limit


def encode_frame(payload: bytes | bytearray | memoryview) -> bytes:
    """Prefix ``payload`` with its u32 BE length (the sending side of ``send_token``)."""
    n = len(payload)
    if n > MAX_U32:
        raise ValueError(f"payload of {n} bytes does not fit a u32 length prefix")
    return _LEN.pack(n) + bytes(payload)


class FrameDecoder:
    """Incremental decoder: ``feed()`` bytes, then ``next_frame()`` (or iterate ``frames()``).

    Zero-length frames are returned as ``b""`` (audisp-remote sends one on purpose); whether
    they are acceptable is the protocol core's decision, not the framer's.

    After a :class:`FrameTooLarge` the decoder is poisoned: every further call raises the same
    error, because the stream position is lost and nothing after it can be trusted.
    """

    __slots__ = ("_buf", "_error", "_need", "_pos", "frames_decoded", "max_length")

    def __init__(self, max_length: int) -> None:
        if max_length < 0:
            raise ValueError("max_length must be >= 0")
        self.max_length = max_length
        self._buf = bytearray()
        self._pos = 0  # start of unconsumed bytes in _buf
        self._need = -1  # payload length of the frame being assembled, -1 = prefix not complete
        self._error: FrameError | None = None
        self.frames_decoded = 0  # complete frames returned so far

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes; cheap, does no parsing."""
        if self._error is not None:
            raise self._error
        if self._pos and self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        self._buf += data

    def next_frame(self) -> bytes | None:
        """The next complete payload, or None if more bytes are needed.

        Raises :class:`FrameTooLarge` when a prefix exceeds ``max_length`` (checked against the
        limit in force when the prefix completes).
        """
        if self._error is not None:
            raise self._error
        avail = len(self._buf) - self._pos
        if self._need < 0:
            if avail < 4:
                return None
            (length,) = _LEN.unpack_from(self._buf, self._pos)
            if length > self.max_length:
                self._error = FrameTooLarge(length, self.max_length)
                self._buf = bytearray()
                self._pos = 0
                raise self._error
            self._pos += 4
            avail -= 4
            self._need = length
        if avail < self._need:
            return None
        start = self._pos
        self._pos += self._need
        self._need = -1
        self.frames_decoded += 1
        payload = bytes(self._buf[start : self._pos])
        # Compact once the consumed prefix dominates, so the buffer does not grow without bound
        # on a long-lived connection while keeping the common path copy-free.
        if self._pos > 65536 and self._pos * 2 > len(self._buf):
            del self._buf[: self._pos]
            self._pos = 0
        return payload

    def frames(self) -> Iterator[bytes]:
        """Yield every complete frame currently buffered."""
        while (frame := self.next_frame()) is not None:
            yield frame

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as frames (prefix bytes included)."""
        pending = len(self._buf) - self._pos
        return pending + (4 if self._need >= 0 else 0)

    @property
    def frame_ready(self) -> bool:
        """True when :meth:`next_frame` would return a frame (or raise) without more input."""
        if self._error is not None:
            return True
        avail = len(self._buf) - self._pos
        if self._need >= 0:
            return avail >= self._need
        if avail < 4:
            return False
        length: int = _LEN.unpack_from(self._buf, self._pos)[0]
        return length > self.max_length or avail - 4 >= length

    @property
    def mid_frame(self) -> bool:
        """True when a frame has started but is not complete (a stalled peer shows this)."""
        return self._need >= 0 or len(self._buf) > self._pos
