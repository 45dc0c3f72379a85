//! An event as the JSON line `auditrecv decode --raw` writes for it: the Python `interpret(event)`
//! dict serialized by orjson (keys in the same order, the same escapes), so the two decoders can be
//! compared byte for byte.

use std::borrow::Cow;

use super::assemble::Event;
use super::interpret::{
    Facts, Made, PathValue, SockAddr, event_facts, interpret_value, ipv6_text, iso_time, syscall_tables,
};
use super::num::Num;
use super::pytext::PyInt;
use super::record::{MSG_ID_ROOM, Pair, Plain, Record, Text};
use crate::json::{JsonError, JsonWriter};

/// A record's `"fields"` object, noting where each pair went in `w` (key start, value start, end), so that
/// the `interpreted` values equal to the raw ones (most) can be copied from it instead of written again.
/// The pairs the parser found plain are copied from the line; the others go through `str`.
pub(crate) fn write_fields_noting_spans(w: &mut JsonWriter, record: &Record, written: &mut Vec<(usize, usize, usize)>) {
    write_fields_with(w, record, written, None);
}

/// `write_fields_noting_spans`, the pairs that are not plain written with the escapes of the fields' line
/// when they are known already (`decode --raw` finds them for the raw line).
fn write_fields_with(
    w: &mut JsonWriter,
    record: &Record,
    written: &mut Vec<(usize, usize, usize)>,
    escapes: Option<&LineEscapes>,
) {
    w.key("fields");
    w.begin_obj();
    written.clear();
    written.reserve(record.fields.len());
    let (line, pairs) = record.fields.raw_parts();
    if line.len() > u32::MAX as usize {
        for Pair { key: k, value: v, .. } in pairs {
            w.item();
            let key_start = w.buf.len();
            w.str(k.resolve(line));
            w.buf.push(b':');
            let value_start = w.buf.len();
            w.str(v.resolve(line));
            written.push((key_start, value_start, w.buf.len()));
        }
        w.end_obj();
        return;
    };
    let mut spans = escapes.map(|escapes| SpanWriter::new(line, escapes));
    let bytes = line.as_bytes();
    if line.len() > w.longest_text() {
        // The writer's longest text (a bound its users rely on) as writing every key and value through
        // `str` would leave it, set before them: every span is then copied, none has to go through
        // `str` for being the widest yet.
        w.note_text(pairs.iter().map(|p| p.key.len().max(p.value.len())).max().unwrap_or(0));
    }
    let longest = w.longest_text();
    for &Pair { key: ref k, value: ref v, plain, .. } in pairs {
        w.item();
        let key_start = w.buf.len();
        if let (&Text::Span(ka, kb), &Text::Span(va, vb), true) = (k, v, plain != Plain::Unknown) {
            let (ka, kb, va, vb) = (ka as usize, kb as usize, va as usize, vb as usize);
            // the common pair: key before value, nothing to escape in either, neither longer than the
            // writer's longest text: copied from the line as they are
            if kb <= va && kb - ka <= longest && vb - va <= longest && plain == Plain::Clean {
                let buf = &mut w.buf;
                buf.reserve(vb - ka + 72);
                buf.push(b'"');
                copy_run(buf, bytes, ka, kb);
                buf.extend_from_slice(b"\":\"");
                let value_start = buf.len() - 1;
                copy_run(buf, bytes, va, vb);
                buf.push(b'"');
                written.push((key_start, value_start, buf.len()));
                continue;
            }
            // a quoted value (`comm="ls"`): its quotes are its only escapes
            if kb <= va && vb - va >= 2 && kb - ka <= longest && vb - va <= longest && plain == Plain::Quoted {
                let buf = &mut w.buf;
                buf.reserve(vb - ka + 72);
                buf.push(b'"');
                copy_run(buf, bytes, ka, kb);
                buf.extend_from_slice(b"\":\"\\\"");
                let value_start = buf.len() - 3;
                copy_run(buf, bytes, va + 1, vb - 1);
                buf.extend_from_slice(b"\\\"\"");
                written.push((key_start, value_start, buf.len()));
                continue;
            }
        }
        match &mut spans {
            Some(spans) => {
                spans.text(w, k);
                w.buf.push(b':');
                let value_start = w.buf.len();
                spans.text(w, v);
                written.push((key_start, value_start, w.buf.len()));
            }
            None => {
                w.str(k.resolve(line));
                w.buf.push(b':');
                let value_start = w.buf.len();
                w.str(v.resolve(line));
                written.push((key_start, value_start, w.buf.len()));
            }
        }
    }
    w.end_obj();
}

