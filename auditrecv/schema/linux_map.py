"""Decoded Linux audit event -> ECS document, in the shape Auditbeat's auditd module uses.

Built on ``auditrecv.decode.linux.interpret``'s dict (records with raw and interpreted values plus the
actor/object facts). Categorization comes from ``data/linux_categories.tsv``; ``auditd.records`` keeps
every record so nothing decoded is dropped.
"""

from __future__ import annotations

import functools
import json
import posixpath
import time
from typing import Any

from auditrecv.decode.linux.interpret import interpret, unescape, unquote
from auditrecv.decode.linux.model import LinuxEvent
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
    put_key,
    related_users,
    routable_ip,
    short_hash,
    source_fields,
    summary_message,
    valid_ip,
)
from .ids import host_identity

# records that only add detail to the event's main record (never its "message type")
_AUXILIARY = frozenset(
    {
        "SYSCALL",
        "PATH",
        "CWD",
        "EXECVE",
        "PROCTITLE",
        "SOCKADDR",
        "EOE",
        "BPRM_FCAPS",
        "CAPSET",
        "MMAP",
        "FD_PAIR",
        "OBJ_PID",
        "IPC",
        "MQ_OPEN",
        "MQ_SENDRECV",
        "MQ_NOTIFY",
        "MQ_GETSETATTR",
        "NETFILTER_PKT",
        "SOCKETCALL",
        "KERN_MODULE_AUX",
        "UNKNOWN",
    }
)
_TWO_PATH_ACTIONS = frozenset({"renamed", "linked", "symlinked"})
_USER_SPACE = (range(1100, 1300), range(2100, 3000))
# ids of user-space records that name the account the action was for
_ACCOUNT_ID_FIELDS = ("id", "acct")
# user-space records aucoalesce has no user mapping for, whose account (id/acct) we still name: the
# account acted on is user.target (a group: group.*); other user-space records put it in user.effective
_IAM_TARGET_TYPES = frozenset(
    {
        "ACCT_LOCK",
        "ACCT_UNLOCK",
        "ROLE_ASSIGN",
        "ROLE_REMOVE",
        "CHUSER_ID",
        "ANOM_ADD_ACCT",
        "ANOM_DEL_ACCT",
        "ANOM_MOD_ACCT",
    }
)
_GROUP_TARGET_TYPES = frozenset({"CHGRP_ID"})

# user.* / group.* of LOGIN and the user-space session and account records as Auditbeat fills them: the
# "mappings" of go-libaudit's aucoalesce normalizations (user <- subject.primary, ...), written here as the
# record fields behind each; record type -> ((entity, fields tried in order, the first one present wins)).
# "@old-auid" / "@new-auid" are LOGIN's login uid before and after, in either record format.
_AUID = ("auid",)
_UID = ("uid",)
_SESSION_ACCOUNT = ("acct", "id", "uid")  # whom a session/credential record is for (subject.secondary)
_CHANGED_ACCOUNT = ("id", "acct")  # the account an account record creates or deletes (object.primary)
_ECS_USER_MAPPINGS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    **dict.fromkeys(
        (
            "USER_AUTH",
            "USER_ACCT",
            "USER_LOGIN",
            "USER_LOGOUT",
            "USER_ERR",
            "USER_START",
            "USER_END",
            "CRED_ACQ",
            "CRED_DISP",
            "CRED_REFR",
        ),
        (("user", _AUID), ("user.effective", _SESSION_ACCOUNT)),
    ),
    "GRP_AUTH": (("user", _AUID), ("user.effective", _UID)),
    # user.audit (ours): the new login uid in both LOGIN formats, as the auid field gives it in the current one
    "LOGIN": (("user", ("@old-auid",)), ("user.effective", ("@new-auid",)), ("user.audit", ("@new-auid",))),
    **dict.fromkeys(
        ("ADD_USER", "DEL_USER"), (("user", _AUID), ("user.effective", _UID), ("user.target", _CHANGED_ACCOUNT))
    ),
    **dict.fromkeys(
        ("ADD_GROUP", "DEL_GROUP"), (("user", _AUID), ("user.effective", _UID), ("group", _CHANGED_ACCOUNT))
    ),
    # deliberately not aucoalesce's group <- subject.secondary, which for GRP_MGMT is the process's uid (a
    # user id as group.id): the group is the record's id/acct, as for ADD_GROUP and DEL_GROUP
    "GRP_MGMT": (("user", _AUID), ("user.effective", _UID), ("group", _CHANGED_ACCOUNT)),
    "USER_MGMT": (("user", _AUID), ("user.effective", _UID), ("user.target", _SESSION_ACCOUNT)),
    "USER_CHAUTHTOK": (("user", _AUID), ("user.effective", _UID), ("user.target", _SESSION_ACCOUNT)),
    "GRP_CHAUTHTOK": (("user", _AUID), ("user.effective", _UID), ("group", _SESSION_ACCOUNT)),
}
# values go-libaudit drops while parsing (a field holding one counts as absent)
_NO_VALUE = frozenset({"", "?", "?,", "(null)"})
_MAX_ID = 1 << 64


