//! A Linux audit event as an ECS document in Auditbeat's auditd shape,
//! built from the typed [`Event`] and its [`Facts`] (no JSON in between), on [`super::common`].

use std::borrow::Cow;

use super::common::{
    Parties, PyError, ShortHash, basename_of, errno_message, file_type_from_mode, iso_ns, py_repr_str, routable_ip,
    short_hash_remembered, valid_ip,
};
use super::enrich::{Enrichment, zlogin_zone};
use super::flat::{FLAT_VALUE_LIMIT, cap_strings, has_long_strings, python_dumps};
use super::slots::{Flat, Lists, Order, Val};
use super::tables::{LinuxCategory, linux_category, linux_category_of};
use super::value::{Obj, Text, Value};
use crate::json::{JsonError, JsonWriter};
use crate::linux::assemble::{Complete, Event};
use crate::linux::interpret::{
    Facts, PathEntry, PathValue, RecordValues, SockAddr, Values, interpret, ipv6_text, name_id, unescape, unquote,
};
use crate::linux::num::Num;
use crate::linux::pytext::{PyInt, is_digit, py_int};
use crate::linux::record::Record;

/// Records that only add detail to the event's main record (`_AUXILIARY`).
const AUXILIARY: [&str; 21] = [
    "SYSCALL",
    "PATH",
    "CWD",
    "EXECVE",
    "PROCTITLE",
    "SOCKADDR",
    "EOE",
    "BPRM_FCAPS",
    "CAPSET",
    "MMAP",
    "FD_PAIR",
    "OBJ_PID",
    "IPC",
    "MQ_OPEN",
    "MQ_SENDRECV",
    "MQ_NOTIFY",
    "MQ_GETSETATTR",
    "NETFILTER_PKT",
    "SOCKETCALL",
    "KERN_MODULE_AUX",
    "UNKNOWN",
];
const TWO_PATH_ACTIONS: [&str; 3] = ["renamed", "linked", "symlinked"];
const IAM_TARGET_TYPES: [&str; 8] = [
    "ACCT_LOCK",
    "ACCT_UNLOCK",
    "ROLE_ASSIGN",
    "ROLE_REMOVE",
    "CHUSER_ID",
    "ANOM_ADD_ACCT",
    "ANOM_DEL_ACCT",
    "ANOM_MOD_ACCT",
];
const NO_VALUE: [&str; 4] = ["", "?", "?,", "(null)"];
const UNSET_TEXT: [&str; 5] = ["4294967295", "4294967294", "-1", "-2", "unset"];

/// An entity of the Auditbeat user mappings and its dotted paths.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Entity {
    User,
    Effective,
    Target,
    Audit,
    Group,
}

const AUID: &[&str] = &["auid"];
const UID: &[&str] = &["uid"];
const SESSION_ACCOUNT: &[&str] = &["acct", "id", "uid"];
const CHANGED_ACCOUNT: &[&str] = &["id", "acct"];
type Mapping = &'static [(Entity, &'static [&'static str])];

/// The ECS user mappings of LOGIN and the user-space session, credential and account records, as
/// go-libaudit aucoalesce applies them (docs/schema.md).
fn user_mappings(primary_type: &str) -> Option<Mapping> {
    Some(match primary_type {
        "USER_AUTH" | "USER_ACCT" | "USER_LOGIN" | "USER_LOGOUT" | "USER_ERR" | "USER_START" | "USER_END"
        | "CRED_ACQ" | "CRED_DISP" | "CRED_REFR" => &[(Entity::User, AUID), (Entity::Effective, SESSION_ACCOUNT)],
        "GRP_AUTH" => &[(Entity::User, AUID), (Entity::Effective, UID)],
        "LOGIN" => {
            &[(Entity::User, &["@old-auid"]), (Entity::Effective, &["@new-auid"]), (Entity::Audit, &["@new-auid"])]
        }
        "ADD_USER" | "DEL_USER" => &[(Entity::User, AUID), (Entity::Effective, UID), (Entity::Target, CHANGED_ACCOUNT)],
        "ADD_GROUP" | "DEL_GROUP" | "GRP_MGMT" => {
            &[(Entity::User, AUID), (Entity::Effective, UID), (Entity::Group, CHANGED_ACCOUNT)]
        }
        "USER_MGMT" | "USER_CHAUTHTOK" => {
            &[(Entity::User, AUID), (Entity::Effective, UID), (Entity::Target, SESSION_ACCOUNT)]
        }
        "GRP_CHAUTHTOK" => &[(Entity::User, AUID), (Entity::Effective, UID), (Entity::Group, SESSION_ACCOUNT)],
        _ => return None,
    })
}

/// A categorization row merged for one event (`tables.Category`).
#[derive(Debug, Clone, PartialEq)]
pub struct Cat<'a> {
    pub action: Cow<'a, str>,
    pub object_type: &'static str,
    pub object_primary: &'static [&'static str],
    pub object_secondary: &'static [&'static str],
    pub kind: &'static str,
    pub category: Strs,
    pub types: Strs,
    pub direction: &'static str,
}

/// A list of the tables' strings merged from two rows (a record type's, then the new ones of the
/// syscall's): at most [`Strs::CAPACITY`], as a row has at most half that many (a test checks the
/// tables), held without an allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Strs {
    items: [&'static str; Strs::CAPACITY],
    len: usize,
}

impl Strs {
    pub const CAPACITY: usize = 8;

    fn of(items: &[&'static str]) -> Self {
        let mut out = Strs { items: [""; Strs::CAPACITY], len: 0 };
        for s in items {
            out.push_new(s);
        }
        out
    }

    /// Appended unless already there (or, beyond the capacity the tables never reach, dropped).
    fn push_new(&mut self, item: &'static str) {
        if !self.as_slice().contains(&item) && self.len < Strs::CAPACITY {
            self.items[self.len] = item;
            self.len += 1;
        }
    }

    pub fn as_slice(&self) -> &[&'static str] {
        &self.items[..self.len]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

fn type_action(primary_type: &str) -> String {
    primary_type.to_lowercase().replace('_', "-")
}

/// A row of the Linux table by its key's two parts (`type:` or `syscall:` and a name), the key made
/// on the stack when it is short (they all are but for hostile record types).
fn category_row(prefix: &str, name: &str) -> Option<&'static LinuxCategory> {
    let mut buf = [0u8; 64];
    let n = prefix.len() + name.len();
    if n > buf.len() {
        return linux_category(&[prefix, name].concat());
    }
    buf[..prefix.len()].copy_from_slice(prefix.as_bytes());
    buf[prefix.len()..n].copy_from_slice(name.as_bytes());
    linux_category_of(&buf[..n])
}

/// `categorize`: (primary record type, merged category).
pub fn categorize<'a>(types: &[&'a str], syscall: Option<&'a str>, apparmor: bool) -> (&'a str, Cat<'a>) {
    let mut record_row: Option<&'static LinuxCategory> = None;
    let mut primary_type = "";
    for &rtype in types {
        if AUXILIARY.contains(&rtype) {
            continue;
        }
        if let Some(row) = category_row("type:", if rtype == "AVC" && apparmor { "AVC_APPARMOR" } else { rtype }) {
            record_row = Some(row);
            primary_type = rtype;
            break;
        }
        if primary_type.is_empty() {
            primary_type = rtype;
        }
    }
    let mut syscall_row: Option<&'static LinuxCategory> = None;
    if types.contains(&"SYSCALL") {
        syscall_row = category_row("syscall:", syscall.unwrap_or("None")).or_else(|| linux_category("syscall:*"));
        if record_row.is_none() {
            primary_type = "SYSCALL";
        }
    }
    let Some(base) = record_row.or(syscall_row) else {
        let action = if primary_type.is_empty() { Cow::Borrowed("unknown") } else { type_action(primary_type).into() };
        let primary = if primary_type.is_empty() { types.first().copied().unwrap_or("") } else { primary_type };
        let cat = Cat {
            action,
            object_type: "",
            object_primary: &[],
            object_secondary: &[],
            kind: "",
            category: Strs::of(&["process"]),
            types: Strs::of(&["info"]),
            direction: "",
        };
        return (primary, cat);
    };
    let mut category = Strs::of(base.category);
    let mut ecs_type = Strs::of(base.types);
    if let (Some(_), Some(sys)) = (record_row, syscall_row) {
        if category.is_empty() {
            category = Strs::of(sys.category);
            ecs_type = Strs::of(sys.types);
        } else {
            sys.category.iter().for_each(|c| category.push_new(c));
            sys.types.iter().for_each(|t| ecs_type.push_new(t));
        }
    }
    if category.is_empty() {
        category = Strs::of(&["process"]);
        ecs_type = Strs::of(&["info"]);
    }
    let table_action = if base.action.is_empty() { syscall_row.map_or("", |s| s.action) } else { base.action };
    let action: Cow<'a, str> = if !table_action.is_empty() {
        Cow::Borrowed(table_action)
    } else {
        match syscall {
            Some(s) if !s.is_empty() => Cow::Borrowed(s),
            _ => type_action(primary_type).into(),
        }
    };
    let or_sys = |own: &'static str, f: fn(&'static LinuxCategory) -> &'static str| {
        if own.is_empty() { syscall_row.map_or("", f) } else { own }
    };
    let or_sys_list = |own: &'static [&'static str], f: fn(&'static LinuxCategory) -> &'static [&'static str]| {
        if own.is_empty() { syscall_row.map_or(&[][..], f) } else { own }
    };
    let cat = Cat {
        action,
        object_type: or_sys(base.object_type, |s| s.object_type),
        object_primary: or_sys_list(base.object_primary, |s| s.object_primary),
        object_secondary: or_sys_list(base.object_secondary, |s| s.object_secondary),
        kind: base.kind,
        category,
        types: ecs_type,
        direction: or_sys(base.direction, |s| s.direction),
    };
    (primary_type, cat)
}

/// `_clean`: a value worth showing.
fn clean(value: Option<&str>) -> Option<&str> {
    value.filter(|t| !matches!(*t, "" | "?" | "(null)" | "(none)" | "unset"))
}

/// `id_text` of a text value, borrowed.
fn id_of(value: Option<&str>) -> Option<Cow<'_, str>> {
    value.filter(|v| !UNSET_TEXT.contains(v)).map(Cow::Borrowed)
}

/// `id_text` of a text value.
fn id_text(value: Option<&str>) -> Option<Text> {
    value.filter(|v| !UNSET_TEXT.contains(v)).map(id_value)
}

const DIGITS: &str = "0123456789";

/// An id as a document's text: the common ones ("0"-"9", "1000") without a copy (root's ids alone are
/// eight per syscall document).
fn id_value(id: &str) -> Text {
    match id.as_bytes() {
        [d @ b'0'..=b'9'] => Cow::Borrowed(&DIGITS[usize::from(d - b'0')..][..1]),
        b"1000" => Cow::Borrowed("1000"),
        _ => Cow::Owned(id.to_owned()),
    }
}

