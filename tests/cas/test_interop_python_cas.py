"""Interoperability with python-cas (``cas``), the CAS client library of Django and
Flask CAS integrations, against a real gateway on 127.0.0.1: the browser part over
HTTP (login form, back to /cas/login, the ticket in the redirect), then the
library's CASClient v3, v2 and v1 validate tickets, and refuse a replay, a ticket
for another service and an expired one."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import pytest

cas = pytest.importorskip("cas", reason="python-cas not installed")
requests = pytest.importorskip("requests")

from gateway.services import Services  # noqa: E402
from gateway.settings import Settings  # noqa: E402
from tests.cas.conftest import EXACT, SERVICE, register_cas  # noqa: E402
from tests.oauth2.helpers import DEMO_PASSWORD, audit_events  # noqa: E402
from tests.oauth2.live import live_gateway  # noqa: E402

pytestmark = [pytest.mark.slow]


@pytest.fixture
def gateway(settings: Settings) -> Iterator[tuple[str, Services]]:
    # a 2 s ticket lifetime, so the expiry test waits little on a real clock
    with live_gateway(dataclasses.replace(settings, cas_ticket_lifetime=2)) as g:
        register_cas(g[1])
        yield g


def _client(issuer: str, version: int, service: str = SERVICE) -> cas.CASClientBase:
    return cas.CASClient(version=version, service_url=service, server_url=issuer + "/cas/")


def _ticket(browser: requests.Session, issuer: str, login_url: str) -> str:
    """The browser part: /cas/login (signing in when asked), the ticket it redirects with."""
    r = browser.get(login_url, allow_redirects=False)
    if r.headers["location"].startswith("/portal/login"):
        page = browser.get(issuer + r.headers["location"])
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        next_url = re.search(r'name="next" value="([^"]+)"', page.text).group(1).replace(
            "&amp;", "&")
        r = browser.post(f"{issuer}/portal/login", data={
            "csrf_token": csrf, "username": "zhang.san", "password": DEMO_PASSWORD,
            "next": next_url}, allow_redirects=False)
        assert r.status_code == 303
        r = browser.get(issuer + r.headers["location"], allow_redirects=False)
    assert r.status_code == 303, r.text
    return str(parse_qs(urlparse(r.headers["location"]).query)["ticket"][0])


def test_python_cas_v3_v2_v1(gateway: tuple[str, Services]) -> None:
    issuer, services = gateway
    browser = requests.Session()
    v3 = _client(issuer, 3)
    user, attributes, pgtiou = v3.verify_ticket(_ticket(browser, issuer, v3.get_login_url()))
    assert user == "zhang.san" and pgtiou is None
    assert attributes["name"] == "张三" and attributes["department"] == "jgswj"
    assert attributes["region"] == "gx"
    assert attributes["roles"] == ["data_steward", "staff"]
    assert attributes["isFromNewLogin"] == "true"

    v2 = _client(issuer, 2, EXACT)  # single sign-on from here on: no form
    user, attributes, _ = v2.verify_ticket(_ticket(browser, issuer, v2.get_login_url()))
    assert user == "zhang.san" and attributes["department"] == "jgswj"

    v1 = _client(issuer, 1)
    user, _, _ = v1.verify_ticket(_ticket(browser, issuer, v1.get_login_url()))
    assert user == "zhang.san"

    kinds = [(e["event_type"], e["outcome"]) for e in audit_events(services)]
    assert ("login", "success") in kinds
    assert kinds.count(("cas_login", "success")) == 3
    assert kinds.count(("cas_validate", "success")) == 3


def test_python_cas_refusals(gateway: tuple[str, Services]) -> None:
    issuer, services = gateway
    browser = requests.Session()
    v3 = _client(issuer, 3)
    ticket = _ticket(browser, issuer, v3.get_login_url())
    assert v3.verify_ticket(ticket)[0] == "zhang.san"
    assert v3.verify_ticket(ticket) == (None, {}, None)  # replayed

    other = _client(issuer, 3, EXACT)
    ticket = _ticket(browser, issuer, v3.get_login_url())
    assert other.verify_ticket(ticket)[0] is None  # issued for SERVICE
    assert v3.verify_ticket(ticket)[0] is None  # and used up by that attempt

    ticket = _ticket(browser, issuer, v3.get_login_url())
    time.sleep(2.2)
    assert v3.verify_ticket(ticket)[0] is None  # expired
    assert _client(issuer, 1).verify_ticket(ticket)[0] is None

    # renew: python-cas sends renew=true to /cas/login; the session is not enough
    renewing = cas.CASClient(version=3, service_url=SERVICE, server_url=issuer + "/cas/",
                             renew=True)
    r = browser.get(renewing.get_login_url(), allow_redirects=False)
    assert r.headers["location"].startswith("/portal/login")

    # an unregistered service: the error page, never a redirect
    evil = _client(issuer, 3, "https://evil.example/app/")
    r = browser.get(evil.get_login_url(), allow_redirects=False)
    assert r.status_code == 400 and "location" not in r.headers

    # logout: the library's URL asks first (docs/sso.md); the confirmation, posted
    # from the page, goes back to a registered service only
    page = browser.get(v3.get_logout_url(SERVICE), allow_redirects=False)
    assert page.status_code == 200 and 'action="/cas/logout"' in page.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = browser.post(issuer + "/cas/logout", data={"csrf_token": csrf, "service": SERVICE},
                     allow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == SERVICE
    r = browser.get(v3.get_login_url(), allow_redirects=False)
    assert r.headers["location"].startswith("/portal/login")  # signed out
    failures = [e["reason"] for e in audit_events(services, "cas_validate")
                if e["outcome"] == "failure"]
    assert any("replayed" in f for f in failures) and any("expired" in f for f in failures)
    assert any(f.startswith("INVALID_SERVICE") for f in failures)
