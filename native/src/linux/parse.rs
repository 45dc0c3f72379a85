//! Line parser (Python `parser.py`): one audit record line -> [`Record`]. Never fails on bad input
//! (the record gets an error), except where Python's `int()` raises on a number of more than 4300
//! digits in the header ([`TooManyDigits`]).
//!
//! Format: `[node=NAME ]type=TYPE msg=audit(SEC.FRAC:SERIAL): k=v ...[\x1dK=V ...]`. The regular
//! expressions of the Python parser are hand-written scanners here, with the same (possessive)
//! matching and Python's notion of whitespace and digits.

use std::borrow::Cow;
use std::sync::Arc;

use super::interpret::name_id;
use super::num::Num;
use super::pytext::{MAX_STR_DIGITS, ascii_digits, decimal_value, find_byte, is_blank, is_word, space_len};
use super::record::{ERROR_EMPTY, ERROR_FRAGMENT, ERROR_NO_HEADER, Fields, Pair, Plain, Record, Text, key_hash};
use super::tables;
use crate::json::first_escape;

pub const ENRICHED_SEPARATOR: char = '\x1d';

/// Python raises ValueError converting a header number: the whole decode fails there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooManyDigits(pub usize);

impl std::fmt::Display for TooManyDigits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Exceeds the limit ({MAX_STR_DIGITS} digits) for integer string conversion: value has {} digits; \
             use sys.set_int_max_str_digits() to increase the limit",
            self.0
        )
    }
}

const PLAIN: u8 = 0;
const SPACE: u8 = 1;
const EQUALS: u8 = 2;
/// The first byte of U+0085, U+00A0, U+1680, U+2000-U+205F or U+3000: maybe whitespace.
const MAYBE_SPACE: u8 = 3;

/// What a byte is to the scanners. Bytes of other multi-byte characters are plain: no whitespace
/// and no `=` starts with them, so the scanners step over them one byte at a time.
static CLASS: [u8; 256] = {
    let mut t = [PLAIN; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = match i as u8 {
            b'\t'..=b'\r' | 0x1c..=0x1f | b' ' => SPACE,
            b'=' => EQUALS,
            0xC2 | 0xE1 | 0xE2 | 0xE3 => MAYBE_SPACE,
            _ => PLAIN,
        };
        i += 1;
    }
    t
};

/// Whether byte `i` starts whitespace.
#[inline]
fn is_space_at(b: &[u8], i: usize) -> bool {
    match CLASS[b[i] as usize] {
        SPACE => true,
        MAYBE_SPACE => space_len(b, i) > 0,
        _ => false,
    }
}

fn skip_space(b: &[u8], mut i: usize) -> usize {
    while i < b.len() {
        let n = space_len(b, i);
        if n == 0 {
            break;
        }
        i += n;
    }
    i
}

/// Eight bytes at a time: the high bit of each byte that may end a run of non-whitespace, `<= 0x20`
/// or `>= 0x80` (or `=` with `stop_at_equals`). The lowest mark is exact (bytes above a marked one may be
/// marked without reason); the byte itself is then checked exactly.
#[inline]
fn stop_marks(w: u64, stop_at_equals: bool) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let low = w.wrapping_sub(ONES * 0x21) & !w & HIGH; // a byte < 0x21
    let equals = if stop_at_equals {
        let x = w ^ (ONES * u64::from(b'='));
        x.wrapping_sub(ONES) & !x & HIGH
    } else {
        0
    };
    low | equals | (w & HIGH)
}

/// The end of the run from `i` of bytes that are not whitespace (nor `=`, with `stop_at_equals`).
#[inline(always)] // once or twice per pair of every record
fn skip_run(b: &[u8], mut i: usize, stop_at_equals: bool) -> usize {
    while let Some(word) = b.get(i..i + 8) {
        let marks = stop_marks(u64::from_le_bytes(word.try_into().expect("8 bytes")), stop_at_equals);
        if marks == 0 {
            i += 8;
            continue;
        }
        // the first byte that may stop the run: a stop, or (a control that is not whitespace, a
        // non-ASCII character) the run goes on after it
        let j = i + (marks.trailing_zeros() / 8) as usize;
        if (stop_at_equals && b[j] == b'=') || is_space_at(b, j) {
            return j;
        }
        i = j + 1;
    }
    while i < b.len() {
        if (stop_at_equals && b[i] == b'=') || is_space_at(b, i) {
            return i;
        }
        i += 1;
    }
    i
}

/// The high bit of each of eight bytes that may be a `"` or a `\\` (the controls are among
/// [`stop_marks`]' bytes below `0x21`): exact up to the first.
#[inline]
fn quote_marks(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let (q, b) = (w ^ (ONES * u64::from(b'"')), w ^ (ONES * u64::from(b'\\')));
    (q.wrapping_sub(ONES) & !q | b.wrapping_sub(ONES) & !b) & HIGH
}

#[inline]
fn needs_escape(c: u8) -> bool {
    c < 0x20 || c == b'"' || c == b'\\'
}

