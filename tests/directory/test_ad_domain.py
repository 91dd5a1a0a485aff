"""An Active Directory domain as agencies run it, on the real slapd of
tests.directory.ad_slapd (``ad_domain``): primary groups ("Domain Users"), which AD
lists in no ``member``; accounts disabled by ``userAccountControl`` or past their
``accountExpires``; members in other domains or forests and outside the base DN; and a
child domain answered as a continuation reference."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import ldap3
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from audit.tables import records
from gateway.app import create_app
from gateway.directory import DirectoryClient, sync
from gateway.services import Services, open_services
from gateway.settings import load_settings
from tests.directory.ad_binds import ad_binds
from tests.directory.ad_slapd import (
    CHILD_PERSON,
    CHILD_REF,
    DOMAIN_USERS,
    FOREIGN,
    NETBIOS,
    NEVER,
    OUTSIDE,
    group_dn,
)
from tests.directory.ad_slapd import ad_domain as slapd  # the module's directory
from tests.directory.conftest import config_of
from tests.directory.slapd import ADMIN_DN, ADMIN_PASSWORD, USER_PASSWORD, Slapd, person_dn
from tests.gateway.test_cli import here
from tests.oauth2.helpers import csrf_of, login
from tests.wiring import parts

__all__ = ["slapd"]
OWN = {"Origin": "http://127.0.0.1:8080"}


@pytest.fixture
def denv(denv: dict[str, str]) -> dict[str, str]:
    return {**denv, "GOVGATE_LOGIN_DELAY_BASE_SECONDS": "0",
            "GOVGATE_DIRECTORY_USER_FILTER": DOMAIN_USERS,
            "GOVGATE_DIRECTORY_NETBIOS_DOMAIN": "GOV",
            "GOVGATE_DIRECTORY_GROUP_ROLES":
                "数据管理员=data_steward,数据处=data_steward,全体=dept_head"}


@pytest.fixture
def portal(denv: dict[str, str], services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(parts(services)), base_url="http://127.0.0.1:8080") as client:
        yield client


def holders(services: Services, role: str) -> set[str]:
    return {u.username for u in services.org.list_users() if role in u.roles}


@contextmanager
def replaced(server: Slapd, dn: str, attribute: str, value: str) -> Iterator[None]:
    """``dn``'s ``attribute`` set to ``value``, put back afterwards."""
    conn = ldap3.Connection(ldap3.Server(server.url), ADMIN_DN, ADMIN_PASSWORD, auto_bind=True)
    try:
        conn.search(dn, "(objectClass=*)", ldap3.BASE, attributes=[attribute])
        before = conn.response[0]["raw_attributes"].get(attribute) or []
        assert conn.modify(dn, {attribute: [(ldap3.MODIFY_REPLACE, [value])]}), conn.result
        yield
    finally:
        conn.modify(dn, {attribute: [(ldap3.MODIFY_REPLACE, before)]})
        conn.unbind()


def test_a_mapped_primary_group_gives_its_people_the_role_on_sync_and_at_sign_in(
        slapd: Slapd, denv: dict[str, str], services: Services, portal: TestClient) -> None:
    """AD lists a user's primary group in neither the group's ``member`` nor the
    user's ``memberOf``. On the base the stewards were user0009 alone (a direct member
    of 数据处) and no one was a dept_head (域用户, nested in 全体, lists only user0499)."""
    sync(services, DirectoryClient(config_of(denv)))
    # user0004's primaryGroupID is 1105 too, but its SID is another domain's
    assert holders(services, "data_steward") == {"user0000", "user0001", "user0002",
                                                 "user0003", "user0009"}
    assert holders(services, "dept_head") == {f"user000{n}" for n in range(5, 10)}
    assert login(portal, "user0001", USER_PASSWORD).status_code == 303
    assert portal.get("/api/v1/account").json()["roles"] == ["data_steward", "staff"]
    # another primary group: the role goes at the next sync
    with replaced(slapd, person_dn(1), "primaryGroupID", "513"):
        sync(services, DirectoryClient(config_of(denv)))
        assert services.org.get_user("user0001").roles == {"staff", "dept_head"}


