//! A JSON writer that produces exactly the bytes `orjson.dumps` produces for the same values
//! (compact, keys in insertion order, UTF-8 as is, orjson's escapes), so native output can be compared
//! with the Python decoder's byte for byte.
//!
//! orjson escapes `"`, `\` and the control characters U+0000-U+001F only: `\b \t \n \f \r` by name,
//! the rest as `\u00XX` with lowercase hex. Integers outside [-2^63, 2^64-1] are an error there
//! ("Integer exceeds 64-bit range"), and are here too ([`JsonError`]).

use std::fmt;

/// A value orjson refuses to serialize.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError(pub &'static str);

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for JsonError {}

pub const INTEGER_RANGE: JsonError = JsonError("Integer exceeds 64-bit range");

thread_local! {
    static BIG_INTEGERS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with integers beyond 64 bits written as their digits instead of refused: the JSON of a
/// document orjson cannot write, for Python's `json` to read exactly (the sink then refuses it as it
/// refuses the Python mappers' document).
pub fn allowing_big_integers<T>(f: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            BIG_INTEGERS.with(|b| b.set(self.0));
        }
    }
    let _reset = Reset(BIG_INTEGERS.with(|b| b.replace(true)));
    f()
}

/// Whether integers beyond 64 bits are written (inside [`allowing_big_integers`]).
pub fn big_integers_allowed() -> bool {
    BIG_INTEGERS.with(std::cell::Cell::get)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The longest text [`JsonWriter::str`] copies as fixed-size words.
const SHORT: usize = 16;

/// Bytes that need an escape: controls, `"` and `\` (the tests' reference).
#[cfg(test)]
const fn escape_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
}
#[cfg(test)]
static NEEDS_ESCAPE: [bool; 256] = escape_table();

/// The position of the first byte needing an escape, eight bytes at a time: the string's last
/// (or only, padded) bytes are one more word, never a byte-by-byte loop.
#[inline]
pub(crate) fn first_escape(bytes: &[u8]) -> Option<usize> {
    let n = bytes.len();
    let mut at = 0;
    while at + 8 <= n {
        let mask = escape_mask(word_at(bytes, at));
        if mask != 0 {
            return Some(at + first_marked(mask));
        }
        at += 8;
    }
    if at == n {
        return None;
    }
    if n >= 8 {
        // the last eight bytes, overlapping ones found clean above (which mark nothing: a false mark
        // only ever follows a true one)
        let mask = escape_mask(word_at(bytes, n - 8));
        return (mask != 0).then(|| n - 8 + first_marked(mask));
    }
    // fewer than eight bytes (most values and keys): the first and last half-words, overlapping, in one
    // word padded with spaces (which need no escape), instead of a byte-by-byte loop
    const SPACES: u64 = u64::from_le_bytes([b' '; 8]);
    let (word, half) = if n >= 4 {
        let first = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
        let last = u32::from_le_bytes(bytes[n - 4..].try_into().expect("4 bytes"));
        (u64::from(first) | u64::from(last) << 32, 4)
    } else if n >= 2 {
        let first = u16::from_le_bytes([bytes[0], bytes[1]]);
        let last = u16::from_le_bytes([bytes[n - 2], bytes[n - 1]]);
        (u64::from(first) | u64::from(last) << 16 | SPACES << 32, 2)
    } else {
        (u64::from(bytes[0]) | SPACES << 8, 1)
    };
    let mask = escape_mask(word);
    // a mark in the second half-word is at its offset from the string's last `half` bytes (the first
    // half-word, found clean, marks nothing then)
    (mask != 0).then(|| match first_marked(mask) {
        i if i < half => i,
        i => n - half + (i - half),
    })
}

#[inline]
fn word_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// The byte of the lowest mark of an [`escape_mask`].
#[inline]
fn first_marked(mask: u64) -> usize {
    (mask.trailing_zeros() / 8) as usize
}

