"""The directory's settings: refused when they cannot work, the service account's
password never from govgate.toml, and ``directory sync`` without a directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.directory import DirectoryConfig
from gateway.errors import SettingsError
from gateway.settings import load_settings
from tests.gateway.test_cli import here

GOOD = {"GOVGATE_DIRECTORY_URL": "ldaps://ldap.gxzf.gov.cn",
        "GOVGATE_DIRECTORY_BASE_DN": "dc=gov,dc=cn", "GOVGATE_DIRECTORY_REGION": "local"}


@pytest.mark.parametrize(("change", "message"), [
    ({"GOVGATE_DIRECTORY_URL": "https://ldap.gxzf.gov.cn"}, "not an ldap:// or ldaps://"),
    ({"GOVGATE_DIRECTORY_BASE_DN": ""}, "'directory_base_dn' is needed"),
    ({"GOVGATE_DIRECTORY_REGION": ""}, "'directory_region' is needed"),
    ({"GOVGATE_DIRECTORY_GROUP_ROLES": "审计员"}, "is not 'group cn=role'"),
    ({"GOVGATE_DIRECTORY_CA_FILE": "/nonexistent/ca.pem"}, "no such file"),
    ({"GOVGATE_DIRECTORY_PAGE_SIZE": "0"}, "must be above 0"),
])
def test_settings_that_cannot_work_are_refused(home: Path, change: dict[str, str],
                                               message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings({"GOVGATE_HOME": str(home), **GOOD, **change})


def test_the_service_password_from_a_file_or_the_environment_never_the_toml(
        home: Path) -> None:
    secret = home / "bind.pw"
    secret.write_text("s3rvice-Pw\n", encoding="utf-8")
    env = {"GOVGATE_HOME": str(home), **GOOD,
           "GOVGATE_DIRECTORY_GROUP_ROLES": "数据管理员=data_steward, 负责人=dept_head",
           "GOVGATE_DIRECTORY_BIND_PASSWORD_FILE": str(secret)}
    config = DirectoryConfig.from_settings(load_settings(env))
    assert config is not None and config.bind_password is not None
    assert config.bind_password.get() == "s3rvice-Pw"
    assert "s3rvice" not in repr(load_settings({**env, "GOVGATE_DIRECTORY_BIND_PASSWORD": "x"}))
    assert config.group_roles == (("数据管理员", "data_steward"), ("负责人", "dept_head"))
    (home / "govgate.toml").write_text('directory_bind_password = "s3rvice-Pw"\n',
                                       encoding="utf-8")
    with pytest.raises(SettingsError, match="environment only"):
        load_settings(env)


def test_sync_without_a_directory_is_one_line(env: dict[str, str]) -> None:
    assert here(env, "init").returncode == 0
    result = here(env, "directory", "sync")
    assert result.returncode == 1
    assert result.stderr.strip() == ("Error: no directory configured: set directory_url, "
                                     "directory_base_dn and directory_region")