def test_accounts_disabled_or_expired_in_ad_are_disabled_until_ad_says_otherwise(
        slapd: Slapd, denv: dict[str, str], services: Services, portal: TestClient) -> None:
    """user0005's userAccountControl has ACCOUNTDISABLE (514), user0006 expired in
    2012 (``accountExpires``), user0007 is locked; the disabled filter is the default
    (OpenLDAP's lock). On the base user0005 and user0006 stayed active, user0006 signed
    in (AD refuses an expired account's bind, but what it holds in govgate
    went on: sessions, refresh tokens); and user0005, disabled by the sync that made
    it, stayed disabled once AD enabled it (the sync's create was taken for no one's
    disable: held until the operator enabled it)."""
    sync(services, DirectoryClient(config_of(denv)))
    disabled = {u.username for u in services.org.list_users() if u.status == "disabled"}
    assert disabled == {"user0005", "user0006", "user0007"}  # 2100, 0, never: active
    r = login(portal, "user0006", USER_PASSWORD)
    assert r.status_code == 200 and "用户名或密码错误" in r.text
    with replaced(slapd, person_dn(6), "accountExpires", str(NEVER)), \
            replaced(slapd, person_dn(5), "userAccountControl", "512"):  # AD enables both
        plan = sync(services, DirectoryClient(config_of(denv)))
        assert plan.held == []
        assert services.org.get_user("user0005").status == "active"
        assert services.org.get_user("user0006").status == "active"
        assert login(portal, "user0006", USER_PASSWORD).status_code == 303


def test_what_the_sync_does_not_read_is_in_its_output_and_record(
        denv: dict[str, str], services: Services) -> None:
    """A child domain answered as a continuation reference, members in other domains
    or forests (foreign security principals), a member outside the base DN, one in
    the child domain: on the base all were dropped without a word."""
    result = here(denv, "directory", "sync", lang="en_US.UTF-8")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("?")]
    stewards, everyone = group_dn("数据管理员"), group_dn("全体")
    assert lines == [
        f"? reference {CHILD_REF}??sub not followed: the people under it are not read "
        "(another server's or a child domain's part of the tree; the service account's "
        "password is not sent to the host it names)",
        *(f"? member {m} of {stewards} is another domain's or forest's (a foreign security "
          "principal): not read, no role from the group" for m in FOREIGN),
        f"? member {OUTSIDE} of {everyone} is outside the base DN: not read, no role from "
        "the group",
        f"? member {CHILD_PERSON} of {everyone} is under a reference not followed: not "
        "read, no role from the group"]
    services.settle_audit()
    with services.engine.connect() as conn:
        extra = json.loads(conn.execute(sa.select(records.c.extra).where(
            records.c.reason == "directory_synced")).scalar_one())
    assert extra["references"] == [f"{CHILD_REF}??sub"]
    assert (extra["foreign"], extra["foreign_members"]) == (2, list(FOREIGN))
    assert (extra["outside"], extra["outside_members"]) == (1, [OUTSIDE])
    assert (extra["referred"], extra["referred_members"]) == (1, [CHILD_PERSON])


def test_staff_sign_in_with_their_user_principal_name(
        denv: dict[str, str], services: Services, portal: TestClient) -> None:
    """What staff type at Windows, ``user0001@gov.cn`` (any case) or ``GOV\\user0004``:
    on the base no account, "wrong username or password"; now the person's, whose lock
    it counts to."""
    sync(services, DirectoryClient(config_of(denv)))
    assert login(portal, "User0001@Gov.CN", USER_PASSWORD).status_code == 303
    assert portal.get("/api/v1/account").json()["username"] == "user0001"
    r = login(portal, "user0002@gov.cn", "Not-the-password-1")
    assert r.status_code == 200 and "用户名或密码错误" in r.text
    assert services.org.get_user("user0002").failed_logins == 1
    r = login(portal, "user0002@other.gov.cn", USER_PASSWORD)  # no one's principal name
    assert r.status_code == 200 and "用户名或密码错误" in r.text
    # the down-level logon name, of the configured NetBIOS domain only
    portal.cookies.clear()
    assert login(portal, "gov\\User0004", USER_PASSWORD).status_code == 303
    assert portal.get("/api/v1/account").json()["username"] == "user0004"
    r = login(portal, "OTHER\\user0001", USER_PASSWORD)
    assert r.status_code == 200 and "用户名或密码错误" in r.text


