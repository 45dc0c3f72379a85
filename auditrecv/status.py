"""The HTTP endpoints: health, readiness, and the Prometheus metrics each stage registers (auditrecv.metrics).

`/ready`: can this receiver take records (spool open and not full, listeners up)? For load
balancers and orchestrators; the engine does not matter, records are spooled while it is down.
`/health`: the whole path, "degraded" (503) when the spool is full, the oldest record not yet
confirmed by the engine is older than `[health] max_unshipped_age`, a bulk request has waited
longer than `max_request_seconds`, or the engine refused our credentials.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from auditrecv.metrics import exposition

if TYPE_CHECKING:
    from auditrecv.app import Service

SERVICE_KEY: web.AppKey[Service] = web.AppKey("service")


METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


async def metrics_handler(request: web.Request) -> web.Response:
    """Prometheus text exposition of this service's registry (see auditrecv.metrics)."""
    body = exposition(request.app[SERVICE_KEY].metrics)
    return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})


# --------------------------------------------------------------------------- health and readiness


def _engine_state(service: Any) -> dict[str, Any]:
    indexer = service.indexer
    configured = bool(service.cfg.search.urls)
    state: dict[str, Any] = {"configured": configured}
    if indexer is None:
        return state
    m = indexer.metrics
    engine = getattr(indexer, "engine", None)
    longest = indexer.longest_request_seconds() if hasattr(indexer, "longest_request_seconds") else 0.0
    state.update(
        {
            "detected": f"{engine.flavor} {engine.version}" if engine is not None else None,
            "halted": bool(m.halted),
            "last_success_time": getattr(m, "last_success_time", 0.0) or None,
            "last_error": m.last_error,
            "last_error_time": m.last_error_time or None,
            "requests_in_flight": m.in_flight,
            "longest_request_seconds": round(longest, 3),
        }
    )
    return state


def shipping_problems(service: Any, now: float | None = None) -> tuple[float | None, dict[str, Any], list[str]]:
    """(age in seconds of the oldest spooled record, engine state, why shipping is stalled).

    Without a configured engine records stay spooled on purpose (for `export`): not a problem.
    """
    now = time.time() if now is None else now
    limits = service.cfg.health
    oldest_ns = getattr(service.spool, "oldest_received_ns", None) if service.spool is not None else None
    age = max(0.0, now - oldest_ns / 1e9) if oldest_ns is not None else None
    engine = _engine_state(service)
    problems: list[str] = []
    if engine["configured"]:
        if age is not None and age > limits.max_unshipped_age:
            problems.append(
                f"oldest unshipped record waited {age:.0f} s for the engine (limit {limits.max_unshipped_age:g} s)"
            )
        longest = engine.get("longest_request_seconds", 0.0)
        if longest > limits.max_request_seconds:
            problems.append(
                f"a bulk request has waited {longest:.0f} s for the engine's reply "
                f"(limit {limits.max_request_seconds:g} s)"
            )
        if engine.get("halted"):
            problems.append("the engine refused our credentials: shipping halted")
    return age, engine, problems


def health_report(service: Any, now: float | None = None) -> dict[str, Any]:
    """The whole path: spool, oldest record not yet confirmed by the engine, engine state."""
    age, engine, problems = shipping_problems(service, now)
    spool = service.spool
    spool_state = getattr(spool, "state", "unknown")
    if spool_state == "full":
        problems.insert(0, "spool full: receivers are not acknowledging records")
    return {
        "status": "degraded" if problems else "ok",
        "reasons": problems,
        "spool": spool_state,
        "spool_records": spool.count() if spool is not None else 0,
        "oldest_unshipped_age": round(age, 3) if age is not None else None,
        "listeners": {name: getattr(srv, "port", None) for name, srv in service.servers.items()},
        "search_engine": engine["configured"],
        "engine": engine,
    }


def readiness(service: Any) -> list[str]:
    """Why this receiver cannot take records now (empty: it can). The engine does not matter here:
    while it is down records are spooled, so a load balancer must keep sending."""
    problems: list[str] = []
    spool = service.spool
    if spool is None or getattr(spool, "closed", False):
        problems.append("spool not open")
    elif spool.state == "full":
        problems.append("spool full")
    if getattr(service, "stopping", False):
        problems.append("shutting down")
    missing = [name for name in service.enabled_listeners() if name not in service.servers]
    if missing:
        problems.append("listeners not up: " + ", ".join(missing))
    return problems


async def health_handler(request: web.Request) -> web.Response:
    body = health_report(request.app[SERVICE_KEY])
    return web.json_response(body, status=503 if body["status"] == "degraded" else 200)


async def ready_handler(request: web.Request) -> web.Response:
    problems = readiness(request.app[SERVICE_KEY])
    return web.json_response({"ready": not problems, "reasons": problems}, status=503 if problems else 200)


class ShippingWatch:
    """Says once when shipping stalls and once when it recovers, instead of nothing for half a minute
    (the first sign used to be a bulk request timing out) or a line per retry."""

    def __init__(self, logger: logging.Logger) -> None:
        self._log = logger
        self.stalled = False

    def update(self, problems: list[str], spooled: int) -> None:
        if problems and not self.stalled:
            self.stalled = True
            self._log.warning(
                "shipping to the search engine stalled: %s; records are kept in the spool (%d waiting)",
                "; ".join(problems),
                spooled,
            )
        elif not problems and self.stalled:
            self.stalled = False
            self._log.warning("shipping to the search engine resumed (%d records waiting)", spooled)
