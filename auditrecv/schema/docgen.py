"""Renders docs/schema.md from the field list and the categorization tables.

``python -m auditrecv.schema.docgen > docs/schema.md``; a test fails when the file is stale, so the
documentation cannot drift from what the mappers emit and the templates map.
"""

from __future__ import annotations

import sys

from . import tables


def _prose(name: str) -> str:
    """Hand-written sections live beside the tables as Markdown."""
    return (tables.DATA / name).read_text(encoding="utf-8")


def _cell(text: str) -> str:
    return text.replace("|", "\\|") or "-"


def render() -> str:
    out = [_prose("doc_intro.md"), "## Fields\n"]
    out += ["| field | type | meaning | BSM source | Linux source |", "|---|---|---|---|---|"]
    for f in tables.fields():
        out.append(f"| `{f.name}` | {f.type} | {_cell(f.meaning)} | {_cell(f.bsm)} | {_cell(f.linux)} |")
    out.append("")
    out.append(_prose("doc_compat.md"))
    out.append(_prose("doc_categorization.md"))
    out.append("### Linux categorization table\n")
    out.append("| key | action | object | ECS category | ECS type | kind |")
    out.append("|---|---|---|---|---|---|")
    for key, row in tables.linux_categories().items():
        out.append(
            f"| `{key}` | {_cell(row.action)} | {_cell(row.object_type)} | {_cell(', '.join(row.category))} "
            f"| {_cell(', '.join(row.type))} | {_cell(row.kind or 'event')} |"
        )
    out.append("")
    out.append("### BSM categorization table\n")
    out.append("| event | action | object | ECS category | ECS type | direction |")
    out.append("|---|---|---|---|---|---|")
    for key, row in tables.bsm_categories().items():
        out.append(
            f"| `{key}` | {_cell(row.action)} | {_cell(row.object_type)} | {_cell(', '.join(row.category))} "
            f"| {_cell(', '.join(row.type))} | {_cell(row.direction)} |"
        )
    out.append("")
    out.append("### BSM fallback by audit class (action = event name without `AUE_`, lower case)\n")
    out.append("| class | ECS category | ECS type | object |")
    out.append("|---|---|---|---|")
    for key, row in tables.bsm_class_categories().items():
        out.append(f"| `{key}` | {', '.join(row.category)} | {', '.join(row.type)} | {_cell(row.object_type)} |")
    out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(render())