def test_a_password_ad_wants_changed_is_said_so_and_not_counted_as_wrong(
        slapd: Slapd, denv: dict[str, str], services: Services) -> None:
    """AD answers the right password of an account that must change it at next logon
    (the default for an account an administrator has just made) with 49 and "data
    773"; an expired one with "data 532". On the base both were "wrong username or
    password", counted: its owner locked the account by typing the right password."""
    sync(services, DirectoryClient(config_of(denv)))
    answers = {person_dn(2): "773", person_dn(3): "532"}
    with ad_binds(slapd.port, answers) as url:
        env = {**denv, "GOVGATE_DIRECTORY_URL": url}
        served = open_services(load_settings(env), environ=env)
        try:
            with TestClient(create_app(parts(served)),
                            base_url="http://127.0.0.1:8080") as portal:
                must, expired = (login(portal, u, USER_PASSWORD) for u in ("user0002",
                                                                           "user0003"))
                wrong = login(portal, "user0002", "Not-the-password-1")
                # signed in, then AD wants it changed: the account page's proof says so
                # (on the base: "the directory is unavailable", 503)
                assert login(portal, "user0001", USER_PASSWORD).status_code == 303
                csrf = csrf_of(portal.get("/portal/account").text)
                answers[person_dn(1)] = "773"
                proof = portal.post("/portal/account/totp", headers=OWN, data={
                    "csrf_token": csrf, "password": USER_PASSWORD})
        finally:
            served.close()
    for r in (must, expired, proof):
        assert r.status_code == 403 and "请先在 Windows 上更改" in r.text
    assert wrong.status_code == 200 and "用户名或密码错误" in wrong.text
    assert services.org.get_user("user0002").failed_logins == 1  # the wrong one only
    assert services.org.get_user("user0003").failed_logins == 0
    assert services.org.get_user("user0001").failed_logins == 0
    services.settle_audit()
    with services.engine.connect() as conn:
        reasons = conn.execute(sa.select(records.c.reason).where(
            records.c.event_type == "login", records.c.actor_user == "user0003")).scalars()
        assert list(reasons) == [f"the directory {url} requires a new password for user0003: "
                                 "the password expired (AD: data 532)"]


def test_ad_refusing_the_account_itself_is_said_so_and_not_counted(
        slapd: Slapd, denv: dict[str, str], services: Services) -> None:
    """Between two syncs AD disables an account (``data 533``), it expires (701) or AD
    locks it out (775, to any password). On the base each was "wrong username or
    password" and counted: govgate locked its owner out for AD's reason."""
    sync(services, DirectoryClient(config_of(denv)))
    answers = {person_dn(0): "533", person_dn(1): "701", person_dn(2): "775"}
    with ad_binds(slapd.port, answers) as url:
        env = {**denv, "GOVGATE_DIRECTORY_URL": url}
        served = open_services(load_settings(env), environ=env)
        try:
            with TestClient(create_app(parts(served)),
                            base_url="http://127.0.0.1:8080") as portal:
                disabled, expired, locked = (login(portal, f"user000{n}", USER_PASSWORD)
                                             for n in range(3))
                guessed = login(portal, "user0002", "Not-the-password-1")
                wrong = login(portal, "user0000", "Not-the-password-1")  # AD: 52e
                portal.cookies.set("gg_lang", "en")
                english = login(portal, "user0001@gov.cn", USER_PASSWORD)
        finally:
            served.close()
    assert disabled.status_code == 403 and "账号已停用" in disabled.text
    assert expired.status_code == 403 and "账号已过期" in expired.text
    for r in (locked, guessed):
        assert r.status_code == 403 and "账号已被锁定" in r.text
    assert english.status_code == 403 and "Your account has expired in the directory" \
        in english.text
    assert wrong.status_code == 200 and "用户名或密码错误" in wrong.text
    assert [services.org.get_user(f"user000{n}").failed_logins for n in range(3)] == [1, 0, 0]
    services.settle_audit()
    with services.engine.connect() as conn:
        reasons = conn.execute(sa.select(records.c.reason).where(
            records.c.event_type == "login", records.c.actor_user == "user0002")).scalars()
        assert list(reasons) == [f"the directory {url} refused user0002: the account is "
                                 "locked out (AD: data 775)"] * 2