# (audit id field, id path, name path) under user.*, in document order
_USER_ID_PATHS = tuple(
    (field, target, target[:-2] + "name")
    for field, target in (
        ("uid", "id"),
        ("gid", "group.id"),
        ("euid", "effective.id"),
        ("egid", "effective.group.id"),
        ("auid", "audit.id"),
        ("suid", "saved.id"),
        ("sgid", "saved.group.id"),
        ("fsuid", "filesystem.id"),
        ("fsgid", "filesystem.group.id"),
    )
)


def _is_user_space(type_num: int | None) -> bool:
    if isinstance(type_num, int):  # the ranges of _USER_SPACE as plain comparisons
        return 1100 <= type_num < 1300 or 2100 <= type_num < 3000
    return type_num is not None and any(type_num in r for r in _USER_SPACE)


def categorize(decoded: dict[str, Any]) -> tuple[str, tables.Category]:
    """(primary record type, merged category) for an interpreted event.

    The primary record is the first one with its own table row that is not auxiliary (ANOM_PROMISCUOUS,
    NETFILTER_CFG, USER_LOGIN, ...), else SYSCALL. Action and object come from the primary record's
    row when it has one, else from the syscall's; categories and types are the union of both, record
    type first, so a firewall change made by setsockopt is both configuration and process. A syscall
    with no row of its own takes its name as the action (go-libaudit and Auditbeat leave it empty).
    """
    types = tuple(t for t in decoded.get("record_types") or [] if isinstance(t, str))
    syscall = (decoded.get("syscall") or {}).get("name")
    apparmor = "AVC" in types and _avc_is_apparmor(decoded)
    if syscall is None or isinstance(syscall, str):
        # a fleet produces few distinct (record types, syscall) combinations: merge their rows once
        return _categorize_cached(types, syscall, apparmor)
    return _categorize(types, syscall, apparmor)


