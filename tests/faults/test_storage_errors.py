"""A step that meets the database gone answers 503, never 500, wherever it is.

The outage tests (test_database_outage.py) find these under load, by timing: a
proxy call whose system lookup failed while the database was going away, and
whose audit record was written once it was back, was answered 500 (and a portal
sign-in 500 in plain text). Here each such step is made to fail on purpose, in
this process, so the answer is checked every time.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from bench.gateway_world import LOADER, PASSWORD, Upstream, audit_records, state
from gateway.app import create_app
from gateway.org import Org
from gateway.root import Gateway
from gateway.services import Services, open_services
from gateway.settings import Settings
from gateway.setup import initialise
from tests.oauth2.helpers import csrf_of
from tests.wiring import apply_state, parts


@dataclass
class World:
    services: Services
    built: Gateway
    http: TestClient
    token: str


def _gone(*args: Any, **kwargs: Any) -> Any:
    raise sa.exc.OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))


@pytest.fixture
def world(settings: Settings, upstream: Upstream) -> Iterator[World]:
    initialise(settings, password_factory=lambda: secrets.token_urlsafe(16) + "-Aa1!")
    services = open_services(settings)
    apply_state(services, state(upstream.url, user_count=1))
    built = parts(services)
    # from loopback, as nginx on the gateway's host: forward-auth answers no other peer
    with TestClient(create_app(built), base_url="http://127.0.0.1:8080",
                    client=("127.0.0.1", 50000)) as http:
        r = http.post("/oauth2/token", auth=LOADER, data={"grant_type": "client_credentials",
                                                          "scope": "proxy"})
        yield World(services, built, http, r.json()["access_token"])
    services.close()


def _is_storage_503(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:govgate:error:storage"


def test_the_proxy_answers_503_and_audits_why(world: World,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(world.built.proxy.systems, "get", _gone)
    r = world.http.get("/s/api/api/x", headers={"Authorization": f"Bearer {world.token}"})
    _is_storage_503(r)
    [record] = audit_records(world.services.settings.db_url, r.headers["x-request-id"])
    assert (record["outcome"], record["status"]) == ("error", 503)
    assert record["extra"]["error"].startswith("OperationalError")


def test_forward_auth_answers_503_and_audits_why(world: World,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(world.built.proxy.systems, "get", _gone)
    r = world.http.get("/auth/verify", headers={
        "Authorization": f"Bearer {world.token}", "X-Original-Method": "GET",
        "X-Original-URI": "/s/api/api/x"})
    _is_storage_503(r)
    [record] = audit_records(world.services.settings.db_url, r.headers["x-request-id"])
    assert (record["event_type"], record["status"]) == ("forward_auth", 503)


def test_a_portal_sign_in_answers_503_problem(world: World,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    form = world.http.get("/portal/login")
    monkeypatch.setattr(Org, "password_hash", _gone)
    r = world.http.post("/portal/login", data={
        "username": "user000", "password": PASSWORD, "csrf_token": csrf_of(form.text),
        "next": "/portal"}, follow_redirects=False)
    _is_storage_503(r)