fn path_text<'v>(v: &'v PathValue<'_>) -> Option<Cow<'v, str>> {
    match v {
        PathValue::Text(t) => Some(Cow::Borrowed(t)),
        PathValue::Int(n) => Some(Cow::Owned(n.value.to_string())),
        PathValue::Null => None,
    }
}

fn path_get<'e, 'a>(entry: &'e PathEntry<'a>, key: &str) -> Option<&'e PathValue<'a>> {
    entry.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
}

/// `id_text` of a PATH value (an int or its text).
fn path_id_text(v: Option<&PathValue<'_>>) -> Option<Text> {
    match v? {
        PathValue::Int(n) => {
            (!matches!(n.value, 4_294_967_295 | 4_294_967_294 | -1 | -2)).then(|| match u8::try_from(n.value) {
                Ok(small) if small < 10 => id_value(&DIGITS[usize::from(small)..][..1]),
                _ => Cow::Owned(n.value.to_string()),
            })
        }
        PathValue::Text(t) => id_text(Some(t)),
        PathValue::Null => None,
    }
}

fn int_value(n: &PyInt) -> Value {
    if let Ok(v) = i64::try_from(n.value) {
        Value::Int(v)
    } else if let Ok(v) = u64::try_from(n.value) {
        Value::UInt(v)
    } else if crate::json::big_integers_allowed() {
        Value::Raw(n.value.to_string().into_bytes()) // exact, for the sink to refuse (see batch.rs)
    } else if n.value < 0 {
        Value::NegativeBig(n.value)
    } else {
        Value::Big(n.value.unsigned_abs())
    }
}

/// `posixpath.normpath`.
fn normpath(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let initial =
        if path.starts_with('/') { if path.starts_with("//") && !path.starts_with("///") { 2 } else { 1 } } else { 0 };
    let mut comps: Vec<&str> = Vec::new();
    for comp in path.split('/') {
        if comp.is_empty() || comp == "." {
            continue;
        }
        if comp != ".." || (initial == 0 && comps.is_empty()) || comps.last() == Some(&"..") {
            comps.push(comp);
        } else if !comps.is_empty() {
            comps.pop();
        }
    }
    let mut out = "/".repeat(initial);
    out.push_str(&comps.join("/"));
    if out.is_empty() { ".".into() } else { out }
}

/// `posixpath.dirname`.
fn dirname(path: &str) -> &str {
    let i = path.rfind('/').map_or(0, |i| i + 1);
    let head = &path[..i];
    if !head.is_empty() && head.bytes().any(|b| b != b'/') { head.trim_end_matches('/') } else { head }
}

/// `_field_name`: dots would nest, so they become underscores.
fn field_name(name: &str) -> Text {
    if !name.is_empty() && !name.contains('.') {
        return Cow::Owned(name.to_owned());
    }
    let n = name.replace('.', "_");
    Cow::Owned(if n.is_empty() { "_".into() } else { n })
}

/// Fields as an object with safe key names (`_field_names_safe`).
fn safe_fields<'a>(pairs: impl Iterator<Item = (&'a str, Value)>) -> Obj {
    let mut out = Obj::new();
    for (k, v) in pairs {
        if !k.is_empty() && !k.contains('.') && !out.contains(k) {
            out.push(k.to_owned(), v);
        } else {
            out.set(field_name(k), v);
        }
    }
    out
}

/// The usable values one record gives a field, in order (`_record_values`).
fn record_values<'r>(record: &'r Record, name: &str) -> Vec<Cow<'r, str>> {
    let mut raws: Vec<&str> = Vec::new();
    if record.error.is_none() && !record.fragment {
        if let Some(v) = record.fields.get(name) {
            raws.push(v);
        }
        raws.extend(record.duplicates.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()));
    }
    raws.into_iter()
        .map(|raw| if name == "acct" || name == "grp" { unescape(raw) } else { Cow::Borrowed(unquote(raw)) })
        .filter(|v| !NO_VALUE.contains(&v.as_ref()))
        .collect()
}

fn login_uid(record: &Record, old: bool) -> (Option<String>, Option<&'static str>) {
    let names: [&'static str; 2] = if old { ["old-auid", "old_auid"] } else { ["new-auid", "new_auid"] };
    for name in names {
        if let Some(v) = record_values(record, name).pop() {
            return (Some(v.into_owned()), Some(name));
        }
    }
    let mut auids = record_values(record, "auid");
    if auids.is_empty() {
        return (None, None);
    }
    if old && auids.len() > 1 {
        return (Some(auids.swap_remove(0).into_owned()), None);
    }
    (auids.pop().map(Cow::into_owned), Some("auid"))
}

fn mapping_source(record: &Record, names: &[&'static str]) -> (Option<String>, Option<&'static str>) {
    for &name in names {
        if name == "@old-auid" || name == "@new-auid" {
            return login_uid(record, name == "@old-auid");
        }
        if let Some(v) = record_values(record, name).pop() {
            return (Some(v.into_owned()), Some(name));
        }
    }
    (None, None)
}

/// go-libaudit's test for an id (an unsigned 64-bit decimal).
fn is_number(value: &str) -> bool {
    !value.is_empty()
        && value.bytes().all(|b| b.is_ascii_digit())
        && value.trim_start_matches('0').parse::<u64>().is_ok()
        || (!value.is_empty() && value.bytes().all(|b| b == b'0'))
}

fn ids_get<'a>(facts: Option<&Facts<'a>>, field: &str) -> Option<&'a str> {
    facts?.user_ids.iter().find(|(k, _)| *k == field).and_then(|(_, v)| *v)
}

fn names_get<'a>(facts: Option<&Facts<'a>>, field: &str) -> Option<&'a str> {
    facts?.user_names.iter().find(|(k, _)| *k == field).map(|(_, v)| *v)
}

/// The ENRICHED value of `field.upper()` (an ASCII name needs no upper-case copy to be found).
fn upper_enriched<'r>(record: &'r Record, field: &str) -> Option<&'r str> {
    if field.is_ascii() { record.enriched.get_upper(field) } else { record.enriched.get(&field.to_uppercase()) }
}

fn sender_name(record: &Record, field: Option<&str>, value: &str, facts: Option<&Facts<'_>>) -> Option<String> {
    let field = field?;
    if record.error.is_none() && !record.fragment {
        if let Some(first) = record.fields.get(field) {
            if unquote(first) == value {
                if let Some(named) = upper_enriched(record, field) {
                    if !named.is_empty() && named != "unset" {
                        return Some(named.to_owned());
                    }
                }
            }
        }
    }
    if ids_get(facts, field) == Some(value) {
        if let Some(n) = names_get(facts, field).filter(|n| !n.is_empty()) {
            return Some(n.to_owned());
        }
    }
    None
}

/// `user.*` of a document as its mappers leave it: `top` holds `id`, `name` and the sub-objects,
/// which are `pool`'s ([`USER_SUBS`]), each made only when written to (most documents have none or
/// one: nine objects made and dropped per document cost more than the rest of `user`).
#[derive(Default)]
struct Users<'a> {
    top: Flat<'a, 8>,
    /// The sub-objects in the section (their parents then are too).
    pool: [Option<Flat<'a, 3>>; 9],
}

const U_GROUP: u8 = 0;
const U_EFFECTIVE: u8 = 1;
const U_AUDIT: u8 = 3;
const U_SAVED: u8 = 4;
const U_FILESYSTEM: u8 = 6;
const U_TARGET: u8 = 8;

/// Each pool object's key and the object it is in (None: `user` itself).
const USER_SUBS: [(&str, Option<u8>); 9] = [
    ("group", None),
    ("effective", None),
    ("group", Some(U_EFFECTIVE)),
    ("audit", None),
    ("saved", None),
    ("group", Some(U_SAVED)),
    ("filesystem", None),
    ("group", Some(U_FILESYSTEM)),
    ("target", None),
];

impl<'a> Users<'a> {
    fn exists(&self, at: u8) -> bool {
        self.pool[usize::from(at)].is_some()
    }

    fn sub(&self, at: u8) -> Option<&Flat<'a, 3>> {
        self.pool[usize::from(at)].as_ref()
    }

    /// The object at `at`, made (with its parents) if it is not in the section.
    fn make(&mut self, at: u8) -> &mut Flat<'a, 3> {
        if !self.exists(at) {
            let (key, parent) = USER_SUBS[usize::from(at)];
            match parent {
                None => self.top.sub(key, at),
                Some(p) => self.make(p).sub(key, at),
            };
        }
        self.pool[usize::from(at)].get_or_insert_with(Flat::default)
    }

    /// The object dropped from its parent, with the objects in it.
    fn remove_sub(&mut self, at: u8) {
        let (key, parent) = USER_SUBS[usize::from(at)];
        match parent {
            None => self.top.remove(key),
            Some(p) => {
                if let Some(parent) = &mut self.pool[usize::from(p)] {
                    parent.remove(key);
                }
            }
        }
        for (i, (_, p)) in USER_SUBS.iter().enumerate() {
            if i == usize::from(at) || *p == Some(at) {
                self.pool[i] = None;
            }
        }
    }

    /// `put(doc, "user[.at].leaf", value)`; whether it was written. Most calls have nothing to write.
    #[inline]
    fn put(&mut self, at: Option<u8>, leaf: &'static str, value: Option<Cow<'a, str>>) -> bool {
        match value {
            Some(v) if !v.is_empty() => self.put_text(at, leaf, v),
            _ => false,
        }
    }

    #[inline(never)]
    fn put_text(&mut self, at: Option<u8>, leaf: &'static str, value: Cow<'a, str>) -> bool {
        match at {
            None => self.top.put(leaf, Some(value)),
            Some(i) => self.make(i).put(leaf, Some(value)),
        }
    }

    /// The leaf dropped from its object, if that object is there (`put_or_drop` of None).
    fn drop_leaf(&mut self, at: Option<u8>, leaf: &str) {
        match at {
            None => self.top.remove(leaf),
            Some(i) => {
                if let Some(sub) = &mut self.pool[usize::from(i)] {
                    sub.remove(leaf);
                }
            }
        }
    }

    fn text(&self, at: Option<u8>, leaf: &str) -> Option<&str> {
        match at {
            None => self.top.text(leaf),
            Some(i) => self.sub(i)?.text(leaf),
        }
    }

    fn value(&self, at: Option<u8>, leaf: &str) -> Option<Cow<'a, str>> {
        let found = match at {
            None => self.top.get(leaf),
            Some(i) => self.sub(i).and_then(|sub| sub.get(leaf)),
        };
        match found {
            Some(Val::Str(s)) => Some(s.clone()),
            _ => None,
        }
    }

    /// `drop_empty(user)`: objects left empty are dropped, innermost first.
    fn drop_empty(&mut self) {
        for i in (0..USER_SUBS.len() as u8).rev() {
            if self.sub(i).is_some_and(Flat::is_empty) {
                self.remove_sub(i);
            }
        }
    }
}

