"""The auditor console and the real-use pages in Chromium, against a real gateway with
the demo's three upstream systems behind it on free ports and real traffic through
the proxy (``gateway.demo.traffic``: a client-credentials client and staff signed in
at the portal).

The auditor signs in for real (first password change, authenticator set up), filters
the proxy's records, opens one in its chain, exports CSV and JSON (the files read
back), verifies a range, reads the checkpoints, and sees the real-use charts drawn
from that traffic; staff are refused; a data steward sees their department's charts
and its printable summary. Every page is photographed at desktop width and at 390 px
under the test's output folder (``tmp_path/screenshots``)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from gateway.demo import DEMO_STATE
from gateway.demo.traffic import Traffic, make_traffic
from gateway.services import Services
from gateway.settings import Settings
from gateway.statefile import load_file
from tests.browser import browser_gateway, demo_system, sign_in
from tests.portal.test_browser_account import enrol
from tests.portal.test_browser_newcomer import DESKTOP, Shots, shots  # noqa: F401
from tests.portal.test_catalogue_pages import fast_hashes  # noqa: F401 - a fixture
from tests.portal.test_languages import check
from tests.wiring import apply_state

pytestmark = pytest.mark.slow
ADMIN_FIRST_PASSWORD = "Admin-Passw0rd-2026!"  # tests.oauth2.helpers.make_services
ADMIN_PASSWORD = "Audit-Desk-Lamp-Window-2026"


@pytest.fixture
def world(settings: Settings, fast_hashes: None  # noqa: F811
          ) -> Iterator[tuple[str, Services, Traffic]]:
    """The gateway, the demo's systems behind it, and the traffic already made."""
    with browser_gateway(settings) as (issuer, services), ExitStack() as systems:
        upstreams = {code: systems.enter_context(demo_system(code))
                     for code in ("vehicles", "offices", "assets")}
        doc = load_file(DEMO_STATE)
        apply_state(services, {"systems": [
            {**s, "upstream": upstreams[s["code"]]} for s in doc["systems"]]})
        made: list[Traffic] = []  # in a thread: Playwright's loop stays this thread's
        worker = threading.Thread(target=lambda: made.append(
            asyncio.run(make_traffic(issuer, doc))))
        worker.start()
        worker.join(60)
        assert made, "the traffic did not finish"
        yield issuer, services, made[0]


def new_page(browser: Any) -> Any:
    return browser.new_context(locale="zh-CN", viewport=DESKTOP, accept_downloads=True
                               ).new_page()


def sign_in_auditor(page: Any, issuer: str) -> None:
    """The first sign-in of the auditor account: password, a new one, an authenticator."""
    page.goto(f"{issuer}/portal/audit")
    assert "/portal/login?next=" in page.url
    sign_in(page, "auditor", ADMIN_FIRST_PASSWORD)
    page.wait_for_url(re.compile(r".*/portal/login/change.*"))
    page.fill("#new_password", ADMIN_PASSWORD)
    page.fill("#confirm_password", ADMIN_PASSWORD)
    page.click("#submit")
    page.wait_for_url(re.compile(r".*/portal/login/enrol.*"))
    enrol(page)  # the first code, then the recovery codes kept
    page.wait_for_url(f"{issuer}/portal/audit")


def signed_in(browser: Any, issuer: str, username: str, path: str) -> Any:
    """A new browser of ``username`` (staff), who asked for ``path`` and signed in."""
    page = new_page(browser)
    page.goto(f"{issuer}{path}")
    sign_in(page, username)
    page.wait_for_url(f"{issuer}{path}")
    return page


def total(bars: Any) -> int:
    """The sum of the figures the bars of one chart carry."""
    return sum(int(v) for v in bars.evaluate_all("els => els.map(e => e.dataset.value)"))


def download(page: Any, selector: str) -> str:
    with page.expect_download() as info:
        page.click(selector)
    path = info.value.path()
    with open(path, encoding="utf-8-sig") as f:
        return f.read()


