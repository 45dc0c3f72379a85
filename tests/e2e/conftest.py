"""The end-to-end tests run against one engine: the embedded OpenSearch 2.19 (or ``AUDITRECV_ES_URL``).

They exercise the receiver, spool and pipeline around the sink, which behave the same whatever answers the
bulk requests; what differs between engines is the sink's contract, which tests/sink checks on every engine
(``every_engine``). One engine keeps the whole suite within its time budget on a 2-core machine.
"""

from __future__ import annotations

import os

import pytest

from tests.infra.engine import SearchEngine


@pytest.fixture(scope="session")
def search_engine(request: pytest.FixtureRequest) -> SearchEngine:
    name = "external_engine" if os.environ.get("AUDITRECV_ES_URL", "").strip() else "opensearch_engine"
    engine: SearchEngine = request.getfixturevalue(name)
    return engine
