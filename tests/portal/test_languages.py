"""Chinese pages speak Chinese, English pages English: every catalogue page, form
error and refusal, rendered in both languages, holds no text of the other language
except data (names, titles, purposes as stored; codes and item names)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.demo import DEMO_STATE
from gateway.services import Services
from gateway.settings import Settings
from gateway.statefile import load_file
from tests.oauth2.helpers import close_services, csrf_of, make_services
from tests.portal.test_catalogue_pages import (
    apply_as_wang,
    fast_hashes,  # noqa: F401 - a fixture
    session_as,
    sign_in,
)
from tests.wiring import parts

DEMO = load_file(DEMO_STATE)
UNTIL = (date.today() + timedelta(days=365)).isoformat()
PAST = "2020-01-01"
# what the tests type
TYPED = ["车辆费用核算", "公务用车管理办法", "手机号不予提供", "不同意", "协商", "核算", "资"]
CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")


def _data_values() -> list[str]:
    """Text that is data, in whatever language it was entered."""
    out = list(TYPED)
    for section, keys in (("regions", ("name",)), ("departments", ("name",)),
                          ("users", ("name",)), ("systems", ("name",)),
                          ("clients", ("name",)),
                          ("catalogue", ("name", "summary", "conditions", "basis"))):
        for entry in DEMO.get(section, []):
            out += [entry[k] for k in keys if entry.get(k)]
    for resource in DEMO["catalogue"]:
        out += [i["title"] for i in resource["items"]]
    out += ["平台运维", "系统管理员", "安全管理员", "审计管理员", "费用核算"]  # init's, the grant's
    return sorted(set(out), key=len, reverse=True)


def _identifiers() -> set[str]:
    """Codes and names that are the same in every language."""
    words = {"govgate", "English", "NOPE"}  # NOPE: a code the test asks for
    for user in DEMO["users"]:
        words.update(user["username"].split("."))
    words.update(["sysadmin", "secadmin", "auditor"])
    for resource in DEMO["catalogue"]:
        words.update(re.findall(r"[A-Za-z_]+", resource["code"]))
        words.update(i["name"] for i in resource["items"])
    return words


def visible(page: str) -> str:
    """The page's text as a reader sees it, without code (identifiers, routes)."""
    body = re.sub(r"<code>.*?</code>", " ", page, flags=re.S)
    body = re.sub(r"<[^>]+>", " ", body)
    return html.unescape(body)


def check(page: str, lang: str, where: str) -> None:
    text = visible(page)
    if lang == "en":
        for value in _data_values():
            text = text.replace(value, " ")
        text = text.replace("中文", " ")  # the switch to Chinese names itself
        assert not CJK.search(text), f"{where}: Chinese on the English page: " + repr(
            [m.group() for m in re.finditer(r"\S*" + CJK.pattern + r"\S*", text)][:10])
    else:
        words = set(re.findall(r"[A-Za-z][A-Za-z_]*", text)) - _identifiers()
        assert not words, f"{where}: English on the Chinese page: {sorted(words)}"


