"""A fake VMAPI + Mahi following their documented API (GET /vms/:uuid, GET /accounts/:uuid).

Modes: "ok", "slow" (answers after `delay` seconds), "down" (500 on every request), "closed" (the
caller should point at a closed port instead). Counts every request so tests can assert coalescing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from typing import Any

from aiohttp import web


class FakeTriton:
    def __init__(self) -> None:
        self.vms: dict[str, dict[str, Any]] = {}
        self.accounts: dict[str, dict[str, Any]] = {}
        self.mode = "ok"
        self.delay = 5.0
        self.requests: Counter[str] = Counter()
        self.answered: Counter[str] = Counter()
        self._runner: web.AppRunner | None = None
        self._release = asyncio.Event()  # set on stop: a "slow" answer never outlives the test
        self.url = ""

    def add_zone(self, uuid: str, alias: str, owner_uuid: str, login: str, **extra: Any) -> None:
        self.vms[uuid] = {
            "uuid": uuid,
            "alias": alias,
            "owner_uuid": owner_uuid,
            "brand": extra.get("brand", "joyent"),
            "server_uuid": extra.get("server_uuid", "44454c4c-3200-1042-8053-b4c04f383432"),
            "state": "running",
            "tags": extra.get("tags", {}),
        }
        self.accounts[owner_uuid] = {
            "roles": {},
            "account": {"type": "account", "uuid": owner_uuid, "login": login, "groups": []},
        }

    async def _gate(self, path: str) -> None:
        self.requests[path] += 1
        if self.mode == "slow":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), self.delay)
        if self.mode == "down":
            raise web.HTTPInternalServerError(text='{"code":"InternalError"}', content_type="application/json")

    async def _vm(self, request: web.Request) -> web.Response:
        uuid = request.match_info["uuid"]
        await self._gate(f"/vms/{uuid}")
        vm = self.vms.get(uuid)
        self.answered[f"/vms/{uuid}"] += 1
        if vm is None:
            return web.json_response({"code": "ResourceNotFound", "message": "VM not found"}, status=404)
        return web.json_response(vm)

    async def _account(self, request: web.Request) -> web.Response:
        uuid = request.match_info["uuid"]
        await self._gate(f"/accounts/{uuid}")
        acct = self.accounts.get(uuid)
        self.answered[f"/accounts/{uuid}"] += 1
        if acct is None:
            return web.json_response({"code": "AccountIdDoesNotExist", "message": f"{uuid} does not exist"}, status=404)
        return web.json_response(acct)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/vms/{uuid}", self._vm)
        app.router.add_get("/accounts/{uuid}", self._account)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
