#!/usr/bin/env python3
"""Benchmark: Linux audit line parsing + event grouping, auditrecv vs Debian's libauparse 3.0.9.

Builds a log of >= 200k records by repeating the third-party fixture logs with fresh serials and advancing
timestamps, then measures in the same run:
* auditrecv: parse_line + EventAssembler (grouping) with the default lazy body parsing (the header is
  all grouping needs), with every field parsed eagerly, and with interpret() added;
* libauparse (python3-audit, run with /usr/bin/python3 in a subprocess, timed inside it): events and
  records walked (its C parser splits every record into fields eagerly), and a second pass that also reads
  every field name and raw value from Python (what a Python user of the binding needs to get the same data);
* the native decoder (auditrecv._native, Rust): the whole `decode --raw` (read, parse, group, interpret,
  one JSON line per event) of the file, against libauparse and against the Python decoder doing the same
  (`decode_lines` + `dumps`, as `auditrecv decode --raw` ran it before issue 12). Issue 12's target:
  native `decode --raw` at least as fast as libauparse with every field read.

Usage: .venv/bin/python bench/bench_linux_decode.py [--records N] [--repeat N] [--keep FILE] [--deadline S]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import benchkit  # noqa: E402

from auditrecv import _native  # noqa: E402
from auditrecv.decode.linux import (  # noqa: E402
    EventAssembler,
    decode_lines,
    interpret,
    parse_line,
)
from auditrecv.tools import dumps, read_input  # noqa: E402
from tests.paths import LINUX_FIXTURES  # noqa: E402

SOURCES = [
    *sorted((LINUX_FIXTURES / "third_party" / "audit-userspace-v3.0.9" / "auparse" / "test").glob("*.log")),
    *sorted((LINUX_FIXTURES / "third_party" / "go-libaudit" / "auparse" / "testdata").glob("*.log")),
    LINUX_FIXTURES / "third_party" / "go-libaudit" / "testdata" / "normal.log",
    LINUX_FIXTURES / "audisp-remote" / "captures" / "input-events.log",
]
_ID = re.compile(r"msg=audit\((\d+)\.(\d+):(\d+)\)")

LIBAUPARSE_SCRIPT = r"""
import json, sys, time
import auparse
path = sys.argv[1]
REPEAT = int(sys.argv[2])
def walk():
    t0 = time.perf_counter()
    parser = auparse.AuParser(auparse.AUSOURCE_FILE, path)
    events = records = 0
    while parser.parse_next_event():
        events += 1
        records += parser.get_num_records()
    return time.perf_counter() - t0, events, records
def fields_walk():
    t0 = time.perf_counter()
    parser = auparse.AuParser(auparse.AUSOURCE_FILE, path)
    fields = 0
    while parser.parse_next_event():
        parser.first_record()
        while True:
            parser.first_field()
            while True:
                parser.get_field_name(); parser.get_field_str()
                fields += 1
                if not parser.next_field():
                    break
            if not parser.next_record():
                break
    return time.perf_counter() - t0, fields
runs = [walk() for _ in range(REPEAT)]
field_runs = [fields_walk() for _ in range(REPEAT)]
best = min(runs)
print(json.dumps({"events": best[1], "records": best[2], "fields": field_runs[0][1],
                  "walk": best[0], "fields_walk": min(field_runs)[0]}))
