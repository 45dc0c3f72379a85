//! Interpretation (Python `interpret.py`): per-field values the way libauparse 3.0.9 renders them,
//! and the actor/object facts of an event that the ECS mapper needs (syscall, outcome, rule keys,
//! user ids, process, paths, socket addresses, user-space message). Never fails: odd values stay raw.
//!
//! uid/gid names come only from the sender's ENRICHED section (or uid/gid 0 = root), never from this
//! machine's passwd.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::assemble::{Complete, Event, FastMap, FastSet};
use super::field_kinds::{FACT_NAMES, FIELD_KINDS, Kind};
use super::num::Num;
use super::pytext::{PyInt, ascii_digits, decode_lossy, is_decimal, py_int, py_int_digits};
use super::record::{Fields, Record};
use super::tables::{self, SyscallTable};

const UNSET_IDS: [&str; 2] = ["4294967295", "-1"];

fn is_unset(raw: &str) -> bool {
    UNSET_IDS.contains(&raw)
}

/// A field name's place in the name table `build.rs` makes (`NAME_SLOTS`): 1 + its index in FIELD_KINDS
/// then FACT_NAMES, 0 for any other name. Looked up once per field (a probe or two), then read by the
/// rendering and by the facts, which matched the names again.
pub type NameId = u8;

const NAME_COUNT: usize = FIELD_KINDS.len() + FACT_NAMES.len();
const _: () = assert!(NAME_COUNT < u128::BITS as usize); // the ids are bits of a u128 (`Seen`)

const fn name_at(i: usize) -> &'static str {
    if i < FIELD_KINDS.len() { FIELD_KINDS[i].0 } else { FACT_NAMES[i - FIELD_KINDS.len()] }
}

#[inline]
pub fn name_id(name: &str) -> NameId {
    use tables::{NAME_SLOTS, NAME_SLOTS_BITS, NAME_SLOTS_KEYS, NAME_SLOTS_SEED};
    match tables::find_name(name, &NAME_SLOTS, &NAME_SLOTS_KEYS, NAME_SLOTS_SEED, NAME_SLOTS_BITS, name_at) {
        Some(i) => i as NameId + 1,
        None => 0,
    }
}

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut k = 0;
    while k < a.len() && a[k] == b[k] {
        k += 1;
    }
    k == a.len()
}

/// The id of a name of the table, for constants (a name that is not there fails the build).
const fn id(name: &str) -> NameId {
    let mut i = 0;
    while i < NAME_COUNT {
        if same(name_at(i), name) {
            return (i + 1) as NameId;
        }
        i += 1;
    }
    panic!("not a name of FIELD_KINDS or FACT_NAMES")
}

/// The ids of the names the facts and the rendering single out.
mod names {
    use super::{NameId, id};
    pub const ARCH: NameId = id("arch");
    pub const SYSCALL: NameId = id("syscall");
    pub const EXIT: NameId = id("exit");
    pub const SUCCESS: NameId = id("success");
    pub const ITEMS: NameId = id("items");
    pub const A0: NameId = id("a0");
    pub const A1: NameId = id("a1");
    pub const A2: NameId = id("a2");
    pub const A3: NameId = id("a3");
    pub const OP: NameId = id("op");
    pub const ACCT: NameId = id("acct");
    pub const EXE: NameId = id("exe");
    pub const HOSTNAME: NameId = id("hostname");
    pub const ADDR: NameId = id("addr");
    pub const TERMINAL: NameId = id("terminal");
    pub const RES: NameId = id("res");
    pub const ID: NameId = id("id");
    pub const GRANTORS: NameId = id("grantors");
    pub const UID: NameId = id("uid");
    pub const NAME: NameId = id("name");
    pub const ITEM: NameId = id("item");
    pub const INODE: NameId = id("inode");
    pub const MODE: NameId = id("mode");
    pub const MODE_TEXT: NameId = id("mode_text");
    pub const OUID: NameId = id("ouid");
    pub const OGID: NameId = id("ogid");
    pub const SADDR: NameId = id("saddr");
    pub const PROCTITLE: NameId = id("proctitle");
    pub const CWD: NameId = id("cwd");
}

/// The rendering of each name id (None: none of its own).
static KINDS: [Option<Kind>; NAME_COUNT + 1] = {
    let mut kinds = [None; NAME_COUNT + 1];
    let mut i = 0;
    while i < FIELD_KINDS.len() {
        kinds[i + 1] = Some(FIELD_KINDS[i].1);
        i += 1;
    }
    kinds
};

#[inline]
fn kind_of(id: NameId) -> Option<Kind> {
    KINDS[usize::from(id)]
}

/// The rendering of a field name.
#[cfg(test)]
fn kind(name: &str) -> Option<Kind> {
    kind_of(name_id(name))
}

/// Record types whose "id" field is a uid or a gid (libauparse typetab.h / interpret.c).
fn id_is_user_or_group(type_name: &str) -> bool {
    matches!(
        type_name,
        "ADD_GROUP"
            | "DEL_GROUP"
            | "GRP_MGMT"
            | "GRP_CHAUTHTOK"
            | "ADD_USER"
            | "DEL_USER"
            | "USER_MGMT"
            | "USER_CHAUTHTOK"
            | "USER_LOGIN"
            | "USER_LOGOUT"
            | "USER_ACCT"
            | "ACCT_LOCK"
            | "ACCT_UNLOCK"
            | "USER_AUTH"
            | "USER_ERR"
            | "USER_START"
            | "USER_END"
            | "CRED_ACQ"
            | "CRED_DISP"
            | "CRED_REFR"
            | "USER_ROLE_CHANGE"
            | "USER_CMD"
            | "USER_TTY"
            | "GRP_AUTH"
            | "USER_DEVICE"
    )
}

// -- value decoding --------------------------------------------------------------------------------

/// The value of each hex digit, 0xFF for the other bytes.
static HEX_VALUES: [u8; 256] = {
    let mut t = [0xFF; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// `bytes.fromhex(s)` of a string of hex pairs (`(?:[0-9A-Fa-f]{2})*` fullmatch), None for anything else.
fn from_hex(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if b.len() % 2 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(b.len() / 2);
    for pair in b.chunks_exact(2) {
        let (high, low) = (HEX_VALUES[pair[0] as usize], HEX_VALUES[pair[1] as usize]);
        if (high | low) > 15 {
            return None;
        }
        out.push(high << 4 | low);
    }
    Some(out)
}

/// Value of an escaped field: quoted text unquoted, bare hex decoded, `(null)`/`?` kept literal.
pub fn unescape(value: &str) -> Cow<'_, str> {
    if value.is_empty() {
        return Cow::Borrowed(value);
    }
    if let Some(rest) = value.strip_prefix('"') {
        return Cow::Borrowed(rest.strip_suffix('"').unwrap_or(rest));
    }
    if value == "(null)" || value == "?" {
        return Cow::Borrowed(value);
    }
    match from_hex(value) {
        Some(bytes) => Cow::Owned(bytes_to_text(bytes)),
        None => Cow::Borrowed(value),
    }
}

/// Decoded bytes as text, invalid UTF-8 as `\xNN` (no copy when valid).
fn bytes_to_text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| decode_lossy(e.as_bytes()).into_owned())
}

/// Strip one level of double or single quotes (fields that are never hex-encoded).
pub fn unquote(value: &str) -> &str {
    let b = value.as_bytes();
    if b.len() >= 2 && b[0] == b[b.len() - 1] && matches!(b[0], b'"' | b'\'') {
        &value[1..value.len() - 1]
    } else {
        value
    }
}

fn errno_of(exit: &PyInt) -> Option<(&'static str, &'static str)> {
    if exit.value >= 0 {
        return None;
    }
    i64::try_from(-exit.value).ok().and_then(tables::errno)
}

/// The name and syscall table of an arch.
type ArchInfo = (&'static str, Option<SyscallTable>);

/// Name and syscall table of an `arch=` value.
fn arch_info(raw: &str) -> Option<ArchInfo> {
    let value = py_int(raw, 16)?;
    tables::arch(i64::try_from(value.value).ok()?)
}

/// The rendering of an `arch=` value whose `arch_info` is known.
fn arch_text<'a>(info: Option<ArchInfo>, record: &'a Record, raw: &'a str) -> Cow<'a, str> {
    match info {
        Some((name, _)) => Cow::Borrowed(name),
        None => Cow::Borrowed(record.enriched.get("ARCH").filter(|s| !s.is_empty()).unwrap_or(raw)),
    }
}

/// `0100755` -> `file,755` (libauparse style).
pub fn interpret_mode(value: &str) -> Cow<'_, str> {
    let Some(mode) = py_int(value, 8) else { return Cow::Borrowed(value) };
    let mut out = String::with_capacity(40);
    push_mode(&mut out, mode.low);
    Cow::Owned(out)
}

/// The rendering of the mode bits `bits` appended to `out`.
fn push_mode(out: &mut String, bits: u64) {
    let file_type = bits & 0o170000;
    match file_type {
        0o140000 => out.push_str("socket"),
        0o120000 => out.push_str("link"),
        0o100000 => out.push_str("file"),
        0o060000 => out.push_str("block"),
        0o040000 => out.push_str("dir"),
        0o020000 => out.push_str("character"),
        0o010000 => out.push_str("fifo"),
        other => {
            out.push_str("unknown-type(");
            push_octal(out, other, 1);
            out.push(')');
        }
    }
    for (bit, name) in [(0o4000, ",suid"), (0o2000, ",sgid"), (0o1000, ",sticky")] {
        if bits & bit != 0 {
            out.push_str(name);
        }
    }
    out.push(',');
    push_octal(out, bits & 0o777, 3);
}

