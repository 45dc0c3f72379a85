"""Property (on the native assembler, as the pipeline runs it): arbitrary text never raises, and every
input line ends up in exactly one event (error events included), whatever the mix of valid, broken,
fragment and EOE lines."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.golden.native_core import LinuxAssembler

VALID = [
    'type=SYSCALL msg=audit(1700000000.123:{s}): arch=c000003e syscall=59 success=yes exit=0 key="k"',
    "type=PATH msg=audit(1700000000.123:{s}): item=0 name=2F746D70 mode=0100644 ouid=0",
    "type=EOE msg=audit(1700000000.123:{s}): ",
    "node=n1 type=USER_LOGIN msg=audit(1700000000.200:{s}): pid=1 msg='op=login res=failed'",
    "type=SOCKADDR msg=audit(1700000000.123:{s}): saddr=0A00\x1dSADDR={{ saddr_fam=inet6 }}",
    "type=EXECVE msg=audit(1700000000.123:{s}): argc=2 a0=ZZ a1[0]=4 a1_len=9",
    "continuation of an oversize line",
]

lines_strategy = st.lists(
    st.one_of(
        st.text(max_size=80),
        st.binary(max_size=60),
        st.builds(lambda t, s: t.format(s=s), st.sampled_from(VALID), st.integers(0, 2**32 + 5)),
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(
    lines=lines_strategy,
    times=st.lists(st.floats(0, 100), min_size=25, max_size=25),
    sources=st.lists(st.sampled_from(["a", "b"]), min_size=25, max_size=25),
)
def test_every_line_in_exactly_one_event(lines: list[str | bytes], times: list[float], sources: list[str]) -> None:
    asm = LinuxAssembler(grace_seconds=1.0, max_age_seconds=5.0, max_records=4, max_in_flight=3)
    emitted = []
    now = 0.0
    for i, line in enumerate(lines):
        now = max(now, times[i])
        emitted += asm.add_line(line, sources[i], now, tag=i)
        if i % 5 == 0:
            emitted += asm.poll(now)
    emitted += asm.flush()
    tags = sorted(tag for event in emitted for tag in event["tags"])
    assert tags == list(range(len(lines)))
    for event in emitted:  # a document (orjson wrote it: no surrogates), or an orphan EOE
        assert event["doc"] is not None or event["complete"] == "orphan_eoe"
