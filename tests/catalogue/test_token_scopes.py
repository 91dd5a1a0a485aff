"""Who a token speaks for: a relying party's sign-in token (``openid profile``) does not
act for its user on ``/s/`` or ``/api/v1``; the gateway's scopes (``gateway.idp.scopes``),
registered per client, open each surface, and the token's ``aud`` names what they
open. Real tokens from the running gateway's endpoints, the demo's real upstreams."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx

from gateway.statefile import export_state
from tests.catalogue.conftest import World
from tests.oauth2.helpers import DEMO_PASSWORD, FINANCE, OFFICE, OFFICE_CB, pkce
from tests.wiring import apply_state

WANG_APPLIES = {"resource": "JG-0001", "items": ["plate_number"], "purpose": "车辆统计",
                "until": "2026-12-31", "basis": "统计制度"}


def claims_of(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


async def sign_in_token(world: World, scope: str, username: str = "zhang.san",
                        granted: str | None = None) -> str:
    """office-web's access token for ``username`` by the authorization-code flow."""
    async with world.browser() as browser:
        page = await browser.get("/portal/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf is not None
        r = await browser.post("/portal/login", data={
            "csrf_token": csrf.group(1), "username": username, "password": DEMO_PASSWORD,
            "next": "/portal"})
        assert r.status_code in (302, 303), r.text
        verifier, challenge = pkce()  # office-web requires PKCE (the demo's state)
        r = await browser.get("/oauth2/authorize", params={
            "response_type": "code", "client_id": OFFICE[0], "redirect_uri": OFFICE_CB,
            "scope": scope, "state": "s", "nonce": "n", "code_challenge": challenge,
            "code_challenge_method": "S256"})
        assert r.status_code == 302, r.text
        query = parse_qs(urlparse(r.headers["location"]).query)
        assert "code" in query, r.headers["location"]
        r = await browser.post("/oauth2/token", auth=OFFICE, data={
            "grant_type": "authorization_code", "code": query["code"][0],
            "redirect_uri": OFFICE_CB, "code_verifier": verifier})
        assert r.status_code == 200, r.text
        assert r.json()["scope"] == (scope if granted is None else granted)
        return str(r.json()["access_token"])


async def client_token(world: World, scope: str | None = None) -> dict[str, Any]:
    data = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    r = await world.http.post("/oauth2/token", auth=FINANCE, data=data)
    return dict(r.json())


def insufficient(r: httpx.Response, scope: str) -> bool:
    return (r.status_code == 403
            and r.json()["type"] == "urn:govgate:error:insufficient_scope"
            and f'scope="{scope}"' in r.headers["www-authenticate"]
            and 'error="insufficient_scope"' in r.headers["www-authenticate"])


async def test_a_sign_in_token_acts_nowhere_but_userinfo(world: World) -> None:
    wang = world.token("nn-jgsw", "nn-client", sub="wang.wu")
    applied = await world.http.post("/api/v1/catalogue/applications", json=WANG_APPLIES,
                                    headers={"Authorization": f"Bearer {wang}"})
    assert applied.status_code == 201
    approve = f"/api/v1/catalogue/applications/{applied.json()['application']['id']}/approve"

    token = await sign_in_token(world, "openid profile")
    assert claims_of(token)["aud"] == world.services.settings.issuer
    bearer = {"Authorization": f"Bearer {token}"}
    assert insufficient(await world.http.post(approve, json={}, headers=bearer),
                        "catalogue:write")
    assert insufficient(await world.http.get("/api/v1/catalogue/allowed", headers=bearer),
                        "catalogue:read")
    assert insufficient(await world.http.get("/s/offices/api/rooms", headers=bearer),
                        "proxy:offices")
    assert insufficient(await world.http.get("/auth/verify", headers={
        **bearer, "X-Original-URI": "/s/offices/api/rooms", "X-Original-Method": "GET"}),
        "proxy:offices")
    refused = world.records("proxy_request")[-1]
    assert refused["actor_client"] == "office-web" and refused["actor_user"] == "zhang.san"
    assert "lacks the scope proxy:offices" in refused["reason"]
    # what it is for still works
    assert (await world.http.get("/oauth2/userinfo", headers=bearer)).status_code == 200


async def test_registered_scopes_open_their_surface_and_name_the_client(world: World) -> None:
    # a sign-in token (a client not registered for proxy:offices is refused it at the
    # authorization endpoint: tests/oauth2/test_bad_input.py)
    token = await sign_in_token(world, "openid profile")
    assert insufficient(await world.http.get("/s/offices/api/rooms", headers={
        "Authorization": f"Bearer {token}"}), "proxy:offices")
    apply_state(world.services, {"clients": [{
        "client_id": "office-web", "name": "办公用房管理系统", "department": "jgswj",
        "grant_types": ["authorization_code", "refresh_token"],
        "secret": OFFICE[1], "redirect_uris": [OFFICE_CB],
        "scope": "openid profile proxy:offices catalogue:write"}]})
    await asyncio.sleep(1.1)  # a client change reaches the token endpoint within a second
    wang = world.token("nn-jgsw", "nn-client", sub="wang.wu")
    applied = await world.http.post("/api/v1/catalogue/applications", json=WANG_APPLIES,
                                    headers={"Authorization": f"Bearer {wang}"})
    approve = f"/api/v1/catalogue/applications/{applied.json()['application']['id']}/approve"

    token = await sign_in_token(world, "openid profile proxy:offices catalogue:write")
    issuer = world.services.settings.issuer
    assert claims_of(token)["aud"] == [issuer, f"{issuer}/api/v1/catalogue",
                                       f"{issuer}/s/offices"]
    bearer = {"Authorization": f"Bearer {token}"}
    rooms = await world.http.get("/s/offices/api/rooms", headers=bearer)
    assert rooms.status_code == 200 and rooms.json()["items"]
    assert insufficient(await world.http.get("/s/vehicles/api/vehicles", headers=bearer),
                        "proxy:vehicles")
    r = await world.http.post(approve, json={}, headers=bearer)
    assert r.status_code == 201, r.text
    approved = [rec for rec in world.records("") if rec["event_type"].endswith("approved")]
    assert approved, [rec["event_type"] for rec in world.records("")]
    assert approved[-1]["actor_user"] == "zhang.san"
    assert approved[-1]["actor_client"] == "office-web"


async def test_a_system_gets_its_registered_scopes_and_may_narrow_them(world: World) -> None:
    issued = await client_token(world)  # the demo registers "proxy catalogue:read"
    assert issued["scope"] == "proxy catalogue:read"
    issuer = world.services.settings.issuer
    assert claims_of(issued["access_token"])["aud"] == [
        issuer, f"{issuer}/api/v1/catalogue", f"{issuer}/s/"]
    bearer = {"Authorization": f"Bearer {issued['access_token']}"}
    assert (await world.http.get("/s/vehicles/api/vehicles", headers=bearer)).status_code == 200
    assert (await world.http.get("/api/v1/catalogue/allowed", headers=bearer)
            ).status_code == 200
    assert insufficient(await world.http.post("/api/v1/catalogue/applications",
                                              json=WANG_APPLIES, headers=bearer),
                        "catalogue:write")
    # "proxy" covers one system's scope: a narrower token
    narrow = await client_token(world, "proxy:vehicles")
    assert narrow["scope"] == "proxy:vehicles"
    bearer = {"Authorization": f"Bearer {narrow['access_token']}"}
    assert (await world.http.get("/s/vehicles/api/vehicles", headers=bearer)).status_code == 200
    assert insufficient(await world.http.get("/s/offices/api/rooms", headers=bearer),
                        "proxy:offices")
    # never wider than registered: what it is not registered for is refused, named
    wider = await world.http.post("/oauth2/token", auth=FINANCE, data={
        "grant_type": "client_credentials", "scope": "proxy audit:read"})
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    assert wider.json()["error_description"].endswith(": audit:read")


async def test_a_client_registered_from_the_cli_gets_only_its_scopes(
        world: World, env: dict[str, str]) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "client", "add", "rooms-sync", "--name", "房间同步",
         "--department", "czt", "--grant-type", "client_credentials",
         "--scope", "proxy:offices catalogue:read"],
        env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    secret = done.stdout.strip().rsplit(" ", 1)[-1]
    await asyncio.sleep(1.1)  # a client change reaches the token endpoint within a second
    r = await world.http.post("/oauth2/token", auth=("rooms-sync", secret),
                              data={"grant_type": "client_credentials"})
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "proxy:offices catalogue:read"
    bearer = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert (await world.http.get("/s/offices/api/rooms", headers=bearer)).status_code == 200
    assert insufficient(await world.http.get("/s/vehicles/api/vehicles", headers=bearer),
                        "proxy:vehicles")


