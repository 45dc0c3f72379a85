//! One parsed audit record line (Python `LinuxRecord`): header facts, the key=value fields with
//! their raw values (quotes kept, hex not decoded), the ENRICHED section, repeated keys.

use std::borrow::Cow;
use std::sync::Arc;

use super::interpret::NameId;
use super::num::Num;
use crate::json::first_escape;

/// A key or value of a record: almost always a slice of its line (no copy), else text made while
/// parsing (the AVC permissions joined, the names `seresult`/`seperms`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Text {
    Span(u32, u32),
    Static(&'static str),
    Owned(Box<str>),
}

impl Text {
    /// `part` as a slice of `base` when it is one, else a copy (or a known name).
    #[inline]
    pub fn of(base: &str, part: &str) -> Text {
        let (b, p) = (base.as_ptr() as usize, part.as_ptr() as usize);
        if p >= b && p + part.len() <= b + base.len() && base.len() <= u32::MAX as usize {
            return Text::Span((p - b) as u32, (p - b + part.len()) as u32);
        }
        match part {
            "seresult" => Text::Static("seresult"),
            "seperms" => Text::Static("seperms"),
            _ => Text::Owned(part.into()),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Text::Span(start, end) => (end - start) as usize,
            Text::Static(s) => s.len(),
            Text::Owned(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn resolve<'a>(&'a self, base: &'a str) -> &'a str {
        match self {
            Text::Span(start, end) => &base[*start as usize..*end as usize],
            Text::Static(s) => s,
            Text::Owned(s) => s,
        }
    }
}

/// One key=value pair of a record, with its key's name id (`interpret::name_id`, looked up once, by the parser):
/// the rendering, the facts and the lookups of known names read the id instead of matching the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub key: Text,
    pub value: Text,
    pub id: NameId,
    /// What the key and value need as JSON strings, found by the parser's scan of them.
    pub plain: Plain,
}

/// What a pair's key and value need as JSON strings (the parser finds it while scanning them, so the
/// writers copy most pairs from the line without looking for escapes again): exactly [`Plain::of`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Plain {
    /// Something to escape, or not known: written through the escaping writer.
    #[default]
    Unknown,
    /// Nothing to escape in the key or the value.
    Clean,
    /// Nothing to escape in the key; the value is `"..."`, its two quotes its only escapes.
    Quoted,
}

impl Plain {
    /// The rule the parser's scan follows: a value opening with `'` or `{` (the scan does not look
    /// inside those) is `Unknown`.
    pub fn of(key: &str, value: &str) -> Plain {
        let v = value.as_bytes();
        if first_escape(key.as_bytes()).is_some() || matches!(v.first(), Some(b'\'' | b'{')) {
            return Plain::Unknown;
        }
        match first_escape(v) {
            None => Plain::Clean,
            Some(0) if v.len() >= 2 && v[v.len() - 1] == b'"' && first_escape(&v[1..v.len() - 1]).is_none() => {
                Plain::Quoted
            }
            Some(_) => Plain::Unknown,
        }
    }
}

/// Ordered key=value pairs, each key once (the first value kept), as the Python dicts are. They point
/// into the record's line, which they share.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    line: Arc<str>,
    pairs: Vec<Pair>,
}

impl Fields {
    pub fn new(line: Arc<str>, pairs: Vec<Pair>) -> Fields {
        Fields { line, pairs }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.position(name).map(|i| self.pairs[i].value.resolve(&self.line))
    }

    /// The value of the pair whose key has the name id `id` (not 0).
    #[inline]
    pub fn get_id(&self, id: NameId) -> Option<&str> {
        self.pairs.iter().find(|p| p.id == id).map(|p| p.value.resolve(&self.line))
    }

    /// Where the pair of key `name` (of name id `id`) is: by the id when it has one, else by bytes.
    #[inline]
    pub fn position_of(&self, id: NameId, name: &str) -> Option<usize> {
        if id != 0 { self.pairs.iter().position(|p| p.id == id) } else { self.position(name) }
    }

    /// Where the pair of key `name` is.
    pub fn position(&self, name: &str) -> Option<usize> {
        let line = &*self.line;
        let (bytes, wanted) = (line.as_bytes(), name.as_bytes());
        // spans compared as bytes of the line, their length and first byte first (most differ there)
        self.pairs.iter().position(|Pair { key: k, .. }| match *k {
            Text::Span(from, to) => {
                let (from, to) = (from as usize, to as usize);
                to - from == wanted.len() && wanted.first() == bytes.get(from) && bytes[from..to] == *wanted
            }
            _ => k.resolve(line) == name,
        })
    }

    /// `get(name.upper())` for an ASCII `name`, without making the upper-case name.
    pub fn get_upper(&self, name: &str) -> Option<&str> {
        let line = &*self.line;
        let upper =
            |k: &str| k.len() == name.len() && k.bytes().zip(name.bytes()).all(|(a, b)| a == b.to_ascii_uppercase());
        self.pairs.iter().find(|p| upper(p.key.resolve(line))).map(|p| p.value.resolve(line))
    }

