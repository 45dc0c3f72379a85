"""What receivers hand to the spool: raw input plus where it came from.

The spool stores input exactly as received so that everything after it (decoding, mapping,
enrichment, indexing) can be fixed and re-run without losing a record.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

RecordKind = Literal["bsm", "linux"]


@dataclass(frozen=True, slots=True)
class Source:
    """Who sent a record and how; part of the document identity and of the ECS host/observer fields."""

    transport: str  # "audit_remote", "audisp_remote", "import"
    peer: str = ""  # sender address ("192.0.2.7"), or the file name for imports
    peer_port: int = 0
    mech: str = ""  # "krb5", "dummy", "" (plain TCP / file)
    principal: str = ""  # authenticated GSS initiator name, if any
    authenticated: bool = False
    listener: str = ""  # config name of the listener that received it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Source:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    """One raw record: a BSM record (header to last token) or one Linux audit line (no newline)."""

    kind: RecordKind
    payload: bytes
    source: Source
    received_ns: int  # arrival time, Unix nanoseconds