/// `format(n, "0<width>o")` appended to `out`.
fn push_octal(out: &mut String, n: u64, width: usize) {
    let mut digits = [b'0'; 22];
    let (mut n, mut at) = (n, digits.len());
    while n != 0 || at == digits.len() {
        at -= 1;
        digits[at] = b'0' + (n & 7) as u8;
        n >>= 3;
    }
    let at = at.min(digits.len() - width.min(digits.len()));
    out.extend(digits[at..].iter().map(|&d| char::from(d)));
}

/// A decoded `struct sockaddr` (interpret.py `decode_sockaddr`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SockAddr<'a> {
    Error { error: &'static str, raw: &'a str },
    Inet { address: Ipv4Addr, port: u16 },
    Inet6 { address: Ipv6Addr, port: u16, scope_id: Option<u32> },
    Local { path: String },
    Netlink { pid: u32, groups: u32 },
    Other { family: Cow<'static, str>, number: u16 },
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

pub fn decode_sockaddr(value: &str) -> SockAddr<'_> {
    let Some(data) = from_hex(value) else { return SockAddr::Error { error: "saddr is not hex", raw: value } };
    if data.len() < 2 {
        return SockAddr::Error { error: "saddr too short", raw: value };
    }
    let mut family = u16::from_le_bytes([data[0], data[1]]);
    if family > 0xFF {
        // big-endian sender (s390x, ppc): family bytes are 00 0x
        family = u16::from_be_bytes([data[0], data[1]]);
    }
    let port = || u16::from_be_bytes([data[2], data[3]]);
    match family {
        2 if data.len() >= 8 => {
            SockAddr::Inet { address: Ipv4Addr::new(data[4], data[5], data[6], data[7]), port: port() }
        }
        10 if data.len() >= 24 => {
            let octets: [u8; 16] = data[8..24].try_into().expect("16 bytes");
            let scope_id = (data.len() >= 28).then(|| le32(&data[24..28]));
            SockAddr::Inet6 { address: Ipv6Addr::from(octets), port: port(), scope_id }
        }
        1 => {
            let bytes = &data[2..];
            let cut = |b: &[u8]| decode_lossy(b.split(|&c| c == 0).next().unwrap_or(b)).into_owned();
            let path = if bytes.first() == Some(&0) { format!("@{}", cut(&bytes[1..])) } else { cut(bytes) };
            SockAddr::Local { path }
        }
        16 if data.len() >= 12 => SockAddr::Netlink { pid: le32(&data[4..8]), groups: le32(&data[8..12]) },
        _ => {
            let name = match family {
                3 => "ax25",
                4 => "ipx",
                5 => "appletalk",
                17 => "packet",
                31 => "bluetooth",
                38 => "alg",
                40 => "vsock",
                44 => "xdp",
                _ => "",
            };
            let family_name =
                if name.is_empty() { Cow::Owned(format!("unknown-family({family})")) } else { Cow::Borrowed(name) };
            SockAddr::Other { family: family_name, number: family }
        }
    }
}

/// `str(ipaddress.IPv6Address(...))` of Python 3.11: the longest run of two or more zero groups (the
/// first of equals) as `::`, IPv4-mapped addresses in hex like the rest.
pub fn ipv6_text(address: &Ipv6Addr) -> String {
    let groups = address.segments();
    let (mut best_start, mut best_len, mut start, mut len) = (0usize, 0usize, 0usize, 0usize);
    for (i, &g) in groups.iter().enumerate() {
        if g == 0 {
            if len == 0 {
                start = i;
            }
            len += 1;
            if len > best_len {
                best_len = len;
                best_start = start;
            }
        } else {
            len = 0;
        }
    }
    // the hextets as `{:x}` writes them, joined by `:`, pushed one digit at a time (no text per hextet)
    let hex = |out: &mut String, gs: &[u16]| {
        for (i, &g) in gs.iter().enumerate() {
            if i > 0 {
                out.push(':');
            }
            let digits = (16 - g.leading_zeros()).div_ceil(4).max(1);
            for d in (0..digits).rev() {
                out.push(char::from(b"0123456789abcdef"[usize::from(g >> (4 * d) & 15)]));
            }
        }
    };
    let mut out = String::with_capacity(39);
    if best_len > 1 {
        hex(&mut out, &groups[..best_start]);
        out.push_str("::");
        hex(&mut out, &groups[best_start + best_len..]);
    } else {
        hex(&mut out, &groups);
    }
    out
}

/// libauparse's rendering, e.g. `{ saddr_fam=inet laddr=192.0.2.1 lport=80 }`.
pub fn sockaddr_text(decoded: &SockAddr<'_>) -> String {
    match decoded {
        SockAddr::Inet { address, port } => format!("{{ saddr_fam=inet laddr={address} lport={port} }}"),
        SockAddr::Inet6 { address, port, .. } => {
            format!("{{ saddr_fam=inet6 laddr={} lport={port} }}", ipv6_text(address))
        }
        SockAddr::Local { path } => format!("{{ saddr_fam=local path={path} }}"),
        SockAddr::Netlink { pid, .. } => format!("{{ saddr_fam=netlink nlnk-fam=16 nlnk-pid={pid} }}"),
        SockAddr::Other { family, .. } if family.starts_with("unknown-family") => family.to_string(),
        SockAddr::Other { family, .. } => format!("{{ saddr_fam={family} }}"),
        SockAddr::Error { .. } => "{ saddr_fam=None }".to_owned(),
    }
}

/// Audit rule keys: decoded, split on 0x01; `(null)` means none.
pub fn split_keys(value: &str) -> Vec<String> {
    if value.starts_with("(null)") {
        return Vec::new();
    }
    let value = if value.starts_with('"') { value } else { value.trim_end_matches('"') };
    unescape(value).split('\x01').filter(|k| !k.is_empty()).map(str::to_owned).collect()
}

// -- per-field interpretation ----------------------------------------------------------------------

fn id_text<'a>(raw: &'a str, enriched: &'a Fields, name: &str) -> Cow<'a, str> {
    if is_unset(raw) {
        return Cow::Borrowed("unset");
    }
    if !enriched.is_empty() {
        if let Some(named) = enriched.get_upper(name).filter(|n| !n.is_empty()) {
            return Cow::Borrowed(named);
        }
    }
    Cow::Borrowed(if raw == "0" { "root" } else { raw })
}

/// `aN` or `aN[i]` (not `aN_len`): (N, i) as written.
fn execve_arg_parts(name: &str) -> Option<(&str, Option<&str>)> {
    let rest = name.strip_prefix('a')?;
    if is_decimal(rest) {
        return Some((rest, None));
    }
    let (index, chunk) = rest.strip_suffix(']')?.split_once('[')?;
    (is_decimal(index) && is_decimal(chunk)).then_some((index, Some(chunk)))
}

/// Human-readable value of one field (libauparse-like); unknown kinds are returned unquoted.
pub fn interpret_field<'a>(record: &'a Record, name: &str, raw: &'a str, table: Option<SyscallTable>) -> Cow<'a, str> {
    let mut made = Made::default();
    match interpret_value(record, name_id(name), name, raw, table, &mut made) {
        Val::Text(text) => Cow::Borrowed(text),
        Val::Made(from, to) => Cow::Owned(made.text[from..to].to_owned()),
    }
}

/// An interpreted value: a slice of its record's line (or a static text), or a text made while rendering,
/// in the event's [`Made`] text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Val<'a> {
    Text(&'a str),
    Made(usize, usize),
}

impl<'a> Val<'a> {
    /// The value's text, `made` the text the event's made values are in.
    #[inline]
    pub fn resolve<'s>(self, made: &'s str) -> &'s str
    where
        'a: 's,
    {
        match self {
            Val::Text(text) => text,
            Val::Made(from, to) => &made[from..to],
        }
    }
}

/// The texts the interpretation of an event makes (decoded hex, `0x` and an argument, errno and mode
/// texts), one after the other in one buffer instead of a `String` each, and a buffer for decoding bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Made {
    text: String,
    bytes: Vec<u8>,
}

impl Made {
    /// The made text appended since `from`, as a value.
    #[inline]
    fn since<'a>(&self, from: usize) -> Val<'a> {
        Val::Made(from, self.text.len())
    }

    /// `parts` one after the other, as a value.
    #[inline]
    fn concat<'a>(&mut self, parts: &[&str]) -> Val<'a> {
        let from = self.text.len();
        for part in parts {
            self.text.push_str(part);
        }
        self.since(from)
    }

    /// A rendering that made a text of its own, kept here.
    #[inline]
    fn cow<'a>(&mut self, value: Cow<'a, str>) -> Val<'a> {
        match value {
            Cow::Borrowed(text) => Val::Text(text),
            Cow::Owned(text) => self.concat(&[&text]),
        }
    }

    /// [`unescape`], hex decoded into this text (no `String` of its own).
    fn unescape<'a>(&mut self, value: &'a str) -> Val<'a> {
        if value.is_empty() || value == "(null)" || value == "?" {
            return Val::Text(value);
        }
        if let Some(rest) = value.strip_prefix('"') {
            return Val::Text(rest.strip_suffix('"').unwrap_or(rest));
        }
        let b = value.as_bytes();
        if b.len() % 2 != 0 {
            return Val::Text(value);
        }
        self.bytes.clear();
        for pair in b.chunks_exact(2) {
            let (high, low) = (HEX_VALUES[pair[0] as usize], HEX_VALUES[pair[1] as usize]);
            if (high | low) > 15 {
                return Val::Text(value);
            }
            self.bytes.push(high << 4 | low);
        }
        let from = self.text.len();
        match std::str::from_utf8(&self.bytes) {
            Ok(text) => self.text.push_str(text),
            Err(_) => self.text.push_str(&decode_lossy(&self.bytes)),
        }
        self.since(from)
    }

    /// The made text of a value.
    #[inline]
    pub fn text(&self) -> &str {
        &self.text
    }

    pub(crate) fn clear(&mut self) {
        self.text.clear();
    }
}

