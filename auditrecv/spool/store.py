"""The spool store: SQLite in WAL mode, one writer thread doing group commits, one reader thread,
and an ack journal in front for stop-and-wait senders.

Why this shape:

* Senders are acknowledged only after ``append`` returned, so ``append`` must mean "durable". With
  ``synchronous = "full"`` every commit fsyncs the WAL; ``"normal"`` survives a killed process but
  not a power cut.
* An fsync costs milliseconds, so appends from all connections queue up while one commit is in
  flight and the next commit takes them all (group commit): the cost of one fsync is shared by
  every record that arrived meanwhile, and ``commit_delay`` lets a commit wait a little for company.
* A lone stop-and-wait connection (audisp-remote) would wait for one SQLite commit per record (~15
  us with "normal", ~430 us with "full", where the disk's write + fdatasync alone is ~280 us): its
  records go to the ack journal instead (``journal.py``: one copy into a mapped file, plus its msync
  with "full", on the event loop), and the writer folds them into SQLite every few milliseconds. Readers
  and deletes fold first, so what was acknowledged is always readable; an open folds what a killed
  process left. With "full", concurrent connections keep sharing group commits (one fsync each).
* Otherwise all disk I/O happens in two threads (writer, reader), never on the event loop. The loop only
  takes a lock to queue work and receives results through ``call_soon_threadsafe``.
* The size bound is measured in database pages in use (``page_count - freelist_count``), checked
  inside the write transaction: the database file never grows past ``max_bytes`` (plus the WAL),
  and pages freed by deletes are reused, so appends resume when the pipeline deletes.
* Ids come from a counter kept in the ``meta`` table, so they strictly increase forever, even after
  the spool was emptied and the process restarted (SQLite would otherwise reuse rowids).
* Checkpoints (copying the WAL into the database file, one more fsync) run in a third thread, off
  the commit path; the writer only copies the short tail so the WAL restarts near 2 MiB.
* A full filesystem is survivable: ``<path>.reserve`` holds some real disk space, released when a
  write hits ENOSPC so that checkpoints and the pipeline's deletes still work; appends resume only
  once the reserve could be taken back. Not as soon as it fits, though: releasing it is what made
  room, so retaking it at once only fills the disk again (release, retake, release... every
  second). It is retaken once the filesystem has twice the reserve free, or room for the reserve
  and some WAL while the database's own free pages can take the appends (a drained spool), checked
  with backoff up to 5 s: by a waiting sender's append, or by the spool's own timer when nobody
  appends (so a drained spool never stays "full").

Disk use is therefore at most ``max_bytes`` (database) + the WAL (a few MiB, at most ~8 MiB plus one
group) + the reserve (min(16 MiB, max_bytes/32), at least 1 MiB).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import errno
import fcntl
import functools
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, cast

from prometheus_client.core import Metric

from auditrecv._native import APPEND_DECLINED, JournalLedger
from auditrecv.metrics import LatencyHistogram, counter, gauge, histogram
from auditrecv.spool.journal import AckJournal, read_journal, remove_journal
from auditrecv.spool.record import RecordKind, Source, SpoolRecord, spool_record

log = logging.getLogger("auditrecv.spool")

SpoolState = Literal["ok", "low", "full"]

SCHEMA_VERSION = 1
# A group commit stops waiting for company once this many records are queued.
GROUP_MAX_RECORDS = 20_000
# Rough on-disk cost of one record besides its payload (cell header, ids, b-tree slack).
_RECORD_OVERHEAD = 48
# While the filesystem itself is full, let one append through to find out whether it has space
# again (nothing else tells us): after this long, then twice as long each time, up to the maximum.
_DISK_FULL_PROBE_SECONDS = 1.0
_DISK_FULL_PROBE_MAX_SECONDS = 5.0  # a probe is one statvfs and one small append: cheap
_LATENCY_WINDOW = 2048
DEFAULT_RESERVE_BYTES = 16 * 1024 * 1024
# After a full filesystem the reserve is retaken only with this many times its size (at least 1 MiB)
# free: hysteresis, so that releasing it does not itself look like recovery.
_RESUME_FREE_FACTOR = 2
# ...or with room for the reserve plus a little WAL when the database's own free pages (left by the
# pipeline's deletes) can take the appends without the file growing: a drained spool on a filesystem
# that stays nearly full (the database file never shrinks) must not wait for ever. Near a full
# filesystem a group adds at most this fraction of the reserve (and no more than the room beside it)
# to the WAL, and the WAL is checkpointed before the next one: what the released reserve must pay for
# stays bounded, and a drained spool needs little WAL room.
_TIGHT_GROUP_SHARE = 4
_WAL_SLACK = 64 * 1024  # frame headers and index pages on top of the records' own bytes
_SHRINK_STEP_BYTES = 1 << 20  # free pages given back to the filesystem per checkpointed step

# The ack journal (auditrecv/spool/journal.py) is folded into SQLite this long after its oldest
# unfolded entry, or as soon as this many records wait; it holds at most JOURNAL_MAX_RECORDS. Read
# when a spool opens (its writer's ledger keeps them: ``JournalLedger.fold_seconds``, ...).
JOURNAL_FOLD_SECONDS = 0.02
JOURNAL_FOLD_RECORDS = 2048
JOURNAL_MAX_RECORDS = 50_000
_INSERT_RECORD = "INSERT INTO records (id, kind, source_id, received_ns, payload) VALUES (?, ?, ?, ?, ?)"
_FOLD_CHUNK = 100  # journaled rows per INSERT when folding (500 variables; SQLite allows 999 or more)
_INSERT_CHUNK = _INSERT_RECORD.replace("(?, ?, ?, ?, ?)", ", ".join(["(?, ?, ?, ?, ?)"] * _FOLD_CHUNK))
# A chunk of rows that share their kind and source (a connection's records: JournalLedger.rows) binds
# the two once, as ?1 and ?2: 3 values per row instead of 5, ~11 % less of SQLite's CPU per row.
_INSERT_SAME_CHUNK = _INSERT_RECORD.replace(
    "(?, ?, ?, ?, ?)", ", ".join(f"(?{n}, ?1, ?2, ?{n + 1}, ?{n + 2})" for n in range(3, 3 + 3 * _FOLD_CHUNK, 3))
)
_SAME_CHUNK_VALUES = 2 + 3 * _FOLD_CHUNK
_FOLD_RETRY_SECONDS = 1.0  # after a fold failed (a full filesystem): the entries stay journaled
# With synchronous = "full" the journal's fdatasync runs on the event loop's thread: only for a lone
# connection (no other appended within this long), and not on a disk whose fdatasync is slow (its
# moving average, over about the last 8, above _SLOW_SYNC_SECONDS: then not for a while).
_LONE_SECONDS = 0.05
_SLOW_SYNC_SECONDS = 0.02
_SLOW_SYNC_BACKOFF_SECONDS = 10.0

# About this much WAL written makes the checkpointer thread copy the WAL into the database file,
# off the commit path. If it cannot keep up, commits checkpoint themselves at 4x this size.
CHECKPOINT_BYTES = 2 * 1024 * 1024

FreeBytes = Callable[[Path], int]


def filesystem_free_bytes(directory: Path) -> int:
    """Bytes an unprivileged writer may still use on the filesystem holding ``directory``."""
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sources (
    id INTEGER PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    source_id INTEGER NOT NULL,
    received_ns INTEGER NOT NULL,
    payload BLOB NOT NULL
);
"""
_SELECT = "SELECT id, kind, source_id, received_ns, payload FROM records WHERE id > ? ORDER BY id LIMIT ?"


# --------------------------------------------------------------------------- errors


class SpoolError(Exception):
    """The spool could not do what was asked; nothing was acknowledged, the sender must retry."""


class SpoolFull(SpoolError):
    """Backpressure: the records were NOT stored because the spool (or its filesystem) is full.

    Do not acknowledge them; wait with ``Spool.wait_for_space()`` and let the sender retransmit.
    """

    def __init__(self, used_bytes: int, max_bytes: int, reason: Literal["limit", "disk"] = "limit") -> None:
        self.used_bytes = used_bytes
        self.max_bytes = max_bytes
        self.reason = reason
        what = "spool.max_bytes reached" if reason == "limit" else "filesystem full"
        super().__init__(f"spool full ({what}): {used_bytes} of {max_bytes} bytes used")


class RecordTooLarge(SpoolError):
    """One append is bigger than the whole (empty) spool could ever hold; retrying cannot help."""


class SpoolClosed(SpoolError):
    """The spool is closing or closed."""


# --------------------------------------------------------------------------- settings and metrics


class SpoolSettings(Protocol):
    """What ``Spool.open`` reads from settings; ``auditrecv.config.Spool`` fits."""

    @property
    def max_bytes(self) -> int: ...
    @property
    def low_water_ratio(self) -> float: ...
    @property
    def commit_delay(self) -> float: ...
    @property
    def synchronous(self) -> str: ...


@dataclass
class SpoolMetrics:
    """Counters for the HTTP endpoint; read them, never write them. ``as_dict()`` gives a snapshot."""

    appended: int = 0  # records handed to append()
    committed: int = 0  # records durably stored (acknowledgeable)
    journaled: int = 0  # ... of which through the ack journal (auditrecv/spool/journal.py)
    refused: int = 0  # records refused (full, too large, errors): not stored, not to be acked
    deleted: int = 0  # records removed after confirmation
    commits: int = 0  # write transactions committed (one WAL fsync each with synchronous=full)
    append_commits: int = 0  # commits that stored at least one record
    max_records_per_commit: int = 0
    full_events: int = 0  # transitions into "full"
    reserve_releases: int = 0  # disk reserve given up because the filesystem was full
    reserve_retakes: int = 0  # ... and taken back once the filesystem had room again
    errors: int = 0  # failed write transactions
    records: int = 0  # records in the spool now
    bytes_used: int = 0  # database pages in use, bytes
    max_bytes: int = 0
    state: SpoolState = "ok"
    commit_seconds_sum: float = 0.0  # time inside write transactions (insert + fsync)
    commit_seconds_max: float = 0.0
    ack_seconds_sum: float = 0.0  # per append: queued -> durable, what a receiver waits for
    ack_seconds_max: float = 0.0
    recent_ack_seconds: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=_LATENCY_WINDOW), repr=False
    )

    @property
    def records_per_commit(self) -> float:
        return self.committed / self.append_commits if self.append_commits else 0.0

    def ack_quantile(self, q: float) -> float:
        """Quantile of the recent append latencies (last few thousand appends), seconds."""
        if not self.recent_ack_seconds:
            return 0.0
        ordered = sorted(self.recent_ack_seconds)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def as_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "recent_ack_seconds"}
        d["records_per_commit"] = self.records_per_commit
        d["ack_seconds_p50"] = self.ack_quantile(0.50)
        d["ack_seconds_p99"] = self.ack_quantile(0.99)
        return d


