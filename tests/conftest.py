"""Shared fixtures giving tests the REAL things: search engines, a Kerberos realm, audisp-remote.

Costly ones (JVM engines, the KDC) start once per session and only when a test asks for them. A missing tool
is a set-up bug (``scripts/install.sh --test`` installs everything), so fixtures fail with the Debian package
to install; they never skip.

Contract (see tests/infra/*.py for details):

* ``search_engine`` — parametrized ``opensearch-2.19`` / ``elasticsearch-7.17`` (or ``external`` when
  ``AUDITRECV_ES_URL`` is set): ``.url``, ``.flavor``, ``.version``, ``.supports_data_streams``,
  ``.count(pattern, query=None)``, ``.search(pattern, query)``, ``.hits(...)``, ``.delete_indices(pattern)``,
  ``.request(method, path, body)``. ``opensearch_engine`` / ``elasticsearch7_engine`` pick one directly.
* ``kdc`` — realm ``AUDIT.TEST`` with its env already in ``os.environ``: ``.realm_name``, ``.env``,
  ``.krb5_conf``, ``.service_keytab(p)``, ``.keytab_for(p)``, ``.client_ccache(p)``, ``.add_principal(p)``.
* ``audisp_remote_factory(host, port, **conf)`` — a not-yet-started :class:`tests.infra.audisp.AudispRemote`;
  with ``transport="krb5"`` it uses the ``kdc`` realm and a keytab for ``auditd/<gethostname()>``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.infra.audisp import AudispRemote
from tests.infra.engine import (
    ELASTICSEARCH7,
    OPENSEARCH,
    EngineKind,
    SearchEngine,
    connect_external,
    start_embedded,
    stop_process_group,
)
from tests.infra.kdc import ILLUMOS_CLIENT, ILLUMOS_SERVICE, LINUX_SERVICE, TestKdc, linux_client_principal

EXTERNAL_ES_URL = os.environ.get("AUDITRECV_ES_URL", "").strip()
ENGINE_PARAMS = ["external"] if EXTERNAL_ES_URL else [OPENSEARCH.param_id, ELASTICSEARCH7.param_id]

# Fixtures that imply a marker, so `-m engine` / `-m "not audisp"` select tests by what they really use.
_FIXTURE_MARKERS = {
    "search_engine": "engine",
    "opensearch_engine": "engine",
    "elasticsearch7_engine": "engine",
    "kdc": "kdc",
    "audisp_remote_factory": "audisp",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture_name in getattr(item, "fixturenames", ()):
            marker = _FIXTURE_MARKERS.get(fixture_name)
            if marker and item.get_closest_marker(marker) is None:
                item.add_marker(marker)


# -- search engines --------------------------------------------------------------------------------------------


def _embedded(kind: EngineKind, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SearchEngine]:
    home = tmp_path_factory.mktemp(kind.param_id)
    engine = start_embedded(kind, home)
    print(f"\n[{kind.param_id}] {engine.version} up in {engine.startup_seconds:.1f} s, RSS {engine.rss_kib()} KiB")
    try:
        yield engine
    finally:
        assert engine.process is not None
        stop_process_group(engine.process)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def opensearch_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SearchEngine]:
    """Embedded OpenSearch 2.19 (one JVM per session)."""
    yield from _embedded(OPENSEARCH, tmp_path_factory)


@pytest.fixture(scope="session")
def elasticsearch7_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SearchEngine]:
    """Embedded Elasticsearch 7.17 OSS core (no x-pack: no data streams, no ILM)."""
    yield from _embedded(ELASTICSEARCH7, tmp_path_factory)


@pytest.fixture(scope="session")
def external_engine() -> SearchEngine:
    """The cluster named by ``AUDITRECV_ES_URL``."""
    if not EXTERNAL_ES_URL:
        raise RuntimeError("AUDITRECV_ES_URL is not set")
    return connect_external(EXTERNAL_ES_URL)


@pytest.fixture(scope="session", params=ENGINE_PARAMS)
def search_engine(request: pytest.FixtureRequest) -> SearchEngine:
    """Every engine flavour a sink test should pass against; each engine starts once per session."""
    fixture_name = {
        OPENSEARCH.param_id: "opensearch_engine",
        ELASTICSEARCH7.param_id: "elasticsearch7_engine",
        "external": "external_engine",
    }[request.param]
    engine: SearchEngine = request.getfixturevalue(fixture_name)
    return engine


# -- Kerberos ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kdc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestKdc]:
    """MIT KDC for realm AUDIT.TEST; its environment is in ``os.environ`` for the whole session.

    Pre-created: ``audit/localhost`` and ``auditd/localhost`` (services, with keytabs), ``host/client.example``
    (illumos-like client, with a ccache) and ``auditd/<gethostname()>`` (audisp-remote's identity).
    """
    realm = TestKdc(tmp_path_factory.mktemp("kdc"))
    saved = {k: os.environ.get(k) for k in realm.env}
    os.environ.update(realm.env)
    try:
        for service in (ILLUMOS_SERVICE, LINUX_SERVICE):
            realm.service_keytab(service)
        realm.client_ccache(ILLUMOS_CLIENT)
        realm.keytab_for(linux_client_principal())
        yield realm
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        realm.stop()


# -- audisp-remote ----------------------------------------------------------------------------------------------


@pytest.fixture
def audisp_remote_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., AudispRemote]]:
    """``factory(host, port, **conf) -> AudispRemote`` (call ``.start()``); all are killed at test end."""
    made: list[AudispRemote] = []

    def factory(host: str, port: int, **conf: Any) -> AudispRemote:
        workdir = tmp_path / f"audisp-remote-{len(made)}"
        if str(conf.get("transport", "tcp")).lower() == "krb5" and "keytab" not in conf:
            realm: TestKdc = request.getfixturevalue("kdc")
            conf["keytab"] = realm.keytab_for(linux_client_principal())
            conf["env"] = {**realm.env, **conf.get("env", {})}
        client = AudispRemote(host, port, workdir, **conf)
        made.append(client)
        return client

    yield factory
    for client in made:
        client.close()
