"""Real search engines for tests: embedded OpenSearch 2.19 and 3.x, Elasticsearch 7.17, 8.19 and 9.x JVMs, or an
external cluster.

Why a JVM per engine and not a fake: the sink's contract (bulk item statuses, templates, mappings) is only
trustworthy against the real thing. Each engine is started once per test session (see tests/conftest.py),
in its own process group, and stopped by that group. The helpers use urllib only, so they never share code
(or bugs) with the aiohttp client under test.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENGINE_DIR = Path(__file__).resolve().parents[1] / "engine"
BUILD_SCRIPT = ENGINE_DIR / "build.sh"
START_TIMEOUT_S = 180.0
HEAP = "512m"
# Elasticsearch 9 and OpenSearch 3 need Java 21+ (the default java is 17); tests/engine/build.sh checks it.
JAVA21_HOME = Path(os.environ.get("AUDITRECV_JAVA21_HOME", "/usr/lib/jvm/temurin-25-jdk-amd64"))


@dataclass(frozen=True)
class EngineKind:
    """How to build and launch one embedded engine, and what the embedded node lacks (tests/engine/README.md).

    ``missing_types`` are mapping types a real distribution has (x-pack or a module) and this node does not;
    ``zstd_codec`` is False where ``index.codec: best_compression`` needs a native library the node lacks.
    """

    param_id: str
    flavor: str
    version_prefix: str  # of the pinned version in the directory's pom.xml
    directory: Path
    main_class: str
    java_release: int = 17
    data_streams: bool = True
    missing_types: frozenset[str] = frozenset()
    zstd_codec: bool = True

    @property
    def java(self) -> str:
        return "java" if self.java_release == 17 else str(JAVA21_HOME / "bin" / "java")


# wildcard and constant_keyword are x-pack plugins, match_only_text is in the mapper-extras module: none of
# them is published on Maven Central for 8.x and 9.x.
_ES_MODULE_TYPES = frozenset({"wildcard", "match_only_text", "constant_keyword"})
OPENSEARCH = EngineKind("opensearch-2.19", "opensearch", "2.19.", ENGINE_DIR, "EmbeddedOpenSearch")
ELASTICSEARCH7 = EngineKind(
    "elasticsearch-7.17", "elasticsearch", "7.17.", ENGINE_DIR / "es7", "EmbeddedElasticsearch7", data_streams=False
)
ELASTICSEARCH8 = EngineKind(
    "elasticsearch-8.19", "elasticsearch", "8.19.", ENGINE_DIR / "es8",
    "org.elasticsearch.node.EmbeddedElasticsearch", missing_types=_ES_MODULE_TYPES,
)  # fmt: skip
ELASTICSEARCH9 = EngineKind(
    "elasticsearch-9", "elasticsearch", "9.", ENGINE_DIR / "es9", "org.elasticsearch.node.EmbeddedElasticsearch",
    java_release=21, missing_types=_ES_MODULE_TYPES, zstd_codec=False,
)  # fmt: skip
OPENSEARCH3 = EngineKind("opensearch-3", "opensearch", "3.", ENGINE_DIR / "os3", "EmbeddedOpenSearch3", java_release=21)
EMBEDDED_KINDS = {k.param_id: k for k in (OPENSEARCH, ELASTICSEARCH7, ELASTICSEARCH8, ELASTICSEARCH9, OPENSEARCH3)}


class EngineError(RuntimeError):
    """An engine could not be built, started, or answered an unexpected HTTP status."""


@dataclass
class SearchEngine:
    """A running engine plus small, independent HTTP helpers for assertions.

    ``url`` has no trailing slash and no credentials; credentials from an ``AUDITRECV_ES_URL`` such as
    ``https://user:pw@host:9200`` are kept in ``auth_header``.
    """

    url: str
    flavor: str
    version: str
    auth_header: str | None = None
    supports_data_streams: bool = True
    missing_types: frozenset[str] = frozenset()
    zstd_codec: bool = True
    kind: EngineKind | None = None  # None for an external cluster
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    log_path: Path | None = None
    startup_seconds: float | None = None

    @property
    def version_tuple(self) -> tuple[int, ...]:
        """``(major, minor, patch)`` of ``version`` (qualifiers such as ``-SNAPSHOT`` dropped)."""
        return tuple(int(n) for n in re.findall(r"\d+", self.version.split("-", 1)[0])[:3])

    # -- generic HTTP ------------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        ndjson: bytes | None = None,
        ok: tuple[int, ...] = (200, 201),
        timeout: float = 60.0,
    ) -> tuple[int, Any]:
        """Send one request; return ``(status, parsed JSON or None)``; raise unless status is in ``ok``."""
        data: bytes | None = None
        headers = {"Accept": "application/json"}
        if ndjson is not None:
            data, headers["Content-Type"] = ndjson, "application/x-ndjson"
        elif body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        if self.auth_header:
            headers["Authorization"] = self.auth_header
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        parsed = json.loads(raw) if raw else None
        if status not in ok:
            raise EngineError(f"{method} {path} -> {status}: {raw[:2000]!r}")
        return status, parsed

    # -- assertion helpers ---------------------------------------------------------------------------------

    def refresh(self, index_pattern: str) -> None:
        """Make everything indexed so far searchable (tests must not sleep for refresh_interval)."""
        self.request("POST", f"/{_q(index_pattern)}/_refresh?ignore_unavailable=true&allow_no_indices=true")

    def _read(self, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        """A search-type request, asked again while a just-created index's shard is still starting
        (the engine answers 503 "all shards failed" for that moment)."""
        deadline = time.monotonic() + 30.0
        while True:
            status, res = self.request("POST", path, body, ok=(200, 503))
            if status == 200 or time.monotonic() > deadline:
                if status != 200:
                    raise EngineError(f"POST {path} -> {status}: {res}")
                return res
            time.sleep(0.1)

    def count(self, index_pattern: str, query: dict[str, Any] | None = None) -> int:
        """Number of documents matching ``query`` (a query clause, default match_all), after a refresh."""
        self.refresh(index_pattern)
        body = {"query": query} if query is not None else None
        res = self._read(f"/{_q(index_pattern)}/_count?ignore_unavailable=true&allow_no_indices=true", body)
        return int(res["count"])

    def hits(self, index_pattern: str, query: dict[str, Any] | None = None, size: int = 10000) -> list[dict[str, Any]]:
        """Raw hits (``_index``, ``_id``, ``_source``…) for ``query``, after a refresh, oldest ``_doc`` order."""
        self.refresh(index_pattern)
        body = {"query": query or {"match_all": {}}, "size": size, "sort": ["_doc"]}
        res = self._read(f"/{_q(index_pattern)}/_search?ignore_unavailable=true&allow_no_indices=true", body)
        return list(res["hits"]["hits"])

    def search(
        self, index_pattern: str, query: dict[str, Any] | None = None, size: int = 10000
    ) -> list[dict[str, Any]]:
        """The ``_source`` documents matching ``query`` (a query clause), after a refresh."""
        return [h["_source"] for h in self.hits(index_pattern, query, size)]

    def delete_indices(self, pattern: str) -> None:
        """Delete the data streams and indices matching ``pattern`` (wildcards and commas allowed).

        Missing ones are fine: tests call this in set-up and tear-down alike. Wildcards are resolved to
        concrete names first, because Elasticsearch 8+ refuses wildcard deletes by default
        (``action.destructive_requires_name``).
        """
        if self.supports_data_streams:
            _, res = self.request("GET", f"/_data_stream/{_q(pattern)}", ok=(200, 404))
            for stream in (res or {}).get("data_streams", []):
                self.request("DELETE", f"/_data_stream/{_q(stream['name'])}", ok=(200, 404))
        _, res = self.request(
            "GET",
            f"/{_q(pattern)}/_settings/index.uuid?ignore_unavailable=true&allow_no_indices=true&expand_wildcards=all",
            ok=(200, 404),
        )
        names = sorted((res or {}).keys()) if isinstance(res, dict) and "error" not in res else []
        for start in range(0, len(names), 50):
            chunk = ",".join(names[start : start + 50])
            self.request("DELETE", f"/{_q(chunk)}?ignore_unavailable=true", ok=(200, 404))

    def delete_index_templates(self, pattern: str) -> None:
        """Delete composable and component templates named like ``pattern`` (missing ones are fine)."""
        _, res = self.request("GET", f"/_index_template/{_q(pattern)}", ok=(200, 404))
        for item in (res or {}).get("index_templates", []):
            self.request("DELETE", f"/_index_template/{_q(item['name'])}", ok=(200, 404))
        _, res = self.request("GET", f"/_component_template/{_q(pattern)}", ok=(200, 404))
        for item in (res or {}).get("component_templates", []):
            self.request("DELETE", f"/_component_template/{_q(item['name'])}", ok=(200, 404))

    def adapt_templates(self, templates: dict[str, Any]) -> dict[str, Any]:
        """``templates`` as this node can take them; unchanged on a real distribution.

        An embedded Elasticsearch 8/9 lacks the types of x-pack and the mapper-extras module: ``wildcard``
        and ``constant_keyword`` become ``keyword``, ``match_only_text`` becomes ``text`` (the types a
        real cluster falls back to are not the point of these tests: template install, placement, 409s
        and dead letters are). The embedded Elasticsearch 9 has no native zstd library, so
        ``best_compression`` is dropped there.
        """
        replacement = {"wildcard": "keyword", "constant_keyword": "keyword", "match_only_text": "text"}

        def walk(node: Any) -> Any:
            if isinstance(node, dict):
                out = {}
                for key, value in node.items():
                    if not self.zstd_codec and key in ("codec", "index.codec") and value == "best_compression":
                        continue
                    out[key] = walk(value)
                if isinstance(out.get("type"), str) and out["type"] in self.missing_types:
                    out["type"] = replacement[out["type"]]
                return out
            if isinstance(node, list):
                return [walk(item) for item in node]
            return node

        adapted: dict[str, Any] = walk(templates)
        return adapted

    def health(self) -> str:
        """Cluster health colour."""
        _, res = self.request("GET", "/_cluster/health")
        return str(res["status"])

    def rss_kib(self) -> int | None:
        """Resident memory of the embedded JVM (None for an external cluster)."""
        if self.process is None:
            return None
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return None
        m = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        return int(m.group(1)) if m else None


def _q(pattern: str) -> str:
    """Quote an index pattern for a URL path, keeping the characters index expressions use."""
    return urllib.parse.quote(pattern, safe="*,-_.")


# -- building ---------------------------------------------------------------------------------------------


def ensure_built() -> None:
    """Run tests/engine/build.sh (a no-op in well under a second when already built).

    A missing JDK or Maven is a set-up bug (``scripts/install.sh --test`` installs them), never a reason to
    skip, so this raises with the Debian package names.
    """
    for tool, pkg in (("java", "openjdk-17-jdk-headless"), ("javac", "openjdk-17-jdk-headless"), ("mvn", "maven")):
        if shutil.which(tool) is None:
            raise EngineError(f"'{tool}' not found: apt-get install -y {pkg} (or run scripts/install.sh --test)")
    proc = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise EngineError(f"{BUILD_SCRIPT} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


# -- embedded lifecycle -------------------------------------------------------------------------------------


@dataclass
class LaunchedEngine:
    """A JVM that has been started but not yet waited on (lets two engines boot concurrently)."""

    kind: EngineKind
    home: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    started: float

    def wait_ready(self) -> SearchEngine:
        """Wait until the node answers with health yellow/green; stop it and raise with its log otherwise."""
        try:
            address, version = _wait_for_address(self.process, self.log_path, self.started)
            engine = SearchEngine(
                url=f"http://{address}",
                flavor=self.kind.flavor,
                version=version,
                supports_data_streams=self.kind.data_streams,
                missing_types=self.kind.missing_types,
                zstd_codec=self.kind.zstd_codec,
                kind=self.kind,
                process=self.process,
                log_path=self.log_path,
            )
            _wait_healthy(engine, self.process, self.log_path, self.started)
            engine.startup_seconds = time.monotonic() - self.started
            return engine
        except BaseException:
            stop_process_group(self.process)
            raise


def launch_embedded(kind: EngineKind, home: Path) -> LaunchedEngine:
    """Start one embedded engine's JVM in ``home`` without waiting for it.

    The JVM binds HTTP and transport to port 0 and prints the address it got, so there is no window in
    which another process can take a pre-chosen free port.
    """
    ensure_built()
    target = kind.directory / "target"
    classpath = f"{target / 'classes'}:{(target / 'cp.txt').read_text().strip()}"
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / "engine.log"
    cmd = [
        kind.java, f"-Xms{HEAP}", f"-Xmx{HEAP}", "-XX:+UseSerialGC", "-Djava.awt.headless=true",
        "-XX:TieredStopAtLevel=1",  # C1 only: ~20 % faster start; test loads never need C2's peak speed
        "-Dauditrecv.exitOnStdinEof=true",  # no orphan JVM if this process dies without finalizers
        *(["--enable-native-access=ALL-UNNAMED"] if kind.java_release >= 21 else []),  # Lucene's, quietly
        *shlex.split(os.environ.get("AUDITRECV_ENGINE_JVM_OPTS", "")),  # e.g. a bench wanting C2 back
        "-cp", classpath, kind.main_class, str(home / "node"), "0", "0",
    ]  # fmt: skip
    started = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, process_group=0, cwd=home
        )
    return LaunchedEngine(kind, home, proc, log_path, started)


def start_embedded(kind: EngineKind, home: Path) -> SearchEngine:
    """Start one embedded engine and wait until its cluster health is yellow or green."""
    return launch_embedded(kind, home).wait_ready()


def _log_tail(log_path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _wait_for_address(proc: subprocess.Popen[bytes], log_path: Path, started: float) -> tuple[str, str]:
    """Wait for the launcher's ``VERSION=`` and ``HTTP_ADDRESS=`` lines."""
    # An engine launched in the background may be waited on long after its launch: always look once.
    deadline = max(started + START_TIMEOUT_S, time.monotonic() + 5.0)
    while True:
        text = log_path.read_text(errors="replace")
        addr = re.search(r"^HTTP_ADDRESS=(\S+)$", text, re.M)
        ver = re.search(r"^VERSION=(\S+)$", text, re.M)
        if addr and ver:
            return addr.group(1), ver.group(1)
        if proc.poll() is not None:
            raise EngineError(f"engine exited with {proc.returncode} before binding HTTP:\n{_log_tail(log_path)}")
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    raise EngineError(f"engine did not bind HTTP within {START_TIMEOUT_S:.0f} s:\n{_log_tail(log_path)}")


