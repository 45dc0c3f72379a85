"""Engine set-up: which engine answers (`GET /`: its flavor decides the template variant and the
lifecycle API, ILM or ISM), and putting our templates into it, until it is done."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import orjson

from auditrecv.config import Search
from auditrecv.sink.contract import BulkMetrics, EngineAuthError, EngineInfo, Flavor, Requester, SinkError
from auditrecv.sink.naming import index_pattern, template_names, template_priority
from auditrecv.sink.policy import error_reason

log = logging.getLogger("auditrecv.sink")

# Above the schema package's own templates (at most 299) so a dead-letter index that also matches
# the main pattern (auditrecv-dlq-* inside auditrecv-*) gets the dead-letter mapping; plus the
# pattern's specificity, like the main templates.
DEAD_LETTER_PRIORITY = 300


class SetupHost(Requester, Protocol):
    """What set-up needs from the indexer: requests, and the halt and backoff it shares with shipping."""

    settings: Search
    metrics: BulkMetrics

    async def halt(self, status: int, message: str) -> None: ...

    def resume(self) -> None: ...

    async def back_off(self, attempt: int) -> None: ...


class TemplateError(SinkError):
    """The engine rejected one of our templates; the message names it and quotes the engine."""


TemplatesFor = Callable[[EngineInfo], Mapping[str, Any]]


def parse_engine_info(headers: Mapping[str, str], body: bytes) -> EngineInfo:
    """Flavor and version from a `GET /` reply (header for ES >= 7.14, `version.distribution` for OpenSearch)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise SinkError(f"GET / did not return JSON: {body[:200]!r}") from None
    version = doc.get("version") if isinstance(doc, dict) else None
    if not isinstance(version, dict) or not isinstance(version.get("number"), str):
        raise SinkError(f"GET / has no version.number; not Elasticsearch or OpenSearch: {body[:200]!r}")
    number: str = version["number"]
    flavor: Flavor
    if version.get("distribution") == "opensearch":
        flavor = "opensearch"
    elif headers.get("X-Elastic-Product") == "Elasticsearch" or doc.get("tagline") == "You Know, for Search":
        # Elasticsearch before 7.14 sends no X-Elastic-Product header, only the tagline.
        flavor = "elasticsearch"
    else:
        raise SinkError(f"GET / is neither Elasticsearch nor OpenSearch: {body[:200]!r}")
    nums = [int(p) if p.isdigit() else 0 for p in number.split("-", 1)[0].split(".")] + [0, 0]
    return EngineInfo(flavor, number, nums[0], nums[1], str(doc.get("cluster_name", "")))


async def detect_engine(indexer: Requester) -> EngineInfo:
    """One `GET /` (with node failover); raises EngineAuthError on 401/403, SinkError otherwise."""
    reply = await indexer.request("GET", "/")
    if reply.status in (401, 403):
        raise EngineAuthError(f"GET / refused with HTTP {reply.status}: {error_reason(reply.body)}")
    if reply.status != 200:
        raise SinkError(f"GET / returned HTTP {reply.status}: {error_reason(reply.body)}")
    return parse_engine_info(reply.headers, reply.body)


def dead_letter_template(settings: Search) -> dict[str, Any]:
    """Index template for the dead-letter indices: a few keyword fields, the original kept unindexed, the
    rest unmapped (`dynamic: false`) so that a dead letter can never fail on a mapping conflict itself."""
    index_settings: dict[str, Any] = {"number_of_shards": 1}
    if settings.number_of_replicas >= 0:
        index_settings["number_of_replicas"] = settings.number_of_replicas
    keyword = {"type": "keyword", "ignore_above": 1024}
    pattern = index_pattern(settings.dead_letter_index)
    return {
        "index_patterns": [pattern],
        "priority": template_priority(pattern, DEAD_LETTER_PRIORITY),
        "template": {
            "settings": index_settings,
            "mappings": {
                "dynamic": False,
                "properties": {
                    "@timestamp": {"type": "date"},
                    "message": {"type": "text"},
                    "event": {
                        "properties": {
                            "kind": keyword,
                            "original": {"type": "keyword", "index": False, "doc_values": False},
                        }
                    },
                    "error": {"properties": {"type": keyword, "code": keyword, "message": {"type": "text"}}},
                    "auditrecv": {
                        "properties": {
                            "dead_letter": {
                                "properties": {
                                    "index": keyword,
                                    "id": keyword,
                                    "status": {"type": "integer"},
                                    "truncated": {"type": "boolean"},
                                }
                            }
                        }
                    },
                },
            },
        },
        "_meta": {"managed_by": "auditrecv", "description": "documents the engine refused"},
    }


