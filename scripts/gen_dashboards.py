"""Write the starter dashboards, deploy/dashboards/kibana.ndjson and opensearch-dashboards.ndjson, from
one description of their panels (PANELS below). tests/e2e/test_operator_queries.py reruns this with
--check, checks that every field a panel uses is in auditrecv's index template, and runs each panel's
query and aggregations against the embedded engines over indexed events.

The objects are written in the 7.10 shape, which OpenSearch Dashboards reads natively (it forked Kibana
7.10); the Kibana file marks them as Kibana's own sample data does (`coreMigrationVersion` 8.8.0, each
type's `typeMigrationVersion` 7.10.0), so that Kibana 8 and 9 import them and run their type migrations
from 7.10 on. Import: Kibana, Stack Management > Saved objects >
Import (or `POST /api/saved_objects/_import`); OpenSearch Dashboards, Dashboards Management > Saved
objects > Import. Both create the `auditrecv-*` index pattern they use.

    .venv/bin/python scripts/gen_dashboards.py [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "deploy" / "dashboards"
INDEX_PATTERN_ID = "auditrecv"
MIGRATION_VERSION = "7.10.0"

# Both daily indices and the data stream (search.mode = "data_stream").
INDEX_PATTERN = "auditrecv-*,logs-auditrecv-*"
# One file per product; they differ only in how the objects' versions are marked (see above).
FILES = ("kibana.ndjson", "opensearch-dashboards.ndjson")
KIBANA_CORE_MIGRATION_VERSION = "8.8.0"


def versioned(obj: dict[str, Any], product_file: str) -> dict[str, Any]:
    """The saved object marked the way its product expects."""
    if product_file == "kibana.ndjson":
        return obj | {"coreMigrationVersion": KIBANA_CORE_MIGRATION_VERSION, "typeMigrationVersion": MIGRATION_VERSION}
    return obj | {"migrationVersion": {obj["type"]: MIGRATION_VERSION}}


@dataclass(frozen=True)
class Panel:
    """One visualization: which documents (every filter must hold), and how they are split."""

    id: str
    title: str
    kind: str  # "histogram" (over time, split by `split`) or "table" (one row per combination of `rows`)
    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (field, any of these values); () = every document
    rows: tuple[str, ...] = ()
    split: str = ""
    # A bucket for documents without the field (keyword fields only: an ip or number field refuses it).
    missing: dict[str, str] = field(default_factory=dict)

    def kql(self) -> str:
        parts = []
        for name, values in self.filters:
            quoted = [f'"{v}"' for v in values]
            parts.append(f"{name}:{quoted[0]}" if len(quoted) == 1 else f"{name}:({' or '.join(quoted)})")
        return " and ".join(parts)

    def query_dsl(self) -> dict[str, Any]:
        """The same documents as `kql()`, as the Query DSL (what the tests run)."""
        clauses: list[dict[str, Any]] = [
            {"terms": {name: list(values)}} if len(values) > 1 else {"term": {name: values[0]}}
            for name, values in self.filters
        ]
        return {"bool": {"filter": clauses}}

    def fields(self) -> list[str]:
        return [name for name, _ in self.filters] + list(self.rows) + ([self.split] if self.split else [])


PANELS = (
    Panel("auditrecv-events-by-host", "Audit events over time by host", "histogram", split="host.name"),
    Panel(
        "auditrecv-events-by-zone",
        "Audit events over time by zone",
        "histogram",
        split="container.name",
        missing={"container.name": "(global zone, or not a zone)"},  # the global zone sets no container
    ),
    Panel(
        "auditrecv-failed-logins",
        "Failed logins by source address and host",
        "table",
        filters=(("event.category", ("authentication",)), ("event.outcome", ("failure",))),
        rows=("source.ip", "host.name"),  # no missing bucket on an ip field: the engine refuses one
    ),
    Panel(
        "auditrecv-executions-by-user",
        "Executions by login user, effective user and program",
        "table",
        filters=(("event.action", ("executed",)),),
        rows=("user.audit.id", "user.effective.id", "process.executable"),
        missing={"user.audit.id": "(none)"},
    ),
    Panel(
        "auditrecv-outbound-connections",
        "Outbound connections by process and destination",
        "table",
        filters=(("event.action", ("connected-to",)), ("network.direction", ("egress",))),
        rows=("process.executable", "destination.ip", "destination.port"),
        missing={"process.executable": "(pid only)"},
    ),
    Panel(
        "auditrecv-audit-config-changes",
        "Changes to the audit configuration",
        "table",
        filters=(
            ("event.category", ("configuration",)),
            ("event.action", ("changed-audit-configuration", "changed-auditd-configuration")),
        ),
        rows=("host.name", "event.action", "user.audit.id"),
        missing={"user.audit.id": "(none)"},
    ),
)

DASHBOARD_ID = "auditrecv-overview"
DASHBOARD_TITLE = "auditrecv: audit overview"


def _terms(agg_id: str, schema: str, name: str, panel: Panel, size: int) -> dict[str, Any]:
    params: dict[str, Any] = {"field": name, "size": size, "order": "desc", "orderBy": "1"}
    if name in panel.missing:
        params |= {"missingBucket": True, "missingBucketLabel": panel.missing[name]}
    return {"id": agg_id, "enabled": True, "type": "terms", "schema": schema, "params": params}


def vis_state(panel: Panel) -> dict[str, Any]:
    count = {"id": "1", "enabled": True, "type": "count", "schema": "metric", "params": {}}
    if panel.kind == "histogram":
        aggs = [
            count,
            {
                "id": "2",
                "enabled": True,
                "type": "date_histogram",
                "schema": "segment",
                "params": {"field": "@timestamp", "interval": "auto", "min_doc_count": 1, "extended_bounds": {}},
            },
            _terms("3", "group", panel.split, panel, 10),
        ]
        params: dict[str, Any] = {"type": "histogram", "addLegend": True, "legendPosition": "right"}
    else:
        aggs = [count] + [_terms(str(i + 2), "bucket", name, panel, 50) for i, name in enumerate(panel.rows)]
        params = {"perPage": 20, "showPartialRows": False, "showMetricsAtAllLevels": False}
    return {"title": panel.title, "type": panel.kind, "params": params, "aggs": aggs}


def aggregation_dsl(panel: Panel) -> dict[str, Any]:
    """What the panel asks the engine for, as a search body's "aggs" (the tests run it)."""
    names = [panel.split] if panel.kind == "histogram" else list(panel.rows)
    inner: dict[str, Any] = {}
    for depth, name in reversed(list(enumerate(names))):
        terms: dict[str, Any] = {"field": name, "size": 50}
        if name in panel.missing:
            terms["missing"] = panel.missing[name]
        inner = {f"level{depth}": {"terms": terms, **({"aggs": inner} if inner else {})}}
    if panel.kind == "histogram":
        return {"over_time": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1h"}, "aggs": inner}}
    return inner


def _search_source(query: str) -> str:
    return json.dumps(
        {
            "query": {"query": query, "language": "kuery"},
            "filter": [],
            "indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.index",
        },
        sort_keys=True,
    )


def saved_objects(index_pattern: str) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = [
        {
            "id": INDEX_PATTERN_ID,
            "type": "index-pattern",
            "attributes": {"title": index_pattern, "timeFieldName": "@timestamp"},
            "references": [],
        }
    ]
    for panel in PANELS:
        objects.append(
            {
                "id": panel.id,
                "type": "visualization",
                "attributes": {
                    "title": panel.title,
                    "description": f"auditrecv starter dashboard. Query: {panel.kql() or '(all events)'}",
                    "visState": json.dumps(vis_state(panel), sort_keys=True),
                    "uiStateJSON": "{}",
                    "version": 1,
                    "kibanaSavedObjectMeta": {"searchSourceJSON": _search_source(panel.kql())},
                },
                "references": [
                    {
                        "name": "kibanaSavedObjectMeta.searchSourceJSON.index",
                        "type": "index-pattern",
                        "id": INDEX_PATTERN_ID,
                    }
                ],
            }
        )
    panels_json = []
    for i, panel in enumerate(PANELS):
        width, height = (48, 12) if panel.kind == "histogram" else (24, 15)
        x = 0 if panel.kind == "histogram" else (i % 2) * 24
        panels_json.append(
            {
                "panelIndex": str(i + 1),
                "gridData": {"x": x, "y": i * 15, "w": width, "h": height, "i": str(i + 1)},
                "embeddableConfig": {},
                "panelRefName": f"panel_{i}",
                "version": MIGRATION_VERSION,
            }
        )
    objects.append(
        {
            "id": DASHBOARD_ID,
            "type": "dashboard",
            "attributes": {
                "title": DASHBOARD_TITLE,
                "description": "Events by host and zone, failed logins, executions, outbound connections, "
                "changes to the audit configuration",
                "panelsJSON": json.dumps(panels_json, sort_keys=True),
                "optionsJSON": json.dumps({"useMargins": True, "hidePanelTitles": False}, sort_keys=True),
                "timeRestore": True,
                "timeFrom": "now-24h",
                "timeTo": "now",
                "refreshInterval": {"pause": False, "value": 60000},
                "version": 1,
                "kibanaSavedObjectMeta": {
                    "searchSourceJSON": json.dumps({"query": {"query": "", "language": "kuery"}, "filter": []})
                },
            },
            "references": [
                {"name": f"panel_{i}", "type": "visualization", "id": panel.id} for i, panel in enumerate(PANELS)
            ],
        }
    )
    return objects


def render(product_file: str) -> str:
    objects = saved_objects(INDEX_PATTERN)
    return "".join(json.dumps(versioned(o, product_file), sort_keys=True) + "\n" for o in objects)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file differs from what this writes")
    args = parser.parse_args()
    stale = []
    for name in FILES:
        path, text = OUT / name, render(name)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print(f"out of date: {', '.join(stale)}: rerun scripts/gen_dashboards.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
