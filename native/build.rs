//! Embeds the BSM and Linux lookup tables at build time.
//!
//! The tables are data files generated from upstream sources by `scripts/gen_bsm_tables.py`
//! (`tables/bsm/`) and `scripts/gen_linux_tables.py` (`tables/linux/`), checked by
//! tests/foundation/test_generated_tables.py: they are parsed here and written out as sorted Rust slices
//! (`$OUT_DIR/bsm_tables.rs`, included by `src/bsm/tables.rs`; `$OUT_DIR/linux_tables.rs`, by
//! `src/linux/tables.rs`). Nothing is copied by hand. The document schema's own tables
//! (`auditrecv/schema/data/`) are shared with the Python index templates and embedded by `src/ecs/tables.rs`.

use std::collections::BTreeMap;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

fn data_dir() -> PathBuf {
    println!("cargo:rerun-if-env-changed=AUDITRECV_BSM_DATA");
    if let Ok(dir) = env::var("AUDITRECV_BSM_DATA") {
        return PathBuf::from(dir);
    }
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    manifest.join("tables/bsm")
}

fn linux_data_dir() -> PathBuf {
    println!("cargo:rerun-if-env-changed=AUDITRECV_LINUX_DATA");
    if let Ok(dir) = env::var("AUDITRECV_LINUX_DATA") {
        return PathBuf::from(dir);
    }
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    manifest.join("tables/linux")
}

fn read(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    println!("cargo:rerun-if-changed={}", path.display());
    fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (set AUDITRECV_BSM_DATA / AUDITRECV_LINUX_DATA)", path.display()))
}

/// Rows of a Linux data file: comment and
/// empty lines dropped, no column-name line.
fn linux_rows(text: &str) -> Vec<Vec<&str>> {
    text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).map(|l| l.split('\t').collect()).collect()
}

/// The Linux tables (syscalls per arch, arches, record types, errno) as tables.py builds its dicts:
/// a repeated key keeps its last line, and the type-number map is derived from the type-name map.
fn linux_tables(dir: &Path, out: &mut String) {
    let text = read(dir, "syscalls.tsv");
    let mut syscalls: BTreeMap<String, BTreeMap<i64, String>> = BTreeMap::new();
    for row in linux_rows(&text) {
        let [table, num, name] = row[..] else { panic!("syscalls.tsv: expected 3 columns, got {row:?}") };
        let num: i64 = num.parse().unwrap_or_else(|_| panic!("syscalls.tsv: bad number {num:?}"));
        syscalls.entry(table.to_owned()).or_default().insert(num, name.to_owned());
    }
    let table_names: Vec<&String> = syscalls.keys().collect();
    writeln!(out, "pub static SYSCALL_TABLES: &[&[(i64, &str)]] = &[").unwrap();
    for calls in syscalls.values() {
        let items: Vec<(i64, &str)> = calls.iter().map(|(k, v)| (*k, v.as_str())).collect();
        writeln!(out, "    &{items:?},").unwrap();
    }
    writeln!(out, "];").unwrap();

    let text = read(dir, "arches.tsv");
    let mut arches: BTreeMap<i64, (String, Option<usize>)> = BTreeMap::new();
    for row in linux_rows(&text) {
        let [value, name, table] = row[..] else { panic!("arches.tsv: expected 3 columns, got {row:?}") };
        let value = i64::from_str_radix(value, 16).unwrap_or_else(|_| panic!("arches.tsv: bad arch {value:?}"));
        let index = if table.is_empty() { None } else { table_names.iter().position(|t| t.as_str() == table) };
        arches.insert(value, (name.to_owned(), index));
    }
    let items: Vec<(i64, &str, Option<usize>)> = arches.iter().map(|(k, (n, t))| (*k, n.as_str(), *t)).collect();
    writeln!(out, "pub static ARCHES: &[(i64, &str, Option<usize>)] = &{items:?};").unwrap();

    let text = read(dir, "msg_types.tsv");
    // a Python dict: insertion order of first appearance, the last value wins
    let mut names: Vec<(i64, String)> = Vec::new();
    for row in linux_rows(&text) {
        let [num, name] = row[..] else { panic!("msg_types.tsv: expected 2 columns, got {row:?}") };
        let num: i64 = num.parse().unwrap_or_else(|_| panic!("msg_types.tsv: bad number {num:?}"));
        match names.iter_mut().find(|(n, _)| *n == num) {
            Some(slot) => slot.1 = name.to_owned(),
            None => names.push((num, name.to_owned())),
        }
    }
    let mut numbers: BTreeMap<&str, i64> = BTreeMap::new();
    for (num, name) in &names {
        numbers.insert(name.as_str(), *num);
    }
    let by_num: BTreeMap<i64, &str> = names.iter().map(|(n, s)| (*n, s.as_str())).collect();
    let items: Vec<(i64, &str)> = by_num.into_iter().collect();
    writeln!(out, "pub static MSG_TYPE_NAMES: &[(i64, &str)] = &{items:?};").unwrap();
    let items: Vec<(&str, i64)> = numbers.into_iter().collect();
    writeln!(out, "pub static MSG_TYPE_NUMBERS: &[(&str, i64)] = &{items:?};").unwrap();
    hash_table(out, "MSG_TYPE_SLOTS", &items.iter().map(|i| i.0).collect::<Vec<_>>());
    let names: Vec<&str> = FIELD_KINDS.iter().map(|f| f.0).chain(FACT_NAMES.iter().copied()).collect();
    hash_table(out, "NAME_SLOTS", &names);

    let text = read(dir, "errno.tsv");
    let mut errno: BTreeMap<i64, (String, String)> = BTreeMap::new();
    for row in linux_rows(&text) {
        let [num, name, message] = row[..] else { panic!("errno.tsv: expected 3 columns, got {row:?}") };
        let num: i64 = num.parse().unwrap_or_else(|_| panic!("errno.tsv: bad number {num:?}"));
        errno.insert(num, (name.to_owned(), message.to_owned()));
    }
    let items: Vec<(i64, &str, &str)> = errno.iter().map(|(k, (n, m))| (*k, n.as_str(), m.as_str())).collect();
    writeln!(out, "pub static ERRNO: &[(i64, &str, &str)] = &{items:?};").unwrap();
}

