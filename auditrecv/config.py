"""Typed, validated settings loaded from one TOML file.

Every setting has a default that lets a non-root user run the service on one machine, so an
empty file (or none) is a valid configuration. Validation is strict: an unknown key or a wrong
type is an error that names the key, the value and what is wrong, because a silently ignored
typo in an audit receiver means records going somewhere nobody looks.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

# Index template names the engines accept (lower case, no leading "_", no \ / * ? " < > | , # or space).
TEMPLATE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._+-]{0,199}$")
RETENTION_RE = re.compile(r"^[1-9][0-9]{0,5}[dh]$")  # an age both ILM and ISM read: days or hours


class ConfigError(Exception):
    """A problem with the configuration, phrased for the operator (one line, no traceback)."""


def _default_state_dir() -> str:
    """systemd's StateDirectory= (deploy/auditrecv.service) first: the unit runs as its own user."""
    if systemd := os.environ.get("STATE_DIRECTORY"):
        return systemd.split(":")[0]
    if os.geteuid() == 0:
        return "/var/lib/auditrecv"
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "auditrecv")


# --------------------------------------------------------------------------- listeners


@dataclass(frozen=True)
class AuditRemoteListener:
    """illumos/Solaris audit_remote (BSM over GSS-API)."""

    enabled: bool = True
    host: str = "0.0.0.0"
    port: int = 16162  # IANA solaris-audit
    max_connections: int = 1000
    # One host holds one connection (a few while reconnecting); a few dozen allow NAT/per-zone
    # auditds behind one address. At the cap a newcomer replaces that address's connection
    # silent longest. 0 = no per-peer limit. See access.ConnectionLimiter.
    max_connections_per_peer: int = 32
    allow: list[str] = field(default_factory=list)  # CIDRs; empty = any peer
    # From accept to an established context. Above transport.c's 5 s p_timeout per step: the
    # client may fetch a service ticket from its KDC (with its own retries) between tokens.
    handshake_timeout: float = 30.0
    # A started frame must be complete within this (TCP retransmission backoff alone can take
    # 15 s), and a peer must read our acks within this once they pile up.
    stall_timeout: float = 30.0
    idle_timeout: float = 0.0  # 0 = never; auditd keeps its connection open indefinitely
    # Records received on one connection and not yet stored and acked; beyond it we stop
    # reading (TCP backpressure). Well above auditd's qsize (default 100).
    max_records_in_flight: int = 2048
    max_handshake_token: int = 65536
    max_record_token: int = 4 * 1024 * 1024
    require_channel_bindings: bool = True
    acceptor_principal: str = ""  # empty = any principal in the keytab
    allowed_principals: list[str] = field(default_factory=list)  # fnmatch patterns; empty = any
    allow_dummy_mech: bool = False
    dummy_mech_networks: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AudispRemoteListener:
    """Linux audisp-remote (managed or ascii format, plain TCP or Kerberos)."""

    enabled: bool = True
    host: str = "0.0.0.0"
    port: int = 16060
    transport: Literal["tcp", "krb5"] = "tcp"
    format: Literal["managed", "ascii"] = "managed"
    max_connections: int = 1000
    max_connections_per_peer: int = 32  # 0 = no per-peer limit
    allow: list[str] = field(default_factory=list)
    handshake_timeout: float = 30.0  # krb5 only: from accept to an authenticated context
    stall_timeout: float = 30.0  # a started frame must be complete, unread replies read, within this
    idle_timeout: float = 600.0  # must exceed the clients' heartbeat_timeout
    # The client is stop-and-wait (1 in flight); this bounds a pipelining one, and ascii batches.
    max_records_in_flight: int = 2048
    max_message_bytes: int = 8970
    krb5_service: str = "auditd"
    # Client principals accepted on krb5; empty = like auditd: "<service>/*@<default realm>".
    allowed_principals: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Listeners:
    audit_remote: AuditRemoteListener = field(default_factory=AuditRemoteListener)
    audisp_remote: AudispRemoteListener = field(default_factory=AudispRemoteListener)
    audisp_remote_krb5: AudispRemoteListener = field(
        default_factory=lambda: AudispRemoteListener(enabled=False, port=16061, transport="krb5")
    )


