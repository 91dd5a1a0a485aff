"""A system's sign-on set where operators work (the fifth session's "Found and left":
the state file's only): its CAS service addresses, its SAML SP's metadata and NameID
format and whether its assertions are encrypted, through
``PUT /api/v1/admin/systems/{code}/sign-on``, ``govgate system
sign-on`` and the system's console page; validated (an address without https, metadata
that is no SP's) in both languages, audited, and what the real ``/cas/login`` and
``/saml/metadata``-registered SP then meet."""

from __future__ import annotations

import html
import re
from pathlib import Path

from starlette.testclient import TestClient

from gateway.services import Services
from tests.cas.conftest import (
    CAS_SYSTEM,
    ORIGIN,
    SERVICE,
    govgate_cli,
    register_cas,
    sysadmin_console,
)
from tests.cas.test_attribute_release import changes_of
from tests.cas.test_flows import cas_login, sign_in_from, ticket_of
from tests.oauth2.helpers import DEMO_PASSWORD, audit_events, csrf_of
from tests.saml.test_state_file import encryption_cert, metadata
from tests.tokens import access_token
from tests.wiring import apply_state

API = "/api/v1/admin/systems/offices/sign-on"
NEW = "http://127.0.0.1:9102/new/"
ZH, EN = {"Accept-Language": "zh-CN"}, {"Accept-Language": "en"}