def _categorize(types: tuple[str, ...], syscall: Any, apparmor: bool) -> tuple[str, tables.Category]:
    """categorize() from the facts it needs; the Category returned may be shared, never modify it."""
    table = tables.linux_categories()
    record_row: tables.Category | None = None
    primary_type = ""
    for rtype in types:
        if rtype in _AUXILIARY:
            continue
        key = f"type:{rtype}"
        if rtype == "AVC" and apparmor:
            key = "type:AVC_APPARMOR"
        row = table.get(key)
        if row is not None:
            record_row, primary_type = row, rtype
            break
        if not primary_type:
            primary_type = rtype
    syscall_row: tables.Category | None = None
    if "SYSCALL" in types:
        syscall_row = table.get(f"syscall:{syscall}") or table["syscall:*"]
        if record_row is None:
            primary_type = "SYSCALL"
    if record_row is None and syscall_row is None:
        action = primary_type.lower().replace("_", "-") if primary_type else "unknown"
        fallback = tables.Category(action, "", [], [], "", ["process"], ["info"], "")
        return primary_type or (types[0] if types else ""), fallback
    base = record_row or syscall_row
    assert base is not None
    category = list(base.category)
    ecs_type = list(base.type)
    if record_row is not None and syscall_row is not None:
        if not category:  # e.g. AVC: the syscall says what kind of access it was
            category, ecs_type = list(syscall_row.category), list(syscall_row.type)
        else:
            category += [c for c in syscall_row.category if c not in category]
            ecs_type += [t for t in syscall_row.type if t not in ecs_type]
    if not category:
        category, ecs_type = ["process"], ["info"]
    action = base.action or (syscall_row.action if syscall_row else "")
    if not action:
        # a syscall without a row of its own (the syscall:* catch-all has no action): every document
        # still says what happened, by the syscall's name (or the record type when the name is unknown)
        action = syscall if isinstance(syscall, str) and syscall else primary_type.lower().replace("_", "-")
    merged = tables.Category(
        action=action,
        object_type=base.object_type or (syscall_row.object_type if syscall_row else ""),
        object_primary=base.object_primary or (syscall_row.object_primary if syscall_row else []),
        object_secondary=base.object_secondary or (syscall_row.object_secondary if syscall_row else []),
        kind=base.kind,
        category=category,
        type=ecs_type,
        direction=base.direction or (syscall_row.direction if syscall_row else ""),
    )
    return primary_type, merged


_categorize_cached = functools.lru_cache(maxsize=1024)(_categorize)


def _avc_is_apparmor(decoded: dict[str, Any]) -> bool:
    return any("apparmor" in (r.get("fields") or {}) for r in decoded.get("records") or [] if r.get("type") == "AVC")


def _merged_fields(decoded: dict[str, Any]) -> dict[str, str]:
    """Interpreted fields of every record, first value wins (the main records come first)."""
    records = decoded.get("records") or []
    if len(records) == 1:  # most events: a plain copy
        return dict(records[0].get("interpreted") or {})
    merged: dict[str, str] = {}
    for rec in records:
        for name, value in (rec.get("interpreted") or {}).items():
            merged.setdefault(name, value)
    return merged


def _clean(value: Any) -> str | None:
    """A field value worth showing: not the literal unknown markers of audit records."""
    if value is None:
        return None
    text = str(value)
    if text in ("", "?", "(null)", "(none)", "unset"):
        return None
    return text


def _object_value(
    names: list[str],
    merged: dict[str, str],
    file_path: str | None,
    file_path2: str | None,
    sock_text: str | None,
    keys: list[str],
) -> str | None:
    for name in names:
        value: Any
        if name == "@path":
            value = file_path
        elif name == "@path2":
            value = file_path2
        elif name == "@sockaddr":
            value = sock_text
        elif name == "@key":
            value = keys[0] if keys else None
        else:
            value = merged.get(name)
        cleaned = _clean(value)
        if cleaned is not None:
            return cleaned
    return None


def _file_candidates(paths: list[dict[str, Any]], cwd: str | None) -> list[dict[str, Any]]:
    """PATH items naming the object(s): parents dropped unless nothing else is there."""
    named = [p for p in paths if _clean(p.get("name")) is not None]
    objects = [p for p in named if str(p.get("nametype", "")).upper() != "PARENT"]
    chosen = objects or named
    out = []
    for p in chosen:
        entry = dict(p)
        name = str(entry["name"])
        if cwd and not name.startswith("/"):
            entry["name"] = posixpath.normpath(posixpath.join(cwd, name))
        out.append(entry)
    return out


def _sockaddr_text(sa: dict[str, Any]) -> str | None:
    if sa.get("address") is not None:
        return str(sa["address"])
    if sa.get("path") is not None:
        return str(sa["path"])
    return None


def _field_name(name: str) -> str:
    """Record field names as object keys: dots would nest, so they become underscores."""
    if name and "." not in name:  # nearly every name: no new string needed
        return name
    return name.replace(".", "_") or "_"


