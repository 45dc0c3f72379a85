//! Caps on one document (config `[limits]`; docs/schema.md, "Limits"). Almost every record is far
//! too small to reach any limit, and [`within_limits_fast`] proves that from the raw size and the token
//! count alone; the rest are checked as `limit_document` checks them ([`within_limits`], on the
//! document's JSON); documents over a limit are cut by [`cut_document`] (`_truncate`), byte-equal to
//! what the Python `limit_document` made of them (`tests/schema/limits_goldens`).

use super::deadletter::put_raw;
use super::parse::parse;
use super::value::{Obj, Value};

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

/// Room kept for the truncation fields themselves (`_RESERVE`).
const RESERVE: i64 = 8 * 1024;
/// `auditrecv.truncation.fields` is a list too (`_MAX_NAMED_FIELDS`).
const MAX_NAMED_FIELDS: usize = 64;
/// However hard a document is squeezed, it keeps objects of this many keys, lists of this many items
/// (token lists: 1), strings of this many characters (`_DICT_FLOOR`, `_LIST_FLOOR`, `_STRING_FLOOR`).
const DICT_FLOOR: u64 = 256;
const LIST_FLOOR: u64 = 16;
const STRING_FLOOR: u64 = 256;
/// Each round divides the caps by 4 (`_ROUNDS`).
const ROUNDS: usize = 12;
const RAW_FIELD: &str = "auditrecv.raw_base64";

/// The caps of one squeezing round and the dotted names cut so far, in order (`_Caps`).
struct Caps {
    tokens: u64,
    items: u64,
    keys: u64,
    chars: u64,
    fields: Vec<String>,
}

impl Caps {
    fn new(l: &DocLimits) -> Self {
        Caps {
            tokens: l.max_tokens,
            items: l.max_array_items,
            keys: l.max_array_items,
            chars: l.max_string_chars,
            fields: Vec::new(),
        }
    }

    fn tighten(&mut self) {
        self.tokens = (self.tokens / 4).max(1);
        self.items = (self.items / 4).max(self.items.min(LIST_FLOOR));
        self.keys = (self.keys / 4).max(self.keys.min(DICT_FLOOR));
        self.chars = (self.chars / 4).max(self.chars.min(STRING_FLOOR));
    }

    fn cut(&mut self, path: &str) {
        let name = if path.is_empty() { "(document)" } else { path };
        if !self.fields.iter().any(|f| f == name) {
            self.fields.push(name.to_owned());
        }
    }
}

fn chars(s: &str) -> u64 {
    s.chars().count() as u64
}