include!("src/linux/name_hash.rs");
include!("src/linux/field_kinds.rs");

/// An open-addressing hash table over `names` (their indices + 1, 0 for an empty slot; linear probing,
/// under a quarter full): `NAME_BITS`, `NAME: [u16; 1 << bits]` and each name's key (`NAME_KEYS`, in the
/// order of `names`), for `key_slot` with `NAME_SEED`.
fn hash_table(out: &mut String, rust_name: &str, names: &[&str]) {
    const SEED: u64 = 0x9E37_79B9_7F4A_7C15;
    let bits = (names.len() * 4).next_power_of_two().trailing_zeros();
    let mask = (1usize << bits) - 1;
    let mut slots = vec![0u16; 1 << bits];
    let mut keys = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let key = name_key(name.as_bytes());
        let mut slot = key_slot(key, name.len(), SEED, bits);
        while slots[slot] != 0 {
            slot = (slot + 1) & mask;
        }
        slots[slot] = u16::try_from(i + 1).expect("a small table");
        keys.push((key.0, key.1, name.len()));
    }
    writeln!(out, "pub const {rust_name}_SEED: u64 = {SEED:#x};").unwrap();
    writeln!(out, "pub const {rust_name}_BITS: u32 = {bits};").unwrap();
    writeln!(out, "pub static {rust_name}: [u16; {}] = {slots:?};", slots.len()).unwrap();
    writeln!(out, "pub static {rust_name}_KEYS: [(u64, u64, usize); {}] = {keys:?};", keys.len()).unwrap();
}

/// Rows of a generated TSV: comment and empty lines dropped, then the column-name line.
fn tsv_rows(text: &str) -> Vec<Vec<&str>> {
    text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).skip(1).map(|l| l.split('\t').collect()).collect()
}

fn events(dir: &Path, name: &str, rust_name: &str, out: &mut String) {
    let text = read(dir, name);
    let mut rows: BTreeMap<u32, (String, String, Vec<String>)> = BTreeMap::new();
    for row in tsv_rows(&text) {
        let [num, ev, desc, classes] = row[..] else {
            panic!("{name}: expected 4 columns, got {row:?}");
        };
        let num: u32 = num.parse().unwrap_or_else(|_| panic!("{name}: bad event number {num:?}"));
        let classes = classes.split(',').filter(|c| !c.is_empty()).map(str::to_owned).collect();
        rows.insert(num, (ev.to_owned(), desc.to_owned(), classes)); // like a dict: the last line wins
    }
    writeln!(out, "pub static {rust_name}: &[EventInfo] = &[").unwrap();
    for (num, (ev, desc, classes)) in rows {
        writeln!(out, "    EventInfo {{ number: {num}, name: {ev:?}, description: {desc:?}, classes: &{classes:?} }},")
            .unwrap();
    }
    writeln!(out, "];").unwrap();
}

