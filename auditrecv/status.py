"""The HTTP endpoints: health, readiness, the Prometheus metrics each stage registers (auditrecv.metrics),
and a status page at `/` for an operator's browser.

`/ready`: can this receiver take records (spool open and not full, listeners up)? For load
balancers and orchestrators; the engine does not matter, records are spooled while it is down.
`/health`: the whole path, "degraded" (503) when the spool is full, the oldest record not yet
confirmed by the engine is older than `[health] max_unshipped_age`, a bulk request has waited
longer than `max_request_seconds`, or the engine refused our credentials.
"""

from __future__ import annotations

import collections
import html
import logging
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from auditrecv import __version__
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


def _engine_state(service: Service) -> dict[str, Any]:
    indexer = service.indexer
    configured = bool(service.cfg.search.urls)
    state: dict[str, Any] = {"configured": configured}
    if indexer is None:
        return state
    m = indexer.metrics
    engine = indexer.engine
    longest = indexer.longest_request_seconds()
    state.update(
        {
            "detected": f"{engine.flavor} {engine.version}" if engine is not None else None,
            "halted": bool(m.halted),
            "last_success_time": m.last_success_time or None,
            "last_error": m.last_error,
            "last_error_time": m.last_error_time or None,
            "requests_in_flight": m.in_flight,
            "longest_request_seconds": round(longest, 3),
        }
    )
    return state


def shipping_problems(service: Service, now: float | None = None) -> tuple[float | None, dict[str, Any], list[str]]:
    """(age in seconds of the oldest spooled record, engine state, why shipping is stalled).

    Without a configured engine records stay spooled on purpose (for `export`): not a problem.
    """
    now = time.time() if now is None else now
    limits = service.cfg.health
    oldest_ns = service.spool.oldest_received_ns if service.spool is not None else None
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


def health_report(service: Service, now: float | None = None) -> dict[str, Any]:
    """The whole path: spool, oldest record not yet confirmed by the engine, engine state."""
    age, engine, problems = shipping_problems(service, now)
    spool = service.spool
    spool_state = spool.state if spool is not None else "unknown"
    if spool_state == "full":
        problems.insert(0, "spool full: receivers are not acknowledging records")
    return {
        "status": "degraded" if problems else "ok",
        "reasons": problems,
        "spool": spool_state,
        "spool_records": spool.count() if spool is not None else 0,
        "oldest_unshipped_age": round(age, 3) if age is not None else None,
        "listeners": {name: srv.port for name, srv in service.servers.items()},
        "search_engine": engine["configured"],
        "engine": engine,
    }


def readiness(service: Service) -> list[str]:
    """Why this receiver cannot take records now (empty: it can). The engine does not matter here:
    while it is down records are spooled, so a load balancer must keep sending."""
    problems: list[str] = []
    spool = service.spool
    if spool is None or spool.closed:
        problems.append("spool not open")
    elif spool.state == "full":
        problems.append("spool full")
    if service.stopping:
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


# --------------------------------------------------------------------------- the status page at /


@dataclass(frozen=True, slots=True)
class LoggedProblem:
    at: float  # Unix seconds
    level: str
    message: str


class RecentProblems(logging.Handler):
    """The last warnings and errors of the service, for the status page (the log has them all)."""

    def __init__(self, keep: int = 20) -> None:
        super().__init__(logging.WARNING)
        self.entries: collections.deque[LoggedProblem] = collections.deque(maxlen=keep)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a broken log call must not break logging
            message = str(record.msg)
        self.entries.append(LoggedProblem(record.created, record.levelname, message))


