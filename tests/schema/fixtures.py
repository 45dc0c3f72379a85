"""Readers for the shared fixtures used by the schema tests (no YAML library: the go-libaudit case files
are one ``tests:`` mapping of literal block scalars)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.paths import LINUX_FIXTURES

AUCOALESCE = LINUX_FIXTURES / "third_party" / "go-libaudit" / "aucoalesce" / "testdata"
USERSPACE_LOGS = LINUX_FIXTURES / "third_party" / "audit-userspace-v3.0.9" / "auparse" / "test"


def linux_fixture_logs() -> list[Path]:
    """Every fixture file of audit record lines: the audit-userspace and go-libaudit logs and the lines
    fed to the real audisp-remote (the other capture files are hex dumps of the same lines)."""
    go_libaudit = LINUX_FIXTURES / "third_party" / "go-libaudit"
    return [
        *sorted(USERSPACE_LOGS.glob("*.log")),
        *sorted(go_libaudit.glob("**/*.log")),
        LINUX_FIXTURES / "audisp-remote" / "captures" / "input-events.log",
    ]


def read_case_file(path: Path) -> dict[str, list[str]]:
    """``tests: {name: |\\n    lines}`` -> {name: lines}; folded (>) scalars are joined with spaces."""
    cases: dict[str, list[str]] = {}
    current: list[str] | None = None
    folded = False
    for line in path.read_text(encoding="utf-8").split("\n"):
        body = line.strip()
        if line.startswith("  ") and not line.startswith("    ") and body.endswith((": |", ": >")):
            current = cases.setdefault(body[:-3].strip().strip("'\""), [])
            folded = body.endswith(">")
            continue
        if current is None or not line.startswith("    "):
            if body and not body.startswith("#"):
                current = None
            continue
        if folded and current:
            current[-1] += " " + line[4:]
        else:
            current.append(line[4:])
    return cases


def golden_cases() -> list[tuple[str, str, list[str], dict[str, Any]]]:
    """(distro file stem, test name, record lines, golden event) for every aucoalesce golden case."""
    out = []
    for golden in sorted(AUCOALESCE.glob("*.json.golden")):
        stem = golden.name[: -len(".json.golden")]
        lines = read_case_file(AUCOALESCE / f"{stem}.yaml")
        for case in json.loads(golden.read_text(encoding="utf-8")):
            out.append((stem, case["test_name"], lines[case["test_name"]], case["event"]))
    return out