@pytest.fixture
def portal(settings: Settings, fast_hashes: None  # noqa: F811
           ) -> Iterator[tuple[Services, TestClient]]:
    services = make_services(settings)
    with TestClient(create_app(parts(services)), base_url="http://127.0.0.1:8080") as c:
        yield services, c
    close_services(services)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_catalogue_page_and_error_in_one_language(portal: tuple[Services, TestClient],
                                                        lang: str) -> None:
    services, client = portal
    seen: list[str] = []

    def page(r: Any, status: int, where: str) -> str:
        assert r.status_code == status, (where, r.status_code, r.text[:300])
        check(r.text, lang, where)
        seen.append(where)
        return str(r.text)

    def get(path: str) -> Any:
        return client.get(path, params={"lang": lang})

    def post(path: str, data: dict[str, Any]) -> Any:
        return client.post(path, params={"lang": lang}, data=data)

    # an applicant: home, search, a resource and its form, every kind of form error
    apply_as_wang(client, ["plate_number", "driver_phone"])
    page(get("/portal"), 200, "home (staff)")
    page(get("/portal/catalogue"), 200, "search")
    page(client.get("/portal/catalogue", params={"lang": lang, "q": "公务用车"}), 200,
         "search results")
    form = page(get("/portal/catalogue/JG-0001"), 200, "resource with the apply form")
    csrf = csrf_of(form)
    page(post("/portal/catalogue/JG-0001/apply", {"csrf_token": csrf, "purpose": "",
                                                  "until": PAST}), 400, "apply: empty")
    page(post("/portal/catalogue/JG-0001/apply", {
        "csrf_token": csrf, "items": ["brand"], "purpose": "资" * 501, "basis": "资" * 2001,
        "until": "soon"}), 400, "apply: too long, not a date")
    page(get("/portal/catalogue/JG-0002"), 200, "resource shared unconditionally")
    page(get("/portal/catalogue/CZ-0001"), 200, "resource not shared")
    page(get("/portal/catalogue/NOPE-1"), 404, "unknown resource")
    page(get("/portal/catalogue/applications"), 200, "own applications")

    # the steward: the review, refused decisions, a conflict
    (app,) = parts(services).workflow.applications(consumer="nn-jgsw")
    sign_in(client, "zhang.san")
    page(get("/portal"), 200, "home (steward)")
    page(get("/portal/catalogue/applications"), 200, "review")
    base = f"/portal/catalogue/applications/{app.id}"
    csrf = csrf_of(page(get(base), 200, "an application to decide"))
    page(post(f"{base}/approve", {"csrf_token": csrf, "items": ["brand"], "until": PAST,
                                  "note": "资" * 2001}), 400, "approve: wider, past, long")
    page(post(f"{base}/approve", {"csrf_token": csrf}), 400, "approve: no item")
    page(post(f"{base}/reject", {"csrf_token": csrf, "reason": " "}), 400,
         "reject: no reason")
    page(post(f"{base}/refer", {"csrf_token": csrf, "reason": " "}), 400, "refer: no reason")
    services.org.set_roles("zhou.ling", ["staff"])  # jgswj without a head
    told = page(post(f"{base}/refer", {"csrf_token": csrf, "reason": "请负责人定"}), 409,
                "refer: no head")
    assert ("没有部门负责人" if lang == "zh" else "has no department head") in told
    services.org.set_roles("zhou.ling", ["staff", "dept_head"])
    page(post(f"{base}/reject", {"csrf_token": csrf, "reason": "不同意"}), 200, "rejected")
    page(post(f"{base}/close", {"csrf_token": csrf, "reason": "不同意"}), 409,
         "close: wrong state")
    page(get("/portal/catalogue/applications"), 200, "after rejecting")
    page(get("/portal/catalogue/grants"), 200, "our grants")
    page(post("/portal/catalogue/grants/1/revoke", {"csrf_token": csrf, "reason": " "}), 400,
         "revoke: no reason")
    page(post("/portal/catalogue/grants/999/revoke", {"csrf_token": csrf, "reason": "停止"}),
         404, "revoke: no such grant")

    # someone else's review; an admin
    sign_in(client, "li.si")
    page(post(f"{base}/escalate", {"csrf_token": client.cookies["gg_csrf"],
                                   "reason": "协商"}), 403, "escalate: not the consumer")
    page(get("/portal/catalogue/grants"), 403, "our grants: not a steward")
    sign_in(client, "wang.wu")
    page(get(base), 200, "a rejected application (consumer)")
    page(post(f"{base}/escalate", {"csrf_token": client.cookies["gg_csrf"],
                                   "reason": "协商"}), 200, "escalated, with its timeline")
    session_as(services, client, "auditor")
    page(get("/portal"), 200, "home (auditor)")
    page(get("/portal/catalogue/JG-0001"), 200, "resource (auditor)")
    page(post("/portal/catalogue/JG-0001/apply", {
        "csrf_token": client.cookies["gg_csrf"], "items": ["plate_number"],
        "purpose": "核算", "until": UNTIL}), 403, "apply as an admin")
    assert len(seen) == 31


def test_an_unknown_portal_address_is_a_page_for_browsers(portal: tuple[Services, TestClient]
                                                          ) -> None:
    _, client = portal
    navigate = {"Accept": "text/html", "Sec-Fetch-Mode": "navigate"}
    r = client.get("/portal/nope", headers=navigate)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "页面不存在" in r.text and r.headers["x-request-id"] in r.text
    check(r.text, "zh", "404")
    r = client.get("/portal/nope", headers=navigate, params={"lang": "en"})
    assert "Not found" in r.text
    check(r.text, "en", "404")
    r = client.get("/portal/nope")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
