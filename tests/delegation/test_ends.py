"""A delegation's end reaches the relying parties that hold "A, acted for by B" tokens
(``gateway.idp.oauth2.acting_ends``): a move of A out of the department
(``govgate apply``, SCIM), a revocation through the API, the end date. A real relying
party on a socket receives the back-channel logout and verifies it against the
gateway's JWKS; its old tokens are refused by refresh, userinfo, introspection and the
proxy; the binding rows go in the maintenance purge, the audit records stay."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from authlib.integrations.base_client import OAuthError
from click.testing import CliRunner
from joserfc import jwt
from joserfc.jwk import KeySet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.app import _maintain
from gateway.cli.main import cli
from gateway.delegation_tables import delegations
from gateway.idp.oauth2.acting_ends import watch
from gateway.idp.oauth2.backchannel_logout import EVENT, LOGOUT_TYP
from gateway.idp.oauth2.tables import acting
from tests.delegation.conftest import (
    PEOPLE,
    ShiftClock,
    api,
    approved,
    cookies,
    portal,
    steps,
)
from tests.delegation.test_idp import SECRET, clients_doc, code_flow, introspect, verified
from tests.proxy.conftest import Served, World


class RelyingParty:
    """A back-channel logout endpoint that checks each logout token as a relying party
    must (OIDC Back-Channel Logout 1.0, section 2.6) against the gateway's JWKS."""

    def __init__(self) -> None:
        self.jwks_url = ""
        self.issuer = ""
        self.verified: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()

    def app(self) -> Starlette:
        async def logout(request: Request) -> Response:
            token = str((await request.form())["logout_token"])
            async with httpx.AsyncClient() as http:
                keys = KeySet.import_key_set((await http.get(self.jwks_url)).json())
            alg = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["alg"]
            decoded = jwt.decode(token, keys, algorithms=[alg])  # the signature
            claims = dict(decoded.claims)
            if (decoded.header.get("typ") != LOGOUT_TYP or claims["iss"] != self.issuer
                    or claims["aud"] != "echo-web" or EVENT not in claims["events"]
                    or "nonce" in claims or not claims.get("sid")):
                return Response(status_code=400)
            self.verified.append(claims)
            self.arrived.set()
            return Response(status_code=200)

        return Starlette(routes=[Route("/bcl", logout, methods=["POST"])])

    async def next_logout(self, seconds: float = 5.0) -> dict[str, Any]:
        async with asyncio.timeout(seconds):
            await self.arrived.wait()
        self.arrived.clear()
        return self.verified[-1]


@pytest.fixture
async def rp(sockets: World) -> AsyncIterator[tuple[World, RelyingParty]]:
    party = RelyingParty()
    assert sockets.gateway is not None
    base = f"http://127.0.0.1:{sockets.gateway.port}"
    party.jwks_url, party.issuer = base + "/.well-known/jwks.json", \
        sockets.built.provider.server.issuer
    async with Served(party.app()) as served:
        doc = clients_doc()
        for c in doc["clients"]:
            c["backchannel_logout_uri"] = f"http://127.0.0.1:{served.port}/bcl"
        sockets.built.state_applier().apply(doc)
        # as the app's lifespan starts it (lifespan is off for the test servers)
        task = asyncio.create_task(watch(sockets.built.provider, every=0.2))
        yield sockets, party
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await sockets.built.provider.notifier.drain()


async def acting_tokens(world: World, number: int) -> tuple[Any, dict[str, Any]]:
    """B (wang.fang), acting for A under ``number``, signs in to echo-web."""
    client, token, answer = await code_flow(world, "echo-web",
                                            cookies(world, "wang.fang", acting=number))
    assert answer.status_code == 302 and verified(world, token["access_token"])["act"] == {
        "sub": "wang.fang"}
    return client, token


async def refused_everywhere(world: World, client: Any, token: dict[str, Any]) -> None:
    """The relying party's old tokens no longer work anywhere."""
    assert world.gateway is not None
    access = verified(world, token["access_token"])
    assert world.built.provider.store.is_denied("jti", access["jti"])  # the deny list
    with pytest.raises(OAuthError) as refused:
        await client.refresh_token(f"http://127.0.0.1:{world.gateway.port}/oauth2/token",
                                   refresh_token=token["refresh_token"], scope="openid")
    assert refused.value.error == "invalid_grant"
    r = await world.request("GET", "/oauth2/userinfo", token=token["access_token"])
    assert r.status == 401
    assert await introspect(world, token["access_token"]) == {"active": False}
    assert (await world.request("GET", "/s/echo/x", token=token["access_token"])).status == 401
    await client.aclose()


def bindings(world: World) -> int:
    with world.services.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(acting)).scalar_one())


def stored(world: World, number: int) -> Any:
    with world.services.engine.connect() as conn:
        return conn.execute(sa.select(delegations).where(delegations.c.id == number)).one()


def user_entry(username: str, department: str) -> dict[str, Any]:
    name, _, roles = PEOPLE[username]
    return {"username": username, "name": name, "department": department, "roles": roles}


