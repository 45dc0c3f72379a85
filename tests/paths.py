"""Where the shared, third-party fixtures live (beside the checkout, never inside it)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AUDITRECV_SHARED", REPO.parent / "shared"))
FIXTURES = SHARED / "fixtures"
BSM_FIXTURES = FIXTURES / "bsm"
LINUX_FIXTURES = FIXTURES / "linux"
