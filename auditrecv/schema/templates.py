"""Index templates (composable + component) and index naming.

Mappings are explicit for every field in ``data/fields.tsv`` so the engine never guesses a type from the
first document it sees (a uid guessed as ``long`` rejects every later ``"unset"``). ECS types that an
engine lacks are translated (sink-and-gss.md A7): OpenSearch has ``flat_object`` (>= 2.7) instead of
``flattened``, ``match_only_text`` only from 2.12; Elasticsearch 7.x is treated as the OSS build, which
has none of the x-pack types.
"""

from __future__ import annotations

import re
from typing import Any

from auditrecv.config import Search
from auditrecv.schema.retention import lifecycle_policies, lifecycle_settings
from auditrecv.sink.naming import index_pattern, main_index_pattern, template_names, template_priority

from . import tables

__all__ = ["build_mappings", "build_templates", "field_mapping", "index_pattern"]

# Plus the pattern's specificity (sink.naming.template_priority), at most 299: above the built-in
# logs-*-* template (priority 100, A6.3), below the dead-letter templates (300 and up).
TEMPLATE_PRIORITY = 200
KEYWORD_IGNORE_ABOVE = 1024
FLAT_IGNORE_ABOVE = 4096


def _version_tuple(version: str) -> tuple[int, int]:
    nums = [int(n) for n in re.findall(r"\d+", version or "")[:2]]
    while len(nums) < 2:
        nums.append(0)
    return nums[0], nums[1]


def field_mapping(ecs_type: str, flavor: str, version: str) -> dict[str, Any]:
    """Engine mapping for one ECS type on this engine flavor and version."""
    major, minor = _version_tuple(version)
    opensearch = flavor == "opensearch"
    es8 = flavor == "elasticsearch" and major >= 8
    if ecs_type == "keyword":
        return {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE}
    if ecs_type == "stored_keyword":
        return {"type": "keyword", "index": False, "doc_values": False}
    if ecs_type in ("long", "ip", "boolean", "date_nanos", "date"):
        return {"type": ecs_type}
    if ecs_type == "match_only_text":
        if es8 or (opensearch and (major, minor) >= (2, 12)):
            return {"type": "match_only_text"}
        return {"type": "text"}
    if ecs_type == "wildcard":
        # OpenSearch's wildcard version is unverified (A7): keyword is the safe choice there
        if es8:
            return {"type": "wildcard"}
        return {"type": "keyword", "ignore_above": 8191}
    if ecs_type == "flattened":
        if es8:
            return {"type": "flattened", "ignore_above": FLAT_IGNORE_ABOVE}
        if opensearch and (major, minor) >= (2, 7):
            return {"type": "flat_object"}
        return {"type": "object", "enabled": False}
    raise ValueError(f"unknown field type {ecs_type!r} in fields.tsv")


def build_mappings(flavor: str, version: str) -> dict[str, Any]:
    """The ``mappings`` body: explicit properties, plus dynamic templates for the open detail maps."""
    properties: dict[str, Any] = {}
    dynamic_templates: list[dict[str, Any]] = []
    for f in tables.fields():
        if f.name.endswith(".*"):
            parent = f.name[:-2]
            dynamic_templates.append(
                {
                    parent.replace(".", "_") + "_fields": {
                        "path_match": f.name,
                        "mapping": field_mapping(f.type, flavor, version),
                    }
                }
            )
            _insert(properties, parent, {"type": "object"})
            continue
        _insert(properties, f.name, field_mapping(f.type, flavor, version))
    # anything else a later version or the enrichment stage adds: text as keyword, never as date
    dynamic_templates.append(
        {
            "strings_as_keyword": {
                "match_mapping_type": "string",
                "mapping": {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE},
            }
        }
    )
    return {
        "dynamic": True,
        "date_detection": False,
        "numeric_detection": False,
        "dynamic_templates": dynamic_templates,
        "properties": properties,
    }


def _insert(properties: dict[str, Any], dotted: str, mapping: dict[str, Any]) -> None:
    parts = dotted.split(".")
    node = properties
    for part in parts[:-1]:
        entry = node.setdefault(part, {"properties": {}})
        entry.setdefault("properties", {})
        node = entry["properties"]
    existing = node.get(parts[-1])
    if existing is not None and "properties" in existing:
        existing.update({k: v for k, v in mapping.items() if k != "type"})
        return
    node[parts[-1]] = mapping


