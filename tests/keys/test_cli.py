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
    from keys.master import generate_master_key_text

    env = {**ready, "NEW_MK": generate_master_key_text()}
    code, out, err = run(env, "rotate-master", "--new-env", "NEW_MK")
    assert code == 0, err
    assert "master_key_env=NEW_MK" in out
    env2 = {**env, "GOVGATE_MASTER_KEY_PROVIDER": "env", "GOVGATE_MASTER_KEY_ENV": "NEW_MK"}
    assert run(env2, "list")[0] == 0


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
