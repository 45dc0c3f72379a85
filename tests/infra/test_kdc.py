"""Proof that ``kdc`` is a real MIT realm: tickets are issued and GSS contexts are established with them."""

from __future__ import annotations

import os
import subprocess

import gssapi
import gssapi.raw
import pytest

from tests.infra.kdc import ILLUMOS_CLIENT, ILLUMOS_SERVICE, LINUX_SERVICE, TestKdc, linux_client_principal

pytestmark = pytest.mark.kdc

NULLADDR = gssapi.raw.AddressType.null


def _bindings(app_data: bytes) -> gssapi.raw.ChannelBindings:
    """illumos audit_remote's bindings (sink-and-gss.md B2/B3): NULLADDR on both sides, version bytes."""
    return gssapi.raw.ChannelBindings(
        initiator_address_type=NULLADDR, acceptor_address_type=NULLADDR, application_data=app_data
    )


def _handshake(ictx: gssapi.SecurityContext, actx: gssapi.SecurityContext) -> None:
    token = ictx.step()
    while not (ictx.complete and actx.complete):
        if token:
            token = actx.step(token)
        if token and not ictx.complete:
            token = ictx.step(token)
        elif not token:
            break


def test_environment_points_at_the_test_realm(kdc: TestKdc) -> None:
    assert kdc.realm_name == "AUDIT.TEST"
    assert os.environ["KRB5_CONFIG"] == str(kdc.krb5_conf)
    conf = kdc.krb5_conf.read_text()
    assert "default_realm = AUDIT.TEST" in conf
    assert "rdns = false" in conf and "dns_canonicalize_hostname = false" in conf
    rcache = os.environ["KRB5RCACHEDIR"]
    assert os.access(rcache, os.W_OK)


def test_client_ccache_holds_a_tgt(kdc: TestKdc) -> None:
    ccache = kdc.client_ccache(ILLUMOS_CLIENT)
    assert ccache.startswith("FILE:")
    out = subprocess.run(["klist", "-c", ccache], capture_output=True, text=True, env=os.environ, check=True).stdout
    assert "Default principal: host/client.example@AUDIT.TEST" in out
    assert "krbtgt/AUDIT.TEST@AUDIT.TEST" in out


def test_keytabs_are_readable_by_mit_tools(kdc: TestKdc) -> None:
    for principal in (ILLUMOS_SERVICE, LINUX_SERVICE, linux_client_principal()):
        keytab = kdc.keytab_for(principal)
        assert keytab.stat().st_mode & 0o777 == 0o400
        out = subprocess.run(["klist", "-k", str(keytab)], capture_output=True, text=True, check=True).stdout
        assert f"{principal}@AUDIT.TEST" in out
    assert kdc.service_keytab(ILLUMOS_SERVICE) == kdc.keytab_for(f"{ILLUMOS_SERVICE}@AUDIT.TEST")


def test_illumos_style_context_with_channel_bindings(kdc: TestKdc) -> None:
    """Initiator as illumos transport.c does it, acceptor from the service keytab, both in-process."""
    icreds = gssapi.Credentials(usage="initiate", store={"ccache": kdc.client_ccache(ILLUMOS_CLIENT)})
    acreds = gssapi.Credentials(usage="accept", store={"keytab": str(kdc.service_keytab(ILLUMOS_SERVICE))})
    flags = (
        gssapi.RequirementFlag.mutual_authentication
        | gssapi.RequirementFlag.replay_detection
        | gssapi.RequirementFlag.out_of_sequence_detection
        | gssapi.RequirementFlag.confidentiality
    )
    ictx = gssapi.SecurityContext(
        name=gssapi.Name("audit@localhost", gssapi.NameType.hostbased_service),
        creds=icreds,
        usage="initiate",
        mech=gssapi.MechType.kerberos,
        flags=flags,
        channel_bindings=_bindings(b"0101"),
    )
    actx = gssapi.SecurityContext(creds=acreds, usage="accept", channel_bindings=_bindings(b"0101"))
    _handshake(ictx, actx)
    assert ictx.complete and actx.complete
    assert str(actx.initiator_name) == "host/client.example@AUDIT.TEST"
    assert str(actx.target_name) == "audit/localhost@AUDIT.TEST"
    assert gssapi.RequirementFlag.channel_bound in actx.actual_flags

    record = (2).to_bytes(8, "big") + b"header,token,bytes"
    wrapped = gssapi.raw.wrap(ictx, record, confidential=True)
    assert wrapped.encrypted and record not in wrapped.message
    unwrapped = gssapi.raw.unwrap(actx, wrapped.message)
    assert unwrapped.message == record and unwrapped.encrypted
    mic = actx.get_signature(unwrapped.message)
    assert len(mic) == 28  # aes CFX MIC
    ictx.verify_signature(record, mic)
    with pytest.raises(gssapi.exceptions.BadMICError):
        ictx.verify_signature(record + b"x", mic)


def test_mismatched_channel_bindings_are_rejected(kdc: TestKdc) -> None:
    """Only a real mechanism enforces the bindings: "0102" against "0101" must fail."""
    icreds = gssapi.Credentials(usage="initiate", store={"ccache": kdc.client_ccache(ILLUMOS_CLIENT)})
    acreds = gssapi.Credentials(usage="accept", store={"keytab": str(kdc.service_keytab(ILLUMOS_SERVICE))})
    ictx = gssapi.SecurityContext(
        name=gssapi.Name("audit@localhost", gssapi.NameType.hostbased_service),
        creds=icreds,
        usage="initiate",
        mech=gssapi.MechType.kerberos,
        channel_bindings=_bindings(b"0102"),
    )
    actx = gssapi.SecurityContext(creds=acreds, usage="accept", channel_bindings=_bindings(b"0101"))
    token = ictx.step()
    with pytest.raises(gssapi.exceptions.BadChannelBindingsError):
        actx.step(token)
        _ = actx.complete  # python-gssapi may defer the error to the next attribute access


def test_linux_style_context_and_wrapped_reply(kdc: TestKdc) -> None:
    """audisp-remote's identity and target (linux.md §3.13): no bindings, replies wrapped."""
    principal = linux_client_principal()
    icreds = gssapi.Credentials(usage="initiate", store={"ccache": kdc.client_ccache(principal)})
    acreds = gssapi.Credentials(usage="accept", store={"keytab": str(kdc.service_keytab(LINUX_SERVICE))})
    ictx = gssapi.SecurityContext(
        name=gssapi.Name("auditd@localhost", gssapi.NameType.hostbased_service),
        creds=icreds,
        usage="initiate",
        mech=gssapi.MechType.kerberos,
    )
    actx = gssapi.SecurityContext(creds=acreds, usage="accept")
    _handshake(ictx, actx)
    assert str(actx.initiator_name) == f"{principal}@AUDIT.TEST"
    assert str(actx.target_name) == "auditd/localhost@AUDIT.TEST"
    reply = actx.wrap(b"\xfe\x00\x00\xff" + bytes(12), True)
    assert reply.encrypted
    assert ictx.unwrap(reply.message).message == b"\xfe\x00\x00\xff" + bytes(12)


def test_extra_principals_on_demand(kdc: TestKdc) -> None:
    ccache = kdc.client_ccache("host/another.example")
    creds = gssapi.Credentials(usage="initiate", store={"ccache": ccache})
    assert str(creds.name) == "host/another.example@AUDIT.TEST"
    assert kdc.client_ccache("host/another.example") == ccache  # cached, not re-kinit'ed
