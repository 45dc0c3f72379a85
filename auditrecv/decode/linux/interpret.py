"""Interpretation: LinuxEvent -> plain JSON-serialisable dict (records with raw and interpreted values,
plus the actor/object facts the ECS mapper needs). Never raises on bad values: they stay raw.

Per-field interpretation follows libauparse 3.0.9 (``auparse/interpret.c``) so results can be compared with
its output, with one deliberate difference: uid/gid names come only from the sender's ENRICHED section (or
uid/gid 0 = root); an aggregator's own passwd says nothing about the sender's users (linux.md §7.2).

Output of ``interpret(event)`` (keys always present unless marked "opt"; ids are strings, ``None`` = unset)::

    id            "1700000000.123:4242" (sec.ms:serial) or None for error events
    source, node  the assembler source (peer) and the node= name (None if absent)
    timestamp     "2023-11-14T22:13:20.123Z";  time_ns: int;  serial: int
    complete      how the event ended: eoe|single|superseded|max_age|max_records|max_bytes|evicted|flush|error|
                  orphan_eoe
    error         None, or why the event is an error event (unparseable line, orphan fragment)
    lost_before   serials skipped just before this event on its (source, node) stream
    record_types  ["SYSCALL", "EXECVE", ...] in arrival order
    records       [{type, type_num, raw, fields{name: raw}, interpreted{name: text}, enriched? {NAME: value},
                    duplicates? [[name, raw]...], error? }]
    -- facts (absent for error events) --
    type          the main record type: SYSCALL if present, else the first non-auxiliary record
    syscall       (opt, SYSCALL events) {number, name, arch, success: bool|None, exit: int|None,
                   errno: "EACCES"|None, errno_text, args: [a0..a3 hex], items}
    outcome       "success" | "failure" | None   (from success= or res=/result=)
    keys          audit rule keys, decoded and split ([] if none)
    user          {ids: {auid, uid, gid, euid, suid, fsuid, egid, sgid, fsgid, old-auid, sauid: str|None},
                   names: {same keys: name from the sender's ENRICHED section, only when given}}
    session       str | None
    process       {pid: int, ppid: int, comm, exe, tty, subj, title (proctitle, NULs as spaces),
                   title_argv [...], argc, args [...] (EXECVE, split chunks joined), cwd}  (each opt)
    paths         [{item: int, name, inode: int, dev, mode (raw octal), mode_text ("file,755"), ouid, ogid,
                    rdev, nametype, obj, cap_*...}]  from PATH records, in order
    sockaddr      [{family: inet|inet6|local|netlink|..., address, port, path, ...}] from SOCKADDR records
    user_msg      (opt, user-space records) {op, acct, exe, hostname, addr, terminal, res, id, grantors,
                   uid, text (the whole inner msg)}
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .model import COMPLETE_ERROR, LinuxEvent, LinuxRecord
from .tables import ERRNO, arch_info

UNSET_IDS = frozenset({"4294967295", "-1"})

UID_FIELDS = frozenset(
    {
        "auid",
        "uid",
        "euid",
        "suid",
        "fsuid",
        "ouid",
        "oauid",
        "iuid",
        "sauid",
        "obj_uid",
        "inode_uid",
        "old-auid",
        "new-auid",
        "loginuid",
        "old_auid",
        "new_auid",
    }
)
GID_FIELDS = frozenset({"gid", "egid", "sgid", "fsgid", "ogid", "obj_gid", "inode_gid", "new_gid", "new-gid"})
# record types whose "id" field is a uid or a gid (libauparse typetab.h / interpret.c)
ID_IS_GID_TYPES = frozenset({"ADD_GROUP", "DEL_GROUP", "GRP_MGMT", "GRP_CHAUTHTOK"})
ID_IS_UID_TYPES = frozenset(
    {
        "ADD_USER",
        "DEL_USER",
        "USER_MGMT",
        "USER_CHAUTHTOK",
        "USER_LOGIN",
        "USER_LOGOUT",
        "USER_ACCT",
        "ACCT_LOCK",
        "ACCT_UNLOCK",
        "USER_AUTH",
        "USER_ERR",
        "USER_START",
        "USER_END",
        "CRED_ACQ",
        "CRED_DISP",
        "CRED_REFR",
        "USER_ROLE_CHANGE",
        "USER_CMD",
        "USER_TTY",
        "GRP_AUTH",
        "USER_DEVICE",
    }
)
# fields the kernel hex-encodes when they contain special bytes (linux.md §7.4)
ESCAPED_FIELDS = frozenset(
    {
        "path",
        "comm",
        "exe",
        "file",
        "name",
        "watch",
        "cwd",
        "cmd",
        "acct",
        "dir",
        "key",
        "vm",
        "old-chardev",
        "new-chardev",
        "old-disk",
        "new-disk",
        "old-fs",
        "new-fs",
        "old-net",
        "new-net",
        "old-rng",
        "new-rng",
        "device",
        "cgroup",
        "ocomm",
        "grp",
        "new_group",
        "invalid_context",
        "sw",
        "root_dir",
        "apparmor",
        "operation",
        "denied_mask",
        "info",
        "profile",
        "requested_mask",
        "proctitle",
    }
)
CAP_FIELDS = frozenset(
    {
        "cap_fp",
        "cap_fi",
        "cap_pp",
        "cap_pi",
        "cap_pe",
        "cap_pa",
        "cap_bnd",
        "cap_ambient",
        "fp",
        "fi",
        "pp",
        "pi",
        "pe",
        "pa",
        "old_pp",
        "old_pi",
        "old_pe",
        "old_pa",
        "new_pp",
        "new_pi",
        "new_pe",
        "new_pa",
        "pnew_pp",
        "pnew_pi",
        "pnew_pe",
        "pnew_pa",
    }
)
CONTEXT_FIELDS = frozenset({"subj", "obj", "scontext", "tcontext", "vm-ctx", "img-ctx", "new-context", "old-context"})
SYSCALL_ARG_FIELDS = ("a0", "a1", "a2", "a3")
FILTER_LISTS = {"0": "user", "1": "task", "4": "exit", "5": "exclude", "6": "filesystem", "7": "io_uring"}
FILE_TYPES = {
    0o140000: "socket",
    0o120000: "link",
    0o100000: "file",
    0o060000: "block",
    0o040000: "dir",
    0o020000: "character",
    0o010000: "fifo",
}
_EXECVE_ARG = re.compile(r"a(\d+)(?:\[(\d+)\]|(_len))?")
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+")
_QUOTES = ('"', "'")
_SUCCESS = {"yes": True, "no": False}
_PATH_SPECIAL = frozenset({"name", "item", "inode", "mode", "ouid", "ogid"})  # PATH fields with own rules


# -- value decoding ------------------------------------------------------------------------------------


def bytes_to_text(data: bytes) -> str:
    """Decoded bytes as text; invalid UTF-8 becomes backslash escapes so the output stays JSON-safe."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("utf-8", "backslashreplace")


