//! The few Python `str`/`int` semantics the Python decoder relies on, so the port gives the same
//! results on any input: what `str.isspace()` (and `re`'s `\s`) and `str.isdecimal()` (`\d`) accept,
//! `bytes.decode("utf-8", "backslashreplace")`, and `int(text, base)` with its whitespace, sign,
//! prefix, underscore and 4300-digit rules.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `str.isspace()`: Unicode White_Space plus the ASCII separators U+001C-U+001F (so the ENRICHED
/// separator 0x1d is whitespace to Python's `\s`, `strip()` and `split()`).
pub fn is_space(c: char) -> bool {
    matches!(
        c,
        '\t'..='\r'
            | '\u{1c}'..='\u{1f}'
            | ' '
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

/// Byte length of the whitespace character starting at byte `i` of valid UTF-8 `s`, 0 if none.
#[inline]
pub fn space_len(s: &[u8], i: usize) -> usize {
    let b = s[i];
    if b < 0x80 {
        return usize::from(matches!(b, b'\t'..=b'\r' | 0x1c..=0x1f | b' '));
    }
    match b {
        0xC2 if matches!(s[i + 1], 0x85 | 0xA0) => 2,
        0xE1 if s[i + 1] == 0x9A && s[i + 2] == 0x80 => 3,
        0xE2 if (s[i + 1] == 0x80 && matches!(s[i + 2], 0x80..=0x8A | 0xA8 | 0xA9 | 0xAF))
            || (s[i + 1] == 0x81 && s[i + 2] == 0x9F) =>
        {
            3
        }
        0xE3 if s[i + 1] == 0x80 && s[i + 2] == 0x80 => 3,
        _ => 0,
    }
}

/// The position of the first `needle` in `hay` (a memchr: eight bytes at a time).
#[inline]
pub fn find_byte(needle: u8, hay: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let pattern = ONES * u64::from(needle);
    let mut words = hay.chunks_exact(8);
    let mut at = 0;
    for word in words.by_ref() {
        let x = u64::from_le_bytes(word.try_into().expect("8 bytes")) ^ pattern;
        let zero = x.wrapping_sub(ONES) & !x & HIGH;
        if zero != 0 {
            return Some(at + (zero.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    words.remainder().iter().position(|&c| c == needle).map(|i| at + i)
}

/// `s.strip()` is empty.
pub fn is_blank(s: &str) -> bool {
    s.chars().all(is_space)
}

/// `s.split()`: runs of whitespace separate, empty parts dropped.
pub fn split_whitespace(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_space).filter(|p| !p.is_empty())
}

/// The zero of every run of ten Unicode decimal digits (category Nd) of Python 3.11's Unicode 14.0
/// (`[c for c in range(0x110000) if chr(c).isdecimal() and int(chr(c)) == 0]`).
static DECIMAL_ZEROS: [u32; 66] = [
    0x30, 0x660, 0x6f0, 0x7c0, 0x966, 0x9e6, 0xa66, 0xae6, 0xb66, 0xbe6, 0xc66, 0xce6, 0xd66, 0xde6, 0xe50, 0xed0,
    0xf20, 0x1040, 0x1090, 0x17e0, 0x1810, 0x1946, 0x19d0, 0x1a80, 0x1a90, 0x1b50, 0x1bb0, 0x1c40, 0x1c50, 0xa620,
    0xa8d0, 0xa900, 0xa9d0, 0xa9f0, 0xaa50, 0xabf0, 0xff10, 0x104a0, 0x10d30, 0x11066, 0x110f0, 0x11136, 0x111d0,
    0x112f0, 0x11450, 0x114d0, 0x11650, 0x116c0, 0x11730, 0x118e0, 0x11950, 0x11c50, 0x11d50, 0x11da0, 0x16a60,
    0x16ac0, 0x16b50, 0x1d7ce, 0x1d7d8, 0x1d7e2, 0x1d7ec, 0x1d7f6, 0x1e140, 0x1e2f0, 0x1e950, 0x1fbf0,
];

/// The value of a decimal digit as `str.isdecimal()` / `re`'s `\d` / `int()` see it.
#[inline]
pub fn decimal_value(c: char) -> Option<u32> {
    if c.is_ascii_digit() {
        return Some(c as u32 - u32::from(b'0'));
    }
    let cp = c as u32;
    if cp < 0x660 {
        return None;
    }
    let i = DECIMAL_ZEROS.partition_point(|&z| z <= cp);
    let d = cp - DECIMAL_ZEROS[i - 1];
    (d < 10).then_some(d)
}

/// Characters `str.isdigit()` accepts beyond the decimals (Unicode Numeric_Type=Digit: superscripts,
/// circled digits, ...), as CPython 3.11's Unicode database has them.
const DIGIT_RANGES: [(u32, u32); 20] = [
    (0xB2, 0xB3),
    (0xB9, 0xB9),
    (0x1369, 0x1371),
    (0x19DA, 0x19DA),
    (0x2070, 0x2070),
    (0x2074, 0x2079),
    (0x2080, 0x2089),
    (0x2460, 0x2468),
    (0x2474, 0x247C),
    (0x2488, 0x2490),
    (0x24EA, 0x24EA),
    (0x24F5, 0x24FD),
    (0x24FF, 0x24FF),
    (0x2776, 0x277E),
    (0x2780, 0x2788),
    (0x278A, 0x2792),
    (0x10A40, 0x10A43),
    (0x10E60, 0x10E68),
    (0x11052, 0x1105A),
    (0x1F100, 0x1F10A),
];

/// `c.isdigit()`
pub fn is_digit(c: char) -> bool {
    decimal_value(c).is_some() || DIGIT_RANGES.iter().any(|&(a, b)| (a..=b).contains(&(c as u32)))
}

/// `s.isdecimal()`
pub fn is_decimal(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| decimal_value(c).is_some())
}

/// A run of decimal digits as ASCII digits (what `int()` reads them as).
pub fn ascii_digits(s: &str) -> Cow<'_, str> {
    if s.is_ascii() {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.chars().map(|c| char::from(b'0' + decimal_value(c).unwrap_or(0) as u8)).collect())
    }
}

/// `re`'s `\w` for a `str` pattern. ASCII is exact; beyond it Rust's alphanumeric, which differs from
/// Python's `isalnum()` only on combining marks that Unicode calls alphabetic.
pub fn is_word(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// `bytes.decode("utf-8", "backslashreplace")`: valid UTF-8 as is, every other byte as `\xNN`.
pub fn decode_lossy(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(bytes.len() + 16);
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            write!(out, "\\x{b:02x}").unwrap();
        }
    }
    Cow::Owned(out)
}

/// What `int()` refuses beyond (`sys.get_int_max_str_digits()`, for bases that are not powers of 2).
pub const MAX_STR_DIGITS: usize = 4300;

/// A Python integer as far as the decoder uses one: its value (saturated beyond the i128 range, which
/// is far beyond what JSON can hold anyway) and its low 64 bits in two's complement (for `&` masks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PyInt {
    pub value: i128,
    pub low: u64,
}

