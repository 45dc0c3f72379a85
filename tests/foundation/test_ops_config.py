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
