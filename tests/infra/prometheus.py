"""Reading /metrics as Prometheus does: the reference parser, samples keyed by name and labels."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Scrape:
    """One scrape: the parsed families and the raw text (for TYPE/HELP checks and failure messages)."""

    text: str
    families: dict[str, Metric]

    def value(self, sample: str, **labels: str) -> float:
        """The sum of the samples named ``sample`` whose labels include ``labels`` (0 when none)."""
        total = 0.0
        for family in self.families.values():
            for s in family.samples:
                if s.name == sample and _includes(s.labels, labels):
                    total += s.value
        return total

    def has(self, sample: str, **labels: str) -> bool:
        return any(s.name == sample and _includes(s.labels, labels) for f in self.families.values() for s in f.samples)


def _includes(have: Mapping[str, str], want: Mapping[str, str]) -> bool:
    return all(have.get(k) == v for k, v in want.items())


def parse(text: str) -> Scrape:
    return Scrape(text, {f.name: f for f in text_string_to_metric_families(text)})


def scrape(http_port: int, timeout: float = 5.0) -> Scrape | None:
    """GET /metrics (blocking; run it in a thread from async code). None while the service is down."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=timeout) as resp:
            return parse(resp.read().decode())
    except (OSError, urllib.error.URLError):
        return None