/// Where a line's bytes need a JSON escape (controls, `"`, `\`), found in one pass over the line, so that
/// its fields, which are spans of it, are written without looking for escapes again, each.
struct LineEscapes {
    at: [u32; LineEscapes::ROOM],
    len: usize,
    /// All of them, when there are more than `ROOM` (an EXECVE of many quoted arguments).
    spilled: Vec<u32>,
}

/// The escape orjson writes for a byte, if it needs one (a `\u00XX` for the controls without a short form).
static SHORT_ESCAPES: [&[u8; 2]; 256] = {
    let mut t: [&[u8; 2]; 256] = [b"  "; 256];
    t[b'"' as usize] = b"\\\"";
    t[b'\\' as usize] = b"\\\\";
    t[0x08] = b"\\b";
    t[0x09] = b"\\t";
    t[0x0A] = b"\\n";
    t[0x0C] = b"\\f";
    t[0x0D] = b"\\r";
    t
};

/// The high bit of each of eight bytes that may need an escape (controls, `"`, `\`): exact up to the
/// first; a byte after a marked one may be marked without needing an escape, never the reverse.
#[inline]
fn escape_marks(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let (q, b) = (w ^ (ONES * u64::from(b'"')), w ^ (ONES * u64::from(b'\\')));
    (w.wrapping_sub(ONES * 0x20) & !w | q.wrapping_sub(ONES) & !q | b.wrapping_sub(ONES) & !b) & HIGH
}

#[inline]
fn needs_escape(c: u8) -> bool {
    c < 0x20 || c == b'"' || c == b'\\'
}

impl LineEscapes {
    /// Escapes kept on the stack (a few quoted values make a handful); more go to the heap.
    const ROOM: usize = 64;

    /// The escapes of `line`; None when it is too long for u32 offsets.
    fn of(line: &[u8]) -> Option<LineEscapes> {
        if line.len() > u32::MAX as usize {
            return None;
        }
        let mut out = LineEscapes { at: [0; Self::ROOM], len: 0, spilled: Vec::new() };
        let n = line.len();
        let word = |i: usize| u64::from_le_bytes(line[i..i + 8].try_into().expect("8 bytes"));
        let mut i = 0;
        // thirty-two bytes tested at a time (a loop the compiler makes wide: most have nothing to
        // escape), the words of those that do marked; then sixteen, eight, and the last few
        while i + 32 <= n {
            if line[i..i + 32].iter().fold(false, |found, &c| found | needs_escape(c)) {
                for at in [i, i + 8, i + 16, i + 24] {
                    out.take_marked(line, at, escape_marks(word(at)));
                }
            }
            i += 32;
        }
        while i + 16 <= n {
            let (first, second) = (escape_marks(word(i)), escape_marks(word(i + 8)));
            if first | second != 0 {
                out.take_marked(line, i, first);
                out.take_marked(line, i + 8, second);
            }
            i += 16;
        }
        if i + 8 <= n {
            out.take_marked(line, i, escape_marks(word(i)));
            i += 8;
        }
        for (k, &c) in line[i..].iter().enumerate() {
            if needs_escape(c) {
                out.push(i + k);
            }
        }
        Some(out)
    }

    /// The bytes of the word at `at` that `marks` marks and that need an escape.
    #[inline]
    fn take_marked(&mut self, line: &[u8], at: usize, mut marks: u64) {
        while marks != 0 {
            let i = at + (marks.trailing_zeros() / 8) as usize;
            if needs_escape(line[i]) {
                self.push(i);
            }
            marks &= marks - 1;
        }
    }

