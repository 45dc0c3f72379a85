"""Kerberos V5 sessions against the real MIT KDC (the shared ``kdc`` fixture, realm AUDIT.TEST)."""

from __future__ import annotations

import asyncio
import logging
import struct

import pytest

from auditrecv.config import AuditRemoteListener, Gss
from auditrecv.receive.audit_remote import AuditRemoteConnection
from auditrecv.receive.contract import Authenticated, ConnectionFailed
from auditrecv.receive.framing import FrameDecoder, encode_frame
from auditrecv.receive.gss import KerberosAcceptor, KerberosInitiator
from auditrecv.receive.listeners import AuditRemoteListenerPolicy
from auditrecv.testclient.illumos import IllumosClient, TransportReset
from tests.infra.kdc import ILLUMOS_CLIENT, ILLUMOS_SERVICE, TestKdc
from tests.receive_illumos.conftest import MemorySpool, ServerFactory
from tests.receive_illumos.test_server_dummy import records

pytestmark = pytest.mark.kdc

NS = 1_700_000_000_123_456_789  # the clock value every read arrives at


def kerberos_conn(acceptor: KerberosAcceptor, allowed_principals: list[str] | None = None) -> AuditRemoteConnection:
    """A core with the policy the listener gives a peer on 127.0.0.1."""
    listener = AuditRemoteListener(allowed_principals=allowed_principals or [])
    return AuditRemoteConnection(AuditRemoteListenerPolicy(listener, acceptor=acceptor).policy_for("127.0.0.1"))


def krb_client(kdc: TestKdc, port: int, principal: str = ILLUMOS_CLIENT, **kw: object) -> IllumosClient:
    return IllumosClient(
        "127.0.0.1",
        port,
        mech="kerberos_v5",
        service_host="localhost",
        ccache=kdc.client_ccache(principal),
        **kw,  # type: ignore[arg-type]
    )


def krb_gss(kdc: TestKdc) -> Gss:
    return Gss(keytab=str(kdc.service_keytab(ILLUMOS_SERVICE)))


async def test_kerberos_session_delivers_records_and_acks_verify(
    kdc: TestKdc, start_server: ServerFactory, memory_spool: MemorySpool
) -> None:
    server = await start_server(gss=krb_gss(kdc), allowed_principals=["host/*@AUDIT.TEST"])
    client = krb_client(kdc, server.port)
    sent = records(400)
    assert await client.send_records(sent, wait_when_full=True) == 400
    assert await client.wait_all_acked(10)
    await client.close()
    assert client.stats.acked == 400 and client.stats.resets == 0 and client.stats.unverifiable == 0
    assert set(client.stats.acks_per_connection[1].values()) == {1}
    assert memory_spool.payloads() == sent
    src = memory_spool.records[0].source
    assert (src.mech, src.principal, src.authenticated) == ("krb5", "host/client.example@AUDIT.TEST", True)


async def test_kerberos_ack_is_seq_plus_28_byte_mic(
    kdc: TestKdc, start_server: ServerFactory, memory_spool: MemorySpool
) -> None:
    """On the wire: frame length 36 = 8-byte seq + RFC 4121 MIC over (seq ‖ record)."""
    server = await start_server(gss=krb_gss(kdc))
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(encode_frame(b"01"))
    assert await reader.readexactly(6) == encode_frame(b"01")
    ictx = KerberosInitiator("localhost", b"0101", kdc.client_ccache(ILLUMOS_CLIENT), None)
    writer.write(encode_frame(ictx.step()))
    (n,) = struct.unpack(">I", await reader.readexactly(4))
    assert ictx.step(await reader.readexactly(n)) == b"" and ictx.complete  # AP-REP, then done
    plaintext = struct.pack(">Q", 77) + b"\x14record"
    writer.write(encode_frame(ictx.wrap(plaintext)))
    ack = await reader.readexactly(40)
    assert ack[:12] == b"\x00\x00\x00\x24" + struct.pack(">Q", 77)
    assert ictx.verify_mic(plaintext, ack[12:]) is True
    assert ictx.verify_mic(plaintext + b"x", ack[12:]) is False
    writer.close()