/// [`skip_run`] noting whether the run holds a byte a JSON string escapes, in the same pass (the
/// writers then copy it as it is).
#[inline(always)] // once or twice per pair of every record
fn skip_run_noting(b: &[u8], mut i: usize, stop_at_equals: bool) -> (usize, bool) {
    let mut escaped = false;
    while let Some(word) = b.get(i..i + 8) {
        let w = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        let marks = stop_marks(w, stop_at_equals) | quote_marks(w);
        if marks == 0 {
            i += 8;
            continue;
        }
        let j = i + (marks.trailing_zeros() / 8) as usize;
        if (stop_at_equals && b[j] == b'=') || is_space_at(b, j) {
            return (j, escaped);
        }
        escaped |= needs_escape(b[j]);
        i = j + 1;
    }
    while i < b.len() {
        if (stop_at_equals && b[i] == b'=') || is_space_at(b, i) {
            return (i, escaped);
        }
        escaped |= needs_escape(b[i]);
        i += 1;
    }
    (i, escaped)
}

#[inline]
fn skip_nonspace(b: &[u8], i: usize) -> usize {
    skip_run(b, i, false)
}

/// `\d++` from byte `i`: the end of the run of decimal digits.
fn skip_digits(s: &str, i: usize) -> usize {
    // ASCII digits byte by byte (the header's numbers always are); other decimals by character
    let b = s.as_bytes();
    let ascii = b[i..].iter().position(|c| !c.is_ascii_digit()).map_or(s.len(), |k| i + k);
    if ascii == s.len() || b[ascii].is_ascii() {
        return ascii;
    }
    s[ascii..].char_indices().find(|&(_, c)| decimal_value(c).is_none()).map_or(s.len(), |(k, _)| ascii + k)
}

fn int_digits(digits: &str) -> Result<Num, TooManyDigits> {
    int_digit_parts(&[digits])
}

/// `int(a + b + ...)` of runs of decimal digits.
fn int_digit_parts(parts: &[&str]) -> Result<Num, TooManyDigits> {
    if parts.iter().all(|p| p.is_ascii()) {
        let n: usize = parts.iter().map(|p| p.len()).sum();
        if n > MAX_STR_DIGITS {
            return Err(TooManyDigits(n));
        }
        return Ok(Num::from_digit_parts(parts));
    }
    let joined = parts.concat();
    let n = joined.chars().count();
    if n > MAX_STR_DIGITS {
        return Err(TooManyDigits(n));
    }
    Ok(Num::from_digits(&ascii_digits(&joined)))
}

struct Header<'a> {
    node: Option<&'a str>,
    type_name: &'a str,
    sec: &'a str,
    frac: &'a str,
    serial: &'a str,
    end: usize,
}

/// The header regex `(?:node=(\S*+)\s++)?type=(\S++)\s++msg=audit\((\d++)\.(\d++):(\d++)\):?+\s*+`
/// matched at the start of `s`.
fn header(s: &str) -> Option<Header<'_>> {
    let b = s.as_bytes();
    let mut p = 0;
    let mut node = None;
    if s.starts_with("node=") {
        let q = skip_nonspace(b, 5);
        let r = skip_space(b, q);
        if r == q {
            return None; // the optional group fails, and `type=` cannot match at "node="
        }
        node = Some(&s[5..q]);
        p = r;
    }
    if !s[p..].starts_with("type=") {
        return None;
    }
    let q = skip_nonspace(b, p + 5);
    if q == p + 5 {
        return None;
    }
    let type_name = &s[p + 5..q];
    let r = skip_space(b, q);
    if r == q || !s[r..].starts_with("msg=audit(") {
        return None;
    }
    let p = r + "msg=audit(".len();
    let q = skip_digits(s, p);
    if q == p || b.get(q) != Some(&b'.') {
        return None;
    }
    let (sec, p) = (&s[p..q], q + 1);
    let q = skip_digits(s, p);
    if q == p || b.get(q) != Some(&b':') {
        return None;
    }
    let (frac, p) = (&s[p..q], q + 1);
    let q = skip_digits(s, p);
    if q == p || b.get(q) != Some(&b')') {
        return None;
    }
    let (serial, mut p) = (&s[p..q], q + 1);
    if b.get(p) == Some(&b':') {
        p += 1;
    }
    Some(Header { node, type_name, sec, frac, serial, end: skip_space(b, p) })
}

/// `UNKNOWN\[(\d+)\]` fullmatch: the digits.
fn unknown_type_digits(name: &str) -> Option<&str> {
    let digits = name.strip_prefix("UNKNOWN[")?.strip_suffix(']')?;
    (!digits.is_empty() && skip_digits(digits, 0) == digits.len()).then_some(digits)
}

/// Where the ENRICHED section's separator is, or the line's length: 32 bytes compared at a time (a
/// loop the compiler makes wide), as most lines have none and are a few hundred bytes long.
fn enriched_start(raw: &str) -> usize {
    const SEPARATOR: u8 = ENRICHED_SEPARATOR as u8;
    let bytes = raw.as_bytes();
    let mut at = 0;
    for chunk in bytes.chunks_exact(32) {
        if chunk.iter().fold(false, |found, &b| found | (b == SEPARATOR)) {
            break;
        }
        at += 32;
    }
    bytes[at..].iter().position(|&b| b == SEPARATOR).map_or(bytes.len(), |i| at + i)
}

