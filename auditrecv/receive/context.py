"""The accepted-context interface shared by both protocol cores, free of any GSS library import so
the sans-I/O cores stay importable and testable with bytes alone."""

from __future__ import annotations

from typing import Protocol


class SecurityContext(Protocol):
    """What both protocol cores need from an accepted context, whatever the mechanism
    (:class:`AcceptorContext` for Kerberos, ``dummy_mech.DummyAcceptorContext``). Every method
    raises on failure, and any exception closes the connection."""

    @property
    def complete(self) -> bool: ...
    @property
    def initiator(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def expired(self) -> bool: ...
    def step(self, token: bytes) -> bytes | None: ...
    def check(self, *, require_channel_bound: bool = ..., require_confidentiality: bool = ...) -> None: ...
    def unwrap(self, token: bytes, *, require_confidentiality: bool = ...) -> bytes: ...
