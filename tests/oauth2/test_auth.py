"""gateway.idp.authenticator.Authenticator: bearer tokens and session cookies, and revocation
seen by another process within a second."""

from __future__ import annotations

import time

import pytest
from starlette.requests import Request
from starlette.testclient import TestClient

from gateway.errors import Unauthorized
from gateway.idp.oauth2.provider import SESSION_COOKIE
from gateway.services import Services, open_services
from tests.oauth2.helpers import FINANCE, OFFICE, code_flow, login
from tests.wiring import parts


def _request(authorization: str | None = None, cookie: str | None = None) -> Request:
    headers = []
    if authorization:
        headers.append((b"authorization", authorization.encode()))
    if cookie:
        headers.append((b"cookie", f"{SESSION_COOKIE}={cookie}".encode()))
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers,
                    "query_string": b""})


async def test_bearer_and_session_principals(client: TestClient, idp: Services) -> None:
    auth = parts(idp).authenticator
    tokens = code_flow(client)
    p = await auth.authenticate(_request(f"Bearer {tokens['access_token']}"))
    assert p.via == "bearer" and p.subject == "zhang.san" and p.username == "zhang.san"
    assert p.department == "jgswj" and p.region == "gx" and "staff" in p.roles
    assert p.client_id == "office-web" and "openid" in p.scope and p.token_id and p.session_id
    cookie = client.cookies.get(SESSION_COOKIE)
    s = await auth.authenticate(_request(cookie=cookie))
    assert s.via == "session" and s.session_id == p.session_id and s.token_id is None
    cc = client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                     auth=FINANCE).json()
    c = await auth.authenticate(_request(f"Bearer {cc['access_token']}"))
    assert c.subject == "client:finance-system" and c.username is None
    assert c.department == "czt" and c.client_id == "finance-system"
    with pytest.raises(Unauthorized):
        await auth.authenticate(_request(f"Bearer {cc['access_token']}"), audience="other")
    assert (await auth.authenticate(_request(f"Bearer {cc['access_token']}"),
                                    audience=idp.settings.issuer)).client_id == "finance-system"
    for bad in (None, "Bearer ", "Bearer x.y.z", "ApiKey abc"):
        with pytest.raises(Unauthorized) as exc:
            await auth.authenticate(_request(bad))
        assert exc.value.description == "invalid or missing credentials"
    # HTTP Basic (an old system's client id and secret) is told where a token comes from
    with pytest.raises(Unauthorized) as exc:
        await auth.authenticate(_request("Basic abc"))
    assert exc.value.description.startswith("HTTP Basic is not accepted here")


async def test_revocation_reaches_another_process_within_a_second(
        client: TestClient, idp: Services) -> None:
    other = open_services(idp.settings)  # a second gateway process on the same database
    try:
        remote = parts(other).authenticator
        tokens = code_flow(client)
        req = _request(f"Bearer {tokens['access_token']}")
        assert (await remote.authenticate(req)).username == "zhang.san"
        assert client.post("/oauth2/revoke", data={"token": tokens["access_token"]},
                           auth=OFFICE).status_code == 200
        deadline = time.monotonic() + 1.0
        while True:
            try:
                await remote.authenticate(req)
            except Unauthorized:
                break
            assert time.monotonic() < deadline, "revocation not seen within 1 s"
            time.sleep(0.05)
    finally:
        other.close()


async def test_session_revoke_by_user(client: TestClient, idp: Services) -> None:
    auth = parts(idp).authenticator
    tokens = code_flow(client)
    cookie = client.cookies.get(SESSION_COOKIE)
    sids, families = parts(idp).provider.store.revoke_user("zhang.san", ttl_seconds=600)
    assert len(sids) == 1 and families >= 1
    with pytest.raises(Unauthorized):
        await auth.authenticate(_request(cookie=cookie))
    auth.deny.refresh(force=True)
    with pytest.raises(Unauthorized) as exc:
        await auth.authenticate(_request(f"Bearer {tokens['access_token']}"))
    assert exc.value.reason in ("session revoked", "token revoked")  # type: ignore[attr-defined]


def test_must_change_session_is_not_a_principal(client: TestClient, idp: Services) -> None:
    login(client, username="secadmin", password="Admin-Passw0rd-2026!")
    cookie = client.cookies.get(SESSION_COOKIE)
    with pytest.raises(Unauthorized):
        parts(idp).authenticator.from_session(cookie)
