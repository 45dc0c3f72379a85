"""Outcomes recorded from the Python decoders before issue 12 deleted them, for inputs the tests make
deterministically (hand-built records, seeded damage, edge cases): the native core must still give, byte
for byte, what Python gave, or raise the same exception class.

One file per group in ``recorded/<name>.tsv``: ``<sha256 of the input, 16 hex>\\t<sha256 of the output
line(s), 16 hex, or "raises <ExceptionClass>">``. Digests keep thousands of cases small; a failure names
the input (hex) so it can be decoded by hand. The recordings were made with the Python decoders in the
commit that added this file; regenerate only for a deliberate change, as the goldens
(``AUDITRECV_REGEN_RECORDED=1``: rewritten from the native core), and say why in the commit.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path

RECORDED_DIR = Path(__file__).resolve().parent / "recorded"
REGENERATE = os.environ.get("AUDITRECV_REGEN_RECORDED") == "1"

Outcome = bytes | type[Exception]


def outcome_of(call: Callable[[], bytes]) -> Outcome:
    """The output of `call`, or the class of the exception it raised."""
    try:
        return call()
    except Exception as exc:
        return type(exc)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _outcome_digest(outcome: Outcome) -> str:
    return _digest(outcome) if isinstance(outcome, bytes) else f"raises {outcome.__name__}"


def load(name: str) -> dict[str, str]:
    lines = (RECORDED_DIR / f"{name}.tsv").read_text("ascii").splitlines()
    return dict(line.split("\t", 1) for line in lines)


def write(name: str, cases: Iterable[tuple[bytes, Outcome]]) -> int:
    """Record these (input, outcome) pairs as the expected outcomes of group `name`."""
    rows = {_digest(key): _outcome_digest(outcome) for key, outcome in cases}
    RECORDED_DIR.mkdir(exist_ok=True)
    (RECORDED_DIR / f"{name}.tsv").write_text("".join(f"{k}\t{v}\n" for k, v in rows.items()), "ascii")
    return len(rows)


def check(name: str, cases: Iterable[tuple[bytes, Outcome]], *, at_least: int = 1, new_ok: bool = False) -> None:
    """Every (input, outcome) pair made now against the recording of group `name`: each input must be
    recorded, with the same outcome. `at_least`: the group must not have shrunk below this many inputs.
    `new_ok`: inputs added since (no Python outcome exists for them) are not compared."""
    made = list(cases)
    if REGENERATE:
        write(name, made)
    recorded = load(name)
    assert len(made) >= at_least, f"{name}: only {len(made)} inputs made"
    missing = [key for key, _ in made if _digest(key) not in recorded]
    if new_ok:
        made = [(key, out) for key, out in made if _digest(key) in recorded]
    else:
        assert not missing, f"{name}: {len(missing)} inputs never recorded, first {missing[0][:300].hex()}"
    wrong = [(key, out) for key, out in made if recorded[_digest(key)] != _outcome_digest(out)]
    if wrong:
        key, out = wrong[0]
        shown = out[:600] if isinstance(out, bytes) else out
        raise AssertionError(
            f"{name}: {len(wrong)} of {len(made)} outcomes differ from the recorded (Python) ones; first: "
            f"input {key[:300].hex()}\nnow {shown!r}\nrecorded {recorded[_digest(key)]}"
        )


def joined(outcomes: Iterable[Outcome]) -> bytes:
    """Several outcomes as one (a group of inputs recorded under one key): outputs, exception classes by name."""
    return b"".join(o if isinstance(o, bytes) else f"raises {o.__name__}\n".encode() for o in outcomes)
