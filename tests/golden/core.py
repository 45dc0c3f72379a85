"""The implementation that the golden files (test_goldens.py, scripts/gen_goldens.py) and the decoder
properties (test_decoder_properties.py) are checked through: nothing else in those files names one.

Issue 12 moves the per-record path into a Rust extension. To check it, give it these two functions with
the same signatures and output (see python_core.py) and change the import below: that line is the switch.
"""

from __future__ import annotations

from tests.golden.python_core import Schema, build_documents, decode_raw

__all__ = ["Schema", "build_documents", "decode_raw"]