/// Parse one line of text (already decoded, see `pytext::decode_lossy`).
pub fn parse_line(line: &str) -> Result<Record, TooManyDigits> {
    let raw = line.strip_suffix("\r\n").or_else(|| line.strip_suffix('\n')).unwrap_or(line);
    let end = enriched_start(raw);
    let Some(h) = header(&raw[..end]) else {
        return Ok(unparsed(raw));
    };
    let known = tables::msg_type_number(h.type_name);
    let mut type_num = known.map(|(_, n)| Num::Small(n as u128));
    let mut type_name: Cow<'static, str> = match known {
        Some((name, _)) => Cow::Borrowed(name),
        None => Cow::Owned(h.type_name.to_owned()),
    };
    if type_num.is_none() {
        if let Some(digits) = unknown_type_digits(h.type_name) {
            let num = int_digits(digits)?;
            if let Num::Small(n) = num {
                if let Some(name) = i64::try_from(n).ok().and_then(tables::msg_type_name) {
                    type_name = Cow::Borrowed(name);
                }
            }
            type_num = Some(num);
        }
    }
    // the fraction is milliseconds in practice (3 digits); anything else is scaled to nanoseconds
    let frac_len = h.frac.chars().count();
    let time_ns = if frac_len == 3 {
        int_digit_parts(&[h.sec, h.frac])?.scaled(6)
    } else {
        let mut nine: String = h.frac.chars().take(9).collect();
        nine.extend(std::iter::repeat_n('0', 9 - frac_len.min(9)));
        int_digit_parts(&[h.sec, &nine])?
    };
    let serial = int_digits(h.serial)?;
    let mut record = Record {
        type_name,
        type_num,
        node: h.node.map(str::to_owned),
        time_ns: Some(time_ns),
        serial: Some(serial),
        ..Record::default()
    };
    let start = h.end;
    record.raw = Arc::from(raw);
    if start < raw.len() {
        let line = Arc::clone(&record.raw);
        parse_body(&mut record, &line, start, end);
    }
    Ok(record)
}

/// The error record of a line the header did not match.
fn unparsed(raw: &str) -> Record {
    if !(raw.starts_with("type=") || raw.starts_with("node=")) {
        if is_blank(raw) {
            return Record::error_record(raw, ERROR_EMPTY, false);
        }
        return Record::error_record(raw, ERROR_FRAGMENT, true);
    }
    Record::error_record(raw, ERROR_NO_HEADER, false)
}

/// A key and its value as the scanners find them.
type Found<'a> = (&'a str, Cow<'a, str>);

/// The end of a value starting at byte `v`: `[^"'{\s]\S*+|"[^"]*+"|'[^']*+'|\{[^}]*+\}|\S*+`.
#[inline(always)] // once per pair of every record
fn value_end(s: &str, v: usize) -> usize {
    let b = s.as_bytes();
    if v >= b.len() || is_space_at(b, v) {
        return v;
    }
    let close = match b[v] {
        b'"' => b'"',
        b'\'' => b'\'',
        b'{' => b'}',
        _ => return skip_nonspace(b, v),
    };
    match find_byte(close, &b[v + 1..]) {
        Some(k) => v + 1 + k + 1,
        None => skip_nonspace(b, v),
    }
}

/// [`value_end`] with what the value needs as a JSON string ([`Plain::of`]'s rule, the key taken as
/// clean), found in the same pass.
#[inline(always)] // once per pair of every record
fn value_end_noting(s: &str, v: usize) -> (usize, Plain) {
    let b = s.as_bytes();
    if v >= b.len() || is_space_at(b, v) {
        return (v, Plain::Clean);
    }
    match b[v] {
        b'"' => {
            // the first byte to escape in what follows the quote: the closing quote when the value is
            // a plain quoted text (the kernel quotes only those)
            let content = &b[v + 1..];
            match first_escape(content) {
                Some(k) if content[k] == b'"' => (v + 1 + k + 1, Plain::Quoted),
                Some(k) => match find_byte(b'"', &content[k + 1..]) {
                    Some(m) => (v + 1 + k + 1 + m + 1, Plain::Unknown),
                    None => (skip_nonspace(b, v), Plain::Unknown),
                },
                None => (skip_nonspace(b, v), Plain::Unknown),
            }
        }
        b'\'' | b'{' => (value_end(s, v), Plain::Unknown),
        _ => match skip_run_noting(b, v, false) {
            (end, false) => (end, Plain::Clean),
            (end, true) => (end, Plain::Unknown),
        },
    }
}

/// `_KV.findall(s)`: `([^\s=]++)=(value)` everywhere it matches, left to right.
pub fn kv_findall(s: &str) -> Vec<Found<'_>> {
    // room for the pairs of a typical body (a SYSCALL record has ~27 in ~300 bytes): no regrowth
    let mut out = Vec::with_capacity((s.len() / 10).clamp(8, 64));
    kv_scan(s, |key, equals, end, _| out.push((&s[key..equals], Cow::Borrowed(&s[equals + 1..end]))));
    out
}

/// The matches of `kv_findall`, handed to `found` as they are found: where the key starts, where its
/// `=` is, where the value ends (byte offsets in `s`), and what the pair needs as JSON ([`Plain::of`]).
#[inline]
fn kv_scan(s: &str, mut found: impl FnMut(usize, usize, usize, Plain)) {
    let b = s.as_bytes();
    let mut p = 0;
    while p < b.len() {
        match CLASS[b[p] as usize] {
            SPACE | EQUALS => {
                p += 1;
                continue;
            }
            MAYBE_SPACE => {
                let n = space_len(b, p);
                if n > 0 {
                    p += n;
                    continue;
                }
            }
            _ => {}
        }
        let (r, key_escaped) = skip_run_noting(b, p, true);
        if r >= b.len() || b[r] != b'=' {
            p = r; // every start inside this run fails the same way
            continue;
        }
        let (end, plain) = value_end_noting(s, r + 1);
        found(p, r, end, if key_escaped { Plain::Unknown } else { plain });
        p = end;
    }
}

