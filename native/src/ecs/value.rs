//! The document model: JSON values whose objects keep insertion order, like the Python dicts the
//! mappers build, with the Python helpers' write rules (`put`, `add_unique`, `get`). Serialized by [`Value::write`] to orjson's bytes.

use std::borrow::Cow;
use std::sync::Arc;

use crate::json::{JsonError, JsonWriter};

pub type Text = Cow<'static, str>;

/// One JSON value. `Raw` is JSON already written (token lists: written straight from the decoder's
/// tokens, never held as values).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    /// An integer beyond 64 bits: orjson refuses it, and so does [`Value::write`].
    Big(u128),
    /// An integer below -2^63: orjson refuses it too (never written as its absolute value).
    NegativeBig(i128),
    Str(Text),
    List(Vec<Value>),
    Obj(Obj),
    Raw(Vec<u8>),
    /// JSON shared by every document of a batch (the sender's and the receiver's sections).
    Shared(Arc<[u8]>),
    /// A list of the tables' own strings (categories, classes): written, never allocated.
    Strs(&'static [&'static str]),
}

/// A JSON object in insertion order (a Python dict).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Obj {
    pub entries: Vec<(Text, Value)>,
}

impl From<&'static str> for Value {
    fn from(s: &'static str) -> Self {
        Value::Str(Cow::Borrowed(s))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(Cow::Owned(s))
    }
}

