"""Fixtures: the demo organisation and catalogue on a fresh database, a frozen clock
(Monday 2026-03-02 09:00 China Standard Time) and a real audit log."""

from __future__ import annotations

import json
import re
import secrets
import unicodedata
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.routing import Mount

from audit import AuditLog
from audit.tables import records
from gateway.clock import FrozenClock
from gateway.demo import DEMO_STATE
from gateway.demo.apps import create_upstream
from gateway.proxy.endpoint import ProxyConfig
from gateway.root import state_applier
from gateway.services import Services, open_services
from gateway.settings import Settings
from gateway.setup import initialise
from gateway.statefile import load_file
from tests.conftest import seeded
from tests.in_process import AsgiTransport, AsgiUpstreams
from tests.tokens import access_token
from tests.wiring import apply_state, parts

ROOT = Path(__file__).resolve().parents[2]
DEMO = DEMO_STATE
FINANCE_KEY = ROOT / "examples" / "keys" / "finance-system.jwk.json"
MONDAY = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 CST


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(MONDAY)


def _demo_state(settings: Settings) -> None:
    """The demo's state file applied on Monday MONDAY (its records' time) by
    ``catalogue-test``, the writer the tests go on with."""
    initialise(settings, password_factory=lambda: secrets.token_urlsafe(16) + "-Aa1!")
    clock = FrozenClock(MONDAY)
    svc = open_services(settings, clock=clock)
    svc.audit = AuditLog(svc.engine, keys=svc.keys, writer_id="catalogue-test",
                         clock=lambda: clock().timestamp())
    try:
        state_applier(svc).apply(load_file(DEMO))
    finally:
        svc.audit.close_sync()
        svc.close()


@pytest.fixture
def services(settings: Settings, clock: FrozenClock,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    # the demo's seven accounts at OWASP argon2 cost take half a second: not our subject
    from argon2 import PasswordHasher

    from gateway import passwords

    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=64,
                                                             parallelism=1))
    seeded(settings, "catalogue-demo", _demo_state)
    svc = open_services(settings, clock=clock)
    svc.audit = AuditLog(svc.engine, keys=svc.keys, writer_id="catalogue-test",
                         clock=lambda: clock().timestamp())
    yield svc
    parts(svc).policies.close()  # its reload thread
    svc.audit.close_sync()
    svc.close()


@dataclass
class World:
    services: Services
    http: httpx.AsyncClient
    clock: FrozenClock
    app: Any = None

    def browser(self) -> httpx.AsyncClient:
        """Another client of the same gateway, with cookies of its own."""
        return httpx.AsyncClient(transport=AsgiTransport(self.app), base_url=self.http.base_url)

    def token(self, department: str, client_id: str = "finance-system",
              sub: str | None = None, roles: tuple[str, ...] = ("staff",)) -> str:
        return access_token(self.services, sub=sub, department=department, roles=roles,
                            client_id=client_id)

    async def get(self, path: str, token: str) -> httpx.Response:
        return await self.http.get(path, headers={"Authorization": f"Bearer {token}"})

    def records(self, event: str) -> list[dict[str, Any]]:
        return audit_rows(self.services, event)


UPSTREAMS = "127.0.0.1:59998"  # the department systems' origin; nothing listens there


@pytest.fixture
async def world(services: Services, clock: FrozenClock) -> AsyncIterator[World]:
    from gateway.app import create_app

    sync_log = services.audit
    log = AuditLog(services.engine, keys=services.keys, writer_id="catalogue-proxy",
                   clock=lambda: clock().timestamp())
    services.audit = log
    upstreams = Starlette(routes=[
        *(Mount(f"/{code}", create_upstream(code)) for code in ("vehicles", "offices", "assets")),
        Mount("/cheliang", LaxPaths(create_upstream("vehicles"))),
    ])
    owners = {"vehicles": "jgswj", "offices": "jgswj", "assets": "czt", "cheliang": "jgswj"}
    apply_state(services, {"systems": [
        {"code": code, "name": code, "department": owner,
         "upstream": f"http://{UPSTREAMS}/{code}"}
        for code, owner in owners.items()
    ]})
    # in process (tests.in_process): the gateway's side of the wire is proven by
    # tests/proxy over real sockets; these are about the catalogue's decisions
    built = parts(services, proxy_config=ProxyConfig(rate=1000, burst=1000, read_timeout=5,
                                                     connect_timeout=2),
                  upstream_client=AsgiUpstreams({UPSTREAMS: upstreams}))
    app = create_app(built)
    async with httpx.AsyncClient(transport=AsgiTransport(app),
                                 base_url="http://127.0.0.1:8080") as http:
        yield World(services, http, clock, app)
    await built.proxy.aclose()
    await log.close()
    services.audit = sync_log




def lax_path(path: str) -> str:
    """``path`` as a lax department system reads it: case-insensitive (IIS, MySQL
    collations), ``;`` parameters dropped (servlet containers), trailing dots and
    white space dropped (Windows), a format suffix ignored (Rails, old Spring), a
    decoded ``?`` or ``#`` taken as the end, a trailing slash ignored."""
    path = re.split(r"[?#]", path, maxsplit=1)[0]
    segments = [re.sub(r"[.\s]+$", "", s.split(";", 1)[0]) for s in path.split("/")]
    # case as Java's equalsIgnoreCase and full-width forms as Windows' best fit read them
    out = unicodedata.normalize("NFKC", "/".join(segments)).upper().lower()
    out = out.replace("i\u0307", "i")
    out = re.sub(r"\.(json|xml|do|action)$", "", out)
    return out.rstrip("/") or "/"


class LaxPaths:
    """ASGI middleware: the app below sees every path as :func:`lax_path` reads it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            root = scope.get("root_path", "")
            below = lax_path(scope["path"][len(root):])
            scope = {**scope, "path": root + below, "raw_path": (root + below).encode()}
        await self.app(scope, receive, send)


def audit_rows(services: Services, prefix: str | tuple[str, ...] = "") -> list[dict[str, Any]]:
    with services.engine.connect() as conn:
        rows = conn.execute(sa.select(records).order_by(records.c.id)).mappings().all()
    out = []
    for r in rows:
        if r["event_type"].startswith(prefix):
            d = dict(r)
            d["items"] = json.loads(d["items"])
            d["extra"] = json.loads(d["extra"])
            out.append(d)
    return out


def finance_private_key() -> dict[str, Any]:
    return json.loads(FINANCE_KEY.read_text())


def opened_value(token: str, key: Any) -> Any:
    """The value inside an encrypted item's JWE opened with ``key``: the ``v`` of the
    gateway's JWS it holds (the signature is checked by ``govgate_upstream.open_item``,
    tests/proxy/test_encrypted_items.py), or the bare JSON of an unsigned one."""
    from joserfc import jwe, jws

    opened = jwe.decrypt_compact(token, key)
    if opened.protected.get("cty") != "JWT":
        return json.loads(opened.plaintext or b"")
    return json.loads(jws.extract_compact(opened.plaintext or b"").payload)["v"]
