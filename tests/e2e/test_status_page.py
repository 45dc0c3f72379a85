"""The status page at `/`, as headless Chromium renders it while a test sender is connected.

The screenshot is kept as a test artifact: `status-page.png` in the test's pytest tmp dir (the path is
printed; `pytest --basetemp DIR` puts it somewhere stable).
"""

from __future__ import annotations

import asyncio
import logging
import struct
from html.parser import HTMLParser
from pathlib import Path

from auditrecv.receive.audisp_remote import MessageType, pack_frame
from auditrecv.testclient.illumos import IllumosClient
from tests.e2e.harness import running_service, service_config
from tests.e2e.test_illumos_e2e import dummy_listener, fixture_records
from tests.infra.browser import dump_dom, screenshot


class _Cells(HTMLParser):
    """The text of each table row with class "sender", cell by cell, and of elements with an id."""

    def __init__(self) -> None:
        super().__init__()
        self.senders: list[list[str]] = []
        self.by_id: dict[str, str] = {}
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._ids: list[tuple[str, str]] = []  # (tag, id) open

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and a.get("class") == "sender":
            self._row = []
        elif tag == "td" and self._row is not None and self._cell is None:
            self._cell = []
        if a.get("id"):
            self._ids.append((tag, str(a["id"])))
            self.by_id.setdefault(str(a["id"]), "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.senders.append(self._row)
            self._row = None
        if self._ids and self._ids[-1][0] == tag:
            self._ids.pop()

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        for _, ident in self._ids:
            self.by_id[ident] += data


def rendered(dom: str) -> _Cells:
    cells = _Cells()
    cells.feed(dom)
    return cells


async def test_status_page_shows_the_connected_sender_and_its_moving_record_count(tmp_path: Path) -> None:
    table = service_config(tmp_path, listeners=dummy_listener())
    url = f"http://127.0.0.1:{table['http']['port']}/"
    profile = tmp_path / "chromium-profile"
    records = fixture_records()[:40]
    async with running_service(table):
        logging.getLogger("auditrecv.receive.test").warning("a problem the page must show")
        client = IllumosClient("127.0.0.1", table["listeners"]["audit_remote"]["port"], mech="dummy")
        await client.connect()
        linux = await asyncio.open_connection("127.0.0.1", table["listeners"]["audisp_remote"]["port"])
        try:
            for seq in (1, 2, 3):  # a Linux sender with name_format = user: its node name shows
                linux[1].write(
                    pack_frame(MessageType.MESSAGE, seq, b"node=linux1 type=CWD msg=audit(1.0:%d): cwd=/" % seq)
                )
                _magic, _, _, typ, length, _seq = struct.unpack("<IBBIHI", await linux[0].readexactly(16))
                assert typ == MessageType.ACK and length == 0
            await client.send_records(records[:15], wait_when_full=True)
            assert await client.wait_all_acked(30)
            first = rendered(await asyncio.to_thread(dump_dom, url, profile))
            await client.send_records(records[15:], wait_when_full=True)
            assert await client.wait_all_acked(30)
            second = rendered(await asyncio.to_thread(dump_dom, url, profile))
            png = await asyncio.to_thread(screenshot, url, profile, tmp_path / "status-page.png")
            print(f"status page screenshot: {png}")
        finally:
            await client.close()
            linux[1].close()
    # A row per sender: peer, zone/node, protocol+listener, mech+principal, records, records/s, last, connected.
    assert len(first.senders) == 2 and len(second.senders) == 2, (first.senders, second.senders)
    linux_row, illumos = sorted(first.senders, key=lambda row: row[2])  # audisp_remote < audit_remote
    assert linux_row[1:5] == ["linux1", "audisp_remoteaudisp_remote", "tcp", "3"]
    peer, _name, protocol, mech, count, rate, last, _since = illumos
    assert peer.startswith("127.0.0.1:")
    assert protocol == "audit_remoteaudit_remote"  # protocol, then the listener below it
    assert mech == "dummyunauthenticated"
    assert count == "15" and float(rate) > 0 and last.endswith("ago")
    moved = next(row for row in second.senders if row[0] == peer)
    assert moved[4] == str(len(records))  # the count moved
    assert first.by_id["sender-count"] == "2"
    assert first.by_id["spool-records"] == "18" and second.by_id["spool-records"] == str(len(records) + 3)
    assert first.by_id["status"] == "ok"
    assert "none configured" in first.by_id["engine"]
    assert "a problem the page must show" in first.by_id["problems"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
