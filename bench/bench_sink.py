"""BulkIndexer throughput against the raw `_bulk` ceiling of the same engine, in the same run.

    .venv/bin/python bench/bench_sink.py [--url http://127.0.0.1:9200] [--docs 50000] [--deadline 1800]

Without --url (or AUDITRECV_ES_URL) it boots the embedded OpenSearch 2.19 from tests/engine the way the
test fixture does, and stops it afterwards.

Ceiling: the same documents pre-serialized as NDJSON and pre-gzipped (level 1) in batches of the same
size, POSTed by a minimal aiohttp client with the same concurrency. Measured: the BulkIndexer doing
everything itself (orjson, NDJSON, gzip, reply parsing, outcome per document). Both runs create into
fresh indices with explicit `_id`s, 1 shard, 0 replicas; the order alternates over rounds so engine
warm-up does not favour either side. Prints docs/s of each and the ratio (target >= 0.8).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchkit

from auditrecv.config import Search
from auditrecv.sink import BulkBatch, BulkIndexer, Result

BATCH = 1000
CONCURRENCY = 2


def make_docs(n: int) -> list[dict[str, Any]]:
    """ECS-like audit documents of about 1 KB, varied enough that compression is not trivial."""
    docs = []
    for i in range(n):
        docs.append(
            {
                "@timestamp": f"2026-11-22T10:{(i // 60) % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z",
                "event": {
                    "kind": "event",
                    "category": ["process"],
                    "type": ["start"],
                    "action": "execve",
                    "outcome": "success" if i % 7 else "failure",
                    "module": "bsm",
                    "dataset": "bsm.audit",
                    "code": str(23 + i % 40),
                    "sequence": i,
                },
                "host": {"name": f"zone{i % 17}.example.org", "hostname": f"zone{i % 17}", "id": f"{i % 17:08x}"},
                "user": {
                    "id": str(1000 + i % 50),
                    "name": f"user{i % 50}",
                    "effective": {"id": "0", "name": "root"},
                    "audit": {"id": str(1000 + i % 50), "name": f"user{i % 50}"},
                },
                "process": {
                    "pid": 10000 + i,
                    "parent": {"pid": 9000 + i % 300},
                    "executable": f"/usr/bin/tool{i % 97}",
                    "name": f"tool{i % 97}",
                    "args": [f"/usr/bin/tool{i % 97}", "-v", f"--item={i}", f"/export/home/data/{i * 7919 % 10007}"],
                    "working_directory": f"/export/home/user{i % 50}",
                },
                "source": {"ip": f"10.{i % 256}.{(i // 256) % 256}.{i % 13}", "port": 1024 + i % 60000},
                "observer": {
                    "name": "auditrecv-1",
                    "type": "audit-receiver",
                    "vendor": "auditrecv",
                    "version": "0.1.0",
                },
                "auditrecv": {
                    "transport": "audit_remote",
                    "peer": f"192.0.2.{i % 250}",
                    "mech": "krb5",
                    "principal": f"host/zone{i % 17}.example.org@EXAMPLE.ORG",
                    "record_bytes": 600 + i % 400,
                    "tokens": ["header", "subject", "path", "attr", "exec_args", "return", "trailer"],
                },
                "message": f"execve /usr/bin/tool{i % 97} by user{i % 50} on zone{i % 17}: "
                + ("ok" if i % 7 else "EPERM"),
            }
        )
    return docs


def headers() -> dict[str, str]:
    return {"Content-Type": "application/x-ndjson", "Accept": "application/json", "Content-Encoding": "gzip"}


def template_body(prefix: str) -> dict[str, Any]:
    return {
        "index_patterns": [f"{prefix}-*"],
        "priority": 900,
        "template": {"settings": {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "30s"}},
    }


async def http(session: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> Any:
    data = orjson.dumps(body) if body is not None else None
    async with session.request(method, url, data=data, headers={"Content-Type": "application/json"}) as r:
        raw = await r.read()
        return orjson.loads(raw) if raw else None


async def count(session: aiohttp.ClientSession, url: str, index: str) -> int:
    await http(session, "POST", f"{url}/{index}/_refresh")
    res = await http(session, "GET", f"{url}/{index}/_count")
    return int(res["count"])


async def raw_run(url: str, docs: list[dict[str, Any]], index: str) -> float:
    """The ceiling: bodies built and compressed before the clock starts."""
    bodies = []
    for start in range(0, len(docs), BATCH):
        lines = []
        for i in range(start, min(start + BATCH, len(docs))):
            lines.append(orjson.dumps({"create": {"_index": index, "_id": f"d{i}"}}))
            lines.append(orjson.dumps(docs[i]))
        bodies.append(zlib.compress(b"\n".join(lines) + b"\n", 1, 31))
    queue = list(reversed(bodies))
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            while queue:
                body = queue.pop()
                async with session.post(f"{url}/_bulk", data=body, headers=headers()) as r:
                    reply = orjson.loads(await r.read())
                    assert r.status == 200 and not reply["errors"], reply if r.status != 200 else "item errors"

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - t0
        assert await count(session, url, index) == len(docs)
    return len(docs) / elapsed


async def sink_run(url: str, docs: list[dict[str, Any]], index: str) -> float:
    settings = Search(urls=[url], batch_max_docs=BATCH, concurrency=CONCURRENCY, batch_max_bytes=50 * 1024 * 1024)
    async with BulkIndexer(settings) as idx:
        t0 = time.perf_counter()
        outcomes = await idx.index(BulkBatch.of((index, f"d{i}", d, i) for i, d in enumerate(docs)))
        elapsed = time.perf_counter() - t0
    assert all(r is Result.CREATED for r in outcomes.results()), set(outcomes.results())
    async with aiohttp.ClientSession() as session:
        assert await count(session, url, index) == len(docs)
    return len(docs) / elapsed


async def bench(url: str, n: int, rounds: int, dl: benchkit.Deadline) -> None:
    docs = make_docs(n)
    avg = sum(len(orjson.dumps(d)) for d in docs[:1000]) / 1000
    async with aiohttp.ClientSession() as session:
        root = await http(session, "GET", f"{url}/")
        await http(session, "PUT", f"{url}/_index_template/benchsink", template_body("benchsink"))
        await http(session, "DELETE", f"{url}/benchsink-*")
    version = root.get("version", {})
    print(f"engine: {version.get('distribution', 'elasticsearch')} {version.get('number')} at {url}")
    print(f"{n} docs, average {avg:.0f} B JSON, batches of {BATCH}, {CONCURRENCY} requests in flight, gzip 1")
    dl.phase("warm-up load")
    await raw_run(url, docs[: min(n, 10000)], "benchsink-warmup")  # JIT and caches, not measured
    raw_rates, sink_rates = [], []
    for r in range(rounds):
        order = ["raw", "sink"] if r % 2 == 0 else ["sink", "raw"]
        for which in order:
            index = f"benchsink-{which}-{r}"
            dl.phase(f"round {r}: {'raw _bulk ceiling' if which == 'raw' else 'BulkIndexer'}")
            if which == "raw":
                raw_rates.append(await raw_run(url, docs, index))
                dl.measured(f"  round {r}: raw _bulk ceiling {raw_rates[-1]:8.0f} docs/s")
            else:
                sink_rates.append(await sink_run(url, docs, index))
                dl.measured(f"  round {r}: BulkIndexer       {sink_rates[-1]:8.0f} docs/s")
            async with aiohttp.ClientSession() as session:
                await http(session, "DELETE", f"{url}/{index}")
    async with aiohttp.ClientSession() as session:
        await http(session, "DELETE", f"{url}/benchsink-*")
        await http(session, "DELETE", f"{url}/_index_template/benchsink")
    raw_best, sink_best = max(raw_rates), max(sink_rates)
    dl.measured(
        f"best: raw {raw_best:.0f} docs/s, BulkIndexer {sink_best:.0f} docs/s, "
        f"ratio {sink_best / raw_best:.2f}x (target >= 0.8x)"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", default=os.environ.get("AUDITRECV_ES_URL", ""), help="engine URL (default: embedded)")
    ap.add_argument("--docs", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=2)
    benchkit.add_deadline_argument(ap, 1800)
    args = ap.parse_args()
    return benchkit.run("bench_sink", args.deadline, lambda dl: body(args, dl))


def body(args: argparse.Namespace, dl: benchkit.Deadline) -> None:
    if args.url:
        asyncio.run(bench(args.url.rstrip("/"), args.docs, args.rounds, dl))
        return
    from tests.infra.engine import OPENSEARCH, launch_embedded, stop_process_group

    with tempfile.TemporaryDirectory(prefix="bench-sink-") as home:
        t0 = time.perf_counter()
        dl.phase("starting the embedded OpenSearch")
        launched = launch_embedded(OPENSEARCH, Path(home))
        dl.kill_on_hard_exit(launched.process.pid)  # launched in its own process group
        try:
            engine = launched.wait_ready()
            print(f"embedded OpenSearch up in {time.perf_counter() - t0:.1f} s", flush=True)
            asyncio.run(bench(engine.url, args.docs, args.rounds, dl))
        finally:
            stop_process_group(launched.process)
            dl.forget_process_group(launched.process.pid)


if __name__ == "__main__":
    raise SystemExit(main())
