"""The configuration: defaults run anywhere, the example documents every key, errors name the key."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from auditrecv.config import Config, ConfigError, load_config, parse_config
from tests.paths import REPO

EXAMPLE = REPO / "config.example.toml"


def _keys(cls: Any, prefix: str = "") -> set[str]:
    out = set()
    for f in dataclasses.fields(cls):
        tp = f.type if not isinstance(f.type, str) else None
        value = getattr(cls(), f.name) if dataclasses.is_dataclass(cls) else None
        if dataclasses.is_dataclass(value):
            out |= _keys(type(value), f"{prefix}{f.name}.")
        else:
            out.add(f"{prefix}{f.name}")
        del tp
    return out


def _toml_keys(table: dict[str, Any], prefix: str = "") -> set[str]:
    out = set()
    for k, v in table.items():
        if isinstance(v, dict):
            out |= _toml_keys(v, f"{prefix}{k}.")
        else:
            out.add(f"{prefix}{k}")
    return out


def test_example_config_is_valid_and_documents_every_key() -> None:
    cfg = load_config(EXAMPLE)
    assert cfg.listeners.audit_remote.port == 16162
    text = EXAMPLE.read_text()
    documented = _toml_keys(tomllib.loads(text)) | {"state_dir"}  # state_dir is shown commented out
    assert "# state_dir" in text
    assert _keys(Config) == documented


def test_example_values_equal_the_defaults() -> None:
    """The example says 'the values shown are the defaults': hold it to that."""
    example = load_config(EXAMPLE)
    assert dataclasses.replace(example, state_dir=Config().state_dir) == Config()


def test_defaults_need_no_file_and_no_root() -> None:
    cfg = load_config(None)
    assert cfg.listeners.audit_remote.port > 1024 and cfg.listeners.audisp_remote.port > 1024
    assert cfg.search.urls == []
    assert cfg.listeners.audit_remote.allow_dummy_mech is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[listeners.audit_remote]\nport = 'x'", "listeners.audit_remote.port = 'x': expected an integer"),
        ("[listeners.audit_remote]\nprot = 1", "listeners.audit_remote.prot: unknown key"),
        ("[spool]\nmax_bytes = 'lots'", "spool.max_bytes = 'lots': expected a byte count"),
        ("[search]\nurls = 'http://a:9200'", "search.urls = 'http://a:9200': expected a list of strings"),
        ("[search]\nurls = ['a:9200']", "search.urls[0] = 'a:9200': expected an http:// or https:// URL"),
        ("[logging]\nformat = 'xml'", "logging.format = 'xml': expected one of 'text', 'json'"),
        ("[listeners.audisp_remote]\nallow = ['10.0.0.300/8']", "listeners.audisp_remote.allow[0]"),
        ("[listeners.audisp_remote_krb5]\nformat = 'ascii'", "krb5 transport always uses the managed"),
        ("[http]\nport = 70000", "http.port = 70000: not a TCP port"),
        ("[search]\nusername = 'u'", "search.password: missing"),
        ("spool = 3", "spool = 3: expected a table"),
        (
            "[listeners.audit_remote]\nallow_dummy_mech = true",
            "listeners.audit_remote.dummy_mech_networks = []: required with allow_dummy_mech = true",
        ),
        ("[spool\n", "not valid TOML"),
    ],
)
def test_bad_values_name_the_key_and_the_problem(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_sizes_accept_units() -> None:
    assert parse_config("[spool]\nmax_bytes = '512MiB'").spool.max_bytes == 512 * 1024**2
    assert parse_config("[search]\nbatch_max_bytes = '5MB'").search.batch_max_bytes == 5_000_000
    assert parse_config("[spool]\nmax_bytes = 2000000").spool.max_bytes == 2_000_000


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "auditrecv", *args], capture_output=True, text=True, timeout=60)


def test_check_config_cli(tmp_path: Path) -> None:
    ok = _cli("check-config", str(EXAMPLE))
    assert ok.returncode == 0, ok.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[spool]\nmax_bytes = true\n")
    res = _cli("check-config", str(bad))
    assert res.returncode == 2
    assert res.stderr.strip() == "auditrecv: config error: spool.max_bytes = True: expected an integer"
    assert "Traceback" not in res.stderr
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[listeners.audit_remote]\nportt = 1\n")
    res = _cli("check-config", str(unknown))
    assert res.returncode == 2 and "listeners.audit_remote.portt: unknown key" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    missing = _cli("check-config", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_serve_with_bad_config_fails_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[search]\nconcurrency = 0\n")
    res = _cli("serve", "--config", str(bad))
    assert res.returncode == 2
    assert "search.concurrency = 0: must be > 0" in res.stderr
    assert "Traceback" not in res.stderr


def test_version() -> None:
    res = _cli("--version")
    assert res.returncode == 0 and res.stdout.startswith("auditrecv ")


def test_state_dir_defaults_to_systemds_state_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    """deploy/auditrecv.service runs as its own user with StateDirectory=auditrecv: systemd passes the
    path in $STATE_DIRECTORY (colon-separated when a unit has several), and the spool belongs there."""
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/auditrecv:/var/lib/other")
    assert load_config(None).state_dir == "/var/lib/auditrecv"
    monkeypatch.delenv("STATE_DIRECTORY")
    monkeypatch.setenv("XDG_STATE_HOME", "/home/u/.state")
    assert load_config(None).state_dir == ("/var/lib/auditrecv" if os.geteuid() == 0 else "/home/u/.state/auditrecv")


def test_the_configuration_reference_is_generated_from_the_model_and_the_example() -> None:
    """docs/configuration.md is scripts/gen_config_reference.py's output: every key of the model, with
    its type and default, and what config.example.toml says of it (the script refuses a key it says
    nothing of)."""
    res = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_config_reference.py"), "--check"], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    text = (REPO / "docs" / "configuration.md").read_text()
    for key in _keys(Config):
        section, _, name = key.rpartition(".")
        heading = f"## [{section}]" if section else "## Top level"
        body = text.split(heading + "\n", 1)[1].split("\n## ", 1)[0]
        assert f"| `{name}` |" in body, key
