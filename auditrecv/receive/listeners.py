"""The two listener policies: what the one server (:mod:`~auditrecv.receive.server`) needs to know
about illumos ``audit_remote`` and Linux ``audisp-remote``, and where their security contexts
come from (the Kerberos keytab, the illumos dummy mechanism)."""

from __future__ import annotations

import logging
import time

from auditrecv.config import AudispRemoteListener, AuditRemoteListener, Gss
from auditrecv.receive import dummy_mech
from auditrecv.receive.access import NetworkAllowlist
from auditrecv.receive.audisp_remote import (
    DEFAULT_MAX_TOKEN,
    AsciiSession,
    Krb5Session,
    ManagedSession,
    default_principals,
)
from auditrecv.receive.audit_remote import AuditRemoteConnection, AuditRemotePolicy, ContextFactory, MicContext
from auditrecv.receive.contract import PrincipalPolicy, ReceiveCore
from auditrecv.receive.gss import GssFailure, KerberosAcceptor, default_realm, null_address_bindings
from auditrecv.receive.server import ReceiveServer, start_listener
from auditrecv.spool.contract import ReceiverSpool
from auditrecv.spool.record import RecordKind

__all__ = [
    "AudispRemoteListenerPolicy",
    "AuditRemoteListenerPolicy",
    "node_name",
    "start_audisp_remote_server",
    "start_audit_remote_server",
]

ACCEPTOR_RETRY_SECONDS = 30.0


class AuditRemoteListenerPolicy:
    """illumos ``audit_remote``: BSM records after a GSS handshake (Kerberos, or the dummy
    mechanism for listed networks only), acked with MICs.

    A keytab that cannot be read does not stop the listener (the default configuration enables
    it, and dummy-mech or Linux-only sites may have no keytab): Kerberos clients are refused with
    the reason, and the keytab is tried again at most every 30 s, so deploying it later needs no
    restart.
    """

    protocol = "audit_remote"
    record_kind: RecordKind = "bsm"
    handshake = True
    acks = True

    def __init__(self, settings: AuditRemoteListener, keytab: str = "", acceptor: KerberosAcceptor | None = None):
        self.settings = settings
        self.keytab = keytab
        self.acceptor = acceptor
        self.acceptor_error = ""
        self._acceptor_retry_at = 0.0
        # The dummy mech authenticates nobody: only networks named for it may use it, never "any".
        self.dummy_peers = NetworkAllowlist(settings.dummy_mech_networks, empty_allows_all=False)
        self.principals = PrincipalPolicy(settings.allowed_principals or ["*"])
        self._log = logging.getLogger("auditrecv.receive.audit_remote")

    def load_acceptor(self, name: str = "audit_remote") -> KerberosAcceptor | None:
        """(Re)acquire acceptor credentials from the keytab; logs and returns None on failure."""
        self._acceptor_retry_at = time.monotonic() + ACCEPTOR_RETRY_SECONDS
        try:
            self.acceptor = KerberosAcceptor(self.keytab, self.settings.acceptor_principal)
        except GssFailure as exc:
            if str(exc) != self.acceptor_error:
                # No keytab configured is the embedded default, not a fault: say what to do, calmly.
                self._log.log(
                    logging.WARNING if not self.keytab else logging.ERROR,
                    "%s: Kerberos clients will be refused until a keytab with audit/<host>@REALM is readable%s: %s",
                    name,
                    "" if self.keytab else " (set [gss] keytab)",
                    exc,
                )
            self.acceptor_error = str(exc)
            return None
        if self.acceptor_error:
            self._log.warning("%s: Kerberos acceptor credentials are available now", name)
        self.acceptor_error = ""
        return self.acceptor

    def new_core(self, peer: str) -> ReceiveCore:
        return AuditRemoteConnection(self.policy_for(peer))

    def policy_for(self, peer: str) -> AuditRemotePolicy:
        s = self.settings
        if self.acceptor is None and time.monotonic() >= self._acceptor_retry_at:
            self.load_acceptor()
        kerberos: ContextFactory | str = "no Kerberos acceptor is configured"
        if self.acceptor is not None:
            acceptor = self.acceptor

            def kerberos(binding_data: bytes) -> MicContext:
                return acceptor.new_context(null_address_bindings(binding_data))

        dummy: ContextFactory | str
        if not s.allow_dummy_mech:
            dummy = "allow_dummy_mech is false"
        elif not self.dummy_peers.allows(peer):
            networks = ", ".join(str(n) for n in self.dummy_peers.networks)
            dummy = f"peer {peer} is not in dummy_mech_networks ({networks})"
        else:

            def dummy(_binding_data: bytes) -> MicContext:
                return dummy_mech.DummyAcceptorContext()

        return AuditRemotePolicy(
            contexts={"krb5": kerberos, "spnego": kerberos, "dummy": dummy},
            principals=self.principals,
            require_channel_bound=s.require_channel_bindings,
            max_handshake_token=s.max_handshake_token,
            max_record_token=s.max_record_token,
        )

    def sender_name(self, payload: bytes) -> str:
        return ""  # a BSM record does not name its host; the Kerberos principal does

    def started(self, name: str, port: int) -> None:
        s = self.settings
        self._log.info("%s: audit_remote (illumos) listener on %s:%d", name, s.host, port)
        if s.allow_dummy_mech:
            where = ", ".join(s.dummy_mech_networks) or "no network (dummy_mech_networks is empty)"
            self._log.warning(
                "%s: the illumos dummy GSS mechanism is ENABLED for %s: it provides no authentication and no "
                "encryption (anyone there can inject audit records); use it only for testing",
                name,
                where,
            )


