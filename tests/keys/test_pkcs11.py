"""The PKCS#11 master-key provider against SoftHSM2 (a token created per test session)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from keys import FileMasterKey, KeyService, MasterKeyError, Pkcs11MasterKey
from keys.master import master_key_from_settings

MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
MODULE = next((p for p in MODULE_CANDIDATES if os.path.exists(p)), "")
UTIL = shutil.which("softhsm2-util")
TOKEN = "govgate-test"
PIN = "1234"

pytestmark = pytest.mark.skipif(
    not (MODULE and UTIL), reason="SoftHSM2 not installed (softhsm2-util / libsofthsm2.so)"
)


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\n"
        "log.level = ERROR\n"
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOFTHSM2_CONF", str(conf))
        subprocess.run(
            [UTIL, "--init-token", "--free", "--label", TOKEN, "--pin", PIN, "--so-pin", "5678"],
            check=True, capture_output=True,
        )
        yield MODULE


class _Pin:
    """Like gateway.settings.Secret: the provider calls .get()."""

    def get(self) -> str:
        return PIN


def test_create_wrap_unwrap(softhsm: str) -> None:
    key = Pkcs11MasterKey.create(softhsm, TOKEN, PIN, "mk-basic")
    assert key.name == "pkcs11" and key.key_id == f"pkcs11:{TOKEN}/mk-basic"
    blob = key.wrap(b"d" * 32, b"aad")
    assert key.unwrap(blob, b"aad") == b"d" * 32
    with pytest.raises(MasterKeyError, match="wrong master key"):
        key.unwrap(blob, b"other")
    with pytest.raises(MasterKeyError, match="refusing to overwrite"):
        Pkcs11MasterKey.create(softhsm, TOKEN, PIN, "mk-basic")
    # reopened by settings, with the PIN wrapped as a secret
    again = master_key_from_settings(
        "pkcs11", pkcs11_module=softhsm, pkcs11_token_label=TOKEN, pkcs11_pin=_Pin(),
        pkcs11_key_label="mk-basic",
    )
    assert again.unwrap(blob, b"aad") == b"d" * 32


def test_errors_name_the_provider(softhsm: str) -> None:
    Pkcs11MasterKey.create(softhsm, TOKEN, PIN, "mk-errors")
    cases = [
        ((softhsm, TOKEN, "0000", "mk-errors"), "wrong PIN"),
        ((softhsm, "no-such-token", PIN, "mk-errors"), "no such token"),
        ((softhsm, TOKEN, PIN, "no-such-key"), "no such key"),
        (("/nonexistent/libx.so", TOKEN, PIN, "mk-errors"), "cannot open token"),
    ]
    for args, reason in cases:
        with pytest.raises(MasterKeyError) as err:
            Pkcs11MasterKey(*args)
        msg = str(err.value)
        assert msg.startswith("master key (pkcs11 ") and reason in msg and "\n" not in msg


def test_key_service_on_hsm_and_master_rotation(
    softhsm: str, make_service, tmp_path: Path
) -> None:
    file_key = FileMasterKey.create(tmp_path / "m.key")
    svc: KeyService = make_service(master_key=file_key)
    svc.bootstrap()
    blob = svc.seal(b"moved to the HSM", "c")
    token = svc.sign_jwt("token", {"sub": "x"})

    hsm1 = Pkcs11MasterKey.create(softhsm, TOKEN, PIN, "mk-rot-1")
    assert svc.rotate_master(hsm1) == 1
    on_hsm: KeyService = make_service(master_key=hsm1)
    on_hsm.check()
    assert on_hsm.open(blob, "c") == b"moved to the HSM"
    assert on_hsm.verify_jwt("token", token) == {"sub": "x"}
    blob2 = on_hsm.seal(b"sealed on the HSM", "c")
    on_hsm.sign_jwt("assertion", {})

    hsm2 = Pkcs11MasterKey.create(softhsm, TOKEN, PIN, "mk-rot-2")
    assert on_hsm.rotate_master(hsm2) == 1
    final: KeyService = make_service(master_key=hsm2)
    final.check()
    assert final.open(blob, "c") == b"moved to the HSM"
    assert final.open(blob2, "c") == b"sealed on the HSM"
    with pytest.raises(MasterKeyError, match="pkcs11"):
        make_service(master_key=hsm1).check()
