"""SCIM attacked with a client's stolen token (the attack of 2026-12-05,
docs/seams.md), over HTTP against the live gateway: the roles of users outside the
client's department read through a group filter, a filter long enough to be a 503,
control characters in a name, a body declared as something else than JSON, and the
directory's accounts (the directory sync decides them) changed over SCIM."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.services import open_services
from gateway.status_records import last_status_change
from gateway.tables import users
from tests.scim.conftest import World
from tests.scim.test_refusals import PATCH, add_member, denials, scim_error, user_id

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


def test_a_member_outside_the_scope_matches_no_group_filter(world: World) -> None:
    """The city's client saw no member elsewhere, yet ``members[value eq "1"]`` told it
    which roles the province's system administrator holds."""
    sysadmin = user_id(world, "sysadmin")
    asked = f'members[value eq "{sysadmin}"]'
    with world.http("scim-city") as http:
        assert http.get("/Groups", params={"filter": asked}).json()["totalResults"] == 0
        both = http.post("/.search", json={"schemas": [SEARCH], "filter": asked}).json()
        assert both["totalResults"] == 0
        assert http.get("/Groups", params={"filter": "members pr"}).json()["totalResults"] \
            == 1  # staff: wang.wu, of its department
    with world.http() as http:  # the province's client sees the administrator
        found = http.get("/Groups", params={"filter": asked}).json()
        assert [g["id"] for g in found["Resources"]] == ["sysadmin"]


def test_a_filter_compares_at_most_a_hundred_times(world: World) -> None:
    """3,000 ``or``-ed comparisons were a 503 on SQLite ("the database is
    unavailable"), in problem+json."""
    terms = ['userName eq "li.si"'] * 100
    with world.http() as http:
        assert http.post("/Users/.search", json={"filter": " or ".join(terms)}
                         ).json()["totalResults"] == 1
        for n in (101, 3000):
            body = scim_error(http.post("/Users/.search", json={
                "filter": " or ".join(['userName eq "li.si"'] * n)}), 400, "invalidFilter")
            assert "at most 100" in body["detail"]
        scim_error(http.post("/Groups/.search", json={
            "filter": " and ".join(['members pr'] * 101)}), 400, "invalidFilter")


@pytest.mark.parametrize("name", ["李\x1b[2J四", "李\u202e四", "李\x07"])
def test_a_name_with_a_control_character_is_refused(world: World, name: str) -> None:
    li = user_id(world, "li.si")
    with world.http() as http:
        scim_error(http.post("/Users", json={"schemas": [USER], "userName": "ctl.user",
                                             "displayName": name}), 400, "invalidValue")
        scim_error(http.patch(f"/Users/{li}", json={"schemas": [PATCH], "Operations": [
            {"op": "replace", "path": "displayName", "value": name}]}), 400, "invalidValue")
        scim_error(http.patch(f"/Users/{li}", json={"schemas": [PATCH], "Operations": [
            {"op": "replace", "path": "emails", "value": [{"value": f"a{name}@x.cn"}]}]}),
            400, "invalidValue")
    assert world.services.org.get_user("li.si").name == "李四"
    assert "ctl.user" not in {u.username for u in world.services.org.list_users()}


def test_a_body_declared_as_anything_but_json_is_415(world: World) -> None:
    body = json.dumps({"schemas": [USER], "userName": "typed.user", "displayName": "类型"})
    with world.http() as http:
        for declared in ("text/plain", "application/x-www-form-urlencoded",
                         "multipart/form-data; boundary=x"):
            scim_error(http.post("/Users", content=body, headers={"Content-Type": declared}),
                       415)
        assert "typed.user" not in {u.username for u in world.services.org.list_users()}
        made = http.post("/Users", content=body,
                         headers={"Content-Type": "application/json; charset=utf-8"})
        assert made.status_code == 201, made.text


