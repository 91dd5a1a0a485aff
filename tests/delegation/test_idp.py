"""B acting for A signs in to systems that sign their users in themselves (委托 in the
identity provider's answers): an OpenID Connect relying party (authlib's client over
real sockets), CAS validation and a SAML assertion name A, acted for by B, when the
system is one the delegation names; B's own otherwise; refused once it ends."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import pytest
import sqlalchemy as sa
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from click.testing import CliRunner

from gateway.admin.clients import get_client
from gateway.cli.main import cli
from gateway.idp.oauth2.tables import acting
from gateway.services import Services
from gateway.statefile import validate
from gateway.storage import head_revisions
from gateway.tables import clients
from tests.delegation.conftest import api, approved, cookies
from tests.proxy.conftest import World
from tests.schema import assert_mirrors

SECRET = "rp-secret-0123456789abcdef"
#: the person's sign-in with the claim scopes (roles, department) and the proxy
RP_SCOPE = "openid profile offline_access proxy roles department"
REDIRECT = "http://127.0.0.1:9301/cb"
CAS_SERVICE = "http://127.0.0.1:9302/cas-app/"


def clients_doc() -> dict[str, Any]:
    """Three relying parties: ``echo-web`` signs users in to the delegated system,
    ``down-web`` to a system the delegation does not name, ``czt-web`` is czt's (the
    ``rp`` fixture stores it as saying it signs users in to jgswj's echo)."""
    return {"clients": [
        {"client_id": f"{name}-web", "name": f"{name} 网站", "department": department,
         "grant_types": ["authorization_code", "refresh_token"], "secret": SECRET,
         "redirect_uris": [REDIRECT], "scope": RP_SCOPE,
         # no consent page for jgswj's people at czt-web: what is asked here is whose
         # identity the token carries (consent: tests/oauth2/test_consent.py)
         "consent_required": False,
         **({"system": system} if system else {})}
        for name, system, department in (("echo", "echo", "jgswj"),
                                         ("down", "down", "jgswj"),
                                         ("czt", None, "czt"))]}


@pytest.fixture
async def rp(sockets: World) -> World:
    sockets.built.state_applier().apply(clients_doc())
    # czt-web naming jgswj's echo: the state file refuses it now; a row stored before
    # that check (or left when echo moved to another department) is, for the identity
    # provider at run time, a client of czt signing people in to no system of its own
    with sockets.services.engine.begin() as conn:
        conn.execute(sa.update(clients).where(clients.c.client_id == "czt-web")
                     .values(system="echo"))
    return sockets


async def code_flow(world: World, client_id: str, cookie: tuple[str, str]
                    ) -> tuple[AsyncOAuth2Client, dict[str, Any], httpx.Response]:
    """The browser at /oauth2/authorize with ``cookie``, then the client at the token
    endpoint: (the client, its token, the authorization endpoint's answer)."""
    assert world.gateway is not None
    base = f"http://127.0.0.1:{world.gateway.port}"
    client = AsyncOAuth2Client(client_id, SECRET, scope=RP_SCOPE,
                               redirect_uri=REDIRECT, code_challenge_method="S256")
    verifier = generate_token(48)
    url, _state = client.create_authorization_url(base + "/oauth2/authorize",
                                                  code_verifier=verifier, nonce="n-0")
    async with httpx.AsyncClient() as browser:
        answer = await browser.get(url, headers=[cookie])
    if answer.status_code != 302:
        return client, {}, answer
    token = await client.fetch_token(base + "/oauth2/token",
                                     authorization_response=answer.headers["location"],
                                     code_verifier=verifier)
    return client, dict(token), answer


def verified(world: World, jwt: str) -> dict[str, Any]:
    return dict(world.services.keys.verify_jwt("token", jwt))


async def userinfo(world: World, access_token: str) -> tuple[int, dict[str, Any]]:
    r = await world.request("GET", "/oauth2/userinfo", token=access_token)
    return r.status, json.loads(r.body) if r.body else {}


async def introspect(world: World, access_token: str) -> dict[str, Any]:
    assert world.gateway is not None
    async with httpx.AsyncClient(auth=("echo-web", SECRET)) as rs:
        r = await rs.post(f"http://127.0.0.1:{world.gateway.port}/oauth2/introspect",
                          data={"token": access_token})
    assert r.status_code == 200, r.text
    return dict(r.json())


