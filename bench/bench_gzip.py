"""gzip of `_bulk` bodies: the sink's compressor (libdeflate in the compiled core) against zlib (what the
sink used before, and what most clients use), on the same bodies in the same run.

    .venv/bin/python bench/bench_gzip.py [--mbytes 5] [--repeat 5] [--deadline 300]

The body is what the sink sends: action lines and the ECS documents of every golden fixture file
(tests/golden, BSM and Linux), repeated with their timestamps and ids varied so that the compressor sees
a realistic mix and not one repeated block. Both compress it at level 1 (the sink's level); the ratio
native/zlib is over MB/s of input, best of `--repeat` runs each, alternating.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import auditrecv._native as native  # noqa: E402
import benchkit  # noqa: E402


def bulk_body(size: int) -> tuple[bytes, int]:
    documents = []
    for golden in sorted((REPO / "tests" / "golden").rglob("*.ecs.jsonl")):
        for line in golden.read_bytes().splitlines():
            entry = json.loads(line)
            documents.append((entry["_id"], json.dumps(entry["_source"], separators=(",", ":"))))
    rng = random.Random(12)
    out, count = bytearray(), 0
    while len(out) < size:
        doc_id, source = rng.choice(documents)
        year = str(rng.randint(2000, 2099))
        out += b'{"create":{"_index":"auditrecv-%s.12.03","_id":"%s%d"}}\n' % (year.encode(), doc_id.encode(), count)
        out += source.replace("2023", year).encode() + b"\n"
        count += 1
    return bytes(out), count


def best_seconds(compress: Callable[[bytes], bytes], body: bytes, repeat: int) -> tuple[float, int]:
    best, size = float("inf"), 0
    for _ in range(repeat):
        start = time.perf_counter()
        size = len(compress(body))
        best = min(best, time.perf_counter() - start)
    return best, size


def body(args: argparse.Namespace, deadline: benchkit.Deadline) -> None:
    deadline.phase("building the body")
    data, docs = bulk_body(int(args.mbytes * 1_000_000))
    print(f"body: {len(data) / 1e6:.1f} MB, {docs} documents ({len(data) / docs:.0f} bytes each)")
    cases: dict[str, Callable[[bytes], bytes]] = {
        "zlib level 1": lambda b: zlib.compress(b, 1, 31),
        "native level 1": lambda b: native.gzip(b, 1),
    }
    results: dict[str, tuple[float, int]] = {name: (float("inf"), 0) for name in cases}
    deadline.phase("compressing")
    for _ in range(args.repeat):  # alternate, so that both see the same machine
        for name, fn in cases.items():
            seconds, size = best_seconds(fn, data, 1)
            results[name] = (min(results[name][0], seconds), size)
    for name, (seconds, size) in results.items():
        deadline.measured(
            f"{name:15} {len(data) / seconds / 1e6:7.0f} MB/s  {seconds / docs * 1e6:6.2f} us/doc  "
            f"output {len(data) / size:4.1f}x smaller"
        )
    (z_s, z_size), (n_s, n_size) = results["zlib level 1"], results["native level 1"]
    deadline.measured(f"ratio native/zlib throughput: {z_s / n_s:.2f}x, output size native/zlib: {n_size / z_size:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mbytes", type=float, default=5.0, help="body size in MB")
    parser.add_argument("--repeat", type=int, default=5)
    benchkit.add_deadline_argument(parser, 300)
    args = parser.parse_args()
    sys.exit(benchkit.run("bench_gzip", args.deadline, lambda dl: body(args, dl)))


if __name__ == "__main__":
    main()
