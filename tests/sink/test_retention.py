"""`[search] retention`: the ILM (Elasticsearch) and ISM (OpenSearch) policies, how the templates attach them,
and how they are installed and updated.

No embedded engine has ILM (x-pack) or ISM (the index-management plugin), so the policy bodies are checked
here against the documented APIs, field by field: Elasticsearch's put-lifecycle API (phases hot/delete,
``min_age``, the ``rollover`` action's ``max_age``/``max_primary_shard_size``, the policy ``_meta``), the
``index.lifecycle.name`` / ``index.lifecycle.parse_origination_date`` index settings (the origination date is
parsed from names matching ``^.*-(\\d{4}.\\d{2}.\\d{2})(-[\\d]+)?$``), and OpenSearch's ISM create-policy API
(states, actions, transitions with ``min_index_age``, the ``rollover`` action's ``min_index_age`` and
``min_primary_shard_size``, ``ism_template`` with ``index_patterns`` and ``priority``, where a data stream's
backing indices are matched by the stream's name). What the embedded engines do with them is in
tests/sink/test_engine_contract.py.
"""

from __future__ import annotations

import pytest

from auditrecv.config import ConfigError, Search, parse_config
from auditrecv.schema.retention import lifecycle_policies, lifecycle_settings, retention_policy_name
from auditrecv.schema.templates import build_templates
from auditrecv.sink import BulkIndexer, TemplateError, detect_engine, install_templates
from tests.sink.fake_engine import FakeEngine

DAILY_ILM = {
    "policy": {
        "phases": {
            "hot": {"min_age": "0ms", "actions": {}},
            "delete": {"min_age": "90d", "actions": {"delete": {}}},
        },
        "_meta": {"managed_by": "auditrecv", "retention": "90d"},
    }
}


def settings_component(templates: dict, name: str) -> dict:
    return templates["component_templates"][f"{name}-settings"]["template"]["settings"]["index"]


def test_without_retention_nothing_is_attached_or_installed() -> None:
    for flavor, version in (("elasticsearch", "8.19.21"), ("opensearch", "2.19.1")):
        templates = build_templates(flavor, version, Search())
        assert set(templates) == {"component_templates", "index_templates"}
        assert "lifecycle" not in settings_component(templates, "auditrecv")


def test_elasticsearch_daily_indices_get_an_ilm_delete_phase_aged_from_the_index_name() -> None:
    settings = Search(retention="90d")
    templates = build_templates("elasticsearch", "9.5.3", settings)
    assert templates["ilm_policies"] == {"auditrecv-retention": DAILY_ILM}
    assert "ism_policies" not in templates
    lifecycle = settings_component(templates, "auditrecv")["lifecycle"]
    assert lifecycle == {"name": "auditrecv-retention", "parse_origination_date": True}


def test_elasticsearch_data_streams_roll_over_daily_then_delete() -> None:
    settings = Search(retention="36h", mode="data_stream")
    templates = build_templates("elasticsearch", "8.19.21", settings)
    (name,) = templates["ilm_policies"]
    assert name == "logs-auditrecv-default-retention"
    assert templates["ilm_policies"][name]["policy"]["phases"] == {
        "hot": {"min_age": "0ms", "actions": {"rollover": {"max_age": "1d", "max_primary_shard_size": "50gb"}}},
        "delete": {"min_age": "36h", "actions": {"delete": {}}},
    }
    # backing indices (.ds-…-000001) carry no date: ILM ages them from their rollover
    assert settings_component(templates, name.removesuffix("-retention"))["lifecycle"] == {"name": name}


def test_an_index_name_without_a_trailing_day_is_aged_from_its_creation() -> None:
    for index in ("audit-%Y.%m", "audit-%Y%m%d", "a-%Y-%Y.%m.%d"):
        settings = Search(retention="90d", index=index)
        assert lifecycle_settings("elasticsearch", settings) == {"lifecycle": {"name": retention_policy_name(settings)}}


def test_opensearch_policies_attach_themselves_by_ism_template() -> None:
    daily = build_templates("opensearch", "2.19.1", Search(retention="90d", index="audit-%Y.%m.%d"))
    assert "lifecycle" not in settings_component(daily, "audit")  # no index setting on OpenSearch
    assert "ilm_policies" not in daily
    assert daily["ism_policies"] == {
        "audit-retention": {
            "policy": {
                "description": "auditrecv: delete audit-* indices 90d old",
                "default_state": "hot",
                "states": [
                    {
                        "name": "hot",
                        "actions": [],
                        "transitions": [{"state_name": "delete", "conditions": {"min_index_age": "90d"}}],
                    },
                    {"name": "delete", "actions": [{"delete": {}}], "transitions": []},
                ],
                # the index template's pattern, at its priority (200 + the pattern's specificity)
                "ism_template": [{"index_patterns": ["audit-*"], "priority": 206}],
            }
        }
    }
    stream = lifecycle_policies("opensearch", Search(retention="30d", mode="data_stream"))["ism_policies"]
    policy = stream["logs-auditrecv-default-retention"]["policy"]
    assert policy["states"][0]["actions"] == [{"rollover": {"min_index_age": "1d", "min_primary_shard_size": "50gb"}}]
    assert policy["ism_template"] == [{"index_patterns": ["logs-auditrecv-default"], "priority": 222}]