/// Whether a user-space text may be in the old prose form, whose pairs `kv_pairs` mends.
#[inline]
fn has_prose(text: &str) -> bool {
    text.contains(" (") || text.starts_with('(')
}

/// key=value pairs of a user-space body; old prose forms ("(hostname=?, addr=?, terminal=cron
/// res=success)") lose their parentheses and commas, as in `_kv_pairs`.
fn kv_pairs(text: &str) -> Vec<Found<'_>> {
    let mut pairs = kv_findall(text);
    if !has_prose(text) {
        return pairs;
    }
    for pair in &mut pairs {
        // the findall's values are all slices of the text
        if let (key, Cow::Borrowed(value)) = (pair.0, &pair.1) {
            if let Some((key, value)) = mend_prose(key, value) {
                *pair = (key, Cow::Borrowed(value));
            }
        }
    }
    pairs
}

/// `avc:\s+(\w+)\s+\{\s*([^}]*?)\s*\}` searched in `s`: (result, permissions joined by commas).
fn avc(s: &str) -> Option<(&str, String)> {
    let b = s.as_bytes();
    let mut from = 0;
    while let Some(k) = s[from..].find("avc:") {
        let at = from + k;
        from = at + 1;
        let p = at + 4;
        let q = skip_space(b, p);
        if q == p {
            continue;
        }
        let w = s[q..].char_indices().find(|&(_, c)| !is_word(c)).map_or(s.len(), |(i, _)| q + i);
        if w == q {
            continue;
        }
        let r = skip_space(b, w);
        if r == w || b.get(r) != Some(&b'{') {
            continue;
        }
        let Some(close) = find_byte(b'}', &b[r + 1..]) else { continue };
        let perms: Vec<&str> = super::pytext::split_whitespace(&s[r + 1..r + 1 + close]).collect();
        return Some((&s[q..w], perms.join(",")));
    }
    None
}

fn prepend_avc<'a>(pairs: &mut Vec<Found<'a>>, found: Option<(&'a str, String)>) {
    if let Some((result, perms)) = found {
        pairs.splice(0..0, [("seresult", Cow::Borrowed(result)), ("seperms", Cow::Owned(perms))]);
    }
}

/// `a == b`, with the cheap tests first (most keys differ in length or first or last byte).
#[inline]
fn same_key(a: &str, b: &str) -> bool {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    x.len() == y.len() && x.first() == y.first() && x.last() == y.last() && x == y
}

/// Records with more pairs than this (EXECVE) find repeated keys with a hash set.
const KEYS_ON_STACK: usize = 32;

/// A bit of a 256-bit filter for a key (its length and last byte): keys whose bit is not set yet are
/// certainly new, so most keys are never compared with the ones before them.
#[inline]
fn key_bit(key: &str) -> (usize, u64) {
    let b = key.as_bytes();
    let h = b.len().wrapping_mul(31) ^ usize::from(b.last().copied().unwrap_or(0)).wrapping_mul(7);
    ((h >> 6) & 3, 1 << (h & 63))
}

/// The pairs of a kernel record's body stored as they are found (`fill` of `kv_findall`, without
/// the list in between).
fn fill_kernel(record: &mut Record, line: &Arc<str>, start: usize, end: usize) {
    let body = &line[start..end];
    if line.len() > u32::MAX as usize {
        // too long for spans of u32 offsets: the pairs as copies
        return fill(record, line, kv_findall(body));
    }
    let mut spans = Spans::new(line, body.len());
    kv_scan(body, |k, equals, v_end, plain| {
        spans.add(&body[k..equals], &body[equals + 1..v_end], plain, &mut record.duplicates)
    });
    record.fields = Fields::new(Arc::clone(line), spans.fields);
}

/// The pairs of a line stored as they are found, as spans of it (the line fits u32 offsets), each key
/// once: the first value kept, later ones to the record's duplicates. Repeated keys are found with a
/// 256-bit filter and the keys so far on the stack, past `KEYS_ON_STACK` (EXECVE) with a [`KeyTable`].
struct Spans<'a> {
    line: &'a str,
    fields: Vec<Pair>,
    seen: Option<KeyTable>,
    keys: [&'a str; KEYS_ON_STACK],
    filter: [u64; 4],
    count: usize,
    /// Bytes of the text the pairs come from (the room of a table of its keys).
    body_len: usize,
}

impl<'a> Spans<'a> {
    fn new(line: &'a str, body_len: usize) -> Self {
        Spans {
            line,
            // room for the pairs of a typical body (a SYSCALL record has ~27 in ~300 bytes): no regrowth
            fields: Vec::with_capacity((body_len / 10).clamp(8, 64)),
            seen: None,
            keys: [""; KEYS_ON_STACK],
            filter: [0; 4],
            count: 0,
            body_len,
        }
    }

    /// A pair whose `key` and `value` are slices of the line.
    #[inline(always)] // the work per pair of every record: a call would be a tenth of it
    fn add(&mut self, key: &'a str, value: &'a str, plain: Plain, duplicates: &mut Vec<(String, String)>) {
        let fields = &mut self.fields;
        let repeated = match &mut self.seen {
            Some(seen) => !seen.insert(self.line, fields, key, fields.len()),
            None => {
                let (word, bit) = key_bit(key);
                let maybe = self.filter[word] & bit != 0;
                self.filter[word] |= bit;
                maybe && self.keys[..self.count].iter().any(|k| same_key(k, key))
            }
        };
        if repeated {
            duplicates.push((key.to_owned(), value.to_owned()));
            return;
        }
        if self.seen.is_none() {
            if self.count < KEYS_ON_STACK {
                self.keys[self.count] = key;
                self.count += 1;
            } else {
                // past the stack's room (EXECVE): a table of every key so far, this one to come
                let mut table = KeyTable::with_room(self.body_len / 4);
                for i in 0..fields.len() {
                    table.insert(self.line, fields, fields[i].key.resolve(self.line), i);
                }
                table.add(key, fields.len());
                self.seen = Some(table);
            }
        }
        let base = self.line.as_ptr() as usize;
        let span = |part: &str| {
            let from = part.as_ptr() as usize - base;
            Text::Span(from as u32, (from + part.len()) as u32)
        };
        fields.push(Pair { key: span(key), value: span(value), id: name_id(key), plain });
    }
}

