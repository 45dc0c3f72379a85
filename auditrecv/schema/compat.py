"""The ``auditrecv-v1`` document shape: what the original Erlang auditrecv indexed (bsm.md 13).

For sites whose dashboards and saved queries use the old field names. Same names and value styles
(lower-case event and errno names, signed ids, ``terminal{ip, local_port, remote_port}`` or ``{dev}``),
plus ``@timestamp`` (= ``time``) so data streams and the sink's index naming work,
with the original's defects fixed:

* repeated tokens are kept: a field holds a list when its token appeared more than once (path, text,
  attributes, args with the same description, privs of the same set type, used_privs);
* attr32 node ids are 64 bits, terminal ports use the corrected recipe (bsm.md 6.1);
* unknown tokens no longer end the record: tokens without a v1 field go to ``other_tokens``;
* exec_env entries without ``=`` are kept (empty value) instead of crashing.

Linux events get the same top-level shape (``event`` = syscall or record type) so one index can hold
both, though the original never received Linux records.
"""

from __future__ import annotations

import time
from typing import Any

from auditrecv.decode.bsm.model import BsmRecord
from auditrecv.decode.linux.interpret import interpret
from auditrecv.decode.linux.model import LinuxEvent
from auditrecv.spool.record import Source

from .common import iso_ns

_V1_TOKENS = frozenset(
    {
        "path",
        "exec_args",
        "exec_env",
        "argument",
        "return",
        "attribute",
        "subject",
        "process",
        "use_of_privilege",
        "use_of_authorization",
        "fmri",
        "text",
        "privilege",
        "zone",
    }
)


def _signed(value: Any, bits: int = 32) -> Any:
    """Two's-complement view of an unsigned id, as the original printed uids (-1 = unset)."""
    if not isinstance(value, int):
        return value
    if value >= 1 << (bits - 1) and value < 1 << bits:
        return value - (1 << bits)
    return value


def _add(doc: dict[str, Any], key: str, value: Any) -> None:
    """Set, or turn into a list on repeats: the original overwrote instead (defect 6)."""
    if key not in doc:
        doc[key] = value
        return
    current = doc[key]
    if isinstance(current, list) and doc.get(f"__{key}_is_list"):
        current.append(value)
    else:
        doc[key] = [current, value]
        doc[f"__{key}_is_list"] = True


def _strip_markers(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_markers(v) for k, v in value.items() if not (k.startswith("__") and k.endswith("_is_list"))}
    if isinstance(value, list):
        return [_strip_markers(v) for v in value]
    return value


def _terminal(tid: dict[str, Any]) -> dict[str, Any]:
    host = tid.get("host")
    if host in (None, "0.0.0.0", "::"):
        return {"dev": tid.get("port")}
    out: dict[str, Any] = {"ip": host}
    if isinstance(tid.get("rport"), int) and isinstance(tid.get("lport"), int):
        out["local_port"] = tid["lport"]
        out["remote_port"] = tid["rport"]
    else:
        out["port_id"] = format(int(tid.get("port") or 0), "X")
    return out


def _subject(tok: dict[str, Any]) -> dict[str, Any]:
    tid = tok.get("tid") if isinstance(tok.get("tid"), dict) else {}
    return {
        "audit_id": _signed(tok.get("audit_uid")),
        "uid": _signed(tok.get("uid")),
        "gid": _signed(tok.get("gid")),
        "ruid": _signed(tok.get("ruid")),
        "rgid": _signed(tok.get("rgid")),
        "pid": tok.get("pid"),
        "session_id": tok.get("sid"),
        "terminal": _terminal(tid or {}),
    }


def _event_name(record: BsmRecord) -> str:
    name = record.event_name or ""
    if name.startswith("AUE_"):
        return name[4:].lower()
    return str(record.event_id)


