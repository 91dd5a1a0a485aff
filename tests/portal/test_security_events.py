"""The owner's notice of changes to their second factors, through the portal over HTTP:
an administrator's reset, a factor changed from another session, shown on the home
page at the next sign-in until acknowledged, listed on the account page, both
languages (docs/sso.md, "Security events"; docs/seams.md, fourth session)."""

from __future__ import annotations

import dataclasses
import itertools
import re
import time
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.idp import totp
from gateway.services import Services
from tests.conftest import settings_of_its_own
from tests.gateway.test_cli import here
from tests.oauth2.helpers import DEMO_PASSWORD, close_services, csrf_of, login, make_services
from tests.wiring import parts

BASE_URL = "http://localhost:8080"
ADDRESSES = itertools.count(1)
NAMES = itertools.count(1)


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    with settings_of_its_own(tmp_path_factory) as settings:
        made = make_services(dataclasses.replace(settings, issuer=BASE_URL))
        yield made
        close_services(made)


@pytest.fixture(scope="module")
def app(services: Services) -> Iterator[Any]:
    made = create_app(parts(services))
    with TestClient(made, base_url=BASE_URL):
        yield made


@pytest.fixture(scope="module")
def env(services: Services) -> dict[str, str]:
    return {"GOVGATE_HOME": str(services.settings.home),
            "GOVGATE_DATABASE_URL": services.settings.database_url}


def browser(app: Any, lang: str | None = None) -> TestClient:
    n = next(ADDRESSES)
    client = TestClient(app, base_url=BASE_URL, client=(f"198.20.{n // 250}.{n % 250 + 1}",
                                                        5000))
    if lang:
        client.cookies.set("gg_lang", lang)
    return client


def person(services: Services, name: str | None = None) -> tuple[str, str]:
    username = name or f"owner.{next(NAMES)}"
    secret = pyotp.random_base32()
    services.org.add_user(username, username, "jgswj", ["staff"], DEMO_PASSWORD,
                          must_change=False)
    totp.store(services, services.org.get_user(username), secret)
    return username, secret


