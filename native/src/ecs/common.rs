//! Pieces every document shares, whatever its input kind: time text,
//! address normalisation, ids, where a record came from (`auditrecv.source.*`, `host.*`), who
//! received it (`observer.*`), `related.user` and the one-line `message`. Nothing here knows BSM or
//! Linux: the mappers (`bsm.rs`, later the Linux one) call these on their own documents.

use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::sync::{Arc, OnceLock};

use blake2b_simd::Params;

use super::value::{Obj, Text, Value};

pub const SCHEMA_NAME: &str = "ecs";

/// Where a record came from (`auditrecv.spool.record.Source`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Source {
    pub transport: String,
    pub peer: String,
    pub peer_port: u64,
    pub mech: String,
    pub principal: String,
    pub authenticated: bool,
    pub listener: String,
}

/// The receiver (`observer.*`): the pipeline's observer dict, values already as text (`str(value)`),
/// empty for absent or falsy ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observer {
    /// (key, value) for hostname, name, type, product, vendor, version as given (absent keys: None).
    pub fields: Vec<(&'static str, Option<String>)>,
    /// `observer["ip"]`: one address or a list (None when absent or of another type).
    pub ips: Option<Vec<String>>,
}

pub const OBSERVER_KEYS: [&str; 6] = ["hostname", "name", "type", "product", "vendor", "version"];

fn observer_default(key: &str) -> Option<&'static str> {
    match key {
        "type" => Some("audit-receiver"),
        "product" | "vendor" => Some("auditrecv"),
        _ => None,
    }
}

/// A Python exception as `repr(exc)` shows it, for `internal error: ...` dead letters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyError(pub String);

// ------------------------------------------------------------------------------------------ time

/// Days since 1970-01-01 -> (year, month, day) (proleptic Gregorian; H. Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Broken-down UTC time of Unix seconds, or the error `datetime.fromtimestamp(sec, UTC)` raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// 1-based day of the year.
    pub yday: u32,
}

