"""Sun BSM / OpenBSM audit record decoder (illumos version 2, OpenBSM versions 10/11).

Public API:

* `decode_record(data, offset=0, *, whole=True) -> BsmRecord`: one record (e.g. an audit_remote payload).
* `iter_records(data, base_offset=0) -> Iterator[BsmRecord]`: a stream of records, resynchronising
  after damage; standalone file tokens skipped.
* `iter_stream(...)`: the same, also yielding `BsmFileToken`s.
* `sniff_format(head) -> "bsm" | "linux" | None`, `iter_trail_file(path)` (records) and
  `iter_trail_file_items(path)` (records and file tokens): for ``auditrecv decode FILE...``.

Output shape: see `auditrecv.decode.bsm.model`. Nothing here raises on bad input.
"""

from .decoder import KNOWN_TOKEN_IDS, decode_record, iter_records, iter_stream
from .model import BsmFileToken, BsmRecord, Token
from .ports import decode_port_pair, major_minor
from .tables import load_tables
from .trail import (
    iter_trail,
    iter_trail_file,
    iter_trail_file_items,
    iter_trail_items,
    looks_like_bsm,
    sniff_format,
)

__all__ = [
    "KNOWN_TOKEN_IDS",
    "BsmFileToken",
    "BsmRecord",
    "Token",
    "decode_port_pair",
    "decode_record",
    "iter_records",
    "iter_stream",
    "iter_trail",
    "iter_trail_file",
    "iter_trail_file_items",
    "iter_trail_items",
    "load_tables",
    "looks_like_bsm",
    "major_minor",
    "sniff_format",
]