# --------------------------------------------------------------------------- work items


@dataclass(slots=True)
class _Append:
    records: list[SpoolRecord]
    future: asyncio.Future[list[int]]
    queued: float
    estimate: int


@dataclass(slots=True)
class _Delete:
    ids: list[int]
    future: asyncio.Future[int]


@dataclass(slots=True)
class _Probe:
    """Ask the writer whether a full filesystem has room again (retake the reserve if it has)."""


@dataclass(slots=True)
class _GroupResult:
    """What one write transaction did, handed from the writer thread to the event loop."""

    appends: list[tuple[_Append, list[int] | BaseException]]
    deletes: list[tuple[_Delete, int | BaseException]]
    committed: int = 0
    deleted: int = 0
    last_id: int = 0
    records: int = 0
    oldest: tuple[int, int] | None = None  # (id, received_ns) of the lowest id still spooled
    bytes_used: int = 0
    full_reason: Literal["limit", "disk"] | None = None
    reserve_released: bool = False
    reserve_retaken: bool = False
    probed: bool = False
    deferred: list[_Append] = field(default_factory=list)  # not tried yet: back to the writer's queue
    folded: bool = False  # the journaled appends handed to this group are in SQLite now
    folded_records: int = 0
    seq: int = 0  # the transaction's number (0: no transaction ran, no store state to apply)
    commit_seconds: float = 0.0
    done: float = 0.0
    error: bool = False


def _estimate(records: Sequence[SpoolRecord]) -> int:
    """Bytes the records will take in the database, roughly (the room checks count with it)."""
    return sum(len(r.payload) + _RECORD_OVERHEAD for r in records)


def _source_from_json(data: object) -> Source | None:
    """A stored source row, or None when it is unreadable (a corrupt file): the reader keeps the record."""
    try:
        return Source.from_dict(json.loads(data))  # type: ignore[arg-type]  # json.loads checks the type
    except (TypeError, ValueError, RecursionError):  # RecursionError: absurdly nested JSON
        return None


def _source_json(source: Source) -> str:
    # ensure_ascii keeps lone surrogates (surrogateescape'd file names) representable and exact.
    return json.dumps(source.to_dict(), sort_keys=True, separators=(",", ":"))


