"""OpenID Connect RP-Initiated Logout 1.0 section 2: ``client_id`` must match the
audience of the ``id_token_hint``, and ``post_logout_redirect_uri`` must be one of the
client's registered post-logout URIs (separate from its redirect URIs), matched
exactly; otherwise no redirect."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import yaml
from click.testing import CliRunner
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.cli.main import cli
from gateway.errors import StateFileError
from gateway.services import Services
from gateway.settings import Settings
from gateway.statefile import dump_yaml, export_state
from tests.oauth2.helpers import (
    OFFICE_CB,
    audit_events,
    authorize,
    close_services,
    code_flow,
    code_from,
    consented,
    login,
    make_services,
    pkce,
)
from tests.wiring import parts

OFFICE_OUT = "http://127.0.0.1:9102/"  # office-web's post-logout URI (gateway/demo/demo.yaml)
CZT_CB = "http://127.0.0.1:9300/callback"
CZT_OUT = "http://127.0.0.1:9300/signed-out"
CZT_WEB = {"client_id": "czt-web", "name": "财政一体化平台", "department": "czt",
           "grant_types": ["authorization_code"], "secret": "czt-web-secret-0123456789abcdef",
           "redirect_uris": [CZT_CB], "post_logout_redirect_uris": [CZT_OUT]}


@pytest.fixture
def idp(settings: Settings) -> Iterator[Services]:
    services = make_services(settings, extra_clients=[CZT_WEB])
    yield services
    close_services(services)


@pytest.fixture
def client(idp: Services) -> Iterator[TestClient]:
    with TestClient(create_app(parts(idp)), base_url="http://127.0.0.1:8080") as c:
        yield c


def _czt_id_token(client: TestClient, idp: Services) -> str:
    verifier, challenge = pkce()
    consented(idp, "zhang.san", "czt-web")  # jgswj's zhang.san at czt's client
    login(client)
    code = code_from(authorize(client, client_id="czt-web", redirect_uri=CZT_CB,
                               challenge=challenge))
    r = client.post("/oauth2/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": CZT_CB,
        "code_verifier": verifier}, auth=("czt-web", CZT_WEB["secret"]))
    assert r.status_code == 200, r.text
    return str(r.json()["id_token"])


def _logout(client: TestClient, **params: str) -> Any:
    return client.get("/oauth2/logout", params=params, follow_redirects=False)


def test_client_id_must_match_the_hints_audience(client: TestClient, idp: Services) -> None:
    hint = _czt_id_token(client, idp)
    r = _logout(client, id_token_hint=hint, client_id="office-web",
                post_logout_redirect_uri=OFFICE_OUT, state="s")
    assert r.status_code == 400 and "location" not in r.headers
    assert "text/html" in r.headers["content-type"]
    assert "无法完成退出请求" in r.text
    denied = [e for e in audit_events(idp, "logout") if e["outcome"] == "deny"]
    assert len(denied) == 1 and "office-web" in denied[0]["reason"]
    assert denied[0]["actor_client"] == "office-web"
    # nothing was ended: the mismatched request is refused as a whole
    assert client.get("/portal", follow_redirects=False).status_code == 200
    # the hint's own client and URI: signed out and sent back
    r = _logout(client, id_token_hint=hint, client_id="czt-web",
                post_logout_redirect_uri=CZT_OUT, state="s")
    assert r.status_code == 303 and r.headers["location"] == CZT_OUT + "?state=s"
    assert client.get("/portal", follow_redirects=False).status_code == 303


def test_without_client_id_the_hints_audience_decides(client: TestClient, idp: Services
                                                     ) -> None:
    hint = _czt_id_token(client, idp)
    r = _logout(client, id_token_hint=hint, post_logout_redirect_uri=OFFICE_OUT)
    assert r.status_code == 200 and "location" not in r.headers  # signed out, no redirect
    assert client.get("/portal", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("target", [
    OFFICE_CB,  # a redirect URI, not a post-logout URI
    OFFICE_OUT + "x", OFFICE_OUT.rstrip("/"), OFFICE_OUT + "?next=https://evil.example",
    OFFICE_OUT.upper(), OFFICE_OUT + "#f", CZT_OUT,  # another client's
])
def test_only_registered_post_logout_uris_exactly(client: TestClient, target: str) -> None:
    tokens = code_flow(client)
    r = _logout(client, id_token_hint=tokens["id_token"], client_id="office-web",
                post_logout_redirect_uri=target)
    assert "location" not in r.headers, target
    assert client.get("/portal", follow_redirects=False).status_code == 303


def test_the_registered_post_logout_uri(client: TestClient) -> None:
    tokens = code_flow(client)
    r = _logout(client, id_token_hint=tokens["id_token"], client_id="office-web",
                post_logout_redirect_uri=OFFICE_OUT, state="s1")
    assert r.status_code == 303
    assert r.headers["location"] == OFFICE_OUT + "?state=s1"


def test_state_file_registers_checks_and_exports_post_logout_uris(idp: Services) -> None:
    applier = parts(idp).state_applier()
    for bad, problem in (
            (["http://evil.example/out"], "http only for loopback"),
            (["https://rp.example/out#frag"], "no fragment"),
            ("https://rp.example/out", "must be a list"),
            ([42], "must be a URL string")):
        entry = {**CZT_WEB, "post_logout_redirect_uris": bad}
        with pytest.raises(StateFileError) as caught:
            applier.apply({"clients": [entry]})
        assert any("post_logout_redirect_uris" in p and problem in p
                   for p in caught.value.problems), caught.value.problems
    changes = applier.apply({"clients": [{**CZT_WEB, "post_logout_redirect_uris": [
        CZT_OUT, "https://czt.example/bye"]}]})
    assert [str(c) for c in changes] == ["~ client czt-web (post_logout_redirect_uris)"]
    exported = yaml.safe_load(dump_yaml(export_state(idp.engine)))
    (czt,) = [c for c in exported["clients"] if c["client_id"] == "czt-web"]
    assert czt["post_logout_redirect_uris"] == [CZT_OUT, "https://czt.example/bye"]
    (office,) = [c for c in exported["clients"] if c["client_id"] == "office-web"]
    assert office["post_logout_redirect_uris"] == [OFFICE_OUT]
    assert applier.apply(exported) == []


def test_cli_client_add_registers_post_logout_uris(client: TestClient, idp: Services) -> None:
    env = {"GOVGATE_HOME": str(idp.settings.home),
           "GOVGATE_DATABASE_URL": idp.settings.database_url, "LANG": "C.UTF-8"}
    result = CliRunner().invoke(cli, [
        "client", "add", "assets-web", "--name", "资产管理", "--department", "czt",
        "--grant-type", "authorization_code", "--redirect-uri", "http://127.0.0.1:9400/cb",
        "--post-logout-redirect-uri", "http://127.0.0.1:9400/bye"], env=env,
        catch_exceptions=False)
    assert result.exit_code == 0, result.output
    secret = re.search(r"\): (\S+)", result.output)
    assert secret
    verifier, challenge = pkce()
    consented(idp, "zhang.san", "assets-web")  # czt's client, jgswj's person
    login(client)
    code = code_from(authorize(client, client_id="assets-web",
                               redirect_uri="http://127.0.0.1:9400/cb", challenge=challenge))
    r = client.post("/oauth2/token", data={
        "grant_type": "authorization_code", "code": code,
        "redirect_uri": "http://127.0.0.1:9400/cb", "code_verifier": verifier},
        auth=("assets-web", secret.group(1)))
    hint = r.json()["id_token"]
    r = _logout(client, id_token_hint=hint, post_logout_redirect_uri="http://127.0.0.1:9400/bye")
    assert r.status_code == 303 and urlparse(r.headers["location"]).path == "/bye"
    assert parse_qs(urlparse(r.headers["location"]).query) == {}
    result = CliRunner().invoke(cli, [
        "client", "add", "bad-web", "--name", "x", "--department", "czt",
        "--grant-type", "authorization_code", "--redirect-uri", "http://127.0.0.1:9400/cb",
        "--post-logout-redirect-uri", "http://evil.example/bye"], env=env)
    assert result.exit_code == 1 and "post_logout_redirect_uris" in result.output