/// `datetime.fromtimestamp(sec, UTC)` on a 64-bit glibc system: past `time_t` an OverflowError, past
/// `struct tm`'s int year gmtime's EOVERFLOW (an OSError), past year 9999 a ValueError.
pub fn civil(sec: u128) -> Result<Civil, PyError> {
    if sec > i64::MAX as u128 {
        return Err(PyError("OverflowError('timestamp out of range for platform time_t')".into()));
    }
    let sec = sec as i64;
    let days = sec.div_euclid(86_400);
    let rem = sec.rem_euclid(86_400) as u32;
    let (year, month, day) = civil_from_days(days);
    if year - 1900 > i64::from(i32::MAX) {
        let text = std::io::Error::from_raw_os_error(75).to_string();
        let text = text.split(" (os error").next().unwrap_or_default().to_owned();
        return Err(PyError(format!("OSError(75, {})", py_repr_str(&text))));
    }
    if year > 9999 {
        return Err(PyError(format!("ValueError('year {year} is out of range')")));
    }
    let (jan1, _, _) = (year, 1, 1);
    let yday = (days - days_from_civil(jan1, 1, 1)) as u32 + 1;
    Ok(Civil { year, month, day, hour: rem / 3600, minute: rem / 60 % 60, second: rem % 60, yday })
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

thread_local! {
    // Records arrive in bursts within one second, and event.created repeats one arrival time: the
    // seconds' text is worked out once per second (the Python code caches it too).
    static LAST_SECOND: std::cell::RefCell<(u128, String)> = const { std::cell::RefCell::new((u128::MAX, String::new())) };
}

/// `iso_ns`: RFC 3339 UTC with nine fractional digits.
pub fn iso_ns(time_ns: u128) -> Result<String, PyError> {
    let sec = time_ns / 1_000_000_000;
    let frac = (time_ns % 1_000_000_000) as u32;
    let mut out = String::with_capacity(30);
    let cached = LAST_SECOND.with_borrow(|(s, text)| {
        if *s == sec {
            out.push_str(text);
        }
        *s == sec
    });
    if !cached {
        let c = civil(sec)?;
        let text = format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", c.year, c.month, c.day, c.hour, c.minute, c.second);
        out.push_str(&text);
        LAST_SECOND.set((sec, text));
    }
    let mut digits = *b".000000000Z";
    let mut f = frac;
    for d in digits[1..10].iter_mut().rev() {
        *d = b'0' + (f % 10) as u8;
        f /= 10;
    }
    out.push_str(std::str::from_utf8(&digits).unwrap_or(".000000000Z"));
    Ok(out)
}

pub use crate::json::{hex_lower, num, octal};

/// Python's `repr()` of a str (printable text; quotes chosen as Python does).
pub fn py_repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

// ------------------------------------------------------------------------------------- addresses

fn ipv4_octets(s: &str) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut parts = s.split('.');
    for slot in &mut out {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        if part.len() > 1 && part.starts_with('0') {
            return None; // Python refuses octal-looking octets
        }
        *slot = part.parse::<u16>().ok().filter(|v| *v <= 255)? as u8;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(out)
}

/// IPv6 text as Python 3.11's `str(IPv6Address)`: lower-case hextets, the longest run (first of equal
/// ones, at least two) of zero hextets as `::`, IPv4-mapped addresses in hex like any other.
pub fn ipv6_text(addr: &Ipv6Addr) -> String {
    crate::linux::interpret::ipv6_text(addr)
}

fn parse_ipv6(s: &str) -> Option<Ipv6Addr> {
    // Rust's parser is stricter about nothing Python accepts here except the embedded IPv4 rule, which
    // both take from the same grammar; leading zeros in an embedded IPv4 part are refused by both.
    s.parse::<Ipv6Addr>().ok()
}

fn normalised_ip(text: &str) -> Option<String> {
    let t = text.trim_matches(|c| c == '[' || c == ']');
    if let Some(octets) = ipv4_octets(t) {
        // `{}.{}.{}.{}` of the octets, pushed digit by digit
        let mut out = String::with_capacity(15);
        for (i, o) in octets.into_iter().enumerate() {
            if i > 0 {
                out.push('.');
            }
            if o >= 100 {
                out.push(char::from(b'0' + o / 100));
            }
            if o >= 10 {
                out.push(char::from(b'0' + o / 10 % 10));
            }
            out.push(char::from(b'0' + o % 10));
        }
        return Some(out);
    }
    let (addr, scope) = match t.split_once('%') {
        Some((a, s)) => {
            if s.is_empty() || s.contains('%') {
                return None;
            }
            (a, Some(s))
        }
        None => (t, None),
    };
    if !addr.contains(':') {
        return None;
    }
    let ip = parse_ipv6(addr)?;
    let mut out = ipv6_text(&ip);
    if let Some(s) = scope {
        out.push('%');
        out.push_str(s);
    }
    Some(out)
}

/// `valid_ip`: normalised address text if `text` is an IP address (brackets stripped), else None.
pub fn valid_ip(text: &str) -> Option<String> {
    if text.is_empty() {
        return None;
    }
    normalised_ip(text)
}

/// `routable_ip`: `valid_ip`, but None for 0.0.0.0 and :: (BSM's "no remote peer").
pub fn routable_ip(text: &str) -> Option<String> {
    valid_ip(text).filter(|ip| ip != "0.0.0.0" && ip != "::")
}

// ------------------------------------------------------------------------------------ small rules

/// `id_text` of an unsigned 32-bit audit id: None for the unset markers (-1, -2).
pub fn id_text(value: u32) -> Option<String> {
    if value >= 4_294_967_294 { None } else { Some(num(value)) }
}

/// `basename`: the last path part (trailing slashes ignored), the path itself if that is empty.
pub fn basename(path: &str) -> Option<String> {
    basename_of(path).map(str::to_owned)
}

/// [`basename`] without a copy.
pub fn basename_of(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let trimmed = path.trim_end_matches('/');
    let base = trimmed.rsplit('/').next().unwrap_or("");
    Some(if base.is_empty() { path } else { base })
}

/// `file_type_from_mode`: ECS file.type from the S_IFMT bits.
pub fn file_type_from_mode(mode: u32) -> Option<&'static str> {
    match mode & 0o170000 {
        0o100000 => Some("file"),
        0o040000 => Some("dir"),
        0o120000 => Some("symlink"),
        0o020000 => Some("char_device"),
        0o060000 => Some("block_device"),
        0o010000 => Some("fifo"),
        0o140000 => Some("socket"),
        _ => None,
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64_URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64_with(data: &[u8], table: &[u8; 64], pad: bool) -> String {
    let sextet = |n: u32, i: u32| table[((n >> (18 - 6 * i)) & 63) as usize];
    let mut out = Vec::with_capacity(data.len().div_ceil(3) * 4);
    let whole = data.chunks_exact(3);
    let tail = whole.remainder();
    // four characters per three bytes, written as one block (a push per character costs more)
    for chunk in whole {
        let n = (u32::from(chunk[0]) << 16) | (u32::from(chunk[1]) << 8) | u32::from(chunk[2]);
        out.extend_from_slice(&[sextet(n, 0), sextet(n, 1), sextet(n, 2), sextet(n, 3)]);
    }
    if !tail.is_empty() {
        let n = (u32::from(tail[0]) << 16) | (u32::from(*tail.get(1).unwrap_or(&0)) << 8);
        let quad = [sextet(n, 0), sextet(n, 1), if tail.len() == 2 { sextet(n, 2) } else { b'=' }, b'='];
        out.extend_from_slice(if pad { &quad } else { &quad[..=tail.len()] });
    }
    // the tables and the padding are ASCII
    String::from_utf8(out).unwrap_or_default()
}

/// `base64.b64encode(data)`.
pub fn base64(data: &[u8]) -> String {
    base64_with(data, B64, true)
}

/// `base64.urlsafe_b64encode(data)` without the padding.
pub fn base64url_nopad(data: &[u8]) -> String {
    base64_with(data, B64_URL, false)
}

/// `short_hash(*parts)`: base64url of a personalised blake2b-96 of the length-framed parts
/// (`process.entity_id`).
pub fn short_hash(parts: &[&str]) -> String {
    let mut state = Params::new().hash_length(12).personal(b"auditrecv-ent-v1").to_state();
    for part in parts {
        state.update(&(part.len() as u32).to_be_bytes());
        state.update(part.as_bytes());
    }
    base64_with(state.finalize().as_bytes(), B64_URL, true)
}

/// [`short_hash`] of the last few distinct parts this thread hashed: a process makes many events in a
/// row, and its `process.entity_id` (sender, node, pid, session) is worked out once for them.
pub fn short_hash_remembered(parts: &[&str]) -> ShortHash {
    thread_local! {
        static RECENT: std::cell::RefCell<RecentHashes> = const { std::cell::RefCell::new(RecentHashes::new()) };
    }
    RECENT.with_borrow_mut(|recent| recent.hash(parts))
}

/// A [`short_hash`] (twelve bytes, sixteen base64url characters) held without an allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShortHash([u8; 16]);

impl ShortHash {
    fn of(hash: &str) -> ShortHash {
        ShortHash(hash.as_bytes().try_into().expect("twelve bytes are sixteen base64 characters"))
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The hashes of the last [`RecentHashes::SIZE`] distinct inputs, each under its length-framed parts.
struct RecentHashes {
    framed: Vec<u8>,
    entries: Vec<(Box<[u8]>, ShortHash)>,
    next: usize,
}

impl RecentHashes {
    const SIZE: usize = 8;

    const fn new() -> Self {
        RecentHashes { framed: Vec::new(), entries: Vec::new(), next: 0 }
    }

    fn hash(&mut self, parts: &[&str]) -> ShortHash {
        self.framed.clear();
        for part in parts {
            self.framed.extend_from_slice(&(part.len() as u32).to_be_bytes());
            self.framed.extend_from_slice(part.as_bytes());
        }
        if let Some((_, hash)) = self.entries.iter().find(|(framed, _)| **framed == *self.framed) {
            return *hash;
        }
        let hash = ShortHash::of(&short_hash(parts));
        let entry = (Box::from(&self.framed[..]), hash);
        if self.entries.len() < Self::SIZE {
            self.entries.push(entry);
        } else {
            self.entries[self.next] = entry;
            self.next = (self.next + 1) % Self::SIZE;
        }
        hash
    }
}

/// `principal_host`: `host/web1.example.com@REALM` -> `web1.example.com`.
pub fn principal_host(principal: &str) -> Option<&str> {
    if principal.is_empty() {
        return None;
    }
    let name = principal.split('@').next().unwrap_or("");
    let (service, instance) = name.split_once('/')?;
    if !instance.is_empty() && matches!(service, "host" | "auditd" | "audit" | "nfs") { Some(instance) } else { None }
}

// ------------------------------------------------------------------------------------------ errno

static ERRNO_MESSAGES: OnceLock<HashMap<String, String>> = OnceLock::new();

/// The errno name -> message table (`os.strerror(getattr(errno, name))` on this platform), given once
/// by the Python side when the module loads; names the platform lacks are absent.
pub fn set_errno_messages(table: HashMap<String, String>) {
    let _ = ERRNO_MESSAGES.set(table);
}

/// `errno_message(name)`.
pub fn errno_message(name: &str) -> Option<&'static str> {
    ERRNO_MESSAGES.get()?.get(name).map(String::as_str)
}

// ---------------------------------------------------------------------------- document sections

/// `source_fields`: event.provider and auditrecv.source.*, auditrecv.schema.
pub fn source_fields(doc: &mut Obj, source: &Source) {
    doc.put("event.provider", source.transport.clone());
    let meta = doc.section("auditrecv");
    let src = meta.section("source");
    for (name, value) in [
        ("transport", &source.transport),
        ("peer", &source.peer),
        ("mech", &source.mech),
        ("principal", &source.principal),
        ("listener", &source.listener),
    ] {
        if !value.is_empty() {
            src.set(name, value.clone());
        }
    }
    if source.peer_port != 0 {
        src.set("peer_port", source.peer_port);
    }
    src.set("authenticated", source.authenticated);
    meta.set("schema", SCHEMA_NAME);
}

/// What `host_fields` derives from the sender alone, worked out once per sender.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SenderHost {
    /// The authenticated principal's host (`principal_host`), if any.
    principal_host: Option<String>,
    /// Whether that host is an address (then it is no host.hostname).
    principal_host_is_ip: bool,
    /// `routable_ip(valid_ip(peer))`.
    peer_routable: Option<String>,
    peer_is_ip: bool,
}

impl SenderHost {
    pub fn new(source: &Source) -> Self {
        let principal_host =
            if source.authenticated { principal_host(&source.principal).map(str::to_owned) } else { None };
        let principal_host_is_ip = principal_host.as_deref().is_some_and(|h| valid_ip(h).is_some());
        let peer_ip = valid_ip(&source.peer);
        SenderHost {
            principal_host,
            principal_host_is_ip,
            peer_routable: peer_ip.as_deref().and_then(routable_ip),
            peer_is_ip: peer_ip.is_some(),
        }
    }
}

/// `host_fields`: host.* for the audited host (node name, else the authenticated principal's host,
/// else the peer), every address in host.ip and related.ip.
pub fn host_fields(doc: &mut Obj, source: &Source, node: Option<&str>, extra_ips: &[String]) {
    host_fields_of(doc, source, &SenderHost::new(source), node, extra_ips);
}

/// What `host_fields` writes for one document, without extra addresses: host.name, host.hostname,
/// the sender's routable address (host.ip and related.ip) and the name related.hosts gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostFacts<'p> {
    pub name: Option<&'p str>,
    pub hostname: Option<&'p str>,
    pub ip: Option<&'p str>,
    pub related_host: Option<&'p str>,
}

impl SenderHost {
    /// The host of a record from this sender naming `node` (the node name, else the authenticated
    /// principal's host, else the peer).
    pub fn facts<'p>(&'p self, source: &'p Source, node: Option<&'p str>) -> HostFacts<'p> {
        let (name, name_is_ip) = match node.filter(|n| !n.is_empty()) {
            Some(n) => (Some(n), valid_ip(n).is_some()),
            None => (self.principal_host.as_deref(), self.principal_host_is_ip),
        };
        // related.hosts gets host.name as written, unless it is an address
        let host_name = match name {
            Some(n) => Some((n, name_is_ip)),
            None if !source.peer.is_empty() => Some((source.peer.as_str(), self.peer_is_ip)),
            None => None,
        };
        HostFacts {
            name: host_name.map(|(n, _)| n),
            hostname: name.filter(|_| !name_is_ip),
            ip: self.peer_routable.as_deref(),
            related_host: host_name.filter(|(_, is_ip)| !is_ip).map(|(n, _)| n),
        }
    }
}

