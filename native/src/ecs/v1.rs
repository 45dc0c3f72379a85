//! The `auditrecv-v1` shape of a BSM record: what
//! the original Erlang auditrecv indexed, with its defects fixed (repeated tokens kept as lists,
//! unknown tokens in `other_tokens`).

use super::bsm::{MapError, note_text};
use super::common::iso_ns;
use super::value::{Obj, Text, Value};
use crate::bsm::json::write_token;
use crate::bsm::record::Record;
use crate::bsm::token::{TermId, Token};
use crate::json::JsonWriter;

/// `_signed`: the two's-complement view of an unsigned id of `bits` bits (-1 = unset).
fn signed(value: u64, bits: u32) -> i64 {
    let v = i128::from(value);
    let half = 1i128 << (bits - 1);
    let full = 1i128 << bits;
    (if v >= half && v < full { v - full } else { v }) as i64
}

/// A v1 object under construction: `_add` turns a repeated key into a list (the markers of the
/// Python code are kept here as a set of keys instead of `__<key>_is_list` entries).
#[derive(Default)]
struct Repeats {
    obj: Obj,
    lists: Vec<Text>,
}

impl Repeats {
    fn add(&mut self, key: impl Into<Text>, value: Value) {
        let key = key.into();
        let listed = self.lists.contains(&key);
        match self.obj.get_mut(&key) {
            None => self.obj.push(key, value),
            Some(Value::List(items)) if listed => items.push(value),
            Some(current) => {
                let first = std::mem::replace(current, Value::Null);
                *current = Value::List(vec![first, value]);
                self.lists.push(key);
            }
        }
    }

    fn set(&mut self, key: &'static str, value: impl Into<Value>) {
        self.obj.set(key, value);
    }
}

fn terminal(tid: &TermId) -> Obj {
    let mut out = Obj::with_capacity(3);
    if tid.host == "0.0.0.0" || tid.host == "::" {
        out.push("dev", tid.port);
        return out;
    }
    out.push("ip", tid.host.clone());
    match tid.illumos.as_ref().map(|i| (i.rport, i.lport)) {
        Some((Some(r), Some(l))) => {
            out.push("local_port", l);
            out.push("remote_port", r);
        }
        _ => out.push("port_id", format!("{:X}", tid.port)),
    }
    out
}

fn subject(tok: &Token) -> Obj {
    let Token::Subject { audit_uid, uid, gid, ruid, rgid, pid, sid, tid, .. } = tok else {
        return Obj::new();
    };
    let mut o = Obj::with_capacity(8);
    o.push("audit_id", signed(u64::from(*audit_uid), 32));
    o.push("uid", signed(u64::from(*uid), 32));
    o.push("gid", signed(u64::from(*gid), 32));
    o.push("ruid", signed(u64::from(*ruid), 32));
    o.push("rgid", signed(u64::from(*rgid), 32));
    o.push("pid", *pid);
    o.push("session_id", *sid);
    o.push("terminal", terminal(tid));
    o
}

fn event_name(rec: &Record<'_>) -> String {
    match rec.event.map(|e| e.name) {
        Some(name) if name.starts_with("AUE_") => name[4..].to_lowercase(),
        _ => rec.event_id.map_or_else(|| "None".into(), |e| e.to_string()),
    }
}

/// Python's `format(n, "X")` of a signed integer.
fn upper_hex(n: i64) -> String {
    if n < 0 { format!("-{:X}", n.unsigned_abs()) } else { format!("{n:X}") }
}

