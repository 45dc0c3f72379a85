//! The schema's categorization tables, embedded at build time from `auditrecv/schema/data/`
//! (`bsm_categories.tsv`, `bsm_class_categories.tsv`; see `build.rs`), the files the index templates
//! and docs/schema.md are made from (`auditrecv/schema/tables.py`), so documents and docs agree.

/// One table row (`tables.Category`; object primary/secondary are chosen in code for BSM).
#[derive(Debug, PartialEq, Eq)]
pub struct Category {
    pub action: &'static str,
    pub object_type: &'static str,
    pub kind: &'static str,
    pub category: &'static [&'static str],
    pub types: &'static [&'static str],
    pub direction: &'static str,
}

/// One row of `linux_categories.tsv` (`tables.Category` with its object field lists).
#[derive(Debug, PartialEq, Eq)]
pub struct LinuxCategory {
    pub action: &'static str,
    pub object_type: &'static str,
    pub object_primary: &'static [&'static str],
    pub object_secondary: &'static [&'static str],
    pub kind: &'static str,
    pub category: &'static [&'static str],
    pub types: &'static [&'static str],
    pub direction: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/schema_tables.rs"));

use crate::linux::record::key_hash_bytes;

/// `syscall:<name>` / `type:<RECORD_TYPE>` -> its row: looked up in an open-addressing table of the rows'
/// positions, made on first use (a binary search compared ~9 keys a lookup, two lookups a document).
pub fn linux_category(key: &str) -> Option<&'static LinuxCategory> {
    linux_category_of(key.as_bytes())
}

/// [`linux_category`] of a key's bytes (made on the stack by the caller, no UTF-8 check needed).
pub fn linux_category_of(key: &[u8]) -> Option<&'static LinuxCategory> {
    static INDEX: std::sync::OnceLock<Vec<u16>> = std::sync::OnceLock::new();
    let index = INDEX.get_or_init(|| {
        let mut slots = vec![u16::MAX; (LINUX_CATEGORIES.len() * 4).next_power_of_two()];
        let mask = slots.len() - 1;
        for (i, (k, _)) in LINUX_CATEGORIES.iter().enumerate() {
            let mut slot = key_hash_bytes(k.as_bytes()) & mask;
            while slots[slot] != u16::MAX {
                slot = (slot + 1) & mask;
            }
            slots[slot] = u16::try_from(i).expect("fewer rows than u16::MAX");
        }
        slots
    });
    let mask = index.len() - 1;
    let mut slot = key_hash_bytes(key) & mask;
    loop {
        let i = *index.get(slot)?;
        let (k, row) = LINUX_CATEGORIES.get(usize::from(i))?; // an empty slot: no such key
        if k.as_bytes() == key {
            return Some(row);
        }
        slot = (slot + 1) & mask;
    }
}

fn find(table: &'static [(&'static str, Category)], key: &str) -> Option<&'static Category> {
    table.binary_search_by(|(k, _)| (*k).cmp(key)).ok().map(|i| &table[i].1)
}

/// BSM event name -> its row.
pub fn bsm_category(event_name: &str) -> Option<&'static Category> {
    find(BSM_CATEGORIES, event_name)
}

/// Audit class -> the fallback row (action left empty).
pub fn bsm_class_category(class: &str) -> Option<&'static Category> {
    find(BSM_CLASS_CATEGORIES, class)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_by_key() {
        let exec = bsm_category("AUE_EXECVE").expect("execve is categorized");
        assert_eq!(exec.object_type, "file");
        assert!(exec.category.contains(&"process"));
        assert_eq!(bsm_class_category("lo").map(|c| c.object_type), Some("user-session"));
        assert!(bsm_category("AUE_NOT_THERE").is_none());
        assert!(BSM_CATEGORIES.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn every_linux_row_is_found_by_its_key() {
        assert!(LINUX_CATEGORIES.windows(2).all(|w| w[0].0 < w[1].0), "one row a key");
        for (key, row) in LINUX_CATEGORIES {
            assert!(std::ptr::eq(linux_category(key).expect(key), row), "{key}");
            for other in [format!("{key}x"), key[..key.len() - 1].to_owned(), key.to_uppercase(), format!(" {key}")] {
                if LINUX_CATEGORIES.binary_search_by(|(k, _)| (*k).cmp(other.as_str())).is_err() {
                    assert!(linux_category(&other).is_none(), "{other}");
                }
            }
        }
        assert!(linux_category("").is_none());
    }
}