def bsm_to_compat_v1(
    record: BsmRecord, source: Source, *, received_ns: int, zonealias: str | None = None
) -> dict[str, Any]:
    """One v1 document for one BSM record."""
    stamp = iso_ns(record.time_ns if record.time_ns is not None else received_ns)
    doc: dict[str, Any] = {
        "@timestamp": stamp,  # not in the original; data streams and the sink's index naming need it
        "time": stamp,
        "version": record.version,
        "event": _event_name(record),
        "from": source.peer,
    }
    args: dict[str, Any] = {}
    privs: dict[str, Any] = {}
    other: list[dict[str, Any]] = []
    for tok in record.to_dict()["tokens"]:
        name = tok.get("token")
        if name == "path":
            _add(doc, "path", tok.get("path"))
        elif name == "exec_args":
            doc["exec_args"] = list(tok.get("args") or [])
        elif name == "exec_env":
            env: dict[str, str] = {}
            for entry in tok.get("env") or []:
                key, _, value = str(entry).partition("=")
                env[key.replace(".", "_") or "_"] = value
            doc["exec_env"] = env
        elif name == "argument":
            value = tok.get("value_text")
            if value is None:
                value = _signed(tok.get("value"), int(tok.get("bits") or 32))
            elif tok.get("desc") in ("signal", "op"):
                value = str(value).lower()
            _add(args, str(tok.get("desc") or f"arg{tok.get('arg_num')}").replace(".", "_"), value)
        elif name == "return":
            doc["return"] = tok.get("retval")
            err = tok.get("error")
            doc["errno"] = str(err).lower() if err else str(tok.get("errval"))
        elif name == "attribute":
            nodeid = tok.get("nodeid")
            _add(
                doc,
                "attributes",
                {
                    "mode_octal": format(int(tok.get("mode") or 0), "o"),
                    "uid": _signed(tok.get("uid")),
                    "gid": _signed(tok.get("gid")),
                    "fsid": tok.get("fsid"),
                    "inode_hex": format(int(nodeid), "X") if isinstance(nodeid, int) else None,
                    "devid": str(tok.get("device")),
                },
            )
        elif name == "subject":
            doc["subject"] = _subject(tok)
        elif name == "process":
            _add(doc, "process", _subject(tok))
        elif name == "use_of_privilege":
            _add(doc, "used_privs", {"privs": tok.get("privs"), "success": 1 if tok.get("result") else 0})
        elif name == "use_of_authorization":
            _add(doc, "used_auth", tok.get("authorization"))
        elif name == "fmri":
            _add(doc, "fmri", tok.get("fmri"))
        elif name == "text":
            _add(doc, "text", tok.get("text"))
        elif name == "privilege":
            _add(privs, str(tok.get("set_type")), tok.get("privs"))
        elif name == "zone":
            doc["zonename"] = tok.get("name")
        else:
            other.append(tok)
    if args:
        doc["args"] = args
    if privs:
        doc["privs"] = privs
    if other:
        doc["other_tokens"] = other
    if record.errors:
        doc["decode_errors"] = list(record.errors)
    if zonealias:
        doc["zonealias"] = zonealias
    return _strip_markers(doc)


def linux_to_compat_v1(
    event: LinuxEvent | dict[str, Any], source: Source, *, received_ns: int | None = None
) -> dict[str, Any]:
    """A Linux event in the v1 shape (the original never had these; same field names where they fit)."""
    decoded = interpret(event) if isinstance(event, LinuxEvent) else event
    time_ns = decoded.get("time_ns")
    if not isinstance(time_ns, int):
        time_ns = received_ns if received_ns is not None else time.time_ns()
    syscall = decoded.get("syscall") or {}
    process = decoded.get("process") or {}
    ids = (decoded.get("user") or {}).get("ids") or {}
    doc: dict[str, Any] = {
        "@timestamp": iso_ns(time_ns),
        "time": iso_ns(time_ns),
        "version": "linux",
        "event": str(syscall.get("name") or decoded.get("type") or "unknown").lower(),
        "from": source.peer,
    }
    if decoded.get("node"):
        doc["node"] = decoded["node"]
    paths = [p.get("name") for p in decoded.get("paths") or [] if isinstance(p, dict) and p.get("name")]
    if paths:
        doc["path"] = paths[0] if len(paths) == 1 else paths
    if process.get("args"):
        doc["exec_args"] = list(process["args"])
    if syscall:
        doc["return"] = syscall.get("exit")
        doc["errno"] = str(syscall.get("errno") or "0").lower()

    def num(key: str) -> int | None:
        value = ids.get(key)
        try:
            return _signed(int(value)) if value is not None else -1
        except (TypeError, ValueError):
            return None

    session = str(decoded.get("session") or "")
    doc["subject"] = {
        "audit_id": num("auid"),
        "uid": num("euid"),
        "gid": num("egid"),
        "ruid": num("uid"),
        "rgid": num("gid"),
        "pid": process.get("pid"),
        "session_id": int(session) if session.isdigit() else None,
    }
    if process.get("exe"):
        doc["exe"] = process["exe"]
    if decoded.get("keys"):
        doc["keys"] = list(decoded["keys"])
    doc["records"] = [
        {"type": r.get("type"), **({"fields": r["interpreted"]} if r.get("interpreted") else {"raw": r.get("raw")})}
        for r in decoded.get("records") or []
    ]
    return doc


