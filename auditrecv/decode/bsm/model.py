"""Output types of the BSM decoder: what a decoded Sun BSM / OpenBSM record looks like.

One `BsmRecord` per record (header ... [trailer]). Header facts are attributes of the record; every
other token is one plain dict in `tokens`, **in stream order, repeats kept** (two paths, several texts,
before/after privilege sets, ...). The trailer is not a token: see `has_trailer`.

Every token dict has:

* ``"token"``: the praudit XML tag name (illumos ``cmd/praudit/toktable.c``), e.g. ``"subject"``,
  ``"process"``, ``"return"``, ``"argument"``, ``"attribute"``, ``"path"``, ``"path_attr"``,
  ``"text"``, ``"zone"``, ``"exec_args"``, ``"exec_env"``, ``"privilege"``, ``"use_of_privilege"``,
  ``"use_of_authorization"``, ``"fmri"``, ``"secflags"``, ``"user"``, ``"tid"``, ``"cmd"``, ``"exit"``,
  ``"ip_address"``, ``"ip"``, ``"ip_port"``, ``"old_socket"`` (0x2e), ``"socket"`` (0x7f),
  ``"socket_inet"``/``"socket_inet6"``/``"socket_unix"`` (OpenBSM 0x80-0x82), ``"IPC"``, ``"IPC_perm"``,
  ``"opaque"``, ``"arbitrary"``, ``"sequence"``, ``"group"``, ``"acl"`` (0x30 and 0x35, see ``kind``),
  ``"sensitivity_label"``, ``"liaison"``, ``"host"``, ``"X_*"``, ``"argument_uuid"``,
  ``"return_uuid"``, ``"file"``, ``"unknown"`` (undecodable rest, see below).
* ``"id"``: the token id byte (int), which tells widths apart (0x24 subject32, 0x75 subject64, ...).

Field names are praudit's attribute names (bsm.md section 9) with ``-`` replaced by ``_`` so they are
valid identifiers: ``audit_uid``, ``arg_num``, ``seq_num``, ``set_type``, ``ipc_type``, ``creator_uid``.
Numbers stay numbers (uids are unsigned 32-bit as written: 4294967295 / 4294967294 mean "no audit
user"); interpretations are added *beside* them, never instead of them.

Token shapes (only the non-obvious ones):

* subject / process: ``audit_uid uid gid ruid rgid pid sid`` plus ``tid`` = dict with ``port`` (raw
  integer as written), ``port_bits`` (32/64), ``major``/``minor`` (praudit's split), ``type`` (4/16),
  ``host`` (address text), and for illumos version-2 records ``rport``/``lport`` (probable TCP port
  pair, bsm.md section 6.1, ``None`` when the value cannot be one) with ``port_recipe``
  (``"32bit"``, ``"native64"``, ``"devexpl"``, ``None``) and ``host_uncertain`` (True when libbsm's
  x86 byte-reversal may apply: user-level, non-``_ex`` token; then ``host_reversed`` holds the other
  reading, e.g. ``"10.0.2.15"`` for a stored ``15.2.0.10``).
* return: ``errval`` (status byte), ``retval`` (signed), ``bits`` (32/64), ``success`` (bool),
  ``error`` (errno name such as ``"EACCES"``, an adt failure name such as ``"ADT_FAIL_VALUE_AUTH"``,
  ``"PAM_..."`` or ``None``).
* argument: ``arg_num``, ``value`` (unsigned), ``desc``, ``bits``; optional ``value_text`` (signal
  name for kill, comma-joined class names for audit masks with ``value_classes`` as a list, setppriv
  op name, octal for modes) and, for setaudit port args on illumos, ``rport lport port_recipe``.
* attribute: ``mode`` (int), ``mode_octal`` (str), ``uid gid fsid nodeid device``, ``nodeid_hex``,
  ``bits`` (25-byte old = 0, attr32 = 32, attr64 = 64).
* exec_args / exec_env / path_attr: ``args`` / ``env`` / ``xattr`` = list of str.
* privilege: ``set_type``, ``privs`` (str). use_of_privilege: ``result`` (bool), ``privs``.
* socket (0x7f): ``sock_domain sock_type lport laddr fport faddr`` (+ ``type`` 4/16).
  old_socket (0x2e): ``layout`` 9 -> ``family port addr``; 15 -> ``sock_type lport laddr fport faddr``.
* arbitrary: ``print`` (name), ``type`` (unit name), ``count``, ``values`` (list of int, or one str for
  the string print format), ``raw`` (hex).
* old_socket and socket_ex on illumos x86 are byte-order corrected (bsm.md 6.2/6.3); ``raw`` keeps
  the old_socket bytes.
* arbitrary: ``print`` (name), ``type`` (unit name), ``count``, ``values`` (list of int, or one str for
  the string print format), ``raw`` (hex).
* The rest, by token name -> keys: path ``path``; text ``text``; zone ``name``; fmri ``fmri``;
  use_of_authorization ``authorization``; secflags ``set_type flags``; user ``uid username``;
  cmd ``argv arge`` (lists); exit ``errval retval``; ip_address / host ``address`` (+ ``type``);
  ip ``version service_type len ip_id offset time_to_live protocol cksum src_addr dest_addr``
  (``ip_id`` because ``id`` is the token id); ip_port ``port port_swapped``; tid ``type`` ("ip")
  ``remote_port local_port ip_type host``; socket_inet/_inet6 ``family port addr``; socket_unix
  ``family path``; IPC ``ipc_type ipc_type_name ipc_id``; IPC_perm ``uid gid creator_uid creator_gid
  mode mode_octal seq key``; sequence ``seq_num``; group ``gid`` (list); acl ``kind`` "posix" ->
  ``type value mode mode_octal``, ``kind`` "ace" -> ``id_value access_mask flags type``;
  sensitivity_label ``label_id c_len classification compartments raw``; liaison ``value``;
  X_* ``xid xcreator_uid`` (X_property + ``name``; X_atom ``atom``; X_selection ``x_sel_text
  x_sel_type x_sel_data``; X_client ``client``); argument_uuid / return_uuid ``arg_num uuid desc``;
  file (0x11/0x78 inside a record) ``sec subsec time_ns name``; opaque ``size data`` (hex);
  unknown ``offset data`` (hex of the undecoded rest of the record).

Strings are cut at their first NUL and decoded as UTF-8 with ``errors="replace"``: invalid bytes become
U+FFFD (the exact bytes stay available in ``raw``).

Dialect caveats kept as data, not guessed away: OpenBSM ``arbitrary`` units are in the writer's host
order (decoded big-endian here; ``raw`` holds the bytes), the ``exit`` token's field order is
inconsistent between writers (field 1 = ``errval``, field 2 = ``retval``, as the readers do), and
``ip_port`` gives both byte orders (``port`` big-endian, ``port_swapped``).

Errors never raise: a record that could not be fully decoded has a non-empty ``errors`` list, keeps
every token decoded before the problem, and an ``"unknown"`` token with the remaining bytes in hex.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Token = dict[str, Any]


@dataclass(slots=True)
class BsmRecord:
    """One BSM record (or a framing failure at `offset`) with its tokens in order."""

    offset: int
    """Byte offset of the record in the input (file offset for trail files)."""
    length: int
    """Bytes consumed: the header's length when usable, else what was skipped."""
    raw: bytes
    """The record bytes (header to the end of its length)."""
    version: int | None = None
    """Header version: 2 = illumos/Solaris (ns), 10/11 = OpenBSM (ms)."""
    header_id: int | None = None
    """0x14 header32, 0x15 header32_ex, 0x74 header64, 0x79 header64_ex."""
    event_id: int | None = None
    event_name: str | None = None
    """e.g. ``AUE_EXECVE``; from the illumos table for version 2, OpenBSM's for 10/11."""
    event_description: str | None = None
    event_classes: list[str] = field(default_factory=list)
    modifier: int = 0
    modifier_names: list[str] = field(default_factory=list)
    """praudit's short names: rd wr sp fp na fe."""
    time_ns: int | None = None
    """Unix time in ns at full precision (OpenBSM's ms scaled by 10**6)."""
    host: str | None = None
    """Audited host address from header*_ex, else None."""
    dialect: str = "illumos"
    """``"illumos"`` (version 2 and unknown versions) or ``"openbsm"`` (10/11)."""
    has_trailer: bool = False
    tokens: list[Token] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every byte of the record was understood."""
        return not self.errors

    def find(self, name: str) -> list[Token]:
        """All tokens with that praudit name, in order."""
        return [t for t in self.tokens if t["token"] == name]

    def first(self, name: str) -> Token | None:
        """The first token with that praudit name, or None."""
        for t in self.tokens:
            if t["token"] == name:
                return t
        return None

    @property
    def subject(self) -> Token | None:
        """The first subject token: who did it."""
        return self.first("subject")

    @property
    def return_token(self) -> Token | None:
        """The (last) return token: the outcome."""
        found = None
        for t in self.tokens:
            if t["token"] == "return":
                found = t
        return found

    @property
    def success(self) -> bool | None:
        """Outcome from the return token; None when the record has no return token."""
        ret = self.return_token
        if ret is not None:
            return bool(ret["success"])
        return None

    @property
    def error(self) -> str | None:
        """Symbolic failure from the return token (errno name, ADT_FAIL_VALUE_*, PAM_*), else None."""
        ret = self.return_token
        return None if ret is None else ret["error"]

    @property
    def paths(self) -> list[str]:
        """Every path token's text, in order."""
        return [t["path"] for t in self.tokens if t["token"] == "path"]

    @property
    def texts(self) -> list[str]:
        return [t["text"] for t in self.tokens if t["token"] == "text"]

    @property
    def exec_args(self) -> list[str] | None:
        tok = self.first("exec_args")
        return None if tok is None else list(tok["args"])

    @property
    def zonename(self) -> str | None:
        tok = self.first("zone")
        return None if tok is None else str(tok["name"])

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable copy (bytes become hex strings)."""
        return {
            "offset": self.offset,
            "length": self.length,
            "raw": self.raw.hex(),
            "version": self.version,
            "header_id": self.header_id,
            "event_id": self.event_id,
            "event_name": self.event_name,
            "event_description": self.event_description,
            "event_classes": list(self.event_classes),
            "modifier": self.modifier,
            "modifier_names": list(self.modifier_names),
            "time_ns": self.time_ns,
            "host": self.host,
            "dialect": self.dialect,
            "has_trailer": self.has_trailer,
            "tokens": [_jsonable(t) for t in self.tokens],
            "errors": list(self.errors),
        }


def _jsonable(value: Any) -> Any:
    """Deep copy with bytes turned into hex, so json.dumps/orjson never fail."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return value


@dataclass(slots=True)
class BsmFileToken:
    """A standalone file token (0x11 / 0x78) between records in a trail file."""

    offset: int
    length: int
    time_ns: int | None
    name: str
    token_id: int
