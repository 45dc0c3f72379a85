"""Prometheus metrics: what each stage counts, exported in the standard exposition format.

Each stage keeps plain typed counters (an int addition on the hot path, no lock) and says itself, at
scrape time, what they mean as Prometheus metric families (`metric_families()`); this module holds the
typed seam (`MetricSource`), a lock-free histogram for latencies, and one `CollectorRegistry` per
`Service` (not the process-global one: tests run several services in one process). The listeners share
one metric name per counter with `listener`/`protocol` labels, so their snapshots (`ListenerStats`) are
merged here into one family each: two families with one name would be invalid exposition text.

The HTTP side (`/metrics`, `/health`, `/ready`) is in `auditrecv.status`.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

# Seconds; from a local fsync (~1 ms) to an engine that takes its time with a large bulk request.
LATENCY_BUCKETS: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class MetricSource(Protocol):
    """A stage that describes its own counters as metric families when scraped."""

    def metric_families(self) -> Iterable[Metric]: ...


class LatencyHistogram:
    """Bucket counts kept by the stage itself: ``observe`` is a bisect and two additions, no lock
    (everything runs on the event loop; a scrape at worst sees one observation half counted)."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one: above every bound (+Inf only)
        self.sum = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.sum += seconds
        self.count += 1

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative (le, count) pairs ending with +Inf, as the exposition format wants them."""
        out: list[tuple[str, float]] = []
        running = 0
        for bound, n in zip(self.bounds, self.counts, strict=False):
            running += n
            out.append((_le(bound), running))
        out.append(("+Inf", running + self.counts[-1]))
        return out


def _le(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else repr(float(bound))


def counter(name: str, documentation: str, value: float, labels: Mapping[str, str] | None = None) -> Metric:
    """One counter (``name`` without ``_total``: the family adds it)."""
    family = CounterMetricFamily(name, documentation, labels=list(labels or ()))
    family.add_metric(list((labels or {}).values()), value)
    return family


def gauge(name: str, documentation: str, value: float, labels: Mapping[str, str] | None = None) -> Metric:
    family = GaugeMetricFamily(name, documentation, labels=list(labels or ()))
    family.add_metric(list((labels or {}).values()), value)
    return family


def histogram(name: str, documentation: str, hist: LatencyHistogram, labels: Mapping[str, str] | None = None) -> Metric:
    family = HistogramMetricFamily(name, documentation, labels=list(labels or ()))
    family.add_metric(list((labels or {}).values()), hist.buckets(), hist.sum)
    return family


# --------------------------------------------------------------------------- listeners


@dataclass(frozen=True, slots=True)
class ListenerStats:
    """One listener's counters at scrape time, the same shape for both protocols."""

    listener: str  # the [listeners] table name: audit_remote, audisp_remote, audisp_remote_krb5
    protocol: str  # audit_remote (illumos) or audisp_remote (Linux)
    connections_accepted: int
    connections_refused: int  # by allow, max_connections or max_connections_per_peer
    connections_evicted: int  # silent unauthenticated connections closed to admit a newcomer
    connections_active: int
    connections_failed: int  # closed by us for a reason (protocol violation, GSS failure, timeout)
    timeouts: int  # handshake, stalled frame, unread acks (idle closes are not counted)
    gss_failures: int
    records_received: int  # taken off the wire and handed to the spool
    records_acked: int  # durably spooled and acknowledged to the sender
    spool_full_waits: int  # times an ack was held back because the spool was full


@dataclass(frozen=True, slots=True)
class ConnectionSnapshot:
    """One sender connected now, as the status page shows it."""

    listener: str
    protocol: str
    peer: str
    peer_port: int
    name: str  # the host a Kerberos principal names, or audisp-remote's node name; "" when unknown
    mech: str  # "krb5", "dummy", "" (plain TCP)
    principal: str
    authenticated: bool
    connected_at: float  # Unix seconds
    records: int  # records stored from this connection
    last_record_at: float | None  # Unix seconds; None before the first record


class Listener(Protocol):
    def listener_stats(self) -> ListenerStats: ...

    def connections(self) -> list[ConnectionSnapshot]: ...


class ListenersCollector(Collector):
    """Every listener's counters as one family per metric, told apart by labels."""

    def __init__(self, listeners: Callable[[], Iterable[Listener]]) -> None:
        self._listeners = listeners

    def collect(self) -> Iterator[Metric]:
        snapshots = [srv.listener_stats() for srv in self._listeners()]
        names = ["listener", "protocol"]

        def family(kind: type[CounterMetricFamily | GaugeMetricFamily], name: str, doc: str, field: str) -> Metric:
            fam = kind(name, doc, labels=names)
            for s in snapshots:
                fam.add_metric([s.listener, s.protocol], getattr(s, field))
            return fam

        conns = CounterMetricFamily(
            "auditrecv_connections",
            "Connections by outcome at admission: accepted, refused (allow list or connection limits), "
            "evicted (a silent unauthenticated connection closed to admit a newcomer).",
            labels=[*names, "outcome"],
        )
        for s in snapshots:
            for outcome, value in (
                ("accepted", s.connections_accepted),
                ("refused", s.connections_refused),
                ("evicted", s.connections_evicted),
            ):
                conns.add_metric([s.listener, s.protocol, outcome], value)
        yield conns
        yield family(GaugeMetricFamily, "auditrecv_connections_active", "Connections open now.", "connections_active")
        yield family(
            CounterMetricFamily,
            "auditrecv_connections_failed",
            "Connections closed by the receiver for a reason (protocol violation, GSS failure, timeout).",
            "connections_failed",
        )
        yield family(
            CounterMetricFamily,
            "auditrecv_connection_timeouts",
            "Connections closed for a timeout: handshake, stalled frame, acks left unread (not idle closes).",
            "timeouts",
        )
        yield family(
            CounterMetricFamily,
            "auditrecv_gss_failures",
            "Connections closed on a GSS-API failure (context refused or expired, unwrap failed).",
            "gss_failures",
        )
        yield family(
            CounterMetricFamily,
            "auditrecv_records_received",
            "Records taken off the wire and handed to the spool.",
            "records_received",
        )
        yield family(
            CounterMetricFamily,
            "auditrecv_records_acked",
            "Records durably spooled and acknowledged to the sender (audisp-remote ascii format sends no acks).",
            "records_acked",
        )
        yield family(
            CounterMetricFamily,
            "auditrecv_spool_full_waits",
            "Times a listener held acks back because the spool was full (the sender keeps the records).",
            "spool_full_waits",
        )


# --------------------------------------------------------------------------- registry


class StageCollector(Collector):
    """Adapts a stage's own ``metric_families()`` to the registry."""

    def __init__(self, source: MetricSource) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        return self._source.metric_families()


def new_registry() -> CollectorRegistry:
    """A registry of one service's own (never the process-global one)."""
    return CollectorRegistry(auto_describe=False)


def register_stage(registry: CollectorRegistry, stage: MetricSource) -> None:
    registry.register(StageCollector(stage))


def exposition(registry: CollectorRegistry) -> bytes:
    """The Prometheus text exposition format (version 0.0.4)."""
    return generate_latest(registry)