def test_auditor_filters_opens_exports_and_verifies(
        world: tuple[str, Services, Traffic], browser: Any, shots: Shots) -> None:  # noqa: F811
    issuer, services, traffic = world
    assert traffic.calls >= 24 and traffic.refused >= 1
    page = new_page(browser)
    sign_in_auditor(page, issuer)
    check(page.content(), "zh", "audit console")
    shots(page, "audit-1-console")

    # filter: the refused proxy requests on the vehicles system
    page.select_option("#system", "vehicles")
    page.select_option("#event_type", "proxy_request")
    page.select_option("#outcome", "deny")
    page.click("#search-submit")
    page.wait_for_url(re.compile(r".*outcome=deny.*"))
    rows = page.locator("#records tbody tr")
    assert rows.count() == traffic.refused
    assert all(rows.nth(i).get_attribute("class") == "outcome-deny" for i in range(rows.count()))
    shots(page, "audit-2-filtered")

    # one record, in its chain
    page.locator("#records a.record-link").first.click()
    page.wait_for_url(re.compile(r".*/portal/audit/records/\d+$"))
    assert page.locator("#r-outcome").inner_text() == "拒绝"
    assert page.locator("#c-hash-ok").is_visible()
    assert page.locator("#c-prev-ok").is_visible()
    assert len(page.locator("#c-hash code").inner_text()) == 64
    check(page.content(), "zh", "audit record")
    shots(page, "audit-3-record")
    page.go_back()

    # exports of the whole filter: CSV and JSON, read back
    page.goto(f"{issuer}/portal/audit?system=vehicles&event_type=proxy_request")
    on_page = page.locator("#records tbody tr").count()
    rows_csv = list(csv.DictReader(io.StringIO(download(page, "#export-csv"))))
    assert len(rows_csv) == on_page > traffic.refused
    assert {r["system"] for r in rows_csv} == {"vehicles"}
    assert {r["event_type"] for r in rows_csv} == {"proxy_request"}
    assert all(len(r["hash"]) == 64 and r["chain_id"] for r in rows_csv)
    doc = json.loads(download(page, "#export-json"))
    assert doc["count"] == len(doc["records"]) == on_page
    assert doc["filters"] == {"system": "vehicles", "event_type": "proxy_request"}
    assert [r["id"] for r in doc["records"]] == [int(r["id"]) for r in rows_csv]
    granted = [r for r in doc["records"] if r["actor_client"] == "finance-system"
               and r["outcome"] == "allow"]
    assert granted and all("driver_phone" in r["items"] for r in granted)

    # verify a range, then the whole log
    page.click("#audit-nav a[href='/portal/audit/verify']")
    page.fill("#v-since", "2020-01-01T00:00:00")
    page.fill("#v-until", "2099-01-01T00:00:00")
    shots(page, "audit-4-verify-form")
    page.click("#verify-submit")
    result = page.locator("#verify-result")
    result.wait_for()
    assert result.get_attribute("data-intact") == "yes"
    assert page.locator(".verify-progress progress").last.get_attribute("value") == \
        page.locator(".verify-progress progress").last.get_attribute("max")
    check(page.content(), "zh", "verify result")
    shots(page, "audit-5-verify-result")

    services.audit.checkpoint_sync()  # the writer signs one every 5 s: not waited for
    page.goto(f"{issuer}/portal/audit/checkpoints")
    assert page.locator("#checkpoints tbody tr").count() >= 1
    assert "签名无效" not in page.content()
    shots(page, "audit-6-checkpoints")

    # real use: the charts drawn from the traffic
    page.goto(f"{issuer}/portal/stats")
    vehicles = page.locator('section.target[data-code="vehicles"]')
    bars = vehicles.locator("svg.chart-calls rect.daybar")
    assert bars.count() == 30
    assert total(bars) == 13  # finance 6, li.si 3, zhao.min 3, zhang.san 1; refusals not
    assert total(page.locator('section.target[data-code="JG-0001"] svg.chart-items rect.daybar')
                 ) == 6 * 4 + 3 * 3  # the items released to czt: the finance client, zhao.min
    check(page.content(), "zh", "real use")
    shots(page, "stats-1-overview")
    page.goto(f"{issuer}/portal/stats/departments/czt?lang=en")
    assert int(page.locator("#h-consumed").inner_text()) >= 14
    check(page.content(), "en", "department summary")
    page.emulate_media(media="print")
    assert page.locator("header.bar").is_hidden()
    shots(page, "stats-2-czt-summary-print")
    page.emulate_media(media="screen")


def test_staff_refused_steward_sees_their_department(
        world: tuple[str, Services, Traffic], browser: Any, shots: Shots) -> None:  # noqa: F811
    issuer, _, _ = world
    page = signed_in(browser, issuer, "li.si", "/portal/audit")
    assert page.locator("#title").inner_text() == "无权访问"
    shots(page, "refused-1-audit-console")
    api = page.evaluate("fetch('/api/v1/audit/records').then(r => r.status)")
    assert api == 403
    response = page.goto(f"{issuer}/portal/stats")
    assert response is not None and response.status == 403
    shots(page, "refused-2-stats")

    page = signed_in(browser, issuer, "zhang.san", "/portal/stats")
    codes = page.locator("section.target").evaluate_all(
        "els => els.map(e => e.dataset.code)")
    assert sorted(codes) == ["JG-0001", "JG-0002", "offices", "vehicles"]
    offices = page.locator('section.target[data-code="offices"] svg.chart-departments rect.daybar')
    assert max(int(v) for v in offices.evaluate_all(
        "els => els.map(e => e.dataset.value)")) == 3  # czt, jgswj, nn-jgsw
    shots(page, "stats-3-steward")
    page.click("#department-links a")
    page.wait_for_url(re.compile(r".*/portal/stats/departments/jgswj.*"))
    assert int(page.locator("#h-calls").inner_text()) >= 20
    shots(page, "stats-4-jgswj-summary")
    response = page.goto(f"{issuer}/portal/stats/departments/czt")
    assert response is not None and response.status == 403
