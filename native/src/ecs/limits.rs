//! Caps on one document (config `[limits]`, `auditrecv/schema/limits.py`). Almost every record is far
//! too small to reach any limit, and [`within_limits_fast`] proves that from the raw size and the token
//! count alone. The rest (a record the decoder's own caps cut, or too large for the proof) are not
//! built here: the batch entry points hand them back, and the caller builds them the Python way
//! (`limit_document` truncation), so the cut documents stay exactly what they are today.

/// `auditrecv.config.Limits` (the fields the document caps use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocLimits {
    pub max_document_bytes: u64,
    pub max_tokens: u64,
    pub max_array_items: u64,
    pub max_string_chars: u64,
}

impl Default for DocLimits {
    fn default() -> Self {
        DocLimits {
            max_document_bytes: 4 * 1024 * 1024,
            max_tokens: 1000,
            max_array_items: 10_000,
            max_string_chars: 256 * 1024,
        }
    }
}

pub const STRING_EXPANSION: u64 = 4;
pub const STRING_SLACK: u64 = 4096;
pub const DOC_EXPANSION: u64 = 32;
pub const DOC_SLACK: u64 = 64 * 1024;

/// `within_limits_fast(raw_len, token_count, limits)`.
pub fn within_limits_fast(raw_len: u64, token_count: u64, limits: &DocLimits) -> bool {
    token_count <= limits.max_tokens
        && raw_len <= limits.max_array_items
        && raw_len * STRING_EXPANSION + STRING_SLACK <= limits.max_string_chars
        && raw_len * DOC_EXPANSION + DOC_SLACK <= limits.max_document_bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_bound() {
        let l = DocLimits::default();
        assert!(within_limits_fast(10_000, 1000, &l));
        assert!(!within_limits_fast(10_001, 1, &l));
        assert!(!within_limits_fast(10, 1001, &l));
    }
}