def unescape(value: str) -> str:
    """Value of an escaped field: quoted text unquoted, bare hex decoded, ``(null)``/``?`` kept literal."""
    if not value:
        return value
    if value[0] == '"':
        return value[1:-1] if len(value) > 1 and value[-1] == '"' else value[1:]
    if value == "(null)" or value == "?":
        return value
    if _HEX.fullmatch(value):
        return bytes_to_text(bytes.fromhex(value))
    return value


def unquote(value: str) -> str:
    """Strip one level of double or single quotes (fields that are never hex-encoded)."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _int(value: str | None, base: int = 10) -> int | None:
    if value is None:
        return None
    try:
        return int(value, base)
    except ValueError:
        return None


def errno_name(exit_value: int) -> tuple[str, str] | None:
    """(name, message) of a negative syscall exit value, e.g. -115 -> EINPROGRESS."""
    if exit_value >= 0:
        return None
    return ERRNO.get(-exit_value)


def interpret_mode(value: str) -> str:
    """``0100755`` -> ``file,755`` (libauparse style)."""
    mode = _int(value, 8)
    if mode is None:
        return value
    parts = [FILE_TYPES.get(mode & 0o170000, f"unknown-type({mode & 0o170000:o})")]
    if mode & 0o4000:
        parts.append("suid")
    if mode & 0o2000:
        parts.append("sgid")
    if mode & 0o1000:
        parts.append("sticky")
    parts.append(f"{mode & 0o777:03o}")
    return ",".join(parts)


def decode_sockaddr(value: str) -> dict[str, Any]:
    """Raw hex ``struct sockaddr`` -> {family, address, port, path, ...}; unknown layouts keep the hex."""
    try:
        data = bytes.fromhex(value)
    except ValueError:
        return {"family": None, "error": "saddr is not hex", "raw": value}
    if len(data) < 2:
        return {"family": None, "error": "saddr too short", "raw": value}
    family = int.from_bytes(data[:2], "little")
    if family > 0xFF:  # big-endian sender (s390x, ppc): family bytes are 00 0x
        family = int.from_bytes(data[:2], "big")
    result: dict[str, Any]
    if family == 2 and len(data) >= 8:
        result = {
            "family": "inet",
            "address": str(ipaddress.IPv4Address(data[4:8])),
            "port": int.from_bytes(data[2:4], "big"),
        }
    elif family == 10 and len(data) >= 24:
        result = {
            "family": "inet6",
            "address": str(ipaddress.IPv6Address(data[8:24])),
            "port": int.from_bytes(data[2:4], "big"),
        }
        if len(data) >= 28:
            result["scope_id"] = int.from_bytes(data[24:28], "little")
    elif family == 1:
        path_bytes = data[2:]
        if path_bytes[:1] == b"\0":
            path = "@" + bytes_to_text(path_bytes[1:].split(b"\0", 1)[0])  # abstract socket
        else:
            path = bytes_to_text(path_bytes.split(b"\0", 1)[0])
        result = {"family": "local", "path": path}
    elif family == 16 and len(data) >= 12:
        result = {
            "family": "netlink",
            "netlink_pid": int.from_bytes(data[4:8], "little"),
            "netlink_groups": int.from_bytes(data[8:12], "little"),
        }
    else:
        names = {3: "ax25", 4: "ipx", 5: "appletalk", 17: "packet", 31: "bluetooth", 38: "alg", 40: "vsock", 44: "xdp"}
        result = {"family": names.get(family, f"unknown-family({family})"), "family_number": family}
    return result


def sockaddr_text(decoded: dict[str, Any]) -> str:
    """libauparse's rendering, e.g. ``{ saddr_fam=inet laddr=192.0.2.1 lport=80 }``."""
    family = decoded.get("family")
    if family in ("inet", "inet6"):
        return f"{{ saddr_fam={family} laddr={decoded['address']} lport={decoded['port']} }}"
    if family == "local":
        return f"{{ saddr_fam=local path={decoded['path']} }}"
    if family == "netlink":
        return f"{{ saddr_fam=netlink nlnk-fam=16 nlnk-pid={decoded['netlink_pid']} }}"
    if family and str(family).startswith("unknown-family"):
        return str(family)
    return f"{{ saddr_fam={family} }}"


