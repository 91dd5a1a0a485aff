"""The page a browser refused behind nginx's ``auth_request`` gets (attack of
2026-12-05, fifth session): a real nginx running docs/nginx-forward-auth.conf
(``error_page 401 403`` to the gateway's ``/portal/refused``) in front of a real
upstream, plain HTTP. It got nginx's bare "403 Forbidden" / "401 Authorization
Required" page, in English, saying nothing."""

from __future__ import annotations

import html
from urllib.parse import quote, urlencode, urlsplit

from policies import make_line
from tests.proxy.conftest import World, raw_request
from tests.proxy.test_cross_site import session_cookie
from tests.proxy.test_forward_auth import nginx as nginx  # the fixture

BROWSER = [("Accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
           ("Sec-Fetch-Mode", "navigate")]


async def test_a_browser_without_a_session_gets_a_sign_in_page(world: World, nginx: int) -> None:
    r = await raw_request(nginx, "GET", "/api/x?y=1", BROWSER)
    assert r.status == 401 and r.headers["content-type"] == "text/html; charset=utf-8"
    page = r.body.decode()
    assert "需要登录" in page and "nginx" not in page
    issuer = world.services.settings.issuer.rstrip("/")
    # nginx on the gateway's host name at another port (as docs/integration.md advises):
    # the sign-in comes back to the address through /portal/return (the page said
    # "reopen it after signing in", and the sign-in ended at the portal's home page)
    target = f"http://127.0.0.1:{nginx}/api/x?y=1"
    back_path = "/portal/return?" + urlencode({"to": target})
    assert f'href="{issuer}/portal/login?{html.escape(urlencode({"next": back_path}))}"' \
        in page, page
    assert "登录后请重新打开" not in page
    assert r.headers["www-authenticate"].startswith("Bearer")
    signed_in = ("Cookie", session_cookie(world))
    came = await world.request("GET", back_path, headers=[signed_in])
    assert came.status == 303 and came.headers["location"] == target
    # not signed in: the sign-in first, coming back here
    first = await world.request("GET", back_path)
    assert first.status == 303
    assert first.headers["location"] == "/portal/login?" + urlencode({"next": back_path})
    # only the issuer's scheme and host name: anything else goes to the portal's home
    for hostile in ("http://evil.example/x", f"http://127.0.0.1:{nginx}@evil.example/x",
                    f"https://127.0.0.1:{nginx}/x", "//evil.example/x",
                    "javascript:alert(1)", "http://127.0.0.1:99999/x",
                    f"http://127.0.0.1:{nginx}//evil.example/x", f"http://127.0.0.1:{nginx}",
                    "http://127.0.0.1.evil.example/x", f"http://127.0.0.1:{nginx}/\\x",
                    "http://[127.0.0.1/x"):  # no URL at all (urlsplit refuses it): 500
        away = await world.request("GET", "/portal/return?" + urlencode({"to": hostile}),
                                   headers=[signed_in])
        assert away.status == 303 and away.headers["location"] == "/portal", hostile
    # another host name: the sign-in cannot come back there by itself (the portal's
    # session cookie never reaches it)
    other = await raw_request(nginx, "GET", "/api/x?y=1", [*BROWSER, ("Host", "oa.example")])
    assert f'href="{issuer}/portal/login"' in other.body.decode()
    assert "登录后请重新打开：http://oa.example/api/x?y=1" in other.body.decode()
    # its stylesheet and icon come from the gateway: on the system's host nginx sends
    # /portal/static/ to the system behind forward-auth, refused (the page came bare)
    assert f'<link rel="stylesheet" href="{issuer}/portal/static/portal.css">' in page
    assert f'href="{issuer}/portal/static/favicon.svg"' in page
    policy = r.headers["content-security-policy"]
    assert f"style-src 'self' {issuer};" in policy and "default-src 'self';" in policy
    assert (await raw_request(nginx, "GET", "/portal/static/portal.css", BROWSER)).status \
        == 401  # what the page linked to before
    css = await world.request("GET", "/portal/static/portal.css")
    assert css.status == 200 and css.headers["content-type"].startswith("text/css")
    english = await raw_request(nginx, "GET", "/api/x", [
        *BROWSER, ("Accept-Language", "en-US,en;q=0.9,zh;q=0.5")])
    assert english.status == 401 and "Sign-in needed" in english.body.decode()
    assert english.headers["content-language"] == "en"
    # on the gateway's own host the link comes back to the address, a local path only
    own = [*BROWSER, ("Host", urlsplit(issuer).netloc)]
    back = await raw_request(nginx, "GET", "/api/x?y=1", own)
    assert f'href="{issuer}/portal/login?next={quote("/api/x?y=1", safe="")}"' in \
        back.body.decode()
    assert 'href="/portal/static/portal.css"' in back.body.decode()  # its own host
    assert back.headers["content-security-policy"].startswith("default-src 'self'; img-src")
    for target in ("//evil.example/x", "/\\evil.example/x"):
        tricked = await raw_request(nginx, "GET", target, own)
        assert tricked.status in (401, 403), target  # forward-auth may refuse the path
        assert "evil.example" not in tricked.body.decode(), target
        # the page itself, told such an address: no way back, no link elsewhere
        direct = await world.request("GET", "/portal/refused", headers=[
            *own, ("X-Govgate-Status", "401"), ("X-Original-URI", target),
            ("X-Forwarded-Host", urlsplit(issuer).netloc)])
        assert direct.status == 401 and "evil.example" not in direct.body.decode(), target
        assert f'href="{issuer}/portal/login"' in direct.body.decode()
    # a host that makes no URL with the issuer's scheme: shown as text, no 500
    broken = await world.request("GET", "/portal/refused", headers=[
        ("Accept", "text/html"), ("X-Govgate-Status", "401"), ("X-Original-URI", "/x"),
        ("X-Forwarded-Host", "[127.0.0.1")])
    assert broken.status == 401 and f'href="{issuer}/portal/login"' in broken.body.decode()
    # a program gets the problem JSON, as before the page
    api = await raw_request(nginx, "GET", "/api/x", [("Accept", "application/json")])
    assert api.status == 401 and api.headers["content-type"] == "application/problem+json"
    assert api.headers["www-authenticate"].startswith("Bearer")
    assert world.echo.seen == []


async def test_a_refused_browser_is_told_who_it_is_and_why(world: World, nginx: int) -> None:
    world.built.policies.add(make_line("role:staff", "jgswj", "/s/echo/secret/*", "GET",
                                       effect="deny"))
    cookie = ("Cookie", session_cookie(world))  # zhang.san's portal session
    r = await raw_request(nginx, "GET", "/secret/report", [*BROWSER, cookie])
    assert r.status == 403 and r.headers["content-type"] == "text/html; charset=utf-8"
    page = r.body.decode()
    record = world.audit.records[-1]
    assert record.event_type == "forward_auth" and record.outcome == "deny"
    # the department by its name, as people know it (the code before)
    assert "无权访问" in page and "您当前的身份：张三（zhang.san，机关事务管理局）" in page
    assert "访问策略不允许您以当前身份打开该地址。" in page
    assert record.request_id in page
    # the record's reason (the policy line) stays in the audit log
    assert record.reason and record.reason not in page and "/s/echo/secret" not in page
    english = await raw_request(nginx, "GET", "/secret/report", [
        *BROWSER, cookie, ("Accept-Language", "en")])
    assert "No access policy lets you open this address as you are." in english.body.decode()
    # a path the gateway refuses to read: said so, in the page's words
    odd = await raw_request(nginx, "GET", "/api/..%2Fadmin", [*BROWSER, cookie])
    assert odd.status == 403 and "该地址的写法不被接受" in odd.body.decode()
    assert world.echo.seen == []
    # the page asked directly says nothing it was not told: a code it does not know is
    # "refused", a request id that is no id is left out
    direct = await world.request("GET", "/portal/refused", headers=[
        *BROWSER, ("X-Refusal-Code", "<b>x</b>"), ("X-Request-ID", "<script>")])
    assert direct.status == 403 and "访问被拒绝。" in direct.body.decode()
    assert "<script>" not in direct.body.decode() and "<b>" not in direct.body.decode()
