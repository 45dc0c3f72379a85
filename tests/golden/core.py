"""The implementation that the golden files (test_goldens.py, scripts/gen_goldens.py) and the decoder
properties (test_decoder_properties.py) are checked through: nothing else in those files names one.

Issue 12 made the Rust extension (auditrecv._native) the one implementation of the per-record path:
native_core.py puts it behind this interface. Another implementation would provide the same two functions
(same signatures, same bytes out) and be imported here instead: this line is the switch.
"""

from __future__ import annotations

from tests.golden.native_core import Schema, build_documents, decode_raw

__all__ = ["Schema", "build_documents", "decode_raw"]
