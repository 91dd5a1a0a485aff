"""What a newcomer walking the portal in Chromium trips over (issue #22), in a real
browser against a real gateway and a real upstream: browsers get the sign-in and
pages, not JSON (1); pages speak one language (2); the apply form asks for the least
and lays out its controls (3); the admin accounts are not business users (7).

Every page checked is also photographed at desktop width and at 390 px, under the
test's own output folder (``tmp_path/screenshots``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.services import Services
from gateway.settings import Settings
from tests.browser import browser_gateway, demo_system, session_page, sign_in
from tests.portal.test_catalogue_pages import fast_hashes  # noqa: F401 - a fixture
from tests.portal.test_languages import check
from tests.wiring import apply_state

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
pytestmark = pytest.mark.slow


@pytest.fixture
def world(settings: Settings, fast_hashes: None  # noqa: F811
          ) -> Iterator[tuple[str, Services]]:
    """The gateway, and the demo's vehicles system behind it on a free port."""
    with browser_gateway(settings) as (issuer, services), demo_system("vehicles") as vehicles:
        apply_state(services, {"systems": [{
            "code": "vehicles", "name": "公务用车管理平台", "department": "jgswj",
            "upstream": vehicles}]})
        yield issuer, services


class Shots:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, page: Any, name: str) -> None:
        """The page as it is, at desktop width and at 390 px."""
        for label, size in (("desktop", DESKTOP), ("390px", PHONE)):
            page.set_viewport_size(size)
            page.screenshot(path=str(self.folder / f"{name}-{label}.png"), full_page=True)
        page.set_viewport_size(DESKTOP)


@pytest.fixture
def shots(tmp_path: Path) -> Shots:
    return Shots(tmp_path / "screenshots")


def new_page(browser: Any) -> Any:
    return browser.new_context(locale="zh-CN", viewport=DESKTOP).new_page()


def test_browser_signs_in_and_returns_then_gets_pages_not_json(
        world: tuple[str, Services], browser: Any, shots: Shots) -> None:
    """Item 1: /s/ without a session → the sign-in → back to the same address; a 403
    is a Chinese page with the request id and the way to apply; a 404 too."""
    issuer, _ = world
    page = new_page(browser)
    page.goto(f"{issuer}/s/vehicles/?from=launcher")
    assert page.url.startswith(f"{issuer}/portal/login?next=")
    shots(page, "1-login-on-the-way-to-vehicles")
    sign_in(page, "li.si")
    page.wait_for_url(f"{issuer}/s/vehicles/?from=launcher")
    assert page.locator("h1").inner_text() == "公务用车管理平台"

    page = new_page(browser)
    page.goto(f"{issuer}/s/vehicles/api/vehicles")
    sign_in(page, "wang.wu")
    page.wait_for_url(f"{issuer}/s/vehicles/api/vehicles")
    assert page.locator("#title").inner_text() == "无权访问"
    request_id = page.locator("#request-id code").inner_text()
    assert len(request_id) == 32
    check(page.content(), "zh", "403 page")
    shots(page, "1-403-zh")
    page.click("a.lang")
    assert page.locator("#title").inner_text() == "Access denied"
    check(page.content(), "en", "403 page")
    shots(page, "1-403-en")
    page.click("#apply-link a")
    page.wait_for_url(f"{issuer}/portal/catalogue/JG-0001")
    assert page.locator("#apply").is_visible()

    response = page.goto(f"{issuer}/portal/no-such-page?lang=zh")
    assert response is not None and response.status == 404
    assert page.locator("#title").inner_text() == "页面不存在"
    shots(page, "1-404-zh")


