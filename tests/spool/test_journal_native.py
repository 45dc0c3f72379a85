"""The ack journal's native writer (``auditrecv._native.JournalFile``) writes exactly the entries the
Python encoder defines (``journal.encode_entry``), and what it wrote is read back by recovery."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from auditrecv._native import JournalFile, JournalLedger
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditrecv.spool import Source, Spool, SpoolRecord
from auditrecv.spool.journal import decode_entries, encode_entry, journal_files, read_journal

# Sources are JSON text, stored as UTF-8 with lone surrogates kept (surrogatepass).
entries = st.tuples(
    st.integers(0, 2**64 - 1),
    st.sampled_from(["bsm", "linux", "", "k" * 255, "é"]),
    st.text(max_size=200).map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.integers(-(2**63), 2**63 - 1),
    st.binary(max_size=2000),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(entries, min_size=1, max_size=5), one_by_one=st.booleans())
def test_native_entries_are_the_python_encoders_bytes(
    tmp_path: Path, batch: list[tuple[int, str, bytes, int, bytes]], one_by_one: bool
) -> None:
    path = tmp_path / "spool.db.ack-000001"
    journal = JournalFile(path)
    if one_by_one:
        for entry in batch:
            journal.append(*entry)
    else:
        for entry in batch:
            journal.stage(*entry)
        journal.write(sync=True)
    size, expected = journal.size, b"".join(encode_entry(*entry) for entry in batch)
    assert (size, journal.last_id) == (len(expected), batch[-1][0])
    mapped = path.read_bytes()
    assert mapped[:size] == expected and mapped[size : size + 2] == b"\0\0", "the entries, then the end mark"
    journal.close()
    data = path.read_bytes()
    assert data == expected, "closed: cut to its entries"
    decoded, good = decode_entries(data)
    assert good == len(data)
    assert [
        (e.id, e.kind, e.source_json.encode("utf-8", "surrogatepass"), e.received_ns, e.payload) for e in decoded
    ] == batch


ROOM = 256 * 1024  # a new journal file's preallocated room (native/src/journal.rs INITIAL_ROOM)


def test_size_last_id_and_clear(tmp_path: Path) -> None:
    path = tmp_path / "j"
    path.write_bytes(b"left over")
    journal = JournalFile(str(path))
    assert path.read_bytes() == bytes(ROOM) and (journal.size, journal.last_id) == (0, 0), "emptied, preallocated"
    journal.append(5, "linux", b"{}", 1, b"one")
    journal.stage(6, "linux", b"{}", 2, b"two")
    one = encode_entry(5, "linux", "{}", 1, b"one")
    assert (journal.size, journal.last_id) == (len(one), 5)
    journal.write()
    two = one + encode_entry(6, "linux", "{}", 2, b"two")
    assert (journal.size, journal.last_id, path.read_bytes()[: len(two) + 2]) == (len(two), 6, two + b"\0\0")
    journal.clear()
    assert (journal.size, journal.last_id, path.stat().st_size) == (0, 0, ROOM), "its room kept"
    assert decode_entries(path.read_bytes()) == ([], 0), "the end mark at the start: nothing valid"
    journal.append(7, "linux", b"{}", 3, b"3")
    three = encode_entry(7, "linux", "{}", 3, b"3")
    data = path.read_bytes()
    assert data[: len(three) + 2] == three + b"\0\0" and data[len(three) + 2 : len(two)] == two[len(three) + 2 :]
    assert [e.id for e in decode_entries(data)[0]] == [7], "the entries of the round before stay behind the end mark"
    journal.close()
    assert path.read_bytes() == three
    JournalFile(tmp_path / "new")
    assert os.stat(tmp_path / "new").st_mode & 0o777 == 0o600, "the spool's records are private"


def test_a_field_too_long_is_refused_and_nothing_staged_stays(tmp_path: Path) -> None:
    journal = JournalFile(tmp_path / "j")
    journal.stage(1, "linux", b"{}", 1, b"staged")
    with pytest.raises(ValueError, match="source"):
        journal.stage(2, "linux", b"s" * 65_536, 1, b"")
    with pytest.raises(ValueError, match="kind"):
        journal.append(3, "k" * 256, b"{}", 1, b"")
    journal.write()
    assert decode_entries((tmp_path / "j").read_bytes()) == ([], 0) and journal.last_id == 0
    journal.stage(4, "linux", b"{}", 1, b"dropped")
    journal.discard()
    journal.write()
    assert journal.size == 0


def test_errors_carry_their_errno_and_a_closed_file_refuses(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as raised:
        JournalFile(tmp_path / "missing" / "j")
    assert raised.value.errno == errno.ENOENT
    journal = JournalFile(tmp_path / "j")
    journal.close()
    journal.close()
    with pytest.raises(ValueError, match="closed"):
        journal.append(1, "linux", b"{}", 1, b"")


def test_a_file_is_made_where_its_room_cannot_be_and_the_first_append_says_why(tmp_path: Path) -> None:
    """A spool must open on a full filesystem: the journal file is made without its room, and the first
    append fails as a write there would (here the file size limit stands in for the full disk: EFBIG)."""
    path = tmp_path / "j"
    script = textwrap.dedent(
        f"""
        import errno, os, resource, signal
        from auditrecv._native import JournalFile
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the limit's signal: an error number instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        journal = JournalFile({str(path)!r})
        print(os.path.getsize({str(path)!r}), journal.size)
        try:
            journal.append(1, "linux", b"{{}}", 1, b"x")
        except OSError as exc:
            print(errno.errorcode[exc.errno])
        journal.clear()
        journal.close()
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0", "0", "EFBIG"]
    assert path.read_bytes() == b""
    journal = JournalFile(path)  # room to be had again: as always
    journal.append(1, "linux", b"{}", 1, b"x")
    assert path.stat().st_size == ROOM and journal.size == len(encode_entry(1, "linux", "{}", 1, b"x"))


