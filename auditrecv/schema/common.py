"""Helpers shared by the BSM and Linux mappers: nested-field writes, time, addresses, host identity."""

from __future__ import annotations

import base64
import errno as errno_module
import functools
import hashlib
import os
import posixpath
from datetime import UTC, datetime
from typing import Any

import orjson

from auditrecv.netaddr import principal_host, routable_ip, valid_ip
from auditrecv.spool.record import Source

Doc = dict[str, Any]

SCHEMA_NAME = "ecs"
ECS_VERSION = "8.11.0"

# audit ids that mean "not set" (unsigned 32-bit -1 and -2, as both kernels write them)
UNSET_IDS = frozenset({4294967295, 4294967294, -1, -2, "4294967295", "4294967294", "-1", "-2", "unset"})


# Dotted paths split once: the mappers write ~65 fields per document from a small, fixed set of paths,
# and re-splitting them on every write was a fifth of the mapping time. Bounded in case of odd callers.
_SPLIT_CACHE: dict[str, tuple[tuple[str, ...], str]] = {}
_SPLIT_CACHE_MAX = 4096


def _split(dotted: str) -> tuple[tuple[str, ...], str]:
    """(parent keys, leaf key) of a dotted path, cached."""
    found = _SPLIT_CACHE.get(dotted)
    if found is None:
        *parents, leaf = dotted.split(".")
        found = (tuple(parents), leaf)
        if len(_SPLIT_CACHE) < _SPLIT_CACHE_MAX:
            _SPLIT_CACHE[dotted] = found
    return found


def _parent(doc: Doc, dotted: str) -> tuple[Doc, str]:
    """The dict that holds the last part of a dotted path (made if missing), and that last part."""
    parents, leaf = _SPLIT_CACHE.get(dotted) or _split(dotted)
    node = doc
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    return node, leaf


def put(doc: Doc, dotted: str, value: Any) -> None:
    """Set ``doc[a][b][c] = value`` for ``"a.b.c"``; None, "" and [] are not written (absent = unknown)."""
    # `not value` first: truthy values (almost all) skip the three equality tests
    if not value and (value is None or value == "" or value == []):
        return
    node, leaf = _parent(doc, dotted)
    node[leaf] = value


def put_key(section: Doc, key: str, value: Any) -> None:
    """put() for one key of a section dict the caller already holds (no path to walk)."""
    if not value and (value is None or value == "" or value == []):
        return
    section[key] = value


def get(doc: Doc, dotted: str) -> Any:
    """Value at a dotted path, or None."""
    parents, leaf = _SPLIT_CACHE.get(dotted) or _split(dotted)
    node: Any = doc
    for part in parents:
        node = node.get(part)
        if not isinstance(node, dict):
            return None
    return node.get(leaf)


def add_unique(doc: Doc, dotted: str, *values: Any) -> None:
    """Append values to a list field, keeping order and skipping empties and repeats."""
    # nothing to add (the common case: an absent address or id) leaves the document as it was
    fresh = [v for v in values if v is not None and v != ""]
    if not fresh:
        return
    node, leaf = _parent(doc, dotted)  # the field will be written: make its parents
    current = node.get(leaf)
    items: list[Any] = list(current) if isinstance(current, list) else []
    for v in fresh:
        if v not in items:
            items.append(v)
    node[leaf] = items


def iso_ns(time_ns: int) -> str:
    """RFC 3339 UTC with all nine fractional digits, what a date_nanos field keeps exactly."""
    sec, frac = divmod(time_ns, 1_000_000_000)
    return f"{_iso_seconds(sec)}.{frac:09d}Z"


@functools.lru_cache(maxsize=1024)
def _iso_seconds(sec: int) -> str:
    # records arrive in bursts within the same second (and event.created repeats it): strftime once
    return datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def id_text(value: Any) -> str | None:
    """A uid/gid as ECS wants it (keyword text), None for the unset markers."""
    if value is None or value in UNSET_IDS:
        return None
    return str(value)


def errno_message(name: str | None) -> str | None:
    """Human text for an errno *name*; names are portable across systems where numbers are not."""
    if not name:
        return None
    number = getattr(errno_module, name, None)
    if isinstance(number, int):
        return os.strerror(number)
    return None


def basename(path: str | None) -> str | None:
    if not path:
        return None
    return posixpath.basename(path.rstrip("/")) or path


def file_type_from_mode(mode: int) -> str | None:
    """ECS file.type from the S_IFMT bits of a st_mode."""
    return {
        0o100000: "file",
        0o040000: "dir",
        0o120000: "symlink",
        0o020000: "char_device",
        0o060000: "block_device",
        0o010000: "fifo",
        0o140000: "socket",
    }.get(mode & 0o170000)


def short_hash(*parts: Any) -> str:
    """Compact stable id (base64url blake2b-96) for process.entity_id."""
    h = hashlib.blake2b(digest_size=12, person=b"auditrecv-ent-v1")
    for part in parts:
        data = str(part).encode("utf-8", "surrogateescape")
        h.update(len(data).to_bytes(4, "big") + data)
    return base64.urlsafe_b64encode(h.digest()).decode("ascii")


_SOURCE_NAMES = ("transport", "peer", "mech", "principal", "listener")


def source_fields(doc: Doc, source: Source) -> None:
    """Where the record came from (auditrecv.source.*) and event.provider."""
    put(doc, "event.provider", source.transport)
    # auditrecv.source always gets ``authenticated``, so the objects can be made up front
    meta = doc.get("auditrecv")
    if not isinstance(meta, dict):
        meta = doc["auditrecv"] = {}
    src = meta.get("source")
    if not isinstance(src, dict):
        src = meta["source"] = {}
    for name in _SOURCE_NAMES:
        value = getattr(source, name)
        if value is not None and value != "":
            src[name] = value
    if source.peer_port:
        src["peer_port"] = source.peer_port
    src["authenticated"] = bool(source.authenticated)
    meta["schema"] = SCHEMA_NAME


