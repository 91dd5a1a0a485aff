"""Cross-site request forgery on every form, with a valid token.

tests/admin/test_page_security.py posts to every portal POST route without the form's
token; tests/portal/test_login.py tosses a CSRF cookie of the attacker's choosing from a
sibling site; tests/portal/test_login.py and tests/oauth2 the sign-out's confirmation;
tests/catalogue/test_api_content_type.py and tests/proxy/test_cross_site.py the API's
and the proxy's cross-site requests. Here every portal POST route and the sign-out's
form, with the session and the right token in place, posted the ways a forger can:
from another site or a sibling subdomain (the browser says so in ``Sec-Fetch-Site``,
or only in ``Origin``), from an opaque origin (``Origin: null``), with the token of
another browser, with the token in the query string: refused, nothing done."""

from __future__ import annotations

import re
from typing import Any

import pytest
from starlette.routing import Route

from gateway.idp.oauth2.provider import SESSION_COOKIE
from gateway.statefile import export_state
from tests.hostile.conftest import IdpWorld
from tests.oauth2.helpers import csrf_of

PARAMS = {"code": "czt", "id": "1", "action": "approve", "username": "li.si",
          "client_id": "office-web"}
EXPIRED = "页面已过期"
FORGERIES: dict[str, dict[str, str]] = {
    "another site": {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
    "a sibling subdomain": {"Sec-Fetch-Site": "same-site",
                            "Origin": "https://evil.gov.example"},
    "another origin, no fetch metadata": {"Origin": "https://evil.example"},
    "an opaque origin": {"Origin": "null"},
    "another port": {"Origin": "http://127.0.0.1:9999"},
}


@pytest.fixture(scope="module")
def admins(idp_world: IdpWorld) -> IdpWorld:
    for admin in ("sysadmin", "secadmin", "auditor"):
        idp_world.services.org.change_password(admin, "Brand-New-Passw0rd-2026!")
    return idp_world


def who_posts(path: str) -> str:
    if any(p in path for p in ("/admin/policies", "/admin/grants", "/admin/keys",
                               "/admin/security")):
        return "secadmin"
    if "/admin/" in path:
        return "sysadmin"
    return "auditor" if path.startswith("/portal/audit") else "zhang.san"


def state(world: IdpWorld) -> Any:
    return (export_state(world.services.engine),
            [(u.username, u.status, u.must_change) for u in world.services.org.list_users()],
            len(world.built.policies.lines()))


def post_routes(world: IdpWorld) -> list[str]:
    routes = [r.path for r in world.client.app.routes  # type: ignore[attr-defined]
              if isinstance(r, Route) and r.path.startswith("/portal")
              and "POST" in (r.methods or ())
              and not r.path.startswith(("/portal/login/", "/portal/login/recovery"))]
    return [re.sub(r"\{(\w+)\}", lambda m: PARAMS[m.group(1)], p) for p in routes]


def test_a_valid_token_posted_from_elsewhere_is_refused_on_every_form(
        admins: IdpWorld) -> None:
    world = admins
    before = state(world)
    paths = post_routes(world)
    assert len(paths) >= 15
    wrong = []
    for path in paths:
        client = world.signed_in(who_posts(path))
        token = csrf_of(client.get("/portal/login").text)
        form = {"csrf_token": token, "name": "x", "reason": "x", "code": "x",
                "username": "li.si", "password": "x"}
        for how, headers in FORGERIES.items():
            r = client.post(path, data=form, headers=headers, follow_redirects=False)
            if r.status_code != 400 or EXPIRED not in r.text:
                wrong.append(f"{path} from {how}: {r.status_code}")
        # the token of another browser, and the token in the query string
        other = csrf_of(world.fresh().get("/portal/login").text)
        r = client.post(path, data={**form, "csrf_token": other}, follow_redirects=False)
        if r.status_code != 400:
            wrong.append(f"{path} with another browser's token: {r.status_code}")
        r = client.post(f"{path}?csrf_token={token}", data={k: v for k, v in form.items()
                                                           if k != "csrf_token"},
                        follow_redirects=False)
        if r.status_code != 400:
            wrong.append(f"{path} with the token in the query: {r.status_code}")
    assert not wrong, "\n".join(wrong)
    assert state(world) == before


def test_the_same_post_from_the_gateways_own_pages_is_accepted(admins: IdpWorld) -> None:
    """The control: what the refusals above lacked is only where the post came from."""
    client = admins.signed_in("zhang.san")
    page = client.get("/portal")
    for headers in ({"Sec-Fetch-Site": "same-origin", "Origin": "http://127.0.0.1:8080"},
                    {"Origin": "http://127.0.0.1:8080"}, {}):
        r = client.post("/portal/logout", data={"csrf_token": csrf_of(page.text)},
                        headers=headers, follow_redirects=False)
        assert r.status_code == 200 and EXPIRED not in r.text, headers
        client = admins.signed_in("zhang.san")
        page = client.get("/portal")


def test_the_sign_out_confirmation_from_elsewhere_is_refused(admins: IdpWorld) -> None:
    client = admins.signed_in("zhang.san")
    params = {"client_id": "office-web", "post_logout_redirect_uri": "http://127.0.0.1:9102/"}
    page = client.get("/oauth2/logout", params=params)
    token = csrf_of(page.text)
    for how, headers in FORGERIES.items():
        r = client.post("/oauth2/logout", data={**params, "csrf_token": token},
                        headers=headers, follow_redirects=False)
        assert "location" not in r.headers, how
        assert client.get("/portal", follow_redirects=False).status_code == 200, how


def test_a_forged_sign_in_is_refused(admins: IdpWorld) -> None:
    """Login CSRF: a page elsewhere signing the victim's browser in as the attacker."""
    client = admins.fresh()
    token = csrf_of(client.get("/portal/login").text)
    for how, headers in FORGERIES.items():
        r = client.post("/portal/login", headers=headers, follow_redirects=False, data={
            "csrf_token": token, "username": "li.si", "password": "Demo-Passw0rd-2026",
            "next": "/portal"})
        assert r.status_code == 400 and SESSION_COOKIE not in r.cookies, how
