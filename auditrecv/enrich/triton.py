"""Triton (SmartDataCenter) lookups: a zone's VM record from VMAPI and its owner's login from Mahi.

VMAPI: `GET /vms/:uuid` -> {uuid, alias, owner_uuid, brand, server_uuid, tags, state, ...}, 404 when
unknown. Mahi: `GET /accounts/:uuid` -> {"account": {uuid, login, ...}, "roles": {...}}, 404 when
unknown (sdc-vmapi and mahi API documentation).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from auditrecv.enrich.cache import NotFound

UUID_RE = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ZoneInfo:
    uuid: str
    alias: str = ""
    owner_uuid: str = ""
    owner_login: str = ""
    brand: str = ""
    server_uuid: str = ""
    tags: dict[str, Any] = field(default_factory=dict)


class TritonClient:
    """Thin HTTP client; caching and budgets live in the Enricher."""

    def __init__(self, vmapi_url: str, mahi_url: str, session: aiohttp.ClientSession) -> None:
        self._vmapi = vmapi_url.rstrip("/")
        self._mahi = mahi_url.rstrip("/")
        self._session = session

    async def _get_json(self, url: str) -> Any:
        async with self._session.get(url, headers={"Accept": "application/json"}) as resp:
            if resp.status == 404:
                raise NotFound(url)
            resp.raise_for_status()
            return await resp.json(content_type=None)

    async def vm(self, uuid: str) -> dict[str, Any]:
        if not UUID_RE.fullmatch(uuid):
            raise NotFound(uuid)  # not a Triton zone name: never ask VMAPI about it
        body = await self._get_json(f"{self._vmapi}/vms/{uuid}")
        if not isinstance(body, dict):
            raise ValueError("VMAPI answered with something other than a VM object")
        return body

    async def account_login(self, owner_uuid: str) -> str:
        if not self._mahi or not UUID_RE.fullmatch(owner_uuid):
            raise NotFound(owner_uuid)
        body = await self._get_json(f"{self._mahi}/accounts/{owner_uuid}")
        account = body.get("account") if isinstance(body, dict) else None
        login = account.get("login") if isinstance(account, dict) else None
        if not isinstance(login, str):
            raise ValueError("Mahi answered without account.login")
        return login
