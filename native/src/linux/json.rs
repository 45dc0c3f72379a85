//! An event as the JSON line `auditrecv decode --raw` writes for it: the Python `interpret(event)`
//! dict serialized by orjson (keys in the same order, the same escapes), so the two decoders can be
//! compared byte for byte.

use std::borrow::Cow;

use super::assemble::Event;
use super::interpret::{Facts, PathValue, SockAddr, event_facts, interpret_field, ipv6_text, iso_time, syscall_tables};
use super::num::Num;
use super::pytext::PyInt;
use super::record::Record;
use crate::json::{JsonError, JsonWriter};

/// A record's `"fields"` object, noting where each pair went in `w` (key start, value start, end), so that
/// the `interpreted` values equal to the raw ones (most) can be copied from it instead of written again.
pub(crate) fn write_fields_noting_spans(w: &mut JsonWriter, record: &Record, written: &mut Vec<(usize, usize, usize)>) {
    w.key("fields");
    w.begin_obj();
    written.clear();
    written.reserve(record.fields.len());
    for (k, v) in record.fields.iter() {
        w.item();
        let key_start = w.buf.len();
        w.str(k);
        w.buf.push(b':');
        let value_start = w.buf.len();
        w.str(v);
        written.push((key_start, value_start, w.buf.len()));
    }
    w.end_obj();
}

fn opt_num(w: &mut JsonWriter, v: Option<&Num>) -> Result<(), JsonError> {
    match v {
        Some(n) => n.write_json(w),
        None => {
            w.null();
            Ok(())
        }
    }
}

fn opt_int(w: &mut JsonWriter, v: Option<&PyInt>) -> Result<(), JsonError> {
    match v {
        Some(n) => w.i128(n.value),
        None => {
            w.null();
            Ok(())
        }
    }
}

/// The event's JSON line (newline included), `source` naming the input.
pub fn event_json<T>(event: &Event<T>, source: &str) -> Result<Vec<u8>, JsonError> {
    let mut w = JsonWriter::with_capacity(event.records.iter().map(|r| r.raw.len() * 3).sum::<usize>() + 512);
    append_event_json(&mut w, event, source)?;
    Ok(w.into_bytes())
}

/// The event's JSON line appended to `w`; on an error `w` is left as it was.
pub fn append_event_json<T>(w: &mut JsonWriter, event: &Event<T>, source: &str) -> Result<(), JsonError> {
    let start = w.buf.len();
    let written = write_event(w, event, source);
    if written.is_err() {
        w.buf.truncate(start);
    }
    written?;
    w.newline();
    Ok(())
}

/// The event as `interpret(event)` gives it, written as JSON. Interpreted values are computed while
/// writing, and one that is the raw value itself (most are) is copied from the `fields` object just
/// written instead of escaped again.
pub fn write_event<T>(w: &mut JsonWriter, event: &Event<T>, source: &str) -> Result<(), JsonError> {
    let (tables, arch_table) = syscall_tables(event);
    w.begin_obj();
    w.key("id");
    w.opt_str(event.records.first().and_then(|r| r.msg_id()).as_deref());
    w.key("source");
    w.str(source);
    w.key("node");
    w.opt_str(event.node.as_deref());
    w.key("timestamp");
    w.opt_str(event.time_ns.as_ref().and_then(iso_time).as_deref());
    w.key("time_ns");
    opt_num(w, event.time_ns.as_ref())?;
    w.key("serial");
    opt_num(w, event.serial.as_ref())?;
    w.key("complete");
    w.str(event.complete.as_str());
    w.key("error");
    w.opt_str(event.error);
    w.key("lost_before");
    w.u64(u64::from(event.lost_before));
    w.key("record_types");
    w.begin_arr();
    for r in &event.records {
        w.item();
        w.str(&r.type_name);
    }
    w.end_arr();
    w.key("records");
    w.begin_arr();
    let mut written: Vec<(usize, usize, usize)> = Vec::with_capacity(64); // per field: key, value start, end
    for (record, &table) in event.records.iter().zip(&tables) {
        w.item();
        w.begin_obj();
        w.key("type");
        w.str(&record.type_name);
        w.key("type_num");
        opt_num(w, record.type_num.as_ref())?;
        w.key("raw");
        w.str(&record.raw);
        match record.error.is_none() && !record.fragment {
            true => {
                write_fields_noting_spans(w, record, &mut written);
                w.key("interpreted");
                w.begin_obj();
                // runs of fields left as they are (most) are copied in one piece, commas included
                let mut run: Option<(usize, usize)> = None;
                for ((k, raw), &(key_start, value_start, end)) in record.fields.iter().zip(&written) {
                    let value = interpret_field(record, k, raw, table);
                    if value.as_ptr() == raw.as_ptr() && value.len() == raw.len() {
                        run = Some((run.map_or(key_start, |r| r.0), end));
                        continue;
                    }
                    if let Some((from, to)) = run.take() {
                        w.item();
                        w.buf.extend_from_within(from..to);
                    }
                    w.item();
                    w.buf.extend_from_within(key_start..value_start);
                    w.str(&value);
                }
                if let Some((from, to)) = run {
                    w.item();
                    w.buf.extend_from_within(from..to);
                }
                w.end_obj();
                if !record.enriched.is_empty() {
                    w.key("enriched");
                    w.begin_obj();
                    for (k, v) in record.enriched.iter() {
                        w.key_str(k);
                        w.str(v);
                    }
                    w.end_obj();
                }
                if !record.duplicates.is_empty() {
                    w.key("duplicates");
                    w.begin_arr();
                    for (k, v) in &record.duplicates {
                        w.item();
                        w.str_list(&[k, v]);
                    }
                    w.end_arr();
                }
            }
            false => {
                w.key("error");
                w.opt_str(record.error);
            }
        }
        w.end_obj();
    }
    w.end_arr();
    if let Some(facts) = event_facts(event, arch_table) {
        write_facts(w, &facts)?;
    }
    w.end_obj();
    Ok(())
}

