"""The portal's delegation pages through the app: A asks, the department head approves
from the queue, B sees A's systems marked 代理 A on the launcher, chooses to act and
reaches the system as A, A revokes; refusals are readable pages in both languages."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from starlette.testclient import TestClient

from gateway.idp.oauth2.provider import SESSION_COOKIE
from tests.delegation.conftest import (
    api,
    approved,
    claims_of,
    cookies,
    header,
    session,
    steps,
)
from tests.oauth2.helpers import csrf_of
from tests.proxy.conftest import World


def signed_in(world: World, username: str) -> TestClient:
    client = TestClient(world.app, base_url="http://127.0.0.1:8080")
    client.cookies.set(SESSION_COOKIE, session(world, username))
    return client


def test_request_approve_act_revoke_in_the_portal(quick: World) -> None:
    a, head, b = (signed_in(quick, u) for u in ("li.ming", "zhao.head", "wang.fang"))
    page = a.get("/portal/delegations")
    assert page.status_code == 200 and 'id="request-form"' in page.text
    assert 'value="echo"' in page.text and 'value="data_steward"' in page.text
    assert 'value="sysadmin"' not in page.text
    end = (quick.services.clock() + timedelta(days=3)).date().isoformat()
    form = {"csrf_token": csrf_of(page.text), "delegate": "wang.fang", "systems": ["echo"],
            "ends_at": end, "reason": "休假期间代为办理"}
    # too long a period: the page again, the reason in the page's language
    r = a.post("/portal/delegations", data={**form, "ends_at": (
        quick.services.clock() + timedelta(days=40)).date().isoformat()})
    assert r.status_code == 400 and "委托最长 30 天" in r.text
    assert 'value="休假期间代为办理"' in r.text  # what was typed stays
    r = a.post("/portal/delegations?lang=en", data={**form, "delegate": "chen.jing"})
    assert r.status_code == 400 and "chen.jing is not in your department" in r.text
    # no CSRF token: refused
    assert a.post("/portal/delegations", data={**form, "csrf_token": "x"}).status_code == 400
    r = a.post("/portal/delegations", data=form, follow_redirects=False)
    assert r.status_code == 303
    number = int(r.headers["location"].rsplit("id=", 1)[1])
    assert f'id="delegation-{number}" data-state="requested"' in a.get(r.headers["location"]).text
    # B may not act before the approval, nor approve it
    page = b.get("/portal/delegations")
    assert 'id="acting-none"' in page.text and f'id="approve-{number}"' not in page.text
    r = b.post(f"/portal/delegations/{number}/approve", data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 403 and "委托双方都不能审批自己的委托" in r.text
    # the head's queue
    page = head.get("/portal/delegations")
    assert f'id="approve-{number}"' in page.text
    r = head.post(f"/portal/delegations/{number}/approve",
                  data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303
    assert 'id="queue-none"' in head.get("/portal/delegations").text
    # B's launcher: A's system marked 代理 李明
    home = b.get("/portal")
    assert 'id="launcher-delegated"' in home.text and "代理 李明" in home.text
    assert f'data-delegation="{number}"' in home.text
    page = b.get("/portal/delegations")
    r = b.post(f"/portal/delegations/{number}/act", data={"csrf_token": csrf_of(page.text)},
               follow_redirects=False)
    assert r.status_code == 303 and f"gg_act={number}" in r.headers["set-cookie"]
    assert "HttpOnly" in r.headers["set-cookie"]
    assert 'id="home-acting"' in b.get("/portal").text
    r = b.get("/s/echo/work")
    assert r.status_code == 200
    claims = claims_of(header(quick.echo.seen[-1], "x-govgate-assertion") or "")
    assert claims["sub"] == "li.ming" and claims["act"] == {"sub": "wang.fang"}
    # A revokes from the list; B is refused at once
    page = a.get("/portal/delegations")
    r = a.post(f"/portal/delegations/{number}/revoke", data={"csrf_token": csrf_of(page.text)},
               follow_redirects=False)
    assert r.status_code == 303
    assert 'data-state="revoked"' in a.get("/portal/delegations").text
    r = b.get("/s/echo/work", headers={"Accept": "application/json"})
    assert r.status_code == 403 and json.loads(r.text)["type"].endswith("not_delegated")
    assert "已不再有效" in b.get("/portal/delegations").text
    # B stops acting: B is B again
    page = b.get("/portal/delegations")
    r = b.post("/portal/delegations/stop", data={"csrf_token": csrf_of(page.text)},
               follow_redirects=False)
    assert r.status_code == 303 and 'gg_act=""' in r.headers["set-cookie"]
    assert b.get("/s/echo/work").status_code == 200
    assert claims_of(header(quick.echo.seen[-1], "x-govgate-assertion") or "")["sub"] == \
        "wang.fang"
    changes = [s.change for s in steps(quick)]
    assert changes == ["delegation_refused", "delegation_refused", "delegation_requested",
                       "delegation_refused", "delegation_approved", "delegation_acting",
                       "delegation_revoked"]
    assert all(s.extra["via"] == "portal" for s in steps(quick))

    # without a session: the sign-in
    r = TestClient(quick.app, base_url="http://127.0.0.1:8080").get(
        "/portal/delegations", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/portal/login")


def launcher_links(page: str) -> list[str]:
    """The systems the home page's launcher (``#launcher``) links, in order."""
    found = re.search(r'<ul class="launcher" id="launcher"[^>]*>(.*?)</ul>', page, re.S)
    return re.findall(r'data-system="([^"]+)"', found.group(1)) if found else []


async def test_while_acting_the_launcher_lists_what_the_acting_identity_may_use(
        quick: World) -> None:
    """B acting for A: every /s/ request of B's session is decided as A (here A's
    data_steward role only, which a policy line opens ledger to), so B's own echo is
    refused; the launcher listed B's own systems all the same (the fourth walk's
    "Found and left")."""
    number = await approved(quick, systems=[], roles=["data_steward"])
    own = await quick.request("GET", "/portal", headers=[cookies(quick, "wang.fang")])
    assert launcher_links(own.body.decode()) == ["down", "echo"]

    acting = cookies(quick, "wang.fang", acting=number)
    page = (await quick.request("GET", "/portal", headers=[acting])).body.decode()
    assert launcher_links(page) == ["ledger"]
    assert "代理 李明可用的系统" not in page and "代理 李明 可用的系统" in page
    assert 'class="acting-mark">代理 李明<' in page
    # the proxy agrees with each link, and refuses what is no longer listed
    assert (await quick.request("GET", "/s/ledger/", headers=[acting])).status == 200
    assert (await quick.request("GET", "/s/echo/", headers=[acting])).status == 403
    english = (await quick.request("GET", "/portal?lang=en", headers=[acting])).body.decode()
    assert "Systems you may use for 李明" in english
    assert 'href="/s/ledger/?lang=en"' in english

    # revoked: nothing opens while the choice stays; the page says so and how to stop
    assert (await api(quick, "li.ming", "POST", f"/{number}/revoke")).status == 200
    page = (await quick.request("GET", "/portal", headers=[acting])).body.decode()
    assert launcher_links(page) == [] and 'id="launcher-acting-none"' in page
    assert "停止代理" in page
    assert (await quick.request("GET", "/s/ledger/", headers=[acting])).status == 403