SRC = Source(transport="audisp_remote", peer="192.0.2.7", peer_port=40000, listener="audisp_remote")
ODD = Source(transport="import", peer="/var/audit/odd.\udcff")


async def test_recovery_reads_what_the_native_writer_journaled(tmp_path: Path) -> None:
    """Records acknowledged through the journal and never folded (the process died) come back at the
    next open, with their ids, sources and times."""
    path = tmp_path / "spool.db"
    spool = await Spool.open(path, synchronous="normal")
    records = [SpoolRecord("linux", b"line %d" % n, SRC if n % 3 else ODD, 1_000 + n) for n in range(50)]
    ids = [spool.try_append_now([r], "conn") for r in records[:40]]
    ids.append(await spool.append(records[40:]))
    assert spool.metrics.journaled == 50
    journaled = list(read_journal(path))
    assert [(e.id, e.payload, e.received_ns) for e in journaled] == [
        (n + 1, r.payload, r.received_ns) for n, r in enumerate(records)
    ]
    # What a killed process leaves: journal files nothing was folded from (here, beside a new database).
    crashed = tmp_path / "crashed" / "spool.db"
    crashed.parent.mkdir()
    for _, p in journal_files(path):
        (crashed.parent / p.name.replace(path.name, crashed.name)).write_bytes(p.read_bytes())
    await spool.close()
    async with await Spool.open(crashed, synchronous="normal") as again:
        got = await again.read(0, 100)
        assert await again.append([records[0]]) == [51]
    assert [(rid, r.payload, r.source, r.received_ns) for rid, r in got] == [
        (n + 1, r.payload, r.source, r.received_ns) for n, r in enumerate(records)
    ]


