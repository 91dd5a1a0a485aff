"""A system's launcher address and its SAML SP's username release set where operators
work (the sixth session's "Found and left": the state file's only, and ``launch_url``
only for a SAML SP): ``launch_url`` through ``POST /api/v1/admin/systems/{code}``,
``govgate system update --launch-url`` and the system's console page, validated (no
``javascript:``, https or loopback http) in both languages, audited, exported, and the
portal's launcher then opening the system there; ``saml_release_username`` through the
sign-on's API, CLI and form, and the SP the SAML answers are made for then releasing
``uid``."""

from __future__ import annotations

import html
from pathlib import Path

import yaml
from starlette.testclient import TestClient

from gateway.services import Services
from tests.cas.conftest import govgate_cli, signed_in, sysadmin_console
from tests.cas.test_attribute_release import changes_of
from tests.oauth2.helpers import csrf_of
from tests.saml.test_state_file import metadata
from tests.tokens import access_token

SYSTEM = "/api/v1/admin/systems/offices"
OWN = "https://oa.agency.example/home"
ZH, EN = {"Accept-Language": "zh-CN"}, {"Accept-Language": "en"}


def _launcher_href(browser: TestClient) -> str:
    page = browser.get("/portal")
    assert page.status_code == 200, page.text
    start = page.text.index('data-system="offices"')
    href = page.text.rindex('href="', 0, start) + len('href="')
    return html.unescape(page.text[href:page.text.index('"', href)])


def test_the_launch_url_and_username_release_are_set_by_the_api_the_cli_and_the_console(
        client: TestClient, idp: Services, tmp_path: Path) -> None:
    admin = {"Authorization": "Bearer " + access_token(
        idp, sub="sysadmin", department="platform", roles=["sysadmin"],
        scope="openid admin")}
    staff = signed_in(client, idp, "zhang.san")
    assert _launcher_href(staff).startswith("/cas/login?service=")  # the CAS rule
    assert client.get(SYSTEM, headers=admin).json()["system"]["launch_url"] is None

    # refused: a script address, plain http off loopback; in both languages
    for bad, zh_says, en_says in (
            ("javascript:alert(1)", "须为完整的 http(s) 网址", "must be an absolute http(s) URL"),
            ("http://oa.agency.example/", "须为 https", "must be https")):
        zh = client.post(SYSTEM, headers={**admin, **ZH}, json={"launch_url": bad})
        en = client.post(SYSTEM, headers={**admin, **EN}, json={"launch_url": bad})
        assert zh.status_code == en.status_code == 400, zh.text
        assert zh_says in str(zh.json()) and en_says in str(en.json())
        assert "launch_url" in str(en.json())
    r = client.post(SYSTEM, headers=admin, json={"launch_url": OWN})
    assert r.status_code == 200, r.text
    assert r.json()["system"]["launch_url"] == OWN
    assert _launcher_href(staff) == OWN  # the agency's own address, not /s/ nor CAS
    record = changes_of(idp, "system_changed")[-1]
    assert record["before"]["launch_url"] is None and record["after"]["launch_url"] == OWN

    # the CLI: export carries it, "" removes it, a bad one is refused in Chinese
    run = govgate_cli(idp)
    code, _ = run("export", "-o", str(tmp_path / "state.yaml"))
    assert code == 0
    exported = yaml.safe_load((tmp_path / "state.yaml").read_text(encoding="utf-8"))
    assert next(s for s in exported["systems"] if s["code"] == "offices")["launch_url"] == OWN
    code, out = run("system", "update", "offices", "--launch-url", "data:text/html,x",
                    lang="zh_CN.UTF-8")
    assert code != 0 and "launch_url" in out and "须为完整的 http(s) 网址" in out
    code, out = run("system", "update", "offices", "--launch-url", "")
    assert code == 0, out
    assert _launcher_href(staff).startswith("/cas/login?service=")

    # the console's system page: the field, its refusal, its change
    console = sysadmin_console(client, idp)
    page = console.get("/portal/admin/systems/offices")
    assert page.status_code == 200 and "门户入口地址" in page.text
    fields = {"csrf_token": csrf_of(page.text), "name": "办公用房管理系统",
              "department": "jgswj", "upstream": client.get(SYSTEM, headers=admin).json()[
                  "system"]["upstream"], "portal_path": "/", "identity_headers": "assertion"}
    r = console.post("/portal/admin/systems/offices",
                     data={**fields, "launch_url": "javascript:alert(1)"})
    assert r.status_code == 400 and "须为完整的 http(s) 网址" in r.text
    r = console.post("/portal/admin/systems/offices", follow_redirects=False,
                     data={**fields, "launch_url": OWN})
    assert r.status_code == 303, r.text
    assert _launcher_href(staff) == OWN
    assert f'id="s-launch-url" type="url" value="{OWN}"' in console.get(
        "/portal/admin/systems/offices").text

    # the SAML SP's username release: refused without an SP, then the API, CLI, form
    sign_on = SYSTEM + "/sign-on"
    r = client.put(sign_on, headers={**admin, **ZH}, json={"saml_release_username": True})
    assert r.status_code == 400 and "未登记 SAML 服务提供者" in r.json()["detail"]
    r = client.put(sign_on, headers=admin, json={"saml_metadata": metadata(),
                                                  "saml_release_username": True})
    assert r.status_code == 200, r.text
    assert r.json()["sign_on"]["saml"]["release_username"] is True
    code, out = run("saml", "list")
    assert code == 0 and "uid" in next(x for x in out.splitlines() if "offices" in x)
    after = changes_of(idp, "system_sign_on_changed")[-1]
    assert after["before"]["saml"] is None and after["after"]["saml"]["release_username"]
    code, out = run("system", "sign-on", "offices", "--no-release-username")
    assert code == 0 and "(name_id persistent, encrypt_assertions" in out, out
    code, out = run("saml", "list")
    assert "uid" not in next(x for x in out.splitlines() if "offices" in x)
    page = console.get("/portal/admin/systems/offices")
    assert 'id="saml_release_username">' in page.text  # not ticked
    r = console.post("/portal/admin/systems/offices/sign-on", follow_redirects=False, data={
        "csrf_token": csrf_of(page.text), "cas_services": "\n".join(
            client.get(sign_on, headers=admin).json()["sign_on"]["cas_services"]),
        "saml_metadata": "", "saml_name_id": "persistent", "saml_release_username": "1"})
    assert r.status_code == 303, r.text
    assert client.get(sign_on, headers=admin).json()["sign_on"]["saml"]["release_username"]