/// Where an entity of the Auditbeat mappings goes under `user` (None: `user` itself).
fn entity_at(entity: Entity) -> Option<u8> {
    match entity {
        Entity::User | Entity::Group => None,
        Entity::Effective => Some(U_EFFECTIVE),
        Entity::Target => Some(U_TARGET),
        Entity::Audit => Some(U_AUDIT),
    }
}

/// `_map_users_as_auditbeat` on the user and group sections; whether each is in the document after.
fn map_users_as_auditbeat<'a>(
    users: &mut Users<'a>,
    group: &mut Flat<'a, 2>,
    order: &mut Order<Top, TOP_KEYS>,
    record: &Record,
    mappings: Mapping,
    facts: Option<&Facts<'_>>,
) {
    for &(entity, sources) in mappings {
        let (value, field) = mapping_source(record, sources);
        let (ident, mut label) = match value {
            Some(v) if !UNSET_TEXT.contains(&v.as_str()) => {
                if is_number(&v) {
                    let label = if entity == Entity::Group { None } else { sender_name(record, field, &v, facts) };
                    (Some(v), label)
                } else {
                    (None, Some(v))
                }
            }
            _ => (None, None),
        };
        if entity == Entity::Group {
            if let Some(grp) = record_values(record, "grp").pop() {
                label = Some(grp.into_owned());
            }
        }
        for (leaf, value) in [("id", ident), ("name", label)] {
            match (entity, value) {
                (Entity::Group, Some(v)) => {
                    if group.put(leaf, Some(Cow::Owned(v))) {
                        order.touch(Top::Group);
                    }
                }
                (Entity::Group, None) => group.remove(leaf),
                (_, Some(v)) => {
                    if users.put(entity_at(entity), leaf, Some(Cow::Owned(v))) {
                        order.touch(Top::User);
                    }
                }
                (_, None) => users.drop_leaf(entity_at(entity), leaf),
            }
        }
    }
    if order.contains(Top::User) {
        let same = users.exists(U_EFFECTIVE)
            && ["id", "name"]
                .iter()
                .any(|k| users.top.text(k).is_some_and(|v| users.text(Some(U_EFFECTIVE), k) == Some(v)));
        if same {
            users.remove_sub(U_EFFECTIVE);
        }
        users.drop_empty();
        if users.top.is_empty() {
            order.remove(Top::User);
        }
    }
    if group.is_empty() {
        order.remove(Top::Group);
    }
}

/// Why an event made no document of its own here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapError {
    /// What the Python mapper raises (its repr): the pipeline dead-letters the event.
    Internal(PyError),
}

fn user_msg_get<'f>(facts: Option<&'f Facts<'_>>, key: &str) -> Option<&'f str> {
    let m = facts?.user_msg.as_ref()?;
    if key == "text" {
        return m.text;
    }
    m.fields.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_ref())
}

fn has_user_msg(facts: Option<&Facts<'_>>) -> bool {
    facts.and_then(|f| f.user_msg.as_ref()).is_some_and(|m| !m.fields.is_empty() || m.text.is_some())
}

/// The document's time: the event's, else the arrival time.
pub fn event_time(event: &Event<impl Sized>, received_ns: u64) -> Result<String, PyError> {
    match &event.time_ns {
        Some(Num::Small(v)) if *v <= LATEST_DATE_NS => iso_ns(*v),
        // beyond what @timestamp (date_nanos) holds: the arrival time stands for it (value_out_of_range)
        _ => iso_ns(u128::from(received_ns)),
    }
}

/// The latest time a `date_nanos` field (`@timestamp`) holds, in ns: 2262-04-11T23:47:16.854775807Z.
pub const LATEST_DATE_NS: u128 = i64::MAX as u128;

/// Whether the event's time is beyond what `@timestamp` holds ([`event_time`] then gives the arrival time).
fn time_out_of_range(event: &Event<impl Sized>) -> bool {
    match &event.time_ns {
        Some(Num::Small(v)) => *v > LATEST_DATE_NS,
        Some(Num::Huge(_)) => true,
        None => false,
    }
}

/// Interpreted fields of every record, the first value of each name kept: (record, field) indexes
/// into the event, in a buffer the thread reuses ([`Scratch::merged`]).
struct Merged<'v> {
    records: &'v [Record],
    values: &'v Values<'v>,
    at: &'v [(u32, u32)],
}

impl<'v> Merged<'v> {
    /// The (name, interpreted value) of an entry of `at`.
    #[inline]
    fn pair(&self, (r, f): (u32, u32)) -> (&'v str, &'v str) {
        let (r, f) = (r as usize, f as usize);
        let value = self.values.record(r).and_then(|v| v.get(f)).unwrap_or_default();
        (self.records[r].fields.key_at(f), value)
    }

    fn pairs(&self) -> impl Iterator<Item = (&'v str, &'v str)> + Clone + '_ {
        self.at.iter().map(|&at| self.pair(at))
    }

    /// The name of an entry of `at`.
    #[inline]
    fn name(&self, (r, f): (u32, u32)) -> &'v str {
        self.records[r as usize].fields.key_at(f as usize)
    }

    /// The value of `name`: the first record's that has it (as [`merged_fields`] keeps it), found
    /// with the records' own lookup.
    fn get(&self, name: &str) -> Option<&'v str> {
        let id = name_id(name);
        for (record, vals) in self.records.iter().zip(self.values.iter()) {
            let Some(vals) = vals else { continue };
            if let Some(value) = record.fields.position_of(id, name).and_then(|f| vals.get(f)) {
                return Some(value);
            }
        }
        None
    }
}

/// `merged`'s entries for the event's records: each field of the first record holding its name. Which
/// fields those are the interpretation marked (`first`, per field of the records it rendered; empty for an
/// event of one record, whose fields are all first).
fn merged_fields(merged: &mut Vec<(u32, u32)>, records: &[Record], values: &Values<'_>, first: &[bool]) {
    merged.clear();
    merged.reserve(records.iter().map(|r| r.fields.len()).sum());
    let single = first.is_empty();
    let mut first = first.iter();
    for (r, (record, vals)) in records.iter().zip(values.iter()).enumerate() {
        let Some(vals) = vals else { continue };
        for f in 0..record.fields.len().min(vals.len()) {
            if single || first.next() == Some(&true) {
                merged.push((r as u32, f as u32));
            }
        }
    }
}

/// A Linux ECS document's top-level keys ([`Order`]: the order the mapper first writes each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Top {
    Timestamp,
    Labels,
    Event,
    Error,
    Auditrecv,
    Host,
    Related,
    Observer,
    User,
    Group,
    Process,
    File,
    Source,
    Destination,
    Network,
    Tags,
    Auditd,
    Message,
}

const TOP_KEYS: usize = 18;

/// Why a Linux ECS document was not written ([`write_linux_ecs`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// The mapper's own error: the pipeline dead-letters the event.
    Map(MapError),
    /// An integer beyond 64 bits, which orjson refuses: what was written of the document is to be cut.
    Unencodable(JsonError),
    /// The enrichment applies a zone to this document (a zlogin into a zone the sender knows): that
    /// merge is made on the document's values ([`super::enrich::enrich`]).
    NeedsValues,
}

impl From<JsonError> for WriteError {
    fn from(e: JsonError) -> Self {
        WriteError::Unencodable(e)
    }
}

/// The tag of a document that leaves out a value beyond the range of the field it belongs in (docs/schema.md).
pub const OUT_OF_RANGE_TAG: &str = "value_out_of_range";

/// Whether an integer fits a field mapped as `long` (the engines' signed 64 bits).
fn fits_long(n: &PyInt) -> bool {
    i64::try_from(n.value).is_ok()
}

/// [`fits_long`] for a header number (the serial).
fn num_fits_long(n: &Num) -> bool {
    matches!(n, Num::Small(v) if i64::try_from(*v).is_ok())
}

/// Whether an ECS document leaves a value out of a `long` field (`event.sequence`/`auditd.sequence`,
/// `process.pid`, `process.parent.pid`, `process.args_count`) because it does not fit: the document is
/// tagged and keeps the event's lines in `event.original` (the serial's text is nowhere else).
fn holds_out_of_range(
    event_serial: &Event<impl Sized>,
    pid: Option<&PyInt>,
    ppid: Option<&PyInt>,
    argc: Option<&PyInt>,
) -> bool {
    event_serial.serial.as_ref().is_some_and(|s| !num_fits_long(s))
        || [pid, ppid, argc].into_iter().flatten().any(|n| !fits_long(n))
        || time_out_of_range(event_serial)
}

/// The event's raw lines, one per record, as `event.original` holds them.
fn raw_lines(out: &mut String, records: &[Record]) {
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&r.raw);
    }
}

/// v1: every integer that does not fit the `long` its field is mapped as (`return`, `subject.*`) left out,
/// and the document tagged; the text stays in `records[].fields`.
fn leave_out_out_of_range(doc: &mut Obj) {
    fn out_of_range(v: &Value) -> bool {
        match v {
            Value::Big(_) | Value::NegativeBig(_) => true,
            Value::UInt(u) => i64::try_from(*u).is_err(),
            _ => false,
        }
    }
    fn drop_in(o: &mut Obj) -> bool {
        let before = o.entries.len();
        o.entries.retain(|(_, v)| !out_of_range(v));
        let mut dropped = o.entries.len() != before;
        for (_, v) in o.entries.iter_mut() {
            if let Value::Obj(inner) = v {
                dropped |= drop_in(inner);
            }
        }
        dropped
    }
    if drop_in(doc) {
        doc.add_unique("tags", [Some(Value::from(OUT_OF_RANGE_TAG))]);
    }
}

/// A Python int as orjson writes it (an error beyond 64 bits, unless they are allowed).
fn write_int(w: &mut JsonWriter, n: &PyInt) -> Result<(), JsonError> {
    w.i128(n.value)
}

/// `put(section, key, text)` written straight: absent and empty text are left out.
fn put_str(w: &mut JsonWriter, key: &str, value: Option<&str>) {
    if let Some(v) = value.filter(|v| !v.is_empty()) {
        w.key(key);
        w.str(v);
    }
}

/// A section written only if something goes in it: `body` writes its entries.
fn section(
    w: &mut JsonWriter,
    key: &str,
    body: impl FnOnce(&mut JsonWriter) -> Result<(), JsonError>,
) -> Result<(), JsonError> {
    let mark = w.buf.len();
    w.key(key);
    w.begin_obj();
    let inner = w.buf.len();
    body(w)?;
    if w.buf.len() == inner {
        w.buf.truncate(mark);
    } else {
        w.end_obj();
    }
    Ok(())
}

