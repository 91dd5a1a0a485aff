"""``govgate keys ...`` through click's CliRunner (in-process)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from gateway.cli.keys_cmd import keys
from keys import STANDARD, FileMasterKey, KeyService
from keys.master import generate_master_key_text


@pytest.fixture
def ready(engine: sa.Engine, home: Path, env: dict[str, str]) -> dict[str, str]:
    """An initialised home: master key file, data key, one key per use."""
    master = FileMasterKey.create(home / "master.key")
    KeyService(engine, master, STANDARD).bootstrap()
    return {k: v for k, v in env.items() if k.startswith("GOVGATE_")}


def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(keys, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_list(ready: dict[str, str]) -> None:
    code, out, _ = run(ready, "list")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].split()[:4] == ["KID", "USE", "ALG", "STATE"]
    assert sorted(line.split()[1] for line in lines[1:]) == ["assertion", "audit", "token"]
    code, out, _ = run(ready, "list", "--json")
    data = json.loads(out)
    assert {d["state"] for d in data} == {"active"} and len(data) == 3


def test_rotate_promote_destroy(ready: dict[str, str]) -> None:
    code, out, _ = run(ready, "rotate", "--use", "token", "--alg", "EdDSA")
    assert code == 0 and "token:" in out and "pending" in out
    code, _, err = run(ready, "rotate", "--use", "token")
    assert code == 1 and err.startswith("error: ") and "already pending" in err
    assert len(err.strip().splitlines()) == 1
    code, out, _ = run(ready, "promote")
    assert code == 0 and "nothing due" in out  # prepublication delay not passed
    code, out, _ = run({**ready, "GOVGATE_KEY_PREPUBLISH_SECONDS": "0"}, "promote")
    assert code == 0 and "-> active" in out and "-> retired" in out
    infos = json.loads(run(ready, "list", "--json")[1])
    token = {i["state"]: i for i in infos if i["use"] == "token"}
    assert token["active"]["alg"] == "EdDSA"
    code, _, err = run(ready, "destroy", token["active"]["kid"], "--yes")
    assert code == 1 and "only active" in err
    code, out, _ = run(ready, "destroy", token["retired"]["kid"], "--yes")
    assert code == 0 and "destroyed" in out
    code, _, err = run(ready, "destroy", "nope", "--yes")
    assert code == 1 and "no signing key" in err


def test_maintain(ready: dict[str, str]) -> None:
    code, out, _ = run(ready, "maintain")
    assert code == 0 and "nothing due" in out
    code, out, _ = run({**ready, "GOVGATE_KEY_ROTATE_DAYS": "0"}, "maintain")
    assert code == 0 and "nothing due" in out  # 0 disables scheduled rotation
    code, out, _ = run(ready, "rotate-data-key")
    assert code == 0 and "rotated" in out


def test_rotate_now_and_all_uses(ready: dict[str, str]) -> None:
    code, out, _ = run(ready, "rotate", "--now")
    assert code == 0 and out.count("active") == 3
    infos = json.loads(run(ready, "list", "--json")[1])
    assert sorted(i["state"] for i in infos) == ["active"] * 3 + ["retired"] * 3


def test_usage_errors_exit_2(ready: dict[str, str]) -> None:
    assert run(ready, "rotate", "--use", "email")[0] == 2
    assert run(ready, "rotate", "--alg", "HS256")[0] == 2
    assert run(ready, "destroy")[0] == 2
    assert run(ready, "rotate-master", "--new-env", "A", "--new-file", "b")[0] == 2


def test_jwks(ready: dict[str, str]) -> None:
    code, out, _ = run(ready, "jwks", "--use", "audit")
    doc = json.loads(out)
    assert code == 0 and len(doc["keys"]) == 1 and "d" not in doc["keys"][0]


def test_rotate_master_file(ready: dict[str, str], home: Path) -> None:
    old_text = (home / "master.key").read_text()
    code, out, err = run(ready, "rotate-master")
    assert code == 0, err
    assert "re-wrapped 1 data keys" in out
    new_text = (home / "master.key").read_text()
    assert new_text != old_text
    assert stat.S_IMODE((home / "master.key").stat().st_mode) == 0o600
    kept = [p for p in os.listdir(home) if p.startswith("master.key.old-")]
    assert len(kept) == 1 and (home / kept[0]).read_text() == old_text
    assert not (home / "master.key.new").exists()
    code, out, _ = run(ready, "list")  # opens with the new key
    assert code == 0


def test_rotate_master_env(ready: dict[str, str]) -> None:
    env = {**ready, "NEW_MK": generate_master_key_text()}
    code, out, err = run(env, "rotate-master", "--new-env", "NEW_MK")
    assert code == 0, err
    assert "master_key_env=NEW_MK" in out
    env2 = {**env, "GOVGATE_MASTER_KEY_PROVIDER": "env", "GOVGATE_MASTER_KEY_ENV": "NEW_MK"}
    assert run(env2, "list")[0] == 0



def test_a_master_key_variable_in_the_govgate_namespace(ready: dict[str, str]) -> None:
    """``GOVGATE_MASTER_KEY_2`` named by ``master_key_env`` is the key, not an unknown
    setting (the gateway refused to start, and ``rotate-master --new-env`` could not be
    given one); another unknown GOVGATE_ name still is."""
    env = {**ready, "GOVGATE_MASTER_KEY_2": generate_master_key_text()}
    code, _, err = run(env, "rotate-master", "--new-env", "GOVGATE_MASTER_KEY_2")
    assert code == 0, err
    env2 = {**env, "GOVGATE_MASTER_KEY_PROVIDER": "env",
            "GOVGATE_MASTER_KEY_ENV": "GOVGATE_MASTER_KEY_2"}
    code, _, err = run(env2, "list")
    assert code == 0, err
    code, _, err = run({**env2, "GOVGATE_MASTR_KEY": "x"}, "list")
    assert code != 0 and "GOVGATE_MASTR_KEY" in err


def test_wrong_or_unsafe_master_key(ready: dict[str, str], home: Path) -> None:
    os.chmod(home / "master.key", 0o644)
    code, _, err = run(ready, "list")
    assert code == 1 and "master key (file" in err and "chmod 600" in err
    os.chmod(home / "master.key", 0o600)
    os.rename(home / "master.key", home / "elsewhere.key")
    FileMasterKey.create(home / "master.key")
    code, _, err = run(ready, "list")
    assert code == 1 and "master key (file" in err and len(err.strip().splitlines()) == 1


def test_root_cli_registers_keys(ready: dict[str, str]) -> None:
    from gateway.cli.main import cli

    result = CliRunner().invoke(cli, ["keys", "list"], env=ready)
    assert result.exit_code == 0, result.output
    assert "token" in result.stdout


def test_rotate_master_new_file_refuses_what_could_lose_a_key(
        ready: dict[str, str], home: Path, tmp_path: Path) -> None:
    """``--new-file`` never overwrites (the current key above all), never creates a
    missing folder, and a refusal changes nothing: the current key still opens."""
    current = home / "master.key"
    old_text = current.read_text()
    other = tmp_path / "other.key"
    other.write_text("keep me\n")
    alias = tmp_path / "alias.key"
    os.link(current, alias)
    dangling = tmp_path / "dangling.key"
    dangling.symlink_to(tmp_path / "nowhere.key")
    refusals = {
        str(current): f"{current} is the current master key file; name a new file, or "
                      "leave out --new-file to replace it in place",
        str(home / ".." / home.name / "master.key"): "is the current master key file",
        str(alias): f"{alias} is the current master key file",
        str(other): f"{other} already exists; refusing to overwrite it",
        str(dangling): f"{dangling} already exists; refusing to overwrite it",
        str(tmp_path / "typo" / "new.key"): f"{tmp_path / 'typo'}: no such directory; "
                                            "create it first",
    }
    for path, message in refusals.items():
        code, out, err = run(ready, "rotate-master", "--new-file", path)
        assert code == 2, (path, out, err)
        assert err.startswith("error: ") and message in err, (path, err)
        assert len(err.strip().splitlines()) == 1 and out == ""
    assert current.read_text() == old_text and other.read_text() == "keep me\n"
    assert not (tmp_path / "typo").exists() and not (tmp_path / "nowhere.key").exists()
    assert not [p for p in os.listdir(home) if p.startswith("master.key.")]
    assert run(ready, "list")[0] == 0  # the data keys are still under the current key
    code, _, err = run({**ready, "LANG": "zh_CN.UTF-8", "LC_ALL": "zh_CN.UTF-8"},
                       "rotate-master", "--new-file", str(other))
    assert code == 2 and err == f"错误：{other} 已存在，拒绝覆盖；请指定一个尚不存在的文件\n"


def test_rotate_master_new_file(ready: dict[str, str], home: Path, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative --new-file is named absolutely in the advice: master_key_file is read
    from wherever the gateway later starts."""
    old_text = (home / "master.key").read_text()
    (tmp_path / "keys").mkdir()
    monkeypatch.chdir(tmp_path)
    code, out, err = run(ready, "rotate-master", "--new-file", "keys/next.key")
    assert code == 0, err
    new = tmp_path / "keys" / "next.key"
    assert out.strip().endswith(f"master_key_file={new}")
    assert stat.S_IMODE(new.stat().st_mode) == 0o600
    assert (home / "master.key").read_text() == old_text  # left for the operator to retire
    assert run({**ready, "GOVGATE_MASTER_KEY_FILE": str(new)}, "list")[0] == 0


