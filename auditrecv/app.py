"""Wiring and lifecycle: spool, listeners, pipeline, HTTP health/metrics, signals."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import time
from typing import TYPE_CHECKING

from auditrecv import __version__
from auditrecv.config import Config
from auditrecv.metrics import ListenersCollector, new_registry, register_stage
from auditrecv.schema.observer import observer_info

if TYPE_CHECKING:
    from aiohttp import web

    from auditrecv.enrich import Enricher
    from auditrecv.pipeline import Pipeline
    from auditrecv.receive.server import ReceiveServer
    from auditrecv.sink import ServiceIndexer
    from auditrecv.spool import Spool
    from auditrecv.status import RecentProblems, ShippingWatch

log = logging.getLogger("auditrecv")
# How often the watchdog looks at the spool and the engine: a stall is logged within about this
# long of crossing a [health] limit.
WATCH_INTERVAL = 1.0


def prepare_kerberos_environment(cfg: Config) -> None:
    """MIT krb5 reads these once per process, so they must be set before the first GSS call.

    The keytab itself is passed to each acceptor explicitly; only the library-wide settings
    (krb5.conf, replay cache directory) go through the environment.
    """
    from auditrecv.receive.gss import apply_process_environment

    krb5_config = os.path.abspath(cfg.gss.krb5_config) if cfg.gss.krb5_config else ""
    try:
        apply_process_environment(krb5_config, cfg.rcache_dir)
    except OSError as exc:
        log.warning("Kerberos replay cache directory %s unusable: %s", cfg.rcache_dir, exc)


class Service:
    """Everything `auditrecv serve` runs, startable and stoppable from tests."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.spool: Spool | None = None
        self.servers: dict[str, ReceiveServer] = {}
        self.pipeline: Pipeline | None = None
        self.indexer: ServiceIndexer | None = None
        self.enricher: Enricher | None = None
        self.http_runner: web.AppRunner | None = None
        self.recent_problems: RecentProblems | None = None  # for the status page, once started
        self.stopping = False
        self.shipping_watch: ShippingWatch | None = None  # once started
        self._tasks: list[asyncio.Task[None]] = []
        # /metrics: each stage registers itself here once started (one registry per service, so that
        # several services in one process, as in the tests, keep their numbers apart).
        self.metrics = new_registry()
        self.metrics.register(ListenersCollector(lambda: list(self.servers.values())))

    def enabled_listeners(self) -> list[str]:
        """The listeners the configuration asks for (each must be up for /ready)."""
        listeners = self.cfg.listeners
        return [n for n in ("audit_remote", "audisp_remote", "audisp_remote_krb5") if getattr(listeners, n).enabled]

    async def start(self) -> None:
        from auditrecv.spool import Spool
        from auditrecv.status import RecentProblems

        cfg = self.cfg
        # First, so that the status page also lists what start-up warned about.
        self.recent_problems = RecentProblems()
        log.addHandler(self.recent_problems)
        prepare_kerberos_environment(cfg)
        cfg.spool_path.parent.mkdir(parents=True, exist_ok=True)
        self.spool = spool = await Spool.open(cfg.spool_path, cfg.spool)
        register_stage(self.metrics, spool)
        log.info("spool at %s (%d records waiting)", cfg.spool_path, spool.count())
        await self._start_pipeline()
        await self._start_listeners()
        if cfg.http.enabled:
            await self._start_http()
        self._tasks.append(asyncio.create_task(self._watch_shipping(), name="shipping-watch"))

    async def _watch_shipping(self) -> None:
        """Log promptly when shipping stalls and when it recovers (see auditrecv.status)."""
        from auditrecv.status import ShippingWatch, shipping_problems

        self.shipping_watch = watch = ShippingWatch(log)
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            try:
                _, _, problems = shipping_problems(self)
                watch.update(problems, self.spool.count() if self.spool is not None else 0)
            except Exception:  # a bug here must not stop the service, nor be silent
                log.exception("shipping watchdog failed")

    async def _start_listeners(self) -> None:
        from auditrecv.receive.listeners import start_audisp_remote_server, start_audit_remote_server

        cfg = self.cfg
        spool = self.spool
        assert spool is not None, "the spool opens first"
        if cfg.listeners.audit_remote.enabled:
            illumos = await start_audit_remote_server(cfg.listeners.audit_remote, cfg.gss, spool, name="audit_remote")
            self.servers["audit_remote"] = illumos
        for name in ("audisp_remote", "audisp_remote_krb5"):
            lst = getattr(cfg.listeners, name)
            if lst.enabled:
                self.servers[name] = await start_audisp_remote_server(lst, cfg.gss, spool, name=name)

    async def _start_pipeline(self) -> None:
        from auditrecv.pipeline import Pipeline

        cfg = self.cfg
        assert self.spool is not None, "the spool opens first"
        if not cfg.search.urls:
            log.warning(
                "no search engine configured: records are kept in the spool at %s. To index them, set "
                '[search] urls = ["http://HOST:9200"] in the config file and restart (auditrecv serve -c FILE), '
                "or write them to a file with: auditrecv export --ndjson FILE",
                cfg.spool_path,
            )
            return
        from auditrecv.enrich import build_enricher
        from auditrecv.sink import open_indexer

        self.enricher = await build_enricher(cfg.enrich)
        self.indexer = indexer = await open_indexer(cfg.search)
        # Before the listeners start: every record spooled so far came from an earlier run.
        started = time.time()
        self.pipeline = Pipeline(cfg, self.spool, indexer, observer_info(cfg), self.enricher, started=started)
        register_stage(self.metrics, self.pipeline)
        register_stage(self.metrics, indexer)
        if self.enricher is not None:
            register_stage(self.metrics, self.enricher)
        self._tasks.append(asyncio.create_task(self.pipeline.run(), name="pipeline"))

    async def _start_http(self) -> None:
        from aiohttp import web

        from auditrecv.status import (
            SERVICE_KEY,
            STATUS_PAGE_KEY,
            StatusPage,
            health_handler,
            metrics_handler,
            ready_handler,
            status_handler,
        )

        problems = self.recent_problems
        assert problems is not None, "set up at start"
        app = web.Application()
        app[SERVICE_KEY] = self
        app[STATUS_PAGE_KEY] = StatusPage(problems)
        app.router.add_get("/", status_handler)
        app.router.add_get("/health", health_handler)
        app.router.add_get("/ready", ready_handler)
        app.router.add_get("/metrics", metrics_handler)
        self.http_runner = web.AppRunner(app, access_log=None)
        await self.http_runner.setup()
        site = web.TCPSite(self.http_runner, self.cfg.http.host, self.cfg.http.port)
        await site.start()
        log.info("status page, health, readiness and metrics on http://%s:%d/", self.cfg.http.host, self.cfg.http.port)

    def reload(self) -> None:
        if self.enricher is not None:
            self.enricher.reload()

    async def stop(self) -> None:
        """Graceful: stop accepting (Linux clients get ENDING), finish in-flight work, close the spool."""
        self.stopping = True
        for srv in self.servers.values():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(srv.close(), 5)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.indexer is not None:
            with contextlib.suppress(Exception):
                await self.indexer.close()
        if self.enricher is not None:
            with contextlib.suppress(Exception):
                await self.enricher.close()
        if self.http_runner is not None:
            await self.http_runner.cleanup()
        if self.recent_problems is not None:
            log.removeHandler(self.recent_problems)
        if self.spool is not None:
            await self.spool.close()


