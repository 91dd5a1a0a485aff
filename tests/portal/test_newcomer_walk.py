"""What the newcomer's walk of ``govgate demo`` (2026-12-05, both languages) found on
the portal's pages, each as a plain request or a pure check (docs/seams.md, "Walk of
2026-12-05")."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import pyotp
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from audit.tables import records as audit_records
from gateway.cli.demo_guide import account_lines
from gateway.services import Services
from gateway.web.portal.i18n import Translator
from tests.oauth2.helpers import csrf_of
from tests.portal.test_catalogue_pages import (  # noqa: F401 - a fixture
    fast_hashes,
    session_as,
    sign_in,
)
from tests.portal.test_languages import check, portal  # noqa: F401 - a fixture

ROOT = Path(__file__).resolve().parents[2]
# where an audit record's event type is written as a literal
EVENT_LITERALS = (
    re.compile(r'event_type\s*=\s*"([a-z_]+)"'),
    re.compile(r'^\s*EVENT\s*=\s*"([a-z_]+)"', re.M),
    re.compile(r'_record\(\s*request,\s*"([a-z_]+)"'),
    re.compile(r'(?:cli_ctx|account)\.record\(\s*"([a-z_]+)"'),
    re.compile(r'event = "([a-z_]+)" if give_up else "([a-z_]+)"'),
    re.compile(r'self\._record\("(application_[a-z_]+)"'),
)


def emitted_event_types() -> set[str]:
    found: set[str] = set()
    for package in ("gateway", "audit", "catalogue", "policies", "keys"):
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            for pattern in EVENT_LITERALS:
                for match in pattern.finditer(text):
                    found.update(g for g in match.groups() if g)
    return found


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_event_type_has_a_name_in_the_audit_console(lang: str) -> None:
    """The console's event-type list and its rows showed ``application_referred``,
    ``break_glass`` (and the SAML, security-key, referral-notice ... events) by their
    code on the Chinese and the English page alike."""
    t = Translator(lang)
    events = emitted_event_types()
    assert {"application_referred", "break_glass", "saml_login", "login"} <= events
    unnamed = sorted(e for e in events if not t.knows("aud_ev_" + e))
    assert not unnamed, f"audit events without a {lang} name: {unnamed}"


def test_a_break_glass_form_error_leads_back_to_the_form_not_to_a_console(
        portal: tuple[Services, TestClient]) -> None:  # noqa: F811
    """Staff who left the reason empty got an error page whose only way on was the
    admin console (``/portal/admin``), which refuses them."""
    _, client = portal
    sign_in(client, "wang.wu")
    page = client.get("/portal/break-glass")
    for lang, back in (("zh", "返回紧急授权"), ("en", "Back to break-glass")):
        r = client.post("/portal/break-glass", params={"lang": lang}, data={
            "csrf_token": csrf_of(page.text), "system": "vehicles", "reason": " ",
            "minutes": "60"})
        assert r.status_code == 400, r.text[:300]
        main = r.text.split('id="main"', 1)[1]
        assert 'href="/portal/admin"' not in main
        assert f'<a href="/portal/break-glass" id="back">{back}</a>' in main
        check(r.text, lang, "break-glass form error")
    assert client.get("/portal/admin", follow_redirects=False).status_code in (303, 403)


def test_delegations_in_beijing_time_and_the_search_count_in_english(
        portal: tuple[Services, TestClient]) -> None:  # noqa: F811
    """The delegations page gave its periods in UTC (``UTC`` on the Chinese page, the
    last day ending at 16:00) where every other page says Beijing time; the English
    search said "1 resources"."""
    _, client = portal
    sign_in(client, "zhang.san")
    form = client.get("/portal/delegations")
    r = client.post("/portal/delegations", data={
        "csrf_token": csrf_of(form.text), "delegate": "li.si", "systems": ["vehicles"],
        "ends_at": (date.today() + timedelta(days=3)).isoformat(), "reason": "出差"},
        follow_redirects=True)
    assert r.status_code == 200 and 'id="delegation-' in r.text, r.text[:300]
    (row,) = re.findall(r'<td class="nowrap">([^<]* – [^<]*)</td>', r.text)
    assert row.endswith("(北京时间)") and "UTC" not in r.text, row
    assert row.split(" – ")[1].startswith(
        (date.today() + timedelta(days=4)).isoformat() + " 00:00"), row  # the last day's end
    check(r.text, "zh", "delegations")
    en = client.get("/portal/delegations", params={"lang": "en"})
    assert "(China Standard Time)" in en.text and "UTC" not in en.text

    found = client.get("/portal/catalogue", params={"lang": "en", "q": "公务用车"})
    assert "Resources found: 1" in found.text and "1 resources" not in found.text


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_demo_printout_sends_the_auditor_to_the_audit_console(lang: str) -> None:
    """``govgate demo`` printed the auditor's place as ``/portal/admin`` only, where the
    audit log is not (README: the console is ``/portal/audit``)."""
    lines = account_lines({"users": []}, [("auditor", "x")], password="p", lang=lang)
    (auditor,) = [line for line in lines if line.strip().startswith("auditor")]
    assert "/portal/audit" in auditor and "/portal/admin" in auditor, auditor


def test_the_users_filter_offers_every_role(
        portal: tuple[Services, TestClient]) -> None:  # noqa: F811
    """The system admin's role filter had no department head (部门负责人), though the
    new-user form gives that role and the list shows it."""
    services, client = portal
    session_as(services, client, "sysadmin")
    page = client.get("/portal/admin/users", params={"lang": "zh"})
    select = page.text.split('id="f-role"', 1)[1].split("</select>", 1)[0]
    assert '<option value="dept_head">部门负责人</option>' in select
    heads = client.get("/portal/admin/users", params={"role": "dept_head"})
    rows = heads.text.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert "zhou.ling" in rows and "zhang.san" not in rows


def test_one_approval_of_two_says_that_break_glass_still_waits(
        portal: tuple[Services, TestClient]) -> None:  # noqa: F811
    """The first security administrator's approval answered "已批准" while the request
    stayed pending (the demo has one such administrator), and offered the same
    administrator the approve button again."""
    services, client = portal
    sign_in(client, "wang.wu")
    page = client.get("/portal/break-glass")
    r = client.post("/portal/break-glass", data={
        "csrf_token": csrf_of(page.text), "system": "vehicles", "reason": "车辆起火",
        "minutes": "60"}, follow_redirects=False)
    assert r.status_code == 303, r.text[:300]
    bg_id = r.headers["location"].rsplit("target=", 1)[1]
    session_as(services, client, "secadmin")
    page = client.get("/portal/break-glass")
    assert f'action="/portal/break-glass/{bg_id}/approve"' in page.text
    r = client.post(f"/portal/break-glass/{bg_id}/approve", data={
        "csrf_token": csrf_of(page.text)})
    assert r.status_code == 200 and f'data-bg="{bg_id}" data-state="pending"' in r.text
    assert f"已批准 {bg_id}：还须另一名安全管理员批准才生效" in r.text
    assert f'action="/portal/break-glass/{bg_id}/approve"' not in r.text
    en = client.get(r.url.path, params={**dict(r.url.params), "lang": "en"})
    assert "it takes effect once another security administrator approves" in en.text


def test_an_authenticator_set_up_at_sign_in_is_recorded_as_the_persons(
        portal: tuple[Services, TestClient]) -> None:  # noqa: F811
    """The auditor's console showed every admin's first-sign-in enrolment as an
    ``admin_change`` by the gateway's OS account (``os:root@...``), not by the admin."""
    services, client = portal
    sign_in(client, "wang.wu")
    page = client.get("/portal/login/enrol")
    secret = re.search(r'<code id="secret">([A-Z2-7]+)</code>', page.text)
    assert secret is not None, page.text[:300]
    r = client.post("/portal/login/enrol", data={
        "csrf_token": csrf_of(page.text), "next": "/portal",
        "code": pyotp.TOTP(secret.group(1)).now()})
    assert r.status_code == 200 and 'id="codes"' in r.text, r.text[:300]
    with services.engine.connect() as conn:
        (actor,) = conn.execute(sa.select(audit_records.c.actor_user).where(
            audit_records.c.event_type == "admin_change",
            audit_records.c.reason == "user_totp_enrolled")).one()
    assert actor == "wang.wu"
