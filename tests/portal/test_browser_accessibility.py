"""Accessibility (issue #22 item 8): every portal page, in Chinese and in English, is
checked in Chromium by axe-core (the engine bundled with the PyPI package
``axe-playwright-python``, so nothing is fetched at run time); a ``serious`` or
``critical`` violation fails. The walk reaches each page as a person does: the
sign-in, the forced password change, the authenticator enrolment and its recovery
codes, the code step (with its recovery form), the launcher, the catalogue (search,
resource and apply form, the form's errors, applications, the steward's review), the
account page and its authenticator set-up, the sign-out confirmation and message,
and the 403 and 404 pages. Keyboard basics are checked on the way: the skip link is
the first stop and shows, focus stays visible.

Every violation found, of any impact, is written to ``tmp_path/axe-<lang>.json``
beside the screenshots."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from gateway.services import Services
from tests.browser import sign_in
from tests.conftest import PG_URL
from tests.oauth2.helpers import DEMO_PASSWORD
from tests.portal.test_browser_account import enrol, gateway  # noqa: F401 - a fixture
from tests.portal.test_browser_newcomer import DESKTOP, Shots, shots  # noqa: F401
from tests.portal.test_catalogue_pages import fast_hashes  # noqa: F401 - a fixture

pytestmark = pytest.mark.slow
ADMIN_PASSWORD = "Admin-Passw0rd-2026!"
FAILING = ("serious", "critical")


class Axe:
    """axe-core on the page as it is now; remembers every page it checked."""

    def __init__(self, lang: str, out: Path) -> None:
        from axe_playwright_python.sync_playwright import Axe as Engine

        self.engine = Engine()
        self.lang = lang
        self.out = out
        self.seen: list[str] = []
        self.found: dict[str, list[dict[str, Any]]] = {}

    def __call__(self, page: Any, name: str) -> None:
        assert page.locator("html").get_attribute("lang") == (
            "zh-CN" if self.lang == "zh" else "en"), (name, page.url)
        assert page.locator("th:not([scope])").count() == 0, (name, "a <th> without scope")
        assert page.locator("nav[aria-label]").count() >= 1, (name, "no labelled <nav>")
        violations = self.engine.run(page).response["violations"]
        self.seen.append(name)
        if violations:
            self.found[name] = [{"id": v["id"], "impact": v["impact"], "help": v["help"],
                                 "nodes": [n["target"] for n in v["nodes"]]}
                                for v in violations]
            self.out.write_text(json.dumps(self.found, ensure_ascii=False, indent=1))
        bad = [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
               for v in violations if v["impact"] in FAILING]
        assert not bad, f"{name} [{self.lang}] {page.url}:\n" + "\n".join(bad)


def new_page(browser: Any, issuer: str, lang: str) -> Any:
    context = browser.new_context(locale="zh-CN", viewport=DESKTOP)
    context.add_cookies([{"name": "gg_lang", "value": lang, "url": issuer}])
    return context.new_page()


@pytest.mark.skipif(bool(PG_URL), reason="markup does not depend on the database: the walk "
                    "runs on SQLite; the pages' data paths run on both in tests/portal")
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_portal_page_has_no_serious_violation(
        gateway: tuple[str, Services], browser: Any, shots: Shots,  # noqa: F811
        tmp_path: Path, lang: str) -> None:
    issuer, _ = gateway
    axe = Axe(lang, tmp_path / f"axe-{lang}.json")
    page = new_page(browser, issuer, lang)
    # the engine runs and sees: a page with a picture and no text for it fails
    page.set_content(f'<html lang="{"zh-CN" if lang == "zh" else "en"}"><body><nav '
                     'aria-label="x"></nav><main><img src="data:,"></main></body></html>')
    with pytest.raises(AssertionError, match="image-alt"):
        axe(page, "canary")
    axe.seen.clear()

    # signed out: the sign-in page, a 404; the keyboard's first stop is the skip link
    page.goto(f"{issuer}/portal/login")
    axe(page, "login")
    page.goto(f"{issuer}/portal/no-such-page")
    axe(page, "404")
    page.keyboard.press("Tab")  # (the sign-in page starts in its first field instead)
    assert page.evaluate("document.activeElement.className") == "skip"
    skip = page.locator("a.skip").bounding_box()
    assert skip is not None and skip["x"] >= 0 and skip["y"] >= 0  # shown when focused
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", "")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"

    # an admin's first sign-in: forced change, enrolment, recovery codes, admin home
    page.goto(f"{issuer}/portal")
    sign_in(page, "sysadmin", ADMIN_PASSWORD)
    page.wait_for_url(re.compile(r".*/portal/login/change.*"))
    axe(page, "forced password change")
    page.fill("#new_password", "Brand-New-Passw0rd-2026")
    page.fill("#confirm_password", "Short")
    page.click("#submit")
    page.wait_for_selector("#error")
    axe(page, "forced change with an error")
    page.fill("#new_password", "Brand-New-Passw0rd-2026")
    page.fill("#confirm_password", "Brand-New-Passw0rd-2026")
    page.click("#submit")
    page.wait_for_url(re.compile(r".*/portal/login/enrol.*"))
    axe(page, "enrolment")
    enrol(page, lambda: axe(page, "recovery codes"))
    page.wait_for_url(f"{issuer}/portal")
    axe(page, "home (admin)")
    for path in ("", "/users", "/departments", "/systems", "/clients"):  # their console
        page.goto(f"{issuer}/portal/admin{path}")
        axe(page, f"system administrator console{path}")
    page.goto(f"{issuer}/oauth2/logout")
    axe(page, "sign-out confirmation")
    page.locator("main button[type=submit]").first.click()
    page.wait_for_selector("#title")
    axe(page, "signed out")
    page.goto(f"{issuer}/portal")
    sign_in(page, "sysadmin", "Brand-New-Passw0rd-2026")
    page.wait_for_url(re.compile(r".*/portal/login/totp.*"))
    page.click("#recovery summary")
    axe(page, "code step with the recovery form open")

    # the two other admins' consoles, each after its own first sign-in
    for admin, paths in (("secadmin", ("/portal/admin/policies", "/portal/admin/grants",
                                       "/portal/admin/keys", "/portal/admin/security")),
                         ("auditor", ("/portal/admin/activity", "/portal/audit",
                                      "/portal/audit/records/1", "/portal/audit/verify",
                                      "/portal/audit/checkpoints", "/portal/stats",
                                      "/portal/stats/departments/jgswj"))):
        page.context.clear_cookies()
        page.context.add_cookies([{"name": "gg_lang", "value": lang, "url": issuer}])
        page.goto(f"{issuer}/portal")
        sign_in(page, admin, ADMIN_PASSWORD)
        page.wait_for_url(re.compile(r".*/portal/login/change.*"))
        page.fill("#new_password", "Brand-New-Passw0rd-2026")
        page.fill("#confirm_password", "Brand-New-Passw0rd-2026")
        page.click("#submit")
        page.wait_for_url(re.compile(r".*/portal/login/enrol.*"))
        enrol(page)
        page.wait_for_url(f"{issuer}/portal")
        for path in paths:
            page.goto(f"{issuer}{path}")
            axe(page, f"{admin}: {path}")

    # staff: launcher, catalogue, the apply form and its errors, the 403 page
    page.context.clear_cookies()
    page.context.add_cookies([{"name": "gg_lang", "value": lang, "url": issuer}])
    page.goto(f"{issuer}/portal")
    sign_in(page, "wang.wu")
    page.wait_for_url(f"{issuer}/portal")
    axe(page, "home (launcher)")
    page.goto(f"{issuer}/portal/catalogue?q=%E5%85%AC%E5%8A%A1")
    axe(page, "catalogue search")
    page.goto(f"{issuer}/portal/catalogue/JG-0001")
    axe(page, "resource and apply form")
    page.evaluate("document.querySelector('#apply').noValidate = true")
    page.click("#apply-submit")
    page.wait_for_selector("#error")
    axe(page, "apply form with errors")
    page.check('label[data-item="plate_number"] input')
    page.fill("#purpose", "车辆费用核算")
    page.fill("#until", "2030-12-31")
    page.click("#apply-submit")
    page.wait_for_url(re.compile(r".*/portal/catalogue/applications.*"))
    axe(page, "own applications")
    page.goto(f"{issuer}/portal/catalogue/NOPE-1")
    axe(page, "catalogue 404")
    page.goto(f"{issuer}/s/vehicles/api/vehicles")
    axe(page, "403")

    # a steward: the review; the account page and an authenticator set-up
    page.context.clear_cookies()
    page.context.add_cookies([{"name": "gg_lang", "value": lang, "url": issuer}])
    page.goto(f"{issuer}/portal/catalogue/applications")
    sign_in(page, "zhang.san")
    page.wait_for_url(f"{issuer}/portal/catalogue/applications")
    assert page.locator("#review").count() == 1
    axe(page, "steward review")
    shots(page, f"review-{lang}")
    page.goto(f"{issuer}/portal/catalogue/grants")
    axe(page, "the steward's grants and their use")
    page.goto(f"{issuer}/portal/stats")
    axe(page, "real use (实绩) of the department")
    page.goto(f"{issuer}/portal/account")
    axe(page, "account")
    page.fill("#current_password", "wrong-password-1")
    page.fill("#new_password", "x")
    page.fill("#confirm_password", "x")
    page.click("#password-submit")
    page.wait_for_selector("#error-password")
    axe(page, "account with an error")
    page.click("#enrol-link")
    enrol(page)
    page.wait_for_url(f"{issuer}/portal/account")
    axe(page, "account with an authenticator")
    page.fill("#totp-password", DEMO_PASSWORD)
    page.click("#totp-submit")
    page.wait_for_selector("#secret")
    axe(page, "authenticator set-up (account)")
    shots(page, f"account-authenticator-{lang}")

    assert len(axe.seen) == 40, axe.seen
