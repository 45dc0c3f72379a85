"""ECS ``observer.*``: this receiver, so a document says which auditrecv indexed it."""

from __future__ import annotations

import socket

from auditrecv import __version__
from auditrecv.config import Config


def observer_info(cfg: Config, *, hostname: str | None = None) -> dict[str, str]:
    """The observer fields every document carries. ``hostname`` (default: this machine's) lets
    reproducible output (the golden files) name a fixed one."""
    if hostname is None:
        hostname = socket.gethostname()
    return {
        "name": cfg.observer_name or hostname,
        "hostname": hostname,
        "type": "audit-receiver",
        "vendor": "auditrecv",
        "product": "auditrecv",
        "version": __version__,
    }
