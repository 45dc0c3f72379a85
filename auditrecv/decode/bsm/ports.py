"""Terminal-ID port recipes for illumos records (bsm.md section 6.1).

illumos packs a TCP port pair into the subject's terminal port: X = (rport << 16 | lport) computed on
network-order ports, so on x86 each half is byte-swapped; a 64-bit dev_t then holds X as is
(sign-extended from a 64-bit caller) or DEVEXPL(X) (from a 32-bit caller). These helpers undo that and
say which recipe matched, so callers can keep the raw value beside the interpretation.
"""

from __future__ import annotations

RECIPE_32BIT = "32bit"
RECIPE_NATIVE64 = "native64"
RECIPE_DEVEXPL = "devexpl"


def port_to_x(port: int, bits: int) -> tuple[int | None, str | None]:
    """Recover the 32-bit packed value X from a 32- or 64-bit terminal port, with the recipe used."""
    if bits == 32:
        return port & 0xFFFFFFFF, RECIPE_32BIT
    high = port >> 32
    low = port & 0xFFFFFFFF
    if high == 0 or high == 0xFFFFFFFF:
        return low, RECIPE_NATIVE64
    if high <= 0x3FFF and low <= 0x3FFFF:
        return (high << 18) | low, RECIPE_DEVEXPL
    return None, None


def x_to_port_pair(x: int, *, x86: bool = True) -> tuple[int, int]:
    """(rport, lport) from X: little-endian halves for an x86 writer, big-endian for SPARC."""
    b0 = (x >> 24) & 0xFF
    b1 = (x >> 16) & 0xFF
    b2 = (x >> 8) & 0xFF
    b3 = x & 0xFF
    if x86:
        return b0 | (b1 << 8), b2 | (b3 << 8)
    return (b0 << 8) | b1, (b2 << 8) | b3


def decode_port_pair(port: int, bits: int, *, x86: bool = True) -> tuple[int | None, int | None, str | None]:
    """Probable (rport, lport, recipe) of an illumos terminal port; Nones when it cannot be a pair."""
    x, recipe = port_to_x(port, bits)
    if x is None:
        return None, None, None
    rport, lport = x_to_port_pair(x, x86=x86)
    return rport, lport, recipe


def major_minor(port: int, bits: int) -> tuple[int, int]:
    """praudit's split of a terminal port: 14/18 bits for 32-bit ports, 32/32 for 64-bit ports."""
    if bits == 32:
        return (port >> 18) & 0x3FFF, port & 0x3FFFF
    return (port >> 32) & 0xFFFFFFFF, port & 0xFFFFFFFF
