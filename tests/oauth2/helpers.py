"""Shared set-up for the identity-provider tests: an initialised gateway with the
demo organisation and clients, an audit log, and small protocol helpers."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import sqlalchemy as sa
from starlette.testclient import TestClient

from audit import AuditLog
from audit.tables import records
from gateway.clock import FrozenClock
from gateway.demo import DEMO_STATE
from gateway.services import Services, open_services
from gateway.settings import Settings
from gateway.statefile import load_file
from tests.conftest import initialised
from tests.wiring import apply_state, parts

ROOT = Path(__file__).resolve().parents[2]
DEMO_PASSWORD = "Demo-Passw0rd-2026"
OFFICE = ("office-web", "demo-office-secret-0123456789abcdef")
FINANCE = ("finance-system", "demo-finance-secret-0123456789abcdef")
OFFICE_CB = "http://127.0.0.1:9102/callback"

EXTRA_CLIENTS = [
    {"client_id": "mobile-app", "name": "移动办公", "department": "jgswj",
     "grant_types": ["authorization_code", "refresh_token"],
     "token_endpoint_auth_method": "none", "redirect_uris": ["http://127.0.0.1:9200/cb"]},
]


def make_services(settings: Settings, *, clock: Any = None, bcl_uri: str | None = None,
                  extra_clients: list[dict[str, Any]] | None = None) -> Services:
    initialised(settings)  # the admins' first password: ADMIN_PASSWORD
    kw = {"clock": clock} if clock is not None else {}
    services = open_services(settings, **kw)
    doc = load_file(DEMO_STATE)
    for c in doc["clients"]:
        if c["client_id"] == "office-web" and bcl_uri:
            c["backchannel_logout_uri"] = bcl_uri
    doc["clients"] += list(extra_clients if extra_clients is not None else EXTRA_CLIENTS)
    apply_state(services, doc)
    services.audit = AuditLog(services.engine, keys=services.keys, writer_id="idp-test",
                              clock=(lambda: clock().timestamp()) if clock else __import__(
                                  "time").time)
    return services


def close_services(services: Services) -> None:
    """Stop the test's gateway's watcher, close the audit log, then the engine."""
    parts(services).policies.close()
    services.audit.close_sync()
    services.close()


def frozen_now() -> FrozenClock:
    from datetime import UTC, datetime

    return FrozenClock(datetime.now(UTC).replace(microsecond=0))


def audit_events(services: Services, event_type: str | None = None) -> list[dict[str, Any]]:
    q = sa.select(records).order_by(records.c.id)
    if event_type:
        q = q.where(records.c.event_type == event_type)
    with services.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]


def consented(services: Services, username: str, client_id: str = "office-web",
              scope: str = "openid profile email phone roles department offline_access "
                           "proxy admin audit:read account catalogue:read catalogue:write "
                           "stats:read") -> None:
    """``username`` consented to ``client_id`` before (gateway.idp.oauth2.consent): a
    test of something else signs a person of another department in without the page
    (the page itself: tests/oauth2/test_consent.py)."""
    from gateway.idp.oauth2.consent import Consents

    Consents(services.engine, services.clock).grant(username, client_id, set(scope.split()))


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()) \
        .rstrip(b"=").decode()
    return verifier, challenge


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no csrf field"
    return m.group(1)


def login(client: TestClient, username: str = "zhang.san", password: str = DEMO_PASSWORD,
          next_url: str = "/portal") -> Any:
    page = client.get("/portal/login", params={"next": next_url})
    return client.post("/portal/login", data={
        "csrf_token": csrf_of(page.text), "username": username, "password": password,
        "next": next_url}, follow_redirects=False)


def authorize(client: TestClient, *, client_id: str = OFFICE[0], redirect_uri: str = OFFICE_CB,
              scope: str = "openid profile", state: str = "st-1", nonce: str = "n-1",
              challenge: str | None = None, **extra: str) -> Any:
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
              "scope": scope, "state": state, "nonce": nonce, **extra}
    if challenge:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    return client.get("/oauth2/authorize", params=params, follow_redirects=False)


def code_from(response: Any) -> str:
    assert response.status_code == 302, response.text
    q = parse_qs(urlparse(response.headers["location"]).query)
    assert "code" in q, response.headers["location"]
    return q["code"][0]


def code_flow(client: TestClient, *, verifier: str | None = None,
              challenge: str | None = None, username: str = "zhang.san",
              scope: str = "openid profile") -> dict[str, Any]:
    """Log in as ``username``, get a code for office-web and exchange it."""
    if verifier is None:
        verifier, challenge = pkce()
    login(client, username=username)
    code = code_from(authorize(client, challenge=challenge, scope=scope))
    r = client.post("/oauth2/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": OFFICE_CB,
        "code_verifier": verifier}, auth=OFFICE)
    assert r.status_code == 200, r.text
    return dict(r.json())
