"""A catalogue grant that names a client, attacked by changing the client under it
(docs/seams.md, "Attack of 2026-12-05 (clients that change under their grants)"):
tokens issued before the change, the change made by ``govgate apply`` or the admin
API (another process's write: this gateway learns of it only through its client
registry's second), through the proxy in front of the demo's upstream, with the
system's assertion per request and per caller."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
import yaml
from click.testing import CliRunner
from joserfc import jwe
from joserfc.jwk import ECKey

from gateway.cli.main import cli
from tests.catalogue.conftest import UPSTREAMS, World
from tests.oauth2.helpers import DEMO_PASSWORD, consented, pkce
from tests.wiring import apply_state, parts

VEHICLES = "/s/vehicles/api/vehicles"
CLIENT: dict[str, Any] = {
    "client_id": "nn-web", "name": "市机关事务中心业务系统", "department": "nn-jgsw",
    "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
    "redirect_uris": ["http://127.0.0.1:9/callback"], "scope": "openid profile proxy",
    "secret": "nn-web-secret-0123456789abcdef0123"}
GRANT = {"resource": "JG-0001", "consumer": "nn-jgsw", "client": "nn-web",
         "items": ["plate_number", "brand"], "purpose": "驾驶员核验", "until": "2026-12-31"}
NN_WEB = (CLIENT["client_id"], CLIENT["secret"])
REGISTRY_SECONDS = 1.0  # gateway.idp.oauth2.clients.CACHE_SECONDS


def _setup(world: World, *, per_caller: bool) -> str:
    """nn-web, a client of nn-jgsw, holds a grant of JG-0001 for nn-jgsw; wang.wu's
    token through it (issued now, before any change)."""
    apply_state(world.services, {
        "systems": [{"code": "vehicles", "name": "vehicles", "department": "jgswj",
                     "upstream": f"http://{UPSTREAMS}/vehicles",
                     "assertion": "per_caller" if per_caller else "per_request"}],
        "clients": [CLIENT], "grants": [GRANT]})
    return world.token("nn-jgsw", "nn-web", sub="wang.wu")


def _apply(env: dict[str, str], tmp_path: Path, *, process: bool = False,
           **change: Any) -> None:
    """``govgate apply`` of nn-web's entry with ``change``, with services and caches of
    its own (``process``: in a process of its own)."""
    entry = {k: v for k, v in CLIENT.items() if k != "secret"} | {
        "token_endpoint_auth_method": "client_secret_basic"} | change
    path = tmp_path / "client.yaml"
    path.write_text(yaml.safe_dump({"clients": [entry]}, allow_unicode=True),
                    encoding="utf-8")
    if process:
        done = subprocess.run([sys.executable, "-m", "gateway.cli", "apply", "-f", str(path)],
                              env=env, capture_output=True, text=True, timeout=60,
                              check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        return
    result = CliRunner().invoke(cli, ["apply", "-f", str(path)], env=env,
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output


async def _until(world: World, token: str, status: int) -> httpx.Response:
    """The answer once it is ``status``: the change was made by another process, which
    this gateway's client registry learns within its second."""
    deadline = time.monotonic() + 2 * REGISTRY_SECONDS + 1
    while True:
        r = await world.get(VEHICLES, token)
        if r.status_code == status or time.monotonic() > deadline:
            return r
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("per_caller", [False, True], ids=["per_request", "per_caller"])
async def test_a_grant_naming_a_client_stops_when_the_client_moves_department(
        world: World, env: dict[str, str], tmp_path: Path, per_caller: bool) -> None:
    wang = _setup(world, per_caller=per_caller)
    # the system's own token (client credentials), issued before the move too
    system = world.token("nn-jgsw", "nn-web")
    for token in (wang, system):
        r = await world.get(VEHICLES, token)
        assert r.status_code == 200, r.text
        assert set(r.json()["items"][0]) == {"plate_number", "brand"}
    granted = world.records("proxy_request")[-1]["extra"]["grants"]
    # re-registered under the finance department (czt): czt's system now receives
    _apply(env, tmp_path, department="czt")
    r = await _until(world, wang, 403)
    assert r.status_code == 403, r.text
    refused = world.records("proxy_request")[-1]
    assert refused["outcome"] == "deny" and refused["items"] == []
    assert refused["actor_user"] == "wang.wu" and refused["actor_client"] == "nn-web"
    assert "is for client nn-web, now a client of czt" in refused["reason"]
    # the move itself, audited by the process that made it
    moved = [r["extra"] for r in world.records("admin_change")
             if r["extra"].get("key") == "nn-web"][-1]
    assert moved["change"] == "state_applied" and "department" in moved["fields"]
    # the system speaks for czt now: czt's own grant (the demo's) decides, not nn-jgsw's
    r = await world.get(VEHICLES, system)
    assert r.status_code == 200 and "driver_name" in r.json()["items"][0]
    release = world.records("proxy_request")[-1]
    assert release["department"] == "czt" and release["extra"]["grants"] != granted
    if per_caller:  # moved back, it is the consumer's client again (once is enough)
        _apply(env, tmp_path, department="nn-jgsw")
        assert (await _until(world, wang, 200)).status_code == 200


