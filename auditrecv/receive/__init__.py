"""Receivers: sans-I/O protocol cores behind one asyncio server.

The contract every core speaks: ``contract`` (events, security contexts, the principal policy).
Cores: ``audit_remote`` (illumos, with ``dummy_mech``), ``audisp_remote`` (Linux managed, ascii,
krb5), both over ``framing``. The one server: ``server`` (allowlist, connection caps, timeouts,
the in-flight window, spool backpressure, statistics, shutdown), with ``access`` and ``flow``;
``listeners`` holds what differs per protocol. ``gss`` is the only module that touches the GSS
library. Nothing is imported here, so importing a core loads neither the server nor GSS.
"""
