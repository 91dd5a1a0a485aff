"""``keys rotate-master`` while the gateway runs ("no downtime", docs/keys.md): a data
key made after it, under the new master key, must not stop a running process that
still holds the old one from sealing."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from keys import FileMasterKey, KeyService
from keys import envelope as envelope_module


def test_a_running_process_seals_under_a_data_key_made_after_the_master_rotation(
        make_service: Callable[..., KeyService], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "gw" / "master.key"
    running = make_service(master_key=FileMasterKey.create(path))
    running.bootstrap()
    running.check()  # as a server's start does: every data key unwrapped, cached
    old_blob = running.seal(b"before", "c")
    # the CLI, as `govgate keys rotate-master` (file provider, no option) does it
    cli = make_service(master_key=FileMasterKey(path))
    new = FileMasterKey.create(tmp_path / "gw" / "master.key.new")
    cli.rotate_master(new)
    os.replace(path, tmp_path / "gw" / "master.key.old")
    os.replace(tmp_path / "gw" / "master.key.new", path)
    # then `govgate keys rotate-data-key`, with the new master key
    make_service(master_key=FileMasterKey(path)).rotate_data_key()
    monkeypatch.setattr(envelope_module, "_ACTIVE_TTL", 0.0)  # past the 5 s cache
    blob = running.seal(b"after", "c")
    assert running.open(blob, "c") == b"after"
    assert running.open(old_blob, "c") == b"before"
    # and a process restarted with the new file opens both
    restarted = make_service(master_key=FileMasterKey(path))
    assert restarted.open(blob, "c") == b"after"
    assert restarted.open(old_blob, "c") == b"before"
