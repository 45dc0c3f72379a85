"""The chaos suite runs against one real engine: the embedded OpenSearch (or ``AUDITRECV_ES_URL``).

One engine, not both flavours, keeps the whole suite within a few minutes; the sink's behaviour per
flavour is covered by tests/sink and tests/e2e.
"""

from __future__ import annotations

import os

import pytest

from tests.infra.engine import SearchEngine


@pytest.fixture(scope="session")
def chaos_engine(request: pytest.FixtureRequest) -> SearchEngine:
    name = "external_engine" if os.environ.get("AUDITRECV_ES_URL", "").strip() else "opensearch_engine"
    engine: SearchEngine = request.getfixturevalue(name)
    return engine