def records_of(world: World, *types: str) -> list[Any]:
    return [r for r in world.audit.records if r.event_type in types]


async def test_oidc_sign_in_while_acting_names_a_acted_for_by_b(rp: World) -> None:
    world = rp
    number = await approved(world, systems=["echo"])
    acting = cookies(world, "wang.fang", acting=number)

    client, token, _ = await code_flow(world, "echo-web", acting)
    id_token, access = verified(world, token["id_token"]), verified(world, token["access_token"])
    for claims in (id_token, access):
        assert claims["sub"] == "li.ming" and claims["department"] == "jgswj"
        assert claims["act"] == {"sub": "wang.fang"} and claims["delegation"] == number
    assert id_token["name"] == "李明" and "data_steward" in id_token["roles"]
    # the person's sign-in only: no proxy (nor API) scope rides on it
    assert "proxy" not in access["scope"].split() and "openid" in access["scope"].split()
    status, info = await userinfo(world, token["access_token"])
    assert status == 200 and info["sub"] == "li.ming" and info["act"] == {"sub": "wang.fang"}
    # ... and neither the proxy nor the API takes it as li.ming's
    r = await world.request("GET", "/s/echo/x", token=token["access_token"])
    assert r.status == 401
    r = await world.request("GET", "/api/v1/delegations", token=token["access_token"])
    assert r.status == 401

    for record in records_of(world, "authorize", "token_issued"):
        assert record.actor_user == "li.ming" and record.outcome == "success"
        assert record.extra["act"] == {"sub": "wang.fang"}
        assert record.extra["delegation"] == number
    assert len(records_of(world, "authorize", "token_issued")) == 2

    # refreshing while the delegation is in force: still A acted for by B
    assert world.gateway is not None
    base = f"http://127.0.0.1:{world.gateway.port}"
    token = dict(await client.refresh_token(base + "/oauth2/token",
                                            refresh_token=token["refresh_token"],
                                            scope="openid profile offline_access"))
    assert verified(world, token["access_token"])["act"] == {"sub": "wang.fang"}
    seen = await introspect(world, token["access_token"])
    assert seen["active"] and seen["sub"] == "li.ming" and seen["delegation"] == number
    assert seen["act"] == {"sub": "wang.fang"}
    refreshed = records_of(world, "token_refreshed")[-1]
    assert refreshed.actor_user == "li.ming" and refreshed.extra["delegation"] == number

    # revoked: the refresh token from that grant stops, userinfo no longer answers
    r = await api(world, "li.ming", "POST", f"/{number}/revoke")
    assert r.status == 200, r.body
    with pytest.raises(OAuthError) as refused:
        await client.refresh_token(base + "/oauth2/token", refresh_token=token["refresh_token"],
                                   scope="openid")
    assert refused.value.error == "invalid_grant"
    assert f"delegation {number} is revoked" in str(refused.value.description)
    denied = records_of(world, "token_denied")[-1]
    assert "no longer in force" in str(denied.reason)
    status, _ = await userinfo(world, token["access_token"])
    assert status == 401
    assert await introspect(world, token["access_token"]) == {"active": False}
    await client.aclose()


