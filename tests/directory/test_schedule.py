"""The scheduled sync, a round of the served gateway's maintenance loop: due once per
``directory_sync_interval`` across processes (the audit log says when it last ran),
the directory down audited as a failed round."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from audit.tables import records
from gateway.directory import schedule
from gateway.root import Gateway
from gateway.services import Services, open_services
from gateway.settings import load_settings
from tests.directory.slapd import Slapd
from tests.wiring import gateway_for


@pytest.fixture
def gateway(denv: dict[str, str], home: Path) -> Iterator[Gateway]:
    env = {**denv, "GOVGATE_DIRECTORY_SYNC_INTERVAL": "3600",
           "GOVGATE_DIRECTORY_USER_FILTER": "(&(objectClass=inetOrgPerson)(uid=user001*))"}
    services = open_services(load_settings(env), environ=env)
    yield gateway_for(services)
    services.close()


def _rounds(services: Services) -> list[tuple[str, str, dict[str, object]]]:
    with services.engine.connect() as conn:
        return [(r.reason, r.outcome, json.loads(r.extra)) for r in conn.execute(
            sa.select(records.c.reason, records.c.outcome, records.c.extra).where(
                records.c.reason.in_(schedule.ROUNDS)).order_by(records.c.id))]


def test_a_round_syncs_when_due_and_not_again_within_the_interval(gateway: Gateway) -> None:
    plan = schedule.run_round(gateway)
    assert plan is not None and plan.count("create") == 10
    assert gateway.services.org.get_user("user0015").roles == {"staff", "data_steward"}
    assert schedule.run_round(gateway) is None  # within the hour: not due
    (reason, outcome, extra), = _rounds(gateway.services)
    assert (reason, outcome, extra["created"]) == ("directory_synced", "success", 10)


def test_a_round_with_the_directory_down_is_audited_and_waits(gateway: Gateway,
                                                             slapd: Slapd) -> None:
    slapd.stop()
    try:
        assert schedule.run_round(gateway) is None
        assert schedule.run_round(gateway) is None  # not retried at once
    finally:
        slapd.start()
    (reason, outcome, extra), = _rounds(gateway.services)
    assert (reason, outcome) == ("directory_sync_failed", "failure")
    assert "is unavailable" in str(extra["error"])
    with gateway.services.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(records).where(
            records.c.reason == "state_applied")).scalar() == 0


def test_a_second_worker_sees_the_round_of_the_first_in_journal_mode(
        denv: dict[str, str], home: Path) -> None:
    """Two workers on one database, each with its own journal chain: the worker that
    ran a round has its record in the tables before it lets go of the round's lock, so
    the other's round right after finds it done (its own indexer may not load a live
    worker's chain)."""
    env = {**denv, "GOVGATE_DIRECTORY_SYNC_INTERVAL": "3600", "GOVGATE_AUDIT_PATH": "journal",
           "GOVGATE_DIRECTORY_USER_FILTER": "(&(objectClass=inetOrgPerson)(uid=user001*))"}
    first = open_services(load_settings(env), environ=env)
    second = open_services(load_settings(env), environ=env)
    try:
        assert schedule.run_round(gateway_for(first)) is not None
        assert schedule.run_round(gateway_for(second)) is None
        assert [r[0] for r in _rounds(second)] == ["directory_synced"]
    finally:
        first.close()
        second.close()