"""


def build_log(path: Path, min_records: int) -> int:
    """Repeat the fixture records with fresh serials (one per original event) and later timestamps."""
    files: list[list[str]] = []
    for source in SOURCES:
        lines = [line for line in source.read_text().split("\n") if _ID.search(line)]
        files.append(lines)
    written = 0
    serial = 1000
    clock = 1_600_000_000
    with path.open("w") as out:
        while written < min_records:
            for lines in files:
                mapping: dict[str, int] = {}  # per file copy: the same id in two files is two events
                for line in lines:
                    match = _ID.search(line)
                    assert match is not None
                    old = match.group(0)
                    if old not in mapping:
                        serial += 1
                        mapping[old] = serial
                    new_serial = mapping[old]
                    stamp = f"msg=audit({clock + new_serial // 50}.{match.group(2)}:{new_serial})"
                    out.write(line[: match.start()] + stamp + line[match.end() :] + "\n")
                    written += 1
    return written


def bench_ours(path: Path, with_interpret: bool, lazy: bool = True) -> tuple[float, int, int]:
    """Parse and group (optionally interpret) the whole file; returns (seconds, records, events)."""
    start = time.perf_counter()
    asm = EventAssembler(grace_seconds=2.0, max_age_seconds=30.0)
    events = records = 0
    clock = 0.0
    with path.open(encoding="utf-8", newline="\n") as handle:
        for line in handle:
            record = parse_line(line, lazy)
            records += 1
            if record.time_ns is not None and record.time_ns / 1e9 > clock:
                clock = record.time_ns / 1e9
            for event in asm.add(record, "bench", clock):
                events += 1
                if with_interpret:
                    interpret(event)
        for event in asm.flush():
            events += 1
            if with_interpret:
                interpret(event)
    return time.perf_counter() - start, records, events


def bench_native_raw(path: Path) -> tuple[float, int, int]:
    """The native `decode --raw` of the whole file, read included, its output written to /dev/null in
    1 MiB pieces as the CLI writes to a file; returns (seconds, bytes out, events)."""
    written = 0
    with open(os.devnull, "wb") as sink:

        def write(chunk: bytes) -> None:
            nonlocal written
            written += len(chunk)
            sink.write(chunk)

        start = time.perf_counter()
        events = _native.linux_decode_raw_into(path.read_bytes(), write, str(path))
        seconds = time.perf_counter() - start
    return seconds, written, events


def bench_native_raw_bytes(path: Path) -> float:
    """The same with the whole output returned as one bytes object (280 MB for 200k records)."""
    start = time.perf_counter()
    _native.linux_decode_raw(path.read_bytes(), str(path))
    return time.perf_counter() - start


def bench_python_raw(path: Path) -> tuple[float, int, int]:
    """The Python `decode --raw` of the whole file, as `auditrecv decode --raw` runs it (output kept in memory)."""
    start = time.perf_counter()
    kind, items = read_input(str(path))
    assert kind == "linux"
    size = events = 0
    for obj in decode_lines((line.decode("utf-8", "surrogateescape") for _, line in items), source=str(path)):
        size += len(dumps(obj))
        events += 1
    return time.perf_counter() - start, size, events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best counts")
    parser.add_argument("--keep", type=Path, help="write the generated log here instead of a temp file")
    benchkit.add_deadline_argument(parser, 900)
    args = parser.parse_args()
    sys.exit(benchkit.run("bench_linux_decode", args.deadline, lambda dl: body(args, dl)))


def body(args: argparse.Namespace, dl: benchkit.Deadline) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "bench-audit.log"
        dl.phase("building the log")
        total = build_log(path, args.records)
        dl.measured(f"log: {path} ({total} records, {os.path.getsize(path) / 1e6:.1f} MB)")

        # Interleaved, best of --repeat on both sides: the machine is shared, so each side gets runs at
        # the same moments and the minimum is the least disturbed one.
        lazy_runs, eager_runs, ref_runs, native_runs = [], [], [], []
        for i in range(args.repeat):
            dl.phase(f"round {i + 1}/{args.repeat}: native decode --raw")
            native_runs.append(bench_native_raw(path))
            dl.phase(f"round {i + 1}/{args.repeat}: auditrecv parse + group")
            lazy_runs.append(bench_ours(path, False))
            eager_runs.append(bench_ours(path, False, lazy=False)[0])
            dl.phase(f"round {i + 1}/{args.repeat}: libauparse")
            proc = subprocess.run(
                ["/usr/bin/python3", "-c", LIBAUPARSE_SCRIPT, str(path), "1"],
                capture_output=True,
                text=True,
                env={**os.environ, "TZ": "UTC"},
                timeout=max(1.0, dl.remaining()),
            )
            if proc.returncode != 0:
                raise SystemExit(f"libauparse run failed: {proc.stderr.strip()}")
            ref_runs.append(json.loads(proc.stdout))
            dl.measured(
                f"round {i + 1}: auditrecv parse+group {lazy_runs[-1][0]:.2f} s, all fields {eager_runs[-1]:.2f} s, "
                f"libauparse walk {ref_runs[-1]['walk']:.2f} s, native decode --raw {native_runs[-1][0]:.2f} s"
            )
        ours_time, ours_records, ours_events = min(lazy_runs)
        eager_time = min(eager_runs)
        dl.phase("auditrecv parse + group + interpret")
        full_time, _, _ = bench_ours(path, with_interpret=True)
        dl.phase("auditrecv Python decode --raw")
        python_raw_time, python_raw_bytes, python_raw_events = bench_python_raw(path)
        native_time, native_bytes, native_events = min(native_runs)
        dl.phase("native decode --raw into one bytes object")
        native_bytes_time = bench_native_raw_bytes(path)
        if (native_bytes, native_events) != (python_raw_bytes, python_raw_events):
            raise SystemExit(
                f"native and Python decode --raw differ: {native_events} / {python_raw_events} events, "
                f"{native_bytes} / {python_raw_bytes} bytes"
            )
        ref = dict(ref_runs[0])
        ref["walk"] = min(r["walk"] for r in ref_runs)
        ref["fields_walk"] = min(r["fields_walk"] for r in ref_runs)

    def row(name: str, seconds: float, records: int, events: int) -> None:
        dl.measured(f"{name:<48} {records / seconds:>12,.0f} rec/s {events / seconds:>12,.0f} ev/s  ({seconds:.2f} s)")

    dl.measured(
        f"events: auditrecv {ours_events}, libauparse {ref['events']}; records: {ours_records} / {ref['records']}"
    )
    row("auditrecv parse + group (fields parsed lazily)", ours_time, ours_records, ours_events)
    row("auditrecv parse (all fields) + group", eager_time, ours_records, ours_events)
    row("auditrecv parse + group + interpret", full_time, ours_records, ours_events)
    row("auditrecv Python decode --raw (+ JSON lines)", python_raw_time, ours_records, python_raw_events)
    row("auditrecv native decode --raw (Rust, JSON to a file)", native_time, ours_records, native_events)
    row("auditrecv native decode --raw (one bytes object)", native_bytes_time, ours_records, native_events)
    row("libauparse parse + group (C, records counted)", ref["walk"], ref["records"], ref["events"])
    row("libauparse + every field read from Python", ref["fields_walk"], ref["records"], ref["events"])
    dl.measured(
        f"ratio auditrecv parse+group / libauparse parse+group: {ref['walk'] / ours_time:.2f}x "
        f"(>1 means auditrecv is faster)"
    )
    dl.measured(
        f"ratio auditrecv parse(all fields)+group / libauparse with field access from Python: "
        f"{ref['fields_walk'] / eager_time:.2f}x"
    )
    dl.measured(
        f"ratio native decode --raw / libauparse with field access from Python: {ref['fields_walk'] / native_time:.2f}x"
        f" (issue 12 target >= 1.0x); / libauparse parse+group in C: {ref['walk'] / native_time:.2f}x"
    )
    dl.measured(f"ratio native decode --raw / Python decode --raw: {python_raw_time / native_time:.2f}x")


if __name__ == "__main__":
    main()