def signed_in(app: Any, username: str, secret: str | None, lang: str | None = None
              ) -> TestClient:
    """A browser through the password and (if any) the TOTP step, on the home page."""
    client = browser(app, lang)
    r = login(client, username)
    if secret is not None:
        assert r.headers["location"].startswith("/portal/login/totp"), r.headers
        csrf = csrf_of(client.get(r.headers["location"]).text)
        # each sign-in of a person its own step (a code is accepted once): this step,
        # then the next (both within the window, even across a step's end)
        offset = USED.setdefault(username, itertools.count()).__next__()
        assert offset < 2, "at most two sign-ins with a code per person"
        code = pyotp.TOTP(secret).at(time.time() + 30 * offset)
        r = client.post("/portal/login/totp", data={"csrf_token": csrf, "code": code,
                                                    "next": "/portal"},
                        follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/portal", r.text[:400]
    return client


USED: dict[str, Iterator[int]] = {}


def notice(client: TestClient) -> list[str]:
    page = client.get("/portal").text
    found = re.search(r'<ul id="security-notice-list">(.*?)</ul>', page, re.S)
    if not found:
        return []
    return [re.sub(r"<[^>]+>", "", li).strip()
            for li in re.findall(r"<li[^>]*>(.*?)</li>", found.group(1), re.S)]


def kinds_on_home(client: TestClient) -> list[str]:
    return re.findall(r'<li data-kind="([a-z_]+)"', client.get("/portal").text)


def kinds_on_account(client: TestClient) -> list[str]:
    return re.findall(r'<tr data-kind="([a-z_]+)"', client.get("/portal/account").text)


def acknowledge(client: TestClient) -> Any:
    page = client.get("/portal").text
    upto = re.search(r'name="upto" value="(\d+)"', page)
    assert upto
    return client.post("/portal/account/security-events/seen", data={
        "csrf_token": csrf_of(page), "upto": upto.group(1)}, follow_redirects=False)


def test_an_administrators_reset_is_shown_to_the_owner_at_the_next_sign_in(
        services: Services, app: Any, env: dict[str, str]) -> None:
    """Before, the owner was not told (audited only). Now the home page says what was
    done, by whom, until the owner acknowledges; the account page keeps listing it."""
    username, secret = person(services)
    assert kinds_on_home(signed_in(app, username, secret)) == []  # nothing yet
    assert here(env, "user", "reset-totp", username).returncode == 0
    client = signed_in(app, username, None)  # no TOTP any more: the password alone
    lines = notice(client)
    assert len(lines) == 1 and "重置了身份验证器" in lines[0] and "管理员 os:" in lines[0]
    assert kinds_on_home(signed_in(app, username, None, "en")) == ["totp_reset"]
    english = notice(signed_in(app, username, None, "en"))
    assert "authenticator reset" in english[0] and "administrator os:" in english[0]

    r = acknowledge(client)
    assert r.status_code == 303 and r.headers["location"] == "/portal"
    assert kinds_on_home(client) == []
    client.post("/portal/logout", data={"csrf_token": csrf_of(client.get("/portal").text)})
    assert login(client, username).headers["location"] == "/portal"  # the same browser
    assert kinds_on_home(client) == []  # acknowledged here, for good
    assert kinds_on_account(client) == ["totp_reset"]  # still listed
    # another browser of the person's is told until acknowledged there (per browser)
    assert kinds_on_home(signed_in(app, username, None)) == ["totp_reset"]


def test_a_change_from_another_session_is_shown_not_ones_own(services: Services,
                                                            app: Any) -> None:
    """Someone with the password and a code (or a session) makes new recovery codes on
    the account page: the owner's next sign-in shows it. The session that made it is
    not told of its own change, but lists it on the account page."""
    username, secret = person(services)
    intruder = signed_in(app, username, secret)
    page = intruder.get("/portal/account").text
    r = intruder.post("/portal/account/recovery-codes", data={
        "csrf_token": csrf_of(page), "password": DEMO_PASSWORD}, follow_redirects=False)
    assert r.status_code == 200 and "恢复码" in r.text
    assert kinds_on_home(intruder) == []  # its own change
    assert kinds_on_account(intruder) == ["codes_new"]

    owner = signed_in(app, username, secret)
    lines = notice(owner)
    assert len(lines) == 1 and "生成了新的恢复码" in lines[0] and "您本人" in lines[0]
    assert "198.20." in lines[0]  # from which address


def test_lockouts_and_key_removals_reach_the_owner_and_only_the_owner(
        services: Services, app: Any, env: dict[str, str]) -> None:
    """An operator's removal of keys and the account lock that wrong passwords caused;
    a user whose name continues this one's sees none of them."""
    username, secret = person(services, "li.ping")
    longer, _ = person(services, "li.ping2")
    assert here(env, "user", "reset-totp", longer).returncode == 0
    assert here(env, "passkey", "remove", "--user", username, "--all").returncode == 0
    for _ in range(services.settings.lockout_threshold):
        login(browser(app), username, password="Wrong-Password-0000")
    assert here(env, "user", "unlock", username).returncode == 0
    owner = signed_in(app, username, secret)
    assert set(kinds_on_home(owner)) == {"account_locked", "unlocked", "keys_removed"}
    assert "totp_reset" not in kinds_on_home(owner)


def test_a_forged_acknowledgement_is_refused(services: Services, app: Any,
                                             env: dict[str, str]) -> None:
    """The acknowledgement is a form of the portal: without its CSRF token nothing is
    marked; a nonsense ``upto`` marks up to now, never beyond."""
    username, _ = person(services)
    assert here(env, "user", "reset-totp", username).returncode == 0
    client = signed_in(app, username, None)
    r = client.post("/portal/account/security-events/seen", data={"upto": "1"},
                    follow_redirects=False)
    assert r.status_code in (400, 403) or "/portal/login" in r.headers.get("location", "")
    assert kinds_on_home(client) == ["totp_reset"]
    page = client.get("/portal").text
    r = client.post("/portal/account/security-events/seen", data={
        "csrf_token": csrf_of(page), "upto": "99999999999999999999"},
        follow_redirects=False)
    assert r.status_code == 303
    assert kinds_on_home(client) == []
    assert here(env, "user", "unlock", username).returncode == 0  # after it: shown
    assert kinds_on_home(client) == ["unlocked"]


def test_an_intruders_acknowledgement_does_not_hide_the_notice_from_the_owner(
        services: Services, app: Any) -> None:
    """Someone with the password and a code changes the factors in one session, signs in
    again in a second one (which is shown the first one's change) and presses "I know
    about these": the owner's own browser must still be shown it at the next sign-in.
    With the acknowledgement kept per account, it was hidden from the owner."""
    username, secret = person(services)
    owner = signed_in(app, username, secret)  # the owner's browser, signed in before
    intruder = signed_in(app, username, secret)
    page = intruder.get("/portal/account").text
    assert intruder.post("/portal/account/recovery-codes", data={
        "csrf_token": csrf_of(page), "password": DEMO_PASSWORD}).status_code == 200
    second = browser(app)  # the intruder again, another session (the password alone:
    services.org.reset_totp(username)  # the owner's TOTP gone since, as an attacker's
    r = login(second, username)         # removal would have it)
    assert r.headers["location"] == "/portal"
    assert "codes_new" in kinds_on_home(second)
    assert acknowledge(second).status_code == 303
    assert "codes_new" not in kinds_on_home(second)
    assert "codes_new" in kinds_on_home(owner)  # the owner's browser is still told


def test_an_acknowledgement_is_the_persons_own_and_cannot_be_edited(
        services: Services, app: Any, env: dict[str, str]) -> None:
    """The cookie names the person under a MAC: another person's acknowledgement, or
    one whose time was pushed forward by hand, counts as none."""
    first, _ = person(services)
    second, _ = person(services)
    for name in (first, second):
        assert here(env, "user", "reset-totp", name).returncode == 0
    mine = signed_in(app, first, None)
    assert acknowledge(mine).status_code == 303 and kinds_on_home(mine) == []
    value = mine.cookies.get("gg_security_seen")
    assert value and value.split(".")[0].isdigit()
    theirs = signed_in(app, second, None)
    theirs.cookies.set("gg_security_seen", value, path="/portal")
    assert kinds_on_home(theirs) == ["totp_reset"]  # not the first person's
    user_id, upto, tag = value.split(".")
    edited = browser(app)
    edited.cookies.set("gg_security_seen", f"{user_id}.{int(upto) + 10**9}.{tag}",
                       path="/portal")
    assert login(edited, first).headers["location"] == "/portal"
    assert here(env, "user", "unlock", first).returncode == 0
    assert kinds_on_home(edited) == ["unlocked", "totp_reset"]
