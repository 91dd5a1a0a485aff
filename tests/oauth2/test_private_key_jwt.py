"""RFC 7523 private_key_jwt client authentication."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.services import Services
from gateway.settings import Settings
from tests.oauth2.helpers import EXTRA_CLIENTS, audit_events, close_services, make_services

KEY = ECKey.generate_key("P-256", parameters={"kid": "vehicles-1"})
ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
def jwt_client(settings: Settings) -> Iterator[tuple[Services, TestClient]]:
    entry = {"client_id": "vehicles-sync", "name": "车辆同步", "department": "jgswj",
             "grant_types": ["client_credentials"], "token_endpoint_auth_method":
             "private_key_jwt", "jwks": {"keys": [KEY.as_dict(private=False)]}}
    services = make_services(settings, extra_clients=[*EXTRA_CLIENTS, entry])
    with TestClient(create_app(services), base_url="http://127.0.0.1:8080") as c:
        yield services, c
    close_services(services)


def _assertion(key: ECKey = KEY, **over: object) -> str:
    now = int(time.time())
    claims = {"iss": "vehicles-sync", "sub": "vehicles-sync",
              "aud": "http://127.0.0.1:8080/oauth2/token", "iat": now, "exp": now + 60,
              "jti": str(uuid.uuid4())}
    claims.update(over)
    return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key)


def test_private_key_jwt(jwt_client: tuple[Services, TestClient]) -> None:
    idp, client = jwt_client
    a = _assertion()
    r = client.post("/oauth2/token", data={"grant_type": "client_credentials",
                                           "client_assertion_type": ASSERTION,
                                           "client_assertion": a})
    assert r.status_code == 200, r.text
    # the same assertion again (jti replay) is refused
    r = client.post("/oauth2/token", data={"grant_type": "client_credentials",
                                           "client_assertion_type": ASSERTION,
                                           "client_assertion": a})
    assert r.status_code in (400, 401) and r.json()["error"] == "invalid_client"
    # signed by another key
    other = ECKey.generate_key("P-256", parameters={"kid": "vehicles-1"})
    r = client.post("/oauth2/token", data={"grant_type": "client_credentials",
                                           "client_assertion_type": ASSERTION,
                                           "client_assertion": _assertion(other)})
    assert r.json()["error"] == "invalid_client"
    # wrong audience
    r = client.post("/oauth2/token", data={"grant_type": "client_credentials",
                                           "client_assertion_type": ASSERTION,
                                           "client_assertion": _assertion(aud="https://x")})
    assert r.json()["error"] == "invalid_client"
    assert len([e for e in audit_events(idp, "token_denied")]) == 3