def linux_to_ecs(
    event: LinuxEvent | dict[str, Any], source: Source, observer: dict[str, Any], *, received_ns: int | None = None
) -> dict[str, Any]:
    """One ECS document for one Linux audit event (a ``LinuxEvent`` or its ``interpret()`` dict)."""
    decoded = interpret(event) if isinstance(event, LinuxEvent) else event
    time_ns = decoded.get("time_ns")
    if not isinstance(time_ns, int):
        time_ns = received_ns if received_ns is not None else time.time_ns()
    primary_type, cat = categorize(decoded)
    records: list[dict[str, Any]] = list(decoded.get("records") or [])
    merged = _merged_fields(decoded)
    syscall = decoded.get("syscall") or {}
    process = decoded.get("process") or {}
    user_msg = decoded.get("user_msg") or {}
    keys = [k for k in decoded.get("keys") or [] if isinstance(k, str)]
    type_num = next((r.get("type_num") for r in records if r.get("type") == primary_type), None)
    user_space = _is_user_space(type_num)

    # -- event.*: the fixed head of the document as literals, these sections always exist in this order
    # (writing them one dotted put() at a time was a large part of the mapping cost)
    event_sec: Doc = {"kind": cat.kind or "event"}
    doc: Doc = {"@timestamp": iso_ns(time_ns), "labels": {"dialect": "linux"}, "event": event_sec}
    if cat.category:
        event_sec["category"] = list(cat.category)
    if cat.type:
        event_sec["type"] = list(cat.type)
    if cat.action:
        event_sec["action"] = cat.action
    event_sec["module"] = "auditd"
    event_sec["dataset"] = "linux.audit"
    if type_num is not None:
        event_sec["code"] = str(type_num)
    if isinstance(decoded.get("serial"), int):
        event_sec["sequence"] = decoded["serial"]
    outcome = decoded.get("outcome") or "unknown"
    event_sec["outcome"] = outcome
    if outcome == "failure" and syscall.get("errno"):
        put(doc, "error.code", syscall["errno"])
        put(doc, "error.message", syscall.get("errno_text") or errno_message(syscall["errno"]))

    # -- where from, who received it
    source_fields(doc, source)
    node = decoded.get("node")
    host_fields(doc, source, node=node if isinstance(node, str) and node else None)
    observer_fields(doc, observer)

    # -- users
    ids: dict[str, Any] = (decoded.get("user") or {}).get("ids") or {}
    names: dict[str, Any] = (decoded.get("user") or {}).get("names") or {}
    # no user.* exists yet and only user.* is written in this loop: fill a local section, attach if not empty
    user_sec: Doc = {}
    for field, id_path, name_path in _USER_ID_PATHS:
        put(user_sec, id_path, id_text(ids.get(field)))
        name = names.get(field)
        if name:
            put(user_sec, name_path, str(name))
    if user_sec:
        doc["user"] = user_sec
    put(doc, "group.id", get(doc, "user.group.id"))
    put(doc, "group.name", get(doc, "user.group.name"))
    mappings = _ECS_USER_MAPPINGS.get(primary_type)
    main_record = next((r for r in records if r.get("type") == primary_type), None) if mappings else None
    if mappings is not None and main_record is not None:
        # LOGIN, sessions, credentials, account changes: the login identity is the user (Auditbeat)
        _map_users_as_auditbeat(doc, main_record, mappings, ids, names)
    elif user_space:
        account_name = _clean(user_msg.get("acct"))
        account_id = id_text(_clean(user_msg.get("id")))
        if primary_type in _GROUP_TARGET_TYPES:
            put(doc, "group.id", account_id)
            put(doc, "group.name", _clean(merged.get("grp")) or account_name)
        elif primary_type in _IAM_TARGET_TYPES:
            put(doc, "user.target.id", account_id)
            put(doc, "user.target.name", account_name)
        else:
            # the account the record names (Auditbeat has no mapping for these: user.id is the uid)
            put(doc, "user.effective.id", account_id)
            if account_name is not None:
                put(doc, "user.effective.name", account_name)

    # -- process: gathered in a local section (only process.* is written here), attached if not empty
    proc: Doc = {}
    put_key(proc, "pid", process.get("pid"))
    if isinstance(process.get("ppid"), int):
        proc["parent"] = {"pid": process["ppid"]}
    exe = _clean(process.get("exe"))
    put_key(proc, "executable", exe)
    put_key(proc, "name", _clean(process.get("comm")) or basename(exe))
    args = process.get("args") if isinstance(process.get("args"), list) else None
    if not args and isinstance(process.get("title_argv"), list):
        args = process["title_argv"]
    if args:
        put_key(proc, "args", [str(a) for a in args])
        count = process.get("argc") if isinstance(process.get("argc"), int) else len(args)
        put_key(proc, "args_count", count)
        put_key(proc, "command_line", " ".join(str(a) for a in args))
    put_key(proc, "title", process.get("title"))
    cwd = _clean(process.get("cwd")) or (_clean(merged.get("cwd")) if user_space else None)
    put_key(proc, "working_directory", cwd)
    session = decoded.get("session")
    if process.get("pid") is not None:
        put_key(proc, "entity_id", short_hash(host_identity(source), node or "", process.get("pid"), session))
    if proc:
        doc["process"] = proc

    # -- files
    paths: list[dict[str, Any]] = [p for p in decoded.get("paths") or [] if isinstance(p, dict)]
    candidates = _file_candidates(paths, cwd)
    file_path = candidates[0]["name"] if candidates else None
    file_path2 = candidates[1]["name"] if len(candidates) > 1 else None
    if candidates and cat.object_type in ("file", "filesystem", "", "process"):
        # a mount lists its target twice, first without metadata: take the attributes where they are
        first = next(
            (p for p in candidates if p["name"] == candidates[0]["name"] and p.get("inode") is not None),
            candidates[0],
        )
        # only file.* is written here: gathered in a local section, attached if not empty
        file_sec: Doc = {}
        put_key(file_sec, "path", file_path)
        put_key(file_sec, "name", basename(file_path))
        if file_path and "/" in file_path:
            put_key(file_sec, "directory", posixpath.dirname(file_path) or "/")
        if first.get("inode") is not None:
            put_key(file_sec, "inode", str(first["inode"]))
        mode_raw = first.get("mode")
        try:
            mode = int(str(mode_raw), 8) if mode_raw is not None else None
        except ValueError:
            mode = None
        if mode is not None:
            put_key(file_sec, "mode", format(mode & 0o7777, "04o"))
            put_key(file_sec, "type", file_type_from_mode(mode))
        put_key(file_sec, "uid", id_text(first.get("ouid")))
        put_key(file_sec, "gid", id_text(first.get("ogid")))
        put_key(file_sec, "device", _clean(first.get("dev")))
        if cat.action in _TWO_PATH_ACTIONS and file_path2:
            put_key(file_sec, "target_path", file_path2)
        if file_sec:
            doc["file"] = file_sec

    # -- network
    sockaddrs = [s for s in decoded.get("sockaddr") or [] if isinstance(s, dict)]
    sa = next((s for s in sockaddrs if s.get("family") in ("inet", "inet6", "local")), None)
    sock_text = _sockaddr_text(sa) if sa else None
    if sa is not None:
        side = "source" if cat.direction == "ingress" else "destination"
        put(doc, f"{side}.address", sock_text)
        ip = valid_ip(sa.get("address"))
        if ip is not None:
            put(doc, f"{side}.ip", ip)
            add_unique(doc, "related.ip", routable_ip(ip))
            if isinstance(sa.get("port"), int) and sa["port"] > 0:
                put(doc, f"{side}.port", sa["port"])
            put(doc, "network.type", "ipv6" if sa.get("family") == "inet6" else "ipv4")
        elif sa.get("family") == "local":
            put(doc, "network.transport", "unix")
    if user_space:
        addr = routable_ip(_clean(user_msg.get("addr")))
        hostname = _clean(user_msg.get("hostname"))
        if addr is not None:
            put(doc, "source.ip", addr)
            put(doc, "source.address", addr)
            add_unique(doc, "related.ip", addr)
        if hostname is not None and valid_ip(hostname) is None:
            put(doc, "source.domain", hostname)
            add_unique(doc, "related.hosts", hostname)
    if cat.direction and (sa is not None or get(doc, "source.ip") is not None):
        put(doc, "network.direction", cat.direction)

    # -- tags
    for key in keys:
        add_unique(doc, "tags", key)
    if decoded.get("error"):
        add_unique(doc, "tags", "decode_error")
        put(doc, "event.reason", str(decoded["error"]))
        put(doc, "event.original", "\n".join(str(r.get("raw", "")) for r in records))
        if decoded.get("complete") == "error":  # nothing usable: an undecodable line, like a dead letter
            put(doc, "event.kind", "pipeline_error")
            put(doc, "error.type", "decode_error")
            put(doc, "error.message", str(decoded["error"]))
    if isinstance(decoded.get("lost_before"), int) and decoded["lost_before"] > 0:
        add_unique(doc, "tags", "lost_events_before")

    # -- summary
    sock_port = sa.get("port") if sa is not None and isinstance(sa.get("port"), int) and sa["port"] > 0 else None
    summary = _summary(cat, primary_type, merged, user_msg, ids, file_path, file_path2, sock_text, keys, exe, sock_port)

    # -- auditd.* detail (auditd.data is always written, so the section always exists)
    auditd: Doc = {}
    doc["auditd"] = auditd
    put_key(auditd, "message_type", primary_type.lower() if primary_type else None)
    put_key(auditd, "record_types", [str(t) for t in decoded.get("record_types") or []])
    if isinstance(decoded.get("serial"), int):
        put_key(auditd, "sequence", decoded["serial"])
    put_key(auditd, "result", {"success": "success", "failure": "fail"}.get(outcome))
    put_key(auditd, "session", id_text(session))
    put_key(auditd, "node", node)
    put_key(auditd, "summary", summary)
    if "EXECVE" in (decoded.get("record_types") or []):  # the a0, a1, ... arguments are process.args
        data = {_field_name(k): str(v) for k, v in merged.items() if not (k.startswith("a") and k[1:2].isdigit())}
    elif _names_are_safe(merged):  # the usual case: built in C, no call per field
        data = dict(zip(merged, map(str, merged.values()), strict=True))
    else:
        data = {_field_name(k): str(v) for k, v in merged.items()}
    put_key(auditd, "data", data)
    # long values are rare: look first, copy-and-cut only then
    index_paths = [_jsonable(p) for p in paths]
    cut_paths = has_long_strings(index_paths)
    put_key(auditd, "paths", cap_strings(index_paths)[0] if cut_paths else index_paths)
    full_records = [_record_detail(r) for r in records]
    cut_records = has_long_strings(full_records)
    put_key(auditd, "records", cap_strings(full_records)[0] if cut_records else full_records)
    if cut_paths or cut_records:  # keep the uncut records, stored but not indexed
        put_key(auditd, "records_full", json.dumps(full_records, ensure_ascii=False))
        add_unique(doc, "tags", "long_values_cut_in_index")
    put_key(auditd, "complete", decoded.get("complete"))
    if isinstance(decoded.get("lost_before"), int) and decoded["lost_before"] > 0:
        put_key(auditd, "lost_before", decoded["lost_before"])
    put_key(auditd, "error", decoded.get("error"))

    related_users(doc)
    put(doc, "message", summary_message(doc, summary))
    return doc


