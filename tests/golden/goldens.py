"""The golden files: which fixtures they cover, how they are made, and how a difference is reported.

Every BSM trail and Linux audit log among the shared fixtures (a file `auditrecv decode` recognizes by its
first bytes) gets three files here, named after its path below the fixtures folder:

* ``<path>.raw.jsonl``: ``auditrecv decode --raw`` (the decoders' own output, before any mapping);
* ``<path>.ecs.jsonl`` and ``<path>.v1.jsonl``: the documents in the ECS and ``auditrecv-v1`` shapes,
  each as ``{"_id": <document id>, "_source": <document>}``.

One JSON object per line, keys sorted. Everything that would vary between runs or machines is fixed: the
arrival time of every record, the sender's name, the receiver's host name and version (see GOLDEN_*).
MANIFEST.tsv lists each golden file with the sha256 of its fixture, so a failing comparison can tell a
changed fixture from changed code.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from auditrecv.schema.observer import observer_info
from auditrecv.spool.record import RecordKind
from auditrecv.tools import decode_config, read_input
from tests.golden.core import Schema, build_documents, decode_raw
from tests.golden.native_core import sniff_kind
from tests.paths import FIXTURES

GOLDEN_DIR = Path(__file__).resolve().parent
MANIFEST = GOLDEN_DIR / "MANIFEST.tsv"
SNIFF_BYTES = 4096  # what `auditrecv decode` reads to tell a BSM trail from Linux text
FIXTURE_ROOTS = ("bsm", "linux")  # folders below the fixtures folder that hold decoder inputs

# The fixed inputs that make the documents reproducible. Changing one changes goldens: regenerate.
GOLDEN_RECEIVED_NS = 1_700_000_000_123_456_789  # 2023-11-14T22:13:20.123456789Z, every record's arrival time
GOLDEN_HOST = "golden-sender.example"  # the sender (`auditrecv decode --host`): host.*, source, document ids
GOLDEN_OBSERVER_HOST = "golden-receiver.example"  # this receiver's host name: observer.name / hostname
GOLDEN_VERSION = "0.0.0-golden"  # observer.version: a release must not change every golden file


def golden_observer() -> dict[str, str]:
    """observer.* as `auditrecv decode` makes it, with the host name and version fixed."""
    info = observer_info(decode_config("ecs"), hostname=GOLDEN_OBSERVER_HOST)
    return {key: str(value) for key, value in info.items()} | {"version": GOLDEN_VERSION}


@dataclass(frozen=True, slots=True)
class Fixture:
    relpath: str  # below the fixtures folder, with "/" separators: the name of its golden files
    kind: RecordKind

    @property
    def path(self) -> Path:
        return FIXTURES / self.relpath


def _record_kind(text: str | None) -> RecordKind | None:
    if text == "bsm":
        return "bsm"
    if text == "linux":
        return "linux"
    return None


def discover_fixtures() -> list[Fixture]:
    """Every file below fixtures/{bsm,linux} that `auditrecv decode` recognizes as a BSM trail or a Linux
    audit log by its first bytes, as it does (auditrecv.tools.read_input). Files it would only fall back to
    reading as Linux text (praudit output, JSON, YAML, protocol captures, lone tokens) are not inputs."""
    found: list[Fixture] = []
    for root in FIXTURE_ROOTS:
        for path in sorted((FIXTURES / root).rglob("*")):
            if not path.is_file():
                continue
            with path.open("rb") as f:
                kind = sniff_kind(f.read(SNIFF_BYTES))
            if kind is not None:
                found.append(Fixture(path.relative_to(FIXTURES).as_posix(), kind))
    return found


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_records(fixture: Fixture) -> list[tuple[int, bytes]]:
    """The fixture's raw records as `auditrecv decode` reads them: (file offset or line number, bytes)."""
    kind, items = read_input(str(fixture.path))
    if kind != fixture.kind:
        raise AssertionError(f"{fixture.relpath}: read as {kind}, discovered as {fixture.kind}")
    return list(items)


def _documents(schema: Schema) -> Callable[[Fixture, list[tuple[int, bytes]]], list[bytes]]:
    def make(fixture: Fixture, records: list[tuple[int, bytes]]) -> list[bytes]:
        return build_documents(
            fixture.kind,
            [payload for _, payload in records],
            schema=schema,
            received_ns=GOLDEN_RECEIVED_NS,
            host=GOLDEN_HOST,
            observer=golden_observer(),
        )

    return make


def _raw(fixture: Fixture, records: list[tuple[int, bytes]]) -> list[bytes]:
    # The label is the path below the fixtures folder: `cd fixtures && auditrecv decode --raw <relpath>`.
    return decode_raw(fixture.kind, records, label=fixture.relpath)


# output name -> how it is made; the name is the golden file's suffix (<relpath>.<output>.jsonl)
OUTPUTS: dict[str, Callable[[Fixture, list[tuple[int, bytes]]], list[bytes]]] = {
    "raw": _raw,
    "ecs": _documents("ecs"),
    "v1": _documents("auditrecv-v1"),
}


def golden_path(relpath: str, output: str) -> Path:
    return GOLDEN_DIR / f"{relpath}.{output}.jsonl"


