"""Fixture readers for the Linux decoder tests (no YAML library needed: the go-libaudit case files use
one flat ``tests:`` mapping of literal ``|`` or folded ``>`` block scalars)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.paths import LINUX_FIXTURES

GO_LIBAUDIT = LINUX_FIXTURES / "third_party" / "go-libaudit"
USERSPACE = LINUX_FIXTURES / "third_party" / "audit-userspace-v3.0.9"
REFERENCE = LINUX_FIXTURES / "reference-outputs"
CAPTURES = LINUX_FIXTURES / "audisp-remote" / "captures"


def read_cases(path: Path) -> dict[str, list[str]]:
    """go-libaudit aucoalesce case file -> {test name: record lines}."""
    cases: dict[str, list[str]] = {}
    current: list[str] | None = None
    folded = False
    for line in path.read_text().split("\n"):
        stripped = line.strip()
        if line.startswith("  ") and not line.startswith("    ") and stripped.endswith((": |", ": >")):
            name = stripped[:-3].strip().strip("\"'")
            current = cases.setdefault(name, [])
            folded = stripped.endswith(">")
            continue
        if current is None or not line.startswith("    "):
            if stripped and not stripped.startswith("#"):
                current = None
            continue
        text = line[4:]
        if folded and current:
            current[-1] += " " + text
        else:
            current.append(text)
    return cases


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """One JSON object per line."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
