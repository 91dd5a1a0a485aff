"""OpenID Connect Core 1.0 section 3.1.2.1: ``prompt`` and ``max_age`` at the
authorization endpoint, against a frozen clock (no sleeping)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from starlette.testclient import TestClient

from gateway.clock import FrozenClock
from gateway.idp.oauth2.tables import sessions
from gateway.services import Services
from gateway.settings import Settings
from tests.oauth2.helpers import (
    OFFICE,
    OFFICE_CB,
    authorize,
    close_services,
    code_from,
    frozen_now,
    login,
    make_services,
    pkce,
)
from tests.wiring import parts


@pytest.fixture
def clock() -> FrozenClock:
    return frozen_now()


@pytest.fixture
def idp(settings: Settings, clock: FrozenClock) -> Iterator[Services]:
    services = make_services(settings, clock=clock)
    yield services
    close_services(services)


def _query(response: Any) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(OFFICE_CB + "?"), location
    return {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}


def _exchange(client: TestClient, idp: Services, code: str, verifier: str) -> dict[str, Any]:
    r = client.post("/oauth2/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": OFFICE_CB,
        "code_verifier": verifier}, auth=OFFICE)
    assert r.status_code == 200, r.text
    return dict(idp.keys.verify_jwt("token", r.json()["id_token"], at=idp.clock()))


def _sign_in_demanded(response: Any) -> str:
    """The authorization endpoint sent the browser to the sign-in form: the URL to
    come back to."""
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith("/portal/login?"), location
    return parse_qs(location.split("?", 1)[1])["next"][0]


def _now(clock: FrozenClock) -> int:
    return int(clock().timestamp())


def test_prompt_none_with_a_live_session_issues_a_code_silently(
        client: TestClient, idp: Services) -> None:
    verifier, challenge = pkce()
    login(client)
    q = _query(authorize(client, challenge=challenge, prompt="none"))
    assert "error" not in q and q["state"] == "st-1"
    assert _exchange(client, idp, q["code"], verifier)["sub"] == "zhang.san"


def test_prompt_none_without_a_session_is_login_required_with_state(
        client: TestClient) -> None:
    _, challenge = pkce()
    q = _query(authorize(client, challenge=challenge, prompt="none", state="s-42"))
    assert q["error"] == "login_required" and q["state"] == "s-42" and "code" not in q


def test_prompt_login_shows_the_form_despite_a_session_and_auth_time_is_new(
        client: TestClient, idp: Services, clock: FrozenClock) -> None:
    verifier, challenge = pkce()
    login(client)
    first = _now(clock)
    clock.advance(120)
    next_url = _sign_in_demanded(authorize(client, challenge=challenge, prompt="login"))
    # the old session does not satisfy the demand, even carrying the marker back
    assert _sign_in_demanded(client.get(next_url, follow_redirects=False))
    page = client.get("/portal/login", params={"next": next_url})
    assert page.status_code == 200 and 'name="password"' in page.text
    clock.advance(5)
    r = login(client, next_url=next_url)
    assert r.status_code == 303 and r.headers["location"] == next_url
    q = _query(client.get(next_url, follow_redirects=False))
    assert q["state"] == "st-1"
    claims = _exchange(client, idp, q["code"], verifier)
    assert claims["auth_time"] == first + 125 == _now(clock)
    # without prompt, the fresh session is reused as before
    verifier2, challenge2 = pkce()
    again = code_from(authorize(client, challenge=challenge2))
    assert _exchange(client, idp, again, verifier2)["auth_time"] == first + 125


def test_a_forged_or_stale_reauth_marker_does_not_count(
        client: TestClient, clock: FrozenClock) -> None:
    _, challenge = pkce()
    login(client)
    clock.advance(1)
    r = authorize(client, challenge=challenge, prompt="login",
                  gg_reauth=f"{int(clock().timestamp() * 1000) - 5000}.{'0' * 32}")
    next_url = _sign_in_demanded(r)
    login(client, next_url=next_url)
    clock.advance(601)  # the proof of a demanded sign-in is good for 600 s
    assert _sign_in_demanded(client.get(next_url, follow_redirects=False))


def test_max_age_reuses_a_recent_session_and_demands_a_new_sign_in_after(
        client: TestClient, idp: Services, clock: FrozenClock) -> None:
    login(client)
    first = _now(clock)
    clock.advance(100)
    verifier, challenge = pkce()
    q = _query(authorize(client, challenge=challenge, max_age="300"))
    assert _exchange(client, idp, q["code"], verifier)["auth_time"] == first
    verifier, challenge = pkce()
    next_url = _sign_in_demanded(authorize(client, challenge=challenge, max_age="60"))
    clock.advance(3)
    login(client, next_url=next_url)
    claims = _exchange(client, idp, code_from(client.get(next_url, follow_redirects=False)),
                       verifier)
    assert claims["auth_time"] == first + 103


def test_max_age_zero_signs_in_once_and_does_not_loop(
        client: TestClient, idp: Services, clock: FrozenClock) -> None:
    login(client)
    clock.advance(1)
    verifier, challenge = pkce()
    next_url = _sign_in_demanded(authorize(client, challenge=challenge, max_age="0"))
    login(client, next_url=next_url)
    clock.advance(1)  # the browser's way back from the form takes time
    claims = _exchange(client, idp, code_from(client.get(next_url, follow_redirects=False)),
                       verifier)
    assert claims["auth_time"] == _now(clock) - 1


def test_max_age_exceeded_with_prompt_none_is_login_required(
        client: TestClient, clock: FrozenClock) -> None:
    login(client)
    clock.advance(61)
    _, challenge = pkce()
    q = _query(authorize(client, challenge=challenge, prompt="none", max_age="60"))
    assert q["error"] == "login_required" and q["state"] == "st-1"
    q = _query(authorize(client, challenge=challenge, prompt="none", max_age="61"))
    assert "code" in q


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", "+5", " 5", "1e3", "٣"])
def test_a_bad_max_age_is_invalid_request_at_the_client(
        client: TestClient, value: str) -> None:
    login(client)
    _, challenge = pkce()
    q = _query(authorize(client, challenge=challenge, max_age=value))
    assert q["error"] == "invalid_request" and q["state"] == "st-1" and "code" not in q


def test_prompt_none_with_another_value_is_invalid_request(client: TestClient) -> None:
    login(client)
    _, challenge = pkce()
    q = _query(authorize(client, challenge=challenge, prompt="none login"))
    assert q["error"] == "invalid_request" and q["state"] == "st-1"


def test_prompt_consent_is_a_no_op_and_select_account_shows_the_form(
        client: TestClient) -> None:
    login(client)
    _, challenge = pkce()
    assert "code" in _query(authorize(client, challenge=challenge, prompt="consent"))
    _sign_in_demanded(authorize(client, challenge=challenge, prompt="select_account"))


def test_auth_time_is_the_last_sign_in_step_and_old_rows_fall_back(
        client: TestClient, idp: Services, clock: FrozenClock) -> None:
    store = parts(idp).provider.store
    _, row = store.create_session("zhang.san", "mfa", amr="pwd", absolute_seconds=3600)
    clock.advance(40)  # the TOTP step comes later than the password
    store.advance_session(row.sid, "active", amr="pwd otp")
    got = store.get_session(row.sid)
    assert got.auth_time == int(row.created_at.timestamp()) + 40
    with idp.engine.begin() as conn:  # a row written before migration 0007
        conn.execute(sessions.update().where(sessions.c.sid == row.sid)
                     .values(authenticated_at=None))
    assert store.get_session(row.sid).auth_time == int(row.created_at.timestamp())
