"""Sign-in under attack, through the portal: the delay per source address, the lock
per account, and the same answers for names that have no account."""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.clock import FrozenClock
from gateway.idp.oauth2.provider import SESSION_COOKIE
from gateway.services import Services
from gateway.settings import Settings
from tests.oauth2.helpers import (
    DEMO_PASSWORD,
    audit_events,
    close_services,
    frozen_now,
    login,
    make_services,
)
from tests.wiring import parts

WRONG = "wrong-password-123"


@pytest.fixture
def gw(settings: Settings) -> Iterator[tuple[Services, FrozenClock]]:
    clock = frozen_now()
    services = make_services(settings, clock=clock)
    yield services, clock
    close_services(services)


def client_from(services: Services, address: str) -> TestClient:
    return TestClient(create_app(parts(services)), base_url="http://127.0.0.1:8080",
                      client=(address, 40000))


def error_of(html: str) -> str:
    m = re.search(r'<p class="error" role="alert" id="error">(.*?)</p>', html)
    return m.group(1) if m else ""


def pace(services: Services, clock: FrozenClock, response: object) -> None:
    """Wait out the delay the address was told (an attacker who paces its guesses)."""
    clock.advance(float(getattr(response, "headers", {}).get("retry-after") or 0))
    clock.advance(parts(services).throttle.delay_max)


def test_a_stranger_from_one_address_is_slowed_and_cannot_lock_with_a_burst(
        gw: tuple[Services, FrozenClock]) -> None:
    services, clock = gw
    stranger = client_from(services, "203.0.113.9")
    answers = [login(stranger, username="sysadmin", password=WRONG) for _ in range(5)]
    # the first mistake costs nothing (a typo retyped at once), the second 1 s, ...
    assert [r.status_code for r in answers] == [200, 200, 429, 429, 429]
    assert answers[2].headers["retry-after"] == "1"
    assert error_of(answers[2].text) == "登录尝试过于频繁，请在 1 秒后重试。"
    admin = services.org.get_user("sysadmin")
    assert admin.failed_logins == 2 and admin.locked_until is None
    # the official, from their own address, is not affected
    official = client_from(services, "198.51.100.7")
    r = login(official, username="sysadmin", password="Admin-Passw0rd-2026!")
    assert r.status_code == 303 and r.headers["location"].startswith("/portal/login/change")
    reasons = [e["reason"] for e in audit_events(services, "login") if e["outcome"] == "failure"]
    assert sum("within its delay" in (x or "") for x in reasons) == 3

    # the delay doubles per failure from that address, whichever account it tries
    clock.advance(1)
    waits = []
    for name in ("zhang.san", "li.si", "wang.wu", "zhao.liu"):
        r = login(stranger, username=name, password=WRONG)
        assert r.status_code == 200, name
        refused = login(stranger, username=name, password=WRONG)
        assert refused.status_code == 429
        waits.append(int(refused.headers["retry-after"]))
        clock.advance(waits[-1])
    assert waits == [2, 4, 8, 16]
    assert services.org.get_user("zhang.san").locked_until is None


