"""What the hostile-client cases assume of fixes that were being written in parallel with this suite.

Everything such a case assumes lives here, so the lead can adapt the suite to what was merged by
editing this one file. A config key that does not exist (yet) makes the receiver refuse to start
with "unknown key", which the case reports as its failure.

| fix (issue 14)                                  | what the case assumes                                  |
|-------------------------------------------------|--------------------------------------------------------|
| per-connection window (client never reads acks) | built in, no key: the receiver stops reading a         |
|                                                 | connection whose acks pile up unread                   |
| per-peer connection caps                        | ``listeners.*.max_connections_per_peer``               |
| partial-frame timeout (slowloris)               | audit_remote: the existing ``handshake_timeout`` also  |
|                                                 | bounds a stalled frame; audisp_remote:                 |
|                                                 | ``listeners.audisp_remote.frame_timeout``              |
| document cap for huge records                   | built in, no key: a stored document is at most         |
|                                                 | :data:`DOCUMENT_CAP_BYTES` of JSON                     |
| health reporting                                | ``/health`` says ``status != "ok"`` while the engine   |
|                                                 | cannot be reached, and ``"ok"`` again once it is back  |
"""

from __future__ import annotations

from typing import Any

# -- per-peer connection caps (silent connections up to the limit) ----------------------------------------------

GLOBAL_CONNECTION_LIMIT = 32  # listeners.*.max_connections (an existing key)
PER_PEER_CONNECTION_CAP = 8  # assumed key listeners.*.max_connections_per_peer

SILENT_CONNECTIONS_CONFIG: dict[str, Any] = {
    "listeners": {
        name: {"max_connections": GLOBAL_CONNECTION_LIMIT, "max_connections_per_peer": PER_PEER_CONNECTION_CAP}
        for name in ("audit_remote", "audisp_remote")
    }
}

# -- partial-frame timeouts (slowloris) -------------------------------------------------------------------------

FRAME_TIMEOUT_SECONDS = 3.0

SLOWLORIS_CONFIG: dict[str, dict[str, Any]] = {
    # existing key: bounds the handshake and, in the record phase, a frame that stops half-way
    # stall_timeout bounds a frame from its first byte, so a client dribbling a byte at a time meets it
    "audit_remote": {"listeners": {"audit_remote": {"stall_timeout": FRAME_TIMEOUT_SECONDS}}},
    "audisp_remote": {"listeners": {"audisp_remote": {"stall_timeout": FRAME_TIMEOUT_SECONDS}}},
}

# -- per-connection window for a client that never reads its acks ----------------------------------------------

# Upper bound assumed for the built-in window, in records. The case pushes far more than this plus what
# the kernel's socket buffers can hold, so only a receiver without a window reads the whole push.
UNREAD_ACK_WINDOW_MAX_RECORDS = 20_000

# -- huge records --------------------------------------------------------------------------------------------

# The stored JSON of one document (or its dead letter) stays below this, however large the record was.
DOCUMENT_CAP_BYTES = 4 * 1024 * 1024  # limits.max_document_bytes, its default

# Peak RSS while one ~4 MiB record of one-byte tokens is decoded in Python (measured: ~430 MiB).
HUGE_RECORD_RSS_LIMIT_KIB = 640 * 1024

# -- health reporting -----------------------------------------------------------------------------------------


def health_reports_engine_down(status: int, body: dict[str, Any]) -> bool:
    """While the engine is stopped the receiver still receives (acks come from the spool), so the HTTP
    status may stay 200; the body must not claim everything is fine."""
    return body.get("status") != "ok"


def health_reports_ok(status: int, body: dict[str, Any]) -> bool:
    return status == 200 and body.get("status") == "ok"
