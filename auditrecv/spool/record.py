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


_FIELD = vars(SpoolRecord)  # the slots' member descriptors
_new_record = object.__new__
_set_kind, _set_payload, _set_source, _set_received_ns = (
    _FIELD[name].__set__ for name in ("kind", "payload", "source", "received_ns")
)


def spool_record(kind: RecordKind, payload: bytes, source: Source, received_ns: int) -> SpoolRecord:
    """``SpoolRecord(kind, payload, source, received_ns)``, equal in every way, in half the time (~0.25 us
    against ~0.5 us): the frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``,
    this sets the slots directly. For the receive path, which makes one per record."""
    record: SpoolRecord = _new_record(SpoolRecord)
    _set_kind(record, kind)
    _set_payload(record, payload)
    _set_source(record, source)
    _set_received_ns(record, received_ns)
    return record
