"""Elasticsearch/OpenSearch sink: `open_indexer` for the service; `contract.py`: what other stages see."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from auditrecv.config import Search
from auditrecv.sink.bulk import BulkIndexer
from auditrecv.sink.contract import (
    BulkBatch,
    BulkMetrics,
    EngineAuthError,
    EngineInfo,
    EngineStatus,
    Indexer,
    Requester,
    Result,
    ServiceIndexer,
    Settlement,
    SinkError,
    bulk_lines,
)
from auditrecv.sink.engine import (
    TemplateError,
    dead_letter_template,
    detect_engine,
    install_templates,
    parse_engine_info,
)
from auditrecv.sink.naming import format_index, index_for, index_pattern
from auditrecv.sink.transport import RetryPolicy

__all__ = [
    "BulkBatch",
    "BulkIndexer",
    "BulkMetrics",
    "EngineAuthError",
    "EngineInfo",
    "EngineStatus",
    "Indexer",
    "Requester",
    "Result",
    "RetryPolicy",
    "ServiceIndexer",
    "Settlement",
    "SinkError",
    "TemplateError",
    "bulk_lines",
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


def schema_templates(settings: Search) -> Callable[[EngineInfo], Mapping[str, Any]]:
    """The schema package's template builder bound to `settings`."""
    from auditrecv.schema.templates import build_templates  # the schema package imports sink.naming

    return lambda info: build_templates(info.flavor, info.version, settings)


async def open_indexer(
    settings: Search,
    templates_for: Callable[[EngineInfo], Mapping[str, Any]] | None = None,
    *,
    policy: RetryPolicy | None = None,
) -> BulkIndexer:
    """An open indexer that detects the engine and installs templates (`templates_for`, by default the
    schema package's) in the background: the service starts with the engine down; indexing waits."""
    idx = BulkIndexer(settings, policy=policy)
    await idx.open()
    idx.start_setup(templates_for if templates_for is not None else schema_templates(settings))
    return idx