    #[inline]
    fn push(&mut self, i: usize) {
        if self.len < Self::ROOM {
            self.at[self.len] = i as u32;
            self.len += 1;
        } else {
            if self.spilled.is_empty() {
                self.spilled.extend_from_slice(&self.at);
            }
            self.spilled.push(i as u32);
        }
    }

    fn positions(&self) -> &[u32] {
        if self.spilled.is_empty() { &self.at[..self.len] } else { &self.spilled }
    }
}

/// Writes spans of a line as JSON strings with its escapes known (a cursor over them: spans mostly come
/// in the line's order).
struct SpanWriter<'a> {
    line: &'a str,
    escapes: &'a [u32],
    next: usize,
}

impl<'a> SpanWriter<'a> {
    fn new(line: &'a str, escapes: &'a LineEscapes) -> Self {
        SpanWriter { line, escapes: escapes.positions(), next: 0 }
    }

    /// A key or value of the line's fields as a JSON string.
    #[inline]
    fn text(&mut self, w: &mut JsonWriter, text: &Text) {
        match *text {
            Text::Span(from, to) => self.span(w, from as usize, to as usize),
            _ => w.str(text.resolve(self.line)),
        }
    }

    /// The first escape at or after `from`, which the cursor is left at.
    #[inline]
    fn seek(&mut self, from: usize) -> usize {
        let escapes = self.escapes;
        let mut k = self.next;
        if k > 0 && escapes[k - 1] as usize >= from {
            k = escapes.partition_point(|&e| (e as usize) < from);
        }
        while k < escapes.len() && (escapes[k] as usize) < from {
            k += 1;
        }
        self.next = k;
        k
    }

    /// `line[from..to]` as a JSON string, as `w.str` writes it.
    fn span(&mut self, w: &mut JsonWriter, from: usize, to: usize) {
        if to - from > w.longest_text() {
            // `w.str` keeps the writer's longest text (a bound its users rely on); rare: it only grows
            w.str(&self.line[from..to]);
            return;
        }
        let escapes = self.escapes;
        let mut k = self.seek(from);
        let bytes = self.line.as_bytes();
        let buf = &mut w.buf;
        buf.reserve(to - from + 34);
        buf.push(b'"');
        let mut start = from;
        while k < escapes.len() && (escapes[k] as usize) < to {
            let at = escapes[k] as usize;
            copy_run(buf, bytes, start, at);
            let c = bytes[at];
            match SHORT_ESCAPES[c as usize] {
                b"  " => {
                    buf.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(c >> 4) as usize], HEX[(c & 15) as usize]])
                }
                pair => buf.extend_from_slice(pair),
            }
            start = at + 1;
            k += 1;
        }
        copy_run(buf, bytes, start, to);
        buf.push(b'"');
        self.next = k;
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `line[from..to]`: a short run (most keys and values) as a fixed-size copy of the line's bytes
/// from `from`, cut back to its length, which needs no call to memcpy.
#[inline(always)]
fn copy_run(buf: &mut Vec<u8>, line: &[u8], from: usize, to: usize) {
    let (n, len) = (to - from, buf.len());
    if n <= 16 && from + 16 <= line.len() {
        buf.extend_from_slice(&line[from..from + 16]);
        buf.truncate(len + n);
    } else if n <= 32 && from + 32 <= line.len() {
        buf.extend_from_slice(&line[from..from + 32]);
        buf.truncate(len + n);
    } else {
        buf.extend_from_slice(&line[from..to]);
    }
}

/// `record.msg_id()` as a JSON string (null without one), written without building the text when
/// the numbers are small.
fn write_msg_id(w: &mut JsonWriter, record: &Record) {
    let mut id = [0u8; MSG_ID_ROOM];
    let Some(n) = record.msg_id_small(&mut id) else {
        w.opt_str(record.msg_id().as_deref());
        return;
    };
    w.plain(std::str::from_utf8(&id[..n]).expect("ASCII digits"));
}

