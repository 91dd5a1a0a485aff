"""The admin API's refusals in the operator's language: ``title``, ``detail`` and
``errors`` in Chinese or English by ``Accept-Language`` (the ``lang`` setting,
Chinese, when the request names neither), ``type`` and ``status`` the same in both."""

from __future__ import annotations

import re
from typing import Any

from starlette.testclient import TestClient

from gateway.errors import GovgateError
from gateway.problem_titles import TITLES_ZH
from gateway.services import Services
from tests.admin.conftest import bearer

API = "/api/v1/admin"
HAN = re.compile(r"[\u4e00-\u9fff]")
LANGS = {"zh": "zh-CN,zh;q=0.9,en;q=0.5", "en": "en-GB,en;q=0.9"}


def _answers(client: TestClient, services: Services, accept: str | None
             ) -> dict[str, Any]:
    """One refusal of each kind, asked with ``accept`` as ``Accept-Language``."""
    lang = {} if accept is None else {"Accept-Language": accept}
    sys_h = {**bearer(services, "sysadmin"), **lang}
    sec_h = {**bearer(services, "secadmin"), **lang}
    return {
        # a field the operation declares missing: the declaration's check
        "validation": client.post(f"{API}/users", headers=sys_h,
                                  json={"name": "无名", "department": "czt"}),
        # a body that is not JSON, read by the endpoint's plumbing
        "not_json": client.post(f"{API}/users", headers={
            **sys_h, "Content-Type": "application/json"}, content=b"{"),
        "not_found": client.get(f"{API}/systems/nosuch", headers=sys_h),
        "conflict": client.post(f"{API}/users", headers=sys_h, json={
            "username": "li.si", "name": "李四", "department": "jgswj", "roles": ["staff"]}),
        # 三员分立: the security administrator at the system administrator's list
        "forbidden": client.get(f"{API}/users", headers=sec_h),
        "scope": client.get(f"{API}/users", headers={
            **bearer(services, "sysadmin", scope="openid"), **lang}),
        "unauthorized": client.get(f"{API}/users", headers=lang),
        "media_type": client.post(f"{API}/users", headers={
            **sys_h, "Content-Type": "text/plain"}, content=b"x"),
        "no_route": client.get(f"{API}/no-such-thing", headers=sys_h),
        # the clients' new switches (RFC 9449, RFC 7636) given a string: a type refusal
        "not_type": client.post(f"{API}/clients", headers=sys_h, json={
            "client_id": "typed-app", "name": "类型", "department": "czt",
            "grant_types": ["authorization_code"], "require_pkce": "yes",
            "dpop_bound": ["true"]}),
    }


def test_admin_problems_speak_the_operators_language(
        world: tuple[Services, TestClient]) -> None:
    services, client = world
    zh, en, default = (_answers(client, services, accept)
                       for accept in (LANGS["zh"], LANGS["en"], None))
    statuses = {"validation": 400, "not_json": 400, "not_found": 404, "conflict": 409,
                "forbidden": 403, "scope": 403, "unauthorized": 401, "media_type": 415,
                "no_route": 404, "not_type": 400}
    for kind, status in statuses.items():
        a, b, c = zh[kind], en[kind], default[kind]
        assert a.status_code == b.status_code == c.status_code == status, (kind, a.text)
        za, eb, dc = a.json(), b.json(), c.json()
        # programs read these: the same whatever the language
        assert za["type"] == eb["type"] == dc["type"], kind
        assert za["status"] == eb["status"] == status
        assert a.headers["content-language"] == "zh-CN", kind
        assert b.headers["content-language"] == "en", kind
        assert c.headers["content-language"] == "zh-CN", kind  # the lang setting
        assert dc == za, kind
        for field in ("title", "detail"):
            if field not in eb:
                continue
            assert HAN.search(za[field]), (kind, field, za)
            # the English names 三员分立 as the term the agencies use, and nothing else
            assert not HAN.search(eb[field].replace("三员分立", "")), (kind, field, eb)
        if "errors" in eb:
            assert len(za["errors"]) == len(eb["errors"])
            assert all(HAN.search(e) for e in za["errors"]), za

    # the English is what it was before (programs' logs, existing clients)
    assert en["validation"].json()["title"] == "Invalid input"
    assert en["not_found"].json()["type"] == "urn:govgate:error:not_found"
    assert en["forbidden"].json()["detail"] == \
        "this is the system administrator's work (三员分立)"
    assert en["unauthorized"].json()["detail"] == "invalid or missing credentials"
    assert en["unauthorized"].headers["www-authenticate"] == 'Bearer realm="govgate"'
    assert "insufficient_scope" in zh["scope"].headers["www-authenticate"]
    assert zh["not_found"].json()["title"] == "未找到"
    assert zh["forbidden"].json()["title"] == "无权操作"
    assert "三员分立" in zh["forbidden"].json()["detail"]
    assert zh["conflict"].json()["type"] == "urn:govgate:error:conflict"
    assert zh["validation"].json()["field"] == en["validation"].json()["field"]
    # the type's name too ("须为 true or false" before)
    assert sorted(zh["not_type"].json()["errors"]) == [
        "dpop_bound：须为 true 或 false", "require_pkce：须为 true 或 false"]
    assert sorted(en["not_type"].json()["errors"]) == [
        "dpop_bound: must be true or false", "require_pkce: must be true or false"]


