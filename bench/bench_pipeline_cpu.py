"""auditrecv's own CPU per document between the spool and the engine, against a fake engine (issue 12).

    .venv/bin/python bench/bench_pipeline_cpu.py [--kind bsm|linux] [--records 20000] [--rounds 5] [--deadline 900]

The engine needs ~0.17 ms of CPU per document and takes it from the same two cores, so every
microsecond auditrecv spends per document is one the engine does not get (bench_e2e's ratio). To see
auditrecv's part without the engine's noise, this drains a spool of distinct BSM records through the real
`Pipeline.drain()` and `BulkIndexer` into a minimal `_bulk` server in a child process (its CPU is not
counted) that answers `errors: false` with one realistic `create` 201 item per document. `--kind linux`:
Linux audit lines instead (the fixture logs of bench_linux_decode.py repeated with fresh serials, at least
`--records` lines, one sender, arrival clock as the receiver spools them); CPU is per document (event).

Baseline, same run, same server: the same documents built and serialized beforehand (not timed) and
posted as gzipped `_bulk` bodies by a minimal aiohttp client that parses each reply. Prints the process
CPU (`time.process_time()`, every thread) per document of each, best of `--rounds`, and the ratio
baseline / pipeline (1.0 would mean the pipeline costs no more than posting ready-made bodies).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import benchkit  # noqa: E402
from bench_e2e import _gzip1, distinct_records, fill_spool, make_config, post_raw, raw_bodies  # noqa: E402

from auditrecv.config import Config  # noqa: E402
from auditrecv.pipeline import DocumentBuilder, Pipeline  # noqa: E402
from auditrecv.schema.observer import observer_info  # noqa: E402
from auditrecv.sink import BulkIndexer  # noqa: E402
from auditrecv.spool import Source, Spool, SpoolRecord  # noqa: E402

LINUX_SOURCE = Source(transport="audisp-remote", peer="192.0.2.8", peer_port=40002, listener="linux")


def serve(port: int) -> None:
    """The fake engine: every `create` is answered 201, with the fields a real engine puts in an item."""
    from aiohttp import web

    seq = 0

    async def bulk(request: web.Request) -> web.Response:
        nonlocal seq
        body = await request.read()  # aiohttp undoes the gzip Content-Encoding itself
        items = []
        for line in body.split(b"\n")[::2]:
            if not line:
                continue
            ((op, meta),) = orjson.loads(line).items()
            seq += 1
            items.append(
                {
                    op: {
                        "_index": meta["_index"],
                        "_id": meta["_id"],
                        "_version": 1,
                        "result": "created",
                        "_shards": {"total": 1, "successful": 1, "failed": 0},
                        "_seq_no": seq,
                        "_primary_term": 1,
                        "status": 201,
                    }
                }
            )
        reply = orjson.dumps({"took": 3, "errors": False, "items": items})
        return web.Response(body=reply, content_type="application/json")

    app = web.Application(client_max_size=1 << 30)
    app.router.add_post("/_bulk", bulk)
    web.run_app(app, host="127.0.0.1", port=port, print=None, handle_signals=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_listening(port: int) -> None:
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)  # polling for the child's socket, not synchronising with our own work
            continue
        writer.close()
        return
    raise RuntimeError("fake _bulk server did not start")


def linux_lines(min_lines: int) -> list[bytes]:
    from bench_linux_decode import build_log

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.log"
        build_log(path, min_lines)
        return [line for line in path.read_bytes().split(b"\n") if line]


async def fill_linux_spool(path: Path, cfg: Config, lines: list[bytes]) -> None:
    """Spool every line as the receiver does (one sender, chunks of 1000)."""
    now = time.time_ns()
    async with await Spool.open(path, cfg.spool) as spool:
        for i in range(0, len(lines), 1000):
            await spool.append([SpoolRecord("linux", line, LINUX_SOURCE, now) for line in lines[i : i + 1000]])


def linux_raw_bodies(cfg: Config, lines: list[bytes], index: str, raw_index: str) -> tuple[list[bytes], int]:
    """The documents the pipeline builds of `lines`, as ready-to-post gzipped `_bulk` bodies, and their count."""
    builder = DocumentBuilder(cfg, observer_info(cfg))
    now = time.time_ns()
    docs = builder.add([(i + 1, SpoolRecord("linux", line, LINUX_SOURCE, now)) for i, line in enumerate(lines)])
    docs = [d for d in docs + builder.flush() if d.source is not None]  # orphan EOEs make none
    bodies = []
    for start in range(0, len(docs), cfg.search.batch_max_docs):
        out = []
        for d in docs[start : start + cfg.search.batch_max_docs]:
            target = d.index.replace(index, raw_index, 1)
            out += [orjson.dumps({"create": {"_index": target, "_id": d.doc_id}}), d.source or b""]
        bodies.append(_gzip1(b"\n".join(out) + b"\n"))
    return bodies, len(docs)


async def pipeline_cpu(url: str, records: list[bytes], workdir: Path, run: int, kind: str, documents: int) -> float:
    """CPU seconds of one `Pipeline.drain()` of `records` (spool filled beforehand, not counted)."""
    cfg = make_config(url, "bench-cpu", 1000, 2, True)
    path = workdir / f"spool{run}.db"
    if kind == "linux":
        await fill_linux_spool(path, cfg, records)
    else:
        await fill_spool(path, cfg, records)
    async with await Spool.open(path, cfg.spool) as spool, BulkIndexer(cfg.search) as indexer:
        pipeline = Pipeline(cfg, spool, indexer, observer_info(cfg))
        start = time.process_time()
        await pipeline.drain()
        cpu = time.process_time() - start
        if spool.count() or indexer.metrics.docs_created != documents:
            raise RuntimeError(f"drain incomplete: {spool.count()} left, {indexer.metrics.docs_created} created")
    path.unlink()
    return cpu


async def raw_cpu(url: str, bodies: list[bytes]) -> float:
    start = time.process_time()
    _, errors = await post_raw(url, bodies, 2, True)
    if errors:
        raise RuntimeError(f"{errors} item errors from the fake server")
    return time.process_time() - start


async def body(args: argparse.Namespace, dl: benchkit.Deadline) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], start_new_session=True)
    dl.kill_on_hard_exit(server.pid)
    try:
        dl.phase("starting the fake _bulk server")
        await wait_listening(port)
        cfg = make_config(url, "bench-cpu", 1000, 2, True)
        if args.kind == "linux":
            records = linux_lines(args.records)
            bodies, n = linux_raw_bodies(cfg, records, "bench-cpu", "bench-cpu-raw")
            warm_up, warm_docs = records[:2000], None
            dl.measured(f"input: {len(records)} Linux lines, {n} documents")
        else:
            records = distinct_records(args.records)
            bodies, n = raw_bodies(cfg, records, "bench-cpu", "bench-cpu-raw", True), len(records)
            warm_up, warm_docs = records[:2000], 2000
        pipe, raw = [], []
        with tempfile.TemporaryDirectory() as tmp:
            if warm_docs is None:  # the documents of the first lines, as the pipeline makes them
                warm_docs = linux_raw_bodies(cfg, warm_up, "bench-cpu", "bench-cpu-raw")[1]
            await pipeline_cpu(url, warm_up, Path(tmp), -1, args.kind, warm_docs)  # warm-up
            for run in range(args.rounds):  # interleaved, so load drift does not favour either side
                dl.phase(f"round {run + 1}")
                raw.append(await raw_cpu(url, bodies))
                pipe.append(await pipeline_cpu(url, records, Path(tmp), run, args.kind, n))
                dl.measured(
                    f"round {run + 1}: pipeline {pipe[-1] / n * 1e3:.4f} ms CPU/doc, "
                    f"raw _bulk {raw[-1] / n * 1e3:.4f} ms CPU/doc"
                )
        p, r = min(pipe) / n * 1e3, min(raw) / n * 1e3
        dl.measured(
            f"best of {args.rounds}, {n} docs: pipeline {p:.4f} ms CPU/doc, raw _bulk {r:.4f} ms CPU/doc; "
            f"ratio raw / pipeline {r / p:.2f}x (auditrecv's own work: {p - r:.4f} ms/doc)"
        )
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    finally:
        server.terminate()
        server.wait(10)
        dl.forget_process_group(server.pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=("bsm", "linux"), default="bsm", help="BSM records or Linux lines")
    parser.add_argument("--records", type=int, default=20_000, help="records (BSM) or at least as many lines")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--deadline", type=float, default=900)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    sys.exit(benchkit.run("bench_pipeline_cpu", args.deadline, lambda dl: asyncio.run(body(args, dl))))


if __name__ == "__main__":
    main()