async def test_a_system_not_delegated_gets_b_and_a_stale_choice_is_refused(rp: World
                                                                           ) -> None:
    world = rp
    number = await approved(world, systems=["echo"])
    acting = cookies(world, "wang.fang", acting=number)
    client, token, _ = await code_flow(world, "down-web", acting)
    await client.aclose()
    claims = verified(world, token["id_token"])
    assert claims["sub"] == "wang.fang" and "act" not in claims and "delegation" not in claims
    status, info = await userinfo(world, token["access_token"])
    assert status == 200 and info["sub"] == "wang.fang" and "act" not in info
    # another department's client naming the delegated system is not that system (the
    # both-sides rule of a user's token through another department's client): B's own
    # sign-in, never A's identity handed to czt's system (failed on the base: li.ming
    # acted for by wang.fang, li.ming's roles and department in czt-web's ID token)
    client, token, _ = await code_flow(world, "czt-web", acting)
    await client.aclose()
    claims = verified(world, token["id_token"])
    assert claims["sub"] == "wang.fang" and "act" not in claims and "delegation" not in claims

    # a code issued while acting, exchanged after the revocation: invalid_grant
    assert world.gateway is not None
    base = f"http://127.0.0.1:{world.gateway.port}"
    client = AsyncOAuth2Client("echo-web", SECRET, scope="openid", redirect_uri=REDIRECT,
                               code_challenge_method="S256")
    verifier = generate_token(48)
    url, _ = client.create_authorization_url(base + "/oauth2/authorize",
                                             code_verifier=verifier)
    async with httpx.AsyncClient() as browser:
        answer = await browser.get(url, headers=[acting])
    assert answer.status_code == 302
    assert (await api(world, "li.ming", "POST", f"/{number}/revoke")).status == 200
    with pytest.raises(OAuthError) as refused:
        await client.fetch_token(base + "/oauth2/token",
                                 authorization_response=answer.headers["location"],
                                 code_verifier=verifier)
    assert refused.value.error == "invalid_grant"
    await client.aclose()

    # the choice now stale: no sign-in at all (never falling back to B), audited
    _, _, page = await code_flow(world, "echo-web", acting)
    assert page.status_code == 403
    assert "no longer in force" in page.text or "不再有效" in page.text
    deny = records_of(world, "authorize")[-1]
    assert (deny.outcome, deny.actor_user, deny.extra["delegation"]) == (
        "deny", "wang.fang", number)
    assert f"delegation {number} is revoked" in str(deny.reason)


async def test_cas_ticket_names_a_with_acting_user(rp: World) -> None:
    world = rp
    doc = {"systems": [{"code": "echo", "name": "回显系统", "department": "jgswj",
                        "upstream": "http://127.0.0.1:9", "cas_services": [CAS_SERVICE]}]}
    world.built.state_applier().apply(doc)
    number = await approved(world, systems=["echo"])
    acting = cookies(world, "wang.fang", acting=number)

    async def ticket(cookie: tuple[str, str]) -> str:
        r = await world.request("GET", "/cas/login?" + urlencode({"service": CAS_SERVICE}),
                                headers=[cookie])
        assert r.status == 303, r.body
        location = dict(r.headers)["location"]
        return parse_qs(urlparse(location).query)["ticket"][0]

    async def validate(t: str) -> str:
        r = await world.request("GET", "/cas/p3/serviceValidate?" + urlencode(
            {"service": CAS_SERVICE, "ticket": t}))
        return r.body.decode()

    body = await validate(await ticket(acting))
    assert "<cas:user>li.ming</cas:user>" in body
    assert "<cas:actingUser>wang.fang</cas:actingUser>" in body
    assert f"<cas:delegation>{number}</cas:delegation>" in body
    issued, checked = records_of(world, "cas_login")[-1], records_of(world, "cas_validate")[-1]
    for record in (issued, checked):
        assert record.actor_user == "li.ming" and record.extra["act"] == {"sub": "wang.fang"}
        assert record.extra["delegation"] == number

    # a ticket issued while acting, validated after the revocation: INVALID_TICKET
    pending = await ticket(acting)
    assert (await api(world, "li.ming", "POST", f"/{number}/revoke")).status == 200
    body = await validate(pending)
    assert "INVALID_TICKET" in body and "li.ming" not in body


def test_the_migration_mirrors_the_tables(engine: sa.Engine) -> None:
    only = sa.MetaData()
    acting.to_metadata(only)
    assert_mirrors(engine, only)
    column = {c["name"]: c for c in sa.inspect(engine).get_columns("clients")}["system"]
    # the clients table's branch goes on after it (0028: clients.require_pkce; 0029:
    # clients.dpop_bound, RFC 9449; 0031: the codes' dpop_jkt, then
    # clients.lenient_assertion_audience; 0032: clients.static_credential, then
    # clients.id_token_signed_response_alg and consent_required)
    assert column["nullable"] and "0032_oidc8_rs256_consent" in head_revisions()