    /// The line the pairs point into, and the pairs as they are stored (spans of it, mostly).
    pub(crate) fn raw_parts(&self) -> (&Arc<str>, &[Pair]) {
        (&self.line, &self.pairs)
    }

    /// Whether every key is a safe object key (`_names_are_safe`: not empty, no dot): a key with a name
    /// id is one (the table's names are), the others read from the line as they are stored, eight bytes
    /// at a time.
    pub(crate) fn keys_safe(&self) -> bool {
        let line = self.line.as_bytes();
        self.pairs.iter().filter(|p| p.id == 0).all(|Pair { key: k, .. }| {
            let key = match *k {
                Text::Span(from, to) => &line[from as usize..to as usize],
                _ => k.resolve(&self.line).as_bytes(),
            };
            !key.is_empty() && !has_dot(key)
        })
    }

    /// The key of the `i`th pair.
    #[inline]
    pub(crate) fn key_at(&self, i: usize) -> &str {
        self.pairs[i].key.resolve(&self.line)
    }

    /// The pairs as (name id, key) with each value resolved only when asked for (a loop looking for a
    /// few names).
    pub(crate) fn iter_lazy<'a>(&'a self) -> impl Iterator<Item = (NameId, &'a str, impl Fn() -> &'a str)> {
        let line = &*self.line;
        self.pairs.iter().map(move |p| (p.id, p.key.resolve(line), move || p.value.resolve(line)))
    }

    /// The pairs as (name id, key, value).
    pub(crate) fn iter_ids(&self) -> impl Iterator<Item = (NameId, &str, &str)> + Clone {
        let line = &*self.line;
        self.pairs.iter().map(move |p| (p.id, p.key.resolve(line), p.value.resolve(line)))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + Clone {
        let line = &*self.line;
        self.pairs.iter().map(move |p| (p.key.resolve(line), p.value.resolve(line)))
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// A hash of a field name for open-addressing tables of names: its length and its first and last (up
/// to) eight bytes, multiplied (names differ there: `a0`..`a99`, `new-auid`, `obj_uid`...).
#[inline]
pub(crate) fn key_hash(name: &str) -> usize {
    key_hash_bytes(name.as_bytes())
}

/// [`key_hash`] of a name's bytes.
#[inline]
pub(crate) fn key_hash_bytes(b: &[u8]) -> usize {
    let word = |bytes: &[u8]| {
        let mut w = [0u8; 8];
        w[..bytes.len()].copy_from_slice(bytes);
        u64::from_le_bytes(w)
    };
    let (head, tail) = (word(&b[..b.len().min(8)]), word(&b[b.len().saturating_sub(8)..]));
    let h = (head ^ tail.rotate_left(29) ^ b.len() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h >> 32) as usize
}

/// Whether `text` holds a `.`: a word at a time (the last one overlapping), a short text as one word
/// made of its first and last four bytes, overlapping (most keys), never a byte loop but below four.
#[inline]
fn has_dot(text: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // whether any byte of `w` is a dot (the "has a zero byte" test, exact for whether there is one)
    let dots = |w: u64| {
        let x = w ^ (ONES * u64::from(b'.'));
        x.wrapping_sub(ONES) & !x & HIGH != 0
    };
    let word = |at: usize| u64::from_le_bytes(text[at..at + 8].try_into().expect("8 bytes"));
    let half = |at: usize| u64::from(u32::from_le_bytes(text[at..at + 4].try_into().expect("4 bytes")));
    let n = text.len();
    if n >= 8 {
        let mut at = 0;
        while at + 8 <= n {
            if dots(word(at)) {
                return true;
            }
            at += 8;
        }
        return at < n && dots(word(n - 8));
    }
    if n >= 4 {
        return dots(half(0) | half(n - 4) << 32);
    }
    text.contains(&b'.')
}

/// Why a line is not a record.
pub const ERROR_EMPTY: &str = "empty line";
pub const ERROR_FRAGMENT: &str = "fragment: line does not start with type= or node= (oversize-line continuation?)";
pub const ERROR_NO_HEADER: &str = "no type=... msg=audit(sec.ms:serial)";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// "SYSCALL", or "UNKNOWN[1234]" as written when the sender had no name; "" for error records.
    pub type_name: Cow<'static, str>,
    /// Resolved from the name (or the UNKNOWN[n] number); None if unknown.
    pub type_num: Option<Num>,
    pub node: Option<String>,
    /// Event time: sec * 1e9 + the fraction scaled to ns.
    pub time_ns: Option<Num>,
    pub serial: Option<Num>,
    /// The line as received (invalid UTF-8 as `\xNN`), trailing newline removed.
    pub raw: Arc<str>,
    /// Set when the line could not be parsed; the record is then kept whole.
    pub error: Option<&'static str>,
    /// The line does not start with type=/node=: an oversize-line continuation.
    pub fragment: bool,
    pub fields: Fields,
    /// The ENRICHED section after 0x1d: UPPER-CASE keys, values unquoted.
    pub enriched: Fields,
    /// Later values of repeated keys, in order.
    pub duplicates: Vec<(String, String)>,
    /// The inner `msg='…'` text of user-space records, unquoted.
    pub text: Option<String>,
}

/// Room for [`Record::msg_id_small`]: two 64-bit numbers (20 digits each) and `.mmm:`.
pub const MSG_ID_ROOM: usize = 48;

/// User-space and daemon messages (1100-1299, 2100-2999) are whole events on their own.
pub fn is_user_space_number(num: Option<&Num>) -> bool {
    matches!(num, Some(Num::Small(n)) if (1100..=1299).contains(n) || (2100..=2999).contains(n))
}

impl Record {
    pub fn error_record(raw: &str, error: &'static str, fragment: bool) -> Record {
        Record { raw: raw.into(), error: Some(error), fragment, ..Record::default() }
    }

    pub fn is_user_space(&self) -> bool {
        is_user_space_number(self.type_num.as_ref())
    }

    /// [`Record::msg_id`] written into `out` without an allocation when both numbers fit 64 bits (they
    /// always do but for hostile headers): its length, else None.
    pub fn msg_id_small(&self, out: &mut [u8; MSG_ID_ROOM]) -> Option<usize> {
        let (Some(Num::Small(time)), Some(Num::Small(serial))) = (&self.time_ns, &self.serial) else {
            return None;
        };
        let (Ok(time), Ok(serial)) = (u64::try_from(*time), u64::try_from(*serial)) else { return None };
        let mut digits = itoa::Buffer::new();
        let sec = digits.format(time / 1_000_000_000).as_bytes();
        out[..sec.len()].copy_from_slice(sec);
        let ms = (time % 1_000_000_000 / 1_000_000) as u16;
        let digit = |d: u16| b'0' + (d % 10) as u8;
        let mut n = sec.len();
        out[n..n + 5].copy_from_slice(&[b'.', digit(ms / 100), digit(ms / 10), digit(ms), b':']);
        n += 5;
        let serial = digits.format(serial).as_bytes();
        out[n..n + serial.len()].copy_from_slice(serial);
        Some(n + serial.len())
    }

    /// `sec.mmm:serial` as written in `msg=audit(...)`, the event identity within a node.
    pub fn msg_id(&self) -> Option<String> {
        let (time, serial) = (self.time_ns.as_ref()?, self.serial.as_ref()?);
        let (sec, ns) = time.split_seconds();
        let ms = ns / 1_000_000;
        let mut id = sec;
        id.push('.');
        id.extend([ms / 100, ms / 10 % 10, ms % 10].map(|d| char::from(b'0' + d as u8)));
        id.push(':');
        match serial {
            Num::Small(n) => id.push_str(itoa::Buffer::new().format(*n)),
            Num::Huge(d) => id.push_str(d),
        }
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_are_found_at_every_length_and_place() {
        for n in 0..30 {
            let clean = "k".repeat(n);
            assert!(!has_dot(clean.as_bytes()), "{n}");
            for at in 0..n {
                let mut text = clean.clone().into_bytes();
                text[at] = b'.';
                assert!(has_dot(&text), "{n} {at}");
                text[at] = b'.' ^ 0x80;
                assert!(!has_dot(&text), "{n} {at}");
            }
        }
    }

    #[test]
    fn msg_ids_written_on_the_stack_are_msg_id() {
        let huge = Num::Huge(format!("1{}", "0".repeat(30)).into());
        let cases = [
            (Some(Num::Small(1_700_000_000_123_000_000)), Some(Num::Small(42))),
            (Some(Num::Small(0)), Some(Num::Small(0))),
            (Some(Num::Small(1_005_000_000)), Some(Num::Small(u128::from(u64::MAX)))),
            (Some(Num::Small(u128::from(u64::MAX))), Some(Num::Small(7))),
            (Some(Num::Small(u128::from(u64::MAX) + 1)), Some(Num::Small(7))),
            (Some(huge.clone()), Some(Num::Small(1))),
            (Some(Num::Small(1)), Some(huge)),
            (None, Some(Num::Small(1))),
        ];
        for (time_ns, serial) in cases {
            let record = Record { time_ns, serial, ..Record::default() };
            let mut out = [0u8; MSG_ID_ROOM];
            let small = record.msg_id_small(&mut out).map(|n| String::from_utf8(out[..n].to_vec()).unwrap());
            match small {
                Some(id) => assert_eq!(Some(id), record.msg_id()),
                None => {
                    assert!(!matches!((&record.time_ns, &record.serial), (Some(Num::Small(t)), Some(Num::Small(s)))
                        if *t <= u128::from(u64::MAX) && *s <= u128::from(u64::MAX)))
                }
            }
        }
    }
}
