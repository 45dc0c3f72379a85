"""Decoded BSM record (illumos / OpenBSM) -> ECS document.

The ECS part is a lossy, queryable projection; ``bsm.tokens`` keeps every decoded token in order so
nothing the decoder produced is dropped (bsm.md 7.4: repeated tokens are normal and meaningful).
"""

from __future__ import annotations

import json
from typing import Any

from auditrecv.decode.bsm.model import BsmRecord, Token
from auditrecv.spool.record import Source

from . import tables
from .common import (
    Doc,
    add_unique,
    basename,
    cap_strings,
    errno_message,
    file_type_from_mode,
    get,
    has_long_strings,
    host_fields,
    id_text,
    iso_ns,
    observer_fields,
    put,
    related_users,
    routable_ip,
    short_hash,
    source_fields,
    summary_message,
    valid_ip,
)
from .ids import host_identity

# BSM socket types (illumos values; OpenBSM converts to the same BSM_SOCK_* numbers)
_SOCK_TRANSPORT = {1: "udp", 2: "tcp", 4: "raw", 5: "rdm", 6: "sctp"}
_EXEC_ACTIONS = frozenset({"executed", "executed-with-privileges"})
_TWO_PATH_ACTIONS = frozenset({"renamed", "linked", "symlinked"})
_LOGIN_OBJECTS = frozenset({"user-session"})


def categorize(record: BsmRecord) -> tables.Category:
    """The table row for this event; else a row derived from its audit classes; else process/info."""
    name = record.event_name or ""
    found = tables.bsm_categories().get(name)
    if found is not None:
        return found
    by_class = tables.bsm_class_categories()
    action = name[4:].lower() if name.startswith("AUE_") else (name.lower() or f"event-{record.event_id}")
    for cls in record.event_classes:
        row = by_class.get(cls)
        if row is not None:
            return tables.Category(action, row.object_type, [], [], "", row.category, row.type, "")
    return tables.Category(action, "", [], [], "", ["process"], ["info"], "")


def _tokens_for_index(record: BsmRecord) -> list[dict[str, Any]]:
    """Tokens as JSON-safe dicts (bytes to hex), order and repeats kept, None values dropped.

    None means "not applicable" in the decoder's dicts; flattened fields have no use for it.
    """
    return [_drop_none(tok) for tok in record.tokens]


# exact types that _drop_none returns unchanged: tested first, most token values are these
_PLAIN = frozenset({str, int, bool, float})


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: v if type(v) in _PLAIN else _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [v if type(v) in _PLAIN else _drop_none(v) for v in value if v is not None]
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return value


def _socket_endpoints(tok: Token) -> tuple[dict[str, Any], dict[str, Any], str | None, str | None]:
    """(local, remote, transport, network type) of a socket-ish token."""
    name = tok.get("token")
    local: dict[str, Any] = {}
    remote: dict[str, Any] = {}
    transport = _SOCK_TRANSPORT.get(tok.get("sock_type", -1))
    if name in ("socket", "old_socket") and "laddr" in tok:
        local = {"address": tok.get("laddr"), "port": tok.get("lport")}
        remote = {"address": tok.get("faddr"), "port": tok.get("fport")}
    elif name in ("old_socket", "socket_inet", "socket_inet6"):
        # kernel 9-byte 0x2e and OpenBSM's sockaddr tokens hold one address: the peer (bsm.md 6.3)
        remote = {"address": tok.get("addr"), "port": tok.get("port")}
    elif name == "socket_unix":
        remote = {"address": tok.get("path")}
        transport = "unix"
    kind = None
    addr = remote.get("address") or local.get("address")
    ip = valid_ip(addr)
    if ip is not None:
        kind = "ipv6" if ":" in ip else "ipv4"
    if tok.get("sock_domain") == 1:
        transport = "unix"
    return local, remote, transport, kind


def _put_endpoint(doc: Doc, prefix: str, end: dict[str, Any]) -> None:
    addr = end.get("address")
    if not addr:
        return
    put(doc, f"{prefix}.address", str(addr))
    ip = valid_ip(addr)
    if ip is not None:
        put(doc, f"{prefix}.ip", ip)
        add_unique(doc, "related.ip", routable_ip(ip))
    port = end.get("port")
    if isinstance(port, int) and port > 0:
        put(doc, f"{prefix}.port", port)


