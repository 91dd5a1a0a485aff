"""RFC 7523 private_key_jwt client authentication."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.services import Services
from gateway.settings import Settings
from tests.oauth2.helpers import EXTRA_CLIENTS, audit_events, close_services, make_services
from tests.wiring import parts

KEY = ECKey.generate_key("P-256", parameters={"kid": "vehicles-1"})
ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
def jwt_client(settings: Settings) -> Iterator[tuple[Services, TestClient]]:
    yield from _served(settings)


def _served(settings: Settings) -> Iterator[tuple[Services, TestClient]]:
    entry = {"client_id": "vehicles-sync", "name": "车辆同步", "department": "jgswj",
             "grant_types": ["client_credentials"], "token_endpoint_auth_method":
             "private_key_jwt", "jwks": {"keys": [KEY.as_dict(private=False)]}}
    services = make_services(settings, extra_clients=[*EXTRA_CLIENTS, entry])
    with TestClient(create_app(parts(services)), base_url="http://127.0.0.1:8080") as c:
        yield services, c
    close_services(services)


def _assertion(key: ECKey = KEY, **over: object) -> str:
    now = int(time.time())
    claims = {"iss": "vehicles-sync", "sub": "vehicles-sync",
              "aud": "http://127.0.0.1:8080", "iat": now, "exp": now + 60,
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


def _token_with(client: TestClient, assertion: str, path: str = "/oauth2/token") -> Any:
    data = {"client_assertion_type": ASSERTION, "client_assertion": assertion}
    if path == "/oauth2/token":
        data["grant_type"] = "client_credentials"
    else:
        data["token"] = "whatever"
    return client.post(path, data=data)


# exp beyond what a datetime (or the platform's time_t) holds, far but representable,
# and not a number at all; iat and nbf likewise
HOSTILE_TIMES: list[dict[str, object]] = [
    {"exp": 10**20}, {"exp": 2**63}, {"exp": 2**64 + 1}, {"exp": 1e300},
    {"exp": 253402300800},  # 10000-01-01: one second past datetime.max
    {"exp": int(time.time()) + 30 * 86400},  # valid for a month: not an assertion's life
    {"exp": "9999999999"}, {"exp": None}, {"exp": True}, {"exp": [1]}, {"exp": {"a": 1}},
    {"iat": "now"}, {"iat": 10**20}, {"iat": [0]},
    {"nbf": "then"}, {"nbf": 10**20}, {"nbf": {"a": 1}},
]


@pytest.mark.parametrize("over", HOSTILE_TIMES, ids=repr)
def test_hostile_exp_iat_nbf_are_invalid_client_and_audited(
        jwt_client: tuple[Services, TestClient], over: dict[str, object]) -> None:
    """An exp past datetime's range used to reach ``datetime.fromtimestamp`` (the jti
    store's expiry) and answer 500, unaudited. Every one of these is invalid_client,
    401 like any other failed client authentication, and a token_denied record."""
    idp, client = jwt_client
    r = _token_with(client, _assertion(**over))
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "invalid_client"
    assert "access_token" not in r.json()
    denied = audit_events(idp, "token_denied")
    assert len(denied) == 1 and denied[0]["reason"].startswith("invalid_client")
    assert denied[0]["actor_client"] == "vehicles-sync"
    assert audit_events(idp, "token_issued") == []
    # and the client still works with an honest assertion
    assert _token_with(client, _assertion()).status_code == 200


def test_huge_exp_at_introspection_and_revocation(
        jwt_client: tuple[Services, TestClient]) -> None:
    idp, client = jwt_client
    for path, event in (("/oauth2/introspect", "token_introspection_denied"),
                        ("/oauth2/revoke", "token_revocation_denied")):
        r = _token_with(client, _assertion(exp=10**20), path)
        assert r.status_code == 401, (path, r.text)
        assert r.json()["error"] == "invalid_client"
        assert len(audit_events(idp, event)) == 1, path


def test_every_assertion_failure_is_401(jwt_client: tuple[Services, TestClient]) -> None:
    """A bad signature, audience or replay answered 400 while a wrong client secret
    answered 401: one status for every failed client authentication."""
    idp, client = jwt_client
    a = _assertion()
    assert _token_with(client, a).status_code == 200
    other = ECKey.generate_key("P-256", parameters={"kid": "vehicles-1"})
    for bad in (a, _assertion(other), _assertion(aud="https://x"),
                _assertion(iss="someone-else"), "not.a.jwt"):
        r = _token_with(client, bad)
        assert r.status_code == 401 and r.json()["error"] == "invalid_client", r.text
        assert r.headers["www-authenticate"].startswith("Basic ")
    assert len(audit_events(idp, "token_denied")) == 5


def test_the_rule_before_for_clients_not_yet_changed(settings: Settings) -> None:
    """``client_assertion_audience = "issuer_or_token_endpoint"``: the token endpoint,
    or the issuer among other values, authenticates as before draft-ietf-oauth-rfc7523bis;
    a stranger's audience still does not (tests/oauth2/test_advisories.py: the strict default)."""
    lenient = dataclasses.replace(settings, client_assertion_audience="issuer_or_token_endpoint")
    for _idp, client in _served(lenient):
        for aud in ("http://127.0.0.1:8080/oauth2/token", "http://127.0.0.1:8080",
                    ["http://127.0.0.1:8080", "http://127.0.0.1:8080/oauth2/token"]):
            assert _token_with(client, _assertion(aud=aud)).status_code == 200, aud
        r = _token_with(client, _assertion(aud="https://x"))
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"
