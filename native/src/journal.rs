//! The spool's ack journal file (`auditrecv/spool/journal.py` defines the format and reads it back):
//! a stop-and-wait sender's record is acknowledged once it is appended here, so the append is on the
//! ack path of every record. Encoding the entry, its CRC-32 and the `write(2)` are one native call
//! instead of a dozen Python ones, and the entry goes into the page cache through a shared mapping of
//! the file: no system call per record.
//!
//! Entry: `<HIQqBHI` (magic, CRC-32 of everything after the CRC, id, received_ns, kind length, source
//! length, payload length), then the kind, the source JSON and the payload. The file is preallocated and
//! mapped ([`JournalFile`]): its valid part ends at two zero bytes where a magic would be (the end mark),
//! or at its end; a crash in the middle of a copy leaves the end mark before the entry (and recovery
//! ignores a torn entry anyway: it was never acknowledged).

use std::fmt;
use std::io;
use std::path::Path;
use std::time::Instant;

use crate::mapped::MappedFile;

pub const MAGIC: u16 = 0xA0D1;
/// Bytes before the kind: magic, CRC, id, received_ns and the three lengths.
pub const HEADER_LEN: usize = 2 + 4 + 8 + 8 + 1 + 2 + 4;
/// The CRC covers the entry from here (after itself) to its end.
const CRC_FROM: usize = 6;

/// A field too long for its length in the header (what `struct.pack` refuses in the Python encoder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLong(pub &'static str);

impl fmt::Display for TooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ack journal entry: the {} is too long for its length field", self.0)
    }
}

