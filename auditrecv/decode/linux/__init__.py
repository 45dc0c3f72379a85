"""Linux audit (auditd / audisp-remote) decoder: line parser, event assembler, interpretation.

See ``model.py`` for the interface contract.
"""

from .assembler import EventAssembler
from .interpret import interpret
from .model import LinuxEvent, LinuxRecord
from .parser import parse_line
from .stream import decode_events, decode_lines

__all__ = [
    "EventAssembler",
    "LinuxEvent",
    "LinuxRecord",
    "decode_events",
    "decode_lines",
    "interpret",
    "parse_line",
]