const NO_POOL: [Option<Flat<'static, 1>>; 0] = [];

/// One ECS document for one Linux audit event (`linux_to_ecs`), written as JSON to `w` (orjson's
/// bytes, keys in the order the Python mapper sets them) with the per-sender `enrichment` merged as
/// `Enricher._enrich` merges it. `stamp` is [`event_time`]'s. No document model: the facts the mapper
/// reads back (the users for the message and `related.user`, `process` for the zlogin check) are kept
/// as they are worked out, and each section is written once, in its final state.
pub fn write_linux_ecs<T>(
    w: &mut JsonWriter,
    event: &Event<T>,
    parties: &Parties,
    stamp: &str,
    enrichment: Option<&Enrichment>,
) -> Result<(), WriteError> {
    let mut interpreted = interpret(event);
    // argv and the title are moved out rather than copied (nothing else reads them)
    let (execve, title) = match interpreted.facts.as_mut() {
        Some(f) => (f.process.execve.take(), f.process.title.take()),
        None => (None, None),
    };
    let facts = interpreted.facts.as_ref();
    let values = &interpreted.values;
    let records = &event.records;
    // the record types, on the stack for all but long events
    let mut few_types = [""; 16];
    let many_types: Vec<&str>;
    let types: &[&str] = if records.len() <= few_types.len() {
        for (t, r) in few_types.iter_mut().zip(records) {
            *t = r.type_name.as_ref();
        }
        &few_types[..records.len()]
    } else {
        many_types = records.iter().map(|r| r.type_name.as_ref()).collect();
        &many_types
    };
    let syscall = facts.and_then(|f| f.syscall.as_ref());
    let apparmor = types.contains(&"AVC")
        && records
            .iter()
            .any(|r| r.type_name == "AVC" && r.error.is_none() && !r.fragment && r.fields.get("apparmor").is_some());
    let (primary_type, cat) = categorize(types, syscall.and_then(|s| s.name), apparmor);
    let mut scratch = SCRATCH.take().cleared();
    let mut merged_at = std::mem::take(&mut scratch.merged);
    merged_fields(&mut merged_at, records, values, &interpreted.first);
    let merged = Merged { records, values, at: &merged_at };
    let keys: &[String] = facts.map_or(&[], |f| &f.keys);
    let type_num = records.iter().find(|r| r.type_name == primary_type).and_then(|r| r.type_num.as_ref());
    let user_space = match type_num {
        Some(Num::Small(n)) => (1100..1300).contains(n) || (2100..3000).contains(n),
        _ => false,
    };
    let outcome = facts.and_then(|f| f.outcome).unwrap_or("unknown");
    let node = event.node.as_deref().filter(|n| !n.is_empty());
    let decode_error = event.error.filter(|e| !e.is_empty());
    let pipeline_error = decode_error.is_some() && event.complete == Complete::Error;

    let mut order: Order<Top, TOP_KEYS> = Order::default();
    order.touch(Top::Timestamp);
    order.touch(Top::Labels);
    order.touch(Top::Event);

    // -- error.* of a failed call (a decode error's come later)
    let mut error: Flat<'_, 3> = Flat::default();
    if outcome == "failure" {
        if let Some((name, text)) = syscall.and_then(|s| s.errno) {
            if !name.is_empty() {
                error.put("code", Some(Cow::Borrowed(name)));
                let message = if text.is_empty() { errno_message(name) } else { Some(text) };
                error.put("message", message.map(Cow::Borrowed));
                order.touch(Top::Error);
            }
        }
    }
    order.touch(Top::Auditrecv);

    // -- host.* and related.* of the sender (`host_fields`), the receiver
    let host = parties.host_facts(node);
    if host.name.is_some() || host.ip.is_some() {
        order.touch(Top::Host);
    }
    let mut related: Lists<'_, 3, 8> = Lists::default();
    if related.add_unique("ip", host.ip.map(Cow::Borrowed)) {
        order.touch(Top::Related);
    }
    if related.add_unique("hosts", host.related_host.map(Cow::Borrowed)) {
        order.touch(Top::Related);
    }
    if parties.observer_json().is_some() {
        order.touch(Top::Observer);
    }

    // -- users
    let mut users = Users::default();
    for (field, at) in USER_ID_FIELDS {
        users.put(at, "id", id_of(ids_get(facts, field)));
        users.put(at, "name", names_get(facts, field).map(Cow::Borrowed));
    }
    if !users.top.is_empty() {
        order.touch(Top::User);
    }
    let mut group: Flat<'_, 2> = Flat::default();
    for leaf in ["id", "name"] {
        if group.put(leaf, users.value(Some(U_GROUP), leaf)) {
            order.touch(Top::Group);
        }
    }
    let mappings = user_mappings(primary_type);
    let main_record = mappings.and_then(|_| records.iter().find(|r| r.type_name == primary_type));
    if let (Some(mappings), Some(main)) = (mappings, main_record) {
        map_users_as_auditbeat(&mut users, &mut group, &mut order, main, mappings, facts);
    } else if user_space {
        let account_name = clean(user_msg_get(facts, "acct"));
        let account_id = id_of(clean(user_msg_get(facts, "id")));
        if primary_type == "CHGRP_ID" {
            if group.put("id", account_id) {
                order.touch(Top::Group);
            }
            if group.put("name", clean(merged.get("grp")).or(account_name).map(Cow::Borrowed)) {
                order.touch(Top::Group);
            }
        } else {
            let at = if IAM_TARGET_TYPES.contains(&primary_type) { U_TARGET } else { U_EFFECTIVE };
            if users.put(Some(at), "id", account_id) {
                order.touch(Top::User);
            }
            if users.put(Some(at), "name", account_name.map(Cow::Borrowed)) {
                order.touch(Top::User);
            }
        }
    }

    // -- process
    order.touch(Top::Process);
    let process = facts.map(|f| &f.process);
    let pid = process.and_then(|p| p.pid.as_ref());
    let exe = clean(process.and_then(|p| p.exe.as_deref()));
    let pname: Option<Cow<'_, str>> = clean(process.and_then(|p| p.comm.as_deref()))
        .map(Cow::Borrowed)
        .or_else(|| basename_of(exe.unwrap_or("")).map(Cow::Borrowed));
    let (argc, mut args) = match execve {
        Some((argc, args)) => (argc, Some(args)),
        None => (None, None),
    };
    let (title, title_args) = match title {
        Some((title, argv)) => (Some(title), Some(argv)),
        None => (None, None),
    };
    if args.as_ref().is_none_or(Vec::is_empty) && title_args.is_some() {
        args = title_args;
    }
    let args = args.filter(|a| !a.is_empty());
    let cwd: Option<&str> = clean(process.and_then(|p| p.cwd.as_deref()))
        .or_else(|| if user_space { clean(merged.get("cwd")) } else { None });
    let session = facts.and_then(|f| f.session);
    let entity_id = pid.map(|pid| {
        let mut digits = itoa::Buffer::new();
        let pid = digits.format(pid.value);
        short_hash_remembered(&[&parties.identity, node.unwrap_or(""), pid, session.unwrap_or("None")])
    });

    // -- files
    let no_paths: Vec<PathEntry<'_>> = Vec::new();
    let paths: &[PathEntry<'_>] = facts.map_or(&no_paths, |f| &f.paths);
    let files = file_candidates(paths, cwd);
    let file_path: Option<&str> = files.path.as_deref();
    let file_path2: Option<&str> = files.path2.as_deref();
    let file_first = match file_path {
        Some(_) if matches!(cat.object_type, "file" | "filesystem" | "" | "process") => {
            order.touch(Top::File);
            files.first
        }
        _ => None,
    };

    // -- network
    let sa = facts.and_then(|f| {
        f.sockaddr.iter().find(|s| matches!(s, SockAddr::Inet { .. } | SockAddr::Inet6 { .. } | SockAddr::Local { .. }))
    });
    let (sock_text, sa_address, sa_port): (Option<String>, Option<String>, Option<u16>) = match sa {
        Some(SockAddr::Inet { address, port }) => {
            let t = address.to_string();
            (Some(t.clone()), Some(t), Some(*port))
        }
        Some(SockAddr::Inet6 { address, port, .. }) => {
            let t = ipv6_text(address);
            (Some(t.clone()), Some(t), Some(*port))
        }
        Some(SockAddr::Local { path }) => (Some(path.to_string()), None, None),
        _ => (None, None, None),
    };
    let mut source: Flat<'_, 4> = Flat::default();
    let mut destination: Flat<'_, 4> = Flat::default();
    let mut network: Flat<'_, 3> = Flat::default();
    if let Some(sa) = sa {
        let (side, key) =
            if cat.direction == "ingress" { (&mut source, Top::Source) } else { (&mut destination, Top::Destination) };
        if side.put("address", sock_text.as_deref().map(Cow::Borrowed)) {
            order.touch(key);
        }
        if let Some(ip) = sa_address.as_deref().and_then(valid_ip) {
            let routable = routable_ip(&ip);
            side.put("ip", Some(Cow::Owned(ip)));
            order.touch(key);
            if related.add_unique("ip", routable.map(Cow::Owned)) {
                order.touch(Top::Related);
            }
            if let Some(port) = sa_port.filter(|p| *p > 0) {
                side.set("port", Val::UInt(u64::from(port)));
            }
            let kind = if matches!(sa, SockAddr::Inet6 { .. }) { "ipv6" } else { "ipv4" };
            network.put("type", Some(Cow::Borrowed(kind)));
            order.touch(Top::Network);
        } else if matches!(sa, SockAddr::Local { .. }) {
            network.put("transport", Some(Cow::Borrowed("unix")));
            order.touch(Top::Network);
        }
    }
    if user_space {
        if let Some(addr) = clean(user_msg_get(facts, "addr")).and_then(routable_ip) {
            source.put("ip", Some(Cow::Owned(addr.clone())));
            source.put("address", Some(Cow::Owned(addr.clone())));
            order.touch(Top::Source);
            if related.add_unique("ip", [Cow::Owned(addr)]) {
                order.touch(Top::Related);
            }
        }
        if let Some(h) = clean(user_msg_get(facts, "hostname")).filter(|h| valid_ip(h).is_none()) {
            source.put("domain", Some(Cow::Borrowed(h)));
            order.touch(Top::Source);
            if related.add_unique("hosts", [Cow::Borrowed(h)]) {
                order.touch(Top::Related);
            }
        }
    }
    if !cat.direction.is_empty() && (sa.is_some() || source.get("ip").is_some()) {
        network.put("direction", Some(Cow::Borrowed(cat.direction)));
        order.touch(Top::Network);
    }

    // -- tags, and a decode error's event.* and error.*
    let mut tags: Lists<'_, 1, 4> = Lists::default();
    if tags.add_unique("tags", keys.iter().map(|k| Cow::Borrowed(k.as_str()))) {
        order.touch(Top::Tags);
    }
    let mut original = String::new();
    if let Some(error_text) = decode_error {
        tags.add_unique("tags", [Cow::Borrowed("decode_error")]);
        order.touch(Top::Tags);
        for (i, r) in records.iter().enumerate() {
            if i > 0 {
                original.push('\n');
            }
            original.push_str(&r.raw);
        }
        if pipeline_error {
            error.put("type", Some(Cow::Borrowed("decode_error")));
            error.put("message", Some(Cow::Borrowed(error_text)));
            order.touch(Top::Error);
        }
    }
    if event.lost_before > 0 {
        tags.add_unique("tags", [Cow::Borrowed("lost_events_before")]);
        order.touch(Top::Tags);
    }
    let args_count = args.as_ref().and(argc.as_ref());
    if holds_out_of_range(event, pid, process.and_then(|p| p.ppid.as_ref()), args_count) {
        tags.add_unique("tags", [Cow::Borrowed(OUT_OF_RANGE_TAG)]);
        order.touch(Top::Tags);
        if original.is_empty() {
            raw_lines(&mut original, records);
        }
    }

    // -- summary
    let sock_port = sa_port.filter(|p| *p > 0 && sa.is_some());
    let summary =
        summary(&cat, primary_type, &merged, facts, file_path, file_path2, sock_text.as_deref(), keys, exe, sock_port);

    // -- auditd.records and auditd.paths, which auditd.data and the long-values cut read
    paths_json(&mut scratch.paths, paths)?;
    let spans_valid = records_json(&mut scratch, records, values)?;
    // searched only if their writers wrote a text that long (every string in them is one they wrote)
    let long_strings =
        |w: &JsonWriter| w.longest_text() > FLAT_VALUE_LIMIT && has_long_strings(&w.buf, FLAT_VALUE_LIMIT);
    let (cut_paths, cut_records) = (long_strings(&scratch.paths), long_strings(&scratch.records));
    order.touch(Top::Auditd);
    if cut_paths || cut_records {
        tags.add_unique("tags", [Cow::Borrowed("long_values_cut_in_index")]);
        order.touch(Top::Tags);
    }

    // -- related.user, the message
    let mut user_values: [Option<Cow<'_, str>>; 10] = Default::default();
    let mut n = 0;
    for (at, leaves) in RELATED_USER_LEAVES {
        // each object looked for once, not once per leaf
        let (flat, sub) = match at {
            None => (Some(&users.top), None),
            Some(i) => (None, users.sub(i)),
        };
        for leaf in leaves {
            let found = flat.and_then(|f| f.get(leaf)).or_else(|| sub.and_then(|f| f.get(leaf)));
            if let Some(Val::Str(s)) = found {
                user_values[n] = Some(s.clone());
                n += 1;
            }
        }
    }
    let user_values = user_values.into_iter().flatten();
    if related.add_unique("user", user_values) {
        order.touch(Top::Related);
    }
    order.touch(Top::Message);
    summary_message(&mut scratch.message, &users, &summary, &cat.action, outcome);

    // -- the enrichment (`Enricher._enrich`) of a document no zone applies to
    let mut ptr_hostname = None;
    if let Some(e) = enrichment {
        if !e.zones.is_empty() {
            let args = args.iter().flatten().map(|a| Some(&**a));
            if let Some(target) = zlogin_zone(exe, args) {
                if e.zones.iter().any(|(k, _)| *k == target) {
                    return Err(WriteError::NeedsValues);
                }
            }
        }
        order.touch(Top::Host); // `host` made (empty, last) if the document has none
        if let Some(ptr) = e.hostname.as_deref().filter(|p| !p.is_empty()) {
            if host.ip.is_some() && host.hostname.is_none() {
                ptr_hostname = Some(ptr);
                related.add_unique("hosts", [Cow::Borrowed(ptr)]);
                order.touch(Top::Related);
            }
        }
    }

    // -- written, in order
    w.begin_obj();
    for key in order.iter() {
        match key {
            Top::Timestamp => {
                w.key("@timestamp");
                w.plain(stamp);
            }
            Top::Labels => {
                w.key("labels");
                write_labels(w, enrichment.map_or(&[][..], |e| &e.labels));
            }
            Top::Event => {
                w.key("event");
                w.begin_obj();
                w.key("kind");
                w.str(if pipeline_error {
                    "pipeline_error"
                } else if cat.kind.is_empty() {
                    "event"
                } else {
                    cat.kind
                });
                if !cat.category.is_empty() {
                    w.key("category");
                    w.plain_list(cat.category.as_slice());
                }
                if !cat.types.is_empty() {
                    w.key("type");
                    w.plain_list(cat.types.as_slice());
                }
                put_str(w, "action", Some(&cat.action));
                w.key("module");
                w.plain("auditd");
                w.key("dataset");
                w.plain("linux.audit");
                match type_num {
                    Some(Num::Small(n)) => {
                        w.key("code");
                        w.plain(itoa::Buffer::new().format(*n));
                    }
                    Some(n) => {
                        w.key("code");
                        w.plain(&n.to_string());
                    }
                    None => {}
                }
                if let Some(serial) = event.serial.as_ref().filter(|s| num_fits_long(s)) {
                    w.key("sequence");
                    serial.write_json(w)?;
                }
                w.key("outcome");
                w.str(outcome);
                put_str(w, "provider", Some(&parties.source.transport));
                put_str(w, "reason", decode_error);
                put_str(w, "original", Some(&original));
                w.end_obj();
            }
            Top::Error => {
                w.key("error");
                error.write(w, &NO_POOL);
            }
            Top::Auditrecv => {
                w.key("auditrecv");
                w.buf.extend_from_slice(parties.auditrecv_json());
            }
            Top::Host => {
                w.key("host");
                w.begin_obj();
                put_str(w, "name", host.name);
                put_str(w, "hostname", host.hostname);
                if let Some(ip) = host.ip {
                    w.key("ip");
                    w.str_list(&[ip]);
                }
                put_str(w, "hostname", ptr_hostname);
                w.end_obj();
            }
            Top::Related => {
                w.key("related");
                related.write(w);
            }
            Top::Observer => {
                w.key("observer");
                w.buf.extend_from_slice(parties.observer_json().unwrap_or(b"{}"));
            }
            Top::User => {
                w.key("user");
                users.top.write(w, &users.pool);
            }
            Top::Group => {
                w.key("group");
                group.write(w, &NO_POOL);
            }
            Top::Process => section(w, "process", |w| {
                if let Some(pid) = pid.filter(|n| fits_long(n)) {
                    w.key("pid");
                    write_int(w, pid)?;
                }
                if let Some(ppid) = process.and_then(|p| p.ppid.as_ref()).filter(|n| fits_long(n)) {
                    w.key("parent");
                    w.begin_obj();
                    w.key("pid");
                    write_int(w, ppid)?;
                    w.end_obj();
                }
                put_str(w, "executable", exe);
                put_str(w, "name", pname.as_deref());
                if let Some(args) = &args {
                    w.key("args");
                    w.str_list(args);
                    match &argc {
                        Some(n) if !fits_long(n) => {} // out of range: left out (value_out_of_range)
                        Some(n) => {
                            w.key("args_count");
                            write_int(w, n)?;
                        }
                        None => {
                            w.key("args_count");
                            w.u64(args.len() as u64);
                        }
                    }
                    let command_line = &mut scratch.text;
                    command_line.clear();
                    for (i, a) in args.iter().enumerate() {
                        if i > 0 {
                            command_line.push(' ');
                        }
                        command_line.push_str(a);
                    }
                    put_str(w, "command_line", Some(command_line));
                }
                put_str(w, "title", title.as_deref());
                put_str(w, "working_directory", cwd);
                put_str(w, "entity_id", entity_id.as_ref().map(ShortHash::as_str));
                Ok(())
            })?,
            Top::File => {
                let (Some(fp), Some(first)) = (file_path, file_first) else { continue };
                section(w, "file", |w| {
                    put_str(w, "path", Some(fp));
                    put_str(w, "name", basename_of(fp));
                    if fp.contains('/') {
                        let d = dirname(fp);
                        put_str(w, "directory", Some(if d.is_empty() { "/" } else { d }));
                    }
                    put_str(w, "inode", path_get(first, "inode").and_then(path_text).as_deref());
                    let mode = path_get(first, "mode").and_then(path_text).and_then(|m| py_int(&m, 8));
                    if let Some(mode) = mode {
                        put_str(w, "mode", Some(&format!("{:04o}", mode.value & 0o7777)));
                        put_str(w, "type", file_type_from_mode((mode.value & 0o170000) as u32));
                    }
                    put_str(w, "uid", path_id_text(path_get(first, "ouid")).as_deref());
                    put_str(w, "gid", path_id_text(path_get(first, "ogid")).as_deref());
                    let dev = path_get(first, "dev").and_then(path_text);
                    put_str(w, "device", clean(dev.as_deref()));
                    if TWO_PATH_ACTIONS.contains(&cat.action.as_ref()) {
                        put_str(w, "target_path", file_path2);
                    }
                    Ok(())
                })?;
            }
            Top::Source => {
                w.key("source");
                source.write(w, &NO_POOL);
            }
            Top::Destination => {
                w.key("destination");
                destination.write(w, &NO_POOL);
            }
            Top::Network => {
                w.key("network");
                network.write(w, &NO_POOL);
            }
            Top::Tags => {
                w.key("tags");
                tags.write_list(w, "tags");
            }
            Top::Auditd => {
                w.key("auditd");
                let auditd = Auditd {
                    primary_type,
                    types,
                    outcome,
                    session,
                    node,
                    summary: &summary,
                    merged: &merged,
                    execve_event: types.contains(&"EXECVE"),
                    spans: spans_valid.then_some((&scratch.spans[..], &scratch.record_spans[..])),
                    records_json: &scratch.records.buf,
                    paths_json: &scratch.paths.buf,
                    cut: (cut_paths, cut_records),
                };
                auditd.write(w, event, &mut scratch.text)?;
            }
            Top::Message => {
                w.key("message");
                w.str(&scratch.message);
            }
        }
    }
    w.end_obj();
    scratch.merged = merged_at;
    SCRATCH.set(scratch);
    interpreted.recycle();
    Ok(())
}

/// (audit id field, where its id and name go under `user`), in document order.
const USER_ID_FIELDS: [(&str, Option<u8>); 9] = [
    ("uid", None),
    ("gid", Some(U_GROUP)),
    ("euid", Some(U_EFFECTIVE)),
    ("egid", Some(U_EFFECTIVE + 1)),
    ("auid", Some(U_AUDIT)),
    ("suid", Some(U_SAVED)),
    ("sgid", Some(U_SAVED + 1)),
    ("fsuid", Some(U_FILESYSTEM)),
    ("fsgid", Some(U_FILESYSTEM + 1)),
];

/// The user values `related_users` copies into related.user, in its order.
const RELATED_USER_LEAVES: [(Option<u8>, &[&str]); 6] = [
    (None, &["id", "name"]),
    (Some(U_EFFECTIVE), &["id", "name"]),
    (Some(U_AUDIT), &["id", "name"]),
    (Some(U_SAVED), &["id"]),
    (Some(U_FILESYSTEM), &["id"]),
    (Some(U_TARGET), &["id", "name"]),
];

/// `labels`: the dialect, then the sender's static-map labels as `dict.update` merges them.
fn write_labels(w: &mut JsonWriter, labels: &[(String, String)]) {
    let last = |key: &str| labels.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    w.begin_obj();
    w.key("dialect");
    w.str(last("dialect").unwrap_or("linux"));
    for (i, (k, _)) in labels.iter().enumerate() {
        if k != "dialect" && !labels[..i].iter().any(|(seen, _)| seen == k) {
            w.key_str(k);
            w.str(last(k).unwrap_or_default());
        }
    }
    w.end_obj();
}

/// `summary_message`: `<actor> <action> <object> (<outcome>)`, from the final user section.
fn summary_message(out: &mut String, users: &Users<'_>, summary: &Summary<'_>, action: &str, outcome: &str) {
    let present = |at: Option<u8>, leaf: &str| users.text(at, leaf).filter(|v| !v.is_empty());
    let actor = present(Some(U_AUDIT), "name")
        .or_else(|| present(None, "name"))
        .or_else(|| present(Some(U_AUDIT), "id"))
        .or_else(|| users.text(None, "id"));
    out.push_str(actor.unwrap_or("someone"));
    out.push(' ');
    out.push_str(if action.is_empty() { "did" } else { action });
    if let Some(o) = summary.object_primary.as_deref().filter(|o| !o.is_empty()) {
        out.push(' ');
        out.push_str(o);
    }
    out.push_str(" (");
    out.push_str(if outcome.is_empty() { "unknown" } else { outcome });
    out.push(')');
}

/// Every record's interpreted `"key":value` pairs (start, end) and where each record's start.
type PairSpans<'d> = (&'d [(usize, usize)], &'d [usize]);

/// The `auditd` section's parts.
struct Auditd<'d> {
    primary_type: &'d str,
    types: &'d [&'d str],
    outcome: &'d str,
    session: Option<&'d str>,
    node: Option<&'d str>,
    summary: &'d Summary<'d>,
    merged: &'d Merged<'d>,
    execve_event: bool,
    /// Every record's interpreted pairs in `records_json`, and where each record's start.
    spans: Option<PairSpans<'d>>,
    records_json: &'d [u8],
    paths_json: &'d [u8],
    /// Whether paths and records hold strings over the flat limit.
    cut: (bool, bool),
}

impl Auditd<'_> {
    fn write<T>(&self, w: &mut JsonWriter, event: &Event<T>, text: &mut String) -> Result<(), JsonError> {
        let (cut_paths, cut_records) = self.cut;
        w.begin_obj();
        if !self.primary_type.is_empty() {
            w.key("message_type");
            text.clear();
            if self.primary_type.is_ascii() {
                text.push_str(self.primary_type);
                text.make_ascii_lowercase();
            } else {
                text.push_str(&self.primary_type.to_lowercase());
            }
            w.str(text);
        }
        if !self.types.is_empty() {
            w.key("record_types");
            w.str_list(self.types);
        }
        if let Some(serial) = event.serial.as_ref().filter(|s| num_fits_long(s)) {
            w.key("sequence");
            serial.write_json(w)?;
        }
        match self.outcome {
            "success" | "failure" => {
                w.key("result");
                w.plain(if self.outcome == "success" { "success" } else { "fail" });
            }
            _ => {}
        }
        if let Some(session) = self.session.filter(|s| !s.is_empty() && !UNSET_TEXT.contains(s)) {
            w.key("session");
            w.str(session);
        }
        put_str(w, "node", self.node);
        w.key("summary");
        self.summary.write(w);
        w.key("data");
        let execve_event = self.execve_event;
        let is_execve_arg = |k: &str| execve_event && k.starts_with('a') && k[1..].chars().next().is_some_and(is_digit);
        match self.spans {
            // every pair is already written in `records`, as `data` writes it: copied from there
            Some((spans, record_spans)) => {
                w.begin_obj();
                let json = self.records_json;
                let merged = self.merged;
                let kept = merged.at.iter().filter(|&&at| !(execve_event && is_execve_arg(merged.name(at))));
                // pairs one comma apart in `records` (a record's fields, mostly) are copied as one run
                let mut run: Option<(usize, usize)> = None;
                for &(r, f) in kept {
                    let (start, end) = spans[record_spans[r as usize] + f as usize];
                    run = match run {
                        Some((from, to)) if start == to + 1 && json[to] == b',' => Some((from, end)),
                        Some((from, to)) => {
                            w.item();
                            w.buf.extend_from_slice(&json[from..to]);
                            Some((start, end))
                        }
                        None => Some((start, end)),
                    };
                }
                if let Some((from, to)) = run {
                    w.item();
                    w.buf.extend_from_slice(&json[from..to]);
                }
                w.end_obj();
            }
            None => write_fields(w, self.merged.pairs().filter(|(k, _)| !is_execve_arg(k))),
        }
        let records_full = (cut_paths || cut_records).then(|| python_dumps(self.records_json));
        for (key, json, cut) in [("paths", self.paths_json, cut_paths), ("records", self.records_json, cut_records)] {
            if json != b"[]" {
                w.key(key);
                if cut {
                    w.buf.extend_from_slice(&cap_strings(json, FLAT_VALUE_LIMIT));
                } else {
                    w.buf.extend_from_slice(json);
                }
            }
        }
        if let Some(full) = records_full {
            w.key("records_full");
            w.str(&full);
        }
        w.key("complete");
        w.plain(event.complete.as_str());
        if event.lost_before > 0 {
            w.key("lost_before");
            w.u64(u64::from(event.lost_before));
        }
        put_str(w, "error", event.error);
        w.end_obj();
        Ok(())
    }
}

