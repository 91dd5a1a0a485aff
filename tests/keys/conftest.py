from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.clock import FrozenClock
from keys import STANDARD, FileMasterKey, KeyService, MasterKeyProvider, Profile


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def master(tmp_path: Path) -> FileMasterKey:
    return FileMasterKey.create(tmp_path / "master.key")


@pytest.fixture
def make_service(
    engine: sa.Engine, master: FileMasterKey, clock: FrozenClock
) -> Callable[..., KeyService]:
    def make(
        master_key: MasterKeyProvider | None = None, profile: Profile = STANDARD, **kw: Any
    ) -> KeyService:
        kw.setdefault("prepublish_seconds", 3600)
        kw.setdefault("max_token_lifetime_seconds", 600)
        kw.setdefault("clock_skew_seconds", 60)
        kw.setdefault("cache_seconds", 0.0)
        return KeyService(engine, master_key or master, profile, clock=clock, **kw)

    return make


@pytest.fixture
def service(make_service: Callable[..., KeyService]) -> KeyService:
    svc = make_service()
    svc.bootstrap()
    return svc
