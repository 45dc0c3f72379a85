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

/// `syscall:<name>` / `type:<RECORD_TYPE>` -> its row.
pub fn linux_category(key: &str) -> Option<&'static LinuxCategory> {
    LINUX_CATEGORIES.binary_search_by(|(k, _)| (*k).cmp(key)).ok().map(|i| &LINUX_CATEGORIES[i].1)
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
}
