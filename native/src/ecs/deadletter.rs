//! Documents for records that failed to decode or map: the raw
//! input is kept byte for byte (base64), searchable by source and time, as `event.kind:
//! pipeline_error`.

use super::common::{Parties, PyError, base64, iso_ns};
use super::value::{Obj, Value};

/// `put_raw`: the raw input in the encoding every document that keeps raw bytes uses.
pub fn put_raw(doc: &mut Obj, raw: &[u8], kind: &'static str) {
    doc.put("auditrecv.raw_base64", base64(raw));
    doc.put("auditrecv.raw_kind", kind);
}

/// Whether a document holds an integer orjson refuses (beyond 64 bits): it cannot be written as a
/// bulk line (the callers hand it back as JSON with those integers, for the sink to refuse).
pub fn holds_unencodable(doc: &Obj) -> bool {
    fn value(v: &Value) -> bool {
        match v {
            Value::Big(n) => *n > u128::from(u64::MAX),
            Value::NegativeBig(_) => true,
            Value::List(items) => items.iter().any(value),
            Value::Obj(o) => holds_unencodable(o),
            _ => false,
        }
    }
    doc.entries.iter().any(|(_, v)| value(v))
}

/// `dead_letter_doc(raw, source, error, "bsm", ...)`: the record's bytes, as hex in `event.original`.
pub fn dead_letter_bsm(raw: &[u8], parties: &Parties, error: &str, received_ns: u64) -> Result<Obj, PyError> {
    let original = crate::json::hex_string(raw);
    dead_letter(raw, original, ("bsm", "bsm", "bsm.audit"), parties, error, received_ns)
}

/// `dead_letter_doc(raw, source, error, "linux", ...)`: the raw lines as text and their bytes.
pub fn dead_letter_linux(raw: &[u8], parties: &Parties, error: &str, received_ns: u64) -> Result<Obj, PyError> {
    dead_letter_linux_lines(raw, raw, parties, error, received_ns)
}

/// [`dead_letter_linux`] of lines read as text (`text`: invalid UTF-8 written as `\xNN`, as the decoder
/// reads a line) whose exact bytes are `raw` (kept in `auditrecv.raw_base64`, so that the byte 0xff and
/// the four characters `\xff` stay apart).
pub fn dead_letter_linux_lines(
    text: &[u8],
    raw: &[u8],
    parties: &Parties,
    error: &str,
    received_ns: u64,
) -> Result<Obj, PyError> {
    let original = String::from_utf8_lossy(text).into_owned();
    dead_letter(raw, original, ("linux", "auditd", "linux.audit"), parties, error, received_ns)
}

/// What both kinds share; `(kind, module, dataset)` name the input as `dead_letter_doc` does.
fn dead_letter(
    raw: &[u8],
    original: String,
    (kind, module, dataset): (&'static str, &'static str, &'static str),
    parties: &Parties,
    error: &str,
    received_ns: u64,
) -> Result<Obj, PyError> {
    let now = iso_ns(u128::from(received_ns))?;
    let mut doc = Obj::with_capacity(12);
    doc.push("@timestamp", now.clone());
    doc.put("event.kind", "pipeline_error");
    doc.put("event.category", Value::str_list(["host"]));
    doc.put("event.type", Value::str_list(["error"]));
    doc.put("event.outcome", "unknown");
    doc.put("event.module", module);
    doc.put("event.dataset", dataset);
    doc.put("event.created", now);
    doc.put("event.reason", error.to_owned());
    doc.put("error.type", "decode_error");
    doc.put("error.message", error.to_owned());
    doc.put("event.original", original);
    put_raw(&mut doc, raw, kind);
    parties.source_fields(&mut doc);
    parties.host_fields(&mut doc, None, &[]);
    parties.observer_fields(&mut doc);
    doc.add_unique("tags", [Some(Value::from("decode_error")), Some(Value::from("dead_letter"))]);
    let peer = if parties.source.peer.is_empty() { "unknown" } else { &parties.source.peer };
    doc.put("message", format!("undecodable {kind} record from {peer}: {error}"));
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::common::{Observer, Source};

    #[test]
    fn a_dead_letter_keeps_the_bytes_and_says_who_sent_them() {
        let source = Source { transport: "audit_remote".into(), peer: "".into(), ..Source::default() };
        let parties = Parties::new(source, Observer::default());
        let doc = dead_letter_bsm(b"\x00\xff", &parties, "no BSM header", 0).unwrap();
        let json = String::from_utf8(doc.to_json().unwrap()).unwrap();
        assert!(json.starts_with(r#"{"@timestamp":"1970-01-01T00:00:00.000000000Z","event":{"kind":"pipeline_error""#));
        assert!(json.contains(r#""original":"00ff""#) && json.contains(r#""raw_base64":"AP8=","raw_kind":"bsm""#));
        assert!(json.ends_with(r#""message":"undecodable bsm record from unknown: no BSM header"}"#), "{json}");
        // an empty payload keeps no raw_base64 (empty values are left out), as in Python
        let empty = dead_letter_bsm(b"", &parties, "no data", 0).unwrap();
        assert_eq!(empty.get_path("auditrecv.raw_base64"), None);
        assert_eq!(empty.get_path("auditrecv.raw_kind").and_then(Value::as_str), Some("bsm"));
    }
}