def test_the_sign_on_is_set_by_the_api_the_cli_and_the_console(
        client: TestClient, idp: Services, tmp_path: Path) -> None:
    register_cas(idp)
    admin = {"Authorization": "Bearer " + access_token(
        idp, sub="sysadmin", department="platform", roles=["sysadmin"],
        scope="openid admin")}
    shown = client.get(API, headers=admin).json()["sign_on"]
    assert shown["cas_services"] == CAS_SYSTEM["cas_services"] and shown["saml"] is None

    # an address without https on a host that is not loopback: refused, both languages
    bad = {"cas_services": ["http://oa.example/cas/"]}
    zh = client.put(API, headers={**admin, **ZH}, json=bad)
    en = client.put(API, headers={**admin, **EN}, json=bad)
    assert zh.status_code == en.status_code == 400
    assert "须为 https" in zh.json()["detail"]
    assert "must be https (http only on a loopback host)" in en.json()["detail"]
    assert client.put(API, headers=admin, json={}).status_code == 400  # names nothing
    # the new address: /cas/login hands it a ticket; the old one is refused
    r = client.put(API, headers=admin, json={"cas_services": [NEW + "*"]})
    assert r.status_code == 200, r.text
    assert r.json()["sign_on"]["cas_services"] == [NEW + "*"]
    ticket_of(sign_in_from(client, cas_login(client, NEW + "app")), NEW + "app")
    assert cas_login(client).status_code != 303
    record = changes_of(idp, "system_sign_on_changed")[-1]
    assert record["before"]["cas_services"] == CAS_SYSTEM["cas_services"]
    assert record["after"]["cas_services"] == [NEW + "*"]

    # SAML: metadata that is no SP's, then an SP's with its NameID format
    r = client.put(API, headers={**admin, **ZH}, json={"saml_metadata": "<md:Entity"})
    assert r.status_code == 400 and "无法使用该 SAML 元数据" in r.json()["detail"]
    r = client.put(API, headers={**admin, **EN}, json={"saml_name_id": "transient"})
    assert r.status_code == 400 and "registers no SAML service provider" in r.json()["detail"]
    plain = metadata(acs=(("urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
                           "http://archives.example/acs"),))
    r = client.put(API, headers={**admin, **EN}, json={"saml_metadata": plain})
    assert r.status_code == 400 and "https" in r.json()["detail"]
    r = client.put(API, headers=admin, json={"saml_metadata": metadata(),
                                             "saml_name_id": "transient"})
    assert r.status_code == 200, r.text
    assert {k: v for k, v in r.json()["sign_on"]["saml"].items() if k != "metadata"} == {
        "entity_id": "https://archives.example/shibboleth", "name_id": "transient",
        "release_username": False, "encryption": "metadata", "encrypted": False}
    after = changes_of(idp, "system_sign_on_changed")[-1]["after"]["saml"]
    assert after["name_id"] == "transient" and len(after["metadata_sha256"]) == 64

    # encrypted assertions: asked of an SP with no encryption key, or to an expired one
    r = client.put(API, headers={**admin, **ZH}, json={"saml_encryption": "always"})
    assert r.status_code == 400 and "无法为该服务提供者加密断言" in r.json()["detail"]
    expired = metadata(encryption=encryption_cert("expired"))
    r = client.put(API, headers={**admin, **EN}, json={"saml_metadata": expired})
    assert r.status_code == 400
    assert "cannot be encrypted: the encryption certificate expired" in r.json()["detail"]
    r = client.put(API, headers=admin, json={"saml_metadata": expired,
                                             "saml_encryption": "never"})
    assert r.status_code == 200 and r.json()["sign_on"]["saml"]["encrypted"] is False
    r = client.put(API, headers=admin, json={"saml_encryption": "sometimes"})
    assert r.status_code == 400
    good = metadata(encryption=encryption_cert("good"))
    r = client.put(API, headers=admin, json={"saml_metadata": good,
                                             "saml_encryption": "metadata"})
    assert r.status_code == 200, r.text
    assert r.json()["sign_on"]["saml"]["encrypted"] is True
    assert changes_of(idp, "system_sign_on_changed")[-2]["after"]["saml"]["encryption"] == (
        "never")

    # the CLI, as the operator
    run = govgate_cli(idp)
    code, out = run("system", "sign-on", "offices", "--cas-service", "http://oa.example/x",
                    lang="zh_CN.UTF-8")
    assert code != 0 and "须为 https" in out
    code, out = run("system", "sign-on", "offices", "--name-id", "persistent",
                    "--cas-service", NEW + "*", "--cas-service", CAS_SYSTEM["cas_services"][1])
    assert code == 0, out
    assert f"cas_services\t{NEW}* {CAS_SYSTEM['cas_services'][1]}\n" in out
    assert ("saml\thttps://archives.example/shibboleth (name_id persistent, "
            "encrypt_assertions metadata: encrypted)") in out
    code, out = run("system", "sign-on", "offices", "--encrypt-assertions", "never")
    assert code == 0 and "encrypt_assertions never: signed only" in out, out
    (tmp_path / "sp.xml").write_bytes(b"\xff<md")
    code, out = run("system", "sign-on", "offices", "--saml-metadata",
                    str(tmp_path / "sp.xml"))
    assert code != 0 and "not UTF-8" in out

    # the console's system page
    console = sysadmin_console(client, idp)
    page = console.get("/portal/admin/systems/offices")
    assert page.status_code == 200 and "登录方式" in page.text
    assert "https://archives.example/shibboleth" in page.text
    assert '<option value="never" selected>' in page.text and "仅签名、未加密" in page.text
    form = {"csrf_token": csrf_of(page.text), "cas_services": "https://oa.example/a#b",
            "saml_metadata": "", "saml_name_id": "persistent", "saml_encryption": "always"}
    r = console.post("/portal/admin/systems/offices/sign-on", data=form)
    assert r.status_code == 400 and "不得含片段" in r.text
    r = console.post("/portal/admin/systems/offices/sign-on", follow_redirects=False,
                     data={**form, "cas_services": f"{NEW}*\n"})
    assert r.status_code == 303
    saml = client.get(API, headers=admin).json()["sign_on"]["saml"]
    assert (saml["encryption"], saml["encrypted"]) == ("always", True)
    r = console.post("/portal/admin/systems/offices/sign-on", follow_redirects=False,
                     data={**form, "cas_services": f"{NEW}*\n", "remove_saml": "1"})
    assert r.status_code == 303
    assert "已保存系统 offices 的登录方式" in console.get(r.headers["location"]).text
    shown = client.get(API, headers=admin).json()["sign_on"]
    assert shown == {"cas_services": [NEW + "*"], "saml": None,
                     "name_ids": ["persistent", "transient"],
                     "encryptions": ["metadata", "always", "never"]}