def _codes(kind: type[GovgateError]) -> set[str]:
    found = {kind.code}
    for sub in kind.__subclasses__():
        found |= _codes(sub)
    return found


def test_every_problem_code_has_its_chinese_title() -> None:
    """A new error class under ``GovgateError`` without its Chinese title would answer
    a Chinese operator in English; CAS's codes are answered in CAS's XML, not here."""
    import gateway.app  # noqa: F401 - every error class the gateway raises, defined
    missing = sorted(c for c in _codes(GovgateError) if c not in TITLES_ZH)
    assert not missing, f"problem codes without a Chinese title: {missing}"


#: one refusal of each /api/v1 group besides the admin API's: group → (method, path,
#: caller, token scope, JSON body, status, problem code); caller None: no credentials
GROUPS: dict[str, tuple[str, str, str | None, str, Any, int, str]] = {
    "catalogue": ("GET", "/api/v1/catalogue/resources/nosuch", "li.si",
                  "openid catalogue:read", None, 404, "not_found"),
    "steward": ("GET", "/api/v1/catalogue/inbox", "li.si", "openid catalogue:read", None,
                403, "forbidden"),
    "audit": ("GET", "/api/v1/audit/records", "li.si", "openid audit:read", None, 403,
              "forbidden"),
    "audit_filter": ("GET", "/api/v1/audit/records?since=yesterday", "auditor",
                     "openid audit:read", None, 400, "validation"),
    "account": ("POST", "/api/v1/account/password", "li.si", "openid account", {}, 400,
                "validation"),
    "account_scope": ("GET", "/api/v1/account", "li.si", "openid", None, 403,
                      "insufficient_scope"),
    "stats": ("GET", "/api/v1/stats/overview", "li.si", "openid stats:read", None, 403,
              "forbidden"),
    "break_glass": ("GET", "/api/v1/break-glass/999", "li.si", "openid account", None,
                    404, "not_found"),
    "delegations": ("POST", "/api/v1/delegations/999/approve", "li.si", "openid account",
                    {}, 404, "not_found"),
    "unauthenticated": ("GET", "/api/v1/catalogue/resources", None, "", None, 401,
                        "unauthorized"),
}


def test_every_api_group_and_the_proxy_speak_the_callers_language(
        world: tuple[Services, TestClient]) -> None:
    """Every /api/v1 group answers as the admin API does (zh, en, the ``lang`` setting
    when the request names neither); the proxy's and forward-auth's titles too."""
    services, client = world
    answers: dict[str | None, dict[str, Any]] = {}
    for lang in ("zh", "en", None):
        said = {} if lang is None else {"Accept-Language": LANGS[lang]}
        answers[lang] = {}
        for group, (method, path, who, scope, body, _, _) in GROUPS.items():
            auth = {} if who is None else bearer(services, who, scope=scope)
            answers[lang][group] = client.request(method, path, json=body,
                                                  headers={**auth, **said})
        ask = {"Accept": "application/json", **said}
        answers[lang]["proxy"] = client.get("/s/echo/api/x", headers=ask)
        # the test client is no front proxy: refused 403 forward_auth_peer
        answers[lang]["forward_auth"] = client.get("/auth/verify", headers=ask)
    expected = {g: (status, code) for g, (*_, status, code) in GROUPS.items()}
    expected |= {"proxy": (401, "unauthorized"), "forward_auth": (403, "forward_auth_peer")}
    for group, (status, code) in expected.items():
        zh, en, default = (answers[lang][group] for lang in ("zh", "en", None))
        for r, tag in ((zh, "zh-CN"), (en, "en"), (default, "zh-CN")):
            assert r.status_code == status, (group, r.text)
            assert r.json()["type"] == f"urn:govgate:error:{code}", (group, r.text)
            assert r.json()["status"] == status
            assert r.headers["content-language"] == tag, group
        za, eb = zh.json(), en.json()
        assert HAN.search(za["title"]) and not HAN.search(eb["title"]), (group, za, eb)
        assert default.json()["title"] == za["title"], group
        if group == "proxy":  # its detail is the proxy's English (docs/api.md)
            continue
        assert HAN.search(za["detail"]) and not HAN.search(eb["detail"]), (group, za, eb)
        assert default.json()["detail"] == za["detail"], group
    # the English is what it was (existing clients, logs)
    assert answers["en"]["audit"].json()["detail"] == "the auditor role is required"
    assert answers["en"]["delegations"].json()["title"] == "Not found"
    assert answers["zh"]["proxy"].json()["title"] == "需要身份认证"
    assert answers["en"]["proxy"].json()["title"] == "Authentication required"
    assert answers["zh"]["forward_auth"].headers["x-refusal-code"] == "forward_auth_peer"
