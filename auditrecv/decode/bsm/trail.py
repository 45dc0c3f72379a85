"""Trail files (illumos binfile, FreeBSD/macOS /var/audit): format sniffing and record iteration.

The CLI's ``auditrecv decode FILE...`` calls `sniff_format` on the first bytes to tell a BSM trail from
a Linux audit text log, then `iter_trail_file` (memory-maps the file: the only I/O in this package)
or the pure `iter_trail` on bytes. Standalone file tokens are skipped; every record and every error carries
its file offset.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from pathlib import Path
from typing import cast

from .decoder import _FILE32, _FILE64, _VERSIONS, HEADER_IDS, _plausible_header, iter_records, iter_stream
from .model import BsmFileToken, BsmRecord

SNIFF_BYTES = 4096
"""How many leading bytes `sniff_format` wants (fewer works for short files)."""


def _file_token_len(head: bytes) -> int | None:
    try:
        if head[0] == 0x11:
            return 11 + _FILE32.unpack_from(head, 1)[2]
        if head[0] == 0x78:
            return 19 + _FILE64.unpack_from(head, 1)[2]
    except Exception:
        return None
    return None


def looks_like_bsm(head: bytes) -> bool:
    """True when the bytes start like a BSM trail: a plausible header, or a file token then one."""
    if not head:
        return False
    first = head[0]
    if first in HEADER_IDS:
        if len(head) < 6 or head[5] not in _VERSIONS:
            return False
        if _plausible_header(head, 0):
            return True
        # the first record may extend beyond `head`: require a sane length and event field at least
        reclen = int.from_bytes(head[1:5], "big")
        return 18 <= reclen <= 0x100000
    flen = _file_token_len(head)
    if flen is None:
        return False
    if flen > len(head):
        return len(head) >= SNIFF_BYTES  # a very long file name: trust the token id and length
    if flen == len(head):
        return head[flen - 1] == 0  # a trail holding only a file token
    nxt = head[flen]
    return nxt in HEADER_IDS or nxt in (0x11, 0x78)


def sniff_format(head: bytes) -> str | None:
    """``"bsm"`` for a BSM trail, ``"linux"`` for Linux audit text (``type=...`` lines), else None."""
    if looks_like_bsm(head):
        return "bsm"
    text = head.lstrip()
    if text.startswith((b"type=", b"node=")):
        return "linux"
    return None


def iter_trail(data: bytes, base_offset: int = 0) -> Iterator[BsmRecord]:
    """Records of a trail held in memory, file tokens skipped (pure)."""
    return iter_records(data, base_offset)


def iter_trail_items(data: bytes, base_offset: int = 0) -> Iterator[BsmRecord | BsmFileToken]:
    """Records and the standalone file tokens between them, in file order (pure)."""
    return iter_stream(data, base_offset)


def iter_trail_file_items(path: str | Path) -> Iterator[BsmRecord | BsmFileToken]:
    """Records and standalone file tokens of a trail file, memory-mapped (large trails are not read
    into memory). Offsets are file offsets. Raises OSError only for I/O; bad content becomes error records.
    """
    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            return
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            yield from iter_stream(cast(bytes, mapped), 0)


def iter_trail_file(path: str | Path) -> Iterator[BsmRecord]:
    """Records of a trail file with their file offsets, file tokens skipped (see iter_trail_file_items)."""
    for item in iter_trail_file_items(path):
        if isinstance(item, BsmRecord):
            yield item
