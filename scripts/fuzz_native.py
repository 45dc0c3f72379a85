#!/usr/bin/env python3
"""Coverage-guided fuzzing of the native decoders (cargo-fuzz / libFuzzer, stable Rust), crashes kept as tests.

    .venv/bin/python scripts/fuzz_native.py [--time SECONDS] [TARGET ...]

Targets are native/fuzz/fuzz_targets/*.rs (bsm_record, bsm_trail, bsm_sniff, linux_lines; all by default),
run one after the other for ``--time`` seconds each (default 60), one libFuzzer job, niced. Each starts
from a seed corpus made from ../shared/fixtures (whole BSM trails for the stream targets, single records
split out of them for bsm_record, windows of Linux logs for linux_lines) plus the committed regression
inputs, in native/fuzz/corpus/<target>/ (git-ignored: the fixtures are third-party data; what earlier runs
found stays there for the next run).

It works with stable Rust: ``cargo fuzz ... -s none`` (no sanitizer, so no ``-Z`` flag; the code is safe Rust,
so a panic is the bug to find) with debug assertions on (integer overflow panics). cargo-fuzz is installed
with ``cargo install cargo-fuzz --locked`` (into ~/.cargo) when missing.

A crash (a panic in the decoder or a broken invariant of the target, a timeout, running out of memory) is
minimized (``cargo fuzz tmin``) and saved as native/fuzz/regressions/<target>/<sha1>.bin with the fuzzer's
report in <sha1>.txt; ``cargo test`` (native/tests/fuzz_regressions.rs) and pytest
(tests/native/test_fuzz_regressions.py) replay every .bin there from then on. Exit status: 0 nothing found,
1 crashes saved (their paths printed), 2 the build or the tooling failed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FUZZ = REPO / "native" / "fuzz"
NATIVE = REPO / "native"
REGRESSIONS = FUZZ / "regressions"
CORPUS = FUZZ / "corpus"
ARTIFACTS = FUZZ / "artifacts"
SHARED = Path(os.environ.get("AUDITRECV_SHARED", REPO.parent / "shared"))
BSM_FIXTURES = SHARED / "fixtures" / "bsm"
LINUX_FIXTURES = SHARED / "fixtures" / "linux"
CARGO_FUZZ_VERSION = "0.13.2"
# cargo-fuzz options: no sanitizer (stable Rust), overflow checks and debug assertions on.
BUILD_OPTS = ["-s", "none", "--debug-assertions"]
MAX_SEED = 1 << 20  # bytes; larger fixture files are left out of the corpus
MAX_LEN = 1 << 14  # libFuzzer's longest generated input
CRASH_PREFIXES = ("crash-", "timeout-", "oom-", "leak-")


def log(msg: str) -> None:
    print(f"fuzz_native: {msg}", file=sys.stderr, flush=True)


def cargo_env() -> dict[str, str]:
    env = dict(os.environ)
    cargo_bin = str(Path.home() / ".cargo" / "bin")
    if cargo_bin not in env.get("PATH", "").split(os.pathsep):
        env["PATH"] = env.get("PATH", "") + os.pathsep + cargo_bin
    return env


def run(
    cmd: list[str], env: dict[str, str], cwd: Path | None = None, capture: bool = False, quiet: bool = False
) -> subprocess.CompletedProcess[str]:
    """``cmd`` (stdout and stderr captured, or discarded with ``quiet``, else inherited)."""
    out = subprocess.PIPE if capture else subprocess.DEVNULL if quiet else None
    return subprocess.run(cmd, env=env, cwd=cwd, text=True, stdout=out, stderr=out, check=False)


def ensure_cargo_fuzz(env: dict[str, str]) -> None:
    if shutil.which("cargo", path=env["PATH"]) is None:
        log("cargo not found (scripts/install.sh installs Rust)")
        sys.exit(2)
    probe = run(["cargo", "fuzz", "--version"], env, capture=True)
    if probe.returncode == 0:
        return
    log(f"installing cargo-fuzz {CARGO_FUZZ_VERSION} (cargo install --locked, ~1 min)")
    if run(["cargo", "install", "cargo-fuzz", "--locked", "--version", CARGO_FUZZ_VERSION], env).returncode != 0:
        log("cargo install cargo-fuzz failed")
        sys.exit(2)


def all_targets() -> list[str]:
    return sorted(p.stem for p in (FUZZ / "fuzz_targets").glob("*.rs"))


def fixture_files() -> list[Path]:
    """The binary BSM fixtures (trails, reference records, lone tokens), not the praudit text beside them."""
    if not BSM_FIXTURES.is_dir():
        log(f"no fixtures at {BSM_FIXTURES}: starting from the regression inputs only")
        return []
    skip = {".md", ".txt", ".xml"}
    return [
        p
        for p in sorted(BSM_FIXTURES.rglob("*"))
        if p.is_file() and p.suffix not in skip and "etc_audit" not in p.name and p.stat().st_size <= MAX_SEED
    ]


def split_records(data: bytes) -> Iterator[bytes]:
    """The records of a trail, as the native core splits it (nothing when it is not importable)."""
    try:
        sys.path.insert(0, str(REPO))
        from auditrecv import _native
    except ImportError:
        return
    if _native.bsm_looks_like(data[:4096]):
        for kind, offset, length in _native.bsm_split_trail(data):
            if kind == _native.ITEM_RECORD:
                yield data[offset : offset + length]


def regression_inputs() -> list[Path]:
    return sorted(REGRESSIONS.glob("*/*.bin"))


def chunks(records: list[bytes], size: int) -> Iterator[bytes]:
    """Consecutive records joined into pieces of at most ``size`` bytes (a record longer stays whole)."""
    piece = b""
    for rec in records:
        if piece and len(piece) + len(rec) > size:
            yield piece
            piece = b""
        piece += rec
    if piece:
        yield piece


def linux_logs() -> list[Path]:
    """The Linux audit logs among the fixtures (the .log files and the ascii-format capture)."""
    if not LINUX_FIXTURES.is_dir():
        return []
    return sorted(p for p in LINUX_FIXTURES.rglob("*.log") if p.is_file())


def seeds(target: str) -> Iterator[bytes]:
    """Small inputs fuzz fast: single records for bsm_record; for the stream targets, the start of every file
    (file token and first records) and the trails cut at record boundaries into pieces within MAX_LEN."""
    for path in fixture_files():
        data = path.read_bytes()
        records = list(split_records(data))
        if target == "bsm_record":
            yield from records if records else [data[:MAX_LEN]]
        elif target.startswith("bsm_"):
            yield data[:4096]
            yield from chunks(records, MAX_LEN // 4)
    if target == "linux_lines":
        for path in linux_logs():
            lines = path.read_bytes().splitlines(keepends=True)
            for start in range(0, min(len(lines), 400), 20):  # small windows of whole lines
                yield b"".join(lines[start : start + 20])[:MAX_LEN]
    for path in regression_inputs():
        yield path.read_bytes()[:MAX_LEN]


def make_corpus(target: str) -> Path:
    out = CORPUS / target
    out.mkdir(parents=True, exist_ok=True)
    added = 0
    for data in seeds(target):
        if not data:
            continue
        path = out / hashlib.sha1(data).hexdigest()
        if not path.exists():
            path.write_bytes(data)
            added += 1
    log(f"{target}: corpus {out.relative_to(REPO)}: {sum(1 for _ in out.iterdir())} inputs ({added} new seeds)")
    return out


def crash_files(target: str) -> set[Path]:
    d = ARTIFACTS / target
    return {p for p in d.iterdir() if p.name.startswith(CRASH_PREFIXES)} if d.is_dir() else set()


def save_regression(target: str, crash: Path, report: str, env: dict[str, str]) -> Path:
    data = crash.read_bytes()
    if crash.name.startswith("crash-"):
        before = set((ARTIFACTS / target).glob("minimized-from-*"))
        log(f"{target}: minimizing {crash.name} ({len(data)} bytes)")
        tmin = ["cargo", "fuzz", "tmin", *BUILD_OPTS, "-r", "2000", target, str(crash)]
        run(tmin, env, cwd=NATIVE, quiet=True)
        new = sorted(set((ARTIFACTS / target).glob("minimized-from-*")) - before, key=lambda p: p.stat().st_mtime)
        if new and new[-1].stat().st_size <= len(data):
            data = new[-1].read_bytes()
    sha = hashlib.sha1(data).hexdigest()
    dest = REGRESSIONS / target / f"{sha}.bin"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    dest.with_suffix(".txt").write_text(
        f"Found by scripts/fuzz_native.py, target {target}, from {crash.name}; minimized to {len(data)} bytes.\n"
        f"Replayed by native/tests/fuzz_regressions.rs and tests/native/test_fuzz_regressions.py.\n\n{report}"
    )
    return dest


def fuzz(target: str, seconds: int, env: dict[str, str]) -> list[Path]:
    corpus = make_corpus(target)
    before = crash_files(target)
    cmd = ["nice", "-n", "19", "cargo", "fuzz", "run", *BUILD_OPTS, target, str(corpus), "--"]
    cmd += [f"-max_total_time={seconds}", "-timeout=20", "-rss_limit_mb=2048", f"-max_len={MAX_LEN}"]
    cmd += ["-use_value_profile=1", "-print_final_stats=1"]  # value profile: comparisons against constants
    log(f"{target}: fuzzing for {seconds} s")
    proc = run(cmd, env, cwd=NATIVE, capture=True)
    lines = proc.stderr.splitlines()
    stats = [ln for ln in lines if ln.startswith(("stat::number_of_executed_units", "stat::peak_rss_mb", "Done "))]
    log(f"{target}: exit {proc.returncode}; " + "; ".join(stats))
    found = sorted(crash_files(target) - before)
    if proc.returncode != 0 and not found:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-8000:])
        log(f"{target}: cargo fuzz failed without a crash file")
        sys.exit(2)
    # the fuzzer's report: from the panic message (or libFuzzer's "==ERROR") to the artifact line
    start = next((i for i, ln in enumerate(lines) if "panicked at" in ln or "==ERROR" in ln or "ALARM" in ln), 0)
    report = "\n".join(lines[start : start + 40]) + "\n"
    return [save_regression(target, crash, report, env) for crash in found]


def main() -> int:
    targets = all_targets()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--time", type=int, default=60, metavar="SECONDS", help="per target (default 60)")
    ap.add_argument("targets", nargs="*", metavar="TARGET", help=f"default: all of {', '.join(targets)}")
    args = ap.parse_args()
    unknown = [t for t in args.targets if t not in targets]
    if unknown:
        ap.error(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(targets)}")
    env = cargo_env()
    ensure_cargo_fuzz(env)
    chosen = args.targets or targets
    build = ["nice", "-n", "19", "cargo", "fuzz", "build", *BUILD_OPTS, *(chosen if len(chosen) == 1 else [])]
    if run(build, env, cwd=NATIVE).returncode:
        log("cargo fuzz build failed")
        return 2
    saved: list[Path] = []
    for target in chosen:
        saved += fuzz(target, args.time, env)
    for path in saved:
        log(f"CRASH saved as regression: {path.relative_to(REPO)} (report beside it in .txt)")
    if saved:
        log("fix the decoder, then `cargo test` in native/ and pytest tests/native replay these inputs")
        return 1
    log(f"no crash in {', '.join(chosen)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