/// Append one entry to `out` (nothing when a field is too long).
pub fn encode_entry(
    out: &mut Vec<u8>,
    id: u64,
    received_ns: i64,
    kind: &[u8],
    source: &[u8],
    payload: &[u8],
) -> Result<(), TooLong> {
    let kind_len = u8::try_from(kind.len()).map_err(|_| TooLong("kind"))?;
    let source_len = u16::try_from(source.len()).map_err(|_| TooLong("source"))?;
    let payload_len = u32::try_from(payload.len()).map_err(|_| TooLong("payload"))?;
    let start = out.len();
    out.reserve(HEADER_LEN + kind.len() + source.len() + payload.len());
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&[0; 4]); // the CRC, once the rest is there
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&received_ns.to_le_bytes());
    out.push(kind_len);
    out.extend_from_slice(&source_len.to_le_bytes());
    out.extend_from_slice(&payload_len.to_le_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(source);
    out.extend_from_slice(payload);
    let crc = libdeflater::crc32(&out[start + CRC_FROM..]);
    out[start + 2..start + CRC_FROM].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// Bytes of zeros after the last entry: where the next entry's magic goes, zero until that entry is
/// whole (the end of the file's valid part for recovery, which stops at anything but `MAGIC`).
pub const END_MARK_LEN: usize = 2;
/// A new journal file's preallocated room (a fold at 50k records/s takes ~200 KB); it grows as needed.
pub const INITIAL_ROOM: usize = 256 * 1024;
/// Growth at most this much at a time (a journal that cannot be folded grows up to the spool's budget).
const MAX_GROWTH: usize = 4 * 1024 * 1024;

/// One journal file being appended to: a preallocated file mapped shared (`mapped.rs`), so an append is
/// a copy into the page cache, no system call (as durable against a crash of the process as a
/// `write(2)`); `sync` makes it durable against a power cut too (`msync` of the pages written). Entries
/// are encoded into `pending` and copied together. On a filesystem where a mapped store could fail
/// (copy-on-write, network, overlay: see `mapped.rs`) the file is not mapped and the entries go out with
/// one `pwrite(2)`, the end mark with them.
///
/// The file is not "empty when cleared" any more: after a cut the next entries overwrite the old ones
/// from the start. What ends the valid part for recovery is the end mark, two zero bytes where the next
/// entry's magic goes: an entry's bytes are copied first with the end mark after them, its magic last,
/// so a crash in the middle of a copy leaves the previous end mark in place (and the CRC would catch a
/// torn entry anyway). Entries of a previous round after the end mark are never read.
pub struct JournalFile {
    map: MappedFile,
    pending: Vec<u8>,
    pending_last_id: u64,
    /// Bytes of whole entries in the file (where the next entry goes).
    pub size: u64,
    /// The highest id in the file (0: none).
    pub last_id: u64,
    /// How long the last `sync` took.
    pub last_sync_seconds: f64,
}

impl JournalFile {
    /// Create (or empty) the file, mode 0600, close-on-exec (Rust's default), [`INITIAL_ROOM`] bytes of
    /// zeros allocated and mapped. If that room cannot be allocated (a full filesystem: a spool must
    /// still open then), the file is made empty and the first write tries again, failing as a write
    /// on a full filesystem does.
    pub fn create(path: &Path) -> io::Result<Self> {
        Self::create_with(path, true)
    }

    /// [`JournalFile::create`]; with `map` false the file is never mapped (every append a `pwrite(2)`,
    /// what a copy-on-write filesystem gets): how the tests run the spool through that path on any
    /// filesystem.
    pub fn create_with(path: &Path, map: bool) -> io::Result<Self> {
        let mut map = if map { MappedFile::create(path)? } else { MappedFile::create_unmapped(path)? };
        let _ = map.grow(INITIAL_ROOM);
        Ok(Self { map, pending: Vec::new(), pending_last_id: 0, size: 0, last_id: 0, last_sync_seconds: 0.0 })
    }

    /// Encode one entry, to be written by the next [`JournalFile::write`].
    pub fn stage(
        &mut self,
        id: u64,
        received_ns: i64,
        kind: &[u8],
        source: &[u8],
        payload: &[u8],
    ) -> Result<(), TooLong> {
        encode_entry(&mut self.pending, id, received_ns, kind, source, payload)?;
        self.pending_last_id = id;
        Ok(())
    }

    /// Drop what was staged and not written.
    pub fn discard(&mut self) {
        self.pending.clear();
    }

    /// Copy what was staged into the file (and `msync` it with `sync`). On an error (no room could be
    /// allocated, the sync failed) none of the staged entries is in the file's valid part, and they are
    /// dropped.
    pub fn write(&mut self, sync: bool) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let outcome = self.write_pending(sync);
        if outcome.is_ok() {
            self.size += self.pending.len() as u64;
            self.last_id = self.pending_last_id;
        }
        self.pending.clear();
        outcome
    }

    fn write_pending(&mut self, sync: bool) -> io::Result<()> {
        let start = usize::try_from(self.size).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
        let end = start + self.pending.len();
        let needed = end + END_MARK_LEN;
        if needed > self.map.len() {
            let larger = self.map.len().saturating_add(self.map.len().min(MAX_GROWTH)).max(needed).max(INITIAL_ROOM);
            self.map.grow(larger)?;
        }
        if self.map.is_mapped() {
            // Everything but the first entry's magic, the end mark after it, then that magic: until that
            // last store the previous end mark (at `start`) ends the valid part, after it the new one does.
            self.map.put(start + 2, &self.pending[2..])?;
            self.map.put(end, &[0; END_MARK_LEN])?;
            std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
            self.map.put(start, &self.pending[..2])?;
        } else {
            // One pwrite(2) of the entries and the end mark (a torn one fails its CRC, as with write(2)).
            self.pending.extend_from_slice(&[0; END_MARK_LEN]);
            let written = self.map.put(start, &self.pending);
            self.pending.truncate(end - start);
            if let Err(e) = written {
                let _ = self.map.put(start, &[0; 2]); // whatever of it got there: not in the valid part
                return Err(e);
            }
        }
        if sync {
            if let Err(e) = self.sync_range(start..needed) {
                let _ = self.map.put(start, &[0; 2]); // not acknowledged: not in the valid part
                return Err(e);
            }
        }
        Ok(())
    }

    fn sync_range(&mut self, range: std::ops::Range<usize>) -> io::Result<()> {
        let started = Instant::now();
        self.map.sync(range)?;
        self.last_sync_seconds = started.elapsed().as_secs_f64();
        Ok(())
    }

    /// `msync` of everything written, timed.
    pub fn sync(&mut self) -> io::Result<()> {
        let end = usize::try_from(self.size).unwrap_or(usize::MAX).saturating_add(END_MARK_LEN);
        self.sync_range(0..end)
    }

    /// Empty the file (everything in it is in SQLite): the end mark at its start, its room kept (no
    /// `ftruncate`, which cost 60-400 µs with the GIL held).
    pub fn clear(&mut self) -> io::Result<()> {
        if self.map.len() >= END_MARK_LEN {
            self.map.put(0, &[0; END_MARK_LEN])?; // (a file without room has no entries either)
        }
        self.size = 0;
        self.last_id = 0;
        Ok(())
    }

    /// Unmap the file and cut off its unused room (what a next open reads back is the entries alone).
    pub fn close(self) -> io::Result<()> {
        self.map.close(self.size)
    }
}

