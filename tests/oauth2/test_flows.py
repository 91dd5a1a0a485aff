"""The happy paths: discovery, code + PKCE with ID token, refresh rotation,
client credentials, userinfo, introspection, revocation."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from gateway.services import Services
from tests.oauth2.helpers import FINANCE, OFFICE, OFFICE_CB, audit_events, code_flow


def test_discovery_lists_the_endpoints(client: TestClient) -> None:
    meta = client.get("/.well-known/openid-configuration").json()
    assert meta["issuer"] == "http://127.0.0.1:8080"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert "private_key_jwt" in meta["token_endpoint_auth_methods_supported"]
    assert client.get("/.well-known/oauth-authorization-server").json() == meta
    jwks = client.get("/.well-known/jwks.json").json()
    assert jwks["keys"]


def test_code_flow_issues_id_and_access_tokens(client: TestClient, idp: Services) -> None:
    # office-web is registered for the claim scopes roles and department (demo.yaml)
    tokens = code_flow(client, scope="openid profile roles department")
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 600
    at = idp.keys.verify_jwt("token", tokens["access_token"])
    for claim in ("iss", "aud", "exp", "iat", "nbf", "sub", "department", "roles", "region",
                  "client_id", "scope", "jti"):
        assert claim in at, claim
    assert at["sub"] == "zhang.san" and at["department"] == "jgswj" and at["region"] == "gx"
    idt = idp.keys.verify_jwt("token", tokens["id_token"])
    assert idt["aud"] == "office-web" and idt["nonce"] == "n-1" and idt["sid"]
    assert "at_hash" in idt
    info = client.get("/oauth2/userinfo",
                      headers={"Authorization": f"Bearer {tokens['access_token']}"}).json()
    assert info["sub"] == "zhang.san" and info["department"] == "jgswj"
    issued = audit_events(idp, "token_issued")
    assert issued and issued[-1]["actor_user"] == "zhang.san"


def test_access_token_header_is_at_jwt(client: TestClient) -> None:
    import base64
    import json

    tokens = code_flow(client)
    head = tokens["access_token"].split(".")[0]
    header = json.loads(base64.urlsafe_b64decode(head + "=="))
    assert header["typ"] == "at+jwt"


def test_refresh_rotates_and_reuse_revokes_family(client: TestClient, idp: Services) -> None:
    tokens = code_flow(client)
    r1 = client.post("/oauth2/token", data={"grant_type": "refresh_token",
                                            "refresh_token": tokens["refresh_token"]},
                     auth=OFFICE)
    assert r1.status_code == 200, r1.text
    new = r1.json()
    assert new["refresh_token"] != tokens["refresh_token"]
    # replay the first refresh token: refused, and the rotated one dies with it
    r2 = client.post("/oauth2/token", data={"grant_type": "refresh_token",
                                            "refresh_token": tokens["refresh_token"]},
                     auth=OFFICE)
    assert r2.status_code == 400 and r2.json()["error"] == "invalid_grant"
    r3 = client.post("/oauth2/token", data={"grant_type": "refresh_token",
                                            "refresh_token": new["refresh_token"]},
                     auth=OFFICE)
    assert r3.status_code == 400 and r3.json()["error"] == "invalid_grant"
    reuse = audit_events(idp, "token_refresh_token_reuse")
    assert reuse and reuse[0]["outcome"] == "deny"
    # the access token issued by the rotated refresh token is revoked too
    intro = client.post("/oauth2/introspect", data={"token": new["access_token"]},
                        auth=FINANCE).json()
    assert intro == {"active": False}


def test_client_credentials(client: TestClient, idp: Services) -> None:
    r = client.post("/oauth2/token", data={"grant_type": "client_credentials"}, auth=FINANCE)
    assert r.status_code == 200, r.text
    body = r.json()
    assert "refresh_token" not in body and "id_token" not in body
    claims = idp.keys.verify_jwt("token", body["access_token"])
    assert claims["sub"] == "finance-system" and claims["department"] == "czt"
    assert claims["client_id"] == "finance-system"
    # the client is registered for client_secret_basic: another method is refused
    r = client.post("/oauth2/token", data={"grant_type": "client_credentials",
                                           "client_id": FINANCE[0], "client_secret": FINANCE[1]})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_introspection_and_revocation(client: TestClient, idp: Services) -> None:
    tokens = code_flow(client)
    at = tokens["access_token"]
    intro = client.post("/oauth2/introspect", data={"token": at}, auth=FINANCE).json()
    assert intro["active"] is True and intro["sub"] == "zhang.san"
    assert intro["client_id"] == "office-web"
    rt_intro = client.post("/oauth2/introspect", data={"token": tokens["refresh_token"],
                                                       "token_type_hint": "refresh_token"},
                           auth=OFFICE).json()
    assert rt_intro["active"] is True
    # a refresh token is not shown to another client
    other = client.post("/oauth2/introspect", data={"token": tokens["refresh_token"]},
                        auth=FINANCE).json()
    assert other == {"active": False}
    assert client.post("/oauth2/revoke", data={"token": at}, auth=OFFICE).status_code == 200
    assert client.post("/oauth2/introspect", data={"token": at},
                       auth=FINANCE).json() == {"active": False}
    r = client.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {at}"})
    assert r.status_code == 401
    assert client.post("/oauth2/revoke", data={"token": tokens["refresh_token"]},
                       auth=OFFICE).status_code == 200
    r = client.post("/oauth2/token", data={"grant_type": "refresh_token",
                                           "refresh_token": tokens["refresh_token"]},
                    auth=OFFICE)
    assert r.json()["error"] == "invalid_grant"
    kinds = {e["event_type"] for e in audit_events(idp)}
    assert {"token_introspected", "token_revoked"} <= kinds


def test_public_client_requires_pkce(client: TestClient) -> None:
    from tests.oauth2.helpers import authorize, code_from, login, pkce

    login(client)
    r = authorize(client, client_id="mobile-app", redirect_uri="http://127.0.0.1:9200/cb")
    assert r.status_code == 302 and "error=invalid_request" in r.headers["location"]
    verifier, challenge = pkce()
    code = code_from(authorize(client, client_id="mobile-app",
                               redirect_uri="http://127.0.0.1:9200/cb", challenge=challenge))
    r = client.post("/oauth2/token", data={
        "grant_type": "authorization_code", "code": code, "client_id": "mobile-app",
        "redirect_uri": "http://127.0.0.1:9200/cb", "code_verifier": verifier})
    assert r.status_code == 200, r.text


def _assert_no_token(body: dict[str, Any]) -> None:
    assert "access_token" not in body and "refresh_token" not in body


def test_state_round_trips(client: TestClient) -> None:
    from tests.oauth2.helpers import authorize, login, pkce

    login(client)
    _, challenge = pkce()
    r = authorize(client, state="xyz-123", challenge=challenge)
    assert "state=xyz-123" in r.headers["location"]
    assert r.headers["location"].startswith(OFFICE_CB + "?")
