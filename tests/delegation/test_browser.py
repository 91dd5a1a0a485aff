"""Delegation in Chromium against a real gateway with the demo's vehicles system behind
it: 张三 asks, 周玲 approves from her queue, 李四 sees 代理 张三 on the launcher, acts,
opens the system (recorded as 张三 acted for by 李四), 张三 revokes and 李四's next
page is refused."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from audit.tables import records
from gateway.services import Services
from tests.browser import browser, sign_in  # noqa: F401 - browser: one Chromium per module
from tests.portal.test_browser_newcomer import (  # noqa: F401 - world: a fixture
    new_page,
    world,
)
from tests.portal.test_catalogue_pages import fast_hashes  # noqa: F401 - a fixture

pytestmark = pytest.mark.slow


def _last_vehicles_record(services: Services) -> Any:
    with services.engine.connect() as conn:
        return conn.execute(sa.select(records).where(
            records.c.event_type == "proxy_request", records.c.system == "vehicles")
            .order_by(records.c.id.desc()).limit(1)).first()


def test_request_approve_act_and_revoke_in_a_browser(
        world: tuple[str, Services], browser: Any) -> None:  # noqa: F811
    issuer, services = world
    a = new_page(browser)
    a.goto(f"{issuer}/portal/delegations")
    sign_in(a, "zhang.san")
    a.wait_for_url(f"{issuer}/portal/delegations")
    a.fill("input[name=delegate]", "li.si")
    a.check("input[name=systems][value=vehicles]")
    a.fill("input[name=ends_at]",
           (services.clock() + timedelta(days=3)).date().isoformat())
    a.fill("input[name=reason]", "出差三天")
    a.click("#request-submit")
    assert "等待部门负责人批准" in a.locator("#info").inner_text()
    number = a.locator("#delegations tbody tr").first.get_attribute("id").split("-")[1]

    head = new_page(browser)
    head.goto(f"{issuer}/portal/delegations")
    sign_in(head, "zhou.ling")
    head.wait_for_url(f"{issuer}/portal/delegations")
    head.click(f"#approve-{number}")
    assert f"已批准委托 #{number}" in head.locator("#info").inner_text()

    b = new_page(browser)
    b.goto(f"{issuer}/portal")
    sign_in(b, "li.si")
    b.wait_for_url(f"{issuer}/portal")
    entry = b.locator("#launcher-delegated a[data-system=vehicles]")
    assert "代理 张三" in entry.inner_text()
    b.goto(f"{issuer}/portal/delegations")
    b.click(f"#act-{number}")
    b.wait_for_url(f"{issuer}/portal")
    assert b.locator("#home-acting").is_visible()
    b.click("#launcher-delegated a[data-system=vehicles]")
    b.wait_for_load_state()
    assert b.locator("h1").inner_text() == "公务用车管理平台"
    row = _last_vehicles_record(services)
    assert row.actor_user == "zhang.san" and row.outcome == "allow"
    assert json.loads(row.extra)["act"] == {"sub": "li.si"}

    a.goto(f"{issuer}/portal/delegations")
    a.click(f"#revoke-{number}")
    assert a.locator(f"#delegation-{number}").get_attribute("data-state") == "revoked"
    answer = b.goto(f"{issuer}/s/vehicles/")
    assert answer is not None and answer.status == 403
    row = _last_vehicles_record(services)
    assert row.outcome == "deny" and row.reason == f"delegation {number} is revoked"
