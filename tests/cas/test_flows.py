"""CAS 3.0 over the in-process app: login, validation on every endpoint, and what is
refused (a ticket replayed, for another service, expired, an unregistered service,
renew and gateway, missing parameters), each audited."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from starlette.testclient import TestClient

from gateway.clock import FrozenClock
from gateway.services import Services
from tests.cas.conftest import EXACT, ORIGIN, SERVICE
from tests.oauth2.helpers import audit_events, csrf_of, login
from tests.wiring import parts

NS = "{http://www.yale.edu/tp/cas}"


def cas_login(client: TestClient, service: str = SERVICE, **params: str) -> Any:
    return client.get("/cas/login", params={"service": service, **params},
                      follow_redirects=False)


def ticket_of(response: Any, service: str = SERVICE) -> str:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert response.headers["cache-control"] == "no-store"
    assert location.startswith(service + ("&" if "?" in service else "?") + "ticket=ST-")
    return str(parse_qs(urlparse(location).query)["ticket"][0])


def sign_in_from(client: TestClient, response: Any) -> Any:
    """Follow /cas/login's way to the portal form, sign in, and come back."""
    assert response.status_code == 303
    assert response.headers["location"].startswith("/portal/login?")
    page = client.get(response.headers["location"])
    next_url = parse_qs(urlparse(response.headers["location"]).query)["next"][0]
    assert next_url.startswith("/cas/login?")
    done = client.post("/portal/login", data={
        "csrf_token": csrf_of(page.text), "username": "zhang.san",
        "password": "Demo-Passw0rd-2026", "next": next_url}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == next_url
    return client.get(next_url, follow_redirects=False)


def p3(client: TestClient, ticket: str, service: str = SERVICE, path: str = "p3/serviceValidate",
       **params: str) -> Any:
    import xml.etree.ElementTree as ET

    r = client.get(f"/cas/{path}", params={"ticket": ticket, "service": service, **params})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    assert r.headers["cache-control"] == "no-store"
    return ET.fromstring(r.content)  # noqa: S314


def _extra(record: dict[str, Any]) -> dict[str, Any]:
    import json

    extra = record["extra"]
    return dict(extra if isinstance(extra, dict) else json.loads(extra))


def failure_code(root: Any) -> str:
    failure = root.find(f"{NS}authenticationFailure")
    assert failure is not None, root
    return str(failure.get("code"))


def test_sign_in_then_single_sign_on(client: TestClient, idp: Services) -> None:
    ticket = ticket_of(sign_in_from(client, cas_login(client)))
    root = p3(client, ticket)
    success = root.find(f"{NS}authenticationSuccess")
    assert success.find(f"{NS}user").text == "zhang.san"
    attrs = success.find(f"{NS}attributes")
    assert attrs.find(f"{NS}name").text == "张三"
    assert attrs.find(f"{NS}department").text == "jgswj"
    assert attrs.find(f"{NS}region").text == "gx"
    assert [e.text for e in attrs.findall(f"{NS}roles")] == ["data_steward", "staff"]
    assert attrs.find(f"{NS}isFromNewLogin").text == "true"
    # single sign-on: the next service gets its ticket at once, not from a new login
    second = ticket_of(cas_login(client, EXACT), EXACT)
    assert second != ticket and len(second) >= 3 + 43
    root = p3(client, second, EXACT, path="serviceValidate")
    attrs = root.find(f"{NS}authenticationSuccess/{NS}attributes")
    assert attrs.find(f"{NS}isFromNewLogin").text == "false"
    v1 = client.get("/cas/validate", params={"ticket": ticket_of(cas_login(client)),
                                             "service": SERVICE})
    assert v1.text == "yes\nzhang.san\n"
    kinds = [(e["event_type"], e["outcome"]) for e in audit_events(idp)]
    assert kinds.count(("cas_login", "success")) == 3
    assert kinds.count(("cas_validate", "success")) == 3
    issued = next(iter(audit_events(idp, "cas_login")))
    assert issued["system"] == "offices" and issued["actor_user"] == "zhang.san"
    assert "ST-" not in str(audit_events(idp))  # tickets never reach the log


def test_ticket_is_stored_hashed(client: TestClient, idp: Services) -> None:
    import sqlalchemy as sa

    from gateway.idp.cas.tables import tickets

    login(client)
    ticket = ticket_of(cas_login(client))
    with idp.engine.connect() as conn:
        rows = conn.execute(sa.select(tickets)).all()
    assert len(rows) == 1 and ticket not in str(rows[0]) and rows[0].slo_ticket is None


def test_replay_refused(client: TestClient, idp: Services) -> None:
    login(client)
    ticket = ticket_of(cas_login(client))
    assert p3(client, ticket).find(f"{NS}authenticationSuccess") is not None
    assert failure_code(p3(client, ticket)) == "INVALID_TICKET"
    assert client.get("/cas/validate", params={"ticket": ticket, "service": SERVICE}
                      ).text == "no\n"
    failures = audit_events(idp, "cas_validate")[1:]
    assert all(e["outcome"] == "failure" and "replayed" in e["reason"] for e in failures)


def test_ticket_for_another_service_is_used_up(client: TestClient, idp: Services) -> None:
    login(client)
    ticket = ticket_of(cas_login(client))
    assert failure_code(p3(client, ticket, EXACT)) == "INVALID_SERVICE"
    # section 2.5.3: and it is no good for its own service either now
    assert failure_code(p3(client, ticket)) == "INVALID_TICKET"
    assert "issued for" in audit_events(idp, "cas_validate")[0]["reason"]


def test_expired_ticket(client: TestClient, idp: Services, clock: FrozenClock) -> None:
    login(client)
    ticket = ticket_of(cas_login(client))
    clock.advance(idp.settings.cas_ticket_lifetime + 1)
    assert failure_code(p3(client, ticket)) == "INVALID_TICKET"
    assert "expired" in audit_events(idp, "cas_validate")[0]["reason"]


def test_unknown_and_malformed_tickets(client: TestClient) -> None:
    login(client)
    assert failure_code(p3(client, "ST-" + "a" * 43)) == "INVALID_TICKET"
    assert failure_code(p3(client, "PT-12345")) == "INVALID_TICKET_SPEC"
    assert failure_code(p3(client, "ST-" + "a" * 400)) == "INVALID_TICKET"


@pytest.mark.parametrize("params", [{}, {"ticket": "ST-x"}, {"service": SERVICE},
                                    {"ticket": "", "service": SERVICE}])
@pytest.mark.parametrize("path", ["serviceValidate", "p3/serviceValidate", "proxyValidate"])
def test_missing_parameters(client: TestClient, idp: Services, path: str,
                            params: dict[str, str]) -> None:
    import xml.etree.ElementTree as ET

    r = client.get(f"/cas/{path}", params=params)
    assert failure_code(ET.fromstring(r.content)) == "INVALID_REQUEST"  # noqa: S314
    assert client.get("/cas/validate", params=params).text == "no\n"
    assert all(e["outcome"] == "failure" for e in audit_events(idp, "cas_validate"))


def test_proxy_not_supported(client: TestClient) -> None:
    r = client.get("/cas/proxy", params={"pgt": "PGT-1", "targetService": SERVICE})
    assert 'code="UNAUTHORIZED_SERVICE_PROXY"' in r.text


@pytest.mark.parametrize("service", [
    "https://evil.example/steal", ORIGIN + "/other",
    ORIGIN + "/cas/../admin", ORIGIN + "/exact?x=1",
    ORIGIN + "/cas", f"javascript:alert(1)//{ORIGIN}/cas/",
], ids=["other-site", "other-path", "dot-dot", "exact-with-query", "no-slash", "javascript"])
def test_unregistered_service_gets_the_error_page(client: TestClient, idp: Services,
                                                  service: str) -> None:
    for signed_in in (False, True):
        if signed_in:
            login(client)
        for extra in ({}, {"gateway": "true"}, {"renew": "true"}):
            r = cas_login(client, service, **extra)
            assert r.status_code == 400 and "location" not in r.headers
            assert "text/html" in r.headers["content-type"]
    refused = audit_events(idp, "cas_login")
    assert len(refused) == 6 and all(e["outcome"] == "failure" for e in refused)


def test_no_service_goes_to_the_portal(client: TestClient) -> None:
    r = client.get("/cas/login", follow_redirects=False)
    assert r.headers["location"].startswith("/portal/login")
    login(client)
    r = client.get("/cas/login", follow_redirects=False)
    assert r.headers["location"] == "/portal"


def test_gateway_never_shows_a_login_page(client: TestClient, idp: Services) -> None:
    r = cas_login(client, gateway="true")
    assert r.status_code == 303 and r.headers["location"] == SERVICE  # no ticket
    login(client)
    ticket_of(cas_login(client, gateway="true"))  # with a session: a ticket


def test_renew_forces_a_sign_in(client: TestClient, idp: Services) -> None:
    login(client)
    ticket = ticket_of(cas_login(client))
    # a ticket from single sign-on does not satisfy renew at validation
    assert failure_code(p3(client, ticket, renew="true")) == "INVALID_TICKET"
    r = cas_login(client, renew="true")
    assert r.headers["location"].startswith("/portal/login?")  # despite the session
    fresh = ticket_of(sign_in_from(client, r))
    root = p3(client, fresh, renew="true")
    assert root.find(f"{NS}authenticationSuccess") is not None
    # renew wins over gateway (section 2.1.1)
    assert cas_login(client, renew="true", gateway="true").headers[
        "location"].startswith("/portal/login?")


def test_ended_session_tickets_fail(client: TestClient, idp: Services) -> None:
    login(client)
    ticket = ticket_of(cas_login(client))
    page = client.get("/portal")
    client.post("/portal/logout", data={"csrf_token": csrf_of(page.text)})
    assert failure_code(p3(client, ticket)) == "INVALID_TICKET"
    assert "session ended" in audit_events(idp, "cas_validate")[0]["reason"]


def cas_logout(client: TestClient, **params: str) -> Any:
    """Sign out by CAS as a browser does: the confirmation page, then its form."""
    page = client.get("/cas/logout", params=params)
    return client.post("/cas/logout", data={"csrf_token": csrf_of(page.text), **params},
                       follow_redirects=False)


def test_logout_redirects_only_to_registered_services(client: TestClient,
                                                      idp: Services) -> None:
    login(client)
    r = cas_logout(client, service="https://evil.example/")
    assert r.status_code == 200 and "location" not in r.headers
    assert cas_login(client).headers["location"].startswith("/portal/login")  # ended
    login(client)
    r = cas_logout(client, service=EXACT)
    assert r.status_code == 303 and r.headers["location"] == EXACT
    r = client.get("/cas/logout", params={"url": SERVICE + "bye"}, follow_redirects=False)
    assert r.headers["location"] == SERVICE + "bye"  # CAS 1.0/2.0 clients say url=


def test_single_logout(settings: Any, clock: FrozenClock) -> None:
    """On portal sign-out, each service that validated a ticket of the session gets a
    SAML LogoutRequest whose SessionIndex is its ticket; audited either way."""
    from gateway.app import create_app
    from tests.cas.conftest import register_cas
    from tests.oauth2.helpers import close_services, make_services

    received: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(200 if request.url.path != "/exact" else 500)

    services = make_services(settings, clock=clock)
    parts(services, cas_slo_transport=httpx.MockTransport(answer))
    register_cas(services)
    try:
        with TestClient(create_app(parts(services)), base_url="http://127.0.0.1:8080") as client:
            login(client)
            first = ticket_of(cas_login(client))
            p3(client, first)
            second = ticket_of(cas_login(client, EXACT), EXACT)
            p3(client, second, EXACT)
            ticket_of(cas_login(client))  # never validated: no logout for it
            page = client.get("/portal")
            client.post("/portal/logout", data={"csrf_token": csrf_of(page.text)})
            cas = parts(services).cas
            client.portal.call(cas.slo.drain)
        bodies = {str(r.url): parse_qs(r.content.decode())["logoutRequest"][0]
                  for r in received}
        assert set(bodies) == {SERVICE, EXACT}
        from cas import SingleLogoutMixin

        assert SingleLogoutMixin.verify_logout_request(bodies[SERVICE], first)
        assert SingleLogoutMixin.verify_logout_request(bodies[EXACT], second)
        slo = {_extra(e)["service"]: e["outcome"]
               for e in audit_events(services, "cas_logout_slo")}
        assert slo == {SERVICE: "success", EXACT: "failure"}
    finally:
        close_services(services)


def test_launcher_opens_a_cas_system_in_one_click(client: TestClient) -> None:
    import html
    import re

    login(client)
    page = client.get("/portal")
    links = dict(re.findall(r'<a href="([^"]+)" data-system="([a-z-]+)"', page.text))
    by_system = {code: html.unescape(href) for href, code in links.items()}
    assert by_system["vehicles"] == "/s/vehicles/"  # not CAS: through the proxy
    href = by_system["offices"]
    first = ORIGIN + "/cas/"  # the first pattern, its * dropped
    assert href == "/cas/login?service=" + first.replace(":", "%3A").replace("/", "%2F")
    ticket_of(client.get(href, follow_redirects=False), first)  # no second sign-in


def test_purge_keeps_tickets_as_long_as_a_session(client: TestClient, idp: Services,
                                                  clock: FrozenClock) -> None:
    login(client)
    ticket_of(cas_login(client))
    store = parts(idp).cas.store
    keep = idp.settings.session_absolute_timeout + 3600  # what the maintenance round passes
    clock.advance(keep)
    assert store.purge(keep) == 0  # a session that long may still end: single logout
    clock.advance(idp.settings.cas_ticket_lifetime + 1)
    assert store.purge(keep) == 1
