"""Pure BSM record decoder: bytes in, `BsmRecord`s out, never an exception.

Layouts and dialect rules are bsm.md sections 2-7. Speed matters (a trail can hold millions of
records), so each token layout is a precompiled `struct.Struct`, token ids dispatch through a table,
and truncation is detected by the natural `IndexError`/`struct.error` of reading past the record's own
bytes (every record is decoded inside its own slice, so a bad length can never read the next record).
What repeats from record to record (event facts per version/event, subject terminal ids, zone
names, audit-mask class lists, IPv4 text) is memoised in small bounded dicts keyed on the raw values;
memoised dicts are always copied out, never shared between records.
"""

from __future__ import annotations

import mmap
import re
import struct
from collections.abc import Callable, Iterator
from socket import AF_INET, AF_INET6, inet_ntop
from typing import Any

from .model import BsmFileToken, BsmRecord, Token
from .ports import decode_port_pair
from .tables import Dialect, load_tables, mask_to_classes

_T = load_tables()
_ILLUMOS = _T.illumos
_OPENBSM = _T.openbsm

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_HDR32 = struct.Struct(">IBHHII")  # reclen version event emod sec subsec
_HDR64 = struct.Struct(">IBHHQQ")
_HDREX = struct.Struct(">IBHHI")  # reclen version event emod atype
_SEVEN_IDS = struct.Struct(">7I")  # subject/process: auid euid egid ruid rgid pid sid
_HDR64EX4 = struct.Struct(">IBHHI4sQQ")  # header64_ex with atype 4, whole
_ATYPE_IPV4 = b"\0\0\0\4"
_SEC32 = struct.Struct(">II")
_SEC64 = struct.Struct(">QQ")
_RET32 = struct.Struct(">Bi")
_RET64 = struct.Struct(">Bq")
_ARG32 = struct.Struct(">BIH")
_ARG64 = struct.Struct(">BQH")
_ATTR_OLD = struct.Struct(">IIIiiI")
_ATTR32 = struct.Struct(">IIIiqI")
_ATTR64 = struct.Struct(">IIIiqQ")
_IPC = struct.Struct(">BI")
_IPC_PERM = struct.Struct(">7I")
_IP = struct.Struct(">BBHHHBBH4s4s")
_ACL = struct.Struct(">III")
_ACE = struct.Struct(">IIHH")
_SOCKEX = struct.Struct(">HHHH")
_SOCK9 = struct.Struct(">H2s4s")
_SOCK15 = struct.Struct(">H2s4s2s4s")
_SOCKIN32 = struct.Struct(">H2s4s")
_SOCKIN128 = struct.Struct(">BB2s16s")
_TID = struct.Struct(">BHHI")
_EXIT = struct.Struct(">Ii")
_TRAILER = struct.Struct(">HI")
_XOBJ = struct.Struct(">iI")
_FILE32 = struct.Struct(">IIH")
_FILE64 = struct.Struct(">QQH")
_LABEL = struct.Struct(">BB2s32s")

HEADER_IDS = frozenset((0x14, 0x15, 0x74, 0x79))
FILE_IDS = frozenset((0x11, 0x78))
_VERSIONS = frozenset((1, 2, 3, 4, 10, 11))
_MOD_BITS = ((0x0001, "rd"), (0x0002, "wr"), (0x0080, "sp"), (0x0100, "fp"), (0x4000, "na"), (0x8000, "fe"))
_USER_LEVEL = 6144
# Bound of each decoded-value memo. A full memo is cleared rather than frozen, so it follows a stream
# whose working set drifts (new sessions). Misses are not free: a synthetic stream in which every
# record has a new terminal id decodes ~12% slower than without the memo (bench notes in issue 3).
_MEMO_MAX = 4096


class _Truncated(Exception):
    """A token needs more bytes than its record holds."""


class _Bad(Exception):
    """A field holds a value the layout does not allow (e.g. address type 7)."""


def _memo_slot(illumos: bool, user_level: bool) -> int:
    """Index of the per-(dialect, user level) memo a token decoder uses (both can change its output)."""
    return 2 * illumos + user_level


class _Ctx:
    """Per-record facts token decoders need (dialect, event range) and flags they set."""

    __slots__ = ("args", "has_args", "has_trailer", "illumos", "memo_slot", "reclen", "user_level")

    def __init__(self, version: int, event: int, reclen: int) -> None:
        self.illumos = version not in (10, 11)
        self.user_level = event >= _USER_LEVEL
        self.memo_slot = _memo_slot(self.illumos, self.user_level)
        self.reclen = reclen
        self.has_trailer = False
        self.has_args = False
        self.args: list[Token] = []
        """This record's argument tokens, valid only while has_args (see _note_arg)."""


Decoder = Callable[[bytes, int, _Ctx], tuple[Token | None, int]]


# ---------------------------------------------------------------- primitives


def _str16(b: bytes, p: int) -> tuple[str, int]:
    """u16 length (counting the NUL) + bytes, stripped at the first NUL."""
    e = p + 2 + ((b[p] << 8) | b[p + 1])
    if e > len(b):
        raise _Truncated
    z = b.find(b"\0", p + 2, e)
    raw = b[p + 2 : e if z < 0 else z]
    # ASCII fast path: decode("utf-8", "replace") pays for its error-handler argument on every call
    return (raw.decode("ascii") if raw.isascii() else raw.decode("utf-8", "replace")), e


def _cstrs(b: bytes, p: int, count: int) -> tuple[list[str], int]:
    """`count` NUL-terminated strings (one C-level split instead of a find per string)."""
    if count == 0:
        return [], p
    parts = b[p:].split(b"\0", count)
    if len(parts) <= count:
        raise _Truncated
    end = len(b) - len(parts.pop())  # just past the count-th NUL
    seg = b[p : end - 1]
    if seg.isascii():  # one decode and one split for all strings (NUL is ASCII, so this splits alike)
        return seg.decode("ascii").split("\0"), end
    return [x.decode("utf-8", "replace") for x in parts], end


_IP4_CACHE: dict[bytes, str] = {}