def _record_values(record: dict[str, Any], name: str) -> list[str]:
    """The usable values one record gives a field, in order: a repeated key (``old auid=X new auid=Y``, a
    user message's inner ``uid=``) has several, and go-libaudit keeps the last one."""
    fields = record.get("fields") or {}
    raws = [fields[name]] if name in fields else []
    duplicates = record.get("duplicates")
    if duplicates:
        raws += [value for key, value in duplicates if key == name]
    decode = unescape if name in ("acct", "grp") else unquote
    return [value for value in map(decode, raws) if value not in _NO_VALUE]


def _mapping_source(record: dict[str, Any], names: tuple[str, ...]) -> tuple[str | None, str | None]:
    """(value, field it came from) of the first of ``names`` the record has, else (None, None)."""
    for name in names:
        if name in ("@old-auid", "@new-auid"):
            return _login_uid(record, old=name == "@old-auid")
        values = _record_values(record, name)
        if values:
            return values[-1], name
    return None, None


def _login_uid(record: dict[str, Any], *, old: bool) -> tuple[str | None, str | None]:
    """A LOGIN record's login uid before (``old``) or after the change: ``old-auid=X auid=Y`` since Linux
    2.6.3x, ``old auid=X new auid=Y`` (two ``auid`` keys) before; without an old value, the auid."""
    for name in ("old-auid", "old_auid") if old else ("new-auid", "new_auid"):
        values = _record_values(record, name)
        if values:
            return values[-1], name
    auids = _record_values(record, "auid")
    if not auids:
        return None, None
    if old and len(auids) > 1:
        return auids[0], None
    return auids[-1], "auid"