/// The keys of a record of many pairs (an EXECVE's arguments), told apart by an open-addressing table
/// of their positions in its `fields` (a hash set of them cost ~200 instructions a key).
struct KeyTable {
    /// Per slot: a position in `fields`, or `u32::MAX`.
    slots: Vec<u32>,
    len: usize,
}

impl KeyTable {
    fn with_room(keys: usize) -> Self {
        KeyTable { slots: vec![u32::MAX; (keys * 2).next_power_of_two().max(128)], len: 0 }
    }

    /// Whether `key` is new (then noted as the key of `fields[fields.len()]`, the pair about to be
    /// stored): its slot is looked for among the stored keys of `fields` (spans of `line`).
    fn insert(&mut self, line: &str, fields: &[Pair], key: &str, index: usize) -> bool {
        let mask = self.slots.len() - 1;
        let mut slot = key_hash(key) & mask;
        loop {
            match self.slots[slot] {
                u32::MAX => break,
                i if fields[i as usize].key.resolve(line) == key => return false,
                _ => slot = (slot + 1) & mask,
            }
        }
        self.slots[slot] = index as u32;
        self.len += 1;
        if self.len * 2 > self.slots.len() {
            // room again: the stored keys, and this one, in a table twice the size
            let mut bigger = KeyTable { slots: vec![u32::MAX; self.slots.len() * 2], len: 0 };
            for &i in self.slots.iter().filter(|&&i| i != u32::MAX) {
                let k = if (i as usize) < fields.len() { fields[i as usize].key.resolve(line) } else { key };
                bigger.add(k, i as usize);
            }
            *self = bigger;
        }
        true
    }

    /// A key known to be new noted as the key of `fields[index]`.
    fn add(&mut self, key: &str, index: usize) {
        let mask = self.slots.len() - 1;
        let mut slot = key_hash(key) & mask;
        while self.slots[slot] != u32::MAX {
            slot = (slot + 1) & mask;
        }
        self.slots[slot] = index as u32;
        self.len += 1;
    }
}

/// Store pairs: a repeated key keeps its first value, later ones go to duplicates.
fn fill(record: &mut Record, line: &Arc<str>, pairs: Vec<Found<'_>>) {
    let mut fields: Vec<Pair> = Vec::with_capacity(pairs.len());
    let mut seen = super::assemble::FastSet::default();
    let many = pairs.len() > KEYS_ON_STACK;
    let mut keys = [""; KEYS_ON_STACK];
    let mut filter = [0u64; 4];
    for (key, value) in pairs {
        let repeated = if many {
            !seen.insert(key)
        } else {
            let (word, bit) = key_bit(key);
            let maybe = filter[word] & bit != 0;
            filter[word] |= bit;
            maybe && keys[..fields.len()].iter().any(|k| same_key(k, key))
        };
        if !many && !repeated {
            keys[fields.len()] = key;
        }
        if repeated {
            record.duplicates.push((key.to_owned(), value.into_owned()));
        } else {
            let plain = Plain::of(key, &value);
            fields.push(Pair { key: Text::of(line, key), value: Text::of(line, &value), id: name_id(key), plain });
        }
    }
    record.fields = Fields::new(Arc::clone(line), fields);
}

/// ENRICHED section: values already interpreted by the sender; one level of quotes removed, the
/// first value of a key kept.
fn parse_enriched(line: &Arc<str>, text: &str) -> Fields {
    let mut out: Vec<Pair> = Vec::new();
    let mut keys: Vec<&str> = Vec::new();
    for (key, value) in kv_findall(text) {
        let v: &str = &value;
        let b = v.as_bytes();
        let v =
            if b.len() >= 2 && b[0] == b[b.len() - 1] && matches!(b[0], b'"' | b'\'') { &v[1..v.len() - 1] } else { v };
        if !keys.contains(&key) {
            keys.push(key);
            let plain = Plain::of(key, v);
            out.push(Pair { key: Text::of(line, key), value: Text::of(line, v), id: name_id(key), plain });
        }
    }
    Fields::new(Arc::clone(line), out)
}

fn parse_body(record: &mut Record, raw: &Arc<str>, start: usize, end: usize) {
    if start < end {
        let body = &raw[start..end];
        if record.type_num.is_none() || record.is_user_space() {
            parse_user_space(record, raw, body);
        } else if record.type_name == "AVC" {
            let mut pairs = kv_findall(body);
            prepend_avc(&mut pairs, avc(body));
            fill(record, raw, pairs);
        } else {
            fill_kernel(record, raw, start, end);
        }
    }
    if end < raw.len() {
        record.enriched = parse_enriched(raw, &raw[end + 1..]);
    }
}

