"""The status page's HTML without a browser: what senders control is escaped, rates and problems."""

from __future__ import annotations

import logging

from auditrecv.app import Service
from auditrecv.config import parse_config
from auditrecv.metrics import ConnectionSnapshot
from auditrecv.status import RecentProblems, StatusPage

NOW = 1_800_000_000.0


class _Listener:
    def __init__(self, records: int) -> None:
        self.records = records

    def connections(self) -> list[ConnectionSnapshot]:
        return [
            ConnectionSnapshot(
                listener="audisp_remote",
                protocol="audisp_remote",
                peer="192.0.2.7",
                peer_port=40000,
                name="<script>alert(1)</script>",  # audisp-remote's node name is the sender's to choose
                mech="",
                principal="",
                authenticated=False,
                connected_at=NOW - 10,
                records=self.records,
                last_record_at=NOW - 1,
            )
        ]


def test_sender_strings_are_escaped_and_rates_measured_between_renders() -> None:
    service = Service(parse_config(""))
    listener = _Listener(records=100)
    service.servers = {"audisp_remote": listener}  # type: ignore[dict-item]
    problems = RecentProblems(keep=2)
    page = StatusPage(problems)
    first = page.render(service, now=NOW)
    assert "<script>" not in first and "&lt;script&gt;alert(1)&lt;/script&gt;" in first
    assert "<td class='num rate'>10.0</td>" in first  # 100 records in the 10 s since it connected
    listener.records = 150
    second = page.render(service, now=NOW + 2)
    assert "<td class='num rate'>25.0</td>" in second  # 50 more in the 2 s between renders
    assert "<td class='num records'>150</td>" in second
    assert '<meta http-equiv="refresh" content="2">' in second
    assert "none since start" in second


def test_recent_problems_keep_the_last_warnings_and_errors() -> None:
    problems = RecentProblems(keep=2)
    log = logging.getLogger("auditrecv.test.status")
    log.addHandler(problems)
    try:
        log.info("not a problem")
        log.warning("first %s", "warning")
        log.error("an error")
        log.warning("<b>latest</b>")
    finally:
        log.removeHandler(problems)
    assert [(e.level, e.message) for e in problems.entries] == [("ERROR", "an error"), ("WARNING", "<b>latest</b>")]
    html = StatusPage(problems)._problems_section(NOW)
    assert html.index("&lt;b&gt;latest&lt;/b&gt;") < html.index("an error")  # newest first, escaped
