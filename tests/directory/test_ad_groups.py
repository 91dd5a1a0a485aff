"""Groups as Active Directory has them: more members than one answer holds (ranged
retrieval, MS-ADTS 3.1.1.3.1.3.3) and groups nested in groups (what AD's
LDAP_MATCHING_RULE_IN_CHAIN gives). OpenLDAP sends every value at once, so the range
loop is proven on ldap3's mock directory taught AD's MaxValRange (``AdRanges``), the
full read of a 2 000-member group and the nesting on the real slapd of
tests.directory.ad_slapd."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import ldap3
import pytest

from gateway.directory import (
    DirectoryClient,
    DirectoryConfig,
    DirectoryUnavailable,
    SyncConflict,
    sync,
)
from gateway.directory.client import CONNECTION
from gateway.services import Services
from tests.directory.ad_slapd import BIG_MEMBERS, group_dn, left_dn
from tests.directory.ad_slapd import slapd as slapd  # the module's directory, not conftest's
from tests.directory.conftest import config_of
from tests.directory.slapd import PEOPLE, Slapd, person_dn
from tests.directory.test_sync import changed

AD_BASE = "DC=ad,DC=gov,DC=cn"
GROUP = f"CN=数据管理员,OU=Groups,{AD_BASE}"
MAX_VAL_RANGE = 1500  # Active Directory's default
STEWARDS = "(&(objectClass=inetOrgPerson)(|(uid=user001*)(uid=user003*)))"


def ad_person(n: int) -> str:
    return f"CN=Person {n:05d},OU=Staff,{AD_BASE}"


class AdRanges:
    """ldap3's mock directory answering as Active Directory does: at most
    ``max_values`` values of an attribute per entry, named ``member;range=0-1499``
    (the last range ``...-*``); ``member;range=1500-*`` asks for the next. ``refuse``
    answers the read of the range starting there with ``busy``; ``skip`` starts the
    answer to it that many values later."""

    def __init__(self, conn: ldap3.Connection, max_values: int = MAX_VAL_RANGE) -> None:
        self.max_values, self.refuse, self.skip, self.reads = max_values, -1, 0, 0
        self._search: Callable[[dict[str, Any]], Any] = conn.strategy._execute_search
        conn.strategy._execute_search = self.execute

    def execute(self, request: dict[str, Any]) -> Any:
        asked: dict[str, int] = {}
        plain = []
        for attribute in request["attributes"]:
            name, _, wanted = str(attribute).partition(";range=")
            if wanted:
                asked[name.lower()] = int(wanted.split("-")[0])
            plain.append(name)
        if asked:
            self.reads += 1
        if self.refuse in asked.values():
            return [], {"resultCode": 51, "matchedDN": "", "diagnosticMessage": "busy",
                        "referral": None}
        request["attributes"] = plain
        responses, result = self._search(request)
        for response in responses:
            for attribute in response["attributes"]:
                values = list(attribute["vals"])
                low = asked.get(attribute["type"].lower(), 0)
                if len(values) <= self.max_values and not low:
                    continue
                low += self.skip if low else 0
                part = values[low:low + self.max_values]
                end = "*" if low + len(part) >= len(values) else str(low + len(part) - 1)
                attribute["type"] = f"{attribute['type']};range={low}-{end}"
                attribute["vals"] = part
        return responses, result


def ad_directory(members: int, max_values: int = MAX_VAL_RANGE
                 ) -> tuple[DirectoryClient, ldap3.Connection, AdRanges]:
    """A mock Active Directory whose 数据管理员 has ``members`` people."""
    server = ldap3.Server("ad.gov.cn", get_info=ldap3.NONE)
    conn = ldap3.Connection(server, user=f"CN=svc,{AD_BASE}", password="x",
                            client_strategy=ldap3.MOCK_SYNC, **CONNECTION)
    conn.strategy.add_entry(f"CN=svc,{AD_BASE}", {"objectClass": "user", "userPassword": "x"})
    for n in range(members):
        conn.strategy.add_entry(ad_person(n), {"objectClass": ["user"], "cn": f"Person {n}"})
    conn.strategy.add_entry(GROUP, {"objectClass": ["group"], "cn": "数据管理员",
                                    "member": [ad_person(n) for n in range(members)]})
    conn.bind()
    client = DirectoryClient(DirectoryConfig(
        url="ldap://ad.gov.cn", base_dn=AD_BASE, region="local",
        group_roles=(("数据管理员", "data_steward"),), page_size=1000))
    return client, conn, AdRanges(conn, max_values)


def test_a_group_past_max_val_range_is_read_range_by_range() -> None:
    client, conn, ranges = ad_directory(4000)
    read = client.groups(conn)
    assert read.members == {"数据管理员": {GROUP: [ad_person(n) for n in range(4000)]}}
    assert ranges.reads == 2  # 0-1499 with the group, then 1500-2999, 3000-*
    # exactly MaxValRange values: one answer, no range
    small, conn, ranges = ad_directory(MAX_VAL_RANGE)
    assert len(small.groups(conn).members["数据管理员"][GROUP]) == MAX_VAL_RANGE
    assert ranges.reads == 0


def test_a_range_that_fails_is_the_directory_unavailable() -> None:
    """ldap3's own range reading (``auto_range``, on in the base) stopped at a range
    it could not read and kept the 200 members before it: the rest of the group
    lost its role at the next sync."""
    client, conn, ranges = ad_directory(400, max_values=100)
    ranges.refuse = 200
    with pytest.raises(DirectoryUnavailable, match="busy"):
        client.groups(conn)
    client, conn, ranges = ad_directory(400, max_values=100)
    ranges.skip = 7  # values 100-106 never sent
    with pytest.raises(DirectoryUnavailable,
                       match=r"the range member;range=107-206 does not follow the 100 values"):
        client.groups(conn)


def test_a_group_of_2000_members_on_slapd_is_read_whole(
        denv: dict[str, str], services: Services) -> None:
    client = DirectoryClient(config_of(denv, GOVGATE_DIRECTORY_GROUP_ROLES="大组=dept_head"))
    conn = client.service()
    try:
        members = client.groups(conn).members["大组"][group_dn("大组")]
    finally:
        conn.unbind()
    assert len(members) == BIG_MEMBERS
    assert members[-1] == left_dn(BIG_MEMBERS - PEOPLE - 1)
    sync(services, client)
    holders = [u for u in services.org.list_users() if "dept_head" in u.roles]
    assert len(holders) == PEOPLE


def test_members_of_nested_groups_hold_the_role_and_a_cycle_ends(
        denv: dict[str, str], services: Services) -> None:
    """数据管理员 holds 数据小组 (user0030), which holds 数据分组 (user0031) and
    数据管理员 again; 数据分组 holds 数据小组. On the base user0030 and user0031 were
    no data stewards."""
    some = config_of(denv, GOVGATE_DIRECTORY_USER_FILTER=STEWARDS)
    sync(services, DirectoryClient(some))
    stewards = {u.username for u in services.org.list_users() if "data_steward" in u.roles}
    assert stewards == {f"user{n:04d}" for n in (*range(10, 20), 30, 31)}
    # out of the nested group: the role goes at the next sync
    conn = ldap3.Connection(ldap3.Server(slapd_url(denv)), denv["GOVGATE_DIRECTORY_BIND_DN"],
                            denv["GOVGATE_DIRECTORY_BIND_PASSWORD"], auto_bind=True)
    try:
        assert conn.modify(group_dn("数据分组"),
                           {"member": [(ldap3.MODIFY_DELETE, [person_dn(31)])]})
        sync(services, DirectoryClient(some))
        assert "data_steward" not in services.org.get_user("user0031").roles
    finally:
        conn.modify(group_dn("数据分组"), {"member": [(ldap3.MODIFY_ADD, [person_dn(31)])]})
        conn.unbind()


def slapd_url(env: dict[str, str]) -> str:
    return env["GOVGATE_DIRECTORY_URL"]


def test_nesting_past_the_bound_stops_the_sync(slapd: Slapd, denv: dict[str, str],
                                               services: Services) -> None:
    """链0 → 链1 → ... → 链5: within ``max_nesting`` every link's person holds the
    role; a chain longer than that is a conflict, not a role given by where the
    reading stopped."""
    mapped = config_of(denv, GOVGATE_DIRECTORY_GROUP_ROLES="链0=dept_head",
                       GOVGATE_DIRECTORY_USER_FILTER="(&(objectClass=inetOrgPerson)(uid=user004*))")
    sync(services, DirectoryClient(dataclasses.replace(mapped, max_nesting=5)))
    heads = {u.username for u in services.org.list_users() if "dept_head" in u.roles}
    assert heads == {f"user{n:04d}" for n in range(40, 46)}
    with pytest.raises(SyncConflict) as raised:
        sync(services, DirectoryClient(dataclasses.replace(mapped, max_nesting=4)))
    assert [str(p) for p in raised.value.problems] == [
        f"{group_dn('链5')} is nested more than 4 groups below {group_dn('链0')}"]
    # a cycle through the chain ends too
    with changed(slapd, modifies=((group_dn("链5"), {"member": [group_dn("链0")]}),)):
        sync(services, DirectoryClient(dataclasses.replace(mapped, max_nesting=5)))
    assert {u.username for u in services.org.list_users() if "dept_head" in u.roles} == heads
