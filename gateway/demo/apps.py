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
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from gateway.demo.cas import CasClient, cas_routes
from gateway.demo.data import ASSETS, ROOMS, VEHICLES
from gateway.demo.language import ICON, cell, field, html_lang, lang_of, say
from gateway.demo.sso import SsoClient, sso_routes

SYSTEMS: dict[str, dict[str, Any]] = {
    "vehicles": {
        "collection": "vehicles",
        "key": "plate_number",
        "records": VEHICLES,
    },
    "offices": {
        "collection": "rooms",
        "key": "room_id",
        "records": ROOMS,
    },
    "assets": {
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
        lang = lang_of(request)
        title = html.escape(say(code, lang))
        user = say("through" if "x-govgate-assertion" in request.headers else "direct", lang)
        # signing in starts at the system's own address (its client's redirect URI, its
        # CAS service), also when this page came through the gateway's /s/
        if sso is not None:
            user += (f" · <a href='{_origin(sso.redirect_uri)}/login?lang={lang}' "
                     f"id='sso-login'>{say('sso_link', lang)}</a>")
        if cas is not None:
            user += (f" · <a href='{_origin(cas.service)}/cas/login?lang={lang}' "
                     f"id='cas-login'>{say('cas_link', lang)}</a>")
        other = "zh" if lang == "en" else "en"
        head = "".join(f"<th scope='col'>{html.escape(field(k, lang))}</th>"
                       for k in (records[0] if records else {}))
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(cell(v, lang))}</td>" for v in r.values()) + "</tr>"
            for r in records
        )
        return HTMLResponse(
            f"<!doctype html><html lang='{html_lang(lang)}'><meta charset='utf-8'>"
            f"<title>{title}</title><h1>{title}</h1><p>{user}</p>"
            f"<p><a href='?lang={other}' id='lang' lang='{html_lang(other)}'>"
            f"{say('other_lang', lang)}</a></p>"
            f"<table border='1'><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
            "</html>"
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

    async def favicon(request: Request) -> Response:
        return Response(ICON, media_type="image/svg+xml")

    return Starlette(
        routes=[
            Route("/", index),
            Route("/healthz", healthz),
            Route("/favicon.ico", favicon),
            Route(f"/api/{collection}", list_records),
            Route(f"/api/{collection}/{{key}}", one_record),
            *(sso_routes(sso, code) if sso is not None else []),
            *(cas_routes(cas, code) if cas is not None else []),
        ]
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