def _is_disk_full(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL


def _is_empty_spool(conn: sqlite3.Connection) -> bool:
    try:
        return bool(conn.execute("SELECT NOT EXISTS (SELECT 1 FROM records)").fetchone()[0] == 1)
    except sqlite3.OperationalError:  # no records table yet
        return True


def _connect(path: Path, create: bool) -> sqlite3.Connection:
    uri = path.absolute().as_uri() + ("?mode=rwc" if create else "?mode=rw")
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


# --------------------------------------------------------------------------- the writer side


class _Store:
    """The write connection and the id counters; used only by the writer thread (after open)."""

    def __init__(
        self,
        path: Path,
        max_bytes: int,
        synchronous: str,
        reserve_bytes: int,
        free_bytes: FreeBytes = filesystem_free_bytes,
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.synchronous = synchronous
        self.reserve_path = Path(f"{path}.reserve")
        self.reserve_bytes = reserve_bytes
        self.resume_free_bytes = _RESUME_FREE_FACTOR * max(reserve_bytes, 1 << 20)
        self._free_bytes = free_bytes
        self._lock_fd = self._take_lock(path)
        try:
            self.conn = self._open_db(path, synchronous)
        except BaseException:
            os.close(self._lock_fd)
            raise
        self.page_size: int = self.conn.execute("PRAGMA page_size").fetchone()[0]
        self.can_shrink = self.conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
        self.last_id, self.last_source_id = self._load_counters()
        self.source_ids: dict[Source, int] = {}
        for sid, data in self.conn.execute("SELECT id, data FROM sources"):
            known = _source_from_json(data)
            if known is not None:
                self.source_ids.setdefault(known, sid)
        self.count: int = self.conn.execute("SELECT COUNT(*) FROM records").fetchone()[0]
        self.oldest = self._oldest_row()
        self.bytes_used = self.used_bytes()
        self.reserve_held = self._take_reserve()
        # True from a full filesystem until the reserve is back: appends wait for room (hysteresis).
        self.disk_full = not self.reserve_held
        self.wal_written = 0  # estimate since the last checkpoint request
        # WAL bytes not yet copied into the database file (an overestimate between checkpoints made
        # here): on a full filesystem, finishing that copy is what the released reserve must pay for.
        self.unbackfilled = 0
        self.groups = 0  # transactions run, numbering their results
        try:
            self._recover_journal()
            self.journal = AckJournal(path, synchronous == "full", remove_journal(path))
        except BaseException:
            self.conn.close()
            os.close(self._lock_fd)
            raise

    def _recover_journal(self) -> int:
        """Fold what a previous process acknowledged through the ack journal but did not fold."""
        kept = JournalLedger()
        sources: dict[str, Source] = {}  # one object per source, as the receive path's records share theirs
        for e in read_journal(self.path):
            if e.id <= self.last_id:
                continue
            source = sources.get(e.source_json)
            if source is None:
                source = sources[e.source_json] = _source_from_json(e.source_json) or Source(transport="unknown")
            kept.keep(e.id, e.kind, source, e.received_ns, e.payload, len(e.payload) + _RECORD_OVERHEAD)
        if not kept:
            return 0
        try:
            self._transaction([], [], kept)
        except sqlite3.Error as exc:
            self._rollback()
            raise SpoolError(
                f"{self.path}: cannot move {len(kept)} acknowledged records from the ack journal into the "
                f"spool ({exc}); they stay in {self.path}.ack-* for the next start"
            ) from exc
        log.warning("spool %s: %d acknowledged records recovered from the ack journal", self.path, len(kept))
        return len(kept)

    # ---------------------------------------------------------------- the reserve for a full filesystem

    def _take_reserve(self) -> bool:
        """Hold ``reserve_bytes`` of real disk space in a file beside the spool.

        When the filesystem fills up, SQLite cannot checkpoint (the database file must grow) and
        cannot delete (the WAL must grow), so the pipeline could not make room any more. Releasing
        the reserve then gives checkpoints and deletes the space they need. Appends are taken only
        while the reserve is held, so they can never eat it.
        """
        if self.reserve_bytes <= 0:
            return True
        try:
            fd = os.open(self.reserve_path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.posix_fallocate(fd, 0, self.reserve_bytes)
            finally:
                os.close(fd)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                self.reserve_path.unlink(missing_ok=True)  # a partial reserve helps nobody
                return False
            log.warning("cannot keep a disk reserve at %s (%s); carrying on without", self.reserve_path, exc)
        return True

    def _retake_reserve(self) -> bool:
        """After a full filesystem, the reserve comes back only once there is room for it twice over.

        Releasing it is what made room; taking it back as soon as it fits would fill the filesystem
        again with the next append, and release it again: a flapping spool and a warning a second.
        """
        if self.disk_full:
            try:
                free = self._free_bytes(self.path.parent)
            except OSError as exc:
                log.debug("cannot tell the free space beside %s: %s", self.path, exc)
                return False
            if free < self.resume_free_bytes:
                free_pages = self._free_page_bytes()
                if free_pages < self.resume_free_bytes:
                    log.debug("spool probe: %d bytes free, %d in free pages: still full", free, free_pages)
                    return False
                # Drained: give the free pages, and the WAL the deletes wrote, back to the filesystem.
                if self.can_shrink:
                    self._shrink()
                else:
                    self._truncate_wal()
                try:
                    free = self._free_bytes(self.path.parent)
                except OSError:
                    return False
                # A spool that cannot shrink (made before auto-vacuum, never empty at start) reuses its
                # free pages in place: the reserve and a little WAL must fit beside them.
                needed = self.resume_free_bytes if self.can_shrink else self.reserve_bytes + 2 * _WAL_SLACK
                if free < needed:
                    log.debug("spool probe: drained, %d bytes free after shrinking: still full", free)
                    return False
        if not self._take_reserve():
            return False
        self.disk_full = False
        return True

    def _shrink(self) -> None:
        """Move the last pages into free slots and cut the file (in WAL mode: at the checkpoint).

        In steps, each checkpointed: one big step writes more WAL than a full filesystem has room for.
        """
        step = _SHRINK_STEP_BYTES // self.page_size
        while self.conn.execute("PRAGMA freelist_count").fetchone()[0] > 0:
            try:
                # executescript steps the statement to its end; execute() would free a single page.
                self.conn.executescript(f"PRAGMA incremental_vacuum({step});")
            except sqlite3.Error as exc:
                log.debug("shrinking the spool on a full filesystem failed: %s", exc)
                self._rollback()
                break
            finally:
                self._truncate_wal()
        self.bytes_used = self.used_bytes()

    def _free_page_bytes(self) -> int:
        return int(self.conn.execute("PRAGMA freelist_count").fetchone()[0] * self.page_size)

    def _release_reserve(self) -> bool:
        """Give the reserve up on a full filesystem; True if it was held (the Spool logs it)."""
        self.disk_full = True
        if not self.reserve_held:
            return False
        self.reserve_held = False
        if self.reserve_bytes > 0:
            self.reserve_path.unlink(missing_ok=True)
            log.debug("filesystem full: released the %d-byte spool reserve", self.reserve_bytes)
        self._truncate_wal()
        return True

    def _truncate_wal(self) -> None:
        """Give the WAL's space back to the filesystem; wait only briefly for readers to move on."""
        try:
            self.conn.execute("PRAGMA busy_timeout = 1000")
            busy, frames, copied = self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                self.unbackfilled = 0
            elif frames >= 0 and copied >= 0:
                self.unbackfilled = (frames - copied) * (self.page_size + 24)
        except sqlite3.Error as exc:
            log.debug("checkpoint on a full filesystem failed: %s", exc)
        finally:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("PRAGMA busy_timeout = 10000")

    @staticmethod
    def _take_lock(path: Path) -> int:
        """One process per spool: two writers would hand out the same ids."""
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SpoolError(
                f"{path}: spool is in use by another process (a running `auditrecv serve`? stop it first)"
            ) from None
        return fd

    @staticmethod
    def _open_db(path: Path, synchronous: str) -> sqlite3.Connection:
        if not path.exists():
            # Audit data: readable by the service user only. SQLite gives -wal/-shm the same mode.
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
            dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        conn = _connect(path, create=True)
        try:
            # Incremental auto-vacuum lets a drained spool give its free pages back to a full
            # filesystem (the file never shrinks otherwise). Set before the first table exists; an
            # older, empty spool is converted now (cheap), a non-empty one keeps working without.
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            if conn.execute("PRAGMA auto_vacuum").fetchone()[0] != 2 and _is_empty_spool(conn):
                conn.execute("VACUUM")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise SpoolError(f"{path}: cannot switch to WAL mode (got {mode!r})")
            conn.execute(f"PRAGMA synchronous = {'FULL' if synchronous == 'full' else 'NORMAL'}")
            conn.execute("PRAGMA journal_size_limit = 16777216")
            page_size = conn.execute("PRAGMA page_size").fetchone()[0]
            conn.execute(f"PRAGMA wal_autocheckpoint = {4 * CHECKPOINT_BYTES // page_size}")
            conn.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            for key, value in (("schema_version", SCHEMA_VERSION), ("last_id", 0), ("last_source_id", 0)):
                conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, value))
            conn.execute("COMMIT")
            version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
            if version != SCHEMA_VERSION:
                raise SpoolError(f"{path}: spool schema version {version}, this auditrecv reads {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise SpoolError(f"{path}: cannot open spool database: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _load_counters(self) -> tuple[int, int]:
        meta = dict(self.conn.execute("SELECT key, value FROM meta").fetchall())
        max_id = self.conn.execute("SELECT COALESCE(MAX(id), 0) FROM records").fetchone()[0]
        max_sid = self.conn.execute("SELECT COALESCE(MAX(id), 0) FROM sources").fetchone()[0]
        return max(meta["last_id"], max_id), max(meta["last_source_id"], max_sid)

    def _oldest_row(self) -> tuple[int, int] | None:
        """(id, received_ns) of the lowest id still spooled: the record waiting longest for the engine."""
        row = self.conn.execute("SELECT id, received_ns FROM records ORDER BY id LIMIT 1").fetchone()
        return (int(row[0]), int(row[1])) if row else None

    def used_bytes(self) -> int:
        pages = self.conn.execute("PRAGMA page_count").fetchone()[0]
        free = self.conn.execute("PRAGMA freelist_count").fetchone()[0]
        return int((pages - free) * self.page_size)

    def _rollback(self) -> None:
        if self.conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")

    # ---------------------------------------------------------------- the WAL on a tight filesystem

    def _within_reserve(self, appends: list[_Append]) -> tuple[list[_Append], list[_Append]]:
        """On a nearly full filesystem, the appends this group may take, and those deferred.

        When the disk fills, the reserve is released so the WAL can be checkpointed (copying its
        pages into the database file needs new space) and deletes can run. That works only if the
        WAL's uncopied pages fit in the reserve: with room to spare nothing is limited; near the end,
        the WAL is checkpointed before each group and a group adds at most a quarter of the reserve.
        """
        incoming = sum(op.estimate for op in appends)
        if self.reserve_bytes <= 0:
            return appends, []
        try:
            free = self._free_bytes(self.path.parent)
        except OSError:
            return appends, []
        if free >= self.unbackfilled + incoming + 4 * self.reserve_bytes:
            return appends, []
        if self.unbackfilled:
            self._backfill()
        # At least one append goes in: if the disk is full already, it finds out (and the reserve
        # is released); a checkpoint that cannot finish must not stall the writer.
        room = min(self.reserve_bytes // _TIGHT_GROUP_SHARE, free - _WAL_SLACK) - self.unbackfilled
        taken = appends[0].estimate
        for n, op in enumerate(appends[1:], start=1):
            if taken + op.estimate > room:
                return appends[:n], appends[n:]
            taken += op.estimate
        return appends, []

    def _backfill(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            _busy, frames, copied = self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if frames >= 0 and copied >= 0:
                self.unbackfilled = (frames - copied) * (self.page_size + 24)

    # ---------------------------------------------------------------- one group commit

    def run_group(
        self,
        appends: list[_Append],
        deletes: list[_Delete],
        probe: bool = False,
        journaled: JournalLedger | None = None,
    ) -> _GroupResult:
        """One write transaction for every queued operation; errors are per operation, never raised.

        ``probe``: the spool is full for want of disk and asks whether it has room again.
        ``journaled``: acknowledged records from the ack journal, folded in first with their ids
        (``result.folded`` says whether they made it; if not, they stay journaled for the next group).
        """
        started = time.monotonic()
        retaken = False
        if not appends and not deletes and not journaled:
            if probe and not self.reserve_held:
                self.reserve_held = retaken = self._retake_reserve()
            return self._finish(_GroupResult([], [], reserve_retaken=retaken, probed=probe), started)
        if appends and not self.reserve_held:
            # appends only with the reserve back in place
            self.reserve_held = retaken = self._retake_reserve()
        deferred: list[_Append] = []
        if appends and self.reserve_held:
            appends, deferred = self._within_reserve(appends)
        elif not self.reserve_held and self.unbackfilled:
            # A full filesystem: with the WAL copied out, the deletes' frames restart it from its
            # beginning instead of growing it into space there is none of.
            self._backfill()
        try:
            if appends and not self.reserve_held:
                raise sqlite3.OperationalError("no room for the spool reserve")
            result = self._transaction(appends, deletes, journaled)
            result.folded = bool(journaled)
            result.folded_records = len(journaled) if journaled else 0
        except sqlite3.Error as exc:
            self._rollback()
            if _is_disk_full(exc) or not self.reserve_held:
                log.debug("write transaction hit a full filesystem: %s", exc)
                released = self._release_reserve()
                refused = SpoolFull(self.bytes_used, self.max_bytes, "disk")
                result = self._deletes_only(deletes) if deletes else _GroupResult([], [])
                result.appends = [(op, refused) for op in appends]
                result.full_reason = "disk"
                result.reserve_released = released
            else:
                log.error("spool write transaction failed, %d appends refused: %s", len(appends), exc)
                failure = SpoolError(f"spool write failed: {exc}")
                result = _GroupResult([(op, failure) for op in appends], [(op, failure) for op in deletes])
                result.error = True
        except Exception as exc:  # a value SQLite cannot bind: fail this group, keep the spool running
            self._rollback()
            log.exception("spool write transaction failed, %d appends refused", len(appends))
            failure = SpoolError(f"spool write failed: {exc!r}")
            result = _GroupResult([(op, failure) for op in appends], [(op, failure) for op in deletes])
            result.error = True
        if (
            not appends
            and not self.reserve_held
            and not result.error
            and result.full_reason is None
            and (probe or self._free_page_bytes() >= self.resume_free_bytes)
        ):
            # The deletes left the file room for new records, or the spool's own probe timer asks:
            # with no sender left to probe, the spool must notice by itself (same hysteresis as an
            # append's retake, so this cannot flap).
            self.reserve_held = retaken = self._retake_reserve()
        result.reserve_retaken = retaken
        result.probed = probe
        result.deferred = deferred
        return self._finish(result, started)

    def _finish(self, result: _GroupResult, started: float) -> _GroupResult:
        self.groups += 1
        result.seq = self.groups
        result.commit_seconds = time.monotonic() - started
        result.done = time.monotonic()
        result.last_id = self.last_id
        result.oldest = self.oldest
        result.records = self.count
        result.bytes_used = self.bytes_used
        return result

    def _deletes_only(self, deletes: list[_Delete]) -> _GroupResult:
        """Deletes still go through when appends hit a full filesystem: they are how space returns."""
        try:
            return self._transaction([], deletes)
        except sqlite3.Error as exc:
            self._rollback()
            failure = SpoolError(f"spool delete failed: {exc}")
            return _GroupResult([], [(op, failure) for op in deletes], error=True)

    def _delete_ids(self, ids: list[int]) -> int:
        """One statement run per stretch of consecutive ids (a confirmed batch is mostly one), not per id."""
        before = self.conn.total_changes
        self.conn.executemany("DELETE FROM records WHERE id BETWEEN ? AND ?", _runs(ids))
        return self.conn.total_changes - before

    def _transaction(
        self, appends: list[_Append], deletes: list[_Delete], journaled: JournalLedger | None = None
    ) -> _GroupResult:
        conn = self.conn
        result = _GroupResult([], [])
        conn.execute("BEGIN IMMEDIATE")
        for d in deletes:
            n = self._delete_ids(d.ids)
            result.deletes.append((d, n))
            result.deleted += n
        count = self.count - result.deleted
        # WAL written by this transaction, roughly: touched pages plus the bytes moved.
        wal = 3 * self.page_size + result.deleted * (self.bytes_used // max(self.count, 1))
        next_id = self.last_id
        next_sid = self.last_source_id
        new_sources: dict[Source, int] = {}
        first_new: tuple[int, int] | None = None  # (id, received_ns) of the first record stored now

        def source_id(src: Source, added: list[Source]) -> int:
            nonlocal next_sid
            sid = self.source_ids.get(src) or new_sources.get(src)
            if sid is None:
                next_sid += 1
                sid = new_sources[src] = next_sid
                added.append(src)
                conn.execute("INSERT INTO sources (id, data) VALUES (?, ?)", (sid, _source_json(src)))
            return sid

        # Journaled records were acknowledged with their ids and admitted by the journal's own room
        # check: they keep the ids and are never refused here. Those at or below last_id were folded before
        # the journal was cut (a crash in between).
        # A fold takes thousands of records while the event loop (answering a stop-and-wait sender) waits for
        # the GIL whenever this thread holds it. Rows go in _FOLD_CHUNK at a time, one INSERT with as many
        # VALUES: SQLite then works for ~0.1 ms without the GIL, long enough for the loop to take it (one
        # executemany lets go of it for ~1 us per row, too short: the loop thread woke up to find it taken
        # again), and it costs less CPU per row (1.0-1.1 us against 1.3-1.4 us, measured alone). The
        # parameters come ready from the native ledger (no Python loop over the records).
        if journaled:
            folded, folded_wal, first, sources = journaled.plan(next_id)
            if folded:
                sids = [source_id(src, []) for src in sources]
                chunks, rest = journaled.rows(next_id, sids, _FOLD_CHUNK)
                for params in chunks:
                    conn.execute(_INSERT_SAME_CHUNK if len(params) == _SAME_CHUNK_VALUES else _INSERT_CHUNK, params)
                if rest:
                    conn.executemany(_INSERT_RECORD, rest)
                if first_new is None:
                    first_new = first
                next_id = journaled.last_id
            wal += folded_wal
            result.committed += folded
            count += folded
        if appends:
            used = self.bytes_used  # as the last transaction left it
            # Only when the whole group might not fit do we pay for a savepoint and a size check per append.
            careful = used + sum(a.estimate for a in appends) + 4 * self.page_size > self.max_bytes
            refused: BaseException | None = None
            for op in appends:
                if refused is not None:  # keep order: nothing after a refused append gets in
                    result.appends.append((op, refused))
                    continue
                saved_id, saved_sid = next_id, next_sid
                added: list[Source] = []
                if careful:
                    conn.execute("SAVEPOINT one_append")
                rows = []
                for rec in op.records:
                    sid = source_id(rec.source, added)
                    next_id += 1
                    rows.append((next_id, rec.kind, sid, rec.received_ns, rec.payload))
                conn.executemany(
                    "INSERT INTO records (id, kind, source_id, received_ns, payload) VALUES (?, ?, ?, ?, ?)", rows
                )
                if careful:
                    if self.used_bytes() > self.max_bytes:
                        conn.execute("ROLLBACK TO one_append")
                        conn.execute("RELEASE one_append")
                        next_id, next_sid = saved_id, saved_sid
                        for src in added:
                            del new_sources[src]
                        if count == 0:
                            refused = RecordTooLarge(
                                f"{len(op.records)} records need more than spool.max_bytes = {self.max_bytes}"
                            )
                        else:
                            refused = SpoolFull(used, self.max_bytes, "limit")
                            result.full_reason = "limit"
                        result.appends.append((op, refused))
                        continue
                    conn.execute("RELEASE one_append")
                result.appends.append((op, list(range(saved_id + 1, next_id + 1))))
                if first_new is None:
                    first_new = (rows[0][0], rows[0][3])
                wal += op.estimate
                result.committed += len(rows)
                count += len(rows)
        if next_id != self.last_id:
            conn.execute("UPDATE meta SET value = ? WHERE key = 'last_id'", (next_id,))
        if next_sid != self.last_source_id:
            conn.execute("UPDATE meta SET value = ? WHERE key = 'last_source_id'", (next_sid,))
        forget_sources = count == 0 and (self.source_ids or new_sources)
        if forget_sources:
            # Sources pile up (one per connection); an empty spool is the cheap moment to drop them.
            conn.execute("DELETE FROM sources")
        conn.execute("COMMIT")
        # Only now, with the commit durable, does in-memory state move forward.
        self.last_id, self.last_source_id, self.count = next_id, next_sid, count
        if forget_sources:
            self.source_ids.clear()
        else:
            self.source_ids.update(new_sources)
        if count == 0:
            self.oldest = None
        elif result.deleted:
            self.oldest = self._oldest_row()  # one step down the id index: cheap
        elif self.oldest is None:
            self.oldest = first_new
        self.bytes_used = self.used_bytes()
        self.wal_written += wal
        self.unbackfilled += wal
        return result

    def checkpoint_tail(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def close(self, journal_folded: bool = True) -> None:
        """``journal_folded``: False keeps the ack journal's files, for the next open to fold."""
        try:
            with contextlib.suppress(OSError):
                self.journal.close(journal_folded)
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.conn.close()
        finally:
            os.close(self._lock_fd)


def _runs(ids: list[int]) -> list[tuple[int, int]]:
    """The distinct `ids` as (first, last) stretches of consecutive integers."""
    ordered = sorted(set(ids))
    if not ordered or ordered[-1] - ordered[0] + 1 == len(ordered):
        return [(ordered[0], ordered[-1])] if ordered else []
    out: list[tuple[int, int]] = []
    for i in ordered:
        if out and out[-1][1] == i - 1:
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return out


def _notify(cond: threading.Condition) -> None:
    """Wake the writer thread: ``JournalLedger.append_record`` gave it work while it was idle."""
    with cond:
        cond.notify()


class _Writer:
    """The writer thread: collects queued operations and runs them as one transaction.

    It also owns the ack journal: a connection's append may be written there on the caller's
    thread and acknowledged at once (``journal_append``); the writer folds journaled records into
    SQLite in batches. Ids stay in order because regular appends get theirs only inside a group that
    folds every journaled record first, and no journal append happens while such a group runs.
    """

    def __init__(
        self, store: _Store, checkpointer: _Checkpointer, commit_delay: float, deliver: Any, ack_journal: bool = True
    ) -> None:
        self._store = store
        self._use_journal = ack_journal
        self._checkpointer = checkpointer
        self._delay = commit_delay
        self._deliver = deliver
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)  # ``with self._lock`` where nobody waits: cheaper
        self._pending: list[_Append | _Delete | _Probe] = []
        self._pending_records = 0
        self._pending_appends = 0
        self._expected_appends = 0  # appends in the previous group: who is likely to come back
        self._gathering = False
        self._stopping = False
        self._broken: BaseException | None = None
        # Whoever runs a transaction holds this (the writer thread; tests poke the store under it).
        self._store_lock = threading.Lock()
        # The ack journal's state, guarded by _cond (and by the GIL for the one-call append: see
        # Spool.try_append_now).
        self._journal = store.journal
        self._fsync = store.synchronous == "full"
        # One-record appends without the lock (Spool.try_append_now): with "normal" (no fdatasync on the loop).
        self.one_call = ack_journal and not self._fsync
        # Acknowledged, not folded yet, in id order (the fold's rows); and the journal's budget: ``issued``,
        # the highest id handed out so far, ``room``, the bytes journal appends may still take before a
        # group looks again. It also holds whether the writer is idle (``writer_idle``), when the kept
        # records are due for a fold (``fold_at``, monotonic seconds), the journal file and whether
        # try_append_now's one-call append may append (``open``): that call reads and sets them with the
        # append.
        self.ledger = self._kept = JournalLedger(
            now=time.monotonic(),
            wake=functools.partial(_notify, self._cond),  # not a bound method: no cycle through native code
            record_overhead=_RECORD_OVERHEAD,
            latency_window=_LATENCY_WINDOW,
            # The journal's limits, set once: the one-call append reads them natively, the locked way here.
            max_records=JOURNAL_MAX_RECORDS,
            fold_seconds=JOURNAL_FOLD_SECONDS,
            fold_records=JOURNAL_FOLD_RECORDS,
        )
        self._kept.issued = store.last_id
        self._kept.file = self._journal.file
        self._journal_kept = False  # stopping with records a fold could not take: keep the files
        self._group_appending = False  # the running group hands out ids to regular appends
        self._slow_sync_until = 0.0
        # Smoothed fdatasync time: one slow sync (a new file's first, a neighbour's burst) is no reason
        # to stop; a disk that stays slow is.
        self._sync_seconds = 0.0
        self._source_json: dict[Source, bytes] = {}
        self._last_source: Source | None = None
        self._last_source_bytes = b""
        self._update_room()
        self._reopen()
        self._thread = threading.Thread(target=self._run, name="auditrecv-spool-writer", daemon=True)
        self._thread.start()

    @property
    def journal_last_id(self) -> int:
        return self._kept.issued

    def submit(self, op: _Append | _Delete | _Probe) -> None:
        """Called on the event loop: a lock and maybe a notify, never I/O."""
        with self._cond:
            if self._broken is not None:
                raise SpoolError(f"spool writer stopped: {self._broken!r}")
            if self._stopping:
                raise SpoolClosed("spool is closing")
            self._pending.append(op)
            if isinstance(op, _Append):
                self._pending_records += len(op.records)
                self._pending_appends += 1
            if (
                self._kept.writer_idle
                or self._pending_records >= GROUP_MAX_RECORDS
                or (self._gathering and self._pending_appends >= self._expected_appends)
            ):
                self._cond.notify()

    def journal_append(self, records: list[SpoolRecord], estimate: int, queued: float, lone: bool) -> list[int] | None:
        """Make ``records`` durable in the ack journal on the calling (event loop) thread; their ids,
        or None: submit them to the writer instead (as an _Append; none is made here unless kept).

        A SQLite commit per stop-and-wait record is what limits audisp-remote; an append to a flat
        file is a copy into its shared mapping (and, with synchronous = "full", the msync no durable
        receiver can avoid). With "full" that sync blocks the loop, so only for a ``lone`` connection and a
        disk that syncs fast; concurrent connections share a group commit's fsync instead.
        """
        if len(records) == 1:
            rid = self.journal_append_one(records[0], estimate, queued, lone)
            return None if rid is None else [rid]
        if not self._use_journal or (self._fsync and (not lone or time.monotonic() < self._slow_sync_until)):
            return None
        n = len(records)
        with self._lock:  # the condition's lock (notify below needs it held)
            if (
                self._stopping
                or self._broken is not None
                or self._group_appending
                or self._kept.room < 2 * estimate
                or len(self._kept) + n > self._kept.max_records
            ):
                return None
            first = self._kept.issued + 1
            ids = list(range(first, first + n))
            try:
                self._journal.append_many(
                    (rid, rec.kind, self._source_bytes(rec.source), rec.received_ns, rec.payload)
                    for rid, rec in zip(ids, records, strict=True)
                )
            except OSError as exc:  # a full filesystem: the group path finds out and handles it
                log.debug("ack journal append failed, committing through SQLite: %s", exc)
                self._kept.room = 0
                return None
            if self._fsync:
                self._judge_sync()
            self._kept.issued = ids[-1]
            self._kept.room -= 2 * estimate  # the journal's bytes now, the database's later
            first_kept = not self._kept
            if first_kept:
                self._kept.fold_at = queued + self._kept.fold_seconds
            keep = self._kept.keep
            for rid, rec in zip(ids, records, strict=True):
                kept = keep(
                    rid, rec.kind, rec.source, rec.received_ns, rec.payload, len(rec.payload) + _RECORD_OVERHEAD
                )
            if kept >= self._kept.fold_records:
                self._kept.fold_at = 0.0
            if self._kept.writer_idle and (first_kept or self._kept.fold_at == 0.0):
                self._kept.writer_idle = False
                self._cond.notify()
        return ids

    def journal_append_one(self, rec: SpoolRecord, estimate: int, queued: float, lone: bool) -> int | None:
        """:meth:`journal_append` of one record, a stop-and-wait sender's every append: the same steps,
        without a list or a call that one record does not need (this runs once per acknowledged record)."""
        if not self._use_journal or (self._fsync and (not lone or time.monotonic() < self._slow_sync_until)):
            return None
        with self._lock:  # the condition's lock (notify below needs it held)
            if self._stopping or self._broken is not None or self._group_appending:
                return None
            source = self._last_source_bytes if rec.source is self._last_source else self._source_bytes(rec.source)
            try:
                # One native call: room and record-count checks, the id, the entry written, the record kept.
                rid = self._journal.append(
                    self._kept,
                    rec.kind,
                    source,
                    rec.source,
                    rec.received_ns,
                    rec.payload,
                    estimate,
                    self._kept.max_records,
                )
            except OSError as exc:  # a full filesystem: the group path finds out and handles it
                log.debug("ack journal append failed, committing through SQLite: %s", exc)
                self._kept.room = 0
                return None
            if rid is None:
                return None
            if self._fsync:
                self._judge_sync()
            kept = len(self._kept)
            if kept == 1:
                self._kept.fold_at = queued + self._kept.fold_seconds
            if kept >= self._kept.fold_records:
                self._kept.fold_at = 0.0
            if self._kept.writer_idle and (kept == 1 or self._kept.fold_at == 0.0):
                self._kept.writer_idle = False  # once: it sets this again before it waits again
                self._cond.notify()
        return rid

    def _reopen(self) -> None:
        """Under _cond: let the one-call append (Spool.try_append_now) in again, unless the writer is
        stopping, broken or handing out ids to a group's appends (those must follow every journaled id)."""
        self._kept.open = self.one_call and not (self._stopping or self._broken is not None or self._group_appending)

    def _judge_sync(self) -> None:
        """Under _cond, after a journal fdatasync: a disk that stays slow sends appends to group commits."""
        self._sync_seconds += (self._journal.last_sync_seconds - self._sync_seconds) / 8
        if self._sync_seconds > _SLOW_SYNC_SECONDS:
            self._slow_sync_until = time.monotonic() + _SLOW_SYNC_BACKOFF_SECONDS
            self._sync_seconds = 0.0  # judged afresh after the pause

    def _source_bytes(self, source: Source) -> bytes:
        if source is self._last_source:  # one connection's records share their Source object
            return self._last_source_bytes
        data = self._source_json.get(source)
        if data is None:
            if len(self._source_json) >= 10_000:  # one source per connection: keep it bounded
                self._source_json.clear()
            data = self._source_json[source] = _source_json(source).encode("utf-8", "surrogatepass")
        self._last_source, self._last_source_bytes = source, data
        self._kept.set_source(source, data)  # the one-call append's
        return data

    def _update_room(self) -> None:
        """Under _cond, after a group: how many bytes journal appends may take until the next one.

        Journaled records are never refused by the fold, so they must fit below max_bytes and leave
        the filesystem reserve alone; near either limit appends go through the group path, which
        checks each one.
        """
        st = self._store
        if not st.reserve_held or st.disk_full:
            self._kept.room = 0
            return
        room = st.max_bytes - st.bytes_used - 8 * st.page_size
        if st.reserve_bytes > 0:
            try:
                free = st._free_bytes(st.path.parent)
            except OSError:
                free = 0
            room = min(room, free - st.unbackfilled - 4 * st.reserve_bytes)
        self._kept.room = room - 2 * self._kept.estimate

    def _after_group(self) -> None:
        if self._checkpointer.backfilled:
            # The bulk was copied in the background; copying the short tail here, between
            # transactions, lets the next transaction restart the WAL from its beginning.
            self._checkpointer.backfilled = False
            self._store.checkpoint_tail()
        elif self._store.wal_written >= CHECKPOINT_BYTES:
            self._store.wal_written = 0
            self._checkpointer.poke()

    def _after_fold(self, result: _GroupResult, journaled: JournalLedger | None) -> None:
        with self._cond:
            self._kept.open = False  # the journal's cut, the ids and the room: no append in between
            if journaled:
                if result.folded:
                    upto = journaled.last_id
                    try:
                        self._journal.folded(upto)
                    except OSError as exc:  # the entries are in SQLite; the next open skips them
                        log.warning("cannot cut the spool's ack journal: %s", exc)
                elif self._stopping:
                    self._journal_kept = True  # the next open folds them
                else:
                    self._kept.put_back(journaled)
                    self._kept.fold_at = time.monotonic() + _FOLD_RETRY_SECONDS
            self._kept.issued = max(self._kept.issued, self._store.last_id)
            self._group_appending = False
            self._update_room()
            self._reopen()

    def _requeue(self, deferred: list[_Append]) -> None:
        """Appends held back on a tight filesystem go first in the next group."""
        with self._cond:
            self._pending[:0] = deferred
            self._pending_records += sum(len(op.records) for op in deferred)
            self._pending_appends += len(deferred)

    def stop(self) -> None:
        """Blocking: let the writer commit what is queued, then close the database."""
        with self._cond:
            self._stopping = True
            self._kept.open = False
            self._cond.notify()
        self._thread.join()

    def request_fold(self) -> None:
        """Fold the journal now (a reader wants what was acknowledged); called on the event loop."""
        with self._cond:
            if self._kept:
                self._kept.fold_at = 0.0
                if self._kept.writer_idle:
                    self._cond.notify()

    def _fold_due(self) -> bool:
        return bool(self._kept) and (self._stopping or time.monotonic() >= self._kept.fold_at)

    def _take_group(self) -> tuple[list[_Append | _Delete | _Probe], JournalLedger | None] | None:
        with self._cond:
            while not self._pending and not self._stopping and not self._fold_due():
                # Idle first, then the kept records read: an append in between sees it idle and wakes it.
                self._kept.writer_idle = True
                self._cond.wait(max(0.0, self._kept.fold_at - time.monotonic()) if self._kept else None)
            self._kept.writer_idle = False
            if not self._pending and not self._kept:
                return None
            # Wait for company only when there is company to expect: the appenders acked by the
            # previous group tend to come back together. A lone stop-and-wait sender (audisp-remote)
            # is never delayed; the wait also ends as soon as everyone expected has arrived.
            if self._pending and self._delay > 0 and self._expected_appends > 1 and not self._stopping:
                deadline = time.monotonic() + self._delay
                self._gathering = True
                while (
                    self._pending_appends < self._expected_appends
                    and self._pending_records < GROUP_MAX_RECORDS
                    and not self._stopping
                ):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                self._gathering = False
            ops, self._pending = self._pending, []
            self._expected_appends = self._pending_appends
            self._pending_records = self._pending_appends = 0
            # Every journaled record goes into this group, before any regular append gets an id.
            self._kept.open = False  # the take and the rotation: no append in between
            journaled = self._kept.take() if self._kept else None
            if journaled:
                try:
                    self._journal.rotate_if_large()
                except OSError as exc:  # carry on in the full file; the next group tries again
                    log.warning("cannot start a new ack journal file: %s", exc)
                self._kept.file = self._journal.file
            self._group_appending = self._expected_appends > 0
            self._reopen()
            return ops, journaled

    def _run(self) -> None:
        try:
            while (taken := self._take_group()) is not None:
                ops, journaled = taken
                appends = [op for op in ops if isinstance(op, _Append)]
                deletes = [op for op in ops if isinstance(op, _Delete)]
                probe = any(isinstance(op, _Probe) for op in ops)
                with self._store_lock:
                    result = self._store.run_group(appends, deletes, probe, journaled)
                    self._after_group()
                self._after_fold(result, journaled)
                self._deliver(result)
                if result.deferred:
                    self._requeue(result.deferred)
        except BaseException as exc:  # a bug here must not leave appenders waiting forever
            log.exception("spool writer thread failed")
            with self._cond:
                self._broken = exc
                self._kept.open = False
                ops, self._pending = self._pending, []
                self._journal_kept = True  # acknowledged: the next open folds what is journaled
            failure = SpoolError(f"spool writer stopped: {exc!r}")
            self._deliver(
                _GroupResult(
                    [(op, failure) for op in ops if isinstance(op, _Append)],
                    [(op, failure) for op in ops if isinstance(op, _Delete)],
                    error=True,
                )
            )
        finally:
            try:
                self._checkpointer.stop()  # before the final checkpoint of store.close()
                with self._store_lock:
                    self._store.close(journal_folded=not self._journal_kept and not self._kept)
            except Exception:
                log.exception("closing the spool database failed")


class _Checkpointer:
    """Copies the WAL back into the database file in its own thread, so commits do not wait for it.

    PASSIVE checkpoints never block the writer or readers; SQLite restarts the WAL from its start
    once a checkpoint has caught up, which keeps the WAL file near CHECKPOINT_BYTES.
    """

    def __init__(self, path: Path, synchronous: str) -> None:
        self._conn = _connect(path, create=False)
        self._conn.execute(f"PRAGMA synchronous = {'FULL' if synchronous == 'full' else 'NORMAL'}")
        self._wake = threading.Event()
        self._stopping = False
        self.checkpoints = 0
        self.backfilled = False  # set here, cleared by the writer: a plain flag is enough
        self._thread = threading.Thread(target=self._run, name="auditrecv-spool-checkpoint", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def _run(self) -> None:
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    break
                try:
                    self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                    self.backfilled = True
                except sqlite3.Error as exc:  # the writer's own checkpoints still bound the WAL
                    log.debug("background checkpoint failed: %s", exc)
        finally:
            self._conn.close()


# --------------------------------------------------------------------------- the reader side


class _Reader:
    """A read-only connection; WAL lets it read while the writer commits."""

    def __init__(self, path: Path) -> None:
        if not path.exists():
            raise FileNotFoundError(f"{path}: no spool here")
        self.conn = _connect(path, create=False)
        self.conn.execute("PRAGMA query_only = 1")
        self._sources: dict[int, Source] = {}

    def read(self, after_id: int, limit: int) -> list[tuple[int, SpoolRecord]]:
        conn = self.conn
        conn.execute("BEGIN")  # one snapshot for records and their sources
        try:
            rows = conn.execute(_SELECT, (after_id, limit)).fetchall()
            out = []
            for rid, kind, sid, received_ns, payload in rows:
                out.append((rid, spool_record(cast(RecordKind, kind), payload, self._source(sid), received_ns)))
        finally:
            conn.execute("COMMIT")
        return out

    def _source(self, sid: int) -> Source:
        src = self._sources.get(sid)
        if src is None:
            row = self.conn.execute("SELECT data FROM sources WHERE id = ?", (sid,)).fetchone()
            src = _source_from_json(row[0]) if row is not None else None
            if src is None:  # no row, or not ours: still return the record
                log.error("spool source %d missing or unreadable", sid)
                return Source(transport="unknown")
            if len(self._sources) >= 10_000:  # one source per connection: keep the cache bounded
                self._sources.clear()
            self._sources[sid] = src  # source ids are never reused, so caching is safe
        return src

    def close(self) -> None:
        self.conn.close()


def iter_records(
    path: str | os.PathLike[str], after_id: int = 0, chunk: int = 1000
) -> Iterator[tuple[int, SpoolRecord]]:
    """Every record in id order, synchronously (for ``auditrecv export``); safe while the service runs.

    Reads in chunks, each its own short read transaction, so a slow consumer never holds back WAL
    checkpoints of a running service.
    """
    reader = _Reader(Path(path))
    try:
        while batch := reader.read(after_id, chunk):
            yield from batch
            after_id = batch[-1][0]
    finally:
        reader.close()
    # Acknowledged through the ack journal and not folded yet (a stopped or killed service's last
    # milliseconds): the next open folds them; until then they are read from the journal.
    for e in read_journal(Path(path)):
        if e.id > after_id:
            source = _source_from_json(e.source_json) or Source(transport="unknown")
            yield e.id, SpoolRecord(cast(RecordKind, e.kind), e.payload, source, e.received_ns)
            after_id = e.id


# --------------------------------------------------------------------------- the public object


class Spool:
    """A durable queue of raw records. Create with ``await Spool.open(path, ...)``; one per process.

    Receivers: ``ids = await spool.append(records)`` then acknowledge; on ``SpoolFull`` do not
    acknowledge, ``await spool.wait_for_space()`` and let the sender retry.
    Pipeline: ``await spool.wait_for_records(cursor)``, ``await spool.read(cursor, n)``, ship,
    ``await spool.delete(confirmed_ids)``.
    """

    def __init__(
        self,
        store: _Store,
        reader: _Reader,
        checkpointer: _Checkpointer,
        *,
        low_water_ratio: float,
        resume_ratio: float,
        commit_delay: float,
        clock: Callable[[], float] = time.monotonic,
        ack_journal: bool = True,
    ) -> None:
        """Use ``Spool.open``: construction does blocking I/O that belongs in a thread."""
        self._loop = asyncio.get_running_loop()
        self._clock = clock
        self._reserve_bytes = store.reserve_bytes
        self._resume_free_bytes = store.resume_free_bytes
        self.path = store.path
        self.max_bytes = store.max_bytes
        self.low_water_bytes = int(store.max_bytes * low_water_ratio)
        self.resume_bytes = int(store.max_bytes * resume_ratio)
        self._metrics = SpoolMetrics(max_bytes=store.max_bytes)  # see the ``metrics`` property
        self.commit_latency = LatencyHistogram()  # per write transaction, for /metrics
        self._last_id = store.last_id
        self._oldest = store.oldest
        self._count = store.count
        self._bytes_used = store.bytes_used
        # Without its reserve (the filesystem is full already) the spool starts refusing appends,
        # so that the pipeline can drain it; appends resume once the reserve could be taken.
        self._full = not store.reserve_held
        self._full_reason: Literal["limit", "disk"] = "disk" if self._full else "limit"
        self._next_probe = 0.0
        self._probe_interval = _DISK_FULL_PROBE_SECONDS
        self._probe_timer: asyncio.TimerHandle | None = None
        self._applied_seq = 0  # the newest transaction whose store state the spool shows
        self._journaled = 0  # acknowledged through the ack journal, not folded into SQLite yet
        self._journal_oldest = 0  # received_ns of the first of them
        self._fold_waiters: list[tuple[int, asyncio.Future[None]]] = []  # (id wanted in SQLite, waiter)
        self._last_appender: object = None  # a task (or what try_append_now was told)
        self._last_append = -_LONE_SECONDS
        self._probe_queued = False
        self._closing = False
        self._closed = False
        self._close_done = asyncio.Event()
        self._commit_event = asyncio.Event()
        self._space_event = asyncio.Event()
        self._reader = reader
        self._read_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="auditrecv-spool-reader")
        self._writer = _Writer(store, checkpointer, commit_delay, self._deliver_threadsafe, ack_journal)
        # A one-record append in one native call (try_append_now), counted in the ledger's tally.
        self._one_call = self._writer.one_call
        self._ledger = self._writer.ledger
        self._state: SpoolState = "ok"
        self._update_state()
        if self._full:
            self._metrics.full_events += 1
            self._next_probe = clock() + self._probe_interval
            self._arm_probe()
            log.warning(
                "spool full (filesystem full): no room for the %d-byte reserve; refusing new records until "
                "%d bytes are free beside %s",
                store.reserve_bytes,
                store.resume_free_bytes,
                store.path,
            )

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        settings: SpoolSettings | None = None,
        *,
        max_bytes: int | None = None,
        low_water_ratio: float | None = None,
        commit_delay: float | None = None,
        synchronous: str | None = None,
        resume_ratio: float | None = None,
        reserve_bytes: int | None = None,
        free_bytes: FreeBytes = filesystem_free_bytes,
        clock: Callable[[], float] = time.monotonic,
        ack_journal: bool = True,
    ) -> Spool:
        """Open (creating if needed) and recover the spool at ``path``.

        Values come from the keyword arguments, else from ``settings`` (``config.spool``), else the
        defaults (1 GiB, 0.8, 2 ms, "full"). ``resume_ratio`` (default = ``low_water_ratio``) is where
        a full spool takes records again: the gap keeps it from flapping (and logging) per record.
        ``reserve_bytes`` (default min(16 MiB, max_bytes/32), at least 1 MiB; 0 = none) is disk space
        held in ``<path>.reserve`` and released when the filesystem fills, so deletes still work; it is
        taken back once ``free_bytes(directory)`` reports twice its size free. ``clock`` paces the
        checks for that (monotonic seconds). Both are there for tests that simulate a full disk.
        ``ack_journal=False`` commits every append through SQLite (the ack journal off: tests and
        benchmarks of the group-commit path).
        Raises ``SpoolError`` if the file is not a spool or another process holds it.
        """

        def pick(value: Any, name: str, default: Any) -> Any:
            if value is not None:
                return value
            return getattr(settings, name) if settings is not None else default

        max_b = int(pick(max_bytes, "max_bytes", 1024**3))
        low = float(pick(low_water_ratio, "low_water_ratio", 0.8))
        delay = float(pick(commit_delay, "commit_delay", 0.002))
        sync = str(pick(synchronous, "synchronous", "full"))
        resume = low if resume_ratio is None else float(resume_ratio)
        if sync not in ("full", "normal"):
            raise ValueError(f"synchronous = {sync!r}: expected 'full' or 'normal'")
        if max_b <= 0 or not 0 < low <= 1 or not 0 < resume <= 1 or delay < 0:
            raise ValueError("spool settings out of range")
        p = Path(path).expanduser()
        if reserve_bytes is None:
            reserve_bytes = min(DEFAULT_RESERVE_BYTES, max(max_b // 32, 1 << 20))
        try:
            store = await asyncio.to_thread(_Store, p, max_b, sync, reserve_bytes, free_bytes)
        except OSError as exc:
            raise SpoolError(f"{p}: cannot open spool: {exc.strerror or exc}") from exc
        try:
            reader = await asyncio.to_thread(_Reader, p)
            try:
                checkpointer = await asyncio.to_thread(_Checkpointer, p, sync)
            except BaseException:
                await asyncio.to_thread(reader.close)
                raise
        except BaseException:
            await asyncio.to_thread(store.close)
            raise
        spool = cls(
            store,
            reader,
            checkpointer,
            low_water_ratio=low,
            resume_ratio=resume,
            commit_delay=delay,
            clock=clock,
            ack_journal=ack_journal,
        )
        log.info(
            "spool %s open: %d records, %d of %d bytes used, next id %d",
            p,
            store.count,
            store.bytes_used,
            max_b,
            store.last_id + 1,
        )
        return spool

    async def __aenter__(self) -> Spool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---------------------------------------------------------------- state

    @property
    def state(self) -> SpoolState:
        """ "ok", "low" (above low_water_ratio: warn senders) or "full" (appends refused)."""
        return self._state

    @property
    def bytes_used(self) -> int:
        """Bytes of database pages in use (the file never grows beyond max_bytes, plus the WAL)."""
        return self._bytes_used

    @property
    def last_id(self) -> int:
        """The highest id ever committed (0 if none); ids only grow."""
        return max(self._last_id, self._writer.journal_last_id)

    @property
    def closed(self) -> bool:
        return self._closing

    def count(self) -> int:
        """Records in the spool now (committed, not yet deleted), the ack journal's included."""
        self._absorb_journaled()
        return self._count + self._journaled

    @property
    def oldest_received_ns(self) -> int | None:
        """When the oldest record still spooled (committed, not yet confirmed by the engine) arrived,
        as its ``received_ns``; None when the spool is empty. Kept by the writer: no I/O here."""
        self._absorb_journaled()
        if self._oldest is not None:
            return self._oldest[1]
        return self._journal_oldest if self._journaled else None

    @property
    def metrics(self) -> SpoolMetrics:
        """The counters for the HTTP endpoint (read them, never write them), up to date: the one-call
        appends of try_append_now are counted natively and added here, when they are read (on the event
        loop's thread, like every call of the spool: adding them moves the spool's own counts)."""
        self._absorb_journaled()
        return self._metrics

    def stats(self) -> dict[str, Any]:
        """A snapshot of the metrics as plain values, for the HTTP endpoint and logs."""
        return self.metrics.as_dict()

    def metric_families(self) -> Iterator[Metric]:
        """The spool's counters as Prometheus metrics (auditrecv.metrics), read at scrape time."""
        m = self.metrics
        oldest_ns = self.oldest_received_ns
        age = max(0.0, (time.time_ns() - oldest_ns) / 1e9) if oldest_ns is not None else 0.0
        yield gauge("auditrecv_spool_records", "Records in the spool now (not yet confirmed by the engine).", m.records)
        yield gauge("auditrecv_spool_bytes", "Database pages in use, bytes.", m.bytes_used)
        yield gauge("auditrecv_spool_max_bytes", "The spool's size limit ([spool] max_bytes).", m.max_bytes)
        yield gauge(
            "auditrecv_spool_oldest_record_age_seconds",
            "Age of the oldest record not yet confirmed by the engine (0 when the spool is empty).",
            age,
        )
        yield gauge("auditrecv_spool_full", "1 while the spool is full and refusing records.", m.state == "full")
        yield counter("auditrecv_spool_records_appended", "Records handed to the spool.", m.appended)
        yield counter("auditrecv_spool_records_committed", "Records durably stored (acknowledgeable).", m.committed)
        yield counter(
            "auditrecv_spool_records_refused",
            "Records the spool refused (full, too large, write errors): not stored, not acknowledged.",
            m.refused,
        )
        yield counter("auditrecv_spool_records_deleted", "Records removed once the engine confirmed them.", m.deleted)
        yield counter("auditrecv_spool_commits", "Write transactions committed.", m.commits)
        yield counter("auditrecv_spool_errors", "Write transactions that failed.", m.errors)
        yield counter("auditrecv_spool_full_events", "Times the spool became full.", m.full_events)
        yield counter(
            "auditrecv_spool_reserve_releases",
            "Times the disk reserve was given up because the filesystem was full.",
            m.reserve_releases,
        )
        yield counter("auditrecv_spool_reserve_retakes", "Times the disk reserve was taken back.", m.reserve_retakes)
        yield histogram(
            "auditrecv_spool_commit_seconds",
            "Time inside one write transaction (insert and fsync).",
            self.commit_latency,
        )

    # ---------------------------------------------------------------- receivers

    async def append(self, records: Sequence[SpoolRecord]) -> list[int]:
        """Store records durably; returns their ids (consecutive, increasing) once committed.

        Acknowledge the sender only after this returns. Raises ``SpoolFull`` (nothing stored:
        backpressure), ``RecordTooLarge``, ``SpoolClosed`` or ``SpoolError`` (nothing stored).
        If the awaiting task is cancelled, the records may still be committed (never half).
        """
        if self._closing:
            raise SpoolClosed("spool is closed")
        recs = [self._checked(r) for r in records]
        if not recs:
            return []
        self._absorb_journaled()  # the counts below go on from the one-call appends'
        if self._full:
            now = self._clock()
            if self._full_reason == "limit" or now < self._next_probe:
                self._metrics.appended += len(recs)
                self._metrics.refused += len(recs)
                raise SpoolFull(self._bytes_used, self.max_bytes, self._full_reason)
            # Let this one find out whether the filesystem has room again; back off until it has.
            self._back_off_probe(now)
        now = time.monotonic()
        estimate = _estimate(recs)
        self._metrics.appended += len(recs)
        # One connection is one task: a lone stop-and-wait sender is the only task appending lately.
        task = asyncio.current_task()
        lone = task is self._last_appender or now - self._last_append > _LONE_SECONDS
        self._last_appender, self._last_append = task, now
        ids = self._writer.journal_append(recs, estimate, now, lone)
        if ids is not None:
            self._journaled_now(len(recs), recs[0].received_ns, now)
            return ids
        future: asyncio.Future[list[int]] = self._loop.create_future()
        self._writer.submit(_Append(recs, future, now, estimate))
        return await future

    def try_append_now(self, records: Sequence[SpoolRecord], appender: object) -> list[int] | None:
        """:meth:`append` without awaiting: the ids once the records are in the ack journal (durable
        as ``append`` promises), or None when that cannot happen right now (nothing was stored or
        counted: call ``append``). For a receiver that answers a read inside its protocol callback;
        ``appender`` is what ``append`` would see as its task (the connection's task), so both ways
        of appending count as the same sender when deciding whether it is alone."""
        if self._closing or self._full or not records:
            return None
        if self._one_call and len(records) == 1:
            rec = records[0]
            rid = self.try_append_one(rec.kind, rec.payload, rec.source, rec.received_ns, appender)
            return None if rid is None else [rid]
        return self._append_now_locked(records, appender)

    def try_append_one(
        self, kind: RecordKind, payload: bytes, source: Source, received_ns: int, appender: object
    ) -> int | None:
        """:meth:`try_append_now` of one record given by its fields: its id, or None. A stop-and-wait
        receiver's every read, without making a ``SpoolRecord`` (the journal keeps only the fields)."""
        if self._closing or self._full:
            return None
        if self._one_call:
            # A stop-and-wait sender's case with "normal": checks, id, journal write, kept record, fold
            # timing, waking the writer and the counts in one native call (JournalLedger.append_record),
            # without the writer's lock: only this thread appends, and the call holds the GIL throughout, so
            # it falls between two of the writer thread's calls. Where the writer works on the journal in
            # several steps (taking a fold's records and rotating the file, cutting it after a fold, handing
            # out ids to a group's appends, stopping) it closes the ledger first: APPEND_CLOSED, and the
            # locked way below waits for it as before. The counts are added to ``metrics`` when it is read.
            # Who appended last only matters with "full": not noted here.
            try:
                rid: int = self._ledger.append_record(kind, payload, source, received_ns)
            except OSError as exc:  # a full filesystem (the room is 0 now): the group path finds out
                log.debug("ack journal append failed, committing through SQLite: %s", exc)
                return None
            if rid > 0:
                return rid
            if rid == APPEND_DECLINED:
                return None
        ids = self._append_now_locked((spool_record(kind, payload, source, received_ns),), appender)
        return None if ids is None else ids[0]

    def _append_now_locked(self, records: Sequence[SpoolRecord], appender: object) -> list[int] | None:
        """try_append_now through the writer's lock (any number of records, "full", what the one-call
        append handed back)."""
        self._absorb_journaled()  # the counts below go on from the one-call appends'
        now = time.monotonic()
        lone = appender is self._last_appender or now - self._last_append > _LONE_SECONDS
        if len(records) == 1:  # a stop-and-wait sender's case, in as few steps as it takes
            rec = self._checked(records[0])  # raises as append would
            taken = self._writer.journal_append_one(rec, len(rec.payload) + _RECORD_OVERHEAD, now, lone)
            if taken is None:
                return None  # declined, it leaves no trace: the append that follows decides who is alone
            self._last_appender, self._last_append = appender, now
            m = self._metrics
            m.appended += 1
            if not self._journaled:
                self._journal_oldest = rec.received_ns
            m.records = self._count + (journaled := self._journaled + 1)  # see _journaled_now
            self._journaled = journaled
            m.journaled += 1
            m.committed += 1
            latency = time.monotonic() - now
            m.ack_seconds_sum += latency
            if latency > m.ack_seconds_max:
                m.ack_seconds_max = latency
            m.recent_ack_seconds.append(latency)
            return [taken]
        recs = [self._checked(r) for r in records]
        ids = self._writer.journal_append(recs, _estimate(recs), now, lone)
        if ids is not None:
            self._last_appender, self._last_append = appender, now
            self._metrics.appended += len(recs)
            self._journaled_now(len(recs), recs[0].received_ns, now)
        return ids

    def _absorb_journaled(self) -> None:
        """Count what the one-call appends (try_append_now with "normal") took since the last look: the
        native ledger tallies them per record, the spool's counters take them when read or moved on."""
        if not self._ledger.tally_records:
            return
        n, first_received_ns, ack_sum, ack_max, recent = self._ledger.take_tally()
        self._metrics.appended += n
        self._count_journaled(n, first_received_ns, ack_sum, ack_max, recent)

    def _journaled_now(self, n: int, first_received_ns: int, started: float) -> None:
        """Bookkeeping once the ack journal took ``n`` records (acknowledged, not in SQLite yet)."""
        latency = time.monotonic() - started
        self._count_journaled(n, first_received_ns, latency, latency, (latency,))

    def _count_journaled(
        self, n: int, first_received_ns: int, ack_sum: float, ack_max: float, recent: Iterable[float]
    ) -> None:
        """``n`` records journaled (acknowledged, not in SQLite yet), however they were appended."""
        if not self._journaled:
            self._journal_oldest = first_received_ns
        self._journaled += n
        m = self._metrics
        m.journaled += n
        m.committed += n
        m.ack_seconds_sum += ack_sum
        if ack_max > m.ack_seconds_max:
            m.ack_seconds_max = ack_max
        m.recent_ack_seconds.extend(recent)
        # The journal leaves the state alone (bytes_used moves when the writer folds): only the count.
        m.records = self._count + self._journaled

    @staticmethod
    def _checked(rec: SpoolRecord) -> SpoolRecord:
        if type(rec.payload) is not bytes:
            if not isinstance(rec.payload, bytes | bytearray | memoryview):
                raise TypeError(f"SpoolRecord.payload must be bytes, not {type(rec.payload).__name__}")
            rec = dataclasses.replace(rec, payload=bytes(rec.payload))
        if not isinstance(rec.source, Source) or type(rec.received_ns) is not int or not isinstance(rec.kind, str):
            raise TypeError("SpoolRecord needs a str kind, a Source and an int received_ns")
        if not -(2**63) <= rec.received_ns < 2**63:
            raise ValueError(f"SpoolRecord.received_ns = {rec.received_ns} does not fit 64 bits")
        return rec

    async def wait_for_space(self, timeout: float | None = None) -> bool:
        """Wait until the spool takes records again, or (full filesystem) until an append may find
        out whether it does. True: try the append again; False on timeout or close."""
        try:
            async with asyncio.timeout(timeout):
                while self._full and not self._closing:
                    if self._full_reason != "limit":
                        due = self._next_probe - self._clock()
                        if due <= 0:
                            return True
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._space_event.wait(), due)
                        continue
                    await self._space_event.wait()
        except TimeoutError:
            return False
        return not self._full and not self._closing

    # ---------------------------------------------------------------- pipeline

    async def read(self, after_id: int, limit: int) -> list[tuple[int, SpoolRecord]]:
        """Up to ``limit`` committed records with id > ``after_id``, in id order."""
        if self._closing:
            raise SpoolClosed("spool is closed")
        if limit <= 0 or after_id >= self.last_id:
            return []
        self._absorb_journaled()
        if self._journaled:
            await self._fold_journal()  # acknowledged, still in the ack journal: fold it first
            if after_id >= self._last_id or self._closing:
                return []
        return await self._loop.run_in_executor(self._read_pool, self._reader.read, after_id, limit)

    async def _fold_journal(self) -> None:
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._fold_waiters.append((self._writer.journal_last_id, waiter))
        self._writer.request_fold()
        await waiter

    def _wake_fold_waiters(self) -> None:
        keep = []
        for wanted, waiter in self._fold_waiters:
            if wanted <= self._last_id or not self._journaled or self._closing:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                keep.append((wanted, waiter))
        self._fold_waiters = keep

    async def wait_for_records(self, after_id: int, timeout: float | None = None) -> bool:
        """Wait until records with id > ``after_id`` may exist; woken by commits, never polls.

        True when such records were committed and the spool is not empty (a following ``read``
        may still return [] if they were deleted meanwhile); False on timeout or close.
        """

        def ready() -> bool:
            return self._last_id > after_id and self._count > 0

        try:
            async with asyncio.timeout(timeout):
                while not ready() and not self._closing:
                    await self._commit_event.wait()
        except TimeoutError:
            pass
        return ready() and not self._closing

    async def delete(self, ids: Sequence[int]) -> int:
        """Remove records the engine confirmed; returns how many existed. Unknown ids are ignored."""
        if self._closed:
            raise SpoolClosed("spool is closed")
        id_list = [int(i) for i in ids]
        if not id_list:
            return 0
        self._absorb_journaled()
        if self._journaled and max(id_list) > self._last_id:
            await self._fold_journal()
        future: asyncio.Future[int] = self._loop.create_future()
        self._writer.submit(_Delete(id_list, future))
        return await future

    async def close(self) -> None:
        """Commit what is queued, checkpoint, close. Appends after this raise ``SpoolClosed``."""
        if self._closing:
            await self._close_done.wait()
            return
        self._closing = True
        self._absorb_journaled()
        self._wake_fold_waiters()
        if self._probe_timer is not None:
            self._probe_timer.cancel()
        self._wake(self._commit_event)
        self._wake(self._space_event)
        await self._loop.run_in_executor(self._read_pool, self._reader.close)
        self._read_pool.shutdown(wait=False)
        try:
            await asyncio.to_thread(self._writer.stop)
        finally:
            self._closed = True
            self._close_done.set()
        log.info("spool %s closed: %d records kept", self.path, self._count)

    # ---------------------------------------------------------------- results from the writer

    def _note_ack(self, latency: float) -> None:
        m = self._metrics
        m.ack_seconds_sum += latency
        m.ack_seconds_max = max(m.ack_seconds_max, latency)
        m.recent_ack_seconds.append(latency)

    def _deliver_threadsafe(self, result: _GroupResult) -> None:
        with contextlib.suppress(RuntimeError):  # loop already closed: nobody is waiting any more
            self._loop.call_soon_threadsafe(self._on_group, result)

    def _on_group(self, res: _GroupResult) -> None:
        self._absorb_journaled()  # before the fold's records are taken off the journaled count
        m = self._metrics
        for op, outcome in res.appends:
            if isinstance(outcome, BaseException):
                m.refused += len(op.records)
                if not op.future.done():
                    op.future.set_exception(outcome)
            else:
                self._note_ack(res.done - op.queued)
                if not op.future.done():
                    op.future.set_result(outcome)
        for dop, n in res.deletes:
            if not dop.future.done():
                if isinstance(n, BaseException):
                    dop.future.set_exception(n)
                else:
                    dop.future.set_result(n)
        if res.probed:
            self._probe_queued = False
        if res.error:
            m.errors += 1
        elif res.appends or res.deletes:
            m.commits += 1
            m.commit_seconds_sum += res.commit_seconds
            m.commit_seconds_max = max(m.commit_seconds_max, res.commit_seconds)
            self.commit_latency.observe(res.commit_seconds)
        if res.committed > res.folded_records:
            m.append_commits += 1
            m.committed += res.committed - res.folded_records
            m.max_records_per_commit = max(m.max_records_per_commit, res.committed)
        m.deleted += res.deleted
        self._journaled -= res.folded_records
        if res.last_id:
            self._last_id = max(self._last_id, res.last_id)
        m.reserve_releases += res.reserve_released
        m.reserve_retakes += res.reserve_retaken
        if res.seq <= self._applied_seq:
            # Not a transaction's result (seq 0: the writer failed) or an older one: it carries no
            # store state newer than what the spool already shows.
            if res.committed:
                self._wake(self._commit_event)
            return
        self._applied_seq = res.seq
        self._count = res.records
        self._oldest = res.oldest
        self._bytes_used = res.bytes_used
        if res.full_reason is not None and not self._full:
            self._full = True
            self._full_reason = res.full_reason
            self._probe_interval = _DISK_FULL_PROBE_SECONDS
            self._next_probe = self._clock() + self._probe_interval
            if res.full_reason == "disk":
                self._arm_probe()
            m.full_events += 1
            if res.full_reason == "limit":
                log.warning(
                    "spool full (spool.max_bytes reached): %d of %d bytes used, %d records; refusing new records "
                    "until space is freed",
                    self._bytes_used,
                    self.max_bytes,
                    self._count,
                )
            else:
                log.warning(
                    "spool full (filesystem full): %d records kept, %d-byte reserve released so deletes can "
                    "proceed; refusing new records until %d bytes are free beside %s",
                    self._count,
                    self._reserve_bytes,
                    self._resume_free_bytes,
                    self.path,
                )
        elif self._full:
            # Below the resume mark for the size limit; for a full disk, an append got in.
            limit = self._full_reason == "limit"
            recovered = self._bytes_used <= self.resume_bytes if limit else res.committed > 0 or res.reserve_retaken
            if recovered:
                self._full = False
                self._probe_interval = _DISK_FULL_PROBE_SECONDS
                log.warning(
                    "spool accepting records again: %d of %d bytes used, %d records",
                    self._bytes_used,
                    self.max_bytes,
                    self._count,
                )
                self._wake(self._space_event)
        self._update_state()
        if self._fold_waiters:
            self._wake_fold_waiters()
        if res.committed:
            self._wake(self._commit_event)

    # ---------------------------------------------------------------- probing a full filesystem

    def _back_off_probe(self, now: float) -> None:
        self._probe_interval = min(2 * self._probe_interval, _DISK_FULL_PROBE_MAX_SECONDS)
        self._next_probe = now + self._probe_interval

    def _arm_probe(self) -> None:
        """Probe a full filesystem on the backoff schedule even when no sender is left to append:
        otherwise a drained spool whose last delete met ENOSPC would say "full" for ever."""
        if self._probe_timer is not None:
            self._probe_timer.cancel()
        self._probe_timer = self._loop.call_later(max(0.0, self._next_probe - self._clock()), self._probe_due)

    def _probe_due(self) -> None:
        self._probe_timer = None
        if not self._full or self._full_reason != "disk" or self._closing:
            return
        now = self._clock()
        if now >= self._next_probe and not self._probe_queued:
            self._back_off_probe(now)
            try:
                self._writer.submit(_Probe())
            except SpoolError as exc:  # writer stopped or closing: nothing left to probe for
                log.debug("spool probe not queued: %s", exc)
                return
            self._probe_queued = True
        self._arm_probe()

    def _wake(self, which: asyncio.Event) -> None:
        which.set()
        if which is self._commit_event:
            self._commit_event = asyncio.Event()
        else:
            self._space_event = asyncio.Event()

    def _update_state(self) -> None:
        state: SpoolState = "full" if self._full else "low" if self._bytes_used > self.low_water_bytes else "ok"
        if state != self._state:
            if state == "low" and self._state == "ok":
                log.warning("spool above its low-water mark: %d of %d bytes used", self._bytes_used, self.max_bytes)
            elif state == "ok" and self._state == "low":
                log.info("spool back below its low-water mark: %d of %d bytes used", self._bytes_used, self.max_bytes)
            self._state = state
        m = self._metrics
        m.state, m.records, m.bytes_used = state, self._count + self._journaled, self._bytes_used
