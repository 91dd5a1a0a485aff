"""The issuer's transport: a plain-HTTP issuer on a public host name gets no tokens
(RFC 6749 §3.2 requires TLS at the token endpoint); HTTPS and loopback do."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.settings import Settings, load_settings
from tests.oauth2.helpers import FINANCE, close_services, make_services
from tests.wiring import parts


def _client(env: dict[str, str], issuer: str) -> Iterator[TestClient]:
    settings: Settings = load_settings({**env, "GOVGATE_ISSUER": issuer})
    services = make_services(settings)
    try:
        with TestClient(create_app(parts(services)), base_url="http://127.0.0.1:8080",
                        raise_server_exceptions=False) as c:
            yield c
    finally:
        close_services(services)


def _token(client: TestClient) -> tuple[int, dict]:
    r = client.post("/oauth2/token", data={"grant_type": "client_credentials"}, auth=FINANCE)
    return r.status_code, r.json()


@pytest.mark.parametrize("issuer", ["http://idp.example.gov", "http://idp.example.gov:8080/sso"])
def test_plain_http_issuer_on_a_public_host_issues_nothing(env: dict[str, str],
                                                           issuer: str) -> None:
    for client in _client(env, issuer):
        for _ in range(2):  # the answer for an origin is cached: the refusal is not
            status, body = _token(client)
            assert status == 400
            assert body["title"].startswith("insecure_transport: the issuer is plain HTTP")
            assert "access_token" not in body


@pytest.mark.parametrize("issuer", ["https://idp.example.gov", "http://127.0.0.1:8080",
                                    "http://localhost:8080"])
def test_https_and_loopback_issuers_issue_tokens(env: dict[str, str], issuer: str) -> None:
    for client in _client(env, issuer):
        status, body = _token(client)
        assert status == 200, body
        assert body["token_type"].lower() == "bearer"