def split_keys(value: str | None) -> list[str]:
    """Audit rule keys: decoded, split on 0x01; ``(null)`` means none (linux.md §7.7)."""
    if value is None or value.startswith("(null)"):  # "(null)" + a lost ENRICHED separator is seen too
        return []
    if value[:1] != '"':
        value = value.rstrip('"')
    return [key for key in unescape(value).split("\x01") if key]


# -- per-field interpretation ---------------------------------------------------------------------------


def _id_text(raw: str, enriched: dict[str, str], name: str) -> str:
    if raw in UNSET_IDS:
        return "unset"
    # enriched is usually empty: skip the upper() then (this runs for ~8 fields of every SYSCALL)
    named = enriched.get(name.upper()) if enriched else None
    if named:
        return named
    if raw == "0":
        return "root"
    return raw


def _as_id(record: LinuxRecord, name: str, raw: str, table: dict[int, str] | None) -> str:
    return _id_text(raw, record.enriched, name)


def _as_type_dependent_id(record: LinuxRecord, name: str, raw: str, table: dict[int, str] | None) -> str:
    if record.type_name in ID_IS_UID_TYPES or record.type_name in ID_IS_GID_TYPES:
        return _id_text(raw, record.enriched, name)
    return unquote(raw)


def _as_key(record: LinuxRecord, name: str, raw: str, table: dict[int, str] | None) -> str:
    return ",".join(split_keys(raw)) if not raw.startswith("(null)") else "(null)"


def _as_escaped(record: LinuxRecord, name: str, raw: str, table: dict[int, str] | None) -> str:
    return unescape(raw)


def _as_proctitle(record: LinuxRecord, name: str, raw: str, table: dict[int, str] | None) -> str:
    text = unescape(raw)
    return text.replace("\0", " ").rstrip(" ") if "\0" in text else text