def bsm_to_ecs(record: BsmRecord, source: Source, observer: dict[str, Any], *, received_ns: int) -> dict[str, Any]:
    """One ECS document for one BSM record; never raises on odd token contents."""
    cat = categorize(record)
    dialect = record.dialect or "illumos"
    time_ns = record.time_ns if record.time_ns is not None else received_ns
    # One pass over the tokens instead of a scan per record.first()/find()/property below.
    by_name: dict[str, list[Token]] = {}
    for tok in record.tokens:
        found = by_name.get(tok["token"])
        if found is None:
            by_name[tok["token"]] = [tok]
        else:
            found.append(tok)
    no_tokens: list[Token] = []

    def first_of(name: str) -> Token | None:
        found = by_name.get(name)
        return found[0] if found else None

    # The fixed head of the document as literals: these sections always exist, in this order
    # (writing them one dotted put() at a time was most of the mapping cost).
    event: Doc = {"kind": cat.kind or "event"}
    doc: Doc = {"@timestamp": iso_ns(time_ns), "labels": {"dialect": dialect}, "event": event}

    # -- event.*
    if cat.category:
        event["category"] = list(cat.category)
    if cat.type:
        event["type"] = list(cat.type)
    if cat.action:
        event["action"] = cat.action
    event["module"] = "bsm"
    event["dataset"] = f"{dialect}.audit"
    if record.event_id is not None:
        event["code"] = str(record.event_id)
    event["created"] = iso_ns(received_ns)
    seq = first_of("sequence")
    if seq is not None and isinstance(seq.get("seq_num"), int):
        event["sequence"] = seq["seq_num"]
    returns = by_name.get("return")
    ret = returns[-1] if returns else None  # the last one, as record.return_token
    outcome = "unknown" if ret is None else "success" if ret.get("success") else "failure"
    event["outcome"] = outcome
    if ret is not None and not ret.get("success"):
        code = ret.get("error") or f"errval {ret.get('errval')}"
        put(doc, "error.code", code)
        put(doc, "error.message", errno_message(ret.get("error")) or str(code))

    # -- where from, who received it
    source_fields(doc, source)
    header_host = valid_ip(record.host)
    host_fields(doc, source, extra_ips=[header_host] if header_host else None)
    observer_fields(doc, observer)

    # -- subject: the actor
    subj = first_of("subject")
    sid: Any = None
    if subj is not None:
        put(doc, "process.pid", subj.get("pid"))
        put(doc, "user.id", id_text(subj.get("ruid")))
        put(doc, "user.group.id", id_text(subj.get("rgid")))
        put(doc, "group.id", id_text(subj.get("rgid")))
        put(doc, "user.effective.id", id_text(subj.get("uid")))
        put(doc, "user.effective.group.id", id_text(subj.get("gid")))
        put(doc, "user.audit.id", id_text(subj.get("audit_uid")))
        sid = subj.get("sid")
        put(doc, "bsm.session", None if sid is None else str(sid))
        tid = subj.get("tid") or {}
        if isinstance(tid, dict):
            put(doc, "bsm.terminal.host", tid.get("host"))
            if isinstance(tid.get("port"), int):
                put(doc, "bsm.terminal.port", format(tid["port"], "x"))
            if isinstance(tid.get("rport"), int):
                put(doc, "bsm.terminal.rport", tid["rport"])
            if isinstance(tid.get("lport"), int):
                put(doc, "bsm.terminal.lport", tid["lport"])
            add_unique(doc, "related.ip", routable_ip(tid.get("host")))
    user_tok = first_of("user")
    if user_tok is not None:
        put(doc, "user.target.id", id_text(user_tok.get("uid")))
        put(doc, "user.target.name", user_tok.get("username") or None)

    # -- process: exec details
    paths = [t["path"] for t in by_name.get("path", no_tokens)]
    args_tok = first_of("exec_args")
    args = None if args_tok is None else list(args_tok["args"])
    if cat.action in _EXEC_ACTIONS and paths:
        put(doc, "process.executable", paths[0])
        put(doc, "process.name", basename(paths[0]))
    elif args:
        put(doc, "process.name", basename(args[0]))
    if args is not None:
        put(doc, "process.args", list(args))
        put(doc, "process.args_count", len(args))
        title = " ".join(args)
        put(doc, "process.title", title)
        put(doc, "process.command_line", title)
    env = first_of("exec_env")
    if env is not None:
        put(doc, "process.env_vars", list(env.get("env") or []))
    if subj is not None and subj.get("pid") is not None:
        put(doc, "process.entity_id", short_hash(host_identity(source), subj.get("pid"), sid))

    # -- file object
    attr = first_of("attribute")
    if paths and cat.object_type in ("file", "filesystem", ""):
        first = paths[0]
        put(doc, "file.path", first)
        put(doc, "file.name", basename(first))
        directory = first.rsplit("/", 1)[0] if "/" in first.rstrip("/") else None
        put(doc, "file.directory", directory or ("/" if first.startswith("/") else None))
        if cat.action in _TWO_PATH_ACTIONS and len(paths) > 1:
            put(doc, "file.target_path", paths[1])
        if attr is not None:
            mode = attr.get("mode")
            if isinstance(mode, int):
                put(doc, "file.mode", format(mode & 0o7777, "04o"))
                put(doc, "file.type", file_type_from_mode(mode))
            put(doc, "file.uid", id_text(attr.get("uid")))
            put(doc, "file.gid", id_text(attr.get("gid")))
            if attr.get("nodeid") is not None:
                put(doc, "file.inode", str(attr["nodeid"]))
            if attr.get("fsid") is not None:
                put(doc, "file.device", str(attr["fsid"]))

    # -- network
    sock = next(
        (
            t
            for t in record.tokens
            if t["token"] in ("socket", "old_socket", "socket_inet", "socket_inet6", "socket_unix")
        ),
        None,
    )
    remote_addr: str | None = None
    if sock is not None:
        local, remote, transport, net_type = _socket_endpoints(sock)
        remote_addr = remote.get("address")
        if cat.direction == "ingress":
            _put_endpoint(doc, "source", remote)
            _put_endpoint(doc, "destination", local)
        else:
            _put_endpoint(doc, "source", local)
            _put_endpoint(doc, "destination", remote)
        put(doc, "network.transport", transport)
        put(doc, "network.type", net_type)
    for tok in by_name.get("ip_address", no_tokens):
        add_unique(doc, "related.ip", routable_ip(tok.get("address")))
    if cat.direction:
        put(doc, "network.direction", cat.direction)
    # remote logins: the terminal id holds the client's address (ssh, telnet, rlogin, ...)
    if cat.object_type in _LOGIN_OBJECTS and subj is not None and get(doc, "source.ip") is None:
        tid = subj.get("tid") or {}
        ip = routable_ip(tid.get("host")) if isinstance(tid, dict) else None
        if ip is not None:
            put(doc, "source.ip", ip)
            put(doc, "source.address", ip)
            if isinstance(tid.get("rport"), int) and tid["rport"] > 0:
                put(doc, "source.port", tid["rport"])
            put(doc, "network.type", "ipv6" if ":" in ip else "ipv4")

    # -- zones: container.* for non-global zones, so zones look like containers in ECS
    zone_tok = first_of("zone")
    zone = None if zone_tok is None else str(zone_tok["name"])
    put(doc, "bsm.zonename", zone)
    if zone and zone != "global":
        put(doc, "container.id", zone)
        put(doc, "container.name", zone)
        put(doc, "container.runtime", "zone")

    # -- the summary (actor / action / object / how)
    texts = [t["text"] for t in by_name.get("text", no_tokens)]
    summary = _summary(record, cat, paths, remote_addr, subj, texts, by_name)
    put(doc, "bsm.summary", summary)

    # -- bsm.* detail: header facts, convenience lists, every token
    put(doc, "bsm.version", record.version)
    put(doc, "bsm.header_id", record.header_id)
    put(doc, "bsm.event_id", record.event_id)
    put(doc, "bsm.event_name", record.event_name)
    put(doc, "bsm.event_description", record.event_description)
    put(doc, "bsm.classes", list(record.event_classes))
    put(doc, "bsm.modifier", record.modifier)
    put(doc, "bsm.modifier_names", list(record.modifier_names))
    put(doc, "bsm.host", record.host)
    put(doc, "bsm.has_trailer", record.has_trailer)
    put(doc, "bsm.length", record.length)
    put(doc, "bsm.paths", list(paths))
    put(doc, "bsm.texts", texts)
    if ret is not None:
        put(doc, "bsm.return.errval", ret.get("errval"))
        put(doc, "bsm.return.retval", ret.get("retval"))
    for tok in by_name.get("use_of_privilege", no_tokens):
        for priv in str(tok.get("privs") or "").split(","):
            add_unique(doc, "bsm.privileges_used", priv.strip())
    for tok in by_name.get("use_of_authorization", no_tokens):
        add_unique(doc, "bsm.authorizations_used", tok.get("text") or tok.get("authorization"))
    tokens = _tokens_for_index(record)
    cut = has_long_strings(tokens)  # rare: copy-and-cut only then
    put(doc, "bsm.tokens", cap_strings(tokens)[0] if cut else tokens)
    if cut:  # keep the uncut tokens, stored but not indexed
        put(doc, "bsm.tokens_full", json.dumps(tokens, ensure_ascii=False))
        add_unique(doc, "tags", "long_values_cut_in_index")
    if record.errors:
        put(doc, "bsm.errors", list(record.errors))
        put(doc, "event.reason", "; ".join(record.errors))
        put(doc, "event.original", record.raw.hex())
        add_unique(doc, "tags", "decode_error")

    related_users(doc)
    put(doc, "message", summary_message(doc, summary))
    return doc


