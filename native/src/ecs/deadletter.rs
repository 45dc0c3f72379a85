//! Documents for records that failed to decode or map (`auditrecv/schema/deadletter.py`): the raw
//! input is kept byte for byte (base64), searchable by source and time, as `event.kind:
//! pipeline_error`.

use super::common::{Parties, PyError, base64, iso_ns};
use super::value::{Obj, Value};

/// `put_raw`: the raw input in the encoding every document that keeps raw bytes uses.
pub fn put_raw(doc: &mut Obj, raw: &[u8], kind: &'static str) {
    doc.put("auditrecv.raw_base64", base64(raw));
    doc.put("auditrecv.raw_kind", kind);
}

/// `dead_letter_doc(raw, source, error, kind, observer=..., received_ns=...)` for kind "bsm" (the
/// Linux one keeps the text, not the bytes: added with the Linux mapper).
pub fn dead_letter_bsm(raw: &[u8], parties: &Parties, error: &str, received_ns: u64) -> Result<Obj, PyError> {
    let now = iso_ns(u128::from(received_ns))?;
    let mut doc = Obj::with_capacity(12);
    doc.push("@timestamp", now.clone());
    doc.put("event.kind", "pipeline_error");
    doc.put("event.category", Value::str_list(["host"]));
    doc.put("event.type", Value::str_list(["error"]));
    doc.put("event.outcome", "unknown");
    doc.put("event.module", "bsm");
    doc.put("event.dataset", "bsm.audit");
    doc.put("event.created", now);
    doc.put("event.reason", error.to_owned());
    doc.put("error.type", "decode_error");
    doc.put("error.message", error.to_owned());
    doc.put("event.original", crate::json::hex_string(raw));
    put_raw(&mut doc, raw, "bsm");
    parties.source_fields(&mut doc);
    parties.host_fields(&mut doc, None, &[]);
    parties.observer_fields(&mut doc);
    doc.add_unique("tags", [Some(Value::from("decode_error")), Some(Value::from("dead_letter"))]);
    let peer = if parties.source.peer.is_empty() { "unknown" } else { &parties.source.peer };
    doc.put("message", format!("undecodable bsm record from {peer}: {error}"));
    Ok(doc)
}
