"""Break-glass in the portal: the request form, the security administrators'
approvals, the red banner and the launcher while active, the audit administrator's
review queue with its links into the auditor console."""

from __future__ import annotations

import re

import httpx

from gateway.idp.oauth2.provider import SESSION_COOKIE
from tests.break_glass.conftest import World
from tests.oauth2.helpers import csrf_of
from tests.wiring import parts

ORIGIN = {"Origin": "http://127.0.0.1:8080"}


def as_session(world: World, who: str) -> None:
    token, _ = parts(world.services).provider.store.create_session(
        who, "active", amr="pwd otp", absolute_seconds=3600)
    world.http.cookies.clear()
    world.http.cookies.set(SESSION_COOKIE, token)


async def post(world: World, path: str, **form: str) -> httpx.Response:
    page = await world.http.get("/portal/break-glass")
    return await world.http.post(path, data={"csrf_token": csrf_of(page.text), **form},
                                 headers=ORIGIN)


async def test_request_approve_banner_launcher_and_review(world: World) -> None:
    as_session(world, "wang.wu")
    r = await post(world, "/portal/break-glass", system="echo", reason="数据库故障抢修",
                   minutes="45")
    assert r.status_code == 303, r.text
    bg_id = re.search(r"target=(bg_[0-9a-f]{16})", r.headers["location"]).group(1)  # type: ignore[union-attr]
    page = await world.http.get("/portal/break-glass")
    assert f'data-bg="{bg_id}" data-state="pending"' in page.text
    assert "bg-banner" not in page.text
    # not through the portal's launcher either, until two approve
    assert "data-system=\"echo\"" not in (await world.http.get("/portal")).text

    as_session(world, "sec.a")
    assert (await post(world, f"/portal/break-glass/{bg_id}/approve")).status_code == 303
    again = await post(world, f"/portal/break-glass/{bg_id}/approve")
    assert again.status_code == 409 and "同一管理员只计一次" in again.text
    as_session(world, "sec.b")
    assert (await post(world, f"/portal/break-glass/{bg_id}/approve")).status_code == 303

    as_session(world, "wang.wu")
    home = await world.http.get("/portal")
    assert f'class="bg-banner" role="alert" data-bg="{bg_id}"' in home.text
    assert 'data-system="echo"' in home.text
    assert (await world.http.get("/portal/account")).text.count("bg-banner") == 1
    english = (await world.http.get("/portal/break-glass?lang=en")).text
    assert "Break-glass active: echo" in english and "Request break-glass" in english
    opened = await world.http.get("/s/echo/", headers={"Accept": "application/json"})
    assert opened.status_code == 200
    assert dict(opened.json()["headers"])["x-govgate-break-glass"] == bg_id
    # the requester does not review, nor approve
    assert (await world.http.get("/portal/break-glass/review")).status_code == 403
    assert (await post(world, f"/portal/break-glass/{bg_id}/approve")).status_code == 403

    as_session(world, "sec.c")
    assert (await post(world, f"/portal/break-glass/{bg_id}/end",
                       reason="抢修完成")).status_code == 303
    as_session(world, "aud.a")
    review = await world.http.get("/portal/break-glass/review")
    assert review.status_code == 200
    item = review.text.split('id="closed"')[0]
    assert f'data-bg="{bg_id}"' in item
    use = next(x for x in world.records("proxy_request")
               if x["extra"].get("break_glass") == bg_id)
    assert f'href="/portal/audit/records/{use["id"]}"' in item
    blank = await world.http.post(f"/portal/break-glass/{bg_id}/review", headers=ORIGIN,
                                  data={"csrf_token": csrf_of(review.text), "finding": " "})
    assert blank.status_code == 400 and "书面结论" in blank.text
    done = await world.http.post(f"/portal/break-glass/{bg_id}/review", headers=ORIGIN,
                                 data={"csrf_token": csrf_of(review.text),
                                       "finding": "处置及时，未越权"})
    assert done.status_code == 303
    closed = (await world.http.get("/portal/break-glass/review")).text.split('id="closed"')
    assert bg_id not in closed[0] and "处置及时，未越权" in closed[1]
    assert 'class="bg-close"' not in closed[1]  # read-only once closed
