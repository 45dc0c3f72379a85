"""Where a document goes, and the names and patterns of the templates that cover those indices.

A daily index is that of the event's `@timestamp`, not of its arrival, so a retransmit after midnight
lands beside the first copy and its `create` with the same `_id` is a duplicate (409).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from auditrecv.config import TEMPLATE_NAME_RE, Search

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
    """`pattern` (strftime) applied to `ts` (ISO string, datetime or epoch seconds) in UTC; an unparseable
    or missing timestamp falls back to `default` (now if None): the document goes to today's index."""
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
    """The index-template pattern covering exactly the names a strftime pattern can produce, lowered as
    ``format_index`` lowers them (``a-%Y.%m.%d`` -> ``a-*``, ``audit-%Y-x-%m`` -> ``audit-*-x-*``)."""
    out = _DIRECTIVE.sub(lambda m: "%" if m.group(0) == "%%" else "*", pattern).lower()
    return re.sub(r"\*(?:[^A-Za-z0-9*]*\*)*", "*", out)


def main_index_pattern(settings: Search) -> str:
    """What the main index template must match: the data stream, or every daily index."""
    if settings.mode == "data_stream":
        return settings.data_stream
    return index_pattern(settings.index)


# Templates are cluster-wide, so two receivers writing different indices must not share template
# names (the second would overwrite the first's patterns and mappings). Names therefore follow the
# index naming; the default daily configuration keeps the names it always had ("auditrecv",
# "auditrecv-dead-letter"), so existing clusters are not left with a second, orphaned set.

_DEFAULTS = Search()
DEFAULT_TEMPLATE = "auditrecv"
DEFAULT_DEAD_LETTER_TEMPLATE = "auditrecv-dead-letter"
_DEFAULT_DEAD_LETTER_PATTERN = index_pattern(_DEFAULTS.dead_letter_index)
_WILDCARD_RUN = re.compile(r"[-_.]*\*[-_.]*")


@dataclass(frozen=True, slots=True)
class TemplateNames:
    """Names of everything auditrecv installs for one index naming."""

    index_template: str
    dead_letter: str

    @property
    def settings_component(self) -> str:
        return f"{self.index_template}-settings"

    def mappings_component(self, schema: str) -> str:
        return f"{self.index_template}-{'v1' if schema == 'auditrecv-v1' else 'ecs'}-mappings"


def _name_for(pattern: str) -> str:
    """A data stream is named after itself and ``<stem>-*`` after its stem; any other pattern gets a
    readable part plus a digest of the whole pattern (``a-*-x-*`` and ``a-*-x`` differ)."""
    if "*" not in pattern and TEMPLATE_NAME_RE.match(pattern):
        return pattern  # a data stream: its template carries its name (logs-auditrecv-default)
    if pattern.endswith("-*") and "*" not in pattern[:-2] and TEMPLATE_NAME_RE.match(pattern[:-2]):
        return pattern[:-2]
    readable = _WILDCARD_RUN.sub("-", pattern).strip("-_.+")[:60] or DEFAULT_TEMPLATE
    if not TEMPLATE_NAME_RE.match(readable):
        readable = DEFAULT_TEMPLATE
    digest = hashlib.blake2b(pattern.encode("utf-8"), digest_size=4).hexdigest()
    return f"{readable}-{digest}"


def template_names(settings: Search) -> TemplateNames:
    """``search.template_name`` if set, else names derived from the index naming: ``audit-%Y.%m.%d``
    gives ``audit``, dead letters in ``audit-dlq-%Y.%m`` give ``audit-dlq-dead-letter``."""
    if settings.template_name:
        return TemplateNames(settings.template_name, f"{settings.template_name}-dead-letter")
    base = _name_for(main_index_pattern(settings))  # auditrecv-* (the default) -> auditrecv
    dead = index_pattern(settings.dead_letter_index)
    if dead == _DEFAULT_DEAD_LETTER_PATTERN:
        dead_name = DEFAULT_DEAD_LETTER_TEMPLATE
    else:
        dead_name = f"{_name_for(dead)}-dead-letter"
    return TemplateNames(base, dead_name)


def template_priority(pattern: str, base: int) -> int:
    """``base`` plus how specific ``pattern`` is (its literal characters, at most 99): the engine refuses
    overlapping templates of equal priority, and the more specific one is what its indices want."""
    return base + min(len(pattern.replace("*", "")), 99)
