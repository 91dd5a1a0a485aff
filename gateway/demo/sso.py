"""Single sign-on into a demo system: the smallest OpenID Connect relying party.

    GET /login      → 302 to the gateway's /oauth2/authorize (code flow, state, PKCE S256)
    GET /callback   the code exchanged at /oauth2/token with the client's secret, the
                    user read from /oauth2/userinfo: "已通过统一身份认证登录：张三"

The demo gives the 办公用房管理系统 its client ``office-web``; a real system would
use its framework's OIDC library, verify the ID token and keep a session.
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
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

STATE_COOKIE = "demo_sso"


@dataclass(frozen=True)
class SsoClient:
    gateway: str  # the gateway's address, http://127.0.0.1:8080
    client_id: str
    secret: str
    redirect_uri: str  # this system's /callback, as registered for the client


def sso_routes(client: SsoClient, title: str) -> list[BaseRoute]:
    async def login(request: Request) -> Response:
        state, verifier = secrets.token_urlsafe(16), secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(
            hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        response = RedirectResponse(f"{client.gateway}/oauth2/authorize?" + urlencode({
            "response_type": "code", "client_id": client.client_id,
            "redirect_uri": client.redirect_uri, "scope": "openid profile", "state": state,
            "nonce": secrets.token_urlsafe(16), "code_challenge": challenge,
            "code_challenge_method": "S256"}), status_code=302)
        response.set_cookie(STATE_COOKIE, f"{state}.{verifier}", httponly=True,
                            samesite="lax", max_age=600, path="/callback")
        return response

    async def callback(request: Request) -> Response:
        state, _, verifier = request.cookies.get(STATE_COOKIE, "").partition(".")
        code = request.query_params.get("code")
        if not code or not state or not secrets.compare_digest(
                state, request.query_params.get("state", "")):
            return _page(title, "登录失败：请求已过期或不完整。<a href='/login'>重新登录</a>", 400)
        async with httpx.AsyncClient(timeout=10) as http:
            token = await http.post(f"{client.gateway}/oauth2/token", data={
                "grant_type": "authorization_code", "code": code,
                "redirect_uri": client.redirect_uri, "code_verifier": verifier},
                auth=(client.client_id, client.secret))
            if token.status_code != 200:
                return _page(title, f"登录失败：网关拒绝了授权码（{token.status_code}）。", 502)
            info = await http.get(f"{client.gateway}/oauth2/userinfo", headers={
                "Authorization": f"Bearer {token.json()['access_token']}"})
        if info.status_code != 200:
            return _page(title, f"登录失败：无法读取用户信息（{info.status_code}）。", 502)
        user = info.json()
        who = f"{user.get('name') or ''}（{user.get('preferred_username') or user['sub']}）"
        response = _page(title, f"<span id='signed-in'>已通过统一身份认证登录：{html.escape(who)}"
                                f"</span><br>Signed in through govgate single sign-on.")
        response.delete_cookie(STATE_COOKIE, path="/callback")
        return response

    return [Route("/login", login), Route("/callback", callback)]


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(f"<!doctype html><html lang='zh-CN'><meta charset='utf-8'>"
                        f"<title>{title}</title><h1>{title}</h1><p>{body}</p></html>",
                        status_code=status)