def _is_number(value: str) -> bool:
    """go-libaudit's test for an id (an unsigned 64-bit decimal); anything else is a name."""
    return value.isascii() and value.isdigit() and int(value) < _MAX_ID


def _sender_name(
    record: dict[str, Any], field: str | None, value: str, ids: dict[str, Any], names: dict[str, Any]
) -> str | None:
    """The sender's name (ENRICHED) for the id ``value`` of ``field``, when that is the value it names:
    the record's own, else the event's for that subject id (a LOGIN whose SYSCALL record has the names)."""
    if field is None:
        return None
    first = (record.get("fields") or {}).get(field)
    if first is not None and unquote(first) == value:
        named = (record.get("enriched") or {}).get(field.upper())
        if named and named != "unset":
            return str(named)
    if ids.get(field) == value and names.get(field):
        return str(names[field])
    return None


def _put_or_drop(doc: Doc, dotted: str, value: str | None) -> None:
    if value is not None:
        put(doc, dotted, value)
        return
    parent = get(doc, dotted.rpartition(".")[0])
    if isinstance(parent, dict):
        parent.pop(dotted.rpartition(".")[2], None)


def _drop_empty(node: Doc) -> None:
    for key in [k for k, v in node.items() if isinstance(v, dict)]:
        _drop_empty(node[key])
        if not node[key]:
            del node[key]


