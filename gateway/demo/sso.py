"""Single sign-on into a demo system: the smallest OpenID Connect relying party.

    GET /login      → 302 to the gateway's /oauth2/authorize (code flow, state, PKCE S256,
                    ``ui_locales`` the page's language)
    GET /callback   the code exchanged at /oauth2/token with the client's secret, the
                    user read from /oauth2/userinfo: "已通过统一身份认证登录：张三"

``?lang=en`` on /login (the system's page links it so) rides in the state cookie to
the callback's page, as a real client keeps where the user came from
(gateway.demo.language). The demo gives the 办公用房管理系统 its client
``office-web``; a real system would use its framework's OIDC library, verify the ID
token and keep a session.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.demo.language import LANGS, lang_of, onward, page, person, say

STATE_COOKIE = "demo_sso"
UI_LOCALES = {"zh": "zh-CN", "en": "en"}


@dataclass(frozen=True)
class SsoClient:
    gateway: str  # the gateway's address, http://127.0.0.1:8080
    client_id: str
    secret: str
    redirect_uri: str  # this system's /callback, as registered for the client


def sso_routes(client: SsoClient, code: str) -> list[BaseRoute]:
    """``code``: the system's, whose name the pages carry."""

    async def login(request: Request) -> Response:
        lang = lang_of(request)
        state, verifier = secrets.token_urlsafe(16), secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(
            hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        response = RedirectResponse(f"{client.gateway}/oauth2/authorize?" + urlencode({
            "response_type": "code", "client_id": client.client_id,
            "redirect_uri": client.redirect_uri, "scope": "openid profile", "state": state,
            "nonce": secrets.token_urlsafe(16), "code_challenge": challenge,
            "code_challenge_method": "S256", "ui_locales": UI_LOCALES[lang]}),
            status_code=302)
        response.set_cookie(STATE_COOKIE, f"{state}.{verifier}.{lang}", httponly=True,
                            samesite="lax", max_age=600, path="/callback")
        return response

    async def callback(request: Request) -> Response:
        state, _, rest = request.cookies.get(STATE_COOKIE, "").partition(".")
        verifier, _, lang = rest.partition(".")
        lang = lang if lang in LANGS else lang_of(request)
        code_ = request.query_params.get("code")
        if not code_ or not state or not secrets.compare_digest(
                state, request.query_params.get("state", "")):
            return page(code, lang, f"{say('sso_expired', lang)} <a href='/login?lang={lang}'>"
                                     f"{say('sign_in_again', lang)}</a>", 400)
        async with httpx.AsyncClient(timeout=10) as http:
            token = await http.post(f"{client.gateway}/oauth2/token", data={
                "grant_type": "authorization_code", "code": code_,
                "redirect_uri": client.redirect_uri, "code_verifier": verifier},
                auth=(client.client_id, client.secret))
            if token.status_code != 200:
                return page(code, lang, say("sso_code_refused", lang,
                                             status=token.status_code), 502)
            info = await http.get(f"{client.gateway}/oauth2/userinfo", headers={
                "Authorization": f"Bearer {token.json()['access_token']}"})
        if info.status_code != 200:
            return page(code, lang, say("sso_no_userinfo", lang, status=info.status_code), 502)
        user = info.json()
        who = person(lang, user.get("name") or "", user.get("preferred_username") or user["sub"])
        response = page(code, lang, "<span id='signed-in'>"
                         + say("sso_signed_in", lang, who=html.escape(who)) + "</span>"
                         + onward(client.gateway, lang))
        response.delete_cookie(STATE_COOKIE, path="/callback")
        return response

    return [Route("/login", login), Route("/callback", callback)]

