"""The transport.c emulator's own pieces: trail splitting and the command line."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

from auditrecv.testclient.illumos import main, split_trail
from tests.paths import BSM_FIXTURES
from tests.receive_illumos.conftest import MemorySpool, ServerFactory

APPLE = BSM_FIXTURES / "plaso" / "apple.bsm"


def test_split_trail_on_a_real_macos_trail() -> None:
    data = APPLE.read_bytes()
    recs = list(split_trail(data))
    assert len(recs) == 54  # PROVENANCE.md: 54 records
    assert b"".join(recs) == data  # no file tokens in this one: records tile the file
    for r in recs:
        assert r[0] == 0x14 and struct.unpack(">I", r[1:5])[0] == len(r)
        assert r[-7:-4] == b"\x13\xb1\x05"  # trailer magic 0xb105
        assert struct.unpack(">I", r[-4:])[0] == len(r)


def test_split_trail_skips_file_tokens_and_stops_on_junk() -> None:
    rec = b"\x14" + struct.pack(">I", 9) + b"abcd"
    file32 = b"\x11" + bytes(8) + struct.pack(">H", 3) + b"a.b"
    file64 = b"\x78" + bytes(16) + struct.pack(">H", 0)
    assert list(split_trail(file32 + rec + file64 + rec + file32)) == [rec, rec]
    assert list(split_trail(rec + b"\x99junk" + rec)) == [rec]
    assert list(split_trail(b"\x14" + struct.pack(">I", 100) + b"short")) == []


async def test_command_line_sends_a_trail(
    start_server: ServerFactory, memory_spool: MemorySpool, tmp_path: Path
) -> None:
    server = await start_server(allow_dummy_mech=True)
    argv = ["--port", str(server.port), "--mech", "dummy", "--hosts", "2", "--repeat", "3", str(APPLE)]
    rc = await asyncio.to_thread(main, argv)
    assert rc == 0
    expected = list(split_trail(APPLE.read_bytes())) * 3
    assert len(memory_spool.records) == 2 * len(expected)
    by_port: dict[int, list[bytes]] = {}
    for r in memory_spool.records:
        by_port.setdefault(r.source.peer_port, []).append(r.payload)
    assert sorted(by_port.values()) == [expected, expected]
