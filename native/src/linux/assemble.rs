//! Sans-I/O event assembly (Python `assembler.py`): records -> events, with the caller's clock passed
//! in explicitly. An event is complete when
//! 1. an EOE record for it arrives (local logs), or
//! 2. it is a single-record type (user-space/daemon messages, 1100-1299 and 2100-2999), or
//! 3. a later serial of the same node arrived and `grace_seconds` have passed since, or
//! 4. it has been open `max_age_seconds`, or
//! 5. it holds `max_records` records or `max_bytes` characters of lines, or
//! 6. more than `max_in_flight` events are open (the oldest is pushed out).
//!
//! Lines that do not start with `type=`/`node=` continue the previous line (audisp-remote cuts lines
//! longer than 8969 bytes). Every record added ends up in exactly one emitted event, whose `tags` hold
//! the caller's tokens of all lines it consumed. A line identical to the one before it in the same
//! event is a resend: consumed (its tag kept), not added again.
//!
//! One assembler serves one source (peer): the Python one keys by source too, and is given one source
//! per assembler by `decode --raw`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use super::num::Num;
use super::parse::parse_line;
use super::record::{Record, is_user_space_number};

pub const AUDIT_EOE: u128 = 1320;
/// audisp-remote's audit_fgets limit: a line this long may have a continuation.
pub const OVERSIZE_LINE_BYTES: usize = 8969;
/// A larger forward jump of serials is a reboot/reset rather than loss.
const MAX_COUNTED_GAP: u32 = 1 << 20;

pub const ORPHAN_FRAGMENT: &str = "oversize-line fragment without its head line";
pub const NO_SERIAL: &str = "record without a serial";

/// How an event ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Complete {
    Eoe,
    Single,
    Superseded,
    MaxAge,
    MaxRecords,
    MaxBytes,
    Evicted,
    Flush,
    Error,
    OrphanEoe,
}

impl Complete {
    pub fn as_str(self) -> &'static str {
        match self {
            Complete::Eoe => "eoe",
            Complete::Single => "single",
            Complete::Superseded => "superseded",
            Complete::MaxAge => "max_age",
            Complete::MaxRecords => "max_records",
            Complete::MaxBytes => "max_bytes",
            Complete::Evicted => "evicted",
            Complete::Flush => "flush",
            Complete::Error => "error",
            Complete::OrphanEoe => "orphan_eoe",
        }
    }
}

/// Records sharing (node, time, serial), plus the caller's tags of every line it consumed.
#[derive(Debug, Clone)]
pub struct Event<T> {
    pub node: Option<String>,
    pub time_ns: Option<Num>,
    pub serial: Option<Num>,
    pub records: Vec<Record>,
    /// One per input line (fragments and resends included), in order.
    pub tags: Vec<T>,
    pub complete: Complete,
    /// Set for error events (unparseable line, orphan fragment).
    pub error: Option<&'static str>,
    /// Serials skipped between the newest earlier event of this node and this one.
    pub lost_before: u32,
    /// The caller's clock when the first record arrived.
    pub first_seen: f64,
    /// Characters of raw lines so far (for `max_bytes`).
    pub size: usize,
}

/// The assembler's limits (Python `EventAssembler(...)` arguments).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    pub grace_seconds: f64,
    pub max_age_seconds: f64,
    pub max_records: usize,
    pub max_in_flight: usize,
    pub max_bytes: Option<usize>,
}

impl Default for Settings {
    /// What `decode_events` (files, `decode --raw`) uses.
    fn default() -> Self {
        Settings { grace_seconds: 2.0, max_age_seconds: 30.0, max_records: 4096, max_in_flight: 10000, max_bytes: None }
    }
}

/// Counters for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub records: u64,
    pub events: u64,
    pub errors: u64,
    pub fragments_joined: u64,
    pub orphan_fragments: u64,
    pub lost: u64,
    pub resends: u64,
}

type EventKey = (Option<String>, Option<Num>, Option<Num>);