/// `host_fields` with the sender's part worked out already (once per batch).
pub fn host_fields_of(doc: &mut Obj, source: &Source, sender: &SenderHost, node: Option<&str>, extra_ips: &[String]) {
    let facts = sender.facts(source, node);
    doc.put_opt("host.name", facts.name.map(str::to_owned));
    doc.put_opt("host.hostname", facts.hostname.map(str::to_owned));
    if extra_ips.is_empty() {
        // the sender's address alone (every Linux document): no list to make
        if let Some(ip) = facts.ip {
            doc.add_unique("host.ip", [Some(Value::from(ip.to_owned()))]);
            doc.add_unique("related.ip", [Some(Value::from(ip.to_owned()))]);
        }
    } else {
        let ips: Vec<Option<Value>> = std::iter::once(sender.peer_routable.clone())
            .chain(extra_ips.iter().map(|s| routable_ip(s)))
            .map(|ip| ip.map(Value::from))
            .collect();
        doc.add_unique("host.ip", ips.iter().cloned());
        doc.add_unique("related.ip", ips);
    }
    if let Some(h) = facts.related_host {
        doc.add_unique("related.hosts", [Some(Value::from(h.to_owned()))]);
    }
}

/// `observer_fields`: observer.* for this receiver, with the constant product identity.
pub fn observer_fields(doc: &mut Obj, observer: &Observer) {
    let mut section = Obj::with_capacity(6);
    for key in OBSERVER_KEYS {
        let given = observer.fields.iter().find(|(k, _)| *k == key);
        let value: Option<Text> = match given {
            Some((_, v)) => v.clone().map(Text::from),
            None => observer_default(key).map(Text::from),
        };
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            section.push(key, v);
        }
    }
    if !section.is_empty() {
        let existing = doc.section("observer");
        for (k, v) in section.entries {
            existing.set(k, v);
        }
    }
    if let Some(ips) = &observer.ips {
        doc.add_unique("observer.ip", ips.iter().map(|ip| valid_ip(ip).map(Value::from)));
    }
}

