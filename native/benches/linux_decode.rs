//! The hot path: parsing Linux audit lines, grouping them into events, interpreting them and writing
//! their `decode --raw` JSON lines; and their documents (ECS, `auditrecv-v1`) with the `_bulk` lines.
//!
//! Input: the shared fixture logs (`$AUDITRECV_SHARED/fixtures/linux`, default `../../shared`, read at
//! run time, never copied into the repository) plus a generated execve event; without the fixtures,
//! the generated events alone. `cargo bench --bench linux_decode`. `AUDITRECV_BENCH_LOG=FILE` benches that log
//! instead (e.g. the one `bench/bench_linux_decode.py --keep FILE` writes, to profile what it measures).

use std::path::PathBuf;

use auditrecv_native::ecs::batch::{IndexNaming, Schema};
use auditrecv_native::ecs::common::{Observer, Source};
use auditrecv_native::ecs::limits::DocLimits;
use auditrecv_native::ecs::linux_batch::{Body, LinuxBuilder, LinuxBuilt, Outcome};
use auditrecv_native::linux::{
    LineDecoder, Settings, decode_raw, decode_raw_chunked, interpret, log_lines, parse_line,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// A typical execve event as auditd writes it: SYSCALL, EXECVE, CWD, two PATHs, PROCTITLE, EOE.
fn execve_event(serial: u64) -> String {
    let stamp = format!("msg=audit({}.123:{serial}):", 1_700_000_000 + serial / 50);
    [
        format!(
            "type=SYSCALL {stamp} arch=c000003e syscall=59 success=yes exit=0 a0=55d7 a1=55d8 a2=55d9 a3=0 items=2 \
             ppid=4242 pid={serial} auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 \
             fsgid=1000 tty=pts0 ses=3 comm=\"ls\" exe=\"/usr/bin/ls\" key=\"exec\""
        ),
        format!("type=EXECVE {stamp} argc=3 a0=\"ls\" a1=\"-la\" a2=\"/tmp\""),
        format!("type=CWD {stamp} cwd=\"/home/user\""),
        format!(
            "type=PATH {stamp} item=0 name=\"/usr/bin/ls\" inode=1234 dev=08:01 mode=0100755 ouid=0 ogid=0 \
             rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0"
        ),
        format!(
            "type=PATH {stamp} item=1 name=\"/lib64/ld-linux-x86-64.so.2\" inode=99 dev=08:01 mode=0100755 \
             ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0"
        ),
        format!("type=PROCTITLE {stamp} proctitle=6C73002D6C61002F746D70"),
        format!("type=EOE {stamp}"),
    ]
    .join("\n")
}

fn log() -> Vec<u8> {
    if let Some(path) = std::env::var_os("AUDITRECV_BENCH_LOG") {
        return std::fs::read(&path).expect("AUDITRECV_BENCH_LOG names a readable log");
    }
    let shared = std::env::var_os("AUDITRECV_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let dir = shared.join("fixtures/linux");
    let mut unit = Vec::new();
    for name in [
        "third_party/audit-userspace-v3.0.9/auparse/test/test.log",
        "third_party/go-libaudit/auparse/testdata/audit-rhel7.log",
        "third_party/go-libaudit/testdata/normal.log",
        "audisp-remote/captures/input-events.log",
    ] {
        if let Ok(bytes) = std::fs::read(dir.join(name)) {
            unit.extend(bytes);
            if unit.last() != Some(&b'\n') {
                unit.push(b'\n');
            }
        }
    }
    for serial in 0..200 {
        unit.extend(execve_event(10_000 + serial).into_bytes());
        unit.push(b'\n');
    }
    unit
}

fn bench(c: &mut Criterion) {
    let data = log();
    let lines: Vec<&[u8]> = log_lines(&data).collect();
    let texts: Vec<String> = lines.iter().map(|l| String::from_utf8_lossy(l).into_owned()).collect();
    let mut g = c.benchmark_group("linux");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("parse_lines", |b| {
        b.iter(|| texts.iter().map(|t| parse_line(t).map_or(0, |r| r.fields.len())).sum::<usize>())
    });
    g.bench_function("parse_group_interpret", |b| {
        b.iter(|| {
            let mut decoder = LineDecoder::new(Settings::default());
            let mut events = Vec::new();
            for line in &lines {
                decoder.push(line, &mut events).expect("decodes");
            }
            decoder.finish(&mut events);
            events.iter().map(|e| interpret(e).values.len()).sum::<usize>()
        })
    });
    g.bench_function("decode_raw", |b| {
        b.iter(|| decode_raw(lines.iter().copied(), "bench", Settings::default()).map_or(0, |j| j.len()))
    });
    // as `auditrecv decode --raw` runs it: 1 MiB pieces handed to the writer, the buffer reused
    g.bench_function("decode_raw_chunked", |b| {
        b.iter(|| {
            let mut bytes = 0;
            decode_raw_chunked(lines.iter().copied(), "bench", Settings::default(), 1 << 20, |chunk| {
                bytes += chunk.len();
                Ok::<_, ()>(chunk)
            })
            .expect("decodes");
            bytes
        })
    });
    // documents as the pipeline builds them (LinuxDocuments.add_bulk / flush_bulk): batches of 1000 lines
    // through one builder on the records' clock, each batch's `_bulk` lines
    let source = Source {
        transport: "audisp-remote".into(),
        peer: "192.0.2.9".into(),
        peer_port: 60,
        listener: "linux".into(),
        ..Source::default()
    };
    let observer =
        Observer { fields: vec![("name", Some("recv".into())), ("hostname", Some("recv.example".into()))], ips: None };
    let naming = IndexNaming::Daily("auditrecv-%Y.%m.%d".into());
    for (name, schema) in [("documents_ecs", Schema::Ecs), ("documents_v1", Schema::V1)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut builder =
                    LinuxBuilder::new(schema, observer.clone(), DocLimits::default(), Settings::default(), true);
                let placed = |built: Vec<LinuxBuilt>| {
                    built.iter().filter(|b| matches!(b.outcome, Outcome::Placed { .. })).count()
                };
                let mut docs = 0;
                for batch in lines.chunks(1000) {
                    let ids: Vec<i64> = (0..batch.len() as i64).collect();
                    let mut body = Body::new(&naming, 1 << 20);
                    docs +=
                        placed(builder.add_bulk(batch, &[1_700_000_000_123_456_789], &ids, &source, None, &mut body));
                }
                let mut body = Body::new(&naming, 1 << 20);
                docs + placed(builder.flush(Some(&mut body)))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