/// Where `part` is in `line`, when it is a slice of it.
fn slice_of(line: &str, part: &str) -> Option<(usize, usize)> {
    let (base, at) = (line.as_ptr() as usize, part.as_ptr() as usize);
    (at >= base && at + part.len() <= base + line.len()).then(|| (at - base, at - base + part.len()))
}

fn opt_num(w: &mut JsonWriter, v: Option<&Num>) -> Result<(), JsonError> {
    match v {
        Some(n) => {
            n.write_exact(w);
            Ok(())
        }
        None => {
            w.null();
            Ok(())
        }
    }
}

fn opt_int(w: &mut JsonWriter, v: Option<&PyInt>) -> Result<(), JsonError> {
    match v {
        Some(n) => {
            w.exact_i128(n.value);
            Ok(())
        }
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
    match event.records.first() {
        Some(record) => write_msg_id(w, record),
        None => w.null(),
    }
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
    // per field: key, value start, end (sized by the first record's fields: a small allocation)
    let mut written: Vec<(usize, usize, usize)> = Vec::new();
    // the texts the interpreted values make (one buffer for the event, emptied per value)
    let mut made = Made::default();
    for (record, &table) in event.records.iter().zip(&tables) {
        w.item();
        w.begin_obj();
        w.key("type");
        w.str(&record.type_name);
        w.key("type_num");
        opt_num(w, record.type_num.as_ref())?;
        w.key("raw");
        let (line, _) = record.fields.raw_parts();
        let shared = std::sync::Arc::ptr_eq(line, &record.raw);
        // the raw line's escapes are its fields' (which are spans of it): found once, for both
        let escapes = LineEscapes::of(record.raw.as_bytes());
        match &escapes {
            Some(escapes) => SpanWriter::new(&record.raw, escapes).span(w, 0, record.raw.len()),
            None => w.str(&record.raw),
        }
        match record.error.is_none() && !record.fragment {
            true => {
                if shared {
                    write_fields_with(w, record, &mut written, escapes.as_ref());
                } else {
                    write_fields_noting_spans(w, record, &mut written);
                }
                w.key("interpreted");
                w.begin_obj();
                let mut line_spans = escapes.as_ref().filter(|_| shared).map(|e| SpanWriter::new(&record.raw, e));
                // runs of fields left as they are (most) are copied in one piece, commas included
                let mut run: Option<(usize, usize)> = None;
                for ((id, k, raw), &(key_start, value_start, end)) in record.fields.iter_ids().zip(&written) {
                    made.clear();
                    let value = interpret_value(record, id, k, raw, table, &mut made).resolve(made.text());
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
                    // a value that is a slice of the line (unquoted, most) is written with its escapes known
                    match (&mut line_spans, slice_of(&record.raw, value)) {
                        (Some(spans), Some((from, to))) => spans.span(w, from, to),
                        _ => w.str(value),
                    }
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
                PathValue::Int(n) => w.exact_i128(n.value),
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
        w.exact_i128(pid.value);
    }
    if let Some(ppid) = &p.ppid {
        w.key("ppid");
        w.exact_i128(ppid.value);
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
    use super::{LineEscapes, needs_escape, write_fields_noting_spans};
    use crate::json::JsonWriter;
    use crate::linux::assemble::Settings;
    use crate::linux::parse::parse_line;
    use crate::linux::stream::decode_raw;

    /// The `fields` object as `JsonWriter::str` writes every key and value, and where each pair went.
    fn fields_by_str(w: &mut JsonWriter, line: &str) -> Vec<(usize, usize, usize)> {
        let record = parse_line(line).unwrap();
        let mut spans = Vec::new();
        w.key("fields");
        w.begin_obj();
        for (k, v) in record.fields.iter() {
            w.item();
            let key_start = w.buf.len();
            w.str(k);
            w.buf.push(b':');
            let value_start = w.buf.len();
            w.str(v);
            spans.push((key_start, value_start, w.buf.len()));
        }
        w.end_obj();
        spans
    }

    #[test]
    fn line_escapes_found_at_every_offset() {
        for n in [0, 7, 8, 15, 16, 31, 32, 33, 47, 64, 70, 100] {
            for at in 0..n {
                for c in [b'"', b'\\', b'\n', 0x1f, 0x00] {
                    let mut line = vec![b'a'; n];
                    line[at] = c;
                    line[n - 1 - (at * 7) % n] = b'\\';
                    let naive: Vec<u32> = (0..n as u32).filter(|&i| needs_escape(line[i as usize])).collect();
                    assert_eq!(LineEscapes::of(&line).unwrap().positions(), naive, "{n} {at} {c}");
                }
            }
        }
        let many = b"\"x\" ".repeat(40);
        let naive: Vec<u32> = (0..many.len() as u32).filter(|&i| needs_escape(many[i as usize])).collect();
        assert_eq!(LineEscapes::of(&many).unwrap().positions(), naive);
    }

    #[test]
    fn event_ids_as_msg_id_writes_them() {
        for line in [
            "type=X msg=audit(1492037289.295:58): a=1",
            "type=X msg=audit(0.000:0): a=1",
            "type=X msg=audit(1.5:18446744073709551615): a=1",
            "type=X msg=audit(99999999999999999999999.999:340282366920938463463374607431768211455): a=1",
            "type=X msg=audit(1.999:999999999999999999999999999999999999999999): a=1",
        ] {
            let record = parse_line(line).unwrap();
            for warm in [0, 100] {
                let (mut expected, mut got) = (JsonWriter::default(), JsonWriter::default());
                expected.str(&"w".repeat(warm));
                got.str(&"w".repeat(warm));
                expected.opt_str(record.msg_id().as_deref());
                super::write_msg_id(&mut got, &record);
                assert_eq!(String::from_utf8_lossy(&got.buf), String::from_utf8_lossy(&expected.buf), "{line}");
                assert_eq!(got.longest_text(), expected.longest_text(), "{line}");
            }
        }
    }

    #[test]
    fn fields_written_from_the_line_as_str_writes_them() {
        let many_quotes: String = (0..80).map(|i| format!(" a{i}=\"v{i}\"")).collect();
        let long_value = format!(" x={}", "y".repeat(40));
        let lines = [
            "type=SYSCALL msg=audit(1.000:1): arch=c000003e syscall=59 comm=\"ls\" exe=\"/bin/ls\" key=(null)".to_owned(),
            "type=PATH msg=audit(1.000:1): name=\"a\\b\" odd=\"x\"y\" q=\"\" one=\" k\"=\"v\" tab=\"\t\" c=\u{1}\u{8}\"".to_owned(),
            format!("type=EXECVE msg=audit(1.000:1): argc=80{many_quotes}"),
            format!("type=CWD msg=audit(1.000:1): cwd=\"/\"{long_value} end=\"\u{e9}\u{1}\""),
            "type=AVC msg=audit(1.000:1): avc:  denied  { read write } for pid=1 comm=\"x\"".to_owned(),
            "type=USER_LOGIN msg=audit(1.000:1): pid=1 msg='op=login acct=\"bob\" res=success'\u{1d}UID=\"x\"".to_owned(),
            "type=SYSCALL msg=audit(1.000:1): a=1 a=\"2\" b=3".to_owned(),
        ];
        for line in &lines {
            // a fresh writer (short longest text: strings longer than it take `str`) and a used one
            for warm in [0, 100] {
                let (mut expected, mut got) = (JsonWriter::default(), JsonWriter::default());
                expected.str(&"w".repeat(warm));
                got.str(&"w".repeat(warm));
                let spans = fields_by_str(&mut expected, line);
                let mut written = Vec::new();
                write_fields_noting_spans(&mut got, &parse_line(line).unwrap(), &mut written);
                assert_eq!(String::from_utf8_lossy(&got.buf), String::from_utf8_lossy(&expected.buf), "{line}");
                assert_eq!(written, spans, "{line}");
                assert_eq!(got.longest_text(), expected.longest_text(), "{line}");
            }
        }
    }

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
