"""``govgate directory sync`` against a real slapd holding 500 people in departments
named in Chinese: the plan, the apply, a second run, disabled and removed accounts,
conflicts, and the directory going away in the middle of a paged search."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import ldap3
import pytest
import sqlalchemy as sa

from audit.tables import records as audit_records
from gateway.directory import (
    DirectoryClient,
    DirectoryConfig,
    DirectoryUnavailable,
    SyncConflict,
    sync,
)
from gateway.services import Services
from gateway.tables import departments, users
from tests.directory.conftest import config_of
from tests.directory.slapd import ADMIN_DN, ADMIN_PASSWORD, PEOPLE, Slapd, ou_dn, person_dn
from tests.gateway.test_cli import here


def directory_users(services: Services) -> dict[str, Any]:
    with services.engine.connect() as conn:
        return {r.username: r for r in conn.execute(
            sa.select(users).where(users.c.source == "directory"))}


@contextmanager
def changed(server: Slapd, *adds: tuple[str, dict[str, Any]],
            deletes: tuple[str, ...] = (),
            modifies: tuple[tuple[str, dict[str, Any]], ...] = ()) -> Iterator[None]:
    """The directory with entries added, deleted and modified, put back afterwards."""
    conn = ldap3.Connection(ldap3.Server(server.url), ADMIN_DN, ADMIN_PASSWORD, auto_bind=True)
    saved: list[tuple[str, dict[str, Any]]] = []
    for dn in deletes:
        conn.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["*"])
        entry = conn.response[0]
        saved.append((dn, {k: v for k, v in entry["raw_attributes"].items()}))
        assert conn.delete(dn), conn.result
    for dn, attributes in adds:
        assert conn.add(dn, attributes=attributes), conn.result
    for dn, change in modifies:
        assert conn.modify(dn, {k: [(ldap3.MODIFY_ADD, v)] for k, v in change.items()}), \
            conn.result
    try:
        yield
    finally:
        for dn, change in modifies:
            conn.modify(dn, {k: [(ldap3.MODIFY_DELETE, v)] for k, v in change.items()})
        for dn, _ in adds:
            conn.delete(dn)
        for dn, attributes in saved:
            conn.add(dn, attributes=attributes)
        conn.unbind()


def test_dry_run_then_apply_then_nothing(denv: dict[str, str], services: Services) -> None:
    dry = here(denv, "directory", "sync", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "+ department czt" in dry.stdout and "+ user user0499" in dry.stdout
    assert f"{PEOPLE} people in the directory: {PEOPLE} to create" in dry.stdout
    assert "2 to disable" in dry.stdout and "dry run: nothing written." in dry.stdout
    assert directory_users(services) == {}

    applied = here(denv, "directory", "sync")
    assert applied.returncode == 0, applied.stderr
    found = directory_users(services)
    assert len(found) == PEOPLE
    with services.engine.connect() as conn:
        names = {r.code: (r.name, r.parent_code) for r in conn.execute(sa.select(departments))}
    assert names["czt"] == ("财政厅", None)
    assert names["czt.ysc"] == ("预算处", "czt")
    assert names["jgswglj.bgs"] == ("办公室", "jgswglj")
    org = services.org
    assert org.get_user("user0001").roles == {"staff"}  # in 系统管理员: no role from it
    assert org.get_user("user0015").roles == {"staff", "data_steward"}
    zero = org.get_user("user0000")
    assert (zero.name, zero.department, zero.email, zero.source) == (
        "测试用户0000", "jgswglj", "user0000@gxzf.gov.cn", "directory")
    assert org.get_user("user0007").status == "disabled"
    assert org.get_user("user0123").status == "disabled"
    assert found["user0003"].password_hash is None and not found["user0003"].must_change
    with services.engine.connect() as conn:
        actors = {r.actor_user for r in conn.execute(
            sa.select(audit_records.c.actor_user).where(
                audit_records.c.event_type == "admin_change",
                audit_records.c.reason.in_(["state_applied", "directory_synced"])))}
    assert actors == {"directory-sync"}

    again = here(denv, "directory", "sync")
    assert again.returncode == 0 and "nothing to change." in again.stdout
    assert "0 to create, 0 to update, 0 to disable" in again.stdout


def test_removed_or_locked_in_the_directory_is_disabled_never_deleted(
        slapd: Slapd, denv: dict[str, str], services: Services) -> None:
    # ten people: the filter decides who the directory's users are
    client = DirectoryClient(config_of(
        denv, GOVGATE_DIRECTORY_USER_FILTER="(&(objectClass=inetOrgPerson)(uid=user004*))"))
    assert sync(services, client).count("create") == 10
    gone, locked = person_dn(40), person_dn(41)
    with changed(slapd, deletes=(gone,),
                 modifies=((locked, {"pwdAccountLockedTime": "000001010000Z"}),)):
        plan = sync(services, client, dry_run=True)
        assert sorted(plan.disabled) == ["user0040", "user0041"]
        assert services.org.get_user("user0040").status == "active"
        plan = sync(services, client)
        assert sorted(str(c) for c in plan.changes) == ["~ user user0040 (status)",
                                                  "~ user user0041 (status)"]
        assert services.org.get_user("user0040").status == "disabled"
        assert services.org.get_user("user0041").status == "disabled"
        assert len(directory_users(services)) == 10
    plan = sync(services, client)  # unlocked: active again
    assert services.org.get_user("user0041").status == "active"
    # back in the directory (perhaps another person under the name): the operator's
    assert plan.returned == ["user0040"]
    assert services.org.get_user("user0040").status == "disabled"


def test_conflicts_are_listed_and_nothing_is_applied(
        slapd: Slapd, denv: dict[str, str], services: Services) -> None:
    twin = f"uid=user0003,{ou_dn('办公室')}"
    person = {"objectClass": ["inetOrgPerson"], "uid": "user0003", "cn": "重名", "sn": "重"}
    aliased = f"uid=alias.one,{ou_dn('预算处')}"
    with changed(slapd, (twin, person), (aliased, {
            "objectClass": ["inetOrgPerson"], "uid": ["alias.one", "alias.two"], "cn": "两名",
            "sn": "两"})):
        result = here(denv, "directory", "sync", "--dry-run")
        assert result.returncode == 1
        assert "2 conflict(s) in the directory; nothing applied" in result.stderr
        assert "user user0003 is in two departments" in result.stdout
        assert f"{aliased}: 2 usernames (alias.one, alias.two)" in result.stdout
        with pytest.raises(SyncConflict) as raised:
            sync(services, DirectoryClient(config_of(denv)))
        assert len(raised.value.problems) == 2
    assert directory_users(services) == {}
    with services.engine.connect() as conn:
        assert conn.execute(sa.select(departments.c.code)
                            .where(departments.c.code == "czt")).first() is None


def test_a_local_account_of_the_same_name_is_a_conflict(denv: dict[str, str],
                                                        services: Services) -> None:
    services.org.add_department("local.x", "本地", "local")
    services.org.add_user("user0005", "本地用户", "local.x", ["staff"], "A-local-Passw0rd-77")
    result = here(denv, "directory", "sync")
    assert result.returncode == 1 and "user user0005" in result.stdout
    assert "is a local account" in result.stdout
    assert directory_users(services) == {}


class Interrupted(DirectoryClient):
    """Stops the server after the first page of people."""

    def __init__(self, config: DirectoryConfig, server: Slapd) -> None:
        super().__init__(config)
        self.slapd, self.pages = server, 0

    def page(self, conn: ldap3.Connection, search_filter: str, attributes: list[str],
             cookie: Any) -> list[tuple[str, dict[str, Any]]]:
        self.pages += 1
        if self.pages == 3:  # the OUs, then the first page of people
            self.slapd.stop()
        return super().page(conn, search_filter, attributes, cookie)


def test_the_directory_going_away_mid_sync_applies_nothing(
        slapd: Slapd, denv: dict[str, str], services: Services) -> None:
    client = Interrupted(config_of(denv, GOVGATE_DIRECTORY_PAGE_SIZE="50"), slapd)
    try:
        with pytest.raises(DirectoryUnavailable) as raised:
            sync(services, client)
        assert client.pages == 3
        message = str(raised.value)
        assert message.startswith(f"the directory {slapd.url} is unavailable")
        assert "\n" not in message
        assert directory_users(services) == {}
        result = here(denv, "directory", "sync")  # still down: one line, exit 1
        assert result.returncode == 1
        assert result.stderr.strip().count("\n") == 0
        assert "is unavailable" in result.stderr
    finally:
        slapd.start()



def test_a_department_the_gateway_has_keeps_its_place_and_takes_the_ous_name(
        denv: dict[str, str], services: Services) -> None:
    org = services.org
    org.add_department("gx", "广西壮族自治区", "local")
    org.add_department("czt", "财政厅（旧名）", "local", parent="gx")
    client = DirectoryClient(config_of(
        denv, GOVGATE_DIRECTORY_USER_FILTER="(&(objectClass=inetOrgPerson)(uid=user001*))"))
    plan = sync(services, client)
    assert "~ department czt (name)" in [str(c) for c in plan.changes]
    czt = org.get_department("czt")
    assert (czt["name"], czt["parent_code"]) == ("财政厅", "gx")
    assert org.get_department("czt.ysc")["parent_code"] == "czt"