/// `s[:n]` in characters.
fn prefix(s: &str, n: u64) -> &str {
    match s.char_indices().nth(usize::try_from(n).unwrap_or(usize::MAX)) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

fn limit(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn sub_path(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

fn nested(v: &Value) -> bool {
    matches!(v, Value::Str(_) | Value::Obj(_) | Value::List(_))
}

/// `_cap`: every list, object and string of `value` within `caps`, cut in place.
fn cap(value: &mut Value, path: &str, caps: &mut Caps) {
    match value {
        Value::Str(s) if chars(s) > caps.chars => {
            caps.cut(path);
            *s = prefix(s, caps.chars).to_owned().into();
        }
        Value::Obj(o) => {
            if o.len() as u64 > caps.keys {
                caps.cut(path);
                o.entries.truncate(limit(caps.keys));
            }
            for (key, v) in &mut o.entries {
                if nested(v) {
                    let sub = sub_path(path, key);
                    if !FULL_COPY_FIELDS.contains(&sub.as_str()) {
                        cap(v, &sub, caps);
                    }
                }
            }
        }
        Value::List(items) => {
            let n = if TOKEN_FIELDS.contains(&path) { caps.tokens } else { caps.items };
            if items.len() as u64 > n {
                caps.cut(path);
                items.truncate(limit(n));
            }
            for v in items.iter_mut().filter(|v| nested(v)) {
                cap(v, path, caps);
            }
        }
        _ => {}
    }
}

/// `_pop(doc, dotted)`: removes the value at a dotted path, if its parents are objects.
fn pop(doc: &mut Obj, dotted: &str) -> Option<Value> {
    let (parents, leaf) = dotted.rsplit_once('.').map_or(("", dotted), |(p, l)| (p, l));
    let mut node = doc;
    for part in parents.split('.').filter(|p| !p.is_empty()) {
        node = match node.get_mut(part) {
            Some(Value::Obj(o)) => o,
            _ => return None,
        };
    }
    node.remove(leaf)
}

/// `_skeleton`: when, who sent it, what it was.
fn skeleton(doc: &Obj) -> Obj {
    fn scalars(section: Option<&Value>) -> Obj {
        let mut out = Obj::new();
        let Some(Value::Obj(section)) = section else { return out };
        for (k, v) in section.entries.iter().take(limit(DICT_FLOOR)) {
            match v {
                Value::Str(s) => out.push(k.clone(), prefix(s, STRING_FLOOR).to_owned()),
                Value::Bool(_)
                | Value::Int(_)
                | Value::UInt(_)
                | Value::Big(_)
                | Value::NegativeBig(_)
                | Value::Raw(_) => out.push(k.clone(), v.clone()),
                _ => {}
            }
        }
        out
    }
    let mut out = Obj::new();
    if let Some(Value::Str(ts)) = doc.get("@timestamp") {
        out.push("@timestamp", prefix(ts, 64).to_owned());
    }
    for name in ["event", "host", "observer", "labels"] {
        let section = scalars(doc.get(name));
        if !section.is_empty() {
            out.push(name, section);
        }
    }
    if let Some(Value::Obj(auditrecv)) = doc.get("auditrecv") {
        let mut section = Obj::new();
        section.push("source", scalars(auditrecv.get("source")));
        out.push("auditrecv", section);
    }
    if let Some(Value::Str(m)) = doc.get("message") {
        out.push("message", prefix(m, 1024).to_owned());
    }
    out
}

/// `limit_document(doc, raw, kind, limits)` of a document over the limits, given as the JSON it was
/// written to (`json`, whose length is the size `limit_document` measured): the truncated document that
/// says so, `raw` (the input it was built from) kept whole in `auditrecv.raw_base64` if it fits. None
/// if the JSON cannot be read back or the cut document cannot be written (never for what the mappers
/// write).
pub fn cut_document(json: &[u8], raw: &[u8], kind: &'static str, limits: &DocLimits) -> Option<Obj> {
    let Value::Obj(mut doc) = parse(json)? else { return None };
    let size = json.len() as u64;
    pop(&mut doc, RAW_FIELD); // a dead letter's raw copy: rewritten below, within the budget
    let raw_b64_len = 4 * ((raw.len() as i64 + 2) / 3);
    let max = i64::try_from(limits.max_document_bytes).unwrap_or(i64::MAX);
    // the raw input has priority, up to 3/4 of the document; the mapped fields get the rest
    let budget = (max - raw_b64_len - RESERVE).max(max.div_euclid(4) - RESERVE);
    let mut caps = Caps::new(limits);
    let mut indexed = 0i64;
    let mut fits = false;
    for _ in 0..ROUNDS {
        let mut whole = Value::Obj(doc);
        cap(&mut whole, "", &mut caps);
        let Value::Obj(capped) = whole else { unreachable!("an object stays an object") };
        doc = capped;
        indexed = doc.to_json().ok()?.len() as i64;
        if indexed <= budget {
            fits = true;
            break;
        }
        let mut dropped = false;
        for name in FULL_COPY_FIELDS {
            if pop(&mut doc, name).is_some() {
                caps.cut(name);
                dropped = true;
            }
        }
        if !dropped {
            caps.tighten();
        }
    }
    if !fits {
        caps.fields.retain(|f| f != "(document)");
        caps.fields.insert(0, "(document)".to_owned()); // first: the list of names is capped
        doc = skeleton(&doc);
        indexed = doc.to_json().ok()?.len() as i64;
    }
    let keep = (raw.len() as i64).min(((max - indexed - RESERVE).div_euclid(4) * 3).max(0));
    let keep = usize::try_from(keep).unwrap_or(0);
    if keep < raw.len() {
        caps.cut(RAW_FIELD);
    }
    put_raw(&mut doc, &raw[..keep], kind);
    doc.put("auditrecv.truncated", true);
    doc.put("auditrecv.truncation.document_bytes", size);
    doc.put("auditrecv.truncation.raw_bytes", raw.len() as u64);
    let names = caps.fields.iter().take(MAX_NAMED_FIELDS).map(|n| prefix(n, 100).to_owned());
    doc.put("auditrecv.truncation.fields", Value::str_list(names));
    doc.add_unique("tags", [Some(Value::from("truncated"))]);
    Some(doc)
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
    fn cut_as_limit_document_cuts() {
        let l = DocLimits { max_document_bytes: 64 * 1024, max_tokens: 3, max_array_items: 5, max_string_chars: 8 };
        let doc = br#"{"message":"0123456789","bsm":{"tokens":[{"id":1},{"id":2},{"id":3},{"id":4}],"texts":["a","b","c","d","e","f"],"tokens_full":"0123456789"},"tags":["x"]}"#;
        assert!(!within_limits(doc, &l));
        let cut = cut_document(doc, b"raw", "bsm", &l).unwrap();
        let json = String::from_utf8(cut.to_json().unwrap()).unwrap();
        assert_eq!(
            json,
            concat!(
                r#"{"message":"01234567","bsm":{"tokens":[{"id":1},{"id":2},{"id":3}],"texts":["a","b","c","d","e"],"#,
                r#""tokens_full":"0123456789"},"tags":["x","truncated"],"auditrecv":{"raw_base64":"cmF3","raw_kind":"bsm","#,
                r#""truncated":true,"truncation":{"document_bytes":153,"raw_bytes":3,"#,
                r#""fields":["message","bsm.tokens","bsm.texts"]}}}"#
            )
        );
        assert_eq!(cut_document(b"[1]", b"", "bsm", &l), None);
    }

    #[test]
    fn a_document_too_large_for_any_squeeze_becomes_its_skeleton() {
        let l = DocLimits { max_document_bytes: 16 * 1024, max_tokens: 3, max_array_items: 5, max_string_chars: 8 };
        let doc = br#"{"@timestamp":"t","event":{"kind":"event","n":1,"l":[1]},"auditrecv":{"source":{"peer":"p"},"x":1},"bsm":{}}"#;
        let cut = cut_document(doc, &[0u8; 30_000], "bsm", &l).unwrap();
        let json = String::from_utf8(cut.to_json().unwrap()).unwrap();
        assert!(
            json.starts_with(r#"{"@timestamp":"t","event":{"kind":"event","n":1},"auditrecv":{"source":{"peer":"p"},"#)
        );
        assert!(json.ends_with(r#""fields":["(document)","auditrecv.raw_base64"]}},"tags":["truncated"]}"#));
    }

    #[test]
    fn the_fast_bound() {
        let l = DocLimits::default();
        assert!(within_limits_fast(10_000, 1000, &l));
        assert!(!within_limits_fast(10_001, 1, &l));
        assert!(!within_limits_fast(10, 1001, &l));
    }
}