/// The document as values: what [`write_linux_ecs`] writes (not enriched), read back. For the
/// callers that keep documents (`add`, the dead-letter and cut paths); `received_ns` times it when the
/// event has no time.
pub fn linux_to_ecs<T>(event: &Event<T>, parties: &Parties, received_ns: u64) -> Result<Obj, WriteError> {
    let stamp = event_time(event, received_ns).map_err(|e| WriteError::Map(MapError::Internal(e)))?;
    let mut w = JsonWriter::with_capacity(4096);
    write_linux_ecs(&mut w, event, parties, &stamp, None)?;
    match super::parse::parse(&w.buf) {
        Some(Value::Obj(doc)) => Ok(doc),
        _ => Err(WriteError::Map(MapError::Internal(PyError("the document's JSON did not read back".into())))),
    }
}

/// What the mapper takes of `_file_candidates` (PATH items naming the object(s), their names made
/// absolute): the first two names, and the item file.* describes (the first named like the first
/// with an inode, else the first). Names are borrowed unless made absolute.
#[derive(Default)]
struct Files<'p, 'a> {
    path: Option<Cow<'p, str>>,
    path2: Option<Cow<'p, str>>,
    first: Option<&'p PathEntry<'a>>,
}

fn file_candidates<'p, 'a>(paths: &'p [PathEntry<'a>], cwd: Option<&'p str>) -> Files<'p, 'a> {
    let named = |p: &'p PathEntry<'a>| -> Option<Cow<'p, str>> {
        let name = path_get(p, "name").and_then(path_text)?;
        clean(Some(&name))?;
        Some(name)
    };
    let is_parent = |p: &PathEntry<'_>| match path_get(p, "nametype") {
        // `.upper() == "PARENT"`: no copy for ASCII text, where upper-casing is the ASCII one
        Some(v) => path_text(v).is_some_and(|t| {
            if t.is_ascii() { t.eq_ignore_ascii_case("PARENT") } else { t.to_uppercase() == "PARENT" }
        }),
        None => false,
    };
    // the items that are not a PARENT, if any is named; else all named ones
    let objects = paths.iter().any(|p| !is_parent(p) && named(p).is_some());
    let chosen = move || {
        paths.iter().filter(move |p| !objects || !is_parent(p)).filter_map(move |p| {
            let name = named(p)?;
            let name = match cwd {
                Some(cwd) if !cwd.is_empty() && !name.starts_with('/') => {
                    let joined = if cwd.ends_with('/') { format!("{cwd}{name}") } else { format!("{cwd}/{name}") };
                    Cow::Owned(normpath(&joined))
                }
                _ => name,
            };
            Some((p, name))
        })
    };
    let mut them = chosen();
    let Some((p0, path)) = them.next() else { return Files::default() };
    let path2 = them.next().map(|(_, name)| name);
    let first = chosen()
        .find(|(p, name)| *name == path && path_get(p, "inode").is_some_and(|v| *v != PathValue::Null))
        .map_or(p0, |(p, _)| p);
    Files { path: Some(path), path2, first: Some(first) }
}

