//! A decoded record as the JSON line `auditrecv decode --raw` writes for it: the Python
//! `BsmRecord.to_dict()` serialized by orjson (keys in the same order, the same escapes), so the two
//! decoders can be compared byte for byte.
//!
//! The one addition: a record the caps cut ([`Truncation`]) ends with a `"truncation"` object
//! (`max_tokens`, `tokens_seen`, `max_array_items`, `array_items_dropped`). Records within the caps
//! never have it.

use super::record::{Record, Truncation, modifier_names};
use super::token::{ArbValues, ArgNote, PRINT_NAMES, TermId, Token, UNIT_NAMES};
use crate::json::{JsonError, JsonWriter};

/// The record's JSON line (newline included). `offset` replaces the record's own offset when given
/// (`decode --raw` reports the file position of a record decoded on its own).
pub fn record_json(rec: &Record<'_>, offset: Option<u64>) -> Result<Vec<u8>, JsonError> {
    let mut w = JsonWriter::with_capacity(rec.raw.len() * 3 + 1024);
    write_record(&mut w, rec, offset)?;
    w.newline();
    Ok(w.into_bytes())
}

fn opt_u64(w: &mut JsonWriter, v: Option<u64>) {
    match v {
        Some(v) => w.u64(v),
        None => w.null(),
    }
}

pub fn write_record(w: &mut JsonWriter, rec: &Record<'_>, offset: Option<u64>) -> Result<(), JsonError> {
    w.begin_obj();
    w.key("offset");
    w.u64(offset.unwrap_or(rec.offset));
    w.key("length");
    w.u64(rec.length as u64);
    w.key("raw");
    w.hex(rec.raw);
    w.key("version");
    opt_u64(w, rec.version.map(u64::from));
    w.key("header_id");
    opt_u64(w, rec.header_id.map(u64::from));
    w.key("event_id");
    opt_u64(w, rec.event_id.map(u64::from));
    w.key("event_name");
    w.opt_str(rec.event.map(|e| e.name));
    w.key("event_description");
    w.opt_str(rec.event.map(|e| e.description));
    w.key("event_classes");
    w.str_list(rec.event.map_or(&[][..], |e| e.classes));
    w.key("modifier");
    w.u64(u64::from(rec.modifier));
    w.key("modifier_names");
    w.str_list(&modifier_names(rec.modifier));
    w.key("time_ns");
    match rec.time_ns {
        Some(t) => w.exact_u128(t),
        None => w.null(),
    }
    w.key("host");
    w.opt_str(rec.host.as_deref());
    w.key("dialect");
    w.str(rec.dialect());
    w.key("has_trailer");
    w.bool(rec.has_trailer);
    w.key("tokens");
    w.begin_arr();
    for tok in &rec.tokens {
        w.item();
        write_token(w, tok)?;
    }
    w.end_arr();
    w.key("errors");
    w.str_list(&rec.errors);
    if let Some(t) = &rec.truncation {
        w.key("truncation");
        write_truncation(w, t);
    }
    w.end_obj();
    Ok(())
}

fn write_truncation(w: &mut JsonWriter, t: &Truncation) {
    w.begin_obj();
    w.key("max_tokens");
    w.u64(t.max_tokens as u64);
    w.key("tokens_seen");
    w.u64(t.tokens_seen);
    w.key("max_array_items");
    w.u64(t.max_array_items as u64);
    w.key("array_items_dropped");
    w.u64(t.array_items_dropped);
    w.end_obj();
}

fn u(w: &mut JsonWriter, key: &str, v: impl Into<u64>) {
    w.key(key);
    w.u64(v.into());
}

fn i(w: &mut JsonWriter, key: &str, v: impl Into<i64>) {
    w.key(key);
    w.i64(v.into());
}

fn s(w: &mut JsonWriter, key: &str, v: &str) {
    w.key(key);
    w.str(v);
}

fn octal(w: &mut JsonWriter, key: &str, v: u32) {
    w.key(key);
    w.str(&crate::json::octal(u64::from(v), 1));
}

/// A key whose value may be None: written as null (`to_dict`), or left out (`nulls == false`: the ECS
/// mapper's `_drop_none`).
fn opt_key<T>(w: &mut JsonWriter, key: &str, v: Option<T>, nulls: bool, write: impl FnOnce(&mut JsonWriter, T)) {
    match v {
        Some(v) => {
            w.key(key);
            write(w, v);
        }
        None if nulls => {
            w.key(key);
            w.null();
        }
        None => {}
    }
}