fn write_facts(w: &mut JsonWriter, f: &Facts<'_>) -> Result<(), JsonError> {
    w.key("type");
    w.str(f.main_type);
    if let Some(s) = &f.syscall {
        w.key("syscall");
        w.begin_obj();
        w.key("number");
        opt_int(w, s.number.as_ref())?;
        w.key("name");
        w.opt_str(s.name);
        w.key("arch");
        w.opt_str(s.arch);
        w.key("success");
        match s.success {
            Some(b) => w.bool(b),
            None => w.null(),
        }
        w.key("exit");
        opt_int(w, s.exit.as_ref())?;
        w.key("errno");
        w.opt_str(s.errno.map(|e| e.0));
        w.key("errno_text");
        w.opt_str(s.errno.map(|e| e.1));
        w.key("args");
        w.str_list(&s.args);
        w.key("items");
        opt_int(w, s.items.as_ref())?;
        w.end_obj();
    }
    w.key("outcome");
    w.opt_str(f.outcome);
    w.key("keys");
    w.str_list(&f.keys);
    w.key("user");
    w.begin_obj();
    w.key("ids");
    w.begin_obj();
    for (k, v) in &f.user_ids {
        w.key(k);
        w.opt_str(*v);
    }
    w.end_obj();
    w.key("names");
    w.begin_obj();
    for (k, v) in &f.user_names {
        w.key(k);
        w.str(v);
    }
    w.end_obj();
    w.end_obj();
    w.key("session");
    w.opt_str(f.session);
    w.key("process");
    write_process(w, f)?;
    w.key("paths");
    w.begin_arr();
    for entry in &f.paths {
        w.item();
        w.begin_obj();
        for (k, v) in entry {
            w.key_str(k);
            match v {
                PathValue::Text(t) => w.str(t),
                PathValue::Int(n) => w.i128(n.value)?,
                PathValue::Null => w.null(),
            }
        }
        w.end_obj();
    }
    w.end_arr();
    w.key("sockaddr");
    w.begin_arr();
    for s in &f.sockaddr {
        w.item();
        write_sockaddr(w, s);
    }
    w.end_arr();
    if let Some(m) = &f.user_msg {
        w.key("user_msg");
        w.begin_obj();
        for (k, v) in &m.fields {
            w.key(k);
            w.str(v);
        }
        if let Some(text) = m.text {
            w.key("text");
            w.str(text);
        }
        w.end_obj();
    }
    Ok(())
}

fn opt_text(w: &mut JsonWriter, key: &str, v: &Option<Cow<'_, str>>) {
    if let Some(v) = v {
        w.key(key);
        w.str(v);
    }
}

