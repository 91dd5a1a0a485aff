"""Each administrator's work end to end, through the API and the pages: it happens
(the sign-in, the token endpoint, the proxy's decision see it), it is audited once
with its before and after values, and no secret it hands out (a first or temporary
password, a client secret, a TOTP seed) reaches the audit log."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pyotp
import sqlalchemy as sa
from click.testing import CliRunner
from joserfc.jwk import ECKey
from starlette.testclient import TestClient

from audit.tables import records
from gateway.cli.main import cli
from gateway.services import Services
from gateway.tables import clients, systems, users
from tests.admin.conftest import as_session, bearer, csrf
from tests.oauth2.helpers import DEMO_PASSWORD, login
from tests.wiring import parts

API = "/api/v1/admin"


def changes(services: Services, change: str) -> list[dict[str, Any]]:
    """The successful admin_change records of ``change``, oldest first."""
    with services.engine.connect() as conn:
        rows = conn.execute(sa.select(records).where(
            records.c.event_type == "admin_change", records.c.outcome == "success",
            records.c.reason == change).order_by(records.c.id)).all()
    return [{**r._mapping, "extra": json.loads(r.extra)} for r in rows]


def audit_text(services: Services) -> str:
    with services.engine.connect() as conn:
        return "\n".join(f"{r.reason} {r.extra}" for r in conn.execute(sa.select(records)))


def test_sysadmin_users_through_the_api(world: tuple[Services, TestClient]) -> None:
    services, client = world
    h = bearer(services, "sysadmin")
    r = client.post(f"{API}/users", headers=h, json={
        "username": "chen.liu", "name": "陈六", "department": "czt",
        "roles": ["staff", "data_steward"]})
    assert r.status_code == 201, r.text
    first = r.json()["initial_password"]
    assert r.json()["user"] == {
        "username": "chen.liu", "name": "陈六", "department": "czt",
        "roles": ["data_steward", "staff"], "status": "active", "state": "active",
        "locked_until": None, "has_totp": False, "must_change": True, "admin": False,
        "factor_locked": False, "factor_failures": 0}
    signed_in = login(client, "chen.liu", first)  # the first password: change it now
    assert signed_in.status_code == 303
    assert signed_in.headers["location"].startswith("/portal/login/change")
    created = changes(services, "user_created")[-1]
    assert created["actor_user"] == "sysadmin" and created["department"] == "platform"
    assert created["extra"]["before"] is None and created["extra"]["after"]["username"] == \
        "chen.liu"
    assert created["extra"]["via"] == "api" and created["request_id"]

    # locked after failed sign-ins; unlocked by the admin
    for _ in range(services.settings.lockout_threshold):
        services.org.record_failure("li.si", threshold=services.settings.lockout_threshold,
                                    window_seconds=900)
    listed = client.get(f"{API}/users", headers=h, params={"state": "locked"}).json()
    assert [u["username"] for u in listed["users"]] == ["li.si"]
    r = client.post(f"{API}/users/li.si/unlock", headers=h)
    assert r.json()["user"]["state"] == "active"
    unlocked = changes(services, "user_unlock")[-1]["extra"]
    assert unlocked["before"]["state"] == "locked" and unlocked["after"]["state"] == "active"
    client.cookies.clear()
    assert login(client, "li.si").headers["location"] == "/portal"

    # disabled: the session ends at once; enabled again
    session = client.cookies.get("gg_session")
    r = client.post(f"{API}/users/li.si/disable", headers=h)
    assert r.json()["user"]["status"] == "disabled"
    assert parts(services).provider.valid_session(session) is None
    assert [e["change"] for e in changes(services, "user_disable")[-1]["extra"]["effects"]] \
        == ["user_disabled", "sessions_revoked"]
    client.post(f"{API}/users/li.si/enable", headers=h)
    client.cookies.clear()
    assert login(client, "li.si").headers["location"] == "/portal"

    # a temporary password, shown once, to be changed
    r = client.post(f"{API}/users/li.si/reset-password", headers=h)
    temporary = r.json()["temporary_password"]
    client.cookies.clear()
    assert login(client, "li.si").status_code == 200  # the old one is gone: the form again
    client.cookies.clear()
    assert login(client, "li.si", temporary).headers["location"].startswith(
        "/portal/login/change")

    # TOTP: a lost phone
    seed = pyotp.random_base32()
    user = services.org.get_user("zhang.san")
    with services.engine.begin() as conn:
        conn.execute(users.update().where(users.c.id == user.id).values(
            totp_secret=services.keys.seal(seed.encode(), f"users.totp_secret:{user.id}")))
    r = client.post(f"{API}/users/zhang.san/reset-totp", headers=h)
    assert r.json()["user"]["has_totp"] is False
    reset = changes(services, "user_reset_totp")[-1]["extra"]
    assert (reset["before"]["has_totp"], reset["after"]["has_totp"]) == (True, False)

    # the admin accounts are the operator's
    assert client.post(f"{API}/users/secadmin/reset-password", headers=h).status_code == 403
    assert client.post(f"{API}/users", headers=h, json={
        "username": "sec.two", "name": "x", "department": "platform",
        "roles": ["secadmin"]}).status_code == 403
    assert client.post(f"{API}/users/secadmin/unlock", headers=h).status_code == 200

    text = audit_text(services)
    for secret in (first, temporary, seed):
        assert secret not in text


def test_sysadmin_departments_systems_clients_through_the_api(
        world: tuple[Services, TestClient]) -> None:
    services, client = world
    h = bearer(services, "sysadmin")
    assert client.post(f"{API}/departments", headers=h, json={
        "code": "czt-zcc", "name": "资产处", "parent": "czt"}).status_code == 201
    assert client.post(f"{API}/departments/czt-zcc/rename", headers=h,
                       json={"name": "资产管理处"}).status_code == 200
    r = client.post(f"{API}/departments/czt-zcc/move", headers=h, json={"parent": None})
    assert r.json()["department"] == {"code": "czt-zcc", "name": "资产管理处",
                                      "region": "gx", "parent": None}
    moved = changes(services, "department_moved")[-1]["extra"]
    assert moved["before"]["parent"] == "czt" and moved["after"]["parent"] is None
    assert client.post(f"{API}/departments/czt-zcc/move", headers=h,
                       json={"parent": "nn-jgsw"}).status_code == 400  # another region

    r = client.post(f"{API}/systems", headers=h, json={
        "code": "fleet", "name": "车队系统", "department": "czt-zcc",
        "upstream": "http://127.0.0.1:9401", "portal_path": "/home"})
    assert r.status_code == 201, r.text
    r = client.post(f"{API}/systems/fleet", headers=h, json={
        "identity_headers": "both", "remote_user": True, "portal_path": "/start"})
    assert r.json()["system"]["identity_headers"] == "both"
    with services.engine.connect() as conn:
        row = conn.execute(sa.select(systems).where(systems.c.code == "fleet")).one()
    assert (row.identity_headers, row.remote_user, row.portal_path, row.upstream) == (
        "both", True, "/start", "http://127.0.0.1:9401")
    changed = changes(services, "system_changed")[-1]["extra"]
    assert changed["before"]["identity_headers"] == "assertion"
    bad = client.post(f"{API}/systems/fleet", headers=h, json={"upstream": "ftp://x"})
    assert bad.status_code == 400 and "upstream" in json.dumps(bad.json())
    assert client.post(f"{API}/systems/fleet", headers=h,
                       json={"remote_user": "yes"}).status_code == 400

    r = client.post(f"{API}/clients", headers=h, json={
        "client_id": "fleet-sync", "name": "车队同步", "department": "czt-zcc",
        "grant_types": ["client_credentials"], "scope": "proxy"})
    assert r.status_code == 201, r.text
    secret = r.json()["client_secret"]
    token = client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                        auth=("fleet-sync", secret))
    assert token.status_code == 200 and token.json()["scope"] == "proxy"
    r = client.post(f"{API}/clients/fleet-sync", headers=h,
                    json={"scope": "proxy catalogue:read"})
    assert r.json()["client"]["scope"] == "proxy catalogue:read"
    # RFC 9449: a client set dpop_bound gets no token without a proof of its key
    r = client.post(f"{API}/clients/fleet-sync", headers=h, json={"dpop_bound": True})
    assert r.status_code == 200 and r.json()["client"]["dpop_bound"] is True, r.text
    refused = client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                          auth=("fleet-sync", secret))
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_dpop_proof"
    r = client.post(f"{API}/clients/fleet-sync", headers=h, json={"dpop_bound": False})
    assert r.json()["client"]["dpop_bound"] is False
    r = client.post(f"{API}/clients/fleet-sync/rotate-secret", headers=h)
    new = r.json()["client_secret"]
    assert client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                       auth=("fleet-sync", new)).status_code == 200
    assert client.post(f"{API}/clients/fleet-sync/disable", headers=h).status_code == 200
    assert client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                       auth=("fleet-sync", new)).status_code == 401
    disabled = changes(services, "client_disable")[-1]["extra"]
    assert (disabled["before"]["status"], disabled["after"]["status"]) == ("active",
                                                                          "disabled")
    assert [e["change"] for e in disabled["effects"]] == ["client_disabled",
                                                          "client_tokens_revoked"]
    r = client.post(f"{API}/clients/office-web", headers=h, json={
        "redirect_uris": ["http://127.0.0.1:9102/callback", "https://office.example/cb"]})
    assert r.json()["client"]["redirect_uris"][1] == "https://office.example/cb"
    assert client.post(f"{API}/clients/office-web", headers=h, json={
        "redirect_uris": ["http://office.example/cb"]}).status_code == 400  # http: loopback only
    text = audit_text(services)
    assert secret not in text and new not in text


def test_secadmin_policies_grants_keys_through_the_api(
        world: tuple[Services, TestClient]) -> None:
    services, client = world
    h = bearer(services, "secadmin")
    test = {"subject": "user:li.si", "system": "assets", "path": "/api/report", "method": "GET"}
    r = client.get(f"{API}/policies/test", headers=h, params=test)
    assert r.json()["decision"]["allowed"] is False
    assert r.json()["decision"]["rule"] == "default"
    # assets publishes a catalogue resource: another department needs an ungoverned mark
    line = {"subject": "user:li.si", "department": "jgswj", "object": "/s/assets/api/report",
            "action": "GET"}
    r = client.post(f"{API}/policies", headers=h, json=line)
    assert r.status_code == 400 and "catalogue" in json.dumps(r.json()["errors"])
    r = client.post(f"{API}/policies", headers=h, json={**line, "ungoverned": "年度审计对账"})
    assert r.status_code == 201, r.text
    line_id = r.json()["line"]["id"]
    decision = client.get(f"{API}/policies/test", headers=h, params=test).json()["decision"]
    assert decision["allowed"] is True and decision["rule"] == "policy"
    assert decision["line"]["id"] == line_id and decision["subjects"][0] == "user:li.si"
    # the governed route goes through the catalogue, as at the proxy
    decision = client.get(f"{API}/policies/test", headers=h, params={
        "subject": "user:zhao.min", "system": "vehicles", "path": "/api/vehicles",
        "method": "GET"}).json()["decision"]
    assert (decision["rule"], decision["resource"], decision["grants"]) == (
        "grant", "JG-0001", [1])
    assert client.post(f"{API}/policies/{line_id}/remove", headers=h).status_code == 200
    assert client.get(f"{API}/policies/test", headers=h,
                      params=test).json()["decision"]["allowed"] is False
    added, removed = (changes(services, c)[-1]["extra"]
                      for c in ("policy_line_added", "policy_line_removed"))
    assert added["after"]["ungoverned"] == "年度审计对账" and added["before"] is None
    assert removed["before"]["id"] == line_id and removed["after"] is None
    r = client.get(f"{API}/policies/test", headers=h, params={**test, "system": "nope"})
    assert r.status_code == 404
    r = client.get(f"{API}/policies/test", headers=h, params={**test, "method": "BREW"})
    assert r.status_code == 400

    r = client.post(f"{API}/grants/1/revoke", headers=h, json={"reason": "用途已结束"})
    assert r.status_code == 200 and r.json()["grant"]["state"] == "revoked"
    revoked = changes(services, "grant_revoked")[-1]
    assert revoked["actor_user"] == "secadmin"
    assert revoked["extra"]["before"]["state"] == "active"
    decision = client.get(f"{API}/policies/test", headers=h, params={
        "subject": "user:zhao.min", "system": "vehicles", "path": "/api/vehicles",
        "method": "GET"}).json()["decision"]
    assert decision["allowed"] is False

    before = {k["kid"] for k in client.get(f"{API}/keys", headers=h).json()["keys"]}
    r = client.post(f"{API}/keys/rotate", headers=h, json={"uses": ["token"]})
    assert [(k["use"], k["state"]) for k in r.json()["rotated"]] == [("token", "pending")]
    after = client.get(f"{API}/keys", headers=h).json()["keys"]
    assert {k["kid"] for k in after} - before == {r.json()["rotated"][0]["kid"]}
    r = client.post(f"{API}/keys/rotate", headers=h, json={"uses": ["audit"], "now": True})
    assert r.json()["rotated"][0]["state"] == "active"
    policy = client.get(f"{API}/security-policy", headers=h).json()["policy"]
    assert policy["lockout_threshold"] == services.settings.lockout_threshold
    assert policy["source"] == "settings" and policy["password_min_length"] == 12


def test_the_auditor_sees_the_other_admins_actions(world: tuple[Services, TestClient]) -> None:
    services, client = world
    client.post(f"{API}/users/li.si/unlock", headers=bearer(services, "sysadmin"))
    client.get(f"{API}/users", headers=bearer(services, "secadmin"))  # refused
    h = bearer(services, "auditor")
    found = client.get(f"{API}/activity", headers=h).json()["records"]
    assert [(r["actor_user"], r["outcome"]) for r in found] == [
        ("secadmin", "deny"), ("sysadmin", "success")]
    assert found[1]["extra"]["change"] == "user_unlock" and "before" in found[1]["extra"]
    first = client.get(f"{API}/activity", headers=h, params={"limit": "1"}).json()
    assert [r["actor_user"] for r in first["records"]] == ["secadmin"]
    rest = client.get(f"{API}/activity", headers=h,
                      params={"limit": "1", "cursor": first["next_cursor"]}).json()
    assert [r["actor_user"] for r in rest["records"]] == ["sysadmin"]
    assert rest["next_cursor"] is None
    as_session(services, client, "auditor")
    today = datetime.now(UTC).date().isoformat()
    page = client.get("/portal/admin/activity", params={"until": today, "since": today}).text
    assert page.count("<tr data-id=") == 2  # "until" a day includes that day
    client.cookies.clear()
    only = client.get(f"{API}/activity", headers=h, params={"outcome": "deny"}).json()
    assert [r["actor_user"] for r in only["records"]] == ["secadmin"]
    assert client.get(f"{API}/activity", headers=h,
                      params={"since": "yesterday"}).status_code == 400
    assert client.get(f"{API}/activity", headers=h,
                      params={"event_type": "login"}).status_code == 400
    with services.engine.connect() as conn:
        queries = conn.execute(sa.select(records.c.actor_user).where(
            records.c.event_type == "audit_query")).all()
    assert [q.actor_user for q in queries] == ["auditor"] * 7  # the malformed ones too


def _form(client: TestClient, path: str, **fields: Any) -> Any:
    return client.post(path, data={"csrf_token": csrf(client), **fields},
                       follow_redirects=False)


def test_the_pages_do_the_same_work(world: tuple[Services, TestClient]) -> None:
    services, client = world
    as_session(services, client, "sysadmin")
    r = _form(client, "/portal/admin/users", username="he.qi", name="何七",
              department="jgswj", roles=["staff"])
    assert r.status_code == 200 and "初始密码" in r.text
    first = re.search(r'id="secret"><code>([^<]+)</code>', r.text).group(1)
    assert first not in audit_text(services)
    r = _form(client, "/portal/admin/users", username="he.qi", name="何七",
              department="jgswj", roles=["staff"])
    assert r.status_code == 409 and "已存在" in r.text
    r = _form(client, "/portal/admin/users", username="Bad Name", name="某",
              department="jgswj", roles=["staff"])
    assert r.status_code == 400 and 'id="error"' in r.text and 'value="Bad Name"' in r.text
    r = _form(client, "/portal/admin/users/he.qi/disable")
    assert r.status_code == 303
    assert "已停用用户 he.qi" in client.get(r.headers["location"]).text
    r = _form(client, "/portal/admin/users/he.qi/reset-password")
    assert "临时密码" in r.text
    r = _form(client, "/portal/admin/departments", code="jgswj-cw", name="财务处",
              parent="jgswj")
    assert r.status_code == 303
    assert _form(client, "/portal/admin/departments/jgswj-cw/rename",
                 name="财务审计处").status_code == 303
    assert services.org.get_department("jgswj-cw")["name"] == "财务审计处"
    assert _form(client, "/portal/admin/departments/jgswj-cw/move",
                 parent="jgswj-it").status_code == 303
    assert services.org.get_department("jgswj-cw")["parent_code"] == "jgswj-it"
    assert _form(client, "/portal/admin/systems", code="cw", name="财务系统",
                 department="jgswj-cw", upstream="http://127.0.0.1:9501",
                 portal_path="/", identity_headers="plain").status_code == 303
    assert _form(client, "/portal/admin/systems/cw", name="财务系统",
                 department="jgswj-cw", upstream="http://127.0.0.1:9502",
                 portal_path="/", identity_headers="plain",
                 remote_user="on").status_code == 303
    edit = client.get("/portal/admin/systems/cw").text
    assert 'value="http://127.0.0.1:9502"' in edit and "checked" in edit
    r = _form(client, "/portal/admin/clients", client_id="cw-web", name="财务门户",
              department="jgswj-cw", grant_types=["authorization_code", "refresh_token"],
              redirect_uris="https://cw.example/cb\nhttp://127.0.0.1:9502/cb",
              token_endpoint_auth_method="client_secret_basic", scope="openid profile",
              require_pkce="1")
    assert r.status_code == 200 and "应用密钥" in r.text
    page = client.get("/portal/admin/clients/cw-web").text
    assert "https://cw.example/cb\nhttp://127.0.0.1:9502/cb" in page
    # PKCE (RFC 9700 section 2.1.1): the form's box, ticked for a new client, untickable
    assert 'id="c-require-pkce" checked' in page and "授权请求必须带授权码证明密钥" in page
    assert _form(client, "/portal/admin/clients/cw-web/save", name="财务门户",
                 redirect_uris="https://cw.example/cb",
                 scope="openid profile").status_code == 303
    assert 'id="c-require-pkce" checked' not in client.get("/portal/admin/clients/cw-web").text
    # DPoP (RFC 9449): the box unticked for a new client; ticked, the token endpoint
    # holds the client to a proof; a save that leaves it ticked keeps it
    assert 'id="c-dpop-bound" checked' not in page and "令牌绑定应用的密钥" in page
    for _ in range(2):
        assert _form(client, "/portal/admin/clients/cw-web/save", name="财务门户",
                     redirect_uris="https://cw.example/cb", scope="openid profile",
                     dpop_bound="1").status_code == 303
        assert 'id="c-dpop-bound" checked' in client.get("/portal/admin/clients/cw-web").text
    with services.engine.connect() as conn:
        assert conn.execute(sa.select(clients.c.dpop_bound)
                            .where(clients.c.client_id == "cw-web")).scalar_one() is True
    # PKCE is for authorization codes: a client-credentials client's page has no box, and
    # its save keeps what is stored (a box the page did not show is not an unticked one);
    # a private_key_jwt client's page has the lenient audience's box instead
    key = ECKey.generate_key("P-256", parameters={"kid": "cw-1"}).as_dict(private=False)
    made = client.post(f"{API}/clients", headers=bearer(services, "sysadmin"), json={
        "client_id": "cw-sync", "name": "财务同步", "department": "jgswj-cw",
        "grant_types": ["client_credentials"], "scope": "proxy",
        "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [key]},
        "lenient_assertion_audience": True})
    assert made.status_code == 201 and made.json()["client"]["require_pkce"] is True, made.text
    page = client.get("/portal/admin/clients/cw-sync").text
    assert 'id="c-require-pkce"' not in page and "授权码证明密钥" not in page
    assert 'id="c-lenient-audience" checked' in page and "令牌端点" in page
    assert 'id="c-lenient-audience"' not in client.get("/portal/admin/clients/cw-web").text
    assert _form(client, "/portal/admin/clients/cw-sync/save", name="财务同步",
                 scope="proxy").status_code == 303
    with services.engine.connect() as conn:
        assert conn.execute(sa.select(clients.c.require_pkce, clients.c.lenient_assertion_audience)
                            .where(clients.c.client_id == "cw-sync")).one() == (True, False)
    # an old system's fixed credential at /s/ (client_credentials alone): the page's
    # choice (no Basic for a client without a secret); switching to a key shows it once
    page = client.get("/portal/admin/clients/cw-sync").text
    assert 'id="c-static-credential"' in page and "固定凭据" in page
    assert 'value="basic"' not in page and 'id="c-static-credential"' not in \
        client.get("/portal/admin/clients/cw-web").text
    r = _form(client, "/portal/admin/clients/cw-sync/save", name="财务同步", scope="proxy",
              static_credential="api_key")
    assert r.status_code == 200 and "API 密钥（仅显示一次" in r.text, r.text
    key = re.search(r'id="secret"><code>([^<]+)</code>', r.text).group(1)
    assert key.startswith("cw-sync.") and key not in audit_text(services)
    with services.engine.connect() as conn:
        stored = conn.execute(sa.select(clients.c.static_credential, clients.c.api_key_hash)
                              .where(clients.c.client_id == "cw-sync")).one()
    assert stored[0] == "api_key" and stored[1] and key not in stored[1]
    # saved again, the key stays; "New API key" (the API's too) replaces it
    assert _form(client, "/portal/admin/clients/cw-sync/save", name="财务同步", scope="proxy",
                 static_credential="api_key").status_code == 303
    assert 'data-action="api-key"' in client.get("/portal/admin/clients/cw-sync").text
    r = client.post(f"{API}/clients/cw-sync/api-key", headers=bearer(services, "sysadmin"))
    assert r.status_code == 200 and r.json()["api_key"] != key, r.text
    assert r.json()["client"]["static_credential"] == "api_key"
    assert r.json()["api_key"] not in audit_text(services)
    r = client.post(f"{API}/clients/cw-sync", headers=bearer(services, "sysadmin"),
                    json={"static_credential": "off"})
    assert r.status_code == 200 and r.json()["client"]["static_credential"] == "off"
    with services.engine.connect() as conn:
        assert conn.execute(sa.select(clients.c.api_key_hash)
                            .where(clients.c.client_id == "cw-sync")).scalar_one() is None
    # a client that signs people in never takes one: a readable 400
    r = client.post(f"{API}/clients/cw-web", headers=bearer(services, "sysadmin"),
                    json={"static_credential": "basic"})
    assert r.status_code == 400 and "client_credentials" in r.text, r.text
    r = client.post(f"{API}/clients/cw-web/api-key", headers=bearer(services, "sysadmin"))
    assert r.status_code == 400, r.text
    assert _form(client, "/portal/admin/clients/cw-web/disable").status_code == 303
    assert "已停用" in client.get("/portal/admin/clients/cw-web").text

    as_session(services, client, "secadmin")
    r = _form(client, "/portal/admin/policies", subject="role:staff", department="jgswj",
              object="/s/cw/*", action="GET", effect="deny")
    assert r.status_code == 303, r.text
    page = client.get("/portal/admin/policies", params={
        "subject": "user:he.qi", "system": "cw", "path": "/x", "method": "GET"}).text
    assert 'id="decision"' in page and "拒绝" in page and "匹配的策略行" in page
    r = _form(client, "/portal/admin/policies", subject="nobody", department="jgswj",
              object="/s/cw/*", action="GET")
    assert r.status_code == 400 and 'value="nobody"' in r.text
    assert _form(client, "/portal/admin/grants/1/revoke", reason="到期前收回").status_code == 303
    assert 'data-grant="1"' not in client.get("/portal/admin/grants").text  # active only
    assert 'data-grant="1"' in client.get("/portal/admin/grants", params={"all": "1"}).text
    assert _form(client, "/portal/admin/keys/rotate", use="assertion").status_code == 303
    assert 'data-state="pending" data-use="assertion"' in client.get("/portal/admin/keys").text
    assert "只读" in client.get("/portal/admin/security").text

    as_session(services, client, "auditor")
    page = client.get("/portal/admin/activity").text
    for change in ("user_created", "department_moved", "client_disable", "policy_line_added",
                   "grant_revoked", "keys_rotated"):
        assert f"<code>{change}</code>" in page, change
    # a form without its CSRF token does nothing
    as_session(services, client, "sysadmin")
    r = client.post("/portal/admin/users/he.qi/enable", data={}, follow_redirects=False)
    assert r.status_code == 400 and services.org.get_user("he.qi").status == "disabled"


def test_the_cli_does_the_same_to_departments_and_users(world: tuple[Services, TestClient]
                                                        ) -> None:
    services, _ = world
    env = {"GOVGATE_HOME": str(services.settings.home),
           "GOVGATE_DATABASE_URL": services.settings.database_url, "LANG": "C.UTF-8"}

    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
        return result.exit_code, result.output

    assert run("dept", "rename", "nn-fleet", "市公务用车队")[0] == 0
    assert services.org.get_department("nn-fleet")["name"] == "市公务用车队"
    assert run("dept", "move", "nn-fleet")[0] == 0
    assert services.org.get_department("nn-fleet")["parent_code"] is None
    code, out = run("dept", "move", "nn-jgsw", "--parent", "czt")
    assert code == 1 and "region" in out
    assert run("user", "disable", "li.si")[0] == 0
    assert run("user", "enable", "li.si")[0] == 0
    assert services.org.get_user("li.si").status == "active"
    code, out = run("user", "reset-totp", "li.si")
    assert code == 0 and "li.si" in out
    assert run("user", "reset-totp", "nobody")[0] == 1
    assert DEMO_PASSWORD not in audit_text(services)
