"""Signing in to the portal with the directory's password (a bind as the person,
nothing stored), a wrong one, the lockout, and the directory down (fail closed); the
directory over LDAPS and StartTLS verified against its CA."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from audit.tables import records
from gateway.app import create_app
from gateway.directory import DirectoryClient, DirectoryUnavailable, sync
from gateway.errors import StateFileError, ValidationError
from gateway.services import Services
from gateway.tables import users
from tests.directory.conftest import config_of
from tests.directory.slapd import USER_PASSWORD, Slapd
from tests.gateway.test_cli import here
from tests.oauth2.helpers import login
from tests.wiring import apply_state, parts


@pytest.fixture
def portal(denv: dict[str, str], services: Services) -> Iterator[TestClient]:
    sync(services, DirectoryClient(config_of(denv)))
    with TestClient(create_app(parts(services)), base_url="http://127.0.0.1:8080") as client:
        yield client


@pytest.fixture
def denv(denv: dict[str, str]) -> dict[str, str]:
    # ten people are enough to sign in with (the 500 are synced in test_sync)
    return {**denv, "GOVGATE_LOGIN_DELAY_BASE_SECONDS": "0",
            "GOVGATE_DIRECTORY_USER_FILTER": "(&(objectClass=inetOrgPerson)(uid=user000*))"}



def _logins(services: Services, username: str) -> list[tuple[str, str]]:
    services.settle_audit()  # journal mode (the SQLite default): into the tables now
    with services.engine.connect() as conn:
        return [(r.outcome, r.reason) for r in conn.execute(
            sa.select(records.c.outcome, records.c.reason).where(
                records.c.event_type == "login", records.c.actor_user == username)
            .order_by(records.c.id))]


def test_the_directory_password_signs_in_and_is_never_stored(
        portal: TestClient, services: Services) -> None:
    r = login(portal, "user0000", USER_PASSWORD)
    assert r.status_code == 303 and r.headers["location"] == "/portal"
    assert _logins(services, "user0000") == [("success", "password accepted")]
    with services.engine.connect() as conn:
        row = conn.execute(sa.select(users).where(users.c.username == "user0000")).one()
        extras = " ".join(str(r.extra) for r in conn.execute(sa.select(records.c.extra)))
    assert row.password_hash is None and not row.must_change
    assert USER_PASSWORD not in extras


def test_a_wrong_password_counts_and_the_lockout_applies(portal: TestClient,
                                                         services: Services) -> None:
    for _ in range(4):
        r = login(portal, "user0003", "Not-the-password-1")
        assert r.status_code == 200 and "用户名或密码错误" in r.text
    assert services.org.get_user("user0003").failed_logins == 4
    assert login(portal, "user0003", "").status_code == 200  # no anonymous bind
    r = login(portal, "user0003", USER_PASSWORD)  # locked now: the right one is refused
    assert r.status_code == 200 and "账号已锁定" in r.text
    assert [o for o, _ in _logins(services, "user0003")] == ["failure"] * 6


def test_the_directory_down_refuses_sign_in(portal: TestClient, services: Services,
                                           slapd: Slapd) -> None:
    slapd.stop()
    try:
        r = login(portal, "user0004", USER_PASSWORD)
    finally:
        slapd.start()
    assert r.status_code == 503 and "目录服务暂不可用" in r.text
    (outcome, reason), = _logins(services, "user0004")
    assert outcome == "failure" and reason.startswith(f"the directory {slapd.url} is unavailable")
    assert services.org.get_user("user0004").failed_logins == 0
    local = login(portal, "admin", "wrong-but-local-1")  # local accounts do not need it
    assert local.status_code == 200
    assert login(portal, "user0004", USER_PASSWORD).status_code == 303  # back: at once


@pytest.mark.parametrize("start_tls", [False, True])
def test_ldaps_and_start_tls_verify_the_directory_against_its_ca(
        denv: dict[str, str], slapd: Slapd, start_tls: bool) -> None:
    url = slapd.url if start_tls else slapd.ldaps_url
    extra = {"GOVGATE_DIRECTORY_URL": url, "GOVGATE_DIRECTORY_START_TLS": str(start_tls)}
    trusted = DirectoryClient(config_of(denv, GOVGATE_DIRECTORY_CA_FILE=slapd.ca_file, **extra))
    assert trusted.verify("user0000", USER_PASSWORD)
    assert not trusted.verify("user0000", "Not-the-password-1")
    conn = trusted.service()
    try:
        assert len(trusted.people(conn)) == 10
    finally:
        conn.unbind()
    stranger = DirectoryClient(config_of(denv, **extra))  # the system's CAs: not this one
    with pytest.raises(DirectoryUnavailable):
        stranger.verify("user0000", USER_PASSWORD)


def test_the_gateway_never_takes_a_directory_users_password(
        portal: TestClient, denv: dict[str, str], services: Services) -> None:
    with pytest.raises(ValidationError, match="kept by the directory"):
        services.org.reset_password("user0000", "A-new-Local-Passw0rd-5")
    result = here(denv, "user", "reset-password", "user0000")
    assert result.returncode == 1 and "kept by the directory" in result.stderr
    doc = {"users": [{"username": "user0000", "name": "x", "department": "jgswglj",
                      "source": "directory", "password": "A-new-Local-Passw0rd-5"},
                     {"username": "user0001", "name": "y", "department": "jgswglj",
                      "source": "ldap"}]}
    with pytest.raises(StateFileError) as raised:
        apply_state(services, doc)
    assert [p.split(": ", 1)[1] for p in raised.value.problems] == [
        "a directory user has no password in the gateway", "source must be local or directory"]
    exported = here(denv, "export")
    assert "source: directory" in exported.stdout


def test_the_account_page_proves_a_directory_user_by_a_bind(
        portal: TestClient, services: Services, slapd: Slapd) -> None:
    assert login(portal, "user0006", USER_PASSWORD).status_code == 303
    r = portal.post("/api/v1/account/totp", json={"password": "Not-the-password-1"})
    assert r.status_code == 400
    assert services.org.get_user("user0006").failed_logins == 1
    slapd.stop()
    try:
        r = portal.post("/api/v1/account/totp", json={"password": USER_PASSWORD})
    finally:
        slapd.start()
    assert r.status_code == 503 and r.json()["type"] == "urn:govgate:error:directory_unavailable"
    assert services.org.get_user("user0006").failed_logins == 1  # not counted
    r = portal.post("/api/v1/account/totp", json={"password": USER_PASSWORD})
    assert r.status_code == 200 and r.json()["secret"]
    assert services.org.get_user("user0006").failed_logins == 0


def test_a_local_account_handed_to_the_directory_by_the_state_file(
        portal: TestClient, services: Services) -> None:
    services.org.add_department("local.x", "本地", "local")
    services.org.add_user("user0009x", "本地", "local.x", ["staff"], "A-local-Passw0rd-77")
    changes = apply_state(services, {"users": [
        {"username": "user0009x", "name": "本地", "department": "local.x",
         "source": "directory"}]})
    assert [str(c) for c in changes] == ["~ user user0009x (password, source)"]
    assert services.org.password_hash("user0009x") is None
    r = login(portal, "user0009x", "A-local-Passw0rd-77")  # not in the directory
    assert r.status_code == 200 and "用户名或密码错误" in r.text
