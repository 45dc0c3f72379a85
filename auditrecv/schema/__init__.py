"""Schema stage: decoded BSM records and Linux events -> ECS documents (and the v1 compatibility shape),
categorization tables, deterministic document ids, index templates and index naming.

Public API::

    bsm_to_ecs(record: BsmRecord, source: Source, observer: dict, *, received_ns: int) -> dict
    linux_to_ecs(event: LinuxEvent | dict, source: Source, observer: dict, *, received_ns=None) -> dict
    dead_letter_doc(raw: bytes, source: Source, error: str, kind: str, *, observer=None, received_ns=None) -> dict
    limit_document(doc, raw: bytes, kind: str, limits: Limits) -> dict   (within_limits_fast: the cheap gate)
    to_compat_v1(decoded: BsmRecord | LinuxEvent | dict, source, *, received_ns=None, zonealias=None) -> dict
    document_id(kind: str, source: Source, raw_parts: Iterable[bytes]) -> str
    bsm_id_parts(record: BsmRecord) -> list[bytes];  linux_id_parts(event) -> list[bytes]
    build_templates(flavor: str, version: str, settings: Search) -> {"component_templates", "index_templates"}
"""

from __future__ import annotations

__version__ = "1"  # bump when the document shape changes (stored in the templates' _meta)

import importlib
from typing import Any

# The Python mappers are no longer used by the package (the native core writes every document); they are
# loaded only when asked for by name (tests), so importing `auditrecv.schema.templates` loads none of them.
_LAZY = {
    "bsm_to_ecs": "bsm_map",
    "to_compat_v1": "compat",
    "dead_letter_doc": "deadletter",
    "bsm_id_parts": "ids",
    "document_id": "ids",
    "linux_id_parts": "ids",
    "limit_document": "limits",
    "within_limits_fast": "limits",
    "linux_to_ecs": "linux_map",
    "build_templates": "templates",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


__all__ = [
    "bsm_id_parts",
    "bsm_to_ecs",
    "build_templates",
    "dead_letter_doc",
    "document_id",
    "limit_document",
    "linux_id_parts",
    "linux_to_ecs",
    "to_compat_v1",
    "within_limits_fast",
]