def _wait_healthy(engine: SearchEngine, proc: subprocess.Popen[bytes], log_path: Path, started: float) -> None:
    last = ""
    deadline = max(started + START_TIMEOUT_S, time.monotonic() + 30.0)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EngineError(f"engine exited with {proc.returncode}:\n{_log_tail(log_path)}")
        try:
            status, res = engine.request(
                "GET", "/_cluster/health?wait_for_status=yellow&timeout=1s", ok=(200, 408), timeout=5
            )
            if status == 200 and res.get("status") in ("green", "yellow"):
                return
            last = f"{status} {res}"
        except (OSError, EngineError) as err:
            last = repr(err)
        time.sleep(0.1)
    raise EngineError(f"engine not healthy within {START_TIMEOUT_S:.0f} s (last: {last}):\n{_log_tail(log_path)}")


def stop_process_group(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM the engine's own process group, then SIGKILL it if it lingers. Never touches other processes."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    if proc.stdin is not None:
        proc.stdin.close()


# -- external cluster -----------------------------------------------------------------------------------------


def connect_external(url: str) -> SearchEngine:
    """Wrap an existing cluster (``AUDITRECV_ES_URL``), detecting its flavor from ``GET /`` as the sink does."""
    parts = urllib.parse.urlsplit(url)
    auth = None
    netloc = parts.netloc
    if parts.username is not None:
        userinfo = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        auth = "Basic " + base64.b64encode(userinfo.encode()).decode()
        netloc = netloc.rsplit("@", 1)[1]
    clean = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    engine = SearchEngine(url=clean, flavor="unknown", version="unknown", auth_header=auth)
    _, root = engine.request("GET", "/")
    version = root.get("version", {})
    engine.flavor = "opensearch" if version.get("distribution") == "opensearch" else "elasticsearch"
    engine.version = str(version.get("number", "unknown"))
    major = int(engine.version.split(".")[0]) if engine.version[:1].isdigit() else 0
    # Elasticsearch 7.x has data streams only with its default (x-pack) distribution; assume they exist on a
    # real cluster, which is what a user would run.
    engine.supports_data_streams = engine.flavor == "opensearch" or major >= 7
    return engine
