"""The real-use (实绩) pages in-process: who sees which departments, the inline SVG
charts with one bar per day carrying the day's figure, the idle list, unused grants
with the revoke suggestion, the printable department summary, refusals (403 page,
audited), one language per page."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.services import Services
from gateway.settings import Settings
from tests.gateway.test_real_use import delivered
from tests.oauth2.helpers import audit_events, close_services, make_services
from tests.portal.test_audit_console import as_admin
from tests.portal.test_catalogue_pages import fast_hashes, sign_in  # noqa: F401 - fixture
from tests.portal.test_languages import check
from tests.wiring import parts


@pytest.fixture
def portal(settings: Settings, fast_hashes: None  # noqa: F811
           ) -> Iterator[tuple[Services, TestClient]]:
    services = make_services(settings)
    services.audit.append_many_sync([
        delivered("zhao.min", "czt", "vehicles", "JG-0001", ("plate_number", "brand")),
        delivered("zhao.min", "czt", "vehicles", "JG-0001", ("plate_number", "brand")),
        delivered("wang.wu", "nn-jgsw", "offices", "JG-0002", ("room_id",)),
    ])
    with TestClient(create_app(parts(services)), base_url="http://127.0.0.1:8080") as c:
        yield services, c
    close_services(services)


def bars(html: str, code: str, measure: str) -> list[int]:
    """The data-value of every bar of one target's chart of one measure."""
    section = re.search(rf'<section class="target" data-kind="\w+" data-code="{code}">(.*?)'
                        r"</section>", html, re.S)
    assert section, code
    chart = re.search(rf'<svg[^>]*class="chart chart-{measure}"(.*?)</svg>', section.group(1),
                      re.S)
    assert chart, (code, measure)
    return [int(v) for v in re.findall(r'data-value="(\d+)"', chart.group(1))]


def test_auditor_sees_every_system_charted_by_day(portal: tuple[Services, TestClient]) -> None:
    services, client = portal
    as_admin(services, client, "auditor")
    r = client.get("/portal/stats", params={"lang": "zh"})
    assert r.status_code == 200
    check(r.text, "zh", "stats overview")
    assert "script" not in r.text.lower()
    calls = bars(r.text, "vehicles", "calls")
    assert len(calls) == 30 and calls[-1] == 2 and sum(calls) == 2
    assert bars(r.text, "vehicles", "departments")[-1] == 1
    assert bars(r.text, "vehicles", "items")[-1] == 4
    assert bars(r.text, "JG-0002", "users")[-1] == 1
    assert bars(r.text, "assets", "calls") == [0] * 30
    assert re.search(r'id="h-calls">3<', r.text) and re.search(r'id="h-items">5<', r.text)
    assert re.search(r'id="idle".*data-code="assets".*data-code="CZ-0001"', r.text, re.S)
    assert 'data-grant="' in r.text and "很少使用" in r.text  # czt's grant: 2 calls
    r = client.get("/portal/stats", params={"lang": "en", "days": "90"})
    check(r.text, "en", "stats overview en")
    assert len(bars(r.text, "vehicles", "calls")) == 90
    assert 'href="/portal/stats/departments/czt?days=90"' in r.text

    page = client.get("/portal/stats/departments/jgswj", params={"lang": "zh"})
    assert page.status_code == 200
    check(page.text, "zh", "department summary")
    assert re.search(r'id="h-calls">3<', page.text) and re.search(
        r'id="h-departments">2<', page.text)
    assert "summary-page" in page.text  # the print layout
    page = client.get("/portal/stats/departments/czt", params={"lang": "en"})
    check(page.text, "en", "department summary en")
    assert re.search(r'id="h-consumed">2<', page.text)
    assert client.get("/portal/stats/departments/nope").status_code == 404


def test_who_sees_what(portal: tuple[Services, TestClient]) -> None:
    services, client = portal
    r = client.get("/portal/stats", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/portal/login?next=")
    sign_in(client, "li.si")  # staff
    r = client.get("/portal/stats", headers={"Accept": "text/html"})
    assert r.status_code == 403 and "无权访问" in r.text
    assert client.get("/portal/stats/departments/jgswj").status_code == 403
    assert 'id="nav-stats"' not in client.get("/portal").text

    sign_in(client, "zhao.min")  # the finance department's steward: its own part
    home = client.get("/portal")
    assert 'id="nav-stats"' in home.text and 'id="nav-audit"' not in home.text
    r = client.get("/portal/stats")
    assert r.status_code == 200
    codes = set(re.findall(r'<section class="target" data-kind="\w+" data-code="([^"]+)"',
                           r.text))
    assert codes == {"assets", "CZ-0001"}
    assert client.get("/portal/stats/departments/czt").status_code == 200
    assert client.get("/portal/stats/departments/jgswj").status_code == 403

    as_admin(services, client, "sysadmin")  # the platform's: at the top, sees all
    r = client.get("/portal/stats")
    assert 'data-code="vehicles"' in r.text and 'data-code="JG-0002"' in r.text
    reads = [(e["actor_user"], e["outcome"], json.loads(e["extra"])["path"])
             for e in audit_events(services, "stats_query")]
    assert ("li.si", "deny", "/portal/stats") in reads
    assert ("li.si", "deny", "/portal/stats/departments/jgswj") in reads
    assert ("zhao.min", "deny", "/portal/stats/departments/jgswj") in reads
    assert ("sysadmin", "success", "/portal/stats") in reads
