"""Item 6 of issue 15 on every portal page, the admin consoles' and the others': every
form that posts carries the CSRF token and every POST route refuses a post without
it; every response carries the security headers, with a Content-Security-Policy that
allows no inline script or style; nothing a user typed reaches a page unescaped."""

from __future__ import annotations

import re
from pathlib import Path

from starlette.routing import Route
from starlette.testclient import TestClient

from gateway.services import Services
from tests.admin.conftest import as_session, csrf
from tests.wiring import apply_state

TEMPLATES = Path(__file__).resolve().parents[2] / "gateway" / "web" / "portal" / "templates"
PARAMS = {"code": "czt", "id": "1", "action": "approve", "username": "li.si",
          "client_id": "office-web"}
EVIL = "<script>alert(1)</script>"
PAGES = {
    "zhang.san": ["/portal", "/portal/catalogue", "/portal/catalogue/JG-0001",
                  "/portal/catalogue/applications"],
    "sysadmin": ["/portal/admin/users", "/portal/admin/departments", "/portal/admin/systems",
                 "/portal/admin/systems/assets", "/portal/admin/clients",
                 "/portal/admin/clients/office-web"],
    "secadmin": ["/portal/admin/policies", "/portal/admin/grants", "/portal/admin/keys",
                 "/portal/admin/security"],
    "auditor": ["/portal/admin/activity"],
}


def check_headers(r: object, where: str) -> None:
    headers = r.headers  # type: ignore[attr-defined]
    assert headers["x-frame-options"] == "DENY", where
    assert headers["x-content-type-options"] == "nosniff", where
    assert headers["referrer-policy"] == "same-origin", where
    csp = headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, where
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, where


def test_no_template_has_inline_script_or_style() -> None:
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        # a script is a file of the portal's own (CSP script-src 'self'), never inline
        inline = r'<script(?! src="/portal/static/[a-z_]+\.js"></script>)'
        assert not re.search(inline + r"|<style|\sstyle=|\son[a-z]+=|javascript:", text,
                             re.I), template.name


def test_every_page_has_the_headers_and_every_post_form_its_token(
        world: tuple[Services, TestClient]) -> None:
    services, client = world
    seen = 0
    for username, paths in PAGES.items():
        as_session(services, client, username)
        for path in paths:
            r = client.get(path)
            assert r.status_code == 200, (path, r.status_code)
            check_headers(r, path)
            forms = re.findall(r"<form\b[^>]*>.*?</form>", r.text, re.S)
            for form in forms:
                if re.search(r'method="post"', form, re.I):
                    assert re.search(r'name="csrf_token" value="[^"]{20,}"', form), (path, form)
                    seen += 1
    assert seen > 30
    # and what is not a page: a redirect, a static file, a refusal, a missing page
    client.cookies.clear()
    for path, status in (("/portal/admin/users", 303), ("/portal/static/portal.css", 200),
                         ("/portal/login", 200)):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == status
        check_headers(r, path)
    as_session(services, client, "li.si")
    check_headers(client.get("/portal/admin/keys"), "a 403 page")
    r = client.get("/portal/no-such-page", headers={"Accept": "text/html"})
    assert r.status_code == 404
    check_headers(r, "a 404 page")


def test_every_portal_post_route_refuses_a_post_without_its_token(
        world: tuple[Services, TestClient]) -> None:
    """Signed in with a full session, as the admin whose console it is: nothing is done,
    the answer is 400 (or, for the sign-in steps this session is past, the sign-in)."""
    services, client = world
    routes = [r for r in client.app.routes  # type: ignore[attr-defined]
              if isinstance(r, Route) and r.path.startswith("/portal")
              and "POST" in (r.methods or ())]
    assert len(routes) >= 19
    before = {u.username: (u.status, u.must_change) for u in services.org.list_users()}
    for route in routes:
        path = re.sub(r"\{(\w+)\}", lambda m: PARAMS[m.group(1)], route.path)
        who = "secadmin" if any(p in path for p in ("/policies", "/grants", "/keys")) else \
            "sysadmin" if "/admin/" in path else \
            "auditor" if path.startswith("/portal/audit") else "zhang.san"
        as_session(services, client, who)
        csrf(client)  # the cookie is there: only the form's field is missing
        r = client.post(path, data={"name": "x", "reason": "x", "code": "x"},
                        follow_redirects=False)
        if path in ("/portal/login/change", "/portal/login/totp", "/portal/login/enrol",
                    "/portal/login/recovery"):  # no sign-in under way: to its start
            assert r.status_code == 303, path
        else:
            assert r.status_code == 400, (path, r.status_code, r.text[:200])
            assert "页面已过期" in r.text, path
    assert {u.username: (u.status, u.must_change) for u in services.org.list_users()} == before
    assert services.org.get_department("czt")["name"] == "财政厅"


def test_what_users_type_is_escaped(world: tuple[Services, TestClient]) -> None:
    services, client = world
    apply_state(services, {
        "departments": [{"code": "evil", "name": EVIL, "region": "gx"}],
        "users": [{"username": "evil.user", "name": '<img src=x onerror="alert(2)">',
                   "department": "evil", "roles": ["staff"]}],
        "systems": [{"code": "evil-sys", "name": "</td><script>alert(3)</script>",
                     "department": "evil", "upstream": "http://127.0.0.1:9999"}]})
    as_session(services, client, "sysadmin")
    for path in ("/portal/admin/users", "/portal/admin/departments", "/portal/admin/systems",
                 "/portal/admin/users?q=%3Cscript%3E"):
        page = client.get(path).text
        assert "<script>" not in page and "<img src=x" not in page, path
        assert "&lt;script&gt;alert(" in page or "&lt;img" in page, path
    r = client.post("/portal/admin/departments",
                    data={"csrf_token": csrf(client), "code": "<b>x</b>", "name": EVIL,
                          "parent": "czt"})
    assert r.status_code == 400 and "<b>x</b>" not in r.text and "&lt;b&gt;" in r.text
