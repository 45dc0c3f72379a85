"""The deployment files operators install (deploy/, smf/) are checked by the tools that will read them:
systemd's own verifier and sysusers, xmllint against the SMF grammar, `auditrecv check-config`, and a
run of the service with writable+executable memory denied as the unit denies it."""

from __future__ import annotations

import ctypes
import json
import re
import shutil
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from auditrecv.config import load_config
from tests.e2e.harness import ServiceProcess, service_config
from tests.paths import REPO

DEPLOY = REPO / "deploy"
SMF = REPO / "smf"
UNIT = DEPLOY / "auditrecv.service"
VENV_BIN = Path(sys.executable).parent
INSTALLED_BIN = "/opt/auditrecv/venv/bin/auditrecv"


def _unit_settings(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def _installable_unit(tmp_path: Path) -> Path:
    """The unit as written, except that its commands point at this checkout's auditrecv: the verifier
    insists that ExecStart names an executable that exists."""
    assert (VENV_BIN / "auditrecv").exists()
    unit = tmp_path / "auditrecv.service"
    unit.write_text(UNIT.read_text().replace(INSTALLED_BIN, str(VENV_BIN / "auditrecv")))
    return unit


# --------------------------------------------------------------------------- systemd


def test_the_unit_passes_systemds_verifier(tmp_path: Path) -> None:
    res = subprocess.run(
        ["systemd-analyze", "verify", str(_installable_unit(tmp_path))], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    assert res.stderr.strip() == "", res.stderr


def test_the_verifier_would_catch_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: a misspelt directive is reported."""
    unit = _installable_unit(tmp_path)
    unit.write_text(unit.read_text().replace("ProtectSystem=strict", "ProtectSystem=strikt"))
    res = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert "strikt" in res.stderr  # a warning, exit status 0: hence the empty-stderr check above


def test_the_low_port_drop_in_grants_exactly_one_capability(tmp_path: Path) -> None:
    unit = _installable_unit(tmp_path)
    dropin = tmp_path / "auditrecv.service.d"
    dropin.mkdir()
    shutil.copy(DEPLOY / "auditrecv-low-port.conf", dropin / "low-port.conf")
    res = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert res.returncode == 0 and res.stderr.strip() == "", res.stderr
    added = _unit_settings((DEPLOY / "auditrecv-low-port.conf").read_text())
    assert added == {
        "CapabilityBoundingSet": ["CAP_NET_BIND_SERVICE"],
        "AmbientCapabilities": ["CAP_NET_BIND_SERVICE"],
    }
    base = _unit_settings(UNIT.read_text())
    assert base["CapabilityBoundingSet"] == [""] and base["AmbientCapabilities"] == [""]
    # The defaults need no capability at all.
    cfg = load_config(REPO / "config.example.toml")
    assert min(cfg.listeners.audit_remote.port, cfg.listeners.audisp_remote.port, cfg.http.port) >= 1024


def test_the_unit_is_confined(tmp_path: Path) -> None:
    """systemd's own exposure score (0 = fully confined, 10 = not at all); "OK" is below 2.0. What keeps
    it from 0 is what a network service needs: the host's network and IP sockets."""
    res = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(_installable_unit(tmp_path))],
        capture_output=True,
        text=True,
    )
    found = re.search(r"Overall exposure level for auditrecv\.service: (\d+\.\d+)", res.stdout)
    assert found, res.stdout + res.stderr
    assert float(found.group(1)) < 2.0, res.stdout
    settings = _unit_settings(UNIT.read_text())
    for key, value in {
        "User": "auditrecv",
        "ProtectSystem": "strict",
        "StateDirectory": "auditrecv",
        "NoNewPrivileges": "yes",
        "MemoryDenyWriteExecute": "yes",
    }.items():
        assert settings[key] == [value], key


