"""The gaps between processes, attacked: a security change made through one ``govgate
serve`` process (its API, or the command line / state file against the database) and
the time until the other process enforces it, against docs/workers.md's table ("How
the processes agree"). One pair of processes, one real upstream, the changes made one
after another; each test prints what it measured."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from bench.gateway_world import LOADER, SYSTEM, GatewayProcess
from gateway.services import Services
from tests.multiprocess.conftest import ONLY_POSTGRES, shared_world
from tests.tokens import access_token, ensure_client
from tests.wiring import parts

pytestmark = ONLY_POSTGRES

WITHIN = 1.0  # seconds: docs/workers.md, "at most" (the largest figure but restart)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[Services, GatewayProcess, GatewayProcess]]:
    with shared_world(tmp_path_factory.mktemp("reach"), ports=2) as (services, gateways, _):
        one, two = gateways
        yield services, one, two


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _claims(token: str) -> dict[str, object]:
    part = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def _header(token: str) -> dict[str, object]:
    part = token.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def _until(check: Callable[[], bool], what: str, within: float = WITHIN) -> float:
    """Seconds until ``check()`` holds, polling every 20 ms; fails past ``within``."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < within, f"{what}: not within {within:g} s"
        time.sleep(0.02)
    took = time.monotonic() - started
    print(f"{what}: {took:.3f} s")
    return took


def _proxied(gateway: GatewayProcess, token: str, path: str = "/api/ping") -> int:
    return httpx.get(f"{gateway.url}/s/{SYSTEM}{path}", headers=_bearer(token),
                     timeout=5).status_code


def _client_token(services: Services, client_id: str) -> str:
    """A token of a client of its own (the rate limit is per client: 12 at once)."""
    ensure_client(services, client_id, "jgswj", "proxy")
    return access_token(services, sub=None, client_id=client_id, department="jgswj",
                        scope="proxy")


def _loader_token(gateway: GatewayProcess) -> str:
    r = httpx.post(f"{gateway.url}/oauth2/token", data={"grant_type": "client_credentials"},
                   auth=LOADER, timeout=10)
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def _revoke(gateway: GatewayProcess, token: str) -> None:
    r = httpx.post(f"{gateway.url}/oauth2/revoke", data={"token": token}, auth=LOADER,
                   timeout=10)
    assert r.status_code == 200, r.text


def test_a_revocation_committed_after_a_later_one_is_not_skipped(
        world: tuple[Services, GatewayProcess, GatewayProcess]) -> None:
    """Deny-list rows are numbered when written and seen when committed: a revocation
    whose transaction commits after a later-numbered one (another process, a longer
    transaction) lies below the mirror's high-water mark by then. It was never read:
    the revoked token stayed good in that process until it expired."""
    services, one, two = world
    slow, quick = _loader_token(one), _loader_token(one)
    assert _proxied(two, slow) == 200 and _proxied(two, quick) == 200
    store = parts(services).provider.store
    with services.engine.connect() as conn:
        late = conn.begin()
        # the slow revocation: numbered now, committed after the quick one
        store._deny(conn, "jti", str(_claims(slow)["jti"]), 600)
        _revoke(one, quick)
        _until(lambda: _proxied(two, quick) == 401, "quick revocation in the other")
        late.commit()
    _until(lambda: _proxied(two, slow) == 401, "revocation committed late, in the other")
    assert _proxied(one, slow) == 401


def test_a_token_verified_before_its_key_was_destroyed_is_refused(
        world: tuple[Services, GatewayProcess, GatewayProcess]) -> None:
    """A compromised signing key: rotated with ``now`` through one process, then
    destroyed (``govgate keys destroy``). The other process had verified a token of
    it and kept it in its cache of verified tokens (up to 60 s) with no look at the
    ring: the token stayed good there for a minute."""
    services, one, two = world
    token = _client_token(services, "keyed")
    old = str(_header(token)["kid"])
    assert _proxied(two, token) == 200  # verified there, now cached
    services.keys.rotate("token")
    services.keys.promote_now("token")
    services.keys.destroy(old)
    _until(lambda: _proxied(two, token) == 401, "token of a destroyed key, in the other")
    _until(lambda: _proxied(one, token) == 401, "and in the first")
    fresh = _loader_token(one)  # the new key signs, and the other accepts it
    assert _header(fresh)["kid"] != old and _proxied(two, fresh) in (200, 429)