@pytest.mark.parametrize("value", ["90", "3w", "0d", "-1d", "90 d", "1.5d", "90D"])
def test_retention_must_be_days_or_hours(value: str) -> None:
    with pytest.raises(ConfigError, match=r"search\.retention = .*whole number of days or hours"):
        parse_config(f'[search]\nretention = "{value}"\n')


def test_retention_of_days_and_hours_loads() -> None:
    assert parse_config('[search]\nretention = "400d"\n').search.retention == "400d"
    assert parse_config('[search]\nretention = "12h"\n').search.retention == "12h"


TEMPLATES_WITHOUT_POLICY = [
    "component_template/auditrecv-ecs-mappings",
    "component_template/auditrecv-settings",
    "index_template/auditrecv",
]


async def _install_with_retention(fake: FakeEngine) -> list[str]:
    settings = Search(urls=[fake.url], retention="90d")
    async with BulkIndexer(settings) as idx:
        info = await detect_engine(idx)
        return await install_templates(idx, info, build_templates(info.flavor, info.version, settings))


async def test_ilm_policy_goes_in_before_the_templates_that_name_it() -> None:
    fake = await FakeEngine(flavor="elasticsearch", version="8.19.21").start()
    try:
        assert (await _install_with_retention(fake))[0] == "ilm_policy/auditrecv-retention"
        assert fake.templates["_ilm/auditrecv-retention"] == DAILY_ILM
    finally:
        await fake.stop()


async def test_a_changed_ism_policy_is_updated_with_its_sequence_number() -> None:
    fake = await FakeEngine(flavor="opensearch", version="3.9.0").start()
    fake.ism_policies = {}
    try:
        for retention in ("90d", "30d"):
            settings = Search(urls=[fake.url], retention=retention)
            async with BulkIndexer(settings) as idx:
                info = await detect_engine(idx)
                names = await install_templates(idx, info, build_templates(info.flavor, info.version, settings))
            assert names[0] == "ism_policy/auditrecv-retention"
        body, seq_no = fake.ism_policies["auditrecv-retention"]
        assert seq_no == 1  # created, then overwritten once (a PUT without if_seq_no answered 409)
        assert body["policy"]["states"][0]["transitions"][0]["conditions"] == {"min_index_age": "30d"}
    finally:
        await fake.stop()


async def test_without_an_ism_plugin_the_templates_still_go_in(caplog: pytest.LogCaptureFixture) -> None:
    fake = await FakeEngine(flavor="opensearch", version="2.19.1").start()
    try:
        assert await _install_with_retention(fake) == TEMPLATES_WITHOUT_POLICY
        assert "ISM policy 'auditrecv-retention' not installed" in caplog.text
    finally:
        await fake.stop()


async def test_without_ilm_the_templates_go_in_without_the_lifecycle_setting(caplog: pytest.LogCaptureFixture) -> None:
    fake = await FakeEngine(flavor="elasticsearch", version="8.19.21").start()
    fake.ilm = False
    try:
        assert await _install_with_retention(fake) == TEMPLATES_WITHOUT_POLICY
        index_settings = fake.templates["_component_template/auditrecv-settings"]["template"]["settings"]["index"]
        assert "lifecycle" not in index_settings and index_settings["codec"] == "best_compression"
        assert "retention not applied" in caplog.text and "no index lifecycle management" in caplog.text
    finally:
        await fake.stop()


async def test_an_ilm_policy_the_engine_refuses_stops_the_templates() -> None:
    """A 400 that is not a missing ILM (a policy the engine finds wrong) is an error, as before."""
    fake = await FakeEngine(flavor="elasticsearch", version="8.19.21").start()
    fake.reject_templates["auditrecv-retention"] = "[delete] unknown field [nonsense]"
    try:
        with pytest.raises(TemplateError, match="rejected ilm_policy 'auditrecv-retention'"):
            await _install_with_retention(fake)
        assert "_component_template/auditrecv-settings" not in fake.templates
    finally:
        await fake.stop()