def host_fields(doc: Doc, source: Source, node: str | None = None, extra_ips: list[str] | None = None) -> None:
    """host.* for the audited host: node name, else the authenticated principal's host, else the peer.

    Only the peer address is ever sure to exist; names are better for people, so the most trustworthy
    name wins and every address goes to host.ip. The enrichment stage may replace host.name later.
    """
    name = node or (principal_host(source.principal) if source.authenticated else None)
    peer_ip = valid_ip(source.peer)
    if name:
        put(doc, "host.name", name)
        if valid_ip(name) is None:
            put(doc, "host.hostname", name)
    elif source.peer:
        put(doc, "host.name", source.peer)
    ips = [routable_ip(ip) for ip in (peer_ip, *(extra_ips or ()))]
    # host.ip before related.ip, as one address at a time would create them
    add_unique(doc, "host.ip", *ips)
    add_unique(doc, "related.ip", *ips)
    host_name = get(doc, "host.name")
    if isinstance(host_name, str) and valid_ip(host_name) is None:
        add_unique(doc, "related.hosts", host_name)


_OBSERVER_KEYS = ("hostname", "name", "type", "product", "vendor", "version")
_OBSERVER_DEFAULTS = {"type": "audit-receiver", "product": "auditrecv", "vendor": "auditrecv"}


def observer_fields(doc: Doc, observer: dict[str, Any]) -> None:
    """observer.* for this receiver, from the pipeline's dict, with constant product identity."""
    obs = observer or {}
    section: Doc = {}
    for key in _OBSERVER_KEYS:
        value = obs[key] if key in obs else _OBSERVER_DEFAULTS.get(key)
        if value:
            section[key] = str(value)
    if section:  # written as one section, merged the way one put() per key would
        existing = doc.get("observer")
        if isinstance(existing, dict):
            existing.update(section)
        else:
            doc["observer"] = section
    ips = obs.get("ip")
    if isinstance(ips, str):
        ips = [ips]
    if isinstance(ips, list):
        add_unique(doc, "observer.ip", *[valid_ip(ip) for ip in ips])


# where related.user reads from, in this order: user.{id,name}, then user.<sub>.<key>
_RELATED_USER_SUBS = (
    ("effective", ("id", "name")),
    ("audit", ("id", "name")),
    ("saved", ("id",)),
    ("filesystem", ("id",)),
    ("target", ("id", "name")),
)


def related_users(doc: Doc) -> None:
    """related.user from every user id and name already written into the document."""
    user = doc.get("user")
    if not isinstance(user, dict):  # every source field is under user.*
        return
    values = [user.get("id"), user.get("name")]
    for sub, keys in _RELATED_USER_SUBS:
        node = user.get(sub)
        if isinstance(node, dict):
            values += [node.get(key) for key in keys]
    add_unique(doc, "related.user", *values)


def summary_message(doc: Doc, summary: dict[str, Any]) -> str:
    """One line for people: ``<actor> <action> <object> (<outcome>)``."""
    actor = get(doc, "user.audit.name") or get(doc, "user.name") or get(doc, "user.audit.id") or get(doc, "user.id")
    action = summary.get("action") or get(doc, "event.action") or "did"
    obj = (summary.get("object") or {}).get("primary")
    outcome = get(doc, "event.outcome") or "unknown"
    parts = [str(actor) if actor is not None else "someone", str(action)]
    if obj:
        parts.append(str(obj))
    return " ".join(parts) + f" ({outcome})"


FLAT_VALUE_LIMIT = 8191  # characters; 4 UTF-8 bytes each stays under Lucene's 32766-byte term limit


def has_long_strings(value: Any, limit: int = FLAT_VALUE_LIMIT) -> bool:
    """Whether cap_strings would cut anything, without copying (the usual answer is no)."""
    try:
        # A string of n characters takes at least n bytes of JSON, so a short serialisation proves there
        # is nothing to cut; orjson does that in C, far quicker than walking the values in Python.
        if len(orjson.dumps(value)) <= limit:
            return False
    except TypeError:  # orjson.JSONEncodeError: surrogates, huge ints, odd keys; walk instead
        pass
    return _has_long_strings(value, limit)


def _has_long_strings(value: Any, limit: int) -> bool:
    if isinstance(value, str):
        return len(value) > limit
    if isinstance(value, dict):
        items: Any = value.values()
    elif isinstance(value, list):
        items = value
    else:
        return False
    for v in items:
        if isinstance(v, str):
            if len(v) > limit:
                return True
        elif isinstance(v, dict | list) and _has_long_strings(v, limit):
            return True
    return False


def cap_strings(value: Any, limit: int = FLAT_VALUE_LIMIT) -> tuple[Any, bool]:
    """Copy with strings longer than ``limit`` cut (for flattened fields), and whether anything was cut.

    OpenSearch's flat_object has no ``ignore_above``: one 40 kB exec argument would reject the whole
    document. The caller keeps the uncut value in a stored field so nothing is lost.
    """
    if isinstance(value, str):
        if len(value) > limit:
            return value[:limit], True
        return value, False
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        cut = False
        for k, v in value.items():
            out[k], c = cap_strings(v, limit)
            cut = cut or c
        return out, cut
    if isinstance(value, list):
        items = []
        cut = False
        for v in value:
            item, c = cap_strings(v, limit)
            items.append(item)
            cut = cut or c
        return items, cut
    return value, False