/// `bsm_to_compat_v1(record, source, received_ns=...)` (no zone alias: the pipeline passes none).
pub fn bsm_to_v1(rec: &Record<'_>, peer: &str, received_ns: u64) -> Result<Obj, MapError> {
    // a time beyond what @timestamp (date_nanos) holds: the arrival time (batch::keep_out_of_range_time)
    let stamp = iso_ns(rec.time_ns.filter(|t| *t <= super::linux::LATEST_DATE_NS).unwrap_or(u128::from(received_ns)))?;
    let mut doc = Repeats::default();
    doc.obj.push("@timestamp", stamp.clone());
    doc.obj.push("time", stamp);
    doc.obj.push("version", rec.version.map_or(Value::Null, |v| Value::UInt(u64::from(v))));
    doc.obj.push("event", event_name(rec));
    doc.obj.push("from", peer.to_owned());
    let mut args = Repeats::default();
    let mut privs = Repeats::default();
    let mut other: Vec<Value> = Vec::new();
    for tok in &rec.tokens {
        match tok {
            Token::Str { name: "path", text, .. } => doc.add("path", text.clone().into()),
            Token::StrList { name: "exec_args", items, .. } => {
                doc.set("exec_args", Value::str_list(items.iter().cloned()))
            }
            Token::StrList { name: "exec_env", items, .. } => {
                let mut env = Obj::new();
                for entry in items {
                    let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
                    let key = key.replace('.', "_");
                    env.set(if key.is_empty() { "_".to_owned() } else { key }, value.to_owned());
                }
                doc.set("exec_env", env);
            }
            Token::Argument { arg_num, value, desc, bits, note, .. } => {
                let v = match note_text(note) {
                    Some(text) if desc == "signal" || desc == "op" => Value::from(text.to_lowercase()),
                    Some(text) => Value::from(text),
                    None => Value::Int(signed(*value, u32::from(*bits))),
                };
                let key = if desc.is_empty() { format!("arg{arg_num}") } else { desc.replace('.', "_") };
                args.add(key, v);
            }
            Token::Return { errval, retval, error, .. } => {
                doc.set("return", *retval);
                doc.set(
                    "errno",
                    match error {
                        Some(e) if !e.is_empty() => e.to_lowercase(),
                        _ => errval.to_string(),
                    },
                );
            }
            Token::Attribute { mode, uid, gid, fsid, nodeid, device, .. } => {
                let mut a = Obj::with_capacity(6);
                a.push("mode_octal", format!("{mode:o}"));
                a.push("uid", signed(u64::from(*uid), 32));
                a.push("gid", signed(u64::from(*gid), 32));
                a.push("fsid", i64::from(*fsid));
                a.push("inode_hex", upper_hex(*nodeid));
                a.push("devid", device.to_string());
                doc.add("attributes", a.into());
            }
            Token::Subject { process: false, .. } => doc.set("subject", subject(tok)),
            Token::Subject { process: true, .. } => doc.add("process", subject(tok).into()),
            Token::UsePrivilege { result, privs: p, .. } => {
                let mut u = Obj::with_capacity(2);
                u.push("privs", p.clone());
                u.push("success", u64::from(*result));
                doc.add("used_privs", u.into());
            }
            Token::UseAuthorization { authorization } => doc.add("used_auth", authorization.clone().into()),
            Token::Str { name: "fmri", text, .. } => doc.add("fmri", text.clone().into()),
            Token::Str { name: "text", text, .. } => doc.add("text", text.clone().into()),
            Token::Privilege { set_type, privs: p } => privs.add(set_type.clone(), p.clone().into()),
            Token::Str { name: "zone", text, .. } => doc.set("zonename", text.clone()),
            _ => {
                let mut w = JsonWriter::with_capacity(64);
                write_token(&mut w, tok)?;
                other.push(Value::Raw(w.into_bytes()));
            }
        }
    }
    if !args.obj.is_empty() {
        doc.obj.push("args", args.obj);
    }
    if !privs.obj.is_empty() {
        doc.obj.push("privs", privs.obj);
    }
    if !other.is_empty() {
        doc.obj.push("other_tokens", other);
    }
    if !rec.errors.is_empty() {
        doc.obj.push("decode_errors", Value::str_list(rec.errors.iter().cloned()));
    }
    Ok(doc.obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_ids_and_hex() {
        assert_eq!(signed(4_294_967_295, 32), -1);
        assert_eq!(signed(5, 32), 5);
        assert_eq!(signed(u64::MAX, 64), -1);
        assert_eq!(upper_hex(-26), "-1A");
        assert_eq!(upper_hex(255), "FF");
    }

    #[test]
    fn repeated_keys_become_lists() {
        let mut r = Repeats::default();
        r.add("path", "a".into());
        r.add("x", "1".into());
        r.add("path", "b".into());
        r.add("path", "c".into());
        assert_eq!(String::from_utf8(r.obj.to_json().unwrap()).unwrap(), r#"{"path":["a","b","c"],"x":"1"}"#);
    }
}
