"""Enrichment: sender and zone metadata added to documents after the spool, never on the ack path.

Every lookup is cached (positive and negative TTLs, bounded), coalesced per key, bounded by a
per-lookup timeout, and the whole event by a time budget: when a service is slow or down, the event
is indexed on time with what is known (or stale values), and the miss is counted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import aiohttp
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from auditrecv.config import Enrich
from auditrecv.enrich.cache import LookupCache, NotFound
from auditrecv.enrich.static_map import StaticMap, StaticMapError
from auditrecv.enrich.triton import UUID_RE, TritonClient, ZoneInfo
from auditrecv.metrics import counter
from auditrecv.netaddr import principal_host, routable_ip, valid_ip
from auditrecv.spool.record import Source

__all__ = ["Enricher", "NotFound", "StaticMap", "ZoneInfo", "build_enricher"]

log = logging.getLogger("auditrecv.enrich")

ZLOGIN = "/usr/sbin/zlogin"


def _first(value: Any) -> str | None:
    if isinstance(value, list):
        return str(value[0]) if value else None
    return str(value) if value else None


class Enricher:
    def __init__(
        self,
        settings: Enrich,
        session: aiohttp.ClientSession | None = None,
        *,
        cache_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``cache_clock`` ages the cached lookups (monotonic seconds); tests pass their own."""
        self._settings = settings
        self._own_session = session is None
        self._session = session
        self._triton: TritonClient | None = None
        self._zones: LookupCache | None = None
        self._accounts: LookupCache | None = None
        self._dns: LookupCache | None = None
        self._static = StaticMap.empty()
        self.static_reloads = 0
        self.budget_exceeded = 0

        def cache(loader: Any) -> LookupCache:
            return LookupCache(
                loader,
                ttl=settings.cache_ttl,
                negative_ttl=settings.negative_ttl,
                max_entries=settings.cache_max_entries,
                lookup_timeout=settings.lookup_timeout,
                clock=cache_clock,
            )

        if settings.triton.vmapi_url:
            self._zones = cache(self._load_zone)
            self._accounts = cache(self._load_login)
        if settings.reverse_dns:
            self._dns = cache(self._load_ptr)
        if settings.static_map:
            self._static = StaticMap.load(settings.static_map)  # a bad file at start-up is a config error

    @property
    def metrics(self) -> dict[str, Any]:
        out: dict[str, Any] = {"static_map_reloads": self.static_reloads, "budget_exceeded": self.budget_exceeded}
        for name, c in (("vmapi", self._zones), ("mahi", self._accounts), ("dns", self._dns)):
            if c is not None:
                out[name] = {**vars(c.stats), "cache_entries": len(c)}
        return out

    def metric_families(self) -> Iterator[Metric]:
        """Lookup caches' counters as Prometheus metrics (auditrecv.metrics), by provider."""
        every = (("vmapi", self._zones), ("mahi", self._accounts), ("dns", self._dns))
        caches: list[tuple[str, LookupCache]] = [(name, c) for name, c in every if c is not None]
        labels = ["provider"]

        def per_provider(name: str, doc: str, value: Callable[[LookupCache], float], kind: str = "counter") -> Metric:
            fam = (CounterMetricFamily if kind == "counter" else GaugeMetricFamily)(name, doc, labels=labels)
            for provider, c in caches:
                fam.add_metric([provider], value(c))
            return fam

        yield per_provider("auditrecv_enrich_hits", "Lookups answered (cache or load).", lambda c: c.stats.hits)
        yield per_provider(
            "auditrecv_enrich_misses",
            "Lookups without a value: not found, failed, or not ready within the time budget.",
            lambda c: c.stats.misses,
        )
        yield per_provider(
            "auditrecv_enrich_timeouts",
            "Loads over lookup_timeout, and lookups given up at the event's time budget.",
            lambda c: c.stats.timeouts,
        )
        yield per_provider("auditrecv_enrich_queries", "Loads sent to the service.", lambda c: c.stats.lookups)
        yield per_provider("auditrecv_enrich_errors", "Loads that failed.", lambda c: c.stats.errors)
        yield per_provider(
            "auditrecv_enrich_stale_served", "Expired values served during a refresh.", lambda c: c.stats.stale_served
        )
        yield per_provider("auditrecv_enrich_cache_entries", "Entries cached now.", lambda c: len(c), kind="gauge")
        latency = HistogramMetricFamily(
            "auditrecv_enrich_query_seconds", "Time one load took, answered or not.", labels=labels
        )
        for provider, c in caches:
            latency.add_metric([provider], list(c.stats.latency_buckets.items()), c.stats.latency_sum)
        yield latency
        yield counter(
            "auditrecv_enrich_budget_exceeded",
            "Events whose enrichment ran out of its time budget (indexed without the missing values).",
            self.budget_exceeded,
        )
        yield counter("auditrecv_enrich_static_map_reloads", "Static map reloads (SIGHUP).", self.static_reloads)

    def reload(self) -> None:
        """SIGHUP: re-read the static map; a broken file keeps the previous map."""
        if not self._settings.static_map:
            return
        try:
            self._static = StaticMap.load(self._settings.static_map)
        except StaticMapError as exc:
            log.error("static map not reloaded, keeping the previous one: %s", exc)
            return
        self.static_reloads += 1
        log.info("static map reloaded from %s", self._settings.static_map)

    async def settled(self) -> None:
        """Wait until every lookup in flight has landed in its cache (shutdown, tests)."""
        for c in (self._zones, self._accounts, self._dns):
            if c is not None:
                await c.settled()

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()

    def _client(self) -> TritonClient:
        if self._triton is None:
            if self._session is None:
                timeout = aiohttp.ClientTimeout(total=self._settings.lookup_timeout)
                self._session = aiohttp.ClientSession(timeout=timeout)
            t = self._settings.triton
            self._triton = TritonClient(t.vmapi_url, t.mahi_url, self._session)
        return self._triton

    async def _load_zone(self, uuid: str) -> dict[str, Any]:
        return await self._client().vm(uuid)

    async def _load_login(self, owner_uuid: str) -> str:
        return await self._client().account_login(owner_uuid)

    async def _load_ptr(self, ip: str) -> str:
        loop = asyncio.get_running_loop()
        try:
            host, _ = await loop.getnameinfo((ip, 0), socket.NI_NAMEREQD)
        except socket.gaierror as exc:
            raise NotFound(ip) from exc
        return host

    async def zone(self, uuid: str, deadline: float) -> ZoneInfo | None:
        if self._zones is None or not UUID_RE.fullmatch(uuid):
            return None
        vm = await self._zones.get(uuid, deadline)
        if vm is None:
            return None
        owner = str(vm.get("owner_uuid") or "")
        login = ""
        if owner and self._accounts is not None:
            login = await self._accounts.get(owner, deadline) or ""
        tags = vm.get("tags") if isinstance(vm.get("tags"), dict) else {}
        return ZoneInfo(
            uuid=uuid,
            alias=str(vm.get("alias") or ""),
            owner_uuid=owner,
            owner_login=login,
            brand=str(vm.get("brand") or ""),
            server_uuid=str(vm.get("server_uuid") or ""),
            tags=dict(tags or {}),
        )

    @staticmethod
    def uniform_sender(source: Source, schema: str) -> bool:
        """Whether every document of this sender's records asks the enricher the same questions, so that
        `for_sender` values merged natively equal `enrich` on each document: ECS documents whose address
        is the sender's (a routable peer address; otherwise host.ip is each record's header address).
        Not for auditrecv-v1 batches: their dead letters are ECS-shaped and ask with other names."""
        return schema == "ecs" and routable_ip(source.peer) is not None

    async def for_sender(self, source: Source, zone_refs: Sequence[str]) -> dict[str, Any]:
        """`sender_values` within the event budget (one budget per sender and batch, where `enrich`
        spends one per document): past it, what was found so far, and the miss counted."""
        budget = self._settings.event_budget
        values: dict[str, Any] = {"hostname": None, "labels": {}, "zone_labels": {}, "zones": {}}
        try:
            await asyncio.wait_for(
                self.sender_values(source, zone_refs, time.monotonic() + budget, into=values), budget + 0.25
            )
        except TimeoutError:
            self.budget_exceeded += 1
        except Exception:
            log.exception("enrichment failed for a batch from %s; indexing it with what was found", source.peer)
        return values

    async def sender_values(
        self, source: Source, zone_refs: Sequence[str], deadline: float, *, into: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The values `enrich` would merge into every ECS document of `source` (see `uniform_sender`),
        looked up once: the PTR name of the sender's address, its static-map labels, the labels of each
        zone name the documents carry, and the zones they name (`zone_refs`, as the native
        `BsmDocuments.zone_refs` lists them). The shape `_native.ecs_bsm_bulk_body(enrichment=...)` takes;
        filled in place in `into` as lookups land, so a caller cut short keeps what was found."""
        values = into if into is not None else {"hostname": None, "labels": {}, "zone_labels": {}, "zones": {}}
        # the sender's host fields as the documents have them (host_fields in native/src/ecs/common.rs)
        name = principal_host(source.principal) if source.authenticated else None
        host_name = name or source.peer
        hostname = name if name and valid_ip(name) is None else None
        ip = routable_ip(source.peer)
        names = tuple(n for n in (host_name, hostname) if n)
        if self._dns is not None and ip and hostname is None:
            ptr = await self._dns.get(ip, deadline)
            if ptr:
                values["hostname"] = ptr
                names = (*names, ptr)
        values["labels"] = self._static.lookup(ip=ip, names=names)
        zone_labels: dict[str, dict[str, str]] = {}
        for ref in zone_refs:
            labels = self._static.by_name.get(ref.lower()) if ref else None
            if labels:
                zone_labels[ref.lower()] = dict(labels)
        values["zone_labels"] = zone_labels
        zones: dict[str, Any] = values["zones"]

        async def look_up(ref: str) -> None:
            info = await self.zone(ref, deadline)
            if info is not None:
                zones[ref] = dataclasses.asdict(info)

        await asyncio.gather(*(look_up(ref) for ref in dict.fromkeys(zone_refs) if ref != "global"))
        return values

    async def enrich(self, doc: dict[str, Any]) -> None:
        """Add what can be known within the event budget; never raises, never waits past it."""
        budget = self._settings.event_budget
        try:
            # Lookups stop waiting at the deadline themselves; the outer limit only guards against bugs.
            await asyncio.wait_for(self._enrich(doc, time.monotonic() + budget), budget + 0.25)
        except TimeoutError:
            self.budget_exceeded += 1
        except Exception:
            log.exception("enrichment failed for one document; indexing it without")

    async def _enrich(self, doc: dict[str, Any], deadline: float) -> None:
        host = doc.get("host")
        if not isinstance(host, dict):
            host = doc["host"] = {}
        ip = _first(host.get("ip") or doc.get("from"))
        names = tuple(n for n in (host.get("name"), host.get("hostname")) if isinstance(n, str))
        container = doc.get("container") if isinstance(doc.get("container"), dict) else None
        zonename = (container or {}).get("id") or doc.get("zonename")

        if self._dns is not None and ip and "hostname" not in host:
            ptr = await self._dns.get(ip, deadline)
            if ptr:
                host["hostname"] = ptr
                names = (*names, ptr)
                doc.setdefault("related", {}).setdefault("hosts", [])
                if ptr not in doc["related"]["hosts"]:
                    doc["related"]["hosts"].append(ptr)

        labels = self._static.lookup(ip=ip, names=(*names, str(zonename or "")))
        if labels:
            doc.setdefault("labels", {}).update(labels)

        if isinstance(zonename, str) and zonename != "global":
            info = await self.zone(zonename, deadline)
            if info is not None:
                _apply_zone(doc, info, in_zone=True)
        else:
            target = _zlogin_target(doc)
            if target:
                info = await self.zone(target, deadline)
                if info is not None:
                    _apply_zone(doc, info, in_zone=False)


def _zlogin_target(doc: dict[str, Any]) -> str | None:
    """The original auditrecv's rule: a global-zone exec of zlogin names the zone it enters."""
    proc = doc.get("process")
    if not isinstance(proc, dict):
        proc = {}
    exe = proc.get("executable") or doc.get("path")
    args = proc.get("args") or doc.get("exec_args") or []
    if exe != ZLOGIN and not (args and args[0] in (ZLOGIN, "zlogin")):
        return None
    for arg in args[1:]:
        if isinstance(arg, str) and UUID_RE.fullmatch(arg):
            return arg.lower()
    return None


def _apply_zone(doc: dict[str, Any], info: ZoneInfo, *, in_zone: bool) -> None:
    zonealias = f"{info.owner_login}-{info.alias}" if info.owner_login else info.alias
    if "zonename" in doc or doc.get("schema") == "auditrecv-v1":  # compatibility shape
        doc["zonealias"] = zonealias
        if not in_zone:
            doc["zlogin_zonename"] = info.uuid
        return
    zone = {"id": info.uuid, "name": info.alias}
    if in_zone:
        container = doc.setdefault("container", {})
        container.update({k: v for k, v in zone.items() if v})
        container.setdefault("runtime", "zone")
        if info.tags:
            container.setdefault("labels", {}).update({str(k): str(v) for k, v in info.tags.items()})
        doc["orchestrator"] = {
            "type": "triton",
            "resource": {"type": "vm", "id": info.uuid, **({"name": info.alias} if info.alias else {})},
        }
        cloud = doc.setdefault("cloud", {})
        cloud["provider"] = "triton"
        cloud["instance"] = {"id": info.uuid, **({"name": info.alias} if info.alias else {})}
        if info.owner_uuid:
            cloud["account"] = {"id": info.owner_uuid, **({"name": info.owner_login} if info.owner_login else {})}
        labels = doc.setdefault("labels", {})
        labels["zonealias"] = zonealias
        if info.brand:
            labels["triton_brand"] = info.brand
        if info.server_uuid:
            labels["triton_server_uuid"] = info.server_uuid
    else:
        target = doc.setdefault("auditrecv", {}).setdefault("zlogin", {})
        target["zone"] = {k: v for k, v in zone.items() if v}
        if info.owner_uuid:
            target["owner"] = {"id": info.owner_uuid, **({"name": info.owner_login} if info.owner_login else {})}
        target["zonealias"] = zonealias
        tags = doc.setdefault("tags", [])
        if "zlogin" not in tags:
            tags.append("zlogin")
    if info.owner_login:
        related = doc.setdefault("related", {}).setdefault("user", [])
        if info.owner_login not in related:
            related.append(info.owner_login)


async def build_enricher(settings: Enrich) -> Enricher | None:
    """None when nothing is configured, so the pipeline skips the stage entirely."""
    if not (settings.triton.vmapi_url or settings.reverse_dns or settings.static_map):
        return None
    enricher = Enricher(settings)
    log.info(
        "enrichment: triton=%s reverse_dns=%s static_map=%s",
        bool(settings.triton.vmapi_url),
        settings.reverse_dns,
        settings.static_map or "-",
    )
    return enricher
