//! Header numbers (time in ns, serial, `UNKNOWN[n]` type numbers): Python ints parsed from runs of
//! digits, so unbounded. Almost all fit a u128; the rest keep their digits, which is enough to
//! compare them, print them, take them modulo 2^32 and refuse them in JSON as orjson does.

use std::fmt;

use crate::json::{INTEGER_RANGE, JsonError, JsonWriter};

/// A non-negative integer, normalized so that equal numbers are equal values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Num {
    Small(u128),
    /// Beyond u128: its decimal digits, without leading zeros.
    Huge(Box<str>),
}

impl Num {
    /// From ASCII decimal digits (any count, leading zeros allowed).
    pub fn from_digits(digits: &str) -> Num {
        let trimmed = digits.trim_start_matches('0');
        if trimmed.len() <= 38 {
            return Num::Small(trimmed.parse().unwrap_or(0));
        }
        match trimmed.parse::<u128>() {
            Ok(v) => Num::Small(v),
            Err(_) => Num::Huge(trimmed.into()),
        }
    }

    /// The concatenated ASCII digit runs as one number (`int(a + b)` without building `a + b`).
    pub fn from_digit_parts(parts: &[&str]) -> Num {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len <= 19 {
            // times in ns and serials: u64 arithmetic
            let mut v = 0u64;
            for part in parts {
                for b in part.bytes() {
                    v = v * 10 + u64::from(b - b'0');
                }
            }
            return Num::Small(u128::from(v));
        }
        if len <= 38 {
            let v = parts.iter().flat_map(|p| p.bytes()).fold(0u128, |acc, b| acc * 10 + u128::from(b - b'0'));
            return Num::Small(v);
        }
        Num::from_digits(&parts.concat())
    }

    /// `self * 10^zeros`
    pub fn scaled(self, zeros: u32) -> Num {
        match self {
            Num::Small(v) => match 10u128.checked_pow(zeros).and_then(|m| v.checked_mul(m)) {
                Some(v) => Num::Small(v),
                None => Num::Huge(format!("{v}{}", "0".repeat(zeros as usize)).into()),
            },
            Num::Huge(d) => Num::Huge(format!("{d}{}", "0".repeat(zeros as usize)).into()),
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Num::Small(v) => u64::try_from(*v).ok(),
            Num::Huge(_) => None,
        }
    }

    /// `float(n)`, correctly rounded; infinite where Python raises OverflowError.
    pub fn to_f64(&self) -> f64 {
        match self {
            Num::Small(v) => *v as f64,
            Num::Huge(d) => d.parse().unwrap_or(f64::INFINITY),
        }
    }

    /// `n % 2**32`
    pub fn low32(&self) -> u32 {
        match self {
            Num::Small(v) => *v as u32,
            Num::Huge(d) => d.bytes().fold(0u64, |acc, b| (acc * 10 + u64::from(b - b'0')) % (1 << 32)) as u32,
        }
    }

    /// `divmod(n, 10**9)`: the seconds as text and the nanoseconds.
    pub fn split_seconds(&self) -> (String, u32) {
        match self {
            Num::Small(v) => {
                let mut sec = String::with_capacity(24);
                sec.push_str(itoa::Buffer::new().format(v / 1_000_000_000));
                (sec, (v % 1_000_000_000) as u32)
            }
            Num::Huge(d) => {
                let (sec, ns) = d.split_at(d.len() - 9);
                (sec.to_owned(), ns.parse().unwrap_or(0))
            }
        }
    }

    /// The number in JSON; an error beyond 64 bits, as orjson.
    pub fn write_json(&self, w: &mut JsonWriter) -> Result<(), JsonError> {
        match self {
            Num::Small(v) => w.u128(*v),
            Num::Huge(d) if crate::json::big_integers_allowed() => {
                w.buf.extend_from_slice(d.as_bytes());
                Ok(())
            }
            Num::Huge(_) => Err(INTEGER_RANGE),
        }
    }
}

impl Num {
    /// The number in JSON, exactly whatever its size ([`JsonWriter::exact_u128`]).
    pub fn write_exact(&self, w: &mut JsonWriter) {
        match self {
            Num::Small(v) => w.exact_u128(*v),
            Num::Huge(d) => w.buf.extend_from_slice(d.as_bytes()),
        }
    }
}

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Num::Small(v) => write!(f, "{v}"),
            Num::Huge(d) => f.write_str(d),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_normalize_and_scale() {
        assert_eq!(Num::from_digits("007"), Num::Small(7));
        assert_eq!(Num::from_digits(""), Num::Small(0));
        let big = "1".repeat(45);
        assert_eq!(Num::from_digits(&format!("000{big}")), Num::Huge(big.clone().into()));
        assert_eq!(Num::from_digits("1700000000123").scaled(6), Num::Small(1_700_000_000_123_000_000));
        assert_eq!(Num::Small(u128::MAX).scaled(1).to_string(), format!("{}0", u128::MAX));
        // 10^40 is a multiple of 2^32
        assert_eq!(Num::from_digits(&format!("1{}5", "0".repeat(39))).low32(), 5);
        assert_eq!(Num::Small(1_700_000_000_123_000_000).split_seconds(), ("1700000000".into(), 123_000_000));
        assert_eq!(Num::Huge(format!("{big}123456789").into()).split_seconds(), (big, 123_456_789));
        assert_eq!(Num::Small(u128::from(u64::MAX) + 1).as_u64(), None);
    }
}