ZH = {"LANG": "zh_CN.UTF-8", "LC_ALL": "zh_CN.UTF-8"}
C = {"LANG": "C", "LC_ALL": "C"}


def test_keys_commands_speak_chinese_under_a_chinese_locale(ready: dict[str, str],
                                                           home: Path) -> None:
    """Headers and sentences in Chinese; key ids, uses, algorithms, states, dates and
    the JSON listing as they are."""
    zh, en = {**ready, **ZH}, {**ready, **C}
    code, out, _ = run(zh, "list")
    header = out.splitlines()[0].split()
    assert code == 0 and header[:4] == ["KID", "用途", "算法", "状态"]
    assert header[4:] == ["创建时间", "启用时间", "停用时间", "移出", "JWKS", "时间"]
    assert out.splitlines()[1].split()[1:4] == ["assertion", "ES256", "active"]
    # columns line up by terminal width: each value starts below its (wide) header
    lines = out.splitlines()
    assert lines[1].index(" assertion ") + 1 == lines[0].index("用途")
    assert run(en, "list")[1].splitlines()[0].split()[:4] == ["KID", "USE", "ALG", "STATE"]
    assert json.loads(run(zh, "list", "--json")[1]) == json.loads(run(en, "list", "--json")[1])

    code, out, _ = run(zh, "rotate", "--use", "token")
    assert code == 0 and out.startswith("token: token-") and " ES256 pending（自 " in out
    assert out.rstrip().endswith("起用于签名）")
    code, _, err = run(zh, "rotate", "--use", "token")
    assert code == 1 and err == "错误：已有一个待启用的 token 密钥；请先启用或销毁它\n"
    code, _, err = run(en, "rotate", "--use", "token")
    assert err == "error: a token key is already pending; promote or destroy it first\n"
    assert run(zh, "promote")[1] == "没有到期需要处理的密钥。\n"
    assert run(en, "promote")[1] == "nothing due\n"
    code, _, err = run(zh, "destroy", "nope", "--yes")
    assert code == 1 and err == "错误：签名密钥 'nope' 不存在\n"
    assert run(en, "destroy", "nope", "--yes")[2] == "error: no signing key 'nope'\n"
    active = next(i for i in json.loads(run(en, "list", "--json")[1]) if i["use"] == "audit")
    code, _, err = run(zh, "destroy", active["kid"], "--yes")
    assert err == f"错误：密钥 {active['kid']} 是唯一生效的 audit 密钥；请先轮换并启用新密钥\n"
    assert run(zh, "rotate-data-key")[1] == "已轮换数据密钥。\n"
    assert run(en, "rotate-data-key")[1] == "data key rotated\n"

    code, _, err = run(zh, "rotate-master", "--new-env", "A", "--new-file", "b")
    assert code == 2 and "--new-file、--new-env、--new-pkcs11-key-label 最多只能指定一个" in err
    code, out, err = run(zh, "rotate-master")
    assert code == 0, err
    assert out.startswith("已用新主密钥 kcv:") and "重新封装 3 个数据密钥；" in out
    assert f"已替换 {home / 'master.key'}；旧主密钥保留为 master.key.old-" in out
    from keys.master import generate_master_key_text

    code, out, err = run({**en, "NEW_MK": generate_master_key_text()},
                         "rotate-master", "--new-env", "NEW_MK")
    assert code == 0, err
    assert out.startswith("re-wrapped 3 data keys under kcv:")
    assert out.rstrip().endswith("; now set master_key_provider=env and master_key_env=NEW_MK")


def test_master_key_errors_in_both_languages(ready: dict[str, str], home: Path) -> None:
    key = home / "master.key"
    os.chmod(key, 0o644)
    code, _, err = run({**ready, **ZH}, "list")
    assert code == 1 and err == (f"错误：主密钥（文件 {key}）：权限 0644 允许同组或其他用户访问；"
                                 "请运行 chmod 600\n")
    assert run({**ready, **C}, "list")[2] == (
        f"error: master key (file {key}): mode 0644 is group- or world-accessible; "
        "run chmod 600\n")
    os.chmod(key, 0o600)
    os.rename(key, home / "elsewhere.key")
    FileMasterKey.create(key)
    code, _, err = run({**ready, **ZH}, "list")
    assert code == 1 and err.startswith("错误：主密钥（文件）：数据密钥由 kcv:")
    assert "封装，而当前主密钥是 kcv:" in err
    key.unlink()
    code, _, err = run({**ready, **ZH}, "list")
    assert err == f"错误：主密钥（文件 {key}）：文件不存在；请运行 `govgate init`\n"
    assert run({**ready, **C}, "list")[2] == (
        f"error: master key (file {key}): missing; run `govgate init`\n")
