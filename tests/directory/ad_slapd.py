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

The administrator (``ADMIN_DN``, the rootdn) has no limits.

``ad_domain`` is another: the tests' people with Active Directory's own attributes
(tests/directory/ad.schema): security identifiers (``objectSid``, binary), primary
groups (``primaryGroupID``), ``userAccountControl``, ``accountExpires``; members in
other domains (``foreignSecurityPrincipal``) and outside the base DN; and a child
domain answered as a continuation reference (an ``objectClass: referral`` entry);
the configuration partition's crossRefs (the domain's NetBIOS name ``NETBIOS``), which
the root DSE's ``configurationNamingContext`` names. The people of ``DOMAIN_USERS`` (uid=user000*):

- user0000–user0004 have 数据处 (RID 1105) for primary group, user0005–user0009
  域用户 (513, "Domain Users"), nested in 全体; user0004's SID is another domain's;
  user0009 is also a direct member of 数据处;
- user0005 is disabled (``userAccountControl`` 514), user0006 expired in 2012,
  user0007 locked (tests.directory.slapd), user0003 expires in 2100, user0008 (0)
  and user0009 (the largest value) never."""

from __future__ import annotations

import base64
import os
import struct
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
AD_SCHEMA = Path(__file__).with_name("ad.schema")
DOMAIN = (21, 1004336348, 1177238915, 682003330)  # S-1-5-21-1004336348-...
OTHER_DOMAIN = (21, 1, 2, 3)
DOMAIN_USERS = "(&(objectClass=inetOrgPerson)(uid=user000*))"
FSP_OU = f"cn=ForeignSecurityPrincipals,{BASE}"
FOREIGN = (f"cn=S-1-5-11,{FSP_OU}", f"cn=S-1-5-21-1-2-3-1108,{FSP_OU}")
OUTSIDE = "cn=外部组,ou=组,dc=other,dc=cn"
CHILD_REF = "ldap://child.gov.cn/dc=child,dc=gov,dc=cn"
CHILD_PERSON = "uid=child.user,ou=人员,dc=child,dc=gov,dc=cn"  # beyond the reference
NEVER = 0x7FFF_FFFF_FFFF_FFFF
CONFIGURATION = f"cn=Configuration,{BASE}"
PARTITIONS = f"cn=Partitions,{CONFIGURATION}"
NETBIOS = "GOVCN"  # the domain's NetBIOS name, in its crossRef
# accountExpires: 2012-12-15, 2100-01-01 (100 ns since 1601)
EXPIRED, EXPIRES_2100 = 130_000_000_000_000_000, 157_468_184_000_000_000


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


def sid(domain: tuple[int, ...], rid: int) -> bytes:
    """A binary SID (MS-DTYP 2.4.2.2) of ``domain``'s sub-authorities and ``rid``, in
    the NT authority (5)."""
    parts = (*domain, rid)
    return (bytes([1, len(parts)]) + (5).to_bytes(6, "big")
            + b"".join(struct.pack("<I", p) for p in parts))


def _sid_line(domain: tuple[int, ...], rid: int) -> str:
    return f"objectSid:: {base64.b64encode(sid(domain, rid)).decode()}\n"


def _ad_group(cn: str, rid: int, members: list[str]) -> str:
    return _group(cn, members).replace("objectClass: groupOfNames\n",
                                       "objectClass: groupOfNames\nobjectClass: adPrincipal\n"
                                       + _sid_line(DOMAIN, rid))


def domain_ldif() -> str:
    tree = tree_ldif().replace("cn: 数据管理员\n", "cn: 数据管理员\n"
                               + "".join(f"member: {m}\n" for m in FOREIGN))
    expires = {3: EXPIRES_2100, 6: EXPIRED, 8: 0, 9: NEVER}
    for n in range(10):
        uid = f"uid: user{n:04d}\n"
        extra = [f"userPrincipalName: user{n:04d}@gov.cn", f"sAMAccountName: user{n:04d}",
                 f"primaryGroupID: {1105 if n < 5 else 513}",
                 f"userAccountControl: {514 if n == 5 else 512}"]
        if n in expires:
            extra.append(f"accountExpires: {expires[n]}")
        assert tree.count(uid) == 1
        # the classes together: slapadd -q takes the last run of objectClass lines
        tree = tree.replace(uid, "objectClass: adPrincipal\n" + uid + "\n".join(extra) + "\n"
                            + _sid_line(OTHER_DOMAIN if n == 4 else DOMAIN, 1100 + n))
    blocks = [tree,
              _ad_group("数据处", 1105, [person_dn(9)]),
              _ad_group("域用户", 513, [person_dn(499)]),
              _ad_group("全体", 1200, [group_dn("域用户"), OUTSIDE, CHILD_PERSON]),
              f"dn: {FSP_OU}\nobjectClass: organizationalRole\ncn: ForeignSecurityPrincipals\n",
              *(f"dn: {dn}\nobjectClass: foreignSecurityPrincipal\n"
                f"cn: {dn.split(',')[0][3:]}\n" for dn in FOREIGN),
              f"dn: dc=child,{BASE}\nobjectClass: referral\nobjectClass: extensibleObject\n"
              f"dc: child\nref: {CHILD_REF}\n",
              # the configuration partition (a forest root domain's place for it): the
              # domain's crossRef, and another domain's of the forest
              f"dn: {CONFIGURATION}\nobjectClass: organizationalRole\ncn: Configuration\n",
              f"dn: {PARTITIONS}\nobjectClass: organizationalRole\ncn: Partitions\n",
              f"dn: cn=GOV,{PARTITIONS}\nobjectClass: crossRef\ncn: GOV\nnCName: {BASE}\n"
              f"nETBIOSName: {NETBIOS}\n",
              f"dn: cn=CHILD,{PARTITIONS}\nobjectClass: crossRef\ncn: CHILD\n"
              f"nCName: dc=child,{BASE}\nnETBIOSName: CHILD\n"]
    return "\n".join(blocks)


@pytest.fixture(scope="module")
def ad_domain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    """The module's directory (import it as ``slapd``: it replaces
    tests.directory.conftest's)."""
    if not os.path.exists(SLAPD):
        pytest.skip("slapd is not installed (apt-get install slapd ldap-utils)")
    root = Path(tmp_path_factory.mktemp("ad-domain"))
    root_dse = root / "root-dse.ldif"
    root_dse.write_text(f"dn:\nconfigurationNamingContext: {CONFIGURATION}\n",
                        encoding="utf-8")
    server = Slapd(root, trustme.CA(), extra_conf=(f"include {AD_SCHEMA}",
                                                   f"rootDSE {root_dse}"))
    server.prepare(domain_ldif())
    server.start()
    yield server
    server.stop()


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
