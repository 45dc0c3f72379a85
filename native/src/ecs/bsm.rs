//! A decoded BSM record -> its ECS document, field for field and in
//! the same order, so the JSON is byte-equal to what orjson writes of the Python dict.
//!
//! The ECS part is a lossy, queryable projection; `bsm.tokens` keeps every decoded token in order,
//! written straight from the decoder's tokens (never held as values).

use std::borrow::Cow;

use super::common::{
    Parties, PyError, basename, errno_message, file_type_from_mode, hex_lower, id_text, iso_ns, num, octal,
    related_users, routable_ip, short_hash, summary_message, valid_ip,
};
use super::flat::{FLAT_VALUE_LIMIT, cap_strings, has_long_strings, python_dumps};
use super::tables::{Category, bsm_category, bsm_class_category};
use super::value::{Obj, Value};
use crate::bsm::json::write_token_as;
use crate::bsm::record::{Record, modifier_names};
use crate::bsm::token::{ArgNote, Token};
use crate::json::{JsonError, JsonWriter};

const EXEC_ACTIONS: [&str; 2] = ["executed", "executed-with-privileges"];
const TWO_PATH_ACTIONS: [&str; 3] = ["renamed", "linked", "symlinked"];

/// Why a record made no document of its own: the mapper raised (Python: an `internal error` dead
/// letter), or the document cannot be serialized (Python: the sink's `serialization_error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapError {
    Internal(PyError),
    Unencodable(JsonError),
}

impl From<PyError> for MapError {
    fn from(e: PyError) -> Self {
        MapError::Internal(e)
    }
}

impl From<JsonError> for MapError {
    fn from(e: JsonError) -> Self {
        MapError::Unencodable(e)
    }
}

/// `categorize`: the table row; else one derived from the event's classes; else process/info.
pub struct Categorized {
    pub action: Cow<'static, str>,
    pub object_type: &'static str,
    pub kind: &'static str,
    pub category: &'static [&'static str],
    pub types: &'static [&'static str],
    pub direction: &'static str,
}

pub fn categorize(rec: &Record<'_>) -> Categorized {
    let name = rec.event.map_or("", |e| e.name);
    if let Some(c) = bsm_category(name) {
        return from_row(Cow::Borrowed(c.action), c, c.kind, c.direction);
    }
    let action: Cow<'static, str> = if let Some(rest) = name.strip_prefix("AUE_") {
        Cow::Owned(rest.to_lowercase())
    } else if !name.is_empty() {
        Cow::Owned(name.to_lowercase())
    } else {
        Cow::Owned(format!("event-{}", rec.event_id.map_or_else(|| "None".into(), |e| e.to_string())))
    };
    for cls in rec.event.map_or(&[][..], |e| e.classes) {
        if let Some(row) = bsm_class_category(cls) {
            return from_row(action, row, "", "");
        }
    }
    Categorized { action, object_type: "", kind: "", category: &["process"], types: &["info"], direction: "" }
}

fn from_row(
    action: Cow<'static, str>,
    c: &'static Category,
    kind: &'static str,
    direction: &'static str,
) -> Categorized {
    Categorized { action, object_type: c.object_type, kind, category: c.category, types: c.types, direction }
}

/// Python's `str.strip()` (its whitespace includes the separators 0x1c-0x1f).
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

/// The tokens as `bsm.tokens` holds them (None values left out), as JSON; empty when there are none.
pub fn tokens_json(rec: &Record<'_>) -> Result<Vec<u8>, JsonError> {
    let mut w = JsonWriter::with_capacity(rec.raw.len() * 3 + 64);
    w.begin_arr();
    for tok in &rec.tokens {
        w.item();
        write_token_as(&mut w, tok, false)?;
    }
    w.end_arr();
    Ok(w.into_bytes())
}

struct Endpoint<'t> {
    address: Option<&'t str>,
    port: Option<u16>,
}

