"""A person the directory moves to another department ends the delegations they are a
party of, in the sync's own transaction (``gateway.delegation_moves``), and the
running gateway records it as for every other path (``delegation_moved``)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from audit.tables import records
from gateway.delegation_tables import delegations
from gateway.delegations import Delegations
from gateway.directory import DirectoryClient, sync
from gateway.services import Services
from tests.directory.conftest import config_of, denv, services, slapd  # noqa: F401
from tests.directory.slapd import Slapd, ou_dn, person_dn
from tests.directory.test_sync import changed


def test_a_move_in_the_directory_ends_the_delegation(
        slapd: Slapd, denv: dict[str, str], services: Services) -> None:  # noqa: F811
    client = DirectoryClient(config_of(
        denv, GOVGATE_DIRECTORY_USER_FILTER="(&(objectClass=inetOrgPerson)(uid=user004*))"))
    sync(services, client)
    assert services.org.get_user("user0044").department == "jgswglj"
    now = services.clock()
    with services.engine.begin() as conn:  # user0040 lets user0044 act, approved
        number = conn.execute(delegations.insert().values(
            delegator="user0040", delegate="user0044", department_code="jgswglj",
            roles=["staff"], systems=[], starts_at=now, ends_at=now + timedelta(days=3),
            reason="出差", state="approved", requested_at=now, decided_by="head",
            decided_at=now)).inserted_primary_key[0]
    moved = f"uid=user0044,{ou_dn('财政厅')}"
    with changed(slapd, (moved, {"objectClass": ["inetOrgPerson"], "uid": "user0044",
                                 "cn": "测试用户0044", "sn": "用户0044",
                                 "mail": "user0044@gxzf.gov.cn"}),
                 deletes=(person_dn(44),)):
        assert "~ user user0044 (department)" in [str(c) for c in sync(services, client).changes]
        with services.engine.connect() as conn:
            row = conn.execute(sa.select(delegations).where(delegations.c.id == number)).one()
        assert (row.state, row.note) == ("ended", "user0044: jgswglj -> czt")
        settled = Delegations(services).settle_ends()  # as the running gateway's round
        assert [(d.id, d.revoked_by) for d in settled] == [(number, "user0044")]
        assert Delegations(services).settle_ends() == []  # recorded once
    services.settle_audit()  # journal mode (SQLite): the records into the tables
    with services.engine.connect() as conn:
        reasons = [r.reason for r in conn.execute(sa.select(records.c.reason).where(
            records.c.event_type == "admin_change"))]
    assert reasons.count("delegation_moved") == 1
