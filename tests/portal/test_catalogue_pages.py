"""The catalogue portal pages in process: search, one resource with its duplicate-
collection warning, applying through the form, a data steward approving with
narrowed items, 403 for a non-steward, CSRF; and one real browser run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from starlette.testclient import TestClient

from catalogue.service import operator
from gateway.app import create_app
from gateway.services import Services
from gateway.settings import Settings
from tests.oauth2.helpers import DEMO_PASSWORD, close_services, csrf_of, login, make_services
from tests.wiring import apply_state, parts

CHROMIUM = "/usr/bin/chromium"
UNTIL = (date.today() + timedelta(days=365)).isoformat()


@pytest.fixture
def fast_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    # the demo's accounts at OWASP argon2 cost take seconds: not the subject here
    from argon2 import PasswordHasher

    from gateway import passwords

    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=64,
                                                             parallelism=1))


@pytest.fixture
def portal(settings: Settings, fast_hashes: None) -> Iterator[tuple[Services, TestClient]]:
    services = make_services(settings)
    with TestClient(create_app(parts(services)), base_url="http://127.0.0.1:8080") as c:
        yield services, c
    close_services(services)


def sign_in(client: TestClient, username: str) -> None:
    client.cookies.clear()
    r = login(client, username=username)
    assert r.status_code == 303 and r.headers["location"] == "/portal", r.text


def apply_as_wang(client: TestClient, items: list[str]) -> None:
    sign_in(client, "wang.wu")
    page = client.get("/portal/catalogue/JG-0001")
    assert page.status_code == 200 and 'id="apply"' in page.text
    r = client.post("/portal/catalogue/JG-0001/apply", data={
        "csrf_token": csrf_of(page.text), "items": items, "purpose": "车辆费用核算",
        "basis": "公务用车管理办法", "until": UNTIL}, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert r.headers["location"].startswith("/portal/catalogue/applications?done=applied")


def test_pages_need_a_session(portal: tuple[Services, TestClient]) -> None:
    _, client = portal
    for path in ("/portal/catalogue", "/portal/catalogue/JG-0001",
                 "/portal/catalogue/applications"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/portal/login?")
    r = client.post("/portal/catalogue/applications/1/approve", follow_redirects=False)
    assert r.status_code == 303


def test_search_by_keyword_item_and_filters(portal: tuple[Services, TestClient]) -> None:
    _, client = portal
    sign_in(client, "li.si")
    assert 'href="/portal/catalogue"' in client.get("/portal").text
    r = client.get("/portal/catalogue", params={"q": "公务用车"})
    assert r.status_code == 200
    assert 'data-code="JG-0001"' in r.text and 'data-code="CZ-0001"' not in r.text
    assert "有条件共享" in r.text and "机关事务管理局" in r.text
    r = client.get("/portal/catalogue", params={"item": "驾驶员手机号"})
    assert 'data-code="JG-0001"' in r.text and 'data-code="JG-0002"' not in r.text
    r = client.get("/portal/catalogue", params={"item": "driver_phone", "level": "3"})
    assert 'data-code="JG-0001"' in r.text
    r = client.get("/portal/catalogue", params={"share_type": "none", "department": "czt"})
    assert 'data-code="CZ-0001"' in r.text and 'data-code="JG-0001"' not in r.text
    assert "不予共享" in r.text
    r = client.get("/portal/catalogue", params={"q": "不存在的资源"})
    assert 'id="no-results"' in r.text
    r = client.get("/portal/catalogue", params={"q": "公务用车", "lang": "en"})
    assert "Conditional" in r.text and "Data-sharing catalogue" in r.text


def test_resource_page_items_and_duplicate_warning(portal: tuple[Services, TestClient]
                                                   ) -> None:
    services, client = portal
    cat = parts(services).catalogue
    cat.save(operator("test"), {
        "code": "CZ-0002", "name": "驾驶员补贴名册", "provider": "czt", "system": "assets",
        "share_type": "conditional", "conditions": "补贴核算",
        "route": {"method": "GET", "path": "/api/allowances", "records": "items"},
        "items": [{"name": "driver_id_number", "title": "驾驶员身份证号", "level": 3,
                   "authoritative": True},
                  {"name": "allowance", "title": "补贴金额", "type": "number"}]})
    cat.publish(operator("test"), "CZ-0002")
    sign_in(client, "li.si")
    r = client.get("/portal/catalogue/JG-0001")
    assert r.status_code == 200
    text = r.text
    assert "公务用车基础信息" in text and "仅用于公务用车费用核算" in text
    for item in ("plate_number", "驾驶员姓名", "驾驶员手机号"):
        assert item in text
    assert "保留首字" in text and "3 敏感" in text and "/s/vehicles/api/vehicles" in text
    assert 'id="duplicates"' in text and "CZ-0002" in text and "财政厅" in text
    assert "驾驶员身份证号 (driver_id_number)" in text
    # the provider's own staff cannot apply; the unknown resource is a readable 404
    assert 'id="no-apply"' in text and 'id="apply"' not in text
    assert client.get("/portal/catalogue/JG-0002").text.count('id="duplicates"') == 0
    r = client.get("/portal/catalogue/NOPE-1")
    assert r.status_code == 404 and "NOPE-1" in r.text


def test_apply_approve_narrowed_and_grant(portal: tuple[Services, TestClient]) -> None:
    services, client = portal
    apply_as_wang(client, ["plate_number", "mileage_km", "driver_phone"])
    mine = client.get("/portal/catalogue/applications")
    assert "待审核" in mine.text and "车辆费用核算" in mine.text and 'id="ours"' in mine.text
    wf = parts(services).workflow
    (app,) = wf.applications(consumer="nn-jgsw")
    assert app.status == "submitted" and app.applicant == "wang.wu"

    sign_in(client, "zhang.san")
    page = client.get("/portal/catalogue/applications")
    assert f'id="review-{app.id}"' in page.text and "市机关事务中心" in page.text
    assert f'href="/portal/catalogue/applications/{app.id}"' in page.text
    page = client.get(f"/portal/catalogue/applications/{app.id}")
    assert 'id="approve-form"' in page.text and 'id="reject-form"' in page.text
    r = client.post(f"/portal/catalogue/applications/{app.id}/approve", data={
        "csrf_token": csrf_of(page.text), "items": ["plate_number", "mileage_km"],
        "until": app.until.isoformat(), "note": "手机号不予提供"})
    assert r.status_code == 200 and 'id="info"' in r.text
    assert 'id="removed-items"' in r.text and "驾驶员手机号" in r.text
    (grant,) = wf.grants(resource="JG-0001", consumer="nn-jgsw")
    assert grant.items == ("plate_number", "mileage_km") and grant.approved_by == "zhang.san"
    assert wf.get(app.id).status == "approved"

    sign_in(client, "wang.wu")
    r = client.get("/portal/catalogue/JG-0001")
    assert 'id="grants"' in r.text and "plate_number, mileage_km" in r.text
    assert "仅限" not in r.text  # the department's: any of its systems

    # a grant to one client says so: the department's other systems receive nothing
    # by it (the line read as the whole department's before)
    apply_state(services, {"grants": [{
        "resource": "JG-0001", "consumer": "czt", "client": "finance-system",
        "items": ["plate_number"], "purpose": "对账", "until": "2027-12-31"}]})
    sign_in(client, "zhao.min")
    r = client.get("/portal/catalogue/JG-0001")
    assert ('plate_number · <span class="grant-client">仅限本部门的系统 finance-system</span>'
            ' · 用途：对账') in r.text
    assert "only for your system finance-system" in \
        client.get("/portal/catalogue/JG-0001?lang=en").text


def test_apply_errors_are_readable(portal: tuple[Services, TestClient]) -> None:
    _, client = portal
    sign_in(client, "wang.wu")
    page = client.get("/portal/catalogue/JG-0001")
    r = client.post("/portal/catalogue/JG-0001/apply", data={
        "csrf_token": csrf_of(page.text), "purpose": "", "until": "2020-01-01"})
    assert r.status_code == 400
    assert "请至少选择一个信息项。" in r.text and "使用期限不能早于今天。" in r.text
    assert "请填写用途。" in r.text and "name at least one item" not in r.text
    r = client.post("/portal/catalogue/JG-0001/apply?lang=en", data={
        "csrf_token": csrf_of(page.text), "purpose": "", "until": "2020-01-01"})
    assert "Choose at least one item." in r.text and "Until is in the past." in r.text


def test_staff_who_is_not_steward_gets_403(portal: tuple[Services, TestClient]) -> None:
    services, client = portal
    apply_as_wang(client, ["plate_number"])
    (app,) = parts(services).workflow.applications(consumer="nn-jgsw")
    sign_in(client, "li.si")
    page = client.get("/portal/catalogue/applications")
    assert f'id="review-{app.id}"' not in page.text
    for action, data in (("approve", {"items": ["plate_number"]}),
                         ("reject", {"reason": "不同意"})):
        # no form on li.si's page: the token from the cookie (double submit)
        r = client.post(f"/portal/catalogue/applications/{app.id}/{action}",
                        data={"csrf_token": client.cookies["gg_csrf"], **data})
        assert r.status_code == 403
        verb = "审核" if action == "approve" else "驳回"
        assert f"只有提供方（机关事务管理局）的数据管理员可以{verb}此申请。" in r.text
        assert 'id="request-id"' in r.text and r.headers["x-request-id"] in r.text
    assert parts(services).workflow.get(app.id).status == "submitted"


def test_csrf_missing_is_400(portal: tuple[Services, TestClient]) -> None:
    services, client = portal
    apply_as_wang(client, ["plate_number"])
    (app,) = parts(services).workflow.applications(consumer="nn-jgsw")
    r = client.post("/portal/catalogue/JG-0001/apply", data={
        "items": ["brand"], "purpose": "x", "until": UNTIL})
    assert r.status_code == 400
    sign_in(client, "zhang.san")
    r = client.post(f"/portal/catalogue/applications/{app.id}/approve",
                    data={"items": ["plate_number"]})
    assert r.status_code == 400
    assert parts(services).workflow.get(app.id).status == "submitted"
    assert len(parts(services).workflow.applications(consumer="nn-jgsw")) == 1


@pytest.mark.slow
def test_browser_search_and_open(settings: Settings, fast_hashes: None) -> None:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing")
    from playwright.sync_api import sync_playwright

    from tests.oauth2.live import live_gateway

    with live_gateway(settings) as (issuer, _), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(locale="zh-CN")
            page.goto(f"{issuer}/portal/catalogue")
            assert "/portal/login" in page.url
            page.fill("#username", "wang.wu")
            page.fill("#password", DEMO_PASSWORD)
            page.click("#submit")
            page.wait_for_url(f"{issuer}/portal/catalogue")
            page.fill("#q", "公务用车")
            page.click("#search-submit")
            page.wait_for_url("**/portal/catalogue?*")
            page.click('tr[data-code="JG-0001"] a')
            page.wait_for_url(f"{issuer}/portal/catalogue/JG-0001")
            assert page.locator("#code").inner_text() == "JG-0001"
            assert "有条件共享" in page.locator("#share-type").inner_text()
            assert page.locator("#apply").is_visible()
        finally:
            browser.close()


def test_approval_with_an_until_in_the_past_is_refused(portal: tuple[Services, TestClient]
                                                       ) -> None:
    services, client = portal
    apply_as_wang(client, ["plate_number"])
    wf = parts(services).workflow
    (app,) = wf.applications(consumer="nn-jgsw")
    sign_in(client, "zhang.san")
    page = client.get(f"/portal/catalogue/applications/{app.id}")
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    r = client.post(f"/portal/catalogue/applications/{app.id}/approve", data={
        "csrf_token": csrf_of(page.text), "items": ["plate_number"], "until": yesterday})
    assert r.status_code == 400 and "使用期限不能早于今天。" in r.text
    assert wf.get(app.id).status == "submitted" and not wf.grants(consumer="nn-jgsw")


@pytest.mark.parametrize("field,maximum", [("purpose", 500), ("basis", 2000)])
def test_apply_form_text_at_and_past_its_maximum(portal: tuple[Services, TestClient],
                                                 field: str, maximum: int) -> None:
    """The same maxima as the API and the CLI (catalogue.limits); the form says them."""
    services, client = portal
    sign_in(client, "wang.wu")
    page = client.get("/portal/catalogue/JG-0001")
    assert f'name="{field}" id="{field}" maxlength="{maximum}"' in page.text
    form = {"csrf_token": csrf_of(page.text), "items": ["plate_number"], "purpose": "核算",
            "until": UNTIL}
    r = client.post("/portal/catalogue/JG-0001/apply",
                    data={**form, field: "资" * (maximum + 1)}, follow_redirects=False)
    label = {"purpose": "用途", "basis": "依据"}[field]
    assert r.status_code == 400 and f"{label}不能超过 {maximum} 个字。" in r.text
    assert not parts(services).workflow.applications(consumer="nn-jgsw")
    r = client.post("/portal/catalogue/JG-0001/apply",
                    data={**form, field: "资" * maximum}, follow_redirects=False)
    assert r.status_code == 303, r.text


def test_decision_form_text_at_and_past_its_maximum(portal: tuple[Services, TestClient]
                                                    ) -> None:
    services, client = portal
    apply_as_wang(client, ["plate_number"])
    apply_as_wang(client, ["plate_number"])
    wf = parts(services).workflow
    first, second = wf.applications(consumer="nn-jgsw")
    sign_in(client, "zhang.san")
    page = client.get(f"/portal/catalogue/applications/{first.id}")
    assert 'name="note" maxlength="2000"' in page.text
    assert 'name="reason" maxlength="2000"' in page.text
    csrf = csrf_of(page.text)
    r = client.post(f"/portal/catalogue/applications/{first.id}/approve",
                    data={"csrf_token": csrf, "items": ["plate_number"], "note": "资" * 2001})
    assert r.status_code == 400 and "审核意见不能超过 2000 个字。" in r.text
    r = client.post(f"/portal/catalogue/applications/{first.id}/approve",
                    data={"csrf_token": csrf, "items": ["plate_number"], "note": "资" * 2000})
    assert r.status_code == 200 and wf.get(first.id).status == "approved"
    r = client.post(f"/portal/catalogue/applications/{second.id}/reject",
                    data={"csrf_token": csrf, "reason": "资" * 2001})
    assert r.status_code == 400 and "理由不能超过 2000 个字。" in r.text
    r = client.post(f"/portal/catalogue/applications/{second.id}/reject",
                    data={"csrf_token": csrf, "reason": "资" * 2000})
    assert r.status_code == 200 and wf.get(second.id).status == "rejected"


def session_as(services: Services, client: TestClient, username: str) -> None:
    """A signed-in session without the sign-in steps (an admin's must enrol TOTP)."""
    from gateway.idp.oauth2.provider import SESSION_COOKIE

    client.cookies.clear()
    if services.org.get_user(username).must_change:  # init's admins: changed at first sign-in
        services.org.change_password(username, "Brand-New-Passw0rd-2026!")
    token, _ = parts(services).provider.store.create_session(
        username, "active", amr="pwd otp", absolute_seconds=3600)
    client.cookies.set(SESSION_COOKIE, token)


def test_apply_form_ticks_nothing_and_marks_levels(portal: tuple[Services, TestClient]
                                                   ) -> None:
    """最小必要: the applicant ticks what the purpose needs; every item says its level,
    the sensitive ones are marked."""
    import re

    _, client = portal
    sign_in(client, "wang.wu")
    page = client.get("/portal/catalogue/JG-0001").text
    form = page[page.index('id="apply"'):page.index("</form>", page.index('id="apply"'))]
    assert "checked" not in form
    labels = dict(re.findall(r'<label class="check" data-item="(\w+)">(.*?)</label>', form))
    assert set(labels) == {"plate_number", "brand", "vehicle_type", "mileage_km",
                           "driver_name", "driver_id_number", "driver_phone"}
    assert "分级 1 一般" in labels["plate_number"] and "分级 3 敏感" in labels["driver_phone"]
    marked = {name for name, text in labels.items() if 'class="sensitive"' in text}
    assert marked == {"driver_id_number", "driver_phone"}
    # a refused form keeps what was ticked, and only that
    r = client.post("/portal/catalogue/JG-0001/apply", data={
        "csrf_token": csrf_of(page), "items": ["brand"], "purpose": "", "until": UNTIL})
    assert r.status_code == 400
    assert re.findall(r'value="(\w+)" checked', r.text) == ["brand"]


@pytest.mark.parametrize("admin", ["sysadmin", "secadmin", "auditor"])
def test_admins_see_no_business_systems_and_cannot_apply(
        portal: tuple[Services, TestClient], admin: str) -> None:
    services, client = portal
    session_as(services, client, admin)
    home = client.get("/portal")
    assert home.status_code == 200
    assert 'id="launcher"' not in home.text and 'id="launcher-admin"' in home.text
    assert "管理员账号不使用业务系统" in home.text
    page = client.get("/portal/catalogue/JG-0001")
    assert 'id="apply"' not in page.text and 'id="no-apply"' in page.text
    assert "管理员账号（系统管理员、安全管理员、审计管理员）不申请使用数据" in page.text
    r = client.post("/portal/catalogue/JG-0001/apply", data={
        "csrf_token": client.cookies["gg_csrf"], "items": ["plate_number"], "purpose": "核算",
        "until": UNTIL})
    assert r.status_code == 403
    assert not parts(services).workflow.applications()


def test_an_application_names_one_of_the_departments_systems_and_its_grant_binds_it(
        portal: tuple[Services, TestClient]) -> None:
    """The form had no client field: a department could not say which of its systems
    would use the data, though a grant binds to one. Only the applying department's
    systems are offered; the choice goes to the steward's page and to the grant."""
    services, client = portal
    sign_in(client, "zhao.min")  # 财政厅 (czt): its system finance-system
    page = client.get("/portal/catalogue/JG-0001")
    field = page.text[page.text.index('id="client"'):]
    field = field[:field.index("</select>")]
    assert 'value="finance-system"' in field and "财务核算系统" in field
    assert "office-web" not in field  # 机关事务局's system: not offered
    form = {"csrf_token": csrf_of(page.text), "items": ["plate_number"],
            "purpose": "车辆费用核算", "until": UNTIL}
    r = client.post("/portal/catalogue/JG-0001/apply", data={**form, "client": "office-web"})
    assert r.status_code == 400 and "不是本部门的系统" in r.text
    assert 'value="office-web"' not in r.text
    r = client.post("/portal/catalogue/JG-0001/apply",
                    data={**form, "client": "finance-system"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    wf = parts(services).workflow
    (app,) = wf.applications(consumer="czt")
    assert app.client_id == "finance-system"

    sign_in(client, "zhang.san")
    page = client.get(f"/portal/catalogue/applications/{app.id}")
    assert '<dd id="applied-client"><code>finance-system</code></dd>' in page.text
    r = client.post(f"/portal/catalogue/applications/{app.id}/approve", data={
        "csrf_token": csrf_of(page.text), "items": ["plate_number"],
        "until": app.until.isoformat()})
    assert r.status_code == 200, r.text
    (grant,) = [g for g in wf.grants(resource="JG-0001", consumer="czt")
                if g.application_id == app.id]
    assert grant.client_id == "finance-system"