def test_the_ledger_hands_a_fold_its_rows_and_takes_a_failed_fold_back_in_front() -> None:
    """The fold's input (``JournalLedger``): records after the id SQLite has, their distinct sources in
    order of first use, and the INSERT parameters (full chunks flat, the rest row by row)."""
    a, b = Source(transport="a"), Source(transport="b")
    ledger = JournalLedger()
    for i in range(1, 8):
        assert ledger.keep(i, "linux", b if i % 3 == 0 else a, -i, b"p%d" % i, 10 + i) == i
    assert (len(ledger), ledger.last_id, ledger.estimate) == (7, 7, sum(10 + i for i in range(1, 8)))
    count, estimate, first, sources = ledger.plan(2)
    assert (count, estimate, first) == (5, sum(10 + i for i in range(3, 8)), (3, -3))
    assert sources == [b, a] and sources[0] is b
    expected = [(i, "linux", 20 if i % 3 == 0 else 10, -i, b"p%d" % i) for i in range(3, 8)]
    assert ledger.rows(2, [20, 10], 2) == ([expected[0] + expected[1], expected[2] + expected[3]], [expected[4]])
    with pytest.raises(ValueError, match="fewer source ids"):
        ledger.rows(2, [20], 2)
    # A chunk whose rows share kind and source: (kind, source id, then id, received_ns, payload per row).
    assert ledger.rows(0, [20, 10], 2)[0][0] == ("linux", 20, 1, -1, b"p1", 2, -2, b"p2")
    assert ledger.rows(0, [20, 10], 1)[0][0] == (1, "linux", 20, -1, b"p1"), "one row: the plain form"
    assert ledger.plan(7) == (0, 0, None, []) and ledger.rows(7, [], 100) == ([], [])

    taken = ledger.take()
    assert (len(ledger), ledger.estimate, ledger.last_id, len(taken)) == (0, 0, 0, 7)
    ledger.keep(8, "bsm", b, 8, b"p8", 1)
    ledger.put_back(taken)
    assert len(taken) == 0 and (len(ledger), ledger.last_id) == (8, 8)
    assert ledger.plan(0)[3] == [a, b]
    assert [row[:3] for row in ledger.rows(0, [1, 2], 100)[1]] == [
        *((i, "linux", 2 if i % 3 == 0 else 1) for i in range(1, 8)),
        (8, "bsm", 2),
    ]


def test_the_ledgers_append_writes_keeps_and_spends_its_budget_in_one_call(tmp_path: Path) -> None:
    """``JournalLedger.append``: declined without room or over the record limit (nothing written), else
    the next id, the entry ``encode_entry`` makes, the record kept; a refused entry spends nothing."""
    path = tmp_path / "j"
    file, ledger, src = JournalFile(path), JournalLedger(), Source(transport="audisp_remote")
    ledger.issued, ledger.room = 41, 250
    assert ledger.append(file, "linux", b"{}", src, 7, b"payload", 126, 10) is None, "twice 126 > 250"
    assert ledger.append(file, "linux", b"{}", src, 7, b"payload", 125, 0) is None, "the record limit"
    assert path.read_bytes() == bytes(ROOM) and len(ledger) == 0
    assert ledger.append(file, "linux", b"{}", src, 7, b"payload", 100, 10) == 42
    entry = encode_entry(42, "linux", "{}", 7, b"payload")
    assert path.read_bytes()[: len(entry) + 2] == entry + b"\0\0"
    assert (ledger.issued, ledger.room, len(ledger), ledger.last_id, ledger.estimate) == (42, 50, 1, 42, 100)
    assert ledger.rows(0, [3], 100) == ([], [(42, "linux", 3, 7, b"payload")])
    with pytest.raises(ValueError, match="too long"):
        ledger.append(file, "k" * 256, b"{}", src, 7, b"", 1, 10)
    assert (ledger.issued, ledger.room, len(ledger)) == (42, 50, 1), "a refused entry spends nothing"
    taken = ledger.take()
    assert (taken.issued, taken.room, ledger.issued, ledger.room) == (0, 0, 42, 50), "the budget stays"
    file.close()
    with pytest.raises(ValueError, match="closed"):
        ledger.append(file, "linux", b"{}", src, 7, b"", 1, 10)
