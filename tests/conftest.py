"""Shared fixtures giving tests the REAL things: search engines, a Kerberos realm, audisp-remote.

Costly ones (JVM engines, the KDC) start once per session and only when a test asks for them. A missing tool
is a set-up bug (``scripts/install.sh --test`` installs everything), so fixtures fail with the Debian package
to install; they never skip.

Contract (see tests/infra/*.py for details):

* ``every_engine`` — parametrized over all five embedded engines, ``opensearch-2.19``, ``opensearch-3``,
  ``elasticsearch-7.17``, ``elasticsearch-8.19``, ``elasticsearch-9`` (or ``external`` when ``AUDITRECV_ES_URL``
  is set), for the sink's contract tests: ``.url``, ``.flavor``, ``.version``, ``.supports_data_streams``,
  ``.count(pattern, query=None)``, ``.search(pattern, query)``, ``.hits(...)``, ``.delete_indices(pattern)``,
  ``.request(method, path, body)``, ``.adapt_templates(templates)`` (what the embedded node lacks).
* ``search_engine`` — the same, over ``opensearch-2.19`` / ``elasticsearch-7.17`` only (tests/e2e narrows it to
  ``opensearch-2.19``). ``opensearch_engine`` / ``elasticsearch7_engine`` pick one directly.
* ``kdc`` — realm ``AUDIT.TEST`` with its env already in ``os.environ``: ``.realm_name``, ``.env``,
  ``.krb5_conf``, ``.service_keytab(p)``, ``.keytab_for(p)``, ``.client_ccache(p)``, ``.add_principal(p)``.
* ``audisp_remote_factory(host, port, **conf)`` — a not-yet-started :class:`tests.infra.audisp.AudispRemote`;
  with ``transport="krb5"`` it uses the ``kdc`` realm and a keytab for ``auditd/<gethostname()>``.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.infra.audisp import AudispRemote
from tests.infra.engine import (
    ELASTICSEARCH7,
    ELASTICSEARCH8,
    ELASTICSEARCH9,
    EMBEDDED_KINDS,
    OPENSEARCH,
    OPENSEARCH3,
    EngineKind,
    LaunchedEngine,
    SearchEngine,
    connect_external,
    launch_embedded,
    stop_process_group,
)
from tests.infra.kdc import ILLUMOS_CLIENT, ILLUMOS_SERVICE, LINUX_SERVICE, TestKdc, linux_client_principal

EXTERNAL_ES_URL = os.environ.get("AUDITRECV_ES_URL", "").strip()
ENGINE_PARAMS = ["external"] if EXTERNAL_ES_URL else [OPENSEARCH.param_id, ELASTICSEARCH7.param_id]
EVERY_ENGINE_PARAMS = (
    ["external"]
    if EXTERNAL_ES_URL
    else [k.param_id for k in (OPENSEARCH, OPENSEARCH3, ELASTICSEARCH7, ELASTICSEARCH8, ELASTICSEARCH9)]
)
_ENGINE_FIXTURES = ("search_engine", "every_engine")

# Fixtures that imply a marker, so `-m engine` / `-m "not audisp"` select tests by what they really use.
_FIXTURE_MARKERS = {
    "search_engine": "engine",
    "every_engine": "engine",
    "opensearch_engine": "engine",
    "elasticsearch7_engine": "engine",
    "kdc": "kdc",
    "audisp_remote_factory": "audisp",
}


# Start-up measurements of the session's real services, printed in the terminal summary.
_STARTUP_NOTES: list[str] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _STARTUP_NOTES:
        terminalreporter.section("real test services")
        for note in _STARTUP_NOTES:
            terminalreporter.write_line(note)


# Engine params of the tests that will actually run (after -k/-m deselection): only those are booted.
_ENGINE_PARAMS_IN_USE: set[str] = set()


def pytest_collection_finish(session: pytest.Session) -> None:
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        for name in _ENGINE_FIXTURES:
            if callspec is not None and name in callspec.params:
                _ENGINE_PARAMS_IN_USE.add(callspec.params[name])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture_name in getattr(item, "fixturenames", ()):
            marker = _FIXTURE_MARKERS.get(fixture_name)
            if marker and item.get_closest_marker(marker) is None:
                item.add_marker(marker)


# -- search engines --------------------------------------------------------------------------------------------


class _EnginePool:
    """Embedded engines of this session: launched at most once each, possibly ahead of need."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self._launched: dict[str, LaunchedEngine] = {}
        self._ready: dict[str, SearchEngine] = {}

    def launch(self, kind: EngineKind) -> None:
        if kind.param_id not in self._launched:
            self._launched[kind.param_id] = launch_embedded(kind, self._tmp.mktemp(kind.param_id))

    def get(self, kind: EngineKind) -> SearchEngine:
        if kind.param_id not in self._ready:
            self.launch(kind)
            engine = self._launched[kind.param_id].wait_ready()
            rss = engine.rss_kib() or 0
            _STARTUP_NOTES.append(
                f"{kind.param_id}: {kind.flavor} {engine.version} at {engine.url}, healthy after "
                f"{engine.startup_seconds:.1f} s from launch, RSS {rss // 1024} MiB"
            )
            self._ready[kind.param_id] = engine
        return self._ready[kind.param_id]

    def stop_all(self) -> None:
        for launched in self._launched.values():
            stop_process_group(launched.process)
            shutil.rmtree(launched.home, ignore_errors=True)


