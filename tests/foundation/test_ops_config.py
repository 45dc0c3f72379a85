"""Operations settings (issue 14): template names, health thresholds; bad values name the key."""

from __future__ import annotations

import pytest

from auditrecv.config import ConfigError, parse_config


def test_template_name_is_optional_and_validated() -> None:
    assert parse_config("").search.template_name == ""
    assert parse_config('[search]\ntemplate_name = "site1-audit"').search.template_name == "site1-audit"
    for bad in ("Site1", "_x", "a*b", "a b"):
        with pytest.raises(ConfigError, match=r"search\.template_name = .*not a template name"):
            parse_config(f'[search]\ntemplate_name = "{bad}"')


def test_health_limits_have_defaults_and_must_be_positive() -> None:
    health = parse_config("").health
    assert (health.max_unshipped_age, health.max_request_seconds) == (30.0, 10.0)
    cfg = parse_config("[health]\nmax_unshipped_age = 5\nmax_request_seconds = 2.5")
    assert (cfg.health.max_unshipped_age, cfg.health.max_request_seconds) == (5.0, 2.5)
    for key in ("max_unshipped_age", "max_request_seconds"):
        with pytest.raises(ConfigError, match=rf"health\.{key} = 0\.0: must be > 0"):
            parse_config(f"[health]\n{key} = 0")