impl PyInt {
    pub fn small(v: i64) -> PyInt {
        PyInt { value: i128::from(v), low: v as u64 }
    }

    /// The value as an i64, when it is one.
    pub fn as_i64(&self) -> Option<i64> {
        i64::try_from(self.value).ok()
    }
}

/// `int(s, base)` for base 8, 10 or 16; `None` where Python raises ValueError (including more than
/// 4300 digits in base 10). Also returns the digits as written (ASCII, lowercase, no prefix, no
/// underscores) with the sign, for `f"{n:x}"`-style output in the same base.
pub fn py_int_digits(s: &str, base: u32) -> Option<(bool, PyInt, String)> {
    // _PyUnicode_TransformDecimalAndSpaceToASCII: non-ASCII whitespace -> ' ', decimals -> ASCII
    let mut t: Vec<u8> = Vec::with_capacity(s.len());
    for c in s.chars() {
        if (c as u32) < 127 {
            t.push(c as u8);
        } else if is_space(c) {
            t.push(b' ');
        } else {
            t.push(b'0' + decimal_value(c)? as u8);
        }
    }
    let is_ws = |b: u8| matches!(b, b' ' | b'\t'..=b'\r');
    let mut i = 0;
    let mut end = t.len();
    while i < end && is_ws(t[i]) {
        i += 1;
    }
    while end > i && is_ws(t[end - 1]) {
        end -= 1;
    }
    let t = &t[i..end];
    let mut i = 0;
    let neg = match t.first() {
        Some(b'-') => {
            i = 1;
            true
        }
        Some(b'+') => {
            i = 1;
            false
        }
        _ => false,
    };
    let prefix = match base {
        16 => Some(b'x'),
        8 => Some(b'o'),
        _ => None,
    };
    let mut after_prefix = false;
    if let Some(p) = prefix {
        if t.len() >= i + 2 && t[i] == b'0' && t[i + 1].to_ascii_lowercase() == p {
            i += 2;
            after_prefix = true;
        }
    }
    let mut digits = String::with_capacity(t.len() - i);
    let mut prev_underscore = false;
    let mut value: i128 = 0;
    let mut low: u64 = 0;
    let mut saturated = false;
    for (k, &b) in t[i..].iter().enumerate() {
        if b == b'_' {
            // one underscore between digits, or right after a base prefix
            if prev_underscore || (k == 0 && !after_prefix) {
                return None;
            }
            prev_underscore = true;
            continue;
        }
        let d = (b as char).to_digit(base)?;
        prev_underscore = false;
        digits.push((b as char).to_ascii_lowercase());
        low = low.wrapping_mul(u64::from(base)).wrapping_add(u64::from(d));
        if !saturated {
            match value.checked_mul(i128::from(base)).and_then(|v| v.checked_add(i128::from(d))) {
                Some(v) => value = v,
                None => saturated = true,
            }
        }
    }
    if digits.is_empty() || prev_underscore {
        return None;
    }
    if base == 10 && digits.len() > MAX_STR_DIGITS {
        return None;
    }
    if saturated {
        value = i128::MAX;
    }
    if neg {
        value = -value;
        low = low.wrapping_neg();
    }
    Some((neg, PyInt { value, low }, digits))
}

