"""The demo's upstream systems: small real Starlette apps, each on its own port.

They stand for systems departments already run. Each serves JSON under /api/...,
a landing page at / and /healthz. They trust nothing but the gateway: the
identity the gateway asserts arrives in ``X-Govgate-Assertion``. A system given an
OpenID Connect client (``sso``) also signs users in directly: /login and /callback
(``gateway.demo.sso``); one given a CAS service (``cas``) does it by CAS: /cas/login
and /cas/callback (``gateway.demo.cas``).
"""

from __future__ import annotations

import html
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from gateway.demo.cas import CasClient, cas_routes
from gateway.demo.data import ASSETS, ROOMS, VEHICLES
from gateway.demo.sso import SsoClient, sso_routes

SYSTEMS: dict[str, dict[str, Any]] = {
    "vehicles": {
        "title": "公务用车管理平台",
        "collection": "vehicles",
        "key": "plate_number",
        "records": VEHICLES,
    },
    "offices": {
        "title": "办公用房管理系统",
        "collection": "rooms",
        "key": "room_id",
        "records": ROOMS,
    },
    "assets": {
        "title": "资产管理系统",
        "collection": "assets",
        "key": "asset_code",
        "records": ASSETS,
    },
}


def create_upstream(code: str, sso: SsoClient | None = None, cas: CasClient | None = None
                    ) -> Starlette:
    spec = SYSTEMS[code]
    collection, key, records = spec["collection"], spec["key"], spec["records"]

    async def index(request: Request) -> Response:
        user = "（未经网关）" if "x-govgate-assertion" not in request.headers else "经 govgate 访问"
        if sso is not None:
            user += " · <a href='/login' id='sso-login'>通过统一身份认证登录</a>"
        if cas is not None:
            user += " · <a href='/cas/login' id='cas-login'>通过 CAS 统一身份认证登录</a>"
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r.values()) + "</tr>"
            for r in records
        )
        return HTMLResponse(
            f"<!doctype html><html lang='zh-CN'><meta charset='utf-8'>"
            f"<title>{spec['title']}</title><h1>{spec['title']}</h1><p>{user}</p>"
            f"<table border='1'>{rows}</table></html>"
        )

    async def list_records(request: Request) -> Response:
        return JSONResponse({"items": records, "total": len(records)})

    async def one_record(request: Request) -> Response:
        wanted = request.path_params["key"]
        for r in records:
            if str(r[key]) == wanted:
                return JSONResponse(r)
        return JSONResponse({"error": "not found"}, status_code=404)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "system": code})

    return Starlette(
        routes=[
            Route("/", index),
            Route("/healthz", healthz),
            Route(f"/api/{collection}", list_records),
            Route(f"/api/{collection}/{{key}}", one_record),
            *(sso_routes(sso, spec["title"]) if sso is not None else []),
            *(cas_routes(cas, spec["title"]) if cas is not None else []),
        ]
    )
