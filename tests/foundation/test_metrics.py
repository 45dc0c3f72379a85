"""auditrecv.metrics: the histogram kept by the stages and the registry's exposition text."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric

from auditrecv.metrics import (
    LatencyHistogram,
    ListenersCollector,
    ListenerStats,
    counter,
    exposition,
    histogram,
    new_registry,
    register_stage,
)
from tests.infra.prometheus import parse


def test_histogram_buckets_are_cumulative_and_bounds_inclusive() -> None:
    h = LatencyHistogram((0.1, 1.0))
    for seconds in (0.05, 0.1, 0.5, 1.0, 3.0):
        h.observe(seconds)
    assert h.buckets() == [("0.1", 2), ("1", 4), ("+Inf", 5)]
    assert h.count == 5 and h.sum == 4.65


class _Stage:
    def __init__(self) -> None:
        self.things = 3
        self.latency = LatencyHistogram((0.5,))
        self.latency.observe(0.25)

    def metric_families(self) -> Iterator[Metric]:
        yield counter("test_things", "Things counted.", self.things)
        yield histogram("test_seconds", "Time taken.", self.latency)


def _listener(name: str, protocol: str, received: int) -> ListenerStats:
    return ListenerStats(
        listener=name,
        protocol=protocol,
        connections_accepted=2,
        connections_refused=1,
        connections_evicted=0,
        connections_active=1,
        connections_failed=0,
        timeouts=0,
        gss_failures=0,
        records_received=received,
        records_acked=received,
        spool_full_waits=0,
    )


class _FakeListener:
    def __init__(self, stats: ListenerStats) -> None:
        self.stats = stats

    def listener_stats(self) -> ListenerStats:
        return self.stats


def test_registry_exposition_is_standard_text_read_at_scrape_time() -> None:
    registry = new_registry()
    stage = _Stage()
    register_stage(registry, stage)
    listeners = [
        _FakeListener(_listener("audit_remote", "audit_remote", 5)),
        _FakeListener(_listener("audisp_remote", "audisp_remote", 7)),
    ]
    registry.register(ListenersCollector(lambda: listeners))
    stage.things = 4  # read when scraped, not when registered
    text = exposition(registry).decode()
    assert "# TYPE test_things counter\n# HELP" not in text  # HELP comes first
    assert "# HELP test_things_total Things counted.\n# TYPE test_things_total counter\n" in text
    assert "test_things_total 4.0\n" in text
    # One family per name, whatever the number of listeners (a second TYPE line would be invalid).
    assert text.count("# TYPE auditrecv_records_received_total counter") == 1
    scrape = parse(text)
    assert scrape.value("auditrecv_records_received_total", listener="audit_remote", protocol="audit_remote") == 5
    assert scrape.value("auditrecv_records_received_total", listener="audisp_remote") == 7
    assert scrape.value("auditrecv_connections_total", outcome="refused") == 2
    assert scrape.value("test_seconds_bucket", le="0.5") == 1 and scrape.value("test_seconds_count") == 1
    assert scrape.families["test_seconds"].type == "histogram"