def _summary(
    record: BsmRecord,
    cat: tables.Category,
    paths: list[str],
    remote_addr: str | None,
    subj: Token | None,
    texts: list[str],
    by_name: dict[str, list[Token]],
) -> dict[str, Any]:
    """Actor / action / object / how, the same shape as auditd.summary for Linux."""
    actor: dict[str, Any] = {}
    if subj is not None:
        auid = id_text(subj.get("audit_uid"))
        if auid is not None:
            actor["primary"] = auid
        euid = id_text(subj.get("uid"))
        if euid is not None:
            actor["secondary"] = euid
    obj: dict[str, Any] = {}
    kind = cat.object_type
    if kind:
        obj["type"] = kind
    primary: Any = None
    secondary: Any = None
    if kind in ("file", "filesystem") and paths:
        primary = paths[0]
        secondary = paths[1] if len(paths) > 1 else None
    elif kind == "socket":
        primary = remote_addr
    elif kind == "process":
        proc = by_name["process"][0] if "process" in by_name else None
        if proc is not None:
            primary = str(proc.get("pid"))
        else:
            arg = next((a for a in by_name.get("argument", ()) if a.get("desc") in ("pid", "process")), None)
            primary = None if arg is None else str(arg.get("value"))
    elif kind == "user-session" and subj is not None:
        tid = subj.get("tid") or {}
        primary = tid.get("host") if isinstance(tid, dict) else None
    elif kind == "account":
        user_tok = by_name["user"][0] if "user" in by_name else None
        if user_tok is not None:
            primary = user_tok.get("username") or str(user_tok.get("uid"))
        elif texts:
            primary = texts[0]
    if primary is None and texts and kind in ("service", "system", "audit-config", ""):
        primary = texts[0]
    if primary not in (None, ""):
        obj["primary"] = str(primary)
    if secondary not in (None, ""):
        obj["secondary"] = str(secondary)
    summary: dict[str, Any] = {"action": cat.action}
    if actor:
        summary["actor"] = actor
    if obj:
        summary["object"] = obj
    how = None
    if cat.action in _EXEC_ACTIONS and paths:
        how = paths[0]
    elif record.event_description:
        how = record.event_description
    if how:
        summary["how"] = how
    return summary
