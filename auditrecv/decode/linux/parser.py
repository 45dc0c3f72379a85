"""Line parser: one audit record line -> :class:`LinuxRecord`. Pure, no I/O, never raises.

Format (linux.md §6): ``[node=NAME ]type=TYPE msg=audit(SEC.MSEC:SERIAL): k=v ...[\\x1dK=V ...]``.
Values stay raw (quotes kept) so interpretation can tell quoted text from hex; the work per line is a
couple of C-level regex calls, because this runs for every record received.
"""

from __future__ import annotations

import re

from .model import LinuxRecord
from .tables import MSG_TYPE_NAMES, MSG_TYPE_NUMBERS

ENRICHED_SEPARATOR = "\x1d"

# possessive quantifiers: the adjacent classes do not overlap, so giving up backtracking changes no match
_HEADER = re.compile(
    r"(?:node=(?P<node>\S*+)\s++)?type=(?P<type>\S++)\s++msg=audit\((?P<sec>\d++)\.(?P<frac>\d++):(?P<serial>\d++)\):?+\s*+",
)
# key=value with a double-quoted, single-quoted (nested user msg), braced (ENRICHED SADDR) or bare value.
# Bare values are tried first (most common); possessive quantifiers avoid backtracking. An unterminated
# quote falls through to the last alternative and is kept as written.
_KV = re.compile(r"""([^\s=]++)=([^"'{\s]\S*+|"[^"]*+"|'[^']*+'|\{[^}]*+\}|\S*+)""")
_AVC = re.compile(r"avc:\s+(\w+)\s+\{\s*([^}]*?)\s*\}")
_UNKNOWN_TYPE = re.compile(r"UNKNOWN\[(\d+)\]")


def _decode(line: str | bytes) -> str:
    """Text of a line; invalid UTF-8 becomes backslash escapes (readable, JSON-safe, never raises).

    A str holding lone surrogates (text decoded with ``surrogateescape``) is mapped the same way, since
    strict JSON encoders (orjson) refuse surrogates.
    """
    if isinstance(line, str):
        if line.isascii():
            return line
        try:
            line.encode("utf-8")
            return line
        except UnicodeEncodeError:
            line = line.encode("utf-8", "surrogateescape")
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line.decode("utf-8", "backslashreplace")


def _kv_pairs(text: str) -> list[tuple[str, str]]:
    """key=value pairs of a body; tokens without '=' (prose of old formats) are skipped, like auparse."""
    pairs: list[tuple[str, str]] = _KV.findall(text)
    if " (" not in text and text[:1] != "(":  # the old prose forms always open a parenthesis
        return pairs
    for i, (key, value) in enumerate(pairs):
        # Old user-space prose: "(hostname=?, addr=?, terminal=cron res=success)" (auparse test.log).
        if key[0] == "(" or (value and value[-1] in ",)" and value[0] not in "\"'(" and "(" not in value):
            pairs[i] = (key.lstrip("("), value.rstrip(",)") if value[:1] not in "\"'" else value)
    return pairs


def _fill(record: LinuxRecord, pairs: list[tuple[str, str]]) -> None:
    """Store pairs in record.fields; a repeated key keeps its first value, later ones go to duplicates."""
    fields = dict(pairs)
    if len(fields) == len(pairs):  # the common case: no repeated key
        record._fields = fields
        return
    fields = record._fields
    for key, value in pairs:
        if key in fields:
            if record._duplicates is None:
                record._duplicates = []
            record._duplicates.append((key, value))
        else:
            fields[key] = value


def _parse_enriched(text: str) -> dict[str, str]:
    """ENRICHED section: UPPER-CASE keys with values already interpreted by the sender; quotes removed."""
    enriched: dict[str, str] = {}
    for key, value in _KV.findall(text):
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        enriched.setdefault(key, value)
    return enriched