@pytest.fixture(scope="session")
def _engine_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_EnginePool]:
    pool = _EnginePool(tmp_path_factory)
    try:
        yield pool
    finally:
        pool.stop_all()


@pytest.fixture(scope="session")
def opensearch_engine(_engine_pool: _EnginePool) -> SearchEngine:
    """Embedded OpenSearch 2.19 (one JVM per session)."""
    return _engine_pool.get(OPENSEARCH)


@pytest.fixture(scope="session")
def elasticsearch7_engine(_engine_pool: _EnginePool) -> SearchEngine:
    """Embedded Elasticsearch 7.17 server core (no x-pack: no data streams, wildcard, constant_keyword)."""
    return _engine_pool.get(ELASTICSEARCH7)


@pytest.fixture(scope="session")
def external_engine() -> SearchEngine:
    """The cluster named by ``AUDITRECV_ES_URL``."""
    if not EXTERNAL_ES_URL:
        raise RuntimeError("AUDITRECV_ES_URL is not set")
    return connect_external(EXTERNAL_ES_URL)


def _engine_for(request: pytest.FixtureRequest) -> SearchEngine:
    """The engine of ``request.param``. The first use launches every embedded engine this run needs at once,
    so the others boot while the first one's tests run."""
    if request.param == "external":
        engine: SearchEngine = request.getfixturevalue("external_engine")
        return engine
    pool: _EnginePool = request.getfixturevalue("_engine_pool")
    for param_id in sorted(_ENGINE_PARAMS_IN_USE & EMBEDDED_KINDS.keys()):
        pool.launch(EMBEDDED_KINDS[param_id])
    return pool.get(EMBEDDED_KINDS[request.param])


@pytest.fixture(scope="session", params=EVERY_ENGINE_PARAMS)
def every_engine(request: pytest.FixtureRequest) -> SearchEngine:
    """Every engine major version users run, for the sink's contract tests; each starts once per session."""
    return _engine_for(request)


@pytest.fixture(scope="session", params=ENGINE_PARAMS)
def search_engine(request: pytest.FixtureRequest) -> SearchEngine:
    """OpenSearch 2.19 and Elasticsearch 7.17 (the same JVMs as ``every_engine``'s), for the schema tests."""
    return _engine_for(request)


# -- Kerberos ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kdc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestKdc]:
    """MIT KDC for realm AUDIT.TEST; its environment is in ``os.environ`` for the whole session.

    Pre-created: ``audit/localhost`` and ``auditd/localhost`` (services, with keytabs), ``host/client.example``
    (illumos-like client, with a ccache) and ``auditd/<gethostname()>`` (audisp-remote's identity).
    """
    started = time.monotonic()
    realm = TestKdc(tmp_path_factory.mktemp("kdc"))
    saved = {k: os.environ.get(k) for k in realm.env}
    os.environ.update(realm.env)
    try:
        for service in (ILLUMOS_SERVICE, LINUX_SERVICE):
            realm.service_keytab(service)
        realm.client_ccache(ILLUMOS_CLIENT)
        realm.keytab_for(linux_client_principal())
        _STARTUP_NOTES.append(f"kdc: realm {realm.realm_name} ready after {time.monotonic() - started:.1f} s")
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
