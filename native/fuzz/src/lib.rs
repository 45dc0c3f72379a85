//! What each fuzz target does with one input: the decoder's entry points as `auditrecv._native`
//! calls them (`src/python.rs`), then cheap invariants on what they return. A panic (in the decoder or
//! in an assertion here) is a crash.
//!
//! Shared by the cargo-fuzz targets (`fuzz_targets/*.rs`, one line each) and by the main crate's
//! `tests/fuzz_regressions.rs` (which includes this file as a module and replays every file under
//! `regressions/`), so a crash found here and the regression test run the same code. It may use only
//! `auditrecv_native`, `serde_json` and std: no `crate::` paths.
//!
//! A new target: a `pub fn` here, its row in [`TARGETS`], `fuzz_targets/<name>.rs` and a `[[bin]]` in
//! `Cargo.toml`.

use auditrecv_native::bsm::json::record_json;
use auditrecv_native::bsm::trail::SNIFF_BYTES;
use auditrecv_native::bsm::{Item, Limits, Record, Walk, decode_record, looks_like_bsm};
use auditrecv_native::ecs::batch::{Fallback, Schema};
use auditrecv_native::ecs::common::{Observer, Source};
use auditrecv_native::ecs::limits::DocLimits;
use auditrecv_native::ecs::linux_batch::{LinuxBuilder, Outcome};
use auditrecv_native::linux::{Settings, decode_raw, log_lines};
use serde_json::Value;

/// What a target does with one input (panics on a bug).
pub type Check = fn(&[u8]);

/// Every target by name (the directory names under `regressions/`).
pub const TARGETS: &[(&str, Check)] =
    &[("bsm_record", bsm_record), ("bsm_trail", bsm_trail), ("bsm_sniff", bsm_sniff), ("linux_lines", linux_lines)];

/// The caps as configured by default, tiny ones (every truncation path) and zero.
const LIMITS: [Limits; 3] = [
    Limits { max_tokens: 1000, max_array_items: 10_000 },
    Limits { max_tokens: 2, max_array_items: 1 },
    Limits { max_tokens: 0, max_array_items: 0 },
];

/// `sub` lies inside `data` (an empty slice may be anywhere).
fn within(data: &[u8], sub: &[u8]) -> bool {
    let (d, s) = (data.as_ptr() as usize, sub.as_ptr() as usize);
    sub.is_empty() || (s >= d && s + sub.len() <= d + data.len())
}

/// What holds for any decoded record of `input` (the bytes it was decoded from).
fn check_record(rec: &Record<'_>, input: &[u8], lim: Limits) {
    assert_eq!(rec.raw.len(), rec.length, "raw and length disagree");
    assert!(rec.length <= input.len(), "record length {} > input {}", rec.length, input.len());
    assert!(within(input, rec.raw), "raw is not a slice of the input");
    assert!(rec.tokens.len() <= lim.max_tokens, "{} tokens kept, cap {}", rec.tokens.len(), lim.max_tokens);
    if let Some(t) = &rec.truncation {
        assert!(t.tokens_seen >= rec.tokens.len() as u64, "truncation: seen < kept");
        assert_eq!((t.max_tokens, t.max_array_items), (lim.max_tokens, lim.max_array_items));
    }
    assert!(rec.ok() || !rec.errors.iter().any(String::is_empty), "an empty error message");
}