async def test_a_move_by_the_state_file_ends_it_and_logs_the_relying_party_out(
        rp: tuple[World, RelyingParty], tmp_path: Path) -> None:
    world, party = rp
    number = await approved(world, systems=["echo"])
    client, token = await acting_tokens(world, number)
    b_sid = verified(world, token["id_token"])["sid"]

    # the operator moves A (li.ming) to czt with the state file, in another process
    doc = tmp_path / "move.json"
    doc.write_text(json.dumps({"users": [user_entry("li.ming", "czt")]}), encoding="utf-8")
    env = {"GOVGATE_HOME": str(world.services.settings.home),
           "GOVGATE_DATABASE_URL": world.services.settings.database_url, "LANG": "C.UTF-8"}
    done = CliRunner().invoke(cli, ["apply", "-f", str(doc)], env=env)
    assert done.exit_code == 0, done.output
    row = stored(world, number)
    assert (row.state, row.note) == ("ended", "li.ming: jgswj -> czt")  # with the move
    listed = CliRunner().invoke(cli, ["delegation", "list"], env=env)
    assert f"{number}\tli.ming\twang.fang\tended\t" in listed.output

    logout = await party.next_logout()
    assert (logout["sub"], logout["sid"]) == ("li.ming", b_sid)
    await refused_everywhere(world, client, token)
    r = await api(world, "wang.fang", "GET", "")
    shown = next(d for d in json.loads(r.body)["delegations"] if d["id"] == number)
    assert (shown["state"], shown["live"], shown["revoked_by"]) == ("ended", False, "li.ming")
    page = await world.request("GET", "/portal/delegations",
                               headers=[cookies(world, "wang.fang")])
    assert f'id="delegation-{number}" data-state="ended"' in page.body.decode()
    assert "li.ming 已调离（jgswj -&gt; czt）" in page.body.decode()
    moved = [s for s in steps(world) if s.change == "delegation_moved"]
    assert [(s.extra["delegation"], s.extra["moved"], s.extra["why"]) for s in moved] == [
        (number, "li.ming", "li.ming: jgswj -> czt")]
    ended = [s for s in steps(world) if s.change == "delegation_tokens_ended"]
    assert [(s.extra["state"], s.extra["clients"], s.extra["sids"]) for s in ended] == [
        ("ended", ["echo-web"], [b_sid])]
    told = [r for r in world.audit.records if r.event_type == "logout_backchannel"]
    assert [(r.outcome, r.actor_client, r.extra["sid"]) for r in told] == [
        ("success", "echo-web", b_sid)]
    # the rounds after it tell nobody again
    await asyncio.sleep(0.5)
    assert len(party.verified) == 1 and stored(world, number).state == "ended"


async def test_a_revocation_and_the_end_date_log_the_relying_party_out(
        rp: tuple[World, RelyingParty], clock: ShiftClock) -> None:
    world, party = rp
    first = await approved(world, systems=["echo"])
    client, token = await acting_tokens(world, first)
    r = await api(world, "zhao.head", "POST", f"/{first}/revoke")
    assert r.status == 200, r.body
    assert (await party.next_logout())["sub"] == "li.ming"
    await refused_everywhere(world, client, token)

    second = await approved(world, systems=["echo"], days=120 / 86400)  # two minutes
    client, token = await acting_tokens(world, second)
    clock.advance(121)  # past its end, not past the tokens': nothing asks, the gateway ends it
    assert (await party.next_logout())["sid"] == verified(world, token["id_token"])["sid"]
    assert stored(world, second).state == "expired"
    assert [s.extra["delegation"] for s in steps(world)
            if s.change == "delegation_expired"] == [second]
    await refused_everywhere(world, client, token)

    # the bindings go a day after the end (the maintenance round), the records stay
    assert bindings(world) == 4
    assert world.built.provider.server.acting.purge() == 0  # not yet a day
    clock.advance(86400)
    world.services.settings = dataclasses.replace(world.services.settings,
                                                  maintenance_interval_seconds=0.05)
    rounds = asyncio.create_task(_maintain(world.built))
    try:
        async with asyncio.timeout(10):
            while bindings(world):
                await asyncio.sleep(0.05)
    finally:
        rounds.cancel()
    assert {s.change for s in steps(world)} >= {"delegation_revoked", "delegation_expired",
                                                  "delegation_tokens_ended"}
    assert stored(world, first).state == "revoked"


async def test_a_move_through_scim_ends_it(rp: tuple[World, RelyingParty]) -> None:
    world, party = rp
    number = await approved(world, systems=["echo"])
    client, token = await acting_tokens(world, number)
    world.built.state_applier().apply({
        "departments": [{"code": "platform", "name": "平台", "region": "gx"}],
        "clients": [{"client_id": "scim-sync", "name": "统一身份同步", "department": "platform",
                     "grant_types": ["client_credentials"], "secret": SECRET,
                     "scope": "scim"}]})
    assert world.gateway is not None
    base = f"http://127.0.0.1:{world.gateway.port}"
    async with httpx.AsyncClient(base_url=base) as http:
        got = await http.post("/oauth2/token", auth=("scim-sync", SECRET),
                              data={"grant_type": "client_credentials", "scope": "scim"})
        assert got.status_code == 200, got.text
        bearer = {"Authorization": f"Bearer {got.json()['access_token']}"}
        found = await http.get("/scim/v2/Users", params={"filter": 'userName eq "wang.fang"'},
                               headers=bearer)
        assert found.status_code == 200, found.text
        user = found.json()["Resources"][0]
        moved = await http.patch(f"/scim/v2/Users/{user['id']}", headers=bearer, json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": DEPARTMENT, "value": "czt"}]})
        assert moved.status_code == 200, moved.text
    assert stored(world, number).note == "wang.fang: jgswj -> czt"
    assert (await party.next_logout())["sub"] == "li.ming"
    await refused_everywhere(world, client, token)


async def test_the_apps_lifespan_runs_the_rounds(quick: World, clock: ShiftClock) -> None:
    number = await approved(quick, systems=["echo"], days=60 / 86400)
    clock.advance(61)  # past its end: the first round stores and records it
    with portal(quick):  # the app's lifespan starts its tasks
        deadline = time.monotonic() + 5
        while stored(quick, number).state != "expired":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert [s.change for s in steps(quick)][-1] == "delegation_expired"


DEPARTMENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"
