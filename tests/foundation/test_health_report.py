"""What /health, /ready and the shipping watchdog conclude from the service's state (issue 14, defect 4).

The real thing, with a hung engine, is tests/e2e/test_health_e2e.py; here the conclusions are
checked case by case on a stand-in service, with a fixed clock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from auditrecv.config import Config, Health, Search
from auditrecv.sink.bulk import BulkMetrics
from auditrecv.status import ShippingWatch, health_report, readiness

NOW = 1_800_000_000.0


@dataclass
class StandInSpool:
    state: str = "ok"
    records: int = 0
    oldest_received_ns: int | None = None
    closed: bool = False

    def count(self) -> int:
        return self.records


@dataclass
class StandInIndexer:
    metrics: BulkMetrics = field(default_factory=BulkMetrics)
    waiting: float = 0.0
    engine: Any = None

    def longest_request_seconds(self) -> float:
        return self.waiting


@dataclass
class StandInService:
    cfg: Config
    spool: StandInSpool = field(default_factory=StandInSpool)
    indexer: StandInIndexer | None = None
    servers: dict[str, Any] = field(default_factory=dict)
    stopping: bool = False

    def enabled_listeners(self) -> list[str]:
        return ["audit_remote", "audisp_remote"]


def service(*, engine: bool = True, **spool: Any) -> StandInService:
    cfg = Config(search=Search(urls=["http://127.0.0.1:9200"] if engine else []), health=Health(30.0, 10.0))
    return StandInService(
        cfg,
        StandInSpool(**spool),
        StandInIndexer() if engine else None,
        {"audit_remote": SimpleNamespace(port=1), "audisp_remote": SimpleNamespace(port=2)},
    )


def test_healthy_path_is_ok() -> None:
    report = health_report(service(records=3, oldest_received_ns=int((NOW - 5) * 1e9)), now=NOW)
    assert (report["status"], report["reasons"], report["oldest_unshipped_age"]) == ("ok", [], 5.0)
    assert report["search_engine"] is True and report["engine"]["halted"] is False


def test_old_unshipped_record_degrades_health() -> None:
    report = health_report(service(records=3, oldest_received_ns=int((NOW - 31) * 1e9)), now=NOW)
    assert report["status"] == "degraded"
    assert report["reasons"] == ["oldest unshipped record waited 31 s for the engine (limit 30 s)"]


def test_hung_request_and_halt_degrade_health() -> None:
    svc = service()
    assert svc.indexer is not None
    svc.indexer.waiting = 12.0
    svc.indexer.metrics.halted = True
    reasons = health_report(svc, now=NOW)["reasons"]
    assert reasons == [
        "a bulk request has waited 12 s for the engine's reply (limit 10 s)",
        "the engine refused our credentials: shipping halted",
    ]


def test_without_an_engine_spooled_records_are_not_a_problem() -> None:
    """Spool-only mode keeps records for `auditrecv export` on purpose."""
    report = health_report(service(engine=False, records=3, oldest_received_ns=int((NOW - 3600) * 1e9)), now=NOW)
    assert (report["status"], report["oldest_unshipped_age"], report["engine"]) == ("ok", 3600.0, {"configured": False})


def test_full_spool_degrades_health_and_readiness() -> None:
    svc = service(state="full")
    assert health_report(svc, now=NOW)["status"] == "degraded"
    assert readiness(svc) == ["spool full"]


def test_readiness_ignores_the_engine_but_not_listeners_or_shutdown() -> None:
    svc = service(records=3, oldest_received_ns=int((NOW - 3600) * 1e9))
    assert svc.indexer is not None
    svc.indexer.metrics.halted = True
    assert readiness(svc) == []  # the engine being away is what the spool is for
    del svc.servers["audisp_remote"]
    svc.stopping = True
    assert readiness(svc) == ["shutting down", "listeners not up: audisp_remote"]
    svc.spool.closed = True
    assert readiness(svc)[0] == "spool not open"


def test_watch_says_once_when_shipping_stalls_and_once_when_it_resumes(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="test.watch")
    watch = ShippingWatch(logging.getLogger("test.watch"))
    for problems in ([], ["x"], ["x"], ["x", "y"], [], [], ["z"]):
        watch.update(problems, 7)
    assert [r.levelno for r in caplog.records] == [logging.WARNING] * 3
    assert [m.split(":")[0] for m in caplog.messages] == [
        "shipping to the search engine stalled",
        "shipping to the search engine resumed (7 records waiting)",
        "shipping to the search engine stalled",
    ]