/// Single-bit classes only, sorted by mask (tables.py `_classes`).
fn classes(dir: &Path, name: &str, rust_name: &str, out: &mut String) {
    let text = read(dir, name);
    let mut single: Vec<(u32, String)> = Vec::new();
    for row in tsv_rows(&text) {
        let [mask, cls, _desc] = row[..] else {
            panic!("{name}: expected 3 columns, got {row:?}");
        };
        let mask = u32::from_str_radix(mask.trim_start_matches("0x"), 16)
            .unwrap_or_else(|_| panic!("{name}: bad mask {mask:?}"));
        if mask != 0 && mask & (mask - 1) == 0 {
            single.push((mask, cls.to_owned()));
        }
    }
    single.sort();
    writeln!(out, "pub static {rust_name}: &[(u32, &str)] = &{single:?};").unwrap();
}

fn intmap(misc: &serde_json::Value, key: &str) -> BTreeMap<i64, String> {
    let obj = misc[key].as_object().unwrap_or_else(|| panic!("misc.json: {key} is not an object"));
    obj.iter()
        .map(|(k, v)| {
            let k: i64 = k.parse().unwrap_or_else(|_| panic!("misc.json: {key}: bad key {k:?}"));
            let v = v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string());
            (k, v)
        })
        .collect()
}

fn write_map(out: &mut String, rust_name: &str, map: &BTreeMap<i64, String>) {
    let items: Vec<(i64, &str)> = map.iter().map(|(k, v)| (*k, v.as_str())).collect();
    writeln!(out, "pub static {rust_name}: &[(i64, &str)] = &{items:?};").unwrap();
}

fn schema_dir() -> PathBuf {
    println!("cargo:rerun-if-env-changed=AUDITRECV_SCHEMA_DATA");
    if let Ok(dir) = env::var("AUDITRECV_SCHEMA_DATA") {
        return PathBuf::from(dir);
    }
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    manifest.join("../auditrecv/schema/data")
}

/// Rows of a schema TSV as `auditrecv/schema/tables.py` `_rows` reads them: comments and blank lines
/// dropped, the first remaining line names the columns, short rows padded with empty cells.
fn schema_rows(text: &str) -> (Vec<&str>, Vec<Vec<&str>>) {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#'));
    let header: Vec<&str> = lines.next().map(|l| l.split('\t').collect()).unwrap_or_default();
    let rows = lines
        .map(|l| {
            let mut cells: Vec<&str> = l.split('\t').collect();
            cells.resize(cells.len().max(header.len()), "");
            cells
        })
        .collect();
    (header, rows)
}

/// A comma-separated cell as tables.py `_list`: items stripped, empty ones dropped.
fn cell_list(cell: &str) -> Vec<String> {
    cell.split(',').map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned).collect()
}

/// One categorization table keyed by `key_column` (the last row of a key wins, as in the Python dict),
/// written as a slice sorted by key.
fn categories(dir: &Path, name: &str, key_column: &str, columns: [&str; 5], rust_name: &str, out: &mut String) {
    let text = read(dir, name);
    let (header, rows) = schema_rows(&text);
    let col = |c: &str| header.iter().position(|h| *h == c).unwrap_or_else(|| panic!("{name}: no column {c:?}"));
    let key = col(key_column);
    let [action, object, kind, category, typ] = columns.map(|c| if c.is_empty() { None } else { Some(col(c)) });
    let mut table: BTreeMap<String, String> = BTreeMap::new();
    for row in rows {
        let cell = |c: Option<usize>| c.map_or("", |i| row[i]);
        let entry = format!(
            "Category {{ action: {:?}, object_type: {:?}, kind: {:?}, category: &{:?}, types: &{:?}, direction: {:?} }}",
            cell(action),
            cell(object),
            cell(kind),
            cell_list(cell(category)),
            cell_list(cell(typ)),
            if rust_name == "BSM_CATEGORIES" { row[col("direction")] } else { "" },
        );
        table.insert(row[key].to_owned(), entry);
    }
    writeln!(out, "pub static {rust_name}: &[(&str, Category)] = &[").unwrap();
    for (k, v) in table {
        writeln!(out, "    ({k:?}, {v}),").unwrap();
    }
    writeln!(out, "];").unwrap();
}