# --------------------------------------------------------------------------- the rest


@dataclass(frozen=True)
class Gss:
    keytab: str = ""  # empty = the Kerberos default (KRB5_KTNAME)
    krb5_config: str = ""  # empty = the system default (KRB5_CONFIG or /etc/krb5.conf)
    rcache_dir: str = ""  # empty = <state_dir>/rcache


@dataclass(frozen=True)
class Spool:
    path: str = ""  # empty = <state_dir>/spool.db
    max_bytes: int = 1024**3
    low_water_ratio: float = 0.8  # above this, audisp-remote clients are told DISKLOW
    commit_delay: float = 0.002  # seconds a group commit waits for company
    synchronous: Literal["full", "normal"] = "full"


@dataclass(frozen=True)
class LinuxEvents:
    grace_seconds: float = 2.0
    max_age_seconds: float = 10.0
    max_records: int = 1000


@dataclass(frozen=True)
class Decode:
    linux: LinuxEvents = field(default_factory=LinuxEvents)


@dataclass(frozen=True)
class Search:
    urls: list[str] = field(default_factory=list)  # empty = no engine: spool only
    username: str = ""
    password: str = ""
    api_key: str = ""
    bearer_token: str = ""
    ca_file: str = ""
    client_cert: str = ""
    client_key: str = ""
    verify_certs: bool = True
    request_timeout: float = 30.0
    mode: Literal["daily", "data_stream"] = "daily"
    index: str = "auditrecv-%Y.%m.%d"  # strftime of the event time, daily mode
    data_stream: str = "logs-auditrecv-default"
    dead_letter_index: str = "auditrecv-dlq-%Y.%m"
    template_name: str = ""  # empty = derived from the index naming ("auditrecv" for the defaults)
    schema: Literal["ecs", "auditrecv-v1"] = "ecs"
    install_templates: bool = True
    number_of_replicas: int = -1  # -1 = leave the engine default
    retention: str = ""  # "90d" / "36h": an ILM (Elasticsearch) or ISM (OpenSearch) policy deletes older indices
    batch_max_docs: int = 1000
    batch_max_bytes: int = 5 * 1024 * 1024
    batch_max_age: float = 0.25
    concurrency: int = 2
    gzip: bool = True
    # A bulk request failing this many times (5xx other than 502/503/504, timeouts) is split in halves;
    # a lone document failing this many times is dead-lettered once the engine has accepted other
    # documents since its first failure (proof that it, not the engine, is the problem). 429s and
    # outages never count: those records just wait in the spool.
    max_document_retries: int = 5


@dataclass(frozen=True)
class Limits:
    """Caps on one document, so one freak or hostile record cannot take down the engine (issue 14).

    Real audit documents are 1-10 kB with a few dozen values; what hurts an engine is one document
    with hundreds of thousands of values (200,000 BSM text tokens ran a 512 MB OpenSearch out of heap)
    or tens of megabytes. Each default is far above any real record and far below that.
    """

    # Whole serialized document, raw copy included (engines take 100 MB requests, but a multi-MB
    # document costs several times its size in heap while indexed); 4 MiB keeps a record of 2 MiB raw whole.
    max_document_bytes: int = 4 * 1024 * 1024
    # BSM tokens (bsm.tokens) and Linux records (auditd.records) per document: each is a flattened object
    # of several values. Real BSM records carry < 50 tokens; Linux events are closed at decode.linux.max_records.
    max_tokens: int = 1000
    # Items of any other list (process.args, bsm.texts, ...) and keys of any object: an xargs exec line
    # has a few thousand arguments.
    max_array_items: int = 10000
    # Characters of one string: twice Linux's largest single argument (MAX_ARG_STRLEN = 128 KiB).
    max_string_chars: int = 256 * 1024
    # A Linux event is closed once its lines reach this size (like decode.linux.max_records): bounds the
    # receiver's memory per open event and the raw copy a truncated document keeps. Real events are < 10 kB;
    # 1 MiB is about 120 full-length audisp-remote lines.
    max_linux_event_bytes: int = 1024 * 1024


