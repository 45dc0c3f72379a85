//! gzip of a `_bulk` body (src/gzip.rs): a 5 MB body of NDJSON audit documents, level 1 (what the
//! sink uses). `cargo bench --bench gzip`; the ratio against zlib is bench/bench_gzip.py's.

use auditrecv_native::gzip::gzip;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// A body shaped like the sink's: action lines and ECS documents that differ in ids, times and values.
fn body() -> Vec<u8> {
    let mut out = Vec::new();
    let mut i: u64 = 0;
    while out.len() < 5_000_000 {
        i += 1;
        out.extend_from_slice(
            format!(
                "{{\"create\":{{\"_index\":\"auditrecv-2026.12.03\",\"_id\":\"k{:016x}\"}}}}\n\
                 {{\"@timestamp\":\"2026-12-03T06:{:02}:{:02}.{:09}Z\",\"event\":{{\"action\":\"executed\",\
                 \"category\":[\"process\"],\"outcome\":\"success\"}},\"process\":{{\"pid\":{},\
                 \"executable\":\"/usr/bin/prog{}\",\"args\":[\"prog{}\",\"-x\",\"{}\"]}},\
                 \"user\":{{\"id\":\"{}\"}},\"host\":{{\"name\":\"cn{}.example.com\"}}}}\n",
                i.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                i % 60,
                (i / 60) % 60,
                i * 7919 % 1_000_000_000,
                1000 + i % 30000,
                i % 97,
                i % 97,
                i * 31,
                1000 + i % 50,
                i % 40
            )
            .as_bytes(),
        );
    }
    out
}

fn bench(c: &mut Criterion) {
    let body = body();
    let mut group = c.benchmark_group("gzip");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.sample_size(20);
    group.bench_function("level 1, 5 MB bulk body", |b| b.iter(|| gzip(&body, 1)));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
