"""The ack journal: the stop-and-wait sender's record is durable after one append to a flat file.

Why: a SQLite commit costs ~15 us with ``synchronous = "normal"`` and ~430 us with ``"full"`` on the
development machine (``bench/bench_audisp_remote.py``), where ``write()`` costs ~1 us and
``write()`` + ``fdatasync()`` ~280 us. audisp-remote waits for each ack, so that commit is its whole
throughput. The journal takes the record (and is fsynced with ``"full"``) before the ack; the writer
thread moves journaled records into SQLite in batches ("folds") a few milliseconds later, and the
journal file is cut once everything in it is in SQLite. At open, whatever the journal holds beyond
the database's ``last_id`` is folded first, so a killed process loses nothing it acknowledged.

File format: ``<spool>.ack-NNNNNN`` files, each a sequence of entries; an entry is a fixed header
(``_HEADER``: magic, CRC-32 of everything after the CRC, id, received_ns, lengths) followed by the
kind, the source as JSON and the payload. On ext4, XFS and tmpfs the file is preallocated and written
through a shared mapping, elsewhere with one ``pwrite(2)`` per append (``native/src/mapped.rs``); after
the last entry come two zero bytes where a magic would be (the end mark; then whatever the room held:
zeros, or entries of a round already folded, since a cut starts again at the file's start), or the end
of the file (a file closed cleanly is cut to its entries). A torn or damaged entry ends the valid part
too: it was never acknowledged (the ack follows the complete copy, and its sync with ``"full"``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

# One entry appended in one native call (native/src/journal.rs): encode, CRC-32 and a copy into the
# file's shared mapping.
from auditrecv._native import JournalFile, JournalLedger

log = logging.getLogger("auditrecv.spool")

_MAGIC = 0xA0D1
# magic, crc32, id, received_ns, kind length, source length, payload length
_HEADER = struct.Struct("<HIQqBHI")
_PREFIX = struct.Struct("<HI")  # magic, crc32
_TAIL = struct.Struct("<QqBHI")  # the rest of the header, covered by the CRC
_CRC_FROM = 6  # the CRC covers the header after itself, and the body
_END_MARK = b"\0\0"  # where the next entry's magic would be: the end of the valid entries
# Set to "1" by the tests to run the spool through the journal's unmapped path (one pwrite(2) per append:
# what copy-on-write, overlay and illumos filesystems get) on this machine's ext4; read per file made.
UNMAPPED_FOR_TESTS = "AUDITRECV_TEST_JOURNAL_UNMAPPED"
# A journal file is closed for new entries past this size; deleted once all of it is in SQLite.
ROTATE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class JournalEntry:
    id: int
    kind: str
    source_json: str
    received_ns: int
    payload: bytes


def encode_entry(rid: int, kind: str, source_json: str | bytes, received_ns: int, payload: bytes) -> bytes:
    """One entry; ``source_json`` may come encoded already (the writer caches it per connection)."""
    kind_b = kind.encode()
    source_b = source_json if isinstance(source_json, bytes) else source_json.encode("utf-8", "surrogatepass")
    # One CRC over one joined body: fewer calls than a CRC per part (this runs once per acked record).
    body = b"".join((_TAIL.pack(rid, received_ns, len(kind_b), len(source_b), len(payload)), kind_b, source_b, payload))
    return _PREFIX.pack(_MAGIC, zlib.crc32(body)) + body


def decode_entries(data: bytes) -> tuple[list[JournalEntry], int]:
    """The valid entries at the start of ``data``, and how many bytes they take."""
    out: list[JournalEntry] = []
    pos, size, hsize = 0, len(data), _HEADER.size
    while pos + hsize <= size:
        magic, crc, rid, received_ns, kind_len, source_len, payload_len = _HEADER.unpack_from(data, pos)
        end = pos + hsize + kind_len + source_len + payload_len
        if magic != _MAGIC or end > size or zlib.crc32(data[pos + _CRC_FROM : end]) != crc:
            break
        p = pos + hsize
        try:
            kind = data[p : p + kind_len].decode()
            source_json = data[p + kind_len : p + kind_len + source_len].decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            break
        out.append(JournalEntry(rid, kind, source_json, received_ns, data[p + kind_len + source_len : end]))
        pos = end
    return out, pos


def journal_files(spool_path: Path) -> list[tuple[int, Path]]:
    """The journal files beside a spool, oldest first."""
    prefix = f"{spool_path.name}.ack-"
    found = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(spool_path.parent):
            if entry.name.startswith(prefix) and entry.name[len(prefix) :].isdigit():
                found.append((int(entry.name[len(prefix) :]), Path(entry.path)))
    return sorted(found)


def read_journal(spool_path: Path) -> Iterator[JournalEntry]:
    """Every valid entry of every journal file, in file order (ids increase)."""
    for _seq, path in journal_files(spool_path):
        data = path.read_bytes()
        entries, good = decode_entries(data)
        if good < len(data) and data[good : good + len(_END_MARK)] != _END_MARK:
            log.warning(
                "%s: %d bytes after the last complete entry ignored (a write cut short: never acknowledged)",
                path,
                len(data) - good,
            )
        yield from entries


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AckJournal:
    """The files being written. Not thread-safe: the spool writer's lock guards every call.

    Appends go through ``auditrecv._native.JournalFile``: encoding, CRC and a copy into the file's
    shared mapping (no system call; a ``pwrite(2)`` where the file is not mapped) in one native call,
    byte for byte what :func:`encode_entry` writes (this runs once per acknowledged record, on the
    event loop). ``file`` is the current file: the
    spool's one-call append (``JournalLedger.append_record``) writes to it directly, while the writer
    keeps the ledger open (see the store)."""

    def __init__(self, spool_path: Path, fsync: bool, first_seq: int) -> None:
        self._spool_path = spool_path
        self._fsync = fsync
        self._retired: list[tuple[Path, int]] = []  # full files: (path, highest id in it)
        self._seq = first_seq
        self.last_sync_seconds = 0.0  # how long the last msync took
        self._path, self.file = self._create(first_seq)

    def _create(self, seq: int) -> tuple[Path, JournalFile]:
        path = Path(f"{self._spool_path}.ack-{seq:06d}")
        file = JournalFile(path, map=os.environ.get(UNMAPPED_FOR_TESTS) != "1")
        if self._fsync:
            _fsync_directory(path.parent)  # the file must still be there after a power cut
        return path, file

    @property
    def size(self) -> int:
        """Bytes of entries in the current file (its preallocated room not counted)."""
        size: int = self.file.size
        return size

    @property
    def last_id(self) -> int:
        """The highest id in the current file (0: empty)."""
        last: int = self.file.last_id
        return last

    def append(
        self,
        kept: JournalLedger,
        kind: str,
        source_json: bytes,
        source: object,
        received_ns: int,
        payload: bytes,
        estimate: int,
        max_records: int,
    ) -> int | None:
        """One record, if ``kept``'s budget allows it: the next id, the entry (durable as the spool's
        ``synchronous`` promises when this returns) and the record kept for the fold, in one native call;
        its id, or None (nothing written). Raises OSError (then the file is as before and the room 0),
        ValueError for a field too long for the format."""
        rid = kept.append(
            self.file, kind, source_json, source, received_ns, payload, estimate, max_records, self._fsync
        )
        if self._fsync:
            self.last_sync_seconds = self.file.last_sync_seconds
        return rid

    def append_many(self, entries: Iterable[tuple[int, str, bytes, int, bytes]]) -> None:
        """Several entries (id, kind, source JSON, received_ns, payload) with one copy: all or none, as
        :meth:`append`."""
        stage = self.file.stage
        try:
            for rid, kind, source_json, received_ns, payload in entries:
                stage(rid, kind, source_json, received_ns, payload)
        except BaseException:
            self.file.discard()  # nothing staged for this append may go out with the next one
            raise
        self.file.write(self._fsync)
        if self._fsync:
            self.last_sync_seconds = self.file.last_sync_seconds

    def rotate_if_large(self) -> None:
        """Start a new file once the current one is large; raises OSError if the new one cannot be
        made, and appends carry on in the current file."""
        if self.size >= ROTATE_BYTES:
            path, file = self._create(self._seq + 1)
            self._retired.append((self._path, self.last_id))
            self.file.close()
            self._seq += 1
            self._path, self.file = path, file

    def folded(self, upto_id: int) -> None:
        """Everything up to ``upto_id`` is in SQLite (as durable as the journal was): drop it."""
        while self._retired and self._retired[0][1] <= upto_id:
            path, _ = self._retired.pop(0)
            path.unlink(missing_ok=True)
        if self.size and self.last_id <= upto_id:
            self.file.clear()

    def close(self, everything_folded: bool) -> None:
        self.file.close()
        if everything_folded:
            for path, _ in self._retired:
                path.unlink(missing_ok=True)
            self._path.unlink(missing_ok=True)


def remove_journal(spool_path: Path) -> int:
    """Delete every journal file (after their entries were folded); returns the next file number."""
    files = journal_files(spool_path)
    for _seq, path in files:
        path.unlink(missing_ok=True)
    return files[-1][0] + 1 if files else 1
