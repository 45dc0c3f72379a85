"""Elasticsearch/OpenSearch sink: bulk `create` with spool-aware outcomes, engine detection, templates.

Entry points: `open_indexer(settings)` for the service (detects the engine and installs templates in
the background), `BulkIndexer` / `BulkDoc` / `BulkOutcome` for indexing, `index_for` for document placement.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from auditrecv.config import Search
from auditrecv.sink.bulk import BulkIndexer
from auditrecv.sink.contract import (
    BulkDoc,
    BulkMetrics,
    BulkOutcome,
    EngineInfo,
    EngineStatus,
    Indexer,
    Requester,
    Result,
    ServiceIndexer,
)
from auditrecv.sink.engine import (
    TemplateError,
    dead_letter_template,
    detect_engine,
    install_templates,
    parse_engine_info,
)
from auditrecv.sink.http import EngineAuthError, RetryPolicy, SinkError
from auditrecv.sink.naming import format_index, index_for, index_pattern

__all__ = [
    "BulkDoc",
    "BulkIndexer",
    "BulkMetrics",
    "BulkOutcome",
    "EngineAuthError",
    "EngineInfo",
    "EngineStatus",
    "Indexer",
    "Requester",
    "Result",
    "RetryPolicy",
    "ServiceIndexer",
    "SinkError",
    "TemplateError",
    "dead_letter_template",
    "detect_engine",
    "format_index",
    "index_for",
    "index_pattern",
    "install_templates",
    "open_indexer",
    "parse_engine_info",
    "schema_templates",
]

log = logging.getLogger("auditrecv.sink")


def schema_templates(settings: Search) -> Callable[[EngineInfo], Mapping[str, Any]] | None:
    """The schema package's template builder bound to `settings`, or None if it is not there yet."""
    try:
        from auditrecv.schema.templates import build_templates  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        log.warning("auditrecv.schema.templates not available: installing the dead-letter template only")
        return None

    def build(info: EngineInfo) -> Mapping[str, Any]:
        result: Mapping[str, Any] = build_templates(info.flavor, info.version, settings)
        return result

    return build


async def open_indexer(
    settings: Search,
    templates_for: Callable[[EngineInfo], Mapping[str, Any]] | None = None,
    *,
    policy: RetryPolicy | None = None,
) -> BulkIndexer:
    """An open indexer whose engine detection and template installation run in the background.

    Returns at once (the service must start even with the engine down); `index` waits until setup is
    done. `templates_for` defaults to the schema package's `build_templates`. Close with `close()`.
    """
    idx = BulkIndexer(settings, policy=policy)
    await idx.open()
    idx.start_setup(templates_for if templates_for is not None else schema_templates(settings))
    return idx
