"""委托 × catalogue shaping: B acting for A on a governed route (the demo catalogue's
JG-0001, ``GET /api/vehicles`` of jgswj's vehicle system, granted to czt in part) is
released exactly A's items, never more, and forward-auth still refuses the shaped
resource (403 ``shaping_required``), acting or not."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest

from audit import AuditLog
from gateway.app import create_app
from gateway.clock import FrozenClock
from gateway.demo.apps import create_upstream
from gateway.idp.oauth2.provider import SESSION_COOKIE
from gateway.proxy.acting import choice
from gateway.proxy.endpoint import ProxyConfig
from gateway.root import Gateway
from gateway.services import Services
from tests.catalogue.conftest import clock, services  # noqa: F401 (fixtures)
from tests.in_process import AsgiTransport
from tests.proxy.conftest import Served
from tests.wiring import apply_state, parts

CZT = {"cz.a": ["staff"], "cz.b": ["staff"], "cz.head": ["staff", "dept_head"]}


@dataclass
class Desk:
    services: Services
    built: Gateway
    http: httpx.AsyncClient

    def cookie(self, who: str, acting: int | None = None) -> dict[str, str]:
        value, row = self.built.provider.store.create_session(
            who, "active", amr="pwd", absolute_seconds=86400)
        out = f"{SESSION_COOKIE}={value}"
        if acting is not None:
            out += f"; gg_act={choice(self.services.keys, row.sid, acting)}"
        return {"Cookie": out}

    async def api(self, who: str, path: str, body: dict[str, Any]) -> Any:
        r = await self.http.post("/api/v1/delegations" + path, json=body,
                                 headers=self.cookie(who))
        assert r.status_code in (200, 201), r.text
        return r.json()


@pytest.fixture
async def desk(services: Services, clock: FrozenClock  # noqa: F811
               ) -> AsyncIterator[Desk]:
    sync_log = services.audit
    log = AuditLog(services.engine, keys=services.keys, writer_id="seams-catalogue",
                   clock=lambda: clock().timestamp())
    services.audit = log
    async with Served(create_upstream("vehicles")) as served:
        apply_state(services, {
            "systems": [{"code": "vehicles", "name": "公务用车", "department": "jgswj",
                         "upstream": f"http://127.0.0.1:{served.port}",
                         "assertion": "per_caller"}],
            "users": [{"username": u, "name": u, "department": "czt", "roles": r,
                       "status": "active"} for u, r in CZT.items()],
            "policies": [{"subject": "role:staff", "department": "czt",
                          "object": "/s/vehicles/*", "action": "GET", "ungoverned": True,
                          "reason": "czt reads the vehicles for cost accounting"}]})
        for who in CZT:  # a first password must be changed before the portal
            services.org.change_password(who, "Seams-Test-Passw0rd!")
        built = parts(services, proxy_config=ProxyConfig(rate=1000, burst=1000,
                                                         read_timeout=5, connect_timeout=2))
        async with httpx.AsyncClient(transport=AsgiTransport(create_app(built)),
                                     base_url="http://127.0.0.1:8080") as http:
            yield Desk(services, built, http)
        await built.proxy.aclose()
    await log.close()
    services.audit = sync_log


def fields(r: httpx.Response) -> set[str]:
    assert r.status_code == 200, r.text
    return {k for item in r.json()["items"] for k in item}


async def test_acting_releases_a_s_items_only_and_forward_auth_still_refuses(
        desk: Desk) -> None:
    ends = (desk.services.clock() + timedelta(days=2)).isoformat()
    made = await desk.api("cz.a", "", {"delegate": "cz.b", "systems": ["vehicles"],
                                       "roles": [], "ends_at": ends, "reason": "出差代办"})
    number = int(made["delegation"]["id"])
    await desk.api("cz.head", f"/{number}/approve", {})

    own = fields(await desk.http.get("/s/vehicles/api/vehicles", headers=desk.cookie("cz.a")))
    acting = desk.cookie("cz.b", acting=number)
    for _ in range(2):  # per_caller: reused the second time, the same shaping
        got = fields(await desk.http.get("/s/vehicles/api/vehicles", headers=acting))
        assert got == own, (got, own)
    # czt's grant, less the encrypted phone (no key registered for a portal session)
    assert own == {"plate_number", "brand", "driver_name"}
    for headers in (acting, desk.cookie("cz.a")):
        r = await desk.http.get("/auth/verify", headers={
            **headers, "X-Original-URI": "/s/vehicles/api/vehicles",
            "X-Original-Method": "GET"})
        assert r.status_code == 403, r.text
        assert json.loads(r.text)["type"].endswith("shaping_required")
    # an ungoverned path of the delegated system: forward-auth admits B for A
    r = await desk.http.get("/auth/verify", headers={
        **acting, "X-Original-URI": "/s/vehicles/healthz", "X-Original-Method": "GET"})
    assert r.status_code == 200 and r.headers["x-govgate-acting-user"] == "cz.b"