def test_roles_on_a_user_are_refused_not_dropped(world: World) -> None:
    """``roles`` and ``entitlements`` of the core schema were dropped with a 200: a
    careless client took the sysadmin it asked for as given."""
    li = user_id(world, "li.si")
    with world.http() as http:
        for name in ("roles", "entitlements"):
            body = scim_error(http.patch(f"/Users/{li}", json={"schemas": [PATCH], "Operations": [
                {"op": "add", "path": name, "value": [{"value": "sysadmin"}]}]}),
                400, "invalidValue")
            assert "Groups" in body["detail"]
            scim_error(http.post("/Users", json={"schemas": [USER], "userName": "role.user",
                                                 "displayName": "角色", name: [
                                                     {"value": "auditor"}]}),
                       400, "invalidValue")
    assert "role.user" not in {u.username for u in world.services.org.list_users()}
    assert world.services.org.get_user("li.si").roles == {"staff"}


def test_a_look_alike_name_is_the_same_account_or_none(world: World) -> None:
    """Guards: case and full-width forms are the account's own name (409 on create, no
    rename; U+2024 is NFKC's full stop), a Cyrillic letter or a zero-width space is no
    name at all."""
    li = user_id(world, "li.si")
    with world.http() as http:
        for same in ("Li.Si", "ＬＩ．ＳＩ", " li.si ", "li\u2024si"):
            scim_error(http.post("/Users", json={"schemas": [USER], "userName": same,
                                                 "displayName": "李四"}), 409, "uniqueness")
        for none in ("l\u0456.si", "li.si\u200b"):
            scim_error(http.post("/Users", json={"schemas": [USER], "userName": none,
                                                 "displayName": "李四"}), 400, "invalidValue")
        for other in ("wang.wu", "WANG.WU", "ｗａｎｇ．ｗｕ"):
            scim_error(http.patch(f"/Users/{li}", json={"schemas": [PATCH], "Operations": [
                {"op": "replace", "path": "userName", "value": other}]}), 400, "mutability")
    assert world.services.org.get_user("li.si").name == "李四"


def test_a_client_id_is_no_user_name(world: World) -> None:
    """A client-credentials token's ``sub`` is its ``client_id`` (RFC 9700 section
    4.15): a user pushed under a client's id, in any case, would be that client to a
    resource server reading ``sub`` alone. It used to be created (201)."""
    with world.http() as http:  # SCIM reads the name as scim-platform
        body = scim_error(http.post("/Users", json={
            "schemas": [USER], "userName": "SCIM-Platform", "displayName": "冒名"}),
            409, "uniqueness")
    assert "client_id of client 'scim-platform'" in body["detail"]


def test_an_administrators_disable_is_not_undone_by_a_push(world: World) -> None:
    """An HR system's full push sends ``active: true`` for everyone: the account the
    security admin disabled (an incident) was active again at the next one. What SCIM
    disabled, SCIM enables."""
    active = {"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": "active", "value": True}]}
    with world.http() as http:
        made = http.post("/Users", json={"schemas": [USER], "userName": "inc.user",
                                          "displayName": "事件"})
        who = made.json()["id"]
        off = http.patch(f"/Users/{who}", json={"schemas": [PATCH], "Operations": [
            {"op": "replace", "path": "active", "value": False}]})
        assert off.json()["active"] is False
        assert http.patch(f"/Users/{who}", json=active).json()["active"] is True
        # the operator's disable (as `govgate user disable` records it)
        world.services.org.disable_user("inc.user")
        world.services.record_admin_change("user_disabled", {"user": "inc.user"})
        body = scim_error(http.patch(f"/Users/{who}", json=active), 403)
        assert "disabled by an administrator" in body["detail"]
        scim_error(http.put(f"/Users/{who}", json={"schemas": [USER], "userName": "inc.user",
                                                   "displayName": "事件", "active": True}), 403)
        assert world.services.org.get_user("inc.user").status == "disabled"
        # other changes go on while it is disabled
        renamed = http.patch(f"/Users/{who}", json={"schemas": [PATCH], "Operations": [
            {"op": "replace", "path": "displayName", "value": "事件二"}]})
        assert renamed.status_code == 200, renamed.text
    refused = [d for d in denials(world, "admin_change")
               if d["extra"].get("user") == "inc.user"]
    assert {d["extra"]["what"] for d in refused} == {
        f"PATCH /scim/v2/Users/{who}", f"PUT /scim/v2/Users/{who}"}