def _map_users_as_auditbeat(
    doc: Doc,
    record: dict[str, Any],
    mappings: tuple[tuple[str, tuple[str, ...]], ...],
    ids: dict[str, Any],
    names: dict[str, Any],
) -> None:
    """user.* / group.* of a mapped record as Auditbeat writes them over the ids of the uid fields.

    Each entity (user, user.effective, user.target, group) takes the first of its fields the record has:
    an unset or missing value clears the entity's id and name, a number is its id, anything else its name.
    The other half is the sender's name for the id (ENRICHED, as Auditbeat's resolve_ids would find it;
    for a group the record's ``grp=``), else absent. user.effective is dropped when it repeats user.
    """
    for entity, sources in mappings:
        value, field = _mapping_source(record, sources)
        if value is None or id_text(value) is None:
            ident = label = None
        elif _is_number(value):
            ident = value
            label = None if entity == "group" else _sender_name(record, field, value, ids, names)
        else:
            ident, label = None, value
        if entity == "group":
            # group records that also name a user (libuser, shadow's audit_logger_with_group) carry the
            # group's name as grp= and the user as acct=: grp= names the group
            grp_values = _record_values(record, "grp")
            grp = grp_values[-1] if grp_values else None
            if grp is not None:
                label = grp
        _put_or_drop(doc, f"{entity}.id", ident)
        _put_or_drop(doc, f"{entity}.name", label)
    user = doc.get("user")
    if isinstance(user, dict):
        effective = user.get("effective")
        if isinstance(effective, dict) and any(
            user.get(key) is not None and user.get(key) == effective.get(key) for key in ("id", "name")
        ):
            del user["effective"]
        _drop_empty(user)
        if not user:
            del doc["user"]
    if isinstance(doc.get("group"), dict) and not doc["group"]:
        del doc["group"]


