"""A world for token exchange (RFC 8693): the demo organisation and catalogue, the
gateway in process, and the department systems as real HTTP servers on sockets.

    vehicles  jgswj's system with the catalogue resource JG-0001 (conditional);
              czt holds the demo's grant (plate_number, brand, driver_name,
              driver_phone), nn-jgsw gets one here (plate_number, mileage_km,
              driver_name), jgj none
    echo      nn-jgsw's system without catalogue resources: policy lines decide; both
              fin-portal and zhao.min may GET /shared/*, only fin-portal /system/*,
              only zhao.min /mine/*
    clients   fin-portal (czt, may exchange), nn-portal (nn-jgsw, may exchange),
              jgj-portal (jgj, may exchange), plain-portal (czt, may not)
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from audit import AuditLog
from gateway.clock import FrozenClock
from gateway.demo.apps import create_upstream
from gateway.idp.oauth2.rfc8693 import ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE
from gateway.proxy.endpoint import ProxyConfig
from gateway.services import Services
from tests.catalogue.conftest import audit_rows, clock, services  # noqa: F401 (fixtures)
from tests.in_process import AsgiTransport
from tests.proxy.conftest import Echo, Served, echo_app
from tests.tokens import access_token
from tests.wiring import apply_state, parts

SECRET = "exchange-test-secret-0123456789abcdef"
ISSUER = "http://127.0.0.1:8080"


def _client(cid: str, department: str, *, exchange: bool = True) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "client_id": cid, "name": cid, "department": department,
        "grant_types": ["client_credentials"], "scope": "proxy", "secret": SECRET}
    if exchange:
        entry["token_exchange"] = True
    return entry


def claims_of(token: str | bytes) -> dict[str, Any]:
    """The claims of a JWT, unverified (what a test looks at)."""
    raw = token.encode() if isinstance(token, str) else token
    body = raw.split(b".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(body + b"=" * (-len(body) % 4))))


@dataclass
class Seen:
    """The identity assertions the department systems received."""

    assertions: list[dict[str, Any]] = field(default_factory=list)


def recording(app: Any, seen: Seen) -> Any:
    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            for k, v in scope["headers"]:
                if k == b"x-govgate-assertion":
                    seen.assertions.append(claims_of(v))
        await app(scope, receive, send)
    return asgi


@dataclass
class World:
    services: Services
    http: httpx.AsyncClient
    seen: Seen

    def user_token(self, sub: str, department: str, *, client_id: str = "fin-portal",
                   roles: tuple[str, ...] = ("staff",), scope: str = "openid proxy",
                   **claims: Any) -> str:
        """A user's access token as the gateway issues it to ``client_id``."""
        return access_token(self.services, sub=sub, department=department, roles=roles,
                            client_id=client_id, scope=scope, **claims)

    async def exchange(self, subject_token: str, *, client: str = "fin-portal",
                       audience: str | None = "vehicles", headers_dpop: str | None = None,
                       **extra: str) -> httpx.Response:
        form = {"grant_type": TOKEN_EXCHANGE, "subject_token": subject_token,
                "subject_token_type": ACCESS_TOKEN_TYPE, **extra}
        if audience is not None:
            form["audience"] = audience
        headers = {"DPoP": headers_dpop} if headers_dpop is not None else {}
        return await self.http.post("/oauth2/token", data=form, auth=(client, SECRET),
                                    headers=headers)

    async def delegated(self, sub: str, department: str, *, client: str = "fin-portal",
                        audience: str = "vehicles") -> str:
        r = await self.exchange(self.user_token(sub, department, client_id=client),
                                client=client, audience=audience)
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])

    async def get(self, path: str, token: str) -> httpx.Response:
        return await self.http.get(path, headers={"Authorization": f"Bearer {token}"})

    def records(self, event: str) -> list[dict[str, Any]]:
        return audit_rows(self.services, event)


@pytest.fixture
async def world(services: Services, clock: FrozenClock  # noqa: F811
                ) -> AsyncIterator[World]:
    from gateway.app import create_app

    seen = Seen()
    upstream = Starlette(routes=[
        Mount("/vehicles", recording(create_upstream("vehicles"), seen)),
        Mount("/echo", recording(echo_app(Echo()), seen)),
    ])
    sync_log = services.audit
    log = AuditLog(services.engine, keys=services.keys, writer_id="exchange-proxy",
                   clock=lambda: clock().timestamp())
    services.audit = log
    async with Served(upstream) as served:
        origin = f"http://127.0.0.1:{served.port}"
        apply_state(services, {
            "departments": [{"code": "jgj", "name": "机关局", "region": "gx"}],
            "systems": [
                {"code": "vehicles", "name": "公务用车", "department": "jgswj",
                 "upstream": f"{origin}/vehicles"},
                {"code": "echo", "name": "回声", "department": "nn-jgsw",
                 "upstream": f"{origin}/echo"}],
            "clients": [_client("fin-portal", "czt"), _client("nn-portal", "nn-jgsw"),
                        _client("jgj-portal", "jgj"),
                        _client("plain-portal", "czt", exchange=False)],
            "grants": [{"resource": "JG-0001", "consumer": "nn-jgsw",
                        "items": ["plate_number", "mileage_km", "driver_name"],
                        "purpose": "车辆调度", "until": "2027-12-31"}],
            "policies": [
                {"subject": "client:fin-portal", "department": "czt",
                 "object": "/s/echo/shared/*", "action": "GET"},
                {"subject": "client:fin-portal", "department": "czt",
                 "object": "/s/echo/system/*", "action": "GET"},
                {"subject": "user:zhao.min", "department": "czt",
                 "object": "/s/echo/shared/*", "action": "GET"},
                {"subject": "user:zhao.min", "department": "czt",
                 "object": "/s/echo/mine/*", "action": "GET"}],
        })
        built = parts(services, proxy_config=ProxyConfig(rate=1000, burst=1000,
                                                         read_timeout=5, connect_timeout=2))
        app = create_app(built)
        async with httpx.AsyncClient(transport=AsgiTransport(app),
                                     base_url=ISSUER) as http:
            yield World(services, http, seen)
        await built.proxy.aclose()
    await log.close()
    services.audit = sync_log
