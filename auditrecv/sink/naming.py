"""Where a document goes: a daily index from its own event time, or the configured data stream.

Daily placement uses the event's `@timestamp`, not the arrival time, so a retransmit that arrives
after midnight lands in the same index as the first copy and the `create` with the same `_id`
is recognised as a duplicate (409).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from auditrecv.config import Search

_DATE_ONLY = re.compile(r"^(?:[^%]|%[Ymdjy%])*$")  # pattern needs nothing finer than the day
_DIRECTIVE = re.compile(r"%.")


def _to_datetime(ts: Any) -> datetime | None:
    if isinstance(ts, datetime):
        return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    if isinstance(ts, int | float) and not isinstance(ts, bool):
        return datetime.fromtimestamp(ts, UTC)
    if isinstance(ts, str):
        try:
            dt = datetime.fromisoformat(ts.replace("Z", "+00:00") if ts.endswith("Z") else ts)
        except ValueError:
            return None
        return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    return None


@lru_cache(maxsize=4096)
def _format_day(pattern: str, day: str) -> str:
    return datetime.fromisoformat(day).strftime(pattern).lower()  # index names must be lower case


def format_index(pattern: str, ts: Any, default: datetime | None = None) -> str:
    """`pattern` (strftime) applied to `ts` (ISO string, datetime or epoch seconds) in UTC.

    An unparseable or missing timestamp falls back to `default` (now if None) rather than failing:
    the document is still indexed, just in today's index.
    """
    dt = _to_datetime(ts)
    if dt is None:
        dt = default or datetime.now(UTC)
    dt = dt.astimezone(UTC)
    if _DATE_ONLY.match(pattern):
        return _format_day(pattern, dt.date().isoformat())
    return dt.strftime(pattern).lower()


def index_for(settings: Search, doc: dict[str, Any]) -> str:
    """The target of one document: the data stream, or the daily index of its `@timestamp`."""
    if settings.mode == "data_stream":
        return settings.data_stream
    return format_index(settings.index, doc.get("@timestamp"))


def index_pattern(pattern: str) -> str:
    """An index-template pattern covering every name a strftime pattern can produce ("a-%Y.%m" -> "a-*")."""
    out = _DIRECTIVE.sub(lambda m: "%" if m.group(0) == "%%" else "*", pattern)
    return re.sub(r"\*(?:[^A-Za-z0-9*]*\*)*", "*", out)
