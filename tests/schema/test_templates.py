"""Templates map every emitted field explicitly; engine type translation; index naming; docs are current."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from auditrecv.config import Limits, Search
from auditrecv.schema import build_templates, tables
from auditrecv.schema.docgen import render
from auditrecv.schema.templates import index_pattern as template_index_pattern
from auditrecv.sink import dead_letter_template, index_for
from auditrecv.sink.engine import DEAD_LETTER_PRIORITY
from auditrecv.sink.naming import index_pattern, template_names
from auditrecv.spool.record import Source
from auditrecv.tools import decode_config, file_documents
from tests.golden.native_core import bsm_documents, bsm_records, linux_documents, raw_bytes
from tests.paths import BSM_FIXTURES, REPO
from tests.schema import bsm_build as b
from tests.schema.fixtures import golden_cases

OBS = {"hostname": "rx", "name": "auditrecv-test", "version": "0.1.0"}
SRC = Source("audit_remote", "192.0.2.7", 40001, "krb5", "host/cn1.example.com@EXAMPLE.COM", True, "main")


def limited_document(raw: bytes, limits: Limits) -> dict[str, Any]:
    """The document of a BSM record cut to fit [limits], as `auditrecv decode` makes it."""
    cfg = dataclasses.replace(decode_config("ecs"), limits=limits)
    ((_, built),) = file_documents("bsm", [(0, raw)], cfg=cfg, source=SRC, observer=OBS, received_ns=1)
    assert built.doc is not None or built.source is not None
    return built.doc if built.doc is not None else json.loads(built.source)


def all_fixture_docs() -> list[dict[str, Any]]:
    """Every document the fixtures produce (native core, as the pipeline builds them): hand-built illumos,
    OpenBSM trails, Linux goldens, dead letters, a document cut to fit [limits]."""
    raws = list(b.ALL.values())
    for name in ("plaso/apple.bsm", "plaso/openbsm.bsm", "openbsm/samples/execve-long-args.trail"):
        raws += [raw_bytes(r) for r in bsm_records((BSM_FIXTURES / name).read_bytes())]
    raws.append(b"\x14\x00\x00")  # a dead letter: truncated header
    docs = [doc for _, doc, _ in bsm_documents(raws, source=SRC, observer=OBS, received_ns=1) if doc is not None]
    assert len(docs) == len(raws)
    linux_src = Source("audisp_remote", "192.0.2.9", 5000)
    for _, _, lines, _ in golden_cases():
        docs += [doc for _, doc in linux_documents(lines, source=linux_src, observer=OBS, received_ns=1)]
    # an undecodable line, and a time beyond what @timestamp holds (once a dead letter: a year beyond 9999;
    # the BSM dead letter above has every dead-letter field)
    odd = ["garbage line", "type=SYSCALL msg=audit(253402300800.000:1): x=1"]
    docs += [doc for _, doc in linux_documents(odd, source=linux_src, observer=OBS, received_ns=1)]
    assert docs[-1]["tags"] == ["value_out_of_range"]
    docs.append(limited_document(b.ALL["execve_zone"], Limits(max_tokens=2)))
    assert docs[-1]["auditrecv"]["truncated"]
    return docs


def leaf_paths(value: Any, prefix: str, stop: set[str]) -> Iterator[str]:
    if prefix in stop:
        yield prefix
        return
    if isinstance(value, dict):
        for key, child in value.items():
            yield from leaf_paths(child, f"{prefix}.{key}" if prefix else key, stop)
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for child in value:
            yield from leaf_paths(child, prefix, stop)
    else:
        yield prefix


def test_every_emitted_field_is_in_the_field_list() -> None:
    fields = {f.name: f.type for f in tables.fields()}
    stop = {name for name, kind in fields.items() if kind == "flattened"}
    dynamic = tuple(name[:-1] for name in fields if name.endswith(".*"))
    emitted: set[str] = set()
    for doc in all_fixture_docs():
        for path in leaf_paths(doc, "", stop):
            emitted.add(path)
            assert path in fields or path.startswith(dynamic), f"{path} is emitted but not in fields.tsv"
    # and the list is not padded with fields nothing emits (enrichment-only ones excepted)
    unused = {
        name
        for name, f in ((f.name, f) for f in tables.fields())
        if name not in emitted
        and not name.endswith(".*")
        and "enrichment" not in f.bsm
        and not name.startswith("observer.ip")
    }
    assert (
        unused
        <= {
            "process.parent.pid",
            "process.env_vars",
            "process.working_directory",
            "user.name",
            "user.group.name",
            "user.effective.name",
            "user.effective.group.name",
            "user.audit.name",
            "user.target.id",
            "user.target.name",
            "group.name",
            "source.domain",
            "destination.address",
            "network.transport",
            "event.sequence",
            "auditd.lost_before",
            "auditd.error",
            "auditd.node",
            "bsm.host",
            "bsm.authorizations_used",
            "process.args_count",
            "labels.dialect",
            "bsm.modifier_names",
            "bsm.tokens_full",
            "auditd.records_full",
            "error.type",
            "event.reason",
            "bsm.errors",
            "file.target_path",
        }
        | emitted
    ), sorted(unused)


def _mapping_at(mappings: dict[str, Any], dotted: str) -> dict[str, Any]:
    node: dict[str, Any] = {"properties": mappings["properties"]}
    for part in dotted.split("."):
        node = node["properties"][part]
    return node


@pytest.mark.parametrize(
    ("flavor", "version", "flattened", "text", "wildcard"),
    [
        ("elasticsearch", "8.15.0", {"type": "flattened", "ignore_above": 4096}, "match_only_text", "wildcard"),
        ("elasticsearch", "7.17.29", {"type": "object", "enabled": False}, "text", "keyword"),
        ("opensearch", "2.19.1", {"type": "flat_object"}, "match_only_text", "keyword"),
        ("opensearch", "2.9.0", {"type": "flat_object"}, "text", "keyword"),
        ("opensearch", "2.5.0", {"type": "object", "enabled": False}, "text", "keyword"),
        ("opensearch", "1.3.19", {"type": "object", "enabled": False}, "text", "keyword"),
    ],
)
def test_types_are_translated_per_engine(
    flavor: str, version: str, flattened: dict[str, Any], text: str, wildcard: str
) -> None:
    out = build_templates(flavor, version, Search(number_of_replicas=0))
    mappings = out["component_templates"]["auditrecv-ecs-mappings"]["template"]["mappings"]
    assert _mapping_at(mappings, "bsm.tokens") == flattened
    assert _mapping_at(mappings, "message")["type"] == text
    assert _mapping_at(mappings, "process.command_line")["type"] == wildcard
    assert _mapping_at(mappings, "@timestamp") == {"type": "date_nanos"}
    assert _mapping_at(mappings, "source.ip") == {"type": "ip"}
    assert _mapping_at(mappings, "user.id") == {"type": "keyword", "ignore_above": 1024}
    assert _mapping_at(mappings, "process.pid") == {"type": "long"}
    assert _mapping_at(mappings, "event.original") == {"type": "keyword", "index": False, "doc_values": False}
    settings = out["component_templates"]["auditrecv-settings"]["template"]["settings"]
    assert settings["index"]["number_of_replicas"] == 0


def test_daily_and_data_stream_templates() -> None:
    daily = build_templates("opensearch", "2.19.1", Search())
    tpl = daily["index_templates"]["auditrecv"]
    assert tpl["index_patterns"] == ["auditrecv-*"]
    assert 100 < tpl["priority"] < DEAD_LETTER_PRIORITY and "data_stream" not in tpl
    assert tpl["composed_of"] == ["auditrecv-settings", "auditrecv-ecs-mappings"]
    daily_settings = daily["component_templates"]["auditrecv-settings"]["template"]["settings"]
    assert "number_of_replicas" not in daily_settings["index"]
    assert set(daily["index_templates"]) == {"auditrecv"}  # the sink owns the dead-letter template
    stream_settings = Search(mode="data_stream", data_stream="logs-audit-prod")
    stream = build_templates("elasticsearch", "8.15.0", stream_settings)
    (name,) = stream["index_templates"]
    assert name == template_names(stream_settings).index_template == "logs-audit-prod"  # named after the stream
    stpl = stream["index_templates"][name]
    assert stpl["index_patterns"] == ["logs-audit-prod"] and stpl["data_stream"] == {}
    assert stpl["composed_of"] == [f"{name}-settings", f"{name}-ecs-mappings"]


def test_default_configuration_keeps_the_template_names_existing_clusters_have() -> None:
    names = template_names(Search())
    assert (names.index_template, names.dead_letter) == ("auditrecv", "auditrecv-dead-letter")
    templates = build_templates("opensearch", "2.19.1", Search(schema="auditrecv-v1"))
    assert set(templates["component_templates"]) == {"auditrecv-settings", "auditrecv-v1-mappings"}


def test_template_names_follow_the_index_naming() -> None:
    """Two receivers with different index patterns on one cluster must not overwrite each other's
    templates (issue 14, defect 9): each pattern gets its own names, and an explicit name wins."""
    a = Search(index="audit-a-%Y.%m.%d")
    b = Search(index="audit-a-x-%Y.%m.%d", dead_letter_index="audit-a-x-dlq-%Y.%m")
    ta, tb = build_templates("opensearch", "2.19.1", a), build_templates("opensearch", "2.19.1", b)
    assert set(ta["index_templates"]) == {"audit-a"}
    assert set(tb["index_templates"]) == {"audit-a-x"}
    assert not set(ta["component_templates"]) & set(tb["component_templates"])
    assert ta["index_templates"]["audit-a"]["composed_of"] == ["audit-a-settings", "audit-a-ecs-mappings"]
    # Overlapping patterns cannot share a priority (the engine refuses that): the more specific wins.
    assert tb["index_templates"]["audit-a-x"]["priority"] > ta["index_templates"]["audit-a"]["priority"]
    assert template_names(b).dead_letter == "audit-a-x-dlq-dead-letter"
    assert dead_letter_template(b)["priority"] > DEAD_LETTER_PRIORITY
    # Patterns that are not "<stem>-*" still never share a name.
    odd = {template_names(Search(index=p)).index_template for p in ("audit-%Y-x-%m", "audit-%Y-x", "audit_%Y")}
    assert len(odd) == 3
    explicit = template_names(Search(index="audit-a-%Y.%m.%d", template_name="site1"))
    assert (explicit.index_template, explicit.dead_letter) == ("site1", "site1-dead-letter")


def test_one_index_pattern_for_templates_and_placement() -> None:
    """schema.templates and sink.naming used to disagree on audit-%Y-x-%m (audit-* vs audit-*-x-*)."""
    assert template_index_pattern is index_pattern
    assert index_pattern("audit-%Y-x-%m") == "audit-*-x-*"
    assert index_pattern("Audit-%Y.%m.%d") == "audit-*"  # index names are lowered, so is the pattern
    tpl = build_templates("opensearch", "2.19.1", Search(index="audit-%Y-x-%m"))
    (body,) = tpl["index_templates"].values()
    assert body["index_patterns"] == ["audit-*-x-*"]


def test_index_name_uses_the_event_time_not_the_arrival_time() -> None:
    doc = {"@timestamp": "2023-11-14T23:59:59.999999999Z"}
    assert index_for(Search(), doc) == "auditrecv-2023.11.14"
    assert index_for(Search(index="audit-%Y-%m-%d"), doc) == "audit-2023-11-14"
    assert index_for(Search(index="audit-%Y-%m-%d"), {"@timestamp": "2019-01-02T03:04:05.000Z"}) == "audit-2019-01-02"
    assert index_for(Search(mode="data_stream", data_stream="logs-auditrecv-default"), doc) == "logs-auditrecv-default"
    assert index_pattern("audit-%Y-%m-%d") == "audit-*"


def test_docs_schema_md_is_generated_from_the_tables() -> None:
    path = Path(REPO) / "docs" / "schema.md"
    assert path.read_text(encoding="utf-8") == render(), "run: python -m auditrecv.schema.docgen > docs/schema.md"