def _ip4(raw: bytes) -> str:
    """IPv4 text with a bounded memo: inet_ntop costs more than the rest of a path token, and the
    addresses in one stream repeat (the host itself, 0.0.0.0, a few peers)."""
    text = _IP4_CACHE.get(raw)
    if text is None:
        if len(_IP4_CACHE) >= 65536:
            _IP4_CACHE.clear()
        text = _IP4_CACHE[raw] = inet_ntop(AF_INET, raw)
    return text


def _addr(b: bytes, p: int, atype: int) -> tuple[str, int]:
    """Network-order address of type 4 or 16 as text."""
    e = p + atype
    if e > len(b):
        raise _Truncated
    if atype == 4:
        return _ip4(b[p:e]), e
    if atype == 16:
        return inet_ntop(AF_INET6, b[p:e]), e
    raise _Bad(f"address type {atype} (expected 4 or 16)")


def _ip4_rev(raw: bytes) -> str:
    """An IPv4 address written with adr_int32 from network order on x86: bytes reversed."""
    return inet_ntop(AF_INET, raw[::-1])


def _le16(raw: bytes) -> int:
    return raw[0] | (raw[1] << 8)


def _be16(raw: bytes) -> int:
    return (raw[0] << 8) | raw[1]


def _errno_name(num: int, ctx: _Ctx) -> str | None:
    return (_ILLUMOS if ctx.illumos else _OPENBSM).errno.get(num)


# ---------------------------------------------------------------- subject / process


