"""Open redirects on every parameter that says where the browser goes next: OAuth
``redirect_uri``, ``post_logout_redirect_uri``, the portal's ``next`` (on every page
that takes it, as a redirect and as a link it shows), and CAS ``service``/``url``.

tests/oauth2/test_bad_input.py has near misses of a registered ``redirect_uri``,
tests/oauth2/test_logout.py of a post-logout URI, tests/portal/test_login.py a list of
``next`` values at the sign-in, tests/cas/test_services.py and test_flows.py service
URLs. Here one list of hostile targets (``//evil``, ``/\\evil``, ``https:evil``,
encoded, with tabs and line breaks a browser drops, with user information) at each of
them, and every place a ``next`` ends up: the sign-in's steps, the account page's
"continue" link, the recovery codes page. What a browser would do with the answer is
what counts: it drops tabs and line breaks, reads ``\\`` as ``/`` and trims leading
control characters and spaces (WHATWG URL), so an answer is judged after that."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.testclient import TestClient

from tests.hostile.conftest import IdpWorld
from tests.oauth2.helpers import (
    OFFICE,
    OFFICE_CB,
    authorize,
    code_flow,
    csrf_of,
    login,
    pkce,
)

EVIL = "evil.example"
#: where an attacker wants the browser to go, spelled every way a check may miss
HOSTILE = [
    f"//{EVIL}", f"///{EVIL}", f"/\\{EVIL}", f"\\\\{EVIL}", f"\\/{EVIL}", f"/\\/{EVIL}",
    f"https:{EVIL}", f"https:/{EVIL}", f"https://{EVIL}", f"HTTPS://{EVIL}",
    f"//{EVIL}/%2F..", f"/%2F{EVIL}", f"%2F%2F{EVIL}", f"/%5C{EVIL}", f"%5C%5C{EVIL}",
    f"/\t/{EVIL}", f"/\n/{EVIL}", f"/\r\n/{EVIL}", f"\t//{EVIL}", f" //{EVIL}",
    f"\x00//{EVIL}", f"/\x0b/{EVIL}", f"\u3000//{EVIL}", f"javascript://{EVIL}/%0aalert(1)",
    "javascript:alert(1)", "data:text/html,<script>alert(1)</script>",
    f"http://127.0.0.1:8080@{EVIL}/", f"http://{EVIL}\\@127.0.0.1:8080/",
    f"/portal/../..//{EVIL}", f"/.//{EVIL}",
]


def as_browser(url: str) -> str:
    """``url`` as a browser reads it before resolving (WHATWG URL: leading and trailing
    C0 controls and spaces trimmed, tabs and line breaks removed, ``\\`` a ``/``)."""
    url = url.strip("".join(map(chr, range(0x21))))
    return re.sub(r"[\t\n\r]", "", url).replace("\\", "/")


def stays_here(url: str) -> bool:
    """Whether a browser on the gateway, given ``url``, stays on the gateway."""
    read = as_browser(url)
    parts = urlsplit(read)
    return not parts.scheme and not parts.netloc and not read.startswith("//")


def assert_stays(response: object, what: str) -> None:
    location = response.headers.get("location")  # type: ignore[attr-defined]
    if location is not None:
        assert stays_here(location), (what, location)


def hrefs(html: str) -> list[str]:
    return [unescape(h) for h in re.findall(r'href="([^"]*)"', html)]


# -- OAuth --------------------------------------------------------------------------


def test_redirect_uri_never_sends_anywhere_unregistered(idp_world: IdpWorld) -> None:
    client = idp_world.fresh()
    _, challenge = pkce()
    for signed_in in (False, True):
        if signed_in:
            login(client)
        for target in [*HOSTILE, OFFICE_CB + f"/..//{EVIL}", OFFICE_CB + "%2F..%2F",
                       OFFICE_CB.replace("http://", "http:/"), OFFICE_CB + f"@{EVIL}",
                       OFFICE_CB + f"#@{EVIL}", OFFICE_CB.replace("127.0.0.1", f"{EVIL}#")]:
            r = authorize(client, redirect_uri=target, challenge=challenge)
            assert r.status_code == 400 and "location" not in r.headers, (signed_in, target)


def test_post_logout_redirect_uri_never_sends_anywhere_unregistered(
        idp_world: IdpWorld) -> None:
    client = idp_world.fresh()
    tokens = code_flow(client)
    for target in [*HOSTILE, "http://127.0.0.1:9102/" + f"/{EVIL}",
                   f"http://127.0.0.1:9102@{EVIL}/", "http://127.0.0.1:9102\\@" + EVIL]:
        for hint in (tokens["id_token"], None):
            params = {"post_logout_redirect_uri": target, "client_id": OFFICE[0]}
            if hint:
                params["id_token_hint"] = hint
            r = client.get("/oauth2/logout", params=params, follow_redirects=False)
            assert "location" not in r.headers, (target, r.headers.get("location"))


# -- the portal's next --------------------------------------------------------------


def test_next_at_the_sign_in_is_local_as_a_redirect_and_in_its_form(
        idp_world: IdpWorld) -> None:
    for target in HOSTILE:
        client = idp_world.fresh()
        page = client.get("/portal/login", params={"next": target})
        if "\x00" in target:  # refused before any route (gateway.web.nul_guard)
            assert page.status_code == 400
            continue
        kept = re.search(r'name="next" value="([^"]*)"', page.text)
        assert kept and stays_here(unescape(kept.group(1))), (target, kept)
        r = login(client, next_url=target)
        assert r.status_code == 303
        assert_stays(r, target)


def test_next_through_the_sign_in_steps(idp_world: IdpWorld) -> None:
    """sysadmin signs in with a password to change and an authenticator to enrol: the
    ``next`` of each step's form, its redirect, and the recovery codes page's link."""
    import pyotp

    org = idp_world.services.org
    for i, target in enumerate((f"/\t/{EVIL}", f"/\\{EVIL}", f"//{EVIL}", f"/%09/{EVIL}")):
        org.reset_password("sysadmin", f"Admin-Passw0rd-2026!{i}")
        org.reset_totp("sysadmin")
        idp_world.clock.advance(31)  # a new TOTP step
        client = idp_world.fresh()
        r = login(client, username="sysadmin", password=f"Admin-Passw0rd-2026!{i}",
                  next_url=target)
        assert_stays(r, target)
        page = client.get("/portal/login/change", params={"next": target})
        assert all(stays_here(h) for h in hrefs(page.text))
        r = client.post("/portal/login/change", data={
            "csrf_token": csrf_of(page.text), "new_password": f"Brand-New-Passw0rd-{i}!",
            "confirm_password": f"Brand-New-Passw0rd-{i}!", "next": target},
            follow_redirects=False)
        assert r.status_code == 303, r.text[:300]
        assert_stays(r, target)
        page = client.get("/portal/login/enrol", params={"next": target})
        secret = re.search(r'<code id="secret">([A-Z2-7]+)</code>', page.text)
        assert secret, page.text[:500]
        r = client.post("/portal/login/enrol", data={
            "csrf_token": csrf_of(page.text), "code": pyotp.TOTP(secret.group(1)).at(
                idp_world.clock()), "next": target}, follow_redirects=False)
        assert r.status_code == 200 and 'name="saved"' in r.text, r.text[:300]
        assert all(stays_here(h) for h in hrefs(r.text)), (target, hrefs(r.text))
        saved = client.post("/portal/account/recovery-codes/saved", data={
            "csrf_token": csrf_of(r.text), "saved": "1", "next": target},
            follow_redirects=False)
        assert saved.status_code == 303
        assert_stays(saved, target)


def test_next_on_the_account_page_is_a_local_link(idp_world: IdpWorld) -> None:
    """``/portal/account?done=...&next=`` shows a "continue" link to ``next``: a link a
    browser follows off the gateway would be an open redirect one click away."""
    client = idp_world.fresh()
    login(client)
    for target in HOSTILE:
        for done in ("recovery_used",):  # every "done" shows the same link
            page = client.get("/portal/account", params={"done": done, "n": "3",
                                                         "next": target})
            assert page.status_code == (400 if "\x00" in target else 200)
            wrong = [h for h in hrefs(page.text) if not stays_here(h)]
            assert not wrong, (target, done, wrong)


# -- CAS ----------------------------------------------------------------------------


def test_cas_service_and_url_never_send_anywhere_unregistered(idp_world: IdpWorld) -> None:
    registered = "http://127.0.0.1:9102/cas/"
    targets = [*HOSTILE, registered + f"..//{EVIL}", registered + f"\\..\\..\\{EVIL}",
               f"http://127.0.0.1:9102@{EVIL}/cas/", f"http://{EVIL}\\@127.0.0.1:9102/cas/",
               f"http://{EVIL}#@127.0.0.1:9102/cas/", f"http://127.0.0.1:9102.{EVIL}/cas/",
               "http://127.0.0.1:9102/cas/\t@" + EVIL, f"http:/127.0.0.1:9102/cas/{EVIL}"]
    for signed_in in (False, True):
        client = idp_world.fresh()
        if signed_in:
            login(client)
        for target in targets:
            for extra in ({}, {"gateway": "true"}):
                r = client.get("/cas/login", params={"service": target, **extra},
                               follow_redirects=False)
                assert_stays(r, target)
    client = idp_world.fresh()
    login(client)  # the first sign-out ends a session; the decision does not depend on it
    for target in targets:
        for name in ("service", "url"):
            r = client.get("/cas/logout", params={name: target}, follow_redirects=False)
            assert_stays(r, target)


def _location_query(response: object) -> dict[str, list[str]]:
    return parse_qs(urlsplit(response.headers["location"]).query)  # type: ignore[attr-defined]


def test_the_sign_in_comes_back_only_to_the_gateway(idp_world: IdpWorld) -> None:
    """What sends the browser to the sign-in (a portal page, the OAuth and CAS
    endpoints) names a ``next`` on the gateway, whatever the request looked like."""
    client: TestClient = idp_world.fresh()
    for path in (f"/portal/account?x=//{EVIL}", f"/portal/catalogue?q=/\\{EVIL}"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303
        (back,) = _location_query(r)["next"]
        assert stays_here(back), back


def test_the_way_back_to_a_front_proxy_stays_on_the_gateways_host(
        idp_world: IdpWorld) -> None:
    """``/portal/return?to=`` (after the sign-in, back to nginx on the gateway's host
    name at another port): the hostile list, and addresses that name the gateway's host
    only in passing (user information, a longer host name, another scheme), with and
    without a session, never leave the gateway's host name."""
    host = urlsplit(idp_world.services.settings.issuer).hostname
    around = [f"http://{host}:9@{EVIL}/", f"http://{host}.{EVIL}/", f"http://{EVIL}/",
              f"https://{host}:9443/", f"http://{host}:9/\t/{EVIL}", f"http://{host}:x/",
              f"http://{EVIL}\\@{host}:9/", f"http://{host}:9//{EVIL}/", f"ftp://{host}/"]
    for signed_in in (False, True):
        client = idp_world.fresh()
        if signed_in:
            login(client)
        for target in [*HOSTILE, *around]:
            r = client.get("/portal/return", params={"to": target}, follow_redirects=False)
            if "\x00" in target:
                assert r.status_code == 400
                continue
            assert r.status_code == 303, target
            assert r.headers["location"] == "/portal", (target, r.headers["location"])
        # the address it is for: the gateway's host name at another port
        mine = f"http://{host}:9181/app/index.jsp?x=1"
        r = client.get("/portal/return", params={"to": mine}, follow_redirects=False)
        assert r.headers["location"] == (mine if signed_in else "/portal/login?" + urlencode(
            {"next": "/portal/return?" + urlencode({"to": mine})}))
