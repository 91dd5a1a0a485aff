"""The identity provider against the 2025 advisories and OpenID Connect's edges, over a
real socket: one gateway for the module (uvicorn on 127.0.0.1, the demo organisation
and clients, a ``private_key_jwt`` client and a confidential client registered by a
state file that says nothing of PKCE).

What broke (each test failed before its fix; docs/seams.md, "Attack of 2026-12-05, sixth
session (the identity provider against the 2025 advisories)"):

- a client assertion naming the token endpoint, or the issuer beside other audiences,
  authenticated its client (RFC 10070 section 4, the OpenID Foundation's advisory of
  January 2025 on audience injection): at the token endpoint, introspection and
  revocation alike;
- no client but a public one could be made to send PKCE (RFC 9700 section 2.1.1), and
  a new client from the CLI or the admin API could leave it out;
- an unknown ``prompt`` value (``create``) was ignored and the user signed in, and
  discovery did not list the values it knows.

What held: a verifier for a code issued without a challenge (RFC 9700 section 4.8.2),
``plain``, ``prompt=none`` beside another value, ``client_secret_jwt`` (not offered).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey

from gateway.cli.main import cli
from gateway.services import Services
from tests.conftest import settings_of_its_own
from tests.oauth2.helpers import DEMO_PASSWORD, audit_events
from tests.oauth2.live import live_gateway

TIMEOUT = 10
ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
KEY = ECKey.generate_key("P-256", parameters={"kid": "sync-1"})
LEGACY = ("legacy-web", "l" * 40)
LEGACY_CB = "http://127.0.0.1:9300/cb"
LEGACY_ARGS = (LEGACY[0], LEGACY_CB)
CLIENTS = [
    {"client_id": "vehicles-sync", "name": "车辆同步", "department": "jgswj",
     "grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt",
     "jwks": {"keys": [KEY.as_dict(private=False)]}},
    # a state file that says nothing of require_pkce: the rule before it
    {"client_id": LEGACY[0], "name": "旧系统", "department": "jgswj",
     "grant_types": ["authorization_code"], "secret": LEGACY[1],
     "redirect_uris": [LEGACY_CB]},
]


@dataclass
class World:
    issuer: str
    services: Services
    discovery: dict[str, Any]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with settings_of_its_own(tmp_path_factory) as settings, \
            live_gateway(settings, extra_clients=CLIENTS) as (issuer, services):
        found = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=TIMEOUT)
        yield World(issuer, services, found.json())


@pytest.fixture(scope="module")
def browser(world: World) -> Iterator[requests.Session]:
    """A browser signed in to the portal as zhang.san."""
    with requests.Session() as session:
        page = session.get(f"{world.issuer}/portal/login", timeout=TIMEOUT)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf, page.text[:300]
        signed_in = session.post(f"{world.issuer}/portal/login", data={
            "csrf_token": csrf.group(1), "username": "zhang.san", "password": DEMO_PASSWORD,
            "next": "/portal"}, allow_redirects=False, timeout=TIMEOUT)
        assert signed_in.status_code == 303, signed_in.text[:300]
        yield session


def _cli(world: World, *args: str) -> tuple[int, str]:
    settings = world.services.settings
    env = {"GOVGATE_HOME": str(settings.home), "GOVGATE_DATABASE_URL": settings.database_url,
           "LANG": "C.UTF-8"}
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.output


# -- client assertions name the issuer alone (RFC 10070; the 2025 advisory) -------------

def _assertion(aud: object, key: Any = KEY, alg: str = "ES256") -> str:
    now = int(time.time())
    return jwt.encode({"alg": alg, "kid": "sync-1"}, {
        "iss": "vehicles-sync", "sub": "vehicles-sync", "aud": aud, "iat": now,
        "exp": now + 60, "jti": str(uuid.uuid4())}, key)


def _post(world: World, endpoint: str, assertion: str) -> requests.Response:
    data = {"client_assertion_type": ASSERTION, "client_assertion": assertion}
    if endpoint == "token_endpoint":
        data["grant_type"] = "client_credentials"
    else:
        data["token"] = "not-a-token"
    return requests.post(world.discovery[endpoint], data=data, timeout=TIMEOUT)


def test_a_client_assertion_names_the_issuer_alone(world: World) -> None:
    """An assertion whose audience was the token endpoint, or the issuer among other
    values, authenticated the client: one made for another server (or for one that
    names several) could be replayed here. Now the issuer alone, as a string or the
    one value of an array, everywhere a client authenticates."""
    issuer = world.issuer
    token_endpoint = world.discovery["token_endpoint"]
    for endpoint in ("token_endpoint", "introspection_endpoint", "revocation_endpoint"):
        for aud in (issuer, [issuer]):
            answer = _post(world, endpoint, _assertion(aud))
            assert answer.status_code == 200, (endpoint, aud, answer.text)
        for aud in (token_endpoint, [token_endpoint], [issuer, token_endpoint],
                    [issuer, "https://other.example"], issuer + "/", []):
            answer = _post(world, endpoint, _assertion(aud))
            assert answer.status_code == 401, (endpoint, aud, answer.text)
            assert answer.json() == {
                "error": "invalid_client",
                "error_description": f"Invalid claim: 'aud' must be the issuer {issuer} "
                                     "alone"}, (endpoint, aud)
    denied = audit_events(world.services, "token_denied")
    assert denied[-1]["actor_client"] == "vehicles-sync"
    assert "'aud' must be the issuer" in denied[-1]["reason"]
    # client_secret_jwt (HMAC over a shared secret) is not offered: refused
    hmac_key = OctKey.import_key("k" * 32)
    answer = _post(world, "token_endpoint", _assertion(issuer, hmac_key, "HS256"))
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"
    assert "client_secret_jwt" not in world.discovery["token_endpoint_auth_methods_supported"]