def test_a_clients_system_is_a_code_in_the_state_file() -> None:
    org = {"regions": [{"code": "gx", "name": "某省"}],
           "departments": [{"code": "jgswj", "name": "机关事务管理局", "region": "gx"}]}
    good = clients_doc()["clients"][0]
    assert validate({**org, "clients": [good]}) == []
    problems = validate({**org, "clients": [{**good, "system": ["echo"]}]})
    assert len(problems) == 1 and "a client's system is a system code" in problems[0]


def test_another_departments_system_is_refused_at_apply(base_services: Services,
                                                         tmp_path: Any) -> None:
    """A client of czt naming jgswj's echo: refused by ``govgate apply`` (and its dry
    run), naming the client, the system and both departments; nothing written. Before,
    the file applied and the client's system was only ignored at run time."""
    env = {"GOVGATE_HOME": str(base_services.settings.home),
           "GOVGATE_DATABASE_URL": base_services.settings.database_url, "LANG": "C.UTF-8"}
    client = {"client_id": "czt-web", "name": "财政网站", "department": "czt",
              "grant_types": ["authorization_code"], "secret": SECRET,
              "redirect_uris": [REDIRECT], "system": "echo"}
    echo = {"code": "echo", "name": "回显", "department": "jgswj",
            "upstream": "http://127.0.0.1:9"}

    def apply(doc: dict[str, Any], *more: str) -> Any:
        path = tmp_path / "state.yaml"
        path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        return CliRunner().invoke(cli, ["apply", "-f", str(path), *more], env=env)

    def stored() -> Any:
        with base_services.engine.connect() as conn:
            return conn.execute(sa.select(clients.c.system)
                                .where(clients.c.client_id == "czt-web")).first()

    for more in (("--dry-run",), ()):
        # the system in the same file
        refused = apply({"systems": [echo], "clients": [client]}, *more)
        assert refused.exit_code != 0, refused.output
        assert "client 'czt-web' of department 'czt' names system 'echo', which is " \
               "department 'jgswj'" in refused.output, refused.output
    assert stored() is None
    # the system stored already
    assert apply({"systems": [echo]}).exit_code == 0
    refused = apply({"clients": [client]})
    assert refused.exit_code != 0 and "which is department 'jgswj'" in refused.output
    assert stored() is None
    # its own department's system: applied
    assert apply({"clients": [{**client, "department": "jgswj"}]}).exit_code == 0
    assert stored().system == "echo"
    # the system moved to another department since: the client's pairing is ignored
    # at run time and stays as stored; the export applies again and the client's other
    # settings still change (both refused on merge33), a file moving the system under
    # a client it names is refused
    assert apply({"systems": [{**echo, "department": "czt"}]}).exit_code == 0
    exported = CliRunner().invoke(cli, ["export"], env=env, catch_exceptions=False)
    assert exported.exit_code == 0 and "system: echo" in exported.output
    path = tmp_path / "export.yaml"
    path.write_text(exported.output, encoding="utf-8")
    again = CliRunner().invoke(cli, ["apply", "-f", str(path)], env=env)
    assert again.exit_code == 0 and "nothing to change" in again.output, again.output
    pkce = CliRunner().invoke(cli, ["client", "pkce", "czt-web", "--require"], env=env)
    assert pkce.exit_code == 0, pkce.output
    moved = apply({"systems": [echo], "clients": [{**client, "department": "jgswj"}]})
    assert moved.exit_code == 0  # back to the client's department: its own again
    refused = apply({"systems": [{**echo, "department": "czt"}],
                     "clients": [{**client, "department": "jgswj"}]})
    assert refused.exit_code != 0 and "which is department 'czt'" in refused.output


def test_a_clients_system_through_the_cli(base_services: Services) -> None:
    env = {"GOVGATE_HOME": str(base_services.settings.home),
           "GOVGATE_DATABASE_URL": base_services.settings.database_url, "LANG": "C.UTF-8"}

    def add(client_id: str, system: str) -> Any:
        return CliRunner().invoke(cli, [
            "client", "add", client_id, "--name", "回显网站", "--department", "jgswj",
            "--grant-type", "authorization_code", "--redirect-uri", REDIRECT,
            "--system", system], env=env)

    assert add("echo-app", "echo").exit_code == 0
    assert get_client(base_services.engine, "echo-app")["system"] == "echo"
    refused = add("bad-app", "Not A Code")
    assert refused.exit_code != 0 and "system code" in refused.output