/// `interpret_field` of a field whose name id is known, a text it makes kept in `made`.
pub(crate) fn interpret_value<'a>(
    record: &'a Record,
    id: NameId,
    name: &str,
    raw: &'a str,
    table: Option<SyscallTable>,
    made: &mut Made,
) -> Val<'a> {
    let Some(kind) = kind_of(id) else {
        if record.type_name == "EXECVE" && execve_arg_parts(name).is_some() {
            return made.unescape(raw);
        }
        return Val::Text(unquote(raw));
    };
    let enriched = &record.enriched;
    match kind {
        Kind::Id => made.cow(id_text(raw, enriched, name)),
        Kind::TypeDependentId if id_is_user_or_group(&record.type_name) => made.cow(id_text(raw, enriched, name)),
        Kind::TypeDependentId => Val::Text(unquote(raw)),
        Kind::Key if raw.starts_with("(null)") => Val::Text("(null)"),
        Kind::Key => {
            // `",".join(split_keys(raw))`, with no list made for one key
            let text = unescape(if raw.starts_with('"') { raw } else { raw.trim_end_matches('"') });
            if text.contains('\x01') {
                made.cow(Cow::Owned(text.split('\x01').filter(|k| !k.is_empty()).collect::<Vec<_>>().join(",")))
            } else {
                made.cow(text)
            }
        }
        Kind::Escaped => made.unescape(raw),
        Kind::Proctitle => match made.unescape(raw) {
            Val::Made(from, to) if made.text[from..to].contains('\0') => {
                // NULs between the arguments as spaces, the trailing ones dropped
                let spaced = made.text[from..to].replace('\0', " ");
                made.text.truncate(from);
                made.text.push_str(spaced.trim_end_matches(' '));
                made.since(from)
            }
            Val::Text(text) if text.contains('\0') => {
                made.cow(Cow::Owned(text.replace('\0', " ").trim_end_matches(' ').to_owned()))
            }
            value => value,
        },
        Kind::Syscall => {
            let number = py_int(raw, 10).and_then(|n| i64::try_from(n.value).ok());
            if let Some(name) = table.zip(number).and_then(|(t, n)| tables::syscall_name(t, n)) {
                return Val::Text(name);
            }
            Val::Text(enriched.get("SYSCALL").filter(|s| !s.is_empty()).unwrap_or(raw))
        }
        Kind::Arch => made.cow(arch_text(arch_info(raw), record, raw)),
        Kind::Exit => {
            if !raw.starts_with('-') {
                return Val::Text(raw);
            }
            match py_int(raw, 10).as_ref().and_then(errno_of) {
                Some((name, text)) => made.concat(&[name, "(", text, ")"]),
                None => Val::Text(raw),
            }
        }
        Kind::Result => Val::Text(match raw {
            "1" => "yes",
            "0" => "no",
            _ => unquote(raw),
        }),
        Kind::Session => Val::Text(if is_unset(raw) { "unset" } else { raw }),
        Kind::Mode => {
            let Some(mode) = py_int(raw, 8) else { return Val::Text(raw) };
            let from = made.text.len();
            push_mode(&mut made.text, mode.low);
            made.since(from)
        }
        Kind::Sockaddr => made.cow(Cow::Owned(sockaddr_text(&decode_sockaddr(raw)))),
        // plain hex digits (what the kernel writes): `int(raw, 16)` without the general parser
        Kind::Capability if !raw.is_empty() && raw.bytes().all(|c| c.is_ascii_hexdigit()) => {
            let digits = raw.trim_start_matches('0');
            if digits.is_empty() {
                Val::Text("none")
            } else {
                let from = made.text.len();
                made.text.push_str("0x");
                made.text.extend(digits.chars().map(|c| c.to_ascii_lowercase()));
                made.since(from)
            }
        }
        Kind::Capability => match py_int_digits(raw, 16) {
            None => Val::Text(raw),
            Some((neg, _, digits)) => {
                let digits = digits.trim_start_matches('0');
                if digits.is_empty() {
                    Val::Text("none")
                } else {
                    made.concat(&["0x", if neg { "-" } else { "" }, digits])
                }
            }
        },
        Kind::SyscallArg => match &*record.type_name {
            "SYSCALL" => made.concat(&["0x", raw]),
            "EXECVE" => made.unescape(raw),
            _ => Val::Text(unquote(raw)),
        },
        Kind::FilterList => Val::Text(match raw {
            "0" => "user",
            "1" => "task",
            "4" => "exit",
            "5" => "exclude",
            "6" => "filesystem",
            "7" => "io_uring",
            _ => raw,
        }),
        Kind::Promiscuous => match py_int(raw, 10) {
            None => Val::Text(raw),
            Some(n) => Val::Text(if n.low & 0x100 != 0 { "yes" } else { "no" }),
        },
        Kind::TtyData if matches!(&*record.type_name, "TTY" | "USER_TTY") => made.unescape(raw),
        Kind::TtyData => Val::Text(unquote(raw)),
    }
}

// -- event-level facts -----------------------------------------------------------------------------

