"""The consoles speak the page's language (walk of 2026-12-05, third; docs/seams.md):
an audit record's reason, stored as the gateway wrote it (English), is read in
Chinese on the Chinese page where it is one of the gateway's templates, the stored
text beside it; an administrative change is named, not shown by its key; scopes,
grant types and policy subjects carry their names beside their codes; the account
page's passkey note says what a person can do, the settings only on the admin page."""

from __future__ import annotations

import dataclasses
import re
import time
from datetime import UTC, datetime
from pathlib import Path

from starlette.testclient import TestClient

from audit import AuditRecord
from catalogue.decision import Caller, decide
from gateway.admin.sysadmin import CLIENT_ACTIONS, USER_ACTIONS
from gateway.services import Services
from gateway.web.portal.i18n import Translator
from policies.engine import PolicyIndex
from tests.admin.conftest import as_session, world  # noqa: F401 - a fixture
from tests.admin.test_admin_languages import _check as check
from tests.oauth2.helpers import csrf_of
from tests.portal.test_catalogue_pages import fast_hashes  # noqa: F401 - a fixture
from tests.portal.test_newcomer_walk import emitted_event_types
from tests.wiring import parts

EVENT_TYPES = emitted_event_types()

PERSON_TYPED = "车辆起火，需紧急调度"


def _records(services: Services) -> dict[str, str]:
    """Reasons written by the real engines (a policy default, a catalogue decision) and
    by hand, appended as the proxy and the consoles append theirs."""
    deny = PolicyIndex().decide_caller("wang.wu", None, frozenset({"staff"}), "nn-jgsw",
                                       "/s/vehicles/api/vehicles", "GET", "jgswj").reason
    resource = parts(services).catalogue.get("JG-0001")
    conditional = decide(resource, Caller("nn-jgsw"), [], datetime.now(UTC)).reason
    reasons = {"deny": deny, "conditional": conditional, "typed": PERSON_TYPED,
               "login": "password accepted; next step change"}
    services.audit.append_many_sync([
        AuditRecord(event_type="proxy_request", outcome="deny", actor_user="wang.wu",
                    department="nn-jgsw", system="vehicles", status=403, reason=deny,
                    request_id="req-policy"),
        AuditRecord(event_type="proxy_request", outcome="deny", actor_user="wang.wu",
                    department="nn-jgsw", system="vehicles", resource="JG-0001",
                    status=403, reason=conditional, request_id="req-catalogue"),
        AuditRecord(event_type="break_glass", outcome="success", actor_user="wang.wu",
                    reason=PERSON_TYPED, request_id="req-typed"),
        AuditRecord(event_type="login", outcome="success", actor_user="wang.wu",
                    reason="password accepted; next step change", request_id="req-login"),
    ])
    return reasons


def _cell(page: str, marker: str) -> str:
    """The reason cell of the row whose record holds ``marker`` in its stored reason."""
    for row in re.findall(r"<tr data-id=.*?</tr>", page, flags=re.S):
        if marker in row:
            return row.split('<td class="reason">', 1)[1].split("</td>", 1)[0]
    raise AssertionError(f"no row with {marker!r}")


def test_the_audit_console_reads_the_gateways_reasons_in_chinese(
        world: tuple[Services, TestClient]) -> None:  # noqa: F811
    services, client = world
    reasons = _records(services)
    assert reasons["deny"].startswith("deny by default rule")  # the engines' own words
    as_session(services, client, "auditor")
    zh = client.get("/portal/audit", params={"lang": "zh"})
    assert zh.status_code == 200, zh.text[:300]
    check(zh.text, "zh", "audit search (zh)")
    deny = _cell(zh.text, "not nn-jgsw")
    assert "按默认规则拒绝：没有允许它的策略，且该系统属于部门 <code>jgswj</code>" in deny, deny
    assert "not nn-jgsw" in deny  # the stored text, a hover away (title)
    assert "有条件共享：部门 <code>nn-jgsw</code> 没有授权" in _cell(zh.text, "(有条件共享)")
    assert "口令正确；下一步：修改密码" in _cell(zh.text, "next step change")
    typed = _cell(zh.text, PERSON_TYPED)  # a person's words stay as written
    assert typed == f"<code>{PERSON_TYPED}</code>", typed
    assert 'id="reason-hint"' in zh.text

    en = client.get("/portal/audit", params={"lang": "en"})
    check(en.text, "en", "audit search (en)")
    assert f"<code>{reasons['deny']}</code>" in _cell(en.text, "not nn-jgsw")
    assert "按默认规则" not in en.text

    # the record: the reading, and the stored text under it
    (rid,) = re.findall(r'<tr data-id="(\d+)"[^>]*>(?:(?!</tr>).)*next step change',
                        zh.text, flags=re.S)
    record = client.get(f"/portal/audit/records/{rid}", params={"lang": "zh"})
    check(record.text, "zh", "audit record (zh)")
    assert '<span id="r-reason-reading">口令正确；下一步：修改密码</span>' in record.text
    assert ('<span id="r-reason-stored" class="meta">记录原文：'
            '<code>password accepted; next step change</code></span>') in record.text
    record_en = client.get(f"/portal/audit/records/{rid}", params={"lang": "en"})
    assert 'id="r-reason-reading"' not in record_en.text
    assert "<code>password accepted; next step change</code>" in record_en.text