@dataclass(frozen=True)
class Triton:
    vmapi_url: str = ""
    mahi_url: str = ""


@dataclass(frozen=True)
class Enrich:
    triton: Triton = field(default_factory=Triton)
    reverse_dns: bool = False
    static_map: str = ""  # TOML or CSV file; reloaded on SIGHUP
    lookup_timeout: float = 0.5
    event_budget: float = 1.0
    cache_ttl: float = 3600.0
    negative_ttl: float = 60.0
    cache_max_entries: int = 100_000


@dataclass(frozen=True)
class Http:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 9116


@dataclass(frozen=True)
class Health:
    """When /health says "degraded" and the log says shipping stalled (also without HTTP)."""

    max_unshipped_age: float = 30.0  # seconds the oldest spooled record may wait for the engine
    max_request_seconds: float = 10.0  # seconds a bulk request may wait for the engine's reply


@dataclass(frozen=True)
class Logging:
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"


@dataclass(frozen=True)
class Config:
    state_dir: str = field(default_factory=_default_state_dir)
    observer_name: str = ""  # empty = this host's name
    listeners: Listeners = field(default_factory=Listeners)
    gss: Gss = field(default_factory=Gss)
    spool: Spool = field(default_factory=Spool)
    decode: Decode = field(default_factory=Decode)
    search: Search = field(default_factory=Search)
    limits: Limits = field(default_factory=Limits)
    enrich: Enrich = field(default_factory=Enrich)
    http: Http = field(default_factory=Http)
    health: Health = field(default_factory=Health)
    logging: Logging = field(default_factory=Logging)

    @property
    def spool_path(self) -> Path:
        return Path(self.spool.path or os.path.join(self.state_dir, "spool.db")).expanduser()

    @property
    def rcache_dir(self) -> Path:
        return Path(self.gss.rcache_dir or os.path.join(self.state_dir, "rcache")).expanduser()


# --------------------------------------------------------------------------- loading

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:([kmgt])(i?)b?|b)?\s*$", re.IGNORECASE)
_BYTE_KEYS = {
    "max_bytes",
    "batch_max_bytes",
    "max_record_token",
    "max_handshake_token",
    "max_document_bytes",
    "max_linux_event_bytes",
}


def _parse_size(text: str) -> int | None:
    """'512MiB' -> 536870912; '5MB' -> 5000000; plain numbers are bytes."""
    m = _SIZE_RE.match(text)
    if not m:
        return None
    number, prefix, binary = m.group(1), (m.group(2) or "").lower(), m.group(3)
    power = "kmgt".index(prefix) + 1 if prefix else 0
    return int(float(number) * (1024 if binary else 1000) ** power)