#[allow(clippy::too_many_arguments)]
fn object_value<'s>(
    names: &[&str],
    merged: &Merged<'s>,
    file_path: Option<&'s str>,
    file_path2: Option<&'s str>,
    sock_text: Option<&'s str>,
    keys: &'s [String],
) -> Option<Cow<'s, str>> {
    for name in names {
        let value = match *name {
            "@path" => file_path,
            "@path2" => file_path2,
            "@sockaddr" => sock_text,
            "@key" => keys.first().map(String::as_str),
            other => merged.get(other),
        };
        if let Some(v) = clean(value) {
            return Some(Cow::Borrowed(v));
        }
    }
    None
}

/// `auditd.summary` (`_summary`): actor / action / object / how, as go-libaudit's aucoalesce has it.
struct Summary<'s> {
    actor_primary: Option<Cow<'s, str>>,
    actor_secondary: Option<Cow<'s, str>>,
    action: &'s str,
    object_type: &'static str,
    object_primary: Option<Cow<'s, str>>,
    object_secondary: Option<Cow<'s, str>>,
    how: Option<&'s str>,
}

impl Summary<'_> {
    fn write(&self, w: &mut JsonWriter) {
        w.begin_obj();
        if self.actor_primary.is_some() || self.actor_secondary.is_some() {
            w.key("actor");
            w.begin_obj();
            if let Some(p) = &self.actor_primary {
                w.key("primary");
                w.str(p);
            }
            if let Some(s) = &self.actor_secondary {
                w.key("secondary");
                w.str(s);
            }
            w.end_obj();
        }
        put_str(w, "action", Some(self.action));
        let (kind, primary, secondary) = (self.object_type, &self.object_primary, &self.object_secondary);
        if !kind.is_empty() || primary.is_some() || secondary.is_some() {
            w.key("object");
            w.begin_obj();
            if !kind.is_empty() {
                w.key("type");
                w.str(kind);
            }
            if let Some(p) = primary {
                w.key("primary");
                w.str(p);
            }
            if let Some(s) = secondary {
                w.key("secondary");
                w.str(s);
            }
            w.end_obj();
        }
        put_str(w, "how", self.how);
        w.end_obj();
    }
}

