"""Script stored in every text the portal shows, and reflected from what it echoes.

tests/admin/test_page_security.py puts script into a department's, a user's and a
system's name and walks the system administrator's pages (and checks that no template
has inline script, and the Content-Security-Policy). Here the rest of what people type
and the portal shows: a client's name; a catalogue resource's name, summary, conditions,
basis and item titles; an application's purpose and a decision's reason (the review
pages and the timeline); a grant's purpose; a policy line's reason; what the audit log
holds (reasons, names, ``extra``, the browser a session signed in with) on the auditor
console, the activity page and one's own account page; real use's charts and tables;
and what a page echoes from the request (a search, a sign-in name, a service URL).
Every page, for the role that sees it, holds none of it as markup."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from audit import AuditRecord
from tests.hostile.conftest import IdpWorld
from tests.oauth2.helpers import DEMO_PASSWORD, csrf_of, login
from tests.tokens import access_token

# each a way out of a text node, an attribute, a <title>, an SVG <text> or a URL
EVIL = {
    "script": "<script>alert(1)</script>",
    "img": '"><img src=x onerror=alert(2)>',
    "svg": "</text><svg onload=alert(3)>",
    "title": "</title><script>alert(4)</script>",
    "attr": "' onmouseover='alert(5)",
    "template": "{{ 7*7 }}{% raw %}",
}
# what none of the pages may hold: the markup the payloads above would become
MARKUP = ["<script>alert(", "<img src=x", "<svg onload", "onmouseover='alert", "</title><script"]


def evil(tag: str, *names: str) -> str:
    """All the payloads in one text (names first, so that each text is told apart)."""
    return " ".join(names) + " " + " ".join(EVIL[k] for k in (tag, *EVIL))[:180]


@pytest.fixture(scope="module")
def stored(idp_world: IdpWorld) -> dict[str, Any]:
    """Hostile text in everything people type, through the state file, the API and the
    audit log; the ids the pages need."""
    services, built = idp_world.services, idp_world.built
    for admin in ("sysadmin", "secadmin", "auditor"):
        services.org.change_password(admin, "Brand-New-Passw0rd-2026!")
    built.state_applier().apply({
        "departments": [{"code": "evil-dept", "name": evil("script", "恶意部门"),
                         "region": "gx"}],
        "users": [{"username": "evil.user", "name": evil("img", "恶意用户"),
                   "department": "evil-dept", "roles": ["staff", "data_steward"],
                   "password": DEMO_PASSWORD, "must_change": False}],
        "systems": [{"code": "evil-sys", "name": evil("svg", "恶意系统"),
                     "department": "jgswj", "upstream": "http://127.0.0.1:9"}],
        "clients": [{"client_id": "evil-client", "name": evil("title", "恶意客户端"),
                     "department": "jgswj", "grant_types": ["authorization_code"],
                     "secret": "evil-client-secret-0123456789abcdef",
                     "redirect_uris": ["http://127.0.0.1:9400/cb"],
                     "post_logout_redirect_uris": ["http://127.0.0.1:9400/"]}],
        "catalogue": [{
            "code": "JG-0666", "name": evil("script", "恶意资源"),
            "summary": evil("img", "摘要"), "provider": "jgswj", "system": "evil-sys",
            "share_type": "conditional", "conditions": evil("attr", "条件"),
            "basis": evil("title", "依据"), "status": "published",
            "route": {"method": "GET", "path": "/api/evil", "records": "items"},
            "items": [{"name": "evil_item", "title": evil("svg", "数据项")},
                      {"name": "plain_item", "title": "普通数据项"}]}],
        "grants": [{"resource": "JG-0666", "consumer": "czt", "items": ["plain_item"],
                    "purpose": evil("template", "用途"), "until": "2099-12-31"}],
        "policies": [{"subject": "dept:czt", "department": "czt", "object": "/s/evil-sys/x/*",
                      "action": "GET", "ungoverned": True,
                      "reason": evil("img", "例外理由")}],
    })
    built.catalogue.invalidate()
    api = TestClient(idp_world.client.app, base_url="http://127.0.0.1:8080")

    def bearer(sub: str, department: str, *roles: str) -> dict[str, str]:
        return {"Authorization": "Bearer " + access_token(
            services, sub=sub, department=department, roles=roles)}

    r = api.post("/api/v1/catalogue/applications", json={
        "resource": "JG-0666", "items": ["plain_item"], "purpose": evil("svg", "申请用途"),
        "basis": evil("attr", "申请依据"), "until": "2099-06-30"},
        headers=bearer("zhao.min", "czt", "staff", "data_steward"))
    assert r.status_code == 201, r.text
    app_id = r.json()["application"]["id"]
    r = api.post(f"/api/v1/catalogue/applications/{app_id}/reject",
                 json={"reason": evil("script", "驳回理由")},
                 headers=bearer("zhang.san", "jgswj", "staff", "data_steward"))
    assert r.status_code in (200, 201), r.text
    services.audit.append_sync(AuditRecord(
        event_type="hostile_seed", outcome="failure", actor_user="evil.user",
        system="evil-sys", reason=evil("script", "审计理由"),
        purpose=evil("img", "审计用途"), extra={"note": evil("svg", "附加"),
                                              "path": "/s/evil-sys/<script>alert(6)</script>"}))
    # a session signed in by a browser whose User-Agent is a payload: the account page
    # lists it, and the sign-ins read from the audit log
    browser = idp_world.fresh("198.51.100.66")
    browser.headers["User-Agent"] = evil("img", "Mozilla/5.0")
    assert login(browser, username="evil.user").status_code == 303
    with services.engine.connect() as conn:
        import sqlalchemy as sa

        from audit.tables import records

        seeded = conn.execute(sa.select(records.c.id).where(
            records.c.event_type == "hostile_seed")).scalar_one()
    return {"application": app_id, "record": seeded, "browser": browser}


def assert_inert(html: str, where: str) -> None:
    found = [m for m in MARKUP if m in html]
    assert not found, (where, found, html[max(0, html.find(found[0]) - 200):][:400])
    assert "49{% raw %}" not in html, where  # text is never rendered as a template


def shown(html: str, label: str) -> bool:
    """Whether the page shows the text labelled ``label`` (escaped)."""
    return label in html


PAGES = {
    "zhang.san": ["/portal", "/portal/catalogue", "/portal/catalogue/JG-0666",
                  "/portal/catalogue/applications", "/portal/catalogue/applications/{app}",
                  "/portal/catalogue/grants", "/portal/account"],
    "zhao.min": ["/portal/catalogue/applications", "/portal/catalogue/applications/{app}",
                 "/portal/catalogue/JG-0666"],
    "evil.user": ["/portal", "/portal/account", "/portal/catalogue"],
    "auditor": ["/portal/audit", "/portal/audit?system=evil-sys", "/portal/audit/records/{record}",
                "/portal/admin/activity", "/portal/stats", "/portal/stats/departments/jgswj",
                "/portal/stats/departments/evil-dept", "/portal/audit/checkpoints"],
    "sysadmin": ["/portal/admin/users", "/portal/admin/departments", "/portal/admin/systems",
                 "/portal/admin/systems/evil-sys", "/portal/admin/clients",
                 "/portal/admin/clients/evil-client"],
    "secadmin": ["/portal/admin/policies", "/portal/admin/grants",
                 "/portal/admin/grants?resource=JG-0666"],
}
# what each label must be shown on at least one page (so the walk did see it)
LABELS = ["恶意部门", "恶意用户", "恶意系统", "恶意客户端", "恶意资源", "摘要", "条件", "依据",
          "数据项", "用途", "例外理由", "申请用途", "驳回理由", "审计理由", "附加", "Mozilla/5.0"]


def test_every_page_shows_stored_text_as_text(idp_world: IdpWorld,
                                              stored: dict[str, Any]) -> None:
    seen: set[str] = set()
    for who, paths in PAGES.items():
        client = idp_world.signed_in(who)
        for path in paths:
            path = path.format(app=stored["application"], record=stored["record"])
            r = client.get(path, follow_redirects=False)
            assert r.status_code == 200, (who, path, r.status_code)
            assert_inert(r.text, f"{who} {path}")
            seen |= {label for label in LABELS if shown(r.text, label)}
    assert seen == set(LABELS), set(LABELS) - seen


def test_what_a_page_echoes_is_text(idp_world: IdpWorld, stored: dict[str, Any]) -> None:
    payload = evil("script", "回显")
    client = idp_world.signed_in("zhang.san")
    echoes = {
        "a catalogue search": client.get("/portal/catalogue", params={"q": payload}),
        "an audit search": idp_world.signed_in("auditor").get(
            "/portal/audit", params={"text": payload[:200]}),
        "a user search": idp_world.signed_in("sysadmin").get(
            "/portal/admin/users", params={"q": payload}),
        "a page that is not there": client.get("/portal/" + payload,
                                               headers={"Accept": "text/html"}),
        "a CAS service": client.get("/cas/login", params={"service": payload}),
        "the sign-out of a client": client.get("/oauth2/logout", params={
            "client_id": "evil-client", "post_logout_redirect_uri": payload}),
    }
    fresh = idp_world.fresh()
    page = fresh.get("/portal/login", params={"next": "/" + payload})
    echoes["the sign-in's next"] = page
    echoes["a sign-in name"] = fresh.post("/portal/login", data={
        "csrf_token": csrf_of(page.text), "username": payload, "password": "x",
        "next": "/portal"})
    for what, r in echoes.items():
        assert r.status_code < 500, what
        assert_inert(r.text, what)
