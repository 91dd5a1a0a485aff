"""The three admin consoles in Chromium, against a real gateway: each admin signs in
(password, then the TOTP enrolment every admin account needs) and does their work —
the system administrator creates a user who then signs in and must change the
password, the security administrator adds a policy line and tests a decision, the
audit administrator reads what the other two did — and each is refused on another's
page. A department named ``<script>alert(1)</script>`` shows as text, no dialog opens,
and no page breaks its Content-Security-Policy. Every admin page is photographed at
desktop width and at 390 px under the test's output folder (``tmp_path/screenshots``)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from gateway.settings import Settings
from tests.admin.conftest import NEW_PASSWORD, WORLD
from tests.browser import sign_in
from tests.oauth2.live import live_gateway
from tests.portal.test_browser_account import enrol
from tests.portal.test_browser_newcomer import DESKTOP, Shots
from tests.portal.test_catalogue_pages import fast_hashes  # noqa: F401 - a fixture
from tests.wiring import apply_state

pytestmark = pytest.mark.slow
EVIL = "<script>alert(1)</script>"


class Watched:
    """A new browser context's page, with every dialog and CSP report it raised."""

    def __init__(self, browser: Any) -> None:
        self.page = browser.new_context(locale="zh-CN", viewport=DESKTOP).new_page()
        self.dialogs: list[str] = []
        self.violations: list[str] = []

        def on_dialog(dialog: Any) -> None:
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        self.page.on("dialog", on_dialog)
        self.page.on("console", lambda m: self.violations.append(m.text)
                     if "Content Security Policy" in m.text else None)


def admin_signs_in(w: Watched, issuer: str, username: str, password: str, next_url: str
                   ) -> None:
    page = w.page
    page.goto(f"{issuer}/portal/login?next={next_url}")
    sign_in(page, username, password)
    page.wait_for_load_state()
    if "/portal/login/enrol" in page.url:  # every admin account sets up TOTP first
        enrol(page)  # the first code, then the recovery codes kept
    page.wait_for_url(f"{issuer}{next_url}*")


def refused(w: Watched, issuer: str, path: str, shots: Shots, name: str) -> None:
    response = w.page.goto(f"{issuer}{path}")
    assert response is not None and response.status == 403
    assert "三员分立" in w.page.locator("#detail").inner_text()
    shots(w.page, name)


def test_three_admins_at_their_consoles(settings: Settings, fast_hashes: None,  # noqa: F811
                                        browser: Any, tmp_path: Path) -> None:
    shots = Shots(tmp_path / "screenshots")
    with live_gateway(dataclasses.replace(settings)) as (issuer, services):
        apply_state(services, {
            **WORLD, "departments": [*WORLD["departments"],
                                     {"code": "evil", "name": EVIL, "region": "gx"}]})
        for admin in ("sysadmin", "secadmin", "auditor"):
            services.org.change_password(admin, NEW_PASSWORD)

        # -- the system administrator ---------------------------------------------------
        sys_ = Watched(browser)
        page = sys_.page
        admin_signs_in(sys_, issuer, "sysadmin", NEW_PASSWORD, "/portal/admin/users")
        assert page.locator("#admin-nav a[aria-current=page]").inner_text() == "用户"
        page.fill("#n-username", "chen.liu")
        page.fill("#n-name", "陈六")
        page.select_option("#n-department", "czt")
        page.click("#create-user")
        assert page.locator("#title").inner_text() == "用户已创建"
        first = page.locator("#secret").inner_text().strip()
        shots(page, "sysadmin-user-created")
        page.goto(f"{issuer}/portal/admin/users?q=chen")
        assert page.locator("tr[data-user='chen.liu'] td").nth(2).inner_text() == "财政厅"
        shots(page, "sysadmin-users")
        page.goto(f"{issuer}/portal/admin/departments")
        # the department's name is text on the page, and nothing ran
        assert page.locator("tr[data-department=evil] td").first.inner_text() == EVIL
        shots(page, "sysadmin-departments")
        for path, name in (("systems", "systems"), ("systems/assets", "system-edit"),
                           ("clients", "clients"), ("clients/office-web", "client-edit")):
            page.goto(f"{issuer}/portal/admin/{path}")
            assert page.locator("#title").count() == 1
            shots(page, f"sysadmin-{name}")
        page.goto(f"{issuer}/portal/admin/systems/assets")
        page.select_option("#s-identity", "both")
        page.click("#save-system")
        assert "已保存系统 assets" in page.locator("#done").inner_text()
        refused(sys_, issuer, "/portal/admin/policies", shots, "sysadmin-refused-policies")
        refused(sys_, issuer, "/portal/admin/activity", shots, "sysadmin-refused-activity")

        # the new user signs in with the first password and must change it
        newcomer = Watched(browser)
        newcomer.page.goto(f"{issuer}/portal/login")
        sign_in(newcomer.page, "chen.liu", first)
        newcomer.page.wait_for_url(re.compile(r".*/portal/login/change.*"))
        newcomer.page.fill("#new_password", "Chen-Liu-Own-Passw0rd-9")
        newcomer.page.fill("#confirm_password", "Chen-Liu-Own-Passw0rd-9")
        newcomer.page.click("#submit")
        newcomer.page.wait_for_url(f"{issuer}/portal")
        assert newcomer.page.locator("h1").inner_text() == "陈六，您好"
        refused(newcomer, issuer, "/portal/admin/users", shots, "staff-refused-users")

        # -- the security administrator -------------------------------------------------
        sec = Watched(browser)
        page = sec.page
        admin_signs_in(sec, issuer, "secadmin", NEW_PASSWORD, "/portal/admin/policies")
        page.fill("#p-subject", "role:staff")
        page.fill("#p-department", "czt")
        page.fill("#p-object", "/s/assets/api/reports/*")
        page.select_option("#p-action", "GET")
        page.select_option("#p-effect", "deny")
        page.click("#add-line")
        assert "已新增策略行" in page.locator("#done").inner_text()
        page.fill("#t-subject", "user:zhao.min")
        page.select_option("#t-system", "assets")
        page.fill("#t-path", "/api/reports/2026")
        page.click("#run-test")
        assert page.locator("#decision-outcome").inner_text() == "拒绝"
        assert "匹配的策略行" in page.locator("#decision-line").inner_text()
        shots(page, "secadmin-policies-and-test")
        for path in ("grants", "keys", "security"):
            page.goto(f"{issuer}/portal/admin/{path}")
            shots(page, f"secadmin-{path}")
        refused(sec, issuer, "/portal/admin/users", shots, "secadmin-refused-users")

        # -- the audit administrator ----------------------------------------------------
        aud = Watched(browser)
        page = aud.page
        admin_signs_in(aud, issuer, "auditor", NEW_PASSWORD, "/portal/admin/activity")
        actors = set(page.locator("#activity td:nth-child(2)").all_inner_texts())
        assert actors == {"sysadmin", "secadmin"}
        page.select_option("#a-outcome", "deny")
        page.click("#filter")
        assert page.locator("#activity tr[data-outcome=success]").count() == 0
        assert page.locator("#activity tr[data-outcome=deny]").count() == 3
        shots(page, "auditor-activity")
        page.goto(f"{issuer}/portal/admin/activity?lang=en")
        assert page.locator("#title").inner_text() == "Administrators' actions"
        shots(page, "auditor-activity-en")
        refused(aud, issuer, "/portal/admin/keys", shots, "auditor-refused-keys")

        for w in (sys_, newcomer, sec, aud):
            assert w.dialogs == [] and w.violations == []
    assert len(list((tmp_path / "screenshots").glob("*.png"))) >= 36