/// Whether any of eight bytes is a control, `"` or `\\`.
#[cfg(test)]
fn word_needs_escape(w: u64) -> bool {
    escape_mask(w) != 0
}

/// The high bit of each of eight bytes that is a control, `"` or `\\` (the classic "has a byte less
/// than n" and "has a zero byte" tests): exact up to the first marked byte; bytes after a marked one
/// may be marked too.
#[inline]
fn escape_mask(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    let q = w ^ (ONES * u64::from(b'"'));
    let quote = q.wrapping_sub(ONES) & !q & HIGH;
    let b = w ^ (ONES * u64::from(b'\\'));
    let backslash = b.wrapping_sub(ONES) & !b & HIGH;
    control | quote | backslash
}

/// Appends JSON to a byte buffer. Separators are implicit: a key or array item gets a comma unless it
/// directly follows the opening bracket.
#[derive(Debug, Default)]
pub struct JsonWriter {
    pub buf: Vec<u8>,
    /// The longest text `str` and `key` wrote, in bytes (see [`JsonWriter::longest_text`]).
    longest: usize,
}

impl JsonWriter {
    pub fn with_capacity(n: usize) -> Self {
        JsonWriter { buf: Vec::with_capacity(n), longest: 0 }
    }

    /// The longest text written as a string or key, in bytes: where every string in `buf` was written by
    /// this writer (or copied from what it wrote), no string in it has more characters than this, so a
    /// search for long strings can be skipped.
    pub fn longest_text(&self) -> usize {
        self.longest
    }

    /// A text of `len` bytes counted in [`JsonWriter::longest_text`] as if written by
    /// [`JsonWriter::str`] (for texts its user copies into `buf` itself).
    #[inline]
    pub fn note_text(&mut self, len: usize) {
        self.longest = self.longest.max(len);
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Emptied for reuse, its room kept.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.longest = 0;
    }

    #[inline]
    fn sep(&mut self) {
        match self.buf.last() {
            Some(b'{') | Some(b'[') | None => {}
            _ => self.buf.push(b','),
        }
    }

    #[inline]
    pub fn begin_obj(&mut self) {
        self.buf.push(b'{');
    }

    #[inline]
    pub fn end_obj(&mut self) {
        self.buf.push(b'}');
    }

    #[inline]
    pub fn begin_arr(&mut self) {
        self.buf.push(b'[');
    }

    #[inline]
    pub fn end_arr(&mut self) {
        self.buf.push(b']');
    }

    /// An object key (plain ASCII identifiers only: never escaped).
    #[inline]
    pub fn key(&mut self, k: &str) {
        self.longest = self.longest.max(k.len());
        self.sep();
        if k.len() <= SHORT {
            // as a short string, its colon written in the same block
            self.quoted_short::<true>(k.as_bytes());
            return;
        }
        self.buf.push(b'"');
        self.buf.extend_from_slice(k.as_bytes());
        self.buf.extend_from_slice(b"\":");
    }

    /// An object key of any text (escaped like a string value).
    #[inline]
    pub fn key_str(&mut self, k: &str) {
        self.sep();
        self.str(k);
        self.buf.push(b':');
    }

    /// A wide signed integer: an error outside [-2^63, 2^64-1], as orjson.
    pub fn i128(&mut self, v: i128) -> Result<(), JsonError> {
        if let Ok(v) = i64::try_from(v) {
            self.i64(v);
            Ok(())
        } else if v < 0 && big_integers_allowed() {
            self.buf.extend_from_slice(v.to_string().as_bytes());
            Ok(())
        } else {
            self.u128(u128::try_from(v).map_err(|_| INTEGER_RANGE)?)
        }
    }

    /// Comma before an array item (not needed before the first).
    #[inline]
    pub fn item(&mut self) {
        self.sep();
    }

    #[inline]
    pub fn null(&mut self) {
        self.buf.extend_from_slice(b"null");
    }

    #[inline]
    pub fn bool(&mut self, v: bool) {
        self.buf.extend_from_slice(if v { b"true" } else { b"false" });
    }