def test_a_parallel_burst_is_checked_one_at_a_time_and_cannot_lock(
        gw: tuple[Services, FrozenClock]) -> None:
    """Five guesses sent at once all arrive before the first is answered; each waits
    for the one before, and then meets the delay it earned."""
    import threading

    services, _clock = gw
    with client_from(services, "203.0.113.9") as stranger:
        page = stranger.get("/portal/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        form = {"csrf_token": token.group(1), "username": "sysadmin", "password": WRONG,
                "next": "/portal"}
        statuses: list[int] = []
        start = threading.Barrier(5)

        def guess() -> None:
            start.wait()
            statuses.append(stranger.post("/portal/login", data=form).status_code)

        threads = [threading.Thread(target=guess) for _ in range(5)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    assert sorted(statuses) == [200, 200, 429, 429, 429]
    admin = services.org.get_user("sysadmin")
    assert admin.failed_logins == 2 and admin.locked_until is None


def test_an_account_still_locks_after_five_failures_and_its_user_is_told(
        gw: tuple[Services, FrozenClock]) -> None:
    """Paced past the delay, five wrong passwords lock any account, an admin's too,
    for 15 minutes; the official reads that it is locked and for how long."""
    services, clock = gw
    stranger = client_from(services, "203.0.113.9")
    for i in range(5):
        if i:
            pace(services, clock, None)
        r = login(stranger, username="sysadmin", password=WRONG)
        assert r.status_code == 200
        assert error_of(r.text) == ("用户名或密码错误。" if i < 4 else
                                    "账号已锁定，请在 15 分钟后重试，或请系统管理员解锁。")
    official = client_from(services, "198.51.100.7")
    r = login(official, username="sysadmin", password="Admin-Passw0rd-2026!")
    assert r.status_code == 200 and SESSION_COOKIE not in r.cookies
    assert error_of(r.text) == "账号已锁定，请在 15 分钟后重试，或请系统管理员解锁。"
    official.get("/portal/login", params={"lang": "en"})  # remembered in a cookie
    r = login(official, username="sysadmin", password="Admin-Passw0rd-2026!")
    assert error_of(r.text) == (
        "The account is locked; try again in 15 minutes, or ask a system administrator to "
        "unlock it.")
    assert [e["actor_user"] for e in audit_events(services, "login_lockout")] == ["sysadmin"]
    clock.advance(15 * 60)
    r = login(official, username="sysadmin", password="Admin-Passw0rd-2026!")
    assert r.status_code == 303


def _sequence(services: Services, clock: FrozenClock, client: TestClient,
              username: str) -> list[tuple[int, str, str | None]]:
    """What a guesser sees: five paced failures, a quick sixth, the right-looking
    password while locked, then after the lock."""
    seen = []

    def attempt(password: str = WRONG) -> None:
        r = login(client, username=username, password=password)
        seen.append((r.status_code, error_of(r.text).replace(username, "NAME"),
                     r.headers.get("retry-after")))

    for i in range(5):
        if i:
            pace(services, clock, None)
        attempt()
    attempt()  # within the address's delay
    clock.advance(int(seen[-1][2] or 0))
    attempt(DEMO_PASSWORD)
    clock.advance(10 * 60)
    attempt()
    clock.advance(6 * 60)
    attempt()
    attempt()
    attempt()
    return seen


def test_unknown_names_lock_like_accounts_so_answers_never_tell_which_exist(
        gw: tuple[Services, FrozenClock]) -> None:
    services, clock = gw
    real = _sequence(services, clock, client_from(services, "203.0.113.1"), "li.si")
    ghost = _sequence(services, clock, client_from(services, "203.0.113.2"), "zhou.ghost")
    assert real == ghost
    assert [s for s, _, _ in real] == [200, 200, 200, 200, 200, 429, 200, 200, 200, 200, 429]
    assert [m for _, m, _ in real][3:8] == [
        "用户名或密码错误。", "账号已锁定，请在 15 分钟后重试，或请系统管理员解锁。",
        "登录尝试过于频繁，请在 8 秒后重试。",
        "账号已锁定，请在 15 分钟后重试，或请系统管理员解锁。",
        "账号已锁定，请在 5 分钟后重试，或请系统管理员解锁。"]
    assert real[8][1] == "用户名或密码错误。"
    # the lock of a name with no account is the name's in every spelling too
    clock.advance(15 * 60)
    other = client_from(services, "203.0.113.3")
    for _ in range(5):
        pace(services, clock, login(other, username="nobody.here", password=WRONG))
    for spelling in ("Nobody.Here", " NOBODY.HERE ", "ｎｏｂｏｄｙ．ｈｅｒｅ"):
        r = login(other, username=spelling, password=WRONG)
        assert error_of(r.text).startswith("账号已锁定"), spelling
    kinds = {(e["actor_user"], e["reason"]) for e in audit_events(services, "login_lockout")}
    assert ("zhou.ghost", "5 failures within 900 s (no such account)") in kinds


@pytest.mark.real_password_cost  # the hashes compared are the gateway's own
def test_unknown_and_existing_names_take_the_same_time(
        gw: tuple[Services, FrozenClock], monkeypatch: pytest.MonkeyPatch) -> None:
    """One argon2 verify either way (a dummy hash for an unknown name), and the same
    counting; so the wall time of a failure is about the same."""
    import gateway.passwords as passwords

    services, clock = gw
    verified: list[str | None] = []
    real_verify = passwords.verify_password

    def spy(stored: str | None, password: str) -> bool:
        verified.append(stored)
        return real_verify(stored, password)

    import gateway.web.portal.routes as routes
    monkeypatch.setattr(routes, "verify_password", spy)
    known, unknown = client_from(services, "203.0.113.1"), client_from(services, "203.0.113.2")
    times: dict[str, list[float]] = {"li.si": [], "zhou.ghost": []}
    for _ in range(4):  # below the lock, where each attempt verifies a hash
        for client, name in ((known, "li.si"), (unknown, "zhou.ghost")):
            page = client.get("/portal/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token
            start = time.perf_counter()
            client.post("/portal/login", data={"csrf_token": token.group(1), "username": name,
                                               "password": WRONG, "next": "/portal"})
            times[name].append(time.perf_counter() - start)
        pace(services, clock, None)
    assert len(verified) == 8 and verified.count(None) == 4
    a, b = statistics.median(times["li.si"]), statistics.median(times["zhou.ghost"])
    assert 0.5 < a / b < 2.0, (a, b)


def test_the_cli_unlocks_an_account_and_lifts_an_address_delay(
        gw: tuple[Services, FrozenClock], env: dict[str, str]) -> None:
    from tests.gateway.test_cli import run

    services, clock = gw
    office = client_from(services, "192.0.2.50")
    for i in range(5):
        if i:
            pace(services, clock, None)
        r = login(office, password=WRONG)
    assert error_of(r.text).startswith("账号已锁定")
    listed = run(env, "user", "list")
    row = next(line for line in listed.stdout.splitlines() if line.startswith("zhang.san\t"))
    assert not row.endswith("\t-")  # locked_until shown
    assert login(office).status_code == 429  # the office address waits too
    zh = run(env, "user", "unlock", "zhang.san", lang="zh_CN.UTF-8")
    assert zh.returncode == 0 and zh.stdout == "已解锁用户 zhang.san。\n"
    zh = run(env, "user", "clear-delay", "192.0.2.50", lang="zh_CN.UTF-8")
    assert zh.returncode == 0, zh.stderr
    assert zh.stdout == "已解除来源地址 192.0.2.50 的登录延迟。\n"
    r = login(office)
    assert r.status_code == 303 and r.headers["location"] == "/portal"
    changes = [e["reason"] for e in audit_events(services, "admin_change")]
    assert "user_unlocked" in changes and "login_delay_cleared" in changes
