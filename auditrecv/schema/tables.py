"""The schema stage's data files (field list, categorization tables), loaded once at import.

Tables are data, not code, so a categorization can be corrected or extended without touching the
mappers, and docs/schema.md and the index templates are generated from the same field list the
mappers are tested against.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA = Path(__file__).with_name("data")


def _rows(name: str) -> list[dict[str, str]]:
    """Rows of a TSV data file as dicts keyed by its header line; comments and blanks skipped."""
    header: list[str] | None = None
    rows: list[dict[str, str]] = []
    for line in (DATA / name).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split("\t")
        if header is None:
            header = cells
            continue
        cells += [""] * (len(header) - len(cells))
        rows.append(dict(zip(header, cells, strict=False)))
    return rows


def _list(cell: str) -> list[str]:
    return [c.strip() for c in cell.split(",") if c.strip()]


@dataclass(frozen=True, slots=True)
class Field:
    """One emitted field: the template mapping and the documentation row come from it."""

    name: str
    type: str
    meaning: str
    bsm: str
    linux: str


@dataclass(frozen=True, slots=True)
class Category:
    """How one syscall, record type or BSM event is summarised and categorized."""

    action: str
    object_type: str
    object_primary: list[str]
    object_secondary: list[str]
    kind: str
    category: list[str]
    type: list[str]
    direction: str


@cache
def fields() -> list[Field]:
    return [Field(r["field"], r["type"], r["meaning"], r["bsm"], r["linux"]) for r in _rows("fields.tsv")]


@cache
def linux_categories() -> dict[str, Category]:
    """Key ``syscall:<name>`` / ``type:<RECORD_TYPE>`` -> Category."""
    out: dict[str, Category] = {}
    for r in _rows("linux_categories.tsv"):
        out[r["key"]] = Category(
            action=r["action"],
            object_type=r["object_type"],
            object_primary=_list(r["object_primary"]),
            object_secondary=_list(r["object_secondary"]),
            kind=r["kind"],
            category=_list(r["category"]),
            type=_list(r["type"]),
            direction=r["direction"],
        )
    return out


@cache
def bsm_categories() -> dict[str, Category]:
    """BSM event name -> Category (object primary/secondary are chosen by object kind in code)."""
    return {
        r["event"]: Category(
            action=r["action"],
            object_type=r["object"],
            object_primary=[],
            object_secondary=[],
            kind=r["kind"],
            category=_list(r["category"]),
            type=_list(r["type"]),
            direction=r["direction"],
        )
        for r in _rows("bsm_categories.tsv")
    }


@cache
def bsm_class_categories() -> dict[str, Category]:
    """Audit class name -> fallback Category (action left empty: derived from the event name)."""
    return {
        r["class"]: Category(
            action="",
            object_type=r["object"],
            object_primary=[],
            object_secondary=[],
            kind="",
            category=_list(r["category"]),
            type=_list(r["type"]),
            direction="",
        )
        for r in _rows("bsm_class_categories.tsv")
    }