def _summary(
    cat: tables.Category,
    primary_type: str,
    merged: dict[str, str],
    user_msg: dict[str, Any],
    ids: dict[str, Any],
    file_path: str | None,
    file_path2: str | None,
    sock_text: str | None,
    keys: list[str],
    exe: str | None,
    sock_port: int | None,
) -> dict[str, Any]:
    """Actor / action / object / how, as go-libaudit's aucoalesce summary has it."""
    actor: dict[str, Any] = {}
    auid = id_text(ids.get("auid"))
    if primary_type == "LOGIN":  # the actor is who it was before: the new auid is the object
        auid = id_text(_clean(merged.get("old-auid") or merged.get("old_auid")))
    if auid is not None:
        actor["primary"] = auid
    if primary_type == "SYSCALL" or not user_msg:
        secondary = id_text(ids.get("uid"))
    else:
        secondary = _clean(user_msg.get("acct")) or id_text(_clean(user_msg.get("id"))) or id_text(ids.get("uid"))
    if secondary is not None:
        actor["secondary"] = secondary
    obj: dict[str, Any] = {}
    if cat.object_type:
        obj["type"] = cat.object_type
    primary = _object_value(cat.object_primary, merged, file_path, file_path2, sock_text, keys)
    if primary is None and cat.object_type in ("file", "filesystem"):
        primary = file_path
    secondary_obj = _object_value(cat.object_secondary, merged, file_path, file_path2, sock_text, keys)
    if primary is not None:
        obj["primary"] = primary
    if secondary_obj is None and cat.object_type == "socket" and sock_port:
        secondary_obj = str(sock_port)  # the peer's port, as aucoalesce reports it
    if secondary_obj is not None and secondary_obj != primary:
        obj["secondary"] = secondary_obj
    summary: dict[str, Any] = {}
    if actor:
        summary["actor"] = actor
    if cat.action:
        summary["action"] = cat.action
    if obj:
        summary["object"] = obj
    how = exe or _clean(user_msg.get("exe")) or _clean(merged.get("comm"))
    if user_msg and not how:
        how = _clean(user_msg.get("terminal"))
    if how:
        summary["how"] = how
    return summary


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value if v is not None]
    return value


def _names_are_safe(fields: dict[Any, Any]) -> bool:
    """Whether every key is already what _field_name would make of it (text, not empty, no dots)."""
    try:
        all_names = "\0".join(fields)  # one C-level scan instead of a Python call per name
    except TypeError:  # a key that is not text
        return False
    return "." not in all_names and "" not in fields


def _field_names_safe(fields: dict[Any, Any]) -> dict[str, Any]:
    """``fields`` with keys that are safe object keys (see _field_name), copied in one step if they are."""
    if _names_are_safe(fields):
        return dict(fields)
    return {_field_name(str(k)): v for k, v in fields.items()}


def _record_detail(rec: dict[str, Any]) -> dict[str, Any]:
    """One record as kept under auditd.records: type, raw and interpreted fields, sender's names."""
    out: dict[str, Any] = {"type": rec.get("type")}
    if rec.get("type_num") is not None:
        out["type_num"] = rec["type_num"]
    for name in ("fields", "interpreted", "enriched"):
        value = rec.get(name)
        if value:
            out[name] = _field_names_safe(value)
    if rec.get("duplicates"):
        out["duplicates"] = _jsonable(rec["duplicates"])
    if rec.get("error"):
        out["error"] = rec["error"]
        out["raw"] = rec.get("raw")
    return out