    #[inline]
    pub fn u64(&mut self, v: u64) {
        let mut b = itoa::Buffer::new();
        self.buf.extend_from_slice(b.format(v).as_bytes());
    }

    #[inline]
    pub fn i64(&mut self, v: i64) {
        let mut b = itoa::Buffer::new();
        self.buf.extend_from_slice(b.format(v).as_bytes());
    }

    /// A wide integer: an error when orjson could not write it either.
    pub fn u128(&mut self, v: u128) -> Result<(), JsonError> {
        match u64::try_from(v) {
            Ok(v) => self.u64(v),
            Err(_) if big_integers_allowed() => self.buf.extend_from_slice(v.to_string().as_bytes()),
            Err(_) => return Err(INTEGER_RANGE),
        }
        Ok(())
    }

    /// An integer of any size, written exactly: for output read by people and tools rather than an
    /// engine (`decode --raw`, fields stored but not indexed as numbers), where JSON sets no limit and
    /// Python's `json` reads it back exactly.
    pub fn exact_u128(&mut self, v: u128) {
        match u64::try_from(v) {
            Ok(v) => self.u64(v),
            Err(_) => self.buf.extend_from_slice(v.to_string().as_bytes()),
        }
    }

    /// [`JsonWriter::exact_u128`] for a signed integer.
    pub fn exact_i128(&mut self, v: i128) {
        match i64::try_from(v) {
            Ok(v) => self.i64(v),
            Err(_) => self.buf.extend_from_slice(v.to_string().as_bytes()),
        }
    }

    #[inline]
    pub fn str(&mut self, s: &str) {
        let bytes = s.as_bytes();
        self.longest = self.longest.max(bytes.len());
        match first_escape(bytes) {
            None if bytes.len() <= SHORT => self.quoted_short::<false>(bytes),
            None => {
                self.buf.reserve(bytes.len() + 2);
                self.buf.push(b'"');
                self.buf.extend_from_slice(bytes);
                self.buf.push(b'"');
            }
            Some(first) => self.str_escaped(bytes, first),
        }
    }

    /// Text known to need no escape (the mappers' literals and tables' words, formatted numbers and
    /// times): quoted without looking for escapes, as [`JsonWriter::key`] writes keys.
    #[inline]
    pub fn plain(&mut self, s: &str) {
        debug_assert!(first_escape(s.as_bytes()).is_none(), "{s:?} needs escapes");
        let bytes = s.as_bytes();
        self.longest = self.longest.max(bytes.len());
        if bytes.len() <= SHORT {
            self.quoted_short::<false>(bytes);
            return;
        }
        self.buf.reserve(bytes.len() + 2);
        self.buf.push(b'"');
        self.buf.extend_from_slice(bytes);
        self.buf.push(b'"');
    }

    /// A list of texts known to need no escape ([`JsonWriter::plain`]).
    pub fn plain_list(&mut self, items: &[&str]) {
        self.begin_arr();
        for s in items {
            self.item();
            self.plain(s);
        }
        self.end_arr();
    }

    /// A short text quoted (most keys and values): a quoted block of fixed size goes into the buffer
    /// whole, the text is copied into it as a few fixed-size words, overlapping, and the buffer is cut
    /// to the text's length (a call to memcpy, or a loop over the bytes, costs more for these). The
    /// words are stored straight into the buffer: a block assembled on the stack and then copied would
    /// be read back across the overlapping stores, which the CPU cannot forward (a stall per string).
    ///
    /// `COLON`: a key's colon follows, written in the same block (no second room check for it).
    #[inline]
    fn quoted_short<const COLON: bool>(&mut self, b: &[u8]) {
        let n = b.len().min(SHORT);
        let start = self.buf.len();
        let size = SHORT + 2 + usize::from(COLON);
        self.buf.extend_from_slice(&[b'"'; SHORT + 3][..size]);
        let block = &mut self.buf[start..start + size];
        if n >= 8 {
            block[1..9].copy_from_slice(&b[..8]);
            block[n - 7..n + 1].copy_from_slice(&b[n - 8..n]);
        } else if n >= 4 {
            block[1..5].copy_from_slice(&b[..4]);
            block[n - 3..n + 1].copy_from_slice(&b[n - 4..n]);
        } else if n >= 2 {
            block[1..3].copy_from_slice(&b[..2]);
            block[n - 1..n + 1].copy_from_slice(&b[n - 2..n]);
        } else if n == 1 {
            block[1] = b[0];
        }
        if COLON {
            block[n + 2] = b':';
        }
        // the closing quote is the block's, after the text
        self.buf.truncate(start + n + 2 + usize::from(COLON));
    }

