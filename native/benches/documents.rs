//! Document building, the hot path of issue 12 point 3: decode + map + id + serialize, and the whole
//! `_bulk` body of a batch, for the records of the apple.bsm fixture trail (`$AUDITRECV_SHARED/fixtures`,
//! default `../../shared`, read at run time) plus hand-built illumos exec records; without the fixtures,
//! the illumos records alone. `cargo bench --bench documents`.

use std::path::PathBuf;

use auditrecv_native::bsm::{Item, Limits, Walk};
use auditrecv_native::ecs::batch::{Batch, Built, IndexNaming, Schema, build_bsm, bulk_body};
use auditrecv_native::ecs::common::{Observer, Source};
use auditrecv_native::ecs::enrich::Enrichment;
use auditrecv_native::ecs::limits::DocLimits;
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

fn records() -> (Vec<u8>, Vec<Vec<u8>>) {
    let shared = std::env::var_os("AUDITRECV_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let apple = std::fs::read(shared.join("fixtures/bsm/plaso/apple.bsm")).unwrap_or_default();
    let illumos = (0..20).map(illumos_exec).collect();
    (apple, illumos)
}

fn batch(schema: Schema, enrichment: Option<Enrichment>) -> Batch {
    let source = Source {
        transport: "audit_remote".into(),
        peer: "192.0.2.7".into(),
        peer_port: 40001,
        listener: "bsm".into(),
        ..Source::default()
    };
    let observer =
        Observer { fields: vec![("name", Some("recv".into())), ("hostname", Some("recv.example".into()))], ips: None };
    Batch::new(schema, source, observer, DocLimits::default(), enrichment)
}

fn bench(c: &mut Criterion) {
    let (apple, illumos) = records();
    let mut payloads: Vec<&[u8]> = Walk::new(&apple, 0, Limits::default(), false)
        .filter_map(|item| match item {
            Item::Record(r) => Some(r.raw),
            _ => None,
        })
        .collect();
    payloads.extend(illumos.iter().map(Vec::as_slice));
    let naming = IndexNaming::Daily("auditrecv-%Y.%m.%d".into());
    let enrichment = Enrichment {
        hostname: Some("sender.example".into()),
        labels: vec![("datacenter".into(), "ams1".into())],
        ..Enrichment::default()
    };
    let mut g = c.benchmark_group("documents");
    g.throughput(Throughput::Elements(payloads.len() as u64));
    for (name, schema, enrich) in
        [("ecs", Schema::Ecs, None), ("v1", Schema::V1, None), ("ecs_enriched", Schema::Ecs, Some(enrichment))]
    {
        let b = batch(schema, enrich);
        g.bench_function(format!("{name}_documents"), |bench| {
            bench.iter(|| {
                payloads
                    .iter()
                    .map(|p| match build_bsm(p, 1_700_000_000_123_456_789, &b) {
                        Built::Doc { json, .. } => json.len(),
                        Built::Fallback { .. } => 0,
                    })
                    .sum::<usize>()
            })
        });
        g.bench_function(format!("{name}_bulk_body"), |bench| {
            bench.iter(|| bulk_body(&payloads, &[1_700_000_000_123_456_789], &b, &naming).0.len())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
