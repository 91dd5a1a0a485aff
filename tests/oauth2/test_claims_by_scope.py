"""A relying party learns of the person what its scopes release, as Keycloak's client
scopes do: ``openid`` alone is who signed in (``sub``); ``profile`` the name; ``roles``
the roles; ``department`` the department and region; the last two only for a client
registered for them. The same in the ID token, userinfo, the access token (which the
relying party holds and can read) and introspection. The gateway's own decisions read
the person as stored, never these claims. Real tokens from the HTTP endpoints."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs, urlparse

from starlette.testclient import TestClient

from gateway.services import Services
from tests.oauth2.helpers import (
    FINANCE,
    OFFICE,
    OFFICE_CB,
    authorize,
    code_flow,
    consented,
    login,
    pkce,
)
from tests.tokens import access_token
from tests.wiring import apply_state

PERSON = ("name", "preferred_username", "department", "region", "roles")


def _claims(jwt: str) -> dict[str, Any]:
    part = jwt.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def _released(client: TestClient, scope: str) -> list[dict[str, Any]]:
    """What office-web sees of zhang.san having asked for ``scope``: the ID token, the
    access token, userinfo and introspection (by finance-system, a resource server)."""
    tokens = code_flow(client, scope=scope)
    assert tokens["scope"] == scope
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    info = client.get("/oauth2/userinfo", headers=bearer)
    assert info.status_code == 200, info.text
    seen = client.post("/oauth2/introspect", data={"token": tokens["access_token"]},
                       auth=FINANCE)
    assert seen.json()["active"] is True
    return [_claims(tokens["id_token"]), _claims(tokens["access_token"]), info.json(),
            seen.json()]


def _person(claims: dict[str, Any]) -> dict[str, Any]:
    return {k: claims[k] for k in PERSON if k in claims}


def test_openid_alone_releases_who_and_nothing_else(client: TestClient) -> None:
    for claims in _released(client, "openid"):
        assert claims["sub"] == "zhang.san"
        assert _person(claims) == {}, claims


def test_each_scope_releases_its_claims(client: TestClient) -> None:
    id_token, access, info, seen = _released(client, "openid profile")
    for claims in (id_token, info):
        assert _person(claims) == {"name": "张三", "preferred_username": "zhang.san"}
    assert _person(access) == _person(seen) == {}  # the name is no access token's claim
    for claims in _released(client, "openid roles"):
        assert _person(claims) == {"roles": ["data_steward", "staff"]}
    for claims in _released(client, "openid department"):
        assert _person(claims) == {"department": "jgswj", "region": "gx"}
    id_token, access, info, seen = _released(client, "openid profile roles department")
    signed_in = {"department": "jgswj", "region": "gx", "roles": ["data_steward", "staff"]}
    for claims in (id_token, info):
        assert _person(claims) == {"name": "张三", "preferred_username": "zhang.san",
                                   **signed_in}
    assert _person(access) == _person(seen) == signed_in


def test_a_client_not_registered_for_a_claim_scope_is_refused_it(
        client: TestClient, idp: Services) -> None:
    """mobile-app (a public client) is registered for no claim scope: asking for
    ``roles`` is invalid_scope at its redirect URI, as for a gateway scope."""
    login(client)
    _, challenge = pkce()
    r = authorize(client, client_id="mobile-app", redirect_uri="http://127.0.0.1:9200/cb",
                  scope="openid profile roles", challenge=challenge)
    assert r.status_code == 302
    query = parse_qs(urlparse(r.headers["location"]).query)
    assert query["error"] == ["invalid_scope"] and "code" not in query
    assert "roles" in query["error_description"][0]
    r = authorize(client, client_id="mobile-app", redirect_uri="http://127.0.0.1:9200/cb",
                  scope="openid department", challenge=challenge)
    assert parse_qs(urlparse(r.headers["location"]).query)["error"] == ["invalid_scope"]


def test_discovery_lists_the_claim_scopes(client: TestClient) -> None:
    meta = client.get("/.well-known/openid-configuration").json()
    assert {"roles", "department"} <= set(meta["scopes_supported"])
    assert {"roles", "department", "region", "name"} <= set(meta["claims_supported"])


def test_decisions_read_the_roles_as_stored_not_from_the_token(
        client: TestClient, idp: Services) -> None:
    """zhang.san (a data steward of jgswj) approves an application with office-web's
    token, which holds no ``roles`` claim: the steward's right comes from the store."""
    apply_state(idp, {"clients": [{
        "client_id": "office-web", "name": "办公用房管理系统", "department": "jgswj",
        "grant_types": ["authorization_code", "refresh_token"], "secret": OFFICE[1],
        "redirect_uris": [OFFICE_CB], "scope": "catalogue:write"}]})
    idp_client_cache_cleared(client)
    wang = access_token(idp, sub="wang.wu", department="nn-jgsw", client_id="nn-client")
    applied = client.post("/api/v1/catalogue/applications", json={
        "resource": "JG-0001", "items": ["plate_number"], "purpose": "车辆统计",
        "until": "2026-12-31", "basis": "统计制度"},
        headers={"Authorization": f"Bearer {wang}"})
    assert applied.status_code == 201, applied.text
    tokens = code_flow(client, scope="openid catalogue:write")
    held = _claims(tokens["access_token"])
    assert "roles" not in held and "department" not in held
    number = applied.json()["application"]["id"]
    r = client.post(f"/api/v1/catalogue/applications/{number}/approve", json={},
                    headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert r.status_code == 201, r.text
    # the same token of wang.wu (no steward of jgswj) is refused: the roles decide
    consented(idp, "wang.wu")  # nn-jgsw's wang.wu at jgswj's office-web
    wang_tokens = code_flow(client, scope="openid catalogue:write", username="wang.wu")
    again = client.post("/api/v1/catalogue/applications", json={
        "resource": "JG-0001", "items": ["brand"], "purpose": "车辆统计",
        "until": "2026-12-31", "basis": "统计制度"},
        headers={"Authorization": f"Bearer {wang}"})
    r = client.post(f"/api/v1/catalogue/applications/{again.json()['application']['id']}"
                    "/approve", json={},
                    headers={"Authorization": f"Bearer {wang_tokens['access_token']}"})
    assert r.status_code == 403, r.text


def idp_client_cache_cleared(client: TestClient) -> None:
    """A client's registration reaches the token endpoint within a second; the test
    does not wait for it."""
    client.app.state.gateway.provider.server.clients.invalidate()  # type: ignore[attr-defined]


def test_a_scope_taken_from_the_client_stops_its_claims_at_userinfo(
        client: TestClient, idp: Services) -> None:
    """office-web's registration loses ``roles``: its token issued before gets no
    ``roles`` at userinfo from then on (the token's scope is read as the client may
    hold it now)."""
    tokens = code_flow(client, scope="openid roles department")
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert "roles" in client.get("/oauth2/userinfo", headers=bearer).json()
    apply_state(idp, {"clients": [{
        "client_id": "office-web", "name": "办公用房管理系统", "department": "jgswj",
        "grant_types": ["authorization_code", "refresh_token"], "secret": OFFICE[1],
        "redirect_uris": [OFFICE_CB], "scope": "department"}]})
    idp_client_cache_cleared(client)
    info = client.get("/oauth2/userinfo", headers=bearer).json()
    assert "roles" not in info and info["department"] == "jgswj"


def test_a_scope_taken_from_the_client_stops_its_claims_at_introspection(
        client: TestClient, idp: Services) -> None:
    """The same token at introspection (finance-system, a resource server): its
    ``scope`` and the claims of a scope the client lost are narrowed as userinfo's,
    before the token expires; the refresh token's scope too."""
    tokens = code_flow(client, scope="openid roles department")

    def introspected(token: str, by: tuple[str, str] = FINANCE) -> dict[str, Any]:
        seen = client.post("/oauth2/introspect", data={"token": token}, auth=by)
        assert seen.status_code == 200 and seen.json()["active"] is True, seen.text
        return dict(seen.json())

    before = introspected(tokens["access_token"])
    assert before["roles"] == ["data_steward", "staff"] and before["region"] == "gx"
    assert set(before["scope"].split()) == {"openid", "roles", "department"}
    apply_state(idp, {"clients": [{
        "client_id": "office-web", "name": "办公用房管理系统", "department": "jgswj",
        "grant_types": ["authorization_code", "refresh_token"], "secret": OFFICE[1],
        "redirect_uris": [OFFICE_CB], "scope": "department"}]})
    idp_client_cache_cleared(client)
    after = introspected(tokens["access_token"])
    assert "roles" not in after and set(after["scope"].split()) == {"openid", "department"}
    assert (after["department"], after["region"]) == ("jgswj", "gx")
    assert after["exp"] == before["exp"]  # the same token, not expired
    # a refresh token only to its own client
    assert "roles" not in introspected(tokens["refresh_token"], OFFICE)["scope"].split()
    apply_state(idp, {"clients": [{
        "client_id": "office-web", "name": "办公用房管理系统", "department": "jgswj",
        "grant_types": ["authorization_code", "refresh_token"], "secret": OFFICE[1],
        "redirect_uris": [OFFICE_CB], "scope": ""}]})
    idp_client_cache_cleared(client)
    bare = introspected(tokens["access_token"])
    assert not {"roles", "department", "region"} & set(bare)
    assert bare["scope"] == "openid"