def _as_syscall(record: LinuxRecord, name: str, raw: str, table: dict[int, str] | None) -> str:
    number = _int(raw)
    if table is not None and number is not None and number in table:
        return table[number]
    return record.enriched.get("SYSCALL") or raw


def _as_arch(record: LinuxRecord, name: str, raw: str, table: dict[int, str] | None) -> str:
    return arch_info(raw)[0] or record.enriched.get("ARCH") or raw


def _as_exit(record: LinuxRecord, name: str, raw: str, table: dict[int, str] | None) -> str:
    if raw[:1] != "-":
        return raw
    number = _int(raw)
    found = errno_name(number) if number is not None else None
    return f"{found[0]}({found[1]})" if found else raw


def _as_result(record: LinuxRecord, name: str, raw: str, table: dict[int, str] | None) -> str:
    return {"1": "yes", "0": "no"}.get(raw) or unquote(raw)


def _as_session(record: LinuxRecord, name: str, raw: str, table: dict[int, str] | None) -> str:
    return "unset" if raw in UNSET_IDS else raw


def _as_mode(record: LinuxRecord, name: str, raw: str, table: dict[int, str] | None) -> str:
    return interpret_mode(raw)


def _as_sockaddr(record: LinuxRecord, name: str, raw: str, table: dict[int, str] | None) -> str:
    return sockaddr_text(decode_sockaddr(raw))


def _as_capability(record: LinuxRecord, name: str, raw: str, table: dict[int, str] | None) -> str:
    number = _int(raw, 16)
    if number is None:
        return raw
    return "none" if number == 0 else f"0x{number:x}"


def _as_syscall_arg(record: LinuxRecord, name: str, raw: str, table: dict[int, str] | None) -> str:
    if record.type_name == "SYSCALL":
        return f"0x{raw}"
    return unescape(raw) if record.type_name == "EXECVE" else unquote(raw)


def _as_filter_list(record: LinuxRecord, name: str, raw: str, table: dict[int, str] | None) -> str:
    return FILTER_LISTS.get(raw, raw)


def _as_promiscuous(record: LinuxRecord, name: str, raw: str, table: dict[int, str] | None) -> str:
    number = _int(raw)
    return raw if number is None else ("yes" if number & 0x100 else "no")


def _as_tty_data(record: LinuxRecord, name: str, raw: str, table: dict[int, str] | None) -> str:
    return unescape(raw) if record.type_name in ("TTY", "USER_TTY") else unquote(raw)


_Handler = Callable[[LinuxRecord, str, str, "dict[int, str] | None"], str]
_HANDLERS: dict[str, _Handler] = {
    **dict.fromkeys(UID_FIELDS | GID_FIELDS, _as_id),
    **dict.fromkeys(ESCAPED_FIELDS, _as_escaped),
    **dict.fromkeys(CAP_FIELDS, _as_capability),
    **dict.fromkeys(SYSCALL_ARG_FIELDS, _as_syscall_arg),
    "id": _as_type_dependent_id,
    "key": _as_key,
    "proctitle": _as_proctitle,
    "syscall": _as_syscall,
    "arch": _as_arch,
    "exit": _as_exit,
    "res": _as_result,
    "result": _as_result,
    "ses": _as_session,
    "mode": _as_mode,
    "saddr": _as_sockaddr,
    "list": _as_filter_list,
    "prom": _as_promiscuous,
    "old_prom": _as_promiscuous,
    "data": _as_tty_data,
}


def _is_execve_arg(name: str) -> bool:
    """``aN`` or ``aN[i]`` (not ``aN_len``). EXECVE records carry hundreds of these, so the plain ``aN``
    form is recognised without the regex (``str.isdecimal`` is exactly the regex's ``\\d``: Unicode Nd)."""
    if name[:1] != "a":
        return False
    if name[1:].isdecimal():
        return True
    return not name.endswith("_len") and _EXECVE_ARG.fullmatch(name) is not None


def interpret_field(record: LinuxRecord, name: str, raw: str, arch_table: dict[int, str] | None) -> str:
    """Human-readable value of one field (libauparse-like); unknown kinds are returned unquoted."""
    handler = _HANDLERS.get(name)
    if handler is not None:
        return handler(record, name, raw, arch_table)
    if record.type_name == "EXECVE" and _is_execve_arg(name):
        return unescape(raw)
    return unquote(raw)


# -- event-level facts ----------------------------------------------------------------------------------


