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

from .bsm_map import bsm_to_ecs
from .compat import to_compat_v1
from .deadletter import dead_letter_doc
from .ids import bsm_id_parts, document_id, linux_id_parts
from .limits import limit_document, within_limits_fast
from .linux_map import linux_to_ecs
from .templates import build_templates

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
