"""The directory ``govgate serve --workers N`` shares the workers' metrics through
(gateway.cli.workers): one per port under the home, or the operator's own, emptied
before the workers start (an earlier run's counters would be added to this one's)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.cli.workers import metrics_directory
from gateway.metrics import MULTIPROC_ENV


def _unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """No directory chosen, and whatever ``metrics_directory`` sets undone at the
    end (set first, so monkeypatch remembers how it was: the gateways of later
    tests inherit this process's environment)."""
    monkeypatch.setenv(MULTIPROC_ENV, "")
    monkeypatch.delenv(MULTIPROC_ENV)


def test_one_directory_per_port_emptied_and_handed_to_the_workers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _unset(monkeypatch)
    stale = tmp_path / "run" / "metrics-8080"
    stale.mkdir(parents=True)
    (stale / "counter_123.db").write_bytes(b"old")
    (stale / "notes.txt").write_text("not ours")
    assert metrics_directory(tmp_path, 8080) == stale
    assert sorted(p.name for p in stale.iterdir()) == ["notes.txt"]
    assert os.environ[MULTIPROC_ENV] == str(stale)
    monkeypatch.delenv(MULTIPROC_ENV)
    assert metrics_directory(tmp_path, 8081) != stale  # another port, another directory


def test_the_operators_directory_is_used_when_set(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _unset(monkeypatch)
    chosen = tmp_path / "mine"
    monkeypatch.setenv(MULTIPROC_ENV, str(chosen))
    assert metrics_directory(tmp_path / "home", 8080) == chosen and chosen.is_dir()