async def test_principal_not_in_allowlist_is_refused(
    kdc: TestKdc, start_server: ServerFactory, memory_spool: MemorySpool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "auditrecv.receive.audit_remote")
    kdc.add_principal("intruder/evil.example")
    server = await start_server(gss=krb_gss(kdc), allowed_principals=["host/*@AUDIT.TEST"])
    client = krb_client(kdc, server.port, principal="intruder/evil.example")
    with pytest.raises(TransportReset):
        await client.connect()  # waits for the AP-REP that never comes
    assert "'intruder/evil.example@AUDIT.TEST' is not in allowed_principals" in caplog.text
    # an allowed client still works on the same listener
    ok = krb_client(kdc, server.port)
    await ok.send_records(records(3), wait_when_full=True)
    assert await ok.wait_all_acked(5)
    await ok.close()
    assert [r.source.principal for r in memory_spool.records] == ["host/client.example@AUDIT.TEST"] * 3


async def test_missing_channel_bindings_refused_when_required(
    kdc: TestKdc, start_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "auditrecv.receive.audit_remote")
    server = await start_server(gss=krb_gss(kdc))
    client = krb_client(kdc, server.port, channel_bindings=False)
    with pytest.raises(TransportReset):
        await client.connect()
    assert "no (or unverifiable) channel bindings" in caplog.text

    lenient = await start_server(gss=krb_gss(kdc), require_channel_bindings=False)
    client = krb_client(kdc, lenient.port, channel_bindings=False)
    await client.send_records(records(2), wait_when_full=True)
    assert await client.wait_all_acked(5)
    await client.close()


async def test_wrong_binding_data_logs_gss_status_text(
    kdc: TestKdc, start_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "auditrecv.receive.audit_remote")
    server = await start_server(gss=krb_gss(kdc))
    client = krb_client(kdc, server.port, app_data=b"0102")
    with pytest.raises(TransportReset):
        await client.connect()
    assert "Incorrect channel bindings were supplied" in caplog.text
    stats = server.listener_stats()  # counted on the Failed event, before the close the client saw
    assert (stats.gss_failures, stats.connections_failed, stats.records_received) == (1, 1, 0)


async def test_kerberos_retransmission_after_connection_loss(
    kdc: TestKdc, start_server: ServerFactory, memory_spool: MemorySpool
) -> None:
    server = await start_server(gss=krb_gss(kdc))
    client = krb_client(kdc, server.port, qsize=500)
    memory_spool.full = True  # nothing gets acked on the first connection
    await client.send_records(records(200))
    while memory_spool.refused == 0:
        await asyncio.sleep(0.01)
    await client.abort_connection()
    memory_spool.make_room()
    assert await client.wait_all_acked(10)  # reconnects: new context, same seqs re-wrapped
    await client.close()
    assert client.stats.retransmitted == 200 and client.stats.acked == 200
    assert sorted(client.stats.acks_per_connection[2]) == list(range(1, 201))
    assert set(client.stats.acks_per_connection[2].values()) == {1}
    assert set(memory_spool.payloads()) == set(records(200))


async def test_configured_acceptor_principal(kdc: TestKdc, start_server: ServerFactory) -> None:
    server = await start_server(gss=krb_gss(kdc), acceptor_principal="audit/localhost@AUDIT.TEST")
    client = krb_client(kdc, server.port)
    await client.send_records(records(1), wait_when_full=True)
    assert await client.wait_all_acked(5)
    await client.close()