/// The record's JSON line: one line, UTF-8, valid JSON agreeing with the record (integers beyond 64
/// bits, a 64-bit header's far-future time, written exactly: never an error).
fn check_json(rec: &Record<'_>, offset: Option<u64>) {
    let line = record_json(rec, offset).expect("a record's JSON line cannot be written");
    assert_eq!(line.last(), Some(&b'\n'), "the JSON line does not end with a newline");
    assert!(!line[..line.len() - 1].contains(&b'\n'), "a newline inside the JSON line");
    let text = std::str::from_utf8(&line).expect("the JSON line is not UTF-8");
    let v: Value = serde_json::from_str(text).expect("the JSON line does not parse");
    let obj = v.as_object().expect("the JSON line is not an object");
    assert_eq!(obj["offset"].as_u64(), Some(offset.unwrap_or(rec.offset)), "offset");
    assert_eq!(obj["length"].as_u64(), Some(rec.length as u64), "length");
    assert_eq!(obj["raw"].as_str().map(str::len), Some(2 * rec.raw.len()), "raw hex");
    assert_eq!(obj["tokens"].as_array().map(Vec::len), Some(rec.tokens.len()), "tokens");
    assert_eq!(obj["errors"].as_array().map(Vec::len), Some(rec.errors.len()), "errors");
    assert_eq!(obj.contains_key("truncation"), rec.truncation.is_some(), "truncation");
}

/// One record's bytes (an audit_remote payload): `bsm_decode_raw_json` / `bsm_decode_raw` /
/// `bsm_decode_record_json` under every cap and both `whole` modes, plus decoding from an offset.
pub fn bsm_record(data: &[u8]) {
    for (i, lim) in LIMITS.into_iter().enumerate() {
        for whole in [true, false] {
            let rec = decode_record(data, 0, whole, lim);
            check_record(&rec, data, lim);
            assert_eq!(rec.offset, 0);
            if whole && rec.ok() {
                assert_eq!(rec.length, data.len(), "a whole record without errors leaves bytes over");
            }
            if whole || i == 0 {
                check_json(&rec, Some(if i == 0 { 0 } else { u64::MAX }));
            }
        }
    }
    for off in [data.len() / 2, data.len()] {
        let rec = decode_record(data, off, false, LIMITS[0]);
        check_record(&rec, data.get(off..).unwrap_or_default(), LIMITS[0]);
        assert_eq!(rec.offset, off as u64);
        check_json(&rec, None);
    }
}

/// A byte stream or trail file as `decode --raw` walks it: `bsm_split_trail`, then each record's
/// bytes through `bsm_decode_raw_json` at its offset; also the split's own records and the sniff.
pub fn bsm_trail(data: &[u8]) {
    let lim = Limits::default();
    let items: Vec<Item<'_>> = Walk::new(data, 0, lim, true).collect();
    let mut pos = 0usize;
    let mut not_files = Vec::new();
    for item in &items {
        let (off, len) = (item.offset(), item.length());
        assert_eq!(off, pos as u64, "items are not contiguous");
        assert!(len >= 1, "an empty item");
        let end = pos.checked_add(len).filter(|&e| e <= data.len()).expect("an item beyond the input");
        match item {
            Item::Record(r) | Item::Skipped(r) => {
                assert_eq!(r.raw, &data[pos..end], "raw is not the item's bytes");
                check_record(r, data, lim);
                check_json(r, None);
                not_files.push((matches!(item, Item::Record(_)), off, len));
                if matches!(item, Item::Record(_)) {
                    let one = decode_record(&data[pos..end], 0, true, lim);
                    check_record(&one, &data[pos..end], lim);
                    check_json(&one, Some(off));
                }
            }
            Item::File(f) => {
                assert!(matches!(f.token_id, 0x11 | 0x78), "file token id 0x{:02x}", f.token_id);
                assert_eq!(data[pos], f.token_id);
            }
        }
        pos = end;
    }
    assert_eq!(pos, data.len(), "the items do not cover the input");
    // without file tokens, at another base: the same records at shifted offsets
    let base = 1u64 << 40;
    let shifted: Vec<(bool, u64, usize)> = Walk::new(data, base, lim, false)
        .map(|item| {
            assert!(!matches!(item, Item::File(_)), "a file token without with_files");
            (matches!(item, Item::Record(_)), item.offset() - base, item.length())
        })
        .collect();
    assert_eq!(shifted, not_files, "the walk depends on with_files or the base");
    bsm_sniff(&data[..data.len().min(SNIFF_BYTES)]);
}