def test_a_name_that_is_no_username_is_skipped_and_named_the_rest_synced(
        slapd: Slapd, denv: dict[str, str], services: Services, portal: TestClient) -> None:
    """AD allows Chinese characters and spaces in a ``sAMAccountName`` (and agencies use
    them); govgate's usernames are lower-case ASCII. On the base the one person was a
    conflict that stopped the whole sync: nobody's update, nobody's disable. Now they
    are skipped and named, the rest applied; they have no account, so no name of
    theirs signs in (what they type is any unknown name's "wrong username or
    password")."""
    env = {**denv, "GOVGATE_DIRECTORY_USERNAME_ATTRIBUTE": "sAMAccountName"}
    sync(services, DirectoryClient(config_of(env)))
    services.settle_audit()  # its records, for the CLI's sync to read who disabled user0005
    assert services.org.get_user("user0008").status == "active"
    # user0008 renamed 张三 in AD, user0007's gets a space, user0003's is 65 long; and
    # AD enables user0005 meanwhile: that update must not wait for them
    skipped = {person_dn(3): "u" * 65, person_dn(7): "li si", person_dn(8): "张三"}
    with replaced(slapd, person_dn(8), "sAMAccountName", "张三"), \
            replaced(slapd, person_dn(7), "sAMAccountName", "li si"), \
            replaced(slapd, person_dn(3), "sAMAccountName", "u" * 65), \
            replaced(slapd, person_dn(5), "userAccountControl", "512"):
        result = here(env, "directory", "sync", lang="en_US.UTF-8")
        assert result.returncode == 0, result.stdout + result.stderr
        for dn, name in skipped.items():
            assert f"? {dn}: the username {name!r} cannot be a gateway username " \
                   "(lower-case letters, digits and . _ - only, at most 64): skipped" \
                   in result.stdout
        assert "3 people skipped: their username cannot be a gateway username" \
            in result.stdout
        for typed in ("张三", "user0008@gov.cn", "GOV\\张三", "GOV\\li si"):
            r = login(portal, typed, USER_PASSWORD)
            assert r.status_code == 200 and "用户名或密码错误" in r.text, typed
        assert login(portal, "user0001", USER_PASSWORD).status_code == 303
    assert services.org.get_user("user0005").status == "active"
    # the old name is no longer the directory's: disabled as gone, as any removal
    assert services.org.get_user("user0008").status == "disabled"
    assert "张三" not in {u.username for u in services.org.list_users()}
    services.settle_audit()
    with services.engine.connect() as conn:
        extra = json.loads(conn.execute(sa.select(records.c.extra).where(
            records.c.reason == "directory_synced")).all()[-1][0])
    assert (extra["unusable"], extra["unusable_people"]) == (3, sorted(skipped, key=[
        person_dn(n) for n in range(10)].index))


def test_the_netbios_domain_is_read_from_ad_when_not_set(
        denv: dict[str, str], services: Services) -> None:
    """``directory_netbios_domain`` empty: the domain's NetBIOS name is its crossRef's
    ``nETBIOSName`` in the configuration partition the root DSE names. On the base,
    with the setting empty, ``GOVCN\\user0004`` named no one."""
    sync(services, DirectoryClient(config_of(denv)))
    env = {**denv, "GOVGATE_DIRECTORY_NETBIOS_DOMAIN": ""}
    served = open_services(load_settings(env), environ=env)
    try:
        with TestClient(create_app(parts(served)), base_url="http://127.0.0.1:8080") as portal:
            assert login(portal, f"{NETBIOS.lower()}\\User0004", USER_PASSWORD).status_code \
                == 303
            assert portal.get("/api/v1/account").json()["username"] == "user0004"
            portal.cookies.clear()
            for other in ("GOV\\user0001", "CHILD\\user0001"):  # the child domain's: no
                r = login(portal, other, USER_PASSWORD)
                assert r.status_code == 200 and "用户名或密码错误" in r.text, other
    finally:
        served.close()