def test_browser_catalogue_in_both_languages_and_the_apply_form(
        world: tuple[str, Services], browser: Any, shots: Shots) -> None:
    """Items 2 and 3: the resource page and form errors in one language each; the form
    ticks nothing, shows levels, marks the sensitive items; a checkbox sits beside its
    label, a select is as tall as a text input, controls use the page's font."""
    issuer, _ = world
    page = new_page(browser)
    page.goto(f"{issuer}/portal/catalogue/JG-0001")
    sign_in(page, "wang.wu")
    page.wait_for_url(f"{issuer}/portal/catalogue/JG-0001")
    assert page.locator("#update-cycle").inner_text() == "每日"
    assert page.locator("#share-method").inner_text() == "接口调用"
    check(page.content(), "zh", "resource")
    boxes = page.locator("#apply input[type=checkbox]")
    assert boxes.count() == 7
    assert not any(boxes.nth(i).is_checked() for i in range(boxes.count()))
    assert page.locator("#apply .sensitive").count() == 2
    assert "分级 3 敏感" in page.locator('label[data-item="driver_phone"]').inner_text()
    shots(page, "3-apply-form-zh")

    for size in (DESKTOP, PHONE):  # beside its label, at every width
        page.set_viewport_size(size)
        label = page.locator('label[data-item="plate_number"]')
        box = label.locator("input").bounding_box()
        text = label.locator("span").first.bounding_box()
        assert box is not None and text is not None
        assert box["x"] + box["width"] <= text["x"] + 1, (size, box, text)
        assert box["y"] < text["y"] + text["height"] and text["y"] < box["y"] + box["height"]
        assert box["width"] < 30
    page.set_viewport_size(DESKTOP)
    font = page.evaluate("getComputedStyle(document.body).fontFamily")
    assert page.evaluate(
        "getComputedStyle(document.querySelector('#apply-submit')).fontFamily") == font
    assert page.evaluate(
        "getComputedStyle(document.querySelector('#purpose')).fontFamily") == font

    page.fill("#purpose", "")
    page.evaluate("document.querySelector('#apply').noValidate = true")
    page.fill("#until", "2020-01-01")
    page.click("#apply-submit")
    errors = page.locator("#error").inner_text()
    assert "请至少选择一个信息项。" in errors and "使用期限不能早于今天。" in errors
    check(page.content(), "zh", "apply errors")
    shots(page, "2-apply-errors-zh")
    page.goto(f"{issuer}/portal/catalogue/JG-0001?lang=en")
    assert page.locator("#update-cycle").inner_text() == "daily"
    page.evaluate("document.querySelector('#apply').noValidate = true")
    page.fill("#until", "2020-01-01")
    page.click("#apply-submit")
    assert "Choose at least one item." in page.locator("#error").inner_text()
    check(page.content(), "en", "apply errors")
    shots(page, "2-apply-errors-en")

    page.goto(f"{issuer}/portal/catalogue?lang=zh")
    text_input = page.locator("#q").bounding_box()
    select = page.locator("#share_type").bounding_box()
    assert text_input is not None and select is not None
    assert abs(text_input["height"] - select["height"]) <= 2
    assert abs(text_input["width"] - select["width"]) <= 2
    shots(page, "3-search-zh")


def test_browser_admin_sees_no_business_systems_and_cannot_apply(
        world: tuple[str, Services], browser: Any, shots: Shots) -> None:
    """Item 7: the auditor (三员) sees no launcher entries and no apply form."""
    issuer, services = world
    services.org.change_password("auditor", "Brand-New-Passw0rd-2026!")
    page = session_page(browser, issuer, services, "auditor", amr="pwd otp",
                        locale="zh-CN", viewport=DESKTOP)
    page.goto(f"{issuer}/portal")
    assert page.locator("#launcher").count() == 0
    assert "管理员账号不使用业务系统" in page.locator("#launcher-admin").inner_text()
    assert "审计管理员" in page.locator("p.meta").first.inner_text()
    shots(page, "7-auditor-home-zh")
    page.goto(f"{issuer}/portal?lang=en")
    assert "auditor" in page.locator("p.meta").first.inner_text()
    check(page.content(), "en", "auditor home")
    shots(page, "7-auditor-home-en")
    page.goto(f"{issuer}/portal/catalogue/JG-0001?lang=zh")
    assert page.locator("#apply").count() == 0
    assert "不申请使用数据" in page.locator("#no-apply").inner_text()
    shots(page, "7-auditor-resource-zh")