def test_the_dedicated_user_is_made_by_sysusers(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    res = subprocess.run(
        ["systemd-sysusers", f"--root={tmp_path}", str(DEPLOY / "auditrecv.sysusers")], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    passwd = {line.split(":")[0]: line.split(":") for line in (tmp_path / "etc" / "passwd").read_text().splitlines()}
    settings = _unit_settings(UNIT.read_text())
    user = passwd[settings["User"][0]]
    assert int(user[2]) < 1000, "a system user"
    assert user[5] == "/var/lib/" + settings["StateDirectory"][0] and user[6] == "/usr/sbin/nologin"
    groups = {line.split(":")[0] for line in (tmp_path / "etc" / "group").read_text().splitlines()}
    assert settings["Group"][0] in groups


def _deny_write_execute() -> None:
    """prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN): what MemoryDenyWriteExecute=yes does, kept across exec."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(65, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_MDWE)")


def _mdwe_supported() -> bool:
    probe = "import ctypes; raise SystemExit(ctypes.CDLL(None).prctl(65, 1, 0, 0, 0))"
    return subprocess.run([sys.executable, "-c", probe]).returncode == 0


def test_the_service_runs_with_write_execute_memory_denied(tmp_path: Path) -> None:
    """The unit says MemoryDenyWriteExecute=yes: a dependency that needs a JIT or libffi closures would
    make the service die at start in production only. Run it the same way here."""
    if not _mdwe_supported():
        pytest.skip("this kernel has no PR_SET_MDWE (Linux < 6.3)")
    table = service_config(tmp_path)
    svc = ServiceProcess(table, tmp_path, preexec=_deny_write_execute)
    svc.start()
    try:
        health = json.loads(
            urllib.request.urlopen(f"http://127.0.0.1:{table['http']['port']}/health", timeout=5).read()
        )
        assert health["status"] == "ok"
    finally:
        assert svc.stop() == 0, svc.log()
    # The compiled extension too: decode a Linux log and a BSM trail with it, byte for byte as without.
    from tests.paths import BSM_FIXTURES, LINUX_FIXTURES

    for path in (
        LINUX_FIXTURES / "audisp-remote" / "captures" / "input-events.log",
        BSM_FIXTURES / "plaso" / "apple.bsm",
    ):
        argv = [sys.executable, "-m", "auditrecv", "decode", "--raw", str(path)]  # no ingest time
        denied = subprocess.run(argv, capture_output=True, preexec_fn=_deny_write_execute, timeout=120)
        assert denied.returncode == 0, denied.stderr.decode()
        assert denied.stdout.count(b"\n") >= 4
        assert denied.stdout == subprocess.run(argv, capture_output=True, timeout=120).stdout


# --------------------------------------------------------------------------- compose


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def _env_defaults() -> dict[str, str]:
    out = {}
    for line in (DEPLOY / "compose" / "env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, value = line.split("=", 1)
            out[key] = value
    return out


def test_compose_config_is_valid_and_matches_the_compose_file(tmp_path: Path) -> None:
    compose = _compose()
    services = compose["services"]
    assert set(services) == {"elasticsearch", "setup", "kibana", "auditrecv"}
    recv = services["auditrecv"]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in recv["volumes"]}
    config_file = DEPLOY / mounts["/etc/auditrecv/auditrecv.toml"]
    res = subprocess.run(
        [sys.executable, "-m", "auditrecv", "check-config", str(config_file)], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    cfg = load_config(config_file)
    # The spool lives on a named volume, so it outlives the container.
    assert mounts[cfg.state_dir] in compose["volumes"]
    # The engine is the compose service, reached as the user setup.sh makes, with the password of .env.
    assert cfg.search.urls == ["http://elasticsearch:9200"]
    setup = (DEPLOY / "compose" / "setup.sh").read_text()
    assert f'_security/user/{cfg.search.username}"' in setup
    assert cfg.search.password == _env_defaults()["AUDITRECV_PASSWORD"]
    # Every listener port is published; the HTTP endpoint on loopback only.
    published = {p.rsplit(":", 2)[-1]: p for p in recv["ports"]}
    for port in (cfg.listeners.audit_remote.port, cfg.listeners.audisp_remote.port):
        assert published[str(port)] == f"{port}:{port}"
    assert published[str(cfg.http.port)] == f"127.0.0.1:{cfg.http.port}:{cfg.http.port}"
    assert cfg.http.host == "0.0.0.0"
    assert (REPO / recv["build"]["dockerfile"]).exists() and (DEPLOY / recv["build"]["context"]).resolve() == REPO


def test_compose_runs_one_stack_version() -> None:
    images = {name: svc["image"] for name, svc in _compose()["services"].items() if "image" in svc}
    versions = {image.split(":", 1)[1] for image in images.values()}
    assert versions == {"${STACK_VERSION:-" + _env_defaults()["STACK_VERSION"] + "}"}, images
    assert re.fullmatch(r"(8\.19|9\.\d+)\.\d+", _env_defaults()["STACK_VERSION"])


def test_compose_role_covers_every_index_auditrecv_writes() -> None:
    """The auditrecv user may write only its indices: those must cover what the defaults name."""
    cfg = load_config(DEPLOY / "compose" / "auditrecv.toml")
    setup = (DEPLOY / "compose" / "setup.sh").read_text()
    role = json.loads(setup.split("_security/role/auditrecv_writer\" -d '", 1)[1].split("'", 1)[0])
    patterns = role["indices"][0]["names"]
    import fnmatch
    import time

    for name in (
        time.strftime(cfg.search.index),
        time.strftime(cfg.search.dead_letter_index),
        cfg.search.data_stream,
    ):
        assert any(fnmatch.fnmatch(name, p) for p in patterns), name


def test_the_container_image_spool_volume_is_the_state_dir() -> None:
    text = (DEPLOY / "Containerfile").read_text()
    assert 'VOLUME ["/var/lib/auditrecv"]' in text
    assert load_config(DEPLOY / "compose" / "auditrecv.toml").state_dir == "/var/lib/auditrecv"


# --------------------------------------------------------------------------- SMF


def _catalog(tmp_path: Path) -> dict[str, str]:
    """Resolve the manifests' DOCTYPE (the path the DTD has on illumos) to smf/service_bundle.dtd."""
    catalog = tmp_path / "catalog.xml"
    catalog.write_text(
        '<?xml version="1.0"?>\n'
        '<catalog xmlns="urn:oasis:names:tc:entity:xmlns:xml:catalog">\n'
        '  <system systemId="/usr/share/lib/xml/dtd/service_bundle.dtd.1"\n'
        f'          uri="file://{SMF / "service_bundle.dtd"}"/>\n'
        "</catalog>\n"
    )
    return {"XML_CATALOG_FILES": str(catalog), "PATH": "/usr/bin:/bin"}


MANIFESTS = sorted(SMF.rglob("*.xml"))


def _xmllint(path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["xmllint", "--noout", "--nonet", "--valid", str(path)], capture_output=True, text=True, env=env
    )


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: str(p.relative_to(SMF)))
def test_smf_manifest_is_valid(manifest: Path, tmp_path: Path) -> None:
    res = _xmllint(manifest, _catalog(tmp_path))
    assert res.returncode == 0 and res.stderr == "", res.stderr


def test_xmllint_would_catch_an_invalid_manifest(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text((SMF / "auditrecv.xml").read_text().replace("<single_instance/>", "<single_instance/><bogus/>"))
    res = _xmllint(bad, _catalog(tmp_path))
    assert res.returncode != 0 and "bogus" in res.stderr


def test_the_manifests_cover_the_receiver_and_both_global_zone_services() -> None:
    names = {p.relative_to(SMF).as_posix() for p in MANIFESTS}
    assert names == {
        "auditrecv.xml",
        "global-zone/auditrecv-audit-setup.xml",
        "global-zone/auditrecv-dummy-mech.xml",
    }


# Where each manifest's method scripts are installed, and where they are in this repository.
INSTALLED_METHODS = {"/opt/auditrecv/smf/": SMF, "/opt/custom/auditrecv/": SMF / "global-zone"}


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: str(p.relative_to(SMF)))
def test_smf_methods_exist_parse_and_read_only_declared_properties(manifest: Path) -> None:
    import xml.etree.ElementTree as ET

    root = ET.parse(manifest).getroot()
    service = root.find("service")
    assert service is not None
    declared = {
        f"{pg.get('name')}/{pv.get('name')}" for pg in service.iter("property_group") for pv in pg.iter("propval")
    }
    methods = {m.get("exec", "").split()[0] for m in service.iter("exec_method")}
    scripts = [m for m in methods if not m.startswith(":")]
    assert scripts
    for installed in scripts:
        prefix = next(p for p in INSTALLED_METHODS if installed.startswith(p))
        script = INSTALLED_METHODS[prefix] / installed.removeprefix(prefix)
        assert script.exists() and script.stat().st_mode & 0o111, script
        assert subprocess.run(["sh", "-n", str(script)]).returncode == 0, script
        text = script.read_text()
        used = {f"config/{name}" for name in re.findall(r"\bprop (\w+)", text)}
        used |= set(re.findall(r"svcprop -p (config/\w+)", text))
        assert used, script
        assert used <= declared, (script, used - declared)


def test_audit_setup_defaults_to_kerberos() -> None:
    text = (SMF / "global-zone" / "auditrecv-audit-setup.xml").read_text()
    hosts = re.search(r'name="hosts" type="astring" value="([^"]+)"', text)
    assert hosts and hosts.group(1).endswith(":16162:kerberos_v5")
    example = tomllib.loads((REPO / "config.example.toml").read_text())
    assert example["listeners"]["audit_remote"]["port"] == 16162