const NO_END: Endpoint<'static> = Endpoint { address: None, port: None };

/// `_socket_endpoints`: (local, remote, transport, network type) of a socket-ish token.
fn socket_endpoints(tok: &Token) -> (Endpoint<'_>, Endpoint<'_>, Option<&'static str>, Option<&'static str>) {
    let sock_transport = |t: u16| match t {
        1 => Some("udp"),
        2 => Some("tcp"),
        4 => Some("raw"),
        5 => Some("rdm"),
        6 => Some("sctp"),
        _ => None,
    };
    let (local, remote, mut transport) = match tok {
        Token::Socket { sock_type, lport, laddr, fport, faddr, .. }
        | Token::OldSocket15 { sock_type, lport, laddr, fport, faddr, .. } => (
            Endpoint { address: Some(laddr), port: Some(*lport) },
            Endpoint { address: Some(faddr), port: Some(*fport) },
            sock_transport(*sock_type),
        ),
        Token::OldSocket9 { port, addr, .. }
        | Token::SocketInet { port, addr, .. }
        | Token::SocketInet6 { port, addr, .. } => (NO_END, Endpoint { address: Some(addr), port: Some(*port) }, None),
        Token::SocketUnix { path, .. } => (NO_END, Endpoint { address: Some(path), port: None }, Some("unix")),
        _ => (NO_END, NO_END, None),
    };
    let addr = remote.address.filter(|a| !a.is_empty()).or(local.address.filter(|a| !a.is_empty()));
    let kind = addr.and_then(valid_ip).map(|ip| if ip.contains(':') { "ipv6" } else { "ipv4" });
    if let Token::Socket { sock_domain: 1, .. } = tok {
        transport = Some("unix");
    }
    (local, remote, transport, kind)
}

/// source.* or destination.*: the three field paths of one side.
type EndpointFields = (&'static str, &'static str, &'static str);
const SOURCE: EndpointFields = ("source.address", "source.ip", "source.port");
const DESTINATION: EndpointFields = ("destination.address", "destination.ip", "destination.port");

fn put_endpoint(doc: &mut Obj, (address, ip_field, port_field): EndpointFields, end: &Endpoint<'_>) {
    let Some(addr) = end.address.filter(|a| !a.is_empty()) else { return };
    doc.put(address, addr.to_owned());
    if let Some(ip) = valid_ip(addr) {
        let routable = routable_ip(&ip);
        doc.put(ip_field, ip);
        doc.add_unique("related.ip", [routable.map(Value::from)]);
    }
    if let Some(port) = end.port.filter(|p| *p > 0) {
        doc.put(port_field, u64::from(port));
    }
}

fn str_token<'t>(tok: &'t Token, token_name: &str) -> Option<&'t str> {
    match tok {
        Token::Str { name, text, .. } if *name == token_name => Some(text),
        _ => None,
    }
}

fn list_token<'t>(tok: &'t Token, token_name: &str) -> Option<&'t [String]> {
    match tok {
        Token::StrList { name, items, .. } if *name == token_name => Some(items),
        _ => None,
    }
}