async def test_a_client_token_speaks_for_the_clients_current_registration(world: World) -> None:
    token = (await client_token(world))["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await world.http.get("/s/vehicles/api/vehicles", headers=bearer)).status_code == 200
    finance = next(c for c in export_state(world.services.engine)["clients"]
                   if c["client_id"] == "finance-system")
    apply_state(world.services, {"clients": [
        {**finance, "department": "nn-jgsw", "scope": "proxy"}]})
    r = await world.http.get("/s/vehicles/api/vehicles", headers=bearer)
    assert r.status_code == 403  # nn-jgsw has no grant; czt's no longer applies
    rec = world.records("proxy_request")[-1]
    assert rec["department"] == "nn-jgsw" and "no grant for department nn-jgsw" in rec["reason"]
    assert insufficient(await world.http.get("/api/v1/catalogue/allowed", headers=bearer),
                        "catalogue:read")


async def test_asking_a_refresh_for_more_scope_does_not_burn_the_token(world: World) -> None:
    async with world.browser() as browser:
        page = await browser.get("/portal/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf is not None
        await browser.post("/portal/login", data={
            "csrf_token": csrf.group(1), "username": "zhang.san", "password": DEMO_PASSWORD,
            "next": "/portal"})
        verifier, challenge = pkce()
        r = await browser.get("/oauth2/authorize", params={
            "response_type": "code", "client_id": OFFICE[0], "redirect_uri": OFFICE_CB,
            "scope": "openid profile", "state": "s", "code_challenge": challenge,
            "code_challenge_method": "S256"})
        code = parse_qs(urlparse(r.headers["location"]).query)["code"][0]
        issued = (await browser.post("/oauth2/token", auth=OFFICE, data={
            "grant_type": "authorization_code", "code": code,
            "redirect_uri": OFFICE_CB, "code_verifier": verifier})).json()
    more = await world.http.post("/oauth2/token", auth=OFFICE, data={
        "grant_type": "refresh_token", "refresh_token": issued["refresh_token"],
        "scope": "openid profile proxy"})
    assert more.status_code == 400 and more.json()["error"] == "invalid_scope"
    again = await world.http.post("/oauth2/token", auth=OFFICE, data={
        "grant_type": "refresh_token", "refresh_token": issued["refresh_token"]})
    assert again.status_code == 200, again.text  # still good, family not revoked
    fewer = await world.http.post("/oauth2/token", auth=OFFICE, data={
        "grant_type": "refresh_token", "refresh_token": again.json()["refresh_token"],
        "scope": "openid"})
    assert fewer.status_code == 200 and fewer.json()["scope"] == "openid"


async def test_a_proxy_scope_must_name_a_system(world: World) -> None:
    for junk in ("proxy:", "proxy:*", "proxy:ASSETS", "proxy:vehicles/../assets"):
        r = await world.http.post("/oauth2/token", auth=FINANCE, data={
            "grant_type": "client_credentials", "scope": f"{junk} catalogue:read"})
        assert r.status_code == 400 and r.json()["error"] == "invalid_scope", junk
        assert r.json()["error_description"].endswith(f": {junk}") and "access_token" \
            not in r.json()