def test_an_administrators_disable_not_yet_loaded_is_not_undone_by_a_push(
        world: World, tmp_path: Path) -> None:
    """Journal mode: an account SCIM disabled, disabled again by the operator in another
    process (``govgate user disable``) whose record is in that process's journal, not
    yet loaded. The newest status record seen was SCIM's own, so ``active: true``
    re-enabled it; now the account changed after every record seen holds it
    (``StatusChange.accounts_for``) until the log has caught up."""
    active = {"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": "active", "value": True}]}
    with world.http() as http:
        who = http.post("/Users", json={"schemas": [USER], "userName": "lag.user",
                                        "displayName": "滞后"}).json()["id"]
        off = http.patch(f"/Users/{who}", json={"schemas": [PATCH], "Operations": [
            {"op": "replace", "path": "active", "value": False}]})
        assert off.json()["active"] is False
        settings = dataclasses.replace(world.services.settings, audit_path="journal",
                                       audit_journal_dir=str(tmp_path / "journal"))
        cli = open_services(settings, writer="cli-elsewhere", actor="ops")
        try:
            cli.org.disable_user("lag.user")
            cli.record_admin_change("user_disabled", {"user": "lag.user"})
            last = last_status_change(world.services.engine, "lag.user")
            assert last is not None and last.extra.get("via") == "scim"  # not loaded yet
            body = scim_error(http.patch(f"/Users/{who}", json=active), 403)
            assert "disabled by an administrator" in body["detail"]
            assert world.services.org.get_user("lag.user").status == "disabled"
        finally:
            cli.close()


@pytest.fixture(scope="module")
def from_the_directory(world: World) -> Iterator[str]:
    """An account of the directory sync (source ``directory``, no password)."""
    org = world.services.org
    org.add_user("dir.person", "目录人员", "jgswj", ["staff"], "Dir-person-Passw0rd-1")
    with world.services.engine.begin() as conn:
        conn.execute(users.update().where(users.c.username == "dir.person")
                     .values(source="directory", password_hash=None, must_change=False))
    yield user_id(world, "dir.person")


def test_the_directorys_accounts_are_not_changed_over_scim(world: World,
                                                           from_the_directory: str) -> None:
    """Before: a SCIM token re-enabled whom the directory disabled (until the next
    sync), moved and renamed the directory's people, gave them roles the sync took
    back. Now read, never changed (403, audited), as the admin accounts."""
    who = from_the_directory
    with world.http() as http:
        assert http.get(f"/Users/{who}").json()["userName"] == "dir.person"
        for op in ({"op": "replace", "path": "active", "value": False},
                   {"op": "replace", "path": "displayName", "value": "改名"},
                   {"op": "replace", "path": "password", "value": "Another-Passw0rd-42"}):
            body = scim_error(http.patch(f"/Users/{who}", json={
                "schemas": [PATCH], "Operations": [op]}), 403)
            assert "directory" in body["detail"]
        scim_error(http.put(f"/Users/{who}", json={"schemas": [USER], "userName": "dir.person",
                                                   "displayName": "目录人员"}), 403)
        scim_error(http.delete(f"/Users/{who}"), 403)
        scim_error(http.patch("/Groups/data_steward", json=add_member("data_steward", who)),
                   403)
    person = world.services.org.get_user("dir.person")
    assert (person.status, person.name, person.roles) == ("active", "目录人员", {"staff"})
    with world.services.engine.connect() as conn:
        assert conn.execute(sa.select(users.c.password_hash)
                            .where(users.c.username == "dir.person")).scalar() is None
    refused = [d for d in denials(world, "admin_change")
               if d["extra"].get("user") == "dir.person"]
    assert {d["extra"]["what"] for d in refused} == {
        f"PATCH /scim/v2/Users/{who}", f"PUT /scim/v2/Users/{who}",
        f"DELETE /scim/v2/Users/{who}", "PATCH /scim/v2/Groups/data_steward"}


def test_bulk_is_not_implemented_as_the_service_provider_config_says(world: World) -> None:
    """``/Bulk`` answered 404 (as an unknown path); RFC 7644 3.12 asks 501 for an
    operation the service provider does not support, which its configuration states."""
    with world.http() as http:
        assert http.get("/ServiceProviderConfig").json()["bulk"]["supported"] is False
        r = http.post("/Bulk", json={"schemas": [
            "urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": []})
        body = scim_error(r, 501, None)
        assert "bulk" in body["detail"]