/// One record journaled and not folded into SQLite yet.
pub struct Kept<T> {
    pub id: u64,
    pub received_ns: i64,
    /// Bytes it will take in the database, roughly (the room checks count with it).
    pub estimate: u64,
    /// Index into the ledger's sources.
    pub source: usize,
    pub item: T,
}

/// The records acknowledged through the journal and not folded yet, in id order, with their distinct
/// sources (a connection's records share one): what the fold turns into rows. Kept natively so that a
/// stop-and-wait sender's append is one call that leaves no Python objects for the garbage collector
/// to track, and the fold reads its rows without Python iterating them.
pub struct Ledger<T, S> {
    records: Vec<Kept<T>>,
    /// Distinct sources by key (the Python object's identity), in order of first use.
    sources: Vec<(usize, S)>,
    by_key: std::collections::HashMap<usize, usize>,
    estimate: u64,
}

impl<T, S> Default for Ledger<T, S> {
    fn default() -> Self {
        Self { records: Vec::new(), sources: Vec::new(), by_key: std::collections::HashMap::new(), estimate: 0 }
    }
}

impl<T, S> Ledger<T, S> {
    /// The index of the source with `key`, made by `make` the first time.
    fn source_index(&mut self, key: usize, make: impl FnOnce() -> S) -> usize {
        if let Some((last_key, _)) = self.sources.last() {
            if *last_key == key {
                return self.sources.len() - 1;
            }
        }
        *self.by_key.entry(key).or_insert_with(|| {
            self.sources.push((key, make()));
            self.sources.len() - 1
        })
    }

