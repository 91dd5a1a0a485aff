"""The data steward's work in Chromium (issue #15 item 4, issue #22 item 4), against a
real gateway, the demo's real vehicles system behind its proxy, and a consumer
system's real access token:

* the review list is a wide table whose short columns do not wrap, overdue first; at
  390 px the page does not overflow, the table scrolls inside its box;
* approve (同意, primary) and reject (不同意, danger) look different (computed style);
* the steward approves narrowed, and the consumer system then reads exactly the
  granted items through the proxy; the row lists what was granted;
* the steward rejects with a reason, the consumer escalates with another, and the
  application's timeline shows every step with its reason;
* our grants show the use the audit log recorded; revoking stops the system.

Screenshots at desktop width and 390 px under the test's output folder
(``tmp_path/screenshots``), as the newcomer test keeps them."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from catalogue import Actor
from catalogue.tables import applications
from gateway.services import Services
from tests.browser import sign_in
from tests.portal.test_browser_newcomer import (  # noqa: F401 - world: a fixture
    DESKTOP,
    PHONE,
    Shots,
    world,
)
from tests.portal.test_catalogue_pages import fast_hashes  # noqa: F401 - a fixture
from tests.portal.test_languages import check
from tests.tokens import access_token
from tests.wiring import parts

pytestmark = pytest.mark.slow
WANG = Actor("wang.wu", "nn-jgsw", frozenset({"staff"}))
UNTIL = "2027-06-30"
TYPED = ("里程与费用核算无关", "里程是核算依据", "手机号不予提供", "车型统计")


@pytest.fixture
def shots(tmp_path: Path) -> Shots:
    return Shots(tmp_path / "screenshots")


def fits_at_390(page: Any, where: str) -> None:
    """No horizontal scroll of the page at 390 px; every table scrolls in its box."""
    page.set_viewport_size(PHONE)
    widths = page.evaluate("""() => ({
        page: document.documentElement.scrollWidth, view: window.innerWidth,
        boxes: [...document.querySelectorAll('.table-scroll')].map(b => ({
            overflow: getComputedStyle(b).overflowX, inner: b.scrollWidth,
            outer: b.clientWidth, right: b.getBoundingClientRect().right}))})""")
    assert widths["page"] <= widths["view"], (where, widths)
    for box in widths["boxes"]:
        assert box["overflow"] == "auto" and box["right"] <= widths["view"], (where, box)
    page.set_viewport_size(DESKTOP)


def fits_at_desktop(page: Any, where: str) -> None:
    """At desktop width every table shows all its columns without scrolling."""
    boxes = page.evaluate("""() => [...document.querySelectorAll('.table-scroll')].map(
        b => [b.scrollWidth, b.clientWidth])""")
    assert boxes and all(inner <= outer for inner, outer in boxes), (where, boxes)


def read_vehicles(issuer: str, token: str) -> httpx.Response:
    return httpx.get(f"{issuer}/s/vehicles/api/vehicles",
                     headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_steward_decides_and_the_timeline_keeps_every_reason(
        world: tuple[str, Services], browser: Any, shots: Shots) -> None:  # noqa: F811
    issuer, services = world
    wf = parts(services).workflow
    late = wf.apply(WANG, "JG-0001", items=["vehicle_type"], purpose="车型统计",
                    until=UNTIL).id
    narrow = wf.apply(WANG, "JG-0001", items=["plate_number", "brand", "driver_phone"],
                      purpose="车辆费用核算", basis="公务用车管理办法", until=UNTIL).id
    refuse = wf.apply(WANG, "JG-0001", items=["mileage_km"], purpose="核算", until=UNTIL).id
    with services.engine.begin() as conn:  # one waited past its time limit
        conn.execute(applications.update().where(applications.c.id == late)
                     .values(due_at=datetime.now(UTC) - timedelta(days=1)))
    system = access_token(services, sub=None, department="nn-jgsw", client_id="nn-client",
                          scope="proxy")
    assert read_vehicles(issuer, system).status_code == 403  # no grant yet

    # -- the steward's review list ----------------------------------------------------------
    steward = browser.new_context(locale="zh-CN", viewport=DESKTOP).new_page()
    steward.goto(f"{issuer}/portal/catalogue/applications")
    sign_in(steward, "zhang.san")
    steward.wait_for_url(f"{issuer}/portal/catalogue/applications")
    rows = steward.locator("#review tbody tr")
    assert rows.count() == 3, rows.all_inner_texts()
    assert rows.first.get_attribute("id") == f"review-{late}"  # overdue first
    assert "已超期" in rows.first.locator("td.deadline").inner_text()
    assert "剩 " in steward.locator(f"#review-{narrow} td.deadline").inner_text()
    heights = steward.evaluate("""() => [...document.querySelectorAll('#review th')].map(
        th => [th.innerText, th.getBoundingClientRect().height,
               parseFloat(getComputedStyle(th).lineHeight)])""")
    for text, height, line in heights:  # 编号, 状态, 办理期限 ... on one line each
        assert height < 2 * line + 18, (text, height, line)
    card = steward.locator("main").bounding_box()
    due = steward.locator("#review th").nth(6).bounding_box()
    assert card is not None and due is not None
    assert due["x"] + due["width"] <= card["x"] + card["width"]  # not cut off
    check(steward.content(), "zh", "review list")
    fits_at_desktop(steward, "review list")
    shots(steward, "steward-1-review-list")
    fits_at_390(steward, "review list")

    # -- approve, narrowed ------------------------------------------------------------------
    steward.click(f"#review-{narrow} a.button")
    steward.wait_for_url(f"{issuer}/portal/catalogue/applications/{narrow}")
    colours = steward.evaluate("""() => ['#approve-submit', '#reject-submit', '#refer-submit']
        .map(s => { const c = getComputedStyle(document.querySelector(s));
                    return [c.backgroundColor, c.color, c.borderColor]; })""")
    approve, reject, refer = colours
    assert approve[0] != reject[0] and approve[1] != reject[1], colours
    assert refer[0] != approve[0], colours
    shots(steward, "steward-2-application-to-decide")
    fits_at_390(steward, "application to decide")
    steward.uncheck('#approve-form label[data-item="driver_phone"] input')
    steward.fill("#approve-form input[name=note]", "手机号不予提供")
    steward.click("#approve-submit")
    steward.wait_for_url(f"{issuer}/portal/catalogue/applications/{narrow}?done=approve")
    assert "授权已生效" in steward.locator("#info").inner_text()
    assert steward.locator("#granted-items").inner_text() == "车牌号、品牌型号"
    assert steward.locator("#removed-items").inner_text() == "驾驶员手机号"
    approved = steward.locator('#timeline li[data-kind="approved"]').inner_text()
    assert "zhang.san" in approved and "手机号不予提供" in approved and "驾驶员手机号" in approved

    # the consumer system reads exactly what was granted, through the proxy
    r = read_vehicles(issuer, system)
    assert r.status_code == 200, r.text
    assert set(r.json()["items"][0]) == {"plate_number", "brand"}

    # -- reject, with a reason --------------------------------------------------------------
    steward.goto(f"{issuer}/portal/catalogue/applications/{refuse}")
    steward.fill("#reject-reason", "里程与费用核算无关")
    steward.click("#reject-submit")
    steward.wait_for_url(f"{issuer}/portal/catalogue/applications/{refuse}?done=reject")
    assert steward.locator("#status").get_attribute("data-status") == "rejected"

    # -- the consumer: what was granted, and an escalation ----------------------------------
    consumer = browser.new_context(locale="zh-CN", viewport=DESKTOP).new_page()
    consumer.goto(f"{issuer}/portal/catalogue/applications")
    sign_in(consumer, "wang.wu")
    consumer.wait_for_url(f"{issuer}/portal/catalogue/applications")
    row = consumer.locator(f'#ours tr[data-application="{narrow}"] td.items')
    assert row.locator(".granted").inner_text() == "车牌号、品牌型号"
    assert row.locator("del").inner_text() == "驾驶员手机号"
    assert "里程与费用核算无关" in consumer.locator(
        f'#ours tr[data-application="{refuse}"]').inner_text()
    shots(consumer, "steward-3-consumer-applications")
    fits_at_390(consumer, "the consumer's applications")
    consumer.goto(f"{issuer}/portal/catalogue/applications/{refuse}")
    consumer.fill("#escalate-reason", "里程是核算依据")
    consumer.click("#escalate-submit")
    consumer.wait_for_url(f"{issuer}/portal/catalogue/applications/{refuse}?done=escalate")
    steps = consumer.locator("#timeline li")
    assert [steps.nth(i).get_attribute("data-kind") for i in range(steps.count())] == [
        "submitted", "rejected", "escalated"]
    assert "里程与费用核算无关" in steps.nth(1).inner_text()
    assert "zhang.san" in steps.nth(1).inner_text()
    assert "里程是核算依据" in steps.nth(2).inner_text()
    check(consumer.content(), "zh", "timeline")
    shots(consumer, "steward-4-timeline")
    fits_at_390(consumer, "timeline")
    consumer.goto(f"{issuer}/portal/catalogue/applications/{refuse}?lang=en")
    assert "Escalated to the security admin" in consumer.locator("#timeline").inner_text()
    typed = consumer.content()
    for value in TYPED:  # what the people here typed is data, in their language
        typed = typed.replace(value, " ")
    check(typed, "en", "timeline (en)")
    shots(consumer, "steward-5-timeline-en")

    # -- our grants: the use, and revoking it -----------------------------------------------
    steward.goto(f"{issuer}/portal/catalogue/grants")
    grant = wf.get(narrow).grant_id
    line = steward.locator(f"#grant-{grant}")
    assert line.locator("td.calls").inner_text() == "1"
    assert line.locator("td.last-used").inner_text().startswith("20")
    assert steward.locator("#grant-1 td.calls").inner_text() == "0"  # the demo's, unused
    fits_at_desktop(steward, "our grants")
    shots(steward, "steward-6-our-grants")
    fits_at_390(steward, "our grants")
    line.locator("input[name=reason]").fill("核算已结束")
    line.locator("button.danger").click()
    steward.wait_for_url(f"{issuer}/portal/catalogue/grants?done=revoke&id={grant}")
    assert steward.locator(f"#grant-{grant}").get_attribute("data-state") == "revoked"
    deadline = time.monotonic() + 2
    while read_vehicles(issuer, system).status_code == 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    steward.goto(f"{issuer}/portal/catalogue/applications/{narrow}")
    revoked = steward.locator('#timeline li[data-kind="revoked"]').inner_text()
    assert "核算已结束" in revoked