/// `int(s, base)`, `None` where Python raises ValueError.
pub fn py_int(s: &str, base: u32) -> Option<PyInt> {
    if s.is_empty() {
        return None; // a field that is not there (no need for the general parser's buffers)
    }
    // the common cases: plain digits, maybe negative (read as they are checked: fewer than 19 cannot
    // overflow); plain hex
    let digits = s.strip_prefix('-').unwrap_or(s);
    if base == 10 && !digits.is_empty() && digits.len() < 19 {
        let mut v = 0i64;
        let plain = digits.bytes().all(|b| {
            let digit = b.is_ascii_digit();
            if digit {
                v = v * 10 + i64::from(b - b'0');
            }
            digit
        });
        if plain {
            return Some(PyInt::small(if digits.len() < s.len() { -v } else { v }));
        }
    }
    // plain octal (fewer than 21 digits) and hex (fewer than 16): within an i64, read as checked
    let mut v = 0i64;
    let mut read = |digit: Option<u32>| match digit {
        Some(d) => {
            v = v * i64::from(base) + i64::from(d);
            true
        }
        None => false,
    };
    if base == 8 && s.len() < 21 && s.bytes().all(|b| read(matches!(b, b'0'..=b'7').then(|| u32::from(b - b'0')))) {
        return Some(PyInt::small(v));
    }
    if base == 16 && s.len() < 16 && s.bytes().all(|b| read(char::from(b).to_digit(16))) {
        return Some(PyInt::small(v));
    }
    py_int_digits(s, base).map(|(_, n, _)| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_is_pythons() {
        for c in ['\t', '\n', '\u{b}', '\u{1d}', ' ', '\u{85}', '\u{a0}', '\u{2000}', '\u{3000}'] {
            assert!(is_space(c), "{c:?}");
            let mut b = [0; 4];
            let s = c.encode_utf8(&mut b);
            assert_eq!(space_len(s.as_bytes(), 0), s.len(), "{c:?}");
        }
        for c in ['a', '\u{0}', '\u{7f}', '\u{200b}', '\u{feff}', 'é'] {
            assert!(!is_space(c));
            let mut b = [0; 4];
            assert_eq!(space_len(c.encode_utf8(&mut b).as_bytes(), 0), 0);
        }
        assert!(is_blank(" \u{1d}\t") && !is_blank(" x"));
    }

    #[test]
    fn find_byte_is_memchr() {
        let hay = b"0123456789abcdef\nxyz\n";
        for start in 0..hay.len() {
            assert_eq!(find_byte(b'\n', &hay[start..]), hay[start..].iter().position(|&c| c == b'\n'));
        }
        assert_eq!(find_byte(0x80, &[0x7f, 0x00, 0x80, 0x81, 0, 0, 0, 0, 0x80]), Some(2));
        assert_eq!(find_byte(b'x', b""), None);
    }

    #[test]
    fn decimals_are_pythons() {
        assert_eq!(decimal_value('7'), Some(7));
        assert_eq!(decimal_value('\u{663}'), Some(3));
        assert_eq!(decimal_value('\u{1d7d9}'), Some(1));
        assert_eq!(decimal_value('\u{b2}'), None); // superscript two: a digit, not a decimal
        assert!(is_decimal("12\u{663}") && !is_decimal("") && !is_decimal("1a"));
        assert_eq!(ascii_digits("1\u{663}"), "13");
    }

    #[test]
    fn lossy_decoding_escapes_bytes() {
        assert_eq!(decode_lossy(b"a\xffb\xe2\x82"), "a\\xffb\\xe2\\x82");
        assert_eq!(decode_lossy("é".as_bytes()), "é");
        assert_eq!(decode_lossy(b"\xed\xa0\x80"), "\\xed\\xa0\\x80"); // a surrogate is not UTF-8
    }

    #[test]
    fn plain_decimals_read_as_the_general_parser_reads_them() {
        for n in 1..=24 {
            for digits in
                ["1".repeat(n), "9".repeat(n), format!("{}7", "0".repeat(n - 1)), format!("4{}", "0".repeat(n - 1))]
            {
                for text in [digits.clone(), format!("-{digits}")] {
                    let general = py_int_digits(&text, 10).map(|(_, n, _)| n);
                    assert_eq!(py_int(&text, 10), general, "{text}");
                }
            }
        }
        for text in ["0", "7", "0100755", "777777777777777777777", "77777777777777777777", "8", "-1"] {
            assert_eq!(py_int(text, 8), py_int_digits(text, 8).map(|(_, n, _)| n), "{text}");
        }
        for text in ["c000003e", "C000003E", "fffffffffffffff", "ffffffffffffffff", "0", "g", "-1f", "0x1f"] {
            assert_eq!(py_int(text, 16), py_int_digits(text, 16).map(|(_, n, _)| n), "{text}");
        }
        assert_eq!(py_int("-0", 10), Some(PyInt::small(0)));
        assert_eq!(py_int("12a", 10), None);
    }

    #[test]
    fn int_parses_like_python() {
        let v = |s: &str, base| py_int(s, base).map(|n| n.value);
        assert_eq!(v("42", 10), Some(42));
        assert_eq!(v(" -42\n", 10), Some(-42));
        assert_eq!(v("+1_000", 10), Some(1000));
        assert_eq!(v("1__0", 10), None);
        assert_eq!(v("_1", 10), None);
        assert_eq!(v("1_", 10), None);
        assert_eq!(v("0x_1f", 16), Some(31));
        assert_eq!(v("0X1F", 16), Some(31));
        assert_eq!(v("1f", 16), Some(31));
        assert_eq!(v("0o17", 8), Some(15));
        assert_eq!(v("0x1f", 10), None);
        assert_eq!(v("\u{663}", 10), Some(3));
        assert_eq!(v("\u{1c}5", 10), None); // int() strips ASCII whitespace only after the transform
        assert_eq!(v("\u{a0}5", 10), Some(5));
        assert_eq!(v("", 10), None);
        assert_eq!(v("-", 10), None);
        assert_eq!(v(&"9".repeat(4300), 10), Some(i128::MAX));
        assert_eq!(v(&"9".repeat(4301), 10), None);
        assert_eq!(py_int("-1", 8).unwrap().low, u64::MAX);
        assert_eq!(py_int_digits("-0x00Ab", 16).map(|(n, _, d)| (n, d)), Some((true, "00ab".into())));
    }
}
