"""A world for break-glass (紧急授权): the demo organisation and catalogue, the gateway
in process, two department systems as real HTTP servers on sockets.

    echo      czt's system (an echo of each request, headers included); no policy
              line lets wang.wu (nn-jgsw) in
    vehicles  jgswj's system with the catalogue resource JG-0001 (GET /api/vehicles);
              nn-jgsw holds no grant for it
    people    wang.wu (staff, the requester), sec.a, sec.b and sec.c (secadmin),
              aud.a (auditor)
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from audit import AuditLog
from gateway.clock import FrozenClock
from gateway.demo.apps import create_upstream
from gateway.proxy.endpoint import ProxyConfig
from gateway.services import Services
from tests.catalogue.conftest import audit_rows, clock, services  # noqa: F401 (fixtures)
from tests.in_process import AsgiTransport
from tests.proxy.conftest import Echo, Served, echo_app
from tests.tokens import access_token, own_client
from tests.wiring import apply_state, parts

ISSUER = "http://127.0.0.1:8080"
PEOPLE = {"wang.wu": ("nn-jgsw", ("staff",)), "sec.a": ("czt", ("secadmin",)),
          "sec.b": ("jgswj", ("secadmin",)), "sec.c": ("jgswj", ("secadmin",)),
          "aud.a": ("czt", ("auditor",))}


def claims_of(token: str) -> dict[str, Any]:
    body = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))


@dataclass
class World:
    services: Services
    http: httpx.AsyncClient
    clock: FrozenClock
    echo: Echo

    def token(self, who: str) -> str:
        department, roles = PEOPLE[who]
        # through their own department's system: a break-glass is the person's own
        return access_token(self.services, sub=who, department=department, roles=roles,
                            client_id=own_client(department))

    async def call(self, method: str, path: str, who: str,
                   headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
        # the tests read the English of the API's refusals
        return await self.http.request(method, path, headers={
            "Authorization": f"Bearer {self.token(who)}", "Accept-Language": "en",
            **(headers or {})}, **kw)

    async def request(self, who: str = "wang.wu", system: str = "echo",
                      minutes: int = 60, **more: Any) -> dict[str, Any]:
        r = await self.call("POST", "/api/v1/break-glass", who, json={
            "system": system, "reason": "机房故障，需紧急处理", "minutes": minutes, **more})
        assert r.status_code == 201, r.text
        return dict(r.json()["break_glass"])

    async def approve(self, bg_id: str, who: str) -> httpx.Response:
        return await self.call("POST", f"/api/v1/break-glass/{bg_id}/approve", who)

    async def active(self, **kw: Any) -> dict[str, Any]:
        bg = await self.request(**kw)
        for who in ("sec.a", "sec.b"):
            r = await self.approve(bg["id"], who)
            assert r.status_code == 200, r.text
        return dict(r.json()["break_glass"])

    def records(self, event: str) -> list[dict[str, Any]]:
        return audit_rows(self.services, event)


@pytest.fixture
async def world(services: Services, clock: FrozenClock  # noqa: F811
                ) -> AsyncIterator[World]:
    from gateway.app import create_app

    echo = Echo()
    upstream = Starlette(routes=[Mount("/vehicles", create_upstream("vehicles")),
                                 Mount("/echo", echo_app(echo))])
    sync_log = services.audit
    log = AuditLog(services.engine, keys=services.keys, writer_id="break-glass-proxy",
                   clock=lambda: clock().timestamp())
    services.audit = log
    async with Served(upstream) as served:
        origin = f"http://127.0.0.1:{served.port}"
        apply_state(services, {"systems": [
            {"code": "vehicles", "name": "公务用车", "department": "jgswj",
             "upstream": f"{origin}/vehicles"},
            {"code": "echo", "name": "回声", "department": "czt",
             "upstream": f"{origin}/echo", "identity_headers": "both"}],
            "users": [{"username": who, "name": who, "department": department,
                       "roles": list(roles), "status": "active"}
                      for who, (department, roles) in PEOPLE.items()]})
        for who in PEOPLE:  # the admins' first password must be changed before the portal
            services.org.change_password(who, "Break-Glass-Test-Passw0rd!")
        built = parts(services, proxy_config=ProxyConfig(rate=1000, burst=1000,
                                                         read_timeout=5, connect_timeout=2))
        app = create_app(built)
        async with httpx.AsyncClient(transport=AsgiTransport(app), base_url=ISSUER) as http:
            yield World(services, http, clock, echo)
        await built.proxy.aclose()
    await log.close()
    services.audit = sync_log