def node_name(line: bytes) -> str:
    """The ``node=NAME`` prefix audisp-remote adds with ``name_format`` (empty without one)."""
    if not line.startswith(b"node="):
        return ""
    end = line.find(b" ")
    return line[5 : end if end > 0 else len(line)].decode("utf-8", "replace")


class AudispRemoteListenerPolicy:
    """Linux ``audisp-remote``: one audit line per frame (managed), per line (ascii), or per
    wrapped token after a Kerberos handshake (krb5)."""

    protocol = "audisp_remote"
    record_kind: RecordKind = "linux"

    def __init__(self, settings: AudispRemoteListener, gss: Gss) -> None:
        self.settings = settings
        self.handshake = settings.transport == "krb5"
        self.acks = settings.format != "ascii"
        self._log = logging.getLogger("auditrecv.receive.audisp_remote")
        self._kerberos: KerberosAcceptor | None = None
        self.principals = PrincipalPolicy(())
        if self.handshake:
            # Fails here (GssFailure) on a missing/unreadable keytab: a start-up error, not a
            # per-client one. Any principal in the keytab is served.
            self._kerberos = KerberosAcceptor(gss.keytab)
            default = default_principals(settings.krb5_service, default_realm())
            self.principals = PrincipalPolicy(settings.allowed_principals or default)

    def new_core(self, peer: str) -> ReceiveCore:
        s = self.settings
        if self._kerberos is not None:
            return Krb5Session(
                self._kerberos.new_context(),
                self.principals,
                service=s.krb5_service,
                max_payload=s.max_message_bytes,
                max_token=max(DEFAULT_MAX_TOKEN, s.max_message_bytes + 1024),
            )
        if s.format == "ascii":
            return AsciiSession(s.max_message_bytes)
        return ManagedSession(s.max_message_bytes)

    def sender_name(self, payload: bytes) -> str:
        return node_name(payload)

    def started(self, name: str, port: int) -> None:
        s = self.settings
        self._log.info(
            "%s: audisp-remote listener on %s:%d (transport %s, format %s)", name, s.host, port, s.transport, s.format
        )
        if self.handshake and not self.principals.patterns:
            self._log.error("%s: no default Kerberos realm and no allowed_principals: every client is refused", name)


async def start_audit_remote_server(
    settings: AuditRemoteListener,
    gss: Gss,
    spool: ReceiverSpool,
    *,
    name: str = "audit_remote",
    acceptor: KerberosAcceptor | None = None,
) -> ReceiveServer:
    """Acquire Kerberos acceptor credentials (or log why not), bind and listen."""
    policy = AuditRemoteListenerPolicy(settings, gss.keytab, acceptor)
    if acceptor is None:
        policy.load_acceptor(name)
    return await start_listener(policy, spool, name=name)


async def start_audisp_remote_server(
    settings: AudispRemoteListener, gss: Gss, spool: ReceiverSpool, *, name: str
) -> ReceiveServer:
    """Start one audisp-remote listener; ``await server.close()`` sends ENDING to every client."""
    return await start_listener(AudispRemoteListenerPolicy(settings, gss), spool, name=name)