def test_one_cas_address_is_added_or_removed_without_the_others(
        client: TestClient, idp: Services) -> None:
    """The sign-on replaced the whole address list (the sixth session's "Found and
    left"): the API's cas_services_add/_remove, the CLI's --add-cas-service and
    --remove-cas-service, and the console's add field and remove buttons change one
    address and keep the rest as stored."""
    admin = {"Authorization": "Bearer " + access_token(
        idp, sub="sysadmin", department="platform", roles=["sysadmin"],
        scope="openid admin")}
    first, second = CAS_SYSTEM["cas_services"]
    r = client.put(API, headers=admin, json={"cas_services_add": [NEW + "*"]})
    assert r.status_code == 200, r.text
    assert r.json()["sign_on"]["cas_services"] == [first, second, NEW + "*"]
    ticket_of(sign_in_from(client, cas_login(client, NEW + "app")), NEW + "app")
    record = changes_of(idp, "system_sign_on_changed")[-1]
    assert record["after"]["cas_services"] == [first, second, NEW + "*"]
    for body, zh_says in (({"cas_services_remove": ["https://nowhere.example/"]}, "不是系统"),
                          ({"cas_services_add": [second]}, "已是系统"),
                          ({"cas_services_add": ["http://oa.example/"]}, "须为 https"),
                          ({"cas_services": [first], "cas_services_add": [NEW]}, "二选一")):
        r = client.put(API, headers={**admin, **ZH}, json=body)
        assert r.status_code == 400 and zh_says in str(r.json()), (body, r.text)
    r = client.put(API, headers={**admin, **EN},
                   json={"cas_services_remove": ["https://nowhere.example/"]})
    assert "is not one of system 'offices'" in r.json()["detail"]

    run = govgate_cli(idp)
    code, out = run("system", "sign-on", "offices", "--remove-cas-service", second)
    assert code == 0, out
    assert f"cas_services\t{first} {NEW}*\n" in out
    code, out = run("system", "sign-on", "offices", "--no-cas", "--add-cas-service", second)
    assert code != 0 and "not both" in out

    console = sysadmin_console(client, idp)
    page = console.get("/portal/admin/systems/offices")
    assert page.text.count('name="cas_remove"') == 2 and 'id="cas_add"' in page.text
    csrf = csrf_of(page.text)
    r = console.post("/portal/admin/systems/offices/sign-on", follow_redirects=False,
                     data={"csrf_token": csrf, "cas_add": second})
    assert r.status_code == 303, r.text
    r = console.post("/portal/admin/systems/offices/sign-on", follow_redirects=False,
                     data={"csrf_token": csrf, "cas_remove": first})
    assert r.status_code == 303, r.text
    r = console.post("/portal/admin/systems/offices/sign-on",
                     data={"csrf_token": csrf, "cas_remove": first})
    assert r.status_code == 400 and "不是系统" in r.text
    assert client.get(API, headers=admin).json()["sign_on"]["cas_services"] == [
        NEW + "*", second]

    # the page's whole form saved as the browser sends it, its box untouched: an
    # address another operator added meanwhile stays (the box was the page's copy)
    page = console.get("/portal/admin/systems/offices")
    form = re.search(r'<form[^>]*id="sign-on".*?</form>', page.text, re.S)
    assert form is not None
    fields = {m[0]: html.unescape(m[1]) for m in re.findall(
        r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form[0])}
    box = re.search(r'<textarea id="cas_services"[^>]*>(.*?)</textarea>', form[0], re.S)
    assert box is not None
    assert client.put(API, headers=admin, json={"cas_services_add": [first]}).status_code == 200
    r = console.post("/portal/admin/systems/offices/sign-on", follow_redirects=False,
                     data={**fields, "cas_services": html.unescape(box[1]),
                           "saml_metadata": "", "saml_name_id": "persistent",
                           "saml_encryption": "metadata"})
    assert r.status_code == 303, r.text
    assert client.get(API, headers=admin).json()["sign_on"]["cas_services"] == [
        NEW + "*", second, first]
    # the box changed: it is the list
    r = console.post("/portal/admin/systems/offices/sign-on", follow_redirects=False,
                     data={**fields, "cas_services": second, "saml_metadata": ""})
    assert r.status_code == 303, r.text
    assert client.get(API, headers=admin).json()["sign_on"]["cas_services"] == [second]