def iso_time(time_ns: int | None) -> str | None:
    """RFC 3339 UTC with milliseconds, e.g. 2017-04-21T05:28:42.985Z."""
    if time_ns is None:
        return None
    global _last_second
    sec, rest = divmod(time_ns, 1_000_000_000)
    cached = _last_second  # one read: the (second, text) pair stays consistent even across threads
    if cached[0] != sec:  # consecutive events mostly share the second: format it once
        try:
            cached = (sec, datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
        except (OverflowError, OSError, ValueError):
            return None
        _last_second = cached
    return f"{cached[1]}.{rest // 1_000_000:03d}Z"


_last_second: tuple[int | None, str] = (None, "")


def execve_args(records: list[LinuxRecord]) -> tuple[int | None, list[str]]:
    """argc and argv from one or more EXECVE records, joining ``aN[i]`` chunks (linux.md §7.6)."""
    argc: int | None = None
    whole: dict[int, str] = {}
    chunks: dict[int, dict[int, str]] = {}
    for record in records:
        for name, raw in record.fields.items():
            digits = name[1:]
            if name[:1] == "a" and digits.isdecimal() and len(digits) < 10:  # the common form, without the regex
                # unescape(), with quoted text (the usual case) inline: there can be thousands of arguments
                whole[int(digits)] = raw[1:-1] if len(raw) > 1 and raw[0] == '"' and raw[-1] == '"' else unescape(raw)
                continue
            if name == "argc":
                argc = _int(raw)
                continue
            match = _EXECVE_ARG.fullmatch(name)
            if match is None or match.group(3):
                continue
            if len(match.group(1)) >= 10 or (match.group(2) and len(match.group(2)) >= 10):
                continue  # not an argument number a kernel writes (and int() of 4300+ digits raises)
            index = int(match.group(1))
            if match.group(2) is None:
                whole[index] = unescape(raw)
            else:
                chunks.setdefault(index, {})[int(match.group(2))] = raw
    for index, parts in chunks.items():
        # a hex-encoded argument may be cut anywhere: decode each chunk to bytes, then join the bytes
        whole[index] = bytes_to_text(b"".join(_chunk_bytes(parts[i]) for i in sorted(parts)))
    if not whole:
        return argc, []
    top = max(whole)
    # Gaps are bounded by what was sent, never by the sender's argc: "argc=999999999999 a200000=x"
    # (61 bytes) must not become 200 001 arguments.
    if top < len(whole) + 1024:
        return argc, [whole.get(i, "") for i in range(top + 1)]  # a missing chunk record leaves a gap: keep its place
    # A numbering no kernel writes (a99999999=...): never pad it, keep what was sent, in order.
    return argc, [whole[i] for i in sorted(whole)]


def _chunk_bytes(raw: str) -> bytes:
    if raw[:1] == '"':
        return unescape(raw).encode("utf-8", "backslashreplace")
    if _HEX.fullmatch(raw):
        return bytes.fromhex(raw)
    return raw.encode("utf-8", "backslashreplace")


# subject id fields reported under "user", with their ENRICHED (upper-case) names
_SUBJECT_IDS = tuple(
    (name, name.upper())
    for name in ("auid", "uid", "gid", "euid", "suid", "fsuid", "egid", "sgid", "fsgid", "old-auid", "sauid")
)


def _uid_value(raw: str | None) -> str | None:
    if raw is None or raw in UNSET_IDS:
        return None
    return raw


def interpret(event: LinuxEvent) -> dict[str, Any]:
    """Decoded form of an event (see the module docstring); plain dicts/lists/str/int/bool/None only."""
    records_out: list[dict[str, Any]] = []
    arch_table: dict[int, str] | None = None
    by_type: dict[str, list[LinuxRecord]] = {}
    own_tables: list[tuple[bool, dict[int, str] | None]] = []  # per record: (has arch=, its syscall table)
    for record in event.records:
        by_type.setdefault(record.type_name, []).append(record)
        arch_raw = record.fields.get("arch")
        if arch_raw is None:
            own_tables.append((False, None))
        else:
            own = arch_info(arch_raw)[1]
            own_tables.append((True, own))
            if arch_table is None:
                arch_table = own
    handlers = _HANDLERS
    for record, (has_arch, own_table) in zip(event.records, own_tables, strict=True):
        out: dict[str, Any] = {"type": record.type_name, "type_num": record.type_num, "raw": record.raw}
        if record.error is None and not record.fragment:
            fields = record.fields
            # a record's own arch wins (SECCOMP carries one); else the event's SYSCALL arch
            table = own_table if has_arch else arch_table
            # Bare values without a handler are their own interpretation: copy them all at C speed and
            # overwrite only the fields that need work (a handler, or quotes to strip).
            interpreted: dict[str, str] = dict(fields)
            execve = record.type_name == "EXECVE"  # EXECVE's aN arguments are escaped values
            enriched = record.enriched
            for name, raw in fields.items():
                handler = handlers.get(name)
                try:
                    if handler is None:
                        if execve and _is_execve_arg(name):
                            # what interpret_field does for these; quoted text (the usual case) inline
                            if len(raw) > 1 and raw[0] == '"' and raw[-1] == '"':
                                interpreted[name] = raw[1:-1]
                            else:
                                interpreted[name] = unescape(raw)
                        elif raw[:1] in _QUOTES:
                            interpreted[name] = unquote(raw)  # what interpret_field does for these
                    elif handler is _as_id:  # the most frequent handler (a SYSCALL has ~9 ids): one call less
                        interpreted[name] = _id_text(raw, enriched, name)
                    else:
                        interpreted[name] = handler(record, name, raw, table)
                except Exception:  # never let one odd value lose the event (the copy keeps it raw)
                    pass
            out["fields"] = fields  # shared, not copied: records are finished once interpreted
            out["interpreted"] = interpreted
            if enriched:
                out["enriched"] = enriched
            if record.duplicates:
                out["duplicates"] = [list(pair) for pair in record.duplicates]
        else:
            out["error"] = record.error
        records_out.append(out)

    result: dict[str, Any] = {
        "id": event.records[0].msg_id if event.records else None,
        "source": event.source,
        "node": event.node,
        "timestamp": iso_time(event.time_ns),
        "time_ns": event.time_ns,
        "serial": event.serial,
        "complete": event.complete,
        "error": event.error,
        "lost_before": event.lost_before,
        "record_types": [record.type_name for record in event.records],
        "records": records_out,
    }
    if event.complete == COMPLETE_ERROR or not event.records:
        return result
    try:
        _facts(event, by_type, arch_table, result)
    except Exception as exc:  # defensive: keep the records even if a fact cannot be derived
        result["error"] = f"interpretation failed: {exc!r}"
    return result


def _facts(
    event: LinuxEvent,
    by_type: dict[str, list[LinuxRecord]],
    arch_table: dict[int, str] | None,
    result: dict[str, Any],
) -> None:
    """Actor/object facts for the ECS mapper: syscall, result, user ids, process, paths, sockaddr, keys."""
    raw: str | None
    value: Any
    errno: tuple[str, str] | None
    valid = [record for record in event.records if record.error is None and record.type_name != "EOE"]
    syscall_record = by_type.get("SYSCALL", [None])[0]
    # the "main" record: SYSCALL if present, else the first record that is not an auxiliary one
    main = syscall_record or next(
        (r for r in valid if r.type_name not in ("PROCTITLE", "CWD", "PATH", "SOCKADDR", "EXECVE")),
        valid[0] if valid else event.records[0],
    )
    result["type"] = main.type_name
    enriched: dict[str, str] = {}
    for record in valid:
        if record.enriched:
            for name, value in record.enriched.items():
                enriched.setdefault(name, value)
    main_fields = main.fields
    # field(name): the main record's value, else the first valid record's. One merged dict (earlier
    # records and the main one applied last so they win) replaces a Python scan per looked-up name.
    merged: dict[str, str] = {}
    for record in reversed(valid):
        merged.update(record.fields)
    merged.update(main_fields)
    field = merged.get

    # syscall and outcome
    outcome: str | None = None
    if syscall_record is not None:
        fields = syscall_record.fields
        number = _int(fields.get("syscall"))
        arch_name, _ = arch_info(fields.get("arch", ""))
        syscall_name = arch_table.get(number) if arch_table is not None and number is not None else None
        exit_value = _int(fields.get("exit"))
        errno = errno_name(exit_value) if exit_value is not None else None
        success = fields.get("success")
        result["syscall"] = {
            "number": number,
            "name": syscall_name or syscall_record.enriched.get("SYSCALL"),
            "arch": arch_name or syscall_record.enriched.get("ARCH") or fields.get("arch"),
            "success": _SUCCESS.get(success or ""),
            "exit": exit_value,
            "errno": errno[0] if errno else None,
            "errno_text": errno[1] if errno else None,
            "args": [fields[a] for a in SYSCALL_ARG_FIELDS if a in fields],
            "items": _int(fields.get("items")),
        }
        if success == "yes":
            outcome = "success"
        elif success == "no":
            outcome = "failure"
    res = field("res") or field("result")
    if outcome is None and res is not None:
        res = unquote(res)
        if res in ("success", "1", "yes"):
            outcome = "success"
        elif res in ("failed", "fail", "0", "no"):
            outcome = "failure"
    result["outcome"] = outcome

    # rule keys (several records may carry one; keep order, no repeats)
    keys: list[str] = []
    for record in valid:
        raw = record.fields.get("key")
        if raw is None:  # most records carry no key: skip the call
            continue
        for key in split_keys(raw):
            if key not in keys:
                keys.append(key)
    result["keys"] = keys

    # subject ids (strings, None = unset), names only from the sender (ENRICHED)
    users: dict[str, str | None] = {}
    names: dict[str, str] = {}
    for name, upper in _SUBJECT_IDS:
        raw = field(name)
        if raw is not None:
            users[name] = None if raw in UNSET_IDS else raw
            named = enriched.get(upper) if enriched else None
            if named and named != "unset":
                names[name] = named
    result["user"] = {"ids": users, "names": names}
    ses = field("ses")
    result["session"] = None if ses is None or ses in UNSET_IDS else ses

    # process
    process: dict[str, Any] = {}
    for name, key in (("pid", "pid"), ("ppid", "ppid")):
        value = _int(field(name) or "")
        if value is not None:
            process[key] = value
    for name in ("comm", "exe"):
        raw = field(name)
        if raw is not None:
            process[name] = unescape(raw)
    for name in ("tty", "subj"):
        raw = field(name)
        if raw is not None:
            process[name] = unquote(raw)
    if "PROCTITLE" in by_type:
        text = unescape(by_type["PROCTITLE"][0].fields.get("proctitle", ""))
        argv = text.split("\0") if "\0" in text else [text]
        while argv and argv[-1] == "":
            argv.pop()
        process["title"] = " ".join(argv)
        process["title_argv"] = argv
    if "EXECVE" in by_type:
        argc, args = execve_args(by_type["EXECVE"])
        process["argc"] = argc
        process["args"] = args
    if "CWD" in by_type:
        cwd = by_type["CWD"][0].fields.get("cwd")
        if cwd is not None:
            process["cwd"] = unescape(cwd)
    result["process"] = process

    # file system objects
    paths: list[dict[str, Any]] = []
    for record in by_type.get("PATH", []):
        fields = record.fields
        entry: dict[str, Any] = {}
        for name, raw in fields.items():
            if name not in _PATH_SPECIAL:  # most PATH fields: one set test instead of the chain below
                entry[name] = unquote(raw) if raw[:1] in _QUOTES else raw  # bare: nothing to strip
            elif name == "name":
                entry["name"] = unescape(raw)
            elif name in ("item", "inode"):
                number = _int(raw)
                entry[name] = number if number is not None else raw
            elif name == "mode":
                entry["mode"] = raw
                entry["mode_text"] = interpret_mode(raw)
            else:  # ouid, ogid
                entry[name] = _uid_value(raw)
        if "nametype" not in entry and "objtype" in entry:
            entry["nametype"] = entry["objtype"]
        paths.append(entry)
    result["paths"] = paths

    # sockets
    sockaddrs: list[dict[str, Any]] = []
    for record in by_type.get("SOCKADDR", []):
        saddr = record.fields.get("saddr")
        if saddr is not None:
            sockaddrs.append(decode_sockaddr(saddr))
    result["sockaddr"] = sockaddrs

    # user-space messages (USER_*, CRED_*, ...): the PAM/sshd style facts
    if main.type_num is not None and (1100 <= main.type_num <= 1299 or 2100 <= main.type_num <= 2999):
        user_msg: dict[str, Any] = {}
        for name in ("op", "acct", "exe", "hostname", "addr", "terminal", "res", "id", "grantors", "uid"):
            raw = main_fields.get(name)
            if raw is not None:
                user_msg[name] = unescape(raw) if name in ("acct", "exe") else unquote(raw)
        if main.text is not None:
            user_msg["text"] = main.text
        result["user_msg"] = user_msg