def _make_subject(name: str, bits: int, ex: bool, token_id: int) -> Decoder:
    """Decoder for one subject/process variant; the port-pair recipe (ports.py) is inlined for speed."""
    port_fmt = "I" if bits == 32 else "Q"
    head = struct.Struct(">7I" + port_fmt + ("I" if ex else "4s"))
    head_size = head.size
    tail = struct.Struct(">" + port_fmt + "4s")  # non-_ex terminal id: port + IPv4 address
    user_recipe_32 = bits == 32
    # The terminal id of a fixed-size (non-_ex) token repeats across a session's records (and daemons
    # all write port 0 / 0.0.0.0), so its dict is memoised on the raw bytes; one memo per
    # (dialect, user level) slot because both change the result. Callers always get a fresh copy.
    tid_memos: tuple[dict[bytes, dict[str, Any]], ...] = ({}, {}, {}, {})

    def make_tid(port: int, atype: int, host: str, last: bytes, ctx: _Ctx) -> dict[str, Any]:
        if user_recipe_32:
            major, minor = port >> 18, port & 0x3FFFF
        else:
            major, minor = port >> 32, port & 0xFFFFFFFF
        if not ctx.illumos:
            return {"port": port, "port_bits": bits, "major": major, "minor": minor, "type": atype, "host": host}
        x: int | None
        if user_recipe_32:
            x, recipe = port, "32bit"
        elif major == 0 or major == 0xFFFFFFFF:
            x, recipe = minor, "native64"
        elif major <= 0x3FFF and minor <= 0x3FFFF:
            x, recipe = (major << 18) | minor, "devexpl"
        else:
            x = recipe = None
        if x is None:
            rport = lport = None
        else:
            rport = (x >> 24) | ((x >> 8) & 0xFF00)
            lport = ((x >> 8) & 0xFF) | ((x & 0xFF) << 8)
        tid: dict[str, Any] = {
            "port": port,
            "port_bits": bits,
            "major": major,
            "minor": minor,
            "type": atype,
            "host": host,
            "rport": rport,
            "lport": lport,
            "port_recipe": recipe,
            "host_uncertain": ctx.user_level and not ex,
        }
        if ctx.user_level and not ex:  # libbsm may have stored the address byte-reversed (bsm.md 1.1)
            tid["host_reversed"] = inet_ntop(AF_INET, last[::-1])
        return tid

    def decode_ex(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
        auid, euid, egid, ruid, rgid, pid, sid, port, atype = head.unpack_from(b, p)
        host, p = _addr(b, p + head_size, atype)
        return {
            "token": name,
            "id": token_id,
            "audit_uid": auid,
            "uid": euid,
            "gid": egid,
            "ruid": ruid,
            "rgid": rgid,
            "pid": pid,
            "sid": sid,
            "tid": make_tid(port, atype, host, b"", ctx),
        }, p

    def decode(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
        auid, euid, egid, ruid, rgid, pid, sid = _SEVEN_IDS.unpack_from(b, p)
        memo = tid_memos[ctx.memo_slot]
        key = b[p + 28 : p + head_size]  # a truncated key is never stored, so it never hits
        tid = memo.get(key)
        if tid is None:
            port, last = tail.unpack_from(b, p + 28)
            tid = make_tid(port, 4, _IP4_CACHE.get(last) or _ip4(last), last, ctx)
            if len(memo) >= _MEMO_MAX:
                memo.clear()
            memo[key] = tid
        return {
            "token": name,
            "id": token_id,
            "audit_uid": auid,
            "uid": euid,
            "gid": egid,
            "ruid": ruid,
            "rgid": rgid,
            "pid": pid,
            "sid": sid,
            "tid": tid.copy(),  # flat dict of immutable values: a shallow copy is a full one
        }, p + head_size

    return decode_ex if ex else decode


# ---------------------------------------------------------------- return / arg / attr


def _return_error(status: int, retval: int, ctx: _Ctx) -> str | None:
    if ctx.illumos and ctx.user_level:
        if status == 0:
            return None
        if 1000 <= retval < 2000:
            return _T.adt_fail.get(retval)
        if retval >= 2000:
            return _T.pam_errors.get(retval)
        return _ILLUMOS.errno.get(retval)
    if status == 0:
        return None
    return _errno_name(status, ctx)


def _make_return(bits: int, token_id: int) -> Decoder:
    """return32 / return64: the same token, one closure per width."""
    layout = _RET32 if bits == 32 else _RET64
    size = layout.size

    def decode(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
        status, retval = layout.unpack_from(b, p)
        return {
            "token": "return",
            "id": token_id,
            "errval": status,
            "retval": retval,
            "bits": bits,
            "success": status == 0,
            "error": None if status == 0 else _return_error(status, retval, ctx),
        }, p + size

    return decode


def _note_arg(tok: Token, ctx: _Ctx) -> None:
    """Remember an argument token for _annotate_args, so records without arguments pay nothing and
    records with them are not rescanned. A fresh list per record that has arguments: has_args is
    reset for every record, so a list left by an earlier record is never read."""
    if ctx.has_args:
        ctx.args.append(tok)
    else:
        ctx.args = [tok]
        ctx.has_args = True


def _t_arg32(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    num, value, n = _ARG32.unpack_from(b, p)
    e = p + 7 + n
    if e > len(b):
        raise _Truncated
    z = b.find(b"\0", p + 7, e)
    raw = b[p + 7 : e if z < 0 else z]
    desc = raw.decode("ascii") if raw.isascii() else raw.decode("utf-8", "replace")  # see _str16
    tok: Token = {"token": "argument", "id": 0x2D, "arg_num": num, "value": value, "desc": desc, "bits": 32}
    if ctx.has_args:  # _note_arg, inlined: arg32 is the common argument token
        ctx.args.append(tok)
    else:
        ctx.args = [tok]
        ctx.has_args = True
    return tok, e


def _t_arg64(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    num, value, _n = _ARG64.unpack_from(b, p)
    desc, p = _str16(b, p + 9)
    tok: Token = {"token": "argument", "id": 0x71, "arg_num": num, "value": value, "desc": desc, "bits": 64}
    _note_arg(tok, ctx)
    return tok, p


def _make_attr(layout: struct.Struct, tid: int, bits: int) -> Decoder:
    """attribute: old (25-byte, bits 0), attr32 and attr64; one closure each, no helper call per token."""
    size = layout.size

    def decode(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
        mode, uid, gid, fsid, nodeid, dev = layout.unpack_from(b, p)
        return {
            "token": "attribute",
            "id": tid,
            "mode": mode,
            "mode_octal": f"{mode:o}",
            "uid": uid,
            "gid": gid,
            "fsid": fsid,
            "nodeid": nodeid,
            "nodeid_hex": f"{nodeid & 0xFFFFFFFFFFFFFFFF:x}",
            "device": dev,
            "bits": bits,
        }, p + size

    return decode


# ---------------------------------------------------------------- string-ish tokens


def _make_str16(name: str, field: str, tid: int) -> Decoder:
    def decode(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
        e = p + 2 + ((b[p] << 8) | b[p + 1])
        if e > len(b):
            raise _Truncated
        z = b.find(b"\0", p + 2, e)
        raw = b[p + 2 : e if z < 0 else z]
        text = raw.decode("ascii") if raw.isascii() else raw.decode("utf-8", "replace")  # see _str16
        return {"token": name, "id": tid, field: text}, e

    return decode


def _t_zone(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    """zonename: a host has a handful of zones and every illumos record ends with one, so the text is
    memoised on the raw bytes (length and NUL included); otherwise exactly the str16 reading."""
    e = p + 2 + ((b[p] << 8) | b[p + 1])
    if e > len(b):
        raise _Truncated
    raw = b[p:e]
    text = _ZONE_MEMO.get(raw)
    if text is None:
        z = raw.find(b"\0", 2)
        text = raw[2 : None if z < 0 else z].decode("utf-8", "replace")
        if len(_ZONE_MEMO) >= _MEMO_MAX:
            _ZONE_MEMO.clear()
        _ZONE_MEMO[raw] = text
    return {"token": "zone", "id": 0x60, "name": text}, e


_ZONE_MEMO: dict[bytes, str] = {}


def _make_cstr_list(name: str, field: str, tid: int) -> Decoder:
    def decode(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
        count = _U32.unpack_from(b, p)[0]
        if count > len(b):  # each string takes at least one byte
            raise _Truncated
        items, p = _cstrs(b, p + 4, count)
        return {"token": name, "id": tid, field: items}, p

    return decode


def _t_priv(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    set_type, p = _str16(b, p)
    privs, p = _str16(b, p)
    return {"token": "privilege", "id": 0x38, "set_type": set_type, "privs": privs}, p


def _t_secflags(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    set_type, p = _str16(b, p)
    flags, p = _str16(b, p)
    return {"token": "secflags", "id": 0x62, "set_type": set_type, "flags": flags}, p


def _t_upriv(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    result = b[p]
    privs, p = _str16(b, p + 1)
    return {"token": "use_of_privilege", "id": 0x39, "result": result != 0, "privs": privs}, p


def _t_uauth(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    """0x3f is use_of_authorization (str16), but illumos libbsm au_to_upriv() also writes 0x3f in front of
    the upriv layout (u8 success, str16): take that reading only when the str16 one does not fit."""
    try:
        text, q = _str16(b, p)
        if _next_fits(b, q):
            return {"token": "use_of_authorization", "id": 0x3F, "authorization": text}, q
    except (IndexError, _Truncated):
        pass
    if b[p] in (0, 1):
        try:
            privs, q = _str16(b, p + 1)
        except (IndexError, _Truncated):
            pass
        else:
            if _next_fits(b, q):
                return {
                    "token": "use_of_privilege",
                    "id": 0x3F,
                    "result": b[p] != 0,
                    "privs": privs,
                    "note": "written with id 0x3f by libbsm au_to_upriv()",
                }, q
    text, q = _str16(b, p)
    return {"token": "use_of_authorization", "id": 0x3F, "authorization": text}, q


def _t_user(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    uid = _U32.unpack_from(b, p)[0]
    name, p = _str16(b, p + 4)
    return {"token": "user", "id": 0x36, "uid": uid, "username": name}, p


def _t_cmd(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    argc = _U16.unpack_from(b, p)[0]
    p += 2
    args = []
    for _ in range(argc):
        s, p = _str16(b, p)
        args.append(s)
    envc = _U16.unpack_from(b, p)[0]
    p += 2
    env = []
    for _ in range(envc):
        s, p = _str16(b, p)
        env.append(s)
    return {"token": "cmd", "id": 0x51, "argv": args, "arge": env}, p


def _t_opaque(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    n = _U16.unpack_from(b, p)[0]
    e = p + 2 + n
    if e > len(b):
        raise _Truncated
    return {"token": "opaque", "id": 0x29, "size": n, "data": b[p + 2 : e].hex()}, e


_PRINT_NAMES = ("binary", "octal", "decimal", "hex", "string")
_UNIT_NAMES = ("byte", "short", "int32", "int64")
_UNIT_SIZES = (1, 2, 4, 8)


def _t_data(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    how, unit, count = b[p], b[p + 1], b[p + 2]
    if unit > 3:
        raise _Bad(f"data token unit type {unit}")
    size = _UNIT_SIZES[unit]
    e = p + 3 + size * count
    if e > len(b):
        raise _Truncated
    raw = b[p + 3 : e]
    values: Any
    if how == 4 and unit == 0:
        values = raw.decode("utf-8", "replace")
    else:
        values = [int.from_bytes(raw[i : i + size], "big") for i in range(0, len(raw), size)]
    return {
        "token": "arbitrary",
        "id": 0x21,
        "print": _PRINT_NAMES[how] if how < 5 else str(how),
        "type": _UNIT_NAMES[unit],
        "count": count,
        "values": values,
        "raw": raw.hex(),
    }, e


# ---------------------------------------------------------------- network tokens


def _t_in_addr(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    addr, p = _addr(b, p, 4)
    return {"token": "ip_address", "id": 0x2A, "type": 4, "address": addr}, p


def _t_in_addr_ex(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    atype = _U32.unpack_from(b, p)[0]
    addr, p = _addr(b, p + 4, atype)
    return {"token": "ip_address", "id": 0x7E, "type": atype, "address": addr}, p


def _t_host(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    addr, p = _addr(b, p, 4)
    return {"token": "host", "id": 0x70, "address": addr}, p


def _t_iport(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    raw = b[p : p + 2]
    if len(raw) < 2:
        raise _Truncated
    return {"token": "ip_port", "id": 0x2C, "port": _be16(raw), "port_swapped": _le16(raw)}, p + 2


def _t_ip(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    vhl, tos, length, ident, off, ttl, proto, cksum, src, dst = _IP.unpack_from(b, p)
    tok: Token = {
        "token": "ip",
        "id": 0x2B,
        "version": vhl,
        "service_type": tos,
        "time_to_live": ttl,
        "protocol": proto,
    }
    if ctx.illumos:  # network-order fields pushed through adr_short/adr_int32: swapped on x86
        sw = struct.unpack("<HHHH", struct.pack(">HHHH", length, ident, off, cksum))
        tok.update(len=sw[0], ip_id=sw[1], offset=sw[2], cksum=sw[3], src_addr=_ip4_rev(src), dest_addr=_ip4_rev(dst))
    else:
        tok.update(
            len=length,
            ip_id=ident,
            offset=off,
            cksum=cksum,
            src_addr=inet_ntop(AF_INET, src),
            dest_addr=inet_ntop(AF_INET, dst),
        )
    return tok, p + 20


def _t_socket_ex(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    domain, stype, atype, lport_raw = _SOCKEX.unpack_from(b, p)
    laddr, p = _addr(b, p + 8, atype)
    fport_raw = _U16.unpack_from(b, p)[0]
    faddr, p = _addr(b, p + 2, atype)
    if ctx.illumos:  # adr_short of a network-order port: little-endian on x86
        lport = ((lport_raw & 0xFF) << 8) | (lport_raw >> 8)
        fport = ((fport_raw & 0xFF) << 8) | (fport_raw >> 8)
    else:
        lport, fport = lport_raw, fport_raw
    return {
        "token": "socket",
        "id": 0x7F,
        "sock_domain": domain,
        "sock_type": stype,
        "type": atype,
        "lport": lport,
        "laddr": laddr,
        "fport": fport,
        "faddr": faddr,
    }, p


def _next_fits(b: bytes, q: int) -> bool:
    return q == len(b) or (q < len(b) and b[q] in _DISPATCH)


def _t_socket(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    """0x2e: illumos kernel 9-byte form or libbsm/OpenBSM 15-byte form (bsm.md 4.5)."""
    if not ctx.illumos:
        size = 15
    else:
        fit9, fit15 = _next_fits(b, p + 8), _next_fits(b, p + 14)
        # user-level programs (libbsm) write 15 bytes, the kernel 9; the next token id arbitrates
        preferred, other, fits_preferred, fits_other = (15, 9, fit15, fit9) if ctx.user_level else (9, 15, fit9, fit15)
        size = preferred if fits_preferred or not fits_other else other
    if size == 9:
        family, port_raw, addr_raw = _SOCK9.unpack_from(b, p)
        return {
            "token": "old_socket",
            "id": 0x2E,
            "layout": 9,
            "family": family,
            "port": _le16(port_raw),
            "addr": _ip4_rev(addr_raw),
            "raw": b[p : p + 8].hex(),
        }, p + 8
    stype, lport_raw, laddr_raw, fport_raw, faddr_raw = _SOCK15.unpack_from(b, p)
    if ctx.illumos:  # libbsm au_to_socket on x86: ports and addresses byte-reversed
        lport, fport = _le16(lport_raw), _le16(fport_raw)
        laddr, faddr = _ip4_rev(laddr_raw), _ip4_rev(faddr_raw)
    else:
        lport, fport = _be16(lport_raw), _be16(fport_raw)
        laddr, faddr = inet_ntop(AF_INET, laddr_raw), inet_ntop(AF_INET, faddr_raw)
    return {
        "token": "old_socket",
        "id": 0x2E,
        "layout": 15,
        "sock_type": stype,
        "lport": lport,
        "laddr": laddr,
        "fport": fport,
        "faddr": faddr,
        "raw": b[p : p + 14].hex(),
    }, p + 14


def _t_sockinet32(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    family, port_raw, addr_raw = _SOCKIN32.unpack_from(b, p)
    return {
        "token": "socket_inet",
        "id": 0x80,
        "family": family,
        "port": _be16(port_raw),
        "addr": inet_ntop(AF_INET, addr_raw),
    }, p + 8


def _t_sockinet128(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    _zero, family, port_raw, addr_raw = _SOCKIN128.unpack_from(b, p)
    return {
        "token": "socket_inet6",
        "id": 0x81,
        "family": family,
        "port": _be16(port_raw),
        "addr": inet_ntop(AF_INET6, addr_raw),
    }, p + 20


def _t_sockunix(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    family = _U16.unpack_from(b, p)[0]
    (path,), p = _cstrs(b, p + 2, 1)
    return {"token": "socket_unix", "id": 0x82, "family": family, "path": path}, p


def _t_tid(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    ttype, rport, lport, atype = _TID.unpack_from(b, p)
    if ttype != 1:
        raise _Bad(f"tid type {ttype} (only AU_IPADR = 1 is defined)")
    host, p = _addr(b, p + 9, atype)
    return {
        "token": "tid",
        "id": 0x61,
        "type": "ip",
        "remote_port": rport,
        "local_port": lport,
        "ip_type": atype,
        "host": host,
    }, p


# ---------------------------------------------------------------- small fixed tokens


def _t_seq(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    return {"token": "sequence", "id": 0x2F, "seq_num": _U32.unpack_from(b, p)[0]}, p + 4


_IPC_TYPES = {1: "msg", 2: "sem", 3: "shm"}


def _t_ipc(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    itype, iid = _IPC.unpack_from(b, p)
    return {"token": "IPC", "id": 0x22, "ipc_type": itype, "ipc_type_name": _IPC_TYPES.get(itype), "ipc_id": iid}, p + 5


def _t_ipc_perm(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    uid, gid, cuid, cgid, mode, seq, key = _IPC_PERM.unpack_from(b, p)
    return {
        "token": "IPC_perm",
        "id": 0x32,
        "uid": uid,
        "gid": gid,
        "creator_uid": cuid,
        "creator_gid": cgid,
        "mode": mode,
        "mode_octal": f"{mode:o}",
        "seq": seq,
        "key": key,
    }, p + 28


def _t_exit(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    errval, retval = _EXIT.unpack_from(b, p)
    return {"token": "exit", "id": 0x52, "errval": errval, "retval": retval}, p + 8


def _t_acl(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    atype, aid, mode = _ACL.unpack_from(b, p)
    return {
        "token": "acl",
        "id": 0x30,
        "kind": "posix",
        "type": atype,
        "value": aid,
        "mode": mode,
        "mode_octal": f"{mode:o}",
    }, p + 12


def _t_ace(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    who, mask, flags, atype = _ACE.unpack_from(b, p)
    return {
        "token": "acl",
        "id": 0x35,
        "kind": "ace",
        "id_value": who,
        "access_mask": mask,
        "flags": flags,
        "type": atype,
    }, p + 12


def _t_groups_old(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    gids = list(struct.unpack_from(">16I", b, p))
    return {"token": "group", "id": 0x34, "gid": gids}, p + 64


def _t_newgroups(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    k = _U16.unpack_from(b, p)[0]
    gids = list(struct.unpack_from(f">{k}I", b, p + 2))
    return {"token": "group", "id": 0x3B, "gid": gids}, p + 2 + 4 * k


def _t_label(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    lid, clen, cls_raw, comps_raw = _LABEL.unpack_from(b, p)
    order = "<" if ctx.illumos else ">"  # writer's host order; illumos assumed x86
    return {
        "token": "sensitivity_label",
        "id": 0x33,
        "label_id": lid,
        "c_len": clen,
        "classification": struct.unpack(order + "h", cls_raw)[0],
        "compartments": list(struct.unpack(order + "8I", comps_raw)),
        "raw": b[p : p + 36].hex(),
    }, p + 36


def _t_liaison(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    return {"token": "liaison", "id": 0x3A, "value": _U32.unpack_from(b, p)[0]}, p + 4


def _t_trailer(b: bytes, p: int, ctx: _Ctx) -> tuple[Token | None, int]:
    magic, reclen = _TRAILER.unpack_from(b, p)
    if magic != 0xB105:
        raise _Bad(f"trailer magic 0x{magic:04x} (expected 0xb105)")
    if reclen != ctx.reclen:
        raise _Bad(f"trailer length {reclen} differs from header length {ctx.reclen}")
    ctx.has_trailer = True
    return None, p + 6


def _t_uuid(name: str, tid: int) -> Decoder:
    def decode(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
        num = b[p]
        raw = b[p + 1 : p + 17]
        if len(raw) < 16:
            raise _Truncated
        h = raw.hex()
        uuid = f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
        desc, p = _str16(b, p + 17)
        return {"token": name, "id": tid, "arg_num": num, "uuid": uuid, "desc": desc}, p

    return decode


def _file_time_ns(sec: int, subsec: int, tid: int, illumos: bool) -> int:
    """File token sub-second: illumos 0x11 and 0x78 microseconds, OpenBSM 0x11 milliseconds."""
    return sec * 1_000_000_000 + subsec * (1_000 if (illumos or tid == 0x78) else 1_000_000)


def _t_file32(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    sec, subsec, _n = _FILE32.unpack_from(b, p)
    name, e = _str16(b, p + 8)
    return {
        "token": "file",
        "id": 0x11,
        "sec": sec,
        "subsec": subsec,
        "time_ns": _file_time_ns(sec, subsec, 0x11, ctx.illumos),
        "name": name,
    }, e


def _t_file64(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    sec, subsec, _n = _FILE64.unpack_from(b, p)
    name, e = _str16(b, p + 16)
    return {
        "token": "file",
        "id": 0x78,
        "sec": sec,
        "subsec": subsec,
        "time_ns": _file_time_ns(sec, subsec, 0x78, True),
        "name": name,
    }, e


# ---------------------------------------------------------------- X-window tokens


def _make_xobj(name: str, tid: int) -> Decoder:
    def decode(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
        xid, cuid = _XOBJ.unpack_from(b, p)
        return {"token": name, "id": tid, "xid": xid, "xcreator_uid": cuid}, p + 8

    return decode


def _t_xproperty(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    xid, cuid = _XOBJ.unpack_from(b, p)
    text, p = _str16(b, p + 8)
    return {"token": "X_property", "id": 0x49, "xid": xid, "xcreator_uid": cuid, "name": text}, p


def _t_xselect(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    propname, p = _str16(b, p)
    proptype, p = _str16(b, p)
    data, p = _str16(b, p)
    return {"token": "X_selection", "id": 0x43, "x_sel_text": propname, "x_sel_type": proptype, "x_sel_data": data}, p


def _t_xclient(b: bytes, p: int, ctx: _Ctx) -> tuple[Token, int]:
    return {"token": "X_client", "id": 0x4B, "client": _U32.unpack_from(b, p)[0]}, p + 4


# ---------------------------------------------------------------- dispatch table


_DISPATCH: dict[int, Decoder] = {
    0x11: _t_file32,
    0x13: _t_trailer,
    0x20: _make_str16("fmri", "fmri", 0x20),
    0x21: _t_data,
    0x22: _t_ipc,
    0x23: _make_str16("path", "path", 0x23),
    0x24: _make_subject("subject", 32, False, 0x24),
    0x25: _make_cstr_list("path_attr", "xattr", 0x25),
    0x26: _make_subject("process", 32, False, 0x26),
    0x27: _make_return(32, 0x27),
    0x28: _make_str16("text", "text", 0x28),
    0x29: _t_opaque,
    0x2A: _t_in_addr,
    0x2B: _t_ip,
    0x2C: _t_iport,
    0x2D: _t_arg32,
    0x2E: _t_socket,
    0x2F: _t_seq,
    0x30: _t_acl,
    0x31: _make_attr(_ATTR_OLD, 0x31, 0),
    0x32: _t_ipc_perm,
    0x33: _t_label,
    0x34: _t_groups_old,
    0x35: _t_ace,
    0x36: _t_user,
    0x38: _t_priv,
    0x39: _t_upriv,
    0x3A: _t_liaison,
    0x3B: _t_newgroups,
    0x3C: _make_cstr_list("exec_args", "args", 0x3C),
    0x3D: _make_cstr_list("exec_env", "env", 0x3D),
    0x3E: _make_attr(_ATTR32, 0x3E, 32),
    0x3F: _t_uauth,
    0x40: _make_str16("X_atom", "atom", 0x40),
    0x43: _t_xselect,
    0x44: _make_xobj("X_color_map", 0x44),
    0x45: _make_xobj("X_cursor", 0x45),
    0x46: _make_xobj("X_font", 0x46),
    0x47: _make_xobj("X_graphic_context", 0x47),
    0x48: _make_xobj("X_pixmap", 0x48),
    0x49: _t_xproperty,
    0x4A: _make_xobj("X_window", 0x4A),
    0x4B: _t_xclient,
    0x51: _t_cmd,
    0x52: _t_exit,
    0x60: _t_zone,
    0x61: _t_tid,
    0x62: _t_secflags,
    0x70: _t_host,
    0x71: _t_arg64,
    0x72: _make_return(64, 0x72),
    0x73: _make_attr(_ATTR64, 0x73, 64),
    0x75: _make_subject("subject", 64, False, 0x75),
    0x77: _make_subject("process", 64, False, 0x77),
    0x78: _t_file64,
    0x7A: _make_subject("subject", 32, True, 0x7A),
    0x7B: _make_subject("process", 32, True, 0x7B),
    0x7C: _make_subject("subject", 64, True, 0x7C),
    0x7D: _make_subject("process", 64, True, 0x7D),
    0x7E: _t_in_addr_ex,
    0x7F: _t_socket_ex,
    0x80: _t_sockinet32,
    0x81: _t_sockinet128,
    0x82: _t_sockunix,
    0x84: _t_uuid("argument_uuid", 0x84),
    0x85: _t_uuid("return_uuid", 0x85),
}

KNOWN_TOKEN_IDS = frozenset(_DISPATCH) | HEADER_IDS
# the per-token loop indexes a 256-slot list: cheaper than dict.get for every token
_DISPATCH_BY_ID: list[Decoder | None] = [_DISPATCH.get(i) for i in range(256)]


# ---------------------------------------------------------------- semantics


_MASK_MEMO: dict[tuple[int, bool], tuple[tuple[str, ...], str]] = {}


def _mask_classes(mask: int, dialect: Dialect) -> tuple[tuple[str, ...], str]:
    """(class names, comma-joined) of an audit mask: mask_to_classes walks every class, and the masks
    in a stream are the few configured ones, so the answer is memoised."""
    key = (mask, dialect is _ILLUMOS)
    found = _MASK_MEMO.get(key)
    if found is None:
        classes = tuple(mask_to_classes(mask, dialect))
        if len(_MASK_MEMO) >= _MEMO_MAX:
            _MASK_MEMO.clear()
        found = _MASK_MEMO[key] = (classes, ",".join(classes))
    return found


def _annotate_args(args: list[Token], event_name: str | None, dialect: Dialect) -> None:
    """Add readable values beside numeric argument values, like the original auditrecv did."""
    for tok in args:
        desc: str = tok["desc"]
        value: int = tok["value"]
        if desc == "signal":
            name = _T.signals.get(value)
            if name is not None:
                tok["value_text"] = name
        elif desc.endswith(("as_success", "as_failure", "am_success", "am_failure")):
            classes, text = _mask_classes(value & 0xFFFFFFFF, dialect)
            tok["value_classes"] = list(classes)
            tok["value_text"] = text
        elif desc == "op" and event_name == "AUE_SETPPRIV":
            name = _T.priv_ops.get(value)
            if name is not None:
                tok["value_text"] = name
        elif "mode" in desc and "cmd" not in desc:
            tok["value_text"] = f"{value:o}"
        elif desc.endswith("port") and event_name in ("AUE_SETAUDIT", "AUE_SETAUDIT_ADDR") and dialect is _ILLUMOS:
            rport, lport, recipe = decode_port_pair(value, tok["bits"])
            tok["rport"], tok["lport"], tok["port_recipe"] = rport, lport, recipe


# ---------------------------------------------------------------- record level


def _header_time_ns(version: int, sec: int, subsec: int) -> int:
    """version 2: nanoseconds; 10/11: milliseconds; old versions: ms unless the value cannot be ms."""
    if version == 2 or (version not in (10, 11) and subsec >= 1000):
        return sec * 1_000_000_000 + subsec
    return sec * 1_000_000_000 + subsec * 1_000_000


def _decode_header(data: bytes, off: int) -> tuple[int, int, int, int, int, int, int, str | None, int]:
    """(header_id, reclen, version, event, emod, sec, subsec, host, header_size) of the header at off."""
    hid = data[off]
    if hid == 0x74:
        reclen, version, event, emod, sec, subsec = _HDR64.unpack_from(data, off + 1)
        return hid, reclen, version, event, emod, sec, subsec, None, 26
    if hid == 0x14:
        reclen, version, event, emod, sec, subsec = _HDR32.unpack_from(data, off + 1)
        return hid, reclen, version, event, emod, sec, subsec, None, 18
    reclen, version, event, emod, atype = _HDREX.unpack_from(data, off + 1)
    host, p = _addr(data, off + 14, atype)
    if hid == 0x15:
        sec, subsec = _SEC32.unpack_from(data, p)
        p += 8
    else:
        sec, subsec = _SEC64.unpack_from(data, p)
        p += 16
    return hid, reclen, version, event, emod, sec, subsec, host, p - off


_NO_INFO = (None, None, ())
_EVENT_INFO = {
    True: {num: (ev.name, ev.description, ev.classes) for num, ev in _ILLUMOS.events.items()},
    False: {num: (ev.name, ev.description, ev.classes) for num, ev in _OPENBSM.events.items()},
}
_MOD_NAMES: dict[int, tuple[str, ...]] = {}

_RecordInfo = tuple[str | None, str | None, tuple[str, ...], str, bool, bool, int]
_RECORD_INFO: dict[int, _RecordInfo] = {}


def _record_info(version: int, event: int) -> _RecordInfo:
    """(event name, description, classes, dialect name, illumos, user_level, memo slot) of a header:
    everything that depends only on version and event, memoised so a record pays one dict lookup."""
    key = version << 16 | event
    info = _RECORD_INFO.get(key)
    if info is None:
        illumos = version != 11 and version != 10
        user_level = event >= _USER_LEVEL
        name, desc, classes = _EVENT_INFO[illumos].get(event, _NO_INFO)
        dialect = "illumos" if illumos else "openbsm"
        info = (name, desc, classes, dialect, illumos, user_level, _memo_slot(illumos, user_level))
        if len(_RECORD_INFO) >= _MEMO_MAX:  # only garbage versions could fill it
            _RECORD_INFO.clear()
        _RECORD_INFO[key] = info
    return info


def _modifier_names(emod: int) -> list[str]:
    names = _MOD_NAMES.get(emod)
    if names is None:
        names = _MOD_NAMES[emod] = tuple(nm for bit, nm in _MOD_BITS if emod & bit)
    return list(names)


def _decode_at(data: bytes, off: int, base: int, ctx: _Ctx | None = None) -> tuple[BsmRecord, int]:
    """Decode the record whose header starts at data[off]; return it and the offset after it.

    The returned offset is past the header's length when that length is usable; otherwise it is
    off + 1 and the caller resynchronises. Never raises.
    """
    total = len(data)
    where = base + off
    try:
        hid = data[off]
        if hid == 0x74:  # the common headers, inlined (illumos header64, OpenBSM header32, header64_ex)
            reclen, version, event, emod, sec, subsec = _HDR64.unpack_from(data, off + 1)
            host, hsize = None, 26
        elif hid == 0x14:  # OpenBSM's usual header
            reclen, version, event, emod, sec, subsec = _HDR32.unpack_from(data, off + 1)
            host, hsize = None, 18
        elif hid == 0x79 and data[off + 10 : off + 14] == _ATYPE_IPV4:  # header64_ex, IPv4 host: one unpack
            reclen, version, event, emod, _atype, host_raw, sec, subsec = _HDR64EX4.unpack_from(data, off + 1)
            host = _IP4_CACHE.get(host_raw) or _ip4(host_raw)
            hsize = 34
        else:
            hid, reclen, version, event, emod, sec, subsec, host, hsize = _decode_header(data, off)
    except (IndexError, struct.error, _Truncated):
        raw = data[off:]
        return BsmRecord(where, len(raw), raw, errors=[f"truncated header at offset {where}"]), total
    except (_Bad, ValueError) as exc:
        return BsmRecord(where, 1, data[off : off + 1], errors=[f"bad header at offset {where}: {exc}"]), off + 1
    if reclen < hsize:
        return BsmRecord(
            where,
            1,
            data[off : off + 1],
            header_id=hid,
            version=version,
            errors=[f"header length {reclen} shorter than the header at offset {where}"],
        ), off + 1
    end = off + reclen
    errors: list[str] = []
    if end > total:
        errors.append(f"record at offset {where} truncated: header says {reclen} bytes, {total - off} available")
        end = total
    b = data[off:end]
    info = _RECORD_INFO.get(version << 16 | event)
    if info is None:
        info = _record_info(version, event)
    name, desc, classes, dialect, illumos, user_level, memo_slot = info
    if version == 2:
        time_ns = sec * 1_000_000_000 + subsec
    elif version == 11:  # OpenBSM: milliseconds
        time_ns = sec * 1_000_000_000 + subsec * 1_000_000
    else:
        time_ns = _header_time_ns(version, sec, subsec)
        if version not in _VERSIONS:
            errors.append(f"unknown header version {version}")
    tokens: list[Token] = []
    rec = BsmRecord(
        where,
        end - off,
        b,
        version,
        hid,
        event,
        name,
        desc,
        list(classes),
        emod,
        _modifier_names(emod) if emod else [],
        time_ns,
        host,
        dialect,
        False,
        tokens,
        errors,
    )
    if ctx is None:
        ctx = _Ctx(version, event, reclen)
    else:  # reuse the caller's context object: one allocation per stream, not per record
        ctx.illumos = illumos
        ctx.user_level = user_level
        ctx.memo_slot = memo_slot
        ctx.reclen = reclen
        ctx.has_trailer = ctx.has_args = False
    dispatch = _DISPATCH_BY_ID
    append = tokens.append
    n = len(b)
    p = hsize
    try:
        while p < n:
            tid = b[p]
            fn = dispatch[tid]
            if fn is None:
                if tid in HEADER_IDS and _plausible_header(data, off + p):
                    # the length field overran into the next record: end this one here, keep the next
                    errors.append(
                        f"record at offset {where} overruns into a header at offset {where + p}; "
                        f"header length {reclen} ignored"
                    )
                    end = off + p
                    rec.raw = b[:p]
                    rec.length = p
                    break
                errors.append(f"unknown token id 0x{tid:02x} at offset {where + p}")
                tokens.append({"token": "unknown", "id": tid, "offset": where + p, "data": b[p:].hex()})
                break
            try:
                tok, p2 = fn(b, p + 1, ctx)
            except (IndexError, struct.error, _Truncated):
                errors.append(f"truncated token 0x{tid:02x} at offset {where + p}")
                tokens.append({"token": "unknown", "id": tid, "offset": where + p, "data": b[p:].hex()})
                break
            except (_Bad, ValueError, OverflowError) as exc:
                errors.append(f"bad token 0x{tid:02x} at offset {where + p}: {exc}")
                tokens.append({"token": "unknown", "id": tid, "offset": where + p, "data": b[p:].hex()})
                break
            if tok is not None:
                append(tok)
            p = p2
        rec.has_trailer = ctx.has_trailer
        if ctx.has_args:
            _annotate_args(ctx.args, name, _ILLUMOS if illumos else _OPENBSM)
    except Exception as exc:  # a decoder bug must cost one record, never the stream
        errors.append(f"internal decoder error at offset {where}: {exc!r}")
    return rec, end


def decode_record(data: bytes, offset: int = 0, *, whole: bool = True) -> BsmRecord:
    """Decode one record starting at data[offset].

    With ``whole`` (the default, e.g. one audit_remote payload) bytes left after the header's length
    are reported as an error; pass ``whole=False`` to decode one record out of a longer buffer.
    """
    try:
        data = bytes(data)
        if offset < 0 or offset >= len(data):
            return BsmRecord(offset=offset, length=0, raw=b"", errors=[f"no data at offset {offset}"])
        if data[offset] not in HEADER_IDS:
            raw = data[offset:]
            return BsmRecord(
                offset=offset,
                length=len(raw),
                raw=raw,
                errors=[f"no BSM header at offset {offset} (token id 0x{data[offset]:02x})"],
            )
        rec, end = _decode_at(data, offset, 0)
        if whole and end < len(data) and rec.length > 1:
            rec.errors.append(f"{len(data) - end} bytes after the record end at offset {end}")
        return rec
    except Exception as exc:  # pragma: no cover - last line of defence
        return BsmRecord(offset=offset, length=0, raw=b"", errors=[f"internal decoder error: {exc!r}"])


# ---------------------------------------------------------------- streams


_CANDIDATE = re.compile(rb"[\x14\x15\x74\x79\x11\x78]")


def _plausible_header(data: bytes, q: int) -> bool:
    try:
        _hid, reclen, version, *_rest, hsize = _decode_header(data, q)
    except Exception:
        return False
    return version in _VERSIONS and hsize <= reclen <= len(data) - q


def _file_token_at(data: bytes, q: int, base: int) -> BsmFileToken | None:
    """A standalone file token at data[q], or None if the bytes are not one."""
    tid = data[q]
    try:
        if tid == 0x11:
            sec, subsec, n = _FILE32.unpack_from(data, q + 1)
            name_at = q + 11
        else:
            sec, subsec, n = _FILE64.unpack_from(data, q + 1)
            name_at = q + 19
    except struct.error:
        return None
    end = name_at + n
    if end > len(data) or n == 0 or data[end - 1] != 0:
        return None
    name = data[name_at : end - 1].split(b"\0", 1)[0].decode("utf-8", "replace")
    # trail files start with a file token; guess the dialect from the following header, if any
    illumos = not (end < len(data) and data[end] in HEADER_IDS and end + 5 < len(data) and data[end + 5] in (10, 11))
    return BsmFileToken(
        offset=base + q, length=end - q, time_ns=_file_time_ns(sec, subsec, tid, illumos), name=name, token_id=tid
    )


def _resync(data: bytes, start: int) -> int:
    """Offset of the next plausible header or file token at or after start (len(data) if none)."""
    for m in _CANDIDATE.finditer(data, start):
        q = m.start()
        c = data[q]
        if c in HEADER_IDS:
            if _plausible_header(data, q):
                return q
        elif _file_token_at(data, q, 0) is not None:
            return q
    return len(data)


def _walk(data: bytes, base_offset: int, with_files: bool) -> Iterator[BsmRecord | BsmFileToken]:
    """The one stream loop behind iter_stream and iter_records (bytes or an mmap: both slice to bytes)."""
    if not isinstance(data, bytes | mmap.mmap):
        data = bytes(data)
    total = len(data)
    off = 0
    ctx = _Ctx(0, 0, 0)
    headers = HEADER_IDS
    while off < total:
        c = data[off]
        if c in headers:
            rec, nxt = _decode_at(data, off, base_offset, ctx)
            if nxt == off + 1:
                nxt = _resync(data, off + 1)
                rec.length = nxt - off
                rec.raw = data[off:nxt]
            yield rec
            off = nxt
            continue
        if c in FILE_IDS:
            ft = _file_token_at(data, off, base_offset)
            if ft is not None:
                if with_files:
                    yield ft
                off += ft.length
                continue
        nxt = _resync(data, off + 1)
        yield BsmRecord(
            offset=base_offset + off,
            length=nxt - off,
            raw=data[off:nxt],
            errors=[f"no BSM header at offset {base_offset + off} (byte 0x{c:02x}); skipped {nxt - off} bytes"],
        )
        off = nxt


def iter_stream(data: bytes, base_offset: int = 0) -> Iterator[BsmRecord | BsmFileToken]:
    """Records and standalone file tokens in order; garbage becomes an error record, then resync.

    ``base_offset`` is added to every reported offset (e.g. the file position of ``data``).
    """
    return _walk(data, base_offset, True)


def iter_records(data: bytes, base_offset: int = 0) -> Iterator[BsmRecord]:
    """Records only (standalone file tokens skipped), each with its offset; never raises."""
    return _walk(data, base_offset, False)  # type: ignore[return-value]