/// One batch's sender and receiver, with what documents take from them worked out once: the
/// `auditrecv` section `source_fields` writes, the `observer` section `observer_fields` writes, the
/// sender's host facts and its identity for ids.
#[derive(Debug, Clone)]
pub struct Parties {
    pub source: Source,
    pub observer: Observer,
    pub identity: String,
    pub host: SenderHost,
    /// The auditrecv section (`auditrecv.source.*`, `auditrecv.schema`), and as JSON: documents hold the
    /// JSON unless something writes into the section later (enrichment's zlogin fields: [`thaw`]).
    auditrecv: Obj,
    auditrecv_json: Arc<[u8]>,
    /// The observer section as JSON: nothing writes into it after `observer_fields`.
    observer_section: Option<Arc<[u8]>>,
}

impl Parties {
    pub fn new(source: Source, observer: Observer) -> Self {
        let mut scratch = Obj::new();
        source_fields(&mut scratch, &source);
        observer_fields(&mut scratch, &observer);
        let auditrecv = match scratch.remove("auditrecv") {
            Some(Value::Obj(o)) => o,
            _ => Obj::new(),
        };
        let observer_section = match scratch.remove("observer") {
            Some(Value::Obj(o)) => o.to_json().ok().map(Arc::from),
            _ => None,
        };
        Parties {
            auditrecv_json: Arc::from(auditrecv.to_json().unwrap_or_default()),
            identity: super::ids::host_identity(&source),
            host: SenderHost::new(&source),
            source,
            observer,
            auditrecv,
            observer_section,
        }
    }