class StatusPage:
    """Renders `/`: a page an operator reads in a browser, refreshing itself every few seconds.

    Rates (records per second per sender, the indexing rate) are measured between two renders; the
    first render shows a sender's average since it connected.
    """

    REFRESH_SECONDS = 2

    def __init__(self, problems: RecentProblems) -> None:
        self.problems = problems
        self._senders: dict[tuple[str, str, int, float], tuple[float, int]] = {}
        self._confirmed: tuple[float, int] | None = None

    def render(self, service: Service, now: float | None = None) -> str:
        now = time.time() if now is None else now
        age, engine, problems = shipping_problems(service, now)
        spool = service.spool
        spool_state = spool.state if spool is not None else "closed"
        if spool_state == "full":
            problems.insert(0, "spool full: receivers are not acknowledging records")
        status = "degraded" if problems else "ok"
        parts = [
            f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            f'<meta http-equiv="refresh" content="{self.REFRESH_SECONDS}">'
            f"<title>auditrecv {esc(service.cfg.observer_name or socket.gethostname())}</title>"
            f"<style>{_CSS}</style></head><body>",
            f"<header><h1>auditrecv {esc(__version__)}</h1>"
            f'<span id=status class="badge {status}">{status}</span>'
            f"<span class=muted>{esc(service.cfg.observer_name or socket.gethostname())} · "
            f"{esc(_clock(now))}</span></header>",
        ]
        if problems:
            parts.append("<ul id=reasons>" + "".join(f"<li>{esc(p)}</li>" for p in problems) + "</ul>")
        parts.append(self._senders_table(service, now))
        parts.append(self._spool_section(service, spool_state, age))
        parts.append(self._engine_section(service, engine, now))
        parts.append(self._problems_section(now))
        parts.append("</body></html>")
        return "".join(parts)

    def _senders_table(self, service: Service, now: float) -> str:
        conns = sorted(
            (c for srv in service.servers.values() for c in srv.connections()),
            key=lambda c: (c.listener, c.peer, c.peer_port),
        )
        seen: dict[tuple[str, str, int, float], tuple[float, int]] = {}
        rows = []
        for c in conns:
            key = (c.listener, c.peer, c.peer_port, c.connected_at)
            before = self._senders.get(key)
            since, count = before if before is not None else (c.connected_at, 0)
            rate = (c.records - count) / max(now - since, 1e-3)
            seen[key] = (now, c.records)
            last = _ago(now - c.last_record_at) if c.last_record_at is not None else "none yet"
            who = c.principal or ("unauthenticated" if c.mech == "dummy" else "")
            rows.append(
                "<tr class=sender>"
                f"<td class=peer>{esc(c.peer)}:{c.peer_port}</td>"
                f"<td class=name>{esc(c.name) or '<span class=muted>-</span>'}</td>"
                f"<td>{esc(c.protocol)}<div class=muted>{esc(c.listener)}</div></td>"
                f"<td>{esc(c.mech or 'tcp')}<div class=muted>{esc(who)}</div></td>"
                f"<td class='num records'>{c.records}</td>"
                f"<td class='num rate'>{rate:.1f}</td>"
                f"<td class=last>{esc(last)}</td>"
                f"<td>{esc(_ago(now - c.connected_at))}</td>"
                "</tr>"
            )
        self._senders = seen
        body = "".join(rows) or "<tr><td colspan=8 class=muted>no sender connected</td></tr>"
        return (
            f"<section><h2>Senders connected <span class=count id=sender-count>{len(conns)}</span></h2>"
            "<table id=senders><thead><tr><th>peer</th><th>zone / node</th><th>protocol</th>"
            "<th>mech / principal</th><th>records</th><th>records/s</th><th>last record</th>"
            f"<th>connected</th></tr></thead><tbody>{body}</tbody></table></section>"
        )

    @staticmethod
    def _spool_section(service: Service, state: str, age: float | None) -> str:
        spool = service.spool
        records = spool.count() if spool is not None else 0
        used = spool.metrics.bytes_used if spool is not None else 0
        limit = spool.max_bytes if spool is not None else 0
        fill = 100.0 * used / limit if limit else 0.0
        oldest = _duration(age) if age is not None else "empty"
        return (
            "<section><h2>Spool</h2><dl id=spool>"
            f"<dt>state</dt><dd class='state {esc(state)}'>{esc(state)}</dd>"
            f"<dt>records waiting</dt><dd id=spool-records>{records}</dd>"
            f"<dt>oldest unshipped</dt><dd id=spool-oldest>{esc(oldest)}</dd>"
            f"<dt>size</dt><dd>{_mib(used)} of {_mib(limit)} ({fill:.0f} %)"
            f"<div class=bar><div style='width:{min(fill, 100):.0f}%'></div></div></dd></dl></section>"
        )

    def _engine_section(self, service: Service, engine: dict[str, Any], now: float) -> str:
        if not engine["configured"]:
            return (
                "<section><h2>Search engine</h2><p id=engine class=muted>none configured: records stay in "
                "the spool (auditrecv export)</p></section>"
            )
        confirmed = int(service.pipeline.stats["indexed"]) if service.pipeline is not None else 0
        rate = "-"
        if self._confirmed is not None and now > self._confirmed[0]:
            rate = f"{(confirmed - self._confirmed[1]) / (now - self._confirmed[0]):.1f}"
        self._confirmed = (now, confirmed)
        state = "halted" if engine.get("halted") else "ok" if engine.get("detected") else "not reached yet"
        last_ok = engine.get("last_success_time")
        last_error = engine.get("last_error") or ""
        error_at = engine.get("last_error_time")
        return (
            "<section><h2>Search engine</h2><dl id=engine>"
            f"<dt>engine</dt><dd>{esc(engine.get('detected') or '-')}</dd>"
            f"<dt>state</dt><dd class='state {esc(state.split()[0])}'>{esc(state)}</dd>"
            f"<dt>indexing rate</dt><dd id=index-rate>{rate} documents/s</dd>"
            f"<dt>documents confirmed</dt><dd id=confirmed>{confirmed}</dd>"
            f"<dt>requests in flight</dt><dd>{engine.get('requests_in_flight', 0)}"
            f" (longest {engine.get('longest_request_seconds', 0.0):.1f} s)</dd>"
            f"<dt>last success</dt><dd>{esc(_ago(now - last_ok) if last_ok else 'none yet')}</dd>"
            + (
                f"<dt>last error</dt><dd class=error>{esc(last_error)}"
                f"<div class=muted>{esc(_ago(now - error_at) if error_at else '')}</div></dd>"
                if last_error
                else ""
            )
            + "</dl></section>"
        )

    def _problems_section(self, now: float) -> str:
        entries = list(self.problems.entries)[::-1]
        rows = "".join(
            f"<tr><td class=muted>{esc(_ago(now - e.at))}</td><td class='level {esc(e.level.lower())}'>"
            f"{esc(e.level)}</td><td>{esc(e.message)}</td></tr>"
            for e in entries
        )
        body = rows or "<tr><td class=muted>none since start</td></tr>"
        return f"<section><h2>Recent problems</h2><table id=problems><tbody>{body}</tbody></table></section>"


