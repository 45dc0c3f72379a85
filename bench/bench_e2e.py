"""End to end from the spool into a real engine, against the raw `_bulk` ceiling of that engine, same run.

    .venv/bin/python bench/bench_e2e.py [--records 50000] [--spool-writers 100] [--deadline 2400]

Engine: `AUDITRECV_ES_URL` if set, else an embedded OpenSearch 2.19 started the way the tests do
(tests/infra/engine.py; `AUDITRECV_ENGINE_JVM_OPTS` passes JVM options, e.g. to re-enable C2).

Cases, each on the same engine and the same documents:
  raw _bulk    the ceiling: the ECS documents auditrecv would send, built and serialized to NDJSON
               (and gzip-1 compressed, as the sink sends them) BEFORE the clock starts, posted by a
               minimal aiohttp client with the sink's batch size and concurrency.
  pipeline     `Pipeline.drain()`: spool read -> BSM decode -> ECS map -> serialize -> gzip -> `_bulk`
               -> spool delete, with the real `BulkIndexer`.
The ratio pipeline/raw says how much of the engine's capacity auditrecv's own work leaves unused
(aim: >= 0.9, issue 12). Both write to fresh indices covered by the same template (raw indices
`<index>-rawN-*`), after a warm-up load; the ceiling is measured before and after the pipeline and averaged.
Records: the BSM fixture records with their header time shifted so every one is distinct (distinct ids).
Also: spool commit throughput and p99 latency under many concurrent writers, via bench/bench_spool.py.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import struct
import sys
import tempfile
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

import aiohttp
import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import benchkit  # noqa: E402

from auditrecv.config import Config, parse_config  # noqa: E402
from auditrecv.pipeline import DocumentBuilder, Pipeline  # noqa: E402
from auditrecv.schema.observer import observer_info  # noqa: E402
from auditrecv.sink import open_indexer  # noqa: E402
from auditrecv.spool import Source, Spool, SpoolRecord  # noqa: E402
from auditrecv.testclient.illumos import split_trail  # noqa: E402
from tests.infra.engine import (  # noqa: E402
    OPENSEARCH,
    SearchEngine,
    connect_external,
    launch_embedded,
    stop_process_group,
)
from tests.paths import BSM_FIXTURES  # noqa: E402

TRAILS = [BSM_FIXTURES / "plaso" / "openbsm.bsm", BSM_FIXTURES / "plaso" / "apple.bsm"]
SOURCE = Source(
    transport="audit_remote",
    peer="192.0.2.7",
    peer_port=40000,
    mech="krb5",
    authenticated=True,
    principal="host/bench.example@AUDIT.TEST",
    listener="audit_remote",
)


def distinct_records(n: int) -> list[bytes]:
    """`n` distinct BSM records: fixture records (all header32) with the seconds field moved forward."""
    base: list[bytes] = []
    for trail in TRAILS:
        base.extend(split_trail(trail.read_bytes()))
    out = []
    for i in range(n):
        rec = bytearray(base[i % len(base)])
        (seconds,) = struct.unpack_from(">I", rec, 10)
        struct.pack_into(">I", rec, 10, seconds + i // len(base))
        out.append(bytes(rec))
    return out


class CpuMeter:
    """CPU seconds used by the engine's JVM (embedded only) and by this process during one case.

    On a small machine both compete for the same cores: the raw case leaves the engine every core,
    the pipeline needs this process's CPU as well, so CPU per document explains the ratio.
    """

    def __init__(self, engine: SearchEngine) -> None:
        self.pid = engine.process.pid if engine.process is not None else None
        self.tick = os.sysconf("SC_CLK_TCK")

    def _engine(self) -> float:
        if self.pid is None:
            return float("nan")
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.tick  # utime + stime, all threads

    def snapshot(self) -> tuple[float, float]:
        return self._engine(), time.process_time()

    def per_doc(self, before: tuple[float, float], n: int) -> str:
        engine, own = self._engine() - before[0], time.process_time() - before[1]
        return f"CPU per doc: engine {engine / n * 1e3:.3f} ms, auditrecv {own / n * 1e3:.3f} ms"


def make_config(url: str, index: str, batch: int, concurrency: int, gzip: bool) -> Config:
    toml = f"""
