//! Document ids one at a time (`document_id`) against a batch hashed in parallel lanes (`IdBatch`),
//! over ~600 inputs of 200-900 bytes in a few parts, as a Linux batch's events are.
//! `cargo bench --bench ids`.

use std::hint::black_box;

use auditrecv_native::ecs::ids::{IdBatch, document_id};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// 600 events: each a head (`node|msg key`) and one to five lines, 200-900 bytes in all.
fn events() -> (Vec<u8>, Vec<Vec<(usize, usize)>>) {
    let bytes: Vec<u8> = (0..4096u32).map(|i| b'a' + (i * 7 + i / 13) as u8 % 26).collect();
    let mut events = Vec::new();
    let mut seed = 12345u32;
    let mut next = || {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        (seed >> 8) as usize
    };
    for _ in 0..600 {
        let total = 200 + next() % 700;
        let lines = 1 + next() % 5;
        let mut parts = vec![(0, 30)];
        for l in 0..lines {
            let at = next() % 2000;
            parts.push((at, at + total / lines + l));
        }
        events.push(parts);
    }
    (bytes, events)
}

fn bench(c: &mut Criterion) {
    let (bytes, events) = events();
    let parts: Vec<Vec<&[u8]>> = events.iter().map(|e| e.iter().map(|&(a, b)| &bytes[a..b]).collect()).collect();
    let total: usize = parts.iter().flatten().map(|p| p.len()).sum();
    let mut g = c.benchmark_group("ids");
    g.throughput(Throughput::Bytes(total as u64));
    g.bench_function("document_id each", |b| {
        b.iter(|| {
            let ids: Vec<String> = parts.iter().map(|p| document_id("linux", black_box("peer:192.0.2.8"), p)).collect();
            ids
        })
    });
    let mut batch = IdBatch::default();
    g.bench_function("IdBatch all", |b| {
        b.iter(|| {
            for p in &parts {
                batch.push("linux", black_box("peer:192.0.2.8"), p);
            }
            batch.ids()
        })
    });
    for chunk in [4, 16, 64, 1024] {
        g.bench_function(format!("IdBatch by {chunk}"), |b| {
            b.iter(|| {
                let mut ids = Vec::with_capacity(parts.len());
                for c in parts.chunks(chunk) {
                    for p in c {
                        batch.push("linux", black_box("peer:192.0.2.8"), p);
                    }
                    ids.extend(batch.ids());
                }
                ids
            })
        });
    }
    g.finish();
    let each: Vec<String> = parts.iter().map(|p| document_id("linux", "peer:192.0.2.8", p)).collect();
    for p in &parts {
        batch.push("linux", "peer:192.0.2.8", p);
    }
    assert_eq!(batch.ids(), each);
}

criterion_group!(benches, bench);
criterion_main!(benches);