def test_the_admin_activity_names_each_change(
        world: tuple[Services, TestClient]) -> None:  # noqa: F811
    services, client = world
    as_session(services, client, "sysadmin")
    page = client.get("/portal/admin/users")
    r = client.post("/portal/admin/users/li.si/disable", data={
        "csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303, r.text[:300]
    as_session(services, client, "auditor")
    for lang, changed in (("zh", "停用用户"), ("en", "user disabled")):
        page = client.get("/portal/admin/activity", params={"lang": lang})
        assert page.status_code == 200, page.text[:300]
        whats = re.findall(r'<td class="what">(.*?)</td>', page.text, flags=re.S)
        assert f"{changed} <code>user_disable</code>" in whats, whats
        check(page.text, lang, "admin activity")


def test_policy_subjects_and_grant_items_are_named_beside_their_codes(
        world: tuple[Services, TestClient]) -> None:  # noqa: F811
    services, client = world
    as_session(services, client, "secadmin")
    for subject in ("user:zhang.san", "role:data_steward"):
        add = client.post("/portal/admin/policies", data={
            "csrf_token": csrf_of(client.get("/portal/admin/policies").text),
            "subject": subject, "department": "jgswj", "object": "/s/vehicles/api/*",
            "action": "GET", "effect": "allow", "ungoverned": ""}, follow_redirects=False)
        assert add.status_code == 303, add.text[:300]
    for lang, role, user, reading in (("zh", "角色 数据管理员", "用户 张三", "按默认规则拒绝"),
                                      ("en", "role data steward", "user 张三", None)):
        page = client.get("/portal/admin/policies", params={
            "lang": lang, "subject": "user:wang.wu", "system": "vehicles",
            "path": "/api/rooms", "method": "GET"})
        assert page.status_code == 200, page.text[:300]
        subjects = re.findall(r'<td class="subject">(.*?)</td>', page.text, flags=re.S)
        assert f'<code>user:zhang.san</code><br><span class="meta">{user}</span>' in subjects
        assert any(f'<span class="meta">{role}</span>' in s for s in subjects), subjects
        decision = page.text.split('id="decision-reason"', 1)[1].split("</p>", 1)[0]
        if reading:
            assert f'<span id="decision-reading">{reading}' in decision, decision
        else:
            assert 'id="decision-reading"' not in decision
        check(page.text.replace("张三", " ").replace("王五", " "), lang, "policies")
        grants = client.get("/portal/admin/grants", params={"lang": lang})
        items = re.findall(r'<td class="items">(.*?)</td>', grants.text, flags=re.S)
        assert any("<code>plate_number</code> 车牌号" in i for i in items), items
        check(grants.text, lang, "grants")


NAMED = [
    ("zh", ("<code>openid</code> 登录身份", "<code>proxy</code> 通过网关访问各业务系统",
            "<code>client_credentials</code> 应用自身凭证")),
    ("en", ("<code>openid</code> sign-in identity",
            "<code>proxy</code> every system through the gateway",
            "<code>client_credentials</code> client credentials"))]


def test_scopes_and_grant_types_are_named_beside_their_codes(
        world: tuple[Services, TestClient]) -> None:  # noqa: F811
    services, client = world
    as_session(services, client, "sysadmin")
    for lang, names in NAMED:
        page = client.get("/portal/admin/clients", params={"lang": lang})
        assert page.status_code == 200, page.text[:300]
        for name in names:
            assert name in page.text, name
        check(page.text, lang, "clients")
        one = client.get("/portal/admin/clients/office-web", params={"lang": lang})
        assert names[0] in one.text.split('id="client-scopes"', 1)[1]
        check(one.text, lang, "a client")


def test_the_passkey_note_tells_staff_what_to_do_and_the_admin_which_settings(
        world: tuple[Services, TestClient]) -> None:  # noqa: F811
    services, client = world
    was = services.settings
    services.settings = dataclasses.replace(was, issuer="http://127.0.0.1:8080")
    try:
        for lang, can_do in (("zh", "请继续用身份验证器应用中的动态口令完成第二步验证"),
                             ("en", "Keep using the code from your authenticator app")):
            as_session(services, client, "li.si")
            page = client.get("/portal/account", params={"lang": lang})
            note = page.text.split('id="passkeys-unusable"', 1)[1].split("</p>", 1)[0]
            assert can_do in note and "webauthn" not in note, note
            check(page.text, lang, "account")
            as_session(services, client, "secadmin")
            security = client.get("/portal/admin/security", params={"lang": lang})
            admin_note = security.text.split('id="passkeys-unusable"', 1)[1].split("</p>", 1)[0]
            assert "<code>webauthn_rp_id</code>" in admin_note, admin_note
            check(security.text, lang, "security settings")
    finally:
        services.settings = was


ROOT = Path(__file__).resolve().parents[2]
CHANGE_LITERALS = re.compile(
    r'(?:trail\.changed|trail\.collect|record_admin_change|_record|on_change|\bstep =)'
    r'\(?\s*"([a-z]+_[a-z_]+)"')


def test_every_admin_change_has_a_name_in_both_languages() -> None:
    """The activity view and the audit console showed an administrative change by its
    key (``user_password_changed``): each key the gateway writes has a name."""
    found = {f"user_{a.replace('-', '_')}" for a in USER_ACTIONS}
    found |= {f"client_{a.replace('-', '_')}" for a in CLIENT_ACTIONS}
    for path in (ROOT / "gateway").rglob("*.py"):
        found.update(CHANGE_LITERALS.findall(path.read_text(encoding="utf-8")))
    found -= EVENT_TYPES  # the records' event types, named by audit_i18n.py
    assert {"user_password_changed", "policy_line_added", "break_glass_requested",
            "delegation_requested", "state_applied"} <= found
    for lang in ("zh", "en"):
        t = Translator(lang)
        unnamed = sorted(k for k in found
                         if not t.knows("aud_ch_" + k) and not t.knows("aud_ev_" + k))
        assert not unnamed, f"changes without a {lang} name: {unnamed}"


def test_a_reading_escapes_the_values_and_reads_nested_templates() -> None:
    """The reading is HTML: a purpose typed with markup stays text; the grants a
    conditional refusal lists are each read; a value too long is cut."""
    t = Translator("zh")
    grant = "grant 7 (JG-0001 to czt, purpose <script>alert(1)</script>)"
    read = str(t.reason(f"JG-0001 is conditional (有条件共享): {grant} was revoked; "
                        f"{grant} expired after 2026-01-01", "proxy_request"))
    assert "<script>" not in read and "&lt;script&gt;alert(1)&lt;/script&gt;" in read, read
    assert read.count("授权 <code>7</code>") == 2 and "已撤销；授权" in read, read
    assert "已于 <code>2026-01-01</code> 后到期" in read, read
    long = str(t.reason("grant 1 (JG-0001 to czt, purpose " + "资" * 500 + ")"))
    assert "资" * 120 + "…" in long and "资" * 121 not in long
    assert t.reason("a person's own words", "proxy_request") is None
    assert Translator("en").reason("wrong password", "login") is None


def test_a_reading_takes_linear_time_on_a_reason_a_person_typed() -> None:
    """An application's reason (a person's words, up to 2000 characters) is stored as
    its record's reason: one written as a grant's description repeated made the
    template's four open values backtrack for seconds per record on the console."""
    t = Translator("zh")
    typed = ("grant 1 (" + "a to b, purpose c) (" * 200)[:4000]
    started = time.perf_counter()
    assert t.reason(typed, "application_submitted") is None
    assert time.perf_counter() - started < 0.5
    read = str(t.reason("grant 12 (JG-0001 to czt/czt-fin, purpose a (b) to c, purpose d)"))
    assert "授权 <code>12</code>" in read and "<code>czt/czt-fin</code>" in read, read
    assert "用途：<code>a (b) to c, purpose d</code>" in read, read
