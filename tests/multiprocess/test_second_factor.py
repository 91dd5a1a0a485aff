"""Two ``govgate serve`` processes on one PostgreSQL database as one gateway for the
second factor: a TOTP code accepted by one is refused by the other (RFC 6238 5.2), wrong
codes sent to either count in one row, and the codes' lock reached through one holds in
the other (docs/webauthn.md, "Wrong codes in a row")."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pyotp
import pytest
import sqlalchemy as sa

from bench.gateway_world import PASSWORD, GatewayProcess
from gateway.idp import totp
from gateway.services import Services
from gateway.tables import user_factor_failures
from tests.multiprocess.conftest import ONLY_POSTGRES, shared_world

pytestmark = ONLY_POSTGRES

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[Services, GatewayProcess, GatewayProcess]]:
    with shared_world(tmp_path_factory.mktemp("mfa"), ports=2) as (services, gateways, _):
        one, two = gateways
        yield services, one, two


OPEN: list[httpx.Client] = []


@pytest.fixture(autouse=True)
def closed() -> Iterator[None]:
    yield
    while OPEN:
        OPEN.pop().close()


def at_code_step(gateway: GatewayProcess, username: str) -> tuple[httpx.Client, str]:
    """A browser signed in with the password at ``gateway``, at the TOTP step."""
    browser = httpx.Client(base_url=gateway.url, timeout=10, headers={"Origin": gateway.url})
    OPEN.append(browser)
    page = browser.get("/portal/login")
    found = _CSRF.search(page.text)
    assert found is not None
    r = browser.post("/portal/login", data={"csrf_token": found.group(1),
                                            "username": username, "password": PASSWORD,
                                            "next": "/portal"})
    assert r.status_code == 303 and r.headers["location"].startswith("/portal/login/totp"), \
        r.text[:300]
    found = _CSRF.search(browser.get(r.headers["location"]).text)
    assert found is not None
    return browser, found.group(1)


def send(browser: httpx.Client, csrf: str, code: str) -> httpx.Response:
    return browser.post("/portal/login/totp", data={"csrf_token": csrf, "code": code,
                                                     "next": "/portal"})


def failures(services: Services, user_id: int) -> int:
    with services.engine.connect() as conn:
        return int(conn.execute(sa.select(user_factor_failures.c.failures).where(
            user_factor_failures.c.user_id == user_id)).scalar() or 0)


def test_spent_codes_the_count_and_the_lock_are_one_gateways(
        world: tuple[Services, GatewayProcess, GatewayProcess]) -> None:
    services, one, two = world
    secret = pyotp.random_base32()
    user = services.org.get_user("user000")
    totp.store(services, user, secret)
    now = datetime.now(UTC)
    good = {pyotp.TOTP(secret).at(now + timedelta(seconds=30 * d)) for d in range(-2, 4)}
    wrong = next(c for c in ("000000", "111111", "222222", "333333") if c not in good)

    first, csrf = at_code_step(one, "user000")
    code = pyotp.TOTP(secret).at(time.time())
    r = send(first, csrf, code)
    assert r.status_code == 303 and r.headers["location"] == "/portal", r.text[:300]
    seen, csrf = at_code_step(two, "user000")  # the same code, replayed at the other
    r = send(seen, csrf, code)
    assert r.status_code == 200 and "错误或已使用" in r.text
    assert failures(services, user.id) == 1  # a replayed code is a wrong one

    for gateway in (one, two):
        browser, csrf = at_code_step(gateway, "user000")
        assert send(browser, csrf, wrong).status_code == 200
    assert failures(services, user.id) == 3

    # as if the rest had been guessed already: the limit's one through the other
    with services.engine.begin() as conn:
        conn.execute(user_factor_failures.update().where(
            user_factor_failures.c.user_id == user.id).values(
            failures=services.settings.mfa_failure_limit - 1))
    browser, csrf = at_code_step(two, "user000")
    r = send(browser, csrf, wrong)
    assert r.status_code == 403 and "连续输错动态口令或恢复码的次数过多" in r.text
    browser, csrf = at_code_step(one, "user000")
    r = send(browser, csrf, pyotp.TOTP(secret).at(time.time() + 30))
    assert r.status_code == 403 and "连续输错动态口令或恢复码的次数过多" in r.text
