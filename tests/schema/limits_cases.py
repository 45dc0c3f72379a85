"""Records over ``[limits]`` and the cut documents the Python ``limit_document`` made of them.

The goldens under ``limits_goldens/`` were written by the Python decoders and mappers before they were
deleted (issue 12): one file per document, its exact bytes, and ``ids.tsv`` with the document ids. The
native core must write the same bytes (tests/schema/test_limits.py). Regenerating them needs a checkout
that still has the Python path (``python -m tests.schema.limits_cases``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from auditrecv.config import Limits
from auditrecv.spool.record import Source
from tests.bsm_builders import header32, record, str16
from tests.paths import BSM_FIXTURES

GOLDENS = Path(__file__).parent / "limits_goldens"

SRC = Source("audit_remote", "192.0.2.7", 40001, "dummy", "", False, "main")
LINUX_SRC = Source("audisp_remote", "192.0.2.9", 50000, listener="linux")
OBS = {"hostname": "rx", "name": "auditrecv-test"}
RECEIVED_NS = 1_700_000_123_456_789_000

# The smallest document cap the configuration allows, with small list and string caps: every rule of
# the cutting shows in documents of a few kB.
TIGHT = Limits(max_document_bytes=64 * 1024, max_tokens=20, max_array_items=30, max_string_chars=200)
# Below what the configuration allows: the budget left for mapped fields is never enough, so the
# document always ends as the skeleton.
SKELETON = Limits(max_document_bytes=16 * 1024, max_tokens=20, max_array_items=30, max_string_chars=200)


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # "bsm" or "linux"
    schema: str  # "ecs" or "auditrecv-v1"
    limits: Limits
    payloads: tuple[bytes, ...]  # BSM records, or the lines of Linux events


def text_flood(n: int, text: bytes = b"x") -> bytes:
    """A BSM record of `n` text tokens (the chaos probe's shape)."""
    body = (b"\x28" + str16(text)) * n + b"\x27" + struct.pack(">BI", 0, 0)
    return record(header32(6152, 1_700_000_000, 0, version=11), body)


def long_args() -> list[bytes]:
    """The records of openbsm's execve-long-args trail (arguments of thousands of characters)."""
    from auditrecv import _native

    data = (BSM_FIXTURES / "openbsm/samples/execve-long-args.trail").read_bytes()
    return [data[off : off + n] for kind, off, n in _native.bsm_split_trail(data) if kind == _native.ITEM_RECORD]


def execve_lines(n: int, arg_len: int, serial: int = 777) -> tuple[bytes, ...]:
    stamp = f"msg=audit(1700000100.000:{serial}):"
    lines = [
        f"type=SYSCALL {stamp} arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=0 ppid=1 "
        f'pid=2 auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=1 comm="x" '
        f'exe="/usr/bin/x" key=(null)'.encode()
    ]
    lines += [f'type=EXECVE {stamp} a{i}="{"v" * arg_len}"'.encode() for i in range(1, n)]
    lines.append(f"type=EOE {stamp}".encode())
    return tuple(lines)


def many_fields(n: int) -> tuple[bytes, ...]:
    fields = " ".join(f"k{i}=1" for i in range(n))
    return (f"type=USER_ACCT msg=audit(1700000000.000:5): pid=1 uid=0 {fields}".encode(),)


def cases() -> Iterator[Case]:
    for schema in ("ecs", "auditrecv-v1"):
        short = "v1" if schema == "auditrecv-v1" else "ecs"
        # over max_tokens (the decoder's own caps cut it too) and the text list over max_array_items
        yield Case(f"bsm-text-flood-{short}", "bsm", schema, TIGHT, (text_flood(60),))
        # strings over max_string_chars
        yield Case(f"bsm-long-args-{short}", "bsm", schema, TIGHT, tuple(long_args()[:3]))
        # lists cut, the raw copy kept whole
        yield Case(f"bsm-large-{short}", "bsm", schema, TIGHT, (text_flood(150, b"y" * 150),))
        # the raw input itself too large: cut and named
        yield Case(f"bsm-huge-{short}", "bsm", schema, TIGHT, (text_flood(3000, b"z" * 40),))
        yield Case(f"bsm-skeleton-{short}", "bsm", schema, SKELETON, (text_flood(400, b"y" * 150),))
        yield Case(f"linux-execve-{short}", "linux", schema, TIGHT, execve_lines(12, 400))
        yield Case(f"linux-large-{short}", "linux", schema, TIGHT, execve_lines(80, 1500, serial=778))
        yield Case(f"linux-fields-{short}", "linux", schema, TIGHT, many_fields(100))
        yield Case(f"linux-skeleton-{short}", "linux", schema, SKELETON, execve_lines(12, 400, serial=779))
    # a record without a header: a dead letter whose hex and base64 copies are over the caps
    yield Case("bsm-dead-letter", "bsm", "ecs", TIGHT, (b"\x00" + bytes(range(256)) * 150,))


def read_goldens() -> dict[str, list[tuple[str, bytes]]]:
    """Case name -> [(document id, document bytes)] as written by `write_goldens`."""
    out: dict[str, list[tuple[str, bytes]]] = {}
    for line in (GOLDENS / "ids.tsv").read_text().splitlines():
        name, index, doc_id = line.split("\t")
        out.setdefault(name, []).append((doc_id, (GOLDENS / f"{name}.{index}.json").read_bytes()))
    return out


def write_goldens() -> None:  # pragma: no cover - run by hand, with the Python path still present
    import dataclasses

    import orjson

    from auditrecv.config import Config, Search
    from auditrecv.pipeline import DocumentBuilder
    from auditrecv.spool.record import SpoolRecord

    GOLDENS.mkdir(exist_ok=True)
    rows = []
    for case in cases():
        cfg = dataclasses.replace(Config(), limits=case.limits, search=Search(schema=case.schema))
        builder = DocumentBuilder(cfg, OBS, record_clock=True)
        source = SRC if case.kind == "bsm" else LINUX_SRC
        items = [(i, SpoolRecord(case.kind, p, source, RECEIVED_NS)) for i, p in enumerate(case.payloads, 1)]
        built = [b for b in builder.add(items) + builder.flush() if b.doc is not None]
        for index, b in enumerate(built):
            (GOLDENS / f"{case.name}.{index}.json").write_bytes(orjson.dumps(b.doc))
            rows.append(f"{case.name}\t{index}\t{b.doc_id}\n")
    (GOLDENS / "ids.tsv").write_text("".join(rows))


if __name__ == "__main__":  # pragma: no cover
    write_goldens()