/// Format sniffing (`bsm_looks_like`) of the input and of its short prefixes.
pub fn bsm_sniff(data: &[u8]) {
    assert!(!looks_like_bsm(&[]));
    let head = &data[..data.len().min(SNIFF_BYTES)];
    let verdict = looks_like_bsm(head);
    if verdict && matches!(head[0], 0x14 | 0x15 | 0x74 | 0x79) {
        assert!(head.len() >= 6, "a header id alone looks like BSM");
    }
    for n in 1..head.len().min(64) {
        looks_like_bsm(&head[..n]);
    }
    looks_like_bsm(data);
}

/// A Linux audit log, as `decode --raw` reads it (`linux_decode_raw`) and as the pipeline builds its
/// documents (`LinuxDocuments`: ECS and `auditrecv-v1`, tight and default settings). The decoder never
/// refuses an input (a header number of over 4300 digits is an error event); an event the builder cannot
/// map or write becomes a dead letter; a caught panic (a dead letter saying `internal error: native:`,
/// or `Fallback::Panicked` where even that failed) is a crash.
pub fn linux_lines(data: &[u8]) {
    let lines: Vec<&[u8]> = log_lines(data).collect();
    let tight = Settings { max_records: 3, max_in_flight: 2, ..Settings::default() };
    for settings in [Settings::default(), tight] {
        let out = decode_raw(lines.iter().copied(), "fuzz", settings).expect("decode --raw refused an input");
        let text = std::str::from_utf8(&out).expect("decode --raw wrote invalid UTF-8");
        for line in text.lines() {
            let value: Value = serde_json::from_str(line).expect("decode --raw wrote invalid JSON");
            assert!(value.is_object(), "a decode --raw line is not an object");
        }
        for (schema, record_clock) in [(Schema::Ecs, true), (Schema::V1, false)] {
            let mut builder =
                LinuxBuilder::new(schema, Observer::default(), DocLimits::default(), settings, record_clock);
            let source = Source { transport: "audisp_remote".into(), peer: "192.0.2.7".into(), ..Source::default() };
            let ids: Vec<i64> = (1..=lines.len() as i64).collect();
            let received: Vec<u64> = vec![1_700_000_000_000_000_000; lines.len()];
            let mut built = builder.add(&lines, &received, &ids, &source, None);
            built.extend(builder.flush(None));
            let mut seen = 0;
            for mut b in built {
                seen += b.spool_ids.len();
                assert!(b.spool_ids.iter().all(|i| (1..=lines.len() as i64).contains(i)), "a spool id not given");
                match &b.outcome {
                    // Python's int() refuses such a header number and its DocumentBuilder raises: handed
                    // back as "native_error" on purpose, the one Panicked that is not a caught panic.
                    Outcome::Fallback(Fallback::Panicked(why), _) if why.contains("more than 4300 digits") => {}
                    Outcome::Fallback(Fallback::Panicked(why), _) => panic!("the Linux builder panicked: {why}"),
                    Outcome::Doc(_) => match builder.serialize(&mut b) {
                        Ok(json) => {
                            let value: Value = serde_json::from_slice(&json).expect("a document is not JSON");
                            assert!(value.is_object() && !b.id.is_empty(), "a document without an id or not an object");
                            let error = value.pointer("/error/message").and_then(Value::as_str).unwrap_or_default();
                            // a header number Python's int() refuses (its DocumentBuilder raised): a dead
                            // letter on purpose, the one "native" reason that is not a caught panic
                            if error.starts_with("internal error: native: ") && !error.contains("more than 4300 digits")
                            {
                                panic!("the Linux builder panicked: {error}");
                            }
                        }
                        Err(Fallback::Panicked(why)) => panic!("serializing a Linux document panicked: {why}"),
                        Err(_) => {}
                    },
                    _ => {}
                }
            }
            assert!(seen <= lines.len(), "more spool ids than lines");
        }
    }
}
