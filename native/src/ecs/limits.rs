//! Caps on one document (config `[limits]`, `auditrecv/schema/limits.py`). Almost every record is far
//! too small to reach any limit, and [`within_limits_fast`] proves that from the raw size and the token
//! count alone; the rest are checked as `limit_document` checks them ([`within_limits`], on the
//! document's JSON). Documents over a limit are not cut here: the batch entry points hand them back,
//! and the caller builds them the Python way, so cut documents stay exactly what they are today.

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

/// Lists of flattened objects, capped at `max_tokens` rather than `max_array_items` (`TOKEN_FIELDS`).
const TOKEN_FIELDS: [&str; 5] = ["bsm.tokens", "auditd.records", "auditd.paths", "other_tokens", "records"];
/// Stored uncut copies, never counted against `max_string_chars` (`FULL_COPY_FIELDS`).
const FULL_COPY_FIELDS: [&str; 2] = ["bsm.tokens_full", "auditd.records_full"];

/// `limit_document`'s test: the serialized size within `max_document_bytes` and no list, object or
/// string over its cap (`_exceeds`), on the document's JSON as [`crate::json::JsonWriter`] writes it.
pub fn within_limits(json: &[u8], limits: &DocLimits) -> bool {
    if json.len() as u64 > limits.max_document_bytes {
        return false;
    }
    let mut walk = Walk { json, at: 0, limits };
    !walk.exceeds("")
}

struct Walk<'j> {
    json: &'j [u8],
    at: usize,
    limits: &'j DocLimits,
}

impl Walk<'_> {
    /// The string at `at` (its opening quote): (characters, decoded text if `keep`), `at` moved past it.
    fn string(&mut self, keep: bool) -> (u64, String) {
        let j = self.json;
        let mut i = self.at + 1;
        let mut chars = 0u64;
        let mut text = Vec::new();
        while j[i] != b'"' {
            let step = match j[i] {
                b'\\' if j[i + 1] == b'u' => 6,
                b'\\' => 2,
                c if c < 0x80 => 1,
                c if c >= 0xF0 => 4,
                c if c >= 0xE0 => 3,
                _ => 2,
            };
            if keep {
                match (j[i], j.get(i + 1)) {
                    (b'\\', Some(b'"')) => text.push(b'"'),
                    (b'\\', Some(b'\\')) => text.push(b'\\'),
                    _ => text.extend_from_slice(&j[i..i + step]),
                }
            }
            chars += 1;
            i += step;
        }
        self.at = i + 1;
        (chars, String::from_utf8_lossy(&text).into_owned())
    }

    /// Skips a scalar (number, true, false, null).
    fn scalar(&mut self) {
        while self.at < self.json.len() && !matches!(self.json[self.at], b',' | b']' | b'}') {
            self.at += 1;
        }
    }

    /// `_exceeds(value, path, limits)` for the value at `at`, which it moves past.
    fn exceeds(&mut self, path: &str) -> bool {
        let l = self.limits;
        match self.json[self.at] {
            b'"' => {
                let (chars, _) = self.string(false);
                chars > l.max_string_chars && !FULL_COPY_FIELDS.contains(&path)
            }
            b'{' => {
                self.at += 1;
                let mut keys = 0u64;
                while self.json[self.at] != b'}' {
                    if self.json[self.at] == b',' {
                        self.at += 1;
                    }
                    let (_, key) = self.string(true);
                    self.at += 1; // the colon
                    keys += 1;
                    let sub = if path.is_empty() { key } else { format!("{path}.{key}") };
                    if keys > l.max_array_items || self.exceeds(&sub) {
                        return true;
                    }
                }
                self.at += 1;
                false
            }
            b'[' => {
                self.at += 1;
                let cap = if TOKEN_FIELDS.contains(&path) { l.max_tokens } else { l.max_array_items };
                let mut items = 0u64;
                while self.json[self.at] != b']' {
                    if self.json[self.at] == b',' {
                        self.at += 1;
                    }
                    items += 1;
                    if items > cap || self.exceeds(path) {
                        return true;
                    }
                }
                self.at += 1;
                false
            }
            _ => {
                self.scalar();
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slow_check_as_limit_document() {
        let l = DocLimits { max_document_bytes: 200, max_tokens: 2, max_array_items: 3, max_string_chars: 4 };
        assert!(within_limits(br#"{"a":{"b":[1,2,3],"c":"\u0000\"ab"},"bsm":{"tokens":[{},{}]}}"#, &l));
        assert!(!within_limits(br#"{"a":[1,2,3,4]}"#, &l)); // a list over max_array_items
        assert!(!within_limits(br#"{"bsm":{"tokens":[1,2,3]}}"#, &l)); // a token list over max_tokens
        assert!(within_limits(br#"{"other":[1,2,3]}"#, &l));
        assert!(!within_limits(br#"{"a":"abcde"}"#, &l)); // five characters
        assert!(within_limits(r#"{"a":"éééé"}"#.as_bytes(), &l));
        assert!(within_limits(br#"{"bsm":{"tokens_full":"abcdefgh"}}"#, &l)); // the uncut copy
        assert!(!within_limits(br#"{"a":1,"b":2,"c":3,"d":4}"#, &l)); // an object over max_array_items keys
        assert!(!within_limits(&[b' '; 201], &l));
        // strings inside a list are judged at the list's path; object keys extend it
        assert!(!within_limits(br#"{"bsm":{"tokens":[{"args":["a","b","c","d"]}]}}"#, &l));
    }

    #[test]
    fn the_fast_bound() {
        let l = DocLimits::default();
        assert!(within_limits_fast(10_000, 1000, &l));
        assert!(!within_limits_fast(10_001, 1, &l));
        assert!(!within_limits_fast(10, 1001, &l));
    }
}