    /// A string with something to escape, the first at `first`.
    fn str_escaped(&mut self, bytes: &[u8], first: usize) {
        self.buf.reserve(bytes.len() + 8);
        self.buf.push(b'"');
        self.buf.extend_from_slice(&bytes[..first]);
        self.escape(bytes[first]);
        let mut rest = &bytes[first + 1..];
        while let Some(i) = first_escape(rest) {
            self.buf.extend_from_slice(&rest[..i]);
            self.escape(rest[i]);
            rest = &rest[i + 1..];
        }
        self.buf.extend_from_slice(rest);
        self.buf.push(b'"');
    }

    #[cold]
    fn escape_control(&mut self, c: u8) {
        self.buf.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(c >> 4) as usize], HEX[(c & 15) as usize]]);
    }

    #[inline]
    fn escape(&mut self, c: u8) {
        match c {
            b'"' => self.buf.extend_from_slice(b"\\\""),
            b'\\' => self.buf.extend_from_slice(b"\\\\"),
            0x08 => self.buf.extend_from_slice(b"\\b"),
            0x09 => self.buf.extend_from_slice(b"\\t"),
            0x0A => self.buf.extend_from_slice(b"\\n"),
            0x0C => self.buf.extend_from_slice(b"\\f"),
            0x0D => self.buf.extend_from_slice(b"\\r"),
            _ => self.escape_control(c),
        }
    }

    pub fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.str(s),
            None => self.null(),
        }
    }

    /// Lowercase hex of bytes, as a JSON string (Python's `bytes.hex()`).
    pub fn hex(&mut self, bytes: &[u8]) {
        self.buf.reserve(bytes.len() * 2 + 2);
        self.buf.push(b'"');
        for &c in bytes {
            self.buf.push(HEX[(c >> 4) as usize]);
            self.buf.push(HEX[(c & 15) as usize]);
        }
        self.buf.push(b'"');
    }

    pub fn str_list<S: AsRef<str>>(&mut self, items: &[S]) {
        self.begin_arr();
        for s in items {
            self.item();
            self.str(s.as_ref());
        }
        self.end_arr();
    }

    pub fn u64_list(&mut self, items: impl IntoIterator<Item = u64>) {
        self.begin_arr();
        for v in items {
            self.item();
            self.u64(v);
        }
        self.end_arr();
    }

    /// orjson.OPT_APPEND_NEWLINE
    pub fn newline(&mut self) {
        self.buf.push(b'\n');
    }
}

/// Decimal text of an integer (itoa: no formatting machinery on the hot path).
pub fn num(v: impl itoa::Integer) -> String {
    itoa::Buffer::new().format(v).to_owned()
}

/// Lower-case hex digits of an integer, as Python's `format(n, "x")`.
pub fn hex_lower(mut v: u64) -> String {
    let mut buf = [0u8; 16];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b"0123456789abcdef"[(v & 15) as usize];
        v >>= 4;
        if v == 0 {
            break;
        }
    }
    String::from_utf8_lossy(&buf[i..]).into_owned()
}

