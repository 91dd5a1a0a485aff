"""The 国密 profile's world: settings with ``crypto_profile = "gm"`` (so SM4-GCM at
rest, SM3 chains and SM2 signatures), the proxy's test world on them, and the
``openssl`` command as the independent SM2 implementation the tests check against."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from gateway.settings import Settings, load_settings
from tests.idp_world import client, idp  # noqa: F401 - fixtures, on gm settings
from tests.keys.conftest import clock, make_service, master  # noqa: F401 - fixtures
from tests.proxy.conftest import base_services, world  # noqa: F401 - fixtures, on gm settings

# GM/T 0009's default distinguishing identifier, which Z is computed over
DEFAULT_ID = "1234567812345678"


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return load_settings({**env, "GOVGATE_CRYPTO_PROFILE": "gm"})


@pytest.fixture(scope="session")
def openssl() -> str:
    found = shutil.which("openssl")
    if found is None:
        pytest.skip("the openssl command is not installed (Debian package openssl)")
    return found


def openssl_run(openssl: str, *args: str | Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([openssl, *map(str, args)], capture_output=True, timeout=30,
                          check=False)
