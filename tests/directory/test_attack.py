"""The directory sync attacked as a hostile or careless directory (the attack of
2026-12-05, docs/seams.md), against the module's real slapd: a group that would make
govgate's administrators, an admin role the operator gave that a sync would take
away, entries that are no one person (several usernames, one too long to store, a
control character), a directory answering without end, and the audit of what a
refused sync and the schedule's ending of sessions did."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from audit.tables import records
from gateway.app import create_app
from gateway.directory import DirectoryClient, DirectoryUnavailable, SyncConflict, schedule, sync
from gateway.errors import SettingsError
from gateway.root import Gateway
from gateway.services import Services, open_services
from gateway.settings import load_settings
from tests.directory.conftest import config_of, directory_env
from tests.directory.slapd import USER_PASSWORD, Slapd, ou_dn, person_dn
from tests.directory.slow_relay import slow_relay
from tests.directory.test_sync import changed, directory_users
from tests.gateway.test_cli import here
from tests.oauth2.helpers import login
from tests.wiring import gateway_for, parts

TEN = "(&(objectClass=inetOrgPerson)(|(uid=user001*)(uid=odd*)))"


def failures(services: Services) -> list[dict[str, Any]]:
    services.settle_audit()
    with services.engine.connect() as conn:
        return [json.loads(r.extra) for r in conn.execute(
            sa.select(records.c.extra).where(records.c.reason == "directory_sync_failed",
                                             records.c.outcome == "failure")
            .order_by(records.c.id))]


def test_no_directory_group_makes_an_administrator(denv: dict[str, str],
                                                   services: Services) -> None:
    """Whoever may edit 系统管理员 in the directory would have made govgate's system
    administrator (and 审计员 its auditor) at the next sync."""
    for mapping in ("系统管理员=sysadmin", "数据管理员=data_steward,审计员=auditor",
                    "安全=secadmin"):
        env = {**denv, "GOVGATE_DIRECTORY_GROUP_ROLES": mapping}
        result = here(env, "directory", "sync")
        assert result.returncode == 1
        assert "admin role" in result.stderr and "never by the directory" in result.stderr
        assert result.stderr.strip().count("\n") == 0
        with pytest.raises(SettingsError):
            config_of(env)
    assert directory_users(services) == {}


def test_an_admin_role_the_operator_gave_stays_through_a_sync(
        slapd: Slapd, denv: dict[str, str], services: Services) -> None:
    client = DirectoryClient(config_of(denv, GOVGATE_DIRECTORY_USER_FILTER=TEN))
    sync(services, client)
    services.org.set_roles("user0012", ["staff", "data_steward", "auditor"])
    plan = sync(services, client)
    assert "user0012" not in {c.key for c in plan.changes}
    assert services.org.get_user("user0012").roles == {"staff", "data_steward", "auditor"}
    # locked in the directory: disabled, the role kept (the record of who held it) ...
    with changed(slapd, modifies=((person_dn(12), {"pwdAccountLockedTime": "000001010000Z"}),)):
        sync(services, client)
    assert services.org.get_user("user0012").status == "disabled"
    assert "auditor" in services.org.get_user("user0012").roles
    # ... unlocked: active, without it (the operator grants it again)
    sync(services, client)
    back = services.org.get_user("user0012")
    assert (back.status, back.roles) == ("active", {"staff", "data_steward"})


def test_an_administrators_disable_is_not_undone_by_the_directory(
        slapd: Slapd, denv: dict[str, str], services: Services) -> None:
    """An account the security admin disabled in govgate (an incident) was active again
    at the next sync, the directory still having it active; the directory's own lock
    and unlock still decide the accounts the sync disabled."""
    env = {**denv, "GOVGATE_DIRECTORY_USER_FILTER": TEN}
    assert here(env, "directory", "sync").returncode == 0
    assert here(env, "user", "disable", "user0013").returncode == 0
    again = here(env, "directory", "sync")
    assert again.returncode == 0
    assert "= user user0013 stays disabled" in again.stdout
    assert services.org.get_user("user0013").status == "disabled"
    with changed(slapd, modifies=((person_dn(14), {"pwdAccountLockedTime": "000001010000Z"}),)):
        assert here(env, "directory", "sync").returncode == 0
    assert services.org.get_user("user0014").status == "disabled"
    assert here(env, "directory", "sync").returncode == 0  # unlocked: active again
    assert services.org.get_user("user0014").status == "active"
    assert services.org.get_user("user0013").status == "disabled"
    assert here(env, "user", "enable", "user0013").returncode == 0  # the operator's
    assert here(env, "directory", "sync").returncode == 0
    assert services.org.get_user("user0013").status == "active"


def test_a_name_removed_and_back_is_no_one_until_the_operator_says(
        slapd: Slapd, denv: dict[str, str], services: Services) -> None:
    """user0015 removed from the directory, the uid given again (a new person?): the
    old account, its history and delegations, was active again at the next sync."""
    env = {**denv, "GOVGATE_DIRECTORY_USER_FILTER": TEN}
    assert here(env, "directory", "sync").returncode == 0
    services.org.set_roles("user0015", ["staff", "data_steward", "secadmin"])
    with changed(slapd, deletes=(person_dn(15),)):
        assert here(env, "directory", "sync").returncode == 0
    gone = services.org.get_user("user0015")
    assert (gone.status, gone.roles) == ("disabled", {"staff", "data_steward"})
    back = here(env, "directory", "sync")
    assert "= user user0015 stays disabled: removed from the directory and back" in \
        back.stdout
    assert services.org.get_user("user0015").status == "disabled"
    assert here(env, "user", "enable", "user0015").returncode == 0
    assert here(env, "directory", "sync").returncode == 0
    assert services.org.get_user("user0015").status == "active"


NO_ONE = [
    ({"uid": ["odd.one", "odd.two"], "cn": "两名"}, "2 usernames (odd.one, odd.two)"),
    ({"uid": "odd.esc", "cn": "坏\x1b[2J名"}, "the name holds the control character U+001B"),
    ({"uid": "odd.rtl", "cn": "名\u202etxt.exe"}, "the name holds the control character U+202E"),
    ({"uid": "odd.tab", "cn": "名", "mail": "a\tb@gxzf.gov.cn"},
     "the email holds the control character U+0009"),
]


def test_an_entry_that_is_no_one_person_stops_the_sync(
        slapd: Slapd, denv: dict[str, str], services: Services) -> None:
    """Before: the first of two uids taken, control characters stored and shown, in a person's
    entry or a department's. (One test for them all: a gateway home each would cost a
    second apiece on PostgreSQL.)"""
    client = DirectoryClient(config_of(denv, GOVGATE_DIRECTORY_USER_FILTER=TEN))
    for n, (entry, problem) in enumerate(NO_ONE, 1):
        first = entry["uid"][0] if isinstance(entry["uid"], list) else entry["uid"]
        dn = f"uid={first},{ou_dn('预算处')}"
        with (changed(slapd, (dn, {"objectClass": ["inetOrgPerson"], "sn": "某", **entry})),
              pytest.raises(SyncConflict) as raised):
            sync(services, client)
        [found] = [str(p) for p in raised.value.problems]
        assert found.startswith(f"{dn}: {problem}"), found
        assert directory_users(services) == {}
        logged = failures(services)
        assert len(logged) == n and logged[-1]["conflicts"] == [found]
        assert logged[-1]["url"] == slapd.url
    # a department OU's name (its DN with the escape, RFC 4514)
    dn = f"ou=坏\\1b[2J处,{ou_dn('财政厅')}"
    with (changed(slapd, (dn, {"objectClass": ["organizationalUnit"],
                               "businessCategory": "czt.odd"})),
          pytest.raises(SyncConflict) as raised):
        sync(services, client)
    [found] = [str(p) for p in raised.value.problems]
    assert found.endswith(": the name holds the control character U+001B"), found
    assert "czt.odd" not in {d["code"] for d in services.org.list_departments()}


def test_a_second_group_of_a_mapped_name_stops_the_sync(
        slapd: Slapd, denv: dict[str, str], services: Services) -> None:
    """A group named 数据管理员 made under a department's OU (by whoever administers
    that OU) added its members to the mapped group: data stewards of their department."""
    rogue = f"cn=数据管理员,{ou_dn('预算处')}"
    client = DirectoryClient(config_of(denv, GOVGATE_DIRECTORY_USER_FILTER=TEN))
    with (changed(slapd, (rogue, {"objectClass": ["groupOfNames"], "cn": "数据管理员",
                                  "member": [person_dn(3)]})),
          pytest.raises(SyncConflict) as raised):
        sync(services, client)
    [found] = [str(p) for p in raised.value.problems]
    assert found.startswith("2 groups are named '数据管理员'") and rogue in found
    assert directory_users(services) == {}


def test_a_directory_answering_without_end_is_refused(denv: dict[str, str],
                                                      services: Services) -> None:
    client = DirectoryClient(dataclasses.replace(
        config_of(denv, GOVGATE_DIRECTORY_PAGE_SIZE="50"), max_entries=120))
    with pytest.raises(DirectoryUnavailable, match="more than 120 entries match"):
        sync(services, client)
    assert directory_users(services) == {}
    [failed] = failures(services)
    assert "more than 120 entries" in failed["error"]


def test_a_directory_answering_slowly_is_refused(slapd: Slapd, denv: dict[str, str],
                                                  services: Services) -> None:
    """Every page within the timeout, page after page: the sync (and the maintenance
    round that runs it) waited for as long as the directory liked."""
    with slow_relay(slapd.port, delay=0.05) as url:
        client = DirectoryClient(dataclasses.replace(
            config_of(denv, GOVGATE_DIRECTORY_URL=url, GOVGATE_DIRECTORY_PAGE_SIZE="20"),
            search_seconds=0.5))
        started = time.monotonic()
        with pytest.raises(DirectoryUnavailable, match=r"took longer than 0\.5 s"):
            sync(services, client)
    assert time.monotonic() - started < 5
    assert directory_users(services) == {}


def test_a_refused_sync_from_the_cli_is_audited(slapd: Slapd, denv: dict[str, str],
                                                services: Services) -> None:
    """The schedule's failures were recorded, the CLI's were only printed."""
    twin = f"uid=user0003,{ou_dn('办公室')}"
    with changed(slapd, (twin, {"objectClass": ["inetOrgPerson"], "uid": "user0003",
                                "cn": "重名", "sn": "重"})):
        assert here(denv, "directory", "sync", "--dry-run").returncode == 1
        assert failures(services) == []  # a dry run changes nothing, refuses nothing
        assert here(denv, "directory", "sync").returncode == 1
    [failed] = failures(services)
    assert "user user0003 is in two departments" in failed["conflicts"][0]


@pytest.fixture
def gateway(denv: dict[str, str], home: Path) -> Iterator[Gateway]:
    env = {**denv, "GOVGATE_DIRECTORY_SYNC_INTERVAL": "1",
           "GOVGATE_DIRECTORY_USER_FILTER": TEN}
    opened = open_services(load_settings(env), environ=env)
    yield gateway_for(opened)
    opened.close()


def test_the_schedule_records_the_sessions_it_ends(slapd: Slapd, gateway: Gateway) -> None:
    """The CLI's sync recorded ``sessions_revoked``; the schedule's ended them unseen."""
    services = gateway.services
    assert schedule.run_round(gateway) is not None
    _, session = gateway.provider.store.create_session(
        "user0014", "active", amr="pwd", absolute_seconds=3600)
    now = services.clock
    services.clock = lambda: now() + timedelta(seconds=5)  # the next round is due
    with changed(slapd, modifies=((person_dn(14), {"pwdAccountLockedTime": "000001010000Z"}),)):
        plan = schedule.run_round(gateway)
    assert plan is not None and plan.newly_disabled() == ["user0014"]
    ended = gateway.provider.store.get_session(session.sid)
    assert ended is not None and ended.revoked_at is not None
    services.settle_audit()
    with services.engine.connect() as conn:
        [(actor, extra)] = conn.execute(sa.select(records.c.actor_user, records.c.extra).where(
            records.c.reason == "sessions_revoked")).all()
    assert actor == "directory-sync"
    assert {k: json.loads(extra)[k] for k in ("user", "sessions")} == {
        "user": "user0014", "sessions": 1}


def test_a_second_username_of_an_entry_signs_in_as_no_one(
        slapd: Slapd, denv: dict[str, str], services: Services) -> None:
    """user0013's entry gone, another given ``uid: user0013`` beside its own: its
    password signed in to user0013's account (still active until a sync, and the
    sync, refusing that entry, applies nothing)."""
    sync(services, DirectoryClient(config_of(denv, GOVGATE_DIRECTORY_USER_FILTER=TEN)))
    alias = f"uid=odd.alias,{ou_dn('预算处')}"
    with (changed(slapd, (alias, {"objectClass": ["inetOrgPerson"], "cn": "别名", "sn": "别",
                                  "uid": ["odd.alias", "user0013"],
                                  "userPassword": "Alias-Passw0rd-2026"}),
                  deletes=(person_dn(13),)),
          TestClient(create_app(parts(services)), base_url="http://127.0.0.1:8080") as portal):
        refused = login(portal, "user0013", "Alias-Passw0rd-2026")
        assert refused.headers.get("location") != "/portal"
    services.settle_audit()
    with services.engine.connect() as conn:
        assert [r.outcome for r in conn.execute(sa.select(records.c.outcome).where(
            records.c.event_type == "login", records.c.actor_user == "user0013"))] == [
            "failure"]


def test_a_sign_in_name_is_no_filter(env: dict[str, str], slapd: Slapd) -> None:
    """The one filter built from what a stranger types (the sign-in's search): its
    ``*``, parentheses and backslashes are the name's letters (RFC 4515 escapes)."""
    client = DirectoryClient(config_of({**env, **directory_env(slapd)}))
    assert client.verify("user0003", USER_PASSWORD)
    for typed in ("*", "user000*", "user0003)(uid=*", "*)(|(uid=*", "user0003\\", "user0003\x00"):
        assert not client.verify(typed, USER_PASSWORD), typed
