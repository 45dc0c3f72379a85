#!/usr/bin/env python3
"""Regenerate the golden files (tests/golden/): decode output and documents of every BSM trail and Linux
audit log among the shared fixtures, made reproducible (fixed clock, host names and version).

    .venv/bin/python scripts/gen_goldens.py

Run it only when a difference is deliberate (a decoder or mapper change, a new fixture), review the diff,
and list every deliberate difference in the commit message. See tests/golden/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    sys.path.insert(0, str(REPO))
    from tests.golden.goldens import GOLDEN_DIR, MANIFEST, write_goldens

    rows = write_goldens()
    size = sum((GOLDEN_DIR / r.golden).stat().st_size for r in rows)
    fixtures = len({r.fixture for r in rows})
    print(
        f"wrote {len(rows)} golden files for {fixtures} fixtures ({size / 1e6:.2f} MB) and "
        f"{MANIFEST.relative_to(REPO)}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