fn write_process(w: &mut JsonWriter, f: &Facts<'_>) -> Result<(), JsonError> {
    let p = &f.process;
    w.begin_obj();
    if let Some(pid) = &p.pid {
        w.key("pid");
        w.i128(pid.value)?;
    }
    if let Some(ppid) = &p.ppid {
        w.key("ppid");
        w.i128(ppid.value)?;
    }
    opt_text(w, "comm", &p.comm);
    opt_text(w, "exe", &p.exe);
    for (key, v) in [("tty", p.tty), ("subj", p.subj)] {
        if let Some(v) = v {
            w.key(key);
            w.str(v);
        }
    }
    if let Some((title, argv)) = &p.title {
        w.key("title");
        w.str(title);
        w.key("title_argv");
        w.str_list(argv);
    }
    if let Some((argc, args)) = &p.execve {
        w.key("argc");
        opt_int(w, argc.as_ref())?;
        w.key("args");
        w.str_list(args);
    }
    opt_text(w, "cwd", &p.cwd);
    w.end_obj();
    Ok(())
}

fn write_sockaddr(w: &mut JsonWriter, s: &SockAddr<'_>) {
    w.begin_obj();
    w.key("family");
    match s {
        SockAddr::Error { error, raw } => {
            w.null();
            w.key("error");
            w.str(error);
            w.key("raw");
            w.str(raw);
        }
        SockAddr::Inet { address, port } => {
            w.str("inet");
            w.key("address");
            w.str(&address.to_string());
            w.key("port");
            w.u64(u64::from(*port));
        }
        SockAddr::Inet6 { address, port, scope_id } => {
            w.str("inet6");
            w.key("address");
            w.str(&ipv6_text(address));
            w.key("port");
            w.u64(u64::from(*port));
            if let Some(scope) = scope_id {
                w.key("scope_id");
                w.u64(u64::from(*scope));
            }
        }
        SockAddr::Local { path } => {
            w.str("local");
            w.key("path");
            w.str(path);
        }
        SockAddr::Netlink { pid, groups } => {
            w.str("netlink");
            w.key("netlink_pid");
            w.u64(u64::from(*pid));
            w.key("netlink_groups");
            w.u64(u64::from(*groups));
        }
        SockAddr::Other { family, number } => {
            w.str(family);
            w.key("family_number");
            w.u64(u64::from(*number));
        }
    }
    w.end_obj();
}

#[cfg(test)]
mod tests {
    use crate::linux::assemble::Settings;
    use crate::linux::stream::decode_raw;

    #[test]
    fn an_event_line_as_python_writes_it() {
        // the EOE has no node=, so it is another node's (orphan) EOE: the SYSCALL event ends at flush
        let lines: [&[u8]; 2] = [
            b"node=h1 type=SYSCALL msg=audit(1700000000.123:42): arch=c000003e syscall=59 success=yes exit=0 uid=0 \
              comm=\"ls\"\x1dUID=\"root\"",
            b"type=EOE msg=audit(1700000000.123:42): ",
        ];
        let out = decode_raw(lines, "t", Settings::default()).unwrap();
        // `auditrecv decode --raw` of the same two lines (the Python decoder and orjson)
        let expected = concat!(
            r#"{"id":"1700000000.123:42","source":"t","node":"h1","timestamp":"2023-11-14T22:13:20.123Z","#,
            r#""time_ns":1700000000123000000,"serial":42,"complete":"flush","error":null,"lost_before":0,"#,
            r#""record_types":["SYSCALL"],"records":[{"type":"SYSCALL","type_num":1300,"raw":"node=h1 type=SYSCALL "#,
            r#"msg=audit(1700000000.123:42): arch=c000003e syscall=59 success=yes exit=0 uid=0 comm=\"ls\"\u001dUID=\"root\"","#,
            r#""fields":{"arch":"c000003e","syscall":"59","success":"yes","exit":"0","uid":"0","comm":"\"ls\""},"#,
            r#""interpreted":{"arch":"x86_64","syscall":"execve","success":"yes","exit":"0","uid":"root","comm":"ls"},"#,
            r#""enriched":{"UID":"root"}}],"type":"SYSCALL","syscall":{"number":59,"name":"execve","arch":"x86_64","#,
            r#""success":true,"exit":0,"errno":null,"errno_text":null,"args":[],"items":null},"outcome":"success","#,
            r#""keys":[],"user":{"ids":{"uid":"0"},"names":{"uid":"root"}},"session":null,"process":{"comm":"ls"},"#,
            r#""paths":[],"sockaddr":[]}"#,
            "\n"
        );
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }
}