/// User-space (and unknown) records: old prose forms and the nested `msg='...'` key=values,
/// flattened as libauparse and go-libaudit do.
fn parse_user_space(record: &mut Record, line: &Arc<str>, rest: &str) {
    // all but USER_AVC: the pairs stored as they are found (mended where their text has the prose form, as
    // `kv_pairs` mends them: still slices of the line), the nested message's in place of its `msg='...'`
    if line.len() <= u32::MAX as usize && record.type_name != "USER_AVC" {
        let mut spans = Spans::new(line, rest.len());
        let mut text = None;
        let prose = has_prose(rest);
        kv_scan(rest, |k, equals, v_end, plain| {
            let (key, value, plain) = mended(&rest[k..equals], &rest[equals + 1..v_end], plain, prose);
            if text.is_some() || key != "msg" || !value.starts_with('\'') {
                return spans.add(key, value, plain, &mut record.duplicates);
            }
            let inner = if value.len() > 1 && value.ends_with('\'') { &value[1..value.len() - 1] } else { &value[1..] };
            text = Some(inner);
            let prose = has_prose(inner);
            kv_scan(inner, |k, equals, v_end, plain| {
                let (key, value, plain) = mended(&inner[k..equals], &inner[equals + 1..v_end], plain, prose);
                spans.add(key, value, plain, &mut record.duplicates)
            });
        });
        record.text = text.map(str::to_owned);
        record.fields = Fields::new(Arc::clone(line), spans.fields);
        return;
    }
    parse_user_space_pairs(record, line, rest);
}

/// A pair of a text in the prose form (`prose`) mended as `kv_pairs` mends it, with what it then needs as
/// JSON; else as it is.
#[inline]
fn mended<'t>(key: &'t str, value: &'t str, plain: Plain, prose: bool) -> (&'t str, &'t str, Plain) {
    match prose.then(|| mend_prose(key, value)).flatten() {
        Some((key, value)) => (key, value, Plain::of(key, value)),
        None => (key, value, plain),
    }
}

/// `_kv_pairs`' mending of one pair of a prose text: a key opening with `(` loses it, and so does a
/// prose value (ending with `,` or `)`, not opening with a quote or `(`, holding no `(`) its trailing
/// commas and parentheses; a quoted value stays as it is. None when the pair is left as it is.
fn mend_prose<'t>(key: &'t str, value: &'t str) -> Option<(&'t str, &'t str)> {
    let prose = value.ends_with([',', ')']) && !value.starts_with(['"', '\'', '(']) && !value.contains('(');
    if !(key.starts_with('(') || prose) {
        return None;
    }
    let value = if value.starts_with(['"', '\'']) { value } else { value.trim_end_matches([',', ')']) };
    Some((key.trim_start_matches('('), value))
}

