"""Hand-built illumos (version 2) and OpenBSM BSM records for the decoder and schema tests (bsm.md section 4).

No public illumos sample exists (bsm.md 10.4), so version-2 test records are assembled here from the
layouts in the spec, independently of the decoder's code.
"""

from __future__ import annotations

import socket
import struct


def str16(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack(">H", len(raw) + 1) + raw + b"\0"


def addr(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6 if ":" in text else socket.AF_INET, text)


def header32(event: int, sec: int, subsec: int, *, version: int = 2, emod: int = 0) -> bytes:
    """Header without its length: `record()` fills it in (length placeholder 0)."""
    return struct.pack(">BIBHHII", 0x14, 0, version, event, emod, sec, subsec)


def header64(event: int, sec: int, subsec: int, *, version: int = 2, emod: int = 0) -> bytes:
    return struct.pack(">BIBHHQQ", 0x74, 0, version, event, emod, sec, subsec)


def header64_ex(event: int, sec: int, subsec: int, host: str, *, version: int = 2, emod: int = 0) -> bytes:
    a = addr(host)
    return struct.pack(">BIBHHI", 0x79, 0, version, event, emod, len(a)) + a + struct.pack(">QQ", sec, subsec)


def header32_ex(event: int, sec: int, subsec: int, host: str, *, version: int = 2, emod: int = 0) -> bytes:
    a = addr(host)
    return struct.pack(">BIBHHI", 0x15, 0, version, event, emod, len(a)) + a + struct.pack(">II", sec, subsec)


def record(header: bytes, *tokens: bytes, trailer: bool = False) -> bytes:
    """Join header and tokens and patch the header length (and the trailer's copy of it)."""
    body = b"".join(tokens)
    length = len(header) + len(body) + (7 if trailer else 0)
    out = header[:1] + struct.pack(">I", length) + header[5:] + body
    if trailer:
        out += struct.pack(">BHI", 0x13, 0xB105, length)
    return out


SUBJ_IDS = {
    ("subject", 32, False): 0x24,
    ("process", 32, False): 0x26,
    ("subject", 64, False): 0x75,
    ("process", 64, False): 0x77,
    ("subject", 32, True): 0x7A,
    ("process", 32, True): 0x7B,
    ("subject", 64, True): 0x7C,
    ("process", 64, True): 0x7D,
}


def subject(
    auid: int,
    euid: int,
    egid: int,
    ruid: int,
    rgid: int,
    pid: int,
    sid: int,
    port: int,
    host: str,
    *,
    bits: int = 32,
    ex: bool = False,
    kind: str = "subject",
) -> bytes:
    tid = SUBJ_IDS[(kind, bits, ex)]
    out = struct.pack(">B7I", tid, auid, euid, egid, ruid, rgid, pid, sid)
    out += struct.pack(">I" if bits == 32 else ">Q", port)
    a = addr(host)
    if ex:
        out += struct.pack(">I", len(a))
    return out + a


def return32(status: int, retval: int) -> bytes:
    return struct.pack(">BBi", 0x27, status, retval)


def return64(status: int, retval: int) -> bytes:
    return struct.pack(">BBq", 0x72, status, retval)


def arg32(num: int, value: int, desc: str) -> bytes:
    return struct.pack(">BBI", 0x2D, num, value) + str16(desc)


def arg64(num: int, value: int, desc: str) -> bytes:
    return struct.pack(">BBQ", 0x71, num, value) + str16(desc)


def path(text: str) -> bytes:
    return b"\x23" + str16(text)


def text(value: str) -> bytes:
    return b"\x28" + str16(value)


def zonename(name: str) -> bytes:
    return b"\x60" + str16(name)


def attr32(mode: int, uid: int, gid: int, fsid: int, nodeid: int, dev: int) -> bytes:
    return struct.pack(">BIIIiqI", 0x3E, mode, uid, gid, fsid, nodeid, dev)


def attr64(mode: int, uid: int, gid: int, fsid: int, nodeid: int, dev: int) -> bytes:
    return struct.pack(">BIIIiqQ", 0x73, mode, uid, gid, fsid, nodeid, dev)


def attr_old(mode: int, uid: int, gid: int, fsid: int, nodeid: int, dev: int) -> bytes:
    return struct.pack(">BIIIiiI", 0x31, mode, uid, gid, fsid, nodeid, dev)


def cstr_list(token_id: int, items: list[str]) -> bytes:
    return struct.pack(">BI", token_id, len(items)) + b"".join(i.encode() + b"\0" for i in items)


def priv(set_name: str, privs: str) -> bytes:
    return b"\x38" + str16(set_name) + str16(privs)


def file64(sec: int, usec: int, name: str) -> bytes:
    return struct.pack(">BQQ", 0x78, sec, usec) + str16(name)


def file32(sec: int, subsec: int, name: str) -> bytes:
    return struct.pack(">BII", 0x11, sec, subsec) + str16(name)
