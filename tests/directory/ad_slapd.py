"""A real slapd shaped like an agency's Active Directory where OpenLDAP can be: the
tests' 500 people (tests.directory.slapd), and

- two service accounts under size limits: ``sync-limited`` under a global
  ``sizelimit 100`` (OpenLDAP counts a paged search's pages together: its
  ``size.prtotal`` is the hard limit), ``sync-paged`` with pages of at most 100 and
  no limit on the total (Active Directory's MaxPageSize);
- a group of 2 000 members (大组: the 500 people and 1 500 DNs of people who left),
  past AD's MaxValRange of 1 500 (slapd sends it whole: it has no ranges);
- nested groups: 数据管理员 holds 数据小组, which holds 数据分组 and 数据管理员 again
  (a cycle), 数据分组 holds 数据小组; and a chain 链0 → 链1 → ... → 链5.

The administrator (``ADMIN_DN``, the rootdn) has no limits."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.directory.slapd import BASE, PEOPLE, SLAPD, Slapd, person_dn, tree_ldif

GROUPS_OU = f"ou=组,{BASE}"
SERVICE_PASSWORD = "Sync-Service-Pw-7"
SYNC_LIMITED = f"cn=sync-limited,{BASE}"
SYNC_PAGED = f"cn=sync-paged,{BASE}"
LIMIT = 100
BIG_MEMBERS = 2000
CHAIN = 6  # 链0 ... 链5


def group_dn(cn: str) -> str:
    return f"cn={cn},{GROUPS_OU}"


def left_dn(n: int) -> str:
    return f"uid=left{n:04d},ou=离职,{BASE}"


def _group(cn: str, members: list[str]) -> str:
    return (f"dn: {group_dn(cn)}\nobjectClass: groupOfNames\ncn: {cn}\n"
            + "".join(f"member: {m}\n" for m in members))


def ad_ldif() -> str:
    tree = tree_ldif().replace("cn: 数据管理员\n",
                               f"cn: 数据管理员\nmember: {group_dn('数据小组')}\n")
    assert group_dn("数据小组") in tree
    blocks = [tree]
    for dn in (SYNC_LIMITED, SYNC_PAGED):
        cn = dn.split(",")[0][3:]
        blocks.append(f"dn: {dn}\nobjectClass: person\ncn: {cn}\nsn: {cn}\n"
                      f"userPassword: {SERVICE_PASSWORD}\n")
    blocks.append(_group("大组", [person_dn(n) for n in range(PEOPLE)]
                         + [left_dn(n) for n in range(BIG_MEMBERS - PEOPLE)]))
    blocks.append(_group("数据小组", [person_dn(30), group_dn("数据分组"),
                                    group_dn("数据管理员")]))
    blocks.append(_group("数据分组", [person_dn(31), group_dn("数据小组")]))
    for n in range(CHAIN):
        last = n == CHAIN - 1
        blocks.append(_group(f"链{n}", [person_dn(40 + n)]
                             + ([] if last else [group_dn(f"链{n + 1}")])))
    return "\n".join(blocks)


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    """The module's directory (it replaces tests.directory.conftest's)."""
    if not os.path.exists(SLAPD):
        pytest.skip("slapd is not installed (apt-get install slapd ldap-utils)")
    server = Slapd(Path(tmp_path_factory.mktemp("ad-slapd")), trustme.CA(),
                   extra_conf=(f"sizelimit {LIMIT}",),
                   database_conf=(f'limits dn.exact="{SYNC_PAGED}" size.soft={LIMIT} '
                                  f"size.hard={LIMIT} size.pr={LIMIT} "
                                  "size.prtotal=unlimited",))
    server.prepare(ad_ldif())
    server.start()
    yield server
    server.stop()