def build_templates(flavor: str, version: str, settings: Search) -> dict[str, dict[str, Any]]:
    """Component and composable index templates for this engine; the sink PUTs them as given.

    Returns ``{"component_templates": {name: body}, "index_templates": {name: body}}``, named after the
    index naming (``sink.naming.template_names``) so receivers writing different indices keep theirs;
    with ``settings.retention`` also the ILM or ISM policy (``schema.retention``) the templates attach.
    """
    from . import __version__ as schema_version

    meta = {"managed_by": "auditrecv", "schema": settings.schema, "schema_version": schema_version}
    index_settings: dict[str, Any] = {"index": {"mapping": {"total_fields": {"limit": 4000}}}}
    if settings.number_of_replicas >= 0:
        index_settings["index"]["number_of_replicas"] = settings.number_of_replicas
    index_settings["index"]["codec"] = "best_compression"
    index_settings["index"].update(lifecycle_settings(flavor, settings))
    if settings.mode == "data_stream" and flavor == "elasticsearch" and _version_tuple(version) >= (8, 15):
        # Elasticsearch 9 (and 8.x with cluster.logsdb.enabled) turns every new logs-*-* data stream index
        # whose settings name no index.mode into logsdb, whatever template won: a synthetic _source, indices
        # sorted by host.name. An audit trail keeps its documents as sent.
        index_settings["index"]["mode"] = "standard"
    mappings = v1_mappings() if settings.schema == "auditrecv-v1" else build_mappings(flavor, version)
    names = template_names(settings)
    mappings_name = names.mappings_component(settings.schema)
    components = {
        mappings_name: {"template": {"mappings": mappings}, "_meta": meta},
        names.settings_component: {"template": {"settings": index_settings}, "_meta": meta},
    }
    pattern = main_index_pattern(settings)
    index_template: dict[str, Any] = {
        "index_patterns": [pattern],
        "composed_of": [names.settings_component, mappings_name],
        "priority": template_priority(pattern, TEMPLATE_PRIORITY),
        "_meta": meta,
    }
    if settings.mode == "data_stream":
        index_template["data_stream"] = {}
    # the dead-letter indices (search.dead_letter_index) get the sink's own template (priority 300+)
    templates: dict[str, Any] = {names.index_template: index_template}
    return {"component_templates": components, "index_templates": templates, **lifecycle_policies(flavor, settings)}


def v1_mappings() -> dict[str, Any]:
    """Mappings for ``auditrecv-v1`` documents (the original Erlang auditrecv's shape, written by the
    native core): the fields whose types matter explicit, the rest keyword."""
    kw = {"type": "keyword", "ignore_above": 1024}
    ident = {"type": "long"}
    subject = {
        "properties": {
            "audit_id": ident,
            "uid": ident,
            "gid": ident,
            "ruid": ident,
            "rgid": ident,
            "pid": ident,
            "session_id": ident,
            "terminal": {
                "properties": {"ip": kw, "local_port": ident, "remote_port": ident, "dev": ident, "port_id": kw}
            },
        }
    }
    return {
        "dynamic": True,
        "date_detection": False,
        "dynamic_templates": [
            {"args_as_keyword": {"path_match": "args.*", "mapping": kw}},
            {"strings_as_keyword": {"match_mapping_type": "string", "mapping": kw}},
        ],
        "properties": {
            "@timestamp": {"type": "date_nanos"},
            "time": {"type": "date_nanos"},
            "version": kw,
            "event": kw,
            "from": kw,
            "zonename": kw,
            "zonealias": kw,
            "path": kw,
            "exec_args": kw,
            "exec_env": {"type": "object", "enabled": False},
            "args": {"type": "object"},
            "return": ident,
            "errno": kw,
            "attributes": {
                "properties": {"mode_octal": kw, "uid": ident, "gid": ident, "fsid": kw, "inode_hex": kw, "devid": kw}
            },
            "subject": subject,
            "process": subject,
            "used_privs": {"properties": {"privs": kw, "success": ident}},
            "used_auth": kw,
            "fmri": kw,
            "text": kw,
            "privs": {"type": "object"},
            "other_tokens": {"type": "object", "enabled": False},
            "decode_errors": kw,
            "records": {"type": "object", "enabled": False},
            "keys": kw,
            "exe": kw,
            "node": kw,
            "tags": kw,
            # documents cut to fit [limits] (native/src/ecs/limits.rs), as in the ECS shape
            "auditrecv": {
                "properties": {
                    "truncated": {"type": "boolean"},
                    "truncation": {"properties": {"document_bytes": ident, "raw_bytes": ident, "fields": kw}},
                    "raw_base64": {"type": "keyword", "index": False, "doc_values": False},
                    "raw_kind": kw,
                }
            },
        },
    }