async def install_templates(indexer: Requester, engine: EngineInfo, templates: Mapping[str, Any]) -> list[str]:
    """PUT every lifecycle policy ("ilm_policies" or "ism_policies"), then "component_templates", then
    "index_templates" (which refer to both); idempotent. Returns what was installed, as "kind/name".
    Raises TemplateError naming the template and quoting the engine, EngineAuthError on 401/403."""
    done: list[str] = []

    async def put(kind: str, path: str, name: str, body: Any, tolerate: tuple[int, ...] = ()) -> bool:
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        reply = await indexer.request("PUT", path, data)
        if reply.status in (401, 403):
            raise EngineAuthError(f"installing {kind} {name!r}: HTTP {reply.status}: {error_reason(reply.body)}")
        if 200 <= reply.status < 300:
            done.append(f"{kind}/{name}")
            return True
        if reply.status in tolerate:
            return False
        why = error_reason(reply.body)
        raise TemplateError(f"{engine.flavor} {engine.version} rejected {kind} {name!r} (HTTP {reply.status}): {why}")

    component_templates = templates.get("component_templates") or {}
    if engine.flavor == "elasticsearch":
        policies = templates.get("ilm_policies") or templates.get("ilm") or {}
        if policies and not await _has_ilm(indexer):
            # An Elasticsearch without ILM (an OSS build, x-pack off): the templates still go in, without the
            # setting naming the policy (the engine would refuse it), so the mappings hold; only the deleting
            # is missing, and said loudly, as for an OpenSearch without ISM.
            log.error(
                "!!! retention not applied: %s %s has no index lifecycle management (ILM); "
                "old indices are not deleted !!!",
                engine.flavor,
                engine.version,
            )
            component_templates = {n: _without_lifecycle(b) for n, b in component_templates.items()}
            policies = {}
        for name, body in policies.items():
            await put("ilm_policy", f"/_ilm/policy/{name}", name, body)
    else:
        for name, body in (templates.get("ism_policies") or templates.get("ism") or {}).items():
            path = f"/_plugins/_ism/policies/{name}"
            # 409: the policy exists, and ISM overwrites only with its current seq_no and primary term (a
            # changed retention must reach it); 400/404: no ISM plugin on this engine.
            if await put("ism_policy", path, name, body, tolerate=(400, 404, 409)):
                continue
            current = await indexer.request("GET", path)
            if current.status == 200:
                doc = orjson.loads(current.body)
                update = f"{path}?if_seq_no={doc['_seq_no']}&if_primary_term={doc['_primary_term']}"
                if await put("ism_policy", update, name, body, tolerate=(409,)):
                    continue
            log.warning("ISM policy %r not installed (no ISM plugin on this engine, or a concurrent update)", name)
    if engine.flavor == "elasticsearch" and (engine.major, engine.minor) < (7, 8):
        raise TemplateError(f"Elasticsearch {engine.version} has no composable templates (7.8 or later needed)")
    for name, body in component_templates.items():
        await put("component_template", f"/_component_template/{name}", name, body)
    for name, body in (templates.get("index_templates") or {}).items():
        await put("index_template", f"/_index_template/{name}", name, body)
    return done


async def _has_ilm(indexer: Requester) -> bool:
    """Whether the engine serves ILM: without it `/_ilm/...` is no API at all (7.x reads it as an index
    name and answers 400, later versions "no handler found")."""
    reply = await indexer.request("GET", "/_ilm/status")
    if reply.status in (401, 403):
        raise EngineAuthError(f"reading the ILM status: HTTP {reply.status}: {error_reason(reply.body)}")
    return 200 <= reply.status < 300


def _without_lifecycle(component: Any) -> Any:
    """A component template without `index.lifecycle` (a copy; the others as they are)."""
    if not isinstance(component, dict):
        return component
    index = component.get("template", {}).get("settings", {}).get("index", {})
    if not isinstance(index, dict) or "lifecycle" not in index:
        return component
    settings = {**component["template"]["settings"], "index": {k: v for k, v in index.items() if k != "lifecycle"}}
    return {**component, "template": {**component["template"], "settings": settings}}


async def detect_until_answered(host: SetupHost) -> EngineInfo:
    """Detect the engine, retrying transient failures with backoff; halts (and re-probes) on 401/403."""
    attempt = 0
    while True:
        try:
            info = await detect_engine(host)
        except EngineAuthError as exc:
            await host.halt(401, str(exc))
            continue
        except SinkError as exc:
            host.metrics.error("detect", str(exc))
            log.warning("search engine not ready: %s", exc)
            await host.back_off(attempt)
            attempt += 1
            continue
        host.resume()
        log.info("search engine: %s %s (%s)", info.flavor, info.version, info.cluster_name or "?")
        return info


async def install_until_done(host: SetupHost, info: EngineInfo, templates_for: TemplatesFor | None) -> None:
    """Install `templates_for(info)` plus the dead-letter template, retrying until the engine took them
    or refused one (logged, not retried: the same body would be refused again)."""
    templates: dict[str, Any] = dict(templates_for(info)) if templates_for else {}
    index_templates = dict(templates.get("index_templates") or {})
    index_templates.setdefault(template_names(host.settings).dead_letter, dead_letter_template(host.settings))
    templates["index_templates"] = index_templates
    attempt = 0
    while True:
        try:
            names = await install_templates(host, info, templates)
            log.info("installed %s", ", ".join(names))
            host.resume()
            return
        except EngineAuthError as exc:
            await host.halt(403, str(exc))
        except TemplateError as exc:
            # Shipping goes on (the engine maps dynamically) so the spool does not fill up over a template bug.
            host.metrics.error("template", str(exc))
            log.error("!!! template installation failed: %s !!!", exc)
            return
        except SinkError as exc:
            log.warning("installing templates: %s; retrying", exc)
            await host.back_off(attempt)
            attempt += 1
