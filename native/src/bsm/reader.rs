//! Reading primitives over one record's bytes. Every read is bounds-checked and fails with
//! [`TokenError::Truncated`], so a token can never read past its own record (the record walk hands
//! each token decoder the record's slice only, as the Python decoder does).

use super::addr;

/// Why a token could not be decoded (the Python decoder's `_Truncated` / `_Bad`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// The token needs more bytes than its record holds.
    Truncated,
    /// A field holds a value the layout does not allow (e.g. address type 7).
    Bad(String),
}

pub type TResult<T> = Result<T, TokenError>;

/// Fails unless `b[p..p + n]` exists (Python's `struct.unpack_from` of a whole layout).
#[inline]
pub fn need(b: &[u8], p: usize, n: usize) -> TResult<()> {
    match p.checked_add(n) {
        Some(e) if e <= b.len() => Ok(()),
        _ => Err(TokenError::Truncated),
    }
}

#[inline]
pub fn u8_at(b: &[u8], p: usize) -> TResult<u8> {
    b.get(p).copied().ok_or(TokenError::Truncated)
}

#[inline]
pub fn be16(b: &[u8], p: usize) -> TResult<u16> {
    need(b, p, 2)?;
    Ok(u16::from_be_bytes([b[p], b[p + 1]]))
}

#[inline]
pub fn be32(b: &[u8], p: usize) -> TResult<u32> {
    need(b, p, 4)?;
    Ok(u32::from_be_bytes([b[p], b[p + 1], b[p + 2], b[p + 3]]))
}

#[inline]
pub fn be64(b: &[u8], p: usize) -> TResult<u64> {
    need(b, p, 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[p..p + 8]);
    Ok(u64::from_be_bytes(a))
}

/// Text the way the Python decoder makes it: UTF-8 with invalid bytes replaced by U+FFFD (one per
/// maximal invalid subsequence, as Python's `errors="replace"`).
#[inline]
pub fn text(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

/// Up to (not including) the first NUL.
#[inline]
pub fn until_nul(raw: &[u8]) -> &[u8] {
    match raw.iter().position(|&c| c == 0) {
        Some(z) => &raw[..z],
        None => raw,
    }
}

/// u16 length (counting the NUL) + bytes, cut at the first NUL. Returns the text and the offset after.
pub fn str16(b: &[u8], p: usize) -> TResult<(String, usize)> {
    let n = usize::from(be16(b, p)?);
    let e = p + 2 + n;
    if e > b.len() {
        return Err(TokenError::Truncated);
    }
    Ok((text(until_nul(&b[p + 2..e])), e))
}

/// `count` NUL-terminated strings from `p`; keeps at most `keep` of them (the rest are still walked).
/// Returns the kept strings and the offset just past the count-th NUL.
pub fn cstrs(b: &[u8], p: usize, count: usize, keep: usize) -> TResult<(Vec<String>, usize)> {
    if count == 0 {
        return Ok((Vec::new(), p));
    }
    let mut out = Vec::with_capacity(count.min(keep).min(1024));
    let mut q = p;
    for i in 0..count {
        let rest = b.get(q..).ok_or(TokenError::Truncated)?;
        let z = rest.iter().position(|&c| c == 0).ok_or(TokenError::Truncated)?;
        if i < keep {
            out.push(text(&rest[..z]));
        }
        q += z + 1;
    }
    Ok((out, q))
}

/// A network-order address of type 4 or 16 as text (the truncation check comes first, as in Python).
pub fn address(b: &[u8], p: usize, atype: u64) -> TResult<(String, usize)> {
    let e = (p as u64).saturating_add(atype);
    if e > b.len() as u64 {
        return Err(TokenError::Truncated);
    }
    let e = e as usize;
    match atype {
        4 => Ok((addr::ip4(&b[p..e]), e)),
        16 => Ok((addr::ip6(&b[p..e]), e)),
        _ => Err(TokenError::Bad(format!("address type {atype} (expected 4 or 16)"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn str16_cuts_at_nul_and_checks_length() {
        assert_eq!(str16(b"\x00\x04ab\x00c", 0), Ok(("ab".to_string(), 6)));
        assert_eq!(str16(b"\x00\x05ab\x00c", 0), Err(TokenError::Truncated));
        assert_eq!(str16(b"\x00", 0), Err(TokenError::Truncated));
        assert_eq!(str16(b"\x00\x00", 0), Ok((String::new(), 2)));
        assert_eq!(str16(b"\x00\x02\xff\x00", 0), Ok(("\u{fffd}".to_string(), 4)));
    }

    #[test]
    fn cstrs_walks_all_keeps_some() {
        let b = b"a\0bc\0\0x";
        assert_eq!(cstrs(b, 0, 3, 10), Ok((vec!["a".into(), "bc".into(), String::new()], 6)));
        assert_eq!(cstrs(b, 0, 3, 1), Ok((vec!["a".into()], 6)));
        assert_eq!(cstrs(b, 0, 4, 10), Err(TokenError::Truncated));
        assert_eq!(cstrs(b, 9, 0, 10), Ok((vec![], 9)));
        assert_eq!(cstrs(b, 9, 1, 10), Err(TokenError::Truncated));
    }

    #[test]
    fn address_types() {
        assert_eq!(address(&[1, 2, 3, 4], 0, 4), Ok(("1.2.3.4".to_string(), 4)));
        assert_eq!(address(&[1, 2, 3, 4], 0, 7), Err(TokenError::Truncated));
        assert_eq!(address(&[1, 2, 3, 4], 0, 3), Err(TokenError::Bad("address type 3 (expected 4 or 16)".into())));
        assert_eq!(address(&[1, 2, 3, 4], 0, u64::MAX), Err(TokenError::Truncated));
    }

    #[test]
    fn lossy_like_python() {
        // truncated 3-byte sequence, lone continuation, surrogate encoding: one U+FFFD per maximal subpart
        assert_eq!(text(b"a\xe2\x82b"), "a\u{fffd}b");
        assert_eq!(text(b"\x80\x80"), "\u{fffd}\u{fffd}");
        assert_eq!(text(b"\xed\xa0\x80"), "\u{fffd}\u{fffd}\u{fffd}");
    }
}
