"""Single sign-on into a demo system by CAS: the smallest CAS client.

    GET  /cas/login      → 302 to the gateway's /cas/login?service=<this system's /cas/callback>
    GET  /cas/callback   ?ticket=ST-...: validated at the gateway's /cas/p3/serviceValidate;
                         the user and the attributes it released (已通过 CAS 统一身份认证登录)
    POST /cas/callback   the gateway's single-logout notice (a real client would end the
                         session the ticket opened; the demo keeps none)

The page's language rides in the service URL (``/cas/callback?lang=en``), as a CAS
client keeps where the user was going: the ticket is validated for that same URL,
which the demo's ``cas_services`` allows (``.../cas/*`` after the plain callback).
The demo gives the 资产管理系统 the service URL ``/cas/callback`` (its ``cas_services``
in demo.yaml), so the portal launcher opens it with one click and no second sign-in.
A real system would use its framework's CAS client (Java CAS client, phpCAS,
django-cas-ng, python-cas).
"""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.demo.language import LANGS, lang_of, onward, page, person, say

NS = "{http://www.yale.edu/tp/cas}"


@dataclass(frozen=True)
class CasClient:
    gateway: str  # the gateway's address, http://127.0.0.1:8080
    service: str  # this system's /cas/callback, as registered in cas_services


def service_for(client: CasClient, request: Request) -> str:
    """The service URL a ticket is asked and validated for: the plain callback, or the
    callback with the ``lang`` the request was told (by the portal's launcher, or this
    system's own sign-in link): a ticket is valid only for the URL it was issued to."""
    told = request.query_params.get("lang")
    return f"{client.service}?{urlencode({'lang': told})}" if told in LANGS else client.service


def cas_routes(client: CasClient, code: str) -> list[BaseRoute]:
    """``code``: the system's, whose name the pages carry."""

    async def login(request: Request) -> Response:
        service = service_for(client, request)
        return RedirectResponse(f"{client.gateway}/cas/login?"
                                + urlencode({"service": service}), status_code=302)

    async def callback(request: Request) -> Response:
        lang = lang_of(request)
        ticket = request.query_params.get("ticket")
        if not ticket:
            return await login(request)
        async with httpx.AsyncClient(timeout=10) as http:
            answer = await http.get(f"{client.gateway}/cas/p3/serviceValidate",
                                    params={"service": service_for(client, request),
                                            "ticket": ticket})
        try:
            # the gateway's own answer over loopback, not a document from the browser
            root = ET.fromstring(answer.content)  # noqa: S314
        except ET.ParseError:
            root = None
        success = root.find(f"{NS}authenticationSuccess") if root is not None else None
        if answer.status_code != 200 or success is None:
            return page(code, lang, f"{say('cas_refused', lang)} <a href='/cas/login?lang="
                                     f"{lang}'>{say('sign_in_again', lang)}</a>", 403)
        user = success.findtext(f"{NS}user") or ""
        name = success.findtext(f"{NS}attributes/{NS}name") or ""
        department = success.findtext(f"{NS}attributes/{NS}department") or ""
        who = person(lang, name, user, department)
        return page(code, lang, "<span id='signed-in'>"
                     + say("cas_signed_in", lang, who=html.escape(who)) + "</span>"
                     + onward(client.gateway, lang))

    async def logout_notice(request: Request) -> Response:
        return Response("ok", media_type="text/plain")

    return [Route("/cas/login", login), Route("/cas/callback", callback, methods=["GET"]),
            Route("/cas/callback", logout_notice, methods=["POST"])]