async def serve(cfg: Config) -> int:
    service = Service(cfg)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, service.reload)
    from auditrecv.enrich.static_map import StaticMapError
    from auditrecv.receive.gss import GssFailure
    from auditrecv.spool import SpoolError

    try:
        await service.start()
    except (OSError, StaticMapError, GssFailure, SpoolError) as exc:
        # Operator-fixable problems (port in use, unreadable keytab or map, locked spool): one line, no traceback.
        log.error("cannot start: %s", exc)
        await service.stop()
        return 1
    # What start-up built (modules, config, tables, the spool, listeners: ~39k tracked objects) lives as
    # long as the process: out of the collector's sight, a full collection no longer walks it. Measured
    # on a started service: gc.collect() took 11-12 ms, a stall of the event loop in which a lone
    # stop-and-wait sender gets no ack (~300 acks at 30k/s); after gc.freeze(), well under 0.1 ms.
    gc.collect()
    gc.freeze()
    log.info("auditrecv %s running; Ctrl-C stops it", __version__)
    await stop.wait()
    # A repeated SIGTERM (a supervisor's or a test's stop after its own signal) must not turn the
    # graceful shutdown into a kill: once the loop's handlers are gone it would hit the default action.
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)
        signal.signal(sig, signal.SIG_IGN)
    log.info("shutting down")
    await service.stop()
    return 0