/// RFC 3339 UTC with milliseconds, e.g. 2017-04-21T05:28:42.985Z; None beyond year 9999 (where
/// Python's datetime gives up).
pub fn iso_time(time_ns: &Num) -> Option<String> {
    let Num::Small(ns) = time_ns else { return None };
    let sec = ns / 1_000_000_000;
    let ms = (ns % 1_000_000_000) / 1_000_000;
    if sec > 253_402_300_799 {
        return None;
    }
    let sec = sec as i64;
    let (days, rest) = (sec.div_euclid(86_400), sec.rem_euclid(86_400));
    // civil_from_days (Howard Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // written by hand: this runs for every event, and format! costs more than the rest of it
    Some(format_iso(year, month, day, rest, ms as i64))
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`
fn format_iso(year: i64, month: i64, day: i64, second_of_day: i64, ms: i64) -> String {
    let mut out = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, n: i64, width: usize| {
        let mut n = n;
        for k in (at..at + width).rev() {
            out[k] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, year, 4);
    put(5, month, 2);
    put(8, day, 2);
    put(11, second_of_day / 3600, 2);
    put(14, second_of_day % 3600 / 60, 2);
    put(17, second_of_day % 60, 2);
    put(20, ms, 3);
    std::str::from_utf8(&out).expect("ASCII digits").to_owned()
}

fn chunk_bytes(raw: &str) -> Vec<u8> {
    if raw.starts_with('"') {
        return unescape(raw).as_bytes().to_vec();
    }
    from_hex(raw).unwrap_or_else(|| raw.as_bytes().to_vec())
}

/// An argument of `aN="text"` or `aN=HEX` (Python `_execve_args`).
fn whole_arg(raw: &str) -> Cow<'_, str> {
    let b = raw.as_bytes();
    if b.len() > 1 && b[0] == b'"' && b[b.len() - 1] == b'"' {
        Cow::Borrowed(&raw[1..raw.len() - 1])
    } else {
        unescape(raw)
    }
}

/// The common case of `execve_args`: one record, `argc` then `a0`, `a1`, ... in order (no chunks,
/// no `aN_len`, nothing else). None when the record is anything else.
fn simple_execve_args(record: &Record) -> Option<(Option<PyInt>, Vec<Cow<'_, str>>)> {
    let mut fields = record.fields.iter();
    let (first, raw) = fields.next()?;
    if first != "argc" {
        return None;
    }
    let argc = py_int(raw, 10);
    let mut args = Vec::with_capacity(record.fields.len() - 1);
    let mut digits = itoa::Buffer::new();
    for (name, raw) in fields {
        if name.strip_prefix('a') != Some(digits.format(args.len())) {
            return None;
        }
        args.push(whole_arg(raw));
    }
    Some((argc, args))
}

/// argc and argv from one or more EXECVE records, joining `aN[i]` chunks (borrowed from the lines
/// where an argument is written whole and quoted).
pub fn execve_args<'a>(records: &[&'a Record]) -> (Option<PyInt>, Vec<Cow<'a, str>>) {
    if let [record] = records {
        if let Some(found) = simple_execve_args(record) {
            return found;
        }
    }
    let mut argc = None;
    let mut whole: FastMap<u64, Cow<'a, str>> = FastMap::default();
    let mut chunks: BTreeMap<u64, BTreeMap<u64, &str>> = BTreeMap::new();
    for record in records {
        for (name, raw) in record.fields.iter() {
            if name == "argc" {
                argc = py_int(raw, 10);
                continue;
            }
            let Some((index, chunk)) = execve_arg_parts(name) else { continue };
            // not argument numbers a kernel writes (and int() of 4300+ digits raises)
            if index.chars().count() >= 10 || chunk.is_some_and(|c| c.chars().count() >= 10) {
                continue;
            }
            let index: u64 = ascii_digits(index).parse().unwrap_or(0);
            match chunk {
                None => {
                    whole.insert(index, whole_arg(raw));
                }
                Some(chunk) => {
                    chunks.entry(index).or_default().insert(ascii_digits(chunk).parse().unwrap_or(0), raw);
                }
            }
        }
    }
    for (index, parts) in chunks {
        // a hex-encoded argument may be cut anywhere: decode each chunk to bytes, then join the bytes
        let bytes: Vec<u8> = parts.values().flat_map(|raw| chunk_bytes(raw)).collect();
        whole.insert(index, Cow::Owned(decode_lossy(&bytes).into_owned()));
    }
    let Some(&top) = whole.keys().max() else { return (argc, Vec::new()) };
    // gaps are bounded by what was sent, never by the sender's argc ("argc=999999999999 a200000=x")
    let args = if u128::from(top) < whole.len() as u128 + 1024 {
        // a missing chunk record leaves a gap: keep its place
        (0..=top).map(|i| whole.remove(&i).unwrap_or_default()).collect()
    } else {
        // a numbering no kernel writes (a99999999=...): never pad it, keep what was sent, in order
        let mut keys: Vec<u64> = whole.keys().copied().collect();
        keys.sort_unstable();
        keys.iter().map(|k| whole.remove(k).unwrap_or_default()).collect()
    };
    (argc, args)
}

/// At most `N` items, kept in place: the facts' short lists that every event has (no heap list to make
/// and free), read as slices.
#[derive(Debug, Clone)]
pub struct Few<T, const N: usize> {
    items: [T; N],
    len: usize,
}

impl<T: Default, const N: usize> Default for Few<T, N> {
    fn default() -> Self {
        Few { items: std::array::from_fn(|_| T::default()), len: 0 }
    }
}

impl<T, const N: usize> Few<T, N> {
    /// Appends `item` (the callers never make more than `N`; a further one would be dropped).
    fn push(&mut self, item: T) {
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = item;
            self.len += 1;
        }
    }
}

impl<T, const N: usize> std::ops::Deref for Few<T, N> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.items[..self.len]
    }
}

impl<'s, T, const N: usize> IntoIterator for &'s Few<T, N> {
    type Item = &'s T;
    type IntoIter = std::slice::Iter<'s, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<T: PartialEq, const N: usize> PartialEq for Few<T, N> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

/// The syscall of a SYSCALL event.
#[derive(Debug, Clone, PartialEq)]
pub struct SyscallFacts<'a> {
    pub number: Option<PyInt>,
    pub name: Option<&'a str>,
    pub arch: Option<&'a str>,
    pub success: Option<bool>,
    pub exit: Option<PyInt>,
    pub errno: Option<(&'static str, &'static str)>,
    /// a0..a3 as written
    pub args: Few<&'a str, 4>,
    pub items: Option<PyInt>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Process<'a> {
    pub pid: Option<PyInt>,
    pub ppid: Option<PyInt>,
    pub comm: Option<Cow<'a, str>>,
    pub exe: Option<Cow<'a, str>>,
    pub tty: Option<&'a str>,
    pub subj: Option<&'a str>,
    /// proctitle: (title, argv)
    pub title: Option<(String, Vec<Cow<'a, str>>)>,
    /// EXECVE: (argc, args)
    pub execve: Option<(Option<PyInt>, Vec<Cow<'a, str>>)>,
    pub cwd: Option<Cow<'a, str>>,
}

/// A value of a PATH entry.
#[derive(Debug, Clone, PartialEq)]
pub enum PathValue<'a> {
    Text(Cow<'a, str>),
    Int(PyInt),
    Null,
}

/// One PATH record: its fields in order, `mode_text` after `mode`, `nametype` from `objtype`.
pub type PathEntry<'a> = Vec<(&'a str, PathValue<'a>)>;

fn set_entry<'a>(entry: &mut PathEntry<'a>, name: &'a str, value: PathValue<'a>) {
    match entry.iter_mut().find(|(k, _)| *k == name) {
        Some(slot) => slot.1 = value,
        None => entry.push((name, value)),
    }
}

/// Facts of a user-space message (PAM/sshd style).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserMsg<'a> {
    pub fields: Vec<(&'static str, Cow<'a, str>)>,
    pub text: Option<&'a str>,
}

/// The actor/object facts of an event (absent for error events).
#[derive(Debug, Clone, PartialEq)]
pub struct Facts<'a> {
    /// The main record type: SYSCALL if present, else the first non-auxiliary record.
    pub main_type: &'a str,
    pub syscall: Option<SyscallFacts<'a>>,
    pub outcome: Option<&'static str>,
    pub keys: Vec<String>,
    /// Subject ids (None = unset) and their names from the sender's ENRICHED section.
    pub user_ids: Few<(&'static str, Option<&'a str>), { SUBJECT_IDS.len() }>,
    pub user_names: Vec<(&'static str, &'a str)>,
    pub session: Option<&'a str>,
    pub process: Process<'a>,
    pub paths: Vec<PathEntry<'a>>,
    pub sockaddr: Vec<SockAddr<'a>>,
    pub user_msg: Option<UserMsg<'a>>,
}

/// The interpreted values of an event's records as one flat list (per field of the records that have
/// values, in order), the texts they made in one buffer ([`Made`]): a few buffers per event, which the
/// thread reuses ([`Interpreted::recycle`]), instead of a list per record and a `String` per made text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Values<'a> {
    items: Vec<Val<'a>>,
    /// Per record: where its values are in `items`; None for a record without (an error, a fragment).
    records: Vec<Option<(usize, usize)>>,
    made: Made,
}

/// The values of one record ([`Values::record`]), parallel to its fields.
#[derive(Debug, Clone, Copy)]
pub struct RecordValues<'s> {
    items: &'s [Val<'s>],
    made: &'s str,
}

impl<'s> RecordValues<'s> {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The value of field `f`.
    #[inline]
    pub fn get(&self, f: usize) -> Option<&'s str> {
        self.items.get(f).map(|v| v.resolve(self.made))
    }

    pub fn iter(&self) -> impl Iterator<Item = &'s str> + Clone + 's {
        let made = self.made;
        self.items.iter().map(move |v| v.resolve(made))
    }
}

impl<'a> Values<'a> {
    /// The number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The values of record `r`; None for a record without.
    #[inline]
    pub fn record(&self, r: usize) -> Option<RecordValues<'_>> {
        let (from, to) = (*self.records.get(r)?)?;
        Some(RecordValues { items: &self.items[from..to], made: &self.made.text })
    }

    /// Each record's values, in order.
    pub fn iter(&self) -> impl Iterator<Item = Option<RecordValues<'_>>> + '_ {
        (0..self.records.len()).map(|r| self.record(r))
    }

    /// Empty buffers for an event, from the thread's.
    fn take() -> Values<'a> {
        let kept = KEPT_VALUES.take();
        Values { items: relabel(kept.items), records: kept.records, made: kept.made }
    }

    /// The buffers back to the thread, emptied (but a huge event's).
    fn give_back(self) {
        let Values { items, mut records, mut made } = self;
        if made.text.capacity() > KEPT_BYTES || items.capacity() > KEPT_BYTES / 16 {
            return;
        }
        records.clear();
        made.clear();
        KEPT_VALUES.set(Values { items: relabel(items), records, made });
    }
}

/// What a thread keeps between events at most (made text, or values of that many bytes).
const KEPT_BYTES: usize = 1 << 20;

/// `items` emptied, as a list of values of another lifetime: the same layout, so collecting in place keeps
/// its allocation.
fn relabel<'b>(mut items: Vec<Val<'_>>) -> Vec<Val<'b>> {
    items.clear();
    items.into_iter().map(|_| Val::Made(0, 0)).collect()
}

thread_local! {
    static KEPT_VALUES: std::cell::Cell<Values<'static>> = std::cell::Cell::new(Values::default());
}

impl Interpreted<'_> {
    /// The values' buffers given back to the thread, for its next event.
    pub fn recycle(self) {
        self.values.give_back();
    }
}

/// An interpreted event: per record, its interpreted field values (parallel to `fields`; none for
/// error records), and the event's facts.
#[derive(Debug, Clone, PartialEq)]
pub struct Interpreted<'a> {
    pub values: Values<'a>,
    /// Per field of the records with values, in order: whether no earlier one of them has a field of
    /// that name (the merged fields: the first record's value wins). Empty for one-record events.
    pub first: Vec<bool>,
    pub facts: Option<Facts<'a>>,
}

/// The names seen in an event's fields: those of the name table as bits of their ids; the others (the
/// EXECVE arguments' aN mostly) by a bit of their hash in a 256-bit filter of the earlier records'
/// names, and compared only when the filter has that bit (in a set once there are many). A record's
/// names are unique: its own are added to the filter once it is read (`end_record`).
#[derive(Default)]
struct Seen<'a> {
    ids: u128,
    earlier: [u64; 4],
    current: [u64; 4],
    others: Vec<&'a str>,
    set: FastSet<&'a str>,
}

impl<'a> Seen<'a> {
    /// The names compared one by one at most, before a set takes them.
    const LISTED: usize = 128;

    /// Whether `name` (of id `id`) is not in an earlier record; it is seen from now on.
    fn first(&mut self, id: NameId, name: &'a str) -> bool {
        if id != 0 {
            let bit = 1u128 << id;
            let first = self.ids & bit == 0;
            self.ids |= bit;
            return first;
        }
        let bit = tables::key_slot(tables::name_key(name.as_bytes()), name.len(), 0x9E37_79B9_7F4A_7C15, 8);
        let (word, mask) = (bit >> 6, 1u64 << (bit & 63));
        self.current[word] |= mask;
        if self.earlier[word] & mask != 0 {
            let seen = if self.others.len() > Seen::LISTED {
                if self.set.is_empty() {
                    self.set.extend(self.others.iter().copied());
                }
                self.set.contains(name)
            } else {
                self.others.contains(&name)
            };
            if seen {
                return false;
            }
        }
        self.others.push(name);
        if !self.set.is_empty() {
            self.set.insert(name);
        }
        true
    }

    /// The names of the record just read become earlier ones.
    fn end_record(&mut self) {
        for (earlier, current) in self.earlier.iter_mut().zip(&mut self.current) {
            *earlier |= std::mem::take(current);
        }
    }
}

/// (field, its ENRICHED name, its index in FACT_FIELDS)
const SUBJECT_IDS: [(&str, &str, usize); 11] = [
    ("auid", "AUID", fact_index("auid")),
    ("uid", "UID", fact_index("uid")),
    ("gid", "GID", fact_index("gid")),
    ("euid", "EUID", fact_index("euid")),
    ("suid", "SUID", fact_index("suid")),
    ("fsuid", "FSUID", fact_index("fsuid")),
    ("egid", "EGID", fact_index("egid")),
    ("sgid", "SGID", fact_index("sgid")),
    ("fsgid", "FSGID", fact_index("fsgid")),
    ("old-auid", "OLD-AUID", fact_index("old-auid")),
    ("sauid", "SAUID", fact_index("sauid")),
];

/// The fields the facts look up across an event's records.
const FACT_FIELDS: [&str; 20] = [
    "res", "result", "auid", "uid", "gid", "euid", "suid", "fsuid", "egid", "sgid", "fsgid", "old-auid", "sauid",
    "ses", "pid", "ppid", "comm", "exe", "tty", "subj",
];

/// The index of a name in FACT_FIELDS (for constants: a name that is not there fails the build).
const fn fact_index(name: &str) -> usize {
    let mut i = 0;
    while i < FACT_FIELDS.len() {
        if same(FACT_FIELDS[i], name) {
            return i;
        }
        i += 1;
    }
    panic!("not a name of FACT_FIELDS")
}

/// What `FACT_SLOTS` gives for `key` (the rule keys, gathered apart), and for the names of no fact.
const KEY_FIELD: u8 = FACT_FIELDS.len() as u8;
const NOT_A_FACT: u8 = u8::MAX;

/// Per name id: its index in FACT_FIELDS, KEY_FIELD or NOT_A_FACT.
static FACT_SLOTS: [u8; NAME_COUNT + 1] = {
    let mut slots = [NOT_A_FACT; NAME_COUNT + 1];
    let mut i = 0;
    while i < FACT_FIELDS.len() {
        slots[id(FACT_FIELDS[i]) as usize] = i as u8;
        i += 1;
    }
    slots[id("key") as usize] = KEY_FIELD;
    slots
};

/// The decoded form of an event.
pub fn interpret<T>(event: &Event<T>) -> Interpreted<'_> {
    let mut archs = ARCHS.take();
    let mut rendered = Rendered { values: Values::take(), first: Vec::new() };
    rendered.values.items.reserve(event.records.iter().map(|r| r.fields.len()).sum());
    let facts = scan(event, &mut archs, None, Some(&mut rendered));
    ARCHS.set(archs);
    Interpreted { values: rendered.values, first: rendered.first, facts }
}

/// The syscall table each record's fields are interpreted with (a record's own arch wins: SECCOMP
/// carries one; else the event's first known SYSCALL arch), and the event's.
pub fn syscall_tables<T>(event: &Event<T>) -> (Vec<Option<SyscallTable>>, Option<SyscallTable>) {
    let mut arch_table: Option<SyscallTable> = None;
    let mut has_arch = 0u64; // records with an arch= (bit per record; beyond 64 records, looked up again)
    let mut tables: Vec<Option<SyscallTable>> = Vec::with_capacity(event.records.len());
    for (i, r) in event.records.iter().enumerate() {
        match r.fields.get_id(names::ARCH) {
            None => tables.push(None),
            Some(raw) => {
                let own = arch_info(raw).and_then(|a| a.1);
                if arch_table.is_none() {
                    arch_table = own;
                }
                if i < 64 {
                    has_arch |= 1 << i;
                }
                tables.push(own);
            }
        }
    }
    for (i, (table, r)) in tables.iter_mut().zip(&event.records).enumerate() {
        let own = if i < 64 { has_arch & (1 << i) != 0 } else { r.fields.get_id(names::ARCH).is_some() };
        if !own {
            *table = arch_table;
        }
    }
    (tables, arch_table)
}

/// The event's facts; None for error events.
pub fn event_facts<T>(event: &Event<T>, arch_table: Option<SyscallTable>) -> Option<Facts<'_>> {
    let mut archs = ARCHS.take();
    let facts = scan(event, &mut archs, Some(arch_table), None);
    ARCHS.set(archs);
    facts
}

/// What `scan` renders: `Interpreted`'s values and first-occurrence marks.
struct Rendered<'a> {
    values: Values<'a>,
    first: Vec<bool>,
}

impl<'a> Rendered<'a> {
    /// One field's value rendered, and (with `seen`) whether its name comes first in the event.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)] // the field loop's body: out of line it costs ~1 % of a document
    fn push(
        &mut self,
        seen: Option<&mut Seen<'a>>,
        record: &'a Record,
        id: NameId,
        name: &'a str,
        raw: &'a str,
        arch: Option<Option<ArchInfo>>,
        execve: bool,
    ) {
        let value = value_of(record, id, name, raw, arch, execve, &mut self.values.made);
        self.values.items.push(value);
        if let Some(seen) = seen {
            self.first.push(seen.first(id, name));
        }
    }
}

/// Per record of an event, its `arch=` (None: no such field) with its `arch_info`: a thread's buffer,
/// reused event after event.
type Archs = Vec<Option<Option<ArchInfo>>>;

thread_local! {
    static ARCHS: std::cell::Cell<Archs> = const { std::cell::Cell::new(Vec::new()) };
}

/// Where the facts' records are in an event (its record types compared once each).
#[derive(Default)]
struct Places {
    syscall: Option<usize>,
    proctitle: Option<usize>,
    cwd: Option<usize>,
    /// The first valid record (no error, not EOE), and the first of those not auxiliary.
    first_valid: Option<usize>,
    first_main: Option<usize>,
}

/// A record's part in the facts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Other,
    Path,
    Sockaddr,
    Execve,
}

/// Valid records: the ones the facts read (no error, not EOE).
fn is_valid(record: &Record) -> bool {
    record.error.is_none() && record.type_name != "EOE"
}

/// One pass over the event's fields, each name looked up once: the interpreted values of each record
/// (into `values`, if asked for) and, unless the event is an error event, its facts (`arch_table`: the
/// syscall table they name syscalls with; None: the one found in this pass). `archs`: a buffer.
fn scan<'a, T>(
    event: &'a Event<T>,
    archs: &mut Archs,
    arch_table: Option<Option<SyscallTable>>,
    mut rendered: Option<&mut Rendered<'a>>,
) -> Option<Facts<'a>> {
    let records = &event.records;
    let mut seen = (records.len() > 1).then(Seen::default);
    if let (Some(_), Some(out)) = (&seen, rendered.as_deref_mut()) {
        out.first.reserve(records.iter().map(|r| r.fields.len()).sum());
    }
    archs.clear();
    // the event's syscall table so far (the first record's with a known one); a `syscall=` of a record
    // without an arch before any is known waits for the end of the pass (`pending`)
    let mut known_table: Option<SyscallTable> = None;
    let mut pending: Vec<(usize, usize, &str)> = Vec::new(); // (record, value's index, raw)
    let with_facts = event.complete != Complete::Error && !records.is_empty();

    let mut places = Places::default();
    let mut roles = [Role::Other; 64]; // beyond 64 records, worked out again
    let role_of = |record: &Record| match &*record.type_name {
        "PATH" => Role::Path,
        "SOCKADDR" => Role::Sockaddr,
        "EXECVE" => Role::Execve,
        _ => Role::Other,
    };
    let mut has_enriched = false;
    if with_facts {
        for (i, record) in records.iter().enumerate() {
            let role = role_of(record);
            if i < roles.len() {
                roles[i] = role;
            }
            match &*record.type_name {
                "SYSCALL" => {
                    places.syscall.get_or_insert(i);
                }
                "PROCTITLE" => {
                    places.proctitle.get_or_insert(i);
                }
                "CWD" => {
                    places.cwd.get_or_insert(i);
                }
                _ => {}
            }
            if is_valid(record) {
                places.first_valid.get_or_insert(i);
                if role == Role::Other && !matches!(&*record.type_name, "PROCTITLE" | "CWD") {
                    places.first_main.get_or_insert(i);
                }
                has_enriched |= !record.enriched.is_empty();
            }
        }
    }
    let main_at = places.syscall.or(places.first_main).or(places.first_valid).unwrap_or(0);
    let user_space = with_facts && records[main_at].is_user_space();

    // field(name): the main record's value, else the first valid record's
    let mut from_main: [Option<&str>; FACT_FIELDS.len()] = [None; FACT_FIELDS.len()];
    let mut from_first: [Option<&str>; FACT_FIELDS.len()] = [None; FACT_FIELDS.len()];
    // rule keys (several records may carry one; keep order, no repeats)
    let mut keys: Vec<String> = Vec::new();
    let mut syscall_found: [Option<&str>; 9] = [None; 9];
    let mut user_found: [Option<&str>; USER_MSG_NAMES.len()] = [None; USER_MSG_NAMES.len()];
    let (mut title, mut cwd) = (None, None);
    let mut paths = Vec::new();
    let mut sockaddr = Vec::new();
    let mut execve: Vec<&Record> = Vec::new();

    for (i, record) in records.iter().enumerate() {
        let mut arch = None;
        let computing = rendered.is_some() && record.error.is_none() && !record.fragment;
        // where this record's values start in the event's list
        let start = rendered.as_deref().map_or(0, |out| out.values.items.len());
        let mut syscall_field = None;
        let is_execve = computing && record.type_name == "EXECVE";
        if !with_facts {
            for (f, (id, name, raw)) in record.fields.iter_lazy().enumerate() {
                if id == names::ARCH {
                    arch = Some(arch_info(raw()));
                }
                if let Some(out) = rendered.as_deref_mut().filter(|_| computing) {
                    let raw = raw();
                    if id == names::SYSCALL {
                        syscall_field = Some((f, raw));
                    }
                    out.push(seen.as_mut(), record, id, name, raw, arch, is_execve);
                }
            }
            finish_record(i, record, arch, syscall_field, start, &mut known_table, &mut pending, &mut rendered);
            if let Some(seen) = seen.as_mut() {
                seen.end_record();
            }
            archs.push(arch);
            continue;
        }
        let valid = is_valid(record);
        let role = if i < roles.len() { roles[i] } else { role_of(record) };
        let (is_main, is_syscall) = (i == main_at, places.syscall == Some(i));
        let (is_title, is_cwd) = (places.proctitle == Some(i), places.cwd == Some(i));
        let mut entry: PathEntry<'_> = Vec::new();
        if role == Role::Path {
            entry.reserve_exact(record.fields.len() + 1);
        } else if role == Role::Execve {
            execve.push(record);
        }
        for (f, (id, name, lazy_raw)) in record.fields.iter_lazy().enumerate() {
            let known = computing.then(&lazy_raw);
            let raw = || known.unwrap_or_else(&lazy_raw);
            if id == names::ARCH {
                arch = Some(arch_info(raw()));
            }
            if let (Some(raw), Some(out)) = (known, rendered.as_deref_mut()) {
                if id == names::SYSCALL {
                    syscall_field = Some((f, raw));
                }
                out.push(seen.as_mut(), record, id, name, raw, arch, is_execve);
            }
            match FACT_SLOTS[usize::from(id)] {
                NOT_A_FACT => {}
                KEY_FIELD if valid => {
                    for key in split_keys(raw()) {
                        if !keys.contains(&key) {
                            keys.push(key);
                        }
                    }
                }
                KEY_FIELD => {}
                slot => {
                    let (slot, raw) = (usize::from(slot), raw());
                    if valid {
                        from_first[slot] = from_first[slot].or(Some(raw));
                    }
                    if is_main {
                        from_main[slot] = Some(raw);
                    }
                }
            }
            if is_syscall {
                if let Some(slot) = syscall_slot(id) {
                    syscall_found[slot] = Some(raw());
                }
            }
            if is_main && user_space {
                if let Some(slot) = user_msg_slot(id) {
                    user_found[slot] = Some(raw());
                }
            }
            match role {
                Role::Path => path_value(&mut entry, id, name, raw()),
                Role::Sockaddr if id == names::SADDR => sockaddr.push(decode_sockaddr(raw())),
                _ if is_title && id == names::PROCTITLE => title = Some(raw()),
                _ if is_cwd && id == names::CWD => cwd = Some(raw()),
                _ => {}
            }
        }
        finish_record(i, record, arch, syscall_field, start, &mut known_table, &mut pending, &mut rendered);
        if let Some(seen) = seen.as_mut() {
            seen.end_record();
        }
        archs.push(arch);
        if role == Role::Path {
            if !entry.iter().any(|(k, _)| *k == "nametype") {
                if let Some(objtype) = entry.iter().find(|(k, _)| *k == "objtype").map(|(_, v)| v.clone()) {
                    entry.push(("nametype", objtype));
                }
            }
            paths.push(entry);
        }
    }
    // the syscall names that waited for the event's table
    if let Some(out) = rendered {
        let values = &mut out.values;
        for (r, at, raw) in pending {
            values.items[at] =
                interpret_value(&records[r], names::SYSCALL, "syscall", raw, known_table, &mut values.made);
        }
    }
    if !with_facts {
        return None;
    }
    let main = &records[main_at];
    let syscall_record = places.syscall.map(|i| &records[i]);
    // the event's ENRICHED values: the first record giving a name wins
    let enriched = |name: &str| records.iter().filter(|r| is_valid(r)).find_map(|r| r.enriched.get(name));
    let field = |i: usize| from_main[i].or(from_first[i]);
    let arch_table = arch_table.unwrap_or(known_table);

    let mut outcome = None;
    let syscall = syscall_record.map(|record| {
        let [syscall, _, exit, success, items, a0, a1, a2, a3] = syscall_found;
        let number = syscall.and_then(|s| py_int(s, 10));
        let name = arch_table
            .zip(number.and_then(|n| i64::try_from(n.value).ok()))
            .and_then(|(t, n)| tables::syscall_name(t, n))
            .or_else(|| record.enriched.get("SYSCALL"));
        let arch_raw = syscall_found[1];
        let arch = places
            .syscall
            .and_then(|i| archs[i])
            .flatten()
            .map(|a| a.0)
            .or_else(|| record.enriched.get("ARCH").filter(|a| !a.is_empty()))
            .or(arch_raw);
        let exit = exit.and_then(|s| py_int(s, 10));
        outcome = match success {
            Some("yes") => Some("success"),
            Some("no") => Some("failure"),
            _ => None,
        };
        SyscallFacts {
            number,
            name,
            arch,
            success: match success {
                Some("yes") => Some(true),
                Some("no") => Some(false),
                _ => None,
            },
            exit,
            errno: exit.as_ref().and_then(errno_of),
            args: {
                let mut args = Few::default();
                for arg in [a0, a1, a2, a3].into_iter().flatten() {
                    args.push(arg);
                }
                args
            },
            items: items.and_then(|s| py_int(s, 10)),
        }
    });
    let res =
        field(const { fact_index("res") }).filter(|r| !r.is_empty()).or_else(|| field(const { fact_index("result") }));
    if outcome.is_none() {
        if let Some(res) = res {
            outcome = match unquote(res) {
                "success" | "1" | "yes" => Some("success"),
                "failed" | "fail" | "0" | "no" => Some("failure"),
                _ => None,
            };
        }
    }

    let mut user_ids = Few::default();
    let mut user_names = Vec::new();
    for (name, upper, index) in SUBJECT_IDS {
        if let Some(raw) = field(index) {
            user_ids.push((name, (!is_unset(raw)).then_some(raw)));
            if has_enriched {
                if let Some(named) = enriched(upper).filter(|n| !n.is_empty() && *n != "unset") {
                    user_names.push((name, named));
                }
            }
        }
    }
    let session = field(const { fact_index("ses") }).filter(|s| !is_unset(s));

    let int_field = |i: usize| py_int(field(i).unwrap_or(""), 10);
    let mut process = Process {
        pid: int_field(const { fact_index("pid") }),
        ppid: int_field(const { fact_index("ppid") }),
        comm: field(const { fact_index("comm") }).map(unescape),
        exe: field(const { fact_index("exe") }).map(unescape),
        tty: field(const { fact_index("tty") }).map(unquote),
        subj: field(const { fact_index("subj") }).map(unquote),
        ..Process::default()
    };
    if places.proctitle.is_some() {
        // parts of the line when it is quoted text, copies when it was hex
        let mut argv: Vec<Cow<'_, str>> = match unescape(title.unwrap_or("")) {
            Cow::Borrowed(text) => text.split('\0').map(Cow::Borrowed).collect(),
            Cow::Owned(text) => text.split('\0').map(|part| Cow::Owned(part.to_owned())).collect(),
        };
        while argv.last().is_some_and(|arg| arg.is_empty()) {
            argv.pop();
        }
        process.title = Some((argv.join(" "), argv));
    }
    if !execve.is_empty() {
        process.execve = Some(execve_args(&execve));
    }
    process.cwd = cwd.map(unescape);

    let user_msg = user_space.then(|| {
        let mut fields = Vec::with_capacity(user_found.iter().flatten().count());
        for (name, raw) in USER_MSG_NAMES.into_iter().zip(user_found) {
            if let Some(raw) = raw {
                let value = if matches!(name, "acct" | "exe") { unescape(raw) } else { Cow::Borrowed(unquote(raw)) };
                fields.push((name, value));
            }
        }
        UserMsg { fields, text: main.text.as_deref() }
    });

    Some(Facts {
        main_type: &main.type_name,
        syscall,
        outcome,
        keys,
        user_ids,
        user_names,
        session,
        process,
        paths,
        sockaddr,
        user_msg,
    })
}

/// The interpreted value of a field in `scan`, but for a `syscall=`, whose rendering needs the record's
/// arch or else the event's (both known only later): `finish_record` renders it.
#[inline]
fn value_of<'a>(
    record: &'a Record,
    id: NameId,
    name: &str,
    raw: &'a str,
    arch: Option<Option<ArchInfo>>,
    execve: bool,
    made: &mut Made,
) -> Val<'a> {
    match id {
        _ if kind_of(id).is_none() && !execve => Val::Text(unquote(raw)), // no rendering of its own
        names::ARCH => made.cow(arch_text(arch.flatten(), record, raw)),
        names::SYSCALL => Val::Text(raw),
        _ => interpret_value(record, id, name, raw, None, made),
    }
}

/// A record's values into `values` once its fields are read: its `syscall=` named with its own arch's
/// table, else the event's first known one (`known_table`, which this record's arch may set), or left
/// in `pending` for the end of the pass while no table is known.
#[allow(clippy::too_many_arguments)]
fn finish_record<'a>(
    r: usize,
    record: &'a Record,
    arch: Option<Option<ArchInfo>>,
    syscall_field: Option<(usize, &'a str)>,
    start: usize,
    known_table: &mut Option<SyscallTable>,
    pending: &mut Vec<(usize, usize, &'a str)>,
    rendered: &mut Option<&mut Rendered<'a>>,
) {
    let own = arch.map(|info| info.and_then(|a| a.1));
    if known_table.is_none() {
        *known_table = own.flatten();
    }
    let Some(Rendered { values, .. }) = rendered.as_deref_mut() else { return };
    if record.error.is_some() || record.fragment {
        values.records.push(None);
        return;
    }
    if let Some((f, raw)) = syscall_field {
        let table = match own {
            Some(table) => table,
            None if known_table.is_some() => *known_table,
            None => {
                pending.push((r, start + f, raw));
                None
            }
        };
        if own.is_some() || table.is_some() {
            values.items[start + f] = interpret_value(record, names::SYSCALL, "syscall", raw, table, &mut values.made);
        }
    }
    values.records.push(Some((start, values.items.len())));
}

/// The place of a SYSCALL record's field in the facts' list of them.
#[inline]
fn syscall_slot(id: NameId) -> Option<usize> {
    Some(match id {
        names::SYSCALL => 0,
        names::ARCH => 1,
        names::EXIT => 2,
        names::SUCCESS => 3,
        names::ITEMS => 4,
        names::A0 => 5,
        names::A1 => 6,
        names::A2 => 7,
        names::A3 => 8,
        _ => return None,
    })
}

/// The fields of a user-space message the facts keep, in their order.
const USER_MSG_NAMES: [&str; 10] =
    ["op", "acct", "exe", "hostname", "addr", "terminal", "res", "id", "grantors", "uid"];

#[inline]
fn user_msg_slot(id: NameId) -> Option<usize> {
    Some(match id {
        names::OP => 0,
        names::ACCT => 1,
        names::EXE => 2,
        names::HOSTNAME => 3,
        names::ADDR => 4,
        names::TERMINAL => 5,
        names::RES => 6,
        names::ID => 7,
        names::GRANTORS => 8,
        names::UID => 9,
        _ => return None,
    })
}

/// One field of a PATH record into its entry: `mode_text` after `mode`, ids unset as null.
fn path_value<'a>(entry: &mut PathEntry<'a>, id: NameId, name: &'a str, raw: &'a str) {
    let value = match id {
        names::NAME => PathValue::Text(unescape(raw)),
        names::ITEM | names::INODE => py_int(raw, 10).map_or(PathValue::Text(Cow::Borrowed(raw)), PathValue::Int),
        names::MODE => {
            entry.push(("mode", PathValue::Text(Cow::Borrowed(raw)))); // names are unique in a record
            set_entry(entry, "mode_text", PathValue::Text(interpret_mode(raw)));
            return;
        }
        names::OUID | names::OGID if is_unset(raw) => PathValue::Null,
        names::OUID | names::OGID => PathValue::Text(Cow::Borrowed(raw)),
        // a record's names are unique: only the mode_text made above can be there already
        names::MODE_TEXT => return set_entry(entry, name, PathValue::Text(Cow::Borrowed(unquote(raw)))),
        _ => PathValue::Text(Cow::Borrowed(unquote(raw))),
    };
    entry.push((name, value));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::assemble::Settings;
    use crate::linux::parse::parse_line;
    use crate::linux::stream::LineDecoder;

    fn record(line: &str) -> Record {
        parse_line(line).unwrap()
    }

    fn value(line: &str, name: &str) -> String {
        let r = record(line);
        let raw = r.fields.get(name).unwrap();
        let table = r.fields.get("arch").and_then(arch_info).and_then(|a| a.1);
        interpret_field(&r, name, raw, table).into_owned()
    }

    fn events(lines: &[&str]) -> Vec<Event<u64>> {
        let mut decoder = LineDecoder::new(Settings::default());
        let mut out = Vec::new();
        for line in lines {
            decoder.push(line.as_bytes(), &mut out).unwrap();
        }
        decoder.finish(&mut out);
        out
    }

    #[test]
    fn values_like_libauparse() {
        let sc = "type=SYSCALL msg=audit(1.000:1): arch=c000003e syscall=59 exit=-13 a0=7f uid=0 auid=4294967295 \
                  ses=-1 comm=6C73 exe=\"/bin/ls\" key=6B310161 res=1 cap_fp=0 cap_fi=001F list=4 prom=256";
        for (name, expected) in [
            ("arch", "x86_64"),
            ("syscall", "execve"),
            ("exit", "EACCES(Permission denied)"),
            ("a0", "0x7f"),
            ("uid", "root"),
            ("auid", "unset"),
            ("ses", "unset"),
            ("comm", "ls"),
            ("exe", "/bin/ls"),
            ("key", "k1,a"),
            ("res", "yes"),
            ("cap_fp", "none"),
            ("cap_fi", "0x1f"),
            ("list", "exit"),
            ("prom", "yes"),
        ] {
            assert_eq!(value(sc, name), expected, "{name}");
        }
        assert_eq!(value("type=PATH msg=audit(1.000:1): mode=0104755", "mode"), "file,suid,755");
        assert_eq!(value("type=PATH msg=audit(1.000:1): mode=-5", "mode"), "unknown-type(170000),suid,sgid,sticky,773");
        assert_eq!(value("type=PATH msg=audit(1.000:1): mode=0", "mode"), "unknown-type(0),000");
        assert_eq!(value("type=PATH msg=audit(1.000:1): mode=041777", "mode"), "dir,sticky,777");
        assert_eq!(value("type=PATH msg=audit(1.000:1): mode=0o10", "mode"), "unknown-type(0),010");
        assert_eq!(value("type=SYSCALL msg=audit(1.000:1): cap_pe=000001FFfFFFFFFF", "cap_pe"), "0x1ffffffffff");
        assert_eq!(value("type=SYSCALL msg=audit(1.000:1): cap_pe=0000", "cap_pe"), "none");
        assert_eq!(value("type=SYSCALL msg=audit(1.000:1): cap_pe=-0x1F", "cap_pe"), "0x-1f");
        assert_eq!(value("type=SYSCALL msg=audit(1.000:1): cap_pe=1g", "cap_pe"), "1g");
        assert_eq!(value("type=PROCTITLE msg=audit(1.000:1): proctitle=6C73002D6C6100", "proctitle"), "ls -la");
        assert_eq!(value("type=USER_LOGIN msg=audit(1.000:1): id=0", "id"), "root");
        assert_eq!(value("type=OTHER msg=audit(1.000:1): id=\"0\"", "id"), "0");
        assert_eq!(value("type=SYSCALL msg=audit(1.000:1): uid=7\x1dUID=\"alice\"", "uid"), "alice");
        assert_eq!(value("type=SYSCALL msg=audit(1.000:1): uid=7\x1duid=\"bob\" UIDS=x", "uid"), "7");
        assert_eq!(value("type=SYSCALL msg=audit(1.000:1): old-auid=7\x1dOLD-AUID=\"eve\"", "old-auid"), "eve");
        assert_eq!(value("type=EXECVE msg=audit(1.000:1): a1[0]=6869", "a1[0]"), "hi");
    }

    #[test]
    fn names_with_an_id_are_safe_object_keys() {
        // `Fields::keys_safe` takes a key with a name id as safe without looking at it
        for i in 0..NAME_COUNT {
            let name = name_at(i);
            assert!(!name.is_empty() && !name.contains('.'), "{name}");
            assert_eq!(usize::from(name_id(name)), i + 1, "{name}");
        }
    }

    #[test]
    fn field_kinds_are_found_by_name() {
        for &(name, expected) in FIELD_KINDS {
            assert_eq!(kind(name), Some(expected), "{name}");
            assert_eq!(FIELD_KINDS.iter().filter(|f| f.0 == name).count(), 1, "{name} once");
        }
        for name in ["", "a4", "uidx", "Uid", "cap_fe", "argc", "nametype", "auid "] {
            assert_eq!(kind(name), None, "{name}");
        }
        assert_eq!(FIELD_KINDS.len(), 105);
    }

    #[test]
    fn unescape_and_hex() {
        assert_eq!(unescape("\"a b\""), "a b");
        assert_eq!(unescape("\"open"), "open");
        assert_eq!(unescape("2F746D70"), "/tmp");
        assert_eq!(unescape("FF00"), "\\xff\u{0}");
        assert_eq!(unescape("(null)"), "(null)");
        assert_eq!(unescape("ABC"), "ABC"); // odd length: not hex
        assert_eq!(unescape("0G"), "0G");
        assert_eq!(
            unescape("aBcD"),
            "\u{ab}\u{cd}".chars().map(|c| format!("\\x{:02x}", c as u32)).collect::<String>()
        );
        assert_eq!(split_keys("(null)\u{1d}x"), Vec::<String>::new());
        assert_eq!(split_keys("6B310161"), ["k1", "a"]);
    }

    #[test]
    fn sockaddrs_and_ipv6_text() {
        let inet = decode_sockaddr("02000050C0000201");
        assert_eq!(sockaddr_text(&inet), "{ saddr_fam=inet laddr=192.0.2.1 lport=80 }");
        let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(ipv6_text(&v6), "2001:db8::1");
        assert_eq!(ipv6_text(&"::ffff:1.2.3.4".parse().unwrap()), "::ffff:102:304"); // Python 3.11
        assert_eq!(ipv6_text(&"1:0:0:2:0:0:0:3".parse().unwrap()), "1:0:0:2::3");
        // against the hextets formatted with `{:x}` and joined (the rendering before it was pushed digit by
        // digit), every run of zeros at every place, and hextets of every width
        let formatted = |a: &Ipv6Addr| {
            let g = a.segments();
            let hex = |gs: &[u16]| gs.iter().map(|g| format!("{g:x}")).collect::<Vec<_>>().join(":");
            let (mut best_start, mut best_len, mut start, mut len) = (0, 0, 0, 0);
            for (i, &v) in g.iter().enumerate() {
                if v == 0 {
                    if len == 0 {
                        start = i;
                    }
                    len += 1;
                    if len > best_len {
                        (best_start, best_len) = (start, len);
                    }
                } else {
                    len = 0;
                }
            }
            if best_len > 1 {
                format!("{}::{}", hex(&g[..best_start]), hex(&g[best_start + best_len..]))
            } else {
                hex(&g)
            }
        };
        for mask in 0u32..256 {
            for widths in [0x1u16, 0xab, 0xf00, 0xbeef, 0x10] {
                let g: Vec<u16> =
                    (0..8).map(|i| if mask >> i & 1 == 1 { widths.rotate_left(i * 3) } else { 0 }).collect();
                let a = Ipv6Addr::new(g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]);
                assert_eq!(ipv6_text(&a), formatted(&a), "{g:x?}");
            }
        }
        assert_eq!(ipv6_text(&"1:0:0:2:0:0:3:4".parse().unwrap()), "1::2:0:0:3:4");
        assert_eq!(ipv6_text(&Ipv6Addr::UNSPECIFIED), "::");
        assert_eq!(ipv6_text(&"1:2:3:4:5:6:0:8".parse().unwrap()), "1:2:3:4:5:6:0:8");
        assert_eq!(sockaddr_text(&decode_sockaddr("01002F7800")), "{ saddr_fam=local path=/x }");
        assert_eq!(sockaddr_text(&decode_sockaddr("0100007800")), "{ saddr_fam=local path=@x }");
        assert_eq!(sockaddr_text(&decode_sockaddr("2A00")), "unknown-family(42)");
        assert_eq!(sockaddr_text(&decode_sockaddr("1F00")), "{ saddr_fam=bluetooth }");
        assert_eq!(sockaddr_text(&decode_sockaddr("zz")), "{ saddr_fam=None }");
        assert_eq!(decode_sockaddr("02"), SockAddr::Error { error: "saddr too short", raw: "02" });
        assert_eq!(decode_sockaddr("0002000000000000"), SockAddr::Inet { address: Ipv4Addr::UNSPECIFIED, port: 0 });
    }

    #[test]
    fn times_as_python_formats_them() {
        assert_eq!(iso_time(&Num::Small(1_492_752_522_985_000_000)).as_deref(), Some("2017-04-21T05:28:42.985Z"));
        assert_eq!(iso_time(&Num::Small(0)).as_deref(), Some("1970-01-01T00:00:00.000Z"));
        assert_eq!(iso_time(&Num::Small(253_402_300_799_999_000_000)).as_deref(), Some("9999-12-31T23:59:59.999Z"));
        assert_eq!(iso_time(&Num::Small(253_402_300_800_000_000_000)), None);
    }

    #[test]
    fn execve_arguments_join_their_chunks() {
        let r = record("type=EXECVE msg=audit(1.000:1): argc=3 a0=\"ls\" a2_len=4 a2[0]=6162 a2[1]=\"cd\"");
        let (argc, args) = execve_args(&[&r]);
        assert_eq!(argc.map(|n| n.value), Some(3));
        assert_eq!(args, ["ls", "", "abcd"]);
        let far = record("type=EXECVE msg=audit(1.000:1): a99999999=\"far\" a0=\"x\"");
        assert_eq!(execve_args(&[&far]).1, ["x", "far"]);
    }

    #[test]
    fn facts_of_a_syscall_event() {
        let evs = events(&[
            "type=SYSCALL msg=audit(1.000:1): arch=c000003e syscall=2 success=no exit=-2 a0=1 a1=2 items=1 ppid=1 \
             pid=42 auid=1000 uid=1000 gid=1000 euid=0 ses=3 tty=pts0 comm=\"cat\" exe=\"/bin/cat\" key=\"files\"",
            "type=CWD msg=audit(1.000:1): cwd=\"/root\"",
            "type=PATH msg=audit(1.000:1): item=0 name=\"/etc/shadow\" inode=5 mode=0100640 ouid=0 ogid=42 objtype=NORMAL",
            "type=PROCTITLE msg=audit(1.000:1): proctitle=636174002F6574632F736861646F77",
            "type=EOE msg=audit(1.000:1): ",
        ]);
        assert_eq!(evs.len(), 1);
        let decoded = interpret(&evs[0]);
        let f = decoded.facts.unwrap();
        assert_eq!(f.main_type, "SYSCALL");
        let sc = f.syscall.unwrap();
        assert_eq!(
            (sc.name, sc.arch, sc.success, sc.errno.map(|e| e.0)),
            (Some("open"), Some("x86_64"), Some(false), Some("ENOENT"))
        );
        assert_eq!(*sc.args, ["1", "2"]);
        assert_eq!(f.outcome, Some("failure"));
        assert_eq!(f.keys, ["files"]);
        assert_eq!(f.user_ids[0], ("auid", Some("1000")));
        assert_eq!(f.session, Some("3"));
        assert_eq!(f.process.pid.map(|n| n.value), Some(42));
        assert_eq!(f.process.exe.as_deref(), Some("/bin/cat"));
        assert_eq!(f.process.title.as_ref().map(|t| t.0.as_str()), Some("cat /etc/shadow"));
        assert_eq!(f.process.cwd.as_deref(), Some("/root"));
        let path = &f.paths[0];
        let get = |k: &str| path.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        assert_eq!(get("mode_text"), Some(PathValue::Text(Cow::Borrowed("file,640"))));
        assert_eq!(get("nametype"), Some(PathValue::Text(Cow::Borrowed("NORMAL"))));
        assert_eq!(get("inode"), Some(PathValue::Int(PyInt::small(5))));
        assert_eq!(decoded.values.len(), 5);
    }

    #[test]
    fn first_marks_of_repeated_names() {
        let evs = events(&[
            "type=SYSCALL msg=audit(1.000:1): arch=c000003e syscall=2 pid=1 zz=1",
            "type=PATH msg=audit(1.000:1): item=0 name=\"/a\" zz=2 dev=fd:00",
            "type=PATH msg=audit(1.000:1): item=1 name=\"/b\" dev=fd:01",
            "type=EOE msg=audit(1.000:1): ",
        ]);
        let marks = interpret(&evs[0]).first;
        assert_eq!(marks, [true, true, true, true, true, true, false, true, false, false, false]);
        assert!(interpret(&events(&["type=USER_LOGIN msg=audit(1.000:1): pid=1 uid=0"])[0]).first.is_empty());
        // past 128 names outside the table, in a set
        let many: String = (0..140).map(|i| format!(" z{i}={i}")).collect();
        let evs = events(&[
            &format!("type=SYSCALL msg=audit(1.000:2): arch=c000003e{many}"),
            &format!("type=CWD msg=audit(1.000:2): cwd=\"/\"{many} z140=x"),
            "type=EOE msg=audit(1.000:2): ",
        ]);
        let marks = interpret(&evs[0]).first;
        let expected: Vec<bool> = [vec![true; 141], vec![true], vec![false; 140], vec![true]].concat();
        assert_eq!(marks, expected);
    }

    #[test]
    fn values_are_flat_and_their_buffers_reused() {
        let evs = events(&[
            "type=SYSCALL msg=audit(1.000:1): arch=c000003e syscall=59 a0=7f exit=-13 comm=\"ls\"",
            "type=EXECVE msg=audit(1.000:1): argc=2 a0=6C73 a1=\"-l\"",
            "type=EOE msg=audit(1.000:1): ",
        ]);
        let decoded = interpret(&evs[0]);
        let values: Vec<Vec<&str>> = decoded.values.iter().map(|v| v.unwrap().iter().collect()).collect();
        assert_eq!(
            values,
            [vec!["x86_64", "execve", "0x7f", "EACCES(Permission denied)", "ls"], vec!["2", "ls", "-l"], vec![]]
        );
        let room = decoded.values.items.capacity();
        decoded.recycle();
        // the next event's values are in the same buffers (relabelled in place)
        let again = interpret(&evs[0]);
        assert_eq!(again.values.items.capacity(), room);
        assert_eq!(again.values.record(1).and_then(|v| v.get(1)), Some("ls"));
        assert_eq!(again.values.record(3).map(|v| v.len()), None);
    }

    #[test]
    fn facts_of_a_user_space_message() {
        let evs =
            events(&["type=USER_LOGIN msg=audit(1.000:1): pid=1 uid=0 auid=1000 ses=2 msg='op=login acct=\"bob\" \
             exe=\"/usr/sbin/sshd\" hostname=h addr=192.0.2.1 terminal=ssh res=success'\x1dAUID=\"bob\""]);
        let f = interpret(&evs[0]).facts.unwrap();
        assert_eq!(f.outcome, Some("success"));
        assert_eq!(f.user_names, [("auid", "bob")]);
        let msg = f.user_msg.unwrap();
        assert_eq!(msg.fields[0], ("op", Cow::Borrowed("login")));
        assert_eq!(msg.fields[1], ("acct", Cow::Borrowed("bob")));
        assert!(msg.text.unwrap().starts_with("op=login"));
    }
}