def test_sans_io_core_with_real_gss(kdc: TestKdc) -> None:
    """The core needs no sockets even for Kerberos: bytes in, bytes out."""
    acceptor = KerberosAcceptor(kdc.service_keytab(ILLUMOS_SERVICE))
    conn = kerberos_conn(acceptor, ["host/client.example@*"])
    assert conn.receive_data(encode_frame(b"01"), NS) == []
    assert conn.data_to_send() == encode_frame(b"01")
    ictx = KerberosInitiator("localhost", b"0101", kdc.client_ccache(ILLUMOS_CLIENT), None)
    events = conn.receive_data(encode_frame(ictx.step()), NS)
    assert isinstance(events[0], Authenticated)
    assert events[0].target == "audit/localhost@AUDIT.TEST"
    frames = FrameDecoder(1000)
    frames.feed(conn.data_to_send())
    ictx.step(frames.next_frame())
    assert ictx.complete
    plaintext = struct.pack(">Q", 9) + b"\x14abc"
    (rec,) = conn.receive_data(encode_frame(ictx.wrap(plaintext)), NS)
    conn.ack(rec.ack_token)  # type: ignore[union-attr]
    frames.feed(conn.data_to_send())
    ack = frames.next_frame()
    assert ack is not None and ack[:8] == struct.pack(">Q", 9) and len(ack) == 36
    assert ictx.verify_mic(plaintext, ack[8:]) is True


def _handshake(conn: AuditRemoteConnection, ictx: object) -> FrameDecoder:
    assert conn.receive_data(encode_frame(b"01"), NS) == []
    frames = FrameDecoder(100_000)
    frames.feed(conn.data_to_send())
    assert frames.next_frame() == b"01"
    events = conn.receive_data(encode_frame(ictx.step()), NS)  # type: ignore[attr-defined]
    assert isinstance(events[0], Authenticated), events
    frames.feed(conn.data_to_send())
    ictx.step(frames.next_frame())  # type: ignore[attr-defined]
    assert ictx.complete  # type: ignore[attr-defined]
    return frames


def test_spnego_wrapped_kerberos_is_accepted(kdc: TestKdc) -> None:
    import gssapi

    from auditrecv.receive.gss import null_address_bindings

    acceptor = KerberosAcceptor(kdc.service_keytab(ILLUMOS_SERVICE))
    conn = kerberos_conn(acceptor)
    ictx = gssapi.SecurityContext(
        name=gssapi.Name("audit@localhost", gssapi.NameType.hostbased_service),
        usage="initiate",
        mech=gssapi.OID.from_int_seq("1.3.6.1.5.5.2"),
        creds=gssapi.Credentials(usage="initiate", store={"ccache": kdc.client_ccache(ILLUMOS_CLIENT)}),
        flags=gssapi.RequirementFlag.mutual_authentication | gssapi.RequirementFlag.confidentiality,
        channel_bindings=null_address_bindings(b"0101"),
    )
    _handshake(conn, ictx)
    assert conn.handshake is not None
    assert (conn.handshake.mech, conn.handshake.principal) == ("krb5", "host/client.example@AUDIT.TEST")


def test_expired_context_closes_before_unwrapping(kdc: TestKdc) -> None:
    acceptor = KerberosAcceptor(kdc.service_keytab(ILLUMOS_SERVICE))
    conn = kerberos_conn(acceptor)
    ictx = KerberosInitiator("localhost", b"0101", kdc.client_ccache(ILLUMOS_CLIENT), None)
    _handshake(conn, ictx)
    assert conn.context is not None and not conn.context.expired
    conn.context._expires_at = 0.0  # type: ignore[union-attr]  # as if the ticket lifetime had passed
    events = conn.receive_data(encode_frame(ictx.wrap(struct.pack(">Q", 1) + b"\x14x")), NS)
    assert isinstance(events[0], ConnectionFailed) and "expired" in events[0].reason


def test_unencrypted_wrap_token_is_refused(kdc: TestKdc) -> None:
    import gssapi.raw as gssraw

    acceptor = KerberosAcceptor(kdc.service_keytab(ILLUMOS_SERVICE))
    conn = kerberos_conn(acceptor)
    ictx = KerberosInitiator("localhost", b"0101", kdc.client_ccache(ILLUMOS_CLIENT), None)
    _handshake(conn, ictx)
    token = gssraw.wrap(ictx._ctx, struct.pack(">Q", 1) + b"\x14x", False).message  # integrity only
    events = conn.receive_data(encode_frame(token), NS)
    assert isinstance(events[0], ConnectionFailed) and "not encrypted" in events[0].reason
