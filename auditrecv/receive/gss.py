"""A small Kerberos (GSS-API) acceptor over python-gssapi, shared by both receivers.

Why a wrapper: both the illumos ``audit_remote`` and the Linux ``audisp-remote`` krb5 receivers
need the same few things (credentials from a keytab, a context with optional channel bindings,
required flags after the handshake, wrap/unwrap/MIC) and the same error
discipline: every GSS failure becomes one :class:`GssFailure` whose message carries the GSS
major/minor status text, so a log line says *why* a host was refused.

Calls into the GSS library are short (tens of microseconds; python-gssapi releases the GIL), so
they run inline on the event loop. Nothing here does network I/O: an acceptor never talks to the
KDC.

See specs/sink-and-gss.md Part B for the verified recipe and its pitfalls (NULLADDR vs UNSPEC,
``channel_bound`` enforcement, deferred step errors, supplementary status on unwrap).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import gssapi
import gssapi.raw as gssraw
from gssapi.raw.misc import GSSError

from auditrecv.receive.contract import SecurityFailure

__all__ = [
    "AcceptorContext",
    "GssFailure",
    "KerberosAcceptor",
    "KerberosInitiator",
    "apply_process_environment",
    "default_realm",
    "gss_error_text",
    "null_address_bindings",
]


class GssFailure(SecurityFailure):
    """A GSS-API operation failed or a required property is missing; close the connection.

    ``str(exc)`` is one log-ready line including the GSS status text when there is one.
    """

    def __init__(self, operation: str, detail: str) -> None:
        super().__init__(f"{operation}: {detail}")
        self.operation = operation
        self.detail = detail


def gss_error_text(exc: BaseException) -> str:
    """The major and minor status text of a GSSError (``gen_message()``), else ``str(exc)``."""
    if isinstance(exc, GSSError):
        try:
            text = exc.gen_message()
        except Exception:  # display_status itself failed; fall back to the codes
            text = ""
        # gen_message() already reads "Major (n): text, Minor (m): text".
        return " ".join(text.split()) or f"{type(exc).__name__} (major {getattr(exc, 'maj_code', '?')})"
    return str(exc) or type(exc).__name__


def _fail(operation: str, exc: BaseException) -> GssFailure:
    return GssFailure(operation, gss_error_text(exc))


def null_address_bindings(application_data: bytes) -> gssraw.ChannelBindings:
    """Channel bindings as illumos transport.c builds them: NULLADDR on both sides (255, not the
    UNSPEC 0 that python-gssapi uses when address types are omitted) plus application data."""
    return gssraw.ChannelBindings(
        initiator_address_type=gssraw.AddressType.null,
        acceptor_address_type=gssraw.AddressType.null,
        application_data=application_data,
    )


def apply_process_environment(krb5_config: str = "", rcache_dir: str | os.PathLike[str] = "") -> None:
    """Point the Kerberos library at a config file and a writable replay-cache directory.

    Both are process-wide environment variables read by MIT krb5, so call this once at start-up
    before the first GSS call. Empty values leave the environment alone.
    """
    if krb5_config:
        os.environ["KRB5_CONFIG"] = str(krb5_config)
    if rcache_dir:
        Path(rcache_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
        os.environ["KRB5RCACHEDIR"] = str(rcache_dir)


class AcceptorContext:
    """One accepting security context (one connection).

    Drive it with :meth:`step` until :attr:`complete`; then :meth:`check` the properties you
    require, read :attr:`initiator` / :attr:`target`, and use :meth:`unwrap`, :meth:`wrap` and
    :meth:`get_mic` for the data phase. Every method raises :class:`GssFailure`, nothing else.
    """

    mech_name = "krb5"
    authenticated = True

    def __init__(self, creds: gssapi.Credentials, channel_bindings: gssraw.ChannelBindings | None) -> None:
        self._ctx = gssapi.SecurityContext(creds=creds, usage="accept", channel_bindings=channel_bindings)
        self._expires_at: float | None = None

    def step(self, token: bytes) -> bytes | None:
        """Feed one initiator token; returns the reply token, or None when there is none to send
        (never an empty token: illumos would read it as an ack and reset)."""
        try:
            out = self._ctx.step(token)
            complete = self._ctx.complete  # surfaces errors deferred by step()
        except GSSError as exc:
            raise _fail("accept_sec_context", exc) from None
        if complete and self._expires_at is None:
            try:
                lifetime = self._ctx.lifetime
            except GSSError:
                lifetime = None
            if lifetime is not None:
                self._expires_at = time.monotonic() + lifetime
        return out or None

    @property
    def complete(self) -> bool:
        try:
            return bool(self._ctx.complete)
        except GSSError as exc:
            raise _fail("accept_sec_context", exc) from None

    def check(self, *, require_channel_bound: bool = False, require_confidentiality: bool = True) -> None:
        """After the handshake: enforce flags MIT does not enforce itself (a client that sent no
        channel bindings is accepted without ``channel_bound``)."""
        flags = self._ctx.actual_flags
        if require_channel_bound and gssapi.RequirementFlag.channel_bound not in flags:
            raise GssFailure(
                "accept_sec_context",
                "the client sent no (or unverifiable) channel bindings and they are required",
            )
        if require_confidentiality and gssapi.RequirementFlag.confidentiality not in flags:
            raise GssFailure("accept_sec_context", "the context offers no confidentiality")

    @property
    def initiator(self) -> str:
        """The authenticated client principal, e.g. ``host/cn42.example.com@EXAMPLE.COM``."""
        try:
            return str(self._ctx.initiator_name)
        except GSSError as exc:
            raise _fail("inquire_context", exc) from None

    @property
    def target(self) -> str:
        """The service principal the client asked for (which keytab entry served it)."""
        try:
            return str(self._ctx.target_name)
        except GSSError as exc:
            raise _fail("inquire_context", exc) from None

    @property
    def mech(self) -> str:
        try:
            return str(self._ctx.mech.dotted_form)
        except GSSError as exc:
            raise _fail("inquire_context", exc) from None

    @property
    def flags(self) -> set[str]:
        return {f.name for f in self._ctx.actual_flags if f.name is not None}

    @property
    def expired(self) -> bool:
        """True once the context lifetime (the ticket lifetime) has passed."""
        return self._expires_at is not None and time.monotonic() >= self._expires_at

    def unwrap(self, token: bytes, *, require_confidentiality: bool = True) -> bytes:
        """The plaintext of a wrap token; any non-COMPLETE status (including supplementary
        replay/sequence bits) is a failure: on one TCP stream they indicate tampering."""
        try:
            res = gssraw.unwrap(self._ctx, token)
        except GSSError as exc:
            raise _fail("unwrap", exc) from None
        if require_confidentiality and not res.encrypted:
            raise GssFailure("unwrap", "message was not encrypted (confidentiality required)")
        return bytes(res.message)

    def wrap(self, data: bytes, *, confidential: bool = True) -> bytes:
        try:
            return bytes(gssraw.wrap(self._ctx, data, confidential).message)
        except GSSError as exc:
            raise _fail("wrap", exc) from None

    def get_mic(self, data: bytes) -> bytes:
        try:
            return bytes(gssraw.get_mic(self._ctx, data))
        except GSSError as exc:
            raise _fail("get_mic", exc) from None


class KerberosAcceptor:
    """Acceptor credentials, acquired once from a keytab; makes one context per connection.

    ``keytab`` empty means the Kerberos default (``KRB5_KTNAME``); ``principal`` empty means any
    principal in the keytab, so one keytab can serve every name clients canonicalize to.
    Construction fails with :class:`GssFailure` (keytab missing, principal absent), so a
    misconfiguration shows at start-up, not at the first connection.
    """

    def __init__(self, keytab: str | os.PathLike[str] = "", principal: str = "") -> None:
        self.keytab = str(keytab)
        self.principal = principal
        store: dict[bytes | str, bytes | str] | None = {"keytab": self.keytab} if self.keytab else None
        try:
            name = gssapi.Name(principal, gssapi.NameType.kerberos_principal) if principal else None
            # No mechs= restriction: the default set includes SPNEGO, which needs its own
            # credential element to accept SPNEGO-wrapped Kerberos (verified with MIT 1.20).
            self.creds = gssapi.Credentials(name=name, usage="accept", store=store)
            # Force the keytab to be read now rather than on the first client.
            self.creds.inquire(name=False, lifetime=False, usage=False, mechs=True)
        except GSSError as exc:
            where = f"keytab {self.keytab or os.environ.get('KRB5_KTNAME', '(default)')}"
            who = f" for {principal}" if principal else ""
            raise GssFailure(f"acquire acceptor credentials{who} from {where}", gss_error_text(exc)) from None

    def new_context(self, channel_bindings: gssraw.ChannelBindings | None = None) -> AcceptorContext:
        """A fresh accepting context; pass :func:`null_address_bindings` for audit_remote."""
        try:
            return AcceptorContext(self.creds, channel_bindings)
        except GSSError as exc:
            raise _fail("create acceptor context", exc) from None


def default_realm() -> str | None:
    """The default realm of the Kerberos configuration in effect, or None if unavailable."""
    try:
        name = gssapi.Name("x", gssapi.NameType.kerberos_principal).canonicalize(gssapi.MechType.kerberos)
        text = str(name)
    except Exception:
        return None
    return text.split("@", 1)[1] if "@" in text else None


class KerberosInitiator:
    """The illumos side (for the emulator in auditrecv.testclient and the tests): an initiator
    configured exactly as transport.c ``establish_context``."""

    def __init__(
        self,
        service_host: str,
        app_data: bytes | None,
        ccache: str | None,
        principal: str | None,
    ) -> None:
        name = gssapi.Name(f"audit@{service_host}", gssapi.NameType.hostbased_service)
        creds = None
        if ccache or principal:
            store: dict[bytes | str, bytes | str] | None = {"ccache": ccache} if ccache else None
            cname = gssapi.Name(principal, gssapi.NameType.kerberos_principal) if principal else None
            creds = gssapi.Credentials(name=cname, usage="initiate", store=store)
        flags = (
            gssapi.RequirementFlag.mutual_authentication
            | gssapi.RequirementFlag.replay_detection
            | gssapi.RequirementFlag.out_of_sequence_detection
            | gssapi.RequirementFlag.confidentiality
        )
        self._ctx = gssapi.SecurityContext(
            name=name,
            creds=creds,
            usage="initiate",
            mech=gssapi.MechType.kerberos,
            flags=flags,
            channel_bindings=null_address_bindings(app_data) if app_data is not None else None,
        )

    @property
    def complete(self) -> bool:
        return bool(self._ctx.complete)

    def step(self, token: bytes | None = None) -> bytes:
        return self._ctx.step(token) or b""

    def wrap(self, plaintext: bytes) -> bytes:
        return bytes(gssraw.wrap(self._ctx, plaintext, True).message)

    def verify_mic(self, data: bytes, mic: bytes) -> bool | None:
        """True verified, False bad signature (try the next node), None: not verifiable at all."""
        try:
            gssraw.verify_mic(self._ctx, data, mic)
        except (gssraw.ExpiredTokenError, gssraw.TokenTooLateError, gssraw.TokenTooEarlyError):
            return True  # OLD/UNSEQ/GAP: transport.c accepts these as verified
        except gssraw.BadMICError:
            return False
        except GSSError:
            return None
        return True