/// Octal digits of an integer, at least `width` of them (Python's `format(n, "0<width>o")`).
pub fn octal(mut v: u64, width: usize) -> String {
    let mut buf = [b'0'; 24];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v & 7) as u8;
        v >>= 3;
        if v == 0 {
            break;
        }
    }
    let start = i.min(buf.len() - width.min(buf.len()));
    String::from_utf8_lossy(&buf[start..]).into_owned()
}

/// Lowercase hex text (for building strings such as UUIDs).
pub fn hex_string(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for &c in bytes {
        s.push(HEX[(c >> 4) as usize] as char);
        s.push(HEX[(c & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn short_texts_are_quoted_whole_at_every_length() {
        // every length up to and past the longest copied as words
        let text = "abcdefghijklmnopqrstuvwxyz0123456789ABé";
        assert!(text.len() > SHORT + 2);
        for end in 0..=text.len() {
            let Some(t) = text.get(..end) else { continue };
            let mut w = JsonWriter::with_capacity(0);
            w.begin_arr();
            w.str(t);
            w.item();
            w.str(t);
            w.end_arr();
            assert_eq!(w.buf, format!("[\"{t}\",\"{t}\"]").as_bytes(), "{end}");
            let mut w = JsonWriter::with_capacity(0);
            w.begin_obj();
            w.key(t);
            w.plain(t);
            w.key(t);
            w.null();
            w.end_obj();
            assert_eq!(w.buf, format!("{{\"{t}\":\"{t}\",\"{t}\":null}}").as_bytes(), "{end}");
        }
    }

    #[test]
    fn plain_texts_are_written_as_str_writes_them() {
        let text = "2026-12-03T13:15:35.123456789Z linux.audit";
        for end in 0..=text.len() {
            let t = &text[..end];
            let (mut plain, mut checked) = (JsonWriter::with_capacity(0), JsonWriter::with_capacity(0));
            plain.plain_list(&[t, "auditd"]);
            checked.str_list(&[t, "auditd"]);
            assert_eq!(plain.buf, checked.buf, "{end}");
            assert_eq!(plain.longest_text(), checked.longest_text(), "{end}");
        }
    }

    #[test]
    fn the_longest_text_written_is_known() {
        let mut w = JsonWriter::with_capacity(0);
        assert_eq!(w.longest_text(), 0);
        w.begin_obj();
        w.key("abc");
        w.str("é\"");
        w.key_str("k\n2345");
        w.end_obj();
        assert_eq!(w.buf, "{\"abc\":\"é\\\"\",\"k\\n2345\":}".as_bytes());
        // bytes of the text, not of its escapes: a bound on the characters of any string in the buffer
        assert_eq!(w.longest_text(), 6);
    }

    #[test]
    fn big_integers_are_refused_unless_allowed() {
        let mut w = JsonWriter::with_capacity(8);
        assert_eq!(w.u128(1 << 64), Err(INTEGER_RANGE));
        assert_eq!(w.i128(-(1 << 64)), Err(INTEGER_RANGE));
        allowing_big_integers(|| {
            w.u128(1 << 64).unwrap();
            w.buf.push(b' ');
            w.i128(-(1 << 64) - 1).unwrap();
        });
        assert_eq!(w.buf, b"18446744073709551616 -18446744073709551617");
        assert!(!big_integers_allowed());
    }

    #[test]
    fn exact_integers_are_written_whatever_their_size() {
        let mut w = JsonWriter::with_capacity(8);
        w.begin_arr();
        for v in [0, u128::from(u64::MAX), 1 << 64, u128::MAX] {
            w.item();
            w.exact_u128(v);
        }
        for v in [i128::MIN, -(1 << 64) - 1, i128::from(i64::MIN), -1] {
            w.item();
            w.exact_i128(v);
        }
        w.end_arr();
        let expected = format!(
            "[0,18446744073709551615,18446744073709551616,{},{},-18446744073709551617,-9223372036854775808,-1]",
            u128::MAX,
            i128::MIN
        );
        assert_eq!(String::from_utf8(w.buf).unwrap(), expected);
    }

    use super::*;

    fn one(f: impl FnOnce(&mut JsonWriter)) -> String {
        let mut w = JsonWriter::default();
        f(&mut w);
        String::from_utf8(w.into_bytes()).unwrap()
    }

    #[test]
    fn escapes_like_orjson() {
        let all: String = (0u8..0x80).map(char::from).collect::<String>() + "\u{2028}é\u{fffd}";
        let expected = concat!(
            r#""\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\b\t\n\u000b\f\r\u000e\u000f"#,
            r#"\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c\u001d\u001e\u001f"#,
            r##" !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~"##,
            "\u{7f}\u{2028}é\u{fffd}\""
        );
        assert_eq!(one(|w| w.str(&all)), expected);
    }

    #[test]
    fn escapes_at_every_position_of_a_word() {
        for special in ['"', '\\', '\n', '\u{1}', '\u{1f}'] {
            for at in 0..20 {
                let mut text: String = "abcdefghijklmnopqrs".into();
                text.insert(at, special);
                text.push('é');
                let expected = format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))
                    .replace('\u{1}', "\\u0001")
                    .replace('\u{1f}', "\\u001f");
                assert_eq!(one(|w| w.str(&text)), expected, "{special:?} at {at}");
            }
        }
        assert!(!word_needs_escape(u64::from_le_bytes(*b" ~\x7f\xff\x80!#[")));
    }

    #[test]
    fn separators_and_numbers() {
        let s = one(|w| {
            w.begin_obj();
            w.key("a");
            w.begin_arr();
            w.end_arr();
            w.key("b");
            w.u64_list([1, u64::MAX]);
            w.key("c");
            w.begin_obj();
            w.end_obj();
            w.key("d");
            w.i64(i64::MIN);
            w.key("e");
            w.hex(&[0, 0xAB]);
            w.end_obj();
        });
        assert_eq!(s, r#"{"a":[],"b":[1,18446744073709551615],"c":{},"d":-9223372036854775808,"e":"00ab"}"#);
    }

    #[test]
    fn word_check_never_misses_a_byte_to_escape() {
        for pos in 0..8 {
            for c in 0..=255u8 {
                let mut word = *b"abcdefgh";
                word[pos] = c;
                let any = word.iter().any(|b| NEEDS_ESCAPE[*b as usize]);
                if any {
                    assert!(word_needs_escape(u64::from_le_bytes(word)), "{word:?}");
                }
            }
        }
        assert!(!word_needs_escape(u64::from_le_bytes(*b"/usr/bin")));
        assert_eq!(one(|w| w.str("0123456789abcdef\"0123456789")), r#""0123456789abcdef\"0123456789""#);
    }

    #[test]
    fn first_escape_is_exact_at_any_length() {
        for len in 0..24 {
            for at in 0..len {
                for special in [b'"', b'\\', 0, 0x1f, b'\n'] {
                    for after in [b'a', b'"', 0x01] {
                        let mut bytes = vec![b'x'; len];
                        bytes[at] = special;
                        if at + 1 < len {
                            bytes[at + 1] = after;
                        }
                        assert_eq!(first_escape(&bytes), Some(at), "{bytes:?}");
                    }
                }
                // and a second one later: the first is found
                let mut two = vec![b'x'; len];
                two[at] = b'"';
                two[len - 1] = b'\\';
                assert_eq!(first_escape(&two), Some(at), "{two:?}");
                let mut clean = vec![0xE2u8; len];
                clean[at] = b'~';
                assert_eq!(first_escape(&clean), None);
            }
            assert_eq!(first_escape(&vec![b' '; len]), None);
        }
    }

    #[test]
    fn integer_range() {
        let mut w = JsonWriter::default();
        assert_eq!(w.u128(u128::from(u64::MAX) + 1), Err(INTEGER_RANGE));
        assert!(w.u128(7).is_ok());
        assert_eq!(w.buf, b"7");
    }
}