@dataclass(frozen=True, slots=True)
class ManifestRow:
    """One golden file: the fixture it was made from (and that fixture's sha256), how many raw records
    `auditrecv decode` read from it, which output, and how many lines the golden file has."""

    fixture: str
    sha256: str
    kind: RecordKind
    records: int
    output: str
    golden: str  # path relative to tests/golden
    lines: int

    COLUMNS = ("fixture", "sha256", "kind", "records", "output", "golden", "lines")

    def to_tsv(self) -> str:
        return "\t".join(str(getattr(self, c)) for c in self.COLUMNS)


def read_manifest(path: Path = MANIFEST) -> list[ManifestRow]:
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or tuple(lines[0].split("\t")) != ManifestRow.COLUMNS:
        raise ValueError(f"{path}: not a golden manifest (header {ManifestRow.COLUMNS})")
    rows = []
    for line in lines[1:]:
        fixture, sha, kind_text, records, output, golden, count = line.split("\t")
        kind = _record_kind(kind_text)
        if kind is None:
            raise ValueError(f"{path}: {fixture}: unknown input kind {kind_text!r}")
        rows.append(ManifestRow(fixture, sha, kind, int(records), output, golden, int(count)))
    return rows


def generate(fixture: Fixture) -> Iterator[tuple[ManifestRow, list[bytes]]]:
    """Every output of one fixture, made now, with its manifest row."""
    records = read_records(fixture)
    sha = sha256_of(fixture.path)
    for output, make in OUTPUTS.items():
        lines = make(fixture, records)
        golden = golden_path(fixture.relpath, output).relative_to(GOLDEN_DIR).as_posix()
        yield ManifestRow(fixture.relpath, sha, fixture.kind, len(records), output, golden, len(lines)), lines


def write_goldens() -> list[ManifestRow]:
    """(Re)write every golden file and the manifest; delete golden files of fixtures that are gone."""
    rows: list[ManifestRow] = []
    written: set[Path] = set()
    for fixture in discover_fixtures():
        for row, lines in generate(fixture):
            path = GOLDEN_DIR / row.golden
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"".join(lines))
            written.add(path)
            rows.append(row)
    for root in FIXTURE_ROOTS:
        for stale in sorted((GOLDEN_DIR / root).rglob("*.jsonl")):
            if stale not in written:
                stale.unlink()
        for folder in sorted((GOLDEN_DIR / root).rglob("*"), reverse=True):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    MANIFEST.write_text("\n".join(["\t".join(ManifestRow.COLUMNS), *(r.to_tsv() for r in rows)]) + "\n", "utf-8")
    return rows


# ------------------------------------------------------------------------------------------ differences


def _flatten(value: object, prefix: str = "") -> dict[str, object]:
    """Dotted paths to leaves (list items as [i]), so two documents can be compared field by field."""
    if isinstance(value, dict) and value:
        out: dict[str, object] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for i, item in enumerate(value):
            out.update(_flatten(item, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def _short(value: object, width: int = 100) -> str:
    text = orjson.dumps(value).decode() if value is not _MISSING else "(absent)"
    return text if len(text) <= width else text[: width - 3] + "..."


_MISSING = object()


def field_diff(expected: bytes, actual: bytes, max_fields: int = 20) -> list[str]:
    """What differs between two JSON lines, one line per field: ``path: expected -> actual``."""
    try:
        want, got = _flatten(orjson.loads(expected)), _flatten(orjson.loads(actual))
    except orjson.JSONDecodeError as exc:
        return [f"not JSON ({exc}): expected {expected[:200]!r}, got {actual[:200]!r}"]
    keys = sorted(set(want) | set(got))
    changed = [k for k in keys if want.get(k, _MISSING) != got.get(k, _MISSING)]
    out = [f"  {k}: {_short(want.get(k, _MISSING))} -> {_short(got.get(k, _MISSING))}" for k in changed[:max_fields]]
    if len(changed) > max_fields:
        out.append(f"  ... and {len(changed) - max_fields} more fields")
    if not changed:  # same values, different bytes: key order, number or string formatting
        out.append(f"  same values, different text:\n  expected {expected[:300]!r}\n  actual   {actual[:300]!r}")
    return out


def describe_difference(name: str, expected: list[bytes], actual: list[bytes]) -> str | None:
    """None when equal; otherwise the first differing line with a field-level diff (never the whole file)."""
    if expected == actual:
        return None
    head = f"{name}: {len(actual)} lines made now, {len(expected)} in the golden file"
    for number, (want, got) in enumerate(itertools.zip_longest(expected, actual), start=1):
        if want == got:
            continue
        if want is None:
            return f"{head}; extra line {number} made now:\n  {got[:300]!r}"
        if got is None:
            return f"{head}; golden line {number} no longer made:\n  {want[:300]!r}"
        return f"{head}; first difference at line {number} (golden -> now):\n" + "\n".join(field_diff(want, got))
    return head  # unreachable: unequal lists differ somewhere


def split_lines(data: bytes) -> list[bytes]:
    """A golden file's lines, each with its newline, as the implementation returns them."""
    return data.splitlines(keepends=True)