    /// `source_fields(doc, source)`, copying the section made once.
    pub fn source_fields(&self, doc: &mut Obj) {
        if doc.contains("auditrecv") {
            return source_fields(doc, &self.source);
        }
        doc.put("event.provider", self.source.transport.clone());
        doc.push("auditrecv", Value::Shared(Arc::clone(&self.auditrecv_json)));
    }

    /// The document's auditrecv section as an object again, to write into it.
    pub fn thaw(&self, doc: &mut Obj) {
        if let Some(section @ Value::Shared(_)) = doc.get_mut("auditrecv") {
            *section = Value::Obj(self.auditrecv.clone());
        }
    }

    /// `observer_fields(doc, observer)`, copying the section made once.
    pub fn observer_fields(&self, doc: &mut Obj) {
        if doc.contains("observer") {
            return observer_fields(doc, &self.observer);
        }
        if let Some(section) = &self.observer_section {
            doc.push("observer", Value::Shared(Arc::clone(section)));
        }
    }

    /// The auditrecv section's JSON (`auditrecv.source.*`, `auditrecv.schema`).
    pub fn auditrecv_json(&self) -> &[u8] {
        &self.auditrecv_json
    }

    /// The observer section's JSON, if it has one.
    pub fn observer_json(&self) -> Option<&[u8]> {
        self.observer_section.as_deref()
    }

