"""A fault-injecting fake `_bulk` endpoint (sink-and-gss.md A4), in-process on aiohttp.

It behaves like a real engine where that is easy (create → 409 on an existing `_id`, index
overwrites, items in request order, a per-field "mapping" that refuses strings in `long` fields) and
lets a test script what a real engine cannot produce on demand: whole-request statuses with headers,
connection resets, hangs, short item lists, per-item statuses, a body-size limit (413), auth.
Every request is recorded with its headers and decoded NDJSON so tests can check the wire.
"""

from __future__ import annotations

import asyncio
import gzip
import ssl
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


@dataclass
class Fault:
    """One scripted whole-request answer, consumed by one `_bulk` request."""

    status: int = 0  # HTTP status to answer with (0 = see `kind`)
    headers: dict[str, str] = field(default_factory=dict)
    kind: str = "status"  # "status", "reset" (drop the connection), "hang", "short_items"
    body: dict[str, Any] | None = None


@dataclass
class BulkRequest:
    headers: dict[str, str]
    raw: bytes  # as received (maybe gzip)
    lines: list[bytes]  # decoded NDJSON lines
    actions: list[dict[str, Any]]
    sources: list[bytes]
    answered: int = 0
    peercert: Any = None  # the client certificate (TLS with client auth)


class FakeEngine:
    def __init__(self, flavor: str = "opensearch", version: str = "2.19.1") -> None:
        self.flavor = flavor
        self.version = version
        self.indices: dict[str, dict[str, dict[str, Any]]] = {}
        self.raw_sources: dict[tuple[str, str], bytes] = {}
        self.requests: list[BulkRequest] = []
        self.script: list[Fault] = []  # whole-request faults, consumed in order
        # _id (or "index/_id": that index only) -> statuses, consumed per attempt
        self.item_faults: dict[str, list[tuple[int, str, str]]] = {}
        self.long_fields: set[str] = {"n"}  # top-level fields mapped as `long`
        self.strict_indices: set[str] = set()  # indices whose mapping refuses everything (a broken DLQ)
        self.max_body_bytes: int | None = None  # decompressed limit; bigger requests get 413
        self.required_auth: str | None = None
        self.auth_failures = 0  # answer this many requests with 401 regardless of headers
        self.templates: dict[str, dict[str, Any]] = {}
        # ISM policies by name: (body, seq_no); None = no ISM plugin (every ISM request answers 400)
        self.ism_policies: dict[str, tuple[dict[str, Any], int]] | None = None
        self.ilm = True  # False: an Elasticsearch without x-pack (no _ilm handler)
        self.reject_templates: dict[str, str] = {}  # template name -> reason for a 400
        self.poison: set[str] = set()  # a request containing one of these _ids is refused whole (400)
        self.request_faults: dict[str, int] = {}  # a request containing this _id is answered whole with the status
        self.outage = 0  # answer every _bulk request with this status (0: none); after `script`
        self.hits = 0
        self.latency = 0.0  # seconds each _bulk answer takes (to let requests overlap)
        self.active = 0
        self.max_active = 0  # most _bulk requests handled at the same time
        self._runner: web.AppRunner | None = None
        self._release = asyncio.Event()
        self.url = ""

    async def start(self, ssl_context: ssl.SSLContext | None = None, port: int = 0) -> FakeEngine:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_get("/", self._root)
        app.router.add_post("/_bulk", self._bulk)
        app.router.add_put("/{kind}/{name}", self._put)
        app.router.add_put("/_plugins/_ism/policies/{name}", self._put_ism)
        app.router.add_get("/_plugins/_ism/policies/{name}", self._get_ism)
        app.router.add_put("/_ilm/policy/{name}", self._put_ilm)
        app.router.add_get("/_ilm/status", self._ilm_status)
        self._runner = web.AppRunner(app, access_log=None, auto_decompress=False)  # see the wire bytes
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port, ssl_context=ssl_context)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    # ------------------------------------------------------------------ views for tests

    def docs(self, index: str | None = None) -> dict[str, dict[str, Any]]:
        if index is not None:
            return self.indices.get(index, {})
        return {i: d for docs in self.indices.values() for i, d in docs.items()}

    def count(self) -> int:
        return sum(len(v) for v in self.indices.values())

    # ------------------------------------------------------------------ handlers

    def _auth_ok(self, request: web.Request) -> bool:
        if self.auth_failures > 0:
            self.auth_failures -= 1
            return False
        return self.required_auth is None or request.headers.get("Authorization") == self.required_auth

    async def _root(self, request: web.Request) -> web.Response:
        if not self._auth_ok(request):
            return _error(401, "security_exception", "missing authentication credentials")
        if self.flavor == "opensearch":
            body = {
                "name": "n1",
                "cluster_name": "fake",
                "version": {"distribution": "opensearch", "number": self.version},
                "tagline": "The OpenSearch Project: https://opensearch.org/",
            }
            return web.Response(body=orjson.dumps(body), content_type="application/json")
        body = {
            "name": "n1",
            "cluster_name": "fake",
            "version": {"number": self.version, "build_flavor": "default"},
            "tagline": "You Know, for Search",
        }
        return web.Response(
            body=orjson.dumps(body), content_type="application/json", headers={"X-Elastic-Product": "Elasticsearch"}
        )

    async def _put(self, request: web.Request) -> web.Response:
        if not self._auth_ok(request):
            return _error(401, "security_exception", "unauthorized")
        kind, name = request.match_info["kind"], request.match_info["name"]
        if kind not in ("_index_template", "_component_template"):
            return _error(400, "illegal_argument_exception", f"no handler for {kind}")
        if name in self.reject_templates:
            return _error(400, "illegal_argument_exception", self.reject_templates[name])
        self.templates[f"{kind}/{name}"] = orjson.loads(await request.read())
        return web.json_response({"acknowledged": True})

    async def _put_ism(self, request: web.Request) -> web.Response:
        """As ISM does: create, 409 if it exists, overwrite only with the current if_seq_no/if_primary_term."""
        if self.ism_policies is None:
            return _error(400, "illegal_argument_exception", "no handler found for uri")
        name, body = request.match_info["name"], orjson.loads(await request.read())
        existing = self.ism_policies.get(name)
        current = (request.query.get("if_seq_no"), request.query.get("if_primary_term"))
        if existing is not None and current != (str(existing[1]), "1"):
            return _error(409, "version_conflict_engine_exception", f"[{name}]: version conflict")
        seq_no = 0 if existing is None else existing[1] + 1
        self.ism_policies[name] = (body, seq_no)
        status = 201 if existing is None else 200
        return web.json_response({"_id": name, "_seq_no": seq_no, "_primary_term": 1}, status=status)

    async def _get_ism(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if self.ism_policies is None or name not in self.ism_policies:
            return _error(404, "status_exception", "Policy not found")
        body, seq_no = self.ism_policies[name]
        return web.json_response({"_id": name, "_seq_no": seq_no, "_primary_term": 1, **body})

    async def _ilm_status(self, request: web.Request) -> web.Response:
        if not self.ilm:
            return _error(400, "invalid_index_name_exception", "Invalid index name [_ilm], must not start with '_'")
        return web.json_response({"operation_mode": "RUNNING"})

    async def _put_ilm(self, request: web.Request) -> web.Response:
        if (name := request.match_info["name"]) in self.reject_templates:
            return _error(400, "x_content_parse_exception", self.reject_templates[name])
        self.templates[f"_ilm/{request.match_info['name']}"] = orjson.loads(await request.read())
        return web.json_response({"acknowledged": True})

    async def _bulk(self, request: web.Request) -> web.StreamResponse:
        self.hits += 1
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            return await self._bulk_answer(request)
        finally:
            self.active -= 1

    async def _bulk_answer(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = gzip.decompress(raw) if request.headers.get("Content-Encoding") == "gzip" else raw
        lines = body.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        else:
            return _error(400, "illegal_argument_exception", "The bulk request must be terminated by a newline")
        actions: list[dict[str, Any]] = []
        sources: list[bytes] = []
        for i in range(0, len(lines), 2):
            actions.append(orjson.loads(lines[i]))
            sources.append(lines[i + 1] if i + 1 < len(lines) else b"")
        req = BulkRequest(dict(request.headers), raw, lines, actions, sources)
        req.peercert = request.transport.get_extra_info("peercert") if request.transport else None
        self.requests.append(req)
        if self.script:
            fault = self.script.pop(0)
            if fault.kind == "reset":
                assert request.transport is not None
                request.transport.abort()
                await asyncio.sleep(0.05)
                return web.Response(status=500)
            if fault.kind == "hang":
                await self._release.wait()  # until stop(): the client must time out first
            if fault.kind == "status":
                return web.Response(
                    status=fault.status,
                    body=orjson.dumps(fault.body or {"error": {"type": "fault", "reason": f"injected {fault.status}"}}),
                    headers=fault.headers,
                    content_type="application/json",
                )
            short = fault.kind == "short_items"
        else:
            short = False
        if not self._auth_ok(request):
            return _error(401, "security_exception", "missing authentication credentials for action [bulk]")
        if self.outage:
            return _error(self.outage, "outage", f"injected outage {self.outage}")
        hit = [a for a in actions if a.get("create", {}).get("_id") in self.request_faults]
        if hit:
            status = self.request_faults[hit[0]["create"]["_id"]]
            return _error(status, "fault", f"injected {status} for a request holding {hit[0]['create']['_id']}")
        bad = [a for a in actions if a.get("create", {}).get("_id") in self.poison]
        if bad:
            return _error(400, "x_content_parse_exception", f"[1:2] Unexpected character in document {bad[0]}")
        if self.max_body_bytes is not None and len(body) > self.max_body_bytes:
            return web.Response(status=413, body=b"")
        items = [self._item(a, s) for a, s in zip(actions, sources, strict=True)]
        if short:
            items = items[:-1]
        errors = any(next(iter(x.values()))["status"] >= 300 for x in items)
        req.answered = len(items)
        return web.Response(
            body=orjson.dumps({"took": 1, "errors": errors, "items": items}), content_type="application/json"
        )

    def _item(self, action: dict[str, Any], source: bytes) -> dict[str, Any]:
        ((op, meta),) = action.items()
        index, doc_id = meta["_index"], meta.get("_id")
        faults = self.item_faults.get(f"{index}/{doc_id}") or self.item_faults.get(doc_id or "")
        if faults:
            status, etype, reason = faults.pop(0)
            return {op: {"_index": index, "_id": doc_id, "status": status, "error": {"type": etype, "reason": reason}}}
        doc = orjson.loads(source)
        if index in self.strict_indices:
            return {op: _item_error(index, doc_id, 400, "strict_dynamic_mapping_exception", "mapping set to strict")}
        for f in self.long_fields:
            if isinstance(doc.get(f), str):
                reason = f"failed to parse field [{f}] of type [long] in document with id '{doc_id}'"
                return {op: _item_error(index, doc_id, 400, "mapper_parsing_exception", reason)}
        store = self.indices.setdefault(index, {})
        if op == "create" and doc_id in store:
            reason = f"[{doc_id}]: version conflict, document already exists (current version [1])"
            return {op: _item_error(index, doc_id, 409, "version_conflict_engine_exception", reason)}
        store[doc_id] = doc
        self.raw_sources[(index, doc_id)] = source
        return {op: {"_index": index, "_id": doc_id, "result": "created", "status": 201, "_version": 1}}


def _item_error(index: str, doc_id: str | None, status: int, etype: str, reason: str) -> dict[str, Any]:
    return {"_index": index, "_id": doc_id, "status": status, "error": {"type": etype, "reason": reason}}


def _error(status: int, etype: str, reason: str) -> web.Response:
    body = {"error": {"root_cause": [{"type": etype, "reason": reason}], "type": etype, "reason": reason}}
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")
