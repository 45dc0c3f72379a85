//! One parsed audit record line (Python `LinuxRecord`): header facts, the key=value fields with
//! their raw values (quotes kept, hex not decoded), the ENRICHED section, repeated keys.

use super::num::Num;

/// Ordered key=value pairs, each key once (the first value kept), as the Python dicts are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Why a line is not a record.
pub const ERROR_EMPTY: &str = "empty line";
pub const ERROR_FRAGMENT: &str = "fragment: line does not start with type= or node= (oversize-line continuation?)";
pub const ERROR_NO_HEADER: &str = "no type=... msg=audit(sec.ms:serial)";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// "SYSCALL", or "UNKNOWN[1234]" as written when the sender had no name; "" for error records.
    pub type_name: String,
    /// Resolved from the name (or the UNKNOWN[n] number); None if unknown.
    pub type_num: Option<Num>,
    pub node: Option<String>,
    /// Event time: sec * 1e9 + the fraction scaled to ns.
    pub time_ns: Option<Num>,
    pub serial: Option<Num>,
    /// The line as received (invalid UTF-8 as `\xNN`), trailing newline removed.
    pub raw: String,
    /// Set when the line could not be parsed; the record is then kept whole.
    pub error: Option<&'static str>,
    /// The line does not start with type=/node=: an oversize-line continuation.
    pub fragment: bool,
    pub fields: Fields,
    /// The ENRICHED section after 0x1d: UPPER-CASE keys, values unquoted.
    pub enriched: Fields,
    /// Later values of repeated keys, in order.
    pub duplicates: Vec<(String, String)>,
    /// The inner `msg='…'` text of user-space records, unquoted.
    pub text: Option<String>,
}

/// User-space and daemon messages (1100-1299, 2100-2999) are whole events on their own.
pub fn is_user_space_number(num: Option<&Num>) -> bool {
    matches!(num, Some(Num::Small(n)) if (1100..=1299).contains(n) || (2100..=2999).contains(n))
}

impl Record {
    pub fn error_record(raw: String, error: &'static str, fragment: bool) -> Record {
        Record { raw, error: Some(error), fragment, ..Record::default() }
    }

    pub fn is_user_space(&self) -> bool {
        is_user_space_number(self.type_num.as_ref())
    }

    /// `sec.mmm:serial` as written in `msg=audit(...)`, the event identity within a node.
    pub fn msg_id(&self) -> Option<String> {
        let (time, serial) = (self.time_ns.as_ref()?, self.serial.as_ref()?);
        let (sec, ns) = time.split_seconds();
        Some(format!("{sec}.{:03}:{serial}", ns / 1_000_000))
    }
}
