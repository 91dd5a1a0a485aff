"""One real ``slapd`` for the module (tests.directory.slapd), and a gateway home
initialised with the directory's settings."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from gateway.directory import DirectoryConfig
from gateway.services import Services, open_services
from gateway.settings import load_settings
from tests.directory.slapd import ADMIN_DN, ADMIN_PASSWORD, BASE, SLAPD, Slapd, tree_ldif
from tests.gateway.test_cli import here

# the admin groups of the tree (系统管理员, 审计员) map to no role: 三员 are the operator's
GROUP_ROLES = "数据管理员=data_steward"


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    if not os.path.exists(SLAPD):
        pytest.skip("slapd is not installed (apt-get install slapd ldap-utils)")
    server = Slapd(tmp_path_factory.mktemp("slapd"), trustme.CA())
    server.prepare(tree_ldif())
    server.start()
    yield server
    server.stop()


def directory_env(server: Slapd, **more: str) -> dict[str, str]:
    return {"GOVGATE_DIRECTORY_URL": server.url, "GOVGATE_DIRECTORY_BASE_DN": BASE,
            "GOVGATE_DIRECTORY_BIND_DN": ADMIN_DN,
            "GOVGATE_DIRECTORY_BIND_PASSWORD": ADMIN_PASSWORD,
            "GOVGATE_DIRECTORY_REGION": "local",
            "GOVGATE_DIRECTORY_GROUP_ROLES": GROUP_ROLES, **more}


@pytest.fixture
def denv(env: dict[str, str], slapd: Slapd) -> dict[str, str]:
    """An initialised gateway home whose settings name the module's directory."""
    assert here(env, "init").returncode == 0
    if not slapd.process or slapd.process.poll() is not None:
        slapd.start()  # a test stopped it
    return {**env, **directory_env(slapd)}


@pytest.fixture
def services(denv: dict[str, str], home: Path) -> Iterator[Services]:
    opened = open_services(load_settings(denv), environ=denv)
    yield opened
    opened.close()


def config_of(env: dict[str, str], **more: str) -> DirectoryConfig:
    """The directory of ``env``'s settings, with ``more`` of them."""
    config = DirectoryConfig.from_settings(load_settings({**env, **more}))
    assert config is not None
    return config