/// `linux_categories.tsv` as `tables.linux_categories()` reads it (the last row of a key wins), sorted.
fn linux_categories(dir: &Path, out: &mut String) {
    let text = read(dir, "linux_categories.tsv");
    let (header, rows) = schema_rows(&text);
    let col = |c: &str| {
        header.iter().position(|h| *h == c).unwrap_or_else(|| panic!("linux_categories.tsv: no column {c:?}"))
    };
    let mut table: BTreeMap<String, String> = BTreeMap::new();
    for row in rows {
        let cell = |c: &str| row[col(c)];
        let entry = format!(
            "LinuxCategory {{ action: {:?}, object_type: {:?}, object_primary: &{:?}, object_secondary: &{:?}, kind: {:?}, category: &{:?}, types: &{:?}, direction: {:?} }}",
            cell("action"),
            cell("object_type"),
            cell_list(cell("object_primary")),
            cell_list(cell("object_secondary")),
            cell("kind"),
            cell_list(cell("category")),
            cell_list(cell("type")),
            cell("direction"),
        );
        table.insert(cell("key").to_owned(), entry);
    }
    writeln!(out, "pub static LINUX_CATEGORIES: &[(&str, LinuxCategory)] = &[").unwrap();
    for (k, v) in table {
        writeln!(out, "    ({k:?}, {v}),").unwrap();
    }
    writeln!(out, "];").unwrap();
}

fn schema_tables() {
    let dir = schema_dir();
    let mut out = String::from("// @generated by build.rs from auditrecv/schema/data: do not edit\n");
    categories(
        &dir,
        "bsm_categories.tsv",
        "event",
        ["action", "object", "kind", "category", "type"],
        "BSM_CATEGORIES",
        &mut out,
    );
    categories(
        &dir,
        "bsm_class_categories.tsv",
        "class",
        ["", "object", "", "category", "type"],
        "BSM_CLASS_CATEGORIES",
        &mut out,
    );
    linux_categories(&dir, &mut out);
    let target = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR")).join("schema_tables.rs");
    fs::write(&target, out).unwrap_or_else(|e| panic!("{}: {e}", target.display()));
}

fn main() {
    schema_tables();
    let dir = data_dir();
    let mut out = String::from("// @generated by build.rs from native/tables/bsm: do not edit\n");
    events(&dir, "illumos_events.tsv", "ILLUMOS_EVENTS", &mut out);
    events(&dir, "openbsm_events.tsv", "OPENBSM_EVENTS", &mut out);
    classes(&dir, "illumos_classes.tsv", "ILLUMOS_CLASSES", &mut out);
    classes(&dir, "openbsm_classes.tsv", "OPENBSM_CLASSES", &mut out);
    let misc: serde_json::Value = serde_json::from_str(&read(&dir, "misc.json")).expect("misc.json");
    let illumos_errno = intmap(&misc, "illumos_errno");
    let mut bsm_errno = illumos_errno.clone();
    bsm_errno.extend(intmap(&misc, "bsm_extra_errno"));
    write_map(&mut out, "ILLUMOS_ERRNO", &illumos_errno);
    write_map(&mut out, "BSM_ERRNO", &bsm_errno);
    write_map(&mut out, "SIGNALS", &intmap(&misc, "signals"));
    write_map(&mut out, "PRIV_OPS", &intmap(&misc, "priv_ops"));
    write_map(&mut out, "ADT_FAIL", &intmap(&misc, "adt_fail_values"));
    write_map(&mut out, "PAM_ERRORS", &intmap(&misc, "pam_errors"));
    let target = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR")).join("bsm_tables.rs");
    fs::write(&target, out).unwrap_or_else(|e| panic!("{}: {e}", target.display()));

    let mut out = String::from("// @generated by build.rs from native/tables/linux: do not edit\n");
    linux_tables(&linux_data_dir(), &mut out);
    let target = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR")).join("linux_tables.rs");
    fs::write(&target, out).unwrap_or_else(|e| panic!("{}: {e}", target.display()));
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/linux/name_hash.rs");
    println!("cargo:rerun-if-changed=src/linux/field_kinds.rs");
}
