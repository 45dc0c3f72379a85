//! The few parts of a document that are written to from several places before they are written out
//! (a Linux document's `user`, `source`, `related`, ...): small objects on the stack, their keys the
//! mapper's literals, their values borrowed from the event, with the Python dict rules the mappers
//! follow (`put` replaces in place or appends and skips empty values; `add_unique`; removal keeps
//! the order of the rest). No allocation but for lists; written once, as JSON, in their final state.

use std::borrow::Cow;

use crate::json::JsonWriter;

/// A value of a [`Flat`]: text, a count, or another [`Flat`] of a pool (its index). Lists are
/// [`Lists`]'.
#[derive(Debug, Clone, PartialEq)]
pub enum Val<'a> {
    Str(Cow<'a, str>),
    UInt(u64),
    Sub(u8),
}

/// A small JSON object in insertion order, at most `N` entries (more is a bug in the caller: the
/// mappers' sections have a fixed set of keys).
#[derive(Debug)]
pub struct Flat<'a, const N: usize> {
    keys: [&'static str; N],
    vals: [Val<'a>; N],
    len: usize,
}

impl<'a, const N: usize> Default for Flat<'a, N> {
    fn default() -> Self {
        Flat { keys: [""; N], vals: [const { Val::UInt(0) }; N], len: 0 }
    }
}

impl<'a, const N: usize> Flat<'a, N> {
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.keys[..self.len].iter().position(|k| *k == key)
    }

    pub fn get(&self, key: &str) -> Option<&Val<'a>> {
        self.position(key).map(|i| &self.vals[i])
    }

    /// The text under `key`, if it holds text.
    pub fn text(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(Val::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// `d[key] = value`: replaced in place when present, appended otherwise.
    pub fn set(&mut self, key: &'static str, value: Val<'a>) {
        match self.position(key) {
            Some(i) => self.vals[i] = value,
            None => {
                self.keys[self.len] = key;
                self.vals[self.len] = value;
                self.len += 1;
            }
        }
    }

    /// `put`: text that is empty (or absent) is not written; whether it was.
    pub fn put(&mut self, key: &'static str, value: Option<Cow<'a, str>>) -> bool {
        match value {
            Some(v) if !v.is_empty() => {
                self.set(key, Val::Str(v));
                true
            }
            _ => false,
        }
    }

    pub fn remove(&mut self, key: &str) {
        if let Some(i) = self.position(key) {
            self.keys[i..self.len].rotate_left(1);
            self.vals[i..self.len].rotate_left(1);
            self.len -= 1;
        }
    }

    /// The pool index under `key`, the entry made (appended) if absent; whether it was made.
    pub fn sub(&mut self, key: &'static str, index: u8) -> bool {
        if self.position(key).is_some() {
            return false;
        }
        self.set(key, Val::Sub(index));
        true
    }

    pub fn has_sub(&self, key: &str) -> Option<u8> {
        match self.get(key) {
            Some(Val::Sub(i)) => Some(*i),
            _ => None,
        }
    }

    pub fn entries(&self) -> impl Iterator<Item = (&'static str, &Val<'a>)> {
        self.keys[..self.len].iter().copied().zip(&self.vals[..self.len])
    }

    /// The object as JSON; its [`Val::Sub`] entries are `pool`'s objects (a pool's objects are made
    /// only when used: one not made is written empty).
    pub fn write<const M: usize>(&self, w: &mut JsonWriter, pool: &[Option<Flat<'a, M>>]) {
        w.begin_obj();
        for (k, v) in self.entries() {
            w.key(k);
            write_val(w, v, pool);
        }
        w.end_obj();
    }
}

fn write_val<'a, const M: usize>(w: &mut JsonWriter, v: &Val<'a>, pool: &[Option<Flat<'a, M>>]) {
    match v {
        Val::Str(s) => w.str(s),
        Val::UInt(n) => w.u64(*n),
        Val::Sub(i) => match &pool[usize::from(*i)] {
            Some(sub) => sub.write::<M>(w, pool),
            None => {
                w.begin_obj();
                w.end_obj();
            }
        },
    }
}

/// An object of lists of unique texts (`related.ip`, `related.user`, `tags`, ...) with the Python
/// `add_unique` rules: the first `N` items of all its lists inline, in one array, each marked with its
/// list, the rest in a `Vec` (allocated only then), so that a document's lists cost no allocation.
#[derive(Debug)]
pub struct Lists<'a, const K: usize, const N: usize> {
    keys: [&'static str; K],
    nkeys: usize,
    items: [(u8, Cow<'a, str>); N],
    len: usize,
    more: Vec<(u8, Cow<'a, str>)>,
}

impl<'a, const K: usize, const N: usize> Default for Lists<'a, K, N> {
    fn default() -> Self {
        Lists { keys: [""; K], nkeys: 0, items: [const { (0, Cow::Borrowed("")) }; N], len: 0, more: Vec::new() }
    }
}

impl<'a, const K: usize, const N: usize> Lists<'a, K, N> {
    fn list(&self, key: &str) -> Option<u8> {
        self.keys[..self.nkeys].iter().position(|k| *k == key).map(|i| i as u8)
    }

    fn all(&self) -> impl Iterator<Item = &(u8, Cow<'a, str>)> {
        self.items[..self.len].iter().chain(&self.more)
    }

    /// The items of list `at`, in order.
    fn of(&self, at: u8) -> impl Iterator<Item = &str> {
        self.all().filter(move |(k, _)| *k == at).map(|(_, v)| &**v)
    }

    /// `add_unique(doc, key, *values)`: appended to the list under `key` unless empty or already there;
    /// nothing at all (no list) when none is new. Whether the list exists now.
    pub fn add_unique<I>(&mut self, key: &'static str, values: I) -> bool
    where
        I: IntoIterator<Item = Cow<'a, str>>,
    {
        let mut at = self.list(key);
        for v in values {
            if v.is_empty() {
                continue;
            }
            let list = match at {
                Some(list) => {
                    if self.of(list).any(|item| item == v) {
                        continue;
                    }
                    list
                }
                None => {
                    self.keys[self.nkeys] = key;
                    self.nkeys += 1;
                    let list = (self.nkeys - 1) as u8;
                    at = Some(list);
                    list
                }
            };
            if self.len < N {
                self.items[self.len] = (list, v);
                self.len += 1;
            } else {
                self.more.push((list, v));
            }
        }
        at.is_some()
    }

    /// The list under `key` as a JSON array (an empty one if there is none).
    pub fn write_list(&self, w: &mut JsonWriter, key: &str) {
        w.begin_arr();
        if let Some(at) = self.list(key) {
            for item in self.of(at) {
                w.item();
                w.str(item);
            }
        }
        w.end_arr();
    }

    /// The lists as a JSON object, in the order they were made.
    pub fn write(&self, w: &mut JsonWriter) {
        w.begin_obj();
        for (i, k) in self.keys[..self.nkeys].iter().enumerate() {
            w.key(k);
            w.begin_arr();
            for item in self.of(i as u8) {
                w.item();
                w.str(item);
            }
            w.end_arr();
        }
        w.end_obj();
    }
}

/// An ordered set of a document's top-level keys: the order in which each was first written (a
/// Python dict's order), a key removed and written again going last.
#[derive(Debug)]
pub struct Order<K: Copy + PartialEq, const N: usize> {
    keys: [Option<K>; N],
    len: usize,
}

impl<K: Copy + PartialEq, const N: usize> Default for Order<K, N> {
    fn default() -> Self {
        Order { keys: [None; N], len: 0 }
    }
}

impl<K: Copy + PartialEq, const N: usize> Order<K, N> {
    pub fn touch(&mut self, key: K) {
        if !self.contains(key) {
            self.keys[self.len] = Some(key);
            self.len += 1;
        }
    }

    pub fn contains(&self, key: K) -> bool {
        self.keys[..self.len].contains(&Some(key))
    }

    pub fn remove(&mut self, key: K) {
        if let Some(i) = self.keys[..self.len].iter().position(|k| *k == Some(key)) {
            self.keys[i..self.len].rotate_left(1);
            self.len -= 1;
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = K> + '_ {
        self.keys[..self.len].iter().flatten().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json<const N: usize>(f: &Flat<'_, N>, pool: &[Option<Flat<'_, 2>>]) -> String {
        let mut w = JsonWriter::default();
        f.write(&mut w, pool);
        String::from_utf8(w.into_bytes()).unwrap()
    }

    #[test]
    fn lists_follow_add_unique_inline_and_beyond() {
        let mut lists: Lists<'_, 2, 3> = Lists::default();
        assert!(!lists.add_unique("l", [Cow::Borrowed("")]));
        assert!(lists.add_unique("l", ["p".into(), "q".into(), "p".into()]));
        assert!(!lists.add_unique("m", []));
        assert!(lists.add_unique("m", ["p".into(), "r".into(), "s".into()]));
        assert!(lists.add_unique("l", ["q".into(), "t".into()]));
        let mut w = JsonWriter::default();
        lists.write(&mut w);
        lists.write_list(&mut w, "l");
        lists.write_list(&mut w, "x");
        assert_eq!(
            String::from_utf8(w.into_bytes()).unwrap(),
            r#"{"l":["p","q","t"],"m":["p","r","s"]}["p","q","t"][]"#
        );
    }

    #[test]
    fn flat_objects_follow_the_dict_rules() {
        let mut pool: [Option<Flat<'_, 2>>; 1] = [Some(Flat::default())];
        let mut f: Flat<'_, 4> = Flat::default();
        assert!(!f.put("a", Some("".into())));
        assert!(f.put("a", Some("x".into())));
        assert!(f.sub("s", 0));
        pool[0].as_mut().unwrap().put("id", Some("1".into()));
        f.put("a", Some("y".into())); // replaced in place
        assert_eq!(json(&f, &pool), r#"{"a":"y","s":{"id":"1"}}"#);
        f.remove("a");
        f.put("a", Some("z".into())); // again: last
        assert_eq!(json(&f, &pool), r#"{"s":{"id":"1"},"a":"z"}"#);
        let mut order: Order<u8, 4> = Order::default();
        for k in [1, 2, 1, 3] {
            order.touch(k);
        }
        order.remove(2);
        order.touch(2);
        assert_eq!(order.iter().collect::<Vec<_>>(), [1, 3, 2]);
    }
}