/// `_summary`: actor / action / object / how, as go-libaudit's aucoalesce summary has it.
#[allow(clippy::too_many_arguments)]
fn summary<'s>(
    cat: &'s Cat<'s>,
    primary_type: &str,
    merged: &Merged<'s>,
    facts: Option<&'s Facts<'s>>,
    file_path: Option<&'s str>,
    file_path2: Option<&'s str>,
    sock_text: Option<&'s str>,
    keys: &'s [String],
    exe: Option<&'s str>,
    sock_port: Option<u16>,
) -> Summary<'s> {
    let mut auid = id_of(ids_get(facts, "auid"));
    if primary_type == "LOGIN" {
        let old = merged.get("old-auid").filter(|v| !v.is_empty()).or_else(|| merged.get("old_auid"));
        auid = id_of(clean(old));
    }
    let user_msg = has_user_msg(facts);
    let secondary = if primary_type == "SYSCALL" || !user_msg {
        id_of(ids_get(facts, "uid"))
    } else {
        clean(user_msg_get(facts, "acct"))
            .map(Cow::Borrowed)
            .or_else(|| id_of(clean(user_msg_get(facts, "id"))))
            .or_else(|| id_of(ids_get(facts, "uid")))
    };
    let mut primary = object_value(cat.object_primary, merged, file_path, file_path2, sock_text, keys);
    if primary.is_none() && matches!(cat.object_type, "file" | "filesystem") {
        primary = file_path.map(Cow::Borrowed);
    }
    let mut secondary_obj = object_value(cat.object_secondary, merged, file_path, file_path2, sock_text, keys);
    if secondary_obj.is_none() && cat.object_type == "socket" {
        secondary_obj = sock_port.map(|p| Cow::Owned(p.to_string()));
    }
    let secondary_obj = secondary_obj.filter(|s| Some(s) != primary.as_ref());
    let mut how = exe.or_else(|| clean(user_msg_get(facts, "exe"))).or_else(|| clean(merged.get("comm")));
    if user_msg && how.is_none() {
        how = clean(user_msg_get(facts, "terminal"));
    }
    Summary {
        actor_primary: auid,
        actor_secondary: secondary,
        action: &cat.action,
        object_type: cat.object_type,
        object_primary: primary,
        object_secondary: secondary_obj,
        how: how.filter(|h| !h.is_empty()),
    }
}

/// Whether every name is already a safe object key (`_names_are_safe`: text, not empty, no dots).
fn names_are_safe<'k>(mut names: impl Iterator<Item = &'k str>) -> bool {
    names.all(|k| !k.is_empty() && !k.contains('.'))
}

/// An object of text fields with safe key names (`_field_names_safe`) as JSON: written straight
/// when the names are safe (keys of one record or of the merged fields are unique), else built.
fn write_fields<'k>(w: &mut JsonWriter, pairs: impl Iterator<Item = (&'k str, &'k str)> + Clone) {
    if names_are_safe(pairs.clone().map(|(k, _)| k)) {
        w.begin_obj();
        for (k, v) in pairs {
            w.key_str(k);
            w.str(v);
        }
        w.end_obj();
        return;
    }
    let obj = safe_fields(pairs.map(|(k, v)| (k, Value::from(v.to_owned()))));
    // text values only: cannot fail
    let _ = obj.write(w);
}

/// A record's `fields` and `interpreted` objects (safe, unique names): the interpreted values that are
/// the raw ones (most) are copied from the `fields` just written, whole runs of them at once.
fn write_fields_and_interpreted(
    w: &mut JsonWriter,
    rec: &Record,
    vals: RecordValues<'_>,
    written: &mut Vec<(usize, usize, usize)>, // per field: key, value start, end
    pair_spans: &mut Vec<(usize, usize)>,     // per field: its interpreted `"key":value` in `w`
) {
    crate::linux::json::write_fields_noting_spans(w, rec, written);
    w.key("interpreted");
    w.begin_obj();
    let mut run: Option<(usize, usize)> = None;
    for (((_, raw), value), &(key_start, value_start, end)) in rec.fields.iter().zip(vals.iter()).zip(written.iter()) {
        if value.as_ptr() == raw.as_ptr() && value.len() == raw.len() {
            run = Some((run.map_or(key_start, |r| r.0), end));
            pair_spans.push((key_start, end)); // the same bytes as the raw pair
            continue;
        }
        if let Some((from, to)) = run.take() {
            w.item();
            w.buf.extend_from_within(from..to);
        }
        w.item();
        let pair_start = w.buf.len();
        w.buf.extend_from_within(key_start..value_start);
        match unquoted_width(raw, value) {
            // the raw value's JSON without its quotes' escapes: the same bytes as writing it again
            Some(quote) => {
                w.buf.push(b'"');
                w.buf.extend_from_within(value_start + 1 + quote..end - 1 - quote);
                w.buf.push(b'"');
            }
            None => w.str(value),
        }
        pair_spans.push((pair_start, w.buf.len()));
    }
    if let Some((from, to)) = run {
        w.item();
        w.buf.extend_from_within(from..to);
    }
    w.end_obj();
}

/// When `value` is `raw` without its first and last bytes, a pair of `"` or `'` (as `unquote` and
/// `unescape` leave a quoted value, both slices of the line): how many bytes of JSON each of those quotes
/// takes (`\"` or `'`), so that the value's JSON is the raw one's without them.
#[inline]
fn unquoted_width(raw: &str, value: &str) -> Option<usize> {
    let b = raw.as_bytes();
    let inside = b.len() >= 2 && value.len() + 2 == b.len() && value.as_ptr() as usize == raw.as_ptr() as usize + 1;
    match (inside, b.first()) {
        (true, Some(b'"')) if b[b.len() - 1] == b'"' => Some(2),
        (true, Some(b'\'')) if b[b.len() - 1] == b'\'' => Some(1),
        _ => None,
    }
}