    /// What `host_fields` writes for a record naming `node` (no extra addresses).
    pub fn host_facts<'p>(&'p self, node: Option<&'p str>) -> HostFacts<'p> {
        self.host.facts(&self.source, node)
    }

    /// `host_fields(doc, source, node, extra_ips)`.
    pub fn host_fields(&self, doc: &mut Obj, node: Option<&str>, extra_ips: &[String]) {
        host_fields_of(doc, &self.source, &self.host, node, extra_ips);
    }
}

const RELATED_USER_SUBS: [(&str, &[&str]); 5] = [
    ("effective", &["id", "name"]),
    ("audit", &["id", "name"]),
    ("saved", &["id"]),
    ("filesystem", &["id"]),
    ("target", &["id", "name"]),
];

/// `related_users`: related.user from every user id and name already in the document.
pub fn related_users(doc: &mut Obj) {
    let Some(user) = doc.get("user").and_then(Value::as_obj) else { return };
    // only the values add_unique would add are copied (most users repeat an id or a name)
    let listed = match doc.get_path("related.user") {
        Some(Value::List(items)) => &items[..],
        _ => &[],
    };
    let mut fresh: Vec<Value> = Vec::new();
    let mut consider = |v: Option<&Value>| {
        if let Some(v) = v.filter(|v| !matches!(v, Value::Null) && v.as_str() != Some("")) {
            if !fresh.contains(v) && !listed.contains(v) {
                fresh.push(v.clone());
            }
        }
    };
    consider(user.get("id"));
    consider(user.get("name"));
    for (sub, keys) in RELATED_USER_SUBS {
        if let Some(node) = user.get(sub).and_then(Value::as_obj) {
            keys.iter().for_each(|k| consider(node.get(k)));
        }
    }
    doc.add_unique("related.user", fresh.into_iter().map(Some));
}

fn truthy(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Int(i) => *i != 0,
        Value::UInt(u) => *u != 0,
        Value::Big(u) => *u != 0,
        Value::NegativeBig(_) => true,
        Value::Str(s) => !s.is_empty(),
        Value::List(l) => !l.is_empty(),
        Value::Obj(o) => !o.is_empty(),
        Value::Raw(_) | Value::Shared(_) => true,
        Value::Strs(l) => !l.is_empty(),
    })
}

