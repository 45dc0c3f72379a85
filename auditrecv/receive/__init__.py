"""Receivers: sans-I/O protocol cores and thin asyncio servers.

Shared building blocks: ``framing`` (u32 BE length framing), ``gss`` (Kerberos acceptor over
python-gssapi), ``access`` (CIDR allowlists, connection caps per listener and per peer, log
throttling), ``flow`` (timeouts, the in-flight window, unread replies). illumos ``audit_remote``:
``audit_remote`` (core), ``dummy_mech`` (illumos mech_dummy), ``audit_remote_server`` (asyncio).
Linux ``audisp-remote``: ``audisp_remote`` and its server. Nothing is imported here so that
importing one receiver does not load the other (or the GSS library) needlessly.
"""
