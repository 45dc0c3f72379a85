//! The hot path: decoding BSM records and writing their JSON lines.
//!
//! Input: the shared fixture trails (`$AUDITRECV_SHARED/fixtures/bsm`, default `../../shared`, read at
//! run time, never copied into the repository) plus hand-built illumos records; without the fixtures,
//! the illumos records alone. `cargo bench --bench bsm_decode`.

use std::path::PathBuf;

use auditrecv_native::bsm::json::record_json;
use auditrecv_native::bsm::{Item, Limits, Walk, decode_record};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn str16(s: &[u8]) -> Vec<u8> {
    let mut v = ((s.len() + 1) as u16).to_be_bytes().to_vec();
    v.extend_from_slice(s);
    v.push(0);
    v
}

/// A typical illumos execve record: header64_ex, exec_args, path, attr64, subject64, return32, zone.
fn illumos_exec(i: u64) -> Vec<u8> {
    let mut v = vec![0x79, 0, 0, 0, 0, 2, 0, 23, 0, 0, 0, 0, 0, 4, 192, 168, 1, 10];
    v.extend_from_slice(&(1_700_000_000 + i).to_be_bytes());
    v.extend_from_slice(&123_456_789u64.to_be_bytes());
    v.push(0x3C);
    v.extend_from_slice(&3u32.to_be_bytes());
    v.extend_from_slice(b"/usr/bin/ls\0-la\0/export/home/user\0");
    v.push(0x23);
    v.extend(str16(b"/usr/bin/ls"));
    v.push(0x73);
    for x in [0o100555u32, 0, 2, 0x0001_0007] {
        v.extend_from_slice(&x.to_be_bytes());
    }
    v.extend_from_slice(&(40123 + i).to_be_bytes());
    v.extend_from_slice(&0xB4_0001_0007u64.to_be_bytes());
    v.push(0x75);
    for x in [1001u32, 1001, 10, 1001, 10, 4242, 4242] {
        v.extend_from_slice(&x.to_be_bytes());
    }
    v.extend_from_slice(&0x0BF1_1600u64.to_be_bytes());
    v.extend_from_slice(&[10, 0, 2, 15]);
    v.extend_from_slice(&[0x27, 0, 0, 0, 0, 0]);
    v.push(0x60);
    v.extend(str16(b"global"));
    let len = (v.len() as u32).to_be_bytes();
    v[1..5].copy_from_slice(&len);
    v
}

fn trail() -> Vec<u8> {
    let shared = std::env::var_os("AUDITRECV_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let dir = shared.join("fixtures/bsm");
    let mut unit = Vec::new();
    for name in ["plaso/apple.bsm", "plaso/openbsm.bsm", "openbsm/samples/execve-long-args.trail"] {
        if let Ok(bytes) = std::fs::read(dir.join(name)) {
            unit.extend(bytes);
        }
    }
    for i in 0..20 {
        unit.extend(illumos_exec(i));
    }
    unit
}

fn bench(c: &mut Criterion) {
    let data = trail();
    let records: Vec<&[u8]> = Walk::new(&data, 0, Limits::default(), false)
        .filter_map(|item| match item {
            Item::Record(r) => Some(r.raw),
            _ => None,
        })
        .collect();
    let mut g = c.benchmark_group("bsm");
    g.throughput(Throughput::Elements(records.len() as u64));
    g.bench_function("decode_records", |b| {
        b.iter(|| records.iter().map(|r| decode_record(r, 0, true, Limits::default()).tokens.len()).sum::<usize>())
    });
    g.bench_function("decode_and_json", |b| {
        b.iter(|| {
            records
                .iter()
                .map(|r| record_json(&decode_record(r, 0, true, Limits::default()), Some(0)).map_or(0, |j| j.len()))
                .sum::<usize>()
        })
    });
    g.bench_function("split_trail", |b| b.iter(|| Walk::new(&data, 0, Limits::default(), true).count()));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