fn write_tid(w: &mut JsonWriter, t: &TermId, nulls: bool) {
    w.begin_obj();
    u(w, "port", t.port);
    u(w, "port_bits", t.port_bits);
    u(w, "major", t.major);
    u(w, "minor", t.minor);
    u(w, "type", t.atype);
    s(w, "host", &t.host);
    if let Some(ill) = &t.illumos {
        opt_key(w, "rport", ill.rport, nulls, |w, v| w.u64(u64::from(v)));
        opt_key(w, "lport", ill.lport, nulls, |w, v| w.u64(u64::from(v)));
        opt_key(w, "port_recipe", ill.port_recipe, nulls, |w, v| w.str(v));
        w.key("host_uncertain");
        w.bool(ill.host_uncertain);
        if let Some(rev) = &ill.host_reversed {
            s(w, "host_reversed", rev);
        }
    }
    w.end_obj();
}

/// One token as the Python decoder's dict (`"token"`, `"id"`, then its fields in the same order).
pub fn write_token(w: &mut JsonWriter, tok: &Token) -> Result<(), JsonError> {
    write_token_as(w, tok, true)
}

/// `write_token`, with None values written as null (`nulls`, what `to_dict` gives) or left out (what
/// the ECS mapper's `bsm.tokens` keeps).
pub fn write_token_as(w: &mut JsonWriter, tok: &Token, nulls: bool) -> Result<(), JsonError> {
    w.begin_obj();
    s(w, "token", tok.name());
    u(w, "id", tok.id());
    match tok {
        Token::Subject { audit_uid, uid, gid, ruid, rgid, pid, sid, tid, .. } => {
            u(w, "audit_uid", *audit_uid);
            u(w, "uid", *uid);
            u(w, "gid", *gid);
            u(w, "ruid", *ruid);
            u(w, "rgid", *rgid);
            u(w, "pid", *pid);
            u(w, "sid", *sid);
            w.key("tid");
            write_tid(w, tid, nulls);
        }
        Token::Return { errval, retval, bits, error, .. } => {
            u(w, "errval", *errval);
            i(w, "retval", *retval);
            u(w, "bits", *bits);
            w.key("success");
            w.bool(*errval == 0);
            opt_key(w, "error", *error, nulls, |w, v| w.str(v));
        }
        Token::Argument { arg_num, value, desc, bits, note, .. } => {
            u(w, "arg_num", *arg_num);
            u(w, "value", *value);
            s(w, "desc", desc);
            u(w, "bits", *bits);
            match note {
                ArgNote::None => {}
                ArgNote::Text(t) => s(w, "value_text", t),
                ArgNote::Classes(classes) => {
                    w.key("value_classes");
                    w.str_list(classes);
                    s(w, "value_text", &classes.join(","));
                }
                ArgNote::Ports(pair) => {
                    opt_key(w, "rport", pair.map(|(r, _, _)| r), nulls, |w, v| w.u64(u64::from(v)));
                    opt_key(w, "lport", pair.map(|(_, l, _)| l), nulls, |w, v| w.u64(u64::from(v)));
                    opt_key(w, "port_recipe", pair.map(|(_, _, recipe)| recipe), nulls, |w, v| w.str(v));
                }
            }
        }
        Token::Attribute { mode, uid, gid, fsid, nodeid, device, bits, .. } => {
            u(w, "mode", *mode);
            octal(w, "mode_octal", *mode);
            u(w, "uid", *uid);
            u(w, "gid", *gid);
            i(w, "fsid", *fsid);
            i(w, "nodeid", *nodeid);
            s(w, "nodeid_hex", &crate::json::hex_lower(*nodeid as u64));
            u(w, "device", *device);
            u(w, "bits", *bits);
        }
        Token::Str { field, text, .. } => s(w, field, text),
        Token::StrList { field, items, .. } => {
            w.key(field);
            w.str_list(items);
        }
        Token::Privilege { set_type, privs } => {
            s(w, "set_type", set_type);
            s(w, "privs", privs);
        }
        Token::Secflags { set_type, flags } => {
            s(w, "set_type", set_type);
            s(w, "flags", flags);
        }
        Token::UsePrivilege { id, result, privs } => {
            w.key("result");
            w.bool(*result);
            s(w, "privs", privs);
            if *id == 0x3F {
                s(w, "note", "written with id 0x3f by libbsm au_to_upriv()");
            }
        }
        Token::UseAuthorization { authorization } => s(w, "authorization", authorization),
        Token::User { uid, username } => {
            u(w, "uid", *uid);
            s(w, "username", username);
        }
        Token::Cmd { argv, arge } => {
            w.key("argv");
            w.str_list(argv);
            w.key("arge");
            w.str_list(arge);
        }
        Token::Opaque { data } => {
            u(w, "size", data.len() as u64);
            w.key("data");
            w.hex(data);
        }
        Token::Arbitrary { how, unit, count, values, raw } => {
            w.key("print");
            match PRINT_NAMES.get(usize::from(*how)) {
                Some(name) => w.str(name),
                None => w.str(&how.to_string()),
            }
            s(w, "type", UNIT_NAMES[usize::from(*unit)]);
            u(w, "count", *count);
            w.key("values");
            match values {
                ArbValues::Text(t) => w.str(t),
                ArbValues::Ints(v) => w.u64_list(v.iter().copied()),
            }
            w.key("raw");
            w.hex(raw);
        }
        Token::IpAddress { atype, address, .. } => {
            u(w, "type", *atype);
            s(w, "address", address);
        }
        Token::Host { address } => s(w, "address", address),
        Token::IpPort { port, port_swapped } => {
            u(w, "port", *port);
            u(w, "port_swapped", *port_swapped);
        }
        Token::Ip { version, service_type, time_to_live, protocol, len, ip_id, offset, cksum, src_addr, dest_addr } => {
            u(w, "version", *version);
            u(w, "service_type", *service_type);
            u(w, "time_to_live", *time_to_live);
            u(w, "protocol", *protocol);
            u(w, "len", *len);
            u(w, "ip_id", *ip_id);
            u(w, "offset", *offset);
            u(w, "cksum", *cksum);
            s(w, "src_addr", src_addr);
            s(w, "dest_addr", dest_addr);
        }
        Token::Socket { sock_domain, sock_type, atype, lport, laddr, fport, faddr } => {
            u(w, "sock_domain", *sock_domain);
            u(w, "sock_type", *sock_type);
            u(w, "type", *atype);
            u(w, "lport", *lport);
            s(w, "laddr", laddr);
            u(w, "fport", *fport);
            s(w, "faddr", faddr);
        }
        Token::OldSocket9 { family, port, addr, raw } => {
            u(w, "layout", 9u8);
            u(w, "family", *family);
            u(w, "port", *port);
            s(w, "addr", addr);
            w.key("raw");
            w.hex(raw);
        }
        Token::OldSocket15 { sock_type, lport, laddr, fport, faddr, raw } => {
            u(w, "layout", 15u8);
            u(w, "sock_type", *sock_type);
            u(w, "lport", *lport);
            s(w, "laddr", laddr);
            u(w, "fport", *fport);
            s(w, "faddr", faddr);
            w.key("raw");
            w.hex(raw);
        }
        Token::SocketInet { family, port, addr } => {
            u(w, "family", *family);
            u(w, "port", *port);
            s(w, "addr", addr);
        }
        Token::SocketInet6 { family, port, addr } => {
            u(w, "family", *family);
            u(w, "port", *port);
            s(w, "addr", addr);
        }
        Token::SocketUnix { family, path } => {
            u(w, "family", *family);
            s(w, "path", path);
        }
        Token::Tid { remote_port, local_port, ip_type, host } => {
            s(w, "type", "ip");
            u(w, "remote_port", *remote_port);
            u(w, "local_port", *local_port);
            u(w, "ip_type", *ip_type);
            s(w, "host", host);
        }
        Token::Sequence { seq_num } => u(w, "seq_num", *seq_num),
        Token::Ipc { ipc_type, ipc_id } => {
            u(w, "ipc_type", *ipc_type);
            let name = match ipc_type {
                1 => Some("msg"),
                2 => Some("sem"),
                3 => Some("shm"),
                _ => None,
            };
            opt_key(w, "ipc_type_name", name, nulls, |w, v| w.str(v));
            u(w, "ipc_id", *ipc_id);
        }
        Token::IpcPerm { uid, gid, creator_uid, creator_gid, mode, seq, key } => {
            u(w, "uid", *uid);
            u(w, "gid", *gid);
            u(w, "creator_uid", *creator_uid);
            u(w, "creator_gid", *creator_gid);
            u(w, "mode", *mode);
            octal(w, "mode_octal", *mode);
            u(w, "seq", *seq);
            u(w, "key", *key);
        }
        Token::Exit { errval, retval } => {
            u(w, "errval", *errval);
            i(w, "retval", *retval);
        }
        Token::Acl { atype, value, mode } => {
            s(w, "kind", "posix");
            u(w, "type", *atype);
            u(w, "value", *value);
            u(w, "mode", *mode);
            octal(w, "mode_octal", *mode);
        }
        Token::Ace { id_value, access_mask, flags, atype } => {
            s(w, "kind", "ace");
            u(w, "id_value", *id_value);
            u(w, "access_mask", *access_mask);
            u(w, "flags", *flags);
            u(w, "type", *atype);
        }
        Token::Group { gids, .. } => {
            w.key("gid");
            w.u64_list(gids.iter().map(|g| u64::from(*g)));
        }
        Token::Label { label_id, c_len, classification, compartments, raw } => {
            u(w, "label_id", *label_id);
            u(w, "c_len", *c_len);
            i(w, "classification", *classification);
            w.key("compartments");
            w.u64_list(compartments.iter().map(|c| u64::from(*c)));
            w.key("raw");
            w.hex(raw);
        }
        Token::Liaison { value } => u(w, "value", *value),
        Token::Uuid { arg_num, uuid, desc, .. } => {
            u(w, "arg_num", *arg_num);
            s(w, "uuid", uuid);
            s(w, "desc", desc);
        }
        Token::File { sec, subsec, time_ns, name, .. } => {
            u(w, "sec", *sec);
            u(w, "subsec", *subsec);
            w.key("time_ns");
            w.exact_u128(*time_ns);
            s(w, "name", name);
        }
        Token::XObject { xid, xcreator_uid, .. } => {
            i(w, "xid", *xid);
            u(w, "xcreator_uid", *xcreator_uid);
        }
        Token::XProperty { xid, xcreator_uid, name } => {
            i(w, "xid", *xid);
            u(w, "xcreator_uid", *xcreator_uid);
            s(w, "name", name);
        }
        Token::XSelection { x_sel_text, x_sel_type, x_sel_data } => {
            s(w, "x_sel_text", x_sel_text);
            s(w, "x_sel_type", x_sel_type);
            s(w, "x_sel_data", x_sel_data);
        }
        Token::XClient { client } => u(w, "client", *client),
        Token::Unknown { offset, data, .. } => {
            u(w, "offset", *offset);
            w.key("data");
            w.hex(data);
        }
    }
    w.end_obj();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::record::tests::{header32, record, text_token};
    use super::super::record::{Limits, decode_record};
    use super::*;

    #[test]
    fn openbsm_text_record() {
        let data = record(&header32(1, 100, 5, 11), &[&text_token(b"a\"b")], true);
        let rec = decode_record(&data, 0, true, Limits::default());
        let json = String::from_utf8(record_json(&rec, Some(7)).unwrap()).unwrap();
        let expected = format!(
            concat!(
                r#"{{"offset":7,"length":32,"raw":"{}","version":11,"header_id":20,"event_id":1,"#,
                r#""event_name":"AUE_EXIT","event_description":"exit(2)","event_classes":["pc"],"modifier":0,"#,
                r#""modifier_names":[],"time_ns":100005000000,"host":null,"dialect":"openbsm","has_trailer":true,"#,
                r#""tokens":[{{"token":"text","id":40,"text":"a\"b"}}],"errors":[]}}"#,
                "\n"
            ),
            crate::json::hex_string(&data)
        );
        assert_eq!(json, expected);
    }

    #[test]
    fn a_huge_time_is_written_exactly() {
        let mut h = super::super::record::tests::header64(1, u64::MAX, 0, 2, 0);
        h[1..5].copy_from_slice(&26u32.to_be_bytes());
        let rec = decode_record(&h, 0, true, Limits::default());
        let json = String::from_utf8(record_json(&rec, None).unwrap()).unwrap();
        // (2^64 - 1) s in ns: beyond 64 bits, exact
        assert!(json.contains(r#""time_ns":18446744073709551615000000000,"#), "{json}");
    }
}