    /// Keep one record (ids increase from one call to the next); returns how many are kept now.
    pub fn keep(
        &mut self,
        id: u64,
        received_ns: i64,
        estimate: u64,
        key: usize,
        source: impl FnOnce() -> S,
        item: T,
    ) -> usize {
        let source = self.source_index(key, source);
        self.records.push(Kept { id, received_ns, estimate, source, item });
        self.estimate += estimate;
        self.records.len()
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The sum of the kept records' estimates.
    pub fn estimate(&self) -> u64 {
        self.estimate
    }

    /// The highest id kept (0: none).
    pub fn last_id(&self) -> u64 {
        self.records.last().map_or(0, |r| r.id)
    }

    /// Everything kept, leaving this ledger empty (a fold takes it).
    pub fn take(&mut self) -> Self {
        std::mem::take(self)
    }

    /// Put a fold's records back in front of what was kept since (the fold failed).
    pub fn put_back(&mut self, mut earlier: Self) {
        let later = std::mem::take(self);
        let mut moved = Vec::with_capacity(later.sources.len());
        for (key, source) in later.sources {
            moved.push(earlier.source_index(key, || source));
        }
        for mut r in later.records {
            r.source = moved[r.source];
            earlier.estimate += r.estimate;
            earlier.records.push(r);
        }
        *self = earlier;
    }

    /// The records with an id above `after` (those at or below it are in SQLite already: a crash between
    /// the fold's commit and the journal's cut).
    pub fn after(&self, after: u64) -> &[Kept<T>] {
        let start = self.records.partition_point(|r| r.id <= after);
        &self.records[start..]
    }

    /// The distinct sources of `records` (a slice of this ledger's), in order of first use.
    pub fn sources_of(&self, records: &[Kept<T>]) -> Vec<&S> {
        let mut seen = vec![false; self.sources.len()];
        let mut out = Vec::new();
        for r in records {
            if !std::mem::replace(&mut seen[r.source], true) {
                out.push(&self.sources[r.source].1);
            }
        }
        out
    }

    /// For each record of `records`, its source's position in [`Ledger::sources_of`] of the same slice.
    pub fn source_positions(&self, records: &[Kept<T>]) -> Vec<usize> {
        let mut position = vec![usize::MAX; self.sources.len()];
        let mut next = 0;
        records
            .iter()
            .map(|r| {
                if position[r.source] == usize::MAX {
                    position[r.source] = next;
                    next += 1;
                }
                position[r.source]
            })
            .collect()
    }
}

/// The journal's allowance between folds: the highest id handed out, and the bytes journal appends may
/// still take (twice a record's estimate: the journal's bytes now, the database's after the fold).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub issued: u64,
    pub room: i64,
}

impl Budget {
    /// The id for one more record of `estimate` bytes, with `kept` records waiting for a fold, if the
    /// room and `max_records` allow it.
    pub fn admit(&self, estimate: i64, kept: usize, max_records: usize) -> Option<u64> {
        (kept < max_records && self.room >= estimate.saturating_mul(2)).then_some(self.issued + 1)
    }

    /// The admitted record `id` is in the journal.
    pub fn spend(&mut self, id: u64, estimate: i64) {
        self.issued = id;
        self.room = self.room.saturating_sub(estimate.saturating_mul(2));
    }
}

/// What the one-call appends took since the spool last looked ([`Tally::take`]): counted here per
/// record, so that the event loop's thread runs no Python for the spool's metrics on the ack path; the
/// spool adds them to its own counters when they are read (a scrape, a status call, a fold's result).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub records: u64,
    /// `received_ns` of the first of them (meaningful when `records` > 0).
    pub first_received_ns: i64,
    pub ack_seconds_sum: f64,
    pub ack_seconds_max: f64,
    /// The latest acks' latencies, oldest first, at most `window` of them (the spool keeps a window of
    /// recent latencies for its quantiles: older ones would fall out of it anyway).
    pub recent: std::collections::VecDeque<f64>,
}

impl Tally {
    /// One record acknowledged through the journal, `ack_seconds` after its append began.
    pub fn note(&mut self, received_ns: i64, ack_seconds: f64, window: usize) {
        if self.records == 0 {
            self.first_received_ns = received_ns;
        }
        self.records += 1;
        self.ack_seconds_sum += ack_seconds;
        if ack_seconds > self.ack_seconds_max {
            self.ack_seconds_max = ack_seconds;
        }
        if window > 0 {
            if self.recent.len() >= window {
                self.recent.pop_front();
            }
            self.recent.push_back(ack_seconds);
        }
    }

    /// Everything counted since the last take, leaving this tally empty.
    pub fn take(&mut self) -> Self {
        std::mem::take(self)
    }
}

/// Python's `time.monotonic()` read natively: both are `CLOCK_MONOTONIC`, so an anchor taken once (the
/// Python value and an [`Instant`] at the same moment) converts one into the other for good. The spool
/// writer compares the fold's due time, set by an append, with its own `time.monotonic()`.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    anchor_seconds: f64,
    anchor: Instant,
}

impl MonotonicClock {
    /// `now_seconds`: `time.monotonic()` read just before.
    pub fn anchored(now_seconds: f64) -> Self {
        Self { anchor_seconds: now_seconds, anchor: Instant::now() }
    }

