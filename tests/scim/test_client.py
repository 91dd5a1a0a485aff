"""SCIM through scim2-client (the python-scim project's client library) against the live
gateway: users created, read, filtered, sorted, paged, patched, replaced and deleted;
groups (roles) read and their members changed; what the org's rules refuse; and the
admin_change records every change leaves, with the client as the actor."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
import sqlalchemy as sa
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import (
    Email,
    EnterpriseUser,
    Error,
    Group,
    GroupMember,
    ListResponse,
    PatchOp,
    PatchOperation,
    ResourceType,
    SCIMException,
    ScimProvider,
    SearchRequest,
    User,
)

from audit.tables import records
from gateway.tables import users
from tests.scim.conftest import World

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
UserE = User[EnterpriseUser]


@pytest.fixture(scope="module")
def scim(world: World) -> Iterator[SyncSCIMClient]:
    with httpx2.Client(base_url=world.base, timeout=20, headers={
            "Authorization": f"Bearer {world.token('scim-platform')}"}) as http:
        client = SyncSCIMClient(http, provider=ScimProvider(
            models=[User, EnterpriseUser, Group],
            resource_types=[ResourceType.from_resource(UserE),
                            ResourceType.from_resource(Group)]))
        client.discover(schemas=False, resource_types=False)
        yield client


def admin_changes(world: World, change: str, **target: str) -> list[dict[str, Any]]:
    """The ``change`` records about ``target`` (user=..., group=...)."""
    with world.services.engine.connect() as conn:
        rows = conn.execute(sa.select(records).where(records.c.event_type == "admin_change")
                            .order_by(records.c.id)).all()
    out = []
    for row in rows:
        record = dict(row._mapping)
        if isinstance(record["extra"], str):
            record["extra"] = json.loads(record["extra"])
        extra = record["extra"]
        if extra.get("change") == change and all(extra.get(k) == v
                                                 for k, v in target.items()):
            out.append(record)
    return out


def new_user(scim: SyncSCIMClient, username: str, **extra: Any) -> Any:
    user = UserE(user_name=username, display_name="测试用户", active=True,
                 emails=[Email(value=f"{username}@example.gov.cn", type="work")], **extra)
    user[EnterpriseUser] = EnterpriseUser(department="jgswj")
    return scim.create(user)


def test_create_read_and_the_audit_record(world: World, scim: SyncSCIMClient) -> None:
    created = new_user(scim, "chen.yi", external_id="hr-0001",
                       password="correct horse battery staple 2026")
    assert created.id and created.user_name == "chen.yi"
    assert created[EnterpriseUser].department == "jgswj"
    assert created.password is None  # never returned
    read = scim.query(UserE, created.id)
    assert read.emails[0].value == "chen.yi@example.gov.cn"
    assert read.external_id == "hr-0001" and read.active is True
    assert read.meta.version and read.meta.location.endswith(f"/Users/{created.id}")
    # the account is govgate's: the department, a password hash, staff by default
    with world.services.engine.connect() as conn:
        row = conn.execute(sa.select(users).where(users.c.username == "chen.yi")).one()
    assert row.department_code == "jgswj" and row.password_hash and row.must_change
    [record] = admin_changes(world, "scim_user_created", user="chen.yi")
    assert record["actor_client"] == "scim-platform" and record["actor_user"] is None
    assert record["extra"]["via"] == "scim" and record["extra"]["before"] is None
    assert record["extra"]["after"]["userName"] == "chen.yi"
    assert "correct horse" not in str(record)


def test_a_weak_password_is_refused(scim: SyncSCIMClient) -> None:
    with pytest.raises(SCIMException) as caught:
        new_user(scim, "weak.pw", password="12345678")
    assert caught.value.status == 400 and caught.value.scim_type == "invalidValue"
    assert "password" in str(caught.value)


def test_filter_sort_and_pages(scim: SyncSCIMClient) -> None:
    found = scim.query(UserE, query_parameters=SearchRequest(
        filter='userName sw "zh" and active eq true', sort_by="userName",
        sort_order="descending"))
    assert isinstance(found, ListResponse)
    assert [u.user_name for u in found.resources] == ["zhou.ling", "zhao.min", "zhang.san"]
    by_path = scim.query(UserE, query_parameters=SearchRequest(
        filter='emails[type eq "work" and value co "chen.yi@"]'))
    assert [u.user_name for u in by_path.resources] == ["chen.yi"]
    in_dept = scim.query(UserE, query_parameters=SearchRequest(
        filter=f'{ENTERPRISE}:department eq "nn-jgsw" or groups[value eq "dept_head"]'))
    assert sorted(u.user_name for u in in_dept.resources) == ["wang.wu", "zhou.ling"]
    negated = scim.query(UserE, query_parameters=SearchRequest(
        filter='not (userName ne "li.si")'))
    assert [u.user_name for u in negated.resources] == ["li.si"]
    page = scim.query(UserE, query_parameters=SearchRequest(
        start_index=2, count=2, sort_by="userName"))
    assert page.total_results >= 8 and page.start_index == 2 and len(page.resources) == 2
    everyone = scim.query(UserE, query_parameters=SearchRequest(sort_by="userName"))
    names = [u.user_name for u in everyone.resources]
    assert [u.user_name for u in page.resources] == names[1:3]
    assert names == sorted(names)
    for text, expected in (
            ('userName ew ".san"', ["zhang.san"]),
            ('externalId eq "hr-0001"', ["chen.yi"]),
            ('externalId eq "HR-0001"', []),  # caseExact
            ('emails pr and displayName co "测试"', ["chen.yi"]),
            ('meta.created lt "2000-01-01T00:00:00Z"', []),
            ('meta.lastModified ge "2000-01-01T00:00:00Z" and userName eq "li.si"',
             ["li.si"])):
        found = scim.query(UserE, query_parameters=SearchRequest(filter=text))
        assert sorted(u.user_name for u in found.resources or []) == expected, text
    # values are bound, never SQL: quotes and LIKE wildcards are just characters
    for text in ('userName eq "x\' OR \'1\'=\'1"', 'userName co "%"', 'userName sw "_"'):
        assert scim.query(UserE, query_parameters=SearchRequest(filter=text)
                          ).total_results == 0, text
    # attributes: only those (and id, schemas)
    slim = scim.query(UserE, query_parameters=SearchRequest(
        filter='userName eq "LI.SI"', attributes=["userName"]))
    [li] = slim.resources
    assert li.user_name == "li.si" and li.display_name is None and li.id


def test_patch_replace_and_delete(world: World, scim: SyncSCIMClient) -> None:
    created = new_user(scim, "sun.qi")
    patch = PatchOp[UserE](operations=[
        PatchOperation[UserE](op="replace", path="displayName", value="孙七"),
        PatchOperation[UserE](op="replace", path='emails[type eq "work"].value',
                              value="qi.sun@example.gov.cn"),
        PatchOperation[UserE](op="replace", path=f"{ENTERPRISE}:department",
                              value="czt"),
        PatchOperation[UserE](op="add", path="phoneNumbers",
                              value=[{"value": "0771-1234567", "type": "work"}]),
    ])
    patched = scim.modify(UserE, created.id, patch)
    assert patched.display_name == "孙七" and patched.emails[0].value == "qi.sun@example.gov.cn"
    assert patched[EnterpriseUser].department == "czt"
    assert patched.phone_numbers[0].value == "0771-1234567"
    changed = admin_changes(world, "scim_user_updated", user="sun.qi")[0]
    assert changed["extra"]["before"]["displayName"] == "测试用户"
    assert changed["extra"]["after"]["displayName"] == "孙七"
    # a password: the rule applies, and it is never returned nor recorded
    weak = PatchOp[UserE](operations=[
        PatchOperation[UserE](op="replace", path="password", value="password1")])
    with pytest.raises(SCIMException) as caught:
        scim.modify(UserE, created.id, weak)
    assert caught.value.status == 400 and caught.value.scim_type == "invalidValue"
    before = world.services.org.password_hash("sun.qi")
    strong = PatchOp[UserE](operations=[PatchOperation[UserE](
        op="replace", path="password", value="lantern orchard 7 quietly")])
    assert scim.modify(UserE, created.id, strong).password is None
    assert world.services.org.password_hash("sun.qi") != before
    assert "lantern" not in str(admin_changes(world, "scim_user_updated", user="sun.qi"))
    # PUT: a replacement; active false disables the account
    patched.active = False
    patched.phone_numbers = None
    replaced = scim.replace(patched)
    assert replaced.active is False and replaced.phone_numbers is None
    assert world.services.org.get_user("sun.qi").status == "disabled"
    disabled = admin_changes(world, "scim_user_updated", user="sun.qi")[-1]
    assert disabled["extra"]["after"]["active"] is False
    assert "sessions_revoked" in {e["change"] for e in disabled["extra"]["effects"]}
    # the name never changes
    renamed = scim.query(UserE, created.id)
    renamed.user_name = "sun.ba"
    with pytest.raises(SCIMException) as caught:
        scim.replace(renamed)
    assert caught.value.status == 400 and caught.value.scim_type == "mutability"
    # DELETE: disabled and kept; SCIM answers 404 for it from then on
    scim.delete(UserE, created.id)
    gone = scim.query(UserE, created.id, raise_scim_errors=False,
                      expected_status_codes=None)
    assert isinstance(gone, Error) and gone.status == 404
    kept = world.services.org.get_user("sun.qi")
    assert kept.status == "disabled" and kept.department == "czt"
    [deleted] = admin_changes(world, "scim_user_deleted", user="sun.qi")
    assert deleted["actor_client"] == "scim-platform"
    # the same userName cannot come back as another account
    with pytest.raises(SCIMException) as caught:
        new_user(scim, "sun.qi")
    assert caught.value.status == 409 and caught.value.scim_type == "uniqueness"


def test_groups_are_roles(world: World, scim: SyncSCIMClient) -> None:
    steward = scim.query(Group, "data_steward")
    assert steward.display_name == "数据管理员"
    holders = {m.display for m in steward.members}
    holder_ids = [m.value for m in steward.members]
    assert {"张三", "赵敏"} <= holders
    li = scim.query(UserE, query_parameters=SearchRequest(filter='userName eq "li.si"'))
    li_id = li.resources[0].id
    add = PatchOp[Group](operations=[PatchOperation[Group](
        op="add", path="members", value=[{"value": li_id}])])
    after = scim.modify(Group, "data_steward", add)
    assert li_id in {m.value for m in after.members}
    assert world.services.org.get_user("li.si").roles == {"staff", "data_steward"}
    assert "data_steward" in {g.value for g in scim.query(UserE, li_id).groups}
    remove = PatchOp[Group](operations=[PatchOperation[Group](
        op="remove", path=f'members[value eq "{li_id}"]')])
    scim.modify(Group, "data_steward", remove)
    assert world.services.org.get_user("li.si").roles == {"staff"}
    records_ = admin_changes(world, "scim_group_updated", group="data_steward")
    assert [r["extra"]["after"]["members"] for r in records_] == [
        sorted([*holder_ids, li_id]), sorted(holder_ids)]
    # PUT replaces the members the client sees
    group = scim.query(Group, "dept_head")
    group.members = [*group.members, GroupMember(value=li_id)]
    assert li_id in {m.value for m in scim.replace(group).members}
    # roles are a fixed set
    with pytest.raises(SCIMException) as caught:
        scim.create(Group(display_name="新角色"))
    assert caught.value.status == 403
    held = scim.query(Group, query_parameters=SearchRequest(
        filter=f'members[value eq "{li_id}"]', sort_by="id"))
    assert [g.id for g in held.resources] == ["dept_head", "staff"]
    found = scim.query(Group, query_parameters=SearchRequest(filter='displayName co "管理员"'))
    assert {g.id for g in found.resources} >= {"sysadmin", "secadmin", "auditor",
                                               "data_steward"}