/// `bsm_to_ecs(record, source, observer, received_ns=...)` (source and observer: `parties`).
pub fn bsm_to_ecs(rec: &Record<'_>, parties: &Parties, received_ns: u64) -> Result<Obj, MapError> {
    let cat = categorize(rec);
    let dialect = rec.dialect();
    // a time beyond what @timestamp (date_nanos) holds: the arrival time (batch::keep_out_of_range_time)
    let time_ns = rec.time_ns.filter(|t| *t <= super::linux::LATEST_DATE_NS).unwrap_or(u128::from(received_ns));
    let tokens = &rec.tokens;

    let mut event = Obj::with_capacity(16);
    event.push("kind", if cat.kind.is_empty() { "event" } else { cat.kind });
    let mut doc = Obj::with_capacity(24);
    doc.push("@timestamp", iso_ns(time_ns)?);
    let mut labels = Obj::with_capacity(1);
    labels.push("dialect", dialect);
    doc.push("labels", labels);

    // -- event.*
    if !cat.category.is_empty() {
        event.push("category", Value::Strs(cat.category));
    }
    if !cat.types.is_empty() {
        event.push("type", Value::Strs(cat.types));
    }
    if !cat.action.is_empty() {
        event.push("action", Value::Str(cat.action.clone()));
    }
    event.push("module", "bsm");
    event.push("dataset", if rec.illumos { "illumos.audit" } else { "openbsm.audit" });
    if let Some(id) = rec.event_id {
        event.push("code", num(id));
    }
    event.push("created", iso_ns(u128::from(received_ns))?);
    if let Some(seq) = tokens.iter().find_map(|t| match t {
        Token::Sequence { seq_num } => Some(*seq_num),
        _ => None,
    }) {
        event.push("sequence", seq);
    }
    let ret = tokens.iter().rev().find_map(|t| match t {
        Token::Return { errval, retval, error, .. } => Some((*errval, *retval, *error)),
        _ => None,
    });
    event.push(
        "outcome",
        match ret {
            None => "unknown",
            Some((0, _, _)) => "success",
            Some(_) => "failure",
        },
    );
    doc.push("event", event);
    if let Some((errval, _, error)) = ret.filter(|r| r.0 != 0) {
        let code = match error {
            Some(e) if !e.is_empty() => e.to_owned(),
            _ => format!("errval {errval}"),
        };
        let message = error.and_then(errno_message).map_or_else(|| code.clone(), str::to_owned);
        doc.put("error.code", code);
        doc.put("error.message", message);
    }

    // -- where from, who received it
    parties.source_fields(&mut doc);
    let header_host: Vec<String> = rec.host.as_deref().and_then(valid_ip).into_iter().collect();
    parties.host_fields(&mut doc, None, &header_host);
    parties.observer_fields(&mut doc);

    // -- subject: the actor
    let subj = tokens.iter().find(|t| matches!(t, Token::Subject { process: false, .. }));
    if let Some(Token::Subject { audit_uid, uid, gid, ruid, rgid, pid, sid: s, tid, .. }) = subj {
        doc.put("process.pid", *pid);
        doc.put_opt("user.id", id_text(*ruid));
        doc.put_opt("user.group.id", id_text(*rgid));
        doc.put_opt("group.id", id_text(*rgid));
        doc.put_opt("user.effective.id", id_text(*uid));
        doc.put_opt("user.effective.group.id", id_text(*gid));
        doc.put_opt("user.audit.id", id_text(*audit_uid));
        doc.put("bsm.session", num(*s));
        doc.put("bsm.terminal.host", tid.host.clone());
        doc.put("bsm.terminal.port", hex_lower(tid.port));
        if let Some(ill) = &tid.illumos {
            doc.put_opt("bsm.terminal.rport", ill.rport);
            doc.put_opt("bsm.terminal.lport", ill.lport);
        }
        doc.add_unique("related.ip", [routable_ip(&tid.host).map(Value::from)]);
    }
    if let Some(Token::User { uid, username }) = tokens.iter().find(|t| matches!(t, Token::User { .. })) {
        doc.put_opt("user.target.id", id_text(*uid));
        doc.put("user.target.name", username.clone());
    }

    // -- process: exec details
    let paths: Vec<&str> = tokens.iter().filter_map(|t| str_token(t, "path")).collect();
    let args = tokens.iter().find_map(|t| list_token(t, "exec_args"));
    let exec = EXEC_ACTIONS.contains(&&*cat.action);
    if exec && !paths.is_empty() {
        doc.put("process.executable", paths[0].to_owned());
        doc.put_opt("process.name", basename(paths[0]));
    } else if let Some(first) = args.and_then(|a| a.first()) {
        doc.put_opt("process.name", basename(first));
    }
    if let Some(args) = args {
        doc.put("process.args", Value::str_list(args.iter().cloned()));
        doc.put("process.args_count", args.len() as u64);
        let title = args.join(" ");
        doc.put("process.title", title.clone());
        doc.put("process.command_line", title);
    }
    if let Some(env) = tokens.iter().find_map(|t| list_token(t, "exec_env")) {
        doc.put("process.env_vars", Value::str_list(env.iter().cloned()));
    }
    if let Some(Token::Subject { pid, sid, .. }) = subj {
        doc.put("process.entity_id", short_hash(&[&parties.identity, &num(*pid), &num(*sid)]));
    }

    // -- file object
    let attr = tokens.iter().find(|t| matches!(t, Token::Attribute { .. }));
    if !paths.is_empty() && matches!(cat.object_type, "file" | "filesystem" | "") {
        let first = paths[0];
        doc.put("file.path", first.to_owned());
        doc.put_opt("file.name", basename(first));
        let directory = if first.trim_end_matches('/').contains('/') {
            first.rsplit_once('/').map(|(d, _)| d).filter(|d| !d.is_empty())
        } else {
            None
        };
        let directory = directory.or(if first.starts_with('/') { Some("/") } else { None });
        doc.put_opt("file.directory", directory.map(str::to_owned));
        if TWO_PATH_ACTIONS.contains(&&*cat.action) && paths.len() > 1 {
            doc.put("file.target_path", paths[1].to_owned());
        }
        if let Some(Token::Attribute { mode, uid, gid, fsid, nodeid, .. }) = attr {
            doc.put("file.mode", octal(u64::from(mode & 0o7777), 4));
            doc.put_opt("file.type", file_type_from_mode(*mode));
            doc.put_opt("file.uid", id_text(*uid));
            doc.put_opt("file.gid", id_text(*gid));
            doc.put("file.inode", num(*nodeid));
            doc.put("file.device", num(*fsid));
        }
    }

    // -- network
    let sock = tokens.iter().find(|t| {
        matches!(
            t,
            Token::Socket { .. }
                | Token::OldSocket9 { .. }
                | Token::OldSocket15 { .. }
                | Token::SocketInet { .. }
                | Token::SocketInet6 { .. }
                | Token::SocketUnix { .. }
        )
    });
    let mut remote_addr: Option<&str> = None;
    if let Some(sock) = sock {
        let (local, remote, transport, net_type) = socket_endpoints(sock);
        remote_addr = remote.address;
        if cat.direction == "ingress" {
            put_endpoint(&mut doc, SOURCE, &remote);
            put_endpoint(&mut doc, DESTINATION, &local);
        } else {
            put_endpoint(&mut doc, SOURCE, &local);
            put_endpoint(&mut doc, DESTINATION, &remote);
        }
        doc.put_opt("network.transport", transport);
        doc.put_opt("network.type", net_type);
    }
    for tok in tokens {
        if let Token::IpAddress { address, .. } = tok {
            doc.add_unique("related.ip", [routable_ip(address).map(Value::from)]);
        }
    }
    if !cat.direction.is_empty() {
        doc.put("network.direction", cat.direction);
    }
    // remote logins: the terminal id holds the client's address (ssh, telnet, rlogin, ...)
    if cat.object_type == "user-session" && doc.get_path("source.ip").is_none() {
        if let Some(Token::Subject { tid, .. }) = subj {
            if let Some(ip) = routable_ip(&tid.host) {
                let net = if ip.contains(':') { "ipv6" } else { "ipv4" };
                doc.put("source.ip", ip.clone());
                doc.put("source.address", ip);
                if let Some(rport) = tid.illumos.as_ref().and_then(|i| i.rport).filter(|p| *p > 0) {
                    doc.put("source.port", rport);
                }
                doc.put("network.type", net);
            }
        }
    }

    // -- zones: container.* for non-global zones, so zones look like containers in ECS
    let zone = tokens.iter().find_map(|t| str_token(t, "zone"));
    if let Some(zone) = zone {
        doc.put("bsm.zonename", zone.to_owned());
        if !zone.is_empty() && zone != "global" {
            doc.put("container.id", zone.to_owned());
            doc.put("container.name", zone.to_owned());
            doc.put("container.runtime", "zone");
        }
    }

    // -- the summary (actor / action / object / how)
    let texts: Vec<&str> = tokens.iter().filter_map(|t| str_token(t, "text")).collect();
    doc.put("bsm.summary", summary(rec, &cat, &paths, remote_addr, subj, &texts));

    // -- bsm.* detail: header facts, convenience lists, every token
    {
        // Each of these is written once, after the only earlier bsm.* keys (session, terminal, zonename,
        // summary): appended without looking for them first.
        let bsm = doc.section("bsm");
        let mut add = |key: &'static str, value: Value| {
            if !value.is_empty_value() {
                bsm.push(key, value);
            }
        };
        let opt = |v: Option<Value>| v.unwrap_or(Value::Null);
        add("version", opt(rec.version.map(|v| Value::from(u32::from(v)))));
        add("header_id", opt(rec.header_id.map(|v| Value::from(u32::from(v)))));
        add("event_id", opt(rec.event_id.map(|v| Value::from(u32::from(v)))));
        add("event_name", opt(rec.event.map(|e| Value::from(e.name))));
        add("event_description", opt(rec.event.map(|e| Value::from(e.description))));
        add("classes", Value::Strs(rec.event.map_or(&[][..], |e| e.classes)));
        add("modifier", Value::from(u32::from(rec.modifier)));
        add("modifier_names", Value::str_list(modifier_names(rec.modifier)));
        add("host", opt(rec.host.clone().map(Value::from)));
        add("has_trailer", Value::from(rec.has_trailer));
        add("length", Value::from(rec.length as u64));
        add("paths", Value::str_list(paths.iter().map(|p| (*p).to_owned())));
        add("texts", Value::str_list(texts.iter().map(|p| (*p).to_owned())));
        if let Some((errval, retval, _)) = ret {
            let mut r = Obj::with_capacity(2);
            r.push("errval", u32::from(errval));
            r.push("retval", retval);
            add("return", Value::Obj(r));
        }
    }
    for tok in tokens {
        if let Token::UsePrivilege { privs, .. } = tok {
            for p in privs.split(',') {
                doc.add_unique("bsm.privileges_used", [Some(Value::from(py_strip(p).to_owned()))]);
            }
        }
    }
    for tok in tokens {
        if let Token::UseAuthorization { authorization } = tok {
            doc.add_unique("bsm.authorizations_used", [Some(Value::from(authorization.clone()))]);
        }
    }
    let tokens_text = tokens_json(rec)?;
    let cut = has_long_strings(&tokens_text, FLAT_VALUE_LIMIT);
    if !rec.tokens.is_empty() {
        if cut {
            doc.put("bsm.tokens", Value::Raw(cap_strings(&tokens_text, FLAT_VALUE_LIMIT)));
            doc.put("bsm.tokens_full", python_dumps(&tokens_text));
            doc.add_unique("tags", [Some(Value::from("long_values_cut_in_index"))]);
        } else {
            doc.put("bsm.tokens", Value::Raw(tokens_text));
        }
    }
    if !rec.errors.is_empty() {
        doc.put("bsm.errors", Value::str_list(rec.errors.iter().cloned()));
        doc.put("event.reason", rec.errors.join("; "));
        doc.put("event.original", crate::json::hex_string(rec.raw));
        doc.add_unique("tags", [Some(Value::from("decode_error"))]);
    }

    related_users(&mut doc);
    let empty = Obj::new();
    let summary = doc.get_path("bsm.summary").and_then(Value::as_obj).unwrap_or(&empty);
    let message = summary_message(&doc, summary);
    doc.put("message", message);
    Ok(doc)
}

