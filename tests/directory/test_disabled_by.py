"""Who disabled a directory user, read from the audit log (gateway/status_records.py),
so that the sync and the administrators do not fight: the sync re-enables what it
disabled (locked, then unlocked in the directory), never what an administrator
disabled, through the admin API as through the CLI, before or after the directory's
own lock. Against the real slapd of tests.directory.ad_slapd and a served admin API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.services import Services
from tests.directory.ad_slapd import slapd as slapd  # the module's directory, not conftest's
from tests.directory.slapd import Slapd, person_dn
from tests.directory.test_sync import changed
from tests.gateway.test_cli import here
from tests.tokens import access_token
from tests.wiring import parts

API = "/api/v1/admin"
TEN = "(&(objectClass=inetOrgPerson)(|(uid=user001*)(uid=user002*)))"
LOCK = {"pwdAccountLockedTime": "000001010000Z"}


@pytest.fixture
def env(denv: dict[str, str]) -> dict[str, str]:
    return {**denv, "GOVGATE_DIRECTORY_USER_FILTER": TEN}


@pytest.fixture
def api(services: Services) -> Iterator[tuple[TestClient, dict[str, str]]]:
    services.org.add_department("ops", "运维", "local")
    token = access_token(services, sub="ops.admin", department="ops", roles=["sysadmin"],
                         scope="openid admin")
    with TestClient(create_app(parts(services)), base_url="http://127.0.0.1:8080") as client:
        yield client, {"Authorization": f"Bearer {token}"}


def status(services: Services, username: str) -> str:
    return services.org.get_user(username).status


def synced(env: dict[str, str]) -> str:
    result = here(env, "directory", "sync")
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_an_api_disable_of_an_account_the_sync_disabled_holds_when_unlocked(
        slapd: Slapd, env: dict[str, str], services: Services,
        api: tuple[TestClient, dict[str, str]]) -> None:
    """user0016 locked in the directory (the sync disables it), then disabled by the
    security incident's administrator through the API: unlocked in the directory, it
    stays disabled until the operator enables it."""
    client, auth = api
    synced(env)
    with changed(slapd, modifies=((person_dn(16), LOCK),)):
        synced(env)
        assert status(services, "user0016") == "disabled"
        r = client.post(f"{API}/users/user0016/disable", headers=auth)
        assert r.status_code == 200, r.text
    out = synced(env)  # unlocked
    assert "= user user0016 stays disabled" in out
    assert status(services, "user0016") == "disabled"
    r = client.post(f"{API}/users/user0016/enable", headers=auth)
    assert r.status_code == 200, r.text
    synced(env)
    assert status(services, "user0016") == "active"


def test_the_directorys_lock_after_an_api_disable_does_not_hand_it_to_the_sync(
        slapd: Slapd, env: dict[str, str], services: Services,
        api: tuple[TestClient, dict[str, str]]) -> None:
    """Disabled through the API, then locked and unlocked in the directory: the sync
    saw nothing of its own to undo (no status change of its own), held throughout;
    user0017, locked and unlocked by the directory alone, is active again."""
    client, auth = api
    synced(env)
    assert client.post(f"{API}/users/user0016/disable", headers=auth).status_code == 200
    with changed(slapd, modifies=((person_dn(16), LOCK), (person_dn(17), LOCK))):
        synced(env)
        assert (status(services, "user0016"), status(services, "user0017")) == (
            "disabled", "disabled")
    out = synced(env)
    assert "= user user0016 stays disabled" in out
    assert (status(services, "user0016"), status(services, "user0017")) == (
        "disabled", "active")
    # the sync's held accounts, named sync after sync, never become its own
    for _ in range(2):
        assert "= user user0016 stays disabled" in synced(env)
    assert status(services, "user0016") == "disabled"


def test_an_account_the_operator_enabled_while_locked_is_the_directorys_again(
        slapd: Slapd, env: dict[str, str], services: Services,
        api: tuple[TestClient, dict[str, str]]) -> None:
    """Enabled by an administrator while the directory still locks it: the next sync
    disables it again (the directory decides a directory user), and re-enables it when
    the directory unlocks it."""
    client, auth = api
    synced(env)
    with changed(slapd, modifies=((person_dn(18), LOCK),)):
        synced(env)
        assert client.post(f"{API}/users/user0018/enable", headers=auth).status_code == 200
        assert status(services, "user0018") == "active"
        synced(env)
        assert status(services, "user0018") == "disabled"
    synced(env)
    assert status(services, "user0018") == "active"