/// [`parse_user_space`] of any form: the pairs listed (prose mended, AVC facts put first), the nested
/// message's spliced in, then stored.
fn parse_user_space_pairs(record: &mut Record, line: &Arc<str>, rest: &str) {
    let mut pairs = kv_pairs(rest);
    if rest.contains("msg='") {
        if let Some(i) = pairs.iter().position(|(k, v)| *k == "msg" && v.starts_with('\'')) {
            let Cow::Borrowed(value) = pairs[i].1 else { unreachable!("msg values are slices of the line") };
            let inner = if value.len() > 1 && value.ends_with('\'') { &value[1..value.len() - 1] } else { &value[1..] };
            record.text = Some(inner.to_owned());
            let mut inner_pairs = kv_pairs(inner);
            if record.type_name == "USER_AVC" {
                prepend_avc(&mut inner_pairs, avc(inner));
            }
            pairs.splice(i..=i, inner_pairs);
        }
    }
    fill(record, line, pairs);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Record {
        parse_line(line).unwrap()
    }

    fn pairs(r: &Record) -> Vec<(&str, &str)> {
        r.fields.iter().collect()
    }

    #[test]
    fn header_and_fields() {
        let r = parse("node=web1 type=SYSCALL msg=audit(1700000000.123:42): arch=c000003e syscall=59 comm=\"ls\"\n");
        assert_eq!(r.node.as_deref(), Some("web1"));
        assert_eq!((&*r.type_name, r.type_num.clone()), ("SYSCALL", Some(Num::Small(1300))));
        assert_eq!(r.time_ns, Some(Num::Small(1_700_000_000_123_000_000)));
        assert_eq!(r.serial, Some(Num::Small(42)));
        assert_eq!(r.msg_id().as_deref(), Some("1700000000.123:42"));
        assert_eq!(pairs(&r), [("arch", "c000003e"), ("syscall", "59"), ("comm", "\"ls\"")]);
        assert!(!r.raw.ends_with('\n'));
        assert_eq!(r.fields.get("comm"), Some("\"ls\""));
    }

    #[test]
    fn odd_fractions_scale_to_nanoseconds() {
        assert_eq!(parse("type=X msg=audit(1.5:1):").time_ns, Some(Num::Small(1_500_000_000)));
        assert_eq!(parse("type=X msg=audit(0.0000000019:1):").time_ns, Some(Num::Small(1)));
        // Python's \d and int() take any decimal digit, after ASCII ones too
        assert_eq!(parse("type=X msg=audit(1\u{662}.5:7\u{663}):").time_ns, Some(Num::Small(12_500_000_000)));
        assert_eq!(parse("type=X msg=audit(1\u{662}.5:7\u{663}):").serial, Some(Num::Small(73)));
        assert_eq!(parse("type=X msg=audit(1\u{e9}.5:7):").error, Some(ERROR_NO_HEADER));
    }

    #[test]
    fn unparsed_lines() {
        assert_eq!(parse(" \t").error, Some(ERROR_EMPTY));
        let frag = parse("rest of a long line");
        assert!(frag.fragment && frag.error == Some(ERROR_FRAGMENT));
        assert_eq!(parse("type=SYSCALL msg=audit(1.2): x=1").error, Some(ERROR_NO_HEADER));
        assert_eq!(parse("node=x").error, Some(ERROR_NO_HEADER));
        assert!(parse_line(&format!("type=X msg=audit({}.1:1):", "1".repeat(4300))).is_err());
    }

    #[test]
    fn runs_end_at_python_whitespace() {
        for sep in [" ", "\t", "\u{1d}", "\u{85}", "\u{a0}", "\u{3000}", "\u{2028}"] {
            for n in 0..20 {
                let text = format!("{}é{sep}rest", "x".repeat(n));
                let end = n + "é".len();
                assert_eq!(skip_nonspace(text.as_bytes(), 0), end, "{sep:?} after {n}");
                assert_eq!(skip_run(format!("{}={sep}", "y".repeat(n)).as_bytes(), 0, true), n);
            }
        }
        assert_eq!(skip_nonspace("abc\u{2029}".as_bytes(), 0), 3);
        assert_eq!(skip_nonspace("\u{200b}x".as_bytes(), 0), "\u{200b}x".len()); // not whitespace to Python
    }

    #[test]
    fn values_quoted_braced_and_bare() {
        let r = parse("type=SYSCALL msg=audit(1.000:1): a=\"x y\" b='p q' c={ 1 2 } d= e=\"open f=g=h");
        assert_eq!(
            pairs(&r),
            [("a", "\"x y\""), ("b", "'p q'"), ("c", "{ 1 2 }"), ("d", ""), ("e", "\"open"), ("f", "g=h")]
        );
    }

    #[test]
    fn enriched_separator_found_at_any_place() {
        for n in [0, 1, 31, 32, 33, 63, 64, 100] {
            let line = format!("{}\x1dUID=root\x1dX=y", "a".repeat(n));
            assert_eq!(enriched_start(&line), n);
            assert_eq!(enriched_start(&"é".repeat(n)), 2 * n);
        }
    }

    #[test]
    fn repeated_keys_and_enriched() {
        let r = parse("type=SYSCALL msg=audit(1.000:1): uid=1 uid=2\x1dUID=\"bob\" UID=x AUID='al'");
        assert_eq!(pairs(&r), [("uid", "1")]);
        assert_eq!(r.duplicates, [("uid".to_owned(), "2".to_owned())]);
        assert_eq!(r.enriched.iter().collect::<Vec<_>>(), [("UID", "bob"), ("AUID", "al")]);
    }

    #[test]
    fn repeated_keys_past_the_stack_room() {
        let mut line = String::from("type=EXECVE msg=audit(1.000:1): argc=40");
        for i in 0..40 {
            line.push_str(&format!(" a{i}=\"v{i}\""));
            if i == 5 || i == 35 {
                line.push_str(&format!(" a{}=again{i}", i - 3));
            }
        }
        line.push_str(" argc=x a39=y");
        let r = parse(&line);
        assert_eq!(r.fields.len(), 41);
        assert_eq!(r.fields.get("a2"), Some("\"v2\""));
        assert_eq!(r.fields.get("a32"), Some("\"v32\""));
        let dups: Vec<(&str, &str)> = r.duplicates.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(dups, [("a2", "again5"), ("a32", "again35"), ("argc", "x"), ("a39", "y")]);
    }

    #[test]
    fn repeated_keys_among_hundreds() {
        // past the key table's first room (a short body: 128 slots), which then grows twice
        let mut line = String::from("type=EXECVE msg=audit(1.000:1): argc=300");
        for i in 0..300 {
            line.push_str(&format!(" a{i}=x{i}"));
            if i % 50 == 49 {
                line.push_str(&format!(" a{}=again{i} argc=y{i}", i / 2));
            }
        }
        let r = parse(&line);
        assert_eq!(r.fields.len(), 301);
        assert_eq!(
            (r.fields.get("a0"), r.fields.get("a299"), r.fields.get("argc")),
            (Some("x0"), Some("x299"), Some("300"))
        );
        let dups: Vec<(&str, &str)> = r.duplicates.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(dups.len(), 12);
        assert_eq!((dups[0], dups[11]), (("a24", "again49"), ("argc", "y299")));
    }

    #[test]
    fn the_key_table_grows_and_keeps_every_key() {
        let mut fields: Vec<Pair> = Vec::new();
        let mut table = KeyTable::with_room(1);
        for round in 0..2 {
            for i in 0..500 {
                let key = format!("a{i}");
                let new = table.insert("", &fields, &key, fields.len());
                assert_eq!(new, round == 0, "{key}");
                if new {
                    fields.push(Pair {
                        key: Text::Owned(key.into()),
                        value: Text::Static(""),
                        id: 0,
                        plain: Plain::Clean,
                    });
                }
            }
        }
        assert_eq!((fields.len(), table.len), (500, 500));
        assert!(table.slots.len() >= 1000);
    }

    #[test]
    fn user_space_messages_are_flattened() {
        let r = parse(
            "type=USER_AVC msg=audit(1.000:1): pid=1 msg='avc:  denied  { send_msg } for scontext=a exe=\"/x\" res=ok'",
        );
        assert_eq!(r.text.as_deref(), Some("avc:  denied  { send_msg } for scontext=a exe=\"/x\" res=ok"));
        assert_eq!(
            pairs(&r),
            [
                ("pid", "1"),
                ("seresult", "denied"),
                ("seperms", "send_msg"),
                ("scontext", "a"),
                ("exe", "\"/x\""),
                ("res", "ok")
            ]
        );
        let old =
            parse("type=USER_START msg=audit(1.000:2): user pid=1 (hostname=?, addr=?, terminal=cron res=success)");
        assert_eq!(
            pairs(&old),
            [("pid", "1"), ("hostname", "?"), ("addr", "?"), ("terminal", "cron"), ("res", "success")]
        );
    }

    #[test]
    fn user_space_pairs_stored_as_found_equal_the_general_way() {
        let lines = [
            "type=USER_LOGIN msg=audit(1.000:1): pid=1 uid=0 msg='op=login acct=\"bob\" exe=\"/x\" res=success'",
            "type=USER_CMD msg=audit(1.000:1): pid=1 msg='cwd=\"/\" cmd=6C73 pid=9 msg=inner' uid=0 pid=2",
            "type=USER_END msg=audit(1.000:1): msg=x msg='a=1 b=2' msg='c=3' d=4",
            "type=USER_END msg=audit(1.000:1): msg='unclosed a=1 b=2",
            "type=USER_END msg=audit(1.000:1): pid=1 msg='' res=1",
            "type=USER_END msg=audit(1.000:1): pid=1 msg='user (hostname=?, addr=?, res=ok)'",
            "type=USER_END msg=audit(1.000:1): pid=1 pid=3 msg='(hostname=?, res=ok)'",
            "type=DAEMON_START msg=audit(1.000:1): op=start ver=3.0 auid=4294967295 res=success",
            "type=UNKNOWN[2999] msg=audit(1.000:1): a=1 a=2 msg='a=3 b=4'",
            "type=USER_START msg=audit(1.000:1): user pid=1 uid=0 msg='PAM: session open acct=root : exe=\"/x\" (hostname=?, addr=?, terminal=cron res=success)'",
            "type=USER_START msg=audit(1.000:1): user pid=1 (msg='a=1, (b=2) c=\"q\"),' x=y), (z=\"w\", e=f(g), h='i')",
            "type=USER_END msg=audit(1.000:1): pid=1 (msg='(hostname=?, res=ok)') t=1,) u=\"v\",",
            "type=CRED_DISP msg=audit(1.000:1): (pid=1, pid=2) msg='x (a=1,, a=2)) (=q) ((b=\\x,)' msg='c=3 (d=4)'",
        ];
        for line in lines {
            let fast = parse(line);
            let mut general = Record { fields: Fields::default(), duplicates: Vec::new(), text: None, ..fast.clone() };
            let body = &fast.raw[fast.raw.find("): ").unwrap() + 3..];
            parse_user_space_pairs(&mut general, &fast.raw, body);
            assert_eq!(pairs(&fast), pairs(&general), "{line}");
            assert_eq!((&fast.duplicates, &fast.text), (&general.duplicates, &general.text), "{line}");
        }
    }

    #[test]
    fn the_scans_plain_marks_are_plain_of_its_pairs() {
        // every pair of every record: what the scan found is `Plain::of` the key and value it stored
        let mut lines = vec![
            "type=SYSCALL msg=audit(1.000:1): a=1 comm=\"ls\" exe=\"/usr/bin/ls\" key=(null) k=\"\" q=\"open"
                .to_owned(),
            "type=USER_CMD msg=audit(1.000:1): pid=1 msg='cwd=\"/\" cmd=6C73 t=\"a\\b\" x='".to_owned(),
            "type=PATH msg=audit(1.000:1): name='a b' c={ 1 } d=\"x\"y e=x\"y\" f=\"\"".to_owned(),
        ];
        for special in ['"', '\\', '\u{1}', '\u{1f}', '\t', 'é', '\u{a0}', '\u{2028}', '=', '\''] {
            for n in 0..20 {
                let long = "v".repeat(n);
                lines.push(format!(
                    "type=SYSCALL msg=audit(1.000:1): k{special}{long}=1 a={long}{special}x b=\"{long}{special}\" \
                     c=\"{long}\"{special} {long}{special}d=\"{long}\" e=\"{special}{long}"
                ));
            }
        }
        for line in &lines {
            let r = parse(line);
            let (text, pairs) = r.fields.raw_parts();
            assert!(!pairs.is_empty(), "{line}");
            for p in pairs {
                let (k, v) = (p.key.resolve(text), p.value.resolve(text));
                assert_eq!(p.plain, Plain::of(k, v), "{line:?}: {k:?}={v:?}");
            }
        }
        assert_eq!(Plain::of("comm", "\"ls\""), Plain::Quoted);
        assert_eq!(Plain::of("a", "1"), Plain::Clean);
        assert_eq!(Plain::of("a", "\"l\"s\""), Plain::Unknown);
        assert_eq!(Plain::of("a\"", "1"), Plain::Unknown);
    }

    #[test]
    fn unknown_types_and_kernel_avc() {
        let r = parse("type=UNKNOWN[1300] msg=audit(1.000:1): x=1");
        assert_eq!((&*r.type_name, r.type_num), ("SYSCALL", Some(Num::Small(1300))));
        let r = parse("type=AVC msg=audit(1.000:1): avc:  denied  { read write } for pid=1");
        assert_eq!(pairs(&r), [("seresult", "denied"), ("seperms", "read,write"), ("pid", "1")]);
    }
}