/// `_summary`: actor / action / object / how, the same shape as auditd.summary for Linux.
fn summary(
    rec: &Record<'_>,
    cat: &Categorized,
    paths: &[&str],
    remote_addr: Option<&str>,
    subj: Option<&Token>,
    texts: &[&str],
) -> Obj {
    let tokens = &rec.tokens;
    let mut actor = Obj::new();
    if let Some(Token::Subject { audit_uid, uid, .. }) = subj {
        if let Some(a) = id_text(*audit_uid) {
            actor.push("primary", a);
        }
        if let Some(e) = id_text(*uid) {
            actor.push("secondary", e);
        }
    }
    let mut obj = Obj::new();
    let kind = cat.object_type;
    if !kind.is_empty() {
        obj.push("type", kind);
    }
    let mut primary: Option<String> = None;
    let mut secondary: Option<String> = None;
    match kind {
        "file" | "filesystem" if !paths.is_empty() => {
            primary = Some(paths[0].to_owned());
            secondary = paths.get(1).map(|p| (*p).to_owned());
        }
        "socket" => primary = remote_addr.map(str::to_owned),
        "process" => {
            if let Some(Token::Subject { pid, .. }) =
                tokens.iter().find(|t| matches!(t, Token::Subject { process: true, .. }))
            {
                primary = Some(pid.to_string());
            } else {
                primary = tokens.iter().find_map(|t| match t {
                    Token::Argument { desc, value, .. } if desc == "pid" || desc == "process" => {
                        Some(value.to_string())
                    }
                    _ => None,
                });
            }
        }
        "user-session" => {
            if let Some(Token::Subject { tid, .. }) = subj {
                primary = Some(tid.host.clone());
            }
        }
        "account" => {
            if let Some(Token::User { uid, username }) = tokens.iter().find(|t| matches!(t, Token::User { .. })) {
                primary = Some(if username.is_empty() { uid.to_string() } else { username.clone() });
            } else if let Some(t) = texts.first() {
                primary = Some((*t).to_owned());
            }
        }
        _ => {}
    }
    if primary.is_none() && matches!(kind, "service" | "system" | "audit-config" | "") {
        primary = texts.first().map(|t| (*t).to_owned());
    }
    if let Some(p) = primary.filter(|p| !p.is_empty()) {
        obj.push("primary", p);
    }
    if let Some(s) = secondary.filter(|s| !s.is_empty()) {
        obj.push("secondary", s);
    }
    let mut summary = Obj::with_capacity(4);
    summary.push("action", Value::Str(cat.action.clone()));
    if !actor.is_empty() {
        summary.push("actor", actor);
    }
    if !obj.is_empty() {
        summary.push("object", obj);
    }
    let how = if EXEC_ACTIONS.contains(&&*cat.action) && !paths.is_empty() {
        Some(paths[0])
    } else {
        rec.event.map(|e| e.description).filter(|d| !d.is_empty())
    };
    if let Some(how) = how.filter(|h| !h.is_empty()) {
        summary.push("how", how.to_owned());
    }
    summary
}