    /// `at` as `time.monotonic()` seconds.
    pub fn seconds(&self, at: Instant) -> f64 {
        self.anchor_seconds + at.saturating_duration_since(self.anchor).as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Python encoder's bytes for `encode_entry(7, "bsm", '{"peer":"x"}', -5, b"\x00\xff payload")`.
    fn python_entry() -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&7u64.to_le_bytes());
        body.extend_from_slice(&(-5i64).to_le_bytes());
        body.push(3);
        body.extend_from_slice(&12u16.to_le_bytes());
        body.extend_from_slice(&10u32.to_le_bytes());
        body.extend_from_slice(b"bsm{\"peer\":\"x\"}\x00\xff payload");
        let mut out = MAGIC.to_le_bytes().to_vec();
        out.extend_from_slice(&libdeflater::crc32(&body).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn an_entry_is_header_then_kind_source_payload() {
        let mut out = b"before".to_vec();
        encode_entry(&mut out, 7, -5, b"bsm", b"{\"peer\":\"x\"}", b"\x00\xff payload").unwrap();
        assert_eq!(&out[..6], b"before");
        assert_eq!(out[6..], python_entry());
        assert_eq!(out.len() - 6, HEADER_LEN + 3 + 12 + 10);
    }

    #[test]
    fn the_crc_is_zlibs() {
        // zlib.crc32(b"123456789") == 0xCBF43926
        assert_eq!(libdeflater::crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn fields_too_long_are_refused_whole() {
        let mut out = Vec::new();
        assert_eq!(encode_entry(&mut out, 1, 0, &[b'k'; 256], b"", b""), Err(TooLong("kind")));
        assert_eq!(encode_entry(&mut out, 1, 0, b"k", &vec![b's'; 65_536], b""), Err(TooLong("source")));
        assert!(out.is_empty());
        encode_entry(&mut out, 1, 0, &[b'k'; 255], &vec![b's'; 65_535], b"").unwrap();
        assert_eq!(out.len(), HEADER_LEN + 255 + 65_535);
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("auditrecv-journal-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("spool.ack-000001")
    }

    /// Where the valid entries at the start of `data` end (what recovery reads: magic, lengths, CRC).
    fn valid_len(data: &[u8]) -> usize {
        let mut pos = 0;
        while pos + HEADER_LEN <= data.len() && data[pos..pos + 2] == MAGIC.to_le_bytes() {
            let h = &data[pos..pos + HEADER_LEN];
            let lens = h[22] as usize
                + u16::from_le_bytes([h[23], h[24]]) as usize
                + u32::from_le_bytes([h[25], h[26], h[27], h[28]]) as usize;
            let end = pos + HEADER_LEN + lens;
            if end > data.len() || libdeflater::crc32(&data[pos + CRC_FROM..end]).to_le_bytes() != h[2..6] {
                break;
            }
            pos = end;
        }
        pos
    }

    #[test]
    fn staged_entries_are_copied_together_and_counted_with_the_end_mark_after_them() {
        let path = scratch("write");
        std::fs::write(&path, b"stale").unwrap();
        let f = JournalFile::create(&path).unwrap();
        entries_are_written_counted_and_ended(f, &path);
    }

    #[test]
    fn unmapped_the_entries_go_out_as_they_do_mapped() {
        let path = scratch("unmapped");
        let f = JournalFile::create_with(&path, false).unwrap();
        assert!(!f.map.is_mapped());
        entries_are_written_counted_and_ended(f, &path);
    }

    fn entries_are_written_counted_and_ended(mut f: JournalFile, path: &std::path::Path) {
        let path = path.to_path_buf();
        let allocated = if f.map.is_mapped() { INITIAL_ROOM } else { 0 }; // unmapped: nothing allocated
        assert_eq!(std::fs::read(&path).unwrap(), vec![0; allocated], "emptied, then preallocated");
        f.stage(7, -5, b"bsm", b"{\"peer\":\"x\"}", b"\x00\xff payload").unwrap();
        f.stage(8, 0, b"linux", b"{}", b"").unwrap();
        assert_eq!((f.size, f.last_id), (0, 0), "nothing counts before it is written");
        f.write(true).unwrap();
        let data = std::fs::read(&path).unwrap();
        assert_eq!(data[..python_entry().len()], python_entry());
        let size = valid_len(&data);
        assert_eq!((f.size, f.last_id), (size as u64, 8));
        assert_eq!(data[size..size + END_MARK_LEN], [0, 0], "the end mark");
        f.write(false).unwrap(); // nothing staged: nothing written
        f.clear().unwrap();
        assert_eq!((f.size, f.last_id), (0, 0));
        let data = std::fs::read(&path).unwrap();
        assert_eq!(valid_len(&data), 0, "cleared: the end mark at the start");
        let kept = if f.map.is_mapped() { INITIAL_ROOM } else { size + END_MARK_LEN }; // no ftruncate
        assert_eq!(data.len(), kept, "its room kept");
        f.stage(9, 0, b"linux", b"{}", b"x").unwrap();
        f.write(false).unwrap();
        let data = std::fs::read(&path).unwrap();
        assert_eq!((valid_len(&data), data[6..14].to_vec()), (f.size as usize, 9u64.to_le_bytes().to_vec()));
        assert_eq!(&data[f.size as usize..][..2], [0, 0], "the old entries after the new one are behind an end mark");
        f.close().unwrap();
        assert_eq!(std::fs::read(&path).unwrap().len(), HEADER_LEN + 5 + 2 + 1, "closed: the entries alone");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn the_file_grows_for_entries_beyond_its_room() {
        let path = scratch("grow");
        let mut f = JournalFile::create(&path).unwrap();
        let payload = vec![b'p'; 100_000];
        for id in 1..=5 {
            f.stage(id, 0, b"linux", b"{}", &payload).unwrap();
            f.write(id % 2 == 0).unwrap();
        }
        let data = std::fs::read(&path).unwrap();
        assert!(data.len() > INITIAL_ROOM && data.len() >= f.size as usize + END_MARK_LEN);
        assert_eq!((valid_len(&data), f.last_id), (f.size as usize, 5));
        assert_eq!(f.size as usize, 5 * (HEADER_LEN + 5 + 2 + 100_000));
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_file_made_without_room_gets_it_at_the_first_write() {
        let path = scratch("noroom");
        let mut f = JournalFile::create(&path).unwrap();
        // What a full filesystem leaves (the room could not be allocated): an empty file, nothing mapped.
        f.map = MappedFile::create(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap().len(), 0);
        f.clear().unwrap();
        f.sync().unwrap();
        f.stage(1, 0, b"linux", b"{}", b"one").unwrap();
        f.write(true).unwrap();
        let data = std::fs::read(&path).unwrap();
        assert_eq!((data.len(), valid_len(&data), f.last_id), (INITIAL_ROOM, f.size as usize, 1));
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_failed_write_leaves_the_file_as_it_was() {
        let path = scratch("fail");
        let mut f = JournalFile::create(&path).unwrap();
        f.stage(1, 0, b"linux", b"{}", b"one").unwrap();
        f.write(false).unwrap();
        let before = std::fs::read(&path).unwrap();
        // A read-only file in place of the journal's: growing it (posix_fallocate) fails with EBADF.
        f.map.replace_file_for_test(std::fs::File::open(&path).unwrap());
        f.stage(2, 0, b"linux", b"{}", &vec![b'2'; INITIAL_ROOM]).unwrap();
        assert_eq!(f.write(false).unwrap_err().raw_os_error(), Some(libc::EBADF));
        assert_eq!((f.size, f.last_id), (valid_len(&before) as u64, 1));
        assert_eq!(std::fs::read(&path).unwrap(), before);
        assert!(f.pending.is_empty(), "the failed entries are dropped, not written later");
        f.stage(3, 0, b"linux", b"{}", b"three").unwrap();
        f.write(false).unwrap();
        assert_eq!((valid_len(&std::fs::read(&path).unwrap()), f.last_id), (f.size as usize, 3), "and it goes on");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_ledger_keeps_records_in_order_with_their_distinct_sources() {
        let mut l: Ledger<&str, &str> = Ledger::default();
        assert_eq!((l.len(), l.last_id(), l.estimate()), (0, 0, 0));
        assert_eq!(l.keep(1, 10, 100, 0xa, || "a", "r1"), 1);
        assert_eq!(l.keep(2, 20, 50, 0xb, || "b", "r2"), 2);
        assert_eq!(l.keep(3, 30, 50, 0xa, || panic!("a is known"), "r3"), 3);
        assert_eq!((l.len(), l.last_id(), l.estimate()), (3, 3, 200));
        let rest = l.after(1);
        assert_eq!(rest.iter().map(|r| r.item).collect::<Vec<_>>(), ["r2", "r3"]);
        assert_eq!(l.sources_of(rest), [&"b", &"a"], "in order of first use among the records asked about");
        assert_eq!(l.source_positions(rest), [0, 1]);
        assert_eq!(l.source_positions(l.after(0)), [0, 1, 0]);
        assert!(l.after(3).is_empty());
    }

    #[test]
    fn a_failed_folds_records_go_back_in_front() {
        let mut l: Ledger<u64, &str> = Ledger::default();
        l.keep(1, 0, 1, 0xa, || "a", 1);
        l.keep(2, 0, 1, 0xb, || "b", 2);
        let taken = l.take();
        assert!(l.is_empty() && l.estimate() == 0);
        l.keep(3, 0, 1, 0xc, || "c", 3);
        l.keep(4, 0, 1, 0xa, || "a again", 4);
        l.put_back(taken);
        assert_eq!(l.after(0).iter().map(|r| r.item).collect::<Vec<_>>(), [1, 2, 3, 4]);
        assert_eq!(l.sources_of(l.after(0)), [&"a", &"b", &"c"], "one source per key");
        assert_eq!(l.source_positions(l.after(0)), [0, 1, 2, 0]);
        assert_eq!((l.len(), l.last_id(), l.estimate()), (4, 4, 4));
    }

    #[test]
    fn the_budget_admits_while_room_and_the_record_limit_allow() {
        let mut b = Budget { issued: 7, room: 1000 };
        assert_eq!(b.admit(500, 0, 10), Some(8));
        assert_eq!(b.admit(501, 0, 10), None, "twice the estimate must fit");
        assert_eq!(b.admit(1, 10, 10), None, "as many records kept as allowed");
        b.spend(8, 300);
        assert_eq!(b, Budget { issued: 8, room: 400 });
        assert_eq!(b.admit(200, 1, 10), Some(9));
        assert_eq!(Budget::default().admit(0, 0, 1), Some(1));
    }
    #[test]
    fn a_tally_counts_until_taken_and_keeps_the_latest_latencies() {
        let mut t = Tally::default();
        t.note(100, 0.5, 2);
        t.note(200, 2.0, 2);
        t.note(300, 1.0, 2);
        assert_eq!((t.records, t.first_received_ns, t.ack_seconds_sum, t.ack_seconds_max), (3, 100, 3.5, 2.0));
        assert_eq!(t.recent.iter().copied().collect::<Vec<_>>(), [2.0, 1.0], "the oldest fell out of the window");
        let taken = t.take();
        assert_eq!(taken.records, 3);
        assert_eq!(t, Tally::default());
        t.note(400, 0.25, 0);
        assert_eq!((t.records, t.first_received_ns, t.recent.len()), (1, 400, 0), "the first since the take");
    }

    #[test]
    fn the_clock_goes_on_from_its_anchor() {
        let clock = MonotonicClock::anchored(1000.0);
        let later = Instant::now() + std::time::Duration::from_millis(250);
        let seconds = clock.seconds(later);
        assert!((1000.25..1000.35).contains(&seconds), "{seconds}");
        assert_eq!(clock.seconds(clock.anchor), 1000.0);
    }
}