def _describe(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin is list:
        return f"a list of {_describe(get_args(tp)[0]).removeprefix('a ').removeprefix('an ')}s"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(tp, str(tp))


def _convert(tp: Any, value: Any, key: str, default: Any = None) -> Any:
    def bad(what: str | None = None) -> ConfigError:
        return ConfigError(f"{key} = {value!r}: {what or 'expected ' + _describe(tp)}")

    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise bad("expected a table")
        return _build(tp, value, key, default)
    if origin is Literal:
        if value not in get_args(tp):
            raise bad()
        return value
    if origin is list:
        if not isinstance(value, list):
            raise bad()
        (item_tp,) = get_args(tp)
        return [_convert(item_tp, v, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin in (Union, types.UnionType):
        raise bad("unsupported type")  # not used by any setting
    if tp is bool:
        if not isinstance(value, bool):
            raise bad()
        return value
    if tp is int:
        if isinstance(value, str) and key.rsplit(".", 1)[-1] in _BYTE_KEYS:
            size = _parse_size(value)
            if size is None:
                raise bad('expected a byte count such as 1073741824, "512MiB" or "1GiB"')
            return size
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad()
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad()
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad()
        return value
    raise bad("unsupported type")


def _build(cls: Any, table: dict[str, Any], prefix: str, default: Any = None) -> Any:
    """Overlay a TOML table on the defaults (a section's own defaults, e.g. the krb5 listener's)."""
    base = default if default is not None else cls()
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if key not in names:
            known = ", ".join(sorted(names))
            raise ConfigError(f"{dotted}: unknown key (known keys here: {known})")
        kwargs[key] = _convert(hints[key], value, dotted, getattr(base, key))
    return dataclasses.replace(base, **kwargs)


# The strftime directives of a daily `[search] index` pattern (besides %%): what the native core formats.
INDEX_DIRECTIVES = ("%Y", "%m", "%d", "%j", "%y", "%H", "%M", "%S")


def index_pattern_problem(index: str) -> str | None:
    """Why a daily `[search] index` pattern cannot be used (a strftime directive the native core, which
    names the indices, does not format), or None."""
    for directive in re.findall(r"%.?", index.replace("%%", "")):
        if directive not in INDEX_DIRECTIVES:
            return (
                f"[search] index = {index!r}: {directive!r} is not supported; an index pattern may use only "
                f"{' '.join(INDEX_DIRECTIVES)} and %%"
            )
    return None


def _validate(cfg: Config) -> None:
    def cidrs(key: str, values: list[str]) -> None:
        for i, v in enumerate(values):
            try:
                ipaddress.ip_network(v, strict=False)
            except ValueError:
                raise ConfigError(f"{key}[{i}] = {v!r}: not a network address (CIDR)") from None

    def positive(key: str, value: float, allow_zero: bool = False) -> None:
        if value < 0 or (value == 0 and not allow_zero):
            raise ConfigError(f"{key} = {value!r}: must be {'>= 0' if allow_zero else '> 0'}")

    def port(key: str, value: int) -> None:
        if not 0 <= value <= 65535:
            raise ConfigError(f"{key} = {value!r}: not a TCP port (0-65535)")

    listeners: list[tuple[str, AuditRemoteListener | AudispRemoteListener]] = [
        ("listeners.audit_remote", cfg.listeners.audit_remote),
        ("listeners.audisp_remote", cfg.listeners.audisp_remote),
        ("listeners.audisp_remote_krb5", cfg.listeners.audisp_remote_krb5),
    ]
    for name, lst in listeners:
        port(f"{name}.port", lst.port)
        cidrs(f"{name}.allow", lst.allow)
        positive(f"{name}.max_connections", lst.max_connections)
        positive(f"{name}.max_connections_per_peer", lst.max_connections_per_peer, allow_zero=True)
        positive(f"{name}.handshake_timeout", lst.handshake_timeout)
        positive(f"{name}.stall_timeout", lst.stall_timeout)
        positive(f"{name}.idle_timeout", lst.idle_timeout, allow_zero=True)
        positive(f"{name}.max_records_in_flight", lst.max_records_in_flight)
    ar = cfg.listeners.audit_remote
    cidrs("listeners.audit_remote.dummy_mech_networks", ar.dummy_mech_networks)
    if ar.allow_dummy_mech and not ar.dummy_mech_networks:
        raise ConfigError(
            "listeners.audit_remote.dummy_mech_networks = []: required with allow_dummy_mech = true "
            "(the dummy mech authenticates nobody, so name the networks that may use it)"
        )
    for name, lst in listeners[1:]:
        assert isinstance(lst, AudispRemoteListener)
        if lst.transport == "krb5" and lst.format == "ascii":
            raise ConfigError(f"{name}.format = 'ascii': the krb5 transport always uses the managed format")
    if cfg.spool.max_bytes < 1024 * 1024:
        raise ConfigError(f"spool.max_bytes = {cfg.spool.max_bytes!r}: must be at least 1 MiB")
    if not 0 < cfg.spool.low_water_ratio <= 1:
        raise ConfigError(f"spool.low_water_ratio = {cfg.spool.low_water_ratio!r}: must be in (0, 1]")
    positive("spool.commit_delay", cfg.spool.commit_delay, allow_zero=True)
    for i, url in enumerate(cfg.search.urls):
        if not re.match(r"^https?://[^/\s]+", url):
            raise ConfigError(f"search.urls[{i}] = {url!r}: expected an http:// or https:// URL")
    s = cfg.search
    positive("search.batch_max_docs", s.batch_max_docs)
    positive("search.batch_max_bytes", s.batch_max_bytes)
    positive("search.concurrency", s.concurrency)
    positive("search.request_timeout", s.request_timeout)
    positive("search.max_document_retries", s.max_document_retries)
    if s.username and not s.password:
        raise ConfigError("search.password: missing (search.username is set)")
    if sum(bool(x) for x in (s.username, s.api_key, s.bearer_token)) > 1:
        raise ConfigError("search: set only one of username/password, api_key, bearer_token")
    if s.template_name and not TEMPLATE_NAME_RE.match(s.template_name):
        raise ConfigError(
            f"search.template_name = {s.template_name!r}: not a template name (lower-case letters, digits, "
            "'.', '_', '-', '+'; starting with a letter or digit)"
        )
    if s.mode == "daily" and (problem := index_pattern_problem(s.index)):
        raise ConfigError(problem)
    if bool(s.client_cert) != bool(s.client_key):
        raise ConfigError("search.client_key: client_cert and client_key go together")
    if s.retention and not RETENTION_RE.match(s.retention):
        raise ConfigError(
            f'search.retention = {s.retention!r}: expected a whole number of days or hours, like "90d" or '
            '"36h" (empty = keep everything)'
        )
    port("http.port", cfg.http.port)
    positive("health.max_unshipped_age", cfg.health.max_unshipped_age)
    positive("health.max_request_seconds", cfg.health.max_request_seconds)
    ev = cfg.decode.linux
    positive("decode.linux.grace_seconds", ev.grace_seconds, allow_zero=True)
    positive("decode.linux.max_age_seconds", ev.max_age_seconds)
    positive("decode.linux.max_records", ev.max_records)
    lim = cfg.limits
    if lim.max_document_bytes < 64 * 1024:
        raise ConfigError(f"limits.max_document_bytes = {lim.max_document_bytes!r}: must be at least 64 KiB")
    if lim.max_string_chars < 1024:
        raise ConfigError(f"limits.max_string_chars = {lim.max_string_chars!r}: must be at least 1024")
    positive("limits.max_tokens", lim.max_tokens)
    positive("limits.max_array_items", lim.max_array_items)
    positive("limits.max_linux_event_bytes", lim.max_linux_event_bytes)
    e = cfg.enrich
    for key in ("lookup_timeout", "event_budget", "cache_ttl", "negative_ttl"):
        positive(f"enrich.{key}", getattr(e, key))
    positive("enrich.cache_max_entries", e.cache_max_entries)


def parse_config(text: str, source: str = "<config>") -> Config:
    """Parse and validate TOML text; raises ConfigError with a one-line message."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    cfg: Config = _build(Config, table, "")
    _validate(cfg)
    return cfg


def load_config(path: str | os.PathLike[str] | None) -> Config:
    """Load a config file; None means defaults only."""
    if path is None:
        cfg = Config()
        _validate(cfg)
        return cfg
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    return parse_config(text, str(path))