def test_what_forward_auth_releases_is_set_by_the_api_the_cli_and_the_console(
        client: TestClient, idp: Services, tmp_path: Path) -> None:
    """Forward-auth's 200 carried no display name (the sixth session's "Found and
    left"); a system's ``forward_auth_attributes`` now says whether it adds name and
    region (department and roles it always carries: listing them is refused)."""
    admin = {"Authorization": "Bearer " + access_token(
        idp, sub="sysadmin", department="platform", roles=["sysadmin"],
        scope="openid admin")}
    release = SYSTEM + "/release"
    shown = client.get(release, headers=admin).json()["release"]
    assert shown["forward_auth"] == [] and shown["forward_auth_attributes"] == [
        "name", "region"]
    r = client.put(release, headers={**admin, **ZH}, json={"forward_auth": ["roles"]})
    assert r.status_code == 400 and "须为 name, region 之一" in r.text, r.text
    r = client.put(release, headers=admin, json={"forward_auth": ["region", "name"]})
    assert r.status_code == 200 and r.json()["release"]["forward_auth"] == ["name", "region"]
    after = changes_of(idp, "system_release_changed")[-1]
    assert after["before"]["forward_auth"] == [] and after["after"]["forward_auth"] == [
        "name", "region"]

    run = govgate_cli(idp)
    code, out = run("system", "release", "offices", "--forward-auth", "name")
    assert code == 0 and "forward_auth\tname\n" in out, out
    code, out = run("system", "release", "offices", "--forward-auth", "roles",
                    lang="zh_CN.UTF-8")
    assert code != 0 and "每个前置认证应答都已包含 'roles'" in out
    code, out = run("export", "-o", str(tmp_path / "s.yaml"))
    assert code == 0, out
    exported = yaml.safe_load((tmp_path / "s.yaml").read_text(encoding="utf-8"))
    entry = next(s for s in exported["systems"] if s["code"] == "offices")
    assert entry["forward_auth_attributes"] == ["name"]

    console = sysadmin_console(client, idp)
    page = console.get("/portal/admin/systems/offices")
    assert 'id="release-forward_auth"' in page.text and "前置认证" in page.text
    assert 'id="r-forward_auth-name" checked' in page.text
    assert 'id="r-forward_auth-roles"' not in page.text
    r = console.post("/portal/admin/systems/offices/release", follow_redirects=False, data={
        "csrf_token": csrf_of(page.text), "protocol": ["cas", "forward_auth"],
        "cas": ["name"], "forward_auth": ["region"]})
    assert r.status_code == 303, r.text
    assert client.get(release, headers=admin).json()["release"]["forward_auth"] == ["region"]