def parse_line(line: str | bytes, lazy: bool = True) -> LinuxRecord:
    """Parse one record line. Unparseable input gives a record with ``error`` set and ``raw`` kept whole.

    With ``lazy`` (the default) only the header is parsed now; the key=value body is parsed on first
    access of the record's ``fields`` (see LinuxRecord). ``lazy=False`` parses everything at once.
    """
    global _last_stamp
    raw = line if type(line) is str and line.isascii() else _decode(line)
    if raw[-1:] == "\n":
        raw = raw[:-2] if raw[-2:] == "\r\n" else raw[:-1]
    end = raw.find(ENRICHED_SEPARATOR)
    if end < 0:
        end = len(raw)
    # the header regex only matches lines starting with type=/node=: the checks of why a line does not
    # parse are left to the (rare) failure path
    match = _HEADER.match(raw, 0, end)
    if match is None:
        return _unparsed(raw)
    node, type_name, sec, frac, serial = match.groups()
    type_num = MSG_TYPE_NUMBERS.get(type_name)
    if type_num is None:
        unknown = _UNKNOWN_TYPE.fullmatch(type_name)
        if unknown is not None:
            type_num = int(unknown.group(1))
            type_name = MSG_TYPE_NAMES.get(type_num, type_name)
    # the records of one event arrive together and share their stamp: convert it once (one read of the
    # cached pair keeps it consistent across threads)
    cached_sec, cached_frac, time_ns = _last_stamp
    if frac != cached_frac or sec != cached_sec:
        # the fraction is milliseconds in practice (3 digits); anything else is scaled to nanoseconds
        time_ns = int(sec + frac) * 1_000_000 if len(frac) == 3 else int(sec + (frac + "000000000")[:9])
        _last_stamp = (sec, frac, time_ns)
    record = LinuxRecord(type_name, type_num, node, time_ns, int(serial), {}, {}, raw)
    start = match.end()
    if start < len(raw):
        record._body = (start, end)
        if not lazy:
            parse_body(record)
    return record


_last_stamp: tuple[str, str, int] = ("", "", 0)  # (sec, frac, time_ns) of the previous line


def _unparsed(raw: str) -> LinuxRecord:
    """The error record of a line the header regex did not match."""
    if not raw.startswith(("type=", "node=")):
        if not raw.strip():
            return LinuxRecord("", None, None, None, None, {}, {}, raw, error="empty line")
        return LinuxRecord(
            "",
            None,
            None,
            None,
            None,
            {},
            {},
            raw,
            error="fragment: line does not start with type= or node= (oversize-line continuation?)",
            fragment=True,
        )
    return LinuxRecord("", None, None, None, None, {}, {}, raw, error="no type=... msg=audit(sec.ms:serial)")


def parse_body(record: LinuxRecord) -> None:
    """Fill fields/enriched/duplicates/text of a record whose body was left for later by parse_line.

    This module writes the record's private slots (``_fields``...) directly: the public names are
    properties, a Python-level call each, and ``_body`` is already cleared when they are written.
    """
    body = record._body
    if body is None:
        return
    record._body = None
    start, end = body
    raw = record.raw
    type_num = record.type_num
    if start < end:
        if type_num is None or 1100 <= type_num <= 1299 or 2100 <= type_num <= 2999:
            _parse_user_space(record, raw[start:end])
        else:
            pairs: list[tuple[str, str]] = _KV.findall(raw, start, end)
            if record.type_name == "AVC":
                avc = _AVC.search(raw, start, end)
                if avc is not None:
                    pairs[:0] = [("seresult", avc.group(1)), ("seperms", ",".join(avc.group(2).split()))]
            _fill(record, pairs)
    if end < len(raw):
        record._enriched = _parse_enriched(raw[end + 1 :])


def _parse_user_space(record: LinuxRecord, rest: str) -> None:
    """User-space (and unknown) records: old prose forms and the nested ``msg='...'`` key=values."""
    pairs = _kv_pairs(rest)
    for i, (key, value) in enumerate(pairs if "msg='" in rest else ()):
        if key == "msg" and value[:1] == "'":
            # flatten the inner key=values, as libauparse and go-libaudit do
            inner = value[1:-1] if len(value) > 1 and value[-1] == "'" else value[1:]
            record._text = inner
            inner_pairs = _kv_pairs(inner)
            if record.type_name == "USER_AVC":
                avc = _AVC.search(inner)
                if avc is not None:
                    inner_pairs[:0] = [("seresult", avc.group(1)), ("seperms", ",".join(avc.group(2).split()))]
            pairs[i : i + 1] = inner_pairs
            break
    _fill(record, pairs)