/// `[_jsonable(p) for p in paths]` as JSON (None values dropped), into `w`.
fn paths_json(w: &mut JsonWriter, paths: &[PathEntry<'_>]) -> Result<(), JsonError> {
    w.begin_arr();
    for p in paths {
        w.item();
        // a PATH entry's keys are unique (set_entry), so it is written as it is, None values left out
        w.begin_obj();
        for (k, v) in p {
            match v {
                PathValue::Text(t) => {
                    w.key_str(k);
                    w.str(t);
                }
                PathValue::Int(n) => {
                    w.key_str(k);
                    w.exact_i128(n.value); // flattened: a keyword, exact whatever its size
                }
                PathValue::Null => {}
            }
        }
        w.end_obj();
    }
    w.end_arr();
    Ok(())
}

/// `[_record_detail(r) for r in records]` as JSON, into `s.records`: type, raw and interpreted
/// fields, sender's names. Whether, for every record, where its interpreted pairs are in that JSON is
/// in `s.spans` (from `s.record_spans[record]`, per field): when every record's names are safe.
fn records_json(s: &mut Scratch, records: &[Record], values: &Values<'_>) -> Result<bool, JsonError> {
    let Scratch { records: w, written, spans, record_spans, .. } = s;
    let mut spans_valid = true;
    w.begin_arr();
    for (rec, vals) in records.iter().zip(values.iter()) {
        record_spans.push(spans.len());
        w.item();
        w.begin_obj();
        w.key("type");
        w.str(&rec.type_name);
        if let Some(n) = &rec.type_num {
            w.key("type_num");
            n.write_exact(w); // flattened: a keyword, exact whatever its size
        }
        if let Some(vals) = vals {
            if !rec.fields.is_empty() {
                if rec.fields.keys_safe() {
                    write_fields_and_interpreted(w, rec, vals, written, spans);
                } else {
                    spans_valid = false;
                    w.key("fields");
                    write_fields(w, rec.fields.iter());
                    w.key("interpreted");
                    write_fields(w, rec.fields.iter().zip(vals.iter()).map(|((k, _), v)| (k, v)));
                }
            }
            if !rec.enriched.is_empty() {
                w.key("enriched");
                write_fields(w, rec.enriched.iter());
            }
            if !rec.duplicates.is_empty() {
                w.key("duplicates");
                w.begin_arr();
                for (k, v) in &rec.duplicates {
                    w.item();
                    w.str_list(&[k, v]);
                }
                w.end_arr();
            }
        } else if let Some(error) = rec.error.filter(|e| !e.is_empty()) {
            w.key("error");
            w.str(error);
            w.key("raw");
            w.str(&rec.raw);
        }
        w.end_obj();
    }
    w.end_arr();
    Ok(spans_valid)
}

/// The buffers a thread's Linux documents reuse, emptied for each (their room kept).
#[derive(Default)]
struct Scratch {
    records: JsonWriter,
    paths: JsonWriter,
    /// Per field of the record being written: key, value start, end (`write_fields_noting_spans`).
    written: Vec<(usize, usize, usize)>,
    /// Per field of every record: its interpreted `"key":value` in `records`.
    spans: Vec<(usize, usize)>,
    /// Per record: where its fields start in `spans`.
    record_spans: Vec<usize>,
    /// The event's merged fields ([`merged_fields`]).
    merged: Vec<(u32, u32)>,
    message: String,
    text: String,
}

impl Scratch {
    /// What a thread keeps between documents at most: a huge event's buffers are let go after it.
    const KEPT_BYTES: usize = 1 << 20;

    fn cleared(mut self) -> Self {
        for w in [&mut self.records, &mut self.paths] {
            if w.buf.capacity() > Scratch::KEPT_BYTES {
                *w = JsonWriter::default();
            }
        }
        self.records.clear();
        self.paths.clear();
        self.spans.clear();
        self.record_spans.clear();
        self.message.clear();
        self
    }
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

// ------------------------------------------------------------------------------------------- v1

/// `_signed(int(value))` of an id text; None where `int()` raises.
fn v1_id(value: Option<&str>) -> Value {
    let Some(v) = value else { return Value::Int(-1) };
    match py_int(v, 10) {
        Some(n) if (1i128 << 31..1i128 << 32).contains(&n.value) => Value::Int((n.value - (1i128 << 32)) as i64),
        Some(n) => int_value(&n),
        None => Value::Null,
    }
}

/// `linux_to_compat_v1`: a Linux event in the v1 shape.
pub fn linux_to_v1<T>(event: &Event<T>, peer: &str, received_ns: u64) -> Result<Obj, MapError> {
    let interpreted = interpret(event);
    let facts = interpreted.facts.as_ref();
    let stamp = event_time(event, received_ns).map_err(MapError::Internal)?;
    let syscall = facts.and_then(|f| f.syscall.as_ref());
    let process = facts.map(|f| &f.process);
    let mut doc = Obj::with_capacity(16);
    doc.push("@timestamp", stamp.clone());
    doc.push("time", stamp);
    doc.push("version", "linux");
    let name = syscall.and_then(|s| s.name).filter(|n| !n.is_empty());
    let name = name.or_else(|| facts.map(|f| f.main_type).filter(|t| !t.is_empty())).unwrap_or("unknown");
    doc.push("event", name.to_lowercase());
    doc.push("from", peer.to_owned());
    if let Some(node) = event.node.as_deref().filter(|n| !n.is_empty()) {
        doc.push("node", node.to_owned());
    }
    let paths: Vec<String> = facts
        .map(|f| {
            f.paths
                .iter()
                .filter_map(|p| path_get(p, "name").and_then(path_text))
                .filter(|n| !n.is_empty())
                .map(Cow::into_owned)
                .collect()
        })
        .unwrap_or_default();
    match paths.len() {
        0 => {}
        1 => doc.push("path", paths[0].clone()),
        _ => doc.push("path", Value::str_list(paths)),
    }
    if let Some((_, args)) = process.and_then(|p| p.execve.as_ref()).filter(|e| !e.1.is_empty()) {
        doc.push("exec_args", Value::str_list(args.iter().map(|a| a.clone().into_owned())));
    }
    if let Some(s) = syscall {
        doc.push("return", s.exit.as_ref().map_or(Value::Null, int_value));
        let errno = s.errno.map(|e| e.0).filter(|e| !e.is_empty()).unwrap_or("0");
        doc.push("errno", errno.to_lowercase());
    }
    let mut subject = Obj::with_capacity(7);
    for (key, id) in [("audit_id", "auid"), ("uid", "euid"), ("gid", "egid"), ("ruid", "uid"), ("rgid", "gid")] {
        subject.push(key, v1_id(ids_get(facts, id)));
    }
    subject.push("pid", process.and_then(|p| p.pid.as_ref()).map_or(Value::Null, int_value));
    let session = facts.and_then(|f| f.session).unwrap_or("");
    let session_id = if !session.is_empty() && session.chars().all(is_digit) {
        match py_int(session, 10) {
            Some(n) => int_value(&n),
            // str.isdigit() takes superscripts and the like, which int() refuses: Python raises here
            None => {
                let message = format!("invalid literal for int() with base 10: {}", py_repr_str(session));
                return Err(MapError::Internal(PyError(format!("ValueError({})", py_repr_str(&message)))));
            }
        }
    } else {
        Value::Null
    };
    subject.push("session_id", session_id);
    doc.push("subject", subject);
    if let Some(exe) = process.and_then(|p| p.exe.as_deref()).filter(|e| !e.is_empty()) {
        doc.push("exe", exe.to_owned());
    }
    if let Some(keys) = facts.map(|f| &f.keys).filter(|k| !k.is_empty()) {
        doc.push("keys", Value::str_list(keys.iter().cloned()));
    }
    let records = event
        .records
        .iter()
        .zip(interpreted.values.iter())
        .map(|(r, vals)| {
            let mut o = Obj::with_capacity(2);
            o.push("type", r.type_name.to_string());
            match vals {
                Some(vals) if !r.fields.is_empty() => {
                    let mut fields = Obj::with_capacity(vals.len());
                    for ((k, _), v) in r.fields.iter().zip(vals.iter()) {
                        fields.set(k.to_owned(), v.to_string());
                    }
                    o.push("fields", fields);
                }
                _ => o.push("raw", r.raw.to_string()),
            }
            Value::Obj(o)
        })
        .collect();
    doc.push("records", Value::List(records));
    leave_out_out_of_range(&mut doc);
    if time_out_of_range(event) {
        doc.add_unique("tags", [Some(Value::from(OUT_OF_RANGE_TAG))]);
    }
    interpreted.recycle();
    Ok(doc)
}

// ------------------------------------------------------------------------------------- identity

/// `linux_id_parts`: `node|sec.msec:serial`, then the raw record lines sorted (borrowed from the event).
pub fn linux_id_parts<T>(event: &Event<T>) -> (Vec<u8>, Vec<&[u8]>) {
    let node = event.node.as_deref().unwrap_or("");
    let key = event.records.first().and_then(Record::msg_id).unwrap_or_default();
    let mut lines: Vec<&[u8]> = event.records.iter().map(|r| r.raw.as_bytes()).collect();
    lines.sort_unstable();
    let mut head = Vec::with_capacity(node.len() + 1 + key.len());
    head.extend_from_slice(node.as_bytes());
    head.push(b'|');
    head.extend_from_slice(key.as_bytes());
    (head, lines)
}

/// The event's raw input: its lines as received, joined by newlines (`pipeline._lines`).
pub fn event_lines<T>(event: &Event<T>) -> Vec<u8> {
    let mut out = Vec::with_capacity(event.records.iter().map(|r| r.raw.len() + 1).sum());
    for (i, r) in event.records.iter().enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        out.extend_from_slice(r.raw.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unquoted_values_are_their_raw_json_without_the_quotes() {
        let line = r#"comm="l\s" name='x_y' bare="open odd="a' empty="""#;
        let value = |key: &str| {
            let at = line.find(&format!("{key}=")).unwrap() + key.len() + 1;
            &line[at..line[at..].find(' ').map_or(line.len(), |k| at + k)]
        };
        let (comm, name, bare, odd, empty) =
            (value("comm"), value("name"), value("bare"), value("odd"), value("empty"));
        assert_eq!(unquoted_width(comm, unquote(comm)), Some(2));
        assert_eq!(unquoted_width(name, unquote(name)), Some(1));
        assert_eq!(unquoted_width(empty, unquote(empty)), Some(2));
        assert_eq!(unquoted_width(bare, &unescape(bare)), None); // `"open`: one quote stripped
        assert_eq!(unquoted_width(odd, unquote(odd)), None); // not a pair: left as it is
        assert_eq!(unquoted_width(comm, "l\\s"), None); // equal text elsewhere: not a slice of the raw value
        for raw in [comm, name, empty] {
            let quote = unquoted_width(raw, unquote(raw)).unwrap();
            let mut raw_json = JsonWriter::default();
            raw_json.str(raw);
            let mut json = JsonWriter::default();
            json.str(unquote(raw));
            let inner = &raw_json.buf[1 + quote..raw_json.buf.len() - 1 - quote];
            assert_eq!(json.buf, [&b"\""[..], inner, b"\""].concat(), "{raw}");
        }
    }

    #[test]
    fn common_ids_are_static_text_and_equal_to_copies() {
        for id in ["0", "7", "1000"] {
            assert!(matches!(id_value(id), Cow::Borrowed(b) if b == id));
        }
        for id in ["10", "999", "1001", "x", ""] {
            assert!(matches!(id_value(id), Cow::Owned(ref o) if o == id));
        }
        assert_eq!(id_text(Some("4294967295")), None);
        let int = |v: i128| PathValue::Int(PyInt { value: v, ..py_int("0", 10).unwrap() });
        assert_eq!(path_id_text(Some(&int(0))).as_deref(), Some("0"));
        assert_eq!(path_id_text(Some(&int(12))).as_deref(), Some("12"));
        assert_eq!(path_id_text(Some(&int(-1))), None);
    }

    #[test]
    fn v1_integers_below_64_bits_are_refused_as_orjson_does() {
        let write = |v: i128| {
            let value = int_value(&PyInt { value: v, ..py_int("0", 10).unwrap() });
            let mut w = JsonWriter::default();
            value.write(&mut w).map(|()| String::from_utf8(w.buf).unwrap())
        };
        assert_eq!(write(i128::from(i64::MIN)).as_deref(), Ok("-9223372036854775808"));
        assert_eq!(write(i128::from(u64::MAX)).as_deref(), Ok("18446744073709551615"));
        // once written as its absolute value, 9223372036854775809
        assert_eq!(write(i128::from(i64::MIN) - 1), Err(crate::json::INTEGER_RANGE));
        assert_eq!(write(-(1i128 << 64)), Err(crate::json::INTEGER_RANGE));
        assert_eq!(write(1i128 << 64), Err(crate::json::INTEGER_RANGE));
        let mut doc = Obj::new();
        doc.push("return", int_value(&PyInt { value: i128::from(i64::MIN) - 1, ..py_int("0", 10).unwrap() }));
        assert!(crate::ecs::deadletter::holds_unencodable(&doc));
    }

    #[test]
    fn paths_as_posixpath_makes_them() {
        assert_eq!(normpath("/a/./b/../c"), "/a/c");
        assert_eq!(normpath("//a//b/"), "//a/b");
        assert_eq!(normpath("///a/.."), "/");
        assert_eq!(normpath("a/../../b"), "../b");
        assert_eq!(normpath("/../x"), "/x");
        assert_eq!(dirname("/a/b"), "/a");
        assert_eq!(dirname("/a"), "/");
        assert_eq!(dirname("a"), "");
        assert_eq!(dirname("//a//b"), "//a");
    }

    /// The record types whose users are mapped as Auditbeat maps them (tests/schema/test_linux_ecs.py checks
    /// the golden events' record types against the same list).
    const USER_MAPPED_TYPES: [&str; 20] = [
        "USER_AUTH",
        "USER_ACCT",
        "USER_LOGIN",
        "USER_LOGOUT",
        "USER_ERR",
        "USER_START",
        "USER_END",
        "CRED_ACQ",
        "CRED_DISP",
        "CRED_REFR",
        "GRP_AUTH",
        "LOGIN",
        "ADD_USER",
        "DEL_USER",
        "ADD_GROUP",
        "DEL_GROUP",
        "GRP_MGMT",
        "USER_MGMT",
        "USER_CHAUTHTOK",
        "GRP_CHAUTHTOK",
    ];

    #[test]
    fn user_mappings_cover_exactly_the_account_and_session_types() {
        for name in USER_MAPPED_TYPES {
            assert!(user_mappings(name).is_some(), "{name}");
        }
        for name in ["SYSCALL", "EXECVE", "PATH", "USER_CMD", "USER_AVC", "AVC", "CONFIG_CHANGE", "SERVICE_START", ""] {
            assert!(user_mappings(name).is_none(), "{name}");
        }
    }

    #[test]
    fn two_rows_merged_fit_the_category_lists() {
        for (key, row) in crate::ecs::tables::LINUX_CATEGORIES {
            let half = Strs::CAPACITY / 2;
            assert!(row.category.len() <= half && row.types.len() <= half, "{key}");
        }
    }

    #[test]
    fn categorization_merges_the_rows() {
        let (primary, cat) = categorize(&["SYSCALL", "EXECVE", "PATH"], Some("execve"), false);
        assert_eq!(primary, "SYSCALL");
        assert_eq!(cat.action, "executed");
        let (primary, cat) = categorize(&["WEIRD_THING"], None, false);
        assert_eq!((primary, cat.action.as_ref()), ("WEIRD_THING", "weird-thing"));
        assert_eq!(cat.category.as_slice(), ["process"]);
        let (_, cat) = categorize(&["SYSCALL"], Some("frobnicate"), false);
        assert_eq!(cat.action, "frobnicate");
        assert!(is_number("0") && is_number("18446744073709551615") && !is_number("18446744073709551616"));
        assert!(!is_number("") && !is_number("12a"));
    }
}
