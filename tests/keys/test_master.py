from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa

from keys import (
    EnvMasterKey,
    FileMasterKey,
    KeyService,
    MasterKeyError,
    master_key_from_settings,
)
from keys.master import generate_master_key_text
from keys.tables import data_keys


def test_create_writes_0600_and_refuses_existing(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "master.key"
    key = FileMasterKey.create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(base64.b64decode(path.read_text().strip())) == 32
    before = path.read_bytes()
    with pytest.raises(MasterKeyError, match="refusing to overwrite"):
        FileMasterKey.create(path)
    assert path.read_bytes() == before
    assert FileMasterKey(path).key_id == key.key_id


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_group_or_world_readable_file_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "master.key"
    FileMasterKey.create(path)
    os.chmod(path, mode)
    with pytest.raises(MasterKeyError) as err:
        FileMasterKey(path)
    msg = str(err.value)
    assert "\n" not in msg and f"file {path}" in msg and "chmod 600" in msg


def test_missing_and_malformed_file(tmp_path: Path) -> None:
    with pytest.raises(MasterKeyError, match=r"master key \(file .*\): missing"):
        FileMasterKey(tmp_path / "nope")
    bad = tmp_path / "bad.key"
    bad.write_text("not base64!!")
    os.chmod(bad, 0o600)
    with pytest.raises(MasterKeyError, match="not base64"):
        FileMasterKey(bad)
    bad.write_text(base64.b64encode(b"short").decode())
    with pytest.raises(MasterKeyError, match="32 bytes"):
        FileMasterKey(bad)


def test_env_provider(tmp_path: Path) -> None:
    text = generate_master_key_text()
    key = EnvMasterKey("MK", {"MK": text})
    assert key.unwrap(key.wrap(b"x" * 32, b"aad"), b"aad") == b"x" * 32
    with pytest.raises(MasterKeyError, match=r"master key \(env MK\): variable is not set"):
        EnvMasterKey("MK", {})
    # the same key bytes in a file give the same key id: providers are interchangeable
    path = tmp_path / "mk"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, text.encode())
    os.close(fd)
    assert FileMasterKey(path).key_id == key.key_id


def test_wrap_binds_aad(master: FileMasterKey) -> None:
    blob = master.wrap(b"k" * 32, b"one")
    with pytest.raises(MasterKeyError, match="wrong master key"):
        master.unwrap(blob, b"two")


def test_master_key_from_settings(tmp_path: Path) -> None:
    FileMasterKey.create(tmp_path / "m")
    assert master_key_from_settings("file", path=tmp_path / "m").name == "file"
    env = {"X": generate_master_key_text()}
    assert master_key_from_settings("env", env_var="X", environ=env).name == "env"
    with pytest.raises(MasterKeyError, match="unknown provider"):
        master_key_from_settings("vault")
    with pytest.raises(MasterKeyError, match="pkcs11"):
        master_key_from_settings("pkcs11", pkcs11_module="", pkcs11_token_label="t",
                                 pkcs11_key_label="k")


def test_wrong_master_key_refuses_to_start(
    engine: sa.Engine, service: KeyService, tmp_path: Path, make_service
) -> None:
    blob = service.seal(b"secret", "ctx")
    other = FileMasterKey.create(tmp_path / "other.key")
    wrong = make_service(master_key=other)
    with pytest.raises(MasterKeyError) as err:
        wrong.check()
    assert "master key (file)" in str(err.value) and "\n" not in str(err.value)
    # nothing was overwritten: the right key still opens everything
    with engine.connect() as conn:
        before = conn.execute(sa.select(data_keys.c.wrapped)).scalars().all()
    with pytest.raises(MasterKeyError):
        wrong.bootstrap()
    with engine.connect() as conn:
        assert conn.execute(sa.select(data_keys.c.wrapped)).scalars().all() == before
    assert make_service().open(blob, "ctx") == b"secret"


def test_wrong_master_key_with_forged_key_id(
    engine: sa.Engine, service: KeyService, make_service
) -> None:
    """A provider reporting the right key id but holding other bytes still fails."""
    impostor = EnvMasterKey("MK", {"MK": generate_master_key_text()})
    impostor.key_id = service.master.key_id
    with pytest.raises(MasterKeyError, match="wrong master key"):
        make_service(master_key=impostor).check()


def test_master_rotation_rewraps_and_old_blobs_open(
    engine: sa.Engine, service: KeyService, tmp_path: Path, make_service
) -> None:
    blob1 = service.seal(b"one", "c1")
    service.rotate_data_key()
    blob2 = service.seal(b"two", "c2")
    token = service.sign_jwt("token", {"sub": "a"})
    with engine.connect() as conn:
        before = dict(conn.execute(sa.select(data_keys.c.id, data_keys.c.wrapped)).all())
    new = FileMasterKey.create(tmp_path / "new.key")
    assert service.rotate_master(new) == 2
    with engine.connect() as conn:
        after = dict(conn.execute(sa.select(data_keys.c.id, data_keys.c.wrapped)).all())
        ids = set(conn.execute(sa.select(data_keys.c.master_key_id)).scalars())
    assert before.keys() == after.keys()
    assert all(before[k] != after[k] for k in before)
    assert ids == {new.key_id}
    fresh = make_service(master_key=new)  # a restarted process with the new key
    fresh.check()
    assert fresh.open(blob1, "c1") == b"one"
    assert fresh.open(blob2, "c2") == b"two"
    assert fresh.verify_jwt("token", token) == {"sub": "a"}
    fresh.sign_jwt("token", {"sub": "b"})  # private keys open under the new master
    with pytest.raises(MasterKeyError):
        make_service().check()  # the old master key no longer opens the ring


def test_master_rotation_with_wrong_current_key_changes_nothing(
    engine: sa.Engine, service: KeyService, tmp_path: Path, make_service
) -> None:
    wrong = make_service(master_key=FileMasterKey.create(tmp_path / "wrong.key"))
    with engine.connect() as conn:
        before = conn.execute(sa.select(data_keys)).all()
    with pytest.raises(MasterKeyError):
        wrong.rotate_master(FileMasterKey.create(tmp_path / "new.key"))
    with engine.connect() as conn:
        assert conn.execute(sa.select(data_keys)).all() == before