async def sign_in(world: World, username: str = "wang.wu",
                  scope: str = "openid profile proxy") -> dict[str, Any]:
    """``username``'s tokens from nn-web's authorization-code flow (access and refresh),
    the person having consented to nn-web before (a person of another department is
    asked: tests/oauth2/test_consent.py)."""
    consented(world.services, username, "nn-web", scope)
    async with world.browser() as browser:
        page = await browser.get("/portal/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf is not None
        r = await browser.post("/portal/login", data={
            "csrf_token": csrf.group(1), "username": username, "password": DEMO_PASSWORD,
            "next": "/portal"})
        assert r.status_code in (302, 303), r.text
        # a state-file client that says nothing of require_pkce must send it
        verifier, challenge = pkce()
        r = await browser.get("/oauth2/authorize", params={
            "response_type": "code", "client_id": "nn-web", "scope": scope, "state": "s",
            "redirect_uri": CLIENT["redirect_uris"][0], "nonce": "n",
            "code_challenge": challenge, "code_challenge_method": "S256"})
        code = parse_qs(urlparse(r.headers["location"]).query)["code"][0]
        r = await browser.post("/oauth2/token", auth=NN_WEB, data={
            "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "redirect_uri": CLIENT["redirect_uris"][0]})
        assert r.status_code == 200, r.text
        return dict(r.json())


async def _refresh(world: World, tokens: dict[str, Any]) -> httpx.Response:
    return await world.http.post("/oauth2/token", auth=NN_WEB, data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})


async def test_tokens_issued_before_a_move_and_refreshed_after_it_are_refused(
        world: World, env: dict[str, str], tmp_path: Path) -> None:
    _setup(world, per_caller=True)
    tokens = await sign_in(world)
    assert "refresh_token" in tokens
    assert (await world.get(VEHICLES, tokens["access_token"])).status_code == 200
    _apply(env, tmp_path, process=True, department="czt")
    assert (await _until(world, tokens["access_token"], 403)).status_code == 403
    refreshed = await _refresh(world, tokens)
    assert refreshed.status_code == 200, refreshed.text  # it still signs its users in
    r = await world.get(VEHICLES, refreshed.json()["access_token"])
    assert r.status_code == 403, r.text
    assert "now a client of czt" in world.records("proxy_request")[-1]["reason"]


async def test_a_disabled_client_ends_its_users_tokens(
        world: World, env: dict[str, str], tmp_path: Path) -> None:
    _setup(world, per_caller=True)
    tokens = await sign_in(world)
    assert (await world.get(VEHICLES, tokens["access_token"])).status_code == 200
    result = CliRunner().invoke(cli, ["client", "disable", "nn-web"], env=env,
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (await _until(world, tokens["access_token"], 401)).status_code == 401
    assert world.records("proxy_request")[-1]["outcome"] == "deny"
    assert (await _refresh(world, tokens)).status_code in (400, 401)
    # enabled again: what was issued before stays dead
    result = CliRunner().invoke(cli, ["client", "enable", "nn-web"], env=env,
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    registry = parts(world.services).provider.server.clients
    registry.invalidate()  # its second passed: it reads nn-web active again
    assert registry.get("nn-web") is not None
    assert (await world.get(VEHICLES, tokens["access_token"])).status_code == 401
    assert (await _refresh(world, tokens)).status_code in (400, 401)


async def test_a_narrowed_client_narrows_its_users_tokens(world: World) -> None:
    _setup(world, per_caller=True)
    tokens = await sign_in(world)
    assert (await world.get(VEHICLES, tokens["access_token"])).status_code == 200
    # through the system administrator's API: a sign-in client, no longer a proxy's
    admin = world.token("jgswj", sub="sys.admin", roles=("sysadmin",))
    changed = await world.http.post("/api/v1/admin/clients/nn-web",
                                    json={"scope": "openid profile"},
                                    headers={"Authorization": f"Bearer {admin}"})
    assert changed.status_code == 200, changed.text
    r = await _until(world, tokens["access_token"], 403)
    assert r.status_code == 403 and r.json()["type"] == "urn:govgate:error:insufficient_scope"
    refused = world.records("proxy_request")[-1]
    assert refused["outcome"] == "deny" and "lacks the scope proxy" in refused["reason"]
    refreshed = await _refresh(world, tokens)
    assert refreshed.status_code == 200 and "proxy" not in refreshed.json()["scope"].split()
    assert (await world.get(VEHICLES, refreshed.json()["access_token"])).status_code == 403


def _enc_key(kid: str) -> ECKey:
    return ECKey.generate_key("P-256", {"use": "enc", "alg": "ECDH-ES+A256KW", "kid": kid})


def _opens(token: str, key: ECKey) -> bool:
    try:
        jwe.decrypt_compact(token, key)
    except Exception:  # joserfc raises several kinds for a wrong key
        return False
    return True


async def test_encrypted_items_follow_the_clients_key_as_registered_now(
        world: World, env: dict[str, str], tmp_path: Path) -> None:
    first, second = _enc_key("nn-web-1"), _enc_key("nn-web-2")
    _setup(world, per_caller=True)
    apply_state(world.services, {
        "clients": [CLIENT | {"jwks": {"keys": [first.as_dict(private=False)]},
                              "token_endpoint_auth_method": "client_secret_basic"}],
        "grants": [GRANT | {"items": ["plate_number", "driver_phone"]}]})
    wang = world.token("nn-jgsw", "nn-web", sub="wang.wu")
    phone = (await world.get(VEHICLES, wang)).json()["items"][0]["driver_phone"]
    assert _opens(phone, first) and not _opens(phone, second)
    # the key replaced (the old one lost, say): the next answer is for the new key only
    _apply(env, tmp_path, jwks={"keys": [second.as_dict(private=False)]})
    phone = (await world.get(VEHICLES, wang)).json()["items"][0]["driver_phone"]
    assert _opens(phone, second) and not _opens(phone, first)
    # removed: the item is withheld, and the record says why
    _apply(env, tmp_path)
    r = await world.get(VEHICLES, wang)
    assert r.status_code == 200 and set(r.json()["items"][0]) == {"plate_number"}
    assert world.records("proxy_request")[-1]["extra"]["withheld"] == {
        "driver_phone": "the consuming client registered no encryption key"}
