"""govgate client ... and govgate session ... through click."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner
from starlette.testclient import TestClient

from gateway.cli.main import cli
from gateway.services import Services
from tests.oauth2.helpers import code_flow
from tests.wiring import parts


def _run(idp: Services, *args: str) -> tuple[int, str]:
    env = {"GOVGATE_HOME": str(idp.settings.home),
           "GOVGATE_DATABASE_URL": idp.settings.database_url, "LANG": "C.UTF-8"}
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def test_client_add_rotate_disable(client: TestClient, idp: Services) -> None:
    code, out = _run(idp, "client", "add", "assets-sync", "--name", "资产同步",
                     "--department", "czt", "--grant-type", "client_credentials")
    assert code == 0, out
    secret = re.search(r"\): (\S+)", out).group(1)
    assert len(secret) >= 40
    r = client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                    auth=("assets-sync", secret))
    assert r.status_code == 200, r.text
    # a client of client_credentials alone may call systems by default: its token holds
    # proxy (it held "openid profile", which the proxy refuses: insufficient_scope)
    assert r.json()["scope"] == "proxy"
    bearer = {"Authorization": "Bearer " + r.json()["access_token"], "Accept-Language": "zh"}
    refused = client.get("/s/no-such-system/x", headers=bearer)
    assert refused.status_code == 404, refused.text  # past the scope check
    # an old system that knows only Basic or a fixed key: opted in, it calls /s/ as its
    # token would, over https (plain HTTP from off the loopback is refused: the test
    # client's peer is "testclient")
    code, out = _run(idp, "client", "static-credential", "assets-sync", "basic")
    assert code == 0 and "HTTP Basic" in out, out
    parts(idp).provider.server.clients.invalidate()  # another process's change
    over_https = "https://testserver/s/no-such-system/x"
    assert client.get(over_https, auth=("assets-sync", secret)).status_code == 404
    assert client.get("/s/no-such-system/x", auth=("assets-sync", secret)).status_code == 401
    code, out = _run(idp, "client", "static-credential", "assets-sync", "api_key")
    key = re.search(r"(assets-sync\.\S+)", out).group(1)
    parts(idp).provider.server.clients.invalidate()
    assert client.get(over_https, headers={"X-Api-Key": key}).status_code == 404
    assert client.get(over_https, auth=("assets-sync", secret)).status_code == 401
    code, out = _run(idp, "export")
    assert re.search(r"client_id: assets-sync\n(.*\n)*?\s+static_credential: api_key", out)
    code, out = _run(idp, "client", "static-credential", "assets-sync", "off")
    assert code == 0
    code, out = _run(idp, "client", "add", "web-x", "--name", "网页", "--department", "czt",
                     "--grant-type", "authorization_code", "--redirect-uri",
                     "https://web-x.example/cb")
    assert code == 0, out
    code, out = _run(idp, "export")
    assert re.search(r"client_id: web-x\n(.*\n)*?\s+scope: openid profile", out), out
    code, out = _run(idp, "client", "static-credential", "web-x", "basic")
    assert code == 1 and "client_credentials" in out, out
    code, out = _run(idp, "client", "list")
    assert "assets-sync" in out and secret not in out
    code, out = _run(idp, "client", "rotate-secret", "assets-sync")
    new = re.search(r"\): (\S+)", out).group(1)
    assert new != secret
    parts(idp).provider.server.clients.invalidate()
    assert client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                       auth=("assets-sync", secret)).status_code == 401
    assert client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                       auth=("assets-sync", new)).status_code == 200
    code, out = _run(idp, "client", "disable", "assets-sync")
    assert code == 0
    parts(idp).provider.server.clients.invalidate()
    assert client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                       auth=("assets-sync", new)).status_code == 401
    code, out = _run(idp, "client", "add", "assets-sync", "--name", "x", "--department", "czt",
                     "--grant-type", "client_credentials")
    assert code == 1
    code, out = _run(idp, "client", "enable", "assets-sync")
    assert code == 0 and "assets-sync" in out
    parts(idp).provider.server.clients.invalidate()
    assert client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                       auth=("assets-sync", new)).status_code == 200
    assert "\tactive" in _run(idp, "client", "list")[1]
    code, out = _run(idp, "client", "enable", "no-such-client")
    assert code != 0 and "no-such-client" in out


def test_session_list_and_revoke(client: TestClient, idp: Services) -> None:
    tokens = code_flow(client)
    code, out = _run(idp, "session", "list", "--user", "zhang.san")
    assert code == 0 and "zhang.san" in out
    code, out = _run(idp, "session", "revoke", "--user", "zhang.san")
    assert code == 0 and "1" in out
    assert client.get("/portal", follow_redirects=False).status_code == 303
    r = client.post("/oauth2/token", data={"grant_type": "refresh_token",
                                           "refresh_token": tokens["refresh_token"]},
                    auth=("office-web", "demo-office-secret-0123456789abcdef"))
    assert r.json()["error"] == "invalid_grant"
    code, out = _run(idp, "session", "revoke", "--user", "nobody")
    assert code == 1


def test_disabling_a_user_ends_their_sessions_and_refresh_tokens(
    client: TestClient, idp: Services
) -> None:
    tokens = code_flow(client)
    code, _ = _run(idp, "user", "disable", "zhang.san")
    assert code == 0
    assert client.get("/portal", follow_redirects=False).status_code == 303
    r = client.post("/oauth2/token", data={"grant_type": "refresh_token",
                                           "refresh_token": tokens["refresh_token"]},
                    auth=("office-web", "demo-office-secret-0123456789abcdef"))
    assert r.json()["error"] == "invalid_grant"
    r = client.get("/oauth2/userinfo",
                   headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert r.status_code == 401


def test_a_state_file_that_disables_a_user_ends_their_sessions(
    client: TestClient, idp: Services, tmp_path: Path
) -> None:
    tokens = code_flow(client)
    state = tmp_path / "disable.yaml"
    state.write_text(
        "users:\n  - {username: zhang.san, name: 张三, department: jgswj,\n"
        "     roles: [staff, data_steward], status: disabled}\n",
        encoding="utf-8",
    )
    code, out = _run(idp, "apply", "-f", str(state))
    assert code == 0 and "~ user zhang.san (status)" in out
    r = client.get("/oauth2/userinfo",
                   headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert r.status_code == 401


def _run_in(idp: Services, lang: str, *args: str) -> tuple[int, str, str]:
    env = {"GOVGATE_HOME": str(idp.settings.home),
           "GOVGATE_DATABASE_URL": idp.settings.database_url, "LANG": lang, "LC_ALL": lang}
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_client_and_session_commands_in_both_languages(client: TestClient,
                                                      idp: Services) -> None:
    zh, c = "zh_CN.UTF-8", "C"
    code, out, _ = _run_in(idp, zh, "client", "add", "assets-sync", "--name", "资产同步",
                           "--department", "czt", "--grant-type", "client_credentials")
    assert code == 0
    added, secret = out.splitlines()
    assert added == "已添加客户端 assets-sync。"
    assert secret.startswith("客户端密钥（只显示这一次，请妥善保存）：") and len(secret) > 40
    code, _, err = _run_in(idp, zh, "client", "add", "assets-sync", "--name", "x",
                           "--department", "czt", "--grant-type", "client_credentials")
    assert code == 1 and err == "错误：客户端 'assets-sync' 已存在\n"
    assert _run_in(idp, c, "client", "add", "assets-sync", "--name", "x", "--department",
                   "czt", "--grant-type", "client_credentials")[2] == (
        "error: client 'assets-sync' exists\n")
    code, _, err = _run_in(idp, zh, "client", "add", "web2", "--name", "网页", "--department",
                           "czt", "--grant-type", "authorization_code")
    assert code == 1 and err == ("错误：状态文件中有 1 处问题\n"
                                 "  - clients[0]：authorization_code 需要 redirect_uris\n")
    code, _, err = _run_in(idp, c, "client", "add", "web2", "--name", "网页", "--department",
                           "czt", "--grant-type", "authorization_code", "--redirect-uri",
                           "http://example.org/cb")
    assert code == 1 and err == (
        "error: 1 problem(s) in the state file\n"
        "  - clients[0]: redirect_uris: bad redirect URI 'http://example.org/cb' (http only "
        "for loopback; use https)\n")
    code, _, err = _run_in(idp, zh, "client", "add", "web2", "--name", "网页", "--department",
                           "czt", "--grant-type", "authorization_code", "--redirect-uri",
                           "http://example.org/cb")
    assert err == ("错误：状态文件中有 1 处问题\n"
                   "  - clients[0]：redirect_uris：回调地址 'http://example.org/cb' 无效"
                   "（http 只能用于本机回环地址；请使用 https）\n")
    code, out, _ = _run_in(idp, zh, "client", "rotate-secret", "assets-sync")
    assert code == 0 and out.startswith("已为 assets-sync 生成新密钥；旧密钥立即失效。\n客户端密钥")
    assert _run_in(idp, zh, "client", "disable", "assets-sync")[1] == "已停用客户端 assets-sync。\n"
    assert _run_in(idp, c, "client", "enable", "assets-sync")[1] == (
        "Client assets-sync enabled; tokens issued before it was disabled stay invalid.\n")
    assert _run_in(idp, zh, "client", "enable", "nope") == (1, "", "错误：客户端 'nope' 不存在\n")
    assert _run_in(idp, c, "client", "enable", "nope") == (1, "", "error: unknown client 'nope'\n")
    assert _run_in(idp, zh, "client", "list")[1] == _run_in(idp, c, "client", "list")[1]

    code_flow(client)
    assert _run_in(idp, zh, "session", "list")[1] == _run_in(idp, c, "session", "list")[1]
    assert _run_in(idp, zh, "session", "revoke", "--user", "zhang.san")[1] == (
        "已结束 zhang.san 的 1 个会话和 1 组刷新令牌。\n")
    assert _run_in(idp, c, "session", "revoke", "--user", "zhang.san")[1] == (
        "Ended 0 sessions and 0 refresh-token families of zhang.san.\n")
    assert _run_in(idp, zh, "session", "revoke", "--user", "nobody") == (
        1, "", "错误：用户 'nobody' 不存在\n")
