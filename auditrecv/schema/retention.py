"""Retention (`[search] retention`): the bodies that make the engine delete whole indices past an age by a
lifecycle policy (the cheap way to forget, and done even while no receiver runs); `sink/engine.py` installs
them. Elasticsearch's ILM is attached by our index template's `index.lifecycle.name`; OpenSearch's ISM
policy attaches itself through its `ism_template` with our template's pattern (for a data stream ISM
matches the stream's name, not the backing indices'). Daily indices go once `retention` old; data streams
roll over daily (or at 50 GB per primary shard) and each backing index goes `retention` after that.
Dead-letter indices are kept: they still need a look.
"""

from __future__ import annotations

from typing import Any

from auditrecv.config import RETENTION_RE, Search
from auditrecv.sink.naming import main_index_pattern, template_names, template_priority

__all__ = ["RETENTION_RE", "lifecycle_policies", "lifecycle_settings", "retention_policy_name"]

ROLLOVER_AGE = "1d"
ROLLOVER_PRIMARY_SHARD_SIZE = "50gb"
# Above the index templates' base (200), like them plus the pattern's specificity: ISM refuses two policies
# whose templates overlap at the same priority, so two receivers with overlapping patterns differ.
ISM_TEMPLATE_PRIORITY = 200
# Elasticsearch's origination-date parser takes "<anything>-yyyy.MM.dd" names: a day's index is then
# aged from its day, not from when its first (possibly late) document created it.
_DAILY_SUFFIX = "-%Y.%m.%d"


def retention_policy_name(settings: Search) -> str:
    """The policy's name follows the index naming, like the templates' (``auditrecv-retention``)."""
    return f"{template_names(settings).index_template}-retention"


def lifecycle_settings(flavor: str, settings: Search) -> dict[str, Any]:
    """Index settings our index template carries to attach the policy (Elasticsearch only)."""
    if not settings.retention or flavor != "elasticsearch":
        return {}
    out: dict[str, Any] = {"lifecycle": {"name": retention_policy_name(settings)}}
    if settings.mode == "daily" and settings.index.endswith(_DAILY_SUFFIX) and "%" not in settings.index[:-9]:
        out["lifecycle"]["parse_origination_date"] = True
    return out


def lifecycle_policies(flavor: str, settings: Search) -> dict[str, dict[str, Any]]:
    """``{"ilm_policies": {name: body}}`` or ``{"ism_policies": {name: body}}``; empty without retention."""
    if not settings.retention:
        return {}
    name = retention_policy_name(settings)
    if flavor == "elasticsearch":
        return {"ilm_policies": {name: _ilm_policy(settings)}}
    return {"ism_policies": {name: _ism_policy(settings)}}


def _ilm_policy(settings: Search) -> dict[str, Any]:
    hot: dict[str, Any] = {"actions": {}}
    if settings.mode == "data_stream":
        hot["actions"]["rollover"] = {
            "max_age": ROLLOVER_AGE,
            "max_primary_shard_size": ROLLOVER_PRIMARY_SHARD_SIZE,
        }
    return {
        "policy": {
            "phases": {
                "hot": {"min_age": "0ms", **hot},
                "delete": {"min_age": settings.retention, "actions": {"delete": {}}},
            },
            "_meta": {"managed_by": "auditrecv", "retention": settings.retention},
        }
    }


def _ism_policy(settings: Search) -> dict[str, Any]:
    pattern = main_index_pattern(settings)
    hot_actions: list[dict[str, Any]] = []
    if settings.mode == "data_stream":
        hot_actions.append(
            {"rollover": {"min_index_age": ROLLOVER_AGE, "min_primary_shard_size": ROLLOVER_PRIMARY_SHARD_SIZE}}
        )
    return {
        "policy": {
            "description": f"auditrecv: delete {pattern} indices {settings.retention} old",
            "default_state": "hot",
            "states": [
                {
                    "name": "hot",
                    "actions": hot_actions,
                    "transitions": [{"state_name": "delete", "conditions": {"min_index_age": settings.retention}}],
                },
                {"name": "delete", "actions": [{"delete": {}}], "transitions": []},
            ],
            "ism_template": [
                {"index_patterns": [pattern], "priority": template_priority(pattern, ISM_TEMPLATE_PRIORITY)}
            ],
        }
    }
