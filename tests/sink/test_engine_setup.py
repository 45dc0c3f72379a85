"""Engine set-up (auditrecv.sink.engine) against a scripted SetupHost: no HTTP, no clock, no indexer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from auditrecv.config import Search
from auditrecv.sink import SinkError
from auditrecv.sink.contract import BulkMetrics, Reply
from auditrecv.sink.engine import EngineInfo, detect_until_answered, install_until_done
from auditrecv.sink.naming import template_names

OPENSEARCH = orjson.dumps({"cluster_name": "c", "version": {"number": "2.19.1", "distribution": "opensearch"}})


class ScriptedHost:
    """Answers each request with the next scripted reply (or raises it); records halts and backoffs."""

    def __init__(self, replies: list[Reply | SinkError]) -> None:
        self.settings = Search(urls=["http://engine:9200"])
        self.metrics = BulkMetrics()
        self.replies = replies
        self.requests: list[tuple[str, str]] = []
        self.events: list[str] = []

    async def request(self, method: str, path: str, body: bytes | None = None) -> Reply:
        self.requests.append((method, path))
        reply = self.replies.pop(0)
        if isinstance(reply, SinkError):
            raise reply
        return reply

    async def halt(self, status: int, message: str) -> None:
        self.events.append(f"halt {status}")

    def resume(self) -> None:
        self.events.append("resume")

    async def back_off(self, attempt: int) -> None:
        self.events.append(f"back_off {attempt}")


def reply(status: int, body: bytes = b"{}") -> Reply:
    return Reply(status, {}, body, "http://engine:9200")


async def test_detection_backs_off_while_unreachable_and_halts_on_refused_credentials() -> None:
    host = ScriptedHost([SinkError("no node"), SinkError("no node"), reply(401), reply(503), reply(200, OPENSEARCH)])
    info = await detect_until_answered(host)
    assert info == EngineInfo("opensearch", "2.19.1", 2, 19, "c")
    assert host.events == ["back_off 0", "back_off 1", "halt 401", "back_off 2", "resume"]
    assert host.metrics.errors_by_status == {"detect": 3}


async def test_templates_go_in_with_the_dead_letter_template_and_a_refusal_is_not_retried() -> None:
    host = ScriptedHost([SinkError("reset"), reply(403), reply(200), reply(400, b'{"error":"bad mapping"}')])
    info = EngineInfo("opensearch", "2.19.1", 2, 19)

    def templates(engine: EngineInfo) -> Mapping[str, Any]:
        return {"component_templates": {"ecs": {}}, "index_templates": {"audit": {}}}

    await install_until_done(host, info, templates)
    assert host.requests == [
        ("PUT", "/_component_template/ecs"),
        ("PUT", "/_component_template/ecs"),
        ("PUT", "/_component_template/ecs"),
        ("PUT", "/_index_template/audit"),
    ]
    assert host.events == ["back_off 0", "halt 403"]
    assert host.metrics.errors_by_status == {"template": 1}  # the dead-letter template, next, is not tried


async def test_templates_installed_resume_shipping() -> None:
    host = ScriptedHost([reply(200)])
    await install_until_done(host, EngineInfo("elasticsearch", "8.15.0", 8, 15), None)
    assert host.requests == [
        ("PUT", f"/_index_template/{template_names(host.settings).dead_letter}"),
    ]
    assert host.events == ["resume"]