def to_compat_v1(
    decoded: BsmRecord | LinuxEvent | dict[str, Any],
    source: Source,
    *,
    received_ns: int | None = None,
    zonealias: str | None = None,
) -> dict[str, Any]:
    """v1 document for a BSM record or a Linux event (LinuxEvent or its interpret() dict)."""
    if isinstance(decoded, BsmRecord):
        return bsm_to_compat_v1(
            decoded,
            source,
            received_ns=received_ns if received_ns is not None else time.time_ns(),
            zonealias=zonealias,
        )
    return linux_to_compat_v1(decoded, source, received_ns=received_ns)


def compat_mappings(flavor: str, version: str) -> dict[str, Any]:
    """Mappings for v1 documents: the fields whose types matter explicit, the rest keyword."""
    kw = {"type": "keyword", "ignore_above": 1024}
    ident = {"type": "long"}
    subject = {
        "properties": {
            "audit_id": ident,
            "uid": ident,
            "gid": ident,
            "ruid": ident,
            "rgid": ident,
            "pid": ident,
            "session_id": ident,
            "terminal": {
                "properties": {"ip": kw, "local_port": ident, "remote_port": ident, "dev": ident, "port_id": kw}
            },
        }
    }
    return {
        "dynamic": True,
        "date_detection": False,
        "dynamic_templates": [
            {"args_as_keyword": {"path_match": "args.*", "mapping": kw}},
            {"strings_as_keyword": {"match_mapping_type": "string", "mapping": kw}},
        ],
        "properties": {
            "@timestamp": {"type": "date_nanos"},
            "time": {"type": "date_nanos"},
            "version": kw,
            "event": kw,
            "from": kw,
            "zonename": kw,
            "zonealias": kw,
            "path": kw,
            "exec_args": kw,
            "exec_env": {"type": "object", "enabled": False},
            "args": {"type": "object"},
            "return": ident,
            "errno": kw,
            "attributes": {
                "properties": {"mode_octal": kw, "uid": ident, "gid": ident, "fsid": kw, "inode_hex": kw, "devid": kw}
            },
            "subject": subject,
            "process": subject,
            "used_privs": {"properties": {"privs": kw, "success": ident}},
            "used_auth": kw,
            "fmri": kw,
            "text": kw,
            "privs": {"type": "object"},
            "other_tokens": {"type": "object", "enabled": False},
            "decode_errors": kw,
            "records": {"type": "object", "enabled": False},
            "keys": kw,
            "exe": kw,
            "node": kw,
            "tags": kw,
            # documents cut to fit [limits] (schema/limits.py), as in the ECS shape
            "auditrecv": {
                "properties": {
                    "truncated": {"type": "boolean"},
                    "truncation": {"properties": {"document_bytes": ident, "raw_bytes": ident, "fields": kw}},
                    "raw_base64": {"type": "keyword", "index": False, "doc_values": False},
                    "raw_kind": kw,
                }
            },
        },
    }