impl From<Text> for Value {
    fn from(s: Text) -> Self {
        Value::Str(s)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::UInt(v)
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::UInt(u64::from(v))
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<Obj> for Value {
    fn from(v: Obj) -> Self {
        Value::Obj(v)
    }
}

impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Self {
        Value::List(v)
    }
}

impl Value {
    /// What `put` leaves out: None, "" and [] (absent means unknown).
    pub fn is_empty_value(&self) -> bool {
        match self {
            Value::Null => true,
            Value::Str(s) => s.is_empty(),
            Value::List(l) => l.is_empty(),
            Value::Strs(l) => l.is_empty(),
            _ => false,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_obj(&self) -> Option<&Obj> {
        match self {
            Value::Obj(o) => Some(o),
            _ => None,
        }
    }

    pub fn str_list<S: Into<Text>>(items: impl IntoIterator<Item = S>) -> Value {
        Value::List(items.into_iter().map(|s| Value::Str(s.into())).collect())
    }

    /// orjson's bytes for this value (object keys in insertion order).
    pub fn write(&self, w: &mut JsonWriter) -> Result<(), JsonError> {
        match self {
            Value::Null => w.null(),
            Value::Bool(b) => w.bool(*b),
            Value::Int(v) => w.i64(*v),
            Value::UInt(v) => w.u64(*v),
            Value::Big(v) => w.u128(*v)?,
            Value::NegativeBig(v) => w.i128(*v)?,
            Value::Str(s) => w.str(s),
            Value::List(items) => {
                w.begin_arr();
                for v in items {
                    w.item();
                    v.write(w)?;
                }
                w.end_arr();
            }
            Value::Obj(o) => o.write(w)?,
            Value::Raw(json) => w.buf.extend_from_slice(json),
            Value::Shared(json) => w.buf.extend_from_slice(json),
            Value::Strs(items) => w.str_list(items),
        }
        Ok(())
    }
}

/// Room for the entries a section usually gets (the mappers' large sections would otherwise grow, and
/// move their entries, three or four times per document).
fn section_capacity(key: &str) -> usize {
    match key {
        "bsm" | "auditd" => 24,
        "process" | "file" => 12,
        "user" | "source" | "destination" | "network" => 6,
        _ => 4,
    }
}

/// Key equality, the same literal (pointer and length) first: most lookups are of the mappers' own keys.
/// (Keys are unique in an object, so lookups scan from the end: writes mostly go to recent sections.)
#[inline]
fn same_key(stored: &Text, key: &str) -> bool {
    (stored.as_ptr() == key.as_ptr() && stored.len() == key.len()) || **stored == *key
}

impl Obj {
    pub fn new() -> Self {
        Obj { entries: Vec::new() }
    }

    pub fn with_capacity(n: usize) -> Self {
        Obj { entries: Vec::with_capacity(n) }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().rev().find(|(k, _)| same_key(k, key)).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.entries.iter_mut().rev().find(|(k, _)| same_key(k, key)).map(|(_, v)| v)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.entries.iter().rev().any(|(k, _)| same_key(k, key))
    }

    /// `d[key] = value`: replaced in place when present, appended otherwise.
    pub fn set(&mut self, key: impl Into<Text>, value: impl Into<Value>) {
        let key = key.into();
        let value = value.into();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// Append without looking for the key (the caller knows it is new).
    pub fn push(&mut self, key: impl Into<Text>, value: impl Into<Value>) {
        self.entries.push((key.into(), value.into()));
    }

    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(i).1)
    }

    /// The object under `key`, made (or replacing a non-object) if needed: `setdefault` for sections.
    pub fn section(&mut self, key: &'static str) -> &mut Obj {
        let i = match self.entries.iter().rposition(|(k, _)| same_key(k, key)) {
            Some(i) => {
                if !matches!(self.entries[i].1, Value::Obj(_)) {
                    self.entries[i].1 = Value::Obj(Obj::new());
                }
                i
            }
            None => {
                self.entries.push((Cow::Borrowed(key), Value::Obj(Obj::with_capacity(section_capacity(key)))));
                self.entries.len() - 1
            }
        };
        match &mut self.entries[i].1 {
            Value::Obj(o) => o,
            _ => unreachable!("made an object above"),
        }
    }

    /// The object holding the last part of a dotted path (parents made if missing), and that part.
    /// Paths are the mappers' literals, so no key is ever allocated.
    fn parent(&mut self, dotted: &'static str) -> (&mut Obj, &'static str) {
        let mut node = self;
        let mut rest = dotted;
        while let Some(dot) = rest.bytes().position(|c| c == b'.') {
            node = node.section(&rest[..dot]);
            rest = &rest[dot + 1..];
        }
        (node, rest)
    }

    /// `put(doc, "a.b.c", value)`: None, "" and [] are not written.
    pub fn put(&mut self, dotted: &'static str, value: impl Into<Value>) {
        let value = value.into();
        if value.is_empty_value() {
            return;
        }
        let (node, leaf) = self.parent(dotted);
        match node.entries.iter_mut().rev().find(|(k, _)| same_key(k, leaf)) {
            Some(slot) => slot.1 = value,
            None => node.entries.push((Cow::Borrowed(leaf), value)),
        }
    }

    /// `put` of an optional value.
    pub fn put_opt<V: Into<Value>>(&mut self, dotted: &'static str, value: Option<V>) {
        if let Some(v) = value {
            self.put(dotted, v);
        }
    }

    /// `get(doc, "a.b.c")`. (The dots are found as bytes: `split_once('.')` went through the general
    /// pattern searcher, a visible cost for the dozen lookups each document makes.)
    pub fn get_path(&self, dotted: &str) -> Option<&Value> {
        let mut node = self;
        let mut rest = dotted;
        while let Some(dot) = rest.bytes().position(|c| c == b'.') {
            node = node.get(&rest[..dot])?.as_obj()?;
            rest = &rest[dot + 1..];
        }
        node.get(rest)
    }

    /// `add_unique(doc, "a.b", *values)`: append to a list field, keeping order, skipping None, ""
    /// and repeats; nothing at all happens when every value is empty.
    pub fn add_unique(&mut self, dotted: &'static str, values: impl IntoIterator<Item = Option<Value>>) {
        let mut fresh =
            values.into_iter().flatten().filter(|v| !matches!(v, Value::Null) && v.as_str() != Some("")).peekable();
        if fresh.peek().is_none() {
            return;
        }
        let (node, leaf) = self.parent(dotted);
        let slot = match node.entries.iter().rposition(|(k, _)| same_key(k, leaf)) {
            Some(i) => i,
            None => {
                node.entries.push((Cow::Borrowed(leaf), Value::List(Vec::new())));
                node.entries.len() - 1
            }
        };
        let value = &mut node.entries[slot].1;
        if !matches!(value, Value::List(_)) {
            *value = Value::List(Vec::new());
        }
        let Value::List(items) = value else { unreachable!("made a list above") };
        for v in fresh {
            if !items.contains(&v) {
                items.push(v);
            }
        }
    }

    pub fn write(&self, w: &mut JsonWriter) -> Result<(), JsonError> {
        w.begin_obj();
        for (k, v) in &self.entries {
            match k {
                // the mappers' own key literals are plain names: nothing to escape
                Cow::Borrowed(name) => w.key(name),
                Cow::Owned(text) => {
                    w.item();
                    w.str(text);
                    w.buf.push(b':');
                }
            }
            v.write(w)?;
        }
        w.end_obj();
        Ok(())
    }

    pub fn to_json(&self) -> Result<Vec<u8>, JsonError> {
        let mut w = JsonWriter::with_capacity(2048);
        self.write(&mut w)?;
        Ok(w.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(o: &Obj) -> String {
        String::from_utf8(o.to_json().unwrap()).unwrap()
    }

    #[test]
    fn put_skips_empty_values_and_makes_parents_in_order() {
        let mut d = Obj::new();
        d.put("a.b", "x");
        d.put("c", "");
        d.put("a.c", Value::List(vec![]));
        d.put("z", false);
        d.put("a.d", 0u64);
        d.put("a.b", "y"); // replaced in place
        assert_eq!(json(&d), r#"{"a":{"b":"y","d":0},"z":false}"#);
        assert_eq!(d.get_path("a.d"), Some(&Value::UInt(0)));
        assert_eq!(d.get_path("a.b.c"), None);
    }

    #[test]
    fn add_unique_like_python() {
        let mut d = Obj::new();
        d.add_unique("r.ip", [None, Some("".into())]);
        assert_eq!(json(&d), "{}");
        d.add_unique("r.ip", [Some("1".into()), Some("2".into()), Some("1".into())]);
        d.add_unique("r.ip", [Some("3".into())]);
        assert_eq!(json(&d), r#"{"r":{"ip":["1","2","3"]}}"#);
    }

    #[test]
    fn keys_are_escaped() {
        let mut d = Obj::new();
        d.set(String::from("a\"b"), 1u64);
        assert_eq!(json(&d), r#"{"a\"b":1}"#);
    }
}
