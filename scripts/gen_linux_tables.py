#!/usr/bin/env python3
"""Generate the Linux decoder's lookup tables (native/tables/linux/, embedded by native/build.rs).

Why a script: the syscall and record-type tables are facts dumped from audit 3.0.9 (``ausyscall <arch>
--dump`` and libaudit's type table) that live beside the checkout as fixtures and must not be vendored;
this turns them into our own TSV files. errno names and messages are taken from the generating host's
C library (Linux numbering, generic architectures), which is what libauparse prints too.

Usage: python scripts/gen_linux_tables.py [--fixtures DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import errno
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FIXTURES = Path(os.environ.get("AUDITRECV_SHARED", REPO.parent / "shared")) / "fixtures" / "linux"
DEFAULT_OUT = REPO / "native" / "tables" / "linux"

# AUDIT_ARCH_* values (linux/audit.h: ELF machine | 64-bit flag 0x80000000 | little-endian flag 0x40000000)
# mapped to the audit 3.0.9 table that serves them. ppc variants share one table, as in ausyscall.
ARCHES: list[tuple[int, str, str]] = [
    (0xC000003E, "x86_64", "x86_64"),
    (0x40000003, "i386", "i386"),
    (0xC00000B7, "aarch64", "aarch64"),
    (0x40000028, "armeb", "arm"),  # auparse calls EM_ARM|LE "armeb"; kept as libauparse prints it
    (0x00000014, "ppc", "ppc"),
    (0x80000015, "ppc64", "ppc64"),
    (0xC0000015, "ppc64le", "ppc64le"),
    (0x00000016, "s390", "s390"),
    (0x80000016, "s390x", "s390x"),
    (0xC00000F3, "riscv64", ""),  # no audit 3.0.9 table
    (0x400000F3, "riscv32", ""),
]

# errno.errorcode picks an alias for numbers with two names; libauparse prints the primary ones.
ERRNO_CANONICAL = {35: "EDEADLK", 95: "EOPNOTSUPP", 11: "EAGAIN"}


def read_tsv(path: Path) -> list[tuple[int, str]]:
    """Read ``number<TAB>name`` lines, skipping blanks."""
    rows: list[tuple[int, str]] = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        num, name = line.split("\t")[:2]
        rows.append((int(num), name.strip()))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=Path, default=DEFAULT_FIXTURES)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    tables_dir = args.fixtures / "generated" / "syscall-tables-auditd-3.0.9"

    lines = ["# table\tnumber\tname (from ausyscall <arch> --dump, audit 3.0.9)"]
    for tsv in sorted(tables_dir.glob("*.tsv")):
        for num, name in read_tsv(tsv):
            lines.append(f"{tsv.stem}\t{num}\t{name}")
    (out / "syscalls.tsv").write_text("\n".join(lines) + "\n")

    lines = ["# arch (hex)\tname\tsyscall table"]
    lines += [f"{value:x}\t{name}\t{table}" for value, name, table in ARCHES]
    (out / "arches.tsv").write_text("\n".join(lines) + "\n")

    lines = ["# number\tname (libaudit 3.0.9 record types)"]
    types = read_tsv(args.fixtures / "generated" / "msg-types-auditd-3.0.9.tsv")
    lines += [f"{num}\t{name}" for num, name in sorted(types)]
    (out / "msg_types.tsv").write_text("\n".join(lines) + "\n")

    lines = ["# number\tname\tmessage (Linux errno, from the C library)"]
    names = dict(errno.errorcode)
    names.update(ERRNO_CANONICAL)
    lines += [f"{num}\t{name}\t{os.strerror(num)}" for num, name in sorted(names.items())]
    (out / "errno.tsv").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
