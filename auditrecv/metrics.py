"""Health and Prometheus-style metrics over HTTP, read from whatever each stage counts."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from aiohttp import web

SERVICE_KEY: web.AppKey[Any] = web.AppKey("service", object)


def _as_dict(obj: Any) -> dict[str, Any]:
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return obj
    if hasattr(obj, "to_dict"):
        return dict(obj.to_dict())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return {k: v for k, v in vars(obj).items() if not k.startswith("_")}


def _flatten(prefix: str, value: Any, out: dict[str, float]) -> None:
    if isinstance(value, bool | int | float):
        out[prefix] = float(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}_{k}", v, out)
    elif (dataclasses.is_dataclass(value) and not isinstance(value, type)) or hasattr(value, "to_dict"):
        _flatten(prefix, _as_dict(value), out)


def collect(service: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    spool = service.spool
    if spool is not None:
        stats = spool.stats() if hasattr(spool, "stats") else _as_dict(getattr(spool, "metrics", None))
        _flatten("auditrecv_spool", stats, out)
    for name, srv in service.servers.items():
        _flatten(f"auditrecv_listener_{name}", _as_dict(getattr(srv, "metrics", None)), out)
    if service.pipeline is not None:
        _flatten("auditrecv_pipeline", service.pipeline.stats, out)
    if service.indexer is not None:
        _flatten("auditrecv_sink", _as_dict(getattr(service.indexer, "metrics", None)), out)
    if service.enricher is not None:
        _flatten("auditrecv_enrich", _as_dict(getattr(service.enricher, "metrics", None)), out)
    return {re.sub(r"[^a-zA-Z0-9_]", "_", k): v for k, v in out.items()}


def _number(value: float) -> str:
    """Counters print exactly (1234567, not 1.23457e+06); other values in full precision."""
    return str(int(value)) if value.is_integer() else repr(value)


async def metrics_handler(request: web.Request) -> web.Response:
    lines = [f"{k} {_number(v)}" for k, v in sorted(collect(request.app[SERVICE_KEY]).items())]
    return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")


async def health_handler(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    spool_state = getattr(service.spool, "state", "unknown")
    body = {
        "status": "ok" if spool_state != "full" else "degraded",
        "spool": spool_state,
        "listeners": {name: getattr(srv, "port", None) for name, srv in service.servers.items()},
        "search_engine": bool(service.cfg.search.urls),
    }
    return web.json_response(body, status=200 if spool_state != "full" else 503)
