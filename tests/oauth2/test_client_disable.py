"""Disabling a client stops its tokens at once: refresh tokens revoked, access
tokens refused by every process within a second (deny list), introspection
inactive; re-enabling it does not bring the old tokens back."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from starlette.testclient import TestClient

from gateway.cli.main import cli
from gateway.clock import FrozenClock
from gateway.errors import Unauthorized
from gateway.idp.oauth2.tables import refresh_tokens
from gateway.services import Services
from gateway.settings import Settings
from tests.oauth2.helpers import (
    OFFICE,
    audit_events,
    close_services,
    code_flow,
    frozen_now,
    make_services,
)
from tests.wiring import apply_state, parts

SYNC = ("assets-sync", "assets-sync-secret-0123456789abcdef")
SYNC_ENTRY = ("{client_id: assets-sync, name: 资产同步, department: jgswj,\n"
              "     grant_types: [client_credentials],\n"
              "     token_endpoint_auth_method: client_secret_basic, status: %s}")


@pytest.fixture
def clock() -> FrozenClock:
    return frozen_now()


@pytest.fixture
def idp(settings: Settings, clock: FrozenClock) -> Iterator[Services]:
    services = make_services(settings, clock=clock)
    apply_state(services, {"clients": [{
        "client_id": SYNC[0], "name": "资产同步", "department": "jgswj",
        "grant_types": ["client_credentials"], "secret": SYNC[1]}]})
    yield services
    close_services(services)


def _run(idp: Services, *args: str) -> tuple[int, str]:
    """The CLI as another process would run it: its own services, deny list, caches."""
    env = {"GOVGATE_HOME": str(idp.settings.home),
           "GOVGATE_DATABASE_URL": idp.settings.database_url, "LANG": "C.UTF-8"}
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def _within(seconds: float, check: Callable[[], bool]) -> float:
    """How long until ``check()`` holds; fails the test past ``seconds``."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < seconds, f"not within {seconds} s"
        time.sleep(0.02)
    return time.monotonic() - start


def _sync_token(client: TestClient) -> str:
    r = client.post("/oauth2/token", data={"grant_type": "client_credentials"}, auth=SYNC)
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def _introspect(client: TestClient, token: str) -> dict[str, object]:
    r = client.post("/oauth2/introspect", data={"token": token}, auth=OFFICE)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _refused(idp: Services, token: str) -> str | None:
    """The reason the gateway's Authenticator refuses ``token``, or None."""
    try:
        parts(idp).authenticator.from_token(token)
    except Unauthorized as exc:
        return str(exc.reason)  # type: ignore[attr-defined]
    return None


def test_cli_disable_refuses_issued_access_tokens_within_a_second(
        client: TestClient, idp: Services) -> None:
    token = _sync_token(client)
    assert _introspect(client, token)["active"] is True
    assert _refused(idp, token) is None
    parts(idp).authenticator.deny.refresh(force=True)  # the app's mirror is warm, as in service

    code, out = _run(idp, "client", "disable", SYNC[0])
    assert code == 0, out
    _within(1.0, lambda: _introspect(client, token) == {"active": False})
    assert _refused(idp, token) == "client disabled"
    # and no new token: the client registry notices within its 1 s cache
    _within(1.5, lambda: client.post("/oauth2/token", data={
        "grant_type": "client_credentials"}, auth=SYNC).status_code == 401)

    changes = [e["reason"] for e in audit_events(idp, "admin_change")]
    assert "client_disabled" in changes and "client_tokens_revoked" in changes
    denied = [e for e in audit_events(idp, "token_introspected")
              if e["reason"] == "inactive: client disabled"]
    assert denied


def test_disable_revokes_refresh_tokens_and_user_access_tokens(
        client: TestClient, idp: Services) -> None:
    tokens = code_flow(client)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get("/oauth2/userinfo", headers=bearer).status_code == 200
    code, _ = _run(idp, "client", "disable", OFFICE[0])
    assert code == 0
    with idp.engine.connect() as conn:
        rows = conn.execute(sa.select(refresh_tokens.c.revoked_at)
                            .where(refresh_tokens.c.client_id == OFFICE[0])).all()
    assert rows and all(r.revoked_at is not None for r in rows)
    _within(1.0, lambda: client.get("/oauth2/userinfo", headers=bearer).status_code == 401)


def test_a_state_file_disable_does_the_same_and_reenable_keeps_old_tokens_dead(
        client: TestClient, idp: Services, clock: FrozenClock, tmp_path: Path) -> None:
    old = _sync_token(client)
    state = tmp_path / "clients.yaml"
    state.write_text("clients:\n  - " + SYNC_ENTRY % "disabled" + "\n", encoding="utf-8")
    code, out = _run(idp, "apply", "-f", str(state))
    assert code == 0 and "~ client assets-sync (status)" in out, out
    _within(1.0, lambda: _introspect(client, old) == {"active": False})
    assert "client_tokens_revoked" in [e["reason"] for e in audit_events(idp, "admin_change")]

    # applying the same file again changes nothing and revokes nothing more
    before = len(audit_events(idp, "admin_change"))
    code, out = _run(idp, "apply", "-f", str(state))
    assert code == 0 and "client" not in out
    assert len(audit_events(idp, "admin_change")) == before

    clock.advance(30)  # the re-enable comes later than the disable's grace (2 s)
    state.write_text("clients:\n  - " + SYNC_ENTRY % "active" + "\n", encoding="utf-8")
    code, out = _run(idp, "apply", "-f", str(state))
    assert code == 0, out
    parts(idp).provider.server.clients.invalidate()
    new = _sync_token(client)
    assert _introspect(client, new)["active"] is True
    assert _refused(idp, new) is None
    assert _introspect(client, old) == {"active": False}
    assert _refused(idp, old) == "client disabled"
    # the deny entry lapses once every token issued before it has expired
    clock.advance(idp.settings.access_token_lifetime + idp.settings.clock_skew_seconds)
    assert _refused(idp, old) == "expired"