[search]
urls = ["{url}"]
index = "{index}-%Y.%m.%d"
number_of_replicas = 0
batch_max_docs = {batch}
concurrency = {concurrency}
gzip = {"true" if gzip else "false"}
"""
    return parse_config(toml)


async def fill_spool(path: Path, cfg: Config, records: list[bytes]) -> float:
    """Spool every record (chunks of 1000, as `auditrecv import` does); returns seconds."""
    now = time.time_ns()
    async with await Spool.open(path, cfg.spool) as spool:
        start = time.perf_counter()
        for i in range(0, len(records), 1000):
            await spool.append([SpoolRecord("bsm", r, SOURCE, now) for r in records[i : i + 1000]])
        return time.perf_counter() - start


def raw_bodies(cfg: Config, records: list[bytes], index: str, raw_index: str, gzip: bool) -> list[bytes]:
    """The same documents the pipeline builds, as ready-to-post `_bulk` bodies (the ceiling's input)."""
    builder = DocumentBuilder(cfg, observer_info(cfg))
    items = [(i + 1, SpoolRecord("bsm", r, SOURCE, time.time_ns())) for i, r in enumerate(records)]
    docs = builder.finish(builder.add(items)) + builder.flush()
    bodies = []
    batch = cfg.search.batch_max_docs
    for start in range(0, len(docs), batch):
        lines = []
        for d in docs[start : start + batch]:
            if d.source is None:  # a record that makes no document (Linux EOE); none among BSM records
                continue
            target = d.index.replace(index, raw_index, 1)
            lines.append(orjson.dumps({"create": {"_index": target, "_id": d.doc_id}}))
            lines.append(d.source)
        body = b"\n".join(lines) + b"\n"
        bodies.append(_gzip1(body) if gzip else body)
    return bodies


def _gzip1(data: bytes) -> bytes:
    z = zlib.compressobj(1, zlib.DEFLATED, 31)
    return z.compress(data) + z.flush()


async def post_raw(url: str, bodies: list[bytes], concurrency: int, gzip: bool) -> tuple[float, int]:
    """Post the bodies with `concurrency` requests in flight; returns (seconds, item errors)."""
    headers = {"Content-Type": "application/x-ndjson", "Accept": "application/json"}
    if gzip:
        headers["Content-Encoding"] = "gzip"
    queue = list(reversed(bodies))
    errors = 0
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            nonlocal errors
            while queue:
                body = queue.pop()
                async with session.post(url + "/_bulk", data=body, headers=headers) as resp:
                    reply = orjson.loads(await resp.read())
                    if resp.status != 200:
                        raise RuntimeError(f"_bulk: HTTP {resp.status}: {str(reply)[:300]}")
                    if reply.get("errors"):
                        errors += sum(1 for it in reply["items"] if it["create"]["status"] >= 300)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start, errors


async def run_pipeline(cfg: Config, spool_path: Path) -> tuple[float, dict[str, Any], dict[str, Any]]:
    async with await Spool.open(spool_path, cfg.spool) as spool:
        indexer = await open_indexer(cfg.search)
        try:
            await indexer.wait_ready()  # engine detection + templates: not part of the measurement
            pipeline = Pipeline(cfg, spool, indexer, observer_info(cfg))
            start = time.perf_counter()
            await pipeline.drain()
            seconds = time.perf_counter() - start
            left = spool.count()
        finally:
            await indexer.close()
    return seconds, {**pipeline.stats, "left_in_spool": left}, indexer.metrics.to_dict()


def spool_commit_bench(writers: int, records: int, dl: benchkit.Deadline) -> None:
    """Spool commit throughput and p99 under concurrent writers: bench_spool.py's own runs, reused."""
    try:
        from bench_spool import baseline, spool_run
    except ImportError as exc:
        print(f"spool commit: bench/bench_spool.py not usable ({exc}); run it directly")
        return
    dl.phase("spool commit bench")
    with tempfile.TemporaryDirectory() as tmp:
        base = baseline(Path(tmp), records, 100)
        run = asyncio.run(spool_run(Path(tmp), writers, records, 0.002, "full"))
    dl.measured(
        f"spool commit, {writers} concurrent writers: {run.rate:,.0f} rec/s "
        f"({run.rate / base.rate:.2f}x raw write of 100 + one fsync), p50 {run.p50 * 1e3:.2f} ms, "
        f"p99 {run.p99 * 1e3:.2f} ms (raw 100/fsync p99 {base.p99 * 1e3:.2f} ms), "
        f"{run.per_commit:.0f} records/commit"
    )


async def bench(
    engine: SearchEngine, n: int, batch: int, concurrency: int, gzip: bool, workdir: Path, dl: benchkit.Deadline
) -> None:
    tag = uuid.uuid4().hex[:8]
    index = f"bench-e2e-{tag}"
    cfg = make_config(engine.url, index, batch, concurrency, gzip)
    records = distinct_records(n)
    print(
        f"engine: {engine.flavor} {engine.version} at {engine.url}; {n} distinct BSM records, "
        f"batch {batch}, concurrency {concurrency}, gzip {'on' if gzip else 'off'}"
    )
    try:
        # Warm-up: templates installed, JIT and the bulk path hot, before anything is timed.
        dl.phase("warm-up load")
        warm = make_config(engine.url, f"{index}-warm", batch, concurrency, gzip)
        warm_spool = workdir / "warm.db"
        await fill_spool(warm_spool, warm, records[: min(n, 5000)])
        await run_pipeline(warm, warm_spool)
        cfg_ready = await open_indexer(cfg.search)  # install this run's template before the raw case
        await cfg_ready.wait_ready()
        await cfg_ready.close()

        spool_path = workdir / "spool.db"
        dl.phase("filling the spool")
        fill_s = await fill_spool(spool_path, cfg, records)
        dl.measured(f"spool fill: {n / fill_s:,.0f} rec/s (appends of 1000)")

        dl.phase("document building alone")
        t = time.perf_counter()
        # as the pipeline builds them: natively, per sender and batch, straight into bulk lines
        builder = DocumentBuilder(cfg, observer_info(cfg))
        batch = cfg.search.batch_max_docs
        for start in range(0, n, batch):
            chunk = [(i + 1, SpoolRecord("bsm", records[i], SOURCE, 0)) for i in range(start, min(n, start + batch))]
            for pending in {id(d.native): d.native for d in builder.add(chunk) if d.native is not None}.values():
                builder.serialize(pending, None)
        build_s = time.perf_counter() - t
        dl.measured(f"document building alone (decode + ECS map + bulk lines, one core): {n / build_s:,.0f} docs/s")
        del builder

        # The ceiling is measured before AND after the pipeline (fresh indices each time) and averaged,
        # so index growth and load drift on a shared machine do not favour either side.
        raw_rates = []
        meter = CpuMeter(engine)
        for run in (1, 2):
            raw_index = f"{index}-raw{run}"
            dl.phase(f"raw _bulk ceiling #{run}")
            t = time.perf_counter()
            bodies = raw_bodies(cfg, records, index, raw_index, gzip)
            prep_s = time.perf_counter() - t
            cpu = meter.snapshot()
            raw_s, raw_errors = await post_raw(engine.url, bodies, concurrency, gzip)
            del bodies
            raw_rates.append(n / raw_s)
            dl.measured(
                f"raw _bulk ceiling #{run}: {n / raw_s:,.0f} docs/s ({raw_s:.1f} s; building the bodies "
                f"beforehand took {prep_s:.1f} s, not counted; item errors {raw_errors}; "
                f"{meter.per_doc(cpu, n)})"
            )
            if run == 2:
                break
            cpu = meter.snapshot()
            dl.phase("pipeline drain")
            pipe_s, stats, sink = await run_pipeline(cfg, spool_path)
            pipe_rate = n / pipe_s
            dl.measured(
                f"pipeline drain:    {pipe_rate:,.0f} docs/s ({pipe_s:.1f} s; created {sink['docs_created']}, "
                f"duplicates {sink['docs_duplicate']}, dead letters {sink['docs_dead_lettered']}, "
                f"left in spool {stats['left_in_spool']}; {meter.per_doc(cpu, n)})"
            )
        raw_rate = sum(raw_rates) / len(raw_rates)
        dl.measured(f"ratio pipeline / raw: {pipe_rate / raw_rate:.2f}x (aim >= 0.9)")
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (other work skews both cases)")
        dl.measured(
            f"ratio pipeline / document building alone: {pipe_rate * build_s / n:.2f}x "
            "(near 1: the pipeline is as fast as decode + ECS mapping on one core allows)"
        )
        got_pipe = engine.count(f"{index}-2*")
        got_raw = engine.count(f"{index}-raw1-*")
        if got_pipe != n or got_raw != n:
            print(f"!!! counts differ from {n}: pipeline indices {got_pipe}, raw indices {got_raw}")
    finally:
        engine.delete_indices(f"{index}-*")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=1000, help="docs per _bulk request (both cases)")
    parser.add_argument("--concurrency", type=int, default=2, help="requests in flight (both cases)")
    parser.add_argument("--no-gzip", action="store_true", help="send uncompressed bodies (both cases)")
    parser.add_argument("--spool-writers", type=int, default=100)
    parser.add_argument("--spool-records", type=int, default=5000)
    benchkit.add_deadline_argument(parser, 2400)
    args = parser.parse_args()
    sys.exit(benchkit.run("bench_e2e", args.deadline, lambda dl: body(args, dl)))


def body(args: argparse.Namespace, dl: benchkit.Deadline) -> None:
    spool_commit_bench(args.spool_writers, args.spool_records, dl)
    workdir = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    launched = None
    try:
        url = os.environ.get("AUDITRECV_ES_URL", "").strip()
        if url:
            engine = connect_external(url)
        else:
            dl.phase("starting the embedded OpenSearch")
            launched = launch_embedded(OPENSEARCH, workdir / "engine")
            dl.kill_on_hard_exit(launched.process.pid)  # launched in its own process group
            engine = launched.wait_ready()
            print(f"embedded engine healthy after {engine.startup_seconds:.1f} s", flush=True)
        asyncio.run(bench(engine, args.records, args.batch, args.concurrency, not args.no_gzip, workdir, dl))
    finally:
        if launched is not None:
            stop_process_group(launched.process)
            dl.forget_process_group(launched.process.pid)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
