"""A directory's limits as agencies' directories have them, against a real slapd
(tests.directory.ad_slapd): a size limit below the number of people (paged results,
RFC 2696), a page limit (Active Directory's MaxPageSize), and a server that answers
byte by byte, each read within the timeout (the relay of tests.directory.slow_relay)."""

from __future__ import annotations

import dataclasses
import time

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from audit.tables import records
from gateway.app import create_app
from gateway.directory import DirectoryClient, DirectoryUnavailable, sync
from gateway.services import Services, open_services
from gateway.settings import load_settings
from tests.directory.ad_slapd import LIMIT, SERVICE_PASSWORD, SYNC_LIMITED, SYNC_PAGED
from tests.directory.ad_slapd import slapd as slapd  # the module's directory, not conftest's
from tests.directory.conftest import config_of
from tests.directory.slapd import PEOPLE, USER_PASSWORD, Slapd
from tests.directory.slow_relay import slow_relay
from tests.directory.test_sync import directory_users
from tests.gateway.test_cli import here
from tests.oauth2.helpers import login
from tests.wiring import parts


def as_account(env: dict[str, str], dn: str, **more: str) -> dict[str, str]:
    return {**env, "GOVGATE_DIRECTORY_BIND_DN": dn,
            "GOVGATE_DIRECTORY_BIND_PASSWORD": SERVICE_PASSWORD, **more}


def test_a_size_limit_below_the_people_misses_no_one(denv: dict[str, str],
                                                     services: Services) -> None:
    """slapd's ``sizelimit 100`` counts the pages of a paged search together: the
    search of people ended after 100 with sizeLimitExceeded, taken for the last page.
    The 400 not read were gone from the directory, and disabled (on the base: exit 0,
    400 disabled)."""
    assert here(denv, "directory", "sync").returncode == 0  # the administrator: no limit
    assert len(directory_users(services)) == PEOPLE
    limited = here(as_account(denv, SYNC_LIMITED), "directory", "sync")
    assert limited.returncode == 1, limited.stdout
    assert f"its size limit ended the search (objectClass=inetOrgPerson) after {LIMIT} " \
        "entries" in limited.stderr
    assert "size.prtotal=unlimited" in limited.stderr
    found = directory_users(services)
    assert sum(u.status == "active" for u in found.values()) == PEOPLE - 2  # 2 locked
    # in Chinese too (the CLI's language by the locale)
    chinese = here({**as_account(denv, SYNC_LIMITED), "LC_ALL": "zh_CN.UTF-8"},
                   "directory", "sync", "--dry-run")
    assert chinese.returncode == 1 and "条目数上限" in chinese.stderr


def test_pages_of_the_directorys_size_go_through_the_whole_directory(
        denv: dict[str, str], services: Services) -> None:
    """Pages of at most 100 and no limit on the total (AD's MaxPageSize): a page size
    above it is refused with what to set; at it, every person is read."""
    too_big = here(as_account(denv, SYNC_PAGED), "directory", "sync")
    assert too_big.returncode == 1
    assert "it refuses pages of 500 entries (adminLimitExceeded); set " \
        "directory_page_size to its page limit or below" in too_big.stderr
    assert directory_users(services) == {}
    paged = here(as_account(denv, SYNC_PAGED, GOVGATE_DIRECTORY_PAGE_SIZE=str(LIMIT)),
                 "directory", "sync")
    assert paged.returncode == 0, paged.stderr
    assert len(directory_users(services)) == PEOPLE


def test_a_page_answered_byte_by_byte_is_cut_at_the_search_bound(
        slapd: Slapd, denv: dict[str, str], services: Services) -> None:
    """Each read within the timeout, the 500 people's page trickling at 2 KiB/s: the
    bound was checked between pages only, the sync waited the page out (38 s on the
    base, the maintenance round with it)."""
    with slow_relay(slapd.port, delay=0.03, chunk=64) as url:
        client = DirectoryClient(dataclasses.replace(
            config_of(denv, GOVGATE_DIRECTORY_URL=url), search_seconds=1.5))
        started = time.monotonic()
        with pytest.raises(DirectoryUnavailable) as raised:
            sync(services, client)
        took = time.monotonic() - started
    assert "took longer than 1.5 s" in str(raised.value)
    assert took < 4, took
    assert directory_users(services) == {}


def test_a_sign_in_answered_byte_by_byte_fails_closed_in_the_timeout(
        slapd: Slapd, denv: dict[str, str], services: Services) -> None:
    """The directory's answers to a sign-in one byte at a time, each within the receive
    timeout: the portal's sign-in waited for as long as the directory liked (some 55 s
    on the base, a request held, then signed in). Now: 503 within the timeout, audited
    as a login failure that counts against no one, as a directory that is down."""
    ten = "(&(objectClass=inetOrgPerson)(uid=user000*))"
    sync(services, DirectoryClient(config_of(denv, GOVGATE_DIRECTORY_USER_FILTER=ten)))
    with slow_relay(slapd.port, delay=0.4, chunk=1) as url:
        env = {**denv, "GOVGATE_DIRECTORY_URL": url, "GOVGATE_DIRECTORY_TIMEOUT_SECONDS": "1",
               "GOVGATE_LOGIN_DELAY_BASE_SECONDS": "0"}
        served = open_services(load_settings(env), environ=env)
        try:
            with TestClient(create_app(parts(served)),
                            base_url="http://127.0.0.1:8080") as portal:
                started = time.monotonic()
                r = login(portal, "user0003", USER_PASSWORD)
                took = time.monotonic() - started
        finally:
            served.close()
    assert r.status_code == 503 and "目录服务暂不可用" in r.text
    assert took < 4, took
    services.settle_audit()
    with services.engine.connect() as conn:
        [(outcome, reason)] = conn.execute(sa.select(records.c.outcome, records.c.reason).where(
            records.c.event_type == "login", records.c.actor_user == "user0003")).all()
    assert outcome == "failure" and "took longer than 1 s" in reason, reason
    assert services.org.get_user("user0003").failed_logins == 0
    assert DirectoryClient(config_of(denv)).verify("user0003", USER_PASSWORD)
