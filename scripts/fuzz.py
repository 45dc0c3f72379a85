#!/usr/bin/env python3
"""Coverage-guided fuzzing of the protocol cores and the spool record codec (atheris + libFuzzer).

    .venv/bin/python scripts/fuzz.py [--target NAME ...] [--seconds N] [--corpus DIR]

Targets (tests/fuzz/targets.py): audit_remote, audisp_managed, audisp_ascii, audisp_krb5, spool_codec; all by
default, one after the other, ``--seconds`` each (default 60). Each starts from seeds of real sessions
(tests/fuzz/seeds.py) plus what earlier runs kept in the corpus (default ~/.cache/auditrecv-fuzz/corpus/<target>),
and prints the number of inputs run.

A crash (an exception the code under test should not raise, or a broken invariant) is saved as
tests/fuzz/regressions/<target>/crash-<sha1>.bin (with the traceback in a .txt beside it), which
tests/fuzz/test_regressions.py replays on every test run; fuzzing then goes on with that crash known (inputs
failing the same way are not reported again). Exit status: 0 no new crash, 1 new crashes saved.
Run it niced on a shared machine: ``nice -n 19 .venv/bin/python scripts/fuzz.py ...``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REGRESSIONS = REPO / "tests" / "fuzz" / "regressions"
DEFAULT_CORPUS = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "auditrecv-fuzz" / "corpus"
TARGET_NAMES = ("audit_remote", "audisp_managed", "audisp_ascii", "audisp_krb5", "spool_codec")
MAX_LEN = 16384
MAX_RESTARTS = 20  # new crashes per target per run: past that, fix what was found first


# --------------------------------------------------------------------------- the worker (one target, atheris)


def worker(target_name: str, libfuzzer_args: list[str]) -> None:
    import atheris

    sys.path.insert(0, str(REPO))
    with atheris.instrument_imports(include=["auditrecv"]):
        from tests.fuzz.targets import TARGETS
    from tests.fuzz.known import crash_signature, known_signatures

    check = TARGETS[target_name].check
    known = known_signatures(target_name, check)
    if known:
        print(f"fuzz worker {target_name}: {len(known)} known crash(es) are not reported again", file=sys.stderr)

    def one_input(data: bytes) -> None:
        try:
            check(data)
        except Exception as exc:
            if crash_signature(exc) in known:
                return
            raise

    atheris.Setup([sys.argv[0], *libfuzzer_args], one_input)
    atheris.Fuzz()


# --------------------------------------------------------------------------- the driver


@dataclass
class TargetResult:
    name: str
    runs: int = 0
    seconds: float = 0.0
    crashes: list[Path] = field(default_factory=list)
    corpus_files: int = 0
    coverage: str = ""

    @property
    def rate(self) -> float:
        return self.runs / self.seconds if self.seconds else 0.0


def write_seeds(target: str, directory: Path) -> int:
    sys.path.insert(0, str(REPO))
    from tests.fuzz.seeds import SEEDS

    seeds = SEEDS[target]()
    for seed in seeds:
        (directory / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
    return len(seeds)


_DONE = re.compile(r"^Done (\d+) runs in (\d+) second", re.MULTILINE)
_STAT_RUNS = re.compile(r"^stat::number_of_executed_units: (\d+)", re.MULTILINE)
_PULSE = re.compile(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+)", re.MULTILINE)


def save_crash(target: str, artifact: Path, log: str) -> Path:
    data = artifact.read_bytes()
    kind = artifact.name.split("-", 1)[0]  # crash, timeout, oom, leak, slow-unit
    dest_dir = REGRESSIONS / target
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / f"{kind}-{hashlib.sha1(data).hexdigest()[:16]}.bin"
    dest.write_bytes(data)
    start = log.find("=== Uncaught Python exception")
    excerpt = log[start : start + 4000] if start >= 0 else log[-4000:]
    dest.with_suffix(".txt").write_text(f"target {target}, {kind} found by scripts/fuzz.py\n\n{excerpt}\n")
    return dest


def fuzz_target(target: str, seconds: float, corpus_root: Path, max_len: int) -> TargetResult:
    result = TargetResult(target)
    corpus = corpus_root / target
    corpus.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{target}-") as tmp:
        seeds, artifacts = Path(tmp) / "seeds", Path(tmp) / "artifacts"
        seeds.mkdir()
        artifacts.mkdir()
        n_seeds = write_seeds(target, seeds)
        print(f"{target}: {n_seeds} seeds, corpus {corpus} ({len(list(corpus.iterdir()))} files)", flush=True)
        deadline = time.monotonic() + seconds
        for _ in range(MAX_RESTARTS + 1):
            left = int(deadline - time.monotonic())
            if left < 1:
                break
            args = [
                f"-max_total_time={left}",
                f"-max_len={max_len}",
                "-timeout=10",
                "-rss_limit_mb=2048",
                "-print_final_stats=1",
                f"-artifact_prefix={artifacts}/",
                str(corpus),
                str(seeds),
            ]
            started = time.monotonic()
            proc = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), "--worker", target, "--", *args],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,  # atheris prints the Python traceback on stdout, libFuzzer on stderr
                text=True,
                errors="replace",
            )
            result.seconds += time.monotonic() - started
            log = proc.stdout
            runs = _STAT_RUNS.findall(log) or [m[0] for m in _DONE.findall(log)]
            pulses = _PULSE.findall(log)
            if runs:
                result.runs += int(runs[-1])
            elif pulses:
                result.runs += int(pulses[-1][0])
            if pulses:
                result.coverage = f"cov {pulses[-1][1]}, ft {pulses[-1][2]}"
            found = sorted(artifacts.iterdir())
            for artifact in found:
                dest = save_crash(target, artifact, log)
                result.crashes.append(dest)
                print(f"{target}: NEW CRASH saved as {dest.relative_to(REPO)}", flush=True)
                artifact.unlink()
            if not found:
                if proc.returncode != 0:
                    print(f"{target}: worker exited {proc.returncode} without an artifact:\n{log[-3000:]}", flush=True)
                break
    result.corpus_files = len(list(corpus.iterdir()))
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", action="append", choices=TARGET_NAMES, help="repeatable; default: every target")
    ap.add_argument("--seconds", type=float, default=60.0, help="fuzzing time per target (default 60)")
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help=f"corpus root (default {DEFAULT_CORPUS})")
    ap.add_argument("--max-len", type=int, default=MAX_LEN, help=f"longest input (default {MAX_LEN})")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("libfuzzer_args", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.libfuzzer_args)
        return 0
    try:
        import atheris  # noqa: F401
    except ImportError:
        print("atheris is not installed: bash scripts/install.sh --test", file=sys.stderr)
        return 2
    results = []
    for target in args.target or TARGET_NAMES:
        r = fuzz_target(target, args.seconds, args.corpus, args.max_len)
        print(f"{target}: {r.runs:,d} inputs in {r.seconds:.0f} s ({r.rate:,.0f}/s), {len(r.crashes)} new crash(es)")
        results.append(r)
    print()
    print(f"{'target':16} {'inputs':>12} {'seconds':>8} {'inputs/s':>9} {'corpus':>7}  coverage            new crashes")
    for r in results:
        print(
            f"{r.name:16} {r.runs:12,d} {r.seconds:8.0f} {r.rate:9,.0f} {r.corpus_files:7d}  {r.coverage:18}  "
            f"{len(r.crashes)}"
        )
    return 1 if any(r.crashes for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
