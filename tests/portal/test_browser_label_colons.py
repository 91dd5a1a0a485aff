"""A label's colon in the page's language (walk of 2026-12-05, fourth): the Chinese
pages wrote an ASCII colon after a translated label (所属部门: 财政厅 on the home page,
导出当前条件的全部记录: on the audit console, 提供方: and 同意的信息项: ...; 未同意的
信息项: in an application), where every other Chinese sentence uses ：and ；."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gateway.services import Services
from gateway.settings import Settings
from tests.browser import browser_gateway, session_page
from tests.portal.test_catalogue_pages import fast_hashes  # noqa: F401 - a fixture

pytestmark = pytest.mark.slow


@pytest.fixture
def gateway(settings: Settings, fast_hashes: None  # noqa: F811
            ) -> Iterator[tuple[str, Services]]:
    with browser_gateway(settings) as world:
        yield world


@pytest.mark.parametrize(("lang", "home_line", "exports"), [
    ("zh", "所属部门：财政厅 · 角色：", "导出当前条件的全部记录：CSV"),
    ("en", "Department: 财政厅 · Roles: ", "Export every record of this filter: CSV"),
])
def test_labels_take_the_languages_colon(gateway: tuple[str, Services], browser: Any,
                                         lang: str, home_line: str, exports: str) -> None:
    issuer, services = gateway
    page = session_page(browser, issuer, services, "zhao.min", amr="pwd otp")
    page.goto(f"{issuer}/portal?lang={lang}")
    assert page.locator("main p.meta").first.inner_text().startswith(home_line)
    page.context.close()

    services.org.change_password("auditor", "Audit-Desk-Lamp-Window-2026")
    page = session_page(browser, issuer, services, "auditor", amr="pwd otp")
    page.goto(f"{issuer}/portal/audit?lang={lang}")
    assert page.locator("#exports").inner_text().startswith(exports)
    page.context.close()
