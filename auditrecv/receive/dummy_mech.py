"""illumos ``mech_dummy`` (OID 1.3.6.1.4.1.42.2.26.1.2), spoken natively.

MIT krb5 cannot load illumos's dummy mechanism, yet test hosts configured with
``p_hosts=host:port:dummy`` speak it, so the receiver implements its token formats itself
(specs/bsm.md §12). It provides NO security: no authentication, no encryption, a constant "MIC".
The server therefore enables it only on request and only for listed networks.

Every token is an RFC 2743 generic token: ``60 <DER length> 06 0a <OID> 00 00 <body>``.
"""

from __future__ import annotations

from auditrecv.receive.contract import SecurityFailure

__all__ = [
    "COMPLETE_TOKEN",
    "CONTINUE_TOKEN",
    "DUMMY_OID",
    "MIC_TOKEN",
    "DummyAcceptorContext",
    "DummyInitiatorContext",
    "DummyTokenError",
    "get_mic",
    "make_token",
    "parse_token",
    "unwrap",
    "verify_mic",
    "wrap",
]

DUMMY_OID = bytes.fromhex("2b06010401 2a021a0102".replace(" ", ""))  # 1.3.6.1.4.1.42.2.26.1.2
_OID_TLV = b"\x06" + bytes([len(DUMMY_OID)]) + DUMMY_OID
_TOK_TYPE = b"\x00\x00"
_INNER_FIXED = len(_OID_TLV) + len(_TOK_TYPE)  # 14


class DummyTokenError(SecurityFailure, ValueError):
    """A token that the illumos dummy mech reader (``g_verify_token_header``) would reject."""

    def __str__(self) -> str:
        return f"dummy mech: {super().__str__()}"


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
    if len(octets) > 4:
        raise ValueError("token too long for a 4-octet DER length")
    return bytes([0x80 | len(octets)]) + octets


def make_token(body: bytes) -> bytes:
    """Wrap ``body`` in the generic token header with the dummy OID and tok_type 0."""
    return b"\x60" + _der_length(_INNER_FIXED + len(body)) + _OID_TLV + _TOK_TYPE + body


def parse_token(token: bytes) -> bytes:
    """The body of a dummy token; validates like the C reader: at most 4 length octets, the
    outer length equal to the remaining bytes, the OID, and tok_type 0."""
    if len(token) < 2 or token[0] != 0x60:
        raise DummyTokenError("not a generic GSS token (no 0x60 tag)")
    first = token[1]
    pos = 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if n == 0 or n > 4:
            raise DummyTokenError(f"bad DER length ({n} length octets)")
        if len(token) < pos + n:
            raise DummyTokenError("truncated DER length")
        length = int.from_bytes(token[pos : pos + n], "big")
        pos += n
    if length != len(token) - pos:
        raise DummyTokenError(f"DER length {length} but {len(token) - pos} bytes follow")
    if token[pos : pos + len(_OID_TLV)] != _OID_TLV:
        raise DummyTokenError("mechanism OID is not mech_dummy")
    pos += len(_OID_TLV)
    if token[pos : pos + 2] != _TOK_TYPE:
        raise DummyTokenError("tok_type is not 0")
    return bytes(token[pos + 2 :])


def is_dummy_token(token: bytes) -> bool:
    """True when a context token names the dummy OID (used for mechanism dispatch)."""
    try:
        parse_token(token)
    except DummyTokenError:
        return False
    return True


COMPLETE_TOKEN = make_token(b"0\x00")  # sprintf("%d", GSS_S_COMPLETE) plus its NUL
CONTINUE_TOKEN = make_token(b"1\x00")  # GSS_S_CONTINUE_NEEDED
MIC_TOKEN = make_token(b"dummy_gss_sign")  # the constant "signature"


def wrap(plaintext: bytes) -> bytes:
    """``dummy_gss_seal``: the plaintext behind a header; nothing is encrypted."""
    return make_token(plaintext)


def unwrap(token: bytes) -> bytes:
    return parse_token(token)


def get_mic(_data: bytes = b"") -> bytes:
    """``dummy_gss_sign``: the same 30 bytes whatever the data."""
    return MIC_TOKEN


def verify_mic(token: bytes) -> bool:
    """``dummy_gss_verify`` checks only the header (OID, tok_type); body and data are ignored."""
    return is_dummy_token(token)


def _context_status(token: bytes) -> int:
    body = parse_token(token)
    text = body.split(b"\x00", 1)[0]
    try:
        return int(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise DummyTokenError(f"context token body {body!r} is not a status number") from None


class DummyAcceptorContext:
    """The acceptor half, with the same surface as :class:`auditrecv.receive.gss.AcceptorContext`.

    Native rule (bsm.md §12.2): on ``"0\\0"`` the initiator is done, send nothing; on ``"1\\0"``
    reply ``"0\\0"`` once and be done (replying ``"1\\0"`` would make the client send again).
    """

    mech_name = "dummy"
    authenticated = False
    initiator = ""  # the C mech reports "dummy source"; it proves nothing, so report no principal
    target = ""
    mech = "1.3.6.1.4.1.42.2.26.1.2"
    expired = False

    def __init__(self) -> None:
        self.complete = False

    def step(self, token: bytes) -> bytes | None:
        status = _context_status(token)
        self.complete = True
        if status == 0:
            return None
        return COMPLETE_TOKEN

    def check(self, *, require_channel_bound: bool = False, require_confidentiality: bool = True) -> None:
        """Nothing to check: the dummy mech ignores channel bindings and only pretends to encrypt."""

    def unwrap(self, token: bytes, *, require_confidentiality: bool = True) -> bytes:
        return unwrap(token)

    def wrap(self, data: bytes, *, confidential: bool = True) -> bytes:
        return wrap(data)

    def get_mic(self, data: bytes) -> bytes:
        return MIC_TOKEN


class DummyInitiatorContext:
    """The initiator half, as illumos transport.c drives it (for the test client).

    ``token_nums`` mirrors ``/etc/dummy_mech_token.conf``: 1 (the default, no file) sends
    ``"0\\0"`` and completes at once; 2 or more sends ``"1\\0"`` and waits for one reply.
    """

    def __init__(self, token_nums: int = 1) -> None:
        self.token_nums = token_nums
        self.complete = False

    def step(self, token: bytes | None = None) -> bytes:
        if token is None:
            if self.token_nums <= 1:
                self.complete = True
                return COMPLETE_TOKEN
            return CONTINUE_TOKEN
        status = _context_status(token)
        if status != 0:
            raise DummyTokenError("acceptor asked for another round; this client stops at one")
        self.complete = True
        return b""

    def wrap(self, plaintext: bytes) -> bytes:
        return wrap(plaintext)

    def verify_mic(self, data: bytes, mic: bytes) -> bool:
        return verify_mic(mic)