/// A fast hash for the assembler's own keys (node, time, serial: not chosen to collide by a sender
/// more than any text is; SipHash's protection costs a tenth of the per-record time here).
#[derive(Default)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn write_u128(&mut self, n: u128) {
        self.write_u64(n as u64);
        self.write_u64((n >> 64) as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;
pub type FastSet<K> = std::collections::HashSet<K, BuildHasherDefault<FxHasher>>;
type Seq = u64;

pub struct Assembler<T> {
    settings: Settings,
    /// Open events by creation order (the Python dict's insertion order).
    /// (Boxed: an event is a few hundred bytes, which the tree's nodes would move on every insert and
    /// removal.)
    in_flight: BTreeMap<Seq, Box<Event<T>>>,
    by_key: FastMap<EventKey, Seq>,
    next_seq: Seq,
    /// The newest open event per node, not yet superseded.
    open: FastMap<Option<String>, Seq>,
    superseded: VecDeque<(f64, Seq)>,
    newest_serial: FastMap<Option<String>, u32>,
    /// The event that took the last line (for fragments).
    last_line: Option<Seq>,
    age_deadline: f64,
    pub stats: Stats,
}

fn key_of<T>(e: &Event<T>) -> EventKey {
    (e.node.clone(), e.time_ns.clone(), e.serial.clone())
}

/// `len(raw)` in characters, only counted when a byte limit is set. An all-ASCII line (nearly every one) is
/// its byte length: `is_ascii` tests a word at a time, cheaper than counting the characters.
fn size_of(raw: &str, settings: &Settings) -> usize {
    match settings.max_bytes {
        None => 0,
        Some(_) if raw.is_ascii() => raw.len(),
        Some(_) => raw.chars().count(),
    }
}

impl<T> Assembler<T> {
    pub fn new(settings: Settings) -> Self {
        let settings = Settings {
            max_records: settings.max_records.max(1),
            max_in_flight: settings.max_in_flight.max(1),
            max_bytes: settings.max_bytes.map(|b| b.max(1)),
            ..settings
        };
        Assembler {
            settings,
            in_flight: BTreeMap::new(),
            by_key: FastMap::default(),
            next_seq: 0,
            open: FastMap::default(),
            superseded: VecDeque::new(),
            newest_serial: FastMap::default(),
            last_line: None,
            age_deadline: f64::INFINITY,
            stats: Stats::default(),
        }
    }

    /// Number of open events.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    fn too_big(&self, size: usize) -> bool {
        self.settings.max_bytes.is_some_and(|m| size >= m)
    }

    /// Add one record; pushes the events completed by it or timed out as of `now` onto `out`.
    pub fn add(&mut self, record: Record, now: f64, tag: T, out: &mut Vec<Event<T>>) {
        self.stats.records += 1;
        if record.fragment {
            self.add_fragment(record, tag, out);
        } else if let Some(error) = record.error {
            self.last_line = None;
            out.push(self.error_event(record, tag, now, error));
        } else {
            self.add_record(record, now, tag, out);
        }
        if self.superseded.front().is_some_and(|s| s.0 <= now) || now >= self.age_deadline {
            self.expire(now, out);
        }
    }

    /// Events that timed out (grace after a later serial, or max age) as of `now`.
    pub fn poll(&mut self, now: f64, out: &mut Vec<Event<T>>) {
        self.expire(now, out);
    }

    /// Emit everything still open (shutdown, end of a file), oldest first.
    pub fn flush(&mut self, out: &mut Vec<Event<T>>) {
        let open = std::mem::take(&mut self.in_flight);
        self.stats.events += open.len() as u64;
        out.extend(open.into_values().map(|e| Event { complete: Complete::Flush, ..*e }));
        self.by_key.clear();
        self.open.clear();
        self.superseded.clear();
        self.last_line = None;
        self.age_deadline = f64::INFINITY;
    }

    fn error_event(&mut self, record: Record, tag: T, now: f64, error: &'static str) -> Event<T> {
        self.stats.errors += 1;
        self.stats.events += 1;
        Event {
            node: record.node.clone(),
            time_ns: record.time_ns.clone(),
            serial: record.serial.clone(),
            records: vec![record],
            tags: vec![tag],
            complete: Complete::Error,
            error: Some(error),
            lost_before: 0,
            first_seen: now,
            size: 0,
        }
    }

    fn add_fragment(&mut self, record: Record, tag: T, out: &mut Vec<Event<T>>) {
        if let Some(seq) = self.last_line.filter(|s| self.in_flight.contains_key(s)) {
            let size = size_of(&record.raw, &self.settings);
            let event = self.in_flight.get_mut(&seq).expect("checked above");
            let last = event.records.last_mut().expect("an open event has a record");
            // a joined header number of more than 4300 digits leaves the record as it was (the fragment
            // is still the event's line), rather than losing the line
            if let Ok(joined) = parse_line(&format!("{}{}", last.raw, record.raw)) {
                if joined.error.is_none() {
                    *last = joined;
                }
            }
            event.tags.push(tag);
            self.stats.fragments_joined += 1;
            event.size += size;
            let size = event.size;
            if self.too_big(size) {
                self.emit(seq, Complete::MaxBytes, out);
            }
            return;
        }
        self.stats.orphan_fragments += 1;
        let event = self.error_event(record, tag, 0.0, ORPHAN_FRAGMENT);
        out.push(event);
    }

    fn add_record(&mut self, record: Record, now: f64, tag: T, out: &mut Vec<Event<T>>) {
        let key: EventKey = (record.node.clone(), record.time_ns.clone(), record.serial.clone());
        let found = self.by_key.get(&key).copied();
        if record.type_num == Some(Num::Small(AUDIT_EOE)) {
            self.last_line = None;
            match found {
                None => {
                    self.stats.events += 1;
                    out.push(Event {
                        node: key.0,
                        time_ns: key.1,
                        serial: key.2,
                        records: vec![record],
                        tags: vec![tag],
                        complete: Complete::OrphanEoe,
                        error: None,
                        lost_before: 0,
                        first_seen: now,
                        size: 0,
                    });
                }
                Some(seq) => {
                    let event = self.in_flight.get_mut(&seq).expect("indexed events are open");
                    event.records.push(record);
                    event.tags.push(tag);
                    self.emit(seq, Complete::Eoe, out);
                }
            }
            return;
        }
        if let Some(seq) = found {
            let size = size_of(&record.raw, &self.settings);
            let event = self.in_flight.get_mut(&seq).expect("indexed events are open");
            if event.records.last().is_some_and(|last| last.raw == record.raw) {
                // audisp-remote resends the line whose ack it lost: both copies are spooled
                event.tags.push(tag);
                self.stats.resends += 1;
                return;
            }
            event.records.push(record);
            event.tags.push(tag);
            event.size += size;
            let (count, size) = (event.records.len(), event.size);
            self.last_line = Some(seq);
            if count >= self.settings.max_records {
                self.emit(seq, Complete::MaxRecords, out);
            } else if self.too_big(size) {
                self.emit(seq, Complete::MaxBytes, out);
            }
            return;
        }
        let Some(serial) = record.serial.as_ref() else {
            let event = self.error_event(record, tag, now, NO_SERIAL);
            out.push(event);
            return;
        };
        let stream = record.node.clone();
        let serial32 = serial.low32();
        let mut lost_before = 0;
        let newer = match self.newest_serial.get(&stream) {
            None => true,
            Some(&newest) => {
                let ahead = serial32.wrapping_sub(newest); // (serial - newest) % 2**32
                let newer = 0 < ahead && ahead < (1 << 31);
                if newer && 1 < ahead && ahead <= MAX_COUNTED_GAP {
                    lost_before = ahead - 1;
                    self.stats.lost += u64::from(ahead - 1);
                }
                newer
            }
        };
        if newer {
            self.newest_serial.insert(stream.clone(), serial32);
        }
        let single = is_user_space_number(record.type_num.as_ref());
        let size = size_of(&record.raw, &self.settings);
        let may_continue = record.raw.len() >= OVERSIZE_LINE_BYTES;
        // a syscall event has a handful of records (room for them: no regrowth); a user-space message is
        // one record, emitted at once (no room wasted: a small allocation)
        let room = if single && !may_continue { 1 } else { 8 };
        let mut records = Vec::with_capacity(room);
        records.push(record);
        let mut tags = Vec::with_capacity(room);
        tags.push(tag);
        let event = Event {
            node: key.0.clone(),
            time_ns: key.1.clone(),
            serial: key.2.clone(),
            records,
            tags,
            complete: Complete::Flush,
            error: None,
            lost_before,
            first_seen: now,
            size,
        };
        if single && !may_continue {
            self.last_line = None;
            self.stats.events += 1;
            out.push(Event { complete: Complete::Single, ..event });
            if newer {
                self.supersede_open(&stream, now);
            }
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.in_flight.insert(seq, Box::new(event));
        self.by_key.insert(key, seq);
        self.last_line = Some(seq);
        if now + self.settings.max_age_seconds < self.age_deadline {
            self.age_deadline = now + self.settings.max_age_seconds;
        }
        if newer && !single {
            self.supersede_open(&stream, now);
            self.open.insert(stream, seq);
        } else {
            // a late newcomer (older serial) or an oversize single record: only wait for late records
            self.superseded.push_back((now + self.settings.grace_seconds, seq));
        }
        if self.settings.max_records == 1 {
            self.emit(seq, Complete::MaxRecords, out);
        } else if self.too_big(size) {
            self.emit(seq, Complete::MaxBytes, out);
        }
        while self.in_flight.len() > self.settings.max_in_flight {
            let oldest = *self.in_flight.keys().next().expect("not empty");
            self.emit(oldest, Complete::Evicted, out);
        }
    }

    /// A newer serial arrived: the older open event of this node gets its grace window.
    fn supersede_open(&mut self, stream: &Option<String>, now: f64) {
        if let Some(seq) = self.open.remove(stream) {
            if self.in_flight.contains_key(&seq) {
                self.superseded.push_back((now + self.settings.grace_seconds, seq));
            }
        }
    }

    fn emit(&mut self, seq: Seq, reason: Complete, out: &mut Vec<Event<T>>) {
        let mut event = *self.in_flight.remove(&seq).expect("emitting an open event");
        self.by_key.remove(&key_of(&event));
        event.complete = reason;
        self.stats.events += 1;
        out.push(event);
    }

    fn expire(&mut self, now: f64, out: &mut Vec<Event<T>>) {
        while let Some(&(deadline, seq)) = self.superseded.front() {
            if deadline > now {
                break;
            }
            self.superseded.pop_front();
            if self.in_flight.contains_key(&seq) {
                self.emit(seq, Complete::Superseded, out);
            }
        }
        if !self.in_flight.is_empty() {
            let limit = now - self.settings.max_age_seconds;
            let expired: Vec<Seq> =
                self.in_flight.iter().take_while(|(_, e)| e.first_seen <= limit).map(|(s, _)| *s).collect();
            for seq in expired {
                self.emit(seq, Complete::MaxAge, out);
            }
        }
        // the oldest open event decides when the next max-age check is due
        self.age_deadline =
            self.in_flight.values().next().map_or(f64::INFINITY, |e| e.first_seen + self.settings.max_age_seconds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_characters() {
        let limited = Settings { max_bytes: Some(10), ..Settings::default() };
        assert_eq!(size_of("type=SYSCALL msg=audit(1.0:1):", &limited), 30);
        assert_eq!(size_of("comm=\"caf\u{e9}\u{1F600}\"", &limited), 12);
        assert_eq!(size_of("", &limited), 0);
        assert_eq!(size_of("comm=x", &Settings::default()), 0);
    }

    fn rec(line: &str) -> Record {
        parse_line(line).unwrap()
    }

    fn add(asm: &mut Assembler<u32>, line: &str, now: f64, tag: u32) -> Vec<(Complete, Vec<u32>)> {
        let mut out = Vec::new();
        asm.add(rec(line), now, tag, &mut out);
        out.into_iter().map(|e| (e.complete, e.tags)).collect()
    }

    #[test]
    fn superseded_after_the_grace_window() {
        let mut asm = Assembler::new(Settings { grace_seconds: 1.0, ..Settings::default() });
        assert!(add(&mut asm, "type=SYSCALL msg=audit(1.000:1): a=1", 0.0, 1).is_empty());
        assert!(add(&mut asm, "type=SYSCALL msg=audit(1.000:2): a=1", 0.5, 2).is_empty());
        // a late record of the first event still joins it
        assert!(add(&mut asm, "type=PATH msg=audit(1.000:1): b=1", 1.0, 3).is_empty());
        assert_eq!(add(&mut asm, "type=CWD msg=audit(1.000:2): c=1", 1.6, 4), [(Complete::Superseded, vec![1, 3])]);
        let mut out = Vec::new();
        asm.flush(&mut out);
        assert_eq!(
            out.iter().map(|e| (e.complete, e.tags.clone())).collect::<Vec<_>>(),
            [(Complete::Flush, vec![2, 4])]
        );
    }

    #[test]
    fn max_age_caps_and_eviction() {
        let settings = Settings { max_age_seconds: 5.0, max_records: 2, max_in_flight: 1, ..Settings::default() };
        let mut asm = Assembler::new(settings);
        assert!(add(&mut asm, "type=SYSCALL msg=audit(1.000:1): a=1", 0.0, 1).is_empty());
        assert_eq!(add(&mut asm, "type=PATH msg=audit(1.000:1): b=1", 0.0, 2), [(Complete::MaxRecords, vec![1, 2])]);
        assert!(add(&mut asm, "type=SYSCALL msg=audit(1.000:5): a=1", 0.0, 3).is_empty());
        // an older serial is a late newcomer: it pushes the oldest open event out
        assert_eq!(add(&mut asm, "type=SYSCALL msg=audit(1.000:4): a=1", 1.0, 4), [(Complete::Evicted, vec![3])]);
        // checked against the Python EventAssembler with the same settings and clock
        let last = add(&mut asm, "type=USER_LOGIN msg=audit(1.000:9): a=1", 7.0, 5);
        assert_eq!(last, [(Complete::Single, vec![5]), (Complete::Superseded, vec![4])]);
        assert_eq!(asm.stats.lost, 6); // 2, 3, 4 before serial 5; 6, 7, 8 before 9
    }

    #[test]
    fn lost_serials_resends_and_fragments() {
        let mut asm = Assembler::new(Settings::default());
        add(&mut asm, "type=SYSCALL msg=audit(1.000:10): a=1", 0.0, 1);
        add(&mut asm, "type=SYSCALL msg=audit(1.000:10): a=1", 0.0, 2); // a resend: tag kept, record not
        add(&mut asm, "continued", 0.0, 3);
        let mut out = Vec::new();
        asm.flush(&mut out);
        assert_eq!(out[0].tags, [1, 2, 3]);
        assert_eq!(out[0].records.len(), 1);
        assert_eq!(&*out[0].records[0].raw, "type=SYSCALL msg=audit(1.000:10): a=1continued");
        assert_eq!(asm.stats.resends, 1);
        let mut asm = Assembler::new(Settings::default());
        add(&mut asm, "type=SYSCALL msg=audit(1.000:10): a=1", 0.0, 1);
        add(&mut asm, "type=SYSCALL msg=audit(1.000:14): a=1", 0.0, 2);
        let mut out = Vec::new();
        asm.flush(&mut out);
        assert_eq!(out.iter().map(|e| e.lost_before).collect::<Vec<_>>(), [0, 3]);
        // rollover: 4294967295 -> 0 is the next serial, not a jump back
        let mut asm = Assembler::new(Settings::default());
        add(&mut asm, "type=SYSCALL msg=audit(1.000:4294967295): a=1", 0.0, 1);
        add(&mut asm, "type=SYSCALL msg=audit(1.000:1): a=1", 0.0, 2);
        let mut out = Vec::new();
        asm.flush(&mut out);
        assert_eq!(out.iter().map(|e| e.lost_before).collect::<Vec<_>>(), [0, 1]);
    }

    #[test]
    fn a_record_without_a_serial_is_an_error_event() {
        // the parser never makes one (such a line is an error record); a hand-built record may
        let mut record = rec("type=SYSCALL msg=audit(1.000:1): a=1");
        record.serial = None;
        let mut asm = Assembler::new(Settings::default());
        let mut out = Vec::new();
        asm.add(record, 0.0, 5, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].complete, out[0].error, out[0].tags.clone()), (Complete::Error, Some(NO_SERIAL), vec![5]));
    }

    #[test]
    fn eoe_and_orphans() {
        let mut asm = Assembler::new(Settings::default());
        assert_eq!(add(&mut asm, "type=EOE msg=audit(1.000:1): ", 0.0, 1), [(Complete::OrphanEoe, vec![1])]);
        add(&mut asm, "type=SYSCALL msg=audit(1.000:2): a=1", 0.0, 2);
        assert_eq!(add(&mut asm, "type=EOE msg=audit(1.000:2): ", 0.0, 3), [(Complete::Eoe, vec![2, 3])]);
        assert_eq!(add(&mut asm, "fragment", 0.0, 4), [(Complete::Error, vec![4])]);
        assert_eq!(add(&mut asm, "type=X msg=nothing", 0.0, 5), [(Complete::Error, vec![5])]);
    }
}
