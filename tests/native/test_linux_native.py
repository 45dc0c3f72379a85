"""The native Linux decoder (auditrecv._native, Rust): the outcomes the Python decoder had before it was
deleted (issue 12).

For every Linux fixture log the native ``decode --raw`` output must equal the golden raw file (keys sorted
as the goldens are) and, byte for byte (keys in their own order), what ``auditrecv decode --raw`` wrote with
the Python decoder, recorded in tests/native/recorded/ (see recorded.py). So must hand-picked edge cases
(invalid UTF-8, hex-encoded values, unterminated and interleaved events, EOE, fragments of long lines,
lines without a stamp, node= prefixes, the assembler's caps, numbers Python refused: the same exception
class). Generated and mutated lines, which no recording holds, keep the decoder's invariants.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditrecv import _native
from tests.golden.goldens import discover_fixtures, golden_path, read_records
from tests.golden.test_decoder_properties import fixture_records, generated_linux, mutated
from tests.native import recorded
from tests.native.recorded import Outcome, outcome_of

LINUX_FIXTURES = [f for f in discover_fixtures() if f.kind == "linux"]

# `decode --raw` of lines: (lines, source, grace_seconds, max_age_seconds, max_records, max_in_flight) -> outcome
LinuxDecoder = Callable[[Sequence[bytes], str, float, float, int, int], Outcome]
DEFAULTS = (2.0, 30.0, 4096, 10000)  # `auditrecv decode`'s assembler settings


def native_decoder(lines: Sequence[bytes], source: str, grace: float, age: float, records: int, flight: int) -> Outcome:
    caps = {"grace_seconds": grace, "max_age_seconds": age, "max_records": records, "max_in_flight": flight}
    return outcome_of(lambda: _native.linux_decode_raw(list(lines), source, **caps))


def native_raw(data: bytes | list[bytes], source: str = "t") -> Outcome:
    return outcome_of(lambda: _native.linux_decode_raw(data, source))


def log_lines(data: bytes) -> list[bytes]:
    """A log split as ``auditrecv.tools.read_input`` splits a file (blank lines dropped)."""
    return [line.rstrip(b"\r\n") for line in io.BytesIO(data) if line.rstrip(b"\r\n").strip()]


def case_key(*parts: object) -> bytes:
    """One recorded input: its lines and settings."""
    return repr(parts).encode("utf-8", "surrogatepass")


# ---------------------------------------------------------------- fixtures and goldens


def test_fixture_set_is_there() -> None:
    assert len(LINUX_FIXTURES) >= 17


@pytest.mark.parametrize("fixture", LINUX_FIXTURES, ids=[f.relpath for f in LINUX_FIXTURES])
def test_fixture_equals_golden(fixture) -> None:  # type: ignore[no-untyped-def]
    lines = [line for _, line in read_records(fixture)]
    got = native_raw(lines, fixture.relpath)
    assert isinstance(got, bytes), got
    golden = golden_path(fixture.relpath, "raw").read_bytes()
    resorted = b"".join(
        orjson.dumps(orjson.loads(line), option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE)
        for line in got.splitlines()
    )
    assert resorted == golden
    # the whole file read by the native side splits into the same lines
    assert native_raw(fixture.path.read_bytes(), fixture.relpath) == got


# ---------------------------------------------------------------- edge cases

H = "type=SYSCALL msg=audit(1700000000.123:{serial}): "
SYSCALL = H + (
    "arch=c000003e syscall=59 success=yes exit=0 a0=55 a1=0 items=2 ppid=1 pid=42 auid=1000 uid=0 gid=0 "
    'euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=3 comm="ls" exe="/usr/bin/ls" key="k1"'
)


def lines_of(*lines: str | bytes) -> list[bytes]:
    return [line.encode("utf-8", "surrogatepass") if isinstance(line, str) else line for line in lines]


EDGE_CASES: dict[str, list[bytes]] = {
    "execve argc bomb": lines_of(
        b'type=EXECVE msg=audit(1.000:7): argc=999999999999 a200000="x"',
        b'type=EXECVE msg=audit(1.000:8): argc=4 a0="a" a1="b" a3="d"',
        b"type=EOE msg=audit(1.000:8): ",
    ),
    "invalid utf-8": lines_of(
        b'type=SYSCALL msg=audit(1.000:1): comm=\xff\xfe exe="/bin/\xc3" key=\xed\xa0\x80',
        b"type=PATH msg=audit(1.000:1): name=\xe2\x82 item=0",
        b"\xff\xfe continues the PATH line",
        b"type=EOE msg=audit(1.000:1): ",
        b"\xff\xfe not a record",
    ),
    "hex-encoded values": lines_of(
        SYSCALL.format(serial=1).replace('comm="ls"', "comm=6C73").replace('key="k1"', "key=6B310161620162"),
        "type=PROCTITLE msg=audit(1700000000.123:1): proctitle=2F62696E2F7368002D630065636820686900",
        "type=PATH msg=audit(1700000000.123:1): item=0 name=2F746D702F6120622E747874 inode=12 mode=0100755 "
        "ouid=0 ogid=4294967295 objtype=NORMAL",
        "type=PATH msg=audit(1700000000.123:1): item=1 name=FF00 mode=0140644 mode_text=x nametype=CREATE",
        "type=CWD msg=audit(1700000000.123:1): cwd=2F726F6F74",
        "type=EOE msg=audit(1700000000.123:1): ",
    ),
    "sockaddrs": lines_of(
        *(
            f"type=SOCKADDR msg=audit(2.000:{i}): saddr={s}"
            for i, s in enumerate(
                [
                    "02000050C0000201" + "00" * 8,
                    "0A0000500000000020010DB8000000000000000000000001" + "05000000",
                    "0A00005000000000" + "00" * 16,
                    "0A00005000000000" + "0000000000000000000000000000FFFF01020304"[:32],
                    "0A000050000000000001000000000000000100000000000000",
                    "01002F746D702F736F636B00FFFF",
                    "0100002F61627374726163740000",
                    "10000000D20400000100000000000000",
                    "0002",
                    "1F00",
                    "2A00",
                    "0200",
                    "02",
                    "",
                    "ZZ",
                    "0g00",
                    '"0200"',
                ],
                1,
            )
        ),
    ),
    "interpretations": lines_of(
        "type=SYSCALL msg=audit(3.000:1): arch=40000003 syscall=11 exit=-13 success=no cap_fp=0000000000000000 "
        "cap_fi=-0x1F cap_pe=0x_00ff cap_pi=zz prom=256 old_prom=-1 list=4 res=1 data=6869 id=5 new-gid=0 "
        'a2="q" mode=-5 ses=4294967295 auid=-1 uid=0 sauid=7 exit=-115',
        "type=SECCOMP msg=audit(3.000:1): arch=c00000b7 syscall=221 sig=0 mode=07777 prom=x",
        "type=SYSCALL msg=audit(3.000:2): arch=ffff syscall=x99 exit=-0 items=18446744073709551615",
        'type=SYSCALL msg=audit(3.000:3): arch=c000003e syscall=2\x1dARCH=x86_64 SYSCALL=open AUID="alice" UID=unset',
        "type=SYSCALL msg=audit(3.000:4): arch=bogus syscall=1\x1dARCH= SYSCALL=",
        "type=TTY msg=audit(3.000:5): data=6869 id=7",
        "type=USER_TTY msg=audit(3.000:6): pid=1 uid=0 msg='data=6869'",
    ),
    "execve": lines_of(
        'type=EXECVE msg=audit(4.000:1): argc=4 a0="ls" a1=2D6C a2_len=8 a2[0]=61626364 a2[1]="ef" a2[2]=4748 a3="x y"',
        'type=EXECVE msg=audit(4.000:1): a5="late" a1="dup"',
        'type=EXECVE msg=audit(4.000:2): argc=2 a99999999="far" a0="x"',
        'type=EXECVE msg=audit(4.000:3): argc=-3 a1="gap" a1234567890="skip" a2[1234567890]=00',
        'type=EXECVE msg=audit(4.000:4): a0="" a1="',
    ),
    "user-space messages": lines_of(
        "type=USER_LOGIN msg=audit(5.000:1): pid=1 uid=0 auid=1000 ses=2 msg='op=login id=1000 "
        'exe="/usr/sbin/sshd" hostname=h addr=192.0.2.1 terminal=ssh res=success\'',
        'type=USER_START msg=audit(5.000:2): user pid=1 uid=0 auid=0 msg=\'PAM: session open acct="root" : '
        'exe="/usr/sbin/cron" (hostname=?, addr=?, terminal=cron res=success)\'',
        "type=USER_AUTH msg=audit(5.000:3): user pid=1 (hostname=?, addr=?, terminal=cron res=failed)",
        "type=USER_AVC msg=audit(5.000:4): pid=1 msg='avc:  denied  { send_msg\tstart } for scontext=a tcontext=b'",
        "type=AVC msg=audit(5.000:5): avc: bad avc:  granted  { read } for pid=1 res=0",
        'type=USER_CMD msg=audit(5.000:6): pid=1 msg=\'cwd="/" cmd=6C73 terminal=pts/0 res=success',
        "type=UNKNOWN[2222] msg=audit(5.000:7): x=1 msg='a=b'",
        "type=UNKNOWN[1300] msg=audit(5.000:8): arch=c000003e syscall=1",
        "type=DAEMON_START msg=audit(5.000:9): op=start ver=3.0 auid=4294967295 res=success",
    ),
    "unterminated and interleaved events": lines_of(
        SYSCALL.format(serial=10),
        SYSCALL.format(serial=11),
        'type=PATH msg=audit(1700000000.123:10): item=0 name="/a"',
        'type=PATH msg=audit(1700000000.123:10): item=0 name="/a"',  # a resend
        'type=CWD msg=audit(1700000003.000:12): cwd="/"',
        'type=PATH msg=audit(1700000000.123:11): item=0 name="/late"',
        "type=SYSCALL msg=audit(1700000100.000:20): syscall=1",
        "type=SYSCALL msg=audit(1700000100.000:5000000): syscall=1",
        "type=SYSCALL msg=audit(1700000100.000:4294967295): syscall=1",
        "type=SYSCALL msg=audit(1700000100.000:0): syscall=1",
        "type=SYSCALL msg=audit(1700000100.000:3): syscall=1",
    ),
    "eoe": lines_of(
        "type=EOE msg=audit(6.000:1): ",
        SYSCALL.format(serial=2).replace("1700000000.123", "6.000"),
        "type=EOE msg=audit(6.000:2): ",
        "type=EOE msg=audit(6.000:2): ",
        "type=USER_END msg=audit(6.000:3): pid=1 res=success",
        "type=EOE msg=audit(6.000:3):",
    ),
    "no stamp, blank and whitespace lines": lines_of(
        "type=SYSCALL msg=foo",
        "type=SYSCALL msg=audit(1.5): x=1",
        "node=x",
        "node=x type=Y",
        " ",
        "\x1c\x1d",
        "\u0085\u3000",
        "",
        "type= msg=audit(1.000:1): x=1",
        "type=SYSCALL  msg=audit(1.000:1)x=1",
        "type=SYSCALL\tmsg=audit(1.000:2):: y=2",
        "type=SYSCALL msg=audit(1.000:3)",
        "hello=world",
    ),
    "node prefixes": lines_of(
        "node=web1 " + SYSCALL.format(serial=1),
        "node=web2 " + SYSCALL.format(serial=1),
        "node= " + SYSCALL.format(serial=1),
        SYSCALL.format(serial=1),
        'node=web1 type=PATH msg=audit(1700000000.123:1): item=0 name="/w1"',
        "node=2001:db8::1\u3000type=EOE msg=audit(1700000000.123:1): ",
    ),
    "long lines and fragments": lines_of(
        "type=USER_CMD msg=audit(7.000:1): pid=1 msg='cmd=" + "41" * 4490 + "'",
        "42" * 10 + " res=success'",
        "type=SYSCALL msg=audit(7.000:2): syscall=1 a0=" + "x" * 9000,
        "more of it",
        "type=USER_CMD msg=audit(7.000:3): pid=1 msg='cmd=short'",
        "orphan after a single record",
        "type=SYSCALL msg=audit(7.000:4): " + "k=v " * 30000,
    ),
    "odd separators and values": lines_of(
        "type=SYSCALL msg=audit(8.000:1): a=\"x y\"b=c d={ 1 2 } e='p q' f='open g==h ==i j= k=\"unterminated",
        'type=SYSCALL msg=audit(8.000:2): uid=1 uid=2 uid=3\x1dUID="bob" UID=x AUID=\'al\' GID="',
        "type=SYSCALL msg=audit(8.000:3):\x1d",
        "type=SYSCALL msg=audit(8.000:4): x=1\x1dA=1\x1dB=2",
        "type=SYSCALL msg=audit(8.000:5): (weird=1, other=2) res=(x) q=a,)",
    ),
    "unicode digits and whitespace": lines_of(
        "type=SYSCALL msg=audit(\u0661\u0667.\u0661\u0662\u0663:\u0664\u0662):\u3000pid=\u0664 "
        "exit=-\u0661\u0663 mode=\u0660\u0667\u0667",
        'type=EXECVE\u00a0msg=audit(17.123:42): a\u0661="x" a0="y" argc=\u0662',
        "type=UNKNOWN[\u0661\u0663\u0660\u0660] msg=audit(9.000:1): syscall=1",
        "type=SYSCALL msg=audit(9.000:2): avc: \u00e9t\u00e9 { x }",
    ),
    "times": lines_of(
        "type=SYSCALL msg=audit(18446744073.709:1): x=1",
        "type=SYSCALL msg=audit(18446744073.7095516159:2): x=1",
        "type=SYSCALL msg=audit(0.0000000019:3): x=1",
        "type=SYSCALL msg=audit(1.1:4): x=1",
        "type=SYSCALL msg=audit(0001.0010:5): x=1",
    ),
    # Python raises on these (README "Known gaps and bugs"): the native side raises the same
    "time beyond 64 bits (known bug)": lines_of("type=SYSCALL msg=audit(111170021493.977:293): syscall=59"),
    "serial beyond 64 bits (known bug)": lines_of("type=SYSCALL msg=audit(1.000:18446744073709551616): x=1"),
    "integer field beyond 64 bits (known bug)": lines_of(
        "type=SYSCALL msg=audit(3.000:2): arch=ffff syscall=1 exit=-18446744073709551617"
    ),
    "huge type number": lines_of("type=UNKNOWN[99999999999999999999999] msg=audit(1.000:1): x=1"),
    "more than 4300 digits": lines_of("type=SYSCALL msg=audit(1.000:" + "1" * 4301 + "): x=1"),
    "time beyond a float": lines_of("type=SYSCALL msg=audit(" + "9" * 400 + ".000:1): x=1"),
    "orphan eoe with a huge time": lines_of(
        "type=SYSCALL msg=audit(1.000:1): x=1", "type=EOE msg=audit(" + "9" * 30 + ".000:2): "
    ),
}


WHOLE_LOGS = [
    b"",
    b"\n\n",
    b"type=SYSCALL msg=audit(1.000:1): x=1\r\ntype=EOE msg=audit(1.000:1): \r\r\n",
    b"type=SYSCALL msg=audit(1.000:1): x=1\n \n\ttype=PATH msg=audit(1.000:1): y=2",
    b'type=SYSCALL msg=audit(1.000:1): x=1\x1dUID=a\x1c\ntype=CWD msg=audit(1.000:1): cwd="/"\n',
]
CAPS = [
    (grace, max_age, max_records, max_in_flight)
    for grace, max_age in [(2.0, 30.0), (0.0, 0.0), (0.5, 1.0)]
    for max_in_flight in [1, 2, 10000]
    for max_records in [1, 2, 4096]
]
CAPS_CASES = ("unterminated and interleaved events", "eoe", "node prefixes")


def fixture_outcomes(decode: LinuxDecoder) -> list[tuple[bytes, Outcome]]:
    out = []
    for fixture in LINUX_FIXTURES:
        lines = [line for _, line in read_records(fixture)]
        out.append((case_key(fixture.relpath, lines), decode(lines, fixture.relpath, *DEFAULTS)))
    return out


def caps_outcomes(decode: LinuxDecoder) -> list[tuple[bytes, Outcome]]:
    lines = [line for case in CAPS_CASES for line in EDGE_CASES[case]]
    return [(case_key(lines, caps), decode(lines, "t", *caps)) for caps in CAPS]


# name -> the (input, outcome) pairs of one recorded group, made with a decoder
GROUPS: dict[str, Callable[[LinuxDecoder], list[tuple[bytes, Outcome]]]] = {
    "linux_fixtures": fixture_outcomes,
    "linux_edge_cases": lambda d: [(case_key(n, lines), d(lines, "t", *DEFAULTS)) for n, lines in EDGE_CASES.items()],
    "linux_whole_logs": lambda d: [(case_key(data), d(log_lines(data), "t", *DEFAULTS)) for data in WHOLE_LOGS],
    "linux_assembler_caps": caps_outcomes,
}


@pytest.mark.parametrize("group", list(GROUPS))
def test_outcomes_as_recorded_from_python(group: str) -> None:
    """Fixture logs (keys in the decoder's own order), the edge cases, whole logs split as read_input splits
    them, the assembler's caps on interleaved events: byte-equal to the Python decoder's recorded outcome."""
    recorded.check(group, GROUPS[group](native_decoder))


FAR_TIME_NS, BIG_SERIAL = 111170021493977000000, 2**64


def test_integers_beyond_64_bits_are_written_exactly() -> None:
    """Once a TypeError ending `decode --raw` (orjson's, as Python raised it): now exact JSON numbers."""
    (far,) = map(json.loads, _native.linux_decode_raw(EDGE_CASES["time beyond 64 bits (known bug)"]).splitlines())
    (serial,) = map(json.loads, _native.linux_decode_raw(EDGE_CASES["serial beyond 64 bits (known bug)"]).splitlines())
    assert (far["time_ns"], serial["serial"]) == (FAR_TIME_NS, BIG_SERIAL)


def test_header_numbers_python_refused_are_decoded() -> None:
    """More than 4300 digits (Python's int() raised ValueError) and a time beyond a float (OverflowError) ended
    all of `decode --raw`: now the first is an error event of its own line, the second an event, and the
    decoding goes on."""
    (digits,) = map(json.loads, _native.linux_decode_raw(EDGE_CASES["more than 4300 digits"]).splitlines())
    assert digits["error"] == "header number too long" and digits["complete"] == "error"
    (huge,) = map(json.loads, _native.linux_decode_raw(EDGE_CASES["time beyond a float"]).splitlines())
    assert huge["time_ns"] == int("9" * 400 + "000000000") and huge["serial"] == 1


@pytest.mark.parametrize("data", WHOLE_LOGS)
def test_whole_logs_split_like_read_input(data: bytes) -> None:
    assert native_raw(data) == native_raw(log_lines(data))
    assert native_raw(bytearray(data)) == native_raw(log_lines(data))  # type: ignore[arg-type]


def test_input_types() -> None:
    with pytest.raises(TypeError):
        _native.linux_decode_raw(["not bytes"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        _native.linux_decode_raw(42)  # type: ignore[arg-type]
    line = b"type=SYSCALL msg=audit(1.000:1): x=1"
    assert _native.linux_decode_raw(memoryview(line + b"\n")) == _native.linux_decode_raw([line])


# ---------------------------------------------------------------- property


def _line_lists() -> st.SearchStrategy[list[bytes]]:
    seeds = fixture_records("linux")
    one = st.one_of(
        generated_linux(),
        mutated(seeds),
        st.sampled_from(seeds),
        st.sampled_from([line for lines in EDGE_CASES.values() for line in lines if len(line) < 2000]),
        st.binary(max_size=48),
    )
    return st.lists(one, min_size=1, max_size=16)


def assert_decoder_invariants(lines: list[bytes]) -> None:
    """What every decoded log keeps (an input no recording holds): one JSON object per event line, each
    event's records starting as input lines do, the same bytes twice; never an exception (Python raised for
    integers beyond 64 bits, header numbers of over 4300 digits, times beyond a float)."""
    got = native_raw(lines)
    assert got == native_raw(lines)
    assert isinstance(got, bytes), got
    texts = {line.decode("utf-8", "backslashreplace") for line in lines}
    for line in got.splitlines():
        event = json.loads(line)  # exact: numbers beyond a double too
        assert isinstance(event, dict) and event["source"] == "t"
        # a record's text starts as an input line does (fragments of a long line are joined to it)
        for record in event["records"]:
            assert any(record["raw"][:20] in t or t in record["raw"] for t in texts if t.strip()), record


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_line_lists())
def test_property_generated_and_mutated_lines_keep_the_invariants(lines: list[bytes]) -> None:
    assert_decoder_invariants(lines)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_line_lists(), st.sampled_from([b"\n", b"\r\n", b"\n\n"]))
def test_property_whole_logs_split_like_read_input(lines: list[bytes], newline: bytes) -> None:
    data = newline.join(lines)
    assert native_raw(data) == native_raw(log_lines(data))


def test_panics_become_native_panic() -> None:
    """The boundary is shared with BSM (tests/native/test_bsm_native.py); here only its exception type."""
    assert issubclass(_native.NativePanic, RuntimeError)


# ---------------------------------------------------------------- the streaming variant


@pytest.mark.parametrize("chunk_bytes", [1, 100, 1 << 20])
def test_decode_into_writes_the_same_lines(chunk_bytes: int) -> None:
    data = b"\n".join(line for fixture in LINUX_FIXTURES[:6] for line in log_lines(fixture.path.read_bytes()))
    pieces: list[bytes] = []
    count = _native.linux_decode_raw_into(data, pieces.append, "t", chunk_bytes=chunk_bytes)
    whole = _native.linux_decode_raw(data, "t")
    assert b"".join(pieces) == whole and count == whole.count(b"\n")
    assert all(piece.endswith(b"\n") for piece in pieces)
    if chunk_bytes == 1:  # handed over after every line that completed events (one line may complete several)
        assert 1 < len(pieces) <= count


def test_decode_into_errors() -> None:
    good = b"type=USER_LOGIN msg=audit(2.000:2): pid=1\n"
    with_digits = good + b"type=SYSCALL msg=audit(1.977:" + b"9" * 4301 + b"): syscall=59\n"
    pieces: list[bytes] = []
    assert _native.linux_decode_raw_into(with_digits, pieces.append) == 2  # once a ValueError after the first
    assert b"".join(pieces) == _native.linux_decode_raw(with_digits)

    def refuse(chunk: bytes) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        _native.linux_decode_raw_into(good, refuse, chunk_bytes=1)
