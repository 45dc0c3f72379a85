"""Every metric a service can export is listed in docs/operating.md's "Metrics" section, and every
listed one exists: the stages are built (not started) and their families collected."""

from __future__ import annotations

import re
from pathlib import Path

from auditrecv.config import Enrich, parse_config
from auditrecv.enrich import Enricher
from auditrecv.metrics import ListenersCollector, ListenerStats, exposition, new_registry, register_stage
from auditrecv.pipeline import Pipeline
from auditrecv.sink.bulk import BulkIndexer
from auditrecv.spool import Spool
from tests.infra.prometheus import parse

OPERATING = Path(__file__).resolve().parents[2] / "docs" / "operating.md"


def documented() -> set[str]:
    section = OPERATING.read_text().split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    names = re.findall(r"^\| `(auditrecv_[a-z_]+)", section, flags=re.MULTILINE)
    return {name.removesuffix("_total") for name in names}


class _Listener:
    def listener_stats(self) -> ListenerStats:
        return ListenerStats("audit_remote", "audit_remote", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)


async def test_every_exported_metric_is_documented_and_every_documented_one_exported(tmp_path: Path) -> None:
    cfg = parse_config('[search]\nurls = ["http://127.0.0.1:9"]\n')
    registry = new_registry()
    registry.register(ListenersCollector(lambda: [_Listener()]))
    spool = await Spool.open(tmp_path / "spool.db")
    try:
        indexer = BulkIndexer(cfg.search)
        enricher = Enricher(Enrich(reverse_dns=True))
        for stage in (spool, Pipeline(cfg, spool, indexer, {}), indexer, enricher):
            register_stage(registry, stage)
        exported = set(parse(exposition(registry).decode()).families)
    finally:
        await spool.close()
    assert exported == documented()