/// Python's `str()` of a document value appended to `out` (strings as they are; the rest as JSON, which
/// for the values the mappers put in these fields is the same text).
fn push_py_str(out: &mut String, v: &Value) {
    match v {
        Value::Str(s) => out.push_str(s),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Null => out.push_str("None"),
        Value::Int(i) => out.push_str(itoa::Buffer::new().format(*i)),
        Value::UInt(u) => out.push_str(itoa::Buffer::new().format(*u)),
        Value::Big(u) => out.push_str(itoa::Buffer::new().format(*u)),
        Value::NegativeBig(n) => out.push_str(itoa::Buffer::new().format(*n)),
        other => {
            let mut w = crate::json::JsonWriter::default();
            let _ = other.write(&mut w);
            out.push_str(&String::from_utf8_lossy(&w.buf));
        }
    }
}

/// `summary_message`: `<actor> <action> <object> (<outcome>)`.
pub fn summary_message(doc: &Obj, summary: &Obj) -> String {
    // the user and event sections found once (each lookup by path scanned the document's keys again)
    let user = doc.get("user").and_then(Value::as_obj);
    let event = doc.get("event").and_then(Value::as_obj);
    let in_user = |path: &str| user.and_then(|u| u.get_path(path));
    let actor = truthy(in_user("audit.name"))
        .or_else(|| truthy(in_user("name")))
        .or_else(|| truthy(in_user("audit.id")))
        .or_else(|| in_user("id"));
    let action = truthy(summary.get("action")).or_else(|| truthy(event.and_then(|e| e.get("action"))));
    let object = summary.get("object").and_then(Value::as_obj).and_then(|o| truthy(o.get("primary")));
    let outcome = truthy(event.and_then(|e| e.get("outcome")));
    // sized for the usual message: one allocation
    let mut out = String::with_capacity(96);
    match actor {
        Some(a) if !matches!(a, Value::Null) => push_py_str(&mut out, a),
        _ => out.push_str("someone"),
    }
    out.push(' ');
    match action {
        Some(a) => push_py_str(&mut out, a),
        None => out.push_str("did"),
    }
    if let Some(o) = object {
        out.push(' ');
        push_py_str(&mut out, o);
    }
    out.push_str(" (");
    match outcome {
        Some(o) => push_py_str(&mut out, o),
        None => out.push_str("unknown"),
    }
    out.push(')');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_hashes_are_the_hashes_of_their_parts() {
        let mut recent = RecentHashes::new();
        // more distinct inputs than it remembers, each asked again at once and after the others
        let pids: Vec<String> = (0..RecentHashes::SIZE * 2 + 3).map(|p| p.to_string()).collect();
        for round in 0..2 {
            for pid in &pids {
                for parts in [["h", "node", pid.as_str(), "None"], ["h", "node", "1", pid.as_str()]] {
                    assert_eq!(recent.hash(&parts).as_str(), short_hash(&parts), "{parts:?} round {round}");
                    assert_eq!(recent.hash(&parts).as_str(), short_hash(&parts));
                }
            }
        }
        // the parts are framed by their lengths: moving text between parts is another input
        assert_eq!(recent.hash(&["ab", "c"]).as_str(), short_hash(&["ab", "c"]));
        assert_eq!(recent.hash(&["a", "bc"]).as_str(), short_hash(&["a", "bc"]));
        assert_ne!(recent.hash(&["ab", "c"]), recent.hash(&["a", "bc"]));
        assert_eq!(recent.entries.len(), RecentHashes::SIZE);
        assert_eq!(short_hash_remembered(&["x", "1"]).as_str(), short_hash(&["x", "1"]));
    }

    #[test]
    fn iso_and_python_time_errors() {
        assert_eq!(iso_ns(1_700_000_000_123_456_789).unwrap(), "2023-11-14T22:13:20.123456789Z");
        assert_eq!(iso_ns(0).unwrap(), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(iso_ns(253_402_300_799_000_000_000).unwrap(), "9999-12-31T23:59:59.000000000Z");
        assert_eq!(
            iso_ns(253_402_300_800_000_000_000),
            Err(PyError("ValueError('year 10000 is out of range')".into()))
        );
        assert_eq!(civil(1 << 40).unwrap_err().0, "ValueError('year 36812 is out of range')");
        assert!(civil(1 << 62).unwrap_err().0.starts_with("OSError(75, "));
        assert_eq!(civil(1 << 63).unwrap_err().0, "OverflowError('timestamp out of range for platform time_t')");
        assert_eq!(civil(86_400 * 365).unwrap().yday, 1);
        assert_eq!(civil(86_400 * 364).unwrap().yday, 365);
        // the cached second and another one
        assert_eq!(iso_ns(1_700_000_000_000_000_007).unwrap(), "2023-11-14T22:13:20.000000007Z");
        assert_eq!(iso_ns(1_700_000_001_000_000_000).unwrap(), "2023-11-14T22:13:21.000000000Z");
        assert_eq!(iso_ns(1_700_000_000_999_999_999).unwrap(), "2023-11-14T22:13:20.999999999Z");
        assert_eq!((hex_lower(0), hex_lower(0xbf11600)), ("0".into(), "bf11600".into()));
        assert_eq!((octal(0o644, 4), octal(0o100644, 4), octal(0, 1)), ("0644".into(), "100644".into(), "0".into()));
    }

    #[test]
    fn addresses_as_python_prints_them() {
        assert_eq!(valid_ip("::ffff:1.2.3.4").as_deref(), Some("::ffff:102:304"));
        assert_eq!(valid_ip("1:0:0:1:0:0:0:1").as_deref(), Some("1:0:0:1::1"));
        assert_eq!(valid_ip("[2001:DB8::1]").as_deref(), Some("2001:db8::1"));
        assert_eq!(valid_ip("fe80::1%eth0").as_deref(), Some("fe80::1%eth0"));
        assert_eq!(valid_ip("1:2:3:4:5:6:0:8").as_deref(), Some("1:2:3:4:5:6:0:8"));
        assert_eq!(valid_ip("01.2.3.4"), None);
        assert_eq!(valid_ip(" 1.2.3.4"), None);
        assert_eq!(valid_ip("golden-sender.example"), None);
        for o in 0..=255u8 {
            let text = format!("{o}.{}.{}.{o}", 255 - o, o / 7);
            assert_eq!(valid_ip(&text).as_deref(), Some(text.as_str()));
        }
        for scoped_wrong in ["fe80::1%", "fe80::1%a%b", "host%eth0", "%eth0"] {
            assert_eq!(valid_ip(scoped_wrong), None, "{scoped_wrong}");
        }
        assert_eq!(routable_ip("0.0.0.0"), None);
        assert_eq!(routable_ip("::"), None);
        assert_eq!(routable_ip("::0.0.0.0"), None);
    }

    #[test]
    fn small_rules() {
        assert_eq!(basename("/a/b/"), Some("b".into()));
        assert_eq!(basename("/"), Some("/".into()));
        assert_eq!(basename("x"), Some("x".into()));
        assert_eq!(id_text(4_294_967_295), None);
        assert_eq!(id_text(0), Some("0".into()));
        assert_eq!(principal_host("host/web1@R"), Some("web1"));
        assert_eq!(principal_host("alice@R"), None);
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64url_nopad(&[0xfb, 0xff]), "-_8");
        // every remainder length, against Python's base64
        for (data, padded, url) in [
            (&b"a"[..], "YQ==", "YQ"),
            (b"abc", "YWJj", "YWJj"),
            (b"abcd", "YWJjZA==", "YWJjZA"),
            (b"abcde", "YWJjZGU=", "YWJjZGU"),
        ] {
            assert_eq!((base64(data).as_str(), base64url_nopad(data).as_str()), (padded, url));
        }
        let high: Vec<u8> = (200..240).collect();
        assert_eq!(base64(&high), "yMnKy8zNzs/Q0dLT1NXW19jZ2tvc3d7f4OHi4+Tl5ufo6err7O3u7w==");
        assert_eq!(base64url_nopad(&high), "yMnKy8zNzs_Q0dLT1NXW19jZ2tvc3d7f4OHi4-Tl5ufo6err7O3u7w");
        assert_eq!(py_repr_str("it's"), "\"it's\"");
        // auditrecv.schema.common.short_hash("peer:x", 12, 34)
        assert_eq!(short_hash(&["peer:x", "12", "34"]), "cU8Z9K7Y623dNsMk");
    }
}
