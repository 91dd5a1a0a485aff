"""DPoP (RFC 9449, gateway.idp.dpop): a token bound to the client's key, through the
real token endpoint and the real proxy, forward-auth and userinfo, with a real
upstream on a real socket. Bound tokens work with a proof of their key for the very
request; without one, with one used before, for another URL, method or key, too old,
or the token sent as ``Bearer``, they are refused, and every refusal is audited
without the token or the proof."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from starlette.testclient import TestClient

from gateway.admin.clients import client_entries
from gateway.cli.main import cli
from gateway.idp.dpop import DPoP, verify_proof
from gateway.idp.oauth2.tables import authorization_codes, dpop_jtis, dpop_refresh
from gateway.services import Services
from gateway.statefile import StateFileError
from gateway.storage import head_revisions
from gateway.tables import clients
from tests.dpop_proofs import Holder
from tests.idp_world import client, idp  # noqa: F401 - the identity provider's fixtures
from tests.oauth2.helpers import authorize, code_from, login, pkce
from tests.proxy import conftest as proxy
from tests.proxy.conftest import World, raw_request
from tests.proxy.test_forward_auth import nginx  # noqa: F401 - the fixture
from tests.schema import assert_mirrors
from tests.wiring import apply_state, parts

base_services = proxy.base_services
world = proxy.world

ISSUER = "http://127.0.0.1:8080"  # the tests' settings: what clients are told
BOUND = ("dpop-sync", "dpop-sync-secret-0123456789abcdef")
FORM = ("Content-Type", "application/x-www-form-urlencoded")
ALGS = 'algs="ES256 EdDSA RS256 PS256"'


def claims_of(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


async def token_request(world: World, proof: str | None) -> Any:
    basic = base64.b64encode(f"{BOUND[0]}:{BOUND[1]}".encode()).decode()
    headers = [("Authorization", f"Basic {basic}"), FORM]
    if proof is not None:
        headers.append(("DPoP", proof))
    return await raw_request(world.gateway.port, "POST", "/oauth2/token", headers,  # type: ignore[union-attr]
                             body=b"grant_type=client_credentials")


async def call(world: World, target: str, token: str, proof: str | None, *,
               scheme: str = "DPoP", method: str = "GET",
               headers: list[tuple[str, str]] | None = None) -> Any:
    sent = [("Authorization", f"{scheme} {token}"), *(headers or [])]
    if proof is not None:
        sent.append(("DPoP", proof))
    return await world.request(method, target, headers=sent)


def register(world: World) -> None:
    apply_state(world.services, {"clients": [{
        "client_id": BOUND[0], "name": "绑定密钥的同步", "department": "jgswj",
        "grant_types": ["client_credentials"], "secret": BOUND[1], "scope": "proxy",
        "dpop_bound": True}]})


async def bound_token(world: World, holder: Holder) -> str:
    r = await token_request(world, holder.proof("POST", f"{ISSUER}/oauth2/token"))
    assert r.status == 200, r.body
    assert r.json()["token_type"] == "DPoP"
    token = str(r.json()["access_token"])
    assert claims_of(token)["cnf"] == {"jkt": holder.jkt}
    return token


async def test_a_bound_token_opens_the_proxy_only_with_a_fresh_proof_of_its_key(
        world: World) -> None:
    register(world)
    holder = Holder()
    # the client must prove a key: refused (and audited) without a proof
    r = await token_request(world, None)
    assert r.status == 400 and r.json()["error"] == "invalid_dpop_proof", r.body
    assert world.audit.records[-1].event_type == "token_denied"
    assert world.audit.records[-1].reason.startswith("invalid_dpop_proof")
    # a proof for the token endpoint, once
    proof = holder.proof("POST", f"{ISSUER}/oauth2/token")
    r = await token_request(world, proof)
    assert r.status == 200 and r.json()["token_type"] == "DPoP", r.body
    token = str(r.json()["access_token"])
    assert claims_of(token)["cnf"] == {"jkt": holder.jkt}
    r = await token_request(world, proof)
    assert r.status == 400 and r.json()["error"] == "invalid_dpop_proof", r.body
    assert "used before" in r.json()["error_description"]
    # a proof for another address (the client's URL is the issuer's) or method
    r = await token_request(world, holder.proof("POST", "http://evil.example/oauth2/token"))
    assert r.status == 400 and "htu" in r.json()["error_description"]

    url = f"{ISSUER}/s/echo/api/items"
    proof = holder.proof("GET", url, token=token)
    r = await call(world, "/s/echo/api/items?page=2", token, proof)
    assert r.status == 200, r.body
    assert world.echo.seen[-1]["raw_path"] == "/api/items"
    # the URL the request came in on names it too: /s/ under another public name than
    # the issuer's (its Host; 401 on the base, which took the issuer's origin only)
    there = "http://apps.example.gov/s/echo/api/items"
    r = await call(world, "/s/echo/api/items", token, holder.proof("GET", there, token=token),
                   headers=[("Host", "apps.example.gov")])
    assert r.status == 200, r.body
    seen = len(world.echo.seen)
    # ... but not the X-Forwarded-Host of a peer that is no trusted proxy (none is here),
    # nor a Host that would move the path out of the comparison (a proof for "/")
    r = await call(world, "/s/echo/api/items", token, holder.proof(
        "GET", "http://evil.example/s/echo/api/items", token=token),
        headers=[("X-Forwarded-Host", "evil.example")])
    assert r.status == 401, r.body
    for host in ("apps.example.gov#", "apps.example.gov?", "apps.example.gov/x"):
        r = await call(world, "/s/echo/api/items", token, holder.proof(
            "GET", "http://apps.example.gov/", token=token), headers=[("Host", host)])
        assert r.status in (400, 401), (host, r.status, r.body)

    other = Holder()
    mine = holder.proof("GET", url, token=token)
    unsigned = base64.urlsafe_b64encode(json.dumps({
        "typ": "dpop+jwt", "alg": "none", "jwk": holder.key.as_dict(private=False)}
    ).encode()).rstrip(b"=").decode() + "." + mine.split(".")[1] + "."
    refused = {
        "a forged signature": await call(world, "/s/echo/api/items", token, mine.rsplit(
            ".", 1)[0] + "." + other.proof("GET", url, token=token).rsplit(".", 1)[1]),
        "alg none": await call(world, "/s/echo/api/items", token, unsigned),
        "replayed": await call(world, "/s/echo/api/items", token, proof),
        "no proof": await call(world, "/s/echo/api/items", token, None),
        "another URL": await call(world, "/s/echo/api/items", token, holder.proof(
            "GET", f"{ISSUER}/s/echo/api/other", token=token)),
        "another method": await call(world, "/s/echo/api/items", token, holder.proof(
            "POST", url, token=token)),
        "another key": await call(world, "/s/echo/api/items", token, other.proof(
            "GET", url, token=token)),
        "an old iat": await call(world, "/s/echo/api/items", token, holder.proof(
            "GET", url, token=token, iat=int(time.time()) - 300)),
        "no ath": await call(world, "/s/echo/api/items", token, holder.proof("GET", url)),
        "two proofs": await call(world, "/s/echo/api/items", token, holder.proof(
            "GET", url, token=token), headers=[("DPoP", holder.proof("GET", url,
                                                                     token=token))]),
    }
    for why, r in refused.items():
        assert r.status == 401, (why, r.body)
        assert r.headers["www-authenticate"] == (
            f'DPoP realm="govgate", error="invalid_dpop_proof", {ALGS}'), why
    # the thief's downgrade: the bound token as a bearer token
    r = await call(world, "/s/echo/api/items", token, None, scheme="Bearer")
    assert r.status == 401
    assert r.headers["www-authenticate"] == f'DPoP realm="govgate", error="invalid_token", {ALGS}'
    # with a good proof beside it, still refused: the scheme is the token's binding
    r = await call(world, "/s/echo/api/items", token, holder.proof("GET", url, token=token),
                   scheme="Bearer")
    assert r.status == 401
    assert len(world.echo.seen) == seen, "a refused request reached the upstream"

    denied = [rec for rec in world.audit.records if rec.status == 401]
    reasons = [rec.reason for rec in denied]
    for part in ("used before", "no DPoP proof", "htu", "htm", "another key", "older than",
                 "ath", "more than one", "presented as Bearer", "signature is bad",
                 "alg is not one of"):
        assert any(part in (reason or "") for reason in reasons), (part, reasons)
    for rec in world.audit.records:
        text = json.dumps({"reason": rec.reason, "extra": rec.extra}, default=str)
        assert token not in text and proof not in text and token[-20:] not in text

    # the replay table is the database's: another process (another engine) refuses a
    # proof this gateway has taken
    engine = sa.create_engine(world.services.settings.db_url)
    try:
        elsewhere = DPoP(engine, world.services.clock, skew=60, mac=str)
        taken = verify_proof(proof, method="GET", url=url, now=time.time(), skew=60,
                             access_token=token)
        assert elsewhere.first_use(taken) is False
        fresh = verify_proof(holder.proof("GET", url, token=token), method="GET", url=url,
                             now=time.time(), skew=60, access_token=token)
        assert elsewhere.first_use(fresh) is True
    finally:
        engine.dispose()

    # introspection shows the binding; discovery the algorithms
    basic = base64.b64encode(f"{BOUND[0]}:{BOUND[1]}".encode()).decode()
    r = await raw_request(world.gateway.port, "POST", "/oauth2/introspect",  # type: ignore[union-attr]
                          [("Authorization", f"Basic {basic}"), FORM],
                          body=f"token={token}".encode())
    assert r.status == 200 and r.json()["active"] is True, r.body
    assert r.json()["cnf"] == {"jkt": holder.jkt} and r.json()["token_type"] == "DPoP"
    r = await world.request("GET", "/.well-known/openid-configuration")
    assert r.json()["dpop_signing_alg_values_supported"] == ["ES256", "EdDSA", "RS256", "PS256"]


async def test_forward_auth_checks_the_proof_against_the_front_proxys_request(
        world: World) -> None:
    register(world)
    holder = Holder("EdDSA")
    token = await bound_token(world, holder)
    front = [("X-Original-URI", "/s/echo/api/x?y=1"), ("X-Original-Method", "GET"),
             # a load balancer before the front proxy: its scheme first
             ("X-Forwarded-Host", "apps.example.gov"), ("X-Forwarded-Proto", "https, http")]
    original = "https://apps.example.gov/s/echo/api/x"
    r = await call(world, "/auth/verify", token, holder.proof("GET", original, token=token),
                   headers=front)
    assert r.status == 200, r.body
    assert r.headers["x-govgate-client"] == BOUND[0]
    # a forwarded host with "#" (nginx lets it through in $http_host) cut the request's
    # path off the comparison: a proof for "/" opened every path (200 on the base)
    cut = [("X-Original-URI", "/s/echo/api/x"), ("X-Original-Method", "GET"),
           ("X-Forwarded-Host", "apps.example.gov#"), ("X-Forwarded-Proto", "https")]
    r = await call(world, "/auth/verify", token, holder.proof(
        "GET", "https://apps.example.gov/", token=token), headers=cut)
    assert r.status == 401 and 'error="invalid_dpop_proof"' in r.headers["www-authenticate"]
    # a proof for the request the front proxy makes, not the client's, is refused
    r = await call(world, "/auth/verify", token, holder.proof(
        "GET", f"{ISSUER}/auth/verify", token=token), headers=front)
    assert r.status == 401 and r.headers["x-refusal-code"] == "unauthorized"
    assert 'error="invalid_dpop_proof"' in r.headers["www-authenticate"]
    r = await call(world, "/auth/verify", token, None, scheme="Bearer", headers=front)
    assert r.status == 401 and 'DPoP realm="govgate", error="invalid_token"' in \
        r.headers["www-authenticate"]
    assert [rec.reason for rec in world.audit.records if rec.event_type == "forward_auth"
            and rec.status == 401] == ["the DPoP proof's htu is not the request's URL",
                                       "the DPoP proof's htu is not the request's URL",
                                       "a DPoP-bound token presented as Bearer"]
    # a bearer client is as before: its token needs no proof
    sync = ("bearer-sync", "bearer-sync-secret-0123456789abcdef")
    apply_state(world.services, {"clients": [{
        "client_id": sync[0], "name": "持有者同步", "department": "jgswj",
        "grant_types": ["client_credentials"], "secret": sync[1], "scope": "proxy"}]})
    basic = base64.b64encode(f"{sync[0]}:{sync[1]}".encode()).decode()
    r = await raw_request(world.gateway.port, "POST", "/oauth2/token",  # type: ignore[union-attr]
                          [("Authorization", f"Basic {basic}"), FORM],
                          body=b"grant_type=client_credentials")
    assert r.status == 200 and r.json()["token_type"] == "Bearer"
    plain = r.json()["access_token"]
    assert "cnf" not in claims_of(plain)
    r = await call(world, "/auth/verify", plain, None, scheme="Bearer", headers=front)
    assert r.status == 200, r.body
    # and a bearer token sent as DPoP is no bound token
    r = await call(world, "/auth/verify", plain, holder.proof("GET", original, token=plain),
                   headers=front)
    assert r.status == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
    # the state file: exported either way (applied back, false switches it off),
    # anything but true or false refused
    exported = {e["client_id"]: e for e in client_entries(world.services.engine)}
    assert exported[BOUND[0]]["dpop_bound"] is True and exported[sync[0]]["dpop_bound"] is False
    with pytest.raises(StateFileError) as info:
        apply_state(world.services, {"clients": [{**exported[sync[0]], "dpop_bound": "yes"}]})
    assert [str(p) for p in info.value.problems] == [
        "clients[0]: dpop_bound must be true or false"], info.value.problems


MOBILE = ("mobile-app", "http://127.0.0.1:9200/cb")


def _code_tokens(browser: TestClient, holder: Holder) -> dict[str, Any]:
    verifier, challenge = pkce()
    login(browser)
    code = code_from(authorize(browser, client_id=MOBILE[0], redirect_uri=MOBILE[1],
                               challenge=challenge, scope="openid profile offline_access"))
    r = browser.post("/oauth2/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": MOBILE[1],
        "code_verifier": verifier, "client_id": MOBILE[0]},
        headers={"DPoP": holder.proof("POST", f"{ISSUER}/oauth2/token")})
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_a_public_clients_refresh_token_is_bound_to_its_key(
        client: TestClient, idp: Services) -> None:  # noqa: F811 - the fixtures
    # `govgate client dpop` (Keycloak's "Require DPoP bound tokens"): no proof, no token,
    # refused before the code is looked at
    env = {"GOVGATE_HOME": str(idp.settings.home),
           "GOVGATE_DATABASE_URL": idp.settings.database_url, "LANG": "C.UTF-8"}
    result = CliRunner().invoke(cli, ["client", "dpop", MOBILE[0], "--require"], env=env,
                                catch_exceptions=False)
    assert result.exit_code == 0 and MOBILE[0] in result.output, result.output
    parts(idp).provider.server.clients.invalidate()  # another process's change: within 1 s
    r = client.post("/oauth2/token", data={
        "grant_type": "authorization_code", "code": "no-such-code", "redirect_uri": MOBILE[1],
        "code_verifier": "v" * 43, "client_id": MOBILE[0]})
    assert r.status_code == 400 and r.json()["error"] == "invalid_dpop_proof", r.text
    holder = Holder("PS256")
    tokens = _code_tokens(client, holder)
    assert tokens["token_type"] == "DPoP" and "refresh_token" in tokens
    assert claims_of(tokens["access_token"])["cnf"] == {"jkt": holder.jkt}
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
            "client_id": MOBILE[0]}
    url = f"{ISSUER}/oauth2/token"
    # a thief with the refresh token but not the key: refused, the token not used up
    for headers in ({}, {"DPoP": Holder().proof("POST", url)}):
        r = client.post("/oauth2/token", data=form, headers=headers)
        assert r.status_code == 400 and r.json()["error"] == "invalid_dpop_proof", r.text
    r = client.post("/oauth2/token", data=form, headers={"DPoP": holder.proof("POST", url)})
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "DPoP"
    token = r.json()["access_token"]
    assert claims_of(token)["cnf"] == {"jkt": holder.jkt}
    # the rotated refresh token is bound too
    again = {**form, "refresh_token": r.json()["refresh_token"]}
    r = client.post("/oauth2/token", data=again)
    assert r.status_code == 400 and r.json()["error"] == "invalid_dpop_proof", r.text

    # userinfo: the proof of the key, for userinfo's own URL
    userinfo = f"{ISSUER}/oauth2/userinfo"
    r = client.get("/oauth2/userinfo", headers={
        "Authorization": f"DPoP {token}", "DPoP": holder.proof("GET", userinfo, token=token)})
    assert r.status_code == 200, r.text
    assert r.json()["sub"] == "zhang.san"
    r = client.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"
    assert r.headers["www-authenticate"].startswith('DPoP realm="govgate", error="invalid_token"')
    r = client.get("/oauth2/userinfo", headers={
        "Authorization": f"DPoP {token}", "DPoP": holder.proof("GET", userinfo)})
    assert r.status_code == 401 and r.json()["error"] == "invalid_dpop_proof"
    # the API: past authentication with the proof (the token has no account scope: 403),
    # refused as Bearer with the DPoP challenge
    account = f"{ISSUER}/api/v1/account"
    r = client.get("/api/v1/account", headers={
        "Authorization": f"DPoP {token}", "DPoP": holder.proof("GET", account, token=token)})
    assert r.status_code == 403, r.text
    r = client.get("/api/v1/account", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith('DPoP realm="govgate", error="invalid_token"')
    # SCIM's 401 too (it sent the Bearer challenge on the base)
    r = client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith('DPoP realm="govgate", error="invalid_token"')
    # the admin API answers in the caller's language (Chinese by default): the DPoP
    # refusal's words as every other 401's, not English under a Chinese title
    for lang, detail in (("zh-CN", "凭据无效或缺失"), ("en", "invalid or missing credentials")):
        r = client.get("/api/v1/admin/clients", headers={
            "Authorization": f"Bearer {token}", "Accept-Language": lang})
        assert r.status_code == 401 and r.json()["detail"] == detail, r.text
        assert r.headers["www-authenticate"].startswith('DPoP realm="govgate"')


def test_an_export_from_before_dpop_applied_again_keeps_the_binding(
        client: TestClient, idp: Services, tmp_path: Any) -> None:  # noqa: F811 - fixtures
    # a file without dpop_bound (an export from before DPoP, an agency's file written by
    # hand) leaves a bound client bound, as a file without require_pkce leaves that;
    # `govgate client dpop --optional` says false and unbinds it
    sync = ("kept-bound", "kept-bound-secret-0123456789abcdef")
    apply_state(idp, {"clients": [{
        "client_id": sync[0], "name": "导出前绑定", "department": "jgswj",
        "grant_types": ["client_credentials"], "secret": sync[1], "scope": "proxy",
        "dpop_bound": True}]})
    env = {"GOVGATE_HOME": str(idp.settings.home),
           "GOVGATE_DATABASE_URL": idp.settings.database_url, "LANG": "C.UTF-8"}
    runner = CliRunner()
    exported = runner.invoke(cli, ["export"], env=env, catch_exceptions=False)
    assert exported.exit_code == 0 and "dpop_bound: true" in exported.output
    old = tmp_path / "old.yaml"
    old.write_text("".join(line for line in exported.output.splitlines(keepends=True)
                           if "dpop_bound" not in line), encoding="utf-8")
    result = runner.invoke(cli, ["apply", "-f", str(old)], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "dpop_bound" not in result.output, result.output  # on merge33: ~ client (dpop_bound)

    def token() -> Any:
        parts(idp).provider.server.clients.invalidate()  # another process's change
        return client.post("/oauth2/token", auth=sync, data={"grant_type": "client_credentials"})

    r = token()
    assert r.status_code == 400 and r.json()["error"] == "invalid_dpop_proof", r.text
    result = runner.invoke(cli, ["client", "dpop", sync[0], "--optional"], env=env,
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    r = token()
    assert r.status_code == 200 and r.json()["token_type"] == "Bearer", r.text


def test_a_code_bound_to_a_key_by_dpop_jkt_is_exchanged_only_with_a_proof_of_it(
        client: TestClient, idp: Services) -> None:  # noqa: F811 - the fixtures
    """RFC 9449 section 10: the authorization request names the key (``dpop_jkt``); a
    stolen code with its PKCE verifier gets no tokens bound to the thief's key (it did on
    the base), nor unbound ones, and the code is not used up by the attempt."""
    holder, thief = Holder(), Holder()
    verifier, challenge = pkce()
    login(client)
    r = authorize(client, client_id=MOBILE[0], redirect_uri=MOBILE[1], challenge=challenge,
                  scope="openid", dpop_jkt="not-a-thumbprint")
    assert r.status_code == 302 and "error=invalid_request" in r.headers["location"], r.text
    code = code_from(authorize(client, client_id=MOBILE[0], redirect_uri=MOBILE[1],
                               challenge=challenge, scope="openid", dpop_jkt=holder.jkt))
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": MOBILE[1],
            "code_verifier": verifier, "client_id": MOBILE[0]}
    url = f"{ISSUER}/oauth2/token"
    for headers in ({"DPoP": thief.proof("POST", url)}, {}):
        r = client.post("/oauth2/token", data=form, headers=headers)
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
        assert "dpop_jkt" in r.json()["error_description"]
    r = client.post("/oauth2/token", data=form, headers={"DPoP": holder.proof("POST", url)})
    assert r.status_code == 200, r.text
    assert claims_of(r.json()["access_token"])["cnf"] == {"jkt": holder.jkt}
    r = client.post("/oauth2/token", data=form, headers={"DPoP": holder.proof("POST", url)})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text  # used


def test_the_migration_mirrors_the_tables(engine: sa.Engine) -> None:
    only = sa.MetaData()
    for table in (dpop_jtis, dpop_refresh, authorization_codes):
        table.to_metadata(only)
    assert_mirrors(engine, only)
    column = {c["name"]: c for c in sa.inspect(engine).get_columns("clients")}["dpop_bound"]
    assert not column["nullable"] and not clients.c.dpop_bound.nullable
    # the clients table's branch goes on after it (0031: the codes' dpop_jkt, then
    # clients.lenient_assertion_audience, 0032: clients.static_credential, then
    # clients.id_token_signed_response_alg and consent_required)
    assert "0029_dpop" not in head_revisions() and \
        "0032_legacy_static_credential" not in head_revisions() and \
        "0032_oidc8_rs256_consent" in head_revisions()


async def test_behind_a_real_nginx_the_proof_names_the_url_the_client_called(
        world: World, nginx: int) -> None:  # noqa: F811 - the fixture
    """docs/nginx-forward-auth.conf as shipped: nginx passes the client's DPoP field to
    /auth/verify with the request line and the host it addressed (with its port)."""
    register(world)
    holder = Holder()
    token = await bound_token(world, holder)
    url = f"http://127.0.0.1:{nginx}/api/items"

    async def get(proof: str | None, scheme: str = "DPoP") -> Any:
        headers = [("Authorization", f"{scheme} {token}")]
        if proof is not None:
            headers.append(("DPoP", proof))
        return await raw_request(nginx, "GET", "/api/items?a=1", headers)

    r = await get(holder.proof("GET", url, token=token))
    assert r.status == 200, r.body
    seen = world.echo.seen[-1]
    assert seen["raw_path"] == "/api/items"
    names = [k.lower() for k, _ in seen["headers"]]
    assert "authorization" not in names
    before = len(world.echo.seen)
    assert (await get(holder.proof("GET", url, token=token), "Bearer")).status == 401
    r = await get(None)
    # forward-auth's DPoP challenge, not the refusal page's Bearer one (on the base)
    assert r.status == 401
    assert r.headers["www-authenticate"] == \
        f'DPoP realm="govgate", error="invalid_dpop_proof", {ALGS}'
    assert "dpop-nonce" not in r.headers  # nonces off: nginx adds no empty field
    assert (await get(holder.proof("GET", f"http://127.0.0.1:{nginx}/api/other",
                                   token=token))).status == 401
    assert len(world.echo.seen) == before
