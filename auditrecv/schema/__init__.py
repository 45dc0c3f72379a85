"""Schema stage, Python side: the document shape as data (``data/*.tsv``, read by ``tables``; the native
core embeds the same files), the index templates that map it (``templates.build_templates``) and
docs/schema.md (``docgen``). The documents themselves are written by the native core
(native/src/ecs/: ECS and ``auditrecv-v1`` mapping, document ids, dead letters, [limits] cutting).
"""

from __future__ import annotations

from typing import Any

__version__ = "1"  # bump when the document shape changes (stored in the templates' _meta)


def __getattr__(name: str) -> Any:
    """``build_templates`` on first use: templates imports the sink's naming, which must not load at import."""
    if name == "build_templates":
        from .templates import build_templates

        return build_templates
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["build_templates"]