def test_another_departments_admin_cannot_take_a_systems_cas_addresses(
        client: TestClient, idp: Services) -> None:
    """``offices`` (jgswj) registers ``ORIGIN/cas/*``. The system administrator of
    nn-jgsw, on a system of their own department, registered the very same pattern, or
    a longer one under it (the longest wins): ``/cas/login`` then issued tickets for
    jgswj's addresses as nn-jgsw's system, whose release list the validation used and
    whose name the sign-in records carried. The state file refused a pattern twice only
    within one file: the API applies one system at a time."""
    apply_state(idp, {
        "users": [{"username": "sys.nn", "name": "市系统管理员", "department": "nn-jgsw",
                   "roles": ["sysadmin"], "password": DEMO_PASSWORD, "must_change": False}],
        "systems": [{"code": "nn-oa", "name": "市办公系统", "department": "nn-jgsw",
                     "upstream": "https://oa.nn.example"}]})
    nn = {"Authorization": "Bearer " + access_token(
        idp, sub="sys.nn", department="nn-jgsw", roles=["sysadmin"], scope="openid admin"),
        **EN}
    mine = "/api/v1/admin/systems/nn-oa/sign-on"
    taken = CAS_SYSTEM["cas_services"]
    for services in ([taken[0]], [taken[1]], [SERVICE + "*"], [SERVICE + "deep"],
                     [ORIGIN + "/*"]):
        r = client.put(mine, headers=nn, json={"cas_services": services})
        assert r.status_code == 403, (services, r.text)
        assert "overlaps one of a system of another department" in r.json()["detail"]
        assert "offices" not in r.text and "jgswj" not in r.text  # whose: not told
    # nor one address at a time (the check read cas_services alone, and the API's
    # cas_services_add, like the console's add field, went round it)
    for services in ([taken[0]], [" " + SERVICE + "deep "]):
        r = client.put(mine, headers=nn, json={"cas_services_add": services})
        assert r.status_code == 403, (services, r.text)
        assert "overlaps one of a system of another department" in r.json()["detail"]
    assert client.get(mine, headers=nn).json()["sign_on"]["cas_services"] == []
    refused = [r for r in audit_events(idp, "admin_change") if r["outcome"] == "deny"]
    assert len(refused) == 7
    # its own host is its own
    r = client.put(mine, headers=nn, json={"cas_services": ["https://oa.nn.example/cas/*"]})
    assert r.status_code == 200, r.text
    ticket_of(sign_in_from(client, cas_login(client, SERVICE + "deep")), SERVICE + "deep")
    issued = [r for r in audit_events(idp, "cas_login") if r["outcome"] == "success"]
    assert issued[-1]["system"] == "offices"

    # the operator's: one pattern is one system's, against the stored systems too (it
    # was checked within one file only); nesting stays theirs to decide (docs/sso.md)
    admin = {"Authorization": "Bearer " + access_token(
        idp, sub="sysadmin", department="platform", roles=["sysadmin"],
        scope="openid admin"), **EN}
    r = client.put("/api/v1/admin/systems/assets/sign-on", headers=admin,
                   json={"cas_services": [taken[0]]})
    assert r.status_code == 400, r.text
    assert "is registered by system 'offices' too" in r.json()["errors"][0]
    r = client.put("/api/v1/admin/systems/assets/sign-on", headers=admin,
                   json={"cas_services": [SERVICE + "deep/*"]})
    assert r.status_code == 200, r.text