def esc(text: str) -> str:
    return html.escape(text, quote=True)


def _clock(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min {seconds % 60:.0f} s"
    if seconds < 86400:
        return f"{seconds // 3600:.0f} h {seconds % 3600 // 60:.0f} min"
    return f"{seconds // 86400:.0f} d {seconds % 86400 // 3600:.0f} h"


def _ago(seconds: float) -> str:
    return _duration(seconds) + " ago"


def _mib(n: int) -> str:
    return f"{n / 1048576:.1f} MiB"


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:70em;padding:1em 2em;color:#222;background:#fafafa}
header{display:flex;gap:1em;align-items:baseline;border-bottom:1px solid #ddd;margin-bottom:1em}
h1{font-size:1.4em;margin:.3em 0}h2{font-size:1.1em;margin:1.2em 0 .4em}
.badge{padding:.1em .6em;border-radius:1em;font-weight:600;color:#fff}.ok{background:#2e7d32}
.degraded{background:#c62828}.muted{color:#777;font-size:.9em}
table{border-collapse:collapse;width:100%;background:#fff}th,td{padding:.3em .6em;text-align:left;
border-bottom:1px solid #eee;vertical-align:top}th{background:#f0f0f0;font-weight:600}
.num{text-align:right;font-variant-numeric:tabular-nums}
dl{display:grid;grid-template-columns:12em 1fr;gap:.2em 1em;background:#fff;padding:.6em;margin:0}
dt{color:#555}dd{margin:0}.state.ok{background:none;color:#2e7d32;font-weight:600}
.state.full,.state.halted,.error,.level.error{color:#c62828;font-weight:600}.state.low,.level.warning{color:#b26a00}
.bar{height:.5em;background:#eee;width:20em;border-radius:.25em}.bar div{height:100%;background:#1976d2;
border-radius:.25em}#reasons{color:#c62828}
"""


async def status_handler(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    page = request.app[STATUS_PAGE_KEY]
    return web.Response(text=page.render(service), content_type="text/html", charset="utf-8")


STATUS_PAGE_KEY: web.AppKey[StatusPage] = web.AppKey("status_page", StatusPage)
