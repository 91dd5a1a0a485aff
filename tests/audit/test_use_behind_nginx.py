"""Real use (实绩) of a system behind nginx ``auth_request``: the gateway answers
``/auth/verify`` and never sees the system's answer. Such calls are shown as their own
figure, "let through, answer not seen" (放行，未见应答), beside "delivered" on the
overview, the department summary and the idle list (such a system is not idle, and the
page says so), through the API and the portal, in both languages; never added into
delivered."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from audit.use import DAY_MS, ConsumerDay, GrantRef, Window, grant_use
from gateway.app import create_app
from gateway.services import Services
from gateway.settings import Settings
from tests.gateway.test_real_use import delivered
from tests.oauth2.helpers import close_services, make_services
from tests.portal.test_audit_console import as_admin
from tests.portal.test_catalogue_pages import fast_hashes  # noqa: F401 - fixture
from tests.portal.test_languages import check
from tests.tokens import access_token
from tests.wiring import parts

LET_THROUGH = 3


def bearer(services: Services, department: str, roles: list[str], sub: str,
           scope: str | None = "openid stats:read") -> dict[str, str]:
    return {"Authorization": "Bearer " + access_token(
        services, sub=sub, department=department, roles=roles, scope=scope)}


@pytest.fixture
def world(settings: Settings, fast_hashes: None  # noqa: F811
          ) -> Iterator[tuple[Services, TestClient]]:
    services = make_services(settings)
    services.audit.append_many_sync([
        delivered("zhao.min", "czt", "vehicles", "JG-0001", ("plate_number",)),
        delivered("zhao.min", "czt", "vehicles", "JG-0001", ("plate_number",)),
    ])
    # from loopback, as nginx on the gateway's host: forward-auth answers no other peer
    with TestClient(create_app(parts(services)), base_url="http://127.0.0.1:8080",
                    client=("127.0.0.1", 50000)) as client:
        # the offices system sits behind nginx: only auth_request reaches the gateway
        for _ in range(LET_THROUGH):
            r = client.get("/auth/verify", headers={
                **bearer(services, "jgswj", ["staff"], "li.si", scope=None),
                "X-Original-URI": "/s/offices/api/rooms", "X-Original-Method": "GET"})
            assert r.status_code == 200, r.text
        yield services, client
    close_services(services)


def test_api_shows_let_through_beside_delivered_and_not_idle(
        world: tuple[Services, TestClient]) -> None:
    services, client = world
    auditor = bearer(services, "platform", ["auditor"], "auditor")
    r = client.get("/api/v1/stats/overview", headers=auditor)
    assert r.status_code == 200, r.text
    body = r.json()
    systems = {s["code"]: s for s in body["systems"]}
    assert systems["offices"]["total"] == {"calls": 0, "departments": 0, "users": 0,
                                           "items": 0, "unseen": LET_THROUGH, "acting": 0}
    assert sum(d["unseen"] for d in systems["offices"]["days"]) == LET_THROUGH
    assert systems["offices"]["last_used"] is None
    assert systems["offices"]["last_let_through"] is not None
    assert systems["vehicles"]["total"]["calls"] == 2
    assert systems["vehicles"]["total"]["unseen"] == 0
    # beside delivered, never added into it
    assert (body["total"]["total"]["calls"], body["total"]["total"]["unseen"]) == (
        2, LET_THROUGH)
    assert "offices" not in {i["code"] for i in body["idle"]}
    assert "assets" in {i["code"] for i in body["idle"]}
    # /api/rooms is the catalogue's JG-0002 (jgswj's): the resource too
    assert [(i["kind"], i["code"]) for i in body["not_idle_unseen"]] == [
        ("system", "offices"), ("resource", "JG-0002")]

    r = client.get("/api/v1/stats/departments/jgswj", headers=auditor)
    assert r.status_code == 200, r.text
    summary = r.json()
    assert (summary["provided"]["total"]["calls"], summary["provided"]["total"]["unseen"]) == (
        2, LET_THROUGH)
    assert [i["code"] for i in summary["not_idle_unseen"]] == ["offices", "JG-0002"]
    assert "offices" not in {i["code"] for i in summary["idle"]}
    # the consumer's side: jgswj's own calls let through, czt's delivered
    consumed = client.get("/api/v1/stats/departments/czt", headers=auditor).json()["consumed"]
    assert (consumed["total"]["calls"], consumed["total"]["unseen"]) == (2, 0)


def test_portal_shows_let_through_in_both_languages(world: tuple[Services, TestClient]
                                                    ) -> None:
    services, client = world
    as_admin(services, client, "auditor")
    for lang, label in (("zh", "放行，未见应答"), ("en", "Let through, answer not seen")):
        r = client.get("/portal/stats", params={"lang": lang})
        assert r.status_code == 200
        check(r.text, lang, f"stats overview {lang}")
        assert re.search(r'id="h-calls">2<', r.text), "delivered stays delivered"
        assert re.search(rf'id="h-unseen">{LET_THROUGH}<', r.text)
        assert label in r.text
        idle = re.search(r'<table id="idle".*?</table>', r.text, re.S)
        assert idle and 'data-code="assets"' in idle.group(0)
        assert 'data-code="offices"' not in idle.group(0)
        not_idle = re.search(r'<table id="not-idle-unseen".*?</table>', r.text, re.S)
        assert not_idle and 'data-code="offices"' in not_idle.group(0)
        page = client.get("/portal/stats/departments/jgswj", params={"lang": lang})
        assert page.status_code == 200
        check(page.text, lang, f"department summary {lang}")
        assert re.search(rf'id="h-unseen">{LET_THROUGH}<', page.text)
        row = re.search(r'<tr data-kind="system" data-code="offices">.*?</tr>', page.text)
        assert row and f'<td class="unseen">{LET_THROUGH}</td>' in row.group(0)
        assert re.search(r'<table id="not-idle-unseen".*?data-code="offices"', page.text,
                         re.S)


def test_a_grant_used_only_behind_a_front_proxy_is_not_suggested_for_revoking() -> None:
    """Pure (``audit.use.grant_use``): a grant whose consumer was only let through by
    forward-auth is "unseen", not "never", and no revoke is suggested; one with a few
    deliveries and some let through keeps "rare" and says how many were let through."""
    window = Window.ending_at(100 * DAY_MS, 90)
    long_ago = window.since_ms - 60 * DAY_MS
    day = window.label(window.first_day + 10)
    uses = [ConsumerDay(day, "R-1", "czt", None, 0, unseen=7),
            ConsumerDay(day, "R-2", "czt", None, 2, unseen=1)]
    found = {g.grant.id: g for g in grant_use(
        [GrantRef(1, "R-1", "czt", None, long_ago), GrantRef(2, "R-2", "czt", None, long_ago),
         GrantRef(3, "R-3", "czt", None, long_ago)], uses, window)}
    assert (found[1].calls, found[1].unseen, found[1].status, found[1].suggest_revoke,
            found[1].last_day) == (0, 7, "unseen", False, None)
    assert (found[2].calls, found[2].unseen, found[2].status, found[2].suggest_revoke) == (
        2, 1, "rare", False)
    assert (found[3].status, found[3].suggest_revoke) == ("never", True)
