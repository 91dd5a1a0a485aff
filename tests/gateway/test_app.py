"""The HTTP application's own routes, through Starlette's in-process client."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.passwords import generate_password
from gateway.services import open_services
from gateway.settings import Settings
from gateway.setup import initialise
from tests.wiring import parts


@pytest.fixture
def client(settings: Settings):
    initialise(settings, password_factory=generate_password)
    services = open_services(settings)
    with TestClient(create_app(parts(services))) as c:
        yield c
    services.close()


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_jwks_is_public_only_and_cacheable(client: TestClient) -> None:
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["cache-control"].startswith("public, max-age=")
    keys = response.json()["keys"]
    assert {k["use"] for k in keys} >= {"sig"} or keys
    for jwk in keys:
        assert {"kid", "alg", "kty"} <= set(jwk)
        assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(jwk)


def test_unknown_path_is_problem_json(client: TestClient) -> None:
    response = client.get("/no/such/thing")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


def test_servers_freeze_the_heap_at_start_and_the_proxy_skips_the_router(
        settings: Settings) -> None:
    import gc

    initialise(settings, password_factory=generate_password)
    services = open_services(settings)
    gc.unfreeze()
    try:
        with TestClient(create_app(parts(services), freeze_heap=True)) as c:
            assert gc.get_freeze_count() > 0
            # /s/... answers from the proxy itself (problem+json, request id), also for
            # a path the router would not have matched
            r = c.get("/s/")
            assert r.status_code in (400, 404)
            assert r.headers["content-type"] == "application/problem+json"
            assert r.headers["x-request-id"]
    finally:
        gc.unfreeze()
        services.close()


def test_literal_router_answers_as_starlettes_scan_would(client: TestClient) -> None:
    from starlette.routing import Router

    from gateway.app import LiteralRouter, routes

    app = client.app
    assert isinstance(app.router, LiteralRouter)
    assert "/oauth2/token" in app.router.literal
    plain = client.__class__(type(app)(routes=routes()))
    plain.app.state.gateway = app.state.gateway
    assert type(plain.app.router) is Router
    for method, path in [("GET", "/healthz"), ("POST", "/healthz"), ("GET", "/oauth2/token"),
                         ("POST", "/oauth2/token"), ("GET", "/healthz/"), ("GET", "/nowhere"),
                         ("GET", "/.well-known/openid-configuration")]:
        ours = client.request(method, path, follow_redirects=False)
        theirs = plain.request(method, path, follow_redirects=False)
        assert ours.status_code == theirs.status_code, (method, path)
    assert client.get("/oauth2/token").status_code == 405