/// What `Token::Argument` notes mean for the v1 shape (re-exported for `v1.rs`).
pub(crate) fn note_text(note: &ArgNote) -> Option<String> {
    match note {
        ArgNote::Text(t) => Some(t.clone()),
        ArgNote::Classes(c) => Some(c.join(",")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bsm::record::tests::{header32, header64, record, str16, text_token};
    use crate::bsm::record::{Limits, decode_record};
    use crate::ecs::common::{Observer, Source};

    fn parties() -> Parties {
        let source = Source { transport: "audit_remote".into(), peer: "192.0.2.7".into(), ..Source::default() };
        Parties::new(source, Observer { fields: vec![("name", Some("recv".into()))], ips: None })
    }

    fn ecs(data: &[u8]) -> Obj {
        let rec = decode_record(data, 0, true, Limits::default());
        bsm_to_ecs(&rec, &parties(), 1_700_000_000_000_000_000).expect("mapped")
    }

    fn text(doc: &Obj, path: &'static str) -> Option<String> {
        doc.get_path(path).and_then(Value::as_str).map(str::to_owned)
    }

    fn subject64(auid: u32, euid: u32, pid: u32, host: [u8; 4]) -> Vec<u8> {
        let mut v = vec![0x75];
        for x in [auid, euid, 10, euid, 10, pid, pid] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        v.extend_from_slice(&0x0BF1_1600u64.to_be_bytes());
        v.extend_from_slice(&host);
        v
    }

    #[test]
    fn categorized_from_the_table_the_classes_or_nothing() {
        let action = |event: u16| {
            let data = record(&header32(event, 1, 0, 2), &[], false);
            let c = categorize(&decode_record(&data, 0, true, Limits::default()));
            (c.action.into_owned(), c.object_type, c.category, c.types)
        };
        let (exec, object, _, _) = action(23); // AUE_EXECVE: a table row
        assert_eq!((exec.as_str(), object), ("executed", "file"));
        let unknown = action(65000); // no event name at all
        assert_eq!(unknown, ("event-65000".to_owned(), "", &["process"][..], &["info"][..]));
    }

    #[test]
    fn an_exec_record_names_its_actor_program_and_outcome() {
        let mut exec_args = vec![0x3C];
        exec_args.extend_from_slice(&2u32.to_be_bytes());
        exec_args.extend_from_slice(b"/usr/bin/ls\0-la\0");
        let mut path = vec![0x23];
        path.extend(str16(b"/usr/bin/ls"));
        let ret = [0x27, 13, 0, 0, 0, 0]; // EACCES
        let data = record(
            &header64(23, 1_700_000_000, 5, 2, 0),
            &[&exec_args, &path, &subject64(1001, 0, 42, [10, 0, 2, 15]), &ret],
            false,
        );
        let doc = ecs(&data);
        assert_eq!(text(&doc, "event.outcome").as_deref(), Some("failure"));
        assert_eq!(text(&doc, "error.code").as_deref(), Some("EACCES"));
        assert_eq!(text(&doc, "process.executable").as_deref(), Some("/usr/bin/ls"));
        assert_eq!(text(&doc, "process.title").as_deref(), Some("/usr/bin/ls -la"));
        assert_eq!(text(&doc, "user.audit.id").as_deref(), Some("1001"));
        assert_eq!(text(&doc, "file.directory").as_deref(), Some("/usr/bin"));
        assert_eq!(text(&doc, "message").as_deref(), Some("1001 executed /usr/bin/ls (failure)"));
        let keys: Vec<&str> = doc.entries.iter().map(|(k, _)| &**k).take(6).collect();
        assert_eq!(keys, ["@timestamp", "labels", "event", "error", "auditrecv", "host"]);
    }

    #[test]
    fn damaged_records_keep_their_bytes_and_unset_ids_are_left_out() {
        let mut data =
            record(&header32(1, 1, 0, 11), &[&text_token(b"x"), &subject64(u32::MAX, u32::MAX, 1, [0; 4])], false);
        data.push(0xEE);
        let doc = ecs(&data);
        assert!(text(&doc, "event.reason").is_some_and(|r| r.contains("after the record end")));
        assert_eq!(text(&doc, "event.original"), Some(crate::json::hex_string(&data[..data.len() - 1])));
        assert_eq!(doc.get_path("user.audit.id"), None);
        assert_eq!(doc.get_path("tags"), Some(&Value::str_list(["decode_error"])));
    }

    #[test]
    fn python_strip() {
        assert_eq!(py_strip("\u{1c} a b\u{a0}\t"), "a b");
    }
}
